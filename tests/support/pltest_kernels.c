/* pltest_kernels.c — shared helpers of the backend kernel suites (pltest_kernels.h). */
#include "pltest_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int be_try(be *b, const char *name, int threads, const char *isa)
{
    const pl_plugin *p;
    pl_error err;
    char kv0[64];
    const char *kv[2] = {NULL, NULL};
    if (isa) {
        snprintf(kv0, sizeof kv0, "isa=%s", isa);
        kv[0] = kv0;
    }
    cr_assert_eq(pl_registry_find(pltest_registry(), PL_KIND_BACKEND, name, &p, &err), PL_OK, "%s", err.msg);
    pl_status st = pl_instance_new_kv(p, kv, 1, threads, &b->in, &err);
    if (st == PL_EUNSUPPORTED)
        return 0;
    cr_assert_eq(st, PL_OK, "%s", err.msg);
    b->ops = pl_instance_ops(b->in);
    b->st = pl_instance_state(b->in);
    return 1;
}

be be_open(const char *name, int threads)
{
    be b;
    cr_assert(be_try(&b, name, threads, NULL));
    return b;
}

void be_close(be *b)
{
    pl_instance_free(b->in);
}

const char *const isas[N_ISAS] = {"avx512", "avx2", "base"};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

void rng_reset(uint64_t seed)
{
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
}

double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

float frand(void)
{
    return (float)(2.0 * urand() - 1.0);
}

float *rnd(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    cr_assert(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

void gfill(void *p, size_t n)
{
    uint32_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = SENTINEL;
}

void *galloc(size_t n)
{
    uint32_t *b = malloc(sizeof(uint32_t) * (n + 2 * GUARD));
    cr_assert(b);
    gfill(b, n + 2 * GUARD);
    return b + GUARD;
}

void gcheck(const void *p, size_t n, const char *what)
{
    const uint32_t *b = (const uint32_t *)p - GUARD;
    for (size_t i = 0; i < GUARD; i++) {
        cr_assert_eq(b[i], SENTINEL, "%s: guard before the buffer overwritten at -%zu", what, GUARD - i);
        cr_assert_eq(b[GUARD + n + i], SENTINEL, "%s: guard after the buffer overwritten at +%zu", what, i);
    }
}

void gfree(void *p)
{
    if (p)
        free((uint32_t *)p - GUARD);
}

void close_enough(const float *ref, const float *got, size_t n, double tol, const char *what)
{
    double mref = 0, md = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(isfinite(got[i]), "%s: element %zu is %g (not written?)", what, i, got[i]);
        if (fabs(ref[i]) > mref)
            mref = fabs(ref[i]);
        if (fabs((double)ref[i] - got[i]) > md) {
            md = fabs((double)ref[i] - got[i]);
            at = i;
        }
    }
    cr_assert(md <= tol * (1 + mref), "%s: max diff %g at %zu (ref %g, got %g), max|ref| %g", what, md, at,
              n ? ref[at] : 0.0, n ? got[at] : 0.0, mref);
}
