/* fuzz_codec.c: random and mutated payloads through the C track decoder
 * (native/c/codec.c), built with AddressSanitizer and
 * UndefinedBehaviorSanitizer by tests/test_codec_fuzz.py (any report aborts:
 * -fno-sanitize-recover).
 *
 *   gcc -std=c99 -fsanitize=address,undefined -fno-sanitize-recover=all -g -O1 \
 *       -Inative/c tests/fuzz/fuzz_codec.c native/c/codec.c native/c/deadreckon.c native/c/drmodel.c -lm -o fuzz_codec
 *   ./fuzz_codec 1000000 [seed]   # prints "inputs 1000000 decoded ... records ..." and exits 0
 *
 * Seeds are valid payloads the encoder makes (keyframes, deltas with every
 * SEND_* mix, drops, both batch kinds, random precisions) and dead-reckoning
 * payloads; each input is a seed mutated (bit flips, truncation, inserted
 * or overwritten bytes, splices of two seeds) or plain random bytes, copied
 * into a heap block of exactly its size so ASan sees any read past it. The
 * decoder runs against a persistent held table and without one. Promises
 * checked: success returns <= 1024 records, every decoded covariance of an
 * OK record is symmetric positive definite, an error is one of the three
 * decode errors, and a valid seed decodes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define NSEEDS 64
#define N 24

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }
static double unif(double a, double b) { return a + (b - a) * ((double)(rnd() >> 11) / 9007199254740992.0); }

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_codec: %s\n", what);
    abort();
}

/* batch arrays */
static uint8_t rtype[N], send_[N], status_[N], flags_[N], n_src[N], src_node[N * 16], has_imp[N];
static uint32_t tid[N], nations[N], report_id[N], src_rid[N * 16];
static uint64_t t_us[N], imp_t[N];
static double x[N * 6], P[N * 36], imp[N * 5];

static tl_track_batch batch(int32_t n)
{
    tl_track_batch b;
    b.n = n;
    b.rtype = rtype; b.send = send_; b.status = status_; b.tid = tid; b.t_us = t_us; b.x = x; b.P = P;
    b.flags = flags_; b.nations = nations; b.report_id = report_id; b.n_src = n_src;
    b.src_node = src_node; b.src_rid = src_rid; b.has_impact = has_imp; b.impact = imp;
    b.impact_t_us = imp_t;
    return b;
}

static void random_cov(double *p)
{
    double A[36];
    int i, j, k;
    for (i = 0; i < 36; i++)
        A[i] = unif(-1, 1) * (below(4) ? 1.0 : 1e-3);
    for (i = 0; i < 6; i++)
        for (j = 0; j < 6; j++) {
            double s = i == j ? unif(0.01, 10) : 0.0;
            for (k = 0; k < 6; k++)
                s += A[6 * i + k] * A[6 * j + k];
            p[6 * i + j] = s * (i < 3 && j < 3 ? 1e4 : 1.0);
        }
}

static void random_records(int32_t n, uint64_t t0)
{
    int32_t i;
    int k;
    for (i = 0; i < n; i++) {
        tid[i] = (uint32_t)(below(3) ? below(8) : rnd());
        t_us[i] = t0 + below(2000000);
        for (k = 0; k < 3; k++) {
            x[6 * i + k] = unif(-3e6, 3e6);
            x[6 * i + 3 + k] = unif(-7e3, 7e3);
        }
        random_cov(P + 36 * i);
        flags_[i] = (uint8_t)rnd();
        nations[i] = (uint32_t)below(64);
        report_id[i] = (uint32_t)rnd();
        n_src[i] = (uint8_t)below(4);
        for (k = 0; k < 16; k++) {
            src_node[16 * i + k] = (uint8_t)rnd();
            src_rid[16 * i + k] = (uint32_t)rnd();
        }
        has_imp[i] = (uint8_t)below(2);
        imp[5 * i] = unif(-3e6, 3e6);
        imp[5 * i + 1] = unif(-3e6, 3e6);
        imp[5 * i + 2] = unif(0, 5e4);
        imp[5 * i + 3] = unif(0, 1e4);
        imp[5 * i + 4] = unif(-360, 360);
        imp_t[i] = t_us[i] + below(2000000000u);
        rtype[i] = TL_REC_KEY;
        send_[i] = (uint8_t)below(8);
    }
}

