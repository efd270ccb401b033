/* trilink kernel: WGS-84 geodetic, ECEF and local ENU conversions. */
#include "geo.h"

#include <math.h>
#include <stddef.h>

#define A_ TL_WGS84_A
#define F_ TL_WGS84_F
#define B_ (A_ * (1.0 - F_))
#define E2_ (F_ * (2.0 - F_))

static int finite3(const double v[3])
{
    return isfinite(v[0]) && isfinite(v[1]) && isfinite(v[2]);
}

void tl_geo_to_ecef(const double llh[3], double ecef[3])
{
    double sl = sin(llh[0]), cl = cos(llh[0]);
    double n = A_ / sqrt(1.0 - E2_ * sl * sl);
    ecef[0] = (n + llh[2]) * cl * cos(llh[1]);
    ecef[1] = (n + llh[2]) * cl * sin(llh[1]);
    ecef[2] = (n * (1.0 - E2_) + llh[2]) * sl;
}

int tl_ecef_to_geo(const double ecef[3], double llh[3])
{
    /* Heikkinen (1982) closed form; the height is then recomputed with the
     * form that stays exact near the poles (no division by cos(lat)). */
    const double x = ecef[0], y = ecef[1], z = ecef[2];
    const double a2 = A_ * A_, b2 = B_ * B_;
    const double ep2 = (a2 - b2) / b2;
    double p, F, G, c, s, k, Pq, Q, r0, V, z0, lat, sl, cl, t;
    if (!finite3(ecef))
        return TL_TRK_ENONFINITE;
    p = sqrt(x * x + y * y);
    if (sqrt(p * p + z * z) < 1000.0)
        return TL_TRK_EARG;
    F = 54.0 * b2 * z * z;
    G = p * p + (1.0 - E2_) * z * z - E2_ * (a2 - b2);
    c = E2_ * E2_ * F * p * p / (G * G * G);
    s = cbrt(1.0 + c + sqrt(c * c + 2.0 * c));
    k = s + 1.0 + 1.0 / s;
    Pq = F / (3.0 * k * k * G * G);
    Q = sqrt(1.0 + 2.0 * E2_ * E2_ * Pq);
    t = 0.5 * a2 * (1.0 + 1.0 / Q) - Pq * (1.0 - E2_) * z * z / (Q * (1.0 + Q)) - 0.5 * Pq * p * p;
    r0 = -(Pq * E2_ * p) / (1.0 + Q) + sqrt(t > 0.0 ? t : 0.0);
    V = sqrt((p - E2_ * r0) * (p - E2_ * r0) + (1.0 - E2_) * z * z);
    z0 = b2 * z / (A_ * V);
    lat = atan2(z + ep2 * z0, p);
    sl = sin(lat);
    cl = cos(lat);
    llh[0] = lat;
    llh[1] = atan2(y, x);
    llh[2] = p * cl + z * sl - A_ * sqrt(1.0 - E2_ * sl * sl);
    return TL_TRK_OK;
}

void tl_enu_basis(double lat, double lon, double R[9])
{
    double sl = sin(lat), cl = cos(lat), so = sin(lon), co = cos(lon);
    R[0] = -so;      R[1] = co;       R[2] = 0.0;
    R[3] = -sl * co; R[4] = -sl * so; R[5] = cl;
    R[6] = cl * co;  R[7] = cl * so;  R[8] = sl;
}

void tl_ecef_to_enu(const double ecef[3], const double origin_llh[3], double enu[3])
{
    double o[3], R[9], d[3];
    int i;
    tl_geo_to_ecef(origin_llh, o);
    tl_enu_basis(origin_llh[0], origin_llh[1], R);
    for (i = 0; i < 3; i++)
        d[i] = ecef[i] - o[i];
    for (i = 0; i < 3; i++)
        enu[i] = R[3 * i] * d[0] + R[3 * i + 1] * d[1] + R[3 * i + 2] * d[2];
}

void tl_enu_to_ecef(const double enu[3], const double origin_llh[3], double ecef[3])
{
    double o[3], R[9];
    int i;
    tl_geo_to_ecef(origin_llh, o);
    tl_enu_basis(origin_llh[0], origin_llh[1], R);
    for (i = 0; i < 3; i++)
        ecef[i] = o[i] + R[i] * enu[0] + R[3 + i] * enu[1] + R[6 + i] * enu[2];
}

static void set_nan3(double v[3])
{
    v[0] = v[1] = v[2] = NAN;
}

static int32_t finish(int32_t *status, int32_t i, int code, double *out3)
{
    if (status)
        status[i] = code;
    if (code != TL_TRK_OK) {
        set_nan3(out3);
        return 1;
    }
    return 0;
}

int32_t tl_geo_to_ecef_n(int32_t n, const double *llh, double *ecef, int32_t *status)
{
    int32_t i, bad = 0;
    if (n < 0 || (n > 0 && (!llh || !ecef)))
        return -1;
    for (i = 0; i < n; i++) {
        int code = finite3(llh + 3 * i) ? TL_TRK_OK : TL_TRK_ENONFINITE;
        if (code == TL_TRK_OK)
            tl_geo_to_ecef(llh + 3 * i, ecef + 3 * i);
        bad += finish(status, i, code, ecef + 3 * i);
    }
    return bad;
}

int32_t tl_ecef_to_geo_n(int32_t n, const double *ecef, double *llh, int32_t *status)
{
    int32_t i, bad = 0;
    if (n < 0 || (n > 0 && (!llh || !ecef)))
        return -1;
    for (i = 0; i < n; i++) {
        int code = tl_ecef_to_geo(ecef + 3 * i, llh + 3 * i);
        bad += finish(status, i, code, llh + 3 * i);
    }
    return bad;
}

int32_t tl_ecef_to_enu_n(int32_t n, const double *ecef, const double origin_llh[3], double *enu,
                         int32_t *status)
{
    int32_t i, bad = 0;
    if (n < 0 || !origin_llh || (n > 0 && (!enu || !ecef)))
        return -1;
    for (i = 0; i < n; i++) {
        int code = (finite3(ecef + 3 * i) && finite3(origin_llh)) ? TL_TRK_OK : TL_TRK_ENONFINITE;
        if (code == TL_TRK_OK)
            tl_ecef_to_enu(ecef + 3 * i, origin_llh, enu + 3 * i);
        bad += finish(status, i, code, enu + 3 * i);
    }
    return bad;
}

int32_t tl_enu_to_ecef_n(int32_t n, const double *enu, const double origin_llh[3], double *ecef,
                         int32_t *status)
{
    int32_t i, bad = 0;
    if (n < 0 || !origin_llh || (n > 0 && (!enu || !ecef)))
        return -1;
    for (i = 0; i < n; i++) {
        int code = (finite3(enu + 3 * i) && finite3(origin_llh)) ? TL_TRK_OK : TL_TRK_ENONFINITE;
        if (code == TL_TRK_OK)
            tl_enu_to_ecef(enu + 3 * i, origin_llh, ecef + 3 * i);
        bad += finish(status, i, code, ecef + 3 * i);
    }
    return bad;
}
