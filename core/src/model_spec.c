/*
 * model_spec.c — model files (configs/models/NAME.yaml) -> pl_model_spec.
 *
 *     name: simple_cnn
 *     input: [1, 28, 28]      # C, H, W
 *     classes: 10
 *     layers:
 *       - {name: conv1, type: conv2d, out: 4, kernel: 3, padding: 1}
 *       - {type: relu}
 *
 * Only the values are checked here; shapes are inferred by the model
 * builder. Errors are "file:line:col: message", status PL_ECONFIG.
 */
#include "config.h"
#include "onnx_import.h"
#include "scalar.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pl_status at_node(pl_error *e, const pl_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static pl_status at_node(pl_error *e, const pl_node *n, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pl_error_set(e, PL_ECONFIG, "%s:%d:%d: %s", n->file, n->line, n->col, msg);
}

static pl_status oom(pl_error *e)
{
    return pl_error_set(e, PL_ENOMEM, "out of memory while reading a model file");
}

static const char *what(const pl_node *n)
{
    if (n->type == PL_NODE_MAP)
        return "a map";
    if (n->type == PL_NODE_SEQ)
        return "a list";
    return n->scalar;
}

/* Keys: unknown -> error with a suggestion, at the key's position. */
static pl_status check_keys(const pl_node *m, const char *where, const char *const *keys, size_t n, pl_error *e)
{
    for (size_t i = 0; i < m->n; i++) {
        size_t j = 0;
        while (j < n && strcmp(m->keys[i], keys[j]))
            j++;
        if (j < n)
            continue;
        const char *s = pl_suggest(m->keys[i], keys, n);
        char hint[300];
        if (s) {
            snprintf(hint, sizeof hint, "did you mean '%s'?", s);
        } else {
            size_t k = (size_t)snprintf(hint, sizeof hint, "valid keys:");
            for (j = 0; j < n && k < sizeof hint; j++)
                k += (size_t)snprintf(hint + k, sizeof hint - k, "%s %s", j ? "," : "", keys[j]);
        }
        return pl_error_set(e, PL_ECONFIG, "%s:%d:%d: unknown key '%.80s' %s (%s)", m->file, m->key_line[i],
                            m->key_col[i], m->keys[i], where, hint);
    }
    return PL_OK;
}

static pl_status get_int(const pl_node *n, const char *path, int lo, int *out, pl_error *e)
{
    if (n->type != PL_NODE_SCALAR || n->quoted || !*n->scalar)
        return at_node(e, n, "%s: expected an integer (got %s)", path, n->type == PL_NODE_SCALAR && !*n->scalar
                                                                           ? "nothing" : what(n));
    const char *s = n->scalar;
    long long v = 0;
    int k = pl__int_word(s, &v);
    if (!k)
        return at_node(e, n, "%s: expected an integer (got '%.60s')", path, s);
    if (k < 0 || v > INT_MAX || v < lo)
        return at_node(e, n, "%s must be >= %d (got %.40s)", path, lo, s);
    *out = (int)v;
    return PL_OK;
}

static pl_status get_num(const pl_node *n, const char *path, double *out, pl_error *e)
{
    const char *s = n->type == PL_NODE_SCALAR ? n->scalar : "";
    double v = 0;
    if (n->type != PL_NODE_SCALAR || n->quoted || !pl__num_word(s, &v) || !isfinite(v))
        return at_node(e, n, "%s: expected a finite number (got %s)", path, n->type == PL_NODE_SCALAR && !*s
                                                                              ? "nothing" : what(n));
    *out = v;
    return PL_OK;
}

static pl_status get_bool(const pl_node *n, const char *path, int *out, pl_error *e)
{
    if (n->type == PL_NODE_SCALAR && !n->quoted && pl__bool_word(n->scalar, PL__BOOL_YAML, out))
        return PL_OK;
    return at_node(e, n, "%s: expected true/false (got %s)", path, what(n));
}

