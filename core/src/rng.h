/*
 * rng.h — the one random-number generator of prunelab: xoshiro256**,
 * seeded through splitmix64 from (seed, stream name), so every random stream
 * of a run (init, shuffling, dropout, random criterion, ...) derives from the
 * run's seed alone and streams never overlap by accident.
 */
#ifndef PL_RNG_H
#define PL_RNG_H

#include "prunelab/plugin.h"

void pl_rng_seed(pl_rng *r, uint64_t seed, const char *stream);
uint64_t pl_rng_u64(pl_rng *r);
double pl_rng_uniform(pl_rng *r);            /* [0,1), 53 bits */
uint64_t pl_rng_below(pl_rng *r, uint64_t n); /* [0,n), unbiased */
double pl_rng_normal(pl_rng *r);             /* standard normal (Box-Muller) */
/* FNV-1a 64-bit over bytes, chainable with h = 14695981039346656037. */
uint64_t pl_fnv1a(uint64_t h, const void *data, size_t n);

#endif
