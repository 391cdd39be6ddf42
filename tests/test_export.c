/* test_export.c — genc export, end to end, for every model that samples:
 * - a checkpoint of a briefly trained model (so batchnorm's running
 *   statistics are not their initial values) is exported;
 * - the plain sampler compiles under -std=c99 -Wall -Wextra -pedantic -Werror
 *   with gcc and clang, as C++ with g++ and clang++, and a C++ file includes
 *   its header; its object file holds no writable data (no globals that change);
 * - loaded with dlopen, its samples equal the trainer's own inference forward
 *   for the same weights and z: within 1e-5 of the image's largest pixel for
 *   the plain-loop sampler at batch 1 (a different summation order than
 *   OpenBLAS's), and bit for bit for the --blas sampler at the model's batch
 *   (the same kernels and the same products: the trainer on one thread);
 * - the --blas sampler at batch 1 built with -fopenmp gives on 2 threads the
 *   bits it gives built without OpenMP;
 * - at batch 1 the dense layers of up to 2^18 weights are stored input-major
 *   in panels (row sums), at the model's batch none;
 * - NAME_sample_seeded(seed) draws the z the runtime's generator draws. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgan.h"
#include "compiler.h" /* upper_name: the macro prefix export.c uses */
#include "dcgan.h"
#include "genc_runtime.h"
#include "mlp_gan.h"
#include "run_suite.h"
#include "synthetic.h"
#include "vae.h"

typedef struct {
    const char *spec;
    const GencModel *model;
    bool full_compiler_matrix; /* the large samplers take ~10 s per compile: one compiler is enough */
    int input_major;           /* dense layers stored input-major at batch 1: those of up to 2^18 weights */
} Case;

