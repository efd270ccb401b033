/* trilink kernel: optimal rectangular assignment by shortest augmenting paths.
 *
 * The method is the one of Crouse, "On implementing 2D rectangular assignment
 * algorithms" (IEEE TAES 2016), which scipy's linear_sum_assignment also uses:
 * rows are added one at a time; for each, a Dijkstra-like search over reduced
 * costs c[i][j] - u[i] - v[j] finds the cheapest augmenting path to a free
 * column, then the dual variables u, v are updated so reduced costs stay >= 0.
 * O(n^2 m) for n <= m. The wide orientation (rows <= columns) is reached by
 * reading the cost through strides, so a tall matrix is never copied. */
#include "assign.h"

#include <math.h>
#include <stddef.h>

static int32_t imax(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t imin(int32_t a, int32_t b) { return a < b ? a : b; }

int32_t tl_assign_work_doubles(int32_t nr, int32_t nc)
{
    /* u[n] + v[m] + shortest[m] with n = min, m = max. */
    return imin(nr, nc) + 2 * imax(nr, nc);
}

int32_t tl_assign_work_ints(int32_t nr, int32_t nc)
{
    /* col4row, SR [n]; path, row4col, SC, remaining [m]. */
    return 2 * imin(nr, nc) + 4 * imax(nr, nc);
}

/* One augmenting path from free row `i`; returns the sink column or -1. */
static int32_t augment(int32_t m, const double *cost, ptrdiff_t rs, ptrdiff_t cs, const double *u,
                       const double *v, int32_t *path, const int32_t *row4col, double *spc,
                       int32_t i, int32_t *SR, int32_t *SC, int32_t *remaining, double *min_out)
{
    double minval = 0.0;
    int32_t nrem = m, it, sink = -1;
    for (it = 0; it < m; it++) {
        /* Reverse order so ties go to the lowest column index, as scipy. */
        remaining[it] = m - it - 1;
        SC[it] = 0;
        spc[it] = INFINITY;
    }
    while (sink == -1) {
        int32_t index = -1, j;
        double lowest = INFINITY;
        SR[i] = 1;
        for (it = 0; it < nrem; it++) {
            double r;
            j = remaining[it];
            r = minval + cost[i * rs + j * cs] - u[i] - v[j];
            if (r < spc[j]) {
                path[j] = i;
                spc[j] = r;
            }
            if (spc[j] < lowest || (spc[j] == lowest && row4col[j] == -1)) {
                lowest = spc[j];
                index = it;
            }
        }
        minval = lowest;
        if (index < 0 || minval == INFINITY)
            return -1;
        j = remaining[index];
        if (row4col[j] == -1)
            sink = j;
        else
            i = row4col[j];
        SC[j] = 1;
        remaining[index] = remaining[--nrem];
    }
    *min_out = minval;
    return sink;
}

int32_t tl_assign(int32_t nr, int32_t nc, const double *cost, int32_t *row_to_col, double *total,
                  double *work, int32_t *iwork)
{
    int32_t n, m, r, i, j, k, transposed;
    ptrdiff_t rs, cs;
    double *u, *v, *spc, sum = 0.0;
    int32_t *col4row, *SR, *path, *row4col, *SC, *remaining;

    if (nr < 0 || nc < 0 || total == NULL)
        return TL_ASSIGN_EARG;
    *total = 0.0;
    if (nr > 0 && row_to_col == NULL)
        return TL_ASSIGN_EARG;
    for (i = 0; i < nr; i++)
        row_to_col[i] = -1;
    if (nr == 0 || nc == 0)
        return TL_ASSIGN_OK;
    if (cost == NULL || work == NULL || iwork == NULL)
        return TL_ASSIGN_EARG;
    for (k = 0; k < nr * nc; k++)
        if (isnan(cost[k]) || cost[k] == -INFINITY)
            return TL_ASSIGN_ECOST;

    transposed = nr > nc;
    n = transposed ? nc : nr;
    m = transposed ? nr : nc;
    rs = transposed ? 1 : nc; /* element (i, j) of the wide view at cost[i*rs + j*cs] */
    cs = transposed ? nc : 1;

    u = work;
    v = u + n;
    spc = v + m;
    col4row = iwork;
    SR = col4row + n;
    path = SR + n;
    row4col = path + m;
    SC = row4col + m;
    remaining = SC + m;
    for (i = 0; i < n; i++) {
        u[i] = 0.0;
        col4row[i] = -1;
    }
    for (j = 0; j < m; j++) {
        v[j] = 0.0;
        path[j] = -1;
        row4col[j] = -1;
    }

    for (r = 0; r < n; r++) {
        double minval = 0.0;
        int32_t sink;
        for (i = 0; i < n; i++)
            SR[i] = 0;
        sink = augment(m, cost, rs, cs, u, v, path, row4col, spc, r, SR, SC, remaining, &minval);
        if (sink < 0)
            return TL_ASSIGN_EINFEASIBLE;
        u[r] += minval;
        for (i = 0; i < n; i++)
            if (SR[i] && i != r)
                u[i] += minval - spc[col4row[i]];
        for (j = 0; j < m; j++)
            if (SC[j])
                v[j] -= minval - spc[j];
        j = sink;
        for (;;) {
            int32_t tmp;
            i = path[j];
            row4col[j] = i;
            tmp = col4row[i];
            col4row[i] = j;
            j = tmp;
            if (i == r)
                break;
        }
    }

    if (transposed) {
        for (j = 0; j < m; j++) /* wide column j is original row j */
            if (row4col[j] >= 0)
                row_to_col[j] = row4col[j];
    } else {
        for (i = 0; i < n; i++)
            row_to_col[i] = col4row[i];
    }
    for (i = 0; i < nr; i++)
        if (row_to_col[i] >= 0)
            sum += cost[(ptrdiff_t)i * nc + row_to_col[i]];
    *total = sum;
    return TL_ASSIGN_OK;
}

int32_t tl_assign_batch(int32_t count, const int32_t *shapes, const double *costs,
                        int32_t *row_to_col, double *totals, int32_t *status,
                        double *work, int32_t *iwork)
{
    int32_t k, failed = 0;
    ptrdiff_t coff = 0, roff = 0;
    if (count < 0 || (count > 0 && (shapes == NULL || totals == NULL || status == NULL)))
        return -1;
    for (k = 0; k < count; k++) {
        int32_t nr = shapes[2 * k], nc = shapes[2 * k + 1];
        if (nr < 0 || nc < 0)
            return -1;
    }
    for (k = 0; k < count; k++) {
        int32_t nr = shapes[2 * k], nc = shapes[2 * k + 1];
        status[k] = tl_assign(nr, nc, costs + coff, row_to_col + roff, &totals[k], work, iwork);
        if (status[k] != TL_ASSIGN_OK)
            failed++;
        coff += (ptrdiff_t)nr * nc;
        roff += nr;
    }
    return failed;
}
