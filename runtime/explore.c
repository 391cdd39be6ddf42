/* explore.c — pictures of a trained model's latent space: samples from given
 * latent points (and labels), interpolations, walks, class grids, traversals
 * and reconstructions, each as a grid of images in memory. */
#include "trainer_state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const GencInput *input_of(const GencFunction *f, GencInputKind kind)
{
    for (int i = 0; i < f->n_inputs; i++)
        if (f->inputs[i].kind == kind) return &f->inputs[i];
    return NULL;
}

/* The sample function's latent input: a net's caller input, or the noise an
 * expression draws (the compiler allows exactly one). */
static const GencInput *latent_of(const GencFunction *f)
{
    const GencInput *in = input_of(f, GENC_INPUT_CALLER);
    return in ? in : input_of(f, GENC_INPUT_NORMAL);
}

size_t genc_latent_size(const GencModel *m)
{
    const GencInput *in = m->sample ? latent_of(m->sample) : NULL;
    return in ? in->size / (size_t)m->batch : 0;
}

bool genc_sample_takes_labels(const GencModel *m) { return m->sample && input_of(m->sample, GENC_INPUT_LABELS); }

int genc_sample_images(GencTrainer *t, int n, const float *z, const float *labels, float *out, GencError *err)
{
    const GencModel *m = t->model;
    const GencFunction *f = m->sample;
    size_t per_image = (size_t)m->image_channels * m->image_height * m->image_width;
    size_t latent = genc_latent_size(m), batch = (size_t)m->batch;
    if (!f || !latent) return genc_fail(err, "model %s has no sample network", m->name);
    if (f->n_outputs != 1 || f->output_sizes[0] != per_image * batch)
        return genc_fail(err, "model %s: the sample network's output is not an image of the data's shape", m->name);
    if (genc_sample_takes_labels(m) && !labels)
        return genc_fail(err, "model %s samples from a class label; none given", m->name);
    float *in_z = calloc(latent * batch, sizeof(float)), *in_y = calloc(batch, sizeof(float)),
          *dst = calloc(per_image * batch, sizeof(float));
    const float **inputs = calloc((size_t)f->n_inputs, sizeof(float *));
    int rc = 0;
    if (!in_z || !in_y || !dst || !inputs) rc = genc_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < f->n_inputs; i++)
        inputs[i] = f->inputs[i].kind == GENC_INPUT_LABELS ? in_y : in_z;
    /* In runs of the compiled batch; the last run is padded with zeros. */
    for (int first = 0; rc == 0 && first < n; first += m->batch) {
        int count = n - first < m->batch ? n - first : m->batch;
        memset(in_z, 0, latent * batch * sizeof(float));
        memset(in_y, 0, batch * sizeof(float));
        memcpy(in_z, z + (size_t)first * latent, latent * (size_t)count * sizeof(float));
        if (labels) memcpy(in_y, labels + first, (size_t)count * sizeof(float));
        genc_trainer_forward(t, f, (const float *const *)inputs, (float *const[]){dst});
        memcpy(out + (size_t)first * per_image, dst, per_image * (size_t)count * sizeof(float));
    }
    free(in_z);
    free(in_y);
    free(dst);
    free(inputs);
    return rc;
}

/* Spherical interpolation: the direction turns from a's to b's along the
 * great circle at a constant rate (the angle to a is t·omega) while the
 * length goes linearly from |a| to |b|. t = 0 and t = 1 give a and b exactly. */
