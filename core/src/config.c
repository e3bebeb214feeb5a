/*
 * config.c — experiment files: schema, --set, sweeps, typed decode, dump.
 *
 * The schema below is the single list of experiment keys; it drives the
 * unknown-key checks (with suggestions) both for the file and for dotted
 * keys given to --set or sweep:. Values are then decoded by hand, section by
 * section, into pl_experiment with defaults and range checks.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PL_KEY_MAX_PARTS 32
#define PL_DEFAULT_MAX_RUNS 1000

/* ---- errors ---------------------------------------------------------------- */

static pl_status vat(pl_error *e, const char *file, int line, int col, const char *fmt, va_list ap)
{
    char msg[900];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (line > 0)
        return pl_error_set(e, PL_ECONFIG, "%s:%d:%d: %s", file, line, col, msg);
    return pl_error_set(e, PL_ECONFIG, "%s: %s", file, msg);
}

static pl_status at(pl_error *e, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static pl_status at(pl_error *e, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pl_status st = vat(e, file, line, col, fmt, ap);
    va_end(ap);
    return st;
}

static pl_status at_node(pl_error *e, const pl_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static pl_status at_node(pl_error *e, const pl_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pl_status st = vat(e, n->file, n->line, n->col, fmt, ap);
    va_end(ap);
    return st;
}

static pl_status oom(pl_error *e)
{
    return pl_error_set(e, PL_ENOMEM, "out of memory while reading the configuration");
}

static int is_null(const pl_node *n)
{
    if (n->type != PL_NODE_SCALAR || n->quoted)
        return 0;
    const char *s = n->scalar;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* "a map", "a list", "nothing", "'text'" — what was found, for messages. */
static const char *got(const pl_node *n, char *buf, size_t cap)
{
    if (n->type == PL_NODE_MAP)
        return "a map";
    if (n->type == PL_NODE_SEQ)
        return "a list";
    if (is_null(n))
        return "nothing";
    snprintf(buf, cap, "%s'%.60s%s'", n->quoted ? "the quoted string " : "", n->scalar,
             strlen(n->scalar) > 60 ? "..." : "");
    return buf;
}

/* ---- suggestions ----------------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];
    if (la > 64 || lb > 64)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *pl_suggest(const char *word, const char *const *candidates, size_t n)
{
    size_t len = strlen(word), limit = len / 3 > 1 ? len / 3 : 1;
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i])
            continue;
        size_t d = edit_distance(word, candidates[i]);
        if (d <= limit && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* ---- schema ---------------------------------------------------------------- */

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
static const field phase_f[] = {
    {"epochs", F_INT, NULL}, {"batch_size", F_INT, NULL}, {"lr", F_NUM, NULL},
    {"optimizer", F_MAP, optim_f}, {"lr_schedule", F_MAP, lrs_f},
    {"regularize", F_MAP, reg_f}, {NULL, 0, NULL}};
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
static const field root_f[] = {
    {"name", F_STR, NULL}, {"seed", F_UINT, NULL}, {"model", F_STR, NULL},
    {"dataset", F_PLUGIN, NULL}, {"backend", F_PLUGIN, NULL},
    {"train", F_MAP, phase_f}, {"retrain", F_MAP, phase_f}, {"finetune", F_MAP, phase_f},
    {"prune", F_MAP, prune_f}, {"report", F_MAP, report_f}, {"sweep", F_SWEEP, NULL},
    {"plugin_path", F_LIST, NULL}, {"limits", F_MAP, limits_f}, {NULL, 0, NULL}};

static const field *field_find(const field *tbl, const char *key)
{
    for (; tbl->key; tbl++)
        if (!strcmp(tbl->key, key))
            return tbl;
    return NULL;
}

/* "unknown key 'k' in path (did you mean 'x'?)" at the given position. */
static pl_status unknown_key(pl_error *e, const char *file, int line, int col, const char *key,
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
        if (f->kind == F_MAP && f->sub && field_find(f->sub, key))
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
    return at(e, file, line, col, "unknown key '%.100s' %s (%s)", key, where, hint);
}

static pl_status check_keys(const pl_node *m, const char *path, const field *tbl, pl_error *e)
{
    for (size_t i = 0; i < m->n; i++)
        if (!field_find(tbl, m->keys[i]))
            return unknown_key(e, m->file, m->key_line[i], m->key_col[i], m->keys[i], path, tbl);
    return PL_OK;
}

static int name_valid(const char *s, const char *extra)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || strchr(extra, c)))
            return 0;
    }
    return 1;
}

static int plugin_name_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n >= 1 && n <= 63;
}

/* ---- dotted keys (--set, sweep:) -------------------------------------------- */

typedef struct keyinfo {
    char *buf; /* owns the component strings */
    size_t n;
    char *part[PL_KEY_MAX_PARTS];
    fkind kind[PL_KEY_MAX_PARTS];
} keyinfo;

/* Splits and checks `key` against the schema; errors at (file,line,col). */
static pl_status key_resolve(const char *key, keyinfo *ki, const char *file, int line, int col,
                             pl_error *e)
{
    memset(ki, 0, sizeof *ki);
    ki->buf = strdup(key);
    if (!ki->buf)
        return oom(e);
    enum { M_TABLE, M_PLUGIN, M_PARAM, M_LAYERS, M_LEAF } mode = M_TABLE;
    const field *tbl = root_f;
    char path[512] = "";
    char *p = ki->buf;
    for (;;) {
        char *dot = strchr(p, '.');
        if (dot)
            *dot = '\0';
        if (!*p)
            return at(e, file, line, col, "bad key '%.200s': empty part between dots", key);
        if (ki->n == PL_KEY_MAX_PARTS)
            return at(e, file, line, col, "bad key '%.200s': more than %d parts", key, PL_KEY_MAX_PARTS);
        fkind k = 0;
        switch (mode) {
        case M_TABLE: {
            const field *f = field_find(tbl, p);
            if (!f)
                return unknown_key(e, file, line, col, p, path, tbl);
            k = f->kind;
            if (k == F_SWEEP)
                return at(e, file, line, col, "'sweep' cannot be set with --set or inside sweep:");
            mode = k == F_MAP ? M_TABLE : k == F_PLUGIN ? M_PLUGIN : k == F_LAYERS ? M_LAYERS : M_LEAF;
            if (k == F_MAP || k == F_LAYERS)
                tbl = f->sub;
            break;
        }
        case M_PLUGIN:
            k = strcmp(p, "plugin") ? F_PARAM : F_PNAME;
            mode = k == F_PNAME ? M_LEAF : M_PARAM;
            break;
        case M_PARAM:
            k = F_PARAM;
            break;
        case M_LAYERS:
            if (!name_valid(p, ""))
                return at(e, file, line, col, "%s: layer name '%.100s' must match [A-Za-z0-9_]+", path, p);
            k = F_LAYER;
            mode = M_TABLE;
            break;
        case M_LEAF:
            return at(e, file, line, col, "unknown key '%.100s' in %s (%s takes a single value, not keys)",
                      p, path, path);
        }
        size_t pl = strlen(path);
        snprintf(path + pl, sizeof path - pl, "%s%s", pl ? "." : "", p);
        ki->part[ki->n] = p;
        ki->kind[ki->n] = k;
        ki->n++;
        if (!dot)
            return PL_OK;
        p = dot + 1;
    }
}

