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

#endif
