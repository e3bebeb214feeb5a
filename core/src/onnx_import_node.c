/*
 * onnx_import_node.c — reading one node of an ONNX graph for the importer
 * (onnx_import_internal.h): its attributes, its constant tensors (every
 * size checked against the data), its inputs and outputs as values, the
 * name of the layer it becomes, and emitting that layer with the model
 * builder's shape rule.
 */
#include "onnx_import_internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- attributes ---- */

/* Refuses attributes the op does not know (NULL-terminated list) and
 * repeated ones: an attribute prunelab ignored could change the result. */
pl_status check_attrs(ctx *c, int idx, const char *const *known)
{
    const Onnx__NodeProto *n = c->g->node[idx];
    if (n->n_attribute > 64)
        return nerr(c, idx, "has %zu attributes (at most 64; the file is malformed)", n->n_attribute);
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *a = n->attribute[i]->name ? n->attribute[i]->name : "";
        size_t k = 0;
        while (known[k] && strcmp(known[k], a))
            k++;
        if (!known[k] && c->opset < 6 && !strcmp(a, "consumed_inputs"))
            continue; /* opsets 1-5: a memory-reuse hint with no effect on the result */
        if (!known[k])
            return nerr(c, idx, "attribute '%.60s' is not supported by prunelab's importer (re-export without it)",
                        a);
        for (size_t j = 0; j < i; j++)
            if (n->attribute[j]->name && !strcmp(n->attribute[j]->name, a))
                return nerr(c, idx, "attribute '%.60s' is given twice (the file is malformed; re-export it)", a);
    }
    return PL_OK;
}

const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

/* The attribute `name` of node idx into *out (NULL when absent), refused
 * unless it holds a value of `type` (INT, FLOAT, INTS or STRING). */
static pl_status attr_typed(ctx *c, int idx, const char *name, Onnx__AttributeProto__AttributeType type,
                            const Onnx__AttributeProto **out)
{
    const Onnx__AttributeProto *a = attr(c->g->node[idx], name);
    *out = a;
    if (!a)
        return PL_OK;
    int has = type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT     ? a->has_i
              : type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT ? a->has_f
              : type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING ? a->has_s
                                                                      : 1; /* INTS: an empty list is a list */
    const char *what = type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT     ? "an integer"
                       : type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT ? "a float"
                       : type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING ? "a string"
                                                                               : "a list of integers";
    if ((a->has_type && a->type != type) || !has)
        return nerr(c, idx, "attribute '%s' is not %s (the file is malformed; re-export it)", name, what);
    return PL_OK;
}

pl_status attr_int(ctx *c, int idx, const char *name, int64_t def, int64_t *out)
{
    const Onnx__AttributeProto *a;
    pl_status s = attr_typed(c, idx, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, &a);
    *out = a && !s ? a->i : def;
    return s;
}

pl_status attr_float(ctx *c, int idx, const char *name, float def, float *out)
{
    const Onnx__AttributeProto *a;
    pl_status s = attr_typed(c, idx, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, &a);
    *out = def;
    if (s || !a)
        return s;
    if (!isfinite(a->f))
        return nerr(c, idx, "attribute '%s' is not finite (re-export the model)", name);
    *out = a->f;
    return PL_OK;
}

/* An INTS attribute of exactly `want` entries (or absent: *present 0). */
pl_status attr_ints(ctx *c, int idx, const char *name, size_t want, int64_t *out, int *present)
{
    const Onnx__AttributeProto *a;
    pl_status s = attr_typed(c, idx, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &a);
    *present = 0;
    if (s || !a)
        return s;
    if (a->n_ints != want)
        return nerr(c, idx, "attribute '%s' has %zu values; prunelab reads 2-D operators, which take %zu", name,
                    a->n_ints, want);
    memcpy(out, a->ints, want * sizeof *out);
    *present = 1;
    return PL_OK;
}

/* A STRING attribute's value into v (def when absent; "(unreadable)" when
 * it holds a NUL or does not fit). */
