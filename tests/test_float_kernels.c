/* test_float_kernels.c — the kernels whose single-precision code differs from
 * the double build that test_kernels checks: the polynomial e^x behind
 * sigmoid, tanh and the log behind BCE, the loss sums' lanes, the batch-1 dense
 * product (eight rows reduced together by vector shuffles) and the small
 * product's tiles, which read A and B in place, col2im, batchnorm and the
 * dense backward pass on threads, and the float Box-Muller of genc_rng.h,
 * each against a double-precision reference;
 * the BCE loss, whose logs skip their special cases where they cannot
 * arise, against long double; the activations over runs of values against
 * each value alone; and Adam's division against the plain one, bit for bit. */
#include "../runtime/genc_kernels.h"
#include "../runtime/genc_rng.h"
#include "../runtime/genc_runtime.h"

#include <check.h>

#include "run_suite.h"
#include <float.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

/* distance in units in the last place between two finite floats */
static int64_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia), memcpy(&ib, &b, sizeof ib);
    int64_t oa = ia < 0 ? -(int64_t)(ia & 0x7fffffff) : ia, ob = ib < 0 ? -(int64_t)(ib & 0x7fffffff) : ib;
    return oa > ob ? oa - ob : ob - oa;
}

START_TEST(exp_is_within_one_ulp_where_finite)
{
    int64_t worst = 0;
    float worst_at = 0;
    for (float x = -87; x <= 88; x += 1.0f / 1024) {
        float want = (float)exp((double)x), got = genc_exp_clamped(x), unclamped = genc_exp_vectorisable(x);
        if (ulps(got, want) > worst) worst = ulps(got, want), worst_at = x;
        ck_assert(memcmp(&got, &unclamped, sizeof got) == 0); /* one polynomial, so within the same ulp */
    }
    ck_assert_msg(worst <= 1, "e^%.9g is %lld ulp from the correctly rounded value", worst_at, (long long)worst);
}
END_TEST

/* The unclamped e^x where expf's result is subnormal, overflows or is 0:
 * every other float of [-104, -87] and of [88, 89], and the special values. */
START_TEST(exp_covers_subnormals_and_overflow)
{
    static const float ranges[][2] = {{-104, -87}, {88, 89}};
    for (int k = 0; k < 2; k++) {
        int64_t worst = 0;
        float worst_at = 0;
        for (float x = ranges[k][0]; x <= ranges[k][1]; x = nextafterf(nextafterf(x, INFINITY), INFINITY)) {
            float want = (float)exp((double)x), got = genc_exp_vectorisable(x);
            ck_assert_msg(isinf(want) == isinf(got), "e^%a is %a, want %a", x, got, want);
            if (!isinf(want) && ulps(got, want) > worst) worst = ulps(got, want), worst_at = x;
        }
        ck_assert_msg(worst <= 1, "e^%a is %lld ulp from the correctly rounded value", worst_at, (long long)worst);
    }
    ck_assert(genc_exp_vectorisable(-1000) == 0 && genc_exp_vectorisable(-INFINITY) == 0);
    ck_assert(isinf(genc_exp_vectorisable(1000)) && isinf(genc_exp_vectorisable(INFINITY)));
    ck_assert(isnan(genc_exp_vectorisable(NAN)));
    ck_assert(genc_exp_vectorisable(0) == 1);
    ck_assert(genc_exp_vectorisable(-103.5f) > 0); /* e^-103.5 ≈ 1.1e-45: the least subnormal */
}
END_TEST

START_TEST(exp_clamps_the_tails_and_keeps_nan)
{
    ck_assert(genc_exp_clamped(-1000) > 0 && genc_exp_clamped(-1000) < 2e-38f);
    ck_assert(genc_exp_clamped(1000) > 1e38f && genc_exp_clamped(1000) <= FLT_MAX);
    ck_assert(isnan(genc_exp_clamped(NAN)));
    /* sigmoid saturates to 0 and 1 rather than overflowing */
    ck_assert_float_eq(genc_activate(GENC_ACT_SIGMOID, 200, 0), 1);
    ck_assert(genc_activate(GENC_ACT_SIGMOID, -200, 0) < 1e-37f);
    ck_assert(isnan(genc_activate(GENC_ACT_SIGMOID, NAN, 0)));
}
END_TEST

/* the largest error(x) over every step-th float of [lo, hi] (positive), and where */
static int64_t worst_every(int64_t (*error)(float), float lo, float hi, int32_t step, float *worst_at)
{
    int64_t worst = 0;
    int32_t first, last;
    memcpy(&first, &lo, sizeof first), memcpy(&last, &hi, sizeof last);
    for (int32_t bits = first; bits <= last; bits += step) {
        float x;
        memcpy(&x, &bits, sizeof x);
        int64_t e = error(x);
        if (e > worst) worst = e, *worst_at = x;
    }
    return worst;
}

/* ulps between the polynomial tanh and the correctly rounded one */
static int64_t tanh_error(float x) { return ulps(genc_tanh_vectorisable(x), (float)tanh((double)x)); }

/* Every float from the smallest subnormal to 10 (past which tanh rounds to 1)
 * in steps of a 2^-12 part, every 8th float around the switch at 0.625, each
 * with both signs; then the special values. */
START_TEST(tanh_is_within_one_ulp)
{
    int64_t worst = 0;
    float worst_at = 0;
    for (float x = 1.4e-45f; x <= 10; x = nextafterf(x * (1 + 1.0f / 4096), INFINITY)) {
        int64_t e = tanh_error(x);
        if (e > worst) worst = e, worst_at = x;
        float negated = -genc_tanh_vectorisable(-x), got = genc_tanh_vectorisable(x);
        ck_assert(memcmp(&negated, &got, sizeof got) == 0); /* odd, bit for bit */
    }
    float switch_at = 0;
    int64_t near_switch = worst_every(tanh_error, 0.5f, 0.75f, 8, &switch_at);
    if (near_switch > worst) worst = near_switch, worst_at = switch_at;
    ck_assert_msg(worst <= 1, "tanh(%.9g) is %lld ulp from the correctly rounded value", worst_at, (long long)worst);
    ck_assert(genc_tanh_vectorisable(0) == 0 && !signbit(genc_tanh_vectorisable(0)));
    ck_assert(signbit(genc_tanh_vectorisable(-0.0f)));
    ck_assert(genc_tanh_vectorisable(INFINITY) == 1 && genc_tanh_vectorisable(-INFINITY) == -1);
    ck_assert(genc_tanh_vectorisable(FLT_MAX) == 1 && genc_tanh_vectorisable(-1000) == -1);
    ck_assert(isnan(genc_tanh_vectorisable(NAN)));
    ck_assert_float_eq(genc_activate(GENC_ACT_TANH, 0.5f, 0), genc_tanh_vectorisable(0.5f));
}
END_TEST

/* ulps between the polynomial log and the correctly rounded one */
static int64_t log_error(float x) { return ulps(genc_log_vectorisable(x), (float)log((double)x)); }

/* Every float from the smallest subnormal to FLT_MAX in steps of a 2^-10 part,
 * so every exponent and mantissa range is crossed, including both sides of √½. */
