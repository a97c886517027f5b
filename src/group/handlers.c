/* handlers.c - the group coordinator's Kafka APIs: decode a request,
 * call the state machine (gstate.c) or the offsets store, encode Kafka
 * 3.6.1's answer for the request's version.
 *
 * JoinGroup and SyncGroup park their kreq as the state machine's "waiter";
 * gc_join_done/gc_sync_done encode the answer whenever it comes. A waiter
 * whose connection closed is still answered (the reply is dropped and the
 * request freed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/topics.h"
#include "group/gcoord.h"
#include "group/grecords.h"
#include "group/group.h"
#include "net/server.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "txn/txn_manager.h"
#include "util/log.h"

/* NULL for a null string, else a NUL-terminated copy in the request arena. */
static char *cstr(kstr s, karena *a) { return s.len < 0 ? NULL : kstr_dup(s, a); }
static kstr ks(const char *s) { return s ? kstr_from(s) : KSTR_NULL; }

static group_coord *coord(broker *b) { return (group_coord *)b->groups; }

/* Kafka reports the client's address as InetAddress.toString: "/1.2.3.4". */
static char *client_host(kreq *req) {
    const char *peer = req->conn ? kconn_peer(req->conn) : NULL;
    if (!peer) return "";
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    return karena_sprintf(&req->arena, "/%.*s", (int)n, peer);
}

/* ---- FindCoordinator ---- */

/* The coordinator of one key: the leader of the group's __consumer_offsets
 * partition, or an error (COORDINATOR_NOT_AVAILABLE while it has none). */
static int16_t coordinator_for(broker *b, int8_t key_type, kstr key, broker_node *node, karena *a) {
    if (key_type == 0) {
        int16_t e;
        char *gid = kstr_dup(key, a);
        if (!gid) return KERR_UNKNOWN_SERVER_ERROR;
        return gc_coordinator_node(coord(b), gid, node, &e) ? KERR_NONE : e;
    }
    if (key_type == 1) /* transactions: the leader of the id's __transaction_state partition */
        return txn_manager_coordinator(b, key.p, key.len > 0 ? (size_t)key.len : 0, node);
    return KERR_INVALID_REQUEST;
}

/* KafkaApis: DESCRIBE on the group or the transactional id. */
static int16_t coordinator_authz(kreq *req, int8_t key_type, kstr key) {
    if (key_type == 1)
        return authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_TRANSACTIONAL_ID, key)
                   ? KERR_NONE
                   : KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    return authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_GROUP, key) ? KERR_NONE : KERR_GROUP_AUTHORIZATION_FAILED;
}

static void find_coordinator_again(broker *b, void *arg) {
    kreq *req = arg;
    /* the endpoints of the request's listener, as when it was dispatched (dispatch.c) */
    const char *during = b->request_listener;
    b->request_listener = req->conn ? kconn_listener(req->conn) : NULL;
    h_find_coordinator(b, req);
    b->request_listener = during;
}

/* A coordinator not available because this node is still making the
 * internal topic's partitions (topics.h): the answer waits for them, so a
 * client's first FindCoordinator finds the coordinator, as when the topic
 * was made on the loop (Kafka answers COORDINATOR_NOT_AVAILABLE and the
 * client asks again). True when req was parked. */
static bool wait_for_internal_topic(broker *b, kreq *req, int8_t key_type, const kreader *body) {
    topic_rt *t = broker_topic(b, key_type == 1 ? KSTR_LIT("__transaction_state") : KSTR_LIT("__consumer_offsets"));
    if (!t || t->nmaking == 0) return false;
    req->body = *body; /* decoded again when it runs again */
    topics_when_made(b, t, find_coordinator_again, req);
    return true;
}

void h_find_coordinator(broker *b, kreq *req) {
    kreader body = req->body;
    FindCoordinatorRequest r;
    if (KREQ_DECODE(req, FindCoordinatorRequest, &r) != 0) return;
    FindCoordinatorResponse resp;
    FindCoordinatorResponse_init(&resp);
    broker_node node;
    if (req->api_version < 4) {
        int16_t e = coordinator_authz(req, req->api_version >= 1 ? r.key_type : 0, r.key);
        if (!e) e = coordinator_for(b, req->api_version >= 1 ? r.key_type : 0, r.key, &node, &req->arena);
        if (e == KERR_COORDINATOR_NOT_AVAILABLE &&
            wait_for_internal_topic(b, req, req->api_version >= 1 ? r.key_type : 0, &body))
            return;
        resp.error_code = e;
        resp.error_message = kstr_from(e ? kerr_message(e) : "NONE");
        resp.node_id = e ? -1 : node.id;
        resp.host = kstr_from(e ? "" : node.host);
        resp.port = e ? -1 : node.port;
        KREQ_REPLY(req, FindCoordinatorResponse, &resp);
        return;
    }
    int32_t n = r.coordinator_keys_count > 0 ? r.coordinator_keys_count : 0;
    resp.coordinators = karena_calloc(&req->arena, (size_t)(n ? n : 1), sizeof *resp.coordinators);
    if (!resp.coordinators) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.coordinators_count = n;
    for (int32_t i = 0; i < n; i++) {
        FindCoordinatorResponse_Coordinator *c = &resp.coordinators[i];
        FindCoordinatorResponse_Coordinator_init(c);
        int16_t e = coordinator_authz(req, r.key_type, r.coordinator_keys[i]);
        if (!e) e = coordinator_for(b, r.key_type, r.coordinator_keys[i], &node, &req->arena);
        if (e == KERR_COORDINATOR_NOT_AVAILABLE && wait_for_internal_topic(b, req, r.key_type, &body)) return;
        c->key = r.coordinator_keys[i];
        c->error_code = e;
        c->error_message = KSTR_NULL;
        c->node_id = e ? -1 : node.id;
        c->host = kstr_from(e ? "" : node.host);
        c->port = e ? -1 : node.port;
    }
    KREQ_REPLY(req, FindCoordinatorResponse, &resp);
}

