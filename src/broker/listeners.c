/* listeners.c - the node's listeners as Kafka's SocketServer opens them:
 * every listener of `listeners` but the controller's, each with its security
 * protocol from listener.security.protocol.map; SSL listeners get a TLS
 * context from their ssl.* settings (listener.name.<l>.ssl.* first), built
 * again when those settings change (a dynamic broker config, or the files
 * they name: Kafka's reconfigurable SslFactory). Broker-to-broker
 * connections (net/kafka_client) speak TLS to destinations whose endpoint is
 * an SSL listener, with a client context from that listener's settings.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/broker.h"
#include "broker/config_internal.h"
#include "broker/topics.h"
#include "net/kafka_client.h"
#include "net/server.h"
#include "net/tls.h"
#include "util/log.h"

#define COMPONENT "kafka.network.SocketServer"

typedef struct listener_state {
    char name[32];
    bool tls;
    uint64_t signature;   /* of the ssl.* settings the server context was built from */
    tls_ctx *client;      /* for connections to this listener on other nodes (lazy) */
    uint64_t client_signature;
} listener_state;

struct broker_listeners {
    listener_state v[MAX_LISTENERS];
    int n;
};

typedef struct tls_lookup {
    const config_layers *layers;
    char prefix[64]; /* "listener.name.ssl." */
} tls_lookup;

static const char *tls_get(void *arg, const char *key) {
    tls_lookup *t = arg;
    char pk[192];
    snprintf(pk, sizeof pk, "%s%s", t->prefix, key);
    const char *v = config_layer_get(t->layers, pk, NULL);
    return v ? v : config_layer_get(t->layers, key, NULL);
}

static void lookup_init(tls_lookup *t, const config_layers *l, const char *listener) {
    t->layers = l;
    snprintf(t->prefix, sizeof t->prefix, "listener.name.%s.", listener);
    for (char *c = t->prefix; *c; c++) *c = (char)tolower((unsigned char)*c);
}

static const char *const SSL_KEYS[] = {
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.key", "ssl.keystore.certificate.chain",
    "ssl.key.password", "ssl.keystore.password", "ssl.truststore.type", "ssl.truststore.location",
    "ssl.truststore.certificates", "ssl.truststore.password", "ssl.client.auth", "ssl.enabled.protocols",
    "ssl.cipher.suites", "ssl.principal.mapping.rules", "ssl.endpoint.identification.algorithm",
};

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* What the context depends on: the settings, and the files they name
 * (a file replaced under the same name is a change too). */
static uint64_t signature(tls_lookup *t) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof SSL_KEYS / sizeof SSL_KEYS[0]; i++) {
        const char *v = tls_get(t, SSL_KEYS[i]);
        h = fnv(h, SSL_KEYS[i], strlen(SSL_KEYS[i]) + 1);
        if (v) h = fnv(h, v, strlen(v) + 1);
        if (v && strstr(SSL_KEYS[i], ".location")) {
            struct stat st;
            if (stat(v, &st) == 0) {
                h = fnv(h, &st.st_mtim, sizeof st.st_mtim);
                h = fnv(h, &st.st_size, sizeof st.st_size);
                h = fnv(h, &st.st_ino, sizeof st.st_ino);
            }
        }
    }
    return h;
}

static listener_state *state_of(broker *b, const char *name) {
    struct broker_listeners *ls = b->listeners;
    for (int i = 0; ls && i < ls->n; i++)
        if (strcmp(ls->v[i].name, name) == 0) return &ls->v[i];
    return NULL;
}

/* kafka_client's question: TLS to host:port? Yes when a live node
 * registered it as an SSL (or SASL_SSL) endpoint. */
static const tls_ctx *peer_tls(void *arg, const char *host, int port) {
    broker *b = arg;
    for (int i = 0; i < b->image->nbrokers; i++) {
        const mbroker *br = &b->image->brokers[i];
        for (int j = 0; j < br->nendpoints; j++) {
            const mendpoint *e = &br->endpoints[j];
            if (e->port != port || strcmp(e->host, host) != 0) continue;
            if (e->security_protocol != 1 && e->security_protocol != 3) return NULL;
            listener_state *st = state_of(b, e->name);
            if (!st) {
                log_warn(COMPONENT, "No listener %s on this node to take TLS settings from for %s:%d", e->name, host,
                         port);
                return NULL;
            }
            karena a;
            karena_init(&a, 0);
            config_layers l;
            broker_config_layers(b, &l, &a);
            tls_lookup t;
            lookup_init(&t, &l, st->name);
            uint64_t sig = signature(&t);
            if (!st->client || st->client_signature != sig) {
                char err[512];
                tls_ctx *c = tls_ctx_new(false, tls_get, &t, err, sizeof err);
                if (!c) log_error(COMPONENT, "Cannot connect to %s:%d over TLS (listener %s): %s", host, port, st->name, err);
                else {
                    tls_ctx_free(st->client);
                    st->client = c;
                    st->client_signature = sig;
                }
            }
            karena_free(&a);
            return st->client;
        }
    }
    return NULL;
}

