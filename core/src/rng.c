#include "rng.h"

#include <math.h>
#include <string.h>

uint64_t pl_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pl_rng_seed(pl_rng *r, uint64_t seed, const char *stream)
{
    uint64_t x = seed ^ pl_fnv1a(14695981039346656037ull, stream ? stream : "", stream ? strlen(stream) : 0);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pl_rng_u64(pl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double pl_rng_uniform(pl_rng *r) { return (double)(pl_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t pl_rng_below(pl_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t lim = -n % n; /* 2^64 mod n */
    for (;;) {
        uint64_t x = pl_rng_u64(r);
        if (x >= lim)
            return x % n;
    }
}

double pl_rng_normal(pl_rng *r)
{
    double u1 = pl_rng_uniform(r), u2 = pl_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