/* ---- JoinGroup ---- */

void gc_join_done(void *ctx, void *waiter, const gjoin_result *r) {
    (void)ctx;
    kreq *req = waiter;
    JoinGroupResponse resp;
    JoinGroupResponse_init(&resp);
    int16_t v = req->api_version;
    resp.error_code = r->error;
    resp.generation_id = r->generation;
    resp.protocol_type = ks(r->protocol_type);
    resp.protocol_name = r->protocol_name ? kstr_from(r->protocol_name) : (v >= 7 ? KSTR_NULL : KSTR_LIT(""));
    resp.leader = kstr_from(r->leader_id ? r->leader_id : "");
    resp.skip_assignment = r->skip_assignment;
    resp.member_id = kstr_from(r->member_id ? r->member_id : "");
    resp.members_count = r->nmembers;
    if (r->nmembers > 0) {
        resp.members = karena_calloc(&req->arena, (size_t)r->nmembers, sizeof *resp.members);
        if (!resp.members) resp.members_count = 0;
        for (int i = 0; resp.members && i < r->nmembers; i++) {
            JoinGroupResponse_JoinGroupResponseMember *m = &resp.members[i];
            JoinGroupResponse_JoinGroupResponseMember_init(m);
            m->member_id = kstr_from(r->members[i].member_id);
            m->group_instance_id = ks(r->members[i].instance_id);
            m->metadata = (kbytes){r->members[i].metadata ? r->members[i].metadata : (const uint8_t *)"",
                                   r->members[i].metadata_len};
        }
    }
    KREQ_REPLY(req, JoinGroupResponse, &resp);
}

