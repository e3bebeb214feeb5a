/*
 * onnx_import.c — ONNX graph -> pl_model_spec + weights (onnx_import.h).
 *
 * One pass over the nodes in file order. Every tensor name maps to a value:
 * an activation (the output of prunelab layer k, or the model input, -1,
 * with a rank of 4 [N,C,H,W] or 2 [N,F] and a per-image shape), a constant
 * (an initializer, a Constant node, or an Identity of either), or nothing
 * (an output prunelab does not compute, e.g. MaxPool's indices). A node
 * becomes one layer, or none when it only renames a value (Identity,
 * Flatten/Reshape of a vector, Dropout of ratio 0 is still a layer). Nodes
 * the graph output does not depend on are skipped. Shapes are inferred
 * with the model builder's own rule (pl_layer_dims_in) as layers are made,
 * so a shape that does not line up is refused at the node that breaks it.
 *
 * Everything read from the file is bounded before it is used: the node
 * count, every tensor's element count (at most PL_MAX_ELEMS, products in
 * checked int64), tensor data against its declared size, and the weights
 * copied in total (a tensor shared by many layers could otherwise multiply
 * a small file into gigabytes).
 */
#include "onnx_import.h"

#include "onnx_pb.h"
#include "sha256.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nodes one graph may have (a ResNet-152 export has about 500). */
#define MAX_NODES 65536
/* Inputs and outputs of one node. */
#define MAX_NODE_IO 4096
/* Opsets whose semantics for the operators above are known here (before
 * opset 7 some operators carry attributes that are read or refused as the
 * operators below say: consumed_inputs, is_test, broadcast). */
#define OPSET_MIN 1
#define OPSET_MAX 21

#define SUPPORTED_OPS                                                                                        \
    "Conv, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Add, Concat, Flatten, "        \
    "Reshape, Gemm, MatMul, Identity, Dropout, Pad, Constant, Slice"

/* ---- names -> values ------------------------------------------------------------ */

typedef enum vkind { V_NONE = 0, V_ACT = 1, V_CONST = 2 } vkind;

typedef struct val {
    const char *name;              /* borrowed from the proto */
    int producer;                  /* node index, -1 for initializers and graph inputs */
    int init;                      /* an initializer (or a graph input that has one) */
    int graph_input;
    int graph_output;
    int consumers;                 /* live nodes reading it (+1 when it is the graph output) */
    vkind kind;
    /* V_ACT */
    int layer;                     /* -1: the model input */
    int rank;                      /* 2 or 4 */
    int c, h, w;                   /* per image, before any pending padding */
    int ph, pw;                    /* zeros a Pad node added around h, w (for the Conv/AveragePool after it) */
    /* V_CONST */
    const Onnx__TensorProto *t;
} val;

typedef struct htab {
    const char **keys;
    int *vals;
    size_t cap;                    /* a power of two, or 0 */
} htab;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int ht_init(htab *h, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 16)
        cap *= 2;
    h->keys = calloc(cap, sizeof *h->keys);
    h->vals = calloc(cap, sizeof *h->vals);
    h->cap = cap;
    return h->keys && h->vals ? 0 : -1;
}

static void ht_free(htab *h)
{
    free(h->keys);
    free(h->vals);
    h->keys = NULL;
    h->vals = NULL;
    h->cap = 0;
}

/* The slot of key: holding it, or the empty one where it goes. The table
 * is never more than half full (ht_init's size covers every insert). */
static size_t ht_slot(const htab *h, const char *key)
{
    size_t i = (size_t)hash_str(key) & (h->cap - 1);
    while (h->keys[i] && strcmp(h->keys[i], key))
        i = (i + 1) & (h->cap - 1);
    return i;
}

static int ht_get(const htab *h, const char *key)
{
    size_t i = ht_slot(h, key);
    return h->keys[i] ? h->vals[i] : -1;
}

static void ht_put(htab *h, const char *key, int v)
{
    size_t i = ht_slot(h, key);
    h->keys[i] = key;
    h->vals[i] = v;
}

/* ---- the import ------------------------------------------------------------------ */

typedef struct ctx {
    const char *file;
    pl_error *err;
    const Onnx__GraphProto *g;
    int64_t opset;
    val *vals;
    size_t n_vals, cap_vals;
    htab names;                    /* tensor name -> index in vals */
    htab layer_names;              /* layer name -> layer index */
    char *live;                    /* [n_node] */
    pl_model_spec *spec;
    pl_spec_weights *wts;
    size_t cap_layers;
    char *from_matmul;             /* [cap_layers]: a linear made by MatMul, bias not yet seen */
    int type_count[PL_LAYER_SLICE + 1];
    int64_t budget;                /* floats the weights may still take */
    int64_t batch;                 /* the input's batch dimension, or -1 when symbolic */
    int in_c, in_h, in_w, in_rank;
    int suffix;                    /* next shared suffix of repeated layer names (layer_name) */
} ctx;

static void clean_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

