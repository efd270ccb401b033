/* trilink kernel: fused track picture (rules in picture.h). */
#include "picture.h"
#include "assign.h"
#include "ci.h"

#include <math.h>
#include <string.h>

#define NT TL_PIC_MAX_TRACKS
#define NF TL_PIC_MAX_FUSED
#define NM TL_PIC_MAX_MEMBERS
#define ALONE (-1) /* proposal or pending move: stand alone */
#define NOMOVE (-2) /* no pending move */

typedef struct {
    int32_t used;
    uint8_t node;
    uint32_t track_id, report_id;
    double t, x[6], P[36];
    double px[6], pP[36]; /* prediction to the last association time */
    double pt;
    int32_t pred_ok;
    int32_t fused;             /* fused slot, or -1 */
    int32_t cand, cand_count;  /* pending move and how many rounds in a row */
} src_t;

typedef struct {
    int32_t used;
    uint32_t id;
    int32_t nmem;
    int32_t mem[NM]; /* source track slots, at most one per node */
} fus_t;

struct tl_picture {
    tl_picture_config cfg;
    uint32_t next_id;
    tl_picture_stats st;
    src_t trk[NT];
    fus_t fus[NF];
    /* scratch for one association round: the cost matrix of one source's
     * tracks against every fused track plus one "no match" column per row */
    double cost[NT * (NF + NT)];
    double work[3 * (NF + NT)];
    int32_t iwork[6 * (NF + NT)];
    int32_t r2c[NT], rows[NT], cols[NF], ready[NT], origin[NT];
    double refx[NF * 6], refP[NF * 36], reftr[NF];
    double xs[NM * 6], Ps[NM * 36];
};

void tl_picture_config_default(tl_picture_config *cfg)
{
    cfg->gate = 22.46;
    cfg->stay_bonus = 4.0;
    cfg->switch_frames = 3;
    cfg->timeout = 12.0;
    cfg->ci_mode = TL_CI_TRACE;
    tl_motion_default(&cfg->motion);
}

size_t tl_picture_size(void) { return sizeof(struct tl_picture); }

int32_t tl_picture_init(tl_picture *pic, size_t size, const tl_picture_config *cfg)
{
    tl_picture_config c;
    if (pic == NULL || size < sizeof(struct tl_picture) || ((uintptr_t)pic % 8) != 0)
        return TL_TRK_EARG;
    if (cfg == NULL)
        tl_picture_config_default(&c);
    else
        c = *cfg;
    if (!(c.gate > 0.0) || !isfinite(c.gate) || !(c.stay_bonus >= 0.0) || !isfinite(c.stay_bonus) ||
        c.switch_frames < 1 || !(c.timeout > 0.0) || c.ci_mode < TL_CI_TRACE ||
        c.ci_mode > TL_CI_NAIVE || !(c.motion.step > 0.0) || !(c.motion.q >= 0.0))
        return TL_TRK_EARG;
    memset(pic, 0, sizeof(struct tl_picture));
    pic->cfg = c;
    pic->next_id = 1;
    return TL_TRK_OK;
}

static int32_t find_track(const tl_picture *pic, uint8_t node, uint32_t id)
{
    int32_t i;
    for (i = 0; i < NT; i++)
        if (pic->trk[i].used && pic->trk[i].node == node && pic->trk[i].track_id == id)
            return i;
    return -1;
}

/* Member slot of fused track f from `node`, or -1. */
static int32_t member_of_node(const tl_picture *pic, int32_t f, uint8_t node)
{
    int32_t k;
    for (k = 0; k < pic->fus[f].nmem; k++)
        if (pic->trk[pic->fus[f].mem[k]].node == node)
            return pic->fus[f].mem[k];
    return -1;
}

static void leave(tl_picture *pic, int32_t s)
{
    int32_t f = pic->trk[s].fused, k;
    fus_t *F;
    if (f < 0)
        return;
    F = &pic->fus[f];
    for (k = 0; k < F->nmem; k++)
        if (F->mem[k] == s) {
            F->mem[k] = F->mem[--F->nmem];
            break;
        }
    if (F->nmem == 0) {
        F->used = 0;
        pic->st.deleted++;
    }
    pic->trk[s].fused = -1;
}

