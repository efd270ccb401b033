/* trilink kernel: impact point, time and uncertainty; threatened territory. */
#include "impact.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "smallmat.h"

#define TL_PI 3.14159265358979323846
/* chi-square 95% quantile with 2 degrees of freedom: -2 ln(0.05). */
#define CHI2_2_95 5.991464547107979

static int polys_ok(int32_t n_terr, const int32_t *offsets, const double *verts)
{
    int32_t k;
    if (n_terr < 0)
        return 0;
    if (n_terr == 0)
        return 1;
    if (!offsets || !verts || offsets[0] != 0)
        return 0;
    for (k = 0; k < n_terr; k++)
        if (offsets[k + 1] - offsets[k] < 3)
            return 0;
    return tl_sm_finite(verts, 2 * offsets[n_terr]);
}

/* Even-odd ray casting in the (longitude offset, latitude) plane around the
 * point: good for territory-sized polygons away from the poles. */
static int inside(double lat, double lon, const double *v, int32_t nv)
{
    int32_t i, j;
    int in = 0;
    for (i = 0, j = nv - 1; i < nv; j = i++) {
        double yi = v[2 * i], yj = v[2 * j];
        double xi = remainder(v[2 * i + 1] - lon, 2.0 * TL_PI);
        double xj = remainder(v[2 * j + 1] - lon, 2.0 * TL_PI);
        if ((yi > lat) != (yj > lat)) {
            double xc = xi + (xj - xi) * (lat - yi) / (yj - yi);
            if (0.0 < xc)
                in = !in;
        }
    }
    return in;
}

int32_t tl_territory_of(double lat, double lon, int32_t n_terr, const int32_t *offsets,
                        const double *verts)
{
    int32_t k;
    if (!polys_ok(n_terr, offsets, verts))
        return TL_TERRITORY_EMALFORMED;
    if (!isfinite(lat) || !isfinite(lon))
        return TL_TERRITORY_NONE;
    for (k = 0; k < n_terr; k++)
        if (inside(lat, lon, verts + 2 * offsets[k], offsets[k + 1] - offsets[k]))
            return k;
    return TL_TERRITORY_NONE;
}

static double height(const double s[6])
{
    double llh[3];
    if (tl_ecef_to_geo(s, llh) != TL_TRK_OK)
        return NAN;
    return llh[2];
}

/* Height above the ellipsoid after one RK4 step of tau from s0. */
static double height_after(const tl_motion *m, const double s0[6], double tau)
{
    double s[6];
    memcpy(s, s0, sizeof s);
    tl_motion_run(m, s, NULL, NULL, 0, tau);
    return height(s);
}

