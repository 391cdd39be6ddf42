/* genc_kernels.h — the forward and backward kernels that generated code calls.
 *
 * Layers come in pairs, <op>_forward / <op>_backward. Argument order is
 * outputs, then inputs, then sizes. Gradients carry a d prefix. A backward
 * kernel either sets or adds into an input gradient (the `acc` flag): the
 * first contribution sets it, later ones add, so no gradient needs zeroing.
 * A NULL input gradient is one the step does not need.
 *
 * Everything is static: each generated file gets its own copy, and a test can
 * include this header with GENC_DOUBLE defined to run the same kernels in
 * double precision for finite-difference checks. With GENC_NO_BLAS every
 * product runs in the plain-C GEMM below (exported samplers need only libm).
 * Plain C99 apart from GCC's vector extension where available; compiles as C++. */
#ifndef GENC_KERNELS_H
#define GENC_KERNELS_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifndef GENC_NO_BLAS
#include <cblas.h>
#endif

/* Built with OpenMP (-fopenmp), a convolution's samples and the large
 * products are shared among omp_get_max_threads() threads (BLAS itself then
 * runs one thread per call); without it the pragmas vanish and everything
 * runs on the caller's thread, as in an exported sampler. */
#ifdef _OPENMP
#include <omp.h>
#define GENC_PRAGMA(text) _Pragma(#text)
#define GENC_OMP(directive) GENC_PRAGMA(omp directive)
static inline int genc_thread_num(void) { return omp_get_thread_num(); }
static inline int genc_team(void) { return omp_get_num_threads(); }
static inline int genc_team_size(int most) { int n = omp_get_max_threads(); return n < most ? n : most; }
static inline int genc_in_parallel(void) { return omp_in_parallel(); }
#else
#define GENC_OMP(directive)
static inline int genc_thread_num(void) { return 0; }
static inline int genc_team(void) { return 1; }
static inline int genc_team_size(int most) { (void)most; return 1; }
static inline int genc_in_parallel(void) { return 0; }
#endif

#ifdef GENC_DOUBLE
typedef double genc_real;
#define GENC_GEMM cblas_dgemm
#define GENC_LOG log
#else
typedef float genc_real;
#define GENC_GEMM cblas_sgemm
#define GENC_LOG logf
#endif

#ifdef GENC_DOUBLE
static inline double genc_exp_clamped(double x) { return exp(x); }
static inline double genc_exp_vectorisable(double x) { return exp(x); }
static inline double genc_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static inline double genc_tanh_vectorisable(double x) { return tanh(x); }
static inline double genc_log_vectorisable(double x) { return log(x); }
static inline double genc_log_normal(double x) { return log(x); }
#else
/* e^r for r = c − n·ln 2, n = round(c / ln 2) returned in *n: Cephes'
 * polynomial, the part of e^c before the scaling by 2^n */
static inline float genc_exp_reduced(float c, float *n)
{
    *n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(c / ln 2) */
    float r = c - *n * 0.693359375f + *n * 2.12194440e-4f;           /* c − n·ln 2 in two parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1;
}

/* 2^k as a float, for k in [-126, 127] */
static inline float genc_power_of_two(int32_t k)
{
    int32_t bits = (k + 127) << 23;
    float power;
    memcpy(&power, &bits, sizeof power);
    return power;
}

/* e^c for c in [-104, 89]: genc_exp_reduced times 2^n in two factors, so
 * that a result below FLT_MIN is rounded once into the subnormals and one
 * past FLT_MAX becomes +∞. Within 1 ulp of the correctly rounded value and
 * branch-free, so that loops over it vectorise where expf costs a call per
 * element. */
static inline float genc_exp_polynomial(float c)
{
    float n, e_r = genc_exp_reduced(c, &n);
    int32_t k = (int32_t)n, half = k / 2; /* n in [-150, 128]: both factors' exponents in [-75, 64] */
    return e_r * genc_power_of_two(half) * genc_power_of_two(k - half);
}

/* x clamped to [lo, hi], NaN to lo. Written as the comparisons that maxps
 * and minps make, so that it compiles to those two: nested selects made gcc
 * compute the callers' arithmetic once per case, a sigmoid's division twice. */
static inline float genc_clamp(float x, float lo, float hi)
{
    float c = x > lo ? x : lo;
    return c < hi ? c : hi;
}

/* e^x with x clamped to [-87, 88], for sigmoid and tanh, where the clamp
 * changes nothing and the result is a normal float. NaN is read as -87: the
 * caller chooses NaN after its own arithmetic (genc_sigmoid). A normal
 * result needs one factor of 2^n (n in [-126, 127]), which gives the bits of
 * genc_exp_polynomial's two (checked for every float) and cut a sigmoid's
 * time by a fifth (0.47 -> 0.37 ns an element). */
static inline float genc_exp_clamped_unchecked(float x)
{
    float n, e_r = genc_exp_reduced(genc_clamp(x, -87, 88), &n);
    return e_r * genc_power_of_two((int32_t)n);
}

/* genc_exp_clamped_unchecked, NaN kept */
static inline float genc_exp_clamped(float x) { return x != x ? x : genc_exp_clamped_unchecked(x); }

/* e^x for any x, as expf: 0 below -104, +∞ past ln FLT_MAX, NaN kept */
static inline float genc_exp_vectorisable(float x)
{
    return x != x ? x : genc_exp_polynomial(genc_clamp(x, -104, 89));
}

/* 1 / (1 + e^-x), NaN kept: the NaN is chosen after the division, so that
 * the division is made once */
static inline float genc_sigmoid(float x)
{
    float s = 1 / (1 + genc_exp_clamped_unchecked(-x));
    return x != x ? x : s;
}

/* tanh x, branch-free as e^x is: below |x| = 0.625 Cephes' odd polynomial,
 * above it 1 − 2/(e^2|x| + 1) (past the clamp, 2/(e^2|x| + 1) is far below
 * half an ulp of 1), then x's sign. Within 1 ulp of the correctly rounded
 * value; tanhf, a call per element, is within 2. NaN stays NaN. */
static inline float genc_tanh_vectorisable(float x)
{
    float a = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * a + a, large = 1 - 2 / (genc_exp_clamped(a + a) + 1);
    return copysignf(a >= 0.625f ? large : small, x);
}

/* log x for x = scaled·2^-shift, scaled a normal positive float: Cephes'
 * polynomial on the mantissa in [√½, √2), within 1 ulp of the correctly
 * rounded value and branch-free, so that the losses' loops vectorise where
 * logf costs a call per element. */
static inline float genc_log_scaled(float scaled, int shift)
{
    int32_t bits;
    memcpy(&bits, &scaled, sizeof bits);
    /* x = m·2^e with m in [√½, √2): the offset from √½'s bits carries e, and
     * its mantissa bits put back on √½'s exponent give m. Where a compare
     * and two selects chose between [½, √½) doubled and [√½, 1), the BCE's
     * sum took 0.92 ns a term; now 0.75, with the same bits for every
     * positive normal float (checked for all). Unsigned: x < 0 would
     * overflow a signed subtraction; its result is not used. */
    int32_t offset = (int32_t)((uint32_t)bits - 0x3f3504f3u), e = (offset >> 23) - shift;
    int32_t mantissa_bits = (offset & 0x007fffff) + 0x3f3504f3;
    float m;
    memcpy(&m, &mantissa_bits, sizeof m);
    float f = m - 1, z = f * f, fe = (float)e;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z - 2.12194440e-4f * fe - 0.5f * z;      /* ln 2 in two parts, as for e^x */
    return (f + y) + 0.693359375f * fe;
}

/* log x for x a normal positive float, where the cases below cannot arise */
static inline float genc_log_normal(float x) { return genc_log_scaled(x, 0); }

/* log x for any x: subnormals are scaled by 2^23 first; 0 gives −∞, a
 * negative x or NaN gives NaN, +∞ stays. */
static inline float genc_log_vectorisable(float x)
{
    int subnormal = x < FLT_MIN;
    float r = genc_log_scaled(subnormal ? x * 8388608.0f : x, subnormal ? 23 : 0); /* 2^23 */
    float special = x < 0 ? NAN : x; /* what the polynomial does not cover: x ≤ 0, +∞, NaN */
    special = x == 0 ? -INFINITY : special;
    int finite_positive = (x > 0) & (x <= FLT_MAX); /* & rather than &&: no branch, the loop vectorises */
    return finite_positive ? r : special;
}
#endif

/* total = Σ over i < n of the double `term`, an expression of i: for the
 * losses and sums. i < n is cut into GENC_SUM_PARTS ranges of whole lane
 * groups; in each, term i goes to lane i mod GENC_LANES; the lanes, then the
 * parts, are added in order. The order is fixed, so the result depends on
 * neither the machine nor the thread count, and the loops vectorise, where
 * one running double sum is a chain of dependent adds. GENC_COSTLY_LANE_SUM,
 * for terms that take a log or an exp, runs the parts on threads from
 * GENC_PARALLEL_SUM terms on (a BCE's two logs per term took 11 % of a VAE
 * iteration at 2 threads, on one); cheap terms do not repay the fork. */
enum { GENC_LANES = 16, GENC_SUM_PARTS = 4, GENC_PARALLEL_SUM = 16384 };
/* lanes[i mod GENC_LANES] += term for lo ≤ i < hi (lo a whole number of lane
 * groups), and unusual[i mod GENC_LANES] |= !usual */
#define GENC_LANE_SUM_RANGE(lanes, lo, hi, i, unusual, usual, term)                                              \
    do {                                                                                                         \
        size_t genc_base = (lo);                                                                                 \
        for (; genc_base + GENC_LANES <= (hi); genc_base += GENC_LANES)                                          \
            for (int genc_lane = 0; genc_lane < GENC_LANES; genc_lane++) {                                       \
                size_t i = genc_base + (size_t)genc_lane;                                                        \
                (lanes)[genc_lane] += (term);                                                                    \
                (unusual)[genc_lane] |= !(usual);                                                                \
            }                                                                                                    \
        for (int genc_lane = 0; genc_lane < GENC_LANES && genc_base + (size_t)genc_lane < (hi); genc_lane++) {   \
            size_t i = genc_base + (size_t)genc_lane;                                                            \
            (lanes)[genc_lane] += (term);                                                                        \
            (unusual)[genc_lane] |= !(usual);                                                                    \
        }                                                                                                        \
    } while (0)
/* genc_parts[part] = the lane sum of part `part` (terms lo ≤ i < hi): of
 * fast_term if `usual` holds for each i of the part, else of term */
#define GENC_LANE_SUM_PART(part, part_size, n, i, usual, fast_term, term)                                        \
    do {                                                                                                         \
        double genc_lanes[GENC_LANES] = {0};                                                                     \
        int genc_unusual[GENC_LANES] = {0}, genc_any_unusual = 0;                                                \
        size_t genc_lo = (part) * (part_size) < (n) ? (part) * (part_size) : (n);                               \
        size_t genc_hi = genc_lo + (part_size) < (n) ? genc_lo + (part_size) : (n);                             \
        GENC_LANE_SUM_RANGE(genc_lanes, genc_lo, genc_hi, i, genc_unusual, usual, fast_term);                   \
        for (int genc_lane = 0; genc_lane < GENC_LANES; genc_lane++) genc_any_unusual |= genc_unusual[genc_lane]; \
        if (genc_any_unusual) {                                                                                  \
            for (int genc_lane = 0; genc_lane < GENC_LANES; genc_lane++) genc_lanes[genc_lane] = 0;             \
            GENC_LANE_SUM_RANGE(genc_lanes, genc_lo, genc_hi, i, genc_unusual, 1, term);                        \
        }                                                                                                        \
        genc_parts[part] = 0;                                                                                    \
        for (int genc_lane = 0; genc_lane < GENC_LANES; genc_lane++) genc_parts[part] += genc_lanes[genc_lane];  \
    } while (0)

/* for (i < n) body, on threads where `threaded` holds and there is more than
 * one thread to run them and no parallel region around; serially otherwise.
 * A branch rather than an if clause: a team of one must not be started. */
#define GENC_PARALLEL_FOR_IF(threaded, n, i, ...)                                                                \
    do {                                                                                                         \
        size_t genc_count = (size_t)(n);                                                                         \
        if ((threaded) && !genc_in_parallel() && genc_team_size(2) > 1) {                                        \
            GENC_OMP(parallel for schedule(static))                                                              \
            for (size_t i = 0; i < genc_count; i++) { __VA_ARGS__ }                                              \
        } else {                                                                                                 \
            for (size_t i = 0; i < genc_count; i++) { __VA_ARGS__ }                                              \
        }                                                                                                        \
    } while (0)
#define GENC_LANE_SUM_FROM(parallel_from, total, n, i, usual, fast_term, term)                                   \
    do {                                                                                                         \
        double genc_parts[GENC_SUM_PARTS];                                                                       \
        size_t genc_n = (size_t)(n), genc_groups = (genc_n + GENC_LANES - 1) / GENC_LANES;                      \
        size_t genc_part_size = (genc_groups + GENC_SUM_PARTS - 1) / GENC_SUM_PARTS * GENC_LANES;                \
        GENC_PARALLEL_FOR_IF(genc_n >= (parallel_from), GENC_SUM_PARTS, genc_part,                               \
                             GENC_LANE_SUM_PART(genc_part, genc_part_size, genc_n, i, usual, fast_term, term););  \
        (total) = 0;                                                                                             \
        for (int genc_part = 0; genc_part < GENC_SUM_PARTS; genc_part++) (total) += genc_parts[genc_part];      \
    } while (0)
#define GENC_LANE_SUM(total, n, i, term) GENC_LANE_SUM_FROM(SIZE_MAX, total, n, i, 1, term, term)
#define GENC_COSTLY_LANE_SUM(total, n, i, term) GENC_LANE_SUM_FROM(GENC_PARALLEL_SUM, total, n, i, 1, term, term)
/* GENC_COSTLY_LANE_SUM of term, computed as fast_term in each part where
 * `usual` holds for every i */
#define GENC_COSTLY_LANE_SUM_IF_USUAL(total, n, i, usual, fast_term, term)                                        \
    GENC_LANE_SUM_FROM(GENC_PARALLEL_SUM, total, n, i, usual, fast_term, term)

/* GENC_LANE_SUM for a plane of a channel, of any size: below a lane group
 * the lanes would add the terms in order from 0, as this loop does, so the
 * result is the same, without the lanes' setup on each of a dense layer's
 * one-value planes. */
#define GENC_PLANE_SUM(total, n, i, term)                                                                          \
    do {                                                                                                         \
        if ((size_t)(n) < GENC_LANES) {                                                                          \
            (total) = 0;                                                                                         \
            for (size_t i = 0; i < (size_t)(n); i++) (total) += (term);                                          \
        } else {                                                                                                 \
            GENC_LANE_SUM(total, n, i, term);                                                                    \
        }                                                                                                        \
    } while (0)

/* for (i < n) body, on threads from GENC_PARALLEL_SUM elements on: for the
 * losses' gradients, whose inputs the threads' bands of the last layer wrote
 * (serial, the VAE's BCE gradient took 18 us at 2 threads, 7 at 1). */
#define GENC_ELEMENTWISE(n, i, ...) GENC_PARALLEL_FOR_IF((size_t)(n) >= GENC_PARALLEL_SUM, n, i, __VA_ARGS__)

enum { GENC_ACT_IDENTITY, GENC_ACT_RELU, GENC_ACT_LEAKY_RELU, GENC_ACT_SIGMOID, GENC_ACT_TANH };

#define GENC_SET_OR_ADD(dst, acc, value) ((dst) = (acc) ? (dst) + (value) : (value))

static inline genc_real genc_activate(int act, genc_real x, genc_real alpha)
{
    switch (act) {
    case GENC_ACT_RELU: return x > 0 ? x : 0;
    case GENC_ACT_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case GENC_ACT_SIGMOID: return genc_sigmoid(x);
    case GENC_ACT_TANH: return genc_tanh_vectorisable(x);
    default: return x;
    }
}

/* The derivative from the output y alone, so the pre-activation value never
 * needs to be kept (leaky ReLU's alpha is positive, so sign(y) = sign(x)). */
static inline genc_real genc_activation_slope(int act, genc_real y, genc_real alpha)
{
    switch (act) {
    case GENC_ACT_RELU: return y > 0 ? 1 : 0;
    case GENC_ACT_LEAKY_RELU: return y > 0 ? 1 : alpha;
    case GENC_ACT_SIGMOID: return y * (1 - y);
    case GENC_ACT_TANH: return 1 - y * y;
    default: return 1;
    }
}

/* ---- matrix products ---------------------------------------------------------- */

/* C (M,N) = [C +] op(A) · op(B), row-major; op(A) is (M,K), stored (K,M) when
 * trans_a; op(B) is (K,N), stored (N,K) when trans_b.
 *
 * Large products go to BLAS. Small ones (M·N·K up to 8·10⁶) run here: a
 * register-tiled product whose B panels live on the stack, so a training
 * step never touches the heap (OpenBLAS's kernels for products below about
 * 10⁶ call malloc on every call). Up to 8·10⁶ its tiles were as fast as
 * OpenBLAS, within 5 %, or faster, on AVX-512 and on AVX2, B stored (K,N)
 * or (N,K): 64x784x128 on one thread took 81 us against 86 on AVX-512, and
 * 95 against 106 with B stored (N,K); on AVX2, 123 against 126 and 139
 * against 133. */
enum { GENC_GEMM_MR = 4, GENC_GEMM_NR = 16, GENC_GEMM_KC = 256 }; /* the shuffles below assume NR = 16 */
#define GENC_SMALL_GEMM 8000000.0
enum { GENC_LINE_VALUES = 64 / sizeof(genc_real) }; /* a cache line's */

/* Outputs a panel of an input-major dense weight holds (genc_dense_panels) */
enum { GENC_PANEL_WIDTH = 64 };

/* The width of the panel of OC outputs that starts at output p: 64 but for
 * the last panel's rest */
static inline int genc_panel_width(int OC, int p)
{
    return OC - p < GENC_PANEL_WIDTH ? OC - p : GENC_PANEL_WIDTH;
}

/* Where weight[o][c] of a dense layer (OC,C) is stored input-major in panels:
 * outputs [p, p + width) form a (C,width) panel at p·C */
static inline size_t genc_panel_offset(int C, int OC, int c, int o)
{
    int p = o / GENC_PANEL_WIDTH * GENC_PANEL_WIDTH;
    return (size_t)p * C + (size_t)c * genc_panel_width(OC, p) + (size_t)(o - p);
}

#if defined(__GNUC__)
/* weights on a cache line's boundary: a row's vector loads never straddle two */
#define GENC_LINE_ALIGNED __attribute__((aligned(64)))
/* a line wanted soon, fetched into L2 and L1 meanwhile */
#define GENC_PREFETCH(p) __builtin_prefetch((p), 0, 2)
/* a loop nest compiled on its own: inlined into a large step function, its
 * pointers were kept in vector registers and the loop ran 2x slower */
#define GENC_NOINLINE __attribute__((noinline, unused))
/* a body specialised at each call: left to itself, gcc made one copy of
 * genc_activate_run_as for all five activations, with the switch inside its
 * loop (DCGAN's training 15% slower) */
#define GENC_ALWAYS_INLINE __attribute__((always_inline))
/* a short loop left for the vectoriser: at -O3 gcc unrolls it completely
 * first, and its sixteen copies stayed scalar (a sigmoid 4x slower) */
#define GENC_KEEP_LOOP _Pragma("GCC unroll 1")
/* loops over runs of NR values in 64-byte vectors where the target has
 * them: on AVX-512, gcc's tuning splits them in two 256-bit halves (a
 * sigmoid over 784 values 0.42 us, 0.33 in zmm); the products' vector types
 * are 64 bytes wide anyway */
#if defined(__AVX512F__) && !defined(__clang__)
#define GENC_WIDE_LOOPS __attribute__((target("prefer-vector-width=512")))
#else
#define GENC_WIDE_LOOPS
#endif
/* a loop over a row's few vectors unrolled, so that they stay in registers:
 * left to gcc at -O2, they lived on the stack (a 128 -> 784 layer 1.5x slower) */
#define GENC_UNROLL_VECTORS _Pragma("GCC unroll 4")
/* a 16x16 block transpose's loops unrolled, so that its rows live in
 * registers: left rolled, gcc copied each row to the stack in two 32-byte
 * halves and read it back whole, a load that store forwarding cannot serve
 * (all the panels of a 784 -> 128 layer's weight: 18.0 us, unrolled 12.0) */
#define GENC_UNROLL_BLOCK _Pragma("GCC unroll 16")
typedef genc_real genc_gemm_row __attribute__((vector_size(GENC_GEMM_NR * sizeof(genc_real))));
typedef genc_real genc_gemm_half __attribute__((vector_size(GENC_GEMM_NR / 2 * sizeof(genc_real))));
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define GENC_SHUFFLE __builtin_shufflevector
#endif
#endif
#else
#define GENC_LINE_ALIGNED
#define GENC_PREFETCH(p) ((void)(p))
#define GENC_NOINLINE
#define GENC_ALWAYS_INLINE
#define GENC_KEEP_LOOP
#define GENC_UNROLL_VECTORS
#define GENC_UNROLL_BLOCK
#define GENC_WIDE_LOOPS
#endif

#if defined(__GNUC__)
/* The target's own vectors, for the tiles and the row sums: on AVX2 or SSE,
 * gcc keeps 64-byte vectors in memory, and a 64x128x784 product in them took
 * 1307 us on AVX2 where its native vectors take 191 (AVX-512: 190) */
#if defined(__AVX512F__)
#define GENC_NATIVE_BYTES 64
#elif defined(__AVX__)
#define GENC_NATIVE_BYTES 32
#else
#define GENC_NATIVE_BYTES 16
#endif
typedef genc_real genc_native_row __attribute__((vector_size(GENC_NATIVE_BYTES)));
/* A tile row is NR values (1, 2 or 4 native vectors), or two vectors where
 * one holds NR: four rows of one 64-byte vector are four chains of
 * multiply-adds, half what AVX-512's two FMA units at a latency of 4 keep
 * busy (a 64x64x128 product 9.2 us, 7.0 in rows of two). A tile is 8 rows
 * there, 16 chains in 16 of its 32 registers (a 64x64x784 product 43 us in
 * 4 rows, 35 in 8), and MR elsewhere: AVX2's 16 registers held 6 rows of two
 * vectors only by spilling (61 us -> 91). */
enum {
    GENC_NATIVE_LANES = GENC_NATIVE_BYTES / sizeof(genc_real),
    GENC_TILE_VECTORS = GENC_GEMM_NR / GENC_NATIVE_LANES, /* NR values */
    GENC_TILE_ROW_VECTORS = GENC_TILE_VECTORS > 1 ? GENC_TILE_VECTORS : 2,
    GENC_TILE_WIDTH = GENC_TILE_ROW_VECTORS * GENC_NATIVE_LANES,
    GENC_TILE_ROWS = GENC_NATIVE_LANES == 16 ? 8 : (int)GENC_GEMM_MR
};
#define GENC_UNROLL_ROWS _Pragma("GCC unroll 8")
#else
enum { GENC_TILE_VECTORS = 1, GENC_TILE_ROW_VECTORS = 1, GENC_TILE_WIDTH = GENC_GEMM_NR, GENC_TILE_ROWS = (int)GENC_GEMM_MR };
#define GENC_UNROLL_ROWS
#endif

/* c (rows, vectors·lanes) = Σ_k a_r[k·a_step] · b[k·b_step + (0 .. vectors·lanes)]:
 * rows a_r of A read where they lie (contiguous or strided), b a panel or B
 * itself, each row of the tile in `vectors` of the target's own vectors.
 * Every element is one chain of multiply-adds over k, however wide or tall
 * the tile, so its bits do not depend on the tile's shape. */
static inline GENC_ALWAYS_INLINE void genc_gemm_tile_as(genc_real (*c)[GENC_TILE_WIDTH],
                                                        const genc_real *const a[GENC_TILE_ROWS], int a_step,
                                                        const genc_real *b, int b_step, int kc, int rows, int vectors)
{
#if defined(__GNUC__)
    genc_native_row sums[GENC_TILE_ROWS][GENC_TILE_ROW_VECTORS], row, zero = {0};
    GENC_UNROLL_ROWS for (int r = 0; r < rows; r++)
        GENC_UNROLL_VECTORS for (int v = 0; v < vectors; v++) sums[r][v] = zero;
    for (int k = 0; k < kc; k++, b += b_step) {
        size_t ka = (size_t)k * a_step;
        GENC_UNROLL_VECTORS for (int v = 0; v < vectors; v++) {
            __builtin_memcpy(&row, b + v * GENC_NATIVE_LANES, sizeof row);
            GENC_UNROLL_ROWS for (int r = 0; r < rows; r++) sums[r][v] += a[r][ka] * row;
        }
    }
    GENC_UNROLL_ROWS for (int r = 0; r < rows; r++)
        __builtin_memcpy(c[r], sums[r], sizeof(genc_native_row) * (size_t)vectors);
#else
    (void)vectors;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < GENC_GEMM_NR; j++) c[r][j] = 0;
    for (int k = 0; k < kc; k++, b += b_step)
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < GENC_GEMM_NR; j++) c[r][j] += a[r][(size_t)k * a_step] * b[j];
#endif
}

