/* ops.c — one table of ops: for each, the C its forward and backward emit.
 *
 * Every op lowers to a call of its kernel pair in runtime/genc_kernels.h.
 * Backward emitters pass NULL for gradients the step does not need, and the
 * set-or-add flag that emit_acc tracks (first contribution sets). */
#include "compiler.h"

#define P(...) fprintf(e->out, __VA_ARGS__)

static size_t numel(const Emitter *e, const Node *n)
{
    return dims_count(n->dims) * (n->batched ? (size_t)e->model->batch : 1);
}

static const char *activation_constant(Activation a)
{
    static const char *const names[] = {"GENC_ACT_IDENTITY", "GENC_ACT_RELU", "GENC_ACT_LEAKY_RELU",
                                        "GENC_ACT_SIGMOID", "GENC_ACT_TANH"};
    return names[a];
}

/* The op's output where its backward pass reads it (the fused activation's
 * slope), else NULL */
static const char *output_for_slope(Emitter *e, const Node *n)
{
    return bwd_reads_output(n) ? emit_value(e, n) : "NULL";
}

/* ---- dense -------------------------------------------------------------------- */

bool dense_is_input_major(const Emitter *e, const Node *n)
{
    return dims_count(n->weight->dims) <= e->dense_input_major;
}

static void dense_forward(Emitter *e, const Node *n)
{
    P("    %s(%s, %s, %s, %s, %s, %d, %d, %d, %s, %s);\n",
      dense_is_input_major(e, n) ? "genc_dense_forward_input_major" : "genc_dense_forward", emit_value(e, n),
      emit_value(e, n->in[0]), emit_param(e, n->weight), emit_param(e, n->bias), emit_scratch(e), e->model->batch,
      n->in[0]->dims.dim[0], n->dims.dim[0], activation_constant(n->act), emit_literal(e, n->alpha));
}

static void dense_backward(Emitter *e, const Node *n)
{
    const char *dweight = emit_param_grad(e, n->weight), *dbias = emit_param_grad(e, n->bias);
    int acc_param = emit_param_acc(e, n->weight);
    emit_param_acc(e, n->bias);
    const char *dinp = emit_grad(e, n->in[0]);
    int acc_inp = emit_acc(e, n->in[0]);
    P("    genc_dense_backward(%s, %s, %s, %s, %s, %s, %s, %s, %d, %d, %d, %d, %s, %s, %d, %d);\n", dinp, dweight,
      dbias, emit_grad(e, n), output_for_slope(e, n), dweight[0] != 'N' ? emit_value(e, n->in[0]) : "NULL",
      emit_param(e, n->weight), emit_scratch(e), e->model->threads, e->model->batch, n->in[0]->dims.dim[0],
      n->dims.dim[0], activation_constant(n->act), emit_literal(e, n->alpha), acc_inp, acc_param);
}

/* ---- convolutions: B, C, H, W, OC, OH, OW, K, S, PT, PL -------------------------------- */

static const char *window_args(Emitter *e, const Node *n)
{
    const Dims *in = &n->in[0]->dims, *out = &n->dims;
    const Window *w = &n->window;
    return xprintf("%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d", e->model->batch, in->dim[0], in->dim[1], in->dim[2],
                   out->dim[0], out->dim[1], out->dim[2], w->kernel, w->stride, w->pad_top, w->pad_left);
}

static const char *conv_kernel(const Node *n)
{
    const char *op = n->op == OP_CONV2D ? "conv2d" : "conv2d_transpose";
    return conv_is_direct(n) ? xprintf("%s_direct", op) : op;
}

static void conv_forward(Emitter *e, const Node *n)
{
    P("    genc_%s_forward(%s, %s, %s, %s, %s, %d, %s, %s, %s);\n", conv_kernel(n), emit_value(e, n),
      emit_value(e, n->in[0]), emit_param(e, n->weight), emit_param(e, n->bias), emit_scratch(e), e->model->threads,
      window_args(e, n), activation_constant(n->act),
      emit_literal(e, n->alpha));
}

