/*
 * config.c — experiment files: schema, --set, sweeps, typed decode, dump.
 *
 * The schema below is the single list of experiment keys; it drives the
 * unknown-key checks (with suggestions) both for the file and for dotted
 * keys given to --set or sweep:. Values are then decoded by hand, section by
 * section, into pl_experiment with defaults and range checks.
 */
#include "config_internal.h"
#include "scalar.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- errors ---------------------------------------------------------------- */

static pl_status vat(pl_error *e, const char *file, int line, int col, const char *fmt, va_list ap)
{
    char msg[900];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (line > 0)
        return pl_error_set(e, PL_ECONFIG, "%s:%d:%d: %s", file, line, col, msg);
    return pl_error_set(e, PL_ECONFIG, "%s: %s", file, msg);
}


pl_status pl__cfg_at(pl_error *e, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pl_status st = vat(e, file, line, col, fmt, ap);
    va_end(ap);
    return st;
}


pl_status pl__cfg_at_node(pl_error *e, const pl_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pl_status st = vat(e, n->file, n->line, n->col, fmt, ap);
    va_end(ap);
    return st;
}

pl_status pl__cfg_oom(pl_error *e)
{
    return pl_error_set(e, PL_ENOMEM, "out of memory while reading the configuration");
}

int pl__cfg_is_null(const pl_node *n)
{
    if (n->type != PL_NODE_SCALAR || n->quoted)
        return 0;
    const char *s = n->scalar;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* "a map", "a list", "nothing", "'text'" — what was found, for messages. */
const char *pl__cfg_got(const pl_node *n, char *buf, size_t cap)
{
    if (n->type == PL_NODE_MAP)
        return "a map";
    if (n->type == PL_NODE_SEQ)
        return "a list";
    if (pl__cfg_is_null(n))
        return "nothing";
    snprintf(buf, cap, "%s'%.60s%s'", n->quoted ? "the quoted string " : "", n->scalar,
             strlen(n->scalar) > 60 ? "..." : "");
    return buf;
}

/* ---- schema ---------------------------------------------------------------- */


static const field optim_f[] = {
    {"type", F_ENUM, NULL}, {"lr", F_NUM, NULL}, {"beta1", F_NUM, NULL},
    {"beta2", F_NUM, NULL}, {"eps", F_NUM, NULL}, {"weight_decay", F_NUM, NULL},
    {"momentum", F_NUM, NULL}, {"dampening", F_NUM, NULL}, {"nesterov", F_BOOL, NULL},
    {NULL, 0, NULL}};
static const field lrs_f[] = {
    {"type", F_ENUM, NULL}, {"step_size", F_INT, NULL}, {"gamma", F_NUM, NULL},
    {"min_lr", F_NUM, NULL}, {NULL, 0, NULL}};
/* regularize: (regularize.h) */
static const field reg_f[] = {
    {"type", F_ENUM, NULL}, {"coef", F_NUM, NULL}, {"layers", F_LIST, NULL}, {NULL, 0, NULL}};
static const field distill_f[] = {{"alpha", F_NUM, NULL}, {"temperature", F_NUM, NULL}, {NULL, 0, NULL}};
static const field phase_f[] = {
    {"epochs", F_INT, NULL}, {"batch_size", F_INT, NULL}, {"lr", F_NUM, NULL},
    {"optimizer", F_MAP, optim_f}, {"lr_schedule", F_MAP, lrs_f},
    {"regularize", F_MAP, reg_f}, {"rewind", F_STR, NULL},
    {"distill", F_MAP, distill_f}, {NULL, 0, NULL}};
static const field target_f[] = {{"fraction", F_NUM, NULL}, {"count", F_INT, NULL}, {NULL, 0, NULL}};
static const field prune_f[] = {
    {"criterion", F_PLUGIN, NULL}, {"schedule", F_PLUGIN, NULL},
    {"granularity", F_ENUM, NULL}, {"sparsity", F_NUM, NULL},
    {"layers", F_LAYERS, target_f}, {"include", F_LIST, NULL},
    {"exclude", F_LIST, NULL}, {"tolerance", F_NUM, NULL},
    {"count", F_INT, NULL}, /* granularity layer only (layer_prune.c) */
    {"group_reduction", F_ENUM, NULL},
    {NULL, 0, NULL}};
static const field report_f[] = {
    {"dir", F_STR, NULL}, {"cache", F_STR, NULL}, {"latency_runs", F_INT, NULL},
    {"plots", F_BOOL, NULL}, {NULL, 0, NULL}};
static const field limits_f[] = {{"max_runs", F_INT, NULL}, {NULL, 0, NULL}};
const field pl__cfg_root_f[] = {
    {"name", F_STR, NULL}, {"seed", F_UINT, NULL}, {"model", F_STR, NULL}, {"model_init", F_STR, NULL},
    {"dataset", F_PLUGIN, NULL}, {"backend", F_PLUGIN, NULL},
    {"train", F_MAP, phase_f}, {"retrain", F_MAP, phase_f}, {"finetune", F_MAP, phase_f},
    {"prune", F_MAP, prune_f}, {"report", F_MAP, report_f}, {"sweep", F_SWEEP, NULL},
    {"plugin_path", F_LIST, NULL}, {"limits", F_MAP, limits_f}, {NULL, 0, NULL}};

const field *pl__cfg_field_find(const field *tbl, const char *key)
{
    for (; tbl->key; tbl++)
        if (!strcmp(tbl->key, key))
            return tbl;
    return NULL;
}

/* "unknown key 'k' in path (did you mean 'x'?)" at the given position. */
pl_status pl__cfg_unknown_key(pl_error *e, const char *file, int line, int col, const char *key,
                             const char *path, const field *tbl)
{
    const char *cand[32];
    size_t n = 0;
    for (const field *f = tbl; f->key && n < 32; f++)
        cand[n++] = f->key;
    const char *s = pl_suggest(key, cand, n);
    char where[300], hint[400];
    if (*path)
        snprintf(where, sizeof where, "in %s", path);
    else
        snprintf(where, sizeof where, "at top level");
    const field *deeper = NULL; /* a key of a section one level down: sparsity -> prune.sparsity */
    for (const field *f = tbl; !s && !deeper && f->key; f++)
        if (f->kind == F_MAP && f->sub && pl__cfg_field_find(f->sub, key))
            deeper = f;
    if (s) {
        snprintf(hint, sizeof hint, "did you mean '%s'?", s);
    } else if (deeper) {
        snprintf(hint, sizeof hint, "did you mean '%s%s%s.%.100s'?", path, *path ? "." : "", deeper->key, key);
    } else {
        size_t k = (size_t)snprintf(hint, sizeof hint, "valid keys:");
        for (size_t i = 0; i < n && k < sizeof hint; i++)
            k += (size_t)snprintf(hint + k, sizeof hint - k, "%s %s", i ? "," : "", cand[i]);
    }
    return pl__cfg_at(e, file, line, col, "unknown key '%.100s' %s (%s)", key, where, hint);
}

pl_status pl__cfg_check_keys(const pl_node *m, const char *path, const field *tbl, pl_error *e)
{
    for (size_t i = 0; i < m->n; i++)
        if (!pl__cfg_field_find(tbl, m->keys[i]))
            return pl__cfg_unknown_key(e, m->file, m->key_line[i], m->key_col[i], m->keys[i], path, tbl);
    return PL_OK;
}

int pl__cfg_name_valid(const char *s, const char *extra) { return pl__name_ok(s, 1, extra, 0); }

/* ---- experiment decode -------------------------------------------------------- */


static const char *xb_file(xbuild *xb, const char *file)
{
    for (size_t i = 0; i < xb->n_strs; i++)
        if (!strcmp(xb->strs[i], file))
            return xb->strs[i];
    char **s = realloc(xb->strs, (xb->n_strs + 1) * sizeof *s);
    if (!s)
        return NULL;
    xb->strs = s;
    if (!(s[xb->n_strs] = strdup(file)))
        return NULL;
    return s[xb->n_strs++];
}

static void plugin_ref_free(pl_plugin_ref *r)
{
    free(r->plugin);
    for (size_t i = 0; i < r->n_params; i++) {
        free(r->params[i].key);
        free(r->params[i].value);
    }
    free(r->params);
    memset(r, 0, sizeof *r);
}

void pl__cfg_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void pl_experiment_free(pl_experiment *x)
{
    if (!x)
        return;
    xbuild *xb = (xbuild *)x;
    free(x->file);
    free(x->name);
    free(x->model);
    free(x->model_init);
    free(x->identity);
    plugin_ref_free(&x->dataset);
    plugin_ref_free(&x->backend);
    plugin_ref_free(&x->prune.criterion);
    plugin_ref_free(&x->prune.schedule);
    pl__cfg_strv_free(x->train.reg.layers, x->train.reg.n_layers);
    pl__cfg_strv_free(x->retrain.reg.layers, x->retrain.reg.n_layers);
    pl__cfg_strv_free(x->finetune.reg.layers, x->finetune.reg.n_layers);
    for (size_t i = 0; i < x->prune.n_layers; i++)
        free(x->prune.layers[i].layer);
    free(x->prune.layers);
    pl__cfg_strv_free(x->prune.include, x->prune.n_include);
    pl__cfg_strv_free(x->prune.exclude, x->prune.n_exclude);
    free(x->report.dir);
    free(x->report.cache);
    pl__cfg_strv_free(x->plugin_path, x->n_plugin_path);
    free(x->sweep_desc);
    pl__cfg_strv_free(xb->strs, xb->n_strs);
    free(xb);
}

static pl_status kv_add(xbuild *xb, pl_plugin_ref *r, const char *key, const char *value, const pl_node *pos,
                        const char *file, pl_error *e)
{
    pl_kv *kv = realloc(r->params, (r->n_params + 1) * sizeof *kv);
    if (!kv)
        return pl__cfg_oom(e);
    r->params = kv;
    kv += r->n_params;
    memset(kv, 0, sizeof *kv);
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->file = xb_file(xb, pos ? pos->file : file);
    kv->line = pos ? pos->line : 0;
    kv->col = pos ? pos->col : 0;
    r->n_params++;
    if (!kv->key || !kv->value || !kv->file)
        return pl__cfg_oom(e);
    return PL_OK;
}

static const pl_kv *kv_find(const pl_plugin_ref *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (!strcmp(r->params[i].key, key))
            return &r->params[i];
    return NULL;
}

/* Flattens a plugin's parameter map into dotted keys. */
static pl_status flatten(xbuild *xb, pl_plugin_ref *r, const pl_node *m, const char *prefix, const char *path,
                         pl_error *e)
{
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i];
        if (!*prefix && !strcmp(k, "plugin"))
            continue;
        char full[256];
        snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", k);
        const pl_node *v = m->items[i];
        pl_status st;
        if (v->type == PL_NODE_MAP) {
            if ((st = flatten(xb, r, v, full, path, e)))
                return st;
            continue;
        }
        if (v->type == PL_NODE_SEQ)
            return pl__cfg_at_node(e, v, "%s.%s: plugin parameters take single values, not lists", path, full);
        const pl_kv *dup = kv_find(r, full);
        if (dup)
            return pl__cfg_at_node(e, v, "%s: parameter '%s' given twice (first at line %d)", path, full, dup->line);
        if ((st = kv_add(xb, r, full, v->scalar, v, NULL, e)))
            return st;
    }
    return PL_OK;
}

