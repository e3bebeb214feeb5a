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
    F_LAYER,   /* (dotted keys) a layer name under prune.layers */
    F_I64      /* a single value: a 64-bit integer */
} fkind;

/* field.flags */
#define FL_STORED 1u   /* scalar kept at .off in its section's struct: the table decodes it, fills its default, dumps it */
#define FL_OWN 2u      /* decoded by its section's code (conditions across keys), through pl__cfg_dec_value */
#define FL_LO_OPEN 4u  /* F_NUM: lo itself is out of range */
#define FL_HI_OPEN 8u  /* F_NUM: hi itself is out of range */
#define FL_FRACTION 16u /* F_NUM: a share of units, [0, 1) (pl__cfg_fraction_in) */
#define FL_DUMP 32u    /* F_MAP: its stored keys, at .off in the parent's struct, dump with the parent's */
#define FL_ALIAS 64u   /* another spelling of a key stored elsewhere (train.lr): no default, not dumped */

/*
 * One key of the experiment schema: the one place a key is written down.
 * Every key has its kind and doc (docs/config-keys.md is generated from
 * these tables: `prunelab config-keys`). A scalar key with FL_STORED also
 * has its place in the section's struct (off), its default, its range and
 * its choices; decoding (pl__cfg_dec_fields / pl__cfg_dec_value), defaults
 * (pl__cfg_defaults) and the dump (config_dump.c) go through them.
 *
 * Ranges: F_INT/F_I64 must be >= lo, and <= hi when hi is finite; the
 * message is "KEY must be >= LO[unit] (got V[hint])" or "KEY must be in
 * [LO, HI][unit] (got V[hint])". F_NUM must be finite and within lo/hi
 * (FL_LO_OPEN/FL_HI_OPEN); the message is "KEY must be RULE (got V)".
 * F_ENUM stores base + the index of its name.
 */
typedef struct field {
    const char *key;
    fkind kind;
    const struct field *sub; /* F_MAP, F_LAYERS: the keys below */
    unsigned flags;
    size_t off;              /* FL_STORED (and FL_DUMP maps): offset in the section's struct */
    double def;              /* FL_STORED: default (F_ENUM: the index of its name) */
    double lo, hi;           /* range (see above) */
    const char *rule;        /* F_NUM: the range as words; F_INT/F_I64: a unit after the bound (" epoch") */
    const char *hint;        /* F_INT/F_I64: said after the value when out of range ("; ...") */
    const char *const *names; /* F_ENUM */
    size_t n_names;
    int base;                /* F_ENUM: the value of names[0] */
    const char *def_doc;     /* the default as documented, when it is not `def` */
    const char *doc;         /* one line for the key reference */
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
/* One FL_STORED value of field f at `path` into its place in `base` (the
 * section's struct), with f's range; a caller that bounds it otherwise
 * passes a copy of f with its own lo/hint. */
/* A stored value of any kind (each member at offset 0) and its size in the struct. */
typedef union pl__cfg_value {
    int i;      /* F_INT, F_BOOL, F_ENUM */
    int64_t l;  /* F_I64 */
    uint64_t u; /* F_UINT */
    double d;   /* F_NUM */
} pl__cfg_value;
size_t pl__cfg_stored_size(fkind kind);
pl_status pl__cfg_dec_value(const pl_node *n, const char *path, const field *f, void *base, pl_error *e);
/* Every FL_STORED key of tbl that `m` (a map checked against tbl) holds,
 * in file order, but FL_OWN ones; `path` is the section's dotted path. */
pl_status pl__cfg_dec_fields(const pl_node *m, const char *path, const field *tbl, void *base, pl_error *e);
/* The default of every FL_STORED key of tbl (and of FL_DUMP maps below). */
void pl__cfg_defaults(const field *tbl, void *base);

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
