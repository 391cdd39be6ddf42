/* optim.c — SGD with momentum, Adam and RMSprop, with PyTorch's update rules
 * (torch.optim defaults: no weight decay, no Nesterov, not centered). */
#include "genc_runtime.h"

#include <math.h>

bool genc_optimizer_uses_m(const GencOptimizer *o)
{
    return o->kind == GENC_ADAM || (o->kind == GENC_SGD && o->momentum != 0);
}

bool genc_optimizer_uses_v(const GencOptimizer *o) { return o->kind == GENC_ADAM || o->kind == GENC_RMSPROP; }

void genc_optimizer_update(const GencOptimizer *o, long t, float *param, const float *grad, float *m, float *v,
                           size_t n)
{
    switch (o->kind) {
    case GENC_SGD:
        if (o->momentum == 0) {
            for (size_t i = 0; i < n; i++) param[i] -= o->lr * grad[i];
        } else {
            /* PyTorch starts the buffer at the first gradient: with m = 0 that is
             * what momentum * 0 + g gives. */
            for (size_t i = 0; i < n; i++) {
                m[i] = t == 1 ? grad[i] : o->momentum * m[i] + grad[i];
                param[i] -= o->lr * m[i];
            }
        }
        break;
    case GENC_ADAM: {
        float bias1 = 1 - powf(o->beta1, (float)t), bias2 = 1 - powf(o->beta2, (float)t);
        float step = o->lr / bias1, root_bias2 = sqrtf(bias2);
        for (size_t i = 0; i < n; i++) {
            m[i] = o->beta1 * m[i] + (1 - o->beta1) * grad[i];
            v[i] = o->beta2 * v[i] + (1 - o->beta2) * grad[i] * grad[i];
            param[i] -= step * m[i] / (sqrtf(v[i]) / root_bias2 + o->eps);
        }
        break;
    }
    case GENC_RMSPROP:
        for (size_t i = 0; i < n; i++) {
            v[i] = o->alpha * v[i] + (1 - o->alpha) * grad[i] * grad[i];
            param[i] -= o->lr * grad[i] / (sqrtf(v[i]) + o->eps);
        }
        break;
    }
}
