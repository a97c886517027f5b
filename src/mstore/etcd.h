/* etcd.h - a client of etcd's v3 JSON gateway (HTTP/1.1 + JSON), driven by
 * the broker's event loop, never blocking it.
 *
 * etcd 3.4 serves gRPC-gateway JSON at /v3/kv/range, /v3/kv/put,
 * /v3/kv/txn, /v3/kv/deleterange, /v3/lease/grant, /v3/lease/keepalive,
 * /v3/lease/revoke and the streaming /v3/watch. Keys and values travel as
 * base64; 64-bit numbers as JSON strings. JSON is parsed with jansson.
 *
 * Endpoints are tried in order: a request that fails at the transport level
 * (refused, reset, timed out) is retried once on the next endpoint, then
 * reported with status ETCD_UNREACHABLE. Each call completes exactly once,
 * through its callback, from the loop (never from inside the call itself),
 * unless etcd_free() runs first (then callbacks are dropped).
 *
 * Ownership: everything passed in is copied before the call returns; an
 * etcd_result and what it points to live only during the callback.
 */
#ifndef SAMSA_ETCD_H
#define SAMSA_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"

typedef struct etcd_client etcd_client;

enum {
    ETCD_OK = 0,
    ETCD_UNREACHABLE = -1, /* no endpoint answered within the timeout */
    ETCD_ERROR = -2,       /* etcd answered an error (message in error) */
    ETCD_BAD_ANSWER = -3,  /* an answer that is not the JSON we expect */
};

typedef struct etcd_kv {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} etcd_kv;

typedef struct etcd_result {
    int status;               /* ETCD_* */
    const char *error;        /* when status != ETCD_OK */
    int64_t revision;         /* header.revision of the answer */
    bool succeeded;           /* txn: whether the compares held */
    const etcd_kv *kvs;       /* range, or every range op's kvs of a txn in order */
    int nkvs;
    bool more;                /* range: limit cut the answer */
    int64_t lease_id;         /* lease grant / keepalive */
    int64_t ttl;              /* lease grant / keepalive: seconds; keepalive of an unknown lease: 0 */
} etcd_result;

typedef void (*etcd_cb)(void *arg, const etcd_result *r);

/* endpoints: "http://127.0.0.1:2379,http://127.0.0.1:2381" (http only).
 * timeout_ms bounds each request (connect + answer). Returns NULL with a
 * message in err when an endpoint cannot be parsed. */
etcd_client *etcd_new(kloop *loop, const char *endpoints, int64_t timeout_ms, char *err, size_t errlen);
/* Closes every connection; pending callbacks are not called. */
void etcd_free(etcd_client *c);

/* ---- single-key and range reads/writes ---- */

/* Range [key, range_end); range_end NULL = the key alone; use
 * etcd_prefix_end() for a prefix. revision 0 = latest; limit 0 = all. */
int etcd_range(etcd_client *c, const void *key, size_t key_len, const void *range_end, size_t range_end_len,
               int64_t revision, int64_t limit, etcd_cb cb, void *arg);
int etcd_put(etcd_client *c, const void *key, size_t key_len, const void *value, size_t value_len,
             int64_t lease, etcd_cb cb, void *arg);
int etcd_delete(etcd_client *c, const void *key, size_t key_len, etcd_cb cb, void *arg);

/* Compacts the key-value history up to revision (etcd's /v3/kv/compaction):
 * watches and reads at older revisions then get compact_revision / an error. */
int etcd_compact(etcd_client *c, int64_t revision, etcd_cb cb, void *arg);

/* The smallest key after every key with this prefix (etcd's prefix range
 * end: the prefix with its last byte incremented). out must hold len bytes;
 * returns its length. */
size_t etcd_prefix_end(const void *prefix, size_t len, uint8_t *out);

/* ---- transactions: if all compares hold, run `success` ops, else `failure` ---- */

