/* test_etcd_store.c - the etcd metadata store (src/mstore/etcd_store.c)
 * with three real brokers in one process, on one loop, against the
 * in-memory etcd of fake_etcd.inc (which replaces src/mstore/etcd.o at link
 * time). Each node is built as server_main does it: config from the
 * shipped properties with metadata.store=etcd, a formatted log dir in a
 * temp dir, the cluster id, the store, topics_init, mstore_start. The loop
 * is driven in steps with loop_run_for().
 *
 * First the fake itself is checked on the etcd semantics the store relies
 * on (answers from the loop, all-or-nothing txns, one revision per txn,
 * watch order, leases on the fake clock, compaction, down).
 *
 * Scenarios, in order (each leaves the cluster settled for the next):
 *   a  every node sees every registration and the same single controller
 *   b  a CreateTopics-equivalent commit completes only once its writer has
 *      applied it; every node ends with the same image
 *   c  two nodes create one name at once: one wins, the other gets
 *      TOPIC_ALREADY_EXISTS
 *   d  a node cut off from etcd loses its lease: the others fence it, the
 *      controller gives its partitions leader -1 with a new epoch; it fences
 *      itself, registers again and leads again - and the replayed expiry of
 *      its old registration, seen after that, does not fence it again
 *   e  the controller's lease goes: another node becomes controller
 *   f  a node that fell behind catches up through batches cut as etcd cuts
 *      them (header.revision beyond the batch's events); one whose history
 *      was compacted reloads a snapshot
 *   g  etcd down: commits fail with REQUEST_TIMED_OUT in time, nothing is
 *      half applied, and work again after
 *   h  corrupt values under the prefix are logged and refused, never
 *      applied, and later changes still apply
 * After each, every node's image (topics, ids, partitions, leaders, epochs,
 * replicas, ISR, configs, brokers, store revisions) is compared.
 *
 * The brokers' log lines go to <tmp>/broker.log (kept on failure); the
 * result line goes to stdout: "test_etcd_store: N passed, M failed".
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_etcd.inc"

#include "broker/broker.h"
#include "broker/default_config.h"
#include "broker/storage_cmd.h"
#include "broker/topics.h"
#include "metadata/image.h"
#include "metadata/mlog.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/arena.h"
#include "util/props.h"

#include "unit_check.h"

#define NNODES 3
#define CLUSTER_ID "q1Sh-9_ISia_zwGINzRvyQ"
#define ROOT "/samsa"
#define P ROOT "/" CLUSTER_ID "/"
#define SESSION_MS 3000 /* lease TTL 3 s of the fake clock */
#define HEARTBEAT_MS 50

typedef struct node {
    broker *b;
    int client; /* the fake's index of this node's etcd client */
} node;

static kloop *g_loop;
static node g_nodes[NNODES + 1]; /* by node id */
static char g_tmp[256];
static char g_logpath[300];

/* ---- the loop and the log ---- */

static void run_ms(int64_t ms) { loop_run_for(g_loop, ms); }

/* Runs the loop in small steps until pred() holds; false after max_ms. */
static bool run_until(bool (*pred)(void), int64_t max_ms) {
    int64_t end = monotonic_ms() + max_ms;
    while (!pred()) {
        if (monotonic_ms() >= end) return false;
        run_ms(5);
    }
    return true;
}

static long log_mark(void) {
    fflush(stdout);
    struct stat st;
    return stat(g_logpath, &st) == 0 ? (long)st.st_size : 0;
}

