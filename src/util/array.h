/* array.h - growing a heap array that keeps its capacity. */
#ifndef SAMSA_ARRAY_H
#define SAMSA_ARRAY_H

#include <stddef.h>
#include <stdlib.h>

/* Room for need elements of elem bytes in *p, which holds *cap: doubles from
 * 16 until it fits. 0, or -1 out of memory (*p and *cap unchanged). */
static inline int array_reserve(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, (size_t)nc * elem);
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

#endif
