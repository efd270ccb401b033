/* trilink kernel: the fused track picture of the relay.
 *
 * Keeps the latest track of every (source node, source track id), associates
 * them across sources into fused tracks with stable ids, and fuses the
 * members releasable to a destination by covariance intersection (ci.h).
 *
 * Rules (docs/FUSION.md explains them):
 *  - Update: a record replaces the stored track of its (node, track id); a
 *    time older than the stored one is TL_TRK_ETIME and changes nothing.
 *  - Associate at time t: tracks not updated for `timeout` s are deleted;
 *    every track with time <= t is predicted to t (tracks newer than t sit out
 *    this round). Then, source by source in ascending node id, the source's
 *    tracks are assigned optimally (assign.h) to fused tracks holding members
 *    of other sources, with cost d^2 = Mahalanobis distance of the difference
 *    against the CI fusion of those other members (covariance sum P_a + P_b),
 *    forbidden beyond `gate`; `stay_bonus` is subtracted from a track's
 *    current pairing; "no match" costs `gate`.
 *  - Persistence: a track leaves its fused track (for another one or alone)
 *    only after the assignment proposes the same move `switch_frames` rounds
 *    in a row; a new track, or one alone in its fused track, joins at once.
 *    When a lone track joins, the fused track keeps the older (smaller) id.
 *  - Initiation: a new track that joins nothing starts a fused track at once
 *    (boards report confirmed tracks; a warning must not wait).
 *    Deletion: a fused track is deleted with its last member. Ids are never
 *    reused.
 *  - Fuse at time t for a source mask (bit n = node id n, nodes 0..63):
 *    every fused track with members in the mask, CI-fused over those members
 *    only, predicted to t; with each member's node, track id and last
 *    report id.
 * All storage is inside the tl_picture (fixed tables, no allocation). */
#ifndef TRILINK_PICTURE_H
#define TRILINK_PICTURE_H

#include <stddef.h>
#include <stdint.h>
#include "geo.h"
#include "motion.h"

/* cffi:begin */
enum {
    TL_PIC_MAX_TRACKS = 256,  /* source tracks held (all sources together) */
    TL_PIC_MAX_FUSED = 256,   /* fused tracks held */
    TL_PIC_MAX_MEMBERS = 8,   /* sources contributing to one fused track */
    TL_PIC_MAX_NODE = 63,     /* largest source node id (mask bit) */
    TL_PIC_EFULL = 16,        /* a table is full: the record is refused */
    TL_PIC_EUNKNOWN = 17,     /* no such (node, track id) */
    TL_PIC_ENODE = 18         /* node id above TL_PIC_MAX_NODE */
};

typedef struct {
    double gate;           /* d^2 gate, default 22.46 (chi-square 99.9%, 6 dof) */
    double stay_bonus;     /* cost bonus of the current pairing, default 4.0 */
    int32_t switch_frames; /* rounds a move must be proposed in a row, default 3 */
    double timeout;        /* s without update before a source track is deleted, default 12 */
    int32_t ci_mode;       /* TL_CI_TRACE (default), TL_CI_LOGDET, TL_CI_FAST or TL_CI_NAIVE */
    tl_motion motion;      /* prediction model (motion.h defaults) */
} tl_picture_config;

typedef struct {
    int32_t tracks, fused;      /* current counts */
    int32_t initiated, joined;  /* fused tracks started; tracks that joined one */
    int32_t merged, switched;   /* lone tracks merged into another; moves between fused tracks */
    int32_t split;              /* tracks that left a fused track to stand alone */
    int32_t timed_out, deleted; /* source tracks timed out; fused tracks deleted */
    int32_t sat_out;            /* track-rounds skipped (newer than t, or prediction failed) */
} tl_picture_stats;

typedef struct tl_picture tl_picture;

void tl_picture_config_default(tl_picture_config *cfg);
/* Bytes the caller must provide for one picture (8-byte aligned). */
size_t tl_picture_size(void);
/* Initialise (or reset) a picture in caller memory; cfg NULL = defaults.
 * TL_TRK_EARG for a bad config, too little or misaligned memory. */
int32_t tl_picture_init(tl_picture *pic, size_t size, const tl_picture_config *cfg);

/* Store n track records: node[n], track_id[n], report_id[n], t[n],
 * x[n, 6] (ECEF m, m/s), P[n, 36]. status[n] receives TL_TRK_OK or the
 * record's error (ENONFINITE, ENOTPD, ETIME, EARG for an implausible state,
 * TL_PIC_EFULL, TL_PIC_ENODE); a refused record changes nothing. Returns the
 * number refused, or -1 for invalid arguments. */
int32_t tl_picture_update(tl_picture *pic, int32_t n, const uint8_t *node,
                          const uint32_t *track_id, const uint32_t *report_id, const double *t,
                          const double *x, const double *P, int32_t *status);

/* Remove one source track now. TL_TRK_OK or TL_PIC_EUNKNOWN. */
int32_t tl_picture_drop(tl_picture *pic, uint8_t node, uint32_t track_id);

/* One association round at time t (rules above). TL_TRK_OK, or
 * TL_TRK_ENONFINITE for a non-finite t. */
int32_t tl_picture_associate(tl_picture *pic, double t);

/* The fused id of a source track (0 if it sits out unassociated).
 * TL_TRK_OK or TL_PIC_EUNKNOWN. */
int32_t tl_picture_lookup(const tl_picture *pic, uint8_t node, uint32_t track_id,
                          uint32_t *fused_id);

/* The picture at time t from the sources in `mask`, ascending fused id, at
 * most max_out tracks: fused_id[max_out], x[max_out, 6], P[max_out, 36],
 * nmem[max_out], and per member (TL_PIC_MAX_MEMBERS slots per track)
 * mem_node, mem_track, mem_report, mem_weight. Members whose time is after t
 * or whose prediction fails are left out. Returns the number of tracks
 * written, or -1 for invalid arguments. */
int32_t tl_picture_fuse(tl_picture *pic, double t, uint64_t mask, int32_t max_out,
                        uint32_t *fused_id, double *x, double *P, int32_t *nmem,
                        uint8_t *mem_node, uint32_t *mem_track, uint32_t *mem_report,
                        double *mem_weight);

void tl_picture_get_stats(const tl_picture *pic, tl_picture_stats *out);
/* cffi:end */

#endif
