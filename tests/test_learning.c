/* test_learning.c — learning really happens, on Fashion-MNIST itself
 * (Debian's dataset-fashion-mnist), on a 2,000-image subset. In 500
 * iterations the autoencoder and the VAE, and in 300 the convolutional
 * autoencoder, must halve the reconstruction error of a fixed batch of
 * held-out images; the MLP GAN must keep its losses finite for 500 and its
 * discriminator must call 30-99 % of held-out real images real; DCGAN must
 * keep its losses finite for 300. */
#include <check.h>

#include "run_suite.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "genc_runtime.h"

extern const GencModel mlp_gan_model, vae_model, autoencoder_model, conv_autoencoder_model, dcgan_model;

static GencDataset train, held_out;

static void load_data(void)
{
    GencError err;
    if (genc_dataset_load(FASHION_MNIST_DIR, "train", 2000, &train, &err) != 0 ||
        genc_dataset_load(FASHION_MNIST_DIR, "t10k", 640, &held_out, &err) != 0) {
        fprintf(stderr, "test_learning needs Fashion-MNIST (apt-get install dataset-fashion-mnist): %s\n", err.msg);
        exit(1);
    }
}

/* Mean squared error of the model's reconstruct function on the first
 * held-out batch. */
static double reconstruction_error(GencTrainer *t, const GencModel *m)
{
    size_t n = 784 * (size_t)m->batch;
    float *out = malloc(n * sizeof(float));
    genc_trainer_forward(t, m->reconstruct, (const float *const[]){held_out.images}, (float *const[]){out});
    double total = 0;
    for (size_t i = 0; i < n; i++) total += (out[i] - held_out.images[i]) * (out[i] - held_out.images[i]);
    free(out);
    return total / n;
}

static void check_reconstruction_halves(const GencModel *m, int iterations)
{
    GencError err;
    GencTrainer *t = genc_trainer_new(m, &train, 1, &err);
    ck_assert_ptr_nonnull(t);
    double before = reconstruction_error(t, m);
    genc_trainer_iteration(t);
    double first_loss = genc_trainer_losses(t)[0];
    for (int i = 1; i < iterations; i++) {
        genc_trainer_iteration(t);
        ck_assert_msg(isfinite(genc_trainer_losses(t)[0]), "%s: loss not finite at %d", m->name, i);
    }
    double after = reconstruction_error(t, m);
    printf("%s: held-out reconstruction MSE %.4f -> %.4f; training loss %.4f -> %.4f\n", m->name, before, after,
           first_loss, genc_trainer_losses(t)[0]);
    ck_assert_msg(after < 0.5 * before, "%s: reconstruction error %.4f -> %.4f, not halved", m->name, before, after);
    ck_assert_msg(genc_trainer_losses(t)[0] < first_loss, "%s: training loss did not fall", m->name);
    genc_trainer_free(t);
}

START_TEST(autoencoder_learns) { check_reconstruction_halves(&autoencoder_model, 500); }
END_TEST

START_TEST(vae_learns) { check_reconstruction_halves(&vae_model, 500); }
END_TEST

START_TEST(conv_autoencoder_learns) { check_reconstruction_halves(&conv_autoencoder_model, 300); }
END_TEST

START_TEST(dcgan_trains_stably)
{
    const GencModel *m = &dcgan_model;
    GencError err;
    GencTrainer *t = genc_trainer_new(m, &train, 1, &err);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < 300; i++) {
        genc_trainer_iteration(t);
        for (int s = 0; s < m->n_steps; s++)
            ck_assert_msg(isfinite(genc_trainer_losses(t)[s]), "step %s: loss not finite at %d", m->steps[s].name, i);
    }
    printf("dcgan: after 300 iterations losses d %.4f g %.4f\n", genc_trainer_losses(t)[0], genc_trainer_losses(t)[1]);
    genc_trainer_free(t);
}
END_TEST

START_TEST(mlp_gan_trains_stably)
{
    const GencModel *m = &mlp_gan_model;
    GencError err;
    GencTrainer *t = genc_trainer_new(m, &train, 1, &err);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < 500; i++) {
        genc_trainer_iteration(t);
        for (int s = 0; s < m->n_steps; s++)
            ck_assert_msg(isfinite(genc_trainer_losses(t)[s]), "step %s: loss not finite at %d", m->steps[s].name, i);
    }
    const GencFunction *d = genc_model_function(m, "discriminator_forward");
    ck_assert_ptr_nonnull(d);
    float logits[64];
    int real = 0, total = 0;
    for (int b = 0; b + m->batch <= held_out.n; b += m->batch) {
        genc_trainer_forward(t, d, (const float *const[]){held_out.images + (size_t)b * 784}, (float *const[]){logits});
        for (int i = 0; i < m->batch; i++) real += logits[i] > 0, total++;
    }
    double accuracy = (double)real / total;
    printf("mlp_gan: losses d %.4f g %.4f; discriminator accuracy on %d held-out real images %.3f\n",
           genc_trainer_losses(t)[0], genc_trainer_losses(t)[1], total, accuracy);
    ck_assert_msg(accuracy >= 0.3 && accuracy <= 0.99, "discriminator accuracy %.3f outside [0.3, 0.99]", accuracy);
    genc_trainer_free(t);
}
END_TEST

int main(void)
{
    load_data();
    Suite *s = suite_create("learning");
    TCase *tc = tcase_create("fashion-mnist");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, autoencoder_learns);
    tcase_add_test(tc, vae_learns);
    tcase_add_test(tc, mlp_gan_trains_stably);
    tcase_add_test(tc, conv_autoencoder_learns);
    tcase_add_test(tc, dcgan_trains_stably);
    suite_add_tcase(s, tc);
    int failed = run_suite(s, CK_FORK);
    genc_dataset_free(&train);
    genc_dataset_free(&held_out);
    return failed;
}
