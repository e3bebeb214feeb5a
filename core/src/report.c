/*
 * report.c — results.csv, layers.csv, results.md and the plots, built from
 * finished runs.
 *
 * results.csv and layers.csv hold one row per run (per layer) in run_index
 * order, with fixed decimals so golden files and `compare` see stable text.
 * results.md groups the runs whose status is ok by configuration (every
 * key but the seed) and shows mean ± sample std over the seeds; runs with
 * another status get their own table. Plots need gnuplot on PATH; without
 * it the report is still complete and a warning says how to get plots.
 */
#include "result.h"
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PL__DASH "\xe2\x80\x94"  /* — */
#define PL__PM "\xc2\xb1"        /* ± */
#define PL__TIMES "\xc3\x97"     /* × */
#define PL__ARROW "\xe2\x86\x92" /* → */

static const char pl__results_header[] =
    "run_id,experiment,model,dataset,backend,seed,criterion,schedule,granularity,"
    "target_sparsity,achieved_sparsity,params_before,params_after,nonzero_params_after,"
    "macs_before,macs_after,macs_after_physical,flops_before,flops_after,"
    "acc_baseline,acc_pruned,acc_retrained,acc_final,latency_ms_before,latency_ms_after,"
    "train_seconds,baseline_seconds,status,sweep,prunelab_version,dataset_checksum\n";

static const char pl__layers_header[] =
    "run_id,layer,type,shape_before,shape_after,params_before,params_after,nonzero_after,"
    "macs_before,macs_after,sparsity\n";

/* ---- run order ------------------------------------------------------------ */

static int pl__run_ptr_cmp(const void *a, const void *b)
{
    const pl_run_result *x = *(const pl_run_result *const *)a;
    const pl_run_result *y = *(const pl_run_result *const *)b;
    if (x->run_index != y->run_index)
        return x->run_index < y->run_index ? -1 : 1;
    int c = strcmp(x->run_id, y->run_id);
    if (c)
        return c;
    return x < y ? -1 : x > y;
}

/* ---- CSV ------------------------------------------------------------------ */

static void pl__csv_str(pl__buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        pl__buf_puts(b, s);
        return;
    }
    pl__buf_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            pl__buf_add(b, "\"", 1);
        pl__buf_add(b, p, 1);
    }
    pl__buf_add(b, "\"", 1);
}

static void pl__csv_num(pl__buf *b, double v, int decimals)
{
    if (!isnan(v))
        pl__buf_printf(b, "%.*f", decimals, v);
}

static void pl__csv_results(pl__buf *b, const pl_run_result *const *runs, size_t n)
{
    pl__buf_puts(b, pl__results_header);
    for (size_t i = 0; i < n; i++) {
        const pl_run_result *r = runs[i];
        pl__csv_str(b, r->run_id);
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, r->experiment);
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, r->model);
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, r->dataset);
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, r->backend);
        pl__buf_printf(b, ",%" PRIu64 ",", r->seed);
        pl__csv_str(b, r->criterion);
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, r->schedule);
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, r->granularity);
        pl__buf_add(b, ",", 1);
        pl__csv_num(b, r->target_sparsity, 4);
        pl__buf_add(b, ",", 1);
        pl__csv_num(b, r->achieved_sparsity, 4);
        pl__buf_printf(b, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                          ",%" PRId64 ",%" PRId64 ",",
                       r->params_before, r->params_after, r->nonzero_params_after, r->macs_before,
                       r->macs_after, r->macs_after_physical, 2 * r->macs_before,
                       2 * r->macs_after);
        const double acc[4] = {r->acc_baseline, r->acc_pruned, r->acc_retrained, r->acc_final};
        for (int k = 0; k < 4; k++) {
            pl__csv_num(b, acc[k], 2);
            pl__buf_add(b, ",", 1);
        }
        const double secs[4] = {r->latency_ms_before, r->latency_ms_after, r->train_seconds,
                                r->baseline_seconds};
        for (int k = 0; k < 4; k++) {
            pl__csv_num(b, secs[k], 3);
            pl__buf_add(b, ",", 1);
        }
        pl__csv_str(b, r->status);
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, r->sweep);
        /* appended columns: provenance from the manifest (empty without one) */
        const char *ver = pl_manifest_get(r, "prunelab_version"), *sum = pl_manifest_get(r, "dataset.train");
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, ver ? ver : "");
        pl__buf_add(b, ",", 1);
        pl__csv_str(b, sum ? sum : "");
        pl__buf_add(b, "\n", 1);
    }
}

