/*
 * config_dump.c — the canonical text of a resolved experiment
 * (pl_experiment_dump) and the identities hashed from it (run_id, the
 * baseline key).
 */
#include "config_internal.h"
#include "rng.h"
#include "strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dump and identity --------------------------------------------------------- */

/* A value as it goes into the dump: raw when unambiguous, else quoted. */
static void sb_value(pl__buf *b, const char *s)
{
    int plain = *s != '\0';
    for (const char *c = s; *c && plain; c++) {
        unsigned char u = (unsigned char)*c;
        plain = u >= 0x80 || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                strchr("_./+-", u);
    }
    if (plain) {
        pl__buf_printf(b, "%s", s);
        return;
    }
    pl__buf_printf(b, "\"");
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '"' || u == '\\')
            pl__buf_printf(b, "\\%c", u);
        else if (u < 0x20 || u == 0x7f)
            pl__buf_printf(b, "\\x%02x", u);
        else
            pl__buf_printf(b, "%c", u);
    }
    pl__buf_printf(b, "\"");
}

static void sb_kv(pl__buf *b, const char *key, const char *value)
{
    pl__buf_printf(b, "%s: ", key);
    sb_value(b, value);
    pl__buf_printf(b, "\n");
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp((*(const pl_kv *const *)a)->key, (*(const pl_kv *const *)b)->key);
}

static void dump_plugin(pl__buf *b, const char *key, const pl_plugin_ref *r)
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

/* ---- values through the schema (field, config_internal.h) ---- */

/* The table of a section by its dotted path from the root ("train.distill"). */
static const field *table(const char *path)
{
    const field *tbl = pl__cfg_root_f;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *part = buf, *dot; *part; part = dot ? dot + 1 : part + strlen(part)) {
        if ((dot = strchr(part, '.')))
            *dot = '\0';
        const field *f = pl__cfg_field_find(tbl, part);
        PL_ASSERT(f && f->sub);
        tbl = f->sub;
    }
    return tbl;
}

/* "prefix[.name].key: value" of a stored key of `base` (its section's struct);
 * an enum value out of range dumps as the default's name. */
static void dump_value(pl__buf *b, const char *prefix, const char *name, const field *f, const void *base)
{
    const char *at = (const char *)base + f->off;
    PL_ASSERT(f->flags & FL_STORED);
    pl__buf_printf(b, "%s%s%s%s%s: ", prefix, name ? "." : "", name ? name : "", *prefix ? "." : "", f->key);
    pl__cfg_value v;
    memcpy(&v, at, pl__cfg_stored_size(f->kind));
    switch (f->kind) {
    case F_INT: pl__buf_printf(b, "%d\n", v.i); break;
    case F_I64: pl__buf_printf(b, "%" PRId64 "\n", v.l); break;
    case F_UINT: pl__buf_printf(b, "%" PRIu64 "\n", v.u); break;
    case F_NUM: pl__buf_printf(b, "%.17g\n", v.d); break;
    case F_BOOL: pl__buf_printf(b, "%s\n", v.i ? "true" : "false"); break;
    case F_ENUM:
        v.i -= f->base;
        pl__buf_printf(b, "%s\n", f->names[v.i >= 0 && (size_t)v.i < f->n_names ? v.i : (int)f->def]);
        break;
    default:
        PL_ASSERT(!"a stored field is a single value");
    }
}

static void dump_key(pl__buf *b, const char *prefix, const char *key, const void *base)
{
    dump_value(b, prefix, NULL, pl__cfg_field_find(table(prefix), key), base);
}

/* Every stored key of tbl in table order, and those of FL_DUMP maps in place. */
static void dump_fields(pl__buf *b, const char *prefix, const field *tbl, const void *base)
{
    for (const field *f = tbl; f->key; f++) {
        if (f->kind == F_MAP && (f->flags & FL_DUMP)) {
            char p[128];
            snprintf(p, sizeof p, "%s.%s", prefix, f->key);
            dump_fields(b, p, f->sub, (const char *)base + f->off);
        } else if ((f->flags & FL_STORED) && !(f->flags & FL_ALIAS)) {
            dump_value(b, prefix, NULL, f, base);
        }
    }
}

static void dump_phase(pl__buf *b, const char *s, const pl_phase_cfg *p)
{
    char sub[64];
    /* epochs, batch_size, optimizer.*, lr_schedule.* */
    dump_fields(b, s, table("train"), p);
    /* rewind: only when set, so run ids of runs without it stay as they were */
    if (p->rewind == PL_REWIND_EPOCH)
        pl__buf_printf(b, "%s.rewind: epoch:%d\n", s, p->rewind_epoch);
    else if (p->rewind == PL_REWIND_INIT || p->rewind == PL_REWIND_RANDOM)
        pl__buf_printf(b, "%s.rewind: %s\n", s, p->rewind == PL_REWIND_INIT ? "init" : "random");
    /* distill: only when set, so run ids of runs without it stay as they were */
    snprintf(sub, sizeof sub, "%s.distill", s);
    if (p->distill.enabled)
        dump_fields(b, sub, table("train.distill"), &p->distill);
    /* regularize: only when set, so run ids of runs without one stay as they were */
    const pl_reg_cfg *r = &p->reg;
    snprintf(sub, sizeof sub, "%s.regularize", s);
    if (r->type > PL_REG_NONE && r->type <= PL_REG_BN_L1) {
        dump_value(b, sub, NULL, pl__cfg_field_find(table("train.regularize"), "type"), r);
        dump_value(b, sub, NULL, pl__cfg_field_find(table("train.regularize"), "coef"), r);
        pl__buf_printf(b, "%s.layers: [", sub);
        for (size_t i = 0; i < r->n_layers; i++) {
            if (i)
                pl__buf_printf(b, ", ");
            sb_value(b, r->layers[i]);
        }
        pl__buf_printf(b, "]\n");
    }
}

