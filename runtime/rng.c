/* rng.c — a seeded, reproducible generator: xoshiro256** seeded through
 * splitmix64, with uniform and normal draws. Small enough to copy into an
 * exported sampler so that a seed means the same z everywhere. */
#include "genc_runtime.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void genc_rng_seed(GencRng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t genc_rng_next(GencRng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float genc_rng_uniform(GencRng *rng) { return (float)(genc_rng_next(rng) >> 40) * 0x1.0p-24f; }

void genc_rng_fill_uniform(GencRng *rng, float *out, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * genc_rng_uniform(rng);
}

void genc_rng_fill_normal(GencRng *rng, float *out, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        /* 1 - u is in (0, 1], so the log is finite. */
        double u1 = 1.0 - (double)(genc_rng_next(rng) >> 11) * 0x1.0p-53;
        double u2 = (double)(genc_rng_next(rng) >> 11) * 0x1.0p-53;
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        out[i] = (float)(r * cos(a));
        if (i + 1 < n) out[i + 1] = (float)(r * sin(a));
    }
}
