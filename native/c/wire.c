/* trilink kernel: frame header, pack/parse, serial encoding, the stream
 * deframer and the keyring verifier (docs/PROTOCOL.md sections 1-3). */
#include <string.h>

#include "cobs.h"
#include "crc32.h"
#include "wire.h"

/* The struct declarations in wire.h spell some sizes as numbers because the
 * cffi region cannot use macros; fail the build if they drift. */
typedef char tl_wire_check_chunk[sizeof(((tl_deframer *)0)->buf) == TL_MAX_CHUNK ? 1 : -1];
typedef char tl_wire_check_slots[sizeof(((tl_keyring *)0)->slot) / sizeof(tl_key_slot) == 256 ? 1 : -1];

#define COUNTER_MAX 0xFFFFFFFFFFFFULL

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void tl_header_pack(const tl_header *h, uint8_t *out16)
{
    int i;
    out16[0] = h->version;
    out16[1] = h->flags;
    out16[2] = h->src;
    out16[3] = h->dst;
    out16[4] = h->type;
    out16[5] = h->key_id;
    out16[6] = (uint8_t)h->seq;
    out16[7] = (uint8_t)(h->seq >> 8);
    for (i = 0; i < 6; i++)
        out16[8 + i] = (uint8_t)(h->counter >> (8 * i));
    out16[14] = (uint8_t)h->length;
    out16[15] = (uint8_t)(h->length >> 8);
}

void tl_header_unpack(const uint8_t *in16, tl_header *h)
{
    int i;
    h->version = in16[0];
    h->flags = in16[1];
    h->src = in16[2];
    h->dst = in16[3];
    h->type = in16[4];
    h->key_id = in16[5];
    h->seq = (uint16_t)(in16[6] | (in16[7] << 8));
    h->counter = 0;
    for (i = 5; i >= 0; i--)
        h->counter = (h->counter << 8) | in16[8 + i];
    h->length = (uint16_t)(in16[14] | (in16[15] << 8));
}

static unsigned frame_length_field(const uint8_t *f) { return (unsigned)f[14] | ((unsigned)f[15] << 8); }

int32_t tl_frame_parse(const uint8_t *f, size_t n, tl_header *h)
{
    unsigned len;
    if (f == NULL || n < TL_OVERHEAD)                          /* case 3 */
        return TL_ERR_MALFORMED;
    if (tl_crc32(0, f, n - TL_CRC_SIZE) != get32(f + n - TL_CRC_SIZE)) /* case 4 */
        return TL_ERR_CRC;
    if (f[0] != TL_WIRE_VERSION)                              /* case 5 */
        return TL_ERR_MALFORMED;
    if (f[1] & TL_FLAGS_RESERVED)                             /* case 6 */
        return TL_ERR_MALFORMED;
    len = frame_length_field(f);
    if (len > TL_MAX_PAYLOAD || (size_t)len != n - TL_OVERHEAD) /* case 7 */
        return TL_ERR_MALFORMED;
    if (h)
        tl_header_unpack(f, h);
    return TL_OK;
}

int64_t tl_frame_pack(const tl_hmac_key *key, const tl_header *h, const uint8_t *payload, size_t plen,
                      uint8_t *out, size_t cap)
{
    tl_header hh;
    uint8_t tag[32];
    size_t end;
    if (key == NULL || h == NULL || out == NULL || (plen && payload == NULL))
        return TL_ERR_ARG;
    if (plen > TL_MAX_PAYLOAD || (h->flags & TL_FLAGS_RESERVED) || h->src == TL_BROADCAST || h->key_id == 0 ||
        h->counter > COUNTER_MAX)
        return TL_ERR_ARG;
    if (cap < TL_OVERHEAD + plen)
        return TL_ERR_SPACE;
    hh = *h;
    hh.version = TL_WIRE_VERSION;
    hh.length = (uint16_t)plen;
    tl_header_pack(&hh, out);
    if (plen)
        memmove(out + TL_HEADER_SIZE, payload, plen); /* payload may already sit in out */
    end = TL_HEADER_SIZE + plen;
    tl_hmac_digest(key, out, end, tag);
    memcpy(out + end, tag, TL_TAG_SIZE);
    end += TL_TAG_SIZE;
    put32(out + end, tl_crc32(0, out, end));
    return (int64_t)(end + TL_CRC_SIZE);
}

