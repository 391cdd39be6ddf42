/* image.c — PNG grids of images through libpng. */
#define _POSIX_C_SOURCE 200809L
#include "genc_runtime.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { GRID_PAD = 2 };

static unsigned char to_byte(float x, float lo, float hi)
{
    float u = (x - lo) / (hi - lo);
    if (!(u > 0)) u = 0; /* NaN becomes black */
    if (u > 1) u = 1;
    return (unsigned char)(u * 255.0f + 0.5f);
}

int genc_png_write_grid(const char *path, const float *images, int n, int channels, int height, int width, int cols,
                        float lo, float hi, GencError *err)
{
    if (n <= 0 || cols <= 0 || (channels != 1 && channels != 3))
        return genc_fail(err, "%s: nothing to draw (%d images of %d channels)", path, n, channels);
    int rows = (n + cols - 1) / cols;
    int W = cols * (width + GRID_PAD) + GRID_PAD, H = rows * (height + GRID_PAD) + GRID_PAD;
    size_t row_bytes = (size_t)W * (size_t)channels;
    unsigned char *pixels = calloc((size_t)H, row_bytes);
    png_bytep *row_ptrs = malloc(sizeof(png_bytep) * (size_t)H);
    size_t tmp_len = strlen(path) + 5;
    char *tmp = malloc(tmp_len);
    FILE *f = NULL;
    png_structp png = NULL;
    png_infop info = NULL;
    int rc = -1;
    if (!pixels || !row_ptrs || !tmp) {
        genc_fail(err, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int gy = i / cols, gx = i % cols;
        const float *img = images + (size_t)i * (size_t)channels * height * width;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < channels; c++) {
                    size_t py = (size_t)gy * (height + GRID_PAD) + GRID_PAD + y;
                    size_t px = (size_t)gx * (width + GRID_PAD) + GRID_PAD + x;
                    pixels[py * row_bytes + px * channels + c] =
                        to_byte(img[((size_t)c * height + y) * width + x], lo, hi);
                }
    }
    for (int y = 0; y < H; y++) row_ptrs[y] = pixels + (size_t)y * row_bytes;
    snprintf(tmp, tmp_len, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f) {
        genc_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
        goto done;
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        genc_fail(err, "%s: libpng could not start", path);
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        genc_fail(err, "%s: libpng failed while writing", path);
        goto done;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, row_ptrs);
    png_write_end(png, NULL);
    rc = 0;
done:
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    if (f && fclose(f) != 0 && rc == 0) rc = genc_fail(err, "%s: write failed", tmp);
    if (rc == 0 && rename(tmp, path) != 0) rc = genc_fail(err, "%s: cannot replace: %s", path, strerror(errno));
    if (rc != 0 && tmp && f) unlink(tmp);
    free(tmp);
    free(row_ptrs);
    free(pixels);
    return rc;
}
