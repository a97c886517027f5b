/* test_crc32c.c - CRC-32C: the three-stream hardware path and the portable
 * path against a bit-at-a-time reference.
 *
 * Covers known vectors, every length 0..1024, lengths around the chunk
 * boundaries of the hardware path and random lengths up to 70000, all 8
 * start alignments, random starting CRCs and incremental (split) calls.
 * Prints "crc32c: N passed, M failed".
 *
 * SAMSA_CRC_BENCH=1 also prints GB/s of the old single-chain hardware loop,
 * crc32c() and the portable path for 1 KiB, 16 KiB and 256 KiB buffers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/crc32c.h"
#include "util/crc32c_internal.h"

static int passed, failed;

#define CHECK_EQ(a, b)                                                            \
    do {                                                                          \
        unsigned long long _a = (a), _b = (b);                                    \
        if (_a == _b) passed++;                                                   \
        else {                                                                    \
            failed++;                                                             \
            fprintf(stderr, "%s:%d: %s == 0x%llx, expected %s == 0x%llx\n",       \
                    __FILE__, __LINE__, #a, _a, #b, _b);                          \
        }                                                                         \
    } while (0)

/* Reports a mismatch with the case that produced it, counting each check. */
#define CHECK_CASE(got, want, len, align, start)                                  \
    do {                                                                          \
        if ((got) == (want)) passed++;                                            \
        else {                                                                    \
            failed++;                                                             \
            if (failed < 20)                                                      \
                fprintf(stderr, "%s:%d: %s = 0x%08x, want 0x%08x (len %zu align %zu start 0x%08x)\n", \
                        __FILE__, __LINE__, #got, (unsigned)(got), (unsigned)(want),  \
                        (size_t)(len), (size_t)(align), (unsigned)(start));          \
        }                                                                         \
    } while (0)

/* The definition, one bit at a time: reflected polynomial 0x82f63b78 with
 * the register inverted on the way in and out. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t len) {
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

#define MAX_LEN 70000
static uint8_t buf[MAX_LEN + 64];

static void test_vectors(void) {
    const char *digits = "123456789";
    CHECK_EQ(crc32c(0, digits, 9), 0xE3069283u);
    CHECK_EQ(crc32c_portable(0, digits, 9), 0xE3069283u);
    CHECK_EQ(crc_ref(0, (const uint8_t *)digits, 9), 0xE3069283u);

    uint8_t v[32];
    memset(v, 0, sizeof v);
    CHECK_EQ(crc32c(0, v, 32), 0x8A9136AAu);
    CHECK_EQ(crc32c_portable(0, v, 32), 0x8A9136AAu);
    memset(v, 0xff, sizeof v);
    CHECK_EQ(crc32c(0, v, 32), 0x62A8AB43u);
    CHECK_EQ(crc32c_portable(0, v, 32), 0x62A8AB43u);

    CHECK_EQ(crc32c(0, NULL, 0), 0u);
    CHECK_EQ(crc32c(0x12345678u, NULL, 0), 0x12345678u);
}

/* One length at one alignment: crc32c() and the portable path agree with
 * each other, and with the reference when with_ref is set. */
static void check_len(size_t len, size_t align, int with_ref) {
    const uint8_t *p = buf + align;
    uint32_t start = (rng() & 3) == 0 ? 0 : (uint32_t)rng();
    uint32_t fast = crc32c(start, p, len);
    uint32_t portable = crc32c_portable(start, p, len);
    CHECK_CASE(fast, portable, len, align, start);
    if (with_ref) {
        uint32_t want = crc_ref(start, p, len);
        CHECK_CASE(fast, want, len, align, start);
    }
}

static void test_every_short_length(void) {
    for (size_t len = 0; len <= 1024; len++)
        for (size_t align = 0; align < 8; align++) check_len(len, align, 1);
}

/* Lengths just around multiples of the chunk sizes (3 x 256 and 3 x 4096
 * bytes per chunk; 3 x 8192 in case the tiers change), where the loops hand
 * over to one another. */