/* A plugin reference; absent -> `def` with `def_params` ("k","v",...,NULL),
 * which also fill in a map written without plugin:. */
static pl_status dec_plugin(xbuild *xb, const pl_node *n, const pl_node *parent, const char *path,
                            const char *def, const char *const *def_params, pl_plugin_ref *r, pl_error *e)
{
    const pl_node *name = NULL;
    char g[96];
    pl_status st;
    if (n && (n->type == PL_NODE_SEQ || pl__cfg_is_null(n)))
        return pl__cfg_at_node(e, n, "%s: expected a plugin name or a map {plugin: NAME, ...} (got %s)", path,
                       pl__cfg_got(n, g, sizeof g));
    if (n && n->type == PL_NODE_SCALAR)
        name = n;
    else if (n)
        name = pl_node_get(n, "plugin");
    if (name && (name->type != PL_NODE_SCALAR || pl__cfg_is_null(name)))
        return pl__cfg_at_node(e, name, "%s.plugin: expected a plugin name (got %s)", path, pl__cfg_got(name, g, sizeof g));
    if (name && !pl__name_ok(name->scalar, 0, "", 63))
        return pl__cfg_at_node(e, name, "%s: plugin name '%.80s' must match [a-z0-9_]+ (a name, never a path)", path,
                       name->scalar);
    r->plugin = strdup(name ? name->scalar : def);
    const pl_node *pos = name ? name : n;
    r->file = xb_file(xb, pos ? pos->file : parent->file);
    if (!r->plugin || !r->file)
        return pl__cfg_oom(e);
    r->line = pos ? pos->line : 0;
    r->col = pos ? pos->col : 0;
    if (n && n->type == PL_NODE_MAP && (st = flatten(xb, r, n, "", path, e)))
        return st;
    if (!name && def_params) {
        for (size_t i = 0; def_params[i]; i += 2)
            if (!kv_find(r, def_params[i]) &&
                (st = kv_add(xb, r, def_params[i], def_params[i + 1], NULL, parent->file, e)))
                return st;
    }
    return PL_OK;
}

