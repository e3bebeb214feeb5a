/* model_csr.c — the CSR copy of a pruned linear layer's weights that
 * evaluation runs from (the backend's linear_forward_csr), built on demand
 * and rebuilt when the weights change. */
#include "backend.h"
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- sparse linear layers in evaluation (ABI 1.1 linear_forward_csr) ------------------

   A linear layer whose mask prunes at least PL_CSR_MIN_SPARSITY of its
   weights is evaluated from a CSR copy of its nonzero weights, when the
   backend offers linear_forward_csr and the layer has at least
   PL_CSR_MIN_WEIGHTS weights. The choice depends on shapes and sparsity
   only. The threshold comes from timing simd's two kernels on LeNet-300-100
   shapes in batches of 1000 (bench/README.md): the sparse one wins from
   about PL_CSR_MIN_SPARSITY on.

   The copy is only used in PL_MODE_EVAL and is rebuilt whenever the weights
   differ from the ones it was made from (memcmp against a saved copy, once
   per forward of a whole batch: a small fraction of the sparse product it
   guards). A counter bumped by training steps would miss weights changed
   outside training: pruning zeroes weights between two evaluations. */
#define PL_CSR_MIN_SPARSITY 0.6
#define PL_CSR_MIN_WEIGHTS 4096

typedef struct pl__csr_cache {
    float *w;          /* the weights it was built from [out][in] */
    int64_t nw;
    int64_t *row_ptr;
    int32_t *col_idx;
    float *values;
    pl_csr csr;
} pl__csr_cache;

void pl__csr_free(pl_layer *l)
{
    pl__csr_cache *c = l->csr;
    if (!c)
        return;
    free(c->w);
    free(c->row_ptr);
    free(c->col_idx);
    free(c->values);
    free(c);
    l->csr = NULL;
}

/* The CSR form of l's weights for this evaluation, or NULL for the dense
 * kernel (not sparse enough, no backend support, or out of memory). */
const pl_csr *pl__csr_for(pl_model *m, pl_layer *l)
{
    if (!l->mask || !pl_backend_has(m->be, PL_SLOT_LINEAR_CSR) || l->nw < PL_CSR_MIN_WEIGHTS)
        return NULL;
    pl__csr_cache *c = l->csr;
    if (c && c->nw == l->nw && c->csr.rows == l->out_c && c->csr.cols == l->in_c &&
        !memcmp(c->w, l->w, (size_t)l->nw * sizeof(float)))
        return &c->csr;
    pl__csr_free(l);
    int64_t pruned = 0, nnz = 0;
    for (int64_t i = 0; i < l->nw; i++) {
        pruned += l->mask[i] == 0.0f;
        nnz += l->w[i] != 0.0f;
    }
    if ((double)pruned < PL_CSR_MIN_SPARSITY * (double)l->nw)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nw = l->nw;
    c->w = pl__fdup(l->w, l->nw);
    c->row_ptr = pl__xcalloc(l->out_c + 1, sizeof(int64_t));
    c->col_idx = pl__xcalloc(nnz ? nnz : 1, sizeof(int32_t));
    c->values = pl__falloc(nnz ? nnz : 1);
    l->csr = c;
    if (!c->w || !c->row_ptr || !c->col_idx || !c->values) {
        pl__csr_free(l);
        return NULL;
    }
    int64_t e = 0;
    for (int o = 0; o < l->out_c; o++) {
        const float *wr = l->w + (int64_t)o * l->in_c;
        for (int i = 0; i < l->in_c; i++)
            if (wr[i] != 0.0f) {
                c->col_idx[e] = i;
                c->values[e++] = wr[i];
            }
        c->row_ptr[o + 1] = e;
    }
    c->csr = (pl_csr){.rows = l->out_c, .cols = l->in_c, .nnz = nnz, .row_ptr = c->row_ptr,
                      .col_idx = c->col_idx, .values = c->values};
    return &c->csr;
}