static void pl__csv_layers(pl__buf *b, const pl_run_result *const *runs, size_t n)
{
    pl__buf_puts(b, pl__layers_header);
    for (size_t i = 0; i < n; i++) {
        const pl_run_result *r = runs[i];
        for (size_t k = 0; k < r->n_layers; k++) {
            const pl_layer_result *l = &r->layers[k];
            pl__csv_str(b, r->run_id);
            pl__buf_add(b, ",", 1);
            pl__csv_str(b, l->name);
            pl__buf_add(b, ",", 1);
            pl__csv_str(b, l->type);
            pl__buf_add(b, ",", 1);
            pl__csv_str(b, l->shape_before);
            pl__buf_add(b, ",", 1);
            pl__csv_str(b, l->shape_after);
            pl__buf_printf(b, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",",
                           l->params_before, l->params_after, l->nonzero_after, l->macs_before,
                           l->macs_after);
            pl__csv_num(b, l->sparsity, 4);
            pl__buf_add(b, "\n", 1);
        }
    }
}

/* ---- grouping -------------------------------------------------------------- */

/* The sweep description without its seed=... item: runs that differ only
 * in the seed share it. */
static void pl__sweep_sans_seed(const char *sweep, char *out, size_t cap)
{
    size_t o = 0;
    const char *p = sweep;
    out[0] = '\0';
    while (*p) {
        while (*p == ' ')
            p++;
        const char *q = p;
        while (*q && *q != ' ')
            q++;
        if (q > p && strncmp(p, "seed=", 5) != 0) {
            size_t len = (size_t)(q - p);
            if (o + len + 2 < cap) {
                if (o)
                    out[o++] = ' ';
                memcpy(out + o, p, len);
                o += len;
                out[o] = '\0';
            }
        }
        p = q;
    }
}

static int pl__same_double(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* model, dataset, criterion, schedule, granularity, target: what a row shows */
static int pl__same_visible(const pl_run_result *a, const pl_run_result *b)
{
    return strcmp(a->model, b->model) == 0 && strcmp(a->dataset, b->dataset) == 0 &&
           strcmp(a->criterion, b->criterion) == 0 && strcmp(a->schedule, b->schedule) == 0 &&
           strcmp(a->granularity, b->granularity) == 0 &&
           pl__same_double(a->target_sparsity, b->target_sparsity);
}

static int pl__same_config(const pl_run_result *a, const pl_run_result *b)
{
    char sa[sizeof a->sweep], sb[sizeof b->sweep];
    if (!pl__same_visible(a, b) || strcmp(a->backend, b->backend) != 0 ||
        strcmp(a->experiment, b->experiment) != 0)
        return 0;
    pl__sweep_sans_seed(a->sweep, sa, sizeof sa);
    pl__sweep_sans_seed(b->sweep, sb, sizeof sb);
    return strcmp(sa, sb) == 0;
}

static int pl__same_section(const pl_run_result *a, const pl_run_result *b)
{
    return strcmp(a->model, b->model) == 0 && strcmp(a->dataset, b->dataset) == 0;
}

typedef struct pl__stat {
    double mean, sd;
    size_t n;
} pl__stat;

typedef enum { PL__V_F64, PL__V_I64 } pl__vtype;

static double pl__value(const pl_run_result *r, size_t off, pl__vtype t)
{
    const char *p = (const char *)r + off;
    if (t == PL__V_I64) {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return (double)v;
    }
    double v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* mean and sample std of one field over runs[i] with sel[i] == id (NaN skipped) */
static pl__stat pl__stat_of(const pl_run_result *const *runs, const int *sel, size_t n, int id,
                            size_t off, pl__vtype t)
{
    pl__stat s = {NAN, NAN, 0};
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double v = sel[i] == id ? pl__value(runs[i], off, t) : NAN;
        if (!isnan(v)) {
            sum += v;
            s.n++;
        }
    }
    if (!s.n)
        return s;
    s.mean = sum / (double)s.n;
    if (s.n > 1) {
        double ss = 0;
        for (size_t i = 0; i < n; i++) {
            double v = sel[i] == id ? pl__value(runs[i], off, t) : NAN;
            if (!isnan(v))
                ss += (v - s.mean) * (v - s.mean);
        }
        s.sd = sqrt(ss / (double)(s.n - 1));
    }
    return s;
}

#define PL__F(field) offsetof(pl_run_result, field)

/* ---- Markdown ---------------------------------------------------------------- */

static void pl__md_text(pl__buf *b, const char *s)
{
    if (!*s) {
        pl__buf_puts(b, PL__DASH);
        return;
    }
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            pl__buf_puts(b, "\\|");
        else if (*p == '\n' || *p == '\r')
            pl__buf_add(b, " ", 1);
        else
            pl__buf_add(b, p, 1);
    }
}

/* 1234567 -> "1,234,567" (rounded to an integer) */
static void pl__md_count(pl__buf *b, double v)
{
    if (isnan(v) || isinf(v)) {
        pl__buf_puts(b, PL__DASH);
        return;
    }
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", fabs(v));
    size_t len = strlen(digits);
    if (v < 0 && strcmp(digits, "0") != 0)
        pl__buf_add(b, "-", 1);
    for (size_t i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            pl__buf_add(b, ",", 1);
        pl__buf_add(b, &digits[i], 1);
    }
}

/* value as displayed with `decimals` (bold decisions compare these) */
static double pl__shown(double v, int decimals)
{
    char t[64];
    if (isnan(v))
        return NAN;
    snprintf(t, sizeof t, "%.*f", decimals, v);
    return strtod(t, NULL);
}

