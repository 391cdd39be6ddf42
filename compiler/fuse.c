/* fuse.c — folds an activation into the dense, convolution or batchnorm layer
 * before it.
 *
 * A layer whose only consumer is an activation computes both in one pass
 * (after the GEMM, or the normalisation), and the pre-activation tensor
 * disappears. (Fusion runs before autodiff: the fused op has its own backward
 * rule, which recovers the slope from the activation's output.) */
#include "compiler.h"

Node *resolve(Node *n)
{
    while (n && n->fused_into) n = n->fused_into;
    return n;
}

void fuse_model(Model *m)
{
    int *consumers = xalloc(sizeof(int) * (size_t)m->nodes.len);
    for (int i = 0; i < m->nodes.len; i++) {
        Node *n = m->nodes.items[i];
        for (int k = 0; k < n->n_in; k++) consumers[n->in[k]->id]++;
    }
    /* Values that leave a function count as consumers: they must stay. */
    for (int i = 0; i < m->steps.len; i++) consumers[((Step *)m->steps.items[i])->loss->id]++;
    if (m->reconstruct) consumers[m->reconstruct->id]++;
    if (m->sample_expr) consumers[m->sample_expr->id]++;
    for (int i = 0; i < m->nets.len; i++) {
        Net *net = m->nets.items[i];
        for (int k = 0; k < net->n_outputs; k++) consumers[net->trace_outputs[k]->id]++;
    }

    for (int i = 0; i < m->nodes.len; i++) {
        Node *n = m->nodes.items[i];
        if (n->op != OP_ACTIVATION) continue;
        Node *d = n->in[0];
        bool fusable = d->op == OP_DENSE || d->op == OP_CONV2D || d->op == OP_CONV2D_TRANSPOSE || d->op == OP_BATCHNORM;
        if (fusable && d->act == ACT_IDENTITY && consumers[d->id] == 1) {
            d->act = n->act;
            d->alpha = n->alpha;
            n->fused_into = d;
        }
    }

    for (int i = 0; i < m->nodes.len; i++) {
        Node *n = m->nodes.items[i];
        for (int k = 0; k < n->n_in; k++) n->in[k] = resolve(n->in[k]);
    }
    for (int i = 0; i < m->steps.len; i++) {
        Step *s = m->steps.items[i];
        s->loss = resolve(s->loss);
    }
    m->reconstruct = resolve(m->reconstruct);
    m->sample_expr = resolve(m->sample_expr);
    for (int i = 0; i < m->nets.len; i++) {
        Net *net = m->nets.items[i];
        for (int k = 0; k < net->n_outputs; k++) net->trace_outputs[k] = resolve(net->trace_outputs[k]);
    }
}
