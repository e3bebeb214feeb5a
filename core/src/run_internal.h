/*
 * run_internal.h — private to run.c (one run: baseline, prune, retrain,
 * fine-tune), run_sweep.c (the sweep, the report) and run_validate.c, and
 * the commands that open a run's plugins the same way (sensitivity.c,
 * model_eval.c).
 */
#ifndef PL_RUN_INTERNAL_H
#define PL_RUN_INTERNAL_H

#include "run.h"
#include "model.h"
#include "checkpoint.h"
#include "claim.h"
#include "history.h"
#include "identity.h"
#include "manifest.h"
#include "prune.h"
#include "regularize.h"
#include "share_path.h"

#include <signal.h>
#include <stdio.h>

#define MKDIR_HINT "choose a writable folder with --out or report.dir"

/* Everything one run needs, opened once per run. */
typedef struct pl_runenv {
    pl_model_spec *spec;
    pl_instance *be, *ds, *crit, *sched;
    pl_data train, test;
    float *test_x;
    int64_t test_n;
    int borrowed_data; /* train/test belong to the pl_identity (never closed here) */
} pl_runenv;

void pl__run_cache_dir(const pl_experiment *x, const pl_run_opts *o, char *buf, size_t n);
pl_status pl__run_check_fit(const pl_experiment *x, const pl_runenv *e, pl_error *err);
pl_status pl__run_claim_nap(const pl_run_opts *o, pl_error *err);
void pl__run_copy_str(char *dst, size_t n, const char *src);
pl_status pl__run_get_baseline(const pl_experiment *x, const pl_run_opts *o, pl_runenv *e,
                              pl_model **out, double *baseline_seconds, pl_run_result *hist,
                              pl_error *err);
pl_status pl__run_mkdir_p(const char *path, pl_error *err);
void pl__run_print_row(FILE *f, const pl_run_result *r);
void pl__run_print_row_header(FILE *f);
const char *pl__run_report_dir(const pl_experiment *x, const pl_run_opts *o);
/* pl_instance_new, with the plugin reference's place in the experiment in
 * front of errors that do not name it yet (e.g. an init() failure). */
pl_status pl__run_instance_new(pl_registry *reg, pl_kind kind, const pl_plugin_ref *ref,
                               const pl_experiment *x, int threads, pl_instance **out, pl_error *err);
pl_status pl__run_one(pl_registry *reg, const pl_experiment *x, const pl_run_opts *o, pl_identity *id,
                         pl_run_result *r, int *started, pl_error *err);
void pl__runenv_free(pl_runenv *e);
pl_status pl__runenv_open(pl_registry *reg, const pl_experiment *x, int threads, int open_data,
                             pl_identity *id, pl_runenv *e, pl_error *err);
void pl__run_say(const pl_run_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
pl_status pl__run_validate_config(pl_registry *reg, const pl_config *cfg, FILE *out, pl_identity *id,
                                 volatile sig_atomic_t *intr, pl_error *err);

#endif
