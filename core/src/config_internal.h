/*
 * config_internal.h — private to the experiment-file reader: config.c
 * (errors, schema, decode), config_get.c (typed getters), config_keys.c
 * (dotted keys), config_dump.c (dump, identities), config_sweep.c
 * (pl_config, sweeps).
 */
#ifndef PL_CONFIG_INTERNAL_H
#define PL_CONFIG_INTERNAL_H

#include "config.h"
#include "suggest.h"

#include <stddef.h>
#include <stdint.h>

#define PL_KEY_MAX_PARTS 32
#define PL_DEFAULT_MAX_RUNS 1000

/* ---- schema (config.c) ---- */

typedef enum fkind {
    F_INT = 1, F_UINT, F_NUM, F_BOOL, F_STR, F_ENUM, /* single values */
    F_LIST,    /* list of strings */
    F_MAP,     /* a section: sub lists its keys */
    F_PLUGIN,  /* plugin reference: name or {plugin:, params} */
    F_LAYERS,  /* map of layer name -> sub */
    F_SWEEP,   /* sweep: itself */
    F_PNAME,   /* (dotted keys) the .plugin of a reference */
    F_PARAM,   /* (dotted keys) a plugin parameter */
    F_LAYER    /* (dotted keys) a layer name under prune.layers */
} fkind;

typedef struct field {
    const char *key;
    fkind kind;
    const struct field *sub;
} field;

extern const field pl__cfg_root_f[];
const field *pl__cfg_field_find(const field *tbl, const char *key);
/* "unknown key 'k' in path (did you mean 'x'?)" at the given position. */
pl_status pl__cfg_unknown_key(pl_error *e, const char *file, int line, int col, const char *key,
                              const char *path, const field *tbl);
pl_status pl__cfg_check_keys(const pl_node *m, const char *path, const field *tbl, pl_error *e);
int pl__cfg_name_valid(const char *s, const char *extra);

/* names indexed by the enums of config.h */
extern const char *const pl__cfg_lrs_names[];
extern const char *const pl__cfg_gran_names[];
extern const char *const pl__cfg_group_red_names[];
extern const char *const pl__cfg_reg_names[];

/* ---- errors (config.c): "file:line:col: message", PL_ECONFIG ---- */

pl_status pl__cfg_at(pl_error *e, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
pl_status pl__cfg_at_node(pl_error *e, const pl_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
pl_status pl__cfg_oom(pl_error *e);
int pl__cfg_is_null(const pl_node *n);
/* "a map", "a list", "nothing", "'text'" — what was found, for messages. */
const char *pl__cfg_got(const pl_node *n, char *buf, size_t cap);

/* ---- decode (config.c) ---- */

typedef struct xbuild {
    pl_experiment x; /* first: pl_experiment_free casts back */
    char **strs;     /* interned file names the positions borrow */
    size_t n_strs;
} xbuild;

pl_status pl__cfg_decode(const pl_node *root, const char *file, xbuild *xb, pl_error *e);
pl_status pl__cfg_dec_limits(const pl_node *m, int64_t *max_runs, pl_error *e);
void pl__cfg_strv_free(char **v, size_t n);

/* ---- typed getters (config_get.c) ---- */

pl_status pl__cfg_get_i64(const pl_node *n, const char *path, int64_t *out, pl_error *e);
pl_status pl__cfg_get_int(const pl_node *n, const char *path, int *out, pl_error *e);
pl_status pl__cfg_get_u64(const pl_node *n, const char *path, uint64_t *out, pl_error *e);
pl_status pl__cfg_get_num(const pl_node *n, const char *path, double *out, pl_error *e);
pl_status pl__cfg_get_bool(const pl_node *n, const char *path, int *out, pl_error *e);
pl_status pl__cfg_get_str(const pl_node *n, const char *path, const char **out, pl_error *e);
pl_status pl__cfg_get_enum(const pl_node *n, const char *path, const char *const *names, size_t count,
                           int *out, pl_error *e);
pl_status pl__cfg_need_map(const pl_node *n, const char *path, const field *tbl, pl_error *e);
pl_status pl__cfg_num_in(const pl_node *n, const char *path, double v, double lo, int lo_open, double hi,
                         int hi_open, const char *rule, pl_error *e);
pl_status pl__cfg_fraction_in(const pl_node *n, const char *path, double v, pl_error *e);

/* ---- dotted keys (config_keys.c) ---- */

typedef struct keyinfo {
    char *buf; /* owns the component strings */
    size_t n;
    char *part[PL_KEY_MAX_PARTS];
    fkind kind[PL_KEY_MAX_PARTS];
} keyinfo;

/* Splits and checks `key` against the schema; errors at (file,line,col). */
pl_status pl__cfg_key_resolve(const char *key, keyinfo *ki, const char *file, int line, int col,
                              pl_error *e);
void pl__cfg_keyinfo_free(keyinfo *ki);
pl_status pl__cfg_tree_set(pl_node *root, const keyinfo *ki, pl_node *val, const char *file, int line,
                           int col, pl_error *e);
pl_status pl__cfg_apply_set(pl_node *root, const char *set, const char *label, pl_error *e);

/* ---- identities (config_dump.c) ---- */

/* FNV-1a-64 over the dump lines that `keep` accepts, as 16 hex digits */
void pl__cfg_hash_lines(const char *dump, int (*keep)(const char *), char out[17]);
/* the dump lines that make a run_id */
int pl__cfg_run_line(const char *l);

#endif