#if defined(__GNUC__)
/* The lanes of *v summed as a tree, halving the width: no chain of 16 adds.
 * Shuffles keep v in registers, where copying out halves would spill it; a
 * pointer, because a vector argument's ABI differs between targets. */
static inline genc_real genc_lanes_sum(const genc_gemm_row *v)
{
#ifdef GENC_SHUFFLE
    typedef genc_real quarter __attribute__((vector_size(4 * sizeof(genc_real))));
    genc_gemm_row s = *v;
    genc_gemm_half h = GENC_SHUFFLE(s, s, 0, 1, 2, 3, 4, 5, 6, 7) +
             GENC_SHUFFLE(s, s, 8, 9, 10, 11, 12, 13, 14, 15);
    quarter q = GENC_SHUFFLE(h, h, 0, 1, 2, 3) + GENC_SHUFFLE(h, h, 4, 5, 6, 7);
    return (q[0] + q[2]) + (q[1] + q[3]);
#else
    genc_real sum = 0;
    for (int j = 0; j < GENC_GEMM_NR; j++) sum += (*v)[j];
    return sum;
#endif
}
#endif

#if defined(__GNUC__)
#ifdef GENC_DOUBLE
typedef int64_t genc_real_bits;
#else
typedef int32_t genc_real_bits;
#endif
typedef genc_real_bits genc_gemm_row_bits __attribute__((vector_size(GENC_GEMM_NR * sizeof(genc_real))));

/* The lanes that hold a dot's tail, its last n % NR values, when the tail
 * is read as the last NR values of the row (n ≥ NR): the others were summed
 * already. So the tail runs in vector registers too; one by one, it took a
 * third of a 100 -> 12544 layer at batch 1 (93 us; 62 at 96 inputs). */
static inline void genc_tail_lanes(genc_gemm_row_bits *keep, int tail)
{
    const genc_gemm_row_bits lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    *keep = lane >= GENC_GEMM_NR - tail;
}

/* *s += a · b over NR values, in the lanes of keep only (+0 in the others,
 * whatever a and b hold there) */
static inline void genc_add_kept_product(genc_gemm_row *s, const genc_real *a, const genc_real *b,
                                         const genc_gemm_row_bits *keep)
{
    genc_gemm_row x, y;
    __builtin_memcpy(&x, a, sizeof x);
    __builtin_memcpy(&y, b, sizeof y);
    *s += (genc_gemm_row)((genc_gemm_row_bits)(x * y) & *keep);
}
#endif

/* a · b over n contiguous values */
static inline genc_real genc_dot(const genc_real *a, const genc_real *b, int n)
{
    int k = 0;
    genc_real sum = 0;
#if defined(__GNUC__)
    genc_gemm_row s = {0}, x, y;
    for (; k + GENC_GEMM_NR <= n; k += GENC_GEMM_NR) {
        __builtin_memcpy(&x, a + k, sizeof x);
        __builtin_memcpy(&y, b + k, sizeof y);
        s += x * y;
    }
    if (k < n && n >= GENC_GEMM_NR) {
        genc_gemm_row_bits keep;
        genc_tail_lanes(&keep, n - k);
        genc_add_kept_product(&s, a + n - GENC_GEMM_NR, b + n - GENC_GEMM_NR, &keep);
        k = n;
    }
    sum = genc_lanes_sum(&s);
#endif
    for (; k < n; k++) sum += a[k] * b[k];
    return sum;
}

enum { GENC_DOT_ROWS = 8 };

/* Whether C is a few rows of A (fewer than a tile's), as a dense layer at
 * batch 1 in a sampler: row dots where B is stored (N,K), row sums where it
 * is stored (K,N). */
static inline int genc_gemm_is_few_rows(int trans_a, int M) { return !trans_a && M < GENC_GEMM_MR; }

/* Whether C = A·Bᵀ is a few rows of A times B stored (N,K): dot products of
 * contiguous rows. */
static inline int genc_gemm_is_row_dots(int trans_a, int trans_b, int M)
{
    return genc_gemm_is_few_rows(trans_a, M) && trans_b;
}

/* out[r] = [out[r] +] a · b_r for the eight rows b_r = b + r·ldb: each
 * vector of a, loaded once, serves all eight, and the eight sums are reduced
 * together. */
static inline void genc_dot_rows(genc_real out[GENC_DOT_ROWS], const genc_real *a, const genc_real *b, int ldb, int n,
                                 int acc)
{
    int k = 0;
#ifdef GENC_SHUFFLE
    genc_gemm_row s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0}, s6 = {0}, s7 = {0}, x, y;
    const size_t ld = (size_t)ldb;
    for (; k + GENC_GEMM_NR <= n; k += GENC_GEMM_NR) {
        const genc_real *col = b + k;
        __builtin_memcpy(&x, a + k, sizeof x);
        __builtin_memcpy(&y, col, sizeof y), s0 += x * y;
        __builtin_memcpy(&y, col + ld, sizeof y), s1 += x * y;
        __builtin_memcpy(&y, col + 2 * ld, sizeof y), s2 += x * y;
        __builtin_memcpy(&y, col + 3 * ld, sizeof y), s3 += x * y;
        __builtin_memcpy(&y, col + 4 * ld, sizeof y), s4 += x * y;
        __builtin_memcpy(&y, col + 5 * ld, sizeof y), s5 += x * y;
        __builtin_memcpy(&y, col + 6 * ld, sizeof y), s6 += x * y;
        __builtin_memcpy(&y, col + 7 * ld, sizeof y), s7 += x * y;
    }
    if (k < n && n >= GENC_GEMM_NR) {
        genc_gemm_row_bits keep;
        genc_tail_lanes(&keep, n - k);
        const genc_real *last = a + n - GENC_GEMM_NR, *col = b + n - GENC_GEMM_NR;
        genc_add_kept_product(&s0, last, col, &keep), genc_add_kept_product(&s1, last, col + ld, &keep);
        genc_add_kept_product(&s2, last, col + 2 * ld, &keep), genc_add_kept_product(&s3, last, col + 3 * ld, &keep);
        genc_add_kept_product(&s4, last, col + 4 * ld, &keep), genc_add_kept_product(&s5, last, col + 5 * ld, &keep);
        genc_add_kept_product(&s6, last, col + 6 * ld, &keep), genc_add_kept_product(&s7, last, col + 7 * ld, &keep);
        k = n;
    }
    /* Each fold adds the two halves of every run of lanes of p and of q, and
     * puts p's results before q's. After three folds lanes (2r, 2r+1) hold
     * row r's two partial sums. */
