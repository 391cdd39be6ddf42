/* test_kernels.c — every op's backward kernel against central finite
 * differences, in double precision, on small random shapes.
 *
 * For an op f, L(x) = Σ r·f(x) for a fixed random r; the backward kernel run
 * with dout = r must give dL/dx. Each op is also run in accumulate mode, which
 * must add exactly the same gradient onto what was there. Inputs of kinked ops
 * (ReLU at 0) are drawn away from the kink on purpose. */
#define GENC_DOUBLE
#include "../runtime/genc_kernels.h"

#include <check.h>

#include "run_suite.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_IN = 3, B = 3, C = 4, OC = 5 };

typedef struct OpCase OpCase;
struct OpCase {
    const char *name;
    int n_in;
    size_t in_size[MAX_IN];
    size_t out_size;
    double lo[MAX_IN], hi[MAX_IN];  /* input ranges */
    bool avoid_zero;                /* keep |x| >= 0.1: kinks at 0 */
    int param;                      /* op-specific: activation, or const-target flag */
    void (*forward)(const OpCase *c, double *out, double **in);
    /* acc: 0 sets the input gradients, 1 adds */
    void (*backward)(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc);
};

/* ---- one adapter per op --------------------------------------------------------- */

static void dense_f(const OpCase *c, double *out, double **in) { genc_dense_forward(out, in[0], in[1], in[2], NULL, B, C, OC, c->param, 0.2); }
static void dense_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    genc_dense_backward(din[0], din[1], din[2], dout, out, in[0], in[1], NULL, 1, B, C, OC, c->param, 0.2, acc, acc);
}
static void act_f(const OpCase *c, double *out, double **in) { genc_activation_forward(out, in[0], B * C, c->param, 0.2); }
static void act_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)in;
    genc_activation_backward(din[0], dout, out, B * C, c->param, 0.2, acc);
}
static void add_f(const OpCase *c, double *out, double **in) { (void)c; genc_add_forward(out, in[0], in[1], B * C); }
static void add_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out, (void)in;
    genc_add_backward(din[0], din[1], dout, B * C, acc, acc);
}
static void sub_f(const OpCase *c, double *out, double **in) { (void)c; genc_sub_forward(out, in[0], in[1], B * C); }
static void sub_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out, (void)in;
    genc_sub_backward(din[0], din[1], dout, B * C, acc, acc);
}
static void mul_f(const OpCase *c, double *out, double **in) { (void)c; genc_mul_forward(out, in[0], in[1], B * C); }
static void mul_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out;
    genc_mul_backward(din[0], din[1], dout, in[0], in[1], B * C, acc, acc);
}
static void div_f(const OpCase *c, double *out, double **in) { (void)c; genc_div_forward(out, in[0], in[1], B * C); }
static void div_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out;
    genc_div_backward(din[0], din[1], dout, in[0], in[1], B * C, acc, acc);
}
static void affine_f(const OpCase *c, double *out, double **in) { (void)c; genc_affine_forward(out, in[0], B * C, -1.5, 0.25); }
static void affine_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out, (void)in;
    genc_affine_backward(din[0], dout, B * C, -1.5, acc);
}
static void recip_f(const OpCase *c, double *out, double **in) { (void)c; genc_reciprocal_forward(out, in[0], B * C, 2.5); }
static void recip_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c;
    genc_reciprocal_backward(din[0], dout, out, in[0], B * C, acc);
}
static void exp_f(const OpCase *c, double *out, double **in) { (void)c; genc_exp_forward(out, in[0], B * C); }
static void exp_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)in;
    genc_exp_backward(din[0], dout, out, B * C, acc);
}
static void log_f(const OpCase *c, double *out, double **in) { (void)c; genc_log_forward(out, in[0], B * C); }
static void log_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out;
    genc_log_backward(din[0], dout, in[0], B * C, acc);
}
static void sum_f(const OpCase *c, double *out, double **in) { (void)c; genc_sum_forward(out, in[0], B * C, 0.125); }
static void sum_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out, (void)in;
    genc_sum_backward(din[0], dout, B * C, 0.125, acc);
}

