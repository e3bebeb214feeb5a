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
#include <stddef.h>
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

/* names indexed by the enums of config.h (F_ENUM stores base + index) */
static const char *const optim_names[] = {"adam", "sgd"};
const char *const pl__cfg_lrs_names[] = {"constant", "step", "cosine"};
const char *const pl__cfg_gran_names[] = {"weight", "channel", "neuron", "layer"};
const char *const pl__cfg_group_red_names[] = {"mean", "sum", "max"};
const char *const pl__cfg_reg_names[] = {"none", "l1", "l2", "group_lasso", "bn_l1"};
#define N_NAMES(a) (sizeof a / sizeof a[0])
_Static_assert(N_NAMES(optim_names) == PL_OPTIM_SGD, "optim_names follows pl_optim_type (from 1)");
_Static_assert(N_NAMES(pl__cfg_lrs_names) == PL_LR_COSINE, "pl__cfg_lrs_names follows pl_lr_sched (from 1)");
_Static_assert(N_NAMES(pl__cfg_gran_names) == PL_GRAN_LAYER, "pl__cfg_gran_names follows pl_granularity (from 1)");
_Static_assert(N_NAMES(pl__cfg_group_red_names) == PL_GROUP_MAX + 1,
               "pl__cfg_group_red_names follows pl_group_reduction");
_Static_assert(N_NAMES(pl__cfg_reg_names) == PL_REG_BN_L1 + 1, "pl__cfg_reg_names follows pl_reg_type");

/* Stored scalar keys (field in config_internal.h): T is the section's
 * struct, m the member, d the default, fl more flags. */
#define STORED(T, m, fl) .flags = FL_STORED | (fl), .off = offsetof(T, m)
#define INT(T, m, d, lo_, hi_, fl) .kind = F_INT, STORED(T, m, fl), .def = d, .lo = lo_, .hi = hi_
#define I64(T, m, d, lo_, hi_, fl) .kind = F_I64, STORED(T, m, fl), .def = d, .lo = lo_, .hi = hi_
#define NUM(T, m, d, lo_, hi_, fl, rule_) \
    .kind = F_NUM, STORED(T, m, fl), .def = d, .lo = lo_, .hi = hi_, .rule = rule_
#define FRACTION(T, m, d, fl) \
    .kind = F_NUM, STORED(T, m, FL_FRACTION | (fl)), .def = d, .lo = 0, .hi = 1, .rule = "in [0, 1)"
#define BOOL(T, m, d) .kind = F_BOOL, STORED(T, m, 0), .def = d
#define ENUM(T, m, d, names_, base_, fl) \
    .kind = F_ENUM, STORED(T, m, fl), .def = d, .names = names_, .n_names = N_NAMES(names_), .base = base_
#define POS (FL_LO_OPEN | FL_HI_OPEN) /* a finite number > 0 */
#define NONNEG FL_HI_OPEN             /* a finite number >= 0 */

static const field optim_f[] = {
    {"type", ENUM(pl_optim_cfg, type, 0, optim_names, PL_OPTIM_ADAM, 0), .doc = "the optimizer, PyTorch semantics"},
    {"lr", NUM(pl_optim_cfg, lr, 1e-3, 0, INFINITY, POS, "a finite number > 0"), .doc = "learning rate"},
    {"beta1", NUM(pl_optim_cfg, beta1, 0.9, 0, 1, FL_HI_OPEN, "in [0, 1)"), .doc = "adam: first-moment decay"},
    {"beta2", NUM(pl_optim_cfg, beta2, 0.999, 0, 1, FL_HI_OPEN, "in [0, 1)"), .doc = "adam: second-moment decay"},
    {"eps", NUM(pl_optim_cfg, eps, 1e-8, 0, INFINITY, POS, "a finite number > 0"), .doc = "adam: denominator term"},
    {"weight_decay", NUM(pl_optim_cfg, weight_decay, 0, 0, INFINITY, NONNEG, "a finite number >= 0"),
     .doc = "L2 added to the gradient (both optimizers)"},
    {"momentum", NUM(pl_optim_cfg, momentum, 0, 0, INFINITY, NONNEG, "a finite number >= 0"), .doc = "sgd: momentum"},
    {"dampening", NUM(pl_optim_cfg, dampening, 0, 0, INFINITY, NONNEG, "a finite number >= 0"),
     .doc = "sgd: momentum dampening"},
    {"nesterov", BOOL(pl_optim_cfg, nesterov, 0), .doc = "sgd: Nesterov momentum (needs momentum > 0, dampening 0)"},
    {0}};
