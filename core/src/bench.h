/*
 * bench.h — `prunelab bench`: the engine's speed on this machine.
 *
 * Protocol (bench/README.md has the numbers measured here and how to read
 * them). Each backend runs in a child process (so peak RSS is its own),
 * with one backend instance per thread count: 1 and `threads` (ref, whose
 * kernels are single-threaded, only at 1). Every measurement is repeated
 * `runs` times after an untimed warm-up, the thread counts alternating
 * (1,T then T,1, ...) so that a change in the machine's load hits both
 * alike; reported as median and spread (min..max).
 *
 *  - FMA probe: many independent FMA chains (AVX-512 where the CPU has it,
 *    else AVX2+FMA, else plain vectors) on 1 and on T threads, timed in the
 *    same repetitions: the machine's peak GFLOP/s as the benchmark saw it.
 *  - Training: one epoch of the model (default: the seed's SimpleCNN) on
 *    MNIST, batch 64, Adam lr 1e-3, from a fresh seed-1 model each time:
 *    wall and CPU seconds, images/s, GFLOP/s (2 x the MACs of forward,
 *    weight gradient and input gradient; the first layer has none) and that
 *    as a fraction of the probe at the same thread count. The trained
 *    weights are hashed: every repetition and thread count must agree.
 *  - Inference: the 10,000 test images in batches of 1,000 (through
 *    pl_model_infer: shared activation buffers, cache-sized chunks), and the test
 *    accuracy of the trained model.
 *  - Profile: 20 training steps (pl_train_step) of the model at batch 64
 *    with a clock around every layer (pl_model.prof): ms per step by layer type, forward
 *    and backward, the loss and Adam.
 *  - vgg_mini (not on ref): a fixed number of training steps (pl_train_step,
 *    Adam lr 1e-3), and each of
 *    its convolutions' three kernels timed alone at batch 64, as GFLOP/s
 *    and fraction of the probe.
 *  - Sparse: LeNet-300-100 with 90% of each prunable layer's weights pruned
 *    (smallest |w|: the pruner with criterion l1, schedule oneshot,
 *    granularity weight), the 10,000 test images with the backend's CSR
 *    kernel and with its dense one (the same model; the CSR slot hidden).
 *
 * Output: Markdown tables on `out`, and with csv_path a CSV file in long
 * form (section, model, backend, threads, metric, median, min, max, unit).
 */
#ifndef PL_BENCH_H
#define PL_BENCH_H

#include "registry.h"

#include <stdio.h>

typedef struct pl_bench_opts {
    const char *model;       /* model file of the training benchmark */
    const char *data;        /* MNIST directory (default data/mnist) */
    const char *backends[8]; /* default: ref, simd */
    int n_backends;
    int runs;                /* timed repetitions (>= 1) */
    int threads;             /* max threads; 1 and this are measured */
    const char *csv_path;    /* NULL = no CSV */
} pl_bench_opts;

pl_status pl_bench_run(pl_registry *reg, const pl_bench_opts *o, FILE *out, pl_error *err);

/* The FMA probe alone: GFLOP/s on `threads` threads over about `seconds`;
 * *isa names the instruction set used ("avx512", "avx2", "vector"). */
double pl_bench_fma_probe(int threads, double seconds, const char **isa);

#endif