typedef enum { ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VERSION, ETCD_CMP_VALUE } etcd_cmp_target;
typedef enum { ETCD_EQUAL, ETCD_NOT_EQUAL, ETCD_GREATER, ETCD_LESS } etcd_cmp_result;

typedef struct etcd_cmp {
    etcd_cmp_target target;
    etcd_cmp_result result;
    const void *key;
    size_t key_len;
    int64_t number;           /* CREATE/MOD/VERSION */
    const void *value;        /* VALUE */
    size_t value_len;
} etcd_cmp;

typedef enum { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_RANGE } etcd_op_type;

typedef struct etcd_op {
    etcd_op_type type;
    const void *key;
    size_t key_len;
    const void *value;        /* PUT */
    size_t value_len;
    int64_t lease;            /* PUT: 0 = none */
    const void *range_end;    /* DELETE/RANGE: NULL = the key alone */
    size_t range_end_len;
} etcd_op;

int etcd_txn(etcd_client *c, const etcd_cmp *cmps, int ncmps, const etcd_op *success, int nsuccess,
             const etcd_op *failure, int nfailure, etcd_cb cb, void *arg);

/* ---- leases ---- */

int etcd_lease_grant(etcd_client *c, int64_t ttl_seconds, etcd_cb cb, void *arg);
/* One keep-alive (the gateway's request/answer form); r->ttl 0 = the lease is gone. */
int etcd_lease_keepalive(etcd_client *c, int64_t lease_id, etcd_cb cb, void *arg);
int etcd_lease_revoke(etcd_client *c, int64_t lease_id, etcd_cb cb, void *arg);

/* ---- watch: a streaming watch on a key or a range ---- */

typedef struct etcd_event {
    bool is_delete;
    etcd_kv kv;               /* for a delete: key and mod_revision only */
} etcd_event;

typedef struct etcd_watch_batch {
    int status;               /* ETCD_OK, or the watch ended (see etcd_watch_fn) */
    const char *error;
    int64_t revision;         /* header revision */
    int64_t compact_revision; /* > 0: start revision was compacted; the watch ended */
    const etcd_event *events; /* in revision order; one revision is never split across batches */
    int nevents;
} etcd_watch_batch;

/* Called for every batch of events; when status != ETCD_OK or
 * compact_revision > 0 the watch has ended and is freed after the call. */
typedef void (*etcd_watch_fn)(void *arg, const etcd_watch_batch *b);

typedef struct etcd_watch etcd_watch;

/* Watch [key, range_end) from start_revision (inclusive). */
etcd_watch *etcd_watch_start(etcd_client *c, const void *key, size_t key_len, const void *range_end,
                             size_t range_end_len, int64_t start_revision, etcd_watch_fn fn, void *arg);
/* Stops and frees the watch; fn is not called again. */
void etcd_watch_cancel(etcd_watch *w);

/* ---- blocking use at start-up (before the loop serves clients) ----
 * Runs the loop only for this client's sockets and timers until the call
 * completes; copies the result into an owned etcd_sync_result. */

typedef struct etcd_sync_result {
    etcd_result r;            /* pointers into the fields below */
    etcd_kv *kvs_owned;
    char *error_owned;
} etcd_sync_result;

/* Wrappers: same arguments as the async calls without cb/arg. Return r.status. */
int etcd_range_sync(etcd_client *c, const void *key, size_t key_len, const void *range_end, size_t range_end_len,
                    int64_t revision, int64_t limit, etcd_sync_result *out);
int etcd_txn_sync(etcd_client *c, const etcd_cmp *cmps, int ncmps, const etcd_op *success, int nsuccess,
                  const etcd_op *failure, int nfailure, etcd_sync_result *out);
int etcd_lease_grant_sync(etcd_client *c, int64_t ttl_seconds, etcd_sync_result *out);
void etcd_sync_result_free(etcd_sync_result *r);

#endif