static void join(tl_picture *pic, int32_t s, int32_t f)
{
    fus_t *F = &pic->fus[f];
    F->mem[F->nmem++] = s;
    pic->trk[s].fused = f;
}

/* A new fused track holding s alone; -1 if the table is full. */
static int32_t start(tl_picture *pic, int32_t s)
{
    int32_t f;
    for (f = 0; f < NF; f++)
        if (!pic->fus[f].used) {
            pic->fus[f].used = 1;
            pic->fus[f].id = pic->next_id++;
            pic->fus[f].nmem = 0;
            join(pic, s, f);
            pic->st.initiated++;
            return f;
        }
    return -1;
}

int32_t tl_picture_update(tl_picture *pic, int32_t n, const uint8_t *node,
                          const uint32_t *track_id, const uint32_t *report_id, const double *t,
                          const double *x, const double *P, int32_t *status)
{
    int32_t i, refused = 0;
    if (pic == NULL || n < 0 ||
        (n > 0 && (node == NULL || track_id == NULL || report_id == NULL || t == NULL ||
                   x == NULL || P == NULL || status == NULL)))
        return -1;
    for (i = 0; i < n; i++) {
        const double *xi = x + (size_t)i * 6, *Pi = P + (size_t)i * 36;
        int32_t s, rc = TL_TRK_OK;
        if (node[i] > TL_PIC_MAX_NODE)
            rc = TL_PIC_ENODE;
        else if (!isfinite(t[i]))
            rc = TL_TRK_ENONFINITE;
        else
            rc = tl_motion_check(xi, Pi);
        s = rc == TL_TRK_OK ? find_track(pic, node[i], track_id[i]) : -1;
        if (rc == TL_TRK_OK && s >= 0 && t[i] < pic->trk[s].t)
            rc = TL_TRK_ETIME;
        if (rc == TL_TRK_OK && s < 0) {
            for (s = 0; s < NT && pic->trk[s].used; s++)
                ;
            if (s == NT)
                rc = TL_PIC_EFULL;
            else {
                memset(&pic->trk[s], 0, sizeof(src_t));
                pic->trk[s].used = 1;
                pic->trk[s].node = node[i];
                pic->trk[s].track_id = track_id[i];
                pic->trk[s].fused = -1;
                pic->trk[s].cand = NOMOVE;
            }
        }
        if (rc == TL_TRK_OK) {
            src_t *T = &pic->trk[s];
            T->report_id = report_id[i];
            T->t = t[i];
            memcpy(T->x, xi, sizeof T->x);
            memcpy(T->P, Pi, sizeof T->P);
            T->pred_ok = 0;
        } else {
            refused++;
        }
        status[i] = rc;
    }
    return refused;
}

int32_t tl_picture_drop(tl_picture *pic, uint8_t node, uint32_t track_id)
{
    int32_t s;
    if (pic == NULL)
        return TL_TRK_EARG;
    s = find_track(pic, node, track_id);
    if (s < 0)
        return TL_PIC_EUNKNOWN;
    leave(pic, s);
    pic->trk[s].used = 0;
    return TL_TRK_OK;
}

int32_t tl_picture_lookup(const tl_picture *pic, uint8_t node, uint32_t track_id,
                          uint32_t *fused_id)
{
    int32_t s;
    if (pic == NULL || fused_id == NULL)
        return TL_TRK_EARG;
    s = find_track(pic, node, track_id);
    if (s < 0)
        return TL_PIC_EUNKNOWN;
    *fused_id = pic->trk[s].fused >= 0 ? pic->fus[pic->trk[s].fused].id : 0;
    return TL_TRK_OK;
}

static double trace6(const double *P)
{
    return P[0] + P[7] + P[14] + P[21] + P[28] + P[35];
}

