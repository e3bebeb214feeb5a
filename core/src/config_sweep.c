/*
 * config_sweep.c — pl_config: loading an experiment file with its --set
 * overrides and sweep: axes, and expanding run i of the sweep into a
 * pl_experiment.
 */
#include "config_internal.h"
#include "strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pl_config ------------------------------------------------------------------- */

typedef struct sweep_axis {
    char *key;
    keyinfo ki;
    const pl_node *values; /* SEQ of scalars inside cfg->root */
} sweep_axis;

struct pl_config {
    char *path;
    pl_node *root;   /* the file with every --set applied */
    char **labels;   /* "--set key=value", borrowed as file names by nodes */
    size_t n_labels;
    sweep_axis *axes;
    size_t n_axes;
    size_t n_runs;
};

void pl_config_free(pl_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_axes; i++) {
        free(cfg->axes[i].key);
        pl__cfg_keyinfo_free(&cfg->axes[i].ki);
    }
    free(cfg->axes);
    pl_node_free(cfg->root);
    pl__cfg_strv_free(cfg->labels, cfg->n_labels);
    free(cfg->path);
    free(cfg);
}

size_t pl_config_run_count(const pl_config *cfg)
{
    return cfg->n_runs;
}

size_t pl_config_sweep_axes(const pl_config *cfg)
{
    return cfg->n_axes;
}

const char *pl_config_sweep_key(const pl_config *cfg, size_t axis, size_t *n_values)
{
    if (axis >= cfg->n_axes) {
        if (n_values)
            *n_values = 0;
        return NULL;
    }
    if (n_values)
        *n_values = cfg->axes[axis].values->n;
    return cfg->axes[axis].key;
}

const char *pl_config_sweep_value(const pl_config *cfg, size_t axis, size_t v)
{
    if (axis >= cfg->n_axes || v >= cfg->axes[axis].values->n)
        return NULL;
    return cfg->axes[axis].values->items[v]->scalar;
}

static int cmp_scalar_node(const void *a, const void *b)
{
    const pl_node *x = *(const pl_node *const *)a, *y = *(const pl_node *const *)b;
    int c = strcmp(x->scalar, y->scalar);
    return c ? c : x->line != y->line ? (x->line < y->line ? -1 : 1) : (x->col > y->col) - (x->col < y->col);
}

/* A value listed twice makes two identical runs (one run_id): the second
 * would be reported as "resumed". Sorted, so 100,000 values cost nothing. */
static pl_status sweep_unique(const char *key, const pl_node *v, pl_error *e)
{
    if (v->n < 2)
        return PL_OK;
    const pl_node **s = malloc(v->n * sizeof *s);
    if (!s)
        return pl__cfg_oom(e);
    for (size_t j = 0; j < v->n; j++)
        s[j] = v->items[j];
    qsort(s, v->n, sizeof *s, cmp_scalar_node);
    pl_status st = PL_OK;
    for (size_t j = 1; j < v->n && !st; j++)
        if (!strcmp(s[j - 1]->scalar, s[j]->scalar))
            st = pl__cfg_at_node(e, s[j], "sweep '%.100s' lists '%.60s' again (first at line %d:%d); each value once, or "
                         "the runs are the same run", key, s[j]->scalar, s[j - 1]->line, s[j - 1]->col);
    free(s);
    return st;
}

