/* h_configs.c - DescribeConfigs (v0-4), AlterConfigs (v0-2) and
 * IncrementalAlterConfigs (v0-1) for topics and this broker.
 *
 * The checks and their order follow Kafka 3.6.1 in KRaft mode, because
 * clients show the error messages to users: first the request-level checks
 * (each resource at most once, no duplicate keys, no null values), then the
 * resource's own rules (broker: only dynamic keys, topic: known keys with
 * valid values), and last whether the topic exists. AlterConfigs replaces the
 * whole set of dynamic configs of a resource; IncrementalAlterConfigs applies
 * SET/DELETE/APPEND/SUBTRACT to the current set. Changes are persisted as
 * ConfigRecords through broker_alter_configs().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/config.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

#define RES_TOPIC 2
#define RES_BROKER 4
#define RES_BROKER_LOGGER 8
#define SRC_DYNAMIC_BROKER_LOGGER 6

enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };

/* A resource's dynamic configs as parallel arrays (arena memory). */
typedef struct kvset {
    const char **keys;
    const char **values; /* NULL value: delete */
    int n, cap;
} kvset;

static int kv_put(kvset *s, const char *k, const char *v, karena *a) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->keys[i], k) == 0) {
            s->values[i] = v;
            return 0;
        }
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        const char **nk = karena_calloc(a, (size_t)nc, sizeof *nk), **nv = karena_calloc(a, (size_t)nc, sizeof *nv);
        if (!nk || !nv) return -1;
        if (s->n) {
            memcpy(nk, s->keys, sizeof *nk * (size_t)s->n);
            memcpy(nv, s->values, sizeof *nv * (size_t)s->n);
        }
        s->keys = nk;
        s->values = nv;
        s->cap = nc;
    }
    s->keys[s->n] = k;
    s->values[s->n] = v;
    s->n++;
    return 0;
}

static const char *kv_get(const kvset *s, const char *k) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->keys[i], k) == 0) return s->values[i];
    return NULL;
}

static int kv_from_mset(kvset *s, const mconfig_set *m, karena *a) {
    memset(s, 0, sizeof *s);
    for (int i = 0; m && i < m->count; i++)
        if (m->items[i].value && kv_put(s, m->items[i].key, m->items[i].value, a) < 0) return -1;
    return 0;
}

/* The layers DescribeConfigs and the validators look through. */
static void broker_layers(broker *b, config_layers *l, kvset *dyn, kvset *dflt, karena *a) {
    kv_from_mset(dyn, b->image ? &b->image->broker_configs : NULL, a);
    kv_from_mset(dflt, b->image ? &b->image->default_broker_configs : NULL, a);
    memset(l, 0, sizeof *l);
    l->static_cfg = &b->cfg.raw;
    l->dyn_broker_keys = dyn->keys;
    l->dyn_broker_values = dyn->values;
    l->ndyn_broker = dyn->n;
    l->dyn_default_keys = dflt->keys;
    l->dyn_default_values = dflt->values;
    l->ndyn_default = dflt->n;
}

/* Scala's Set.toString, which Kafka puts in its messages. */
static char *scala_set(const char *const *names, int n, karena *a) {
    size_t len = 16;
    for (int i = 0; i < n; i++) len += strlen(names[i]) + 2;
    char *s = karena_alloc(a, len);
    if (!s) return NULL;
    strcpy(s, n > 4 ? "HashSet(" : "Set(");
    for (int i = 0; i < n; i++) {
        if (i) strcat(s, ", ");
        strcat(s, names[i]);
    }
    strcat(s, ")");
    return s;
}

/* Parses a broker resource name. Returns 0 and sets *is_default, or an
 * error code with a message. */
static int16_t check_broker_name(broker *b, kstr name, bool *is_default, const char **msg, karena *a) {
    *is_default = name.len <= 0;
    if (*is_default) return KERR_NONE;
    char *s = kstr_dup(name, a);
    if (!s) return KERR_UNKNOWN_SERVER_ERROR;
    char *end;
    long id = strtol(s, &end, 10);
    if (!*s || *end || id < INT32_MIN || id > INT32_MAX) {
        *msg = karena_sprintf(a, "Node id must be an integer, but it is: %s", s);
        return KERR_INVALID_REQUEST;
    }
    if ((int32_t)id != b->cfg.node_id) {
        *msg = karena_sprintf(a, "Unexpected broker id, expected %d, but received %s", (int)b->cfg.node_id, s);
        return KERR_INVALID_REQUEST;
    }
    return KERR_NONE;
}

