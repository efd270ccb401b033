/* trilink kernel: CRC-32/ISO-HDLC, the CRC of zlib and of frames (PROTOCOL.md section 1). */
#ifndef TRILINK_CRC32_H
#define TRILINK_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
/* Continue a CRC-32 over data[0:n]; start with crc = 0 (like zlib.crc32).
 * tl_crc32(0, "123456789", 9) == 0xCBF43926. */
uint32_t tl_crc32(uint32_t crc, const uint8_t *data, size_t n);
/* cffi:end */

#endif
