/* api.c - the console's JSON API (docs/console.md), answered on the event
 * loop from the broker's own structures, as render.c reads them:
 *
 *   GET  /api/cluster                  cluster id, nodes, controller, counts
 *   GET  /api/topics                   every topic with sizes and health
 *   GET  /api/topic?name=T             partitions (leader, replicas, ISR,
 *                                      offsets, sizes) and configs
 *   GET  /api/messages?topic=T&partition=P[&offset=O|&timestamp=MS|&from=end][&count=N]
 *                                      at most 100 records and 1 MB of log
 *   GET  /api/groups                   the groups this node coordinates
 *   GET  /api/group?id=G               members, assignment, offsets and lag
 *   GET  /api/rates                    per-topic counters (the UI derives /s)
 *   POST /api/group/reset?group=G&topic=T[&partition=P]&to=earliest|latest|offset|timestamp[&offset=O|&timestamp=MS]
 *                                      only with console.read.only=false, an
 *                                      Empty group and the X-Samsa-Console header
 *
 * Query values are percent-decoded and checked; anything malformed is a
 * 400 with {"error": "..."}. Records are read through the storage read
 * path (plog_read) and decoded by the records module's iterator.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config_internal.h"
#include "console/console.h"
#include "group/gcoord.h"
#include "group/grecords.h"
#include "metrics/metrics.h"
#include "protocol/errors.h"
#include "protocol/gen/consumer_protocol_assignment.h"
#include "protocol/records.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "util/base64.h"
#include "util/log.h"

#define COMPONENT "samsa.console.Api"

#define MAX_RECORDS 100
#define DEFAULT_RECORDS 20
#define MAX_READ_BYTES (1 << 20)      /* log bytes one browse request reads */
#define MAX_SHOWN_BYTES (64 << 10)    /* of one key, value or header shown */
#define DECODE_ARENA_LIMIT (64u << 20) /* decompression of what was read */

/* ---- answers ---- */

static int send_json(mbuf *out, const char **ctype, json_t *j, int status) {
    *ctype = "application/json";
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        mb_str(out, "{\"error\":\"out of memory\"}");
        return 500;
    }
    mb_str(out, s);
    free(s);
    return status;
}

static int fail(mbuf *out, const char **ctype, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(mbuf *out, const char **ctype, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_object(), *m = json_string(msg); /* NULL when msg is not UTF-8 */
    json_object_set_new(j, "error", m ? m : json_string("bad input (not UTF-8)"));
    return send_json(out, ctype, j, status);
}

/* ---- query parameters ---- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The value of name in the query, percent-decoded into out (NUL ended):
 * 1 found, 0 absent, -1 malformed (bad escape, a NUL, longer than cap-1). */
static int qparam(const http_request *r, const char *name, char *out, size_t cap) {
    size_t nlen = strlen(name);
    const char *q = r->query, *end = r->query ? r->query + r->query_len : NULL;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == nlen && memcmp(q, name, nlen) == 0) {
            size_t n = 0;
            for (const char *v = eq ? eq + 1 : pe; v < pe; v++) {
                char c = *v;
                if (c == '+') c = ' ';
                else if (c == '%') {
                    if (pe - v < 3) return -1;
                    int hi = hexval(v[1]), lo = hexval(v[2]);
                    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
                    c = (char)(hi * 16 + lo);
                    v += 2;
                }
                if (n + 1 >= cap) return -1;
                out[n++] = c;
            }
            out[n] = 0;
            return 1;
        }
        q = amp ? amp + 1 : end;
    }
    return 0;
}

/* A decimal integer in [min, max]; false otherwise. */
static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) {
    if (!*s) return false;
    bool neg = *s == '-';
    const char *p = s + neg;
    if (!*p) return false;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        if (v > (UINT64_MAX - 9) / 10) return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX) return false;
    int64_t x = neg ? -(int64_t)v : (int64_t)v;
    if (x < min || x > max) return false;
    *out = x;
    return true;
}

/* A required or optional integer parameter. Returns 1 set, 0 absent, or
 * the HTTP status of the error answer already written (< 0 as -400). */
static int int_param(const http_request *r, const char *name, int64_t min, int64_t max, int64_t *v, mbuf *out,
                     const char **ctype) {
    char buf[32];
    int got = qparam(r, name, buf, sizeof buf);
    if (got == 0) return 0;
    if (got < 0 || !parse_i64(buf, min, max, v))
        return -fail(out, ctype, 400, "parameter %s must be an integer from %lld to %lld", name, (long long)min,
                     (long long)max);
    return 1;
}

/* ---- helpers ---- */

