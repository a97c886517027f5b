/* image.c - applying metadata records to the cluster image (see image.h).
 *
 * Pure: every function here only reads its arguments and the image. The
 * image owns all its memory (plain malloc); records are copied in.
 */
#include "metadata/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/kmsg.h"

mimage *mimage_new(int32_t node_id) {
    mimage *img = calloc(1, sizeof *img);
    if (!img) return NULL;
    img->node_id = node_id;
    img->last_offset = -1;
    return img;
}

static void mconfig_set_free(mconfig_set *s) {
    for (int i = 0; i < s->count; i++) {
        free(s->items[i].key);
        free(s->items[i].value);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

static void mpartition_free(mpartition *p) {
    free(p->replicas);
    free(p->isr);
    free(p->removing);
    free(p->adding);
}

static void mtopic_free(mtopic *t) {
    for (int i = 0; i < t->nparts; i++) mpartition_free(&t->parts[i]);
    free(t->parts);
    mconfig_set_free(&t->configs);
    free(t->name);
    free(t);
}

static void mbroker_free_fields(mbroker *br) {
    for (int i = 0; i < br->nendpoints; i++) {
        free(br->endpoints[i].name);
        free(br->endpoints[i].host);
    }
    free(br->endpoints);
    free(br->rack);
}

static void acl_free_fields(az_acl *a) {
    free(a->resource_name);
    free(a->principal);
    free(a->host);
}

void mimage_free(mimage *img) {
    if (!img) return;
    for (int i = 0; i < img->nbrokers; i++) mbroker_free_fields(&img->brokers[i]);
    free(img->brokers);
    for (int i = 0; i < img->ntopics; i++) mtopic_free(img->topics[i]);
    free(img->topics);
    mconfig_set_free(&img->broker_configs);
    mconfig_set_free(&img->default_broker_configs);
    for (int i = 0; i < img->nscram; i++) {
        free(img->scram[i].name);
        free(img->scram[i].salt);
    }
    free(img->scram);
    for (int i = 0; i < img->nquotas; i++)
        for (int t = 0; t < MQE_NTYPES; t++) free(img->quotas[i].name[t]);
    free(img->quotas);
    for (int i = 0; i < img->nacls; i++) acl_free_fields(&img->acls[i]);
    free(img->acls);
    free(img);
}

mtopic *mimage_topic(const mimage *img, kstr name) {
    for (int i = 0; i < img->ntopics; i++)
        if (kstr_eq_c(name, img->topics[i]->name)) return img->topics[i];
    return NULL;
}

mtopic *mimage_topic_by_id(const mimage *img, const kuuid *id) {
    for (int i = 0; i < img->ntopics; i++)
        if (memcmp(img->topics[i]->id.b, id->b, 16) == 0) return img->topics[i];
    return NULL;
}

mbroker *mimage_broker(const mimage *img, int32_t id) {
    for (int i = 0; i < img->nbrokers; i++)
        if (img->brokers[i].id == id) return &img->brokers[i];
    return NULL;
}

bool mimage_broker_alive(const mimage *img, int32_t id) {
    const mbroker *br = mimage_broker(img, id);
    return br && !br->fenced;
}

const mendpoint *mbroker_endpoint(const mbroker *br, const char *listener) {
    for (int i = 0; i < br->nendpoints; i++)
        if (strcmp(br->endpoints[i].name, listener) == 0) return &br->endpoints[i];
    return NULL;
}

const char *mconfig_get(const mconfig_set *s, const char *key) {
    for (int i = 0; i < s->count; i++)
        if (strcmp(s->items[i].key, key) == 0) return s->items[i].value;
    return NULL;
}

static char *dup_kstr(kstr s) {
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    char *p = malloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s.p, n);
    p[n] = 0;
    return p;
}

static int32_t *dup_ints(const int32_t *v, int32_t n) {
    if (n <= 0) return NULL;
    int32_t *p = malloc(sizeof(int32_t) * (size_t)n);
    if (p) memcpy(p, v, sizeof(int32_t) * (size_t)n);
    return p;
}

/* Set (value != NULL) or remove (NULL) key in s. */
static int mconfig_put(mconfig_set *s, kstr key, kstr value) {
    for (int i = 0; i < s->count; i++) {
        if (!kstr_eq_c(key, s->items[i].key)) continue;
        if (value.len < 0) {
            free(s->items[i].key);
            free(s->items[i].value);
            s->items[i] = s->items[--s->count];
            return 0;
        }
        char *v = dup_kstr(value);
        if (!v) return -1;
        free(s->items[i].value);
        s->items[i].value = v;
        return 0;
    }
    if (value.len < 0) return 0;
    if (s->count == s->cap) {
        int n = s->cap ? s->cap * 2 : 8;
        mconfig *ni = realloc(s->items, sizeof(*ni) * (size_t)n);
        if (!ni) return -1;
        s->items = ni;
        s->cap = n;
    }
    char *k = dup_kstr(key), *v = dup_kstr(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    s->items[s->count].key = k;
    s->items[s->count].value = v;
    s->count++;
    return 0;
}

static int apply_topic(mimage *img, const TopicRecord *r) {
    if (mimage_topic(img, r->name) || mimage_topic_by_id(img, &r->topic_id)) return -1;
    if (img->ntopics == img->captopics) {
        int n = img->captopics ? img->captopics * 2 : 16;
        mtopic **nt = realloc(img->topics, sizeof(*nt) * (size_t)n);
        if (!nt) return -1;
        img->topics = nt;
        img->captopics = n;
    }
    mtopic *t = calloc(1, sizeof *t);
    if (!t) return -1;
    t->name = dup_kstr(r->name);
    if (!t->name) {
        free(t);
        return -1;
    }
    t->id = r->topic_id;
    img->topics[img->ntopics++] = t;
    return 0;
}

static int apply_partition(mimage *img, const PartitionRecord *r) {
    mtopic *t = mimage_topic_by_id(img, &r->topic_id);
    if (!t || r->partition_id < 0 || r->partition_id > t->nparts) return -1;
    if (r->partition_id == t->nparts) {
        mpartition *np = realloc(t->parts, sizeof(*np) * (size_t)(t->nparts + 1));
        if (!np) return -1;
        t->parts = np;
        memset(&t->parts[t->nparts], 0, sizeof *np);
        t->nparts++;
    }
    mpartition *p = &t->parts[r->partition_id];
    mpartition_free(p);
    p->partition_id = r->partition_id;
    p->nreplicas = r->replicas_count > 0 ? r->replicas_count : 0;
    p->replicas = dup_ints(r->replicas, p->nreplicas);
    p->nisr = r->isr_count > 0 ? r->isr_count : 0;
    p->isr = dup_ints(r->isr, p->nisr);
    p->nremoving = r->removing_replicas_count > 0 ? r->removing_replicas_count : 0;
    p->removing = dup_ints(r->removing_replicas, p->nremoving);
    p->nadding = r->adding_replicas_count > 0 ? r->adding_replicas_count : 0;
    p->adding = dup_ints(r->adding_replicas, p->nadding);
    p->leader = r->leader;
    p->leader_epoch = r->leader_epoch;
    p->partition_epoch = r->partition_epoch;
    return 0;
}

static int apply_partition_change(mimage *img, const PartitionChangeRecord *r) {
    mtopic *t = mimage_topic_by_id(img, &r->topic_id);
    if (!t || r->partition_id < 0 || r->partition_id >= t->nparts) return -1;
    mpartition *p = &t->parts[r->partition_id];
    if (r->isr_count >= 0) {
        free(p->isr);
        p->nisr = r->isr_count;
        p->isr = dup_ints(r->isr, r->isr_count);
    }
    if (r->replicas_count >= 0) {
        free(p->replicas);
        p->nreplicas = r->replicas_count;
        p->replicas = dup_ints(r->replicas, r->replicas_count);
    }
    if (r->removing_replicas_count >= 0) {
        free(p->removing);
        p->nremoving = r->removing_replicas_count;
        p->removing = dup_ints(r->removing_replicas, r->removing_replicas_count);
    }
    if (r->adding_replicas_count >= 0) {
        free(p->adding);
        p->nadding = r->adding_replicas_count;
        p->adding = dup_ints(r->adding_replicas, r->adding_replicas_count);
    }
    /* epochs come from the log: wrap at INT32_MAX as Java's int does, not UB */
    if (r->leader != -2) {
        p->leader = r->leader;
        p->leader_epoch = (int32_t)((uint32_t)p->leader_epoch + 1u); /* a leader change bumps it */
    }
    p->partition_epoch = (int32_t)((uint32_t)p->partition_epoch + 1u);
    return 0;
}

static int apply_config(mimage *img, const ConfigRecord *r) {
    if (r->resource_type == MRES_TOPIC) {
        mtopic *t = mimage_topic(img, r->resource_name);
        if (!t) return -1;
        return mconfig_put(&t->configs, r->name, r->value);
    }
    if (r->resource_type == MRES_BROKER) {
        if (r->resource_name.len == 0) return mconfig_put(&img->default_broker_configs, r->name, r->value);
        char id[16];
        snprintf(id, sizeof id, "%d", img->node_id);
        if (!kstr_eq_c(r->resource_name, id)) return 0; /* another node's: not ours to keep */
        return mconfig_put(&img->broker_configs, r->name, r->value);
    }
    return 0; /* other resource types (e.g. broker loggers) are not kept */
}

/* A (re-)registration replaces what was known of the broker. */
static int apply_register_broker(mimage *img, const RegisterBrokerRecord *r) {
    mbroker nb;
    memset(&nb, 0, sizeof nb);
    nb.id = r->broker_id;
    nb.epoch = r->broker_epoch;
    nb.incarnation_id = r->incarnation_id;
    nb.fenced = r->fenced;
    nb.in_controlled_shutdown = r->in_controlled_shutdown;
    nb.rack = r->rack.len >= 0 ? dup_kstr(r->rack) : NULL;
    int n = r->end_points_count > 0 ? r->end_points_count : 0;
    nb.endpoints = n ? calloc((size_t)n, sizeof *nb.endpoints) : NULL;
    if ((n && !nb.endpoints) || (r->rack.len >= 0 && !nb.rack)) {
        mbroker_free_fields(&nb);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        mendpoint *e = &nb.endpoints[nb.nendpoints++];
        e->name = dup_kstr(r->end_points[i].name);
        e->host = dup_kstr(r->end_points[i].host);
        e->port = r->end_points[i].port;
        e->security_protocol = r->end_points[i].security_protocol;
        if (!e->name || !e->host) {
            mbroker_free_fields(&nb);
            return -1;
        }
    }
    mbroker *old = mimage_broker(img, nb.id);
    if (old) {
        mbroker_free_fields(old);
        *old = nb;
        return 0;
    }
    if (img->nbrokers == img->capbrokers) {
        int c = img->capbrokers ? img->capbrokers * 2 : 8;
        mbroker *nv = realloc(img->brokers, sizeof(*nv) * (size_t)c);
        if (!nv) {
            mbroker_free_fields(&nb);
            return -1;
        }
        img->brokers = nv;
        img->capbrokers = c;
    }
    int at = img->nbrokers;
    while (at > 0 && img->brokers[at - 1].id > nb.id) {
        img->brokers[at] = img->brokers[at - 1];
        at--;
    }
    img->brokers[at] = nb;
    img->nbrokers++;
    return 0;
}

static int apply_unregister_broker(mimage *img, const UnregisterBrokerRecord *r) {
    for (int i = 0; i < img->nbrokers; i++) {
        if (img->brokers[i].id != r->broker_id) continue;
        mbroker_free_fields(&img->brokers[i]);
        memmove(&img->brokers[i], &img->brokers[i + 1], sizeof(mbroker) * (size_t)(img->nbrokers - i - 1));
        img->nbrokers--;
        return 0;
    }
    return -1;
}

/* Fencing names the epoch it fences: a newer registration is not touched. */
static int apply_fencing(mimage *img, int32_t id, int64_t epoch, bool fenced) {
    mbroker *br = mimage_broker(img, id);
    if (!br) return -1;
    if (br->epoch == epoch) br->fenced = fenced;
    return 0;
}

static int apply_remove_topic(mimage *img, const RemoveTopicRecord *r) {
    for (int i = 0; i < img->ntopics; i++) {
        if (memcmp(img->topics[i]->id.b, r->topic_id.b, 16) == 0) {
            mtopic_free(img->topics[i]);
            img->topics[i] = img->topics[--img->ntopics];
            return 0;
        }
    }
    return -1;
}

const mscram *mimage_scram(const mimage *img, const char *name, int8_t mechanism) {
    for (int i = 0; i < img->nscram; i++)
        if (img->scram[i].mechanism == mechanism && strcmp(img->scram[i].name, name) == 0) return &img->scram[i];
    return NULL;
}

/* ---- client quotas ---- */

static const char *const quota_keys[MQ_NKEYS] = {"producer_byte_rate", "consumer_byte_rate", "request_percentage",
                                                  "controller_mutation_rate", "connection_creation_rate"};
static const char *const quota_types[MQE_NTYPES] = {"user", "client-id", "ip"};

const char *mquota_key_name(int key) { return key >= 0 && key < MQ_NKEYS ? quota_keys[key] : NULL; }
int mquota_key_from(kstr name) {
    for (int i = 0; i < MQ_NKEYS; i++)
        if (kstr_eq_c(name, quota_keys[i])) return i;
    return -1;
}
const char *mquota_type_name(int type) { return type >= 0 && type < MQE_NTYPES ? quota_types[type] : NULL; }
int mquota_type_from(kstr name) {
    for (int i = 0; i < MQE_NTYPES; i++)
        if (kstr_eq_c(name, quota_types[i])) return i;
    return -1;
}

static bool same_name(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

const mquota *mimage_quota(const mimage *img, uint8_t has, const char *const names[MQE_NTYPES]) {
    for (int i = 0; i < img->nquotas; i++) {
        const mquota *q = &img->quotas[i];
        if (q->has != has) continue;
        bool eq = true;
        for (int t = 0; t < MQE_NTYPES && eq; t++)
            if (has & (1u << t)) eq = same_name(q->name[t], names[t]);
        if (eq) return q;
    }
    return NULL;
}

/* ClientQuotaControlManager.replay: set or remove one key of an entity; an
 * entity left without values goes. Keys this node does not know are
 * ignored (nothing reads them). */
static int apply_client_quota(mimage *img, const ClientQuotaRecord *r) {
    uint8_t has = 0;
    char *names[MQE_NTYPES] = {NULL, NULL, NULL};
    int rc = -1;
    for (int i = 0; i < r->entity_count; i++) {
        int t = mquota_type_from(r->entity[i].entity_type);
        if (t < 0 || (has & (1u << t))) goto out;
        has |= (uint8_t)(1u << t);
        kstr n = r->entity[i].entity_name;
        if (n.len >= 0 && !(names[t] = strndup(n.p ? n.p : "", (size_t)n.len))) goto out;
    }
    if (!has) goto out;
    int key = mquota_key_from(r->key);
    rc = 0;
    if (key < 0) goto out;
    mquota *q = (mquota *)mimage_quota(img, has, (const char *const *)names);
    if (r->remove) {
        if (!q) goto out;
        q->set &= (uint8_t)~(1u << key);
        if (!q->set) {
            for (int t = 0; t < MQE_NTYPES; t++) free(q->name[t]);
            *q = img->quotas[--img->nquotas];
        }
        img->quota_changes++;
        goto out;
    }
    if (!q) {
        if (img->nquotas == img->capquotas) {
            int n = img->capquotas ? img->capquotas * 2 : 8;
            mquota *nq = realloc(img->quotas, sizeof *nq * (size_t)n);
            if (!nq) {
                rc = -1;
                goto out;
            }
            img->quotas = nq;
            img->capquotas = n;
        }
        q = &img->quotas[img->nquotas++];
        memset(q, 0, sizeof *q);
        q->has = has;
        for (int t = 0; t < MQE_NTYPES; t++) q->name[t] = names[t], names[t] = NULL; /* the entity owns them */
    }
    q->set |= (uint8_t)(1u << key);
    q->value[key] = r->value;
    img->quota_changes++;
out:
    for (int t = 0; t < MQE_NTYPES; t++) free(names[t]);
    return rc;
}

/* ScramControlManager.replay: create or replace the (user, mechanism) entry. */
static int apply_scram(mimage *img, const UserScramCredentialRecord *r) {
    if (r->name.len <= 0 || r->stored_key.len <= 0 || r->stored_key.len > 64 || r->server_key.len != r->stored_key.len ||
        r->salt.len < 0)
        return -1;
    char *name = dup_kstr(r->name);
    uint8_t *salt = malloc(r->salt.len > 0 ? (size_t)r->salt.len : 1);
    if (!name || !salt) {
        free(name);
        free(salt);
        return -1;
    }
    if (r->salt.len > 0) memcpy(salt, r->salt.p, (size_t)r->salt.len);
    mscram *e = (mscram *)mimage_scram(img, name, r->mechanism);
    if (e) {
        free(e->name);
        free(e->salt);
    } else {
        if (img->nscram == img->capscram) {
            int n = img->capscram ? img->capscram * 2 : 8;
            mscram *ns = realloc(img->scram, sizeof *ns * (size_t)n);
            if (!ns) {
                free(name);
                free(salt);
                return -1;
            }
            img->scram = ns;
            img->capscram = n;
        }
        e = &img->scram[img->nscram++];
    }
    memset(e, 0, sizeof *e);
    e->name = name;
    e->mechanism = r->mechanism;
    e->salt = salt;
    e->salt_len = r->salt.len;
    memcpy(e->stored_key, r->stored_key.p, (size_t)r->stored_key.len);
    memcpy(e->server_key, r->server_key.p, (size_t)r->server_key.len);
    e->key_len = r->stored_key.len;
    e->iterations = r->iterations;
    return 0;
}

static int apply_remove_scram(mimage *img, const RemoveUserScramCredentialRecord *r) {
    for (int i = 0; i < img->nscram; i++) {
        if (img->scram[i].mechanism == r->mechanism && kstr_eq_c(r->name, img->scram[i].name)) {
            free(img->scram[i].name);
            free(img->scram[i].salt);
            img->scram[i] = img->scram[--img->nscram];
            return 0;
        }
    }
    return -1; /* "Unable to find credential to delete" */
}

/* ---- ACL bindings (AclControlManager.replay) ---- */

const az_acl *mimage_acl(const mimage *img, const kuuid *id) {
    for (int i = 0; i < img->nacls; i++)
        if (memcmp(img->acls[i].id, id->b, 16) == 0) return &img->acls[i];
    return NULL;
}

static char *kstr_strdup(kstr s) { return s.len >= 0 ? strndup(s.p ? s.p : "", (size_t)s.len) : strdup(""); }

static int apply_acl(mimage *img, const AccessControlEntryRecord *r) {
    if (mimage_acl(img, &r->id)) return -1;
    if (img->nacls == img->capacls) {
        int32_t cap = img->capacls ? img->capacls * 2 : 16;
        az_acl *grown = realloc(img->acls, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        img->acls = grown;
        img->capacls = cap;
    }
    az_acl a = {.resource_type = r->resource_type, .pattern_type = r->pattern_type, .operation = r->operation,
                .permission = r->permission_type};
    memcpy(a.id, r->id.b, 16);
    a.resource_name = kstr_strdup(r->resource_name);
    a.principal = kstr_strdup(r->principal);
    a.host = kstr_strdup(r->host);
    if (!a.resource_name || !a.principal || !a.host) {
        acl_free_fields(&a);
        return -1;
    }
    img->acls[img->nacls++] = a;
    return 0;
}

static int apply_remove_acl(mimage *img, const RemoveAccessControlEntryRecord *r) {
    const az_acl *a = mimage_acl(img, &r->id);
    if (!a) return -1;
    int32_t i = (int32_t)(a - img->acls);
    acl_free_fields(&img->acls[i]);
    memmove(&img->acls[i], &img->acls[i + 1], (size_t)(img->nacls - i - 1) * sizeof *img->acls);
    img->nacls--;
    return 0;
}

int mimage_apply(mimage *img, const mrecord *rec) {
    switch (rec->type) {
    case KMETA_TOPIC_RECORD: return apply_topic(img, rec->data);
    case KMETA_PARTITION_RECORD: return apply_partition(img, rec->data);
    case KMETA_PARTITION_CHANGE_RECORD: return apply_partition_change(img, rec->data);
    case KMETA_CONFIG_RECORD: return apply_config(img, rec->data);
    case KMETA_REMOVE_TOPIC_RECORD: return apply_remove_topic(img, rec->data);
    case KMETA_REGISTER_BROKER_RECORD: return apply_register_broker(img, rec->data);
    case KMETA_UNREGISTER_BROKER_RECORD: return apply_unregister_broker(img, rec->data);
    case KMETA_FENCE_BROKER_RECORD: {
        const FenceBrokerRecord *r = rec->data;
        return apply_fencing(img, r->id, r->epoch, true);
    }
    case KMETA_UNFENCE_BROKER_RECORD: {
        const UnfenceBrokerRecord *r = rec->data;
        return apply_fencing(img, r->id, r->epoch, false);
    }
    case KMETA_BROKER_REGISTRATION_CHANGE_RECORD: {
        const BrokerRegistrationChangeRecord *r = rec->data;
        if (r->fenced == 0) return 0; /* no change of fencing */
        return apply_fencing(img, r->broker_id, r->broker_epoch, r->fenced > 0);
    }
    case KMETA_FEATURE_LEVEL_RECORD: {
        const FeatureLevelRecord *r = rec->data;
        if (kstr_eq_c(r->name, "metadata.version")) img->metadata_version = r->feature_level;
        return 0;
    }
    case KMETA_PRODUCER_IDS_RECORD: {
        const ProducerIdsRecord *r = rec->data;
        if (r->next_producer_id < img->next_producer_id) return -1;
        img->next_producer_id = r->next_producer_id;
        return 0;
    }
    case KMETA_CLIENT_QUOTA_RECORD: return apply_client_quota(img, rec->data);
    case KMETA_ACCESS_CONTROL_ENTRY_RECORD: return apply_acl(img, rec->data);
    case KMETA_REMOVE_ACCESS_CONTROL_ENTRY_RECORD: return apply_remove_acl(img, rec->data);
    case KMETA_USER_SCRAM_CREDENTIAL_RECORD: return apply_scram(img, rec->data);
    case KMETA_REMOVE_USER_SCRAM_CREDENTIAL_RECORD: return apply_remove_scram(img, rec->data);
    default:
        return 0; /* records this node does not need (brokers, ACLs, ...) */
    }
}
