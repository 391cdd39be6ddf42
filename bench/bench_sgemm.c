/* bench_sgemm.c — the machine's cblas_sgemm peak: 2048³ products, best of 5,
 * with the thread count given (OpenBLAS). Prints GFLOP/s and the kernel
 * OpenBLAS chose; exits 1 if the product is wrong, since a peak from a kernel
 * that miscomputes on this processor is no peak. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "genc_runtime.h"

/* The largest error of 256 sampled entries against double sums, relative to
 * the sum of |terms| (a float sum of n terms errs by about n·eps of it). */
static double sampled_error(int n, const float *a, const float *b, const float *c)
{
    double worst = 0;
    for (int s = 0; s < 256; s++) {
        int i = (s * 977) % n, j = (s * 1543 + 11) % n;
        double sum = 0, magnitude = 0;
        for (int k = 0; k < n; k++) {
            double term = (double)a[(size_t)i * n + k] * b[(size_t)k * n + j];
            sum += term, magnitude += fabs(term);
        }
        double error = fabs(sum - c[(size_t)i * n + j]) / (magnitude > 0 ? magnitude : 1);
        if (!(error <= worst)) worst = error; /* NaN counts as the worst */
    }
    return worst;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, n = 2048;
    openblas_set_num_threads(threads);
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = (float)(i % 7) / 7 - 0.4f, b[i] = (float)(i % 5) / 5 - 0.3f;
    double best = 0;
    for (int r = 0; r < 6; r++) {
        double t0 = genc_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double gflops = 2.0 * n * n * n / (genc_now() - t0) * 1e-9;
        if (r > 0 && gflops > best) best = gflops; /* the first run warms up */
    }
    double error = sampled_error(n, a, b, c);
    if (!(error < 1e-4)) {
        fprintf(stderr, "bench_sgemm: OpenBLAS's %s kernel computed a wrong product (relative error %g)\n",
                openblas_get_corename(), error);
        return 1;
    }
    printf("%.1f %s\n", best, openblas_get_corename());
    free(a), free(b), free(c);
    return 0;
}