/* ---------------------------------------------------------------- describe */

static void fill_describe_entries(DescribeConfigsResponse_DescribeConfigsResult *o,
                                  const DescribeConfigsRequest_DescribeConfigsResource *res, config_entry *es,
                                  int n, bool synonyms, int16_t version, karena *a) {
    o->configs = karena_calloc(a, (size_t)(n ? n : 1), sizeof *o->configs);
    if (!o->configs) return;
    int out = 0;
    for (int i = 0; i < n; i++) {
        const config_entry *e = &es[i];
        if (res->configuration_keys_count > 0) {
            bool wanted = false;
            for (int k = 0; k < res->configuration_keys_count && !wanted; k++)
                wanted = kstr_eq_c(res->configuration_keys[k], e->name);
            if (!wanted) continue;
        }
        DescribeConfigsResponse_DescribeConfigsResourceResult *c = &o->configs[out++];
        DescribeConfigsResponse_DescribeConfigsResourceResult_init(c);
        c->name = kstr_from(e->name);
        c->value = e->value ? kstr_from(e->value) : KSTR_NULL;
        c->read_only = e->read_only;
        c->is_default = e->source == CFG_SRC_DEFAULT;
        c->config_source = e->source;
        c->is_sensitive = e->sensitive;
        c->config_type = e->type;
        c->documentation = KSTR_NULL;
        c->synonyms_count = 0;
        if (synonyms && version >= 1 && e->nsynonyms > 0) {
            c->synonyms = karena_calloc(a, (size_t)e->nsynonyms, sizeof *c->synonyms);
            if (!c->synonyms) continue;
            for (int s = 0; s < e->nsynonyms; s++) {
                DescribeConfigsResponse_DescribeConfigsSynonym_init(&c->synonyms[s]);
                c->synonyms[s].name = kstr_from(e->synonyms[s].name);
                c->synonyms[s].value = e->synonyms[s].value ? kstr_from(e->synonyms[s].value) : KSTR_NULL;
                c->synonyms[s].source = e->synonyms[s].source;
            }
            c->synonyms_count = e->nsynonyms;
        }
    }
    o->configs_count = out;
}

static void describe_one(broker *b, const DescribeConfigsRequest_DescribeConfigsResource *res,
                         DescribeConfigsResponse_DescribeConfigsResult *o, bool synonyms, int16_t version,
                         karena *a) {
    DescribeConfigsResponse_DescribeConfigsResult_init(o);
    o->resource_type = res->resource_type;
    o->resource_name = res->resource_name;
    o->error_code = KERR_NONE;
    o->error_message = KSTR_NULL;
    o->configs_count = 0;
    config_layers l;
    kvset dyn, dflt;
    broker_layers(b, &l, &dyn, &dflt, a);
    int max = broker_config_def_count() + topic_config_def_count();
    config_entry *es = karena_calloc(a, (size_t)max, sizeof *es);
    if (!es) {
        o->error_code = KERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    switch (res->resource_type) {
    case RES_TOPIC: {
        if (res->resource_name.len <= 0) {
            o->error_code = KERR_INVALID_TOPIC_EXCEPTION;
            o->error_message = kstr_from("Topic name is illegal, it can't be empty");
            return;
        }
        mtopic *t = b->image ? mimage_topic(b->image, res->resource_name) : NULL;
        if (!t) {
            o->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            return;
        }
        kvset ov;
        kv_from_mset(&ov, &t->configs, a);
        int n = config_describe_topic(&l, ov.keys, ov.values, ov.n, es, max, a);
        fill_describe_entries(o, res, es, n, synonyms, version, a);
        return;
    }
    case RES_BROKER: {
        bool is_default = res->resource_name.len <= 0;
        if (!is_default) {
            char *s = kstr_dup(res->resource_name, a);
            char *end;
            long id = s ? strtol(s, &end, 10) : 0;
            if (!s || !*s || *end) {
                o->error_code = KERR_INVALID_REQUEST;
                o->error_message = kstr_from(karena_sprintf(a, "Broker id must be an integer, but it is: %s", s ? s : ""));
                return;
            }
            if (id != b->cfg.node_id) {
                o->error_code = KERR_INVALID_REQUEST;
                o->error_message = kstr_from(karena_sprintf(
                    a, "Unexpected broker id, expected %d or empty string, but received %s", (int)b->cfg.node_id, s));
                return;
            }
        }
        int n = config_describe_broker(&l, b->cfg.node_id, !is_default, es, max, a);
        fill_describe_entries(o, res, es, n, synonyms, version, a);
        return;
    }
    case RES_BROKER_LOGGER: {
        if (res->resource_name.len <= 0) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from("Broker id must not be empty");
            return;
        }
        char *s = kstr_dup(res->resource_name, a);
        if (!s || atoi(s) != b->cfg.node_id) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from(karena_sprintf(a, "Unexpected broker id, expected %d but received %s",
                                                        (int)b->cfg.node_id, s ? s : ""));
            return;
        }
        /* one logger: ours has a single level */
        es[0] = (config_entry){.name = "root", .value = "INFO", .source = SRC_DYNAMIC_BROKER_LOGGER,
                               .type = CFG_STRING};
        fill_describe_entries(o, res, es, 1, false, version, a);
        return;
    }
    default:
        o->error_code = KERR_INVALID_REQUEST;
        o->error_message = kstr_from("Unsupported resource type: UNKNOWN");
        return;
    }
}

