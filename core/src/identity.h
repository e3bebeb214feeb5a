/*
 * identity.h — what a run is, from what it reads (DESIGN "Run identity").
 *
 * A run's id and its baseline's cache key hash the resolved config *and*
 * the content behind its names: the model file's parsed spec serialised
 * canonically (never its path), the dataset's checksums (both splits, as the
 * dataset plugin reports them) and each plugin's name, version and file
 * hash. Editing a model, replacing data or rebuilding a plugin therefore
 * never reuses a stale record or baseline.
 *
 *     pl_identity *id = pl_identity_new(reg);
 *     for each run x:
 *         if (pl_identity_apply(id, x, &err)) ...   // sets x->identity, x->run_id
 *         pl_identity_borrow_data(id, x, &train, &test);   // the splits it opened
 *     pl_identity_free(id);
 *
 * Opening a dataset to learn its checksums is the expensive part, so
 * checksums are remembered per dataset configuration for the life of the
 * pl_identity, and the splits opened last stay open for the run to borrow.
 */
#ifndef PL_IDENTITY_H
#define PL_IDENTITY_H

#include "checkpoint.h"
#include "config.h"
#include "registry.h"
#include "train.h"

typedef struct pl_identity pl_identity;

pl_identity *pl_identity_new(pl_registry *reg); /* NULL when out of memory */
void pl_identity_free(pl_identity *id);

/* Computes x's identity lines (see pl_experiment.identity) and sets them
 * with pl_experiment_set_identity, which recomputes x->run_id. Errors are
 * those of loading the model file, finding the plugins and opening the
 * dataset, each naming its file. */
pl_status pl_identity_apply(pl_identity *id, pl_experiment *x, pl_error *err);

/* The splits pl_identity_apply opened for x, if they are still open: fills
 * *train and *test (borrowed: valid until the next apply or free; never
 * close them) and returns 1; else 0. */
int pl_identity_borrow_data(pl_identity *id, const pl_experiment *x, pl_data *train, pl_data *test);

/* Canonical text of a model spec (every hyper-parameter, defaults filled,
 * no positions or path); caller frees. NULL when out of memory. */
char *pl_model_spec_canonical(const pl_model_spec *spec);

/* Checks that a loaded checkpoint `got` is the model `spec` describes before
 * training (same name, input, classes, layer names, types, hyper-parameters
 * and shapes, nothing pruned) and that every parameter and statistic is
 * finite. PL_EFORMAT names `path` and the first difference. */
pl_status pl_identity_check_checkpoint(const char *path, const pl_model *got, const pl_model_spec *spec,
                                       pl_error *err);

/* Loads the model file x names (a path, or a bundled model's name:
 * share_path.h), with errors that name the experiment file. */
pl_status pl__experiment_model(const pl_experiment *x, pl_model_spec **spec, pl_error *err);

/* "sha256:<64 hex>" of a file's bytes (PL_EIO naming it on failure). */
pl_status pl__file_sha256(const char *path, char out[72], pl_error *err);

#endif
