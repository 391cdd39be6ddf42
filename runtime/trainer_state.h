/* trainer_state.h — the trainer's state, shared by trainer.c and checkpoint.c
 * (everything a checkpoint must hold to resume exactly). Private to the runtime. */
#ifndef GENC_TRAINER_STATE_H
#define GENC_TRAINER_STATE_H

#include "genc_runtime.h"

struct GencTrainer {
    const GencModel *model;
    const GencDataset *data;   /* borrowed; NULL when only sampling */
    uint64_t seed;
    float *params, *grads, *arena;
    float *state;              /* running statistics: saved and loaded, never trained */
    float ***step_inputs;      /* [step][input] */
    float **opt_m, **opt_v;    /* [step]: full parameter-block size, or NULL */
    long *opt_t;               /* [step]: updates so far */
    float *losses;             /* [step] */
    GencRng noise;             /* noise and dropout draws */
    long iteration;
    int epoch, position;       /* the next batch is order[position ...] of this epoch */
    uint32_t *order;           /* this epoch's shuffle of the data set */
};

/* The shuffle of an epoch is a function of (seed, epoch) alone, so a resumed
 * run rebuilds it from two numbers. */
void genc_trainer_shuffle(GencTrainer *t);

/* Images in [0, 1] to the model's range (image_lo, image_hi). */
void genc_scale_images(const GencModel *m, float *dst, const float *src, size_t n);

#endif
