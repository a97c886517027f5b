/* consumer_groups.c - kafka-consumer-groups: list, describe, delete and
 * reset the offsets of consumer groups.
 *
 * Kafka's ConsumerGroupCommand rebuilt on the tools' protocol client
 * (kclient): ListGroups, FindCoordinator, DescribeGroups, OffsetFetch,
 * ListOffsets, OffsetCommit, DeleteGroups and OffsetDelete, with the
 * Java tool's tables, column widths, messages and ordering. Requests go
 * where Kafka's AdminClient sends them: Metadata and FindCoordinator to the
 * bootstrap node, ListGroups to every broker (results merged), the group
 * APIs (DescribeGroups, OffsetFetch, OffsetCommit, OffsetDelete,
 * DeleteGroups) to the group's coordinator, ListOffsets to each partition's
 * leader.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/java_compat.h"
#include "tools/kclient.h"
#include "tools/opts.h"
#include "tools/tools.h"

#define MISSING "-"

static const opt_spec cg_specs[] = {
    {"all-groups", OPT_FLAG, NULL, "Act on every consumer group.", NULL, 0},
    {"all-topics", OPT_FLAG, NULL, "With --reset-offsets: every topic the group has offsets for.", NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: server to connect to", "REQUIRED: the broker(s) to talk to.", NULL, 0},
    {"by-duration", OPT_ARG, "String: duration", "Reset to the offsets of this long ago (format 'PnDTnHnMnS').", NULL, 0},
    {"command-config", OPT_ARG, "String: command config property file",
     "Properties file of settings for the admin client and the consumer.", NULL, 0},
    {"delete", OPT_FLAG, NULL, "Delete the named groups with their offsets, e.g. --group g1 --group g2.", NULL, 0},
    {"delete-offsets", OPT_FLAG, NULL, "Delete offsets of one group, for one or more topics.", NULL, 0},
    {"describe", OPT_FLAG, NULL, "Describe groups: committed offsets and lag, members, or state.", NULL, 0},
    {"dry-run", OPT_FLAG, NULL, "Only show what would change (reset-offsets; the default).", NULL, 0},
    {"execute", OPT_FLAG, NULL, "Apply the change (reset-offsets).", NULL, 0},
    {"export", OPT_FLAG, NULL, "Print the reset plan as CSV (reset-offsets).", NULL, 0},
    {"from-file", OPT_ARG, "String: path to CSV file", "Reset to the offsets listed in a CSV file.", NULL, 0},
    {"group", OPT_ARG, "String: consumer group", "The group to act on.", NULL, 1},
    {"list", OPT_FLAG, NULL, "List the consumer groups.", NULL, 0},
    {"members", OPT_FLAG, NULL, "With --describe: show the group's members.", NULL, 0},
    {"offsets", OPT_FLAG, NULL, "With --describe: show partitions with offsets and lag (the default).", NULL, 0},
    {"reset-offsets", OPT_FLAG, NULL,
     "Reset the committed offsets of inactive groups. Plan with --dry-run (the default) or apply "
     "with --execute; pick one of --to-datetime, --by-duration, --to-earliest, --to-latest, "
     "--shift-by, --from-file, --to-current, --to-offset, and a scope: --all-topics or --topic.",
     NULL, 0},
    {"shift-by", OPT_ARG, "Long: number-of-offsets", "Move the committed offsets by n (may be negative).", NULL, 0},
    {"state", OPT_ARG_OPTIONAL, "String", "With --describe: show the group's state. With --list: show "
     "states, optionally only these (e.g. stable,empty).", NULL, 0},
    {"timeout", OPT_ARG, "Long: timeout (ms)", "How long to wait for answers.", "5000", 0},
    {"to-current", OPT_FLAG, NULL, "Reset to the current committed offsets.", NULL, 0},
    {"to-datetime", OPT_ARG, "String: datetime", "Reset to the offsets at a time ('YYYY-MM-DDTHH:mm:SS.sss').", NULL, 0},
    {"to-earliest", OPT_FLAG, NULL, "Reset to the earliest offsets.", NULL, 0},
    {"to-latest", OPT_FLAG, NULL, "Reset to the latest offsets.", NULL, 0},
    {"to-offset", OPT_ARG, "Long: offset", "Reset to this offset.", NULL, 0},
    {"topic", OPT_ARG, "String: topic",
     "A topic to act on; for reset-offsets partitions may follow: 'topic1:0,1,2'. May be repeated.", NULL, 1},
    {"verbose", OPT_FLAG, NULL, "With --describe: more detail (e.g. members' assignments).", NULL, 0},
};

/* A group's coordinator, as FindCoordinator named it. */
typedef struct coord_ref {
    char *group;
    int32_t id;
    char host[256];
    int32_t port;
} coord_ref;

typedef struct cg_ctx {
    opts *o;
    kclient c;          /* the bootstrap connection; c.err holds the last failure */
    karena a;
    const char *bootstrap;
    int connected;
    admin_pool pool;    /* connections to coordinators and leaders */
    coord_ref *coords;  /* coordinators found so far */
    int ncoords, capcoords;
    int16_t last_error; /* protocol error of the last failed lookup, 0 if none */
} cg_ctx;

/* A topic partition with values the views need. */
typedef struct tpv {
    const char *topic;
    int32_t partition;
    int64_t committed;  /* -1 = none */
    int64_t value;      /* log end / new offset */
    int has_value;
} tpv;

static void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void print_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("\nError: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static int fail_exec(cg_ctx *x) {
    print_error("Executing consumer group command failed due to %s", x->c.err);
    return 1;
}

/* ---- calls ---- */

/* One request on connection cl (the bootstrap one or a pooled one); a
 * failure's message ends up in x->c.err. */
