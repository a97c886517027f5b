/* kafka_client.c - non-blocking Kafka protocol client on the loop (see kafka_client.h).
 *
 * Life of a connection: IDLE -> (RESOLVING) -> CONNECTING -> HANDSHAKE
 * (ApiVersions in flight) -> READY, and back to IDLE when it breaks.
 * Requests wait in `pending` and move to `inflight` (getting their
 * correlation id) only when READY and below max_in_flight; the handshake's
 * ApiVersions request is the only one put into `inflight` directly.
 *
 * Re-entrancy: user callbacks run only from loop entries (fd events and
 * timers; kc_send never calls back, it arms a zero-delay timer). Each entry
 * holds c->busy; kc_conn_free during a callback cancels everything at once
 * but the struct (and its read buffer, which a frame being delivered may
 * point into) is freed only when the outermost entry returns. After every
 * callback the caller re-checks c->freed and c->gen (bumped whenever the
 * socket is closed) before touching connection state again.
 */
#include "net/kafka_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/tls.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "security/scram.h"
#include "util/log.h"

#define KC_COMPONENT "org.apache.kafka.clients.NetworkClient"
#define KC_RBUF_SIZE (64u * 1024u)
#define KC_MAX_ADDRS 8
#define KC_API_SLOTS 128
/* Bytes read per readable event before the loop gets a turn (level-triggered
 * epoll calls again). */
#define KC_READ_BUDGET (8u << 20)

enum { ST_IDLE, ST_RESOLVING, ST_CONNECTING, ST_TLS, ST_HANDSHAKE, ST_READY };
enum { IN_NONE, IN_PENDING, IN_FLIGHT };

typedef struct kc_req {
    struct kc_req *prev, *next;
    kc_conn *conn;
    int where;
    bool internal;          /* the handshake's ApiVersions */
    int16_t api_key;        /* -1: a kc_connect waiter, nothing to send */
    int16_t version;
    int32_t corr;
    uint8_t *buf;           /* the whole frame; freed once sent */
    size_t len, sent;
    loop_timer_id timer;
    kc_cb cb;
    void *arg;
} kc_req;

typedef struct kc_list {
    kc_req *head, *tail;
    int n;
} kc_list;

/* A name lookup on a helper thread; two references (thread, connection). */
typedef struct kc_resolve {
    atomic_int refs;
    atomic_bool done;
    int efd;
    char host[256];
    char port[8];
    struct addrinfo *res;
    int rc;
} kc_resolve;

typedef struct kc_broker_api {
    int16_t min, max;
    bool listed;
} kc_broker_api;

struct kc_conn {
    kloop *loop;
    kc_config cfg;
    char client_id[128], sw_name[64], sw_version[64];
    char host[256];         /* "" for an adopted socket */
    int port;
    char name[280];
    int state;
    int fd;
    int events;             /* current watch mask */
    uint64_t gen;           /* bumped when the socket closes */
    int busy;
    bool freed;
    bool want_pump;
    bool adopted_dead;      /* adopted socket broke: nothing to reconnect to */
    /* addresses being tried */
    struct sockaddr_storage addrs[KC_MAX_ADDRS];
    socklen_t addrlens[KC_MAX_ADDRS];
    int naddrs, addr_i;
    kc_resolve *resolve;
    loop_timer_id connect_timer, reconnect_timer, pump_timer;
    int failures;           /* consecutive, reset by a completed handshake */
    int64_t next_connect_at;
    uint64_t rng;
    /* handshake */
    int16_t av_version;
    kc_broker_api apis[KC_API_SLOTS];
    bool have_apis;
    /* requests */
    kc_list pending, inflight;
    int32_t next_corr;
    /* input */
    uint8_t *rbuf;
    size_t rlen;
    uint8_t *big;           /* a frame too large for rbuf, read in place */
    size_t big_len, big_got;
    kc_stats stats;
    SSL *ssl;               /* TLS to this destination (kc_set_tls_policy) */
    /* SASL after ApiVersions (kc_set_sasl_policy) */
    kc_sasl_creds sasl;
    int sasl_step;          /* SaslAuthenticate round trips done */
    scram_client scram;
};

/* Which destinations speak TLS (the broker knows its peers' listeners). */
static kc_tls_policy_fn tls_policy;
static void *tls_policy_arg;

void kc_set_tls_policy(kc_tls_policy_fn fn, void *arg) {
    tls_policy = fn;
    tls_policy_arg = arg;
}

static kc_sasl_policy_fn sasl_policy;
static void *sasl_policy_arg;

void kc_set_sasl_policy(kc_sasl_policy_fn fn, void *arg) {
    sasl_policy = fn;
    sasl_policy_arg = arg;
}

/* The socket, or TLS on it: >0 bytes, 0 end of stream, -1 with errno. */
static ssize_t kc_recv(kc_conn *c, void *buf, size_t len) {
    if (!c->ssl) return recv(c->fd, buf, len, 0);
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0) return n;
    char err[256];
    int r = tls_result(c->ssl, n, err, sizeof err);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) errno = EAGAIN;
    else if (r == TLS_CLOSED) return 0;
    else errno = EPROTO;
    return -1;
}

static ssize_t kc_send_bytes(kc_conn *c, const uint8_t *buf, size_t len) {
    if (!c->ssl) return send(c->fd, buf, len, MSG_NOSIGNAL);
    ERR_clear_error();
    int n = SSL_write(c->ssl, buf, len > (1u << 20) ? (1 << 20) : (int)len);
    if (n > 0) return n;
    char err[256];
    int r = tls_result(c->ssl, n, err, sizeof err);
    errno = (r == TLS_WANT_READ || r == TLS_WANT_WRITE) ? EAGAIN : EPIPE;
    return -1;
}

static void pump(kc_conn *c);
static void conn_break(kc_conn *c, const char *why);
static void start_connect(kc_conn *c);
static void connect_next(kc_conn *c);
static void transport_up(kc_conn *c);