static pl_status load_sweep(pl_config *cfg, pl_error *e)
{
    const pl_node *sw = pl_node_get(cfg->root, "sweep");
    pl_status st;
    if (!sw)
        return PL_OK;
    if ((st = pl__cfg_need_map(sw, "sweep", NULL, e)))
        return st;
    if (sw->n && !(cfg->axes = calloc(sw->n, sizeof *cfg->axes)))
        return pl__cfg_oom(e);
    for (size_t i = 0; i < sw->n; i++) {
        sweep_axis *a = &cfg->axes[cfg->n_axes++];
        const pl_node *v = sw->items[i];
        if (!(a->key = strdup(sw->keys[i])))
            return pl__cfg_oom(e);
        if ((st = pl__cfg_key_resolve(a->key, &a->ki, sw->file, sw->key_line[i], sw->key_col[i], e)))
            return st;
        char g[96];
        if (v->type != PL_NODE_SEQ)
            return pl__cfg_at_node(e, v, "sweep '%.100s': expected a list of values (got %s)", a->key, pl__cfg_got(v, g, sizeof g));
        if (v->n == 0)
            return pl__cfg_at_node(e, v, "sweep '%.100s' has no values, so the sweep expands to zero runs (give at least one)",
                           a->key);
        for (size_t j = 0; j < v->n; j++)
            if (v->items[j]->type != PL_NODE_SCALAR)
                return pl__cfg_at_node(e, v->items[j], "sweep '%.100s': values must be single values (got %s)", a->key,
                               pl__cfg_got(v->items[j], g, sizeof g));
        a->values = v;
        if ((st = sweep_unique(a->key, v, e)))
            return st;
    }
    int64_t max_runs;
    if ((st = pl__cfg_dec_limits(pl_node_get(cfg->root, "limits"), &max_runs, e)))
        return st;
    size_t runs = 1;
    int over = 0;
    for (size_t i = 0; i < cfg->n_axes; i++) {
        size_t k = cfg->axes[i].values->n;
        if (runs > SIZE_MAX / k)
            over = 1;
        else
            runs *= k;
    }
    if (over || (uint64_t)runs > (uint64_t)max_runs) {
        char count[32];
        if (over)
            snprintf(count, sizeof count, "more than %zu", SIZE_MAX);
        else
            snprintf(count, sizeof count, "%zu", runs);
        return pl__cfg_at_node(e, sw, "sweep expands to %s runs, more than limits.max_runs = %" PRId64
                              " (shorten the sweep or raise limits.max_runs)", count, max_runs);
    }
    cfg->n_runs = runs;
    return PL_OK;
}

static pl_status config_load(const char *path, const char *text, const char *const *sets, size_t n_sets,
                             pl_config **out, pl_error *err)
{
    *out = NULL;
    pl_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->path = strdup(path))) {
        free(cfg);
        return pl__cfg_oom(err);
    }
    cfg->n_runs = 1;
    pl_status st = text ? pl_yaml_parse_string(path, text, &cfg->root, err) : pl_yaml_parse_file(path, &cfg->root, err);
    if (st == PL_OK) {
        const pl_node *r = cfg->root;
        char g[96];
        if (pl__cfg_is_null(r))
            st = pl_error_set(err, PL_ECONFIG, "%s: empty experiment file (needs at least name: and model:)", path);
        else if (r->type != PL_NODE_MAP)
            st = pl__cfg_at_node(err, r, "an experiment file is a map of keys (name:, model:, ...), not %s",
                         pl__cfg_got(r, g, sizeof g));
    }
    if (st == PL_OK && n_sets && !(cfg->labels = calloc(n_sets, sizeof *cfg->labels)))
        st = pl__cfg_oom(err);
    for (size_t i = 0; st == PL_OK && i < n_sets; i++) {
        size_t n = strlen(sets[i]) + 7;
        if (!(cfg->labels[i] = malloc(n))) {
            st = pl__cfg_oom(err);
            break;
        }
        cfg->n_labels++;
        snprintf(cfg->labels[i], n, "--set %s", sets[i]);
        st = pl__cfg_apply_set(cfg->root, sets[i], cfg->labels[i], err);
    }
    if (st == PL_OK)
        st = load_sweep(cfg, err);
    /* every run must decode, so a bad sweep value fails before any training */
    for (size_t i = 0; st == PL_OK && i < cfg->n_runs; i++) {
        pl_experiment *x;
        if ((st = pl_config_expand(cfg, i, &x, err)) == PL_OK)
            pl_experiment_free(x);
    }
    if (st) {
        pl_config_free(cfg);
        return st;
    }
    *out = cfg;
    return PL_OK;
}

