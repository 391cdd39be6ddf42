/* genc_rng.h — the seeded generator behind every random draw: xoshiro256**
 * seeded through splitmix64, uniform and normal (Box-Muller) draws. Static so
 * that an exported sampler can carry its own copy and draw, from a seed, the
 * same z as the runtime. Plain C99; compiles as C++ too. */
#ifndef GENC_RNG_H
#define GENC_RNG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* Box-Muller on one draw: u1 from its top 24 bits, u2 from the next 24, as
 * float arithmetic that vectorises (libm's log, cos and sin cost a call per
 * value: they took 11 % of an MLP GAN iteration). Every product that meets a
 * sum goes through fmaf, which rounds once on every machine, so the values
 * are the same bits whatever the compiler contracts, with or without FMA
 * hardware: an exported sampler draws the runtime's z exactly. Within 2e-7 of
 * the double-precision Box-Muller of the same u1, u2 (test_float_kernels). */
static inline void genc_normal_pair(uint64_t draw, float out[2])
{
    /* ln u1 = ln n − 24 ln 2, with u1 = n·2^-24 in (0, 1] and n = m·2^e, m in [√½, √2) */
    int32_t n = (int32_t)(16777216 - (draw >> 40)), bits;
    float nf = (float)n, m;
    memcpy(&bits, &nf, sizeof bits);
    int32_t e = (bits >> 23) - 127, mantissa_bits = (bits & 0x007fffff) | 0x3f800000;
    memcpy(&m, &mantissa_bits, sizeof m);
    int above = m > 1.41421356f;
    m = above ? 0.5f * m : m;
    e += above;
    /* ln m = 2 atanh(s), s = (m − 1)/(m + 1), |s| < 0.172: the series to s^11 */
    float f = m - 1, s = f / (2 + f), z = s * s, twice_s = 2 * s;
    float p = fmaf(z, 1.0f / 11, 1.0f / 9);
    p = fmaf(z, p, 1.0f / 7);
    p = fmaf(z, p, 1.0f / 5);
    p = fmaf(z, p, 1.0f / 3);
    float ln_u1 = fmaf((float)(e - 24), 0.693147181f, fmaf(twice_s, z * p, twice_s));
    float r = sqrtf(-2 * ln_u1);
    /* 2π u2 = quadrant·π/2 ± x with x in [0, π/4]: in odd octants x is
     * measured back from the next quadrant (exactly, in integers), so that
     * x and the series stay small. Taylor series of sin to x^11, cos to x^10. */
    uint32_t u2_bits = (uint32_t)(draw >> 16) & 0xffffff, octant = u2_bits >> 21, step = u2_bits & 0x1fffff;
    uint32_t quadrant = ((octant + 1) >> 1) & 3, odd = octant & 1;
    uint32_t steps = step + odd * (0x200000 - 2 * step); /* odd ? 0x200000 − step : step, without a branch */
    float x = (float)steps * (0.785398163f / 2097152), x2 = x * x;
    float ps = fmaf(x2, -1.0f / 39916800, 1.0f / 362880);
    ps = fmaf(x2, ps, -1.0f / 5040);
    ps = fmaf(x2, ps, 1.0f / 120);
    ps = fmaf(x2, ps, -1.0f / 6);
    float sine = fmaf(x, x2 * ps, x);
    float pc = fmaf(x2, -1.0f / 3628800, 1.0f / 40320);
    pc = fmaf(x2, pc, -1.0f / 720);
    pc = fmaf(x2, pc, 1.0f / 24);
    pc = fmaf(x2, pc, -0.5f);
    float cosine = fmaf(x2, pc, 1.0f);
    sine = odd ? -sine : sine;
    /* cos and sin of quadrant·π/2 + (±x), as selects and exact sign products
     * rather than branches, so that the loop vectorises */
    float c = quadrant & 1 ? sine : cosine, sn = quadrant & 1 ? cosine : sine;
    c *= quadrant == 1 || quadrant == 2 ? -1.0f : 1.0f;
    sn *= quadrant >= 2 ? -1.0f : 1.0f;
    out[0] = r * c;
    out[1] = r * sn;
}

/* n normals from (n + 1) / 2 draws. The draws are serial; their transform
 * runs GENC_NORMAL_CHUNK pairs at a time in a loop that vectorises. */
enum { GENC_NORMAL_CHUNK = 64 };
static inline void genc_rng_fill_normal(GencRng *rng, float *out, size_t n)
{
    uint64_t draws[GENC_NORMAL_CHUNK];
    float pairs[2 * GENC_NORMAL_CHUNK];
    for (size_t done = 0; done < n; done += 2 * GENC_NORMAL_CHUNK) {
        size_t count = n - done < 2 * GENC_NORMAL_CHUNK ? n - done : 2 * GENC_NORMAL_CHUNK;
        size_t draw_count = (count + 1) / 2;
        for (size_t k = 0; k < draw_count; k++) draws[k] = genc_rng_next(rng);
        for (size_t k = 0; k < draw_count; k++) genc_normal_pair(draws[k], pairs + 2 * k);
        memcpy(out + done, pairs, count * sizeof(float));
    }
}

#endif
