/* fuzz_wire.c: random and mutated inputs through the C wire layer, built
 * with AddressSanitizer and UndefinedBehaviorSanitizer by
 * tests/test_wire_sanitizers.py (any report aborts: -fno-sanitize-recover).
 *
 *   gcc -std=c99 -fsanitize=address,undefined -fno-sanitize-recover=all -g -O1 \
 *       -Inative/c tests/fuzz/fuzz_wire.c native/c/{crc32,sha256,cobs,wire}.c -o fuzz_wire
 *   ./fuzz_wire 1000000 [seed]      # prints "inputs 1000000 ..." and exits 0
 *
 * Every input is copied into a heap block of exactly its size (so ASan sees
 * any read past it) and given to every target in TARGETS. A target also
 * checks the layer's promises (a delivered frame parses, an accepted frame
 * carries a correct tag, COBS round-trips) and calls fail() when one breaks.
 * To fuzz another decoder, write `static void fuzz_x(const uint8_t *p,
 * size_t n)` and add it to TARGETS. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cobs.h"
#include "crc32.h"
#include "sha256.h"
#include "wire.h"

#define MAX_INPUT 4096

static void fail(const char *target, const char *what)
{
    fprintf(stderr, "fuzz_wire: %s: %s\n", target, what);
    abort();
}

/* ------------------------------------------------------------ randomness -- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* ------------------------------------------------------- shared fixtures -- */

static const uint8_t KEY1[32] = "TEST-ONLY-KEY-jp-000000000000001";
static const uint8_t KEY2[32] = "TEST-ONLY-KEY-kr-000000000000002";
static uint8_t link_mask[32];       /* nodes 1 and 2 */
static tl_keyring ring;             /* the relay (node 0) with keys 1 and 2 */
static tl_keyring ring_check;       /* same keys, for packing and checking tags */
static uint64_t stat_frames, stat_accepted, next_counter = 1u << 28;

static void setup(void)
{
    tl_keyring_init(&ring, 0);
    tl_keyring_add(&ring, 1, 1, KEY1, 32);
    tl_keyring_add(&ring, 2, 2, KEY2, 32);
    ring_check = ring;
    memset(link_mask, 0, sizeof link_mask);
    link_mask[0] = (1u << 1) | (1u << 2);
}

/* A valid frame from node 1 or 2 with a random header and payload; returns its length. */
static size_t make_frame(uint8_t *out, size_t cap)
{
    tl_header h;
    uint8_t payload[TL_MAX_PAYLOAD];
    size_t plen, i;
    int64_t m;
    int style = (int)below(4);
    memset(&h, 0, sizeof h);
    h.src = (uint8_t)(1 + below(2));
    h.key_id = h.src;
    h.dst = below(4) ? 0 : (uint8_t)rnd();
    h.type = (uint8_t)rnd();
    h.flags = (uint8_t)below(16);
    h.seq = (uint16_t)rnd();
    /* mostly increasing (so some frames are accepted), sometimes anything */
    h.counter = below(8) ? (next_counter += 1 + below(3)) : rnd() & 0xFFFFFFFFFFFFULL;
    plen = below(8) ? below(260) : below(TL_MAX_PAYLOAD + 1);
    for (i = 0; i < plen; i++)
        payload[i] = style == 0 ? 0 : style == 1 ? 0xFF : (uint8_t)(below(4) ? rnd() : 0);
    m = tl_keyring_pack(&ring_check, &h, payload, plen, out, cap);
    if (m < 0)
        fail("make_frame", "pack of a valid header failed");
    return (size_t)m;
}

static void recrc(uint8_t *f, size_t n)
{
    uint32_t c;
    if (n < 4)
        return;
    c = tl_crc32(0, f, n - 4);
    f[n - 4] = (uint8_t)c;
    f[n - 3] = (uint8_t)(c >> 8);
    f[n - 2] = (uint8_t)(c >> 16);
    f[n - 1] = (uint8_t)(c >> 24);
}

/* --------------------------------------------------------- input makers -- */