pl_status attr_str(ctx *c, int idx, const char *name, const char *def, char *v, size_t cap)
{
    const Onnx__AttributeProto *a;
    pl_status s = attr_typed(c, idx, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, &a);
    if (s)
        return s;
    if (!a) {
        snprintf(v, cap, "%s", def);
        return PL_OK;
    }
    size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
    memcpy(v, a->s.data, n);
    v[n] = 0;
    if (memchr(v, 0, n) || a->s.len >= cap)
        snprintf(v, cap, "(unreadable)");
    return PL_OK;
}

/* A STRING attribute compared with s; absent counts as `def`. */
pl_status attr_str_is(ctx *c, int idx, const char *name, const char *def, const char *const *ok,
                      const char *hint)
{
    char v[64];
    pl_status s = attr_str(c, idx, name, def, v, sizeof v);
    if (s)
        return s;
    for (size_t k = 0; ok[k]; k++)
        if (!strcmp(v, ok[k]))
            return PL_OK;
    return nerr(c, idx, "%s '%.40s' is not supported (%s)", name, v, hint);
}

/* ---- tensors ---- */

static int tensor_is_external(const Onnx__TensorProto *t)
{
    return (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
           t->n_external_data > 0;
}

/* The element count of t, refusing negative dims and more than
 * PL_MAX_ELEMS elements; *what says why on failure. */
static int tensor_count(const Onnx__TensorProto *t, int64_t *n, const char **what)
{
    int64_t p = 1;
    if (t->n_dims > 8) {
        *what = "has more than 8 dimensions";
        return 0;
    }
    for (size_t i = 0; i < t->n_dims; i++) {
        int64_t d = t->dims[i];
        if (d < 0) {
            *what = "has a negative dimension";
            return 0;
        }
        if (d > PL_MAX_ELEMS || (d && p > PL_MAX_ELEMS / d)) {
            *what = "is too large (more than 268435456 elements)";
            return 0;
        }
        p *= d;
    }
    *n = p;
    return 1;
}

/* Describes t's dims as "[a, b, ...]" into buf. */
const char *dims_text(const Onnx__TensorProto *t, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < t->n_dims && i < 8 && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "%s]", t->n_dims > 8 ? ", ..." : "");
    return buf;
}

static float le_float(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int64_t le_i64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Checks constant t (role names it in messages: "weight 'conv1.weight'")
 * for type and data and returns its element count. */
pl_status tensor_check(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int type,
                       int64_t *count)
{
    const char *name = t->name ? t->name : "";
    const char *why = NULL;
    int64_t n;
    if (tensor_is_external(t))
        return nerr(c, idx, "%s '%.60s' is stored in an external file; prunelab reads self-contained models "
                            "(save with onnx.save_model(m, path, save_as_external_data=False))", role, name);
    if (t->segment)
        return nerr(c, idx, "%s '%.60s' is a segment of a tensor, which prunelab does not read (re-export the "
                            "model)", role, name);
    if (!t->has_data_type || t->data_type != type)
        return nerr(c, idx, "%s '%.60s' has data type %d; prunelab reads %s here (export in float32)", role, name,
                    t->has_data_type ? (int)t->data_type : 0, type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? "FLOAT (1)"
                    : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? "INT64 (7)" : "BOOL (9)");
    if (!tensor_count(t, &n, &why))
        return nerr(c, idx, "%s '%.60s' %s", role, name, why);
    size_t esize = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? 4 : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8 : 1;
    size_t typed = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->n_float_data
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->n_int64_data : t->n_int32_data;
    int raw = t->has_raw_data && t->raw_data.len > 0;
    /* n <= 2^28 and esize <= 8: no overflow */
    if (raw ? t->raw_data.len != (size_t)n * esize : typed != (size_t)n) {
        char d[128];
        return nerr(c, idx, "%s '%.60s' declares %lld elements %s but holds %zu bytes of data (a truncated or "
                            "inconsistent file; re-export it)", role, name, (long long)n,
                    dims_text(t, d, sizeof d), raw ? t->raw_data.len : typed * esize);
    }
    *count = n;
    return PL_OK;
}

/* Copies float constant t (already checked, n elements) into a new array,
 * charged to the weights budget. */
pl_status tensor_floats(ctx *c, int idx, const Onnx__TensorProto *t, int64_t n, float **out)
{
    *out = NULL;
    if (n > c->budget)
        return nerr(c, idx, "the weights exceed what the file holds (a tensor shared by many layers?); prunelab "
                            "copies at most 4 floats per byte of the file");
    c->budget -= n;
    float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
    if (!f)
        return oom(c);
    if (t->has_raw_data && t->raw_data.len)
        for (int64_t i = 0; i < n; i++)
            f[i] = le_float(t->raw_data.data + 4 * i);
    else if (n)
        memcpy(f, t->float_data, (size_t)n * sizeof *f);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(f[i])) {
            free(f);
            return nerr(c, idx, "tensor '%.60s' holds a NaN or infinite value at element %lld (fix the trained "
                                "model first)", t->name ? t->name : "", (long long)i);
        }
    *out = f;
    return PL_OK;
}

