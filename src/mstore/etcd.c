/* etcd.c - etcd's v3 JSON API on top of etcd_http.c: requests with their
 * endpoint failover and timeouts, the JSON of every call (jansson, base64
 * keys and values, 64-bit numbers as strings), the streaming watch and the
 * blocking start-up wrappers. See etcd.h.
 */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mstore/etcd_internal.h"
#include "util/base64.h"

#define ETCD_MAX_ENDPOINTS 16

typedef struct etcd_req etcd_req;

struct etcd_client {
    kloop *loop;
    char *endpoints_str;
    etcd_endpoint *eps;
    int neps;
    int cur; /* the endpoint to try first: the last one that answered */
    int64_t timeout_ms;
    etcd_req *reqs;
    etcd_watch *watches;
};

struct etcd_req {
    etcd_client *c;
    etcd_req *prev, *next;
    int kind;
    const char *path;
    char *body;
    size_t body_len;
    bool idempotent; /* safe to send twice (reads) */
    etcd_cb cb;
    void *arg;
    int attempt;
    int ep;
    http_conn *hc;
    loop_timer_id timer;
    int64_t deadline_ms;
};

struct etcd_watch {
    etcd_client *c;
    etcd_watch *prev, *next;
    char *body;
    size_t body_len;
    etcd_watch_fn fn;
    void *arg;
    int attempt;
    int ep;
    http_conn *hc;
    loop_timer_id timer;
    bool created, ending;
    json_split split;
    etcd_event *pend; /* events of a fragmented revision, owned */
    int npend, cappend;
    bool *dead_flag;
};

/* ---------------------------------------------------------------- JSON out */

static json_t *j_bytes(const void *p, size_t len) {
    char *s = malloc(base64_encoded_len(len) + 1);
    if (!s) return NULL;
    size_t n = base64_encode(p, len, s);
    json_t *j = json_stringn(s, n);
    free(s);
    return j;
}

static json_t *j_i64(int64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)v);
    return json_string(s);
}

/* json_object_set_new that remembers a failure (NULL value or no memory). */
static void jset(json_t *o, const char *k, json_t *v, bool *ok) {
    if (!v || json_object_set_new(o, k, v) < 0) *ok = false;
}

static char *j_dump(json_t *o, bool ok, size_t *len) {
    char *s = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s) *len = strlen(s);
    return s;
}

static json_t *range_req(const void *key, size_t key_len, const void *end, size_t end_len, int64_t revision,
                         int64_t limit, bool *ok) {
    json_t *o = json_object();
    if (!o) {
        *ok = false;
        return NULL;
    }
    jset(o, "key", j_bytes(key, key_len), ok);
    if (end) jset(o, "range_end", j_bytes(end, end_len), ok);
    if (revision) jset(o, "revision", j_i64(revision), ok);
    if (limit) jset(o, "limit", j_i64(limit), ok);
    return o;
}

static json_t *put_req(const void *key, size_t key_len, const void *value, size_t value_len, int64_t lease,
                       bool *ok) {
    json_t *o = json_object();
    if (!o) {
        *ok = false;
        return NULL;
    }
    jset(o, "key", j_bytes(key, key_len), ok);
    jset(o, "value", j_bytes(value, value_len), ok);
    if (lease) jset(o, "lease", j_i64(lease), ok);
    return o;
}

static json_t *delete_req(const void *key, size_t key_len, const void *end, size_t end_len, bool *ok) {
    json_t *o = json_object();
    if (!o) {
        *ok = false;
        return NULL;
    }
    jset(o, "key", j_bytes(key, key_len), ok);
    if (end) jset(o, "range_end", j_bytes(end, end_len), ok);
    return o;
}

static json_t *op_json(const etcd_op *op, bool *ok) {
    json_t *w = json_object();
    if (!w) {
        *ok = false;
        return NULL;
    }
    switch (op->type) {
    case ETCD_OP_PUT:
        jset(w, "request_put", put_req(op->key, op->key_len, op->value, op->value_len, op->lease, ok), ok);
        break;
    case ETCD_OP_DELETE:
        jset(w, "request_delete_range", delete_req(op->key, op->key_len, op->range_end, op->range_end_len, ok), ok);
        break;
    case ETCD_OP_RANGE:
        jset(w, "request_range", range_req(op->key, op->key_len, op->range_end, op->range_end_len, 0, 0, ok), ok);
        break;
    default:
        *ok = false;
    }
    return w;
}

static json_t *cmp_json(const etcd_cmp *cmp, bool *ok) {
    static const char *const targets[] = {"CREATE", "MOD", "VERSION", "VALUE"};
    static const char *const fields[] = {"create_revision", "mod_revision", "version", "value"};
    static const char *const results[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
    json_t *o = json_object();
    if (!o || (unsigned)cmp->target > ETCD_CMP_VALUE || (unsigned)cmp->result > ETCD_LESS) {
        *ok = false;
        return o;
    }
    jset(o, "key", j_bytes(cmp->key, cmp->key_len), ok);
    jset(o, "target", json_string(targets[cmp->target]), ok);
    jset(o, "result", json_string(results[cmp->result]), ok);
    if (cmp->target == ETCD_CMP_VALUE) jset(o, fields[cmp->target], j_bytes(cmp->value, cmp->value_len), ok);
    else jset(o, fields[cmp->target], j_i64(cmp->number), ok);
    return o;
}

/* ----------------------------------------------------------------- JSON in */

/* An int64 field: a JSON string of digits (proto3 JSON) or a number; absent = 0. */
static int get_i64(json_t *o, const char *name, int64_t *out) {
    *out = 0;
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > 20) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end != s + n || (*s != '-' && (*s < '0' || *s > '9'))) return -1;
    *out = x;
    return 0;
}

