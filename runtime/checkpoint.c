/* checkpoint.c — the trainer's whole state in one safetensors file:
 * parameters ("param/<name>"), running statistics ("state/<name>"),
 * optimizer moments ("optimizer/<step>/m|v/<name>"),
 * and in the metadata the format, version, model, position in the data, the
 * optimizers' step counts and the noise generator's state. A load checks all
 * of it before it changes anything. */
#define _POSIX_C_SOURCE 200809L
#include "trainer_state.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CHECKPOINT_FORMAT "genc-checkpoint"
#define CHECKPOINT_VERSION "1"

enum { MAX_META = 64, NAME_LEN = 256 };

typedef struct {
    GencTensorOut *tensors;
    char (*names)[NAME_LEN];
    int n;
} TensorList;

static void add_tensor(TensorList *l, const char *prefix, const GencParam *p, const float *data)
{
    GencTensorOut *t = &l->tensors[l->n];
    snprintf(l->names[l->n], NAME_LEN, "%s%s", prefix, p->name);
    t->name = l->names[l->n];
    t->rank = p->rank;
    for (int d = 0; d < p->rank; d++) t->shape[d] = p->shape[d];
    t->data = data + p->offset;
    l->n++;
}

int genc_checkpoint_save(const GencTrainer *t, const char *path, GencError *err)
{
    const GencModel *m = t->model;
    int max = m->n_param_tensors * (1 + 2 * m->n_steps) + m->n_state_tensors + 1;
    TensorList l = {calloc((size_t)max, sizeof(GencTensorOut)), calloc((size_t)max, NAME_LEN), 0};
    if (!l.tensors || !l.names) {
        free(l.tensors);
        free(l.names);
        return genc_fail(err, "%s: out of memory", path);
    }
    for (int i = 0; i < m->n_param_tensors; i++) add_tensor(&l, "param/", &m->params[i], t->params);
    for (int i = 0; i < m->n_state_tensors; i++) add_tensor(&l, "state/", &m->state[i], t->state);
    char prefix[NAME_LEN];
    for (int s = 0; s < m->n_steps; s++) {
        const GencStep *step = &m->steps[s];
        for (int k = 0; k < step->n_params; k++) {
            const GencParam *p = &m->params[step->params[k]];
            if (t->opt_m[s]) {
                snprintf(prefix, sizeof prefix, "optimizer/%s/m/", step->name);
                add_tensor(&l, prefix, p, t->opt_m[s]);
            }
            if (t->opt_v[s]) {
                snprintf(prefix, sizeof prefix, "optimizer/%s/v/", step->name);
                add_tensor(&l, prefix, p, t->opt_v[s]);
            }
        }
    }
    char values[MAX_META][128], keys[MAX_META][64];
    const char *meta[2 * MAX_META];
    int n = 0;
#define META(key, ...)                                                \
    do {                                                              \
        snprintf(keys[n], sizeof keys[n], "%s", key);                 \
        snprintf(values[n], sizeof values[n], __VA_ARGS__);           \
        meta[2 * n] = keys[n], meta[2 * n + 1] = values[n], n++;      \
    } while (0)
    META("format", CHECKPOINT_FORMAT);
    META("version", CHECKPOINT_VERSION);
    META("model", "%s", m->name);
    META("iteration", "%ld", t->iteration);
    META("epoch", "%d", t->epoch);
    META("position", "%d", t->position);
    META("seed", "%" PRIu64, t->seed);
    META("rng", "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, t->noise.s[0], t->noise.s[1], t->noise.s[2],
         t->noise.s[3]);
    for (int s = 0; s < m->n_steps && n < MAX_META; s++) {
        char key[64];
        snprintf(key, sizeof key, "optimizer/%s/t", m->steps[s].name);
        META(key, "%ld", t->opt_t[s]);
    }
#undef META
    int rc = genc_safetensors_write(path, l.tensors, l.n, meta, n, err);
    free(l.tensors);
    free(l.names);
    return rc;
}

static int meta_long(const GencSafetensors *st, const char *path, const char *key, long lo, long hi, long *out,
                     GencError *err)
{
    const char *v = genc_safetensors_meta(st, key);
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || end == v || x < lo || x > hi)
        return genc_fail(err, "%s: checkpoint metadata '%s' is missing or out of range", path, key);
    *out = x;
    return 0;
}

const GencTensorIn *genc_checkpoint_tensor(const GencSafetensors *st, const char *path, const char *name, int rank,
                                          const int *shape, GencError *err)
{
    const GencTensorIn *t = genc_safetensors_find(st, name);
    if (!t) {
        genc_fail(err, "%s: no tensor '%s' (a checkpoint of another model, or of an older spec?)", path, name);
        return NULL;
    }
    bool same = t->rank == rank;
    for (int d = 0; same && d < rank; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char want[64] = "", got[64] = "";
        for (int d = 0; d < rank; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? "," : "", shape[d]);
        for (int d = 0; d < t->rank; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
        genc_fail(err, "%s: tensor '%s' has shape [%s]; the model needs [%s]", path, name, got, want);
        return NULL;
    }
    return t;
}

static const GencTensorIn *find_like(const GencSafetensors *st, const char *path, const char *name,
                                     const GencParam *p, GencError *err)
{
    return genc_checkpoint_tensor(st, path, name, p->rank, p->shape, err);
}

int genc_checkpoint_open(const char *path, const char *model_name, GencSafetensors *st, GencError *err)
{
    if (genc_safetensors_read(path, st, err)) return -1;
    const char *format = genc_safetensors_meta(st, "format"), *version = genc_safetensors_meta(st, "version");
    const char *model = genc_safetensors_meta(st, "model");
    if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0)
        genc_fail(err, "%s: not a genc checkpoint (no format '%s' in its metadata)", path, CHECKPOINT_FORMAT);
    else if (!version || strcmp(version, CHECKPOINT_VERSION) != 0)
        genc_fail(err, "%s: checkpoint version %s; this genc reads version %s", path, version ? version : "?",
                  CHECKPOINT_VERSION);
    else if (!model || strcmp(model, model_name) != 0)
        genc_fail(err, "%s: a checkpoint of model '%s', not '%s'", path, model ? model : "?", model_name);
    else
        return 0;
    genc_safetensors_free(st);
    return -1;
}

