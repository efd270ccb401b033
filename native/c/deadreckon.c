/* trilink kernel: the dead-reckoning sender of PROTOCOL.md section 5.6 (codec.h
 * tl_dr_*): per destination, which updates to send (keyframe, delta or none)
 * by extrapolating what the receiver holds with drmodel.h, and their payloads
 * through codec.c's record writer. Mirrors boards/trilink_board's sender. */
#include "codec.h"
#include "codec_internal.h"
#include "drmodel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- dead reckoning ---- */
struct tl_dr {
    tl_dr_config cfg;
    tl_drm model;
    prec pr;
    tl_codec_table *t;
    uint64_t cnt[TL_DR_NCOUNTERS];
};

enum { C_INPUTS, C_KEY, C_DELTA, C_DROP, C_SUPP, C_HEART, C_POS, C_COV, C_META, C_IMPACT, C_NEW, C_STALE };

void tl_dr_config_default(tl_dr_config *c)
{
    memset(c, 0, sizeof(*c));
    c->kind = TL_CODEC_PICTURE;
    c->pos_mm = 1000;
    c->vel_mm = 50;
    c->step_s = 1.0;
    c->threshold_m = 50.0;
    c->heartbeat_us = 5000000u;
    c->cov_sig_codes = 2;
    c->cov_cor_codes = 4;
    c->impact_m = 100.0;
    c->impact_t_us = 100000u;
}

tl_dr *tl_dr_new(const tl_dr_config *c, int32_t capacity)
{
    tl_dr *d;
    if (!c || tlc_check_prec(c->kind, c->pos_mm, c->vel_mm) || !(c->step_s > 0.0))
        return NULL;
    d = (tl_dr *)calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->t = tl_codec_table_new(capacity);
    if (!d->t) {
        free(d);
        return NULL;
    }
    d->cfg = *c;
    tl_drm_init(&d->model, c->origin_lat_deg, c->origin_h_m, c->step_s);
    tlc_prec_set(&d->pr, c->pos_mm, c->vel_mm);
    return d;
}

void tl_dr_free(tl_dr *d)
{
    if (!d)
        return;
    tl_codec_table_free(d->t);
    free(d);
}

void tl_dr_request_keyframe(tl_dr *d, int64_t tid)
{
    if (d)
        tl_codec_table_forget(d->t, tid);
}

void tl_dr_counters(const tl_dr *d, uint64_t out[12])
{
    if (d && out)
        memcpy(out, d->cnt, sizeof(d->cnt));
}

static int impact_moved(const tl_dr *d, const codes *a, const codes *b)
{
    double de, dn;
    int64_t dd;
    uint64_t dt;
    int32_t o;
    if (a->has_imp != b->has_imp)
        return 1;
    if (!a->has_imp)
        return 0;
    de = (double)(a->imp_e - b->imp_e) * d->pr.pos;
    dn = (double)(a->imp_n - b->imp_n) * d->pr.pos;
    dt = a->imp_t > b->imp_t ? a->imp_t - b->imp_t : b->imp_t - a->imp_t;
    if (sqrt(de * de + dn * dn) > d->cfg.impact_m || dt > d->cfg.impact_t_us)
        return 1;
    dd = a->imp_a - b->imp_a;
    if ((dd < 0 ? -dd : dd) > b->imp_a / 10 + 1)
        return 1;
    dd = a->imp_b - b->imp_b;
    if ((dd < 0 ? -dd : dd) > b->imp_b / 10 + 1)
        return 1;
    o = a->imp_o - b->imp_o;
    if (o < 0)
        o = -o;
    if (ORIENT_CODES - o < o)
        o = ORIENT_CODES - o;
    return o > 200;
}