#define GENC_FOLD_8(p, q)                                                                              \
    (GENC_SHUFFLE(p, q, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +                      \
     GENC_SHUFFLE(p, q, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
#define GENC_FOLD_4(p, q)                                                                              \
    (GENC_SHUFFLE(p, q, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +                    \
     GENC_SHUFFLE(p, q, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31))
#define GENC_FOLD_2(p, q)                                                                              \
    (GENC_SHUFFLE(p, q, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +                    \
     GENC_SHUFFLE(p, q, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31))
    genc_gemm_row t01 = GENC_FOLD_8(s0, s1), t23 = GENC_FOLD_8(s2, s3);
    genc_gemm_row t45 = GENC_FOLD_8(s4, s5), t67 = GENC_FOLD_8(s6, s7);
    genc_gemm_row u0 = GENC_FOLD_4(t01, t23), u1 = GENC_FOLD_4(t45, t67);
    genc_gemm_row v = GENC_FOLD_2(u0, u1);
    genc_gemm_half w = GENC_SHUFFLE(v, v, 0, 2, 4, 6, 8, 10, 12, 14) +
             GENC_SHUFFLE(v, v, 1, 3, 5, 7, 9, 11, 13, 15);
#else
    genc_real w[GENC_DOT_ROWS] = {0};
#endif
    for (; k < n; k++)
        for (int r = 0; r < GENC_DOT_ROWS; r++) w[r] += a[k] * b[(size_t)r * ldb + k];
    for (int r = 0; r < GENC_DOT_ROWS; r++) out[r] = (acc ? out[r] : 0) + w[r];
}

#if defined(__GNUC__)
enum { GENC_SUM_VECTORS = 4 };

/* c[0, vectors·lanes) = [c +] Σ_k a[k] · b[k·ldb + (0 .. vectors·lanes)]:
 * up to GENC_SUM_VECTORS native vectors of a row of C held in registers
 * while B's rows stream past once, with no packing and no sums across lanes.
 * Each element is summed as genc_gemm_tile_as sums it, chunk by chunk of KC, so
 * a row has the same bits alone as in a tile. Four vectors streamed B from
 * L2 near its bandwidth (a 128 -> 784 layer at batch 1 on AVX-512: 2.36 us;
 * eight, 2.48; row dots of B stored (N,K), 2.63). */
static inline GENC_ALWAYS_INLINE void genc_row_sums_as(genc_real *c, const genc_real *a, const genc_real *b, int ldb,
                                                       int K, int acc, int vectors)
{
    for (int k0 = 0; k0 < K; k0 += GENC_GEMM_KC) {
        int k_end = K - k0 < GENC_GEMM_KC ? K : k0 + GENC_GEMM_KC;
        genc_native_row s[GENC_SUM_VECTORS], y, zero = {0};
        GENC_UNROLL_VECTORS for (int v = 0; v < vectors; v++) s[v] = zero;
        const genc_real *row = b + (size_t)k0 * ldb;
        for (int k = k0; k < k_end; k++, row += ldb)
            GENC_UNROLL_VECTORS for (int v = 0; v < vectors; v++) {
                __builtin_memcpy(&y, row + v * GENC_NATIVE_LANES, sizeof y);
                s[v] += a[k] * y;
            }
        int keep = acc || k0 > 0;
        GENC_UNROLL_VECTORS for (int v = 0; v < vectors; v++) {
            genc_native_row sum = zero;
            if (keep) __builtin_memcpy(&sum, c + v * GENC_NATIVE_LANES, sizeof sum);
            sum += s[v];
            __builtin_memcpy(c + v * GENC_NATIVE_LANES, &sum, sizeof sum);
        }
    }
}

/* genc_row_sums_as over C's row's whole NR-wide runs, [0, N / NR · NR) */
static inline void genc_row_sums(genc_real *c, const genc_real *a, const genc_real *b, int ldb, int N, int K, int acc)
{
    const int block = GENC_SUM_VECTORS * GENC_NATIVE_LANES, end = N / GENC_GEMM_NR * GENC_GEMM_NR;
    int j = 0;
    for (; j + block <= end; j += block) genc_row_sums_as(c + j, a, b + j, ldb, K, acc, GENC_SUM_VECTORS);
    for (; j < end; j += GENC_NATIVE_LANES) genc_row_sums_as(c + j, a, b + j, ldb, K, acc, 1);
}
#endif

#ifdef GENC_SHUFFLE
/* dst[i·width + j] = src[j·ldb + i] for i, j < NR: rows j ≥ present are 0.
 * Four rounds in which rows j and j + h swap the off-diagonal h x h corners
 * of each 2h x 2h block, h = 8, 4, 2, 1. Inlined with present = NR for whole
 * blocks, so that their loads have no test. */
static inline GENC_ALWAYS_INLINE void genc_transpose_block(genc_real *dst, int width, const genc_real *src, int ldb,
                                                           int present)
{
    genc_gemm_row r[GENC_GEMM_NR], t[GENC_GEMM_NR], zero = {0};
    GENC_UNROLL_BLOCK for (int j = 0; j < GENC_GEMM_NR; j++) {
        r[j] = zero;
        if (j < present) __builtin_memcpy(&r[j], src + (size_t)j * ldb, sizeof r[j]);
    }
    GENC_UNROLL_BLOCK for (int j = 0; j < 8; j++) {
        t[j] = GENC_SHUFFLE(r[j], r[j + 8], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
        t[j + 8] = GENC_SHUFFLE(r[j], r[j + 8], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    }
    GENC_UNROLL_BLOCK for (int j = 0; j < GENC_GEMM_NR; j++) {
        if (j & 4) continue;
        r[j] = GENC_SHUFFLE(t[j], t[j + 4], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
        r[j + 4] = GENC_SHUFFLE(t[j], t[j + 4], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    }
    GENC_UNROLL_BLOCK for (int j = 0; j < GENC_GEMM_NR; j++) {
        if (j & 2) continue;
        t[j] = GENC_SHUFFLE(r[j], r[j + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
        t[j + 2] = GENC_SHUFFLE(r[j], r[j + 2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    }
    GENC_UNROLL_BLOCK for (int j = 0; j < GENC_GEMM_NR; j += 2) {
        r[j] = GENC_SHUFFLE(t[j], t[j + 1], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
        r[j + 1] = GENC_SHUFFLE(t[j], t[j + 1], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    }
    GENC_UNROLL_BLOCK for (int i = 0; i < GENC_GEMM_NR; i++)
        __builtin_memcpy(dst + (size_t)i * width, &r[i], sizeof r[i]);
}
#endif

/* A panel (kc, width) of B stored (N,K): panel[k·width + j] = B[j·ldb + k]
 * for j < nr, 0 beyond. Where a native vector holds NR values, in NR x NR
 * blocks transposed in registers (genc_transpose_block). One element at a
 * time, the copy took a third of a 64x64x784 product (NT 57 us against NN
 * 41; transposed, 50; measured again, 46 against 38, and with the block's
 * loops unrolled, 39 against 36). A narrow panel's blocks go the same way,
 * their missing rows as zeros (a 64x20x128 product 4.2 -> 3.3 us, with its
 * 20 columns in one tile: genc_gemm_small). On AVX2, 16-value shuffles cost
 * more than they saved, and 8x8 blocks in its own vectors saved nothing (all
 * the panels of a 64x784 B: 11.4 us against 10.8 one element at a time). */
static inline void genc_pack_transposed(genc_real *panel, int width, const genc_real *B, int ldb, int nr, int kc)
{
    int k = 0;
#ifdef GENC_SHUFFLE
    if ((int)GENC_NATIVE_LANES == (int)GENC_GEMM_NR)
        for (; k + GENC_GEMM_NR <= kc; k += GENC_GEMM_NR)
            for (int j0 = 0; j0 < width; j0 += GENC_GEMM_NR) {
                genc_real *dst = panel + (size_t)k * width + j0;
                const genc_real *src = B + (size_t)j0 * ldb + k;
                if (j0 + GENC_GEMM_NR <= nr) genc_transpose_block(dst, width, src, ldb, GENC_GEMM_NR);
                else genc_transpose_block(dst, width, src, ldb, nr - j0);
            }
#endif
    for (; k < kc; k++)
        for (int j = 0; j < width; j++) panel[k * width + j] = j < nr ? B[(size_t)j * ldb + k] : 0;
}

static inline void genc_gemm_small(int trans_a, int trans_b, int M, int N, int K, const genc_real *A, int lda,
                                   const genc_real *B, int ldb, int acc, genc_real *C, int ldc)
{
    /* A few rows times B stored (N,K) — a dense layer at batch 1, as in a
     * sampler — are dot products of contiguous rows: packing would cost more
     * than the product. */
    if (genc_gemm_is_row_dots(trans_a, trans_b, M)) {
        for (int i = 0; i < M; i++) {
            const genc_real *a = A + (size_t)i * lda;
            genc_real *c = C + (size_t)i * ldc;
            int j = 0;
            for (; j + GENC_DOT_ROWS <= N; j += GENC_DOT_ROWS)
                genc_dot_rows(c + j, a, B + (size_t)j * ldb, ldb, K, acc);
            for (; j < N; j++) c[j] = (acc ? c[j] : 0) + genc_dot(a, B + (size_t)j * ldb, K);
        }
        return;
    }
    /* A few rows times B stored (K,N) — a dense layer at batch 1 whose
     * weights an exported sampler stores input-major — are sums of B's rows:
     * their whole vectors here, the narrower rest in the tiles below. */
    int j_start = 0;
#if defined(__GNUC__)
    if (genc_gemm_is_few_rows(trans_a, M) && !trans_b) {
        for (int i = 0; i < M; i++) genc_row_sums(C + (size_t)i * ldc, A + (size_t)i * lda, B, ldb, N, K, acc);
        j_start = N / GENC_GEMM_NR * GENC_GEMM_NR;
    }
#endif
    /* Column blocks of a tile's width, then of NR, then the narrower rest.
     * Only B is packed, and only where its rows are not already contiguous
     * runs of the block's width: stored (N,K), or the last, narrow block. */
    genc_real b_panel[GENC_GEMM_KC * GENC_TILE_WIDTH];
    genc_real tile[GENC_TILE_ROWS][GENC_TILE_WIDTH];
    const int a_step = trans_a ? lda : 1;
    for (int j0 = j_start, width; j0 < N; j0 += width) {
        /* more than NR columns left take a whole tile, zeros past N: one
         * pass where two of NR took as long (a 64x20x128 product 4.2 -> 3.7
         * us NN, 4.5 -> 3.4 TN) */
        int wide = N - j0 > (int)GENC_GEMM_NR;
        width = wide ? (int)GENC_TILE_WIDTH : (int)GENC_GEMM_NR;
        int nr = N - j0 < width ? N - j0 : width, packed = trans_b || nr < width;
        for (int k0 = 0; k0 < K; k0 += GENC_GEMM_KC) {
            int kc = K - k0 < GENC_GEMM_KC ? K - k0 : GENC_GEMM_KC;
            if (packed && trans_b)
                genc_pack_transposed(b_panel, width, B + (size_t)j0 * ldb + k0, ldb, nr, kc);
            else if (packed)
                for (int k = 0; k < kc; k++)
                    for (int j = 0; j < width; j++)
                        b_panel[k * width + j] = j < nr ? B[(size_t)(k0 + k) * ldb + j0 + j] : 0;
            const genc_real *b = packed ? b_panel : B + (size_t)k0 * ldb + j0;
            int b_step = packed ? width : ldb;
            for (int i0 = 0, rows; i0 < M; i0 += rows) {
                /* tall tiles while there are rows for one, then MR rows at a time */
                int tall = M - i0 >= GENC_TILE_ROWS;
                rows = tall ? (int)GENC_TILE_ROWS : (int)GENC_GEMM_MR;
                int mr = M - i0 < rows ? M - i0 : rows;
                /* rows past M repeat row i0: computed, never stored */
                const genc_real *a[GENC_TILE_ROWS];
                for (int r = 0; r < GENC_TILE_ROWS; r++) {
                    int row = i0 + (r < mr ? r : 0);
                    a[r] = trans_a ? A + (size_t)k0 * lda + row : A + (size_t)row * lda + k0;
                }
                /* this tile's and the next one's rows of A, fetched as the
                 * first column block starts them: a layer's input, which the
                 * other thread streamed, comes from memory (a 784 -> 128
                 * layer after such an input, 2 threads: 72 us, prefetched 63;
                 * with its input in the caches, 57) */
                if (!trans_a && j0 == j_start)
                    for (int r = i0 == 0 ? 0 : i0 + rows; r < i0 + 2 * rows && r < M; r++)
                        for (int k = 0; k < kc; k += GENC_LINE_VALUES) GENC_PREFETCH(A + (size_t)r * lda + k0 + k);
                /* one call for each shape, so that each inlines with its counts constant */
                if (tall && wide)
                    genc_gemm_tile_as(tile, a, a_step, b, b_step, kc, GENC_TILE_ROWS, GENC_TILE_ROW_VECTORS);
                else if (tall)
                    genc_gemm_tile_as(tile, a, a_step, b, b_step, kc, GENC_TILE_ROWS, GENC_TILE_VECTORS);
                else if (wide)
                    genc_gemm_tile_as(tile, a, a_step, b, b_step, kc, GENC_GEMM_MR, GENC_TILE_ROW_VECTORS);
                else
                    genc_gemm_tile_as(tile, a, a_step, b, b_step, kc, GENC_GEMM_MR, GENC_TILE_VECTORS);
                int keep = acc || k0 > 0;
                for (int r = 0; r < mr; r++) {
                    genc_real *row = C + (size_t)(i0 + r) * ldc + j0;
                    for (int j = 0; j < nr; j++) row[j] = (keep ? row[j] : 0) + tile[r][j];
                }
            }
        }
    }
}

static inline void genc_blas_gemm(int trans_a, int trans_b, int M, int N, int K, const genc_real *A, int lda,
                                  const genc_real *B, int ldb, int acc, genc_real *C, int ldc)
{
#ifdef GENC_NO_BLAS
    genc_gemm_small(trans_a, trans_b, M, N, K, A, lda, B, ldb, acc, C, ldc);
#else
    GENC_GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1, A,
              lda, B, ldb, acc ? 1 : 0, C, ldc);
#endif
}

/* Whether genc_gemm_small beats BLAS: for small products, and for a few
 * rows, a dense layer at batch 1 as in a sampler, where BLAS packs all of B
 * for one row (100 -> 12544 at batch 1: 295 us in cblas_sgemm, 71 us as dot
 * products; with B stored (K,N), 381 in cblas_sgemm, 180 as row sums). */
static inline int genc_gemm_is_small(int trans_a, int M, int N, int K)
{
    return (double)M * N * K <= GENC_SMALL_GEMM || genc_gemm_is_few_rows(trans_a, M);
}

/* A product, or one thread's band of one, on the calling thread. `small`
 * is genc_gemm_is_small of the whole product, so that a band's elements are
 * computed as they would be on one thread. */
static inline void genc_gemm_serial(int small, int trans_a, int trans_b, int M, int N, int K, const genc_real *A,
                                    int lda, const genc_real *B, int ldb, int acc, genc_real *C, int ldc)
{
    if (small)
        genc_gemm_small(trans_a, trans_b, M, N, K, A, lda, B, ldb, acc, C, ldc);
    else
        genc_blas_gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, acc, C, ldc);
}

/* How many threads share a product: one if it is small (below 3·10^5
 * multiply-adds: a fork and join cost 0.5-1 us, and a band reads an input
 * that the other core wrote; the VAE's 128 -> 20 heads, 1.6·10^5, took 8.4
 * and 8.8 us backward on two threads, 4.3 and 5.5 on one, and its training
 * step was 2.4 % longer; a 128 -> 128 layer, 10^6, gains from two), or
 * if it runs inside a parallel region already. A few rows read each element
 * of B once, so their time is B's stream from the cache, and two cores (two
 * L2s) halve it from 256 KB of B. */
static inline int genc_gemm_threads(int trans_a, int M, int N, int K)
{
#if defined(_OPENMP) && !defined(GENC_NO_BLAS)
    int large = genc_gemm_is_few_rows(trans_a, M) ? (double)N * K * sizeof(genc_real) >= 262144.0
                                                  : (double)M * N * K >= 3e5;
    if (large && !omp_in_parallel()) return omp_get_max_threads();
#else
    (void)trans_a, (void)M, (void)N, (void)K;
#endif
    return 1;
}

/* Band t of `threads` of [0, extent): [*lo, *lo + *n), *n = 0 for none, in
 * whole units. genc_band's are a vector's width (NR), so no two threads
 * write one cache line of a row. The trainer's optimizer slices a tensor's
 * rows the same way, so that the thread that computes a band of a weight's
 * gradient is the one that updates it, and the one that reads it next step. */
static inline void genc_band_of(int t, int threads, int extent, int unit, int *lo, int *n)
{
    int band = ((extent + threads - 1) / threads + unit - 1) / unit * unit;
    *lo = t * band < extent ? t * band : extent;
    *n = extent - *lo < band ? extent - *lo : band;
}

static inline void genc_band(int t, int threads, int extent, int *lo, int *n)
{
    genc_band_of(t, threads, extent, GENC_GEMM_NR, lo, n);
}

/* Columns [lo, lo + n) of a product, into band (M rows of pitch ldc): C + lo
 * itself, or a thread's own copy */
static inline void genc_gemm_columns(int lo, int n, int trans_a, int trans_b, int M, int N, int K, const genc_real *A,
                                     int lda, const genc_real *B, int ldb, int acc, genc_real *band, int ldc)
{
    genc_gemm_serial(genc_gemm_is_small(trans_a, M, N, K), trans_a, trans_b, M, n, K, A, lda,
                     trans_b ? B + (size_t)lo * ldb : B + lo, ldb, acc, band, ldc);
}

/* Band t of `threads` of a product that threads share: a band of C's
 * columns, or of its rows if C is taller than wide, in whole vector widths;
 * none if the product has fewer bands than threads */
static inline void genc_gemm_band(int t, int threads, int trans_a, int trans_b, int M, int N, int K,
                                  const genc_real *A, int lda, const genc_real *B, int ldb, int acc, genc_real *C,
                                  int ldc)
{
    int by_columns = N >= M, lo, n;
    genc_band(t, threads, by_columns ? N : M, &lo, &n);
    if (n == 0) return;
    if (by_columns)
        genc_gemm_columns(lo, n, trans_a, trans_b, M, N, K, A, lda, B, ldb, acc, C + lo, ldc);
    else
        genc_gemm_serial(genc_gemm_is_small(trans_a, M, N, K), trans_a, trans_b, n, N, K,
                         trans_a ? A + lo : A + (size_t)lo * lda, lda, B, ldb, acc, C + (size_t)lo * ldc, ldc);
}

static inline void genc_gemm(int trans_a, int trans_b, int M, int N, int K, const genc_real *A, int lda,
                             const genc_real *B, int ldb, int acc, genc_real *C, int ldc)
{
    int threads = genc_gemm_threads(trans_a, M, N, K);
    if (threads > 1) {
        GENC_OMP(parallel for schedule(static))
        for (int t = 0; t < threads; t++)
            genc_gemm_band(t, threads, trans_a, trans_b, M, N, K, A, lda, B, ldb, acc, C, ldc);
        return;
    }
    genc_gemm_serial(genc_gemm_is_small(trans_a, M, N, K), trans_a, trans_b, M, N, K, A, lda, B, ldb, acc,
                     C, ldc);
}

/* dst[i] = act(src[i]·scale + (bias ? bias[i] : add)) for i < n, act a
 * constant here: runs of NR values through a local copy, then the rest as
 * a run padded with zeros. Loops of a constant count over memory nothing
 * else can reach vectorise at -O2 as well, where gcc leaves a loop of unknown
 * count scalar (a thread's band of a sigmoid over 784 columns took 2 us); and
 * a rest done one by one was contracted to an FMA in one build and not in
 * another (a batchnorm's last 4 of 196 values differed between an exported
 * sampler built with -fopenmp and without). src·1 is src exactly, with an
 * FMA or without, so a scale of 1 gives the bits of the sum alone. dst may
 * be src. */
static inline GENC_ALWAYS_INLINE void genc_activate_run_as(genc_real *dst, const genc_real *src,
                                                           const genc_real *bias, genc_real scale, genc_real add,
                                                           int n, int act, genc_real alpha)
{
    int i = 0;
    for (; i + GENC_GEMM_NR <= n; i += GENC_GEMM_NR) {
        genc_real run[GENC_GEMM_NR];
        if (bias)
            GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) run[j] = src[i + j] * scale + bias[i + j];
        else
            GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) run[j] = src[i + j] * scale + add;
        GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) dst[i + j] = genc_activate(act, run[j], alpha);
    }
    if (i < n) {
        genc_real in[GENC_GEMM_NR] = {0}, shift[GENC_GEMM_NR], run[GENC_GEMM_NR];
        size_t rest = sizeof(genc_real) * (size_t)(n - i);
        memcpy(in, src + i, rest);
        GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) shift[j] = add;
        if (bias) memcpy(shift, bias + i, rest);
        GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) run[j] = in[j] * scale + shift[j];
        GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) run[j] = genc_activate(act, run[j], alpha);
        memcpy(dst + i, run, rest);
    }
}

/* genc_activate_run_as with act made a constant, so that its loops
 * vectorise where act is a variable */
static inline GENC_WIDE_LOOPS void genc_scaled_activate_run(genc_real *dst, const genc_real *src,
                                                            const genc_real *bias, genc_real scale, genc_real add,
                                                            int n, int act, genc_real alpha)
{
    switch (act) {
    case GENC_ACT_RELU: genc_activate_run_as(dst, src, bias, scale, add, n, GENC_ACT_RELU, alpha); break;
    case GENC_ACT_LEAKY_RELU: genc_activate_run_as(dst, src, bias, scale, add, n, GENC_ACT_LEAKY_RELU, alpha); break;
    case GENC_ACT_SIGMOID: genc_activate_run_as(dst, src, bias, scale, add, n, GENC_ACT_SIGMOID, alpha); break;
    case GENC_ACT_TANH: genc_activate_run_as(dst, src, bias, scale, add, n, GENC_ACT_TANH, alpha); break;
    default: genc_activate_run_as(dst, src, bias, scale, add, n, GENC_ACT_IDENTITY, alpha); break;
    }
}

static inline void genc_activate_run(genc_real *dst, const genc_real *src, const genc_real *bias, genc_real add,
                                     int n, int act, genc_real alpha)
{
    genc_scaled_activate_run(dst, src, bias, 1, add, n, act, alpha);
}

/* dout[i] *= the slope of act at out[i] for i < n, act a constant here: in
 * runs of NR, as genc_activate_run_as, for the same reason */
static inline GENC_ALWAYS_INLINE void genc_slope_run_as(genc_real *dout, const genc_real *out, size_t n, int act,
                                                        genc_real alpha)
{
    size_t runs_end = n / GENC_GEMM_NR * GENC_GEMM_NR;
    for (size_t i = 0; i < runs_end; i += GENC_GEMM_NR) {
        genc_real run[GENC_GEMM_NR];
        GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++)
            run[j] = dout[i + j] * genc_activation_slope(act, out[i + j], alpha);
        GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) dout[i + j] = run[j];
    }
    for (size_t i = runs_end; i < n; i++) dout[i] *= genc_activation_slope(act, out[i], alpha);
}

/* dout (n) *= the activation's slope at out: the pre-activation gradient
 * (out may be NULL for the identity). With act a variable inside the loop,
 * a thread's band of a sigmoid's 64x392 slopes took 16 us, 7 as runs. */
static inline GENC_WIDE_LOOPS void genc_activation_slope_inplace(genc_real *dout, const genc_real *out, size_t n,
                                                                 int act, genc_real alpha)
{
    switch (act) {
    case GENC_ACT_RELU: genc_slope_run_as(dout, out, n, GENC_ACT_RELU, alpha); break;
    case GENC_ACT_LEAKY_RELU: genc_slope_run_as(dout, out, n, GENC_ACT_LEAKY_RELU, alpha); break;
    case GENC_ACT_SIGMOID: genc_slope_run_as(dout, out, n, GENC_ACT_SIGMOID, alpha); break;
    case GENC_ACT_TANH: genc_slope_run_as(dout, out, n, GENC_ACT_TANH, alpha); break;
    default: break;
    }
}

/* Stores a run of NR values into dst with streaming stores where dst starts
 * a cache line (x86), plain stores otherwise; genc_stream_fence() makes them
 * visible before a barrier. A plain store to a line that the other core has
 * read waits for that core to drop its copy; when the two cores do not share
 * a cache (this VM's two vCPUs on different dies: a round trip of 340 ns
 * where it is otherwise 60), overwriting a 100 KB half of a buffer the other
 * thread read took 44 us, streamed 4.3. A streamed line leaves the cache, so
 * only outputs that the other core reads next are worth streaming. */
#if defined(__SSE__) && !defined(GENC_DOUBLE)
#include <immintrin.h>
#endif
static inline void genc_stream_run(genc_real *dst, const genc_real *run)
{
#if defined(__SSE__) && !defined(GENC_DOUBLE)
    if (((uintptr_t)dst & 63) == 0) {
#if defined(__AVX512F__)
        _mm512_stream_ps(dst, _mm512_loadu_ps(run));
#elif defined(__AVX__)
        _mm256_stream_ps(dst, _mm256_loadu_ps(run));
        _mm256_stream_ps(dst + 8, _mm256_loadu_ps(run + 8));
#else
        for (int j = 0; j < GENC_GEMM_NR; j += 4) _mm_stream_ps(dst + j, _mm_loadu_ps(run + j));
#endif
        return;
    }
#endif
    memcpy(dst, run, sizeof(genc_real) * GENC_GEMM_NR);
}

static inline void genc_stream_fence(void)
{
#if defined(__SSE__) && !defined(GENC_DOUBLE)
    _mm_sfence();
#endif
}

/* dst[0, n) = src[0, n), streamed in runs of NR, the rest plain */
static inline void genc_stream_copy(genc_real *dst, const genc_real *src, int n)
{
    int i = 0;
    for (; i + GENC_GEMM_NR <= n; i += GENC_GEMM_NR) genc_stream_run(dst + i, src + i);
    memcpy(dst + i, src + i, sizeof(genc_real) * (size_t)(n - i));
}

/* ---- dense: out = act(inp · weightᵀ + bias) ---------------------------- */

/* out[i] = act(out[i] + bias[i mod OC]) for i in [lo, lo + n) of out
 * (rows of OC): the flat range cut into its rows' pieces */
static inline void genc_bias_activate(genc_real *out, const genc_real *bias, int OC, size_t lo, size_t n, int act,
                                      genc_real alpha)
{
    for (size_t i = lo, end = lo + n; i < end;) {
        int c = (int)(i % (size_t)OC), len = end - i < (size_t)(OC - c) ? (int)(end - i) : OC - c;
        genc_activate_run(out + i, out + i, bias ? bias + c : NULL, 0, len, act, alpha);
        i += (size_t)len;
    }
}

/* Floats of scratch genc_dense_forward needs: B·OC when it may write column
 * bands, as a wide layer (OC ≥ B) on more than one thread does (grad.c's
 * scratch_size says the same) */
static inline size_t genc_dense_forward_scratch(int threads, int B, int OC)
{
    return threads > 1 && OC >= B ? (size_t)B * OC : 0;
}

/* out (B,OC) = act(inp (B,C) · weightᵀ + bias (OC)), the weight stored
 * (OC,C) as PyTorch stores it. */
static inline void genc_dense_forward(genc_real *out, const genc_real *inp, const genc_real *weight,
                                      const genc_real *bias, genc_real *scratch, int B, int C, int OC, int act,
                                      genc_real alpha)
{
    /* Threaded and wide (scratch given), each thread computes its column
     * band of the product into its own part of the scratch (B rows of its
     * band's width, at B·lo), applies bias and activation there, and streams
     * the rows into out: the next layer reads all of out on every thread, and
     * a plain store into a line that the other core read last step waits for
     * it (genc_stream_run).
     * Otherwise, each thread writes its band of the product, then, after a
     * barrier, applies bias and activation to its flat range of out, the
     * range that the next elementwise pass (a loss, the backward pass's slope)
     * takes; at one row (a sampler) that range is its band, so there is no
     * barrier. The compiler gives no scratch where a loss reads out (grad.c's
     * read_by_loss). The sums are the same either way, and so were their bits on
     * 1 and 2 threads; a band as narrow as 4 columns (3 threads) may be
     * summed in another order for another row pitch. */
    int threads = genc_gemm_threads(0, B, OC, C);
    if (threads > 1 && scratch && OC >= B) {
        GENC_OMP(parallel)
        {
            int lo, n;
            genc_band(genc_thread_num(), genc_team(), OC, &lo, &n);
            genc_real *band = scratch + (size_t)B * lo;
            if (n > 0) {
                genc_gemm_columns(lo, n, 0, 1, B, OC, C, inp, C, weight, C, 0, band, n);
                for (int b = 0; b < B; b++) {
                    genc_real *row = band + (size_t)b * n;
                    genc_activate_run(row, row, bias ? bias + lo : NULL, 0, n, act, alpha);
                    genc_stream_copy(out + (size_t)b * OC + lo, row, n);
                }
                genc_stream_fence();
            }
        }
        return;
    }
    if (threads > 1) {
        GENC_OMP(parallel)
        {
            int t = genc_thread_num(), team = genc_team(), lo, n;
            genc_gemm_band(t, team, 0, 1, B, OC, C, inp, C, weight, C, 0, out, OC);
            if (B > 1) {
                GENC_OMP(barrier)
            }
            genc_band(t, team, B * OC, &lo, &n);
            genc_bias_activate(out, bias, OC, (size_t)lo, (size_t)n, act, alpha);
        }
        return;
    }
    genc_gemm(0, 1, B, OC, C, inp, C, weight, C, 0, out, OC);
    genc_bias_activate(out, bias, OC, 0, (size_t)B * OC, act, alpha);
}

/* Columns [lo, hi) of a dense layer whose weight is stored input-major in
 * panels (genc_dense_forward_input_major), lo and hi on panel bounds */
static inline void genc_dense_panels(genc_real *out, const genc_real *inp, const genc_real *weight,
                                     const genc_real *bias, int B, int C, int OC, int lo, int hi, int act,
                                     genc_real alpha)
{
    for (int p0 = lo; p0 < hi; p0 += GENC_PANEL_WIDTH) {
        int width = genc_panel_width(OC, p0);
        genc_gemm_serial(genc_gemm_is_small(0, B, width, C), 0, 0, B, width, C, inp, C, weight + (size_t)p0 * C,
                         width, 0, out + p0, OC);
        for (int b = 0; b < B; b++)
            genc_activate_run(out + (size_t)b * OC + p0, out + (size_t)b * OC + p0, bias ? bias + p0 : NULL, 0,
                              width, act, alpha);
    }
}

/* A dense layer, its weight stored input-major, (C,OC), in panels of
 * GENC_PANEL_WIDTH outputs (genc_panel_offset), as an exported sampler
 * stores it at fewer rows than a GEMM tile: the product is sums of the
 * weight's rows (genc_row_sums; a sampler's 128 -> 784 layer at batch 1 took
 * 2.4 us where row dots of (OC,C) took 2.6 on AVX-512, 3.4 where they took
 * 14.8 on AVX2), and a panel's rows are contiguous, so that it streams from
 * the cache in order (the same layer on an AMD EPYC with AVX-512: 3.2 us
 * with rows of the whole (C,OC) 3 KB apart, 2.35 in panels). Each panel's
 * bias and activation follow its sums, while they are in L1. */
static inline void genc_dense_forward_input_major(genc_real *out, const genc_real *inp, const genc_real *weight,
                                                  const genc_real *bias, genc_real *scratch, int B, int C, int OC,
                                                  int act, genc_real alpha)
{
    (void)scratch;
    int threads = genc_gemm_threads(0, B, OC, C);
    if (threads > 1) {
        GENC_OMP(parallel)
        {
            int lo, n;
            genc_band_of(genc_thread_num(), genc_team(), OC, GENC_PANEL_WIDTH, &lo, &n);
            genc_dense_panels(out, inp, weight, bias, B, C, OC, lo, lo + n, act, alpha);
        }
        return;
    }
    genc_dense_panels(out, inp, weight, bias, B, C, OC, 0, OC, act, alpha);
}

/* sums[o] = [sums[o] +] Σ over b < B, in order, of rows[b·ld + o], for o < n:
 * in runs of NR, as genc_activate_run_as, for the same reason */
static inline void genc_column_sums(genc_real *sums, const genc_real *rows, int B, size_t ld, int n, int acc)
{
    int o = 0;
    for (; o + GENC_GEMM_NR <= n; o += GENC_GEMM_NR) {
        genc_real run[GENC_GEMM_NR];
        GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) run[j] = acc ? sums[o + j] : 0;
        for (int b = 0; b < B; b++)
            GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) run[j] += rows[(size_t)b * ld + o + j];
        GENC_KEEP_LOOP for (int j = 0; j < GENC_GEMM_NR; j++) sums[o + j] = run[j];
    }
    for (; o < n; o++) {
        genc_real total = acc ? sums[o] : 0;
        for (int b = 0; b < B; b++) total += rows[(size_t)b * ld + o];
        sums[o] = total;
    }
}

/* The most bands a dense layer's backward pass is shared in: one per thread,
 * up to `threads` (what its scratch has room for), each of at least NR output
 * features */
static inline int genc_dense_most_bands(int threads, int OC)
{
    int bands = (OC + GENC_GEMM_NR - 1) / GENC_GEMM_NR;
    return threads < bands ? threads : bands;
}

/* The bands it is shared in here: no more than threads run the product */
static inline int genc_dense_bands(int threads, int B, int C, int OC)
{
    int team = genc_gemm_threads(1, OC, C, B), most = genc_dense_most_bands(threads, OC);
    return team < most ? team : most;
}

/* Floats of scratch genc_dense_backward needs: an input-gradient partial of
 * B×C for each band after the first (grad.c's scratch_size says the same) */
static inline size_t genc_dense_scratch(int threads, int B, int C, int OC)
{
    return (size_t)(genc_dense_most_bands(threads, OC) - 1) * B * C;
}

/* Thread t of the `region` threads in a dense layer's backward pass takes
 * band t of `bands` of the output features (genc_band, as the forward pass
 * and the optimizer do), so that the weight rows it reads, their gradient and
 * their update stay in its core's cache. Split by input features instead,
 * each thread read the other half of every weight, whose lines then crossed
 * between the cores at each update: on a VM whose two vCPUs were far apart,
 * the VAE's Adam update took 250 us instead of 80, its iteration 1130 instead
 * of 925.
 * The band's share of the input gradient goes into dinp for band 0 and into
 * a partial in the scratch for the others; after a barrier, each thread adds
 * the partials into its flat range of dinp.
 * The elementwise passes (the slope before the products, the partials' sum
 * after) take flat ranges, not column bands: every row of a band has two
 * edges where the other core's lines begin, and a pass over a 64x784 band
 * took 8 us where one over a flat half took 1.6. On the slow VM level, the
 * flat passes cut an iteration by 7 % (VAE, autoencoder) and 6 % (MLP GAN).
 * Each element's sum is the same either way, so are its bits. */
static inline void genc_dense_backward_band(int t, int region, int bands, genc_real *dinp, genc_real *dweight,
                                            genc_real *dbias, genc_real *dout, const genc_real *out,
                                            const genc_real *inp, const genc_real *weight, genc_real *scratch, int B,
                                            int C, int OC, int act, genc_real alpha, int acc_inp, int acc_param)
{
    if (act != GENC_ACT_IDENTITY) {
        int flat_lo, flat_n;
        genc_band(t, region, B * OC, &flat_lo, &flat_n);
        genc_activation_slope_inplace(dout + flat_lo, out + flat_lo, (size_t)flat_n, act, alpha);
        GENC_OMP(barrier)
    }
    int lo = 0, n = 0;
    if (t < bands) genc_band(t, bands, OC, &lo, &n);
    if (n > 0) {
        if (dweight)
            genc_gemm_serial(genc_gemm_is_small(1, OC, C, B), 1, 0, n, C, B, dout + lo, OC, inp, C, acc_param,
                             dweight + (size_t)lo * C, C);
        if (dbias) genc_column_sums(dbias + lo, dout + lo, B, (size_t)OC, n, acc_param);
        if (dinp)
            genc_gemm_serial(genc_gemm_is_small(0, B, C, OC), 0, 0, B, C, n, dout + lo, OC,
                             weight + (size_t)lo * C, C, t == 0 ? acc_inp : 0,
                             t == 0 ? dinp : scratch + (size_t)(t - 1) * B * C, C);
    }
    if (!dinp) return;
    GENC_OMP(barrier)
    int flat_lo, flat_n;
    genc_band(t, region, B * C, &flat_lo, &flat_n);
    for (int u = 1; u < bands; u++) {
        int ulo, un;
        genc_band(u, bands, OC, &ulo, &un);
        if (un == 0) break;
        /* dinp += part, as an identity run with part for its bias */
        const genc_real *part = scratch + (size_t)(u - 1) * B * C;
        genc_activate_run(dinp + flat_lo, dinp + flat_lo, part + flat_lo, 0, flat_n, GENC_ACT_IDENTITY, 0);
    }
}

/* dout is turned into the pre-activation gradient in place: nothing reads it
 * after this kernel. With more than one band, dinp's sums are split at the
 * bands, so its bits depend on the thread count. */
static inline void genc_dense_backward(genc_real *dinp, genc_real *dweight, genc_real *dbias, genc_real *dout,
                                       const genc_real *out, const genc_real *inp, const genc_real *weight,
                                       genc_real *scratch, int threads, int B, int C, int OC, int act,
                                       genc_real alpha, int acc_inp, int acc_param)
{
    int bands = genc_dense_bands(threads, B, C, OC);
    if (bands > 1) {
        /* the default team, as in every other region: libgomp keeps a team
         * for reuse at the size of the last one, and allocates a new one for
         * another size; threads past the bands only add partials */
        GENC_OMP(parallel)
        genc_dense_backward_band(genc_thread_num(), genc_team(), genc_team() < bands ? genc_team() : bands, dinp,
                                 dweight, dbias, dout, out, inp, weight, scratch, B, C, OC, act, alpha, acc_inp,
                                 acc_param);
        return;
    }
    genc_activation_slope_inplace(dout, out, (size_t)B * OC, act, alpha);
    if (dweight) genc_gemm(1, 0, OC, C, B, dout, OC, inp, C, acc_param, dweight, C);
    if (dbias) genc_column_sums(dbias, dout, B, (size_t)OC, OC, acc_param);
    if (dinp) genc_gemm(0, 0, B, C, OC, dout, OC, weight, C, acc_inp, dinp, C);
}

/* ---- convolution, NCHW ------------------------------------------------------------
 *
 * One geometry serves both directions: an image of (channels, IH, IW) and a
 * grid of (GH, GW) window positions, window K×K at stride S, the window at grid
 * position (gy, gx) starting at image row gy·S − PT and column gx·S − PL.
 * A conv2d's image is its input and its grid its output; a transposed conv's
 * image is its output and its grid its input. Weights are PyTorch's layouts:
 * conv2d (OC, C, K, K), conv2d_transpose (C, OC, K, K).
 *
 * Samples go one at a time through im2col and a product, so the col buffer
 * (channels·K·K × GH·GW) stays in cache; threads take contiguous runs of
 * samples, each with a col buffer of its own. In the backward pass each
 * thread but the first sums its samples' weight gradient into a partial of
 * its own, added in at the end. The scratch holds min(threads, B) col buffers
 * then, backward, the partials: genc_conv_scratch (the compiler's
 * scratch_size says the same). */

static inline size_t genc_conv_scratch(int threads, int B, size_t col, size_t weight, int backward)
{
    size_t slots = (size_t)(threads < B ? threads : B);
    return slots * col + (backward ? (slots - 1) * weight : 0);
}

/* The grid columns [*lo, *hi) whose window column kx falls inside the image
 * (0 <= gx·S − PL + kx < IW): the loops below run over them without a test. */
static inline void genc_window_span(int GW, int IW, int S, int PL, int kx, int *lo, int *hi)
{
    int first = PL - kx > 0 ? (PL - kx + S - 1) / S : 0;   /* ceil((PL − kx) / S) */
    int last = IW - 1 + PL - kx >= 0 ? (IW - 1 + PL - kx) / S + 1 : 0;
    *lo = first < GW ? first : GW;
    *hi = last < GW ? (last > *lo ? last : *lo) : GW;
}

/* col (channels·K·K, GH·GW) = windows of img */
static inline void genc_im2col(genc_real *col, const genc_real *img, int channels, int IH, int IW, int GH, int GW,
                               int K, int S, int PT, int PL)
{
    for (int c = 0; c < channels; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                genc_real *row = col + ((size_t)(c * K + ky) * K + kx) * GH * GW;
                int lo, hi;
                genc_window_span(GW, IW, S, PL, kx, &lo, &hi);
                for (int gy = 0; gy < GH; gy++) {
                    int iy = gy * S - PT + ky;
                    genc_real *dst = row + (size_t)gy * GW;
                    if (iy < 0 || iy >= IH) {
                        for (int gx = 0; gx < GW; gx++) dst[gx] = 0;
                        continue;
                    }
                    const genc_real *src = img + ((size_t)c * IH + iy) * IW;
                    int shift = kx - PL;
                    for (int gx = 0; gx < lo; gx++) dst[gx] = 0;
                    for (int gx = lo; gx < hi; gx++) dst[gx] = src[gx * S + shift];
                    for (int gx = hi; gx < GW; gx++) dst[gx] = 0;
                }
            }
}

/* channel c of img = [img +] windows of col folded back */
static GENC_NOINLINE void genc_col2im_channel(genc_real *img, const genc_real *col, int c, int IH, int IW, int GH,
                                              int GW, int K, int S, int PT, int PL, int acc)
{
    genc_real *plane = img + (size_t)c * IH * IW;
    if (!acc)
        for (size_t i = 0; i < (size_t)IH * IW; i++) plane[i] = 0;
    for (int ky = 0; ky < K; ky++)
        for (int kx = 0; kx < K; kx++) {
            const genc_real *row = col + ((size_t)(c * K + ky) * K + kx) * GH * GW;
            int lo, hi;
            genc_window_span(GW, IW, S, PL, kx, &lo, &hi);
            for (int gy = 0; gy < GH; gy++) {
                int iy = gy * S - PT + ky;
                if (iy < 0 || iy >= IH) continue;
                genc_real *dst = plane + (size_t)iy * IW;
                const genc_real *src = row + (size_t)gy * GW;
                int shift = kx - PL;
                for (int gx = lo; gx < hi; gx++) dst[gx * S + shift] += src[gx];
            }
        }
}

/* img = act(windows of col folded back + bias per channel), or [img +] the
 * fold when act < 0 (a gradient: no bias, no activation); the adjoint of
 * im2col. The channels are shared among threads where no sample loop holds
 * them, as in a sampler at batch 1 (DCGAN's generator: 200 us of col2im
 * serially), and each is finished by the thread that folded it, while it is
 * in that core's cache (a serial bias pass after the threaded fold read half
 * its planes from the other core). */
static inline void genc_col2im(genc_real *img, const genc_real *col, int channels, int IH, int IW, int GH, int GW,
                               int K, int S, int PT, int PL, const genc_real *bias, int act, genc_real alpha, int acc)
{
    GENC_PARALLEL_FOR_IF((size_t)channels * K * K * GH * GW >= GENC_PARALLEL_SUM, channels, c, {
        genc_real *plane = img + c * IH * IW;
        genc_col2im_channel(img, col, (int)c, IH, IW, GH, GW, K, S, PT, PL, act < 0 && acc);
        if (act >= 0) genc_activate_run(plane, plane, NULL, bias ? bias[c] : 0, IH * IW, act, alpha);
    });
}

/* out (B, C, HW) = act(out + bias per channel); bias may be NULL */
static inline void genc_channel_bias_activate(genc_real *out, const genc_real *bias, int B, int C, int HW, int act,
                                              genc_real alpha)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            genc_real *p = out + ((size_t)b * C + c) * HW;
            genc_activate_run(p, p, NULL, bias ? bias[c] : 0, HW, act, alpha);
        }
}

