/* trilink kernel: the frame layer of docs/PROTOCOL.md version 1.
 *
 * A frame is header (16) + payload (0..1024) + tag (8) + CRC-32 (4), all
 * integers little-endian. On serial links it travels COBS-encoded and ended by
 * one 0x00 (cobs.h); on UDP, one frame per datagram.
 *
 * Receiving (PROTOCOL.md section 3.3): the deframer (tl_deframer_*) does
 * cases 1-7 on a byte stream, the keyring (tl_keyring_*) cases 8-11 on one
 * frame, tl_wire_receive both in one call per chunk of bytes. Nothing here
 * allocates; every buffer belongs to the caller.
 *
 * Return codes: TL_OK (0) or a negative TL_ERR_*; functions that produce
 * bytes return the length (>= 0) instead of TL_OK. */
#ifndef TRILINK_WIRE_H
#define TRILINK_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

/* cffi:begin */
enum {
    TL_WIRE_VERSION = 1,
    TL_HEADER_SIZE = 16,
    TL_TAG_SIZE = 8,
    TL_CRC_SIZE = 4,
    TL_OVERHEAD = 28,       /* header + tag + CRC */
    TL_MAX_PAYLOAD = 1024,
    TL_MAX_FRAME = 1052,
    TL_MAX_CHUNK = 1057,    /* MAX_FRAME + 5: the longest COBS encoding of a frame */
    TL_MAX_SERIAL = 1058,   /* ... with its 0x00 delimiter */
    TL_KEY_SIZE = 32,
    TL_BROADCAST = 255,
    TL_FLAG_ACK_REQ = 0x01,
    TL_FLAG_RETRANSMIT = 0x02,
    TL_FLAG_URGENT = 0x04,
    TL_FLAG_RELAY_TIME = 0x08,
    TL_FLAGS_RESERVED = 0xF0,
    TL_COUNTER_BITS = 48    /* the header counter; the largest is 2^48 - 1 */
};

/* Message types (PROTOCOL.md section 4). */
enum {
    TL_MSG_HELLO = 0x01,
    TL_MSG_HEARTBEAT = 0x02,
    TL_MSG_TIME_SYNC_REQ = 0x03,
    TL_MSG_TIME_SYNC_RESP = 0x04,
    TL_MSG_TRACK_REPORT = 0x10,
    TL_MSG_PICTURE = 0x11,
    TL_MSG_KEYFRAME_REQ = 0x12,
    TL_MSG_WARNING = 0x20,
    TL_MSG_WARNING_ACK = 0x21,
    TL_MSG_STATS = 0x30,
    TL_MSG_DELIVERY = 0x31
};

/* Return codes. The first six are the counters of PROTOCOL.md section 3.3. */
enum {
    TL_OK = 0,
    TL_ERR_CRC = -1,        /* crc_error */
    TL_ERR_MALFORMED = -2,  /* malformed */
    TL_ERR_OVERSIZE = -3,   /* oversize */
    TL_ERR_AUTH = -4,       /* auth_fail */
    TL_ERR_REPLAY = -5,     /* replay */
    TL_ERR_WRONG_LINK = -6, /* wrong_link */
    TL_ERR_ARG = -7,        /* an argument out of range (a field, a key, a NULL) */
    TL_ERR_SPACE = -8       /* the output buffer is too small */
};

typedef struct {
    uint8_t version;
    uint8_t flags;
    uint8_t src;
    uint8_t dst;
    uint8_t type;
    uint8_t key_id;
    uint16_t seq;
    uint64_t counter;  /* 48 bits */
    uint16_t length;   /* payload length */
} tl_header;

/* Write h as the 16 header bytes (every field as given, counter cut to 48 bits). */
void tl_header_pack(const tl_header *h, uint8_t *out16);
/* Read 16 header bytes into h (no checks). */
void tl_header_unpack(const uint8_t *in16, tl_header *h);

/* Check one raw frame f[0:n] (a decoded chunk or a UDP datagram) for cases
 * 3-7: TL_OK, TL_ERR_MALFORMED or TL_ERR_CRC. On TL_OK and h != NULL, *h is
 * its header. The tag is not checked here (tl_keyring_verify). */
int32_t tl_frame_parse(const uint8_t *f, size_t n, tl_header *h);

/* Build a frame: h's fields (version is written as 1, length as plen), the
 * payload, the tag under key, the CRC. Returns the frame length 28 + plen, or
 * TL_ERR_ARG (plen > 1024, reserved flags, src 255, key_id 0, counter over
 * 48 bits, NULL) or TL_ERR_SPACE (cap < 28 + plen). */
int64_t tl_frame_pack(const tl_hmac_key *key, const tl_header *h, const uint8_t *payload, size_t plen,
                      uint8_t *out, size_t cap);

/* Serial form of a frame: COBS(f) followed by 0x00. Returns its length, or
 * TL_ERR_SPACE. cap >= n + 2 + n / 254 always suffices. */
int64_t tl_serial_encode(const uint8_t *f, size_t n, uint8_t *out, size_t cap);

/* ---- stream deframer: cases 1-7 ---- */
typedef struct {
    uint64_t frames;     /* frames delivered (passed cases 1-7) */
    uint64_t oversize;   /* case 1, once per run of more than 1057 bytes */
    uint64_t malformed;  /* cases 2, 3, 5, 6, 7 */
    uint64_t crc_error;  /* case 4 */
    uint32_t n;          /* bytes of the current chunk held in buf */
    uint32_t drop;       /* 1 while discarding an oversize run up to the next 0x00 */
    uint8_t buf[1057];   /* TL_MAX_CHUNK */
} tl_deframer;