/* Losses: param 1 compares against the constant 0.3 instead of a tensor. */
#define LOSS_ADAPTERS(op)                                                                                       \
    static void op##_f(const OpCase *c, double *out, double **in)                                               \
    {                                                                                                           \
        genc_##op##_forward(out, in[0], c->param ? NULL : in[1], 0.3, B * C);                                   \
    }                                                                                                           \
    static void op##_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)     \
    {                                                                                                           \
        (void)out;                                                                                              \
        genc_##op##_backward(din[0], c->param ? NULL : din[1], dout, in[0], c->param ? NULL : in[1], 0.3, B * C, \
                             acc, acc);                                                                         \
    }
LOSS_ADAPTERS(mse)
LOSS_ADAPTERS(bce)
LOSS_ADAPTERS(bce_logits)

static void kl_f(const OpCase *c, double *out, double **in) { (void)c; genc_kl_normal_forward(out, in[0], in[1], B, C); }
static void kl_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out;
    genc_kl_normal_backward(din[0], din[1], dout, in[0], in[1], B, C, acc, acc);
}
static void concat_f(const OpCase *c, double *out, double **in) { (void)c; genc_concat_forward(out, in[0], in[1], B, C, OC); }
static void concat_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out, (void)in;
    genc_concat_backward(din[0], din[1], dout, B, C, OC, acc, acc);
}

/* ---- convolution, pooling, batchnorm, dropout: one geometry table ---- *
 * {C, H, W, OC, OH, OW, K, S, PT, PL}: for a transposed conv (C, H, W) is its
 * input and (OC, OH, OW) its output. */
typedef struct { int C, H, W, OC, OH, OW, K, S, PT, PL; } Geom;
static const Geom conv_geoms[] = {
    {2, 5, 5, 3, 5, 5, 3, 1, 1, 1}, /* same, stride 1, odd size */
    {2, 5, 5, 3, 3, 3, 3, 2, 1, 1}, /* same, stride 2, odd size */
    {2, 6, 6, 3, 3, 3, 3, 2, 0, 0}, /* same, stride 2, even size: the extra pad row is at the bottom */
    {2, 6, 5, 3, 4, 3, 3, 1, 0, 0}, /* valid, stride 1, not square */
    {1, 7, 7, 2, 3, 3, 3, 2, 0, 0}, /* valid, stride 2 */
    {2, 5, 5, 2, 5, 5, 4, 1, 1, 1}, /* same, even kernel */
};
static const Geom transpose_geoms[] = {
    {2, 3, 3, 3, 6, 6, 3, 2, 0, 0}, /* same, stride 2: doubles, the extra row cropped at the bottom (Keras) */
    {2, 4, 4, 2, 4, 4, 3, 1, 1, 1}, /* same, stride 1 */
    {2, 3, 3, 2, 7, 7, 3, 2, 0, 0}, /* valid, stride 2 */
    {1, 3, 4, 2, 6, 8, 5, 2, 1, 1}, /* same, kernel 5, not square */
};
static const Geom pool_geoms[] = {
    {2, 4, 4, 2, 2, 2, 2, 2, 0, 0}, /* 2x2 valid */
    {2, 5, 5, 2, 3, 3, 2, 2, 0, 0}, /* 2x2 same on an odd size: the padded column never wins */
    {1, 7, 6, 1, 3, 2, 3, 2, 0, 0}, /* 3x3 stride 2 valid */
};
enum { N_CONV = sizeof conv_geoms / sizeof conv_geoms[0], N_TRANSPOSE = sizeof transpose_geoms / sizeof transpose_geoms[0],
       N_POOL = sizeof pool_geoms / sizeof pool_geoms[0] };

/* Scratch for two threads: with OpenMP and two or more CPUs, the samples are
 * shared and the per-thread weight-gradient partials exercised. */
enum { CONV_THREADS = 2 };
static double col_scratch[16384];

static double *conv_scratch(const Geom *g, int transpose, int backward)
{
    size_t kk = (size_t)g->K * g->K, weight = (size_t)g->C * g->OC * kk;
    size_t col = transpose ? (size_t)g->OC * kk * g->H * g->W : (size_t)g->C * kk * g->OH * g->OW;
    ck_assert_uint_le(genc_conv_scratch(CONV_THREADS, B, col, weight, backward), sizeof col_scratch / sizeof(double));
    return col_scratch;
}

