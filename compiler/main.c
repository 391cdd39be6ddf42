/* main.c — the genc command: the compiler pipeline, a stage a line, and the
 * train and sample commands that build a trainer from its output and run it. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include "compiler.h"
#include "genc_runtime.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef GENC_RUNTIME_DIR
#error "GENC_RUNTIME_DIR (the runtime's source folder) is set by CMake"
#endif

/* ---- command line ------------------------------------------------------------------ */

static const char *const usage_main =
    "usage: genc COMMAND [options]\n"
    "\n"
    "genc compiles a generative model written in its Lua DSL to allocation-free C.\n"
    "\n"
    "commands:\n"
    "  compile SPEC [-o DIR]     write DIR/<model>.h and DIR/<model>.c\n"
    "  train SPEC [options]      compile, build the trainer, train on IDX data\n"
    "  sample SPEC --weights F   draw samples from a trained checkpoint into a PNG grid\n"
    "  explore SPEC MODE ...     interpolations, walks, class grids, traversals, reconstructions\n"
    "  export SPEC --weights F   write a self-contained C sampler with the trained weights\n"
    "  verify SPEC --reference F compare the compiled model with reference values (from PyTorch)\n"
    "\n"
    "Run `genc COMMAND --help` for a command's options.\n";

static const char *const usage_compile =
    "usage: genc compile SPEC [-o DIR] [--batch N] [--threads N] [--real float|double] [--dump=STAGE] [--stats]\n"
    "\n"
    "  -o DIR          output folder (default: generated/<model>)\n"
    "  --batch N       override the spec's batch size\n"
    "  --threads N     most threads a convolution or a dense layer's backward pass is shared\n"
    "                  among (default 8; each has its own scratch; the trainer's GENC_THREADS\n"
    "                  picks how many run)\n"
    "  --real double   emit double-precision code with no descriptor (for gradient tests)\n"
    "  --dump=STAGE    print a stage's result: graph, schedule or plan\n"
    "  --stats         print parameter count and arena sizes with and without reuse\n";

static const char *const usage_train =
    "usage: genc train SPEC [--data DIR] [--epochs N | --steps N] [--seed S] [--out DIR]\n"
    "                  [--resume] [--subset N] [--checkpoint-every N]\n"
    "\n"
    "Compiles SPEC, builds its trainer with the system C compiler (CC, default cc) and runs it.\n"
    "  --data DIR      IDX files train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]\n"
    "                  (default: /usr/share/datasets/fashion-mnist)\n"
    "  --epochs N      passes over the data (default 1); --steps N counts iterations instead\n"
    "  --seed S        seed for initialisation, shuffling and noise (default 1)\n"
    "  --out DIR       checkpoint.safetensors, log.csv, samples.png go here (default runs/<model>)\n"
    "  --resume        continue from DIR/checkpoint.safetensors exactly where it stopped\n"
    "  --subset N      train on the first N images only\n";

static const char *const usage_sample =
    "usage: genc sample SPEC --weights FILE [-n N] [--seed S] -o GRID.png\n"
    "\n"
    "  --weights FILE  a checkpoint written by genc train\n"
    "  -n N            number of samples (default 64)\n"
    "  --seed S        seed for the latent draws (default 1)\n"
    "  -o GRID.png     where to write the grid\n";

static const char *const usage_explore =
    "usage: genc explore SPEC MODE --weights FILE -o GRID.png [--seed S] [--rows R] [--cols C]\n"
    "                    [--label K] [--step X] [--range X] [--data DIR]\n"
    "\n"
    "Writes a grid of images from a trained model's sample network (z drawn with --seed, default 1):\n"
    "  lerp         each row a straight line between two random z (default 8 rows x 10 columns)\n"
    "  slerp        the same turning along the great circle while |z| goes linearly from |a| to |b|\n"
    "               (a straight line passes near 0, where z is atypical)\n"
    "  walk         one random walk in reading order: z' = sqrt(1 - X^2) z + X e, e ~ N(0, 1),\n"
    "               which keeps z distributed as N(0, 1) (--step X, default 0.3)\n"
    "  classes      conditional models: one z per row, the same z in every class, one class per column\n"
    "  traverse     row d moves latent dimension d over [-X, X] around one z (--range X, default 3;\n"
    "               --rows limits the dimensions shown), 9 columns\n"
    "  reconstruct  models with `reconstruct`: test images (t10k in --data, default\n"
    "               /usr/share/datasets/fashion-mnist), each beside its reconstruction\n"
    "\n"
    "  --label K    a conditional model's class in the other modes (default: row r shows class r)\n";

