/* compress.c - gzip, snappy, lz4 and zstd for record batches (see compress.h).
 *
 * Every decompressor writes into the kwriter in bounded steps and stops as
 * soon as the output would pass max_out, so hostile input can never make us
 * allocate more than the caller allowed.
 */
#include "protocol/compress.h"

#include <dlfcn.h>
#include <lz4.h>
#include <lz4frame.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "util/log.h"

#define OUT_STEP (64 * 1024)
#define SNAPPY_BLOCK (32 * 1024) /* snappy-java's default block size */
#define GZIP_DEFAULT_LEVEL 6     /* java.util.zip.Deflater.DEFAULT_COMPRESSION */
#define ZSTD_DEFAULT_LEVEL 3     /* zstd-jni default, as the Java producer uses */

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

const char *kcodec_name(int codec) {
    switch (codec) {
    case KCODEC_NONE: return "none";
    case KCODEC_GZIP: return "gzip";
    case KCODEC_SNAPPY: return "snappy";
    case KCODEC_LZ4: return "lz4";
    case KCODEC_ZSTD: return "zstd";
    default: return "unknown";
    }
}

/* ---- output space helpers ---- */

/* Make room for up to `want` bytes at the end of w without committing them
 * (nor clearing them: the codec writes them); returns the write pointer or
 * NULL on allocation failure. The caller commits what it used with
 * commit_space(). */
static uint8_t *reserve_space(kwriter *w, size_t want) { return kw_room(w, want); }

static void commit_space(kwriter *w, size_t used) { w->len += used; }

/* How much a step may write: one byte beyond the bound, so that output
 * reaching past max_out is noticed rather than silently cut. */
static size_t step_size(size_t produced, size_t max_out, size_t in_len) {
    size_t left = max_out - produced + 1;
    size_t step = OUT_STEP;
    if (produced == 0 && in_len < OUT_STEP / 4) /* small payloads: small first step */
        step = in_len * 4 < 1024 ? 1024 : in_len * 4;
    return left < step ? left : step;
}

/* ---- gzip ---- */

static int gzip_compress(const uint8_t *in, size_t len, kwriter *out, int level) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (level <= 0 || level > 9) level = GZIP_DEFAULT_LEVEL;
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    int rc = -1;
    size_t bound = deflateBound(&zs, (uLong)len);
    uint8_t *dst = reserve_space(out, bound);
    if (dst && len <= UINT32_MAX && bound <= UINT32_MAX) {
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)len;
        zs.next_out = dst;
        zs.avail_out = (uInt)bound;
        if (deflate(&zs, Z_FINISH) == Z_STREAM_END) {
            commit_space(out, bound - zs.avail_out);
            rc = 0;
        }
    }
    deflateEnd(&zs);
    return rc;
}

static int gzip_decompress(const uint8_t *in, size_t len, kwriter *out, size_t max_out) {
    if (len > UINT32_MAX) return -1;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) return -1;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    size_t produced = 0;
    int rc = -1;
    for (;;) {
        size_t step = step_size(produced, max_out, len);
        uint8_t *dst = reserve_space(out, step);
        if (!dst) break;
        zs.next_out = dst;
        zs.avail_out = (uInt)step;
        int z = inflate(&zs, Z_NO_FLUSH);
        size_t got = step - zs.avail_out;
        commit_space(out, got);
        produced += got;
        if (produced > max_out) break;
        if (z == Z_STREAM_END) {
            /* Like java.util.zip.GZIPInputStream: another member may follow;
             * anything else after the end is ignored. */
            if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
                if (inflateReset(&zs) != Z_OK) break;
                continue;
            }
            rc = 0;
            break;
        }
        if (z != Z_OK && !(z == Z_BUF_ERROR && zs.avail_out == 0)) break;
        if (zs.avail_in == 0 && zs.avail_out != 0) break; /* truncated */
    }
    inflateEnd(&zs);
    return rc;
}

