/* gstate.h - the classic consumer group protocol as a pure state machine.
 *
 * This is Kafka 3.6.1's GroupCoordinator/GroupMetadata logic without any
 * I/O: groups, members, committed offsets, and the transitions between
 * Empty -> PreparingRebalance -> CompletingRebalance -> Stable (and Dead).
 * Everything the machine needs from the outside world goes through a genv
 * of callbacks: the clock, delivering deferred JoinGroup/SyncGroup answers,
 * persisting group metadata, and arming timers. The broker glue
 * (coordinator.c) implements genv with the event loop and the
 * __consumer_offsets log; the unit tests implement it with fakes and fire
 * the timers by hand.
 *
 * Ownership: a gmgr owns its groups; a group owns its members and offsets.
 * Strings passed in are copied. Results handed to callbacks point into
 * group memory and are valid only during the callback.
 */
#ifndef SAMSA_GROUP_GSTATE_H
#define SAMSA_GROUP_GSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum group_state {
    GROUP_EMPTY,
    GROUP_PREPARING_REBALANCE,
    GROUP_COMPLETING_REBALANCE,
    GROUP_STABLE,
    GROUP_DEAD,
} group_state;

/* Kafka's names: "Empty", "PreparingRebalance", ... */
const char *group_state_name(group_state s);
/* -1 if the name is not a state (case-insensitive, as ListGroups filters). */
int group_state_parse(const char *name, size_t len);

typedef struct gprotocol {
    char *name;
    uint8_t *metadata;
    int32_t metadata_len;
} gprotocol;

typedef struct gmember {
    char *member_id;
    char *instance_id;          /* group.instance.id; NULL for dynamic members */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    char *protocol_type;
    gprotocol *protocols;       /* in the member's order of preference */
    int nprotocols;
    uint8_t *assignment;        /* from the leader's SyncGroup */
    int32_t assignment_len;
    void *join_waiter;          /* pending JoinGroup (opaque to this module) */
    void *sync_waiter;          /* pending SyncGroup */
    bool is_new;                /* joined but never completed a rebalance */
    bool heartbeat_satisfied;
    void *timer;                /* session timer handle, owned by the genv */
} gmember;

/* One committed offset. */
typedef struct goffset {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;       /* -1 = none */
    char *metadata;             /* never NULL ("" = none) */
    int64_t commit_ts;
    int64_t expire_ts;          /* -1 = none (only old clients set it) */
    int64_t log_offset;         /* its record's offset in __consumer_offsets when
                                 * committed here (0 when loaded): an older
                                 * write completing late must not replace it */
    struct goffset *next;       /* hash chain */
} goffset;

typedef struct kgroup {
    char *id;
    group_state state;
    int64_t state_ts;           /* wall clock of the last transition; -1 unknown */
    int32_t generation;
    char *protocol_type;        /* NULL until the first member joins */
    char *protocol_name;        /* NULL outside a generation */
    char *leader_id;            /* NULL = no leader */
    gmember **members;
    int nmembers, capmembers;
    int nawaiting_join;
    char **pending;             /* member ids handed out by MEMBER_ID_REQUIRED */
    int npending, cappending;
    char **pending_sync;        /* members expected to SyncGroup this generation */
    int npending_sync, cappending_sync;
    bool new_member_added;      /* during the initial delay */
    /* join timer: kind and the initial-delay bookkeeping */
    int join_kind;              /* 0 none, 1 initial delay, 2 rebalance timeout */
    int32_t join_remaining_ms;
    void *join_timer;           /* handles owned by the genv */
    void *sync_timer;
    /* subscribed topics of a consumer group (from member metadata) */
    bool subscribed_known;
    char **subscribed;
    int nsubscribed;
    /* committed offsets */
    goffset **obuckets;
    int nobuckets;
    int noffsets;
    /* transactional offsets not yet committed, per producer (Kafka's
     * pendingTransactionalOffsetCommits): invisible to OffsetFetch until a
     * COMMIT marker; dropped on ABORT */
    struct gtxn_offsets *txn;
    bool received_consumer_commits; /* Kafka's receivedConsumerOffsetCommits */
    bool received_txn_commits;      /* and receivedTransactionalOffsetCommits */
    struct kgroup *next;        /* gmgr hash chain */
} kgroup;

