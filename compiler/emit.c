/* emit.c — writes <model>.h and <model>.c: sizes, parameter offsets, one C
 * function per training step and per network, and the descriptor the runtime
 * reads. Each block names the spec line it came from; each buffer its shape. */
#define _POSIX_C_SOURCE 200809L
#include "compiler.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define P(...) fprintf(e->out, __VA_ARGS__)

const char *upper_name(const char *s)
{
    char *u = xstrdup(s);
    for (char *p = u; *p; p++) *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    return u;
}

const char *param_macro(const Emitter *e, const Param *p) { return xprintf("%s_%s", upper_name(e->prefix), upper_name(p->name)); }

static const char *buffer_name(Emitter *e, int b)
{
    const Buffer *buf = &e->fn->buffers[b];
    switch (buf->home) {
    case BUF_INPUT: return buf->node->input_name;
    case BUF_OUTPUT: return xprintf("out_%s", e->fn->output_names[buf->slot]);
    default: {
        static const char *const prefix[] = {"t", "dt", "stats", "scratch"};
        return xprintf("%s%d", prefix[buf->role], buf->role == ROLE_SCRATCH ? buf->id : buf->node->id);
    }
    }
}

const char *emit_scratch(Emitter *e) { return e->ins->scratch < 0 ? "NULL" : buffer_name(e, e->ins->scratch); }

const char *emit_aux(Emitter *e, const Node *n) { return buffer_name(e, e->fn->aux_buf[n->id]); }

const char *emit_value(Emitter *e, const Node *n) { return buffer_name(e, e->fn->value_buf[n->id]); }

const char *emit_grad(Emitter *e, const Node *n)
{
    int b = e->fn->grad_buf[n->id];
    return b < 0 ? "NULL" : buffer_name(e, b);
}

int emit_acc(Emitter *e, const Node *n)
{
    int b = e->fn->grad_buf[n->id];
    if (b < 0) return 0;
    int was = e->grad_written[b];
    e->grad_written[b] = true;
    return was;
}

const char *emit_param(Emitter *e, const Param *p)
{
    if (!p) return "NULL";
    return xprintf("%s + %s", p->is_state ? "state" : "params", param_macro(e, p));
}

const char *emit_param_grad(Emitter *e, const Param *p)
{
    return p && e->fn->param_grad[p->index] ? xprintf("grads + %s", param_macro(e, p)) : "NULL";
}

int emit_param_acc(Emitter *e, const Param *p)
{
    if (!p) return 0;
    int was = e->param_grad_written[p->index];
    e->param_grad_written[p->index] = true;
    return was;
}

/* The shortest literal that reads back as the same value in the target type. */
const char *emit_literal(Emitter *e, double x)
{
    bool is_float = strcmp(e->real, "float") == 0;
    char buf[64];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (is_float ? strtof(buf, NULL) == (float)x : strtod(buf, NULL) == x) break;
    }
    if (!strpbrk(buf, ".eninf")) strcat(buf, ".0");
    return xprintf("%s%s", buf, is_float ? "f" : "");
}

static const char *shape_of(const Emitter *e, const Node *n)
{
    char *s = dims_str(n->dims, n->batched);
    if (n->batched) {
        char *b = xprintf("[%d%s", e->model->batch, s + 2);
        if (n->dims.rank == 0) b = xprintf("[%d]", e->model->batch);
        return b;
    }
    return s;
}

static const char *describe(const Node *n)
{
    static const char *const act[] = {"", "relu", "leaky_relu", "sigmoid", "tanh"};
    if (n->act != ACT_IDENTITY && n->op != OP_ACTIVATION) return xprintf("%s + %s", n->what, act[n->act]);
    if (n->op == OP_ACTIVATION) return act[n->act];
    return n->what ? n->what : op_info[n->op].name;
}

static void emit_signature(Emitter *e, const Function *f, FILE *out)
{
    const char *r = e->real, *linkage = e->private_functions ? "static " : "";
    if (f->kind == FN_STEP)
        fprintf(out, "%svoid %s_%s(const %s *params, %s *state, %s *grads, %s *arena, const %s *const *inputs, %s *loss)",
                linkage, e->prefix, f->name, r, r, r, r, r, r);
    else
        fprintf(out, "%svoid %s_%s(const %s *params, const %s *state, %s *arena, const %s *const *inputs, "
                     "%s *const *outputs)", linkage, e->prefix, f->name, r, r, r, r, r);
}

static bool uses_params(const Function *f)
{
    for (int i = 0; i < f->nodes.len; i++)
        if (((Node *)f->nodes.items[i])->weight) return true;
    return false;
}

