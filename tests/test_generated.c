/* test_generated.c — generated/ is what the compiler emits today: every
 * model is compiled again into a temporary folder and compared byte for byte. */
#define _DEFAULT_SOURCE
#include <check.h>

#include "run_suite.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"

static const char *const models[] = {"mlp_gan", "vae", "autoencoder", "conv_autoencoder", "dcgan", "cgan"};
enum { N_MODELS = sizeof models / sizeof models[0] };

static char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    char *s = malloc(*size + 1);
    if (fread(s, 1, *size, f) != *size) *size = 0;
    fclose(f);
    return s;
}

START_TEST(generated_is_up_to_date)
{
    ck_assert_int_eq(chdir(GENC_SOURCE_DIR), 0);
    char dir[] = "/tmp/genc-golden-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char spec[256], fresh[512], committed[512];
    snprintf(spec, sizeof spec, "models/%s.lua", models[_i]);
    Program *p = compile_spec(spec, (CompileOptions){.real = "float"});
    emit_program(p, dir, (EmitOptions){.real = "float"});
    const char *exts[] = {"c", "h"};
    for (int e = 0; e < 2; e++) {
        snprintf(fresh, sizeof fresh, "%s/%s.%s", dir, models[_i], exts[e]);
        snprintf(committed, sizeof committed, "generated/%s/%s.%s", models[_i], models[_i], exts[e]);
        size_t n1 = 0, n2 = 0;
        char *a = slurp(fresh, &n1), *b = slurp(committed, &n2);
        ck_assert_msg(b != NULL, "%s is missing: run `genc compile %s`", committed, spec);
        ck_assert_msg(n1 == n2 && memcmp(a, b, n1) == 0,
                      "%s differs from what genc emits today: run `build/genc compile %s` and commit", committed, spec);
        free(a), free(b);
        unlink(fresh);
    }
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("generated");
    TCase *tc = tcase_create("golden");
    tcase_add_loop_test(tc, generated_is_up_to_date, 0, N_MODELS);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK);
}
