/* trilink kernel: the track codec of docs/PROTOCOL.md section 5.
 *
 * A batch (the payload of TRACK_REPORT or PICTURE) is a byte header and a
 * bit-packed run of records: keyframes (KEY), deltas against the copy of the
 * track the receiver holds (DELTA) and DROPs. A tl_codec_table keeps those
 * copies: the receiver's own (decode), or the sender's mirror of one
 * receiver's (encode). tl_dr adds dead-reckoning suppression per destination
 * on top (drmodel.h is the motion model both ends extrapolate with).
 *
 * The batch API is over caller-owned arrays (tl_track_batch), one call per
 * batch. The reference implementation is boards/trilink_board/codec.py; both
 * produce identical bytes (tests/vectors/codec_v2.json). Integer codes are
 * computed with +, -, *, /, sqrt, floor, frexp and ldexp on doubles only
 * (correctly rounded everywhere) and with the -std=c99 default of no FMA
 * contraction, so the quantisation is bit-identical on every IEEE platform.
 *
 * Return codes: a length or count >= 0, or a negative TL_CODEC_E*. */
#ifndef TRILINK_CODEC_H
#define TRILINK_CODEC_H

#include <stdint.h>

/* cffi:begin */
enum {
    TL_CODEC_VERSION = 2,         /* 2: PICTURE source ids per node (u32 then deltas) */
    TL_CODEC_REPORT = 0,          /* batch kind: TRACK_REPORT payload */
    TL_CODEC_PICTURE = 1,         /* batch kind: PICTURE payload */
    TL_REC_KEY = 0,
    TL_REC_DELTA = 1,
    TL_REC_DROP = 2,
    TL_REC_NONE = 255,            /* dead reckoning: input suppressed */
    TL_DR_UPDATE = 0,             /* dead reckoning input op: an update ... */
    TL_DR_DROP = 2,               /* ... or drop the track */
    TL_SEND_COV = 1,
    TL_SEND_META = 2,
    TL_SEND_IMPACT = 4,
    TL_REC_OK = 0,                /* decode status per record */
    TL_REC_NO_BASE = 1,           /* delta without a matching held copy: send KEYFRAME_REQ */
    TL_REC_DUP = 2,               /* the held copy already is this update */
    TL_REC_GONE = 3,              /* DROP: the held copy was removed */
    TL_CODEC_MAX_RECORDS = 1024,
    TL_CODEC_MAX_SOURCES = 16,
    TL_CODEC_MAX_PAYLOAD = 1024,
    TL_CODEC_ETRUNC = -1,         /* payload ends inside a field */
    TL_CODEC_EVERSION = -2,       /* codec version byte is not TL_CODEC_VERSION (2) */
    TL_CODEC_EMALFORMED = -3,     /* a field out of its range, bad padding, trailing bytes */
    TL_CODEC_ERANGE = -4,         /* encode: a value the format cannot carry */
    TL_CODEC_ENOBASE = -5,        /* encode: DELTA without a held copy */
    TL_CODEC_ENOSPACE = -6,       /* encode: output over the buffer or 1024 bytes */
    TL_CODEC_EARG = -7,           /* NULL or out-of-range argument */
    TL_CODEC_EFULL = -8,          /* table capacity reached */
    TL_DR_NCOUNTERS = 12
};

/* One batch of track updates as parallel arrays, n records. Arrays a call
 * does not use may be NULL (report_id for PICTURE; sources and impact for
 * REPORT). Per record i: x[6i..6i+5] = e, n, u (m), ve, vn, vu (m/s) in the
 * nation's local ENU frame; P[36i..] row-major 6x6 (lower triangle read);
 * sources src_node/src_rid[16i .. 16i + n_src[i]); impact[5i..] = east m,
 * north m, 95% semi-major m, semi-minor m, orientation deg from north,
 * impact_t_us[i] the impact time, valid when has_impact[i]. */
typedef struct tl_track_batch {
    int32_t n;
    uint8_t *rtype;        /* encode: KEY/DELTA/DROP in; decode: out; DR: op in, sent type out */
    uint8_t *send;         /* encode: TL_SEND_* for DELTA in; decode and DR: what was carried */
    uint8_t *status;       /* decode: TL_REC_* out */
    uint32_t *tid;
    uint64_t *t_us;
    double *x;
    double *P;
    uint8_t *flags;
    uint32_t *nations;
    uint32_t *report_id;
    uint8_t *n_src;
    uint8_t *src_node;
    uint32_t *src_rid;
    uint8_t *has_impact;
    double *impact;
    uint64_t *impact_t_us;
} tl_track_batch;