static const char *const optim_names[] = {"adam", "sgd"};
const char *const pl__cfg_lrs_names[] = {"constant", "step", "cosine"};
const char *const pl__cfg_gran_names[] = {"weight", "channel", "neuron", "layer"};
const char *const pl__cfg_group_red_names[] = {"mean", "sum", "max"};
_Static_assert(sizeof optim_names / sizeof optim_names[0] == PL_OPTIM_SGD, "optim_names follows pl_optim_type (from 1)");
_Static_assert(sizeof pl__cfg_lrs_names / sizeof pl__cfg_lrs_names[0] == PL_LR_COSINE,
               "pl__cfg_lrs_names follows pl_lr_sched (from 1)");
_Static_assert(sizeof pl__cfg_gran_names / sizeof pl__cfg_gran_names[0] == PL_GRAN_LAYER,
               "pl__cfg_gran_names follows pl_granularity (from 1)");
_Static_assert(sizeof pl__cfg_group_red_names / sizeof pl__cfg_group_red_names[0] == PL_GROUP_MAX + 1,
               "pl__cfg_group_red_names follows pl_group_reduction");
/* ---- regularize: names indexed by pl_reg_type ---- */
const char *const pl__cfg_reg_names[] = {"none", "l1", "l2", "group_lasso", "bn_l1"};
_Static_assert(sizeof pl__cfg_reg_names / sizeof pl__cfg_reg_names[0] == PL_REG_BN_L1 + 1, "pl__cfg_reg_names follows pl_reg_type");

static pl_status dec_names(const pl_node *n, const char *path, const char *extra, char ***out, size_t *count,
                           pl_error *e);

/* dataset.augment: {crop_pad: P, hflip: B} (augment.h): the host's, not the
 * plugin's, so its flattened keys leave the dataset's parameters. */
static const field augment_f[] = {{"crop_pad", F_INT, NULL}, {"hflip", F_BOOL, NULL}, {NULL, 0, NULL}};
static pl_status dec_augment(const pl_node *ds, pl_plugin_ref *r, pl_augment_cfg *out, pl_error *e)
{
    const pl_node *a = ds && ds->type == PL_NODE_MAP ? pl_node_get(ds, "augment") : NULL, *v;
    size_t k = 0;
    for (size_t i = 0; i < r->n_params; i++) { /* drop augment.* */
        if (!strncmp(r->params[i].key, "augment.", 8) || !strcmp(r->params[i].key, "augment")) {
            free(r->params[i].key);
            free(r->params[i].value);
        } else {
            r->params[k++] = r->params[i];
        }
    }
    r->n_params = k;
    if (!a)
        return PL_OK;
    pl_status st = pl__cfg_need_map(a, "dataset.augment", augment_f, e);
    if (!st && (v = pl_node_get(a, "crop_pad")) &&
        !(st = pl__cfg_get_int(v, "dataset.augment.crop_pad", &out->crop_pad, e)) &&
        (out->crop_pad < 0 || out->crop_pad > 4096))
        st = pl__cfg_at_node(e, v, "dataset.augment.crop_pad must be in [0, 4096] pixels (got %d; 0 = no crop, "
                                   "4 is the usual CIFAR value)", out->crop_pad);
    if (!st && (v = pl_node_get(a, "hflip")))
        st = pl__cfg_get_bool(v, "dataset.augment.hflip", &out->hflip, e);
    return st;
}

