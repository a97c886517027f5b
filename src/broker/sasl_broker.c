/* sasl_broker.c - SASL listeners and their connections' sessions (see
 * sasl_broker.h). SCRAM credentials are read from the metadata image, so a
 * user added or removed with AlterUserScramCredentials on any node counts
 * on every node as soon as that node has applied the change. */
#include "broker/sasl_broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "net/kafka_client.h"
#include "net/server.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

#define COMPONENT "org.apache.kafka.common.network.Selector"
#define MAX_SASL_LISTENERS 8
#define BUCKETS 1024

typedef struct conn_entry {
    struct kconn *c;
    sasl_session s;
    loop_timer_id close_timer;
    struct kreq *failed_req;    /* answered when the close is due (broker_sasl_fail_later) */
    kwriter *failed_resp;
    char close_why[300];
    struct conn_entry *next;
} conn_entry;

typedef struct listener_sasl {
    char name[64];
    sasl_server_config cfg;
} listener_sasl;

struct broker_sasl {
    broker *b;
    listener_sasl l[MAX_SASL_LISTENERS];
    int n;
    int64_t fail_delay_ms; /* connection.failed.authentication.delay.ms */
    int32_t max_receive;   /* sasl.server.max.receive.size: frames before authentication */
    conn_entry *buckets[BUCKETS];
};

static const char *raw_get(void *ctx, const char *key) { return props_get(&((broker *)ctx)->cfg.raw, key); }

/* SCRAM credentials from the image (UserScramCredentialRecord). */
static int image_lookup(void *ctx, const char *user, int mech, scram_credential *out) {
    broker *b = ctx;
    const mscram *m = mimage_scram(b->image, user, (int8_t)mech);
    if (!m || m->key_len != (int32_t)scram_key_len(mech) || m->salt_len > SCRAM_MAX_SALT) return -1;
    memset(out, 0, sizeof *out);
    memcpy(out->salt, m->salt, (size_t)m->salt_len);
    out->salt_len = (size_t)m->salt_len;
    memcpy(out->stored_key, m->stored_key, (size_t)m->key_len);
    memcpy(out->server_key, m->server_key, (size_t)m->key_len);
    out->key_len = (size_t)m->key_len;
    out->iterations = m->iterations;
    return 0;
}

static bool is_sasl_protocol(const char *p) { return p && strncmp(p, "SASL_", 5) == 0; }

static void lower_into(const char *in, char *out, size_t outlen) {
    size_t n = 0;
    for (; in[n] && n + 1 < outlen; n++) out[n] = (in[n] >= 'A' && in[n] <= 'Z') ? (char)(in[n] + 32) : in[n];
    out[n] = 0;
}

/* kafka_client's question for broker-to-broker connections: SASL to
 * host:port? Yes when a node registered it as a SASL_PLAINTEXT or SASL_SSL
 * endpoint: with sasl.mechanism.inter.broker.protocol and the username and
 * password of that listener's JAAS config (listener.name.<l>.<mechanism>.sasl.jaas.config,
 * else sasl.jaas.config), as Kafka's inter-broker client takes them. */
static bool peer_sasl(void *arg, const char *host, int port, kc_sasl_creds *out) {
    broker *b = arg;
    for (int i = 0; i < b->image->nbrokers; i++) {
        const mbroker *br = &b->image->brokers[i];
        for (int j = 0; j < br->nendpoints; j++) {
            const mendpoint *e = &br->endpoints[j];
            if (e->port != port || strcmp(e->host, host) != 0) continue;
            if (e->security_protocol != 2 && e->security_protocol != 3) return false;
            const char *mech = props_get(&b->cfg.raw, "sasl.mechanism.inter.broker.protocol");
            snprintf(out->mechanism, sizeof out->mechanism, "%s", mech ? mech : "GSSAPI");
            char l[64], m[32], key[256];
            lower_into(e->name, l, sizeof l);
            lower_into(out->mechanism, m, sizeof m);
            snprintf(key, sizeof key, "listener.name.%s.%s.sasl.jaas.config", l, m);
            const char *text = props_get(&b->cfg.raw, key);
            if (!text) text = props_get(&b->cfg.raw, "sasl.jaas.config");
            jaas_config jc;
            char err[256];
            if (text && jaas_parse(text, &jc, err, sizeof err) == 0) {
                const char *u = jaas_option_get(&jc.entries[0], "username");
                const char *p = jaas_option_get(&jc.entries[0], "password");
                snprintf(out->username, sizeof out->username, "%s", u ? u : "");
                snprintf(out->password, sizeof out->password, "%s", p ? p : "");
                jaas_free(&jc);
            }
            return true;
        }
    }
    return false;
}

