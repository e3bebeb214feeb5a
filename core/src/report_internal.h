/*
 * report_internal.h — private to the report files: report.c (the entry
 * point, results.csv, layers.csv), report_layout.c (grouping and statistics),
 * report_table.c (results.md, results.tex) and report_plot.c (plots).
 */
#ifndef PL_REPORT_INTERNAL_H
#define PL_REPORT_INTERNAL_H

#include "history.h"
#include "manifest.h"
#include "result.h"

#include <stddef.h>

#define PL__DASH "\xe2\x80\x94"  /* — */
#define PL__PM "\xc2\xb1"        /* ± */
#define PL__TIMES "\xc3\x97"     /* × */
#define PL__ARROW "\xe2\x86\x92" /* → */
#define PL__DELTA "\xce\x94"     /* Δ */

typedef struct pl__stat {
    double mean, sd;
    size_t n;
} pl__stat;

typedef enum { PL__V_F64, PL__V_I64 } pl__vtype;

#define PL__F(field) offsetof(pl_run_result, field)

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

/* report_layout.c */
/* a number computed from a run */
typedef double (*pl__run_fn)(const pl_run_result *r);
/* Mean and sample std over runs[i] with sel[i] == id (NaN skipped) of
 * fn(run), or without fn of the field at `off` of type t. */
pl__stat pl__stat_of(const pl_run_result *const *runs, const int *sel, size_t n, int id, size_t off,
                     pl__vtype t, pl__run_fn fn);
int pl__is_ok(const pl_run_result *r);
int pl__same_section(const pl_run_result *a, const pl_run_result *b);
/* The sweep description without its seed=... item: runs that differ only
 * in the seed share it. */
void pl__sweep_sans_seed(const char *sweep, char *out, size_t cap);
/* The same without the items starting with one of drop[] (NULL-terminated). */
void pl__sweep_without(const char *sweep, const char *const *drop, char *out, size_t cap);
/* value as displayed with `decimals` (bold decisions compare these) */
double pl__shown(double v, int decimals);
pl_status pl__layout_build(pl__layout *L, const pl_run_result **runs, size_t n, pl_error *err);
void pl__layout_free(pl__layout *L);

/* report_table.c: results.md (plots: bit 0 the sparsity plots were made,
 * bit 1 the training curves) and results.tex */
void pl__md_results(pl__buf *b, const pl__layout *L, int plots);
void pl__tex_results(pl__buf *b, const pl__layout *L, const char *experiment);

/* report_plot.c: writes the plots into dir; returns the bits of
 * pl__md_results's `plots` for what it made (0 without gnuplot) */
int pl__plots_write(const char *dir, const pl__layout *L);

/* The one way prunelab draws: fn writes a gnuplot script into b for the
 * temporary output names outs[0..n) and returns the bits of the outputs it
 * draws (0: nothing); pl__plot_render runs gnuplot in dir and renames the
 * outputs to finals[i] only when every one was made. Returns the bits that
 * exist afterwards; every failure is a warning (plots never fail a run). */
#define PL__PLOT_MAX_FILES 8
typedef unsigned (*pl__plot_script_fn)(pl__buf *b, char (*outs)[64], const void *ud);
unsigned pl__plot_render(const char *dir, const char *const *finals, int n, pl__plot_script_fn fn,
                         const void *ud);
/* s as a gnuplot string literal (single quotes, '' inside) */
void pl__gp_quote(pl__buf *b, const char *s);

#endif
