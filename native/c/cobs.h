/* trilink kernel: COBS (Consistent Overhead Byte Stuffing) exactly as
 * PROTOCOL.md section 3.1 defines it, including its one choice: an input that
 * ends with a full 254-byte block ends with that block (no trailing 0x01). */
#ifndef TRILINK_COBS_H
#define TRILINK_COBS_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
enum {
    TL_COBS_EMALFORMED = -1, /* tl_cobs_decode: a code byte 0x00 or pointing past the end */
    TL_COBS_ESPACE = -2      /* tl_cobs_decode: cap too small (tl_cobs_encode returns -1) */
};

/* Largest encoding of n bytes: n + 1 + n / 254. */
size_t tl_cobs_max_encoded(size_t n);
/* Encode src[0:n] into dst[0:cap] (no 0x00 delimiter is added). Returns the
 * encoded length, or -1 if cap is too small (then dst is unspecified).
 * src and dst must not overlap. */
int64_t tl_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);
/* Decode one chunk src[0:n] (the bytes between two 0x00 delimiters) into
 * dst[0:cap]. Returns the decoded length (always < n, or 0 for n == 0), or -1
 * if the chunk is malformed (a code byte 0x00 or pointing past the end) or
 * -2 if cap is too small. A cap of n always suffices. No overlap. */
int64_t tl_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);
/* cffi:end */

#endif