/* Does the log, from mark on, hold needle? */
static bool log_has(long mark, const char *needle) {
    fflush(stdout);
    FILE *f = fopen(g_logpath, "r");
    if (!f) return false;
    fseek(f, mark, SEEK_SET);
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static bool run_until_logged(long mark, const char *needle, int64_t max_ms) {
    int64_t end = monotonic_ms() + max_ms;
    while (!log_has(mark, needle)) {
        if (monotonic_ms() >= end) return false;
        run_ms(5);
    }
    return true;
}

/* ---- nodes ---- */

static bool node_start(int id) {
    node *n = &g_nodes[id];
    char dir[400], v[400], err[1024];
    snprintf(dir, sizeof dir, "%s/node%d", g_tmp, id);
    props p;
    props_init(&p);
    props_load_string(&p, samsa_default_server_properties);
    snprintf(v, sizeof v, "%d", id);
    props_set(&p, "node.id", v);
    props_set(&p, "log.dirs", dir);
    snprintf(v, sizeof v, "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", 19090 + id, 19190 + id);
    props_set(&p, "listeners", v);
    snprintf(v, sizeof v, "PLAINTEXT://127.0.0.1:%d", 19090 + id);
    props_set(&p, "advertised.listeners", v);
    snprintf(v, sizeof v, "%d@127.0.0.1:%d", id, 19190 + id);
    props_set(&p, "controller.quorum.voters", v);
    props_set(&p, "metadata.store", "etcd");
    props_set(&p, "etcd.endpoints", "http://fake:1");
    props_set(&p, "etcd.prefix", ROOT);
    snprintf(v, sizeof v, "%d", SESSION_MS);
    props_set(&p, "broker.session.timeout.ms", v);
    snprintf(v, sizeof v, "%d", HEARTBEAT_MS);
    props_set(&p, "broker.heartbeat.interval.ms", v);
    broker *b = calloc(1, sizeof *b);
    if (!b) return false;
    if (broker_config_load(&b->cfg, &p, err, sizeof err) != 0) {
        fprintf(stderr, "node %d: config: %s\n", id, err);
        props_free(&p);
        free(b);
        return false;
    }
    props_free(&p);
    char cid[64];
    int nid = -1;
    if (storage_read_meta(dir, cid, sizeof cid, &nid, err, sizeof err) == 1 &&
        storage_format_dir(dir, CLUSTER_ID, id, err, sizeof err) != 0) {
        fprintf(stderr, "node %d: format: %s\n", id, err);
        broker_config_free(&b->cfg);
        free(b);
        return false;
    }
    if (storage_read_meta(dir, cid, sizeof cid, &nid, err, sizeof err) != 0 || nid != id) {
        fprintf(stderr, "node %d: meta.properties: %s\n", id, err);
        broker_config_free(&b->cfg);
        free(b);
        return false;
    }
    snprintf(b->cluster_id, sizeof b->cluster_id, "%s", cid);
    b->loop = g_loop;
    b->image = mimage_new(id);
    n->client = fe.nclients; /* mstore_etcd_open makes the next client */
    b->store = b->image ? mstore_etcd_open(b, err, sizeof err) : NULL;
    if (!b->store) {
        fprintf(stderr, "node %d: store: %s\n", id, err);
        mimage_free(b->image);
        broker_config_free(&b->cfg);
        free(b);
        return false;
    }
    if (topics_init(b) != 0) {
        fprintf(stderr, "node %d: topics_init failed\n", id);
        return false;
    }
    if (mstore_start(b->store, err, sizeof err) != 0) {
        fprintf(stderr, "node %d: start: %s\n", id, err);
        return false;
    }
    b->started_ms = monotonic_ms();
    n->b = b;
    return true;
}

static void node_stop(int id) {
    broker *b = g_nodes[id].b;
    if (!b) return;
    mstore_close(b->store); /* leaves the cluster: deletes its registration */
    topics_close_all(b);
    mimage_free(b->image);
    broker_config_free(&b->cfg);
    free(b);
    g_nodes[id].b = NULL;
}

/* ---- what the nodes see ---- */

static int64_t end_offset(int id) { return mstore_end_offset(g_nodes[id].b->store); }
static int32_t controller_of(int id) { return mstore_controller_id(g_nodes[id].b->store); }

static const mtopic *topic_of(int id, const char *name) {
    return mimage_topic(g_nodes[id].b->image, kstr_from(name));
}

static int cmp_topic_ptr(const void *a, const void *b) {
    return strcmp((*(const mtopic *const *)a)->name, (*(const mtopic *const *)b)->name);
}

static bool configs_equal(const mconfig_set *x, const mconfig_set *y) {
    if (x->count != y->count) return false;
    for (int i = 0; i < x->count; i++) {
        const char *v = mconfig_get(y, x->items[i].key);
        if (!v || strcmp(v, x->items[i].value) != 0) return false;
    }
    return true;
}

static bool ints_equal(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof *a * (size_t)na) == 0);
}

/* Identical images? Says where they differ into why. */
static bool images_equal(const mimage *x, const mimage *y, char *why, size_t n) {
#define DIFF(...)                         \
    do {                                  \
        snprintf(why, n, __VA_ARGS__);    \
        return false;                     \
    } while (0)
    if (x->metadata_version != y->metadata_version) DIFF("metadata.version %d vs %d", x->metadata_version, y->metadata_version);
    if (x->next_producer_id != y->next_producer_id) DIFF("next producer id");
    if (!configs_equal(&x->default_broker_configs, &y->default_broker_configs)) DIFF("default broker configs");
    if (x->nbrokers != y->nbrokers) DIFF("%d vs %d brokers", x->nbrokers, y->nbrokers);
    for (int i = 0; i < x->nbrokers; i++) {
        const mbroker *a = &x->brokers[i], *b = &y->brokers[i];
        if (a->id != b->id || a->epoch != b->epoch || a->fenced != b->fenced)
            DIFF("broker %d epoch %lld fenced %d vs broker %d epoch %lld fenced %d", a->id, (long long)a->epoch,
                 a->fenced, b->id, (long long)b->epoch, b->fenced);
        if (memcmp(a->incarnation_id.b, b->incarnation_id.b, 16) != 0) DIFF("broker %d incarnation", a->id);
        if ((a->rack == NULL) != (b->rack == NULL) || (a->rack && strcmp(a->rack, b->rack) != 0))
            DIFF("broker %d rack", a->id);
        if (a->nendpoints != b->nendpoints) DIFF("broker %d endpoints", a->id);
        for (int e = 0; e < a->nendpoints; e++)
            if (strcmp(a->endpoints[e].name, b->endpoints[e].name) != 0 ||
                strcmp(a->endpoints[e].host, b->endpoints[e].host) != 0 || a->endpoints[e].port != b->endpoints[e].port)
                DIFF("broker %d endpoint %d", a->id, e);
    }
    if (x->ntopics != y->ntopics) DIFF("%d vs %d topics", x->ntopics, y->ntopics);
    const mtopic **tx = calloc((size_t)x->ntopics + 1, sizeof *tx), **ty = calloc((size_t)y->ntopics + 1, sizeof *ty);
    if (!tx || !ty) abort();
    if (x->ntopics) memcpy(tx, x->topics, sizeof *tx * (size_t)x->ntopics);
    if (y->ntopics) memcpy(ty, y->topics, sizeof *ty * (size_t)y->ntopics);
    qsort(tx, (size_t)x->ntopics, sizeof *tx, cmp_topic_ptr);
    qsort(ty, (size_t)y->ntopics, sizeof *ty, cmp_topic_ptr);
    bool ok = true;
    for (int i = 0; i < x->ntopics && ok; i++) {
        const mtopic *a = tx[i], *b = ty[i];
        ok = false;
        if (strcmp(a->name, b->name) != 0) snprintf(why, n, "topic %s vs %s", a->name, b->name);
        else if (memcmp(a->id.b, b->id.b, 16) != 0) snprintf(why, n, "topic %s: ids", a->name);
        else if (a->store_rev != b->store_rev)
            snprintf(why, n, "topic %s: store revision %lld vs %lld", a->name, (long long)a->store_rev,
                     (long long)b->store_rev);
        else if (a->nparts != b->nparts) snprintf(why, n, "topic %s: %d vs %d partitions", a->name, a->nparts, b->nparts);
        else if (!configs_equal(&a->configs, &b->configs)) snprintf(why, n, "topic %s: configs", a->name);
        else ok = true;
        for (int p = 0; ok && p < a->nparts; p++) {
            const mpartition *pa = &a->parts[p], *pb = &b->parts[p];
            ok = false;
            if (pa->leader != pb->leader || pa->leader_epoch != pb->leader_epoch ||
                pa->partition_epoch != pb->partition_epoch)
                snprintf(why, n, "%s-%d: leader %d epoch %d/%d vs leader %d epoch %d/%d", a->name, p, pa->leader,
                         pa->leader_epoch, pa->partition_epoch, pb->leader, pb->leader_epoch, pb->partition_epoch);
            else if (!ints_equal(pa->replicas, pa->nreplicas, pb->replicas, pb->nreplicas))
                snprintf(why, n, "%s-%d: replicas", a->name, p);
            else if (!ints_equal(pa->isr, pa->nisr, pb->isr, pb->nisr)) snprintf(why, n, "%s-%d: isr", a->name, p);
            else if (pa->store_rev != pb->store_rev) snprintf(why, n, "%s-%d: store revision", a->name, p);
            else ok = true;
        }
    }
    free(tx);
    free(ty);
    return ok;
#undef DIFF
}

