/* trilink kernel: ECEF ballistic motion model, RK4 with the exact Jacobian of
 * each RK4 step (the variational equations discretised by the same RK4
 * stages), and white-acceleration process noise. */
#include "motion.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "smallmat.h"

#define MU_ TL_WGS84_GM
#define RE_ TL_WGS84_A
#define W_ TL_WGS84_OMEGA

void tl_motion_default(tl_motion *m)
{
    m->q = TL_MOTION_Q_DEFAULT;
    m->step = TL_MOTION_STEP_DEFAULT;
    m->j2 = 1;
}

static const tl_motion *cfg(const tl_motion *m, tl_motion *tmp)
{
    if (m)
        return m;
    tl_motion_default(tmp);
    return tmp;
}

static int cfg_ok(const tl_motion *m)
{
    return isfinite(m->step) && m->step > 0.0 && isfinite(m->q) && m->q >= 0.0;
}

/* ds = d/dt [r, v]: gravity (+J2) plus the rotating-frame terms
 * a = g(r) - 2 w x v - w x (w x r) with w = (0, 0, W_). */
static void deriv(const tl_motion *m, const double s[6], double ds[6])
{
    double x = s[0], y = s[1], z = s[2];
    double r2 = x * x + y * y + z * z, r = sqrt(r2);
    double k = -MU_ / (r2 * r);
    double gx = k * x, gy = k * y, gz = k * z;
    if (m->j2) {
        double c = -1.5 * TL_WGS84_J2 * MU_ * RE_ * RE_ / (r2 * r2 * r);
        double q = 5.0 * z * z / r2;
        gx += c * x * (1.0 - q);
        gy += c * y * (1.0 - q);
        gz += c * z * (3.0 - q);
    }
    ds[0] = s[3];
    ds[1] = s[4];
    ds[2] = s[5];
    ds[3] = gx + W_ * W_ * x + 2.0 * W_ * s[4];
    ds[4] = gy + W_ * W_ * y - 2.0 * W_ * s[3];
    ds[5] = gz;
}

int32_t tl_motion_jacobi(const tl_motion *m, int32_t n, const double *x, double *out)
{
    tl_motion tmp;
    const tl_motion *mm = cfg(m, &tmp);
    if (n < 0 || (n > 0 && (x == NULL || out == NULL)) || !cfg_ok(mm))
        return -1;
    for (int32_t i = 0; i < n; i++) {
        const double *s = x + 6 * (size_t)i;
        double r2 = s[0] * s[0] + s[1] * s[1] + s[2] * s[2], r = sqrt(r2);
        /* U = -MU/r, plus MU J2 RE^2 (3 z^2/r^2 - 1) / (2 r^3): the
         * potential whose gradient deriv() uses (g = -grad U). */
        double u = -MU_ / r;
        if (mm->j2)
            u += MU_ * TL_WGS84_J2 * RE_ * RE_ * (3.0 * s[2] * s[2] / r2 - 1.0) / (2.0 * r2 * r);
        double v2 = s[3] * s[3] + s[4] * s[4] + s[5] * s[5];
        out[i] = 0.5 * v2 + u - 0.5 * W_ * W_ * (s[0] * s[0] + s[1] * s[1]);
    }
    return 0;
}

void tl_motion_accel(const tl_motion *m, const double x[6], double a[3])
{
    tl_motion tmp;
    double ds[6];
    deriv(cfg(m, &tmp), x, ds);
    a[0] = ds[3];
    a[1] = ds[4];
    a[2] = ds[5];
}

