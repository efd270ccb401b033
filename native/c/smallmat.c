/* trilink kernel: small dense matrix helpers for the fusion kernel. */
#include "smallmat.h"

#include <math.h>

int tl_sm_finite(const double *a, int k)
{
    int i;
    for (i = 0; i < k; i++)
        if (!isfinite(a[i]))
            return 0;
    return 1;
}

void tl_sm_symmetrize(int n, double *a)
{
    int i, j;
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++) {
            double s = 0.5 * (a[i * n + j] + a[j * n + i]);
            a[i * n + j] = s;
            a[j * n + i] = s;
        }
}

double tl_sm_asym(int n, const double *a)
{
    int i, j;
    double big = 0.0, d = 0.0;
    for (i = 0; i < n * n; i++)
        if (fabs(a[i]) > big)
            big = fabs(a[i]);
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (fabs(a[i * n + j] - a[j * n + i]) > d)
                d = fabs(a[i * n + j] - a[j * n + i]);
    return big > 0.0 ? d / big : 0.0;
}

int tl_sm_chol(int n, const double *a, double *L)
{
    int i, j, k;
    for (i = 0; i < n * n; i++)
        L[i] = 0.0;
    for (j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (k = 0; k < j; k++)
            d -= L[j * n + k] * L[j * n + k];
        if (!(d > 0.0) || !isfinite(d))
            return -1;
        d = sqrt(d);
        L[j * n + j] = d;
        for (i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (k = 0; k < j; k++)
                s -= L[i * n + k] * L[j * n + k];
            L[i * n + j] = s / d;
        }
    }
    return 0;
}

int tl_sm_chol_ok(int n, const double *a)
{
    double L[TL_SM_MAX * TL_SM_MAX];
    return tl_sm_chol(n, a, L) == 0;
}

int tl_sm_is_spd(int n, const double *a)
{
    double L[TL_SM_MAX * TL_SM_MAX];
    if (!tl_sm_finite(a, n * n) || tl_sm_asym(n, a) > 1e-9)
        return 0;
    return tl_sm_chol(n, a, L) == 0;
}

int tl_sm_spd_inv(int n, const double *a, double *ainv)
{
    double L[TL_SM_MAX * TL_SM_MAX], Li[TL_SM_MAX * TL_SM_MAX];
    int i, j, k;
    if (tl_sm_chol(n, a, L) != 0)
        return -1;
    /* Li = L^-1 (lower), then ainv = Li^T Li. */
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
    for (i = 0; i < n; i++)
        for (j = 0; j <= i; j++) {
            double s = 0.0;
            for (k = i; k < n; k++)
                s += Li[k * n + i] * Li[k * n + j];
            ainv[i * n + j] = s;
            ainv[j * n + i] = s;
        }
    return 0;
}
