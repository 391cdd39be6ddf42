/* trainer_main.c — the main of every <model>_train program; the build names
 * the model's descriptor with -DGENC_MODEL=<model>_model. */
#include "genc_runtime.h"

#ifndef GENC_MODEL
#error "build with -DGENC_MODEL=<model>_model"
#endif

extern const GencModel GENC_MODEL;

int main(int argc, char **argv) { return genc_train_main(&GENC_MODEL, argc, argv); }
