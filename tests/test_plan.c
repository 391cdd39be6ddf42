/* test_plan.c — the memory plan of every function of every model, checked
 * by replaying liveness from the instruction list: no two buffers that are
 * live at the same time may share memory. The checker itself is shown to
 * catch a broken plan. */
#include <check.h>

#include "run_suite.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "genc_kernels.h"

static const char *const models[] = {"models/mlp_gan.lua", "models/vae.lua", "models/autoencoder.lua",
                                     "models/conv_autoencoder.lua", "models/dcgan.lua", "models/cgan.lua",
                                     "tests/models/every_op.lua"};
enum { N_MODELS = sizeof models / sizeof models[0] };

static Program *compile(const char *spec)
{
    ck_assert_int_eq(chdir(GENC_SOURCE_DIR), 0);
    return compile_spec(spec, (CompileOptions){.real = "float"});
}

START_TEST(plans_have_no_overlapping_live_buffers)
{
    Program *p = compile(models[_i]);
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        ck_assert_msg(verify_plan(f, stderr) == 0, "%s: %s has overlapping buffers", models[_i], f->name);
        ck_assert_msg(f->arena_size <= p->arena_size, "%s: %s needs more than the model's arena", models[_i], f->name);
        ck_assert(f->arena_size <= f->arena_no_reuse);
    }
    ck_assert_msg(p->arena_size < p->arena_no_reuse, "%s: the plan reuses no memory", models[_i]);
}
END_TEST

/* A convolution's scratch, as the compiler sizes it, is what its kernel uses:
 * genc_conv_scratch (im2col) or genc_direct_scratch (direct) in the runtime. */
START_TEST(conv_scratch_is_what_the_kernel_uses)
{
    Program *p = compile(models[_i]);
    int threads = p->model->threads, batch = p->model->batch;
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        for (int t = 0; t < f->n_ins; t++) {
            const Instruction *ins = &f->ins[t];
            const Node *n = ins->node;
            if (n->op != OP_CONV2D && n->op != OP_CONV2D_TRANSPOSE) continue;
            int backward = ins->kind == INS_BACKWARD, transpose = n->op == OP_CONV2D_TRANSPOSE;
            const Dims *image = transpose ? &n->dims : &n->in[0]->dims, *grid = transpose ? &n->in[0]->dims : &n->dims;
            int K = n->window.kernel;
            size_t want = conv_is_direct(n)
                              ? genc_direct_scratch(threads, batch, image->dim[0], grid->dim[0], image->dim[1],
                                                    image->dim[2], grid->dim[1], grid->dim[2], K, n->window.pad_top,
                                                    n->window.pad_left, backward)
                              : genc_conv_scratch(threads, batch,
                                                  (size_t)image->dim[0] * K * K * grid->dim[1] * grid->dim[2],
                                                  (size_t)image->dim[0] * grid->dim[0] * K * K, backward);
            ck_assert_int_ge(ins->scratch, 0);
            ck_assert_msg(f->buffers[ins->scratch].size == want, "%s: %s, %s: scratch of %zu floats, the kernel uses %zu",
                          models[_i], f->name, n->what, f->buffers[ins->scratch].size, want);
        }
    }
}
END_TEST

/* The scratch of a dense layer's forward pass, where it has one, as its kernel
 * sizes it; a wide layer has one, to stream its bands, unless a loss reads
 * its output in flat ranges. */
static int forward_scratch(const Program *p, const char *function, const char *layer)
{
    for (int i = 0; i < p->functions.len; i++) {
        const Function *f = p->functions.items[i];
        if (strcmp(f->name, function) != 0) continue;
        for (int t = 0; t < f->n_ins; t++) {
            const Instruction *ins = &f->ins[t];
            if (ins->kind != INS_FORWARD || !ins->node->what || strcmp(ins->node->what, layer) != 0) continue;
            const Node *n = ins->node;
            if (ins->scratch >= 0)
                ck_assert_uint_eq(f->buffers[ins->scratch].size,
                                  genc_dense_forward_scratch(p->model->threads, p->model->batch, n->dims.dim[0]));
            return ins->scratch >= 0;
        }
    }
    ck_abort_msg("no forward pass of %s in %s", layer, function);
    return 0;
}

START_TEST(wide_dense_outputs_stream_unless_a_loss_reads_them)
{
    Program *vae = compile("models/vae.lua"), *gan = compile("models/mlp_gan.lua");
    ck_assert(forward_scratch(vae, "step_elbo", "encoder.dense1"));  /* read by dense heads */
    ck_assert(!forward_scratch(vae, "step_elbo", "decoder.dense2")); /* read by the BCE */
    ck_assert(!forward_scratch(vae, "step_elbo", "encoder.mean.dense1")); /* 20 wide: narrower than the batch */
    ck_assert(forward_scratch(gan, "step_d", "generator.dense3"));   /* read by the discriminator */
    ck_assert(forward_scratch(gan, "step_d", "discriminator.dense2"));
}
END_TEST

START_TEST(checker_catches_a_broken_plan)
{
    Program *p = compile("models/mlp_gan.lua");
    Function *f = p->functions.items[0];
    /* Move the buffer of the first instruction's output onto its input's. */
    const Instruction *first = &f->ins[0];
    Buffer *out = &f->buffers[first->writes[0]];
    int moved = 0;
    for (int t = 1; t < f->n_ins && !moved; t++)
        for (int k = 0; k < f->ins[t].n_reads; k++) {
            Buffer *b = &f->buffers[f->ins[t].reads[k]];
            if (b != out && b->home == BUF_ARENA && b->first <= out->last) {
                b->offset = out->offset;
                moved = 1;
                break;
            }
        }
    ck_assert(moved);
    ck_assert_int_gt(verify_plan(f, NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("liveness");
    tcase_add_loop_test(tc, plans_have_no_overlapping_live_buffers, 0, N_MODELS);
    tcase_add_loop_test(tc, conv_scratch_is_what_the_kernel_uses, 0, N_MODELS);
    tcase_add_test(tc, wide_dense_outputs_stream_unless_a_loss_reads_them);
    tcase_add_test(tc, checker_catches_a_broken_plan);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK);
}
