/* gstate.c - the classic group protocol state machine (see gstate.h).
 *
 * The transitions follow Kafka 3.6.1's GroupCoordinator: a join moves the
 * group to PreparingRebalance; the rebalance completes when every known
 * member has rejoined (or the rebalance timeout passes, dropping those that
 * did not); the leader's SyncGroup carries the assignment, which is
 * persisted before the group becomes Stable. Session timers expire members
 * that stop heartbeating.
 */
#include "group/gstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "protocol/errors.h"
#include "protocol/wire.h"
#include "util/log.h"

#define NEW_MEMBER_JOIN_TIMEOUT_MS (5 * 60 * 1000)
#define LOGC "kafka.coordinator.group.GroupCoordinator"

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable", "Dead"};

const char *group_state_name(group_state s) {
    return (unsigned)s < 5 ? state_names[s] : "Unknown";
}

int group_state_parse(const char *name, size_t len) {
    for (int i = 0; i < 5; i++)
        if (strlen(state_names[i]) == len && strncasecmp(state_names[i], name, len) == 0) return i;
    return -1;
}

void gconfig_defaults(gconfig *c) {
    c->min_session_timeout_ms = 6000;
    c->max_session_timeout_ms = 1800000;
    c->max_size = INT32_MAX;
    c->initial_rebalance_delay_ms = 3000;
    c->offset_metadata_max_bytes = 4096;
    c->offsets_retention_ms = 10080LL * 60 * 1000;
}

/* ---- small helpers ---- */

static char *xstrdup(const char *s) { return strdup(s ? s : ""); }

static uint32_t hash_bytes(const char *p, size_t n, uint32_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static bool streq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static int64_t now_ms(gmgr *m) { return m->env.now_ms(m->env.ctx); }

static void transition(gmgr *m, kgroup *g, group_state s) {
    g->state = s;
    g->state_ts = now_ms(m);
}

static void *arm(gmgr *m, gtimer_kind k, kgroup *g, const char *member, int64_t delay) {
    return m->env.timer_arm(m->env.ctx, k, g->id, member, g->generation, delay);
}

static void cancel(gmgr *m, void **handle) {
    if (*handle) m->env.timer_cancel(m->env.ctx, *handle);
    *handle = NULL;
}

/* A member id: "<client or instance id>-<random UUID>", as Kafka makes them. */
static char *new_member_id(const char *prefix) {
    uint8_t u[16];
    if (getrandom(u, sizeof u, 0) != (ssize_t)sizeof u)
        for (int i = 0; i < 16; i++) u[i] = (uint8_t)random();
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    char buf[40];
    snprintf(buf, sizeof buf,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
             u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    size_t n = strlen(prefix) + 1 + strlen(buf) + 1;
    char *id = malloc(n);
    if (id) snprintf(id, n, "%s-%s", prefix, buf);
    return id;
}

/* ---- string lists (pending members, pending syncs, topics) ---- */

static int strlist_find(char **v, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0) return i;
    return -1;
}

static void strlist_add(char ***v, int *n, int *cap, const char *s) {
    if (strlist_find(*v, *n, s) >= 0) return;
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        char **nv = realloc(*v, (size_t)nc * sizeof *nv);
        if (!nv) return;
        *v = nv;
        *cap = nc;
    }
    char *d = strdup(s);
    if (d) (*v)[(*n)++] = d;
}

static bool strlist_remove(char **v, int *n, const char *s) {
    int i = strlist_find(v, *n, s);
    if (i < 0) return false;
    free(v[i]);
    v[i] = v[--*n];
    return true;
}

static void strlist_clear(char **v, int *n) {
    for (int i = 0; i < *n; i++) free(v[i]);
    *n = 0;
}

/* ---- members ---- */

static void protocols_free(gprotocol *p, int n) {
    for (int i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].metadata);
    }
    free(p);
}

static gprotocol *protocols_copy(const gprotocol *p, int n) {
    gprotocol *c = calloc((size_t)(n ? n : 1), sizeof *c);
    if (!c) return NULL;
    for (int i = 0; i < n; i++) {
        c[i].name = xstrdup(p[i].name);
        c[i].metadata_len = p[i].metadata_len > 0 ? p[i].metadata_len : 0;
        c[i].metadata = malloc((size_t)c[i].metadata_len + 1);
        if (c[i].metadata_len) memcpy(c[i].metadata, p[i].metadata, (size_t)c[i].metadata_len);
    }
    return c;
}

static void member_free(gmember *mb) {
    if (!mb) return;
    free(mb->member_id);
    free(mb->instance_id);
    free(mb->client_id);
    free(mb->client_host);
    free(mb->protocol_type);
    protocols_free(mb->protocols, mb->nprotocols);
    free(mb->assignment);
    free(mb);
}

static void member_set_assignment(gmember *mb, const uint8_t *a, int32_t len) {
    free(mb->assignment);
    mb->assignment = NULL;
    mb->assignment_len = 0;
    if (len > 0) {
        mb->assignment = malloc((size_t)len);
        if (mb->assignment) {
            memcpy(mb->assignment, a, (size_t)len);
            mb->assignment_len = len;
        }
    }
}

gmember *group_find_member(const kgroup *g, const char *member_id) {
    for (int i = 0; i < g->nmembers; i++)
        if (strcmp(g->members[i]->member_id, member_id) == 0) return g->members[i];
    return NULL;
}

gmember *group_find_static(const kgroup *g, const char *instance_id) {
    if (!instance_id) return NULL;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->instance_id && strcmp(g->members[i]->instance_id, instance_id) == 0)
            return g->members[i];
    return NULL;
}

const gprotocol *gmember_protocol(const gmember *mb, const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < mb->nprotocols; i++)
        if (strcmp(mb->protocols[i].name, name) == 0) return &mb->protocols[i];
    return NULL;
}

static bool member_matches(const gmember *mb, const gprotocol *p, int n) {
    if (n != mb->nprotocols) return false;
    for (int i = 0; i < n; i++) {
        if (strcmp(p[i].name, mb->protocols[i].name) != 0) return false;
        int32_t l = p[i].metadata_len > 0 ? p[i].metadata_len : 0;
        if (l != mb->protocols[i].metadata_len) return false;
        if (l && memcmp(p[i].metadata, mb->protocols[i].metadata, (size_t)l) != 0) return false;
    }
    return true;
}

/* How many members support protocol `name`. */
static int protocol_support(const kgroup *g, const char *name) {
    int c = 0;
    for (int i = 0; i < g->nmembers; i++)
        if (gmember_protocol(g->members[i], name)) c++;
    return c;
}

/* Kafka's supportsProtocols: an empty group takes any non-empty set; else the
 * type must match and one of the protocols be supported by every member. */
static bool group_supports(const kgroup *g, const char *ptype, const gprotocol *p, int n) {
    if (g->state == GROUP_EMPTY) return ptype && *ptype && n > 0;
    if (!g->protocol_type || !ptype || strcmp(g->protocol_type, ptype) != 0) return false;
    for (int i = 0; i < n; i++)
        if (protocol_support(g, p[i].name) == g->nmembers) return true;
    return false;
}

/* Vote: each member picks its most preferred protocol among those every
 * member supports; the most voted wins (ties: the first one counted). */
static const char *select_protocol(const kgroup *g) {
    const char *best = NULL;
    int best_votes = 0;
    for (int i = 0; i < g->nmembers; i++) {
        const gmember *mb = g->members[i];
        const char *vote = NULL;
        for (int k = 0; k < mb->nprotocols && !vote; k++)
            if (protocol_support(g, mb->protocols[k].name) == g->nmembers) vote = mb->protocols[k].name;
        if (!vote) continue;
        int votes = 0;
        for (int j = 0; j < g->nmembers; j++) {
            const gmember *o = g->members[j];
            for (int k = 0; k < o->nprotocols; k++)
                if (protocol_support(g, o->protocols[k].name) == g->nmembers) {
                    if (strcmp(o->protocols[k].name, vote) == 0) votes++;
                    break;
                }
        }
        if (votes > best_votes) {
            best = vote;
            best_votes = votes;
        }
    }
    return best;
}

static int32_t group_rebalance_timeout(const kgroup *g) {
    int32_t t = 0;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->rebalance_timeout_ms > t) t = g->members[i]->rebalance_timeout_ms;
    return t;
}

static bool all_members_joined(const kgroup *g) {
    return g->nmembers == g->nawaiting_join && g->npending == 0;
}

static int count_static(const kgroup *g) {
    int n = 0;
    for (int i = 0; i < g->nmembers; i++) n += g->members[i]->instance_id != NULL;
    return n;
}

