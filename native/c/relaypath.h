/* trilink kernel: the relay's receive hot path in one call (issue 13).
 *
 * tl_relay_rx decodes one verified TRACK_REPORT payload into a batch the
 * caller allocated once (CODEC_MAX_RECORDS records, reused for every frame)
 * and, in the same call, rotates every record's local ENU state and
 * covariance into ECEF around the source's origin (the Frame6.to_ecef of
 * edge/pipeline.py: xe = T^T x + p0, Pe = sym(T^T P T), T = diag(R, R) with
 * enu = R (ecef - p0)). Nothing is allocated; the Python side only slices
 * the preallocated arrays. "clean" tells the usual frame (every record
 * TL_REC_OK and none a DROP) from one that needs the slow bookkeeping.
 *
 * Return codes: the record count >= 0, or a negative TL_CODEC_E* of
 * tl_codec_decode (held is then unchanged).
 *
 * tl_relay_ingest adds the time map and the store into the picture, and
 * tl_relay_rx_frame puts the frame's verification in front of it: raw frame
 * bytes in, records in the picture out, one call per received report. */
#ifndef TRILINK_RELAYPATH_H
#define TRILINK_RELAYPATH_H

#include <stdint.h>

#include "codec.h"
#include "picture.h"
#include "wire.h"

/* cffi:begin */
/* R: 3x3 row-major ENU rotation of the source, p0: its origin in ECEF (m).
 * out: arrays of cap_records; xe[6*cap], Pe[36*cap] receive the ECEF
 * states and symmetric covariances of the records decoded. */
int32_t tl_relay_rx(const uint8_t *in, int32_t len, tl_codec_table *held, tl_track_batch *out,
                    int32_t cap_records, tl_codec_header *hdr, const double *R, const double *p0,
                    double *xe, double *Pe, int32_t *clean);

/* One source's receive path, set up once (RxPath): its rotation and origin,
 * its node id and the arrays of cap records every frame is decoded into.
 * t_us, t_s, nodes and status are scratch for the store. */
typedef struct tl_relay_rx_ctx {
    double R[9];
    double p0[3];
    uint8_t node;
    int32_t cap;
    tl_track_batch *batch;
    double *xe;
    double *Pe;
    int64_t *t_us;     /* out: relay us of each record stored (after the time map and clamp) */
    double *t_s;
    uint8_t *nodes;
    int32_t *status;   /* out: tl_picture_update's status per record */
    tl_codec_header hdr;
    int32_t clean;     /* out: as tl_relay_rx */
    int32_t stored;    /* out: 1 when the records went into the picture */
    int32_t ahead;     /* out: records stamped after rx_us, clamped to it */
    int32_t refused;   /* out: records the picture refused */
} tl_relay_rx_ctx;

/* tl_relay_rx, then, for a clean frame (every record TL_REC_OK, no DROP)
 * with at least one record and a picture: the times mapped onto the relay
 * timebase (relay_time 0: shifted so that the newest record's time is
 * rx_us), every time after rx_us clamped to it, and the records stored in
 * pic with tl_picture_update (stored = 1). An unclean frame is only
 * decoded and rotated (stored = 0): its bookkeeping (keyframe requests,
 * drops) is the caller's. Returns the record count or a negative
 * TL_CODEC_E* (TL_CODEC_EARG if the picture refused the arguments). */
int32_t tl_relay_ingest(tl_relay_rx_ctx *c, const uint8_t *in, int32_t len, tl_codec_table *held,
                        tl_picture *pic, int32_t relay_time, int64_t rx_us);

enum { TL_RELAY_NOT_INGESTED = -1000 };

/* One raw frame received on a link, verification first: tl_frame_parse
 * (cases 3-7; *hdr its header) and tl_keyring_verify (cases 8-11: link,
 * tag, replay; the key's mark raised). Then, only for a verified
 * TRACK_REPORT addressed to relay_node or broadcast, with ingest != 0 and a
 * context rx[src] (rx and held: 256 entries by node id, NULL where none),
 * tl_relay_ingest of its payload (relay_time from the frame's flags):
 * *ingested is its result (the record count or a negative TL_CODEC_E*),
 * else TL_RELAY_NOT_INGESTED. Returns TL_OK or the TL_ERR_* of cases 3-11
 * (nothing ingested). */
int32_t tl_relay_rx_frame(tl_keyring *k, const uint8_t *link_mask, const uint8_t *raw, int32_t len,
                          uint8_t relay_node, int32_t ingest, tl_relay_rx_ctx *const *rx,
                          tl_codec_table *const *held, tl_picture *pic, int64_t rx_us, tl_header *hdr,
                          int32_t *ingested);
/* cffi:end */

#endif