static void keyinfo_free(keyinfo *ki)
{
    free(ki->buf);
    ki->buf = NULL;
}

static long map_index(const pl_node *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->keys[i], key))
            return (long)i;
    return -1;
}

/* Sets the value at a checked dotted key to `val` (always consumed). */
static pl_status tree_set(pl_node *root, const keyinfo *ki, pl_node *val, const char *file, int line,
                          int col, pl_error *e)
{
    pl_node *cur = root;
    char path[512] = "";
    for (size_t i = 0; i < ki->n; i++) {
        const char *k = ki->part[i];
        if (cur->type != PL_NODE_MAP) {
            if (!is_null(cur)) {
                char g[96];
                pl_node_free(val);
                return at_node(e, cur, "%s: expected a map (got %s), so '%s' cannot be set in it", path,
                               got(cur, g, sizeof g), k);
            }
            free(cur->scalar);
            cur->scalar = NULL;
            cur->type = PL_NODE_MAP;
        }
        size_t pl = strlen(path);
        snprintf(path + pl, sizeof path - pl, "%s%s", pl ? "." : "", k);
        long idx = map_index(cur, k);
        if (i + 1 == ki->n) {
            if (ki->kind[i] == F_PLUGIN && idx >= 0 && cur->items[idx]->type == PL_NODE_MAP) {
                /* name only: keep the reference's parameters */
                cur = cur->items[idx];
                k = "plugin";
                idx = map_index(cur, k);
            } else if (ki->kind[i] == F_LIST && val->type == PL_NODE_SCALAR) {
                pl_node *seq = pl_node_new(PL_NODE_SEQ, val->file, val->line, val->col, NULL);
                if (!seq || pl_node_append(seq, NULL, 0, 0, val)) {
                    pl_node_free(seq);
                    pl_node_free(val);
                    return oom(e);
                }
                val = seq;
            }
            if (idx >= 0) {
                pl_node_free(cur->items[idx]);
                cur->items[idx] = val;
                return PL_OK;
            }
            if (pl_node_append(cur, k, line, col, val)) {
                pl_node_free(val);
                return oom(e);
            }
            return PL_OK;
        }
        if (idx < 0) {
            pl_node *m = pl_node_new(PL_NODE_MAP, file, line, col, NULL);
            if (!m || pl_node_append(cur, k, line, col, m)) {
                pl_node_free(m);
                pl_node_free(val);
                return oom(e);
            }
            cur = m;
            continue;
        }
        pl_node *child = cur->items[idx];
        if (ki->kind[i] == F_PLUGIN && child->type == PL_NODE_SCALAR && !is_null(child)) {
            /* `criterion: l1` becomes `criterion: {plugin: l1}` */
            pl_node *m = pl_node_new(PL_NODE_MAP, child->file, child->line, child->col, NULL);
            if (!m || pl_node_append(m, "plugin", child->line, child->col, child)) {
                pl_node_free(m);
                pl_node_free(val);
                return oom(e);
            }
            cur->items[idx] = m;
            child = m;
        }
        cur = child;
    }
    pl_node_free(val);
    return PL_OK;
}

/* `--set key=null`: removes the key (and its whole subtree) so a default or
 * an exclusive alternative can take over, e.g. --set prune.layers=null
 * --set prune.sparsity=0.5. A key that is not there is not an error. */
static void tree_remove(pl_node *root, const keyinfo *ki)
{
    pl_node *cur = root;
    for (size_t i = 0; i < ki->n && cur && cur->type == PL_NODE_MAP; i++) {
        long idx = map_index(cur, ki->part[i]);
        if (idx < 0)
            return;
        if (i + 1 < ki->n) {
            cur = cur->items[idx];
            continue;
        }
        pl_node_free(cur->items[idx]);
        free(cur->keys[idx]);
        size_t rest = cur->n - (size_t)idx - 1;
        memmove(&cur->keys[idx], &cur->keys[idx + 1], rest * sizeof *cur->keys);
        memmove(&cur->items[idx], &cur->items[idx + 1], rest * sizeof *cur->items);
        memmove(&cur->key_line[idx], &cur->key_line[idx + 1], rest * sizeof *cur->key_line);
        memmove(&cur->key_col[idx], &cur->key_col[idx + 1], rest * sizeof *cur->key_col);
        cur->n--;
        return;
    }
}

/* Parses "key=value" and applies it; `label` ("--set key=value") becomes
 * the file name of the nodes it creates. */
static pl_status apply_set(pl_node *root, const char *set, const char *label, pl_error *e)
{
    const char *eq = strchr(set, '=');
    if (!eq || eq == set)
        return pl_error_set(e, PL_ECONFIG, "%s: expected key=value (e.g. --set prune.sparsity=0.5)", label);
    char *key = strndup(set, (size_t)(eq - set));
    if (!key)
        return oom(e);
    const char *v = eq + 1;
    size_t vl = strlen(v);
    int quoted = vl >= 2 && (v[0] == '\'' || v[0] == '"') && v[vl - 1] == v[0];
    char *text = quoted ? strndup(v + 1, vl - 2) : strdup(v);
    keyinfo ki;
    pl_status st = text ? key_resolve(key, &ki, label, 0, 0, e) : oom(e);
    free(key);
    if (st == PL_OK) {
        pl_node *val = pl_node_new(PL_NODE_SCALAR, label, 0, 0, text);
        if (val && !quoted && is_null(val) && *text) {
            pl_node_free(val); /* key=null (or ~): remove the key */
            tree_remove(root, &ki);
        } else if (!val) {
            st = oom(e);
        } else {
            val->quoted = quoted;
            st = tree_set(root, &ki, val, label, 0, 0, e);
        }
    }
    keyinfo_free(&ki);
    free(text);
    return st;
}

/* ---- typed getters ----------------------------------------------------------- */

static pl_status need_scalar(const pl_node *n, const char *path, const char *what, pl_error *e)
{
    char g[96];
    if (n->type == PL_NODE_SEQ) /* seed: [1, 2] — several values are a sweep */
        return at_node(e, n, "%s: expected %s (got a list; to run several values, list them under "
                             "sweep: {%s: [...]})", path, what, path);
    if (n->type != PL_NODE_SCALAR || is_null(n))
        return at_node(e, n, "%s: expected %s (got %s)", path, what, got(n, g, sizeof g));
    return PL_OK;
}

static pl_status get_i64(const pl_node *n, const char *path, int64_t *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "an integer", e);
    if (st)
        return st;
    const char *s = n->scalar, *p = s + (*s == '+' || *s == '-');
    char g[96];
    if (n->quoted || !*p || strspn(p, "0123456789") != strlen(p))
        return at_node(e, n, "%s: expected an integer (got %s)", path, got(n, g, sizeof g));
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return at_node(e, n, "%s: integer %.40s is out of range", path, s);
    *out = v;
    return PL_OK;
}

