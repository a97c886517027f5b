/* java_compat.h - behaviour of the Java runtime that Kafka's tools leak into
 * their output.
 *
 * Kafka's admin tools print exceptions as "<class name>: <message>" and
 * iterate java.util.HashMap/HashSet when printing results, so both the
 * exception class for a protocol error code and the iteration order of a
 * HashMap are part of what a user sees. This module reproduces them.
 */
#ifndef SAMSA_TOOLS_JAVA_COMPAT_H
#define SAMSA_TOOLS_JAVA_COMPAT_H

#include <stddef.h>
#include <stdint.h>

/* Fully qualified class of the exception Kafka's client raises for an error
 * code ("org.apache.kafka.common.errors.OffsetOutOfRangeException"); the
 * UnknownServerException class for codes it does not know; NULL for 0. */
const char *java_error_class(int16_t code);

/* java.lang.String.hashCode of a UTF-8 string (computed over UTF-16 units,
 * as Java does). */
int32_t java_string_hash(const char *s, size_t len);
/* org.apache.kafka.common.TopicPartition.hashCode. */
int32_t java_topic_partition_hash(const char *topic, int32_t partition);
/* java.lang.Integer.hashCode. */
static inline int32_t java_int_hash(int32_t v) { return v; }

/* Table size a java.util.HashMap reaches after n insertions, when created
 * with no size hint (initial_capacity 0) or with one. */
size_t java_hashmap_capacity(size_t n, size_t initial_capacity);

/* Iteration order of a java.util.HashMap holding keys with these hash codes
 * inserted in index order (hashes[i] belongs to the i-th inserted key), with
 * table size `capacity` (from java_hashmap_capacity). Writes the insertion
 * indexes in iteration order to order[0..n-1]. Returns 0, or -1 when out of
 * memory. Tree bins (8+ keys in one bucket) are not modelled. */
int java_hashmap_order(const int32_t *hashes, size_t n, size_t capacity, size_t *order);

#endif