/* <sec>.regularize: {type, coef, layers}; type none leaves the phase without one. */
static pl_status dec_reg(const pl_node *m, const char *sec, pl_reg_cfg *r, pl_error *e)
{
    char path[128], p[160];
    pl_status st;
    snprintf(path, sizeof path, "%s.regularize", sec);
    if ((st = pl__cfg_need_map(m, path, reg_f, e)))
        return st;
    const pl_node *t = pl_node_get(m, "type"), *c = pl_node_get(m, "coef"), *l = pl_node_get(m, "layers");
    if (!t)
        return pl__cfg_at_node(e, m, "%s: missing 'type' (none, l1, l2, group_lasso or bn_l1)", path);
    int ti;
    snprintf(p, sizeof p, "%s.type", path);
    if ((st = pl__cfg_get_enum(t, p, pl__cfg_reg_names, sizeof pl__cfg_reg_names / sizeof pl__cfg_reg_names[0], &ti, e)))
        return st;
    if (ti == PL_REG_NONE)
        return PL_OK;
    r->type = (pl_reg_type)ti;
    if (!c)
        return pl__cfg_at_node(e, m, "%s: missing 'coef' (the penalty's weight, e.g. 1e-4)", path);
    snprintf(p, sizeof p, "%s.coef", path);
    if ((st = pl__cfg_get_num(c, p, &r->coef, e)) || (st = pl__cfg_num_in(c, p, r->coef, 0, 0, INFINITY, 1, "a finite number >= 0", e)))
        return st;
    if (l) {
        snprintf(p, sizeof p, "%s.layers", path);
        if ((st = dec_names(l, p, "", &r->layers, &r->n_layers, e)))
            return st;
        if (!r->n_layers)
            return pl__cfg_at_node(e, l, "%s is empty (name conv2d/linear layers, or leave it out for all but the output "
                           "layer)", p);
    }
    return PL_OK;
}
/* ---- end regularize ---- */

/* Every key of the map `m` at "<sec>.<name>" (checked against tbl) through
 * fn, with the key's dotted path for messages. */
typedef pl_status (*key_fn)(const char *k, const pl_node *v, const char *p, pl_optim_cfg *o, pl_error *e);

static pl_status each_key(const pl_node *m, const char *sec, const char *name, const field *tbl, key_fn fn,
                          pl_optim_cfg *o, pl_error *e)
{
    char path[128];
    pl_status st;
    snprintf(path, sizeof path, "%s.%s", sec, name);
    if ((st = pl__cfg_need_map(m, path, tbl, e)))
        return st;
    for (size_t i = 0; i < m->n; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s.%s", path, m->keys[i]);
        if ((st = fn(m->keys[i], m->items[i], p, o, e)))
            return st;
    }
    return PL_OK;
}

static pl_status optim_key(const char *k, const pl_node *v, const char *p, pl_optim_cfg *o, pl_error *e)
{
    pl_status st;
    if (!strcmp(k, "type")) {
        int t;
        if ((st = pl__cfg_get_enum(v, p, optim_names, PL_OPTIM_SGD, &t, e)))
            return st;
        o->type = t == 0 ? PL_OPTIM_ADAM : PL_OPTIM_SGD;
    } else if (!strcmp(k, "nesterov")) {
        if ((st = pl__cfg_get_bool(v, p, &o->nesterov, e)))
            return st;
    } else {
        /* every other optimizer key is a number with a lower bound */
        const struct { const char *key; double *dst; double hi; int lo_open; const char *rule; } num[] = {
            {"lr", &o->lr, INFINITY, 1, "a finite number > 0"},
            {"beta1", &o->beta1, 1, 0, "in [0, 1)"},
            {"beta2", &o->beta2, 1, 0, "in [0, 1)"},
            {"eps", &o->eps, INFINITY, 1, "a finite number > 0"},
            {"weight_decay", &o->weight_decay, INFINITY, 0, "a finite number >= 0"},
            {"momentum", &o->momentum, INFINITY, 0, "a finite number >= 0"},
            {"dampening", &o->dampening, INFINITY, 0, "a finite number >= 0"}};
        size_t j = 0, n_num = sizeof num / sizeof num[0];
        while (j < n_num && strcmp(num[j].key, k))
            j++;
        PL_ASSERT(j < n_num); /* the schema (optim_f) let only these through */
        if ((st = pl__cfg_get_num(v, p, num[j].dst, e)) ||
            (st = pl__cfg_num_in(v, p, *num[j].dst, 0, num[j].lo_open, num[j].hi, 1, num[j].rule, e)))
            return st;
    }
    return PL_OK;
}

static pl_status lr_schedule_key(const char *k, const pl_node *v, const char *p, pl_optim_cfg *o, pl_error *e)
{
    pl_status st;
    if (!strcmp(k, "type")) {
        int t;
        if ((st = pl__cfg_get_enum(v, p, pl__cfg_lrs_names, PL_LR_COSINE, &t, e)))
            return st;
        o->lr_schedule = (pl_lr_sched)(t + 1);
    } else if (!strcmp(k, "step_size")) {
        if ((st = pl__cfg_get_int(v, p, &o->step_size, e)))
            return st;
        if (o->step_size < 1)
            return pl__cfg_at_node(e, v, "%s must be >= 1 epoch (got %d)", p, o->step_size);
    } else if (!strcmp(k, "gamma")) {
        if ((st = pl__cfg_get_num(v, p, &o->gamma, e)) ||
            (st = pl__cfg_num_in(v, p, o->gamma, 0, 1, INFINITY, 1, "a finite number > 0", e)))
            return st;
    } else {
        if ((st = pl__cfg_get_num(v, p, &o->min_lr, e)) ||
            (st = pl__cfg_num_in(v, p, o->min_lr, 0, 0, INFINITY, 1, "a finite number >= 0", e)))
            return st;
    }
    return PL_OK;
}

/* A phase: starts from `base` (train's resolved values) with `epochs`. */
/* retrain.rewind resets the surviving weights of the pruned model in
 * place, so the model must keep its shapes (weight granularity), and an
 * epoch to rewind to must exist in the baseline's training. */
static pl_status check_rewind(const pl_experiment *x, const pl_node *v, pl_error *e)
{
    if (!x->prune.enabled)
        return pl__cfg_at_node(e, v, "retrain.rewind: nothing is pruned (add a prune: section)");
    if (x->prune.granularity != PL_GRAN_WEIGHT)
        return pl__cfg_at_node(e, v, "retrain.rewind needs prune.granularity: weight (structured pruning changes "
                                     "the layers' shapes; lottery tickets are found by weight pruning)");
    if (x->retrain.rewind == PL_REWIND_EPOCH && x->retrain.rewind_epoch > x->train.epochs)
        return pl__cfg_at_node(e, v, "retrain.rewind: epoch:%d is past the baseline's training (train.epochs: %d)",
                               x->retrain.rewind_epoch, x->train.epochs);
    return PL_OK;
}