static int get_bool(json_t *o, const char *name, bool *out) {
    *out = false;
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return -1;
    *out = json_is_true(v);
    return 0;
}

/* A bytes field (base64) into a malloc'd buffer (never NULL on success). */
static int get_bytes(json_t *o, const char *name, const uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    json_t *v = json_object_get(o, name);
    const char *s = "";
    size_t n = 0;
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) return -1;
        s = json_string_value(v);
        n = json_string_length(v);
    }
    uint8_t *b = malloc(base64_decoded_max(n) + 1);
    if (!b) return -1;
    long d = base64_decode(s, n, b);
    if (d < 0) {
        free(b);
        return -1;
    }
    *out = b;
    *len = (size_t)d;
    return 0;
}

static void kv_free(etcd_kv *kv) {
    free((void *)kv->key);
    free((void *)kv->value);
    kv->key = kv->value = NULL;
}

static int decode_kv(json_t *o, etcd_kv *kv) {
    memset(kv, 0, sizeof *kv);
    if (!json_is_object(o)) return -1;
    if (get_bytes(o, "key", &kv->key, &kv->key_len) < 0 || get_bytes(o, "value", &kv->value, &kv->value_len) < 0 ||
        get_i64(o, "create_revision", &kv->create_revision) < 0 || get_i64(o, "mod_revision", &kv->mod_revision) < 0 ||
        get_i64(o, "version", &kv->version) < 0 || get_i64(o, "lease", &kv->lease) < 0) {
        kv_free(kv);
        return -1;
    }
    return 0;
}

static int header_revision(json_t *o, int64_t *rev) {
    *rev = 0;
    json_t *h = json_object_get(o, "header");
    if (!h || json_is_null(h)) return 0;
    if (!json_is_object(h)) return -1;
    return get_i64(h, "revision", rev);
}

static int answer_add_kvs(etcd_answer *a, json_t *arr) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return -1;
    size_t n = json_array_size(arr);
    if (n > (size_t)(INT32_MAX / 2) - (size_t)a->nkvs) return -1;
    if (a->nkvs + (int)n > a->capkvs) {
        int cap = a->nkvs + (int)n;
        etcd_kv *nk = realloc(a->kvs, sizeof *nk * (size_t)cap);
        if (!nk) return -1;
        a->kvs = nk;
        a->capkvs = cap;
    }
    for (size_t i = 0; i < n; i++) {
        if (decode_kv(json_array_get(arr, i), &a->kvs[a->nkvs]) < 0) return -1;
        a->nkvs++;
    }
    return 0;
}

/* The message of an error answer: {"error":"..","message":"..","code":N}
 * (unary) or {"error":{"message":"..",..}} (a stream). */
static char *error_text(json_t *o) {
    json_t *e = json_object_get(o, "message");
    if (!json_is_string(e)) {
        e = json_object_get(o, "error");
        if (json_is_object(e)) e = json_object_get(e, "message");
    }
    if (json_is_string(e)) return strdup(json_string_value(e));
    return NULL;
}

static void answer_fail(etcd_answer *a, int status, const char *msg) {
    for (int i = 0; i < a->nkvs; i++) kv_free(&a->kvs[i]);
    a->nkvs = 0;
    a->r.status = status;
    if (!a->error) a->error = strdup(msg);
}

void etcd_answer_decode(etcd_answer *a, int kind, int http_status, const uint8_t *body, size_t len) {
    memset(a, 0, sizeof *a);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (http_status != 200) {
        if (json_is_object(root)) a->error = error_text(root);
        if (!a->error) {
            char msg[64];
            snprintf(msg, sizeof msg, "HTTP status %d", http_status);
            a->error = strdup(msg);
        }
        answer_fail(a, ETCD_ERROR, "error");
        goto out;
    }
    json_t *o = root;
    if (!json_is_object(o)) {
        answer_fail(a, ETCD_BAD_ANSWER, "answer is not a JSON object");
        goto out;
    }
    if (kind == EK_KEEPALIVE) { /* a stream of one answer */
        json_t *res = json_object_get(o, "result");
        if (!json_is_object(res)) {
            a->error = error_text(o);
            answer_fail(a, a->error ? ETCD_ERROR : ETCD_BAD_ANSWER, "keepalive answer without result");
            goto out;
        }
        o = res;
    }
    if (header_revision(o, &a->r.revision) < 0) {
        answer_fail(a, ETCD_BAD_ANSWER, "bad header");
        goto out;
    }
    int bad = 0;
    switch (kind) {
    case EK_RANGE:
        bad = answer_add_kvs(a, json_object_get(o, "kvs")) < 0 || get_bool(o, "more", &a->r.more) < 0;
        break;
    case EK_TXN: {
        bad = get_bool(o, "succeeded", &a->r.succeeded) < 0;
        json_t *resps = json_object_get(o, "responses");
        if (!bad && resps && !json_is_null(resps)) {
            if (!json_is_array(resps)) {
                bad = 1;
                break;
            }
            for (size_t i = 0; i < json_array_size(resps) && !bad; i++) {
                json_t *ro = json_array_get(resps, i);
                if (!json_is_object(ro)) {
                    bad = 1;
                    break;
                }
                json_t *rr = json_object_get(ro, "response_range");
                if (rr && !json_is_null(rr)) bad = !json_is_object(rr) || answer_add_kvs(a, json_object_get(rr, "kvs")) < 0;
            }
        }
        break;
    }
    case EK_GRANT:
    case EK_KEEPALIVE: {
        bad = get_i64(o, "ID", &a->r.lease_id) < 0 || get_i64(o, "TTL", &a->r.ttl) < 0;
        json_t *e = json_object_get(o, "error"); /* LeaseGrantResponse.error */
        if (!bad && json_is_string(e) && json_string_length(e) > 0) {
            a->error = strdup(json_string_value(e));
            answer_fail(a, ETCD_ERROR, "lease error");
            goto out;
        }
        if (a->r.ttl < 0) a->r.ttl = 0;
        break;
    }
    default:
        break;
    }
    if (bad) {
        answer_fail(a, ETCD_BAD_ANSWER, "unexpected JSON in the answer");
        goto out;
    }
    a->r.status = ETCD_OK;
out:
    json_decref(root);
    a->r.kvs = a->kvs;
    a->r.nkvs = a->nkvs;
    a->r.error = a->error;
    if (a->r.status != ETCD_OK && !a->r.error) a->r.error = "error";
}

