/* broker.h - the broker: the one object that ties the event loop, the
 * listeners, the cluster metadata, the partition logs, and the group
 * coordinator together.
 *
 * Handlers (src/broker/h_NAME.c, src/group/) receive (broker *, kreq *) and
 * use the functions below; they never reach into other modules' state.
 */
#ifndef SAMSA_BROKER_H
#define SAMSA_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/request.h"
#include "metadata/image.h"
#include "metrics/metrics.h"
#include "net/loop.h"
#include "replica/partition_repl.h"
#include "storage/log.h"

struct group_coord;
struct txn_manager;

/* Runtime state of one partition this node holds a replica of. */
typedef struct partition {
    struct topic_rt *topic;
    int32_t index;
    plog *log;
    int64_t high_watermark;    /* mirrors repl.hw (== LEO with one replica) */
    int32_t leader_epoch;      /* the partition's leader epoch as this node knows it */
    int32_t leader;            /* from the image; -1 = none */
    bool is_leader;            /* this node leads it (and is not fenced) */
    struct pstate *producers;  /* idempotent producer state (producer_state.h) */
    partition_repl repl;       /* ISR, HW, followers' states (replica/partition_repl.h) */
    /* follower side (replica/replica_manager.c) */
    int32_t fetch_from;        /* the leader this replica fetches from; -1 none */
    int64_t fetch_retry_ms;    /* monotonic: do not fetch before (backoff after an error) */
    bool fetch_busy;           /* in a fetch or an out-of-range recovery now */
    uint8_t fetch_errors;      /* consecutive failed fetches (the backoff grows with them) */
    struct rm_waiter *waiters; /* acks=all completions waiting for the HW */
} partition;

/* Runtime state of one topic: its partitions and resolved configs. */
typedef struct topic_rt {
    char *name;
    kuuid id;
    partition **parts;         /* NULL where this node holds no replica (or its log is still being made) */
    int32_t nparts;
    uint8_t *making;           /* per partition: its directory is being made off the loop (topics.c); may be NULL */
    int32_t nmaking;           /* how many are */
    topic_config cfg;          /* resolved: topic overrides > broker > defaults */
    const mtopic *meta;        /* the image's topic; refreshed by every topics_sync */
    log_config log_cfg;        /* derived from cfg for the storage layer */
    topic_metrics metrics;     /* BrokerTopicMetrics (metrics/metrics.h) */
} topic_rt;

typedef struct broker {
    broker_config cfg;
    kloop *loop;
    mimage *image;             /* cluster metadata state (metadata/image.h) */
    struct mstore *store;      /* where metadata changes go (mstore/mstore.h) */
    struct broker_sasl *sasl;  /* SASL listeners and their sessions (broker/sasl_broker.h); NULL = none */
    struct broker_authz *authz; /* the StandardAuthorizer (broker/authz.h); NULL = no authorizer */
    char cluster_id[64];
    struct group_coord *groups;
    struct txn_manager *txns;  /* the transaction coordinator (txn/txn_manager.h) */
    struct broker_topics *topics; /* name/id -> topic_rt */
    struct net_server *server;
    struct wpool *appends;     /* a produce request's partitions written at once (storage/write_pool.h); NULL = on the loop */
    int64_t appends_io_threads; /* the num.io.threads it was made for */
    kreq *produce_turn, *produce_turn_tail; /* Produce requests of this turn, appended together (h_produce.c) */
    loop_timer_id produce_turn_timer;       /* handles them at the end of the turn; 0 = none queued */
    struct produce_scratch *produce_scratch; /* the turn's arrays, kept for the next turn (h_produce.c) */
    int64_t started_ms;
    int64_t next_retention_check_ms; /* monotonic; 0 = not scheduled yet */
    bool shutting_down;
    bool fenced;               /* cluster: lost its session; leads nothing */
    struct broker_listeners *listeners; /* broker/listeners.c */
    const char *request_listener; /* listener of the request being dispatched (NULL outside one) */
} broker;

/* ---- topics and partitions (broker/topics.c) ---- */
topic_rt *broker_topic(broker *b, kstr name);
topic_rt *broker_topic_by_id(broker *b, const kuuid *id);
partition *broker_partition(broker *b, kstr topic, int32_t index);
/* The partition if this node leads it; else NULL with *err =
 * UNKNOWN_TOPIC_OR_PARTITION (no such partition) or NOT_LEADER_OR_FOLLOWER. */
partition *broker_partition_led(broker *b, topic_rt *t, int32_t index, int16_t *err);
/* The image's view of a partition (leader, replicas, ISR); NULL if unknown. */
const mpartition *broker_mpartition(broker *b, const topic_rt *t, int32_t index);
/* Is partition index of t being made off the loop (open soon; topics.h)? */
bool broker_partition_making(const topic_rt *t, int32_t index);
/* Iterate all topics (order unspecified). Returns the count; fills up to max. */
int broker_topics_list(broker *b, topic_rt **out, int max);
int broker_topic_count(broker *b);

/* Completion of a metadata change: a Kafka error code (KERR_NONE when
 * applied). May run before the call that started the change returns. */
typedef void (*broker_change_fn)(broker *b, void *arg, int16_t error);

