/*
 * lsh_merge.h — fold removed near-duplicate units into their kept twins.
 *
 * The lsh criterion only scores: the host removes the low-scored
 * duplicates by surgery, which drops their contribution to the next layer.
 * Merging keeps it instead. If unit u's incoming weights and bias are a
 * non-negative multiple of its twin k's, [w_u, b_u] = c·[w_k, b_k] with
 * c >= 0, then through a positively homogeneous activation (ReLU, identity,
 * max-pooling) its activation is a_u = c·a_k, and
 *
 *     W_next[:, u]·a_u + W_next[:, k]·a_k = (W_next[:, k] + c·W_next[:, u])·a_k,
 *
 * so adding c times u's outgoing weights to k's and then removing u leaves
 * the network's output unchanged (up to float rounding). For near- rather
 * than exact duplicates, c is the least-squares fit of [w_u, b_u] onto
 * [w_k, b_k] and the merge is an approximation. A batchnorm between the
 * layers breaks the argument (it is affine per channel, not homogeneous).
 *
 * Pure and header-only: no host, no allocation, no globals. The plugin ABI
 * has no merge slot yet, so nothing in prunelab calls this; the tests use
 * it to show the property (tests/plugins/criteria/test_lsh.c).
 *
 *     int64_t twin[4] = {-1, 0, -1, -1};   // unit 1 duplicates unit 0
 *     pl_lsh_merge_outgoing(fc1_w, fc1_b, 4, in, twin, fc2_w, out, 4, 1);
 *     // then remove unit 1 (pl_model_remove_units with keep = {1,0,1,1})
 */
#ifndef PL_LSH_MERGE_H
#define PL_LSH_MERGE_H

#include <prunelab/plugin.h>

/*
 * in_w   [units][in_size], the merged layer's incoming weights (read only)
 * in_b   [units] or NULL, its biases (part of the fitted vector)
 * twin   [units]: -1 for a unit that stays; for a unit to be removed, the
 *        index of its kept twin (which must itself stay, with a non-zero
 *        weight vector)
 * out_w  the consumer's weight: n_rows rows of row_stride floats; unit u
 *        owns the `block` values at out_w[r*row_stride + u*block + j]:
 *          linear → linear            n_rows = out, row_stride = units,    block = 1
 *          conv → flatten → linear    n_rows = out, row_stride = units*HW, block = H*W
 *          conv → conv                n_rows = cout, row_stride = units*kh*kw, block = kh*kw
 * For each removed u with twin k:
 *     c = <[w_u,b_u], [w_k,b_k]> / ‖[w_k,b_k]‖²
 *     out_w[r][k-block] += c · out_w[r][u-block];  out_w[r][u-block] = 0
 * Returns PL_OK, or PL_EINVAL for a bad argument or twin map, in which case
 * out_w is untouched.
 */
static inline pl_status pl_lsh_merge_outgoing(const float *in_w, const float *in_b, int64_t units,
                                              int64_t in_size, const int64_t *twin, float *out_w,
                                              int64_t n_rows, int64_t row_stride, int64_t block)
{
    if (!in_w || !twin || !out_w || units <= 0 || in_size <= 0 || n_rows <= 0 || block <= 0 ||
        row_stride < units * block)
        return PL_EINVAL;
    for (int64_t u = 0; u < units; u++) {
        const int64_t k = twin[u];
        if (k == -1)
            continue;
        if (k < 0 || k >= units || k == u || twin[k] != -1)
            return PL_EINVAL;
        double kk = in_b ? (double)in_b[k] * in_b[k] : 0.0;
        for (int64_t i = 0; i < in_size; i++)
            kk += (double)in_w[k * in_size + i] * in_w[k * in_size + i];
        if (!(kk > 0.0))
            return PL_EINVAL;
    }
    for (int64_t u = 0; u < units; u++) {
        const int64_t k = twin[u];
        if (k == -1)
            continue;
        double uk = in_b ? (double)in_b[u] * in_b[k] : 0.0;
        double kk = in_b ? (double)in_b[k] * in_b[k] : 0.0;
        for (int64_t i = 0; i < in_size; i++) {
            uk += (double)in_w[u * in_size + i] * in_w[k * in_size + i];
            kk += (double)in_w[k * in_size + i] * in_w[k * in_size + i];
        }
        const double c = uk / kk;
        for (int64_t r = 0; r < n_rows; r++) {
            float *row = out_w + r * row_stride;
            for (int64_t j = 0; j < block; j++) {
                row[k * block + j] = (float)((double)row[k * block + j] + c * row[u * block + j]);
                row[u * block + j] = 0.0f;
            }
        }
    }
    return PL_OK;
}

#endif /* PL_LSH_MERGE_H */
