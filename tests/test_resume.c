/* test_resume.c — checkpoint resume is exact: 200 iterations straight equal
 * 100 iterations, a checkpoint, a fresh trainer that loads it, and 100 more,
 * bit for bit (the trainer runs BLAS on one thread, so sums keep one order). The run
 * crosses epochs, so the shuffle is rebuilt from the checkpoint too. And the
 * thread count changes what a model without convolutions learns by rounding only. */
#include <check.h>
#include <math.h>

#include "run_suite.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "genc_runtime.h"
#include "synthetic.h"

extern const GencModel mlp_gan_model, vae_model, autoencoder_model, conv_autoencoder_model, cgan_model;
/* DCGAN's round trip (with batchnorm statistics) is in test_conv: 200 of its
 * iterations twice over would take minutes. */
static const GencModel *const models[] = {&mlp_gan_model, &vae_model, &autoencoder_model, &conv_autoencoder_model,
                                          &cgan_model};
enum { N_MODELS = sizeof models / sizeof models[0] };

START_TEST(resume_is_bit_exact)
{
    const GencModel *m = models[_i];
    GencDataset data = synthetic_dataset(700, 5); /* 10 batches an epoch */
    GencError err;
    GencTrainer *straight = genc_trainer_new(m, &data, 42, &err);
    ck_assert_ptr_nonnull(straight);
    for (int i = 0; i < 200; i++) genc_trainer_iteration(straight);

    GencTrainer *first = genc_trainer_new(m, &data, 42, &err);
    for (int i = 0; i < 100; i++) genc_trainer_iteration(first);
    char path[128];
    snprintf(path, sizeof path, "/tmp/genc-resume-%s.safetensors", m->name);
    ck_assert_msg(genc_checkpoint_save(first, path, &err) == 0, "%s", err.msg);
    genc_trainer_free(first);

    GencTrainer *resumed = genc_trainer_new(m, &data, 42, &err);
    ck_assert_msg(genc_checkpoint_load(resumed, path, false, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(genc_trainer_iterations(resumed), 100);
    for (int i = 0; i < 100; i++) genc_trainer_iteration(resumed);

    ck_assert_int_eq(genc_trainer_iterations(resumed), 200);
    ck_assert_int_eq(genc_trainer_epoch(resumed), genc_trainer_epoch(straight));
    ck_assert_msg(memcmp(genc_trainer_params(straight), genc_trainer_params(resumed), m->n_params * sizeof(float)) == 0,
                  "%s: parameters differ after resuming", m->name);
    ck_assert(memcmp(genc_trainer_losses(straight), genc_trainer_losses(resumed), m->n_steps * sizeof(float)) == 0);
    genc_trainer_free(straight);
    genc_trainer_free(resumed);
    genc_dataset_free(&data);
    remove(path);
}
END_TEST

/* Threads share the products, the noise and the optimizer's update without
 * changing a sum's order, except where a dense layer's input gradient adds
 * the partials of its bands (and a convolution's weight gradient its
 * threads' partials), so a model without convolutions trains on 2 threads
 * what it trains on 1 up to rounding: after 5 iterations, every parameter
 * within 1e-5 (up to 1.2e-6 seen; an Adam step moves a parameter by up to
 * its learning rate, 2e-4 to 1e-3 here, so one wrong gradient shows). Not
 * more: where OpenBLAS sums a band's product in another order than the whole
 * one's (its AVX-512 kernels), the cgan's rounding flipped a ReLU at 0 in
 * iteration 7, and Adam, whose step does not shrink with the gradient, and
 * the GAN's game then grew that to 4e-4 by iteration 20. */
START_TEST(thread_count_changes_dense_training_by_rounding_only)
{
    const GencModel *m = models[_i];
    if (strstr(m->name, "conv")) return;
    GencDataset data = synthetic_dataset(700, 5);
    GencError err;
    GencTrainer *runs[2];
    for (int k = 0; k < 2; k++) {
        setenv("GENC_THREADS", k == 0 ? "1" : "2", 1);
        runs[k] = genc_trainer_new(m, &data, 7, &err);
        ck_assert_msg(runs[k] != NULL, "%s", err.msg);
        for (int i = 0; i < 5; i++) genc_trainer_iteration(runs[k]);
    }
    unsetenv("GENC_THREADS");
    const float *one = genc_trainer_params(runs[0]), *two = genc_trainer_params(runs[1]);
    double worst = 0;
    for (size_t i = 0; i < m->n_params; i++) worst = fmax(worst, fabs((double)one[i] - two[i]));
    ck_assert_msg(worst <= 1e-5, "%s: 1 and 2 threads trained parameters %g apart", m->name, worst);
    for (int k = 0; k < 2; k++) genc_trainer_free(runs[k]);
    genc_dataset_free(&data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, resume_is_bit_exact, 0, N_MODELS);
    tcase_add_loop_test(tc, thread_count_changes_dense_training_by_rounding_only, 0, N_MODELS);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK);
}
