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
#include "report_internal.h"

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


static const char results_header[] =
    "run_id,experiment,model,dataset,backend,seed,criterion,schedule,granularity,"
    "target_sparsity,achieved_sparsity,params_before,params_after,nonzero_params_after,"
    "macs_before,macs_after,macs_after_physical,flops_before,flops_after,"
    "acc_baseline,acc_pruned,acc_retrained,acc_final,latency_ms_before,latency_ms_after,"
    "train_seconds,baseline_seconds,status,sweep,prunelab_version,dataset_checksum\n";

static const char layers_header[] =
    "run_id,layer,type,shape_before,shape_after,params_before,params_after,nonzero_after,"
    "macs_before,macs_after,sparsity\n";

/* ---- run order ------------------------------------------------------------ */

static int run_ptr_cmp(const void *a, const void *b)
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

static void csv_results(pl__buf *b, const pl_run_result *const *runs, size_t n)
{
    pl__buf_puts(b, results_header);
    for (size_t i = 0; i < n; i++) {
        const pl_run_result *r = runs[i];
        const char *run[] = {r->run_id, r->experiment, r->model, r->dataset, r->backend};
        pl__csv_strs(b, run, 5);
        pl__buf_printf(b, ",%" PRIu64 ",", r->seed);
        const char *plan[] = {r->criterion, r->schedule, r->granularity};
        pl__csv_strs(b, plan, 3);
        pl__buf_add(b, ",", 1);
        const double sparsity[2] = {r->target_sparsity, r->achieved_sparsity};
        pl__csv_nums(b, sparsity, 2, 4);
        pl__buf_printf(b, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                          ",%" PRId64 ",%" PRId64 ",",
                       r->params_before, r->params_after, r->nonzero_params_after, r->macs_before,
                       r->macs_after, r->macs_after_physical, 2 * r->macs_before,
                       2 * r->macs_after);
        const double acc[4] = {r->acc_baseline, r->acc_pruned, r->acc_retrained, r->acc_final};
        pl__csv_nums(b, acc, 4, 2);
        pl__buf_add(b, ",", 1);
        const double secs[4] = {r->latency_ms_before, r->latency_ms_after, r->train_seconds,
                                r->baseline_seconds};
        pl__csv_nums(b, secs, 4, 3);
        pl__buf_add(b, ",", 1);
        /* appended columns: provenance from the manifest (empty without one) */
        const char *ver = pl_manifest_get(r, "prunelab_version"), *sum = pl_manifest_get(r, "dataset.train");
        const char *tail[] = {r->status, r->sweep, ver ? ver : "", sum ? sum : ""};
        pl__csv_strs(b, tail, 4);
        pl__buf_add(b, "\n", 1);
    }
}

static void csv_layers(pl__buf *b, const pl_run_result *const *runs, size_t n)
{
    pl__buf_puts(b, layers_header);
    for (size_t i = 0; i < n; i++) {
        const pl_run_result *r = runs[i];
        for (size_t k = 0; k < r->n_layers; k++) {
            const pl_layer_result *l = &r->layers[k];
            const char *names[] = {r->run_id, l->name, l->type, l->shape_before, l->shape_after};
            pl__csv_strs(b, names, 5);
            pl__buf_printf(b, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",",
                           l->params_before, l->params_after, l->nonzero_after, l->macs_before,
                           l->macs_after);
            pl__csv_num(b, l->sparsity, 4);
            pl__buf_add(b, "\n", 1);
        }
    }
}

/* ---- entry point -------------------------------------------------------------- */

static pl_status write_named(const char *dir, const char *name, const pl__buf *b,
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
    qsort(order, n, sizeof *order, run_ptr_cmp);

    pl__layout L;
    if ((st = pl__layout_build(&L, order, n, err))) {
        free(order);
        return st;
    }
    pl__buf b = {0};
    csv_results(&b, order, n);
    st = write_named(dir, "results.csv", &b, err);
    if (st == PL_OK) {
        b.len = 0;
        csv_layers(&b, order, n);
        st = write_named(dir, "layers.csv", &b, err);
    }
    if (st == PL_OK) { /* every epoch and prune step of every run (history.c) */
        b.len = 0;
        pl__history_csv(&b, order, n);
        st = write_named(dir, "history.csv", &b, err);
    }
    if (st == PL_OK) {
        int made = plots ? pl__plots_write(dir, &L) : 0;
        b.len = 0;
        pl__md_results(&b, &L, made);
        st = write_named(dir, "results.md", &b, err);
    }
    if (st == PL_OK) { /* the same table for a paper (booktabs) */
        b.len = 0;
        pl__tex_results(&b, &L, n && order[0]->experiment[0] ? order[0]->experiment : "prunelab");
        st = write_named(dir, "results.tex", &b, err);
    }
    pl__buf_free(&b);
    pl__layout_free(&L);
    free(order);
    return st;
}
