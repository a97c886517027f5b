/* storage_cmd.h - kafka-storage (format, info, random-uuid) and the
 * meta.properties file every log dir carries. */
#ifndef SAMSA_STORAGE_CMD_H
#define SAMSA_STORAGE_CMD_H

#include <stddef.h>

#include "broker/config.h"

int storage_main(int argc, char **argv);

/* A new cluster id as Kafka's Uuid.randomUuid prints it (22 chars). */
void storage_random_uuid(char out[23]);
/* Write meta.properties (and create the dir). Returns 0 or -1. */
int storage_format_dir(const char *dir, const char *cluster_id, int node_id, char *err, size_t errlen);
/* Read cluster.id and node.id of a formatted dir: 0, 1 if not formatted, -1 on error. */
int storage_read_meta(const char *dir, char *cluster_id, size_t idlen, int *node_id, char *err,
                      size_t errlen);
/* The name Kafka prints for the metadata version this node writes. */
#define METADATA_VERSION_NAME "3.6-IV2"
#define METADATA_VERSION_LEVEL 14

#endif
