/* pipeline.c — the compiler, a stage a line. Each stage is one file;
 * --dump shows the result of one. */
#include "compiler.h"

/* Generous for any real spec: the models here use a few MiB and ~10^5 instructions. */
const SandboxLimits default_limits = {.memory_limit = 256u << 20, .instruction_limit = 200000000};

static void dump_graph(const Model *m)
{
    for (int i = 0; i < m->nodes.len; i++) {
        const Node *n = m->nodes.items[i];
        if (n->fused_into) continue;
        printf("%%%d = %s", n->id, op_info[n->op].name);
        for (int k = 0; k < n->n_in; k++) printf(" %%%d", n->in[k]->id);
        printf("  %s  %s:%d  %s\n", dims_str(n->dims, n->batched), n->loc.file, n->loc.line, n->what ? n->what : "");
    }
}

static void dump_schedule(const Program *p)
{
    static const char *const kinds[] = {"forward", "seed", "backward", "output"};
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        printf("%s:\n", f->name);
        for (int t = 0; t < f->n_ins; t++) {
            const Instruction *ins = &f->ins[t];
            printf("  %3d %-8s %-10s %%%d  reads", t, kinds[ins->kind], op_info[ins->node->op].name, ins->node->id);
            for (int k = 0; k < ins->n_reads; k++) printf(" b%d", ins->reads[k]);
            printf("  writes");
            for (int k = 0; k < ins->n_writes; k++) printf(" b%d", ins->writes[k]);
            printf("\n");
        }
    }
}

static void dump_plan(const Program *p)
{
    static const char *const homes[] = {"arena", "input", "output"};
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        printf("%s: arena %zu floats (%zu without reuse)\n", f->name, f->arena_size, f->arena_no_reuse);
        for (int b = 0; b < f->n_buffers; b++) {
            const Buffer *buf = &f->buffers[b];
            if (buf->first < 0) continue;
            static const char *const roles[] = {"value", "grad", "stats", "scratch"};
            printf("  b%-3d %-6s %-7s %%%-3d %8zu floats  live %3d..%-3d", b, homes[buf->home], roles[buf->role],
                   buf->node->id, buf->size, buf->first, buf->last);
            if (buf->home == BUF_ARENA) printf("  at %zu", buf->offset);
            printf("\n");
        }
    }
}

void print_plan_stats(const Program *p, FILE *out)
{
    const Model *m = p->model;
    fprintf(out, "%s: %d parameter tensors, %zu parameters; batch %d\n", m->name, m->params.len, m->n_params, m->batch);
    double iteration_flops = 0;
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        double flops = 0;
        for (int t = 0; t < f->n_ins; t++) flops += instruction_flops(f, &f->ins[t], m->batch);
        if (f->kind == FN_STEP) iteration_flops += flops;
        fprintf(out, "  %-24s arena %9zu floats with reuse, %9zu without; %.4f GFLOP\n", f->name, f->arena_size,
                f->arena_no_reuse, flops * 1e-9);
    }
    fprintf(out, "  training iteration: %.4f GFLOP in matrix products (every step once)\n", iteration_flops * 1e-9);
    fprintf(out, "  arena: %zu floats (%.2f MiB) with reuse, %zu (%.2f MiB) without\n", p->arena_size,
            p->arena_size * 4.0 / (1 << 20), p->arena_no_reuse, p->arena_no_reuse * 4.0 / (1 << 20));
}

Program *compile_spec(const char *spec, CompileOptions o)
{
    Model *m = run_spec(spec, default_limits);         /* host.c + dsl.c */
    if (o.batch) m->batch = o.batch;
    m->threads = o.threads ? o.threads : DEFAULT_THREADS;
    check_model(m);                            /* check.c */
    fuse_model(m);                             /* fuse.c */
    if (o.dump == DUMP_GRAPH) dump_graph(m);
    Program *p = build_program(m);             /* grad.c */
    if (o.dump == DUMP_SCHEDULE) dump_schedule(p);
    plan_program(p);                           /* plan.c */
    if (o.dump == DUMP_PLAN) dump_plan(p);
    return p;                                  /* emit.c, by the caller */
}