static void conv_f(const OpCase *c, double *out, double **in)
{
    const Geom *g = &conv_geoms[c->param];
    genc_conv2d_forward(out, in[0], in[1], in[2], conv_scratch(g, 0, 0), CONV_THREADS, B, g->C, g->H, g->W, g->OC, g->OH, g->OW, g->K, g->S,
                        g->PT, g->PL, GENC_ACT_TANH, 0);
}
static void conv_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    const Geom *g = &conv_geoms[c->param];
    genc_conv2d_backward(din[0], din[1], din[2], dout, out, in[0], in[1], conv_scratch(g, 0, 1), CONV_THREADS, B, g->C, g->H, g->W, g->OC,
                         g->OH, g->OW, g->K, g->S, g->PT, g->PL, GENC_ACT_TANH, 0, acc, acc);
}
static void convt_f(const OpCase *c, double *out, double **in)
{
    const Geom *g = &transpose_geoms[c->param];
    genc_conv2d_transpose_forward(out, in[0], in[1], in[2], conv_scratch(g, 1, 0), CONV_THREADS, B, g->C, g->H, g->W, g->OC, g->OH, g->OW,
                                  g->K, g->S, g->PT, g->PL, GENC_ACT_TANH, 0);
}
static void convt_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    const Geom *g = &transpose_geoms[c->param];
    genc_conv2d_transpose_backward(din[0], din[1], din[2], dout, out, in[0], in[1], conv_scratch(g, 1, 1), CONV_THREADS, B, g->C, g->H, g->W,
                                   g->OC, g->OH, g->OW, g->K, g->S, g->PT, g->PL, GENC_ACT_TANH, 0, acc, acc);
}
/* The direct lowering (stride 1): param is the geometry's index. */
static double *direct_scratch(const Geom *g, int transpose, int backward)
{
    int image_c = transpose ? g->OC : g->C, grid_c = transpose ? g->C : g->OC;
    int image_h = transpose ? g->OH : g->H, image_w = transpose ? g->OW : g->W;
    int grid_h = transpose ? g->H : g->OH, grid_w = transpose ? g->W : g->OW;
    size_t need = genc_direct_scratch(CONV_THREADS, B, image_c, grid_c, image_h, image_w, grid_h, grid_w, g->K, g->PT,
                                      g->PL, backward);
    ck_assert_uint_le(need, sizeof col_scratch / sizeof(double));
    return col_scratch;
}
static void direct_f(const OpCase *c, double *out, double **in)
{
    const Geom *g = &conv_geoms[c->param];
    genc_conv2d_direct_forward(out, in[0], in[1], in[2], direct_scratch(g, 0, 0), CONV_THREADS, B, g->C, g->H, g->W, g->OC,
                               g->OH, g->OW, g->K, g->S, g->PT, g->PL, GENC_ACT_TANH, 0);
}
static void direct_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    const Geom *g = &conv_geoms[c->param];
    genc_conv2d_direct_backward(din[0], din[1], din[2], dout, out, in[0], in[1], direct_scratch(g, 0, 1), CONV_THREADS, B,
                                g->C, g->H, g->W, g->OC, g->OH, g->OW, g->K, g->S, g->PT, g->PL, GENC_ACT_TANH, 0, acc,
                                acc);
}
static void directt_f(const OpCase *c, double *out, double **in)
{
    const Geom *g = &transpose_geoms[c->param];
    genc_conv2d_transpose_direct_forward(out, in[0], in[1], in[2], direct_scratch(g, 1, 0), CONV_THREADS, B, g->C, g->H,
                                         g->W, g->OC, g->OH, g->OW, g->K, g->S, g->PT, g->PL, GENC_ACT_TANH, 0);
}
static void directt_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    const Geom *g = &transpose_geoms[c->param];
    genc_conv2d_transpose_direct_backward(din[0], din[1], din[2], dout, out, in[0], in[1], direct_scratch(g, 1, 1),
                                          CONV_THREADS, B, g->C, g->H, g->W, g->OC, g->OH, g->OW, g->K, g->S, g->PT,
                                          g->PL, GENC_ACT_TANH, 0, acc, acc);
}

