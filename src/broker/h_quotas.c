/* h_quotas.c - DescribeClientQuotas and AlterClientQuotas (v0-1), as Kafka
 * 3.6.1's ClientQuotasImage.describe and ClientQuotaControlManager: quota
 * entities (user, client-id, (user, client-id), ip, each name or
 * <default>) kept as ClientQuotaRecords through the metadata store, so
 * every node applies them and they survive a restart (log and snapshots).
 * Enforcement reads the image (broker/quota.c).
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

/* DescribeClientQuotasRequest match types */
#define MATCH_EXACT 0
#define MATCH_DEFAULT 1
#define MATCH_SPECIFIED 2

/* ---- DescribeClientQuotas ---- */

typedef struct qfilter {
    uint8_t exact, specified;       /* 1 << MQE_* */
    kstr name[MQE_NTYPES];          /* for exact: len -1 = the default */
} qfilter;

static bool filter_matches(const qfilter *f, const mquota *q, bool strict) {
    if (strict && __builtin_popcount(q->has) != __builtin_popcount(f->exact | f->specified)) return false;
    for (int t = 0; t < MQE_NTYPES; t++) {
        uint8_t bit = (uint8_t)(1u << t);
        if ((f->exact | f->specified) & bit && !(q->has & bit)) return false;
        if (f->exact & bit) {
            if (f->name[t].len < 0 ? q->name[t] != NULL : (!q->name[t] || !kstr_eq_c(f->name[t], q->name[t])))
                return false;
        }
    }
    return true;
}

static void describe_fail(kreq *req, int16_t err, const char *msg) {
    DescribeClientQuotasResponse resp;
    DescribeClientQuotasResponse_init(&resp);
    resp.error_code = err;
    resp.error_message = kstr_from(karena_strndup(&req->arena, msg, strlen(msg)));
    resp.entries = NULL;
    resp.entries_count = -1;
    KREQ_REPLY(req, DescribeClientQuotasResponse, &resp);
}

void h_describe_client_quotas(broker *b, kreq *req) {
    DescribeClientQuotasRequest r;
    if (KREQ_DECODE(req, DescribeClientQuotasRequest, &r) < 0) return;
    if (!authz_cluster(req, AZ_OP_DESCRIBE_CONFIGS)) /* KafkaApis: DESCRIBE_CONFIGS on the cluster */
        return describe_fail(req, KERR_CLUSTER_AUTHORIZATION_FAILED, kerr_message(KERR_CLUSTER_AUTHORIZATION_FAILED));
    qfilter f;
    memset(&f, 0, sizeof f);
    char msg[512];
    for (int32_t i = 0; i < r.components_count; i++) {
        const DescribeClientQuotasRequest_ComponentData *c = &r.components[i];
        if (c->entity_type.len <= 0) return describe_fail(req, KERR_INVALID_REQUEST, "Invalid empty entity type.");
        int t = mquota_type_from(c->entity_type);
        if (t >= 0 && ((f.exact | f.specified) & (1u << t))) {
            snprintf(msg, sizeof msg, "Entity type %.*s cannot appear more than once in the filter.",
                     (int)c->entity_type.len, c->entity_type.p);
            return describe_fail(req, KERR_INVALID_REQUEST, msg);
        }
        if (t < 0) {
            snprintf(msg, sizeof msg, "Unsupported entity type %.*s", (int)c->entity_type.len, c->entity_type.p);
            return describe_fail(req, KERR_UNSUPPORTED_VERSION, msg);
        }
        switch (c->match_type) {
        case MATCH_EXACT:
            if (c->match.len < 0)
                return describe_fail(req, KERR_INVALID_REQUEST,
                                     "Request specified MATCH_TYPE_EXACT, but set match string to null.");
            f.exact |= (uint8_t)(1u << t);
            f.name[t] = c->match;
            break;
        case MATCH_DEFAULT:
            if (c->match.len >= 0)
                return describe_fail(req, KERR_INVALID_REQUEST,
                                     "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.");
            f.exact |= (uint8_t)(1u << t);
            f.name[t] = KSTR_NULL;
            break;
        case MATCH_SPECIFIED:
            if (c->match.len >= 0)
                return describe_fail(req, KERR_INVALID_REQUEST,
                                     "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.");
            f.specified |= (uint8_t)(1u << t);
            break;
        default:
            snprintf(msg, sizeof msg, "Unknown match type %d", c->match_type);
            return describe_fail(req, KERR_INVALID_REQUEST, msg);
        }
    }
    uint8_t any = f.exact | f.specified;
    if (any & (1u << MQE_IP) && any & ((1u << MQE_USER) | (1u << MQE_CLIENT_ID)))
        return describe_fail(req, KERR_INVALID_REQUEST,
                             "Invalid entity filter component combination. IP filter component should not be used "
                             "with user or clientId filter component.");
    const mimage *img = b->image;
    DescribeClientQuotasResponse resp;
    DescribeClientQuotasResponse_init(&resp);
    resp.error_message = KSTR_NULL;
    if (!KREQ_ALLOC_ARRAY(req, img->nquotas, resp.entries)) return kreq_fail(req, "out of memory");
    resp.entries_count = 0;
    for (int32_t i = 0; i < img->nquotas; i++) {
        const mquota *q = &img->quotas[i];
        if (!filter_matches(&f, q, r.strict)) continue;
        DescribeClientQuotasResponse_EntryData *e = &resp.entries[resp.entries_count++];
        DescribeClientQuotasResponse_EntryData_init(e);
        if (!KREQ_ALLOC_ARRAY(req, MQE_NTYPES, e->entity) || !KREQ_ALLOC_ARRAY(req, MQ_NKEYS, e->values))
            return kreq_fail(req, "out of memory");
        e->entity_count = 0;
        e->values_count = 0;
        for (int t = 0; t < MQE_NTYPES; t++) {
            if (!(q->has & (1u << t))) continue;
            DescribeClientQuotasResponse_EntityData *d = &e->entity[e->entity_count++];
            DescribeClientQuotasResponse_EntityData_init(d);
            d->entity_type = kstr_from(mquota_type_name(t));
            d->entity_name = q->name[t] ? kstr_from(karena_strndup(&req->arena, q->name[t], strlen(q->name[t])))
                                        : KSTR_NULL;
        }
        for (int k = 0; k < MQ_NKEYS; k++) {
            if (!(q->set & (1u << k))) continue;
            DescribeClientQuotasResponse_ValueData *v = &e->values[e->values_count++];
            DescribeClientQuotasResponse_ValueData_init(v);
            v->key = kstr_from(mquota_key_name(k));
            v->value = q->value[k];
        }
    }
    KREQ_REPLY(req, DescribeClientQuotasResponse, &resp);
}