/* A file-level error: "<file>: <msg>". */
static pl_status ferr(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static pl_status ferr(ctx *c, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    clean_line(msg);
    return pl_error_set(c->err, PL_EFORMAT, "%s: %s", c->file, msg);
}

/* A node's error: "<file>: node 7 '/layer1/Sigmoid' (Sigmoid, opset 13): <msg>". */
static pl_status nerr(ctx *c, int idx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static pl_status nerr(ctx *c, int idx, const char *fmt, ...)
{
    const Onnx__NodeProto *n = c->g->node[idx];
    char msg[700], head[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *op = n->op_type && *n->op_type ? n->op_type : "no op_type";
    if (n->name && *n->name)
        snprintf(head, sizeof head, "node %d '%.80s' (%.40s, opset %lld)", idx, n->name, op, (long long)c->opset);
    else
        snprintf(head, sizeof head, "node %d (%.40s, opset %lld)", idx, op, (long long)c->opset);
    clean_line(msg);
    clean_line(head);
    return pl_error_set(c->err, PL_EFORMAT, "%s: %s: %s", c->file, head, msg);
}

/* An error about graph tensor `name`, headed by the first node that reads
 * it (reads) or produces it, as nerr heads its errors, so a refusal names
 * the operator it stops; a plain file error when no node does. */
static pl_status terr(ctx *c, const char *name, int reads, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static pl_status terr(ctx *c, const char *name, int reads, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const Onnx__GraphProto *g = c->g;
    for (size_t i = 0; name && *name && g && i < g->n_node && i < MAX_NODES; i++) {
        const Onnx__NodeProto *n = g->node[i];
        size_t k = reads ? n->n_input : n->n_output;
        char *const *v = reads ? n->input : n->output;
        for (size_t j = 0; j < k && j < MAX_NODE_IO; j++)
            if (v[j] && !strcmp(v[j], name))
                return nerr(c, (int)i, "%s", msg);
    }
    return ferr(c, "%s", msg);
}

static pl_status oom(ctx *c)
{
    return pl_error_set(c->err, PL_ENOMEM, "%s: out of memory importing the ONNX model", c->file);
}

static int op_is(const Onnx__NodeProto *n, const char *op) { return n->op_type && !strcmp(n->op_type, op); }

/* ---- attributes ---- */

/* Refuses attributes the op does not know (NULL-terminated list) and
 * repeated ones: an attribute prunelab ignored could change the result. */
static pl_status check_attrs(ctx *c, int idx, const char *const *known)
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

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static pl_status attr_int(ctx *c, int idx, const char *name, int64_t def, int64_t *out)
{
    const Onnx__AttributeProto *a = attr(c->g->node[idx], name);
    *out = def;
    if (!a)
        return PL_OK;
    if ((a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) || !a->has_i)
        return nerr(c, idx, "attribute '%s' is not an integer (the file is malformed; re-export it)", name);
    *out = a->i;
    return PL_OK;
}

static pl_status attr_float(ctx *c, int idx, const char *name, float def, float *out)
{
    const Onnx__AttributeProto *a = attr(c->g->node[idx], name);
    *out = def;
    if (!a)
        return PL_OK;
    if ((a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) || !a->has_f)
        return nerr(c, idx, "attribute '%s' is not a float (the file is malformed; re-export it)", name);
    if (!isfinite(a->f))
        return nerr(c, idx, "attribute '%s' is not finite (re-export the model)", name);
    *out = a->f;
    return PL_OK;
}

/* An INTS attribute of exactly `want` entries (or absent: *present 0). */
static pl_status attr_ints(ctx *c, int idx, const char *name, size_t want, int64_t *out, int *present)
{
    const Onnx__AttributeProto *a = attr(c->g->node[idx], name);
    *present = 0;
    if (!a)
        return PL_OK;
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return nerr(c, idx, "attribute '%s' is not a list of integers (the file is malformed; re-export it)",
                    name);
    if (a->n_ints != want)
        return nerr(c, idx, "attribute '%s' has %zu values; prunelab reads 2-D operators, which take %zu", name,
                    a->n_ints, want);
    memcpy(out, a->ints, want * sizeof *out);
    *present = 1;
    return PL_OK;
}

/* A STRING attribute compared with s; absent counts as `def`. */
static pl_status attr_str_is(ctx *c, int idx, const char *name, const char *def, const char *const *ok,
                             const char *hint)
{
    const Onnx__AttributeProto *a = attr(c->g->node[idx], name);
    char v[64];
    if (!a) {
        snprintf(v, sizeof v, "%s", def);
    } else {
        if ((a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) || !a->has_s)
            return nerr(c, idx, "attribute '%s' is not a string (the file is malformed; re-export it)", name);
        size_t n = a->s.len < sizeof v - 1 ? a->s.len : sizeof v - 1;
        memcpy(v, a->s.data, n);
        v[n] = 0;
        if (memchr(v, 0, n) || a->s.len >= sizeof v)
            snprintf(v, sizeof v, "(unreadable)");
    }
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
static const char *dims_text(const Onnx__TensorProto *t, char *buf, size_t cap)
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
static pl_status tensor_check(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int type,
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
static pl_status tensor_floats(ctx *c, int idx, const Onnx__TensorProto *t, int64_t n, float **out)
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
static pl_status tensor_ints(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int64_t *v,
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
static pl_status tensor_scalar(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, float *v)
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
static pl_status tensor_bool(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int *v)
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

static const char *in_name(const Onnx__NodeProto *n, size_t k)
{
    return k < n->n_input && n->input[k] ? n->input[k] : "";
}

/* The value input k of node idx reads (NULL with an error set). */
static val *input(ctx *c, int idx, size_t k)
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
static val *input_act(ctx *c, int idx, size_t k, int allow_pad)
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
static const Onnx__TensorProto *input_const(ctx *c, int idx, size_t k, const char *role)
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
static pl_status arity(ctx *c, int idx, size_t lo, size_t hi)
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

static val *output(ctx *c, int idx)
{
    return &c->vals[ht_get(&c->names, c->g->node[idx]->output[0])];
}

/* Makes node idx's output an alias of value x (Identity, Flatten of a
 * vector, ...). */
static void alias(ctx *c, int idx, const val *x)
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
static const char *shape_text(const val *x, char *buf, size_t cap)
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
static void sanitize(const char *s, size_t n, char *out)
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
static pl_status emit(ctx *c, int idx, pl_layer_spec *l, int n_in, val *const *in, pl_layer_init *init,
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

static void init_free(pl_layer_init *li)
{
    free(li->w);
    free(li->b);
    free(li->mean);
    free(li->var);
    memset(li, 0, sizeof *li);
}

/* The shortest decimal that reads back as float f, as a double: ONNX
 * stores epsilon and momentum as float32 (1e-5 as 9.99999974738e-06). */
static double dec_of_float(float f)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return strtod(buf, NULL);
}

static pl_layer_spec new_spec(pl_layer_type t)
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

/* ---- operators ---- */

/* A STRING attribute's value into v (def when absent). */
static pl_status attr_str(ctx *c, int idx, const char *name, const char *def, char *v, size_t cap)
{
    const Onnx__AttributeProto *a = attr(c->g->node[idx], name);
    if (!a) {
        snprintf(v, cap, "%s", def);
        return PL_OK;
    }
    if ((a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) || !a->has_s)
        return nerr(c, idx, "attribute '%s' is not a string (the file is malformed; re-export it)", name);
    size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
    memcpy(v, a->s.data, n);
    v[n] = 0;
    if (memchr(v, 0, n) || a->s.len >= cap)
        snprintf(v, cap, "(unreadable)");
    return PL_OK;
}

/* The padding of one axis: input size `in` (after a pending Pad), kernel
 * span ek (dilated), stride st; auto_pad mode (0 NOTSET, 1 VALID, 2
 * SAME_UPPER, 3 SAME_LOWER); b0 and b1 hold the explicit pads on entry.
 * ceil: the pool's output rounds up (folded into extra end padding, which
 * never wins a max and, with count_include_pad=0, is never counted). */
static void axis_pads(int64_t in, int64_t ek, int64_t st, int mode, int ceil, int64_t *b0, int64_t *b1)
{
    if (mode == 1) { /* VALID: ceil((in - ek + 1) / st) windows, whatever ceil_mode says */
        *b0 = *b1 = 0;
        return;
    }
    if (mode >= 2) {
        int64_t out = (in + st - 1) / st, total = (out - 1) * st + ek - in;
        if (total < 0)
            total = 0;
        *b0 = mode == 2 ? total / 2 : total - total / 2;
        *b1 = total - *b0;
        return;
    }
    int64_t span = in + *b0 + *b1 - ek;
    if (!ceil || span < 0)
        return;
    int64_t out = (span + st - 1) / st + 1;
    if ((out - 1) * st >= in + *b0) /* the last window must start inside the input or the top padding */
        out--;
    int64_t extra = (out - 1) * st + ek - (in + *b0 + *b1);
    if (extra > 0)
        *b1 += extra;
}

/* Dilations, auto_pad, pads (and for pools ceil_mode) of node idx, into l
 * (kh, kw, sh, sw already set) for input x, a pending Pad included. *padded
 * says whether the node's own padding (not a Pad node's zeros, which are
 * input elements) is anything. */
static pl_status geometry(ctx *c, int idx, const val *x, pl_layer_spec *l, int ceil, int *padded)
{
    pl_status s;
    int64_t v2[2], v4[4] = {0, 0, 0, 0};
    int has;
    if ((s = attr_ints(c, idx, "dilations", 2, v2, &has)))
        return s;
    if (has) {
        if (v2[0] < 1 || v2[1] < 1 || v2[0] > 65536 || v2[1] > 65536)
            return nerr(c, idx, "dilations [%lld, %lld] are out of range (1 to 65536)", (long long)v2[0],
                        (long long)v2[1]);
        l->dil_h = v2[0] > 1 ? (int)v2[0] : 0;
        l->dil_w = v2[1] > 1 ? (int)v2[1] : 0;
    }
    char ap[64];
    if ((s = attr_str(c, idx, "auto_pad", "NOTSET", ap, sizeof ap)))
        return s;
    static const char *const modes[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", NULL};
    int mode = 0;
    while (modes[mode] && strcmp(modes[mode], ap))
        mode++;
    if (!modes[mode])
        return nerr(c, idx, "auto_pad '%.40s' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", ap);
    if ((s = attr_ints(c, idx, "pads", 4, v4, &has)))
        return s;
    if (has && mode != 0)
        return nerr(c, idx, "has both pads and auto_pad '%s' (ONNX allows one of them)", ap);
    for (int i = 0; i < 4; i++)
        if (v4[i] < 0 || v4[i] > 65536)
            return nerr(c, idx, "pads [%lld, %lld, %lld, %lld] are out of range (0 to 65536)", (long long)v4[0],
                        (long long)v4[1], (long long)v4[2], (long long)v4[3]);
    int64_t ekh = pl_layer_span(l->kh, l->dil_h);
    int64_t ekw = pl_layer_span(l->kw, l->dil_w);
    int64_t ih = (int64_t)x->h + 2 * x->ph, iw = (int64_t)x->w + 2 * x->pw;
    axis_pads(ih, ekh, l->sh, mode, ceil, &v4[0], &v4[2]);
    axis_pads(iw, ekw, l->sw, mode, ceil, &v4[1], &v4[3]);
    /* the bound a checkpoint accepts (each side, a pending Pad and the ceil_mode extra included), so
     * every imported model can be saved and loaded again */
    if (v4[0] + x->ph > PL_GEOM_MAX || v4[1] + x->pw > PL_GEOM_MAX || v4[2] + x->ph > PL_GEOM_MAX ||
        v4[3] + x->pw > PL_GEOM_MAX)
        return nerr(c, idx, "its padding [%lld, %lld, %lld, %lld] (auto_pad, ceil_mode and a preceding Pad "
                    "included) is above %d on a side; use a smaller padding", (long long)(v4[0] + x->ph),
                    (long long)(v4[1] + x->pw), (long long)(v4[2] + x->ph), (long long)(v4[3] + x->pw), PL_GEOM_MAX);
    l->ph = (int)(v4[0] + x->ph);
    l->pw = (int)(v4[1] + x->pw);
    l->pad_xb = (int)(v4[2] - v4[0]);
    l->pad_xr = (int)(v4[3] - v4[1]);
    *padded = v4[0] || v4[1] || v4[2] || v4[3];
    return PL_OK;
}

static pl_status op_conv(ctx *c, int idx)
{
    static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 2, 3)))
        return s;
    val *x = input_act(c, idx, 0, 1);
    if (!x)
        return PL_EFORMAT;
    char xs[64];
    if (x->rank != 4)
        return nerr(c, idx, "input is %s; prunelab's Conv is 2-D and needs images [N, C, H, W]",
                    shape_text(x, xs, sizeof xs));
    const Onnx__TensorProto *wt = input_const(c, idx, 1, "the weight");
    if (!wt)
        return PL_EFORMAT;
    int64_t nw, nb = 0, group, v2[2];
    int has;
    if ((s = tensor_check(c, idx, wt, "weight", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nw)))
        return s;
    char dt[128];
    if (wt->n_dims != 4)
        return nerr(c, idx, "weight '%.60s' is %s; a 2-D convolution's weight is [out, in/group, kh, kw]",
                    wt->name ? wt->name : "", dims_text(wt, dt, sizeof dt));
    if ((s = attr_int(c, idx, "group", 1, &group)))
        return s;
    if (group < 1 || group > INT_MAX)
        return nerr(c, idx, "group %lld is not a positive int", (long long)group);
    for (int i = 0; i < 4; i++)
        if (wt->dims[i] < 1 || wt->dims[i] > INT_MAX)
            return nerr(c, idx, "weight '%.60s' is %s, an empty or oversized convolution", wt->name ? wt->name : "",
                        dims_text(wt, dt, sizeof dt));
    if ((int64_t)wt->dims[1] * group != x->c)
        return nerr(c, idx, "weight '%.60s' is %s with group %lld, which takes %lld input channels, but the input "
                            "has %d", wt->name ? wt->name : "", dims_text(wt, dt, sizeof dt), (long long)group,
                    (long long)(wt->dims[1] * group), x->c);
    pl_layer_spec l = new_spec(PL_LAYER_CONV2D);
    l.out = (int)wt->dims[0];
    l.kh = (int)wt->dims[2];
    l.kw = (int)wt->dims[3];
    l.groups = (int)group;
    if ((s = attr_ints(c, idx, "kernel_shape", 2, v2, &has)))
        return s;
    if (has && (v2[0] != l.kh || v2[1] != l.kw))
        return nerr(c, idx, "kernel_shape [%lld, %lld] does not match the weight's %dx%d", (long long)v2[0],
                    (long long)v2[1], l.kh, l.kw);
    if ((s = attr_ints(c, idx, "strides", 2, v2, &has)))
        return s;
    l.sh = l.sw = 1;
    if (has) {
        if (v2[0] < 1 || v2[1] < 1 || v2[0] > 65536 || v2[1] > 65536)
            return nerr(c, idx, "strides [%lld, %lld] are out of range (1 to 65536)", (long long)v2[0],
                        (long long)v2[1]);
        l.sh = (int)v2[0];
        l.sw = (int)v2[1];
    }
    int padded;
    if ((s = geometry(c, idx, x, &l, 0, &padded))) /* a Pad node before it included */
        return s;
    l.bias = 0;
    pl_layer_init init = {0};
    const Onnx__TensorProto *bt = NULL;
    if (*in_name(c->g->node[idx], 2)) {
        if (!(bt = input_const(c, idx, 2, "the bias")) ||
            (s = tensor_check(c, idx, bt, "bias", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nb)))
            return bt ? s : PL_EFORMAT;
        if (bt->n_dims != 1 || nb != l.out)
            return nerr(c, idx, "bias '%.60s' is %s; expected [%d]", bt->name ? bt->name : "",
                        dims_text(bt, dt, sizeof dt), l.out);
        l.bias = 1;
    }
    if ((s = tensor_floats(c, idx, wt, nw, &init.w)))
        return s;
    init.nw = nw;
    if (bt && (s = tensor_floats(c, idx, bt, nb, &init.b))) {
        init_free(&init);
        return s;
    }
    init.nb = nb;
    val xin = *x;
    xin.ph = xin.pw = 0;
    val *ins[1] = {&xin};
    s = emit(c, idx, &l, 1, ins, &init, wt->name, 4);
    init_free(&init);
    return s;
}

/* The legacy is_test attribute of node idx (operator op): not part of op
 * since opset 7; below it, is_test=0 (what: the training behaviour) is
 * refused. hint follows "export the model in eval mode". */
static pl_status legacy_is_test(ctx *c, int idx, const char *op, const char *what, const char *hint)
{
    int64_t is_test;
    pl_status s = attr_int(c, idx, "is_test", 0, &is_test);
    if (s)
        return s;
    if (c->opset >= 7 && attr(c->g->node[idx], "is_test"))
        return nerr(c, idx, "attribute 'is_test' is not part of %s since opset 7", op);
    if (c->opset < 7 && !is_test)
        return nerr(c, idx, "is_test=0 (%s) is not supported; export the model in eval mode%s", what, hint);
    return PL_OK;
}

static pl_status op_batchnorm(ctx *c, int idx)
{
    static const char *const known[] = {"epsilon", "momentum", "spatial", "training_mode", "is_test", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 5, 5)))
        return s;
    int64_t spatial, training;
    if ((s = legacy_is_test(c, idx, "BatchNormalization", "batch statistics, training", " (model.eval())")))
        return s;
    float eps, mom;
    if ((s = attr_int(c, idx, "spatial", 1, &spatial)) || (s = attr_int(c, idx, "training_mode", 0, &training)) ||
        (s = attr_float(c, idx, "epsilon", 1e-5f, &eps)) || (s = attr_float(c, idx, "momentum", 0.9f, &mom)))
        return s;
    if (spatial != 1)
        return nerr(c, idx, "spatial=%lld (per-position statistics) is not supported", (long long)spatial);
    if (training)
        return nerr(c, idx, "training_mode=1 (batch statistics at inference) is not supported; export the model "
                            "in eval mode (model.eval())");
    if (!(eps > 0))
        return nerr(c, idx, "epsilon %g must be > 0", (double)eps);
    if (mom < 0 || mom > 1)
        return nerr(c, idx, "momentum %g must be in [0, 1]", (double)mom);
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    static const char *const roles[4] = {"scale", "bias", "mean", "variance"};
    const Onnx__TensorProto *t[4];
    int64_t n[4];
    char dt[128];
    for (int k = 0; k < 4; k++) {
        if (!(t[k] = input_const(c, idx, (size_t)k + 1, roles[k])))
            return PL_EFORMAT;
        if ((s = tensor_check(c, idx, t[k], roles[k], ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &n[k])))
            return s;
        if (t[k]->n_dims != 1 || n[k] != x->c)
            return nerr(c, idx, "%s '%.60s' is %s; the input has %d channels", roles[k], t[k]->name ? t[k]->name : "",
                        dims_text(t[k], dt, sizeof dt), x->c);
    }
    pl_layer_spec l = new_spec(PL_LAYER_BATCHNORM2D);
    l.eps = dec_of_float(eps);
    /* ONNX: running = m*running + (1-m)*batch; prunelab (PyTorch): (1-m)*running + m*batch */
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", 1.0 - dec_of_float(mom));
    l.momentum = strtod(buf, NULL);
    pl_layer_init init = {0};
    float *v[4] = {0};
    for (int k = 0; k < 4 && !s; k++)
        s = tensor_floats(c, idx, t[k], n[k], &v[k]);
    init.w = v[0];
    init.b = v[1];
    init.mean = v[2];
    init.var = v[3];
    init.nw = init.nb = init.nstat = x->c;
    for (int64_t i = 0; !s && i < x->c; i++)
        if (!(v[3][i] >= 0) || !isfinite(v[3][i]))
            s = nerr(c, idx, "variance '%.60s' holds %g at channel %lld; a variance is finite and >= 0",
                     t[3]->name ? t[3]->name : "", (double)v[3][i], (long long)i);
    const char *wname = t[0]->name;
    if (!s)
        s = emit(c, idx, &l, 1, &x, &init, wname, x->rank);
    init_free(&init);
    return s;
}

static pl_status op_pool(ctx *c, int idx, int is_max)
{
    static const char *const kmax[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                       "storage_order", "strides", NULL};
    static const char *const kavg[] = {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape",
                                       "pads", "strides", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, is_max ? kmax : kavg)) || (s = arity(c, idx, 1, 1)))
        return s;
    val *x = input_act(c, idx, 0, !is_max);
    if (!x)
        return PL_EFORMAT;
    char xs[64];
    if (x->rank != 4)
        return nerr(c, idx, "input is %s; prunelab's pooling is 2-D and needs images [N, C, H, W]",
                    shape_text(x, xs, sizeof xs));
    int64_t v2[2], ceil_mode, cip, order;
    int has;
    pl_layer_spec l = new_spec(is_max ? PL_LAYER_MAXPOOL2D : PL_LAYER_AVGPOOL2D);
    if ((s = attr_ints(c, idx, "kernel_shape", 2, v2, &has)))
        return s;
    if (!has)
        return nerr(c, idx, "attribute 'kernel_shape' is missing (required)");
    if (v2[0] < 1 || v2[1] < 1 || v2[0] > 65536 || v2[1] > 65536)
        return nerr(c, idx, "kernel_shape [%lld, %lld] is out of range (1 to 65536)", (long long)v2[0],
                    (long long)v2[1]);
    l.kh = (int)v2[0];
    l.kw = (int)v2[1];
    if ((s = attr_ints(c, idx, "strides", 2, v2, &has)))
        return s;
    l.sh = l.sw = 1; /* ONNX's default, not the kernel */
    if (has) {
        if (v2[0] < 1 || v2[1] < 1 || v2[0] > 65536 || v2[1] > 65536)
            return nerr(c, idx, "strides [%lld, %lld] are out of range (1 to 65536)", (long long)v2[0],
                        (long long)v2[1]);
        l.sh = (int)v2[0];
        l.sw = (int)v2[1];
    }
    if (!is_max && attr(c->g->node[idx], "dilations"))
        return nerr(c, idx, "attribute 'dilations' of AveragePool is not supported (ONNX added it in opset 19)");
    if ((s = attr_int(c, idx, "ceil_mode", 0, &ceil_mode)) || (s = attr_int(c, idx, "count_include_pad", 0, &cip)) ||
        (s = attr_int(c, idx, "storage_order", 0, &order)))
        return s;
    if (order)
        return nerr(c, idx, "storage_order=1 is not supported");
    if (ceil_mode != 0 && ceil_mode != 1)
        return nerr(c, idx, "ceil_mode=%lld is neither 0 nor 1", (long long)ceil_mode);
    int padded;
    if ((s = geometry(c, idx, x, &l, (int)ceil_mode, &padded)))
        return s;
    if (!is_max && padded) {
        if (!cip && (x->ph || x->pw))
            return nerr(c, idx, "pads with count_include_pad=0 after a Pad node: the Pad's zeros count, its own "
                                "padding would not; prunelab folds a Pad only into pooling without padding of its "
                                "own (export with count_include_pad=True)");
        if (!cip) {
            l.excl_pad = 1;
        } else if (ceil_mode) {
            /* PyTorch and ONNX divide a window that overhangs the padded input by the part inside it */
            pl_layer_spec ref = l;
            if ((s = geometry(c, idx, x, &ref, 0, &padded)))
                return s;
            if (ref.pad_xb != l.pad_xb || ref.pad_xr != l.pad_xr)
                return nerr(c, idx, "ceil_mode=1 with count_include_pad=1 adds windows past the padding; prunelab "
                                    "does not import that divisor (export with ceil_mode=False or "
                                    "count_include_pad=False)");
        }
    }
    val xin = *x;
    xin.ph = xin.pw = 0;
    val *ins[1] = {&xin};
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, ins, &none, NULL, 4);
}