static void pl__md_stat(pl__buf *b, pl__stat s, size_t group_n, int decimals)
{
    if (!s.n) {
        pl__buf_puts(b, PL__DASH);
        return;
    }
    if (s.n > 1)
        pl__buf_printf(b, "%.*f " PL__PM " %.*f", decimals, s.mean, decimals, s.sd);
    else
        pl__buf_printf(b, "%.*f", decimals, s.mean);
    if (s.n < group_n)
        pl__buf_printf(b, " (n=%zu)", s.n);
}

static void pl__bold_open(pl__buf *b, int bold)
{
    if (bold)
        pl__buf_puts(b, "**");
}

typedef struct pl__group {
    const pl_run_result *key; /* first run (lowest run_index) */
    size_t n;                 /* ok runs in it */
    int section;
    pl__stat achieved, nonzero, macs_before, macs_after, acc_base, acc_pruned, acc_final,
        lat_before, lat_after;
} pl__group;

typedef struct pl__section {
    const pl_run_result *key;
    size_t n_base;                 /* distinct baselines */
    pl__stat params, macs, acc, lat;
    int n_pruned;
    double best_acc, best_params, best_macs, best_lat; /* as displayed */
} pl__section;

typedef struct pl__layout {
    const pl_run_result **runs; /* every run, in run order */
    size_t n;
    int *group;   /* group of runs[i], -1 when status != ok */
    int *base;    /* section of runs[i] when it carries a distinct baseline, else -1 */
    pl__group *groups;
    size_t n_groups;
    pl__section *sections;
    size_t n_sections;
    int dataset_col, sweep_col;
} pl__layout;

static void pl__layout_free(pl__layout *L)
{
    free(L->group);
    free(L->base);
    free(L->groups);
    free(L->sections);
}

static int pl__is_ok(const pl_run_result *r) { return strcmp(r->status, "ok") == 0; }
static int pl__is_pruned(const pl_run_result *r) { return r->criterion[0] != '\0'; }

