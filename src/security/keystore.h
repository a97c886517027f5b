/* keystore.h - Java keystore files as Kafka loads them for ssl.keystore.type
 * and ssl.truststore.type JKS (Sun's format, still Kafka's default type)
 * and PKCS12 (keytool's default since Java 9; OpenSSL reads it).
 *
 * A keystore gives the private key of its key entry and that entry's
 * certificate chain; a truststore gives every certificate it holds.
 */
#ifndef SAMSA_KEYSTORE_H
#define SAMSA_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct keystore_contents {
    EVP_PKEY *key;           /* the first key entry's private key; NULL without one */
    X509 *leaf;              /* that entry's certificate */
    STACK_OF(X509) *chain;   /* the rest of its chain, leaf's issuer first */
    STACK_OF(X509) *trusted; /* trusted-certificate entries (JKS) or every certificate (PKCS12) */
} keystore_contents;

/* Reads the keystore file at path of type "JKS" or "PKCS12" (any case).
 * store_password checks the file's integrity (NULL: not checked, as Java
 * does for truststores); key_password decrypts the key entry (NULL: the
 * store password, as Kafka's ssl.key.password). want_key: fail when there is
 * no key entry. 0, or -1 with the reason (no path, no "Failed to load"
 * prefix: the caller adds Kafka's) in err. out is freed with
 * keystore_contents_free either way. */
int keystore_load(const char *path, const char *type, const char *store_password, const char *key_password,
                  int want_key, keystore_contents *out, char *err, size_t errlen);
void keystore_contents_free(keystore_contents *c);

/* The same for a JKS image in memory (for the fuzzer and unit tests). */
int keystore_parse_jks(const uint8_t *data, size_t len, const char *store_password, const char *key_password,
                       int want_key, keystore_contents *out, char *err, size_t errlen);

#endif
