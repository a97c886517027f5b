/* config_security.c - listener security protocols, and the refusal of
 * security settings Samsa cannot honour yet.
 *
 * Every listener gets its security protocol as Kafka's KafkaConfig gives it:
 * through listener.security.protocol.map (names normalised to upper case),
 * with KRaft's implicit CONTROLLER:PLAINTEXT when the map is not given.
 * PLAINTEXT and SSL listeners are served (net/tls.c), and SASL_PLAINTEXT /
 * SASL_SSL listeners (security/sasl.c, broker/sasl_broker.c), also between
 * brokers with PLAIN or SCRAM (net/kafka_client.c). SASL on controller
 * listeners, a GSSAPI inter-broker mechanism and ACLs are not there yet: a
 * node asked for them must not start and quietly go without
 * (refuse_sasl_where_unsupported, and an authorizer stops start-up) with a
 * message naming the listener or the key. Settings that only take effect on
 * secured listeners (sasl.enabled.mechanisms without a SASL listener, ssl.*
 * without an SSL listener ...) secure nothing on a PLAINTEXT listener in Kafka
 * either; they are named in a warning.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "broker/config.h"
#include "util/log.h"

#define COMPONENT "kafka.server.KafkaConfig"
#define PROP_MAP "listener.security.protocol.map"
#define MAP_MAX 32

typedef struct {
    char name[64];
    char proto[32];
} proto_entry;

typedef struct {
    proto_entry e[MAP_MAX];
    int n;
} proto_map;

static const char *const PROTOCOLS[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};

/* Copy s[0..len) without surrounding blanks. */
static void trimmed(const char *s, size_t len, char *out, size_t outlen) {
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len >= outlen) len = outlen - 1;
    memcpy(out, s, len);
    out[len] = 0;
}

static void upcase(char *s) {
    for (; *s; s++) *s = (char)toupper((unsigned char)*s);
}

static bool is_sasl(const char *proto) { return strncmp(proto, "SASL_", 5) == 0; }

/* KafkaConfig's isSslOrSasl: a listener literally named after a secure protocol. */
static bool secure_protocol_name(const char *name) {
    return strcmp(name, "SSL") == 0 || strcmp(name, "SASL_PLAINTEXT") == 0 || strcmp(name, "SASL_SSL") == 0;
}

static const char *map_get(const proto_map *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->e[i].name, name) == 0) return m->e[i].proto;
    return NULL;
}

static int map_put(proto_map *m, const char *name, const char *proto, char *err, size_t errlen) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->e[i].name, name) == 0) {
            snprintf(m->e[i].proto, sizeof m->e[i].proto, "%s", proto);
            return 0;
        }
    if (m->n >= MAP_MAX) {
        snprintf(err, errlen, "Too many listeners in %s (at most %d)", PROP_MAP, MAP_MAX);
        return -1;
    }
    snprintf(m->e[m->n].name, sizeof m->e[0].name, "%s", name);
    snprintf(m->e[m->n].proto, sizeof m->e[0].proto, "%s", proto);
    m->n++;
    return 0;
}

/* "NAME:PROTOCOL,..." split at each item's last ':' (CoreUtils.parseCsvMap). */
static int parse_map(const char *text, proto_map *m, char *err, size_t errlen) {
    m->n = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[160], name[64], proto[32];
        trimmed(p, len, item, sizeof item);
        p = end ? end + 1 : p + len;
        if (!*item && !*p) break; /* Java's split drops trailing empty items */
        char *colon = strrchr(item, ':');
        if (!colon) {
            snprintf(err, errlen, "Error parsing configuration property '%s': '%s' is not LISTENER_NAME:PROTOCOL",
                     PROP_MAP, item);
            return -1;
        }
        trimmed(item, (size_t)(colon - item), name, sizeof name);
        trimmed(colon + 1, strlen(colon + 1), proto, sizeof proto);
        if (!*name) {
            snprintf(err, errlen, "The provided listener name is null or empty string");
            return -1;
        }
        upcase(name);
        char up[32];
        snprintf(up, sizeof up, "%s", proto);
        upcase(up);
        bool known = false;
        for (size_t i = 0; i < sizeof PROTOCOLS / sizeof PROTOCOLS[0]; i++) known |= strcmp(up, PROTOCOLS[i]) == 0;
        if (!known) {
            snprintf(err, errlen, "Invalid security protocol `%s` defined in %s", proto, PROP_MAP);
            return -1;
        }
        if (map_put(m, name, up, err, errlen) < 0) return -1;
    }
    return 0;
}

/* Runs body with var set to each item of a comma-separated list of names. */
#define FOR_EACH_NAME(list, var, body)                                         \
    do {                                                                       \
        const char *p_ = (list);                                               \
        while (*p_) {                                                          \
            const char *e_ = strchr(p_, ',');                                  \
            size_t l_ = e_ ? (size_t)(e_ - p_) : strlen(p_);                   \
            char var[64];                                                      \
            trimmed(p_, l_, var, sizeof var);                                  \
            p_ = e_ ? e_ + 1 : p_ + l_;                                        \
            if (!*var) continue;                                               \
            body                                                               \
        }                                                                      \
    } while (0)

