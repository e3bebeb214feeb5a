/* model.c — a model's life: building it from a spec (layers, PyTorch
 * default init), cloning, binding a backend, every buffer (activations,
 * gradients, optimizer state), freeing; then queries, counting and the
 * printed summary. The shape rule is in model_shape.c, forward and backward
 * in model_forward.c and model_backward.c. */
#include "model.h"
#include "layer_general.h"
#include "model_internal.h"
#include "onnx_import.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void pl_layer_free(pl_layer *l)
{
    pl__csr_free(l);
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

/* ---- construction -------------------------------------------------------------- */

/* Parameters and their gradients at the counts the shape rule set
 * (pl__model_infer_shapes); batchnorm running statistics start at mean 0,
 * variance 1. */
static pl_status alloc_params(pl_layer *l)
{
    if (l->type == PL_LAYER_BATCHNORM2D) {
        l->run_mean = pl__falloc(l->in_c);
        l->run_var = pl__falloc(l->in_c);
        if (!l->run_mean || !l->run_var)
            return PL_ENOMEM;
        for (int i = 0; i < l->in_c; i++)
            l->run_var[i] = 1.0f;
    }
    if (l->nw && !(l->w = pl__falloc(l->nw)))
        return PL_ENOMEM;
    if (l->nb && !(l->b = pl__falloc(l->nb)))
        return PL_ENOMEM;
    return pl_layer_scratch_reset(l);
}

pl_status pl_layer_scratch_reset(pl_layer *l)
{
    free(l->gw);
    free(l->gb);
    l->gw = l->nw ? pl__falloc(l->nw) : NULL;
    l->gb = l->nb ? pl__falloc(l->nb) : NULL;
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
    pl_status st = pl__model_infer_shapes(m, file, spec, err);
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
        l->w = pl__fdup(s->w, s->nw);
        l->b = pl__fdup(s->b, s->nb);
        l->gw = s->nw ? pl__falloc(s->nw) : NULL;
        l->gb = s->nb ? pl__falloc(s->nb) : NULL;
        l->mask = pl__fdup(s->mask, s->nw);
        l->run_mean = pl__fdup(s->run_mean, s->in_c);
        l->run_var = pl__fdup(s->run_var, s->in_c);
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

/* ---- buffers ------------------------------------------------------------------- */

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
        int64_t os = pl__out_size(l) * batch, is = pl__in_size(l) * batch;
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
        if (l->type != PL_LAYER_FLATTEN && !(l->type == PL_LAYER_BATCHNORM2D && pl__relu_follows(m, i))) {
            l->out = pl__falloc(os);
            if (!l->out)
                return pl_error_set(err, PL_ENOMEM, "out of memory for activations of %s", l->name);
        }
        if (l->type == PL_LAYER_MAXPOOL2D) {
            l->argmax = pl__xcalloc(os, sizeof(int32_t));
            if (!l->argmax)
                return pl_error_set(err, PL_ENOMEM, "out of memory");
        }
        if (l->type == PL_LAYER_DROPOUT) {
            l->aux = pl__falloc(os);
            if (!l->aux)
                return pl_error_set(err, PL_ENOMEM, "out of memory");
        }
        if (l->type == PL_LAYER_BATCHNORM2D) {
            l->bn_mean = pl__falloc(l->in_c);
            l->bn_invstd = pl__falloc(l->in_c);
            if (!l->bn_mean || !l->bn_invstd)
                return pl_error_set(err, PL_ENOMEM, "out of memory");
        }
    }
    free(m->grad_a);
    free(m->grad_b);
    free(m->gscratch);
    m->gscratch = NULL;
    if (smax && !(m->gscratch = pl__falloc(smax))) {
        m->grad_a = m->grad_b = NULL;
        return pl_error_set(err, PL_ENOMEM, "out of memory for grouped convolution");
    }
    m->grad_a = pl__falloc(gmax);
    m->grad_b = pl__falloc(gmax);
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
    return pl__model_infer_shapes(m, m->name, NULL, err);
}

pl_status pl_model_optim_reset(pl_model *m, pl_error *err)
{
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        free_optim(l);
        if (l->nw) {
            l->opt_m_w = pl__falloc(l->nw);
            l->opt_v_w = pl__falloc(l->nw);
            if (!l->opt_m_w || !l->opt_v_w)
                return pl_error_set(err, PL_ENOMEM, "out of memory for optimizer state");
        }
        if (l->nb) {
            l->opt_m_b = pl__falloc(l->nb);
            l->opt_v_b = pl__falloc(l->nb);
            if (!l->opt_m_b || !l->opt_v_b)
                return pl_error_set(err, PL_ENOMEM, "out of memory for optimizer state");
        }
    }
    return PL_OK;
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