#define CG_CALL_ON(x, cl, KEY, ReqT, reqp, RespT, respp, vout)                                 \
    ({                                                                                         \
        int rc_ = -1;                                                                          \
        kclient *cl_ = (cl);                                                                   \
        int16_t v_ = kclient_pick_version(cl_, KEY);                                           \
        if (v_ < 0) {                                                                          \
            snprintf((x)->c.err, sizeof (x)->c.err,                                            \
                     "org.apache.kafka.common.errors.UnsupportedVersionException: "           \
                     "The broker does not support %s", #ReqT);                                 \
        } else {                                                                               \
            kwriter w_;                                                                        \
            kw_init(&w_);                                                                      \
            ReqT##_encode(reqp, &w_, v_);                                                      \
            kreader r_;                                                                        \
            if (!w_.err && kclient_call(cl_, KEY, v_, &w_, &(x)->a, &r_) == 0) {               \
                if (RespT##_decode(respp, &r_, v_, &(x)->a) == 0) rc_ = 0;                     \
                else snprintf((x)->c.err, sizeof (x)->c.err, "could not parse %s", #RespT);   \
            } else if (cl_ != &(x)->c) {                                                       \
                snprintf((x)->c.err, sizeof (x)->c.err, "%s", cl_->err);                       \
            }                                                                                  \
            kw_free(&w_);                                                                      \
            *(vout) = v_;                                                                      \
        }                                                                                      \
        rc_;                                                                                   \
    })
#define CG_CALL(x, KEY, ReqT, reqp, RespT, respp, vout) CG_CALL_ON(x, &(x)->c, KEY, ReqT, reqp, RespT, respp, vout)

static int ensure_connected(cg_ctx *x) {
    if (x->connected) return 0;
    if (kclient_connect(&x->c, x->bootstrap) != 0) return -1;
    x->connected = 1;
    return 0;
}

static char *kdup(cg_ctx *x, kstr s) { return kstr_dup(s, &x->a); }

/* ---- ListGroups ---- */

typedef struct listed {
    char *group;
    char *state;
} listed;

/* Consumer groups (protocol type "consumer" or ""), optionally by state,
 * from every broker (AdminClient.listConsumerGroups: Metadata for the broker
 * list, then ListGroups to each), merged by group id and handed over in the
 * iteration order of the admin client's java.util.HashMap. */
static int list_groups(cg_ctx *x, const char *const *states, int nstates, listed **out, int *n) {
    if (ensure_connected(x) != 0) return -1;
    MetadataResponse md;
    static const char *const no_topics[1] = {NULL};
    if (kclient_metadata(&x->c, no_topics, 0, &md, NULL, &x->a) != 0) return -1;
    ListGroupsRequest req;
    ListGroupsRequest_init(&req);
    kstr *sf = karena_calloc(&x->a, (size_t)nstates + 1, sizeof *sf);
    for (int i = 0; i < nstates; i++) sf[i] = kstr_from(states[i]);
    req.states_filter = sf;
    req.states_filter_count = nstates;
    listed *all = NULL;
    int nall = 0, cap = 0;
    for (int32_t b = 0; b < md.brokers_count; b++) {
        kclient *cl = admin_pool_node(&x->pool, &md, md.brokers[b].node_id);
        if (!cl) return -1;
        ListGroupsResponse resp;
        int16_t v;
        if (CG_CALL_ON(x, cl, KAPI_LIST_GROUPS, ListGroupsRequest, &req, ListGroupsResponse, &resp, &v) != 0)
            return -1;
        if (resp.error_code) {
            snprintf(x->c.err, sizeof x->c.err, "%s: %s", java_error_class(resp.error_code),
                     kerr_message(resp.error_code));
            return -1;
        }
        if (nall + resp.groups_count + 1 > cap) {
            cap = (nall + resp.groups_count) * 2 + 16;
            listed *na = karena_calloc(&x->a, (size_t)cap, sizeof *na);
            if (!na) {
                snprintf(x->c.err, sizeof x->c.err, "Out of memory");
                return -1;
            }
            if (all) memcpy(na, all, (size_t)nall * sizeof *na);
            all = na;
        }
        for (int i = 0; i < resp.groups_count; i++) {
            ListGroupsResponse_ListedGroup *g = &resp.groups[i];
            if (g->protocol_type.len > 0 && !kstr_eq_c(g->protocol_type, "consumer")) continue;
            int k = 0;
            while (k < nall && !kstr_eq_c(g->group_id, all[k].group)) k++;
            if (k == nall) all[nall++].group = kdup(x, g->group_id);
            all[k].state = kdup(x, g->group_state); /* HashMap.put: the last answer wins */
        }
    }
    *out = karena_calloc(&x->a, (size_t)nall + 1, sizeof **out);
    *n = nall;
    if (nall == 0) return 0;
    int32_t *h = karena_calloc(&x->a, (size_t)nall, sizeof *h);
    size_t *ord = karena_calloc(&x->a, (size_t)nall, sizeof *ord);
    for (int i = 0; i < nall; i++) h[i] = java_string_hash(all[i].group, strlen(all[i].group));
    if (java_hashmap_order(h, (size_t)nall, java_hashmap_capacity((size_t)nall, 0), ord) != 0)
        for (int i = 0; i < nall; i++) ord[i] = (size_t)i;
    for (int i = 0; i < nall; i++) (*out)[i] = all[ord[i]];
    return 0;
}

/* ---- DescribeGroups + coordinator ---- */

typedef struct member {
    char *member_id, *instance_id, *client_id, *host;
    tpv *parts;         /* assignment, in Kafka's iteration order */
    int nparts;
} member;

typedef struct described {
    char *group;
    int16_t error;
    char *state;
    char *protocol_type;
    char *strategy;
    member *members;
    int nmembers;
    int32_t coord_id;
    char coord_host[256];
    int32_t coord_port;
} described;

/* FindCoordinator for group on the bootstrap node (remembered for the run);
 * fills d's coordinator fields. On a protocol error x->last_error is set. */
static int find_coordinator(cg_ctx *x, const char *group, described *d) {
    x->last_error = 0;
    for (int i = 0; i < x->ncoords; i++)
        if (strcmp(x->coords[i].group, group) == 0) {
            d->coord_id = x->coords[i].id;
            snprintf(d->coord_host, sizeof d->coord_host, "%s", x->coords[i].host);
            d->coord_port = x->coords[i].port;
            return 0;
        }
    if (ensure_connected(x) != 0) return -1;
    FindCoordinatorRequest req;
    FindCoordinatorRequest_init(&req);
    kstr key = kstr_from(group);
    req.key = key;
    req.key_type = 0;
    req.coordinator_keys = &key;
    req.coordinator_keys_count = 1;
    FindCoordinatorResponse resp;
    int16_t v;
    if (CG_CALL(x, KAPI_FIND_COORDINATOR, FindCoordinatorRequest, &req, FindCoordinatorResponse, &resp, &v) != 0)
        return -1;
    int16_t e;
    kstr host;
    if (v >= 4 && resp.coordinators_count > 0) {
        e = resp.coordinators[0].error_code;
        d->coord_id = resp.coordinators[0].node_id;
        host = resp.coordinators[0].host;
        d->coord_port = resp.coordinators[0].port;
    } else {
        e = resp.error_code;
        d->coord_id = resp.node_id;
        host = resp.host;
        d->coord_port = resp.port;
    }
    if (e) {
        x->last_error = e;
        snprintf(x->c.err, sizeof x->c.err, "%s: %s", java_error_class(e), kerr_message(e));
        return -1;
    }
    snprintf(d->coord_host, sizeof d->coord_host, "%.*s", host.len > 0 ? host.len : 0, host.p ? host.p : "");
    if (x->ncoords == x->capcoords) {
        int nc = x->capcoords ? x->capcoords * 2 : 8;
        coord_ref *na = karena_calloc(&x->a, (size_t)nc, sizeof *na);
        if (!na) return 0;
        if (x->coords) memcpy(na, x->coords, (size_t)x->ncoords * sizeof *na);
        x->coords = na;
        x->capcoords = nc;
    }
    coord_ref *cr = &x->coords[x->ncoords++];
    cr->group = karena_strndup(&x->a, group, strlen(group));
    cr->id = d->coord_id;
    snprintf(cr->host, sizeof cr->host, "%s", d->coord_host);
    cr->port = d->coord_port;
    return 0;
}

/* A connection to group's coordinator, or NULL (x->c.err set). */
static kclient *coordinator(cg_ctx *x, const char *group) {
    described d;
    memset(&d, 0, sizeof d);
    if (find_coordinator(x, group, &d) != 0) return NULL;
    return admin_pool_get(&x->pool, d.coord_host, d.coord_port);
}

/* ConsumerProtocolAssignment (read as v0: topics with partitions). */
static void parse_assignment(cg_ctx *x, kbytes b, member *m) {
    m->parts = NULL;
    m->nparts = 0;
    if (b.len <= 0) return;
    kreader r;
    kr_init(&r, b.p, (size_t)b.len);
    (void)kr_i16(&r);
    int32_t nt = kr_array_len(&r, false, false, 6);
    if (r.err) return;
    int cap = 0;
    tpv *v = NULL;
    for (int32_t i = 0; i < nt; i++) {
        kstr t = kr_string(&r, false, false);
        int32_t np = kr_array_len(&r, false, false, 4);
        if (r.err) return;
        for (int32_t k = 0; k < np; k++) {
            int32_t p = kr_i32(&r);
            if (r.err) return;
            if (m->nparts == cap) {
                cap = cap ? cap * 2 : 16;
                tpv *nv = karena_calloc(&x->a, (size_t)cap, sizeof *nv);
                if (!nv) return;
                if (v) memcpy(nv, v, (size_t)m->nparts * sizeof *nv);
                v = nv;
                m->parts = v;
            }
            v[m->nparts].topic = kdup(x, t);
            v[m->nparts].partition = p;
            v[m->nparts].committed = -1;
            m->nparts++;
        }
    }
}

/* Reorder like Java's `new HashSet<>(list)` iteration (MemberAssignment). */
static void java_set_order(cg_ctx *x, tpv *v, int n) {
    if (n < 2) return;
    int32_t *h = karena_calloc(&x->a, (size_t)n, sizeof *h);
    size_t *ord = karena_calloc(&x->a, (size_t)n, sizeof *ord);
    tpv *copy = karena_calloc(&x->a, (size_t)n, sizeof *copy);
    if (!h || !ord || !copy) return;
    for (int i = 0; i < n; i++) h[i] = java_topic_partition_hash(v[i].topic, v[i].partition);
    size_t init = (size_t)((float)n / 0.75f) + 1;
    if (init < 16) init = 16;
    if (java_hashmap_order(h, (size_t)n, java_hashmap_capacity((size_t)n, init), ord) != 0) return;
    memcpy(copy, v, (size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = copy[ord[i]];
}

static int describe_group_once(cg_ctx *x, const char *group, described *d) {
    memset(d, 0, sizeof *d);
    d->group = (char *)group;
    if (find_coordinator(x, group, d) != 0) return -1;
    kclient *cl = admin_pool_get(&x->pool, d->coord_host, d->coord_port);
    if (!cl) return -1;
    DescribeGroupsRequest req;
    DescribeGroupsRequest_init(&req);
    kstr g = kstr_from(group);
    req.groups = &g;
    req.groups_count = 1;
    DescribeGroupsResponse resp;
    int16_t v;
    if (CG_CALL_ON(x, cl, KAPI_DESCRIBE_GROUPS, DescribeGroupsRequest, &req, DescribeGroupsResponse, &resp, &v) != 0)
        return -1;
    if (resp.groups_count < 1) {
        snprintf(x->c.err, sizeof x->c.err, "no answer for group %s", group);
        return -1;
    }
    DescribeGroupsResponse_DescribedGroup *dg = &resp.groups[0];
    if (dg->error_code) {
        x->last_error = dg->error_code;
        snprintf(x->c.err, sizeof x->c.err, "%s: %s", java_error_class(dg->error_code),
                 kerr_message(dg->error_code));
        return -1;
    }
    d->state = kdup(x, dg->group_state);
    d->protocol_type = kdup(x, dg->protocol_type);
    d->strategy = kdup(x, dg->protocol_data);
    if (*d->protocol_type && strcmp(d->protocol_type, "consumer") != 0) {
        snprintf(x->c.err, sizeof x->c.err,
                 "java.lang.IllegalArgumentException: Group %s is not a consumer group.", group);
        return -1;
    }
    d->nmembers = dg->members_count > 0 ? dg->members_count : 0;
    d->members = karena_calloc(&x->a, (size_t)d->nmembers + 1, sizeof *d->members);
    for (int i = 0; i < d->nmembers; i++) {
        DescribeGroupsResponse_DescribedGroupMember *dm = &dg->members[i];
        member *m = &d->members[i];
        m->member_id = kdup(x, dm->member_id);
        m->instance_id = dm->group_instance_id.len >= 0 ? kdup(x, dm->group_instance_id) : NULL;
        m->client_id = kdup(x, dm->client_id);
        m->host = kdup(x, dm->client_host);
        parse_assignment(x, dm->member_assignment, m);
        java_set_order(x, m->parts, m->nparts);
    }
    return 0;
}

/* ---- committed offsets (OffsetFetch, all partitions) ---- */

static int fetch_committed_once(cg_ctx *x, const char *group, tpv **out, int *n) {
    kclient *cl = coordinator(x, group);
    if (!cl) return -1;
    OffsetFetchRequest req;
    OffsetFetchRequest_init(&req);
    OffsetFetchRequest_OffsetFetchRequestGroup g;
    OffsetFetchRequest_OffsetFetchRequestGroup_init(&g);
    g.group_id = kstr_from(group);
    g.topics = NULL;
    g.topics_count = -1;
    req.group_id = kstr_from(group);
    req.topics_count = -1;
    req.groups = &g;
    req.groups_count = 1;
    OffsetFetchResponse resp;
    int16_t v;
    if (CG_CALL_ON(x, cl, KAPI_OFFSET_FETCH, OffsetFetchRequest, &req, OffsetFetchResponse, &resp, &v) != 0)
        return -1;
    int16_t e = v >= 8 ? (resp.groups_count > 0 ? resp.groups[0].error_code : 0) : resp.error_code;
    if (e) {
        x->last_error = e;
        snprintf(x->c.err, sizeof x->c.err, "%s: %s", java_error_class(e), kerr_message(e));
        return -1;
    }
    int total = 0;
    if (v >= 8) {
        for (int i = 0; resp.groups_count > 0 && i < resp.groups[0].topics_count; i++)
            total += resp.groups[0].topics[i].partitions_count;
    } else {
        for (int i = 0; i < resp.topics_count; i++) total += resp.topics[i].partitions_count;
    }
    *out = karena_calloc(&x->a, (size_t)total + 1, sizeof **out);
    *n = 0;
    if (v >= 8) {
        for (int i = 0; resp.groups_count > 0 && i < resp.groups[0].topics_count; i++) {
            OffsetFetchResponse_OffsetFetchResponseTopics *t = &resp.groups[0].topics[i];
            for (int k = 0; k < t->partitions_count; k++) {
                if (t->partitions[k].error_code || t->partitions[k].committed_offset < 0) continue;
                (*out)[*n] = (tpv){kdup(x, t->name), t->partitions[k].partition_index,
                                   t->partitions[k].committed_offset, 0, 0};
                (*n)++;
            }
        }
    } else {
        for (int i = 0; i < resp.topics_count; i++) {
            OffsetFetchResponse_OffsetFetchResponseTopic *t = &resp.topics[i];
            for (int k = 0; k < t->partitions_count; k++) {
                if (t->partitions[k].error_code || t->partitions[k].committed_offset < 0) continue;
                (*out)[*n] = (tpv){kdup(x, t->name), t->partitions[k].partition_index,
                                   t->partitions[k].committed_offset, 0, 0};
                (*n)++;
            }
        }
    }
    /* the admin client hands these over as a java.util.HashMap */
    java_set_order(x, *out, *n);
    return 0;
}

/* Coordinator errors the admin client retries (after a new FindCoordinator
 * for NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE) until its timeout: a
 * coordinator that is loading, moving or not elected yet in a cluster. */
static int retriable_coordinator_error(int16_t e) {
    return e == KERR_COORDINATOR_LOAD_IN_PROGRESS || e == KERR_COORDINATOR_NOT_AVAILABLE || e == KERR_NOT_COORDINATOR;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether to try a group call again: a retriable coordinator error before
 * the deadline; the group's coordinator is looked up again. */
static int retry_group_call(cg_ctx *x, const char *group, int64_t deadline) {
    if (!retriable_coordinator_error(x->last_error) || mono_ms() >= deadline) return 0;
    for (int i = 0; i < x->ncoords; i++)
        if (strcmp(x->coords[i].group, group) == 0) x->coords[i] = x->coords[--x->ncoords];
    struct timespec pause = {0, 100 * 1000000L};
    nanosleep(&pause, NULL);
    return 1;
}

static int describe_group(cg_ctx *x, const char *group, described *d) {
    int64_t deadline = mono_ms() + x->c.request_timeout_ms;
    for (;;) {
        x->last_error = 0;
        if (describe_group_once(x, group, d) == 0) return 0;
        if (!retry_group_call(x, group, deadline)) return -1;
    }
}

static int fetch_committed(cg_ctx *x, const char *group, tpv **out, int *n) {
    int64_t deadline = mono_ms() + x->c.request_timeout_ms;
    for (;;) {
        x->last_error = 0;
        if (fetch_committed_once(x, group, out, n) == 0) return 0;
        if (!retry_group_call(x, group, deadline)) return -1;
    }
}

static int64_t committed_of(const tpv *c, int nc, const char *topic, int32_t p) {
    for (int i = 0; i < nc; i++)
        if (c[i].partition == p && strcmp(c[i].topic, topic) == 0) return c[i].committed;
    return -1;
}

/* ---- ListOffsets ---- */

/* Fills v[i].value for spec (-1 latest, -2 earliest, or a timestamp); a
 * partition with no answer keeps has_value 0. As the admin client's
 * PartitionLeaderStrategy: Metadata for the topics, then one ListOffsets to
 * each leader for the partitions it leads. */
static int list_offsets(cg_ctx *x, tpv *v, int n, int64_t spec) {
    if (n == 0) return 0;
    if (ensure_connected(x) != 0) return -1;
    const char **names = karena_calloc(&x->a, (size_t)n, sizeof *names);
    int32_t *leader = karena_calloc(&x->a, (size_t)n, sizeof *leader);
    if (!names || !leader) {
        snprintf(x->c.err, sizeof x->c.err, "Out of memory");
        return -1;
    }
    int nnames = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < nnames && !seen; k++) seen = strcmp(names[k], v[i].topic) == 0;
        if (!seen) names[nnames++] = v[i].topic;
        v[i].has_value = 0;
        leader[i] = -1;
    }
    MetadataResponse md;
    if (kclient_metadata(&x->c, names, nnames, &md, NULL, &x->a) != 0) return -1;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < md.topics_count; t++) {
            if (md.topics[t].error_code || !kstr_eq_c(md.topics[t].name, v[i].topic)) continue;
            for (int k = 0; k < md.topics[t].partitions_count; k++)
                if (md.topics[t].partitions[k].partition_index == v[i].partition &&
                    md.topics[t].partitions[k].error_code == 0)
                    leader[i] = md.topics[t].partitions[k].leader_id;
        }
    for (int first = 0; first < n; first++) {
        int32_t node = leader[first];
        if (node < 0) continue;
        ListOffsetsRequest req;
        ListOffsetsRequest_init(&req);
        req.replica_id = -1;
        req.topics = karena_calloc(&x->a, (size_t)n, sizeof *req.topics);
        int nt = 0;
        for (int i = first; i < n; i++) {
            if (leader[i] != node) continue;
            leader[i] = -1; /* asked */
            int t = 0;
            while (t < nt && !kstr_eq_c(req.topics[t].name, v[i].topic)) t++;
            if (t == nt) {
                ListOffsetsRequest_ListOffsetsTopic_init(&req.topics[nt]);
                req.topics[nt].name = kstr_from(v[i].topic);
                req.topics[nt].partitions = karena_calloc(&x->a, (size_t)n, sizeof *req.topics[nt].partitions);
                req.topics[nt].partitions_count = 0;
                nt++;
            }
            ListOffsetsRequest_ListOffsetsPartition *p = &req.topics[t].partitions[req.topics[t].partitions_count++];
            ListOffsetsRequest_ListOffsetsPartition_init(p);
            p->partition_index = v[i].partition;
            p->current_leader_epoch = -1;
            p->timestamp = spec;
            p->max_num_offsets = 1;
        }
        req.topics_count = nt;
        kclient *cl = admin_pool_node(&x->pool, &md, node);
        if (!cl) return -1;
        ListOffsetsResponse resp;
        int16_t ver;
        if (CG_CALL_ON(x, cl, KAPI_LIST_OFFSETS, ListOffsetsRequest, &req, ListOffsetsResponse, &resp, &ver) != 0)
            return -1;
        for (int t = 0; t < resp.topics_count; t++)
            for (int k = 0; k < resp.topics[t].partitions_count; k++) {
                ListOffsetsResponse_ListOffsetsPartitionResponse *pr = &resp.topics[t].partitions[k];
                if (pr->error_code) continue;
                int64_t off =
                    ver == 0 ? (pr->old_style_offsets_count > 0 ? pr->old_style_offsets[0] : -1) : pr->offset;
                for (int i = 0; i < n; i++)
                    if (v[i].partition == pr->partition_index && kstr_eq_c(resp.topics[t].name, v[i].topic)) {
                        v[i].value = off;
                        v[i].has_value = 1;
                    }
            }
    }
    return 0;
}

/* ---- describe ---- */

/* Kafka's shouldPrintMemberState. */
static int should_print(const char *group, const char *state, int nrows) {
    if (nrows < 0) {
        print_error("The consumer group '%s' does not exist.", group);
        return 0;
    }
    fflush(stdout); /* keep stdout and stderr lines in order, as Java's autoflushed streams */
    if (strcmp(state, "Dead") == 0) print_error("Consumer group '%s' does not exist.", group);
    else if (strcmp(state, "Empty") == 0) fprintf(stderr, "\nConsumer group '%s' has no active members.\n", group);
    else if (strcmp(state, "PreparingRebalance") == 0 || strcmp(state, "CompletingRebalance") == 0)
        fprintf(stderr, "\nWarning: Consumer group '%s' is rebalancing.\n", group);
    fflush(stderr);
    return strcmp(state, "Dead") != 0 && nrows > 0;
}

typedef struct offrow {
    const char *topic;   /* NULL = "-" */
    int32_t partition;
    int64_t offset, leo; /* -1 = unknown */
    const char *consumer, *host, *client;
} offrow;

static int cmp_partition(const void *a, const void *b) {
    const tpv *x = a, *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* Stable sort by partition (Scala's sortBy keeps ties in order). */
static void sort_by_partition(tpv *v, int n) {
    for (int i = 1; i < n; i++) {
        tpv t = v[i];
        int j = i;
        while (j > 0 && cmp_partition(&v[j - 1], &t) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = t;
    }
}

static int add_rows(cg_ctx *x, const char *group, tpv *parts, int n, const tpv *committed, int nc,
                    const char *consumer, const char *host, const char *client, offrow *rows, int *nrows) {
    (void)group;
    if (n == 0) {
        rows[(*nrows)++] = (offrow){NULL, -1, -1, -1, consumer, host, client};
        return 0;
    }
    sort_by_partition(parts, n);
    if (list_offsets(x, parts, n, -1) != 0) return -1;
    for (int i = 0; i < n; i++)
        rows[(*nrows)++] = (offrow){parts[i].topic, parts[i].partition,
                                    committed_of(committed, nc, parts[i].topic, parts[i].partition),
                                    parts[i].has_value ? parts[i].value : -1, consumer, host, client};
    return 0;
}

static void fmt_num(char *buf, size_t n, int64_t v) {
    if (v < 0) snprintf(buf, n, MISSING);
    else snprintf(buf, n, "%" PRId64, v);
}

static int max_i(int a, int b) { return a > b ? a : b; }

static int describe_offsets(cg_ctx *x, described *d) {
    tpv *committed;
    int nc;
    if (fetch_committed(x, d->group, &committed, &nc) != 0) return -1;
    int total = nc + 1;
    for (int i = 0; i < d->nmembers; i++) total += d->members[i].nparts + 1;
    offrow *rows = karena_calloc(&x->a, (size_t)total, sizeof *rows);
    int nrows = 0;
    /* members with partitions, most partitions first (stable) */
    int *order = karena_calloc(&x->a, (size_t)d->nmembers + 1, sizeof *order);
    int no = 0;
    for (int i = 0; i < d->nmembers; i++)
        if (d->members[i].nparts > 0) order[no++] = i;
    for (int i = 1; i < no; i++) {
        int t = order[i], j = i;
        while (j > 0 && d->members[order[j - 1]].nparts < d->members[t].nparts) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = t;
    }
    for (int i = 0; i < no; i++) {
        member *m = &d->members[order[i]];
        if (add_rows(x, d->group, m->parts, m->nparts, committed, nc, m->member_id, m->host, m->client_id, rows,
                     &nrows) != 0)
            return -1;
    }
    /* committed partitions nobody owns */
    tpv *un = karena_calloc(&x->a, (size_t)nc + 1, sizeof *un);
    int nun = 0;
    for (int i = 0; i < nc; i++) {
        int owned = 0;
        for (int k = 0; k < no && !owned; k++) {
            member *m = &d->members[order[k]];
            for (int j = 0; j < m->nparts && !owned; j++)
                owned = m->parts[j].partition == committed[i].partition && strcmp(m->parts[j].topic, committed[i].topic) == 0;
        }
        if (!owned) un[nun++] = committed[i];
    }
    if (nun && add_rows(x, d->group, un, nun, committed, nc, MISSING, MISSING, MISSING, rows, &nrows) != 0) return -1;

    if (!should_print(d->group, d->state, nrows)) return 0;
    int wg = 15, wt = 15, wc = 15, wh = 15;
    for (int i = 0; i < nrows; i++) {
        wg = max_i(wg, (int)strlen(d->group));
        wt = max_i(wt, (int)strlen(rows[i].topic ? rows[i].topic : MISSING));
        wc = max_i(wc, (int)strlen(rows[i].consumer));
        wh = max_i(wh, (int)strlen(rows[i].host));
    }
    printf("\n%-*s %-*s %-10s %-15s %-15s %-15s %-*s %-*s %s\n", wg, "GROUP", wt, "TOPIC", "PARTITION",
           "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", wc, "CONSUMER-ID", wh, "HOST", "CLIENT-ID");
    for (int i = 0; i < nrows; i++) {
        offrow *r = &rows[i];
        char part[16], cur[24], leo[24], lag[24];
        if (r->topic) snprintf(part, sizeof part, "%d", r->partition);
        else snprintf(part, sizeof part, MISSING);
        fmt_num(cur, sizeof cur, r->offset);
        fmt_num(leo, sizeof leo, r->leo);
        if (r->offset >= 0 && r->leo >= 0) snprintf(lag, sizeof lag, "%" PRId64, r->leo - r->offset);
        else snprintf(lag, sizeof lag, MISSING);
        printf("%-*s %-*s %-10s %-15s %-15s %-15s %-*s %-*s %s\n", wg, d->group, wt, r->topic ? r->topic : MISSING,
               part, cur, leo, lag, wc, r->consumer, wh, r->host, r->client);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void describe_members(cg_ctx *x, described *d, int verbose) {
    if (!should_print(d->group, d->state, d->nmembers)) return;
    int wg = 15, wc = 15, wi = 17, wh = 15, wcl = 15, with_instance = 0;
    for (int i = 0; i < d->nmembers; i++) {
        member *m = &d->members[i];
        wg = max_i(wg, (int)strlen(d->group));
        wc = max_i(wc, (int)strlen(m->member_id));
        wi = max_i(wi, m->instance_id ? (int)strlen(m->instance_id) : 0);
        wh = max_i(wh, (int)strlen(m->host));
        wcl = max_i(wcl, (int)strlen(m->client_id));
        with_instance |= m->instance_id && *m->instance_id;
    }
    if (with_instance)
        printf("\n%-*s %-*s %-*s %-*s %-*s %-15s ", wg, "GROUP", wc, "CONSUMER-ID", wi, "GROUP-INSTANCE-ID", wh, "HOST",
               wcl, "CLIENT-ID", "#PARTITIONS");
    else
        printf("\n%-*s %-*s %-*s %-*s %-15s ", wg, "GROUP", wc, "CONSUMER-ID", wh, "HOST", wcl, "CLIENT-ID",
               "#PARTITIONS");
    if (verbose) printf("ASSIGNMENT");
    printf("\n");
    for (int i = 0; i < d->nmembers; i++) {
        member *m = &d->members[i];
        char np[16];
        snprintf(np, sizeof np, "%d", m->nparts);
        if (with_instance)
            printf("%-*s %-*s %-*s %-*s %-*s %-15s ", wg, d->group, wc, m->member_id, wi,
                   m->instance_id ? m->instance_id : "", wh, m->host, wcl, m->client_id, np);
        else
            printf("%-*s %-*s %-*s %-*s %-15s ", wg, d->group, wc, m->member_id, wh, m->host, wcl, m->client_id, np);
        if (verbose) {
            if (m->nparts == 0) {
                printf(MISSING);
            } else {
                /* "topic(p1,p2)" per topic, partitions ascending, topics' strings sorted */
                char **items = karena_calloc(&x->a, (size_t)m->nparts, sizeof *items);
                int ni = 0;
                for (int k = 0; k < m->nparts; k++) {
                    int seen = 0;
                    for (int j = 0; j < k && !seen; j++) seen = strcmp(m->parts[j].topic, m->parts[k].topic) == 0;
                    if (seen) continue;
                    int32_t *ps = karena_calloc(&x->a, (size_t)m->nparts, sizeof *ps);
                    int nps = 0;
                    for (int j = 0; j < m->nparts; j++)
                        if (strcmp(m->parts[j].topic, m->parts[k].topic) == 0) ps[nps++] = m->parts[j].partition;
                    for (int a = 1; a < nps; a++)
                        for (int b = a; b > 0 && ps[b - 1] > ps[b]; b--) {
                            int32_t t = ps[b];
                            ps[b] = ps[b - 1];
                            ps[b - 1] = t;
                        }
                    size_t cap = strlen(m->parts[k].topic) + 2 + (size_t)nps * 12;
                    char *s = karena_alloc(&x->a, cap + 1);
                    size_t o = (size_t)snprintf(s, cap, "%s(", m->parts[k].topic);
                    for (int j = 0; j < nps; j++) o += (size_t)snprintf(s + o, cap - o, "%s%d", j ? "," : "", ps[j]);
                    snprintf(s + o, cap - o, ")");
                    items[ni++] = s;
                }
                qsort(items, (size_t)ni, sizeof *items, cmp_str);
                for (int k = 0; k < ni; k++) printf("%s%s", k ? ", " : "", items[k]);
            }
        }
        printf("\n");
    }
}

static void describe_state(described *d) {
    if (!should_print(d->group, d->state, 1)) return;
    char coord[320];
    snprintf(coord, sizeof coord, "%s:%d (%d)", d->coord_host, d->coord_port, d->coord_id);
    int w = max_i(25, (int)strlen(coord));
    printf("\n%-*s %-25s %-20s %-15s %s", w, "GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS");
    printf("\n%-*s %-25s %-20s %-15s %d", w, d->group, coord, d->strategy, d->state, d->nmembers);
    printf("\n");
}

/* The groups named by --group (sorted, as Kafka's TreeMap) or all of them. */
static int selected_groups(cg_ctx *x, char ***out, int *n) {
    if (opts_has(x->o, "all-groups")) {
        listed *l;
        int nl;
        if (list_groups(x, NULL, 0, &l, &nl) != 0) return -1;
        *out = karena_calloc(&x->a, (size_t)nl + 1, sizeof **out);
        for (int i = 0; i < nl; i++) (*out)[i] = l[i].group;
        *n = nl;
    } else {
        size_t ng = opts_count(x->o, "group");
        *out = karena_calloc(&x->a, ng + 1, sizeof **out);
        *n = 0;
        for (size_t i = 0; i < ng; i++) {
            const char *g = opts_get_at(x->o, "group", i);
            int dup = 0;
            for (int k = 0; k < *n && !dup; k++) dup = strcmp((*out)[k], g) == 0;
            if (!dup) (*out)[(*n)++] = (char *)g;
        }
    }
    qsort(*out, (size_t)*n, sizeof **out, cmp_str);
    return 0;
}

static int cmd_describe(cg_ctx *x) {
    char **groups;
    int ng;
    if (selected_groups(x, &groups, &ng) != 0) return fail_exec(x);
    described *ds = karena_calloc(&x->a, (size_t)ng + 1, sizeof *ds);
    for (int i = 0; i < ng; i++)
        if (describe_group(x, groups[i], &ds[i]) != 0) return fail_exec(x);
    int members = opts_has(x->o, "members"), state = opts_has(x->o, "state");
    for (int i = 0; i < ng; i++) {
        if (members) describe_members(x, &ds[i], opts_has(x->o, "verbose"));
        else if (state) describe_state(&ds[i]);
        else if (describe_offsets(x, &ds[i]) != 0) return fail_exec(x);
    }
    return 0;
}

/* ---- list ---- */

static int cmd_list(cg_ctx *x) {
    if (!opts_has(x->o, "state")) {
        listed *l;
        int n;
        if (list_groups(x, NULL, 0, &l, &n) != 0) return fail_exec(x);
        for (int i = 0; i < n; i++) printf("%s\n", l[i].group);
        return 0;
    }
    const char *val = opts_get(x->o, "state", NULL);
    const char *names[5];
    int nstates = 0;
    static const char *const known[] = {"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty"};
    if (val && *val) {
        char *copy = karena_strndup(&x->a, val, strlen(val));
        char *save = NULL;
        for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
            while (isspace((unsigned char)*s)) s++;
            char *e = s + strlen(s);
            while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
            int found = -1;
            for (int k = 0; k < 5; k++)
                if (strcasecmp(s, known[k]) == 0) found = k;
            if (found < 0) {
                char msg[600];
                snprintf(msg, sizeof msg,
                         "Invalid state list '%s'. Valid states are: PreparingRebalance, CompletingRebalance, "
                         "Stable, Dead, Empty",
                         val);
                return opts_usage_error(x->o, msg);
            }
            int dup = 0;
            for (int k = 0; k < nstates; k++) dup |= strcmp(names[k], known[found]) == 0;
            if (!dup && nstates < 5) names[nstates++] = known[found];
        }
    }
    listed *l;
    int n;
    if (list_groups(x, names, nstates, &l, &n) != 0) return fail_exec(x);
    int w = 15;
    for (int i = 0; i < n; i++) w = max_i(w, (int)strlen(l[i].group));
    printf("%-*s %s\n", w, "GROUP", "STATE");
    for (int i = 0; i < n; i++) printf("%-*s %s\n", w, l[i].group, l[i].state);
    return 0;
}

/* ---- delete ---- */

static int cmd_delete(cg_ctx *x) {
    char **groups;
    int ng;
    if (selected_groups(x, &groups, &ng) != 0) return fail_exec(x);
    if (ensure_connected(x) != 0) return fail_exec(x);
    /* one DeleteGroups per coordinator, for the groups it coordinates */
    int16_t *err = karena_calloc(&x->a, (size_t)ng + 1, sizeof *err);
    described *co = karena_calloc(&x->a, (size_t)ng + 1, sizeof *co);
    int *asked = karena_calloc(&x->a, (size_t)ng + 1, sizeof *asked);
    for (int i = 0; i < ng; i++) {
        err[i] = KERR_UNKNOWN_SERVER_ERROR;
        if (find_coordinator(x, groups[i], &co[i]) != 0) {
            if (!x->last_error) return fail_exec(x);
            err[i] = x->last_error;
            asked[i] = 1;
        }
    }
    for (int first = 0; first < ng; first++) {
        if (asked[first]) continue;
        DeleteGroupsRequest req;
        DeleteGroupsRequest_init(&req);
        req.groups_names = karena_calloc(&x->a, (size_t)ng + 1, sizeof *req.groups_names);
        req.groups_names_count = 0;
        for (int i = first; i < ng; i++)
            if (!asked[i] && co[i].coord_port == co[first].coord_port &&
                strcmp(co[i].coord_host, co[first].coord_host) == 0) {
                req.groups_names[req.groups_names_count++] = kstr_from(groups[i]);
                asked[i] = 1;
            }
        kclient *cl = admin_pool_get(&x->pool, co[first].coord_host, co[first].coord_port);
        if (!cl) return fail_exec(x);
        DeleteGroupsResponse resp;
        int16_t v;
        if (CG_CALL_ON(x, cl, KAPI_DELETE_GROUPS, DeleteGroupsRequest, &req, DeleteGroupsResponse, &resp, &v) != 0)
            return fail_exec(x);
        for (int k = 0; k < resp.results_count; k++)
            for (int i = 0; i < ng; i++)
                if (kstr_eq_c(resp.results[k].group_id, groups[i])) err[i] = resp.results[k].error_code;
    }
    /* results keyed by group in a java.util.HashMap: its iteration order */
    int32_t *h = karena_calloc(&x->a, (size_t)ng + 1, sizeof *h);
    size_t *ord = karena_calloc(&x->a, (size_t)ng + 1, sizeof *ord);
    for (int i = 0; i < ng; i++) h[i] = java_string_hash(groups[i], strlen(groups[i]));
    if (java_hashmap_order(h, (size_t)ng, java_hashmap_capacity((size_t)ng, 0), ord) != 0)
        for (int i = 0; i < ng; i++) ord[i] = (size_t)i;
    int nfail = 0, nok = 0;
    for (int i = 0; i < ng; i++) {
        if (err[i]) nfail++;
        else nok++;
    }
    if (nfail == 0) {
        printf("Deletion of requested consumer groups (");
        for (int i = 0, k = 0; i < ng; i++)
            if (!err[ord[i]]) printf("%s'%s'", k++ ? ", " : "", groups[ord[i]]);
        printf(") was successful.\n");
        return 0;
    }
    print_error("Deletion of some consumer groups failed:");
    for (int i = 0; i < ng; i++) {
        size_t g = ord[i];
        if (err[g]) printf("* Group '%s' could not be deleted due to: %s: %s\n", groups[g], java_error_class(err[g]),
                           kerr_message(err[g]));
    }
    if (nok) {
        printf("\nThese consumer groups were deleted successfully: ");
        for (int i = 0, k = 0; i < ng; i++)
            if (!err[ord[i]]) printf("%s'%s'", k++ ? ", " : "", groups[ord[i]]);
        printf("\n");
    }
    return 0;
}

/* ---- topics and partitions ---- */

/* Partitions of a topic via Metadata; -1 with *err set when unknown. */
static int topic_partitions(cg_ctx *x, const char *topic, int32_t **parts, int *n, int16_t *err) {
    MetadataRequest req;
    MetadataRequest_init(&req);
    MetadataRequest_MetadataRequestTopic t;
    MetadataRequest_MetadataRequestTopic_init(&t);
    t.name = kstr_from(topic);
    req.topics = &t;
    req.topics_count = 1;
    req.allow_auto_topic_creation = false;
    MetadataResponse resp;
    int16_t v;
    *err = 0;
    if (CG_CALL(x, KAPI_METADATA, MetadataRequest, &req, MetadataResponse, &resp, &v) != 0) return -1;
    if (resp.topics_count < 1) {
        *err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return -1;
    }
    if (resp.topics[0].error_code) {
        *err = resp.topics[0].error_code;
        return -1;
    }
    *n = resp.topics[0].partitions_count;
    *parts = karena_calloc(&x->a, (size_t)*n + 1, sizeof **parts);
    for (int i = 0; i < *n; i++) (*parts)[i] = resp.topics[0].partitions[i].partition_index;
    /* ascending, as TopicDescription lists them */
    for (int i = 1; i < *n; i++)
        for (int j = i; j > 0 && (*parts)[j - 1] > (*parts)[j]; j--) {
            int32_t tmp = (*parts)[j];
            (*parts)[j] = (*parts)[j - 1];
            (*parts)[j - 1] = tmp;
        }
    return 0;
}

/* "topic:0,1,2" -> partitions; returns 0, or 1 after printing usage. */
static int parse_topic_with_partitions(cg_ctx *x, const char *arg, tpv *out, int *n) {
    const char *colon = strchr(arg, ':');
    if (!colon || strchr(colon + 1, ':')) {
        char msg[512];
        snprintf(msg, sizeof msg, "Invalid topic arg '%s', expected topic name and partitions", arg);
        return opts_usage_error(x->o, msg);
    }
    char *topic = karena_strndup(&x->a, arg, (size_t)(colon - arg));
    char *list = karena_strndup(&x->a, colon + 1, strlen(colon + 1));
    char *save = NULL;
    for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        int32_t v;
        if (admin_parse_int(p, &v) != 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "Invalid partition '%s' specified in topic arg '%s''", p, arg);
            return opts_usage_error(x->o, msg);
        }
        out[(*n)++] = (tpv){topic, v, -1, 0, 0};
    }
    return 0;
}

/* ---- delete-offsets ---- */

typedef struct pstatus {
    const char *topic;
    int32_t partition; /* -1 = "Not Provided" */
    int16_t error;
    char key[300];
} pstatus;

static int cmp_pstatus(const void *a, const void *b) {
    return strcmp(((const pstatus *)a)->key, ((const pstatus *)b)->key);
}

static int cmd_delete_offsets(cg_ctx *x) {
    const char *group = opts_get(x->o, "group", "");
    if (ensure_connected(x) != 0) return fail_exec(x);
    size_t ntopics = opts_count(x->o, "topic");
    int cap = 64;
    for (size_t i = 0; i < ntopics; i++) cap += (int)strlen(opts_get_at(x->o, "topic", i));
    tpv *parts = karena_calloc(&x->a, (size_t)cap, sizeof *parts);
    pstatus *st = karena_calloc(&x->a, (size_t)cap * 8 + 64, sizeof *st);
    int np = 0, nst = 0;
    for (size_t i = 0; i < ntopics; i++) {
        const char *t = opts_get_at(x->o, "topic", i);
        if (strchr(t, ':')) {
            int rc = parse_topic_with_partitions(x, t, parts, &np);
            if (rc) return rc;
        }
    }
    for (size_t i = 0; i < ntopics; i++) {
        const char *t = opts_get_at(x->o, "topic", i);
        if (strchr(t, ':')) continue;
        int32_t *ps;
        int n;
        int16_t e;
        if (topic_partitions(x, t, &ps, &n, &e) != 0) {
            if (!e) return fail_exec(x);
            st[nst].topic = t;
            st[nst].partition = -1;
            st[nst].error = e;
            nst++;
            continue;
        }
        for (int k = 0; k < n; k++) {
            if (np == cap) {
                tpv *nv = karena_calloc(&x->a, (size_t)cap * 2, sizeof *nv);
                memcpy(nv, parts, (size_t)cap * sizeof *nv);
                parts = nv;
                cap *= 2;
            }
            parts[np++] = (tpv){t, ps[k], -1, 0, 0};
        }
    }
    OffsetDeleteRequest req;
    OffsetDeleteRequest_init(&req);
    req.group_id = kstr_from(group);
    req.topics = karena_calloc(&x->a, (size_t)np + 1, sizeof *req.topics);
    int nt = 0;
    for (int i = 0; i < np; i++) {
        int t = 0;
        while (t < nt && !kstr_eq_c(req.topics[t].name, parts[i].topic)) t++;
        if (t == nt) {
            OffsetDeleteRequest_OffsetDeleteRequestTopic_init(&req.topics[nt]);
            req.topics[nt].name = kstr_from(parts[i].topic);
            req.topics[nt].partitions = karena_calloc(&x->a, (size_t)np, sizeof *req.topics[nt].partitions);
            req.topics[nt].partitions_count = 0;
            nt++;
        }
        req.topics[t].partitions[req.topics[t].partitions_count++].partition_index = parts[i].partition;
    }
    req.topics_count = nt;
    described d;
    memset(&d, 0, sizeof d);
    if (find_coordinator(x, group, &d) != 0) return fail_exec(x);
    kclient *cl = admin_pool_get(&x->pool, d.coord_host, d.coord_port);
    if (!cl) return fail_exec(x);
    OffsetDeleteResponse resp;
    int16_t v;
    if (CG_CALL_ON(x, cl, KAPI_OFFSET_DELETE, OffsetDeleteRequest, &req, OffsetDeleteResponse, &resp, &v) != 0)
        return fail_exec(x);
    int16_t top = resp.error_code;
    int16_t first_part_err = 0;
    for (int i = 0; i < np; i++) {
        int16_t e = top;
        if (!top) {
            e = KERR_UNKNOWN_SERVER_ERROR;
            for (int t = 0; t < resp.topics_count; t++)
                if (kstr_eq_c(resp.topics[t].name, parts[i].topic))
                    for (int k = 0; k < resp.topics[t].partitions_count; k++)
                        if (resp.topics[t].partitions[k].partition_index == parts[i].partition)
                            e = resp.topics[t].partitions[k].error_code;
            if (e && !first_part_err) first_part_err = e;
        }
        st[nst].topic = parts[i].topic;
        st[nst].partition = parts[i].partition;
        st[nst].error = e;
        nst++;
    }
    /* the admin client's overall result fails with the first partition error */
    int16_t overall = top ? top : first_part_err;
    switch (overall) {
    case KERR_NONE: {
        printf("Request succeed for deleting offsets with topic ");
        for (size_t i = 0; i < ntopics; i++) printf("%s%s", i ? ", " : "", opts_get_at(x->o, "topic", i));
        printf(" group %s\n", group);
        break;
    }
    case KERR_INVALID_GROUP_ID: print_error("'%s' is not valid.", group); break;
    case KERR_GROUP_ID_NOT_FOUND: print_error("'%s' does not exist.", group); break;
    case KERR_GROUP_AUTHORIZATION_FAILED: print_error("Access to '%s' is not authorized.", group); break;
    case KERR_NON_EMPTY_GROUP:
        print_error("Deleting offsets of a consumer group '%s' is forbidden if the group is not empty.", group);
        break;
    case KERR_GROUP_SUBSCRIBED_TO_TOPIC:
    case KERR_TOPIC_AUTHORIZATION_FAILED:
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
        print_error("Encounter some partition level error, see the follow-up details:");
        break;
    default: print_error("Encounter some unknown error: %s", kerr_name(overall)); break;
    }
    printf("\n%-30s %-15s %-15s\n", "TOPIC", "PARTITION", "STATUS");
    for (int i = 0; i < nst; i++)
        snprintf(st[i].key, sizeof st[i].key, "%s%d", st[i].topic, st[i].partition);
    qsort(st, (size_t)nst, sizeof *st, cmp_pstatus);
    for (int i = 0; i < nst; i++) {
        char part[16], status[400];
        if (st[i].partition >= 0) snprintf(part, sizeof part, "%d", st[i].partition);
        else snprintf(part, sizeof part, "Not Provided");
        if (st[i].error) snprintf(status, sizeof status, "Error: %s", kerr_message(st[i].error));
        else snprintf(status, sizeof status, "Successful");
        printf("%-30s %-15s %-15s\n", st[i].topic, part, status);
    }
    return 0;
}

/* ---- reset-offsets ---- */

/* Kafka's Utils.getDateTime: yyyy-MM-ddTHH:mm:ss[.SSS] with an optional
 * zone (Z, +hh:mm, +hhmm, +hh); local time when none. */
static int parse_datetime(const char *s, int64_t *out) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0, used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &used) != 6)
        return -1;
    const char *p = s + used;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p) && digits < 3) ms = ms * 10 + (*p++ - '0'), digits++;
        while (digits++ < 3) ms *= 10;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t secs;
    if (*p == 0) {
        tm.tm_isdst = -1;
        secs = (int64_t)mktime(&tm);
    } else {
        int sign = 0, hh = 0, mm = 0;
        if (*p == 'Z' && p[1] == 0) sign = 1;
        else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2])) {
            sign = *p == '-' ? -1 : 1;
            hh = (p[1] - '0') * 10 + (p[2] - '0');
            const char *q = p + 3;
            if (*q == ':') q++;
            if (isdigit((unsigned char)q[0]) && isdigit((unsigned char)q[1])) {
                mm = (q[0] - '0') * 10 + (q[1] - '0');
                q += 2;
            }
            if (*q) return -1;
        } else {
            return -1;
        }
        secs = (int64_t)timegm(&tm) - sign * (hh * 3600 + mm * 60);
    }
    *out = secs * 1000 + ms;
    return 0;
}

