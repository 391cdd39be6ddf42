/* compiler.h — the compiler's one internal header, a section per stage.
 *
 * The pipeline (pipeline.c calls it a stage a line):
 *   host.c   run the spec in a Lua sandbox        (dsl.c builds the graph as it runs)
 *   check.c  model-level validation
 *   fuse.c   fold activations into dense layers
 *   grad.c   per function: subgraph, gradients, instruction schedule, buffers
 *   plan.c   buffer liveness -> offsets in one arena
 *   emit.c   C99 source and header                (ops.c: each op's emitters)
 */
#ifndef GENC_COMPILER_H
#define GENC_COMPILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* ---- util.c: the compiler's memory and user errors ---------------------- */

/* Everything the compiler allocates lives until exit in one arena, so nothing
 * leaks when Lua unwinds through our C with longjmp. */
void *xalloc(size_t size); /* zeroed */
char *xstrdup(const char *s);
bool is_identifier(const char *s); /* a C (and Lua) identifier */
char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void free_all(void);

typedef struct {
    const char *file;
    int line;
} SrcLoc;

_Noreturn void error_at(SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define unreachable() internal_error(__FILE__, __LINE__)
_Noreturn void internal_error(const char *file, int line);

/* A growable array of pointers, from the arena. */
typedef struct {
    void **items;
    int len, cap;
} Vec;
void vec_push(Vec *v, void *item);

/* ---- the graph (built by dsl.c) ------------------------------------------ */

enum { MAX_DIMS = 4 };

/* Per-sample dimensions; batched tensors carry the batch in front of these. */
typedef struct {
    int rank;
    int dim[MAX_DIMS];
} Dims;

size_t dims_count(Dims d);
char *dims_str(Dims d, bool batched); /* "[B,1,28,28]" */

#define OP_LIST(X)                                                                  \
    X(OP_INPUT, "input") X(OP_DENSE, "dense") X(OP_ACTIVATION, "activation")       \
    X(OP_ADD, "add") X(OP_SUB, "sub") X(OP_MUL, "mul") X(OP_DIV, "div")              \
    X(OP_AFFINE, "affine") X(OP_RECIPROCAL, "reciprocal") X(OP_EXP, "exp")           \
    X(OP_LOG, "log") X(OP_RESHAPE, "reshape") X(OP_CONCAT, "concat")                 \
    X(OP_ONEHOT, "onehot") X(OP_SUM, "sum") X(OP_MSE, "mse") X(OP_BCE, "bce")         \
    X(OP_BCE_LOGITS, "bce_logits") X(OP_KL_NORMAL, "kl_normal") X(OP_CONV2D, "conv2d")      \
    X(OP_CONV2D_TRANSPOSE, "conv2d_transpose") X(OP_MAXPOOL2D, "maxpool2d")                  \
    X(OP_BATCHNORM, "batchnorm") X(OP_DROPOUT, "dropout")

typedef enum {
#define X(op, name) op,
    OP_LIST(X)
#undef X
    OP_COUNT
} OpKind;

typedef enum { ACT_IDENTITY, ACT_RELU, ACT_LEAKY_RELU, ACT_SIGMOID, ACT_TANH } Activation;

typedef enum { INPUT_IMAGES, INPUT_LABELS, INPUT_NORMAL, INPUT_UNIFORM, INPUT_CALLER } InputKind;

typedef struct Net Net;

typedef enum { INIT_ZEROS, INIT_ONES, INIT_GLOROT_UNIFORM, INIT_NORMAL } InitKind;

/* A trained parameter, or (is_state) a statistic such as a batchnorm's
 * running mean, kept in a separate state block that no optimizer touches. */
typedef struct {
    const char *name;   /* "generator.dense1.weight" */
    Dims dims;
    size_t offset;      /* in floats, in the parameter (or state) block */
    int fan_in, fan_out;
    InitKind init;
    float init_scale;   /* the stddev of INIT_NORMAL */
    bool is_state;
    Net *net;
    int index;          /* in Model.params (or Model.state) */
} Param;

/* The geometry of a convolution or pooling window on one axis pair. */
typedef struct {
    int kernel, stride, pad_top, pad_left;
} Window;

typedef struct Node Node;
struct Node {
    int id;             /* creation order, which is a topological order */
    OpKind op;
    Dims dims;
    bool batched;       /* false only for the scalars that losses produce */
    SrcLoc loc;
    const char *what;   /* for comments: "discriminator.dense1" */
    Node *in[2];
    int n_in;
    Param *weight, *bias;        /* dense, convolutions, batchnorm (gamma, beta); bias may be NULL */
    Param *running_mean, *running_var; /* OP_BATCHNORM */
    Window window;               /* convolutions, OP_MAXPOOL2D */
    bool training;               /* OP_BATCHNORM: batch statistics (a step) or running ones (inference) */
    float momentum, eps;         /* OP_BATCHNORM */
    float rate;                  /* OP_DROPOUT: in[1] is its uniform mask input */
    Activation act;              /* dense and convolutions (fused), OP_ACTIVATION */
    float alpha;                 /* leaky ReLU slope */
    float scale, shift;          /* OP_AFFINE, OP_SUM (scale), OP_RECIPROCAL (scale) */
    bool has_const_target;       /* losses against a number */
    float target;
    int classes;                 /* OP_ONEHOT */
    InputKind input_kind;        /* OP_INPUT */
    const char *input_name;
    float lo, hi;                /* uniform noise range */
    Node *fused_into;            /* set by fuse.c on an activation folded into a dense */
};

/* A net is a layer list bound to its input shape; applying it replays the layers. */
typedef enum {
    LAYER_DENSE, LAYER_CONV2D, LAYER_CONV2D_TRANSPOSE, LAYER_MAXPOOL2D, LAYER_BATCHNORM, LAYER_DROPOUT,
    LAYER_ACTIVATION, LAYER_RESHAPE, LAYER_HEADS
} LayerKind;

typedef struct Layer Layer;
struct Layer {
    LayerKind kind;
    SrcLoc loc;
    const char *what;
    int units;                 /* dense units, conv filters */
    int kernel, stride;        /* convolutions, pooling */
    bool same;                 /* padding "same" (else "valid") */
    bool has_bias;
    InitKind init;
    float init_scale;
    float momentum, eps, rate; /* batchnorm, dropout */
    Activation act;
    float alpha;
    Dims to;                   /* reshape target (rank 0: flatten) */
    Param *weight, *bias;      /* bound */
    Param *running_mean, *running_var;
    Window window;             /* bound */
    Dims in_dims, out_dims;    /* bound */
    int n_heads;               /* heads: name and a layer list each */
    const char **head_names;
    Layer ***head_layers;
    int *head_len;
};

struct Net {
    const char *name;
    SrcLoc loc;
    Dims input;
    Layer **layers;
    int n_layers;
    Vec params;                /* Param*, in layer order */
    /* The traced forward pass, made by check.c: an input and the outputs. */
    Node *trace_input;
    int n_outputs;
    Node **trace_outputs;
    const char **output_names;
};

typedef enum { OPT_SGD, OPT_ADAM, OPT_RMSPROP } OptimizerKind;

typedef struct {
    OptimizerKind kind;
    float lr, momentum, beta1, beta2, eps, alpha;
} Optimizer;

typedef struct {
    const char *name;
    Node *loss;
    Vec update;                /* Net* */
    Optimizer optimizer;
    SrcLoc loc;
} Step;

typedef struct {
    const char *name;
    const char *file;
    SrcLoc loc;
    int batch;
    int threads;               /* threads a convolution's or dense layer's scratch has room for */
    Vec nodes;                 /* Node*, all of them, by id */
    Vec nets;                  /* Net* */
    Vec params;                /* Param*, in block order */
    size_t n_params;           /* floats */
    Vec state;                 /* Param* with is_state, in state-block order */
    size_t n_state;            /* floats */
    float image_lo, image_hi;  /* the range data.images is scaled to */
    Vec steps;                 /* Step* */
    Net *sample;               /* sample = net: its input is drawn from N(0, 1) */
    Node *sample_expr;         /* or sample = an expression of noise and data.labels */
    Node *reconstruct;
    Dims image_dims;
    int classes;               /* of data.labels: the largest onehot, 0 when none (check.c) */
} Model;

/* ---- host.c: the Lua sandbox -------------------------------------------- */

typedef struct {
    size_t memory_limit;       /* bytes Lua may hold */
    long instruction_limit;    /* VM instructions the spec may run */
} SandboxLimits;

/* Runs SPEC and returns the model it describes; on a Lua error prints it and exits 1. */
Model *run_spec(const char *path, SandboxLimits limits);

/* ---- dsl.c: the DSL's functions, registered into the sandbox -------------- */

typedef struct lua_State lua_State;
void dsl_open(lua_State *L, Model *model);
Node *new_node(Model *m, OpKind op, SrcLoc loc);
/* Replays a net's layers on x (training: batch statistics, dropout on);
 * returns the number of outputs (heads) written. */
int apply_net(Model *m, Net *net, Node *x, Node **outputs, bool training);

/* Output size of a window op along one axis, and the padding before it.
 * Returns 0 when the input is too small. "same" follows Keras: for a conv or
 * pool, out = ceil(in / stride); for a transposed conv, out = in · stride;
 * the total padding is split with the extra unit after (bottom/right). */
int window_output(int in, int kernel, int stride, bool same, bool transpose, int *pad_before);

/* ---- check.c: model-level validation and net traces ---------------------- */

void check_model(Model *m);

/* ---- fuse.c ---------------------------------------------------------------- */

void fuse_model(Model *m);
Node *resolve(Node *n); /* follows fused_into */

/* ---- grad.c: functions, their schedules and buffers ------------------------- */

typedef enum { FN_STEP, FN_FORWARD } FunctionKind;
typedef enum { INS_FORWARD, INS_SEED, INS_BACKWARD, INS_OUTPUT } InsKind;

enum { MAX_ACCESS = 6 };

typedef struct {
    InsKind kind;
    Node *node;
    int reads[MAX_ACCESS], n_reads;    /* buffer ids */
    int writes[MAX_ACCESS], n_writes;
    int scratch;                       /* a buffer live only here (im2col, partials), or -1 */
} Instruction;

typedef enum { BUF_ARENA, BUF_INPUT, BUF_OUTPUT } BufferHome;
/* What a buffer holds for its node: its value (t3), gradient (dt3), the
 * statistics a batchnorm keeps for backward (stats3), or scratch (scratch7): im2col
 * buffers, padded planes, partial gradients. */
typedef enum { ROLE_VALUE, ROLE_GRAD, ROLE_STATS, ROLE_SCRATCH } BufferRole;

typedef struct {
    int id;
    size_t size;               /* floats */
    BufferHome home;
    int slot;                  /* argument index for inputs and outputs */
    BufferRole role;
    Node *node;
    size_t offset;             /* set by plan.c for arena buffers */
    int first, last;           /* set by plan.c: instruction range it is live in */
} Buffer;

typedef struct {
    FunctionKind kind;
    const char *name;          /* "step_d", "generator_forward", "reconstruct" */
    Step *step;
    Net *net;
    Vec nodes;                 /* Node*, topological */
    Vec inputs;                /* Node* (OP_INPUT), argument order */
    Vec outputs;               /* Node*, argument order */
    const char **output_names;
    bool samples, reconstructs;/* the model's sample / reconstruct function */
    Instruction *ins;
    int n_ins;
    Buffer *buffers;
    int n_buffers;
    int *value_buf;            /* by node id: buffer of the value, -1 if none */
    int *grad_buf;             /* by node id: buffer of the gradient, -1 if none */
    int *aux_buf;              /* by node id: kept from forward to backward (batch statistics), -1 if none */
    bool *needs_grad;          /* by node id */
    bool *param_grad;          /* by param index: gradient written by this step */
    size_t arena_size;         /* floats, set by plan.c */
    size_t arena_no_reuse;     /* floats */
} Function;

typedef struct {
    Model *model;
    Vec functions;             /* Function*: steps, then forwards */
    size_t arena_size;         /* the max over functions */
    size_t arena_no_reuse;
} Program;

Program *build_program(Model *m);
bool bwd_reads_output(const Node *n);
bool bwd_reads_input(const Node *n, int i);
bool conv_is_direct(const Node *n); /* lowered as shifted planes, not im2col */

/* ---- plan.c ------------------------------------------------------------------ */

enum { ARENA_ALIGN = 16 }; /* floats: 64 bytes */
void plan_program(Program *p);
/* Replays liveness from the instructions alone and reports overlapping live
 * buffers; returns the number of problems found (0 is a good plan). */
int verify_plan(const Function *f, FILE *report);

/* ---- ops.c and emit.c ----------------------------------------------------- */

typedef struct {
    FILE *out;
    const Function *fn;
    const Model *model;
    const char *real;          /* "float" or "double" */
    const Program *program;
    bool descriptor;           /* float code with the runtime's descriptor */
    const char *prefix;        /* of function and offset names: the model's name, or an export's */
    bool private_functions;    /* static functions (an exported sampler) */
    size_t dense_input_major;  /* dense weights of up to this many floats stored (C,OC); 0: none */
    const Instruction *ins;    /* the instruction being emitted */
    bool *grad_written;        /* by buffer id, while emitting backward */
    bool *param_grad_written;  /* by param index */
} Emitter;

typedef struct {
    const char *name;
    void (*forward)(Emitter *e, const Node *n);
    void (*backward)(Emitter *e, const Node *n);
} OpInfo;
extern const OpInfo op_info[OP_COUNT];

/* Whether a dense node's weight is stored input-major, (C,OC) (ops.c). */
bool dense_is_input_major(const Emitter *e, const Node *n);

/* FLOPs of an instruction's matrix products at this batch (ops.c). */
double instruction_flops(const Function *f, const Instruction *ins, int batch);

const char *emit_value(Emitter *e, const Node *n); /* C expression of a node's value */
const char *emit_grad(Emitter *e, const Node *n);  /* of its gradient, "NULL" if unused */
const char *emit_literal(Emitter *e, double x);
int emit_acc(Emitter *e, const Node *n);           /* 1 if its gradient was written already */
const char *emit_param(Emitter *e, const Param *p);  /* "NULL" for no parameter; state parameters too */
const char *emit_scratch(Emitter *e);                 /* the current instruction's scratch buffer */
const char *emit_aux(Emitter *e, const Node *n);
const char *emit_param_grad(Emitter *e, const Param *p);
int emit_param_acc(Emitter *e, const Param *p);

typedef struct {
    const char *real;          /* "float" (default) or "double" for gradient tests */
} EmitOptions;

/* Writes DIR/<model>.h and DIR/<model>.c. */
void emit_program(const Program *p, const char *dir, EmitOptions opts);
/* Shared with export.c: */
void emit_function(Emitter *e, const Function *f);
const char *param_macro(const Emitter *e, const Param *p);
const char *upper_name(const char *s); /* "generator.dense1" -> "GENERATOR_DENSE1" */
void make_dirs(const char *dir);
/* Writes path through path.tmp and a rename, so that a failure leaves the old file. */
void write_file(Emitter *e, const char *path, void (*body)(Emitter *e));

/* ---- export.c: a self-contained sampler with trained weights ----------------------- */

typedef struct {
    const char *weights;       /* a checkpoint of the model */
    const char *dir, *name;    /* writes DIR/NAME.h and DIR/NAME.c */
    bool blas;                 /* cblas for the large products, as the trainer does */
} ExportOptions;

void export_sampler(const Program *p, ExportOptions o);

/* ---- pipeline.c: the stages in order ------------------------------------------ */

typedef enum { DUMP_NONE, DUMP_GRAPH, DUMP_SCHEDULE, DUMP_PLAN } DumpStage;

typedef struct {
    int batch;             /* 0: the spec's */
    int threads;           /* 0: DEFAULT_THREADS */
    const char *real;      /* "float" or "double" */
    DumpStage dump;
    bool stats;
} CompileOptions;

/* Generated convolutions keep a col buffer per thread for this many threads,
 * and dense layers' backward passes an input-gradient partial; more threads
 * than that share a convolution's samples, or a dense layer, among this many. */
enum { DEFAULT_THREADS = 8 };

extern const SandboxLimits default_limits;
/* Runs every stage up to emission; user errors exit with a message. */
Program *compile_spec(const char *spec, CompileOptions options);
void print_plan_stats(const Program *p, FILE *out);

#endif