START_TEST(log_is_within_one_ulp_where_finite)
{
    int64_t worst = 0;
    float worst_at = 0;
    long checked = 0;
    for (float x = 1.4e-45f; x <= FLT_MAX; x = nextafterf(x * (1 + 1.0f / 1024), INFINITY), checked++) {
        int64_t e = log_error(x);
        if (e > worst) worst = e, worst_at = x;
    }
    ck_assert(checked > 100000);
    ck_assert_msg(worst <= 1, "log(%.9g) is %lld ulp from the correctly rounded value", worst_at, (long long)worst);
    /* near 1, where log x ≈ x − 1 is small and relative error shows most:
     * every 32nd float of [0.9, 1.1] (all of them take too long under the
     * sanitizers) */
    worst = worst_every(log_error, 0.9f, 1.1f, 32, &worst_at);
    ck_assert_msg(worst <= 1, "log(%.9g) is %lld ulp off", worst_at, (long long)worst);
}
END_TEST

START_TEST(log_special_values)
{
    ck_assert(genc_log_vectorisable(0) == -INFINITY);
    ck_assert(genc_log_vectorisable(INFINITY) == INFINITY);
    ck_assert(isnan(genc_log_vectorisable(-1)));
    ck_assert(genc_log_vectorisable(-0.0f) == -INFINITY); /* as logf(-0) */
    ck_assert(isnan(genc_log_vectorisable(NAN)));
    ck_assert_float_eq(genc_log_vectorisable(1), 0);
    /* BCE's log is clamped at -100, as PyTorch's: p = 0 and a subnormal p both stay finite */
    ck_assert_float_eq(genc_clamped_log(0), -100);
    ck_assert_float_eq(genc_clamped_log(1e-45f), -100);
    ck_assert_float_eq_tol(genc_clamped_log(1e-40f), (float)log(1e-40), 1e-4);
}
END_TEST

/* The loss sums, in lanes, against one running sum in long double, for
 * lengths around the lane count (the tail) and a long one; and the plane
 * sum, bit for bit, against the lanes. */
START_TEST(lane_sums_match_long_double)
{
    static const size_t lengths[] = {0, 1, 15, 16, 17, 33, 63, 64, 65, 16383, 16384, 16385, 50176};
    float *v = malloc(sizeof(float) * 50176);
    srand(3);
    for (size_t i = 0; i < 50176; i++) v[i] = (float)rand() / RAND_MAX - 0.3f;
    for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) {
        size_t n = lengths[k];
        double total;
        long double want = 0, size = 0;
        GENC_LANE_SUM(total, n, i, v[i]);
        for (size_t i = 0; i < n; i++) want += v[i], size += fabsl(v[i]);
        ck_assert_msg(fabsl(total - want) <= 1e-14L * (1 + size), "n=%zu: %.17g, want %.17Lg", n, total, want);
    }
    /* GENC_PLANE_SUM, in order below a lane group, gives the lanes' bits (the
     * terms / 7 round, so a different order would show) */
    for (size_t n = 0; n <= 2 * GENC_LANES; n++) {
        double lanes, plane;
        GENC_LANE_SUM(lanes, n, i, v[i] / 7.0);
        GENC_PLANE_SUM(plane, n, i, v[i] / 7.0);
        ck_assert_msg(memcmp(&lanes, &plane, sizeof lanes) == 0, "n=%zu: %.17g vs %.17g", n, plane, lanes);
    }
    free(v);
}
END_TEST

/* GENC_COSTLY_LANE_SUM runs the parts on threads from GENC_PARALLEL_SUM
 * terms on: the same bits on one thread as on two, and as GENC_LANE_SUM. */
START_TEST(lane_sums_do_not_depend_on_the_thread_count)
{
    static const size_t lengths[] = {16384, 16385, 50176, 100003};
    float *v = malloc(sizeof(float) * 100003);
    srand(5);
    for (size_t i = 0; i < 100003; i++) v[i] = (float)rand() / RAND_MAX * 1e3f - 300;
    for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) {
        double by_thread_count[2];
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            ck_assert_int_eq(genc_team_size(GENC_SUM_PARTS), threads);
            GENC_COSTLY_LANE_SUM(by_thread_count[threads - 1], lengths[k], i, (double)v[i] * v[i] / 7);
        }
        ck_assert_msg(memcmp(&by_thread_count[0], &by_thread_count[1], sizeof(double)) == 0, "n=%zu: %.17g vs %.17g",
                      lengths[k], by_thread_count[0], by_thread_count[1]);
        double serial;
        GENC_LANE_SUM(serial, lengths[k], i, (double)v[i] * v[i] / 7);
        ck_assert(memcmp(&serial, &by_thread_count[1], sizeof(double)) == 0);
    }
    free(v);
}
END_TEST

/* PyTorch's BCE term, in long double */
static long double bce_term_long(float p, float t)
{
    long double lp = p > 0 ? logl(p) : -INFINITY, lq = p < 1 ? logl(1.0L - p) : -INFINITY;
    if (p != p || p > 1) return NAN;
    return -(t * (lp < -100 ? -100 : lp) + (1 - t) * (lq < -100 ? -100 : lq));
}

/* The BCE loss takes its logs without their special cases in each part
 * whose p are all in [FLT_MIN, 1). Against long double, for probabilities
 * all in that range and with one outside it (0, 1, a subnormal, above 1,
 * NaN; its target 0.5, so that either log would show a wrong value) in the
 * first, a middle or the last part, on one thread and on two (the same
 * bits). */
START_TEST(bce_loss_matches_long_double)
{
    static const size_t lengths[] = {17, 64, 16385, 50176};
    static const float unusual[] = {0, 1, 1e-40f, 1.5f, NAN};
    float *p = malloc(sizeof(float) * 50176), *t = malloc(sizeof(float) * 50176);
    srand(11);
    for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) {
        size_t n = lengths[k];
        for (int place = -1; place < 3; place++) {
            for (int u = 0; u < (place < 0 ? 1 : (int)(sizeof unusual / sizeof *unusual)); u++) {
                for (size_t i = 0; i < n; i++) {
                    p[i] = ldexpf((float)rand() / RAND_MAX, -(rand() % 40)); /* down to 2^-40 */
                    p[i] = p[i] < FLT_MIN ? FLT_MIN : p[i] >= 1 ? 0.99999994f : p[i];
                    t[i] = (float)(rand() % 256) / 255;
                }
                if (place >= 0) {
                    size_t at = place == 0 ? 0 : place == 1 ? n / 2 : n - 1;
                    p[at] = unusual[u], t[at] = 0.5f;
                }
                long double want = 0, size = 0;
                for (size_t i = 0; i < n; i++) {
                    long double term = bce_term_long(p[i], t[i]);
                    want += term, size += fabsl(term);
                }
                want /= n, size /= n;
                float by_threads[2];
                for (int threads = 1; threads <= 2; threads++) {
                    omp_set_num_threads(threads);
                    genc_bce_forward(&by_threads[threads - 1], p, t, 0, n);
                }
                float loss = by_threads[0];
                ck_assert_msg(isnan(want) ? isnan(loss) : fabsl(loss - want) <= 1e-6L * size,
                              "n=%zu, p=%g at %d: %.9g, want %.9Lg", n, place < 0 ? 0.5 : unusual[u], place, loss,
                              want);
                ck_assert(memcmp(&by_threads[0], &by_threads[1], sizeof loss) == 0 || isnan(loss));
            }
        }
    }
    free(p), free(t);
}
END_TEST

