/*
 * sensitivity.c — `prunelab sensitivity` (sensitivity.h): each prunable
 * unit pruned alone at each ratio, evaluated without retraining.
 */
#include "sensitivity.h"
#include "backend.h"

#include "fileio.h"
#include "groups.h"
#include "identity.h"
#include "prune.h"
#include "report_internal.h"
#include "result.h"
#include "run_internal.h"
#include "strbuf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pl_status pl_sens_parse_ratios(const char *text, pl_sens_opts *o, pl_error *err)
{
    o->n_ratios = 0;
    const char *p = text;
    for (;;) {
        char *end;
        double r = strtod(p, &end);
        size_t len = strcspn(p, ",");
        if (end == p || (size_t)(end - p) != len || !(r > 0 && r < 1))
            return pl_error_set(err, PL_EINVAL, "--ratios: '%.*s' is not a ratio in (0, 1) (give e.g. 0.1,0.3,0.5)",
                                (int)len, p);
        if (o->n_ratios && r <= o->ratios[o->n_ratios - 1])
            return pl_error_set(err, PL_EINVAL, "--ratios: %g after %g (give the ratios in ascending order)", r,
                                o->ratios[o->n_ratios - 1]);
        if (o->n_ratios == PL_SENS_MAX_RATIOS)
            return pl_error_set(err, PL_EINVAL, "--ratios: more than %d ratios", PL_SENS_MAX_RATIOS);
        o->ratios[o->n_ratios++] = r;
        if (!*end)
            return PL_OK;
        p = end + 1;
    }
}

/* One unit the analysis prunes alone: a pruning group (named by its first
 * member) or, for weight granularity, a layer. */
typedef struct sens_unit {
    int layer;          /* the member named in prune.include */
    char members[512];  /* "a+b+c" */
} sens_unit;