/* An int or an [a, b] pair. */
static pl_status get_pair(const pl_node *n, const char *path, int lo, int *a, int *b, pl_error *e)
{
    if (n->type == PL_NODE_SEQ) {
        if (n->n != 2)
            return at_node(e, n, "%s: expected an integer or a pair [h, w] (got a list of %zu)", path, n->n);
        pl_status st = get_int(n->items[0], path, lo, a, e);
        return st ? st : get_int(n->items[1], path, lo, b, e);
    }
    pl_status st = get_int(n, path, lo, a, e);
    *b = *a;
    return st;
}

static const char *const layer_types[] = {"conv2d", "linear", "maxpool2d", "avgpool2d",
                                          "relu", "flatten", "batchnorm2d", "dropout",
                                          "add", "concat", "global_avgpool", "slice"};
#define N_LAYER_TYPES (sizeof layer_types / sizeof layer_types[0])
_Static_assert(N_LAYER_TYPES == PL_LAYER_SLICE, "layer_types must list every pl_layer_type");
#define TYPE_LIST "conv2d, linear, maxpool2d, avgpool2d, relu, flatten, batchnorm2d, dropout, add, " \
                  "concat, global_avgpool or slice"

static const char *const layer_keys[] = {"name", "type", "out", "kernel", "stride", "padding",
                                         "bias", "p", "eps", "momentum", "groups", "inputs",
                                         "dilation", "count_include_pad", "channels"};
#define N_LAYER_KEYS (sizeof layer_keys / sizeof layer_keys[0])
_Static_assert(N_LAYER_KEYS == 15, "keys_for's bits follow layer_keys one for one");

/* Which keys a layer type accepts (bit i = layer_keys[i]). */
static unsigned keys_for(pl_layer_type t)
{
    enum { NAME = 1, TYPE = 2, OUT = 4, KERNEL = 8, STRIDE = 16, PADDING = 32, BIAS = 64, P = 128,
           EPS = 256, MOM = 512, GROUPS = 1024, INPUTS = 2048, DILATION = 4096, CIP = 8192,
           CHANNELS = 16384 };
    switch (t) {
    case PL_LAYER_CONV2D: return NAME | TYPE | INPUTS | OUT | KERNEL | STRIDE | PADDING | BIAS | GROUPS | DILATION;
    case PL_LAYER_LINEAR: return NAME | TYPE | INPUTS | OUT | BIAS;
    case PL_LAYER_MAXPOOL2D: return NAME | TYPE | INPUTS | KERNEL | STRIDE | PADDING | DILATION;
    case PL_LAYER_AVGPOOL2D: return NAME | TYPE | INPUTS | KERNEL | STRIDE | PADDING | CIP;
    case PL_LAYER_DROPOUT: return NAME | TYPE | INPUTS | P;
    case PL_LAYER_BATCHNORM2D: return NAME | TYPE | INPUTS | EPS | MOM;
    case PL_LAYER_SLICE: return NAME | TYPE | INPUTS | CHANNELS;
    default: return NAME | TYPE | INPUTS;
    }
}

static int name_valid(const char *s) { return pl__name_ok(s, 1, "", 0); }

