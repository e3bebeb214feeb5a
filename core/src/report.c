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
#include "history.h"
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
#define PL__DELTA "\xce\x94"     /* Δ */

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

/* ---- the paper table (results.md and results.tex) ----------------------------
 *
 * One row per dense model and per pruned configuration, the same cells in
 * Markdown and in LaTeX (booktabs). Compression ratio and theoretical
 * speed-up follow Blalock et al. 2020 ("What is the state of neural network
 * pruning?"): original parameters / remaining (nonzero) parameters, and
 * original multiply-accumulates / remaining ones; they are the params and
 * MACs reduction ratios. Δacc is acc_final − acc_baseline of each run (the
 * same seed's baseline), averaged over the seeds. A value is bold only when
 * it beats the runner-up configuration of its model by more than the seed
 * spread (the larger of the two standard deviations), so a bold cell is a
 * difference the seeds support. */

typedef struct pl__cell {
    pl__buf md, tex;
    int bold;
} pl__cell;

enum { PL__C_MAX = 20 };

typedef struct pl__table {
    size_t n_cols, n_rows, cap;
    const char *md_head[PL__C_MAX], *tex_head[PL__C_MAX];
    char align[PL__C_MAX]; /* 'l' or 'r' */
    pl__cell *cells;       /* n_rows x n_cols */
    size_t *section_end;   /* rows after which a section ends (tex \midrule) */
    int failed;
} pl__table;

static pl__cell *pl__tcell(pl__table *T, size_t row, size_t col) { return &T->cells[row * T->n_cols + col]; }

static void pl__tex_text(pl__buf *b, const char *s)
{
    if (!*s) {
        pl__buf_puts(b, "---");
        return;
    }
    for (const char *p = s; *p; p++) {
        if (strchr("&%$#_{}", *p))
            pl__buf_printf(b, "\\%c", *p);
        else if (*p == '~')
            pl__buf_puts(b, "\\textasciitilde{}");
        else if (*p == '^')
            pl__buf_puts(b, "\\textasciicircum{}");
        else if (*p == '\\')
            pl__buf_puts(b, "\\textbackslash{}");
        else if (*p == '\n' || *p == '\r')
            pl__buf_add(b, " ", 1);
        else
            pl__buf_add(b, p, 1);
    }
}

static void pl__c_text(pl__cell *c, const char *s)
{
    pl__md_text(&c->md, s);
    pl__tex_text(&c->tex, s);
}

static void pl__c_dash(pl__cell *c)
{
    pl__buf_puts(&c->md, PL__DASH);
    pl__buf_puts(&c->tex, "---");
}

static void pl__c_count(pl__cell *c, double v)
{
    pl__md_count(&c->md, v);
    pl__buf tmp = {0};
    pl__md_count(&tmp, v);
    for (size_t i = 0; !tmp.failed && i < tmp.len; i++) {
        if (tmp.data[i] == ',')
            pl__buf_puts(&c->tex, "{,}");
        else if (!strncmp(tmp.data + i, PL__DASH, 3)) {
            pl__buf_puts(&c->tex, "---");
            i += 2;
        } else
            pl__buf_add(&c->tex, &tmp.data[i], 1);
    }
    pl__buf_free(&tmp);
}

static void pl__c_num(pl__cell *c, double v, int decimals, const char *suffix_md, const char *suffix_tex)
{
    if (isnan(v) || isinf(v)) {
        pl__c_dash(c);
        return;
    }
    pl__buf_printf(&c->md, "%.*f%s", decimals, v, suffix_md);
    pl__buf_printf(&c->tex, "%.*f%s", decimals, v, suffix_tex);
}

static void pl__c_stat(pl__cell *c, pl__stat s, size_t group_n, int decimals, int sign)
{
    if (!s.n) {
        pl__c_dash(c);
        return;
    }
    const char *fmt = sign ? "%+.*f" : "%.*f";
    pl__buf_printf(&c->md, fmt, decimals, s.mean);
    pl__buf_puts(&c->tex, "$");
    pl__buf_printf(&c->tex, fmt, decimals, s.mean);
    if (s.n > 1) {
        pl__buf_printf(&c->md, " " PL__PM " %.*f", decimals, s.sd);
        pl__buf_printf(&c->tex, " \\pm %.*f", decimals, s.sd);
    }
    pl__buf_puts(&c->tex, "$");
    if (s.n < group_n) {
        pl__buf_printf(&c->md, " (n=%zu)", s.n);
        pl__buf_printf(&c->tex, " (n=%zu)", s.n);
    }
}

/* "configs/models/simple_cnn.yaml" -> "simple_cnn" */
static void pl__model_short(const char *model, char *out, size_t cap)
{
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".yaml"))
        n -= 5;
    else if (n > 4 && !strcmp(base + n - 4, ".yml"))
        n -= 4;
    snprintf(out, cap, "%.*s", (int)n, base);
}