/* Mutate buf[0:n] in place (capacity MAX_INPUT); returns the new length. */
static size_t mutate(uint8_t *buf, size_t n)
{
    int rounds = 1 + (int)below(4), r;
    for (r = 0; r < rounds; r++) {
        switch (below(8)) {
        case 0: /* bit flips */
            if (n) {
                int k = 1 + (int)below(8);
                while (k--)
                    buf[below(n)] ^= (uint8_t)(1u << below(8));
            }
            break;
        case 1: /* truncate */
            n = below(n + 1);
            break;
        case 2: /* a byte set to 0x00, 0xFF or random */
            if (n)
                buf[below(n)] = below(3) == 0 ? 0 : below(2) ? 0xFF : (uint8_t)rnd();
            break;
        case 3: /* insert random bytes */
        {
            size_t k = 1 + below(64), at = below(n + 1), i;
            if (n + k > MAX_INPUT)
                break;
            memmove(buf + at + k, buf + at, n - at);
            for (i = 0; i < k; i++)
                buf[at + i] = (uint8_t)rnd();
            n += k;
            break;
        }
        case 4: /* delete a span */
            if (n) {
                size_t at = below(n), k = 1 + below(n - at);
                memmove(buf + at, buf + at + k, n - at - k);
                n -= k;
            }
            break;
        case 5: /* splice: duplicate a span somewhere else */
            if (n) {
                size_t from = below(n), k = 1 + below(n - from), at = below(n + 1);
                if (n + k > MAX_INPUT)
                    break;
                memmove(buf + at + k, buf + at, n - at);
                memmove(buf + at, buf + (from >= at ? from + k : from), k);
                n += k;
            }
            break;
        case 6: /* a long run without 0x00 (oversize) */
        {
            size_t k = 1000 + below(1200), at = below(n + 1), i;
            if (n + k > MAX_INPUT)
                break;
            memmove(buf + at + k, buf + at, n - at);
            for (i = 0; i < k; i++)
                buf[at + i] = (uint8_t)(1 + (rnd() >> 56) % 255);
            n += k;
            break;
        }
        default: /* extra delimiters */
            if (n)
                buf[below(n)] = 0;
            break;
        }
    }
    return n;
}

/* Edit one header field of a raw frame (length, version, flags, ids,
 * counter) and fix the CRC half the time so the edit reaches cases 5-11. */
static void edit_header(uint8_t *f, size_t n)
{
    switch (below(5)) {
    case 0: {
        uint16_t len = below(2) ? (uint16_t)rnd() : (uint16_t)(n - 30 + below(5));
        f[14] = (uint8_t)len;
        f[15] = (uint8_t)(len >> 8);
        break;
    }
    case 1: f[0] = (uint8_t)rnd(); break;
    case 2: f[1] = (uint8_t)rnd(); break;
    case 3: f[2 + below(4)] = (uint8_t)rnd(); break;
    default: f[8 + below(6)] = (uint8_t)rnd(); break;
    }
    if (below(2))
        recrc(f, n);
}

/* A pool of frames and their serial forms, so that making an input costs
 * copies, not a MAC and a CRC per frame; one slot is remade every few inputs. */
#define POOL 256
static uint8_t pool_raw[POOL][TL_MAX_FRAME];
static uint8_t pool_ser[POOL][TL_MAX_SERIAL];
static size_t pool_len[POOL], pool_slen[POOL];

static void remake(size_t i)
{
    int64_t m;
    pool_len[i] = make_frame(pool_raw[i], TL_MAX_FRAME);
    if (below(4) == 0)
        edit_header(pool_raw[i], pool_len[i]);
    m = tl_serial_encode(pool_raw[i], pool_len[i], pool_ser[i], TL_MAX_SERIAL);
    if (m < 0)
        fail("pool", "serial encode failed");
    pool_slen[i] = (size_t)m;
}

/* A serial stream of 1-6 pool frames, with leading 0x00s sometimes, then
 * mutated when asked. */