static void conv_backward(Emitter *e, const Node *n)
{
    const char *dweight = emit_param_grad(e, n->weight), *dbias = emit_param_grad(e, n->bias);
    int acc_param = emit_param_acc(e, n->weight);
    emit_param_acc(e, n->bias);
    const char *dinp = emit_grad(e, n->in[0]);
    int acc_inp = emit_acc(e, n->in[0]);
    P("    genc_%s_backward(%s, %s, %s, %s, %s, %s, %s, %s, %d, %s, %s, %s, %d, %d);\n", conv_kernel(n), dinp, dweight,
      dbias, emit_grad(e, n), output_for_slope(e, n),
      dweight[0] != 'N' ? emit_value(e, n->in[0]) : "NULL", emit_param(e, n->weight), emit_scratch(e),
      e->model->threads, window_args(e, n), activation_constant(n->act), emit_literal(e, n->alpha), acc_inp, acc_param);
}

static const char *pool_args(Emitter *e, const Node *n)
{
    const Dims *in = &n->in[0]->dims, *out = &n->dims;
    const Window *w = &n->window;
    return xprintf("%d, %d, %d, %d, %d, %d, %d, %d, %d, %d", e->model->batch, in->dim[0], in->dim[1], in->dim[2],
                   out->dim[1], out->dim[2], w->kernel, w->stride, w->pad_top, w->pad_left);
}

static void maxpool_forward(Emitter *e, const Node *n)
{
    P("    genc_maxpool2d_forward(%s, %s, %s);\n", emit_value(e, n), emit_value(e, n->in[0]), pool_args(e, n));
}

static void maxpool_backward(Emitter *e, const Node *n)
{
    const char *dinp = emit_grad(e, n->in[0]);
    P("    genc_maxpool2d_backward(%s, %s, %s, %s, %d);\n", dinp, emit_grad(e, n), emit_value(e, n->in[0]),
      pool_args(e, n), emit_acc(e, n->in[0]));
}

/* ---- batchnorm: B, C, positions per channel ------------------------------------------ */

static const char *channel_args(Emitter *e, const Node *n)
{
    size_t positions = n->dims.rank == 3 ? (size_t)n->dims.dim[1] * n->dims.dim[2] : 1;
    return xprintf("%d, %d, %zu", e->model->batch, n->dims.dim[0], positions);
}

static void batchnorm_forward(Emitter *e, const Node *n)
{
    if (n->training)
        P("    genc_batchnorm_forward(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s);\n", emit_value(e, n),
          emit_aux(e, n), emit_value(e, n->in[0]), emit_param(e, n->weight), emit_param(e, n->bias),
          emit_param(e, n->running_mean), emit_param(e, n->running_var), channel_args(e, n),
          emit_literal(e, n->momentum), emit_literal(e, n->eps), activation_constant(n->act), emit_literal(e, n->alpha));
    else
        P("    genc_batchnorm_inference(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s);\n", emit_value(e, n),
          emit_value(e, n->in[0]), emit_param(e, n->weight), emit_param(e, n->bias), emit_param(e, n->running_mean),
          emit_param(e, n->running_var), channel_args(e, n), emit_literal(e, n->eps), activation_constant(n->act),
          emit_literal(e, n->alpha));
}

static void batchnorm_backward(Emitter *e, const Node *n)
{
    const char *dgamma = emit_param_grad(e, n->weight), *dbeta = emit_param_grad(e, n->bias);
    int acc_param = emit_param_acc(e, n->weight);
    emit_param_acc(e, n->bias);
    const char *dinp = emit_grad(e, n->in[0]);
    int acc_inp = emit_acc(e, n->in[0]);
    P("    genc_batchnorm_backward(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d, %d);\n", dinp, dgamma, dbeta,
      emit_grad(e, n), output_for_slope(e, n), emit_value(e, n->in[0]),
      emit_param(e, n->weight), emit_aux(e, n), channel_args(e, n), activation_constant(n->act),
      emit_literal(e, n->alpha), acc_inp, acc_param);
}

static void dropout_forward(Emitter *e, const Node *n)
{
    P("    genc_dropout_forward(%s, %s, %s, %zu, %s);\n", emit_value(e, n), emit_value(e, n->in[0]),
      emit_value(e, n->in[1]), numel(e, n), emit_literal(e, n->rate));
}

