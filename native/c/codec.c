/* Track codec (PROTOCOL.md section 5): see codec.h. Mirrors
 * boards/trilink_board/codec.py step by step; keep the two in lockstep.
 * The dead-reckoning sender (tl_dr_*) is deadreckon.c; what the two share
 * is codec_internal.h. */
#include "codec.h"
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIG_MIN (-96)
#define COR_MAX 63
#define G_MM 9807
#define MAX_DELTA_US ((int64_t)1 << 30)
#define MAX_VEL_MM ((int64_t)1 << 31)
#define CODE_LIMIT ((int64_t)1 << 52)
#define MAX_STEP 65535

/* Tables: integer mantissas / 2^53 (exact in every implementation). */
#define S53 9007199254740992.0
static const double COR_T[63] = {
    281383386518927.0, 841959695447570.0, 1396032391095049.0, 1939487246163748.0, 2468527339840547.0,
    2979771722941188.0, 3470329453846045.0, 3937846499709550.0, 4380525411902382.0, 4797119807092240.0,
    5186907301622727.0, 5549645552645166.0, 5885516456136924.0, 6195063422876707.0, 6479126131100544.0,
    6738776387585135.0, 6975257855922026.0, 7189931543794066.0, 7384228158598038.0, 7559607788164480.0,
    7717526858175018.0, 7859411957256734.0, 7986639888714489.0, 8100523181895719.0, 8202300251899004.0,
    8293129410722882.0, 8374085986122568.0, 8446161880375719.0, 8510266987711066.0, 8567231977673339.0,
    8617812036439595.0, 8662691235600500.0, 8702487266400857.0, 8737756336311158.0, 8768998074275120.0,
    8796660331723423.0, 8821143799391518.0, 8842806386159265.0, 8861967326570639.0, 8878910999358439.0,
    8893890451061369.0, 8907130627438534.0, 8918831321507429.0, 8929169851197926.0, 8938303482273501.0,
    8946371613684286.0, 8953497743175577.0, 8959791231010389.0, 8965348879256019.0, 8970256343372175.0,
    8974589391928719.0, 8978415029255183.0, 8981792494741681.0, 8984774151415313.0, 8987406275338577.0,
    8989729756338002.0, 8991780719586144.0, 8993591076636695.0, 8995189013655086.0, 8996599423797014.0,
    8997844289964068.0, 8998943023506916.0, 8999912763849153.0};
static const double COR_V[64] = {
    0.0, 562218089186061.0, 1120072264881926.0, 1669333060091357.0, 2206031193474850.0, 2726566848443015.0,
    3227796491356120.0, 3707093498740763.0, 4162381314475386.0, 4592140159472823.0, 4995390205824917.0,
    5371655444459867.0, 5720913170592296.0, 6043534130751897.0, 6340218031185942.0, 6611928444306813.0,
    6859830313939860.0, 7085232378190706.0, 7289535996382569.0, 7474191145208186.0, 7640659769634286.0,
    7790386242554818.0, 7924774393406584.0, 8045170389993664.0, 8152850675660151.0, 8249014151710385.0,
    8334777831005304.0, 8411175254970767.0, 8479157048784167.0, 8539593077926909.0, 8593275756482010.0,
    8640924138990739.0, 8683188500808660.0, 8720655175596440.0, 8753851472695240.0, 8783250542140961.0,
    8809276091792670.0, 8832306890483785.0, 8852681014289115.0, 8870699810939255.0, 8886631571026370.0,
    8900714904747628.0, 8913161830227645.0, 8924160584543524.0, 8933878171938366.0, 8942462665754587.0,
    8950045281672268.0, 8956742240159320.0, 8962656435833600.0, 8967878930861344.0, 8972490288693778.0,
    8976561763467390.0, 8980156359332768.0, 8983329772883317.0, 8986131230765352.0, 8988604233491035.0,
    8990787215462519.0, 8992714130260697.0, 8994414969361211.0, 8995916221616708.0, 8997241280087922.0,
    8998410802115503.0, 8999443027896931.0, 9000354062264820.0};
static const double SIG_T[4] = {4911210218475899.0, 5840446135085607.0, 6945500098633947.0,
                                8259638134547591.0};
static const double SIG_Q[4] = {4503599627370496.0, 5355712719992597.0, 6369051672525773.0,
                                7574121564787629.0};  /* / 2^52 */



/* ---- held-copy table: open addressing, linear probing, backward-shift delete ---- */


tl_codec_table *tl_codec_table_new(int32_t capacity)
{
    tl_codec_table *t;
    uint32_t size = 16;
    if (capacity < 1 || capacity > (1 << 24))
        return NULL;
    while (size < (uint32_t)capacity * 2u)
        size <<= 1;
    t = (tl_codec_table *)calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->slots = (entry *)calloc(size, sizeof(entry));
    t->scratch = (codes *)calloc(TL_CODEC_MAX_RECORDS, sizeof(codes));
    if (!t->slots || !t->scratch) {
        tl_codec_table_free(t);
        return NULL;
    }
    t->capacity = capacity;
    t->mask = size - 1;
    return t;
}

void tl_codec_table_free(tl_codec_table *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t->scratch);
    free(t);
}

int32_t tl_codec_table_count(const tl_codec_table *t)
{
    uint32_t i;
    int32_t n = 0;
    if (!t)
        return 0;
    for (i = 0; i <= t->mask; i++)
        n += t->slots[i].used && t->slots[i].valid;
    return n;
}

static uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

entry *tlc_tab_find(tl_codec_table *t, uint32_t tid)
{
    uint32_t i = hash32(tid) & t->mask;
    while (t->slots[i].used) {
        if (t->slots[i].tid == tid)
            return &t->slots[i];
        i = (i + 1) & t->mask;
    }
    return NULL;
}

entry *tlc_tab_insert(tl_codec_table *t, uint32_t tid)
{
    uint32_t i = hash32(tid) & t->mask;
    while (t->slots[i].used) {
        if (t->slots[i].tid == tid)
            return &t->slots[i];
        i = (i + 1) & t->mask;
    }
    if (t->count >= t->capacity)
        return NULL;
    memset(&t->slots[i], 0, sizeof(entry));
    t->slots[i].used = 1;
    t->slots[i].tid = tid;
    t->count++;
    return &t->slots[i];
}

void tlc_tab_remove(tl_codec_table *t, entry *e)
{
    uint32_t i = (uint32_t)(e - t->slots), j = i;
    t->slots[i].used = 0;
    t->count--;
    for (;;) {
        uint32_t k;
        j = (j + 1) & t->mask;
        if (!t->slots[j].used)
            return;
        k = hash32(t->slots[j].tid) & t->mask;
        /* move j back to i unless its home k lies cyclically in (i, j] */
        if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        t->slots[i] = t->slots[j];
        t->slots[j].used = 0;
        i = j;
    }
}

