/* test_alloc.c — training allocates nothing: malloc, calloc, realloc, free
 * and the aligned allocators are interposed and counted (on every thread)
 * across 100 iterations of each model, after set-up and one warm-up
 * iteration, with one thread and with two (OpenMP's team is made once). */
#define _GNU_SOURCE
#include <check.h>

#include "run_suite.h"
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>

#include "genc_runtime.h"
#include "synthetic.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static volatile int counting;
static volatile long calls;

void *malloc(size_t n) { if (counting) calls++; return __libc_malloc(n); }
void *calloc(size_t k, size_t n) { if (counting) calls++; return __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { if (counting) calls++; return __libc_realloc(p, n); }
void free(void *p) { if (counting && p) calls++; __libc_free(p); }
void *aligned_alloc(size_t a, size_t n) { if (counting) calls++; return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { if (counting) calls++; return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n)
{
    if (counting) calls++;
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}

extern const GencModel mlp_gan_model, vae_model, autoencoder_model, conv_autoencoder_model, dcgan_model, cgan_model;
static const GencModel *const models[] = {&mlp_gan_model, &vae_model, &autoencoder_model, &conv_autoencoder_model,
                                          &dcgan_model, &cgan_model};
enum { N_MODELS = sizeof models / sizeof models[0] };

START_TEST(training_allocates_nothing)
{
    const GencModel *m = models[_i % N_MODELS];
    int threads = 1 + _i / N_MODELS;
    setenv("GENC_THREADS", threads == 1 ? "1" : "2", 1);
    GencDataset data = synthetic_dataset(640, 3);
    GencError err;
    GencTrainer *t = genc_trainer_new(m, &data, 7, &err);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(omp_get_max_threads(), threads);
    genc_trainer_iteration(t); /* warm-up: BLAS sets up its buffers once */
    calls = 0;
    counting = 1;
    for (int i = 0; i < 100; i++) genc_trainer_iteration(t); /* crosses an epoch: 10 batches each */
    counting = 0;
    ck_assert_msg(calls == 0, "%s, %d threads: %ld heap calls during 100 training iterations", m->name, threads, calls);
    ck_assert_int_eq(genc_trainer_iterations(t), 101);
    genc_trainer_free(t);
    genc_dataset_free(&data);
}
END_TEST

START_TEST(the_counter_counts)
{
    calls = 0;
    counting = 1;
    void *volatile p = malloc(16);
    free(p);
    counting = 0;
    ck_assert_int_eq(calls, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("allocations");
    TCase *tc = tcase_create("steps");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, the_counter_counts);
    tcase_add_loop_test(tc, training_allocates_nothing, 0, 2 * N_MODELS);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK);
}