/* The INT64 constant t as at most `max` values. */
pl_status tensor_ints(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int64_t *v,
                      size_t max, size_t *nv)
{
    int64_t n;
    pl_status s = tensor_check(c, idx, t, role, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, &n);
    if (s)
        return s;
    if (t->n_dims > 1 || n > (int64_t)max)
        return nerr(c, idx, "%s '%.60s' has %lld values in %zu dimensions (expected a list of at most %zu)", role,
                    t->name ? t->name : "", (long long)n, t->n_dims, max);
    for (int64_t i = 0; i < n; i++)
        v[i] = t->has_raw_data && t->raw_data.len ? le_i64(t->raw_data.data + 8 * i) : t->int64_data[i];
    *nv = (size_t)n;
    return PL_OK;
}

/* A scalar (or one-element) FLOAT constant. */
pl_status tensor_scalar(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, float *v)
{
    int64_t n;
    pl_status s = tensor_check(c, idx, t, role, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &n);
    if (s)
        return s;
    if (n != 1 || t->n_dims > 1)
        return nerr(c, idx, "%s '%.60s' has %lld values; expected one", role, t->name ? t->name : "",
                    (long long)n);
    *v = t->has_raw_data && t->raw_data.len ? le_float(t->raw_data.data) : t->float_data[0];
    return PL_OK;
}

/* A scalar BOOL constant. */
pl_status tensor_bool(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int *v)
{
    int64_t n;
    pl_status s = tensor_check(c, idx, t, role, 9 /* BOOL */, &n);
    if (s)
        return s;
    if (n != 1)
        return nerr(c, idx, "%s '%.60s' has %lld values; expected one", role, t->name ? t->name : "",
                    (long long)n);
    *v = t->has_raw_data && t->raw_data.len ? t->raw_data.data[0] != 0 : t->int32_data[0] != 0;
    return PL_OK;
}

/* ---- inputs of a node ---- */

const char *in_name(const Onnx__NodeProto *n, size_t k)
{
    return k < n->n_input && n->input[k] ? n->input[k] : "";
}

/* The value input k of node idx reads (NULL with an error set). */
val *input(ctx *c, int idx, size_t k)
{
    const char *name = in_name(c->g->node[idx], k);
    int v = *name ? ht_get(&c->names, name) : -1;
    if (v < 0) {
        nerr(c, idx, "input %zu '%.60s' is not defined in the graph (no node, initializer or graph input "
                     "produces it)", k, name);
        return NULL;
    }
    val *x = &c->vals[v];
    if (x->kind == V_NONE) {
        if (x->producer >= idx)
            nerr(c, idx, "input %zu '%.60s' is computed by node %d, which comes later (the nodes are not in "
                         "topological order, or the graph has a cycle)", k, name, x->producer);
        else
            nerr(c, idx, "input %zu '%.60s' is an output of node %d that prunelab does not compute (only the "
                         "first output of each node is supported)", k, name, x->producer);
        return NULL;
    }
    return x;
}

