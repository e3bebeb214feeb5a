/*
 * history.h — a run's history: loss, training and test accuracy for every
 * epoch of every phase and for every prune step (pl_history_row in
 * result.h), kept in the run record and gathered into history.csv; and the
 * units each pruned layer kept, as index ranges.
 */
#ifndef PL_HISTORY_H
#define PL_HISTORY_H

#include "prune.h"
#include "result.h"
#include "train.h"

/* Appends a copy of *row to r->history. */
pl_status pl__history_add(pl_run_result *r, const pl_history_row *row, pl_error *err);

/* history.csv: a header and one row per history row of every run, in the
 * order of `runs`; accuracies and losses with 4 decimals, NaN empty. */
void pl__history_csv(pl__buf *b, const pl_run_result *const *runs, size_t n);

/* Baseline rows travel with the cached baseline checkpoint: "history=..."
 * lines of its meta text. Encode appends them to `meta`; decode adds the
 * rows it finds in `meta` to r (malformed lines are skipped: the history
 * is a record of what happened, never an input to a run). */
void pl__history_meta_encode(pl__buf *meta, const pl_run_result *r);
pl_status pl__history_meta_decode(const char *meta, pl_run_result *r, pl_error *err);

/* "0-3,5,7-9" from n ascending indices (heap; NULL when out of memory). */
char *pl__ranges(const int *idx, int n);

/* ---- gathering the history while a run trains (run.c) ------------------ */
typedef struct pl__history_ctx {
    pl_run_result *r;  /* rows go to r->history */
    pl_model *m;       /* the model being trained */
    pl_data *test;     /* evaluated after every epoch */
    int64_t step;      /* current prune step (0 before pruning) */
    double sparsity;   /* achieved so far */
} pl__history_ctx;

/* pl_train_opts.on_epoch: evaluates the test split and adds the epoch's row. */
pl_status pl__history_on_epoch(void *ud, const char *phase, int epoch, const struct pl_epoch_stats *st,
                               double *test_acc, pl_error *err);
/* After prune step c->step: evaluates the test split, adds a "prune" row,
 * and returns the test accuracy in *acc. */
pl_status pl__history_prune_step(pl__history_ctx *c, double *acc, pl_error *err);

/* Sets r->layers[i].kept for every conv/linear layer of the record from the
 * final model and the pruner (pr may be zeroed when nothing was pruned); a
 * layer removed whole keeps "" (nothing). */
pl_status pl__history_record_kept(pl_run_result *r, const pl_model *after, const pl_pruner *pr,
                                  pl_error *err);

#endif
