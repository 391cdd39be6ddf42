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

/* ---- genc_rng.h: xoshiro256**, seeded through splitmix64 ------------------- */

#include "genc_rng.h"

/* ---- optim.c: PyTorch's update rules ---------------------------------------- */

/* One update of n parameters; t counts this step's updates from 1 (Adam's
 * bias correction). m is the momentum / first moment, v the second moment;
 * either may be NULL where the rule does not use it. */
void genc_optimizer_update(const GencOptimizer *o, long t, float *restrict param, const float *restrict grad,
                           float *restrict m, float *restrict v, size_t n);
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

/* ---- explore.c: the sample network on chosen latent points ---------------------- */

size_t genc_latent_size(const GencModel *m);      /* floats of z per sample; 0 without a sample network */
bool genc_sample_takes_labels(const GencModel *m); /* a conditional model: a class per sample */
/* n images from the sample network at latent points z (n × latent) and, for
 * a conditional model, labels (n class indices as floats). */
int genc_sample_images(GencTrainer *t, int n, const float *z, const float *labels, float *out, GencError *err);

typedef enum {
    GENC_EXPLORE_LERP, GENC_EXPLORE_SLERP, GENC_EXPLORE_WALK, GENC_EXPLORE_CLASSES, GENC_EXPLORE_TRAVERSE,
    GENC_EXPLORE_RECONSTRUCT
} GencExploreMode;

typedef struct {
    GencExploreMode mode;
    uint64_t seed;
    int rows, cols;            /* 0: the mode's default */
    int label;                 /* conditional models outside "classes": -1 gives row r class r mod classes */
    float step;                /* walk: z' = sqrt(1 - step²) z + step ε, which keeps z ~ N(0, 1) */
    float range;               /* traverse: each dimension from -range to +range */
    const GencDataset *data;   /* reconstruct: the test images */
} GencExplore;

typedef struct {
    int rows, cols;
    size_t latent;
    float *images;             /* rows × cols images, reading order */
    float *z, *labels;         /* the latent point and label of each image (NULL where unused) */
} GencGrid;

int genc_explore(GencTrainer *t, const GencExplore *o, GencGrid *grid, GencError *err);
void genc_grid_free(GencGrid *grid);
bool genc_explore_mode(const char *name, GencExploreMode *mode);

int genc_checkpoint_save(const GencTrainer *t, const char *path, GencError *err);
/* Reads a checkpoint and checks its format, version and model name; on
 * failure st needs no freeing. */
int genc_checkpoint_open(const char *path, const char *model_name, GencSafetensors *st, GencError *err);
/* The tensor name of st, checked to have the given shape. */
const GencTensorIn *genc_checkpoint_tensor(const GencSafetensors *st, const char *path, const char *name, int rank,
                                          const int *shape, GencError *err);
/* With weights_only, only parameters are read (for sampling). */
int genc_checkpoint_load(GencTrainer *t, const char *path, bool weights_only, GencError *err);

/* ---- verify.c: compiled code against reference values ------------------------------ */

typedef struct {
    double rtol, atol;         /* a tensor passes when max|got - want| <= atol + rtol * max|want| */
    FILE *report;              /* a row per tensor, or NULL */
    int checked, failed;
    double worst_rel;          /* the largest max|got - want| / max|want| seen where max|want| > atol */
} GencVerify;

/* Loads param/<name> and state/<name> of a reference file into t. */
int genc_verify_load(GencTrainer *t, const GencSafetensors *ref, const char *path, GencError *err);
/* Loads the file's parameters, then checks every output/, loss/, grad/ and
 * state_after/ tensor it has (the README gives the naming). */
int genc_verify(GencTrainer *t, const GencSafetensors *ref, const char *path, GencVerify *v, GencError *err);
/* Compares n computed values with the reference tensor name (full, or every
 * k-th value when the file says sampled:<name> = k); absent names pass. */
bool genc_verify_tensor(GencVerify *v, const GencSafetensors *ref, const char *name, const float *got, size_t n);
size_t genc_verify_stride(const GencSafetensors *ref, const char *name); /* 1, or k of a sampled tensor */
enum { GENC_VERIFY_NAME_LEN = 512 };
/* The reference tensor for input i of a step (NULL if absent), its name in
 * name (GENC_VERIFY_NAME_LEN chars): dropout masks go by their order among
 * the step's masks (input/<step>/dropout/<k>), the rest by genc name. */
const GencTensorIn *genc_verify_step_input(const GencSafetensors *ref, const GencStep *step, int i, char *name);

/* The command line of every <model>_train program. */
int genc_train_main(const GencModel *model, int argc, char **argv);

#endif
