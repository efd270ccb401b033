/* trilink kernel: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), the frame
 * tag of PROTOCOL.md section 2.1. No allocation; contexts live with the caller. */
#ifndef TRILINK_SHA256_H
#define TRILINK_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
enum { TL_SHA256_SIZE = 32 }; /* bytes of a digest and of an HMAC-SHA256 */

typedef struct {
    uint32_t h[8];      /* chaining state */
    uint64_t len;       /* bytes absorbed so far */
    uint8_t buf[64];    /* partial block */
    uint32_t nbuf;      /* bytes held in buf */
} tl_sha256_ctx;

/* HMAC key schedule: SHA-256 states after absorbing key^ipad and key^opad, so
 * that each message costs its own blocks plus one outer block. */
typedef struct {
    tl_sha256_ctx inner;
    tl_sha256_ctx outer;
} tl_hmac_key;

void tl_sha256_init(tl_sha256_ctx *c);
void tl_sha256_update(tl_sha256_ctx *c, const uint8_t *data, size_t n);
void tl_sha256_final(tl_sha256_ctx *c, uint8_t out[32]);
/* One shot: out = SHA-256(data[0:n]). */
void tl_sha256(const uint8_t *data, size_t n, uint8_t out[32]);

/* Prepare an HMAC-SHA256 key of any length (longer than 64 bytes is hashed first). */
void tl_hmac_init(tl_hmac_key *k, const uint8_t *key, size_t klen);
/* out = HMAC-SHA256(k, msg[0:n]); k is not modified. */
void tl_hmac_digest(const tl_hmac_key *k, const uint8_t *msg, size_t n, uint8_t out[32]);
/* One shot: out = HMAC-SHA256(key, msg). */
void tl_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t n, uint8_t out[32]);
/* cffi:end */

#endif