/* Python Sender.decide: record type (or -1 suppressed), send bits, reason counter (or -1). */
static int decide(tl_dr *d, const codes *r, const double *x, const codes *h, int *send, int *reason)
{
    int k, ms = 0, mc = 0;
    uint64_t dt;
    *send = 0;
    *reason = -1;
    if (!h) {
        *reason = C_NEW;
        return TL_REC_KEY;
    }
    if (r->t_us < h->t_us) {
        *reason = C_STALE;
        return -1;
    }
    dt = r->t_us - h->t_us;
    for (k = 0; k < 6; k++) {
        int v = r->sig[k] - h->sig[k];
        v = v < 0 ? -v : v;
        ms = v > ms ? v : ms;
    }
    for (k = 0; k < 15; k++) {
        int v = r->cor[k] - h->cor[k];
        v = v < 0 ? -v : v;
        mc = v > mc ? v : mc;
    }
    if (ms >= d->cfg.cov_sig_codes || mc >= d->cfg.cov_cor_codes) {
        *send |= TL_SEND_COV;
        *reason = C_COV;
    }
    if (r->flags != h->flags || r->nations != h->nations) {
        *send |= TL_SEND_META;
        if (*reason < 0)
            *reason = C_META;
    }
    if (d->cfg.kind == TL_CODEC_PICTURE && impact_moved(d, r, h)) {
        *send |= TL_SEND_IMPACT;
        if (*reason < 0)
            *reason = C_IMPACT;
    }
    if (*reason < 0) {
        if (dt >= d->cfg.heartbeat_us) {
            *reason = C_HEART;
        } else {
            double y[6], de, dn, du;
            for (k = 0; k < 3; k++) {
                y[k] = (double)h->pq[k] * d->pr.pos;
                y[3 + k] = (double)h->vq[k] * d->pr.vel;
            }
            tl_drm_extrapolate(&d->model, y, (double)dt * 1e-6);
            de = y[0] - x[0];
            dn = y[1] - x[1];
            du = y[2] - x[2];
            if (sqrt(de * de + dn * dn + du * du) > d->cfg.threshold_m)
                *reason = C_POS;
        }
    }
    if (*reason < 0)
        return -1;
    if (!tlc_delta_ok(h, r->t_us, &d->pr)) {
        *send = 0;
        return TL_REC_KEY;
    }
    return TL_REC_DELTA;
}