/* KafkaApis: DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic, or on the
 * cluster for broker and broker-logger resources. The error, or 0. */
static int16_t config_denied(kreq *req, int8_t type, kstr name, bool alter) {
    int8_t op = alter ? AZ_OP_ALTER_CONFIGS : AZ_OP_DESCRIBE_CONFIGS;
    if (type == 2) return authz_allowed_k(req, op, AZ_RES_TOPIC, name) ? 0 : KERR_TOPIC_AUTHORIZATION_FAILED;
    return authz_cluster(req, op) ? 0 : KERR_CLUSTER_AUTHORIZATION_FAILED;
}

void h_describe_configs(broker *b, kreq *req) {
    DescribeConfigsRequest r;
    if (KREQ_DECODE(req, DescribeConfigsRequest, &r) < 0) return;
    karena *a = &req->arena;
    DescribeConfigsResponse resp;
    DescribeConfigsResponse_init(&resp);
    int n = r.resources_count > 0 ? r.resources_count : 0;
    resp.results = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.results);
    if (!resp.results) {
        kreq_fail(req, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        int16_t denied = config_denied(req, r.resources[i].resource_type, r.resources[i].resource_name, false);
        if (!denied) {
            describe_one(b, &r.resources[i], &resp.results[i], r.include_synonyms, req->api_version, a);
            continue;
        }
        DescribeConfigsResponse_DescribeConfigsResult *o = &resp.results[i];
        DescribeConfigsResponse_DescribeConfigsResult_init(o);
        o->resource_type = r.resources[i].resource_type;
        o->resource_name = r.resources[i].resource_name;
        o->error_code = denied;
        o->error_message = kstr_from(kerr_message(denied));
        o->configs_count = 0;
    }
    resp.results_count = n;
    KREQ_REPLY(req, DescribeConfigsResponse, &resp);
}

/* ---------------------------------------------------------------- validate */

typedef struct alter_result {
    int16_t code;
    const char *msg; /* NULL: Kafka's default for the code */
    bool pending;    /* a change was started: its completion sets the code */
} alter_result;

static alter_result ok(void) { return (alter_result){KERR_NONE, NULL, false}; }
static alter_result err(int16_t code, const char *msg) { return (alter_result){code, msg, false}; }

/* Where a resource's change reports when it completes. */
typedef struct alter_wait {
    req_changes *rc;
    int16_t *error_code;
} alter_wait;

/* Kafka checks a topic's complete new set of overrides. */
static alter_result validate_topic_set(const kvset *s, karena *a) {
    char buf[1024];
    for (int i = 0; i < s->n; i++) {
        if (!s->values[i]) continue;
        if (!topic_config_known(s->keys[i]))
            return err(KERR_INVALID_CONFIG, karena_sprintf(a, "Unknown topic config name: %s", s->keys[i]));
    }
    for (int i = 0; i < s->n; i++) {
        if (!s->values[i]) continue;
        if (topic_config_validate(s->keys[i], s->values[i], buf, sizeof buf) != 0)
            return err(KERR_INVALID_CONFIG, karena_strndup(a, buf, strlen(buf)));
    }
    const char *minlag = kv_get(s, "min.compaction.lag.ms"), *maxlag = kv_get(s, "max.compaction.lag.ms");
    long long lo = minlag ? atoll(minlag) : 0, hi = maxlag ? atoll(maxlag) : INT64_MAX;
    if (lo > hi)
        return err(KERR_INVALID_CONFIG,
                   karena_sprintf(a, "conflict topic config setting min.compaction.lag.ms (%lld) > max.compaction.lag.ms (%lld)",
                                  lo, hi));
    const char *remote = kv_get(s, "remote.storage.enable");
    if (remote && strcasecmp(remote, "true") == 0)
        return err(KERR_INVALID_CONFIG,
                   "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.");
    return ok();
}