/* Every running node has applied everything etcd holds. */
static bool settled(void) {
    for (int id = 1; id <= NNODES; id++)
        if (g_nodes[id].b && end_offset(id) != fake_etcd_revision()) return false;
    return true;
}

static void check_identical(const char *when) {
    int first = 0;
    for (int id = 1; id <= NNODES; id++) {
        if (!g_nodes[id].b) continue;
        if (!first) {
            first = id;
            continue;
        }
        char why[512] = "";
        bool same = images_equal(g_nodes[first].b->image, g_nodes[id].b->image, why, sizeof why);
        CHECK(same, "%s: images of node %d and node %d differ: %s", when, first, id, why);
        CHECK(controller_of(first) == controller_of(id), "%s: node %d says controller %d, node %d says %d", when, first,
              controller_of(first), id, controller_of(id));
    }
}

/* The nodes agree on one live controller that knows it is. */
static bool one_controller(void) {
    int32_t c = -1;
    for (int id = 1; id <= NNODES; id++) {
        if (!g_nodes[id].b) continue;
        int32_t k = controller_of(id);
        if (k < 0 || (c >= 0 && k != c)) return false;
        c = k;
    }
    return c >= 1 && c <= NNODES && g_nodes[c].b && !g_nodes[c].b->fenced;
}

static bool all_registered(void) {
    for (int id = 1; id <= NNODES; id++) {
        if (!g_nodes[id].b) continue;
        for (int o = 1; o <= NNODES; o++)
            if (g_nodes[o].b && !mimage_broker_alive(g_nodes[id].b->image, o)) return false;
        if (g_nodes[id].b->fenced) return false;
    }
    return true;
}

/* Every partition is led by its (only) replica, which is alive. */
static bool all_led(void) {
    for (int id = 1; id <= NNODES; id++) {
        if (!g_nodes[id].b) continue;
        const mimage *img = g_nodes[id].b->image;
        for (int t = 0; t < img->ntopics; t++)
            for (int p = 0; p < img->topics[t]->nparts; p++) {
                const mpartition *mp = &img->topics[t]->parts[p];
                if (mp->nreplicas < 1 || mp->leader != mp->replicas[0] || !mimage_broker_alive(img, mp->leader))
                    return false;
            }
    }
    return true;
}

static bool calm(void) { return settled() && all_registered() && one_controller() && all_led(); }

static int64_t broker_key_lease(int id) {
    char k[128];
    snprintf(k, sizeof k, P "brokers/%d", id);
    const fe_kv *kv = fake_etcd_get(k);
    return kv ? kv->lease : 0;
}

static int64_t broker_key_epoch(int id) {
    char k[128];
    snprintf(k, sizeof k, P "brokers/%d", id);
    const fe_kv *kv = fake_etcd_get(k);
    return kv ? kv->create_revision : 0;
}

/* ---- commits ---- */

typedef struct creation {
    int node;
    bool done;
    int16_t error;
    bool applied_first;   /* the writer's image had it when it completed */
    int64_t took_ms, t0;
    char name[64];
    karena a;
    kstr keys[1], values[1];
} creation;

static void created(broker *b, void *arg, int16_t error) {
    creation *c = arg;
    c->done = true;
    c->error = error;
    c->took_ms = monotonic_ms() - c->t0;
    /* what the writer holds at completion: the image and the runtime */
    c->applied_first = mimage_topic(b->image, kstr_from(c->name)) && broker_topic(b, kstr_from(c->name));
}

/* CreateTopics from a node: name, partitions, one topic config. */
static int16_t create_topic(creation *c, int id, const char *name, int32_t parts) {
    memset(c, 0, sizeof *c);
    karena_init(&c->a, 0);
    c->node = id;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->t0 = monotonic_ms();
    c->keys[0] = KSTR_LIT("retention.ms");
    c->values[0] = KSTR_LIT("123456");
    const char *msg = NULL;
    kstr n = {karena_strndup(&c->a, name, strlen(name)), (int32_t)strlen(name)};
    int16_t e = broker_create_topic(g_nodes[id].b, n, parts, 1, NULL, c->keys, c->values, 1, false, &msg, &c->a,
                                    created, c);
    if (e != KERR_NONE) {
        c->done = true;
        c->error = e;
    }
    return e;
}

