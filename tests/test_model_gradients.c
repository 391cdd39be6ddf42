/* test_model_gradients.c — each model's whole training steps, compiled by
 * genc in double precision at batch 3, against central finite differences of
 * the step's own loss. Also checks that a step writes the gradients of the
 * nets it updates and leaves every other parameter's gradient untouched.
 *
 * Weights are drawn at Glorot scale (±0.1). Far larger ones saturate the
 * sigmoid (|logit| > 27), where BCE's backward clamps p(1-p) at 1e-12 as
 * PyTorch does and so deliberately departs from the true derivative. */
#include <check.h>

#include "run_suite.h"
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autoencoder.h"
#include "conv_autoencoder.h"
#include "cgan.h"
#include "dcgan.h"
#include "every_op.h"
#include "mlp_gan.h"
#include "vae.h"

typedef void (*StepFn)(const double *params, double *state, double *grads, double *arena, const double *const *inputs,
                       double *loss);

enum { MAX_INPUTS = 8, CHECKED = 150 };

typedef enum { NOISE, IMAGE, LABEL, POSITIVE, MASK } InputKind;

typedef struct {
    const char *name;
    StepFn run;
    size_t n_params, n_state, arena;
    size_t update_lo, update_hi;      /* the parameter range the step updates */
    int n_inputs;
    size_t input_size[MAX_INPUTS];
    InputKind input_kind[MAX_INPUTS];
} StepCase;