static void pool_f(const OpCase *c, double *out, double **in)
{
    const Geom *g = &pool_geoms[c->param];
    genc_maxpool2d_forward(out, in[0], B, g->C, g->H, g->W, g->OH, g->OW, g->K, g->S, g->PT, g->PL);
}
static void pool_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)out;
    const Geom *g = &pool_geoms[c->param];
    genc_maxpool2d_backward(din[0], dout, in[0], B, g->C, g->H, g->W, g->OH, g->OW, g->K, g->S, g->PT, g->PL, acc);
}

enum { BN_C = 2, BN_HW = 4 };
static double bn_stats[2 * BN_C], bn_mean[BN_C], bn_var[BN_C];
static void bn_f(const OpCase *c, double *out, double **in)
{
    genc_batchnorm_forward(out, bn_stats, in[0], in[1], in[2], bn_mean, bn_var, B, BN_C, BN_HW, 0.8, 1e-3, c->param,
                           0.2);
}
static void bn_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    genc_batchnorm_backward(din[0], din[1], din[2], dout, out, in[0], in[1], bn_stats, B, BN_C, BN_HW, c->param, 0.2,
                            acc, acc);
}

static const double dropout_u[B * C] = {0.9, 0.1, 0.5, 0.29, 0.31, 0.7, 0.05, 0.95, 0.3, 0.6, 0.2, 0.8};
static void dropout_f(const OpCase *c, double *out, double **in) { (void)c; genc_dropout_forward(out, in[0], dropout_u, B * C, 0.3); }
static void dropout_b(const OpCase *c, double **din, double *dout, const double *out, double **in, int acc)
{
    (void)c, (void)out, (void)in;
    genc_dropout_backward(din[0], dout, dropout_u, B * C, 0.3, acc);
}

#define DENSE_CASE(label, act) \
    {label, 3, {B * C, OC * C, OC}, B * OC, {-1, -1, -1}, {1, 1, 1}, true, act, dense_f, dense_b}
#define BN_CASE(label, act) \
    {label, 3, {B * BN_C * BN_HW, BN_C, BN_C}, B * BN_C * BN_HW, {-2, 0.5, -1}, {2, 1.5, 1}, false, act, bn_f, bn_b}
#define ACT_CASE(label, act) {label, 1, {B * C}, B * C, {-2}, {2}, true, act, act_f, act_b}
#define BIN_CASE(label, f, b, lo1, hi1) {label, 2, {B * C, B * C}, B * C, {-2, lo1}, {2, hi1}, false, 0, f, b}
#define UN_CASE(label, f, b, lo, hi) {label, 1, {B * C}, B * C, {lo}, {hi}, false, 0, f, b}
#define LOSS_CASE(label, f, b, lo, hi, tlo, thi, constant) \
    {label, constant ? 1 : 2, {B * C, B * C}, 1, {lo, tlo}, {hi, thi}, false, constant, f, b}

static const OpCase cases[] = {
    DENSE_CASE("dense", GENC_ACT_IDENTITY),
    DENSE_CASE("dense+relu", GENC_ACT_RELU),
    DENSE_CASE("dense+leaky_relu", GENC_ACT_LEAKY_RELU),
    DENSE_CASE("dense+sigmoid", GENC_ACT_SIGMOID),
    DENSE_CASE("dense+tanh", GENC_ACT_TANH),
    ACT_CASE("relu", GENC_ACT_RELU),
    ACT_CASE("leaky_relu", GENC_ACT_LEAKY_RELU),
    ACT_CASE("sigmoid", GENC_ACT_SIGMOID),
    ACT_CASE("tanh", GENC_ACT_TANH),
    BIN_CASE("add", add_f, add_b, -2, 2),
    BIN_CASE("sub", sub_f, sub_b, -2, 2),
    BIN_CASE("mul", mul_f, mul_b, -2, 2),
    BIN_CASE("div", div_f, div_b, 0.5, 2),
    UN_CASE("affine", affine_f, affine_b, -2, 2),
    UN_CASE("reciprocal", recip_f, recip_b, 0.5, 2),
    UN_CASE("exp", exp_f, exp_b, -2, 2),
    UN_CASE("log", log_f, log_b, 0.2, 3),
    UN_CASE("sum", sum_f, sum_b, -2, 2),
    LOSS_CASE("mse", mse_f, mse_b, -1, 1, -1, 1, 0),
    LOSS_CASE("mse, constant target", mse_f, mse_b, -1, 1, 0, 0, 1),
    LOSS_CASE("bce", bce_f, bce_b, 0.05, 0.95, 0, 1, 0),
    LOSS_CASE("bce, constant target", bce_f, bce_b, 0.05, 0.95, 0, 0, 1),
    LOSS_CASE("bce_logits", bce_logits_f, bce_logits_b, -3, 3, 0, 1, 0),
    LOSS_CASE("bce_logits, constant target", bce_logits_f, bce_logits_b, -3, 3, 0, 0, 1),
    {"kl_normal", 2, {B * C, B * C}, 1, {-1, -1}, {1, 1}, false, 0, kl_f, kl_b},
    {"concat", 2, {B * C, B * OC}, B * (C + OC), {-1, -1}, {1, 1}, false, 0, concat_f, concat_b},
    BN_CASE("batchnorm", GENC_ACT_IDENTITY),
    BN_CASE("batchnorm+relu", GENC_ACT_RELU),
    BN_CASE("batchnorm+leaky_relu", GENC_ACT_LEAKY_RELU),
    BN_CASE("batchnorm+tanh", GENC_ACT_TANH),
    {"dropout", 1, {B * C}, B * C, {-2}, {2}, false, 0, dropout_f, dropout_b},
};
enum { N_FIXED = sizeof cases / sizeof cases[0], N_CASES = N_FIXED + 2 * (N_CONV + N_TRANSPOSE) + N_POOL };

