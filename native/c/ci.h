/* trilink kernel: covariance intersection (CI) of N estimates of one state
 * whose cross-correlations are unknown, and naive (independent) fusion for
 * comparison.
 *
 *   P^-1 = sum_i w_i P_i^-1,   P^-1 x = sum_i w_i P_i^-1 x_i,   w on the simplex.
 *
 * CI is consistent for any cross-correlation (Julier and Uhlmann 1997). The
 * weights minimise tr(P) (TL_CI_TRACE) or log det P (TL_CI_LOGDET):
 *  - 2 sources: golden-section search on omega = w_1 in [0, 1] to a bracket
 *    of `tol` (<= 0 means 1e-10), then the better of that and the endpoints
 *    (an endpoint returns its input unchanged, bit for bit);
 *  - N > 2 sources: start from the trace closed form below, then sweeps of
 *    golden-section line searches along the segment from the current weights
 *    to each vertex e_k (moving weight between source k and all others in
 *    proportion), until no weight moves by more than 1e-9 (at most 100
 *    sweeps). Both criteria are convex in w, and a point where no such line
 *    search can improve satisfies the optimality (KKT) conditions on the
 *    simplex.
 *  - TL_CI_FAST: the closed form w_i = (1/tr P_i) / sum_j (1/tr P_j)
 *    (Niehsen 2002); no search. Its trace excess over the optimum is measured
 *    in tests/test_ci.py and reported in docs/FUSION.md.
 *  - TL_CI_NAIVE: w_i = 1 (information sum), optimal only for independent
 *    errors and overconfident otherwise; for comparison.
 * Sources are put in a canonical order (trace, then the bytes of P and x)
 * before any arithmetic, so the result does not depend on the order given.
 * Inputs: dim <= TL_CI_MAX_DIM, nsrc <= TL_CI_MAX_SRC, each P_i symmetric
 * (1e-9 relative) and positive definite by Cholesky; else a TL_TRK_* error
 * (geo.h) and the outputs are left untouched. */
#ifndef TRILINK_CI_H
#define TRILINK_CI_H

#include <stdint.h>
#include "geo.h"

/* cffi:begin */
enum {
    TL_CI_MAX_DIM = 9,
    TL_CI_MAX_SRC = 16,
    TL_CI_TRACE = 0,
    TL_CI_LOGDET = 1,
    TL_CI_FAST = 2,
    TL_CI_NAIVE = 3
};

/* Fuse nsrc estimates xs[nsrc, dim], Ps[nsrc, dim, dim] with the weights of
 * `mode`; x[dim], P[dim, dim] receive the result and w[nsrc] (may be NULL) the
 * weights used, in the caller's source order. Returns TL_TRK_OK or an error. */
int32_t tl_ci_fuse(int32_t dim, int32_t nsrc, const double *xs, const double *Ps, int32_t mode,
                   double tol, double *x, double *P, double *w);

/* Fuse with given weights w[nsrc] (each >= 0, finite, not all 0; they are
 * used as given, not normalised). A single nonzero weight of exactly 1
 * returns that input unchanged. */
int32_t tl_ci_weighted(int32_t dim, int32_t nsrc, const double *xs, const double *Ps,
                       const double *w, double *x, double *P);

/* The criterion (TL_CI_TRACE or TL_CI_LOGDET) of the fusion with weights w:
 * tr(P) or log det P into *J (+inf if the weighted information is singular). */
int32_t tl_ci_objective(int32_t dim, int32_t nsrc, const double *Ps, const double *w,
                        int32_t criterion, double *J);

/* Batched tl_ci_fuse over `count` independent problems of the same shape:
 * xs[count, nsrc, dim], Ps[count, nsrc, dim, dim] -> x[count, dim],
 * P[count, dim, dim], w[count, nsrc], status[count]. Returns the number of
 * failed problems (left untouched) or -1 for invalid arguments. */
int32_t tl_ci_batch(int32_t count, int32_t dim, int32_t nsrc, const double *xs, const double *Ps,
                    int32_t mode, double tol, double *x, double *P, double *w, int32_t *status);
/* cffi:end */

#endif
