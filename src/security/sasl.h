/* sasl.h - the broker's side of SASL on one connection: Kafka's
 * SaslServerAuthenticator as a pure state machine (no I/O, no clock: the
 * caller passes the time), so tests can drive it request by request.
 *
 *   HANDSHAKE_OR_VERSIONS --ApiVersions--> HANDSHAKE --SaslHandshake--> AUTHENTICATE
 *        \---------------------SaslHandshake------------------------/      |
 *   AUTHENTICATE --SaslAuthenticate (v1 handshake) or a raw token (v0)--> ... COMPLETE
 *   any failure --> FAILED (the caller answers, then closes the connection)
 *
 * Before COMPLETE only ApiVersions, SaslHandshake and SaslAuthenticate are
 * served, each in its state; anything else closes the connection, as Kafka's
 * IllegalSaslStateException does. After COMPLETE a SaslHandshake starts a
 * re-authentication (KIP-368) when connections.max.reauth.ms > 0 and the
 * client speaks SaslAuthenticate v1+; the mechanism and principal must not
 * change. A session past its lifetime is closed at its next request.
 */
#ifndef SAMSA_SASL_H
#define SAMSA_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "security/jaas.h"
#include "security/oauthbearer.h"
#include "security/scram.h"

#define SASL_MAX_MECHANISMS 8

/* A listener's SASL settings (built from the broker's config; outlives its sessions). */
typedef struct sasl_server_config {
    char listener[64];
    char mechanisms[SASL_MAX_MECHANISMS][32]; /* sasl.enabled.mechanisms, in order */
    int nmechanisms;
    jaas_config plain;          /* PlainLoginModule entry with user_<name>="password" options */
    scram_lookup_fn scram_lookup;
    void *scram_ctx;
    int64_t max_reauth_ms;      /* connections.max.reauth.ms (0 = no session lifetime) */
    oauth_validator oauth;      /* OAUTHBEARER: the unsecuredValidator* options */
    int64_t (*wall_clock_ms)(void); /* OAUTHBEARER token times; NULL = the system clock */
} sasl_server_config;

/* Reads the listener's settings from a key lookup (broker config): the
 * per-listener listener.name.<l>.<key> overrides <key>. Returns 0 or -1 with
 * Kafka's start-up message in err. */
typedef const char *(*sasl_config_get_fn)(void *ctx, const char *key);
int sasl_server_config_load(sasl_server_config *c, const char *listener, sasl_config_get_fn get, void *ctx,
                            char *err, size_t errlen);
void sasl_server_config_free(sasl_server_config *c);
bool sasl_mechanism_enabled(const sasl_server_config *c, const char *mech);

typedef enum {
    SASL_HANDSHAKE_OR_VERSIONS,
    SASL_HANDSHAKE,
    SASL_AUTHENTICATE,
    SASL_COMPLETE,
    SASL_FAILED,
} sasl_state;

typedef struct sasl_session {
    const sasl_server_config *cfg;
    sasl_state state;
    bool kafka_headers;          /* SaslHandshake v1+: tokens come in SaslAuthenticate requests */
    bool client_reauth;          /* the client used SaslAuthenticate v1+ */
    bool reauthenticating;
    char mechanism[32];
    char principal[300];         /* "User:<name>" once authenticated (kept across re-authentication) */
    int64_t expires_ms;          /* session end (0 = never) */
    scram_server scram;
    bool scram_active;
    char oauth_error[64];        /* OAUTHBEARER: the JSON error sent, awaiting the client's %x01 */
    char oauth_reason[512];      /* why the token was refused (for the log line) */
} sasl_session;

void sasl_session_init(sasl_session *s, const sasl_server_config *cfg);
void sasl_session_free(sasl_session *s);
bool sasl_authenticated(const sasl_session *s);

typedef enum { SASL_SERVE, SASL_CLOSE } sasl_gate;
/* May request (api_key) be served now? SASL_CLOSE with the reason in why
 * closes the connection without an answer (Kafka's behaviour). A SaslHandshake
 * on a complete session that may re-authenticate resets it to HANDSHAKE. */
sasl_gate sasl_check_request(sasl_session *s, int16_t api_key, int16_t api_version, int64_t now_ms, char *why,
                             size_t whylen);
/* ApiVersions answered while in HANDSHAKE_OR_VERSIONS. */
void sasl_on_api_versions(sasl_session *s);

/* SaslHandshake: returns the error code for the response (its mechanism
 * list is cfg->mechanisms). After a non-zero code the caller closes the
 * connection once the response is sent. */
int16_t sasl_handshake(sasl_session *s, int16_t version, const char *mechanism, size_t mech_len, char *why,
                       size_t whylen);

typedef struct sasl_result {
    int16_t error_code;          /* 0 or SASL_AUTHENTICATION_FAILED / ILLEGAL_SASL_STATE */
    char message[768];           /* error message for the client */
    char reason[768];            /* why, for the broker's log (may say more than message) */
    uint8_t *token;              /* malloc'd response token (may be NULL = empty) */
    size_t token_len;
    int64_t session_lifetime_ms; /* for SaslAuthenticate v1+ */
    bool close;                  /* close after sending */
    bool send_nothing;           /* v0 raw framing: nothing to send (close at once) */
} sasl_result;

/* One SASL token: from SaslAuthenticate (kafka_headers) or a raw v0 frame. */
void sasl_authenticate(sasl_session *s, int16_t version, const uint8_t *token, size_t len, int64_t now_ms,
                       sasl_result *r);
void sasl_result_free(sasl_result *r);

/* True while frames on this connection are raw SASL tokens (handshake v0). */
static inline bool sasl_expects_raw_token(const sasl_session *s) {
    return s->state == SASL_AUTHENTICATE && !s->kafka_headers;
}

#endif