/* dbias (C) = [dbias +] Σ over batch and positions of dout (B, C, HW), each plane in lanes */
static inline void genc_channel_bias_backward(genc_real *dbias, const genc_real *dout, int B, int C, int HW, int acc)
{
    for (int c = 0; c < C; c++) {
        double total = 0;
        for (int b = 0; b < B; b++) {
            const genc_real *p = dout + ((size_t)b * C + c) * HW;
            double plane;
            GENC_PLANE_SUM(plane, HW, i, p[i]);
            total += plane;
        }
        GENC_SET_OR_ADD(dbias[c], acc, (genc_real)total);
    }
}

/* A convolution's kernels are macros around per-sample functions: the
 * sample loop and its parallel region then sit in the generated code, where
 * the sizes are literals, and each thread runs loops specialised to them (a
 * function's parameters would reach the region's threads as variables).
 * Threads take contiguous runs of samples; thread t uses col buffer t and,
 * backward, sums its samples' weight gradient into dweight (t = 0) or into
 * partial t − 1, added in at the end (GENC_CONV_BACKWARD). */

#define GENC_CONV_TEAM(threads, B) genc_team_size((int)(threads) < (int)(B) ? (int)(threads) : (int)(B))

/* sample(b, t, ...) for every sample b, thread t of at most `threads`. One
 * thread runs the loop without a parallel region: OpenMP would make
 * (allocate) a team of one each time. */