static pl_status dec_layer(const pl_node *m, size_t idx, pl_model_spec *ms, int *type_count, pl_error *e)
{
    pl_layer_spec *l = &ms->layers[idx];
    char path[64];
    pl_status st;
    snprintf(path, sizeof path, "layers[%zu]", idx);
    if (m->type != PL_NODE_MAP)
        return at_node(e, m, "%s: expected a map {type: ..., ...} (got %s)", path, what(m));
    if ((st = check_keys(m, "in a layer", layer_keys, N_LAYER_KEYS, e)))
        return st;
    l->line = m->line;
    l->col = m->col;
    const pl_node *t = pl_node_get(m, "type");
    if (!t)
        return at_node(e, m, "%s: missing required key 'type' (" TYPE_LIST ")", path);
    size_t ti = 0;
    while (ti < N_LAYER_TYPES && (t->type != PL_NODE_SCALAR || strcmp(t->scalar, layer_types[ti])))
        ti++;
    if (ti == N_LAYER_TYPES) {
        const char *s = t->type == PL_NODE_SCALAR ? pl_suggest(t->scalar, layer_types, N_LAYER_TYPES) : NULL;
        if (s)
            return at_node(e, t, "%s: unknown layer type '%.60s' (did you mean '%s'?)", path, what(t), s);
        return at_node(e, t, "%s: unknown layer type '%.60s' (" TYPE_LIST ")", path, what(t));
    }
    l->type = (pl_layer_type)(ti + 1);
    type_count[ti]++;
    unsigned ok = keys_for(l->type);
    for (size_t i = 0; i < m->n; i++) {
        size_t k = 0;
        while (k < N_LAYER_KEYS && strcmp(m->keys[i], layer_keys[k]))
            k++;
        PL_ASSERT(k < N_LAYER_KEYS); /* check_keys let only these through */
        if (!(ok & (1u << k)))
            return pl_error_set(e, PL_ECONFIG, "%s:%d:%d: key '%s' does not apply to %s layers", m->file,
                                m->key_line[i], m->key_col[i], m->keys[i], layer_types[ti]);
    }

    const pl_node *v;
    if ((v = pl_node_get(m, "name"))) {
        if (v->type != PL_NODE_SCALAR || !name_valid(v->scalar))
            return at_node(e, v, "%s: layer name '%.60s' must match [A-Za-z0-9_]+", path, what(v));
        if (!strcmp(v->scalar, "input"))
            return at_node(e, v, "%s: 'input' names the model's input in inputs: lists; give the layer "
                                 "another name", path);
        l->name = strdup(v->scalar);
    } else {
        char buf[48];
        snprintf(buf, sizeof buf, "%s%d", layer_types[ti], type_count[ti]);
        l->name = strdup(buf);
    }
    if (!l->name)
        return oom(e);
    snprintf(path, sizeof path, "%.40s", l->name);

    int is_conv = l->type == PL_LAYER_CONV2D, is_pool = l->type == PL_LAYER_MAXPOOL2D ||
                                                       l->type == PL_LAYER_AVGPOOL2D;
    char p[96];
    l->bias = 1;
    if (is_conv || l->type == PL_LAYER_LINEAR) {
        snprintf(p, sizeof p, "%s.out", path);
        if (!(v = pl_node_get(m, "out")))
            return at_node(e, m, "%s: missing required key 'out' (%s)", path,
                           is_conv ? "output channels" : "output features");
        if ((st = get_int(v, p, 1, &l->out, e)))
            return st;
        if ((v = pl_node_get(m, "bias"))) {
            snprintf(p, sizeof p, "%s.bias", path);
            if ((st = get_bool(v, p, &l->bias, e)))
                return st;
        }
    }
    if (is_conv || is_pool) {
        snprintf(p, sizeof p, "%s.kernel", path);
        if (!(v = pl_node_get(m, "kernel")))
            return at_node(e, m, "%s: missing required key 'kernel' (an integer or [h, w])", path);
        if ((st = get_pair(v, p, 1, &l->kh, &l->kw, e)))
            return st;
        l->sh = is_conv ? 1 : l->kh;
        l->sw = is_conv ? 1 : l->kw;
        if ((v = pl_node_get(m, "stride"))) {
            snprintf(p, sizeof p, "%s.stride", path);
            if ((st = get_pair(v, p, 1, &l->sh, &l->sw, e)))
                return st;
        }
        if ((v = pl_node_get(m, "padding"))) {
            snprintf(p, sizeof p, "%s.padding", path);
            if (v->type == PL_NODE_SEQ && v->n == 4) { /* [top, left, bottom, right], as ONNX's pads */
                int b, r;
                if ((st = get_int(v->items[0], p, 0, &l->ph, e)) || (st = get_int(v->items[1], p, 0, &l->pw, e)) ||
                    (st = get_int(v->items[2], p, 0, &b, e)) || (st = get_int(v->items[3], p, 0, &r, e)))
                    return st;
                if (l->ph > 65536 || l->pw > 65536 || b > 65536 || r > 65536)
                    return at_node(e, v, "%s: each padding is at most 65536", p);
                l->pad_xb = b - l->ph;
                l->pad_xr = r - l->pw;
            } else if (v->type == PL_NODE_SEQ && v->n != 2) {
                return at_node(e, v, "%s: expected an integer, [h, w] or [top, left, bottom, right] (got a list of "
                                     "%zu)", p, v->n);
            } else if ((st = get_pair(v, p, 0, &l->ph, &l->pw, e))) {
                return st;
            }
        }
        if ((v = pl_node_get(m, "dilation"))) {
            snprintf(p, sizeof p, "%s.dilation", path);
            if ((st = get_pair(v, p, 1, &l->dil_h, &l->dil_w, e)))
                return st;
            if (l->dil_h > 65536 || l->dil_w > 65536)
                return at_node(e, v, "%s: at most 65536", p);
            l->dil_h = l->dil_h > 1 ? l->dil_h : 0;
            l->dil_w = l->dil_w > 1 ? l->dil_w : 0;
        }
        if ((v = pl_node_get(m, "count_include_pad"))) {
            int cip;
            snprintf(p, sizeof p, "%s.count_include_pad", path);
            if ((st = get_bool(v, p, &cip, e)))
                return st;
            l->excl_pad = !cip && pl_layer_padded(l->ph, l->pw, l->pad_xb, l->pad_xr);
        }
    }
    if (l->type == PL_LAYER_SLICE) {
        /* channels: [start, end], half-open; the end is checked against the
         * input's channels when the model is built */
        snprintf(p, sizeof p, "%s.channels", path);
        if (!(v = pl_node_get(m, "channels")))
            return at_node(e, m, "%s: missing required key 'channels' ([start, end]: the input channels start to "
                                 "end - 1)", path);
        if (v->type != PL_NODE_SEQ || v->n != 2)
            return at_node(e, v, "%s: expected [start, end] (got %s)", p, what(v));
        if ((st = get_int(v->items[0], p, 0, &l->ch0, e)) || (st = get_int(v->items[1], p, 1, &l->ch1, e)))
            return st;
        if (l->ch0 >= l->ch1)
            return at_node(e, v, "%s: start %d is not below end %d (the range is half-open: [0, 3] takes channels "
                                 "0, 1 and 2)", p, l->ch0, l->ch1);
    }
    l->groups = 1;
    if ((v = pl_node_get(m, "groups"))) {
        snprintf(p, sizeof p, "%s.groups", path);
        if ((st = get_int(v, p, 1, &l->groups, e)))
            return st;
        if (l->out % l->groups)
            return at_node(e, v, "%s: %d groups do not divide the %d output channels (groups must divide "
                                 "both the input and the output channels)", p, l->groups, l->out);
    }
    l->p = 0.5;
    if ((v = pl_node_get(m, "p"))) {
        snprintf(p, sizeof p, "%s.p", path);
        if ((st = get_num(v, p, &l->p, e)))
            return st;
        if (l->p < 0 || l->p >= 1)
            return at_node(e, v, "%s must be in [0, 1) (got %g)", p, l->p);
    }
    l->eps = 1e-5;
    l->momentum = 0.1;
    if ((v = pl_node_get(m, "eps"))) {
        snprintf(p, sizeof p, "%s.eps", path);
        if ((st = get_num(v, p, &l->eps, e)))
            return st;
        if (l->eps <= 0)
            return at_node(e, v, "%s must be > 0 (got %g)", p, l->eps);
    }
    if ((v = pl_node_get(m, "momentum"))) {
        snprintf(p, sizeof p, "%s.momentum", path);
        if ((st = get_num(v, p, &l->momentum, e)))
            return st;
        if (l->momentum < 0 || l->momentum > 1)
            return at_node(e, v, "%s must be in [0, 1] (got %g)", p, l->momentum);
    }
    for (size_t i = 0; i < idx; i++)
        if (!strcmp(ms->layers[i].name, l->name))
            return at_node(e, m, "duplicate layer name '%s' (first at line %d)", l->name, ms->layers[i].line);
    return PL_OK;
}

