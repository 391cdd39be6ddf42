/* trainer.c — one generic trainer for every compiled model, driven by its
 * descriptor, and the command line of the <model>_train programs. */
#define _POSIX_C_SOURCE 200809L
#include "trainer_state.h"
#include "genc_kernels.h" /* genc_band, the bands the generated code shares work in */

#include <cblas.h>
#include <omp.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SSE__)
#include <pmmintrin.h>
#endif

static void *alloc_floats(size_t n)
{
    size_t bytes = (n ? n : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static uint64_t mix(uint64_t seed, uint64_t stream) { return seed * 0x9e3779b97f4a7c15ull ^ (stream + 0x632be59bd9b4e019ull); }

static void init_tensors(GencRng *rng, float *block, const GencParam *tensors, int n)
{
    for (int i = 0; i < n; i++) {
        const GencParam *p = &tensors[i];
        float *w = block + p->offset;
        switch (p->init) {
        case GENC_INIT_GLOROT_UNIFORM: { /* Keras's default */
            float limit = sqrtf(6.0f / (float)(p->fan_in + p->fan_out));
            genc_rng_fill_uniform(rng, w, p->size, -limit, limit);
            break;
        }
        case GENC_INIT_NORMAL:
            genc_rng_fill_normal(rng, w, p->size);
            for (size_t k = 0; k < p->size; k++) w[k] *= p->init_scale;
            break;
        case GENC_INIT_ONES:
            for (size_t k = 0; k < p->size; k++) w[k] = 1;
            break;
        case GENC_INIT_ZEROS: memset(w, 0, p->size * sizeof(float)); break;
        }
    }
}

static void init_params(GencTrainer *t)
{
    GencRng rng;
    genc_rng_seed(&rng, mix(t->seed, 1));
    init_tensors(&rng, t->params, t->model->params, t->model->n_param_tensors);
    init_tensors(&rng, t->state, t->model->state, t->model->n_state_tensors);
}

void genc_trainer_shuffle(GencTrainer *t)
{
    if (!t->data) return;
    GencRng rng;
    genc_rng_seed(&rng, mix(t->seed, 1000 + (uint64_t)t->epoch));
    int n = t->data->n;
    for (int i = 0; i < n; i++) t->order[i] = (uint32_t)i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(genc_rng_next(&rng) % (uint64_t)(i + 1));
        uint32_t tmp = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = tmp;
    }
}

static bool needs_kind(const GencModel *m, GencInputKind kind)
{
    for (int s = 0; s < m->n_steps; s++)
        for (int i = 0; i < m->steps[s].n_inputs; i++)
            if (m->steps[s].inputs[i].kind == kind) return true;
    return false;
}
/* Steps share sample loops and large products among GENC_THREADS threads
 * (default: every CPU this process may use) through OpenMP; each BLAS call
 * then runs on one thread, because OpenBLAS's own threaded driver allocates
 * on every call and a step must not. */
static bool set_threads(GencError *err)
{
    const char *env = getenv("GENC_THREADS");
    char *end = NULL;
    long threads = env ? strtol(env, &end, 10) : omp_get_num_procs();
    if (env && (*env == '\0' || *end != '\0' || threads < 1 || threads > 256))
        return genc_fail(err, "GENC_THREADS=%s: not a thread count (1 to 256)", env), false;
    omp_set_num_threads((int)threads);
    openblas_set_num_threads(1);
    return true;
}


GencTrainer *genc_trainer_new(const GencModel *m, const GencDataset *data, uint64_t seed, GencError *err)
{
    if (data) {
        if (data->channels != m->image_channels || data->height != m->image_height || data->width != m->image_width) {
            genc_fail(err, "the data set holds %dx%dx%d images; model %s takes %dx%dx%d", data->channels, data->height,
                      data->width, m->name, m->image_channels, m->image_height, m->image_width);
            return NULL;
        }
        if (data->n < m->batch) {
            genc_fail(err, "the data set has %d images, fewer than one batch of %d", data->n, m->batch);
            return NULL;
        }
        if (needs_kind(m, GENC_INPUT_LABELS) && !data->labels) {
            genc_fail(err, "model %s needs labels, and the data set has no labels file", m->name);
            return NULL;
        }
    }
    if (!set_threads(err)) return NULL;
#if defined(__SSE__)
    /* Tiny Adam moments turn denormal after an epoch or so and halve the
     * speed of every step; values below 1e-38 do not matter to training. */
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
    GencTrainer *t = calloc(1, sizeof *t);
    if (!t) return genc_fail(err, "out of memory"), NULL;
    t->model = m;
    t->data = data;
    t->seed = seed;
    t->params = alloc_floats(m->n_params);
    t->grads = alloc_floats(m->n_params);
    t->arena = alloc_floats(m->arena_size);
    t->state = alloc_floats(m->n_state);
    t->step_inputs = calloc((size_t)m->n_steps, sizeof(float **));
    t->opt_m = calloc((size_t)m->n_steps, sizeof(float *));
    t->opt_v = calloc((size_t)m->n_steps, sizeof(float *));
    t->opt_t = calloc((size_t)m->n_steps, sizeof(long));
    t->losses = calloc((size_t)m->n_steps, sizeof(float));
    t->order = data ? calloc((size_t)data->n, sizeof(uint32_t)) : NULL;
    bool ok = t->params && t->grads && t->arena && t->state && t->step_inputs && t->opt_m && t->opt_v && t->opt_t && t->losses &&
              (!data || t->order);
    for (int s = 0; ok && s < m->n_steps; s++) {
        const GencStep *step = &m->steps[s];
        t->step_inputs[s] = calloc((size_t)step->n_inputs + 1, sizeof(float *));
        ok = t->step_inputs[s] != NULL;
        for (int i = 0; ok && i < step->n_inputs; i++) ok = (t->step_inputs[s][i] = alloc_floats(step->inputs[i].size)) != NULL;
        if (ok && genc_optimizer_uses_m(&step->optimizer)) ok = (t->opt_m[s] = alloc_floats(m->n_params)) != NULL;
        if (ok && genc_optimizer_uses_v(&step->optimizer)) ok = (t->opt_v[s] = alloc_floats(m->n_params)) != NULL;
    }
    if (!ok) {
        genc_trainer_free(t);
        return genc_fail(err, "out of memory for model %s", m->name), NULL;
    }
    init_params(t);
    genc_rng_seed(&t->noise, mix(seed, 2));
    genc_trainer_shuffle(t);
    return t;
}

void genc_trainer_free(GencTrainer *t)
{
    if (!t) return;
    for (int s = 0; s < t->model->n_steps; s++) {
        if (t->step_inputs && t->step_inputs[s]) {
            for (int i = 0; i < t->model->steps[s].n_inputs; i++) free(t->step_inputs[s][i]);
            free(t->step_inputs[s]);
        }
        if (t->opt_m) free(t->opt_m[s]);
        if (t->opt_v) free(t->opt_v[s]);
    }
    free(t->step_inputs);
    free(t->opt_m);
    free(t->opt_v);
    free(t->opt_t);
    free(t->losses);
    free(t->order);
    free(t->params);
    free(t->grads);
    free(t->arena);
    free(t->state);
    free(t);
}

void genc_scale_images(const GencModel *m, float *dst, const float *src, size_t n)
{
    float lo = m->image_lo, span = m->image_hi - m->image_lo;
    for (size_t i = 0; i < n; i++) dst[i] = lo + span * src[i];
}

/* Image b of the batch, in the current order, scaled into dst. */
static void copy_image(const GencTrainer *t, float *dst, int b)
{
    const GencDataset *d = t->data;
    size_t pixels = (size_t)d->channels * d->height * d->width;
    genc_scale_images(t->model, dst + (size_t)b * pixels, d->images + (size_t)t->order[t->position + b] * pixels, pixels);
}

/* Copies one batch of images (or labels) in the current order into dst.
 * Every thread copies a share of the images: the reads are scattered over
 * the data set, ~30 us for 64 Fashion-MNIST images on one thread. */
static void copy_batch(const GencTrainer *t, float *dst, bool labels)
{
    int batch = t->model->batch;
    if (labels) {
        for (int b = 0; b < batch; b++) dst[b] = t->data->labels[t->order[t->position + b]];
    } else if (omp_get_max_threads() > 1) { /* a team of one would allocate on every step */
#pragma omp parallel for schedule(static)
        for (int b = 0; b < batch; b++) copy_image(t, dst, b);
    } else {
        for (int b = 0; b < batch; b++) copy_image(t, dst, b);
    }
}

/* Thread `me` of `team` updates the same slice of every tensor of step s each
 * time, so its slice of the optimizer's m and v stays in its own core's cache
 * (one thread updating it all ran 2-5x slower on 2 cores than on 1: every m, v
 * and gradient line crossed between the cores). A slice is a band of the
 * tensor's rows (its first dimension) as genc_band cuts them, the band of
 * output features whose gradient the same thread computed in a dense layer's
 * backward pass; bands are multiples of 16 rows, so two threads rarely share a
 * cache line. */
static void update_slice(GencTrainer *t, int s, long n, int me, int team)
{
    const GencStep *step = &t->model->steps[s];
    for (int k = 0; k < step->n_params; k++) {
        const GencParam *p = &t->model->params[step->params[k]];
        int rows = p->rank > 0 ? p->shape[0] : 1, lo, n_rows;
        genc_band(me, team, rows, &lo, &n_rows);
        if (n_rows == 0) continue;
        size_t row = p->size / (size_t)rows, at = p->offset + (size_t)lo * row;
        genc_optimizer_update(&step->optimizer, n, t->params + at, t->grads + at,
                              t->opt_m[s] ? t->opt_m[s] + at : NULL, t->opt_v[s] ? t->opt_v[s] + at : NULL,
                              (size_t)n_rows * row);
    }
}

void genc_trainer_iteration(GencTrainer *t)
{
    const GencModel *m = t->model;
    if (t->data && t->position + m->batch > t->data->n) { /* the last partial batch is dropped */
        t->epoch++;
        t->position = 0;
        genc_trainer_shuffle(t);
    }
    for (int s = 0; s < m->n_steps; s++) {
        const GencStep *step = &m->steps[s];
        float **inputs = t->step_inputs[s];
        for (int i = 0; i < step->n_inputs; i++) {
            const GencInput *in = &step->inputs[i];
            switch (in->kind) {
            case GENC_INPUT_IMAGES: copy_batch(t, inputs[i], false); break;
            case GENC_INPUT_LABELS: copy_batch(t, inputs[i], true); break;
            case GENC_INPUT_NORMAL: genc_rng_fill_normal(&t->noise, inputs[i], in->size); break;
            case GENC_INPUT_UNIFORM: genc_rng_fill_uniform(&t->noise, inputs[i], in->size, in->lo, in->hi); break;
            case GENC_INPUT_CALLER: break;
            }
        }
        step->run(t->params, t->state, t->grads, t->arena, (const float *const *)inputs, &t->losses[s]);
        long n = ++t->opt_t[s];
        if (omp_get_max_threads() > 1) { /* a team of one would allocate on every step */
#pragma omp parallel
            update_slice(t, s, n, omp_get_thread_num(), omp_get_num_threads());
        } else {
            update_slice(t, s, n, 0, 1);
        }
    }
    if (t->data) t->position += m->batch;
    t->iteration++;
}

const float *genc_trainer_losses(const GencTrainer *t) { return t->losses; }
float *genc_trainer_params(GencTrainer *t) { return t->params; }
long genc_trainer_iterations(const GencTrainer *t) { return t->iteration; }
int genc_trainer_epoch(const GencTrainer *t) { return t->epoch; }

void genc_trainer_forward(GencTrainer *t, const GencFunction *f, const float *const *inputs, float *const *outputs)
{
    f->run(t->params, t->state, t->arena, inputs, outputs);
}

const GencFunction *genc_model_function(const GencModel *m, const char *name)
{
    for (int i = 0; i < m->n_functions; i++)
        if (strcmp(m->functions[i].name, name) == 0) return &m->functions[i];
    return NULL;
}

/* ---- the <model>_train command line --------------------------------------------- */

typedef enum { CMD_TRAIN, CMD_SAMPLE, CMD_EXPLORE, CMD_VERIFY } Command;

typedef struct {
    Command command;
    const char *data_dir, *out_dir, *weights, *output, *reference;
    GencVerify verify;
    long steps;
    int epochs, subset, samples;
    long checkpoint_every;
    uint64_t seed;
    bool resume;
    GencExplore explore;
} Options;

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = sig; }