static uint8_t seeds[NSEEDS][TL_CODEC_MAX_PAYLOAD];
static int32_t seed_len[NSEEDS];

static void make_seeds(void)
{
    tl_codec_table *held = tl_codec_table_new(4096);
    tl_dr_config cfg;
    tl_dr *dr;
    int s = 0, i;
    uint64_t t0 = 1000000;
    while (s < NSEEDS / 2) {
        int32_t n = (int32_t)(1 + below(N / 2)), len;
        int32_t kind = (int32_t)below(2);
        random_records(n, t0);
        for (i = 0; i < n; i++) {
            const int r = (int)below(4);
            rtype[i] = (uint8_t)(r == 3 ? TL_REC_DROP : (r == 2 ? TL_REC_DELTA : TL_REC_KEY));
            t_us[i] = t0 + (uint64_t)i;
        }
        {
            tl_track_batch b = batch(n);
            len = tl_codec_encode(kind, below(4) ? 1000 : (int32_t)(1 + below(65535)),
                                  below(4) ? 50 : (int32_t)(1 + below(65535)), t0, &b, held, seeds[s],
                                  TL_CODEC_MAX_PAYLOAD);
        }
        if (len == TL_CODEC_ENOBASE || len == TL_CODEC_ERANGE || len == TL_CODEC_ENOSPACE) {
            for (i = 0; i < n; i++)
                if (rtype[i] == TL_REC_DELTA)
                    rtype[i] = TL_REC_KEY;
            {
                tl_track_batch b = batch(n);
                len = tl_codec_encode(kind, 1000, 50, t0, &b, held, seeds[s], TL_CODEC_MAX_PAYLOAD);
            }
        }
        if (len > 0)
            seed_len[s++] = len;
        t0 += 1500000;
    }
    tl_dr_config_default(&cfg);
    cfg.origin_lat_deg = 39.2;
    dr = tl_dr_new(&cfg, 1024);
    while (s < NSEEDS) {
        int32_t n = (int32_t)(1 + below(N)), consumed = 0, len;
        tl_track_batch b;
        random_records(n, t0);
        for (i = 0; i < n; i++) {
            tid[i] = (uint32_t)below(6);
            rtype[i] = below(10) ? TL_DR_UPDATE : TL_DR_DROP;
        }
        b = batch(n);
        len = tl_dr_encode(dr, t0, &b, &consumed, seeds[s], TL_CODEC_MAX_PAYLOAD);
        if (len < 0)
            fail("dead-reckoning encode failed on valid input");
        seed_len[s++] = len;
        t0 += 700000;
        if (!below(5))
            tl_dr_request_keyframe(dr, below(2) ? -1 : (int64_t)below(6));
    }
    tl_dr_free(dr);
    tl_codec_table_free(held);
}

