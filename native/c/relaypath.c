/* trilink kernel: the relay's receive hot path (relaypath.h). */
#include "relaypath.h"

#include <stddef.h>

#include "smallmat.h"

/* ENU -> ECEF of one 6-state and covariance, with Tt = T^T = diag(R^T, R^T):
 * xe = Tt x + p0, Pe = sym(Tt P T). */
static void to_ecef6(const double Tt[36], const double *p0, const double *x, const double *P,
                     double *xe, double *Pe)
{
    double A[36];
    int j;
    tl_sm_mul(6, 6, 1, Tt, x, xe);
    for (j = 0; j < 3; j++)
        xe[j] += p0[j];
    tl_sm_mul(6, 6, 6, Tt, P, A);
    tl_sm_mul_bt(6, 6, 6, A, Tt, Pe);
    tl_sm_symmetrize(6, Pe);
}

int32_t tl_relay_rx(const uint8_t *in, int32_t len, tl_codec_table *held, tl_track_batch *out,
                    int32_t cap_records, tl_codec_header *hdr, const double *R, const double *p0,
                    double *xe, double *Pe, int32_t *clean)
{
    double Tt[36] = {0};
    int32_t n, i, j, ok = 1;
    if (R == NULL || p0 == NULL || xe == NULL || Pe == NULL || clean == NULL || out == NULL)
        return TL_CODEC_EARG;
    *clean = 0;
    n = tl_codec_decode(in, len, held, out, cap_records, hdr);
    if (n < 0)
        return n;
    for (i = 0; i < 3; i++)
        for (j = 0; j < 3; j++)
            Tt[6 * i + j] = Tt[6 * (i + 3) + j + 3] = R[3 * j + i];
    for (i = 0; i < n; i++) {
        if (out->status[i] != TL_REC_OK || out->rtype[i] == TL_REC_DROP)
            ok = 0;
        if (out->rtype[i] != TL_REC_DROP)
            to_ecef6(Tt, p0, out->x + 6 * (size_t)i, out->P + 36 * (size_t)i, xe + 6 * (size_t)i,
                     Pe + 36 * (size_t)i);
    }
    *clean = ok;
    return n;
}
