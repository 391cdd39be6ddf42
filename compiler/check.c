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
    /* Traced after the checks above so that node ids of the spec come first. */
    for (int i = 0; i < m->nets.len; i++) trace_net(m, m->nets.items[i]);
}