static void usage(const GencModel *m, FILE *out)
{
    fprintf(out,
            "usage: %s_train [train] [--data DIR] [--epochs N | --steps N] [--seed S] [--out DIR]\n"
            "                [--resume] [--subset N] [--checkpoint-every N]\n"
            "       %s_train sample --weights FILE [-n N] [--seed S] -o GRID.png\n"
            "       %s_train explore MODE --weights FILE [--seed S] [--rows R] [--cols C] [--label K]\n"
            "                [--step X] [--range X] [--data DIR] -o GRID.png\n"
            "\n"
            "  --data DIR      IDX data folder (default /usr/share/datasets/fashion-mnist)\n"
            "  --epochs N      passes over the data (default 1); --steps N counts iterations\n"
            "  --seed S        seed of initialisation, shuffle and noise (default 1)\n"
            "  --out DIR       output folder (default runs/%s)\n"
            "  --resume        continue DIR/checkpoint.safetensors exactly\n"
            "  --subset N      use the first N images only\n"
            "  --checkpoint-every N  also checkpoint every N iterations (default: each epoch)\n"
            "  explore modes: lerp, slerp, walk, classes, traverse, reconstruct (see genc explore --help)\n"
            "       %s_train verify --reference FILE [--rtol R] [--atol A]   (see genc verify --help)\n",
            m->name, m->name, m->name, m->name, m->name);
}