static json_t *int_array(const int32_t *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* Bytes as a JSON string when they are UTF-8, else under name_base64. At
 * most MAX_SHOWN_BYTES are shown (name_truncated says so). */
static void set_bytes(json_t *o, const char *name, kbytes b) {
    if (b.len < 0 || !b.p) {
        json_object_set_new(o, name, json_null());
        return;
    }
    size_t n = (size_t)b.len;
    char key[64];
    if (n > MAX_SHOWN_BYTES) {
        n = MAX_SHOWN_BYTES;
        /* cut before a UTF-8 character that does not fit whole */
        for (int k = 0; k < 3 && n > 0 && (b.p[n] & 0xC0) == 0x80; k++) n--;
        snprintf(key, sizeof key, "%s_truncated", name);
        json_object_set_new(o, key, json_integer(b.len));
    }
    json_t *s = json_stringn((const char *)b.p, n);
    if (s) {
        json_object_set_new(o, name, s);
        return;
    }
    char *enc = malloc(base64_encoded_len(n) + 1);
    if (!enc) return;
    base64_encode(b.p, n, enc);
    snprintf(key, sizeof key, "%s_base64", name);
    json_object_set_new(o, key, json_string(enc));
    free(enc);
}

/* qsort comparators of arrays of pointers to structs, by name */
static int cmp_mtopic(const void *a, const void *b) {
    return strcmp((*(const mtopic *const *)a)->name, (*(const mtopic *const *)b)->name);
}
static int cmp_kgroup(const void *a, const void *b) {
    return strcmp((*(const kgroup *const *)a)->id, (*(const kgroup *const *)b)->id);
}
static int cmp_topic_rt(const void *a, const void *b) {
    return strcmp((*(const topic_rt *const *)a)->name, (*(const topic_rt *const *)b)->name);
}

static bool is_internal(const char *topic) {
    return strcmp(topic, "__consumer_offsets") == 0 || strcmp(topic, "__transaction_state") == 0;
}

/* The image's topics sorted by name, in a malloc'd array. */
static const mtopic **sorted_topics(broker *b, int *n) {
    *n = 0;
    const mtopic **v = malloc(sizeof *v * (size_t)(b->image->ntopics + 1));
    if (!v) return NULL;
    for (int i = 0; i < b->image->ntopics; i++)
        if (b->image->topics[i]) v[(*n)++] = b->image->topics[i];
    qsort(v, (size_t)*n, sizeof *v, cmp_mtopic);
    return v;
}

static partition *local_partition(broker *b, const char *topic, int32_t index) {
    return broker_partition(b, kstr_from(topic), index);
}

/* ---- /api/cluster ---- */

static int api_cluster(broker *b, bool read_only, mbuf *out, const char **ctype) {
    json_t *j = json_object();
    json_object_set_new(j, "cluster_id", json_string(b->cluster_id));
    json_object_set_new(j, "node_id", json_integer(broker_node_id(b)));
    int32_t ctrl = broker_controller_id(b);
    json_object_set_new(j, "controller_id", json_integer(ctrl));
    json_object_set_new(j, "kafka_version", json_string("3.6.1"));
    json_object_set_new(j, "read_only", json_boolean(read_only));
    json_object_set_new(j, "authentication", json_string(console_auth_enabled() ? "basic" : "none"));
    json_object_set_new(j, "uptime_ms", json_integer(monotonic_ms() - b->started_ms));
    json_t *nodes = json_array();
    for (int i = 0; i < b->image->nbrokers; i++) {
        const mbroker *br = &b->image->brokers[i];
        json_t *n = json_object();
        json_object_set_new(n, "id", json_integer(br->id));
        broker_node live;
        bool alive = broker_node_lookup(b, br->id, &live);
        json_object_set_new(n, "host", alive ? json_string(live.host)
                                              : str_or_null(br->nendpoints ? br->endpoints[0].host : NULL));
        json_object_set_new(n, "port", json_integer(alive ? live.port : br->nendpoints ? br->endpoints[0].port : -1));
        json_object_set_new(n, "rack", str_or_null(br->rack));
        json_object_set_new(n, "fenced", json_boolean(br->fenced));
        json_object_set_new(n, "alive", json_boolean(alive));
        json_object_set_new(n, "controller", json_boolean(br->id == ctrl));
        json_t *eps = json_array();
        for (int e = 0; e < br->nendpoints; e++) {
            json_t *ep = json_object();
            json_object_set_new(ep, "listener", str_or_null(br->endpoints[e].name));
            json_object_set_new(ep, "host", str_or_null(br->endpoints[e].host));
            json_object_set_new(ep, "port", json_integer(br->endpoints[e].port));
            json_array_append_new(eps, ep);
        }
        json_object_set_new(n, "endpoints", eps);
        json_array_append_new(nodes, n);
    }
    json_object_set_new(j, "nodes", nodes);
    int64_t topics = 0, parts = 0, under = 0, offline = 0;
    for (int i = 0; i < b->image->ntopics; i++) {
        const mtopic *t = b->image->topics[i];
        if (!t) continue;
        topics++;
        for (int k = 0; k < t->nparts; k++) {
            parts++;
            if (t->parts[k].leader < 0) offline++;
            if (t->parts[k].nisr < t->parts[k].nreplicas) under++;
        }
    }
    json_object_set_new(j, "topics", json_integer(topics));
    json_object_set_new(j, "partitions", json_integer(parts));
    json_object_set_new(j, "under_replicated_partitions", json_integer(under));
    json_object_set_new(j, "offline_partitions", json_integer(offline));
    int groups = b->groups ? b->groups->mgr.ngroups : 0;
    json_object_set_new(j, "groups", json_integer(groups));
    return send_json(out, ctype, j, 200);
}

/* ---- /api/topics, /api/topic ---- */

static int api_topics(broker *b, mbuf *out, const char **ctype) {
    int n;
    const mtopic **ts = sorted_topics(b, &n);
    if (!ts) return fail(out, ctype, 500, "out of memory");
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const mtopic *t = ts[i];
        json_t *o = json_object();
        char id[23];
        kafka_uuid_to_string(t->id.b, id);
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "id", json_string(id));
        json_object_set_new(o, "partitions", json_integer(t->nparts));
        json_object_set_new(o, "replication_factor", json_integer(t->nparts ? t->parts[0].nreplicas : 0));
        json_object_set_new(o, "internal", json_boolean(is_internal(t->name)));
        int64_t under = 0, offline = 0, size = 0, msgs = 0;
        int local = 0;
        for (int k = 0; k < t->nparts; k++) {
            if (t->parts[k].leader < 0) offline++;
            if (t->parts[k].nisr < t->parts[k].nreplicas) under++;
            partition *p = local_partition(b, t->name, k);
            if (p && p->log) {
                local++;
                size += plog_size(p->log);
                msgs += p->high_watermark - plog_start_offset(p->log);
            }
        }
        json_object_set_new(o, "under_replicated_partitions", json_integer(under));
        json_object_set_new(o, "offline_partitions", json_integer(offline));
        json_object_set_new(o, "local_partitions", json_integer(local));
        json_object_set_new(o, "size_bytes", json_integer(size));
        json_object_set_new(o, "messages", json_integer(msgs)); /* offsets between log start and HW */
        json_array_append_new(arr, o);
    }
    free(ts);
    json_t *j = json_object();
    json_object_set_new(j, "topics", arr);
    return send_json(out, ctype, j, 200);
}


