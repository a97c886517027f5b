/* quota.c - client quota sensors and throttling (see quota.h). */
#include "broker/quota.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/request.h"
#include "net/server.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

/* ---- Rate over SampledStat ---- */

void qrate_init(qrate *r) { memset(r, 0, sizeof *r); }

/* SampledStat.purgeObsoleteSamples: samples older than samples * window restart now */
static void purge(qrate *r, int64_t now) {
    for (int i = 0; i < r->nused; i++)
        if (now - r->last_ms[i] >= (int64_t)QUOTA_SAMPLES * QUOTA_WINDOW_MS) {
            r->last_ms[i] = now;
            r->value[i] = 0;
        }
}

void qrate_record(qrate *r, double v, int64_t now) {
    if (r->nused == 0) {
        r->nused = 1;
        r->cur = 0;
        r->last_ms[0] = now;
        r->value[0] = 0;
    } else if (now - r->last_ms[r->cur] >= QUOTA_WINDOW_MS) { /* the sample is complete: advance */
        r->cur = (r->cur + 1) % QUOTA_SAMPLES;
        if (r->cur >= r->nused) r->nused = r->cur + 1;
        r->last_ms[r->cur] = now;
        r->value[r->cur] = 0;
    }
    r->value[r->cur] += v;
}

int64_t qrate_window_ms(qrate *r, int64_t now) {
    purge(r, now);
    if (r->nused == 0) { /* SampledStat.oldest adds a sample at now */
        r->nused = 1;
        r->cur = 0;
        r->last_ms[0] = now;
        r->value[0] = 0;
    }
    int64_t oldest = r->last_ms[0];
    for (int i = 1; i < r->nused; i++)
        if (r->last_ms[i] < oldest) oldest = r->last_ms[i];
    int64_t elapsed = now - oldest;
    int64_t full = elapsed / QUOTA_WINDOW_MS, min_full = QUOTA_SAMPLES - 1;
    if (full < min_full) elapsed += (min_full - full) * QUOTA_WINDOW_MS;
    return elapsed > 1 ? elapsed : 1;
}

double qrate_measure(qrate *r, int64_t now) {
    int64_t w = qrate_window_ms(r, now);
    double total = 0;
    for (int i = 0; i < r->nused; i++) total += r->value[i];
    return total / ((double)w / 1000.0);
}

int64_t quota_throttle_ms(double value, double bound, int64_t window_ms) {
    if (!(value > bound) || bound <= 0) return 0;
    double ms = (value - bound) / bound * (double)window_ms; /* > 0: rounded half up, as llround */
    return ms >= 9.2e18 ? INT64_MAX : (int64_t)(ms + 0.5);
}

/* ---- TokenBucket ---- */

/* Plain C for the two libm calls this file had: the broker links no libm
 * (an idle broker's RSS, issue 18). */
static double min_of(double a, double b) { return a < b ? a : b; }

static double bucket_burst(double quota) { return QUOTA_SAMPLES * (QUOTA_WINDOW_MS / 1000.0) * quota; }

static void bucket_refill(qbucket *t, double quota, int64_t now) {
    double burst = bucket_burst(quota);
    t->tokens = min_of(burst, t->tokens + quota * (double)(now - t->last_ms) / 1000.0);
    t->last_ms = now;
}

double qbucket_measure(qbucket *t, double quota, int64_t now) {
    bucket_refill(t, quota, now);
    return t->tokens;
}

void qbucket_record(qbucket *t, double quota, double v, int64_t now) {
    bucket_refill(t, quota, now);
    t->tokens = min_of(bucket_burst(quota), t->tokens - v);
}

int32_t qbucket_throttle_ms(double tokens, double quota) {
    if (tokens >= 0 || quota <= 0) return 0;
    double ms = -tokens / quota * 1000.0; /* > 0: rounded half up, as round */
    return ms + 0.5 >= (double)INT32_MAX ? INT32_MAX : (int32_t)(ms + 0.5);
}

/* ---- sensors ---- */

/* One quota sensor: Kafka's metric tags (user, client-id), per kind. */
typedef struct sensor {
    char *user, *client;  /* tags; "" when not part of the quota entity */
    quota_kind kind;
    qrate rate;
    qbucket bucket;       /* QUOTA_MUTATION */
    struct sensor *next;
} sensor;