#define GENC_SAMPLE_LOOP(sample, threads, B, ...)                                                                 \
    do {                                                                                                           \
        int genc_team_n = GENC_CONV_TEAM(threads, B);                                                              \
        if (genc_team_n > 1) {                                                                                     \
            GENC_OMP(parallel for schedule(static) num_threads(genc_team_n))                                       \
            for (int genc_b = 0; genc_b < (B); genc_b++) sample(genc_b, genc_thread_num(), __VA_ARGS__);          \
        } else {                                                                                                   \
            for (int genc_b = 0; genc_b < (B); genc_b++) sample(genc_b, 0, __VA_ARGS__);                          \
        }                                                                                                          \
    } while (0)

/* the partials follow the threads' col buffers in the scratch */
#define GENC_CONV_BACKWARD(sample, dweight, weight_size, scratch, col_size, threads, B, ...)                       \
    do {                                                                                                           \
        int genc_team_n = GENC_CONV_TEAM(threads, B);                                                              \
        if (genc_team_n > 1) {                                                                                     \
            GENC_OMP(parallel num_threads(genc_team_n))                                                            \
            {                                                                                                      \
                int genc_t = genc_thread_num(), genc_started = 0;                                                  \
                genc_real *genc_partials = (scratch) + genc_conv_scratch(threads, B, col_size, 0, 0);              \
                genc_real *genc_dw = (dweight) && genc_t > 0                                                       \
                                         ? genc_partials + (size_t)(genc_t - 1) * (weight_size)                    \
                                         : (dweight);                                                              \
                GENC_OMP(for schedule(static))                                                                     \
                for (int genc_b = 0; genc_b < (B); genc_b++) {                                                     \
                    sample(genc_b, genc_t, genc_started, genc_dw, __VA_ARGS__);                                   \
                    genc_started = 1;                                                                              \
                }                                                                                                  \
                genc_reduce_dweight(dweight, genc_partials, genc_t, genc_started, (weight_size));                 \
            }                                                                                                      \
        } else {                                                                                                   \
            for (int genc_b = 0; genc_b < (B); genc_b++) sample(genc_b, 0, genc_b > 0, dweight, __VA_ARGS__);     \
        }                                                                                                          \
    } while (0)

/* Inside the backward region, after the sample loop: adds the partials of
 * threads 1 onwards into dweight (a thread that had no sample zeroes its
 * partial first). */
static inline void genc_reduce_dweight(genc_real *dweight, genc_real *partials, int t, int had_sample, size_t n)
{
    int team = genc_team();
    if (!dweight || team < 2) return;
    if (t > 0 && !had_sample)
        for (size_t i = 0; i < n; i++) partials[(size_t)(t - 1) * n + i] = 0;
    GENC_OMP(barrier)
    GENC_OMP(for schedule(static))
    for (size_t i = 0; i < n; i++)
        for (int u = 1; u < team; u++) dweight[i] += partials[(size_t)(u - 1) * n + i];
}

/* out (B, OC, OH, OW) = act(conv(inp (B, C, H, W), weight (OC, C, K, K)) + bias) */
static inline void genc_conv2d_forward_sample(int b, int t, genc_real *out, const genc_real *inp,
                                              const genc_real *weight, const genc_real *bias, genc_real *scratch,
                                              int C, int H, int W, int OC, int OH, int OW, int K, int S, int PT, int PL,
                                              int act, genc_real alpha)
{
    int CKK = C * K * K, OHW = OH * OW;
    genc_real *col = scratch + (size_t)t * CKK * OHW, *out_b = out + (size_t)b * OC * OHW;
    genc_im2col(col, inp + (size_t)b * C * H * W, C, H, W, OH, OW, K, S, PT, PL);
    genc_gemm(0, 0, OC, OHW, CKK, weight, CKK, col, OHW, 0, out_b, OHW);
    genc_channel_bias_activate(out_b, bias, 1, OC, OHW, act, alpha);
}

#define genc_conv2d_forward(out, inp, weight, bias, scratch, threads, B, C, H, W, OC, OH, OW, K, S, PT, PL, act,    \
                            alpha)                                                                                 \
    GENC_SAMPLE_LOOP(genc_conv2d_forward_sample, threads, B, out, inp, weight, bias, scratch, C, H, W, OC, OH, OW, \
                      K, S, PT, PL, act, alpha)

static inline void genc_conv2d_backward_sample(int b, int t, int started, genc_real *dw, genc_real *dinp,
                                               const genc_real *dout, const genc_real *inp, const genc_real *weight,
                                               genc_real *scratch, int C, int H, int W, int OC, int OH, int OW, int K,
                                               int S, int PT, int PL, int acc_inp, int acc_param)
{
    int CKK = C * K * K, OHW = OH * OW;
    genc_real *col = scratch + (size_t)t * CKK * OHW;
    const genc_real *dout_b = dout + (size_t)b * OC * OHW;
    if (dw) {
        genc_im2col(col, inp + (size_t)b * C * H * W, C, H, W, OH, OW, K, S, PT, PL);
        genc_gemm(0, 1, OC, CKK, OHW, dout_b, OHW, col, OHW, started || (t == 0 && acc_param), dw, CKK);
    }
    if (dinp) {
        genc_gemm(1, 0, CKK, OHW, OC, weight, CKK, dout_b, OHW, 0, col, OHW);
        genc_col2im(dinp + (size_t)b * C * H * W, col, C, H, W, OH, OW, K, S, PT, PL, NULL, -1, 0, acc_inp);
    }
}

/* dout is turned into the pre-activation gradient in place. */
#define genc_conv2d_backward(dinp, dweight, dbias, dout, out, inp, weight, scratch, threads, B, C, H, W, OC, OH, OW, \
                             K, S, PT, PL, act, alpha, acc_inp, acc_param)                                         \
    do {                                                                                                           \
        genc_activation_slope_inplace(dout, out, (size_t)(B) * (OC) * (OH) * (OW), act, alpha);                    \
        if (dbias) genc_channel_bias_backward(dbias, dout, B, OC, (OH) * (OW), acc_param);                          \
        GENC_CONV_BACKWARD(genc_conv2d_backward_sample, dweight, (size_t)(OC) * (C) * (K) * (K), scratch,           \
                           (size_t)(C) * (K) * (K) * (OH) * (OW), threads, B, dinp, dout, inp, weight, scratch, C,  \
                           H, W, OC, OH, OW, K, S, PT, PL, acc_inp, acc_param);                                    \
    } while (0)

/* out (B, OC, OH, OW) = act(conv_transpose(inp (B, C, H, W), weight (C, OC, K, K)) + bias) */
static inline void genc_conv2d_transpose_forward_sample(int b, int t, genc_real *out, const genc_real *inp,
                                                        const genc_real *weight, const genc_real *bias,
                                                        genc_real *scratch, int C, int H, int W, int OC, int OH, int OW,
                                                        int K, int S, int PT, int PL, int act, genc_real alpha)
{
    int OCKK = OC * K * K, HW = H * W;
    genc_real *col = scratch + (size_t)t * OCKK * HW, *out_b = out + (size_t)b * OC * OH * OW;
    genc_gemm(1, 0, OCKK, HW, C, weight, OCKK, inp + (size_t)b * C * HW, HW, 0, col, HW);
    genc_col2im(out_b, col, OC, OH, OW, H, W, K, S, PT, PL, bias, act, alpha, 0);
}

#define genc_conv2d_transpose_forward(out, inp, weight, bias, scratch, threads, B, C, H, W, OC, OH, OW, K, S, PT, PL, \
                                      act, alpha)                                                                  \
    GENC_SAMPLE_LOOP(genc_conv2d_transpose_forward_sample, threads, B, out, inp, weight, bias, scratch, C, H, W, OC, \
                      OH, OW, K, S, PT, PL, act, alpha)

static inline void genc_conv2d_transpose_backward_sample(int b, int t, int started, genc_real *dw, genc_real *dinp,
                                                         const genc_real *dout, const genc_real *inp,
                                                         const genc_real *weight, genc_real *scratch, int C, int H,
                                                         int W, int OC, int OH, int OW, int K, int S, int PT, int PL,
                                                         int acc_inp, int acc_param)
{
    int OCKK = OC * K * K, HW = H * W;
    genc_real *col = scratch + (size_t)t * OCKK * HW;
    genc_im2col(col, dout + (size_t)b * OC * OH * OW, OC, OH, OW, H, W, K, S, PT, PL);
    if (dw)
        genc_gemm(0, 1, C, OCKK, HW, inp + (size_t)b * C * HW, HW, col, HW, started || (t == 0 && acc_param), dw,
                  OCKK);
    if (dinp) genc_gemm(0, 0, C, HW, OCKK, weight, OCKK, col, HW, acc_inp, dinp + (size_t)b * C * HW, HW);
}