/* ---- what the outside world provides ---- */

typedef struct gjoin_member {
    const char *member_id;
    const char *instance_id;    /* may be NULL */
    const uint8_t *metadata;
    int32_t metadata_len;
} gjoin_member;

typedef struct gjoin_result {
    int16_t error;
    const char *member_id;      /* never NULL */
    int32_t generation;         /* -1 on error */
    const char *protocol_type;  /* NULL = none */
    const char *protocol_name;  /* NULL = none */
    const char *leader_id;      /* "" = none */
    bool skip_assignment;
    const gjoin_member *members; /* only for the leader */
    int nmembers;
} gjoin_result;

typedef struct gsync_result {
    int16_t error;
    const char *protocol_type;  /* NULL = none */
    const char *protocol_name;
    const uint8_t *assignment;
    int32_t assignment_len;
} gsync_result;

typedef enum gtimer_kind {
    GTIMER_MEMBER,    /* session / new-member join timeout (member_id) */
    GTIMER_PENDING,   /* a MEMBER_ID_REQUIRED id that never came back */
    GTIMER_JOIN,      /* initial delay or rebalance timeout */
    GTIMER_SYNC,      /* members that never sent SyncGroup (generation) */
} gtimer_kind;

typedef struct genv {
    void *ctx;
    int64_t (*now_ms)(void *ctx);
    /* Deliver a JoinGroup/SyncGroup answer to the waiter given with it. */
    void (*join_done)(void *ctx, void *waiter, const gjoin_result *r);
    void (*sync_done)(void *ctx, void *waiter, const gsync_result *r);
    /* Persist the group (GroupMetadataValue from the group and its members'
     * assignments), as Kafka's storeGroup: done(done_arg, error) is called
     * exactly once, now or later (once the write is replicated), with the
     * error already mapped as GroupMetadataManager maps append errors. The
     * group may be gone (unloaded, deleted) by then: done looks it up again. */
    void (*store_group)(void *ctx, kgroup *g, void (*done)(void *done_arg, int16_t error), void *done_arg);
    /* Arm a timer; returns a handle (never NULL) given back on cancel. When
     * it fires the owner calls gmgr_timer_fired(kind, group id, member id,
     * generation) and forgets the handle. */
    void *(*timer_arm)(void *ctx, gtimer_kind kind, const char *group_id, const char *member_id,
                       int32_t generation, int64_t delay_ms);
    void (*timer_cancel)(void *ctx, void *handle);
    /* Is this coordinator the group's (does it lead the group's
     * __consumer_offsets partition)? NULL = always. */
    bool (*owns_group)(void *ctx, const char *group_id);
    /* Is the group's __consumer_offsets partition being loaded (Kafka's
     * loadingPartitions)? NULL = never. */
    bool (*group_loading)(void *ctx, const char *group_id);
} genv;

typedef struct gconfig {
    int32_t min_session_timeout_ms;
    int32_t max_session_timeout_ms;
    int32_t max_size;
    int32_t initial_rebalance_delay_ms;
    int32_t offset_metadata_max_bytes;
    int64_t offsets_retention_ms;
    int32_t node_id;            /* for log lines */
} gconfig;

void gconfig_defaults(gconfig *c);

/* The group manager: every group this coordinator owns. */
typedef struct gmgr {
    gconfig cfg;
    genv env;
    kgroup **buckets;
    int nbuckets;
    int ngroups;
    bool loading;               /* COORDINATOR_LOAD_IN_PROGRESS while true */
} gmgr;

int gmgr_init(gmgr *m, const gconfig *cfg, const genv *env);
/* Frees every group. Waiters still pending are NOT answered: call
 * gmgr_shutdown first. */
void gmgr_free(gmgr *m);
/* Answers every parked JoinGroup/SyncGroup with NOT_COORDINATOR (as Kafka
 * does when a coordinator resigns) and cancels timers. */
void gmgr_shutdown(gmgr *m);