/* Parallel key/value arrays of an image config set (values non-NULL). */
static int mset_arrays(const mconfig_set *m, const char ***keys, const char ***values) {
    int n = 0;
    *keys = calloc((size_t)(m ? m->count : 0) + 1, sizeof **keys);
    *values = calloc((size_t)(m ? m->count : 0) + 1, sizeof **values);
    if (!*keys || !*values) return -1;
    for (int i = 0; m && i < m->count; i++)
        if (m->items[i].value) {
            (*keys)[n] = m->items[i].key;
            (*values)[n] = m->items[i].value;
            n++;
        }
    return n;
}

static json_t *topic_configs(broker *b, const mtopic *t) {
    json_t *arr = json_array();
    const char **dk = NULL, **dv = NULL, **fk = NULL, **fv = NULL, **tk = NULL, **tv = NULL;
    int nd = mset_arrays(&b->image->broker_configs, &dk, &dv);
    int nf = mset_arrays(&b->image->default_broker_configs, &fk, &fv);
    int nt = mset_arrays(&t->configs, &tk, &tv);
    int max = topic_config_def_count() + 8;
    config_entry *es = calloc((size_t)max, sizeof *es);
    karena a;
    karena_init(&a, 0);
    if (nd >= 0 && nf >= 0 && nt >= 0 && es) {
        config_layers l = {.static_cfg = &b->cfg.raw,
                           .dyn_broker_keys = dk,
                           .dyn_broker_values = dv,
                           .ndyn_broker = nd,
                           .dyn_default_keys = fk,
                           .dyn_default_values = fv,
                           .ndyn_default = nf};
        int n = config_describe_topic(&l, tk, tv, nt, es, max, &a);
        for (int i = 0; i < n; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(es[i].name));
            json_object_set_new(o, "value", es[i].sensitive ? json_null() : str_or_null(es[i].value));
            json_object_set_new(o, "source", json_string(config_source_name(es[i].source)));
            json_object_set_new(o, "sensitive", json_boolean(es[i].sensitive));
            json_array_append_new(arr, o);
        }
    }
    karena_free(&a);
    free(es);
    free(dk), free(dv), free(fk), free(fv), free(tk), free(tv);
    return arr;
}

static int api_topic(broker *b, const http_request *r, mbuf *out, const char **ctype) {
    char name[256];
    if (qparam(r, "name", name, sizeof name) != 1 || !name[0])
        return fail(out, ctype, 400, "parameter name (a topic name, at most 249 characters) is required");
    const mtopic *t = mimage_topic(b->image, kstr_from(name));
    if (!t) return fail(out, ctype, 404, "unknown topic %s", name);
    json_t *j = json_object();
    char id[23];
    kafka_uuid_to_string(t->id.b, id);
    json_object_set_new(j, "name", json_string(t->name));
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "internal", json_boolean(is_internal(t->name)));
    json_t *parts = json_array();
    for (int k = 0; k < t->nparts; k++) {
        const mpartition *mp = &t->parts[k];
        json_t *o = json_object();
        json_object_set_new(o, "partition", json_integer(k));
        json_object_set_new(o, "leader", json_integer(mp->leader));
        json_object_set_new(o, "leader_epoch", json_integer(mp->leader_epoch));
        json_object_set_new(o, "replicas", int_array(mp->replicas, mp->nreplicas));
        json_object_set_new(o, "isr", int_array(mp->isr, mp->nisr));
        if (mp->nadding) json_object_set_new(o, "adding_replicas", int_array(mp->adding, mp->nadding));
        if (mp->nremoving) json_object_set_new(o, "removing_replicas", int_array(mp->removing, mp->nremoving));
        partition *p = local_partition(b, t->name, k);
        json_object_set_new(o, "local", json_boolean(p && p->log));
        if (p && p->log) {
            json_object_set_new(o, "size_bytes", json_integer(plog_size(p->log)));
            json_object_set_new(o, "log_start_offset", json_integer(plog_start_offset(p->log)));
            json_object_set_new(o, "log_end_offset", json_integer(plog_end_offset(p->log)));
            json_object_set_new(o, "high_watermark", json_integer(p->high_watermark));
            json_object_set_new(o, "segments", json_integer(plog_segment_count(p->log)));
        }
        json_array_append_new(parts, o);
    }
    json_object_set_new(j, "partitions", parts);
    json_t *ov = json_object();
    for (int i = 0; i < t->configs.count; i++)
        if (t->configs.items[i].value)
            json_object_set_new(ov, t->configs.items[i].key, json_string(t->configs.items[i].value));
    json_object_set_new(j, "overrides", ov);
    json_object_set_new(j, "configs", topic_configs(b, t));
    return send_json(out, ctype, j, 200);
}

