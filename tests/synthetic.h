/* synthetic.h — a small random data set for tests that need data but not
 * Fashion-MNIST: blobs of random brightness with labels 0..9. */
#ifndef GENC_TEST_SYNTHETIC_H
#define GENC_TEST_SYNTHETIC_H

#include <stdlib.h>

#include "genc_runtime.h"

static GencDataset synthetic_dataset(int n, uint64_t seed)
{
    GencDataset d = {.n = n, .channels = 1, .height = 28, .width = 28};
    d.images = malloc(sizeof(float) * 784 * (size_t)n);
    d.labels = malloc(sizeof(float) * (size_t)n);
    GencRng rng;
    genc_rng_seed(&rng, seed);
    for (size_t i = 0; i < 784 * (size_t)n; i++) d.images[i] = genc_rng_uniform(&rng);
    for (int i = 0; i < n; i++) d.labels[i] = (float)(genc_rng_next(&rng) % 10);
    return d;
}

#endif