/* One entry of layer idx's inputs: -1 for the model input, else the index
 * of an earlier layer. */
static pl_status resolve_one(const pl_node *n, size_t idx, const pl_model_spec *ms, int *out, pl_error *e)
{
    const pl_layer_spec *l = &ms->layers[idx];
    if (n->type != PL_NODE_SCALAR || !*n->scalar)
        return at_node(e, n, "%s.inputs: expected a layer name or 'input' (got %s)", l->name,
                       n->type == PL_NODE_SCALAR ? "nothing" : what(n));
    if (!strcmp(n->scalar, "input")) {
        *out = -1;
        return PL_OK;
    }
    for (size_t j = 0; j < ms->n_layers; j++) {
        if (strcmp(ms->layers[j].name, n->scalar))
            continue;
        if (j == idx)
            return at_node(e, n, "%s.inputs: layer %s cannot read its own output (list earlier layers or "
                                 "'input')", l->name, l->name);
        if (j > idx)
            return at_node(e, n, "%s.inputs: '%s' comes later in the file (line %d); a layer reads only "
                                 "layers above it, so move it up", l->name, n->scalar, ms->layers[j].line);
        *out = (int)j;
        return PL_OK;
    }
    const char **names = malloc((idx + 1) * sizeof *names);
    if (!names)
        return oom(e);
    for (size_t j = 0; j < idx; j++)
        names[j] = ms->layers[j].name;
    names[idx] = "input";
    const char *sug = pl_suggest(n->scalar, names, idx + 1);
    pl_status st;
    if (sug)
        st = at_node(e, n, "%s.inputs: unknown layer '%.60s' (did you mean '%s'?)", l->name, n->scalar, sug);
    else
        st = at_node(e, n, "%s.inputs: unknown layer '%.60s' (name an earlier layer or 'input')", l->name,
                     n->scalar);
    free(names);
    return st;
}

