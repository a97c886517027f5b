/* crc32c.h - CRC-32C (Castagnoli), the checksum of Kafka record batches v2. */
#ifndef SAMSA_CRC32C_H
#define SAMSA_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c(0, buf, len) gives the checksum of buf; pass a previous result as
 * crc to continue over more bytes. Uses SSE4.2 when the CPU has it. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