static bool is_leader(const kgroup *g, const char *member_id) {
    return g->leader_id && strcmp(g->leader_id, member_id) == 0;
}

static void set_leader(kgroup *g, const char *id) {
    free(g->leader_id);
    g->leader_id = id ? strdup(id) : NULL;
}

static void group_add_member(kgroup *g, gmember *mb, void *waiter) {
    if (g->nmembers == g->capmembers) {
        int nc = g->capmembers ? g->capmembers * 2 : 4;
        gmember **nm = realloc(g->members, (size_t)nc * sizeof *nm);
        if (!nm) abort(); /* out of memory in the coordinator: nothing sane to do */
        g->members = nm;
        g->capmembers = nc;
    }
    if (g->nmembers == 0) {
        free(g->protocol_type);
        g->protocol_type = xstrdup(mb->protocol_type);
    }
    if (!g->leader_id) set_leader(g, mb->member_id);
    g->members[g->nmembers++] = mb;
    mb->join_waiter = waiter;
    if (waiter) g->nawaiting_join++;
    strlist_remove(g->pending, &g->npending, mb->member_id);
}

/* Unlinks the member (does not free it). */
static void group_unlink_member(gmgr *m, kgroup *g, gmember *mb) {
    int i = 0;
    while (i < g->nmembers && g->members[i] != mb) i++;
    if (i == g->nmembers) return;
    memmove(&g->members[i], &g->members[i + 1], (size_t)(g->nmembers - i - 1) * sizeof *g->members);
    g->nmembers--;
    if (mb->join_waiter) g->nawaiting_join--;
    cancel(m, &mb->timer);
    if (is_leader(g, mb->member_id)) set_leader(g, g->nmembers ? g->members[0]->member_id : NULL);
    strlist_remove(g->pending, &g->npending, mb->member_id);
    strlist_remove(g->pending_sync, &g->npending_sync, mb->member_id);
}

static void invoke_join(gmgr *m, kgroup *g, gmember *mb, const gjoin_result *r) {
    if (!mb->join_waiter) return;
    void *w = mb->join_waiter;
    mb->join_waiter = NULL;
    g->nawaiting_join--;
    m->env.join_done(m->env.ctx, w, r);
}

static bool invoke_sync(gmgr *m, gmember *mb, const gsync_result *r) {
    if (!mb->sync_waiter) return false;
    void *w = mb->sync_waiter;
    mb->sync_waiter = NULL;
    m->env.sync_done(m->env.ctx, w, r);
    return true;
}

static void join_error(gmgr *m, void *waiter, const char *member_id, int16_t err) {
    gjoin_result r = {.error = err, .member_id = member_id ? member_id : "", .generation = -1,
                      .leader_id = ""};
    m->env.join_done(m->env.ctx, waiter, &r);
}

static void sync_error(gmgr *m, void *waiter, int16_t err) {
    gsync_result r = {.error = err};
    m->env.sync_done(m->env.ctx, waiter, &r);
}

/* Re-arm the member's session timer (Kafka's completeAndScheduleNextExpiration). */
static void schedule_expiration(gmgr *m, kgroup *g, gmember *mb, int64_t timeout_ms) {
    mb->heartbeat_satisfied = false;
    cancel(m, &mb->timer);
    mb->timer = arm(m, GTIMER_MEMBER, g, mb->member_id, timeout_ms);
}

static void schedule_heartbeat(gmgr *m, kgroup *g, gmember *mb) {
    schedule_expiration(m, g, mb, mb->session_timeout_ms);
}

static bool member_has_satisfied_heartbeat(const gmember *mb) {
    if (mb->is_new) return mb->heartbeat_satisfied;
    if (mb->join_waiter || mb->sync_waiter) return true;
    return mb->heartbeat_satisfied;
}

/* The members' list sent to the leader, built in a malloc'd array. */
static gjoin_member *current_member_metadata(kgroup *g, int *n) {
    gjoin_member *v = calloc((size_t)(g->nmembers ? g->nmembers : 1), sizeof *v);
    *n = 0;
    if (!v) return NULL;
    for (int i = 0; i < g->nmembers; i++) {
        gmember *mb = g->members[i];
        const gprotocol *p = gmember_protocol(mb, g->protocol_name);
        v[i].member_id = mb->member_id;
        v[i].instance_id = mb->instance_id;
        v[i].metadata = p ? p->metadata : NULL;
        v[i].metadata_len = p ? p->metadata_len : 0;
    }
    *n = g->nmembers;
    return v;
}

static void join_success(gmgr *m, kgroup *g, gmember *mb, const char *leader, bool with_members,
                         bool skip) {
    int n = 0;
    gjoin_member *list = with_members ? current_member_metadata(g, &n) : NULL;
    gjoin_result r = {.error = KERR_NONE,
                      .member_id = mb->member_id,
                      .generation = g->generation,
                      .protocol_type = g->protocol_type,
                      .protocol_name = g->protocol_name,
                      .leader_id = leader ? leader : "",
                      .skip_assignment = skip,
                      .members = list,
                      .nmembers = n};
    invoke_join(m, g, mb, &r);
    free(list);
}

/* ---- subscriptions (ConsumerProtocolSubscription, read as its v0 prefix) ---- */

static void subscriptions_clear(kgroup *g) {
    for (int i = 0; i < g->nsubscribed; i++) free(g->subscribed[i]);
    free(g->subscribed);
    g->subscribed = NULL;
    g->nsubscribed = 0;
    g->subscribed_known = false;
}

void group_update_subscriptions(kgroup *g) {
    subscriptions_clear(g);
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0) return;
    if (g->nmembers == 0) {
        g->subscribed_known = true;
        return;
    }
    if (!g->protocol_name) return;
    int cap = 0;
    for (int i = 0; i < g->nmembers; i++) {
        const gprotocol *p = gmember_protocol(g->members[i], g->protocol_name);
        if (!p) goto unknown;
        kreader r;
        kr_init(&r, p->metadata, (size_t)p->metadata_len);
        (void)kr_i16(&r);
        int32_t n = kr_array_len(&r, false, false, 2);
        if (r.err) goto unknown;
        for (int k = 0; k < n; k++) {
            kstr t = kr_string(&r, false, false);
            if (r.err) goto unknown;
            char *name = strndup(t.p, (size_t)t.len);
            if (!name) goto unknown;
            if (strlist_find(g->subscribed, g->nsubscribed, name) >= 0) {
                free(name);
                continue;
            }
            if (g->nsubscribed == cap) {
                cap = cap ? cap * 2 : 8;
                char **nv = realloc(g->subscribed, (size_t)cap * sizeof *nv);
                if (!nv) {
                    free(name);
                    goto unknown;
                }
                g->subscribed = nv;
            }
            g->subscribed[g->nsubscribed++] = name;
        }
    }
    g->subscribed_known = true;
    return;
unknown:
    subscriptions_clear(g);
}

bool group_is_subscribed_to(const kgroup *g, const char *topic) {
    if (!g->subscribed_known) return true;
    return strlist_find(g->subscribed, g->nsubscribed, topic) >= 0;
}

/* ---- rebalance ---- */

static void complete_join(gmgr *m, kgroup *g);

static void propagate_assignment(gmgr *m, kgroup *g, int16_t err) {
    for (int i = 0; i < g->nmembers; i++) {
        gmember *mb = g->members[i];
        gsync_result r = {.error = err,
                          .protocol_type = err ? NULL : g->protocol_type,
                          .protocol_name = err ? NULL : g->protocol_name,
                          .assignment = mb->assignment,
                          .assignment_len = mb->assignment_len};
        if (invoke_sync(m, mb, &r)) schedule_heartbeat(m, g, mb);
    }
}

static void reset_and_propagate_error(gmgr *m, kgroup *g, int16_t err) {
    for (int i = 0; i < g->nmembers; i++) member_set_assignment(g->members[i], NULL, 0);
    propagate_assignment(m, g, err);
}