static pl_status op_simple(ctx *c, int idx, pl_layer_type t)
{
    static const char *const none_known[] = {NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, none_known)) || (s = arity(c, idx, 1, 1)))
        return s;
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    char xs[64];
    if (t == PL_LAYER_GLOBAL_AVGPOOL && x->rank != 4)
        return nerr(c, idx, "input is %s; prunelab's GlobalAveragePool is 2-D and needs images [N, C, H, W]",
                    shape_text(x, xs, sizeof xs));
    pl_layer_spec l = new_spec(t);
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, &x, &none, NULL, x->rank);
}

/* A linear layer from weight w (already [out][in]) and optional bias. */
static pl_status linear(ctx *c, int idx, val *x, pl_layer_init *init, int64_t out, const char *wname)
{
    pl_layer_spec l = new_spec(PL_LAYER_LINEAR);
    l.out = (int)out;
    l.bias = init->b != NULL;
    return emit(c, idx, &l, 1, &x, init, wname, 2);
}

/* Weight [K][M] (MatMul, Gemm transB=0) -> [M][K]. */
static void transpose(float *w, float *tmp, int64_t k, int64_t m)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < m; j++)
            tmp[j * k + i] = w[i * m + j];
    memcpy(w, tmp, (size_t)(k * m) * sizeof *w);
}