void etcd_answer_free(etcd_answer *a) {
    for (int i = 0; i < a->nkvs; i++) kv_free(&a->kvs[i]);
    free(a->kvs);
    free(a->error);
    memset(a, 0, sizeof *a);
}

static void events_free(etcd_event *ev, int n) {
    for (int i = 0; i < n; i++) kv_free(&ev[i].kv);
    free(ev);
}

void etcd_watch_msg_decode(etcd_watch_msg *m, const uint8_t *obj, size_t len) {
    memset(m, 0, sizeof *m);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)obj, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *o = json_is_object(root) ? json_object_get(root, "result") : NULL;
    if (!json_is_object(o)) {
        m->error = json_is_object(root) ? error_text(root) : NULL;
        m->status = m->error ? ETCD_ERROR : ETCD_BAD_ANSWER;
        if (!m->error) m->error = strdup("watch message without result");
        goto out;
    }
    if (header_revision(o, &m->revision) < 0 || get_bool(o, "created", &m->created) < 0 ||
        get_bool(o, "canceled", &m->canceled) < 0 || get_bool(o, "fragment", &m->fragment) < 0 ||
        get_i64(o, "compact_revision", &m->compact_revision) < 0)
        goto bad;
    json_t *evs = json_object_get(o, "events");
    if (evs && !json_is_null(evs)) {
        if (!json_is_array(evs)) goto bad;
        size_t n = json_array_size(evs);
        if (n > INT32_MAX / 2) goto bad;
        m->events = calloc(n ? n : 1, sizeof *m->events);
        if (!m->events) goto bad;
        m->capevents = (int)n;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(evs, i);
            if (!json_is_object(e)) goto bad;
            json_t *t = json_object_get(e, "type");
            etcd_event *ev = &m->events[m->nevents];
            if (!t || json_is_null(t) || (json_is_string(t) && strcmp(json_string_value(t), "PUT") == 0) ||
                (json_is_integer(t) && json_integer_value(t) == 0))
                ev->is_delete = false;
            else if ((json_is_string(t) && strcmp(json_string_value(t), "DELETE") == 0) ||
                     (json_is_integer(t) && json_integer_value(t) == 1))
                ev->is_delete = true;
            else
                goto bad;
            if (decode_kv(json_object_get(e, "kv"), &ev->kv) < 0) goto bad;
            m->nevents++;
        }
    }
    m->status = ETCD_OK;
    if (m->canceled && m->compact_revision <= 0) {
        json_t *why = json_object_get(o, "cancel_reason");
        m->status = ETCD_ERROR;
        m->error = strdup(json_is_string(why) && json_string_length(why) ? json_string_value(why) : "watch canceled");
    }
    goto out;
bad:
    events_free(m->events, m->nevents);
    m->events = NULL;
    m->nevents = m->capevents = 0;
    m->status = ETCD_BAD_ANSWER;
    free(m->error);
    m->error = strdup("unexpected JSON in a watch message");
out:
    json_decref(root);
}

void etcd_watch_msg_free(etcd_watch_msg *m) {
    events_free(m->events, m->nevents);
    free(m->error);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ client */

static int parse_endpoint(etcd_endpoint *ep, const char *s, size_t n, char *err, size_t errlen) {
    memset(ep, 0, sizeof *ep);
    char buf[300];
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '/')) n--;
    if (n >= 7 && strncmp(s, "http://", 7) == 0) s += 7, n -= 7;
    else if (memmem(s, n, "://", 3)) {
        snprintf(err, errlen, "etcd endpoint %.*s: only http:// is supported", (int)n, s);
        return -1;
    }
    if (n == 0 || n >= sizeof buf) {
        snprintf(err, errlen, "bad etcd endpoint '%.*s'", (int)(n > 100 ? 100 : n), s);
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *host = buf, *port;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close || close[1] != ':') goto bad;
        *close = '\0';
        host = buf + 1;
        port = close + 2;
    } else {
        port = strrchr(buf, ':');
        if (!port) goto bad;
        *port++ = '\0';
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*host || *end || p <= 0 || p > 65535 || strlen(host) >= sizeof ep->host) goto bad;
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "etcd endpoint host %s: %s", host, gai_strerror(rc));
        return -1;
    }
    if (ai->ai_addrlen > sizeof ep->addr) {
        freeaddrinfo(ai);
        goto bad;
    }
    memcpy(&ep->addr, ai->ai_addr, ai->ai_addrlen);
    ep->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    memcpy(ep->host, host, strlen(host) + 1); /* checked shorter than ep->host above */
    ep->port = (int)p;
    return 0;
