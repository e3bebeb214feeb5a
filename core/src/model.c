/* model.c — layers, shapes, init, forward/backward, counting. */
#include "model.h"
#include "backend.h"
#include "layer_general.h"
#include "onnx_import.h"
#include "rng.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- small helpers ----------------------------------------------------------- */

static void *xcalloc(int64_t n, size_t size)
{
    if (n <= 0 || (uint64_t)n > SIZE_MAX / size)
        return NULL;
    return calloc((size_t)n, size);
}

static float *falloc(int64_t n) { return xcalloc(n, sizeof(float)); }

static float *fdup(const float *src, int64_t n)
{
    if (!src)
        return NULL;
    float *d = falloc(n);
    if (d)
        memcpy(d, src, (size_t)n * sizeof(float));
    return d;
}

static const char *type_name(pl_layer_type t)
{
    switch (t) {
    case PL_LAYER_CONV2D: return "conv2d";
    case PL_LAYER_LINEAR: return "linear";
    case PL_LAYER_MAXPOOL2D: return "maxpool2d";
    case PL_LAYER_AVGPOOL2D: return "avgpool2d";
    case PL_LAYER_RELU: return "relu";
    case PL_LAYER_FLATTEN: return "flatten";
    case PL_LAYER_BATCHNORM2D: return "batchnorm2d";
    case PL_LAYER_DROPOUT: return "dropout";
    case PL_LAYER_ADD: return "add";
    case PL_LAYER_CONCAT: return "concat";
    case PL_LAYER_GLOBAL_AVGPOOL: return "global_avgpool";
    case PL_LAYER_SLICE: return "slice";
    }
    return "?";
}

static int64_t in_size(const pl_layer *l) { return (int64_t)l->in_c * l->in_h * l->in_w; }
static int64_t out_size(const pl_layer *l) { return (int64_t)l->out_c * l->out_h * l->out_w; }

static void free_acts(pl_layer *l)
{
    if (l->type != PL_LAYER_FLATTEN)
        free(l->out);
    l->out = NULL;
    free(l->argmax);
    free(l->aux);
    free(l->bn_mean);
    free(l->bn_invstd);
    free(l->grad);
    l->grad = NULL;
    l->argmax = NULL;
    l->aux = l->bn_mean = l->bn_invstd = NULL;
}

static void free_optim(pl_layer *l)
{
    free(l->opt_m_w);
    free(l->opt_v_w);
    free(l->opt_m_b);
    free(l->opt_v_b);
    l->opt_m_w = l->opt_v_w = l->opt_m_b = l->opt_v_b = NULL;
}

static void csr_free(pl_layer *l);

void pl_layer_free(pl_layer *l)
{
    csr_free(l);
    free_acts(l);
    free_optim(l);
    free(l->w);
    free(l->b);
    free(l->gw);
    free(l->gb);
    free(l->mask);
    free(l->run_mean);
    free(l->run_var);
}

void pl_model_free(pl_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++)
        pl_layer_free(&m->layers[i]);
    free(m->layers);
    free(m->grad_a);
    free(m->grad_b);
    free(m->gscratch);
    free(m->arena);
    free(m);
}

/* ---- shapes ------------------------------------------------------------------ */

/* a*b for non-negative a, b; 0 when the product exceeds INT64_MAX. */
static int mul_ok(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0 || (a != 0 && b > INT64_MAX / a))
        return 0;
    *out = a * b;
    return 1;
}

pl_status pl_layer_dims_of(const pl_layer *l, int c, int h, int w, pl_layer_dims *d, char *why, size_t n)
{
    const int in[1][3] = {{c, h, w}};
    return pl_layer_dims_in(l, 1, in, d, why, n);
}

pl_status pl_layer_dims_in(const pl_layer *l, int n_in, const int (*in)[3], pl_layer_dims *d, char *why,
                           size_t n)
{
    int multi = l->type == PL_LAYER_ADD || l->type == PL_LAYER_CONCAT;
    if (multi && n_in < 2) {
        snprintf(why, n, "%s needs at least two inputs (got %d)", l->type == PL_LAYER_ADD ? "add" : "concat",
                 n_in);
        return PL_ECONFIG;
    }
    if ((!multi && n_in != 1) || n_in > PL_MAX_INPUTS) {
        snprintf(why, n, "%d inputs (a %s layer reads %s)", n_in, type_name(l->type),
                 multi ? "at most 16" : "exactly one");
        return PL_ECONFIG;
    }
    int c = in[0][0], h = in[0][1], w = in[0][2];
    int64_t oc = c, oh = h, ow = w, nw = 0, nb = 0, ic = c;
    switch (l->type) {
    case PL_LAYER_CONV2D:
    case PL_LAYER_MAXPOOL2D:
    case PL_LAYER_AVGPOOL2D: {
        /* pads [ph, pw, ph + pad_xb, pw + pad_xr]; a dilated kernel spans (k-1)*d+1 */
        int64_t eh = (int64_t)h + 2 * (int64_t)l->ph + l->pad_xb, ew = (int64_t)w + 2 * (int64_t)l->pw + l->pad_xr;
        int64_t ekh = pl_layer_span(l->kh, l->dil_h);
        int64_t ekw = pl_layer_span(l->kw, l->dil_w);
        if (l->ph + (int64_t)l->pad_xb < 0 || l->pw + (int64_t)l->pad_xr < 0) {
            snprintf(why, n, "bottom/right padding %lld,%lld is negative", (long long)l->ph + l->pad_xb,
                     (long long)l->pw + l->pad_xr);
            return PL_ECONFIG;
        }
        oh = eh >= ekh ? (eh - ekh) / l->sh + 1 : 0;
        ow = ew >= ekw ? (ew - ekw) / l->sw + 1 : 0;
        if (oh > PL_MAX_ELEMS || ow > PL_MAX_ELEMS) {
            snprintf(why, n, "padding %d,%d is too large (padding adds that many zeros on each side; keep it "
                     "below the kernel size)", l->ph, l->pw);
            return PL_ECONFIG;
        }
        if (oh < 1 || ow < 1) {
            snprintf(why, n, "kernel %dx%d does not fit its %dx%d input (padding %d,%d); the model does not fit "
                     "the input shape", l->kh, l->kw, h, w, l->ph, l->pw);
            return PL_ECONFIG;
        }
        if (l->type != PL_LAYER_CONV2D && pl__layer_general(l)) {
            /* the host's kernels (layer_general.h): any padding below the (dilated) kernel */
            if (l->ph >= ekh || l->pw >= ekw || l->ph + (int64_t)l->pad_xb >= ekh || l->pw + (int64_t)l->pad_xr >= ekw) {
                snprintf(why, n, "pool padding %d,%d,%lld,%lld is not below the %lldx%lld kernel", l->ph, l->pw,
                         (long long)l->ph + l->pad_xb, (long long)l->pw + l->pad_xr, (long long)ekh, (long long)ekw);
                return PL_ECONFIG;
            }
        } else if (l->type != PL_LAYER_CONV2D && ((int64_t)l->ph * 2 > l->kh || (int64_t)l->pw * 2 > l->kw)) {
            snprintf(why, n, "pool padding %d,%d exceeds half the %dx%d kernel", l->ph, l->pw, l->kh, l->kw);
            return PL_ECONFIG;
        }
        if (l->type == PL_LAYER_CONV2D) {
            oc = l->out_c;
            if (l->groups < 1 || c % l->groups || oc % l->groups) {
                snprintf(why, n, "groups %d does not divide its %d input and %lld output channels (set groups "
                         "to a common divisor)", l->groups, c, (long long)oc);
                return PL_ECONFIG;
            }
            int64_t t;
            if (!mul_ok(oc, c / l->groups, &t) || !mul_ok(t, l->kh, &t) || !mul_ok(t, l->kw, &nw))
                nw = INT64_MAX; /* refused as too large below */
            nb = l->has_bias ? oc : 0;
        }
        break;
    }
    case PL_LAYER_LINEAR:
        if (h != 1 || w != 1) {
            snprintf(why, n, "input %dx%dx%d is not a vector; put a flatten layer before it", c, h, w);
            return PL_ECONFIG;
        }
        oc = l->out_c;
        nw = oc * c; /* both below 2^31 */
        nb = l->has_bias ? oc : 0;
        break;
    case PL_LAYER_FLATTEN:
        oc = (int64_t)c * h * w; /* the input passed this same check */
        oh = ow = 1;
        break;
    case PL_LAYER_BATCHNORM2D:
        nw = nb = c;
        break;
    case PL_LAYER_RELU:
    case PL_LAYER_DROPOUT:
        break;
    case PL_LAYER_GLOBAL_AVGPOOL:
        oh = ow = 1;
        break;
    case PL_LAYER_SLICE:
        if (l->ch0 < 0 || l->ch0 >= l->ch1 || l->ch1 > c) {
            snprintf(why, n, "channels [%d, %d] are not a range inside its input's %d channels (0 <= start < end "
                     "<= %d)", l->ch0, l->ch1, c, c);
            return PL_ECONFIG;
        }
        oc = l->ch1 - l->ch0;
        break;
    case PL_LAYER_ADD:
        for (int k = 1; k < n_in; k++)
            if (in[k][0] != c || in[k][1] != h || in[k][2] != w) {
                snprintf(why, n, "input %d is %dx%dx%d but input 1 is %dx%dx%d (add needs identical shapes)",
                         k + 1, in[k][0], in[k][1], in[k][2], c, h, w);
                return PL_ECONFIG;
            }
        break;
    case PL_LAYER_CONCAT:
        for (int k = 1; k < n_in; k++) {
            if (in[k][1] != h || in[k][2] != w) {
                snprintf(why, n, "input %d is %dx%d but input 1 is %dx%d (concat joins channels of equal "
                         "height and width)", k + 1, in[k][1], in[k][2], h, w);
                return PL_ECONFIG;
            }
            oc += in[k][0]; /* at most 16 terms below 2^31 */
        }
        ic = oc;
        break;
    }
    /* sizes stay far below int overflow: every activation of one image and
     * every parameter tensor must fit in PL_MAX_ELEMS floats */
    int64_t act;
    if (!mul_ok(oc, oh, &act) || !mul_ok(act, ow, &act))
        act = INT64_MAX;
    if (oc < 1) {
        snprintf(why, n, "%lld output %s", (long long)oc, l->type == PL_LAYER_LINEAR ? "units" : "channels");
        return PL_ECONFIG;
    }
    if (act > PL_MAX_ELEMS || nw > PL_MAX_ELEMS) {
        snprintf(why, n, "too large (%lld activations, %lld weights per image; the limit is %lld)",
                 (long long)act, (long long)nw, (long long)PL_MAX_ELEMS);
        return PL_ECONFIG;
    }
    *d = (pl_layer_dims){.out_c = (int)oc, .out_h = (int)oh, .out_w = (int)ow, .nw = nw, .nb = nb,
                         .in_c = (int)ic, .in_h = h, .in_w = w};
    return PL_OK;
}

