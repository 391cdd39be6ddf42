/* check.c — model-level validation, the parameter block layout, net traces.
 *
 * Shapes were checked as the spec ran (dsl.c); what is left needs the whole
 * model: every step must reach the nets it updates, and each net gets a traced
 * forward pass from a caller-supplied input, used for sampling and export. */
#include "compiler.h"

#include <string.h>

static bool reaches(const Node *n, const Net *net, bool *seen)
{
    if (seen[n->id]) return false;
    seen[n->id] = true;
    if (n->weight && n->weight->net == net) return true;
    for (int i = 0; i < n->n_in; i++)
        if (reaches(n->in[i], net, seen)) return true;
    return false;
}

/* sample and reconstruct expressions run in inference mode, but a net applied
 * in the spec is in training mode: refuse the layers where the two differ. */
static void check_inference_expr(const Model *m, const Node *n, const char *what, bool *seen)
{
    if (seen[n->id]) return;
    seen[n->id] = true;
    if ((n->op == OP_BATCHNORM && n->training) || n->op == OP_DROPOUT)
        error_at(m->loc, "model: %s runs in inference mode, but its expression applies a %s in training mode "
                         "(%s:%d); give the net itself, as in `%s = G`", what, op_info[n->op].name, n->loc.file,
                 n->loc.line, what);
    if (n->op == OP_INPUT && n->input_kind == INPUT_IMAGES && strcmp(what, "sample") == 0)
        error_at(m->loc, "model: sample must not read data.images; it draws from noise (and data.labels)");
    for (int i = 0; i < n->n_in; i++) check_inference_expr(m, n->in[i], what, seen);
}

static void trace_net(Model *m, Net *net)
{
    net->trace_input = new_node(m, OP_INPUT, net->loc);
    net->trace_input->input_kind = INPUT_CALLER;
    net->trace_input->input_name = "input";
    net->trace_input->what = "input";
    net->trace_input->dims = net->input;
    net->trace_outputs = xalloc(sizeof(Node *) * (size_t)net->n_outputs);
    apply_net(m, net, net->trace_input, net->trace_outputs, false); /* inference mode */
}

void check_model(Model *m)
{
    size_t offset = 0;
    for (int i = 0; i < m->params.len; i++) {
        Param *p = m->params.items[i];
        p->offset = offset;
        offset += dims_count(p->dims);
    }
    m->n_params = offset;
    offset = 0;
    for (int i = 0; i < m->state.len; i++) {
        Param *p = m->state.items[i];
        p->offset = offset;
        offset += dims_count(p->dims);
    }
    m->n_state = offset;
    for (int i = 0; i < m->nodes.len; i++) {
        const Node *n = m->nodes.items[i];
        if (n->op == OP_ONEHOT && n->classes > m->classes) m->classes = n->classes;
    }

    for (int s = 0; s < m->steps.len; s++) {
        Step *step = m->steps.items[s];
        for (int k = 0; k < step->update.len; k++) {
            Net *net = step->update.items[k];
            bool *seen = xalloc((size_t)m->nodes.len);
            if (net->params.len == 0)
                error_at(step->loc, "step '%s': net '%s' has no parameters to update", step->name, net->name);
            if (!reaches(step->loss, net, seen))
                error_at(step->loss->loc, "step '%s': the loss does not depend on net '%s', which it updates",
                         step->name, net->name);
        }
    }
    if (m->sample_expr) {
        bool *seen = xalloc((size_t)m->nodes.len);
        check_inference_expr(m, m->sample_expr, "sample", seen);
        int normal = 0, other = 0;
        for (int i = 0; i < m->nodes.len; i++) {
            const Node *n = m->nodes.items[i];
            if (!seen[i] || n->op != OP_INPUT) continue;
            if (n->input_kind == INPUT_NORMAL) normal++;
            else if (n->input_kind != INPUT_LABELS) other++;
        }
        if (normal != 1 || other)
            error_at(m->loc, "model: sample must draw from one noise.normal input (and may read data.labels); "
                             "this one reads %d noise.normal and %d other inputs", normal, other);
    }
    if (m->reconstruct) check_inference_expr(m, m->reconstruct, "reconstruct", xalloc((size_t)m->nodes.len));
    /* Traced after the checks above so that node ids of the spec come first. */
    for (int i = 0; i < m->nets.len; i++) trace_net(m, m->nets.items[i]);
}