static creation *g_wait[4];
static bool creations_done(void) {
    for (int i = 0; i < 4; i++)
        if (g_wait[i] && !g_wait[i]->done) return false;
    return true;
}

static bool wait_created(creation *c1, creation *c2, int64_t max_ms) {
    memset(g_wait, 0, sizeof g_wait);
    g_wait[0] = c1;
    g_wait[1] = c2;
    return run_until(creations_done, max_ms);
}

/* ---- the fake itself: the etcd semantics the store relies on ---- */

typedef struct answer {
    int n, status;
    int64_t rev, ttl, lease;
    bool succeeded;
    int nkvs;
    char val[64];
} answer;

static void on_answer(void *arg, const etcd_result *r) {
    answer *a = arg;
    a->n++;
    a->status = r->status;
    a->rev = r->revision;
    a->ttl = r->ttl;
    a->lease = r->lease_id;
    a->succeeded = r->succeeded;
    a->nkvs = r->nkvs;
    a->val[0] = 0;
    if (r->nkvs > 0) snprintf(a->val, sizeof a->val, "%.*s", (int)r->kvs[0].value_len, (const char *)r->kvs[0].value);
}

typedef struct seen {
    char text[512];
    int ended, status;
    int64_t compact;
} seen;

static void on_events(void *arg, const etcd_watch_batch *b) {
    seen *w = arg;
    if (b->status != ETCD_OK || b->compact_revision > 0) {
        w->ended++;
        w->status = b->status;
        w->compact = b->compact_revision;
        return;
    }
    for (int i = 0; i < b->nevents; i++) {
        size_t l = strlen(w->text);
        snprintf(w->text + l, sizeof w->text - l, "%c%.*s@%lld ", b->events[i].is_delete ? 'D' : 'P',
                 (int)b->events[i].kv.key_len, (const char *)b->events[i].kv.key,
                 (long long)b->events[i].kv.mod_revision);
    }
    size_t l = strlen(w->text);
    snprintf(w->text + l, sizeof w->text - l, "| ");
}

#define PUT_OP(k, v, l) ((etcd_op){ETCD_OP_PUT, k, strlen(k), v, strlen(v), l, NULL, 0})
#define DEL_OP(k) ((etcd_op){ETCD_OP_DELETE, k, strlen(k), NULL, 0, 0, NULL, 0})
#define RANGE_OP(k) ((etcd_op){ETCD_OP_RANGE, k, strlen(k), NULL, 0, 0, NULL, 0})

static void scenario_fake(void) {
    char err[128];
    etcd_client *c = etcd_new(g_loop, "http://fake:1", 1000, err, sizeof err);
    CHECK(c != NULL, "fake: a client");
    if (!c) return;
    int64_t r0 = fake_etcd_revision();
    answer a = {0};
    etcd_put(c, "/t/a", 4, "1", 1, 0, on_answer, &a);
    CHECK(a.n == 0, "fake: no answer inside the call");
    run_ms(5);
    CHECK(a.n == 1 && a.status == ETCD_OK && a.rev == r0 + 1, "fake: put at revision %lld", (long long)a.rev);
    /* a failed compare runs the failure ops and writes nothing */
    etcd_cmp absent = {ETCD_CMP_CREATE, ETCD_EQUAL, "/t/a", 4, 0, NULL, 0};
    etcd_op put_b = PUT_OP("/t/b", "x", 0), get_a = RANGE_OP("/t/a");
    memset(&a, 0, sizeof a);
    etcd_txn(c, &absent, 1, &put_b, 1, &get_a, 1, on_answer, &a);
    run_ms(5);
    CHECK(a.n == 1 && !a.succeeded && a.nkvs == 1 && strcmp(a.val, "1") == 0 && a.rev == r0 + 1,
          "fake: a failed txn reads and writes nothing");
    /* several writes in one txn: one revision */
    etcd_cmp same = {ETCD_CMP_MOD, ETCD_EQUAL, "/t/a", 4, r0 + 1, NULL, 0};
    etcd_op ops[3] = {PUT_OP("/t/b", "2", 0), PUT_OP("/t/c", "3", 0), DEL_OP("/t/a")};
    memset(&a, 0, sizeof a);
    etcd_txn(c, &same, 1, ops, 3, NULL, 0, on_answer, &a);
    run_ms(5);
    CHECK(a.n == 1 && a.succeeded && a.rev == r0 + 2, "fake: a txn of three writes is one revision");
    /* a watch from the past sees every event in revision order (catching up:
     * one batch of both revisions, as etcd syncs a lagging watcher) */
    seen w = {0};
    uint8_t end[8];
    size_t el = etcd_prefix_end("/t/", 3, end);
    etcd_watch *wt = etcd_watch_start(c, "/t/", 3, end, el, r0 + 1, on_events, &w);
    run_ms(5);
    char want[256];
    snprintf(want, sizeof want, "P/t/a@%lld P/t/b@%lld P/t/c@%lld D/t/a@%lld | ", (long long)r0 + 1,
             (long long)r0 + 2, (long long)r0 + 2, (long long)r0 + 2);
    CHECK(strcmp(w.text, want) == 0,
          "fake: watch saw %s", w.text);
    /* etcd refuses a key twice in one txn */
    etcd_op twice[2] = {PUT_OP("/t/d", "1", 0), PUT_OP("/t/d", "2", 0)};
    memset(&a, 0, sizeof a);
    etcd_txn(c, NULL, 0, twice, 2, NULL, 0, on_answer, &a);
    run_ms(5);
    CHECK(a.n == 1 && a.status == ETCD_ERROR, "fake: duplicate key refused");
    /* a lease expires on the fake clock and takes its key */
    memset(&a, 0, sizeof a);
    etcd_lease_grant(c, 2, on_answer, &a);
    run_ms(5);
    int64_t lease = a.lease;
    CHECK(a.n == 1 && lease != 0 && a.ttl == 2, "fake: lease granted");
    etcd_put(c, "/t/l", 4, "v", 1, lease, on_answer, &a);
    run_ms(5);
    w.text[0] = 0;
    fake_etcd_advance_ms(1500);
    etcd_lease_keepalive(c, lease, on_answer, &a);
    run_ms(5);
    CHECK(a.ttl == 2 && fake_etcd_get("/t/l") != NULL, "fake: kept alive");
    fake_etcd_advance_ms(2001);
    run_ms(5);
    CHECK(fake_etcd_get("/t/l") == NULL && strncmp(w.text, "D/t/l@", 6) == 0, "fake: expired, its key deleted (%s)",
          w.text);
    memset(&a, 0, sizeof a);
    etcd_lease_keepalive(c, lease, on_answer, &a);
    run_ms(5);
    CHECK(a.n == 1 && a.status == ETCD_OK && a.ttl == 0, "fake: keep-alive of a gone lease answers TTL 0");
    /* compacted history */
    fake_etcd_compact(fake_etcd_revision());
    seen w2 = {0};
    etcd_watch_start(c, "/t/", 3, end, el, r0 + 1, on_events, &w2);
    run_ms(5);
    CHECK(w2.ended == 1 && w2.compact == fake_etcd_revision(), "fake: a watch below the compaction ends");
    /* down: calls fail, the watch ends */
    fake_etcd_set_down(true);
    memset(&a, 0, sizeof a);
    etcd_range(c, "/t/b", 4, NULL, 0, 0, 0, on_answer, &a);
    run_ms(5);
    CHECK(a.n == 1 && a.status == ETCD_UNREACHABLE, "fake: down answers UNREACHABLE");
    CHECK(w.ended == 1 && w.status == ETCD_UNREACHABLE, "fake: down ends the watch");
    fake_etcd_set_down(false);
    (void)wt;
    etcd_free(c);
}