static void test_chunk_boundaries(void) {
    static const size_t chunks[] = {3 * 256, 3 * 4096, 3 * 8192};
    static const int deltas[] = {-9, -8, -7, -1, 0, 1, 7, 8, 9, 3 * 256 - 1};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
        for (size_t m = 1; m * chunks[c] + 3 * 256 <= MAX_LEN; m++)
            for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
                size_t len = m * chunks[c] + deltas[d];
                for (size_t align = 0; align < 8; align++)
                    check_len(len, align, align == (m + d) % 8);
            }
}

static void test_random_lengths(void) {
    for (int i = 0; i < 300; i++) {
        size_t len = rng() % (MAX_LEN + 1);
        for (size_t align = 0; align < 8; align++) check_len(len, align, align == (size_t)i % 8);
    }
}

/* crc32c(crc32c(c, A), B) == crc32c(c, A||B), split anywhere. */
static void test_incremental(void) {
    for (int i = 0; i < 400; i++) {
        size_t len = i < 200 ? rng() % 4096 : rng() % (MAX_LEN + 1);
        size_t align = rng() % 8;
        const uint8_t *p = buf + align;
        uint32_t start = (uint32_t)rng();
        uint32_t whole = crc32c(start, p, len);
        size_t s1 = len ? rng() % (len + 1) : 0;
        size_t s2 = s1 + (len - s1 ? rng() % (len - s1 + 1) : 0);
        uint32_t parts = crc32c(start, p, s1);
        parts = crc32c(parts, p + s1, s2 - s1);
        parts = crc32c(parts, p + s2, len - s2);
        CHECK_CASE(parts, whole, len, align, start);
        uint32_t sw = crc32c_portable(start, p, s1);
        sw = crc32c_portable(sw, p + s1, len - s1);
        CHECK_CASE(sw, whole, len, align, start);
    }
}

/* ---- benchmark (SAMSA_CRC_BENCH=1) ---- */

#if defined(__x86_64__)
/* The hardware loop before the three-stream version: one dependent chain. */
__attribute__((target("sse4.2"))) static uint32_t crc_one_chain(uint32_t crc, const void *buf_, size_t len) {
    const uint8_t *p = buf_;
    uint64_t c = ~crc;
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Best of 7 runs of about 40 ms each, in GB/s. */
static double bench_one(uint32_t (*fn)(uint32_t, const void *, size_t), const uint8_t *p, size_t len) {
    double best = 0;
    volatile uint32_t sink = 0;
    for (int run = 0; run < 7; run++) {
        size_t iters = 0;
        double t0 = now_s(), t1;
        uint32_t c = 0;
        do {
            for (int k = 0; k < 64; k++) c = fn(c, p, len);
            iters += 64;
            t1 = now_s();
        } while (t1 - t0 < 0.04);
        sink ^= c;
        double gbs = (double)iters * len / (t1 - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    (void)sink;
    return best;
}

static void bench(void) {
    static const size_t sizes[] = {1024, 16384, 262144};
    uint8_t *big = malloc(262144 + 8);
    if (!big) return;
    for (size_t i = 0; i < 262144 + 8; i++) big[i] = (uint8_t)rng();
    printf("crc32c bench (%s), GB/s, best of 7:\n", crc32c_impl_name());
    printf("  %8s %12s %12s %12s\n", "bytes", "one-chain", "crc32c()", "portable");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
#if defined(__x86_64__)
        double old = bench_one(crc_one_chain, big, sizes[i]);
#else
        double old = 0;
#endif
        double now = bench_one(crc32c, big, sizes[i]);
        double sw = bench_one(crc32c_portable, big, sizes[i]);
        printf("  %8zu %12.2f %12.2f %12.2f   (x%.2f)\n", sizes[i], old, now, sw, old > 0 ? now / old : 0);
    }
    free(big);
}

int main(void) {
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rng();
    test_vectors();
    test_every_short_length();
    test_chunk_boundaries();
    test_random_lengths();
    test_incremental();
    printf("crc32c (%s): %d passed, %d failed\n", crc32c_impl_name(), passed, failed);
    const char *b = getenv("SAMSA_CRC_BENCH");
    if (b && *b && strcmp(b, "0") != 0) bench();
    return failed ? 1 : 0;
}