/* retrain.rewind: init | random | epoch:K | none (lottery tickets, rewind.h) */
static pl_status dec_rewind(const pl_node *v, const char *sec, pl_phase_cfg *out, pl_error *e)
{
    const char *s;
    char p[96];
    snprintf(p, sizeof p, "%s.rewind", sec);
    pl_status st = pl__cfg_get_str(v, p, &s, e);
    if (st)
        return st;
    if (strcmp(sec, "retrain"))
        return pl__cfg_at_node(e, v, "%s: rewinding applies to retraining only (write it as retrain.rewind)", p);
    if (!strcmp(s, "none")) {
        out->rewind = PL_REWIND_NONE; /* a sweep's reference value */
    } else if (!strcmp(s, "init")) {
        out->rewind = PL_REWIND_INIT;
    } else if (!strcmp(s, "random")) {
        out->rewind = PL_REWIND_RANDOM;
    } else if (!strncmp(s, "epoch:", 6)) {
        char *end;
        errno = 0;
        long k = strtol(s + 6, &end, 10);
        if (end == s + 6 || *end || errno || k < 1 || k > 1000000)
            return pl__cfg_at_node(e, v, "%s: '%.40s' needs a whole number of epochs >= 1 after 'epoch:' "
                                         "(e.g. epoch:1)", p, s);
        out->rewind = PL_REWIND_EPOCH;
        out->rewind_epoch = (int)k;
    } else {
        return pl__cfg_at_node(e, v, "%s: unknown value '%.40s' (give init, epoch:K, random or none)", p, s);
    }
    return PL_OK;
}

/* retrain.distill / finetune.distill: {alpha: [0,1], temperature: > 0} (distill.h) */
static pl_status dec_distill(const pl_node *v, const char *sec, pl_distill_cfg *out, pl_error *e)
{
    char p[96];
    snprintf(p, sizeof p, "%s.distill", sec);
    pl_status st = pl__cfg_need_map(v, p, distill_f, e);
    if (st)
        return st;
    if (!strcmp(sec, "train"))
        return pl__cfg_at_node(e, v, "%s: the baseline has no teacher (give distill under retrain or finetune; "
                                     "the trained baseline is their teacher)", p);
    const pl_node *a = pl_node_get(v, "alpha"), *t = pl_node_get(v, "temperature");
    char pa[112], pt[112];
    snprintf(pa, sizeof pa, "%s.alpha", p);
    snprintf(pt, sizeof pt, "%s.temperature", p);
    out->enabled = 1, out->alpha = 0.5, out->temperature = 4;
    if (a && ((st = pl__cfg_get_num(a, pa, &out->alpha, e)) ||
              (st = pl__cfg_num_in(a, pa, out->alpha, 0, 0, 1, 0, "a number in [0, 1]", e))))
        return st;
    if (t && ((st = pl__cfg_get_num(t, pt, &out->temperature, e)) ||
              (st = pl__cfg_num_in(t, pt, out->temperature, 0, 1, INFINITY, 1, "a finite number > 0", e))))
        return st;
    return PL_OK;
}