/* Create a topic through the metadata store (as CreateTopics does):
 * validates, places replicas over the live brokers, writes
 * TopicRecord/PartitionRecord/ConfigRecord; the runtime follows the image.
 * configs may be NULL; assignment (nparts * rf broker ids) may be NULL.
 * Returns a Kafka error code with errmsg (static or arena) when validation
 * fails; otherwise KERR_NONE, and unless validate_only, done (may be NULL)
 * is called once the change is applied or failed. Everything passed in must
 * stay valid until done runs (arena of the request). */
int16_t broker_create_topic(broker *b, kstr name, int32_t partitions, int16_t replication_factor,
                            const int32_t *assignment, const kstr *config_keys, const kstr *config_values,
                            int nconfigs, bool validate_only, const char **errmsg, karena *a,
                            broker_change_fn done, void *arg);

/* Append an already built, valid v2 batch (e.g. from rec_builder) to a
 * partition, as the leader would for acks=all. Returns a Kafka error code and
 * the first offset assigned. Used by the group coordinator for
 * __consumer_offsets and by the transaction coordinator. */
int16_t broker_append_batch(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *first_offset);

/* acks=all completion (Kafka's DelayedProduce purgatory): cb is called
 * once, when p's high watermark reaches required_offset (the last appended
 * offset + 1) with KERR_NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND when the
 * ISR shrank below min.insync.replicas meanwhile; NOT_LEADER_OR_FOLLOWER
 * when this node stops leading p; REQUEST_TIMED_OUT after timeout_ms. May
 * call cb before returning (already replicated). Implemented in
 * replica/replica_manager.c. */
typedef void (*broker_replicated_fn)(broker *b, void *arg, int16_t error);
void broker_await_replication(broker *b, partition *p, int64_t required_offset, int32_t timeout_ms,
                              broker_replicated_fn cb, void *arg);

/* Change dynamic configs through the metadata log (ConfigRecord: set when
 * values[i] != NULL, delete when NULL) and apply them to the running topics
 * or broker. resource_type is MRES_TOPIC or MRES_BROKER; resource_name is
 * the topic, or the node id ("" = cluster default) for brokers. Returns a
 * Kafka error code. Validation is the caller's job. */
void broker_alter_configs(broker *b, int8_t resource_type, const char *resource_name,
                          const char *const *keys, const char *const *values, int n, broker_change_fn done,
                          void *arg);

/* The store applied a change to b->image: the runtime (logs, leadership,
 * coordinators) follows. */
void broker_metadata_applied(broker *b);

/* Live brokers as clients see them: the endpoint on this node's client
 * listener. */
typedef struct broker_node {
    int32_t id;
    const char *host;
    int32_t port;
    const char *rack;
} broker_node;
/* Fills up to max live nodes (sorted by id); returns the count. */
int broker_live_nodes(broker *b, broker_node *out, int max);
/* The node as clients reach it; false when not alive. */
bool broker_node_lookup(broker *b, int32_t id, broker_node *out);
/* The node as other brokers reach it (its inter-broker listener), also
 * while a client's request is handled: replication, markers, verification. */
bool broker_peer_lookup(broker *b, int32_t id, broker_node *out);
int32_t broker_controller_id(broker *b);

struct RegisterBrokerRecord;
/* This node's registration (endpoints, rack, features); arrays in a. */
void broker_registration(broker *b, kuuid incarnation, struct RegisterBrokerRecord *r, karena *a);
/* A node that is its own cluster registers in its image only. */
int broker_register_locally(broker *b);

/* A new producer id from this node's block (broker/h_admin.c): KERR_NONE,
 * or COORDINATOR_LOAD_IN_PROGRESS (retriable) while a block is fetched. */
int16_t broker_take_producer_id(broker *b, int64_t *out);
/* Fetch a block now if there is none (a transactional producer is coming). */
void broker_prefetch_producer_ids(broker *b);

/* Called after data was appended to p (wakes long-polling fetches). */
void broker_partition_appended(broker *b, partition *p);

/* ---- listeners (broker/listeners.c) ---- */
/* Binds every listener but the controller's; SSL ones with their TLS
 * context. Sets kafka_client's TLS policy for connections to other nodes. */
int broker_listeners_start(broker *b, char *err, size_t errlen);
void broker_listeners_free(broker *b);
/* Dynamic configs changed: SSL listeners whose settings (or files) changed
 * get a new TLS context, as Kafka reconfigures its SslFactory. */
void broker_listeners_config_changed(broker *b);
/* AlterConfigs validation of new broker settings for this node: -1 with
 * the reason when an SSL listener could not be built from them. */
int broker_listeners_validate(broker *b, const char *const *keys, const char *const *values, int n, char *err,
                              size_t errlen);
/* Whose endpoints broker_live_nodes / broker_node_lookup give: the listener
 * the current request came in on (Kafka answers with the advertised address
 * of that listener), else the inter-broker listener. */
const char *broker_lookup_listener(const broker *b);

/* Node identity as clients see it (first advertised PLAINTEXT listener). */
int32_t broker_node_id(const broker *b);
const char *broker_advertised_host(const broker *b);
int32_t broker_advertised_port(const broker *b);

#endif
