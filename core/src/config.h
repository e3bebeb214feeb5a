/*
 * config.h — strict, typed experiment and model configuration.
 *
 * Flow: libyaml events -> pl_node tree (every node keeps file:line:col) ->
 * edits (--set, one sweep combination) -> typed decode with defaults and
 * range checks -> pl_experiment. Every error is one line
 * "file:line:col: message" (with "did you mean 'x'?" for misspelt keys),
 * status PL_ECONFIG.
 *
 * Usage:
 *     pl_error err;
 *     pl_config *cfg;                       // parsed file + overrides
 *     if (pl_config_load("experiments/seed.yaml", sets, n_sets, &cfg, &err))
 *         ... print err.msg, exit 2
 *     size_t n = pl_config_run_count(cfg);  // 1 without sweep:
 *     for (size_t i = 0; i < n; i++) {
 *         pl_experiment *x;
 *         if (pl_config_expand(cfg, i, &x, &err)) ...
 *         ... run x ...
 *         pl_experiment_free(x);
 *     }
 *     pl_config_free(cfg);
 *
 * Defaults, ranges and the meaning of every key are written once, in the
 * schema tables of config.c (docs/config-keys.md is generated from them):
 *   seed 1, backend simd, dataset {plugin: idx, path: data/mnist},
 *   train {epochs 1, batch_size 64, optimizer {type adam, lr 1e-3, ...}};
 *   retrain and finetune default to the train section with epochs 1
 *   (retrain) / 0 (finetune); prune absent = no pruning; <phase>.regularize
 *   never inherited by retrain/finetune; report.dir reports/<name>,
 *   report.cache <report.dir>/cache.
 *
 * Shapes: name and model are required; a present prune: needs exactly one
 * of sparsity / layers, or, with granularity layer, one of sparsity (share
 * of the removable blocks) / count (blocks to remove; layer granularity
 * only; prune.layers is refused there, name candidates with include). `lr: X` in train/retrain/finetune is shorthand for
 * optimizer.lr (giving both is an error). A plugin reference is a name or a
 * map {plugin: NAME, params...}; a map without plugin: uses the default
 * plugin (dataset: merged onto {plugin: idx, path: data/mnist}).
 *
 * Overrides: each --set is applied to the tree in order, then each sweep
 * combination on top (a sweep axis wins over a --set of the same key).
 * Setting a plugin reference by its own key (prune.criterion=l2) or by
 * .plugin sets only its name and keeps its parameters; setting a list key
 * (prune.include=conv1) gives a one-element list. Positions of --set values
 * are "--set key=value" with no line:col.
 */
#ifndef PL_CONFIG_H
#define PL_CONFIG_H

#include "config_types.h" /* plugin references, model files */
#include "error.h"
#include "suggest.h" /* pl_suggest, for the readers of model files */

#include <stddef.h>
#include <stdint.h>

/* ---- position-keeping YAML tree ----------------------------------------- */

typedef enum pl_node_type { PL_NODE_SCALAR = 1, PL_NODE_MAP = 2, PL_NODE_SEQ = 3 } pl_node_type;

typedef struct pl_node pl_node;
struct pl_node {
    pl_node_type type;
    const char *file; /* borrowed from the pl_config that owns the tree */
    int line, col;    /* 1-based */
    char *scalar;     /* SCALAR: text as written (quoted flag below) */
    int quoted;       /* SCALAR: was single/double quoted (forces string) */
    /* MAP: keys[i] -> items[i]; SEQ: items[i] */
    size_t n;
    char **keys;
    pl_node **items;
    int *key_line, *key_col;
};

/* Parse a YAML file into a tree; rejects duplicate keys, anchors/aliases,
 * non-scalar keys and multi-document files. Caller frees with pl_node_free. */
pl_status pl_yaml_parse_file(const char *path, pl_node **out, pl_error *err);
pl_status pl_yaml_parse_string(const char *name, const char *text, pl_node **out, pl_error *err);
/* (An empty file, or one holding only comments, parses to an empty unquoted
 * scalar at 1:1; the root node owns the copy of the file name that every
 * node of its tree borrows, so free a tree only from its root.) */
void pl_node_free(pl_node *n);
/* Lookup of a key in a MAP node (NULL if absent or not a map). */
const pl_node *pl_node_get(const pl_node *map, const char *key);
/* Tree editing (used for --set and sweep combinations). pl_node_new copies
 * `scalar` (SCALAR only) and borrows `file`; pl_node_append takes `child`
 * (and copies `key`, ignored for SEQ) only when it returns PL_OK;
 * pl_node_clone deep-copies a subtree, borrowing the same file names, and
 * returns NULL when out of memory. */