static const field lrs_f[] = {
    {"type", ENUM(pl_optim_cfg, lr_schedule, 0, pl__cfg_lrs_names, PL_LR_CONSTANT, 0),
     .doc = "step: x gamma every step_size epochs; cosine: down to min_lr"},
    {"step_size", INT(pl_optim_cfg, step_size, 1, 1, INFINITY, 0), .rule = " epoch",
     .doc = "step: epochs between decays"},
    {"gamma", NUM(pl_optim_cfg, gamma, 0.1, 0, INFINITY, POS, "a finite number > 0"), .doc = "step: decay factor"},
    {"min_lr", NUM(pl_optim_cfg, min_lr, 0, 0, INFINITY, NONNEG, "a finite number >= 0"),
     .doc = "cosine: the learning rate it ends at"},
    {0}};
/* regularize: (regularize.h); type none leaves the phase without one, so
 * dec_reg decodes type and coef itself */
static const field reg_f[] = {
    {"type", ENUM(pl_reg_cfg, type, 0, pl__cfg_reg_names, PL_REG_NONE, FL_OWN), .def_doc = "(required)",
     .doc = "the sparsity penalty added to the loss"},
    {"coef", NUM(pl_reg_cfg, coef, 0, 0, INFINITY, NONNEG | FL_OWN, "a finite number >= 0"),
     .def_doc = "(required)", .doc = "the penalty's weight, e.g. 1e-4"},
    {"layers", .kind = F_LIST, .def_doc = "every conv2d/linear but the output layer", .doc = "the layers it covers"},
    {0}};
static const field distill_f[] = {
    {"alpha", NUM(pl_distill_cfg, alpha, 0.5, 0, 1, 0, "a number in [0, 1]"),
     .doc = "weight of the soft (teacher) term"},
    {"temperature", NUM(pl_distill_cfg, temperature, 4, 0, INFINITY, POS, "a finite number > 0"),
     .doc = "softmax temperature of both models"},
    {0}};
static const field phase_f[] = {
    {"epochs", INT(pl_phase_cfg, epochs, 1, 0, INFINITY, FL_OWN), .def_doc = "1 (finetune: 0)",
     .doc = "epochs of the phase; train: >= 1, or 0 with model_init or an ONNX model (the given weights are "
            "the baseline)"},
    {"batch_size", INT(pl_phase_cfg, batch_size, 64, 1, INFINITY, 0),
     .doc = "images per step, at most the training-set size"},
    {"lr", NUM(pl_phase_cfg, optim.lr, 1e-3, 0, INFINITY, POS | FL_OWN | FL_ALIAS, "a finite number > 0"),
     .def_doc = "-",
     .doc = "shorthand for optimizer.lr (not both)"},
    {"optimizer", .kind = F_MAP, .sub = optim_f, .flags = FL_DUMP, .off = offsetof(pl_phase_cfg, optim),
     .doc = "the optimizer and its settings"},
    {"lr_schedule", .kind = F_MAP, .sub = lrs_f, .flags = FL_DUMP, .off = offsetof(pl_phase_cfg, optim),
     .doc = "the learning-rate schedule"},
    {"regularize", .kind = F_MAP, .sub = reg_f, .off = offsetof(pl_phase_cfg, reg), .def_doc = "none",
     .doc = "a sparsity penalty added to the loss; per phase, never inherited from train"},
    {"rewind", .kind = F_STR, .def_doc = "none",
     .doc = "retrain only, lottery tickets: before each retraining the surviving weights go back to init "
            "(their initial values), epoch:K (the baseline after epoch K) or random (a fresh initialisation, "
            "the control); none keeps them. Weight granularity only"},
    {"distill", .kind = F_MAP, .sub = distill_f, .off = offsetof(pl_phase_cfg, distill), .def_doc = "off",
     .doc = "retrain/finetune only: the dense baseline teaches the pruned network; never under train, never "
            "inherited"},
    {0}};
static const field target_f[] = {
    {"fraction", FRACTION(pl_layer_target, fraction, -1, FL_OWN), .def_doc = "-",
     .doc = "share of the layer's units to remove (or count)"},
    {"count", I64(pl_layer_target, count, -1, 0, INFINITY, FL_OWN), .def_doc = "-",
     .doc = "units to remove (or fraction)"},
    {0}};