/* Input k as an activation; allow_pad says whether a pending Pad may be
 * folded into this node. */
val *input_act(ctx *c, int idx, size_t k, int allow_pad)
{
    val *x = input(c, idx, k);
    if (!x)
        return NULL;
    if (x->kind != V_ACT) {
        nerr(c, idx, "input %zu '%.60s' is a constant; prunelab reads a layer's output or the model input "
                     "here (constant folding of such nodes is not supported)", k, x->name);
        return NULL;
    }
    if (!allow_pad && (x->ph || x->pw)) {
        nerr(c, idx, "input %zu '%.60s' comes from a Pad node; prunelab folds zero padding only into the Conv or "
                     "AveragePool that follows it", k, x->name);
        return NULL;
    }
    return x;
}

/* Input k as a constant tensor. */
const Onnx__TensorProto *input_const(ctx *c, int idx, size_t k, const char *role)
{
    val *x = input(c, idx, k);
    if (!x)
        return NULL;
    if (x->kind != V_CONST) {
        nerr(c, idx, "%s (input %zu '%.60s') is computed by the graph; prunelab needs it to be an initializer "
                     "or a constant (export with the parameters, do_constant_folding=True)", role, k, x->name);
        return NULL;
    }
    return x->t;
}

/* Checks node idx has between lo and hi inputs (empty trailing ones count
 * as absent) and that outputs past the first are unused. */
pl_status arity(ctx *c, int idx, size_t lo, size_t hi)
{
    const Onnx__NodeProto *n = c->g->node[idx];
    size_t ni = n->n_input;
    while (ni > 0 && !*in_name(n, ni - 1))
        ni--;
    if (ni < lo || ni > hi) {
        if (lo == hi)
            return nerr(c, idx, "has %zu inputs; expected %zu", ni, lo);
        return nerr(c, idx, "has %zu inputs; expected %zu to %zu", ni, lo, hi);
    }
    for (size_t k = 0; k < lo; k++)
        if (!*in_name(n, k))
            return nerr(c, idx, "input %zu is empty; it is required", k);
    if (n->n_output < 1 || !n->output[0] || !*n->output[0])
        return nerr(c, idx, "has no output");
    for (size_t k = 1; k < n->n_output; k++) {
        int v = n->output[k] && *n->output[k] ? ht_get(&c->names, n->output[k]) : -1;
        if (v >= 0 && c->vals[v].consumers > 0)
            return nerr(c, idx, "its output %zu '%.60s' is used; prunelab computes only the first output of %s",
                        k, n->output[k], n->op_type);
    }
    return PL_OK;
}

val *output(ctx *c, int idx)
{
    return &c->vals[ht_get(&c->names, c->g->node[idx]->output[0])];
}

/* Makes node idx's output an alias of value x (Identity, Flatten of a
 * vector, ...). */
void alias(ctx *c, int idx, const val *x)
{
    val *o = output(c, idx);
    o->kind = x->kind;
    o->layer = x->layer;
    o->rank = x->rank;
    o->c = x->c;
    o->h = x->h;
    o->w = x->w;
    o->ph = x->ph;
    o->pw = x->pw;
    o->t = x->t;
}

/* "[N, 10]", "[N, 3, 8]" or "[N, 3, 8, 8]": x's shape as the file states it. */
const char *shape_text(const val *x, char *buf, size_t cap)
{
    if (x->rank == 2)
        snprintf(buf, cap, "[N, %d]", x->c);
    else if (x->rank == 3)
        snprintf(buf, cap, "[N, %d, %d]", x->c, x->h);
    else
        snprintf(buf, cap, "[N, %d, %d, %d]", x->c, x->h, x->w);
    return buf;
}

