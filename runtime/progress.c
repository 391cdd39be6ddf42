/* progress.c — a progress bar with losses, images/s and ETA on a terminal;
 * plain lines (a few per run) when the output is a file or a pipe. */
#define _POSIX_C_SOURCE 200809L
#include "genc_runtime.h"

#include <time.h>
#include <unistd.h>

double genc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void genc_progress_start(GencProgress *p, FILE *out, long first, long total)
{
    p->first = first;
    p->total = total;
    p->start = p->last_print = genc_now();
    p->out = out;
    p->tty = isatty(fileno(out));
}

static void format_duration(char *buf, size_t n, double seconds)
{
    long s = seconds > 0 && seconds < 1e8 ? (long)seconds : 0;
    if (s >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

void genc_progress_update(GencProgress *p, long iteration, int epoch, int n_losses, const char *const *names,
                          const float *losses, int images_per_iteration, bool force)
{
    double now = genc_now();
    double interval = p->tty ? 0.1 : 10.0;
    if (!force && now - p->last_print < interval) return;
    p->last_print = now;
    double elapsed = now - p->start;
    long done = iteration - p->first;
    double rate = elapsed > 0 ? done / elapsed : 0;
    char eta[32];
    format_duration(eta, sizeof eta, rate > 0 ? (p->total - iteration) / rate : 0);
    if (p->tty) {
        enum { WIDTH = 24 };
        int filled = p->total > 0 ? (int)(WIDTH * iteration / p->total) : 0;
        fprintf(p->out, "\r%6ld/%ld [", iteration, p->total);
        for (int i = 0; i < WIDTH; i++) fputc(i < filled ? '=' : i == filled ? '>' : ' ', p->out);
        fputc(']', p->out);
    } else {
        fprintf(p->out, "iteration %ld/%ld", iteration, p->total);
    }
    fprintf(p->out, " epoch %d", epoch);
    for (int i = 0; i < n_losses; i++) fprintf(p->out, " %s %.4f", names[i], losses[i]);
    fprintf(p->out, " | %.0f img/s | ETA %s", rate * images_per_iteration, eta);
    fputs(p->tty ? "\033[K" : "\n", p->out);
    fflush(p->out);
}

void genc_progress_finish(GencProgress *p)
{
    if (p->tty) fputc('\n', p->out);
    fflush(p->out);
}
