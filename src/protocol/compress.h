/* compress.h - the four compression codecs of Kafka record batches.
 *
 * Codec ids are the low three bits of a batch's attributes. Output is
 * appended to a kwriter, so callers choose where bytes land. Framing follows
 * what the Java client writes, so a Java consumer can read anything we
 * compress:
 *   1 gzip   - RFC 1952 gzip members (several concatenated members are read)
 *   2 snappy - xerial framing ("\x82SNAPPY\0", versions, then length-prefixed
 *              raw snappy blocks); raw unframed snappy is also accepted on
 *              decompression, as some non-Java clients write it
 *   3 lz4    - LZ4 frame format, 64 KiB independent blocks, no checksums
 *   4 zstd   - zstd frames (streaming; content size not required)
 */
#ifndef SAMSA_COMPRESS_H
#define SAMSA_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/wire.h"

#define KCODEC_NONE 0
#define KCODEC_GZIP 1
#define KCODEC_SNAPPY 2
#define KCODEC_LZ4 3
#define KCODEC_ZSTD 4

/* Compress len bytes of in, appending to out. level <= 0 picks the codec's
 * default (what the Java producer uses); snappy ignores it. Returns 0, or -1
 * for an unknown codec or a library/allocation failure. */
int kcompress(int codec, const uint8_t *in, size_t len, kwriter *out, int level);

/* Decompress a whole compressed payload, appending to out. At most max_out
 * bytes are appended: a stream that would expand past that is an error (a
 * decompression bomb costs no more than max_out of memory). Returns 0, or -1
 * on corrupt input, truncation, an unknown codec or exceeding max_out. */
int kdecompress(int codec, const uint8_t *in, size_t len, kwriter *out, size_t max_out);

/* Same, for LZ4 inside magic-0 legacy messages: those clients computed the
 * frame descriptor checksum wrongly (KAFKA-3160), so it is not checked. */
int kdecompress_lz4_legacy(const uint8_t *in, size_t len, kwriter *out, size_t max_out);

/* Codec name as Kafka spells it ("none", "gzip", ...), "unknown" otherwise. */
const char *kcodec_name(int codec);

#endif