int32_t tl_codec_table_forget(tl_codec_table *t, int64_t tid)
{
    entry *e;
    if (!t)
        return TL_CODEC_EARG;
    if (tid < 0) {   /* everything, pending sources included */
        memset(t->slots, 0, (size_t)(t->mask + 1) * sizeof(entry));
        t->count = 0;
        return 0;
    }
    if (tid > 0xFFFFFFFFLL)
        return 0;
    e = tlc_tab_find(t, (uint32_t)tid);
    if (!e || !e->valid)
        return 0;
    e->valid = 0;
    if (!e->n_pend)
        tlc_tab_remove(t, e);
    return 1;
}

/* ---- quantisation ---- */
static int qround(double v, int64_t *out)
{
    double a;
    if (!(fabs(v) < 4503599627370496.0))   /* 2^52; also rejects NaN */
        return TL_CODEC_ERANGE;
    a = floor(fabs(v) + 0.5);
    *out = v < 0 ? -(int64_t)a : (int64_t)a;
    return 0;
}

static int64_t rdiv(int64_t a, int64_t b)
{
    int64_t q = ((a < 0 ? -a : a) + b / 2) / b;
    return a < 0 ? -q : q;
}

/* var is a positive normal double (quantise_cov checks 2^-100..2^100), so
 * frexp's m * 2^53 is its 53-bit significand and e its biased exponent - 1022,
 * read from the IEEE-754 bits: the same integers, without a libm call. */
static int32_t sig_code(double var)
{
    uint64_t bits, m;
    int i;
    int32_t k;
    memcpy(&bits, &var, sizeof(bits));
    m = (bits & (((uint64_t)1 << 52) - 1u)) | ((uint64_t)1 << 52);
    k = 4 * ((int32_t)((bits >> 52) & 0x7ffu) - 1022) - 4;
    for (i = 0; i < 4; i++)
        k += m >= (uint64_t)SIG_T[i];
    if (k < SIG_MIN)
        return SIG_MIN;
    if (k > SIG_MIN + 255)
        return SIG_MIN + 255;
    return k;
}

static double sig_var(int32_t k)
{
    int32_t u = k - SIG_MIN;
    return ldexp(SIG_Q[u % 4] * 0x1p-52, u / 4 + SIG_MIN / 4);
}

/* The number of thresholds at or below |p|, in two rounds of independent
 * comparisons (no chain of dependent loads, no unpredictable branches):
 * c = how many of the block ends T[7], T[15], .., T[55] are <= |p|, then
 * the count inside block c (T[8c] .. T[8c + 6]; T[8c + 7] > |p| when c < 7,
 * and block 7 is T[56] .. T[62]). |p| * 2^53 is exact (or +inf, above every
 * threshold), so comparing it with the integer mantissas equals comparing
 * |p| with COR_T * 2^-53; NaN compares false everywhere and gives 0. */
static int32_t cor_code(double p)
{
    double a = fabs(p) * 0x1p53;
    const double *t;
    int32_t c, lo;
    c = (a >= COR_T[7]) + (a >= COR_T[15]) + (a >= COR_T[23]) + (a >= COR_T[31]) + (a >= COR_T[39]) +
        (a >= COR_T[47]) + (a >= COR_T[55]);
    t = COR_T + 8 * c;
    lo = 8 * c + (a >= t[0]) + (a >= t[1]) + (a >= t[2]) + (a >= t[3]) + (a >= t[4]) + (a >= t[5]) +
         (a >= t[6]);
    return p < 0 ? -lo : lo;
}

static double cor_value(int32_t c) { return c < 0 ? -(COR_V[-c] * 0x1p-53) : COR_V[c] * 0x1p-53; }

static int quantise_cov(const double *P, int32_t sig[6], int32_t cor[15])
{
    double s[6], L[36], inv[6], invd[6];
    int i, j, k, n = 0;
    double vmin = ldexp(1.0, -100), vmax = ldexp(1.0, 100), rem_min = ldexp(1.0, -52);
    {   /* every |P[i]| <= 2^100 (NaN fails): the largest magnitude's bits
         * against 2^100's, one branch for the 36 entries */
        uint64_t u, big = 0, lim;
        memcpy(&lim, &vmax, sizeof(lim));
        for (i = 0; i < 36; i++) {
            memcpy(&u, &P[i], sizeof(u));
            u &= ~((uint64_t)1 << 63);
            big = u > big ? u : big;
        }
        if (big > lim)
            return TL_CODEC_ERANGE;
    }
    for (i = 0; i < 6; i++) {
        double v = P[7 * i];
        if (!(vmin <= v && v <= vmax))
            return TL_CODEC_ERANGE;
        sig[i] = sig_code(v);
        s[i] = sqrt(v);
    }
    /* L needs no zeroing: every L[6i + k] read below (k <= j < i) was written first */
    /* open loop: the exact factor's partial correlations, each quantised */
    for (i = 0; i < 6; i++)
        inv[i] = 1.0 / s[i];   /* reciprocals once: fewer divisions, same in Python */
    for (i = 0; i < 6; i++) {
        double rem = 1.0;
        for (j = 0; j < i; j++) {
            double acc = P[6 * i + j] * inv[i] * inv[j], lij;
            for (k = 0; k < j; k++)
                acc -= L[6 * i + k] * L[6 * j + k];
            lij = acc * invd[j];
            if (rem < rem_min)
                rem = rem_min;
            cor[n++] = cor_code(lij / sqrt(rem));
            L[6 * i + j] = lij;
            rem = rem - lij * lij;
        }
        if (rem < rem_min)
            rem = rem_min;
        L[7 * i] = sqrt(rem);
        invd[i] = 1.0 / L[7 * i];
    }
    return 0;
}

static void cov_from_codes(const int32_t sig[6], const int32_t cor[15], double *P)
{
    double s[6], L[36];
    int i, j, k, n = 0;
    memset(L, 0, sizeof(L));
    for (i = 0; i < 6; i++) {
        double rem = 1.0;
        for (j = 0; j < i; j++) {
            double ph = cor_value(cor[n++]);
            L[6 * i + j] = ph * sqrt(rem);
            rem = rem * (1.0 - ph * ph);
        }
        L[7 * i] = sqrt(rem);
    }
    for (i = 0; i < 6; i++)
        s[i] = sqrt(sig_var(sig[i]));
    for (i = 0; i < 6; i++) {
        for (j = 0; j <= i; j++) {
            double acc = 0.0, v;
            for (k = 0; k <= j; k++)
                acc += L[6 * i + k] * L[6 * j + k];
            v = acc * s[i] * s[j];
            P[6 * i + j] = v;
            P[6 * j + i] = v;
        }
    }
    for (i = 0; i < 6; i++)
        P[7 * i] = sig_var(sig[i]);
}


