/* genc_runtime.h — the runtime that links with generated models: RNG,
 * optimizers, IDX data, safetensors checkpoints, PNG grids, progress and the
 * generic trainer. Functions that can fail return 0 on success and -1 with a
 * message (naming the file and the problem) in a GencError. */
#ifndef GENC_RUNTIME_H
#define GENC_RUNTIME_H

#include "genc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    char msg[1024];
} GencError;

int genc_fail(GencError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- rng.c: xoshiro256**, seeded through splitmix64 ----------------------- */

typedef struct {
    uint64_t s[4];
} GencRng;

void genc_rng_seed(GencRng *rng, uint64_t seed);
uint64_t genc_rng_next(GencRng *rng);
float genc_rng_uniform(GencRng *rng); /* [0, 1), 24 bits */
void genc_rng_fill_uniform(GencRng *rng, float *out, size_t n, float lo, float hi);
void genc_rng_fill_normal(GencRng *rng, float *out, size_t n); /* Box-Muller, pairs */

/* ---- optim.c: PyTorch's update rules ---------------------------------------- */

/* One update of n parameters; t counts this step's updates from 1 (Adam's
 * bias correction). m is the momentum / first moment, v the second moment;
 * either may be NULL where the rule does not use it. */
void genc_optimizer_update(const GencOptimizer *o, long t, float *param, const float *grad, float *m, float *v,
                           size_t n);
bool genc_optimizer_uses_m(const GencOptimizer *o);
bool genc_optimizer_uses_v(const GencOptimizer *o);

/* ---- idx.c: the IDX format of MNIST and Fashion-MNIST, gzipped or plain ------- */

typedef struct {
    int ndims;
    int dims[4];
    size_t count;            /* product of dims */
    unsigned char *data;
} GencIdx;

int genc_idx_read(const char *path, GencIdx *out, GencError *err);
void genc_idx_free(GencIdx *idx);

typedef struct {
    int n, channels, height, width;
    float *images;           /* n × channels × height × width, scaled to [0, 1] */
    float *labels;           /* n, or NULL when the labels file is absent */
} GencDataset;

/* Loads DIR/<split>-images-idx3-ubyte[.gz] and the matching labels;
 * split is "train" or "t10k"; limit > 0 keeps the first limit images. */
int genc_dataset_load(const char *dir, const char *split, int limit, GencDataset *out, GencError *err);
void genc_dataset_free(GencDataset *d);

/* ---- safetensors.c ------------------------------------------------------------ */

typedef struct {
    const char *name;
    int rank;
    int64_t shape[GENC_MAX_DIMS];
    const float *data;
} GencTensorOut;

/* Writes F32 tensors and string metadata (key, value pairs) to path.tmp, syncs
 * and renames it over path: a crash leaves the old file or the new one. */
int genc_safetensors_write(const char *path, const GencTensorOut *tensors, int n_tensors, const char *const *metadata,
                           int n_metadata, GencError *err);

typedef struct {
    char *name;
    int rank;
    int64_t shape[GENC_MAX_DIMS];
    size_t count;
    float *data;
} GencTensorIn;

typedef struct {
    int n_tensors;
    GencTensorIn *tensors;
    int n_metadata;
    char **keys, **values;
} GencSafetensors;

int genc_safetensors_read(const char *path, GencSafetensors *out, GencError *err);
const GencTensorIn *genc_safetensors_find(const GencSafetensors *st, const char *name);
const char *genc_safetensors_meta(const GencSafetensors *st, const char *key);
void genc_safetensors_free(GencSafetensors *st);

/* ---- image.c ------------------------------------------------------------------- */

/* A grid of n images (channels 1 or 3) with cols per row, values mapped from
 * [lo, hi] to 0..255; written atomically like checkpoints. */
int genc_png_write_grid(const char *path, const float *images, int n, int channels, int height, int width, int cols,
                        float lo, float hi, GencError *err);

/* ---- progress.c ------------------------------------------------------------------ */

typedef struct {
    long first, total;       /* iterations */
    double start, last_print;
    bool tty;
    FILE *out;
} GencProgress;

void genc_progress_start(GencProgress *p, FILE *out, long first, long total);
void genc_progress_update(GencProgress *p, long iteration, int epoch, int n_losses, const char *const *names,
                          const float *losses, int images_per_iteration, bool force);
void genc_progress_finish(GencProgress *p);
double genc_now(void);

/* ---- checkpoint.c and trainer.c ------------------------------------------------------- */

typedef struct GencTrainer GencTrainer;

/* data may be NULL for a trainer used only to sample; it is borrowed. */
GencTrainer *genc_trainer_new(const GencModel *model, const GencDataset *data, uint64_t seed, GencError *err);
void genc_trainer_free(GencTrainer *t);
/* One iteration: every step of the model once. Allocates nothing. */
void genc_trainer_iteration(GencTrainer *t);
const float *genc_trainer_losses(const GencTrainer *t); /* one per step, from the last iteration */
float *genc_trainer_params(GencTrainer *t);
long genc_trainer_iterations(const GencTrainer *t);
int genc_trainer_epoch(const GencTrainer *t);
/* Runs a forward function with the trainer's parameters and arena. */
void genc_trainer_forward(GencTrainer *t, const GencFunction *f, const float *const *inputs, float *const *outputs);
const GencFunction *genc_model_function(const GencModel *m, const char *name);

int genc_checkpoint_save(const GencTrainer *t, const char *path, GencError *err);
/* With weights_only, only parameters are read (for sampling). */
int genc_checkpoint_load(GencTrainer *t, const char *path, bool weights_only, GencError *err);

/* The command line of every <model>_train program. */
int genc_train_main(const GencModel *model, int argc, char **argv);

#endif
