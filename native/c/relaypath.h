/* trilink kernel: the relay's receive hot path in one call (issue 13).
 *
 * tl_relay_rx decodes one verified TRACK_REPORT payload into a batch the
 * caller allocated once (CODEC_MAX_RECORDS records, reused for every frame)
 * and, in the same call, rotates every record's local ENU state and
 * covariance into ECEF around the source's origin (the Frame6.to_ecef of
 * edge/pipeline.py: xe = T^T x + p0, Pe = sym(T^T P T), T = diag(R, R) with
 * enu = R (ecef - p0)). Nothing is allocated; the Python side only slices
 * the preallocated arrays. "clean" tells the usual frame (every record
 * TL_REC_OK and none a DROP) from one that needs the slow bookkeeping.
 *
 * Return codes: the record count >= 0, or a negative TL_CODEC_E* of
 * tl_codec_decode (held is then unchanged). */
#ifndef TRILINK_RELAYPATH_H
#define TRILINK_RELAYPATH_H

#include <stdint.h>

#include "codec.h"

/* cffi:begin */
/* R: 3x3 row-major ENU rotation of the source, p0: its origin in ECEF (m).
 * out: arrays of cap_records; xe[6*cap], Pe[36*cap] receive the ECEF
 * states and symmetric covariances of the records decoded. */
int32_t tl_relay_rx(const uint8_t *in, int32_t len, tl_codec_table *held, tl_track_batch *out,
                    int32_t cap_records, tl_codec_header *hdr, const double *R, const double *p0,
                    double *xe, double *Pe, int32_t *clean);
/* cffi:end */

#endif