static bool uses_state(const Function *f)
{
    for (int i = 0; i < f->nodes.len; i++)
        if (((Node *)f->nodes.items[i])->running_mean) return true;
    return false;
}

void emit_function(Emitter *e, const Function *f)
{
    const Model *m = e->model;
    e->fn = f;
    e->grad_written = xalloc((size_t)f->n_buffers + 1);
    e->param_grad_written = xalloc((size_t)m->params.len + 1);
    if (f->kind == FN_STEP) {
        const Step *s = f->step;
        static const char *const opt[] = {"sgd", "adam", "rmsprop"};
        P("/* Step \"%s\" (%s:%d): forward and backward of its loss; writes the gradients of", s->name,
          s->loss->loc.file, s->loss->loc.line);
        for (int i = 0; i < s->update.len; i++) P(" %s", ((Net *)s->update.items[i])->name);
        P(", which %s updates.\n   Arena: %zu floats with reuse (%zu without). */\n", opt[s->optimizer.kind],
          f->arena_size, f->arena_no_reuse);
    } else {
        P("/* %s: inference forward pass. Arena: %zu floats with reuse (%zu without). */\n", f->name,
          f->arena_size, f->arena_no_reuse);
    }
    emit_signature(e, f, e->out);
    P("\n{\n");
    bool any_arena = false;
    for (int b = 0; b < f->n_buffers; b++) any_arena |= f->buffers[b].home == BUF_ARENA && f->buffers[b].first >= 0;
    if (!uses_params(f)) P("    (void)params;\n");
    if (!uses_state(f)) P("    (void)state;\n");
    if (!any_arena) P("    (void)arena;\n");
    for (int b = 0; b < f->n_buffers; b++) {
        const Buffer *buf = &f->buffers[b];
        if (buf->first < 0) continue;
        const char *shape = shape_of(e, buf->node);
        switch (buf->home) {
        case BUF_INPUT:
            P("    const %s *%s = inputs[%d]; /* %s */\n", e->real, buffer_name(e, b), buf->slot, shape);
            break;
        case BUF_OUTPUT:
            P("    %s *%s = outputs[%d]; /* %s */\n", e->real, buffer_name(e, b), buf->slot, shape);
            break;
        case BUF_ARENA:
            static const char *const role[] = {"", "gradient of ", "batch mean and 1/std of ", "im2col of "};
            const char *what = role[buf->role];
            if (buf->role == ROLE_SCRATCH && conv_is_direct(buf->node)) what = "padded planes of ";
            if (buf->role == ROLE_STATS || buf->role == ROLE_SCRATCH) shape = xprintf("[%zu]", buf->size);
            P("    %s *%s = arena + %zu; /* %s %s%s */\n", e->real, buffer_name(e, b), buf->offset, shape, what,
              describe(buf->node));
            break;
        }
    }
    for (int t = 0; t < f->n_ins; t++) {
        const Instruction *ins = &f->ins[t];
        const Node *n = ins->node;
        e->ins = ins;
        switch (ins->kind) {
        case INS_FORWARD:
            P("\n    /* %s:%d  %s  -> %s */\n", n->loc.file, n->loc.line, describe(n), shape_of(e, n));
            op_info[n->op].forward(e, n);
            break;
        case INS_OUTPUT:
            if (f->kind == FN_STEP) {
                P("    loss[0] = %s[0];\n", emit_value(e, n));
            } else {
                int slot = 0;
                for (int k = 0; k < f->outputs.len; k++)
                    if (f->outputs.items[k] == n) slot = k;
                P("    memcpy(outputs[%d], %s, sizeof(%s) * %zu);\n", slot, emit_value(e, n), e->real,
                  dims_count(n->dims) * (size_t)m->batch);
            }
            break;
        case INS_SEED:
            P("\n    /* backward */\n    %s[0] = 1;\n", emit_grad(e, n));
            e->grad_written[f->grad_buf[n->id]] = true;
            break;
        case INS_BACKWARD:
            P("\n    /* %s:%d  backward of %s */\n", n->loc.file, n->loc.line, describe(n));
            op_info[n->op].backward(e, n);
            break;
        }
    }
    P("}\n\n");
}

static const char *input_kind(InputKind k)
{
    static const char *const names[] = {"GENC_INPUT_IMAGES", "GENC_INPUT_LABELS", "GENC_INPUT_NORMAL",
                                        "GENC_INPUT_UNIFORM", "GENC_INPUT_CALLER"};
    return names[k];
}