/* ---- lists ---- */

static void list_push(kc_list *l, kc_req *r, int where) {
    r->prev = l->tail;
    r->next = NULL;
    if (l->tail) l->tail->next = r;
    else l->head = r;
    l->tail = r;
    l->n++;
    r->where = where;
}

static void list_remove(kc_list *l, kc_req *r) {
    if (r->prev) r->prev->next = r->next;
    else l->head = r->next;
    if (r->next) r->next->prev = r->prev;
    else l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
    r->where = IN_NONE;
}

static kc_req *list_pop(kc_list *l) {
    kc_req *r = l->head;
    if (r) list_remove(l, r);
    return r;
}

/* ---- small helpers ---- */

void kc_config_defaults(kc_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->client_id = "samsa-broker";
    cfg->software_name = "samsa";
    cfg->software_version = "3.6.1";
    cfg->connect_timeout_ms = 10000;
    cfg->request_timeout_ms = 30000;
    cfg->max_in_flight = 5;
    cfg->reconnect_backoff_ms = 50;
    cfg->reconnect_backoff_max_ms = 1000;
    cfg->max_response_bytes = 256 << 20;
}

const char *kc_status_name(kc_status st) {
    switch (st) {
    case KC_OK: return "OK";
    case KC_TIMEOUT: return "TIMEOUT";
    case KC_DISCONNECTED: return "DISCONNECTED";
    case KC_CONNECT_FAILED: return "CONNECT_FAILED";
    case KC_UNSUPPORTED_VERSION: return "UNSUPPORTED_VERSION";
    case KC_CANCELLED: return "CANCELLED";
    }
    return "UNKNOWN";
}

int16_t kc_status_error_code(kc_status st) {
    switch (st) {
    case KC_OK: return 0;
    case KC_TIMEOUT: return KERR_REQUEST_TIMED_OUT;
    case KC_UNSUPPORTED_VERSION: return KERR_UNSUPPORTED_VERSION;
    default: return KERR_NETWORK_EXCEPTION;
    }
}

static void on_fd(kloop *l, int fd, int events, void *arg);

static void watch(kc_conn *c, int events) {
    if (c->fd < 0) return;
    if (c->events == events) return;
    if (loop_watch(c->loop, c->fd, events, on_fd, c) == 0) c->events = events;
}

static uint32_t rng_next(kc_conn *c) {
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return (uint32_t)(x >> 32);
}

/* Kafka's ExponentialBackoff(reconnect.backoff.ms, 2, reconnect.backoff.max.ms, 0.2). */
static int64_t backoff_ms(kc_conn *c) {
    double b = c->cfg.reconnect_backoff_ms;
    int f = c->failures > 0 ? c->failures - 1 : 0;
    for (int i = 0; i < f && b < c->cfg.reconnect_backoff_max_ms; i++) b *= 2;
    if (b > c->cfg.reconnect_backoff_max_ms) b = c->cfg.reconnect_backoff_max_ms;
    double jitter = 0.8 + 0.4 * (rng_next(c) / 4294967296.0);
    int64_t ms = (int64_t)(b * jitter);
    return ms < 0 ? 0 : ms;
}

static void enter(kc_conn *c) {
    c->busy++;
    c->want_pump = true;
}

static void destroy(kc_conn *c) {
    free(c->rbuf);
    free(c->big);
    free(c);
}

static void leave(kc_conn *c) {
    while (c->busy == 1 && !c->freed && c->want_pump) {
        c->want_pump = false;
        pump(c);
    }
    if (--c->busy == 0 && c->freed) destroy(c);
}

/* ---- completion ---- */

static void req_free(kc_req *r) {
    free(r->buf);
    free(r);
}

/* r is on no list. frame (when st == KC_OK) holds the response, body at
 * body_off; owned: frame is a malloc'd buffer this call frees unless taken. */
static void complete(kc_conn *c, kc_req *r, kc_status st, uint8_t *frame, size_t flen, bool owned,
                     size_t body_off) {
    if (r->timer) loop_timer_cancel(c->loop, r->timer);
    r->timer = 0;
    karena a;
    karena_init(&a, 0);
    kc_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.arena = &a;
    resp.api_key = r->api_key;
    resp.api_version = r->version;
    resp.correlation_id = r->corr;
    if (st == KC_OK && frame) {
        kr_init(&resp.body, frame + body_off, flen - body_off);
        resp.frame_ = frame;
        resp.frame_len_ = flen;
        resp.frame_owned_ = owned;
    } else {
        kr_init(&resp.body, NULL, 0);
    }
    kc_cb cb = r->cb;
    void *arg = r->arg;
    req_free(r);
    if (st == KC_OK && frame) c->stats.responses++;
    cb(st, &resp, arg);
    karena_free(&a);
    if (resp.frame_ && resp.frame_owned_) free(resp.frame_);
}

uint8_t *kc_resp_take(kc_resp *resp, size_t *len) {
    if (!resp->frame_) return NULL;
    uint8_t *out = resp->frame_;
    if (!resp->frame_owned_) {
        out = malloc(resp->frame_len_ ? resp->frame_len_ : 1);
        if (!out) return NULL;
        memcpy(out, resp->frame_, resp->frame_len_);
    }
    size_t off = (size_t)(resp->body.buf - resp->frame_);
    resp->body.buf = out + off;
    if (len) *len = resp->frame_len_;
    resp->frame_ = NULL;
    resp->frame_owned_ = false;
    return out;
}

int kc_resp_decode(kc_resp *resp, void *out) {
    const kmsg_type *t = kmsg_response_type(resp->api_key);
    if (!t || !resp->body.buf) return -1;
    t->init(out);
    if (t->decode(out, &resp->body, resp->api_version, resp->arena) != 0 || resp->body.err) return -1;
    return 0;
}

