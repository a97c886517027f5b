/* client_props.c - Java client properties -> librdkafka configuration.
 *
 * See client_props.h. The translation table below is the single place
 * where Java client names meet librdkafka names.
 */
#include "tools/client_props.h"

#include "protocol/errors.h"
#include "net/tls.h"
#include "security/jaas.h"
#include "security/keystore.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <openssl/pem.h>

/* ---- ordered key/value set ----------------------------------------- */

static long find_key(const client_props *p, const char *key) {
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], key) == 0) return (long)i;
    return -1;
}

int client_props_put(client_props *p, const char *key, const char *value) {
    char *v = strdup(value ? value : "");
    if (!v) return -1;
    long i = find_key(p, key);
    if (i >= 0) {
        free(p->vals[i]);
        p->vals[i] = v;
        return 0;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        char **k2 = realloc(p->keys, cap * sizeof *k2);
        if (!k2) { free(v); return -1; }
        p->keys = k2;
        char **v2 = realloc(p->vals, cap * sizeof *v2);
        if (!v2) { free(v); return -1; }
        p->vals = v2;
        p->cap = cap;
    }
    char *k = strdup(key);
    if (!k) { free(v); return -1; }
    p->keys[p->n] = k;
    p->vals[p->n] = v;
    p->n++;
    return 0;
}

const char *client_props_get(const client_props *p, const char *key) {
    long i = find_key(p, key);
    return i < 0 ? NULL : p->vals[i];
}

int client_props_has(const client_props *p, const char *key) { return find_key(p, key) >= 0; }

void client_props_remove(client_props *p, const char *key) {
    long i = find_key(p, key);
    if (i < 0) return;
    free(p->keys[i]);
    free(p->vals[i]);
    memmove(&p->keys[i], &p->keys[i + 1], (p->n - (size_t)i - 1) * sizeof *p->keys);
    memmove(&p->vals[i], &p->vals[i + 1], (p->n - (size_t)i - 1) * sizeof *p->vals);
    p->n--;
}

void client_props_free(client_props *p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->vals[i]);
    }
    free(p->keys);
    free(p->vals);
    memset(p, 0, sizeof *p);
}

int client_props_put_kv(client_props *p, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq) return client_props_put(p, arg, "");
    char *key = strndup(arg, (size_t)(eq - arg));
    if (!key) return -1;
    int rc = client_props_put(p, key, eq + 1);
    free(key);
    return rc;
}

/* ---- Java .properties reader ---------------------------------------- */

/* Joins continuation lines and decodes escapes of one logical line.
 * Returns the decoded text (malloc'd) and advances *pos. */
