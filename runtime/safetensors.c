/* safetensors.c — the safetensors format: an 8-byte little-endian header
 * length, a JSON header (name -> dtype, shape, data_offsets; __metadata__ ->
 * strings), then the raw data. genc reads and writes F32 tensors. */
#define _POSIX_C_SOURCE 200809L
#include "genc_runtime.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_HEADER = 64 << 20 };

static size_t tensor_count(int rank, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)shape[i];
    return n;
}

static int write_fully(FILE *f, const void *data, size_t n) { return n == 0 || fwrite(data, 1, n, f) == n ? 0 : -1; }

int genc_safetensors_write(const char *path, const GencTensorOut *tensors, int n_tensors, const char *const *metadata,
                           int n_metadata, GencError *err)
{
    cJSON *root = cJSON_CreateObject();
    if (n_metadata > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_metadata; i++) cJSON_AddStringToObject(meta, metadata[2 * i], metadata[2 * i + 1]);
    }
    size_t offset = 0;
    for (int i = 0; i < n_tensors; i++) {
        const GencTensorOut *t = &tensors[i];
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(entry, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
        for (int d = 0; d < t->rank; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        size_t bytes = tensor_count(t->rank, t->shape) * sizeof(float);
        cJSON *offsets = cJSON_AddArrayToObject(entry, "data_offsets");
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(offset + bytes)));
        offset += bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return genc_fail(err, "%s: out of memory", path);
    size_t json_len = strlen(json), padded = (json_len + 7) / 8 * 8; /* data starts 8-aligned */

    size_t tmp_len = strlen(path) + 5;
    char *tmp = malloc(tmp_len);
    if (!tmp) {
        free(json);
        return genc_fail(err, "%s: out of memory", path);
    }
    snprintf(tmp, tmp_len, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int rc = -1;
    if (!f) {
        genc_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
        goto done;
    }
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    bool ok = write_fully(f, len_bytes, 8) == 0 && write_fully(f, json, json_len) == 0;
    for (size_t i = json_len; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < n_tensors; i++)
        ok = write_fully(f, tensors[i].data, tensor_count(tensors[i].rank, tensors[i].shape) * sizeof(float)) == 0;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        genc_fail(err, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        genc_fail(err, "%s: cannot replace: %s", path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = 0;
done:
    free(tmp);
    free(json);
    return rc;
}

static int read_file(const char *path, unsigned char **data, size_t *size, GencError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return genc_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return genc_fail(err, "%s: not a regular file", path);
    }
    *size = (size_t)st.st_size;
    *data = malloc(*size ? *size : 1);
    if (!*data) {
        fclose(f);
        return genc_fail(err, "%s: out of memory", path);
    }
    if (fread(*data, 1, *size, f) != *size) {
        free(*data);
        fclose(f);
        return genc_fail(err, "%s: read failed", path);
    }
    fclose(f);
    return 0;
}

int genc_safetensors_read(const char *path, GencSafetensors *out, GencError *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *file = NULL;
    size_t size = 0;
    if (read_file(path, &file, &size, err)) return -1;
    cJSON *root = NULL;
    int rc = -1;
    if (size < 8) {
        genc_fail(err, "%s: truncated: %zu bytes, not a safetensors file", path, size);
        goto done;
    }
    uint64_t header_len = 0;
    for (int i = 0; i < 8; i++) header_len |= (uint64_t)file[i] << (8 * i);
    if (header_len > size - 8 || header_len > MAX_HEADER) {
        genc_fail(err, "%s: not a safetensors file, or truncated (header length %llu, file %zu bytes)", path,
                  (unsigned long long)header_len, size);
        goto done;
    }
    root = cJSON_ParseWithLength((const char *)file + 8, (size_t)header_len);
    if (!cJSON_IsObject(root)) {
        genc_fail(err, "%s: the safetensors header is not a JSON object", path);
        goto done;
    }
    const unsigned char *data = file + 8 + header_len;
    size_t data_len = size - 8 - (size_t)header_len;
    int n = cJSON_GetArraySize(root);
    out->tensors = calloc((size_t)n + 1, sizeof(GencTensorIn));
    out->keys = calloc((size_t)n + 1, sizeof(char *));
    out->values = calloc((size_t)n + 1, sizeof(char *));
    if (!out->tensors || !out->keys || !out->values) {
        genc_fail(err, "%s: out of memory", path);
        goto done;
    }
    for (cJSON *item = root->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            int m = cJSON_GetArraySize(item);
            if (!cJSON_IsObject(item)) {
                genc_fail(err, "%s: __metadata__ is not an object of strings", path);
                goto done;
            }
            free(out->keys);
            free(out->values);
            out->keys = calloc((size_t)m + 1, sizeof(char *));
            out->values = calloc((size_t)m + 1, sizeof(char *));
            if (!out->keys || !out->values) {
                genc_fail(err, "%s: out of memory", path);
                goto done;
            }
            for (cJSON *kv = item->child; kv; kv = kv->next) {
                if (!cJSON_IsString(kv)) {
                    genc_fail(err, "%s: metadata '%s' is not a string", path, kv->string);
                    goto done;
                }
                out->keys[out->n_metadata] = strdup(kv->string);
                out->values[out->n_metadata++] = strdup(kv->valuestring);
            }
            continue;
        }
        GencTensorIn *t = &out->tensors[out->n_tensors];
        cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
        cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets) ||
            cJSON_GetArraySize(offsets) != 2) {
            genc_fail(err, "%s: tensor '%s' lacks dtype, shape or data_offsets", path, item->string);
            goto done;
        }
        if (strcmp(dtype->valuestring, "F32") != 0) {
            genc_fail(err, "%s: tensor '%s' has dtype %s; genc reads F32", path, item->string, dtype->valuestring);
            goto done;
        }
        t->rank = cJSON_GetArraySize(shape);
        if (t->rank > GENC_MAX_DIMS) {
            genc_fail(err, "%s: tensor '%s' has %d dimensions; at most %d", path, item->string, t->rank, GENC_MAX_DIMS);
            goto done;
        }
        double count = 1;
        for (int d = 0; d < t->rank; d++) {
            cJSON *dim = cJSON_GetArrayItem(shape, d);
            if (!cJSON_IsNumber(dim) || dim->valuedouble < 0 || dim->valuedouble > 1e9 ||
                dim->valuedouble != (double)(int64_t)dim->valuedouble) {
                genc_fail(err, "%s: tensor '%s' has a bad shape", path, item->string);
                goto done;
            }
            t->shape[d] = (int64_t)dim->valuedouble;
            count *= dim->valuedouble;
        }
        cJSON *first = cJSON_GetArrayItem(offsets, 0), *last = cJSON_GetArrayItem(offsets, 1);
        double begin = cJSON_IsNumber(first) ? first->valuedouble : -1, end = cJSON_IsNumber(last) ? last->valuedouble : -1;
        if (!(begin >= 0 && begin <= end && end <= (double)data_len)) {
            genc_fail(err, "%s: tensor '%s' lies outside the file (offsets %.0f..%.0f, data is %zu bytes): truncated?",
                      path, item->string, begin, end, data_len);
            goto done;
        }
        if (end - begin != count * sizeof(float)) {
            genc_fail(err, "%s: tensor '%s' has %.0f bytes for a shape of %.0f floats", path, item->string,
                      end - begin, count);
            goto done;
        }
        t->count = (size_t)count;
        t->name = strdup(item->string);
        t->data = malloc(t->count * sizeof(float) + 1);
        if (!t->name || !t->data) {
            genc_fail(err, "%s: out of memory", path);
            goto done;
        }
        memcpy(t->data, data + (size_t)begin, t->count * sizeof(float));
        out->n_tensors++;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    free(file);
    if (rc) genc_safetensors_free(out);
    return rc;
}

const GencTensorIn *genc_safetensors_find(const GencSafetensors *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *genc_safetensors_meta(const GencSafetensors *st, const char *key)
{
    for (int i = 0; i < st->n_metadata; i++)
        if (strcmp(st->keys[i], key) == 0) return st->values[i];
    return NULL;
}

void genc_safetensors_free(GencSafetensors *st)
{
    for (int i = 0; i < st->n_tensors; i++) {
        free(st->tensors[i].name);
        free(st->tensors[i].data);
    }
    for (int i = 0; i < st->n_metadata; i++) {
        free(st->keys[i]);
        free(st->values[i]);
    }
    free(st->tensors);
    free(st->keys);
    free(st->values);
    memset(st, 0, sizeof *st);
}