typedef double (*pl__run_fn)(const pl_run_result *r);
static double pl__f_compression(const pl_run_result *r)
{
    return r->nonzero_params_after > 0 ? (double)r->params_before / (double)r->nonzero_params_after : NAN;
}
static double pl__f_speedup(const pl_run_result *r)
{
    return r->macs_after > 0 ? (double)r->macs_before / (double)r->macs_after : NAN;
}
static double pl__f_delta(const pl_run_result *r) { return r->acc_final - r->acc_baseline; }

/* mean and sample std of fn over the runs of group g */
static pl__stat pl__stat_fn(const pl__layout *L, int g, pl__run_fn fn)
{
    pl__stat s = {NAN, NAN, 0};
    double sum = 0, ss = 0;
    for (size_t i = 0; i < L->n; i++) {
        double v = L->group[i] == g ? fn(L->runs[i]) : NAN;
        if (!isnan(v)) {
            sum += v;
            s.n++;
        }
    }
    if (!s.n)
        return s;
    s.mean = sum / (double)s.n;
    for (size_t i = 0; i < L->n; i++) {
        double v = L->group[i] == g ? fn(L->runs[i]) : NAN;
        if (!isnan(v))
            ss += (v - s.mean) * (v - s.mean);
    }
    s.sd = s.n > 1 ? sqrt(ss / (double)(s.n - 1)) : NAN;
    return s;
}

/* Marks the best of stats[0..n) (higher or lower is better) when it beats
 * the runner-up by more than the larger standard deviation; values are
 * compared as displayed (`decimals`). */
static void pl__mark_best(const pl__stat *st, size_t n, int higher, int decimals, int *bold)
{
    size_t best = SIZE_MAX, second = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        bold[i] = 0;
        if (!st[i].n || isnan(st[i].mean))
            continue;
        double v = pl__shown(st[i].mean, decimals);
        if (best == SIZE_MAX || (higher ? v > pl__shown(st[best].mean, decimals)
                                        : v < pl__shown(st[best].mean, decimals))) {
            second = best;
            best = i;
        } else if (second == SIZE_MAX || (higher ? v > pl__shown(st[second].mean, decimals)
                                                 : v < pl__shown(st[second].mean, decimals))) {
            second = i;
        }
    }
    if (best == SIZE_MAX || second == SIZE_MAX)
        return;
    double gap = fabs(pl__shown(st[best].mean, decimals) - pl__shown(st[second].mean, decimals));
    double sb = st[best].n > 1 && !isnan(st[best].sd) ? st[best].sd : 0;
    double s2 = st[second].n > 1 && !isnan(st[second].sd) ? st[second].sd : 0;
    if (gap > (sb > s2 ? sb : s2) && gap > 0)
        bold[best] = 1;
}

static void pl__table_free(pl__table *T)
{
    for (size_t i = 0; T->cells && i < T->n_rows * T->n_cols; i++) {
        pl__buf_free(&T->cells[i].md);
        pl__buf_free(&T->cells[i].tex);
    }
    free(T->cells);
    free(T->section_end);
}

static pl__cell *pl__table_row(pl__table *T)
{
    if (T->n_rows == T->cap) {
        size_t ncap = T->cap ? T->cap * 2 : 16;
        pl__cell *nc = realloc(T->cells, ncap * T->n_cols * sizeof *nc);
        if (!nc) {
            T->failed = 1;
            return NULL;
        }
        memset(nc + T->cap * T->n_cols, 0, (ncap - T->cap) * T->n_cols * sizeof *nc);
        T->cells = nc;
        T->cap = ncap;
    }
    return pl__tcell(T, T->n_rows++, 0);
}

static void pl__col(pl__table *T, const char *md, const char *tex, char align)
{
    T->md_head[T->n_cols] = md;
    T->tex_head[T->n_cols] = tex;
    T->align[T->n_cols++] = align;
}