int32_t tl_dr_encode(tl_dr *d, uint64_t base_us, tl_track_batch *in, int32_t *consumed,
                     uint8_t *out, int32_t cap)
{
    uint8_t bits[TL_CODEC_MAX_PAYLOAD + 8], head[HDR_MAX];
    bw w;
    int32_t i, st, count = 0, kind;
    int hn, nbytes, limit;
    uint32_t prev_id = 0, prev_rid = 0, base_rid = 0;
    uint64_t prev_t = base_us;
    int have_rid = 0;
    codes r, n;
    srcs ss;
    if (!d || !in || !out || !consumed || cap < 8 || in->n < 0 || !in->rtype || !in->send)
        return TL_CODEC_EARG;
    if (in->n > 0 && (!in->tid || !in->t_us || !in->x || !in->P))
        return TL_CODEC_EARG;
    kind = d->cfg.kind;
    limit = cap < TL_CODEC_MAX_PAYLOAD ? cap : TL_CODEC_MAX_PAYLOAD;
    *consumed = 0;
    memset(&ss, 0, sizeof(ss));
    memset(&w, 0, sizeof(w));
    w.buf = bits;
    w.cap_bits = (int64_t)TL_CODEC_MAX_PAYLOAD * 8;
    for (i = 0; i < in->n && count < TL_CODEC_MAX_RECORDS; i++) {
        int op = in->rtype[i], rt, send = 0, reason = -1, ns = 0;
        entry *e = tlc_tab_find(d->t, in->tid[i]);
        const codes *h = (e && e->valid) ? &e->c : NULL;
        uint8_t node[TL_CODEC_MAX_SOURCES];
        uint32_t rid[TL_CODEC_MAX_SOURCES];
        bw saved = w;
        uint32_t s_id = prev_id, s_rid = prev_rid;
        uint64_t s_t = prev_t;
        if (op == TL_DR_DROP) {
            rt = TL_REC_DROP;
            memset(&r, 0, sizeof(r));
            r.tid = in->tid[i];
            r.t_us = in->t_us[i];
        } else if (op == TL_DR_UPDATE) {
            if ((st = tlc_quantise(in, i, kind, &d->pr, &r)) != 0)
                return st;
            rt = decide(d, &r, in->x + 6 * i, h, &send, &reason);
        } else {
            return TL_CODEC_EARG;
        }
        if (kind == TL_CODEC_PICTURE && rt != TL_REC_DROP) {
            /* sources: pending ones of suppressed updates first, then this update's, newest 16 */
            int own = in->n_src ? in->n_src[i] : 0, pend = (e ? e->n_pend : 0), total, skip, k;
            if (own > TL_CODEC_MAX_SOURCES || (own && (!in->src_node || !in->src_rid)))
                return TL_CODEC_ERANGE;
            total = pend + own;
            skip = total > TL_CODEC_MAX_SOURCES ? total - TL_CODEC_MAX_SOURCES : 0;
            for (k = skip; k < total; k++) {
                node[ns] = k < pend ? e->pend_node[k] : in->src_node[TL_CODEC_MAX_SOURCES * i + k - pend];
                rid[ns] = k < pend ? e->pend_rid[k] : in->src_rid[TL_CODEC_MAX_SOURCES * i + k - pend];
                ns++;
            }
        }
        if (rt < 0) {
            /* suppressed (or stale): nothing written */
            d->cnt[C_INPUTS]++;
            if (reason == C_STALE) {
                d->cnt[C_STALE]++;
            } else {
                d->cnt[C_SUPP]++;
                if (kind == TL_CODEC_PICTURE && ns > 0) {
                    e = tlc_tab_insert(d->t, r.tid);
                    if (e) {
                        memcpy(e->pend_node, node, (size_t)ns);
                        memcpy(e->pend_rid, rid, (size_t)ns * sizeof(uint32_t));
                        e->n_pend = (uint8_t)ns;
                    }
                }
            }
            in->rtype[i] = TL_REC_NONE;
            in->send[i] = 0;
            *consumed = i + 1;
            continue;
        }
        if (count == 0 && kind == TL_CODEC_REPORT && rt != TL_REC_DROP) {
            base_rid = r.report_id;
            prev_rid = base_rid;
            have_rid = 1;
        }
        st = tlc_put_record(&w, kind, &d->pr, rt, send, &r, h, node, rid, ns, &prev_id, &prev_t, &prev_rid,
                        &ss, &n);
        if (st)
            return st;
        nbytes = (int)((w.bit + 7) >> 3);
        if (w.over || tlc_header(head, kind, &d->pr, base_us, base_rid, count + 1) + nbytes > limit) {
            w = saved;   /* roll back this record; the caller sends the rest next */
            prev_id = s_id;
            prev_t = s_t;
            prev_rid = s_rid;
            /* ss needs no roll back: no record follows in this payload */
            if (count == 0 && have_rid) {
                base_rid = 0;
                prev_rid = 0;
            }
            break;
        }
        /* commit: the receiver will hold n (or nothing after DROP) */
        if (rt == TL_REC_DROP) {
            if (e)
                tlc_tab_remove(d->t, e);
            d->cnt[C_DROP]++;
        } else {
            e = tlc_tab_insert(d->t, r.tid);
            if (!e)
                return TL_CODEC_EFULL;
            e->c = n;
            e->valid = 1;
            e->n_pend = 0;
            d->cnt[C_INPUTS]++;
            d->cnt[rt == TL_REC_KEY ? C_KEY : C_DELTA]++;
            if (reason >= 0)
                d->cnt[reason]++;
        }
        in->rtype[i] = (uint8_t)rt;
        in->send[i] = (uint8_t)(rt == TL_REC_KEY ? (TL_SEND_COV | TL_SEND_META) : send);
        count++;
        *consumed = i + 1;
    }
    nbytes = tlc_bw_finish(&w);
    hn = tlc_header(head, kind, &d->pr, base_us, base_rid, count);
    if (hn + nbytes > limit)
        return TL_CODEC_ENOSPACE;
    memcpy(out, head, (size_t)hn);
    if (nbytes)
        memcpy(out + hn, bits, (size_t)nbytes);
    return hn + nbytes;
}