/* G = d(acceleration)/d(position): gravity gradient (+J2) + centrifugal. */
static void grad(const tl_motion *m, const double s[6], double G[9])
{
    double x = s[0], y = s[1], z = s[2], p[3];
    double r2 = x * x + y * y + z * z, r = sqrt(r2);
    double k = -MU_ / (r2 * r);
    int i, j;
    p[0] = x;
    p[1] = y;
    p[2] = z;
    for (i = 0; i < 3; i++)
        for (j = 0; j < 3; j++)
            G[3 * i + j] = k * ((i == j ? 1.0 : 0.0) - 3.0 * p[i] * p[j] / r2);
    if (m->j2) {
        double c = -1.5 * TL_WGS84_J2 * MU_ * RE_ * RE_;
        double r5 = 1.0 / (r2 * r2 * r), r7 = r5 / r2, r9 = r7 / r2, z2 = z * z;
        double gxy = c * (-5.0 * x * y * r7 + 35.0 * x * y * z2 * r9);
        double gxz = c * (-15.0 * x * z * r7 + 35.0 * x * z * z2 * r9);
        double gyz = c * (-15.0 * y * z * r7 + 35.0 * y * z * z2 * r9);
        G[0] += c * (r5 - 5.0 * x * x * r7 - 5.0 * z2 * r7 + 35.0 * x * x * z2 * r9);
        G[4] += c * (r5 - 5.0 * y * y * r7 - 5.0 * z2 * r7 + 35.0 * y * y * z2 * r9);
        G[8] += c * (3.0 * r5 - 30.0 * z2 * r7 + 35.0 * z2 * z2 * r9);
        G[1] += gxy;
        G[3] += gxy;
        G[2] += gxz;
        G[6] += gxz;
        G[5] += gyz;
        G[7] += gyz;
    }
    G[0] += W_ * W_;
    G[4] += W_ * W_;
}

/* out = A in, A = [[0, I], [G, C]], C the Coriolis matrix; in, out 6x6. */
static void apply_a(const double G[9], const double *in, double *out)
{
    int i, j;
    memcpy(out, in + 18, 18 * sizeof(double));
    for (i = 0; i < 3; i++)
        for (j = 0; j < 6; j++)
            out[18 + 6 * i + j] = G[3 * i] * in[j] + G[3 * i + 1] * in[6 + j] + G[3 * i + 2] * in[12 + j];
    for (j = 0; j < 6; j++) {
        out[18 + j] += 2.0 * W_ * in[24 + j];
        out[24 + j] -= 2.0 * W_ * in[18 + j];
    }
}

/* One RK4 step of length h on s, in place. If Phi is not NULL it receives
 * the Jacobian of this RK4 step d s_new / d s_old (exact for the discrete
 * map, so the covariance follows the same numbers as the state). The state
 * arithmetic does not depend on Phi, so state-only and full propagation
 * give bit-identical states. */
static void rk4(const tl_motion *m, double s[6], double h, double *Phi)
{
    double k1[6], k2[6], k3[6], k4[6], t2[6], t3[6], t4[6];
    int i;
    deriv(m, s, k1);
    for (i = 0; i < 6; i++)
        t2[i] = s[i] + 0.5 * h * k1[i];
    deriv(m, t2, k2);
    for (i = 0; i < 6; i++)
        t3[i] = s[i] + 0.5 * h * k2[i];
    deriv(m, t3, k3);
    for (i = 0; i < 6; i++)
        t4[i] = s[i] + h * k3[i];
    deriv(m, t4, k4);
    if (Phi) {
        double G[9], F1[36], F2[36], F3[36], F4[36], M[36];
        grad(m, s, G);
        for (i = 0; i < 36; i++)
            M[i] = (i % 7 == 0) ? 1.0 : 0.0;
        apply_a(G, M, F1);
        grad(m, t2, G);
        for (i = 0; i < 36; i++)
            M[i] = ((i % 7 == 0) ? 1.0 : 0.0) + 0.5 * h * F1[i];
        apply_a(G, M, F2);
        grad(m, t3, G);
        for (i = 0; i < 36; i++)
            M[i] = ((i % 7 == 0) ? 1.0 : 0.0) + 0.5 * h * F2[i];
        apply_a(G, M, F3);
        grad(m, t4, G);
        for (i = 0; i < 36; i++)
            M[i] = ((i % 7 == 0) ? 1.0 : 0.0) + h * F3[i];
        apply_a(G, M, F4);
        for (i = 0; i < 36; i++)
            Phi[i] = ((i % 7 == 0) ? 1.0 : 0.0) + h / 6.0 * (F1[i] + 2.0 * F2[i] + 2.0 * F3[i] + F4[i]);
    }
    for (i = 0; i < 6; i++)
        s[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
}

/* P += Q(h) for white acceleration of density q on each axis. */
static void add_q(double P[36], double q, double h)
{
    int i;
    double a = q * h * h * h / 3.0, b = q * h * h / 2.0, c = q * h;
    for (i = 0; i < 3; i++) {
        P[7 * i] += a;
        P[6 * i + i + 3] += b;
        P[6 * (i + 3) + i] += b;
        P[7 * (i + 3)] += c;
    }
}

void tl_motion_run(const tl_motion *m, double s[6], double *P, double *Phi_tot, int64_t nfull,
                   double tail)
{
    double Ph[36], T[36], U[36];
    int64_t k;
    int need = (P != NULL) || (Phi_tot != NULL);
    int i;
    if (Phi_tot)
        for (i = 0; i < 36; i++)
            Phi_tot[i] = (i % 7 == 0) ? 1.0 : 0.0;
    for (k = 0; k <= nfull; k++) {
        double h = (k < nfull) ? m->step : tail;
        if (!(h > 0.0))
            break;
        rk4(m, s, h, need ? Ph : NULL);
        if (P) {
            tl_sm_mul(6, 6, 6, Ph, P, T);
            tl_sm_mul_bt(6, 6, 6, T, Ph, P);
            add_q(P, m->q, h);
            tl_sm_symmetrize(6, P);
        }
        if (Phi_tot) {
            tl_sm_mul(6, 6, 6, Ph, Phi_tot, U);
            memcpy(Phi_tot, U, sizeof U);
        }
    }
}

/* Validate a track's state (and covariance when given). */
int tl_motion_check(const double x[6], const double *P)
{
    if (!tl_sm_finite(x, 6) || (P && !tl_sm_finite(P, 36)))
        return TL_TRK_ENONFINITE;
    if (sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) < 1.0e5)
        return TL_TRK_EARG;
    if (P && !tl_sm_is_spd(6, P))
        return TL_TRK_ENOTPD;
    return TL_TRK_OK;
}