/* ---- scenarios ---- */

static void scenario_a(void) {
    for (int id = 1; id <= NNODES; id++) CHECK(node_start(id), "node %d starts", id);
    for (int id = 1; id <= NNODES; id++)
        if (!g_nodes[id].b) return;
    bool ok = run_until(calm, 3000);
    CHECK(ok, "a: the nodes agree on the registrations and one controller");
    for (int id = 1; id <= NNODES; id++) {
        const mimage *img = g_nodes[id].b->image;
        CHECK(img->nbrokers == NNODES, "a: node %d sees %d brokers", id, img->nbrokers);
        for (int o = 1; o <= NNODES; o++) {
            const mbroker *br = mimage_broker(img, o);
            CHECK(br && !br->fenced && br->epoch == broker_key_epoch(o),
                  "a: node %d sees broker %d alive with the epoch of its key", id, o);
        }
        CHECK(img->metadata_version == METADATA_VERSION_LEVEL, "a: node %d at metadata.version %d", id,
              img->metadata_version);
    }
    int32_t c = controller_of(1);
    int self = 0;
    for (int id = 1; id <= NNODES; id++) self += controller_of(id) == id;
    CHECK(self == 1, "a: exactly one node thinks it is the controller (%d)", self);
    const fe_kv *ck = fake_etcd_get(P "controller");
    char cv[16];
    snprintf(cv, sizeof cv, "%d", c);
    CHECK(ck && ck->value_len == strlen(cv) && memcmp(ck->value, cv, ck->value_len) == 0,
          "a: the controller key names node %d", c);
    check_identical("a");
}

static void scenario_b(void) {
    creation c;
    long mark = log_mark();
    int64_t before = fake_etcd_revision();
    CHECK(create_topic(&c, 1, "orders", 6) == KERR_NONE, "b: CreateTopics accepted");
    CHECK(!c.done, "b: not completed inside the call");
    CHECK(wait_created(&c, NULL, 3000), "b: CreateTopics completes");
    CHECK(c.error == KERR_NONE, "b: CreateTopics: error %d", c.error);
    CHECK(c.applied_first, "b: node 1 applied the topic before the commit completed");
    const fe_kv *log = fake_etcd_get(P "log");
    CHECK(log && log->mod_revision > before, "b: the change is in etcd's log key");
    CHECK(log && end_offset(1) >= log->mod_revision, "b: node 1 applied up to the change");
    CHECK(run_until(calm, 3000), "b: the cluster settles");
    check_identical("b");
    const mtopic *t = topic_of(2, "orders");
    CHECK(t && t->nparts == 6, "b: node 2 has orders with 6 partitions");
    if (t) {
        int per[NNODES + 1] = {0};
        for (int p = 0; p < t->nparts; p++)
            if (t->parts[p].leader >= 1 && t->parts[p].leader <= NNODES) per[t->parts[p].leader]++;
        CHECK(per[1] == 2 && per[2] == 2 && per[3] == 2, "b: partitions striped over the nodes (%d/%d/%d)", per[1],
              per[2], per[3]);
        const char *v = mconfig_get(&t->configs, "retention.ms");
        CHECK(v && strcmp(v, "123456") == 0, "b: the topic config arrived");
    }
    for (int id = 1; id <= NNODES; id++) {
        partition *p = broker_partition(g_nodes[id].b, KSTR_LIT("orders"), id - 1);
        (void)p;
        topic_rt *rt = broker_topic(g_nodes[id].b, KSTR_LIT("orders"));
        CHECK(rt != NULL, "b: node %d runs the topic", id);
    }
    CHECK(log_has(mark, "Created topic orders"), "b: logged");
    karena_free(&c.a);
}

