/* test_keystore.c - security/keystore: JKS and PKCS12 files made by Java's
 * keytool (tests/data/keystores/make-keystores.sh) read as Kafka's
 * ssl.keystore.type / ssl.truststore.type; wrong passwords, every truncation
 * and flipped bytes fail with a reason and leak nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "security/keystore.h"
#include "unit_check.h"

#define DIR "tests/data/keystores/"

static const char *at(const char *file) {
    static char buf[256];
    snprintf(buf, sizeof buf, DIR "%s", file);
    return buf;
}

static char *subject_of(X509 *x, char *buf, size_t len) {
    X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len);
    return buf;
}

static void key_entry(const char *file, const char *type, const char *spw, const char *kpw, const char *cn) {
    keystore_contents ks;
    char err[256] = "", subj[256];
    int rc = keystore_load(at(file), type, spw, kpw, 1, &ks, err, sizeof err);
    CHECK(rc == 0, "%s: %s", file, err);
    if (rc) return;
    CHECK(ks.key && ks.leaf, "%s: key and certificate", file);
    CHECK(X509_check_private_key(ks.leaf, ks.key) == 1, "%s: the key belongs to the certificate", file);
    CHECK(strstr(subject_of(ks.leaf, subj, sizeof subj), cn) != NULL, "%s: subject %s", file, subj);
    keystore_contents_free(&ks);
}

static void fails(const char *file, const char *type, const char *spw, const char *kpw, int want_key,
                  const char *want) {
    keystore_contents ks;
    char err[256] = "";
    int rc = keystore_load(at(file), type, spw, kpw, want_key, &ks, err, sizeof err);
    CHECK(rc == -1, "%s: expected \"%s\"", file, want);
    CHECK(strstr(err, want) != NULL, "%s: got \"%s\", want \"%s\"", file, err, want);
    CHECK(!ks.key && !ks.leaf && !ks.chain && !ks.trusted, "%s: nothing left after a failure", file);
}

static size_t trusted_count(const char *file, const char *type, const char *spw) {
    keystore_contents ks;
    char err[256] = "";
    if (keystore_load(at(file), type, spw, NULL, 0, &ks, err, sizeof err) != 0) {
        CHECK(0, "%s: %s", file, err);
        return 0;
    }
    size_t n = (size_t)sk_X509_num(ks.trusted);
    char subj[256];
    for (size_t i = 0; i < n; i++)
        CHECK(strstr(subject_of(sk_X509_value(ks.trusted, (int)i), subj, sizeof subj), "CN=client"),
              "%s: trusted %s", file, subj);
    keystore_contents_free(&ks);
    return n;
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = malloc(1 << 16);
    *len = buf ? fread(buf, 1, 1 << 16, f) : 0;
    fclose(f);
    return buf;
}

/* Every prefix and every flipped byte of a JKS image is refused or read
 * whole; never a crash (ASan) or a leak. */
static void damaged(const char *file, const char *spw) {
    size_t len = 0;
    uint8_t *img = slurp(at(file), &len);
    CHECK(img && len > 100, "%s read", file);
    if (!img) return;
    int refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        keystore_contents ks;
        char err[256];
        if (keystore_parse_jks(img, cut, spw, NULL, 1, &ks, err, sizeof err) == 0) keystore_contents_free(&ks);
        else refused++;
    }
    CHECK(refused == (int)len, "%s: %d of %zu prefixes refused", file, refused, len);
    int accepted_flips = 0;
    for (size_t at = 0; at < len; at++) {
        keystore_contents ks;
        char err[256];
        img[at] ^= 0x5A;
        /* with the store password the digest catches any flip; without it (a truststore's
         * way) parsing must still hold up */
        if (keystore_parse_jks(img, len, spw, NULL, 1, &ks, err, sizeof err) == 0) {
            accepted_flips++;
            keystore_contents_free(&ks);
        }
        if (keystore_parse_jks(img, len, NULL, spw, 0, &ks, err, sizeof err) == 0) keystore_contents_free(&ks);
        img[at] ^= 0x5A;
    }
    CHECK(accepted_flips == 0, "%s: %d flipped images passed the integrity check", file, accepted_flips);
    free(img);
}

int main(void) {
    /* keystores: JKS with its own key password, the same key as PKCS12, an EC key */
    key_entry("broker.jks", "JKS", "broker-store", "broker-key", "CN=localhost");
    key_entry("broker.p12", "PKCS12", "broker-store", NULL, "CN=localhost");
    key_entry("broker-ec.jks", "JKS", "ec-store", NULL, "CN=localhost");
    key_entry("client.p12", "PKCS12", "client-store", NULL, "CN=client");
    /* Java 9+ reads either format under either name */
    key_entry("broker.p12", "JKS", "broker-store", NULL, "CN=localhost");
    key_entry("broker-ec.jks", "pkcs12", "ec-store", NULL, "CN=localhost");

    fails("broker.jks", "JKS", "wrong", "broker-key", 1, "Keystore was tampered with, or password was incorrect");
    fails("broker.jks", "JKS", "broker-store", "wrong", 1, "Cannot recover key");
    fails("broker.jks", "JKS", "broker-store", NULL, 1, "Cannot recover key"); /* the store password is not the key's */
    fails("broker.p12", "PKCS12", "wrong", NULL, 1, "password was incorrect");
    fails("truststore.jks", "JKS", "trust-store", NULL, 1, "no private key entry");
    fails("broker.jks", "BKS", "broker-store", NULL, 1, "BKS not found");
    fails("nonexistent.jks", "JKS", "x", NULL, 1, "No such file or directory");
    fails("broker.pem", "JKS", "x", NULL, 1, "neither a JKS nor a PKCS12 keystore");

    /* truststores: the trusted entries; without a password (Java skips the integrity check) */
    CHECK(trusted_count("truststore.jks", "JKS", "trust-store") == 1, "JKS truststore: one certificate");
    CHECK(trusted_count("truststore.jks", "JKS", NULL) == 1, "JKS truststore without a password");
    CHECK(trusted_count("truststore.p12", "PKCS12", "trust-store") == 1, "PKCS12 truststore: one certificate");

    damaged("broker.jks", "broker-store");
    damaged("truststore.jks", "trust-store");

    printf("keystore: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