/* KafkaConfig.effectiveListenerSecurityProtocolMap. */
static int effective_map(const broker_config *c, proto_map *m, char *err, size_t errlen) {
    const char *given = props_get(&c->raw, PROP_MAP);
    if (parse_map(given ? given : "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", m,
                  err, errlen) < 0)
        return -1;
    if (given || !(c->role_broker || c->role_controller)) return 0;
    /* KRaft without an explicit map: controller listeners are PLAINTEXT,
     * unless something named SSL or SASL_* is in use. */
    bool secure_name = false;
    FOR_EACH_NAME(c->controller_listener_names, n, { secure_name |= secure_protocol_name(n); });
    for (int i = 0; i < c->nlisteners; i++) secure_name |= secure_protocol_name(c->listeners[i].name);
    if (secure_name) return 0;
    int rc = 0;
    FOR_EACH_NAME(c->controller_listener_names, n, {
        if (strcmp(n, "PLAINTEXT") != 0 && rc == 0) rc = map_put(m, n, "PLAINTEXT", err, errlen);
    });
    return rc;
}

#define UNSUPPORTED "Samsa serves SASL on client and inter-broker listeners, not yet to controllers"

static bool controller_name(const broker_config *c, const char *name) {
    bool hit = false;
    FOR_EACH_NAME(c->controller_listener_names, n, {
        upcase(n);
        hit |= strcmp(n, name) == 0;
    });
    return hit;
}

static int check_listeners(const broker_config *c, const proto_map *m, char *err, size_t errlen) {
    const char *missing = NULL;
    for (int i = 0; i < c->nlisteners; i++) {
        const listener *l = &c->listeners[i];
        const char *proto = map_get(m, l->name);
        if (!proto) {
            if (!missing) missing = l->name;
        } else if (is_sasl(proto) && controller_name(c, l->name)) {
            snprintf(err, errlen,
                     "Controller listener %s (listeners, controller.listener.names) has security protocol %s in %s: "
                     "Kafka would secure the controller quorum with it, and %s. Refusing to start.",
                     l->name, proto, PROP_MAP, UNSUPPORTED);
            return -1;
        }
    }
    if (missing) {
        snprintf(err, errlen, "No security protocol defined for listener %s", missing);
        return -1;
    }
    return 0;
}

const char *broker_config_listener_protocol(const broker_config *c, const char *name) {
    proto_map m;
    char err[256], up[64];
    if (effective_map(c, &m, err, sizeof err) < 0) return NULL;
    snprintf(up, sizeof up, "%s", name);
    upcase(up);
    const char *p = map_get(&m, up);
    if (!p) return NULL;
    for (size_t i = 0; i < sizeof PROTOCOLS / sizeof PROTOCOLS[0]; i++)
        if (strcmp(p, PROTOCOLS[i]) == 0) return PROTOCOLS[i];
    return NULL;
}

/* SASL_PLAINTEXT and SASL_SSL where Samsa cannot do them yet: controller
 * listeners (client and inter-broker listeners are served; between brokers
 * with PLAIN or SCRAM). */
static int refuse_sasl_where_unsupported(const broker_config *c, const proto_map *m, char *err, size_t errlen) {
    if (check_listeners(c, m, err, errlen) < 0) return -1;
    int rc = 0;
    FOR_EACH_NAME(c->controller_listener_names, n, {
        upcase(n);
        const char *proto = map_get(m, n);
        if (rc == 0 && proto && is_sasl(proto)) {
            snprintf(err, errlen,
                     "Controller listener %s (controller.listener.names) has security protocol %s in %s: Kafka "
                     "would secure the controller quorum with it, and %s. Refusing to start.",
                     n, proto, PROP_MAP, UNSUPPORTED);
            rc = -1;
        }
    });
    if (rc) return rc;
    char ib[64];
    const char *ibname = props_get(&c->raw, "inter.broker.listener.name");
    bool by_name = ibname && strspn(ibname, " \t") < strlen(ibname); /* config.c falls back when blank */
    const char *ibkey = by_name ? "inter.broker.listener.name" : "security.inter.broker.protocol";
    snprintf(ib, sizeof ib, "%s", c->inter_broker_listener_name);
    upcase(ib);
    const char *ibproto = by_name ? map_get(m, ib) : ib;
    if (ibproto && is_sasl(ibproto)) {
        /* KafkaConfig: the inter-broker mechanism must be enabled; Samsa's
         * brokers speak PLAIN and SCRAM to each other (no GSSAPI). */
        const char *mech = props_get(&c->raw, "sasl.mechanism.inter.broker.protocol");
        char mt[64] = "GSSAPI";
        if (mech) trimmed(mech, strlen(mech), mt, sizeof mt);
        if (strcmp(mt, "PLAIN") != 0 && strcmp(mt, "SCRAM-SHA-256") != 0 && strcmp(mt, "SCRAM-SHA-512") != 0) {
            snprintf(err, errlen,
                     "%s=%s: inter-broker traffic would use %s with sasl.mechanism.inter.broker.protocol=%s; Samsa's "
                     "brokers authenticate to each other with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 only. Refusing "
                     "to start.",
                     ibkey, c->inter_broker_listener_name, ibproto, mt);
            return -1;
        }
        char lk[128], lname[64];
        snprintf(lname, sizeof lname, "%s", ib);
        for (char *p = lname; *p; p++) *p = (char)tolower((unsigned char)*p);
        snprintf(lk, sizeof lk, "listener.name.%s.sasl.enabled.mechanisms", lname);
        const char *enabled = props_get(&c->raw, lk);
        if (!enabled) enabled = props_get(&c->raw, "sasl.enabled.mechanisms");
        bool found = false;
        FOR_EACH_NAME(enabled ? enabled : "GSSAPI", n, { found |= strcmp(n, mt) == 0; });
        if (!found) {
            snprintf(err, errlen,
                     "requirement failed: sasl.mechanism.inter.broker.protocol must be included in "
                     "sasl.enabled.mechanisms when SASL is used for inter-broker communication");
            return -1;
        }
    }
    return 0;
}