static void scenario_c(void) {
    creation x, y;
    CHECK(create_topic(&x, 2, "dup", 3) == KERR_NONE, "c: node 2 accepted");
    CHECK(create_topic(&y, 3, "dup", 3) == KERR_NONE, "c: node 3 accepted");
    CHECK(wait_created(&x, &y, 3000), "c: both complete");
    int ok = (x.error == KERR_NONE) + (y.error == KERR_NONE);
    int exists = (x.error == KERR_TOPIC_ALREADY_EXISTS) + (y.error == KERR_TOPIC_ALREADY_EXISTS);
    CHECK(ok == 1 && exists == 1, "c: one wins, one gets TOPIC_ALREADY_EXISTS (%d, %d)", x.error, y.error);
    CHECK(run_until(calm, 3000), "c: the cluster settles");
    check_identical("c");
    const mtopic *t = topic_of(1, "dup");
    CHECK(t && t->nparts == 3, "c: one topic dup of 3 partitions");
    karena_free(&x.a);
    karena_free(&y.a);
}

/* ---- d: a node's lease expires ---- */

static int g_victim;
static bool victim_key_gone(void) { return broker_key_lease(g_victim) == 0; }

static int32_t saved_epochs[64];
static int nsaved;

/* the victim's partitions of `orders` and `dup` */
static bool victim_partitions(bool (*ok)(const mpartition *, int), int id) {
    const char *names[] = {"orders", "dup"};
    nsaved = 0;
    for (int k = 0; k < 2; k++) {
        const mtopic *t = topic_of(id, names[k]);
        if (!t) return false;
        for (int p = 0; p < t->nparts; p++) {
            if (t->parts[p].replicas[0] != g_victim) continue;
            if (!ok(&t->parts[p], nsaved)) return false;
            nsaved++;
        }
    }
    return true;
}

static int g_victim_part = -1; /* one partition of orders it leads */
static bool save_epoch(const mpartition *mp, int i) {
    saved_epochs[i] = mp->leader_epoch;
    if (g_victim_part < 0) g_victim_part = mp->partition_id;
    return mp->leader == g_victim;
}
static bool leaderless_next_epoch(const mpartition *mp, int i) {
    return mp->leader == -1 && mp->leader_epoch == saved_epochs[i] + 1;
}
static bool led_again(const mpartition *mp, int i) {
    return mp->leader == g_victim && mp->leader_epoch == saved_epochs[i] + 2;
}

static bool victim_fenced_by_others(void) {
    for (int id = 1; id <= NNODES; id++) {
        if (id == g_victim) continue;
        if (mimage_broker_alive(g_nodes[id].b->image, g_victim)) return false;
        if (!victim_partitions(leaderless_next_epoch, id)) return false;
    }
    return true;
}

static bool victim_leads_again(void) {
    if (!calm()) return false;
    for (int id = 1; id <= NNODES; id++)
        if (!victim_partitions(led_again, id)) return false;
    return true;
}

/* Advance the lease clock in steps, letting the live nodes keep their
 * leases alive in between, until pred holds. */
static bool advance_until(bool (*pred)(void), int steps) {
    for (int i = 0; i < steps && !pred(); i++) {
        fake_etcd_advance_ms(250);
        run_ms(70);
    }
    return pred();
}

static void scenario_d(void) {
    int32_t ctl = controller_of(1);
    g_victim = ctl == 2 ? 3 : 2;
    int v = g_victim;
    CHECK(victim_partitions(save_epoch, 1) && nsaved > 0, "d: node %d leads %d partitions", v, nsaved);
    int64_t old_epoch = broker_key_epoch(v);
    long mark = log_mark();
    fake_etcd_client_down(g_nodes[v].client, true);
    run_ms(20);
    CHECK(advance_until(victim_key_gone, 40), "d: node %d's lease expired", v);
    for (int id = 1; id <= NNODES; id++)
        if (id != v) CHECK(broker_key_lease(id) != 0, "d: node %d kept its lease", id);
    CHECK(run_until(victim_fenced_by_others, 2000), "d: the others fence node %d and its partitions lose their leader "
                                                    "with a new epoch", v);
    char want[128];
    snprintf(want, sizeof want, "Partition orders-%d: leader -1", g_victim_part);
    CHECK(log_has(mark, want), "d: the controller logged %s", want);
    /* back on the network, its watch last: a keep-alive tells it the
     * session is gone and it registers again; only then does the watch
     * replay the expiry of the old registration, which must not fence the
     * new one */
    fake_etcd_client_watch_down(g_nodes[v].client, true);
    fake_etcd_client_down(g_nodes[v].client, false);
    snprintf(want, sizeof want, "[BrokerLifecycleManager id=%d] Registered again", v);
    /* registered, but its image is older than its registration: it must
     * stay fenced (lead nothing) until the watch has caught up */
    run_until_logged(mark, want, 1500);
    CHECK(!log_has(mark, want), "d: node %d stays fenced while its watch is behind its new registration", v);
    fake_etcd_client_watch_down(g_nodes[v].client, false);
    CHECK(run_until_logged(mark, want, 2000), "d: node %d registered again once its watch caught up", v);
    CHECK(run_until(victim_leads_again, 3000), "d: node %d leads again", v);
    snprintf(want, sizeof want, "[BrokerLifecycleManager id=%d] Fenced:", v);
    CHECK(log_has(mark, want), "d: node %d fenced itself", v);
    int64_t new_epoch = broker_key_epoch(v);
    CHECK(new_epoch > old_epoch, "d: a new broker epoch (%lld > %lld)", (long long)new_epoch, (long long)old_epoch);
    CHECK(!g_nodes[v].b->fenced, "d: node %d not fenced", v);
    partition *p = broker_partition(g_nodes[v].b, KSTR_LIT("orders"), g_victim_part);
    CHECK(p && p->is_leader, "d: node %d's runtime leads orders-%d", v, g_victim_part);
    check_identical("d");
}