kgroup *gmgr_get(gmgr *m, const char *group_id);
kgroup *gmgr_get_or_create(gmgr *m, const char *group_id);
/* Remove and free a group (after DeleteGroups / expiry). */
void gmgr_remove(gmgr *m, kgroup *g);
/* The coordinator resigned the group's partition (Kafka's onGroupUnloaded
 * then removal from the cache): parked JoinGroup/SyncGroup answers get
 * NOT_COORDINATOR, timers are cancelled, the group is freed. */
void gmgr_unload_group(gmgr *m, kgroup *g);
/* Iterate groups: i from 0; returns NULL at the end. */
kgroup *gmgr_iter(gmgr *m, int *bucket, kgroup **cursor);

/* ---- the protocol (Kafka's handleXxx) ---- */

typedef struct gjoin_req {
    const char *group_id;
    const char *member_id;      /* "" = unknown */
    const char *instance_id;    /* NULL = dynamic */
    const char *client_id;
    const char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* -1 in v0: the session timeout is used */
    const char *protocol_type;
    const gprotocol *protocols; /* borrowed; copied if kept */
    int nprotocols;
    bool require_known_member_id; /* v4+ without an instance id */
    bool support_skip_assignment; /* v9+ */
} gjoin_req;

/* Always answers through env.join_done(waiter), now or later. */
void gmgr_join(gmgr *m, const gjoin_req *req, void *waiter);

typedef struct gassignment {
    const char *member_id;
    const uint8_t *assignment;
    int32_t assignment_len;
} gassignment;

typedef struct gsync_req {
    const char *group_id;
    int32_t generation;
    const char *member_id;
    const char *instance_id;    /* NULL = none */
    const char *protocol_type;  /* NULL = not given (v0-4) */
    const char *protocol_name;
    const gassignment *assignments;
    int nassignments;
} gsync_req;

/* Always answers through env.sync_done(waiter), now or later. */
void gmgr_sync(gmgr *m, const gsync_req *req, void *waiter);

int16_t gmgr_heartbeat(gmgr *m, const char *group_id, const char *member_id, const char *instance_id,
                       int32_t generation);

/* LeaveGroup: the group-level error; per-member errors in member_errors
 * (one per identity). member_ids[i] may be "" with an instance id. */
int16_t gmgr_leave(gmgr *m, const char *group_id, int n, const char *const *member_ids,
                   const char *const *instance_ids, int16_t *member_errors);

/* OffsetCommit validation: returns the error for every partition of the
 * request, or NONE when the commit may be written. *out_group is the group
 * (created Empty for a simple commit to an unknown group). */
int16_t gmgr_commit_check(gmgr *m, const char *group_id, const char *member_id,
                          const char *instance_id, int32_t generation, kgroup **out_group);

/* TxnOffsetCommit validation (Kafka's validateGroupStatus then
 * validateOffsetCommit with isTransactional): a non-member may commit
 * with generation -1 and no member id; the group is created Empty if
 * unknown. */
int16_t gmgr_txn_commit_check(gmgr *m, const char *group_id, const char *member_id,
                              const char *instance_id, int32_t generation, kgroup **out_group);

/* DeleteGroups for one group: NONE (group now Dead: the caller writes the
 * tombstones then calls gmgr_remove), GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP... */
int16_t gmgr_delete_check(gmgr *m, const char *group_id, kgroup **out_group);

/* Called by the owner of a timer when it fires. */
void gmgr_timer_fired(gmgr *m, gtimer_kind kind, const char *group_id, const char *member_id,
                      int32_t generation);

/* The group-id check Kafka makes per API: offset/describe/delete APIs accept
 * "", the others need a non-empty id. */
int16_t gmgr_validate_group_id(const gmgr *m, const char *group_id, bool allow_empty);

/* ---- groups: queries ---- */