static const field prune_f[] = {
    {"criterion", .kind = F_PLUGIN, .def_doc = "l1", .doc = "criterion plugin: a name or {plugin: NAME, params...}"},
    {"schedule", .kind = F_PLUGIN, .def_doc = "oneshot",
     .doc = "schedule plugin: a name or {plugin: NAME, params...}"},
    {"granularity", ENUM(pl_prune_cfg, granularity, 1, pl__cfg_gran_names, PL_GRAN_WEIGHT, FL_OWN),
     .doc = "weight, channel (conv filters), neuron (linear units) or layer (whole blocks)"},
    {"sparsity", FRACTION(pl_prune_cfg, sparsity, 0, FL_OWN), .def_doc = "-",
     .doc = "one fraction for every prunable layer, or layers (granularity layer: share of the removable blocks)"},
    {"layers", .kind = F_LAYERS, .sub = target_f, .def_doc = "-",
     .doc = "per-layer targets {LAYER: {fraction or count}}"},
    {"include", .kind = F_LIST, .def_doc = "all prunable", .doc = "layer names in scope"},
    {"exclude", .kind = F_LIST, .def_doc = "none", .doc = "layer names out of scope"},
    {"tolerance", NUM(pl_prune_cfg, tolerance, 0, 0, INFINITY, NONNEG, "a finite number >= 0 (units)"),
     .doc = "allowed miss, in units per layer, before a run is missed_target"},
    {"count", I64(pl_prune_cfg, count, -1, 1, INFINITY, FL_OWN), .def_doc = "-",
     .doc = "granularity layer only: blocks to remove, or sparsity"}, /* layer_prune.c */
    {"group_reduction", ENUM(pl_prune_cfg, group_reduction, 0, pl__cfg_group_red_names, PL_GROUP_MEAN, 0),
     .doc = "how the scores of a pruning group's members combine into one (chain models: one layer a group, "
            "so any choice gives the same result)"},
    {"recalibrate_bn", INT(pl_prune_cfg, recalibrate_bn, 0, 0, INFINITY, 0), .rule = " batches",
     .hint = "; 0 = off, 50 is a usual value",
     .doc = "after each pruning step, replace every batchnorm's running statistics by their average over N "
            "training batches (adaptive batchnorm; 0 = off)"},
    {0}};
static const field report_f[] = {
    {"dir", .kind = F_STR, .def_doc = "reports/NAME", .doc = "report folder (--out DIR replaces it)"},
    {"cache", .kind = F_STR, .def_doc = "REPORT_DIR/cache",
     .doc = "baseline checkpoints, shareable between experiments"},
    {"latency_runs", INT(pl_report_cfg, latency_runs, 5, 1, INFINITY, 0), .hint = "; the median needs timed passes",
     .doc = "timed passes per latency figure (their median)"},
    {"plots", BOOL(pl_report_cfg, plots, 1), .doc = "draw plots when gnuplot is installed"},
    {0}};
/* limits: decoded on its own (config_sweep.c checks a sweep's size before
 * expanding it), so its struct is the int64_t max_runs itself */
static const field limits_f[] = {
    {"max_runs", .kind = F_I64, .flags = FL_STORED, .off = 0, .def = PL_DEFAULT_MAX_RUNS, .lo = 1, .hi = INFINITY,
     .doc = "largest sweep allowed"},
    {0}};
/* dataset.augment: {crop_pad: P, hflip: B} (augment.h): the host's, not the
 * plugin's, so its flattened keys leave the dataset's parameters. */
static const field augment_f[] = {
    {"crop_pad", INT(pl_augment_cfg, crop_pad, 0, 0, 4096, 0), .rule = " pixels",
     .hint = "; 0 = no crop, 4 is the usual CIFAR value", .doc = "pad by P zeros, crop back at random (0 = off)"},
    {"hflip", BOOL(pl_augment_cfg, hflip, 0), .doc = "flip horizontally at random"},
    {0}};
/* the host's keys under the dataset reference (the others are the plugin's) */
static const field dataset_f[] = {
    {"augment", .kind = F_MAP, .sub = augment_f, .off = offsetof(pl_experiment, augment), .def_doc = "off",
     .doc = "seeded random crop and horizontal flip of training batches (any image dataset)"},
    {0}};
