/* checkpoint.c — versioned, checksummed model files (format in checkpoint.h). */
#include "checkpoint.h"
#include "fileio.h"
#include "rng.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_BYTES 24
#define SUM_BYTES 8
#define FNV_BASIS 14695981039346656037ull
#define NAME_MAX_LEN 63 /* pl_model.name / pl_layer.name hold 64 bytes */

static const unsigned char magic[8] = {'P', 'L', 'C', 'K', 'P', 'T', 0, 0};

/* ---- little-endian encoding ------------------------------------------------------ */

typedef struct wr {
    uint8_t *p; /* NULL: only count bytes */
    size_t n;
} wr;

static void put_bytes(wr *w, const void *src, size_t n)
{
    if (w->p && n)
        memcpy(w->p + w->n, src, n);
    w->n += n;
}

static void put_u64(wr *w, uint64_t v)
{
    uint8_t b[8] = {0};
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put_bytes(w, b, 8);
}

static void put_u32(wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put_bytes(w, b, 4);
}

static void put_u8(wr *w, int v)
{
    uint8_t b = (uint8_t)v;
    put_bytes(w, &b, 1);
}

static void put_i32(wr *w, int v) { put_u32(w, (uint32_t)v); }
static void put_i64(wr *w, int64_t v) { put_u64(w, (uint64_t)v); }

static void put_f64(wr *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    put_u64(w, u);
}

static void put_f32s(wr *w, const float *x, int64_t n)
{
    if (!w->p) {
        w->n += (size_t)n * 4;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        put_u32(w, u);
    }
}

static void put_str(wr *w, const char *s)
{
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    put_bytes(w, s, n);
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t le64(const uint8_t *b) { return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32; }

/* ---- writing the payload ----------------------------------------------------------- */

static int has_optim_w(const pl_layer *l) { return l->nw > 0 && l->opt_m_w && l->opt_v_w; }
static int has_optim_b(const pl_layer *l) { return l->nb > 0 && l->opt_m_b && l->opt_v_b; }

static int has_geometry(const pl_layer *l)
{
    return l->pad_xb || l->pad_xr || l->dil_h > 1 || l->dil_w > 1 || l->excl_pad;
}

/* Format 1 holds chains; format 2 adds each layer's groups and inputs;
 * format 3 each layer's pad_xb, pad_xr, dil_h, dil_w, excl_pad (imported
 * ONNX padding); format 4 each layer's ch0, ch1 (slice layers). A model is
 * written in the oldest format that holds it, so its file stays what it
 * always was. */
static uint32_t format_of(const pl_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type == PL_LAYER_SLICE)
            return 4;
    for (int i = 0; i < m->n_layers; i++)
        if (has_geometry(&m->layers[i]))
            return 3;
    if (!pl_model_is_chain(m))
        return 2;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].groups != 1)
            return 2;
    return 1;
}

static void put_model(wr *w, const pl_model *m, const char *meta, unsigned flags, uint32_t version)
{
    size_t ml = meta ? strlen(meta) : 0;
    put_u64(w, ml);
    put_bytes(w, meta, ml);
    put_str(w, m->name);
    put_i32(w, m->in_c);
    put_i32(w, m->in_h);
    put_i32(w, m->in_w);
    put_i32(w, m->classes);
    put_u64(w, m->seed);
    put_u64(w, m->dropout_calls);
    put_u32(w, (uint32_t)m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        put_str(w, l->name);
        put_u32(w, (uint32_t)l->type);
        put_i32(w, l->kh);
        put_i32(w, l->kw);
        put_i32(w, l->sh);
        put_i32(w, l->sw);
        put_i32(w, l->ph);
        put_i32(w, l->pw);
        put_i32(w, l->has_bias);
        if (version >= 2) {
            put_i32(w, l->groups);
            put_i32(w, l->n_in);
            for (int k = 0; k < l->n_in && k < PL_MAX_INPUTS; k++)
                put_i32(w, l->in[k]);
        }
        if (version >= 3) {
            put_i32(w, l->pad_xb);
            put_i32(w, l->pad_xr);
            put_i32(w, l->dil_h);
            put_i32(w, l->dil_w);
            put_i32(w, l->excl_pad);
        }
        if (version >= 4) {
            put_i32(w, l->ch0);
            put_i32(w, l->ch1);
        }
        put_f64(w, l->p);
        put_f64(w, l->eps);
        put_f64(w, l->momentum);
        put_i32(w, l->in_c);
        put_i32(w, l->in_h);
        put_i32(w, l->in_w);
        put_i32(w, l->out_c);
        put_i32(w, l->out_h);
        put_i32(w, l->out_w);
        put_i32(w, l->orig_units);
        put_i32(w, l->removed_units);
        put_i64(w, l->nw);
        put_i64(w, l->nb);
        put_f32s(w, l->w, l->nw);
        put_f32s(w, l->b, l->nb);
        int has_mask = l->mask && l->nw > 0;
        put_u8(w, has_mask);
        if (has_mask)
            put_f32s(w, l->mask, l->nw);
        if (l->type == PL_LAYER_BATCHNORM2D) {
            put_f32s(w, l->run_mean, l->in_c);
            put_f32s(w, l->run_var, l->in_c);
        }
        if (flags & PL_CKPT_OPTIM) {
            if (l->nw > 0) {
                put_u8(w, has_optim_w(l));
                if (has_optim_w(l)) {
                    put_f32s(w, l->opt_m_w, l->nw);
                    put_f32s(w, l->opt_v_w, l->nw);
                }
            }
            if (l->nb > 0) {
                put_u8(w, has_optim_b(l));
                if (has_optim_b(l)) {
                    put_f32s(w, l->opt_m_b, l->nb);
                    put_f32s(w, l->opt_v_b, l->nb);
                }
            }
        }
    }
}