static bool per_broker_only(const char *k) {
    return strncmp(k, "ssl.", 4) == 0 || strncmp(k, "sasl.", 5) == 0 || strcmp(k, "listeners") == 0 ||
           strcmp(k, "advertised.listeners") == 0 || strcmp(k, "listener.security.protocol.map") == 0 ||
           strcmp(k, "principal.builder.class") == 0 || strncmp(k, "listener.name.", 14) == 0;
}

/* Kafka's DynamicBrokerConfig.validateConfigs over the new set; its
 * failures surface as INVALID_REQUEST (KAFKA-13609). */
static alter_result validate_broker_set(const kvset *s, bool is_default, karena *a) {
    const char **bad = karena_calloc(a, (size_t)(s->n ? s->n : 1), sizeof *bad);
    if (!bad) return err(KERR_UNKNOWN_SERVER_ERROR, NULL);
    int nbad = 0;
    for (int i = 0; i < s->n; i++)
        if (s->values[i] && broker_config_def(s->keys[i]) && !broker_config_is_dynamic(s->keys[i]))
            bad[nbad++] = s->keys[i];
    if (nbad)
        return err(KERR_INVALID_REQUEST,
                   karena_sprintf(a, "Cannot update these configs dynamically: %s", scala_set(bad, nbad, a)));
    for (int i = 0; i < s->n; i++)
        if (s->values[i] && broker_config_needs_listener_prefix(s->keys[i])) bad[nbad++] = s->keys[i];
    if (nbad)
        return err(KERR_INVALID_REQUEST,
                   karena_sprintf(a, "These security configs can be dynamically updated only per-listener using the listener prefix: %s",
                                  scala_set(bad, nbad, a)));
    char buf[1024];
    for (int i = 0; i < s->n; i++) {
        const config_def *d = broker_config_def(s->keys[i]);
        if (s->values[i] && d && config_check_value(d, s->values[i], buf, sizeof buf) < 0)
            return err(KERR_INVALID_REQUEST, karena_strndup(a, buf, strlen(buf)));
    }
    if (is_default) {
        for (int i = 0; i < s->n; i++)
            if (s->values[i] && per_broker_only(s->keys[i])) bad[nbad++] = s->keys[i];
        if (nbad)
            return err(KERR_INVALID_REQUEST,
                       karena_sprintf(a, "Cannot update these configs at default cluster level, broker id must be specified: %s",
                                      scala_set(bad, nbad, a)));
    }
    return ok();
}

/* Request-level checks shared by both APIs. names/values/ops describe the
 * resource's entries; ops may be NULL (legacy). */
static alter_result precheck(const kstr *names, const kstr *values, const int8_t *ops, int n, karena *a) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (kstr_eq(names[i], names[j])) return err(KERR_INVALID_REQUEST, "Error due to duplicate config keys");
    char *nulls = NULL;
    for (int i = 0; i < n; i++) {
        if (values[i].len >= 0 || (ops && ops[i] == OP_DELETE)) continue;
        char *name = kstr_dup(names[i], a);
        nulls = nulls ? karena_sprintf(a, "%s, %s", nulls, name) : name;
    }
    if (nulls) return err(KERR_INVALID_REQUEST, karena_sprintf(a, "Null value not supported for : %s", nulls));
    return ok();
}

/* Split "a,b" into parts, skipping empty ones. Returns the count. */
static int split_list(const char *s, char ***out, karena *a) {
    int n = 0, cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *out = karena_calloc(a, (size_t)cap, sizeof **out);
    if (!*out) return 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) (*out)[n++] = karena_strndup(a, p, len);
        if (!e) break;
        p = e + 1;
    }
    return n;
}