/* ---- socket life ---- */

static void resolve_release(kc_resolve *j) {
    if (atomic_fetch_sub(&j->refs, 1) == 1) {
        if (j->res) freeaddrinfo(j->res);
        close(j->efd);
        free(j);
    }
}

static void close_socket(kc_conn *c) {
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        loop_unwatch(c->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
    c->events = 0;
    if (c->resolve) {
        loop_unwatch(c->loop, c->resolve->efd);
        resolve_release(c->resolve);
        c->resolve = NULL;
    }
    if (c->connect_timer) loop_timer_cancel(c->loop, c->connect_timer);
    c->connect_timer = 0;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = 0;
    free(c->big);
    c->big = NULL;
    c->big_len = c->big_got = 0;
    c->state = ST_IDLE;
    c->gen++;
}

/* Closes the connection; requests in flight fail (KC_DISCONNECTED). If it
 * never got READY (or cannot reconnect), the queued ones fail too
 * (KC_CONNECT_FAILED); otherwise they stay and reconnect after the backoff. */
static void conn_break(kc_conn *c, const char *why) {
    bool was_ready = c->state == ST_READY;
    if (c->state == ST_IDLE) return;
    if (was_ready) {
        c->stats.disconnects++;
        log_info(KC_COMPONENT, "[%s] Node %s disconnected (%s).", c->client_id, c->name, why);
    } else {
        c->stats.connect_failures++;
        log_warn(KC_COMPONENT, "[%s] Connection to node %s could not be established. Broker may not be available. (%s)",
                 c->client_id, c->name, why);
    }
    close_socket(c);
    c->failures++;
    c->next_connect_at = loop_now_ms(c->loop) + backoff_ms(c);
    if (!c->host[0]) c->adopted_dead = true;
    kc_req *r;
    while (!c->freed && (r = list_pop(&c->inflight))) complete(c, r, KC_DISCONNECTED, NULL, 0, false, 0);
    if (!was_ready || c->adopted_dead) {
        int n = c->pending.n;
        while (!c->freed && n-- > 0 && (r = list_pop(&c->pending)))
            complete(c, r, KC_CONNECT_FAILED, NULL, 0, false, 0);
    }
    c->want_pump = true;
}

/* ---- handshake ---- */

static void on_api_versions(kc_status st, kc_resp *resp, void *arg);
static void sasl_begin(kc_conn *c);
static void become_ready(kc_conn *c);

static kc_req *build_req(kc_conn *c, int16_t key, int16_t version, const kwriter *body, kc_encode_fn enc,
                         const void *msg) {
    kwriter w;
    kw_init(&w);
    size_t at = kw_reserve(&w, 4);
    kw_i16(&w, key);
    kw_i16(&w, version);
    kw_i32(&w, 0); /* correlation id, set when it goes out */
    int hv = kapi_request_header_version(key, version);
    if (hv >= 1) kw_string(&w, false, kstr_from(c->client_id));
    if (hv >= 2) kw_no_tagged_fields(&w);
    if (body) {
        if (body->err || body->nrefs) w.err = 1;
        else kw_raw(&w, body->buf, body->len);
    } else if (enc) {
        if (enc(msg, &w, version) != 0) w.err = 1;
        if (w.nrefs) w.err = 1; /* file references cannot go to another broker */
    }
    if (!w.err && w.len - 4 > (size_t)INT32_MAX) w.err = 1;
    if (w.err) {
        kw_free(&w);
        return NULL;
    }
    kw_patch_i32(&w, at, (int32_t)(w.len - 4));
    kc_req *r = calloc(1, sizeof *r);
    if (!r) {
        kw_free(&w);
        return NULL;
    }
    r->conn = c;
    r->api_key = key;
    r->version = version;
    r->corr = -1;
    r->buf = w.buf;
    r->len = w.len;
    w.buf = NULL;
    kw_free(&w);
    return r;
}

static void on_req_timeout(kloop *l, void *arg);

static void put_in_flight(kc_conn *c, kc_req *r) {
    r->corr = c->next_corr;
    c->next_corr = c->next_corr == INT32_MAX ? 0 : c->next_corr + 1;
    uint32_t v = (uint32_t)r->corr;
    r->buf[8] = (uint8_t)(v >> 24);
    r->buf[9] = (uint8_t)(v >> 16);
    r->buf[10] = (uint8_t)(v >> 8);
    r->buf[11] = (uint8_t)v;
    r->sent = 0;
    list_push(&c->inflight, r, IN_FLIGHT);
}

static void send_api_versions(kc_conn *c) {
    ApiVersionsRequest m;
    ApiVersionsRequest_init(&m);
    m.client_software_name = kstr_from(c->sw_name);
    m.client_software_version = kstr_from(c->sw_version);
    const kmsg_type *t = kmsg_request_type(KAPI_API_VERSIONS);
    kc_req *r = t ? build_req(c, KAPI_API_VERSIONS, c->av_version, NULL, t->encode, &m) : NULL;
    if (!r) {
        conn_break(c, "out of memory");
        return;
    }
    r->internal = true;
    r->cb = on_api_versions;
    r->arg = c;
    r->timer = loop_timer_add(c->loop, c->cfg.request_timeout_ms, on_req_timeout, r);
    put_in_flight(c, r);
    c->want_pump = true;
}

static void on_api_versions(kc_status st, kc_resp *resp, void *arg) {
    kc_conn *c = arg;
    if (st != KC_OK || c->freed) return; /* the break that caused it handles the rest */
    kreader probe = resp->body;
    int16_t ec = kr_i16(&probe);
    if (probe.err) {
        conn_break(c, "malformed ApiVersions response");
        return;
    }
    if (ec == KERR_UNSUPPORTED_VERSION && c->av_version > 0) {
        /* The broker answers in v0 layout and lists the ApiVersions
         * versions it supports (since 2.4); without them, v0. */
        ApiVersionsResponse v0;
        kreader r0 = resp->body;
        int16_t next = 0;
        if (ApiVersionsResponse_decode(&v0, &r0, 0, resp->arena) == 0 && !r0.err) {
            for (int32_t i = 0; i < v0.api_keys_count; i++)
                if (v0.api_keys[i].api_key == KAPI_API_VERSIONS) next = v0.api_keys[i].max_version;
        }
        if (next >= c->av_version || next < 0) next = 0;
        log_info(KC_COMPONENT, "[%s] Node %s does not support ApiVersions v%d; retrying with v%d", c->client_id,
                 c->name, c->av_version, next);
        c->av_version = next;
        send_api_versions(c);
        return;
    }
    if (ec != 0) {
        char why[96];
        snprintf(why, sizeof why, "ApiVersions failed with %s", kerr_name(ec));
        conn_break(c, why);
        return;
    }
    ApiVersionsResponse m;
    kreader r = resp->body;
    if (ApiVersionsResponse_decode(&m, &r, c->av_version, resp->arena) != 0 || r.err || m.api_keys_count < 0) {
        conn_break(c, "malformed ApiVersions response");
        return;
    }
    memset(c->apis, 0, sizeof c->apis);
    for (int32_t i = 0; i < m.api_keys_count; i++) {
        const ApiVersionsResponse_ApiVersion *v = &m.api_keys[i];
        if (v->api_key < 0 || v->api_key >= KC_API_SLOTS) continue;
        c->apis[v->api_key].listed = true;
        c->apis[v->api_key].min = v->min_version;
        c->apis[v->api_key].max = v->max_version;
    }
    c->have_apis = true;
    memset(&c->sasl, 0, sizeof c->sasl);
    if (sasl_policy && c->host[0] && sasl_policy(sasl_policy_arg, c->host, c->port, &c->sasl)) {
        sasl_begin(c);
        return;
    }
    become_ready(c);
}

static void become_ready(kc_conn *c) {
    c->state = ST_READY;
    c->failures = 0;
    c->stats.connects++;
    c->stats.api_versions_version = c->av_version;
    log_debug(KC_COMPONENT, "[%s] Node %s is ready (ApiVersions v%d)", c->client_id, c->name, c->av_version);
    c->want_pump = true;
}

/* ---- SASL (after ApiVersions, before READY) ---- */

static void on_sasl_handshake(kc_status st, kc_resp *resp, void *arg);
static void on_sasl_authenticate(kc_status st, kc_resp *resp, void *arg);

static bool send_internal(kc_conn *c, int16_t key, int16_t version, const void *msg, kc_cb cb) {
    const kmsg_type *t = kmsg_request_type(key);
    kc_req *r = t ? build_req(c, key, version, NULL, t->encode, msg) : NULL;
    if (!r) {
        conn_break(c, "out of memory");
        return false;
    }
    r->internal = true;
    r->cb = cb;
    r->arg = c;
    r->timer = loop_timer_add(c->loop, c->cfg.request_timeout_ms, on_req_timeout, r);
    put_in_flight(c, r);
    c->want_pump = true;
    return true;
}

static void sasl_begin(kc_conn *c) {
    if (!c->apis[KAPI_SASL_HANDSHAKE].listed || c->apis[KAPI_SASL_HANDSHAKE].max < 1 ||
        !c->apis[KAPI_SASL_AUTHENTICATE].listed) {
        conn_break(c, "the broker does not support SaslHandshake v1 and SaslAuthenticate");
        return;
    }
    SaslHandshakeRequest m;
    SaslHandshakeRequest_init(&m);
    m.mechanism = kstr_from(c->sasl.mechanism);
    c->sasl_step = 0;
    send_internal(c, KAPI_SASL_HANDSHAKE, 1, &m, on_sasl_handshake);
}

static void sasl_send_token(kc_conn *c, const uint8_t *tok, size_t len) {
    SaslAuthenticateRequest m;
    SaslAuthenticateRequest_init(&m);
    m.auth_bytes = (kbytes){tok, (int32_t)len};
    int16_t v = c->apis[KAPI_SASL_AUTHENTICATE].max < 2 ? c->apis[KAPI_SASL_AUTHENTICATE].max : 2;
    send_internal(c, KAPI_SASL_AUTHENTICATE, v, &m, on_sasl_authenticate);
}

static void on_sasl_handshake(kc_status st, kc_resp *resp, void *arg) {
    kc_conn *c = arg;
    if (st != KC_OK || c->freed) return;
    SaslHandshakeResponse m;
    kreader r = resp->body;
    if (SaslHandshakeResponse_decode(&m, &r, 1, resp->arena) != 0 || r.err) {
        conn_break(c, "malformed SaslHandshake response");
        return;
    }
    if (m.error_code) {
        char why[160];
        snprintf(why, sizeof why, "SASL mechanism %s: %s", c->sasl.mechanism, kerr_name(m.error_code));
        conn_break(c, why);
        return;
    }
    int mech = scram_mechanism_from_name(c->sasl.mechanism);
    if (mech) {
        char first[700];
        if (scram_client_first(&c->scram, mech, c->sasl.username, first, sizeof first) < 0) {
            conn_break(c, "SCRAM user name too long");
            return;
        }
        sasl_send_token(c, (const uint8_t *)first, strlen(first));
        return;
    }
    /* PLAIN: NUL user NUL password */
    size_t ul = strlen(c->sasl.username), pl = strlen(c->sasl.password);
    uint8_t tok[520];
    tok[0] = 0;
    memcpy(tok + 1, c->sasl.username, ul);
    tok[1 + ul] = 0;
    memcpy(tok + 2 + ul, c->sasl.password, pl);
    sasl_send_token(c, tok, 2 + ul + pl);
}

static void on_sasl_authenticate(kc_status st, kc_resp *resp, void *arg) {
    kc_conn *c = arg;
    if (st != KC_OK || c->freed) return;
    SaslAuthenticateResponse m;
    kreader r = resp->body;
    if (SaslAuthenticateResponse_decode(&m, &r, resp->api_version, resp->arena) != 0 || r.err) {
        conn_break(c, "malformed SaslAuthenticate response");
        return;
    }
    if (m.error_code) {
        char why[400];
        snprintf(why, sizeof why, "SASL authentication failed: %.*s", m.error_message.len > 0 ? m.error_message.len : 0,
                 m.error_message.p ? m.error_message.p : "");
        log_warn(KC_COMPONENT, "[%s] Node %s: %s", c->client_id, c->name, why);
        conn_break(c, why);
        return;
    }
    int mech = scram_mechanism_from_name(c->sasl.mechanism);
    c->sasl_step++;
    size_t len = m.auth_bytes.len > 0 ? (size_t)m.auth_bytes.len : 0;
    char err[256];
    if (mech && c->sasl_step == 1) {
        char final[800];
        if (scram_client_final(&c->scram, m.auth_bytes.p, len, c->sasl.password, final, sizeof final, err,
                               sizeof err) < 0) {
            conn_break(c, err);
            return;
        }
        sasl_send_token(c, (const uint8_t *)final, strlen(final));
        return;
    }
    if (mech && scram_client_verify(&c->scram, m.auth_bytes.p, len, err, sizeof err) < 0) {
        conn_break(c, err);
        return;
    }
    become_ready(c);
}

static void on_connected(kc_conn *c) {
    if (c->connect_timer) loop_timer_cancel(c->loop, c->connect_timer);
    c->connect_timer = 0;
    c->rbuf = malloc(KC_RBUF_SIZE);
    if (!c->rbuf) {
        conn_break(c, "out of memory");
        return;
    }
    c->rlen = 0;
    c->state = ST_HANDSHAKE;
    c->av_version = 3;
    watch(c, LOOP_READ);
    send_api_versions(c);
}

/* ---- reading ---- */

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* One whole response frame (without its size). */
static void frame_done(kc_conn *c, uint8_t *frame, size_t len, bool owned) {
    kreader rd;
    kr_init(&rd, frame, len);
    int32_t corr = kr_i32(&rd);
    kc_req *r = c->inflight.head;
    if (!r || r->sent != r->len || corr != r->corr) {
        log_warn(KC_COMPONENT, "[%s] Correlation id for response (%d) does not match request (%d) from node %s; "
                 "closing the connection", c->client_id, corr, r ? r->corr : -1, c->name);
        if (owned) free(frame);
        conn_break(c, "correlation id mismatch");
        return;
    }
    if (kapi_response_header_version(r->api_key, r->version) >= 1) kr_skip_tagged_fields(&rd);
    if (rd.err) {
        log_warn(KC_COMPONENT, "[%s] Malformed response header from node %s; closing the connection", c->client_id,
                 c->name);
        if (owned) free(frame);
        conn_break(c, "malformed response header");
        return;
    }
    list_remove(&c->inflight, r);
    complete(c, r, KC_OK, frame, len, owned, rd.pos);
}

/* Frames out of rbuf. Returns -1 when the connection went away meanwhile. */
static int parse_rbuf(kc_conn *c) {
    uint64_t gen = c->gen;
    size_t off = 0;
    while (c->rlen - off >= 4) {
        uint32_t size = be32(c->rbuf + off);
        if (size < 4 || size > (uint32_t)c->cfg.max_response_bytes) {
            log_warn(KC_COMPONENT, "[%s] Invalid receive (size = %d larger than %d) from node %s; closing the connection",
                     c->client_id, (int32_t)size, c->cfg.max_response_bytes, c->name);
            conn_break(c, "invalid response size");
            return -1;
        }
        size_t have = c->rlen - off - 4;
        if (have >= size) {
            frame_done(c, c->rbuf + off + 4, size, false);
            if (c->freed || c->gen != gen) return -1;
            off += 4 + size;
            continue;
        }
        if ((size_t)size + 4 > KC_RBUF_SIZE) {
            /* Its own buffer, exactly its size, filled straight from the socket. */
            uint8_t *b = malloc(size);
            if (!b) {
                conn_break(c, "out of memory for a response");
                return -1;
            }
            memcpy(b, c->rbuf + off + 4, have);
            c->big = b;
            c->big_len = size;
            c->big_got = have;
            if (size > c->stats.largest_frame_alloc) c->stats.largest_frame_alloc = size;
            off = c->rlen;
        }
        break;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return 0;
}

static void on_readable(kc_conn *c) {
    uint64_t gen = c->gen;
    size_t budget = KC_READ_BUDGET;
    /* TLS: what OpenSSL has decrypted already brings no event */
    while (budget > 0 || (c->ssl && SSL_has_pending(c->ssl))) {
        uint8_t *dst;
        size_t room;
        if (c->big) {
            dst = c->big + c->big_got;
            room = c->big_len - c->big_got;
        } else {
            dst = c->rbuf + c->rlen;
            room = KC_RBUF_SIZE - c->rlen;
        }
        ssize_t n = room ? kc_recv(c, dst, room) : 0;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            char why[96];
            snprintf(why, sizeof why, "%s", n == 0 ? "connection closed by the peer" : strerror(errno));
            conn_break(c, why);
            return;
        }
        c->stats.bytes_in += (uint64_t)n;
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
        if (c->big) {
            c->big_got += (size_t)n;
            if (c->big_got == c->big_len) {
                uint8_t *b = c->big;
                size_t len = c->big_len;
                c->big = NULL;
                c->big_len = c->big_got = 0;
                frame_done(c, b, len, true);
                if (c->freed || c->gen != gen) return;
            }
        } else {
            c->rlen += (size_t)n;
            if (parse_rbuf(c) != 0) return;
        }
    }
}

/* ---- writing and dispatch ---- */

static bool version_ok(const kc_conn *c, const kc_req *r) {
    if (r->api_key < 0 || r->api_key >= KC_API_SLOTS || !c->apis[r->api_key].listed) return false;
    return r->version >= c->apis[r->api_key].min && r->version <= c->apis[r->api_key].max;
}

static void flush_out(kc_conn *c) {
    for (kc_req *r = c->inflight.head; r; r = r->next) {
        while (r->sent < r->len) {
            ssize_t n = kc_send_bytes(c, r->buf + r->sent, r->len - r->sent);
            if (n > 0) {
                r->sent += (size_t)n;
                c->stats.bytes_out += (uint64_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                watch(c, LOOP_READ | LOOP_WRITE);
                return;
            }
            char why[96];
            snprintf(why, sizeof why, "send: %s", strerror(errno));
            conn_break(c, why);
            return;
        }
        free(r->buf);
        r->buf = NULL;
    }
    watch(c, LOOP_READ);
}

static void on_reconnect(kloop *l, void *arg) {
    (void)l;
    kc_conn *c = arg;
    c->reconnect_timer = 0;
    enter(c);
    leave(c);
}

static void pump(kc_conn *c) {
    if (c->freed) return;
    switch (c->state) {
    case ST_IDLE: {
        if (!c->pending.head) return;
        int64_t now = loop_now_ms(c->loop);
        if (c->adopted_dead) return; /* conn_break failed them already */
        if (now >= c->next_connect_at) {
            if (c->reconnect_timer) loop_timer_cancel(c->loop, c->reconnect_timer);
            c->reconnect_timer = 0;
            start_connect(c);
        } else if (!c->reconnect_timer) {
            c->reconnect_timer = loop_timer_add(c->loop, c->next_connect_at - now, on_reconnect, c);
        }
        return;
    }
    case ST_READY:
        while (c->pending.head && c->inflight.n < c->cfg.max_in_flight) {
            kc_req *r = list_pop(&c->pending);
            if (r->api_key < 0) {
                complete(c, r, KC_OK, NULL, 0, false, 0);
            } else if (!version_ok(c, r)) {
                log_warn(KC_COMPONENT, "[%s] Node %s does not support API key %d version %d", c->client_id, c->name,
                         r->api_key, r->version);
                complete(c, r, KC_UNSUPPORTED_VERSION, NULL, 0, false, 0);
            } else {
                put_in_flight(c, r);
                continue;
            }
            if (c->freed || c->state != ST_READY) return;
        }
        flush_out(c);
        return;
    case ST_HANDSHAKE:
        flush_out(c);
        return;
    default:
        return;
    }
}

/* ---- connecting ---- */

static void on_connect_timeout(kloop *l, void *arg) {
    (void)l;
    kc_conn *c = arg;
    c->connect_timer = 0;
    enter(c);
    char why[96];
    snprintf(why, sizeof why, "socket connection setup timeout of %d ms", c->cfg.connect_timeout_ms);
    conn_break(c, why);
    leave(c);
}

static void on_resolved(kloop *l, int fd, int events, void *arg) {
    (void)events;
    kc_conn *c = arg;
    kc_resolve *j = c->resolve;
    if (!j || fd != j->efd || !atomic_load_explicit(&j->done, memory_order_acquire)) return;
    enter(c);
    loop_unwatch(l, fd);
    c->resolve = NULL;
    c->naddrs = 0;
    int rc = j->rc;
    for (struct addrinfo *ai = j->res; rc == 0 && ai && c->naddrs < KC_MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof c->addrs[0]) continue;
        memcpy(&c->addrs[c->naddrs], ai->ai_addr, ai->ai_addrlen);
        c->addrlens[c->naddrs++] = ai->ai_addrlen;
    }
    resolve_release(j);
    if (rc != 0 || c->naddrs == 0) {
        char why[300];
        snprintf(why, sizeof why, "DNS resolution failed for %s: %s", c->host, rc ? gai_strerror(rc) : "no address");
        conn_break(c, why);
    } else {
        c->addr_i = 0;
        connect_next(c);
    }
    leave(c);
}

static void *resolve_main(void *arg) {
    kc_resolve *j = arg;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    j->rc = getaddrinfo(j->host, j->port, &hints, &j->res);
    atomic_store_explicit(&j->done, true, memory_order_release);
    uint64_t one = 1;
    ssize_t w = write(j->efd, &one, sizeof one);
    (void)w;
    resolve_release(j);
    return NULL;
}

static void start_connect(kc_conn *c) {
    c->state = ST_RESOLVING;
    c->connect_timer = loop_timer_add(c->loop, c->cfg.connect_timeout_ms, on_connect_timeout, c);
    c->naddrs = 0;
    c->addr_i = 0;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&c->addrs[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&c->addrs[0];
    memset(&c->addrs[0], 0, sizeof c->addrs[0]);
    if (inet_pton(AF_INET, c->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)c->port);
        c->addrlens[0] = sizeof *a4;
        c->naddrs = 1;
    } else if (inet_pton(AF_INET6, c->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)c->port);
        c->addrlens[0] = sizeof *a6;
        c->naddrs = 1;
    }
    if (c->naddrs) {
        connect_next(c);
        return;
    }
    kc_resolve *j = calloc(1, sizeof *j);
    if (!j) {
        conn_break(c, "out of memory");
        return;
    }
    atomic_init(&j->refs, 2);
    atomic_init(&j->done, false);
    snprintf(j->host, sizeof j->host, "%s", c->host);
    snprintf(j->port, sizeof j->port, "%d", c->port);
    j->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_attr_t attr;
    pthread_t th;
    bool ok = j->efd >= 0 && pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = loop_watch(c->loop, j->efd, LOOP_READ, on_resolved, c) == 0;
        if (ok && pthread_create(&th, &attr, resolve_main, j) != 0) {
            loop_unwatch(c->loop, j->efd);
            ok = false;
        }
        pthread_attr_destroy(&attr);
    }
    if (!ok) {
        if (j->efd >= 0) close(j->efd);
        free(j);
        conn_break(c, "cannot start a name lookup");
        return;
    }
    c->resolve = j;
}