#define genc_conv2d_transpose_backward(dinp, dweight, dbias, dout, out, inp, weight, scratch, threads, B, C, H, W, OC, \
                                       OH, OW, K, S, PT, PL, act, alpha, acc_inp, acc_param)                       \
    do {                                                                                                           \
        genc_activation_slope_inplace(dout, out, (size_t)(B) * (OC) * (OH) * (OW), act, alpha);                    \
        if (dbias) genc_channel_bias_backward(dbias, dout, B, OC, (OH) * (OW), acc_param);                          \
        GENC_CONV_BACKWARD(genc_conv2d_transpose_backward_sample, dweight, (size_t)(C) * (OC) * (K) * (K), scratch, \
                           (size_t)(OC) * (K) * (K) * (H) * (W), threads, B, dinp, dout, inp, weight, scratch, C,   \
                           H, W, OC, OH, OW, K, S, PT, PL, acc_inp, acc_param);                                    \
    } while (0)

/* ---- direct convolution, stride 1 --------------------------------------------------
 *
 * A stride-1 convolution with few channels skips im2col (whose col buffer is
 * channels·K·K times the image, written and read again for a handful of output
 * channels). A sample's image planes are copied into zero-padded planes of
 * pitch WP = GW + K − 1 and its grid planes use the same pitch, so that tap
 * (ky, kx) is one constant offset ky·WP + kx from a grid position to the
 * padded image position it reads. Every product is then a sum of whole planes
 * shifted by those offsets, with no bounds inside the loops:
 *   gather   grid[o][i]  = Σ_c,t w(o,c,t) · image[c][i + off_t]
 *   scatter  image[c][j] = Σ_o,t w(o,c,t) · grid[o][j − off_t]
 *   dots     dw(o,c,t)   = Σ_i grid[o][i] · image[c][i + off_t]
 * with w(o,c,t) = weight[(o·channels of the image + c)·K·K + t], the layout of
 * both a conv2d's weight (OC, C, K, K) and a transposed conv's (C, OC, K, K).
 * A grid plane's columns past GW are computed and dropped (gather) or held at
 * zero (scatter, dots); lengths are whole tiles, read and written inside the
 * planes' slack. The compiler picks this lowering (conv_is_direct in
 * compiler/grad.c) and sizes its scratch as genc_direct_scratch does. */

enum { GENC_DIRECT_TILE = 4 * GENC_GEMM_NR }; /* positions a tile covers */

typedef struct {
    int wp;              /* the pitch of every plane */
    ptrdiff_t reach;     /* the largest tap offset, (K − 1)·(WP + 1) */
    size_t grid_len;     /* grid positions a gather or dot covers, in whole tiles */
    size_t image_at;     /* where the image starts in its padded plane */
    size_t image_len;    /* image positions a scatter covers, in whole tiles */
    size_t image_plane;  /* floats per padded image plane */
    size_t grid_margin;  /* zeros before a grid plane, read by the scatter */
    size_t grid_plane;   /* floats per grid plane, margin included */
} GencPlanes;

static inline size_t genc_round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
static inline size_t genc_max_size(size_t a, size_t b) { return a > b ? a : b; }

/* H, W: the image; GH, GW: the grid */
static inline GencPlanes genc_planes(int H, int W, int GH, int GW, int K, int PT, int PL)
{
    GencPlanes p;
    p.wp = GW + K - 1;
    p.reach = (ptrdiff_t)(K - 1) * (p.wp + 1);
    p.grid_len = genc_round_up((size_t)(GH - 1) * p.wp + GW, GENC_DIRECT_TILE);
    p.image_at = (size_t)PT * p.wp + PL;
    p.image_len = genc_round_up((size_t)(H - 1) * p.wp + W, GENC_DIRECT_TILE);
    size_t image_end = p.image_at + p.image_len;
    p.image_plane = genc_round_up(genc_max_size(p.grid_len + p.reach, image_end), GENC_GEMM_NR);
    p.grid_margin = genc_round_up(p.reach, GENC_GEMM_NR);
    p.grid_plane = p.grid_margin + genc_round_up(genc_max_size(p.grid_len, image_end), GENC_GEMM_NR);
    return p;
}

/* per thread: the image planes then the grid planes; backward, the partials follow */
static inline size_t genc_direct_planes(int image_channels, int grid_channels, int H, int W, int GH, int GW, int K,
                                        int PT, int PL)
{
    GencPlanes p = genc_planes(H, W, GH, GW, K, PT, PL);
    return (size_t)image_channels * p.image_plane + (size_t)grid_channels * p.grid_plane;
}

static inline size_t genc_direct_scratch(int threads, int B, int image_channels, int grid_channels, int H, int W,
                                         int GH, int GW, int K, int PT, int PL, int backward)
{
    size_t weight = (size_t)image_channels * grid_channels * K * K;
    return genc_conv_scratch(threads, B, genc_direct_planes(image_channels, grid_channels, H, W, GH, GW, K, PT, PL),
                             weight, backward);
}

/* planes (channels, plane floats each) = src (channels, rows, cols) as rows at
 * `at`, pitch wp, zeros everywhere else */
static inline void genc_pack_planes(genc_real *planes, size_t plane, size_t at, int wp, const genc_real *src,
                                    int channels, int rows, int cols)
{
    for (int c = 0; c < channels; c++) {
        genc_real *dst = planes + (size_t)c * plane;
        memset(dst, 0, plane * sizeof *dst);
        for (int y = 0; y < rows; y++)
            memcpy(dst + at + (size_t)y * wp, src + ((size_t)c * rows + y) * cols, (size_t)cols * sizeof *src);
    }
}

/* out (channels, rows, cols) = act(plane rows at `at`, pitch wp, + bias), or
 * [out +] those rows when act < 0 (a gradient: no bias, no activation) */
static inline void genc_unpack_planes(genc_real *out, const genc_real *planes, size_t plane, size_t at, int wp,
                                      int channels, int rows, int cols, const genc_real *bias, int act,
                                      genc_real alpha, int acc)
{
    for (int c = 0; c < channels; c++)
        for (int y = 0; y < rows; y++) {
            const genc_real *src = planes + (size_t)c * plane + at + (size_t)y * wp;
            genc_real *dst = out + ((size_t)c * rows + y) * cols;
            if (act >= 0)
                genc_activate_run(dst, src, NULL, bias ? bias[c] : 0, cols, act, alpha);
            else
                for (int x = 0; x < cols; x++) dst[x] = (acc ? dst[x] : 0) + src[x];
        }
}

/* The tap offsets ky·WP + kx, negated for a scatter */
static inline void genc_tap_offsets(ptrdiff_t *off, int K, int wp, int sign)
{
    for (int ky = 0; ky < K; ky++)
        for (int kx = 0; kx < K; kx++) off[ky * K + kx] = sign * ((ptrdiff_t)ky * wp + kx);
}

#if defined(__GNUC__)
/* ROWS rows of out, one tile: Σ over inputs s and taps t of w · in[s] shifted.
 * Rows past the last repeat it: computed, never stored. The loops over rows
 * and vectors are unrolled so that the sums and the shifted row stay in
 * registers: left rolled, gcc kept the sums on the stack and copied the row
 * through it in 32-byte halves (the conv autoencoder's three direct forwards,
 * 2 threads: 387, 543 and 716 us, unrolled 208, 200 and 346). */
#define GENC_SHIFT_TILE(ROWS)                                                                                       \
    static inline void genc_shift_tile_##ROWS(genc_real *out, size_t out_pitch, int rows, const genc_real *in,     \
                                              size_t in_pitch, int inputs, const ptrdiff_t *off, int taps,          \
                                              const genc_real *w, size_t w_row, size_t w_input)                     \
    {                                                                                                               \
        genc_gemm_row acc[ROWS][4], zero = {0};                                                                     \
        GENC_UNROLL_ROWS for (int r = 0; r < ROWS; r++)                                                             \
            GENC_UNROLL_VECTORS for (int v = 0; v < 4; v++) acc[r][v] = zero;                                       \
        for (int s = 0; s < inputs; s++)                                                                            \
            for (int t = 0; t < taps; t++) {                                                                        \
                const genc_real *src = in + (size_t)s * in_pitch + off[t];                                          \
                genc_gemm_row x[4];                                                                                 \
                GENC_UNROLL_VECTORS for (int v = 0; v < 4; v++)                                                     \
                    __builtin_memcpy(&x[v], src + v * GENC_GEMM_NR, sizeof x[v]);                                   \
                GENC_UNROLL_ROWS for (int r = 0; r < ROWS; r++) {                                                   \
                    genc_real weight = w[(size_t)(r < rows ? r : 0) * w_row + (size_t)s * w_input + t];             \
                    GENC_UNROLL_VECTORS for (int v = 0; v < 4; v++) acc[r][v] += weight * x[v];                     \
                }                                                                                                   \
            }                                                                                                       \
        GENC_UNROLL_ROWS for (int r = 0; r < rows; r++)                                                             \
            GENC_UNROLL_VECTORS for (int v = 0; v < 4; v++)                                                         \
                __builtin_memcpy(out + (size_t)r * out_pitch + v * GENC_GEMM_NR, &acc[r][v], sizeof acc[r][v]);    \
    }
GENC_SHIFT_TILE(4)
GENC_SHIFT_TILE(1)
#endif

/* out[r][i] = Σ_s<inputs Σ_t<taps w[r·w_row + s·w_input + t] · in[s][i + off[t]],
 * for rows r < rows and positions i < n, a whole number of tiles */
static inline void genc_shift_sum(genc_real *out, size_t out_pitch, int rows, const genc_real *in, size_t in_pitch,
                                  int inputs, const ptrdiff_t *off, int taps, const genc_real *w, size_t w_row,
                                  size_t w_input, size_t n)
{
#if defined(__GNUC__)
    for (size_t i = 0; i < n; i += GENC_DIRECT_TILE) {
        int r = 0;
        for (; rows - r >= 2; r += 4) /* two or three last rows still take a tile of 4 */
            genc_shift_tile_4(out + (size_t)r * out_pitch + i, out_pitch, rows - r < 4 ? rows - r : 4, in + i,
                              in_pitch, inputs, off, taps, w + (size_t)r * w_row, w_row, w_input);
        for (; r < rows; r++)
            genc_shift_tile_1(out + (size_t)r * out_pitch + i, out_pitch, 1, in + i, in_pitch, inputs, off, taps,
                              w + (size_t)r * w_row, w_row, w_input);
    }
#else
    for (int r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++) {
            genc_real total = 0;
            for (int s = 0; s < inputs; s++)
                for (int t = 0; t < taps; t++)
                    total += w[(size_t)r * w_row + (size_t)s * w_input + t] * in[(size_t)s * in_pitch + i + off[t]];
            out[(size_t)r * out_pitch + i] = total;
        }
#endif
}

/* dw[(o·image_channels + c)·taps + t] = [dw +] Σ_i<n grid[o][i] · image[c][i + off[t]] */
static inline void genc_shift_dots(genc_real *dw, int acc, const genc_real *grid, size_t grid_pitch, int grid_channels,
                                   const genc_real *image, size_t image_pitch, int image_channels, const ptrdiff_t *off,
                                   int taps, size_t n)
{
    for (int o = 0; o < grid_channels; o++)
        for (int c = 0; c < image_channels; c++) {
            const genc_real *g = grid + (size_t)o * grid_pitch, *x = image + (size_t)c * image_pitch;
            genc_real *out = dw + ((size_t)o * image_channels + c) * taps;
            for (int t0 = 0; t0 < taps; t0 += 3) {
#if defined(__GNUC__)
                /* three taps at a time share the loads of g; taps past the last repeat it */
                const genc_real *x0 = x + off[t0], *x1 = x + off[t0 + 1 < taps ? t0 + 1 : t0],
                                *x2 = x + off[t0 + 2 < taps ? t0 + 2 : t0];
                genc_gemm_row s0 = {0}, s1 = {0}, s2 = {0}, gv, v0, v1, v2;
                for (size_t i = 0; i < n; i += GENC_GEMM_NR) {
                    __builtin_memcpy(&gv, g + i, sizeof gv);
                    __builtin_memcpy(&v0, x0 + i, sizeof v0);
                    __builtin_memcpy(&v1, x1 + i, sizeof v1);
                    __builtin_memcpy(&v2, x2 + i, sizeof v2);
                    s0 += gv * v0, s1 += gv * v1, s2 += gv * v2;
                }
                genc_real sums[3] = {0, 0, 0};
                for (int l = 0; l < GENC_GEMM_NR; l++) sums[0] += s0[l], sums[1] += s1[l], sums[2] += s2[l];
#else
                genc_real sums[3] = {0, 0, 0};
                for (int k = 0; k < 3 && t0 + k < taps; k++)
                    for (size_t i = 0; i < n; i++) sums[k] += g[i] * x[off[t0 + k] + i];
#endif
                for (int k = 0; k < 3 && t0 + k < taps; k++) out[t0 + k] = (acc ? out[t0 + k] : 0) + sums[k];
            }
        }
}

/* A sample's planes: thread t's image planes, then its grid planes */
#define GENC_DIRECT_PLANES(image, grid, scratch, t, image_channels, grid_channels, p)                               \
    genc_real *image = (scratch) + (size_t)(t) * ((size_t)(image_channels) * (p).image_plane +                      \
                                                  (size_t)(grid_channels) * (p).grid_plane);                        \
    genc_real *grid = image + (size_t)(image_channels) * (p).image_plane

/* conv2d, stride 1: image = inp (C, H, W), grid = out (OC, OH, OW) */
static inline void genc_conv2d_direct_forward_sample(int b, int t, genc_real *out, const genc_real *inp,
                                                     const genc_real *weight, const genc_real *bias,
                                                     genc_real *scratch, int C, int H, int W, int OC, int OH, int OW,
                                                     int K, int PT, int PL, int act, genc_real alpha)
{
    GencPlanes p = genc_planes(H, W, OH, OW, K, PT, PL);
    GENC_DIRECT_PLANES(image, grid, scratch, t, C, OC, p);
    ptrdiff_t off[64];
    genc_tap_offsets(off, K, p.wp, 1);
    genc_pack_planes(image, p.image_plane, p.image_at, p.wp, inp + (size_t)b * C * H * W, C, H, W);
    genc_shift_sum(grid, p.grid_plane, OC, image, p.image_plane, C, off, K * K, weight, (size_t)C * K * K,
                   (size_t)K * K, p.grid_len);
    genc_unpack_planes(out + (size_t)b * OC * OH * OW, grid, p.grid_plane, 0, p.wp, OC, OH, OW, bias, act, alpha, 0);
}

#define genc_conv2d_direct_forward(out, inp, weight, bias, scratch, threads, B, C, H, W, OC, OH, OW, K, S, PT, PL,  \
                                   act, alpha)                                                                      \
    GENC_SAMPLE_LOOP(genc_conv2d_direct_forward_sample, threads, B, out, inp, weight, bias, scratch, C, H, W, OC,   \
                     OH, OW, K, PT, PL, act, alpha)

static inline void genc_conv2d_direct_backward_sample(int b, int t, int started, genc_real *dw, genc_real *dinp,
                                                      const genc_real *dout, const genc_real *inp,
                                                      const genc_real *weight, genc_real *scratch, int C, int H, int W,
                                                      int OC, int OH, int OW, int K, int PT, int PL, int acc_inp,
                                                      int acc_param)
{
    GencPlanes p = genc_planes(H, W, OH, OW, K, PT, PL);
    GENC_DIRECT_PLANES(image, grid, scratch, t, C, OC, p);
    ptrdiff_t off[64];
    genc_pack_planes(grid, p.grid_plane, p.grid_margin, p.wp, dout + (size_t)b * OC * OH * OW, OC, OH, OW);
    if (dw) {
        genc_tap_offsets(off, K, p.wp, 1);
        genc_pack_planes(image, p.image_plane, p.image_at, p.wp, inp + (size_t)b * C * H * W, C, H, W);
        genc_shift_dots(dw, started || (t == 0 && acc_param), grid + p.grid_margin, p.grid_plane, OC, image,
                        p.image_plane, C, off, K * K, p.grid_len);
    }
    if (dinp) {
        genc_tap_offsets(off, K, p.wp, -1);
        genc_shift_sum(image + p.image_at, p.image_plane, C, grid + p.grid_margin + p.image_at, p.grid_plane, OC,
                       off, K * K, weight, (size_t)K * K, (size_t)C * K * K, p.image_len);
        genc_unpack_planes(dinp + (size_t)b * C * H * W, image, p.image_plane, p.image_at, p.wp, C, H, W, NULL, -1,
                           0, acc_inp);
    }
}

#define genc_conv2d_direct_backward(dinp, dweight, dbias, dout, out, inp, weight, scratch, threads, B, C, H, W, OC,  \
                                    OH, OW, K, S, PT, PL, act, alpha, acc_inp, acc_param)                           \
    do {                                                                                                            \
        genc_activation_slope_inplace(dout, out, (size_t)(B) * (OC) * (OH) * (OW), act, alpha);                     \
        if (dbias) genc_channel_bias_backward(dbias, dout, B, OC, (OH) * (OW), acc_param);                           \
        GENC_CONV_BACKWARD(genc_conv2d_direct_backward_sample, dweight, (size_t)(OC) * (C) * (K) * (K), scratch,     \
                           genc_direct_planes(C, OC, H, W, OH, OW, K, PT, PL), threads, B, dinp, dout, inp, weight,  \
                           scratch, C, H, W, OC, OH, OW, K, PT, PL, acc_inp, acc_param);                            \
    } while (0)