static const char *join_list(char **parts, int n, karena *a) {
    const char *s = "";
    for (int i = 0; i < n; i++)
        if (parts[i]) s = *s ? karena_sprintf(a, "%s,%s", s, parts[i]) : parts[i];
    return s;
}

/* APPEND / SUBTRACT on a list value (current may be NULL: the default). */
static const char *list_op(const char *current, const char *arg, int op, karena *a) {
    char **cur, **add;
    int nc = split_list(current ? current : "", &cur, a);
    int na = split_list(arg, &add, a);
    if (op == OP_APPEND) {
        char **all = karena_calloc(a, (size_t)(nc + na + 1), sizeof *all);
        if (!all) return current;
        int n = 0;
        for (int i = 0; i < nc; i++) all[n++] = cur[i];
        for (int i = 0; i < na; i++) {
            bool have = false;
            for (int j = 0; j < n && !have; j++) have = strcmp(all[j], add[i]) == 0;
            if (!have) all[n++] = add[i];
        }
        return join_list(all, n, a);
    }
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nc; j++)
            if (cur[j] && strcmp(cur[j], add[i]) == 0) {
                cur[j] = NULL; /* removes one occurrence, as Kafka does */
                break;
            }
    return join_list(cur, nc, a);
}

/* Apply the changes of one resource (or only validate). changes: key ->
 * new value, NULL = delete. */
static void configs_committed(broker *b, void *arg, int16_t error) {
    alter_wait *w = arg;
    *w->error_code = error;
    req_changes_done(b, w->rc);
}

static alter_result commit_changes(broker *b, int8_t type, const char *name, const kvset *changes, bool validate_only,
                                   alter_wait *w) {
    if (validate_only || changes->n == 0) return ok();
    req_changes_add(w->rc);
    broker_alter_configs(b, type == RES_TOPIC ? MRES_TOPIC : MRES_BROKER, name, changes->keys, changes->values,
                         changes->n, configs_committed, w);
    alter_result r = ok();
    r.pending = true;
    return r;
}

