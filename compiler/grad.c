/* grad.c — reverse-mode autodiff: each function's subgraph, which nodes need
 * a gradient, its buffers, and the instruction schedule that the planner and
 * the emitter both walk.
 *
 * A training step runs its loss's subgraph forward in topological order, seeds
 * d(loss) = 1, then runs each op's backward rule in reverse order. A node needs
 * a gradient only when it depends on a parameter that the step updates, so the
 * discriminator step of a GAN computes nothing for the generator's parameters,
 * and the generator step computes the discriminator's input-gradients but not
 * its parameter gradients. */
#include "compiler.h"

#include <string.h>

static bool has_gemm(const Node *n)
{
    return n->op == OP_DENSE || n->op == OP_CONV2D || n->op == OP_CONV2D_TRANSPOSE;
}

bool bwd_reads_output(const Node *n)
{
    switch (n->op) {
    case OP_DENSE: case OP_CONV2D: case OP_CONV2D_TRANSPOSE: case OP_BATCHNORM: return n->act != ACT_IDENTITY;
    case OP_ACTIVATION: case OP_EXP: case OP_RECIPROCAL: return true;
    default: return false;
    }
}

bool bwd_reads_input(const Node *n, int i)
{
    switch (n->op) {
    case OP_DENSE: case OP_CONV2D: case OP_CONV2D_TRANSPOSE: return i == 0; /* for the weight gradient */
    case OP_MUL: case OP_DIV: case OP_MSE: case OP_BCE: case OP_BCE_LOGITS: case OP_KL_NORMAL: return true;
    case OP_LOG: case OP_RECIPROCAL: case OP_MAXPOOL2D: case OP_BATCHNORM: return i == 0;
    case OP_DROPOUT: return i == 1; /* the mask */
    default: return false;
    }
}

static void mark_subgraph(Node *n, bool *in_graph)
{
    if (in_graph[n->id]) return;
    in_graph[n->id] = true;
    for (int i = 0; i < n->n_in; i++) mark_subgraph(n->in[i], in_graph);
}

static Function *new_function(Model *m, FunctionKind kind, const char *name, Node **roots, int n_roots)
{
    Function *f = xalloc(sizeof *f);
    f->kind = kind;
    f->name = name;
    int n_nodes = m->nodes.len;
    bool *in_graph = xalloc((size_t)n_nodes);
    for (int i = 0; i < n_roots; i++) mark_subgraph(roots[i], in_graph);
    for (int i = 0; i < n_nodes; i++) {
        Node *n = m->nodes.items[i];
        if (!in_graph[i]) continue;
        vec_push(&f->nodes, n);
        if (n->op == OP_INPUT) vec_push(&f->inputs, n);
    }
    for (int i = 0; i < n_roots; i++) vec_push(&f->outputs, roots[i]);
    f->value_buf = xalloc(sizeof(int) * (size_t)n_nodes);
    f->grad_buf = xalloc(sizeof(int) * (size_t)n_nodes);
    f->aux_buf = xalloc(sizeof(int) * (size_t)n_nodes);
    f->needs_grad = xalloc((size_t)n_nodes);
    f->param_grad = xalloc((size_t)(m->params.len ? m->params.len : 1));
    for (int i = 0; i < n_nodes; i++) f->value_buf[i] = f->grad_buf[i] = f->aux_buf[i] = -1;
    return f;
}

static int new_buffer(Function *f, int *cap, size_t size, BufferHome home, int slot, BufferRole role, Node *n)
{
    if (f->n_buffers == *cap) {
        *cap = *cap ? 2 * *cap : 32;
        Buffer *b = xalloc(sizeof(Buffer) * (size_t)*cap);
        if (f->n_buffers) memcpy(b, f->buffers, sizeof(Buffer) * (size_t)f->n_buffers);
        f->buffers = b;
    }
    Buffer *b = &f->buffers[f->n_buffers];
    *b = (Buffer){.id = f->n_buffers, .size = size, .home = home, .slot = slot, .role = role, .node = n};
    return f->n_buffers++;
}

static size_t numel(const Model *m, const Node *n)
{
    return dims_count(n->dims) * (n->batched ? (size_t)m->batch : 1);
}

static Instruction *add_ins(Function *f, int *cap, InsKind kind, Node *n)
{
    if (f->n_ins == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        Instruction *ins = xalloc(sizeof(Instruction) * (size_t)*cap);
        if (f->n_ins) memcpy(ins, f->ins, sizeof(Instruction) * (size_t)f->n_ins);
        f->ins = ins;
    }
    Instruction *i = &f->ins[f->n_ins++];
    *i = (Instruction){.kind = kind, .node = n, .scratch = -1};
    return i;
}

