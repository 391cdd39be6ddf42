/* bench_train.c — training throughput of every compiled model: after a
 * warm-up, 5 timed runs of about a second each; prints one line per model,
 * "model img/s run1 run2 ...", the first number being the median. Threads
 * come from GENC_THREADS (read by the trainer). With an output folder,
 * writes each model's checkpoint there (for the sampler benchmark). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genc_runtime.h"
#include "synthetic.h"

extern const GencModel mlp_gan_model, vae_model, autoencoder_model, conv_autoencoder_model, dcgan_model, cgan_model;
static const GencModel *const models[] = {&mlp_gan_model, &vae_model, &autoencoder_model, &conv_autoencoder_model,
                                          &dcgan_model, &cgan_model};

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 && strcmp(argv[1], "-") != 0 ? argv[1] : NULL, *out_dir = argc > 2 ? argv[2] : NULL;
    GencDataset data = synthetic_dataset(2048, 3);
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
        const GencModel *m = models[k];
        if (only && strcmp(only, m->name) != 0) continue;
        GencError err;
        GencTrainer *t = genc_trainer_new(m, &data, 1, &err);
        if (!t) return fprintf(stderr, "%s: %s\n", m->name, err.msg), 1;
        double start = genc_now();
        int warm = 0;
        while (warm < 3 || genc_now() - start < 1.0) genc_trainer_iteration(t), warm++;
        double per_iteration = (genc_now() - start) / warm;
        int iterations = (int)(1.0 / per_iteration) + 1;
        double rates[5];
        for (int r = 0; r < 5; r++) {
            double t0 = genc_now();
            for (int i = 0; i < iterations; i++) genc_trainer_iteration(t);
            rates[r] = iterations * (double)m->batch / (genc_now() - t0);
        }
        double sorted[5];
        memcpy(sorted, rates, sizeof rates);
        qsort(sorted, 5, sizeof(double), by_value);
        printf("%s %.1f", m->name, sorted[2]);
        for (int r = 0; r < 5; r++) printf(" %.1f", rates[r]);
        printf("\n");
        fflush(stdout);
        if (out_dir) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s.safetensors", out_dir, m->name);
            if (genc_checkpoint_save(t, path, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        }
        genc_trainer_free(t);
    }
    genc_dataset_free(&data);
    return 0;
}
