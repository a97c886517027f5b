/* crc32c.c - CRC-32C with a hardware path (SSE4.2 crc32 instruction) and a
 * portable slicing-by-8 fallback, chosen once at start-up.
 *
 * The crc32 instruction takes 3 cycles but the CPU can start one every
 * cycle, so a single dependent chain runs at a third of the possible rate.
 * The hardware path therefore cuts long buffers into chunks of three equal
 * blocks, runs the three CRCs side by side in one loop and then joins them.
 * Joining uses the linearity of the bare CRC register (no pre/post
 * inversion): crc(r, A||B) = shift(crc(r, A), |B|) ^ crc(0, B), where
 * shift(c, n) is c run over n zero bytes, which is c * x^(8n) mod P. For
 * each fixed block size, shift is a 4 x 256 table built at start-up.
 */
#include "util/crc32c.h"
#include "util/crc32c_internal.h"

#include <stdbool.h>
#include <string.h>

#define POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static int impl; /* 1 = software, 2 = hardware; chosen before main() */

/* ---- GF(2) arithmetic mod P, reflected: bit 31 holds x^0, bit 0 x^31 ---- */

static uint32_t gf2_mulmod(uint32_t a, uint32_t b) {
    uint32_t prod = 0;
    for (uint32_t bit = 1u << 31; bit; bit >>= 1) {
        if (a & bit) prod ^= b;
        b = (b & 1) ? (b >> 1) ^ POLY : b >> 1; /* b *= x */
    }
    return prod;
}

/* x^(8 * nbytes) mod P: the factor a CRC register gets from nbytes zeros. */
static uint32_t x_pow_bytes(size_t nbytes) {
    uint32_t result = 1u << 31; /* x^0 */
    uint32_t square = 1u << 23; /* x^8 */
    for (; nbytes; nbytes >>= 1) {
        if (nbytes & 1) result = gf2_mulmod(result, square);
        square = gf2_mulmod(square, square);
    }
    return result;
}

/* shift(c) = c * x^(8n) mod P, looked up one byte of c at a time. */
typedef struct {
    uint32_t t[4][256];
} shift_table;

static void build_shift(shift_table *st, size_t nbytes) {
    uint32_t factor = x_pow_bytes(nbytes);
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) st->t[k][b] = gf2_mulmod(b << (8 * k), factor);
}

static inline uint32_t crc_shift(const shift_table *st, uint32_t crc) {
    return st->t[0][crc & 0xff] ^ st->t[1][(crc >> 8) & 0xff] ^ st->t[2][(crc >> 16) & 0xff] ^
           st->t[3][crc >> 24];
}

/* ---- portable slicing-by-8 ---- */

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len) {
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* little-endian hosts only: x86_64 and arm64 */
        v ^= crc;
        crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
              table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^
              table[2][(v >> 40) & 0xff] ^ table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

/* ---- SSE4.2, three streams ---- */

#if defined(__x86_64__)
/* Per-stream block sizes, largest first: a buffer goes in chunks of three
 * blocks of the first size while it lasts, then of the next, and what is
 * left after the smallest in one chain. Measured on the build machine:
 * adding 8192 or 1024 or 64 changed nothing beyond noise. */
static const size_t block_sizes[] = {4096, 256};
#define NTIERS (sizeof block_sizes / sizeof block_sizes[0])
static shift_table block_shift[NTIERS];

/* CRC register r over the chunk of 3 * block bytes at p; returns the new r.
 * The three streams start from 0 so that they do not wait for r: r only
 * joins in the table lookups at the end, crc(r, A||B||C) =
 * shift(shift(shift(r) ^ a) ^ b) ^ c, and the next chunk's streams can run
 * while those lookups are in flight. */
__attribute__((target("sse4.2"), always_inline)) static inline uint32_t
crc_hw_chunk(uint32_t r, const uint8_t *p, size_t block, const shift_table *st) {
    uint64_t a = 0, b = 0, c = 0;
    for (const uint8_t *end = p + block; p < end; p += 8) {
        uint64_t va, vb, vc;
        memcpy(&va, p, 8);
        memcpy(&vb, p + block, 8);
        memcpy(&vc, p + 2 * block, 8);
        a = __builtin_ia32_crc32di(a, va);
        b = __builtin_ia32_crc32di(b, vb);
        c = __builtin_ia32_crc32di(c, vc);
    }
    r = crc_shift(st, r) ^ (uint32_t)a;
    r = crc_shift(st, r) ^ (uint32_t)b;
    return crc_shift(st, r) ^ (uint32_t)c;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len) {
    /* Byte steps up to an 8-byte boundary, so the wide loads never straddle
     * a cache line. */
    while (len && ((uintptr_t)p & 7)) {
        crc = __builtin_ia32_crc32qi(crc, *p++);
        len--;
    }
    for (size_t t = 0; t < NTIERS; t++) {
        size_t block = block_sizes[t];
        for (; len >= 3 * block; len -= 3 * block, p += 3 * block)
            crc = crc_hw_chunk(crc, p, block, &block_shift[t]);
    }
    uint64_t r = crc;
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        r = __builtin_ia32_crc32di(r, v);
    }
    crc = (uint32_t)r;
    while (len--) crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
static bool have_hw(void) { return __builtin_cpu_supports("sse4.2"); }
static void build_hw_tables(void) {
    for (size_t t = 0; t < NTIERS; t++) build_shift(&block_shift[t], block_sizes[t]);
}
#else
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len) { return crc_sw(crc, p, len); }
static bool have_hw(void) { return false; }
static void build_hw_tables(void) {}
#endif

/* Chosen at load time so concurrent callers never race on the tables. */
__attribute__((constructor)) static void crc32c_setup(void) {
    build_tables();
    if (have_hw()) {
        build_hw_tables();
        impl = 2;
    } else {
        impl = 1;
    }
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len) {
    crc = ~crc;
    crc = impl == 2 ? crc_hw(crc, buf, len) : crc_sw(crc, buf, len);
    return ~crc;
}

uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len) {
    return ~crc_sw(~crc, buf, len);
}

const char *crc32c_impl_name(void) { return impl == 2 ? "sse4.2 x3" : "slicing-by-8"; }
