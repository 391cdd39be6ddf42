/* test_explore.c — latent-space pictures (explore.c), on models with seeded
 * random weights (what is checked is where each image comes from):
 * - lerp and slerp: each row starts and ends at the two z drawn for it (in
 *   the documented order: a, then b, per row), and its end images are the
 *   samples of those z; slerp's points turn along the great circle (the
 *   angle to a grows linearly, the length goes linearly from |a| to |b|),
 *   lerp's lie on the straight line;
 * - classes (cGAN): every image in column c is the sample of its row's z with
 *   label c, the rows' z are shared across the row, and the label changes
 *   the image;
 * - traverse: row d moves only latent dimension d, from -range to +range;
 * - walk: one chain, each step z' = sqrt(1 - s²) z + s e;
 * - reconstruct: test images beside their reconstructions. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "genc_runtime.h"
#include "run_suite.h"
#include "synthetic.h"

extern const GencModel mlp_gan_model, vae_model, cgan_model, autoencoder_model;

static size_t image_size(const GencModel *m) { return (size_t)m->image_channels * m->image_height * m->image_width; }

static GencTrainer *new_trainer(const GencModel *m)
{
    GencError err;
    GencTrainer *t = genc_trainer_new(m, NULL, 3, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    return t;
}

static GencGrid explore(GencTrainer *t, GencExploreMode mode, int rows, int cols)
{
    GencExplore o = {.mode = mode, .seed = 17, .rows = rows, .cols = cols, .label = -1, .step = 0.3f, .range = 3};
    GencGrid g;
    GencError err;
    ck_assert_msg(genc_explore(t, &o, &g, &err) == 0, "%s", err.msg);
    return g;
}

/* The images genc_sample_images makes of the grid's own z and labels: the
 * grid's images must be exactly these. */