static OpCase all_cases[N_CASES];

static int n_cases;

/* The fixed cases, then one case per geometry of each table, and one per
 * stride-1 geometry for the direct lowering. */
static void build_cases(void)
{
    for (int i = 0; i < N_FIXED; i++) all_cases[i] = cases[i];
    int n = N_FIXED;
    for (int g = 0; g < N_CONV; g++, n++) {
        const Geom *q = &conv_geoms[g];
        all_cases[n] = (OpCase){"conv2d", 3, {(size_t)B * q->C * q->H * q->W, (size_t)q->OC * q->C * q->K * q->K, q->OC},
                                (size_t)B * q->OC * q->OH * q->OW, {-1, -0.5, -0.5}, {1, 0.5, 0.5}, false, g, conv_f, conv_b};
    }
    for (int g = 0; g < N_TRANSPOSE; g++, n++) {
        const Geom *q = &transpose_geoms[g];
        all_cases[n] = (OpCase){"conv2d_transpose", 3,
                                {(size_t)B * q->C * q->H * q->W, (size_t)q->C * q->OC * q->K * q->K, q->OC},
                                (size_t)B * q->OC * q->OH * q->OW, {-1, -0.5, -0.5}, {1, 0.5, 0.5}, false, g, convt_f, convt_b};
    }
    for (int g = 0; g < N_POOL; g++, n++) {
        const Geom *q = &pool_geoms[g];
        all_cases[n] = (OpCase){"maxpool2d", 1, {(size_t)B * q->C * q->H * q->W}, (size_t)B * q->C * q->OH * q->OW,
                                {-2}, {2}, false, g, pool_f, pool_b};
    }
    for (int g = 0; g < N_CONV; g++) {
        if (conv_geoms[g].S != 1) continue;
        all_cases[n] = all_cases[N_FIXED + g];
        all_cases[n].name = "conv2d direct", all_cases[n].forward = direct_f, all_cases[n].backward = direct_b;
        n++;
    }
    for (int g = 0; g < N_TRANSPOSE; g++) {
        if (transpose_geoms[g].S != 1) continue;
        all_cases[n] = all_cases[N_FIXED + N_CONV + g];
        all_cases[n].name = "conv2d_transpose direct", all_cases[n].forward = directt_f, all_cases[n].backward = directt_b;
        n++;
    }
    n_cases = n;
}

static double uniform(double lo, double hi) { return lo + (hi - lo) * (rand() / (RAND_MAX + 1.0)); }

static double loss_of(const OpCase *c, double **in, const double *r, double *out)
{
    c->forward(c, out, in);
    double total = 0;
    for (size_t i = 0; i < c->out_size; i++) total += r[i] * out[i];
    return total;
}