int genc_checkpoint_load(GencTrainer *t, const char *path, bool weights_only, GencError *err)
{
    const GencModel *m = t->model;
    GencSafetensors st;
    if (genc_checkpoint_open(path, m->name, &st, err)) return -1;
    int rc = -1;
    /* Check everything first, so that a bad file changes nothing. */
    const GencTensorIn **found =
        calloc((size_t)m->n_param_tensors * (1 + 2 * (size_t)m->n_steps) + (size_t)m->n_state_tensors + 1, sizeof *found);
    if (!found) {
        genc_fail(err, "out of memory");
        goto done;
    }
    int nf = 0;
    char name[NAME_LEN];
    for (int i = 0; i < m->n_param_tensors; i++) {
        snprintf(name, sizeof name, "param/%s", m->params[i].name);
        if (!(found[nf++] = find_like(&st, path, name, &m->params[i], err))) goto free_found;
    }
    for (int i = 0; i < m->n_state_tensors; i++) { /* inference needs running statistics too */
        snprintf(name, sizeof name, "state/%s", m->state[i].name);
        if (!(found[nf++] = find_like(&st, path, name, &m->state[i], err))) goto free_found;
    }
    long iteration = 0, epoch = 0, position = 0, *opt_t = NULL;
    GencRng rng = t->noise;
    if (!weights_only) {
        opt_t = calloc((size_t)m->n_steps + 1, sizeof(long));
        if (!opt_t) {
            genc_fail(err, "out of memory");
            goto free_found;
        }
        int data_n = t->data ? t->data->n : 0;
        if (meta_long(&st, path, "iteration", 0, 1L << 50, &iteration, err) ||
            meta_long(&st, path, "epoch", 0, 1L << 30, &epoch, err) ||
            meta_long(&st, path, "position", 0, data_n, &position, err))
            goto free_opt;
        for (int s = 0; s < m->n_steps; s++) {
            const GencStep *step = &m->steps[s];
            snprintf(name, sizeof name, "optimizer/%s/t", step->name);
            if (meta_long(&st, path, name, 0, 1L << 50, &opt_t[s], err)) goto free_opt;
            for (int k = 0; k < step->n_params; k++) {
                const GencParam *p = &m->params[step->params[k]];
                const char *moments[2] = {t->opt_m[s] ? "m" : NULL, t->opt_v[s] ? "v" : NULL};
                for (int j = 0; j < 2; j++) {
                    if (!moments[j]) continue;
                    snprintf(name, sizeof name, "optimizer/%s/%s/%s", step->name, moments[j], p->name);
                    if (!(found[nf++] = find_like(&st, path, name, p, err))) goto free_opt;
                }
            }
        }
        const char *hex = genc_safetensors_meta(&st, "rng");
        if (!hex || strlen(hex) != 64) {
            genc_fail(err, "%s: checkpoint metadata 'rng' is missing or malformed", path);
            goto free_opt;
        }
        for (int i = 0; i < 4; i++) {
            char part[17];
            memcpy(part, hex + 16 * i, 16);
            part[16] = 0;
            char *end;
            rng.s[i] = strtoull(part, &end, 16);
            if (*end) {
                genc_fail(err, "%s: checkpoint metadata 'rng' is malformed", path);
                goto free_opt;
            }
        }
    }
    /* All present and well-shaped: now copy. */
    nf = 0;
    for (int i = 0; i < m->n_param_tensors; i++)
        memcpy(t->params + m->params[i].offset, found[nf++]->data, m->params[i].size * sizeof(float));
    for (int i = 0; i < m->n_state_tensors; i++)
        memcpy(t->state + m->state[i].offset, found[nf++]->data, m->state[i].size * sizeof(float));
    if (!weights_only) {
        for (int s = 0; s < m->n_steps; s++) {
            const GencStep *step = &m->steps[s];
            for (int k = 0; k < step->n_params; k++) {
                const GencParam *p = &m->params[step->params[k]];
                if (t->opt_m[s]) memcpy(t->opt_m[s] + p->offset, found[nf++]->data, p->size * sizeof(float));
                if (t->opt_v[s]) memcpy(t->opt_v[s] + p->offset, found[nf++]->data, p->size * sizeof(float));
            }
            t->opt_t[s] = opt_t[s];
        }
        t->iteration = iteration;
        t->epoch = (int)epoch;
        t->position = (int)position;
        t->noise = rng;
        genc_trainer_shuffle(t);
    }
    rc = 0;
free_opt:
    free(opt_t);
free_found:
    free(found);
done:
    genc_safetensors_free(&st);
    return rc;
}
