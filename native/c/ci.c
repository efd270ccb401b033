/* trilink kernel: covariance intersection with optimised weights (see ci.h). */
#include "ci.h"
#include "smallmat.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define MAXD TL_CI_MAX_DIM
#define MAXS TL_CI_MAX_SRC
#define GOLD 0.6180339887498949 /* (sqrt(5) - 1) / 2 */

/* Li = L^-1 for a lower-triangular L. */
static void tri_inv(int n, const double *L, double *Li)
{
    int i, j, k;
    for (i = 0; i < n * n; i++)
        Li[i] = 0.0;
    for (j = 0; j < n; j++) {
        Li[j * n + j] = 1.0 / L[j * n + j];
        for (i = j + 1; i < n; i++) {
            double s = 0.0;
            for (k = j; k < i; k++)
                s -= L[i * n + k] * Li[k * n + j];
            Li[i * n + j] = s / L[i * n + i];
        }
    }
}

/* Inverse of SPD a into ai (symmetric by construction); -1 if not PD. */
static int spd_inv(int n, const double *a, double *ai)
{
    double L[MAXD * MAXD], Li[MAXD * MAXD];
    int i, j, k;
    if (tl_sm_chol(n, a, L) != 0)
        return -1;
    tri_inv(n, L, Li);
    for (i = 0; i < n; i++)
        for (j = 0; j <= i; j++) {
            double s = 0.0;
            for (k = i; k < n; k++)
                s += Li[k * n + i] * Li[k * n + j];
            ai[i * n + j] = s;
            ai[j * n + i] = s;
        }
    return 0;
}

/* Input check: finite, symmetric within 1e-9 relative, PD. */
static int32_t check_cov(int n, const double *P)
{
    double L[MAXD * MAXD], big = 0.0;
    int i, j;
    for (i = 0; i < n * n; i++) {
        if (!isfinite(P[i]))
            return TL_TRK_ENONFINITE;
        if (fabs(P[i]) > big)
            big = fabs(P[i]);
    }
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (fabs(P[i * n + j] - P[j * n + i]) > 1e-9 * big)
                return TL_TRK_ENOTPD;
    return tl_sm_chol(n, P, L) == 0 ? TL_TRK_OK : TL_TRK_ENOTPD;
}

/* Criterion of the information matrix M = sum w_i I_i. */
static double crit(int n, const double *M, int32_t criterion)
{
    double L[MAXD * MAXD], Li[MAXD * MAXD], s = 0.0;
    int i;
    if (tl_sm_chol(n, M, L) != 0)
        return INFINITY;
    if (criterion == TL_CI_LOGDET) {
        for (i = 0; i < n; i++)
            s -= 2.0 * log(L[i * n + i]);
        return s;
    }
    /* tr(M^-1) = ||L^-1||_F^2 */
    tri_inv(n, L, Li);
    for (i = 0; i < n * n; i++)
        s += Li[i] * Li[i];
    return s;
}

static double crit_w(int n, int ns, const double *I, const double *w, int32_t criterion)
{
    double M[MAXD * MAXD];
    int i, k;
    for (i = 0; i < n * n; i++)
        M[i] = 0.0;
    for (k = 0; k < ns; k++)
        if (w[k] != 0.0)
            for (i = 0; i < n * n; i++)
                M[i] += w[k] * I[k * n * n + i];
    return crit(n, M, criterion);
}

/* Order: smaller trace first, then P's bytes, then x's bytes. */
static int src_less(int n, const double *xa, const double *Pa, const double *xb, const double *Pb)
{
    double ta = 0.0, tb = 0.0;
    int i, c;
    for (i = 0; i < n; i++) {
        ta += Pa[i * n + i];
        tb += Pb[i * n + i];
    }
    if (ta != tb)
        return ta < tb;
    c = memcmp(Pa, Pb, sizeof(double) * (size_t)(n * n));
    if (c != 0)
        return c < 0;
    return memcmp(xa, xb, sizeof(double) * (size_t)n) < 0;
}

/* Fuse canonical-order sources with weights w; exact copy for a lone weight 1. */
static int32_t combine(int n, int ns, const double *xs, const double *Ps, const double *I,
                       const double *w, double *x, double *P)
{
    double M[MAXD * MAXD], y[MAXD], Pf[MAXD * MAXD];
    int i, j, k, nz = 0, last = -1;
    for (k = 0; k < ns; k++)
        if (w[k] != 0.0) {
            nz++;
            last = k;
        }
    if (nz == 0)
        return TL_TRK_EARG;
    if (nz == 1 && w[last] == 1.0) {
        memcpy(x, xs + (size_t)last * n, sizeof(double) * (size_t)n);
        memcpy(P, Ps + (size_t)last * n * n, sizeof(double) * (size_t)(n * n));
        return TL_TRK_OK;
    }
    for (i = 0; i < n * n; i++)
        M[i] = 0.0;
    for (i = 0; i < n; i++)
        y[i] = 0.0;
    for (k = 0; k < ns; k++) {
        const double *Ik = I + (size_t)k * n * n, *xk = xs + (size_t)k * n;
        if (w[k] == 0.0)
            continue;
        for (i = 0; i < n; i++) {
            double s = 0.0;
            for (j = 0; j < n; j++) {
                M[i * n + j] += w[k] * Ik[i * n + j];
                s += Ik[i * n + j] * xk[j];
            }
            y[i] += w[k] * s;
        }
    }
    if (spd_inv(n, M, Pf) != 0)
        return TL_TRK_ENOTPD;
    for (i = 0; i < n; i++) {
        double s = 0.0;
        for (j = 0; j < n; j++)
            s += Pf[i * n + j] * y[j];
        if (!isfinite(s))
            return TL_TRK_ENONFINITE;
        x[i] = s;
    }
    memcpy(P, Pf, sizeof(double) * (size_t)(n * n));
    return TL_TRK_OK;
}