/* d^2 = d^T (A + B)^-1 d by Cholesky; +inf if A + B is not PD. */
static double mahal(const double *d, const double *A, const double *B)
{
    double S[36], L[36], y[6], s = 0.0;
    int i, j, k;
    for (i = 0; i < 36; i++)
        S[i] = A[i] + B[i];
    for (j = 0; j < 6; j++) {
        double v = S[j * 6 + j];
        for (k = 0; k < j; k++)
            v -= L[j * 6 + k] * L[j * 6 + k];
        if (!(v > 0.0))
            return INFINITY;
        v = sqrt(v);
        L[j * 6 + j] = v;
        for (i = j + 1; i < 6; i++) {
            double w = S[i * 6 + j];
            for (k = 0; k < j; k++)
                w -= L[i * 6 + k] * L[j * 6 + k];
            L[i * 6 + j] = w / v;
        }
    }
    for (i = 0; i < 6; i++) {
        double w = d[i];
        for (k = 0; k < i; k++)
            w -= L[i * 6 + k] * y[k];
        y[i] = w / L[i * 6 + i];
        s += y[i] * y[i];
    }
    return s;
}

/* Fuse the predicted members of f whose node passes `keep` (bit mask) into
 * x, P; w (may be NULL) receives weights per member in member order, and
 * used[] which members took part. Returns the member count fused (0 = none
 * or failure). */
static int32_t fuse_members(tl_picture *pic, int32_t f, uint64_t keep, double *x, double *P,
                            double *w, int32_t *used)
{
    fus_t *F = &pic->fus[f];
    double wk[NM];
    int32_t k, n = 0;
    for (k = 0; k < F->nmem; k++) {
        const src_t *T = &pic->trk[F->mem[k]];
        used[k] = 0;
        if (!T->pred_ok || !((keep >> T->node) & 1u))
            continue;
        memcpy(pic->xs + n * 6, T->px, sizeof T->px);
        memcpy(pic->Ps + n * 36, T->pP, sizeof T->pP);
        used[k] = 1;
        n++;
    }
    if (n == 0)
        return 0;
    if (tl_ci_fuse(6, n, pic->xs, pic->Ps, n == 1 ? TL_CI_TRACE : pic->cfg.ci_mode, 0.0, x, P,
                   wk) != TL_TRK_OK)
        return 0;
    if (w != NULL) {
        int32_t j = 0;
        for (k = 0; k < F->nmem; k++)
            w[k] = used[k] ? wk[j++] : 0.0;
    }
    return n;
}

/* Predict every track to t into its px, pP. */
static void predict_all(tl_picture *pic, double t)
{
    int32_t s;
    for (s = 0; s < NT; s++) {
        src_t *T = &pic->trk[s];
        if (!T->used)
            continue;
        double from;
        if (T->pred_ok && T->pt == t)
            continue;
        if (T->t > t) {
            T->pred_ok = 0;
            pic->st.sat_out++;
            continue;
        }
        /* Continue from the last prediction when it lies between the report
         * and t: a track that stopped reporting costs one round's step, not
         * a growing propagation from its last report every round. */
        if (!(T->pred_ok && T->pt >= T->t && T->pt <= t)) {
            memcpy(T->px, T->x, sizeof T->x);
            memcpy(T->pP, T->P, sizeof T->P);
            T->pt = T->t;
        }
        from = T->pt;
        T->pred_ok = 0;
        if (tl_motion_predict1(&pic->cfg.motion, T->px, T->pP, t - from, NULL) == TL_TRK_OK) {
            T->pred_ok = 1;
            T->pt = t;
        } else {
            pic->st.sat_out++;
        }
    }
}

