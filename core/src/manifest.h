/*
 * manifest.h — the run manifest: everything needed to say what produced a
 * result, stored in each run record (DIR/runs/<run_id>.json, "manifest").
 *
 * Flat "key" -> "value" strings, in the order added:
 *
 *     prunelab_version  git describe of the source at build time
 *     abi               plugin ABI major.minor of the host
 *     compiler, flags   the host's compiler and C flags (build type included)
 *     cpu, cpu_features /proc/cpuinfo's model name; the x86 features the
 *                       simd backend chooses between (avx512 avx2 fma)
 *     isa               the backend's instruction set: its `isa` parameter,
 *                       resolved like the simd backend does for `auto`
 *     threads           --threads
 *     start, end        UTC, ISO 8601, of this run
 *     config            the resolved experiment (pl_experiment_dump)
 *     identity          what the run read (identity.h): model content,
 *                       dataset checksums, plugin names, versions, hashes
 *     dataset.train, dataset.test   the split checksums
 *     plugin.<kind>     "<path> <version> <sha256:...>" per plugin used
 *
 *     pl_manifest_build(&r, reg, x, threads, t0, t1, &err);
 *     const char *v = pl_manifest_get(&r, "isa");   // NULL if absent
 */
#ifndef PL_MANIFEST_H
#define PL_MANIFEST_H

#include "config.h"
#include "registry.h"
#include "result.h"

#include <time.h>

/* Replaces r's manifest with the one of run x (started/ended at the given
 * wall-clock times). PL_ENOMEM is the only failure. */
pl_status pl_manifest_build(pl_run_result *r, pl_registry *reg, const pl_experiment *x, int threads,
                            time_t start, time_t end, pl_error *err);
/* Appends key=value (copies both); PL_ENOMEM on failure. */
pl_status pl_manifest_add(pl_run_result *r, const char *key, const char *value);
/* The value of key, or NULL; borrowed from r. */
const char *pl_manifest_get(const pl_run_result *r, const char *key);
/* The "## Provenance" footnote of results.md: build, machine, data and
 * plugins of the runs (distinct values); nothing when no run has a manifest. */
void pl_manifest_md(pl__buf *b, const pl_run_result *const *runs, size_t n);
/* Frees r's manifest (pl_run_result_free calls it). */
void pl_manifest_free(pl_run_result *r);

#endif
