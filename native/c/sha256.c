/* trilink kernel: SHA-256 and HMAC-SHA256, portable C99.
 * Words are read and written byte by byte (big-endian per FIPS 180-4), so
 * there are no alignment or endianness assumptions. */
#include <string.h>

#include "sha256.h"

static const uint32_t K[64] = {
    0x428a2f98UL, 0x71374491UL, 0xb5c0fbcfUL, 0xe9b5dba5UL, 0x3956c25bUL, 0x59f111f1UL, 0x923f82a4UL, 0xab1c5ed5UL,
    0xd807aa98UL, 0x12835b01UL, 0x243185beUL, 0x550c7dc3UL, 0x72be5d74UL, 0x80deb1feUL, 0x9bdc06a7UL, 0xc19bf174UL,
    0xe49b69c1UL, 0xefbe4786UL, 0x0fc19dc6UL, 0x240ca1ccUL, 0x2de92c6fUL, 0x4a7484aaUL, 0x5cb0a9dcUL, 0x76f988daUL,
    0x983e5152UL, 0xa831c66dUL, 0xb00327c8UL, 0xbf597fc7UL, 0xc6e00bf3UL, 0xd5a79147UL, 0x06ca6351UL, 0x14292967UL,
    0x27b70a85UL, 0x2e1b2138UL, 0x4d2c6dfcUL, 0x53380d13UL, 0x650a7354UL, 0x766a0abbUL, 0x81c2c92eUL, 0x92722c85UL,
    0xa2bfe8a1UL, 0xa81a664bUL, 0xc24b8b70UL, 0xc76c51a3UL, 0xd192e819UL, 0xd6990624UL, 0xf40e3585UL, 0x106aa070UL,
    0x19a4c116UL, 0x1e376c08UL, 0x2748774cUL, 0x34b0bcb5UL, 0x391c0cb3UL, 0x4ed8aa4aUL, 0x5b9cca4fUL, 0x682e6ff3UL,
    0x748f82eeUL, 0x78a5636fUL, 0x84c87814UL, 0x8cc70208UL, 0x90befffaUL, 0xa4506cebUL, 0xbef9a3f7UL, 0xc67178f2UL,
};

/* 32-bit rotate; the cast keeps it right should uint32_t ever promote to a
 * wider int (it does not on our targets, and costs nothing). */
#define ROR(x, r) ((uint32_t)(((x) >> (r)) | ((x) << (32 - (r)))))

static void compress(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) | ((uint32_t)p[4 * i + 2] << 8) |
               (uint32_t)p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void tl_sha256_init(tl_sha256_ctx *c)
{
    static const uint32_t iv[8] = {0x6a09e667UL, 0xbb67ae85UL, 0x3c6ef372UL, 0xa54ff53aUL,
                                   0x510e527fUL, 0x9b05688cUL, 0x1f83d9abUL, 0x5be0cd19UL};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->nbuf = 0;
}

void tl_sha256_update(tl_sha256_ctx *c, const uint8_t *data, size_t n)
{
    if (n == 0)
        return; /* data may be NULL then */
    c->len += n;
    if (c->nbuf) {
        size_t take = 64 - c->nbuf;
        if (take > n)
            take = n;
        memcpy(c->buf + c->nbuf, data, take);
        c->nbuf += (uint32_t)take;
        data += take;
        n -= take;
        if (c->nbuf < 64)
            return;
        compress(c->h, c->buf);
        c->nbuf = 0;
    }
    while (n >= 64) {
        compress(c->h, data);
        data += 64;
        n -= 64;
    }
    if (n) {
        memcpy(c->buf, data, n);
        c->nbuf = (uint32_t)n;
    }
}

void tl_sha256_final(tl_sha256_ctx *c, uint8_t out[32])
{
    uint64_t bits = c->len * 8u;
    int i;
    c->buf[c->nbuf++] = 0x80;
    if (c->nbuf > 56) {
        memset(c->buf + c->nbuf, 0, 64 - c->nbuf);
        compress(c->h, c->buf);
        c->nbuf = 0;
    }
    memset(c->buf + c->nbuf, 0, 56 - c->nbuf);
    for (i = 0; i < 8; i++)
        c->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    compress(c->h, c->buf);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void tl_sha256(const uint8_t *data, size_t n, uint8_t out[32])
{
    tl_sha256_ctx c;
    tl_sha256_init(&c);
    tl_sha256_update(&c, data, n);
    tl_sha256_final(&c, out);
}

void tl_hmac_init(tl_hmac_key *k, const uint8_t *key, size_t klen)
{
    uint8_t block[64], pad[64];
    int i;
    memset(block, 0, sizeof block);
    if (klen > 64)
        tl_sha256(key, klen, block);
    else if (klen)
        memcpy(block, key, klen);
    for (i = 0; i < 64; i++)
        pad[i] = (uint8_t)(block[i] ^ 0x36);
    tl_sha256_init(&k->inner);
    tl_sha256_update(&k->inner, pad, 64);
    for (i = 0; i < 64; i++)
        pad[i] = (uint8_t)(block[i] ^ 0x5c);
    tl_sha256_init(&k->outer);
    tl_sha256_update(&k->outer, pad, 64);
}

void tl_hmac_digest(const tl_hmac_key *k, const uint8_t *msg, size_t n, uint8_t out[32])
{
    tl_sha256_ctx c = k->inner;
    uint8_t inner[32];
    tl_sha256_update(&c, msg, n);
    tl_sha256_final(&c, inner);
    c = k->outer;
    tl_sha256_update(&c, inner, 32);
    tl_sha256_final(&c, out);
}

void tl_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t n, uint8_t out[32])
{
    tl_hmac_key k;
    tl_hmac_init(&k, key, klen);
    tl_hmac_digest(&k, msg, n, out);
}
