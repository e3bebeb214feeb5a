/*
 * bench.h — `prunelab bench`: the engine's speed on this machine.
 *
 * Protocol: for each backend and thread count, in a child process (so peak
 * RSS is per configuration): one untimed warm-up epoch, then `runs` timed
 * training epochs of the model on MNIST (batch 64, Adam lr 1e-3, each from a
 * fresh seed-1 model), plus `runs` timed inference passes over the test set.
 * Reports the median and spread (min..max), images/s, GFLOP/s (3 × the
 * forward MACs × 2 per training image), and peak RSS. Output: a table, and
 * the same as CSV when csv_path is set.
 */
#ifndef PL_BENCH_H
#define PL_BENCH_H

#include "registry.h"

#include <stdio.h>

typedef struct pl_bench_opts {
    const char *model;       /* model file */
    const char *data;        /* MNIST directory (default data/mnist) */
    const char *backends[8]; /* default: ref, simd */
    int n_backends;
    int runs;                /* timed repetitions (>= 1) */
    int threads;             /* max threads; 1 and this are measured */
    const char *csv_path;    /* NULL = no CSV */
} pl_bench_opts;

pl_status pl_bench_run(pl_registry *reg, const pl_bench_opts *o, FILE *out, pl_error *err);

#endif