START_TEST(op_gradient)
{
    const OpCase *c = &all_cases[_i];
    srand(1234 + _i);
    double *in[MAX_IN] = {0}, *din[MAX_IN] = {0}, *din_acc[MAX_IN] = {0};
    for (int k = 0; k < c->n_in; k++) {
        in[k] = malloc(c->in_size[k] * sizeof(double));
        din[k] = malloc(c->in_size[k] * sizeof(double));
        din_acc[k] = malloc(c->in_size[k] * sizeof(double));
        for (size_t i = 0; i < c->in_size[k]; i++) {
            double x = uniform(c->lo[k], c->hi[k]);
            if (c->avoid_zero && x > -0.1 && x < 0.1) x = x < 0 ? x - 0.1 : x + 0.1;
            in[k][i] = x;
            din[k][i] = 1e30; /* set mode must overwrite this */
            din_acc[k][i] = 0.75;
        }
    }
    double *out = malloc(c->out_size * sizeof(double)), *r = malloc(c->out_size * sizeof(double));
    double *dout = malloc(c->out_size * sizeof(double)), *scratch = malloc(c->out_size * sizeof(double));
    for (size_t i = 0; i < c->out_size; i++) r[i] = uniform(-1, 1);

    loss_of(c, in, r, out);
    memcpy(dout, r, c->out_size * sizeof(double)); /* backward may scale dout in place */
    c->backward(c, din, dout, out, in, 0);
    memcpy(dout, r, c->out_size * sizeof(double));
    c->backward(c, din_acc, dout, out, in, 1);

    const double h = 1e-6;
    for (int k = 0; k < c->n_in; k++)
        for (size_t i = 0; i < c->in_size[k]; i++) {
            double saved = in[k][i];
            in[k][i] = saved + h;
            double up = loss_of(c, in, r, scratch);
            in[k][i] = saved - h;
            double down = loss_of(c, in, r, scratch);
            in[k][i] = saved;
            double numeric = (up - down) / (2 * h);
            ck_assert_msg(fabs(din[k][i] - numeric) <= 1e-6 * (1 + fabs(numeric)),
                          "%s (case %d): d input %d [%zu]: backward %.10g, central difference %.10g", c->name, c->param,
                          k, i, din[k][i], numeric);
            ck_assert_msg(fabs(din_acc[k][i] - 0.75 - din[k][i]) <= 1e-12 * (1 + fabs(din[k][i])),
                          "%s: accumulate mode added %.10g, set mode gave %.10g", c->name, din_acc[k][i] - 0.75,
                          din[k][i]);
        }
    for (int k = 0; k < c->n_in; k++) free(in[k]), free(din[k]), free(din_acc[k]);
    free(out), free(r), free(dout), free(scratch);
}
END_TEST

/* The direct lowering computes what im2col does, forward and backward, in
 * the same layouts (a tap read the wrong way round would still pass the
 * finite differences above, which compare it only with itself). */
START_TEST(direct_matches_im2col)
{
    int transpose = _i >= N_CONV;
    const Geom *g = transpose ? &transpose_geoms[_i - N_CONV] : &conv_geoms[_i];
    if (g->S != 1) return;
    const OpCase *c = &all_cases[N_FIXED + _i]; /* build_cases puts the conv then the transpose cases there */
    ck_assert_str_eq(c->name, transpose ? "conv2d_transpose" : "conv2d");
    srand(99 + _i);
    double *in[3], *din[2][3], *out[2], *dout[2];
    for (int k = 0; k < 3; k++) {
        in[k] = malloc(c->in_size[k] * sizeof(double));
        for (size_t i = 0; i < c->in_size[k]; i++) in[k][i] = uniform(-1, 1);
        for (int v = 0; v < 2; v++) din[v][k] = malloc(c->in_size[k] * sizeof(double));
    }
    for (int v = 0; v < 2; v++) {
        out[v] = malloc(c->out_size * sizeof(double)), dout[v] = malloc(c->out_size * sizeof(double));
        (v ? (transpose ? directt_f : direct_f) : c->forward)(c, out[v], in);
        srand(7);
        for (size_t i = 0; i < c->out_size; i++) dout[v][i] = uniform(-1, 1);
        (v ? (transpose ? directt_b : direct_b) : c->backward)(c, din[v], dout[v], out[v], in, 0);
    }
    for (size_t i = 0; i < c->out_size; i++)
        ck_assert_msg(fabs(out[0][i] - out[1][i]) <= 1e-12, "%s geometry %d: output %zu is %.15g direct, %.15g im2col",
                      c->name, c->param, i, out[1][i], out[0][i]);
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < c->in_size[k]; i++)
            ck_assert_msg(fabs(din[0][k][i] - din[1][k][i]) <= 1e-12,
                          "%s geometry %d: gradient of input %d [%zu] is %.15g direct, %.15g im2col", c->name, c->param,
                          k, i, din[1][k][i], din[0][k][i]);
    for (int k = 0; k < 3; k++) free(in[k]), free(din[0][k]), free(din[1][k]);
    for (int v = 0; v < 2; v++) free(out[v]), free(dout[v]);
}
END_TEST

