/*
 * model_eval.h — `prunelab eval MODEL`: a model file's test accuracy.
 *
 * MODEL is a checkpoint (a run's models/<run_id>.ckpt, a cached baseline)
 * or an ONNX file (loaded like `model:` loads it: the weights come with
 * it). The dataset and the backend come from an experiment file's
 * dataset:/backend:/seed (the same test split a run of it evaluates on), or
 * from --set dataset.plugin=... dataset.path=... alone. Prints the test
 * accuracy, the parameter and MAC counts; optionally writes every test
 * image's logits as CSV (index,label,logit0,...), atomically.
 */
#ifndef PL_MODEL_EVAL_H
#define PL_MODEL_EVAL_H

#include "error.h"
#include "model.h"
#include "registry.h"

#include <stdio.h>

typedef struct pl_eval_opts {
    const char *model;             /* checkpoint or .onnx */
    const char *experiment;        /* EXPERIMENT.yaml or NULL (then sets must name the dataset) */
    const char *const *sets;       /* --set key=value */
    size_t n_sets;
    const char *logits_csv;        /* --logits FILE or NULL */
    int threads;
    FILE *out;
} pl_eval_opts;

/* Loads a model file: ".onnx" through pl_model_spec_load + pl_model_new
 * (the spec carries the weights), anything else as a checkpoint. */
pl_status pl_model_file_load(const char *path, pl_model **out, pl_error *err);

/* The whole command; errors are one line naming the file (PL_ECONFIG for a
 * missing dataset or a model that does not fit it). */
pl_status pl_eval_run(pl_registry *reg, const pl_eval_opts *o, pl_error *err);

#endif
