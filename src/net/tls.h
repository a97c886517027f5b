/* tls.h - TLS with OpenSSL, configured with Kafka's ssl.* settings.
 *
 * A tls_ctx is one SSL_CTX built from the settings of a listener (server)
 * or of a client (inter-broker traffic, tools): PEM keystores and
 * truststores given inline (ssl.keystore.certificate.chain, ssl.keystore.key,
 * ssl.truststore.certificates) or as files (ssl.keystore.location,
 * ssl.truststore.location), ssl.key.password, ssl.client.auth,
 * ssl.enabled.protocols, ssl.cipher.suites (Java's standard names),
 * ssl.endpoint.identification.algorithm and, for servers,
 * ssl.principal.mapping.rules. Settings are read through a lookup function
 * so a broker can apply listener.name.<l>. prefixes and a tool its own
 * properties file.
 *
 * Connections made from a tls_ctx keep their own reference to the SSL_CTX:
 * a context replaced by a reload can be freed while they live on.
 */
#ifndef SAMSA_TLS_H
#define SAMSA_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

typedef struct tls_ctx tls_ctx;

/* key is an unprefixed name ("ssl.keystore.location"); NULL when unset. */
typedef const char *(*tls_get_fn)(void *arg, const char *key);

/* A server context needs a keystore; a client's is optional (mutual TLS).
 * NULL with a message naming the setting in err. */
tls_ctx *tls_ctx_new(bool server, tls_get_fn get, void *arg, char *err, size_t errlen);
void tls_ctx_free(tls_ctx *t);
SSL_CTX *tls_ctx_ssl(const tls_ctx *t);

/* A new TLS session on a connected socket; NULL when out of memory. A
 * client checks host against the server's certificate unless
 * ssl.endpoint.identification.algorithm is empty. */
SSL *tls_session_server(const tls_ctx *t, int fd);
SSL *tls_session_client(const tls_ctx *t, int fd, const char *host);

/* One step of the handshake (or of SSL_read/SSL_write's result):
 * TLS_DONE, TLS_WANT_READ, TLS_WANT_WRITE, TLS_CLOSED (clean close) or
 * TLS_FAILED with the reason in err. */
enum { TLS_DONE = 0, TLS_WANT_READ = 1, TLS_WANT_WRITE = 2, TLS_CLOSED = 3, TLS_FAILED = 4 };
int tls_handshake(SSL *ssl, char *err, size_t errlen);
int tls_result(SSL *ssl, int rc, char *err, size_t errlen);

/* The principal of the peer after the handshake: "User:<name>" from its
 * certificate's subject through the context's ssl.principal.mapping.rules,
 * or "User:ANONYMOUS" without a certificate. Returns -1 when no rule
 * applies (Kafka then fails the authentication), with the reason in out. */
int tls_peer_principal(const tls_ctx *t, SSL *ssl, char *out, size_t outlen);

/* The peer certificate's subject as RFC 2253 ("CN=a,O=b"), "" without one. */
void tls_peer_dn(SSL *ssl, char *out, size_t outlen);

/* Kafka's SslFactory check before a keystore is replaced at runtime: the new
 * leaf certificate keeps the subject (compared as RFC 2253, ignoring case)
 * and every subject alternative name of the old one. -1 with Kafka's
 * message ("Keystore DistinguishedName does not match: ...") in err. */
int tls_ctx_compatible(const tls_ctx *old_ctx, const tls_ctx *new_ctx, char *err, size_t errlen);

/* PEM text whose line breaks were lost (an inline value in a .properties
 * file) with its blocks re-wrapped; text outside the blocks is dropped.
 * malloc'd; NULL when out of memory. */
char *tls_pem_normalize(const char *text);

/* kTLS: true when the kernel encrypts sends on this session (SSL_sendfile works). */
bool tls_ktls_send(SSL *ssl);

#endif