static const Case cases[] = {
    {"models/mlp_gan.lua", &mlp_gan_model, true, 3},
    {"models/vae.lua", &vae_model, false, 2},
    {"models/dcgan.lua", &dcgan_model, false, 0}, /* 100 -> 12544 */
    {"models/cgan.lua", &cgan_model, true, 2},    /* not 512 -> 784 */
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static char workdir[] = "/tmp/genc-test-export-XXXXXX";

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A trainer after a few iterations on synthetic data, saved to a checkpoint. */
static GencTrainer *trained(const Case *c, GencDataset *data, char *ckpt, size_t size)
{
    GencError err;
    *data = synthetic_dataset(256, 5);
    GencTrainer *t = genc_trainer_new(c->model, data, 11, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    for (int i = 0; i < 3; i++) genc_trainer_iteration(t);
    snprintf(ckpt, size, "%s/%s.safetensors", workdir, c->model->name);
    ck_assert_msg(genc_checkpoint_save(t, ckpt, &err) == 0, "%s", err.msg);
    return t;
}

static void *load_sampler(const char *name, const char *extra_libs)
{
    /* The models' arithmetic: their -march, and the FMA contraction that GNU C
     * mode (CMake's gnu11) allows and ISO -std=c99 alone does not. */
    ck_assert_int_eq(sh("cd %s && cc -std=c99 -O2 " GENC_ARCH_FLAGS " -ffp-contract=fast -Wall -Wextra -pedantic -Werror "
                        "-fPIC -shared %s.c -o %s.so %s -lm", workdir, name, name, extra_libs), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.so", workdir, name);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(so != NULL, "dlopen %s: %s", path, dlerror());
    return so;
}

/* The trainer's images for z (and labels), n samples. */
static float *reference(GencTrainer *t, const GencModel *m, int n, const float *z, const float *labels)
{
    size_t per_image = (size_t)m->image_channels * m->image_height * m->image_width;
    float *out = malloc(sizeof(float) * per_image * (size_t)n);
    GencError err;
    ck_assert_msg(genc_sample_images(t, n, z, labels, out, &err) == 0, "%s", err.msg);
    return out;
}

typedef void (*SampleFn)(float *workspace, const float *z, float *out);
typedef void (*SampleLabelledFn)(float *workspace, const float *z, const int *labels, float *out);
typedef void (*SeededFn)(uint64_t seed, float *out);
typedef void (*SeededLabelledFn)(uint64_t seed, const int *labels, float *out);

/* Runs the sampler on n samples of z in calls of batch; labels may be NULL.
 * NAME_sample_with, because a batch-64 DCGAN's workspace does not fit a
 * thread's stack; the trainer's arena is at least as large as it needs. */
static float *run_sampler(void *so, const char *name, const GencModel *m, int batch, int n, const float *z,
                          const int *labels)
{
    size_t latent = genc_latent_size(m), per_image = (size_t)m->image_channels * m->image_height * m->image_width;
    char sym[256];
    snprintf(sym, sizeof sym, "%s_sample_with", name);
    void *fn = dlsym(so, sym);
    ck_assert_msg(fn != NULL, "no %s", sym);
    float *out = malloc(sizeof(float) * per_image * (size_t)n), *workspace = malloc(sizeof(float) * m->arena_size);
    for (int first = 0; first < n; first += batch) {
        if (labels) ((SampleLabelledFn)fn)(workspace, z + first * latent, labels + first, out + first * per_image);
        else ((SampleFn)fn)(workspace, z + first * latent, out + first * per_image);
    }
    free(workspace);
    return out;
}

START_TEST(exported_sampler_matches_trainer)
{
    const Case *c = &cases[_i];
    const GencModel *m = c->model;
    char ckpt[512], name[64];
    GencDataset data;
    GencTrainer *t = trained(c, &data, ckpt, sizeof ckpt);
    size_t latent = genc_latent_size(m), per_image = (size_t)m->image_channels * m->image_height * m->image_width;
    bool labelled = genc_sample_takes_labels(m);
    int n = m->batch;

    /* z and labels for one full batch */
    float *z = malloc(sizeof(float) * latent * (size_t)n), *labels_f = malloc(sizeof(float) * (size_t)n);
    int *labels = malloc(sizeof(int) * (size_t)n);
    GencRng rng;
    genc_rng_seed(&rng, 99);
    genc_rng_fill_normal(&rng, z, latent * (size_t)n);
    for (int i = 0; i < n; i++) labels[i] = i % (m->classes ? m->classes : 1), labels_f[i] = (float)labels[i];
    /* The trainer's images on one thread, its products whole as a serial
     * sampler's: OpenBLAS may sum a band of a product in another order than
     * the whole (Haswell's kernels on an AMD EPYC: half of 64x12544x100) */
    omp_set_num_threads(1);
    float *want = reference(t, m, n, z, labelled ? labels_f : NULL);

    /* plain loops, batch 1; the weights of the smaller dense layers stored
     * input-major in panels, for row sums */
    snprintf(name, sizeof name, "%s_plain", m->name);
    ck_assert_int_eq(sh("cd " GENC_SOURCE_DIR " && " GENC_EXE " export %s --weights %s -o %s --name %s > /dev/null",
                        c->spec, ckpt, workdir, name), 0);
    ck_assert_msg(sh("test \"$(grep -c '^    genc_dense_forward_input_major(' %s/%s.c)\" = %d", workdir, name,
                     c->input_major) == 0, "%s.c: not %d dense layers input-major", name, c->input_major);
    if (c->full_compiler_matrix) {
        const char *compilers[] = {"gcc -std=c99", "clang -std=c99", "g++ -x c++", "clang++ -x c++"};
        for (int k = 0; k < 4; k++)
            ck_assert_msg(sh("cd %s && %s -O1 -Wall -Wextra -pedantic -Werror -c %s.c -o %s_%d.o", workdir,
                             compilers[k], name, name, k) == 0, "%s does not compile %s.c", compilers[k], name);
        /* A C++ program uses the header as it is. */
        char path[512];
        snprintf(path, sizeof path, "%s/%s_user.cpp", workdir, name);
        FILE *cpp = fopen(path, "w");
        ck_assert_ptr_nonnull(cpp);
        fprintf(cpp, "#include \"%s.h\"\n#include <vector>\nvoid use();\nvoid use() {\n", name);
        fprintf(cpp, "    std::vector<float> out(%s_BATCH * %s_OUTPUT);\n", upper_name(name), upper_name(name));
        fprintf(cpp, labelled ? "    int labels[%s_BATCH] = {0};\n    %s_sample_seeded(1, labels, out.data());\n}\n"
                              : "    %s_sample_seeded(1, out.data());\n}\n", labelled ? upper_name(name) : name, name);
        fclose(cpp);
        ck_assert_int_eq(sh("cd %s && g++ -std=c++11 -Wall -Wextra -pedantic -Werror -c %s_user.cpp -o %s_user.o", workdir,
                            name, name), 0);
        /* No writable data: nm lists none of the data/bss symbol kinds. */
        ck_assert_int_eq(sh("cd %s && test -z \"$(nm %s_0.o | grep -E ' [BbDdGgSs] ')\"", workdir, name), 0);
    }
    void *so = load_sampler(name, "");
    float *got = run_sampler(so, name, m, 1, n, z, labelled ? labels : NULL);
    for (int i = 0; i < n; i++) {
        const float *a = got + i * per_image, *b = want + i * per_image;
        float scale = 0, worst = 0;
        for (size_t k = 0; k < per_image; k++) {
            scale = fmaxf(scale, fabsf(b[k]));
            worst = fmaxf(worst, fabsf(a[k] - b[k]));
        }
        ck_assert_msg(worst <= 1e-5f * fmaxf(scale, 1e-3f), "%s sample %d: max error %g (largest pixel %g)", name, i,
                      worst, scale);
    }

    /* NAME_sample_seeded draws the same z as the runtime from the same seed */
    char sym[128];
    snprintf(sym, sizeof sym, "%s_sample_seeded", name);
    void *seeded = dlsym(so, sym);
    ck_assert_ptr_nonnull(seeded);
    float *image = malloc(sizeof(float) * per_image), *z1 = malloc(sizeof(float) * latent);
    genc_rng_seed(&rng, 1234);
    genc_rng_fill_normal(&rng, z1, latent);
    if (labelled) ((SeededLabelledFn)seeded)(1234, &labels[3], image);
    else ((SeededFn)seeded)(1234, image);
    float *direct = run_sampler(so, name, m, 1, 1, z1, labelled ? &labels[3] : NULL);
    ck_assert_int_eq(memcmp(image, direct, sizeof(float) * per_image), 0);
    dlclose(so);

    /* --blas at the model's batch: the trainer's arithmetic exactly */
    snprintf(name, sizeof name, "%s_blas", m->name);
    ck_assert_int_eq(sh("cd " GENC_SOURCE_DIR " && " GENC_EXE " export %s --weights %s -o %s --name %s --blas --batch %d"
                        " > /dev/null", c->spec, ckpt, workdir, name, m->batch), 0);
    ck_assert_int_eq(sh("! grep -q '^    genc_dense_forward_input_major(' %s/%s.c", workdir, name), 0);
    so = load_sampler(name, GENC_BLAS_LIBS);
    free(got);
    got = run_sampler(so, name, m, n, n, z, labelled ? labels : NULL);
    ck_assert_msg(memcmp(got, want, sizeof(float) * per_image * (size_t)n) == 0,
                  "%s: the --blas sampler differs from the trainer", name);
    dlclose(so);

    /* --blas at batch 1 built with -fopenmp on 2 threads (bands of the large
     * products, col2im by channel): the same bits as built without OpenMP */
    float *serial = NULL;
    for (int openmp = 0; openmp < 2; openmp++) {
        snprintf(name, sizeof name, "%s_blas1_%s", m->name, openmp ? "openmp" : "serial");
        ck_assert_int_eq(sh("cd " GENC_SOURCE_DIR " && " GENC_EXE " export %s --weights %s -o %s --name %s --blas"
                            " > /dev/null", c->spec, ckpt, workdir, name), 0);
        so = load_sampler(name, openmp ? "-fopenmp " GENC_BLAS_LIBS : GENC_BLAS_LIBS);
        omp_set_num_threads(2);
        free(got);
        got = run_sampler(so, name, m, 1, n, z, labelled ? labels : NULL);
        dlclose(so);
        if (!openmp) serial = got, got = NULL;
    }
    ck_assert_msg(memcmp(got, serial, sizeof(float) * per_image * (size_t)n) == 0,
                  "%s: 2 threads differ from 1", name);
    free(serial);

    free(z), free(labels_f), free(labels), free(want), free(got), free(image), free(z1), free(direct);
    genc_trainer_free(t);
    genc_dataset_free(&data);
}
END_TEST

static Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("samplers");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, exported_sampler_matches_trainer, 0, N_CASES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (!mkdtemp(workdir)) return perror("mkdtemp"), 1;
    int rc = run_suite(export_suite(), CK_FORK);
    sh("rm -rf %s", workdir);
    return rc;
}