static int bad_option(const GencModel *m, const char *msg, const char *arg)
{
    fprintf(stderr, "%s_train: %s%s%s\n\n", m->name, msg, arg ? " " : "", arg ? arg : "");
    usage(m, stderr);
    return 2;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, double lo, double hi, float *out)
{
    if (!s) return false;
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= lo && v <= hi)) return false;
    *out = (float)v;
    return true;
}

static int parse_options(const GencModel *m, int argc, char **argv, Options *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        GencExplore *e = &o->explore;
        if (strcmp(a, "--data") == 0 && v) o->data_dir = argv[++i];
        else if (strcmp(a, "--out") == 0 && v) o->out_dir = argv[++i];
        else if (strcmp(a, "--weights") == 0 && v) o->weights = argv[++i];
        else if (strcmp(a, "-o") == 0 && v) o->output = argv[++i];
        else if (strcmp(a, "--resume") == 0) o->resume = true;
        else if (strcmp(a, "--reference") == 0 && v) o->reference = argv[++i];
        else if (strcmp(a, "--rtol") == 0 || strcmp(a, "--atol") == 0) {
            float x;
            if (!parse_float(v, 0, 1e30, &x)) return bad_option(m, "--rtol and --atol take a non-negative number", NULL);
            *(a[2] == 'r' ? &o->verify.rtol : &o->verify.atol) = x, i++;
        }
        else if (strcmp(a, "--seed") == 0) {
            if (!parse_long(v, 0, (long)(~0ul >> 1), &n)) return bad_option(m, "--seed needs a non-negative integer", NULL);
            o->seed = (uint64_t)n, i++;
        } else if (strcmp(a, "--steps") == 0) {
            if (!parse_long(v, 1, 1L << 40, &n)) return bad_option(m, "--steps needs a positive integer", NULL);
            o->steps = n, i++;
        } else if (strcmp(a, "--epochs") == 0) {
            if (!parse_long(v, 1, 1 << 20, &n)) return bad_option(m, "--epochs needs a positive integer", NULL);
            o->epochs = (int)n, i++;
        } else if (strcmp(a, "--subset") == 0) {
            if (!parse_long(v, 1, 1 << 30, &n)) return bad_option(m, "--subset needs a positive integer", NULL);
            o->subset = (int)n, i++;
        } else if (strcmp(a, "-n") == 0) {
            if (!parse_long(v, 1, 1 << 16, &n)) return bad_option(m, "-n needs a positive integer", NULL);
            o->samples = (int)n, i++;
        } else if (strcmp(a, "--rows") == 0 || strcmp(a, "--cols") == 0) {
            if (!parse_long(v, 1, 256, &n)) return bad_option(m, "--rows and --cols take 1 to 256", NULL);
            *(a[2] == 'r' ? &e->rows : &e->cols) = (int)n, i++;
        } else if (strcmp(a, "--label") == 0) {
            if (!parse_long(v, 0, 65535, &n)) return bad_option(m, "--label needs a class index", NULL);
            e->label = (int)n, i++;
        } else if (strcmp(a, "--step") == 0) {
            if (!parse_float(v, 0, 1, &e->step)) return bad_option(m, "--step takes a number in [0, 1]", NULL);
            i++;
        } else if (strcmp(a, "--range") == 0) {
            if (!parse_float(v, 0, 1e3, &e->range)) return bad_option(m, "--range takes a positive number", NULL);
            i++;
        } else if (strcmp(a, "--checkpoint-every") == 0) {
            if (!parse_long(v, 1, 1L << 40, &n)) return bad_option(m, "--checkpoint-every needs a positive integer", NULL);
            o->checkpoint_every = n, i++;
        } else return bad_option(m, "unknown or incomplete option", a);
    }
    if (o->command == CMD_TRAIN && o->steps && o->epochs) return bad_option(m, "give --epochs or --steps, not both", NULL);
    if (o->command == CMD_VERIFY) return o->reference ? 0 : bad_option(m, "verify needs --reference FILE", NULL);
    if (o->command != CMD_TRAIN && (!o->weights || !o->output))
        return bad_option(m, "sample and explore need --weights FILE and -o GRID.png", NULL);
    return 0;
}

