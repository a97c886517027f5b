/* kclient.h - a small blocking Kafka protocol client for the command-line tools.
 *
 * One TCP connection at a time, one request in flight: connect to the first
 * reachable broker of a bootstrap list, learn its API versions with an
 * ApiVersions exchange, then send requests and wait for their responses.
 * Every wait is bounded (connect and request timeouts), so a dead or absent
 * broker becomes an error value with a message, never a hang.
 *
 * Bodies are encoded/decoded by the caller (the generated codecs in
 * protocol/gen/ or hand-written ones); this module frames them with the
 * request/response headers of the right version. Response bytes live in the
 * caller's arena.
 */
#ifndef SAMSA_TOOLS_KCLIENT_H
#define SAMSA_TOOLS_KCLIENT_H

#include <stdint.h>

#include "protocol/wire.h"
#include "util/arena.h"

/* Highest API key known to the tools (Kafka 3.6.1: ConsumerGroupHeartbeat). */
#define KCLIENT_API_COUNT 69

/* One entry of the tools' own API list (Kafka 3.6.1's ApiKeys). */
typedef struct kclient_api {
    int16_t key;
    const char *name;    /* Kafka's name: "Produce", "LeaderAndIsr", ... */
    int16_t min_version;
    int16_t max_version; /* newest version this client knows */
    int16_t flexible_from; /* first flexible version, -1 if none */
    int client_visible;  /* served by brokers (zkBroker or broker listener) */
} kclient_api;

/* The entry for key, or NULL if unknown. */
const kclient_api *kclient_api_info(int16_t key);

/* Header versions: request header 2 for flexible versions else 1 (0 for
 * ControlledShutdown v0); response header 1 for flexible versions, except
 * ApiVersions responses which always use 0. */
int kclient_request_header_version(int16_t key, int16_t version);
int kclient_response_header_version(int16_t key, int16_t version);

typedef struct kclient_broker_api {
    int16_t min_version;
    int16_t max_version;
    int supported;       /* the broker listed this key */
} kclient_broker_api;

typedef struct kclient {
    int fd;                /* -1 when not connected */
    char host[256];        /* broker we are connected to, as given */
    int port;
    int32_t next_correlation_id;
    int request_timeout_ms;
    int connect_timeout_ms;
    char client_id[64];
    kclient_broker_api apis[KCLIENT_API_COUNT];
    /* Keys the broker listed that this client does not know. */
    int16_t unknown_keys[32][3]; /* key, min, max */
    int n_unknown;
    /* SASL (security.protocol=SASL_PLAINTEXT): authenticate after ApiVersions */
    char sasl_mechanism[32]; /* "" = no SASL */
    char sasl_username[256];
    char sasl_password[256];
    int auth_failed;       /* the last connect failed authentication (err says why): no retry */
    /* TLS (security.protocol=SSL or SASL_SSL) with the ssl.* settings a Java
     * client reads (net/tls.c); blocking with the request deadlines */
    int use_tls;
    struct props *ssl_props;  /* ssl.* settings given, NULL if none */
    struct tls_ctx *tls;      /* built at the first connect, kept for reconnects */
    void *ssl;                /* SSL * of the open connection */
    int tls_wait;             /* POLLIN/POLLOUT the last TLS call waits for */
    int tls_failed_logged;    /* the authentication failure was logged for this connection */
    char err[512];         /* message of the last failure */
} kclient;

/* Sets defaults (request timeout 30 s, connect budget 5 s). No I/O. */
void kclient_init(kclient *c, const char *client_id);

/* A client for another broker of the same cluster with proto's settings:
 * client id, timeouts, SASL credentials, TLS and its ssl.* settings (shared
 * with proto, which must outlive c). No I/O. */
void kclient_init_like(kclient *c, const kclient *proto);

/* One Java client setting: security.protocol, sasl.mechanism and
 * sasl.jaas.config (username/password of a PlainLoginModule or
 * ScramLoginModule) and ssl.* (truststore and keystore in PEM form) are
 * used, others ignored. -1 with c->err when the value cannot be served (a
 * mechanism other than PLAIN/SCRAM). */
int kclient_configure(kclient *c, const char *key, const char *value);

/* Connects to the first reachable "host:port" of a comma-separated list and
 * runs ApiVersions. Unreachable addresses are retried with backoff until the
 * connect budget runs out. Returns 0 or -1 (c->err set). */
int kclient_connect(kclient *c, const char *bootstrap);
/* Same for one address (used to reach a specific broker after Metadata). */
int kclient_connect_to(kclient *c, const char *host, int port);
void kclient_close(kclient *c);

/* The version to use for key: min(our max, broker max); -1 if the broker
 * does not offer it or the ranges do not overlap. */
int16_t kclient_pick_version(const kclient *c, int16_t key);

/* Sends one request and waits for its response. body holds the encoded
 * request body. On success *resp reads the response body (after its header),
 * whose bytes are allocated in arena a. Returns 0 or -1 (c->err set; the
 * connection is closed on I/O errors and timeouts). */
int kclient_call(kclient *c, int16_t key, int16_t version, const kwriter *body, karena *a, kreader *resp);

/* Encodes req (the generated struct for key's request) at version, calls
 * the broker, and decodes its response into resp (the generated response
 * struct, initialised here), with strings and arrays in arena a.
 * Returns 0 or -1 (c->err set). */
int kclient_request(kclient *c, int16_t key, int16_t version, const void *req, void *resp, karena *a);

struct MetadataResponse;
/* Metadata for the named topics (ntopics >= 0) or for all topics
 * (topics == NULL). *version_out, if not NULL, gets the version used. */
int kclient_metadata(kclient *c, const char *const *topics, int ntopics, struct MetadataResponse *out,
                     int16_t *version_out, karena *a);

/* Parses "host:port" (IPv6 as "[::1]:9092"); host is copied into out. */
int kclient_parse_hostport(const char *s, size_t len, char *host, size_t hostlen, int *port);

#endif
