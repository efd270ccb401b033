/* trilink kernel: what codec.c and deadreckon.c share (not a contract:
 * no cffi region, nothing here is called from Python). The codes of one
 * update, the held-copy table, the precision and the bit writer; the
 * functions are codec.c's, prefixed tlc_. */
#ifndef TRILINK_CODEC_INTERNAL_H
#define TRILINK_CODEC_INTERNAL_H

#include <stdint.h>

#include "codec.h"

#define ORIENT_CODES 18000
#define HDR_MAX 32

/* ---- integer codes of one update ---- */
typedef struct codes {
    uint32_t tid;
    uint64_t t_us;
    int32_t upd;
    uint32_t report_id;
    int64_t pq[3], vq[3];
    int32_t sig[6], cor[15];
    uint32_t flags, nations;
    int32_t has_imp;
    int64_t imp_e, imp_n, imp_a, imp_b;
    uint64_t imp_t;
    int32_t imp_o;
} codes;

/* PICTURE source report ids: the running predecessor of each source node
 * within one batch (PROTOCOL.md 5.5). The first id of a node is sent as
 * u(32), the next ones as se deltas from the node's previous id, because a
 * board's ids are large (epoch << 20) but close to each other. */
typedef struct srcs {
    uint32_t prev[256];
    uint8_t seen[256];
} srcs;

/* ---- held-copy table: open addressing, linear probing, backward-shift delete ---- */
typedef struct entry {
    uint32_t tid;
    uint8_t used;
    uint8_t valid;        /* a held copy exists */
    uint8_t n_pend;       /* dead reckoning: sources of suppressed updates */
    uint32_t gen;         /* staging generation of `stage` */
    int32_t stage;        /* index into the scratch of the current call, -1: dropped */
    codes c;
    uint8_t pend_node[TL_CODEC_MAX_SOURCES];
    uint32_t pend_rid[TL_CODEC_MAX_SOURCES];
} entry;

struct tl_codec_table {
    int32_t capacity, count;
    uint32_t mask, gen;
    entry *slots;
    codes *scratch;       /* TL_CODEC_MAX_RECORDS staged copies */
    int32_t nstaged;      /* entries staged in the current call ... */
    uint32_t staged[TL_CODEC_MAX_RECORDS];   /* ... by track id */
};

typedef struct prec {
    int32_t pos_mm, vel_mm;
    double pos, vel;
} prec;

/* Bit writer: MSB first; whole 32-bit words go to buf, the rest (< 32
 * bits) waits in acc, so rolling back is restoring the struct. */
typedef struct bw {
    uint8_t *buf;
    int64_t cap_bits, bit, nbyte;
    uint64_t acc;
    int nacc;
    int over;
} bw;

entry *tlc_tab_find(tl_codec_table *t, uint32_t tid);
entry *tlc_tab_insert(tl_codec_table *t, uint32_t tid);
void tlc_tab_remove(tl_codec_table *t, entry *e);
void tlc_prec_set(prec *p, int32_t pos_mm, int32_t vel_mm);
int tlc_check_prec(int32_t kind, int32_t pos_mm, int32_t vel_mm);
/* Codes of record i of batch b (the Python quantise()). */
int tlc_quantise(const tl_track_batch *b, int32_t i, int32_t kind, const prec *pr, codes *r);
int tlc_bw_finish(bw *w);
int tlc_delta_ok(const codes *h, uint64_t t_us, const prec *pr);
int tlc_put_record(bw *w, int32_t kind, const prec *pr, int rtype, int send, const codes *r,
                   const codes *h, const uint8_t *src_node, const uint32_t *src_rid, int n_src,
                   uint32_t *prev_id, uint64_t *prev_t, uint32_t *prev_rid, srcs *ss, codes *n);
int tlc_header(uint8_t *out, int32_t kind, const prec *pr, uint64_t base_us, uint32_t base_rid,
               int32_t count);

#endif