static void assert_images_are_samples(GencTrainer *t, const GencModel *m, const GencGrid *g)
{
    int n = g->rows * g->cols;
    float *want = malloc(sizeof(float) * image_size(m) * (size_t)n);
    GencError err;
    ck_assert_msg(genc_sample_images(t, n, g->z, g->labels, want, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(memcmp(want, g->images, sizeof(float) * image_size(m) * (size_t)n), 0);
    free(want);
}

static double angle(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    double c = ab / sqrt(aa * bb);
    return acos(c > 1 ? 1 : c < -1 ? -1 : c);
}

static void check_interpolation(const GencModel *m, GencExploreMode mode)
{
    GencTrainer *t = new_trainer(m);
    GencGrid g = explore(t, mode, 3, 7);
    size_t Z = g.latent;
    ck_assert_int_eq(g.rows, 3);
    ck_assert_int_eq(g.cols, 7);
    GencRng rng;
    genc_rng_seed(&rng, 17);
    float *a = malloc(sizeof(float) * Z), *b = malloc(sizeof(float) * Z);
    for (int r = 0; r < g.rows; r++) {
        genc_rng_fill_normal(&rng, a, Z);
        genc_rng_fill_normal(&rng, b, Z);
        const float *row = g.z + (size_t)r * g.cols * Z;
        ck_assert_int_eq(memcmp(row, a, sizeof(float) * Z), 0);                     /* starts at a */
        ck_assert_int_eq(memcmp(row + (g.cols - 1) * Z, b, sizeof(float) * Z), 0);  /* ends at b */
        double omega = angle(a, b, Z);
        for (int c = 1; c < g.cols - 1; c++) {
            const float *p = row + c * Z;
            double s = (double)c / (g.cols - 1);
            if (mode == GENC_EXPLORE_SLERP) { /* on the great circle: the angle to a is s·omega */
                ck_assert_double_eq_tol(angle(a, p, Z), s * omega, 1e-4);
                ck_assert_double_eq_tol(angle(p, b, Z), (1 - s) * omega, 1e-4);
                double na = 0, nb = 0, np = 0; /* and the length goes linearly */
                for (size_t i = 0; i < Z; i++) na += a[i] * a[i], nb += b[i] * b[i], np += p[i] * p[i];
                ck_assert_double_eq_tol(sqrt(np), (1 - s) * sqrt(na) + s * sqrt(nb), 1e-3);
            } else {                          /* on the line */
                for (size_t i = 0; i < Z; i++) ck_assert_float_eq_tol(p[i], (1 - s) * a[i] + s * b[i], 1e-5);
            }
        }
    }
    assert_images_are_samples(t, m, &g);
    /* and the end images are the samples of a and b alone, at batch position 0 */
    float *alone = malloc(sizeof(float) * image_size(m));
    GencError err;
    ck_assert_int_eq(genc_sample_images(t, 1, g.z, g.labels, alone, &err), 0);
    ck_assert_int_eq(memcmp(alone, g.images, sizeof(float) * image_size(m)), 0);
    ck_assert_msg(memcmp(g.images, g.images + image_size(m), sizeof(float) * image_size(m)) != 0,
                  "neighbouring images are identical: the row does not move");
    free(alone), free(a), free(b);
    genc_grid_free(&g);
    genc_trainer_free(t);
}

START_TEST(lerp_endpoints_are_the_endpoint_samples) { check_interpolation(&mlp_gan_model, GENC_EXPLORE_LERP); }
END_TEST

START_TEST(slerp_endpoints_are_the_endpoint_samples) { check_interpolation(&vae_model, GENC_EXPLORE_SLERP); }
END_TEST

START_TEST(cgan_interpolation_uses_row_labels)
{
    check_interpolation(&cgan_model, GENC_EXPLORE_SLERP);
    GencTrainer *t = new_trainer(&cgan_model);
    GencGrid g = explore(t, GENC_EXPLORE_LERP, 12, 4);
    for (int r = 0; r < g.rows; r++)
        for (int c = 0; c < g.cols; c++) ck_assert_float_eq(g.labels[r * g.cols + c], (float)(r % 10));
    genc_grid_free(&g);
    genc_trainer_free(t);
}
END_TEST

START_TEST(class_grid_columns_use_their_labels)
{
    const GencModel *m = &cgan_model;
    GencTrainer *t = new_trainer(m);
    GencGrid g = explore(t, GENC_EXPLORE_CLASSES, 4, 0);
    ck_assert_int_eq(g.cols, 10);
    size_t Z = g.latent, px = image_size(m);
    float *one = malloc(sizeof(float) * px);
    GencError err;
    for (int r = 0; r < g.rows; r++)
        for (int c = 0; c < g.cols; c++) {
            int cell = r * g.cols + c;
            ck_assert_float_eq(g.labels[cell], (float)c);
            ck_assert_int_eq(memcmp(g.z + (size_t)cell * Z, g.z + (size_t)r * g.cols * Z, sizeof(float) * Z), 0);
            /* the image is the sample of (z, c) computed on its own */
            float label = (float)c;
            ck_assert_int_eq(genc_sample_images(t, 1, g.z + (size_t)cell * Z, &label, one, &err), 0);
            float worst = 0;
            for (size_t i = 0; i < px; i++) worst = fmaxf(worst, fabsf(one[i] - g.images[cell * px + i]));
            ck_assert_msg(worst <= 1e-6f, "row %d class %d: %g from the sample of (z, %d)", r, c, worst, c);
            if (c > 0)
                ck_assert_msg(memcmp(g.images + cell * px, g.images + (cell - 1) * px, sizeof(float) * px) != 0,
                              "classes %d and %d give the same image", c - 1, c);
        }
    assert_images_are_samples(t, m, &g);
    free(one);
    genc_grid_free(&g);
    genc_trainer_free(t);
}
END_TEST

START_TEST(classes_refused_for_unconditional_models)
{
    GencTrainer *t = new_trainer(&mlp_gan_model);
    GencExplore o = {.mode = GENC_EXPLORE_CLASSES, .seed = 1, .label = -1};
    GencGrid g;
    GencError err;
    ck_assert_int_ne(genc_explore(t, &o, &g, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not sample from a class label"));
    genc_trainer_free(t);
}
END_TEST

START_TEST(traverse_moves_one_dimension_per_row)
{
    const GencModel *m = &vae_model;
    GencTrainer *t = new_trainer(m);
    GencGrid g = explore(t, GENC_EXPLORE_TRAVERSE, 0, 5);
    size_t Z = g.latent;
    ck_assert_int_eq(g.rows, (int)Z); /* every dimension of the VAE's 20 */
    /* the point traversed around: row 1 holds it in dimension 0, row 0 in the others */
    float *center = malloc(sizeof(float) * Z);
    memcpy(center, g.z, sizeof(float) * Z);
    center[0] = g.z[(size_t)g.cols * Z];
    for (int r = 0; r < g.rows; r++)
        for (int c = 0; c < g.cols; c++) {
            const float *p = g.z + ((size_t)r * g.cols + c) * Z;
            for (size_t i = 0; i < Z; i++) {
                if ((int)i == r) ck_assert_float_eq_tol(p[i], -3 + 6.0f * c / 4, 1e-6);
                else ck_assert_float_eq(p[i], center[i]);
            }
        }
    assert_images_are_samples(t, m, &g);
    free(center);
    genc_grid_free(&g);
    genc_trainer_free(t);
}
END_TEST

START_TEST(walk_is_one_chain)
{
    const GencModel *m = &mlp_gan_model;
    GencTrainer *t = new_trainer(m);
    GencGrid g = explore(t, GENC_EXPLORE_WALK, 2, 5);
    size_t Z = g.latent;
    GencRng rng;
    genc_rng_seed(&rng, 17);
    float *z = malloc(sizeof(float) * Z), *e = malloc(sizeof(float) * Z);
    genc_rng_fill_normal(&rng, z, Z);
    for (int k = 0; k < g.rows * g.cols; k++) {
        if (k > 0) {
            genc_rng_fill_normal(&rng, e, Z);
            for (size_t i = 0; i < Z; i++) z[i] = sqrtf(1 - 0.09f) * z[i] + 0.3f * e[i];
        }
        ck_assert_int_eq(memcmp(z, g.z + (size_t)k * Z, sizeof(float) * Z), 0);
    }
    assert_images_are_samples(t, m, &g);
    free(z), free(e);
    genc_grid_free(&g);
    genc_trainer_free(t);
}
END_TEST

START_TEST(reconstruct_puts_test_images_beside_reconstructions)
{
    const GencModel *m = &autoencoder_model;
    GencTrainer *t = new_trainer(m);
    GencDataset data = synthetic_dataset(40, 9);
    GencExplore o = {.mode = GENC_EXPLORE_RECONSTRUCT, .rows = 3, .cols = 6, .label = -1, .data = &data};
    GencGrid g;
    GencError err;
    ck_assert_msg(genc_explore(t, &o, &g, &err) == 0, "%s", err.msg);
    size_t px = image_size(m);
    float *out = malloc(sizeof(float) * px * m->batch), *in = calloc(px * m->batch, sizeof(float));
    memcpy(in, data.images, sizeof(float) * px * 9); /* 3 rows x 3 pairs; image range is [0, 1] */
    genc_trainer_forward(t, m->reconstruct, (const float *const[]){in}, (float *const[]){out});
    for (int p = 0; p < 9; p++) {
        int cell = (p / 3) * 6 + 2 * (p % 3);
        ck_assert_int_eq(memcmp(g.images + cell * px, data.images + p * px, sizeof(float) * px), 0);
        ck_assert_int_eq(memcmp(g.images + (cell + 1) * px, out + p * px, sizeof(float) * px), 0);
    }
    free(out), free(in);
    genc_grid_free(&g);
    genc_dataset_free(&data);
    genc_trainer_free(t);
}
END_TEST

static Suite *explore_suite(void)
{
    Suite *s = suite_create("explore");
    TCase *tc = tcase_create("grids");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, lerp_endpoints_are_the_endpoint_samples);
    tcase_add_test(tc, slerp_endpoints_are_the_endpoint_samples);
    tcase_add_test(tc, cgan_interpolation_uses_row_labels);
    tcase_add_test(tc, class_grid_columns_use_their_labels);
    tcase_add_test(tc, classes_refused_for_unconditional_models);
    tcase_add_test(tc, traverse_moves_one_dimension_per_row);
    tcase_add_test(tc, walk_is_one_chain);
    tcase_add_test(tc, reconstruct_puts_test_images_beside_reconstructions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(explore_suite(), CK_FORK); }
