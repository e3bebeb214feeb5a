/* onnx_export.c — a model as an opset-13 ONNX file (see onnx_export.h).
 *
 * The protobuf messages are built in an arena (every allocation recorded,
 * all freed at once), packed and written atomically by pl_onnx_write. */
#include "onnx_export.h"
#include "checkpoint.h"
#include "onnx_pb.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PL__ONNX_OPSET 13
#define PL__ONNX_IR 7 /* the IR version opset 13 was released with */

/* ---- arena ------------------------------------------------------------------ */

typedef struct arena {
    void **p;
    size_t n, cap;
    int failed;
} arena;

static void *a_alloc(arena *a, size_t n)
{
    if (a->failed)
        return NULL;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 256;
        void **np = realloc(a->p, nc * sizeof *np);
        if (!np) {
            a->failed = 1;
            return NULL;
        }
        a->p = np;
        a->cap = nc;
    }
    void *q = calloc(1, n ? n : 1);
    if (!q) {
        a->failed = 1;
        return NULL;
    }
    a->p[a->n++] = q;
    return q;
}

static char *a_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *a_printf(arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        a->failed = 1;
        return NULL;
    }
    char *s = a_alloc(a, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    free(a->p);
    memset(a, 0, sizeof *a);
}

/* ---- the graph being built ------------------------------------------------------ */

typedef struct gb {
    arena a;
    const pl_model *m;
    Onnx__NodeProto **node;
    size_t n_node, cap_node;
    Onnx__TensorProto **init;
    size_t n_init, cap_init;
    pl_onnx_export_stats st;
} gb;

#define MAX_ATTRS 6

static Onnx__NodeProto *add_node(gb *g, const char *op, const char *name, int n_in, const char *const *in,
                                 const char *out)
{
    Onnx__NodeProto *nd = a_alloc(&g->a, sizeof *nd);
    char **ins = a_alloc(&g->a, (size_t)(n_in > 0 ? n_in : 1) * sizeof *ins);
    char **outs = a_alloc(&g->a, sizeof *outs);
    Onnx__AttributeProto **attrs = a_alloc(&g->a, MAX_ATTRS * sizeof *attrs);
    char *op_s = a_printf(&g->a, "%s", op), *name_s = a_printf(&g->a, "%s", name);
    char *out_s = a_printf(&g->a, "%s", out);
    if (!nd || !ins || !outs || !attrs || !op_s || !name_s || !out_s || g->n_node >= g->cap_node) {
        g->a.failed = 1;
        return NULL;
    }
    onnx__node_proto__init(nd);
    for (int k = 0; k < n_in; k++)
        if (!(ins[k] = a_printf(&g->a, "%s", in[k])))
            return NULL;
    outs[0] = out_s;
    nd->n_input = (size_t)n_in;
    nd->input = ins;
    nd->n_output = 1;
    nd->output = outs;
    nd->name = name_s;
    nd->op_type = op_s;
    nd->attribute = attrs;
    nd->n_attribute = 0;
    g->node[g->n_node++] = nd;
    g->st.nodes++;
    return nd;
}

static Onnx__AttributeProto *new_attr(gb *g, Onnx__NodeProto *nd, const char *name)
{
    if (!nd)
        return NULL;
    Onnx__AttributeProto *at = a_alloc(&g->a, sizeof *at);
    char *nm = a_printf(&g->a, "%s", name);
    if (!at || !nm || nd->n_attribute >= MAX_ATTRS) {
        g->a.failed = 1;
        return NULL;
    }
    onnx__attribute_proto__init(at);
    at->name = nm;
    nd->attribute[nd->n_attribute++] = at;
    return at;
}

static void attr_int(gb *g, Onnx__NodeProto *nd, const char *name, int64_t v)
{
    Onnx__AttributeProto *at = new_attr(g, nd, name);
    if (!at)
        return;
    at->has_type = 1;
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    at->has_i = 1;
    at->i = v;
}

static void attr_float(gb *g, Onnx__NodeProto *nd, const char *name, float v)
{
    Onnx__AttributeProto *at = new_attr(g, nd, name);
    if (!at)
        return;
    at->has_type = 1;
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    at->has_f = 1;
    at->f = v;
}