/* ---- layers ---- */

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

/* s with every other character as '_', runs of '_' collapsed, none at
 * either end, at most 55 characters (room for a "_<k>" suffix). */
void sanitize(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n && s[i] && k < 55; i++) {
        char ch = name_char(s[i]) ? s[i] : '_';
        if (ch == '_' && (k == 0 || out[k - 1] == '_'))
            continue;
        out[k++] = ch;
    }
    while (k > 0 && out[k - 1] == '_')
        k--;
    out[k] = 0;
}

/* The module path of a PyTorch node name: "/layer2/shortcut/shortcut.0/Conv"
 * -> "layer2_shortcut_0" (drop_op: without the last component, the op),
 * each component that repeats its parent's prefix ("shortcut.0" under
 * "shortcut") replacing it. */
static void scope_name(const char *s, int drop_op, char *out)
{
    const char *comp[32];
    size_t len[32], nc = 0;
    for (const char *p = s; *p && nc < 32;) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        if (e > p) {
            if (nc > 0 && (size_t)(e - p) > len[nc - 1] && !strncmp(p, comp[nc - 1], len[nc - 1]) &&
                p[len[nc - 1]] == '.')
                nc--;
            comp[nc] = p;
            len[nc++] = (size_t)(e - p);
        }
        p = e;
    }
    if (drop_op && nc > 1)
        nc--;
    char buf[256];
    size_t k = 0;
    for (size_t i = 0; i < nc && k < sizeof buf - 1; i++) {
        if (i)
            buf[k++] = '_';
        for (size_t j = 0; j < len[i] && k < sizeof buf - 1; j++)
            buf[k++] = comp[i][j];
    }
    buf[k] = 0;
    sanitize(buf, k, out);
}

/* A unique layer name for node idx: the weight's name without ".weight",
 * else the node's module path, else "<type><k>". */
static pl_status layer_name(ctx *c, int idx, pl_layer_type type, const char *weight, char **out)
{
    const Onnx__NodeProto *n = c->g->node[idx];
    char base[64] = "", name[64];
    size_t wl = weight ? strlen(weight) : 0;
    if (wl > 7 && !strcmp(weight + wl - 7, ".weight") && !strchr(weight, ':'))
        sanitize(weight, wl - 7, base);
    if (!base[0] && n->name && *n->name) {
        scope_name(n->name, weight != NULL, base);
        /* "/layer1/Relu_1" -> "layer1_relu_1": the op as prunelab calls the layer */
        const char *last = strrchr(n->name, '/');
        last = last ? last + 1 : n->name;
        size_t ol = n->op_type ? strlen(n->op_type) : 0;
        if (!weight && ol && !strncmp(last, n->op_type, ol) &&
            (!last[ol] || (last[ol] == '_' && last[ol + 1] && strspn(last + ol + 1, "0123456789") == strlen(last + ol + 1)))) {
            char scope[64];
            scope_name(n->name, 1, scope);
            int only = !strchr(n->name + (n->name[0] == '/'), '/'); /* no scope: just the op */
            snprintf(base, sizeof base, "%.30s%s%s%.8s", only ? "" : scope, only ? "" : "_", pl_layer_type_name(type),
                     last + ol);
        }
    }
    if (!base[0] || !strcmp(base, "input"))
        snprintf(base, sizeof base, "%s%d", pl_layer_type_name(type), c->type_count[type]);
    snprintf(name, sizeof name, "%s", base);
    /* "_2" ... "_9", then a counter shared by all names (a file repeating
     * one name 60,000 times must not cost 60,000² lookups) */
    for (int k = 2; ht_get(&c->layer_names, name) >= 0 || !strcmp(name, "input"); k++)
        snprintf(name, sizeof name, "%.55s_%d", base, k < 10 ? k : c->suffix++);
    if (!(*out = strdup(name)))
        return oom(c);
    return PL_OK;
}

