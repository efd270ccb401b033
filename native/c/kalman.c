/* trilink kernel: Kalman predict and Joseph-form update (linear, position,
 * range/azimuth/elevation EKF). */
#include "kalman.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "smallmat.h"

#define MX TL_SM_MAX
#define TL_PI 3.14159265358979323846

static int dims_ok(int32_t dx, int32_t dz)
{
    return dx >= 1 && dx <= TL_KF_MAX_X && dz >= 1 && dz <= TL_KF_MAX_Z && dz <= dx;
}

static inline int predict_one(int dx, double *x, double *P, const double *F, const double *Q)
{
    double xw[MX], T[MX * MX], Pw[MX * MX];
    int i;
    if (!tl_sm_finite(x, dx) || !tl_sm_finite(P, dx * dx))
        return TL_TRK_ENONFINITE;
    if (!tl_sm_is_spd(dx, P))
        return TL_TRK_ENOTPD;
    tl_sm_mul(dx, dx, 1, F, x, xw);
    tl_sm_mul(dx, dx, dx, F, P, T);
    tl_sm_mul_bt(dx, dx, dx, T, F, Pw);
    for (i = 0; i < dx * dx; i++)
        Pw[i] += Q[i];
    tl_sm_symmetrize(dx, Pw);
    if (!tl_sm_finite(xw, dx) || !tl_sm_finite(Pw, dx * dx))
        return TL_TRK_ENONFINITE;
    if (!tl_sm_chol_ok(dx, Pw))
        return TL_TRK_ENOTPD;
    memcpy(x, xw, (size_t)dx * sizeof(double));
    memcpy(P, Pw, (size_t)(dx * dx) * sizeof(double));
    return TL_TRK_OK;
}

int32_t tl_kf_predict(int32_t n, int32_t dx, double *x, double *P, const double *F, const double *Q,
                      int32_t *status)
{
    int32_t i, bad = 0;
    if (n < 0 || !dims_ok(dx, 1) || !F || !Q || (n > 0 && (!x || !P || !status)))
        return -1;
    if (!tl_sm_finite(F, dx * dx) || !tl_sm_finite(Q, dx * dx))
        return -1;
    for (i = 0; i < n; i++) {
        status[i] = predict_one(dx, x + dx * i, P + dx * dx * i, F, Q);
        bad += status[i] != TL_TRK_OK;
    }
    return bad;
}

/* Joseph-form update given the innovation y = z - h(x) and its Jacobian H,
 * in FilterPy's order: PHT = P H', S = H PHT + R, K = PHT S^-1, x += K y,
 * P = (I - KH) P (I - KH)' + K R K'. */
static inline int update_core(int dx, int dz, double *x, double *P, const double *y, const double *H,
                       const double *R)
{
    double PHT[MX * MX], S[MX * MX], SI[MX * MX], K[MX * MX], IKH[MX * MX];
    double T[MX * MX], Pw[MX * MX], KR[MX * MX], KRK[MX * MX], xw[MX], Ky[MX];
    int i;
    if (!tl_sm_finite(x, dx) || !tl_sm_finite(P, dx * dx) || !tl_sm_finite(y, dz) ||
        !tl_sm_finite(R, dz * dz))
        return TL_TRK_ENONFINITE;
    if (!tl_sm_is_spd(dx, P) || !tl_sm_is_spd(dz, R))
        return TL_TRK_ENOTPD;
    tl_sm_mul_bt(dx, dx, dz, P, H, PHT);
    tl_sm_mul(dz, dx, dz, H, PHT, S);
    for (i = 0; i < dz * dz; i++)
        S[i] += R[i];
    tl_sm_symmetrize(dz, S);
    if (tl_sm_spd_inv(dz, S, SI) != 0)
        return TL_TRK_ESINGULAR;
    tl_sm_mul(dx, dz, dz, PHT, SI, K);
    tl_sm_mul(dx, dz, 1, K, y, Ky);
    for (i = 0; i < dx; i++)
        xw[i] = x[i] + Ky[i];
    tl_sm_mul(dx, dz, dx, K, H, IKH);
    for (i = 0; i < dx * dx; i++)
        IKH[i] = ((i % (dx + 1)) == 0 ? 1.0 : 0.0) - IKH[i];
    tl_sm_mul(dx, dx, dx, IKH, P, T);
    tl_sm_mul_bt(dx, dx, dx, T, IKH, Pw);
    tl_sm_mul(dx, dz, dz, K, R, KR);
    tl_sm_mul_bt(dx, dz, dx, KR, K, KRK);
    for (i = 0; i < dx * dx; i++)
        Pw[i] += KRK[i];
    tl_sm_symmetrize(dx, Pw);
    if (!tl_sm_finite(xw, dx) || !tl_sm_finite(Pw, dx * dx))
        return TL_TRK_ENONFINITE;
    if (!tl_sm_chol_ok(dx, Pw))
        return TL_TRK_ENOTPD;
    memcpy(x, xw, (size_t)dx * sizeof(double));
    memcpy(P, Pw, (size_t)(dx * dx) * sizeof(double));
    return TL_TRK_OK;
}

static inline int update_linear(int dx, int dz, double *x, double *P, const double *z, const double *H,
                         const double *R)
{
    double hx[MX], y[MX];
    int i;
    if (!tl_sm_finite(z, dz) || !tl_sm_finite(x, dx))
        return TL_TRK_ENONFINITE;
    tl_sm_mul(dz, dx, 1, H, x, hx);
    for (i = 0; i < dz; i++)
        y[i] = z[i] - hx[i];
    return update_core(dx, dz, x, P, y, H, R);
}