/* What a (principal, client id) resolved to, cached until the quotas change. */
typedef struct binding {
    char *principal, *client;
    quota_kind kind;
    uint64_t gen;
    double bound;         /* <= 0: no quota */
    sensor *s;
    struct binding *next;
} binding;

#define NBUCKETS 256

static struct {
    sensor *sensors[NBUCKETS];
    binding *bindings[NBUCKETS];
    uint64_t gen;          /* image->quota_changes the mask was made from */
    bool have_gen;
    unsigned kinds_set;    /* 1 << kind: some entity sets a quota of that kind */
} q;

static const int kind_key[QUOTA_NKINDS] = {MQ_PRODUCER_BYTE_RATE, MQ_CONSUMER_BYTE_RATE, MQ_REQUEST_PERCENTAGE,
                                           MQ_CONNECTION_CREATION_RATE, MQ_CONTROLLER_MUTATION_RATE};

static unsigned hash2(const char *a, size_t alen, const char *b, size_t blen, int kind) {
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (size_t i = 0; i < alen; i++) h = (h ^ (uint8_t)a[i]) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (size_t i = 0; i < blen; i++) h = (h ^ (uint8_t)b[i]) * 16777619u;
    return h % NBUCKETS;
}

static void refresh(const mimage *img) {
    if (q.have_gen && q.gen == img->quota_changes) return;
    q.gen = img->quota_changes;
    q.have_gen = true;
    q.kinds_set = 0;
    for (int i = 0; i < img->nquotas; i++)
        for (int k = 0; k < QUOTA_NKINDS; k++)
            if (img->quotas[i].set & (1u << kind_key[k])) q.kinds_set |= 1u << k;
}

bool quota_any(broker *b, quota_kind kind) {
    refresh(b->image);
    return (q.kinds_set >> kind) & 1u;
}

static const mquota *find(const mimage *img, int key, bool with_user, const char *user, bool with_client,
                          const char *client) {
    uint8_t has = (uint8_t)((with_user ? 1u << MQE_USER : 0) | (with_client ? 1u << MQE_CLIENT_ID : 0));
    const char *names[MQE_NTYPES] = {user, client, NULL};
    const mquota *e = mimage_quota(img, has, names);
    return e && (e->set & (1u << key)) ? e : NULL;
}

static sensor *sensor_get(quota_kind kind, const char *user, const char *client) {
    unsigned h = hash2(user, strlen(user), client, strlen(client), kind);
    for (sensor *s = q.sensors[h]; s; s = s->next)
        if (s->kind == kind && !strcmp(s->user, user) && !strcmp(s->client, client)) return s;
    sensor *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->user = strdup(user);
    s->client = strdup(client);
    if (!s->user || !s->client) {
        free(s->user);
        free(s->client);
        free(s);
        return NULL;
    }
    s->kind = kind;
    qrate_init(&s->rate);
    s->next = q.sensors[h];
    q.sensors[h] = s;
    return s;
}

/* DefaultQuotaCallback: the first entity in Kafka's order with this kind's key. */
static void resolve(const mimage *img, binding *bd) {
    int key = kind_key[bd->kind];
    const char *user = bd->principal;
    if (!strncmp(user, "User:", 5)) user += 5;
    const char *cid = bd->client;
    struct {
        bool u;
        const char *un;
        bool c;
        const char *cn;
    } order[8] = {{true, user, true, cid}, {true, user, true, NULL}, {true, user, false, NULL},
                  {true, NULL, true, cid}, {true, NULL, true, NULL}, {true, NULL, false, NULL},
                  {false, NULL, true, cid}, {false, NULL, true, NULL}};
    bd->bound = 0;
    bd->s = NULL;
    for (int i = 0; i < 8; i++) {
        const mquota *e = find(img, key, order[i].u, order[i].un, order[i].c, order[i].cn);
        if (!e) continue;
        bd->bound = e->value[key];
        bd->s = sensor_get(bd->kind, order[i].u ? user : "", order[i].c ? cid : "");
        return;
    }
}