static pl_status get_int(const pl_node *n, const char *path, int *out, pl_error *e)
{
    int64_t v;
    pl_status st = get_i64(n, path, &v, e);
    if (st)
        return st;
    if (v < INT_MIN || v > INT_MAX)
        return at_node(e, n, "%s: integer %" PRId64 " is out of range", path, v);
    *out = (int)v;
    return PL_OK;
}

static pl_status get_u64(const pl_node *n, const char *path, uint64_t *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "a non-negative integer", e);
    if (st)
        return st;
    const char *s = n->scalar, *p = s + (*s == '+');
    char g[96];
    if (n->quoted || !*p || strspn(p, "0123456789") != strlen(p))
        return at_node(e, n, "%s: expected a non-negative integer (got %s)", path, got(n, g, sizeof g));
    errno = 0;
    unsigned long long v = strtoull(p, NULL, 10);
    if (errno == ERANGE)
        return at_node(e, n, "%s: integer %.40s is out of range (at most 2^64-1)", path, s);
    *out = v;
    return PL_OK;
}

/* YAML numbers: decimal with optional exponent, or .inf/-.inf/.nan (which
 * then fail the range checks with a clear message). */
static pl_status get_num(const pl_node *n, const char *path, double *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "a number", e);
    if (st)
        return st;
    const char *s = n->scalar;
    const char *p = s + (*s == '+' || *s == '-');
    char g[96];
    if (!n->quoted) {
        if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
            *out = *s == '-' ? -INFINITY : INFINITY;
            return PL_OK;
        }
        if (p == s && (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))) {
            *out = NAN;
            return PL_OK;
        }
        int digit_start = (*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9');
        if (digit_start && !strpbrk(s, "xXpPnNiI_")) {
            char *end;
            double v = strtod(s, &end);
            if (end != s && !*end) {
                *out = v;
                return PL_OK;
            }
        }
    }
    return at_node(e, n, "%s: expected a number (got %s)", path, got(n, g, sizeof g));
}

static pl_status get_bool(const pl_node *n, const char *path, int *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "true/false", e);
    if (st)
        return st;
    const char *s = n->scalar;
    char g[96];
    if (!n->quoted && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))) {
        *out = 1;
        return PL_OK;
    }
    if (!n->quoted && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))) {
        *out = 0;
        return PL_OK;
    }
    return at_node(e, n, "%s: expected true/false (got %s)", path, got(n, g, sizeof g));
}

static pl_status get_str(const pl_node *n, const char *path, const char **out, pl_error *e)
{
    char g[96];
    if (n->type != PL_NODE_SCALAR || is_null(n) || !*n->scalar)
        return at_node(e, n, "%s: expected a non-empty string (got %s)", path,
                       n->type == PL_NODE_SCALAR && !*n->scalar ? "an empty string" : got(n, g, sizeof g));
    *out = n->scalar;
    return PL_OK;
}

static pl_status get_enum(const pl_node *n, const char *path, const char *const *names, size_t count,
                          int *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "a choice", e);
    if (st)
        return st;
    for (size_t i = 0; i < count; i++) {
        if (!strcmp(n->scalar, names[i])) {
            *out = (int)i;
            return PL_OK;
        }
    }
    char choices[200];
    size_t k = 0;
    choices[0] = '\0';
    for (size_t i = 0; i < count && k < sizeof choices; i++)
        k += (size_t)snprintf(choices + k, sizeof choices - k, "%s%s", i ? "|" : "", names[i]);
    const char *s = pl_suggest(n->scalar, names, count);
    if (s)
        return at_node(e, n, "%s: unknown value '%.60s' (did you mean '%s'? choices: %s)", path, n->scalar,
                       s, choices);
    return at_node(e, n, "%s: unknown value '%.60s' (choices: %s)", path, n->scalar, choices);
}

static pl_status need_map(const pl_node *n, const char *path, const field *tbl, pl_error *e)
{
    char g[96];
    if (n->type != PL_NODE_MAP)
        return at_node(e, n, "%s: expected a map (got %s)", path, got(n, g, sizeof g));
    return tbl ? check_keys(n, path, tbl, e) : PL_OK;
}

/* Ranges. Every double must be finite; messages name the key and the rule. */
static pl_status num_in(const pl_node *n, const char *path, double v, double lo, int lo_open, double hi,
                        int hi_open, const char *rule, pl_error *e)
{
    int ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok)
        return at_node(e, n, "%s must be %s (got %.17g)", path, rule, v);
    return PL_OK;
}

/* A share of a layer's units to remove: [0, 1). */
static pl_status fraction_in(const pl_node *n, const char *path, double v, pl_error *e)
{
    if (!(isfinite(v) && v >= 0 && v < 1))
        return at_node(e, n, "%s must be in [0, 1) (got %.17g%s)", path, v,
                       v >= 1 ? "; 1 would remove every unit" : "");
    return PL_OK;
}

/* ---- experiment decode -------------------------------------------------------- */

typedef struct xbuild {
    pl_experiment x; /* first: pl_experiment_free casts back */
    char **strs;     /* interned file names the positions borrow */
    size_t n_strs;
} xbuild;

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

static void strv_free(char **v, size_t n)
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
    free(x->identity);
    plugin_ref_free(&x->dataset);
    plugin_ref_free(&x->backend);
    plugin_ref_free(&x->prune.criterion);
    plugin_ref_free(&x->prune.schedule);
    strv_free(x->train.reg.layers, x->train.reg.n_layers);
    strv_free(x->retrain.reg.layers, x->retrain.reg.n_layers);
    strv_free(x->finetune.reg.layers, x->finetune.reg.n_layers);
    for (size_t i = 0; i < x->prune.n_layers; i++)
        free(x->prune.layers[i].layer);
    free(x->prune.layers);
    strv_free(x->prune.include, x->prune.n_include);
    strv_free(x->prune.exclude, x->prune.n_exclude);
    free(x->report.dir);
    free(x->report.cache);
    strv_free(x->plugin_path, x->n_plugin_path);
    free(x->sweep_desc);
    strv_free(xb->strs, xb->n_strs);
    free(xb);
}