static pl_status dec_phase(const pl_node *m, const char *sec, int min_epochs, pl_phase_cfg *out, pl_error *e)
{
    pl_status st;
    if (!m)
        return PL_OK;
    if ((st = pl__cfg_need_map(m, sec, phase_f, e)))
        return st;
    const pl_node *v, *lr = pl_node_get(m, "lr"), *opt = pl_node_get(m, "optimizer");
    char p[160];
    if ((v = pl_node_get(m, "epochs"))) {
        snprintf(p, sizeof p, "%s.epochs", sec);
        if ((st = pl__cfg_get_int(v, p, &out->epochs, e)))
            return st;
        if (out->epochs < min_epochs)
            return pl__cfg_at_node(e, v, "%s must be >= %d (got %d%s)", p, min_epochs, out->epochs,
                           min_epochs ? "; the baseline needs at least one epoch: a model YAML has no weights of "
                                        "its own, so train.epochs: 0 needs model_init: FILE.ckpt or an .onnx model"
                                      : "");
    }
    if ((v = pl_node_get(m, "batch_size"))) {
        snprintf(p, sizeof p, "%s.batch_size", sec);
        if ((st = pl__cfg_get_int(v, p, &out->batch_size, e)))
            return st;
        if (out->batch_size < 1)
            return pl__cfg_at_node(e, v, "%s must be >= 1 (got %d)", p, out->batch_size);
    }
    if (opt && (st = each_key(opt, sec, "optimizer", optim_f, optim_key, &out->optim, e)))
        return st;
    if (lr) {
        snprintf(p, sizeof p, "%s.lr", sec);
        if (opt && opt->type == PL_NODE_MAP && pl_node_get(opt, "lr"))
            return pl__cfg_at_node(e, lr, "%s: give %s.lr or %s.optimizer.lr, not both", p, sec, sec);
        double d;
        if ((st = pl__cfg_get_num(lr, p, &d, e)) || (st = pl__cfg_num_in(lr, p, d, 0, 1, INFINITY, 1, "a finite number > 0", e)))
            return st;
        out->optim.lr = d;
    }
    if ((v = pl_node_get(m, "lr_schedule")) && (st = each_key(v, sec, "lr_schedule", lrs_f, lr_schedule_key, &out->optim, e)))
        return st;
    if ((v = pl_node_get(m, "regularize")) && (st = dec_reg(v, sec, &out->reg, e)))
        return st;
    if ((v = pl_node_get(m, "rewind")) && (st = dec_rewind(v, sec, out, e)))
        return st;
    if ((v = pl_node_get(m, "distill")) && (st = dec_distill(v, sec, &out->distill, e)))
        return st;
    const pl_optim_cfg *o = &out->optim;
    if (o->type == PL_OPTIM_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return pl__cfg_at_node(e, opt ? opt : m, "%s.optimizer: nesterov needs momentum > 0 and dampening 0", sec);
    return PL_OK;
}

static pl_status dec_names(const pl_node *n, const char *path, const char *extra, char ***out, size_t *count,
                           pl_error *e)
{
    char g[96];
    if (n->type != PL_NODE_SEQ)
        return pl__cfg_at_node(e, n, "%s: expected a list (got %s)", path, pl__cfg_got(n, g, sizeof g));
    if (n->n && !(*out = calloc(n->n, sizeof **out)))
        return pl__cfg_oom(e);
    for (size_t i = 0; i < n->n; i++) {
        const char *s;
        pl_status st = pl__cfg_get_str(n->items[i], path, &s, e);
        if (st)
            return st;
        if (extra && !pl__cfg_name_valid(s, extra))
            return pl__cfg_at_node(e, n->items[i], "%s: layer name '%.80s' must match [A-Za-z0-9_]+", path, s);
        if (!((*out)[i] = strdup(s)))
            return pl__cfg_oom(e);
        (*count)++;
    }
    return PL_OK;
}

static pl_status dec_layers(xbuild *xb, const pl_node *m, pl_prune_cfg *pr, pl_error *e)
{
    pl_status st;
    if ((st = pl__cfg_need_map(m, "prune.layers", NULL, e)))
        return st;
    if (m->n == 0)
        return pl__cfg_at_node(e, m, "prune.layers is empty (give {LAYER: {fraction: F} or {count: N}, ...})");
    if (!(pr->layers = calloc(m->n, sizeof *pr->layers)))
        return pl__cfg_oom(e);
    for (size_t i = 0; i < m->n; i++) {
        const char *name = m->keys[i];
        const pl_node *v = m->items[i];
        char p[200];
        snprintf(p, sizeof p, "prune.layers.%.100s", name);
        if (!pl__cfg_name_valid(name, ""))
            return pl__cfg_at(e, m->file, m->key_line[i], m->key_col[i],
                      "prune.layers: layer name '%.80s' must match [A-Za-z0-9_]+", name);
        if ((st = pl__cfg_need_map(v, p, target_f, e)))
            return st;
        pl_layer_target *t = &pr->layers[pr->n_layers++];
        t->fraction = -1;
        t->count = -1;
        if (!(t->layer = strdup(name)) || !(t->file = xb_file(xb, v->file)))
            return pl__cfg_oom(e);
        t->line = v->line;
        t->col = v->col;
        const pl_node *f = pl_node_get(v, "fraction"), *c = pl_node_get(v, "count");
        if (f || c) { /* blame the value (which may come from a --set) */
            const pl_node *at_v = f ? f : c;
            if (!(t->file = xb_file(xb, at_v->file)))
                return pl__cfg_oom(e);
            t->line = at_v->line;
            t->col = at_v->col;
        }
        if (f && c)
            return pl__cfg_at_node(e, c, "%s: give fraction or count, not both", p);
        if (!f && !c)
            return pl__cfg_at_node(e, v, "%s: missing 'fraction' (share of units to remove) or 'count' (units to remove)",
                           p);
        char q[220];
        if (f) {
            snprintf(q, sizeof q, "%s.fraction", p);
            if ((st = pl__cfg_get_num(f, q, &t->fraction, e)) ||
                (st = pl__cfg_fraction_in(f, q, t->fraction, e)))
                return st;
        } else {
            snprintf(q, sizeof q, "%s.count", p);
            int64_t cnt;
            if ((st = pl__cfg_get_i64(c, q, &cnt, e)))
                return st;
            if (cnt < 0)
                return pl__cfg_at_node(e, c, "%s must be >= 0 (got %" PRId64 ")", q, cnt);
            t->count = cnt;
        }
    }
    return PL_OK;
}

static pl_status dec_prune(xbuild *xb, const pl_node *m, pl_error *e)
{
    pl_prune_cfg *pr = &xb->x.prune;
    pl_status st;
    if ((st = pl__cfg_need_map(m, "prune", prune_f, e)))
        return st;
    pr->enabled = 1;
    pr->granularity = PL_GRAN_CHANNEL;
    const pl_node *v;
    if ((st = dec_plugin(xb, pl_node_get(m, "criterion"), m, "prune.criterion", "l1", NULL, &pr->criterion, e)) ||
        (st = dec_plugin(xb, pl_node_get(m, "schedule"), m, "prune.schedule", "oneshot", NULL, &pr->schedule, e)))
        return st;
    if ((v = pl_node_get(m, "granularity"))) {
        int g;
        if ((st = pl__cfg_get_enum(v, "prune.granularity", pl__cfg_gran_names, PL_GRAN_LAYER, &g, e)))
            return st;
        pr->granularity = (pl_granularity)(g + 1);
    }
    const pl_node *sp = pl_node_get(m, "sparsity"), *ly = pl_node_get(m, "layers");
    /* ---- granularity layer: sparsity (share of removable blocks) or count ---- */
    const pl_node *cn = pl_node_get(m, "count");
    if (cn && pr->granularity != PL_GRAN_LAYER)
        return pl__cfg_at_node(e, cn, "prune.count is the number of layers to remove and needs granularity: layer "
                              "(for units of one layer use prune.layers.NAME.count)");
    if (pr->granularity == PL_GRAN_LAYER) {
        if (ly)
            return pl__cfg_at_node(e, ly, "prune.layers does not apply to granularity layer (give count: N layers to "
                                  "remove, or sparsity; restrict the candidates with include/exclude)");
        if (sp && cn) {
            const pl_node *later = cn->line > sp->line || (cn->line == sp->line && cn->col > sp->col) ? cn : sp;
            return pl__cfg_at_node(e, later, "prune: give either count (layers to remove) or sparsity (share of the "
                                     "removable layers), not both");
        }
        if (!sp && !cn)
            return pl__cfg_at_node(e, m, "prune: granularity layer needs 'count' (layers to remove) or 'sparsity' "
                                 "(share of the removable layers)");
        if (cn) {
            if ((st = pl__cfg_get_i64(cn, "prune.count", &pr->count, e)))
                return st;
            if (pr->count < 1)
                return pl__cfg_at_node(e, cn, "prune.count must be >= 1 (got %" PRId64 ")", pr->count);
        }
    }
    /* ---- end granularity layer ---- */
    if (sp && ly) {
        const pl_node *later = ly->line > sp->line || (ly->line == sp->line && ly->col > sp->col) ? ly : sp;
        if (sp->line == 0 || ly->line == 0) /* a --set (line 0) comes after the whole file */
            later = sp->line == 0 ? sp : ly;
        return pl__cfg_at_node(e, later,
                       "prune: give either sparsity (one fraction for every prunable layer) or layers "
                       "(per-layer targets), not both");
    }
    if (!sp && !ly && !cn)
        return pl__cfg_at_node(e, m,
                       "prune: missing 'sparsity' (one fraction for every prunable layer) or 'layers' "
                       "(per-layer targets)");
    if (sp) {
        pr->has_sparsity = 1;
        if ((st = pl__cfg_get_num(sp, "prune.sparsity", &pr->sparsity, e)) ||
            (st = pl__cfg_fraction_in(sp, "prune.sparsity", pr->sparsity, e)))
            return st;
    } else if (ly && (st = dec_layers(xb, ly, pr, e))) {
        return st;
    }
    if ((v = pl_node_get(m, "include")) && (st = dec_names(v, "prune.include", "", &pr->include, &pr->n_include, e)))
        return st;
    if ((v = pl_node_get(m, "exclude")) && (st = dec_names(v, "prune.exclude", "", &pr->exclude, &pr->n_exclude, e)))
        return st;
    if ((v = pl_node_get(m, "tolerance")) &&
        ((st = pl__cfg_get_num(v, "prune.tolerance", &pr->tolerance, e)) ||
         (st = pl__cfg_num_in(v, "prune.tolerance", pr->tolerance, 0, 0, INFINITY, 1, "a finite number >= 0 (units)", e))))
        return st;
    if ((v = pl_node_get(m, "group_reduction"))) {
        int g;
        if ((st = pl__cfg_get_enum(v, "prune.group_reduction", pl__cfg_group_red_names, PL_GROUP_MAX + 1, &g, e)))
            return st;
        pr->group_reduction = (pl_group_reduction)g;
    }
    return PL_OK;
}

static pl_status dec_report(xbuild *xb, const pl_node *m, pl_error *e)
{
    pl_report_cfg *r = &xb->x.report;
    const char *dir = NULL, *cache = NULL;
    pl_status st;
    r->latency_runs = 5;
    r->plots = 1;
    if (m) {
        const pl_node *v;
        if ((st = pl__cfg_need_map(m, "report", report_f, e)))
            return st;
        if ((v = pl_node_get(m, "dir")) && (st = pl__cfg_get_str(v, "report.dir", &dir, e)))
            return st;
        if ((v = pl_node_get(m, "cache")) && (st = pl__cfg_get_str(v, "report.cache", &cache, e)))
            return st;
        if ((v = pl_node_get(m, "latency_runs"))) {
            if ((st = pl__cfg_get_int(v, "report.latency_runs", &r->latency_runs, e)))
                return st;
            if (r->latency_runs < 1)
                return pl__cfg_at_node(e, v, "report.latency_runs must be >= 1 (got %d; the median needs timed passes)",
                               r->latency_runs);
        }
        if ((v = pl_node_get(m, "plots")) && (st = pl__cfg_get_bool(v, "report.plots", &r->plots, e)))
            return st;
    }
    char buf[4200];
    if (!dir) {
        snprintf(buf, sizeof buf, "reports/%s", xb->x.name);
        dir = buf;
    }
    if (!(r->dir = strdup(dir)))
        return pl__cfg_oom(e);
    if (!cache) {
        snprintf(buf, sizeof buf, "%s/cache", r->dir);
        cache = buf;
    }
    if (!(r->cache = strdup(cache)))
        return pl__cfg_oom(e);
    return PL_OK;
}

pl_status pl__cfg_dec_limits(const pl_node *m, int64_t *max_runs, pl_error *e)
{
    pl_status st;
    *max_runs = PL_DEFAULT_MAX_RUNS;
    if (!m)
        return PL_OK;
    if ((st = pl__cfg_need_map(m, "limits", limits_f, e)))
        return st;
    const pl_node *v = pl_node_get(m, "max_runs");
    if (v) {
        if ((st = pl__cfg_get_i64(v, "limits.max_runs", max_runs, e)))
            return st;
        if (*max_runs < 1)
            return pl__cfg_at_node(e, v, "limits.max_runs must be >= 1 (got %" PRId64 ")", *max_runs);
    }
    return PL_OK;
}

static const pl_optim_cfg default_optim = {
    .type = PL_OPTIM_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
    .weight_decay = 0, .momentum = 0, .dampening = 0, .nesterov = 0,
    .lr_schedule = PL_LR_CONSTANT, .step_size = 1, .gamma = 0.1, .min_lr = 0};

static pl_status decode_values(const pl_node *root, const char *file, xbuild *xb, pl_error *e);

/* Where in `file` an error message points (line * 1e6 + col); messages of
 * --set values and of other files sort after the whole file. */
static long long error_pos(const pl_error *err, const char *file)
{
    size_t n = strlen(file);
    int line, col;
    if (!strncmp(err->msg, file, n) && sscanf(err->msg + n, ":%d:%d:", &line, &col) == 2)
        return (long long)line * 1000000 + col;
    return LLONG_MAX;
}

/* Unknown keys anywhere and bad values are both checked, and the one
 * written first in the file is reported, so errors come in file order. */
pl_status pl__cfg_decode(const pl_node *root, const char *file, xbuild *xb, pl_error *e)
{
    pl_error ke;
    pl_error_clear(&ke);
    pl_status kst = pl__cfg_check_keys(root, "", pl__cfg_root_f, &ke);
    if (kst == PL_ENOMEM) {
        *e = ke;
        return kst;
    }
    pl_status st = decode_values(root, file, xb, e);
    if (kst && (st == PL_OK || (st != PL_ENOMEM && error_pos(&ke, file) <= error_pos(e, file)))) {
        *e = ke;
        return kst;
    }
    return st;
}

static pl_status decode_values(const pl_node *root, const char *file, xbuild *xb, pl_error *e)
{
    pl_experiment *x = &xb->x;
    pl_status st;
    const pl_node *v;
    if (!(x->file = strdup(file)))
        return pl__cfg_oom(e);

    if (!(v = pl_node_get(root, "name")))
        return pl__cfg_at_node(e, root, "missing required key 'name' (the experiment's name, [A-Za-z0-9_.-]+)");
    const char *s;
    if ((st = pl__cfg_get_str(v, "name", &s, e)))
        return st;
    if (!pl__cfg_name_valid(s, ".-") || !strcmp(s, ".") || !strcmp(s, ".."))
        return pl__cfg_at_node(e, v, "name '%.80s' must match [A-Za-z0-9_.-]+ (it names the report folder)", s);
    if (!(x->name = strdup(s)))
        return pl__cfg_oom(e);

    x->seed = 1;
    if ((v = pl_node_get(root, "seed")) && (st = pl__cfg_get_u64(v, "seed", &x->seed, e)))
        return st;

    if (!(v = pl_node_get(root, "model")))
        return pl__cfg_at_node(e, root, "missing required key 'model' (a model file, e.g. configs/models/simple_cnn.yaml)");
    if ((st = pl__cfg_get_str(v, "model", &s, e)))
        return st;
    if (!(x->model = strdup(s)))
        return pl__cfg_oom(e);
    /* model_init: the weights to start from (checked against model: when the run opens it) */
    if ((v = pl_node_get(root, "model_init"))) {
        if ((st = pl__cfg_get_str(v, "model_init", &s, e)))
            return st;
        if (!*s)
            return pl__cfg_at_node(e, v, "model_init: expected a checkpoint file (FILE.ckpt), got an empty string");
        if (!(x->model_init = strdup(s)) || !(x->model_init_file = xb_file(xb, v->file)))
            return pl__cfg_oom(e);
        x->model_init_line = v->line;
        x->model_init_col = v->col;
    }
    /* train.epochs: 0 = the given weights are the baseline; they exist only
     * with model_init: or an ONNX model (weights included) */
    size_t ml = strlen(x->model);
    int has_weights = x->model_init || (ml > 5 && !strcmp(x->model + ml - 5, ".onnx"));

    /* the sections: each is checked even after another failed, and the
     * error written first in the file wins (file order) */
    pl_status first = PL_OK;
    pl_error se;
#define PL__SECTION(call)                                                                           \
    do {                                                                                           \
        pl_error_clear(&se);                                                                       \
        pl_status s_ = (call);                                                                     \
        if (s_ == PL_ENOMEM) {                                                                     \
            *e = se;                                                                               \
            return s_;                                                                             \
        }                                                                                          \
        if (s_ && (!first || error_pos(&se, file) < error_pos(e, file))) {                         \
            *e = se;                                                                               \
            first = s_;                                                                            \
        }                                                                                          \
    } while (0)
    static const char *const dataset_defaults[] = {"path", "data/mnist", NULL};
    PL__SECTION(dec_plugin(xb, pl_node_get(root, "dataset"), root, "dataset", "idx", dataset_defaults, &x->dataset, &se));
    PL__SECTION(dec_augment(pl_node_get(root, "dataset"), &x->dataset, &x->augment, &se));
    PL__SECTION(dec_plugin(xb, pl_node_get(root, "backend"), root, "backend", "simd", NULL, &x->backend, &se));

    x->train.epochs = 1;
    x->train.batch_size = 64;
    x->train.optim = default_optim;
    PL__SECTION(dec_phase(pl_node_get(root, "train"), "train", has_weights ? 0 : 1, &x->train, &se));
    x->retrain = x->train;
    x->retrain.epochs = 1;
    x->finetune = x->train;
    x->finetune.epochs = 0;
    /* regularize: is per phase, never inherited (and never shared) */
    memset(&x->retrain.reg, 0, sizeof x->retrain.reg);
    memset(&x->finetune.reg, 0, sizeof x->finetune.reg);
    PL__SECTION(dec_phase(pl_node_get(root, "retrain"), "retrain", 0, &x->retrain, &se));
    PL__SECTION(dec_phase(pl_node_get(root, "finetune"), "finetune", 0, &x->finetune, &se));

    x->prune.granularity = PL_GRAN_CHANNEL;
    x->prune.count = -1;
    if ((v = pl_node_get(root, "prune")))
        PL__SECTION(dec_prune(xb, v, &se));
    if (!x->prune.enabled) { /* documented defaults, so dumps and tools see names */
        if (!(x->prune.criterion.plugin = strdup("l1")) || !(x->prune.schedule.plugin = strdup("oneshot")))
            return pl__cfg_oom(e);
    }
    if (x->retrain.rewind != PL_REWIND_NONE) /* what rewinding needs of the rest of the file */
        PL__SECTION(check_rewind(x, pl_node_get(pl_node_get(root, "retrain"), "rewind"), &se));
    PL__SECTION(dec_report(xb, pl_node_get(root, "report"), &se));
    if ((v = pl_node_get(root, "plugin_path")))
        PL__SECTION(dec_names(v, "plugin_path", NULL, &x->plugin_path, &x->n_plugin_path, &se));
    PL__SECTION(pl__cfg_dec_limits(pl_node_get(root, "limits"), &x->max_runs, &se));
#undef PL__SECTION
    return first;
}

