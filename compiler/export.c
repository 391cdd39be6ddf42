/* export.c — writes a drop-in sampler: NAME.h and NAME.c holding the model's
 * sample function in inference mode, the trained weights it reads, and copies
 * of the kernels and the random generator, so that NAME.c compiles alone and
 * links with libm (or, with --blas, also cblas). */
#include "compiler.h"
#include "genc_kernels.h" /* genc_panel_offset */
#include "genc_runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define P(...) fprintf(e->out, __VA_ARGS__)

typedef struct {
    Emitter emitter;
    const Function *fn;        /* the sample function */
    const char *name, *spec, *weights, *upper;
    const char *iteration;     /* from the checkpoint's metadata */
    Vec params, state;         /* Param* the function reads, in block order */
    Vec input_major;           /* the dense weights among params, when stored (C,OC) */
    const float **data;        /* by position in params, then state */
    size_t n_params, n_state;  /* floats, compacted */
    bool blas, labelled;
    size_t latent, output;     /* floats per sample */
} Sampler;

static Sampler *sampler_of(Emitter *e) { return (Sampler *)e; }

static const Node *input_of(const Function *f, InputKind kind)
{
    for (int i = 0; i < f->inputs.len; i++) {
        const Node *n = f->inputs.items[i];
        if (n->input_kind == kind) return n;
    }
    return NULL;
}

static void add_param(Vec *list, Param *p)
{
    if (!p) return;
    for (int i = 0; i < list->len; i++)
        if (list->items[i] == p) return;
    vec_push(list, p);
}

static int by_offset(const void *a, const void *b)
{
    const Param *p = *(Param *const *)a, *q = *(Param *const *)b;
    return p->offset < q->offset ? -1 : p->offset > q->offset;
}

/* Only what the sample function reads is embedded, at new offsets. */
static void collect_params(Sampler *s)
{
    for (int i = 0; i < s->fn->nodes.len; i++) {
        Node *n = s->fn->nodes.items[i];
        if (n->op == OP_DENSE && dense_is_input_major(&s->emitter, n)) add_param(&s->input_major, n->weight);
        add_param(&s->params, n->weight);
        add_param(&s->params, n->bias);
        add_param(&s->state, n->running_mean);
        add_param(&s->state, n->running_var);
    }
    if (s->params.len) qsort(s->params.items, (size_t)s->params.len, sizeof(void *), by_offset);
    if (s->state.len) qsort(s->state.items, (size_t)s->state.len, sizeof(void *), by_offset);
}

