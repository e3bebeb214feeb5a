/*
 * config_get.c — typed getters for experiment values: one scalar grammar
 * (integers, numbers, bools, strings, enums) with the file:line:col of the
 * value in every error.
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

/* ---- typed getters ----------------------------------------------------------- */

static pl_status need_scalar(const pl_node *n, const char *path, const char *what, pl_error *e)
{
    char g[96];
    if (n->type == PL_NODE_SEQ) /* seed: [1, 2] — several values are a sweep */
        return pl__cfg_at_node(e, n, "%s: expected %s (got a list; to run several values, list them under "
                             "sweep: {%s: [...]})", path, what, path);
    if (n->type != PL_NODE_SCALAR || pl__cfg_is_null(n))
        return pl__cfg_at_node(e, n, "%s: expected %s (got %s)", path, what, pl__cfg_got(n, g, sizeof g));
    return PL_OK;
}

pl_status pl__cfg_get_i64(const pl_node *n, const char *path, int64_t *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "an integer", e);
    if (st)
        return st;
    char g[96];
    long long v;
    int k = n->quoted ? 0 : pl__int_word(n->scalar, &v);
    if (!k)
        return pl__cfg_at_node(e, n, "%s: expected an integer (got %s)", path, pl__cfg_got(n, g, sizeof g));
    if (k < 0)
        return pl__cfg_at_node(e, n, "%s: integer %.40s is out of range", path, n->scalar);
    *out = v;
    return PL_OK;
}

pl_status pl__cfg_get_int(const pl_node *n, const char *path, int *out, pl_error *e)
{
    int64_t v;
    pl_status st = pl__cfg_get_i64(n, path, &v, e);
    if (st)
        return st;
    if (v < INT_MIN || v > INT_MAX)
        return pl__cfg_at_node(e, n, "%s: integer %" PRId64 " is out of range", path, v);
    *out = (int)v;
    return PL_OK;
}

pl_status pl__cfg_get_u64(const pl_node *n, const char *path, uint64_t *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "a non-negative integer", e);
    if (st)
        return st;
    const char *s = n->scalar, *p = s + (*s == '+');
    char g[96];
    if (n->quoted || !*p || strspn(p, "0123456789") != strlen(p))
        return pl__cfg_at_node(e, n, "%s: expected a non-negative integer (got %s)", path, pl__cfg_got(n, g, sizeof g));
    errno = 0;
    unsigned long long v = strtoull(p, NULL, 10);
    if (errno == ERANGE)
        return pl__cfg_at_node(e, n, "%s: integer %.40s is out of range (at most 2^64-1)", path, s);
    *out = v;
    return PL_OK;
}

/* YAML numbers: decimal with optional exponent, or .inf/-.inf/.nan (which
 * then fail the range checks with a clear message). */
pl_status pl__cfg_get_num(const pl_node *n, const char *path, double *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "a number", e);
    if (st)
        return st;
    char g[96];
    if (!n->quoted && pl__num_word(n->scalar, out))
        return PL_OK;
    return pl__cfg_at_node(e, n, "%s: expected a number (got %s)", path, pl__cfg_got(n, g, sizeof g));
}

pl_status pl__cfg_get_bool(const pl_node *n, const char *path, int *out, pl_error *e)
{
    pl_status st = need_scalar(n, path, "true/false", e);
    if (st)
        return st;
    const char *s = n->scalar;
    char g[96];
    if (!n->quoted && pl__bool_word(s, PL__BOOL_YAML, out))
        return PL_OK;
    return pl__cfg_at_node(e, n, "%s: expected true/false (got %s)", path, pl__cfg_got(n, g, sizeof g));
}

pl_status pl__cfg_get_str(const pl_node *n, const char *path, const char **out, pl_error *e)
{
    char g[96];
    if (n->type != PL_NODE_SCALAR || pl__cfg_is_null(n) || !*n->scalar)
        return pl__cfg_at_node(e, n, "%s: expected a non-empty string (got %s)", path,
                       n->type == PL_NODE_SCALAR && !*n->scalar ? "an empty string" : pl__cfg_got(n, g, sizeof g));
    *out = n->scalar;
    return PL_OK;
}

pl_status pl__cfg_get_enum(const pl_node *n, const char *path, const char *const *names, size_t count,
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
        return pl__cfg_at_node(e, n, "%s: unknown value '%.60s' (did you mean '%s'? choices: %s)", path, n->scalar,
                       s, choices);
    return pl__cfg_at_node(e, n, "%s: unknown value '%.60s' (choices: %s)", path, n->scalar, choices);
}

pl_status pl__cfg_need_map(const pl_node *n, const char *path, const field *tbl, pl_error *e)
{
    char g[96];
    if (n->type != PL_NODE_MAP)
        return pl__cfg_at_node(e, n, "%s: expected a map (got %s)", path, pl__cfg_got(n, g, sizeof g));
    return tbl ? pl__cfg_check_keys(n, path, tbl, e) : PL_OK;
}

/* Ranges. Every double must be finite; messages name the key and the rule. */
pl_status pl__cfg_num_in(const pl_node *n, const char *path, double v, double lo, int lo_open, double hi,
                        int hi_open, const char *rule, pl_error *e)
{
    int ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok)
        return pl__cfg_at_node(e, n, "%s must be %s (got %.17g)", path, rule, v);
    return PL_OK;
}

