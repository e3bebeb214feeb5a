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