bad:
    snprintf(err, errlen, "bad etcd endpoint '%s' (want http://host:port)", buf);
    return -1;
}

etcd_client *etcd_new(kloop *loop, const char *endpoints, int64_t timeout_ms, char *err, size_t errlen) {
    if (!loop || !endpoints) {
        snprintf(err, errlen, "no etcd endpoints");
        return NULL;
    }
    etcd_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    c->endpoints_str = strdup(endpoints);
    c->eps = calloc(ETCD_MAX_ENDPOINTS, sizeof *c->eps);
    if (!c->endpoints_str || !c->eps) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (const char *s = endpoints; *s;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (c->neps == ETCD_MAX_ENDPOINTS) {
            snprintf(err, errlen, "more than %d etcd endpoints", ETCD_MAX_ENDPOINTS);
            goto fail;
        }
        if (parse_endpoint(&c->eps[c->neps], s, n, err, errlen) < 0) goto fail;
        c->neps++;
        s += n + (comma ? 1 : 0);
    }
    if (c->neps == 0) {
        snprintf(err, errlen, "no etcd endpoints");
        goto fail;
    }
    return c;
fail:
    free(c->endpoints_str);
    free(c->eps);
    free(c);
    return NULL;
}

static void watch_destroy(etcd_watch *w);

void etcd_free(etcd_client *c) {
    if (!c) return;
    while (c->reqs) {
        etcd_req *r = c->reqs;
        c->reqs = r->next;
        if (r->timer) loop_timer_cancel(c->loop, r->timer);
        http_conn_close(r->hc);
        free(r->body);
        free(r);
    }
    while (c->watches) watch_destroy(c->watches);
    for (int i = 0; i < c->neps; i++)
        while (c->eps[i].nidle > 0) http_conn_close(c->eps[i].idle[--c->eps[i].nidle]);
    free(c->eps);
    free(c->endpoints_str);
    free(c);
}

size_t etcd_prefix_end(const void *prefix, size_t len, uint8_t *out) {
    const uint8_t *p = prefix;
    memcpy(out, p, len);
    /* increment the last byte that is not 0xff, drop what follows; a prefix
     * of only 0xff bytes (or empty) has no end: "\0" means "to the last key" */
    for (size_t i = len; i > 0; i--) {
        if (out[i - 1] != 0xff) {
            out[i - 1]++;
            return i;
        }
    }
    if (len > 0) {
        out[0] = 0;
        return 1;
    }
    return 0;
}

/* ---- requests ---- */

static void req_attempt(etcd_req *r);

static void req_unlink(etcd_req *r) {
    etcd_client *c = r->c;
    if (r->prev) r->prev->next = r->next;
    else c->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    if (r->timer) loop_timer_cancel(c->loop, r->timer);
    r->timer = 0;
}

/* Detaches and frees the request, then calls back (the callback may free the client). */
static void req_complete(etcd_req *r, const etcd_result *res) {
    req_unlink(r);
    etcd_cb cb = r->cb;
    void *arg = r->arg;
    free(r->body);
    free(r);
    cb(arg, res);
}

static void req_fail(etcd_req *r, int status, const char *msg) {
    char text[400];
    etcd_endpoint *ep = &r->c->eps[r->ep];
    snprintf(text, sizeof text, "etcd %s:%d: %s", ep->host, ep->port, msg);
    etcd_result res = {0};
    res.status = status;
    res.error = text;
    req_complete(r, &res);
}

static bool req_can_retry(etcd_req *r, int64_t now) {
    return r->attempt == 0 && (r->idempotent || !r->hc || !r->hc->sent) && r->deadline_ms > now;
}

static void req_retry(etcd_req *r) {
    http_conn_close(r->hc);
    r->hc = NULL;
    if (r->timer) loop_timer_cancel(r->c->loop, r->timer);
    r->timer = 0;
    r->attempt++;
    r->ep = (r->ep + 1) % r->c->neps;
    req_attempt(r);
}

static void req_timeout(kloop *l, void *arg) {
    etcd_req *r = arg;
    r->timer = 0;
    int64_t now = monotonic_ms();
    (void)l;
    if (req_can_retry(r, now) && r->c->neps > 1) {
        r->c->cur = (r->ep + 1) % r->c->neps;
        req_retry(r);
        return;
    }
    if (r->deadline_ms > now) { /* a write already sent: wait for its answer until the deadline */
        r->timer = loop_timer_add(r->c->loop, r->deadline_ms - now, req_timeout, r);
        if (r->timer) return;
    }
    r->c->cur = (r->ep + 1) % r->c->neps;
    http_conn_close(r->hc);
    r->hc = NULL;
    req_fail(r, ETCD_UNREACHABLE, "no answer within the timeout");
}