static pl_status kv_add(xbuild *xb, pl_plugin_ref *r, const char *key, const char *value, const pl_node *pos,
                        const char *file, pl_error *e)
{
    pl_kv *kv = realloc(r->params, (r->n_params + 1) * sizeof *kv);
    if (!kv)
        return oom(e);
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
        return oom(e);
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
            return at_node(e, v, "%s.%s: plugin parameters take single values, not lists", path, full);
        const pl_kv *dup = kv_find(r, full);
        if (dup)
            return at_node(e, v, "%s: parameter '%s' given twice (first at line %d)", path, full, dup->line);
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
    if (n && (n->type == PL_NODE_SEQ || is_null(n)))
        return at_node(e, n, "%s: expected a plugin name or a map {plugin: NAME, ...} (got %s)", path,
                       got(n, g, sizeof g));
    if (n && n->type == PL_NODE_SCALAR)
        name = n;
    else if (n)
        name = pl_node_get(n, "plugin");
    if (name && (name->type != PL_NODE_SCALAR || is_null(name)))
        return at_node(e, name, "%s.plugin: expected a plugin name (got %s)", path, got(name, g, sizeof g));
    if (name && !plugin_name_valid(name->scalar))
        return at_node(e, name, "%s: plugin name '%.80s' must match [a-z0-9_]+ (a name, never a path)", path,
                       name->scalar);
    r->plugin = strdup(name ? name->scalar : def);
    const pl_node *pos = name ? name : n;
    r->file = xb_file(xb, pos ? pos->file : parent->file);
    if (!r->plugin || !r->file)
        return oom(e);
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
static const char *const lrs_names[] = {"constant", "step", "cosine"};
static const char *const gran_names[] = {"weight", "channel", "neuron", "layer"};
static const char *const group_red_names[] = {"mean", "sum", "max"};
/* ---- regularize: names indexed by pl_reg_type ---- */
static const char *const reg_names[] = {"none", "l1", "l2", "group_lasso", "bn_l1"};
_Static_assert(sizeof reg_names / sizeof reg_names[0] == PL_REG_BN_L1 + 1, "reg_names follows pl_reg_type");

static pl_status dec_names(const pl_node *n, const char *path, const char *extra, char ***out, size_t *count,
                           pl_error *e);

/* <sec>.regularize: {type, coef, layers}; type none leaves the phase without one. */
static pl_status dec_reg(const pl_node *m, const char *sec, pl_reg_cfg *r, pl_error *e)
{
    char path[128], p[160];
    pl_status st;
    snprintf(path, sizeof path, "%s.regularize", sec);
    if ((st = need_map(m, path, reg_f, e)))
        return st;
    const pl_node *t = pl_node_get(m, "type"), *c = pl_node_get(m, "coef"), *l = pl_node_get(m, "layers");
    if (!t)
        return at_node(e, m, "%s: missing 'type' (none, l1, l2, group_lasso or bn_l1)", path);
    int ti;
    snprintf(p, sizeof p, "%s.type", path);
    if ((st = get_enum(t, p, reg_names, sizeof reg_names / sizeof reg_names[0], &ti, e)))
        return st;
    if (ti == PL_REG_NONE)
        return PL_OK;
    r->type = (pl_reg_type)ti;
    if (!c)
        return at_node(e, m, "%s: missing 'coef' (the penalty's weight, e.g. 1e-4)", path);
    snprintf(p, sizeof p, "%s.coef", path);
    if ((st = get_num(c, p, &r->coef, e)) || (st = num_in(c, p, r->coef, 0, 0, INFINITY, 1, "a finite number >= 0", e)))
        return st;
    if (l) {
        snprintf(p, sizeof p, "%s.layers", path);
        if ((st = dec_names(l, p, "", &r->layers, &r->n_layers, e)))
            return st;
        if (!r->n_layers)
            return at_node(e, l, "%s is empty (name conv2d/linear layers, or leave it out for all but the output "
                           "layer)", p);
    }
    return PL_OK;
}
/* ---- end regularize ---- */

static pl_status dec_optim(const pl_node *m, const char *sec, pl_optim_cfg *o, pl_error *e)
{
    char path[128];
    pl_status st;
    snprintf(path, sizeof path, "%s.optimizer", sec);
    if ((st = need_map(m, path, optim_f, e)))
        return st;
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i];
        const pl_node *v = m->items[i];
        char p[160];
        snprintf(p, sizeof p, "%s.%s", path, k);
        if (!strcmp(k, "type")) {
            int t;
            if ((st = get_enum(v, p, optim_names, 2, &t, e)))
                return st;
            o->type = t == 0 ? PL_OPTIM_ADAM : PL_OPTIM_SGD;
        } else if (!strcmp(k, "nesterov")) {
            if ((st = get_bool(v, p, &o->nesterov, e)))
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
            size_t j = 0;
            while (strcmp(num[j].key, k))
                j++;
            if ((st = get_num(v, p, num[j].dst, e)) ||
                (st = num_in(v, p, *num[j].dst, 0, num[j].lo_open, num[j].hi, 1, num[j].rule, e)))
                return st;
        }
    }
    return PL_OK;
}

static pl_status dec_lr_schedule(const pl_node *m, const char *sec, pl_optim_cfg *o, pl_error *e)
{
    char path[128];
    pl_status st;
    snprintf(path, sizeof path, "%s.lr_schedule", sec);
    if ((st = need_map(m, path, lrs_f, e)))
        return st;
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i];
        const pl_node *v = m->items[i];
        char p[160];
        snprintf(p, sizeof p, "%s.%s", path, k);
        if (!strcmp(k, "type")) {
            int t;
            if ((st = get_enum(v, p, lrs_names, 3, &t, e)))
                return st;
            o->lr_schedule = (pl_lr_sched)(t + 1);
        } else if (!strcmp(k, "step_size")) {
            if ((st = get_int(v, p, &o->step_size, e)))
                return st;
            if (o->step_size < 1)
                return at_node(e, v, "%s must be >= 1 epoch (got %d)", p, o->step_size);
        } else if (!strcmp(k, "gamma")) {
            if ((st = get_num(v, p, &o->gamma, e)) ||
                (st = num_in(v, p, o->gamma, 0, 1, INFINITY, 1, "a finite number > 0", e)))
                return st;
        } else {
            if ((st = get_num(v, p, &o->min_lr, e)) ||
                (st = num_in(v, p, o->min_lr, 0, 0, INFINITY, 1, "a finite number >= 0", e)))
                return st;
        }
    }
    return PL_OK;
}