/* Tries the addresses from addr_i on; breaks the connection when none is left. */
static void connect_next(kc_conn *c) {
    int last_err = 0;
    while (c->addr_i < c->naddrs) {
        struct sockaddr *sa = (struct sockaddr *)&c->addrs[c->addr_i];
        socklen_t sl = c->addrlens[c->addr_i];
        c->addr_i++;
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (c->cfg.send_buffer_bytes > 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &c->cfg.send_buffer_bytes, sizeof c->cfg.send_buffer_bytes);
        if (c->cfg.receive_buffer_bytes > 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &c->cfg.receive_buffer_bytes, sizeof c->cfg.receive_buffer_bytes);
        int rc = connect(fd, sa, sl);
        if (rc == 0 || errno == EINPROGRESS) {
            c->fd = fd;
            c->events = 0;
            if (rc == 0) {
                transport_up(c);
            } else {
                c->state = ST_CONNECTING;
                watch(c, LOOP_WRITE);
            }
            return;
        }
        last_err = errno;
        close(fd);
    }
    conn_break(c, last_err ? strerror(last_err) : "no address");
}

/* TLS handshake steps, under the connect timeout; then ApiVersions. */
static void tls_step(kc_conn *c) {
    char err[320];
    int r = tls_handshake(c->ssl, err, sizeof err);
    if (r == TLS_WANT_READ) watch(c, LOOP_READ);
    else if (r == TLS_WANT_WRITE) watch(c, LOOP_WRITE);
    else if (r == TLS_DONE) on_connected(c);
    else {
        char why[400];
        snprintf(why, sizeof why, "SSL handshake failed: %s", err);
        conn_break(c, why);
    }
}

