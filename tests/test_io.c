/* test_io.c — the IDX and safetensors readers on good and broken files, and
 * checkpoints that belong to another model or lack a tensor. Every broken
 * file must give an error that names the file and the problem, and no crash;
 * a failed checkpoint load must change nothing. */
#include <check.h>

#include "run_suite.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "genc_runtime.h"

extern const GencModel mlp_gan_model, vae_model;

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, data, (unsigned)n), (int)n);
    gzclose(f);
}

/* An IDX file of 2 images of 3x4 bytes. */
static size_t make_idx(unsigned char *buf)
{
    unsigned char header[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    memcpy(buf, header, 16);
    for (int i = 0; i < 24; i++) buf[16 + i] = (unsigned char)(i * 10);
    return 40;
}

static void expect_idx_error(const char *path, const char *phrase)
{
    GencIdx idx;
    GencError err;
    ck_assert_int_eq(genc_idx_read(path, &idx, &err), -1);
    ck_assert_msg(strstr(err.msg, path) != NULL, "error does not name the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "expected '%s' in: %s", phrase, err.msg);
}

START_TEST(idx_reads_plain_and_gzipped)
{
    unsigned char buf[64];
    size_t n = make_idx(buf);
    write_bytes("/tmp/genc-idx-plain", buf, n);
    write_gz("/tmp/genc-idx-gz", buf, n);
    const char *paths[] = {"/tmp/genc-idx-plain", "/tmp/genc-idx-gz"};
    for (int p = 0; p < 2; p++) {
        GencIdx idx;
        GencError err;
        ck_assert_msg(genc_idx_read(paths[p], &idx, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(idx.ndims, 3);
        ck_assert_int_eq(idx.dims[0], 2);
        ck_assert_int_eq(idx.dims[2], 4);
        ck_assert_uint_eq(idx.count, 24);
        ck_assert_int_eq(idx.data[23], 230);
        genc_idx_free(&idx);
    }
}
END_TEST

START_TEST(idx_rejects_broken_files)
{
    unsigned char buf[64];
    size_t n = make_idx(buf);
    write_bytes("/tmp/genc-idx-truncated", buf, n - 5);
    expect_idx_error("/tmp/genc-idx-truncated", "truncated");
    write_bytes("/tmp/genc-idx-header", buf, 10);
    expect_idx_error("/tmp/genc-idx-header", "truncated inside the header");
    write_bytes("/tmp/genc-idx-tiny", buf, 2);
    expect_idx_error("/tmp/genc-idx-tiny", "truncated");
    unsigned char magic[64];
    memcpy(magic, buf, n);
    magic[2] = 0x0d; /* floats, not bytes */
    write_bytes("/tmp/genc-idx-magic", magic, n);
    expect_idx_error("/tmp/genc-idx-magic", "not an IDX file of unsigned bytes");
    unsigned char longer[80];
    memcpy(longer, buf, n);
    write_bytes("/tmp/genc-idx-trailing", longer, n + 7);
    expect_idx_error("/tmp/genc-idx-trailing", "trailing bytes");
    memcpy(magic, buf, n);
    magic[7] = 200; /* 200 images promised, 2 present */
    write_bytes("/tmp/genc-idx-count", magic, n);
    expect_idx_error("/tmp/genc-idx-count", "the header promises 2400 bytes of data, the file holds 24");
    unsigned char gz[40] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5};
    write_bytes("/tmp/genc-idx-badgz", gz, sizeof gz);
    expect_idx_error("/tmp/genc-idx-badgz", "corrupt or truncated gzip");
    expect_idx_error("/tmp/genc-idx-missing", "cannot open");
}
END_TEST

START_TEST(dataset_needs_its_files)
{
    GencDataset d;
    GencError err;
    ck_assert_int_eq(genc_dataset_load("/tmp/genc-no-such-dir", "train", 0, &d, &err), -1);
    ck_assert_msg(strstr(err.msg, "train-images-idx3-ubyte") && strstr(err.msg, "dataset-fashion-mnist"), "%s", err.msg);
}
END_TEST

static const char *ST = "/tmp/genc-test.safetensors";

static void write_sample_safetensors(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {-1, 0.5f};
    GencTensorOut t[2] = {{"param/a", 2, {2, 3}, a}, {"param/b", 1, {2}, b}};
    const char *meta[] = {"format", "test", "model", "x"};
    GencError err;
    ck_assert_msg(genc_safetensors_write(ST, t, 2, meta, 2, &err) == 0, "%s", err.msg);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *buf = malloc(*n + 64);
    ck_assert_uint_eq(fread(buf, 1, *n, f), *n);
    fclose(f);
    return buf;
}

START_TEST(safetensors_round_trip)
{
    write_sample_safetensors();
    GencSafetensors st;
    GencError err;
    ck_assert_msg(genc_safetensors_read(ST, &st, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(st.n_tensors, 2);
    const GencTensorIn *a = genc_safetensors_find(&st, "param/a");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->rank, 2);
    ck_assert_int_eq(a->shape[1], 3);
    ck_assert_float_eq(a->data[5], 6);
    ck_assert_float_eq(genc_safetensors_find(&st, "param/b")->data[1], 0.5f);
    ck_assert_str_eq(genc_safetensors_meta(&st, "model"), "x");
    size_t n;
    unsigned char *raw = slurp(ST, &n);
    uint64_t header = 0;
    for (int i = 0; i < 8; i++) header |= (uint64_t)raw[i] << (8 * i);
    ck_assert_uint_eq(header % 8, 0);                     /* data 8-aligned */
    ck_assert_uint_eq(n, 8 + header + 8 * sizeof(float)); /* nothing but the data follows */
    free(raw);
    genc_safetensors_free(&st);
}
END_TEST

static void expect_st_error(const unsigned char *bytes, size_t n, const char *phrase)
{
    const char *path = "/tmp/genc-test-broken.safetensors";
    write_bytes(path, bytes, n);
    GencSafetensors st;
    GencError err;
    ck_assert_int_eq(genc_safetensors_read(path, &st, &err), -1);
    ck_assert_msg(strstr(err.msg, path) != NULL, "error does not name the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "expected '%s' in: %s", phrase, err.msg);
}

/* A file with the given JSON header and data bytes. */
static void expect_header_error(const char *json, size_t data_bytes, const char *phrase)
{
    size_t len = strlen(json);
    unsigned char *buf = calloc(8 + len + data_bytes, 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(buf + 8, json, len);
    expect_st_error(buf, 8 + len + data_bytes, phrase);
    free(buf);
}

START_TEST(safetensors_rejects_broken_files)
{
    write_sample_safetensors();
    size_t n;
    unsigned char *good = slurp(ST, &n);
    expect_st_error(good, n - 4, "lies outside the file");
    expect_st_error(good, 5, "truncated");
    unsigned char *huge = malloc(n);
    memcpy(huge, good, n);
    huge[6] = 0x7f; /* header length far past the end */
    expect_st_error(huge, n, "not a safetensors file, or truncated");
    free(huge);
    free(good);
    expect_header_error("{not json", 0, "not a JSON object");
    expect_header_error("{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype F16");
    expect_header_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "has 8 bytes for a shape of 3");
    expect_header_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "lacks dtype, shape or data_offsets");
    expect_header_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "bad shape");
    expect_header_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"a\",8]}}", 8, "outside the file");
}
END_TEST

START_TEST(checkpoint_of_another_model_is_refused_and_changes_nothing)
{
    GencError err;
    GencTrainer *vae = genc_trainer_new(&vae_model, NULL, 1, &err);
    GencTrainer *gan = genc_trainer_new(&mlp_gan_model, NULL, 2, &err);
    ck_assert_ptr_nonnull(vae);
    ck_assert_ptr_nonnull(gan);
    const char *path = "/tmp/genc-test-vae.safetensors";
    ck_assert_int_eq(genc_checkpoint_save(vae, path, &err), 0);
    float *before = malloc(mlp_gan_model.n_params * sizeof(float));
    memcpy(before, genc_trainer_params(gan), mlp_gan_model.n_params * sizeof(float));
    ck_assert_int_eq(genc_checkpoint_load(gan, path, true, &err), -1);
    ck_assert_msg(strstr(err.msg, "a checkpoint of model 'vae', not 'mlp_gan'") != NULL, "%s", err.msg);
    ck_assert(memcmp(before, genc_trainer_params(gan), mlp_gan_model.n_params * sizeof(float)) == 0);

    /* A checkpoint of the right model without one tensor. */
    GencSafetensors st;
    ck_assert_int_eq(genc_checkpoint_save(gan, path, &err), 0);
    ck_assert_int_eq(genc_safetensors_read(path, &st, &err), 0);
    GencTensorOut *out = calloc((size_t)st.n_tensors, sizeof *out);
    int k = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        if (strcmp(st.tensors[i].name, "param/generator.dense2.bias") == 0) continue;
        out[k] = (GencTensorOut){st.tensors[i].name, st.tensors[i].rank, {0}, st.tensors[i].data};
        memcpy(out[k].shape, st.tensors[i].shape, sizeof out[k].shape);
        k++;
    }
    const char **meta = calloc(2 * (size_t)st.n_metadata, sizeof(char *));
    for (int i = 0; i < st.n_metadata; i++) meta[2 * i] = st.keys[i], meta[2 * i + 1] = st.values[i];
    ck_assert_int_eq(genc_safetensors_write(path, out, k, meta, st.n_metadata, &err), 0);
    float *params = genc_trainer_params(gan);
    params[0] += 1; /* a load that fails must not undo this */
    ck_assert_int_eq(genc_checkpoint_load(gan, path, false, &err), -1);
    ck_assert_msg(strstr(err.msg, "no tensor 'param/generator.dense2.bias'") != NULL, "%s", err.msg);
    ck_assert_float_eq(params[0], before[0] + 1);
    ck_assert_int_eq(genc_checkpoint_load(gan, "/tmp/genc-idx-plain", false, &err), -1); /* not safetensors at all */
    free(out);
    free(meta);
    free(before);
    genc_safetensors_free(&st);
    genc_trainer_free(vae);
    genc_trainer_free(gan);
}
END_TEST

START_TEST(png_grid_is_written)
{
    float img[2 * 784];
    for (int i = 0; i < 2 * 784; i++) img[i] = (float)(i % 784) / 784;
    GencError err;
    ck_assert_msg(genc_png_write_grid("/tmp/genc-test.png", img, 2, 1, 28, 28, 2, 0, 1, &err) == 0, "%s", err.msg);
    size_t n;
    unsigned char *png = slurp("/tmp/genc-test.png", &n);
    ck_assert(n > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    free(png);
    ck_assert_int_eq(genc_png_write_grid("/tmp/no-such-dir/x.png", img, 2, 1, 28, 28, 2, 0, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "/tmp/no-such-dir/x.png") != NULL, "%s", err.msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("readers");
    tcase_add_test(tc, idx_reads_plain_and_gzipped);
    tcase_add_test(tc, idx_rejects_broken_files);
    tcase_add_test(tc, dataset_needs_its_files);
    tcase_add_test(tc, safetensors_round_trip);
    tcase_add_test(tc, safetensors_rejects_broken_files);
    tcase_add_test(tc, checkpoint_of_another_model_is_refused_and_changes_nothing);
    tcase_add_test(tc, png_grid_is_written);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK);
}