static void req_conn_event(void *owner, http_conn *hc, int what) {
    etcd_req *r = owner;
    etcd_client *c = r->c;
    if (what == HC_DATA) return;
    if (what == HC_FAIL) {
        bool malformed = hc->malformed;
        const char *why = hc->why ? hc->why : "transport failure";
        char msg[128];
        snprintf(msg, sizeof msg, "%s", why);
        int64_t now = monotonic_ms();
        bool retry = !malformed && req_can_retry(r, now);
        if (retry) {
            c->cur = (r->ep + 1) % c->neps;
            req_retry(r);
            return;
        }
        http_conn_close(hc);
        r->hc = NULL;
        if (!malformed) c->cur = (r->ep + 1) % c->neps;
        req_fail(r, malformed ? ETCD_BAD_ANSWER : ETCD_UNREACHABLE, msg);
        return;
    }
    /* HC_DONE */
    etcd_answer a;
    etcd_answer_decode(&a, r->kind, hc->resp.status, http_resp_data(&hc->resp),
                       http_resp_avail(&hc->resp));
    c->cur = r->ep;
    r->hc = NULL;
    http_conn_release(hc, &c->eps[r->ep]);
    req_complete(r, &a.r);
    etcd_answer_free(&a);
}

static void req_attempt(etcd_req *r) {
    etcd_client *c = r->c;
    int64_t now = monotonic_ms();
    int64_t left = r->deadline_ms - now;
    if (left < 1) left = 1;
    /* with another endpoint to try, the first attempt gets half the time */
    int64_t wait = r->attempt == 0 && c->neps > 1 ? (left + 1) / 2 : left;
    r->hc = http_conn_post(c->loop, &c->eps[r->ep], r->ep, r->path, r->body, r->body_len, req_conn_event, r, false);
    r->timer = loop_timer_add(c->loop, wait, req_timeout, r);
    if (!r->hc || !r->timer) {
        /* out of memory: report from the loop when possible */
        http_conn_close(r->hc);
        r->hc = NULL;
        if (!r->timer) {
            req_fail(r, ETCD_UNREACHABLE, "out of memory");
            return;
        }
        r->deadline_ms = now; /* the timer ends it */
        r->attempt = 1;
    }
}

static int req_submit(etcd_client *c, int kind, const char *path, char *body, size_t body_len, bool idempotent,
                      etcd_cb cb, void *arg) {
    if (!body) return -1;
    etcd_req *r = calloc(1, sizeof *r);
    if (!r) {
        free(body);
        return -1;
    }
    r->c = c;
    r->kind = kind;
    r->path = path;
    r->body = body;
    r->body_len = body_len;
    r->idempotent = idempotent;
    r->cb = cb;
    r->arg = arg;
    r->ep = c->cur;
    r->deadline_ms = monotonic_ms() + c->timeout_ms;
    r->next = c->reqs;
    if (c->reqs) c->reqs->prev = r;
    c->reqs = r;
    r->hc = http_conn_post(c->loop, &c->eps[r->ep], r->ep, r->path, r->body, r->body_len, req_conn_event, r, false);
    r->timer = loop_timer_add(c->loop, c->neps > 1 ? (c->timeout_ms + 1) / 2 : c->timeout_ms, req_timeout, r);
    if (!r->hc || !r->timer) {
        req_unlink(r);
        http_conn_close(r->hc);
        free(r->body);
        free(r);
        return -1;
    }
    return 0;
}

int etcd_range(etcd_client *c, const void *key, size_t key_len, const void *range_end, size_t range_end_len,
               int64_t revision, int64_t limit, etcd_cb cb, void *arg) {
    if (!c || !cb || (!key && key_len)) return -1;
    bool ok = true;
    size_t len = 0;
    char *body = j_dump(range_req(key, key_len, range_end, range_end_len, revision, limit, &ok), ok, &len);
    return req_submit(c, EK_RANGE, "/v3/kv/range", body, len, true, cb, arg);
}

int etcd_put(etcd_client *c, const void *key, size_t key_len, const void *value, size_t value_len, int64_t lease,
             etcd_cb cb, void *arg) {
    if (!c || !cb || (!key && key_len) || (!value && value_len)) return -1;
    bool ok = true;
    size_t len = 0;
    char *body = j_dump(put_req(key, key_len, value, value_len, lease, &ok), ok, &len);
    return req_submit(c, EK_PUT, "/v3/kv/put", body, len, false, cb, arg);
}

int etcd_delete(etcd_client *c, const void *key, size_t key_len, etcd_cb cb, void *arg) {
    if (!c || !cb || (!key && key_len)) return -1;
    bool ok = true;
    size_t len = 0;
    char *body = j_dump(delete_req(key, key_len, NULL, 0, &ok), ok, &len);
    return req_submit(c, EK_DELETE, "/v3/kv/deleterange", body, len, false, cb, arg);
}

static json_t *ops_json(const etcd_op *ops, int n, bool *ok, bool *writes) {
    json_t *a = json_array();
    if (!a) {
        *ok = false;
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (ops[i].type != ETCD_OP_RANGE) *writes = true;
        if ((!ops[i].key && ops[i].key_len) || (ops[i].type == ETCD_OP_PUT && !ops[i].value && ops[i].value_len)) {
            *ok = false;
            continue;
        }
        json_t *o = op_json(&ops[i], ok);
        if (!o || json_array_append_new(a, o) < 0) *ok = false;
    }
    return a;
}