/* conv2d_transpose, stride 1: grid = inp (C, H, W), image = out (OC, OH, OW) */
static inline void genc_conv2d_transpose_direct_forward_sample(int b, int t, genc_real *out, const genc_real *inp,
                                                               const genc_real *weight, const genc_real *bias,
                                                               genc_real *scratch, int C, int H, int W, int OC, int OH,
                                                               int OW, int K, int PT, int PL, int act, genc_real alpha)
{
    GencPlanes p = genc_planes(OH, OW, H, W, K, PT, PL);
    GENC_DIRECT_PLANES(image, grid, scratch, t, OC, C, p);
    ptrdiff_t off[64];
    genc_tap_offsets(off, K, p.wp, -1);
    genc_pack_planes(grid, p.grid_plane, p.grid_margin, p.wp, inp + (size_t)b * C * H * W, C, H, W);
    genc_shift_sum(image + p.image_at, p.image_plane, OC, grid + p.grid_margin + p.image_at, p.grid_plane, C, off,
                   K * K, weight, (size_t)K * K, (size_t)OC * K * K, p.image_len);
    genc_unpack_planes(out + (size_t)b * OC * OH * OW, image, p.image_plane, p.image_at, p.wp, OC, OH, OW, bias, act,
                       alpha, 0);
}

#define genc_conv2d_transpose_direct_forward(out, inp, weight, bias, scratch, threads, B, C, H, W, OC, OH, OW, K, S, \
                                             PT, PL, act, alpha)                                                    \
    GENC_SAMPLE_LOOP(genc_conv2d_transpose_direct_forward_sample, threads, B, out, inp, weight, bias, scratch, C, H, \
                     W, OC, OH, OW, K, PT, PL, act, alpha)

static inline void genc_conv2d_transpose_direct_backward_sample(int b, int t, int started, genc_real *dw,
                                                                genc_real *dinp, const genc_real *dout,
                                                                const genc_real *inp, const genc_real *weight,
                                                                genc_real *scratch, int C, int H, int W, int OC, int OH,
                                                                int OW, int K, int PT, int PL, int acc_inp,
                                                                int acc_param)
{
    GencPlanes p = genc_planes(OH, OW, H, W, K, PT, PL);
    GENC_DIRECT_PLANES(image, grid, scratch, t, OC, C, p);
    ptrdiff_t off[64];
    genc_tap_offsets(off, K, p.wp, 1);
    genc_pack_planes(image, p.image_plane, p.image_at, p.wp, dout + (size_t)b * OC * OH * OW, OC, OH, OW);
    if (dw) {
        genc_pack_planes(grid, p.grid_plane, p.grid_margin, p.wp, inp + (size_t)b * C * H * W, C, H, W);
        genc_shift_dots(dw, started || (t == 0 && acc_param), grid + p.grid_margin, p.grid_plane, C, image,
                        p.image_plane, OC, off, K * K, p.grid_len);
    }
    if (dinp) {
        genc_shift_sum(grid, p.grid_plane, C, image, p.image_plane, OC, off, K * K, weight, (size_t)OC * K * K,
                       (size_t)K * K, p.grid_len);
        genc_unpack_planes(dinp + (size_t)b * C * H * W, grid, p.grid_plane, 0, p.wp, C, H, W, NULL, -1, 0, acc_inp);
    }
}

#define genc_conv2d_transpose_direct_backward(dinp, dweight, dbias, dout, out, inp, weight, scratch, threads, B, C, H, \
                                              W, OC, OH, OW, K, S, PT, PL, act, alpha, acc_inp, acc_param)           \
    do {                                                                                                            \
        genc_activation_slope_inplace(dout, out, (size_t)(B) * (OC) * (OH) * (OW), act, alpha);                     \
        if (dbias) genc_channel_bias_backward(dbias, dout, B, OC, (OH) * (OW), acc_param);                           \
        GENC_CONV_BACKWARD(genc_conv2d_transpose_direct_backward_sample, dweight, (size_t)(C) * (OC) * (K) * (K),    \
                           scratch, genc_direct_planes(OC, C, OH, OW, H, W, K, PT, PL), threads, B, dinp, dout, inp, \
                           weight, scratch, C, H, W, OC, OH, OW, K, PT, PL, acc_inp, acc_param);                    \
    } while (0)

/* ---- max pooling: windows of K at stride S, padded positions never win ------------ */

/* The windows tile the image exactly (stride K, no padding, nothing left
 * over): the common 2x2 pool, whose backward then runs without bounds tests
 * or branches. (The forward is a max, which compiles without branches as it is.) */
static inline int genc_pool_tiles(int H, int W, int OH, int OW, int K, int S, int PT, int PL)
{
    return S == K && PT == 0 && PL == 0 && OH * K == H && OW * K == W;
}

static inline void genc_maxpool2d_forward_sample(int b, int t, genc_real *out, const genc_real *inp, int C, int H,
                                                 int W, int OH, int OW, int K, int S, int PT, int PL)
{
    (void)t;
    for (int bc = b * C; bc < (b + 1) * C; bc++) {
        const genc_real *img = inp + (size_t)bc * H * W;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                genc_real best = -INFINITY;
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        int iy = oy * S - PT + ky, ix = ox * S - PL + kx;
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W && img[iy * W + ix] > best) best = img[iy * W + ix];
                    }
                out[((size_t)bc * OH + oy) * OW + ox] = best;
            }
    }
}

/* samples are independent: any number of threads may share them */
#define genc_maxpool2d_forward(out, inp, B, C, H, W, OH, OW, K, S, PT, PL)                                          \
    GENC_SAMPLE_LOOP(genc_maxpool2d_forward_sample, B, B, out, inp, C, H, W, OH, OW, K, S, PT, PL)

#ifdef GENC_SHUFFLE
/* yes where mask's lane is set, no elsewhere: a macro, as a function taking
 * or returning a vector would have another ABI on another target */
#define GENC_LANES_SELECT(mask, yes, no)                                                                           \
    ((genc_gemm_row)(((mask) & (genc_gemm_row_bits)(yes)) | (~(mask) & (genc_gemm_row_bits)(no))))

/* Columns [c0, c0 + n) (n even, at most NR) of a row pair of a plane tiled
 * by 2x2 windows: x0, x1 its input rows, d0, d1 their gradient rows, g the
 * row's window gradients. A lane is an input column, and the lane it swaps
 * with in pairs is its window's other column, so each window's four taps are
 * in registers and the gradient rows are written whole, where the tap-by-tap
 * loop below writes them at stride 2, as scatters (the conv autoencoder's two
 * pools, backward, one thread, caches hot: 1059 and 245 us, here 514 and 95;
 * in training, where the pass streams its 7 MB from memory, 369 and 80 us on
 * two threads, here 332 and 66). The winner is the same tap: the running
 * maximum over a, b, c, d as there. */
static inline GENC_ALWAYS_INLINE void genc_maxpool2x2_backward_run(genc_real *d0, genc_real *d1, const genc_real *x0,
                                                                    const genc_real *x1, const genc_real *g, int c0,
                                                                    int n, int acc)
{
    const genc_gemm_row_bits odd = {0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1};
    genc_gemm_row p = {0}, q = {0}, half = {0}, out0 = {0}, out1 = {0}, zero = {0}, lowest = zero - INFINITY;
    __builtin_memcpy(&p, x0 + c0, sizeof(genc_real) * (size_t)n);
    __builtin_memcpy(&q, x1 + c0, sizeof(genc_real) * (size_t)n);
    __builtin_memcpy(&half, g + c0 / 2, sizeof(genc_real) * (size_t)(n / 2));
    if (acc) {
        __builtin_memcpy(&out0, d0 + c0, sizeof(genc_real) * (size_t)n);
        __builtin_memcpy(&out1, d1 + c0, sizeof(genc_real) * (size_t)n);
    }
    genc_gemm_row grad = GENC_SHUFFLE(half, half, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    genc_gemm_row p_mate = GENC_SHUFFLE(p, p, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    genc_gemm_row q_mate = GENC_SHUFFLE(q, q, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    /* each lane's window: a, b its top row, c, d its bottom row */
    genc_gemm_row a = GENC_LANES_SELECT(odd, p_mate, p), b = GENC_LANES_SELECT(odd, p, p_mate);
    genc_gemm_row c = GENC_LANES_SELECT(odd, q_mate, q), d = GENC_LANES_SELECT(odd, q, q_mate);
    genc_gemm_row_bits above_a = a > lowest;
    genc_gemm_row best = GENC_LANES_SELECT(above_a, a, lowest);
    genc_gemm_row_bits above_b = b > best;
    best = GENC_LANES_SELECT(above_b, b, best);
    genc_gemm_row_bits above_c = c > best;
    best = GENC_LANES_SELECT(above_c, c, best);
    genc_gemm_row_bits above_d = d > best;
    genc_gemm_row_bits at_a = above_a & ~above_b & ~above_c & ~above_d, at_b = above_b & ~above_c & ~above_d;
    genc_gemm_row_bits at_c = above_c & ~above_d;
    out0 += GENC_LANES_SELECT((odd & at_b) | (~odd & at_a), grad, zero);
    out1 += GENC_LANES_SELECT((odd & above_d) | (~odd & at_c), grad, zero);
    __builtin_memcpy(d0 + c0, &out0, sizeof(genc_real) * (size_t)n);
    __builtin_memcpy(d1 + c0, &out1, sizeof(genc_real) * (size_t)n);
}

/* A row pair, W columns, in runs of NR columns, the last one shorter */
static inline void genc_maxpool2x2_backward_rows(genc_real *d0, const genc_real *x0, const genc_real *g, int W, int acc)
{
    for (int c0 = 0; c0 < W; c0 += GENC_GEMM_NR) {
        if (W - c0 >= GENC_GEMM_NR)
            genc_maxpool2x2_backward_run(d0, d0 + W, x0, x0 + W, g, c0, GENC_GEMM_NR, acc);
        else
            genc_maxpool2x2_backward_run(d0, d0 + W, x0, x0 + W, g, c0, W - c0, acc);
    }
}
#endif

/* The gradient goes to the first maximum of each window in scan order, as in
 * PyTorch; the arg-max is found again from the input. */
static inline void genc_maxpool2d_backward_sample(int b, int t, genc_real *dinp, const genc_real *dout,
                                                  const genc_real *inp, int C, int H, int W, int OH, int OW, int K,
                                                  int S, int PT, int PL, int acc)
{
    (void)t;
    if (genc_pool_tiles(H, W, OH, OW, K, S, PT, PL)) {
#ifdef GENC_SHUFFLE
        if (K == 2 && (int)GENC_NATIVE_LANES == (int)GENC_GEMM_NR) {
            for (int bc = b * C; bc < (b + 1) * C; bc++)
                for (int oy = 0; oy < OH; oy++) {
                    size_t top = ((size_t)bc * H + 2 * oy) * W;
                    genc_maxpool2x2_backward_rows(dinp + top, inp + top, dout + ((size_t)bc * OH + oy) * OW, W, acc);
                }
            return;
        }
#endif
        /* Every input position is in one window, so each is written once.
         * Sixteen windows of a row at a time, tap by tap: no branches. */
        for (int bc = b * C; bc < (b + 1) * C; bc++) {
            const genc_real *img = inp + (size_t)bc * H * W;
            genc_real *d = dinp + (size_t)bc * H * W;
            for (int oy = 0; oy < OH; oy++)
                for (int ox0 = 0; ox0 < OW; ox0 += 16) {
                    int n = OW - ox0 < 16 ? OW - ox0 : 16;
                    genc_real best[16], g[16];
                    int at[16];
                    for (int j = 0; j < n; j++) best[j] = -INFINITY, at[j] = -1;
                    for (int k = 0; k < K * K; k++) {
                        const genc_real *row = img + (size_t)(oy * K + k / K) * W + ox0 * K + k % K;
                        GENC_OMP(simd)
                        for (int j = 0; j < n; j++) {
                            genc_real v = row[j * K];
                            at[j] = v > best[j] ? k : at[j];
                            best[j] = v > best[j] ? v : best[j];
                        }
                    }
                    memcpy(g, dout + ((size_t)bc * OH + oy) * OW + ox0, (size_t)n * sizeof *g);
                    for (int k = 0; k < K * K; k++) {
                        genc_real *row = d + (size_t)(oy * K + k / K) * W + ox0 * K + k % K;
                        GENC_OMP(simd)
                        for (int j = 0; j < n; j++) row[j * K] = (acc ? row[j * K] : 0) + (at[j] == k ? g[j] : 0);
                    }
                }
        }
        return;
    }
    if (!acc)
        for (size_t i = (size_t)b * C * H * W; i < (size_t)(b + 1) * C * H * W; i++) dinp[i] = 0;
    for (int bc = b * C; bc < (b + 1) * C; bc++) {
        const genc_real *img = inp + (size_t)bc * H * W;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                genc_real best = -INFINITY;
                int at = -1;
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        int iy = oy * S - PT + ky, ix = ox * S - PL + kx;
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W && img[iy * W + ix] > best)
                            best = img[iy * W + ix], at = iy * W + ix;
                    }
                if (at >= 0) dinp[(size_t)bc * H * W + at] += dout[((size_t)bc * OH + oy) * OW + ox];
            }
    }
}

#define genc_maxpool2d_backward(dinp, dout, inp, B, C, H, W, OH, OW, K, S, PT, PL, acc)                             \
    GENC_SAMPLE_LOOP(genc_maxpool2d_backward_sample, B, B, dinp, dout, inp, C, H, W, OH, OW, K, S, PT, PL, acc)

/* ---- batch normalisation over (batch, positions) per channel ---------------------- *
 * inp (B, C, HW); HW is 1 after a dense layer. Training normalises with the
 * batch's mean and biased variance, keeps (mean, 1/std) per channel in stats
 * (2C) for the backward pass, and moves the running statistics with the Keras
 * convention: running = momentum·running + (1 − momentum)·batch, where the
 * batch variance is the unbiased one as PyTorch keeps it (Keras momentum 0.8 is
 * PyTorch momentum 0.2). Inference normalises with the running statistics.
 *
 * Each channel is independent: the kernels share the channels among threads
 * from GENC_PARALLEL_SUM values on, so their results do not depend on the
 * thread count, and sum each plane in lanes (one running double sum was a
 * chain of dependent adds, 7 % of DCGAN's training on one thread). The
 * activation after a batchnorm is fused into it, as into a dense layer:
 * forward applies it to each plane while the plane is in cache, backward
 * first turns dout into the pre-activation gradient in place. */
#define GENC_BATCHNORM_CHANNELS(B, C, HW, c, ...)                                                                  \
    GENC_PARALLEL_FOR_IF((size_t)(B) * (C) * (HW) >= GENC_PARALLEL_SUM, C, c, __VA_ARGS__)

static inline void genc_batchnorm_forward_channel(genc_real *out, genc_real *stats, const genc_real *inp,
                                                  const genc_real *gamma, const genc_real *beta,
                                                  genc_real *running_mean, genc_real *running_var, int B, int C,
                                                  int HW, genc_real momentum, genc_real eps, int act, genc_real alpha,
                                                  int c)
{
    double n = (double)B * HW, total = 0, squares = 0, plane;
    for (int b = 0; b < B; b++) {
        const genc_real *p = inp + ((size_t)b * C + c) * HW;
        GENC_PLANE_SUM(plane, HW, i, p[i]);
        total += plane;
    }
    double mean = total / n;
    for (int b = 0; b < B; b++) {
        const genc_real *p = inp + ((size_t)b * C + c) * HW;
        GENC_PLANE_SUM(plane, HW, i, (p[i] - mean) * (p[i] - mean));
        squares += plane;
    }
    double var = squares / n, invstd = 1 / sqrt(var + eps);
    stats[c] = (genc_real)mean;
    stats[C + c] = (genc_real)invstd;
    running_mean[c] = momentum * running_mean[c] + (1 - momentum) * (genc_real)mean;
    running_var[c] = momentum * running_var[c] + (1 - momentum) * (genc_real)(n > 1 ? squares / (n - 1) : var);
    for (int b = 0; b < B; b++) {
        const genc_real *p = inp + ((size_t)b * C + c) * HW;
        genc_real *q = out + ((size_t)b * C + c) * HW;
        for (int i = 0; i < HW; i++) q[i] = gamma[c] * (genc_real)((p[i] - mean) * invstd) + beta[c];
        genc_activate_run(q, q, NULL, 0, HW, act, alpha);
    }
}

static inline void genc_batchnorm_forward(genc_real *out, genc_real *stats, const genc_real *inp,
                                          const genc_real *gamma, const genc_real *beta, genc_real *running_mean,
                                          genc_real *running_var, int B, int C, int HW, genc_real momentum,
                                          genc_real eps, int act, genc_real alpha)
{
    GENC_BATCHNORM_CHANNELS(B, C, HW, c,
                            genc_batchnorm_forward_channel(out, stats, inp, gamma, beta, running_mean, running_var,
                                                           B, C, HW, momentum, eps, act, alpha, (int)c););
}

