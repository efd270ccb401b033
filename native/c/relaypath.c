/* trilink kernel: the relay's receive hot path (relaypath.h). */
#include "relaypath.h"

#include <stddef.h>

/* ENU -> ECEF of one 6-state and covariance: T = diag(R, R). */
static void to_ecef6(const double *R, const double *p0, const double *x, const double *P,
                     double *xe, double *Pe)
{
    double A[36];   /* A = P T (row-major), then Pe = T^T A */
    int i, j, k;
    for (j = 0; j < 3; j++) {
        /* (T^T x)_j = sum_i T[i][j] x_i over each 3-block */
        xe[j] = R[0 * 3 + j] * x[0] + R[1 * 3 + j] * x[1] + R[2 * 3 + j] * x[2] + p0[j];
        xe[3 + j] = R[0 * 3 + j] * x[3] + R[1 * 3 + j] * x[4] + R[2 * 3 + j] * x[5];
    }
    for (i = 0; i < 6; i++) {
        for (j = 0; j < 6; j++) {
            int jb = j / 3 * 3, jc = j % 3;
            double s = 0.0;
            for (k = 0; k < 3; k++)
                s += P[6 * i + jb + k] * R[3 * k + jc];
            A[6 * i + j] = s;
        }
    }
    for (i = 0; i < 6; i++) {
        int ib = i / 3 * 3, ic = i % 3;
        for (j = 0; j < 6; j++) {
            double s = 0.0;
            for (k = 0; k < 3; k++)
                s += R[3 * k + ic] * A[6 * (ib + k) + j];
            Pe[6 * i + j] = s;
        }
    }
    for (i = 0; i < 6; i++) {
        for (j = 0; j < i; j++) {
            double m = 0.5 * (Pe[6 * i + j] + Pe[6 * j + i]);
            Pe[6 * i + j] = m;
            Pe[6 * j + i] = m;
        }
    }
}

int32_t tl_relay_rx(const uint8_t *in, int32_t len, tl_codec_table *held, tl_track_batch *out,
                    int32_t cap_records, tl_codec_header *hdr, const double *R, const double *p0,
                    double *xe, double *Pe, int32_t *clean)
{
    int32_t n, i, ok = 1;
    if (R == NULL || p0 == NULL || xe == NULL || Pe == NULL || clean == NULL || out == NULL)
        return TL_CODEC_EARG;
    *clean = 0;
    n = tl_codec_decode(in, len, held, out, cap_records, hdr);
    if (n < 0)
        return n;
    for (i = 0; i < n; i++) {
        if (out->status[i] != TL_REC_OK || out->rtype[i] == TL_REC_DROP)
            ok = 0;
        if (out->rtype[i] != TL_REC_DROP)
            to_ecef6(R, p0, out->x + 6 * (size_t)i, out->P + 36 * (size_t)i, xe + 6 * (size_t)i,
                     Pe + 36 * (size_t)i);
    }
    *clean = ok;
    return n;
}