/* ---- snappy ----
 * libsnappy is C++: linked, it maps libstdc++, libgcc_s and libm into every
 * broker, 0.9 MB of an idle broker's 6.2 MB RSS (issue 18 asks <= 5 MB). It
 * is loaded on the first snappy batch instead (any thread: the log cleaner's
 * too), and the package depends on it by name (scripts/make-deb.sh). */

#define SNAPPY_SONAME "libsnappy.so.1"

static struct {
    snappy_status (*compress)(const char *in, size_t len, char *out, size_t *out_len);
    snappy_status (*uncompress)(const char *in, size_t len, char *out, size_t *out_len);
    size_t (*max_compressed_length)(size_t len);
    snappy_status (*uncompressed_length)(const char *in, size_t len, size_t *result);
    snappy_status (*validate_compressed_buffer)(const char *in, size_t len);
} snappy_lib;
static bool snappy_loaded;
static pthread_once_t snappy_once = PTHREAD_ONCE_INIT;

static void snappy_load(void) {
    void *h = dlopen(SNAPPY_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) { /* every snappy batch then fails to decode, as a corrupt one would */
        log_error("org.apache.kafka.common.compress.SnappyFactory", "cannot load %s (install libsnappy1v5): %s",
                  SNAPPY_SONAME, dlerror());
        return;
    }
    /* POSIX's way to take a function from dlsym (ISO C has no object-to-function pointer cast) */
    *(void **)&snappy_lib.compress = dlsym(h, "snappy_compress");
    *(void **)&snappy_lib.uncompress = dlsym(h, "snappy_uncompress");
    *(void **)&snappy_lib.max_compressed_length = dlsym(h, "snappy_max_compressed_length");
    *(void **)&snappy_lib.uncompressed_length = dlsym(h, "snappy_uncompressed_length");
    *(void **)&snappy_lib.validate_compressed_buffer = dlsym(h, "snappy_validate_compressed_buffer");
    snappy_loaded = snappy_lib.compress && snappy_lib.uncompress && snappy_lib.max_compressed_length &&
                    snappy_lib.uncompressed_length && snappy_lib.validate_compressed_buffer;
}

static bool snappy_ready(void) {
    pthread_once(&snappy_once, snappy_load);
    return snappy_loaded;
}

static int snappy_block_compress(const uint8_t *in, size_t len, kwriter *out) {
    size_t bound = snappy_lib.max_compressed_length(len);
    uint8_t *dst = reserve_space(out, bound);
    if (!dst) return -1;
    size_t n = bound;
    if (snappy_lib.compress((const char *)in, len, (char *)dst, &n) != SNAPPY_OK) return -1;
    commit_space(out, n);
    return 0;
}

/* xerial framing, as snappy-java's SnappyOutputStream writes it. */
static int snappy_xerial_compress(const uint8_t *in, size_t len, kwriter *out) {
    if (!snappy_ready()) return -1;
    kw_raw(out, xerial_magic, sizeof xerial_magic);
    kw_i32(out, 1); /* version */
    kw_i32(out, 1); /* minimum compatible version */
    for (size_t off = 0; off < len; off += SNAPPY_BLOCK) {
        size_t n = len - off < SNAPPY_BLOCK ? len - off : SNAPPY_BLOCK;
        size_t at = kw_reserve(out, 4);
        if (out->err) return -1;
        size_t before = out->len;
        if (snappy_block_compress(in + off, n, out) != 0) return -1;
        kw_patch_i32(out, at, (int32_t)(out->len - before));
    }
    return out->err ? -1 : 0;
}

static int snappy_block_decompress(const uint8_t *in, size_t len, kwriter *out,
                                   size_t *produced, size_t max_out) {
    size_t n;
    if (snappy_lib.uncompressed_length((const char *)in, len, &n) != SNAPPY_OK) return -1;
    if (n > max_out - *produced) return -1;
    if (n == 0) return snappy_lib.validate_compressed_buffer((const char *)in, len) == SNAPPY_OK ? 0 : -1;
    uint8_t *dst = reserve_space(out, n);
    if (!dst) return -1;
    size_t got = n;
    if (snappy_lib.uncompress((const char *)in, len, (char *)dst, &got) != SNAPPY_OK || got != n)
        return -1;
    commit_space(out, got);
    *produced += got;
    return 0;
}