static pl_status op_gemm_matmul(ctx *c, int idx, int gemm)
{
    static const char *const kgemm[] = {"alpha", "beta", "transA", "transB", NULL};
    static const char *const kgemm6[] = {"alpha", "beta", "transA", "transB", "broadcast", NULL}; /* opsets 1-6 */
    static const char *const kmm[] = {NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, gemm ? (c->opset < 7 ? kgemm6 : kgemm) : kmm)) ||
        (s = arity(c, idx, 2, gemm ? 3 : 2)))
        return s;
    int64_t ta = 0, tb = 0;
    float alpha = 1, beta = 1;
    if (gemm && ((s = attr_int(c, idx, "transA", 0, &ta)) || (s = attr_int(c, idx, "transB", 0, &tb)) ||
                 (s = attr_float(c, idx, "alpha", 1, &alpha)) || (s = attr_float(c, idx, "beta", 1, &beta))))
        return s;
    int has_c = gemm && *in_name(c->g->node[idx], 2);
    int64_t bcast = 1; /* before opset 7, broadcast=0 (the default) means C is exactly [M, N] */
    if (gemm && c->opset < 7 && (s = attr_int(c, idx, "broadcast", 0, &bcast)))
        return s;
    if (ta)
        return nerr(c, idx, "transA=1 is not supported (it transposes the batch axis: prunelab's input is [N, "
                            "features], one row per image)");
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    char xs[64];
    if (x->rank != 2)
        return nerr(c, idx, "input is %s; %s needs [N, features] (flatten it first: torch.flatten(x, 1))",
                    shape_text(x, xs, sizeof xs), gemm ? "Gemm" : "MatMul");
    const Onnx__TensorProto *wt = input_const(c, idx, 1, "the weight");
    if (!wt)
        return PL_EFORMAT;
    int64_t nw, nb = 0;
    char dt[128];
    if ((s = tensor_check(c, idx, wt, "weight", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nw)))
        return s;
    if (wt->n_dims != 2 || wt->dims[0] < 1 || wt->dims[1] < 1)
        return nerr(c, idx, "weight '%.60s' is %s; expected a 2-D matrix", wt->name ? wt->name : "",
                    dims_text(wt, dt, sizeof dt));
    int64_t out = tb ? wt->dims[0] : wt->dims[1], in = tb ? wt->dims[1] : wt->dims[0];
    if (in != x->c)
        return nerr(c, idx, "weight '%.60s' is %s%s, which takes %lld features, but the input has %d",
                    wt->name ? wt->name : "", dims_text(wt, dt, sizeof dt), tb ? " (transposed)" : "",
                    (long long)in, x->c);
    if (out > INT_MAX)
        return nerr(c, idx, "%lld outputs are too many", (long long)out);
    const Onnx__TensorProto *bt = NULL;
    if (has_c) {
        if (!(bt = input_const(c, idx, 2, "the bias")) ||
            (s = tensor_check(c, idx, bt, "bias", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nb)))
            return bt ? s : PL_EFORMAT;
        /* C broadcasts to [N, out]: [], [1], [out], [1|N, 1|out] */
        int64_t cols = bt->n_dims >= 1 ? bt->dims[bt->n_dims - 1] : 1, rows = bt->n_dims == 2 ? bt->dims[0] : 1;
        if (bt->n_dims > 2 || (cols != 1 && cols != out) || rows < 1 || nb != rows * cols)
            return nerr(c, idx, "bias '%.60s' is %s; it does not broadcast to [N, %lld]", bt->name ? bt->name : "",
                        dims_text(bt, dt, sizeof dt), (long long)out);
        if (!bcast && (bt->n_dims != 2 || cols != out))
            return nerr(c, idx, "bias '%.60s' is %s with broadcast=0, which before opset 7 needs C to be [N, %lld] "
                        "exactly; set broadcast=1 or re-export at opset 7 or later", bt->name ? bt->name : "",
                        dims_text(bt, dt, sizeof dt), (long long)out);
    }
    pl_layer_init init = {0};
    if ((s = tensor_floats(c, idx, wt, nw, &init.w)))
        return s;
    init.nw = nw;
    if (alpha != 1) /* alpha·A·B = A·(alpha·B) */
        for (int64_t i = 0; i < nw; i++)
            init.w[i] *= alpha;
    if (!tb) {
        float *tmp = malloc((size_t)nw * sizeof *tmp);
        if (!tmp) {
            init_free(&init);
            return oom(c);
        }
        transpose(init.w, tmp, in, out);
        free(tmp);
    }
    if (bt) {
        float *cv = NULL;
        if ((s = tensor_floats(c, idx, bt, nb, &cv))) {
            init_free(&init);
            return s;
        }
        int64_t cols = bt->n_dims >= 1 ? bt->dims[bt->n_dims - 1] : 1, rows = nb / cols;
        /* one bias per output: every row of C alike (a row per image would depend on the batch) */
        for (int64_t r = 1; r < rows && !s; r++)
            if (memcmp(cv + r * cols, cv, (size_t)cols * sizeof *cv))
                s = nerr(c, idx, "bias '%.60s' is %s with rows that differ; prunelab's bias is one row, the same "
                                 "for every image", bt->name ? bt->name : "", dims_text(bt, dt, sizeof dt));
        if (!s && !(init.b = malloc((size_t)out * sizeof *init.b)))
            s = oom(c);
        if (s) {
            free(cv);
            init_free(&init);
            return s;
        }
        for (int64_t j = 0; j < out; j++)
            init.b[j] = beta * cv[cols == 1 ? 0 : j];
        free(cv);
        nb = out;
    }
    for (int64_t i = 0; i < nw + nb && !s; i++)
        if (!isfinite(i < nw ? init.w[i] : init.b[i - nw]))
            s = nerr(c, idx, "alpha %g or beta %g makes a weight or bias overflow", (double)alpha, (double)beta);
    if (s) {
        init_free(&init);
        return s;
    }
    init.nb = nb;
    s = linear(c, idx, x, &init, out, wt->name);
    init_free(&init);
    if (!s && !gemm)
        c->from_matmul[c->spec->n_layers - 1] = 1;
    return s;
}

/* Add before opset 7, the constant b added to an [N, out] value: it
 * broadcasts only with broadcast=1, and only axis = 2 - rank(b) (or no
 * axis: the trailing axes) lines it up with the features, the numpy rule
 * applied here; anything else means another sum, refused. */
static pl_status legacy_broadcast(ctx *c, int idx, const val *b)
{
    if (c->opset >= 7)
        return PL_OK;
    int64_t bcast, axis, want = 2 - (int64_t)b->t->n_dims;
    pl_status s = attr_int(c, idx, "broadcast", 0, &bcast);
    if (s || (s = attr_int(c, idx, "axis", want, &axis)))
        return s;
    char dt[128];
    if (!bcast)
        return nerr(c, idx, "adds the bias '%.60s' (%s) to an [N, features] value with broadcast=0, which before "
                    "opset 7 needs equal shapes; set broadcast=1 or re-export at opset 7 or later", b->name,
                    dims_text(b->t, dt, sizeof dt));
    if (axis != want)
        return nerr(c, idx, "axis=%lld aligns the bias '%.60s' (%s) with axis %lld of its [N, features] input, not "
                    "with the features; prunelab adds it per feature (axis=%lld, or no axis)", (long long)axis,
                    b->name, dims_text(b->t, dt, sizeof dt), (long long)axis, (long long)want);
    return PL_OK;
}