/* Appends layer l (hyper-parameters set, name not yet) reading the n_in
 * values in[], with initial tensors *init (taken), as node idx's output. */
pl_status emit(ctx *c, int idx, pl_layer_spec *l, int n_in, val *const *in, pl_layer_init *init,
               const char *weight, int rank)
{
    pl_status s;
    pl_model_spec *sp = c->spec;
    size_t k = sp->n_layers;
    PL_ASSERT(k < c->cap_layers && n_in >= 1 && n_in <= PL_MAX_INPUTS);
    c->type_count[l->type]++;
    /* the shape rule of the model builder */
    pl_layer tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.type = l->type;
    tmp.kh = l->kh > 0 ? l->kh : 1;
    tmp.kw = l->kw > 0 ? l->kw : 1;
    tmp.sh = l->sh > 0 ? l->sh : 1;
    tmp.sw = l->sw > 0 ? l->sw : 1;
    tmp.ph = l->ph;
    tmp.pw = l->pw;
    tmp.has_bias = l->bias;
    tmp.groups = l->groups > 0 ? l->groups : 1;
    tmp.pad_xb = l->pad_xb;
    tmp.pad_xr = l->pad_xr;
    tmp.dil_h = l->dil_h;
    tmp.dil_w = l->dil_w;
    tmp.excl_pad = l->excl_pad;
    tmp.out_c = l->out;
    tmp.ch0 = l->ch0;
    tmp.ch1 = l->ch1;
    int shapes[PL_MAX_INPUTS][3];
    for (int j = 0; j < n_in; j++) {
        shapes[j][0] = in[j]->c;
        shapes[j][1] = in[j]->h;
        shapes[j][2] = in[j]->w;
        l->in[j] = in[j]->layer;
    }
    pl_layer_dims d;
    char why[256];
    if (pl_layer_dims_in(&tmp, n_in, (const int (*)[3])shapes, &d, why, sizeof why))
        return nerr(c, idx, "as a %s layer: %s", pl_layer_type_name(l->type), why);
    /* the sizes the builder will allocate are the ones the file gives */
    if ((init->w && init->nw != d.nw) || (init->b && init->nb != d.nb) ||
        (init->mean && init->nstat != d.in_c))
        return nerr(c, idx, "its parameters (%lld weights, %lld biases) do not fit its %dx%dx%d input (%lld, %lld "
                            "expected)", (long long)init->nw, (long long)init->nb, d.in_c, d.in_h, d.in_w,
                    (long long)d.nw, (long long)d.nb);
    l->n_in = n_in;
    if (n_in == 1 && l->in[0] == (int)k - 1)
        l->n_in = 0; /* a chain step, written as a model YAML would */
    if ((s = layer_name(c, idx, l->type, weight, &l->name)))
        return s;
    sp->layers[k] = *l;
    c->wts->layers[k] = *init;
    memset(init, 0, sizeof *init);
    sp->n_layers = k + 1;
    c->wts->n = k + 1;
    ht_put(&c->layer_names, sp->layers[k].name, (int)k);
    val *o = output(c, idx);
    o->kind = V_ACT;
    o->layer = (int)k;
    o->rank = rank;
    o->c = d.out_c;
    o->h = d.out_h;
    o->w = d.out_w;
    o->ph = o->pw = 0;
    return PL_OK;
}

void init_free(pl_layer_init *li)
{
    free(li->w);
    free(li->b);
    free(li->mean);
    free(li->var);
    memset(li, 0, sizeof *li);
}

/* The shortest decimal that reads back as float f, as a double: ONNX
 * stores epsilon and momentum as float32 (1e-5 as 9.99999974738e-06). */
double dec_of_float(float f)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return strtod(buf, NULL);
}

pl_layer_spec new_spec(pl_layer_type t)
{
    pl_layer_spec l;
    memset(&l, 0, sizeof l);
    l.type = t;
    l.groups = 1;
    l.eps = 1e-5;
    l.momentum = 0.1;
    l.p = 0.5;
    return l;
}
