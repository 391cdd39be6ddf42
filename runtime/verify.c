/* verify.c — a compiled model against reference values (from PyTorch, or
 * from an earlier genc): loads the file's parameters, runs every forward
 * function and step the file has expectations for, and prints a row per
 * tensor with its largest absolute and relative error.
 *
 * A tensor passes when max|got − want| <= atol + rtol · max|want|: the error
 * is judged against the tensor's scale, because element-wise relative error
 * means nothing where a value crosses zero. */
#include "trainer_state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NAME_LEN = GENC_VERIFY_NAME_LEN };

/* Every k-th element of a large tensor may be stored (metadata sampled:<name> = k). */
size_t genc_verify_stride(const GencSafetensors *ref, const char *name)
{
    char key[NAME_LEN + 16];
    snprintf(key, sizeof key, "sampled:%s", name);
    const char *v = genc_safetensors_meta(ref, key);
    long k = v ? strtol(v, NULL, 10) : 1;
    return k > 0 ? (size_t)k : 1;
}

bool genc_verify_tensor(GencVerify *v, const GencSafetensors *ref, const char *name, const float *got, size_t n)
{
    const GencTensorIn *want = genc_safetensors_find(ref, name);
    if (!want) return true;
    size_t k = genc_verify_stride(ref, name);
    bool sized = k == 1 ? want->count == n : want->count <= n && (want->count - 1) * k < n;
    double max_err = 0, scale = 0;
    bool finite = true;
    for (size_t i = 0; sized && i < want->count; i++) {
        double g = got[i * k], w = want->data[i];
        finite &= isfinite(g);
        max_err = fmax(max_err, fabs(g - w));
        scale = fmax(scale, fabs(w));
    }
    bool ok = sized && finite && max_err <= v->atol + v->rtol * scale;
    v->checked++;
    v->failed += !ok;
    if (scale > v->atol && max_err / scale > v->worst_rel) v->worst_rel = max_err / scale; /* not for ~0 tensors */
    if (v->report) {
        if (!sized)
            fprintf(v->report, "%-56s %9zu  size differs: the model computes %zu\n", name, want->count, n);
        else
            fprintf(v->report, "%-56s %9zu  %11.3g  %11.3g  %s%s\n", name, want->count, max_err,
                    scale > 0 ? max_err / scale : max_err, ok ? "ok" : "FAIL", k > 1 ? " (sampled)" : "");
    }
    return ok;
}

const GencTensorIn *genc_verify_step_input(const GencSafetensors *ref, const GencStep *step, int i, char *name)
{
    int mask = 0;
    for (int k = 0; k < i; k++) mask += strncmp(step->inputs[k].name, "dropout_mask", 12) == 0;
    if (strncmp(step->inputs[i].name, "dropout_mask", 12) == 0)
        snprintf(name, NAME_LEN, "input/%s/dropout/%d", step->name, mask);
    else
        snprintf(name, NAME_LEN, "input/%s/%s", step->name, step->inputs[i].name);
    return genc_safetensors_find(ref, name);
}

static int load_block(const GencSafetensors *ref, const char *path, const char *prefix, const GencParam *tensors,
                      int n, float *block, GencError *err)
{
    char name[NAME_LEN];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s/%s", prefix, tensors[i].name);
        const GencTensorIn *t = genc_checkpoint_tensor(ref, path, name, tensors[i].rank, tensors[i].shape, err);
        if (!t) return -1;
        memcpy(block + tensors[i].offset, t->data, tensors[i].size * sizeof(float));
    }
    return 0;
}

int genc_verify_load(GencTrainer *t, const GencSafetensors *ref, const char *path, GencError *err)
{
    const GencModel *m = t->model;
    return load_block(ref, path, "param", m->params, m->n_param_tensors, t->params, err) ||
                   load_block(ref, path, "state", m->state, m->n_state_tensors, t->state, err)
               ? -1
               : 0;
}