/* Adam's root / bias correction, computed with Markstein's correction: the
 * bits of the division, for moments from 0 through the largest floats and
 * infinite or NaN ones, at the first steps and late ones. */
START_TEST(adam_matches_its_formula_bit_for_bit)
{
    enum { N = 4096 };
    static const float beta2s[] = {0.999f, 0.99f, 0.9f};
    static const long steps[] = {1, 2, 3, 10, 77, 1000, 123457};
    float *param = malloc(sizeof(float) * N), *want = malloc(sizeof(float) * N), *grad = malloc(sizeof(float) * N),
          *m = malloc(sizeof(float) * N), *v = malloc(sizeof(float) * N), *m0 = malloc(sizeof(float) * N),
          *v0 = malloc(sizeof(float) * N);
    srand(13);
    for (int i = 0; i < N; i++) {
        grad[i] = ldexpf((float)rand() / RAND_MAX - 0.5f, rand() % 120 - 60);
        m0[i] = ldexpf((float)rand() / RAND_MAX - 0.5f, rand() % 120 - 60);
        v0[i] = ldexpf((float)rand() / RAND_MAX, rand() % 300 - 150); /* subnormal through 2^149 */
    }
    v0[0] = 0, v0[1] = INFINITY, v0[2] = NAN, v0[3] = 1.4e-45f, v0[4] = FLT_MAX, grad[5] = 0, grad[6] = 1e30f;
    for (size_t b = 0; b < sizeof beta2s / sizeof *beta2s; b++)
        for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
            GencOptimizer adam = {.kind = GENC_ADAM, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = beta2s[b], .eps = 1e-8f};
            long step = steps[s];
            float bias1 = 1 - powf(adam.beta1, (float)step), bias2 = 1 - powf(adam.beta2, (float)step);
            float step_size = adam.lr / bias1, root_bias2 = sqrtf(bias2);
            for (int i = 0; i < N; i++) param[i] = 0.25f;
            memcpy(m, m0, sizeof(float) * N), memcpy(v, v0, sizeof(float) * N);
            genc_optimizer_update(&adam, step, param, grad, m, v, N);
            for (int i = 0; i < N; i++) {
                want[i] = 0.25f - step_size * m[i] / (sqrtf(v[i]) / root_bias2 + adam.eps); /* m, v updated */
                ck_assert_msg(memcmp(&param[i], &want[i], sizeof(float)) == 0 || (isnan(param[i]) && isnan(want[i])),
                              "beta2 %g, step %ld, v %a: %a, want %a", beta2s[b], step, v[i], param[i], want[i]);
            }
        }
    free(param), free(want), free(grad), free(m), free(v), free(m0), free(v0);
}
END_TEST

/* One row times weights stored (N, K) (row dots) or (K, N) (row sums), as a
 * sampler's dense layer at batch 1: every N and K around the vector width,
 * the eight-row blocks, the four-vector blocks and the 256-deep chunks. */