void h_join_group(broker *b, kreq *req) {
    JoinGroupRequest r;
    if (KREQ_DECODE(req, JoinGroupRequest, &r) != 0) return;
    karena *a = &req->arena;
    if (!authz_allowed_k(req, AZ_OP_READ, AZ_RES_GROUP, r.group_id)) {
        gjoin_result e = {.error = KERR_GROUP_AUTHORIZATION_FAILED, .member_id = "", .generation = -1, .leader_id = ""};
        gc_join_done(NULL, req, &e);
        return;
    }
    int n = r.protocols_count > 0 ? r.protocols_count : 0;
    gprotocol *ps = karena_calloc(a, (size_t)(n ? n : 1), sizeof *ps);
    if (!ps) {
        kreq_fail(req, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        ps[i].name = kstr_dup(r.protocols[i].name, a);
        ps[i].metadata = (uint8_t *)r.protocols[i].metadata.p;
        ps[i].metadata_len = r.protocols[i].metadata.len > 0 ? r.protocols[i].metadata.len : 0;
    }
    char *instance = cstr(r.group_instance_id, a);
    gjoin_req jr = {
        .group_id = cstr(r.group_id, a),
        .member_id = kstr_dup(r.member_id, a),
        .instance_id = instance,
        .client_id = kstr_dup(req->client_id, a),
        .client_host = client_host(req),
        .session_timeout_ms = r.session_timeout_ms,
        /* v0 had no rebalance timeout: the session timeout served */
        .rebalance_timeout_ms = req->api_version == 0 ? r.session_timeout_ms : r.rebalance_timeout_ms,
        .protocol_type = kstr_dup(r.protocol_type, a),
        .protocols = ps,
        .nprotocols = n,
        .require_known_member_id = req->api_version >= 4 && !instance,
        .support_skip_assignment = req->api_version >= 9,
    };
    gmgr_join(&coord(b)->mgr, &jr, req);
}

/* ---- SyncGroup ---- */

void gc_sync_done(void *ctx, void *waiter, const gsync_result *r) {
    (void)ctx;
    kreq *req = waiter;
    SyncGroupResponse resp;
    SyncGroupResponse_init(&resp);
    resp.error_code = r->error;
    resp.protocol_type = ks(r->protocol_type);
    resp.protocol_name = ks(r->protocol_name);
    resp.assignment = (kbytes){r->assignment ? r->assignment : (const uint8_t *)"",
                               r->assignment ? r->assignment_len : 0};
    KREQ_REPLY(req, SyncGroupResponse, &resp);
}

void h_sync_group(broker *b, kreq *req) {
    SyncGroupRequest r;
    if (KREQ_DECODE(req, SyncGroupRequest, &r) != 0) return;
    karena *a = &req->arena;
    if (!authz_allowed_k(req, AZ_OP_READ, AZ_RES_GROUP, r.group_id)) {
        gsync_result e = {.error = KERR_GROUP_AUTHORIZATION_FAILED};
        gc_sync_done(NULL, req, &e);
        return;
    }
    /* v5+ must name the protocol type and name */
    if (req->api_version >= 5 && (r.protocol_type.len < 0 || r.protocol_name.len < 0)) {
        gsync_result e = {.error = KERR_INCONSISTENT_GROUP_PROTOCOL};
        gc_sync_done(NULL, req, &e);
        return;
    }
    int n = r.assignments_count > 0 ? r.assignments_count : 0;
    gassignment *as = karena_calloc(a, (size_t)(n ? n : 1), sizeof *as);
    if (!as) {
        kreq_fail(req, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        as[i].member_id = kstr_dup(r.assignments[i].member_id, a);
        as[i].assignment = r.assignments[i].assignment.p;
        as[i].assignment_len = r.assignments[i].assignment.len > 0 ? r.assignments[i].assignment.len : 0;
    }
    gsync_req sr = {.group_id = cstr(r.group_id, a),
                    .generation = r.generation_id,
                    .member_id = kstr_dup(r.member_id, a),
                    .instance_id = cstr(r.group_instance_id, a),
                    .protocol_type = cstr(r.protocol_type, a),
                    .protocol_name = cstr(r.protocol_name, a),
                    .assignments = as,
                    .nassignments = n};
    gmgr_sync(&coord(b)->mgr, &sr, req);
}

/* ---- Heartbeat, LeaveGroup ---- */

void h_heartbeat(broker *b, kreq *req) {
    HeartbeatRequest r;
    if (KREQ_DECODE(req, HeartbeatRequest, &r) != 0) return;
    karena *a = &req->arena;
    HeartbeatResponse resp;
    HeartbeatResponse_init(&resp);
    resp.error_code = !authz_allowed_k(req, AZ_OP_READ, AZ_RES_GROUP, r.group_id)
                          ? KERR_GROUP_AUTHORIZATION_FAILED
                          : gmgr_heartbeat(&coord(b)->mgr, cstr(r.group_id, a), kstr_dup(r.member_id, a),
                                           cstr(r.group_instance_id, a), r.generation_id);
    KREQ_REPLY(req, HeartbeatResponse, &resp);
}

void h_leave_group(broker *b, kreq *req) {
    LeaveGroupRequest r;
    if (KREQ_DECODE(req, LeaveGroupRequest, &r) != 0) return;
    karena *a = &req->arena;
    int n = req->api_version >= 3 ? (r.members_count > 0 ? r.members_count : 0) : 1;
    const char **ids = karena_calloc(a, (size_t)n + 1, sizeof *ids);
    const char **iids = karena_calloc(a, (size_t)n + 1, sizeof *iids);
    int16_t *errs = karena_calloc(a, (size_t)n + 1, sizeof *errs);
    if (!ids || !iids || !errs) {
        kreq_fail(req, "out of memory");
        return;
    }
    if (req->api_version >= 3) {
        for (int i = 0; i < n; i++) {
            ids[i] = kstr_dup(r.members[i].member_id, a);
            iids[i] = cstr(r.members[i].group_instance_id, a);
        }
    } else {
        ids[0] = kstr_dup(r.member_id, a);
    }
    LeaveGroupResponse resp;
    LeaveGroupResponse_init(&resp);
    resp.error_code = !authz_allowed_k(req, AZ_OP_READ, AZ_RES_GROUP, r.group_id)
                          ? KERR_GROUP_AUTHORIZATION_FAILED
                          : gmgr_leave(&coord(b)->mgr, cstr(r.group_id, a), n, ids, iids, errs);
    if (req->api_version >= 3) {
        if (resp.error_code == KERR_NONE) {
            resp.members = karena_calloc(a, (size_t)n + 1, sizeof *resp.members);
            resp.members_count = n;
            for (int i = 0; resp.members && i < n; i++) {
                LeaveGroupResponse_MemberResponse_init(&resp.members[i]);
                resp.members[i].member_id = r.members[i].member_id;
                resp.members[i].group_instance_id = r.members[i].group_instance_id;
                resp.members[i].error_code = errs[i];
            }
        } else {
            resp.members_count = 0;
        }
    } else if (resp.error_code == KERR_NONE) {
        resp.error_code = errs[0]; /* old versions carry the member's error at the top */
    }
    KREQ_REPLY(req, LeaveGroupResponse, &resp);
}

/* ---- OffsetCommit ---- */

static bool partition_exists(broker *b, kstr topic, int32_t index, bool *topic_known) {
    topic_rt *t = broker_topic(b, topic);
    *topic_known = t != NULL;
    return t && index >= 0 && index < t->nparts;
}

/* An OffsetCommit whose records are being written: answered once they are
 * replicated (Kafka's storeOffsets putCacheCallback). Lives in the request's
 * arena, which lasts until the answer. */
typedef struct commit_wait {
    kreq *req;
    OffsetCommitResponse *resp;
    char *group_id;
    goffset *offs;             /* the offsets written, in the arena */
    int nrec;
} commit_wait;

/* Fill every partition still pending (-2) with e and answer. */
static void commit_answer(kreq *req, OffsetCommitResponse *resp, int16_t e) {
    for (int i = 0; i < resp->topics_count; i++)
        for (int k = 0; k < resp->topics[i].partitions_count; k++)
            if (resp->topics[i].partitions[k].error_code == -2) resp->topics[i].partitions[k].error_code = e;
    KREQ_REPLY(req, OffsetCommitResponse, resp);
}

static void commit_written(group_coord *gc, void *arg, int16_t error, int64_t first_offset, bool same) {
    commit_wait *cw = arg;
    int16_t e = gc_offset_commit_error(error);
    /* the cache follows the log only once the write is acknowledged, and
     * only in the partition incarnation it was written in (a reload read it) */
    kgroup *g = e || !same ? NULL : gmgr_get(&gc->mgr, cw->group_id);
    if (g && g->state != GROUP_DEAD) {
        for (int i = 0; i < cw->nrec; i++) {
            const goffset *o = &cw->offs[i];
            goffset *cur = group_offset(g, o->topic, strlen(o->topic), o->partition);
            if (cur && cur->log_offset > first_offset) continue; /* a later commit is already in */
            goffset *put = group_offset_put(g, o->topic, strlen(o->topic), o->partition, o->offset,
                                            o->leader_epoch, o->metadata, strlen(o->metadata), o->commit_ts,
                                            o->expire_ts);
            if (put) put->log_offset = first_offset;
        }
    }
    commit_answer(cw->req, cw->resp, e);
}

void h_offset_commit(broker *b, kreq *req) {
    OffsetCommitRequest r;
    if (KREQ_DECODE(req, OffsetCommitRequest, &r) != 0) return;
    group_coord *gc = coord(b);
    karena *a = &req->arena;
    int16_t v = req->api_version;
    int64_t now = wall_clock_ms();
    /* Java's long addition wraps; do the same without C's overflow UB */
    int64_t expire = (v >= 2 && v <= 4 && r.retention_time_ms != -1)
                         ? (int64_t)((uint64_t)now + (uint64_t)r.retention_time_ms)
                         : -1;

    OffsetCommitResponse *resp = karena_calloc(a, 1, sizeof *resp);
    if (!resp) {
        kreq_fail(req, "out of memory");
        return;
    }
    OffsetCommitResponse_init(resp);
    int nt = r.topics_count > 0 ? r.topics_count : 0;
    resp->topics = karena_calloc(a, (size_t)nt + 1, sizeof *resp->topics);
    if (!resp->topics) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp->topics_count = nt;
    int nvalid = 0;
    /* KafkaApis: READ on the group, then READ on each topic */
    bool group_ok = authz_allowed_k(req, AZ_OP_READ, AZ_RES_GROUP, r.group_id);
    for (int i = 0; i < nt; i++) {
        OffsetCommitRequest_OffsetCommitRequestTopic *t = &r.topics[i];
        OffsetCommitResponse_OffsetCommitResponseTopic *rt = &resp->topics[i];
        bool topic_ok = group_ok && authz_allowed_k(req, AZ_OP_READ, AZ_RES_TOPIC, t->name);
        OffsetCommitResponse_OffsetCommitResponseTopic_init(rt);
        rt->name = t->name;
        int np = t->partitions_count > 0 ? t->partitions_count : 0;
        rt->partitions = karena_calloc(a, (size_t)np + 1, sizeof *rt->partitions);
        if (!rt->partitions) {
            kreq_fail(req, "out of memory");
            return;
        }
        rt->partitions_count = np;
        for (int k = 0; k < np; k++) {
            OffsetCommitResponse_OffsetCommitResponsePartition_init(&rt->partitions[k]);
            rt->partitions[k].partition_index = t->partitions[k].partition_index;
            bool known;
            if (!group_ok)
                rt->partitions[k].error_code = KERR_GROUP_AUTHORIZATION_FAILED;
            else if (!topic_ok)
                rt->partitions[k].error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!partition_exists(b, t->name, t->partitions[k].partition_index, &known))
                rt->partitions[k].error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else
                nvalid++, rt->partitions[k].error_code = -2; /* pending: decided below */
        }
    }
    if (nvalid == 0) {
        KREQ_REPLY(req, OffsetCommitResponse, resp);
        return;
    }
    char *gid = cstr(r.group_id, a);
    kgroup *g = NULL;
    int16_t ge = gmgr_commit_check(&gc->mgr, gid, kstr_dup(r.member_id, a), cstr(r.group_instance_id, a),
                                   v >= 1 ? r.generation_id_or_member_epoch : -1, &g);
    /* the records of the commit, one batch */
    kbytes *keys = karena_calloc(a, (size_t)nvalid, sizeof *keys);
    kbytes *vals = karena_calloc(a, (size_t)nvalid, sizeof *vals);
    goffset *offs = karena_calloc(a, (size_t)nvalid, sizeof *offs);
    commit_wait *cw = karena_calloc(a, 1, sizeof *cw);
    if (!keys || !vals || !offs || !cw) {
        kreq_fail(req, "out of memory");
        return;
    }
    int nrec = 0;
    for (int i = 0; !ge && i < nt; i++) {
        OffsetCommitRequest_OffsetCommitRequestTopic *t = &r.topics[i];
        for (int k = 0; k < resp->topics[i].partitions_count; k++) {
            OffsetCommitResponse_OffsetCommitResponsePartition *rp = &resp->topics[i].partitions[k];
            if (rp->error_code != -2) continue;
            OffsetCommitRequest_OffsetCommitRequestPartition *p = &t->partitions[k];
            int32_t mlen = p->committed_metadata.len > 0 ? p->committed_metadata.len : 0;
            if (mlen > gc->mgr.cfg.offset_metadata_max_bytes) {
                rp->error_code = KERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            goffset *o = &offs[nrec];
            o->topic = kstr_dup(t->name, a);
            o->partition = p->partition_index;
            o->offset = p->committed_offset;
            o->leader_epoch = v >= 6 ? p->committed_leader_epoch : -1;
            o->metadata = kstr_dup(p->committed_metadata, a);
            o->commit_ts = (v == 1 && p->commit_timestamp != -1) ? p->commit_timestamp : now;
            o->expire_ts = expire;
            kwriter kw, vw;
            kw_init(&kw);
            kw_init(&vw);
            grec_offset_key(&kw, gid, o->topic, o->partition);
            grec_offset_value(&vw, o);
            uint8_t *kb = karena_alloc(a, kw.len + 1), *vb = karena_alloc(a, vw.len + 1);
            if (kb && vb && !kw.err && !vw.err) {
                memcpy(kb, kw.buf, kw.len);
                memcpy(vb, vw.buf, vw.len);
                keys[nrec] = (kbytes){kb, (int32_t)kw.len};
                vals[nrec] = (kbytes){vb, (int32_t)vw.len};
                nrec++;
            } else {
                rp->error_code = KERR_UNKNOWN_SERVER_ERROR;
            }
            kw_free(&kw);
            kw_free(&vw);
        }
    }
    if (ge || nrec == 0) {
        commit_answer(req, resp, ge);
        return;
    }
    *cw = (commit_wait){.req = req, .resp = resp, .group_id = gid, .offs = offs, .nrec = nrec};
    group_warn_mixed_commits(g); /* as storeOffsets, before prepareOffsetCommit */
    g->received_consumer_commits = true;
    gc_append(gc, gid, nrec, keys, vals, commit_written, cw);
}

/* ---- OffsetFetch ---- */

/* One group's answer, in the v8 layout (converted for older versions). */
/* Kafka's getOffsets with requireStable (v7+): a partition with a
 * transactional offset still pending answers UNSTABLE_OFFSET_COMMIT. */
static void fetch_fill(karena *a, const kgroup *g, bool require_stable, kstr topic, const goffset *o,
                       OffsetFetchResponse_OffsetFetchResponsePartitions *p) {
    if (require_stable && g && g->txn && group_txn_pending_for(g, topic.p, (size_t)topic.len, p->partition_index)) {
        p->committed_offset = -1;
        p->committed_leader_epoch = -1;
        p->metadata = KSTR_LIT("");
        p->error_code = KERR_UNSTABLE_OFFSET_COMMIT;
        return;
    }
    p->committed_offset = o ? o->offset : -1;
    p->committed_leader_epoch = o ? o->leader_epoch : -1;
    p->metadata = kstr_from(o ? karena_strndup(a, o->metadata, strlen(o->metadata)) : "");
    p->error_code = KERR_NONE;
}

static int16_t fetch_group(broker *b, kreq *req, karena *a, kstr group_id, const kstr *topic_names,
                           int32_t *const *partition_lists, const int32_t *partition_counts, int ntopics,
                           bool require_stable, OffsetFetchResponse_OffsetFetchResponseTopics **out,
                           int32_t *out_count) {
    group_coord *gc = coord(b);
    *out = NULL;
    *out_count = 0;
    /* KafkaApis: DESCRIBE on the group, then on each topic */
    if (!authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_GROUP, group_id)) return KERR_GROUP_AUTHORIZATION_FAILED;
    char *gid = cstr(group_id, a);
    int16_t e = gmgr_validate_group_id(&gc->mgr, gid, true);
    if (e) return e;
    kgroup *g = gmgr_get(&gc->mgr, gid);
    if (ntopics < 0) { /* all committed offsets (of topics one may DESCRIBE) */
        if (!g || !g->noffsets) {
            *out = karena_calloc(a, 1, sizeof **out);
            return KERR_NONE;
        }
        int n = 0;
        goffset **all = group_offsets_sorted(g, &n);
        if (!all) return KERR_UNKNOWN_SERVER_ERROR;
        OffsetFetchResponse_OffsetFetchResponseTopics *ts = karena_calloc(a, (size_t)n, sizeof *ts);
        OffsetFetchResponse_OffsetFetchResponsePartitions *ps = karena_calloc(a, (size_t)n, sizeof *ps);
        if (!ts || !ps) {
            free(all);
            return KERR_UNKNOWN_SERVER_ERROR;
        }
        int nt = -1;
        for (int i = 0, prev = -1; i < n; i++) {
            if (!authz_allowed_quiet(req, AZ_OP_DESCRIBE, AZ_RES_TOPIC, kstr_from(all[i]->topic))) continue;
            bool new_topic = nt < 0 || strcmp(all[i]->topic, all[prev]->topic) != 0;
            prev = i;
            if (new_topic) {
                nt++;
                OffsetFetchResponse_OffsetFetchResponseTopics_init(&ts[nt]);
                ts[nt].name = kstr_from(karena_strndup(a, all[i]->topic, strlen(all[i]->topic)));
                ts[nt].partitions = &ps[i];
                ts[nt].partitions_count = 0;
            }
            OffsetFetchResponse_OffsetFetchResponsePartitions *p = &ps[i];
            OffsetFetchResponse_OffsetFetchResponsePartitions_init(p);
            p->partition_index = all[i]->partition;
            fetch_fill(a, g, require_stable, ts[nt].name, all[i], p);
            ts[nt].partitions_count++;
        }
        free(all);
        *out = ts;
        *out_count = nt + 1;
        return KERR_NONE;
    }
    OffsetFetchResponse_OffsetFetchResponseTopics *ts = karena_calloc(a, (size_t)ntopics + 1, sizeof *ts);
    if (!ts) return KERR_UNKNOWN_SERVER_ERROR;
    for (int i = 0; i < ntopics; i++) {
        OffsetFetchResponse_OffsetFetchResponseTopics_init(&ts[i]);
        ts[i].name = topic_names[i];
        int np = partition_counts[i] > 0 ? partition_counts[i] : 0;
        ts[i].partitions = karena_calloc(a, (size_t)np + 1, sizeof *ts[i].partitions);
        if (!ts[i].partitions) return KERR_UNKNOWN_SERVER_ERROR;
        ts[i].partitions_count = np;
        bool topic_ok = authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_TOPIC, topic_names[i]);
        for (int k = 0; k < np; k++) {
            OffsetFetchResponse_OffsetFetchResponsePartitions *p = &ts[i].partitions[k];
            OffsetFetchResponse_OffsetFetchResponsePartitions_init(p);
            p->partition_index = partition_lists[i][k];
            if (!topic_ok) {
                p->committed_offset = -1;
                p->committed_leader_epoch = -1;
                p->metadata = KSTR_LIT("");
                p->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            goffset *o = g ? group_offset(g, topic_names[i].p, (size_t)topic_names[i].len, p->partition_index)
                           : NULL;
            fetch_fill(a, g, require_stable, topic_names[i], o, p);
        }
    }
    *out = ts;
    *out_count = ntopics;
    return KERR_NONE;
}

void h_offset_fetch(broker *b, kreq *req) {
    OffsetFetchRequest r;
    if (KREQ_DECODE(req, OffsetFetchRequest, &r) != 0) return;
    karena *a = &req->arena;
    int16_t v = req->api_version;
    OffsetFetchResponse resp;
    OffsetFetchResponse_init(&resp);
    if (v >= 8) {
        int ng = r.groups_count > 0 ? r.groups_count : 0;
        resp.groups = karena_calloc(a, (size_t)ng + 1, sizeof *resp.groups);
        if (!resp.groups) {
            kreq_fail(req, "out of memory");
            return;
        }
        resp.groups_count = ng;
        for (int i = 0; i < ng; i++) {
            OffsetFetchRequest_OffsetFetchRequestGroup *rg = &r.groups[i];
            OffsetFetchResponse_OffsetFetchResponseGroup *og = &resp.groups[i];
            OffsetFetchResponse_OffsetFetchResponseGroup_init(og);
            og->group_id = rg->group_id;
            int nt = rg->topics_count;
            kstr *names = karena_calloc(a, (size_t)(nt > 0 ? nt : 1), sizeof *names);
            int32_t **lists = karena_calloc(a, (size_t)(nt > 0 ? nt : 1), sizeof *lists);
            int32_t *counts = karena_calloc(a, (size_t)(nt > 0 ? nt : 1), sizeof *counts);
            for (int k = 0; names && lists && counts && k < nt; k++) {
                names[k] = rg->topics[k].name;
                lists[k] = rg->topics[k].partition_indexes;
                counts[k] = rg->topics[k].partition_indexes_count;
            }
            og->error_code = fetch_group(b, req, a, rg->group_id, names, lists, counts, nt < 0 ? -1 : nt, r.require_stable, &og->topics,
                                         &og->topics_count);
            if (og->error_code) og->topics_count = 0;
        }
        KREQ_REPLY(req, OffsetFetchResponse, &resp);
        return;
    }
    int nt = r.topics_count; /* -1: all (v2+) */
    kstr *names = karena_calloc(a, (size_t)(nt > 0 ? nt : 1), sizeof *names);
    int32_t **lists = karena_calloc(a, (size_t)(nt > 0 ? nt : 1), sizeof *lists);
    int32_t *counts = karena_calloc(a, (size_t)(nt > 0 ? nt : 1), sizeof *counts);
    if (!names || !lists || !counts) {
        kreq_fail(req, "out of memory");
        return;
    }
    for (int k = 0; k < nt; k++) {
        names[k] = r.topics[k].name;
        lists[k] = r.topics[k].partition_indexes;
        counts[k] = r.topics[k].partition_indexes_count;
    }
    OffsetFetchResponse_OffsetFetchResponseTopics *ts = NULL;
    int32_t count = 0;
    int16_t e = fetch_group(b, req, a, r.group_id, names, lists, counts, nt < 0 ? -1 : nt, v >= 7 && r.require_stable,
                            &ts, &count);
    if (e && v < 2) {
        /* no top-level error before v2: every partition carries it */
        count = nt > 0 ? nt : 0;
        ts = karena_calloc(a, (size_t)count + 1, sizeof *ts);
        for (int i = 0; ts && i < count; i++) {
            ts[i].name = names[i];
            ts[i].partitions_count = counts[i] > 0 ? counts[i] : 0;
            ts[i].partitions = karena_calloc(a, (size_t)ts[i].partitions_count + 1, sizeof *ts[i].partitions);
            for (int k = 0; ts[i].partitions && k < ts[i].partitions_count; k++) {
                OffsetFetchResponse_OffsetFetchResponsePartitions_init(&ts[i].partitions[k]);
                ts[i].partitions[k].partition_index = lists[i][k];
                ts[i].partitions[k].committed_offset = -1;
                ts[i].partitions[k].metadata = KSTR_LIT("");
                ts[i].partitions[k].error_code = e;
            }
        }
    } else if (e) {
        count = 0;
    }
    resp.error_code = e;
    resp.topics_count = count;
    resp.topics = karena_calloc(a, (size_t)count + 1, sizeof *resp.topics);
    if (!resp.topics) {
        kreq_fail(req, "out of memory");
        return;
    }
    /* same fields, the pre-v8 struct types */
    for (int i = 0; i < count; i++) {
        OffsetFetchResponse_OffsetFetchResponseTopic *t = &resp.topics[i];
        OffsetFetchResponse_OffsetFetchResponseTopic_init(t);
        t->name = ts[i].name;
        t->partitions_count = ts[i].partitions_count;
        t->partitions = karena_calloc(a, (size_t)t->partitions_count + 1, sizeof *t->partitions);
        for (int k = 0; t->partitions && k < t->partitions_count; k++) {
            OffsetFetchResponse_OffsetFetchResponsePartition *p = &t->partitions[k];
            const OffsetFetchResponse_OffsetFetchResponsePartitions *q = &ts[i].partitions[k];
            OffsetFetchResponse_OffsetFetchResponsePartition_init(p);
            p->partition_index = q->partition_index;
            p->committed_offset = q->committed_offset;
            p->committed_leader_epoch = q->committed_leader_epoch;
            p->metadata = q->metadata;
            p->error_code = q->error_code;
        }
        if (!t->partitions) t->partitions_count = 0;
    }
    KREQ_REPLY(req, OffsetFetchResponse, &resp);
}

/* ---- DescribeGroups, ListGroups ---- */

/* Kafka's group operations without an authorizer: READ, DELETE, DESCRIBE. */
#define GROUP_AUTHORIZED_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

void h_describe_groups(broker *b, kreq *req) {
    DescribeGroupsRequest r;
    if (KREQ_DECODE(req, DescribeGroupsRequest, &r) != 0) return;
    karena *a = &req->arena;
    DescribeGroupsResponse resp;
    DescribeGroupsResponse_init(&resp);
    int n = r.groups_count > 0 ? r.groups_count : 0;
    resp.groups = karena_calloc(a, (size_t)n + 1, sizeof *resp.groups);
    if (!resp.groups) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.groups_count = n;
    gmgr *m = &coord(b)->mgr;
    for (int i = 0; i < n; i++) {
        DescribeGroupsResponse_DescribedGroup *d = &resp.groups[i];
        DescribeGroupsResponse_DescribedGroup_init(d);
        d->group_id = r.groups[i];
        d->protocol_type = KSTR_LIT("");
        d->protocol_data = KSTR_LIT("");
        d->members_count = 0;
        d->authorized_operations = !r.include_authorized_operations ? INT32_MIN
                                   : authz_enabled(b) ? authz_operations(req, AZ_RES_GROUP, r.groups[i])
                                                      : GROUP_AUTHORIZED_OPERATIONS;
        char *gid = cstr(r.groups[i], a);
        int16_t e = authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_GROUP, r.groups[i])
                        ? gmgr_validate_group_id(m, gid, true)
                        : KERR_GROUP_AUTHORIZATION_FAILED;
        if (e) {
            d->error_code = e;
            d->group_state = KSTR_LIT("");
            continue;
        }
        kgroup *g = gmgr_get(m, gid);
        if (!g) {
            d->group_state = KSTR_LIT("Dead");
            continue;
        }
        bool stable = g->state == GROUP_STABLE;
        d->group_state = kstr_from(group_state_name(g->state));
        d->protocol_type = kstr_from(g->protocol_type ? karena_strndup(a, g->protocol_type, strlen(g->protocol_type)) : "");
        d->protocol_data = kstr_from(stable && g->protocol_name ? karena_strndup(a, g->protocol_name, strlen(g->protocol_name)) : "");
        d->members = karena_calloc(a, (size_t)g->nmembers + 1, sizeof *d->members);
        if (!d->members) continue;
        d->members_count = g->nmembers;
        for (int k = 0; k < g->nmembers; k++) {
            gmember *mb = g->members[k];
            DescribeGroupsResponse_DescribedGroupMember *dm = &d->members[k];
            DescribeGroupsResponse_DescribedGroupMember_init(dm);
            dm->member_id = kstr_from(karena_strndup(a, mb->member_id, strlen(mb->member_id)));
            dm->group_instance_id = mb->instance_id ? kstr_from(karena_strndup(a, mb->instance_id, strlen(mb->instance_id))) : KSTR_NULL;
            dm->client_id = kstr_from(karena_strndup(a, mb->client_id, strlen(mb->client_id)));
            dm->client_host = kstr_from(karena_strndup(a, mb->client_host, strlen(mb->client_host)));
            dm->member_metadata = (kbytes){(const uint8_t *)"", 0};
            dm->member_assignment = (kbytes){(const uint8_t *)"", 0};
            if (stable) {
                const gprotocol *p = gmember_protocol(mb, g->protocol_name);
                if (p && p->metadata_len > 0) {
                    uint8_t *c = karena_alloc(a, (size_t)p->metadata_len);
                    if (c) {
                        memcpy(c, p->metadata, (size_t)p->metadata_len);
                        dm->member_metadata = (kbytes){c, p->metadata_len};
                    }
                }
                if (mb->assignment_len > 0) {
                    uint8_t *c = karena_alloc(a, (size_t)mb->assignment_len);
                    if (c) {
                        memcpy(c, mb->assignment, (size_t)mb->assignment_len);
                        dm->member_assignment = (kbytes){c, mb->assignment_len};
                    }
                }
            }
        }
    }
    KREQ_REPLY(req, DescribeGroupsResponse, &resp);
}

