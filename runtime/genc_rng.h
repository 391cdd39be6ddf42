/* genc_rng.h — the seeded generator behind every random draw: xoshiro256**
 * seeded through splitmix64, uniform and normal (Box-Muller) draws. Static so
 * that an exported sampler can carry its own copy and draw, from a seed, the
 * same z as the runtime. Plain C99; compiles as C++ too. */
#ifndef GENC_RNG_H
#define GENC_RNG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} GencRng;

static inline uint64_t genc_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void genc_rng_seed(GencRng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++) rng->s[i] = genc_splitmix64(&seed);
}

static inline uint64_t genc_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t genc_rng_next(GencRng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = genc_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = genc_rotl(s[3], 45);
    return result;
}

/* [0, 1), 24 bits */
static inline float genc_rng_uniform(GencRng *rng) { return (float)(genc_rng_next(rng) >> 40) * (1.0f / 16777216.0f); }

static inline void genc_rng_fill_uniform(GencRng *rng, float *out, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * genc_rng_uniform(rng);
}

/* Box-Muller: the normal out[0] and, when `both`, out[1] from two successive draws */
static inline void genc_normal_pair(uint64_t draw1, uint64_t draw2, float *out, int both)
{
    /* 1 - u is in (0, 1], so the log is finite. */
    double u1 = 1.0 - (double)(draw1 >> 11) * (1.0 / 9007199254740992.0);
    double u2 = (double)(draw2 >> 11) * (1.0 / 9007199254740992.0);
    double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
    out[0] = (float)(r * cos(a));
    if (both) out[1] = (float)(r * sin(a));
}

/* In pairs: n normals use n rounded up to even draws. */
static inline void genc_rng_fill_normal(GencRng *rng, float *out, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        uint64_t draw1 = genc_rng_next(rng);
        genc_normal_pair(draw1, genc_rng_next(rng), out + i, i + 1 < n);
    }
}

#endif