int pl_model_is_chain(const pl_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].n_in != 1 || m->layers[i].in[0] != i - 1)
            return 0;
    return 1;
}

pl_status pl_model_check_graph(pl_model *m, char *why, size_t n)
{
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].n_out = 0;
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        if (l->n_in < 1 || l->n_in > PL_MAX_INPUTS) {
            snprintf(why, n, "layer %s reads %d inputs (1 to %d)", l->name, l->n_in, PL_MAX_INPUTS);
            return PL_ECONFIG;
        }
        for (int k = 0; k < l->n_in; k++) {
            if (l->in[k] < -1 || l->in[k] >= i) {
                snprintf(why, n, "layer %s reads layer index %d, which is not an earlier layer", l->name,
                         l->in[k]);
                return PL_ECONFIG;
            }
            if (l->in[k] >= 0)
                m->layers[l->in[k]].n_out++;
        }
    }
    for (int i = 0; i + 1 < m->n_layers; i++)
        if (!m->layers[i].n_out) {
            snprintf(why, n, "the output of layer %s is never used", m->layers[i].name);
            return PL_ECONFIG;
        }
    return PL_OK;
}

/* The shapes of layer i's inputs (at most PL_MAX_INPUTS, checked by
 * pl_model_check_graph). */
static void input_shapes(const pl_model *m, int i, int (*sh)[3])
{
    const pl_layer *l = &m->layers[i];
    for (int k = 0; k < l->n_in; k++) {
        int j = l->in[k];
        sh[k][0] = j < 0 ? m->in_c : m->layers[j].out_c;
        sh[k][1] = j < 0 ? m->in_h : m->layers[j].out_h;
        sh[k][2] = j < 0 ? m->in_w : m->layers[j].out_w;
    }
}

/* Walks the layers from the model input, setting every in/out shape and
 * parameter count by the shape rule. With spec, errors carry the layer's
 * line and column in the model file. */
static pl_status infer(pl_model *m, const char *file, const pl_model_spec *spec, pl_error *err)
{
    int c = m->in_c, h = m->in_h, w = m->in_w;
    if (c < 1 || h < 1 || w < 1 || (int64_t)c * h * w > PL_MAX_ELEMS)
        return pl_error_set(err, PL_ECONFIG,
                            "%s: input %dx%dx%d is empty or too large (at most %lld values per "
                            "image)",
                            file, c, h, w, (long long)PL_MAX_ELEMS);
    char why[256];
    if (pl_model_check_graph(m, why, sizeof why))
        return pl_error_set(err, PL_ECONFIG, "%s: %s", file, why);
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        pl_layer_dims d;
        int sh[PL_MAX_INPUTS][3];
        input_shapes(m, i, sh);
        if (pl_layer_dims_in(l, l->n_in, (const int (*)[3])sh, &d, why, sizeof why)) {
            if (spec && (size_t)i < spec->n_layers)
                return pl_error_set(err, PL_ECONFIG, "%s:%d:%d: layer %s (%s): %s", file, spec->layers[i].line,
                                    spec->layers[i].col, l->name, type_name(l->type), why);
            return pl_error_set(err, PL_ECONFIG, "%s: layer %s (%s): %s", file, l->name, type_name(l->type), why);
        }
        l->in_c = d.in_c;
        l->in_h = d.in_h;
        l->in_w = d.in_w;
        l->out_c = c = d.out_c;
        l->out_h = h = d.out_h;
        l->out_w = w = d.out_w;
        l->nw = d.nw;
        l->nb = d.nb;
    }
    if (m->n_layers == 0)
        return pl_error_set(err, PL_ECONFIG, "%s: the model has no layers", file);
    if (c * h * w != m->classes)
        return pl_error_set(err, PL_ECONFIG,
                            "%s: the last layer produces %d values per image but the model has %d "
                            "classes (set the last layer's out: to %d, or classes: to %d)",
                            file, c * h * w, m->classes, m->classes, c * h * w);
    return PL_OK;
}

/* ---- construction -------------------------------------------------------------- */

/* Parameters and their gradients at the counts infer() set; batchnorm
 * running statistics start at mean 0, variance 1. */
static pl_status alloc_params(pl_layer *l)
{
    if (l->type == PL_LAYER_BATCHNORM2D) {
        l->run_mean = falloc(l->in_c);
        l->run_var = falloc(l->in_c);
        if (!l->run_mean || !l->run_var)
            return PL_ENOMEM;
        for (int i = 0; i < l->in_c; i++)
            l->run_var[i] = 1.0f;
    }
    if (l->nw && !(l->w = falloc(l->nw)))
        return PL_ENOMEM;
    if (l->nb && !(l->b = falloc(l->nb)))
        return PL_ENOMEM;
    return pl_layer_scratch_reset(l);
}

pl_status pl_layer_scratch_reset(pl_layer *l)
{
    free(l->gw);
    free(l->gb);
    l->gw = l->nw ? falloc(l->nw) : NULL;
    l->gb = l->nb ? falloc(l->nb) : NULL;
    free_optim(l);
    return (l->nw && !l->gw) || (l->nb && !l->gb) ? PL_ENOMEM : PL_OK;
}

static void init_params(pl_layer *l, uint64_t seed)
{
    char stream[96];
    snprintf(stream, sizeof stream, "init:%s", l->name);
    pl_rng r;
    pl_rng_seed(&r, seed, stream);
    if (l->type == PL_LAYER_BATCHNORM2D) {
        for (int64_t i = 0; i < l->nw; i++)
            l->w[i] = 1.0f;
        for (int64_t i = 0; i < l->nb; i++)
            l->b[i] = 0.0f;
        return;
    }
    if (l->type != PL_LAYER_CONV2D && l->type != PL_LAYER_LINEAR)
        return;
    /* PyTorch: kaiming_uniform(a=sqrt(5)) gives bound 1/sqrt(fan_in) for the
     * weight; the bias uses the same bound. */
    int64_t fan_in = l->type == PL_LAYER_CONV2D ? (int64_t)(l->in_c / l->groups) * l->kh * l->kw : l->in_c;
    double bound = 1.0 / sqrt((double)fan_in);
    for (int64_t i = 0; i < l->nw; i++)
        l->w[i] = (float)((2.0 * pl_rng_uniform(&r) - 1.0) * bound);
    for (int64_t i = 0; i < l->nb; i++)
        l->b[i] = (float)((2.0 * pl_rng_uniform(&r) - 1.0) * bound);
}

pl_status pl_model_new(const pl_model_spec *spec, uint64_t seed, pl_model **out, pl_error *err)
{
    pl_model *m = calloc(1, sizeof *m);
    if (!m)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    snprintf(m->name, sizeof m->name, "%s", spec->name ? spec->name : "model");
    m->in_c = spec->in_c;
    m->in_h = spec->in_h;
    m->in_w = spec->in_w;
    m->classes = spec->classes;
    m->seed = seed;
    m->n_layers = (int)spec->n_layers;
    m->layers = spec->n_layers ? calloc(spec->n_layers, sizeof *m->layers) : NULL;
    if (spec->n_layers && !m->layers) {
        free(m);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < spec->n_layers; i++) {
        const pl_layer_spec *s = &spec->layers[i];
        pl_layer *l = &m->layers[i];
        snprintf(l->name, sizeof l->name, "%s", s->name);
        l->type = s->type;
        l->kh = s->kh > 0 ? s->kh : 1;
        l->kw = s->kw > 0 ? s->kw : 1;
        l->sh = s->sh > 0 ? s->sh : 1;
        l->sw = s->sw > 0 ? s->sw : 1;
        l->ph = s->ph;
        l->pw = s->pw;
        l->has_bias = s->bias;
        l->groups = s->groups > 0 ? s->groups : 1;
        l->pad_xb = s->pad_xb;
        l->pad_xr = s->pad_xr;
        l->dil_h = s->dil_h > 1 ? s->dil_h : 0;
        l->dil_w = s->dil_w > 1 ? s->dil_w : 0;
        l->excl_pad = s->excl_pad != 0 && pl_layer_padded(s->ph, s->pw, s->pad_xb, s->pad_xr);
        if (s->type == PL_LAYER_SLICE) {
            l->ch0 = s->ch0;
            l->ch1 = s->ch1;
        }
        l->n_in = 1;
        l->in[0] = (int)i - 1; /* the layer above; -1 is the model's input */
        if (s->n_in > 0 && s->n_in <= PL_MAX_INPUTS) {
            l->n_in = s->n_in;
            memcpy(l->in, s->in, (size_t)s->n_in * sizeof l->in[0]);
        }
        l->p = s->p;
        l->eps = s->eps > 0 ? s->eps : 1e-5;
        l->momentum = s->momentum;
        if (s->type == PL_LAYER_CONV2D || s->type == PL_LAYER_LINEAR)
            l->out_c = s->out;
    }
    const char *file = spec->file ? spec->file : "model";
    pl_status st = infer(m, file, spec, err);
    if (st) {
        pl_model_free(m);
        return st;
    }
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        if (alloc_params(l)) { /* the message names the layer: set it before freeing */
            pl_status e = pl_error_set(err, PL_ENOMEM, "%s: out of memory for layer %s", file, l->name);
            pl_model_free(m);
            return e;
        }
        init_params(l, seed);
        l->orig_units = l->out_c;
    }
    /* a model imported from ONNX starts from the file's weights (onnx_import.c) */
    if (spec->weights && (st = pl_spec_weights_apply(spec->weights, m, file, err))) {
        pl_model_free(m);
        return st;
    }
    *out = m;
    return PL_OK;
}