void h_list_groups(broker *b, kreq *req) {
    ListGroupsRequest r;
    if (KREQ_DECODE(req, ListGroupsRequest, &r) != 0) return;
    karena *a = &req->arena;
    gmgr *m = &coord(b)->mgr;
    ListGroupsResponse resp;
    ListGroupsResponse_init(&resp);
    resp.error_code = m->loading || gc_any_loading(coord(b)) ? KERR_COORDINATOR_LOAD_IN_PROGRESS : KERR_NONE;
    resp.groups = karena_calloc(a, (size_t)m->ngroups + 1, sizeof *resp.groups);
    if (!resp.groups) {
        kreq_fail(req, "out of memory");
        return;
    }
    int nf = req->api_version >= 4 && r.states_filter_count > 0 ? r.states_filter_count : 0;
    bool all_groups = authz_allowed_quiet(req, AZ_OP_DESCRIBE, AZ_RES_CLUSTER, KSTR_LIT(AZ_CLUSTER_NAME));
    int n = 0, bucket = 0;
    kgroup *cur = NULL;
    for (kgroup *g; (g = gmgr_iter(m, &bucket, &cur));) {
        if (g->state == GROUP_DEAD) continue;
        if (!all_groups && !authz_allowed_quiet(req, AZ_OP_DESCRIBE, AZ_RES_GROUP, kstr_from(g->id))) continue;
        const char *state = group_state_name(g->state);
        if (nf) {
            bool match = false;
            for (int i = 0; i < nf && !match; i++) match = kstr_eq_c(r.states_filter[i], state);
            if (!match) continue;
        }
        ListGroupsResponse_ListedGroup *lg = &resp.groups[n++];
        ListGroupsResponse_ListedGroup_init(lg);
        lg->group_id = kstr_from(karena_strndup(a, g->id, strlen(g->id)));
        lg->protocol_type = kstr_from(g->protocol_type ? karena_strndup(a, g->protocol_type, strlen(g->protocol_type)) : "");
        lg->group_state = kstr_from(state);
    }
    resp.groups_count = n;
    KREQ_REPLY(req, ListGroupsResponse, &resp);
}