static void dropout_backward(Emitter *e, const Node *n)
{
    const char *dinp = emit_grad(e, n->in[0]);
    P("    genc_dropout_backward(%s, %s, %s, %zu, %s, %d);\n", dinp, emit_grad(e, n), emit_value(e, n->in[1]),
      numel(e, n), emit_literal(e, n->rate), emit_acc(e, n->in[0]));
}

/* ---- elementwise ------------------------------------------------------------ */

static void activation_forward(Emitter *e, const Node *n)
{
    P("    genc_activation_forward(%s, %s, %zu, %s, %s);\n", emit_value(e, n), emit_value(e, n->in[0]), numel(e, n),
      activation_constant(n->act), emit_literal(e, n->alpha));
}

static void activation_backward(Emitter *e, const Node *n)
{
    const char *dinp = emit_grad(e, n->in[0]);
    P("    genc_activation_backward(%s, %s, %s, %zu, %s, %s, %d);\n", dinp, emit_grad(e, n), emit_value(e, n),
      numel(e, n), activation_constant(n->act), emit_literal(e, n->alpha), emit_acc(e, n->in[0]));
}

static const char *binary_kernel(OpKind op)
{
    switch (op) {
    case OP_ADD: return "add";
    case OP_SUB: return "sub";
    case OP_MUL: return "mul";
    default: return "div";
    }
}

static void binary_forward(Emitter *e, const Node *n)
{
    P("    genc_%s_forward(%s, %s, %s, %zu);\n", binary_kernel(n->op), emit_value(e, n), emit_value(e, n->in[0]),
      emit_value(e, n->in[1]), numel(e, n));
}

static void binary_backward(Emitter *e, const Node *n)
{
    const char *da = emit_grad(e, n->in[0]), *db = emit_grad(e, n->in[1]);
    int acc_a = emit_acc(e, n->in[0]), acc_b = emit_acc(e, n->in[1]);
    if (n->op == OP_ADD || n->op == OP_SUB)
        P("    genc_%s_backward(%s, %s, %s, %zu, %d, %d);\n", binary_kernel(n->op), da, db, emit_grad(e, n),
          numel(e, n), acc_a, acc_b);
    else
        P("    genc_%s_backward(%s, %s, %s, %s, %s, %zu, %d, %d);\n", binary_kernel(n->op), da, db, emit_grad(e, n),
          emit_value(e, n->in[0]), emit_value(e, n->in[1]), numel(e, n), acc_a, acc_b);
}

static void affine_forward(Emitter *e, const Node *n)
{
    P("    genc_affine_forward(%s, %s, %zu, %s, %s);\n", emit_value(e, n), emit_value(e, n->in[0]), numel(e, n),
      emit_literal(e, n->scale), emit_literal(e, n->shift));
}

static void affine_backward(Emitter *e, const Node *n)
{
    const char *dinp = emit_grad(e, n->in[0]);
    P("    genc_affine_backward(%s, %s, %zu, %s, %d);\n", dinp, emit_grad(e, n), numel(e, n),
      emit_literal(e, n->scale), emit_acc(e, n->in[0]));
}

static void reciprocal_forward(Emitter *e, const Node *n)
{
    P("    genc_reciprocal_forward(%s, %s, %zu, %s);\n", emit_value(e, n), emit_value(e, n->in[0]), numel(e, n),
      emit_literal(e, n->scale));
}

static void reciprocal_backward(Emitter *e, const Node *n)
{
    const char *dinp = emit_grad(e, n->in[0]);
    P("    genc_reciprocal_backward(%s, %s, %s, %s, %zu, %d);\n", dinp, emit_grad(e, n), emit_value(e, n),
      emit_value(e, n->in[0]), numel(e, n), emit_acc(e, n->in[0]));
}

static void exp_forward(Emitter *e, const Node *n)
{
    P("    genc_exp_forward(%s, %s, %zu);\n", emit_value(e, n), emit_value(e, n->in[0]), numel(e, n));
}

static void exp_backward(Emitter *e, const Node *n)
{
    const char *dinp = emit_grad(e, n->in[0]);
    P("    genc_exp_backward(%s, %s, %s, %zu, %d);\n", dinp, emit_grad(e, n), emit_value(e, n), numel(e, n),
      emit_acc(e, n->in[0]));
}

