/* metadata_json.h - metadata records as Kafka 3.6.1 prints them in
 * kafka-dump-log --cluster-metadata-decoder: the JSON of
 * ClusterMetadataLogMessageParser, {"type":"TOPIC_RECORD","version":0,
 * "data":{...}} with "data" as the record's generated JsonConverter writes
 * it (fields in schema order, tagged fields only when not default, uuids in
 * Kafka's base64, bytes in base64). The field tables are generated from
 * Kafka's metadata-records JSON files (codegen/gen_metadata_json.py). */
#ifndef SAMSA_TOOLS_METADATA_JSON_H
#define SAMSA_TOOLS_METADATA_JSON_H

#include <stddef.h>
#include <stdint.h>

/* The payload text for one record value (the metadata framing: frame
 * version, type, version, message) at `offset`: the JSON above, or Kafka's
 * "Error at <offset>, skipping. <why>" when it cannot be read. malloc'd. */
char *metadata_record_json(const uint8_t *value, size_t len, int64_t offset);

/* Kafka's SnapshotHeaderRecordJsonConverter / SnapshotFooterRecordJsonConverter
 * output for a control record value; NULL when it cannot be read. malloc'd. */
char *snapshot_header_json(const uint8_t *value, size_t len);
char *snapshot_footer_json(const uint8_t *value, size_t len);

#endif