START_TEST(batch_one_product_matches_double)
{
    static const int sizes[] = {1, 7, 8, 9, 15, 16, 17, 33, 64, 100, 128, 300};
    const int n_sizes = (int)(sizeof sizes / sizeof *sizes);
    srand(7);
    for (int in = 0; in < n_sizes; in++)
        for (int jn = 0; jn < n_sizes; jn++)
            for (int trans_b = 0; trans_b < 2; trans_b++) {
                int N = sizes[in], K = sizes[jn];
                float *a = malloc(sizeof(float) * K), *b = malloc(sizeof(float) * N * K), *c = malloc(sizeof(float) * N);
                for (int k = 0; k < K; k++) a[k] = (float)rand() / RAND_MAX - 0.5f;
                for (int i = 0; i < N * K; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
                for (int acc = 0; acc < 2; acc++) {
                    for (int j = 0; j < N; j++) c[j] = 0.25f;
                    genc_gemm_small(0, trans_b, 1, N, K, a, K, b, trans_b ? K : N, acc, c, N);
                    for (int j = 0; j < N; j++) {
                        double want = acc ? 0.25 : 0, size = 0;
                        for (int k = 0; k < K; k++) {
                            double y = trans_b ? b[j * K + k] : b[k * N + j];
                            want += a[k] * y, size += fabs(a[k] * y);
                        }
                        ck_assert_msg(fabs(c[j] - want) <= 1e-6 * (1 + size),
                                      "N=%d K=%d trans_b=%d acc=%d: c[%d] = %.9g, want %.9g", N, K, trans_b, acc, j,
                                      c[j], want);
                    }
                }
                free(a), free(b), free(c);
            }
    /* A tail of K % 16 values is read as the row's last 16, the first of
     * them masked off, not multiplied by 0: an infinite weight among them,
     * summed once already, gives ±∞, not NaN (0·∞). */
    for (int rows = 1; rows <= GENC_DOT_ROWS; rows += GENC_DOT_ROWS - 1) {
        enum { K = 20 };
        float a[K], b[GENC_DOT_ROWS * K], c[GENC_DOT_ROWS];
        for (int k = 0; k < K; k++) a[k] = 1;
        for (int i = 0; i < rows * K; i++) b[i] = 0.5f;
        b[5] = INFINITY; /* first row: summed among values 0-15, and within the last 16 (4-19) */
        genc_gemm_small(0, 1, 1, rows, K, a, K, b, K, 0, c, rows);
        ck_assert_msg(isinf(c[0]) && c[0] > 0, "%d row(s): c[0] = %g", rows, c[0]);
        for (int j = 1; j < rows; j++) ck_assert_float_eq(c[j], 0.5f * K);
    }
}
END_TEST

/* A few rows times B stored (K, N) are row sums, four rows are a tile: each
 * row has the same bits either way, so that a sampler's input-major dense
 * layer at batch 1 sums as the trainer's tiles do, chunk by chunk of 256,
 * with and without accumulating, and the columns past the whole vectors
 * (through the tiles) too. */
START_TEST(row_sums_have_the_bits_of_a_tile)
{
    static const int shapes[][2] = {{16, 1}, {17, 100}, {64, 256}, {100, 257}, {784, 600}, {250, 128}}; /* N, K */
    srand(9);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int N = shapes[s][0], K = shapes[s][1];
        float *a = malloc(sizeof(float) * GENC_GEMM_MR * K), *b = malloc(sizeof(float) * K * N);
        float *tile = malloc(sizeof(float) * GENC_GEMM_MR * N), *rows = malloc(sizeof(float) * GENC_GEMM_MR * N);
        for (int i = 0; i < GENC_GEMM_MR * K; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
        for (int i = 0; i < K * N; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
        for (int acc = 0; acc < 2; acc++)
            for (int M = 1; M < GENC_GEMM_MR; M++) {
                for (int i = 0; i < GENC_GEMM_MR * N; i++) tile[i] = rows[i] = (float)i / N - 1;
                genc_gemm_small(0, 0, GENC_GEMM_MR, N, K, a, K, b, N, acc, tile, N);
                genc_gemm_small(0, 0, M, N, K, a, K, b, N, acc, rows, N);
                ck_assert_msg(memcmp(rows, tile, sizeof(float) * M * N) == 0, "%dx%dx%d acc %d: rows differ from a tile",
                              M, N, K, acc);
            }
        free(a), free(b), free(tile), free(rows);
    }
}
END_TEST

/* genc_gemm_small computes a product in column blocks of a tile's width
 * (two native vectors on AVX-512), then of NR, then the narrower rest; each
 * element is one chain of multiply-adds however wide its block. So a band of
 * 16 columns computed alone, in an NR-wide tile, has the bits of the same
 * columns of the whole product, as genc_gemm_band needs, in every layout. */
START_TEST(column_bands_have_the_bits_of_the_whole_product)
{
    enum { M = 9, N = 50, K = 300 }; /* blocks of 32 (AVX-512), 16 and 2 columns; K in two chunks of KC */
    srand(11);
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *whole = malloc(sizeof(float) * M * N), *band = malloc(sizeof(float) * M * GENC_GEMM_NR);
    for (int i = 0; i < M * K; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < K * N; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int trans_a = 0; trans_a < 2; trans_a++)
        for (int trans_b = 0; trans_b < 2; trans_b++) {
            int lda = trans_a ? M : K, ldb = trans_b ? K : N;
            genc_gemm_small(trans_a, trans_b, M, N, K, a, lda, b, ldb, 0, whole, N);
            for (int lo = 0; lo + GENC_GEMM_NR <= N; lo += GENC_GEMM_NR) {
                genc_gemm_small(trans_a, trans_b, M, GENC_GEMM_NR, K, a, lda, trans_b ? b + (size_t)lo * ldb : b + lo,
                                ldb, 0, band, GENC_GEMM_NR);
                for (int i = 0; i < M; i++)
                    ck_assert_msg(memcmp(band + i * GENC_GEMM_NR, whole + i * N + lo, sizeof(float) * GENC_GEMM_NR) == 0,
                                  "trans_a %d trans_b %d: row %d of the band at column %d differs from the whole",
                                  trans_a, trans_b, i, lo);
            }
        }
    free(a), free(b), free(whole), free(band);
}
END_TEST

/* genc_gemm on a few rows times a large B, stored (N, K) or (K, N), which
 * it computes as row dots or row sums instead of calling BLAS, and on the
 * rows on either side of that switch (4 and 5, through BLAS). */
START_TEST(few_row_large_product_matches_double)
{
    enum { N = 4200, K = 500 }; /* 4·N·K above GENC_SMALL_GEMM */
    ck_assert(!genc_gemm_is_small(0, 4, N, K));
    srand(5);
    float *a = malloc(sizeof(float) * 5 * K), *b = malloc(sizeof(float) * N * K), *c = malloc(sizeof(float) * 5 * N);
    for (int i = 0; i < 5 * K; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < N * K; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int trans_b = 0; trans_b < 2; trans_b++)
        for (int M = 1; M <= 5; M++)
            for (int acc = 0; acc < 2; acc++) {
                for (int i = 0; i < M * N; i++) c[i] = 0.5f;
                genc_gemm(0, trans_b, M, N, K, a, K, b, trans_b ? K : N, acc, c, N);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double want = acc ? 0.5 : 0, size = 0;
                        for (int k = 0; k < K; k++) {
                            double y = trans_b ? b[j * K + k] : b[k * N + j];
                            want += a[i * K + k] * y, size += fabs(a[i * K + k] * y);
                        }
                        ck_assert_msg(fabs(c[i * N + j] - want) <= 1e-6 * (1 + size),
                                      "M=%d trans_b=%d acc=%d: c[%d,%d] = %.9g, want %.9g", M, trans_b, acc, i, j,
                                      c[i * N + j], want);
                    }
            }
    free(a), free(b), free(c);
}
END_TEST

/* Every transpose pair, sizes around the 4x16 tile, the 256-deep panel and
 * the 16x16 blocks in which B stored (N,K) is packed. */
START_TEST(small_product_matches_double)
{
    static const int sizes[][3] = {{1, 1, 1}, {3, 17, 9}, {4, 16, 16}, {5, 33, 7}, {16, 784, 9}, {9, 20, 300}, {6, 40, 37}, {13, 40, 37}};
    srand(11);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int t = 0; t < 4; t++) {
            int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], trans_a = t & 1, trans_b = t >> 1;
            float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N);
            for (int i = 0; i < M * K; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
            for (int i = 0; i < K * N; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
            for (int acc = 0; acc < 2; acc++) {
                for (int i = 0; i < M * N; i++) c[i] = 0.5f;
                genc_gemm_small(trans_a, trans_b, M, N, K, a, trans_a ? M : K, b, trans_b ? K : N, acc, c, N);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double want = acc ? 0.5 : 0, size = 0;
                        for (int k = 0; k < K; k++) {
                            double x = trans_a ? a[k * M + i] : a[i * K + k], y = trans_b ? b[j * K + k] : b[k * N + j];
                            want += x * y, size += fabs(x * y);
                        }
                        ck_assert_msg(fabs(c[i * N + j] - want) <= 1e-6 * (1 + size),
                                      "%dx%dx%d trans %d%d acc %d: c[%d,%d] = %.9g, want %.9g", M, N, K, trans_a,
                                      trans_b, acc, i, j, c[i * N + j], want);
                    }
            }
            free(a), free(b), free(c);
        }
}
END_TEST

/* genc_activate_run computes whole runs of NR values in vector registers
 * and the rest one by one: every element, at every length and offset, for
 * every activation, with a bias, with a constant and in place, has the bits
 * of genc_activate on that one element, so that a band's split between the
 * two paths never shows. */
START_TEST(activation_runs_match_each_element)
{
    enum { MOST = 3 * GENC_GEMM_NR + 5 };
    static const int acts[] = {GENC_ACT_IDENTITY, GENC_ACT_RELU, GENC_ACT_LEAKY_RELU, GENC_ACT_SIGMOID, GENC_ACT_TANH};
    float src[MOST + 1], bias[MOST + 1], got[MOST + 1];
    srand(5);
    for (int i = 0; i <= MOST; i++) src[i] = 8 * ((float)rand() / RAND_MAX - 0.5f), bias[i] = (float)rand() / RAND_MAX;
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++)
        for (int offset = 0; offset <= 1; offset++)
            for (int n = 0; n + offset <= MOST; n++)
                for (int with_bias = 0; with_bias <= 1; with_bias++) {
                    const float *b = with_bias ? bias + offset : NULL;
                    memcpy(got, src, sizeof got);
                    genc_activate_run(got + offset, got + offset, b, 0.75f, n, acts[a], 0.2f); /* in place */
                    for (int i = 0; i <= MOST; i++) {
                        int inside = i >= offset && i < offset + n;
                        float want = inside ? genc_activate(acts[a], src[i] + (b ? b[i - offset] : 0.75f), 0.2f)
                                            : src[i];
                        ck_assert_msg(memcmp(&got[i], &want, sizeof want) == 0,
                                      "act %d, n %d, offset %d, bias %d: element %d is %.9g, want %.9g", acts[a], n,
                                      offset, with_bias, i, got[i], want);
                    }
                }
}
END_TEST