/* A share of a layer's units to remove: [0, 1). */
pl_status pl__cfg_fraction_in(const pl_node *n, const char *path, double v, pl_error *e)
{
    if (!(isfinite(v) && v >= 0 && v < 1))
        return pl__cfg_at_node(e, n, "%s must be in [0, 1) (got %.17g%s)", path, v,
                       v >= 1 ? "; 1 would remove every unit" : "");
    return PL_OK;
}


/* ---- table-driven values (field, config_internal.h) ------------------------------- */

_Static_assert(sizeof(pl_optim_type) == sizeof(int) && sizeof(pl_lr_sched) == sizeof(int) &&
                   sizeof(pl_granularity) == sizeof(int) && sizeof(pl_group_reduction) == sizeof(int) &&
                   sizeof(pl_reg_type) == sizeof(int),
               "F_ENUM values are stored as int");

static pl_status int_range(const pl_node *n, const char *path, const field *f, int64_t v, pl_error *e)
{
    if (v >= f->lo && (isinf(f->hi) || v <= f->hi))
        return PL_OK;
    const char *unit = f->rule ? f->rule : "", *hint = f->hint ? f->hint : "";
    if (isinf(f->hi))
        return pl__cfg_at_node(e, n, "%s must be >= %.0f%s (got %" PRId64 "%s)", path, f->lo, unit, v, hint);
    return pl__cfg_at_node(e, n, "%s must be in [%.0f, %.0f]%s (got %" PRId64 "%s)", path, f->lo, f->hi, unit, v,
                           hint);
}

size_t pl__cfg_stored_size(fkind kind)
{
    switch (kind) {
    case F_INT: case F_BOOL: case F_ENUM: return sizeof(int);
    case F_I64: return sizeof(int64_t);
    case F_UINT: return sizeof(uint64_t);
    case F_NUM: return sizeof(double);
    default: PL_ASSERT(!"a stored field is a single value"); return 0;
    }
}

pl_status pl__cfg_dec_value(const pl_node *n, const char *path, const field *f, void *base, pl_error *e)
{
    PL_ASSERT(f->flags & FL_STORED);
    pl__cfg_value v = {0}; /* the member of f's kind, at offset 0 */
    pl_status st = PL_OK;
    switch (f->kind) {
    case F_INT:
        if (!(st = pl__cfg_get_int(n, path, &v.i, e)))
            st = int_range(n, path, f, v.i, e);
        break;
    case F_I64:
        if (!(st = pl__cfg_get_i64(n, path, &v.l, e)))
            st = int_range(n, path, f, v.l, e);
        break;
    case F_UINT:
        st = pl__cfg_get_u64(n, path, &v.u, e);
        break;
    case F_NUM:
        if ((st = pl__cfg_get_num(n, path, &v.d, e)))
            break;
        if (f->flags & FL_FRACTION)
            st = pl__cfg_fraction_in(n, path, v.d, e);
        else
            st = pl__cfg_num_in(n, path, v.d, f->lo, !!(f->flags & FL_LO_OPEN), f->hi, !!(f->flags & FL_HI_OPEN),
                                f->rule, e);
        break;
    case F_BOOL:
        st = pl__cfg_get_bool(n, path, &v.i, e);
        break;
    case F_ENUM:
        if (!(st = pl__cfg_get_enum(n, path, f->names, f->n_names, &v.i, e)))
            v.i += f->base;
        break;
    default:
        PL_ASSERT(!"a stored field is a single value");
    }
    if (!st)
        memcpy((char *)base + f->off, &v, pl__cfg_stored_size(f->kind));
    return st;
}

pl_status pl__cfg_dec_fields(const pl_node *m, const char *path, const field *tbl, void *base, pl_error *e)
{
    for (size_t i = 0; i < m->n; i++) {
        const field *f = pl__cfg_field_find(tbl, m->keys[i]);
        if (!f || (f->flags & (FL_STORED | FL_OWN)) != FL_STORED)
            continue;
        char p[200];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", f->key);
        pl_status st = pl__cfg_dec_value(m->items[i], p, f, base, e);
        if (st)
            return st;
    }
    return PL_OK;
}

void pl__cfg_defaults(const field *tbl, void *base)
{
    for (const field *f = tbl; f->key; f++) {
        char *at = (char *)base + f->off;
        if (f->kind == F_MAP && (f->flags & FL_DUMP)) {
            pl__cfg_defaults(f->sub, at);
            continue;
        }
        if (!(f->flags & FL_STORED) || (f->flags & FL_ALIAS))
            continue;
        pl__cfg_value v = {0};
        switch (f->kind) {
        case F_INT: case F_BOOL: case F_ENUM: v.i = (int)f->def + (f->kind == F_ENUM ? f->base : 0); break;
        case F_I64: v.l = (int64_t)f->def; break;
        case F_UINT: v.u = (uint64_t)f->def; break;
        default: v.d = f->def; break;
        }
        memcpy(at, &v, pl__cfg_stored_size(f->kind));
    }
}