static int impact_one(const tl_motion *m, const double x[6], const double P[36], double t0,
                      int32_t n_terr, const int32_t *offsets, const double *verts, tl_impact *out)
{
    double s[6], sp[6], Pw[36], llh[3], Rot[9], J[12], JP[12], C[4], a[6], aP[6];
    double h, hp, lo, hi, flo, fhi, tau, nv, vt;
    int64_t k = 0, kmax;
    int i, j, it, side = 0, code;
    if (!isfinite(t0))
        return TL_TRK_ENONFINITE;
    code = tl_motion_check(x, P);
    if (code != TL_TRK_OK)
        return code;
    memcpy(s, x, sizeof s);
    h = height(s);
    if (!(h > 0.0))
        return TL_TRK_ENOIMPACT;
    /* Pass 1, state only: whole steps until the height changes sign. */
    kmax = (int64_t)ceil(TL_IMPACT_MAX_T / m->step);
    for (;;) {
        memcpy(sp, s, sizeof s);
        hp = h;
        tl_motion_run(m, s, NULL, NULL, 1, 0.0);
        h = height(s);
        if (!isfinite(h))
            return TL_TRK_ENONFINITE;
        if (h <= 0.0)
            break;
        if (++k >= kmax)
            return TL_TRK_ENOIMPACT;
    }
    /* Illinois regula falsi on the length of the last step. */
    lo = 0.0;
    flo = hp;
    hi = m->step;
    fhi = h;
    tau = hi;
    for (it = 0; it < 100; it++) {
        double f;
        tau = (lo * fhi - hi * flo) / (fhi - flo);
        f = height_after(m, sp, tau);
        if (!isfinite(f))
            return TL_TRK_ENONFINITE;
        if (fabs(f) < 1e-6 || hi - lo < 1e-12)
            break;
        if (f > 0.0) {
            lo = tau;
            flo = f;
            if (side == -1)
                fhi *= 0.5;
            side = -1;
        } else {
            hi = tau;
            fhi = f;
            if (side == 1)
                flo *= 0.5;
            side = 1;
        }
    }
    /* Pass 2: the same steps with the covariance (bit-identical state). */
    memcpy(s, x, sizeof s);
    memcpy(Pw, P, sizeof Pw);
    tl_motion_run(m, s, Pw, NULL, k, tau);
    if (!tl_sm_finite(s, 6) || !tl_sm_finite(Pw, 36))
        return TL_TRK_ENONFINITE;
    if (tl_ecef_to_geo(s, llh) != TL_TRK_OK)
        return TL_TRK_EARG;
    tl_enu_basis(llh[0], llh[1], Rot);
    /* A position error dr at the nominal time moves the surface crossing by
     * dt = -(n.dr)/(n.v), so the impact point moves by (I - v n'/(n.v)) dr. */
    nv = Rot[6] * s[3] + Rot[7] * s[4] + Rot[8] * s[5];
    vt = sqrt(s[3] * s[3] + s[4] * s[4] + s[5] * s[5]);
    if (!(nv < -1e-6 * vt))
        return TL_TRK_ESINGULAR;
    for (i = 0; i < 2; i++)
        for (j = 0; j < 6; j++) {
            double v = 0.0;
            if (j < 3) {
                double ev = Rot[3 * i] * s[3] + Rot[3 * i + 1] * s[4] + Rot[3 * i + 2] * s[5];
                v = Rot[3 * i + j] - ev * Rot[6 + j] / nv;
            }
            J[6 * i + j] = v;
        }
    for (j = 0; j < 6; j++)
        a[j] = j < 3 ? -Rot[6 + j] / nv : 0.0;
    tl_sm_mul(2, 6, 6, J, Pw, JP);
    tl_sm_mul_bt(2, 6, 2, JP, J, C);
    tl_sm_symmetrize(2, C);
    tl_sm_mul(1, 6, 6, a, Pw, aP);
    {
        double ce = C[0], cen = C[1], cn = C[3];
        double mid = 0.5 * (ce + cn), rad = sqrt(0.25 * (ce - cn) * (ce - cn) + cen * cen);
        double l1 = mid + rad, l2 = mid - rad, th, az, st2 = 0.0;
        th = 0.5 * atan2(2.0 * cen, ce - cn); /* major axis angle from east, ccw */
        az = 0.5 * TL_PI - th;
        while (az < 0.0)
            az += TL_PI;
        while (az >= TL_PI)
            az -= TL_PI;
        for (j = 0; j < 6; j++)
            st2 += aP[j] * a[j];
        out->t_impact = t0 + (double)k * m->step + tau;
        out->lat = llh[0];
        out->lon = llh[1];
        out->ecef[0] = s[0];
        out->ecef[1] = s[1];
        out->ecef[2] = s[2];
        for (j = 0; j < 4; j++)
            out->cov_en[j] = C[j];
        out->semi_major = sqrt(CHI2_2_95 * (l1 > 0.0 ? l1 : 0.0));
        out->semi_minor = sqrt(CHI2_2_95 * (l2 > 0.0 ? l2 : 0.0));
        out->orient = az;
        out->sigma_t = sqrt(st2 > 0.0 ? st2 : 0.0);
        out->territory = tl_territory_of(llh[0], llh[1], n_terr, offsets, verts);
    }
    return TL_TRK_OK;
}

int32_t tl_impact_predict(const struct tl_motion *m, int32_t n, const double *x, const double *P,
                          const double *t0, int32_t n_terr, const int32_t *offsets,
                          const double *verts, tl_impact *out, int32_t *status)
{
    tl_motion tmp;
    int32_t i, bad = 0;
    if (!m) {
        tl_motion_default(&tmp);
        m = &tmp;
    }
    if (n < 0 || !(isfinite(m->step) && m->step > 0.0 && isfinite(m->q) && m->q >= 0.0) ||
        (n > 0 && (!x || !P || !t0 || !out || !status)) || !polys_ok(n_terr, offsets, verts))
        return -1;
    for (i = 0; i < n; i++) {
        tl_impact r;
        memset(&r, 0, sizeof r);
        status[i] = impact_one(m, x + 6 * i, P + 36 * i, t0[i], n_terr, offsets, verts, &r);
        if (status[i] != TL_TRK_OK) { /* a failed track reads as "no impact known" */
            r.t_impact = r.lat = r.lon = r.semi_major = r.semi_minor = r.orient = r.sigma_t = NAN;
            r.ecef[0] = r.ecef[1] = r.ecef[2] = NAN;
            r.cov_en[0] = r.cov_en[1] = r.cov_en[2] = r.cov_en[3] = NAN;
            r.territory = -1;
        }
        out[i] = r;
        bad += status[i] != TL_TRK_OK;
    }
    return bad;
}