/* ---- DeleteGroups, OffsetDelete ---- */

void h_delete_groups(broker *b, kreq *req) {
    DeleteGroupsRequest r;
    if (KREQ_DECODE(req, DeleteGroupsRequest, &r) != 0) return;
    karena *a = &req->arena;
    group_coord *gc = coord(b);
    DeleteGroupsResponse resp;
    DeleteGroupsResponse_init(&resp);
    int n = r.groups_names_count > 0 ? r.groups_names_count : 0;
    resp.results = karena_calloc(a, (size_t)n + 1, sizeof *resp.results);
    if (!resp.results) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.results_count = n;
    for (int i = 0; i < n; i++) {
        DeleteGroupsResponse_DeletableGroupResult *res = &resp.results[i];
        DeleteGroupsResponse_DeletableGroupResult_init(res);
        res->group_id = r.groups_names[i];
        kgroup *g = NULL;
        res->error_code = authz_allowed_k(req, AZ_OP_DELETE, AZ_RES_GROUP, r.groups_names[i])
                              ? gmgr_delete_check(&gc->mgr, cstr(r.groups_names[i], a), &g)
                              : KERR_GROUP_AUTHORIZATION_FAILED;
        if (res->error_code || !g) continue;
        int no = 0;
        goffset **all = group_offsets_sorted(g, &no);
        gc_write_tombstones(gc, g->id, all ? no : 0, (const goffset *const *)all, g->generation > 0);
        free(all);
        log_info("kafka.coordinator.group.GroupCoordinator",
                 "[GroupCoordinator %d]: The following groups were deleted: %s. A total of %d offsets were removed.",
                 broker_node_id(b), g->id, no);
        gmgr_remove(&gc->mgr, g);
    }
    KREQ_REPLY(req, DeleteGroupsResponse, &resp);
}

