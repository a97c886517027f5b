/* cluster.c - the broker's view of the cluster: which nodes are alive and
 * where clients reach them, who the controller is, this node's own
 * registration, and what follows when the metadata image changes. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/broker.h"
#include "broker/topics.h"
#include "group/group.h"
#include "mstore/mstore.h"
#include "txn/txn_manager.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

/* Kafka's SecurityProtocol ids (of a protocol name). */
static int16_t security_protocol_id(const char *name) {
    if (!name) return 0;
    if (strcmp(name, "SSL") == 0) return 1;
    if (strcmp(name, "SASL_PLAINTEXT") == 0) return 2;
    if (strcmp(name, "SASL_SSL") == 0) return 3;
    return 0; /* PLAINTEXT */
}

static bool node_of(broker *b, const mbroker *br, broker_node *out) {
    if (br->fenced) return false;
    const mendpoint *e = mbroker_endpoint(br, broker_lookup_listener(b));
    if (!e && br->nendpoints > 0) e = &br->endpoints[0];
    if (!e) return false;
    *out = (broker_node){br->id, e->host, e->port, br->rack};
    return true;
}

int broker_live_nodes(broker *b, broker_node *out, int max) {
    int n = 0;
    for (int i = 0; i < b->image->nbrokers; i++) {
        broker_node bn;
        if (!node_of(b, &b->image->brokers[i], &bn)) continue;
        if (n < max) out[n] = bn;
        n++;
    }
    return n;
}

bool broker_node_lookup(broker *b, int32_t id, broker_node *out) {
    const mbroker *br = mimage_broker(b->image, id);
    return br && node_of(b, br, out);
}

bool broker_peer_lookup(broker *b, int32_t id, broker_node *out) {
    const char *during = b->request_listener;
    b->request_listener = NULL; /* the inter-broker listener, not the one of the request being handled */
    bool found = broker_node_lookup(b, id, out);
    b->request_listener = during;
    return found;
}

int32_t broker_controller_id(broker *b) { return mstore_controller_id(b->store); }

void broker_registration(broker *b, kuuid incarnation, RegisterBrokerRecord *r, karena *a) {
    RegisterBrokerRecord_init(r);
    r->broker_id = b->cfg.node_id;
    r->incarnation_id = incarnation;
    r->broker_epoch = 0;
    r->fenced = false;
    const char *rack = props_get(&b->cfg.raw, "broker.rack");
    r->rack = rack && rack[0] ? kstr_from(rack) : KSTR_NULL;
    r->end_points = karena_calloc(a, (size_t)(b->cfg.nadvertised ? b->cfg.nadvertised : 1), sizeof *r->end_points);
    r->end_points_count = 0;
    for (int i = 0; r->end_points && i < b->cfg.nadvertised; i++) {
        const listener *l = &b->cfg.advertised[i];
        if (strcmp(l->name, b->cfg.controller_listener_names) == 0) continue;
        RegisterBrokerRecord_BrokerEndpoint *e = &r->end_points[r->end_points_count++];
        RegisterBrokerRecord_BrokerEndpoint_init(e);
        e->name = kstr_from(l->name);
        e->host = kstr_from(l->host[0] ? l->host : broker_advertised_host(b));
        e->port = (uint16_t)l->port;
        e->security_protocol = security_protocol_id(broker_config_listener_protocol(&b->cfg, l->name));
    }
    r->features = karena_calloc(a, 1, sizeof *r->features);
    if (r->features) {
        RegisterBrokerRecord_BrokerFeature_init(r->features);
        r->features[0].name = KSTR_LIT("metadata.version");
        r->features[0].min_supported_version = 1;
        r->features[0].max_supported_version = 14;
        r->features_count = 1;
    }
}

int broker_register_locally(broker *b) {
    karena a;
    karena_init(&a, 0);
    kuuid inc;
    if (getrandom(inc.b, sizeof inc.b, 0) != (ssize_t)sizeof inc.b) memset(inc.b, 1, sizeof inc.b);
    RegisterBrokerRecord r;
    broker_registration(b, inc, &r, &a);
    r.broker_epoch = 1;
    mrecord rec = {KMETA_REGISTER_BROKER_RECORD, 0, &r};
    int rc = mimage_apply(b->image, &rec);
    karena_free(&a);
    return rc;
}

void broker_metadata_applied(broker *b) {
    broker_listeners_config_changed(b); /* certificate reload */
    if (!b->topics) return; /* still starting: topics_init opens what the image holds */
    topics_sync(b);
    if (b->groups) group_coord_leadership_changed(b->groups);
    if (b->txns) txn_manager_leadership_changed(b->txns);
}