/* A phase: starts from `base` (train's resolved values) with `epochs`. */
static pl_status dec_phase(const pl_node *m, const char *sec, int min_epochs, pl_phase_cfg *out, pl_error *e)
{
    pl_status st;
    if (!m)
        return PL_OK;
    if ((st = need_map(m, sec, phase_f, e)))
        return st;
    const pl_node *v, *lr = pl_node_get(m, "lr"), *opt = pl_node_get(m, "optimizer");
    char p[160];
    if ((v = pl_node_get(m, "epochs"))) {
        snprintf(p, sizeof p, "%s.epochs", sec);
        if ((st = get_int(v, p, &out->epochs, e)))
            return st;
        if (out->epochs < min_epochs)
            return at_node(e, v, "%s must be >= %d (got %d%s)", p, min_epochs, out->epochs,
                           min_epochs ? "; the baseline needs at least one epoch" : "");
    }
    if ((v = pl_node_get(m, "batch_size"))) {
        snprintf(p, sizeof p, "%s.batch_size", sec);
        if ((st = get_int(v, p, &out->batch_size, e)))
            return st;
        if (out->batch_size < 1)
            return at_node(e, v, "%s must be >= 1 (got %d)", p, out->batch_size);
    }
    if (opt && (st = dec_optim(opt, sec, &out->optim, e)))
        return st;
    if (lr) {
        snprintf(p, sizeof p, "%s.lr", sec);
        if (opt && opt->type == PL_NODE_MAP && pl_node_get(opt, "lr"))
            return at_node(e, lr, "%s: give %s.lr or %s.optimizer.lr, not both", p, sec, sec);
        double d;
        if ((st = get_num(lr, p, &d, e)) || (st = num_in(lr, p, d, 0, 1, INFINITY, 1, "a finite number > 0", e)))
            return st;
        out->optim.lr = d;
    }
    if ((v = pl_node_get(m, "lr_schedule")) && (st = dec_lr_schedule(v, sec, &out->optim, e)))
        return st;
    if ((v = pl_node_get(m, "regularize")) && (st = dec_reg(v, sec, &out->reg, e)))
        return st;
    const pl_optim_cfg *o = &out->optim;
    if (o->type == PL_OPTIM_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return at_node(e, opt ? opt : m, "%s.optimizer: nesterov needs momentum > 0 and dampening 0", sec);
    return PL_OK;
}

static pl_status dec_names(const pl_node *n, const char *path, const char *extra, char ***out, size_t *count,
                           pl_error *e)
{
    char g[96];
    if (n->type != PL_NODE_SEQ)
        return at_node(e, n, "%s: expected a list (got %s)", path, got(n, g, sizeof g));
    if (n->n && !(*out = calloc(n->n, sizeof **out)))
        return oom(e);
    for (size_t i = 0; i < n->n; i++) {
        const char *s;
        pl_status st = get_str(n->items[i], path, &s, e);
        if (st)
            return st;
        if (extra && !name_valid(s, extra))
            return at_node(e, n->items[i], "%s: layer name '%.80s' must match [A-Za-z0-9_]+", path, s);
        if (!((*out)[i] = strdup(s)))
            return oom(e);
        (*count)++;
    }
    return PL_OK;
}

static pl_status dec_layers(xbuild *xb, const pl_node *m, pl_prune_cfg *pr, pl_error *e)
{
    pl_status st;
    if ((st = need_map(m, "prune.layers", NULL, e)))
        return st;
    if (m->n == 0)
        return at_node(e, m, "prune.layers is empty (give {LAYER: {fraction: F} or {count: N}, ...})");
    if (!(pr->layers = calloc(m->n, sizeof *pr->layers)))
        return oom(e);
    for (size_t i = 0; i < m->n; i++) {
        const char *name = m->keys[i];
        const pl_node *v = m->items[i];
        char p[200];
        snprintf(p, sizeof p, "prune.layers.%.100s", name);
        if (!name_valid(name, ""))
            return at(e, m->file, m->key_line[i], m->key_col[i],
                      "prune.layers: layer name '%.80s' must match [A-Za-z0-9_]+", name);
        if ((st = need_map(v, p, target_f, e)))
            return st;
        pl_layer_target *t = &pr->layers[pr->n_layers++];
        t->fraction = -1;
        t->count = -1;
        if (!(t->layer = strdup(name)) || !(t->file = xb_file(xb, v->file)))
            return oom(e);
        t->line = v->line;
        t->col = v->col;
        const pl_node *f = pl_node_get(v, "fraction"), *c = pl_node_get(v, "count");
        if (f || c) { /* blame the value (which may come from a --set) */
            const pl_node *at_v = f ? f : c;
            if (!(t->file = xb_file(xb, at_v->file)))
                return oom(e);
            t->line = at_v->line;
            t->col = at_v->col;
        }
        if (f && c)
            return at_node(e, c, "%s: give fraction or count, not both", p);
        if (!f && !c)
            return at_node(e, v, "%s: missing 'fraction' (share of units to remove) or 'count' (units to remove)",
                           p);
        char q[220];
        if (f) {
            snprintf(q, sizeof q, "%s.fraction", p);
            if ((st = get_num(f, q, &t->fraction, e)) ||
                (st = fraction_in(f, q, t->fraction, e)))
                return st;
        } else {
            snprintf(q, sizeof q, "%s.count", p);
            int64_t cnt;
            if ((st = get_i64(c, q, &cnt, e)))
                return st;
            if (cnt < 0)
                return at_node(e, c, "%s must be >= 0 (got %" PRId64 ")", q, cnt);
            t->count = cnt;
        }
    }
    return PL_OK;
}

static pl_status dec_prune(xbuild *xb, const pl_node *m, pl_error *e)
{
    pl_prune_cfg *pr = &xb->x.prune;
    pl_status st;
    if ((st = need_map(m, "prune", prune_f, e)))
        return st;
    pr->enabled = 1;
    pr->granularity = PL_GRAN_CHANNEL;
    const pl_node *v;
    if ((st = dec_plugin(xb, pl_node_get(m, "criterion"), m, "prune.criterion", "l1", NULL, &pr->criterion, e)) ||
        (st = dec_plugin(xb, pl_node_get(m, "schedule"), m, "prune.schedule", "oneshot", NULL, &pr->schedule, e)))
        return st;
    if ((v = pl_node_get(m, "granularity"))) {
        int g;
        if ((st = get_enum(v, "prune.granularity", gran_names, 4, &g, e)))
            return st;
        pr->granularity = (pl_granularity)(g + 1);
    }
    const pl_node *sp = pl_node_get(m, "sparsity"), *ly = pl_node_get(m, "layers");
    /* ---- granularity layer: sparsity (share of removable blocks) or count ---- */
    const pl_node *cn = pl_node_get(m, "count");
    if (cn && pr->granularity != PL_GRAN_LAYER)
        return at_node(e, cn, "prune.count is the number of layers to remove and needs granularity: layer "
                              "(for units of one layer use prune.layers.NAME.count)");
    if (pr->granularity == PL_GRAN_LAYER) {
        if (ly)
            return at_node(e, ly, "prune.layers does not apply to granularity layer (give count: N layers to "
                                  "remove, or sparsity; restrict the candidates with include/exclude)");
        if (sp && cn) {
            const pl_node *later = cn->line > sp->line || (cn->line == sp->line && cn->col > sp->col) ? cn : sp;
            return at_node(e, later, "prune: give either count (layers to remove) or sparsity (share of the "
                                     "removable layers), not both");
        }
        if (!sp && !cn)
            return at_node(e, m, "prune: granularity layer needs 'count' (layers to remove) or 'sparsity' "
                                 "(share of the removable layers)");
        if (cn) {
            if ((st = get_i64(cn, "prune.count", &pr->count, e)))
                return st;
            if (pr->count < 1)
                return at_node(e, cn, "prune.count must be >= 1 (got %" PRId64 ")", pr->count);
        }
    }
    /* ---- end granularity layer ---- */
    if (sp && ly) {
        const pl_node *later = ly->line > sp->line || (ly->line == sp->line && ly->col > sp->col) ? ly : sp;
        if (sp->line == 0 || ly->line == 0) /* a --set (line 0) comes after the whole file */
            later = sp->line == 0 ? sp : ly;
        return at_node(e, later,
                       "prune: give either sparsity (one fraction for every prunable layer) or layers "
                       "(per-layer targets), not both");
    }
    if (!sp && !ly && !cn)
        return at_node(e, m,
                       "prune: missing 'sparsity' (one fraction for every prunable layer) or 'layers' "
                       "(per-layer targets)");
    if (sp) {
        pr->has_sparsity = 1;
        if ((st = get_num(sp, "prune.sparsity", &pr->sparsity, e)) ||
            (st = fraction_in(sp, "prune.sparsity", pr->sparsity, e)))
            return st;
    } else if (ly && (st = dec_layers(xb, ly, pr, e))) {
        return st;
    }
    if ((v = pl_node_get(m, "include")) && (st = dec_names(v, "prune.include", "", &pr->include, &pr->n_include, e)))
        return st;
    if ((v = pl_node_get(m, "exclude")) && (st = dec_names(v, "prune.exclude", "", &pr->exclude, &pr->n_exclude, e)))
        return st;
    if ((v = pl_node_get(m, "tolerance")) &&
        ((st = get_num(v, "prune.tolerance", &pr->tolerance, e)) ||
         (st = num_in(v, "prune.tolerance", pr->tolerance, 0, 0, INFINITY, 1, "a finite number >= 0 (units)", e))))
        return st;
    if ((v = pl_node_get(m, "group_reduction"))) {
        int g;
        if ((st = get_enum(v, "prune.group_reduction", group_red_names, 3, &g, e)))
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
        if ((st = need_map(m, "report", report_f, e)))
            return st;
        if ((v = pl_node_get(m, "dir")) && (st = get_str(v, "report.dir", &dir, e)))
            return st;
        if ((v = pl_node_get(m, "cache")) && (st = get_str(v, "report.cache", &cache, e)))
            return st;
        if ((v = pl_node_get(m, "latency_runs"))) {
            if ((st = get_int(v, "report.latency_runs", &r->latency_runs, e)))
                return st;
            if (r->latency_runs < 1)
                return at_node(e, v, "report.latency_runs must be >= 1 (got %d; the median needs timed passes)",
                               r->latency_runs);
        }
        if ((v = pl_node_get(m, "plots")) && (st = get_bool(v, "report.plots", &r->plots, e)))
            return st;
    }
    char buf[4200];
    if (!dir) {
        snprintf(buf, sizeof buf, "reports/%s", xb->x.name);
        dir = buf;
    }
    if (!(r->dir = strdup(dir)))
        return oom(e);
    if (!cache) {
        snprintf(buf, sizeof buf, "%s/cache", r->dir);
        cache = buf;
    }
    if (!(r->cache = strdup(cache)))
        return oom(e);
    return PL_OK;
}

static pl_status dec_limits(const pl_node *m, int64_t *max_runs, pl_error *e)
{
    pl_status st;
    *max_runs = PL_DEFAULT_MAX_RUNS;
    if (!m)
        return PL_OK;
    if ((st = need_map(m, "limits", limits_f, e)))
        return st;
    const pl_node *v = pl_node_get(m, "max_runs");
    if (v) {
        if ((st = get_i64(v, "limits.max_runs", max_runs, e)))
            return st;
        if (*max_runs < 1)
            return at_node(e, v, "limits.max_runs must be >= 1 (got %" PRId64 ")", *max_runs);
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
static pl_status decode(const pl_node *root, const char *file, xbuild *xb, pl_error *e)
{
    pl_error ke;
    pl_error_clear(&ke);
    pl_status kst = check_keys(root, "", root_f, &ke);
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
        return oom(e);

    if (!(v = pl_node_get(root, "name")))
        return at_node(e, root, "missing required key 'name' (the experiment's name, [A-Za-z0-9_.-]+)");
    const char *s;
    if ((st = get_str(v, "name", &s, e)))
        return st;
    if (!name_valid(s, ".-") || !strcmp(s, ".") || !strcmp(s, ".."))
        return at_node(e, v, "name '%.80s' must match [A-Za-z0-9_.-]+ (it names the report folder)", s);
    if (!(x->name = strdup(s)))
        return oom(e);

    x->seed = 1;
    if ((v = pl_node_get(root, "seed")) && (st = get_u64(v, "seed", &x->seed, e)))
        return st;

    if (!(v = pl_node_get(root, "model")))
        return at_node(e, root, "missing required key 'model' (a model file, e.g. configs/models/simple_cnn.yaml)");
    if ((st = get_str(v, "model", &s, e)))
        return st;
    if (!(x->model = strdup(s)))
        return oom(e);

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
    PL__SECTION(dec_plugin(xb, pl_node_get(root, "backend"), root, "backend", "simd", NULL, &x->backend, &se));

    x->train.epochs = 1;
    x->train.batch_size = 64;
    x->train.optim = default_optim;
    PL__SECTION(dec_phase(pl_node_get(root, "train"), "train", 1, &x->train, &se));
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
            return oom(e);
    }
    PL__SECTION(dec_report(xb, pl_node_get(root, "report"), &se));
    if ((v = pl_node_get(root, "plugin_path")))
        PL__SECTION(dec_names(v, "plugin_path", NULL, &x->plugin_path, &x->n_plugin_path, &se));
    PL__SECTION(dec_limits(pl_node_get(root, "limits"), &x->max_runs, &se));
#undef PL__SECTION
    return first;
}

/* ---- dump and identity --------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (n >= 0 && b->len + (size_t)n + 1 > cap)
            cap *= 2;
        char *q = n < 0 ? NULL : realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A value as it goes into the dump: raw when unambiguous, else quoted. */
static void sb_value(sbuf *b, const char *s)
{
    int plain = *s != '\0';
    for (const char *c = s; *c && plain; c++) {
        unsigned char u = (unsigned char)*c;
        plain = u >= 0x80 || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                strchr("_./+-", u);
    }
    if (plain) {
        sb_printf(b, "%s", s);
        return;
    }
    sb_printf(b, "\"");
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '"' || u == '\\')
            sb_printf(b, "\\%c", u);
        else if (u < 0x20 || u == 0x7f)
            sb_printf(b, "\\x%02x", u);
        else
            sb_printf(b, "%c", u);
    }
    sb_printf(b, "\"");
}