static void access(int *list, int *count, int buf)
{
    if (buf < 0) return;
    if (*count == MAX_ACCESS) unreachable();
    list[(*count)++] = buf;
}

/* Values: inputs are arguments, reshapes alias their input, the rest get
 * arena buffers. Outputs of a forward function go straight to the caller. */
static void assign_values(Model *m, Function *f, int *cap)
{
    for (int i = 0; i < f->inputs.len; i++) {
        Node *n = f->inputs.items[i];
        f->value_buf[n->id] = new_buffer(f, cap, numel(m, n), BUF_INPUT, i, ROLE_VALUE, n);
    }
    for (int i = 0; i < f->nodes.len; i++) {
        Node *n = f->nodes.items[i];
        if (n->op == OP_INPUT) continue;
        if (n->op == OP_RESHAPE)
            f->value_buf[n->id] = f->value_buf[n->in[0]->id];
        else
            f->value_buf[n->id] = new_buffer(f, cap, numel(m, n), BUF_ARENA, 0, ROLE_VALUE, n);
    }
}

/* A conv2d's image is its input and its grid its output; a transposed
 * conv's the other way round (runtime/genc_kernels.h). */
static const Dims *conv_image(const Node *n) { return n->op == OP_CONV2D ? &n->in[0]->dims : &n->dims; }
static const Dims *conv_grid(const Node *n) { return n->op == OP_CONV2D ? &n->dims : &n->in[0]->dims; }

/* Stride-1 convolutions with at most 16 channels on either side run direct,
 * as sums of shifted planes: through im2col they would be products of at
 * most 16 rows against a col buffer K·K times the image, written and read
 * again. The image must fit the padded plane, whose pitch is the grid's width
 * plus K − 1. */