/* ---- /api/messages ---- */

typedef struct browse {
    json_t *records;
    int count, want;
    int64_t from;        /* first offset asked for */
    int64_t next;        /* where the next page starts */
    const char *why_stopped;
} browse;

static void add_record(browse *br, const rec_iter *it, const rec_record *rec) {
    json_t *o = json_object();
    json_object_set_new(o, "offset", json_integer(rec->offset));
    json_object_set_new(o, "timestamp", json_integer(rec->timestamp));
    json_object_set_new(o, "timestamp_type",
                        json_string(it->h.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND ? "LogAppendTime" : "CreateTime"));
    set_bytes(o, "key", rec->key);
    set_bytes(o, "value", rec->value);
    json_t *hs = json_array();
    for (int32_t i = 0; rec->headers && i < rec->header_count; i++) {
        json_t *h = json_object();
        set_bytes(h, "key", rec->headers[i].key);
        set_bytes(h, "value", rec->headers[i].value);
        json_array_append_new(hs, h);
    }
    json_object_set_new(o, "headers", hs);
    if (it->h.producer_id >= 0) json_object_set_new(o, "producer_id", json_integer(it->h.producer_id));
    if (it->h.attributes & BATCH_ATTR_TRANSACTIONAL) json_object_set_new(o, "transactional", json_true());
    json_array_append_new(br->records, o);
    br->count++;
}

/* Decodes the whole batches in buf (read from the log); returns the offset
 * after the last batch looked at, or -1 when the bytes are not batches. */
static int64_t decode_batches(browse *br, const uint8_t *buf, size_t len, int64_t pos, karena *a) {
    size_t at = 0;
    while (br->count < br->want && len - at >= BATCH_HEADER_SIZE) {
        batch_header h;
        batch_header_parse(buf + at, &h);
        /* never trust a length: the header must fit and the batch be whole */
        if (h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD ||
            (size_t)h.batch_length + BATCH_LOG_OVERHEAD > len - at) {
            /* the storage hands out whole batches: a bad first one is corruption */
            if (at == 0) br->why_stopped = "a batch whose length does not fit the log";
            break;
        }
        size_t blen = (size_t)h.batch_length + BATCH_LOG_OVERHEAD;
        if (h.magic != 2 || h.last_offset_delta < 0) {
            br->why_stopped = "a batch that is not a v2 record batch";
            return -1;
        }
        int64_t after = h.base_offset + h.last_offset_delta + 1;
        if (!(h.attributes & BATCH_ATTR_CONTROL) && after > br->from) {
            rec_iter it;
            if (rec_iter_init(&it, buf + at, blen, a) != 0) {
                br->why_stopped = "a batch that cannot be decoded (corrupt or unsupported compression)";
                return -1;
            }
            rec_record rec;
            int got;
            while (br->count < br->want && (got = rec_iter_next(&it, &rec)) == 1) {
                if (rec.offset < br->from) continue;
                add_record(br, &it, &rec);
                br->next = rec.offset + 1;
            }
            if (br->count >= br->want) return br->next;
            if (it.corrupt) {
                br->why_stopped = "a corrupt record";
                return -1;
            }
        }
        pos = after;
        br->next = after > br->next ? after : br->next;
        at += blen;
        karena_reset(a);
    }
    return pos;
}

