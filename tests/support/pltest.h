/*
 * pltest.h — helpers shared by the Criterion suites.
 *
 * pltest_registry()  a process-wide registry searching the build tree's
 *                    plugins/ and testplugins/ (PL_BUILD_DIR).
 * pltest_instance()  instantiate a built plugin with "key=value" params
 *                    (NULL-terminated, may be NULL); asserts on failure.
 * pltest_tmpdir()    a fresh directory under /tmp (caller frees the string),
 *                    removed with its contents when the test process exits.
 * pltest_run()       run a shell command, capture stdout+stderr, return the
 *                    exit status (caller frees *out).
 * pltest_experiment_text()  run 0 of an experiment given as YAML text.
 * pltest_ref_backend()      a process-wide instance of the `ref` backend;
 * pltest_bind_ref()         binds a model to it.
 * pltest_same_weights()     bit-identical weights (and biases) of two models.
 * pltest_save_reload()      save a model (checkpoint or ONNX export), load it back.
 * pltest_same_logits()      two models give bit-identical logits on the same input.
 * pltest_generated_doc()    a committed page is what its hidden query prints.
 * pltest_synthetic_train()  a `synthetic` dataset with its training split open.
 * PLTEST_TINY_YAML   a small conv + linear model file (1x8x8 in, 4 classes).
 */
#ifndef PLTEST_H
#define PLTEST_H

#include "registry.h"

#include <criterion/criterion.h>

pl_registry *pltest_registry(void);
pl_instance *pltest_instance(pl_kind kind, const char *name, const char *const *kv,
                             uint64_t seed, int threads);
char *pltest_tmpdir(void);
int pltest_run(const char *cmd, char **out);
/* Path of the built prunelab executable. */
const char *pltest_exe(void);
const char *pltest_build_dir(void);

/* A model from model-file YAML text (written to a temp file and loaded
 * through pl_model_spec_load), initialised with `seed`; asserts on error. */
struct pl_model;
struct pl_model *pltest_model(const char *yaml, uint64_t seed);
struct pl_model *pltest_model_file(const char *path, uint64_t seed); /* a model YAML file */
/* Writes text to a new temp file; returns its path (caller frees). */
char *pltest_write_temp(const char *text, const char *suffix);

/* Loads experiment YAML `text` (through a temp file, so errors name a real
 * file) with `n` --set strings and expands run 0 into *x (NULL on error;
 * caller frees with pl_experiment_free). Returns the loader's status. */
struct pl_experiment;
pl_status pltest_experiment_text(const char *text, const char *const *sets, size_t n,
                                 struct pl_experiment **x, pl_error *err);

/* 1 when a and b (same shapes) hold bit-identical weights, and biases
 * too when with_biases. */
int pltest_same_weights(const struct pl_model *a, const struct pl_model *b, int with_biases);

/* How pltest_save_reload writes the model. */
typedef enum { PLTEST_CHECKPOINT, PLTEST_ONNX } pltest_format;

/* Saves m to `path` (pl_checkpoint_save without meta or flags, or
 * pl_onnx_export_model without folding) and loads it back (pl_checkpoint_load,
 * or the model-file loader and pl_model_new with seed 9); asserts each step.
 * The file stays; the caller frees the returned model. */
struct pl_model *pltest_save_reload(const struct pl_model *m, const char *path, pltest_format fmt);

/* Forward (EVAL, on pltest_ref_backend) of the n images x through a and b:
 * asserts that every logit is equal, bit for bit; `what` ends the message. */
void pltest_same_logits(struct pl_model *a, struct pl_model *b, const float *x, int n, const char *what);

/* The committed page `doc` (a path in the source tree, where the tests run)
 * is `md`, and `prunelab <query>` prints the same text: the pages the
 * hidden queries write (config-keys, onnx-ops). */
void pltest_generated_doc(const char *doc, const char *query, const char *md);

/* The `ref` backend, instantiated once per process (seed 1, one thread). */
pl_instance *pltest_ref_backend(void);
void pltest_bind_ref(struct pl_model *m);

/* The `synthetic` dataset (seed 3, 2 classes, 8 test images) of c×h×w
 * images with `count` training examples, its training split opened into
 * *train; asserts on error. Close with pl_data_close(train), then
 * pl_instance_free() the returned instance. */
struct pl_data;
pl_instance *pltest_synthetic_train(int c, int h, int w, int count, struct pl_data *train);

/* conv1 (6 filters 3x3, pad 1), relu, maxpool 2, flatten, fc1 (12), relu,
 * fc2 (4): a model that trains in milliseconds on 8x8 synthetic images. */
#define PLTEST_TINY_YAML                                                   \
    "name: tiny\n"                                                         \
    "input: [1, 8, 8]\n"                                                   \
    "classes: 4\n"                                                         \
    "layers:\n"                                                            \
    "  - {name: conv1, type: conv2d, out: 6, kernel: 3, padding: 1}\n"     \
    "  - {type: relu}\n"                                                   \
    "  - {type: maxpool2d, kernel: 2}\n"                                   \
    "  - {type: flatten}\n"                                                \
    "  - {name: fc1, type: linear, out: 12}\n"                             \
    "  - {type: relu}\n"                                                   \
    "  - {name: fc2, type: linear, out: 4}\n"

#endif