void h_offset_delete(broker *b, kreq *req) {
    OffsetDeleteRequest r;
    if (KREQ_DECODE(req, OffsetDeleteRequest, &r) != 0) return;
    karena *a = &req->arena;
    group_coord *gc = coord(b);
    OffsetDeleteResponse resp;
    OffsetDeleteResponse_init(&resp);
    char *gid = cstr(r.group_id, a);
    int16_t e = authz_allowed_k(req, AZ_OP_DELETE, AZ_RES_GROUP, r.group_id) ? gmgr_validate_group_id(&gc->mgr, gid, true)
                                                                              : KERR_GROUP_AUTHORIZATION_FAILED;
    kgroup *g = e ? NULL : gmgr_get(&gc->mgr, gid);
    if (!e && (!g || g->state == GROUP_DEAD)) e = KERR_GROUP_ID_NOT_FOUND;
    bool consumer = g && g->protocol_type && strcmp(g->protocol_type, "consumer") == 0;
    if (!e && g->state != GROUP_EMPTY && !consumer) e = KERR_NON_EMPTY_GROUP;
    resp.error_code = e;
    if (e) {
        KREQ_REPLY(req, OffsetDeleteResponse, &resp);
        return;
    }
    int nt = r.topics_count > 0 ? r.topics_count : 0;
    resp.topics = karena_calloc(a, (size_t)nt + 1, sizeof *resp.topics);
    int total = 0;
    for (int i = 0; i < nt; i++) total += r.topics[i].partitions_count > 0 ? r.topics[i].partitions_count : 0;
    goffset **removed = calloc((size_t)total + 1, sizeof *removed);
    if (!resp.topics || !removed) {
        free(removed);
        kreq_fail(req, "out of memory");
        return;
    }
    resp.topics_count = nt;
    int nrem = 0;
    for (int i = 0; i < nt; i++) {
        OffsetDeleteRequest_OffsetDeleteRequestTopic *t = &r.topics[i];
        OffsetDeleteResponse_OffsetDeleteResponseTopic *rt = &resp.topics[i];
        OffsetDeleteResponse_OffsetDeleteResponseTopic_init(rt);
        rt->name = t->name;
        int np = t->partitions_count > 0 ? t->partitions_count : 0;
        rt->partitions = karena_calloc(a, (size_t)np + 1, sizeof *rt->partitions);
        if (!rt->partitions) np = 0;
        rt->partitions_count = np;
        char *topic = kstr_dup(t->name, a);
        bool subscribed = g->state != GROUP_EMPTY && group_is_subscribed_to(g, topic);
        for (int k = 0; k < np; k++) {
            OffsetDeleteResponse_OffsetDeleteResponsePartition *rp = &rt->partitions[k];
            OffsetDeleteResponse_OffsetDeleteResponsePartition_init(rp);
            int32_t idx = t->partitions[k].partition_index;
            rp->partition_index = idx;
            bool known;
            if (!partition_exists(b, t->name, idx, &known)) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else if (subscribed) {
                rp->error_code = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
            } else {
                rp->error_code = KERR_NONE;
                group_txn_remove_partition(g, topic, strlen(topic), idx); /* Kafka's removeOffsets */
                goffset *o = group_offset(g, topic, strlen(topic), idx);
                if (o) {
                    goffset *c = calloc(1, sizeof *c);
                    if (c && (c->topic = strdup(o->topic))) {
                        c->partition = idx;
                        removed[nrem++] = c;
                    } else {
                        free(c);
                    }
                    group_offset_remove(g, topic, strlen(topic), idx);
                }
            }
        }
    }
    if (nrem) gc_write_tombstones(gc, g->id, nrem, (const goffset *const *)removed, false);
    for (int i = 0; i < nrem; i++) goffset_free(removed[i]);
    free(removed);
    KREQ_REPLY(req, OffsetDeleteResponse, &resp);
}