static pl_status pl__layout_build(pl__layout *L, const pl_run_result **runs, size_t n,
                                  pl_error *err)
{
    memset(L, 0, sizeof *L);
    L->runs = runs;
    L->n = n;
    size_t cap = n ? n : 1;
    L->group = malloc(cap * sizeof *L->group);
    L->base = malloc(cap * sizeof *L->base);
    L->groups = calloc(cap, sizeof *L->groups);
    L->sections = calloc(cap, sizeof *L->sections);
    if (!L->group || !L->base || !L->groups || !L->sections) {
        pl__layout_free(L);
        return pl_error_set(err, PL_ENOMEM, "report: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const pl_run_result *r = runs[i];
        L->group[i] = L->base[i] = -1;
        if (!pl__is_ok(r))
            continue;
        size_t s = 0;
        while (s < L->n_sections && !pl__same_section(L->sections[s].key, r))
            s++;
        if (s == L->n_sections)
            L->sections[L->n_sections++].key = r;
        /* a baseline is shared by the runs of one seed: count it once */
        int dup = 0;
        for (size_t k = 0; k < i && !dup; k++)
            dup = L->base[k] == (int)s && runs[k]->seed == r->seed &&
                  pl__same_double(runs[k]->acc_baseline, r->acc_baseline);
        if (!dup)
            L->base[i] = (int)s;
        if (!pl__is_pruned(r))
            continue;
        size_t g = 0;
        while (g < L->n_groups && !pl__same_config(L->groups[g].key, r))
            g++;
        if (g == L->n_groups) {
            L->groups[L->n_groups].key = r;
            L->groups[L->n_groups++].section = (int)s;
        }
        L->groups[g].n++;
        L->group[i] = (int)g;
    }
    for (size_t s = 0; s < L->n_sections; s++) {
        pl__section *S = &L->sections[s];
        S->params = pl__stat_of(runs, L->base, n, (int)s, PL__F(params_before), PL__V_I64);
        S->macs = pl__stat_of(runs, L->base, n, (int)s, PL__F(macs_before), PL__V_I64);
        S->acc = pl__stat_of(runs, L->base, n, (int)s, PL__F(acc_baseline), PL__V_F64);
        S->lat = pl__stat_of(runs, L->base, n, (int)s, PL__F(latency_ms_before), PL__V_F64);
        for (size_t i = 0; i < n; i++)
            S->n_base += L->base[i] == (int)s;
        S->best_acc = -INFINITY;
        S->best_params = S->best_macs = S->best_lat = INFINITY;
        if (L->sections[s].key != L->sections[0].key &&
            strcmp(L->sections[s].key->dataset, L->sections[0].key->dataset) != 0)
            L->dataset_col = 1;
    }
    for (size_t g = 0; g < L->n_groups; g++) {
        pl__group *G = &L->groups[g];
        int id = (int)g;
        G->achieved = pl__stat_of(runs, L->group, n, id, PL__F(achieved_sparsity), PL__V_F64);
        G->nonzero = pl__stat_of(runs, L->group, n, id, PL__F(nonzero_params_after), PL__V_I64);
        G->macs_before = pl__stat_of(runs, L->group, n, id, PL__F(macs_before), PL__V_I64);
        G->macs_after = pl__stat_of(runs, L->group, n, id, PL__F(macs_after), PL__V_I64);
        G->acc_base = pl__stat_of(runs, L->group, n, id, PL__F(acc_baseline), PL__V_F64);
        G->acc_pruned = pl__stat_of(runs, L->group, n, id, PL__F(acc_pruned), PL__V_F64);
        G->acc_final = pl__stat_of(runs, L->group, n, id, PL__F(acc_final), PL__V_F64);
        G->lat_before = pl__stat_of(runs, L->group, n, id, PL__F(latency_ms_before), PL__V_F64);
        G->lat_after = pl__stat_of(runs, L->group, n, id, PL__F(latency_ms_after), PL__V_F64);
        pl__section *S = &L->sections[G->section];
        S->n_pruned++;
        double v;
        if (!isnan(v = pl__shown(G->acc_final.mean, 2)) && v > S->best_acc)
            S->best_acc = v;
        if (!isnan(v = pl__shown(G->nonzero.mean, 0)) && v < S->best_params)
            S->best_params = v;
        if (!isnan(v = pl__shown(G->macs_after.mean, 0)) && v < S->best_macs)
            S->best_macs = v;
        if (!isnan(v = pl__shown(G->lat_after.mean, 3)) && v < S->best_lat)
            S->best_lat = v;
        /* two rows that would look the same need the sweep to tell them apart */
        for (size_t h = 0; h < g; h++)
            if (pl__same_visible(L->groups[h].key, G->key))
                L->sweep_col = 1;
    }
    return PL_OK;
}

/* distinct values of a string field over the ok runs, "; "-separated */
static void pl__md_distinct(pl__buf *b, const pl__layout *L, size_t off, size_t *count)
{
    *count = 0;
    for (size_t i = 0; i < L->n; i++) {
        const char *v = (const char *)L->runs[i] + off;
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp((const char *)L->runs[k] + off, v) == 0;
        if (seen)
            continue;
        if ((*count)++)
            pl__buf_puts(b, "; ");
        if (!*v)
            pl__buf_puts(b, PL__DASH);
        else if (strpbrk(v, "`\n\r|")) /* a code span cannot hold these */
            pl__md_text(b, v);
        else
            pl__buf_printf(b, "`%s`", v);
    }
}

static void pl__md_row_start(pl__buf *b, const pl__layout *L, const pl_run_result *key,
                             const char *criterion, const char *schedule, const char *gran,
                             const char *sweep)
{
    pl__buf_puts(b, "| ");
    pl__md_text(b, key->model);
    if (L->dataset_col) {
        pl__buf_puts(b, " | ");
        pl__md_text(b, key->dataset);
    }
    pl__buf_puts(b, " | ");
    pl__md_text(b, criterion);
    pl__buf_puts(b, " | ");
    pl__md_text(b, schedule);
    pl__buf_puts(b, " | ");
    pl__md_text(b, gran);
    if (L->sweep_col) {
        pl__buf_puts(b, " | ");
        pl__md_text(b, sweep);
    }
}

static void pl__md_results(pl__buf *b, const pl__layout *L, int plots)
{
    size_t n_ok = 0;
    for (size_t i = 0; i < L->n; i++)
        n_ok += pl__is_ok(L->runs[i]);

    size_t n_exp;
    pl__buf exp = {0};
    pl__md_distinct(&exp, L, PL__F(experiment), &n_exp);
    if (n_exp == 1) {
        pl__buf_puts(b, "# Results: ");
        pl__md_text(b, L->runs[0]->experiment[0] ? L->runs[0]->experiment : "prunelab");
        pl__buf_puts(b, "\n\n");
    } else
        pl__buf_puts(b, "# Results\n\n");
    if (L->n == 0) {
        pl__buf_puts(b, "No runs recorded.\n");
        pl__buf_free(&exp);
        return;
    }
    if (n_exp > 1)
        pl__buf_printf(b, "- experiments: %s\n", exp.data);
    pl__buf_free(&exp);
    pl__buf_printf(b, "- runs: %zu (%zu ok, %zu failed or flagged)\n", L->n, n_ok, L->n - n_ok);
    size_t count;
    pl__buf list = {0};
    pl__md_distinct(&list, L, PL__F(dataset), &count);
    pl__buf_printf(b, "- %s: %s\n", count == 1 ? "dataset" : "datasets", list.data);
    list.len = 0;
    pl__md_distinct(&list, L, PL__F(backend), &count);
    pl__buf_printf(b, "- %s: %s\n\n", count == 1 ? "backend" : "backends", list.data);
    pl__buf_free(&list);

    pl__buf_puts(b,
                 "Mean " PL__PM " sample standard deviation over seeds. Accuracy: test-set %. "
                 "Params after: nonzero parameters. MACs: per image; after pruning only "
                 "surviving weights count, with the reduction against the dense model. "
                 "Latency: ms per 1,000 images. **Bold**: the best pruned configuration of a "
                 "model per column (highest final accuracy; fewest params and MACs; lowest "
                 "latency).");
    if (n_ok < L->n)
        pl__buf_puts(b, " Runs whose status is not ok are left out and listed below.");
    pl__buf_puts(b, "\n\n");

    pl__buf_printf(b, "| model%s | criterion | schedule | granularity%s | target | achieved | "
                      "params after | MACs after | acc baseline | acc pruned | acc final | "
                      "latency ms before " PL__ARROW " after | seeds (n) |\n",
                   L->dataset_col ? " | dataset" : "", L->sweep_col ? " | sweep" : "");
    pl__buf_printf(b, "|---%s|---|---|---%s|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
                   L->dataset_col ? "|---" : "", L->sweep_col ? "|---" : "");

    for (size_t s = 0; s < L->n_sections; s++) {
        const pl__section *S = &L->sections[s];
        pl__md_row_start(b, L, S->key, "dense baseline", "", "", "");
        pl__buf_puts(b, " | " PL__DASH " | " PL__DASH " | ");
        pl__md_count(b, S->params.mean);
        pl__buf_puts(b, " | ");
        pl__md_count(b, S->macs.mean);
        pl__buf_puts(b, " | ");
        pl__md_stat(b, S->acc, S->n_base, 2);
        pl__buf_puts(b, " | " PL__DASH " | " PL__DASH " | ");
        if (S->lat.n)
            pl__buf_printf(b, "%.3f", S->lat.mean);
        else
            pl__buf_puts(b, PL__DASH);
        pl__buf_printf(b, " | %zu |\n", S->n_base);

        int mark = S->n_pruned > 1;
        for (size_t g = 0; g < L->n_groups; g++) {
            const pl__group *G = &L->groups[g];
            if (G->section != (int)s)
                continue;
            const pl_run_result *k = G->key;
            char sweep[sizeof k->sweep];
            pl__sweep_sans_seed(k->sweep, sweep, sizeof sweep);
            pl__md_row_start(b, L, k, k->criterion, k->schedule, k->granularity, sweep);
            pl__buf_puts(b, " | ");
            if (isnan(k->target_sparsity))
                pl__buf_puts(b, PL__DASH);
            else
                pl__buf_printf(b, "%.4f", k->target_sparsity);
            pl__buf_puts(b, " | ");
            if (G->achieved.n)
                pl__buf_printf(b, "%.4f", G->achieved.mean);
            else
                pl__buf_puts(b, PL__DASH);

            int bold = mark && pl__shown(G->nonzero.mean, 0) == S->best_params;
            pl__buf_puts(b, " | ");
            pl__bold_open(b, bold);
            pl__md_count(b, G->nonzero.mean);
            pl__bold_open(b, bold);

            bold = mark && pl__shown(G->macs_after.mean, 0) == S->best_macs;
            pl__buf_puts(b, " | ");
            pl__bold_open(b, bold);
            pl__md_count(b, G->macs_after.mean);
            if (G->macs_after.n && G->macs_after.mean > 0 && G->macs_before.n)
                pl__buf_printf(b, " (%.1f" PL__TIMES ")", G->macs_before.mean / G->macs_after.mean);
            pl__bold_open(b, bold);

            pl__buf_puts(b, " | ");
            pl__md_stat(b, G->acc_base, G->n, 2);
            pl__buf_puts(b, " | ");
            pl__md_stat(b, G->acc_pruned, G->n, 2);
            bold = mark && pl__shown(G->acc_final.mean, 2) == S->best_acc;
            pl__buf_puts(b, " | ");
            pl__bold_open(b, bold);
            pl__md_stat(b, G->acc_final, G->n, 2);
            pl__bold_open(b, bold);

            pl__buf_puts(b, " | ");
            if (G->lat_before.n)
                pl__buf_printf(b, "%.3f", G->lat_before.mean);
            else
                pl__buf_puts(b, PL__DASH);
            pl__buf_puts(b, " " PL__ARROW " ");
            bold = mark && pl__shown(G->lat_after.mean, 3) == S->best_lat;
            pl__bold_open(b, bold);
            if (G->lat_after.n)
                pl__buf_printf(b, "%.3f", G->lat_after.mean);
            else
                pl__buf_puts(b, PL__DASH);
            pl__bold_open(b, bold);
            pl__buf_printf(b, " | %zu |\n", G->n);
        }
    }

    if (n_ok < L->n) {
        pl__buf_puts(b, "\n## Failed or flagged runs\n\n"
                        "| run_id | sweep | status | message |\n|---|---|---|---|\n");
        for (size_t i = 0; i < L->n; i++) {
            const pl_run_result *r = L->runs[i];
            if (pl__is_ok(r))
                continue;
            pl__buf_puts(b, "| ");
            pl__md_text(b, r->run_id);
            pl__buf_puts(b, " | ");
            pl__md_text(b, r->sweep);
            pl__buf_puts(b, " | ");
            pl__md_text(b, r->status);
            pl__buf_puts(b, " | ");
            pl__md_text(b, r->message);
            pl__buf_puts(b, " |\n");
        }
    }
    if (plots)
        pl__buf_puts(b, "\n## Plots\n\n![accuracy vs sparsity](acc_vs_sparsity.svg)\n\n"
                        "![accuracy vs MACs](acc_vs_macs.svg)\n");
    pl__buf_puts(b, "\nEvery run: results.csv. Every layer of every run: layers.csv.\n");
    pl_manifest_md(b, (const pl_run_result *const *)L->runs, L->n);
}

/* ---- plots ------------------------------------------------------------------ */

static void pl__warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pl__warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("prunelab: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Absolute path of an executable found on PATH (caller frees), or NULL. */
static char *pl__which(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        pl__buf cand = {0};
        if (len)
            pl__buf_add(&cand, path, len);
        else
            pl__buf_add(&cand, ".", 1);
        pl__buf_printf(&cand, "/%s", name);
        struct stat sb;
        if (!cand.failed && stat(cand.data, &sb) == 0 && S_ISREG(sb.st_mode) &&
            access(cand.data, X_OK) == 0) {
            char *abs = realpath(cand.data, NULL);
            pl__buf_free(&cand);
            if (abs)
                return abs;
        } else {
            pl__buf_free(&cand);
        }
        path += len;
        if (*path == ':')
            path++;
    }
    return NULL;
}

static void pl__gp_quote(pl__buf *b, const char *s)
{
    pl__buf_add(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            pl__buf_add(b, "''", 2);
        else if (*p == '\n' || *p == '\r')
            pl__buf_add(b, " ", 1);
        else
            pl__buf_add(b, p, 1);
    }
    pl__buf_add(b, "'", 1);
}

typedef struct pl__point {
    double sparsity, macs, acc, sd;
} pl__point;

static int pl__point_cmp(const void *a, const void *b)
{
    const pl__point *x = a, *y = b;
    if (x->sparsity != y->sparsity)
        return x->sparsity < y->sparsity ? -1 : 1;
    return (x->macs > y->macs) - (x->macs < y->macs);
}

static int pl__same_series(const pl_run_result *a, const pl_run_result *b)
{
    return pl__same_section(a, b) && strcmp(a->criterion, b->criterion) == 0 &&
           strcmp(a->schedule, b->schedule) == 0 && strcmp(a->granularity, b->granularity) == 0;
}

/* The gnuplot script for both plots; *n_series = 0 when there is nothing to plot. */
static void pl__plot_script(pl__buf *b, const pl__layout *L, const char *out_sparsity,
                            const char *out_macs, int *n_series)
{
    int many_models = 0, many_datasets = 0, many_grans = 0;
    for (size_t g = 1; g < L->n_groups; g++) {
        const pl_run_result *a = L->groups[0].key, *c = L->groups[g].key;
        many_models |= strcmp(a->model, c->model) != 0;
        many_datasets |= strcmp(a->dataset, c->dataset) != 0;
        many_grans |= strcmp(a->granularity, c->granularity) != 0;
    }
    pl__point *pts = malloc((L->n_groups ? L->n_groups : 1) * sizeof *pts);
    pl__buf plot_s = {0}, plot_m = {0};
    *n_series = 0;
    if (!pts) {
        b->failed = 1;
        return;
    }

    pl__buf_puts(b, "set terminal svg size 800,520 dynamic noenhanced font 'sans,12' "
                    "background rgb 'white'\n"
                    "set encoding utf8\nset grid\nset key bottom left box opaque\n"
                    "set ylabel 'test accuracy after pruning (%)'\n"
                    "set bars small\nset offsets graph 0.02, graph 0.02, graph 0.02, graph 0.02\n");
    /* one data block per series: sparsity, MACs, mean accuracy, std */
    for (size_t g = 0; g < L->n_groups; g++) {
        const pl_run_result *k = L->groups[g].key;
        int seen = 0;
        for (size_t h = 0; h < g && !seen; h++)
            seen = pl__same_series(L->groups[h].key, k);
        if (seen)
            continue;
        size_t np = 0;
        for (size_t h = g; h < L->n_groups; h++) {
            const pl__group *H = &L->groups[h];
            if (!pl__same_series(H->key, k) || !H->acc_final.n || !H->achieved.n ||
                !H->macs_after.n)
                continue;
            pts[np++] = (pl__point){H->achieved.mean, H->macs_after.mean, H->acc_final.mean,
                                    H->acc_final.n > 1 ? H->acc_final.sd : 0.0};
        }
        if (!np)
            continue;
        qsort(pts, np, sizeof *pts, pl__point_cmp);
        pl__buf_printf(b, "$s%d << EOD\n", *n_series);
        for (size_t i = 0; i < np; i++)
            pl__buf_printf(b, "%.6g %.6g %.6g %.6g\n", pts[i].sparsity, pts[i].macs, pts[i].acc,
                           pts[i].sd);
        pl__buf_puts(b, "EOD\n");

        pl__buf label = {0};
        pl__buf_printf(&label, "%s / %s", k->criterion, k->schedule[0] ? k->schedule : "-");
        if (many_grans)
            pl__buf_printf(&label, " / %s", k->granularity);
        if (many_models)
            pl__buf_printf(&label, " (%s)", k->model);
        if (many_datasets)
            pl__buf_printf(&label, " [%s]", k->dataset);
        for (int w = 0; w < 2; w++) {
            pl__buf *p = w ? &plot_m : &plot_s;
            pl__buf_printf(p, "%s$s%d using %d:3:4 with yerrorlines lw 2 pt 7 title ",
                           p->len ? ", \\\n     " : "plot ", *n_series, w ? 2 : 1);
            pl__gp_quote(p, label.failed ? "" : label.data);
        }
        pl__buf_free(&label);
        (*n_series)++;
    }
    /* the dense models, one point each */
    for (size_t s = 0; s < L->n_sections && *n_series; s++) {
        const pl__section *S = &L->sections[s];
        if (!S->acc.n || !S->macs.n)
            continue;
        pl__buf_printf(b, "$d%zu << EOD\n0 %.6g %.6g %.6g\nEOD\n", s, S->macs.mean, S->acc.mean,
                       S->acc.n > 1 ? S->acc.sd : 0.0);
        pl__buf label = {0};
        pl__buf_puts(&label, "dense");
        if (many_models || L->n_sections > 1)
            pl__buf_printf(&label, " %s", S->key->model);
        if (many_datasets)
            pl__buf_printf(&label, " [%s]", S->key->dataset);
        for (int w = 0; w < 2; w++) {
            pl__buf *p = w ? &plot_m : &plot_s;
            pl__buf_printf(p, ", \\\n     $d%zu using %d:3:4 with yerrorbars pt 5 ps 1.2 title ", s,
                           w ? 2 : 1);
            pl__gp_quote(p, label.failed ? "" : label.data);
        }
        pl__buf_free(&label);
    }
    const char *title = L->n ? L->runs[0]->experiment : "";
    if (*n_series) {
        pl__buf_puts(b, "set output ");
        pl__gp_quote(b, out_sparsity);
        pl__buf_puts(b, "\nset title ");
        pl__gp_quote(b, title);
        pl__buf_puts(b, "\nset xlabel 'achieved sparsity'\n");
        pl__buf_add(b, plot_s.data, plot_s.len);
        pl__buf_puts(b, "\nset output ");
        pl__gp_quote(b, out_macs);
        pl__buf_puts(b, "\nset xlabel 'MACs per image (surviving weights)'\nset format x '%.0s%c'\n");
        pl__buf_add(b, plot_m.data, plot_m.len);
        pl__buf_puts(b, "\nunset output\n");
    }
    if (plot_s.failed || plot_m.failed)
        b->failed = 1;
    pl__buf_free(&plot_s);
    pl__buf_free(&plot_m);
    free(pts);
}

/* last non-empty line of a small log file, for a one-line warning */
static void pl__last_line(const char *path, char *out, size_t cap)
{
    char *text;
    out[0] = '\0';
    pl_error ignored;
    if (pl__read_file(path, &text, NULL, &ignored))
        return;
    char *line = NULL;
    for (char *p = strtok(text, "\r\n"); p; p = strtok(NULL, "\r\n")) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p)
            line = p;
    }
    if (line)
        snprintf(out, cap, "%s", line);
    free(text);
}