/* Equal values in a window (ReLU's zeros): the first in scan order takes the
 * gradient, on the exact-tiling path and on the general one. */
START_TEST(maxpool_ties_go_to_the_first)
{
    double inp[2 * 16], inp5[2 * 25] = {0}, dout[2 * 4] = {1, 2, 3, 4, 5, 6, 7, 8}, dinp[2 * 16], dinp5[2 * 25];
    for (int i = 0; i < 32; i++) inp[i] = i % 5 == 0 ? 1 : 0; /* some windows hold a 1, the others all zeros */
    for (int b = 0; b < 2; b++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) inp5[b * 25 + y * 5 + x] = inp[b * 16 + y * 4 + x];
    genc_maxpool2d_backward(dinp, dout, inp, 2, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0);
    genc_maxpool2d_backward(dinp5, dout, inp5, 2, 1, 5, 5, 2, 2, 2, 2, 0, 0, 0); /* a row and a column left over */
    for (int b = 0; b < 2; b++)
        for (int w = 0; w < 4; w++) {
            const double *win = inp + b * 16 + (w / 2) * 8 + (w % 2) * 2;
            int first = 0;
            for (int j = 1; j < 4; j++)
                if (win[(j / 2) * 4 + j % 2] > win[(first / 2) * 4 + first % 2]) first = j;
            for (int j = 0; j < 4; j++) {
                int y = (w / 2) * 2 + j / 2, x = (w % 2) * 2 + j % 2;
                double want = j == first ? dout[b * 4 + w] : 0;
                ck_assert_double_eq(dinp[b * 16 + y * 4 + x], want);
                ck_assert_double_eq(dinp5[b * 25 + y * 5 + x], want);
            }
        }
}
END_TEST

START_TEST(onehot_marks_the_label)
{
    double labels[3] = {2, 0, 7}, out[3 * 4];
    genc_onehot_forward(out, labels, 3, 4);
    double expect[12] = {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0}; /* 7 is out of range: all zero */
    for (int i = 0; i < 12; i++) ck_assert_double_eq(out[i], expect[i]);
}
END_TEST

START_TEST(bce_logits_is_stable_for_large_logits)
{
    double x[2] = {80, -80}, out;
    genc_bce_logits_forward(&out, x, NULL, 1, 2);
    ck_assert(isfinite(out));
    ck_assert_double_eq_tol(out, 40.0, 1e-9); /* (0 + 80) / 2 */
}
END_TEST

START_TEST(activations_match_their_definitions)
{
    ck_assert_double_eq(genc_activate(GENC_ACT_RELU, -2, 0), 0);
    ck_assert_double_eq(genc_activate(GENC_ACT_LEAKY_RELU, -2, 0.2), -0.4);
    ck_assert_double_eq_tol(genc_activate(GENC_ACT_SIGMOID, 0.5, 0), 1 / (1 + exp(-0.5)), 1e-15);
    ck_assert_double_eq_tol(genc_activate(GENC_ACT_TANH, 0.5, 0), tanh(0.5), 1e-15);
}
END_TEST

int main(void)
{
    build_cases();
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("gradients");
    tcase_add_loop_test(tc, op_gradient, 0, n_cases);
    tcase_add_loop_test(tc, direct_matches_im2col, 0, N_CONV + N_TRANSPOSE);
    tcase_add_test(tc, maxpool_ties_go_to_the_first);
    tcase_add_test(tc, onehot_marks_the_label);
    tcase_add_test(tc, bce_logits_is_stable_for_large_logits);
    tcase_add_test(tc, activations_match_their_definitions);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK);
}
