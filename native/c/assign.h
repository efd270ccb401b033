/* trilink kernel: optimal rectangular linear assignment (minimum total cost),
 * shortest augmenting path in the Jonker-Volgenant style (the same method as
 * scipy.optimize.linear_sum_assignment), with forbidden pairs.
 *
 * A cost of +inf marks a forbidden pair. Every row is matched when there are
 * no more rows than columns (else every column is matched): the smaller side
 * is matched completely, or the call fails with TL_ASSIGN_EINFEASIBLE.
 * No allocation: the caller passes the scratch arrays (sizes below). */
#ifndef TRILINK_ASSIGN_H
#define TRILINK_ASSIGN_H

#include <stdint.h>

/* cffi:begin */
enum {
    TL_ASSIGN_OK = 0,
    TL_ASSIGN_EARG = -1,        /* nr or nc < 0, or a NULL pointer */
    TL_ASSIGN_ECOST = -2,       /* a cost is NaN or -inf */
    TL_ASSIGN_EINFEASIBLE = -3  /* forbidden pairs leave no complete matching of the smaller side */
};

/* Scratch sizes for an nr x nc problem: doubles and int32 elements. */
int32_t tl_assign_work_doubles(int32_t nr, int32_t nc);
int32_t tl_assign_work_ints(int32_t nr, int32_t nc);

/* cost is nr x nc row-major. On TL_ASSIGN_OK row_to_col[i] is the column of
 * row i, or -1 when row i is left unmatched (only when nr > nc), and *total is
 * the sum of the chosen costs. work/iwork hold at least the sizes above.
 * On error row_to_col is all -1 and *total is 0. */
int32_t tl_assign(int32_t nr, int32_t nc, const double *cost, int32_t *row_to_col, double *total,
                  double *work, int32_t *iwork);

/* Batched: `count` problems, problem k of shape shapes[2k] x shapes[2k+1],
 * their costs concatenated in `costs`, their row_to_col concatenated in
 * `row_to_col`; totals[k] and status[k] per problem. Scratch sized for the
 * largest problem. Returns the number of problems that failed, or -1 for
 * invalid arguments. */
int32_t tl_assign_batch(int32_t count, const int32_t *shapes, const double *costs,
                        int32_t *row_to_col, double *totals, int32_t *status,
                        double *work, int32_t *iwork);
/* cffi:end */

#endif