int tl_motion_predict1(const tl_motion *m, double x[6], double P[36], double dt, double Phi[36])
{
    tl_motion tmp;
    double s[6], Pw[36], Phw[36];
    int64_t nfull;
    double tail;
    int code;
    m = cfg(m, &tmp);
    if (!cfg_ok(m) || !x)
        return TL_TRK_EARG;
    if (!isfinite(dt))
        return TL_TRK_ENONFINITE;
    if (dt < 0.0 || dt > TL_MOTION_MAX_DT)
        return TL_TRK_ETIME;
    code = tl_motion_check(x, P);
    if (code != TL_TRK_OK)
        return code;
    memcpy(s, x, sizeof s);
    if (P)
        memcpy(Pw, P, sizeof Pw);
    nfull = (int64_t)floor(dt / m->step);
    tail = dt - (double)nfull * m->step;
    tl_motion_run(m, s, P ? Pw : NULL, Phi ? Phw : NULL, nfull, tail);
    if (!tl_sm_finite(s, 6) || (P && !tl_sm_finite(Pw, 36)) || (Phi && !tl_sm_finite(Phw, 36)))
        return TL_TRK_ENONFINITE;
    if (P && !tl_sm_chol_ok(6, Pw)) /* symmetrised in tl_motion_run: only PD left to test */
        return TL_TRK_ENOTPD;
    memcpy(x, s, sizeof s);
    if (P)
        memcpy(P, Pw, sizeof Pw);
    if (Phi)
        memcpy(Phi, Phw, sizeof Phw);
    return TL_TRK_OK;
}

int32_t tl_motion_predict(const tl_motion *m, int32_t n, double *x, double *P, const double *t_from,
                          double t_to, int32_t *status)
{
    tl_motion tmp;
    int32_t i, bad = 0;
    m = cfg(m, &tmp);
    if (n < 0 || !cfg_ok(m) || (n > 0 && (!x || !t_from || !status)))
        return -1;
    for (i = 0; i < n; i++) {
        int code;
        if (!isfinite(t_from[i]) || !isfinite(t_to))
            code = TL_TRK_ENONFINITE;
        else
            code = tl_motion_predict1(m, x + 6 * i, P ? P + 36 * i : NULL, t_to - t_from[i], NULL);
        status[i] = code;
        bad += code != TL_TRK_OK;
    }
    return bad;
}