/* ---- reading and validating the payload ------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    uint32_t version; /* the file's format */
    char ctx[96];   /* "layer 3 (conv2)" while inside a layer */
    char why[512];  /* cause of the last failure */
} rd;

static pl_status bad(rd *r, pl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pl_status bad(rd *r, pl_status code, const char *fmt, ...)
{
    char cause[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    if (r->ctx[0])
        snprintf(r->why, sizeof r->why, "%s: %s", r->ctx, cause);
    else
        snprintf(r->why, sizeof r->why, "%s", cause);
    return code;
}

static size_t left(const rd *r) { return r->n - r->pos; }

static pl_status get_bytes(rd *r, void *dst, size_t k, const char *what)
{
    if (left(r) < k)
        return bad(r, PL_EFORMAT, "the payload ends inside %s", what);
    if (dst && k)
        memcpy(dst, r->p + r->pos, k);
    r->pos += k;
    return PL_OK;
}

static pl_status get_u32(rd *r, uint32_t *v, const char *what)
{
    uint8_t b[4] = {0};
    pl_status s = get_bytes(r, b, 4, what);
    *v = le32(b);
    return s;
}

static pl_status get_u64(rd *r, uint64_t *v, const char *what)
{
    uint8_t b[8] = {0};
    pl_status s = get_bytes(r, b, 8, what);
    *v = le64(b);
    return s;
}

static pl_status get_i32(rd *r, int *v, const char *what)
{
    uint32_t u;
    pl_status s = get_u32(r, &u, what);
    *v = u <= INT32_MAX ? (int)u : -(int)(~u) - 1;
    return s;
}

static pl_status get_i64(rd *r, int64_t *v, const char *what)
{
    uint64_t u;
    pl_status s = get_u64(r, &u, what);
    *v = u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
    return s;
}

static pl_status get_f64(rd *r, double *v, const char *what)
{
    uint64_t u;
    pl_status s = get_u64(r, &u, what);
    memcpy(v, &u, sizeof *v);
    return s;
}

/* A name into dst[64]: 0..63 bytes without NUL. */
static pl_status get_name(rd *r, char *dst, const char *what)
{
    uint32_t n;
    pl_status s = get_u32(r, &n, what);
    if (s)
        return s;
    if (n > NAME_MAX_LEN)
        return bad(r, PL_EFORMAT, "%s is %u bytes long (at most %d)", what, n, NAME_MAX_LEN);
    if ((s = get_bytes(r, dst, n, what)))
        return s;
    dst[n] = '\0';
    if (strlen(dst) != n)
        return bad(r, PL_EFORMAT, "%s contains a NUL byte", what);
    return PL_OK;
}

/* n floats; dst NULL = validate and skip. The count is checked against the
 * bytes left before anything is allocated. */
static pl_status get_f32s(rd *r, int64_t n, float **dst, const char *what)
{
    if (n < 0 || (uint64_t)n > left(r) / 4)
        return bad(r, PL_EFORMAT, "%s: %lld values claimed but only %zu payload bytes remain", what,
                   (long long)n, left(r));
    if (!dst || n == 0) {
        r->pos += (size_t)n * 4;
        return PL_OK;
    }
    float *f = malloc((size_t)n * sizeof *f);
    if (!f)
        return bad(r, PL_ENOMEM, "out of memory for %s (%lld values)", what, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = le32(r->p + r->pos + 4 * (size_t)i);
        memcpy(&f[i], &u, sizeof u);
    }
    r->pos += (size_t)n * 4;
    *dst = f;
    return PL_OK;
}


static int known_type(uint32_t t)
{
    switch ((pl_layer_type)t) {
    case PL_LAYER_CONV2D:
    case PL_LAYER_LINEAR:
    case PL_LAYER_MAXPOOL2D:
    case PL_LAYER_AVGPOOL2D:
    case PL_LAYER_RELU:
    case PL_LAYER_FLATTEN:
    case PL_LAYER_BATCHNORM2D:
    case PL_LAYER_DROPOUT:
    case PL_LAYER_ADD:
    case PL_LAYER_CONCAT:
    case PL_LAYER_GLOBAL_AVGPOOL:
    case PL_LAYER_SLICE:
        return 1;
    }
    return 0;
}

/* Checks what the shape rule cannot know (hyper-parameters in range) and
 * then that layer l is what the shape rule makes of its inputs' shapes
 * sh[0 .. l->n_in) (validated by the caller). */
static pl_status check_layer(rd *r, const pl_layer *l, const int (*sh)[3])
{
    int c = sh[0][0], h = sh[0][1], w = sh[0][2];
    /* the bounds the YAML and ONNX paths apply: no int overflow in the kernels' index math */
    if (l->kh < 1 || l->kw < 1 || l->sh < 1 || l->sw < 1 || l->ph < 0 || l->pw < 0 || l->kh > PL_GEOM_MAX ||
        l->kw > PL_GEOM_MAX || l->sh > PL_GEOM_MAX || l->sw > PL_GEOM_MAX || l->ph > PL_GEOM_MAX ||
        l->pw > PL_GEOM_MAX || (int64_t)l->ph + l->pad_xb > PL_GEOM_MAX || (int64_t)l->pw + l->pad_xr > PL_GEOM_MAX)
        return bad(r, PL_EFORMAT,
                   "kernel %dx%d, stride %dx%d or padding %d,%d (bottom/right %+d,%+d) out of range "
                   "(each at most %d)",
                   l->kh, l->kw, l->sh, l->sw, l->ph, l->pw, l->pad_xb, l->pad_xr, PL_GEOM_MAX);
    if (l->has_bias != 0 && l->has_bias != 1)
        return bad(r, PL_EFORMAT, "bias flag %d is neither 0 nor 1", l->has_bias);
    if (l->orig_units < 0 || l->removed_units < 0)
        return bad(r, PL_EFORMAT, "negative unit counts (%d original, %d removed)", l->orig_units,
                   l->removed_units);
    if (l->type == PL_LAYER_BATCHNORM2D &&
        (!(l->eps > 0 && isfinite(l->eps)) || !(l->momentum >= 0 && l->momentum <= 1)))
        return bad(r, PL_EFORMAT, "batchnorm eps %g or momentum %g out of range", l->eps, l->momentum);
    if (l->type == PL_LAYER_DROPOUT && !(l->p >= 0 && l->p < 1))
        return bad(r, PL_EFORMAT, "dropout probability %g is not in [0,1)", l->p);
    pl_layer_dims d;
    char why[256];
    if (pl_layer_dims_in(l, l->n_in, sh, &d, why, sizeof why))
        return bad(r, PL_EFORMAT, "%s", why);
    if (l->in_c != d.in_c || l->in_h != d.in_h || l->in_w != d.in_w)
        return bad(r, PL_EFORMAT, "input shape %dx%dx%d differs from the %dx%dx%d it receives",
                   l->in_c, l->in_h, l->in_w, d.in_c, d.in_h, d.in_w);
    (void)c, (void)h, (void)w;
    if (l->out_c != d.out_c || l->out_h != d.out_h || l->out_w != d.out_w)
        return bad(r, PL_EFORMAT, "output shape %dx%dx%d should be %dx%dx%d", l->out_c, l->out_h,
                   l->out_w, d.out_c, d.out_h, d.out_w);
    if (l->nw != d.nw || l->nb != d.nb)
        return bad(r, PL_EFORMAT, "%lld weights and %lld biases where its shape has %lld and %lld",
                   (long long)l->nw, (long long)l->nb, (long long)d.nw, (long long)d.nb);
    return PL_OK;
}

/* Optional tensor pair (optimizer m and v) behind a presence byte. */
static pl_status get_pair(rd *r, int64_t n, float **a, float **b, int alloc, const char *what)
{
    uint8_t present = 0;
    pl_status s = get_bytes(r, &present, 1, what);
    if (s)
        return s;
    if (present > 1)
        return bad(r, PL_EFORMAT, "%s presence flag %u is neither 0 nor 1", what, present);
    if (!present)
        return PL_OK;
    if ((s = get_f32s(r, n, alloc ? a : NULL, what)))
        return s;
    return get_f32s(r, n, alloc ? b : NULL, what);
}

/* Layer idx's graph fields (format 2; chain defaults before): groups,
 * then inputs naming earlier layers (-1 the model input). */
static pl_status get_graph(rd *r, pl_layer *l, int idx)
{
    pl_status s;
    l->groups = 1;
    l->n_in = 1;
    l->in[0] = idx - 1;
    if (r->version < 2)
        return PL_OK;
    if ((s = get_i32(r, &l->groups, "the layer graph")) || (s = get_i32(r, &l->n_in, "the layer graph")))
        return s;
    if (l->groups < 1 || (l->type != PL_LAYER_CONV2D && l->groups != 1))
        return bad(r, PL_EFORMAT, "groups %d out of range", l->groups);
    int multi = l->type == PL_LAYER_ADD || l->type == PL_LAYER_CONCAT;
    if (l->n_in < 1 || l->n_in > PL_MAX_INPUTS || (multi && l->n_in < 2) || (!multi && l->n_in != 1))
        return bad(r, PL_EFORMAT, "%d inputs for a %s layer", l->n_in, pl_layer_type_name(l->type));
    for (int k = 0; k < l->n_in; k++) {
        if ((s = get_i32(r, &l->in[k], "the layer inputs")))
            return s;
        if (l->in[k] < -1 || l->in[k] >= idx)
            return bad(r, PL_EFORMAT, "input %d is layer index %d, not an earlier layer or -1", k + 1, l->in[k]);
    }
    if (r->version < 3)
        return PL_OK;
    int *g[] = {&l->pad_xb, &l->pad_xr, &l->dil_h, &l->dil_w, &l->excl_pad};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        if ((s = get_i32(r, g[i], "the layer padding")))
            return s;
    int spatial = l->type == PL_LAYER_CONV2D || l->type == PL_LAYER_MAXPOOL2D || l->type == PL_LAYER_AVGPOOL2D;
    if (l->pad_xb < -PL_GEOM_MAX || l->pad_xb > PL_GEOM_MAX || l->pad_xr < -PL_GEOM_MAX || l->pad_xr > PL_GEOM_MAX ||
        l->dil_h < 0 || l->dil_h > PL_GEOM_MAX || l->dil_w < 0 || l->dil_w > PL_GEOM_MAX || (l->excl_pad != 0 && l->excl_pad != 1) ||
        (!spatial && has_geometry(l)) || (l->excl_pad && l->type != PL_LAYER_AVGPOOL2D))
        return bad(r, PL_EFORMAT, "padding %d,%d, dilation %d,%d or exclude-pad flag %d out of range", l->pad_xb,
                   l->pad_xr, l->dil_h, l->dil_w, l->excl_pad);
    if (!pl_layer_padded(l->ph, l->pw, l->pad_xb, l->pad_xr))
        l->excl_pad = 0; /* the same maths as without it (ph, pw are read before) */
    if (r->version < 4)
        return PL_OK;
    if ((s = get_i32(r, &l->ch0, "the slice channels")) || (s = get_i32(r, &l->ch1, "the slice channels")))
        return s;
    if (l->type == PL_LAYER_SLICE ? l->ch0 < 0 || l->ch0 >= l->ch1 : l->ch0 || l->ch1)
        return bad(r, PL_EFORMAT, "slice channels %d,%d out of range for a %s layer", l->ch0, l->ch1,
                   pl_layer_type_name(l->type));
    return PL_OK;
}

/* One layer into l (zeroed by the caller), given the output shapes of the
 * layers before it (out[j] = {c, h, w}) and of the model input. With
 * alloc == 0 the tensors are only validated and skipped. */
static pl_status get_layer(rd *r, pl_layer *l, int idx, const int (*out)[3], const int *input,
                           unsigned flags, int alloc)
{
    pl_status s;
    uint32_t type;
    snprintf(r->ctx, sizeof r->ctx, "layer %d", idx + 1);
    if ((s = get_name(r, l->name, "the layer name")))
        return s;
    snprintf(r->ctx, sizeof r->ctx, "layer %d (%s)", idx + 1, l->name);
    if ((s = get_u32(r, &type, "the layer type")))
        return s;
    if (!known_type(type))
        return bad(r, PL_EFORMAT, "unknown layer type %u (written by a newer prunelab?)", type);
    l->type = (pl_layer_type)type;
    int *ints[] = {&l->kh, &l->kw, &l->sh, &l->sw, &l->ph, &l->pw, &l->has_bias};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if ((s = get_i32(r, ints[i], "the layer hyper-parameters")))
            return s;
    if ((s = get_graph(r, l, idx)))
        return s;
    if ((s = get_f64(r, &l->p, "the layer hyper-parameters")) ||
        (s = get_f64(r, &l->eps, "the layer hyper-parameters")) ||
        (s = get_f64(r, &l->momentum, "the layer hyper-parameters")))
        return s;
    int *shape[] = {&l->in_c, &l->in_h, &l->in_w, &l->out_c, &l->out_h, &l->out_w,
                    &l->orig_units, &l->removed_units};
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++)
        if ((s = get_i32(r, shape[i], "the layer shape")))
            return s;
    if ((s = get_i64(r, &l->nw, "the parameter counts")) ||
        (s = get_i64(r, &l->nb, "the parameter counts")))
        return s;
    int sh[PL_MAX_INPUTS][3];
    for (int k = 0; k < l->n_in; k++)
        memcpy(sh[k], l->in[k] < 0 ? input : out[l->in[k]], sizeof sh[k]);
    if ((s = check_layer(r, l, (const int (*)[3])sh)))
        return s;

    if ((s = get_f32s(r, l->nw, alloc ? &l->w : NULL, "the weights")) ||
        (s = get_f32s(r, l->nb, alloc ? &l->b : NULL, "the biases")))
        return s;
    if (alloc && pl_layer_scratch_reset(l))
        return bad(r, PL_ENOMEM, "out of memory for gradients");
    uint8_t has_mask = 0;
    if ((s = get_bytes(r, &has_mask, 1, "the mask flag")))
        return s;
    if (has_mask > 1 || (has_mask && l->nw == 0))
        return bad(r, PL_EFORMAT, "mask flag %u is invalid here", has_mask);
    if (has_mask && (s = get_f32s(r, l->nw, alloc ? &l->mask : NULL, "the mask")))
        return s;
    if (l->type == PL_LAYER_BATCHNORM2D &&
        ((s = get_f32s(r, l->in_c, alloc ? &l->run_mean : NULL, "the running mean")) ||
         (s = get_f32s(r, l->in_c, alloc ? &l->run_var : NULL, "the running variance"))))
        return s;
    if (flags & PL_CKPT_OPTIM) {
        if (l->nw > 0 &&
            (s = get_pair(r, l->nw, &l->opt_m_w, &l->opt_v_w, alloc, "the weight optimizer state")))
            return s;
        if (l->nb > 0 &&
            (s = get_pair(r, l->nb, &l->opt_m_b, &l->opt_v_b, alloc, "the bias optimizer state")))
            return s;
    }
    r->ctx[0] = '\0';
    return PL_OK;
}

/* Parses the whole payload. mout == NULL: validation only, nothing is
 * allocated. Otherwise builds the model (and *meta when meta != NULL). */
static pl_status get_model(rd *r, unsigned flags, pl_model **mout, char **meta)
{
    pl_status s;
    uint64_t ml;
    char *mtext = NULL;
    pl_model *m = NULL;
    int (*outs)[3] = NULL; /* output shape of every layer read so far */
    int *used = NULL;      /* ... and whether a later layer reads it */
    size_t cap = 0;
    pl_model hdr;
    memset(&hdr, 0, sizeof hdr);
    r->ctx[0] = '\0';
    if ((s = get_u64(r, &ml, "the meta text length")))
        return s;
    if (ml > left(r))
        return bad(r, PL_EFORMAT, "meta text of %llu bytes claimed but only %zu payload bytes remain",
                   (unsigned long long)ml, left(r));
    if (memchr(r->p + r->pos, 0, (size_t)ml))
        return bad(r, PL_EFORMAT, "the meta text contains a NUL byte");
    if (mout && meta) {
        if (!(mtext = malloc((size_t)ml + 1)))
            return bad(r, PL_ENOMEM, "out of memory for the meta text");
        memcpy(mtext, r->p + r->pos, (size_t)ml);
        mtext[ml] = '\0';
    }
    r->pos += (size_t)ml;

    uint32_t nl;
    if ((s = get_name(r, hdr.name, "the model name")) ||
        (s = get_i32(r, &hdr.in_c, "the model header")) ||
        (s = get_i32(r, &hdr.in_h, "the model header")) ||
        (s = get_i32(r, &hdr.in_w, "the model header")) ||
        (s = get_i32(r, &hdr.classes, "the model header")) ||
        (s = get_u64(r, &hdr.seed, "the model header")) ||
        (s = get_u64(r, &hdr.dropout_calls, "the model header")) ||
        (s = get_u32(r, &nl, "the model header")))
        goto fail;
    if (hdr.in_c < 1 || hdr.in_h < 1 || hdr.in_w < 1 ||
        (int64_t)hdr.in_c * hdr.in_h > PL_MAX_ELEMS / hdr.in_w) {
        s = bad(r, PL_EFORMAT, "input shape %dx%dx%d out of range", hdr.in_c, hdr.in_h, hdr.in_w);
        goto fail;
    }
    if (hdr.classes < 1 || nl < 1 || nl > INT_MAX) {
        s = bad(r, PL_EFORMAT, "%d classes and %u layers", hdr.classes, nl);
        goto fail;
    }

    if (mout) {
        m = calloc(1, sizeof *m);
        if (!m || !(m->layers = calloc(nl, sizeof *m->layers))) {
            free(m);
            s = bad(r, PL_ENOMEM, "out of memory for %u layers", nl);
            goto fail;
        }
        memcpy(m->name, hdr.name, sizeof m->name);
        m->in_c = hdr.in_c;
        m->in_h = hdr.in_h;
        m->in_w = hdr.in_w;
        m->classes = hdr.classes;
        m->seed = hdr.seed;
        m->dropout_calls = hdr.dropout_calls;
        m->n_layers = (int)nl;
    }
    int c = hdr.in_c, h = hdr.in_h, w = hdr.in_w;
    const int input[3] = {c, h, w};
    for (uint32_t i = 0; i < nl; i++) {
        pl_layer tmp;
        memset(&tmp, 0, sizeof tmp);
        pl_layer *l = m ? &m->layers[i] : &tmp;
        if (i == cap) { /* grows with the layers read, never with a claimed count */
            size_t nc = cap ? 2 * cap : 16;
            int (*no)[3] = realloc(outs, nc * sizeof *outs);
            if (no)
                outs = no;
            int *nu = no ? realloc(used, nc * sizeof *used) : NULL;
            if (nu)
                used = nu;
            if (!no || !nu) {
                s = bad(r, PL_ENOMEM, "out of memory for %u layers", nl);
                goto fail_model;
            }
            cap = nc;
        }
        if ((s = get_layer(r, l, (int)i, (const int (*)[3])outs, input, flags, m != NULL)))
            goto fail_model;
        c = outs[i][0] = l->out_c;
        h = outs[i][1] = l->out_h;
        w = outs[i][2] = l->out_w;
        used[i] = 0;
        for (int k = 0; k < l->n_in; k++)
            if (l->in[k] >= 0)
                used[l->in[k]] = 1;
    }
    for (uint32_t i = 0; i + 1 < nl; i++)
        if (!used[i]) {
            r->ctx[0] = '\0';
            s = bad(r, PL_EFORMAT, "the output of layer %u is never used", i + 1);
            goto fail_model;
        }
    if ((int64_t)c * h * w != hdr.classes) {
        s = bad(r, PL_EFORMAT, "the last layer produces %lld values per image but the model has %d "
                "classes", (long long)c * h * w, hdr.classes);
        goto fail_model;
    }
    if (left(r)) {
        s = bad(r, PL_EFORMAT, "%zu unexpected bytes after the last layer", left(r));
        goto fail_model;
    }
    free(outs);
    free(used);
    if (mout) {
        *mout = m;
        if (meta)
            *meta = mtext;
    }
    return PL_OK;
fail_model:
    pl_model_free(m);
fail:
    free(outs);
    free(used);
    free(mtext);
    return s;
}

/* ---- save -------------------------------------------------------------------------- */

/* Pointers the payload needs but shapes cannot express. */
static pl_status check_buffers(const char *path, const pl_model *m, pl_error *err)
{
    if (!m || m->n_layers < 1 || !m->layers)
        return pl_error_set(err, PL_EINVAL, "%s: cannot save a model without layers", path);
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        const char *what = NULL;
        if (l->nw < 0 || l->nb < 0)
            what = "negative parameter counts";
        else if ((l->nw && !l->w) || (l->nb && !l->b))
            what = "parameter counts without parameters";
        else if (l->type == PL_LAYER_BATCHNORM2D && (!l->run_mean || !l->run_var))
            what = "no running statistics";
        else if (!l->opt_m_w != !l->opt_v_w || !l->opt_m_b != !l->opt_v_b)
            what = "half of its optimizer state";
        if (what)
            return pl_error_set(err, PL_EINVAL,
                                "%s: cannot save model %s: layer %s has %s (the model in memory "
                                "is inconsistent)",
                                path, m->name, l->name, what);
    }
    return PL_OK;
}

