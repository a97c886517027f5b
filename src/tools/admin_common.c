/* admin_common.c - pieces shared by the admin tools (see admin_common.h). */
#include "tools/admin_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/props.h"

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    return s;
}

int admin_apply_command_config(kclient *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "Exception in thread \"main\" java.nio.file.NoSuchFileException: %s\n", path);
        return -1;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (*s == '#' || *s == '!' || *s == 0) continue;
        char *sep = strpbrk(s, "=:");
        if (!sep) continue;
        *sep = 0;
        char *key = trim(s), *val = trim(sep + 1);
        long v = strtol(val, NULL, 10);
        if (strcmp(key, "request.timeout.ms") == 0 && v > 0) c->request_timeout_ms = (int)v;
        else if ((strcmp(key, "default.api.timeout.ms") == 0 ||
                  strcmp(key, "socket.connection.setup.timeout.ms") == 0) && v > 0)
            c->connect_timeout_ms = (int)v;
        else if (strcmp(key, "client.id") == 0)
            snprintf(c->client_id, sizeof c->client_id, "%s", val);
    }
    fclose(f);
    /* security settings, read as Java reads .properties (escapes, continuations) */
    props p;
    props_init(&p);
    char err[512];
    if (props_load_file(&p, path, err, sizeof err) == 0) {
        static const char *const keys[] = {"security.protocol", "sasl.mechanism", "sasl.jaas.config"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v = props_get(&p, keys[i]);
            if (v && kclient_configure(c, keys[i], v) != 0) {
                fprintf(stderr, "%s\n", c->err);
                props_free(&p);
                return -1;
            }
        }
        for (int i = 0; i < p.count; i++) /* ssl.truststore.*, ssl.keystore.*, ... */
            if (strncmp(p.items[i].key, "ssl.", 4) == 0 &&
                kclient_configure(c, p.items[i].key, p.items[i].value) != 0) {
                fprintf(stderr, "%s\n", c->err);
                props_free(&p);
                return -1;
            }
    }
    props_free(&p);
    return 0;
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void admin_uuid_str(const kuuid *u, char out[23]) {
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)u->b[i] << 16;
        if (i + 1 < 16) v |= (uint32_t)u->b[i + 1] << 8;
        if (i + 2 < 16) v |= u->b[i + 2];
        out[o++] = B64URL[(v >> 18) & 63];
        out[o++] = B64URL[(v >> 12) & 63];
        if (i + 1 < 16) out[o++] = B64URL[(v >> 6) & 63];
        if (i + 2 < 16) out[o++] = B64URL[v & 63];
    }
    out[o] = 0;
}

int admin_uuid_parse(const char *s, kuuid *u) {
    if (strlen(s) != 22) return -1;
    uint8_t bits[24];
    for (int i = 0; i < 22; i++) {
        const char *p = strchr(B64URL, s[i]);
        if (!p || !s[i]) return -1;
        bits[i] = (uint8_t)(p - B64URL);
    }
    int o = 0;
    for (int i = 0; i < 22; i += 4) {
        uint32_t v = (uint32_t)bits[i] << 18 | (uint32_t)bits[i + 1] << 12;
        if (i + 2 < 22) v |= (uint32_t)bits[i + 2] << 6;
        if (i + 3 < 22) v |= bits[i + 3];
        u->b[o++] = (uint8_t)(v >> 16);
        if (o < 16) u->b[o++] = (uint8_t)(v >> 8);
        if (o < 16 && i + 3 < 22) u->b[o++] = (uint8_t)v;
    }
    return o == 16 ? 0 : -1;
}

int include_list_init(include_list *l, const char *pattern) {
    /* Kafka: trim, ',' -> '|', strip leading/trailing quotes. */
    size_t n = strlen(pattern);
    char *p = malloc(n + 8);
    if (!p) return -1;
    const char *s = pattern;
    while (*s == ' ' || *s == '\t') s++;
    while (*s == '"' || *s == '\'') s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    while (len > 0 && (s[len - 1] == '"' || s[len - 1] == '\'')) len--;
    size_t o = 0;
    p[o++] = '^';
    p[o++] = '(';
    for (size_t i = 0; i < len; i++) p[o++] = s[i] == ',' ? '|' : s[i];
    p[o++] = ')';
    p[o++] = '$';
    p[o] = 0;
    l->ok = regcomp(&l->re, p, REG_EXTENDED | REG_NOSUB) == 0;
    free(p);
    return l->ok ? 0 : -1;
}

