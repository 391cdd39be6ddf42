/* test_cli.c — the genc command itself.
 * Broken specs and sandbox escapes: each spec under tests/specs/ says on its
 * first line (`-- expect: ...`) the message genc must print; genc must exit 1
 * and write nothing. A bytecode spec is refused; bad command lines get usage
 * errors. And genc train / genc sample work end to end, refuse to overwrite a
 * checkpoint, resume, and refuse another model's weights; genc explore and genc
 * export work and refuse what they cannot do, naming the file; genc verify
 * passes on each model's PyTorch fixture and fails, with a FAIL row, on one
 * with a value changed. And the trainer genc train builds learns the same
 * bits as the library the other suites test. */
#define _DEFAULT_SOURCE
#include <check.h>

#include "genc_runtime.h"
#include "run_suite.h"
#include <stdbool.h>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
extern const GencModel vae_model;

typedef struct {
    int status;
    char err[8192], out[8192];
} Result;

static void read_into(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, n - 1, f) : 0;
    buf[len] = 0;
    if (f) fclose(f);
}

/* Runs genc with args from the source folder, capturing stdout and stderr. */
static Result run_genc(const char *const *args)
{
    Result r;
    ck_assert_int_eq(chdir(GENC_SOURCE_DIR), 0);
    char *argv[32];
    int n = 0;
    argv[n++] = GENC_EXE;
    for (; *args; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/tmp/genc-test-out", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, "/tmp/genc-test-err", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, GENC_EXE, &fa, NULL, argv, environ), 0);
    int status;
    waitpid(pid, &status, 0);
    posix_spawn_file_actions_destroy(&fa);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    read_into("/tmp/genc-test-err", r.err, sizeof r.err);
    read_into("/tmp/genc-test-out", r.out, sizeof r.out);
    return r;
}

/* rm -rf path */
static void remove_tree(const char *path)
{
    char *rm[] = {"rm", "-rf", (char *)path, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "rm", NULL, NULL, rm, environ) == 0) waitpid(pid, NULL, 0);
}

static char **specs;
static int n_specs;

static void list_specs(void)
{
    DIR *d = opendir(GENC_SOURCE_DIR "/tests/specs");
    struct dirent *e;
    specs = calloc(64, sizeof(char *));
    while (d && (e = readdir(d)) && n_specs < 64)
        if (strstr(e->d_name, ".lua")) specs[n_specs++] = strdup(e->d_name);
    if (d) closedir(d);
}

START_TEST(broken_spec_fails_with_its_message)
{
    char path[512], expect[512];
    snprintf(path, sizeof path, "tests/specs/%s", specs[_i]);
    ck_assert_int_eq(chdir(GENC_SOURCE_DIR), 0);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(expect, sizeof expect, f));
    fclose(f);
    ck_assert_msg(strncmp(expect, "-- expect: ", 11) == 0, "%s: first line must be -- expect: MESSAGE", path);
    char *want = expect + 11;
    want[strcspn(want, "\n")] = 0;

    const char *out_dir = "/tmp/genc-test-never-written";
    remove_tree(out_dir);
    Result r = run_genc((const char *[]){"compile", path, "-o", out_dir, NULL});
    ck_assert_msg(r.status == 1, "%s: exit status %d, expected 1; stderr: %s", path, r.status, r.err);
    ck_assert_msg(strstr(r.err, want) != NULL, "%s: expected the message\n  %s\ngot\n  %s", path, want, r.err);
    struct stat st;
    ck_assert_msg(stat(out_dir, &st) != 0, "%s: a failed compile wrote %s", path, out_dir);
}
END_TEST

START_TEST(bytecode_is_refused)
{
    const char *path = "/tmp/genc-test-bytecode.lua";
    FILE *f = fopen(path, "wb");
    fputs("\x1bLua\x54\x00garbage", f);
    fclose(f);
    Result r = run_genc((const char *[]){"compile", path, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "attempt to load a binary chunk") != NULL, "got: %s", r.err);
}
END_TEST