pl_node *pl_node_new(pl_node_type type, const char *file, int line, int col, const char *scalar);
pl_status pl_node_append(pl_node *parent, const char *key, int key_line, int key_col,
                         pl_node *child);
pl_node *pl_node_clone(const pl_node *n);

/* ---- plugin references ----------------------------------------------------- */

/* dataset.augment (augment.h): training batches only; zeros = off */
typedef struct pl_augment_cfg {
    int crop_pad;  /* pad by P zeros, random crop back: 0 = none */
    int hflip;     /* random horizontal flip */
} pl_augment_cfg;

/* ---- experiment ------------------------------------------------------------- */

typedef enum pl_optim_type { PL_OPTIM_ADAM = 1, PL_OPTIM_SGD = 2 } pl_optim_type;
typedef enum pl_lr_sched { PL_LR_CONSTANT = 1, PL_LR_STEP = 2, PL_LR_COSINE = 3 } pl_lr_sched;

typedef struct pl_optim_cfg {
    pl_optim_type type;
    double lr, beta1, beta2, eps, weight_decay;
    double momentum, dampening;
    int nesterov;
    pl_lr_sched lr_schedule;
    int step_size;      /* step: epochs between decays */
    double gamma;       /* step: factor */
    double min_lr;      /* cosine: eta_min */
} pl_optim_cfg;

/* ---- regularize: (train/retrain/finetune), see regularize.h ---- */
typedef enum pl_reg_type {
    PL_REG_NONE = 0,        /* no penalty (the default) */
    PL_REG_L1 = 1,          /* coef * sum |w| */
    PL_REG_L2 = 2,          /* coef/2 * sum w^2 */
    PL_REG_GROUP_LASSO = 3, /* coef * sum over filters/neurons of ||w_unit||_2 */
    PL_REG_BN_L1 = 4        /* coef * sum |gamma| over batchnorm layers (network slimming) */
} pl_reg_type;

typedef struct pl_reg_cfg {
    pl_reg_type type;
    double coef;        /* finite, >= 0 */
    char **layers;      /* conv2d/linear names; empty = every one but the output layer */
    size_t n_layers;
} pl_reg_cfg;
/* ---- end regularize ---- */

typedef enum pl_rewind {
    PL_REWIND_NONE = 0,
    PL_REWIND_INIT = 1,   /* the baseline's own initialisation (seed) */
    PL_REWIND_EPOCH = 2,  /* the baseline after epoch rewind_epoch */
    PL_REWIND_RANDOM = 3  /* a different random initialisation: the control */
} pl_rewind;

/* retrain.distill / finetune.distill (distill.h): the dense baseline teaches */
typedef struct pl_distill_cfg {
    int enabled;        /* a distill: map is present */
    double alpha;       /* [0,1]: weight of the soft (teacher) term */
    double temperature; /* > 0 */
} pl_distill_cfg;

typedef struct pl_phase_cfg {
    int epochs;         /* >= 0 (train >= 1) */
    int batch_size;     /* >= 1 */
    pl_optim_cfg optim;
    pl_reg_cfg reg;     /* per phase, never inherited from train */
    /* retrain.rewind (rewind.h): before each retraining, surviving weights
     * go back to their values at initialisation, after epoch K of the
     * baseline's training, or to a fresh random initialisation (control) */
    pl_rewind rewind;   /* PL_REWIND_NONE unless retrain.rewind is set */
    int rewind_epoch;   /* PL_REWIND_EPOCH: K >= 1 */
    pl_distill_cfg distill; /* retrain/finetune only; never inherited */
} pl_phase_cfg;

typedef struct pl_layer_target {
    char *layer;
    double fraction;    /* in [0,1) or -1 when count is used */
    int64_t count;      /* >= 0 or -1 when fraction is used */
    const char *file;
    int line, col;
} pl_layer_target;

/* prune.group_reduction: member scores of a pruning group -> one score */
typedef enum pl_group_reduction {
    PL_GROUP_MEAN = 0, /* default */
    PL_GROUP_SUM = 1,
    PL_GROUP_MAX = 2
} pl_group_reduction;

typedef struct pl_prune_cfg {
    int enabled;                /* a prune: section is present */
    pl_plugin_ref criterion;
    pl_plugin_ref schedule;
    pl_granularity granularity;
    int has_sparsity;
    double sparsity;            /* [0,1) when has_sparsity */
    pl_layer_target *layers;    /* when !has_sparsity */
    size_t n_layers;
    char **include; size_t n_include;  /* layer names; empty = all prunable */
    char **exclude; size_t n_exclude;
    double tolerance;           /* allowed miss in units per layer (default 0) */
    int64_t count;              /* granularity layer: blocks to remove, or -1 (layer_prune.c) */
    pl_group_reduction group_reduction; /* how a pruning group's member scores combine (mean) */
    int recalibrate_bn;         /* batches re-estimating batchnorm statistics after each step, 0 = off */
} pl_prune_cfg;