int include_list_matches(const include_list *l, const char *topic) {
    return l->ok && regexec(&l->re, topic, 0, NULL, 0) == 0;
}

void include_list_free(include_list *l) {
    if (l->ok) regfree(&l->re);
    l->ok = 0;
}

int admin_topic_is_internal(const char *topic) {
    return strcmp(topic, "__consumer_offsets") == 0 || strcmp(topic, "__transaction_state") == 0;
}

const char *admin_error_text(int16_t code, kstr broker_message, karena *a) {
    if (broker_message.len > 0) return kstr_dup(broker_message, a);
    return kerr_message(code);
}

int admin_parse_int(const char *s, int32_t *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < INT32_MIN || v > INT32_MAX || s[0] == ' ') return -1;
    *out = (int32_t)v;
    return 0;
}

int admin_describe_configs(kclient *c, int8_t resource_type, const char *name,
                           DescribeConfigsResponse_DescribeConfigsResult **out, int16_t *version_out, karena *a) {
    int16_t v = kclient_pick_version(c, KAPI_DESCRIBE_CONFIGS);
    if (v < 0) {
        snprintf(c->err, sizeof c->err, "The broker does not support DESCRIBE_CONFIGS");
        return -1;
    }
    DescribeConfigsRequest req;
    DescribeConfigsRequest_init(&req);
    DescribeConfigsRequest_DescribeConfigsResource res;
    DescribeConfigsRequest_DescribeConfigsResource_init(&res);
    res.resource_type = resource_type;
    res.resource_name = kstr_from(name);
    res.configuration_keys_count = -1;
    req.resources = &res;
    req.resources_count = 1;
    req.include_synonyms = true;
    DescribeConfigsResponse resp;
    if (kclient_request(c, KAPI_DESCRIBE_CONFIGS, v, &req, &resp, a) != 0) return -1;
    if (resp.results_count != 1) {
        snprintf(c->err, sizeof c->err, "DescribeConfigs returned %d results for one resource", resp.results_count);
        return -1;
    }
    *out = &resp.results[0];
    if (version_out) *version_out = v;
    return 0;
}

/* ---- connections to particular brokers ---- */

void admin_pool_init(admin_pool *p, kclient *boot) {
    p->boot = boot;
    p->conns = NULL;
}

kclient *admin_pool_get(admin_pool *p, const char *host, int port) {
    kclient *b = p->boot;
    if (b->fd >= 0 && b->port == port && strcmp(b->host, host) == 0) return b;
    for (admin_conn *k = p->conns; k; k = k->next)
        if (k->port == port && strcmp(k->host, host) == 0) {
            if (k->c.fd >= 0 || kclient_connect_to(&k->c, host, port) == 0) return &k->c;
            snprintf(b->err, sizeof b->err, "%s", k->c.err);
            return NULL;
        }
    admin_conn *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(b->err, sizeof b->err, "Out of memory");
        return NULL;
    }
    snprintf(k->host, sizeof k->host, "%s", host);
    k->port = port;
    kclient_init_like(&k->c, b); /* --command-config's security settings too */
    k->next = p->conns;
    p->conns = k;
    if (kclient_connect_to(&k->c, host, port) == 0) return &k->c;
    snprintf(b->err, sizeof b->err, "%s", k->c.err);
    return NULL;
}

kclient *admin_pool_node(admin_pool *p, const MetadataResponse *md, int32_t node_id) {
    for (int32_t i = 0; i < md->brokers_count; i++) {
        const MetadataResponse_MetadataResponseBroker *br = &md->brokers[i];
        if (br->node_id != node_id) continue;
        char host[256];
        snprintf(host, sizeof host, "%.*s", br->host.len > 0 ? (int)br->host.len : 0, br->host.p ? br->host.p : "");
        return admin_pool_get(p, host, br->port);
    }
    snprintf(p->boot->err, sizeof p->boot->err,
             "org.apache.kafka.common.errors.TimeoutException: Timed out waiting for a node assignment.");
    return NULL;
}

void admin_pool_close(admin_pool *p) {
    while (p->conns) {
        admin_conn *k = p->conns;
        p->conns = k->next;
        kclient_close(&k->c);
        free(k);
    }
}
