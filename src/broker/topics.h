/* topics.h - the topic registry and topic life cycle (see topics.c). */
#ifndef SAMSA_TOPICS_H
#define SAMSA_TOPICS_H

#include "broker/broker.h"

int topics_init(broker *b);
/* Bring the runtime (open logs, configs) in line with the metadata image. */
void topics_sync(broker *b);
void topics_close_all(broker *b);
/* Partitions created while the broker runs are made off the loop
 * (partition_dirs.h) and open a moment after the image names them. fn(b, arg)
 * runs once every partition of t that was being made is open (at once when
 * none is): CreateTopics and CreatePartitions answer then. */
void topics_when_made(broker *b, const topic_rt *t, void (*fn)(broker *b, void *arg), void *arg);
/* Waits for every partition being made and opens it, then tells the
 * coordinators (shutdown: before the connections close, so the requests
 * waiting for them are answered; a group request that skipped
 * FindCoordinator on a single node: its partition opens as it used to). */
void topics_settle(broker *b);
/* After topics_close_all: Kafka's .kafka_cleanshutdown in every log dir,
 * unless a log failed to open at start-up or to close (then the next start
 * recovers). */
void topics_mark_clean_shutdown(broker *b);
/* recovery-point-offset-checkpoint and log-start-offset-checkpoint, per log dir. */
void topics_write_checkpoints(broker *b);
void topics_checkpoint_lookup(broker *b, const char *dir, const char *topic, int32_t index,
                              int64_t *recovery, int64_t *start);

/* The configuration layers (static file, dynamic per-broker and default)
 * for config resolution and DescribeConfigs; arrays in a. */
void broker_config_layers(broker *b, config_layers *l, karena *a);
/* A broker config's value as it applies now: dynamic (this broker, then the
 * cluster default), static, else the default; NULL if unknown. In a. */
const char *broker_config_value(broker *b, const char *name, karena *a);
/* The same as an integer; dflt when unset or not one. */
int64_t broker_config_i64(broker *b, const char *name, int64_t dflt);

/* The checks of broker_create_topic before the partition layout (name,
 * existence, configs), in Kafka's order; KERR_NONE or the error and message. */
int16_t broker_create_topic_precheck(broker *b, kstr name, const kstr *config_keys, const kstr *config_values,
                                     int nconfigs, const char **errmsg, karena *a);
/* As broker_create_topic: done is called (later) when KERR_NONE is returned. */
int16_t broker_delete_topic(broker *b, topic_rt *t, broker_change_fn done, void *arg);
/* Grow t to `total` partitions; assignment (new partitions * rf ids) may be NULL. */
int16_t broker_add_partitions(broker *b, topic_rt *t, int32_t total, const int32_t *assignment,
                              bool validate_only, const char **errmsg, karena *a, broker_change_fn done,
                              void *arg);

/* Kafka's topic name rules; NULL when valid, else Kafka's message. */
const char *topic_name_invalid(kstr name, karena *a);
bool topic_is_internal(const char *name);
bool topic_name_legal_chars(kstr name);
void random_topic_id(kuuid *id);

#endif