pl_status pl_model_clone(const pl_model *src, pl_model **out, pl_error *err)
{
    pl_model *m = calloc(1, sizeof *m);
    if (!m)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    *m = *src;
    m->grad_a = m->grad_b = NULL;
    m->gscratch = NULL;
    m->grad_cap = 0;
    m->batch_cap = 0;
    m->graph_grad_n = 0;
    m->arena = NULL;
    m->arena_cap = 0;
    m->prof = NULL;
    m->layers = calloc((size_t)src->n_layers, sizeof *m->layers);
    if (!m->layers) {
        free(m);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    int bad = 0;
    for (int i = 0; i < src->n_layers; i++) {
        const pl_layer *s = &src->layers[i];
        pl_layer *l = &m->layers[i];
        *l = *s;
        l->csr = NULL; /* built again on demand, never shared */
        l->out = NULL;
        l->argmax = NULL;
        l->aux = l->bn_mean = l->bn_invstd = NULL;
        l->grad = NULL;
        l->opt_m_w = l->opt_v_w = l->opt_m_b = l->opt_v_b = NULL;
        l->w = fdup(s->w, s->nw);
        l->b = fdup(s->b, s->nb);
        l->gw = s->nw ? falloc(s->nw) : NULL;
        l->gb = s->nb ? falloc(s->nb) : NULL;
        l->mask = fdup(s->mask, s->nw);
        l->run_mean = fdup(s->run_mean, s->in_c);
        l->run_var = fdup(s->run_var, s->in_c);
        if ((s->w && !l->w) || (s->b && !l->b) || (s->nw && !l->gw) || (s->nb && !l->gb) ||
            (s->mask && !l->mask) || (s->run_mean && (!l->run_mean || !l->run_var)))
            bad = 1;
    }
    if (bad) {
        pl_model_free(m);
        return pl_error_set(err, PL_ENOMEM, "out of memory cloning the model");
    }
    *out = m;
    return PL_OK;
}

void pl_model_bind(pl_model *m, const pl_backend_ops *be, void *be_state)
{
    m->be = be;
    m->be_state = be_state;
    m->be_inst = NULL;
}

static int relu_follows(const pl_model *m, int i);

pl_status pl_model_reserve(pl_model *m, int batch, pl_error *err)
{
    if (batch <= m->batch_cap && m->grad_a && m->grad_b)
        return PL_OK;
    /* until every buffer is there, the model holds no capacity: a failed
     * reserve must not look complete to the next call (found by failing
     * allocation 1,074 of a run: a NULL gradient buffer reached a kernel) */
    m->batch_cap = 0;
    char why[256];
    if (pl_model_check_graph(m, why, sizeof why))
        return pl_error_set(err, PL_EINVAL, "model %s: %s", m->name, why);
    int64_t gmax = 0, smax = 0;
    m->graph_grad_n = 0; /* free_acts below drops the per-layer gradients */
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        free_acts(l);
        int64_t os = out_size(l) * batch, is = in_size(l) * batch;
        if (l->type == PL_LAYER_CONV2D && l->groups > 1) {
            int64_t gs = (is + os) / l->groups;
            if (gs > smax)
                smax = gs;
        }
        if (is > gmax)
            gmax = is;
        if (os > gmax)
            gmax = os;
        /* a batchnorm whose ReLU is fused into it (pl_model_forward) never
         * writes its own output: nothing else reads it */
        if (l->type != PL_LAYER_FLATTEN && !(l->type == PL_LAYER_BATCHNORM2D && relu_follows(m, i))) {
            l->out = falloc(os);
            if (!l->out)
                return pl_error_set(err, PL_ENOMEM, "out of memory for activations of %s", l->name);
        }
        if (l->type == PL_LAYER_MAXPOOL2D) {
            l->argmax = xcalloc(os, sizeof(int32_t));
            if (!l->argmax)
                return pl_error_set(err, PL_ENOMEM, "out of memory");
        }
        if (l->type == PL_LAYER_DROPOUT) {
            l->aux = falloc(os);
            if (!l->aux)
                return pl_error_set(err, PL_ENOMEM, "out of memory");
        }
        if (l->type == PL_LAYER_BATCHNORM2D) {
            l->bn_mean = falloc(l->in_c);
            l->bn_invstd = falloc(l->in_c);
            if (!l->bn_mean || !l->bn_invstd)
                return pl_error_set(err, PL_ENOMEM, "out of memory");
        }
    }
    free(m->grad_a);
    free(m->grad_b);
    free(m->gscratch);
    m->gscratch = NULL;
    if (smax && !(m->gscratch = falloc(smax))) {
        m->grad_a = m->grad_b = NULL;
        return pl_error_set(err, PL_ENOMEM, "out of memory for grouped convolution");
    }
    m->grad_a = falloc(gmax);
    m->grad_b = falloc(gmax);
    if (!m->grad_a || !m->grad_b) {
        free(m->grad_a);
        free(m->grad_b);
        m->grad_a = m->grad_b = NULL;
        return pl_error_set(err, PL_ENOMEM, "out of memory for gradients");
    }
    m->grad_cap = gmax;
    m->batch_cap = batch;
    return PL_OK;
}

pl_status pl_model_reshape(pl_model *m, pl_error *err)
{
    for (int i = 0; i < m->n_layers; i++)
        free_acts(&m->layers[i]);
    free(m->grad_a);
    free(m->grad_b);
    free(m->gscratch);
    m->gscratch = NULL;
    m->grad_a = m->grad_b = NULL;
    m->batch_cap = 0;
    m->graph_grad_n = 0;
    return infer(m, m->name, NULL, err);
}

pl_status pl_model_optim_reset(pl_model *m, pl_error *err)
{
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        free_optim(l);
        if (l->nw) {
            l->opt_m_w = falloc(l->nw);
            l->opt_v_w = falloc(l->nw);
            if (!l->opt_m_w || !l->opt_v_w)
                return pl_error_set(err, PL_ENOMEM, "out of memory for optimizer state");
        }
        if (l->nb) {
            l->opt_m_b = falloc(l->nb);
            l->opt_v_b = falloc(l->nb);
            if (!l->opt_m_b || !l->opt_v_b)
                return pl_error_set(err, PL_ENOMEM, "out of memory for optimizer state");
        }
    }
    return PL_OK;
}

/* ---- layers that live in the host ---------------------------------------------- */

/* Host work over channels: on the backend's threads when it offers
 * parallel_for (ABI 1.2), else in a loop. Each channel is one task with a
 * fixed order of operations, so results never depend on the threads. */
static void for_channels(const pl_model *m, int C, double work, void (*fn)(void *, int64_t, int), void *ctx)
{
    if (m->be && m->be->parallel_for && m->be->parallel_for(m->be_state, C, work, fn, ctx) == PL_OK)
        return;
    for (int c = 0; c < C; c++)
        fn(ctx, c, 0);
}

/* Batchnorm in float vectors (the compiler's generic vector extension: SSE
 * on any x86-64, NEON on arm64; no instruction set is assumed). The order
 * of every sum is fixed by the code, not by the hardware or the threads:
 * each image's plane of one channel is summed in 16 float lanes (4 vectors
 * of 4; a tail shorter than 16 in a scalar), the lanes added in a fixed
 * tree, and the planes' sums accumulated in double in image order. */
typedef float bn_v4 __attribute__((vector_size(16)));
typedef int32_t bn_v4i __attribute__((vector_size(16)));