/* Directory part of path, for fsync after rename (best effort). */
static void sync_parent(const char *path)
{
    size_t n = strlen(path);
    char *dir = malloc(n + 2);
    if (!dir)
        return;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

static pl_status write_atomic(const char *path, const uint8_t *buf, size_t n, pl_error *err)
{
    size_t tn = strlen(path) + 32;
    char *tmp = malloc(tn);
    if (!tmp)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return pl_error_set(err, PL_EIO,
                            "%s: cannot create the checkpoint (%s; check that its folder exists "
                            "and is writable)",
                            path, strerror(e));
    }
    int e = 0;
    const char *step = "write";
    errno = 0;
    if (fwrite(buf, 1, n, f) != n || fflush(f) != 0)
        e = errno ? errno : EIO;
    else if (fsync(fileno(f)) != 0)
        e = errno, step = "sync";
    if (fclose(f) != 0 && !e)
        e = errno ? errno : EIO;
    if (!e && rename(tmp, path) != 0)
        e = errno, step = "rename the temporary file over";
    if (e) {
        remove(tmp);
        free(tmp);
        return pl_error_set(err, PL_EIO,
                            "%s: cannot %s the checkpoint (%s; check free space and permissions)",
                            path, step, strerror(e));
    }
    free(tmp);
    sync_parent(path);
    return PL_OK;
}