static void attr_ints(gb *g, Onnx__NodeProto *nd, const char *name, int n, const int64_t *v)
{
    Onnx__AttributeProto *at = new_attr(g, nd, name);
    int64_t *vals = a_alloc(&g->a, (size_t)n * sizeof *vals);
    if (!at || !vals)
        return;
    memcpy(vals, v, (size_t)n * sizeof *vals);
    at->has_type = 1;
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    at->n_ints = (size_t)n;
    at->ints = vals;
}

/* A float initializer: v[i] (× mask[i] when mask; 0 written as +0). */
static void add_init(gb *g, const char *name, int nd, const int64_t *dims, const float *v, const float *mask,
                     int64_t n)
{
    Onnx__TensorProto *t = a_alloc(&g->a, sizeof *t);
    int64_t *d = a_alloc(&g->a, (size_t)nd * sizeof *d);
    uint8_t *raw = a_alloc(&g->a, (size_t)n * 4);
    char *nm = a_printf(&g->a, "%s", name);
    if (!t || !d || !raw || !nm || g->n_init >= g->cap_init) {
        g->a.failed = 1;
        return;
    }
    onnx__tensor_proto__init(t);
    memcpy(d, dims, (size_t)nd * sizeof *d);
    for (int64_t i = 0; i < n; i++) {
        float f = v[i];
        if (mask && mask[i] == 0.0f) {
            f = 0.0f;
            g->st.zeros_masked++;
        }
        if (f == 0.0f)
            f = 0.0f; /* no -0 */
        uint32_t u;
        memcpy(&u, &f, 4);
        raw[4 * i] = (uint8_t)u; /* little-endian, whatever the host */
        raw[4 * i + 1] = (uint8_t)(u >> 8);
        raw[4 * i + 2] = (uint8_t)(u >> 16);
        raw[4 * i + 3] = (uint8_t)(u >> 24);
    }
    t->n_dims = (size_t)nd;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->name = nm;
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)n * 4;
    t->raw_data.data = raw;
    g->init[g->n_init++] = t;
    g->st.initializers++;
    g->st.floats += n;
}

/* A one-value INT64 initializer [1] (a Slice's starts, ends, axes). */
static void add_init_i64(gb *g, const char *name, int64_t v)
{
    Onnx__TensorProto *t = a_alloc(&g->a, sizeof *t);
    int64_t *d = a_alloc(&g->a, sizeof *d);
    uint8_t *raw = a_alloc(&g->a, 8);
    char *nm = a_printf(&g->a, "%s", name);
    if (!t || !d || !raw || !nm || g->n_init >= g->cap_init) {
        g->a.failed = 1;
        return;
    }
    onnx__tensor_proto__init(t);
    d[0] = 1;
    for (int k = 0; k < 8; k++)
        raw[k] = (uint8_t)((uint64_t)v >> (8 * k)); /* little-endian, whatever the host */
    t->n_dims = 1;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->name = nm;
    t->has_raw_data = 1;
    t->raw_data.len = 8;
    t->raw_data.data = raw;
    g->init[g->n_init++] = t;
    g->st.initializers++;
}