static const char *const usage_export =
    "usage: genc export SPEC --weights FILE -o DIR [--name NAME] [--batch N] [--blas]\n"
    "\n"
    "Writes DIR/NAME.h and DIR/NAME.c: the model's sample network in inference mode with the\n"
    "checkpoint's weights embedded. NAME.c compiles alone (C99 or C++) and links with libm.\n"
    "  --weights FILE  a checkpoint written by genc train\n"
    "  -o DIR          output folder (created if missing)\n"
    "  --name NAME     prefix of the files and functions (default <model>_sampler)\n"
    "  --batch N       samples per call (default 1)\n"
    "  --blas          large products through cblas, as the trainer does (then link -lopenblas)\n";

static const char *const usage_verify =
    "usage: genc verify SPEC --reference FILE [--rtol R] [--atol A]\n"
    "\n"
    "Runs the compiled model on a reference file's parameters and inputs and compares what it\n"
    "computes with the file's expectations, a row per tensor; exits 1 if any tensor is off.\n"
    "A tensor passes when max|genc - reference| <= atol + rtol * max|reference|.\n"
    "  --reference FILE  safetensors: param/<name>, state/<name>; input/<net> and output/<net>\n"
    "                    (output/<net>/<head>) for forwards; input/<step>/<name>, loss/<step>,\n"
    "                    grad/<step>/<param>, state_after/<step>/<name> for steps\n"
    "  --rtol R          default 1e-4\n"
    "  --atol A          default 1e-6\n"
    "The batch is the file's metadata \"batch\", or the first dimension of its first input.\n";

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    return false;
}

static _Noreturn void usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "genc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    free_all();
    exit(2);
}

static int parse_positive(const char *usage, const char *flag, const char *value)
{
    char *end;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || *end || v <= 0 || v > (1 << 24)) usage_error(usage, "%s needs a positive integer", flag);
    return (int)v;
}

static int cmd_compile(int argc, char **argv)
{
    if (wants_help(argc, argv)) return printf("%s", usage_compile), 0;
    const char *spec = NULL, *out = NULL;
    CompileOptions o = {.real = "float"};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(a, "--batch") == 0) o.batch = parse_positive(usage_compile, a, i + 1 < argc ? argv[++i] : NULL);
        else if (strcmp(a, "--threads") == 0)
            o.threads = parse_positive(usage_compile, a, i + 1 < argc ? argv[++i] : NULL);
        else if (strcmp(a, "--real") == 0 && i + 1 < argc) o.real = argv[++i];
        else if (strcmp(a, "--stats") == 0) o.stats = true;
        else if (strncmp(a, "--dump=", 7) == 0) {
            const char *s = a + 7;
            o.dump = strcmp(s, "graph") == 0 ? DUMP_GRAPH : strcmp(s, "schedule") == 0 ? DUMP_SCHEDULE
                   : strcmp(s, "plan") == 0 ? DUMP_PLAN : DUMP_NONE;
            if (o.dump == DUMP_NONE) usage_error(usage_compile, "unknown stage '%s' (graph, schedule, plan)", s);
        } else if (a[0] == '-') usage_error(usage_compile, "unknown option '%s'", a);
        else if (!spec) spec = a;
        else usage_error(usage_compile, "unexpected argument '%s'", a);
    }
    if (!spec) usage_error(usage_compile, "%s", "no SPEC given");
    if (strcmp(o.real, "float") != 0 && strcmp(o.real, "double") != 0)
        usage_error(usage_compile, "--real takes float or double, not '%s'", o.real);
    Program *p = compile_spec(spec, o);
    if (!out) out = xprintf("generated/%s", p->model->name);
    emit_program(p, out, (EmitOptions){.real = o.real});
    if (o.stats) print_plan_stats(p, stdout);
    return 0;
}

