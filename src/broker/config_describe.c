/* config_describe.c - the DescribeConfigs view of topic and broker configs:
 * each key's current value, where it came from, and its synonyms, computed
 * the way Kafka's ConfigHelper does.
 *
 * A key's synonyms are collected layer by layer (dynamic per-broker, dynamic
 * cluster default, static server.properties, built-in default), and within a
 * layer in the key's synonym order; then everything before the first entry
 * for the key's primary name is dropped. That last step is why a topic's
 * retention.ms shows as DEFAULT_CONFIG although server.properties sets
 * log.retention.hours: only log.retention.ms itself counts as the source.
 */
#include <stdio.h>
#include <string.h>

#include "broker/config.h"
#include "broker/config_internal.h"

typedef struct synonym_list {
    config_synonym items[CONFIG_MAX_SYNONYMS];
    int n;
} synonym_list;

static void syn_add(synonym_list *s, const char *name, const char *value, int8_t source) {
    if (s->n >= CONFIG_MAX_SYNONYMS) return;
    s->items[s->n].name = name;
    s->items[s->n].value = value;
    s->items[s->n].source = source;
    s->n++;
}

static const char *pair_get(const char *const *keys, const char *const *values, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (keys[i] && strcmp(keys[i], name) == 0) return values[i];
    return NULL;
}

/* Collect names[0..nnames) across the broker layers; drop everything before
 * the primary name's first entry. only_dynamic_default keeps just that
 * layer (describing the cluster default resource). */
static void broker_layer_synonyms(const config_layers *l, const char *const *names, int nnames, const char *primary,
                                  bool sensitive, bool only_dynamic_default, synonym_list *out) {
    synonym_list all = {0};
    for (int layer = 0; layer < 4; layer++) {
        int8_t src = (int8_t)(layer == 0 ? CFG_SRC_DYNAMIC_BROKER
                              : layer == 1 ? CFG_SRC_DYNAMIC_DEFAULT_BROKER
                              : layer == 2 ? CFG_SRC_STATIC_BROKER
                                           : CFG_SRC_DEFAULT);
        if (only_dynamic_default && src != CFG_SRC_DYNAMIC_DEFAULT_BROKER) continue;
        for (int i = 0; i < nnames; i++) {
            const char *v = NULL;
            if (layer == 0) v = pair_get(l->dyn_broker_keys, l->dyn_broker_values, l->ndyn_broker, names[i]);
            else if (layer == 1) v = pair_get(l->dyn_default_keys, l->dyn_default_values, l->ndyn_default, names[i]);
            else if (layer == 2) v = l->static_cfg ? props_get(l->static_cfg, names[i]) : NULL;
            else {
                const config_def *d = broker_config_def(names[i]);
                v = d ? config_def_default(d) : NULL;
            }
            if (v) syn_add(&all, names[i], sensitive ? NULL : v, src);
        }
    }
    int start = 0;
    while (start < all.n && strcmp(all.items[start].name, primary) != 0) start++;
    for (int i = start; i < all.n; i++) syn_add(out, all.items[i].name, all.items[i].value, all.items[i].source);
}

static const char *normalized(int type, const char *v, karena *a) {
    char buf[4096];
    config_normalize(type, v, buf, sizeof buf);
    return karena_strndup(a, buf, strlen(buf));
}

int config_describe_topic(const config_layers *l, const char *const *keys, const char *const *values, int n,
                          config_entry *out, int max, karena *a) {
    int count = 0;
    for (int i = 0; i < topic_config_def_count() && count < max; i++) {
        const config_def *d = topic_config_def_at(i);
        const char *name = config_def_name(d);
        int type = config_def_type(d);
        config_entry *e = &out[count++];
        memset(e, 0, sizeof *e);
        e->name = name;
        e->type = (int8_t)type;
        e->sensitive = type == CFG_PASSWORD;
        e->read_only = false;
        e->doc = config_def_doc(d);

        synonym_list syn = {0};
        const char *ov = pair_get(keys, values, n, name);
        if (ov) {
            e->value = e->sensitive ? NULL : normalized(type, ov, a);
            syn_add(&syn, name, e->value, CFG_SRC_DYNAMIC_TOPIC);
        } else {
            char buf[512];
            const char *v = config_topic_inherited(l, d, buf, sizeof buf);
            e->value = v && !e->sensitive ? karena_strndup(a, v, strlen(v)) : NULL;
        }
        const char *bnames[4];
        int nb = topic_config_synonyms(name, bnames, 4);
        if (nb > 0) broker_layer_synonyms(l, bnames, nb, bnames[0], e->sensitive, false, &syn);
        memcpy(e->synonyms, syn.items, sizeof syn.items);
        e->nsynonyms = syn.n;
        e->source = (int8_t)(syn.n ? syn.items[0].source : CFG_SRC_DEFAULT);
    }
    return count;
}

