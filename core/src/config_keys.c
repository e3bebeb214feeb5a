/*
 * config_keys.c — dotted keys (--set a.b=v, sweep: axes): resolved against
 * the schema, then set in or removed from the parsed tree.
 */
#include "config_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dotted keys (--set, sweep:) -------------------------------------------- */


/* Splits and checks `key` against the schema; errors at (file,line,col). */
pl_status pl__cfg_key_resolve(const char *key, keyinfo *ki, const char *file, int line, int col,
                             pl_error *e)
{
    memset(ki, 0, sizeof *ki);
    ki->buf = strdup(key);
    if (!ki->buf)
        return pl__cfg_oom(e);
    enum { M_TABLE, M_PLUGIN, M_PARAM, M_LAYERS, M_LEAF } mode = M_TABLE;
    const field *tbl = pl__cfg_root_f;
    char path[512] = "";
    char *p = ki->buf;
    for (;;) {
        char *dot = strchr(p, '.');
        if (dot)
            *dot = '\0';
        if (!*p)
            return pl__cfg_at(e, file, line, col, "bad key '%.200s': empty part between dots", key);
        if (ki->n == PL_KEY_MAX_PARTS)
            return pl__cfg_at(e, file, line, col, "bad key '%.200s': more than %d parts", key, PL_KEY_MAX_PARTS);
        fkind k = 0;
        switch (mode) {
        case M_TABLE: {
            const field *f = pl__cfg_field_find(tbl, p);
            if (!f)
                return pl__cfg_unknown_key(e, file, line, col, p, path, tbl);
            k = f->kind;
            if (k == F_SWEEP)
                return pl__cfg_at(e, file, line, col, "'sweep' cannot be set with --set or inside sweep:");
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
            if (!pl__cfg_name_valid(p, ""))
                return pl__cfg_at(e, file, line, col, "%s: layer name '%.100s' must match [A-Za-z0-9_]+", path, p);
            k = F_LAYER;
            mode = M_TABLE;
            break;
        case M_LEAF:
            return pl__cfg_at(e, file, line, col, "unknown key '%.100s' in %s (%s takes a single value, not keys)",
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

void pl__cfg_keyinfo_free(keyinfo *ki)
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
pl_status pl__cfg_tree_set(pl_node *root, const keyinfo *ki, pl_node *val, const char *file, int line,
                          int col, pl_error *e)
{
    pl_node *cur = root;
    char path[512] = "";
    for (size_t i = 0; i < ki->n; i++) {
        const char *k = ki->part[i];
        if (cur->type != PL_NODE_MAP) {
            if (!pl__cfg_is_null(cur)) {
                char g[96];
                pl_node_free(val);
                return pl__cfg_at_node(e, cur, "%s: expected a map (got %s), so '%s' cannot be set in it", path,
                               pl__cfg_got(cur, g, sizeof g), k);
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
                    return pl__cfg_oom(e);
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
                return pl__cfg_oom(e);
            }
            return PL_OK;
        }
        if (idx < 0) {
            pl_node *m = pl_node_new(PL_NODE_MAP, file, line, col, NULL);
            if (!m || pl_node_append(cur, k, line, col, m)) {
                pl_node_free(m);
                pl_node_free(val);
                return pl__cfg_oom(e);
            }
            cur = m;
            continue;
        }
        pl_node *child = cur->items[idx];
        if (ki->kind[i] == F_PLUGIN && child->type == PL_NODE_SCALAR && !pl__cfg_is_null(child)) {
            /* `criterion: l1` becomes `criterion: {plugin: l1}` */
            pl_node *m = pl_node_new(PL_NODE_MAP, child->file, child->line, child->col, NULL);
            if (!m || pl_node_append(m, "plugin", child->line, child->col, child)) {
                pl_node_free(m);
                pl_node_free(val);
                return pl__cfg_oom(e);
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
pl_status pl__cfg_apply_set(pl_node *root, const char *set, const char *label, pl_error *e)
{
    const char *eq = strchr(set, '=');
    if (!eq || eq == set)
        return pl_error_set(e, PL_ECONFIG, "%s: expected key=value (e.g. --set prune.sparsity=0.5)", label);
    char *key = strndup(set, (size_t)(eq - set));
    if (!key)
        return pl__cfg_oom(e);
    const char *v = eq + 1;
    size_t vl = strlen(v);
    int quoted = vl >= 2 && (v[0] == '\'' || v[0] == '"') && v[vl - 1] == v[0];
    char *text = quoted ? strndup(v + 1, vl - 2) : strdup(v);
    keyinfo ki;
    pl_status st = text ? pl__cfg_key_resolve(key, &ki, label, 0, 0, e) : pl__cfg_oom(e);
    free(key);
    if (st == PL_OK) {
        pl_node *val = pl_node_new(PL_NODE_SCALAR, label, 0, 0, text);
        if (val && !quoted && pl__cfg_is_null(val) && *text) {
            pl_node_free(val); /* key=null (or ~): remove the key */
            tree_remove(root, &ki);
        } else if (!val) {
            st = pl__cfg_oom(e);
        } else {
            val->quoted = quoted;
            st = pl__cfg_tree_set(root, &ki, val, label, 0, 0, e);
        }
    }
    pl__cfg_keyinfo_free(&ki);
    free(text);
    return st;
}