static void prepare_rebalance(gmgr *m, kgroup *g, const char *reason) {
    if (g->state == GROUP_COMPLETING_REBALANCE)
        reset_and_propagate_error(m, g, KERR_REBALANCE_IN_PROGRESS);
    strlist_clear(g->pending_sync, &g->npending_sync);
    cancel(m, &g->sync_timer);
    cancel(m, &g->join_timer);
    bool was_empty = g->state == GROUP_EMPTY;
    transition(m, g, GROUP_PREPARING_REBALANCE);
    log_info(LOGC, "[GroupCoordinator %d]: Preparing to rebalance group %s in state PreparingRebalance "
                   "with old generation %d (reason: %s)", m->cfg.node_id,
             g->id, g->generation, reason);
    if (was_empty) {
        int32_t delay = m->cfg.initial_rebalance_delay_ms;
        int32_t rem = group_rebalance_timeout(g) - delay;
        g->join_kind = 1;
        g->join_remaining_ms = rem > 0 ? rem : 0;
        g->join_timer = arm(m, GTIMER_JOIN, g, NULL, delay);
    } else {
        g->join_kind = 2;
        if (all_members_joined(g)) {
            g->join_kind = 0;
            complete_join(m, g);
            return;
        }
        g->join_timer = arm(m, GTIMER_JOIN, g, NULL, group_rebalance_timeout(g));
    }
}

static bool can_rebalance(const kgroup *g) {
    return g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_EMPTY;
}

static void maybe_prepare_rebalance(gmgr *m, kgroup *g, const char *reason) {
    if (can_rebalance(g)) prepare_rebalance(m, g, reason);
}

/* After a join or leave while PreparingRebalance: complete if everybody is in
 * (not during the initial delay, which always runs its course). */
static void try_complete_join(gmgr *m, kgroup *g) {
    if (g->state != GROUP_PREPARING_REBALANCE || g->join_kind != 2) return;
    if (!all_members_joined(g)) return;
    cancel(m, &g->join_timer);
    g->join_kind = 0;
    complete_join(m, g);
}

static void remove_member_and_update(gmgr *m, kgroup *g, gmember *mb, const char *reason) {
    gjoin_result r = {.error = KERR_UNKNOWN_MEMBER_ID, .member_id = "", .generation = -1,
                      .leader_id = ""};
    invoke_join(m, g, mb, &r);
    group_unlink_member(m, g, mb);
    member_free(mb);
    switch (g->state) {
    case GROUP_STABLE:
    case GROUP_COMPLETING_REBALANCE: maybe_prepare_rebalance(m, g, reason); break;
    case GROUP_PREPARING_REBALANCE: try_complete_join(m, g); break;
    default: break;
    }
}

static void remove_pending_and_update(gmgr *m, kgroup *g, const char *member_id) {
    gmember *mb = group_find_member(g, member_id);
    if (mb) {
        group_unlink_member(m, g, mb);
        member_free(mb);
    }
    strlist_remove(g->pending, &g->npending, member_id);
    if (g->state == GROUP_PREPARING_REBALANCE) try_complete_join(m, g);
}

static void init_next_generation(gmgr *m, kgroup *g) {
    g->generation++;
    free(g->protocol_name);
    g->protocol_name = NULL;
    if (g->nmembers) {
        const char *p = select_protocol(g);
        g->protocol_name = p ? strdup(p) : NULL;
        transition(m, g, GROUP_COMPLETING_REBALANCE);
    } else {
        transition(m, g, GROUP_EMPTY);
    }
    group_update_subscriptions(g);
    strlist_clear(g->pending_sync, &g->npending_sync);
}

/* Kafka's maybeElectNewJoinedLeader. */
static bool elect_joined_leader(kgroup *g) {
    if (!g->leader_id) return false;
    gmember *cur = group_find_member(g, g->leader_id);
    if (cur && cur->join_waiter) return true;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->join_waiter) {
            set_leader(g, g->members[i]->member_id);
            return true;
        }
    return false;
}

static void empty_group_stored(void *arg, int16_t error) {
    char *group_id = arg;
    if (error) log_warn(LOGC, "Failed to write empty metadata for group %s: %s", group_id ? group_id : "?",
                        kerr_name(error));
    free(group_id);
}

static void complete_join(gmgr *m, kgroup *g) {
    /* dynamic members that did not rejoin in time are dropped */
    for (int i = 0; i < g->nmembers;) {
        gmember *mb = g->members[i];
        if (!mb->join_waiter && !mb->instance_id) {
            group_unlink_member(m, g, mb);
            member_free(mb);
        } else {
            i++;
        }
    }
    if (g->state == GROUP_DEAD) return;
    if (!elect_joined_leader(g) && g->nmembers > 0) {
        /* nobody rejoined: wait another rebalance timeout for the session
         * timers to clear the group */
        log_error(LOGC, "Group %s could not complete rebalance because no members rejoined", g->id);
        g->join_kind = 2;
        g->join_timer = arm(m, GTIMER_JOIN, g, NULL, group_rebalance_timeout(g));
        return;
    }
    init_next_generation(m, g);
    if (g->state == GROUP_EMPTY) {
        log_info(LOGC, "[GroupCoordinator %d]: Group %s with generation %d is now empty", m->cfg.node_id, g->id,
                 g->generation);
        m->env.store_group(m->env.ctx, g, empty_group_stored, strdup(g->id));
        return;
    }
    log_info(LOGC, "[GroupCoordinator %d]: Stabilized group %s generation %d with %d members", m->cfg.node_id, g->id,
             g->generation, g->nmembers);
    /* copy: join callbacks must not see members shift under them */
    int n = g->nmembers;
    gmember **snap = malloc((size_t)n * sizeof *snap);
    if (!snap) abort();
    memcpy(snap, g->members, (size_t)n * sizeof *snap);
    for (int i = 0; i < n; i++) {
        gmember *mb = snap[i];
        join_success(m, g, mb, g->leader_id, is_leader(g, mb->member_id), false);
        schedule_heartbeat(m, g, mb);
        mb->is_new = false;
        strlist_add(&g->pending_sync, &g->npending_sync, &g->cappending_sync, mb->member_id);
    }
    free(snap);
    cancel(m, &g->sync_timer);
    g->sync_timer = arm(m, GTIMER_SYNC, g, NULL, group_rebalance_timeout(g));
}

/* ---- join ---- */

static gmember *member_new(const gjoin_req *req, const char *member_id) {
    gmember *mb = calloc(1, sizeof *mb);
    if (!mb) return NULL;
    mb->member_id = xstrdup(member_id);
    mb->instance_id = req->instance_id ? strdup(req->instance_id) : NULL;
    mb->client_id = xstrdup(req->client_id);
    mb->client_host = xstrdup(req->client_host);
    mb->session_timeout_ms = req->session_timeout_ms;
    mb->rebalance_timeout_ms = req->rebalance_timeout_ms;
    mb->protocol_type = xstrdup(req->protocol_type);
    mb->protocols = protocols_copy(req->protocols, req->nprotocols);
    mb->nprotocols = req->nprotocols;
    return mb;
}

static void update_member(kgroup *g, gmember *mb, const gjoin_req *req, void *waiter) {
    gprotocol *p = protocols_copy(req->protocols, req->nprotocols);
    if (p) {
        protocols_free(mb->protocols, mb->nprotocols);
        mb->protocols = p;
        mb->nprotocols = req->nprotocols;
    }
    mb->rebalance_timeout_ms = req->rebalance_timeout_ms;
    mb->session_timeout_ms = req->session_timeout_ms;
    if (waiter && !mb->join_waiter) g->nawaiting_join++;
    else if (!waiter && mb->join_waiter) g->nawaiting_join--;
    mb->join_waiter = waiter;
}

