/* test_conv.c — what the convolutional issue adds beyond gradients:
 * - output sizes of conv2d, conv2d_transpose and maxpool2d against a table
 *   computed by hand, including the cases Keras and PyTorch define apart;
 * - forward functions run in inference mode: batchnorm uses the running
 *   statistics, so a sample's output does not depend on the rest of its batch;
 * - a DCGAN checkpoint carries the batchnorm running statistics. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "genc_runtime.h"
#include "run_suite.h"
#include "synthetic.h"

typedef struct {
    const char *what;
    int in, kernel, stride;
    bool same, transpose;
    int out, pad_before;
} ShapeCase;

/* out and pad_before worked by hand. "same" is Keras's rule throughout. */
static const ShapeCase shapes[] = {
    {"conv 3, s1, same", 28, 3, 1, true, false, 28, 1},
    {"conv 3, s2, same, even input", 28, 3, 2, true, false, 14, 0},  /* total pad 1: all of it after */
    {"conv 3, s2, same, odd input", 7, 3, 2, true, false, 4, 1},     /* ceil(7/2) = 4, total pad 2 */
    {"conv 4, s1, same, even kernel", 5, 4, 1, true, false, 5, 1},   /* total 3: 1 before, 2 after (as PyTorch 'same') */
    {"conv 5, s2, same", 28, 5, 2, true, false, 14, 1},              /* total 3 */
    {"conv 3, s1, valid", 28, 3, 1, false, false, 26, 0},
    {"conv 3, s2, valid", 28, 3, 2, false, false, 13, 0},
    {"conv 5, s3, valid", 17, 5, 3, false, false, 5, 0},
    {"conv too large, valid", 2, 3, 1, false, false, 0, 0},
    /* Keras doubles with "same"; the extra row of the full output (2·7+1) is
     * cropped at the bottom. PyTorch's ConvTranspose2d(k=3, s=2, padding=1,
     * output_padding=1) also gives 14 but crops the top row instead. */
    {"transpose 3, s2, same", 7, 3, 2, true, true, 14, 0},
    {"transpose 5, s2, same", 7, 5, 2, true, true, 14, 1},
    {"transpose 3, s1, same", 14, 3, 1, true, true, 14, 1},
    {"transpose 4, s2, same", 7, 4, 2, true, true, 14, 1},           /* total 2 */
    {"transpose 3, s2, valid", 7, 3, 2, false, true, 15, 0},         /* (7-1)·2 + 3 */
    {"transpose 2, s2, valid", 7, 2, 2, false, true, 14, 0},
    /* Pooling: Keras "same" pads (with -inf) after first; PyTorch has no
     * "same" for pooling and pads symmetrically. */
    {"pool 2, s2, valid", 28, 2, 2, false, false, 14, 0},
    {"pool 2, s2, valid, odd input", 7, 2, 2, false, false, 3, 0},   /* the last row is dropped */
    {"pool 2, s2, same, odd input", 7, 2, 2, true, false, 4, 0},     /* ceil: the last window is half padding */
    {"pool 3, s2, same", 14, 3, 2, true, false, 7, 0},               /* total 1 */
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

START_TEST(window_output_sizes)
{
    const ShapeCase *c = &shapes[_i];
    int pad = -1;
    int out = window_output(c->in, c->kernel, c->stride, c->same, c->transpose, &pad);
    ck_assert_msg(out == c->out, "%s: output %d, expected %d", c->what, out, c->out);
    if (out) ck_assert_msg(pad == c->pad_before, "%s: padding before %d, expected %d", c->what, pad, c->pad_before);
}
END_TEST

extern const GencModel dcgan_model, conv_autoencoder_model;

/* A few training iterations so that running statistics move off their start. */
static GencTrainer *trained_dcgan(GencDataset *data, int iterations)
{
    GencError err;
    GencTrainer *t = genc_trainer_new(&dcgan_model, data, 3, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    for (int i = 0; i < iterations; i++) genc_trainer_iteration(t);
    return t;
}

START_TEST(generator_forward_is_inference_mode)
{
    GencDataset data = synthetic_dataset(256, 9);
    GencTrainer *t = trained_dcgan(&data, 3);
    const GencFunction *g = genc_model_function(&dcgan_model, "generator_forward");
    ck_assert_ptr_nonnull(g);
    size_t z_size = g->inputs[0].size, out_size = g->output_sizes[0], per_sample = out_size / dcgan_model.batch;
    float *z = malloc(z_size * sizeof(float)), *out1 = malloc(out_size * sizeof(float)),
          *out2 = malloc(out_size * sizeof(float));
    GencRng rng;
    genc_rng_seed(&rng, 4);
    genc_rng_fill_normal(&rng, z, z_size);
    genc_trainer_forward(t, g, (const float *const[]){z}, (float *const[]){out1});
    /* Change every sample but the first: in inference mode the first output stays bit for bit. */
    size_t per_z = z_size / dcgan_model.batch;
    for (size_t i = per_z; i < z_size; i++) z[i] = -z[i] * 0.5f;
    genc_trainer_forward(t, g, (const float *const[]){z}, (float *const[]){out2});
    ck_assert(memcmp(out1, out2, per_sample * sizeof(float)) == 0);
    ck_assert(memcmp(out1 + per_sample, out2 + per_sample, per_sample * sizeof(float)) != 0);
    for (size_t i = 0; i < out_size; i++) ck_assert(out1[i] >= -1 && out1[i] <= 1); /* tanh */
    free(z), free(out1), free(out2);
    genc_trainer_free(t);
    genc_dataset_free(&data);
}
END_TEST

START_TEST(dcgan_checkpoint_keeps_running_statistics)
{
    GencDataset data = synthetic_dataset(256, 9);
    GencTrainer *t = trained_dcgan(&data, 3);
    GencError err;
    const char *path = "/tmp/genc-test-dcgan.safetensors";
    ck_assert_msg(genc_checkpoint_save(t, path, &err) == 0, "%s", err.msg);

    GencSafetensors st;
    ck_assert_int_eq(genc_safetensors_read(path, &st, &err), 0);
    const GencTensorIn *var = genc_safetensors_find(&st, "state/generator.batchnorm1.running_var");
    const GencTensorIn *mean = genc_safetensors_find(&st, "state/generator.batchnorm2.running_mean");
    ck_assert_ptr_nonnull(var);
    ck_assert_ptr_nonnull(mean);
    ck_assert_int_eq(var->count, 128);
    ck_assert_int_eq(mean->count, 64);
    bool moved = false;
    for (size_t i = 0; i < var->count; i++) moved |= var->data[i] != 1.0f; /* starts at 1 */
    ck_assert_msg(moved, "the running variance never moved in training");
    ck_assert(genc_safetensors_find(&st, "param/generator.batchnorm1.gamma") != NULL);
    ck_assert(genc_safetensors_find(&st, "param/generator.batchnorm1.running_var") == NULL); /* not trained */

    /* A fresh trainer that loads the weights samples exactly like the trained one. */
    GencTrainer *fresh = genc_trainer_new(&dcgan_model, NULL, 99, &err);
    ck_assert_int_eq(genc_checkpoint_load(fresh, path, true, &err), 0);
    const GencFunction *g = genc_model_function(&dcgan_model, "generator_forward");
    size_t out_size = g->output_sizes[0];
    float *z = calloc(g->inputs[0].size, sizeof(float)), *a = malloc(out_size * 4), *b = malloc(out_size * 4);
    for (size_t i = 0; i < g->inputs[0].size; i++) z[i] = (float)(i % 7) / 7 - 0.4f;
    genc_trainer_forward(t, g, (const float *const[]){z}, (float *const[]){a});
    genc_trainer_forward(fresh, g, (const float *const[]){z}, (float *const[]){b});
    ck_assert(memcmp(a, b, out_size * sizeof(float)) == 0);
    free(z), free(a), free(b);
    genc_safetensors_free(&st);
    genc_trainer_free(t);
    genc_trainer_free(fresh);
    genc_dataset_free(&data);
    remove(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("convolutions");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, window_output_sizes, 0, N_SHAPES);
    tcase_add_test(tc, generator_forward_is_inference_mode);
    tcase_add_test(tc, dcgan_checkpoint_keeps_running_statistics);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK);
}