int etcd_txn(etcd_client *c, const etcd_cmp *cmps, int ncmps, const etcd_op *success, int nsuccess,
             const etcd_op *failure, int nfailure, etcd_cb cb, void *arg) {
    if (!c || !cb || ncmps < 0 || nsuccess < 0 || nfailure < 0) return -1;
    if ((ncmps && !cmps) || (nsuccess && !success) || (nfailure && !failure)) return -1;
    bool ok = true, writes = false;
    json_t *o = json_object();
    if (!o) return -1;
    json_t *ca = json_array();
    if (!ca) ok = false;
    for (int i = 0; ca && i < ncmps; i++) {
        if ((!cmps[i].key && cmps[i].key_len) || (!cmps[i].value && cmps[i].value_len)) ok = false;
        json_t *x = cmp_json(&cmps[i], &ok);
        if (!x || json_array_append_new(ca, x) < 0) ok = false;
    }
    jset(o, "compare", ca, &ok);
    jset(o, "success", ops_json(success, nsuccess, &ok, &writes), &ok);
    jset(o, "failure", ops_json(failure, nfailure, &ok, &writes), &ok);
    size_t len = 0;
    char *body = j_dump(o, ok, &len);
    return req_submit(c, EK_TXN, "/v3/kv/txn", body, len, !writes, cb, arg);
}

static char *i64_body(const char *field, int64_t v, size_t *len) {
    bool ok = true;
    json_t *o = json_object();
    if (!o) return NULL;
    jset(o, field, j_i64(v), &ok);
    return j_dump(o, ok, len);
}

int etcd_lease_grant(etcd_client *c, int64_t ttl_seconds, etcd_cb cb, void *arg) {
    if (!c || !cb || ttl_seconds <= 0) return -1;
    size_t len = 0;
    char *body = i64_body("TTL", ttl_seconds, &len);
    /* a grant sent twice only leaves an unused lease that expires */
    return req_submit(c, EK_GRANT, "/v3/lease/grant", body, len, true, cb, arg);
}

int etcd_lease_keepalive(etcd_client *c, int64_t lease_id, etcd_cb cb, void *arg) {
    if (!c || !cb) return -1;
    size_t len = 0;
    char *body = i64_body("ID", lease_id, &len);
    return req_submit(c, EK_KEEPALIVE, "/v3/lease/keepalive", body, len, true, cb, arg);
}

int etcd_lease_revoke(etcd_client *c, int64_t lease_id, etcd_cb cb, void *arg) {
    if (!c || !cb) return -1;
    size_t len = 0;
    char *body = i64_body("ID", lease_id, &len);
    /* not retried once sent: a second revoke would answer "lease not found" */
    return req_submit(c, EK_REVOKE, "/v3/lease/revoke", body, len, false, cb, arg);
}

int etcd_compact(etcd_client *c, int64_t revision, etcd_cb cb, void *arg) {
    if (!c || !cb || revision <= 0) return -1;
    size_t len = 0;
    char *body = i64_body("revision", revision, &len);
    return req_submit(c, EK_COMPACT, "/v3/kv/compaction", body, len, true, cb, arg);
}

/* ---- watch ---- */

static void watch_conn_event(void *owner, http_conn *hc, int what);
static void watch_timeout(kloop *l, void *arg);

static void watch_unlink(etcd_watch *w) {
    etcd_client *c = w->c;
    if (w->prev) w->prev->next = w->next;
    else c->watches = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
    if (w->timer) loop_timer_cancel(c->loop, w->timer);
    w->timer = 0;
    http_conn_close(w->hc);
    w->hc = NULL;
}

static void watch_destroy(etcd_watch *w) {
    watch_unlink(w);
    if (w->dead_flag) *w->dead_flag = true;
    events_free(w->pend, w->npend);
    free(w->body);
    free(w);
}

/* The watch ended: detach, tell the owner once, free. */
static void watch_end(etcd_watch *w, int status, const char *error, int64_t revision, int64_t compact_revision) {
    char text[400];
    etcd_endpoint *ep = &w->c->eps[w->ep];
    snprintf(text, sizeof text, "etcd %s:%d: %s", ep->host, ep->port, error ? error : "watch ended");
    watch_unlink(w);
    w->ending = true;
    if (w->dead_flag) *w->dead_flag = true;
    w->dead_flag = NULL;
    etcd_watch_batch b = {0};
    b.status = status;
    b.error = status == ETCD_OK ? NULL : text;
    b.revision = revision;
    b.compact_revision = compact_revision;
    w->fn(w->arg, &b);
    events_free(w->pend, w->npend);
    free(w->body);
    free(w);
}

static int watch_connect(etcd_watch *w) {
    etcd_client *c = w->c;
    w->hc = http_conn_post(c->loop, &c->eps[w->ep], w->ep, "/v3/watch", w->body, w->body_len, watch_conn_event, w,
                           true);
    w->timer = loop_timer_add(c->loop, c->timeout_ms, watch_timeout, w);
    return w->hc && w->timer ? 0 : -1;
}

static void watch_retry_or_end(etcd_watch *w, const char *why) {
    etcd_client *c = w->c;
    c->cur = (w->ep + 1) % c->neps;
    if (!w->created && w->attempt == 0) {
        http_conn_close(w->hc);
        w->hc = NULL;
        if (w->timer) loop_timer_cancel(c->loop, w->timer);
        w->timer = 0;
        w->attempt++;
        w->ep = (w->ep + 1) % c->neps;
        if (watch_connect(w) == 0) return;
        why = "out of memory";
    }
    watch_end(w, ETCD_UNREACHABLE, why, 0, 0);
}

