/* plan.c — static memory planning: buffer liveness -> offsets in one arena.
 *
 * A buffer is live from the first instruction that touches it to the last;
 * an instruction's inputs and outputs are live at the same time, so no kernel
 * ever reads and writes the same memory through two names. Offsets are
 * assigned greedily, largest buffer first, each at the lowest offset that no
 * buffer live at the same time occupies. */
#include "compiler.h"

#include <stdlib.h>
#include <string.h>

static size_t aligned(size_t n) { return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

static void liveness(const Function *f, int *first, int *last)
{
    for (int b = 0; b < f->n_buffers; b++) first[b] = -1, last[b] = -1;
    for (int t = 0; t < f->n_ins; t++) {
        const Instruction *ins = &f->ins[t];
        const int *lists[2] = {ins->reads, ins->writes};
        int counts[2] = {ins->n_reads, ins->n_writes};
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < counts[l]; k++) {
                int b = lists[l][k];
                if (first[b] < 0) first[b] = t;
                last[b] = t;
            }
    }
}

static const Function *sort_fn;
static int by_size_desc(const void *a, const void *b)
{
    const Buffer *x = &sort_fn->buffers[*(const int *)a], *y = &sort_fn->buffers[*(const int *)b];
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

static bool live_together(const Buffer *a, const Buffer *b)
{
    return a->first <= b->last && b->first <= a->last;
}

static void plan_function(Function *f)
{
    int *first = xalloc(sizeof(int) * (size_t)(f->n_buffers + 1));
    int *last = xalloc(sizeof(int) * (size_t)(f->n_buffers + 1));
    liveness(f, first, last);
    int *order = xalloc(sizeof(int) * (size_t)(f->n_buffers + 1));
    int n = 0;
    for (int b = 0; b < f->n_buffers; b++) {
        f->buffers[b].first = first[b];
        f->buffers[b].last = last[b];
        if (f->buffers[b].home == BUF_ARENA && first[b] >= 0) order[n++] = b;
    }
    sort_fn = f;
    qsort(order, (size_t)n, sizeof(int), by_size_desc);

    f->arena_size = f->arena_no_reuse = 0;
    for (int i = 0; i < n; i++) {
        Buffer *b = &f->buffers[order[i]];
        size_t size = aligned(b->size), offset = 0;
        /* Raise the offset past every placed, concurrently live buffer it hits,
         * until a full pass finds no conflict. */
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < i; j++) {
                Buffer *o = &f->buffers[order[j]];
                if (!live_together(b, o)) continue;
                size_t o_end = o->offset + aligned(o->size);
                if (offset < o_end && o->offset < offset + size) {
                    offset = o_end;
                    moved = true;
                }
            }
        }
        b->offset = offset;
        if (offset + size > f->arena_size) f->arena_size = offset + size;
        f->arena_no_reuse += size;
    }
}

void plan_program(Program *p)
{
    p->arena_size = p->arena_no_reuse = 0;
    for (int i = 0; i < p->functions.len; i++) {
        Function *f = p->functions.items[i];
        plan_function(f);
        if (f->arena_size > p->arena_size) p->arena_size = f->arena_size;
        if (f->arena_no_reuse > p->arena_no_reuse) p->arena_no_reuse = f->arena_no_reuse;
    }
}

int verify_plan(const Function *f, FILE *report)
{
    int *first = malloc(sizeof(int) * (size_t)(f->n_buffers + 1));
    int *last = malloc(sizeof(int) * (size_t)(f->n_buffers + 1));
    liveness(f, first, last);
    int problems = 0;
    for (int a = 0; a < f->n_buffers; a++) {
        const Buffer *x = &f->buffers[a];
        if (x->home != BUF_ARENA || first[a] < 0) continue;
        if (x->offset % ARENA_ALIGN || x->offset + x->size > f->arena_size) {
            if (report) fprintf(report, "%s: buffer %d at %zu+%zu is outside the arena or misaligned\n", f->name, a, x->offset, x->size);
            problems++;
        }
        for (int b = a + 1; b < f->n_buffers; b++) {
            const Buffer *y = &f->buffers[b];
            if (y->home != BUF_ARENA || first[b] < 0) continue;
            bool live = first[a] <= last[b] && first[b] <= last[a];
            bool overlap = x->offset < y->offset + y->size && y->offset < x->offset + x->size;
            if (live && overlap) {
                if (report)
                    fprintf(report, "%s: buffers %d [%zu,+%zu) and %d [%zu,+%zu) overlap while both live\n", f->name,
                            a, x->offset, x->size, b, y->offset, y->size);
                problems++;
            }
        }
    }
    free(first);
    free(last);
    return problems;
}