static int verify_forward(GencTrainer *t, const GencSafetensors *ref, const char *path, const GencFunction *f,
                          GencVerify *v, GencError *err)
{
    const GencModel *m = t->model;
    /* "generator_forward" is checked as output/generator */
    char net[NAME_LEN / 4], name[NAME_LEN];
    snprintf(net, sizeof net, "%s", f->name);
    char *suffix = strstr(net, "_forward");
    if (suffix) *suffix = 0;
    const float **inputs = calloc((size_t)f->n_inputs + 1, sizeof(float *));
    float **outputs = calloc((size_t)f->n_outputs + 1, sizeof(float *));
    int rc = inputs && outputs ? 0 : genc_fail(err, "out of memory");
    bool complete = true;
    for (int i = 0; rc == 0 && i < f->n_inputs; i++) {
        if (f->n_inputs == 1) snprintf(name, sizeof name, "input/%s", net);
        else snprintf(name, sizeof name, "input/%s/%s", net, f->inputs[i].name);
        const GencTensorIn *in = genc_safetensors_find(ref, name);
        if (!in) complete = false;
        else if (in->count != f->inputs[i].size)
            rc = genc_fail(err, "%s: '%s' has %zu values; at batch %d the model takes %zu", path, name, in->count,
                           m->batch, f->inputs[i].size);
        else inputs[i] = in->data;
    }
    for (int k = 0; rc == 0 && complete && k < f->n_outputs; k++)
        if (!(outputs[k] = calloc(f->output_sizes[k], sizeof(float)))) rc = genc_fail(err, "out of memory");
    if (rc == 0 && complete) {
        genc_trainer_forward(t, f, inputs, outputs);
        for (int k = 0; k < f->n_outputs; k++) {
            if (f->n_outputs == 1) snprintf(name, sizeof name, "output/%s", net);
            else snprintf(name, sizeof name, "output/%s/%s", net, f->output_names[k]);
            genc_verify_tensor(v, ref, name, outputs[k], f->output_sizes[k]);
        }
    }
    for (int k = 0; outputs && k < f->n_outputs; k++) free(outputs[k]);
    free(inputs);
    free(outputs);
    return rc;
}

/* A step at the file's parameters and state; the state is put back after. */
static int verify_step(GencTrainer *t, const GencSafetensors *ref, const char *path, int s, GencVerify *v,
                       GencError *err)
{
    const GencModel *m = t->model;
    const GencStep *step = &m->steps[s];
    char name[NAME_LEN];
    snprintf(name, sizeof name, "loss/%s", step->name);
    if (!genc_safetensors_find(ref, name)) return 0;
    for (int i = 0; i < step->n_inputs; i++) {
        const GencTensorIn *in = genc_verify_step_input(ref, step, i, name);
        if (!in) return genc_fail(err, "%s: no '%s', an input of step %s", path, name, step->name);
        if (in->count != step->inputs[i].size)
            return genc_fail(err, "%s: '%s' has %zu values; at batch %d step %s takes %zu", path, name, in->count,
                             m->batch, step->name, step->inputs[i].size);
        memcpy(t->step_inputs[s][i], in->data, in->count * sizeof(float));
    }
    float *saved = malloc((m->n_state + 1) * sizeof(float));
    if (!saved) return genc_fail(err, "out of memory");
    memcpy(saved, t->state, m->n_state * sizeof(float));
    float loss;
    step->run(t->params, t->state, t->grads, t->arena, (const float *const *)t->step_inputs[s], &loss);
    snprintf(name, sizeof name, "loss/%s", step->name);
    genc_verify_tensor(v, ref, name, &loss, 1);
    for (int k = 0; k < step->n_params; k++) {
        const GencParam *p = &m->params[step->params[k]];
        snprintf(name, sizeof name, "grad/%s/%s", step->name, p->name);
        genc_verify_tensor(v, ref, name, t->grads + p->offset, p->size);
    }
    for (int k = 0; k < m->n_state_tensors; k++) {
        const GencParam *p = &m->state[k];
        snprintf(name, sizeof name, "state_after/%s/%s", step->name, p->name);
        genc_verify_tensor(v, ref, name, t->state + p->offset, p->size);
    }
    memcpy(t->state, saved, m->n_state * sizeof(float));
    free(saved);
    return 0;
}

int genc_verify(GencTrainer *t, const GencSafetensors *ref, const char *path, GencVerify *v, GencError *err)
{
    const GencModel *m = t->model;
    if (genc_verify_load(t, ref, path, err)) return -1;
    if (v->report)
        fprintf(v->report, "%-56s %9s  %11s  %11s\n", "tensor", "elements", "max abs err", "max rel err");
    for (int i = 0; i < m->n_functions; i++)
        if (verify_forward(t, ref, path, &m->functions[i], v, err)) return -1;
    for (int s = 0; s < m->n_steps; s++)
        if (verify_step(t, ref, path, s, v, err)) return -1;
    if (v->checked == 0) return genc_fail(err, "%s: nothing to compare (no output/, loss/ or grad/ tensors)", path);
    return 0;
}