static void add_member_and_rebalance(gmgr *m, kgroup *g, const gjoin_req *req, const char *member_id,
                                     void *waiter) {
    gmember *mb = member_new(req, member_id);
    if (!mb) {
        join_error(m, waiter, member_id, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    mb->is_new = true;
    if (g->state == GROUP_PREPARING_REBALANCE && g->generation == 0) g->new_member_added = true;
    group_add_member(g, mb, waiter);
    schedule_expiration(m, g, mb, NEW_MEMBER_JOIN_TIMEOUT_MS);
    maybe_prepare_rebalance(m, g, "Adding new member");
}

/* A static member's new id waits for its GroupMetadataValue to be stored
 * (Kafka's updateStaticMemberAndRebalance callback): what to answer, and
 * what to put back if the write failed. */
typedef struct static_rejoin {
    gmgr *m;
    char *group_id, *instance_id, *old_id, *new_id, *old_leader;
    gprotocol *old_protocols;
    int old_nprotocols;
    int32_t old_rebalance_ms, old_session_ms;
    bool support_skip_assignment;
} static_rejoin;

static void static_rejoin_free(static_rejoin *s) {
    free(s->group_id);
    free(s->instance_id);
    free(s->old_id);
    free(s->new_id);
    free(s->old_leader);
    protocols_free(s->old_protocols, s->old_nprotocols);
    free(s);
}

static void static_member_stored(void *arg, int16_t error) {
    static_rejoin *s = arg;
    gmgr *m = s->m;
    kgroup *g = gmgr_get(m, s->group_id);
    gmember *mb = g && g->state != GROUP_DEAD ? group_find_static(g, s->instance_id) : NULL;
    /* unloaded, fenced again or answered meanwhile: nothing left to do */
    if (!mb || strcmp(mb->member_id, s->new_id) != 0 || !mb->join_waiter) {
        static_rejoin_free(s);
        return;
    }
    if (error) {
        log_warn(LOGC, "Failed to persist metadata for group %s: %s", g->id, kerr_name(error));
        /* revert to the old identity */
        gjoin_req back = {.protocols = s->old_protocols, .nprotocols = s->old_nprotocols,
                          .rebalance_timeout_ms = s->old_rebalance_ms, .session_timeout_ms = s->old_session_ms};
        void *w = mb->join_waiter;
        update_member(g, mb, &back, NULL);
        free(mb->member_id);
        mb->member_id = s->old_id;
        s->old_id = NULL;
        if (s->old_leader && g->leader_id && strcmp(g->leader_id, s->new_id) == 0) set_leader(g, s->old_leader);
        schedule_heartbeat(m, g, mb);
        gjoin_result r = {.error = error, .member_id = "", .generation = g->generation,
                          .protocol_type = g->protocol_type, .protocol_name = g->protocol_name,
                          .leader_id = s->old_leader ? s->old_leader : ""};
        m->env.join_done(m->env.ctx, w, &r);
    } else if (s->support_skip_assignment) {
        bool lead = is_leader(g, mb->member_id);
        join_success(m, g, mb, g->leader_id, lead, lead);
    } else {
        /* the old leader id keeps a pre-v9 leader from re-running the assignor */
        join_success(m, g, mb, s->old_leader, false, false);
    }
    static_rejoin_free(s);
}

static void update_static_member_and_rebalance(gmgr *m, kgroup *g, gmember *mb, const char *new_id,
                                               const gjoin_req *req, void *waiter) {
    char *old_id = mb->member_id;
    char *old_leader = g->leader_id ? strdup(g->leader_id) : NULL;
    /* fence whoever still waits with the old id */
    if (mb->join_waiter) {
        gjoin_result r = {.error = KERR_FENCED_INSTANCE_ID, .member_id = old_id, .generation = -1,
                          .leader_id = ""};
        invoke_join(m, g, mb, &r);
    }
    gsync_result sr = {.error = KERR_FENCED_INSTANCE_ID};
    invoke_sync(m, mb, &sr);
    mb->member_id = strdup(new_id);
    if (old_leader && strcmp(old_leader, old_id) == 0) set_leader(g, new_id);
    schedule_heartbeat(m, g, mb);

    gprotocol *old_protocols = protocols_copy(mb->protocols, mb->nprotocols);
    int old_n = mb->nprotocols;
    int32_t old_rebalance = mb->rebalance_timeout_ms, old_session = mb->session_timeout_ms;
    update_member(g, mb, req, waiter);

    if (g->state == GROUP_STABLE) {
        const char *next = select_protocol(g);
        if (next && g->protocol_name && strcmp(next, g->protocol_name) == 0) {
            static_rejoin *s = calloc(1, sizeof *s);
            if (!s) abort();
            *s = (static_rejoin){.m = m, .group_id = strdup(g->id), .instance_id = strdup(mb->instance_id),
                                 .old_id = old_id, .new_id = strdup(new_id), .old_leader = old_leader,
                                 .old_protocols = old_protocols, .old_nprotocols = old_n,
                                 .old_rebalance_ms = old_rebalance, .old_session_ms = old_session,
                                 .support_skip_assignment = req->support_skip_assignment};
            m->env.store_group(m->env.ctx, g, static_member_stored, s);
            return;
        }
        maybe_prepare_rebalance(m, g, "Group's selectedProtocol will change because static member rejoined");
    } else if (g->state == GROUP_COMPLETING_REBALANCE) {
        prepare_rebalance(m, g, "Updating metadata for static member");
    }
    protocols_free(old_protocols, old_n);
    free(old_id);
    free(old_leader);
}

static bool accept_joining_member(const gmgr *m, const kgroup *g, const char *member_id) {
    const gmember *mb;
    switch (g->state) {
    case GROUP_EMPTY:
    case GROUP_DEAD: return true;
    case GROUP_PREPARING_REBALANCE:
        mb = group_find_member(g, member_id);
        return (mb && mb->join_waiter) || g->nawaiting_join < m->cfg.max_size;
    default: return group_find_member(g, member_id) || g->nmembers < m->cfg.max_size;
    }
}

/* Kafka's validateCurrentMember. */
static int16_t validate_current_member(const kgroup *g, const char *member_id, const char *instance_id) {
    if (instance_id) {
        const gmember *s = group_find_static(g, instance_id);
        if (!s) return KERR_UNKNOWN_MEMBER_ID;
        if (strcmp(s->member_id, member_id) != 0) return KERR_FENCED_INSTANCE_ID;
        return KERR_NONE;
    }
    return group_find_member(g, member_id) ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
}

static void join_new_member(gmgr *m, kgroup *g, const gjoin_req *req, void *waiter) {
    if (g->state == GROUP_DEAD) {
        join_error(m, waiter, "", KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (!group_supports(g, req->protocol_type, req->protocols, req->nprotocols)) {
        join_error(m, waiter, "", KERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    char *id = new_member_id(req->instance_id ? req->instance_id : req->client_id);
    if (!id) {
        join_error(m, waiter, "", KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    if (req->instance_id) {
        gmember *old = group_find_static(g, req->instance_id);
        if (old) update_static_member_and_rebalance(m, g, old, id, req, waiter);
        else add_member_and_rebalance(m, g, req, id, waiter);
    } else if (req->require_known_member_id) {
        strlist_add(&g->pending, &g->npending, &g->cappending, id);
        arm(m, GTIMER_PENDING, g, id, req->session_timeout_ms);
        join_error(m, waiter, id, KERR_MEMBER_ID_REQUIRED);
    } else {
        add_member_and_rebalance(m, g, req, id, waiter);
    }
    free(id);
}

static void join_current_member(gmgr *m, kgroup *g, const gjoin_req *req, void *waiter) {
    const char *mid = req->member_id;
    if (g->state == GROUP_DEAD) {
        join_error(m, waiter, mid, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (!group_supports(g, req->protocol_type, req->protocols, req->nprotocols)) {
        join_error(m, waiter, mid, KERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    if (strlist_find(g->pending, g->npending, mid) >= 0) {
        if (req->instance_id) { /* a pending member is never static */
            join_error(m, waiter, mid, KERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        add_member_and_rebalance(m, g, req, mid, waiter);
        return;
    }
    int16_t e = validate_current_member(g, mid, req->instance_id);
    if (e) {
        join_error(m, waiter, mid, e);
        return;
    }
    gmember *mb = group_find_member(g, mid);
    switch (g->state) {
    case GROUP_PREPARING_REBALANCE:
        update_member(g, mb, req, waiter);
        maybe_prepare_rebalance(m, g, "Member joining group during PreparingRebalance");
        break;
    case GROUP_COMPLETING_REBALANCE:
        if (member_matches(mb, req->protocols, req->nprotocols)) {
            /* the member missed our answer: give it again */
            mb->join_waiter = waiter;
            g->nawaiting_join++;
            join_success(m, g, mb, g->leader_id, is_leader(g, mid), false);
        } else {
            update_member(g, mb, req, waiter);
            maybe_prepare_rebalance(m, g, "Updating metadata for member during CompletingRebalance");
        }
        break;
    case GROUP_STABLE:
        if (is_leader(g, mid) || !member_matches(mb, req->protocols, req->nprotocols)) {
            update_member(g, mb, req, waiter);
            maybe_prepare_rebalance(m, g, is_leader(g, mid) ? "Leader re-joining group during Stable"
                                                             : "Updating metadata for member during Stable");
        } else {
            mb->join_waiter = waiter;
            g->nawaiting_join++;
            join_success(m, g, mb, g->leader_id, false, false);
        }
        break;
    default:
        join_error(m, waiter, mid, KERR_UNKNOWN_MEMBER_ID);
        break;
    }
}

int16_t gmgr_validate_group_id(const gmgr *m, const char *group_id, bool allow_empty) {
    if (!group_id || (!allow_empty && !*group_id)) return KERR_INVALID_GROUP_ID;
    /* Kafka's validateGroupStatus order: loading before ownership */
    if (m->loading || (m->env.group_loading && m->env.group_loading(m->env.ctx, group_id)))
        return KERR_COORDINATOR_LOAD_IN_PROGRESS;
    if (m->env.owns_group && !m->env.owns_group(m->env.ctx, group_id)) return KERR_NOT_COORDINATOR;
    return KERR_NONE;
}

void gmgr_join(gmgr *m, const gjoin_req *req, void *waiter) {
    int16_t e = gmgr_validate_group_id(m, req->group_id, false);
    if (e) {
        join_error(m, waiter, req->member_id, e);
        return;
    }
    if (req->session_timeout_ms < m->cfg.min_session_timeout_ms ||
        req->session_timeout_ms > m->cfg.max_session_timeout_ms) {
        join_error(m, waiter, req->member_id, KERR_INVALID_SESSION_TIMEOUT);
        return;
    }
    bool unknown = !req->member_id || !*req->member_id;
    kgroup *g = unknown ? gmgr_get_or_create(m, req->group_id) : gmgr_get(m, req->group_id);
    if (!g) {
        join_error(m, waiter, req->member_id, KERR_UNKNOWN_MEMBER_ID);
        return;
    }
    if (!accept_joining_member(m, g, unknown ? "" : req->member_id)) {
        /* Kafka drops the refused member outright (no rebalance of its own) */
        gmember *mb = unknown ? NULL : group_find_member(g, req->member_id);
        if (mb) {
            gjoin_result r = {.error = KERR_UNKNOWN_MEMBER_ID, .member_id = "", .generation = -1, .leader_id = ""};
            invoke_join(m, g, mb, &r);
            group_unlink_member(m, g, mb);
            member_free(mb);
        } else if (!unknown) {
            strlist_remove(g->pending, &g->npending, req->member_id);
        }
        join_error(m, waiter, "", KERR_GROUP_MAX_SIZE_REACHED);
        try_complete_join(m, g);
        return;
    }
    if (unknown) join_new_member(m, g, req, waiter);
    else join_current_member(m, g, req, waiter);
    try_complete_join(m, g);
}

/* ---- sync ---- */

static void remove_pending_sync(gmgr *m, kgroup *g, const char *member_id) {
    strlist_remove(g->pending_sync, &g->npending_sync, member_id);
    if (g->npending_sync == 0) cancel(m, &g->sync_timer);
}

/* The leader's assignment is answered once stored (Kafka's doSyncGroup
 * storeGroup callback); the group may have moved on or gone meanwhile. */
typedef struct assignment_store {
    gmgr *m;
    char *group_id;
    int32_t generation;
} assignment_store;

static void assignment_stored(void *arg, int16_t error) {
    assignment_store *st = arg;
    gmgr *m = st->m;
    kgroup *g = gmgr_get(m, st->group_id);
    if (g && g->state == GROUP_COMPLETING_REBALANCE && g->generation == st->generation) {
        if (error) {
            reset_and_propagate_error(m, g, error);
            maybe_prepare_rebalance(m, g, "Error storing group assignment during SyncGroup");
        } else {
            transition(m, g, GROUP_STABLE);
            propagate_assignment(m, g, KERR_NONE);
        }
    }
    free(st->group_id);
    free(st);
}

void gmgr_sync(gmgr *m, const gsync_req *req, void *waiter) {
    int16_t e = gmgr_validate_group_id(m, req->group_id, false);
    if (e == KERR_COORDINATOR_LOAD_IN_PROGRESS) e = KERR_REBALANCE_IN_PROGRESS;
    if (e) {
        sync_error(m, waiter, e);
        return;
    }
    kgroup *g = gmgr_get(m, req->group_id);
    if (!g) {
        sync_error(m, waiter, KERR_UNKNOWN_MEMBER_ID);
        return;
    }
    if (g->state == GROUP_DEAD) {
        sync_error(m, waiter, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    e = validate_current_member(g, req->member_id, req->instance_id);
    if (!e && req->generation != g->generation) e = KERR_ILLEGAL_GENERATION;
    if (!e && req->protocol_type && !streq(g->protocol_type, req->protocol_type))
        e = KERR_INCONSISTENT_GROUP_PROTOCOL;
    if (!e && req->protocol_name && !streq(g->protocol_name, req->protocol_name))
        e = KERR_INCONSISTENT_GROUP_PROTOCOL;
    if (e) {
        sync_error(m, waiter, e);
        return;
    }
    gmember *mb = group_find_member(g, req->member_id);
    switch (g->state) {
    case GROUP_EMPTY: sync_error(m, waiter, KERR_UNKNOWN_MEMBER_ID); return;
    case GROUP_PREPARING_REBALANCE: sync_error(m, waiter, KERR_REBALANCE_IN_PROGRESS); return;
    case GROUP_COMPLETING_REBALANCE: {
        if (mb->sync_waiter) { /* a duplicate: the older request is superseded */
            gsync_result r = {.error = KERR_REBALANCE_IN_PROGRESS};
            invoke_sync(m, mb, &r);
        }
        mb->sync_waiter = waiter;
        remove_pending_sync(m, g, mb->member_id);
        if (!is_leader(g, mb->member_id)) return;
        log_info(LOGC, "[GroupCoordinator %d]: Assignment received from leader %s for group %s for "
                       "generation %d. The group has %d members, %d of which are static.", m->cfg.node_id,
                 mb->member_id, g->id, g->generation, g->nmembers, count_static(g));
        for (int i = 0; i < g->nmembers; i++) {
            gmember *o = g->members[i];
            const gassignment *a = NULL;
            for (int k = 0; k < req->nassignments; k++)
                if (strcmp(req->assignments[k].member_id, o->member_id) == 0) a = &req->assignments[k];
            member_set_assignment(o, a ? a->assignment : NULL, a ? a->assignment_len : 0);
        }
        assignment_store *st = malloc(sizeof *st);
        if (!st || !(st->group_id = strdup(g->id))) abort();
        st->m = m;
        st->generation = g->generation;
        m->env.store_group(m->env.ctx, g, assignment_stored, st);
        return;
    }
    case GROUP_STABLE: {
        remove_pending_sync(m, g, mb->member_id);
        gsync_result r = {.error = KERR_NONE, .protocol_type = g->protocol_type,
                          .protocol_name = g->protocol_name, .assignment = mb->assignment,
                          .assignment_len = mb->assignment_len};
        m->env.sync_done(m->env.ctx, waiter, &r);
        schedule_heartbeat(m, g, mb);
        return;
    }
    default: sync_error(m, waiter, KERR_COORDINATOR_NOT_AVAILABLE); return;
    }
}

/* ---- heartbeat, leave ---- */

int16_t gmgr_heartbeat(gmgr *m, const char *group_id, const char *member_id, const char *instance_id,
                       int32_t generation) {
    int16_t e = gmgr_validate_group_id(m, group_id, false);
    if (e == KERR_COORDINATOR_LOAD_IN_PROGRESS) return KERR_NONE;
    if (e) return e;
    kgroup *g = gmgr_get(m, group_id);
    if (!g) return KERR_UNKNOWN_MEMBER_ID;
    if (g->state == GROUP_DEAD) return KERR_COORDINATOR_NOT_AVAILABLE;
    e = validate_current_member(g, member_id, instance_id);
    if (e) return e;
    if (generation != g->generation) return KERR_ILLEGAL_GENERATION;
    gmember *mb = group_find_member(g, member_id);
    switch (g->state) {
    case GROUP_EMPTY: return KERR_UNKNOWN_MEMBER_ID;
    case GROUP_COMPLETING_REBALANCE:
    case GROUP_STABLE: schedule_heartbeat(m, g, mb); return KERR_NONE;
    case GROUP_PREPARING_REBALANCE: schedule_heartbeat(m, g, mb); return KERR_REBALANCE_IN_PROGRESS;
    default: return KERR_COORDINATOR_NOT_AVAILABLE;
    }
}

int16_t gmgr_leave(gmgr *m, const char *group_id, int n, const char *const *member_ids,
                   const char *const *instance_ids, int16_t *member_errors) {
    int16_t e = gmgr_validate_group_id(m, group_id, false);
    if (e) return e;
    kgroup *g = gmgr_get(m, group_id);
    if (!g) {
        for (int i = 0; i < n; i++) member_errors[i] = KERR_UNKNOWN_MEMBER_ID;
        return KERR_NONE;
    }
    if (g->state == GROUP_DEAD) return KERR_COORDINATOR_NOT_AVAILABLE;
    for (int i = 0; i < n; i++) {
        const char *mid = member_ids[i] ? member_ids[i] : "";
        const char *iid = instance_ids ? instance_ids[i] : NULL;
        if (!*mid) {
            gmember *s = group_find_static(g, iid);
            if (s) {
                log_info(LOGC, "[GroupCoordinator %d]: Member %s has left group %s through explicit "
                               "`LeaveGroup` request", m->cfg.node_id,
                         s->member_id, g->id);
                remove_member_and_update(m, g, s, "Removing member on LeaveGroup");
                member_errors[i] = KERR_NONE;
            } else {
                member_errors[i] = KERR_UNKNOWN_MEMBER_ID;
            }
        } else if (strlist_find(g->pending, g->npending, mid) >= 0) {
            remove_pending_and_update(m, g, mid);
            member_errors[i] = KERR_NONE;
        } else {
            member_errors[i] = validate_current_member(g, mid, iid);
            if (!member_errors[i]) {
                log_info(LOGC, "[GroupCoordinator %d]: Member %s has left group %s through explicit "
                               "`LeaveGroup` request", m->cfg.node_id,
                         mid, g->id);
                remove_member_and_update(m, g, group_find_member(g, mid), "Removing member on LeaveGroup");
            }
        }
    }
    return KERR_NONE;
}

/* ---- offsets: validation ---- */

int16_t gmgr_commit_check(gmgr *m, const char *group_id, const char *member_id,
                          const char *instance_id, int32_t generation, kgroup **out_group) {
    *out_group = NULL;
    int16_t e = gmgr_validate_group_id(m, group_id, true);
    if (e) return e;
    if (!member_id) member_id = "";
    kgroup *g = gmgr_get(m, group_id);
    if (!g) {
        if (generation >= 0) return KERR_ILLEGAL_GENERATION;
        g = gmgr_get_or_create(m, group_id);
        if (!g) return KERR_UNKNOWN_SERVER_ERROR;
    }
    if (g->state == GROUP_DEAD) return KERR_COORDINATOR_NOT_AVAILABLE;
    if (generation < 0 && g->state == GROUP_EMPTY) {
        /* admin client or a consumer without group management */
    } else if (generation >= 0 || *member_id || instance_id) {
        e = validate_current_member(g, member_id, instance_id);
        if (e) return e;
        if (generation != g->generation) return KERR_ILLEGAL_GENERATION;
    } else if (g->state != GROUP_EMPTY) {
        return KERR_UNKNOWN_MEMBER_ID;
    }
    switch (g->state) {
    case GROUP_EMPTY: break;
    case GROUP_STABLE:
    case GROUP_PREPARING_REBALANCE: {
        gmember *mb = group_find_member(g, member_id);
        if (mb) schedule_heartbeat(m, g, mb);
        break;
    }
    case GROUP_COMPLETING_REBALANCE: return KERR_REBALANCE_IN_PROGRESS;
    default: return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    *out_group = g;
    return KERR_NONE;
}

int16_t gmgr_txn_commit_check(gmgr *m, const char *group_id, const char *member_id,
                              const char *instance_id, int32_t generation, kgroup **out_group) {
    *out_group = NULL;
    int16_t e = gmgr_validate_group_id(m, group_id, false);
    if (e) return e;
    if (!member_id) member_id = "";
    kgroup *g = gmgr_get_or_create(m, group_id);
    if (!g) return KERR_UNKNOWN_SERVER_ERROR;
    if (g->state == GROUP_DEAD) return KERR_COORDINATOR_NOT_AVAILABLE;
    if (!(generation < 0 && g->state == GROUP_EMPTY) && (generation >= 0 || *member_id || instance_id)) {
        e = validate_current_member(g, member_id, instance_id);
        if (e) return e;
        if (generation != g->generation) return KERR_ILLEGAL_GENERATION;
    }
    *out_group = g;
    return KERR_NONE;
}

int16_t gmgr_delete_check(gmgr *m, const char *group_id, kgroup **out_group) {
    *out_group = NULL;
    int16_t e = gmgr_validate_group_id(m, group_id, true);
    if (e) return e;
    kgroup *g = gmgr_get(m, group_id);
    if (!g || g->state == GROUP_DEAD) return KERR_GROUP_ID_NOT_FOUND;
    if (g->state != GROUP_EMPTY) return KERR_NON_EMPTY_GROUP;
    transition(m, g, GROUP_DEAD);
    *out_group = g;
    return KERR_NONE;
}

/* ---- timers ---- */

void gmgr_timer_fired(gmgr *m, gtimer_kind kind, const char *group_id, const char *member_id,
                      int32_t generation) {
    kgroup *g = gmgr_get(m, group_id);
    if (!g || g->state == GROUP_DEAD) return;
    switch (kind) {
    case GTIMER_MEMBER: {
        gmember *mb = member_id ? group_find_member(g, member_id) : NULL;
        if (!mb) return;
        mb->timer = NULL; /* this handle has fired */
        if (!member_has_satisfied_heartbeat(mb)) {
            log_info(LOGC, "[GroupCoordinator %d]: Member %s in group %s has failed, removing it from "
                           "the group", m->cfg.node_id,
                     mb->member_id, g->id);
            remove_member_and_update(m, g, mb, "removing member on heartbeat expiration");
        }
        return;
    }
    case GTIMER_PENDING:
        if (member_id && strlist_find(g->pending, g->npending, member_id) >= 0)
            remove_pending_and_update(m, g, member_id);
        return;
    case GTIMER_JOIN:
        g->join_timer = NULL;
        if (g->state != GROUP_PREPARING_REBALANCE) return;
        if (g->join_kind == 1 && g->new_member_added && g->join_remaining_ms != 0) {
            /* new members keep arriving: wait a little longer, within the rebalance timeout */
            int32_t cfg = m->cfg.initial_rebalance_delay_ms;
            int32_t delay = cfg < g->join_remaining_ms ? cfg : g->join_remaining_ms;
            int32_t rem = g->join_remaining_ms - delay;
            g->new_member_added = false;
            g->join_remaining_ms = rem > 0 ? rem : 0;
            g->join_timer = arm(m, GTIMER_JOIN, g, NULL, delay);
            return;
        }
        g->join_kind = 0;
        complete_join(m, g);
        return;
    case GTIMER_SYNC:
        g->sync_timer = NULL;
        if (generation != g->generation) return;
        if (g->state != GROUP_COMPLETING_REBALANCE && g->state != GROUP_STABLE) return;
        if (g->npending_sync == 0) return;
        while (g->npending_sync > 0) {
            char *id = strdup(g->pending_sync[0]);
            strlist_remove(g->pending_sync, &g->npending_sync, g->pending_sync[0]);
            gmember *mb = id ? group_find_member(g, id) : NULL;
            if (mb) {
                group_unlink_member(m, g, mb);
                member_free(mb);
            }
            free(id);
        }
        prepare_rebalance(m, g, "Removing members on pending sync request expiration");
        return;
    }
}

/* ---- manager ---- */

int gmgr_init(gmgr *m, const gconfig *cfg, const genv *env) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->env = *env;
    m->nbuckets = 256;
    m->buckets = calloc((size_t)m->nbuckets, sizeof *m->buckets);
    return m->buckets ? 0 : -1;
}

static void offsets_free_all(kgroup *g) {
    for (int b = 0; b < g->nobuckets; b++) {
        goffset *o = g->obuckets[b];
        while (o) {
            goffset *n = o->next;
            goffset_free(o);
            o = n;
        }
    }
    free(g->obuckets);
    g->obuckets = NULL;
    g->nobuckets = 0;
    g->noffsets = 0;
}

static void group_free(gmgr *m, kgroup *g) {
    cancel(m, &g->join_timer);
    cancel(m, &g->sync_timer);
    for (int i = 0; i < g->nmembers; i++) {
        cancel(m, &g->members[i]->timer);
        member_free(g->members[i]);
    }
    free(g->members);
    strlist_clear(g->pending, &g->npending);
    free(g->pending);
    strlist_clear(g->pending_sync, &g->npending_sync);
    free(g->pending_sync);
    subscriptions_clear(g);
    offsets_free_all(g);
    while (g->txn) {
        gtxn_offsets *t = g->txn;
        g->txn = t->next;
        while (t->offsets) {
            goffset *o = t->offsets;
            t->offsets = o->next;
            goffset_free(o);
        }
        free(t);
    }
    free(g->id);
    free(g->protocol_type);
    free(g->protocol_name);
    free(g->leader_id);
    free(g);
}

static uint32_t group_bucket(const gmgr *m, const char *id) {
    return hash_bytes(id, strlen(id), 2166136261u) % (uint32_t)m->nbuckets;
}

kgroup *gmgr_get(gmgr *m, const char *group_id) {
    if (!group_id) return NULL;
    for (kgroup *g = m->buckets[group_bucket(m, group_id)]; g; g = g->next)
        if (strcmp(g->id, group_id) == 0) return g;
    return NULL;
}

static void gmgr_grow(gmgr *m) {
    int nb = m->nbuckets * 2;
    kgroup **nbk = calloc((size_t)nb, sizeof *nbk);
    if (!nbk) return;
    for (int b = 0; b < m->nbuckets; b++) {
        kgroup *g = m->buckets[b];
        while (g) {
            kgroup *n = g->next;
            uint32_t h = hash_bytes(g->id, strlen(g->id), 2166136261u) % (uint32_t)nb;
            g->next = nbk[h];
            nbk[h] = g;
            g = n;
        }
    }
    free(m->buckets);
    m->buckets = nbk;
    m->nbuckets = nb;
}

kgroup *gmgr_get_or_create(gmgr *m, const char *group_id) {
    kgroup *g = gmgr_get(m, group_id);
    if (g) return g;
    if (m->ngroups >= m->nbuckets) gmgr_grow(m);
    g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->id = strdup(group_id);
    if (!g->id) {
        free(g);
        return NULL;
    }
    g->state = GROUP_EMPTY;
    g->state_ts = now_ms(m);
    uint32_t b = group_bucket(m, group_id);
    g->next = m->buckets[b];
    m->buckets[b] = g;
    m->ngroups++;
    return g;
}

void gmgr_remove(gmgr *m, kgroup *g) {
    kgroup **pp = &m->buckets[group_bucket(m, g->id)];
    while (*pp && *pp != g) pp = &(*pp)->next;
    if (*pp) {
        *pp = g->next;
        m->ngroups--;
    }
    group_free(m, g);
}

void gmgr_unload_group(gmgr *m, kgroup *g) {
    log_info(LOGC, "Unloading group metadata for %s with generation %d", g->id, g->generation);
    transition(m, g, GROUP_DEAD);
    /* Kafka answers joins in PreparingRebalance and syncs in Stable /
     * CompletingRebalance; the group is freed here, so every parked answer
     * goes out (a join is only parked in PreparingRebalance anyway, or
     * while a static member's new id is being stored). */
    for (int i = 0; i < g->nmembers; i++) {
        gmember *mb = g->members[i];
        gjoin_result r = {.error = KERR_NOT_COORDINATOR, .member_id = mb->member_id, .generation = -1,
                          .leader_id = ""};
        invoke_join(m, g, mb, &r);
        gsync_result sr = {.error = KERR_NOT_COORDINATOR};
        invoke_sync(m, mb, &sr);
    }
    gmgr_remove(m, g);
}

kgroup *gmgr_iter(gmgr *m, int *bucket, kgroup **cursor) {
    kgroup *g = *cursor ? (*cursor)->next : NULL;
    while (!g && *bucket < m->nbuckets) g = m->buckets[(*bucket)++];
    *cursor = g;
    return g;
}

void gmgr_shutdown(gmgr *m) {
    for (int b = 0; b < m->nbuckets; b++)
        for (kgroup *g = m->buckets[b]; g; g = g->next) {
            for (int i = 0; i < g->nmembers; i++) {
                gmember *mb = g->members[i];
                gjoin_result r = {.error = KERR_NOT_COORDINATOR, .member_id = mb->member_id,
                                  .generation = -1, .leader_id = ""};
                invoke_join(m, g, mb, &r);
                gsync_result sr = {.error = KERR_NOT_COORDINATOR};
                invoke_sync(m, mb, &sr);
                cancel(m, &mb->timer);
            }
            cancel(m, &g->join_timer);
            cancel(m, &g->sync_timer);
        }
}

void gmgr_free(gmgr *m) {
    for (int b = 0; b < m->nbuckets; b++) {
        kgroup *g = m->buckets[b];
        while (g) {
            kgroup *n = g->next;
            group_free(m, g);
            g = n;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->ngroups = 0;
}

/* ---- loading ---- */

void group_load_reset(kgroup *g, const char *protocol_type, int32_t generation,
                      const char *protocol_name, const char *leader, int64_t state_ts) {
    for (int i = 0; i < g->nmembers; i++) member_free(g->members[i]);
    g->nmembers = 0;
    g->nawaiting_join = 0;
    free(g->protocol_type);
    g->protocol_type = protocol_type && *protocol_type ? strdup(protocol_type) : NULL;
    g->generation = generation;
    free(g->protocol_name);
    g->protocol_name = protocol_name ? strdup(protocol_name) : NULL;
    set_leader(g, leader);
    g->state_ts = state_ts;
    g->state = GROUP_EMPTY;
}

gmember *group_load_member(kgroup *g, const char *member_id, const char *instance_id,
                           const char *client_id, const char *client_host,
                           int32_t rebalance_timeout_ms, int32_t session_timeout_ms,
                           const char *protocol_name, const uint8_t *subscription, int32_t sub_len,
                           const uint8_t *assignment, int32_t assign_len) {
    gprotocol p = {.name = (char *)(protocol_name ? protocol_name : ""),
                   .metadata = (uint8_t *)subscription,
                   .metadata_len = sub_len};
    gjoin_req req = {.member_id = member_id, .instance_id = instance_id, .client_id = client_id,
                     .client_host = client_host, .session_timeout_ms = session_timeout_ms,
                     .rebalance_timeout_ms = rebalance_timeout_ms,
                     .protocol_type = g->protocol_type, .protocols = &p, .nprotocols = 1};
    gmember *mb = member_new(&req, member_id);
    if (!mb) return NULL;
    member_set_assignment(mb, assignment, assign_len);
    char *keep_leader = g->leader_id ? strdup(g->leader_id) : NULL;
    group_add_member(g, mb, NULL);
    set_leader(g, keep_leader); /* the stored leader, not the first member */
    free(keep_leader);
    return mb;
}

void gmgr_group_loaded(gmgr *m, kgroup *g) {
    g->state = g->nmembers ? GROUP_STABLE : GROUP_EMPTY;
    group_update_subscriptions(g);
    for (int i = 0; i < g->nmembers; i++) schedule_heartbeat(m, g, g->members[i]);
    if (g->nmembers > m->cfg.max_size)
        prepare_rebalance(m, g, "Freshly-loaded group is over capacity");
}

/* ---- committed offsets ---- */

static uint32_t offset_hash(const char *topic, size_t len, int32_t partition) {
    uint32_t h = hash_bytes(topic, len, 2166136261u);
    return (h ^ (uint32_t)partition) * 16777619u;
}

goffset *group_offset(const kgroup *g, const char *topic, size_t len, int32_t partition) {
    if (!g->nobuckets) return NULL;
    for (goffset *o = g->obuckets[offset_hash(topic, len, partition) % (uint32_t)g->nobuckets]; o;
         o = o->next)
        if (o->partition == partition && strlen(o->topic) == len && memcmp(o->topic, topic, len) == 0)
            return o;
    return NULL;
}

static void offsets_grow(kgroup *g) {
    int nb = g->nobuckets ? g->nobuckets * 2 : 16;
    goffset **nbk = calloc((size_t)nb, sizeof *nbk);
    if (!nbk) return;
    for (int b = 0; b < g->nobuckets; b++) {
        goffset *o = g->obuckets[b];
        while (o) {
            goffset *n = o->next;
            uint32_t h = offset_hash(o->topic, strlen(o->topic), o->partition) % (uint32_t)nb;
            o->next = nbk[h];
            nbk[h] = o;
            o = n;
        }
    }
    free(g->obuckets);
    g->obuckets = nbk;
    g->nobuckets = nb;
}

goffset *group_offset_put(kgroup *g, const char *topic, size_t len, int32_t partition, int64_t offset,
                          int32_t leader_epoch, const char *metadata, size_t metadata_len,
                          int64_t commit_ts, int64_t expire_ts) {
    char *md = metadata ? strndup(metadata, metadata_len) : strdup("");
    if (!md) return NULL;
    goffset *o = group_offset(g, topic, len, partition);
    if (!o) {
        if (g->noffsets >= g->nobuckets) offsets_grow(g);
        if (!g->nobuckets) {
            free(md);
            return NULL;
        }
        o = calloc(1, sizeof *o);
        if (!o || !(o->topic = strndup(topic, len))) {
            free(o);
            free(md);
            return NULL;
        }
        o->partition = partition;
        uint32_t h = offset_hash(topic, len, partition) % (uint32_t)g->nobuckets;
        o->next = g->obuckets[h];
        g->obuckets[h] = o;
        g->noffsets++;
    }
    free(o->metadata);
    o->metadata = md;
    o->offset = offset;
    o->leader_epoch = leader_epoch;
    o->commit_ts = commit_ts;
    o->expire_ts = expire_ts;
    return o;
}

static goffset *offset_unlink(kgroup *g, const char *topic, size_t len, int32_t partition) {
    if (!g->nobuckets) return NULL;
    goffset **pp = &g->obuckets[offset_hash(topic, len, partition) % (uint32_t)g->nobuckets];
    for (; *pp; pp = &(*pp)->next) {
        goffset *o = *pp;
        if (o->partition == partition && strlen(o->topic) == len && memcmp(o->topic, topic, len) == 0) {
            *pp = o->next;
            g->noffsets--;
            return o;
        }
    }
    return NULL;
}

bool group_offset_remove(kgroup *g, const char *topic, size_t len, int32_t partition) {
    goffset *o = offset_unlink(g, topic, len, partition);
    goffset_free(o);
    return o != NULL;
}

void goffset_free(goffset *o) {
    if (!o) return;
    free(o->topic);
    free(o->metadata);
    free(o);
}

static int offset_cmp(const void *a, const void *b) {
    const goffset *x = *(const goffset *const *)a, *y = *(const goffset *const *)b;
    int c = strcmp(x->topic, y->topic);
    if (c) return c;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

goffset **group_offsets_sorted(const kgroup *g, int *n) {
    goffset **v = malloc((size_t)(g->noffsets ? g->noffsets : 1) * sizeof *v);
    *n = 0;
    if (!v) return NULL;
    for (int b = 0; b < g->nobuckets; b++)
        for (goffset *o = g->obuckets[b]; o; o = o->next) v[(*n)++] = o;
    qsort(v, (size_t)*n, sizeof *v, offset_cmp);
    return v;
}

goffset **group_expire_offsets(kgroup *g, int64_t now, int64_t retention_ms, int *n) {
    *n = 0;
    int mode; /* 0 none, 1 empty group (base: state time), 2 stable consumer (unsubscribed), 3 simple */
    if (g->protocol_type && g->state == GROUP_EMPTY) mode = 1;
    else if (g->protocol_type && strcmp(g->protocol_type, "consumer") == 0 && g->subscribed_known &&
             g->state == GROUP_STABLE)
        mode = 2;
    else if (!g->protocol_type) mode = 3;
    else mode = 0;
    if (!mode || !g->noffsets) return NULL;
    int cnt = 0;
    goffset **all = group_offsets_sorted(g, &cnt);
    if (!all) return NULL;
    int k = 0;
    for (int i = 0; i < cnt; i++) {
        goffset *o = all[i];
        if (mode == 2 && strlist_find(g->subscribed, g->nsubscribed, o->topic) >= 0) continue;
        bool expired;
        if (o->expire_ts >= 0) {
            expired = now >= o->expire_ts;
        } else {
            int64_t base = (mode == 1 && g->state_ts >= 0) ? g->state_ts : o->commit_ts;
            expired = now - base >= retention_ms;
        }
        if (expired) all[k++] = o;
    }
    for (int i = 0; i < k; i++) offset_unlink(g, all[i]->topic, strlen(all[i]->topic), all[i]->partition);
    *n = k;
    if (!k) {
        free(all);
        return NULL;
    }
    return all;
}

/* ---- transactional offsets ---- */

static gtxn_offsets *txn_producer(const kgroup *g, int64_t producer_id) {
    for (gtxn_offsets *t = g->txn; t; t = t->next)
        if (t->producer_id == producer_id) return t;
    return NULL;
}

static bool offset_is(const goffset *o, const char *topic, size_t len, int32_t partition) {
    return o->partition == partition && strlen(o->topic) == len && memcmp(o->topic, topic, len) == 0;
}

goffset *group_txn_offset(const kgroup *g, int64_t producer_id, const char *topic, size_t len,
                          int32_t partition) {
    gtxn_offsets *t = txn_producer(g, producer_id);
    for (goffset *o = t ? t->offsets : NULL; o; o = o->next)
        if (offset_is(o, topic, len, partition)) return o;
    return NULL;
}

goffset *group_txn_offset_put(kgroup *g, int64_t producer_id, const char *topic, size_t len,
                              int32_t partition, int64_t offset, int32_t leader_epoch,
                              const char *metadata, size_t metadata_len, int64_t commit_ts,
                              int64_t expire_ts, int64_t log_offset) {
    char *md = metadata ? strndup(metadata, metadata_len) : strdup("");
    if (!md) return NULL;
    gtxn_offsets *t = txn_producer(g, producer_id);
    if (!t) {
        if (!(t = calloc(1, sizeof *t))) {
            free(md);
            return NULL;
        }
        t->producer_id = producer_id;
        t->next = g->txn;
        g->txn = t;
    }
    goffset *o = group_txn_offset(g, producer_id, topic, len, partition);
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o || !(o->topic = strndup(topic, len))) {
            free(o);
            free(md);
            return NULL;
        }
        o->partition = partition;
        o->next = t->offsets;
        t->offsets = o;
    }
    free(o->metadata);
    o->metadata = md;
    o->offset = offset;
    o->leader_epoch = leader_epoch;
    o->commit_ts = commit_ts;
    o->expire_ts = expire_ts;
    o->log_offset = log_offset;
    return o;
}

/* Unlink a producer's entry from the group and free it (offsets too). */
static void txn_producer_drop(kgroup *g, gtxn_offsets *t) {
    for (gtxn_offsets **pp = &g->txn; *pp; pp = &(*pp)->next) {
        if (*pp != t) continue;
        *pp = t->next;
        break;
    }
    while (t->offsets) {
        goffset *o = t->offsets;
        t->offsets = o->next;
        goffset_free(o);
    }
    free(t);
}

void group_txn_offset_remove(kgroup *g, int64_t producer_id, const char *topic, size_t len,
                             int32_t partition) {
    gtxn_offsets *t = txn_producer(g, producer_id);
    if (!t) return;
    for (goffset **pp = &t->offsets; *pp; pp = &(*pp)->next) {
        goffset *o = *pp;
        if (!offset_is(o, topic, len, partition)) continue;
        *pp = o->next;
        goffset_free(o);
        break;
    }
    if (!t->offsets) txn_producer_drop(g, t); /* Kafka removes the producer's empty map */
}

void group_txn_remove_partition(kgroup *g, const char *topic, size_t len, int32_t partition) {
    gtxn_offsets *t = g->txn;
    while (t) {
        gtxn_offsets *next = t->next; /* t may be freed with its last offset */
        group_txn_offset_remove(g, t->producer_id, topic, len, partition);
        t = next;
    }
}

bool group_txn_has_producer(const kgroup *g, int64_t producer_id) { return txn_producer(g, producer_id) != NULL; }

bool group_txn_pending_for(const kgroup *g, const char *topic, size_t len, int32_t partition) {
    for (gtxn_offsets *t = g->txn; t; t = t->next)
        for (goffset *o = t->offsets; o; o = o->next)
            if (offset_is(o, topic, len, partition)) return true;
    return false;
}

int group_txn_complete(kgroup *g, int64_t producer_id, bool commit) {
    gtxn_offsets *t = txn_producer(g, producer_id);
    if (!t) return 0;
    int n = 0;
    for (goffset *o = commit ? t->offsets : NULL; o; o = o->next) {
        if (o->log_offset < 0) continue; /* never appended: nothing to commit */
        size_t len = strlen(o->topic);
        goffset *cur = group_offset(g, o->topic, len, o->partition);
        if (cur && cur->log_offset > o->log_offset) continue; /* Kafka's olderThan */
        goffset *put = group_offset_put(g, o->topic, len, o->partition, o->offset, o->leader_epoch,
                                        o->metadata, strlen(o->metadata), o->commit_ts, o->expire_ts);
        if (put) {
            put->log_offset = o->log_offset;
            n++;
        }
    }
    txn_producer_drop(g, t);
    return n;
}

void group_warn_mixed_commits(const kgroup *g) {
    if (!g->received_consumer_commits || !g->received_txn_commits) return;
    log_warn("kafka.coordinator.group.GroupMetadataManager",
             "group: %s with leader: %s has received offset commits from consumers as well as transactional "
             "producers. Mixing both types of offset commits will generally result in surprises and should be avoided.",
             g->id, g->leader_id ? g->leader_id : "null");
}
