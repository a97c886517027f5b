/* crc32c_internal.h - for tests and benchmarks only: reach the portable
 * CRC-32C path directly and see which path crc32c() takes. Other code calls
 * crc32c() from util/crc32c.h. */
#ifndef SAMSA_CRC32C_INTERNAL_H
#define SAMSA_CRC32C_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* The slicing-by-8 path, same conventions as crc32c(). */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);

/* "sse4.2 x3" or "slicing-by-8": the path crc32c() uses on this CPU. */
const char *crc32c_impl_name(void);

#endif