static size_t stream(uint8_t *buf, int mutated)
{
    size_t n = 0;
    int k = 1 + (int)below(6);
    while (k--) {
        size_t i = below(POOL);
        if (below(3) == 0)
            buf[n++] = 0;
        if (n + pool_slen[i] > MAX_INPUT)
            break;
        memcpy(buf + n, pool_ser[i], pool_slen[i]);
        n += pool_slen[i];
    }
    return mutated ? mutate(buf, n) : n;
}

/* Fill buf with one input; returns its length. */
static size_t make_input(uint8_t *buf)
{
    size_t n, i, j;
    if (below(16) == 0)
        remake(below(POOL));
    switch (below(6)) {
    case 0: /* random bytes, short or long, about 1 in 8 of them 0x00 */
        n = below(3) ? below(80) : below(MAX_INPUT);
        for (i = 0; i < n; i += 8) {
            uint64_t r = rnd(), z = rnd();
            for (j = i; j < n && j < i + 8; j++, r >>= 8, z >>= 8)
                buf[j] = (z & 7) ? (uint8_t)r : 0;
        }
        return n;
    case 1: /* a clean stream */
        return stream(buf, 0);
    case 2:
    case 3: /* a mutated stream */
        return stream(buf, 1);
    case 4: /* a mutated raw frame */
        i = below(POOL);
        memcpy(buf, pool_raw[i], pool_len[i]);
        return mutate(buf, pool_len[i]);
    default: /* a raw frame with an edited header field */
        i = below(POOL);
        memcpy(buf, pool_raw[i], pool_len[i]);
        edit_header(buf, pool_len[i]);
        return pool_len[i];
    }
}

/* --------------------------------------------------------------- targets -- */

/* COBS decode of an arbitrary chunk; a decodable chunk re-encodes to the
 * canonical form, which decodes to the same bytes. */
static void fuzz_cobs(const uint8_t *p, size_t n)
{
    uint8_t *dec = (uint8_t *)malloc(n ? n : 1), *enc;
    int64_t m = tl_cobs_decode(p, n, dec, n), e, m2;
    if (m == -2)
        fail("cobs", "cap of n reported too small");
    if (m >= 0) {
        size_t cap = tl_cobs_max_encoded((size_t)m);
        enc = (uint8_t *)malloc(cap);
        e = tl_cobs_encode(dec, (size_t)m, enc, cap);
        if (e < 0 || memchr(enc, 0, (size_t)e))
            fail("cobs", "re-encoding failed or holds 0x00");
        m2 = tl_cobs_decode(enc, (size_t)e, dec, (size_t)m);
        if (m2 != m)
            fail("cobs", "round trip changed the length");
        free(enc);
    }
    free(dec);
}

/* Parse (cases 3-7) then verify (8-11) one raw frame, as for a UDP datagram. */
static void fuzz_parse(const uint8_t *p, size_t n)
{
    tl_header h;
    int32_t rc = tl_frame_parse(p, n, &h), v;
    if (rc != TL_OK && rc != TL_ERR_CRC && rc != TL_ERR_MALFORMED)
        fail("parse", "unexpected return code");
    v = tl_keyring_verify(&ring, p, n, link_mask);
    if (rc != TL_OK)
        return;
    if (h.version != 1 || (h.flags & 0xF0) || (size_t)h.length + 28 != n)
        fail("parse", "accepted a header that breaks cases 5-7");
    if (v == TL_OK) {
        uint8_t tag[32];
        stat_accepted++;
        tl_hmac_digest(&ring_check.slot[h.key_id].mac, p, n - 12, tag);
        if (memcmp(tag, p + n - 12, 8) || !ring_check.slot[h.key_id].present)
            fail("verify", "accepted a frame with a wrong tag");
    } else if (v != TL_ERR_AUTH && v != TL_ERR_REPLAY && v != TL_ERR_WRONG_LINK) {
        fail("verify", "unexpected return code on a parsed frame");
    }
}

/* The stream path, fed in random pieces with a tight arena so the
 * out-of-room path runs: every delivered frame must parse and lie inside the
 * arena; every accepted one must have a counter above the previous mark. */