static int snappy_decompress(const uint8_t *in, size_t len, kwriter *out, size_t max_out) {
    size_t produced = 0;
    if (!snappy_ready()) return -1;
    if (len < 16 || memcmp(in, xerial_magic, sizeof xerial_magic) != 0)
        return snappy_block_decompress(in, len, out, &produced, max_out);
    kreader r;
    kr_init(&r, in + 16, len - 16); /* skip magic and the two version ints */
    while (kr_remaining(&r) > 0) {
        int32_t n = kr_i32(&r);
        if (r.err || n < 0 || (size_t)n > kr_remaining(&r)) return -1;
        const uint8_t *blk = kr_take(&r, (size_t)n);
        if (snappy_block_decompress(blk, (size_t)n, out, &produced, max_out) != 0) return -1;
    }
    return 0;
}

/* ---- lz4 ---- */

static int lz4_compress(const uint8_t *in, size_t len, kwriter *out, int level) {
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent; /* Kafka's reader requires it */
    prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs.compressionLevel = level > 0 ? level : 0;
    size_t bound = LZ4F_compressFrameBound(len, &prefs);
    uint8_t *dst = reserve_space(out, bound);
    if (!dst) return -1;
    size_t n = LZ4F_compressFrame(dst, bound, in, len, &prefs);
    if (LZ4F_isError(n)) return -1;
    commit_space(out, n);
    return 0;
}

static int lz4_decompress(const uint8_t *in, size_t len, kwriter *out, size_t max_out) {
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) return -1;
    size_t produced = 0, pos = 0;
    int rc = -1;
    for (;;) {
        size_t step = step_size(produced, max_out, len);
        uint8_t *dst = reserve_space(out, step);
        if (!dst) break;
        size_t dst_size = step, src_size = len - pos;
        size_t hint = LZ4F_decompress(dctx, dst, &dst_size, in + pos, &src_size, NULL);
        if (LZ4F_isError(hint)) break;
        pos += src_size;
        commit_space(out, dst_size);
        produced += dst_size;
        if (produced > max_out) break;
        if (hint == 0) { /* frame complete; a concatenated frame may follow */
            if (len - pos >= 4 && in[pos] == 0x04 && in[pos + 1] == 0x22 && in[pos + 2] == 0x4d &&
                in[pos + 3] == 0x18)
                continue;
            rc = 0;
            break;
        }
        if (dst_size == 0 && (pos == len || src_size == 0)) break; /* truncated / stuck */
    }
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

/* xxHash32 with seed 0: only needed to repair the descriptor checksum that
 * pre-0.10 Kafka clients got wrong (they hashed the magic number too). */
static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint32_t xxh32(const uint8_t *p, size_t len) {
    const uint32_t P1 = 2654435761u, P2 = 2246822519u, P3 = 3266489917u, P4 = 668265263u,
                   P5 = 374761393u;
    const uint8_t *end = p + len;
    uint32_t h;
    if (len >= 16) {
        uint32_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = 0u - P1;
        for (; end - p >= 16; p += 16) {
            v1 = rotl32(v1 + le32(p) * P2, 13) * P1;
            v2 = rotl32(v2 + le32(p + 4) * P2, 13) * P1;
            v3 = rotl32(v3 + le32(p + 8) * P2, 13) * P1;
            v4 = rotl32(v4 + le32(p + 12) * P2, 13) * P1;
        }
        h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
    } else {
        h = P5;
    }
    h += (uint32_t)len;
    for (; end - p >= 4; p += 4) h = rotl32(h + le32(p) * P3, 17) * P4;
    for (; p < end; p++) h = rotl32(h + (*p) * P5, 11) * P1;
    h ^= h >> 15;
    h *= P2;
    h ^= h >> 13;
    h *= P3;
    h ^= h >> 16;
    return h;
}

