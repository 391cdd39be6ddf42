/* bench_sgemm.c — the machine's cblas_sgemm peak: 2048³ products, best of 5,
 * with the thread count given (OpenBLAS). Prints GFLOP/s. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "genc_runtime.h"

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, n = 2048;
    openblas_set_num_threads(threads);
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = (float)(i % 7) / 7, b[i] = (float)(i % 5) / 5;
    double best = 0;
    for (int r = 0; r < 6; r++) {
        double t0 = genc_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double gflops = 2.0 * n * n * n / (genc_now() - t0) * 1e-9;
        if (r > 0 && gflops > best) best = gflops; /* the first run warms up */
    }
    printf("%.1f\n", best);
    free(a), free(b), free(c);
    return 0;
}