/* A 2x2 max pool's backward pass, which reads each row pair in runs of NR
 * columns where vectors allow: the first maximum of each window in scan
 * order takes the gradient, with ties (ReLU's zeros), NaN and -inf inputs,
 * -0 gradients and acc, bit for bit, on rows of 28, 14 and 36 columns (a
 * shorter last run, a single short run, and two whole runs). */
START_TEST(maxpool_2x2_backward_matches_scan_order)
{
    enum { B = 2, C = 3, MOST = 36 };
    static const int sizes[] = {28, 14, 36};
    static float inp[B * C * MOST * MOST], dinp[B * C * MOST * MOST], before[B * C * MOST * MOST];
    static float dout[B * C * MOST * MOST / 4];
    srand(9);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        for (int acc = 0; acc <= 1; acc++) {
            int H = sizes[k], W = H, OH = H / 2, OW = W / 2;
            size_t n = (size_t)B * C * H * W, windows = n / 4;
            for (size_t i = 0; i < n; i++) {
                int r = rand() % 16;
                inp[i] = r == 0 ? NAN : r == 1 ? -INFINITY : (float)(r % 3) * 0.5f;
                before[i] = dinp[i] = (float)rand() / RAND_MAX - 0.5f;
            }
            for (size_t w = 0; w < windows; w++) dout[w] = rand() % 5 == 0 ? -0.0f : (float)rand() / RAND_MAX - 0.5f;
            genc_maxpool2d_backward(dinp, dout, inp, B, C, H, W, OH, OW, 2, 2, 0, 0, acc);
            for (int bc = 0; bc < B * C; bc++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++) {
                        size_t top = ((size_t)bc * H + 2 * oy) * W + 2 * ox;
                        const size_t taps[4] = {top, top + 1, top + W, top + W + 1};
                        float best = -INFINITY, g = dout[((size_t)bc * OH + oy) * OW + ox];
                        int at = -1;
                        for (int t = 0; t < 4; t++)
                            if (inp[taps[t]] > best) best = inp[taps[t]], at = t;
                        for (int t = 0; t < 4; t++) {
                            float want = (acc ? before[taps[t]] : 0) + (at == t ? g : 0);
                            ck_assert_msg(memcmp(&dinp[taps[t]], &want, sizeof want) == 0,
                                          "%dx%d, acc %d: plane %d window (%d, %d) tap %d is %a, want %a", H, W, acc,
                                          bc, oy, ox, t, dinp[taps[t]], want);
                        }
                    }
        }
}
END_TEST

/* genc_col2im shares the channels among threads where no sample loop holds
 * them (a sampler at batch 1): against the fold computed in double, and the
 * same bits on one thread as on two, with and without padding and acc. */
START_TEST(col2im_matches_double_on_any_thread_count)
{
    enum { CH = 40, IH = 28, IW = 27, K = 3 };
    static const int geometry[][3] = {{2, 0, 0}, {2, 1, 1}, {1, 1, 1}}; /* stride, top pad, left pad */
    srand(3);
    for (size_t g = 0; g < sizeof geometry / sizeof *geometry; g++) {
        int S = geometry[g][0], PT = geometry[g][1], PL = geometry[g][2];
        int GH = (IH + 2 * PT - K) / S + 1, GW = (IW + 2 * PL - K) / S + 1;
        size_t n_col = (size_t)CH * K * K * GH * GW, n_img = (size_t)CH * IH * IW;
        ck_assert(n_col >= GENC_PARALLEL_SUM);
        float *col = malloc(sizeof(float) * n_col), *img[2];
        double *want = malloc(sizeof(double) * n_img);
        for (size_t i = 0; i < n_col; i++) col[i] = (float)rand() / RAND_MAX - 0.5f;
        for (int acc = 0; acc < 2; acc++) {
            for (size_t i = 0; i < n_img; i++) want[i] = acc ? 0.25 : 0;
            for (int c = 0; c < CH; c++)
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++)
                        for (int gy = 0; gy < GH; gy++)
                            for (int gx = 0; gx < GW; gx++) {
                                int iy = gy * S - PT + ky, ix = gx * S - PL + kx;
                                if (iy >= 0 && iy < IH && ix >= 0 && ix < IW)
                                    want[((size_t)c * IH + iy) * IW + ix] +=
                                        col[((((size_t)c * K + ky) * K + kx) * GH + gy) * GW + gx];
                            }
            for (int threads = 1; threads <= 2; threads++) {
                omp_set_num_threads(threads);
                ck_assert_int_eq(genc_team_size(2), threads);
                img[threads - 1] = malloc(sizeof(float) * n_img);
                for (size_t i = 0; i < n_img; i++) img[threads - 1][i] = 0.25f;
                genc_col2im(img[threads - 1], col, CH, IH, IW, GH, GW, K, S, PT, PL, NULL, -1, 0, acc);
                for (size_t i = 0; i < n_img; i++)
                    ck_assert_msg(fabs(img[threads - 1][i] - want[i]) <= 1e-6 * (1 + fabs(want[i])) * K * K,
                                  "stride %d pad %d acc %d, %d thread(s): img[%zu] = %.9g, want %.9g", S, PT, acc,
                                  threads, i, img[threads - 1][i], want[i]);
            }
            ck_assert(memcmp(img[0], img[1], sizeof(float) * n_img) == 0);
            free(img[0]), free(img[1]);
        }
        free(col), free(want);
    }
}
END_TEST

/* The batchnorm kernels share the channels among threads from
 * GENC_PARALLEL_SUM values on and sum each plane in lanes (below a lane
 * group, in order): against batchnorm + relu computed in double, and the
 * same bits on one thread as on two, for planes of 196 values and of one. */