/* Add: two same-shape activations, or the bias of the MatMul before it. */
static pl_status op_add(ctx *c, int idx)
{
    static const char *const known[] = {NULL};
    static const char *const known6[] = {"axis", "broadcast", NULL}; /* opsets 1-6 */
    pl_status s;
    if ((s = check_attrs(c, idx, c->opset < 7 ? known6 : known)) || (s = arity(c, idx, 2, 2)))
        return s;
    val *a = input(c, idx, 0), *b = a ? input(c, idx, 1) : NULL;
    if (!a || !b)
        return PL_EFORMAT;
    if (a->kind == V_CONST && b->kind == V_ACT) {
        val *t = a;
        a = b;
        b = t;
    }
    if (b->kind == V_CONST) {
        int k = a->kind == V_ACT ? a->layer : -1;
        if (k < 0 || !c->from_matmul[k] || a->consumers != 1 || a->ph || a->pw)
            return nerr(c, idx, "adds the constant '%.60s'; prunelab adds constants only as the bias of the MatMul "
                                "right before (use nn.Linear, or add layer outputs)", b->name);
        int64_t nb;
        char dt[128];
        int64_t out = c->spec->layers[k].out;
        if ((s = tensor_check(c, idx, b->t, "bias", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nb)))
            return s;
        if (nb != out || b->t->n_dims < 1 || b->t->n_dims > 2 || (b->t->n_dims == 2 && b->t->dims[0] != 1))
            return nerr(c, idx, "bias '%.60s' is %s; the MatMul before it has %lld outputs", b->name,
                        dims_text(b->t, dt, sizeof dt), (long long)out);
        if ((s = legacy_broadcast(c, idx, b)))
            return s;
        pl_layer_init *li = &c->wts->layers[k];
        if ((s = tensor_floats(c, idx, b->t, nb, &li->b)))
            return s;
        li->nb = nb;
        c->spec->layers[k].bias = 1;
        c->from_matmul[k] = 0;
        alias(c, idx, a);
        return PL_OK;
    }
    if (!(a = input_act(c, idx, 0, 0)) || !(b = input_act(c, idx, 1, 0)))
        return PL_EFORMAT;
    if (a->rank != b->rank || a->c != b->c || a->h != b->h || a->w != b->w)
        return nerr(c, idx, "adds a %dx%dx%d to a %dx%dx%d value; prunelab adds values of the same shape (no "
                            "broadcasting)", a->c, a->h, a->w, b->c, b->h, b->w);
    pl_layer_spec l = new_spec(PL_LAYER_ADD);
    val *ins[2] = {a, b};
    pl_layer_init none = {0};
    return emit(c, idx, &l, 2, ins, &none, NULL, a->rank);
}

static pl_status op_concat(ctx *c, int idx)
{
    static const char *const known[] = {"axis", NULL};
    pl_status s;
    const Onnx__NodeProto *n = c->g->node[idx];
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 1, PL_MAX_INPUTS)))
        return s;
    const Onnx__AttributeProto *ax = attr(n, "axis");
    int64_t axis;
    if (!ax && c->opset >= 4)
        return nerr(c, idx, "attribute 'axis' is missing (required)");
    if ((s = attr_int(c, idx, "axis", 1, &axis)))
        return s;
    val *ins[PL_MAX_INPUTS];
    size_t ni = n->n_input;
    while (ni > 0 && !*in_name(n, ni - 1))
        ni--;
    for (size_t k = 0; k < ni; k++)
        if (!(ins[k] = input_act(c, idx, k, 0)))
            return PL_EFORMAT;
    int rank = ins[0]->rank;
    if (axis < 0)
        axis += rank;
    if (axis != 1)
        return nerr(c, idx, "axis %lld: prunelab can concat only along the channel axis (axis 1; %s)",
                    (long long)axis, axis == 0 ? "axis 0 is the batch" : "the axes after it are spatial");
    for (size_t k = 1; k < ni; k++)
        if (ins[k]->rank != rank)
            return nerr(c, idx, "input %zu has rank %d but input 0 has rank %d", k, ins[k]->rank, rank);
    if (ni == 1) {
        alias(c, idx, ins[0]);
        return PL_OK;
    }
    pl_layer_spec l = new_spec(PL_LAYER_CONCAT);
    pl_layer_init none = {0};
    return emit(c, idx, &l, (int)ni, ins, &none, NULL, rank);
}

/* Slice (opset 10 on: starts, ends, axes, steps as constant inputs) of a
 * channel range: axis 1, step 1, a non-empty range after ONNX's clamping
 * (negative indices count from the end). */
static pl_status op_slice(ctx *c, int idx)
{
    static const char *const known[] = {NULL};
    pl_status s;
    if (c->opset < 10)
        return nerr(c, idx, "Slice before opset 10 (starts/ends as attributes) is not supported; export with "
                            "opset_version=13");
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 3, 5)))
        return s;
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    const Onnx__NodeProto *n = c->g->node[idx];
    const char *role[4] = {"starts", "ends", "axes", "steps"};
    int64_t v[4][4];
    size_t nv[4] = {0, 0, 0, 0};
    for (size_t k = 1; k <= 4; k++) {
        if (k >= 3 && !*in_name(n, k))
            continue;
        const Onnx__TensorProto *t = input_const(c, idx, k, role[k - 1]);
        if (!t || (s = tensor_ints(c, idx, t, role[k - 1], v[k - 1], 4, &nv[k - 1])))
            return t ? s : PL_EFORMAT;
    }
    if (nv[0] != 1 || nv[1] != 1 || (nv[2] && nv[2] != 1) || (nv[3] && nv[3] != 1))
        return nerr(c, idx, "slices %zu axes; prunelab slices one axis, the channels (axis 1)", nv[0]);
    int64_t axis = nv[2] ? v[2][0] : 0;
    if (axis < 0)
        axis += x->rank;
    if (axis != 1)
        return nerr(c, idx, "slices axis %lld; prunelab slices only the channels (axis 1; %s)",
                    (long long)(nv[2] ? v[2][0] : 0), axis == 0 ? "axis 0 is the batch" : "the axes after it are spatial");
    if (nv[3] && v[3][0] != 1)
        return nerr(c, idx, "step %lld; prunelab takes a contiguous channel range (step 1)", (long long)v[3][0]);
    int64_t dim = x->c, a = v[0][0], b = v[1][0];
    a = a < 0 ? a + dim : a;
    b = b < 0 ? b + dim : b;
    a = a < 0 ? 0 : a > dim ? dim : a;
    b = b < 0 ? 0 : b > dim ? dim : b;
    if (a >= b)
        return nerr(c, idx, "takes channels %lld to %lld of %lld: an empty range", (long long)v[0][0],
                    (long long)v[1][0], (long long)dim);
    if (a == 0 && b == dim) {
        alias(c, idx, x);
        return PL_OK;
    }
    pl_layer_spec l = new_spec(PL_LAYER_SLICE);
    l.ch0 = (int)a;
    l.ch1 = (int)b;
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, &x, &none, NULL, x->rank);
}

/* Flatten from axis 1, or Reshape to [N, -1]: a flatten layer (an alias
 * when the value is already a vector). */
static pl_status flatten(ctx *c, int idx, val *x)
{
    if (x->rank == 2) {
        alias(c, idx, x);
        return PL_OK;
    }
    pl_layer_spec l = new_spec(PL_LAYER_FLATTEN);
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, &x, &none, NULL, 2);
}

static pl_status op_flatten(ctx *c, int idx)
{
    static const char *const known[] = {"axis", NULL};
    pl_status s;
    int64_t axis;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 1, 1)) || (s = attr_int(c, idx, "axis", 1, &axis)))
        return s;
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    if (axis < 0)
        axis += x->rank;
    if (axis != 1)
        return nerr(c, idx, "axis %lld: prunelab flattens from axis 1 (torch.flatten(x, 1))", (long long)axis);
    return flatten(c, idx, x);
}

static pl_status op_reshape(ctx *c, int idx)
{
    static const char *const known[] = {"allowzero", NULL};
    pl_status s;
    int64_t allowzero, v[8];
    size_t nv;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 2, 2)) ||
        (s = attr_int(c, idx, "allowzero", 0, &allowzero)))
        return s;
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    const Onnx__TensorProto *t = input_const(c, idx, 1, "the shape");
    if (!t || (s = tensor_ints(c, idx, t, "shape", v, 8, &nv)))
        return t ? s : PL_EFORMAT;
    int64_t f = (int64_t)x->c * x->h * x->w;
    int first_ok = nv == 2 && (v[0] == -1 || (v[0] == 0 && !allowzero) || (c->batch > 0 && v[0] == c->batch));
    int second_ok = nv == 2 && (v[1] == f || (v[1] == -1 && v[0] != -1));
    if (!first_ok || !second_ok) {
        char want[160];
        snprintf(want, sizeof want, "[");
        for (size_t i = 0; i < nv; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)v[i]);
        snprintf(want + strlen(want), sizeof want - strlen(want), "]");
        return nerr(c, idx, "reshapes to %s; prunelab reshapes only to [N, -1], [0, -1] or [-1, %lld] (a flatten "
                            "from axis 1)", want, (long long)f);
    }
    return flatten(c, idx, x);
}

static pl_status op_identity(ctx *c, int idx)
{
    static const char *const known[] = {NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 1, 1)))
        return s;
    val *x = input(c, idx, 0);
    if (!x)
        return PL_EFORMAT;
    alias(c, idx, x);
    return PL_OK;
}