static char *next_logical_line(const char *s, size_t len, size_t *pos) {
    char *out = malloc(len - *pos + 1);
    if (!out) return NULL;
    size_t o = 0, i = *pos;
    int at_start = 1;
    while (i < len) {
        char c = s[i];
        if (at_start && (c == ' ' || c == '\t' || c == '\f')) { i++; continue; }
        at_start = 0;
        if (c == '\n' || c == '\r') {
            i++;
            if (c == '\r' && i < len && s[i] == '\n') i++;
            break;
        }
        if (c == '\\' && i + 1 < len) {
            char n = s[i + 1];
            i += 2;
            if (n == '\n' || n == '\r') {
                if (n == '\r' && i < len && s[i] == '\n') i++;
                at_start = 1; /* continuation: skip the next line's indent */
                continue;
            }
            switch (n) {
            case 't': out[o++] = '\t'; break;
            case 'n': out[o++] = '\n'; break;
            case 'r': out[o++] = '\r'; break;
            case 'f': out[o++] = '\f'; break;
            case 'u': {
                unsigned cp = 0;
                int k = 0;
                for (; k < 4 && i < len; k++, i++) {
                    char h = s[i];
                    cp = cp * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
                }
                /* UTF-8 encode the BMP code point. */
                if (cp < 0x80) out[o++] = (char)cp;
                else if (cp < 0x800) {
                    out[o++] = (char)(0xC0 | (cp >> 6));
                    out[o++] = (char)(0x80 | (cp & 0x3F));
                } else {
                    out[o++] = (char)(0xE0 | (cp >> 12));
                    out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    out[o++] = (char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            default: out[o++] = '\x01'; out[o++] = n; break; /* marks an escaped char */
            }
            continue;
        }
        out[o++] = c;
        i++;
    }
    out[o] = 0;
    *pos = i;
    return out;
}

/* Removes the \x01 escape markers left by next_logical_line. */
static void unmark(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\x01' && r[1]) r++;
        *w++ = *r;
    }
    *w = 0;
}

int client_props_load_file(client_props *p, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) snprintf(err, errlen, "java.nio.file.NoSuchFileException: %s", path);
        else snprintf(err, errlen, "java.io.IOException: %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *g = realloc(buf, cap);
            if (!g) { free(buf); fclose(f); snprintf(err, errlen, "out of memory"); return -1; }
            buf = g;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    size_t pos = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        /* A comment line is skipped before escapes are processed. */
        size_t q = pos;
        while (q < len && (buf[q] == ' ' || buf[q] == '\t' || buf[q] == '\f')) q++;
        if (q < len && (buf[q] == '#' || buf[q] == '!')) {
            while (q < len && buf[q] != '\n' && buf[q] != '\r') q++;
            pos = q;
            continue;
        }
        char *line = next_logical_line(buf, len, &pos);
        if (!line) { rc = -1; break; }
        if (*line) {
            /* Key ends at the first unescaped '=', ':' or whitespace. */
            char *k = line;
            char *e = k;
            while (*e && *e != '=' && *e != ':' && *e != ' ' && *e != '\t' && *e != '\f') {
                if (*e == '\x01' && e[1]) e++;
                e++;
            }
            char *v = e;
            while (*v == ' ' || *v == '\t' || *v == '\f') v++;
            if (*v == '=' || *v == ':') v++;
            while (*v == ' ' || *v == '\t' || *v == '\f') v++;
            *e = 0;
            unmark(k);
            unmark(v);
            if (client_props_put(p, k, v) != 0) rc = -1;
        }
        free(line);
    }
    free(buf);
    if (rc != 0) snprintf(err, errlen, "out of memory");
    return rc;
}

/* ---- Java -> librdkafka translation ---------------------------------- */

/* Java client settings that librdkafka has no use for: dropped quietly,
 * as they change nothing a peer could observe. */
static const char *const java_only[] = {
    "key.serializer", "value.serializer", "key.deserializer", "value.deserializer",
    "partitioner.class", "partitioner.ignore.keys", "partitioner.adaptive.partitioning.enable",
    "partitioner.availability.timeout.ms", "interceptor.classes", "max.poll.records",
    "client.dns.lookup", "metadata.max.idle.ms", "max.block.ms", "default.api.timeout.ms",
    "metric.reporters", "metrics.num.samples", "metrics.sample.window.ms",
    "metrics.recording.level", "auto.include.jmx.reporter", "security.providers",
    "internal.leave.group.on.close", "exclude.internal.topics",
    "socket.connection.setup.timeout.max.ms", "sasl.client.callback.handler.class",
    "sasl.login.callback.handler.class", "sasl.login.class", "ssl.protocol",
    "ssl.provider", "ssl.trustmanager.algorithm", "ssl.keymanager.algorithm", "ssl.cipher.suites",
    "ssl.enabled.protocols", "ssl.secure.random.implementation", "retry.backoff.max.ms",
    "internal.throw.on.fetch.stable.offset.unsupported", "transaction.state.log.replication.factor",
    "retries.backoff.ms",
};

/* Same meaning, different name (value passes unchanged). */
static const struct { const char *java, *rdk; } renamed[] = {
    {"send.buffer.bytes", "socket.send.buffer.bytes"},
    {"receive.buffer.bytes", "socket.receive.buffer.bytes"},
    {"delivery.timeout.ms", "message.timeout.ms"},
    {"max.request.size", "message.max.bytes"},
};

static int ends_with(const char *s, size_t l, const char *suffix) {
    size_t n = strlen(suffix);
    return l >= n && memcmp(s + l - n, suffix, n) == 0;
}

static int span_is(const char *s, size_t l, const char *word) {
    return strlen(word) == l && memcmp(s, word, l) == 0;
}

int client_props_translate(const char *key, const char *val, client_kind kind,
                           const char **rk_key, const char **rk_val, char *buf, size_t buflen) {
    *rk_key = key;
    *rk_val = val;
    for (size_t i = 0; i < sizeof java_only / sizeof java_only[0]; i++)
        if (strcmp(key, java_only[i]) == 0) return 0;
    for (size_t i = 0; i < sizeof renamed / sizeof renamed[0]; i++)
        if (strcmp(key, renamed[i].java) == 0) {
            *rk_key = renamed[i].rdk;
            return 1;
        }
    if (strcmp(key, "buffer.memory") == 0) {
        /* Java counts bytes; librdkafka counts KiB. */
        long long bytes = strtoll(val, NULL, 10);
        long long kb = bytes / 1024;
        if (kb < 1) kb = 1;
        if (kb > 2147483647LL) kb = 2147483647LL;
        snprintf(buf, buflen, "%lld", kb);
        *rk_key = "queue.buffering.max.kbytes";
        *rk_val = buf;
        return 1;
    }
    if (strcmp(key, "batch.size") == 0 && kind == CLIENT_PRODUCER) {
        /* Java allows 0 (no batching); librdkafka's minimum is 1. */
        if (strtol(val, NULL, 10) < 1) *rk_val = "1";
        return 1;
    }
    if (strcmp(key, "auto.offset.reset") == 0) {
        if (strcasecmp(val, "none") == 0) *rk_val = "error";
        return 1;
    }
    if (strcmp(key, "partition.assignment.strategy") == 0) {
        /* Java names assignor classes, comma-separated. */
        size_t o = 0;
        buf[0] = 0;
        const char *s = val;
        while (*s) {
            const char *e = strchr(s, ',');
            size_t l = e ? (size_t)(e - s) : strlen(s);
            while (l && (*s == ' ')) { s++; l--; }
            while (l && s[l - 1] == ' ') l--;
            const char *name = NULL;
            if (ends_with(s, l, "CooperativeStickyAssignor") || span_is(s, l, "cooperative-sticky"))
                name = "cooperative-sticky";
            else if (ends_with(s, l, "RoundRobinAssignor") || span_is(s, l, "roundrobin"))
                name = "roundrobin";
            else if (ends_with(s, l, "RangeAssignor") || span_is(s, l, "range"))
                name = "range";
            if (name && o + strlen(name) + 2 < buflen) {
                o += (size_t)snprintf(buf + o, buflen - o, "%s%s", o ? "," : "", name);
            }
            if (!e) break;
            s = e + 1;
        }
        if (o == 0) return 0; /* only assignors librdkafka lacks: keep its default */
        *rk_val = buf;
        return 1;
    }
    if (strcmp(key, "security.protocol") == 0 || strcmp(key, "sasl.mechanism") == 0) return 1;
    return -1;
}

/* Java's ssl.keystore.* / ssl.truststore.* (PEM files or inline PEM, or
 * PKCS12 files) as librdkafka's ssl.ca.*, ssl.certificate.*, ssl.key.*,
 * ssl.keystore.* (librdkafka's keystore is PKCS#12). Returns 1 when key is
 * one of them (handled here), 0 when not, -1 with err on a bad value. */
static int is_ssl_store_key(const char *key) {
    static const char *const keys[] = {"ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.certificates",
                                       "ssl.truststore.password", "ssl.keystore.type", "ssl.keystore.location",
                                       "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.keystore.password",
                                       "ssl.key.password", "ssl.endpoint.identification.algorithm"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0) return 1;
    return 0;
}

static int rdk_set(rd_kafka_conf_t *conf, const char *k, const char *v, const char *java_key, char *err, size_t errlen) {
    char ebuf[512];
    if (rd_kafka_conf_set(conf, k, v, ebuf, sizeof ebuf) == RD_KAFKA_CONF_OK) return 0;
    snprintf(err, errlen, "Invalid value for configuration %s: %s", java_key, ebuf);
    return -1;
}

static int rdk_set_pem(rd_kafka_conf_t *conf, const char *k, const char *pem, const char *java_key, char *err,
                       size_t errlen) {
    char *norm = tls_pem_normalize(pem); /* inline values lose their line breaks */
    int rc = norm ? rdk_set(conf, k, norm, java_key, err, errlen) : -1;
    free(norm);
    return rc;
}

/* The certificates (and key) of a JKS or PKCS12 file as PEM text for
 * librdkafka, which reads neither JKS nor PKCS12 truststores. */
static char *pem_of(STACK_OF(X509) *certs, X509 *first, EVP_PKEY *key) {
    BIO *b = BIO_new(BIO_s_mem());
    bool ok = b != NULL;
    if (ok && key) ok = PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (ok && first) ok = PEM_write_bio_X509(b, first) == 1;
    for (int i = 0; ok && i < sk_X509_num(certs); i++) ok = PEM_write_bio_X509(b, sk_X509_value(certs, i)) == 1;
    char *data = NULL;
    long n = ok ? BIO_get_mem_data(b, &data) : 0;
    char *out = n > 0 ? strndup(data, (size_t)n) : NULL;
    BIO_free(b);
    return out;
}

/* A keystore file librdkafka cannot read, as librdkafka's inline PEM settings. */
static int rdk_set_from_keystore(rd_kafka_conf_t *conf, bool trust, const char *loc, const char *type,
                                 const char *store_pass, const char *key_pass, char *err, size_t errlen) {
    keystore_contents ks;
    char why[256];
    if (keystore_load(loc, type, store_pass, key_pass, !trust, &ks, why, sizeof why) != 0) {
        snprintf(err, errlen, "Failed to load SSL keystore %s of type %s: %s", loc, type, why);
        return -1;
    }
    int rc = -1;
    char *certs = trust ? pem_of(ks.trusted, NULL, NULL) : pem_of(ks.chain, ks.leaf, NULL);
    char *key = trust ? NULL : pem_of(NULL, NULL, ks.key);
    if (!certs || (!trust && !key))
        snprintf(err, errlen, "%s: %s", loc, trust ? "the truststore holds no certificate" : "out of memory");
    else if (trust)
        rc = rdk_set(conf, "ssl.ca.pem", certs, "ssl.truststore.location", err, errlen);
    else
        rc = rdk_set(conf, "ssl.certificate.pem", certs, "ssl.keystore.location", err, errlen) < 0 ||
                     rdk_set(conf, "ssl.key.pem", key, "ssl.keystore.location", err, errlen) < 0
                 ? -1
                 : 0;
    if (key) OPENSSL_cleanse(key, strlen(key));
    free(key);
    free(certs);
    keystore_contents_free(&ks);
    return rc;
}

static int apply_ssl(const client_props *p, rd_kafka_conf_t *conf, char *err, size_t errlen) {
    const char *proto = client_props_get(p, "security.protocol");
    bool tls = proto && (strcasecmp(proto, "SSL") == 0 || strcasecmp(proto, "SASL_SSL") == 0);
    const char *ttype = client_props_get(p, "ssl.truststore.type"), *ktype = client_props_get(p, "ssl.keystore.type");
    const char *tloc = client_props_get(p, "ssl.truststore.location");
    const char *tcerts = client_props_get(p, "ssl.truststore.certificates");
    const char *kloc = client_props_get(p, "ssl.keystore.location");
    const char *kchain = client_props_get(p, "ssl.keystore.certificate.chain");
    const char *kkey = client_props_get(p, "ssl.keystore.key");
    const char *kpass = client_props_get(p, "ssl.key.password");
    const char *spass = client_props_get(p, "ssl.keystore.password");
    const char *ident = client_props_get(p, "ssl.endpoint.identification.algorithm");
    bool tpem = ttype && strcasecmp(ttype, "PEM") == 0, kpem = ktype && strcasecmp(ktype, "PEM") == 0;
    bool kp12 = ktype && strcasecmp(ktype, "PKCS12") == 0;
    if (tloc && *tloc) {
        if (!tpem) {
            if (rdk_set_from_keystore(conf, true, tloc, ttype ? ttype : "JKS",
                                      client_props_get(p, "ssl.truststore.password"), NULL, err, errlen) < 0)
                return -1;
        } else if (rdk_set(conf, "ssl.ca.location", tloc, "ssl.truststore.location", err, errlen) < 0) {
            return -1;
        }
    }
    if (tcerts && *tcerts && rdk_set_pem(conf, "ssl.ca.pem", tcerts, "ssl.truststore.certificates", err, errlen) < 0)
        return -1;
    if (kloc && *kloc) {
        if (kp12) {
            if (rdk_set(conf, "ssl.keystore.location", kloc, "ssl.keystore.location", err, errlen) < 0 ||
                (spass && rdk_set(conf, "ssl.keystore.password", spass, "ssl.keystore.password", err, errlen) < 0))
                return -1;
        } else if (kpem) { /* one file with the key and the certificate chain */
            if (rdk_set(conf, "ssl.certificate.location", kloc, "ssl.keystore.location", err, errlen) < 0 ||
                rdk_set(conf, "ssl.key.location", kloc, "ssl.keystore.location", err, errlen) < 0)
                return -1;
        } else { /* JKS, Kafka's default */
            if (rdk_set_from_keystore(conf, false, kloc, ktype ? ktype : "JKS", spass, kpass, err, errlen) < 0)
                return -1;
            kpass = NULL; /* the key is handed over decrypted */
        }
    }
    if (kchain && *kchain &&
        rdk_set_pem(conf, "ssl.certificate.pem", kchain, "ssl.keystore.certificate.chain", err, errlen) < 0)
        return -1;
    if (kkey && *kkey && rdk_set_pem(conf, "ssl.key.pem", kkey, "ssl.keystore.key", err, errlen) < 0) return -1;
    if (kpass && rdk_set(conf, "ssl.key.password", kpass, "ssl.key.password", err, errlen) < 0) return -1;
    /* Java checks the broker's host name by default (https); "" turns it off */
    if (tls && rdk_set(conf, "ssl.endpoint.identification.algorithm", ident && !*ident ? "none" : "https",
                       "ssl.endpoint.identification.algorithm", err, errlen) < 0)
        return -1;
    return 0;
}

/* sasl.jaas.config's PlainLoginModule / ScramLoginModule username and
 * password are librdkafka's sasl.username and sasl.password. */
static int apply_jaas(const char *text, rd_kafka_conf_t *conf, char *err, size_t errlen) {
    jaas_config jc;
    char jerr[256], ebuf[512];
    if (jaas_parse(text, &jc, jerr, sizeof jerr) < 0) {
        snprintf(err, errlen, "Invalid value %s for configuration sasl.jaas.config: %s", "[hidden]", jerr);
        return -1;
    }
    int rc = 0;
    const char *user = jaas_option_get(&jc.entries[0], "username");
    const char *pass = jaas_option_get(&jc.entries[0], "password");
    if ((user && rd_kafka_conf_set(conf, "sasl.username", user, ebuf, sizeof ebuf) != RD_KAFKA_CONF_OK) ||
        (pass && rd_kafka_conf_set(conf, "sasl.password", pass, ebuf, sizeof ebuf) != RD_KAFKA_CONF_OK)) {
        snprintf(err, errlen, "Invalid value [hidden] for configuration sasl.jaas.config: %s", ebuf);
        rc = -1;
    }
    jaas_free(&jc);
    return rc;
}

int client_props_apply(const client_props *p, rd_kafka_conf_t *conf, client_kind kind,
                       const char *java_config_class, char *err, size_t errlen) {
    char ebuf[512], vbuf[256];
    /* The Java consumer's default (librdkafka's consumer default is false). */
    if (kind == CLIENT_CONSUMER) rd_kafka_conf_set(conf, "allow.auto.create.topics", "true", ebuf, sizeof ebuf);
    if (apply_ssl(p, conf, err, errlen) < 0) return -1;
    for (size_t i = 0; i < p->n; i++) {
        const char *k, *v;
        if (is_ssl_store_key(p->keys[i])) continue; /* apply_ssl */
        if (strcmp(p->keys[i], "sasl.jaas.config") == 0) {
            if (apply_jaas(p->vals[i], conf, err, errlen) < 0) return -1;
            continue;
        }
        int t = client_props_translate(p->keys[i], p->vals[i], kind, &k, &v, vbuf, sizeof vbuf);
        if (t == 0) continue;
        rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, k, v, ebuf, sizeof ebuf);
        if (r == RD_KAFKA_CONF_UNKNOWN) {
            tool_log("WARN", java_config_class,
                     "The configuration '%s' was supplied but isn't a known config.", p->keys[i]);
            continue;
        }
        if (r != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "Invalid value %s for configuration %s: %s", p->vals[i], p->keys[i], ebuf);
            return -1;
        }
    }
    return 0;
}