static pl_status find_units(const pl_model *m, pl_granularity g, sens_unit **out, int *n, pl_error *err)
{
    *out = NULL;
    *n = 0;
    sens_unit *u = calloc((size_t)m->n_layers + 1, sizeof *u);
    if (!u)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    if (g == PL_GRAN_WEIGHT) {
        for (int i = 0; i < m->n_layers; i++)
            if (pl_model_is_prunable(m, i)) {
                u[*n].layer = i;
                snprintf(u[*n].members, sizeof u[*n].members, "%s", m->layers[i].name);
                (*n)++;
            }
        *out = u;
        return PL_OK;
    }
    pl_groups G;
    pl_status s = pl_groups_derive(m, &G, err);
    if (s) {
        free(u);
        return s;
    }
    int *mem = malloc(((size_t)m->n_layers + 1) * sizeof *mem);
    if (!mem) {
        pl_groups_free(&G);
        free(u);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    for (int k = 0; k < G.n && *n < m->n_layers; k++) {
        if (!pl_group_fits(&G.g[k], g))
            continue;
        int nm = pl_group_members(&G.g[k], mem, m->n_layers);
        if (nm <= 0)
            continue;
        u[*n].layer = mem[0];
        pl__buf b = {0};
        for (int i = 0; i < nm; i++)
            pl__buf_printf(&b, "%s%s", i ? "+" : "", m->layers[mem[i]].name);
        if (b.failed) {
            free(mem);
            pl_groups_free(&G);
            free(u);
            return pl_error_set(err, PL_ENOMEM, "out of memory");
        }
        snprintf(u[*n].members, sizeof u[*n].members, "%s", b.data);
        pl__buf_free(&b);
        (*n)++;
    }
    free(mem);
    pl_groups_free(&G);
    *out = u;
    return PL_OK;
}

typedef struct sens_row {
    int unit;            /* -1: the baseline */
    double ratio, achieved, acc;
    pl_counts c;
} sens_row;

/* Prunes a copy of base: unit u alone at ratio r, one shot; evaluates it. */
static pl_status measure_one(const pl_model *base, pl_runenv *e, const pl_experiment *x, pl_instance *oneshot,
                             const char *layer, double r, sens_row *row, pl_error *err)
{
    pl_model *m;
    pl_status s = pl_model_clone(base, &m, err);
    if (s)
        return s;
    pl_backend_bind(m, e->be);
    pl_prune_cfg cfg = x->prune;
    char *inc[1] = {(char *)layer};
    cfg.has_sparsity = 1;
    cfg.sparsity = r;
    cfg.layers = NULL;
    cfg.n_layers = 0;
    cfg.include = inc;
    cfg.n_include = 1;
    cfg.exclude = NULL;
    cfg.n_exclude = 0;
    pl_pruner pr = {0};
    double target;
    s = pl_pruner_init(&pr, m, &cfg, e->crit, oneshot, err);
    for (int step = 0; !s && step < pr.plan.n_steps; step++)
        s = pl_pruner_step(&pr, step, &e->train, x->train.batch_size, x->seed, err);
    if (!s)
        s = pl_pruner_check(&pr, err);
    if (!s) {
        pl_pruner_sparsity(&pr, &target, &row->achieved);
        s = pl_evaluate(m, &e->test, 1000, &row->acc, NULL, err);
    }
    if (!s)
        pl_model_count(m, &row->c);
    pl_pruner_free(&pr);
    pl_model_free(m);
    return s;
}

/* unit column: the member prune.include names (the group's first layer) */
static void unit_name(const sens_unit *u, char *buf, size_t n)
{
    size_t len = strcspn(u->members, "+");
    snprintf(buf, n, "%.*s", (int)len, u->members);
}

static pl_status write_csv(const char *dir, const sens_row *rows, int n_rows, const sens_unit *u, double acc0,
                           pl_error *err)
{
    pl__buf b = {0}, path = {0};
    pl__buf_puts(&b, "unit,members,ratio,achieved,accuracy,acc_drop,params,macs\n");
    for (int i = 0; i < n_rows; i++) {
        char name[128];
        if (rows[i].unit < 0)
            snprintf(name, sizeof name, "(baseline)");
        else
            unit_name(&u[rows[i].unit], name, sizeof name);
        pl__csv_str(&b, name);
        pl__buf_puts(&b, ",");
        pl__csv_str(&b, rows[i].unit < 0 ? "" : u[rows[i].unit].members);
        pl__buf_printf(&b, ",%.2f,%.4f,%.2f,%.2f,%lld,%lld\n", rows[i].ratio, rows[i].achieved, rows[i].acc,
                       acc0 - rows[i].acc, (long long)rows[i].c.params, (long long)rows[i].c.macs);
    }
    pl__buf_printf(&path, "%s/sensitivity.csv", dir);
    pl_status s = b.failed || path.failed ? pl_error_set(err, PL_ENOMEM, "out of memory writing sensitivity.csv")
                                          : pl_write_atomic(path.data, b.data, b.len, err);
    pl__buf_free(&b);
    pl__buf_free(&path);
    return s;
}

/* The prune.layers block: per unit the largest ratio that removed something
 * and whose drop <= max_drop (units that tolerate no measured ratio are
 * left out). */
static pl_status write_layers(const char *dir, const sens_row *rows, int n_rows, const sens_unit *u, int n_units,
                              double acc0, double max_drop, FILE *out, pl_error *err)
{
    pl__buf b = {0}, path = {0};
    pl__buf_printf(&b, "# prune.layers from `prunelab sensitivity` (accuracy drop <= %g points each, measured\n"
                       "# alone and without retraining; baseline %.2f%%). Paste under prune:.\n"
                       "layers:\n",
                   max_drop, acc0);
    int any = 0;
    for (int k = 0; k < n_units; k++) {
        double best = 0;
        for (int i = 0; i < n_rows; i++)
            if (rows[i].unit == k && rows[i].achieved > 0 && acc0 - rows[i].acc <= max_drop &&
                rows[i].ratio > best)
                best = rows[i].ratio;
        if (best > 0) {
            char name[128];
            unit_name(&u[k], name, sizeof name);
            pl__buf_printf(&b, "  %s: {fraction: %.2f}\n", name, best);
            any = 1;
        }
    }
    if (!any)
        pl__buf_printf(&b, "  # no layer stays within %g points at any measured ratio\n", max_drop);
    pl__buf_printf(&path, "%s/sensitivity_layers.yaml", dir);
    pl_status s = b.failed || path.failed ? pl_error_set(err, PL_ENOMEM, "out of memory writing the layers block")
                                          : pl_write_atomic(path.data, b.data, b.len, err);
    if (!s && out)
        fputs(b.data, out);
    pl__buf_free(&b);
    pl__buf_free(&path);
    return s;
}

typedef struct sens_plot {
    const sens_row *rows;
    int n_rows, n_units;
    const sens_unit *u;
    double acc0;
    const char *title;
} sens_plot;

/* sensitivity.svg and .png: accuracy against the achieved sparsity (a
 * requested ratio rounds to whole units), a line per unit from the
 * baseline at 0, the baseline as a dashed line */
static unsigned sens_script(pl__buf *b, char (*outs)[64], const void *ud)
{
    const sens_plot *P = ud;
    for (int k = 0; k < P->n_units; k++) {
        pl__buf_printf(b, "$u%d << EOD\n0 %.4f\n", k, P->acc0);
        for (int i = 0; i < P->n_rows; i++)
            if (P->rows[i].unit == k)
                pl__buf_printf(b, "%.4f %.4f\n", P->rows[i].achieved, P->rows[i].acc);
        pl__buf_puts(b, "EOD\n");
    }
    static const char *const terms[2] = {
        "set terminal svg size 960,540 dynamic noenhanced font 'sans,12' background rgb 'white'\n",
        "set terminal pngcairo size 1200,675 noenhanced font 'sans,12' background rgb 'white'\n"};
    for (int t = 0; t < 2; t++) {
        pl__buf_puts(b, terms[t]);
        pl__buf_puts(b, "set encoding utf8\nset grid\nset key outside right top vertical Left reverse box\n"
                        "set xlabel 'achieved sparsity of the unit, pruned alone (no retraining)'\n"
                        "set ylabel 'test accuracy (%)'\nset xrange [0:1]\nset xtics 0.1\n"
                        "set yrange [0<*:*<100]\nset title ");
        pl__buf tt = {0};
        pl__buf_printf(&tt, "%s: sensitivity of each prunable unit", P->title);
        pl__gp_quote(b, tt.failed ? "" : tt.data);
        pl__buf_free(&tt);
        pl__buf_puts(b, "\nset output ");
        pl__gp_quote(b, outs[t]);
        pl__buf_printf(b, "\nplot %.4f with lines dt 2 lw 1.5 lc rgb 'black' title 'baseline'", P->acc0);
        for (int k = 0; k < P->n_units; k++) {
            char name[128];
            unit_name(&P->u[k], name, sizeof name);
            pl__buf_printf(b, ", \\\n     $u%d using 1:2 with linespoints lw 1.5 pt %d ps 0.8 title ", k, 1 + k % 13);
            pl__gp_quote(b, name);
        }
        pl__buf_puts(b, "\nunset output\n");
    }
    return P->n_units ? 3u : 0u;
}

static pl_status open_oneshot(pl_registry *reg, const pl_experiment *x, int threads, pl_instance **out,
                              pl_error *err)
{
    const pl_plugin *p;
    pl_status s = pl_registry_find(reg, PL_KIND_SCHEDULE, "oneshot", &p, err);
    if (!s)
        s = pl_instance_new_kv(p, NULL, x->seed, threads, out, err);
    return s;
}

static pl_status analyse(pl_registry *reg, pl_experiment *x, pl_identity *id, const pl_sens_opts *o,
                         pl_error *err)
{
    if (!x->prune.enabled)
        return pl_error_set(err, PL_ECONFIG,
                            "%s: no prune: section (sensitivity uses its criterion and granularity; add e.g. "
                            "prune: {criterion: l1, granularity: channel, sparsity: 0.5})",
                            x->file);
    if (x->prune.granularity == PL_GRAN_LAYER)
        return pl_error_set(err, PL_ECONFIG,
                            "%s: prune.granularity layer removes whole blocks, not a ratio of a layer "
                            "(use channel, neuron or weight for a sensitivity analysis)",
                            x->file);
    pl_run_opts ro = {.threads = o->threads, .out_dir = o->out_dir, .quiet = o->quiet,
                      .progress = o->quiet ? PL_PROGRESS_NONE : PL_PROGRESS_AUTO, .out = o->out,
                      .interrupted = o->interrupted};
    const char *dir = pl__run_report_dir(x, &ro);
    pl_status s = pl__run_mkdir_p(dir, err);
    if (s)
        return s;
    pl_runenv e;
    if ((s = pl__runenv_open(reg, x, o->threads, 1, id, &e, err)))
        return s;
    pl_model *base = NULL;
    pl_instance *oneshot = NULL;
    sens_unit *u = NULL;
    sens_row *rows = NULL;
    int n_units = 0, n_rows = 0;
    double secs, acc0 = 0;
    pl_run_result hist;
    memset(&hist, 0, sizeof hist);
    s = pl__run_get_baseline(x, &ro, &e, &base, &secs, &hist, err);
    if (!s) {
        pl_backend_bind(base, e.be);
        s = pl_evaluate(base, &e.test, 1000, &acc0, NULL, err);
    }
    if (!s)
        s = open_oneshot(reg, x, o->threads, &oneshot, err);
    if (!s)
        s = find_units(base, x->prune.granularity, &u, &n_units, err);
    if (!s && n_units == 0)
        s = pl_error_set(err, PL_ECONFIG, "%s: model %s has nothing to prune at %s granularity", x->file,
                         base->name, x->prune.granularity == PL_GRAN_NEURON ? "neuron" : "channel");
    const double dflt[9] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
    const double *ratios = o->n_ratios ? o->ratios : dflt;
    int n_ratios = o->n_ratios ? o->n_ratios : 9;
    if (!s && !(rows = calloc((size_t)n_units * (size_t)n_ratios + 1, sizeof *rows)))
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    if (!s) {
        rows[0].unit = -1;
        rows[0].acc = acc0;
        pl_model_count(base, &rows[0].c);
        n_rows = 1;
        if (o->out)
            fprintf(o->out, "sensitivity: %d unit(s) x %d ratio(s), %s, no retraining; baseline %.2f%%\n",
                    n_units, n_ratios, x->prune.criterion.plugin, acc0);
    }
    for (int k = 0; !s && k < n_units; k++) {
        char name[128];
        unit_name(&u[k], name, sizeof name);
        for (int j = 0; !s && j < n_ratios; j++) {
            if (o->interrupted && *o->interrupted) {
                s = pl_error_set(err, PL_EINTR, "interrupted; nothing written");
                break;
            }
            sens_row *r = &rows[n_rows];
            r->unit = k;
            r->ratio = ratios[j];
            s = measure_one(base, &e, x, oneshot, name, ratios[j], r, err);
            if (!s) {
                n_rows++;
                if (o->out)
                    fprintf(o->out, "  %-24s %.2f  achieved %.4f  accuracy %6.2f%%  drop %6.2f\n", u[k].members,
                            r->ratio, r->achieved, r->acc, acc0 - r->acc);
            }
        }
    }
    if (!s)
        s = write_csv(dir, rows, n_rows, u, acc0, err);
    if (!s && o->max_drop >= 0)
        s = write_layers(dir, rows, n_rows, u, n_units, acc0, o->max_drop, o->out, err);
    if (!s && x->report.plots) {
        static const char *const finals[2] = {"sensitivity.svg", "sensitivity.png"};
        sens_plot P = {rows, n_rows, n_units, u, acc0, x->name};
        pl__plot_render(dir, finals, 2, sens_script, &P);
    }
    if (!s && o->out)
        fprintf(o->out, "sensitivity: wrote %s/sensitivity.csv\n", dir);
    free(rows);
    free(u);
    pl_run_result_free(&hist);
    if (oneshot)
        pl_instance_free(oneshot);
    pl_model_free(base);
    pl__runenv_free(&e);
    return s;
}

pl_status pl_sensitivity_config(pl_registry *reg, const pl_config *cfg, const pl_sens_opts *o, pl_error *err)
{
    size_t n = pl_config_run_count(cfg);
    pl_experiment *x;
    pl_status s = pl_config_expand(cfg, 0, &x, err);
    if (s)
        return s;
    if (n != 1) {
        s = pl_error_set(err, PL_ECONFIG,
                         "%s: the experiment sweeps %zu runs; sensitivity analyses one (copy the file without its "
                         "sweep:, with the values you want)",
                         x->file, n);
        pl_experiment_free(x);
        return s;
    }
    pl_identity *id = pl_identity_new(reg);
    if (!id)
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    if (!s)
        s = pl_identity_apply(id, x, err);
    if (!s)
        s = analyse(reg, x, id, o, err);
    pl_identity_free(id);
    pl_experiment_free(x);
    return s;
}