static void fuzz_deframer(const uint8_t *p, size_t n)
{
    static tl_deframer d;
    static int ready;
    size_t cap = TL_MAX_CHUNK + below(3000), pos = 0, consumed;
    uint32_t max_refs = 1 + (uint32_t)below(4);
    uint8_t *out = (uint8_t *)malloc(cap);
    tl_frame_ref *refs = (tl_frame_ref *)malloc(max_refs * sizeof *refs);
    int verify = (int)below(2);
    if (!ready || below(50) == 0) {
        tl_deframer_init(&d);
        ready = 1;
    }
    if (below(200) == 0)
        tl_keyring_init(&ring, 0), tl_keyring_add(&ring, 1, 1, KEY1, 32), tl_keyring_add(&ring, 2, 2, KEY2, 32);
    while (pos < n || n == 0) {
        size_t piece = n - pos, i;
        uint64_t mark[3];
        int has[3], k;
        int32_t cnt;
        if (below(2))
            piece = below(piece + 1);
        for (k = 1; k <= 2; k++) {
            has[k] = ring.slot[k].has_mark;
            mark[k] = ring.slot[k].mark;
        }
        cnt = verify ? tl_wire_receive(&d, &ring, link_mask, p + pos, piece, &consumed, out, cap, refs, max_refs)
                     : tl_deframer_feed(&d, p + pos, piece, &consumed, out, cap, refs, max_refs);
        if (cnt < 0 || (uint32_t)cnt > max_refs || consumed > piece)
            fail("deframer", "bad count or consumed");
        for (i = 0; i < (size_t)cnt; i++) {
            const tl_frame_ref *r = &refs[i];
            if ((size_t)r->offset + r->length > cap || tl_frame_parse(out + r->offset, r->length, NULL) != TL_OK)
                fail("deframer", "delivered a frame outside the arena or failing cases 3-7");
            stat_frames++;
            if (verify && r->status == TL_OK) {
                const uint8_t *f = out + r->offset;
                uint8_t kid = f[5], tag[32];
                uint64_t ctr = 0;
                for (k = 5; k >= 0; k--)
                    ctr = (ctr << 8) | f[8 + k];
                if (kid != 1 && kid != 2)
                    fail("receive", "accepted a frame under an unknown key");
                if (has[kid] && ctr <= mark[kid])
                    fail("receive", "accepted a counter not above the mark");
                tl_hmac_digest(&ring_check.slot[kid].mac, f, r->length - 12, tag);
                if (memcmp(tag, f + r->length - 12, 8))
                    fail("receive", "accepted a frame with a wrong tag");
                has[kid] = 1;
                mark[kid] = ctr;
                stat_accepted++;
            }
        }
        pos += consumed;
        if (n == 0)
            break;
    }
    if (d.n > TL_MAX_CHUNK)
        fail("deframer", "chunk buffer overran");
    free(out);
    free(refs);
}

static const struct target {
    const char *name;
    void (*fn)(const uint8_t *p, size_t n);
} TARGETS[] = {
    {"cobs", fuzz_cobs},
    {"parse", fuzz_parse},
    {"deframer", fuzz_deframer},
};

int main(int argc, char **argv)
{
    uint8_t *buf = (uint8_t *)malloc(MAX_INPUT);
    unsigned long long count, i;
    size_t t;
    if (argc < 2) {
        fprintf(stderr, "usage: %s COUNT [SEED]\n", argv[0]);
        return 2;
    }
    count = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        rng_state ^= strtoull(argv[2], NULL, 10) * 0xD1B54A32D192ED03ULL;
    setup();
    for (t = 0; t < POOL; t++)
        remake(t);
    for (i = 0; i < count; i++) {
        size_t n = make_input(buf);
        uint8_t *exact = (uint8_t *)malloc(n ? n : 1);
        memcpy(exact, buf, n);
        for (t = 0; t < sizeof TARGETS / sizeof TARGETS[0]; t++)
            TARGETS[t].fn(exact, n);
        free(exact);
    }
    free(buf);
    printf("inputs %llu frames_delivered %llu accepted %llu\n", count, (unsigned long long)stat_frames,
           (unsigned long long)stat_accepted);
    return 0;
}
