/* offsets_format.h - __consumer_offsets records as Kafka 3.6.1's
 * GroupMetadataManager.formatRecordKeyAndValue prints them (kafka-dump-log
 * --offsets-decoder):
 *   offset_commit::group=<g>,partition=<topic>-<p>   offset=<n>[,metadata=<m>]
 *   group_metadata::group=<g>   {"protocolType":..,"protocol":..,"generationId":..,"assignment":"{..}"}
 *   unknown::version=<v>        (no payload)
 * and <DELETE> for a tombstone. */
#ifndef SAMSA_TOOLS_OFFSETS_FORMAT_H
#define SAMSA_TOOLS_OFFSETS_FORMAT_H

#include <stdint.h>

/* Format one record (key_len < 0: no key; value_len < 0: tombstone).
 * Returns 0 with *key_out / *value_out malloc'd (value NULL when Kafka
 * prints none), or -1 with *error_out malloc'd: the exception Kafka's tool
 * dies with ("org.apache.kafka.common.KafkaException: ..."). */
int offsets_format(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len, char **key_out,
                   char **value_out, char **error_out);

#endif
