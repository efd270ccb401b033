/* trilink kernel: the relay's receive hot path (relaypath.h). */
#include "relaypath.h"

#include <stddef.h>

#include "smallmat.h"

/* ENU -> ECEF of one 6-state and covariance, with Tt = T^T = diag(R^T, R^T):
 * xe = Tt x + p0, Pe = sym(Tt P T). */
static void to_ecef6(const double Tt[36], const double *p0, const double *x, const double *P,
                     double *xe, double *Pe)
{
    double A[36];
    int j;
    tl_sm_mul(6, 6, 1, Tt, x, xe);
    for (j = 0; j < 3; j++)
        xe[j] += p0[j];
    tl_sm_mul(6, 6, 6, Tt, P, A);
    tl_sm_mul_bt(6, 6, 6, A, Tt, Pe);
    tl_sm_symmetrize(6, Pe);
}

int32_t tl_relay_rx(const uint8_t *in, int32_t len, tl_codec_table *held, tl_track_batch *out,
                    int32_t cap_records, tl_codec_header *hdr, const double *R, const double *p0,
                    double *xe, double *Pe, int32_t *clean)
{
    double Tt[36] = {0};
    int32_t n, i, j, ok = 1;
    if (R == NULL || p0 == NULL || xe == NULL || Pe == NULL || clean == NULL || out == NULL)
        return TL_CODEC_EARG;
    *clean = 0;
    n = tl_codec_decode(in, len, held, out, cap_records, hdr);
    if (n < 0)
        return n;
    for (i = 0; i < 3; i++)
        for (j = 0; j < 3; j++)
            Tt[6 * i + j] = Tt[6 * (i + 3) + j + 3] = R[3 * j + i];
    for (i = 0; i < n; i++) {
        if (out->status[i] != TL_REC_OK || out->rtype[i] == TL_REC_DROP)
            ok = 0;
        if (out->rtype[i] != TL_REC_DROP)
            to_ecef6(Tt, p0, out->x + 6 * (size_t)i, out->P + 36 * (size_t)i, xe + 6 * (size_t)i,
                     Pe + 36 * (size_t)i);
    }
    *clean = ok;
    return n;
}

int32_t tl_relay_ingest(tl_relay_rx_ctx *c, const uint8_t *in, int32_t len, tl_codec_table *held,
                        tl_picture *pic, int32_t relay_time, int64_t rx_us)
{
    int32_t n, i, rc;
    int64_t newest, shift = 0;
    if (c == NULL || c->t_us == NULL || c->t_s == NULL || c->nodes == NULL || c->status == NULL)
        return TL_CODEC_EARG;
    c->stored = c->ahead = c->refused = 0;
    n = tl_relay_rx(in, len, held, c->batch, c->cap, &c->hdr, c->R, c->p0, c->xe, c->Pe, &c->clean);
    if (n <= 0 || !c->clean || pic == NULL)
        return n;
    if (!relay_time) {
        newest = (int64_t)c->batch->t_us[0];
        for (i = 1; i < n; i++)
            if ((int64_t)c->batch->t_us[i] > newest)
                newest = (int64_t)c->batch->t_us[i];
        shift = rx_us - newest;
    }
    for (i = 0; i < n; i++) {
        int64_t t = (int64_t)c->batch->t_us[i] + shift;
        /* A measurement cannot postdate its own receipt (a board clock
         * stepped ahead): clamped, and counted by the caller. */
        if (t > rx_us) {
            t = rx_us;
            c->ahead++;
        }
        c->t_us[i] = t;
        c->t_s[i] = (double)t / 1e6;
        c->nodes[i] = c->node;
    }
    rc = tl_picture_update(pic, n, c->nodes, c->batch->tid, c->batch->report_id, c->t_s, c->xe, c->Pe,
                           c->status);
    if (rc < 0)
        return TL_CODEC_EARG;
    c->refused = rc;
    c->stored = 1;
    return n;
}

int32_t tl_relay_rx_frame(tl_keyring *k, const uint8_t *link_mask, const uint8_t *raw, int32_t len,
                          uint8_t relay_node, int32_t ingest, tl_relay_rx_ctx *const *rx,
                          tl_codec_table *const *held, tl_picture *pic, int64_t rx_us, tl_header *hdr,
                          int32_t *ingested)
{
    int32_t rc;
    tl_relay_rx_ctx *c;
    if (k == NULL || link_mask == NULL || raw == NULL || len < 0 || hdr == NULL || ingested == NULL)
        return TL_ERR_ARG;
    *ingested = TL_RELAY_NOT_INGESTED;
    rc = tl_frame_parse(raw, (size_t)len, hdr);
    if (rc != TL_OK)
        return rc;
    rc = tl_keyring_verify(k, raw, (size_t)len, link_mask);
    if (rc != TL_OK)
        return rc;
    /* Only a frame the session layer will take as it is: a report to us. */
    if (!ingest || rx == NULL || hdr->type != TL_MSG_TRACK_REPORT ||
        (hdr->dst != relay_node && hdr->dst != TL_BROADCAST))
        return TL_OK;
    c = rx[hdr->src];
    if (c == NULL)
        return TL_OK;
    *ingested = tl_relay_ingest(c, raw + TL_HEADER_SIZE, (int32_t)hdr->length,
                                held != NULL ? held[hdr->src] : NULL, pic,
                                (hdr->flags & TL_FLAG_RELAY_TIME) != 0, rx_us);
    return TL_OK;
}