static void log_forward(Emitter *e, const Node *n)
{
    P("    genc_log_forward(%s, %s, %zu);\n", emit_value(e, n), emit_value(e, n->in[0]), numel(e, n));
}

static void log_backward(Emitter *e, const Node *n)
{
    const char *dinp = emit_grad(e, n->in[0]);
    P("    genc_log_backward(%s, %s, %s, %zu, %d);\n", dinp, emit_grad(e, n), emit_value(e, n->in[0]), numel(e, n),
      emit_acc(e, n->in[0]));
}

/* ---- shape ops -------------------------------------------------------------- */

static void concat_forward(Emitter *e, const Node *n)
{
    P("    genc_concat_forward(%s, %s, %s, %d, %d, %d);\n", emit_value(e, n), emit_value(e, n->in[0]),
      emit_value(e, n->in[1]), e->model->batch, n->in[0]->dims.dim[0], n->in[1]->dims.dim[0]);
}

static void concat_backward(Emitter *e, const Node *n)
{
    const char *da = emit_grad(e, n->in[0]), *db = emit_grad(e, n->in[1]);
    int acc_a = emit_acc(e, n->in[0]), acc_b = emit_acc(e, n->in[1]);
    P("    genc_concat_backward(%s, %s, %s, %d, %d, %d, %d, %d);\n", da, db, emit_grad(e, n), e->model->batch,
      n->in[0]->dims.dim[0], n->in[1]->dims.dim[0], acc_a, acc_b);
}

static void onehot_forward(Emitter *e, const Node *n)
{
    P("    genc_onehot_forward(%s, %s, %d, %d);\n", emit_value(e, n), emit_value(e, n->in[0]), e->model->batch,
      n->classes);
}

/* ---- reductions and losses ------------------------------------------------------ */

static double sum_scale(const Emitter *e, const Node *n)
{
    return n->scale != 0 ? n->scale : 1.0 / (double)numel(e, n->in[0]); /* scale 0 marks a mean */
}

static void sum_forward(Emitter *e, const Node *n)
{
    P("    genc_sum_forward(%s, %s, %zu, %s);\n", emit_value(e, n), emit_value(e, n->in[0]), numel(e, n->in[0]),
      emit_literal(e, sum_scale(e, n)));
}

static void sum_backward(Emitter *e, const Node *n)
{
    const char *dinp = emit_grad(e, n->in[0]);
    P("    genc_sum_backward(%s, %s, %zu, %s, %d);\n", dinp, emit_grad(e, n), numel(e, n->in[0]),
      emit_literal(e, sum_scale(e, n)), emit_acc(e, n->in[0]));
}

static const char *loss_kernel(OpKind op)
{
    return op == OP_MSE ? "mse" : op == OP_BCE ? "bce" : "bce_logits";
}

static const char *target_value(Emitter *e, const Node *n)
{
    return n->has_const_target ? emit_literal(e, n->target) : emit_literal(e, 0);
}

static void loss_forward(Emitter *e, const Node *n)
{
    P("    genc_%s_forward(%s, %s, %s, %s, %zu);\n", loss_kernel(n->op), emit_value(e, n), emit_value(e, n->in[0]),
      n->has_const_target ? "NULL" : emit_value(e, n->in[1]), target_value(e, n), numel(e, n->in[0]));
}

static void loss_backward(Emitter *e, const Node *n)
{
    const char *dpred = emit_grad(e, n->in[0]);
    int acc_pred = emit_acc(e, n->in[0]);
    const char *dtarget = n->has_const_target ? "NULL" : emit_grad(e, n->in[1]);
    int acc_target = n->has_const_target ? 0 : emit_acc(e, n->in[1]);
    P("    genc_%s_backward(%s, %s, %s, %s, %s, %s, %zu, %d, %d);\n", loss_kernel(n->op), dpred, dtarget,
      emit_grad(e, n), emit_value(e, n->in[0]), n->has_const_target ? "NULL" : emit_value(e, n->in[1]),
      target_value(e, n), numel(e, n->in[0]), acc_pred, acc_target);
}