static void load_weights(Sampler *s, GencSafetensors *st)
{
    GencError err;
    const Model *m = s->emitter.model;
    if (genc_checkpoint_open(s->weights, m->name, st, &err)) fatal("%s", err.msg);
    const char *it = genc_safetensors_meta(st, "iteration");
    s->iteration = it ? xstrdup(it) : "?";
    int n = s->params.len + s->state.len;
    s->data = xalloc(sizeof(float *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        bool state = i >= s->params.len;
        const Param *p = state ? s->state.items[i - s->params.len] : s->params.items[i];
        const char *name = xprintf("%s/%s", state ? "state" : "param", p->name);
        const GencTensorIn *t = genc_checkpoint_tensor(st, s->weights, name, p->dims.rank, p->dims.dim, &err);
        if (!t) fatal("%s", err.msg);
        for (size_t k = 0; k < t->count; k++)
            if (!isfinite(t->data[k])) fatal("%s: tensor '%s' holds %g; refusing to export it", s->weights, name, t->data[k]);
        s->data[i] = t->data;
    }
}

/* The API: z (and labels) in, images out; the workspace on the stack or the caller's. */
static const char *api_args(const Sampler *s, bool seeded)
{
    return xprintf("%s%s, float *out", seeded ? "uint64_t seed" : "const float *z",
                   s->labelled ? ", const int *labels" : "");
}

static void emit_sampler_header(Emitter *e)
{
    Sampler *s = sampler_of(e);
    const Model *m = e->model;
    const char *N = s->upper, *name = s->name;
    P("/* %s.h — a sampler of model \"%s\", exported by genc from %s with the weights of\n", name, m->name, s->spec);
    P(" * %s (iteration %s). %s.c needs nothing but libm%s; no allocation, no globals\n", s->weights, s->iteration,
      name, s->blas ? " and cblas" : "");
    P(" * that change, so the functions are thread-safe. Inference mode: batchnorm uses its\n"
      " * running statistics and dropout is off. Built with -fopenmp, large products (with\n"
      " * --blas) and col2im folds are shared among OpenMP threads. */\n");
    P("#ifndef %s_H\n#define %s_H\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", N, N);
    P("#define %s_BATCH %d      /* samples per call */\n", N, m->batch);
    P("#define %s_LATENT %zu    /* floats of z per sample, N(0, 1) as in training */\n", N, s->latent);
    if (s->labelled) P("#define %s_CLASSES %d     /* labels are 0 .. %d */\n", N, m->classes, m->classes - 1);
    P("#define %s_CHANNELS %d\n#define %s_HEIGHT %d\n#define %s_WIDTH %d\n", N, m->image_dims.dim[0], N,
      m->image_dims.dim[1], N, m->image_dims.dim[2]);
    P("#define %s_OUTPUT %zu    /* floats per sample: channels x height x width */\n", N, s->output);
    P("#define %s_OUTPUT_LO %s  /* the range of the pixels out (the data's scaling in training) */\n", N,
      emit_literal(e, m->image_lo));
    P("#define %s_OUTPUT_HI %s\n", N, emit_literal(e, m->image_hi));
    P("#define %s_WORKSPACE %zu /* floats of scratch per call */\n\n", N,
      s->fn->arena_size ? s->fn->arena_size : 1);
    const char *labels_doc = s->labelled ? xprintf(", labels[b] the class of sample b (outside 0 .. %d: no class)",
                                                  m->classes - 1) : "";
    P("/* %s_BATCH samples: z holds %s_BATCH x %s_LATENT floats%s; out receives\n"
      "   %s_BATCH x %s_OUTPUT floats. Keeps %s_WORKSPACE floats (%.1f KiB) on the stack. */\n", N, N, N,
      labels_doc, N, N, N, (double)(s->fn->arena_size + 1) * 4 / 1024);
    P("void %s_sample(%s);\n\n", name, api_args(s, false));
    P("/* The same with the caller's workspace (%s_WORKSPACE floats), for small stacks. */\n", N);
    P("void %s_sample_with(float *workspace, %s);\n\n", name, api_args(s, false));
    P("/* Draws z from seed with genc's generator (the z that `genc sample --seed` draws\n"
      "   first) and samples. */\n");
    P("void %s_sample_seeded(%s);\n", name, api_args(s, true));
    P("\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
}

static void copy_runtime_file(Emitter *e, const char *file)
{
    const char *path = xprintf("%s/%s", GENC_RUNTIME_DIR, file);
    FILE *in = fopen(path, "r");
    if (!in) fatal("cannot read %s (the runtime's sources)", path);
    P("/* ---- %s, as in genc's runtime ---- */\n\n", file);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, e->out);
    fclose(in);
    P("\n");
}

static bool is_input_major(const Sampler *s, const Param *p)
{
    for (int i = 0; i < s->input_major.len; i++)
        if (s->input_major.items[i] == p) return true;
    return false;
}

/* p's values as stored here: data, or for a dense weight (OC,C) stored
 * input-major, a copy in panels (genc_panel_offset) */
static const float *stored_values(const Param *p, bool input_major, const float *data)
{
    if (!input_major) return data;
    int OC = p->dims.dim[0], C = p->dims.dim[1];
    float *stored = xalloc(sizeof(float) * dims_count(p->dims));
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) stored[genc_panel_offset(C, OC, c, o)] = data[(size_t)o * C + c];
    return stored;
}

static void emit_weights(Emitter *e, const char *array, const Vec *list, int first, size_t total)
{
    Sampler *s = sampler_of(e);
    if (!list->len) return;
    size_t offset = 0;
    for (int i = 0; i < list->len; i++) {
        const Param *p = list->items[i];
        P("#define %s %zu /* %s%s */\n", param_macro(e, p), offset, dims_str(p->dims, false),
          is_input_major(s, p) ? ", stored input-major in panels (genc_panel_offset)" : "");
        offset += dims_count(p->dims);
    }
    P("\nstatic const float %s_%s[%zu] GENC_LINE_ALIGNED = {\n", e->prefix, array, total);
    for (int i = 0; i < list->len; i++) {
        const Param *p = list->items[i];
        P("    /* %s */\n", p->name);
        size_t count = dims_count(p->dims);
        const float *stored = stored_values(p, is_input_major(s, p), s->data[first + i]);
        for (size_t k = 0; k < count; k++)
            P("%s%s,%s", k % 8 == 0 ? "    " : "", emit_literal(e, stored[k]), k % 8 == 7 || k + 1 == count ? "\n" : " ");
    }
    P("};\n\n");
}

