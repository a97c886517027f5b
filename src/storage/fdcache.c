/* fdcache.c - LRU pool of index file descriptors (see fdcache.h).
 *
 * Entries live in a fixed array; a chained hash on (dir, base, suffix) finds
 * them and a doubly linked list orders them from most to least recently
 * used. List links are array indexes, -1 for none; bucket and chain links
 * are indexes + 1, 0 for none, so the zeroed arrays need no set-up pass: an
 * idle broker never touches the 190 KB of them (its RSS, issue 18). Entries
 * are handed out in array order, then reused from the free list. */
#include "storage/fdcache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>

#include "storage/fileio.h"
#include "storage/segment.h"

#define BUCKETS 8192 /* power of two, twice the largest pool */

typedef struct entry {
    const char *dir;
    const char *suffix;
    int64_t base;
    int fd;
    int lru_prev, lru_next;
    int chain;           /* in a bucket: next entry + 1 (0: none); on the free list: next free (-1: none) */
} entry;

static entry entries[FDC_MAX_CAPACITY];
static int buckets[BUCKETS];             /* first entry + 1, 0: empty */
static int lru_head = -1, lru_tail = -1; /* head: most recent */
static int free_head = -1;
static int never_used;                   /* entries[never_used..] have not been handed out yet */
static int used;
static int capacity = FDC_DEFAULT_CAPACITY;

static unsigned bucket_of(const char *dir, int64_t base, const char *suffix) {
    uint64_t h = (uint64_t)(uintptr_t)dir * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)base * 0xc2b2ae3d27d4eb4full;
    (void)suffix; /* both indexes of a segment share a bucket */
    h ^= h >> 29;
    return (unsigned)(h & (BUCKETS - 1));
}

static void lru_unlink(int i) {
    entry *e = &entries[i];
    if (e->lru_prev >= 0) entries[e->lru_prev].lru_next = e->lru_next;
    else lru_head = e->lru_next;
    if (e->lru_next >= 0) entries[e->lru_next].lru_prev = e->lru_prev;
    else lru_tail = e->lru_prev;
}

static void lru_push_front(int i) {
    entry *e = &entries[i];
    e->lru_prev = -1;
    e->lru_next = lru_head;
    if (lru_head >= 0) entries[lru_head].lru_prev = i;
    lru_head = i;
    if (lru_tail < 0) lru_tail = i;
}

static int find(const char *dir, int64_t base, const char *suffix, int **link_out) {
    int *link = &buckets[bucket_of(dir, base, suffix)];
    while (*link) {
        int i = *link - 1;
        entry *e = &entries[i];
        if (e->dir == dir && e->base == base && strcmp(e->suffix, suffix) == 0) {
            if (link_out) *link_out = link;
            return i;
        }
        link = &e->chain;
    }
    return -1;
}

/* Closes entry i and returns it to the free list. */
static void drop(int i, int *link) {
    entry *e = &entries[i];
    storage_fio.close(e->fd);
    e->fd = -1;
    *link = e->chain;
    lru_unlink(i);
    e->chain = free_head;
    free_head = i;
    used--;
}

static void evict_lru(void) {
    int i = lru_tail;
    if (i < 0) return;
    int *link;
    find(entries[i].dir, entries[i].base, entries[i].suffix, &link);
    drop(i, link);
}

static void insert(const char *dir, int64_t base, const char *suffix, int fd) {
    while (used >= capacity) evict_lru();
    /* used < capacity <= FDC_MAX_CAPACITY: a free entry or a never used one is left */
    int i = free_head >= 0 ? free_head : never_used++;
    entry *e = &entries[i];
    if (i == free_head) free_head = e->chain;
    e->dir = dir;
    e->base = base;
    e->suffix = suffix;
    e->fd = fd;
    unsigned b = bucket_of(dir, base, suffix);
    e->chain = buckets[b];
    buckets[b] = i + 1;
    lru_push_front(i);
    used++;
}

int fdc_get(const char *dir, int64_t base, const char *suffix) {
    int i = find(dir, base, suffix, NULL);
    if (i >= 0) {
        if (lru_head != i) {
            lru_unlink(i);
            lru_push_front(i);
        }
        return entries[i].fd;
    }
    char path[PATH_MAX];
    if (seg_path(path, sizeof path, dir, base, suffix) != 0) return -1;
    int fd = storage_fio.open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && used > 0) {
        /* Out of descriptors elsewhere (connections): give back a share. */
        for (int k = used / 4 + 1; k > 0 && used > 0; k--) evict_lru();
        fd = storage_fio.open(path, O_RDWR | O_CLOEXEC, 0);
    }
    if (fd < 0) return -1;
    insert(dir, base, suffix, fd);
    return fd;
}

void fdc_adopt(const char *dir, int64_t base, const char *suffix, int fd) {
    int *link;
    int i = find(dir, base, suffix, &link);
    if (i >= 0) drop(i, link);
    insert(dir, base, suffix, fd);
}

void fdc_forget(const char *dir, int64_t base, const char *suffix) {
    int *link;
    int i = find(dir, base, suffix, &link);
    if (i >= 0) drop(i, link);
}

void fdc_set_capacity(int n) {
    if (n < 16) n = 16;
    if (n > FDC_MAX_CAPACITY) n = FDC_MAX_CAPACITY;
    capacity = n;
    while (used > capacity) evict_lru();
}

int fdc_open_count(void) { return used; }