static void dump_list(pl__buf *b, const char *key, char *const *v, size_t n)
{
    pl__buf_printf(b, "%s: [", key);
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl__buf_printf(b, ", ");
        sb_value(b, v[i]);
    }
    pl__buf_printf(b, "]\n");
}

static int cmp_target(const void *a, const void *b)
{
    return strcmp((*(const pl_layer_target *const *)a)->layer, (*(const pl_layer_target *const *)b)->layer);
}

char *pl_experiment_dump(const pl_experiment *x)
{
    pl__buf b = {0};
    sb_kv(&b, "name", x->name ? x->name : "");
    dump_key(&b, "", "seed", x);
    sb_kv(&b, "model", x->model ? x->model : "");
    if (x->model_init) /* only when set: identities without it stay as they were */
        sb_kv(&b, "model_init", x->model_init);
    dump_plugin(&b, "dataset", &x->dataset);
    if (x->augment.crop_pad > 0 || x->augment.hflip) /* only when on: other identities stay as they were */
        dump_fields(&b, "dataset.augment", table("dataset.augment"), &x->augment);
    dump_plugin(&b, "backend", &x->backend);
    dump_phase(&b, "train", &x->train);
    dump_phase(&b, "retrain", &x->retrain);
    dump_phase(&b, "finetune", &x->finetune);
    const pl_prune_cfg *p = &x->prune;
    pl__buf_printf(&b, "prune.enabled: %s\n", p->enabled ? "true" : "false");
    if (p->enabled) {
        dump_plugin(&b, "prune.criterion", &p->criterion);
        dump_plugin(&b, "prune.schedule", &p->schedule);
        dump_key(&b, "prune", "granularity", p);
        if (p->has_sparsity) {
            dump_key(&b, "prune", "sparsity", p);
        } else if (p->n_layers) {
            const pl_layer_target **t = malloc(p->n_layers * sizeof *t);
            if (t) {
                for (size_t i = 0; i < p->n_layers; i++)
                    t[i] = &p->layers[i];
                qsort(t, p->n_layers, sizeof *t, cmp_target);
                const field *target = table("prune.layers");
                for (size_t i = 0; i < p->n_layers; i++)
                    dump_value(&b, "prune.layers", t[i]->layer,
                               pl__cfg_field_find(target, t[i]->count >= 0 ? "count" : "fraction"), t[i]);
                free(t);
            } else {
                b.failed = 1;
            }
        }
        dump_list(&b, "prune.include", p->include, p->n_include);
        dump_list(&b, "prune.exclude", p->exclude, p->n_exclude);
        dump_key(&b, "prune", "tolerance", p);
        if (p->granularity == PL_GRAN_LAYER && p->count >= 0) /* layer granularity */
            dump_key(&b, "prune", "count", p);
        PL_ASSERT(p->group_reduction >= PL_GROUP_MEAN && p->group_reduction <= PL_GROUP_MAX);
        if (p->group_reduction != PL_GROUP_MEAN) /* the default keeps older run identities */
            dump_key(&b, "prune", "group_reduction", p);
        if (p->recalibrate_bn > 0) /* only when on: other identities stay as they were */
            dump_key(&b, "prune", "recalibrate_bn", p);
    }
    sb_kv(&b, "report.dir", x->report.dir ? x->report.dir : "");
    sb_kv(&b, "report.cache", x->report.cache ? x->report.cache : "");
    dump_key(&b, "report", "latency_runs", &x->report);
    dump_key(&b, "report", "plots", &x->report);
    dump_list(&b, "plugin_path", x->plugin_path, x->n_plugin_path);
    dump_key(&b, "limits", "max_runs", &x->max_runs);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
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

void pl__cfg_hash_lines(const char *dump, int (*keep)(const char *), char out[17])
{
    hash_lines2(dump, keep, NULL, NULL, out);
}

int pl__cfg_run_line(const char *l)
{
    return !has_prefix(l, "name:") && !has_prefix(l, "report.") && !has_prefix(l, "plugin_path:") &&
           !has_prefix(l, "limits.");
}

static int baseline_line(const char *l)
{
    return has_prefix(l, "seed:") || has_prefix(l, "model:") || has_prefix(l, "model_init:") || has_prefix(l, "dataset.") ||
           has_prefix(l, "backend.") || has_prefix(l, "train.");
}

/* With an identity the model's content stands in for its path (and
 * model_init's file digest, "model.init:", for its path), so the same file
 * named two ways is one run. */
static int run_line_content(const char *l)
{
    return pl__cfg_run_line(l) && !has_prefix(l, "model:") && !has_prefix(l, "model_init:");
}

static int baseline_line_content(const char *l)
{
    return baseline_line(l) && !has_prefix(l, "model:") && !has_prefix(l, "model_init:");
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
        pl__cfg_hash_lines(d, baseline_line, out);
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
    hash_lines2(d, identity ? run_line_content : pl__cfg_run_line, identity, identity ? run_id_line : NULL, x->run_id);
    free(d);
    return PL_OK;
}