static int api_messages(broker *b, const http_request *r, mbuf *out, const char **ctype) {
    char topic[256];
    if (qparam(r, "topic", topic, sizeof topic) != 1 || !topic[0])
        return fail(out, ctype, 400, "parameter topic is required");
    int64_t part = -1, offset = -1, ts = -1, count = DEFAULT_RECORDS;
    int rc;
    if ((rc = int_param(r, "partition", 0, INT32_MAX, &part, out, ctype)) < 0) return -rc;
    if (rc == 0) return fail(out, ctype, 400, "parameter partition is required");
    if ((rc = int_param(r, "offset", 0, INT64_MAX, &offset, out, ctype)) < 0) return -rc;
    bool by_offset = rc == 1;
    if ((rc = int_param(r, "timestamp", 0, INT64_MAX, &ts, out, ctype)) < 0) return -rc;
    bool by_ts = rc == 1;
    char from[16];
    int fr = qparam(r, "from", from, sizeof from);
    if (fr < 0 || (fr == 1 && strcmp(from, "start") != 0 && strcmp(from, "end") != 0))
        return fail(out, ctype, 400, "parameter from must be start or end");
    bool newest = fr == 1 && strcmp(from, "end") == 0;
    if (by_offset + by_ts + newest > 1) return fail(out, ctype, 400, "give one of offset, timestamp or from=end");
    if ((rc = int_param(r, "count", 1, MAX_RECORDS, &count, out, ctype)) < 0) return -rc;
    const mtopic *t = mimage_topic(b->image, kstr_from(topic));
    if (!t) return fail(out, ctype, 404, "unknown topic %s", topic);
    if (part >= t->nparts) return fail(out, ctype, 404, "topic %s has no partition %lld", topic, (long long)part);
    partition *p = local_partition(b, topic, (int32_t)part);
    if (!p || !p->log)
        return fail(out, ctype, 409, "node %d holds no replica of %s-%lld: open the console of node %d (its leader)",
                    (int)broker_node_id(b), topic, (long long)part, (int)t->parts[part].leader);
    int64_t start = plog_start_offset(p->log), hw = p->high_watermark;
    karena a;
    karena_init(&a, DECODE_ARENA_LIMIT);
    if (by_ts) {
        int64_t found = -1, found_ts = -1;
        if (plog_offset_for_timestamp(p->log, ts, records_find_timestamp, &a, &found, &found_ts) != 0) {
            karena_free(&a);
            return fail(out, ctype, 500, "cannot search %s-%lld by timestamp: %s", topic, (long long)part,
                        strerror(errno));
        }
        offset = found < 0 ? hw : found;
        karena_reset(&a);
    } else if (newest) {
        offset = hw - count > start ? hw - count : start; /* the last count offsets before the HW */
    } else if (!by_offset) {
        offset = start;
    }
    if (offset < start) {
        karena_free(&a);
        return fail(out, ctype, 400, "offset %lld is below the log start offset %lld of %s-%lld", (long long)offset,
                    (long long)start, topic, (long long)part);
    }
    browse br = {.records = json_array(), .want = (int)count, .from = offset, .next = offset};
    int64_t pos = offset;
    int64_t budget = MAX_READ_BYTES;
    /* bounded: each round reads at least one batch or stops */
    for (int round = 0; round < 64 && br.count < br.want && pos < hw && budget > 0 && !br.why_stopped; round++) {
        plog_slice s;
        int got = plog_read(p->log, pos, (int32_t)budget, true, hw, &s);
        if (got == PLOG_OFFSET_OUT_OF_RANGE || (got == 0 && s.len <= 0)) break;
        if (got != 0) {
            br.why_stopped = "the log could not be read";
            break;
        }
        if (s.len > budget) {
            br.why_stopped = "the next batch is larger than what one page reads (1 MB)";
            break;
        }
        uint8_t *buf = malloc((size_t)s.len);
        if (!buf || fio_pread_full(s.fd, buf, (size_t)s.len, s.file_pos) != 0) {
            free(buf);
            br.why_stopped = "the log could not be read";
            break;
        }
        budget -= s.len;
        int64_t np = decode_batches(&br, buf, (size_t)s.len, pos, &a);
        free(buf);
        if (np < 0) break;
        if (np <= pos) break; /* no progress: stop rather than spin */
        pos = np;
    }
    if (!br.why_stopped && br.count < br.want && pos < hw && budget <= 0)
        br.why_stopped = "read 1 MB of log; ask for the next page";
    karena_free(&a);
    json_t *j = json_object();
    json_object_set_new(j, "topic", json_string(topic));
    json_object_set_new(j, "partition", json_integer(part));
    json_object_set_new(j, "log_start_offset", json_integer(start));
    json_object_set_new(j, "high_watermark", json_integer(hw));
    json_object_set_new(j, "from_offset", json_integer(offset));
    json_object_set_new(j, "next_offset", json_integer(br.next < hw || br.count ? br.next : hw));
    json_object_set_new(j, "records", br.records);
    if (br.why_stopped) json_object_set_new(j, "stopped", json_string(br.why_stopped));
    return send_json(out, ctype, j, 200);
}

/* ---- /api/groups, /api/group ---- */

static kgroup **sorted_groups(broker *b, int *n) {
    *n = 0;
    gmgr *m = b->groups ? &b->groups->mgr : NULL;
    int total = 0;
    for (int i = 0; m && i < m->nbuckets; i++)
        for (kgroup *g = m->buckets[i]; g; g = g->next) total++;
    kgroup **v = malloc(sizeof *v * (size_t)(total + 1));
    if (!v) return NULL;
    for (int i = 0; m && i < m->nbuckets; i++)
        for (kgroup *g = m->buckets[i]; g; g = g->next) v[(*n)++] = g;
    qsort(v, (size_t)*n, sizeof *v, cmp_kgroup);
    return v;
}

/* What the groups list and one group's page both start with. */
static json_t *group_summary(const kgroup *g) {
    json_t *o = json_object();
    json_object_set_new(o, "group_id", json_string(g->id));
    json_object_set_new(o, "state", json_string(group_state_name(g->state)));
    json_object_set_new(o, "protocol_type", json_string(g->protocol_type ? g->protocol_type : ""));
    json_object_set_new(o, "protocol", json_string(g->protocol_name ? g->protocol_name : ""));
    return o;
}

static int api_groups(broker *b, mbuf *out, const char **ctype) {
    int n;
    kgroup **gs = sorted_groups(b, &n);
    if (!gs) return fail(out, ctype, 500, "out of memory");
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const kgroup *g = gs[i];
        if (g->state == GROUP_DEAD) continue;
        json_t *o = group_summary(g);
        json_object_set_new(o, "members", json_integer(g->nmembers));
        json_object_set_new(o, "committed_offsets", json_integer(g->noffsets));
        int64_t lag = 0;
        for (int k = 0; k < g->nobuckets; k++)
            for (const goffset *off = g->obuckets[k]; off; off = off->next) {
                partition *p = local_partition(b, off->topic, off->partition);
                if (p && p->high_watermark > off->offset) lag += p->high_watermark - off->offset;
            }
        json_object_set_new(o, "lag", json_integer(lag));
        json_array_append_new(arr, o);
    }
    free(gs);
    json_t *j = json_object();
    json_object_set_new(j, "coordinator", json_integer(broker_node_id(b)));
    json_object_set_new(j, "groups", arr);
    return send_json(out, ctype, j, 200);
}