/* Golden-section minimum of the criterion along w(t) = t*e_k + (1-t)*base,
 * t in [0, 1]; returns the best t among the search result and both ends. */
static double line_search(int n, int ns, const double *I, const double *base, int k,
                          int32_t criterion, double tol, double *Jbest)
{
    double wt[MAXS], a = 0.0, b = 1.0, c, d, fc, fd, f0, f1, t;
    int i;
    for (i = 0; i < MAXS; i++)
        wt[i] = 0.0;
#define EVAL(tt, out)                                                                  \
    do {                                                                               \
        for (i = 0; i < ns; i++)                                                       \
            wt[i] = (1.0 - (tt)) * base[i];                                            \
        wt[k] += (tt);                                                                 \
        out = crit_w(n, ns, I, wt, criterion);                                         \
    } while (0)
    c = b - GOLD * (b - a);
    d = a + GOLD * (b - a);
    EVAL(c, fc);
    EVAL(d, fd);
    while (b - a > tol) {
        if (fc <= fd) {
            b = d;
            d = c;
            fd = fc;
            c = b - GOLD * (b - a);
            EVAL(c, fc);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + GOLD * (b - a);
            EVAL(d, fd);
        }
    }
    t = 0.5 * (a + b);
    EVAL(t, *Jbest);
    EVAL(0.0, f0);
    EVAL(1.0, f1);
#undef EVAL
    if (f0 <= *Jbest && f0 <= f1) {
        *Jbest = f0;
        return 0.0;
    }
    if (f1 < *Jbest) {
        *Jbest = f1;
        return 1.0;
    }
    return t;
}

static void fast_weights(int n, int ns, const double *Ps, double *w)
{
    double s = 0.0;
    int i, k;
    for (k = 0; k < ns; k++) {
        double tr = 0.0;
        for (i = 0; i < n; i++)
            tr += Ps[(size_t)k * n * n + i * n + i];
        w[k] = 1.0 / tr;
        s += w[k];
    }
    for (k = 0; k < ns; k++)
        w[k] /= s;
}

static void optimise(int n, int ns, const double *Ps, const double *I, int32_t criterion,
                     double tol, double *w)
{
    double base[MAXS], J;
    int k, i, sweep;
    if (ns == 2) {
        /* w = (t, 1 - t): the line from e_1 through e_0. */
        base[0] = 0.0;
        base[1] = 1.0;
        w[0] = line_search(n, ns, I, base, 0, criterion, tol, &J);
        w[1] = 1.0 - w[0];
        if (w[0] == 0.0)
            w[1] = 1.0;
        return;
    }
    fast_weights(n, ns, Ps, w);
    for (sweep = 0; sweep < 100; sweep++) {
        double moved = 0.0;
        for (k = 0; k < ns; k++) {
            double rest = 1.0 - w[k], t;
            for (i = 0; i < ns; i++)
                base[i] = (i == k) ? 0.0 : (rest > 0.0 ? w[i] / rest : 1.0 / (ns - 1));
            t = line_search(n, ns, I, base, k, criterion, tol, &J);
            for (i = 0; i < ns; i++) {
                double nw = (i == k) ? t : (1.0 - t) * base[i];
                if (fabs(nw - w[i]) > moved)
                    moved = fabs(nw - w[i]);
                w[i] = nw;
            }
        }
        if (moved <= 1e-9)
            break;
    }
}