/* java.time.Duration.parse for PnDTnHnMn.nS (optional signs). */
static int parse_duration(const char *s, int64_t *ms_out) {
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (*p != 'P' && *p != 'p') return -1;
    p++;
    double total = 0;
    int in_time = 0, any = 0;
    while (*p) {
        if (*p == 'T' || *p == 't') {
            if (in_time) return -1;
            in_time = 1;
            p++;
            continue;
        }
        char *end;
        double v = strtod(p, &end);
        if (end == p) return -1;
        char unit = (char)toupper((unsigned char)*end);
        if (!in_time && unit == 'D') total += v * 86400000.0;
        else if (in_time && unit == 'H') total += v * 3600000.0;
        else if (in_time && unit == 'M') total += v * 60000.0;
        else if (in_time && unit == 'S') total += v * 1000.0;
        else return -1;
        any = 1;
        p = end + 1;
    }
    if (!any) return -1;
    *ms_out = (int64_t)(neg ? -total : total);
    return 0;
}

static int cmp_tpv(const void *a, const void *b) {
    const tpv *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Clamp requested offsets into [log start, log end] (checkOffsetsRange). */
static int clamp_offsets(cg_ctx *x, tpv *v, int n) {
    tpv *lo = karena_calloc(&x->a, (size_t)n + 1, sizeof *lo);
    tpv *hi = karena_calloc(&x->a, (size_t)n + 1, sizeof *hi);
    memcpy(lo, v, (size_t)n * sizeof *v);
    memcpy(hi, v, (size_t)n * sizeof *v);
    if (list_offsets(x, lo, n, -2) != 0 || list_offsets(x, hi, n, -1) != 0) return -1;
    for (int i = 0; i < n; i++) {
        if (hi[i].has_value && v[i].value > hi[i].value) {
            fprintf(stderr, "WARN New offset (%" PRId64 ") is higher than latest offset for topic partition %s-%d. "
                            "Value will be set to %" PRId64 "\n", v[i].value, v[i].topic, v[i].partition, hi[i].value);
            v[i].value = hi[i].value;
        } else if (lo[i].has_value && v[i].value < lo[i].value) {
            fprintf(stderr, "WARN New offset (%" PRId64 ") is lower than earliest offset for topic partition %s-%d. "
                            "Value will be set to %" PRId64 "\n", v[i].value, v[i].topic, v[i].partition, lo[i].value);
            v[i].value = lo[i].value;
        }
    }
    return 0;
}

/* Computes the new offsets into v[i].value. Returns 0, 1 (usage printed),
 * or -1 (call failed). */
static int plan_reset(cg_ctx *x, const char *group, tpv *v, int n) {
    opts *o = x->o;
    if (opts_has(o, "to-offset") || opts_has(o, "shift-by")) {
        int shift = opts_has(o, "shift-by");
        const char *arg = opts_get(o, shift ? "shift-by" : "to-offset", "0");
        char *end;
        long long num = strtoll(arg, &end, 10);
        if (*end || !*arg) {
            char msg[300];
            snprintf(msg, sizeof msg, "Cannot parse argument '%s' of option %s", arg, shift ? "shift-by" : "to-offset");
            return opts_usage_error(o, msg);
        }
        tpv *committed = NULL;
        int nc = 0;
        if (shift && fetch_committed(x, group, &committed, &nc) != 0) return -1;
        for (int i = 0; i < n; i++) {
            if (shift) {
                int64_t cur = committed_of(committed, nc, v[i].topic, v[i].partition);
                if (cur < 0) {
                    char msg[400];
                    snprintf(msg, sizeof msg,
                             "Cannot shift offset for partition %s-%d since there is no current committed offset",
                             v[i].topic, v[i].partition);
                    return opts_usage_error(o, msg);
                }
                v[i].value = cur + num;
            } else {
                v[i].value = num;
            }
            v[i].has_value = 1;
        }
        return clamp_offsets(x, v, n) != 0 ? -1 : 0;
    }
    if (opts_has(o, "to-earliest") || opts_has(o, "to-latest")) {
        int latest = opts_has(o, "to-latest");
        if (list_offsets(x, v, n, latest ? -1 : -2) != 0) return -1;
        for (int i = 0; i < n; i++)
            if (!v[i].has_value) {
                char msg[400];
                snprintf(msg, sizeof msg, "Error getting %s offset of topic partition: %s-%d",
                         latest ? "ending" : "starting", v[i].topic, v[i].partition);
                return opts_usage_error(o, msg);
            }
        return 0;
    }
    if (opts_has(o, "to-datetime") || opts_has(o, "by-duration")) {
        int64_t ts;
        if (opts_has(o, "to-datetime")) {
            const char *s = opts_get(o, "to-datetime", "");
            if (parse_datetime(s, &ts) != 0) {
                print_error("Executing consumer group command failed due to Error parsing timestamp. It does not "
                            "match the expected format 'yyyy-MM-dd'T'HH:mm:ss.SSS'. Received: %s", s);
                return 2;
            }
        } else {
            const char *s = opts_get(o, "by-duration", "");
            int64_t d;
            if (parse_duration(s, &d) != 0) {
                print_error("Executing consumer group command failed due to Text cannot be parsed to a Duration");
                return 2;
            }
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            ts = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - d;
        }
        if (list_offsets(x, v, n, ts) != 0) return -1;
        tpv *fallback = karena_calloc(&x->a, (size_t)n + 1, sizeof *fallback);
        int nf = 0;
        for (int i = 0; i < n; i++)
            if (!v[i].has_value || v[i].value < 0) {
                printf("\nWarn: Partition %d from topic %s is empty. Falling back to latest known offset.\n",
                       v[i].partition, v[i].topic);
                fallback[nf++] = v[i];
            }
        if (nf && list_offsets(x, fallback, nf, -1) != 0) return -1;
        for (int k = 0; k < nf; k++)
            for (int i = 0; i < n; i++)
                if (v[i].partition == fallback[k].partition && strcmp(v[i].topic, fallback[k].topic) == 0) {
                    v[i].value = fallback[k].value;
                    v[i].has_value = fallback[k].has_value;
                }
        for (int i = 0; i < n; i++)
            if (!v[i].has_value) {
                char msg[400];
                snprintf(msg, sizeof msg, "Error getting offset by timestamp of topic partition: %s-%d", v[i].topic,
                         v[i].partition);
                return opts_usage_error(o, msg);
            }
        return 0;
    }
    if (opts_has(o, "to-current")) {
        tpv *committed;
        int nc;
        if (fetch_committed(x, group, &committed, &nc) != 0) return -1;
        tpv *missing = karena_calloc(&x->a, (size_t)n + 1, sizeof *missing);
        int nm = 0;
        for (int i = 0; i < n; i++) {
            int64_t cur = committed_of(committed, nc, v[i].topic, v[i].partition);
            if (cur >= 0) {
                v[i].value = cur;
                v[i].has_value = 1;
            } else {
                missing[nm++] = v[i];
            }
        }
        if (nm && list_offsets(x, missing, nm, -1) != 0) return -1;
        for (int k = 0; k < nm; k++)
            for (int i = 0; i < n; i++)
                if (v[i].partition == missing[k].partition && strcmp(v[i].topic, missing[k].topic) == 0) {
                    if (!missing[k].has_value) {
                        char msg[400];
                        snprintf(msg, sizeof msg, "Error getting ending offset of topic partition: %s-%d",
                                 v[i].topic, v[i].partition);
                        return opts_usage_error(o, msg);
                    }
                    v[i].value = missing[k].value;
                    v[i].has_value = 1;
                }
        return 0;
    }
    return opts_usage_error(o, "Option '[reset-offsets]' requires one of the following scenarios: [[to-offset], "
                               "[shift-by], [to-datetime], [by-duration], [to-earliest], [to-latest], "
                               "[to-current], [from-file]]");
}

/* The partitions --topic / --all-topics name for a group. */
static int reset_scope(cg_ctx *x, const char *group, tpv **out, int *n) {
    opts *o = x->o;
    if (opts_has(o, "all-topics")) {
        if (fetch_committed(x, group, out, n) != 0) return -1;
        return 0;
    }
    if (!opts_has(o, "topic")) return opts_usage_error(o, "One of the reset scopes should be defined: --all-topics, --topic.");
    size_t nt = opts_count(o, "topic");
    int cap = 16;
    for (size_t i = 0; i < nt; i++) cap += (int)strlen(opts_get_at(o, "topic", i));
    tpv *v = karena_calloc(&x->a, (size_t)cap, sizeof *v);
    int nv = 0;
    for (size_t i = 0; i < nt; i++) {
        const char *t = opts_get_at(o, "topic", i);
        if (strchr(t, ':')) {
            int rc = parse_topic_with_partitions(x, t, v, &nv);
            if (rc) return rc;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        const char *t = opts_get_at(o, "topic", i);
        if (strchr(t, ':')) continue;
        int32_t *ps;
        int np;
        int16_t e;
        if (topic_partitions(x, t, &ps, &np, &e) != 0) {
            if (e)
                snprintf(x->c.err, sizeof x->c.err, "%s: %s", java_error_class(e),
                         e == KERR_UNKNOWN_TOPIC_OR_PARTITION ? "This server does not host this topic-partition."
                                                               : kerr_message(e));
            return -1;
        }
        if (nv + np >= cap) {
            int nc = (nv + np) * 2 + 16;
            tpv *nvv = karena_calloc(&x->a, (size_t)nc, sizeof *nvv);
            memcpy(nvv, v, (size_t)nv * sizeof *v);
            v = nvv;
            cap = nc;
        }
        for (int k = 0; k < np; k++) v[nv++] = (tpv){t, ps[k], -1, 0, 0};
    }
    *out = v;
    *n = nv;
    return 0;
}

static int commit_offsets(cg_ctx *x, const char *group, const tpv *v, int n) {
    kclient *cl = coordinator(x, group);
    if (!cl) return -1;
    OffsetCommitRequest req;
    OffsetCommitRequest_init(&req);
    req.group_id = kstr_from(group);
    req.generation_id_or_member_epoch = -1;
    req.member_id = KSTR_LIT("");
    req.group_instance_id = KSTR_NULL;
    req.retention_time_ms = -1;
    req.topics = karena_calloc(&x->a, (size_t)n + 1, sizeof *req.topics);
    int nt = 0;
    for (int i = 0; i < n; i++) {
        int t = 0;
        while (t < nt && !kstr_eq_c(req.topics[t].name, v[i].topic)) t++;
        if (t == nt) {
            OffsetCommitRequest_OffsetCommitRequestTopic_init(&req.topics[nt]);
            req.topics[nt].name = kstr_from(v[i].topic);
            req.topics[nt].partitions = karena_calloc(&x->a, (size_t)n, sizeof *req.topics[nt].partitions);
            req.topics[nt].partitions_count = 0;
            nt++;
        }
        OffsetCommitRequest_OffsetCommitRequestPartition *p =
            &req.topics[t].partitions[req.topics[t].partitions_count++];
        OffsetCommitRequest_OffsetCommitRequestPartition_init(p);
        p->partition_index = v[i].partition;
        p->committed_offset = v[i].value;
        p->committed_leader_epoch = -1;
        p->commit_timestamp = -1;
        p->committed_metadata = KSTR_LIT("");
    }
    req.topics_count = nt;
    OffsetCommitResponse resp;
    int16_t ver;
    if (CG_CALL_ON(x, cl, KAPI_OFFSET_COMMIT, OffsetCommitRequest, &req, OffsetCommitResponse, &resp, &ver) != 0)
        return -1;
    for (int t = 0; t < resp.topics_count; t++)
        for (int k = 0; k < resp.topics[t].partitions_count; k++) {
            int16_t e = resp.topics[t].partitions[k].error_code;
            if (e) {
                snprintf(x->c.err, sizeof x->c.err, "%s: %s", java_error_class(e), kerr_message(e));
                return -1;
            }
        }
    return 0;
}

static int cmd_reset(cg_ctx *x) {
    opts *o = x->o;
    if (opts_has(o, "from-file")) {
        print_error("Executing consumer group command failed due to --from-file is not supported by this build");
        return 1;
    }
    char **groups;
    int ng;
    if (selected_groups(x, &groups, &ng) != 0) return fail_exec(x);
    int dry = opts_has(o, "dry-run") || !opts_has(o, "execute");
    tpv **plans = karena_calloc(&x->a, (size_t)ng + 1, sizeof *plans);
    int *nplans = karena_calloc(&x->a, (size_t)ng + 1, sizeof *nplans);
    for (int i = 0; i < ng; i++) {
        described d;
        if (describe_group(x, groups[i], &d) != 0) return fail_exec(x);
        if (strcmp(d.state, "Empty") != 0 && strcmp(d.state, "Dead") != 0) {
            print_error("Assignments can only be reset if the group '%s' is inactive, but the current state is %s.",
                        groups[i], d.state);
            continue;
        }
        tpv *v = NULL;
        int n = 0;
        int rc = reset_scope(x, groups[i], &v, &n);
        if (rc > 0) return rc;
        if (rc < 0) return fail_exec(x);
        rc = plan_reset(x, groups[i], v, n);
        if (rc == 2) return 1;
        if (rc > 0) return rc;
        if (rc < 0) return fail_exec(x);
        if (!dry && n > 0 && commit_offsets(x, groups[i], v, n) != 0) return fail_exec(x);
        qsort(v, (size_t)n, sizeof *v, cmp_tpv);
        plans[i] = v;
        nplans[i] = n;
    }
    if (opts_has(o, "export")) {
        int single = opts_count(o, "group") == 1;
        for (int i = 0; i < ng; i++)
            for (int k = 0; k < nplans[i]; k++) {
                if (single) printf("%s,%d,%" PRId64 "\n", plans[i][k].topic, plans[i][k].partition, plans[i][k].value);
                else printf("%s,%s,%d,%" PRId64 "\n", groups[i], plans[i][k].topic, plans[i][k].partition,
                            plans[i][k].value);
            }
        printf("\n");
        return 0;
    }
    if (ng > 0) printf("\n%-30s %-30s %-10s %-15s\n", "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
    for (int i = 0; i < ng; i++)
        for (int k = 0; k < nplans[i]; k++) {
            char part[16], off[24];
            snprintf(part, sizeof part, "%d", plans[i][k].partition);
            snprintf(off, sizeof off, "%" PRId64, plans[i][k].value);
            printf("%-30s %-30s %-10s %-15s\n", groups[i], plans[i][k].topic, part, off);
        }
    return 0;
}

/* ---- argument checks (ConsumerGroupCommandOptions.checkArgs) ---- */

static int check_invalid_set(const opts *o, const char *used, const char *const *others, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(others[i], used) != 0 && opts_check_invalid(o, used, others[i])) return 1;
    return 0;
}

static int check_args(const opts *o) {
    if (opts_require(o, "bootstrap-server")) return 1;
    if (opts_has(o, "describe")) {
        if (!opts_has(o, "group") && !opts_has(o, "all-groups"))
            return opts_usage_error(o, "Option [describe] takes one of these options: [group], [all-groups]");
        int sub = opts_has(o, "members") + opts_has(o, "offsets") + opts_has(o, "state");
        if (sub > 1)
            return opts_usage_error(o, "Option [describe] takes at most one of these options: [members], [offsets], [state]");
        if (opts_has(o, "state") && opts_get(o, "state", NULL))
            return opts_usage_error(o, "Option [describe] does not take a value for [state]");
    } else {
        static const char *const describe_only[] = {"members", "verbose", "offsets"};
        for (int i = 0; i < 3; i++)
            if (opts_has(o, describe_only[i])) {
                char msg[200];
                snprintf(msg, sizeof msg, "Option %s can only be used with: describe", describe_only[i]);
                return opts_usage_error(o, msg);
            }
        if (opts_has(o, "state") && !opts_has(o, "list"))
            return opts_usage_error(o, "Option state can only be used with: describe, list");
    }
    if (opts_has(o, "delete")) {
        if (!opts_has(o, "group") && !opts_has(o, "all-groups"))
            return opts_usage_error(o, "Option [delete] takes one of these options: [group], [all-groups]");
        if (opts_has(o, "topic"))
            return opts_usage_error(o, "The consumer does not support topic-specific offset deletion from a consumer group.");
    }
    if (opts_has(o, "delete-offsets") && (!opts_has(o, "group") || !opts_has(o, "topic")))
        return opts_usage_error(o, "Option [delete-offsets] takes the following options: [group], [topic]");
    if (opts_has(o, "reset-offsets")) {
        if (opts_has(o, "dry-run") && opts_has(o, "execute"))
            return opts_usage_error(o, "Option [reset-offsets] only accepts one of [execute] and [dry-run]");
        if (!opts_has(o, "dry-run") && !opts_has(o, "execute")) {
            fprintf(stderr, "WARN: No action will be performed as the --execute option is missing. "
                            "In a future major release, the default behavior of this command will be to prompt the "
                            "user before executing the reset rather than doing a dry run. You should add the "
                            "--dry-run option explicitly if you are scripting this command and want to keep the "
                            "current default behavior without prompting.\n");
        }
        if (!opts_has(o, "group") && !opts_has(o, "all-groups"))
            return opts_usage_error(o, "Option [reset-offsets] takes one of these options: [group], [all-groups]");
        static const char *const scenarios[] = {"to-offset", "shift-by", "to-datetime", "by-duration",
                                                "to-earliest", "to-latest", "to-current", "from-file"};
        for (int i = 0; i < 8; i++)
            if (opts_has(o, scenarios[i]) && check_invalid_set(o, scenarios[i], scenarios, 8)) return 1;
    }
    if (opts_check_invalid(o, "group", "all-groups")) return 1;
    if (opts_has(o, "group") && opts_check_invalid(o, "group", "list")) return 1;
    if (opts_has(o, "topic") && (opts_check_invalid(o, "topic", "list") || opts_check_invalid(o, "topic", "describe")))
        return 1;
    return 0;
}

int tool_consumer_groups(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, cg_specs, OPTS_COUNT(cg_specs), argc, argv) != 0) {
        rc = opts_usage_error(&o, o.err);
        opts_free(&o);
        return rc;
    }
    if ((rc = check_args(&o)) != 0 ||
        opts_maybe_help_or_version(&o, "This tool helps to list all consumer groups, describe a consumer group, "
                                       "delete consumer group info, or reset consumer group offsets.",
                                   &rc)) {
        opts_free(&o);
        return rc;
    }
    int actions = opts_has(&o, "list") + opts_has(&o, "describe") + opts_has(&o, "delete") +
                  opts_has(&o, "reset-offsets") + opts_has(&o, "delete-offsets");
    if (actions != 1) {
        rc = opts_usage_error(&o, "Command must include exactly one action: --list, --describe, --delete, "
                                  "--reset-offsets, --delete-offsets");
        opts_free(&o);
        return rc;
    }
    cg_ctx x;
    memset(&x, 0, sizeof x);
    x.o = &o;
    kclient_init(&x.c, "adminclient-1");
    karena_init(&x.a, 0);
    admin_pool_init(&x.pool, &x.c);
    x.bootstrap = opts_get(&o, "bootstrap-server", "");
    const char *t = opts_get(&o, "timeout", NULL);
    if (t && opts_has(&o, "describe")) {
        long long ms = atoll(t);
        if (ms > 0 && ms < INT32_MAX) x.c.request_timeout_ms = (int)ms;
    }
    if (opts_has(&o, "command-config") && admin_apply_command_config(&x.c, opts_get(&o, "command-config", "")) != 0)
        rc = 1;
    else if (opts_has(&o, "list")) rc = cmd_list(&x);
    else if (opts_has(&o, "describe")) rc = cmd_describe(&x);
    else if (opts_has(&o, "delete")) rc = cmd_delete(&x);
    else if (opts_has(&o, "reset-offsets")) rc = cmd_reset(&x);
    else rc = cmd_delete_offsets(&x);
    fflush(stdout);
    admin_pool_close(&x.pool);
    kclient_close(&x.c);
    karena_free(&x.a);
    opts_free(&o);
    return rc;
}
