/* fuzz_model_util.h — fuzz_util.h plus the helper for harnesses that build
 * a model (includes model.h itself, so include order does not matter). */
#ifndef PL_FUZZ_MODEL_UTIL_H
#define PL_FUZZ_MODEL_UTIL_H

#include "fuzz_util.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>

/* What `prunelab validate` does with a model once built: count it (the
 * counts must be possible, else `harness` aborts as a finding), print it (to
 * /dev/null) and free it. */
static inline void pl_fuzz_count_print(const char *harness, pl_model *m)
{
    static FILE *devnull;
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        abort();
    pl_counts c;
    pl_model_count(m, &c);
    if (c.params < 0 || c.macs < 0 || c.nonzero_params > c.params) {
        fprintf(stderr, "%s: impossible counts: params %lld, nonzero %lld, macs %lld\n", harness,
                (long long)c.params, (long long)c.nonzero_params, (long long)c.macs);
        abort();
    }
    pl_model_print(m, devnull);
    pl_model_free(m);
}

#endif