pl_status pl_checkpoint_save(const char *path, const pl_model *m, const char *meta,
                             unsigned flags, pl_error *err)
{
    if (flags & ~(unsigned)PL_CKPT_OPTIM)
        return pl_error_set(err, PL_EINVAL, "%s: unknown checkpoint flags 0x%x", path, flags);
    pl_status s = check_buffers(path, m, err);
    if (s)
        return s;
    uint32_t version = format_of(m);
    wr cnt = {NULL, 0};
    put_model(&cnt, m, meta, flags, version);
    size_t plen = cnt.n;
    if (plen > SIZE_MAX - HDR_BYTES - SUM_BYTES)
        return pl_error_set(err, PL_ENOMEM, "%s: model too large", path);
    uint8_t *buf = malloc(HDR_BYTES + plen + SUM_BYTES);
    if (!buf)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory for %zu bytes", path, plen);
    wr w = {buf, 0};
    put_bytes(&w, magic, sizeof magic);
    put_u32(&w, version);
    put_u32(&w, flags);
    put_u64(&w, plen);
    put_model(&w, m, meta, flags, version);
    put_u64(&w, pl_fnv1a(FNV_BASIS, buf + HDR_BYTES, plen));

    /* what we write must load: run the loader's validation on it */
    rd r = {.p = buf + HDR_BYTES, .n = plen, .version = version};
    if ((s = get_model(&r, flags, NULL, NULL))) {
        free(buf);
        return pl_error_set(err, PL_EINVAL,
                            "%s: refusing to save model %s: %s (the model in memory is "
                            "inconsistent)",
                            path, m->name, r.why);
    }
    s = write_atomic(path, buf, w.n, err);
    free(buf);
    return s;
}