/* Resolves every `inputs:` list to layer indices and checks the graph:
 * add and concat read at least two layers, other layers at most one, and
 * every layer's output but the last one's is read by some later layer. */
static pl_status resolve_inputs(const pl_node *layers, pl_model_spec *ms, pl_error *e)
{
    pl_status st;
    for (size_t i = 0; i < ms->n_layers; i++) {
        pl_layer_spec *l = &ms->layers[i];
        const pl_node *m = layers->items[i];
        const pl_node *v = pl_node_get(m, "inputs");
        int multi = l->type == PL_LAYER_ADD || l->type == PL_LAYER_CONCAT;
        if (!v) {
            if (multi)
                return at_node(e, m, "%s: missing required key 'inputs' (%s reads at least two layers: "
                                     "inputs: [a, b])", l->name, l->type == PL_LAYER_ADD ? "add" : "concat");
            continue;
        }
        if (v->type != PL_NODE_SEQ || v->n == 0)
            return at_node(e, v, "%s.inputs: expected a non-empty list of layer names, e.g. [conv1, input]",
                           l->name);
        if (multi && v->n < 2)
            return at_node(e, v, "%s.inputs: %s needs at least two inputs (got 1)", l->name,
                           l->type == PL_LAYER_ADD ? "add" : "concat");
        if (!multi && v->n > 1)
            return at_node(e, v, "%s.inputs: a %s layer reads one input (got %zu; only add and concat read "
                                 "several)", l->name, layer_types[l->type - 1], v->n);
        if (v->n > PL_MAX_INPUTS)
            return at_node(e, v, "%s.inputs: %zu inputs (at most %d)", l->name, v->n, PL_MAX_INPUTS);
        for (size_t k = 0; k < v->n; k++) {
            if ((st = resolve_one(v->items[k], i, ms, &l->in[k], e)))
                return st;
            l->in_line[k] = v->items[k]->line;
            l->in_col[k] = v->items[k]->col;
        }
        l->n_in = (int)v->n;
    }
    /* every output but the last feeds a later layer */
    for (size_t j = 0; j + 1 < ms->n_layers; j++) {
        int used = 0;
        for (size_t i = j + 1; i < ms->n_layers && !used; i++) {
            const pl_layer_spec *l = &ms->layers[i];
            if (!l->n_in)
                used = i == j + 1;
            for (int k = 0; k < l->n_in; k++)
                used |= l->in[k] == (int)j;
        }
        if (!used)
            return at_node(e, layers->items[j], "the output of layer %s is never used (list it in a later "
                           "layer's inputs:, or remove the layer)", ms->layers[j].name);
    }
    return PL_OK;
}

