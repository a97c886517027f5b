/* test_tls_config.c - net/tls: Kafka's ssl.* validation messages and the
 * PEM text of inline values (the TLS handshakes themselves are covered by
 * tests/integration/test_tls.py with real certificates). */
#include <stdlib.h>
#include <string.h>

#include "net/tls.h"
#include "unit_check.h"

typedef struct kv {
    const char *k, *v;
} kv;

static const char *get(void *arg, const char *key) {
    for (const kv *p = arg; p->k; p++)
        if (strcmp(p->k, key) == 0) return p->v;
    return NULL;
}

static void expect_error(bool server, kv *settings, const char *want) {
    char err[512] = "";
    tls_ctx *t = tls_ctx_new(server, get, settings, err, sizeof err);
    CHECK(t == NULL, "expected failure: %s", want);
    if (t) tls_ctx_free(t);
    else CHECK(strstr(err, want) != NULL, "got \"%s\", want \"%s\"", err, want);
}

int main(void) {
    kv none[] = {{NULL, NULL}};
    expect_error(true, none, "SSL key store is not specified");
    kv key_only[] = {{"ssl.keystore.type", "PEM"}, {"ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"}, {NULL, NULL}};
    expect_error(true, key_only, "SSL private key is specified, but certificate chain is not specified.");
    kv chain_only[] = {{"ssl.keystore.type", "PEM"}, {"ssl.keystore.certificate.chain", "x"}, {NULL, NULL}};
    expect_error(true, chain_only, "SSL certificate chain is specified, but private key is not specified");
    kv both[] = {{"ssl.keystore.type", "PEM"}, {"ssl.keystore.certificate.chain", "x"}, {"ssl.keystore.key", "y"},
                 {"ssl.keystore.location", "/nonexistent"}, {NULL, NULL}};
    expect_error(true, both, "Both SSL key store location and separate private key are specified.");
    kv jks_inline[] = {{"ssl.keystore.certificate.chain", "x"}, {"ssl.keystore.key", "y"}, {NULL, NULL}};
    expect_error(true, jks_inline, "SSL private key can be specified only for PEM, but key store type is JKS.");
    kv jks_file[] = {{"ssl.keystore.location", "/etc/ks.jks"}, {NULL, NULL}};
    expect_error(true, jks_file, "SSL key store is specified, but key store password is not specified.");
    kv jks_missing[] = {{"ssl.keystore.location", "/nonexistent/ks.jks"}, {"ssl.keystore.password", "p"}, {NULL, NULL}};
    expect_error(true, jks_missing, "Failed to load SSL keystore /nonexistent/ks.jks of type JKS: No such file");
    kv jks_wrong[] = {{"ssl.keystore.location", "tests/data/keystores/broker.jks"}, {"ssl.keystore.password", "bad"},
                      {NULL, NULL}};
    expect_error(true, jks_wrong, "Failed to load SSL keystore tests/data/keystores/broker.jks of type JKS: "
                                  "Keystore was tampered with, or password was incorrect");
    kv jks_no_key_pass[] = {{"ssl.keystore.location", "tests/data/keystores/broker.jks"},
                            {"ssl.keystore.password", "broker-store"}, {NULL, NULL}};
    expect_error(true, jks_no_key_pass, "of type JKS: Cannot recover key");
    kv bks[] = {{"ssl.keystore.type", "BKS"}, {"ssl.keystore.location", "tests/data/keystores/broker.jks"},
                {"ssl.keystore.password", "broker-store"}, {NULL, NULL}};
    expect_error(true, bks, "of type BKS: BKS not found");
    kv trust_keys_only[] = {{"ssl.truststore.location", "tests/data/keystores/broker.jks"}, {NULL, NULL}};
    expect_error(false, trust_keys_only, "the trustAnchors parameter must be non-empty");
    kv trust_p12_no_pass[] = {{"ssl.truststore.type", "PKCS12"},
                              {"ssl.truststore.location", "tests/data/keystores/truststore.p12"}, {NULL, NULL}};
    expect_error(false, trust_p12_no_pass, "its contents are encrypted and no password was given");
    kv pem_pass[] = {{"ssl.keystore.type", "PEM"}, {"ssl.keystore.location", "/x.pem"},
                     {"ssl.keystore.password", "p"}, {NULL, NULL}};
    expect_error(true, pem_pass, "SSL key store password cannot be specified with PEM format");
    kv missing_file[] = {{"ssl.keystore.type", "PEM"}, {"ssl.keystore.location", "/nonexistent/ks.pem"}, {NULL, NULL}};
    expect_error(true, missing_file, "Failed to load PEM SSL keystore /nonexistent/ks.pem");
    kv no_cert[] = {{"ssl.keystore.type", "PEM"}, {"ssl.keystore.certificate.chain", "not pem"},
                    {"ssl.keystore.key", "not pem"}, {NULL, NULL}};
    expect_error(true, no_cert, "At least one certificate expected, but none found");
    kv trust_both[] = {{"ssl.truststore.type", "PEM"}, {"ssl.truststore.location", "/a"},
                       {"ssl.truststore.certificates", "b"}, {NULL, NULL}};
    expect_error(false, trust_both, "Both SSL trust store location and separate trust certificates are specified.");
    kv trust_jks[] = {{"ssl.truststore.certificates", "b"}, {NULL, NULL}};
    expect_error(false, trust_jks, "SSL trust store certs can be specified only for PEM, but trust store type is JKS.");
    kv trust_empty[] = {{"ssl.truststore.type", "PEM"}, {"ssl.truststore.certificates", "nothing here"}, {NULL, NULL}};
    expect_error(false, trust_empty, "Invalid PEM truststore configs: At least one certificate expected");
    kv proto[] = {{"ssl.enabled.protocols", "TLSv1.2,SSLv3"}, {NULL, NULL}};
    expect_error(false, proto, "Invalid value SSLv3 in ssl.enabled.protocols");
    kv cipher[] = {{"ssl.cipher.suites", "TLS_NO_SUCH_SUITE"}, {NULL, NULL}};
    expect_error(false, cipher, "Unsupported cipher suite TLS_NO_SUCH_SUITE in ssl.cipher.suites");

    /* a client needs no keystore; IANA names of TLS 1.2 and 1.3 suites are accepted */
    kv client_ok[] = {{"ssl.cipher.suites", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256"},
                      {"ssl.enabled.protocols", "TLSv1.2, TLSv1.3"}, {NULL, NULL}};
    char err[512];
    tls_ctx *t = tls_ctx_new(false, get, client_ok, err, sizeof err);
    CHECK(t != NULL, "client context: %s", err);
    tls_ctx_free(t);

    /* keystores and truststores made by keytool: JKS (with its own key password), PKCS12 */
    kv servers[][6] = {
        {{"ssl.keystore.location", "tests/data/keystores/broker.jks"}, {"ssl.keystore.password", "broker-store"},
         {"ssl.key.password", "broker-key"}, {"ssl.truststore.location", "tests/data/keystores/truststore.jks"},
         {"ssl.truststore.password", "trust-store"}, {NULL, NULL}},
        {{"ssl.keystore.type", "PKCS12"}, {"ssl.keystore.location", "tests/data/keystores/broker.p12"},
         {"ssl.keystore.password", "broker-store"}, {"ssl.truststore.type", "PKCS12"},
         {"ssl.truststore.location", "tests/data/keystores/truststore.p12"}, {"ssl.truststore.password", "trust-store"}},
    };
    for (int i = 0; i < 2; i++) {
        kv settings[7];
        memcpy(settings, servers[i], sizeof servers[i]);
        settings[6] = (kv){NULL, NULL};
        t = tls_ctx_new(true, get, settings, err, sizeof err);
        CHECK(t != NULL, "server context from keystore %d: %s", i, t ? "" : err);
        if (t) tls_ctx_free(t);
    }

    /* inline PEM whose line breaks a properties file removed */
    char *pem = tls_pem_normalize("junk -----BEGIN CERTIFICATE----- QUJD REVG  R0hJ -----END CERTIFICATE----- tail");
    CHECK(pem && strcmp(pem, "-----BEGIN CERTIFICATE-----\nQUJDREVGR0hJ\n-----END CERTIFICATE-----\n") == 0,
          "normalised: %s", pem ? pem : "(null)");
    free(pem);
    /* long bodies are wrapped at 64 columns */
    char body[200];
    memset(body, 'A', 130);
    body[130] = 0;
    char in[400];
    snprintf(in, sizeof in, "-----BEGIN X-----%s-----END X-----", body);
    pem = tls_pem_normalize(in);
    CHECK(pem && strstr(pem, "\n") && strlen(pem) == strlen("-----BEGIN X-----\n") + 130 + 3 + strlen("-----END X-----\n"),
          "wrapped: %s", pem ? pem : "(null)");
    free(pem);

    printf("tls_config: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