START_TEST(command_line_errors)
{
    Result r = run_genc((const char *[]){NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert(strstr(r.out, "usage: genc COMMAND") != NULL);
    r = run_genc((const char *[]){"--help", NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "commands:") != NULL);
    r = run_genc((const char *[]){"compile", "--help", NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "--dump=STAGE") != NULL);
    r = run_genc((const char *[]){"frobnicate", NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert(strstr(r.err, "unknown command 'frobnicate'") != NULL);
    r = run_genc((const char *[]){"compile", "models/mlp_gan.lua", "--batch", "x", NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert(strstr(r.err, "--batch needs a positive integer") != NULL);
    r = run_genc((const char *[]){"compile", "models/mlp_gan.lua", "--threads", "0", NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert(strstr(r.err, "--threads needs a positive integer") != NULL);
    r = run_genc((const char *[]){"compile", "no/such/spec.lua", NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "cannot open spec no/such/spec.lua") != NULL, "got: %s", r.err);
    r = run_genc((const char *[]){"compile", "models/mlp_gan.lua", "--dump=nothing", NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert(strstr(r.err, "unknown stage 'nothing'") != NULL);
}
END_TEST

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int lines_in(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;
    while (f && (c = fgetc(f)) != EOF) n += c == '\n';
    if (f) fclose(f);
    return n;
}

START_TEST(train_resume_and_sample)
{
    char dir[] = "/tmp/genc-cli-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char out[256], ckpt[300], grid[300], log[300];
    snprintf(out, sizeof out, "%s/run", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    snprintf(grid, sizeof grid, "%s/grid.png", dir);
    snprintf(log, sizeof log, "%s/log.csv", out);
    const char *data = FASHION_MNIST_DIR;

    Result r = run_genc((const char *[]){"train", "models/vae.lua", "--data", data, "--subset", "640", "--steps", "12",
                                         "--out", out, NULL});
    ck_assert_msg(r.status == 0, "train failed: %s%s", r.out, r.err);
    ck_assert(exists(ckpt));
    char path[400];
    snprintf(path, sizeof path, "%s/samples.png", out);
    ck_assert(exists(path));
    snprintf(path, sizeof path, "%s/reconstructions.png", out);
    ck_assert(exists(path));
    ck_assert_int_eq(lines_in(log), 1 + 2); /* header, the epoch end at 10, the last iteration */

    r = run_genc((const char *[]){"train", "models/vae.lua", "--data", data, "--steps", "12", "--out", out, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "exists; pass --resume") != NULL, "%s", r.err);

    setenv("GENC_THREADS", "two", 1);
    r = run_genc((const char *[]){"train", "models/vae.lua", "--data", data, "--subset", "640", "--steps", "20",
                                  "--out", out, "--resume", NULL});
    unsetenv("GENC_THREADS");
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "GENC_THREADS=two: not a thread count (1 to 256)") != NULL, "%s", r.err);
    ck_assert_int_eq(lines_in(log), 1 + 2); /* nothing trained, nothing written */

    r = run_genc((const char *[]){"train", "models/vae.lua", "--data", data, "--subset", "640", "--steps", "20",
                                  "--out", out, "--resume", NULL});
    ck_assert_msg(r.status == 0, "resume failed: %s%s", r.out, r.err);
    ck_assert_msg(strstr(r.out, "iterations 12..20") != NULL, "%s", r.out);

    r = run_genc((const char *[]){"sample", "models/vae.lua", "--weights", ckpt, "-n", "10", "-o", grid, NULL});
    ck_assert_msg(r.status == 0, "sample failed: %s%s", r.out, r.err);
    ck_assert(exists(grid));

    r = run_genc((const char *[]){"sample", "models/mlp_gan.lua", "--weights", ckpt, "-o", grid, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "a checkpoint of model 'vae', not 'mlp_gan'") != NULL, "%s", r.err);

    /* explore: a mode that works, bad modes and modes the model cannot do */
    r = run_genc((const char *[]){"explore", "models/vae.lua", "traverse", "--weights", ckpt, "--rows", "3", "-o", grid,
                                  NULL});
    ck_assert_msg(r.status == 0, "explore failed: %s%s", r.out, r.err);
    ck_assert_msg(strstr(r.out, "wrote 3 x 9 images") != NULL, "%s", r.out);
    r = run_genc((const char *[]){"explore", "models/vae.lua", "reconstruct", "--weights", ckpt, "--data", data, "-o",
                                  grid, NULL});
    ck_assert_msg(r.status == 0, "explore reconstruct failed: %s%s", r.out, r.err);
    r = run_genc((const char *[]){"explore", "models/vae.lua", "spin", "--weights", ckpt, "-o", grid, NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "explore needs a mode: lerp, slerp") != NULL, "%s", r.err);
    r = run_genc((const char *[]){"explore", "models/vae.lua", "classes", "--weights", ckpt, "-o", grid, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "model vae does not sample from a class label") != NULL, "%s", r.err);
    r = run_genc((const char *[]){"explore", "--help", NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "traverse") != NULL);

    /* export: works; refuses models without a sample network, other models' and corrupt checkpoints,
       and writes nothing when it refuses */
    char exp[300], header[400], bad[300];
    snprintf(exp, sizeof exp, "%s/export", dir);
    snprintf(header, sizeof header, "%s/vae_sampler.h", exp);
    r = run_genc((const char *[]){"export", "models/vae.lua", "--weights", ckpt, "-o", exp, NULL});
    ck_assert_msg(r.status == 0, "export failed: %s%s", r.out, r.err);
    ck_assert(exists(header));
    snprintf(bad, sizeof bad, "%s/fresh", dir);
    r = run_genc((const char *[]){"export", "models/conv_autoencoder.lua", "--weights", ckpt, "-o", bad, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "models/conv_autoencoder.lua: model conv_autoencoder has no sample network") != NULL,
                  "%s", r.err);
    r = run_genc((const char *[]){"export", "models/mlp_gan.lua", "--weights", ckpt, "-o", bad, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "a checkpoint of model 'vae', not 'mlp_gan'") != NULL, "%s", r.err);
    snprintf(path, sizeof path, "%s/corrupt.safetensors", dir);
    FILE *f = fopen(path, "w");
    fputs("\x10\x00\x00\x00\x00\x00\x00\x00{not json at all", f);
    fclose(f);
    r = run_genc((const char *[]){"export", "models/vae.lua", "--weights", path, "-o", bad, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, path) != NULL, "the error does not name the file: %s", r.err);
    ck_assert_msg(!exists(bad), "a refused export created %s", bad);
    r = run_genc((const char *[]){"export", "models/vae.lua", "-o", exp, NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "no --weights FILE given") != NULL, "%s", r.err);
    r = run_genc((const char *[]){"export", "models/vae.lua", "--weights", ckpt, "-o", exp, "--name", "9lives", NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "--name 9lives: not a C identifier") != NULL, "%s", r.err);

    r = run_genc((const char *[]){"train", "models/vae.lua", "--data", "/tmp/genc-no-data", "--out", dir, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "/tmp/genc-no-data/train-images-idx3-ubyte: no such file") != NULL, "%s", r.err);

    r = run_genc((const char *[]){"train", "models/vae.lua", "--steps", "0", "--out", dir, NULL});
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "--steps needs a positive integer") != NULL, "%s", r.err);
    remove_tree(dir);
}
END_TEST

/* genc train builds its own trainer with the system compiler; it must compute
 * what the library these tests check computes, bit for bit: the same flags
 * (ISO C mode, for one, stops gcc fusing a * b + c into one rounding). */
START_TEST(train_builds_what_the_library_computes)
{
    char dir[] = "/tmp/genc-cli-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char out[256], ckpt[300];
    snprintf(out, sizeof out, "%s/run", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    setenv("GENC_THREADS", "1", 1); /* the thread count changes a sum's order */
    Result r = run_genc((const char *[]){"train", "models/vae.lua", "--data", FASHION_MNIST_DIR, "--subset", "640",
                                         "--steps", "12", "--seed", "5", "--out", out, NULL});
    ck_assert_msg(r.status == 0, "train failed: %s%s", r.out, r.err);

    GencDataset data;
    GencError err;
    ck_assert_msg(genc_dataset_load(FASHION_MNIST_DIR, "train", 640, &data, &err) == 0, "%s", err.msg);
    GencTrainer *here = genc_trainer_new(&vae_model, &data, 5, &err);
    GencTrainer *built = genc_trainer_new(&vae_model, &data, 5, &err);
    unsetenv("GENC_THREADS");
    ck_assert_ptr_nonnull(here);
    ck_assert_ptr_nonnull(built);
    for (int i = 0; i < 12; i++) genc_trainer_iteration(here);
    ck_assert_msg(genc_checkpoint_load(built, ckpt, false, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(genc_trainer_iterations(built), 12);
    ck_assert_msg(memcmp(genc_trainer_params(here), genc_trainer_params(built), vae_model.n_params * sizeof(float)) == 0,
                  "genc train's trainer and the library learned different parameters");
    genc_trainer_free(here);
    genc_trainer_free(built);
    genc_dataset_free(&data);
    remove_tree(dir);
}
END_TEST

static const char *const verified_models[] = {"mlp_gan", "vae", "autoencoder", "conv_autoencoder", "dcgan", "cgan"};

START_TEST(verify_passes_on_each_model_fixture)
{
    const char *m = verified_models[_i];
    char spec[128], ref[256];
    snprintf(spec, sizeof spec, "models/%s.lua", m);
    snprintf(ref, sizeof ref, "tests/reference/fixtures/model_%s.safetensors", m);
    Result r = run_genc((const char *[]){"verify", spec, "--reference", ref, NULL});
    ck_assert_msg(r.status == 0, "verify %s failed: %s%s", m, r.out, r.err);
    ck_assert_msg(strstr(r.out, "max abs err") && strstr(r.out, "tensors within rtol 0.0001"), "%s", r.out);
}
END_TEST

/* One value of the generator's expected output moved by 1%: a FAIL row for it, exit 1. */
START_TEST(verify_fails_on_a_changed_value)
{
    GencSafetensors st;
    GencError err;
    const char *path = GENC_SOURCE_DIR "/tests/reference/fixtures/model_mlp_gan.safetensors";
    ck_assert_msg(genc_safetensors_read(path, &st, &err) == 0, "%s", err.msg);
    GencTensorOut *out = calloc((size_t)st.n_tensors, sizeof *out);
    for (int i = 0; i < st.n_tensors; i++) {
        GencTensorIn *t = &st.tensors[i];
        out[i] = (GencTensorOut){t->name, t->rank, {0}, t->data};
        memcpy(out[i].shape, t->shape, sizeof t->shape);
        if (strcmp(t->name, "output/generator") == 0) t->data[100] *= 1.01f;
    }
    const char **meta = calloc(2 * (size_t)st.n_metadata + 1, sizeof(char *));
    for (int i = 0; i < st.n_metadata; i++) meta[2 * i] = st.keys[i], meta[2 * i + 1] = st.values[i];
    const char *changed = "/tmp/genc-test-changed.safetensors";
    ck_assert_msg(genc_safetensors_write(changed, out, st.n_tensors, meta, st.n_metadata, &err) == 0, "%s", err.msg);
    genc_safetensors_free(&st);
    free(out), free(meta);
    Result r = run_genc((const char *[]){"verify", "models/mlp_gan.lua", "--reference", changed, NULL});
    ck_assert_int_eq(r.status, 1);
    const char *row = strstr(r.out, "output/generator ");
    ck_assert_msg(row && strstr(row, "FAIL") && strstr(row, "FAIL") < strchr(row, '\n'), "%s", r.out);
    ck_assert_msg(strstr(r.out, "1 of 16 tensors beyond rtol"), "%s", r.out);
    /* a looser tolerance lets it through */
    r = run_genc((const char *[]){"verify", "models/mlp_gan.lua", "--reference", changed, "--rtol", "0.02", NULL});
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    /* and another model's file is refused with its name */
    r = run_genc((const char *[]){"verify", "models/vae.lua", "--reference", changed, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "genc-test-changed.safetensors: no tensor 'param/encoder.dense1.weight'"), "%s", r.err);
    unlink(changed);
}
END_TEST

int main(void)
{
    list_specs();
    Suite *s = suite_create("genc command");
    TCase *tc = tcase_create("specs");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, broken_spec_fails_with_its_message, 0, n_specs);
    tcase_add_test(tc, bytecode_is_refused);
    tcase_add_test(tc, command_line_errors);
    tcase_add_test(tc, train_resume_and_sample);
    tcase_add_test(tc, train_builds_what_the_library_computes);
    tcase_add_loop_test(tc, verify_passes_on_each_model_fixture, 0, 6);
    tcase_add_test(tc, verify_fails_on_a_changed_value);
    suite_add_tcase(s, tc);
    int failed = run_suite(s, CK_NOFORK);
    return failed || n_specs < 15 ? 1 : 0;
}