/* Fills T with the table of L (ok runs only). */
static void pl__table_build(pl__table *T, const pl__layout *L)
{
    memset(T, 0, sizeof *T);
    pl__col(T, "model", "Model", 'l');
    if (L->dataset_col)
        pl__col(T, "dataset", "Dataset", 'l');
    pl__col(T, "criterion", "Criterion", 'l');
    pl__col(T, "schedule", "Schedule", 'l');
    pl__col(T, "granularity", "Gran.", 'l');
    if (L->sweep_col)
        pl__col(T, "sweep", "Sweep", 'l');
    size_t c_num = T->n_cols;
    pl__col(T, "target", "Target", 'r');
    pl__col(T, "achieved", "Achieved", 'r');
    pl__col(T, "params", "Params", 'r');
    pl__col(T, "compression", "Compr.", 'r');
    pl__col(T, "MACs", "MACs", 'r');
    pl__col(T, "speed-up", "Speed-up", 'r');
    pl__col(T, "acc baseline", "Acc.\\ base", 'r');
    pl__col(T, "acc pruned", "Acc.\\ pruned", 'r');
    pl__col(T, "acc final", "Acc.\\ final", 'r');
    pl__col(T, PL__DELTA "acc", "$\\Delta$Acc.", 'r');
    pl__col(T, "latency ms before " PL__ARROW " after", "Latency (ms)", 'r');
    pl__col(T, "seeds (n)", "$n$", 'r');
    T->section_end = calloc(L->n_sections + 1, sizeof *T->section_end);
    int *bold = malloc(5 * (L->n_groups ? L->n_groups : 1) * sizeof *bold);
    pl__stat *st = malloc(5 * (L->n_groups ? L->n_groups : 1) * sizeof *st);
    if (!T->section_end || !bold || !st) {
        T->failed = 1;
        free(bold);
        free(st);
        return;
    }
    char model[256];
    for (size_t s = 0; s < L->n_sections; s++) {
        const pl__section *S = &L->sections[s];
        pl__model_short(S->key->model, model, sizeof model);
        pl__cell *c = pl__table_row(T);
        if (!c)
            break;
        size_t k = 0;
        pl__c_text(&c[k++], model);
        if (L->dataset_col)
            pl__c_text(&c[k++], S->key->dataset);
        pl__c_text(&c[k++], "dense baseline");
        pl__c_dash(&c[k++]);
        pl__c_dash(&c[k++]);
        if (L->sweep_col)
            pl__c_dash(&c[k++]);
        pl__c_dash(&c[k++]);
        pl__c_dash(&c[k++]);
        pl__c_count(&c[k++], S->params.mean);
        pl__c_num(&c[k++], 1.0, 1, PL__TIMES, "$\\times$");
        pl__c_count(&c[k++], S->macs.mean);
        pl__c_num(&c[k++], 1.0, 1, PL__TIMES, "$\\times$");
        pl__c_stat(&c[k++], S->acc, S->n_base, 2, 0);
        pl__c_dash(&c[k++]);
        pl__c_dash(&c[k++]);
        pl__c_dash(&c[k++]);
        pl__c_num(&c[k++], S->lat.n ? S->lat.mean : NAN, 3, "", "");
        pl__buf_printf(&c[k].md, "%zu", S->n_base);
        pl__buf_printf(&c[k++].tex, "%zu", S->n_base);

        /* the section's groups and their bold cells */
        size_t ng = 0;
        int gid[1024];
        for (size_t g = 0; g < L->n_groups && ng < 1024; g++)
            if (L->groups[g].section == (int)s)
                gid[ng++] = (int)g;
        for (size_t i = 0; i < ng; i++) {
            st[0 * ng + i] = pl__stat_fn(L, gid[i], pl__f_compression);
            st[1 * ng + i] = pl__stat_fn(L, gid[i], pl__f_speedup);
            st[2 * ng + i] = L->groups[gid[i]].acc_final;
            st[3 * ng + i] = pl__stat_fn(L, gid[i], pl__f_delta);
            st[4 * ng + i] = L->groups[gid[i]].lat_after;
        }
        static const int higher[5] = {1, 1, 1, 1, 0}, decs[5] = {1, 1, 2, 2, 3};
        for (int col = 0; col < 5; col++)
            pl__mark_best(&st[col * ng], ng, higher[col], decs[col], &bold[col * ng]);
        for (size_t i = 0; i < ng; i++) {
            const pl__group *G = &L->groups[gid[i]];
            const pl_run_result *key = G->key;
            if (!(c = pl__table_row(T)))
                break;
            k = 0;
            pl__c_text(&c[k++], model);
            if (L->dataset_col)
                pl__c_text(&c[k++], key->dataset);
            pl__c_text(&c[k++], key->criterion);
            pl__c_text(&c[k++], key->schedule);
            pl__c_text(&c[k++], key->granularity);
            if (L->sweep_col) {
                char sweep[sizeof key->sweep];
                pl__sweep_sans_seed(key->sweep, sweep, sizeof sweep);
                pl__c_text(&c[k++], sweep);
            }
            pl__c_num(&c[k++], key->target_sparsity, 4, "", "");
            pl__c_num(&c[k++], G->achieved.n ? G->achieved.mean : NAN, 4, "", "");
            pl__c_count(&c[k++], G->nonzero.mean);
            c[k].bold = bold[0 * ng + i];
            pl__c_num(&c[k++], st[0 * ng + i].n ? st[0 * ng + i].mean : NAN, 1, PL__TIMES, "$\\times$");
            pl__c_count(&c[k++], G->macs_after.mean);
            c[k].bold = bold[1 * ng + i];
            pl__c_num(&c[k++], st[1 * ng + i].n ? st[1 * ng + i].mean : NAN, 1, PL__TIMES, "$\\times$");
            pl__c_stat(&c[k++], G->acc_base, G->n, 2, 0);
            pl__c_stat(&c[k++], G->acc_pruned, G->n, 2, 0);
            c[k].bold = bold[2 * ng + i];
            pl__c_stat(&c[k++], G->acc_final, G->n, 2, 0);
            c[k].bold = bold[3 * ng + i];
            pl__c_stat(&c[k++], st[3 * ng + i], G->n, 2, 1);
            c[k].bold = bold[4 * ng + i];
            if (G->lat_before.n && G->lat_after.n) {
                pl__buf_printf(&c[k].md, "%.3f " PL__ARROW " %.3f", G->lat_before.mean, G->lat_after.mean);
                pl__buf_printf(&c[k].tex, "%.3f $\\to$ %.3f", G->lat_before.mean, G->lat_after.mean);
                k++;
            } else {
                pl__c_dash(&c[k++]);
            }
            pl__buf_printf(&c[k].md, "%zu", G->n);
            pl__buf_printf(&c[k++].tex, "%zu", G->n);
        }
        T->section_end[s] = T->n_rows;
    }
    (void)c_num;
    for (size_t i = 0; T->cells && i < T->n_rows * T->n_cols; i++)
        if (T->cells[i].md.failed || T->cells[i].tex.failed)
            T->failed = 1;
    free(bold);
    free(st);
}