const field pl__cfg_root_f[] = {
    {"name", .kind = F_STR, .def_doc = "(required)",
     .doc = "experiment name, [A-Za-z0-9_.-]+; the report goes to reports/NAME/"},
    {"seed", .kind = F_UINT, STORED(pl_experiment, seed, 0), .def = 1,
     .doc = "seeds initialisation, shuffling, dropout, the random criterion, calibration batches"},
    {"model", .kind = F_STR, .def_doc = "(required)",
     .doc = "a model file (YAML or .onnx) or a bundled model's name such as simple_cnn"},
    {"model_init", .kind = F_STR, .def_doc = "-",
     .doc = "a checkpoint of model whose weights the baseline starts from"},
    {"dataset", .kind = F_PLUGIN, .sub = dataset_f, .def_doc = "{plugin: idx, path: data/mnist}",
     .doc = "dataset plugin and its parameters"},
    {"backend", .kind = F_PLUGIN, .def_doc = "simd", .doc = "backend plugin (ref is the plain-C oracle)"},
    {"train", .kind = F_MAP, .sub = phase_f, .off = offsetof(pl_experiment, train), .doc = "training the baseline"},
    {"retrain", .kind = F_MAP, .sub = phase_f, .off = offsetof(pl_experiment, retrain),
     .def_doc = "train's, epochs 1",
     .doc = "retraining after each prune step (a fresh optimizer); the keys of train"},
    {"finetune", .kind = F_MAP, .sub = phase_f, .off = offsetof(pl_experiment, finetune),
     .def_doc = "train's, epochs 0",
     .doc = "an optional last phase, e.g. finetune.lr: 1e-4; the keys of train"},
    {"prune", .kind = F_MAP, .sub = prune_f, .off = offsetof(pl_experiment, prune), .def_doc = "no pruning",
     .doc = "what to prune and how; absent = train and evaluate only"},
    {"report", .kind = F_MAP, .sub = report_f, .off = offsetof(pl_experiment, report),
     .doc = "where and what to report"},
    {"sweep", .kind = F_SWEEP, .def_doc = "-", .doc = "{dotted.key: [values...]}: the cross product, one run each"},
    {"plugin_path", .kind = F_LIST, .def_doc = "[]", .doc = "extra plugin directories, like --plugin-path"},
    {"limits", .kind = F_MAP, .sub = limits_f, .off = offsetof(pl_experiment, max_runs), .doc = "safety limits"},
    {0}};

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

static pl_status dec_names(const pl_node *n, const char *path, const char *extra, char ***out, size_t *count,
                           pl_error *e);