static inline bn_v4 bn_ld(const float *p)
{
    bn_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void bn_st(float *p, bn_v4 v) { memcpy(p, &v, sizeof v); }

static inline bn_v4 bn_set1(float f) { return (bn_v4){f, f, f, f}; }

/* 0 > v ? 0 : v, lane by lane: the backends' ReLU, -0.0 and NaN included */
static inline bn_v4 bn_relu(bn_v4 v)
{
    bn_v4i neg = bn_set1(0.0f) > v;
    return (bn_v4)((bn_v4i)v & ~neg);
}

/* y > 0 ? d : 0 (the ReLU's backward) */
static inline bn_v4 bn_mask(bn_v4 y, bn_v4 d)
{
    bn_v4i pos = y > bn_set1(0.0f);
    return (bn_v4)((bn_v4i)d & pos);
}

static inline float bn_hsum(bn_v4 a0, bn_v4 a1, bn_v4 a2, bn_v4 a3, float tail)
{
    bn_v4 s = (a0 + a1) + (a2 + a3);
    return ((s[0] + s[1]) + (s[2] + s[3])) + tail;
}

/* Σ p[i] over one plane */
static float bn_plane_sum(const float *p, int64_t hw)
{
    bn_v4 a0 = bn_set1(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= hw; i += 16) {
        a0 += bn_ld(p + i);
        a1 += bn_ld(p + i + 4);
        a2 += bn_ld(p + i + 8);
        a3 += bn_ld(p + i + 12);
    }
    float t = 0;
    for (; i < hw; i++)
        t += p[i];
    return bn_hsum(a0, a1, a2, a3, t);
}

/* Σ (p[i] − mu)² over one plane */
static float bn_plane_sqdev(const float *p, int64_t hw, float mu)
{
    bn_v4 a0 = bn_set1(0), a1 = a0, a2 = a0, a3 = a0, m = bn_set1(mu);
    int64_t i = 0;
    for (; i + 16 <= hw; i += 16) {
        bn_v4 d0 = bn_ld(p + i) - m, d1 = bn_ld(p + i + 4) - m, d2 = bn_ld(p + i + 8) - m,
              d3 = bn_ld(p + i + 12) - m;
        a0 += d0 * d0;
        a1 += d1 * d1;
        a2 += d2 * d2;
        a3 += d3 * d3;
    }
    float t = 0;
    for (; i < hw; i++) {
        float d = p[i] - mu;
        t += d * d;
    }
    return bn_hsum(a0, a1, a2, a3, t);
}

/* y = g·((x − mu)·invstd) + be over one plane, then the ReLU when relu */
static void bn_plane_apply(const float *x, float *y, int64_t hw, float mu, float invstd, float g, float be,
                           int relu)
{
    bn_v4 vm = bn_set1(mu), vi = bn_set1(invstd), vg = bn_set1(g), vb = bn_set1(be);
    int64_t i = 0;
    for (; i + 4 <= hw; i += 4) {
        bn_v4 v = vg * ((bn_ld(x + i) - vm) * vi) + vb;
        bn_st(y + i, relu ? bn_relu(v) : v);
    }
    for (; i < hw; i++) {
        float v = g * ((x[i] - mu) * invstd) + be;
        y[i] = relu && 0.0f > v ? 0.0f : v;
    }
}

typedef struct bn_job {
    pl_layer *l;
    const float *x, *dy, *ry; /* ry: the fused ReLU's output (backward) */
    float *y, *dx;
    int n;
    int relu;                 /* forward: apply the ReLU; backward: dy is the ReLU's */
    pl_mode mode;
} bn_job;

/* channel c of y = gamma·(x − mean)/sqrt(var + eps) + beta over (n, h, w) */
static void bn_forward_channel(void *ctx, int64_t ci, int worker)
{
    (void)worker;
    const bn_job *j = ctx;
    pl_layer *l = j->l;
    const float *x = j->x;
    int C = l->in_c, n = j->n, c = (int)ci;
    int64_t hw = (int64_t)l->in_h * l->in_w, M = hw * n;
    double mean, var;
    if (j->mode == PL_MODE_TRAIN) {
        double s = 0, s2 = 0;
        for (int b = 0; b < n; b++)
            s += bn_plane_sum(x + ((int64_t)b * C + c) * hw, hw);
        float mu = (float)(s / (double)M);
        for (int b = 0; b < n; b++)
            s2 += bn_plane_sqdev(x + ((int64_t)b * C + c) * hw, hw, mu);
        mean = mu;
        var = s2 / (double)M;
        double unbiased = M > 1 ? s2 / (double)(M - 1) : var;
        l->run_mean[c] = (float)((1 - l->momentum) * l->run_mean[c] + l->momentum * mean);
        l->run_var[c] = (float)((1 - l->momentum) * l->run_var[c] + l->momentum * unbiased);
    } else {
        mean = l->run_mean[c];
        var = l->run_var[c];
    }
    float invstd = (float)(1.0 / sqrt(var + l->eps));
    float mu = (float)mean;
    if (j->mode == PL_MODE_TRAIN) {
        l->bn_mean[c] = mu;
        l->bn_invstd[c] = invstd;
    }
    for (int b = 0; b < n; b++) {
        int64_t off = ((int64_t)b * C + c) * hw;
        bn_plane_apply(x + off, j->y + off, hw, mu, invstd, l->w[c], l->b[c], j->relu);
    }
}

/* y: the batchnorm's output, or with relu the output of the ReLU after it */
static void bn_forward(const pl_model *m, pl_layer *l, const float *x, float *y, int relu, int n, pl_mode mode)
{
    bn_job j = {.l = l, .x = x, .y = y, .relu = relu, .n = n, .mode = mode};
    for_channels(m, l->in_c, 4.0 * n * l->in_c * l->in_h * l->in_w, bn_forward_channel, &j);
}

/* channel c of dγ = Σ dy·x̂, dβ = Σ dy, dx = γ·invstd·(dy − dβ/M − x̂·dγ/M),
 * x̂ = (x − mean)·invstd recomputed from the input exactly as the forward
 * made it; with relu, dy is first masked by the ReLU's output (ry > 0). */
static void bn_backward_channel(void *ctx, int64_t ci, int worker)
{
    (void)worker;
    const bn_job *j = ctx;
    pl_layer *l = j->l;
    const float *dy = j->dy, *x = j->x, *ry = j->ry;
    float *dx = j->dx;
    int C = l->in_c, n = j->n, c = (int)ci;
    int64_t hw = (int64_t)l->in_h * l->in_w, M = hw * n;
    float mu = l->bn_mean[c], is = l->bn_invstd[c];
    bn_v4 vm = bn_set1(mu), vi = bn_set1(is);
    double dg = 0, db = 0;
    for (int b = 0; b < n; b++) {
        int64_t off = ((int64_t)b * C + c) * hw;
        const float *pd = dy + off, *px = x + off, *pr = ry ? ry + off : NULL;
        bn_v4 g0 = bn_set1(0), g1 = g0, b0 = g0, b1 = g0;
        int64_t i = 0;
        for (; i + 8 <= hw; i += 8) {
            bn_v4 d0 = bn_ld(pd + i), d1 = bn_ld(pd + i + 4);
            if (pr) {
                d0 = bn_mask(bn_ld(pr + i), d0);
                d1 = bn_mask(bn_ld(pr + i + 4), d1);
            }
            g0 += d0 * ((bn_ld(px + i) - vm) * vi);
            g1 += d1 * ((bn_ld(px + i + 4) - vm) * vi);
            b0 += d0;
            b1 += d1;
        }
        float tg = 0, tb = 0;
        for (; i < hw; i++) {
            float d = pr && !(pr[i] > 0.0f) ? 0.0f : pd[i];
            tg += d * ((px[i] - mu) * is);
            tb += d;
        }
        bn_v4 z = bn_set1(0);
        dg += bn_hsum(g0, g1, z, z, tg);
        db += bn_hsum(b0, b1, z, z, tb);
    }
    l->gw[c] = (float)dg;
    l->gb[c] = (float)db;
    if (!dx)
        return;
    double k = (double)l->w[c] * is;
    float A = (float)k, B = (float)(-k * dg / (double)M), Cc = (float)(-k * db / (double)M);
    bn_v4 va = bn_set1(A), vb = bn_set1(B), vc = bn_set1(Cc);
    for (int b = 0; b < n; b++) {
        int64_t off = ((int64_t)b * C + c) * hw;
        const float *pd = dy + off, *px = x + off, *pr = ry ? ry + off : NULL;
        float *po = dx + off;
        int64_t i = 0;
        for (; i + 4 <= hw; i += 4) {
            bn_v4 d = bn_ld(pd + i);
            if (pr)
                d = bn_mask(bn_ld(pr + i), d);
            bn_st(po + i, va * d + (vb * ((bn_ld(px + i) - vm) * vi) + vc));
        }
        for (; i < hw; i++) {
            float d = pr && !(pr[i] > 0.0f) ? 0.0f : pd[i];
            po[i] = A * d + (B * ((px[i] - mu) * is) + Cc);
        }
    }
}

/* x: the batchnorm's input; ry: NULL, or the output of the ReLU after it
 * when dy is that ReLU's output gradient (its backward fused in) */
static void bn_backward(const pl_model *m, pl_layer *l, const float *x, const float *dy, const float *ry, float *dx,
                        int n)
{
    bn_job j = {.l = l, .x = x, .dy = dy, .ry = ry, .dx = dx, .n = n};
    for_channels(m, l->in_c, 4.0 * n * l->in_c * l->in_h * l->in_w, bn_backward_channel, &j);
}

static void dropout_forward(pl_model *m, pl_layer *l, const float *x, int n)
{
    int64_t sz = out_size(l) * n;
    char stream[96];
    snprintf(stream, sizeof stream, "dropout:%s:%llu", l->name, (unsigned long long)m->dropout_calls);
    pl_rng r;
    pl_rng_seed(&r, m->seed, stream);
    float scale = l->p < 1 ? (float)(1.0 / (1.0 - l->p)) : 0.0f;
    for (int64_t i = 0; i < sz; i++) {
        float k = pl_rng_uniform(&r) < l->p ? 0.0f : scale;
        l->aux[i] = k;
        l->out[i] = x[i] * k;
    }
}

/* ---- forward / backward ----------------------------------------------------------- */

static void conv_shape(const pl_layer *l, int n, pl_conv2d_shape *s)
{
    *s = (pl_conv2d_shape){.n = n, .cin = l->in_c, .h = l->in_h, .w = l->in_w, .cout = l->out_c,
                           .kh = l->kh, .kw = l->kw, .stride_h = l->sh, .stride_w = l->sw,
                           .pad_h = l->ph, .pad_w = l->pw, .oh = l->out_h, .ow = l->out_w};
}

static void pool_shape(const pl_layer *l, int n, pl_pool2d_shape *s)
{
    *s = (pl_pool2d_shape){.n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w, .kh = l->kh,
                           .kw = l->kw, .stride_h = l->sh, .stride_w = l->sw, .pad_h = l->ph,
                           .pad_w = l->pw, .oh = l->out_h, .ow = l->out_w};
}

/* ---- sparse linear layers in evaluation (ABI 1.1 linear_forward_csr) ------------------

   A linear layer whose mask prunes at least PL_CSR_MIN_SPARSITY of its
   weights is evaluated from a CSR copy of its nonzero weights, when the
   backend offers linear_forward_csr and the layer has at least
   PL_CSR_MIN_WEIGHTS weights. The choice depends on shapes and sparsity
   only. The threshold comes from timing simd's two kernels on LeNet-300-100
   shapes in batches of 1000 (bench/README.md): the sparse one wins from
   about PL_CSR_MIN_SPARSITY on.

   The copy is only used in PL_MODE_EVAL and is rebuilt whenever the weights
   differ from the ones it was made from (memcmp against a saved copy, once
   per forward of a whole batch: a small fraction of the sparse product it
   guards). A counter bumped by training steps would miss weights changed
   outside training: pruning zeroes weights between two evaluations. */
#define PL_CSR_MIN_SPARSITY 0.6
#define PL_CSR_MIN_WEIGHTS 4096

typedef struct pl__csr_cache {
    float *w;          /* the weights it was built from [out][in] */
    int64_t nw;
    int64_t *row_ptr;
    int32_t *col_idx;
    float *values;
    pl_csr csr;
} pl__csr_cache;

static void csr_free(pl_layer *l)
{
    pl__csr_cache *c = l->csr;
    if (!c)
        return;
    free(c->w);
    free(c->row_ptr);
    free(c->col_idx);
    free(c->values);
    free(c);
    l->csr = NULL;
}

/* The CSR form of l's weights for this evaluation, or NULL for the dense
 * kernel (not sparse enough, no backend support, or out of memory). */
static const pl_csr *csr_for(pl_model *m, pl_layer *l)
{
    if (!l->mask || !pl_backend_has(m->be, PL_SLOT_LINEAR_CSR) || l->nw < PL_CSR_MIN_WEIGHTS)
        return NULL;
    pl__csr_cache *c = l->csr;
    if (c && c->nw == l->nw && c->csr.rows == l->out_c && c->csr.cols == l->in_c &&
        !memcmp(c->w, l->w, (size_t)l->nw * sizeof(float)))
        return &c->csr;
    csr_free(l);
    int64_t pruned = 0, nnz = 0;
    for (int64_t i = 0; i < l->nw; i++) {
        pruned += l->mask[i] == 0.0f;
        nnz += l->w[i] != 0.0f;
    }
    if ((double)pruned < PL_CSR_MIN_SPARSITY * (double)l->nw)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nw = l->nw;
    c->w = fdup(l->w, l->nw);
    c->row_ptr = xcalloc(l->out_c + 1, sizeof(int64_t));
    c->col_idx = xcalloc(nnz ? nnz : 1, sizeof(int32_t));
    c->values = falloc(nnz ? nnz : 1);
    l->csr = c;
    if (!c->w || !c->row_ptr || !c->col_idx || !c->values) {
        csr_free(l);
        return NULL;
    }
    int64_t e = 0;
    for (int o = 0; o < l->out_c; o++) {
        const float *wr = l->w + (int64_t)o * l->in_c;
        for (int i = 0; i < l->in_c; i++)
            if (wr[i] != 0.0f) {
                c->col_idx[e] = i;
                c->values[e++] = wr[i];
            }
        c->row_ptr[o + 1] = e;
    }
    c->csr = (pl_csr){.rows = l->out_c, .cols = l->in_c, .nnz = nnz, .row_ptr = c->row_ptr,
                      .col_idx = c->col_idx, .values = c->values};
    return &c->csr;
}

/* ---- graph plumbing ------------------------------------------------------------------ */

/* Layer j's output for this batch; j < 0 is the model's input x. */
static const float *src_out(const pl_model *m, const float *x, int j)
{
    return j < 0 ? x : m->layers[j].out;
}

/* A ReLU right after layer i, reading only it, that the backend can fuse
 * into it (ABI 1.1): layer i's own output then goes unwritten, so nothing
 * else may read it. */
static int relu_follows(const pl_model *m, int i)
{
    if (i + 1 >= m->n_layers)
        return 0;
    const pl_layer *r = &m->layers[i + 1];
    return r->type == PL_LAYER_RELU && r->n_in == 1 && r->in[0] == i && m->layers[i].n_out == 1;
}

/* ... and max pooling right after that ReLU, reading it (the ReLU's output
 * is still written: other layers may read it too) */
static int relu_maxpool_follow(const pl_model *m, int i)
{
    if (!relu_follows(m, i) || i + 2 >= m->n_layers)
        return 0;
    const pl_layer *p = &m->layers[i + 2];
    return p->type == PL_LAYER_MAXPOOL2D && p->n_in == 1 && p->in[0] == i + 1 && !pl__layer_general(p);
}

/* Channels [c0, c0+k) of every image of x[n][C][plane] into g[n][k][plane],
 * and back. */
static void gather(const float *x, int n, int C, int c0, int k, int64_t plane, float *g)
{
    for (int b = 0; b < n; b++)
        memcpy(g + (int64_t)b * k * plane, x + ((int64_t)b * C + c0) * plane, (size_t)(k * plane) * sizeof(float));
}

static void scatter(const float *g, int n, int C, int c0, int k, int64_t plane, float *y)
{
    for (int b = 0; b < n; b++)
        memcpy(y + ((int64_t)b * C + c0) * plane, g + (int64_t)b * k * plane, (size_t)(k * plane) * sizeof(float));
}

/* ---- grouped convolution: the backend's grouped kernels (ABI 1.4) when it
 * has them, else each group through the dense kernels, its channels
 * gathered into m->gscratch (sized by pl_model_reserve). */

typedef struct group_geom {
    int G, ci, co;              /* groups, input and output channels per group */
    int64_t pin, pout, wg;      /* input and output plane, weights per group */
} group_geom;

static void group_geom_of(const pl_layer *l, group_geom *g)
{
    g->G = l->groups;
    g->ci = l->in_c / l->groups;
    g->co = l->out_c / l->groups;
    g->pin = (int64_t)l->in_h * l->in_w;
    g->pout = (int64_t)l->out_h * l->out_w;
    g->wg = (int64_t)g->co * g->ci * l->kh * l->kw;
}

static pl_status conv_forward(pl_model *m, const pl_layer *l, int n, const float *x, float *y)
{
    const pl_backend_ops *be = m->be;
    pl_conv2d_shape cs;
    if (pl__layer_general(l)) {
        pl__conv_general_forward(l, n, x, l->w, l->b, y);
        return PL_OK;
    }
    conv_shape(l, n, &cs);
    if (l->groups == 1)
        return be->conv2d_forward(m->be_state, &cs, x, l->w, l->b, y);
    if (pl_backend_has(be, PL_SLOT_CONV_GROUPED_FORWARD))
        return be->conv2d_grouped_forward(m->be_state, &cs, l->groups, x, l->w, l->b, y);
    group_geom g;
    group_geom_of(l, &g);
    pl_conv2d_shape gs = cs;
    gs.cin = g.ci;
    gs.cout = g.co;
    float *xs = m->gscratch, *ys = xs + (int64_t)n * g.ci * g.pin;
    for (int k = 0; k < g.G; k++) {
        gather(x, n, l->in_c, k * g.ci, g.ci, g.pin, xs);
        pl_status s = be->conv2d_forward(m->be_state, &gs, xs, l->w + k * g.wg, l->b ? l->b + (int64_t)k * g.co : NULL, ys);
        if (s)
            return s;
        scatter(ys, n, l->out_c, k * g.co, g.co, g.pout, y);
    }
    return PL_OK;
}

static pl_status conv_backward(pl_model *m, pl_layer *l, int n, const float *x, const float *dy, float *dx)
{
    const pl_backend_ops *be = m->be;
    void *st = m->be_state;
    pl_conv2d_shape cs;
    if (pl__layer_general(l)) {
        pl__conv_general_backward(l, n, x, l->w, dy, dx, l->gw, l->gb);
        return PL_OK;
    }
    conv_shape(l, n, &cs);
    pl_status s;
    if (l->groups == 1 || pl_backend_has(be, PL_SLOT_CONV_GROUPED_BACKWARD))
        return pl_backend_conv2d_backward(be, st, &cs, l->groups, x, dy, l->w, l->gw, l->gb, dx);
    group_geom g;
    group_geom_of(l, &g);
    pl_conv2d_shape gs = cs;
    gs.cin = g.ci;
    gs.cout = g.co;
    float *xs = m->gscratch, *ys = xs + (int64_t)n * g.ci * g.pin;
    for (int k = 0; k < g.G; k++) {
        gather(x, n, l->in_c, k * g.ci, g.ci, g.pin, xs);
        gather(dy, n, l->out_c, k * g.co, g.co, g.pout, ys);
        s = pl_backend_conv2d_backward(be, st, &gs, 1, xs, ys, l->w + k * g.wg, l->gw + k * g.wg,
                                       l->gb ? l->gb + (int64_t)k * g.co : NULL, dx ? xs : NULL);
        if (!s && dx)
            scatter(xs, n, l->in_c, k * g.ci, g.ci, g.pin, dx);
        if (s)
            return s;
    }
    return PL_OK;
}

/* global average pooling: one window over the whole plane */
static void gap_shape(const pl_layer *l, int n, pl_pool2d_shape *s)
{
    *s = (pl_pool2d_shape){.n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w, .kh = l->in_h,
                           .kw = l->in_w, .stride_h = l->in_h, .stride_w = l->in_w, .oh = 1, .ow = 1};
}

/* add: y = x_1 + x_2 + ... in input order; concat: channels in input order */
static void add_forward(const pl_model *m, pl_layer *l, const float *x, int n)
{
    int64_t sz = out_size(l) * n;
    const float *a0 = src_out(m, x, l->in[0]);
    if (l->n_in < 2) {
        memcpy(l->out, a0, (size_t)sz * sizeof(float));
        return;
    }
    const float *a1 = src_out(m, x, l->in[1]);
    for (int64_t i = 0; i < sz; i++) /* the first two in one pass */
        l->out[i] = a0[i] + a1[i];
    for (int k = 2; k < l->n_in; k++) {
        const float *a = src_out(m, x, l->in[k]);
        for (int64_t i = 0; i < sz; i++)
            l->out[i] += a[i];
    }
}

static int src_channels(const pl_model *m, int j) { return j < 0 ? m->in_c : m->layers[j].out_c; }

static void concat_forward(const pl_model *m, pl_layer *l, const float *x, int n)
{
    int64_t plane = (int64_t)l->out_h * l->out_w;
    for (int k = 0, c0 = 0; k < l->n_in; k++) {
        int ck = src_channels(m, l->in[k]);
        scatter(src_out(m, x, l->in[k]), n, l->out_c, c0, ck, plane, l->out);
        c0 += ck;
    }
}

/* Channels [ch0, ch1) of the one input, every image. */
static void slice_forward(const pl_model *m, pl_layer *l, const float *x, int n)
{
    int64_t plane = (int64_t)l->out_h * l->out_w;
    gather(src_out(m, x, l->in[0]), n, src_channels(m, l->in[0]), l->ch0, l->out_c, plane, l->out);
}

/* dy of a slice into its input's gradient dx (n images of in_c channels):
 * added at channels [ch0, ch1) when acc, else dx is overwritten (zeros
 * outside the range). */
static void slice_backward(const pl_layer *l, const float *dy, float *dx, int n, int acc)
{
    int64_t plane = (int64_t)l->out_h * l->out_w, len = (int64_t)l->out_c * plane;
    if (!acc)
        memset(dx, 0, (size_t)((int64_t)n * l->in_c * plane) * sizeof(float));
    for (int b = 0; b < n; b++) {
        const float *src = dy + (int64_t)b * len;
        float *dst = dx + ((int64_t)b * l->in_c + l->ch0) * plane;
        for (int64_t e = 0; e < len; e++)
            dst[e] += src[e];
    }
}

static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const float *pl_model_forward(pl_model *m, const float *x, int n, pl_mode mode, pl_error *err)
{
    if (n > m->batch_cap || !m->be) {
        pl_error_set(err, PL_EINVAL, "model: forward of %d images with capacity %d%s", n,
                     m->batch_cap, m->be ? "" : " (no backend bound)");
        return NULL;
    }
    const pl_backend_ops *be = m->be;
    void *st = m->be_state;
    pl_status s = PL_OK;
    if (mode == PL_MODE_TRAIN)
        m->dropout_calls++;
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        const float *in = src_out(m, x, l->in[0]);
        int fused = 0; /* the next layers (ReLU, max pooling) computed too */
        double t0 = m->prof ? prof_now() : 0;
        switch (l->type) {
        case PL_LAYER_CONV2D: {
            pl_conv2d_shape cs;
            conv_shape(l, n, &cs);
            /* ABI 1.1: conv + ReLU (+ max pooling) in one pass, straight
             * into the ReLU's (and the pool's) buffers. The conv's own buffer
             * is then left unwritten: nothing reads a pre-activation (a
             * ReLU's backward uses its output). */
            if (l->groups == 1 && !pl__layer_general(l) && relu_maxpool_follow(m, i) &&
                pl_backend_has(be, PL_SLOT_CONV_RELU_MAXPOOL)) {
                pl_layer *pool = &m->layers[i + 2];
                pl_pool2d_shape ps;
                pool_shape(pool, n, &ps);
                s = be->conv2d_forward_relu_maxpool(st, &cs, in, l->w, l->b, m->layers[i + 1].out,
                                                    &ps, pool->out,
                                                    mode == PL_MODE_TRAIN ? pool->argmax : NULL);
                fused = 2;
            } else if (l->groups == 1 && !pl__layer_general(l) && relu_follows(m, i) &&
                       pl_backend_has(be, PL_SLOT_CONV_RELU)) {
                s = be->conv2d_forward_relu(st, &cs, in, l->w, l->b, m->layers[i + 1].out);
                fused = 1;
            } else {
                s = conv_forward(m, l, n, in, l->out);
            }
            break;
        }
        case PL_LAYER_LINEAR: {
            /* ABI 1.1: a pruned layer in evaluation may run from its CSR
             * form; otherwise linear + ReLU may be fused as for conv */
            const pl_csr *csr = mode == PL_MODE_EVAL ? csr_for(m, l) : NULL;
            if (csr) {
                s = be->linear_forward_csr(st, n, l->in_c, l->out_c, in, csr, l->b, l->out);
            } else if (relu_follows(m, i) && pl_backend_has(be, PL_SLOT_LINEAR_RELU)) {
                s = be->linear_forward_relu(st, n, l->in_c, l->out_c, in, l->w, l->b,
                                            m->layers[i + 1].out);
                fused = 1;
            } else {
                s = be->linear_forward(st, n, l->in_c, l->out_c, in, l->w, l->b, l->out);
            }
            break;
        }
        case PL_LAYER_MAXPOOL2D: {
            pl_pool2d_shape ps;
            pool_shape(l, n, &ps);
            if (pl__layer_general(l))
                pl__maxpool_general_forward(l, n, in, l->out, mode == PL_MODE_TRAIN ? l->argmax : NULL);
            else
                s = be->maxpool2d_forward(st, &ps, in, l->out, mode == PL_MODE_TRAIN ? l->argmax : NULL);
            break;
        }
        case PL_LAYER_AVGPOOL2D:
        case PL_LAYER_GLOBAL_AVGPOOL: {
            pl_pool2d_shape ps;
            if (l->type == PL_LAYER_AVGPOOL2D)
                pool_shape(l, n, &ps);
            else
                gap_shape(l, n, &ps);
            if (pl__layer_general(l))
                pl__avgpool_general_forward(l, n, in, l->out);
            else
                s = be->avgpool2d_forward(st, &ps, in, l->out);
            break;
        }
        case PL_LAYER_RELU:
            s = be->relu_forward(st, out_size(l) * n, in, l->out);
            break;
        case PL_LAYER_FLATTEN:
            l->out = (float *)in; /* alias: flatten moves no data */
            break;
        case PL_LAYER_BATCHNORM2D:
            /* batchnorm + ReLU in one pass, into the ReLU's buffer */
            fused = relu_follows(m, i);
            bn_forward(m, l, in, fused ? m->layers[i + 1].out : l->out, fused, n, mode);
            break;
        case PL_LAYER_DROPOUT:
            if (mode == PL_MODE_TRAIN && l->p > 0)
                dropout_forward(m, l, in, n);
            else
                memcpy(l->out, in, (size_t)(out_size(l) * n) * sizeof(float));
            break;
        case PL_LAYER_ADD:
            add_forward(m, l, x, n);
            break;
        case PL_LAYER_CONCAT:
            concat_forward(m, l, x, n);
            break;
        case PL_LAYER_SLICE:
            slice_forward(m, l, x, n);
            break;
        }
        if (s) {
            pl_backend_fail(err, m, l->name, "forward", s);
            return NULL;
        }
        if (m->prof)
            m->prof[i] += prof_now() - t0;
        i += fused;
    }
    return m->layers[m->n_layers - 1].out;
}