pl_status pl_config_load(const char *path, const char *const *sets, size_t n_sets, pl_config **out,
                         pl_error *err)
{
    return config_load(path, NULL, sets, n_sets, out, err);
}

pl_status pl_config_load_string(const char *name, const char *text, const char *const *sets, size_t n_sets,
                                pl_config **out, pl_error *err)
{
    return config_load(name, text, sets, n_sets, out, err);
}

/* The experiment without its sweep: each run is one value per axis, and
 * cloning every axis's whole list for every run made expanding a sweep of
 * n runs cost n^2 (100,000 runs: over 12 minutes). */
static pl_node *clone_sans_sweep(const pl_node *root)
{
    if (root->type != PL_NODE_MAP)
        return pl_node_clone(root);
    pl_node *n = pl_node_new(root->type, root->file, root->line, root->col, NULL);
    for (size_t k = 0; n && k < root->n; k++) {
        if (!strcmp(root->keys[k], "sweep"))
            continue;
        pl_node *c = pl_node_clone(root->items[k]);
        if (!c || pl_node_append(n, root->keys[k], root->key_line ? root->key_line[k] : 0,
                                 root->key_col ? root->key_col[k] : 0, c)) {
            pl_node_free(c);
            pl_node_free(n);
            return NULL;
        }
    }
    return n;
}

pl_status pl_config_expand(const pl_config *cfg, size_t i, pl_experiment **out, pl_error *err)
{
    *out = NULL;
    if (i >= cfg->n_runs)
        return pl_error_set(err, PL_EINVAL, "%s: run %zu does not exist (the sweep has %zu runs)", cfg->path, i,
                            cfg->n_runs);
    size_t pick[64], rest = i;
    if (cfg->n_axes > 64)
        return pl_error_set(err, PL_ECONFIG, "%s: more than 64 sweep axes", cfg->path);
    for (size_t a = cfg->n_axes; a-- > 0;) { /* last axis varies fastest */
        size_t k = cfg->axes[a].values->n;
        pick[a] = rest % k;
        rest /= k;
    }
    pl_node *root = clone_sans_sweep(cfg->root);
    xbuild *xb = calloc(1, sizeof *xb);
    pl__buf desc = {0};
    pl_status st = root && xb ? PL_OK : pl__cfg_oom(err);
    pl__buf_printf(&desc, "%s", "");
    for (size_t a = 0; st == PL_OK && a < cfg->n_axes; a++) {
        const pl_node *v = cfg->axes[a].values->items[pick[a]];
        pl_node *val = pl_node_clone(v);
        if (!val) {
            st = pl__cfg_oom(err);
            break;
        }
        st = pl__cfg_tree_set(root, &cfg->axes[a].ki, val, v->file, v->line, v->col, err);
        pl__buf_printf(&desc, "%s%s=%s", a ? " " : "", cfg->axes[a].key, v->scalar);
    }
    if (st == PL_OK)
        st = pl__cfg_decode(root, cfg->path, xb, err);
    pl_node_free(root);
    if (st == PL_OK && desc.failed)
        st = pl__cfg_oom(err);
    if (st == PL_OK) {
        xb->x.sweep_desc = desc.data;
        desc.data = NULL;
        xb->x.run_index = i;
        char *d = pl_experiment_dump(&xb->x);
        if (!d)
            st = pl__cfg_oom(err);
        else
            pl__cfg_hash_lines(d, pl__cfg_run_line, xb->x.run_id);
        free(d);
    }
    free(desc.data);
    if (st) {
        if (xb)
            pl_experiment_free(&xb->x);
        return st;
    }
    *out = &xb->x;
    return PL_OK;
}
