/* Dead-reckoning motion model: see drmodel.h. */
#include "drmodel.h"

#include <math.h>

#define DRM_A 6378137.0
#define DRM_F (1.0 / 298.257223563)
#define DRM_GM 3.986004418e14
#define DRM_J2 1.08262982e-3
#define DRM_OMEGA 7.292115e-5
#define DRM_PI 3.14159265358979323846

void tl_drm_init(tl_drm *m, double lat_deg, double h_m, double step_s)
{
    double e2 = DRM_F * (2.0 - DRM_F);
    double la = lat_deg * (DRM_PI / 180.0);
    double s = sin(la), c = cos(la);
    double n = DRM_A / sqrt(1.0 - e2 * s * s);   /* prime vertical radius */
    /* The centre seen from the origin: up = -(N + h) + N e2 sin^2, north = N e2 sin cos. */
    m->cn = n * e2 * s * c;
    m->cu = -(n + h_m) + n * e2 * s * s;
    m->kn = c;
    m->ku = s;
    m->step = step_s > 0.0 ? step_s : 1.0;
}

static void accel(const tl_drm *m, const double x[6], double a[3])
{
    double rx = x[0], ry = x[1] - m->cn, rz = x[2] - m->cu;
    double r2 = rx * rx + ry * ry + rz * rz;
    double r = sqrt(r2);
    double z = ry * m->kn + rz * m->ku;            /* along the spin axis */
    double gm_r3 = DRM_GM / (r2 * r);
    double j = 1.5 * DRM_J2 * DRM_A * DRM_A / r2;
    double fa = -gm_r3 * (1.0 + j * (1.0 - 5.0 * z * z / r2));
    double fk = -gm_r3 * j * 2.0 * z;
    double w = DRM_OMEGA, ww = w * w;
    /* k = (0, kn, ku): k x v and the centrifugal w^2 (r - (k.r) k) */
    double cx = m->kn * x[5] - m->ku * x[4];
    double cy = m->ku * x[3];
    double cz = -m->kn * x[3];
    a[0] = fa * rx - 2.0 * w * cx + ww * rx;
    a[1] = fa * ry + fk * m->kn - 2.0 * w * cy + ww * (ry - z * m->kn);
    a[2] = fa * rz + fk * m->ku - 2.0 * w * cz + ww * (rz - z * m->ku);
}

static void rk4(const tl_drm *m, double s[6], double h)
{
    double k1[3], k2[3], k3[3], k4[3], t[6];
    double h2 = 0.5 * h;
    int i;
    accel(m, s, k1);
    for (i = 0; i < 3; i++) { t[i] = s[i] + h2 * s[3 + i]; t[3 + i] = s[3 + i] + h2 * k1[i]; }
    accel(m, t, k2);
    for (i = 0; i < 3; i++) { t[i] = s[i] + h2 * (s[3 + i] + h2 * k1[i]); t[3 + i] = s[3 + i] + h2 * k2[i]; }
    accel(m, t, k3);
    for (i = 0; i < 3; i++) { t[i] = s[i] + h * (s[3 + i] + h2 * k2[i]); t[3 + i] = s[3 + i] + h * k3[i]; }
    accel(m, t, k4);
    for (i = 0; i < 3; i++) {
        double v1 = s[3 + i], v2 = v1 + h2 * k1[i], v3 = v1 + h2 * k2[i], v4 = v1 + h * k3[i];
        s[i] = s[i] + h / 6.0 * (v1 + 2.0 * v2 + 2.0 * v3 + v4);
        s[3 + i] = v1 + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
    }
}

void tl_drm_extrapolate(const tl_drm *m, double x[6], double dt_s)
{
    double n, tail;
    long k, nfull;
    if (!(dt_s > 0.0))
        return;
    n = floor(dt_s / m->step);
    if (n > 1e7)
        n = 1e7;   /* a bound on work; nobody extrapolates 4 months */
    nfull = (long)n;
    tail = dt_s - n * m->step;
    for (k = 0; k < nfull; k++)
        rk4(m, x, m->step);
    if (tail > 0.0)
        rk4(m, x, tail);
}
