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

#include "util/arena.h"
#include "util/props.h"

#define MAX_LISTENERS 8
#define MAX_LOG_DIRS 8
/* log.page.cache.window.bytes unless set (bench/README.md, "The page cache kept to a window") */
#define LOG_PAGE_CACHE_WINDOW_DEFAULT 0

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
    int32_t num_network_threads;        /* 3: threads that own the sockets (net/server.c) */
    int32_t num_io_threads;             /* 8: threads that write a request's partitions at once (write_pool.h) */
    int32_t network_threads_min_cpus;   /* Samsa's: fewer online CPUs, no network threads (4) */
    /* Samsa's log.page.cache.window.bytes: each log's page cache kept to this
     * much behind its end (storage/page_trim.h); 0 = all kept, as Kafka does */
    int64_t log_page_cache_window_bytes;
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
    bool unclean_leader_election_enable;              /* false */
    bool log_preallocate;                             /* false */
} broker_config;

/* Load and validate. Unknown keys are logged and ignored; an invalid value
 * fails with a message naming the key. Returns 0 or -1. */
int broker_config_load(broker_config *c, const props *p, char *err, size_t errlen);
void broker_config_free(broker_config *c);

/* Start-up check (config_security.c): resolves every listener's security
 * protocol through listener.security.protocol.map as Kafka does, and refuses
 * (returns -1, the reason naming the listener or key in err) what Samsa
 * cannot honour yet: SSL/SASL listeners (client, controller, inter-broker)
 * and an authorizer. Settings that act only on such listeners are warned
 * about. Returns 0 when the node may start. */
int broker_config_check_security(const broker_config *c, char *err, size_t errlen);
/* A listener's security protocol ("PLAINTEXT", "SSL", "SASL_PLAINTEXT",
 * "SASL_SSL") through listener.security.protocol.map; NULL when unmapped. */
const char *broker_config_listener_protocol(const broker_config *c, const char *name);

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
    int64_t segment_jitter_ms;
    int64_t min_compaction_lag_ms;
    int64_t max_compaction_lag_ms;
    double min_cleanable_dirty_ratio;
    bool compact, delete_;          /* cleanup.policy contains compact / delete */
    bool preallocate;
    bool unclean_leader_election_enable;
    bool message_downconversion_enable;
    int64_t message_timestamp_before_max_ms; /* falls back to difference.max.ms */
    int64_t message_timestamp_after_max_ms;
} topic_config;

/* Resolve a topic's settings from broker config and its overrides
 * (parallel key/value arrays of NUL-terminated strings). */
void topic_config_resolve(topic_config *out, const broker_config *b, const char *const *keys,
                          const char *const *values, int n);

/* Validate one topic config as CreateTopics/AlterConfigs would. Returns a
 * Kafka error code (INVALID_CONFIG = 40) with Kafka's message in err. */
int16_t topic_config_validate(const char *key, const char *value, char *err, size_t errlen);
bool topic_config_known(const char *key);

/* ---- the config definitions (Kafka's ConfigDef), shared by the loader,
 * the validators and DescribeConfigs ---- */

/* Types with DescribeConfigs' ConfigType numbering. */
enum {
    CFG_BOOLEAN = 1, CFG_STRING = 2, CFG_INT = 3, CFG_SHORT = 4, CFG_LONG = 5,
    CFG_DOUBLE = 6, CFG_LIST = 7, CFG_CLASS = 8, CFG_PASSWORD = 9
};

/* Sources with DescribeConfigs' ConfigSource numbering. */
enum {
    CFG_SRC_DYNAMIC_TOPIC = 1, CFG_SRC_DYNAMIC_BROKER = 2, CFG_SRC_DYNAMIC_DEFAULT_BROKER = 3,
    CFG_SRC_STATIC_BROKER = 4, CFG_SRC_DEFAULT = 5
};
/* Kafka's name of a ConfigSource code (DescribeConfigs), e.g. "DYNAMIC_TOPIC_CONFIG". */
const char *config_source_name(int8_t source);

typedef struct config_def config_def; /* opaque: one key's name, type, default, validator */

const config_def *broker_config_def(const char *name);
const config_def *topic_config_def(const char *name);
int broker_config_def_count(void);
const config_def *broker_config_def_at(int i);
int topic_config_def_count(void);
const config_def *topic_config_def_at(int i);
const char *config_def_name(const config_def *d);
int config_def_type(const config_def *d);
const char *config_def_default(const config_def *d); /* NULL: no default */
const char *config_def_doc(const config_def *d);     /* NULL: none */
/* Whether Kafka lets AlterConfigs change this broker key at runtime. */
bool broker_config_is_dynamic(const char *name);
/* SSL keystore/truststore keys Kafka only accepts with a listener prefix. */
bool broker_config_needs_listener_prefix(const char *name);

/* Check value against d's type and validator as Kafka's ConfigDef does.
 * Returns 0, or -1 with Kafka's message ("Invalid value abc for
 * configuration num.partitions: Not a number of type INT") in err. */
int config_check_value(const config_def *d, const char *value, char *err, size_t errlen);

/* Broker synonyms of a topic config in precedence order (e.g. retention.ms
 * -> log.retention.ms, log.retention.minutes, log.retention.hours). Returns
 * the count (0 for topic-only keys such as remote.storage.enable). */
int topic_config_synonyms(const char *topic_key, const char **out, int max);
/* Broker keys that describe the same setting as name (name itself first
 * when it is the primary one), as Kafka's DynamicBrokerConfig does. */
int broker_config_synonyms(const char *name, const char **out, int max);

/* Where a broker key's value comes from, in Kafka's precedence: dynamic
 * per-broker, then dynamic cluster default, then static (server.properties).
 * The dynamic sets are parallel key/value arrays (either may be empty). */
typedef struct config_layers {
    const props *static_cfg;
    const char *const *dyn_broker_keys, *const *dyn_broker_values;
    int ndyn_broker;
    const char *const *dyn_default_keys, *const *dyn_default_values;
    int ndyn_default;
} config_layers;

/* Same as topic_config_resolve, but broker synonyms are looked up through
 * all layers (so a dynamic log.retention.ms applies to topics). */
void topic_config_resolve_layers(topic_config *out, const config_layers *l, const char *const *keys,
                                 const char *const *values, int n);

/* ---- description for DescribeConfigs ---- */

typedef struct config_synonym {
    const char *name;
    const char *value;   /* NULL for sensitive keys */
    int8_t source;
} config_synonym;

#define CONFIG_MAX_SYNONYMS 12

typedef struct config_entry {
    const char *name;
    const char *value;   /* NULL when unset or sensitive */
    int8_t source;
    int8_t type;         /* CFG_* */
    bool read_only;
    bool sensitive;
    const char *doc;
    config_synonym synonyms[CONFIG_MAX_SYNONYMS];
    int nsynonyms;
} config_entry;

/* Every topic config of a topic with its overrides: value, source and all
 * synonyms (the caller drops them unless include_synonyms). Strings are in
 * arena a or static. Returns the count written (at most max). */
int config_describe_topic(const config_layers *l, const char *const *keys, const char *const *values,
                          int n, config_entry *out, int max, karena *a);
/* Every broker config. per_broker is false when describing the cluster
 * default resource (name ""), which lists only the dynamic defaults. */
int config_describe_broker(const config_layers *l, int32_t node_id, bool per_broker,
                           config_entry *out, int max, karena *a);

#endif