static inline void genc_batchnorm_inference(genc_real *out, const genc_real *inp, const genc_real *gamma,
                                            const genc_real *beta, const genc_real *running_mean,
                                            const genc_real *running_var, int B, int C, int HW, genc_real eps,
                                            int act, genc_real alpha)
{
    GENC_BATCHNORM_CHANNELS(B, C, HW, c, {
        genc_real scale = gamma[c] / (genc_real)sqrt((double)running_var[c] + eps);
        genc_real shift = beta[c] - running_mean[c] * scale;
        for (int b = 0; b < B; b++) {
            const genc_real *p = inp + ((size_t)b * C + c) * HW;
            genc_real *q = out + ((size_t)b * C + c) * HW;
            genc_scaled_activate_run(q, p, NULL, scale, shift, HW, act, alpha);
        }
    });
}

static inline void genc_batchnorm_backward_channel(genc_real *dinp, genc_real *dgamma, genc_real *dbeta,
                                                   genc_real *dout, const genc_real *out, const genc_real *inp,
                                                   const genc_real *gamma, const genc_real *stats, int B, int C,
                                                   int HW, int act, genc_real alpha, int acc_inp, int acc_param,
                                                   int c)
{
    double n = (double)B * HW, mean = stats[c], invstd = stats[C + c], sum_dy = 0, sum_dy_xhat = 0, plane;
    for (int b = 0; b < B; b++) {
        size_t at = ((size_t)b * C + c) * HW;
        const genc_real *p = inp + at, *d = dout + at;
        genc_activation_slope_inplace(dout + at, out ? out + at : NULL, HW, act, alpha);
        GENC_PLANE_SUM(plane, HW, i, d[i]);
        sum_dy += plane;
        GENC_PLANE_SUM(plane, HW, i, d[i] * (p[i] - mean) * invstd);
        sum_dy_xhat += plane;
    }
    if (dgamma) GENC_SET_OR_ADD(dgamma[c], acc_param, (genc_real)sum_dy_xhat);
    if (dbeta) GENC_SET_OR_ADD(dbeta[c], acc_param, (genc_real)sum_dy);
    if (!dinp) return;
    double k = gamma[c] * invstd / n;
    for (int b = 0; b < B; b++) {
        const genc_real *p = inp + ((size_t)b * C + c) * HW, *d = dout + ((size_t)b * C + c) * HW;
        genc_real *q = dinp + ((size_t)b * C + c) * HW;
        for (int i = 0; i < HW; i++) {
            double xhat = (p[i] - mean) * invstd;
            GENC_SET_OR_ADD(q[i], acc_inp, (genc_real)(k * (n * d[i] - sum_dy - xhat * sum_dy_xhat)));
        }
    }
}

/* out is the output (after the activation), read when act is not the identity */
static inline void genc_batchnorm_backward(genc_real *dinp, genc_real *dgamma, genc_real *dbeta, genc_real *dout,
                                           const genc_real *out, const genc_real *inp, const genc_real *gamma,
                                           const genc_real *stats, int B, int C, int HW, int act, genc_real alpha,
                                           int acc_inp, int acc_param)
{
    GENC_BATCHNORM_CHANNELS(B, C, HW, c,
                            genc_batchnorm_backward_channel(dinp, dgamma, dbeta, dout, out, inp, gamma, stats, B, C,
                                                            HW, act, alpha, acc_inp, acc_param, (int)c););
}

/* ---- dropout: keep where the uniform draw u >= rate, scaled by 1/(1 − rate) ------- */

static inline void genc_dropout_forward(genc_real *out, const genc_real *inp, const genc_real *u, size_t n,
                                        genc_real rate)
{
    genc_real keep = 1 / (1 - rate);
    for (size_t i = 0; i < n; i++) out[i] = u[i] >= rate ? inp[i] * keep : 0;
}

static inline void genc_dropout_backward(genc_real *dinp, const genc_real *dout, const genc_real *u, size_t n,
                                         genc_real rate, int acc)
{
    genc_real keep = 1 / (1 - rate);
    for (size_t i = 0; i < n; i++) GENC_SET_OR_ADD(dinp[i], acc, u[i] >= rate ? dout[i] * keep : 0);
}

/* ---- activations --------------------------------------------------------- */

static inline void genc_activation_forward(genc_real *out, const genc_real *inp, size_t n, int act,
                                    genc_real alpha)
{
    genc_activate_run(out, inp, NULL, 0, (int)n, act, alpha);
}

static inline void genc_activation_backward(genc_real *dinp, const genc_real *dout, const genc_real *out,
                                     size_t n, int act, genc_real alpha, int acc)
{
    for (size_t i = 0; i < n; i++)
        GENC_SET_OR_ADD(dinp[i], acc, dout[i] * genc_activation_slope(act, out[i], alpha));
}

/* ---- elementwise arithmetic ---------------------------------------------- */

static inline void genc_add_forward(genc_real *out, const genc_real *a, const genc_real *b, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static inline void genc_add_backward(genc_real *da, genc_real *db, const genc_real *dout, size_t n,
                              int acc_a, int acc_b)
{
    for (size_t i = 0; i < n; i++) {
        if (da) GENC_SET_OR_ADD(da[i], acc_a, dout[i]);
        if (db) GENC_SET_OR_ADD(db[i], acc_b, dout[i]);
    }
}

static inline void genc_sub_forward(genc_real *out, const genc_real *a, const genc_real *b, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] - b[i];
}

static inline void genc_sub_backward(genc_real *da, genc_real *db, const genc_real *dout, size_t n,
                              int acc_a, int acc_b)
{
    for (size_t i = 0; i < n; i++) {
        if (da) GENC_SET_OR_ADD(da[i], acc_a, dout[i]);
        if (db) GENC_SET_OR_ADD(db[i], acc_b, -dout[i]);
    }
}

static inline void genc_mul_forward(genc_real *out, const genc_real *a, const genc_real *b, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

static inline void genc_mul_backward(genc_real *da, genc_real *db, const genc_real *dout,
                              const genc_real *a, const genc_real *b, size_t n, int acc_a, int acc_b)
{
    for (size_t i = 0; i < n; i++) {
        if (da) GENC_SET_OR_ADD(da[i], acc_a, dout[i] * b[i]);
        if (db) GENC_SET_OR_ADD(db[i], acc_b, dout[i] * a[i]);
    }
}

static inline void genc_div_forward(genc_real *out, const genc_real *a, const genc_real *b, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] / b[i];
}

static inline void genc_div_backward(genc_real *da, genc_real *db, const genc_real *dout,
                              const genc_real *a, const genc_real *b, size_t n, int acc_a, int acc_b)
{
    for (size_t i = 0; i < n; i++) {
        if (da) GENC_SET_OR_ADD(da[i], acc_a, dout[i] / b[i]);
        if (db) GENC_SET_OR_ADD(db[i], acc_b, -dout[i] * a[i] / (b[i] * b[i]));
    }
}

/* out = scale * inp + shift: arithmetic with a constant */
static inline void genc_affine_forward(genc_real *out, const genc_real *inp, size_t n, genc_real scale,
                                genc_real shift)
{
    for (size_t i = 0; i < n; i++) out[i] = scale * inp[i] + shift;
}

static inline void genc_affine_backward(genc_real *dinp, const genc_real *dout, size_t n, genc_real scale,
                                 int acc)
{
    for (size_t i = 0; i < n; i++) GENC_SET_OR_ADD(dinp[i], acc, scale * dout[i]);
}

/* out = numerator / inp: a constant divided by a tensor */
static inline void genc_reciprocal_forward(genc_real *out, const genc_real *inp, size_t n,
                                    genc_real numerator)
{
    for (size_t i = 0; i < n; i++) out[i] = numerator / inp[i];
}

static inline void genc_reciprocal_backward(genc_real *dinp, const genc_real *dout, const genc_real *out,
                                     const genc_real *inp, size_t n, int acc)
{
    for (size_t i = 0; i < n; i++) GENC_SET_OR_ADD(dinp[i], acc, -dout[i] * out[i] / inp[i]);
}

static inline void genc_exp_forward(genc_real *out, const genc_real *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = genc_exp_vectorisable(inp[i]);
}

static inline void genc_exp_backward(genc_real *dinp, const genc_real *dout, const genc_real *out,
                              size_t n, int acc)
{
    for (size_t i = 0; i < n; i++) GENC_SET_OR_ADD(dinp[i], acc, dout[i] * out[i]);
}

static inline void genc_log_forward(genc_real *out, const genc_real *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = GENC_LOG(inp[i]);
}

static inline void genc_log_backward(genc_real *dinp, const genc_real *dout, const genc_real *inp,
                              size_t n, int acc)
{
    for (size_t i = 0; i < n; i++) GENC_SET_OR_ADD(dinp[i], acc, dout[i] / inp[i]);
}

/* ---- reductions and losses: out is one number ----------------------------- */

/* out = scale * Σ inp (scale is 1 for sum, 1/n for mean) */
static inline void genc_sum_forward(genc_real *out, const genc_real *inp, size_t n, genc_real scale)
{
    double total;
    GENC_LANE_SUM(total, n, i, inp[i]);
    out[0] = (genc_real)(scale * total);
}

static inline void genc_sum_backward(genc_real *dinp, const genc_real *dout, size_t n, genc_real scale,
                              int acc)
{
    for (size_t i = 0; i < n; i++) GENC_SET_OR_ADD(dinp[i], acc, scale * dout[0]);
}

/* The target of a loss is a tensor, or (target == NULL) the constant target_value.
 * The forward sums test which once, outside the loop, so that the loop vectorises. */
#define GENC_TARGET(i) (target ? target[i] : target_value)

static inline double genc_squared_difference(genc_real a, genc_real b)
{
    double d = a - b;
    return d * d;
}

/* mean of (pred - target)² */
static inline void genc_mse_forward(genc_real *out, const genc_real *pred, const genc_real *target,
                             genc_real target_value, size_t n)
{
    double total;
    if (target) GENC_LANE_SUM(total, n, i, genc_squared_difference(pred[i], target[i]));
    else GENC_LANE_SUM(total, n, i, genc_squared_difference(pred[i], target_value));
    out[0] = (genc_real)(total / n);
}

static inline void genc_mse_backward(genc_real *dpred, genc_real *dtarget, const genc_real *dout,
                              const genc_real *pred, const genc_real *target, genc_real target_value,
                              size_t n, int acc_pred, int acc_target)
{
    genc_real k = 2 * dout[0] / (genc_real)n;
    GENC_ELEMENTWISE(n, i, {
        genc_real g = k * (pred[i] - GENC_TARGET(i));
        if (dpred) GENC_SET_OR_ADD(dpred[i], acc_pred, g);
        if (dtarget) GENC_SET_OR_ADD(dtarget[i], acc_target, -g);
    });
}

/* PyTorch's BCELoss: logs clamped at -100 so that p = 0 or 1 stays finite. */
static inline genc_real genc_clamped_log(genc_real x)
{
    genc_real l = genc_log_vectorisable(x);
    return l < -100 ? -100 : l;
}

static inline genc_real genc_bce_term(genc_real p, genc_real t)
{
    return -(t * genc_clamped_log(p) + (1 - t) * genc_clamped_log(1 - p));
}

/* genc_bce_term for p in [FLT_MIN, 1), as a sigmoid's outputs nearly always
 * are: p and 1 − p are normal, so the logs skip their special cases (the
 * VAE's BCE ran in half the time), and are above −100, so need no clamp. */
static inline int genc_bce_usual(genc_real p) { return (p >= FLT_MIN) & (p < 1); }
static inline genc_real genc_bce_usual_term(genc_real p, genc_real t)
{
    return -(t * genc_log_normal(p) + (1 - t) * genc_log_normal(1 - p));
}

/* In 64-byte vectors where the target has them: the VAE's BCE, two logs a
 * term, took 30 us of an iteration at 2 threads in 32-byte ones, 22 here */
static inline GENC_WIDE_LOOPS void genc_bce_forward(genc_real *out, const genc_real *prob, const genc_real *target,
                             genc_real target_value, size_t n)
{
    double total;
    if (target)
        GENC_COSTLY_LANE_SUM_IF_USUAL(total, n, i, genc_bce_usual(prob[i]), genc_bce_usual_term(prob[i], target[i]),
                                      genc_bce_term(prob[i], target[i]));
    else
        GENC_COSTLY_LANE_SUM_IF_USUAL(total, n, i, genc_bce_usual(prob[i]), genc_bce_usual_term(prob[i], target_value),
                                      genc_bce_term(prob[i], target_value));
    out[0] = (genc_real)(total / n);
}

static inline void genc_bce_backward(genc_real *dprob, genc_real *dtarget, const genc_real *dout,
                              const genc_real *prob, const genc_real *target, genc_real target_value,
                              size_t n, int acc_prob, int acc_target)
{
    genc_real k = dout[0] / (genc_real)n;
    if (dprob)
        GENC_ELEMENTWISE(n, i, {
            genc_real p = prob[i], denom = p * (1 - p);
            if (denom < (genc_real)1e-12) denom = (genc_real)1e-12; /* as PyTorch clamps */
            GENC_SET_OR_ADD(dprob[i], acc_prob, k * (p - GENC_TARGET(i)) / denom);
        });
    if (dtarget)
        GENC_ELEMENTWISE(n, i, {
            genc_real p = prob[i];
            GENC_SET_OR_ADD(dtarget[i], acc_target, k * (genc_clamped_log(1 - p) - genc_clamped_log(p)));
        });
}

/* Binary cross-entropy on logits, in the stable form max(x,0) - x·t + log(1 + e^-|x|). */
static inline double genc_bce_logits_term(genc_real x, genc_real t)
{
    return (x > 0 ? x : 0) - x * t + log1p(exp(-fabs((double)x)));
}

static inline void genc_bce_logits_forward(genc_real *out, const genc_real *logits, const genc_real *target,
                                    genc_real target_value, size_t n)
{
    double total;
    if (target) GENC_COSTLY_LANE_SUM(total, n, i, genc_bce_logits_term(logits[i], target[i]));
    else GENC_COSTLY_LANE_SUM(total, n, i, genc_bce_logits_term(logits[i], target_value));
    out[0] = (genc_real)(total / n);
}

static inline void genc_bce_logits_backward(genc_real *dlogits, genc_real *dtarget, const genc_real *dout,
                                     const genc_real *logits, const genc_real *target,
                                     genc_real target_value, size_t n, int acc_logits, int acc_target)
{
    genc_real k = dout[0] / (genc_real)n;
    for (size_t i = 0; i < n; i++) {
        genc_real x = logits[i];
        if (dlogits)
            GENC_SET_OR_ADD(dlogits[i], acc_logits,
                            k * (genc_activate(GENC_ACT_SIGMOID, x, 0) - GENC_TARGET(i)));
        if (dtarget) GENC_SET_OR_ADD(dtarget[i], acc_target, -k * x);
    }
}

/* KL(N(mean, e^logvar) ‖ N(0, 1)), summed over the D latent dimensions and
 * averaged over the batch: -½ Σ (1 + logvar - mean² - e^logvar) / B. */
static inline void genc_kl_normal_forward(genc_real *out, const genc_real *mean, const genc_real *logvar,
                                   int B, int D)
{
    double total;
    GENC_COSTLY_LANE_SUM(total, (size_t)B * D, i,
                         1 + logvar[i] - mean[i] * mean[i] - genc_exp_vectorisable(logvar[i]));
    out[0] = (genc_real)(-0.5 * total / B);
}

static inline void genc_kl_normal_backward(genc_real *dmean, genc_real *dlogvar, const genc_real *dout,
                                    const genc_real *mean, const genc_real *logvar, int B, int D,
                                    int acc_mean, int acc_logvar)
{
    genc_real k = dout[0] / (genc_real)B;
    for (size_t i = 0; i < (size_t)B * D; i++) {
        if (dmean) GENC_SET_OR_ADD(dmean[i], acc_mean, k * mean[i]);
        if (dlogvar) GENC_SET_OR_ADD(dlogvar[i], acc_logvar, k * (genc_exp_vectorisable(logvar[i]) - 1) / 2);
    }
}

#undef GENC_TARGET

/* ---- shape ops ------------------------------------------------------------ */

/* out (B, NA+NB) = [a (B,NA), b (B,NB)] */
static inline void genc_concat_forward(genc_real *out, const genc_real *a, const genc_real *b, int B,
                                int NA, int NB)
{
    for (int r = 0; r < B; r++) {
        genc_real *row = out + (size_t)r * (NA + NB);
        for (int i = 0; i < NA; i++) row[i] = a[(size_t)r * NA + i];
        for (int i = 0; i < NB; i++) row[NA + i] = b[(size_t)r * NB + i];
    }
}

static inline void genc_concat_backward(genc_real *da, genc_real *db, const genc_real *dout, int B, int NA,
                                 int NB, int acc_a, int acc_b)
{
    for (int r = 0; r < B; r++) {
        const genc_real *row = dout + (size_t)r * (NA + NB);
        if (da)
            for (int i = 0; i < NA; i++) GENC_SET_OR_ADD(da[(size_t)r * NA + i], acc_a, row[i]);
        if (db)
            for (int i = 0; i < NB; i++) GENC_SET_OR_ADD(db[(size_t)r * NB + i], acc_b, row[NA + i]);
    }
}

/* out (B,N): row b is the one-hot code of labels[b]; a label outside 0..N-1 gives zeros. */
static inline void genc_onehot_forward(genc_real *out, const genc_real *labels, int B, int N)
{
    for (int b = 0; b < B; b++)
        for (int k = 0; k < N; k++)
            out[(size_t)b * N + k] = (int)labels[b] == k ? 1 : 0;
}

#endif
