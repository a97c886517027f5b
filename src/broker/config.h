/* config.h - broker and topic configuration, with Kafka's names, types,
 * defaults and validation.
 *
 * Broker settings come from server.properties (+ --override), then dynamic
 * overrides stored in the metadata log (ConfigRecord for resource BROKER).
 * A topic's effective configuration is: its own overrides (ConfigRecord for
 * resource TOPIC) > the broker's synonym (e.g. log.segment.bytes for
 * segment.bytes) > Kafka's default. DescribeConfigs reports each value with
 * that source and its synonyms, as Kafka does.
 */
#ifndef SAMSA_CONFIG_H
#define SAMSA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/props.h"

#define MAX_LISTENERS 8
#define MAX_LOG_DIRS 8

typedef struct listener {
    char name[32];      /* PLAINTEXT, CONTROLLER, ... */
    char host[256];     /* "" = all interfaces */
    int port;
} listener;

typedef struct broker_config {
    props raw;                      /* every key as given (static config) */
    /* identity and roles */
    int32_t node_id;
    bool role_broker, role_controller;
    char controller_quorum_voters[512];
    char controller_listener_names[128];
    char inter_broker_listener_name[32];
    listener listeners[MAX_LISTENERS];
    int nlisteners;
    listener advertised[MAX_LISTENERS];
    int nadvertised;
    char log_dirs[MAX_LOG_DIRS][1024];
    int nlog_dirs;
    char metadata_log_dir[1024];    /* metadata.log.dir, default: first log dir */
    /* network */
    int32_t socket_request_max_bytes;   /* socket.request.max.bytes 104857600 */
    int32_t socket_send_buffer_bytes;   /* 102400 */
    int32_t socket_receive_buffer_bytes;
    int32_t queued_max_requests;        /* 500 */
    int64_t connections_max_idle_ms;    /* 600000 */
    int32_t max_connections;            /* INT32_MAX */
    int32_t max_connections_per_ip;     /* INT32_MAX */
    /* topics and logs */
    int32_t num_partitions;             /* 1 */
    int16_t default_replication_factor; /* 1 */
    int32_t min_insync_replicas;        /* 1 */
    bool auto_create_topics_enable;     /* true */
    bool delete_topic_enable;           /* true */
    int32_t message_max_bytes;          /* 1048588 */
    int64_t log_segment_bytes;          /* 1073741824 */
    int64_t log_roll_ms;                /* log.roll.ms / log.roll.hours (168h) */
    int64_t log_retention_ms;           /* log.retention.ms/.minutes/.hours (168h) */
    int64_t log_retention_bytes;        /* -1 */
    int64_t log_retention_check_interval_ms; /* 300000 */
    int64_t log_flush_interval_messages;    /* INT64_MAX */
    int64_t log_flush_interval_ms;          /* INT64_MAX when unset */
    int64_t log_flush_scheduler_interval_ms;
    int64_t log_flush_offset_checkpoint_interval_ms; /* 60000 */
    int32_t log_index_interval_bytes;   /* 4096 */
    int32_t log_index_size_max_bytes;   /* 10485760 */
    int64_t log_file_delete_delay_ms;   /* 60000 */
    char log_cleanup_policy[32];        /* delete */
    char log_message_timestamp_type[16];/* CreateTime */
    int64_t log_message_timestamp_difference_max_ms;
    char compression_type[16];          /* producer */
    /* groups and offsets */
    int32_t offsets_topic_num_partitions;       /* 50 */
    int16_t offsets_topic_replication_factor;   /* 3 */
    int64_t offsets_topic_segment_bytes;        /* 104857600 */
    int64_t offsets_retention_minutes;          /* 10080 */
    int64_t offsets_retention_check_interval_ms;/* 600000 */
    int32_t offset_metadata_max_bytes;          /* 4096 */
    int32_t group_initial_rebalance_delay_ms;   /* 3000 */
    int32_t group_min_session_timeout_ms;       /* 6000 */
    int32_t group_max_session_timeout_ms;       /* 1800000 */
    int32_t group_max_size;                     /* INT32_MAX */
    /* transactions */
    int32_t transaction_state_log_num_partitions;     /* 50 */
    int16_t transaction_state_log_replication_factor; /* 3 */
    int32_t transaction_state_log_min_isr;            /* 2 */
    int32_t transaction_max_timeout_ms;               /* 900000 */
    int64_t transactional_id_expiration_ms;           /* 604800000 */
    int64_t producer_id_expiration_ms;                /* 86400000 */
} broker_config;

/* Load and validate. Unknown keys are logged and ignored; an invalid value
 * fails with a message naming the key. Returns 0 or -1. */
int broker_config_load(broker_config *c, const props *p, char *err, size_t errlen);
void broker_config_free(broker_config *c);

/* A topic's effective settings. */
typedef struct topic_config {
    char cleanup_policy[32];        /* delete | compact | compact,delete */
    char compression_type[16];      /* producer | uncompressed | gzip | ... */
    int64_t delete_retention_ms;
    int64_t file_delete_delay_ms;
    int64_t flush_messages;
    int64_t flush_ms;
    int32_t index_interval_bytes;
    int32_t max_message_bytes;
    int64_t message_timestamp_difference_max_ms;
    bool log_append_time;           /* message.timestamp.type == LogAppendTime */
    int32_t min_insync_replicas;
    int64_t retention_bytes;
    int64_t retention_ms;
    int64_t segment_bytes;
    int32_t segment_index_bytes;
    int64_t segment_ms;
} topic_config;

/* Resolve a topic's settings from broker config and its overrides
 * (parallel key/value arrays of NUL-terminated strings). */
void topic_config_resolve(topic_config *out, const broker_config *b, const char *const *keys,
                          const char *const *values, int n);

/* Validate one topic config as CreateTopics/AlterConfigs would. Returns a
 * Kafka error code (INVALID_CONFIG = 40) with Kafka's message in err. */
int16_t topic_config_validate(const char *key, const char *value, char *err, size_t errlen);
bool topic_config_known(const char *key);

#endif