static void emit_inputs_table(Emitter *e, const Function *f)
{
    P("static const GencInput %s_inputs[] = {\n", f->name);
    for (int i = 0; i < f->inputs.len; i++) {
        const Node *n = f->inputs.items[i];
        P("    {\"%s\", %s, %zu, %s, %s},\n", n->input_name, input_kind(n->input_kind),
          dims_count(n->dims) * (size_t)e->model->batch, emit_literal(e, n->lo), emit_literal(e, n->hi));
    }
    if (f->inputs.len == 0) P("    {0},\n");
    P("};\n");
}

static void emit_param_table(Emitter *e, const char *name, const Vec *list)
{
    static const char *const init[] = {"GENC_INIT_ZEROS", "GENC_INIT_ONES", "GENC_INIT_GLOROT_UNIFORM",
                                       "GENC_INIT_NORMAL"};
    P("static const GencParam %s[] = {\n", name);
    for (int i = 0; i < list->len; i++) {
        const Param *q = list->items[i];
        P("    {\"%s\", %d, {", q->name, q->dims.rank);
        for (int d = 0; d < q->dims.rank; d++) P("%s%d", d ? ", " : "", q->dims.dim[d]);
        P("}, %s, %zu, %s, %s, %d, %d},\n", param_macro(e, q), dims_count(q->dims), init[q->init],
          emit_literal(e, q->init_scale), q->fan_in, q->fan_out);
    }
    if (list->len == 0) P("    {0},\n");
    P("};\n\n");
}

static void emit_descriptor(Emitter *e, const Program *p)
{
    const Model *m = p->model;
    static const char *const opt[] = {"GENC_SGD", "GENC_ADAM", "GENC_RMSPROP"};
    P("/* ---- descriptor: what the generic trainer in the runtime reads ---- */\n\n");
    emit_param_table(e, "params", &m->params);
    emit_param_table(e, "state", &m->state);
    const Function *sample = NULL, *reconstruct = NULL;
    int n_forward = 0;
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        emit_inputs_table(e, f);
        if (f->kind == FN_STEP) {
            P("static const int %s_params[] = {", f->name);
            int count = 0;
            for (int k = 0; k < m->params.len; k++)
                if (f->param_grad[k]) P("%s%d", count++ ? ", " : "", k);
            P("};\n\n");
        } else {
            P("static const size_t %s_output_sizes[] = {", f->name);
            for (int k = 0; k < f->outputs.len; k++)
                P("%s%zu", k ? ", " : "", dims_count(((Node *)f->outputs.items[k])->dims) * (size_t)m->batch);
            P("};\nstatic const char *const %s_output_names[] = {", f->name);
            for (int k = 0; k < f->outputs.len; k++) P("%s\"%s\"", k ? ", " : "", f->output_names[k]);
            P("};\n\n");
        }
    }
    P("static const GencStep steps[] = {\n");
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        if (f->kind != FN_STEP) continue;
        const Optimizer *o = &f->step->optimizer;
        int count = 0;
        for (int k = 0; k < m->params.len; k++) count += f->param_grad[k];
        P("    {\"%s\", %s_%s, %d, %s_inputs, %d, %s_params,\n", f->step->name, m->name, f->name, f->inputs.len,
          f->name, count, f->name);
        P("     {%s, .lr = %s, .momentum = %s, .beta1 = %s, .beta2 = %s, .eps = %s, .alpha = %s}},\n",
          opt[o->kind], emit_literal(e, o->lr), emit_literal(e, o->momentum), emit_literal(e, o->beta1),
          emit_literal(e, o->beta2), emit_literal(e, o->eps), emit_literal(e, o->alpha));
    }
    P("};\n\nstatic const GencFunction functions[] = {\n");
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        if (f->kind != FN_FORWARD) continue;
        P("    {\"%s\", %s_%s, %d, %s_inputs, %d, %s_output_sizes, %s_output_names},\n", f->name, m->name, f->name,
          f->inputs.len, f->name, f->outputs.len, f->name, f->name);
        if (f->samples) sample = f;
        if (f->reconstructs) reconstruct = f;
        n_forward++;
    }
    P("};\n\n");
    int sample_index = -1, reconstruct_index = -1, k = 0;
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        if (f->kind != FN_FORWARD) continue;
        if (f == sample) sample_index = k;
        if (f == reconstruct) reconstruct_index = k;
        k++;
    }
    P("const GencModel %s_model = {\n", m->name);
    P("    .name = \"%s\",\n    .batch = %d,\n", m->name, m->batch);
    P("    .image_channels = %d, .image_height = %d, .image_width = %d,\n", m->image_dims.dim[0],
      m->image_dims.dim[1], m->image_dims.dim[2]);
    P("    .image_lo = %s, .image_hi = %s,\n", emit_literal(e, m->image_lo), emit_literal(e, m->image_hi));
    P("    .n_params = %zu,\n    .arena_size = %zu,\n", m->n_params, p->arena_size);
    P("    .n_param_tensors = %d,\n    .params = params,\n", m->params.len);
    P("    .n_state = %zu,\n    .n_state_tensors = %d,\n    .state = state,\n", m->n_state, m->state.len);
    P("    .n_steps = %d,\n    .steps = steps,\n", m->steps.len);
    if (sample_index >= 0) P("    .sample = &functions[%d],\n", sample_index);
    if (reconstruct_index >= 0) P("    .reconstruct = &functions[%d],\n", reconstruct_index);
    if (m->classes) P("    .classes = %d,\n", m->classes);
    P("    .n_functions = %d,\n    .functions = functions,\n};\n", n_forward);
}