/* One row of the describe table: a committed offset or an assigned partition. */
typedef struct grow {
    const char *topic;
    int32_t partition;
    const goffset *committed;
    const gmember *owner;
} grow;

static int cmp_row(const void *a, const void *b) {
    const grow *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static int api_group(broker *b, const http_request *r, mbuf *out, const char **ctype) {
    char id[1024];
    if (qparam(r, "id", id, sizeof id) != 1) return fail(out, ctype, 400, "parameter id (the group id) is required");
    kgroup *g = b->groups ? gmgr_get(&b->groups->mgr, id) : NULL;
    if (!g || g->state == GROUP_DEAD) {
        broker_node node;
        int16_t err = 0;
        if (b->groups && gc_coordinator_node(b->groups, id, &node, &err) && node.id != broker_node_id(b))
            return fail(out, ctype, 404, "group %s is coordinated by node %d: open its console", id, (int)node.id);
        return fail(out, ctype, 404, "unknown group %s", id);
    }
    karena a;
    karena_init(&a, 16u << 20);
    json_t *j = group_summary(g);
    json_object_set_new(j, "generation", json_integer(g->generation));
    json_object_set_new(j, "leader", str_or_null(g->leader_id));
    json_object_set_new(j, "coordinator", json_integer(broker_node_id(b)));
    /* rows: committed offsets, then assigned partitions without one */
    int cap = g->noffsets + 16, nrows = 0;
    grow *rows = malloc(sizeof *rows * (size_t)cap);
    json_t *members = json_array();
    for (int k = 0; rows && k < g->nobuckets; k++)
        for (const goffset *off = g->obuckets[k]; off && nrows < cap; off = off->next)
            rows[nrows++] = (grow){off->topic, off->partition, off, NULL};
    int ncommitted = nrows;
    if (rows) qsort(rows, (size_t)ncommitted, sizeof *rows, cmp_row); /* searched below */
    bool consumer = g->protocol_type && strcmp(g->protocol_type, "consumer") == 0;
    for (int i = 0; i < g->nmembers; i++) {
        const gmember *mb = g->members[i];
        json_t *o = json_object();
        json_object_set_new(o, "member_id", json_string(mb->member_id));
        json_object_set_new(o, "instance_id", str_or_null(mb->instance_id));
        json_object_set_new(o, "client_id", str_or_null(mb->client_id));
        json_object_set_new(o, "client_host", str_or_null(mb->client_host));
        json_t *asg = json_array();
        if (consumer && mb->assignment && mb->assignment_len > 0) {
            ConsumerProtocolAssignment cpa;
            kreader kr;
            kr_init(&kr, mb->assignment, (size_t)mb->assignment_len);
            int16_t version = kr_i16(&kr);
            if (!kr.err && version >= 0 && ConsumerProtocolAssignment_decode(&cpa, &kr, version > 3 ? 3 : version, &a) == 0) {
                for (int32_t t = 0; t < cpa.assigned_partitions_count; t++) {
                    const ConsumerProtocolAssignment_TopicPartition *tp = &cpa.assigned_partitions[t];
                    char *tn = kstr_dup(tp->topic, &a);
                    if (!tn) continue;
                    for (int32_t q = 0; q < tp->partitions_count; q++) {
                        json_t *x = json_object();
                        json_object_set_new(x, "topic", json_string(tn));
                        json_object_set_new(x, "partition", json_integer(tp->partitions[q]));
                        json_array_append_new(asg, x);
                        /* the row of this partition gets its owner */
                        grow key = {tn, tp->partitions[q], NULL, NULL};
                        grow *hit = rows ? bsearch(&key, rows, (size_t)ncommitted, sizeof *rows, cmp_row) : NULL;
                        if (hit) hit->owner = mb;
                        if (!hit && rows) {
                            if (nrows == cap) {
                                grow *nr = realloc(rows, sizeof *rows * (size_t)(cap * 2));
                                if (!nr) continue;
                                rows = nr;
                                cap *= 2;
                            }
                            rows[nrows++] = (grow){tn, tp->partitions[q], NULL, mb};
                        }
                    }
                }
            }
        }
        json_object_set_new(o, "assignment", asg);
        json_array_append_new(members, o);
    }
    json_object_set_new(j, "members", members);
    json_t *offs = json_array();
    if (rows) qsort(rows, (size_t)nrows, sizeof *rows, cmp_row);
    for (int i = 0; i < nrows; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "topic", json_string(rows[i].topic));
        json_object_set_new(o, "partition", json_integer(rows[i].partition));
        json_object_set_new(o, "current_offset", rows[i].committed ? json_integer(rows[i].committed->offset) : json_null());
        partition *p = local_partition(b, rows[i].topic, rows[i].partition);
        json_object_set_new(o, "log_end_offset", p ? json_integer(p->high_watermark) : json_null());
        json_object_set_new(o, "lag", p && rows[i].committed ? json_integer(p->high_watermark - rows[i].committed->offset)
                                                             : json_null());
        const gmember *mb = rows[i].owner;
        json_object_set_new(o, "consumer_id", mb ? json_string(mb->member_id) : json_null());
        json_object_set_new(o, "host", mb ? str_or_null(mb->client_host) : json_null());
        json_object_set_new(o, "client_id", mb ? str_or_null(mb->client_id) : json_null());
        json_array_append_new(offs, o);
    }
    free(rows);
    json_object_set_new(j, "offsets", offs);
    karena_free(&a);
    return send_json(out, ctype, j, 200);
}

/* ---- /api/rates ---- */