static void sb_kv(sbuf *b, const char *key, const char *value)
{
    sb_printf(b, "%s: ", key);
    sb_value(b, value);
    sb_printf(b, "\n");
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp((*(const pl_kv *const *)a)->key, (*(const pl_kv *const *)b)->key);
}

static void dump_plugin(sbuf *b, const char *key, const pl_plugin_ref *r)
{
    char k[300];
    snprintf(k, sizeof k, "%s.plugin", key);
    sb_kv(b, k, r->plugin ? r->plugin : "");
    if (!r->n_params)
        return;
    const pl_kv **v = malloc(r->n_params * sizeof *v);
    if (!v) {
        b->failed = 1;
        return;
    }
    for (size_t i = 0; i < r->n_params; i++)
        v[i] = &r->params[i];
    qsort(v, r->n_params, sizeof *v, cmp_kv);
    for (size_t i = 0; i < r->n_params; i++) {
        snprintf(k, sizeof k, "%s.%s", key, v[i]->key);
        sb_kv(b, k, v[i]->value);
    }
    free(v);
}

static void dump_phase(sbuf *b, const char *s, const pl_phase_cfg *p)
{
    const pl_optim_cfg *o = &p->optim;
    sb_printf(b, "%s.epochs: %d\n%s.batch_size: %d\n", s, p->epochs, s, p->batch_size);
    sb_printf(b, "%s.optimizer.type: %s\n", s, o->type == PL_OPTIM_SGD ? "sgd" : "adam");
    sb_printf(b, "%s.optimizer.lr: %.17g\n%s.optimizer.beta1: %.17g\n%s.optimizer.beta2: %.17g\n", s, o->lr, s,
              o->beta1, s, o->beta2);
    sb_printf(b, "%s.optimizer.eps: %.17g\n%s.optimizer.weight_decay: %.17g\n", s, o->eps, s, o->weight_decay);
    sb_printf(b, "%s.optimizer.momentum: %.17g\n%s.optimizer.dampening: %.17g\n", s, o->momentum, s, o->dampening);
    sb_printf(b, "%s.optimizer.nesterov: %s\n", s, o->nesterov ? "true" : "false");
    int t = o->lr_schedule >= PL_LR_CONSTANT && o->lr_schedule <= PL_LR_COSINE ? (int)o->lr_schedule - 1 : 0;
    sb_printf(b, "%s.lr_schedule.type: %s\n%s.lr_schedule.step_size: %d\n", s, lrs_names[t], s, o->step_size);
    sb_printf(b, "%s.lr_schedule.gamma: %.17g\n%s.lr_schedule.min_lr: %.17g\n", s, o->gamma, s, o->min_lr);
    /* regularize: only when set, so run ids of runs without one stay as they were */
    const pl_reg_cfg *r = &p->reg;
    if (r->type > PL_REG_NONE && r->type <= PL_REG_BN_L1) {
        sb_printf(b, "%s.regularize.type: %s\n%s.regularize.coef: %.17g\n%s.regularize.layers: [", s,
                  reg_names[r->type], s, r->coef, s);
        for (size_t i = 0; i < r->n_layers; i++) {
            if (i)
                sb_printf(b, ", ");
            sb_value(b, r->layers[i]);
        }
        sb_printf(b, "]\n");
    }
}