static void describe_broker_key(const config_layers *l, const config_def *d, const char *value_override,
                                bool per_broker, config_entry *e, karena *a) {
    const char *name = config_def_name(d);
    int type = config_def_type(d);
    memset(e, 0, sizeof *e);
    e->name = name;
    e->type = (int8_t)type;
    e->sensitive = type == CFG_PASSWORD;
    e->read_only = !broker_config_is_dynamic(name);
    e->doc = config_def_doc(d);
    const char *v = value_override;
    if (!v) v = config_layer_get(l, name, NULL);
    if (!v) v = config_def_default(d);
    e->value = v && !e->sensitive ? normalized(type, v, a) : NULL;

    const char *names[4];
    int nn = broker_config_synonyms(name, names, 4);
    synonym_list syn = {0};
    broker_layer_synonyms(l, names, nn, name, e->sensitive, !per_broker, &syn);
    memcpy(e->synonyms, syn.items, sizeof syn.items);
    e->nsynonyms = syn.n;
    e->source = (int8_t)(syn.n ? syn.items[0].source : CFG_SRC_DEFAULT);
}

/* DynamicConfig.Broker's keys outside KafkaConfig (the replication
 * throttles kafka-reassign-partitions sets): Kafka lists them once set, as
 * it lists a broker's originals, typed LONG. */
static const char *const throttle_keys[] = {"leader.replication.throttled.rate",
                                            "follower.replication.throttled.rate",
                                            "replica.alter.log.dirs.io.max.bytes.per.second"};

static bool describe_throttle_key(const config_layers *l, const char *name, bool per_broker, config_entry *e,
                                  karena *a) {
    const char *v = pair_get(l->dyn_default_keys, l->dyn_default_values, l->ndyn_default, name);
    if (per_broker) {
        const char *own = pair_get(l->dyn_broker_keys, l->dyn_broker_values, l->ndyn_broker, name);
        if (own) v = own;
        else if (!v && l->static_cfg) v = props_get(l->static_cfg, name);
    }
    if (!v) return false;
    memset(e, 0, sizeof *e);
    e->name = name;
    e->type = CFG_LONG;
    e->value = karena_strndup(a, v, strlen(v));
    synonym_list syn = {0};
    broker_layer_synonyms(l, &name, 1, name, false, !per_broker, &syn);
    memcpy(e->synonyms, syn.items, sizeof syn.items);
    e->nsynonyms = syn.n;
    e->source = (int8_t)(syn.n ? syn.items[0].source : CFG_SRC_DEFAULT);
    return true;
}

int config_describe_broker(const config_layers *l, int32_t node_id, bool per_broker, config_entry *out, int max,
                           karena *a) {
    (void)node_id; /* broker.id/node.id are already in the static layer */
    int count = 0;
    if (!per_broker) {
        /* the cluster default resource lists only what is set there */
        for (int i = 0; i < l->ndyn_default && count < max; i++) {
            const config_def *d = broker_config_def(l->dyn_default_keys[i]);
            if (!d) continue;
            describe_broker_key(l, d, l->dyn_default_values[i], false, &out[count++], a);
        }
    } else {
        for (int i = 0; i < broker_config_def_count() && count < max; i++)
            describe_broker_key(l, broker_config_def_at(i), NULL, true, &out[count++], a);
    }
    for (size_t i = 0; i < sizeof throttle_keys / sizeof *throttle_keys && count < max; i++)
        if (describe_throttle_key(l, throttle_keys[i], per_broker, &out[count], a)) count++;
    return count;
}

const char *config_source_name(int8_t source) {
    switch (source) {
    case CFG_SRC_DYNAMIC_TOPIC: return "DYNAMIC_TOPIC_CONFIG";
    case CFG_SRC_DYNAMIC_BROKER: return "DYNAMIC_BROKER_CONFIG";
    case CFG_SRC_DYNAMIC_DEFAULT_BROKER: return "DYNAMIC_DEFAULT_BROKER_CONFIG";
    case CFG_SRC_STATIC_BROKER: return "STATIC_BROKER_CONFIG";
    case CFG_SRC_DEFAULT: return "DEFAULT_CONFIG";
    case 6: return "DYNAMIC_BROKER_LOGGER_CONFIG";
    default: return "UNKNOWN";
    }
}
