/* mstore.h - the metadata store: the one seam through which cluster metadata
 * changes.
 *
 * A change is a batch of Kafka metadata records (TopicRecord,
 * PartitionRecord, PartitionChangeRecord, ConfigRecord, ...). The store
 * orders it, applies it to the broker's image with mimage_apply(), tells
 * the broker (broker_metadata_applied) and completes the commit once the
 * change is durable. Two backends:
 *   local - __cluster_metadata-0 on this node's disk (one node, no etcd);
 *           a commit is applied to the image before mstore_commit()
 *           returns and completes once its fsync is done: at once until
 *           mstore_start, then on a thread of its own (mstore/local_store.c).
 *   etcd  - one etcd transaction per change (see mstore/etcd_store.c); the
 *           commit completes when the change comes back through the watch
 *           and has been applied, so every node applies every change in one
 *           order, including the one that wrote it.
 */
#ifndef SAMSA_MSTORE_H
#define SAMSA_MSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "metadata/image.h"

struct broker;

typedef enum {
    MSTORE_OK = 0,
    MSTORE_CONFLICT,    /* a precondition failed: the image has moved on; re-validate and retry */
    MSTORE_UNAVAILABLE, /* the store could not be reached in time (retriable) */
    MSTORE_IO,          /* the local log could not be written */
} mstore_status;

/* Called exactly once per commit. May run before mstore_commit() returns. */
typedef void (*mstore_done_fn)(struct broker *b, void *arg, mstore_status st);

/* Commit flags */
#define MSTORE_AS_CONTROLLER 1u /* fenced by this node's controller epoch */

typedef struct mstore mstore;

typedef struct mstore_ops {
    const char *name;
    void (*commit)(mstore *s, const mrecord *recs, int n, unsigned flags, mstore_done_fn done, void *arg);
    int32_t (*controller_id)(const mstore *s);
    /* Where the applied metadata stands: the local log's end offset and
     * leader epoch, or etcd's applied revision and the controller epoch. */
    int64_t (*end_offset)(const mstore *s);
    int32_t (*epoch)(const mstore *s);
    /* Join: called once the node's logs are open, just before it serves
     * (etcd: register, then follow the metadata). NULL = nothing to do. */
    int (*start)(mstore *s, char *err, size_t errlen);
    void (*close)(mstore *s);
    /* Shutting down, before the connections close: completes every commit
     * still in flight (NULL = nothing to do). */
    void (*settle)(mstore *s);
} mstore_ops;

struct mstore {
    const mstore_ops *ops;
    struct broker *b;
    bool cluster;       /* several nodes share it (etcd) */
};

/* done may be NULL (nobody waits). */
static inline void mstore_commit(mstore *s, const mrecord *recs, int n, unsigned flags, mstore_done_fn done,
                                 void *arg) {
    s->ops->commit(s, recs, n, flags, done, arg);
}
static inline int32_t mstore_controller_id(const mstore *s) { return s->ops->controller_id(s); }
static inline int64_t mstore_end_offset(const mstore *s) { return s->ops->end_offset(s); }
static inline int32_t mstore_epoch(const mstore *s) { return s->ops->epoch(s); }
static inline int mstore_start(mstore *s, char *err, size_t errlen) {
    return s->ops->start ? s->ops->start(s, err, errlen) : 0;
}
static inline void mstore_settle(mstore *s) {
    if (s && s->ops->settle) s->ops->settle(s);
}
static inline void mstore_close(mstore *s) {
    if (s) s->ops->close(s);
}
static inline bool mstore_is_cluster(const mstore *s) { return s && s->cluster; }

/* The local backend: opens (creating) <dir>/__cluster_metadata-0 and replays
 * it into b->image; a fresh log gets the metadata.version feature level. */
mstore *mstore_local_open(struct broker *b, const char *dir, char *err, size_t errlen);
/* The etcd backend (mstore/etcd_store.c): loads the cluster's metadata (a
 * snapshot); mstore_start then registers this node and follows the
 * metadata. Fails with a message naming the endpoints when etcd cannot be
 * reached. */
mstore *mstore_etcd_open(struct broker *b, char *err, size_t errlen);

/* The local backend's log (DescribeQuorum reports its offsets); NULL for etcd. */
struct mlog *mstore_local_log(mstore *s);

/* Kafka's mapping of a failed metadata write to a client error. */
int16_t mstore_status_error(mstore_status st);

#endif
