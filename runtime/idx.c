/* idx.c — the IDX files of MNIST and Fashion-MNIST, gzipped or plain (zlib
 * reads both). Every header field is checked against the file's real size. */
#include "genc_runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

int genc_fail(GencError *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

enum { IDX_MAX_BYTES = 1 << 30 };

/* The whole (decompressed) file, up to IDX_MAX_BYTES. */
static int read_all(const char *path, unsigned char **data, size_t *size, GencError *err)
{
    gzFile f = gzopen(path, "rb");
    if (!f) return genc_fail(err, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            gzclose(f);
            return genc_fail(err, "%s: out of memory", path);
        }
        if (len == cap) {
            if (cap >= IDX_MAX_BYTES) {
                free(buf);
                gzclose(f);
                return genc_fail(err, "%s: larger than %d bytes; not an IDX file of images", path, IDX_MAX_BYTES);
            }
            cap *= 2;
            unsigned char *grown = realloc(buf, cap);
            if (!grown) free(buf);
            buf = grown;
            continue;
        }
        int n = gzread(f, buf + len, (unsigned)(cap - len));
        if (n < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            int rc = genc_fail(err, "%s: corrupt or truncated gzip data (%s)", path, msg);
            free(buf);
            gzclose(f);
            return rc;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    gzclose(f);
    *data = buf;
    *size = len;
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int genc_idx_read(const char *path, GencIdx *out, GencError *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *data = NULL;
    size_t size = 0;
    if (read_all(path, &data, &size, err)) return -1;
    int rc = -1;
    if (size < 4) {
        genc_fail(err, "%s: truncated: %zu bytes, shorter than an IDX header", path, size);
        goto done;
    }
    if (data[0] != 0 || data[1] != 0 || data[2] != 0x08) {
        genc_fail(err, "%s: not an IDX file of unsigned bytes (magic %02x %02x %02x %02x, expected 00 00 08 0n)",
                  path, data[0], data[1], data[2], data[3]);
        goto done;
    }
    int ndims = data[3];
    if (ndims < 1 || ndims > 4) {
        genc_fail(err, "%s: IDX header gives %d dimensions; expected 1 to 4", path, ndims);
        goto done;
    }
    size_t header = 4 + 4 * (size_t)ndims;
    if (size < header) {
        genc_fail(err, "%s: truncated inside the header (%zu bytes, header needs %zu)", path, size, header);
        goto done;
    }
    size_t count = 1;
    for (int i = 0; i < ndims; i++) {
        uint32_t d = be32(data + 4 + 4 * i);
        if (d == 0 || d > (1u << 24)) {
            genc_fail(err, "%s: dimension %d is %u; not a plausible size", path, i, d);
            goto done;
        }
        out->dims[i] = (int)d;
        count *= d;
        if (count > IDX_MAX_BYTES) {
            genc_fail(err, "%s: header sizes multiply past %d bytes", path, IDX_MAX_BYTES);
            goto done;
        }
    }
    if (size - header != count) {
        genc_fail(err, "%s: %s: the header promises %zu bytes of data, the file holds %zu", path,
                  size - header < count ? "truncated" : "trailing bytes", count, size - header);
        goto done;
    }
    out->ndims = ndims;
    out->count = count;
    out->data = malloc(count ? count : 1);
    if (!out->data) {
        genc_fail(err, "%s: out of memory", path);
        goto done;
    }
    memcpy(out->data, data + header, count);
    rc = 0;
done:
    free(data);
    return rc;
}

void genc_idx_free(GencIdx *idx)
{
    free(idx->data);
    idx->data = NULL;
}

/* DIR/NAME.gz if it exists, else DIR/NAME. */
static char *find_file(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 8;
    char *path = malloc(n);
    if (!path) return NULL;
    snprintf(path, n, "%s/%s.gz", dir, name);
    if (access(path, R_OK) != 0) snprintf(path, n, "%s/%s", dir, name);
    return path;
}

int genc_dataset_load(const char *dir, const char *split, int limit, GencDataset *out, GencError *err)
{
    memset(out, 0, sizeof *out);
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    char *images_path = find_file(dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    char *labels_path = find_file(dir, name);
    GencIdx images = {0}, labels = {0};
    int rc = -1;
    if (!images_path || !labels_path) {
        genc_fail(err, "out of memory");
        goto done;
    }
    if (access(images_path, R_OK) != 0) {
        genc_fail(err, "%s: no such file (looked for %s-images-idx3-ubyte[.gz] in %s; Fashion-MNIST is in Debian's "
                       "dataset-fashion-mnist package)", images_path, split, dir);
        goto done;
    }
    if (genc_idx_read(images_path, &images, err)) goto done;
    if (images.ndims != 3) {
        genc_fail(err, "%s: holds a %d-dimensional array; images need 3 (count, height, width)", images_path,
                  images.ndims);
        goto done;
    }
    bool have_labels = access(labels_path, R_OK) == 0;
    if (have_labels) {
        if (genc_idx_read(labels_path, &labels, err)) goto done;
        if (labels.ndims != 1 || labels.dims[0] != images.dims[0]) {
            genc_fail(err, "%s: %d labels for %d images in %s", labels_path, labels.dims[0], images.dims[0],
                      images_path);
            goto done;
        }
    }
    int n = images.dims[0];
    if (limit > 0 && limit < n) n = limit;
    out->n = n;
    out->channels = 1;
    out->height = images.dims[1];
    out->width = images.dims[2];
    size_t pixels = (size_t)out->height * (size_t)out->width;
    out->images = malloc(sizeof(float) * pixels * (size_t)n);
    out->labels = have_labels ? malloc(sizeof(float) * (size_t)n) : NULL;
    if (!out->images || (have_labels && !out->labels)) {
        genc_fail(err, "%s: out of memory", images_path);
        goto done;
    }
    for (size_t i = 0; i < pixels * (size_t)n; i++) out->images[i] = images.data[i] / 255.0f;
    for (int i = 0; have_labels && i < n; i++) out->labels[i] = labels.data[i];
    rc = 0;
done:
    if (rc) genc_dataset_free(out);
    genc_idx_free(&images);
    genc_idx_free(&labels);
    free(images_path);
    free(labels_path);
    return rc;
}

void genc_dataset_free(GencDataset *d)
{
    free(d->images);
    free(d->labels);
    d->images = d->labels = NULL;
}
