/* report_layout.c — how the report groups runs: sections (model, dataset), configurations (every key but the seed), mean and sample std over seeds, and the Markdown cell helpers shared by the tables. */
#include "report_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- grouping -------------------------------------------------------------- */

/* The sweep description without the items starting with one of drop[]
 * (NULL-terminated), in their order. */
void pl__sweep_without(const char *sweep, const char *const *drop, char *out, size_t cap)
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
        int dropped = 0;
        for (size_t i = 0; drop[i] && !dropped; i++)
            dropped = strncmp(p, drop[i], strlen(drop[i])) == 0;
        if (q > p && !dropped) {
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

/* The sweep description without its seed=... item: runs that differ only
 * in the seed share it. */
void pl__sweep_sans_seed(const char *sweep, char *out, size_t cap)
{
    static const char *const drop[] = {"seed=", NULL};
    pl__sweep_without(sweep, drop, out, cap);
}

static int same_double(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* model, dataset, criterion, schedule, granularity, target: what a row shows */
static int same_visible(const pl_run_result *a, const pl_run_result *b)
{
    return strcmp(a->model, b->model) == 0 && strcmp(a->dataset, b->dataset) == 0 &&
           strcmp(a->criterion, b->criterion) == 0 && strcmp(a->schedule, b->schedule) == 0 &&
           strcmp(a->granularity, b->granularity) == 0 &&
           same_double(a->target_sparsity, b->target_sparsity);
}

static int same_config(const pl_run_result *a, const pl_run_result *b)
{
    char sa[sizeof a->sweep], sb[sizeof b->sweep];
    if (!same_visible(a, b) || strcmp(a->backend, b->backend) != 0 ||
        strcmp(a->experiment, b->experiment) != 0)
        return 0;
    pl__sweep_sans_seed(a->sweep, sa, sizeof sa);
    pl__sweep_sans_seed(b->sweep, sb, sizeof sb);
    return strcmp(sa, sb) == 0;
}

int pl__same_section(const pl_run_result *a, const pl_run_result *b)
{
    return strcmp(a->model, b->model) == 0 && strcmp(a->dataset, b->dataset) == 0;
}


static double field_value(const pl_run_result *r, size_t off, pl__vtype t)
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

static double run_value(const pl_run_result *r, size_t off, pl__vtype t, pl__run_fn fn)
{
    return fn ? fn(r) : field_value(r, off, t);
}

pl__stat pl__stat_of(const pl_run_result *const *runs, const int *sel, size_t n, int id, size_t off,
                     pl__vtype t, pl__run_fn fn)
{
    pl__stat s = {NAN, NAN, 0};
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double v = sel[i] == id ? run_value(runs[i], off, t, fn) : NAN;
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
            double v = sel[i] == id ? run_value(runs[i], off, t, fn) : NAN;
            if (!isnan(v))
                ss += (v - s.mean) * (v - s.mean);
        }
        s.sd = sqrt(ss / (double)(s.n - 1));
    }
    return s;
}


/* value as displayed with `decimals` (bold decisions compare these) */
double pl__shown(double v, int decimals)
{
    char t[64];
    if (isnan(v))
        return NAN;
    snprintf(t, sizeof t, "%.*f", decimals, v);
    return strtod(t, NULL);
}

void pl__layout_free(pl__layout *L)
{
    free(L->group);
    free(L->base);
    free(L->groups);
    free(L->sections);
}

int pl__is_ok(const pl_run_result *r) { return strcmp(r->status, "ok") == 0; }
static int is_pruned(const pl_run_result *r) { return r->criterion[0] != '\0'; }

pl_status pl__layout_build(pl__layout *L, const pl_run_result **runs, size_t n,
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
                  same_double(runs[k]->acc_baseline, r->acc_baseline);
        if (!dup)
            L->base[i] = (int)s;
        if (!is_pruned(r))
            continue;
        size_t g = 0;
        while (g < L->n_groups && !same_config(L->groups[g].key, r))
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
        S->params = pl__stat_of(runs, L->base, n, (int)s, PL__F(params_before), PL__V_I64, NULL);
        S->macs = pl__stat_of(runs, L->base, n, (int)s, PL__F(macs_before), PL__V_I64, NULL);
        S->acc = pl__stat_of(runs, L->base, n, (int)s, PL__F(acc_baseline), PL__V_F64, NULL);
        S->lat = pl__stat_of(runs, L->base, n, (int)s, PL__F(latency_ms_before), PL__V_F64, NULL);
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
        G->achieved = pl__stat_of(runs, L->group, n, id, PL__F(achieved_sparsity), PL__V_F64, NULL);
        G->nonzero = pl__stat_of(runs, L->group, n, id, PL__F(nonzero_params_after), PL__V_I64, NULL);
        G->macs_before = pl__stat_of(runs, L->group, n, id, PL__F(macs_before), PL__V_I64, NULL);
        G->macs_after = pl__stat_of(runs, L->group, n, id, PL__F(macs_after), PL__V_I64, NULL);
        G->acc_base = pl__stat_of(runs, L->group, n, id, PL__F(acc_baseline), PL__V_F64, NULL);
        G->acc_pruned = pl__stat_of(runs, L->group, n, id, PL__F(acc_pruned), PL__V_F64, NULL);
        G->acc_final = pl__stat_of(runs, L->group, n, id, PL__F(acc_final), PL__V_F64, NULL);
        G->lat_before = pl__stat_of(runs, L->group, n, id, PL__F(latency_ms_before), PL__V_F64, NULL);
        G->lat_after = pl__stat_of(runs, L->group, n, id, PL__F(latency_ms_after), PL__V_F64, NULL);
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
            if (same_visible(L->groups[h].key, G->key))
                L->sweep_col = 1;
    }
    return PL_OK;
}