/* The socket is connected: TLS first when the destination wants it. */
static void transport_up(kc_conn *c) {
    const tls_ctx *t = tls_policy && c->host[0] ? tls_policy(tls_policy_arg, c->host, c->port) : NULL;
    if (!t) {
        on_connected(c);
        return;
    }
    c->ssl = tls_session_client(t, c->fd, c->host);
    if (!c->ssl) {
        conn_break(c, "cannot start TLS");
        return;
    }
    c->state = ST_TLS;
    tls_step(c);
}

static void check_connect(kc_conn *c) {
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
    if (err == 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0) {
            if (errno == ENOTCONN) return; /* not yet (a stale event) */
            err = errno;
        }
    }
    if (err == 0) {
        transport_up(c);
        return;
    }
    /* This address failed: the next one, if any, keeps the same deadline. */
    loop_unwatch(c->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    c->events = 0;
    if (c->addr_i < c->naddrs) {
        connect_next(c);
        return;
    }
    conn_break(c, strerror(err));
}

static void on_fd(kloop *l, int fd, int events, void *arg) {
    (void)l;
    kc_conn *c = arg;
    if (fd != c->fd || c->freed) return;
    enter(c);
    if (c->state == ST_CONNECTING) {
        check_connect(c);
    } else if (c->state == ST_TLS) {
        tls_step(c);
    } else if (c->state == ST_HANDSHAKE || c->state == ST_READY) {
        if (events & LOOP_READ) on_readable(c);
    }
    leave(c);
}