static pl_status op_dropout(ctx *c, int idx)
{
    static const char *const known[] = {"ratio", "seed", "is_test", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 1, 3)))
        return s;
    if ((s = legacy_is_test(c, idx, "Dropout", "dropout at inference", "")))
        return s;
    float ratio = 0.5f;
    if (c->opset < 12 && (s = attr_float(c, idx, "ratio", 0.5f, &ratio)))
        return s;
    if (c->opset >= 12 && attr(c->g->node[idx], "ratio"))
        return nerr(c, idx, "attribute 'ratio' is not part of Dropout since opset 12 (it is an input)");
    const Onnx__NodeProto *n = c->g->node[idx];
    if (*in_name(n, 1)) {
        const Onnx__TensorProto *t = input_const(c, idx, 1, "the ratio");
        if (!t || (s = tensor_scalar(c, idx, t, "ratio", &ratio)))
            return t ? s : PL_EFORMAT;
    }
    if (*in_name(n, 2)) {
        const Onnx__TensorProto *t = input_const(c, idx, 2, "training_mode");
        int on = 0;
        if (!t || (s = tensor_bool(c, idx, t, "training_mode", &on)))
            return t ? s : PL_EFORMAT;
        if (on)
            return nerr(c, idx, "training_mode is true (dropout at inference); export the model in eval mode");
    }
    if (!(ratio >= 0 && ratio < 1))
        return nerr(c, idx, "ratio %g is not in [0, 1)", (double)ratio);
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    pl_layer_spec l = new_spec(PL_LAYER_DROPOUT);
    l.p = dec_of_float(ratio);
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, &x, &none, NULL, x->rank);
}

/* Pad with zeros around H and W: remembered on the value and folded into
 * the Conv or AveragePool that reads it. */
static pl_status op_pad(ctx *c, int idx)
{
    static const char *const known[] = {"mode", "pads", "value", NULL};
    static const char *const modes[] = {"constant", NULL};
    pl_status s;
    const Onnx__NodeProto *n = c->g->node[idx];
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, c->opset >= 11 ? 2 : 1, c->opset >= 11 ? 3 : 1)) ||
        (s = attr_str_is(c, idx, "mode", "constant", modes, "prunelab pads with zeros only")))
        return s;
    val *x = input_act(c, idx, 0, 1);
    if (!x)
        return PL_EFORMAT;
    int64_t p[8];
    size_t np = 0;
    float value = 0;
    if (c->opset >= 11) {
        const Onnx__TensorProto *t = input_const(c, idx, 1, "the pads");
        if (!t || (s = tensor_ints(c, idx, t, "pads", p, 8, &np)))
            return t ? s : PL_EFORMAT;
        if (*in_name(n, 2)) {
            const Onnx__TensorProto *v = input_const(c, idx, 2, "the constant value");
            if (!v || (s = tensor_scalar(c, idx, v, "constant value", &value)))
                return v ? s : PL_EFORMAT;
        }
    } else {
        const Onnx__AttributeProto *a = attr(n, "pads");
        if (!a || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) || a->n_ints > 8)
            return nerr(c, idx, "attribute 'pads' is missing or not a list of at most 8 integers");
        np = a->n_ints;
        memcpy(p, a->ints, np * sizeof *p);
        if ((s = attr_float(c, idx, "value", 0, &value)))
            return s;
    }
    if (value != 0)
        return nerr(c, idx, "pads with %g; prunelab pads with zeros only", (double)value);
    if (x->rank != 4 || np != 8)
        return nerr(c, idx, "has %zu pads for a rank-%d input; prunelab pads images [N, C, H, W] (8 pads)", np,
                    x->rank);
    if (p[0] || p[1] || p[4] || p[5] || p[2] != p[6] || p[3] != p[7] || p[2] < 0 || p[3] < 0 || p[2] > 65536 ||
        p[3] > 65536)
        return nerr(c, idx, "pads [%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld]: prunelab pads height and width "
                            "alike on both sides (0 to 65536), never batch or channels", (long long)p[0],
                    (long long)p[1], (long long)p[2], (long long)p[3], (long long)p[4], (long long)p[5],
                    (long long)p[6], (long long)p[7]);
    alias(c, idx, x);
    val *o = output(c, idx);
    o->ph += (int)p[2];
    o->pw += (int)p[3];
    if (o->ph > 65536 || o->pw > 65536)
        return nerr(c, idx, "padding adds up to more than 65536");
    return PL_OK;
}

static pl_status op_constant(ctx *c, int idx)
{
    static const char *const known[] = {"value", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 0, 0)))
        return s;
    const Onnx__AttributeProto *a = attr(c->g->node[idx], "value");
    if (!a || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR) || !a->t)
        return nerr(c, idx, "attribute 'value' (a tensor) is missing; prunelab reads Constant nodes holding a "
                            "tensor");
    val *o = output(c, idx);
    o->kind = V_CONST;
    o->t = a->t;
    return PL_OK;
}