static void slerp(float *out, const float *a, const float *b, size_t n, double t)
{
    if (t == 0 || t == 1) {
        memcpy(out, t == 0 ? a : b, n * sizeof(float));
        return;
    }
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    double na = sqrt(aa), nb = sqrt(bb);
    double cosine = na > 0 && nb > 0 ? ab / (na * nb) : 1;
    double omega = acos(cosine < -1 ? -1 : cosine > 1 ? 1 : cosine), s = sin(omega);
    double wa = 1 - t, wb = t; /* nearly parallel: lerp of the unit vectors is as good and stays finite */
    if (s > 1e-6) wa = sin((1 - t) * omega) / s, wb = sin(t * omega) / s;
    double length = (1 - t) * na + t * nb, ua = na > 0 ? 1 / na : 0, ub = nb > 0 ? 1 / nb : 0;
    double norm = 0; /* of wa·â + wb·b̂, 1 up to rounding except in the fallback */
    for (size_t i = 0; i < n; i++) {
        double d = wa * a[i] * ua + wb * b[i] * ub;
        norm += d * d;
    }
    double scale = norm > 0 ? length / sqrt(norm) : 0;
    for (size_t i = 0; i < n; i++) out[i] = (float)(scale * (wa * a[i] * ua + wb * b[i] * ub));
}

static int explore_reconstruct(GencTrainer *t, const GencExplore *o, GencGrid *g, GencError *err)
{
    const GencModel *m = t->model;
    const GencFunction *f = m->reconstruct;
    size_t per_image = (size_t)m->image_channels * m->image_height * m->image_width, batch = (size_t)m->batch;
    if (!f) return genc_fail(err, "model %s has no reconstruct expression", m->name);
    if (!o->data || o->data->n == 0) return genc_fail(err, "reconstruct needs test images (--data)");
    int pairs = g->rows * (g->cols / 2);
    float *in = calloc(per_image * batch, sizeof(float)), *out = calloc(per_image * batch, sizeof(float));
    int rc = in && out ? 0 : genc_fail(err, "out of memory");
    for (int first = 0; rc == 0 && first < pairs; first += m->batch) {
        int count = pairs - first < m->batch ? pairs - first : m->batch;
        memset(in, 0, per_image * batch * sizeof(float));
        for (int k = 0; k < count; k++)
            genc_scale_images(m, in + k * per_image, o->data->images + (size_t)((first + k) % o->data->n) * per_image,
                              per_image);
        genc_trainer_forward(t, f, (const float *const[]){in}, (float *const[]){out});
        for (int k = 0; k < count; k++) { /* test image in an even column, its reconstruction beside it */
            int p = first + k, cell = (p / (g->cols / 2)) * g->cols + 2 * (p % (g->cols / 2));
            memcpy(g->images + (size_t)cell * per_image, in + k * per_image, per_image * sizeof(float));
            memcpy(g->images + (size_t)(cell + 1) * per_image, out + k * per_image, per_image * sizeof(float));
        }
    }
    free(in);
    free(out);
    return rc;
}

/* Fills the grid's latent points and labels for a sampling mode. */
static int place_latents(const GencModel *m, const GencExplore *o, GencGrid *g, GencError *err)
{
    size_t Z = g->latent;
    int R = g->rows, C = g->cols;
    GencRng rng;
    genc_rng_seed(&rng, o->seed);
    float *a = calloc(Z, sizeof(float)), *b = calloc(Z, sizeof(float)), *e = calloc(Z, sizeof(float));
    if (!a || !b || !e) {
        free(a), free(b), free(e);
        return genc_fail(err, "out of memory");
    }
    for (int r = 0; r < R; r++) {
        float *row = g->z + (size_t)r * C * Z;
        switch (o->mode) {
        case GENC_EXPLORE_LERP:
        case GENC_EXPLORE_SLERP:
            genc_rng_fill_normal(&rng, a, Z);
            genc_rng_fill_normal(&rng, b, Z);
            for (int c = 0; c < C; c++) {
                double s = C > 1 ? (double)c / (C - 1) : 0;
                if (o->mode == GENC_EXPLORE_SLERP) slerp(row + c * Z, a, b, Z, s);
                else for (size_t i = 0; i < Z; i++) row[c * Z + i] = (float)((1 - s) * a[i] + s * b[i]);
            }
            break;
        case GENC_EXPLORE_WALK: /* one walk in reading order; each step keeps z distributed as N(0, 1) */
            for (int c = 0; c < C; c++) {
                float *dst = row + c * Z;
                if (r == 0 && c == 0) genc_rng_fill_normal(&rng, dst, Z);
                else {
                    const float *prev = dst - Z;
                    genc_rng_fill_normal(&rng, e, Z);
                    for (size_t i = 0; i < Z; i++) dst[i] = sqrtf(1 - o->step * o->step) * prev[i] + o->step * e[i];
                }
            }
            break;
        case GENC_EXPLORE_CLASSES: /* one z per row, one class per column */
            genc_rng_fill_normal(&rng, a, Z);
            for (int c = 0; c < C; c++) memcpy(row + c * Z, a, Z * sizeof(float)), g->labels[r * C + c] = (float)c;
            break;
        case GENC_EXPLORE_TRAVERSE: /* row r moves latent dimension r from -range to +range around one point */
            if (r == 0) genc_rng_fill_normal(&rng, a, Z);
            for (int c = 0; c < C; c++) {
                memcpy(row + c * Z, a, Z * sizeof(float));
                row[c * Z + (size_t)r] = C > 1 ? -o->range + 2 * o->range * c / (C - 1) : 0;
            }
            break;
        case GENC_EXPLORE_RECONSTRUCT: break;
        }
        if (o->mode != GENC_EXPLORE_CLASSES && g->labels)
            for (int c = 0; c < C; c++) g->labels[r * C + c] = (float)(o->label >= 0 ? o->label : r % m->classes);
    }
    free(a), free(b), free(e);
    return 0;
}

