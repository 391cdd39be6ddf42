/* sample_grid.c — a program that uses an exported sampler and nothing of
 * genc's runtime: it draws 64 fashion items and writes them as an 8x8 PNG.
 *
 *   genc export models/mlp_gan.lua --weights runs/mlp_gan/checkpoint.safetensors \
 *       -o examples/out --name mlp_gan_sampler
 *   cc -O2 -Iexamples/out examples/sample_grid.c examples/out/mlp_gan_sampler.c -lpng -lm
 *   ./a.out 42 grid.png
 *
 * CMake builds it as build/examples/sample_grid from a short training run. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlp_gan_sampler.h"

enum { SIDE = 8, H = MLP_GAN_SAMPLER_HEIGHT, W = MLP_GAN_SAMPLER_WIDTH };

static int write_png(const char *path, const unsigned char *pixels, int width, int height)
{
    FILE *f = fopen(path, "wb");
    if (!f) return perror(path), -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "%s: cannot write the PNG\n", path);
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * width);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    unsigned long long seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    const char *path = argc > 2 ? argv[2] : "grid.png";
    static float image[MLP_GAN_SAMPLER_BATCH * MLP_GAN_SAMPLER_OUTPUT];
    static unsigned char grid[SIDE * H * SIDE * W];
    for (int i = 0; i < SIDE * SIDE; i++) {
        mlp_gan_sampler_sample_seeded(seed + (unsigned long long)i, image);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float v = (image[y * W + x] - MLP_GAN_SAMPLER_OUTPUT_LO) /
                          (MLP_GAN_SAMPLER_OUTPUT_HI - MLP_GAN_SAMPLER_OUTPUT_LO);
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                grid[((size_t)(i / SIDE) * H + y) * SIDE * W + (size_t)(i % SIDE) * W + x] = (unsigned char)(v * 255 + 0.5f);
            }
    }
    if (write_png(path, grid, SIDE * W, SIDE * H) != 0) return 1;
    printf("wrote %d samples to %s\n", SIDE * SIDE, path);
    return 0;
}