static bool any_ssl_listener(const broker_config *c, const proto_map *m) {
    for (int i = 0; i < c->nlisteners; i++) {
        const char *proto = map_get(m, c->listeners[i].name);
        if (proto && strcmp(proto, "SSL") == 0) return true;
    }
    return false;
}

static bool any_sasl_listener(const broker_config *c, const proto_map *m) {
    for (int i = 0; i < c->nlisteners; i++) {
        const char *proto = map_get(m, c->listeners[i].name);
        if (proto && is_sasl(proto)) return true;
    }
    return false;
}

int broker_config_check_security(const broker_config *c, char *err, size_t errlen) {
    proto_map m;
    if (effective_map(c, &m, err, errlen) < 0) return -1;
    if (refuse_sasl_where_unsupported(c, &m, err, errlen) < 0) return -1;

    for (int i = 0; i < c->nadvertised; i++) {
        if (!map_get(&m, c->advertised[i].name)) {
            snprintf(err, errlen, "No security protocol defined for listener %s", c->advertised[i].name);
            return -1;
        }
    }

    /* The authorizer: only Kafka's KRaft StandardAuthorizer (broker/authz.c). */
    const char *az = props_get(&c->raw, "authorizer.class.name");
    char azt[256] = "";
    if (az) trimmed(az, strlen(az), azt, sizeof azt);
    if (*azt && strcmp(azt, "org.apache.kafka.metadata.authorizer.StandardAuthorizer") != 0) {
        if (strcmp(azt, "kafka.security.authorizer.AclAuthorizer") == 0)
            snprintf(err, errlen,
                     "authorizer.class.name=%s: AclAuthorizer keeps its ACLs in ZooKeeper, which a KRaft node (and "
                     "Samsa) does not have. Use org.apache.kafka.metadata.authorizer.StandardAuthorizer, which keeps "
                     "them in the cluster metadata.",
                     azt);
        else
            snprintf(err, errlen,
                     "authorizer.class.name=%s: class not found. The only authorizer is "
                     "org.apache.kafka.metadata.authorizer.StandardAuthorizer.",
                     azt);
        return -1;
    }

    /* sasl.* without a SASL listener, and ssl.* without an SSL listener:
     * Kafka ignores them on PLAINTEXT listeners too. Say so. */
    bool ssl_used = any_ssl_listener(c, &m), sasl_used = any_sasl_listener(c, &m);
    for (int i = 0; i < c->raw.count; i++) {
        const char *k = c->raw.items[i].key, *v = c->raw.items[i].value;
        bool secures = false;
        if (strcmp(k, "ssl.client.auth") == 0) {
            char t[32];
            trimmed(v, strlen(v), t, sizeof t);
            secures = !ssl_used && strcmp(t, "none") != 0;
        } else if (strncmp(k, "listener.name.", 14) == 0) {
            const char *rest = strchr(k + 14, '.');
            secures = rest && ((!ssl_used && strstr(rest, ".ssl.")) ||
                               (!sasl_used && (strstr(rest, ".sasl.") || strstr(rest, "connections.max.reauth"))));
        } else {
            secures = (!sasl_used && (strcmp(k, "sasl.enabled.mechanisms") == 0 || strcmp(k, "sasl.jaas.config") == 0 ||
                                      strcmp(k, "sasl.server.callback.handler.class") == 0)) ||
                      (!ssl_used && (strcmp(k, "ssl.keystore.location") == 0 ||
                                     strcmp(k, "ssl.truststore.location") == 0));
        }
        if (secures)
            log_warn(COMPONENT,
                     "The configuration '%s' has no effect: it applies only to SSL and SASL listeners, and this "
                     "node has none of that kind.",
                     k);
    }
    return 0;
}
