/* trilink kernel: small dense row-major matrix helpers shared by the fusion
 * kernel (motion, kalman, impact). Internal: not exposed through cffi. */
#ifndef TRILINK_SMALLMAT_H
#define TRILINK_SMALLMAT_H

/* Largest matrix side any helper handles. */
#define TL_SM_MAX 9

/* All entries of a[k] finite. */
int tl_sm_finite(const double *a, int k);
/* c[n,m] = a[n,k] b[k,m] (c must not alias a or b). Inline so that callers
 * with constant sizes get unrolled loops. */
static inline void tl_sm_mul(int n, int k, int m, const double *a, const double *b, double *c)
{
    int i, j, l;
    for (i = 0; i < n; i++)
        for (j = 0; j < m; j++) {
            double s = 0.0;
            for (l = 0; l < k; l++)
                s += a[i * k + l] * b[l * m + j];
            c[i * m + j] = s;
        }
}

/* c[n,m] = a[n,k] b[m,k]^T (c must not alias a or b). */
static inline void tl_sm_mul_bt(int n, int k, int m, const double *a, const double *b, double *c)
{
    int i, j, l;
    for (i = 0; i < n; i++)
        for (j = 0; j < m; j++) {
            double s = 0.0;
            for (l = 0; l < k; l++)
                s += a[i * k + l] * b[j * k + l];
            c[i * m + j] = s;
        }
}

/* Cholesky test only (for a result we just symmetrised ourselves): 1 if PD. */
/* Lower Cholesky factor L of a (row-major n x n); 0 on success, -1 if a
 * pivot is not finite and > 0. */
int tl_sm_chol(int n, const double *a, double *L);
int tl_sm_chol_ok(int n, const double *a);
/* Replace a[n,n] by (a + a^T)/2. */
void tl_sm_symmetrize(int n, double *a);
/* Largest |a_ij - a_ji| divided by the largest |a_ij| (0 for a zero matrix). */
double tl_sm_asym(int n, const double *a);
/* 1 if a[n,n] is symmetric within 1e-9 relative and its Cholesky factor
 * exists with strictly positive pivots, else 0. */
int tl_sm_is_spd(int n, const double *a);
/* Inverse of a symmetric positive definite a[n,n] by Cholesky into ainv;
 * returns 0 on success, -1 if a is not positive definite. */
int tl_sm_spd_inv(int n, const double *a, double *ainv);

#endif