static const char *op_hint(const char *op)
{
    if (!strcmp(op, "Shape") || !strcmp(op, "Gather") || !strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze"))
        return "; in PyTorch, flatten with torch.flatten(x, 1) or nn.Flatten() rather than x.view(x.size(0), -1)";
    if (!strcmp(op, "ReduceMean"))
        return "; in PyTorch, use nn.AdaptiveAvgPool2d(1) and torch.flatten(x, 1)";
    if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax"))
        return "; export the logits, without the softmax";
    return "";
}

static pl_status node(ctx *c, int idx)
{
    const Onnx__NodeProto *n = c->g->node[idx];
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return nerr(c, idx, "operator domain '%.60s' is not supported (prunelab reads the standard ai.onnx "
                            "operators: " SUPPORTED_OPS ")", n->domain);
    if (op_is(n, "Conv"))
        return op_conv(c, idx);
    if (op_is(n, "BatchNormalization"))
        return op_batchnorm(c, idx);
    if (op_is(n, "Relu"))
        return op_simple(c, idx, PL_LAYER_RELU);
    if (op_is(n, "MaxPool") || op_is(n, "AveragePool"))
        return op_pool(c, idx, op_is(n, "MaxPool"));
    if (op_is(n, "GlobalAveragePool"))
        return op_simple(c, idx, PL_LAYER_GLOBAL_AVGPOOL);
    if (op_is(n, "Add"))
        return op_add(c, idx);
    if (op_is(n, "Concat"))
        return op_concat(c, idx);
    if (op_is(n, "Flatten"))
        return op_flatten(c, idx);
    if (op_is(n, "Slice"))
        return op_slice(c, idx);
    if (op_is(n, "Reshape"))
        return op_reshape(c, idx);
    if (op_is(n, "Gemm") || op_is(n, "MatMul"))
        return op_gemm_matmul(c, idx, op_is(n, "Gemm"));
    if (op_is(n, "Identity"))
        return op_identity(c, idx);
    if (op_is(n, "Dropout"))
        return op_dropout(c, idx);
    if (op_is(n, "Pad"))
        return op_pad(c, idx);
    if (op_is(n, "Constant"))
        return op_constant(c, idx);
    return nerr(c, idx, "operator not supported by prunelab (supported: " SUPPORTED_OPS ")%s",
                op_hint(n->op_type ? n->op_type : ""));
}

/* ---- the graph ---- */

/* Registers a tensor name (kind 0 an initializer, 1 a graph input, 2 a
 * node's output); a second definition is an error, except a graph input
 * that names an initializer (files before IR version 4 list both). */
static pl_status define(ctx *c, const char *name, int kind, int producer, int *out)
{
    int v = ht_get(&c->names, name);
    if (v >= 0) {
        val *x = &c->vals[v];
        if (kind == 1 && x->init && !x->graph_input) {
            *out = v;
            return PL_OK;
        }
        return ferr(c, "tensor '%.60s' is defined twice (every tensor has one producer; the file is malformed, "
                       "re-export it)", name);
    }
    PL_ASSERT(c->n_vals < c->cap_vals);
    v = (int)c->n_vals++;
    memset(&c->vals[v], 0, sizeof c->vals[v]);
    c->vals[v].name = name;
    c->vals[v].producer = producer;
    c->vals[v].layer = -1;
    ht_put(&c->names, name, v);
    *out = v;
    return PL_OK;
}

static pl_status graph_input(ctx *c, const Onnx__ValueInfoProto *vi, int v)
{
    const char *name = vi->name ? vi->name : "";
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type ||
        !tp->tensor_type->shape)
        return terr(c, name, 1, "input '%.60s' has no tensor shape; prunelab reads the input shape [N, C, H, W] from the file "
                       "(export with an example input)", name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return terr(c, name, 1, "input '%.60s' has element type %d; prunelab reads float32 images (FLOAT, 1)", name,
                    (int)tt->elem_type);
    size_t r = tt->shape->n_dim;
    int64_t d[4] = {0};
    if (r != 4 && r != 3 && r != 2)
        return terr(c, name, 1, "input '%.60s' has %zu dimensions; prunelab reads images [N, C, H, W], sequences [N, C, L] "
                       "(as [N, C, L, 1]) or vectors [N, features]", name, r);
    for (size_t i = 0; i < r; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[i];
        int known = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[i] = known ? dm->dim_value : -1;
        if (i == 0)
            continue;
        if (!known || d[i] < 1 || d[i] > PL_MAX_ELEMS)
            return terr(c, name, 1, "input '%.60s': dimension %zu is %s; prunelab needs concrete sizes from 1 to 268435456 "
                           "for all but the batch dimension", name, i, known ? "out of range" : "symbolic");
    }
    c->batch = d[0] >= 1 ? d[0] : -1;
    c->in_rank = (int)r;
    c->in_c = (int)d[1];
    c->in_h = r >= 3 ? (int)d[2] : 1;
    c->in_w = r == 4 ? (int)d[3] : 1;
    if ((int64_t)c->in_c * c->in_h > PL_MAX_ELEMS || (int64_t)c->in_c * c->in_h * c->in_w > PL_MAX_ELEMS)
        return terr(c, name, 1, "input '%.60s' is %dx%dx%d, more than 268435456 values per image", name, c->in_c, c->in_h,
                    c->in_w);
    val *x = &c->vals[v];
    x->kind = V_ACT;
    x->layer = -1;
    x->rank = (int)r;
    x->c = c->in_c;
    x->h = c->in_h;
    x->w = c->in_w;
    return PL_OK;
}

/* Graph input v, just read by graph_input (c->in_* its shape), packed
 * after the ones before it (first_v the first; prev_c their channels so
 * far, batch the batch dimension they state): the same rank and the same
 * dimensions but the channels (axis 1). c->in_c becomes the sum. */
static pl_status pack_input(ctx *c, int first_v, int v, int64_t batch, int prev_c)
{
    const val *a = &c->vals[first_v], *x = &c->vals[v];
    char sa[64], sx[64];
    if (x->rank != a->rank || x->h != a->h || x->w != a->w)
        return terr(c, x->name, 1, "graph inputs '%.60s' %s and '%.60s' %s cannot be packed into prunelab's one "
                                   "input (packing joins inputs along the channels, axis 1: the rank and every "
                                   "other dimension must agree)", a->name, shape_text(a, sa, sizeof sa), x->name,
                    shape_text(x, sx, sizeof sx));
    if (batch >= 1 && c->batch >= 1 && batch != c->batch)
        return terr(c, x->name, 1, "graph inputs '%.60s' and '%.60s' state batch sizes %lld and %lld; packed "
                                   "inputs share one batch", a->name, x->name, (long long)batch, (long long)c->batch);
    if (c->batch < 1)
        c->batch = batch;
    if ((int64_t)prev_c + c->in_c > PL_MAX_ELEMS ||
        ((int64_t)prev_c + c->in_c) * c->in_h * c->in_w > PL_MAX_ELEMS)
        return terr(c, x->name, 1, "the packed graph inputs hold more than 268435456 values per image");
    c->in_c += prev_c;
    return PL_OK;
}

/* The graph inputs data_v[0 .. n) packed along the channels into the
 * model input (pack_input): each one becomes a slice layer of its
 * channel range, which the nodes then read; the spec's note says so. */
static pl_status input_slices(ctx *c, const int *data_v, int n)
{
    pl_spec_weights *w = c->wts;
    char sh[64];
    int off = 0;
    val in = c->vals[data_v[0]];
    in.c = c->in_c;
    size_t used = (size_t)snprintf(w->note, sizeof w->note, "graph inputs");
    for (int k = 0; k < n; k++) {
        val *x = &c->vals[data_v[k]];
        used += (size_t)snprintf(w->note + used, used < sizeof w->note ? sizeof w->note - used : 0,
                                 "%s'%.40s' %s", k == 0 ? " " : k + 1 == n ? " and " : ", ", x->name,
                                 shape_text(x, sh, sizeof sh) + 0);
        used = used < sizeof w->note ? used : sizeof w->note;
    }
    used += (size_t)snprintf(w->note + used, used < sizeof w->note ? sizeof w->note - used : 0,
                             " are packed along the channels into input %s (", shape_text(&in, sh, sizeof sh));
    used = used < sizeof w->note ? used : sizeof w->note;
    for (int k = 0; k < n; k++) {
        val *x = &c->vals[data_v[k]];
        int xc = x->c;
        used += (size_t)snprintf(w->note + used, used < sizeof w->note ? sizeof w->note - used : 0,
                                 "%s%.40s: channels %d-%d", k ? ", " : "", x->name, off, off + xc - 1);
        used = used < sizeof w->note ? used : sizeof w->note;
        if (x->consumers > 0) {
            /* a slice layer named after the input */
            pl_model_spec *sp = c->spec;
            size_t li = sp->n_layers;
            PL_ASSERT(li < c->cap_layers);
            pl_layer_spec l = new_spec(PL_LAYER_SLICE);
            l.ch0 = off;
            l.ch1 = off + xc;
            l.n_in = 1;
            l.in[0] = -1;
            char base[64], name[64];
            sanitize(x->name, strlen(x->name), base);
            if (!base[0] || !strcmp(base, "input"))
                snprintf(base, sizeof base, "slice%d", c->type_count[PL_LAYER_SLICE] + 1);
            snprintf(name, sizeof name, "%s", base);
            for (int j = 2; ht_get(&c->layer_names, name) >= 0; j++)
                snprintf(name, sizeof name, "%.55s_%d", base, j);
            if (!(l.name = strdup(name)))
                return oom(c);
            c->type_count[PL_LAYER_SLICE]++;
            sp->layers[li] = l;
            sp->n_layers = li + 1;
            c->wts->n = li + 1;
            ht_put(&c->layer_names, sp->layers[li].name, (int)li);
            x->layer = (int)li; /* still the file's shape: rank, c, h, w */
        }
        off += xc;
    }
    if (used < sizeof w->note)
        snprintf(w->note + used, sizeof w->note - used, ")");
    /* the values the nodes read: each input as its slice's output */
    return PL_OK;
}

/* Marks the nodes the graph output depends on (an explicit stack: no
 * recursion on file data). */
static pl_status mark_live(ctx *c, int out_v)
{
    const Onnx__GraphProto *g = c->g;
    int *stack = malloc((g->n_node + 1) * sizeof *stack);
    if (!stack)
        return oom(c);
    size_t sp = 0;
    int p = c->vals[out_v].producer;
    if (p >= 0) {
        c->live[p] = 1;
        stack[sp++] = p;
    }
    while (sp) {
        const Onnx__NodeProto *n = g->node[stack[--sp]];
        for (size_t k = 0; k < n->n_input; k++) {
            int v = n->input[k] && *n->input[k] ? ht_get(&c->names, n->input[k]) : -1;
            int q = v >= 0 ? c->vals[v].producer : -1;
            if (q >= 0 && !c->live[q]) {
                c->live[q] = 1;
                stack[sp++] = q;
            }
        }
    }
    free(stack);
    return PL_OK;
}

static pl_status convert(ctx *c, const Onnx__ModelProto *mp)
{
    pl_status s;
    /* the opset of the default domain */
    c->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version)
            c->opset = o->version;
    }
    if (c->opset < 0) {
        /* a graph of another domain's operators only: name the first of them */
        const Onnx__GraphProto *g = mp->graph;
        for (size_t i = 0; g && i < g->n_node && i < MAX_NODES; i++) {
            const Onnx__NodeProto *n = g->node[i];
            if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) {
                c->g = g;
                c->opset = 0;
                return nerr(c, (int)i, "operator domain '%.60s' is not supported and the file names no opset of "
                                       "the standard operators (prunelab reads ai.onnx: " SUPPORTED_OPS ")",
                            n->domain);
            }
        }
        return ferr(c, "no opset for the standard operators (opset_import names no ai.onnx version; re-export "
                       "the model)");
    }
    if (c->opset < OPSET_MIN || c->opset > OPSET_MAX)
        return ferr(c, "opset %lld is not supported (prunelab reads opsets %d to %d; export with "
                       "opset_version=13)", (long long)c->opset, OPSET_MIN, OPSET_MAX);
    const Onnx__GraphProto *g = c->g = mp->graph;
    if (!g)
        return ferr(c, "the model has no graph (is it an ONNX model?)");
    if (g->n_node == 0)
        return ferr(c, "the graph has no nodes");
    if (g->n_node > MAX_NODES)
        return ferr(c, "the graph has %zu nodes (prunelab reads at most %d)", g->n_node, MAX_NODES);
    if (g->n_sparse_initializer)
        return ferr(c, "the graph has sparse initializers, which prunelab does not read (save dense tensors)");
    size_t nv = g->n_initializer + g->n_input;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (n->n_input > MAX_NODE_IO || n->n_output > MAX_NODE_IO)
            return ferr(c, "node %zu has %zu inputs and %zu outputs (at most %d each)", i, n->n_input, n->n_output,
                        MAX_NODE_IO);
        nv += n->n_output;
    }
    if (!(c->vals = calloc(nv + 1, sizeof *c->vals)) || ht_init(&c->names, nv + 1) ||
        !(c->live = calloc(g->n_node, 1)))
        return oom(c);
    c->cap_vals = nv + 1;
    int v;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const char *name = g->initializer[i]->name ? g->initializer[i]->name : "";
        if (!*name)
            return ferr(c, "initializer %zu has no name", i);
        if ((s = define(c, name, 0, -1, &v)))
            return s;
        c->vals[v].init = 1;
        c->vals[v].kind = V_CONST;
        c->vals[v].t = g->initializer[i];
    }
    int in_v = -1, n_in = 0;
    int data_v[PL_MAX_INPUTS];
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = g->input[i]->name ? g->input[i]->name : "";
        if (!*name)
            return ferr(c, "graph input %zu has no name", i);
        if ((s = define(c, name, 1, -1, &v)))
            return s;
        c->vals[v].graph_input = 1;
        if (c->vals[v].init)
            continue;
        if (n_in == PL_MAX_INPUTS)
            return terr(c, name, 1, "the graph has more than %d data inputs; prunelab packs at most %d along the "
                                    "channels into its one input", PL_MAX_INPUTS, PL_MAX_INPUTS);
        if (n_in == 0)
            in_v = v;
        data_v[n_in++] = v;
        int64_t batch = c->batch;
        int prev_c = c->in_c;
        if ((s = graph_input(c, g->input[i], v)))
            return s;
        if (n_in > 1 && (s = pack_input(c, data_v[0], v, batch, prev_c)))
            return s;
    }
    if (in_v < 0)
        return terr(c, g->n_output && g->output[0]->name ? g->output[0]->name : NULL, 0,
                    "the graph has no input that is not an initializer; prunelab models read one image tensor");
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++) {
            const char *name = g->node[i]->output[k];
            if (name && *name && (s = define(c, name, 2, (int)i, &v)))
                return s;
        }
    if (g->n_output != 1)
        return terr(c, g->n_output > 1 && g->output[1]->name ? g->output[1]->name : NULL, 0,
                    "the graph has %zu outputs; prunelab models have one (a second output such as MaxPool's "
                    "indices or BatchNormalization's training statistics is not computed)", g->n_output);
    const char *oname = g->output[0]->name ? g->output[0]->name : "";
    int out_v = *oname ? ht_get(&c->names, oname) : -1;
    if (out_v < 0)
        return ferr(c, "the graph output '%.60s' is computed by no node", oname);
    c->vals[out_v].graph_output = 1;
    c->vals[out_v].consumers++;
    if ((s = mark_live(c, out_v)))
        return s;
    size_t live = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        if (!c->live[i])
            continue;
        live++;
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            int u = n->input[k] && *n->input[k] ? ht_get(&c->names, n->input[k]) : -1;
            if (u >= 0)
                c->vals[u].consumers++;
        }
    }
    /* the layers */
    pl_model_spec *sp = c->spec;
    c->cap_layers = live + (size_t)n_in;
    if (!(sp->layers = calloc(c->cap_layers + 1, sizeof *sp->layers)) ||
        !(c->wts->layers = calloc(c->cap_layers + 1, sizeof *c->wts->layers)) ||
        !(c->from_matmul = calloc(c->cap_layers + 1, 1)) || ht_init(&c->layer_names, c->cap_layers + 1))
        return oom(c);
    if (n_in > 1 && (s = input_slices(c, data_v, n_in)))
        return s;
    for (size_t i = 0; i < g->n_node; i++)
        if (c->live[i] && (s = node(c, (int)i)))
            return s;
    /* the output: a layer's, a vector */
    const val *o = &c->vals[out_v];
    if (o->kind != V_ACT || o->layer < 0)
        return terr(c, oname, 0, "the graph output '%.60s' is %s; prunelab needs it computed by the network's layers", oname,
                    o->kind == V_CONST ? "a constant" : "the input itself");
    if ((size_t)o->layer + 1 != sp->n_layers) /* every layer is an ancestor of the output */
        return ferr(c, "the graph output '%.60s' is not computed last (the file is inconsistent; re-export it)",
                    oname);
    if (o->ph || o->pw)
        return ferr(c, "the graph output '%.60s' is a Pad node's; prunelab folds zero padding only into the Conv "
                       "or AveragePool that follows it", oname);
    /* an output that is not [N, classes] (a Conv's [N, C, H, W]) is the
     * model's output flattened: C*H*W values per image, in NCHW order */
    const Onnx__TypeProto *tp = g->output[0]->type;
    if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type && tp->tensor_type->shape) {
        const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
        int want[4] = {0, o->c, o->h, o->w};
        if (sh->n_dim != (size_t)o->rank)
            return ferr(c, "the graph output '%.60s' is declared with %zu dimensions but the layers compute %d (the "
                           "file is inconsistent; re-export it)", oname, sh->n_dim, o->rank);
        for (size_t i = 1; i < sh->n_dim && i < 4; i++) {
            const Onnx__TensorShapeProto__Dimension *di = sh->dim[i];
            if (di->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && di->dim_value != want[i])
                return ferr(c, "the graph output '%.60s' is declared with %lld in dimension %zu but the layers "
                               "compute %d (the file is inconsistent; re-export it)", oname,
                            (long long)di->dim_value, i, want[i]);
        }
    }
    sp->in_c = c->in_c;
    sp->in_h = c->in_h;
    sp->in_w = c->in_w;
    sp->classes = o->c * o->h * o->w; /* the shape rule keeps this below PL_MAX_ELEMS */
    return PL_OK;
}