static void pl__table_md(pl__buf *b, const pl__table *T)
{
    for (size_t j = 0; j < T->n_cols; j++)
        pl__buf_printf(b, "%s %s", j ? " |" : "|", T->md_head[j]);
    pl__buf_puts(b, " |\n");
    for (size_t j = 0; j < T->n_cols; j++)
        pl__buf_puts(b, T->align[j] == 'r' ? "|--:" : "|---");
    pl__buf_puts(b, "|\n");
    for (size_t r = 0; r < T->n_rows; r++) {
        for (size_t j = 0; j < T->n_cols; j++) {
            const pl__cell *c = &T->cells[r * T->n_cols + j];
            pl__buf_puts(b, j ? " | " : "| ");
            pl__bold_open(b, c->bold);
            pl__buf_add(b, c->md.data ? c->md.data : "", c->md.len);
            pl__bold_open(b, c->bold);
        }
        pl__buf_puts(b, " |\n");
    }
}

static void pl__table_tex(pl__buf *b, const pl__table *T, const char *experiment)
{
    pl__buf_puts(b, "% prunelab results table; needs \\usepackage{booktabs}. Mean $\\pm$ sample std over seeds.\n"
                    "\\begin{table}[t]\n\\centering\n\\small\n\\caption{");
    pl__tex_text(b, experiment);
    pl__buf_puts(b, ": accuracy (test \\%), parameters and MACs per image after pruning. Compression "
                    "and speed-up as defined by Blalock et al.\\ (2020); $\\Delta$Acc.\\ is final minus "
                    "baseline accuracy of the same seed. Bold: beats the runner-up by more than the "
                    "seed spread.}\n\\begin{tabular}{");
    for (size_t j = 0; j < T->n_cols; j++)
        pl__buf_add(b, &T->align[j], 1);
    pl__buf_puts(b, "}\n\\toprule\n");
    for (size_t j = 0; j < T->n_cols; j++)
        pl__buf_printf(b, "%s%s", j ? " & " : "", T->tex_head[j]);
    pl__buf_puts(b, " \\\\\n\\midrule\n");
    size_t s = 0;
    for (size_t r = 0; r < T->n_rows; r++) {
        for (size_t j = 0; j < T->n_cols; j++) {
            const pl__cell *c = &T->cells[r * T->n_cols + j];
            pl__buf_puts(b, j ? " & " : "");
            if (c->bold) /* \boldmath: the cells hold math ($\pm$) */
                pl__buf_puts(b, "{\\boldmath\\bfseries ");
            pl__buf_add(b, c->tex.data ? c->tex.data : "", c->tex.len);
            if (c->bold)
                pl__buf_puts(b, "}");
        }
        pl__buf_puts(b, " \\\\\n");
        if (T->section_end && r + 1 == T->section_end[s] && r + 1 < T->n_rows) {
            pl__buf_puts(b, "\\midrule\n");
            s++;
        }
    }
    pl__buf_puts(b, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
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
                 "Params: nonzero parameters after pruning. MACs: per image, after pruning only "
                 "surviving weights count. Compression and speed-up as defined by Blalock et al. "
                 "2020: original / remaining parameters, and original / remaining MACs "
                 "(theoretical speed-up). " PL__DELTA "acc: final minus baseline accuracy of the "
                 "same seed. Latency: ms per 1,000 images. **Bold**: the best pruned "
                 "configuration of a model in that column, shown only where it beats the "
                 "runner-up by more than the seed spread (the larger standard deviation of the "
                 "two).");
    if (n_ok < L->n)
        pl__buf_puts(b, " Runs whose status is not ok are left out and listed below.");
    pl__buf_puts(b, "\n\n");

    pl__table T;
    pl__table_build(&T, L);
    if (T.failed)
        b->failed = 1;
    else
        pl__table_md(b, &T);
    pl__table_free(&T);

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
    if (plots & 1)
        pl__buf_puts(b, "\n## Plots\n\n![accuracy vs sparsity](acc_vs_sparsity.svg)\n\n"
                        "![accuracy vs MACs](acc_vs_macs.svg)\n");
    if (plots & 2) /* the history of the runs at each series' highest sparsity */
        pl__buf_puts(b, "\n![test accuracy during training](training_curves.svg)\n");
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

/* Every series gets its own colour AND marker (colour-blind safe palettes,
 * Okabe & Ito then Tol's; filled markers first; the open square is the
 * dense model's), so the 12 series of 4 criteria x 3 schedules differ in
 * both, and up to 14 series do. */
#define PL__N_STYLES 14
static const char *const pl__colors[PL__N_STYLES] = {
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255",
    "#999933", "#332288", "#44AA99", "#AA4499", "#117733", "#661100", "#6699CC"};
static const int pl__markers[PL__N_STYLES] = {7, 5, 9, 11, 13, 15, 1, 2, 3, 6, 8, 10, 12, 14};
static const char *const pl__dense_colors[] = {"#000000", "#666666", "#8B4513", "#2F4F4F"};

/* "20k", "1.5M": a count as an axis label */
static void pl__count_label(char *buf, size_t cap, double v)
{
    if (v >= 1e9)
        snprintf(buf, cap, "%gG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, cap, "%gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, cap, "%gk", v / 1e3);
    else
        snprintf(buf, cap, "%g", v);
}

/* Explicit tick marks for a log axis over [lo, hi]: 1-2-5 per decade, or a
 * finer 1-1.5-2-3-4-5-6-8 when that gives fewer than 3 ticks. Labels are
 * written out here, so two ticks never print the same text. */
static void pl__log_tics(pl__buf *b, double lo, double hi)
{
    static const double coarse[] = {1, 2, 5}, fine[] = {1, 1.5, 2, 3, 4, 5, 6, 8};
    if (!(lo > 0) || !isfinite(hi) || hi < lo) /* nothing sensible to mark: gnuplot's own */
        return;
    const double *mant[2] = {coarse, fine};
    size_t n_mant[2] = {3, 8};
    for (int pass = 0; pass < 2; pass++) {
        double v[64];
        size_t nv = 0;
        for (int k = (int)floor(log10(lo)) - 1; k <= (int)ceil(log10(hi)) && nv < 64; k++)
            for (size_t m = 0; m < n_mant[pass] && nv < 64; m++) {
                double t = mant[pass][m] * pow(10, k);
                if (t >= lo && t <= hi)
                    v[nv++] = t;
            }
        if (nv < 3 && pass == 0)
            continue;
        pl__buf_puts(b, "set xtics (");
        for (size_t i = 0; i < nv; i++) {
            char lab[32];
            pl__count_label(lab, sizeof lab, v[i]);
            pl__buf_printf(b, "%s'%s' %.10g", i ? ", " : "", lab, v[i]);
        }
        pl__buf_puts(b, ")\n");
        return;
    }
}

/* Per section: the dense baseline as a horizontal line with its +-1 sd
 * band (objects/arrows numbered from 100), for the plot being set up. */
static void pl__dense_decor(pl__buf *b, const pl__layout *L)
{
    for (size_t s = 0; s < L->n_sections; s++) {
        const pl__section *S = &L->sections[s];
        if (!S->acc.n)
            continue;
        const char *c = pl__dense_colors[s % 4];
        double sd = S->acc.n > 1 ? S->acc.sd : 0.0;
        if (sd > 0)
            pl__buf_printf(b,
                           "set object %zu rect from graph 0, first %.6g to graph 1, first %.6g "
                           "fc rgb '%s' fs transparent solid 0.12 noborder behind\n",
                           100 + s, S->acc.mean - sd, S->acc.mean + sd, c);
        pl__buf_printf(b, "set arrow %zu from graph 0, first %.6g to graph 1, first %.6g nohead "
                          "lc rgb '%s' lw 1.5 dt 2 back\n",
                       100 + s, S->acc.mean, S->acc.mean, c);
    }
}

/* The legend entries of the dense lines (the lines themselves are arrows). */
static void pl__dense_keys(pl__buf *p, const pl__layout *L, int many)
{
    for (size_t s = 0; s < L->n_sections; s++) {
        const pl__section *S = &L->sections[s];
        if (!S->acc.n)
            continue;
        pl__buf label = {0};
        pl__buf_puts(&label, "dense");
        if (many)
            pl__buf_printf(&label, " %s", S->key->model);
        if (S->acc.n > 1)
            pl__buf_printf(&label, ": %.2f " PL__PM " %.2f", S->acc.mean, S->acc.sd);
        else
            pl__buf_printf(&label, ": %.2f", S->acc.mean);
        pl__buf_printf(p, ", \\\n     NaN with lines lc rgb '%s' lw 1.5 dt 2 title ",
                       pl__dense_colors[s % 4]);
        pl__gp_quote(p, label.failed ? "" : label.data);
        pl__buf_free(&label);
    }
}

/* history: x = training epochs so far for each row of a run's history (a
 * prune row sits at the epoch it follows, so the drop is vertical) */
static double pl__history_x(const pl_run_result *r, size_t k)
{
    double x = 0;
    for (size_t i = 0; i <= k && i < r->n_history; i++)
        x += strcmp(r->history[i].phase, "prune") != 0;
    return x;
}

/* The gnuplot script for the plots: accuracy vs sparsity and vs MACs and
 * the training curves, each as SVG and PNG (outs[0..5]: sparsity.svg,
 * macs.svg, curves.svg, then the .png of each). *n_series = 0 when there
 * is nothing to plot; *curves = 0 when no run has a history. */
static void pl__plot_script(pl__buf *b, const pl__layout *L, char outs[6][64], int *n_series,
                            int *curves)
{
    int many_models = 0, many_datasets = 0, many_grans = 0;
    for (size_t g = 1; g < L->n_groups; g++) {
        const pl_run_result *a = L->groups[0].key, *c = L->groups[g].key;
        many_models |= strcmp(a->model, c->model) != 0;
        many_datasets |= strcmp(a->dataset, c->dataset) != 0;
        many_grans |= strcmp(a->granularity, c->granularity) != 0;
    }
    pl__point *pts = malloc((L->n_groups ? L->n_groups : 1) * sizeof *pts);
    pl__buf plot_s = {0}, plot_m = {0}, plot_h = {0};
    *n_series = 0;
    *curves = 0;
    if (!pts) {
        b->failed = 1;
        return;
    }
    double mac_lo = INFINITY, mac_hi = 0, sp_hi = 0;
    size_t seeds = 0, n_total = 0;
    for (size_t g = 0; g < L->n_groups; g++) {
        int seen = 0;
        for (size_t h = 0; h < g && !seen; h++)
            seen = pl__same_series(L->groups[h].key, L->groups[g].key);
        n_total += !seen;
    }
    for (size_t g = 0; g < L->n_groups; g++)
        seeds = L->groups[g].n > seeds ? L->groups[g].n : seeds;

    /* one data block per series: sparsity, MACs, mean accuracy, std */
    for (size_t g = 0; g < L->n_groups; g++) {
        const pl_run_result *k = L->groups[g].key;
        int seen = 0;
        for (size_t h = 0; h < g && !seen; h++)
            seen = pl__same_series(L->groups[h].key, k);
        if (seen)
            continue;
        size_t np = 0, top = g; /* top: the series' group of highest target sparsity */
        for (size_t h = g; h < L->n_groups; h++) {
            const pl__group *H = &L->groups[h];
            if (!pl__same_series(H->key, k))
                continue;
            if (H->key->target_sparsity > L->groups[top].key->target_sparsity)
                top = h;
            if (!H->acc_final.n || !H->achieved.n || !H->macs_after.n)
                continue;
            pts[np++] = (pl__point){H->achieved.mean, H->macs_after.mean, H->acc_final.mean,
                                    H->acc_final.n > 1 ? H->acc_final.sd : 0.0};
        }
        if (!np)
            continue;
        qsort(pts, np, sizeof *pts, pl__point_cmp);
        /* series at one x are dodged sideways (0.4 % of the axis per series:
         * sparsity +-, MACs x/÷) so every error bar stays visible; columns
         * 5 and 6 hold the dodged x */
        double dodge = n_total > 1 ? ((double)*n_series - (double)(n_total - 1) / 2.0) * 0.004 : 0;
        pl__buf_printf(b, "$s%d << EOD\n", *n_series);
        for (size_t i = 0; i < np; i++) {
            pl__buf_printf(b, "%.6g %.6g %.6g %.6g %.6g %.6g\n", pts[i].sparsity, pts[i].macs, pts[i].acc,
                           pts[i].sd, pts[i].sparsity + dodge, pts[i].macs * pow(10, dodge));
            mac_lo = fmin(mac_lo, pts[i].macs);
            mac_hi = fmax(mac_hi, pts[i].macs);
            sp_hi = fmax(sp_hi, pts[i].sparsity);
        }
        pl__buf_puts(b, "EOD\n");

        pl__buf label = {0};
        pl__buf_printf(&label, "%s / %s", k->criterion, k->schedule[0] ? k->schedule : "-");
        if (many_grans)
            pl__buf_printf(&label, " / %s", k->granularity);
        if (many_models)
            pl__buf_printf(&label, " (%s)", k->model);
        if (many_datasets)
            pl__buf_printf(&label, " [%s]", k->dataset);
        const char *color = pl__colors[*n_series % PL__N_STYLES];
        int marker = pl__markers[*n_series % PL__N_STYLES];
        for (int w = 0; w < 2; w++) {
            pl__buf *p = w ? &plot_m : &plot_s;
            pl__buf_printf(p,
                           "%s$s%d using %d:3:4 with yerrorlines lw 1.5 lc rgb '%s' pt %d ps 1.1 "
                           "title ",
                           p->len ? ", \\\n     " : "plot ", *n_series, w ? 6 : 5, color, marker);
            pl__gp_quote(p, label.failed ? "" : label.data);
        }

        /* training curve of the series at its highest target sparsity: mean
         * test accuracy over the seeds, row by row of the history */
        const pl_run_result *first = NULL;
        size_t n_runs = 0;
        for (size_t i = 0; i < L->n; i++)
            if (L->group[i] == (int)top && L->runs[i]->n_history) {
                if (!first)
                    first = L->runs[i];
                n_runs++;
            }
        if (first) {
            pl__buf_printf(b, "$h%d << EOD\n", *n_series);
            for (size_t r = 0; r < first->n_history; r++) {
                double sum = 0;
                size_t cnt = 0;
                for (size_t i = 0; i < L->n; i++) {
                    const pl_run_result *q = L->runs[i];
                    if (L->group[i] != (int)top || q->n_history != first->n_history ||
                        strcmp(q->history[r].phase, first->history[r].phase) != 0 ||
                        isnan(q->history[r].test_acc))
                        continue;
                    sum += q->history[r].test_acc;
                    cnt++;
                }
                if (cnt)
                    pl__buf_printf(b, "%.6g %.6g\n", pl__history_x(first, r), sum / (double)cnt);
            }
            pl__buf_puts(b, "EOD\n");
            pl__buf_printf(&label, " @ %.2f", L->groups[top].key->target_sparsity);
            pl__buf_printf(&plot_h, "%s$h%d using 1:2 with linespoints lw 1.5 lc rgb '%s' pt %d ps 0.9 title ",
                           plot_h.len ? ", \\\n     " : "plot ", *n_series, color, marker);
            pl__gp_quote(&plot_h, label.failed ? "" : label.data);
            *curves = 1;
            (void)n_runs;
        }
        pl__buf_free(&label);
        (*n_series)++;
    }
    /* the dense models: a point each at full MACs (x = 0 sparsity), their
     * accuracy as a line with its band (pl__dense_decor) */
    for (size_t s = 0; s < L->n_sections && *n_series; s++) {
        const pl__section *S = &L->sections[s];
        if (!S->acc.n || !S->macs.n)
            continue;
        pl__buf_printf(b, "$d%zu << EOD\n0 %.6g %.6g %.6g\nEOD\n", s, S->macs.mean, S->acc.mean,
                       S->acc.n > 1 ? S->acc.sd : 0.0);
        mac_lo = fmin(mac_lo, S->macs.mean);
        mac_hi = fmax(mac_hi, S->macs.mean);
        for (int w = 0; w < 2; w++) {
            pl__buf *p = w ? &plot_m : &plot_s;
            pl__buf_printf(p, ", \\\n     $d%zu using %d:3:4 with yerrorbars lc rgb '%s' pt 4 ps 1.3 notitle",
                           s, w ? 2 : 1, pl__dense_colors[s % 4]);
        }
    }
    pl__dense_keys(&plot_s, L, many_models || L->n_sections > 1);
    pl__dense_keys(&plot_m, L, many_models || L->n_sections > 1);

    const char *title = L->n ? L->runs[0]->experiment : "";
    pl__buf ttl = {0};
    if (seeds > 1)
        pl__buf_printf(&ttl, "%s: mean " PL__PM " 1 sd over %zu seeds", title, seeds);
    else
        pl__buf_printf(&ttl, "%s", title);
    static const char *const terms[2] = {
        "set terminal svg size 960,540 dynamic noenhanced font 'sans,12' background rgb 'white'\n",
        "set terminal pngcairo size 1200,675 noenhanced font 'sans,12' background rgb 'white'\n"};
    for (int t = 0; t < 2 && *n_series; t++) {
        pl__buf_puts(b, terms[t]);
        pl__buf_puts(b, "set encoding utf8\nset grid\nset bars 0.6\n"
                        "set key outside right top vertical Left reverse box spacing 1.1\n"
                        "set ylabel 'final test accuracy (%), after retraining and fine-tuning'\n"
                        "set offsets graph 0.02, graph 0.02, graph 0.04, graph 0.04\n"
                        "set yrange [0<*:*<100]\n" /* an error bar never stretches the axis past 0-100 % */
                        "set title ");
        pl__gp_quote(b, ttl.failed ? "" : ttl.data);
        /* accuracy vs sparsity */
        pl__buf_puts(b, "\nset output ");
        pl__gp_quote(b, outs[t * 3]);
        pl__buf_printf(b, "\nset xlabel 'achieved sparsity (share of the targeted units removed)'\n"
                          "set xrange [-0.03:%.3g]\nset xtics 0.1\nset format x '%%.1f'\n",
                       sp_hi > 0.9 ? 1.0 : sp_hi + 0.1);
        pl__dense_decor(b, L);
        pl__buf_add(b, plot_s.data, plot_s.len);
        /* accuracy vs MACs, log x */
        pl__buf_puts(b, "\nset output ");
        pl__gp_quote(b, outs[t * 3 + 1]);
        pl__buf_puts(b, "\nset xlabel 'MACs per image after pruning (surviving weights; log scale)'\n"
                        "set logscale x\nset format x '%g'\n");
        double lo = mac_lo > 0 ? mac_lo / 1.3 : 1, hi = mac_hi > lo ? mac_hi * 1.3 : lo * 10;
        pl__buf_printf(b, "set xrange [%.6g:%.6g]\n", lo, hi);
        pl__log_tics(b, lo, hi);
        pl__buf_add(b, plot_m.data, plot_m.len);
        pl__buf_puts(b, "\nunset logscale x\nunset object\nunset arrow\nset xtics autofreq\n"
                        "set autoscale x\n");
        if (*curves) {
            pl__buf_puts(b, "set output ");
            pl__gp_quote(b, outs[t * 3 + 2]);
            pl__buf_puts(b, "\nset title ");
            pl__buf tc = {0};
            pl__buf_printf(&tc, "%s: test accuracy during each run (mean over seeds; highest sparsity "
                                "of each series)", title);
            pl__gp_quote(b, tc.failed ? "" : tc.data);
            pl__buf_free(&tc);
            pl__buf_puts(b, "\nset xlabel 'training epochs so far (a prune step is a drop at the "
                            "epoch it follows)'\nset ylabel 'test accuracy (%)'\n"
                            "set xtics 1\nset format x '%g'\nset offsets graph 0.02, graph 0.02, "
                            "graph 0.04, graph 0.04\n");
            pl__buf_add(b, plot_h.data, plot_h.len);
            pl__buf_puts(b, "\n");
        }
        pl__buf_puts(b, "unset output\n");
    }
    if (plot_s.failed || plot_m.failed || plot_h.failed || ttl.failed)
        b->failed = 1;
    pl__buf_free(&plot_s);
    pl__buf_free(&plot_m);
    pl__buf_free(&plot_h);
    pl__buf_free(&ttl);
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

/* Writes acc_vs_sparsity, acc_vs_macs and (when runs have a history)
 * training_curves, each as .svg and .png; returns a bitmask of what exists
 * afterwards (1: the accuracy plots, 2: the training curves). Every failure
 * is a warning, never an error. */
static int pl__plots_write(const char *dir, const pl__layout *L)
{
    char *gnuplot = pl__which("gnuplot");
    if (!gnuplot) {
        pl__warn("gnuplot not found; skipping plots (apt-get install gnuplot-nox)");
        return 0;
    }
    static const char *const finals[6] = {"acc_vs_sparsity.svg", "acc_vs_macs.svg",
                                          "training_curves.svg", "acc_vs_sparsity.png",
                                          "acc_vs_macs.png",     "training_curves.png"};
    long pid = (long)getpid();
    char outs[6][64], script[64], log[64], why[300];
    for (int i = 0; i < 6; i++)
        snprintf(outs[i], sizeof outs[i], "%s.tmp.%ld", finals[i], pid);
    snprintf(script, sizeof script, "plots.gp.tmp.%ld", pid);
    snprintf(log, sizeof log, "plots.log.tmp.%ld", pid);

    pl__buf text = {0}, paths[8] = {{0}};
    int n_series = 0, curves = 0, made = 0;
    pl__plot_script(&text, L, outs, &n_series, &curves);
    pl__buf_printf(&paths[0], "%s/%s", dir, script);
    pl__buf_printf(&paths[1], "%s/%s", dir, log);
    for (int i = 0; i < 6; i++)
        pl__buf_printf(&paths[2 + i], "%s/%s", dir, outs[i]);
    int oom = text.failed;
    for (int i = 0; i < 8; i++)
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
            made = curves ? 3 : 1;
            for (int i = 0; i < 6 && made; i++) {
                if (i % 3 == 2 && !curves)
                    continue;
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
    for (int i = 0; i < 8; i++) {
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
    if (st == PL_OK) { /* every epoch and prune step of every run (history.c) */
        b.len = 0;
        pl__history_csv(&b, order, n);
        st = pl__write_named(dir, "history.csv", &b, err);
    }
    if (st == PL_OK) {
        int made = plots ? pl__plots_write(dir, &L) : 0;
        b.len = 0;
        pl__md_results(&b, &L, made);
        st = pl__write_named(dir, "results.md", &b, err);
    }
    if (st == PL_OK) { /* the same table for a paper (booktabs) */
        b.len = 0;
        pl__table T;
        pl__table_build(&T, &L);
        if (T.failed)
            b.failed = 1;
        else
            pl__table_tex(&b, &T, n && order[0]->experiment[0] ? order[0]->experiment : "prunelab");
        pl__table_free(&T);
        st = pl__write_named(dir, "results.tex", &b, err);
    }
    pl__buf_free(&b);
    pl__layout_free(&L);
    free(order);
    return st;
}