/* Shared body for both APIs: one resource's entries. */
static alter_result alter_one(broker *b, int8_t type, kstr rname, const kstr *names, const kstr *values,
                              const int8_t *ops, int n, bool validate_only, karena *a, alter_wait *w) {
    alter_result r = precheck(names, values, ops, n, a);
    if (r.code) return r;
    if (ops)
        for (int i = 0; i < n; i++)
            if (ops[i] < OP_SET || ops[i] > OP_SUBTRACT)
                return err(KERR_INVALID_REQUEST, karena_sprintf(a, "Unknown operations type %d", ops[i]));
    char *name = kstr_dup(rname, a);
    if (!name) return err(KERR_UNKNOWN_SERVER_ERROR, NULL);

    kvset current, next, changes;
    memset(&changes, 0, sizeof changes);
    bool is_default = false;
    if (type == RES_TOPIC) {
        if (!*name) return err(KERR_INVALID_REQUEST, "Default topic resources are not allowed.");
        mtopic *t = b->image ? mimage_topic(b->image, rname) : NULL;
        kv_from_mset(&current, t ? &t->configs : NULL, a);
    } else if (type == RES_BROKER) {
        const char *msg = NULL;
        int16_t code = check_broker_name(b, rname, &is_default, &msg, a);
        if (code) return err(code, msg);
        kv_from_mset(&current, b->image ? (is_default ? &b->image->default_broker_configs : &b->image->broker_configs)
                                        : NULL,
                     a);
    } else if (type == RES_BROKER_LOGGER) {
        return err(KERR_INVALID_REQUEST, "Changing log levels is not supported by this broker");
    } else {
        return err(KERR_INVALID_REQUEST, karena_sprintf(a, "Unknown resource type %d", type));
    }

    /* the resource's new complete set, and the records that get there */
    if (!ops) {
        memset(&next, 0, sizeof next);
        for (int i = 0; i < n; i++) {
            char *k = kstr_dup(names[i], a), *v = kstr_dup(values[i], a);
            kv_put(&next, k, v, a);
            kv_put(&changes, k, v, a);
        }
        for (int i = 0; i < current.n; i++)
            if (!kv_get(&next, current.keys[i])) kv_put(&changes, current.keys[i], NULL, a);
    } else {
        next = current;
        next.keys = karena_calloc(a, (size_t)(current.n + n + 1), sizeof *next.keys);
        next.values = karena_calloc(a, (size_t)(current.n + n + 1), sizeof *next.values);
        if (!next.keys || !next.values) return err(KERR_UNKNOWN_SERVER_ERROR, NULL);
        if (current.n > 0) { /* memcpy from NULL is undefined even for 0 bytes */
            memcpy(next.keys, current.keys, sizeof *next.keys * (size_t)current.n);
            memcpy(next.values, current.values, sizeof *next.values * (size_t)current.n);
        }
        next.cap = current.n + n + 1;
        for (int i = 0; i < n; i++) {
            char *k = kstr_dup(names[i], a);
            const char *v = NULL;
            if (ops[i] == OP_SET) {
                v = kstr_dup(values[i], a);
            } else if (ops[i] == OP_APPEND || ops[i] == OP_SUBTRACT) {
                const config_def *d = type == RES_TOPIC ? topic_config_def(k) : broker_config_def(k);
                const char *opname = ops[i] == OP_APPEND ? "APPEND" : "SUBTRACT";
                if (type == RES_TOPIC && (!d || config_def_type(d) != CFG_LIST))
                    return err(KERR_INVALID_CONFIG,
                               karena_sprintf(a, "Can't %s to key %s because its type is not LIST.", opname, k));
                if (type == RES_BROKER && !d)
                    return err(KERR_INVALID_CONFIG, karena_sprintf(a, "Unknown config name: %s", k));
                if (type == RES_BROKER && config_def_type(d) != CFG_LIST)
                    return err(KERR_INVALID_CONFIG,
                               karena_sprintf(a, "Config value %s is not allowed for config key: %s",
                                              ops[i] == OP_APPEND ? "append" : "subtract", k));
                const char *cur = kv_get(&next, k);
                v = list_op(cur ? cur : config_def_default(d), kstr_dup(values[i], a), ops[i], a);
            }
            kv_put(&next, k, v, a);
            kv_put(&changes, k, v, a);
        }
    }

    if (type == RES_TOPIC) {
        r = validate_topic_set(&next, a);
        if (r.code) return r;
        if (!b->image || !mimage_topic(b->image, rname))
            return err(KERR_UNKNOWN_TOPIC_OR_PARTITION, karena_sprintf(a, "The topic '%s' does not exist.", name));
    } else {
        r = validate_broker_set(&next, is_default, a);
        if (r.code) return r;
        /* new SSL settings of this node's listeners must build a TLS context (Kafka's SslFactory validation) */
        char why[640];
        if (!is_default && broker_listeners_validate(b, next.keys, (const char *const *)next.values, next.n, why,
                                                     sizeof why) < 0)
            return err(KERR_INVALID_REQUEST, karena_strndup(a, why, strlen(why)));
    }
    return commit_changes(b, type, name, &changes, validate_only, w);
}

/* Each resource may appear once; both copies of a repeated one fail. */
static bool repeated(const int8_t *types, const kstr *names, int n, int i) {
    for (int j = 0; j < n; j++)
        if (j != i && types[j] == types[i] && kstr_eq(names[j], names[i])) return true;
    return false;
}

static kstr result_message(alter_result r) {
    if (!r.msg || r.code == KERR_NONE) return KSTR_NULL;
    if (strcmp(r.msg, kerr_message(r.code)) == 0) return KSTR_NULL;
    return kstr_from(r.msg);
}

REQ_CHANGES_REPLY(reply_AlterConfigs, AlterConfigsResponse)