#define PL_INFER_CHUNK_BYTES ((int64_t)8 << 20)
#define PL_INFER_CHUNK_MIN 8

/* Liveness: layer i's buffer (flatten has none: it aliases its input's)
 * is free again once its last reader has run. A fused pass (conv + ReLU +
 * max pooling, batchnorm + ReLU) writes up to three layers' outputs while
 * reading the first one's inputs, so a buffer is reused only three layers
 * after its last reader: never while a pass that started earlier still
 * reads it. All buffers have the size of the largest output. */
const float *pl_model_infer(pl_model *m, const float *x, int n, pl_error *err)
{
    int L = m->n_layers;
    if (n > m->batch_cap || !m->be || L <= 0)
        return pl_model_forward(m, x, n, PL_MODE_EVAL, err); /* its error */
    int *owner = calloc((size_t)L * 5, sizeof *owner); /* owner, last, slot, freed, pool */
    int *last = owner ? owner + L : NULL, *slot = owner ? owner + 2 * L : NULL;
    int *freed = owner ? owner + 3 * L : NULL, *pool = owner ? owner + 4 * L : NULL;
    float **saved = calloc((size_t)L, sizeof *saved);
    const float *y = NULL;
    if (!owner || !saved) {
        pl_error_set(err, PL_ENOMEM, "out of memory for the inference plan of %s", m->name);
        goto done;
    }
    int64_t per = 0;
    for (int i = 0; i < L; i++) {
        const pl_layer *l = &m->layers[i];
        owner[i] = l->type == PL_LAYER_FLATTEN ? (l->in[0] < 0 ? -1 : owner[l->in[0]]) : i;
        last[i] = i == L - 1 ? INT_MAX : i;
        for (int k = 0; k < l->n_in; k++)
            if (l->in[k] >= 0 && owner[l->in[k]] >= 0 && last[owner[l->in[k]]] < i)
                last[owner[l->in[k]]] = i;
        if (out_size(l) > per)
            per = out_size(l);
    }
    int nslots = 0, nfree = 0;
    for (int i = 0; i < L; i++) {
        for (int j = 0; j < i; j++)
            if (owner[j] == j && !freed[j] && last[j] != INT_MAX && last[j] + 3 <= i) {
                freed[j] = 1;
                pool[nfree++] = slot[j];
            }
        if (owner[i] == i)
            slot[i] = nfree ? pool[--nfree] : nslots++;
    }
    /* chunks of images whose buffers stay within PL_INFER_CHUNK_BYTES (in
     * cache), at least PL_INFER_CHUNK_MIN images; the logits of every chunk
     * go to the end of the arena */
    int64_t chunk = PL_INFER_CHUNK_BYTES / ((int64_t)sizeof(float) * per * nslots);
    if (chunk < PL_INFER_CHUNK_MIN)
        chunk = PL_INFER_CHUNK_MIN;
    if (m->infer_chunk > 0)
        chunk = m->infer_chunk;
    if (chunk > n)
        chunk = n;
    int64_t nout = out_size(&m->layers[L - 1]), need = (int64_t)nslots * per * chunk + nout * n;
    if (need > m->arena_cap) {
        free(m->arena);
        m->arena_cap = 0;
        if (!(m->arena = falloc(need))) {
            pl_error_set(err, PL_ENOMEM, "out of memory for the activations of %s (%d buffers of %lld floats)",
                         m->name, nslots, (long long)(per * chunk));
            goto done;
        }
        m->arena_cap = need;
    }
    for (int i = 0; i < L; i++) {
        saved[i] = m->layers[i].out;
        if (owner[i] == i)
            m->layers[i].out = m->arena + slot[i] * per * chunk;
    }
    float *logits = m->arena + (int64_t)nslots * per * chunk;
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    y = logits;
    for (int64_t f = 0; f < n && y; f += chunk) {
        int k = (int)(n - f < chunk ? n - f : chunk);
        const float *z = pl_model_forward(m, x + f * img, k, PL_MODE_EVAL, err);
        if (z)
            memcpy(logits + f * nout, z, (size_t)(k * nout) * sizeof(float));
        else
            y = NULL;
    }
    for (int i = 0; i < L; i++)
        m->layers[i].out = saved[i];
done:
    free(owner), free(saved);
    return y;
}