static void dump_list(sbuf *b, const char *key, char *const *v, size_t n)
{
    sb_printf(b, "%s: [", key);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_printf(b, ", ");
        sb_value(b, v[i]);
    }
    sb_printf(b, "]\n");
}

static int cmp_target(const void *a, const void *b)
{
    return strcmp((*(const pl_layer_target *const *)a)->layer, (*(const pl_layer_target *const *)b)->layer);
}

char *pl_experiment_dump(const pl_experiment *x)
{
    sbuf b = {0};
    sb_kv(&b, "name", x->name ? x->name : "");
    sb_printf(&b, "seed: %" PRIu64 "\n", x->seed);
    sb_kv(&b, "model", x->model ? x->model : "");
    dump_plugin(&b, "dataset", &x->dataset);
    dump_plugin(&b, "backend", &x->backend);
    dump_phase(&b, "train", &x->train);
    dump_phase(&b, "retrain", &x->retrain);
    dump_phase(&b, "finetune", &x->finetune);
    const pl_prune_cfg *p = &x->prune;
    sb_printf(&b, "prune.enabled: %s\n", p->enabled ? "true" : "false");
    if (p->enabled) {
        dump_plugin(&b, "prune.criterion", &p->criterion);
        dump_plugin(&b, "prune.schedule", &p->schedule);
        int g = p->granularity >= PL_GRAN_WEIGHT && p->granularity <= PL_GRAN_LAYER ? (int)p->granularity - 1 : 1;
        sb_printf(&b, "prune.granularity: %s\n", gran_names[g]);
        if (p->has_sparsity) {
            sb_printf(&b, "prune.sparsity: %.17g\n", p->sparsity);
        } else if (p->n_layers) {
            const pl_layer_target **t = malloc(p->n_layers * sizeof *t);
            if (t) {
                for (size_t i = 0; i < p->n_layers; i++)
                    t[i] = &p->layers[i];
                qsort(t, p->n_layers, sizeof *t, cmp_target);
                for (size_t i = 0; i < p->n_layers; i++) {
                    if (t[i]->count >= 0)
                        sb_printf(&b, "prune.layers.%s.count: %" PRId64 "\n", t[i]->layer, t[i]->count);
                    else
                        sb_printf(&b, "prune.layers.%s.fraction: %.17g\n", t[i]->layer, t[i]->fraction);
                }
                free(t);
            } else {
                b.failed = 1;
            }
        }
        dump_list(&b, "prune.include", p->include, p->n_include);
        dump_list(&b, "prune.exclude", p->exclude, p->n_exclude);
        sb_printf(&b, "prune.tolerance: %.17g\n", p->tolerance);
        if (p->granularity == PL_GRAN_LAYER && p->count >= 0) /* layer granularity */
            sb_printf(&b, "prune.count: %" PRId64 "\n", p->count);
        if (p->group_reduction != PL_GROUP_MEAN) /* the default keeps older run identities */
            sb_printf(&b, "prune.group_reduction: %s\n", group_red_names[p->group_reduction]);
    }
    sb_kv(&b, "report.dir", x->report.dir ? x->report.dir : "");
    sb_kv(&b, "report.cache", x->report.cache ? x->report.cache : "");
    sb_printf(&b, "report.latency_runs: %d\nreport.plots: %s\n", x->report.latency_runs,
              x->report.plots ? "true" : "false");
    dump_list(&b, "plugin_path", x->plugin_path, x->n_plugin_path);
    sb_printf(&b, "limits.max_runs: %" PRId64 "\n", x->max_runs);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static int has_prefix(const char *line, const char *prefix)
{
    return !strncmp(line, prefix, strlen(prefix));
}

/* FNV-1a-64 over the dump lines that `keep` accepts, then over the identity
 * lines that `keep_id` accepts (none when NULL), as 16 hex digits. */
static void hash_lines2(const char *dump, int (*keep)(const char *), const char *identity,
                        int (*keep_id)(const char *), char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    const char *texts[2] = {dump, identity};
    int (*keeps[2])(const char *) = {keep, keep_id};
    for (int t = 0; t < 2; t++)
        for (const char *l = keeps[t] ? texts[t] : NULL; l && *l;) {
            const char *end = strchr(l, '\n');
            size_t n = end ? (size_t)(end - l) + 1 : strlen(l);
            if (keeps[t](l))
                for (size_t i = 0; i < n; i++) {
                    h ^= (unsigned char)l[i];
                    h *= 0x100000001b3ull;
                }
            l += n;
        }
    snprintf(out, 17, "%016" PRIx64, h);
}

static void hash_lines(const char *dump, int (*keep)(const char *), char out[17])
{
    hash_lines2(dump, keep, NULL, NULL, out);
}

static int run_line(const char *l)
{
    return !has_prefix(l, "name:") && !has_prefix(l, "report.") && !has_prefix(l, "plugin_path:") &&
           !has_prefix(l, "limits.");
}

static int baseline_line(const char *l)
{
    return has_prefix(l, "seed:") || has_prefix(l, "model:") || has_prefix(l, "dataset.") ||
           has_prefix(l, "backend.") || has_prefix(l, "train.");
}

/* With an identity the model's content stands in for its path, so the same
 * file named two ways is one run. */
static int run_line_content(const char *l)
{
    return run_line(l) && !has_prefix(l, "model:");
}

static int baseline_line_content(const char *l)
{
    return baseline_line(l) && !has_prefix(l, "model:");
}

/* identity lines in run_id: all but the plugin file hashes */
static int run_id_line(const char *l)
{
    return !has_prefix(l, "file.");
}

/* identity lines in the baseline key: what training the baseline reads */
static int baseline_id_line(const char *l)
{
    return has_prefix(l, "model.") || has_prefix(l, "dataset.") || has_prefix(l, "plugin.backend:") ||
           has_prefix(l, "plugin.dataset:") || has_prefix(l, "file.backend:") || has_prefix(l, "file.dataset:");
}

pl_status pl_experiment_baseline_key(const pl_experiment *x, char out[17])
{
    char *d = pl_experiment_dump(x);
    if (!d) /* never a key from a partial dump: another run's baseline would be found */
        return PL_ENOMEM;
    if (x->identity)
        hash_lines2(d, baseline_line_content, x->identity, baseline_id_line, out);
    else
        hash_lines(d, baseline_line, out);
    free(d);
    return PL_OK;
}

pl_status pl_experiment_set_identity(pl_experiment *x, char *identity)
{
    free(x->identity);
    x->identity = identity;
    char *d = pl_experiment_dump(x);
    if (!d) /* the old run_id must not survive as if it were this identity's */
        return PL_ENOMEM;
    hash_lines2(d, identity ? run_line_content : run_line, identity, identity ? run_id_line : NULL, x->run_id);
    free(d);
    return PL_OK;
}

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
        keyinfo_free(&cfg->axes[i].ki);
    }
    free(cfg->axes);
    pl_node_free(cfg->root);
    strv_free(cfg->labels, cfg->n_labels);
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
        return oom(e);
    for (size_t j = 0; j < v->n; j++)
        s[j] = v->items[j];
    qsort(s, v->n, sizeof *s, cmp_scalar_node);
    pl_status st = PL_OK;
    for (size_t j = 1; j < v->n && !st; j++)
        if (!strcmp(s[j - 1]->scalar, s[j]->scalar))
            st = at_node(e, s[j], "sweep '%.100s' lists '%.60s' again (first at line %d:%d); each value once, or "
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
    if ((st = need_map(sw, "sweep", NULL, e)))
        return st;
    if (sw->n && !(cfg->axes = calloc(sw->n, sizeof *cfg->axes)))
        return oom(e);
    for (size_t i = 0; i < sw->n; i++) {
        sweep_axis *a = &cfg->axes[cfg->n_axes++];
        const pl_node *v = sw->items[i];
        if (!(a->key = strdup(sw->keys[i])))
            return oom(e);
        if ((st = key_resolve(a->key, &a->ki, sw->file, sw->key_line[i], sw->key_col[i], e)))
            return st;
        char g[96];
        if (v->type != PL_NODE_SEQ)
            return at_node(e, v, "sweep '%.100s': expected a list of values (got %s)", a->key, got(v, g, sizeof g));
        if (v->n == 0)
            return at_node(e, v, "sweep '%.100s' has no values, so the sweep expands to zero runs (give at least one)",
                           a->key);
        for (size_t j = 0; j < v->n; j++)
            if (v->items[j]->type != PL_NODE_SCALAR)
                return at_node(e, v->items[j], "sweep '%.100s': values must be single values (got %s)", a->key,
                               got(v->items[j], g, sizeof g));
        a->values = v;
        if ((st = sweep_unique(a->key, v, e)))
            return st;
    }
    int64_t max_runs;
    if ((st = dec_limits(pl_node_get(cfg->root, "limits"), &max_runs, e)))
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
        return at_node(e, sw, "sweep expands to %s runs, more than limits.max_runs = %" PRId64
                              " (shorten the sweep or raise limits.max_runs)", count, max_runs);
    }
    cfg->n_runs = runs;
    return PL_OK;
}