typedef struct pl_report_cfg {
    char *dir;                  /* default reports/<name> */
    char *cache;                /* default <dir>/cache */
    int latency_runs;           /* >= 1, default 5 */
    int plots;                  /* default 1 */
} pl_report_cfg;

typedef struct pl_experiment {
    char *file;                 /* the experiment file */
    char *name;
    uint64_t seed;
    char *model;                /* model file path as written */
    char *model_init;           /* model_init: a checkpoint of `model` to start from, or NULL */
    const char *model_init_file;/* where model_init: was written (borrowed), for errors */
    int model_init_line, model_init_col;
    pl_plugin_ref dataset;      /* params include "path" */
    pl_augment_cfg augment;     /* dataset.augment, taken out of dataset's params */
    pl_plugin_ref backend;
    pl_phase_cfg train, retrain, finetune;
    pl_prune_cfg prune;
    pl_report_cfg report;
    char **plugin_path; size_t n_plugin_path;
    int64_t max_runs;
    /* identity of this run within a sweep */
    size_t run_index;           /* 0-based position in the sweep */
    char run_id[17];            /* short hash of the resolved config */
    char *sweep_desc;           /* "prune.criterion=l1 seed=2" or "" */
    /* what the run reads (identity.c): "key: value" lines for the model's
     * canonical content, the dataset checksums and each plugin's name,
     * version ("plugin.*") and file hash ("file.*"); NULL until
     * pl_experiment_set_identity */
    char *identity;
} pl_experiment;

/* ---- loading, overrides and sweeps -------------------------------------- */

typedef struct pl_config pl_config;

/* Loads and checks `path`; applies `sets` ("dotted.key=value", each checked
 * like the file: unknown key → error naming the key and a suggestion).
 * Validates every run the sweep expands to. */
pl_status pl_config_load(const char *path, const char *const *sets, size_t n_sets,
                         pl_config **out, pl_error *err);
/* The same from YAML text in memory; `name` stands for the file in errors
 * (`prunelab eval` builds its experiment from --set this way). */
pl_status pl_config_load_string(const char *name, const char *text, const char *const *sets, size_t n_sets,
                                pl_config **out, pl_error *err);
void pl_config_free(pl_config *cfg);
size_t pl_config_run_count(const pl_config *cfg);
/* The i-th run (0-based, sweep order: keys in written order, last fastest).
 * Caller frees with pl_experiment_free. */
pl_status pl_config_expand(const pl_config *cfg, size_t i, pl_experiment **out, pl_error *err);
/* Sweep axes for display: n axes, each with name and values */
size_t pl_config_sweep_axes(const pl_config *cfg);
const char *pl_config_sweep_key(const pl_config *cfg, size_t axis, size_t *n_values);
/* Value v of an axis as written (borrowed from cfg); NULL if out of range. */
const char *pl_config_sweep_value(const pl_config *cfg, size_t axis, size_t v);
void pl_experiment_free(pl_experiment *x);
/* Takes ownership of `identity` (see pl_experiment.identity) and recomputes
 * run_id from the resolved config and every identity line except the
 * plugin file hashes ("file.*": a rebuild of the same plugin source keeps
 * run_ids comparable across machines; records remember the hashes and are
 * not reused when they differ). */
pl_status pl_experiment_set_identity(pl_experiment *x, char *identity); /* PL_ENOMEM: x is unusable */

/* Canonical text of the resolved experiment (all defaults filled, stable
 * key order); what run_id hashes and what the manifest stores. Caller frees.
 * One "dotted.key: value" per line; doubles as %.17g; plugin parameters and
 * prune.layers sorted by name. run_id = FNV-1a-64 (16 hex digits) of every
 * line except name, report.*, plugin_path and limits.*, so renaming a run or
 * moving its output (--out) keeps its identity. NULL when out of memory. */
char *pl_experiment_dump(const pl_experiment *x);
/* Identity of the baseline a run trains before pruning (16 hex digits +
 * NUL): FNV-1a-64 over the dump lines of seed, model (the path text),
 * dataset (plugin and parameters), backend and train.* only, so every run of
 * a sweep that differs only in pruning, retraining or reporting shares one
 * cached baseline. */
pl_status pl_experiment_baseline_key(const pl_experiment *x, char out[17]); /* PL_OK or PL_ENOMEM */

/* Every experiment key as a Markdown table (type, default, range or
 * choices, meaning), from the schema; docs/config-keys.md is this text
 * (`prunelab config-keys`). Caller frees; NULL when out of memory. */
char *pl_config_keys_markdown(void);


#endif