/* ---- requests ---- */

static void on_req_timeout(kloop *l, void *arg) {
    (void)l;
    kc_req *r = arg;
    kc_conn *c = r->conn;
    r->timer = 0;
    enter(c);
    if (r->where == IN_PENDING) {
        list_remove(&c->pending, r);
        complete(c, r, KC_TIMEOUT, NULL, 0, false, 0);
    } else if (r->where == IN_FLIGHT) {
        log_info(KC_COMPONENT, "[%s] Disconnecting from node %s due to request timeout.", c->client_id, c->name);
        if (!r->internal) {
            list_remove(&c->inflight, r);
            complete(c, r, KC_TIMEOUT, NULL, 0, false, 0);
        }
        if (!c->freed) conn_break(c, "request timed out");
    }
    leave(c);
}

static void on_pump_timer(kloop *l, void *arg) {
    (void)l;
    kc_conn *c = arg;
    c->pump_timer = 0;
    enter(c);
    leave(c);
}

static int enqueue(kc_conn *c, kc_req *r, int timeout_ms, kc_cb cb, void *arg) {
    r->cb = cb;
    r->arg = arg;
    if (timeout_ms <= 0) timeout_ms = c->cfg.request_timeout_ms;
    r->timer = loop_timer_add(c->loop, timeout_ms, on_req_timeout, r);
    if (!r->timer) {
        req_free(r);
        return -1;
    }
    list_push(&c->pending, r, IN_PENDING);
    if (c->busy) c->want_pump = true;
    else if (!c->pump_timer) c->pump_timer = loop_timer_add(c->loop, 0, on_pump_timer, c);
    return 0;
}

