/* arena.h - bump allocator for per-request memory.
 *
 * Every decoded request and every response under construction lives in one
 * arena that is reset when the request is done. Nothing allocated from an
 * arena is freed individually, so decoders never leak on error paths.
 */
#ifndef SAMSA_ARENA_H
#define SAMSA_ARENA_H

#include <stddef.h>

typedef struct karena_chunk karena_chunk;

typedef struct karena {
    karena_chunk *head;   /* newest chunk; older ones are linked behind it */
    size_t total;         /* bytes handed out since the last reset */
    size_t limit;         /* 0 = unlimited; allocations past it fail */
} karena;

void karena_init(karena *a, size_t limit);
/* Returns zeroed, 8-byte aligned memory, or NULL when out of memory or over
 * the arena's limit. */
void *karena_alloc(karena *a, size_t size);
/* Zeroed array of n elements of size sz; NULL on overflow or failure. */
void *karena_calloc(karena *a, size_t n, size_t sz);
char *karena_strndup(karena *a, const char *s, size_t len);
/* Printf into arena memory. */
char *karena_sprintf(karena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Frees all chunks but the first, which is kept for reuse. */
void karena_reset(karena *a);
void karena_free(karena *a);

#endif
