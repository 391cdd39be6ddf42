/* bench_sampler.c — latency of one call of an exported sampler, best of 7
 * runs of 0.2 s. Built by bench/run for each sampler with -DSAMPLER=<name>. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define STR2(x) #x
#define STR(x) STR2(x)
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#include STR(SAMPLER.h)

#define PREFIX(x) CAT(SAMPLER_UPPER, x)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void)
{
    size_t nz = (size_t)PREFIX(_BATCH) * PREFIX(_LATENT), nout = (size_t)PREFIX(_BATCH) * PREFIX(_OUTPUT);
    float *z = malloc(sizeof(float) * nz), *out = malloc(sizeof(float) * nout);
    float *workspace = malloc(sizeof(float) * PREFIX(_WORKSPACE));
    int *labels = calloc(PREFIX(_BATCH), sizeof(int));
    for (size_t i = 0; i < nz; i++) z[i] = (float)((i * 7919) % 1000) / 500.0f - 1;
    double best = 1e9;
    for (int rep = 0; rep < 7; rep++) {
        int calls = 0;
        double t0 = now(), t;
        do {
#ifdef LABELLED
            CAT(SAMPLER, _sample_with)(workspace, z, labels, out);
#else
            CAT(SAMPLER, _sample_with)(workspace, z, out);
#endif
            calls++;
        } while ((t = now()) - t0 < 0.2);
        if ((t - t0) / calls < best) best = (t - t0) / calls;
    }
    printf("%.2f\n", best * 1e6); /* microseconds */
    free(z), free(out), free(workspace), free(labels);
    return 0;
}