/* Validate and sort; fills order[], the canonical copies and informations. */
static int32_t prepare(int n, int ns, const double *xs, const double *Ps, int *order, double *cx,
                       double *cP, double *I)
{
    int k, j;
    for (k = 0; k < ns; k++) {
        int32_t rc = check_cov(n, Ps + (size_t)k * n * n);
        if (rc != TL_TRK_OK)
            return rc;
        for (j = 0; j < n; j++)
            if (!isfinite(xs[(size_t)k * n + j]))
                return TL_TRK_ENONFINITE;
    }
    for (k = 0; k < ns; k++) { /* insertion sort, ns <= 16 */
        int v = k;
        j = k - 1;
        while (j >= 0 && src_less(n, xs + (size_t)v * n, Ps + (size_t)v * n * n,
                                  xs + (size_t)order[j] * n, Ps + (size_t)order[j] * n * n)) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    for (k = 0; k < ns; k++) {
        memcpy(cx + (size_t)k * n, xs + (size_t)order[k] * n, sizeof(double) * (size_t)n);
        memcpy(cP + (size_t)k * n * n, Ps + (size_t)order[k] * n * n,
               sizeof(double) * (size_t)(n * n));
        if (spd_inv(n, cP + (size_t)k * n * n, I + (size_t)k * n * n) != 0)
            return TL_TRK_ENOTPD;
    }
    return TL_TRK_OK;
}

int32_t tl_ci_fuse(int32_t dim, int32_t nsrc, const double *xs, const double *Ps, int32_t mode,
                   double tol, double *x, double *P, double *w)
{
    double cx[MAXS * MAXD], cP[MAXS * MAXD * MAXD], I[MAXS * MAXD * MAXD], cw[MAXS];
    int order[MAXS], k;
    int32_t rc;
    if (dim < 1 || dim > MAXD || nsrc < 1 || nsrc > MAXS || xs == NULL || Ps == NULL ||
        x == NULL || P == NULL || mode < TL_CI_TRACE || mode > TL_CI_NAIVE)
        return TL_TRK_EARG;
    if (!(tol > 0.0) || !isfinite(tol))
        tol = 1e-10;
    rc = prepare(dim, nsrc, xs, Ps, order, cx, cP, I);
    if (rc != TL_TRK_OK)
        return rc;
    if (nsrc == 1) {
        cw[0] = 1.0;
    } else if (mode == TL_CI_NAIVE) {
        for (k = 0; k < nsrc; k++)
            cw[k] = 1.0;
    } else if (mode == TL_CI_FAST) {
        fast_weights(dim, nsrc, cP, cw);
    } else {
        optimise(dim, nsrc, cP, I, mode, tol, cw);
    }
    rc = combine(dim, nsrc, cx, cP, I, cw, x, P);
    if (rc != TL_TRK_OK)
        return rc;
    if (w != NULL)
        for (k = 0; k < nsrc; k++)
            w[order[k]] = cw[k];
    return TL_TRK_OK;
}

int32_t tl_ci_weighted(int32_t dim, int32_t nsrc, const double *xs, const double *Ps,
                       const double *w, double *x, double *P)
{
    double cx[MAXS * MAXD], cP[MAXS * MAXD * MAXD], I[MAXS * MAXD * MAXD], cw[MAXS];
    int order[MAXS], k;
    int32_t rc;
    if (dim < 1 || dim > MAXD || nsrc < 1 || nsrc > MAXS || xs == NULL || Ps == NULL ||
        w == NULL || x == NULL || P == NULL)
        return TL_TRK_EARG;
    for (k = 0; k < nsrc; k++)
        if (!isfinite(w[k]) || w[k] < 0.0)
            return TL_TRK_EARG;
    rc = prepare(dim, nsrc, xs, Ps, order, cx, cP, I);
    if (rc != TL_TRK_OK)
        return rc;
    for (k = 0; k < nsrc; k++)
        cw[k] = w[order[k]];
    return combine(dim, nsrc, cx, cP, I, cw, x, P);
}

int32_t tl_ci_objective(int32_t dim, int32_t nsrc, const double *Ps, const double *w,
                        int32_t criterion, double *J)
{
    double I[MAXS * MAXD * MAXD];
    int k;
    if (dim < 1 || dim > MAXD || nsrc < 1 || nsrc > MAXS || Ps == NULL || w == NULL ||
        J == NULL || (criterion != TL_CI_TRACE && criterion != TL_CI_LOGDET))
        return TL_TRK_EARG;
    for (k = 0; k < nsrc; k++) {
        int32_t rc = check_cov(dim, Ps + (size_t)k * dim * dim);
        if (rc != TL_TRK_OK)
            return rc;
        if (!isfinite(w[k]) || w[k] < 0.0)
            return TL_TRK_EARG;
        spd_inv(dim, Ps + (size_t)k * dim * dim, I + (size_t)k * dim * dim);
    }
    *J = crit_w(dim, nsrc, I, w, criterion);
    return TL_TRK_OK;
}

int32_t tl_ci_batch(int32_t count, int32_t dim, int32_t nsrc, const double *xs, const double *Ps,
                    int32_t mode, double tol, double *x, double *P, double *w, int32_t *status)
{
    int32_t c, failed = 0;
    if (count < 0 || dim < 1 || dim > MAXD || nsrc < 1 || nsrc > MAXS || status == NULL ||
        (count > 0 && (xs == NULL || Ps == NULL || x == NULL || P == NULL)))
        return -1;
    for (c = 0; c < count; c++) {
        status[c] = tl_ci_fuse(dim, nsrc, xs + (size_t)c * nsrc * dim,
                               Ps + (size_t)c * nsrc * dim * dim, mode, tol,
                               x + (size_t)c * dim, P + (size_t)c * dim * dim,
                               w ? w + (size_t)c * nsrc : NULL);
        if (status[c] != TL_TRK_OK)
            failed++;
    }
    return failed;
}