static void associate_node(tl_picture *pic, uint8_t node)
{
    const tl_picture_config *c = &pic->cfg;
    int32_t nr = 0, nc = 0, ncol, r, j, f, k, nready, used[NM];
    double total;
    uint64_t others = ~(((uint64_t)1) << node);

    for (r = 0; r < NT; r++)
        if (pic->trk[r].used && pic->trk[r].pred_ok && pic->trk[r].node == node)
            pic->rows[nr++] = r;
    if (nr == 0)
        return;
    for (f = 0; f < NF; f++)
        if (pic->fus[f].used &&
            fuse_members(pic, f, others, pic->refx + nc * 6, pic->refP + nc * 36, NULL, used) > 0)
            pic->cols[nc++] = f;
    ncol = nc + nr;
    for (j = 0; j < nc; j++)
        pic->reftr[j] = trace6(pic->refP + j * 36);
    for (r = 0; r < nr; r++) {
        const src_t *T = &pic->trk[pic->rows[r]];
        double *row = pic->cost + (size_t)r * ncol, tr = trace6(T->pP);
        for (j = 0; j < nc; j++) {
            double d[6], d2, e2 = 0.0;
            int i;
            for (i = 0; i < 6; i++) {
                d[i] = T->px[i] - pic->refx[j * 6 + i];
                e2 += d[i] * d[i];
            }
            /* d^T S^-1 d >= |d|^2 / lambda_max(S) >= |d|^2 / tr(S): a pair
             * that fails this bound is outside the gate without a Cholesky. */
            if (e2 > c->gate * (tr + pic->reftr[j])) {
                row[j] = INFINITY;
                continue;
            }
            d2 = mahal(d, T->pP, pic->refP + j * 36);
            row[j] = d2 <= c->gate ? d2 - (T->fused == pic->cols[j] ? c->stay_bonus : 0.0)
                                   : INFINITY;
        }
        for (j = 0; j < nr; j++)
            row[nc + j] = j == r ? c->gate : INFINITY;
    }
    if (tl_assign(nr, ncol, pic->cost, pic->r2c, &total, pic->work, pic->iwork) != TL_ASSIGN_OK)
        return; /* cannot happen: the "no match" columns make it feasible */

    /* Tracks attached to a fused track with other members: move only after
     * the same proposal in switch_frames rounds in a row. Ready moves are
     * made together (all leave, then all join) so that a swap of two tracks
     * between two fused tracks can happen. */
    nready = 0;
    for (r = 0; r < nr; r++) {
        int32_t s = pic->rows[r], prop = pic->r2c[r] < nc ? pic->cols[pic->r2c[r]] : ALONE;
        src_t *T = &pic->trk[s];
        int32_t F = T->fused, is_col = 0;
        if (F < 0 || pic->fus[F].nmem < 2)
            continue;
        for (j = 0; j < nc; j++)
            if (pic->cols[j] == F)
                is_col = 1;
        if (prop == F || (!is_col && prop == ALONE)) {
            T->cand = NOMOVE;
            T->cand_count = 0;
            continue;
        }
        if (T->cand == prop)
            T->cand_count++;
        else {
            T->cand = prop;
            T->cand_count = 1;
        }
        if (T->cand_count >= c->switch_frames) {
            pic->ready[nready] = s;
            pic->origin[nready++] = F;
        }
    }
    for (k = 0; k < nready; k++)
        leave(pic, pic->ready[k]); /* never empties: the others stay */
    for (k = 0; k < nready; k++) {
        int32_t s = pic->ready[k], G = pic->trk[s].cand;
        if (G != ALONE && member_of_node(pic, G, node) < 0) {
            join(pic, s, G);
            pic->st.switched++;
            pic->trk[s].cand = NOMOVE;
            pic->trk[s].cand_count = 0;
        }
    }
    for (k = 0; k < nready; k++) {
        int32_t s = pic->ready[k], F = pic->origin[k];
        src_t *T = &pic->trk[s];
        if (T->fused >= 0)
            continue;
        if (T->cand != ALONE && member_of_node(pic, F, node) < 0) {
            join(pic, s, F); /* target still holds this node's track: stay pending */
            continue;
        }
        if (start(pic, s) >= 0)
            pic->st.split++;
        T->cand = NOMOVE;
        T->cand_count = 0;
    }
    /* New tracks and lone tracks join at once; new ones that join nothing start. */
    for (r = 0; r < nr; r++) {
        int32_t s = pic->rows[r], prop = pic->r2c[r] < nc ? pic->cols[pic->r2c[r]] : ALONE;
        src_t *T = &pic->trk[s];
        int32_t F = T->fused;
        if (F >= 0 && pic->fus[F].nmem >= 2)
            continue;
        T->cand = NOMOVE;
        T->cand_count = 0;
        if (prop != ALONE && pic->fus[prop].used && member_of_node(pic, prop, node) < 0) {
            if (F >= 0) {
                uint32_t old = pic->fus[F].id;
                leave(pic, s);
                if (old < pic->fus[prop].id)
                    pic->fus[prop].id = old; /* the older id survives a merge */
                pic->st.merged++;
            } else {
                pic->st.joined++;
            }
            join(pic, s, prop);
        } else if (F < 0) {
            start(pic, s);
        }
    }
}