static bool can_send(const kc_conn *c, kc_cb cb) { return c && !c->freed && !c->adopted_dead && cb; }

int kc_send(kc_conn *c, int16_t api_key, int16_t version, const kwriter *body, int timeout_ms, kc_cb cb,
            void *arg) {
    if (!can_send(c, cb) || !body || api_key < 0) return -1;
    kc_req *r = build_req(c, api_key, version, body, NULL, NULL);
    return r ? enqueue(c, r, timeout_ms, cb, arg) : -1;
}

int kc_send_fn(kc_conn *c, int16_t api_key, int16_t version, kc_encode_fn encode, const void *msg, int timeout_ms,
               kc_cb cb, void *arg) {
    if (!can_send(c, cb) || !encode || api_key < 0) return -1;
    kc_req *r = build_req(c, api_key, version, NULL, encode, msg);
    return r ? enqueue(c, r, timeout_ms, cb, arg) : -1;
}

int kc_send_msg(kc_conn *c, int16_t api_key, int16_t version, const void *msg, int timeout_ms, kc_cb cb, void *arg) {
    const kmsg_type *t = kmsg_request_type(api_key);
    if (!t || version < t->min_version || version > t->max_version) return -1;
    return kc_send_fn(c, api_key, version, t->encode, msg, timeout_ms, cb, arg);
}

