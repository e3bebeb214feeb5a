/*
 * share_path.h — bundled models and recipes found by name.
 *
 * `model: resnet20` (a bare name: no '/', no .yaml) and `prunelab run
 * seed` are looked up on a search path: the source tree's configs/models
 * (experiments/) when prunelab runs from its build tree, then the installed
 * share folder <exe dir>/../share/prunelab/models (experiments/). A
 * relative path under configs/models/ (experiments/) that does not exist in
 * the working directory is looked up by its file name the same way, so a
 * bundled recipe runs from any folder. Anything else is used as written.
 */
#ifndef PL_SHARE_PATH_H
#define PL_SHARE_PATH_H

#include "error.h"

#include <stddef.h>

typedef enum pl_share_kind { PL_SHARE_MODELS = 0, PL_SHARE_EXPERIMENTS = 1 } pl_share_kind;

/* Writes the file to open for `name` into out. A bare name that is not
 * found is PL_ENOTFOUND naming the directories searched and the names
 * available there; everything else is PL_OK (a missing file is reported
 * by whoever opens it). */
pl_status pl_share_resolve(pl_share_kind kind, const char *name, char *out, size_t cap, pl_error *err);

/* The search directories (existing or not), for messages and `validate`;
 * returns how many (at most max). */
int pl_share_dirs(pl_share_kind kind, char dirs[][4096], int max);

#endif
