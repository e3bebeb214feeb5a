/*
 * sensitivity.h — `prunelab sensitivity`: how much each prunable layer (or
 * pruning group) can lose on its own.
 *
 * For one experiment (no sweep), the baseline is trained or reused from the
 * report's cache exactly as `prunelab run` does (same key, same file);
 * then every prunable unit of the experiment's granularity — a pruning
 * group for channel/neuron (a chain's groups are its layers), a layer for
 * weight — is pruned ALONE, with the experiment's criterion and a one-shot
 * schedule, at each ratio, and the pruned copy is evaluated on the test
 * split without retraining. Writes DIR/sensitivity.csv
 *
 *     unit,members,ratio,achieved,accuracy,acc_drop,params,macs
 *
 * (one row per unit and ratio, after a `(baseline)` row at ratio 0), the
 * plot DIR/sensitivity.{svg,png} (accuracy against ratio, a line per unit)
 * and, with a maximum accuracy drop, DIR/sensitivity_layers.yaml: a
 * `prune.layers` block giving each unit the largest measured ratio whose
 * drop stays within it — Distiller's and SparseML's per-layer recipe.
 */
#ifndef PL_SENSITIVITY_H
#define PL_SENSITIVITY_H

#include "config.h"
#include "registry.h"

#include <signal.h>
#include <stdio.h>

#define PL_SENS_MAX_RATIOS 64

typedef struct pl_sens_opts {
    const char *out_dir;       /* NULL: the experiment's report.dir */
    double ratios[PL_SENS_MAX_RATIOS];
    int n_ratios;              /* 0: 0.1, 0.2, ..., 0.9 */
    double max_drop;           /* accuracy points; < 0: no prune.layers block */
    int threads;
    int quiet;
    FILE *out;                 /* the table as it is measured (stdout) */
    volatile sig_atomic_t *interrupted;
} pl_sens_opts;

/* Parses "0.1,0.25,0.5" into o->ratios (each in (0, 1), ascending, at most
 * PL_SENS_MAX_RATIOS); PL_EINVAL with the offending entry otherwise. */
pl_status pl_sens_parse_ratios(const char *text, pl_sens_opts *o, pl_error *err);

pl_status pl_sensitivity_config(pl_registry *reg, const pl_config *cfg, const pl_sens_opts *o, pl_error *err);

#endif