/* Backward of the one-input layer l reading `in`: its parameter gradients
 * and, when dx != NULL, dx (fully overwritten). fuse_relu: l is a max pool
 * reading a ReLU's output that nothing else reads; dx is then the ReLU's
 * input gradient (ABI 1.2). */
static pl_status layer_backward(pl_model *m, pl_layer *l, const float *in, const float *dy, float *dx, int n,
                                int fuse_relu)
{
    const pl_backend_ops *be = m->be;
    void *st = m->be_state;
    pl_status s = PL_OK;
    switch (l->type) {
    case PL_LAYER_CONV2D:
        s = conv_backward(m, l, n, in, dy, dx);
        break;
    case PL_LAYER_LINEAR:
        s = pl_backend_linear_backward(be, st, n, l->in_c, l->out_c, in, dy, l->w, l->gw, l->gb, dx);
        break;
    case PL_LAYER_MAXPOOL2D: {
        pl_pool2d_shape ps;
        pool_shape(l, n, &ps);
        if (dx && pl__layer_general(l)) {
            pl__maxpool_general_backward(l, n, dy, l->argmax, dx);
            if (fuse_relu) /* dx is the ReLU's input gradient: its output is `in` */
                s = be->relu_backward(st, in_size(l) * n, in, dx, dx);
        } else if (dx && fuse_relu)
            s = be->maxpool2d_relu_backward(st, &ps, dy, l->argmax, in, dx);
        else if (dx)
            s = be->maxpool2d_backward(st, &ps, dy, l->argmax, dx);
        break;
    }
    case PL_LAYER_AVGPOOL2D:
    case PL_LAYER_GLOBAL_AVGPOOL: {
        pl_pool2d_shape ps;
        if (l->type == PL_LAYER_AVGPOOL2D)
            pool_shape(l, n, &ps);
        else
            gap_shape(l, n, &ps);
        if (dx && pl__layer_general(l))
            pl__avgpool_general_backward(l, n, dy, dx);
        else if (dx)
            s = be->avgpool2d_backward(st, &ps, dy, dx);
        break;
    }
    case PL_LAYER_RELU:
        if (dx)
            s = be->relu_backward(st, out_size(l) * n, l->out, dy, dx);
        break;
    case PL_LAYER_FLATTEN:
        if (dx && dx != dy)
            memcpy(dx, dy, (size_t)(out_size(l) * n) * sizeof(float));
        break;
    case PL_LAYER_BATCHNORM2D:
        bn_backward(m, l, in, dy, NULL, dx, n);
        break;
    case PL_LAYER_DROPOUT:
        if (dx) {
            int64_t sz = out_size(l) * n;
            if (l->p > 0)
                for (int64_t k = 0; k < sz; k++)
                    dx[k] = dy[k] * l->aux[k];
            else
                memcpy(dx, dy, (size_t)sz * sizeof(float));
        }
        break;
    case PL_LAYER_SLICE:
        if (dx)
            slice_backward(l, dy, dx, n, 0);
        break;
    case PL_LAYER_ADD:
    case PL_LAYER_CONCAT:
        s = PL_EINVAL; /* several inputs: graph_backward does these */
        break;
    }
    return s;
}