static void watch_timeout(kloop *l, void *arg) {
    (void)l;
    etcd_watch *w = arg;
    w->timer = 0;
    watch_retry_or_end(w, "no answer to the watch within the timeout");
}

/* Takes the message's events after the pending fragments; delivers them
 * unless the revision continues in the next message. false if the watch is
 * gone (ended or cancelled from the callback). */
static bool watch_deliver(etcd_watch *w, etcd_watch_msg *m) {
    if (m->nevents > 0) {
        if (w->npend + m->nevents > w->cappend) {
            int cap = w->npend + m->nevents;
            etcd_event *ne = realloc(w->pend, sizeof *ne * (size_t)cap);
            if (!ne) {
                watch_end(w, ETCD_UNREACHABLE, "out of memory", 0, 0);
                return false;
            }
            w->pend = ne;
            w->cappend = cap;
        }
        memcpy(w->pend + w->npend, m->events, sizeof *m->events * (size_t)m->nevents);
        w->npend += m->nevents;
        m->nevents = 0; /* ownership of key/value moved to pend */
    }
    if (m->fragment || w->npend == 0) return true;
    etcd_event *ev = w->pend;
    int n = w->npend;
    w->pend = NULL;
    w->npend = w->cappend = 0;
    etcd_watch_batch b = {0};
    b.status = ETCD_OK;
    b.revision = m->revision;
    b.events = ev;
    b.nevents = n;
    bool dead = false;
    w->dead_flag = &dead;
    w->fn(w->arg, &b);
    events_free(ev, n);
    if (dead) return false;
    w->dead_flag = NULL;
    return true;
}

/* Handles every complete message in the stream buffer; false if the watch is gone. */
static bool watch_process(etcd_watch *w, http_resp *resp) {
    for (;;) {
        size_t off, olen;
        int rc = json_split_next(&w->split, http_resp_data(resp), http_resp_avail(resp), &off, &olen);
        if (rc == 0) return true;
        if (rc < 0) {
            watch_end(w, ETCD_BAD_ANSWER, "the watch stream is not JSON objects", 0, 0);
            return false;
        }
        etcd_watch_msg m;
        etcd_watch_msg_decode(&m, http_resp_data(resp) + off, olen);
        http_resp_consume(resp, off + olen);
        memset(&w->split, 0, sizeof w->split);
        if (m.status != ETCD_OK) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s", m.error ? m.error : "watch failed");
            int st = m.status;
            etcd_watch_msg_free(&m);
            watch_end(w, st, msg, 0, 0);
            return false;
        }
        if (m.created && !w->created) {
            w->created = true;
            if (w->timer) loop_timer_cancel(w->c->loop, w->timer);
            w->timer = 0;
            w->c->cur = w->ep;
        }
        if (!watch_deliver(w, &m)) {
            etcd_watch_msg_free(&m);
            return false;
        }
        int64_t compact = m.compact_revision, rev = m.revision;
        etcd_watch_msg_free(&m);
        if (compact > 0) {
            watch_end(w, ETCD_OK, NULL, rev, compact);
            return false;
        }
    }
}

static void watch_conn_event(void *owner, http_conn *hc, int what) {
    etcd_watch *w = owner;
    if (what == HC_FAIL) {
        if (hc->malformed) watch_end(w, ETCD_BAD_ANSWER, hc->why ? hc->why : "malformed answer", 0, 0);
        else if (w->created) watch_end(w, ETCD_UNREACHABLE, "the watch connection was lost", 0, 0);
        else watch_retry_or_end(w, hc->why ? hc->why : "transport failure");
        return;
    }
    if (hc->resp.status != 200) {
        if (what != HC_DONE) return; /* gather the whole error answer */
        etcd_answer a;
        etcd_answer_decode(&a, EK_PUT, hc->resp.status, http_resp_data(&hc->resp),
                           http_resp_avail(&hc->resp));
        char msg[300];
        snprintf(msg, sizeof msg, "%s", a.r.error ? a.r.error : "watch refused");
        etcd_answer_free(&a);
        watch_end(w, ETCD_ERROR, msg, 0, 0);
        return;
    }
    if (!watch_process(w, &hc->resp)) return;
    if (what == HC_DONE) watch_end(w, ETCD_UNREACHABLE, "the watch stream ended", 0, 0);
}

etcd_watch *etcd_watch_start(etcd_client *c, const void *key, size_t key_len, const void *range_end,
                             size_t range_end_len, int64_t start_revision, etcd_watch_fn fn, void *arg) {
    if (!c || !fn || (!key && key_len)) return NULL;
    bool ok = true;
    json_t *o = json_object(), *cr = json_object();
    if (!o || !cr) ok = false;
    if (cr) {
        jset(cr, "key", j_bytes(key, key_len), &ok);
        if (range_end) jset(cr, "range_end", j_bytes(range_end, range_end_len), &ok);
        if (start_revision) jset(cr, "start_revision", j_i64(start_revision), &ok);
    }
    if (o) jset(o, "create_request", cr, &ok);
    else json_decref(cr);
    size_t len = 0;
    char *body = o ? j_dump(o, ok, &len) : NULL;
    if (!body) return NULL;
    etcd_watch *w = calloc(1, sizeof *w);
    if (!w) {
        free(body);
        return NULL;
    }
    w->c = c;
    w->body = body;
    w->body_len = len;
    w->fn = fn;
    w->arg = arg;
    w->ep = c->cur;
    w->next = c->watches;
    if (c->watches) c->watches->prev = w;
    c->watches = w;
    if (watch_connect(w) < 0) {
        watch_destroy(w);
        return NULL;
    }
    return w;
}