static void kl_forward(Emitter *e, const Node *n)
{
    P("    genc_kl_normal_forward(%s, %s, %s, %d, %d);\n", emit_value(e, n), emit_value(e, n->in[0]),
      emit_value(e, n->in[1]), e->model->batch, n->in[0]->dims.dim[0]);
}

static void kl_backward(Emitter *e, const Node *n)
{
    const char *dmean = emit_grad(e, n->in[0]), *dlogvar = emit_grad(e, n->in[1]);
    int acc_mean = emit_acc(e, n->in[0]), acc_logvar = emit_acc(e, n->in[1]);
    P("    genc_kl_normal_backward(%s, %s, %s, %s, %s, %d, %d, %d, %d);\n", dmean, dlogvar, emit_grad(e, n),
      emit_value(e, n->in[0]), emit_value(e, n->in[1]), e->model->batch, n->in[0]->dims.dim[0], acc_mean,
      acc_logvar);
}

const OpInfo op_info[OP_COUNT] = {
    [OP_INPUT] = {"input", NULL, NULL},
    [OP_DENSE] = {"dense", dense_forward, dense_backward},
    [OP_ACTIVATION] = {"activation", activation_forward, activation_backward},
    [OP_ADD] = {"add", binary_forward, binary_backward},
    [OP_SUB] = {"sub", binary_forward, binary_backward},
    [OP_MUL] = {"mul", binary_forward, binary_backward},
    [OP_DIV] = {"div", binary_forward, binary_backward},
    [OP_AFFINE] = {"affine", affine_forward, affine_backward},
    [OP_RECIPROCAL] = {"reciprocal", reciprocal_forward, reciprocal_backward},
    [OP_EXP] = {"exp", exp_forward, exp_backward},
    [OP_LOG] = {"log", log_forward, log_backward},
    [OP_RESHAPE] = {"reshape", NULL, NULL}, /* a view: its value and gradient alias its input's */
    [OP_CONCAT] = {"concat", concat_forward, concat_backward},
    [OP_ONEHOT] = {"onehot", onehot_forward, NULL}, /* labels take no gradient */
    [OP_SUM] = {"sum", sum_forward, sum_backward},
    [OP_MSE] = {"mse", loss_forward, loss_backward},
    [OP_BCE] = {"bce", loss_forward, loss_backward},
    [OP_BCE_LOGITS] = {"bce_logits", loss_forward, loss_backward},
    [OP_KL_NORMAL] = {"kl_normal", kl_forward, kl_backward},
    [OP_CONV2D] = {"conv2d", conv_forward, conv_backward},
    [OP_CONV2D_TRANSPOSE] = {"conv2d_transpose", conv_forward, conv_backward},
    [OP_MAXPOOL2D] = {"maxpool2d", maxpool_forward, maxpool_backward},
    [OP_BATCHNORM] = {"batchnorm", batchnorm_forward, batchnorm_backward},
    [OP_DROPOUT] = {"dropout", dropout_forward, dropout_backward},
};
_Static_assert(OP_COUNT == 24, "every op needs an entry in op_info");

/* Floating-point operations of the matrix products (a multiply-add is 2), the
 * work that dominates every model here; elementwise work is not counted. */
double instruction_flops(const Function *f, const Instruction *ins, int batch)
{
    const Node *n = ins->node;
    double per_product;
    if (n->op == OP_DENSE) {
        per_product = 2.0 * batch * (double)dims_count(n->in[0]->dims) * n->dims.dim[0];
    } else if (n->op == OP_CONV2D || n->op == OP_CONV2D_TRANSPOSE) {
        /* the image side of the window geometry: the output of a conv, the input of a transposed conv */
        const Node *grid = n->op == OP_CONV2D ? n : n->in[0], *other = n->op == OP_CONV2D ? n->in[0] : n;
        int k = n->window.kernel;
        per_product = 2.0 * batch * grid->dims.dim[0] * grid->dims.dim[1] * grid->dims.dim[2] * other->dims.dim[0] * k * k;
    } else {
        return 0;
    }
    if (ins->kind == INS_FORWARD) return per_product;
    if (ins->kind != INS_BACKWARD) return 0;
    int products = f->param_grad[n->weight->index] + f->needs_grad[n->in[0]->id];
    return per_product * products;
}