void pl_model_spec_free(pl_model_spec *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_layers; i++)
        free(m->layers[i].name);
    free(m->layers);
    free(m->name);
    free(m->file);
    pl_spec_weights_free(m->weights);
    free(m);
}

static pl_status dec_model(const pl_node *root, pl_model_spec *ms, pl_error *e)
{
    static const char *const top[] = {"name", "input", "classes", "layers"};
    pl_status st;
    const pl_node *v;
    if ((st = check_keys(root, "in a model file", top, 4, e)))
        return st;
    if (!(v = pl_node_get(root, "name")))
        return at_node(e, root, "missing required key 'name' (the model's name)");
    if (v->type != PL_NODE_SCALAR || !*v->scalar)
        return at_node(e, v, "name: expected a non-empty string (got %s)", *what(v) ? what(v) : "nothing");
    if (!(ms->name = strdup(v->scalar)))
        return oom(e);
    if (!(v = pl_node_get(root, "input")))
        return at_node(e, root, "missing required key 'input' ([channels, height, width])");
    if (v->type != PL_NODE_SEQ || v->n != 3)
        return at_node(e, v, "input: expected [channels, height, width]");
    if ((st = get_int(v->items[0], "input channels", 1, &ms->in_c, e)) ||
        (st = get_int(v->items[1], "input height", 1, &ms->in_h, e)) ||
        (st = get_int(v->items[2], "input width", 1, &ms->in_w, e)))
        return st;
    if (!(v = pl_node_get(root, "classes")))
        return at_node(e, root, "missing required key 'classes' (number of output classes)");
    if ((st = get_int(v, "classes", 1, &ms->classes, e)))
        return st;
    if (!(v = pl_node_get(root, "layers")))
        return at_node(e, root, "missing required key 'layers' (a list of {type: ..., ...})");
    if (v->type != PL_NODE_SEQ || v->n == 0)
        return at_node(e, v, "layers: expected a non-empty list of layers");
    if (!(ms->layers = calloc(v->n, sizeof *ms->layers)))
        return oom(e);
    int type_count[N_LAYER_TYPES] = {0};
    for (size_t i = 0; i < v->n; i++) {
        ms->n_layers = i + 1;
        if ((st = dec_layer(v->items[i], i, ms, type_count, e)))
            return st;
    }
    return resolve_inputs(v, ms, e);
}

pl_status pl_model_spec_load(const char *path, pl_model_spec **out, pl_error *err)
{
    *out = NULL;
    if (pl_onnx_is_model_path(path))
        return pl_onnx_spec_load(path, out, err);
    pl_node *root;
    pl_status st = pl_yaml_parse_file(path, &root, err);
    if (st)
        return st;
    pl_model_spec *ms = calloc(1, sizeof *ms);
    if (!ms || !(ms->file = strdup(path)))
        st = oom(err);
    else if (root->type == PL_NODE_SCALAR && !root->quoted && !*root->scalar)
        st = pl_error_set(err, PL_ECONFIG, "%s: empty model file", path);
    else if (root->type != PL_NODE_MAP)
        st = at_node(err, root, "a model file is a map (name:, input:, classes:, layers:)");
    else
        st = dec_model(root, ms, err);
    pl_node_free(root);
    if (st) {
        pl_model_spec_free(ms);
        return st;
    }
    *out = ms;
    return PL_OK;
}