void etcd_watch_cancel(etcd_watch *w) {
    if (!w || w->ending) return;
    watch_destroy(w);
}

/* ---- blocking wrappers ---- */

typedef struct sync_ctx {
    kloop *loop;
    etcd_sync_result *out;
} sync_ctx;

void etcd_result_copy(etcd_sync_result *out, const etcd_result *r) {
    memset(out, 0, sizeof *out);
    out->r = *r;
    out->r.kvs = NULL;
    out->r.nkvs = 0;
    out->r.error = NULL;
    size_t bytes = sizeof(etcd_kv) * (size_t)(r->nkvs > 0 ? r->nkvs : 0);
    for (int i = 0; i < r->nkvs; i++) bytes += r->kvs[i].key_len + r->kvs[i].value_len + 2;
    if (r->nkvs > 0) {
        out->kvs_owned = malloc(bytes);
        if (!out->kvs_owned) {
            out->r.status = ETCD_ERROR;
            out->error_owned = strdup("out of memory");
        } else {
            uint8_t *p = (uint8_t *)(out->kvs_owned + r->nkvs);
            for (int i = 0; i < r->nkvs; i++) {
                etcd_kv *kv = &out->kvs_owned[i];
                *kv = r->kvs[i];
                if (r->kvs[i].key_len) memcpy(p, r->kvs[i].key, r->kvs[i].key_len);
                kv->key = p;
                p += r->kvs[i].key_len + 1;
                if (r->kvs[i].value_len) memcpy(p, r->kvs[i].value, r->kvs[i].value_len);
                kv->value = p;
                p += r->kvs[i].value_len + 1;
            }
            out->r.kvs = out->kvs_owned;
            out->r.nkvs = r->nkvs;
        }
    }
    if (r->error && !out->error_owned) out->error_owned = strdup(r->error);
    out->r.error = out->error_owned;
    if (out->r.status != ETCD_OK && !out->r.error) out->r.error = "error";
}

static void sync_cb(void *arg, const etcd_result *r) {
    sync_ctx *s = arg;
    etcd_result_copy(s->out, r);
    loop_stop(s->loop);
}

enum { SYNC_RANGE, SYNC_TXN, SYNC_GRANT };

typedef struct sync_call {
    int what;
    const void *key, *range_end;
    size_t key_len, range_end_len;
    int64_t revision, limit, ttl;
    const etcd_cmp *cmps;
    const etcd_op *success, *failure;
    int ncmps, nsuccess, nfailure;
} sync_call;

static int run_sync(etcd_client *c, const sync_call *k, etcd_sync_result *out) {
    memset(out, 0, sizeof *out);
    char err[256];
    kloop *l = c ? loop_new() : NULL;
    etcd_client *pc = l ? etcd_new(l, c->endpoints_str, c->timeout_ms, err, sizeof err) : NULL;
    int rc = -1;
    sync_ctx s = {l, out};
    if (pc) {
        pc->cur = c->cur;
        if (k->what == SYNC_RANGE)
            rc = etcd_range(pc, k->key, k->key_len, k->range_end, k->range_end_len, k->revision, k->limit, sync_cb, &s);
        else if (k->what == SYNC_TXN)
            rc = etcd_txn(pc, k->cmps, k->ncmps, k->success, k->nsuccess, k->failure, k->nfailure, sync_cb, &s);
        else
            rc = etcd_lease_grant(pc, k->ttl, sync_cb, &s);
    }
    if (rc == 0) {
        loop_run(l);
        c->cur = pc->cur;
    } else {
        out->r.status = ETCD_ERROR;
        out->error_owned = strdup(c ? "invalid arguments or out of memory" : "no client");
        out->r.error = out->error_owned ? out->error_owned : "error";
    }
    etcd_free(pc);
    loop_free(l);
    return out->r.status;
}

int etcd_range_sync(etcd_client *c, const void *key, size_t key_len, const void *range_end, size_t range_end_len,
                    int64_t revision, int64_t limit, etcd_sync_result *out) {
    sync_call k = {.what = SYNC_RANGE, .key = key, .key_len = key_len, .range_end = range_end,
                   .range_end_len = range_end_len, .revision = revision, .limit = limit};
    return run_sync(c, &k, out);
}

int etcd_txn_sync(etcd_client *c, const etcd_cmp *cmps, int ncmps, const etcd_op *success, int nsuccess,
                  const etcd_op *failure, int nfailure, etcd_sync_result *out) {
    sync_call k = {.what = SYNC_TXN, .cmps = cmps, .ncmps = ncmps, .success = success, .nsuccess = nsuccess,
                   .failure = failure, .nfailure = nfailure};
    return run_sync(c, &k, out);
}

int etcd_lease_grant_sync(etcd_client *c, int64_t ttl_seconds, etcd_sync_result *out) {
    sync_call k = {.what = SYNC_GRANT, .ttl = ttl_seconds};
    return run_sync(c, &k, out);
}

void etcd_sync_result_free(etcd_sync_result *r) {
    if (!r) return;
    free(r->kvs_owned);
    free(r->error_owned);
    memset(r, 0, sizeof *r);
}