static void check_output(int32_t st, const tl_track_batch *o)
{
    int32_t i;
    if (st == TL_CODEC_ETRUNC || st == TL_CODEC_EVERSION || st == TL_CODEC_EMALFORMED ||
        st == TL_CODEC_EFULL)
        return;
    if (st < 0 || st > TL_CODEC_MAX_RECORDS || o->n != st)
        fail("decode returned an undocumented result");
    for (i = 0; i < st; i++) {
        const double *p = o->P + 36 * i;
        double L[36];
        int a, b, k;
        if (o->status[i] != TL_REC_OK || o->rtype[i] == TL_REC_DROP)
            continue;
        /* Cholesky: the decoded covariance must be symmetric positive definite */
        for (a = 0; a < 6; a++)
            for (b = 0; b <= a; b++) {
                double s = p[6 * a + b];
                if (p[6 * a + b] != p[6 * b + a])
                    fail("decoded covariance not symmetric");
                for (k = 0; k < b; k++)
                    s -= L[6 * a + k] * L[6 * b + k];
                if (a == b) {
                    if (!(s > 0.0))
                        fail("decoded covariance not positive definite");
                    L[6 * a + a] = sqrt(s);
                } else {
                    L[6 * a + b] = s / L[6 * b + b];
                }
            }
    }
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 100000, k;
    uint64_t decoded = 0, records = 0;
    tl_codec_table *held = tl_codec_table_new(8192);
    static uint8_t obuf_rtype[TL_CODEC_MAX_RECORDS], obuf_send[TL_CODEC_MAX_RECORDS],
        obuf_status[TL_CODEC_MAX_RECORDS], obuf_flags[TL_CODEC_MAX_RECORDS], obuf_nsrc[TL_CODEC_MAX_RECORDS],
        obuf_node[TL_CODEC_MAX_RECORDS * 16], obuf_himp[TL_CODEC_MAX_RECORDS];
    static uint32_t obuf_tid[TL_CODEC_MAX_RECORDS], obuf_nat[TL_CODEC_MAX_RECORDS],
        obuf_rid[TL_CODEC_MAX_RECORDS], obuf_srid[TL_CODEC_MAX_RECORDS * 16];
    static uint64_t obuf_t[TL_CODEC_MAX_RECORDS], obuf_it[TL_CODEC_MAX_RECORDS];
    static double obuf_x[TL_CODEC_MAX_RECORDS * 6], obuf_P[TL_CODEC_MAX_RECORDS * 36],
        obuf_imp[TL_CODEC_MAX_RECORDS * 5];
    tl_track_batch o = {0, obuf_rtype, obuf_send, obuf_status, obuf_tid, obuf_t, obuf_x, obuf_P, obuf_flags,
                        obuf_nat, obuf_rid, obuf_nsrc, obuf_node, obuf_srid, obuf_himp, obuf_imp, obuf_it};
    if (argc > 2)   /* xorshift must never start at 0 */
        rng_state = ((uint64_t)atoll(argv[2]) + 1u) * 0xD1B54A32D192ED03ULL | 1u;
    make_seeds();
    for (k = 0; k < NSEEDS; k++) {
        int32_t st = tl_codec_decode(seeds[k], seed_len[k], NULL, &o, TL_CODEC_MAX_RECORDS, NULL);
        if (st < 0)
            fail("a valid seed does not decode");
        check_output(st, &o);
    }
    for (k = 0; k < count; k++) {
        uint8_t tmp[2 * TL_CODEC_MAX_PAYLOAD + 64];
        size_t n, i, m;
        int s = (int)below(NSEEDS), st;
        uint8_t *buf;
        if (below(50) == 0) {          /* plain random bytes, sometimes with a valid start */
            n = below(64);
            for (i = 0; i < n; i++)
                tmp[i] = (uint8_t)rnd();
            if (n > 2 && below(2)) {
                tmp[0] = 1;
                tmp[1] = (uint8_t)below(2);
            }
        } else {
            n = (size_t)seed_len[s];
            memcpy(tmp, seeds[s], n);
            m = 1 + below(4);
            while (m--) {
                switch (below(6)) {
                case 0: case 1:        /* bit flips */
                    if (n)
                        tmp[below(n)] ^= (uint8_t)(1u << below(8));
                    break;
                case 2:                /* truncate */
                    n = below(n + 1);
                    break;
                case 3:                /* insert a byte */
                    if (n < sizeof tmp - 1) {
                        size_t at = below(n + 1);
                        memmove(tmp + at + 1, tmp + at, n - at);
                        tmp[at] = (uint8_t)rnd();
                        n++;
                    }
                    break;
                case 4:                /* overwrite a byte with an extreme */
                    if (n)
                        tmp[below(n)] = below(2) ? 0xFF : 0x00;
                    break;
                default: {             /* splice: tail of another seed */
                    int s2 = (int)below(NSEEDS);
                    size_t at = below(n + 1), from = below((size_t)seed_len[s2] + 1);
                    size_t len = (size_t)seed_len[s2] - from;
                    if (at + len > sizeof tmp)
                        len = sizeof tmp - at;
                    memcpy(tmp + at, seeds[s2] + from, len);
                    n = at + len;
                }
                }
            }
        }
        buf = (uint8_t *)malloc(n ? n : 1);
        if (!buf)
            fail("out of memory");
        memcpy(buf, tmp, n);
        st = tl_codec_decode(buf, (int32_t)n, below(2) ? held : NULL, &o, TL_CODEC_MAX_RECORDS, NULL);
        check_output(st, &o);
        if (st >= 0) {
            decoded++;
            records += (uint64_t)st;
        }
        if (below(1000) == 0)
            tl_codec_table_forget(held, -1);
        free(buf);
    }
    tl_codec_table_free(held);
    printf("inputs %ld decoded %llu records %llu\n", count, (unsigned long long)decoded,
           (unsigned long long)records);
    return 0;
}
