/* genc.h — the descriptor that generated models export and the runtime reads.
 *
 * A compiled model is plain data plus function pointers: where each parameter
 * sits in the one parameter block, what every training step needs, and the
 * forward functions used for sampling. One generic trainer drives any model
 * through this table. */
#ifndef GENC_H
#define GENC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { GENC_MAX_DIMS = 4 };

typedef enum { GENC_INIT_ZEROS, GENC_INIT_ONES, GENC_INIT_GLOROT_UNIFORM, GENC_INIT_NORMAL } GencInit;

typedef struct {
    const char *name;          /* "generator.dense1.weight" */
    int rank;
    int shape[GENC_MAX_DIMS];
    size_t offset, size;       /* in floats, within the parameter (or state) block */
    GencInit init;
    float init_scale;          /* the stddev of GENC_INIT_NORMAL */
    int fan_in, fan_out;       /* for Glorot */
} GencParam;

/* Where the trainer gets an input: the data set, a fresh random draw, or
 * (for a network's forward pass) the caller. */
typedef enum {
    GENC_INPUT_IMAGES, GENC_INPUT_LABELS, GENC_INPUT_NORMAL, GENC_INPUT_UNIFORM, GENC_INPUT_CALLER
} GencInputKind;

typedef struct {
    const char *name;
    GencInputKind kind;
    size_t size;               /* floats for the whole batch */
    float lo, hi;              /* range of a uniform draw */
} GencInput;

typedef enum { GENC_SGD, GENC_ADAM, GENC_RMSPROP } GencOptimizerKind;

typedef struct {
    GencOptimizerKind kind;
    float lr, momentum;        /* sgd */
    float beta1, beta2, eps;   /* adam (eps also rmsprop) */
    float alpha;               /* rmsprop */
} GencOptimizer;

/* A training step: forward and backward of one loss. It writes the loss and
 * the gradients of the parameters it updates (and only those), and moves the
 * running statistics in state (batchnorm) as it normalises with the batch's. */
typedef void (*GencStepFn)(const float *params, float *state, float *grads, float *arena,
                           const float *const *inputs, float *loss);

typedef struct {
    const char *name;
    GencStepFn run;
    int n_inputs;
    const GencInput *inputs;
    int n_params;
    const int *params;         /* indices into GencModel.params it updates */
    GencOptimizer optimizer;
} GencStep;

/* An inference function: a network's forward pass, or the model's
 * reconstruction expression. Inputs and outputs are caller memory. */
typedef void (*GencForwardFn)(const float *params, const float *state, float *arena,
                              const float *const *inputs, float *const *outputs);

typedef struct {
    const char *name;
    GencForwardFn run;
    int n_inputs;
    const GencInput *inputs;
    int n_outputs;
    const size_t *output_sizes;/* floats for the whole batch */
    const char *const *output_names;
} GencFunction;

typedef struct {
    const char *name;
    int batch;
    int image_channels, image_height, image_width;
    float image_lo, image_hi;  /* the range data images are scaled to */
    size_t n_params;           /* floats in the parameter block */
    size_t n_state;            /* floats of running statistics (not trained) */
    int n_state_tensors;
    const GencParam *state;
    size_t arena_size;         /* floats in the scratch arena */
    int n_param_tensors;
    const GencParam *params;
    int n_steps;
    const GencStep *steps;
    const GencFunction *sample;      /* NULL when the model does not sample; its input is N(0,1) */
    int classes;                     /* classes of data.labels (onehot's size), 0 when unused */
    const GencFunction *reconstruct; /* NULL when it does not reconstruct */
    int n_functions;
    const GencFunction *functions;   /* every network's forward pass */
} GencModel;

#ifdef __cplusplus
}
#endif
#endif