void h_alter_configs(broker *b, kreq *req) {
    AlterConfigsRequest r;
    if (KREQ_DECODE(req, AlterConfigsRequest, &r) < 0) return;
    karena *a = &req->arena;
    int n = r.resources_count > 0 ? r.resources_count : 0;
    AlterConfigsResponse *respp = karena_alloc(a, sizeof *respp);
    req_changes *rc = respp ? req_changes_begin(req, reply_AlterConfigs, respp) : NULL;
    if (!rc) {
        kreq_fail(req, "out of memory");
        return;
    }
#define resp (*respp)
    AlterConfigsResponse_init(&resp);
    resp.responses = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.responses);
    int8_t *types = karena_calloc(a, (size_t)(n ? n : 1), sizeof *types);
    kstr *rnames = karena_calloc(a, (size_t)(n ? n : 1), sizeof *rnames);
    if (!resp.responses || !types || !rnames) {
        kreq_fail(req, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        types[i] = r.resources[i].resource_type;
        rnames[i] = r.resources[i].resource_name;
    }
    for (int i = 0; i < n; i++) {
        AlterConfigsRequest_AlterConfigsResource *res = &r.resources[i];
        AlterConfigsResponse_AlterConfigsResourceResponse *o = &resp.responses[i];
        AlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->resource_type = res->resource_type;
        o->resource_name = res->resource_name;
        alter_wait *w = karena_alloc(a, sizeof *w);
        if (w) *w = (alter_wait){rc, &o->error_code};
        alter_result ar;
        int16_t denied = config_denied(req, res->resource_type, res->resource_name, true);
        if (repeated(types, rnames, n, i)) {
            ar = err(KERR_INVALID_REQUEST, "Each resource must appear at most once.");
        } else if (denied) {
            ar = err(denied, NULL);
        } else {
            int nc = res->configs_count > 0 ? res->configs_count : 0;
            kstr *names = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof *names);
            kstr *values = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof *values);
            if (!names || !values || !w) {
                ar = err(KERR_UNKNOWN_SERVER_ERROR, NULL);
            } else {
                for (int k = 0; k < nc; k++) {
                    names[k] = res->configs[k].name;
                    values[k] = res->configs[k].value;
                }
                ar = alter_one(b, res->resource_type, res->resource_name, names, values, NULL, nc, r.validate_only, a, w);
            }
        }
        if (!ar.pending) o->error_code = ar.code;
        o->error_message = result_message(ar);
    }
    resp.responses_count = n;
#undef resp
    req_changes_done(b, rc);
}

REQ_CHANGES_REPLY(reply_IncrementalAlterConfigs, IncrementalAlterConfigsResponse)

void h_incremental_alter_configs(broker *b, kreq *req) {
    IncrementalAlterConfigsRequest r;
    if (KREQ_DECODE(req, IncrementalAlterConfigsRequest, &r) < 0) return;
    karena *a = &req->arena;
    int n = r.resources_count > 0 ? r.resources_count : 0;
    IncrementalAlterConfigsResponse *respp = karena_alloc(a, sizeof *respp);
    req_changes *rc = respp ? req_changes_begin(req, reply_IncrementalAlterConfigs, respp) : NULL;
    if (!rc) {
        kreq_fail(req, "out of memory");
        return;
    }
#define resp (*respp)
    IncrementalAlterConfigsResponse_init(&resp);
    resp.responses = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.responses);
    int8_t *types = karena_calloc(a, (size_t)(n ? n : 1), sizeof *types);
    kstr *rnames = karena_calloc(a, (size_t)(n ? n : 1), sizeof *rnames);
    if (!resp.responses || !types || !rnames) {
        kreq_fail(req, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        types[i] = r.resources[i].resource_type;
        rnames[i] = r.resources[i].resource_name;
    }
    for (int i = 0; i < n; i++) {
        IncrementalAlterConfigsRequest_AlterConfigsResource *res = &r.resources[i];
        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *o = &resp.responses[i];
        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->resource_type = res->resource_type;
        o->resource_name = res->resource_name;
        alter_wait *w = karena_alloc(a, sizeof *w);
        if (w) *w = (alter_wait){rc, &o->error_code};
        alter_result ar;
        int16_t denied = config_denied(req, res->resource_type, res->resource_name, true);
        if (repeated(types, rnames, n, i)) {
            ar = err(KERR_INVALID_REQUEST, "Each resource must appear at most once.");
        } else if (denied) {
            ar = err(denied, NULL);
        } else {
            int nc = res->configs_count > 0 ? res->configs_count : 0;
            kstr *names = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof *names);
            kstr *values = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof *values);
            int8_t *ops = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof *ops);
            if (!names || !values || !ops || !w) {
                ar = err(KERR_UNKNOWN_SERVER_ERROR, NULL);
            } else {
                for (int k = 0; k < nc; k++) {
                    names[k] = res->configs[k].name;
                    values[k] = res->configs[k].value;
                    ops[k] = res->configs[k].config_operation;
                }
                ar = alter_one(b, res->resource_type, res->resource_name, names, values, ops, nc, r.validate_only, a, w);
            }
        }
        if (!ar.pending) o->error_code = ar.code;
        o->error_message = result_message(ar);
    }
    resp.responses_count = n;
#undef resp
    req_changes_done(b, rc);
}