gmember *group_find_member(const kgroup *g, const char *member_id);
gmember *group_find_static(const kgroup *g, const char *instance_id);
/* Member metadata for the selected protocol (NULL if none). */
const gprotocol *gmember_protocol(const gmember *mb, const char *name);
bool group_is_subscribed_to(const kgroup *g, const char *topic);
/* Called after a load: members' session timers, Stable/Empty checks. */
void gmgr_group_loaded(gmgr *m, kgroup *g);
/* Add a member as recorded in a GroupMetadataValue (load path). */
gmember *group_load_member(kgroup *g, const char *member_id, const char *instance_id,
                           const char *client_id, const char *client_host,
                           int32_t rebalance_timeout_ms, int32_t session_timeout_ms,
                           const char *protocol_name, const uint8_t *subscription, int32_t sub_len,
                           const uint8_t *assignment, int32_t assign_len);
/* Reset a group to what a GroupMetadataValue says (members dropped). */
void group_load_reset(kgroup *g, const char *protocol_type, int32_t generation,
                      const char *protocol_name, const char *leader, int64_t state_ts);
/* Recompute subscribed topics from members' consumer-protocol metadata. */
void group_update_subscriptions(kgroup *g);

/* ---- committed offsets ---- */

goffset *group_offset(const kgroup *g, const char *topic, size_t topic_len, int32_t partition);
/* Insert or replace; strings copied. Returns the entry or NULL (no memory). */
goffset *group_offset_put(kgroup *g, const char *topic, size_t topic_len, int32_t partition,
                          int64_t offset, int32_t leader_epoch, const char *metadata,
                          size_t metadata_len, int64_t commit_ts, int64_t expire_ts);
bool group_offset_remove(kgroup *g, const char *topic, size_t topic_len, int32_t partition);
/* All offsets, sorted by (topic, partition), in a malloc'd array of
 * pointers the caller frees. */
goffset **group_offsets_sorted(const kgroup *g, int *n);
/* Kafka's removeExpiredOffsets: unlinks expired entries and returns them
 * in a malloc'd array (caller frees the array and each with goffset_free). */
goffset **group_expire_offsets(kgroup *g, int64_t now_ms, int64_t retention_ms, int *n);
void goffset_free(goffset *o);

/* ---- transactional offsets (TxnOffsetCommit), pending until a marker ---- */

typedef struct gtxn_offsets {
    int64_t producer_id;
    goffset *offsets;           /* list through next; log_offset -1 until appended */
    struct gtxn_offsets *next;
} gtxn_offsets;

/* Insert or replace producer_id's pending offset for a partition (Kafka's
 * prepareTxnOffsetCommit with log_offset -1, or a replayed record with its
 * batch's base offset). Returns the entry or NULL (no memory). */
goffset *group_txn_offset_put(kgroup *g, int64_t producer_id, const char *topic, size_t topic_len,
                              int32_t partition, int64_t offset, int32_t leader_epoch,
                              const char *metadata, size_t metadata_len, int64_t commit_ts,
                              int64_t expire_ts, int64_t log_offset);
goffset *group_txn_offset(const kgroup *g, int64_t producer_id, const char *topic, size_t topic_len,
                          int32_t partition);
/* Drop one pending offset (a failed append, a tombstone in a transaction). */
void group_txn_offset_remove(kgroup *g, int64_t producer_id, const char *topic, size_t topic_len,
                             int32_t partition);
bool group_txn_has_producer(const kgroup *g, int64_t producer_id);
/* Drop every producer's pending offset for a partition (OffsetDelete:
 * Kafka's removeOffsets). */
void group_txn_remove_partition(kgroup *g, const char *topic, size_t topic_len, int32_t partition);
/* Does any producer hold a pending offset for the partition (OffsetFetch's
 * UNSTABLE_OFFSET_COMMIT with require_stable)? */
bool group_txn_pending_for(const kgroup *g, const char *topic, size_t topic_len, int32_t partition);
/* Kafka's completePendingTxnOffsetCommit: on commit each pending offset
 * that was appended replaces the committed one unless that one's record is
 * newer; on abort they are dropped. Returns the number committed. */
int group_txn_complete(kgroup *g, int64_t producer_id, bool commit);
/* Kafka's storeOffsets warning when a group gets offsets both from
 * consumers and from transactional producers (logged, not refused). */
void group_warn_mixed_commits(const kgroup *g);

#endif
