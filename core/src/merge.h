/*
 * merge.h — merging removed units into the units they duplicate, for
 * criteria with the ABI 1.5 merge slot (pl_criterion_ops.merge; the lsh
 * criterion with `merge: true`).
 *
 * If unit u of layer L stands in for its twin k (u's activation ~ c times
 * k's, c >= 0), then the consumer C sees W_C[:, u]·a_u + W_C[:, k]·a_k ~
 * (W_C[:, k] + c·W_C[:, u])·a_k: adding c times u's input columns of C to
 * k's before removing u keeps u's contribution (exactly so when u's
 * incoming weights and bias are c times k's, through a positively
 * homogeneous path). The host merges only over such paths: L's output
 * reaches a single conv2d (not grouped) or linear C through relu, max/avg
 * pooling, dropout and flatten alone. A batchnorm (affine per channel),
 * add or concat, or several readers: the units are only removed.
 *
 *     pl_merge_fold(m, li, drop, twin, coef, &n, &err);  // then surgery removes drop
 */
#ifndef PL_MERGE_H
#define PL_MERGE_H

#include "model.h"

/* The conv2d/linear layer reading layer li's output over a mergeable path,
 * or -1 (see above). */
int pl_merge_consumer(const pl_model *m, int li);

/* For every unit u of layer li with drop[u] set, twin[u] = k >= 0 alive and
 * not dropped, and coef[u] finite and >= 0: C's columns of k += coef[u] ·
 * C's columns of u, then u's are zeroed. *merged = how many units were
 * folded (0 when li has no mergeable consumer; nothing is changed then).
 * PL_EINVAL for a twin index out of range. */
pl_status pl_merge_fold(pl_model *m, int li, const uint8_t *drop, const int64_t *twin, const double *coef,
                        int64_t *merged, pl_error *err);

#endif