/* ---- e: the controller's lease goes ---- */

static int32_t g_old_ctl;
static bool new_controller(void) { return calm() && controller_of(1) != g_old_ctl; }

static void scenario_e(void) {
    g_old_ctl = controller_of(1);
    CHECK(g_old_ctl >= 1, "e: there is a controller");
    if (g_old_ctl < 1) return;
    const fe_kv *ck = fake_etcd_get(P "controller");
    int64_t lease = ck ? ck->lease : 0;
    CHECK(lease != 0 && lease == broker_key_lease(g_old_ctl), "e: the controller key lives on node %d's lease",
          g_old_ctl);
    CHECK(fake_etcd_revoke(lease), "e: revoked");
    CHECK(run_until(new_controller, 3000), "e: another node became controller and the old one is back");
    int32_t now = controller_of(1);
    CHECK(now != g_old_ctl && now >= 1, "e: controller %d -> %d", g_old_ctl, now);
    const fe_kv *nk = fake_etcd_get(P "controller");
    CHECK(nk && nk->lease == broker_key_lease(now), "e: under the new controller's lease");
    check_identical("e");
}

/* ---- f: behind, and compacted ---- */

static void delete_done(broker *b, void *arg, int16_t error) {
    (void)b;
    creation *c = arg;
    c->done = true;
    c->error = error;
}

static void scenario_f(void) {
    /* a node cut off while three changes happen catches up when back, with
     * etcd handing a lagging watch a revision per batch */
    int lag = controller_of(1) == 3 ? 2 : 3;
    fake_etcd_watch_batch_revs(1);
    fake_etcd_client_down(g_nodes[lag].client, true);
    run_ms(20);
    creation c[3];
    const char *names[3] = {"f1", "f2", "f3"};
    int writer = lag == 1 ? 2 : 1;
    for (int i = 0; i < 3; i++) {
        CHECK(create_topic(&c[i], writer, names[i], 2) == KERR_NONE, "f: create %s", names[i]);
        CHECK(wait_created(&c[i], NULL, 3000) && c[i].error == KERR_NONE, "f: %s created", names[i]);
        karena_free(&c[i].a);
    }
    CHECK(topic_of(lag, "f1") == NULL, "f: node %d did not see it while cut off", lag);
    fake_etcd_client_down(g_nodes[lag].client, false);
    CHECK(run_until(calm, 3000), "f: node %d caught up", lag);
    for (int i = 0; i < 3; i++) CHECK(topic_of(lag, names[i]) != NULL, "f: node %d has %s", lag, names[i]);
    check_identical("f: caught up in batches");
    fake_etcd_watch_batch_revs(1000);

    /* compacted while cut off: reload a snapshot */
    long mark = log_mark();
    fake_etcd_client_down(g_nodes[lag].client, true);
    run_ms(20);
    creation d;
    memset(&d, 0, sizeof d);
    topic_rt *t = broker_topic(g_nodes[writer].b, KSTR_LIT("f2"));
    CHECK(t && broker_delete_topic(g_nodes[writer].b, t, delete_done, &d) == KERR_NONE, "f: delete f2");
    CHECK(wait_created(&d, NULL, 3000) && d.error == KERR_NONE, "f: f2 deleted");
    CHECK(create_topic(&c[0], writer, "f4", 1) == KERR_NONE, "f: create f4");
    CHECK(wait_created(&c[0], NULL, 3000) && c[0].error == KERR_NONE, "f: f4 created");
    karena_free(&c[0].a);
    fake_etcd_compact(fake_etcd_revision());
    fake_etcd_client_down(g_nodes[lag].client, false);
    CHECK(run_until(calm, 3000), "f: node %d follows again", lag);
    char want[128];
    snprintf(want, sizeof want, "[BrokerLifecycleManager id=%d] Reloaded the metadata from etcd", lag);
    CHECK(log_has(mark, want), "f: node %d reloaded a snapshot", lag);
    CHECK(topic_of(lag, "f2") == NULL && topic_of(lag, "f4") != NULL, "f: node %d's image after the reload", lag);
    CHECK(broker_topic(g_nodes[lag].b, KSTR_LIT("f2")) == NULL, "f: node %d's runtime dropped f2", lag);
    check_identical("f: reloaded");
}

/* ---- g: etcd down ---- */

static bool nobody_has_g1(void) {
    for (int id = 1; id <= NNODES; id++)
        if (topic_of(id, "g1")) return false;
    return true;
}

static void scenario_g(void) {
    int64_t rev = fake_etcd_revision();
    fake_etcd_delay_ms(150); /* a slow network: answers take 150 ms */
    fake_etcd_set_down(true);
    creation c;
    CHECK(create_topic(&c, 1, "g1", 2) == KERR_NONE, "g: accepted");
    CHECK(wait_created(&c, NULL, 6000), "g: completes while etcd is down");
    CHECK(c.error == KERR_REQUEST_TIMED_OUT, "g: REQUEST_TIMED_OUT (%d)", c.error);
    CHECK(c.took_ms >= 150 && c.took_ms <= 5000, "g: within the store's bound (%lld ms)", (long long)c.took_ms);
    karena_free(&c.a);
    CHECK(fake_etcd_revision() == rev, "g: nothing written");
    CHECK(fake_etcd_get(P "topics/g1") == NULL, "g: no topics/g1 key");
    run_ms(200);
    CHECK(nobody_has_g1(), "g: no node applied anything");
    CHECK(topic_of(1, "g1") == NULL && broker_topic(g_nodes[1].b, KSTR_LIT("g1")) == NULL, "g: nor node 1's runtime");
    fake_etcd_set_down(false);
    fake_etcd_delay_ms(0);
    CHECK(run_until(calm, 3000), "g: the cluster settles once etcd is back");
    CHECK(create_topic(&c, 2, "g1", 2) == KERR_NONE, "g: accepted again");
    CHECK(wait_created(&c, NULL, 3000) && c.error == KERR_NONE, "g: created once etcd is back (%d)", c.error);
    karena_free(&c.a);
    CHECK(run_until(calm, 3000), "g: settles");
    check_identical("g");
}