/* ---- AlterClientQuotas ---- */

typedef struct alter_ctx {
    kreq *req;
    AlterClientQuotasResponse resp;
} alter_ctx;

static void alter_committed(broker *b, void *arg, mstore_status st) {
    (void)b;
    alter_ctx *x = arg;
    if (st != MSTORE_OK)
        for (int32_t i = 0; i < x->resp.entries_count; i++)
            if (x->resp.entries[i].error_code == 0) x->resp.entries[i].error_code = mstore_status_error(st);
    kreq *req = x->req;
    KREQ_REPLY(req, AlterClientQuotasResponse, &x->resp);
    free(x);
}

/* Java's ClientQuotaEntity.toString: "ClientQuotaEntity(entries={user=a})" */
static const char *entity_text(kreq *req, const AlterClientQuotasRequest_EntryData *e) {
    char buf[1024];
    size_t n = (size_t)snprintf(buf, sizeof buf, "ClientQuotaEntity(entries={");
    for (int32_t k = 0; k < e->entity_count && n < sizeof buf; k++) {
        const AlterClientQuotasRequest_EntityData *d = &e->entity[k];
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%.*s=%.*s", k ? ", " : "", (int)d->entity_type.len,
                              d->entity_type.p, d->entity_name.len < 0 ? 4 : (int)d->entity_name.len,
                              d->entity_name.len < 0 ? "null" : d->entity_name.p);
    }
    if (n < sizeof buf) snprintf(buf + n, sizeof buf - n, "})");
    return karena_strndup(&req->arena, buf, strlen(buf));
}

static bool same_entity(const AlterClientQuotasRequest_EntryData *a, const AlterClientQuotasRequest_EntryData *b) {
    if (a->entity_count != b->entity_count) return false;
    for (int32_t i = 0; i < a->entity_count; i++) {
        bool found = false;
        for (int32_t k = 0; k < b->entity_count && !found; k++)
            found = kstr_eq(a->entity[i].entity_type, b->entity[k].entity_type) &&
                    a->entity[i].entity_name.len == b->entity[k].entity_name.len &&
                    (a->entity[i].entity_name.len < 0 || kstr_eq(a->entity[i].entity_name, b->entity[k].entity_name));
        if (!found) return false;
    }
    return true;
}