int broker_listeners_start(broker *b, char *err, size_t errlen) {
    b->listeners = calloc(1, sizeof *b->listeners);
    if (!b->listeners) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    karena a;
    karena_init(&a, 0);
    config_layers l;
    broker_config_layers(b, &l, &a);
    int bound = 0, rc = 0;
    for (int i = 0; i < b->cfg.nlisteners && rc == 0; i++) {
        const listener *li = &b->cfg.listeners[i];
        /* The controller listener speaks KRaft's own protocol: not served here
         * (a single node is its own quorum; a cluster's is etcd). */
        if (strcmp(li->name, b->cfg.controller_listener_names) == 0) continue;
        const char *proto = broker_config_listener_protocol(&b->cfg, li->name);
        bool tls = proto && (strcmp(proto, "SSL") == 0 || strcmp(proto, "SASL_SSL") == 0);
        tls_ctx *ctx = NULL;
        tls_lookup t;
        lookup_init(&t, &l, li->name);
        if (tls) {
            char why[512];
            ctx = tls_ctx_new(true, tls_get, &t, why, sizeof why);
            if (!ctx) {
                snprintf(err, errlen, "Invalid SSL configuration of listener %s: %s", li->name, why);
                rc = -1;
                break;
            }
        }
        int port = net_server_listen_as(b->server, li->name, li->host, li->port, ctx, err, errlen);
        if (port < 0) {
            tls_ctx_free(ctx);
            rc = -1;
            break;
        }
        listener_state *st = &b->listeners->v[b->listeners->n++];
        snprintf(st->name, sizeof st->name, "%s", li->name);
        st->tls = tls;
        st->signature = tls ? signature(&t) : 0;
        log_info(COMPONENT,
                 "[SocketServer listenerType=BROKER, nodeId=%d] Created data-plane acceptor and processors for "
                 "endpoint : ListenerName(%s)",
                 b->cfg.node_id, li->name);
        bound++;
    }
    karena_free(&a);
    if (rc == 0 && !bound) {
        snprintf(err, errlen, "no client listener in listeners");
        rc = -1;
    }
    if (rc == 0) kc_set_tls_policy(peer_tls, b);
    return rc;
}

void broker_listeners_free(broker *b) {
    if (!b->listeners) return;
    kc_set_tls_policy(NULL, NULL);
    for (int i = 0; i < b->listeners->n; i++) tls_ctx_free(b->listeners->v[i].client);
    free(b->listeners);
    b->listeners = NULL;
}

void broker_listeners_config_changed(broker *b) {
    if (!b->listeners || !b->server) return;
    karena a;
    karena_init(&a, 0);
    config_layers l;
    broker_config_layers(b, &l, &a);
    for (int i = 0; i < b->listeners->n; i++) {
        listener_state *st = &b->listeners->v[i];
        if (!st->tls) continue;
        tls_lookup t;
        lookup_init(&t, &l, st->name);
        uint64_t sig = signature(&t);
        if (sig == st->signature) continue;
        st->signature = sig; /* a bad new setting is reported once, not at every change */
        char err[512];
        tls_ctx *ctx = tls_ctx_new(true, tls_get, &t, err, sizeof err);
        if (!ctx) {
            log_error("kafka.server.DynamicBrokerConfig",
                      "Failed to reconfigure the SSL settings of listener %s; the previous ones stay in use: %s",
                      st->name, err);
            continue;
        }
        net_server_set_tls(b->server, st->name, ctx);
        log_info("kafka.server.DynamicBrokerConfig", "Reconfigured the SSL keystore and truststore of listener %s",
                 st->name);
    }
    karena_free(&a);
}

int broker_listeners_validate(broker *b, const char *const *keys, const char *const *values, int n, char *err,
                              size_t errlen) {
    /* The node's dynamic settings with these replaced, as Kafka's
     * DynamicBrokerConfig builds a new SslFactory to validate them. */
    karena a;
    karena_init(&a, 0);
    config_layers l;
    broker_config_layers(b, &l, &a);
    int nk = l.ndyn_broker + n;
    const char **k = karena_calloc(&a, (size_t)(nk ? nk : 1), sizeof *k);
    const char **v = karena_calloc(&a, (size_t)(nk ? nk : 1), sizeof *v);
    int m = 0;
    for (int i = 0; k && v && i < n; i++) k[m] = keys[i], v[m++] = values[i] ? values[i] : NULL;
    for (int i = 0; k && v && i < l.ndyn_broker; i++) k[m] = l.dyn_broker_keys[i], v[m++] = l.dyn_broker_values[i];
    l.dyn_broker_keys = k;
    l.dyn_broker_values = v;
    l.ndyn_broker = m;
    int rc = 0;
    for (int i = 0; b->listeners && i < b->listeners->n && rc == 0; i++) {
        listener_state *st = &b->listeners->v[i];
        if (!st->tls) continue;
        tls_lookup t;
        lookup_init(&t, &l, st->name);
        bool touched = false;
        for (int j = 0; j < n; j++)
            touched |= strncmp(keys[j], t.prefix, strlen(t.prefix)) == 0 || strncmp(keys[j], "ssl.", 4) == 0;
        if (!touched) continue;
        char why[1024];
        tls_ctx *ctx = tls_ctx_new(true, tls_get, &t, why, sizeof why);
        const tls_ctx *cur = b->server ? net_server_tls(b->server, st->name) : NULL;
        if (!ctx || (cur && tls_ctx_compatible(cur, ctx, why, sizeof why) < 0)) {
            snprintf(err, errlen, "Validation of dynamic config update of SSLFactory failed: %s", why);
            rc = -1;
        }
        tls_ctx_free(ctx);
    }
    karena_free(&a);
    return rc;
}

const char *broker_lookup_listener(const broker *b) {
    return b->request_listener ? b->request_listener : b->cfg.inter_broker_listener_name;
}