void tlc_prec_set(prec *p, int32_t pos_mm, int32_t vel_mm)
{
    p->pos_mm = pos_mm;
    p->vel_mm = vel_mm;
    p->pos = (double)pos_mm / 1000.0;
    p->vel = (double)vel_mm / 1000.0;
}

/* Codes of record i of batch b (the Python quantise()). */
int tlc_quantise(const tl_track_batch *b, int32_t i, int32_t kind, const prec *pr, codes *r)
{
    const double *x = b->x + 6 * i;
    int k, st;
    memset(r, 0, sizeof(*r));
    r->tid = b->tid[i];
    r->t_us = b->t_us[i];
    r->flags = b->flags ? b->flags[i] : 0;
    r->nations = b->nations ? b->nations[i] : 0;
    r->report_id = (kind == TL_CODEC_REPORT && b->report_id) ? b->report_id[i] : 0;
    for (k = 0; k < 3; k++) {
        if ((st = qround(x[k] / pr->pos, &r->pq[k])) != 0)
            return st;
        if ((st = qround(x[3 + k] / pr->vel, &r->vq[k])) != 0)
            return st;
    }
    if ((st = quantise_cov(b->P + 36 * i, r->sig, r->cor)) != 0)
        return st;
    if (kind == TL_CODEC_PICTURE && b->has_impact && b->has_impact[i]) {
        const double *im = b->impact + 5 * i;
        int64_t o;
        double od = im[4];
        if (!(fabs(od) < 1e6))
            return TL_CODEC_ERANGE;
        if (qround(im[0] / pr->pos, &r->imp_e) || qround(im[1] / pr->pos, &r->imp_n) ||
            qround(im[2] / pr->pos, &r->imp_a) || qround(im[3] / pr->pos, &r->imp_b) ||
            qround(od * 100.0, &o) || r->imp_a < 0 || r->imp_b < 0)
            return TL_CODEC_ERANGE;
        o %= ORIENT_CODES;
        if (o < 0)
            o += ORIENT_CODES;
        r->imp_o = (int32_t)o;
        r->imp_t = b->impact_t_us[i];
        r->has_imp = 1;
    }
    return 0;
}

/* ---- bits ---- */

static inline void put(bw *w, uint64_t v, int n)
{
    if (w->bit + n > w->cap_bits) {
        w->over = 1;
        return;
    }
    w->bit += n;
    if (n <= 32) {   /* common case in one step: nacc < 32, so acc stays below 2^64 */
        /* locals: a byte store through buf may alias *w, which would make
         * the compiler reload every field after each store */
        uint64_t acc = (w->acc << n) | (v & ((((uint64_t)1 << n) - 1u)));
        int nacc = w->nacc + n;
        if (nacc >= 32) {
            uint64_t x;
            uint8_t *o = w->buf + w->nbyte;
            nacc -= 32;
            x = acc >> nacc;
            o[0] = (uint8_t)(x >> 24);
            o[1] = (uint8_t)(x >> 16);
            o[2] = (uint8_t)(x >> 8);
            o[3] = (uint8_t)x;
            w->nbyte += 4;
            acc &= ((uint64_t)1 << nacc) - 1u;
        }
        w->acc = acc;
        w->nacc = nacc;
        return;
    }
    while (n > 0) {
        int k = n > 24 ? 24 : n;   /* nacc < 32 before: acc stays below 2^56 */
        n -= k;
        w->acc = (w->acc << k) | ((v >> n) & (((uint64_t)1 << k) - 1u));
        w->nacc += k;
        if (w->nacc >= 32) {
            uint64_t x;
            w->nacc -= 32;
            x = w->acc >> w->nacc;
            w->buf[w->nbyte] = (uint8_t)(x >> 24);
            w->buf[w->nbyte + 1] = (uint8_t)(x >> 16);
            w->buf[w->nbyte + 2] = (uint8_t)(x >> 8);
            w->buf[w->nbyte + 3] = (uint8_t)x;
            w->nbyte += 4;
            w->acc &= ((uint64_t)1 << w->nacc) - 1u;
        }
    }
}

/* Flush the pending bits (zero padding to a byte); returns the byte count. */
int tlc_bw_finish(bw *w)
{
    int64_t nb = w->nbyte;
    int left = w->nacc;
    while (left > 0) {
        int sh = left - 8;
        w->buf[nb++] = (uint8_t)(sh >= 0 ? w->acc >> sh : w->acc << -sh);
        left -= 8;
    }
    return (int)((w->bit + 7) >> 3);
}

static int bitlen(uint64_t v)
{
#if defined(__GNUC__) || defined(__clang__)
    return v ? 64 - __builtin_clzll(v) : 0;   /* one instruction where the compiler has it */
#else
    int n = 0;
    if (v >> 32) { v >>= 32; n += 32; }
    if (v >> 16) { v >>= 16; n += 16; }
    if (v >> 8) { v >>= 8; n += 8; }
    if (v >> 4) { v >>= 4; n += 4; }
    if (v >> 2) { v >>= 2; n += 2; }
    if (v >> 1) { v >>= 1; n += 1; }
    return n + (int)v;
#endif
}

static uint64_t zz(int64_t v) { return v >= 0 ? (uint64_t)v * 2u : (uint64_t)(-(v + 1)) * 2u + 1u; }
static int64_t unzz(uint64_t z) { return (z & 1u) ? -(int64_t)((z - 1u) >> 1) - 1 : (int64_t)(z >> 1); }

static void put_ue(bw *w, uint64_t v)
{
    int n;
    v += 1;
    n = bitlen(v);
    if (n <= 16) {   /* the n - 1 zeros and v in one write: v < 2^n */
        put(w, v, 2 * n - 1);
        return;
    }
    put(w, 0, n - 1);
    put(w, v, n);
}

static void put_se(bw *w, int64_t v) { put_ue(w, zz(v)); }

static void put_group(bw *w, const int64_t *vals, int k)
{
    int i, width = 0;
    for (i = 0; i < k; i++) {
        int b = bitlen(zz(vals[i]));
        if (b > width)
            width = b;
    }
    put(w, (uint64_t)width, 6);
    for (i = 0; i < k; i++)
        put(w, zz(vals[i]), width);
}

typedef struct br {
    const uint8_t *buf;
    int64_t bit, end;
    int err;              /* first error: TL_CODEC_ETRUNC or EMALFORMED */
} br;