/* InetAddress.getByName of a literal: Samsa does not resolve host names
 * here (say so rather than block the loop on DNS). */
static bool valid_ip(const char *s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Validate one entry (validateEntity, configKeysForEntityType,
 * validateQuotaKeyValue); NULL when it is fine, else the message. */
static const char *validate_entry(kreq *req, const AlterClientQuotasRequest_EntryData *e, uint8_t *has_out,
                                  char **names) {
    char msg[600];
    uint8_t has = 0;
    if (e->entity_count <= 0) return "Invalid empty client quota entity";
    for (int32_t k = 0; k < e->entity_count; k++) {
        const AlterClientQuotasRequest_EntityData *d = &e->entity[k];
        int t = mquota_type_from(d->entity_type);
        if (t >= 0 && (has & (1u << t))) {
            snprintf(msg, sizeof msg, "Invalid client quota entity, duplicate entity entry %.*s",
                     (int)d->entity_type.len, d->entity_type.p);
            return karena_strndup(&req->arena, msg, strlen(msg));
        }
        if (t < 0) {
            snprintf(msg, sizeof msg, "Unhandled client quota entity type: %.*s", (int)d->entity_type.len,
                     d->entity_type.p);
            return karena_strndup(&req->arena, msg, strlen(msg));
        }
        if (d->entity_name.len == 0) {
            snprintf(msg, sizeof msg, "Empty %s not supported", mquota_type_name(t));
            return karena_strndup(&req->arena, msg, strlen(msg));
        }
        has |= (uint8_t)(1u << t);
        names[t] = d->entity_name.len < 0 ? NULL : kstr_dup(d->entity_name, &req->arena);
        if (d->entity_name.len > 0 && !names[t]) return "out of memory";
    }
    bool ip = has & (1u << MQE_IP);
    if (ip && has != (1u << MQE_IP))
        return "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId";
    if (ip && names[MQE_IP] && !valid_ip(names[MQE_IP])) {
        snprintf(msg, sizeof msg, "%s is not a valid IP or resolvable host.", names[MQE_IP]);
        return karena_strndup(&req->arena, msg, strlen(msg));
    }
    for (int32_t k = 0; k < e->ops_count; k++) {
        const AlterClientQuotasRequest_OpData *op = &e->ops[k];
        for (int32_t j = 0; j < k; j++)
            if (kstr_eq(e->ops[j].key, op->key)) {
                snprintf(msg, sizeof msg, "Duplicate quota key %.*s not updating quota for this entity %s",
                         (int)op->key.len, op->key.p, entity_text(req, e));
                return karena_strndup(&req->arena, msg, strlen(msg));
            }
        if (op->remove) continue;
        int key = mquota_key_from(op->key);
        bool allowed = key >= 0 && (ip ? key == MQ_CONNECTION_CREATION_RATE : key != MQ_CONNECTION_CREATION_RATE);
        if (!allowed) {
            snprintf(msg, sizeof msg, "Invalid configuration key %.*s", (int)op->key.len, op->key.p);
            return karena_strndup(&req->arena, msg, strlen(msg));
        }
        if (!(op->value > 0.0)) {
            snprintf(msg, sizeof msg, "Quota %s must be greater than 0", mquota_key_name(key));
            return karena_strndup(&req->arena, msg, strlen(msg));
        }
        /* producer/consumer byte rates are LONG, connection_creation_rate INT, the rest DOUBLE */
        bool integral = key == MQ_PRODUCER_BYTE_RATE || key == MQ_CONSUMER_BYTE_RATE || key == MQ_CONNECTION_CREATION_RATE;
        if (key == MQ_CONNECTION_CREATION_RATE && op->value > 2147483647.0) {
            snprintf(msg, sizeof msg, "Proposed value for %s is too large for an INT.", mquota_key_name(key));
            return karena_strndup(&req->arena, msg, strlen(msg));
        }
        if (integral && op->value > 9223372036854775807.0) {
            snprintf(msg, sizeof msg, "Proposed value for %s is too large for a LONG.", mquota_key_name(key));
            return karena_strndup(&req->arena, msg, strlen(msg));
        }
        /* From 2^52 on every double is whole; below, the cast keeps the integral part. */
        double frac = fabs(op->value) < 4503599627370496.0 ? op->value - (double)(int64_t)op->value : 0;
        if (integral && fabs(frac) > 1e-6) {
            snprintf(msg, sizeof msg, "%s cannot be a fractional value.", mquota_key_name(key));
            return karena_strndup(&req->arena, msg, strlen(msg));
        }
    }
    *has_out = has;
    return NULL;
}

void h_alter_client_quotas(broker *b, kreq *req) {
    AlterClientQuotasRequest r;
    if (KREQ_DECODE(req, AlterClientQuotasRequest, &r) < 0) return;
    int n = r.entries_count > 0 ? r.entries_count : 0;
    alter_ctx *x = calloc(1, sizeof *x);
    if (!x) return kreq_fail(req, "out of memory");
    x->req = req;
    AlterClientQuotasResponse_init(&x->resp);
    int maxrecs = 0;
    for (int i = 0; i < n; i++) maxrecs += r.entries[i].ops_count > 0 ? r.entries[i].ops_count : 0;
    mrecord *recs = NULL;
    if (!KREQ_ALLOC_ARRAY(req, n, x->resp.entries) || !KREQ_ALLOC_ARRAY(req, maxrecs, recs)) {
        free(x);
        return kreq_fail(req, "out of memory");
    }
    x->resp.entries_count = n;
    int nrecs = 0;
    bool cluster_ok = authz_cluster(req, AZ_OP_ALTER_CONFIGS); /* KafkaApis: ALTER_CONFIGS on the cluster */
    for (int i = 0; i < n; i++) {
        const AlterClientQuotasRequest_EntryData *e = &r.entries[i];
        AlterClientQuotasResponse_EntryData *o = &x->resp.entries[i];
        AlterClientQuotasResponse_EntryData_init(o);
        o->error_message = KSTR_NULL;
        int ne = e->entity_count > 0 ? e->entity_count : 0;
        if (!KREQ_ALLOC_ARRAY(req, ne, o->entity)) goto oom;
        o->entity_count = ne;
        for (int k = 0; k < ne; k++) {
            AlterClientQuotasResponse_EntityData_init(&o->entity[k]);
            o->entity[k].entity_type = e->entity[k].entity_type;
            o->entity[k].entity_name = e->entity[k].entity_name;
        }
        if (!cluster_ok) {
            o->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            o->error_message = kstr_from(kerr_message(KERR_CLUSTER_AUTHORIZATION_FAILED));
            continue;
        }
        const char *err = NULL;
        for (int j = 0; j < i && !err; j++)
            if (same_entity(&r.entries[j], e)) {
                char msg[1100];
                snprintf(msg, sizeof msg, "Ignoring duplicate entity %s", entity_text(req, e));
                err = karena_strndup(&req->arena, msg, strlen(msg));
            }
        uint8_t has = 0;
        char *names[MQE_NTYPES] = {NULL, NULL, NULL};
        if (!err) err = validate_entry(req, e, &has, names);
        if (err) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from(err);
            continue;
        }
        /* records only for what changes (alterClientQuotaEntity) */
        const mquota *cur = mimage_quota(b->image, has, (const char *const *)names);
        ClientQuotaRecord_EntityData *ents = NULL;
        if (!KREQ_ALLOC_ARRAY(req, MQE_NTYPES, ents)) goto oom;
        int32_t nents = 0;
        for (int t = 0; t < MQE_NTYPES; t++) {
            if (!(has & (1u << t))) continue;
            ClientQuotaRecord_EntityData_init(&ents[nents]);
            ents[nents].entity_type = kstr_from(mquota_type_name(t));
            ents[nents++].entity_name = names[t] ? kstr_from(names[t]) : KSTR_NULL;
        }
        for (int32_t k = 0; k < e->ops_count; k++) {
            const AlterClientQuotasRequest_OpData *op = &e->ops[k];
            int key = mquota_key_from(op->key);
            bool is_set = key >= 0 && cur && (cur->set & (1u << key));
            if (op->remove ? !is_set : (is_set && cur->value[key] == op->value)) continue;
            if (key < 0) continue; /* removing an unknown key: nothing is set */
            ClientQuotaRecord *cr = karena_calloc(&req->arena, 1, sizeof *cr);
            if (!cr) goto oom;
            ClientQuotaRecord_init(cr);
            cr->entity = ents;
            cr->entity_count = nents;
            cr->key = op->key;
            cr->value = op->remove ? 0.0 : op->value;
            cr->remove = op->remove;
            recs[nrecs++] = (mrecord){KMETA_CLIENT_QUOTA_RECORD, 0, cr};
        }
    }
    if (r.validate_only || nrecs == 0) {
        alter_committed(b, x, MSTORE_OK);
        return;
    }
    mstore_commit(b->store, recs, nrecs, 0, alter_committed, x);
    return;
oom:
    free(x);
    kreq_fail(req, "out of memory");
}