static binding *binding_for(broker *b, quota_kind kind, const kreq *req) {
    if (!req->conn) return NULL;
    const char *principal = kconn_principal(req->conn);
    if (!principal) principal = "User:ANONYMOUS";
    kstr cid = req->client_id;
    size_t clen = cid.len > 0 ? (size_t)cid.len : 0;
    const char *cp = clen ? cid.p : "";
    unsigned h = hash2(principal, strlen(principal), cp, clen, kind);
    binding *bd = q.bindings[h];
    for (; bd; bd = bd->next)
        if (bd->kind == kind && strlen(bd->client) == clen && !memcmp(bd->client, cp, clen) &&
            !strcmp(bd->principal, principal))
            break;
    if (!bd) {
        bd = calloc(1, sizeof *bd);
        if (!bd) return NULL;
        bd->principal = strdup(principal);
        bd->client = strndup(cp, clen);
        if (!bd->principal || !bd->client) {
            free(bd->principal);
            free(bd->client);
            free(bd);
            return NULL;
        }
        bd->kind = kind;
        bd->gen = q.gen - 1; /* resolve below */
        bd->next = q.bindings[h];
        q.bindings[h] = bd;
    }
    if (bd->gen != q.gen) {
        resolve(b->image, bd);
        bd->gen = q.gen;
    }
    return bd->s && bd->bound > 0 ? bd : NULL;
}

static int32_t throttle_of(binding *bd, int64_t now) {
    double v = qrate_measure(&bd->s->rate, now);
    int64_t t = quota_throttle_ms(v, bd->bound, qrate_window_ms(&bd->s->rate, now));
    if (bd->kind == QUOTA_REQUEST && t > QUOTA_WINDOW_MS) t = QUOTA_WINDOW_MS;
    return t > INT32_MAX ? INT32_MAX : (int32_t)t;
}

int32_t quota_record(broker *b, quota_kind kind, const kreq *req, double value) {
    if (!quota_any(b, kind)) return 0;
    binding *bd = binding_for(b, kind, req);
    if (!bd) return 0;
    int64_t now = loop_now_ms(b->loop);
    qrate_record(&bd->s->rate, value, now);
    return throttle_of(bd, now);
}

int32_t quota_check(broker *b, quota_kind kind, const kreq *req) {
    if (!quota_any(b, kind)) return 0;
    binding *bd = binding_for(b, kind, req);
    return bd ? throttle_of(bd, loop_now_ms(b->loop)) : 0;
}

int32_t quota_max_in_window(broker *b, quota_kind kind, const kreq *req) {
    if (!quota_any(b, kind)) return INT32_MAX;
    binding *bd = binding_for(b, kind, req);
    if (!bd) return INT32_MAX;
    double m = bd->bound * (QUOTA_SAMPLES - 1) * (QUOTA_WINDOW_MS / 1000.0);
    return m >= (double)INT32_MAX ? INT32_MAX : (int32_t)m;
}

void quota_mutation_begin(broker *b, const kreq *req, int16_t strict_since, qmutation *m) {
    m->binding = quota_any(b, QUOTA_MUTATION) ? binding_for(b, QUOTA_MUTATION, req) : NULL;
    m->strict = req->api_version >= strict_since;
    m->throttle_ms = 0;
}

bool quota_mutation_record(broker *b, qmutation *m, double permits) {
    binding *bd = m->binding;
    if (!bd) return true;
    int64_t now = loop_now_ms(b->loop);
    qbucket *t = &bd->s->bucket;
    if (m->strict) {
        /* StrictControllerMutationQuota: checkQuotas, then record */
        double tokens = qbucket_measure(t, bd->bound, now);
        if (tokens < 0) {
            m->throttle_ms = qbucket_throttle_ms(tokens, bd->bound);
            return false;
        }
        qbucket_record(t, bd->bound, permits, now);
        return true;
    }
    /* PermissiveControllerMutationQuota: record, then check */
    qbucket_record(t, bd->bound, permits, now);
    if (t->tokens < 0) m->throttle_ms = qbucket_throttle_ms(t->tokens, bd->bound);
    return true;
}

int32_t quota_mutation_end(qmutation *m, kreq *req) {
    if (m->throttle_ms > req->throttle_ms) req->throttle_ms = m->throttle_ms;
    return req->throttle_ms;
}

