/* arena.c - bump allocator for per-request memory (see arena.h). */
#include "util/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK_MIN 8192

struct karena_chunk {
    karena_chunk *next;
    size_t cap;   /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

void karena_init(karena *a, size_t limit) {
    a->head = NULL;
    a->total = 0;
    a->limit = limit;
}

void *karena_alloc(karena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    if (a->limit && (size > a->limit || a->total > a->limit - size)) return NULL;
    karena_chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK_MIN ? size : ARENA_CHUNK_MIN;
        if (c && cap < c->cap * 2 && c->cap * 2 <= (1u << 20)) cap = c->cap * 2;
        c = malloc(sizeof(*c) + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

void *karena_calloc(karena *a, size_t n, size_t sz) {
    if (sz && n > SIZE_MAX / sz) return NULL;
    return karena_alloc(a, n * sz);
}

char *karena_strndup(karena *a, const char *s, size_t len) {
    char *p = karena_alloc(a, len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = 0;
    return p;
}

char *karena_sprintf(karena *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = karena_alloc(a, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void karena_reset(karena *a) {
    karena_chunk *c = a->head;
    if (!c) return;
    /* keep the newest (largest) chunk, free the rest */
    karena_chunk *rest = c->next;
    while (rest) {
        karena_chunk *n = rest->next;
        free(rest);
        rest = n;
    }
    c->next = NULL;
    c->used = 0;
    a->total = 0;
}

void karena_free(karena *a) {
    karena_chunk *c = a->head;
    while (c) {
        karena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}