/* Parameters are laid out net by net in the order the spec defines them. */
static const StepCase cases[] = {
    {"mlp_gan d", mlp_gan_step_d, MLP_GAN_PARAMS, MLP_GAN_STATE, MLP_GAN_ARENA, MLP_GAN_DISCRIMINATOR_DENSE1_WEIGHT, MLP_GAN_PARAMS,
     2, {3 * 784, 3 * 100}, {IMAGE, NOISE}},
    {"mlp_gan g", mlp_gan_step_g, MLP_GAN_PARAMS, MLP_GAN_STATE, MLP_GAN_ARENA, 0, MLP_GAN_DISCRIMINATOR_DENSE1_WEIGHT,
     1, {3 * 100}, {NOISE}},
    {"vae elbo", vae_step_elbo, VAE_PARAMS, VAE_STATE, VAE_ARENA, 0, VAE_PARAMS, 2, {3 * 784, 3 * 20}, {IMAGE, NOISE}},
    {"autoencoder", autoencoder_step_reconstruct, AUTOENCODER_PARAMS, AUTOENCODER_STATE, AUTOENCODER_ARENA, 0, AUTOENCODER_PARAMS,
     1, {3 * 784}, {IMAGE}},
    {"conv_autoencoder", conv_autoencoder_step_reconstruct, CONV_AUTOENCODER_PARAMS, CONV_AUTOENCODER_STATE,
     CONV_AUTOENCODER_ARENA, 0, CONV_AUTOENCODER_PARAMS, 1, {3 * 784}, {IMAGE}},
    /* inputs: images, z, then the dropout masks of D(x) and of D(G(z)) */
    {"dcgan d", dcgan_step_d, DCGAN_PARAMS, DCGAN_STATE, DCGAN_ARENA, DCGAN_DISCRIMINATOR_CONV2D1_WEIGHT, DCGAN_PARAMS,
     6, {3 * 784, 3 * 100, 3 * 64 * 196, 3 * 128 * 49, 3 * 64 * 196, 3 * 128 * 49},
     {IMAGE, NOISE, MASK, MASK, MASK, MASK}},
    {"dcgan g", dcgan_step_g, DCGAN_PARAMS, DCGAN_STATE, DCGAN_ARENA, 0, DCGAN_DISCRIMINATOR_CONV2D1_WEIGHT,
     3, {3 * 100, 3 * 64 * 196, 3 * 128 * 49}, {NOISE, MASK, MASK}},
    /* inputs: images, labels, z */
    {"cgan d", cgan_step_d, CGAN_PARAMS, CGAN_STATE, CGAN_ARENA, CGAN_DISCRIMINATOR_DENSE1_WEIGHT, CGAN_PARAMS,
     3, {3 * 784, 3, 3 * 100}, {IMAGE, LABEL, NOISE}},
    {"cgan g", cgan_step_g, CGAN_PARAMS, CGAN_STATE, CGAN_ARENA, 0, CGAN_DISCRIMINATOR_DENSE1_WEIGHT,
     2, {3, 3 * 100}, {LABEL, NOISE}},
    /* inputs: labels, z, u (u feeds a log: positive) */
    {"every_op a", every_op_step_a, EVERY_OP_PARAMS, EVERY_OP_STATE, EVERY_OP_ARENA, EVERY_OP_DISC_DENSE1_WEIGHT, EVERY_OP_PARAMS,
     3, {3, 3 * 4, 3 * 12}, {LABEL, NOISE, POSITIVE}},
    {"every_op b", every_op_step_b, EVERY_OP_PARAMS, EVERY_OP_STATE, EVERY_OP_ARENA, 0, EVERY_OP_DISC_DENSE1_WEIGHT,
     3, {3, 3 * 4, 3 * 12}, {LABEL, NOISE, POSITIVE}},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static double uniform(double lo, double hi) { return lo + (hi - lo) * (rand() / (RAND_MAX + 1.0)); }

static const double SENTINEL = 7777.0;

START_TEST(step_matches_finite_differences)
{
    const StepCase *c = &cases[_i];
    srand(99 + _i);
    double *params = malloc(c->n_params * sizeof(double)), *grads = malloc(c->n_params * sizeof(double));
    double *scratch = malloc(c->n_params * sizeof(double)), *arena = malloc((c->arena + 1) * sizeof(double));
    double *state = calloc(c->n_state + 1, sizeof(double)); /* batchnorm running statistics */
    double *inputs[MAX_INPUTS];
    for (size_t i = 0; i < c->n_params; i++) {
        params[i] = uniform(-0.1, 0.1);
        grads[i] = SENTINEL;
    }
    for (int k = 0; k < c->n_inputs; k++) {
        inputs[k] = malloc(c->input_size[k] * sizeof(double));
        for (size_t i = 0; i < c->input_size[k]; i++)
            inputs[k][i] = c->input_kind[k] == IMAGE    ? uniform(0.02, 0.98)
                         : c->input_kind[k] == LABEL    ? (double)(rand() % 10)
                         : c->input_kind[k] == POSITIVE ? uniform(0.5, 1.5)
                         : c->input_kind[k] == MASK     ? uniform(0, 1)
                                                        : uniform(-1.5, 1.5);
    }
    double loss;
    c->run(params, state, grads, arena, (const double *const *)inputs, &loss);
    ck_assert_msg(isfinite(loss), "%s: loss %g", c->name, loss);

    for (size_t i = 0; i < c->n_params; i++) {
        bool updated = i >= c->update_lo && i < c->update_hi;
        if (updated) ck_assert_msg(grads[i] != SENTINEL && isfinite(grads[i]), "%s: gradient %zu not written", c->name, i);
        else ck_assert_msg(grads[i] == SENTINEL, "%s: gradient %zu of a net the step does not update was written", c->name, i);
    }

    const double h = 1e-6;
    size_t range = c->update_hi - c->update_lo;
    for (int n = 0; n < CHECKED; n++) {
        /* The last parameters of each range are biases of the output layer: include them. */
        size_t i = c->update_lo + (n < 8 ? range - 1 - (size_t)n : (size_t)rand() % range);
        if (range < CHECKED) i = c->update_lo + (size_t)n % range; /* small nets: every parameter */
        double saved = params[i], up, down;
        params[i] = saved + h;
        c->run(params, state, scratch, arena, (const double *const *)inputs, &up);
        params[i] = saved - h;
        c->run(params, state, scratch, arena, (const double *const *)inputs, &down);
        params[i] = saved;
        double numeric = (up - down) / (2 * h);
        ck_assert_msg(fabs(grads[i] - numeric) <= 1e-6 * (1 + fabs(numeric)) + 1e-9 * fabs(loss),
                      "%s: parameter %zu: backward %.10g, central difference %.10g", c->name, i, grads[i], numeric);
    }
    for (int k = 0; k < c->n_inputs; k++) free(inputs[k]);
    free(params), free(grads), free(scratch), free(arena), free(state);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model gradients");
    TCase *tc = tcase_create("steps");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, step_matches_finite_differences, 0, N_CASES);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK);
}
