/*
 * pltest_kernels.h — what the backend kernel suites share
 * (tests/plugins/backends/): opening a backend at a thread count and
 * instruction set, a small deterministic random stream, output buffers
 * between guard words, and the simd-against-ref closeness check.
 *
 *     be b;
 *     if (!be_try(&b, "simd", 2, "avx2")) return;    // CPU lacks AVX2
 *     float *y = galloc(n);                          // n words between guards
 *     b.ops->relu_forward(b.st, x, y, n);
 *     gcheck(y, n, "relu");                          // guards untouched
 *     close_enough(yref, y, n, TOL, "relu");
 *     gfree(y); be_close(&b);
 *
 * Tolerance (TOL): max|simd - ref| <= 1e-4 * (1 + max|ref|) per tensor;
 * the suites' header comments explain why it holds.
 */
#ifndef PLTEST_KERNELS_H
#define PLTEST_KERNELS_H

#include "pltest.h"

#include <stddef.h>
#include <stdint.h>

typedef struct be {
    pl_instance *in;
    const pl_backend_ops *ops;
    void *st;
} be;

/* Opens backend `name` at `threads` (isa may be NULL: the best one).
 * Returns 0 when this CPU lacks the isa; asserts on any other failure. */
int be_try(be *b, const char *name, int threads, const char *isa);
be be_open(const char *name, int threads); /* asserts */
void be_close(be *b);

/* The simd backend's instruction sets, best first. */
extern const char *const isas[];
#define N_ISAS 3

/* xorshift stream: rng_reset(seed), urand() in [0, 1), frand() in [-1, 1) */
void rng_reset(uint64_t seed);
double urand(void);
float frand(void);
float *rnd(size_t n); /* n values of frand(), malloc'ed */

/* Output buffers of n 32-bit words between two guards of GUARD sentinel
 * words (a quiet NaN no kernel produces). gfill refills n words with the
 * sentinel, so an element a kernel does not write fails close_enough's
 * finiteness check; gcheck asserts both guards are untouched. */
#define GUARD 64
#define SENTINEL 0x7fc0dea1u
void *galloc(size_t n);
void gfill(void *p, size_t n);
void gcheck(const void *p, size_t n, const char *what);
void gfree(void *p);

/* Asserts every got[i] is finite and max|ref - got| <= tol * (1 + max|ref|). */
void close_enough(const float *ref, const float *got, size_t n, double tol, const char *what);
#define TOL 1e-4

#endif
