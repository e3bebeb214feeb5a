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

#include <errno.h>
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
    const char *s = n->scalar, *p = s + (*s == '-' || *s == '+');
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return at_node(e, n, "%s: expected an integer (got '%.60s')", path, s);
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v > INT_MAX || v < lo)
        return at_node(e, n, "%s must be >= %d (got %.40s)", path, lo, s);
    *out = (int)v;
    return PL_OK;
}

static pl_status get_num(const pl_node *n, const char *path, double *out, pl_error *e)
{
    char *end = NULL;
    const char *s = n->type == PL_NODE_SCALAR ? n->scalar : "";
    const char *p = s + (*s == '-' || *s == '+');
    int ok = n->type == PL_NODE_SCALAR && !n->quoted &&
             ((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')) && !strpbrk(s, "xXpPnNiI_");
    double v = ok ? strtod(s, &end) : 0;
    if (!ok || *end || !isfinite(v))
        return at_node(e, n, "%s: expected a finite number (got %s)", path, n->type == PL_NODE_SCALAR && !*s
                                                                              ? "nothing" : what(n));
    *out = v;
    return PL_OK;
}

static pl_status get_bool(const pl_node *n, const char *path, int *out, pl_error *e)
{
    if (n->type == PL_NODE_SCALAR && !n->quoted) {
        const char *s = n->scalar;
        int t = !strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE");
        int f = !strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE");
        if (t || f) {
            *out = t;
            return PL_OK;
        }
    }
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
                                          "relu", "flatten", "batchnorm2d", "dropout"};
#define N_LAYER_TYPES (sizeof layer_types / sizeof layer_types[0])
_Static_assert(N_LAYER_TYPES == PL_LAYER_DROPOUT, "layer_types must list every pl_layer_type");

static const char *const layer_keys[] = {"name", "type", "out", "kernel", "stride", "padding",
                                         "bias", "p", "eps", "momentum"};
#define N_LAYER_KEYS (sizeof layer_keys / sizeof layer_keys[0])
_Static_assert(N_LAYER_KEYS == 10, "keys_for's bits follow layer_keys one for one");

/* Which keys a layer type accepts (bit i = layer_keys[i]). */
static unsigned keys_for(pl_layer_type t)
{
    enum { NAME = 1, TYPE = 2, OUT = 4, KERNEL = 8, STRIDE = 16, PADDING = 32, BIAS = 64, P = 128,
           EPS = 256, MOM = 512 };
    switch (t) {
    case PL_LAYER_CONV2D: return NAME | TYPE | OUT | KERNEL | STRIDE | PADDING | BIAS;
    case PL_LAYER_LINEAR: return NAME | TYPE | OUT | BIAS;
    case PL_LAYER_MAXPOOL2D:
    case PL_LAYER_AVGPOOL2D: return NAME | TYPE | KERNEL | STRIDE | PADDING;
    case PL_LAYER_DROPOUT: return NAME | TYPE | P;
    case PL_LAYER_BATCHNORM2D: return NAME | TYPE | EPS | MOM;
    default: return NAME | TYPE;
    }
}

static int name_valid(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

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
        return at_node(e, m, "%s: missing required key 'type' (conv2d, linear, maxpool2d, avgpool2d, relu, "
                             "flatten, batchnorm2d or dropout)", path);
    size_t ti = 0;
    while (ti < N_LAYER_TYPES && (t->type != PL_NODE_SCALAR || strcmp(t->scalar, layer_types[ti])))
        ti++;
    if (ti == N_LAYER_TYPES) {
        const char *s = t->type == PL_NODE_SCALAR ? pl_suggest(t->scalar, layer_types, N_LAYER_TYPES) : NULL;
        if (s)
            return at_node(e, t, "%s: unknown layer type '%.60s' (did you mean '%s'?)", path, what(t), s);
        return at_node(e, t, "%s: unknown layer type '%.60s' (conv2d, linear, maxpool2d, avgpool2d, relu, "
                             "flatten, batchnorm2d or dropout)", path, what(t));
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
            if ((st = get_pair(v, p, 0, &l->ph, &l->pw, e)))
                return st;
        }
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

void pl_model_spec_free(pl_model_spec *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_layers; i++)
        free(m->layers[i].name);
    free(m->layers);
    free(m->name);
    free(m->file);
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
    return PL_OK;
}

pl_status pl_model_spec_load(const char *path, pl_model_spec **out, pl_error *err)
{
    *out = NULL;
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