int broker_sasl_start(broker *b, char *err, size_t errlen) {
    struct broker_sasl *bs = calloc(1, sizeof *bs);
    if (!bs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bs->b = b;
    const char *d = props_get(&b->cfg.raw, "connection.failed.authentication.delay.ms");
    bs->fail_delay_ms = d ? strtoll(d, NULL, 10) : 100;
    if (bs->fail_delay_ms < 0) bs->fail_delay_ms = 0;
    const char *mr = props_get(&b->cfg.raw, "sasl.server.max.receive.size");
    long long mrv = mr ? strtoll(mr, NULL, 10) : 524288;
    bs->max_receive = mrv > 0 && mrv < INT32_MAX ? (int32_t)mrv : 524288;
    for (int i = 0; i < b->cfg.nlisteners && bs->n < MAX_SASL_LISTENERS; i++) {
        const char *name = b->cfg.listeners[i].name;
        if (!is_sasl_protocol(broker_config_listener_protocol(&b->cfg, name))) continue;
        listener_sasl *ls = &bs->l[bs->n];
        snprintf(ls->name, sizeof ls->name, "%s", name);
        if (sasl_server_config_load(&ls->cfg, name, raw_get, b, err, errlen) < 0) {
            for (int k = 0; k < bs->n; k++) sasl_server_config_free(&bs->l[k].cfg);
            free(bs);
            return -1;
        }
        ls->cfg.scram_lookup = image_lookup;
        ls->cfg.scram_ctx = b;
        net_server_limit_unauthenticated(b->server, name, bs->max_receive);
        bs->n++;
    }
    b->sasl = bs;
    kc_set_sasl_policy(peer_sasl, b);
    return 0;
}

static unsigned bucket_of(const struct kconn *c) { return (unsigned)(((uintptr_t)c >> 4) % BUCKETS); }

static conn_entry **find_slot(struct broker_sasl *bs, const struct kconn *c) {
    conn_entry **p = &bs->buckets[bucket_of(c)];
    while (*p && (*p)->c != c) p = &(*p)->next;
    return p;
}

static void entry_free(struct broker_sasl *bs, conn_entry *e) {
    if (e->close_timer) loop_timer_cancel(bs->b->loop, e->close_timer);
    if (e->failed_resp) {
        kw_free(e->failed_resp);
        free(e->failed_resp);
    }
    if (e->failed_req) kreq_no_response(e->failed_req); /* the connection is closing: nothing more is read */
    sasl_session_free(&e->s);
    free(e);
}

void broker_sasl_stop(broker *b) {
    struct broker_sasl *bs = b->sasl;
    if (!bs) return;
    for (int i = 0; i < BUCKETS; i++) {
        conn_entry *e = bs->buckets[i];
        while (e) {
            conn_entry *n = e->next;
            entry_free(bs, e);
            e = n;
        }
    }
    for (int i = 0; i < bs->n; i++) sasl_server_config_free(&bs->l[i].cfg);
    free(bs);
    b->sasl = NULL;
    kc_set_sasl_policy(NULL, NULL);
}

static const listener_sasl *listener_of(const struct broker_sasl *bs, const char *name) {
    for (int i = 0; bs && name && i < bs->n; i++)
        if (strcmp(bs->l[i].name, name) == 0) return &bs->l[i];
    return NULL;
}

bool broker_sasl_listener(const broker *b, const char *listener) { return listener_of(b->sasl, listener) != NULL; }

int32_t broker_sasl_max_receive(const broker *b) { return b->sasl ? b->sasl->max_receive : 524288; }

/* The connection's entry, created on its first request when it came in on a SASL listener. */
static conn_entry *entry_of(broker *b, struct kconn *c, bool create) {
    struct broker_sasl *bs = b->sasl;
    if (!bs || !c || bs->n == 0) return NULL;
    conn_entry **p = find_slot(bs, c);
    if (*p || !create) return *p;
    const listener_sasl *ls = listener_of(bs, kconn_listener(c));
    if (!ls) return NULL;
    conn_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->c = c;
    sasl_session_init(&e->s, &ls->cfg);
    *p = e;
    return e;
}

sasl_session *broker_sasl_session(broker *b, struct kconn *c) {
    conn_entry *e = entry_of(b, c, false);
    return e ? &e->s : NULL;
}

void broker_sasl_connection_closed(broker *b, struct kconn *c) {
    struct broker_sasl *bs = b->sasl;
    if (!bs) return;
    conn_entry **p = find_slot(bs, c);
    conn_entry *e = *p;
    if (!e) return;
    *p = e->next;
    entry_free(bs, e);
}

static void close_now(kloop *l, void *arg) {
    (void)l;
    conn_entry *e = arg;
    e->close_timer = 0;
    struct kconn *c = e->c;
    if (e->failed_resp) { /* the delayed failure response, then the close */
        kwriter *w = e->failed_resp;
        e->failed_resp = NULL;
        kconn_send(c, w);
    }
    kconn_close(c, e->close_why[0] ? e->close_why : NULL); /* frees e (connection_closed) */
}

void broker_sasl_fail_later(broker *b, struct kreq *req) {
    struct kconn *c = req->conn;
    conn_entry *e = c ? entry_of(b, c, false) : NULL;
    kwriter *w = req->out;
    if (!e || !w || w->err || e->failed_req || b->sasl->fail_delay_ms <= 0) {
        /* answer now and close (no delay, or nothing to hold it in) */
        kreq_response_end(req);
        if (c) broker_sasl_close_later(b, c, NULL);
        return;
    }
    kw_patch_i32(w, req->size_at, (int32_t)(kw_size(w) - 4));
    req->out = NULL;
    e->failed_req = req; /* stays in flight: the connection reads nothing more */
    e->failed_resp = w;
    e->s.state = SASL_FAILED;
    e->close_why[0] = 0;
    if (e->close_timer) loop_timer_cancel(b->loop, e->close_timer);
    e->close_timer = loop_timer_add(b->loop, b->sasl->fail_delay_ms, close_now, e);
}

void broker_sasl_close_later(broker *b, struct kconn *c, const char *why) {
    conn_entry *e = entry_of(b, c, false);
    if (!e) {
        kconn_close(c, why);
        return;
    }
    e->s.state = SASL_FAILED; /* nothing more is served meanwhile */
    if (e->close_timer) return;
    snprintf(e->close_why, sizeof e->close_why, "%s", why ? why : "");
    if (b->sasl->fail_delay_ms <= 0) {
        kconn_close(c, why);
        return;
    }
    e->close_timer = loop_timer_add(b->loop, b->sasl->fail_delay_ms, close_now, e);
}

bool broker_sasl_raw_frame(broker *b, struct kconn *c, uint8_t *frame, size_t len) {
    conn_entry *e = entry_of(b, c, false);
    if (!e || !sasl_expects_raw_token(&e->s)) return false;
    sasl_result r;
    sasl_authenticate(&e->s, 0, frame, len, loop_now_ms(b->loop), &r);
    free(frame);
    if (r.error_code) {
        log_info(COMPONENT, "[SocketServer listenerType=BROKER, nodeId=%d] Failed authentication with /%s (%s)",
                 b->cfg.node_id, kconn_peer(c), r.reason);
        sasl_result_free(&r);
        /* v0: the failure is the close; the frame stays "in flight" so nothing
         * more is read until then */
        broker_sasl_close_later(b, c, NULL);
        return true;
    }
    /* v0 framing: the response token, size-prefixed, without a Kafka header */
    kwriter *w = malloc(sizeof *w);
    if (w) {
        kw_init(w);
        kw_i32(w, (int32_t)r.token_len);
        if (r.token_len) kw_raw(w, r.token, r.token_len);
    }
    if (sasl_authenticated(&e->s)) {
        kconn_set_principal(c, e->s.principal);
        kconn_set_frame_limit(c, 0, false); /* authenticated: socket.request.max.bytes */
    }
    sasl_result_free(&r);
    if (w) kconn_send(c, w);
    else kconn_close(c, "out of memory");
    kconn_request_done(c);
    return true;
}

bool broker_sasl_admit(broker *b, struct kreq *req) {
    conn_entry *e = entry_of(b, req->conn, true);
    if (!e) return true; /* not a SASL listener */
    char why[300];
    if (sasl_check_request(&e->s, req->api_key, req->api_version, loop_now_ms(b->loop), why, sizeof why) ==
        SASL_CLOSE) {
        kreq_fail(req, why);
        return false;
    }
    /* an ApiVersions the broker answers with UNSUPPORTED_VERSION leaves the
     * state as it is, as Kafka's handleApiVersionsRequest */
    if (req->api_key == KAPI_API_VERSIONS && req->api_version <= 3) sasl_on_api_versions(&e->s);
    return true;
}