int64_t tl_serial_encode(const uint8_t *f, size_t n, uint8_t *out, size_t cap)
{
    int64_t m;
    if ((f == NULL && n) || out == NULL || cap == 0)
        return out == NULL ? TL_ERR_ARG : TL_ERR_SPACE;
    m = tl_cobs_encode(f, n, out, cap - 1);
    if (m < 0)
        return TL_ERR_SPACE;
    out[m] = 0;
    return m + 1;
}

/* ---------------------------------------------------------- deframer ---- */

void tl_deframer_init(tl_deframer *d)
{
    memset(d, 0, sizeof *d);
}

void tl_deframer_reset(tl_deframer *d)
{
    d->n = 0;
    d->drop = 0;
}

/* Decode the held chunk into dst (room for d->n bytes guaranteed by the
 * caller) and run cases 2-7; count a failure. Returns the frame length or a
 * TL_ERR_* code. */
static int64_t take_chunk(tl_deframer *d, uint8_t *dst)
{
    int64_t m = tl_cobs_decode(d->buf, d->n, dst, d->n);
    int32_t rc;
    if (m < 0) { /* case 2 */
        d->malformed++;
        return TL_ERR_MALFORMED;
    }
    rc = tl_frame_parse(dst, (size_t)m, NULL);
    if (rc == TL_ERR_CRC) {
        d->crc_error++;
        return rc;
    }
    if (rc != TL_OK) {
        d->malformed++;
        return rc;
    }
    d->frames++;
    return m;
}

/* The loop shared by tl_deframer_feed and tl_wire_receive (k == NULL: no verify). */
static int32_t feed(tl_deframer *d, tl_keyring *k, const uint8_t *link_mask, const uint8_t *data, size_t n,
                    size_t *consumed, uint8_t *out, size_t cap, tl_frame_ref *refs, uint32_t max_refs)
{
    size_t i = 0, used = 0;
    uint32_t count = 0;
    if (consumed)
        *consumed = 0;
    if (d == NULL || consumed == NULL || out == NULL || refs == NULL || cap < TL_MAX_CHUNK || max_refs < 1 ||
        (data == NULL && n) || (k != NULL && link_mask == NULL))
        return TL_ERR_ARG;
    while (i < n) {
        const uint8_t *z = (const uint8_t *)memchr(data + i, 0, n - i);
        size_t end = z ? (size_t)(z - data) : n, run = end - i;
        if (run && !d->drop) {
            if (d->n + run > TL_MAX_CHUNK) { /* case 1: count once, skip to the next 0x00 */
                d->drop = 1;
                d->oversize++;
            } else {
                memcpy(d->buf + d->n, data + i, run);
                d->n += (uint32_t)run;
            }
        }
        if (z == NULL) {
            i = n;
            break;
        }
        if (d->drop) {
            d->drop = 0;
        } else if (d->n) { /* an empty chunk (00 00) is ignored silently */
            int64_t m;
            if (count == max_refs || cap - used < d->n) {
                i = end; /* out of room: resume at this delimiter next call */
                break;
            }
            m = take_chunk(d, out + used);
            if (m >= 0) {
                refs[count].offset = (uint32_t)used;
                refs[count].length = (uint32_t)m;
                refs[count].status = k ? tl_keyring_verify(k, out + used, (size_t)m, link_mask) : TL_OK;
                used += (size_t)m;
                count++;
            }
        }
        d->n = 0;
        i = end + 1;
    }
    *consumed = i;
    return (int32_t)count;
}

int32_t tl_deframer_feed(tl_deframer *d, const uint8_t *data, size_t n, size_t *consumed,
                         uint8_t *out, size_t cap, tl_frame_ref *refs, uint32_t max_refs)
{
    return feed(d, NULL, NULL, data, n, consumed, out, cap, refs, max_refs);
}

int32_t tl_wire_receive(tl_deframer *d, tl_keyring *k, const uint8_t *link_mask, const uint8_t *data,
                        size_t n, size_t *consumed, uint8_t *out, size_t cap, tl_frame_ref *refs,
                        uint32_t max_refs)
{
    if (k == NULL) {
        if (consumed)
            *consumed = 0;
        return TL_ERR_ARG;
    }
    return feed(d, k, link_mask, data, n, consumed, out, cap, refs, max_refs);
}

/* ----------------------------------------------------------- keyring ---- */

void tl_keyring_init(tl_keyring *k, uint8_t node)
{
    memset(k, 0, sizeof *k);
    k->node = node;
}