int32_t tl_kf_update(int32_t n, int32_t dx, int32_t dz, double *x, double *P, const double *z,
                     const double *H, const double *R, int32_t *status)
{
    int32_t i, bad = 0;
    if (n < 0 || !dims_ok(dx, dz) || !H || (n > 0 && (!x || !P || !z || !R || !status)))
        return -1;
    if (!tl_sm_finite(H, dz * dx))
        return -1;
    for (i = 0; i < n; i++) {
        status[i] = update_linear(dx, dz, x + dx * i, P + dx * dx * i, z + dz * i, H, R + dz * dz * i);
        bad += status[i] != TL_TRK_OK;
    }
    return bad;
}

static const double H_POS[18] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};

int32_t tl_kf_update_pos(int32_t n, double *x, double *P, const double *z, const double *R,
                         int32_t *status)
{
    return tl_kf_update(n, 6, 3, x, P, z, H_POS, R, status);
}

int tl_rae_from_ecef(const double pos[3], const double site_llh[3], double rae[3])
{
    double d[3], rho, s, az;
    if (!tl_sm_finite(pos, 3) || !tl_sm_finite(site_llh, 3))
        return TL_TRK_ENONFINITE;
    tl_ecef_to_enu(pos, site_llh, d);
    s = sqrt(d[0] * d[0] + d[1] * d[1]);
    rho = sqrt(s * s + d[2] * d[2]);
    if (s < 1e-3)
        return TL_TRK_ESINGULAR;
    az = atan2(d[0], d[1]);
    if (az < 0.0)
        az += 2.0 * TL_PI;
    rae[0] = rho;
    rae[1] = az;
    rae[2] = atan2(d[2], s);
    return TL_TRK_OK;
}

static int update_rae(double *x, double *P, const double *z, const double *R, const double *site)
{
    double rae[3], d[3], Rot[9], Henu[9], Hp[9], H[18], y[3];
    double e, nn, u, s2, s, r2;
    int i, j, code;
    if (!tl_sm_finite(z, 3) || !tl_sm_finite(x, 6) || !tl_sm_finite(site, 3))
        return TL_TRK_ENONFINITE;
    code = tl_rae_from_ecef(x, site, rae);
    if (code != TL_TRK_OK)
        return code;
    tl_ecef_to_enu(x, site, d);
    e = d[0];
    nn = d[1];
    u = d[2];
    s2 = e * e + nn * nn;
    s = sqrt(s2);
    r2 = s2 + u * u;
    /* d(range, az, el)/d(e, n, u), then chain through the ENU rotation. */
    Henu[0] = e / rae[0];
    Henu[1] = nn / rae[0];
    Henu[2] = u / rae[0];
    Henu[3] = nn / s2;
    Henu[4] = -e / s2;
    Henu[5] = 0.0;
    Henu[6] = -u * e / (s * r2);
    Henu[7] = -u * nn / (s * r2);
    Henu[8] = s / r2;
    tl_enu_basis(site[0], site[1], Rot);
    tl_sm_mul(3, 3, 3, Henu, Rot, Hp);
    for (i = 0; i < 3; i++)
        for (j = 0; j < 6; j++)
            H[6 * i + j] = j < 3 ? Hp[3 * i + j] : 0.0;
    y[0] = z[0] - rae[0];
    y[1] = remainder(z[1] - rae[1], 2.0 * TL_PI);
    if (y[1] <= -TL_PI)
        y[1] += 2.0 * TL_PI;
    y[2] = z[2] - rae[2];
    return update_core(6, 3, x, P, y, H, R);
}

int32_t tl_kf_update_rae(int32_t n, double *x, double *P, const double *z, const double *R,
                         const double *site_llh, int32_t *status)
{
    int32_t i, bad = 0;
    if (n < 0 || (n > 0 && (!x || !P || !z || !R || !site_llh || !status)))
        return -1;
    for (i = 0; i < n; i++) {
        status[i] = update_rae(x + 6 * i, P + 36 * i, z + 3 * i, R + 9 * i, site_llh + 3 * i);
        bad += status[i] != TL_TRK_OK;
    }
    return bad;
}

int tl_kf_soak(int32_t steps, int32_t dx, int32_t dz, double *x, double *P, const double *F,
               const double *Q, const double *H, const double *R, const double *zs, int32_t nz,
               int32_t check_every, double *worst_asym)
{
    int32_t k;
    int code;
    double worst = 0.0;
    if (steps < 0 || !dims_ok(dx, dz) || nz < 1 || check_every < 1 || !x || !P || !F || !Q || !H ||
        !R || !zs)
        return TL_TRK_EARG;
    for (k = 0; k < steps; k++) {
        code = predict_one(dx, x, P, F, Q);
        if (code == TL_TRK_OK)
            code = update_linear(dx, dz, x, P, zs + (size_t)(k % nz) * (size_t)dz, H, R);
        if (code != TL_TRK_OK)
            return code;
        if ((k + 1) % check_every == 0 || k + 1 == steps) {
            double a = tl_sm_asym(dx, P);
            if (a > worst)
                worst = a;
            if (!tl_sm_is_spd(dx, P))
                return TL_TRK_ENOTPD;
        }
    }
    if (worst_asym)
        *worst_asym = worst;
    return TL_TRK_OK;
}