static void emit_header(Emitter *e)
{
    const Program *p = e->program;
    bool descriptor = e->descriptor;
    const Model *m = p->model;
    const char *M = upper_name(m->name);
    P("/* %s.h — generated by genc from %s. Do not edit: change the spec and recompile. */\n", m->name, m->file);
    P("#ifndef %s_H\n#define %s_H\n\n#include <stddef.h>\n", M, M);
    if (descriptor) P("#include \"genc.h\"\n");
    P("\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    P("#define %s_BATCH %d\n", M, m->batch);
    P("#define %s_PARAMS %zu /* floats in the parameter block (and in the gradient block) */\n", M, m->n_params);
    P("#define %s_STATE %zu /* floats of running statistics, not trained */\n", M, m->n_state);
    P("#define %s_ARENA %zu /* floats of scratch memory; %zu without reuse */\n\n", M, p->arena_size,
      p->arena_no_reuse);
    P("/* Parameter offsets in the block, in floats, and their shapes. */\n");
    for (int i = 0; i < m->params.len; i++) {
        const Param *q = m->params.items[i];
        P("#define %s %zu /* %s */\n", param_macro(e, q), q->offset, dims_str(q->dims, false));
    }
    if (m->state.len) P("/* Offsets in the state block. */\n");
    for (int i = 0; i < m->state.len; i++) {
        const Param *q = m->state.items[i];
        P("#define %s %zu /* %s */\n", param_macro(e, q), q->offset, dims_str(q->dims, false));
    }
    P("\n");
    for (int i = 0; i < p->functions.len; i++) {
        emit_signature(e, p->functions.items[i], e->out);
        P(";\n");
    }
    if (descriptor) P("\nextern const GencModel %s_model;\n", m->name);
    P("\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
}

static void emit_source(Emitter *e)
{
    const Program *p = e->program;
    bool descriptor = e->descriptor;
    const Model *m = p->model;
    P("/* %s.c — generated by genc from %s. Do not edit: change the spec and recompile.\n", m->name, m->file);
    P(" * Kernels are in genc_kernels.h; B = %d throughout. */\n", m->batch);
    if (!descriptor) P("#define GENC_DOUBLE\n");
    P("#include \"%s.h\"\n#include \"genc_kernels.h\"\n\n#include <string.h>\n\n", m->name);
    for (int i = 0; i < p->functions.len; i++) emit_function(e, p->functions.items[i]);
    if (descriptor) emit_descriptor(e, p);
}

void make_dirs(const char *dir)
{
    char *path = xstrdup(dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST) fatal("cannot create %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST) fatal("cannot create %s: %s", path, strerror(errno));
}

void write_file(Emitter *e, const char *path, void (*body)(Emitter *e))
{
    char *tmp = xprintf("%s.tmp", path);
    e->out = fopen(tmp, "w");
    if (!e->out) fatal("cannot write %s: %s", tmp, strerror(errno));
    body(e);
    if (fclose(e->out) != 0) fatal("cannot write %s: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) fatal("cannot write %s: %s", path, strerror(errno));
}

void emit_program(const Program *p, const char *dir, EmitOptions opts)
{
    Emitter e = {.model = p->model, .program = p, .real = opts.real ? opts.real : "float", .prefix = p->model->name};
    e.descriptor = strcmp(e.real, "float") == 0;
    make_dirs(dir);
    write_file(&e, xprintf("%s/%s.h", dir, p->model->name), emit_header);
    write_file(&e, xprintf("%s/%s.c", dir, p->model->name), emit_source);
}