int kdecompress_lz4_legacy(const uint8_t *in, size_t len, kwriter *out, size_t max_out) {
    if (len < 7) return -1;
    uint8_t flg = in[4];
    size_t desc_len = 2 + ((flg & 0x08) ? 8 : 0) + ((flg & 0x01) ? 4 : 0);
    if (len < 4 + desc_len + 1) return -1;
    /* Rewrite the header checksum in a copy of the header, then decompress
     * the header copy followed by the untouched rest. */
    uint8_t head[4 + 14 + 1];
    memcpy(head, in, 4 + desc_len);
    head[4 + desc_len] = (uint8_t)(xxh32(in + 4, desc_len) >> 8);
    kwriter tmp;
    kw_init(&tmp);
    kw_raw(&tmp, head, 4 + desc_len + 1);
    kw_raw(&tmp, in + 4 + desc_len + 1, len - (4 + desc_len + 1));
    size_t start = out->len;
    int rc = tmp.err ? -1 : lz4_decompress(tmp.buf, tmp.len, out, max_out);
    kw_free(&tmp);
    if (rc != 0 && !out->err) out->len = start;
    return rc != 0 || out->err ? -1 : 0;
}

/* ---- zstd ---- */

static int zstd_compress(const uint8_t *in, size_t len, kwriter *out, int level) {
    if (level <= 0) level = ZSTD_DEFAULT_LEVEL;
    size_t bound = ZSTD_compressBound(len);
    uint8_t *dst = reserve_space(out, bound);
    if (!dst) return -1;
    size_t n = ZSTD_compress(dst, bound, in, len, level);
    if (ZSTD_isError(n)) return -1;
    commit_space(out, n);
    return 0;
}

static int zstd_decompress(const uint8_t *in, size_t len, kwriter *out, size_t max_out) {
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds) return -1;
    ZSTD_initDStream(ds);
    ZSTD_inBuffer ib = {in, len, 0};
    size_t produced = 0, last = 1;
    int rc = -1;
    for (;;) {
        size_t step = step_size(produced, max_out, len);
        uint8_t *dst = reserve_space(out, step);
        if (!dst) break;
        ZSTD_outBuffer ob = {dst, step, 0};
        last = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(last)) break;
        commit_space(out, ob.pos);
        produced += ob.pos;
        if (produced > max_out) break;
        if (ib.pos == ib.size && ob.pos < ob.size) {
            rc = last == 0 ? 0 : -1; /* nonzero: the last frame was cut short */
            break;
        }
    }
    ZSTD_freeDStream(ds);
    return rc;
}

/* ---- dispatch ---- */

int kcompress(int codec, const uint8_t *in, size_t len, kwriter *out, int level) {
    size_t start = out->len;
    int rc;
    switch (codec) {
    case KCODEC_GZIP: rc = gzip_compress(in, len, out, level); break;
    case KCODEC_SNAPPY: rc = snappy_xerial_compress(in, len, out); break;
    case KCODEC_LZ4: rc = lz4_compress(in, len, out, level); break;
    case KCODEC_ZSTD: rc = zstd_compress(in, len, out, level); break;
    default: rc = -1;
    }
    if (rc != 0 || out->err) {
        if (!out->err) out->len = start;
        return -1;
    }
    return 0;
}

int kdecompress(int codec, const uint8_t *in, size_t len, kwriter *out, size_t max_out) {
    size_t start = out->len;
    int rc;
    switch (codec) {
    case KCODEC_GZIP: rc = gzip_decompress(in, len, out, max_out); break;
    case KCODEC_SNAPPY: rc = snappy_decompress(in, len, out, max_out); break;
    case KCODEC_LZ4: rc = lz4_decompress(in, len, out, max_out); break;
    case KCODEC_ZSTD: rc = zstd_decompress(in, len, out, max_out); break;
    default: rc = -1;
    }
    if (rc != 0 || out->err) {
        if (!out->err) out->len = start; /* drop partial output */
        return -1;
    }
    return 0;
}
