/* image.h - the cluster metadata image: the state obtained by applying the
 * records of the __cluster_metadata log in order.
 *
 * mimage_apply() is a pure function of (image, record): no I/O, no clock,
 * no randomness, so a simulator or a test can drive it with any sequence of
 * records, and a future replicated controller replays the same log to the
 * same state. Records are Kafka's metadata records (generated structs from
 * ../shared/kafka-protocol/3.6.1/metadata-records).
 */
#ifndef SAMSA_IMAGE_H
#define SAMSA_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/wire.h"
#include "security/authorizer.h"

/* ConfigRecord resource types, as Kafka's ConfigResource.Type. */
#define MRES_TOPIC 2
#define MRES_BROKER 4

typedef struct mpartition {
    int32_t partition_id;
    int64_t store_rev;     /* metadata store revision that last wrote it (etcd's mod_revision; 0 = local) */
    int32_t *replicas;
    int32_t nreplicas;
    int32_t *isr;
    int32_t nisr;
    int32_t leader;
    int32_t leader_epoch;
    int32_t partition_epoch;
    /* an ongoing reassignment (Kafka's PartitionRegistration.removingReplicas /
     * addingReplicas): both empty when none */
    int32_t *removing;
    int32_t nremoving;
    int32_t *adding;
    int32_t nadding;
} mpartition;

typedef struct mconfig {
    char *key;
    char *value;
} mconfig;

typedef struct mconfig_set {
    mconfig *items;
    int32_t count, cap;
} mconfig_set;

typedef struct mtopic {
    char *name;
    int64_t store_rev;     /* as mpartition.store_rev, for the topic's key */
    kuuid id;
    mpartition *parts;     /* indexed by partition id */
    int32_t nparts;
    mconfig_set configs;   /* topic-level overrides */
} mtopic;

/* A registered broker (RegisterBrokerRecord), fenced or not. */
typedef struct mendpoint {
    char *name;            /* listener name */
    char *host;
    int32_t port;
    int16_t security_protocol;
} mendpoint;

typedef struct mbroker {
    int32_t id;
    int64_t epoch;
    kuuid incarnation_id;
    char *rack;            /* NULL = none */
    mendpoint *endpoints;
    int32_t nendpoints;
    bool fenced;
    bool in_controlled_shutdown; /* moving its leaderships away before it leaves */
} mbroker;

/* A SCRAM credential (UserScramCredentialRecord): per user and mechanism. */
typedef struct mscram {
    char *name;
    int8_t mechanism;             /* 1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512 */
    uint8_t *salt;
    int32_t salt_len;
    uint8_t stored_key[64];
    uint8_t server_key[64];
    int32_t key_len;
    int32_t iterations;
} mscram;

/* Client quota keys (QuotaConfigs): the values an entity may set. */
enum {
    MQ_PRODUCER_BYTE_RATE,
    MQ_CONSUMER_BYTE_RATE,
    MQ_REQUEST_PERCENTAGE,
    MQ_CONTROLLER_MUTATION_RATE,
    MQ_CONNECTION_CREATION_RATE,
    MQ_NKEYS
};
/* Entity parts of a quota entity (ClientQuotaEntity: user, client-id, ip). */
enum { MQE_USER, MQE_CLIENT_ID, MQE_IP, MQE_NTYPES };

/* One ClientQuotaEntity and its values (ClientQuotaImage). A part is present
 * when its bit is in has; a present part with a NULL name is the default. */
typedef struct mquota {
    uint8_t has;                  /* 1 << MQE_* */
    char *name[MQE_NTYPES];       /* NULL with the bit set: <default> */
    uint8_t set;                  /* 1 << MQ_*: values present */
    double value[MQ_NKEYS];
} mquota;

typedef struct mimage {
    mbroker *brokers;             /* sorted by id */
    int32_t nbrokers, capbrokers;
    mtopic **topics;
    int32_t ntopics, captopics;
    mconfig_set broker_configs;   /* dynamic configs of this node (resource name = node id) */
    mconfig_set default_broker_configs; /* cluster-wide dynamic defaults (resource name "") */
    int16_t metadata_version;     /* FeatureLevelRecord metadata.version (3.6-IV2 = 14) */
    int64_t next_producer_id;     /* ProducerIdsRecord */
    int32_t node_id;              /* whose broker configs to keep */
    int64_t last_offset;          /* offset of the last applied record */
    mscram *scram;                /* SCRAM credentials, unordered */
    int32_t nscram, capscram;
    mquota *quotas;               /* client quota entities, unordered */
    int32_t nquotas, capquotas;
    uint64_t quota_changes;       /* bumped on every applied ClientQuotaRecord */
    az_acl *acls;                 /* ACL bindings (AccessControlEntryRecord), in the order added */
    int32_t nacls, capacls;
} mimage;

/* One decoded metadata record: its api key (KMETA_*), version and the
 * generated struct. */
typedef struct mrecord {
    int16_t type;
    int16_t version;
    const void *data;
} mrecord;

mimage *mimage_new(int32_t node_id);
void mimage_free(mimage *img);
/* Apply one record. Returns 0, or -1 if the record is inconsistent with the
 * image (e.g. a PartitionRecord for an unknown topic); the image is then
 * unchanged. */
int mimage_apply(mimage *img, const mrecord *rec);

mtopic *mimage_topic(const mimage *img, kstr name);
mbroker *mimage_broker(const mimage *img, int32_t id);
/* The endpoint of a broker on a listener; NULL when it has none. */
const mendpoint *mbroker_endpoint(const mbroker *br, const char *listener);
/* Registered and not fenced. */
bool mimage_broker_alive(const mimage *img, int32_t id);
mtopic *mimage_topic_by_id(const mimage *img, const kuuid *id);
const char *mconfig_get(const mconfig_set *s, const char *key);
/* The credential of user name for a mechanism; NULL when none. */
const mscram *mimage_scram(const mimage *img, const char *name, int8_t mechanism);
/* The ACL binding with this record id; NULL when none. */
const az_acl *mimage_acl(const mimage *img, const kuuid *id);

/* The key's QuotaConfigs name, and back (-1: not a quota key). */
const char *mquota_key_name(int key);
int mquota_key_from(kstr name);
/* The entity type's name ("user", "client-id", "ip"), and back (-1: unknown). */
const char *mquota_type_name(int type);
int mquota_type_from(kstr name);
/* The entity with exactly these parts (names[t] NULL = default); NULL when none. */
const mquota *mimage_quota(const mimage *img, uint8_t has, const char *const names[MQE_NTYPES]);

#endif
