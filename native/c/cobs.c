/* trilink kernel: COBS encode and decode (Cheshire & Baker 1999). */
#include <string.h>

#include "cobs.h"

size_t tl_cobs_max_encoded(size_t n) { return n + 1 + n / 254; }

int64_t tl_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t i = 0, o = 0;
    /* One block per step: up to 254 non-zero bytes, then the code byte. A
     * block is closed by a 0x00 (consumed, implied by a code < 0xFF), by
     * reaching 254 bytes (code 0xFF, nothing implied), or by the end. */
    for (;;) {
        size_t start = i, k;
        while (i < n && src[i] != 0 && i - start < 254)
            i++;
        k = i - start;
        if (o + 1 + k > cap)
            return -1;
        dst[o] = (uint8_t)(k + 1);
        if (k)
            memcpy(dst + o + 1, src + start, k);
        o += 1 + k;
        if (i == n)
            return (int64_t)o; /* after a full block too: no trailing 0x01 */
        if (k < 254)
            i++; /* the 0x00 this block's code implies; an input ending in
                  * 0x00 then gets an empty final block (code 0x01) */
    }
}

int64_t tl_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < n) {
        size_t c = src[i++], k = c - 1;
        if (c == 0 || k > n - i)
            return TL_COBS_EMALFORMED;
        if (o + k > cap)
            return TL_COBS_ESPACE;
        if (k)
            memcpy(dst + o, src + i, k);
        o += k;
        i += k;
        if (c < 255 && i < n) {
            if (o >= cap)
                return TL_COBS_ESPACE;
            dst[o++] = 0;
        }
    }
    return (int64_t)o;
}