/* ---- logging ------------------------------------------------------- */

void tool_log(const char *level, const char *logger, const char *fmt, ...) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Like log4j: "(logger)" ends the message's first line; an exception
     * text after a newline follows on the lines below. */
    char *nl = strchr(msg, '\n');
    if (nl) *nl = 0;
    fprintf(stderr, "[%s,%03d] %s %s (%s)\n", ts, (int)(tv.tv_usec / 1000), level, msg, logger);
    if (nl) fprintf(stderr, "%s\n", nl + 1);
    fflush(stderr);
}

void client_rdk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)fac;
    if (level > 4) return; /* below warning */
    tool_log(level <= 3 ? "ERROR" : "WARN", "org.apache.kafka.clients.NetworkClient", "%s", buf);
}

void client_conf_defaults(rd_kafka_conf_t *conf) {
    char e[256];
    rd_kafka_conf_set_log_cb(conf, client_rdk_log_cb);
    rd_kafka_conf_set(conf, "log.connection.close", "false", e, sizeof e);
}

const char *client_java_exception(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return "org.apache.kafka.common.errors.TimeoutException";
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return "org.apache.kafka.common.errors.UnknownTopicOrPartitionException";
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return "org.apache.kafka.common.errors.RecordTooLargeException";
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        return "org.apache.kafka.common.errors.NotLeaderOrFollowerException";
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return "org.apache.kafka.common.errors.TopicAuthorizationException";
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        return "org.apache.kafka.common.errors.InvalidTopicException";
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        return "org.apache.kafka.common.errors.NotEnoughReplicasException";
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        return "org.apache.kafka.common.errors.AuthenticationException";
    default:
        return "org.apache.kafka.common.KafkaException";
    }
}

int client_consumer_topic_metadata(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *client_id,
                                   const char *group_id, int timeout_ms) {
    static int correlation_id;
    const struct rd_kafka_metadata *md = NULL;
    correlation_id++;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR || !md) return -1;
    int found = -1;
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, rd_kafka_topic_name(rkt)) != 0) continue;
        found = t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0;
        if (t->err && t->err > 0 && t->err < INT16_MAX)
            tool_log("WARN", "org.apache.kafka.clients.NetworkClient",
                     "[Consumer clientId=%s, groupId=%s] Error while fetching metadata with correlation id %d : "
                     "{%s=%s}",
                     client_id, group_id, correlation_id, t->topic, kerr_name((int16_t)t->err));
    }
    rd_kafka_metadata_destroy(md);
    return found < 0 ? 0 : found;
}