/* ---- h: corrupt values ---- */

static bool all_at(void) { return settled(); }

static void scenario_h(void) {
    long mark = log_mark();
    int ntopics = g_nodes[1].b->image->ntopics;
    /* garbage in the log key */
    int64_t r1 = fake_etcd_put(P "log", "\xff\xff\xff\xff garbage", 12);
    CHECK(run_until(all_at, 2000), "h: every node moved past the garbage");
    char want[160];
    snprintf(want, sizeof want, "Refusing a corrupt metadata change at etcd revision %lld", (long long)r1);
    CHECK(log_has(mark, want), "h: logged: %s", want);
    /* a good TopicRecord followed by a bad frame: refused whole */
    TopicRecord tr;
    TopicRecord_init(&tr);
    tr.name = KSTR_LIT("half");
    memset(tr.topic_id.b, 0x42, 16);
    mrecord rec = {KMETA_TOPIC_RECORD, 0, &tr};
    kwriter f, w;
    kw_init(&f);
    kw_init(&w);
    CHECK(mrecord_encode(&rec, &f) == 0, "h: encode");
    kw_uvarint(&w, (uint32_t)f.len);
    kw_raw(&w, f.buf, f.len);
    kw_uvarint(&w, 3);
    kw_raw(&w, "\xff\xff\xff", 3);
    int64_t r2 = fake_etcd_put(P "log", w.buf, w.len);
    /* a topics/ key with a bad frame, and a registration that is not one */
    fake_etcd_put(P "topics/bad", "\x05\x01\x02", 3);
    fake_etcd_put(P "brokers/9", "\x01\xff", 2);
    kw_free(&f);
    kw_free(&w);
    CHECK(run_until(all_at, 2000), "h: every node moved past them");
    snprintf(want, sizeof want, "Refusing a corrupt metadata change at etcd revision %lld", (long long)r2);
    CHECK(log_has(mark, want), "h: logged: %s", want);
    CHECK(log_has(mark, "Refusing a foreign broker registration"), "h: the bad registration logged");
    for (int id = 1; id <= NNODES; id++) {
        CHECK(topic_of(id, "half") == NULL && topic_of(id, "bad") == NULL, "h: node %d applied none of it", id);
        CHECK(g_nodes[id].b->image->ntopics == ntopics, "h: node %d still has %d topics", id, ntopics);
        CHECK(mimage_broker(g_nodes[id].b->image, 9) == NULL, "h: node %d has no broker 9", id);
    }
    check_identical("h: after garbage");
    /* a node that starts now reads topics/bad in its snapshot: refused */
    int again = controller_of(1) == 3 ? 2 : 3;
    node_stop(again);
    CHECK(node_start(again), "h: node %d starts again", again);
    if (!g_nodes[again].b) return;
    CHECK(log_has(mark, "Refusing a corrupt value under " P "topics/bad"), "h: the bad topics/ key logged");
    CHECK(run_until(calm, 3000), "h: settles after the restart");
    CHECK(topic_of(again, "bad") == NULL, "h: node %d has no topic bad", again);
    /* and later changes still apply everywhere */
    creation c;
    CHECK(create_topic(&c, again, "after", 3) == KERR_NONE, "h: create after");
    CHECK(wait_created(&c, NULL, 3000) && c.error == KERR_NONE, "h: created (%d)", c.error);
    karena_free(&c.a);
    CHECK(run_until(calm, 3000), "h: settles");
    for (int id = 1; id <= NNODES; id++) CHECK(topic_of(id, "after") != NULL, "h: node %d has after", id);
    check_identical("h: later changes");
}

/* ---- main ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_etcd_store.XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_logpath, sizeof g_logpath, "%s/broker.log", g_tmp);
    fflush(stdout);
    int saved_out = dup(1);
    int lfd = open(g_logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved_out < 0 || lfd < 0 || dup2(lfd, 1) < 0) {
        perror("log file");
        return 1;
    }
    close(lfd);
    g_loop = loop_new();
    int64_t t0 = monotonic_ms();

    scenario_fake();
    scenario_a();
    bool up = true;
    for (int id = 1; id <= NNODES; id++) up = up && g_nodes[id].b;
    if (up) {
        scenario_b();
        scenario_c();
        scenario_d();
        scenario_e();
        scenario_f();
        scenario_g();
        scenario_h();
    }

    for (int id = 1; id <= NNODES; id++) node_stop(id);
    CHECK(fake_etcd_get(P "brokers/1") == NULL && fake_etcd_get(P "controller") == NULL,
          "a clean shutdown leaves no registration and no controller");
    loop_free(g_loop);
    fake_etcd_reset();
    int64_t took = monotonic_ms() - t0;

    fflush(stdout);
    dup2(saved_out, 1);
    close(saved_out);
    if (failed) fprintf(stderr, "test_etcd_store: the brokers' log is kept in %s\n", g_logpath);
    else nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("test_etcd_store: %d passed, %d failed (%lld ms)\n", passed, failed, (long long)took);
    return failed ? 1 : 0;
}