static uint64_t get(br *r, int n)
{
    uint64_t v = 0;
    if (r->err)
        return 0;
    if (r->bit + n > r->end) {
        r->err = TL_CODEC_ETRUNC;
        return 0;
    }
    while (n > 0) {
        int off = (int)(r->bit & 7);
        int avail = 8 - off;
        int k = n < avail ? n : avail;
        uint8_t byte = r->buf[r->bit >> 3];
        v = (v << k) | (uint64_t)((byte >> (avail - k)) & ((1u << k) - 1u));
        r->bit += k;
        n -= k;
    }
    return v;
}

static uint64_t get_ue(br *r)
{
    int z = 0;
    while (!r->err && get(r, 1) == 0) {
        if (r->err)
            return 0;
        if (++z > 63) {
            r->err = TL_CODEC_EMALFORMED;
            return 0;
        }
    }
    if (r->err)
        return 0;
    return (((uint64_t)1 << z) | get(r, z)) - 1u;
}

static int64_t get_se(br *r) { return unzz(get_ue(r)); }

static void get_group(br *r, int64_t *vals, int k)
{
    int i, width = (int)get(r, 6);
    for (i = 0; i < k; i++)
        vals[i] = unzz(get(r, width));
}

static void put_varint(uint8_t *out, int *n, uint64_t v)
{
    while (v >= 0x80) {
        out[(*n)++] = (uint8_t)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    out[(*n)++] = (uint8_t)v;
}

static int get_varint(const uint8_t *in, int32_t len, int32_t *pos, uint64_t *v)
{
    int shift = 0;
    *v = 0;
    for (;;) {
        uint8_t b;
        if (*pos >= len)
            return TL_CODEC_ETRUNC;
        b = in[(*pos)++];
        if (shift == 63 && (b & 0x7E))
            return TL_CODEC_EMALFORMED;   /* over 64 bits */
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return 0;
        shift += 7;
        if (shift > 63)
            return TL_CODEC_EMALFORMED;
    }
}

/* ---- delta predictor ---- */
int tlc_delta_ok(const codes *h, uint64_t t_us, const prec *pr)
{
    int k;
    if (t_us < h->t_us || t_us - h->t_us >= (uint64_t)MAX_DELTA_US)
        return 0;
    for (k = 0; k < 3; k++) {
        int64_t v = h->vq[k] < 0 ? -h->vq[k] : h->vq[k];
        if (v >= MAX_VEL_MM / pr->vel_mm + 1 || v * pr->vel_mm >= MAX_VEL_MM)
            return 0;
    }
    return 1;
}

static void predict(const codes *h, int64_t dt, const prec *pr, int64_t pp[3], int64_t pv[3])
{
    int k;
    int64_t dtm = dt / 1000;
    for (k = 0; k < 3; k++) {
        pp[k] = h->pq[k] + rdiv(h->vq[k] * pr->vel_mm * dt, (int64_t)pr->pos_mm * 1000000);
        pv[k] = h->vq[k];
    }
    pp[2] -= rdiv((int64_t)G_MM * dtm * dtm, (int64_t)2000000 * pr->pos_mm);
    pv[2] -= rdiv((int64_t)G_MM * dtm, (int64_t)1000 * pr->vel_mm);
}

/* ---- one record ---- */
/* Write record r (type rtype, send bits) against base h (NULL: none) and
 * fill n with the receiver's resulting copy. prev_* are the running
 * batch predecessors. Returns 0 or an error. */
int tlc_put_record(bw *w, int32_t kind, const prec *pr, int rtype, int send, const codes *r,
                      const codes *h, const uint8_t *src_node, const uint32_t *src_rid, int n_src,
                      uint32_t *prev_id, uint64_t *prev_t, uint32_t *prev_rid, srcs *ss, codes *n)
{
    int k;
    int32_t upd = h ? (h->upd + 1) % 16 : 0;
    int64_t dt_prev;
    if (rtype == TL_REC_DELTA && (!h || !tlc_delta_ok(h, r->t_us, pr)))
        return h ? TL_CODEC_ERANGE : TL_CODEC_ENOBASE;
    if (r->t_us >= *prev_t ? r->t_us - *prev_t >= ((uint64_t)1 << 62) : *prev_t - r->t_us >= ((uint64_t)1 << 62))
        return TL_CODEC_ERANGE;
    dt_prev = r->t_us >= *prev_t ? (int64_t)(r->t_us - *prev_t) : -(int64_t)(*prev_t - r->t_us);
    put(w, (uint64_t)rtype, 2);
    if (rtype != TL_REC_DROP)
        put(w, (uint64_t)upd, 4);
    put_se(w, (int64_t)r->tid - (int64_t)*prev_id);
    put_se(w, dt_prev);
    *prev_id = r->tid;
    *prev_t = r->t_us;
    if (rtype == TL_REC_DROP)
        return 0;
    if (kind == TL_CODEC_REPORT) {
        put_se(w, (int64_t)r->report_id - (int64_t)*prev_rid);
        *prev_rid = r->report_id;
    }
    *n = *r;
    n->upd = upd;
    if (rtype == TL_REC_KEY) {
        put_group(w, r->pq, 3);
        put_group(w, r->vq, 3);
        uint64_t acc = 0;
        /* the same bits as one put per code, in three calls */
        for (k = 0; k < 6; k++)
            acc = (acc << 8) | (uint64_t)(r->sig[k] - SIG_MIN);
        put(w, acc, 48);
        for (acc = 0, k = 0; k < 8; k++)
            acc = (acc << 7) | (uint64_t)(r->cor[k] + COR_MAX);
        put(w, acc, 56);
        for (acc = 0; k < 15; k++)
            acc = (acc << 7) | (uint64_t)(r->cor[k] + COR_MAX);
        put(w, acc, 49);
        put(w, r->flags, 8);
        put_ue(w, r->nations);
    } else {
        int64_t pp[3], pv[3], d[3];
        predict(h, (int64_t)(r->t_us - h->t_us), pr, pp, pv);
        for (k = 0; k < 3; k++)
            d[k] = r->pq[k] - pp[k];
        put_group(w, d, 3);
        for (k = 0; k < 3; k++)
            d[k] = r->vq[k] - pv[k];
        put_group(w, d, 3);
        if (send & TL_SEND_COV) {
            put(w, 1, 1);
            for (k = 0; k < 6; k++)
                put_se(w, r->sig[k] - h->sig[k]);
            for (k = 0; k < 15; k++)
                put_se(w, r->cor[k] - h->cor[k]);
        } else {
            put(w, 0, 1);
            memcpy(n->sig, h->sig, sizeof(n->sig));
            memcpy(n->cor, h->cor, sizeof(n->cor));
        }
        if (send & TL_SEND_META) {
            put(w, 1, 1);
            put(w, r->flags, 8);
            put_ue(w, r->nations);
        } else {
            put(w, 0, 1);
            n->flags = h->flags;
            n->nations = h->nations;
        }
    }
    n->has_imp = 0;
    if (kind == TL_CODEC_PICTURE) {
        int send_imp = r->has_imp && (rtype == TL_REC_KEY || (send & TL_SEND_IMPACT));
        if (n_src > 0) {
            put(w, 1, 1);
            put_ue(w, (uint64_t)(n_src - 1));
            for (k = 0; k < n_src; k++) {
                uint8_t nd = src_node[k];
                put(w, nd, 8);
                if (ss->seen[nd])
                    put_se(w, (int64_t)src_rid[k] - (int64_t)ss->prev[nd]);
                else
                    put(w, src_rid[k], 32);
                ss->prev[nd] = src_rid[k];
                ss->seen[nd] = 1;
            }
        } else {
            put(w, 0, 1);
        }
        if (send_imp) {
            int64_t en[2], dtm, di;
            if (r->imp_t >= r->t_us ? r->imp_t - r->t_us >= ((uint64_t)1 << 62)
                                    : r->t_us - r->imp_t >= ((uint64_t)1 << 62))
                return TL_CODEC_ERANGE;
            di = r->imp_t >= r->t_us ? (int64_t)(r->imp_t - r->t_us) : -(int64_t)(r->t_us - r->imp_t);
            dtm = rdiv(di, 1000);
            if (!(-CODE_LIMIT < dtm && dtm < CODE_LIMIT))
                return TL_CODEC_ERANGE;
            en[0] = r->imp_e;
            en[1] = r->imp_n;
            put(w, 1, 1);
            put_group(w, en, 2);
            put_se(w, dtm);
            put_ue(w, (uint64_t)r->imp_a);
            put_ue(w, (uint64_t)r->imp_b);
            put(w, (uint64_t)r->imp_o, 15);
            n->has_imp = 1;
            n->imp_t = (uint64_t)((int64_t)r->t_us + 1000 * dtm);
        } else {
            put(w, 0, 1);
            if (rtype == TL_REC_DELTA && h->has_imp) {
                n->has_imp = 1;
                n->imp_e = h->imp_e;
                n->imp_n = h->imp_n;
                n->imp_t = h->imp_t;
                n->imp_a = h->imp_a;
                n->imp_b = h->imp_b;
                n->imp_o = h->imp_o;
            }
        }
    }
    return 0;
}

int tlc_header(uint8_t *out, int32_t kind, const prec *pr, uint64_t base_us, uint32_t base_rid,
                  int32_t count)
{
    int n = 0;
    out[n++] = TL_CODEC_VERSION;
    out[n++] = (uint8_t)kind;
    put_varint(out, &n, (uint64_t)pr->pos_mm);
    put_varint(out, &n, (uint64_t)pr->vel_mm);
    put_varint(out, &n, base_us);
    if (kind == TL_CODEC_REPORT)
        put_varint(out, &n, base_rid);
    put_varint(out, &n, (uint64_t)count);
    return n;
}

/* The base a record of tid sees: staged in this call, else the held copy. */
static const codes *base_of(tl_codec_table *t, uint32_t tid)
{
    entry *e;
    if (!t)
        return NULL;
    e = tlc_tab_find(t, tid);
    if (!e)
        return NULL;
    if (e->gen == t->gen)
        return e->stage < 0 ? NULL : &t->scratch[e->stage];
    return e->valid ? &e->c : NULL;
}

/* Mark e staged in this call (at scratch index `stage`, -1 = dropped). */
static void stage(tl_codec_table *t, entry *e, int32_t idx)
{
    if (e->gen != t->gen)
        t->staged[t->nstaged++] = e->tid;   /* at most one per record: fits */
    e->gen = t->gen;
    e->stage = idx;
}

static void commit(tl_codec_table *t)
{
    int32_t k;
    for (k = 0; k < t->nstaged; k++) {
        entry *e = tlc_tab_find(t, t->staged[k]);
        if (!e)
            continue;
        e->gen = 0;
        if (e->stage < 0) {
            e->valid = 0;
            if (!e->n_pend)
                tlc_tab_remove(t, e);   /* a dropped track leaves no trace */
        } else {
            e->c = t->scratch[e->stage];
            e->valid = 1;
        }
    }
    t->nstaged = 0;
}

static void unstage(tl_codec_table *t)
{
    int32_t k;
    for (k = 0; k < t->nstaged; k++) {
        entry *e = tlc_tab_find(t, t->staged[k]);
        if (e)
            e->gen = 0;
    }
    t->nstaged = 0;
}

static void next_gen(tl_codec_table *t)
{
    uint32_t i;
    t->nstaged = 0;
    t->gen++;
    if (t->gen == 0) {  /* wrapped: clear stale marks */
        for (i = 0; i <= t->mask; i++)
            t->slots[i].gen = 0;
        t->gen = 1;
    }
}

int tlc_check_prec(int32_t kind, int32_t pos_mm, int32_t vel_mm)
{
    if (kind != TL_CODEC_REPORT && kind != TL_CODEC_PICTURE)
        return TL_CODEC_EARG;
    if (pos_mm < 1 || pos_mm > MAX_STEP || vel_mm < 1 || vel_mm > MAX_STEP)
        return TL_CODEC_EARG;
    return 0;
}

int32_t tl_codec_encode(int32_t kind, int32_t pos_mm, int32_t vel_mm, uint64_t base_us,
                        const tl_track_batch *b, tl_codec_table *held, uint8_t *out, int32_t cap)
{
    uint8_t bits[TL_CODEC_MAX_PAYLOAD + 8], head[HDR_MAX];
    bw w;
    prec pr;
    int32_t i, st;
    int hn, nbytes;
    uint32_t prev_id = 0, prev_rid = 0, base_rid = 0;
    uint64_t prev_t = base_us;
    codes r, n;
    srcs ss;
    if (!b || !out || cap < 0 || b->n < 0 || b->n > TL_CODEC_MAX_RECORDS || !b->rtype)
        return TL_CODEC_EARG;
    if ((st = tlc_check_prec(kind, pos_mm, vel_mm)) != 0)
        return st;
    if (b->n > 0 && (!b->tid || !b->t_us))
        return TL_CODEC_EARG;
    tlc_prec_set(&pr, pos_mm, vel_mm);
    if (kind == TL_CODEC_REPORT && b->n > 0 && b->report_id)
        base_rid = b->report_id[0];
    prev_rid = base_rid;
    memset(&ss, 0, sizeof(ss));
    memset(&w, 0, sizeof(w));
    w.buf = bits;
    w.cap_bits = (int64_t)TL_CODEC_MAX_PAYLOAD * 8;
    if (held)
        next_gen(held);
    for (i = 0; i < b->n; i++) {
        int rt = b->rtype[i];
        const codes *h = base_of(held, b->tid[i]);
        entry *e;
        if (rt > TL_REC_DROP) {
            st = TL_CODEC_EARG;
            goto fail;
        }
        if (rt == TL_REC_DROP) {
            memset(&r, 0, sizeof(r));
            r.tid = b->tid[i];
            r.t_us = b->t_us[i];
        } else {
            if (!b->x || !b->P) {
                st = TL_CODEC_EARG;
                goto fail;
            }
            if ((st = tlc_quantise(b, i, kind, &pr, &r)) != 0)
                goto fail;
        }
        {
            int ns = (kind == TL_CODEC_PICTURE && b->n_src) ? b->n_src[i] : 0;
            if (ns > TL_CODEC_MAX_SOURCES || (ns > 0 && (!b->src_node || !b->src_rid))) {
                st = TL_CODEC_ERANGE;
                goto fail;
            }
            st = tlc_put_record(&w, kind, &pr, rt, b->send ? b->send[i] : 0, &r, h,
                            ns ? b->src_node + TL_CODEC_MAX_SOURCES * i : NULL,
                            ns ? b->src_rid + TL_CODEC_MAX_SOURCES * i : NULL, ns, &prev_id, &prev_t,
                            &prev_rid, &ss, &n);
        }
        if (st)
            goto fail;
        if (w.over) {
            st = TL_CODEC_ENOSPACE;
            goto fail;
        }
        if (held) {
            e = tlc_tab_insert(held, r.tid);
            if (!e) {
                st = TL_CODEC_EFULL;
                goto fail;
            }
            stage(held, e, rt == TL_REC_DROP ? -1 : i);
            if (rt != TL_REC_DROP)
                held->scratch[i] = n;
        }
    }
    nbytes = tlc_bw_finish(&w);
    hn = tlc_header(head, kind, &pr, base_us, base_rid, b->n);
    if (hn + nbytes > cap || hn + nbytes > TL_CODEC_MAX_PAYLOAD) {
        st = TL_CODEC_ENOSPACE;
        goto fail;
    }
    memcpy(out, head, (size_t)hn);
    if (nbytes)
        memcpy(out + hn, bits, (size_t)nbytes);
    if (held)
        commit(held);
    return hn + nbytes;
fail:
    if (held)   /* forget the staging; entries inserted for new tracks stay invalid */
        unstage(held);
    return st;
}

/* ---- decode ---- */
/* A KEY record's fields after its type, update counter, track id and time. */
static void read_key(br *rd, codes *c)
{
    uint64_t nat;
    int k;
    get_group(rd, c->pq, 3);
    get_group(rd, c->vq, 3);
    for (k = 0; k < 6; k++)
        c->sig[k] = (int32_t)get(rd, 8) + SIG_MIN;
    for (k = 0; k < 15; k++)
        c->cor[k] = (int32_t)get(rd, 7) - COR_MAX;
    c->flags = (uint32_t)get(rd, 8);
    nat = get_ue(rd);
    if (!rd->err && nat > 0xFFFFFFFFu)
        rd->err = TL_CODEC_EMALFORMED;
    c->nations = (uint32_t)nat;
}

/* A DELTA record's fields after its type, update counter, track id and time:
 * the position/velocity differences from the prediction of the held copy h,
 * and what else it carries (covariance, flags and nations) or takes from h.
 * *usable: h is the base it names; *status: TL_REC_OK, DUP or NO_BASE. */
static int32_t read_delta(br *rd, const codes *h, const prec *pr, int upd, codes *c, int *status, int *sent,
                          int *usable)
{
    int k;
    int64_t dp[3], dv[3], pp[3], pv[3], ds[21];
    get_group(rd, dp, 3);
    get_group(rd, dv, 3);
    if (rd->err)
        return rd->err;
    *usable = h && h->upd == (upd + 15) % 16 && tlc_delta_ok(h, c->t_us, pr);
    if (h && h->upd == upd && h->t_us == c->t_us)
        *status = TL_REC_DUP;
    else if (!*usable)
        *status = TL_REC_NO_BASE;
    if (*usable) {
        predict(h, (int64_t)(c->t_us - h->t_us), pr, pp, pv);
        for (k = 0; k < 3; k++) {
            /* |pp| < 2^53 and |dp| < 2^63 could overflow: bound dp first */
            if (dp[k] <= -((int64_t)1 << 61) || dp[k] >= ((int64_t)1 << 61) ||
                dv[k] <= -((int64_t)1 << 61) || dv[k] >= ((int64_t)1 << 61)) {
                return TL_CODEC_EMALFORMED;
            }
            c->pq[k] = pp[k] + dp[k];
            c->vq[k] = pv[k] + dv[k];
        }
    }
    if (get(rd, 1)) {
        *sent |= TL_SEND_COV;
        for (k = 0; k < 21; k++)
            ds[k] = get_se(rd);
        if (*usable && !rd->err) {
            /* codes span 256 values: a bigger step is out of range (codes_ok) */
            for (k = 0; k < 21; k++)
                if (ds[k] < -1024 || ds[k] > 1024)
                    ds[k] = 4096;
            for (k = 0; k < 6; k++)
                c->sig[k] = h->sig[k] + (int32_t)ds[k];
            for (k = 0; k < 15; k++)
                c->cor[k] = h->cor[k] + (int32_t)ds[6 + k];
        }
    } else if (*usable) {
        memcpy(c->sig, h->sig, sizeof(c->sig));
        memcpy(c->cor, h->cor, sizeof(c->cor));
    }
    if (get(rd, 1)) {
        uint64_t nat;
        *sent |= TL_SEND_META;
        c->flags = (uint32_t)get(rd, 8);
        nat = get_ue(rd);
        if (!rd->err && nat > 0xFFFFFFFFu)
            rd->err = TL_CODEC_EMALFORMED;
        c->nations = (uint32_t)nat;
    } else if (*usable) {
        c->flags = h->flags;
        c->nations = h->nations;
    }
    if (*usable && h->has_imp) {
        c->has_imp = 1;
        c->imp_e = h->imp_e;
        c->imp_n = h->imp_n;
        c->imp_t = h->imp_t;
        c->imp_a = h->imp_a;
        c->imp_b = h->imp_b;
        c->imp_o = h->imp_o;
    }
    return 0;
}

/* A PICTURE record's sources (its flag bit read): node and report id each,
 * the id as u(32) the first time a node appears in the payload, then as a
 * delta from that node's previous id (PROTOCOL.md 5.5); into o's record i. */
static void read_sources(br *rd, srcs *ss, tl_track_batch *o, int32_t i)
{
    int k;
    uint64_t ns = get_ue(rd) + 1;
    if (!rd->err && ns > TL_CODEC_MAX_SOURCES)
        rd->err = TL_CODEC_EMALFORMED;
    for (k = 0; !rd->err && k < (int)ns; k++) {
        uint8_t node = (uint8_t)get(rd, 8);
        uint64_t rid;
        if (!ss->seen[node]) {
            rid = get(rd, 32);
        } else {
            int64_t dr = get_se(rd);
            if (!rd->err && (dr < -(int64_t)ss->prev[node] ||
                            dr > (int64_t)0xFFFFFFFFLL - (int64_t)ss->prev[node]))
                rd->err = TL_CODEC_EMALFORMED;
            rid = rd->err ? 0 : (uint64_t)((int64_t)ss->prev[node] + dr);
        }
        if (!rd->err) {
            ss->prev[node] = (uint32_t)rid;
            ss->seen[node] = 1;
        }
        if (o->src_node && o->src_rid) {
            o->src_node[TL_CODEC_MAX_SOURCES * i + k] = node;
            o->src_rid[TL_CODEC_MAX_SOURCES * i + k] = (uint32_t)rid;
        }
    }
    if (!rd->err && o->n_src)
        o->n_src[i] = (uint8_t)ns;
}

/* A PICTURE record's impact (its flag bit read): east, north, time from the
 * record's time, the ellipse; out of its ranges it is malformed. */
static void read_impact(br *rd, codes *c)
{
    int64_t en[2], dtm, a, b2;
    uint64_t ua, ub;
    get_group(rd, en, 2);
    dtm = get_se(rd);
    ua = get_ue(rd);
    ub = get_ue(rd);
    c->imp_o = (int32_t)get(rd, 15);
    if (!rd->err) {
        a = ua < (uint64_t)CODE_LIMIT ? (int64_t)ua : CODE_LIMIT;
        b2 = ub < (uint64_t)CODE_LIMIT ? (int64_t)ub : CODE_LIMIT;
        if (c->imp_o >= ORIENT_CODES || !(-CODE_LIMIT < dtm && dtm < CODE_LIMIT) ||
            a >= CODE_LIMIT || b2 >= CODE_LIMIT || !(-CODE_LIMIT < en[0] && en[0] < CODE_LIMIT) ||
            !(-CODE_LIMIT < en[1] && en[1] < CODE_LIMIT) ||
            (dtm < 0 ? (uint64_t)(-dtm) * 1000u > c->t_us
                     : (uint64_t)dtm * 1000u > UINT64_MAX - c->t_us)) {
            rd->err = TL_CODEC_EMALFORMED;
        } else {
            c->has_imp = 1;
            c->imp_e = en[0];
            c->imp_n = en[1];
            c->imp_a = a;
            c->imp_b = b2;
            c->imp_t = dtm < 0 ? c->t_us - (uint64_t)(-dtm) * 1000u : c->t_us + (uint64_t)dtm * 1000u;
        }
    }
}

static void out_record(tl_track_batch *o, int32_t i, int32_t kind, const prec *pr, const codes *c,
                       int full)
{
    int k;
    o->tid[i] = c->tid;
    o->t_us[i] = c->t_us;
    if (o->report_id)
        o->report_id[i] = kind == TL_CODEC_REPORT ? c->report_id : 0;
    if (o->flags)
        o->flags[i] = (uint8_t)c->flags;
    if (o->nations)
        o->nations[i] = c->nations;
    if (o->x) {
        for (k = 0; k < 3; k++) {
            o->x[6 * i + k] = full ? (double)c->pq[k] * pr->pos : 0.0;
            o->x[6 * i + 3 + k] = full ? (double)c->vq[k] * pr->vel : 0.0;
        }
    }
    if (o->P) {
        if (full)
            cov_from_codes(c->sig, c->cor, o->P + 36 * i);
        else
            memset(o->P + 36 * i, 0, 36 * sizeof(double));
    }
    if (o->has_impact)
        o->has_impact[i] = (uint8_t)(full && c->has_imp);
    if (o->impact) {
        double *im = o->impact + 5 * i;
        int on = full && c->has_imp;
        im[0] = on ? (double)c->imp_e * pr->pos : 0.0;
        im[1] = on ? (double)c->imp_n * pr->pos : 0.0;
        im[2] = on ? (double)c->imp_a * pr->pos : 0.0;
        im[3] = on ? (double)c->imp_b * pr->pos : 0.0;
        im[4] = on ? (double)c->imp_o / 100.0 : 0.0;
    }
    if (o->impact_t_us)
        o->impact_t_us[i] = (full && c->has_imp) ? c->imp_t : 0;
}

static int codes_ok(const codes *c)
{
    int k;
    for (k = 0; k < 3; k++)
        if (!(-CODE_LIMIT < c->pq[k] && c->pq[k] < CODE_LIMIT && -CODE_LIMIT < c->vq[k] &&
              c->vq[k] < CODE_LIMIT))
            return 0;
    for (k = 0; k < 6; k++)
        if (c->sig[k] < SIG_MIN || c->sig[k] > SIG_MIN + 255)
            return 0;
    for (k = 0; k < 15; k++)
        if (c->cor[k] < -COR_MAX || c->cor[k] > COR_MAX)
            return 0;
    return 1;
}

/* The payload header (PROTOCOL.md 5.1) into *h, checked in this order:
 * version, kind, precision steps, base time, (REPORT) base report id,
 * record count; *pos = the first byte after it. 0 or the error. */
static int32_t read_header(const uint8_t *in, int32_t len, tl_codec_header *h, int32_t *pos)
{
    int32_t st;
    uint64_t pos_mm, vel_mm, base_rid = 0, count;
    *pos = 2;
    if (len < 2)
        return TL_CODEC_ETRUNC;
    if (in[0] != TL_CODEC_VERSION)
        return TL_CODEC_EVERSION;
    h->kind = in[1];
    if (h->kind != TL_CODEC_REPORT && h->kind != TL_CODEC_PICTURE)
        return TL_CODEC_EMALFORMED;
    if ((st = get_varint(in, len, pos, &pos_mm)) || (st = get_varint(in, len, pos, &vel_mm)))
        return st;
    if (pos_mm < 1 || pos_mm > MAX_STEP || vel_mm < 1 || vel_mm > MAX_STEP)
        return TL_CODEC_EMALFORMED;
    if ((st = get_varint(in, len, pos, &h->base_us)))
        return st;
    if (h->kind == TL_CODEC_REPORT) {
        if ((st = get_varint(in, len, pos, &base_rid)))
            return st;
        if (base_rid > 0xFFFFFFFFu)
            return TL_CODEC_EMALFORMED;
    }
    if ((st = get_varint(in, len, pos, &count)))
        return st;
    if (count > TL_CODEC_MAX_RECORDS)
        return TL_CODEC_EMALFORMED;
    h->pos_mm = (int32_t)pos_mm;
    h->vel_mm = (int32_t)vel_mm;
    h->base_rid = (uint32_t)base_rid;
    h->count = (int32_t)count;
    return 0;
}

/* Longer than the others (~150 lines) on purpose: one pass over the records
 * with one exit for every failure (fail: the held table is left as it was);
 * each record type's own fields are read by read_key, read_delta,
 * read_sources and read_impact above. */
int32_t tl_codec_decode(const uint8_t *in, int32_t len, tl_codec_table *held, tl_track_batch *o,
                        int32_t cap_records, tl_codec_header *hdr)
{
    int32_t pos, i, st = 0, kind, count;
    tl_codec_header hd;
    prec pr;
    br rd;
    uint32_t prev_id = 0, prev_rid;
    uint64_t prev_t;
    srcs ss;
    if (!in || len < 0 || !o || cap_records < 0 || !o->tid || !o->t_us)
        return TL_CODEC_EARG;
    if ((st = read_header(in, len, &hd, &pos)) != 0)
        return st;
    if (hd.count > cap_records)
        return TL_CODEC_EARG;
    kind = hd.kind;
    count = hd.count;
    tlc_prec_set(&pr, hd.pos_mm, hd.vel_mm);
    prev_rid = hd.base_rid;
    prev_t = hd.base_us;
    memset(&ss, 0, sizeof(ss));
    rd.buf = in;
    rd.bit = (int64_t)pos * 8;
    rd.end = (int64_t)len * 8;
    rd.err = 0;
    if (held)
        next_gen(held);
    for (i = 0; i < count; i++) {
        int rtype = (int)get(&rd, 2), upd = 0, status = TL_REC_OK, sent = 0, usable = 0;
        int64_t d;
        const codes *h;
        codes c;
        entry *e;
        memset(&c, 0, sizeof(c));
        if (!rd.err && rtype > TL_REC_DROP)
            rd.err = TL_CODEC_EMALFORMED;
        if (rtype != TL_REC_DROP)
            upd = (int)get(&rd, 4);
        d = get_se(&rd);
        if (!rd.err && (d < -(int64_t)prev_id || d > (int64_t)0xFFFFFFFFLL - (int64_t)prev_id))
            rd.err = TL_CODEC_EMALFORMED;
        c.tid = (uint32_t)((int64_t)prev_id + d);
        d = get_se(&rd);
        if (!rd.err && (d >= 0 ? (uint64_t)d > UINT64_MAX - prev_t : (uint64_t)(-d) > prev_t))
            rd.err = TL_CODEC_EMALFORMED;
        if (rd.err) {
            st = rd.err;
            goto fail;
        }
        c.t_us = d >= 0 ? prev_t + (uint64_t)d : prev_t - (uint64_t)(-d);
        prev_id = c.tid;
        prev_t = c.t_us;
        h = base_of(held, c.tid);
        if (rtype == TL_REC_DROP) {
            if (held) {
                e = tlc_tab_find(held, c.tid);
                if (e)
                    stage(held, e, -1);
            }
            o->rtype[i] = TL_REC_DROP;
            if (o->send)
                o->send[i] = 0;
            if (o->status)
                o->status[i] = TL_REC_GONE;
            if (o->n_src)
                o->n_src[i] = 0;
            out_record(o, i, kind, &pr, &c, 0);
            continue;
        }
        c.upd = upd;
        if (kind == TL_CODEC_REPORT) {
            d = get_se(&rd);
            if (!rd.err && (d < -(int64_t)prev_rid || d > (int64_t)0xFFFFFFFFLL - (int64_t)prev_rid))
                rd.err = TL_CODEC_EMALFORMED;
            c.report_id = (uint32_t)((int64_t)prev_rid + d);
            prev_rid = c.report_id;
        }
        if (rtype == TL_REC_KEY) {
            read_key(&rd, &c);
            sent = TL_SEND_COV | TL_SEND_META;
            usable = 1;
        } else {
            if ((st = read_delta(&rd, h, &pr, upd, &c, &status, &sent, &usable)) != 0)
                goto fail;
        }
        if (o->n_src)
            o->n_src[i] = 0;
        if (kind == TL_CODEC_PICTURE) {
            if (get(&rd, 1))
                read_sources(&rd, &ss, o, i);
            if (get(&rd, 1)) {
                sent |= TL_SEND_IMPACT;
                read_impact(&rd, &c);
            } else if (rtype == TL_REC_KEY) {
                c.has_imp = 0;
            }
        }
        if (rd.err) {
            st = rd.err;
            goto fail;
        }
        if (status == TL_REC_OK) {
            if (!codes_ok(&c)) {
                st = TL_CODEC_EMALFORMED;
                goto fail;
            }
            if (held) {
                e = tlc_tab_insert(held, c.tid);
                if (!e) {
                    st = TL_CODEC_EFULL;
                    goto fail;
                }
                stage(held, e, i);
                held->scratch[i] = c;
            }
        }
        o->rtype[i] = (uint8_t)rtype;
        if (o->send)
            o->send[i] = (uint8_t)sent;
        if (o->status)
            o->status[i] = (uint8_t)status;
        out_record(o, i, kind, &pr, &c, usable || rtype == TL_REC_KEY);
        if (!usable && o->flags && (sent & TL_SEND_META))
            o->flags[i] = (uint8_t)c.flags;
    }
    if (rd.bit & 7) {
        if (get(&rd, 8 - (int)(rd.bit & 7)) != 0 && !rd.err)
            rd.err = TL_CODEC_EMALFORMED;
    }
    if (rd.err) {
        st = rd.err;
        goto fail;
    }
    if (rd.bit != rd.end) {
        st = TL_CODEC_EMALFORMED;
        goto fail;
    }
    if (held)
        commit(held);
    o->n = count;
    if (hdr)
        *hdr = hd;
    return count;
fail:
    if (held)
        unstage(held);
    o->n = 0;
    return st;
}

int32_t tl_codec_peek_count(const uint8_t *in, int32_t len)
{
    int32_t pos, st;
    tl_codec_header h;
    if (!in || len < 0)
        return TL_CODEC_EARG;
    st = read_header(in, len, &h, &pos);   /* the checks of tl_codec_decode, in its order */
    return st ? st : h.count;
}