int32_t tl_keyring_add(tl_keyring *k, uint8_t key_id, uint8_t node, const uint8_t *key, size_t klen)
{
    tl_key_slot *s;
    if (k == NULL || key == NULL || key_id == 0 || klen != TL_KEY_SIZE)
        return TL_ERR_ARG;
    s = &k->slot[key_id];
    tl_hmac_init(&s->mac, key, klen);
    s->node = node;
    s->present = 1;
    return TL_OK;
}

int32_t tl_keyring_remove(tl_keyring *k, uint8_t key_id)
{
    if (k == NULL || key_id == 0)
        return TL_ERR_ARG;
    memset(&k->slot[key_id], 0, sizeof k->slot[key_id]);
    return TL_OK;
}

int32_t tl_keyring_set_mark(tl_keyring *k, uint8_t key_id, uint64_t mark)
{
    if (k == NULL || key_id == 0 || mark > COUNTER_MAX)
        return TL_ERR_ARG;
    k->slot[key_id].mark = mark;
    k->slot[key_id].seen = ~(uint64_t)0; /* nothing below a restored mark is new */
    k->slot[key_id].has_mark = 1;
    return TL_OK;
}

int32_t tl_keyring_set_window(tl_keyring *k, uint8_t key_id, uint32_t window)
{
    if (k == NULL || key_id == 0 || window > 64)
        return TL_ERR_ARG;
    k->slot[key_id].window = (uint8_t)window;
    return TL_OK;
}

int32_t tl_keyring_get_mark(const tl_keyring *k, uint8_t key_id, uint64_t *mark)
{
    if (k == NULL || key_id == 0)
        return TL_ERR_ARG;
    if (!k->slot[key_id].has_mark)
        return 0;
    if (mark)
        *mark = k->slot[key_id].mark;
    return 1;
}

int32_t tl_keyring_verify(tl_keyring *k, const uint8_t *f, size_t n, const uint8_t *link_mask)
{
    const tl_key_slot *s;
    uint8_t tag[32], diff = 0;
    unsigned src, dst, i;
    size_t end;
    uint64_t counter = 0;
    if (k == NULL || link_mask == NULL || f == NULL || n < TL_OVERHEAD || n > TL_MAX_FRAME ||
        (size_t)frame_length_field(f) != n - TL_OVERHEAD)
        return TL_ERR_MALFORMED;
    src = f[2];
    dst = f[3];
    if (!(link_mask[src >> 3] & (1u << (src & 7)))) { /* case 8 */
        k->wrong_link++;
        return TL_ERR_WRONG_LINK;
    }
    s = &k->slot[f[5]];
    /* case 9: the key must belong to this pair: the sender's key on the
     * uplink, or, at a board, its own key on frames addressed to it. */
    if (!s->present || !(s->node == src || (s->node == k->node && (dst == s->node || dst == TL_BROADCAST)))) {
        k->auth_fail++;
        return TL_ERR_AUTH;
    }
    end = n - TL_TAG_SIZE - TL_CRC_SIZE;
    tl_hmac_digest(&s->mac, f, end, tag);
    for (i = 0; i < TL_TAG_SIZE; i++) /* case 10, constant time: no early exit */
        diff |= (uint8_t)(tag[i] ^ f[end + i]);
    if (diff) {
        k->auth_fail++;
        return TL_ERR_AUTH;
    }
    for (i = 6; i-- > 0;)
        counter = (counter << 8) | f[8 + i];
    if (s->has_mark && counter <= s->mark) { /* case 11, or a late counter of the window */
        uint64_t behind = s->mark - counter;
        if (behind >= s->window || ((s->seen >> behind) & 1u)) {
            k->replay++;
            return TL_ERR_REPLAY;
        }
        k->slot[f[5]].seen |= (uint64_t)1 << behind;
    } else {
        uint64_t ahead = s->has_mark ? counter - s->mark : 64;
        k->slot[f[5]].seen = ahead >= 64 ? 1u : (s->seen << ahead) | 1u;
        k->slot[f[5]].mark = counter;
        k->slot[f[5]].has_mark = 1;
    }
    k->accepted++;
    return TL_OK;
}

int64_t tl_keyring_pack(const tl_keyring *k, const tl_header *h, const uint8_t *payload, size_t plen,
                        uint8_t *out, size_t cap)
{
    if (k == NULL || h == NULL || !k->slot[h->key_id].present)
        return TL_ERR_ARG;
    return tl_frame_pack(&k->slot[h->key_id].mac, h, payload, plen, out, cap);
}