int kc_connect(kc_conn *c, int timeout_ms, kc_cb cb, void *arg) {
    if (!can_send(c, cb)) return -1;
    kc_req *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->conn = c;
    r->api_key = -1;
    r->corr = -1;
    return enqueue(c, r, timeout_ms, cb, arg);
}

/* ---- public: life cycle and queries ---- */

static kc_conn *conn_alloc(kloop *l, const kc_config *cfg) {
    kc_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = l;
    if (cfg) c->cfg = *cfg;
    else kc_config_defaults(&c->cfg);
    kc_config d;
    kc_config_defaults(&d);
    snprintf(c->client_id, sizeof c->client_id, "%s", c->cfg.client_id ? c->cfg.client_id : d.client_id);
    snprintf(c->sw_name, sizeof c->sw_name, "%s", c->cfg.software_name ? c->cfg.software_name : d.software_name);
    snprintf(c->sw_version, sizeof c->sw_version, "%s",
             c->cfg.software_version ? c->cfg.software_version : d.software_version);
    c->cfg.client_id = c->client_id;
    c->cfg.software_name = c->sw_name;
    c->cfg.software_version = c->sw_version;
    if (c->cfg.connect_timeout_ms <= 0) c->cfg.connect_timeout_ms = d.connect_timeout_ms;
    if (c->cfg.request_timeout_ms <= 0) c->cfg.request_timeout_ms = d.request_timeout_ms;
    if (c->cfg.max_in_flight <= 0) c->cfg.max_in_flight = d.max_in_flight;
    if (c->cfg.reconnect_backoff_ms < 0) c->cfg.reconnect_backoff_ms = 0;
    if (c->cfg.reconnect_backoff_max_ms < c->cfg.reconnect_backoff_ms)
        c->cfg.reconnect_backoff_max_ms = c->cfg.reconnect_backoff_ms;
    if (c->cfg.max_response_bytes <= 4) c->cfg.max_response_bytes = d.max_response_bytes;
    c->fd = -1;
    c->state = ST_IDLE;
    c->next_corr = 1;
    c->stats.api_versions_version = -1;
    c->rng = (uint64_t)(uintptr_t)c ^ ((uint64_t)monotonic_ms() << 20) ^ 0x9e3779b97f4a7c15ull;
    if (!c->rng) c->rng = 1;
    return c;
}

kc_conn *kc_conn_new(kloop *l, const char *host, int port, const kc_config *cfg) {
    if (!l || !host || !host[0] || strlen(host) >= sizeof ((kc_conn *)0)->host || port <= 0 || port > 65535)
        return NULL;
    kc_conn *c = conn_alloc(l, cfg);
    if (!c) return NULL;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    if (strchr(host, ':')) snprintf(c->name, sizeof c->name, "[%s]:%d", host, port);
    else snprintf(c->name, sizeof c->name, "%s:%d", host, port);
    return c;
}

kc_conn *kc_conn_new_fd(kloop *l, int fd, const kc_config *cfg) {
    if (!l || fd < 0) return NULL;
    kc_conn *c = conn_alloc(l, cfg);
    if (!c) return NULL;
    snprintf(c->name, sizeof c->name, "fd %d", fd);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    c->fd = fd;
    c->state = ST_CONNECTING;
    enter(c);
    on_connected(c);
    leave(c);
    if (c->freed) return NULL; /* cannot happen: nobody else has it yet */
    return c;
}

void kc_conn_free(kc_conn *c) {
    if (!c || c->freed) return;
    c->freed = true;
    c->busy++;
    if (c->pump_timer) loop_timer_cancel(c->loop, c->pump_timer);
    if (c->reconnect_timer) loop_timer_cancel(c->loop, c->reconnect_timer);
    c->pump_timer = c->reconnect_timer = 0;
    /* keep rbuf: a frame being delivered may point into it (freed in destroy) */
    uint8_t *rbuf = c->rbuf;
    c->rbuf = NULL;
    close_socket(c);
    c->rbuf = rbuf;
    kc_req *r;
    while ((r = list_pop(&c->inflight))) complete(c, r, KC_CANCELLED, NULL, 0, false, 0);
    while ((r = list_pop(&c->pending))) complete(c, r, KC_CANCELLED, NULL, 0, false, 0);
    if (--c->busy == 0) destroy(c);
}

bool kc_ready(const kc_conn *c) { return c && c->state == ST_READY; }

bool kc_broker_versions(const kc_conn *c, int16_t api_key, int16_t *min, int16_t *max) {
    if (!c || !c->have_apis || api_key < 0 || api_key >= KC_API_SLOTS || !c->apis[api_key].listed) return false;
    if (min) *min = c->apis[api_key].min;
    if (max) *max = c->apis[api_key].max;
    return true;
}

int16_t kc_pick_version(const kc_conn *c, int16_t api_key, int16_t our_max) {
    int16_t lo, hi;
    if (!kc_broker_versions(c, api_key, &lo, &hi)) return -1;
    int16_t v = our_max < hi ? our_max : hi;
    return v >= lo ? v : -1;
}

int kc_outstanding(const kc_conn *c) { return c ? c->pending.n + c->inflight.n : 0; }
const kc_stats *kc_conn_stats(const kc_conn *c) { return &c->stats; }
const char *kc_conn_name(const kc_conn *c) { return c->name; }
