/*
 * plugin_check.h — `prunelab plugin-check NAME [--kind K]`: one plugin
 * against the contract of its kind, as a pass/fail table.
 *
 * Every kind: the descriptor (validated by the registry at load, reported
 * as the `abi` row) and the parameter spec, then an instance made from the
 * defaults (`params`). Then per kind:
 *   criterion  scores a standard conv layer (32x16x3x3) at channel and
 *              weight granularity and a linear layer (64x128) at neuron and
 *              weight granularity, into outputs fenced by sentinel guards:
 *              count, finiteness, no write outside the output, inputs left
 *              alone; masked weights; two instances with one seed agree bit
 *              for bit; all-zero and one-unit layers neither fail nor give
 *              NaN; median time of 5 on the standard layers. PL_NEEDS_GRAD
 *              criteria get 2 synthetic gradient batches.
 *   schedule   plans for several targets: 1..64 steps, progress in (0,1],
 *              non-decreasing, last exactly 1; valid scope/floor/cap; no
 *              write past the plan; deterministic.
 *   dataset    opens each split with the default parameters (a split that
 *              cannot be opened is skipped, not failed), sane info, reads
 *              first/middle/last examples into fenced buffers (finite,
 *              labels in range, a repeated index reads the same example),
 *              deterministic across instances.
 *   backend    conv2d and linear, forward and both backward kernels, on odd
 *              shapes against the `ref` backend (and forward against a direct
 *              double-precision sum), error relative to the output's largest
 *              magnitude <= 1e-4, fenced outputs, results independent of the
 *              thread count.
 *
 * The checks run in a child process, so a plugin that crashes, hangs (60 s
 * per check) or calls exit() fails the check it was in instead of taking
 * plugin-check down.
 */
#ifndef PL_PLUGIN_CHECK_H
#define PL_PLUGIN_CHECK_H

#include "registry.h"

#include <stdio.h>

/* Parses the --kind value: criterion, schedule, dataset or backend (the
 * plural folder names are accepted too). NULL or "" gives 0 = any kind.
 * PL_ECONFIG for anything else. */
pl_status pl_plugin_check_kind(const char *text, int *kind, pl_error *err);

/* Checks plugin `name` (a plugin name looked up on reg's search path, or a
 * path to a .so file) of kind `kind` (0 = every kind that has a plugin of
 * that name) and prints the table to `out`. Returns PL_OK when the checks
 * ran, with *failed = the number of failed checks (a plugin the registry
 * refuses to load counts as one failed `abi` check); PL_ENOTFOUND when no
 * such plugin exists, PL_ECONFIG for an invalid name, with the message in
 * err. */
pl_status pl_plugin_check(pl_registry *reg, const char *name, int kind, FILE *out, int *failed,
                          pl_error *err);

#endif