static void set_counters(json_t *o, const topic_metrics *m) {
    json_object_set_new(o, "messages_in", json_integer((json_int_t)m->messages_in));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)m->bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)m->bytes_out));
}

static int api_rates(broker *b, mbuf *out, const char **ctype) {
    int n = broker_topic_count(b);
    topic_rt **ts = malloc(sizeof *ts * (size_t)(n + 1));
    if (!ts) return fail(out, ctype, 500, "out of memory");
    n = broker_topics_list(b, ts, n);
    qsort(ts, (size_t)n, sizeof *ts, cmp_topic_rt);
    json_t *j = json_object();
    json_object_set_new(j, "time_ms", json_integer(monotonic_ms()));
    json_t *total = json_object();
    set_counters(total, &metrics_all_topics);
    json_object_set_new(j, "total", total);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "topic", json_string(ts[i]->name));
        set_counters(o, &ts[i]->metrics);
        json_array_append_new(arr, o);
    }
    free(ts);
    json_object_set_new(j, "topics", arr);
    return send_json(out, ctype, j, 200);
}

/* ---- POST /api/group/reset ---- */

typedef struct reset_write {
    char *group_id;
    int n;
    goffset *offs;       /* topic and metadata strings malloc'd */
} reset_write;

static reset_write *inline_write; /* the write being appended now */
static bool inline_done;
static int16_t inline_error;

static void reset_write_free(reset_write *w) {
    for (int i = 0; i < w->n; i++) {
        free(w->offs[i].topic);
        free(w->offs[i].metadata);
    }
    free(w->offs);
    free(w->group_id);
    free(w);
}

/* As OffsetCommit's completion: the cache follows the log once replicated. */
static void reset_written(group_coord *gc, void *arg, int16_t error, int64_t first_offset, bool same) {
    reset_write *w = arg;
    int16_t e = gc_offset_commit_error(error);
    kgroup *g = e || !same ? NULL : gmgr_get(&gc->mgr, w->group_id);
    if (g && g->state != GROUP_DEAD)
        for (int i = 0; i < w->n; i++) {
            const goffset *o = &w->offs[i];
            goffset *cur = group_offset(g, o->topic, strlen(o->topic), o->partition);
            if (cur && cur->log_offset > first_offset) continue;
            goffset *put = group_offset_put(g, o->topic, strlen(o->topic), o->partition, o->offset, -1, "", 0,
                                            o->commit_ts, -1);
            if (put) put->log_offset = first_offset;
        }
    if (e) log_warn(COMPONENT, "Offset reset of group %s failed: %s", w->group_id, kerr_name(e));
    else log_info(COMPONENT, "Reset offsets of group %s (%d partitions) from the console", w->group_id, w->n);
    if (w == inline_write) {
        inline_done = true;
        inline_error = e;
    }
    reset_write_free(w);
}