/* "sha256:..." over every tensor of w, layer by layer, sizes included. */
static void weights_digest(pl_spec_weights *w)
{
    pl__sha256 h;
    pl__sha256_init(&h);
    for (size_t i = 0; i < w->n; i++) {
        const pl_layer_init *l = &w->layers[i];
        const float *t[4] = {l->w, l->b, l->mean, l->var};
        int64_t n[4] = {l->nw, l->nb, l->nstat, l->nstat};
        for (int k = 0; k < 4; k++) {
            uint8_t le[8];
            uint64_t u = (uint64_t)(t[k] ? n[k] : -1);
            for (int b = 0; b < 8; b++)
                le[b] = (uint8_t)(u >> (8 * b));
            pl__sha256_update(&h, le, 8);
            for (int64_t j = 0; t[k] && j < n[k]; j++) {
                uint32_t f;
                memcpy(&f, &t[k][j], 4);
                uint8_t b4[4] = {(uint8_t)f, (uint8_t)(f >> 8), (uint8_t)(f >> 16), (uint8_t)(f >> 24)};
                pl__sha256_update(&h, b4, 4);
            }
        }
    }
    char hex[65];
    pl__sha256_hex(&h, hex);
    snprintf(w->digest, sizeof w->digest, "sha256:%s", hex);
}

void pl_spec_weights_free(pl_spec_weights *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        init_free(&w->layers[i]);
    free(w->layers);
    free(w);
}

/* The model's name: the file's name without folders and ".onnx". */
static char *model_name(const char *what)
{
    const char *b = strrchr(what, '/');
    b = b ? b + 1 : what;
    size_t n = strlen(b);
    if (n > 5 && pl_onnx_is_model_path(b))
        n -= 5;
    if (n == 0) {
        b = "onnx_model";
        n = strlen(b);
    }
    return strndup(b, n < 63 ? n : 63);
}

static pl_status import(const Onnx__ModelProto *mp, const char *what, pl_model_spec **out, pl_error *err)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.file = what;
    c.err = err;
    c.suffix = 10;
    pl_model_spec *sp = calloc(1, sizeof *sp);
    pl_spec_weights *w = calloc(1, sizeof *w);
    pl_status s = PL_OK;
    c.spec = sp;
    c.wts = w;
    if (!sp || !w || !(sp->file = strdup(what)) || !(sp->name = model_name(what)))
        s = oom(&c);
    if (!s) {
        /* every float copied comes from the file; a shared tensor may be
         * copied a few times, never without bound */
        size_t len = onnx__model_proto__get_packed_size(mp);
        c.budget = (int64_t)(len < (size_t)PL_MAX_ELEMS ? len : (size_t)PL_MAX_ELEMS) + 4096;
        s = convert(&c, mp);
    }
    if (!s) {
        weights_digest(w);
        sp->weights = w;
        w = NULL;
    }
    free(c.vals);
    free(c.live);
    free(c.from_matmul);
    ht_free(&c.names);
    ht_free(&c.layer_names);
    pl_spec_weights_free(w);
    if (s) {
        pl_model_spec_free(sp);
        return s;
    }
    *out = sp;
    return PL_OK;
}

int pl_onnx_is_model_path(const char *path)
{
    size_t n = strlen(path);
    const char *e = ".onnx";
    if (n < 5)
        return 0;
    for (size_t i = 0; i < 5; i++) {
        char ch = path[n - 5 + i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != e[i])
            return 0;
    }
    return 1;
}

pl_status pl_onnx_spec_from_bytes(const uint8_t *data, size_t len, const char *what, pl_model_spec **out,
                                  pl_error *err)
{
    *out = NULL;
    Onnx__ModelProto *mp;
    pl_status s = pl_onnx_unpack(data, len, what, &mp, err);
    if (s)
        return s;
    s = import(mp, what, out, err);
    pl_onnx_free(mp);
    return s;
}

pl_status pl_onnx_spec_load(const char *path, pl_model_spec **out, pl_error *err)
{
    *out = NULL;
    Onnx__ModelProto *mp;
    pl_status s = pl_onnx_read(path, &mp, err);
    if (s)
        return s;
    s = import(mp, path, out, err);
    pl_onnx_free(mp);
    return s;
}

pl_status pl_spec_weights_apply(const pl_spec_weights *w, pl_model *m, const char *file, pl_error *err)
{
    if (w->n != (size_t)m->n_layers)
        return pl_error_set(err, PL_EFORMAT, "%s: the file gives weights for %zu layers, the model has %d", file,
                            w->n, m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        const pl_layer_init *li = &w->layers[i];
        int bn = l->type == PL_LAYER_BATCHNORM2D;
        if (li->nw != l->nw || li->nb != l->nb || (l->nw && !li->w) || (l->nb && !li->b) ||
            (bn && (li->nstat != l->in_c || !li->mean || !li->var)) || (!bn && li->nstat))
            return pl_error_set(err, PL_EFORMAT,
                                "%s: layer %s: the file gives %lld weights, %lld biases and %lld statistics; the "
                                "layer has %lld, %lld and %d (the import is inconsistent; please report this)",
                                file, l->name, (long long)li->nw, (long long)li->nb, (long long)li->nstat,
                                (long long)l->nw, (long long)l->nb, bn ? l->in_c : 0);
    }
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        const pl_layer_init *li = &w->layers[i];
        if (l->nw)
            memcpy(l->w, li->w, (size_t)l->nw * sizeof *l->w);
        if (l->nb)
            memcpy(l->b, li->b, (size_t)l->nb * sizeof *l->b);
        if (li->nstat) {
            memcpy(l->run_mean, li->mean, (size_t)li->nstat * sizeof *l->run_mean);
            memcpy(l->run_var, li->var, (size_t)li->nstat * sizeof *l->run_var);
        }
    }
    return PL_OK;
}
