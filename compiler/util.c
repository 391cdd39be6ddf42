/* util.c — the compiler's arena, user errors and small helpers. */
#include "compiler.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} Chunk;

static Chunk *chunks;

void *xalloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!chunks || chunks->used + size > chunks->cap) {
        size_t cap = size > (1 << 20) ? size : (1 << 20);
        Chunk *c = malloc(sizeof(Chunk) + cap);
        if (!c) fatal("out of memory");
        c->next = chunks;
        c->used = 0;
        c->cap = cap;
        chunks = c;
    }
    void *p = chunks->data + chunks->used;
    chunks->used += size;
    memset(p, 0, size);
    return p;
}

void free_all(void)
{
    while (chunks) {
        Chunk *next = chunks->next;
        free(chunks);
        chunks = next;
    }
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xalloc(n), s, n);
}

char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void vec_push(Vec *v, void *item)
{
    if (v->len == v->cap) {
        int cap = v->cap ? 2 * v->cap : 8;
        void **items = xalloc(sizeof(void *) * (size_t)cap);
        if (v->len) memcpy(items, v->items, sizeof(void *) * (size_t)v->len);
        v->items = items;
        v->cap = cap;
    }
    v->items[v->len++] = item;
}

_Noreturn void error_at(SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: ", loc.file ? loc.file : "?", loc.line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    free_all();
    exit(1);
}

_Noreturn void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("genc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    free_all();
    exit(1);
}

_Noreturn void internal_error(const char *file, int line)
{
    fprintf(stderr, "genc: internal error at %s:%d (a bug in genc, not in your spec)\n", file, line);
    abort();
}

size_t dims_count(Dims d)
{
    size_t n = 1;
    for (int i = 0; i < d.rank; i++) n *= (size_t)d.dim[i];
    return n;
}

char *dims_str(Dims d, bool batched)
{
    char buf[128];
    int len = snprintf(buf, sizeof buf, "[%s", batched ? "B" : "");
    for (int i = 0; i < d.rank; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%d", (i || batched) ? "," : "", d.dim[i]);
    snprintf(buf + len, sizeof buf - (size_t)len, "]");
    return xstrdup(buf);
}

bool is_identifier(const char *s)
{
    if (!s || !*s || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}