/* Where one delivered frame sits in the caller's output arena. */
typedef struct {
    uint32_t offset;
    uint32_t length;
    int32_t status;      /* TL_OK, or (tl_wire_receive only) the verifier's TL_ERR_* */
} tl_frame_ref;

/* Zero the counters and the state. */
void tl_deframer_init(tl_deframer *d);
/* Forget a partial chunk (counters kept), e.g. after a port was reopened. */
void tl_deframer_reset(tl_deframer *d);

/* Feed data[0:n]. Every frame completed by these bytes that passes cases 1-7
 * is decoded into out[0:cap] back to back and described by refs[i]; the
 * return value is their number (or TL_ERR_ARG). *consumed tells how many
 * bytes were used: fewer than n only when out or refs were full, then call
 * again with the rest. Requires cap >= TL_MAX_CHUNK and max_refs >= 1. */
int32_t tl_deframer_feed(tl_deframer *d, const uint8_t *data, size_t n, size_t *consumed,
                         uint8_t *out, size_t cap, tl_frame_ref *refs, uint32_t max_refs);

/* ---- keyring and verifier: cases 8-11 ---- */
typedef struct {
    tl_hmac_key mac;     /* the 32-byte pair key, prepared */
    uint64_t mark;       /* highest counter accepted, valid when has_mark */
    uint64_t seen;       /* bit i: counter mark - i accepted (bit 0 is the mark itself) */
    uint8_t present;     /* this key_id is known */
    uint8_t node;        /* the board node the key is bound to */
    uint8_t has_mark;
    uint8_t window;      /* 0: strict (counter > mark); 1..64: below the mark by less than this, once */
} tl_key_slot;

typedef struct {
    uint64_t accepted;   /* frames that passed cases 8-11 */
    uint64_t wrong_link; /* case 8 */
    uint64_t auth_fail;  /* cases 9 and 10 */
    uint64_t replay;     /* case 11 */
    uint32_t node;       /* the receiver's own node id */
    tl_key_slot slot[256]; /* by key_id; slot 0 is never present */
} tl_keyring;

/* Empty keyring of the receiver with node id `node`. */
void tl_keyring_init(tl_keyring *k, uint8_t node);
/* Know key_id (1..255) as the key[0:klen] (klen == 32) of board `node`.
 * Replacing a key keeps its high-water mark. TL_OK or TL_ERR_ARG. */
int32_t tl_keyring_add(tl_keyring *k, uint8_t key_id, uint8_t node, const uint8_t *key, size_t klen);
/* Forget a key (and its mark). TL_OK or TL_ERR_ARG. */
int32_t tl_keyring_remove(tl_keyring *k, uint8_t key_id);
/* Restore a persisted high-water mark (<= 2^48 - 1) for key_id 1..255;
 * every counter at or below it then counts as accepted (the window too). */
int32_t tl_keyring_set_mark(tl_keyring *k, uint8_t key_id, uint64_t mark);
/* The replay window of key_id (PROTOCOL.md 3.2): 0 (the default) accepts
 * only counters above the mark; w in 1..64 also accepts, once each, a
 * counter below the mark by less than w (a datagram link that reorders),
 * as IPsec's anti-replay bitmap does. TL_OK or TL_ERR_ARG. */
int32_t tl_keyring_set_window(tl_keyring *k, uint8_t key_id, uint32_t window);
/* 1 and *mark if key_id has a mark, 0 if none, TL_ERR_ARG for key_id 0. */
int32_t tl_keyring_get_mark(const tl_keyring *k, uint8_t key_id, uint64_t *mark);

/* Cases 8-11 on a frame that passed tl_frame_parse; link_mask is 32 bytes,
 * bit (node & 7) of byte (node >> 3) set for each node configured on the
 * link the frame came in on. Returns TL_OK (and raises the key's mark, or
 * marks a counter of its window accepted) or
 * TL_ERR_WRONG_LINK / TL_ERR_AUTH / TL_ERR_REPLAY (counted), or
 * TL_ERR_MALFORMED, uncounted, if f is not a well-formed frame. The tag is
 * compared in constant time. */
int32_t tl_keyring_verify(tl_keyring *k, const uint8_t *f, size_t n, const uint8_t *link_mask);

/* tl_frame_pack with the keyring's key h->key_id (TL_ERR_ARG if unknown). */
int64_t tl_keyring_pack(const tl_keyring *k, const tl_header *h, const uint8_t *payload, size_t plen,
                        uint8_t *out, size_t cap);

/* Deframe and verify in one call (the relay's hot path): as
 * tl_deframer_feed, and each delivered frame is then verified with
 * tl_keyring_verify; refs[i].status is its result (frames failing 8-11 are
 * still delivered, with their status, so the caller can react to a replay). */
int32_t tl_wire_receive(tl_deframer *d, tl_keyring *k, const uint8_t *link_mask, const uint8_t *data,
                        size_t n, size_t *consumed, uint8_t *out, size_t cap, tl_frame_ref *refs,
                        uint32_t max_refs);
/* cffi:end */

#endif