/* A chain: activation gradients ping-pong between grad_a and grad_b. */
static pl_status chain_backward(pl_model *m, const float *x, const float *dlogits, int n, pl_error *err)
{
    const float *dy = dlogits;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        pl_layer *l = &m->layers[i];
        if (l->type == PL_LAYER_FLATTEN)
            continue; /* pass the gradient through unchanged */
        const float *in = i ? m->layers[i - 1].out : x;
        float *dx = i == 0 ? NULL : (dy == m->grad_a ? m->grad_b : m->grad_a);
        double t0 = m->prof ? prof_now() : 0;
        /* ABI 1.2: through the ReLU before it in the same pass (its
         * output is the pool's input); the ReLU is then done */
        if (l->type == PL_LAYER_RELU && i >= 1 && m->layers[i - 1].type == PL_LAYER_BATCHNORM2D) {
            /* the ReLU's backward inside its batchnorm's: one pass */
            pl_layer *bn = &m->layers[i - 1];
            dx = i == 1 ? NULL : (dy == m->grad_a ? m->grad_b : m->grad_a);
            bn_backward(m, bn, i >= 2 ? m->layers[i - 2].out : x, dy, l->out, dx, n);
            if (m->prof)
                m->prof[m->n_layers + i - 1] += prof_now() - t0;
            dy = dx;
            i--;
            continue;
        }
        int fused = l->type == PL_LAYER_MAXPOOL2D && dx && i >= 2 && m->layers[i - 1].type == PL_LAYER_RELU &&
                    pl_backend_has(m->be, PL_SLOT_MAXPOOL_RELU_BACKWARD);
        pl_status s = layer_backward(m, l, in, dy, dx, n, fused);
        if (s)
            return pl_backend_fail(err, m, l->name, "backward", s);
        if (m->prof)
            m->prof[m->n_layers + i] += prof_now() - t0;
        dy = dx;
        i -= fused;
    }
    return PL_OK;
}

/* g into layer j's gradient: the first contribution is copied, later ones
 * added (j's consumers all come after it, so all are in before j runs). */
static void grad_acc(pl_layer *t, const float *g, int64_t sz)
{
    if (t->grad_state == 0)
        memcpy(t->grad, g, (size_t)sz * sizeof(float));
    else
        for (int64_t i = 0; i < sz; i++)
            t->grad[i] += g[i];
    t->grad_state = 1;
}

/* Any other graph: each layer's output gradient in its own buffer, summed
 * over the layers that read it. */