/* Runs gnuplot on `script` inside dir; 0 on success, else fills why. */
static int pl__gnuplot_run(const char *gnuplot, const char *dir, const char *script,
                           const char *log, char *why, size_t cap)
{
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, cap, "cannot start gnuplot: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(126);
        int in = open("/dev/null", O_RDONLY);
        int lg = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (in < 0 || lg < 0)
            _exit(126);
        dup2(in, 0);
        dup2(lg, 1);
        dup2(lg, 2);
        char *const argv[] = {(char *)"gnuplot", (char *)script, NULL};
        execv(gnuplot, argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(why, cap, "waiting for gnuplot: %s", strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    char last[200];
    pl__buf logpath = {0};
    pl__buf_printf(&logpath, "%s/%s", dir, log);
    pl__last_line(logpath.failed ? "" : logpath.data, last, sizeof last);
    pl__buf_free(&logpath);
    if (WIFSIGNALED(status))
        snprintf(why, cap, "gnuplot was killed by signal %d", WTERMSIG(status));
    else if (last[0])
        snprintf(why, cap, "gnuplot failed: %s", last);
    else
        snprintf(why, cap, "gnuplot exited with status %d", WEXITSTATUS(status));
    return -1;
}

/* Writes acc_vs_sparsity.svg and acc_vs_macs.svg; returns 1 when both
 * exist afterwards. Every failure is a warning, never an error. */
static int pl__plots_write(const char *dir, const pl__layout *L)
{
    char *gnuplot = pl__which("gnuplot");
    if (!gnuplot) {
        pl__warn("gnuplot not found; skipping plots (apt-get install gnuplot-nox)");
        return 0;
    }
    static const char *const finals[2] = {"acc_vs_sparsity.svg", "acc_vs_macs.svg"};
    long pid = (long)getpid();
    char outs[2][64], script[64], log[64], why[300];
    for (int i = 0; i < 2; i++)
        snprintf(outs[i], sizeof outs[i], "%s.tmp.%ld", finals[i], pid);
    snprintf(script, sizeof script, "plots.gp.tmp.%ld", pid);
    snprintf(log, sizeof log, "plots.log.tmp.%ld", pid);

    pl__buf text = {0}, paths[4] = {{0}};
    int n_series = 0, made = 0;
    pl__plot_script(&text, L, outs[0], outs[1], &n_series);
    pl__buf_printf(&paths[0], "%s/%s", dir, script);
    pl__buf_printf(&paths[1], "%s/%s", dir, log);
    pl__buf_printf(&paths[2], "%s/%s", dir, outs[0]);
    pl__buf_printf(&paths[3], "%s/%s", dir, outs[1]);
    int oom = text.failed;
    for (int i = 0; i < 4; i++)
        oom |= paths[i].failed;
    if (oom) {
        pl__warn("plots: out of memory; skipping plots");
    } else if (n_series == 0) {
        /* nothing pruned finished: no curve to draw */
    } else {
        FILE *f = fopen(paths[0].data, "wb");
        pl_error e;
        if (!f) {
            pl__io_error(&e, paths[0].data, errno);
            pl__warn("plots: %s; skipping plots", e.msg);
        } else if (pl_write_stream(f, paths[0].data, text.data, text.len, &e) != PL_OK) {
            fclose(f);
            pl__warn("plots: %s; skipping plots", e.msg);
        } else if (fclose(f), pl__gnuplot_run(gnuplot, dir, script, log, why, sizeof why) != 0) {
            pl__warn("plots: %s; skipping plots", why);
        } else {
            made = 1;
            for (int i = 0; i < 2 && made; i++) {
                struct stat sb;
                pl__buf fin = {0};
                pl__buf_printf(&fin, "%s/%s", dir, finals[i]);
                if (stat(paths[2 + i].data, &sb) != 0 || sb.st_size == 0) {
                    pl__warn("plots: gnuplot wrote no %s; skipping plots", finals[i]);
                    made = 0;
                } else if (fin.failed || rename(paths[2 + i].data, fin.data) != 0) {
                    pl__io_error(&e, fin.failed ? finals[i] : fin.data, errno);
                    pl__warn("plots: %s; skipping plots", e.msg);
                    made = 0;
                }
                pl__buf_free(&fin);
            }
        }
    }
    for (int i = 0; i < 4; i++) {
        if (!paths[i].failed && paths[i].data)
            unlink(paths[i].data);
        pl__buf_free(&paths[i]);
    }
    pl__buf_free(&text);
    free(gnuplot);
    return made;
}

/* ---- entry point -------------------------------------------------------------- */

static pl_status pl__write_named(const char *dir, const char *name, const pl__buf *b,
                                 pl_error *err)
{
    if (b->failed)
        return pl_error_set(err, PL_ENOMEM, "%s/%s: out of memory", dir, name);
    pl__buf path = {0};
    pl__buf_printf(&path, "%s/%s", dir, name);
    pl_status st = path.failed ? pl_error_set(err, PL_ENOMEM, "%s/%s: out of memory", dir, name)
                               : pl_write_atomic(path.data, b->data ? b->data : "", b->len, err);
    pl__buf_free(&path);
    return st;
}

pl_status pl_report_write(const char *dir, const pl_run_result *runs, size_t n, int plots,
                          pl_error *err)
{
    pl_status st = pl_mkdirs(dir, err);
    if (st)
        return st;
    const pl_run_result **order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return pl_error_set(err, PL_ENOMEM, "report: out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = &runs[i];
    qsort(order, n, sizeof *order, pl__run_ptr_cmp);

    pl__layout L;
    if ((st = pl__layout_build(&L, order, n, err))) {
        free(order);
        return st;
    }
    pl__buf b = {0};
    pl__csv_results(&b, order, n);
    st = pl__write_named(dir, "results.csv", &b, err);
    if (st == PL_OK) {
        b.len = 0;
        pl__csv_layers(&b, order, n);
        st = pl__write_named(dir, "layers.csv", &b, err);
    }
    if (st == PL_OK) {
        int made = plots ? pl__plots_write(dir, &L) : 0;
        b.len = 0;
        pl__md_results(&b, &L, made);
        st = pl__write_named(dir, "results.md", &b, err);
    }
    pl__buf_free(&b);
    pl__layout_free(&L);
    free(order);
    return st;
}
