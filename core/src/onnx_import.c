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
#include "onnx_import_internal.h"

#include "sha256.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names -> values: the hash table ---------------------------------------------- */

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

int ht_get(const htab *h, const char *key)
{
    size_t i = ht_slot(h, key);
    return h->keys[i] ? h->vals[i] : -1;
}

void ht_put(htab *h, const char *key, int v)
{
    size_t i = ht_slot(h, key);
    h->keys[i] = key;
    h->vals[i] = v;
}


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
pl_status nerr(ctx *c, int idx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
pl_status nerr(ctx *c, int idx, const char *fmt, ...)
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

pl_status oom(ctx *c)
{
    return pl_error_set(c->err, PL_ENOMEM, "%s: out of memory importing the ONNX model", c->file);
}

int op_is(const Onnx__NodeProto *n, const char *op) { return n->op_type && !strcmp(n->op_type, op); }

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
                char ops[SUPPORTED_OPS_CAP];
                c->g = g;
                c->opset = 0;
                return nerr(c, (int)i, "operator domain '%.60s' is not supported and the file names no opset of "
                                       "the standard operators (prunelab reads ai.onnx: %s)",
                            n->domain, supported_ops(ops, sizeof ops));
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
    for (int k = 0; k < n_in; k++) /* as with one input: the output must be computed */
        if (data_v[k] == out_v)
            return terr(c, oname, 0, "the graph output '%.60s' is the input itself; prunelab needs it computed by "
                                     "the network's layers", oname);
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
