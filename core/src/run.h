/*
 * run.h — running experiments: every run of a (swept) experiment goes
 * baseline (trained once, cached) → prune per schedule → retrain →
 * fine-tune → evaluate, and leaves a self-contained record in
 * DIR/runs/<run_id>.json; the report is then rebuilt from all records.
 *
 * Resume: a run whose record already exists is skipped. Shards: with
 * shard_n > 1 only runs k with k % shard_n == shard_i - 1 are executed.
 * Which process executes which run is the executor's choice (plugin.h,
 * pl_executor_ops; the built-in `local` one runs them in order here).
 * Processes sharing a report folder or a baseline cache claim runs and
 * baselines (claim.h), so none is executed or trained twice.
 */
#ifndef PL_RUN_H
#define PL_RUN_H

#include "config.h"
#include "registry.h"
#include "result.h"
#include "train.h"

typedef struct pl_run_opts {
    int threads;                        /* >= 1 */
    const char *out_dir;                /* --out, or NULL for report.dir */
    pl_progress progress;
    int quiet;
    int shard_i, shard_n;               /* 1-based; 0/0 = all */
    volatile sig_atomic_t *interrupted;
    FILE *out;                          /* human output (stdout) */
    const char *executor;               /* --executor NAME; NULL = the built-in "local" */
} pl_run_opts;

/* Runs every run of cfg. Returns PL_OK when all runs are ok, PL_EDIVERGED /
 * PL_EMISSED / PL_EPLUGIN when some run ended flagged (its row says why; the
 * sweep continued), or an error that stopped everything (configuration,
 * data, interrupted). */
pl_status pl_run_config(pl_registry *reg, const pl_config *cfg, const pl_run_opts *opts,
                        pl_error *err);

/* `prunelab validate`: checks every run (plugins found, parameters valid,
 * model fits, prune targets resolve) and prints the resolved plan to `out`
 * (NULL: check only; `run` does that before its first run). */
pl_status pl_validate_config(pl_registry *reg, const pl_config *cfg, FILE *out, pl_error *err);

/* `prunelab report DIR`: rebuilds the tables from the records in DIR/runs. */
pl_status pl_report_rebuild(const char *dir, int plots, FILE *out, pl_error *err);

#endif