static int make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(path, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* Runs the sample network on N(0,1) draws from seed; writes n images to path.
 * A conditional model gets one row per class (n rounded to whole rows). */
static int write_samples(GencTrainer *t, const char *path, int n, uint64_t seed, GencError *err)
{
    const GencModel *m = t->model;
    size_t per_image = (size_t)m->image_channels * m->image_height * m->image_width, latent = genc_latent_size(m);
    bool labelled = genc_sample_takes_labels(m);
    int cols = (int)ceil(sqrt((double)n));
    if (labelled) {
        cols = (n + m->classes - 1) / m->classes;
        n = cols * m->classes;
    }
    float *z = alloc_floats(latent * (size_t)n), *labels = alloc_floats((size_t)n),
          *out = alloc_floats(per_image * (size_t)n);
    int rc = -1;
    if (!z || !labels || !out) {
        genc_fail(err, "out of memory");
        goto done;
    }
    GencRng rng;
    genc_rng_seed(&rng, seed);
    genc_rng_fill_normal(&rng, z, latent * (size_t)n);
    for (int i = 0; i < n; i++) labels[i] = (float)(i / cols);
    if (genc_sample_images(t, n, z, labelled ? labels : NULL, out, err) == 0)
        rc = genc_png_write_grid(path, out, n, m->image_channels, m->image_height, m->image_width, cols, m->image_lo,
                                 m->image_hi, err);
done:
    free(z);
    free(labels);
    free(out);
    return rc;
}

/* Originals (top half) above their reconstructions (bottom half). */
static int write_reconstructions(GencTrainer *t, const GencDataset *data, const char *path, GencError *err)
{
    const GencModel *m = t->model;
    const GencFunction *f = m->reconstruct;
    size_t per_image = (size_t)m->image_channels * m->image_height * m->image_width;
    if (f->n_inputs != 1 || f->inputs[0].kind != GENC_INPUT_IMAGES || f->output_sizes[0] != per_image * m->batch)
        return genc_fail(err, "%s: reconstruct must map data.images to images", path);
    int n = m->batch < 32 ? m->batch : 32;
    float *in = alloc_floats(per_image * m->batch), *out = alloc_floats(per_image * m->batch),
          *grid = alloc_floats(per_image * 2 * (size_t)n);
    int rc = -1;
    if (!in || !out || !grid) {
        genc_fail(err, "out of memory");
        goto done;
    }
    genc_scale_images(m, in, data->images, per_image * (size_t)m->batch);
    genc_trainer_forward(t, f, (const float *const[]){in}, (float *const[]){out});
    memcpy(grid, in, per_image * (size_t)n * sizeof(float));
    memcpy(grid + per_image * (size_t)n, out, per_image * (size_t)n * sizeof(float));
    rc = genc_png_write_grid(path, grid, 2 * n, m->image_channels, m->image_height, m->image_width, 8, m->image_lo,
                             m->image_hi, err);
done:
    free(in);
    free(out);
    free(grid);
    return rc;
}

static int write_pictures(GencTrainer *t, const GencDataset *data, const Options *o, GencError *err)
{
    int rc = 0;
    if (t->model->sample) {
        char *path = join(o->out_dir, "samples.png");
        int n = genc_sample_takes_labels(t->model) ? 10 * t->model->classes : 64; /* ten of each class */
        rc |= path ? write_samples(t, path, n, o->seed + 7, err) : -1;
        free(path);
    }
    if (t->model->reconstruct && rc == 0) {
        char *path = join(o->out_dir, "reconstructions.png");
        rc |= path ? write_reconstructions(t, data, path, err) : -1;
        free(path);
    }
    return rc;
}

static int run_sample(const GencModel *m, const Options *o)
{
    GencError err;
    if (!m->sample) {
        fprintf(stderr, "%s_train: model %s has no sample network (set `sample = net` in the spec)\n", m->name, m->name);
        return 1;
    }
    GencTrainer *t = genc_trainer_new(m, NULL, o->seed, &err);
    int rc = !t || genc_checkpoint_load(t, o->weights, true, &err) ||
             write_samples(t, o->output, o->samples ? o->samples : 64, o->seed, &err);
    if (rc) fprintf(stderr, "%s_train: %s\n", m->name, err.msg);
    else printf("wrote %d samples to %s\n", o->samples ? o->samples : 64, o->output);
    genc_trainer_free(t);
    return rc ? 1 : 0;
}

static int run_training(const GencModel *m, Options *o)
{
    GencError err;
    GencDataset data = {0};
    GencTrainer *t = NULL;
    FILE *log = NULL;
    char *ckpt = NULL, *log_path = NULL;
    int rc = 1;
    const char *step_names[16];
    for (int s = 0; s < m->n_steps && s < 16; s++) step_names[s] = m->steps[s].name;

    if (make_dirs(o->out_dir) != 0) {
        fprintf(stderr, "%s_train: cannot create %s: %s\n", m->name, o->out_dir, strerror(errno));
        return 1;
    }
    ckpt = join(o->out_dir, "checkpoint.safetensors");
    log_path = join(o->out_dir, "log.csv");
    if (!ckpt || !log_path) goto done;
    if (!o->resume && access(ckpt, F_OK) == 0) {
        fprintf(stderr, "%s_train: %s exists; pass --resume to continue it, or choose another --out\n", m->name, ckpt);
        goto done;
    }
    if (o->resume && access(ckpt, F_OK) != 0) {
        fprintf(stderr, "%s_train: nothing to resume: %s does not exist\n", m->name, ckpt);
        goto done;
    }
    if (genc_dataset_load(o->data_dir, "train", o->subset, &data, &err) != 0 ||
        !(t = genc_trainer_new(m, &data, o->seed, &err)) ||
        (o->resume && genc_checkpoint_load(t, ckpt, false, &err) != 0)) {
        fprintf(stderr, "%s_train: %s\n", m->name, err.msg);
        goto done;
    }
    long per_epoch = data.n / m->batch;
    long total = o->steps ? o->steps : (long)(o->epochs ? o->epochs : 1) * per_epoch;
    if (t->iteration >= total) {
        printf("%s: already at iteration %ld of %ld; nothing to do\n", m->name, t->iteration, total);
        rc = 0;
        goto done;
    }
    bool new_log = access(log_path, F_OK) != 0;
    log = fopen(log_path, "a");
    if (!log) {
        fprintf(stderr, "%s_train: cannot write %s: %s\n", m->name, log_path, strerror(errno));
        goto done;
    }
    if (new_log) {
        fprintf(log, "iteration,epoch");
        for (int s = 0; s < m->n_steps; s++) fprintf(log, ",loss_%s", m->steps[s].name);
        fprintf(log, ",images_per_second\n");
    }
    printf("%s: %zu parameters, %d images, batch %d, iterations %ld..%ld, output in %s\n", m->name, m->n_params,
           data.n, m->batch, t->iteration, total, o->out_dir);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    GencProgress progress;
    genc_progress_start(&progress, stdout, t->iteration, total);
    double last_log_time = genc_now();
    long last_log_iteration = t->iteration;
    while (t->iteration < total && !interrupted) {
        int epoch_before = t->epoch;
        genc_trainer_iteration(t);
        bool epoch_done = t->position + m->batch > data.n;
        for (int s = 0; s < m->n_steps; s++)
            if (!isfinite(t->losses[s])) {
                fprintf(stderr, "\n%s_train: the loss of step %s is %f at iteration %ld; stopping (the last checkpoint "
                        "is kept)\n", m->name, m->steps[s].name, t->losses[s], t->iteration);
                goto done;
            }
        if (t->iteration % 100 == 0 || t->iteration == total || epoch_done) {
            double now = genc_now();
            double rate = (t->iteration - last_log_iteration) * m->batch / (now - last_log_time + 1e-9);
            fprintf(log, "%ld,%d", t->iteration, epoch_before);
            for (int s = 0; s < m->n_steps; s++) fprintf(log, ",%.6g", t->losses[s]);
            fprintf(log, ",%.1f\n", rate);
            fflush(log);
            last_log_time = now;
            last_log_iteration = t->iteration;
        }
        genc_progress_update(&progress, t->iteration, t->epoch, m->n_steps < 16 ? m->n_steps : 16, step_names,
                             t->losses, m->batch, t->iteration == total);
        bool periodic = o->checkpoint_every && t->iteration % o->checkpoint_every == 0;
        if (epoch_done || periodic) {
            if (genc_checkpoint_save(t, ckpt, &err) != 0 || (epoch_done && write_pictures(t, &data, o, &err) != 0)) {
                fprintf(stderr, "\n%s_train: %s\n", m->name, err.msg);
                goto done;
            }
        }
    }
    genc_progress_finish(&progress);
    if (genc_checkpoint_save(t, ckpt, &err) != 0 || write_pictures(t, &data, o, &err) != 0) {
        fprintf(stderr, "%s_train: %s\n", m->name, err.msg);
        goto done;
    }
    if (interrupted) {
        printf("interrupted at iteration %ld; saved %s (continue with --resume)\n", t->iteration, ckpt);
        rc = 130;
        goto done;
    }
    printf("done: iteration %ld; checkpoint %s", t->iteration, ckpt);
    if (m->sample) printf(", samples %s/samples.png", o->out_dir);
    if (m->reconstruct) printf(", reconstructions %s/reconstructions.png", o->out_dir);
    printf("\n");
    rc = 0;
done:
    if (log) fclose(log);
    free(ckpt);
    free(log_path);
    genc_trainer_free(t);
    genc_dataset_free(&data);
    return rc;
}

static int run_explore(const GencModel *m, const Options *o)
{
    GencError err;
    GencDataset data = {0};
    GencGrid grid = {0};
    GencExplore e = o->explore;
    e.seed = o->seed;
    e.data = &data;
    GencTrainer *t = genc_trainer_new(m, NULL, o->seed, &err);
    int rc = !t || genc_checkpoint_load(t, o->weights, true, &err) ||
             (e.mode == GENC_EXPLORE_RECONSTRUCT && genc_dataset_load(o->data_dir, "t10k", 0, &data, &err)) ||
             genc_explore(t, &e, &grid, &err) ||
             genc_png_write_grid(o->output, grid.images, grid.rows * grid.cols, m->image_channels, m->image_height,
                                 m->image_width, grid.cols, m->image_lo, m->image_hi, &err);
    if (rc) fprintf(stderr, "%s_train: %s\n", m->name, err.msg);
    else printf("wrote %d x %d images to %s\n", grid.rows, grid.cols, o->output);
    genc_grid_free(&grid);
    genc_dataset_free(&data);
    genc_trainer_free(t);
    return rc ? 1 : 0;
}

static int run_verify(const GencModel *m, Options *o)
{
    GencError err;
    GencSafetensors ref;
    if (genc_safetensors_read(o->reference, &ref, &err)) {
        fprintf(stderr, "%s_train: %s\n", m->name, err.msg);
        return 1;
    }
    GencTrainer *t = genc_trainer_new(m, NULL, 1, &err);
    o->verify.report = stdout;
    int rc = !t || genc_verify(t, &ref, o->reference, &o->verify, &err);
    if (rc) fprintf(stderr, "%s_train: %s\n", m->name, err.msg);
    else if (o->verify.failed)
        printf("%d of %d tensors beyond rtol %g, atol %g\n", o->verify.failed, o->verify.checked, o->verify.rtol,
               o->verify.atol);
    else
        printf("all %d tensors within rtol %g, atol %g\n", o->verify.checked, o->verify.rtol, o->verify.atol);
    genc_trainer_free(t);
    genc_safetensors_free(&ref);
    return rc || o->verify.failed ? 1 : 0;
}

int genc_train_main(const GencModel *m, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return usage(m, stdout), 0;
    static char default_out[256];
    snprintf(default_out, sizeof default_out, "runs/%s", m->name);
    Options o = {.data_dir = "/usr/share/datasets/fashion-mnist", .out_dir = default_out, .seed = 1,
                 .explore = {.label = -1, .step = 0.3f, .range = 3}, .verify = {.rtol = 1e-4, .atol = 1e-6}};
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "train") == 0) first = 2;
    else if (argc > 1 && strcmp(argv[1], "sample") == 0) o.command = CMD_SAMPLE, first = 2;
    else if (argc > 1 && strcmp(argv[1], "verify") == 0) o.command = CMD_VERIFY, first = 2;
    else if (argc > 1 && strcmp(argv[1], "explore") == 0) {
        o.command = CMD_EXPLORE, first = 3;
        if (argc < 3 || !genc_explore_mode(argv[2], &o.explore.mode))
            return bad_option(m, "explore needs a mode: lerp, slerp, walk, classes, traverse or reconstruct",
                              argc > 2 ? argv[2] : NULL);
    }
    int rc = parse_options(m, argc - first, argv + first, &o);
    if (rc) return rc;
    switch (o.command) {
    case CMD_SAMPLE: return run_sample(m, &o);
    case CMD_EXPLORE: return run_explore(m, &o);
    case CMD_VERIFY: return run_verify(m, &o);
    default: return run_training(m, &o);
    }
}