bool conv_is_direct(const Node *n)
{
    const Dims *image = conv_image(n), *grid = conv_grid(n);
    const Window *w = &n->window;
    return w->stride == 1 && w->kernel <= 8 && image->dim[0] <= 16 && grid->dim[0] <= 16 &&
           w->pad_top + image->dim[1] <= grid->dim[1] + w->kernel - 1 &&
           w->pad_left + image->dim[2] <= grid->dim[2] + w->kernel - 1;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
static size_t larger(size_t a, size_t b) { return a > b ? a : b; }

/* A direct convolution's planes for one sample: genc_planes and
 * genc_direct_planes in runtime/genc_kernels.h, the same arithmetic (tiles of
 * 64 positions, planes in whole vectors of 16). */
static size_t direct_planes(const Node *n)
{
    const Dims *image = conv_image(n), *grid = conv_grid(n);
    const Window *w = &n->window;
    size_t wp = (size_t)grid->dim[2] + w->kernel - 1, reach = (size_t)(w->kernel - 1) * (wp + 1);
    size_t grid_len = round_up((grid->dim[1] - 1) * wp + grid->dim[2], 64);
    size_t image_end = w->pad_top * wp + w->pad_left + round_up((image->dim[1] - 1) * wp + image->dim[2], 64);
    size_t image_plane = round_up(larger(grid_len + reach, image_end), 16);
    size_t grid_plane = round_up(reach, 16) + round_up(larger(grid_len, image_end), 16);
    return image->dim[0] * image_plane + grid->dim[0] * grid_plane;
}

/* Whether a loss reads n's value in f (through reshapes). Its threads take
 * flat ranges, which a dense layer's flat bias pass leaves in their caches;
 * a streamed output they read from memory (the VAE's BCE over a 128 -> 784
 * layer's output took 53 us at 2 threads, 32 after the flat pass, while the
 * layer took 65 -> 74: its iteration 3 % faster). */
static bool read_by_loss(const Function *f, const Node *n)
{
    for (int i = 0; i < f->nodes.len; i++) {
        const Node *reader = f->nodes.items[i];
        for (int k = 0; k < reader->n_in; k++) {
            if (reader->in[k] != n) continue;
            switch (reader->op) {
            case OP_MSE: case OP_BCE: case OP_BCE_LOGITS: case OP_KL_NORMAL: return true;
            case OP_RESHAPE: if (read_by_loss(f, reader)) return true; break;
            default: break;
            }
        }
    }
    return false;
}

/* Convolutions unfold a sample's windows into a col buffer (im2col) of
 * channels·K·K rows by one column per window position, or, direct, copy it
 * into padded planes; one buffer per thread. Backward, threads after the
 * first sum their weight gradients apart. A wide dense layer's forward pass
 * computes each thread's band of output features apart, B rows of it, unless
 * a loss reads its output. Its backward pass, shared in bands of its output
 * features, sums each band's share of the input gradient apart after the
 * first. Scratch lives for one instruction; genc_conv_scratch,
 * genc_dense_forward_scratch and genc_dense_scratch in runtime/genc_kernels.h
 * give the same sizes. */
static size_t scratch_size(const Model *m, const Function *f, const Instruction *ins)
{
    const Node *n = ins->node;
    const Dims *in = &n->in[0]->dims, *out = &n->dims;
    if (n->op == OP_DENSE) {
        if (ins->kind == INS_FORWARD) /* the column bands of a wide layer */
            return m->threads > 1 && out->dim[0] >= m->batch && !read_by_loss(f, n)
                       ? (size_t)m->batch * out->dim[0] : 0;
        if (!f->needs_grad[n->in[0]->id]) return 0;
        int bands = (out->dim[0] + 15) / 16; /* bands of whole vector widths, GENC_GEMM_NR */
        return (size_t)((m->threads < bands ? m->threads : bands) - 1) * m->batch * in->dim[0];
    }
    if (n->op != OP_CONV2D && n->op != OP_CONV2D_TRANSPOSE) return 0;
    size_t kk = (size_t)n->window.kernel * n->window.kernel, col;
    if (conv_is_direct(n)) col = direct_planes(n);
    else if (n->op == OP_CONV2D) col = in->dim[0] * kk * out->dim[1] * out->dim[2];
    else col = out->dim[0] * kk * in->dim[1] * in->dim[2];
    size_t slots = (size_t)(m->threads < m->batch ? m->threads : m->batch);
    size_t weight = (size_t)in->dim[0] * out->dim[0] * kk;
    return slots * col + (ins->kind == INS_BACKWARD ? (slots - 1) * weight : 0);
}

static void add_scratch(const Model *m, Function *f, int *buf_cap, Instruction *ins)
{
    size_t size = scratch_size(m, f, ins);
    if (size) ins->scratch = new_buffer(f, buf_cap, size, BUF_ARENA, 0, ROLE_SCRATCH, ins->node);
    access(ins->writes, &ins->n_writes, ins->scratch);
}

static void forward_instructions(const Model *m, Function *f, int *buf_cap, int *ins_cap)
{
    for (int i = 0; i < f->nodes.len; i++) {
        Node *n = f->nodes.items[i];
        if (n->op == OP_INPUT || n->op == OP_RESHAPE) continue;
        Instruction *ins = add_ins(f, ins_cap, INS_FORWARD, n);
        for (int k = 0; k < n->n_in; k++) access(ins->reads, &ins->n_reads, f->value_buf[n->in[k]->id]);
        access(ins->writes, &ins->n_writes, f->value_buf[n->id]);
        if (n->op == OP_BATCHNORM && n->training) { /* batch mean and 1/std, kept for the backward pass */
            f->aux_buf[n->id] = new_buffer(f, buf_cap, 2 * (size_t)n->dims.dim[0], BUF_ARENA, 0, ROLE_STATS, n);
            access(ins->writes, &ins->n_writes, f->aux_buf[n->id]);
        }
        add_scratch(m, f, buf_cap, ins);
    }
}

static bool updates_param(const Step *s, const Param *p)
{
    for (int i = 0; i < s->update.len; i++)
        if (s->update.items[i] == p->net) return true;
    return false;
}

static Function *build_step(Model *m, Step *s)
{
    Function *f = new_function(m, FN_STEP, xprintf("step_%s", s->name), &s->loss, 1);
    int buf_cap = 0, ins_cap = 0;
    assign_values(m, f, &buf_cap);
    forward_instructions(m, f, &buf_cap, &ins_cap);
    Instruction *out = add_ins(f, &ins_cap, INS_OUTPUT, s->loss);
    access(out->reads, &out->n_reads, f->value_buf[s->loss->id]);

    /* Which nodes depend on an updated parameter (topological order). */
    for (int i = 0; i < f->nodes.len; i++) {
        Node *n = f->nodes.items[i];
        bool dep = false;
        if (n->weight && updates_param(s, n->weight)) {
            dep = true;
            f->param_grad[n->weight->index] = true;
            if (n->bias) f->param_grad[n->bias->index] = true;
        }
        for (int k = 0; k < n->n_in; k++) dep |= f->needs_grad[n->in[k]->id];
        f->needs_grad[n->id] = dep;
    }
    /* Gradient buffers: reshapes share their input's. */
    for (int i = 0; i < f->nodes.len; i++) {
        Node *n = f->nodes.items[i];
        if (!f->needs_grad[n->id]) continue;
        if (n->op == OP_RESHAPE)
            f->grad_buf[n->id] = f->grad_buf[n->in[0]->id];
        else
            f->grad_buf[n->id] = new_buffer(f, &buf_cap, numel(m, n), BUF_ARENA, 0, ROLE_GRAD, n);
    }

    Instruction *seed = add_ins(f, &ins_cap, INS_SEED, s->loss);
    access(seed->writes, &seed->n_writes, f->grad_buf[s->loss->id]);
    for (int i = f->nodes.len - 1; i >= 0; i--) {
        Node *n = f->nodes.items[i];
        if (!f->needs_grad[n->id] || n->op == OP_RESHAPE || n->op == OP_INPUT) continue;
        Instruction *ins = add_ins(f, &ins_cap, INS_BACKWARD, n);
        access(ins->reads, &ins->n_reads, f->grad_buf[n->id]);
        if (bwd_reads_output(n)) access(ins->reads, &ins->n_reads, f->value_buf[n->id]);
        for (int k = 0; k < n->n_in; k++) {
            bool needed = bwd_reads_input(n, k);
            if (has_gemm(n)) needed = f->param_grad[n->weight->index];
            if (needed) access(ins->reads, &ins->n_reads, f->value_buf[n->in[k]->id]);
            if (f->needs_grad[n->in[k]->id]) access(ins->writes, &ins->n_writes, f->grad_buf[n->in[k]->id]);
        }
        if (has_gemm(n)) access(ins->writes, &ins->n_writes, f->grad_buf[n->id]); /* scaled in place */
        if (f->aux_buf[n->id] >= 0) access(ins->reads, &ins->n_reads, f->aux_buf[n->id]);
        add_scratch(m, f, &buf_cap, ins);
    }
    f->step = s;
    return f;
}

/* A forward function writes its outputs into caller memory; an output whose
 * value already lives elsewhere (an input, or another output) is copied. */
static Function *build_forward(Model *m, const char *name, Node *input, Node **outputs, int n_outputs,
                               const char **output_names)
{
    Function *f = new_function(m, FN_FORWARD, name, outputs, n_outputs);
    if (input) { /* a net's input comes first even if an output does not read it */
        bool found = false;
        for (int i = 0; i < f->inputs.len; i++) found |= f->inputs.items[i] == input;
        if (!found) vec_push(&f->inputs, input);
    }
    f->output_names = output_names;
    int buf_cap = 0, ins_cap = 0;
    assign_values(m, f, &buf_cap);
    bool *claimed = xalloc(sizeof(bool) * (size_t)(f->n_buffers + 1));
    for (int k = 0; k < n_outputs; k++) {
        Buffer *b = &f->buffers[f->value_buf[outputs[k]->id]];
        if (b->home == BUF_ARENA && !claimed[b->id]) {
            b->home = BUF_OUTPUT;
            b->slot = k;
            claimed[b->id] = true;
        }
    }
    forward_instructions(m, f, &buf_cap, &ins_cap);
    for (int k = 0; k < n_outputs; k++) {
        Buffer *b = &f->buffers[f->value_buf[outputs[k]->id]];
        if (b->home == BUF_OUTPUT && b->slot == k) continue;
        Instruction *ins = add_ins(f, &ins_cap, INS_OUTPUT, outputs[k]);
        access(ins->reads, &ins->n_reads, b->id);
    }
    return f;
}

/* A forward function of one expression of the model's inputs. */
static Function *expression_function(Program *p, const char *name, Node **expr, const char *output_name)
{
    const char **names = xalloc(sizeof(char *));
    names[0] = output_name;
    Function *f = build_forward(p->model, name, NULL, expr, 1, names);
    vec_push(&p->functions, f);
    return f;
}

Program *build_program(Model *m)
{
    Program *p = xalloc(sizeof *p);
    p->model = m;
    for (int i = 0; i < m->steps.len; i++) vec_push(&p->functions, build_step(m, m->steps.items[i]));
    for (int i = 0; i < m->nets.len; i++) {
        Net *net = m->nets.items[i];
        const char **names = net->output_names;
        if (!names) {
            names = xalloc(sizeof(char *));
            names[0] = "output";
        }
        Function *f = build_forward(m, xprintf("%s_forward", net->name), net->trace_input, net->trace_outputs,
                                    net->n_outputs, names);
        f->net = net;
        f->samples = net == m->sample;
        vec_push(&p->functions, f);
    }
    if (m->sample_expr) expression_function(p, "sample", &m->sample_expr, "sample")->samples = true;
    if (m->reconstruct) expression_function(p, "reconstruct", &m->reconstruct, "reconstruction")->reconstructs = true;
    return p;
}