static void emit_sampler_source(Emitter *e)
{
    Sampler *s = sampler_of(e);
    const Function *f = s->fn;
    const char *N = s->upper, *name = s->name;
    P("/* %s.c — exported by genc from %s and %s: the kernels and generator it uses,\n"
      " * the weights of its sample function, and the function. Do not edit: re-export. */\n", name, s->spec,
      s->weights);
    if (!s->blas) P("#define GENC_NO_BLAS /* every product in plain C */\n");
    P("#include \"%s.h\"\n\n#include <string.h>\n\n", name);
    P("#if defined(__clang__) /* the kernels copied here include backward passes this file does not use */\n"
      "#pragma clang diagnostic ignored \"-Wunused-function\"\n#endif\n\n");
    copy_runtime_file(e, "genc_kernels.h");
    copy_runtime_file(e, "genc_rng.h");
    P("/* ---- weights ---- */\n\n");
    emit_weights(e, "params", &s->params, 0, s->n_params);
    emit_weights(e, "state", &s->state, s->params.len, s->n_state);
    P("/* ---- the sample function (B = %d) ---- */\n\n", e->model->batch);
    emit_function(e, f);
    P("/* ---- API ---- */\n\n");
    P("void %s_sample_with(float *workspace, %s)\n{\n", name, api_args(s, false));
    if (s->labelled) {
        P("    float classes[%s_BATCH];\n", N);
        P("    for (int b = 0; b < %s_BATCH; b++) classes[b] = (float)labels[b];\n", N);
    }
    P("    const float *const inputs[] = {");
    for (int i = 0; i < f->inputs.len; i++) {
        const Node *n = f->inputs.items[i];
        P("%s%s", i ? ", " : "", n->input_kind == INPUT_LABELS ? "classes" : "z");
    }
    P("};\n    float *const outputs[] = {out};\n");
    P("    %s_%s(%s, %s, workspace, inputs, outputs);\n}\n\n", e->prefix, f->name,
      s->params.len ? xprintf("%s_params", e->prefix) : "NULL", s->state.len ? xprintf("%s_state", e->prefix) : "NULL");
    P("void %s_sample(%s)\n{\n    float workspace[%s_WORKSPACE];\n", name, api_args(s, false), N);
    P("    %s_sample_with(workspace, z%s, out);\n}\n\n", name, s->labelled ? ", labels" : "");
    P("void %s_sample_seeded(%s)\n{\n    float z[%s_BATCH * %s_LATENT];\n    GencRng rng;\n", name, api_args(s, true),
      N, N);
    P("    genc_rng_seed(&rng, seed);\n    genc_rng_fill_normal(&rng, z, %s_BATCH * %s_LATENT);\n", N, N);
    P("    %s_sample(z%s, out);\n}\n", name, s->labelled ? ", labels" : "");
}

void export_sampler(const Program *p, ExportOptions o)
{
    const Model *m = p->model;
    /* The function and its weight offsets get a prefix of their own: NAME_sample is the API.
     * At fewer rows than a GEMM tile (GENC_GEMM_MR, 4), a dense product is
     * a sum of the weight's rows if it is stored input-major: streamed from
     * the cache once, with no sums across a vector's lanes (genc_row_sums;
     * the MLP GAN's sampler 3.5 us where it was 4.2). A weight too large to
     * stay in the cache between calls streams from memory better in its
     * rows' order (DCGAN's 5 MB 100 -> 12544: the sampler 4 % slower
     * input-major), hence the limit of 1 MiB (2^18 floats). */
    Sampler s = {.emitter = {.model = m, .program = p, .real = "float", .prefix = xprintf("%s_net", o.name),
                             .private_functions = true, .dense_input_major = m->batch < 4 ? 262144 : 0},
                 .name = o.name, .spec = m->file, .weights = o.weights, .blas = o.blas};
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        if (f->samples) s.fn = f;
    }
    if (!s.fn) fatal("%s: model %s has no sample network to export (set `sample = ...` in model{})", m->file, m->name);
    const Node *z = input_of(s.fn, INPUT_CALLER);
    if (!z) z = input_of(s.fn, INPUT_NORMAL);
    s.latent = dims_count(z->dims);
    s.labelled = input_of(s.fn, INPUT_LABELS) != NULL;
    s.output = dims_count(((const Node *)s.fn->outputs.items[0])->dims);
    s.upper = upper_name(o.name);
    collect_params(&s);
    for (int i = 0; i < s.params.len; i++) s.n_params += dims_count(((Param *)s.params.items[i])->dims);
    for (int i = 0; i < s.state.len; i++) s.n_state += dims_count(((Param *)s.state.items[i])->dims);
    GencSafetensors st;
    load_weights(&s, &st);
    make_dirs(o.dir);
    write_file(&s.emitter, xprintf("%s/%s.h", o.dir, o.name), emit_sampler_header);
    write_file(&s.emitter, xprintf("%s/%s.c", o.dir, o.name), emit_sampler_source);
    genc_safetensors_free(&st);
}