int32_t tl_picture_associate(tl_picture *pic, double t)
{
    int32_t s, n;
    uint64_t present = 0;
    if (pic == NULL)
        return TL_TRK_EARG;
    if (!isfinite(t))
        return TL_TRK_ENONFINITE;
    for (s = 0; s < NT; s++)
        if (pic->trk[s].used && t - pic->trk[s].t > pic->cfg.timeout) {
            leave(pic, s);
            pic->trk[s].used = 0;
            pic->st.timed_out++;
        }
    predict_all(pic, t);
    for (s = 0; s < NT; s++)
        if (pic->trk[s].used && pic->trk[s].pred_ok)
            present |= ((uint64_t)1) << pic->trk[s].node;
    for (n = 0; n <= TL_PIC_MAX_NODE; n++)
        if ((present >> n) & 1u)
            associate_node(pic, (uint8_t)n);
    return TL_TRK_OK;
}

int32_t tl_picture_fuse(tl_picture *pic, double t, uint64_t mask, int32_t max_out,
                        uint32_t *fused_id, double *x, double *P, int32_t *nmem,
                        uint8_t *mem_node, uint32_t *mem_track, uint32_t *mem_report,
                        double *mem_weight)
{
    int32_t order[NF], nf = 0, f, i, out = 0;
    if (pic == NULL || max_out < 0 || !isfinite(t) ||
        (max_out > 0 && (fused_id == NULL || x == NULL || P == NULL || nmem == NULL ||
                         mem_node == NULL || mem_track == NULL || mem_report == NULL ||
                         mem_weight == NULL)))
        return -1;
    predict_all(pic, t);
    for (f = 0; f < NF; f++) { /* ascending fused id by insertion */
        if (!pic->fus[f].used)
            continue;
        i = nf++;
        while (i > 0 && pic->fus[order[i - 1]].id > pic->fus[f].id) {
            order[i] = order[i - 1];
            i--;
        }
        order[i] = f;
    }
    for (i = 0; i < nf && out < max_out; i++) {
        const fus_t *F = &pic->fus[order[i]];
        double w[NM];
        int32_t used[NM], k, m = 0;
        if (fuse_members(pic, order[i], mask, x + (size_t)out * 6, P + (size_t)out * 36, w,
                         used) == 0)
            continue;
        fused_id[out] = F->id;
        for (k = 0; k < NM; k++) {
            size_t o = (size_t)out * NM + (size_t)k;
            mem_node[o] = 0;
            mem_track[o] = 0;
            mem_report[o] = 0;
            mem_weight[o] = 0.0;
        }
        for (k = 0; k < F->nmem; k++) {
            const src_t *T = &pic->trk[F->mem[k]];
            size_t o = (size_t)out * NM + (size_t)m;
            if (!used[k])
                continue;
            mem_node[o] = T->node;
            mem_track[o] = T->track_id;
            mem_report[o] = T->report_id;
            mem_weight[o] = w[k];
            m++;
        }
        nmem[out] = m;
        out++;
    }
    return out;
}

void tl_picture_get_stats(const tl_picture *pic, tl_picture_stats *out)
{
    int32_t i;
    *out = pic->st;
    out->tracks = 0;
    out->fused = 0;
    for (i = 0; i < NT; i++)
        out->tracks += pic->trk[i].used;
    for (i = 0; i < NF; i++)
        out->fused += pic->fus[i].used;
}