typedef struct tl_codec_header {
    int32_t kind;
    int32_t pos_mm;        /* position step, mm (1..65535) */
    int32_t vel_mm;        /* velocity step, mm/s (1..65535) */
    uint64_t base_us;
    uint32_t base_rid;     /* REPORT only */
    int32_t count;
} tl_codec_header;

/* The copies of tracks a receiver holds, keyed by track id. */
typedef struct tl_codec_table tl_codec_table;
tl_codec_table *tl_codec_table_new(int32_t capacity);
void tl_codec_table_free(tl_codec_table *t);
int32_t tl_codec_table_count(const tl_codec_table *t);
/* Number of copies held. Forget one track's copy (1 if it was held), or every copy (tid < 0). */
int32_t tl_codec_table_forget(tl_codec_table *t, int64_t tid);

/* Encode records with explicit types. held may be NULL (KEY and DROP only);
 * it is updated as the receiver will update it, and only on success.
 * Returns the payload length or an error. */
int32_t tl_codec_encode(int32_t kind, int32_t pos_mm, int32_t vel_mm, uint64_t base_us,
                        const tl_track_batch *b, tl_codec_table *held, uint8_t *out, int32_t cap);

/* Decode one payload into out (arrays of cap_records; out->n is set).
 * held may be NULL (deltas come back TL_REC_NO_BASE); it is updated only
 * when the whole payload decodes. hdr may be NULL. Returns the record count
 * or TL_CODEC_ETRUNC / EVERSION / EMALFORMED (EARG if cap_records is short). */
int32_t tl_codec_decode(const uint8_t *in, int32_t len, tl_codec_table *held, tl_track_batch *out,
                        int32_t cap_records, tl_codec_header *hdr);

/* The record count of a payload's header (to size the output arrays), or
 * the error tl_codec_decode would return for the header. */
int32_t tl_codec_peek_count(const uint8_t *in, int32_t len);

/* Dead reckoning per destination (PROTOCOL.md section 5.6). */
typedef struct tl_dr_config {
    int32_t kind;           /* TL_CODEC_REPORT or TL_CODEC_PICTURE */
    int32_t pos_mm;         /* 1000 */
    int32_t vel_mm;         /* 50 */
    double origin_lat_deg;  /* the local ENU origin both ends use */
    double origin_h_m;
    double step_s;          /* RK4 step, 1.0 */
    double threshold_m;     /* 50: position error that forces an update */
    uint64_t heartbeat_us;  /* 5000000 */
    int32_t cov_sig_codes;  /* 2: a sigma code moved this far forces the covariance */
    int32_t cov_cor_codes;  /* 4: a correlation code moved this far forces it */
    double impact_m;        /* 100: impact point moved this far forces the impact */
    uint64_t impact_t_us;   /* 100000: impact time moved this far forces it */
} tl_dr_config;

typedef struct tl_dr tl_dr;
void tl_dr_config_default(tl_dr_config *c);
tl_dr *tl_dr_new(const tl_dr_config *c, int32_t capacity);
void tl_dr_free(tl_dr *d);
/* Decide and encode inputs in order until the next record would not fit in
 * cap (<= 1024) bytes. *consumed = inputs handled; in->rtype[i] becomes the
 * record sent (TL_REC_KEY/DELTA/DROP) or TL_REC_NONE (suppressed) and
 * in->send[i] what it carried. Returns the payload length (a payload with 0
 * records when everything was suppressed) or an error. */
int32_t tl_dr_encode(tl_dr *d, uint64_t base_us, tl_track_batch *in, int32_t *consumed,
                     uint8_t *out, int32_t cap);
/* KEYFRAME_REQ: the next update of tid (every track: tid < 0) is a keyframe. */
void tl_dr_request_keyframe(tl_dr *d, int64_t tid);
/* Counters: inputs, keyframes, deltas, drops, suppressed, heartbeat,
 * position, covariance, meta, impact, new_track, stale (in that order). */
void tl_dr_counters(const tl_dr *d, uint64_t out[12]);
/* cffi:end */

#endif