/* ---- load -------------------------------------------------------------------------- */

pl_status pl_checkpoint_load(const char *path, pl_model **out, char **meta, pl_error *err)
{
    int oe;
    FILE *f = pl__fopen_regular(path, "the checkpoint", &oe, err);
    if (!f && oe)
        return pl_error_set(err, PL_EIO, "%s: cannot open the checkpoint (%s)", path, strerror(oe));
    if (!f)
        return PL_EIO;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return pl_error_set(err, PL_EIO, "%s: cannot read the checkpoint (not a regular file)",
                            path);
    }
    pl_status s = PL_OK;
    uint8_t hdr[HDR_BYTES], sum[SUM_BYTES];
    uint8_t *buf = NULL;
    size_t got = fread(hdr, 1, sizeof hdr, f);
    if (ferror(f)) {
        s = pl_error_set(err, PL_EIO, "%s: cannot read the checkpoint (%s)", path, strerror(errno));
        goto out;
    }
    if (got < sizeof magic || memcmp(hdr, magic, sizeof magic) != 0) {
        s = pl_error_set(err, PL_EFORMAT,
                         "%s: not a prunelab checkpoint (bad magic; check the path)",
                         path);
        goto out;
    }
    uint32_t version = le32(hdr + 8), flags = le32(hdr + 12);
    uint64_t plen = le64(hdr + 16);
    if (got < sizeof hdr || st.st_size < HDR_BYTES + SUM_BYTES) {
        s = pl_error_set(err, PL_EFORMAT,
                         "%s: truncated (%lld bytes, a checkpoint has at least %d; re-create it)",
                         path, (long long)st.st_size, HDR_BYTES + SUM_BYTES);
        goto out;
    }
    if (version > PL_CKPT_VERSION) {
        s = pl_error_set(err, PL_EFORMAT,
                         "%s: format version %u is newer than this prunelab's %u (update "
                         "prunelab or re-create the checkpoint)",
                         path, version, PL_CKPT_VERSION);
        goto out;
    }
    if (version == 0) {
        s = pl_error_set(err, PL_EFORMAT, "%s: format version 0 is invalid (file corrupt; "
                         "re-create it)", path);
        goto out;
    }
    if (flags & ~(uint32_t)PL_CKPT_OPTIM) {
        s = pl_error_set(err, PL_EFORMAT,
                         "%s: unknown flags 0x%x (file corrupt or written by a newer prunelab; "
                         "re-create it)",
                         path, flags);
        goto out;
    }
    uint64_t have = (uint64_t)st.st_size - HDR_BYTES - SUM_BYTES;
    if (plen != have) {
        s = pl_error_set(err, PL_EFORMAT,
                         "%s: %s (the header announces %llu payload bytes, the file holds %llu; "
                         "re-create it)",
                         path, plen > have ? "truncated" : "unexpected bytes after the checksum",
                         (unsigned long long)plen, (unsigned long long)have);
        goto out;
    }
    if (plen > SIZE_MAX - 1 || !(buf = malloc(plen ? (size_t)plen : 1))) {
        s = pl_error_set(err, PL_ENOMEM, "%s: out of memory for %llu bytes", path,
                         (unsigned long long)plen);
        goto out;
    }
    if (fread(buf, 1, (size_t)plen, f) != plen || fread(sum, 1, sizeof sum, f) != sizeof sum) {
        if (ferror(f))
            s = pl_error_set(err, PL_EIO, "%s: cannot read the checkpoint (%s)", path,
                             strerror(errno));
        else
            s = pl_error_set(err, PL_EFORMAT, "%s: truncated while reading (re-create it)", path);
        goto out;
    }
    if (pl_fnv1a(FNV_BASIS, buf, (size_t)plen) != le64(sum)) {
        s = pl_error_set(err, PL_EFORMAT,
                         "%s: checksum mismatch (file corrupt or truncated; re-create it)", path);
        goto out;
    }
    /* validate everything, then build */
    rd r = {.p = buf, .n = (size_t)plen, .version = version};
    if ((s = get_model(&r, flags, NULL, NULL))) {
        pl_error_set(err, s, "%s: %s (file corrupt or not written by prunelab; re-create it)",
                     path, r.why);
        goto out;
    }
    rd r2 = {.p = buf, .n = (size_t)plen, .version = version};
    if ((s = get_model(&r2, flags, out, meta)))
        pl_error_set(err, s, "%s: %s", path, r2.why);
out:
    free(buf);
    fclose(f);
    return s;
}