/* value info: a float tensor [N, d1, ...] with a symbolic batch */
static Onnx__ValueInfoProto *value_info(gb *g, const char *name, int nd, const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = a_alloc(&g->a, sizeof *vi);
    Onnx__TypeProto *tp = a_alloc(&g->a, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = a_alloc(&g->a, sizeof *tt);
    Onnx__TensorShapeProto *sh = a_alloc(&g->a, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dv = a_alloc(&g->a, (size_t)(nd + 1) * sizeof *dv);
    char *nm = a_printf(&g->a, "%s", name), *batch = a_printf(&g->a, "N");
    if (!vi || !tp || !tt || !sh || !dv || !nm || !batch)
        return NULL;
    for (int k = 0; k <= nd; k++) {
        Onnx__TensorShapeProto__Dimension *d = a_alloc(&g->a, sizeof *d);
        if (!d)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (k == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = batch;
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[k - 1];
        }
        dv[k] = d;
    }
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)nd + 1;
    sh->dim = dv;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = nm;
    vi->type = tp;
    return vi;
}

/* ---- layers ---------------------------------------------------------------------------- */

static int readers(const pl_model *m, int i)
{
    int n = 0;
    for (int j = 0; j < m->n_layers; j++)
        for (int k = 0; k < m->layers[j].n_in && k < PL_MAX_INPUTS; k++)
            n += m->layers[j].in[k] == i;
    return n;
}

/* the batchnorm folded into conv i with fold_bn, or -1 */
static int foldable_bn(const pl_model *m, int i)
{
    const pl_layer *c = &m->layers[i];
    if (c->type != PL_LAYER_CONV2D || readers(m, i) != 1)
        return -1;
    for (int j = i + 1; j < m->n_layers; j++) {
        const pl_layer *b = &m->layers[j];
        if (b->n_in >= 1 && b->in[0] == i) {
            if (b->type == PL_LAYER_BATCHNORM2D && b->n_in == 1 && b->in_c == c->out_c && b->run_mean &&
                b->run_var && b->w && b->b)
                return j;
            return -1;
        }
    }
    return -1;
}

static void pad4(const pl_layer *l, int64_t v[4])
{
    v[0] = l->ph;
    v[1] = l->pw;
    v[2] = (int64_t)l->ph + l->pad_xb; /* imported asymmetric padding (and ceil_mode folded into it) */
    v[3] = (int64_t)l->pw + l->pad_xr;
}

static void pool_attrs(gb *g, Onnx__NodeProto *nd, const pl_layer *l)
{
    int64_t k[2] = {l->kh, l->kw}, s[2] = {l->sh, l->sw}, p[4];
    pad4(l, p);
    attr_ints(g, nd, "kernel_shape", 2, k);
    attr_ints(g, nd, "strides", 2, s);
    attr_ints(g, nd, "pads", 4, p);
    if (l->dil_h > 1 || l->dil_w > 1) { /* MaxPool only: the importer refuses dilated average pooling */
        int64_t d[2] = {l->dil_h > 1 ? l->dil_h : 1, l->dil_w > 1 ? l->dil_w : 1};
        attr_ints(g, nd, "dilations", 2, d);
    }
}

static pl_status conv_node(gb *g, const pl_layer *l, const pl_layer *bn, const char *in, const char *out,
                           pl_error *err)
{
    const pl_model *m = g->m;
    (void)m;
    int64_t cin_g = l->in_c / (l->groups > 0 ? l->groups : 1);
    int64_t wd[4] = {l->out_c, cin_g, l->kh, l->kw}, bd[1] = {l->out_c};
    if (l->nw != l->out_c * cin_g * l->kh * l->kw || (l->has_bias && l->nb != l->out_c))
        return pl_error_set(err, PL_EINVAL, "layer %s: %lld weights do not make a %lldx%lldx%dx%d conv kernel",
                            l->name, (long long)l->nw, (long long)l->out_c, (long long)cin_g, l->kh, l->kw);
    char *wn = a_printf(&g->a, "%s.weight", l->name), *bname = a_printf(&g->a, "%s.bias", l->name);
    if (!wn || !bname)
        return PL_ENOMEM;
    const char *ins[3] = {in, wn, bname};
    int has_b = l->has_bias && l->b;
    if (!bn) {
        add_init(g, wn, 4, wd, l->w, l->mask, l->nw);
        if (has_b)
            add_init(g, bname, 1, bd, l->b, NULL, l->nb);
    } else {
        /* y = γ (conv(x) + b − μ) / √(var + ε) + β */
        float *w = a_alloc(&g->a, (size_t)l->nw * sizeof *w), *b = a_alloc(&g->a, (size_t)l->out_c * sizeof *b);
        if (!w || !b)
            return PL_ENOMEM;
        int64_t per = l->nw / (l->out_c > 0 ? l->out_c : 1);
        for (int o = 0; o < l->out_c; o++) {
            double sc = bn->w[o] / sqrt((double)bn->run_var[o] + bn->eps);
            for (int64_t i = 0; i < per; i++) {
                int64_t k = (int64_t)o * per + i;
                w[k] = l->mask && l->mask[k] == 0.0f ? 0.0f : (float)(l->w[k] * sc);
            }
            double b0 = has_b ? l->b[o] : 0.0;
            b[o] = (float)((b0 - bn->run_mean[o]) * sc + bn->b[o]);
        }
        add_init(g, wn, 4, wd, w, l->mask, l->nw);
        add_init(g, bname, 1, bd, b, NULL, l->out_c);
        has_b = 1;
        g->st.folded++;
    }
    Onnx__NodeProto *nd = add_node(g, "Conv", l->name, has_b ? 3 : 2, ins, out);
    int64_t k[2] = {l->kh, l->kw}, s[2] = {l->sh, l->sw}, p[4];
    int64_t d[2] = {l->dil_h > 1 ? l->dil_h : 1, l->dil_w > 1 ? l->dil_w : 1};
    pad4(l, p);
    attr_ints(g, nd, "kernel_shape", 2, k);
    attr_ints(g, nd, "strides", 2, s);
    attr_ints(g, nd, "pads", 4, p);
    attr_ints(g, nd, "dilations", 2, d);
    attr_int(g, nd, "group", l->groups > 0 ? l->groups : 1);
    return PL_OK;
}

static pl_status build(gb *g, int fold_bn, const char *source, Onnx__ModelProto **out, pl_error *err)
{
    const pl_model *m = g->m;
    int L = m->n_layers;
    if (L < 1)
        return pl_error_set(err, PL_EINVAL, "model %s has no layers", m->name);
    g->cap_node = (size_t)L * 2 + 20; /* Add chains: at most 15 per add, counted below */
    for (int i = 0; i < L; i++)
        if (m->layers[i].n_in > 2)
            g->cap_node += (size_t)m->layers[i].n_in;
    g->cap_init = (size_t)L * 4 + 4;
    g->node = a_alloc(&g->a, g->cap_node * sizeof *g->node);
    g->init = a_alloc(&g->a, g->cap_init * sizeof *g->init);
    const char **val = a_alloc(&g->a, (size_t)L * sizeof *val); /* each layer's output value */
    int *rank = a_alloc(&g->a, (size_t)L * sizeof *rank);
    int *skip = a_alloc(&g->a, (size_t)L * sizeof *skip);
    if (!g->node || !g->init || !val || !rank || !skip)
        return PL_ENOMEM;
    for (int i = 0; i < L && !g->a.failed; i++) {
        const pl_layer *l = &m->layers[i];
        if (skip[i])
            continue;
        const char *src[PL_MAX_INPUTS];
        int rin = 4;
        if (l->n_in < 1 || l->n_in > PL_MAX_INPUTS)
            return pl_error_set(err, PL_EINVAL, "layer %s reads %d inputs", l->name, l->n_in);
        for (int k = 0; k < l->n_in; k++) {
            int j = l->in[k];
            if (j >= i || j < -1)
                return pl_error_set(err, PL_EINVAL, "layer %s reads layer %d, not an earlier one", l->name, j);
            src[k] = j < 0 ? "input" : val[j];
            if (k == 0)
                rin = j < 0 ? 4 : rank[j];
        }
        int rout = l->type == PL_LAYER_LINEAR || l->type == PL_LAYER_FLATTEN ? 2 : rin;
        int alias = l->type == PL_LAYER_DROPOUT ||
                    ((l->type == PL_LAYER_ADD || l->type == PL_LAYER_CONCAT) && l->n_in == 1);
        int bn = fold_bn ? foldable_bn(m, i) : -1;
        int last = (bn >= 0 ? bn : i) == L - 1;
        const char *lname = bn >= 0 ? m->layers[bn].name : l->name;
        const char *o;
        if (last && rout == 2)
            o = "logits";
        else if (!strcmp(lname, "input") || !strcmp(lname, "logits"))
            o = a_printf(&g->a, "%s.out", lname);
        else
            o = a_printf(&g->a, "%s", lname);
        if (!o)
            return PL_ENOMEM;
        rank[i] = rout;
        val[i] = alias ? src[0] : o;
        pl_status s = PL_OK;
        switch (l->type) {
        case PL_LAYER_CONV2D:
            s = conv_node(g, l, bn >= 0 ? &m->layers[bn] : NULL, src[0], o, err);
            if (bn >= 0) {
                skip[bn] = 1;
                val[bn] = o;
                rank[bn] = rout;
            }
            break;
        case PL_LAYER_LINEAR: {
            const char *x = src[0];
            if (rin != 2) { /* [N, C, 1, 1] → [N, C] */
                char *fo = a_printf(&g->a, "%s.flat", l->name), *fn = a_printf(&g->a, "%s.flatten", l->name);
                if (!fo || !fn)
                    return PL_ENOMEM;
                Onnx__NodeProto *f = add_node(g, "Flatten", fn, 1, &x, fo);
                attr_int(g, f, "axis", 1);
                x = fo;
            }
            if (l->nw != (int64_t)l->out_c * l->in_c || (l->has_bias && l->nb != l->out_c))
                return pl_error_set(err, PL_EINVAL, "layer %s: %lld weights do not make a %dx%d matrix", l->name,
                                    (long long)l->nw, l->out_c, l->in_c);
            char *wn = a_printf(&g->a, "%s.weight", l->name), *bname = a_printf(&g->a, "%s.bias", l->name);
            if (!wn || !bname)
                return PL_ENOMEM;
            int64_t wd[2] = {l->out_c, l->in_c}, bd[1] = {l->out_c};
            add_init(g, wn, 2, wd, l->w, l->mask, l->nw);
            int has_b = l->has_bias && l->b;
            if (has_b)
                add_init(g, bname, 1, bd, l->b, NULL, l->nb);
            const char *ins[3] = {x, wn, bname};
            Onnx__NodeProto *nd = add_node(g, "Gemm", l->name, has_b ? 3 : 2, ins, o);
            attr_int(g, nd, "transB", 1);
            break;
        }
        case PL_LAYER_RELU:
            add_node(g, "Relu", l->name, 1, src, o);
            break;
        case PL_LAYER_MAXPOOL2D:
            pool_attrs(g, add_node(g, "MaxPool", l->name, 1, src, o), l);
            break;
        case PL_LAYER_AVGPOOL2D: {
            Onnx__NodeProto *nd = add_node(g, "AveragePool", l->name, 1, src, o);
            pool_attrs(g, nd, l);
            /* prunelab divides by kh*kw, or by the input elements of the window (excl_pad) */
            attr_int(g, nd, "count_include_pad", l->excl_pad ? 0 : 1);
            break;
        }
        case PL_LAYER_GLOBAL_AVGPOOL:
            add_node(g, "GlobalAveragePool", l->name, 1, src, o);
            break;
        case PL_LAYER_FLATTEN:
            attr_int(g, add_node(g, "Flatten", l->name, 1, src, o), "axis", 1);
            break;
        case PL_LAYER_BATCHNORM2D: {
            if (!l->w || !l->b || !l->run_mean || !l->run_var || l->nw != l->in_c)
                return pl_error_set(err, PL_EINVAL, "layer %s: batchnorm without its parameters", l->name);
            char *n1 = a_printf(&g->a, "%s.weight", l->name), *n2 = a_printf(&g->a, "%s.bias", l->name);
            char *n3 = a_printf(&g->a, "%s.running_mean", l->name), *n4 = a_printf(&g->a, "%s.running_var", l->name);
            if (!n1 || !n2 || !n3 || !n4)
                return PL_ENOMEM;
            int64_t d[1] = {l->in_c};
            add_init(g, n1, 1, d, l->w, NULL, l->in_c);
            add_init(g, n2, 1, d, l->b, NULL, l->in_c);
            add_init(g, n3, 1, d, l->run_mean, NULL, l->in_c);
            add_init(g, n4, 1, d, l->run_var, NULL, l->in_c);
            const char *ins[5] = {src[0], n1, n2, n3, n4};
            Onnx__NodeProto *nd = add_node(g, "BatchNormalization", l->name, 5, ins, o);
            attr_float(g, nd, "epsilon", (float)l->eps);
            attr_float(g, nd, "momentum", (float)(1.0 - l->momentum)); /* ONNX: running = m·running + (1−m)·batch */
            break;
        }
        case PL_LAYER_DROPOUT: /* evaluation: the identity */
            break;
        case PL_LAYER_ADD:
            if (l->n_in >= 2) { /* a chain of binary Adds: a+b, (a+b)+c, ... */
                const char *acc = src[0];
                for (int k = 1; k < l->n_in; k++) {
                    const char *ins[2] = {acc, src[k]};
                    const char *to = k == l->n_in - 1 ? o : a_printf(&g->a, "%s.sum%d", l->name, k);
                    const char *nn = k == l->n_in - 1 ? l->name : a_printf(&g->a, "%s/%d", l->name, k);
                    if (!to || !nn)
                        return PL_ENOMEM;
                    add_node(g, "Add", nn, 2, ins, to);
                    acc = to;
                }
            }
            break;
        case PL_LAYER_CONCAT:
            if (l->n_in >= 2)
                attr_int(g, add_node(g, "Concat", l->name, l->n_in, src, o), "axis", 1);
            break;
        case PL_LAYER_SLICE: { /* opset 13: starts, ends, axes as INT64 initializers; channels, step 1 */
            char *n1 = a_printf(&g->a, "%s.starts", l->name), *n2 = a_printf(&g->a, "%s.ends", l->name);
            char *n3 = a_printf(&g->a, "%s.axes", l->name);
            if (!n1 || !n2 || !n3)
                return PL_ENOMEM;
            add_init_i64(g, n1, l->ch0);
            add_init_i64(g, n2, l->ch1);
            add_init_i64(g, n3, 1);
            const char *ins[4] = {src[0], n1, n2, n3};
            add_node(g, "Slice", l->name, 4, ins, o);
            break;
        }
        default:
            return pl_error_set(err, PL_EINVAL, "layer %s: type %d has no ONNX mapping", l->name, (int)l->type);
        }
        if (s)
            return s;
    }
    if (g->a.failed)
        return PL_ENOMEM;
    /* the output: `logits` [N, classes] */
    const char *fin = val[L - 1];
    if (strcmp(fin, "logits")) {
        Onnx__NodeProto *nd = add_node(g, rank[L - 1] == 2 ? "Identity" : "Flatten", "logits", 1, &fin, "logits");
        if (rank[L - 1] != 2)
            attr_int(g, nd, "axis", 1);
    }
    int64_t in_dims[3] = {m->in_c, m->in_h, m->in_w}, out_dims[1] = {m->classes};
    Onnx__ValueInfoProto **gin = a_alloc(&g->a, sizeof *gin), **gout = a_alloc(&g->a, sizeof *gout);
    Onnx__GraphProto *gp = a_alloc(&g->a, sizeof *gp);
    Onnx__ModelProto *mp = a_alloc(&g->a, sizeof *mp);
    Onnx__OperatorSetIdProto *op = a_alloc(&g->a, sizeof *op), **ops = a_alloc(&g->a, sizeof *ops);
    if (!gin || !gout || !gp || !mp || !op || !ops || !(gin[0] = value_info(g, "input", 3, in_dims)) ||
        !(gout[0] = value_info(g, "logits", 1, out_dims)))
        return PL_ENOMEM;
    onnx__graph_proto__init(gp);
    gp->name = a_printf(&g->a, "%s", m->name);
    gp->doc_string = a_printf(&g->a, "%s%s exported by prunelab %s (%s)", m->name, source ? " from" : "",
                              source ? source : "", fold_bn ? "batchnorm folded" : "batchnorm kept");
    gp->n_node = g->n_node;
    gp->node = g->node;
    gp->n_initializer = g->n_init;
    gp->initializer = g->init;
    gp->n_input = 1;
    gp->input = gin;
    gp->n_output = 1;
    gp->output = gout;
    onnx__operator_set_id_proto__init(op);
    op->domain = a_printf(&g->a, "%s", "");
    op->has_version = 1;
    op->version = PL__ONNX_OPSET;
    ops[0] = op;
    onnx__model_proto__init(mp);
    mp->has_ir_version = 1;
    mp->ir_version = PL__ONNX_IR;
    mp->n_opset_import = 1;
    mp->opset_import = ops;
    mp->producer_name = a_printf(&g->a, "prunelab");
    mp->producer_version = a_printf(&g->a, "%s", PL_VERSION);
    mp->graph = gp;
    if (g->a.failed || !gp->name || !gp->doc_string || !op->domain || !mp->producer_name || !mp->producer_version)
        return PL_ENOMEM;
    *out = mp;
    return PL_OK;
}

pl_status pl_onnx_export_model(const pl_model *m, const char *path, int fold_bn, const char *source,
                               pl_onnx_export_stats *st, pl_error *err)
{
    gb g;
    memset(&g, 0, sizeof g);
    g.m = m;
    Onnx__ModelProto *mp = NULL;
    pl_status s = build(&g, fold_bn, source, &mp, err);
    if (s == PL_ENOMEM)
        s = pl_error_set(err, PL_ENOMEM, "%s: out of memory building the ONNX graph of %s", path, m->name);
    else if (s)
        pl_error_prefix(err, "%s: cannot export model %s", path, m->name);
    if (!s)
        s = pl_onnx_write(path, mp, err);
    if (!s && st)
        *st = g.st;
    arena_free(&g.a);
    return s;
}

pl_status pl_onnx_export_checkpoint(const char *ckpt, const char *path, int fold_bn, pl_onnx_export_stats *st,
                                    pl_error *err)
{
    pl_model *m;
    char *meta = NULL;
    pl_status s = pl_checkpoint_load(ckpt, &m, &meta, err);
    if (s)
        return s;
    free(meta);
    s = pl_onnx_export_model(m, path, fold_bn, ckpt, st, err);
    pl_model_free(m);
    return s;
}
