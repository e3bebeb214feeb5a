/*
 * result.h — what one finished run produced, and the report built from many.
 *
 * Each finished run is saved as a self-contained record
 * DIR/runs/<run_id>.json (written atomically); the report (results.csv,
 * results.md, layers.csv, plots, manifest.json) is rebuilt from the set of
 * records, so resumed, sharded or merged sweeps give the same tables.
 * Column names and order of results.csv are a contract (docs/design.md "Reports").
 *
 * Accuracies are test-set percentages; NaN means "not measured" (written as
 * an empty CSV cell).
 */
#ifndef PL_RESULT_H
#define PL_RESULT_H

#include "error.h"
#include "fileio.h" /* pl_write_atomic, pl_mkdirs, pl__read_file */
#include "strbuf.h" /* pl__buf */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pl_layer_result {
    char name[64];
    char type[16];
    char shape_before[48];    /* weight shape "4x1x3x3" (or output "8x14x14" for param-free) */
    char shape_after[48];
    int64_t params_before, params_after;
    int64_t nonzero_after;
    int64_t macs_before, macs_after; /* macs_after effective */
    double sparsity;          /* achieved, per the granularity's definition */
    char *kept;               /* conv/linear: original indices of the output units kept,
                               * as ranges "0-3,5,7-9" (heap; NULL = not recorded) */
} pl_layer_result;

/* One row of a run's history (history.c): an epoch of a training phase, or
 * a prune step. Accuracies are test-set/training-set percentages; NaN = not
 * measured (a prune row has no training loss). */
typedef struct pl_history_row {
    char phase[16];           /* train | prune | retrain | finetune */
    int64_t step;             /* prune step (1-based); 0 before pruning */
    int64_t epoch;            /* 1-based epoch of the phase; 0 for a prune row */
    double sparsity;          /* achieved sparsity at that point (0 before pruning) */
    double loss, train_acc;   /* mean training loss and accuracy over the epoch */
    double test_loss, test_acc;
} pl_history_row;

typedef struct pl_run_result {
    char run_id[17];
    char experiment[64];
    char model[256];          /* as written in the config */
    char dataset[256];        /* dataset plugin name and path, as written */
    char backend[64];
    uint64_t seed;
    char criterion[64];       /* "" when no pruning */
    char schedule[64];
    char granularity[16];
    double target_sparsity, achieved_sparsity;
    int64_t params_before, params_after, nonzero_params_after;
    int64_t macs_before, macs_after, macs_after_physical;
    double acc_baseline, acc_pruned, acc_retrained, acc_final;
    double latency_ms_before, latency_ms_after;
    double train_seconds, baseline_seconds;
    char status[16];          /* ok | diverged | missed_target | failed */
    char sweep[256];          /* "prune.criterion=l1 seed=2" */
    char message[256];        /* why, when status != ok */
    size_t run_index;         /* position in the sweep (orders the tables) */
    pl_layer_result *layers;
    size_t n_layers;
    /* the run manifest (manifest.h): n_manifest (key, value) pairs stored as
     * manifest[2k], manifest[2k+1]; none in records made before it */
    char **manifest;
    size_t n_manifest;
    pl_history_row *history;  /* every epoch and prune step, in order (heap) */
    size_t n_history;
} pl_run_result;

void pl_run_result_free(pl_run_result *r); /* frees layers, manifest and history (not r itself) */

/* Records (DIR/runs/<run_id>.json): write atomically (tmp + fsync + rename). */
pl_status pl_record_write(const char *dir, const pl_run_result *r, pl_error *err);
pl_status pl_record_read(const char *path, pl_run_result *r, pl_error *err);
/* All records in DIR/runs, sorted by run_index then run_id. Caller frees
 * each with pl_run_result_free and the array with free(). Files named
 * *.tmp.* (unfinished atomic writes) are ignored; a missing DIR/runs gives
 * zero records; a malformed record, or one holding values no run produces
 * (negative counts, accuracies outside [0, 100], sparsity outside [0, 1],
 * an unknown status), is PL_EFORMAT naming the file. */
pl_status pl_records_load(const char *dir, pl_run_result **out, size_t *n, pl_error *err);

/* Writes results.csv, results.md, layers.csv (and plots when gnuplot is
 * available and plots != 0) into dir, each atomically. */
pl_status pl_report_write(const char *dir, const pl_run_result *runs, size_t n, int plots,
                          pl_error *err);

/* `prunelab compare`: sets *regressed to 0 (equal within tolerance) or 1
 * (regression); the Markdown table of what moved goes to `out`. tolerance:
 * "acc=0.5,params=0" (NULL or "" = defaults). Returns PL_OK unless a file
 * could not be read (PL_EIO), is malformed or lacks a required column
 * (PL_EFORMAT), or the tolerance string is bad (PL_ECONFIG). */
pl_status pl_compare_files(const char *baseline_csv, const char *current_csv,
                           const char *tolerance, FILE *out, int *regressed, pl_error *err);
/* The same; only_common != 0 compares only the run_ids present in both
 * files (a shard against a full baseline) and counts the others as skipped. */
pl_status pl_compare_files_ex(const char *baseline_csv, const char *current_csv,
                              const char *tolerance, int only_common, FILE *out, int *regressed,
                              pl_error *err);

#endif