/* dataset.augment (augment_f): the host's keys leave the plugin's parameters. */
static pl_status dec_augment(const pl_node *ds, pl_plugin_ref *r, pl_augment_cfg *out, pl_error *e)
{
    const pl_node *a = ds && ds->type == PL_NODE_MAP ? pl_node_get(ds, "augment") : NULL;
    pl__cfg_defaults(augment_f, out);
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
    return st ? st : pl__cfg_dec_fields(a, "dataset.augment", augment_f, out, e);
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
    snprintf(p, sizeof p, "%s.type", path);
    if ((st = pl__cfg_dec_value(t, p, pl__cfg_field_find(reg_f, "type"), r, e)))
        return st;
    if (r->type == PL_REG_NONE)
        return PL_OK;
    if (!c)
        return pl__cfg_at_node(e, m, "%s: missing 'coef' (the penalty's weight, e.g. 1e-4)", path);
    snprintf(p, sizeof p, "%s.coef", path);
    if ((st = pl__cfg_dec_value(c, p, pl__cfg_field_find(reg_f, "coef"), r, e)))
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
    out->enabled = 1;
    pl__cfg_defaults(distill_f, out);
    return pl__cfg_dec_fields(v, p, distill_f, out, e);
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
    if ((v = pl_node_get(m, "epochs"))) { /* train's bound depends on the rest of the file */
        field f = *pl__cfg_field_find(phase_f, "epochs");
        f.lo = min_epochs;
        f.hint = min_epochs ? "; the baseline needs at least one epoch: a model YAML has no weights of its own, "
                              "so train.epochs: 0 needs model_init: FILE.ckpt or an .onnx model"
                            : NULL;
        snprintf(p, sizeof p, "%s.epochs", sec);
        if ((st = pl__cfg_dec_value(v, p, &f, out, e)))
            return st;
    }
    if ((st = pl__cfg_dec_fields(m, sec, phase_f, out, e)))
        return st;
    if (opt) {
        snprintf(p, sizeof p, "%s.optimizer", sec);
        if ((st = pl__cfg_need_map(opt, p, optim_f, e)) || (st = pl__cfg_dec_fields(opt, p, optim_f, &out->optim, e)))
            return st;
    }
    if (lr) {
        snprintf(p, sizeof p, "%s.lr", sec);
        if (opt && opt->type == PL_NODE_MAP && pl_node_get(opt, "lr"))
            return pl__cfg_at_node(e, lr, "%s: give %s.lr or %s.optimizer.lr, not both", p, sec, sec);
        if ((st = pl__cfg_dec_value(lr, p, pl__cfg_field_find(phase_f, "lr"), out, e)))
            return st;
    }
    if ((v = pl_node_get(m, "lr_schedule"))) {
        snprintf(p, sizeof p, "%s.lr_schedule", sec);
        if ((st = pl__cfg_need_map(v, p, lrs_f, e)) || (st = pl__cfg_dec_fields(v, p, lrs_f, &out->optim, e)))
            return st;
    }
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
        pl__cfg_defaults(target_f, t); /* fraction and count -1: neither given */
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
        snprintf(q, sizeof q, "%s.%s", p, f ? "fraction" : "count");
        if ((st = pl__cfg_dec_value(f ? f : c, q, pl__cfg_field_find(target_f, f ? "fraction" : "count"), t, e)))
            return st;
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
    const pl_node *v;
    if ((st = dec_plugin(xb, pl_node_get(m, "criterion"), m, "prune.criterion", "l1", NULL, &pr->criterion, e)) ||
        (st = dec_plugin(xb, pl_node_get(m, "schedule"), m, "prune.schedule", "oneshot", NULL, &pr->schedule, e)))
        return st;
    if ((v = pl_node_get(m, "granularity")) &&
        (st = pl__cfg_dec_value(v, "prune.granularity", pl__cfg_field_find(prune_f, "granularity"), pr, e)))
        return st;
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
        if (cn && (st = pl__cfg_dec_value(cn, "prune.count", pl__cfg_field_find(prune_f, "count"), pr, e)))
            return st;
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
        if ((st = pl__cfg_dec_value(sp, "prune.sparsity", pl__cfg_field_find(prune_f, "sparsity"), pr, e)))
            return st;
    } else if (ly && (st = dec_layers(xb, ly, pr, e))) {
        return st;
    }
    if ((v = pl_node_get(m, "include")) && (st = dec_names(v, "prune.include", "", &pr->include, &pr->n_include, e)))
        return st;
    if ((v = pl_node_get(m, "exclude")) && (st = dec_names(v, "prune.exclude", "", &pr->exclude, &pr->n_exclude, e)))
        return st;
    return pl__cfg_dec_fields(m, "prune", prune_f, pr, e); /* tolerance, group_reduction */
}

static pl_status dec_report(xbuild *xb, const pl_node *m, pl_error *e)
{
    pl_report_cfg *r = &xb->x.report;
    const char *dir = NULL, *cache = NULL;
    pl_status st;
    pl__cfg_defaults(report_f, r);
    if (m) {
        const pl_node *v;
        if ((st = pl__cfg_need_map(m, "report", report_f, e)))
            return st;
        if ((v = pl_node_get(m, "dir")) && (st = pl__cfg_get_str(v, "report.dir", &dir, e)))
            return st;
        if ((v = pl_node_get(m, "cache")) && (st = pl__cfg_get_str(v, "report.cache", &cache, e)))
            return st;
        if ((st = pl__cfg_dec_fields(m, "report", report_f, r, e))) /* latency_runs, plots */
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
    pl__cfg_defaults(limits_f, max_runs);
    if (!m)
        return PL_OK;
    if ((st = pl__cfg_need_map(m, "limits", limits_f, e)))
        return st;
    return pl__cfg_dec_fields(m, "limits", limits_f, max_runs, e);
}

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

    pl__cfg_defaults(pl__cfg_root_f, x); /* seed */
    if ((v = pl_node_get(root, "seed")) && (st = pl__cfg_dec_value(v, "seed", pl__cfg_field_find(pl__cfg_root_f, "seed"), x, e)))
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

    pl__cfg_defaults(phase_f, &x->train);
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

    pl__cfg_defaults(prune_f, &x->prune);
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