START_TEST(batchnorm_matches_double_on_any_thread_count)
{
    static const int shapes[][3] = {{4, 24, 196}, {64, 300, 1}}; /* B, C, HW */
    srand(11);
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int B = shapes[k][0], C = shapes[k][1], HW = shapes[k][2];
        size_t n = (size_t)B * C * HW;
        ck_assert(n >= GENC_PARALLEL_SUM);
        float *inp = malloc(sizeof(float) * n), *dout = malloc(sizeof(float) * n), *gamma = malloc(sizeof(float) * C);
        float *beta = malloc(sizeof(float) * C), *out[2], *din[2], *dgamma[2], *dbeta[2], *stats[2], *running[2];
        for (size_t i = 0; i < n; i++) inp[i] = (float)rand() / RAND_MAX * 4 - 1, dout[i] = (float)rand() / RAND_MAX - 0.5f;
        for (int c = 0; c < C; c++) gamma[c] = 0.5f + (float)c / C, beta[c] = 0.1f * (float)(c % 7) - 0.3f;
        for (int threads = 1; threads <= 2; threads++) {
            int t = threads - 1;
            omp_set_num_threads(threads);
            ck_assert_int_eq(genc_team_size(2), threads);
            out[t] = malloc(sizeof(float) * n), din[t] = malloc(sizeof(float) * n);
            dgamma[t] = malloc(sizeof(float) * C), dbeta[t] = malloc(sizeof(float) * C);
            stats[t] = malloc(sizeof(float) * 2 * C), running[t] = malloc(sizeof(float) * 2 * C);
            float *dy = malloc(sizeof(float) * n);
            memcpy(dy, dout, sizeof(float) * n);
            for (int c = 0; c < 2 * C; c++) running[t][c] = c < C ? 0 : 1;
            genc_batchnorm_forward(out[t], stats[t], inp, gamma, beta, running[t], running[t] + C, B, C, HW, 0.8f,
                                   1e-3f, GENC_ACT_RELU, 0);
            genc_batchnorm_backward(din[t], dgamma[t], dbeta[t], dy, out[t], inp, gamma, stats[t], B, C, HW,
                                    GENC_ACT_RELU, 0, 0, 0);
            free(dy);
        }
        ck_assert(memcmp(out[0], out[1], sizeof(float) * n) == 0 && memcmp(din[0], din[1], sizeof(float) * n) == 0);
        ck_assert(memcmp(stats[0], stats[1], sizeof(float) * 2 * C) == 0);
        ck_assert(memcmp(running[0], running[1], sizeof(float) * 2 * C) == 0);
        ck_assert(memcmp(dgamma[0], dgamma[1], sizeof(float) * C) == 0);
        ck_assert(memcmp(dbeta[0], dbeta[1], sizeof(float) * C) == 0);
        for (int c = 0; c < C; c++) {
            double total = 0, squares = 0, m = (double)B * HW, sum_dy = 0, sum_dy_xhat = 0;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) total += inp[((size_t)b * C + c) * HW + i];
            double mean = total / m;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) squares += pow(inp[((size_t)b * C + c) * HW + i] - mean, 2);
            double invstd = 1 / sqrt(squares / m + 1e-3);
            ck_assert_double_eq_tol(stats[1][c], mean, 1e-6);
            ck_assert_double_eq_tol(stats[1][C + c], invstd, 1e-6 * invstd);
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) {
                    size_t at = ((size_t)b * C + c) * HW + i;
                    double xhat = (inp[at] - mean) * invstd, y = gamma[c] * xhat + beta[c];
                    double dy = y > 0 ? dout[at] : 0; /* relu's slope */
                    ck_assert_double_eq_tol(out[1][at], y > 0 ? y : 0, 1e-5);
                    sum_dy += dy, sum_dy_xhat += dy * xhat;
                }
            ck_assert_double_eq_tol(dbeta[1][c], sum_dy, 1e-4);
            ck_assert_double_eq_tol(dgamma[1][c], sum_dy_xhat, 1e-4);
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) {
                    size_t at = ((size_t)b * C + c) * HW + i;
                    double xhat = (inp[at] - mean) * invstd, y = gamma[c] * xhat + beta[c];
                    double dy = y > 0 ? dout[at] : 0;
                    double want = gamma[c] * invstd / m * (m * dy - sum_dy - xhat * sum_dy_xhat);
                    ck_assert_double_eq_tol(din[1][at], want, 1e-5);
                }
        }
        for (int t = 0; t < 2; t++) free(out[t]), free(din[t]), free(dgamma[t]), free(dbeta[t]), free(stats[t]), free(running[t]);
        free(inp), free(dout), free(gamma), free(beta);
    }
}
END_TEST

static float uniform_in(float lo, float hi) { return lo + (hi - lo) * (float)rand() / RAND_MAX; }

static double activate_in_double(int act, double x, double alpha)
{
    switch (act) {
    case GENC_ACT_RELU: return x > 0 ? x : 0;
    case GENC_ACT_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case GENC_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case GENC_ACT_TANH: return tanh(x);
    default: return x;
    }
}

/* genc_dense_forward, threaded, either writes column bands of the product
 * into out, then applies bias and activation over flat ranges that on 3
 * threads begin inside a row, or, given scratch and a wide layer, computes
 * each band in the scratch and streams it into out. On 1 to 3 threads both
 * match the layer computed in double, and on 1 and 2 give the same bits as
 * each other. So does genc_dense_forward_input_major, given the weight
 * input-major in panels (genc_panel_offset: 784 and 250 outputs end in a
 * narrower panel); at fewer rows than a tile (its row sums) it also gives
 * the same bits on 1, 2 and 3 threads.
 * (Not bit for bit across thread counts otherwise: BLAS may sum a narrow
 * band's columns in another order.) out and the scratch start as NaN, so an
 * element never written shows; out is line-aligned, as the arena is, so
 * whole lines are streamed, and for OC = 100 rows begin inside a line. At
 * one row, as in a sampler, the plain path activates each band without a
 * barrier. */