static int api_reset(broker *b, const http_request *r, bool read_only, mbuf *out, const char **ctype) {
    if (read_only)
        return fail(out, ctype, 403, "the console is read-only: set console.read.only=false to reset offsets");
    if (!r->console_header)
        return fail(out, ctype, 403, "writes need the X-Samsa-Console header (sent by the console's pages)");
    char gid[1024], topic[256], to[16];
    if (qparam(r, "group", gid, sizeof gid) != 1 || !gid[0])
        return fail(out, ctype, 400, "parameter group is required");
    if (qparam(r, "topic", topic, sizeof topic) != 1 || !topic[0])
        return fail(out, ctype, 400, "parameter topic is required");
    if (qparam(r, "to", to, sizeof to) != 1)
        return fail(out, ctype, 400, "parameter to must be earliest, latest, offset or timestamp");
    int64_t part = -1, value = -1;
    int rc;
    if ((rc = int_param(r, "partition", 0, INT32_MAX, &part, out, ctype)) < 0) return -rc;
    bool one = rc == 1;
    int mode; /* 0 earliest, 1 latest, 2 offset, 3 timestamp */
    if (strcmp(to, "earliest") == 0) mode = 0;
    else if (strcmp(to, "latest") == 0) mode = 1;
    else if (strcmp(to, "offset") == 0) mode = 2;
    else if (strcmp(to, "timestamp") == 0) mode = 3;
    else return fail(out, ctype, 400, "parameter to must be earliest, latest, offset or timestamp");
    if (mode >= 2) {
        const char *vname = mode == 2 ? "offset" : "timestamp";
        if ((rc = int_param(r, vname, 0, INT64_MAX, &value, out, ctype)) < 0) return -rc;
        if (rc == 0) return fail(out, ctype, 400, "parameter %s is required with to=%s", vname, to);
    }
    group_coord *gc = b->groups;
    kgroup *g = gc ? gmgr_get(&gc->mgr, gid) : NULL;
    if (!g || g->state == GROUP_DEAD || !gc_group_loaded(gc, gid))
        return fail(out, ctype, 404, "group %s is not coordinated by this node", gid);
    if (g->state != GROUP_EMPTY)
        return fail(out, ctype, 409,
                    "Assignments can only be reset if the group '%s' is inactive, but the current state is %s.", gid,
                    group_state_name(g->state));
    const mtopic *t = mimage_topic(b->image, kstr_from(topic));
    if (!t) return fail(out, ctype, 404, "unknown topic %s", topic);
    if (one && part >= t->nparts) return fail(out, ctype, 400, "topic %s has no partition %lld", topic, (long long)part);
    int first = one ? (int)part : 0, last = one ? (int)part : t->nparts - 1;
    int n = last - first + 1;
    reset_write *w = calloc(1, sizeof *w);
    kbytes *keys = calloc((size_t)n, sizeof *keys), *vals = calloc((size_t)n, sizeof *vals);
    if (w) w->offs = calloc((size_t)n, sizeof *w->offs);
    if (w) w->group_id = strdup(gid);
    if (!w || !keys || !vals || !w->offs || !w->group_id) {
        if (w) reset_write_free(w);
        free(keys), free(vals);
        return fail(out, ctype, 500, "out of memory");
    }
    karena a;
    karena_init(&a, DECODE_ARENA_LIMIT);
    json_t *done = json_array();
    int status = 0;
    int64_t now = wall_clock_ms();
    for (int k = first; k <= last && !status; k++) {
        partition *p = local_partition(b, topic, k);
        if (!p || !p->log) {
            status = fail(out, ctype, 409, "node %d holds no replica of %s-%d: reset from the console of node %d",
                          (int)broker_node_id(b), topic, k, (int)t->parts[k].leader);
            break;
        }
        int64_t start = plog_start_offset(p->log), hw = p->high_watermark, target;
        if (mode == 0) target = start;
        else if (mode == 1) target = hw;
        else if (mode == 2) target = value < start ? start : value > hw ? hw : value; /* as the tool clamps */
        else {
            int64_t found = -1, found_ts = -1;
            if (plog_offset_for_timestamp(p->log, value, records_find_timestamp, &a, &found, &found_ts) != 0) {
                status = fail(out, ctype, 500, "cannot search %s-%d by timestamp", topic, k);
                break;
            }
            target = found < 0 ? hw : found;
            karena_reset(&a);
        }
        goffset *o = &w->offs[w->n];
        o->topic = strdup(topic);
        o->metadata = strdup("");
        o->partition = k;
        o->offset = target;
        o->leader_epoch = -1;
        o->commit_ts = now;
        o->expire_ts = -1;
        w->n++;
        if (!o->topic || !o->metadata) {
            status = fail(out, ctype, 500, "out of memory");
            break;
        }
        kwriter kw, vw;
        kw_init(&kw);
        kw_init(&vw);
        grec_offset_key(&kw, gid, o->topic, o->partition);
        grec_offset_value(&vw, o);
        uint8_t *kb = karena_alloc(&a, kw.len + 1), *vb = karena_alloc(&a, vw.len + 1);
        if (kb && vb && !kw.err && !vw.err) {
            memcpy(kb, kw.buf, kw.len);
            memcpy(vb, vw.buf, vw.len);
            keys[w->n - 1] = (kbytes){kb, (int32_t)kw.len};
            vals[w->n - 1] = (kbytes){vb, (int32_t)vw.len};
        } else {
            status = fail(out, ctype, 500, "out of memory");
        }
        kw_free(&kw);
        kw_free(&vw);
        json_t *x = json_object();
        json_object_set_new(x, "topic", json_string(topic));
        json_object_set_new(x, "partition", json_integer(k));
        json_object_set_new(x, "offset", json_integer(target));
        json_array_append_new(done, x);
    }
    if (!status) {
        kgroup *cg = NULL;
        int16_t ge = gmgr_commit_check(&gc->mgr, gid, "", NULL, -1, &cg);
        if (ge) status = fail(out, ctype, 409, "the coordinator refused the commit: %s", kerr_name(ge));
    }
    if (status) {
        reset_write_free(w);
        json_decref(done);
    } else {
        inline_write = w;
        inline_done = false;
        gc_append(gc, gid, w->n, keys, vals, reset_written, w); /* frees w, maybe before returning */
        inline_write = NULL;
        json_t *j = json_object();
        json_object_set_new(j, "group_id", json_string(gid));
        json_object_set_new(j, "offsets", done);
        if (inline_done && inline_error) {
            json_decref(j);
            status = fail(out, ctype, 503, "the offsets could not be written: %s", kerr_name(inline_error));
        } else {
            json_object_set_new(j, "status", json_string(inline_done ? "written" : "pending replication"));
            status = send_json(out, ctype, j, inline_done ? 200 : 202);
        }
    }
    karena_free(&a);
    free(keys);
    free(vals);
    return status;
}

/* ---- routing ---- */

int console_api(broker *b, const http_request *r, bool read_only, mbuf *out, const char **ctype) {
    const char *p = r->path + 4; /* after "/api" */
    size_t n = r->path_len - 4;
    bool post = r->method_len == 4 && memcmp(r->method, "POST", 4) == 0;
#define IS(s) (n == strlen(s) && memcmp(p, s, n) == 0)
    if (IS("/group/reset")) {
        if (!post) return fail(out, ctype, 405, "use POST for /api/group/reset");
        return api_reset(b, r, read_only, out, ctype);
    }
    if (post) return fail(out, ctype, 405, "this API only reads: use GET");
    if (!b->image) return fail(out, ctype, 503, "the broker is starting");
    if (IS("/cluster")) return api_cluster(b, read_only, out, ctype);
    if (IS("/topics")) return api_topics(b, out, ctype);
    if (IS("/topic")) return api_topic(b, r, out, ctype);
    if (IS("/messages")) return api_messages(b, r, out, ctype);
    if (IS("/groups")) return api_groups(b, out, ctype);
    if (IS("/group")) return api_group(b, r, out, ctype);
    if (IS("/rates")) return api_rates(b, out, ctype);
#undef IS
    return fail(out, ctype, 404, "no such API: see docs/console.md");
}