static int cmd_export(int argc, char **argv)
{
    if (wants_help(argc, argv)) return printf("%s", usage_export), 0;
    const char *spec = NULL;
    ExportOptions o = {0};
    int batch = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0 && i + 1 < argc) o.dir = argv[++i];
        else if (strcmp(a, "--weights") == 0 && i + 1 < argc) o.weights = argv[++i];
        else if (strcmp(a, "--name") == 0 && i + 1 < argc) o.name = argv[++i];
        else if (strcmp(a, "--batch") == 0) batch = parse_positive(usage_export, a, i + 1 < argc ? argv[++i] : NULL);
        else if (strcmp(a, "--blas") == 0) o.blas = true;
        else if (a[0] == '-') usage_error(usage_export, "unknown or incomplete option '%s'", a);
        else if (!spec) spec = a;
        else usage_error(usage_export, "unexpected argument '%s'", a);
    }
    if (!spec) usage_error(usage_export, "%s", "no SPEC given");
    if (!o.weights) usage_error(usage_export, "%s", "no --weights FILE given");
    if (!o.dir) usage_error(usage_export, "%s", "no -o DIR given");
    if (o.name && !is_identifier(o.name)) usage_error(usage_export, "--name %s: not a C identifier", o.name);
    /* a sampler runs on its caller's thread */
    Program *p = compile_spec(spec, (CompileOptions){.real = "float", .batch = batch, .threads = 1});
    if (!o.name) o.name = xprintf("%s_sampler", p->model->name);
    export_sampler(p, o);
    printf("wrote %s/%s.h and %s/%s.c\n", o.dir, o.name, o.dir, o.name);
    return 0;
}

static int run_wait(char **argv)
{
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (err) fatal("cannot run %s: %s", argv[0], strerror(err));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) fatal("waiting for %s: %s", argv[0], strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Splits a flags string from CMake ("-I/x -lfoo") into argv entries. */
static int push_words(char **argv, int n, const char *words)
{
    char *copy = xstrdup(words);
    for (char *w = strtok(copy, " "); w; w = strtok(NULL, " ")) argv[n++] = w;
    return n;
}

/* Compiles SPEC (at batch, or the spec's when 0) into DIR and builds DIR/<model>_train against the runtime. */
static const char *build_trainer(const char *spec, const char *dir, int batch)
{
    Program *p = compile_spec(spec, (CompileOptions){.real = "float", .batch = batch});
    emit_program(p, dir, (EmitOptions){.real = "float"});
    const char *name = p->model->name;
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    const char *exe = xprintf("%s/%s_train", dir, name);
    char *argv[96];
    int n = 0;
    argv[n++] = (char *)cc;
    /* -O3, as in the Release build the benchmark measures: it vectorises the
     * kernels' elementwise loops. And a * b + c fused into one rounding, as
     * CMake's gnu11 does and ISO C mode does not: the bits the tests check, and
     * FMAs. At -O2 without fusing, the models here trained up to 1.56x slower
     * (conv_autoencoder; mlp_gan 1.38x, cgan 1.04x). */
    argv[n++] = "-O3";
    argv[n++] = "-std=c11";
    argv[n++] = "-ffp-contract=fast";
    argv[n++] = xprintf("-I%s", dir);
    argv[n++] = "-I" GENC_RUNTIME_DIR;
    n = push_words(argv, n, GENC_CFLAGS);
    argv[n++] = xprintf("-DGENC_MODEL=%s_model", name);
    argv[n++] = xprintf("%s/%s.c", dir, name);
    argv[n++] = GENC_RUNTIME_DIR "/trainer_main.c";
    argv[n++] = "-o";
    argv[n++] = (char *)exe;
    argv[n++] = GENC_RUNTIME_LIB;
    n = push_words(argv, n, GENC_LIBS);
    argv[n] = NULL;
    if (run_wait(argv) != 0) fatal("building the trainer for %s failed (compiler: %s)", spec, cc);
    return exe;
}

static int cmd_train(int argc, char **argv)
{
    if (wants_help(argc, argv)) return printf("%s", usage_train), 0;
    if (argc < 1 || argv[0][0] == '-') usage_error(usage_train, "%s", "no SPEC given");
    const char *spec = argv[0], *out = NULL;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) out = argv[i + 1];
    /* The spec's model name decides the default folder: peek at it first. */
    if (!out) {
        Model *m = run_spec(spec, default_limits);
        out = xprintf("runs/%s", m->name);
    }
    const char *exe = build_trainer(spec, xprintf("%s/build", out), 0);
    char **args = xalloc(sizeof(char *) * (size_t)(argc + 4));
    int n = 0;
    args[n++] = (char *)exe;
    args[n++] = "train";
    for (int i = 1; i < argc; i++) args[n++] = argv[i];
    bool has_out = false;
    for (int i = 1; i < argc; i++) has_out |= strcmp(argv[i], "--out") == 0;
    if (!has_out) {
        args[n++] = "--out";
        args[n++] = (char *)out;
    }
    args[n] = NULL;
    fflush(stdout);
    execv(exe, args); /* the trainer takes over: Ctrl-C reaches it directly */
    fatal("cannot run %s: %s", exe, strerror(errno));
}