void *quota_request_begin(broker *b, kreq *req) {
    if (!quota_any(b, QUOTA_REQUEST)) return NULL;
    /* SocketServer answers the SASL exchange itself, unthrottled */
    if (req->api_key == KAPI_SASL_HANDSHAKE || req->api_key == KAPI_SASL_AUTHENTICATE) return NULL;
    binding *bd = binding_for(b, QUOTA_REQUEST, req);
    if (!bd) return NULL;
    int32_t t = throttle_of(bd, loop_now_ms(b->loop));
    if (t > req->throttle_ms) req->throttle_ms = t;
    return bd->s;
}

void quota_request_end(broker *b, void *s, int64_t handler_ns) {
    sensor *sn = s;
    /* ClientRequestQuotaManager.nanosToPercentage: 100 % = one second per second */
    qrate_record(&sn->rate, (double)handler_ns * 100.0 / 1e9, loop_now_ms(b->loop));
}

int64_t quota_accept_throttle(void *ctx, const char *ip) {
    broker *b = ctx;
    if (!quota_any(b, QUOTA_CONNECTION)) return 0;
    const char *names[MQE_NTYPES] = {NULL, NULL, ip};
    const mquota *e = mimage_quota(b->image, 1u << MQE_IP, names);
    if (!e || !(e->set & (1u << MQ_CONNECTION_CREATION_RATE))) {
        names[MQE_IP] = NULL; /* the default ip */
        e = mimage_quota(b->image, 1u << MQE_IP, names);
    }
    if (!e || !(e->set & (1u << MQ_CONNECTION_CREATION_RATE))) return 0;
    double bound = e->value[MQ_CONNECTION_CREATION_RATE];
    sensor *s = sensor_get(QUOTA_CONNECTION, ip, "");
    if (!s) return 0;
    int64_t now = loop_now_ms(b->loop);
    qrate_record(&s->rate, 1.0, now);
    int64_t t = quota_throttle_ms(qrate_measure(&s->rate, now), bound, qrate_window_ms(&s->rate, now));
    if (t <= 0) return 0;
    qrate_record(&s->rate, -1.0, now); /* not accepted: not counted */
    return t > QUOTA_WINDOW_MS ? QUOTA_WINDOW_MS : t;
}

/* ---- muting ---- */

typedef struct held {
    kreq *req;
    kwriter *w;            /* a response sent when the delay is over (old versions) */
    loop_timer_id timer;
    struct held *prev, *next;
} held;

static held *held_list;

static void release(held *h) {
    if (h->prev) h->prev->next = h->next;
    else held_list = h->next;
    if (h->next) h->next->prev = h->prev;
    kreq *req = h->req;
    if (h->w) {
        if (req->conn) kconn_send(req->conn, h->w);
        else {
            kw_free(h->w);
            free(h->w);
        }
    }
    free(h);
    kreq_no_response(req); /* the connection reads its next request */
}

static void held_expired(kloop *l, void *arg) {
    (void)l;
    release(arg);
}

/* KIP-219: versions from which the client throttles itself (the response
 * goes at once); before them the broker delays the response. */
static bool client_throttles(const kreq *req) {
    if (req->api_key == KAPI_PRODUCE) return req->api_version >= 6;
    if (req->api_key == KAPI_FETCH) return req->api_version >= 8;
    return true;
}

bool quota_hold(kreq *req) {
    if (req->throttle_ms <= 0 || !req->conn) return false;
    held *h = calloc(1, sizeof *h);
    if (!h) return false;
    h->req = req;
    h->w = req->out;
    req->out = NULL;
    if (client_throttles(req)) {
        kconn_send(req->conn, h->w);
        h->w = NULL;
    }
    h->next = held_list;
    if (held_list) held_list->prev = h;
    held_list = h;
    h->timer = loop_timer_add(req->broker->loop, req->throttle_ms, held_expired, h);
    return true;
}

void quota_shutdown(broker *b) {
    while (held_list) {
        loop_timer_cancel(b->loop, held_list->timer);
        release(held_list);
    }
    for (int i = 0; i < NBUCKETS; i++) {
        while (q.sensors[i]) {
            sensor *s = q.sensors[i];
            q.sensors[i] = s->next;
            free(s->user);
            free(s->client);
            free(s);
        }
        while (q.bindings[i]) {
            binding *bd = q.bindings[i];
            q.bindings[i] = bd->next;
            free(bd->principal);
            free(bd->client);
            free(bd);
        }
    }
    q.have_gen = false;
}