START_TEST(dense_forward_matches_double_on_any_thread_count)
{
    static const int shapes[][4] = {/* B, C, OC, act */
                                    {64, 128, 784, GENC_ACT_SIGMOID},
                                    {64, 784, 128, GENC_ACT_RELU},
                                    {64, 256, 100, GENC_ACT_LEAKY_RELU},
                                    {64, 100, 256, GENC_ACT_TANH},
                                    {64, 512, 20, GENC_ACT_IDENTITY}, /* narrow: row bands */
                                    {1, 128, 784, GENC_ACT_SIGMOID},  /* a sampler's: plain, no barrier */
                                    {1, 512, 784, GENC_ACT_TANH},     /* row sums in two chunks of KC */
                                    {3, 300, 250, GENC_ACT_RELU}};    /* 10 columns past the whole vectors */
    enum { LAYOUTS = 2, PATHS = 2 }; /* the weight (OC,C) or input-major; plain or streamed */
    srand(6);
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int B = shapes[k][0], C = shapes[k][1], OC = shapes[k][2], act = shapes[k][3];
        size_t n_in = (size_t)B * C, n_out = (size_t)B * OC, n_w = (size_t)OC * C;
        size_t out_bytes = (sizeof(float) * n_out + 63) / 64 * 64, scratch_size = genc_dense_forward_scratch(8, B, OC);
        float *inp = malloc(sizeof(float) * n_in), *w = malloc(sizeof(float) * n_w), *bias = malloc(sizeof(float) * OC);
        float *w_input_major = malloc(sizeof(float) * n_w);
        float *scratch = malloc(sizeof(float) * (scratch_size ? scratch_size : 1)), *got[3][LAYOUTS][PATHS];
        ck_assert(OC < B ? scratch_size == 0 : scratch_size == n_out);
        for (size_t i = 0; i < n_in; i++) inp[i] = uniform_in(-1, 1);
        for (size_t i = 0; i < n_w; i++) w[i] = uniform_in(-0.1f, 0.1f);
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) w_input_major[genc_panel_offset(C, OC, c, o)] = w[(size_t)o * C + c];
        for (int o = 0; o < OC; o++) bias[o] = uniform_in(-0.5f, 0.5f);
        for (int threads = 1; threads <= 3; threads++) {
            omp_set_num_threads(threads);
            ck_assert_int_eq(genc_gemm_threads(0, B, OC, C), threads);
            for (int layout = 0; layout < LAYOUTS; layout++) {
                for (int streamed = 0; streamed < PATHS; streamed++) {
                    float *out = got[threads - 1][layout][streamed] = aligned_alloc(64, out_bytes);
                    for (size_t i = 0; i < n_out; i++) out[i] = NAN;
                    for (size_t i = 0; i < scratch_size; i++) scratch[i] = NAN;
                    if (layout) genc_dense_forward_input_major(out, inp, w_input_major, bias, streamed ? scratch : NULL,
                                                               B, C, OC, act, 0.2f);
                    else genc_dense_forward(out, inp, w, bias, streamed ? scratch : NULL, B, C, OC, act, 0.2f);
                }
                if (threads <= 2) /* on 3, a 4-column band's product may differ with its row pitch */
                    ck_assert_msg(memcmp(got[threads - 1][layout][0], got[threads - 1][layout][1],
                                         sizeof(float) * n_out) == 0,
                                  "%d->%d, %d threads, layout %d: streamed bands differ from plain ones", C, OC,
                                  threads, layout);
                if (B < GENC_GEMM_MR && layout == 1)
                    ck_assert_msg(memcmp(got[threads - 1][1][0], got[0][1][0], sizeof(float) * n_out) == 0,
                                  "%d->%d at %d rows, input-major: %d threads differ from 1", C, OC, B, threads);
            }
        }
        for (int b = 0; b < B; b++)
            for (int o = 0; o < OC; o++) {
                double pre = bias[o];
                for (int c = 0; c < C; c++) pre += (double)inp[(size_t)b * C + c] * w[(size_t)o * C + c];
                double want = activate_in_double(act, pre, 0.2f);
                for (int t = 0; t < 3; t++)
                    for (int layout = 0; layout < LAYOUTS; layout++)
                        for (int streamed = 0; streamed < PATHS; streamed++)
                            ck_assert_msg(fabs(got[t][layout][streamed][(size_t)b * OC + o] - want) <=
                                              1e-5 * (1 + fabs(want)),
                                          "%d->%d, %d threads, layout %d%s: out[%d][%d]", C, OC, t + 1, layout,
                                          streamed ? ", streamed" : "", b, o);
            }
        for (int t = 0; t < 3; t++)
            for (int layout = 0; layout < LAYOUTS; layout++) free(got[t][layout][0]), free(got[t][layout][1]);
        free(inp), free(w), free(w_input_major), free(bias), free(scratch);
    }
}
END_TEST

/* genc_dense_backward shares a layer in bands of its output features: the
 * weight and bias gradients have the same bits on one thread as on two, and
 * with the input gradient (its partials summed apart on two threads) match
 * the layer computed in double, with and without accumulating. The scratch
 * starts as NaN, so a partial added but never written shows. */
START_TEST(dense_backward_matches_double_on_any_thread_count)
{
    static const int shapes[][5] = {/* B, C, OC, act, acc */
                                    {64, 128, 784, GENC_ACT_SIGMOID, 0},
                                    {64, 512, 20, GENC_ACT_RELU, 1},
                                    {64, 256, 100, GENC_ACT_LEAKY_RELU, 1},
                                    {64, 784, 128, GENC_ACT_TANH, 0}};
    srand(5);
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int B = shapes[k][0], C = shapes[k][1], OC = shapes[k][2], act = shapes[k][3], acc = shapes[k][4];
        size_t n_in = (size_t)B * C, n_out = (size_t)B * OC, n_w = (size_t)OC * C;
        float *inp = malloc(sizeof(float) * n_in), *w = malloc(sizeof(float) * n_w), *out = malloc(sizeof(float) * n_out);
        float *dout = malloc(sizeof(float) * n_out), *before[3], *got[2][3];
        size_t sizes[3] = {n_in, n_w, (size_t)OC};
        for (size_t i = 0; i < n_in; i++) inp[i] = uniform_in(-1, 1);
        for (size_t i = 0; i < n_w; i++) w[i] = uniform_in(-0.1f, 0.1f);
        for (size_t i = 0; i < n_out; i++) dout[i] = uniform_in(-0.5f, 0.5f);
        for (int g = 0; g < 3; g++) {
            before[g] = malloc(sizeof(float) * sizes[g]);
            for (size_t i = 0; i < sizes[g]; i++) before[g][i] = acc ? uniform_in(-1, 1) : NAN;
        }
        genc_dense_forward(out, inp, w, NULL, NULL, B, C, OC, act, 0.2f);
        size_t scratch_size = genc_dense_scratch(8, B, C, OC);
        float *scratch = malloc(sizeof(float) * (scratch_size ? scratch_size : 1));
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            ck_assert_int_eq(genc_dense_bands(8, B, C, OC), threads);
            for (size_t i = 0; i < scratch_size; i++) scratch[i] = NAN;
            float *dy = malloc(sizeof(float) * n_out);
            memcpy(dy, dout, sizeof(float) * n_out);
            for (int g = 0; g < 3; g++) {
                got[threads - 1][g] = malloc(sizeof(float) * sizes[g]);
                memcpy(got[threads - 1][g], before[g], sizeof(float) * sizes[g]);
            }
            float **d = got[threads - 1];
            genc_dense_backward(d[0], d[1], d[2], dy, out, inp, w, scratch, 8, B, C, OC, act, 0.2f, acc, acc);
            free(dy);
        }
        ck_assert_msg(memcmp(got[0][1], got[1][1], sizeof(float) * n_w) == 0, "%d->%d: dweight", C, OC);
        ck_assert_msg(memcmp(got[0][2], got[1][2], sizeof(float) * OC) == 0, "%d->%d: dbias", C, OC);
        double *pre = malloc(sizeof(double) * n_out);
        for (size_t i = 0; i < n_out; i++) pre[i] = dout[i] * genc_activation_slope(act, out[i], 0.2f);
        for (int t = 0; t < 2; t++) {
            for (int b = 0; b < B; b++)
                for (int c = 0; c < C; c++) {
                    double want = acc ? before[0][(size_t)b * C + c] : 0;
                    for (int o = 0; o < OC; o++) want += pre[(size_t)b * OC + o] * w[(size_t)o * C + c];
                    ck_assert_msg(fabs(got[t][0][(size_t)b * C + c] - want) <= 1e-5, "%d->%d, %d threads: dinp", C,
                                  OC, t + 1);
                }
            for (int o = 0; o < OC; o++) {
                double bias = acc ? before[2][o] : 0;
                for (int c = 0; c < C; c++) {
                    double want = acc ? before[1][(size_t)o * C + c] : 0;
                    for (int b = 0; b < B; b++) want += pre[(size_t)b * OC + o] * inp[(size_t)b * C + c];
                    ck_assert_msg(fabs(got[t][1][(size_t)o * C + c] - want) <= 1e-5, "%d->%d: dweight", C, OC);
                }
                for (int b = 0; b < B; b++) bias += pre[(size_t)b * OC + o];
                ck_assert_msg(fabs(got[t][2][o] - bias) <= 1e-5, "%d->%d: dbias", C, OC);
            }
        }
        for (int g = 0; g < 3; g++) free(before[g]), free(got[0][g]), free(got[1][g]);
        free(inp), free(w), free(out), free(dout), free(scratch), free(pre);
    }
}
END_TEST