pl_status pl_config_load(const char *path, const char *const *sets, size_t n_sets, pl_config **out,
                         pl_error *err)
{
    *out = NULL;
    pl_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->path = strdup(path))) {
        free(cfg);
        return oom(err);
    }
    cfg->n_runs = 1;
    pl_status st = pl_yaml_parse_file(path, &cfg->root, err);
    if (st == PL_OK) {
        const pl_node *r = cfg->root;
        char g[96];
        if (is_null(r))
            st = pl_error_set(err, PL_ECONFIG, "%s: empty experiment file (needs at least name: and model:)", path);
        else if (r->type != PL_NODE_MAP)
            st = at_node(err, r, "an experiment file is a map of keys (name:, model:, ...), not %s",
                         got(r, g, sizeof g));
    }
    if (st == PL_OK && n_sets && !(cfg->labels = calloc(n_sets, sizeof *cfg->labels)))
        st = oom(err);
    for (size_t i = 0; st == PL_OK && i < n_sets; i++) {
        size_t n = strlen(sets[i]) + 7;
        if (!(cfg->labels[i] = malloc(n))) {
            st = oom(err);
            break;
        }
        cfg->n_labels++;
        snprintf(cfg->labels[i], n, "--set %s", sets[i]);
        st = apply_set(cfg->root, sets[i], cfg->labels[i], err);
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
    sbuf desc = {0};
    pl_status st = root && xb ? PL_OK : oom(err);
    sb_printf(&desc, "%s", "");
    for (size_t a = 0; st == PL_OK && a < cfg->n_axes; a++) {
        const pl_node *v = cfg->axes[a].values->items[pick[a]];
        pl_node *val = pl_node_clone(v);
        if (!val) {
            st = oom(err);
            break;
        }
        st = tree_set(root, &cfg->axes[a].ki, val, v->file, v->line, v->col, err);
        sb_printf(&desc, "%s%s=%s", a ? " " : "", cfg->axes[a].key, v->scalar);
    }
    if (st == PL_OK)
        st = decode(root, cfg->path, xb, err);
    pl_node_free(root);
    if (st == PL_OK && desc.failed)
        st = oom(err);
    if (st == PL_OK) {
        xb->x.sweep_desc = desc.p;
        desc.p = NULL;
        xb->x.run_index = i;
        char *d = pl_experiment_dump(&xb->x);
        if (!d)
            st = oom(err);
        else
            hash_lines(d, run_line, xb->x.run_id);
        free(d);
    }
    free(desc.p);
    if (st) {
        if (xb)
            pl_experiment_free(&xb->x);
        return st;
    }
    *out = &xb->x;
    return PL_OK;
}