static pl_status graph_backward(pl_model *m, const float *x, const float *dlogits, int n, pl_error *err)
{
    int last = m->n_layers - 1;
    if (m->graph_grad_n < n) {
        /* made on the first backward (an evaluation-only model never needs
         * them) for the batch size it trains with: once, not every step */
        m->graph_grad_n = 0;
        for (int i = 0; i <= last; i++) {
            pl_layer *l = &m->layers[i];
            free(l->grad);
            if (!(l->grad = falloc(out_size(l) * n)))
                return pl_error_set(err, PL_ENOMEM, "out of memory for the gradients of layer %s", l->name);
        }
        m->graph_grad_n = n;
    }
    for (int i = 0; i <= last; i++)
        m->layers[i].grad_state = 0;
    for (int i = last; i >= 0; i--) {
        pl_layer *l = &m->layers[i];
        if (l->grad_state == 2)
            continue; /* a ReLU done by the max pool after it, or a batchnorm by the ReLU after it */
        const float *dy = i == last ? dlogits : l->grad;
        double t0 = m->prof ? prof_now() : 0;
        if (l->type == PL_LAYER_ADD) {
            for (int k = 0; k < l->n_in; k++)
                if (l->in[k] >= 0)
                    grad_acc(&m->layers[l->in[k]], dy, out_size(l) * n);
            if (m->prof)
                m->prof[m->n_layers + i] += prof_now() - t0;
            continue;
        }
        if (l->type == PL_LAYER_CONCAT) {
            int64_t plane = (int64_t)l->out_h * l->out_w;
            for (int k = 0, c0 = 0; k < l->n_in; k++) {
                int ck = src_channels(m, l->in[k]);
                if (l->in[k] >= 0) {
                    pl_layer *t = &m->layers[l->in[k]];
                    if (t->grad_state == 0) {
                        gather(dy, n, l->out_c, c0, ck, plane, t->grad);
                    } else {
                        for (int b = 0; b < n; b++) {
                            const float *src = dy + ((int64_t)b * l->out_c + c0) * plane;
                            float *dst = t->grad + (int64_t)b * ck * plane;
                            for (int64_t e = 0; e < ck * plane; e++)
                                dst[e] += src[e];
                        }
                    }
                    t->grad_state = 1;
                }
                c0 += ck;
            }
            if (m->prof)
                m->prof[m->n_layers + i] += prof_now() - t0;
            continue;
        }
        if (l->type == PL_LAYER_SLICE) {
            /* into the range of the producer's gradient (zeros elsewhere when it is the first) */
            if (l->in[0] >= 0) {
                pl_layer *t = &m->layers[l->in[0]];
                slice_backward(l, dy, t->grad, n, t->grad_state != 0);
                t->grad_state = 1;
            }
            if (m->prof)
                m->prof[m->n_layers + i] += prof_now() - t0;
            continue;
        }
        int j = l->in[0];
        if (l->type == PL_LAYER_RELU && j >= 0 && m->layers[j].type == PL_LAYER_BATCHNORM2D &&
            m->layers[j].n_out == 1) {
            /* the ReLU's backward inside its batchnorm's: one pass */
            pl_layer *bn = &m->layers[j];
            int tj = bn->in[0];
            pl_layer *t = tj >= 0 ? &m->layers[tj] : NULL;
            float *dx = !t ? NULL : t->grad_state == 0 ? t->grad : m->grad_a;
            bn_backward(m, bn, src_out(m, x, tj), dy, l->out, dx, n);
            if (t && dx != t->grad)
                grad_acc(t, dx, out_size(t) * n);
            if (t)
                t->grad_state = 1;
            bn->grad_state = 2;
            if (m->prof)
                m->prof[m->n_layers + j] += prof_now() - t0;
            continue;
        }
        int fused = l->type == PL_LAYER_MAXPOOL2D && j >= 0 && m->layers[j].type == PL_LAYER_RELU &&
                    m->layers[j].n_out == 1 && m->layers[j].in[0] >= 0 && pl_backend_has(m->be, PL_SLOT_MAXPOOL_RELU_BACKWARD);
        int tj = fused ? m->layers[j].in[0] : j;
        pl_layer *t = tj >= 0 ? &m->layers[tj] : NULL;
        float *dx = !t ? NULL : t->grad_state == 0 ? t->grad : m->grad_a;
        pl_status s = layer_backward(m, l, src_out(m, x, j), dy, dx, n, fused);
        if (s)
            return pl_backend_fail(err, m, l->name, "backward", s);
        if (t && dx != t->grad)
            grad_acc(t, dx, out_size(t) * n);
        if (t)
            t->grad_state = 1;
        if (fused)
            m->layers[j].grad_state = 2;
        if (m->prof)
            m->prof[m->n_layers + i] += prof_now() - t0;
    }
    return PL_OK;
}

pl_status pl_model_backward(pl_model *m, const float *x, const float *dlogits, int n, pl_error *err)
{
    if (pl_model_is_chain(m))
        return chain_backward(m, x, dlogits, n, err);
    return graph_backward(m, x, dlogits, n, err);
}

/* ---- queries ---------------------------------------------------------------------- */

int pl_model_find(const pl_model *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i].name, name))
            return i;
    return -1;
}

int pl_model_output_layer(const pl_model *m)
{
    for (int i = m->n_layers - 1; i >= 0; i--)
        if (m->layers[i].type == PL_LAYER_LINEAR || m->layers[i].type == PL_LAYER_CONV2D)
            return i;
    return -1;
}

int pl_model_is_prunable(const pl_model *m, int i)
{
    if (i < 0 || i >= m->n_layers)
        return 0;
    pl_layer_type t = m->layers[i].type;
    return (t == PL_LAYER_CONV2D || t == PL_LAYER_LINEAR) && i != pl_model_output_layer(m);
}

void pl_layer_count(const pl_layer *l, pl_counts *c)
{
    memset(c, 0, sizeof *c);
    c->params = l->nw + l->nb;
    int64_t nz = l->nw;
    if (l->mask) {
        nz = 0;
        for (int64_t i = 0; i < l->nw; i++)
            nz += l->mask[i] != 0.0f;
    }
    c->nonzero_params = nz + l->nb;
    if (l->type == PL_LAYER_CONV2D) {
        int64_t per = (int64_t)l->out_h * l->out_w;
        c->macs = l->nw * per;
        c->macs_effective = nz * per;
    } else if (l->type == PL_LAYER_LINEAR) {
        c->macs = l->nw;
        c->macs_effective = nz;
    }
}

void pl_model_count(const pl_model *m, pl_counts *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < m->n_layers; i++) {
        pl_counts lc;
        pl_layer_count(&m->layers[i], &lc);
        c->params += lc.params;
        c->nonzero_params += lc.nonzero_params;
        c->macs += lc.macs;
        c->macs_effective += lc.macs_effective;
    }
}

static void fmt_int(char *buf, size_t n, int64_t v)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%lld", (long long)(v < 0 ? -v : v));
    size_t o = 0;
    if (v < 0 && o + 1 < n)
        buf[o++] = '-';
    for (int i = 0; i < len && o + 2 < n; i++) {
        buf[o++] = tmp[i];
        int left = len - i - 1;
        if (left > 0 && left % 3 == 0)
            buf[o++] = ',';
    }
    buf[o] = 0;
}

void pl_model_print(const pl_model *m, FILE *f)
{
    fprintf(f, "model %s: input %dx%dx%d, %d classes\n", m->name, m->in_c, m->in_h, m->in_w,
            m->classes);
    fprintf(f, "  %-12s %-12s %-16s %12s %14s\n", "layer", "type", "output", "params", "MACs");
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        pl_counts c;
        pl_layer_count(l, &c);
        char shape[48], p[32], mac[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out_c, l->out_h, l->out_w);
        fmt_int(p, sizeof p, c.params);
        fmt_int(mac, sizeof mac, c.macs);
        fprintf(f, "  %-12s %-12s %-16s %12s %14s", l->name, type_name(l->type), shape,
                c.params ? p : "-", c.macs ? mac : "-");
        if (l->n_in != 1 || l->in[0] != i - 1) { /* not the layer above: say what it reads */
            fprintf(f, "   <- ");
            for (int k = 0; k < l->n_in && k < PL_MAX_INPUTS; k++)
                fprintf(f, "%s%s", k ? ", " : "",
                        l->in[k] >= 0 && l->in[k] < m->n_layers ? m->layers[l->in[k]].name : "input");
        }
        if (l->type == PL_LAYER_CONV2D && l->groups > 1)
            fprintf(f, "   groups %d", l->groups);
        if (l->type == PL_LAYER_SLICE)
            fprintf(f, "   channels %d-%d", l->ch0, l->ch1 - 1);
        /* the fields the backend cannot run, only when set (a plain model prints as before) */
        if (l->pad_xb || l->pad_xr)
            fprintf(f, "   pads %d,%d,%d,%d", l->ph, l->pw, l->ph + l->pad_xb, l->pw + l->pad_xr);
        if (l->dil_h > 1 || l->dil_w > 1)
            fprintf(f, "   dilation %d,%d", pl_layer_dil(l->dil_h), pl_layer_dil(l->dil_w));
        if (l->excl_pad)
            fprintf(f, "   exclude pad");
        if (pl__layer_general(l))
            fprintf(f, "   (host kernel, single-threaded)");
        fprintf(f, "\n");
    }
    pl_counts t;
    pl_model_count(m, &t);
    char p[32], mac[32], fl[32];
    fmt_int(p, sizeof p, t.params);
    fmt_int(mac, sizeof mac, t.macs);
    fmt_int(fl, sizeof fl, 2 * t.macs);
    fprintf(f, "  %-12s %-12s %-16s %12s %14s   (FLOPs %s)\n", "total", "", "", p, mac, fl);
}

const char *pl_layer_type_name(pl_layer_type t) { return type_name(t); }
