/* scram.h - SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's
 * ScramFormatter, ScramMessages and ScramSaslServer do it.
 *
 * Pure code: no I/O, no clock. Credentials come from a lookup callback (the
 * broker reads them from the metadata image's UserScramCredentialRecords).
 * The server nonce comes from OpenSSL's RAND_bytes unless the caller sets
 * one (tests use RFC 7677's fixed nonce).
 */
#ifndef SAMSA_SCRAM_H
#define SAMSA_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kafka's ScramMechanism types (AlterUserScramCredentials, UserScramCredentialRecord). */
#define SCRAM_UNKNOWN 0
#define SCRAM_SHA_256 1
#define SCRAM_SHA_512 2

#define SCRAM_MIN_ITERATIONS 4096
#define SCRAM_MAX_ITERATIONS 16384 /* ScramControlManager's MAX_ITERATIONS */
#define SCRAM_MAX_KEY 64           /* SHA-512 output */
#define SCRAM_MAX_SALT 256

typedef struct scram_credential {
    uint8_t salt[SCRAM_MAX_SALT];
    size_t salt_len;
    uint8_t stored_key[SCRAM_MAX_KEY];
    uint8_t server_key[SCRAM_MAX_KEY];
    size_t key_len;
    int32_t iterations;
} scram_credential;

/* "SCRAM-SHA-256" -> 1 ... ; SCRAM_UNKNOWN when not a SCRAM mechanism. */
int scram_mechanism_from_name(const char *name);
const char *scram_mechanism_name(int mech);
/* Digest length in bytes (32 or 64), 0 for an unknown mechanism. */
size_t scram_key_len(int mech);

/* A random nonce or salt as Kafka makes them (ScramFormatter.secureRandomString:
 * base 36 letters and digits, about 26 of them). */
void scram_random_string(char *out, size_t outlen);

/* Hi(password, salt, iterations) = PBKDF2 with the mechanism's HMAC. */
int scram_salted_password(int mech, const char *password, size_t password_len, const uint8_t *salt,
                          size_t salt_len, int32_t iterations, uint8_t *out);
/* StoredKey and ServerKey from a salted password (ScramFormatter.generateCredential). */
int scram_credential_from_salted(int mech, const uint8_t *salted, const uint8_t *salt, size_t salt_len,
                                 int32_t iterations, scram_credential *out);
/* Salt (random when salt == NULL), salted password and keys from a password. */
int scram_credential_from_password(int mech, const char *password, const uint8_t *salt, size_t salt_len,
                                   int32_t iterations, scram_credential *out);

/* ScramFormatter.username: "=2C" -> ",", "=3D" -> "="; any other '=' is
 * invalid (-1). out holds at least strlen(sasl_name)+1 bytes. */
int scram_username(const char *sasl_name, size_t len, char *out);

/* Returns 0 with *out filled, or -1 when the user has no credential for mech. */
typedef int (*scram_lookup_fn)(void *ctx, const char *user, int mech, scram_credential *out);

typedef enum {
    SCRAM_RECEIVE_CLIENT_FIRST,
    SCRAM_RECEIVE_CLIENT_FINAL,
    SCRAM_COMPLETE,
    SCRAM_FAILED,
} scram_state;

typedef struct scram_server {
    int mech;
    scram_state state;
    scram_lookup_fn lookup;
    void *lookup_ctx;
    char fixed_nonce[64];       /* tests: used instead of a random nonce when set */
    char *client_first_bare;    /* owned */
    char *server_first;         /* owned */
    char *nonce;                /* client nonce + server nonce, owned */
    char username[256];
    scram_credential cred;
} scram_server;

void scram_server_init(scram_server *s, int mech, scram_lookup_fn lookup, void *ctx);
void scram_server_free(scram_server *s);

typedef enum {
    SCRAM_STEP_CONTINUE = 0, /* *out is the challenge; more to come */
    SCRAM_STEP_DONE = 1,     /* *out is the server-final message; authenticated as s->username */
    SCRAM_STEP_SASL_ERROR = -1,  /* Kafka's SaslException: the generic "invalid credentials" answer */
    SCRAM_STEP_AUTH_ERROR = -2,  /* Kafka's SaslAuthenticationException: msg goes to the client */
} scram_step_result;

/* One client message. *out (malloc'd, *out_len bytes) is the response on
 * success. msg receives the reason (for the log, or for the client when
 * SCRAM_STEP_AUTH_ERROR). */
scram_step_result scram_server_step(scram_server *s, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                                    char *msg, size_t msglen);

/* ---- client side (the tools and broker-to-broker connections) ---- */

typedef struct scram_client {
    int mech;
    char client_first_bare[600];
    char client_nonce[64];
    uint8_t server_signature[SCRAM_MAX_KEY];
    size_t key_len;
} scram_client;

/* "n,,n=<saslname>,r=<nonce>" into out (NUL-terminated); -1 if it does not fit. */
int scram_client_first(scram_client *c, int mech, const char *user, char *out, size_t outlen);
/* From the server-first message: the client-final message, with the proof
 * from password. -1 with a reason in err (bad nonce, iterations < 4096...). */
int scram_client_final(scram_client *c, const uint8_t *server_first, size_t len, const char *password, char *out,
                       size_t outlen, char *err, size_t errlen);
/* The server-final message "v=<signature>" proves the server knew the
 * credential; "e=..." is the server's error. 0 when verified. */
int scram_client_verify(const scram_client *c, const uint8_t *server_final, size_t len, char *err, size_t errlen);

#endif