/* The double-precision Box-Muller of the two 24-bit uniforms that
 * genc_normal_pair takes from a draw. */
static double normal_pair_in_double(uint64_t draw, double want[2])
{
    double u1 = (double)(16777216 - (draw >> 40)) / 16777216, u2 = (double)((draw >> 16) & 0xffffff) / 16777216;
    double r = sqrt(-2 * log(u1)), angle = 6.283185307179586 * u2;
    want[0] = r * cos(angle), want[1] = r * sin(angle);
    return r;
}

/* Random draws, and draws that put u1 at 1 and at 2^-24 (the largest radius)
 * and u2 at both sides of every quadrant boundary and of the √2 mantissa split. */
START_TEST(normal_pair_matches_double_box_muller)
{
    GencRng rng;
    genc_rng_seed(&rng, 7);
    const uint64_t u1_edges[] = {0, 1, 0xffffff, 0xfffffe, 0x800000, 0x4afb0d, 0x4afb0e, 0x95f619};
    const uint64_t u2_edges[] = {0,        1,        0x1fffff, 0x200000, 0x3fffff, 0x400000, 0x5fffff, 0x600000,
                                 0x7fffff, 0x800000, 0x9fffff, 0xa00000, 0xbfffff, 0xc00000, 0xdfffff, 0xffffff};
    const long n1 = sizeof u1_edges / sizeof *u1_edges, n2 = sizeof u2_edges / sizeof *u2_edges;
    double worst = 0;
    uint64_t worst_draw = 0;
    for (long k = 0; k < (1 << 21); k++) {
        uint64_t draw = genc_rng_next(&rng);
        if (k < n1 * n2) draw = u1_edges[k / n2] << 40 | u2_edges[k % n2] << 16 | (draw & 0xffff);
        else if (k < 2 * n1 * n2) draw = u1_edges[(k - n1 * n2) % n1] << 40 | (draw & 0xffffffffff);
        float got[2];
        double want[2];
        genc_normal_pair(draw, got);
        double r = normal_pair_in_double(draw, want);
        for (int i = 0; i < 2; i++) {
            double error = fabs(got[i] - want[i]) / fmax(1, r); /* the angle's rounding moves both by r·δ */
            if (error > worst) worst = error, worst_draw = draw;
        }
    }
    double want[2];
    normal_pair_in_double(worst_draw, want);
    ck_assert_msg(worst <= 2e-7, "draw %016llx: error %.3g (double gives %.9g, %.9g)", (unsigned long long)worst_draw,
                  worst, want[0], want[1]);
}
END_TEST

/* Moments and tails of 2^21 normals, the correlation of the two values of a
 * pair, and an odd count taking the same values as a longer fill. */
START_TEST(normals_are_standard_and_independent)
{
    enum { N = 1 << 21 };
    float *z = malloc(sizeof(float) * N);
    GencRng rng;
    genc_rng_seed(&rng, 11);
    genc_rng_fill_normal(&rng, z, N);
    double sum = 0, squares = 0, pair = 0, beyond2 = 0, largest = 0;
    for (long i = 0; i < N; i++) {
        sum += z[i], squares += (double)z[i] * z[i], beyond2 += fabs(z[i]) > 1.959964;
        largest = fmax(largest, fabs(z[i]));
        if (i % 2) pair += (double)z[i - 1] * z[i];
    }
    double mean = sum / N, variance = squares / N - mean * mean;
    ck_assert_msg(fabs(mean) < 0.003, "mean %g", mean);                      /* 4 standard errors */
    ck_assert_msg(fabs(variance - 1) < 0.004, "variance %g", variance);
    ck_assert_msg(fabs(beyond2 / N - 0.05) < 0.0007, "P(|z| > 1.96) = %g", beyond2 / N);
    ck_assert_msg(fabs(pair / (N / 2)) < 0.006, "pair correlation %g", pair / (N / 2));
    ck_assert_msg(largest > 4.5 && largest < 5.8, "largest |z| %g (24-bit u1: at most 5.77)", largest);

    float odd[257];
    genc_rng_seed(&rng, 11);
    genc_rng_fill_normal(&rng, odd, 257);
    ck_assert_int_eq(memcmp(odd, z, sizeof odd), 0);
    uint64_t next = genc_rng_next(&rng); /* 257 normals took 129 draws */
    genc_rng_seed(&rng, 11);
    for (int k = 0; k < 129; k++) genc_rng_next(&rng);
    ck_assert(genc_rng_next(&rng) == next);
    free(z);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("float kernels");
    TCase *tc = tcase_create("single precision");
    /* Check's default is 4 s each: under ASan and UBSan on a 2-vCPU AMD EPYC
     * three tests took 3.2-4.1 s alone, and timed out in CI */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, exp_is_within_one_ulp_where_finite);
    tcase_add_test(tc, exp_clamps_the_tails_and_keeps_nan);
    tcase_add_test(tc, exp_covers_subnormals_and_overflow);
    tcase_add_test(tc, tanh_is_within_one_ulp);
    tcase_add_test(tc, log_is_within_one_ulp_where_finite);
    tcase_add_test(tc, log_special_values);
    tcase_add_test(tc, lane_sums_match_long_double);
    tcase_add_test(tc, lane_sums_do_not_depend_on_the_thread_count);
    tcase_add_test(tc, bce_loss_matches_long_double);
    tcase_add_test(tc, adam_matches_its_formula_bit_for_bit);
    tcase_add_test(tc, batch_one_product_matches_double);
    tcase_add_test(tc, row_sums_have_the_bits_of_a_tile);
    tcase_add_test(tc, column_bands_have_the_bits_of_the_whole_product);
    tcase_add_test(tc, few_row_large_product_matches_double);
    tcase_add_test(tc, small_product_matches_double);
    tcase_add_test(tc, col2im_matches_double_on_any_thread_count);
    tcase_add_test(tc, batchnorm_matches_double_on_any_thread_count);
    tcase_add_test(tc, dense_forward_matches_double_on_any_thread_count);
    tcase_add_test(tc, dense_backward_matches_double_on_any_thread_count);
    tcase_add_test(tc, activation_runs_match_each_element);
    tcase_add_test(tc, maxpool_2x2_backward_matches_scan_order);
    tcase_add_test(tc, normal_pair_matches_double_box_muller);
    tcase_add_test(tc, normals_are_standard_and_independent);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK);
}