/* The batch a reference file was made at: its metadata, or its first input's first dimension. */
static int reference_batch(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], "--reference") == 0) path = argv[i + 1];
    if (!path) return 0; /* the trainer says what is missing */
    GencSafetensors st;
    GencError err;
    if (genc_safetensors_read(path, &st, &err)) fatal("%s", err.msg);
    const char *meta = genc_safetensors_meta(&st, "batch");
    int batch = meta ? atoi(meta) : 0;
    for (int i = 0; !meta && i < st.n_tensors && !batch; i++)
        if (strncmp(st.tensors[i].name, "input/", 6) == 0 && st.tensors[i].rank > 0) batch = (int)st.tensors[i].shape[0];
    genc_safetensors_free(&st);
    if (batch <= 0 || batch > 65536) fatal("%s: no batch size in its metadata or inputs", path);
    return batch;
}

/* sample, explore and verify run inside the model's trainer, built in a temporary folder. */
static int run_trainer_command(const char *command, const char *usage, int argc, char **argv)
{
    if (wants_help(argc, argv)) return printf("%s", usage), 0;
    if (argc < 1 || argv[0][0] == '-') usage_error(usage, "%s", "no SPEC given");
    char tmpl[] = "/tmp/genc-run-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) fatal("cannot create a temporary folder: %s", strerror(errno));
    const char *exe = build_trainer(argv[0], dir, strcmp(command, "verify") == 0 ? reference_batch(argc, argv) : 0);
    char **args = xalloc(sizeof(char *) * (size_t)(argc + 2));
    int n = 0;
    args[n++] = (char *)exe;
    args[n++] = (char *)command;
    for (int i = 1; i < argc; i++) args[n++] = argv[i];
    args[n] = NULL;
    int status = run_wait(args);
    char *rm[] = {"rm", "-rf", dir, NULL};
    run_wait(rm);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        printf("%s", usage_main);
        return argc < 2 ? 2 : 0;
    }
    int status;
    if (strcmp(argv[1], "compile") == 0) status = cmd_compile(argc - 2, argv + 2);
    else if (strcmp(argv[1], "train") == 0) status = cmd_train(argc - 2, argv + 2);
    else if (strcmp(argv[1], "sample") == 0) status = run_trainer_command("sample", usage_sample, argc - 2, argv + 2);
    else if (strcmp(argv[1], "export") == 0) status = cmd_export(argc - 2, argv + 2);
    else if (strcmp(argv[1], "verify") == 0) status = run_trainer_command("verify", usage_verify, argc - 2, argv + 2);
    else if (strcmp(argv[1], "explore") == 0) status = run_trainer_command("explore", usage_explore, argc - 2, argv + 2);
    else usage_error(usage_main, "unknown command '%s'", argv[1]);
    free_all();
    return status;
}