int genc_explore(GencTrainer *t, const GencExplore *o, GencGrid *g, GencError *err)
{
    const GencModel *m = t->model;
    memset(g, 0, sizeof *g);
    size_t per_image = (size_t)m->image_channels * m->image_height * m->image_width;
    bool labelled = genc_sample_takes_labels(m);
    g->latent = genc_latent_size(m);
    g->rows = o->rows > 0 ? o->rows : 8;
    g->cols = o->cols > 0 ? o->cols : 10;
    if (o->mode == GENC_EXPLORE_RECONSTRUCT) {
        g->cols = o->cols > 0 ? o->cols + o->cols % 2 : 8;
    } else {
        if (!g->latent) return genc_fail(err, "model %s has no sample network to explore", m->name);
        if (o->mode == GENC_EXPLORE_CLASSES) {
            if (!labelled) return genc_fail(err, "classes: model %s does not sample from a class label", m->name);
            g->cols = m->classes;
        }
        if (o->mode == GENC_EXPLORE_TRAVERSE) {
            g->rows = o->rows > 0 && (size_t)o->rows < g->latent ? o->rows : (int)g->latent;
            g->cols = o->cols > 0 ? o->cols : 9;
        }
        if (labelled && o->label >= m->classes)
            return genc_fail(err, "--label %d: model %s has classes 0..%d", o->label, m->name, m->classes - 1);
    }
    size_t cells = (size_t)g->rows * g->cols;
    bool sampling = o->mode != GENC_EXPLORE_RECONSTRUCT;
    g->images = calloc(cells * per_image, sizeof(float));
    if (sampling) g->z = calloc(cells * g->latent, sizeof(float));
    if (sampling && labelled) g->labels = calloc(cells, sizeof(float));
    int rc = 0;
    if (!g->images || (sampling && !g->z) || (sampling && labelled && !g->labels))
        rc = genc_fail(err, "out of memory");
    else if (o->mode == GENC_EXPLORE_RECONSTRUCT)
        rc = explore_reconstruct(t, o, g, err);
    else
        rc = place_latents(m, o, g, err) || genc_sample_images(t, (int)cells, g->z, g->labels, g->images, err) ? -1 : 0;
    if (rc) genc_grid_free(g);
    return rc;
}

void genc_grid_free(GencGrid *g)
{
    free(g->images);
    free(g->z);
    free(g->labels);
    memset(g, 0, sizeof *g);
}

bool genc_explore_mode(const char *name, GencExploreMode *mode)
{
    static const char *const names[] = {"lerp", "slerp", "walk", "classes", "traverse", "reconstruct"};
    for (int i = 0; i < 6; i++)
        if (strcmp(name, names[i]) == 0) return *mode = (GencExploreMode)i, true;
    return false;
}
