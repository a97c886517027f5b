/* auth.c - HTTP Basic for the console, against the credentials the Kafka
 * listeners accept: when any listener is SASL_PLAINTEXT or SASL_SSL, every
 * console request (pages and API, not /metrics) needs a user and password
 * that the SASL listeners would take: a PLAIN user of a SASL listener's
 * JAAS config (user_<name>="password") when PLAIN is enabled there, or a
 * SCRAM credential of the metadata (SCRAM-SHA-256/512 enabled there).
 *
 * A SCRAM check derives the salted password (PBKDF2, thousands of
 * iterations): accepted checks are remembered as a digest of the user, the
 * password and the credential's stored key, so the next requests cost a
 * hash, and a changed or deleted credential no longer matches. Uncached
 * derivations are limited to DERIVATIONS_PER_SECOND.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "console/console.h"
#include "security/sasl.h"
#include "util/base64.h"

#define MAX_CONSOLE_LISTENERS 8
#define PLAIN_MODULE "org.apache.kafka.common.security.plain.PlainLoginModule"
#define CACHE_SLOTS 16

static sasl_server_config cfgs[MAX_CONSOLE_LISTENERS];
static int ncfgs;
static uint8_t cache[CACHE_SLOTS][32];
static int cache_next;

/* A SCRAM derivation costs milliseconds of the event loop: at most
 * DERIVATIONS_PER_SECOND uncached ones, so guessing passwords cannot stall
 * the broker (the excess is refused as a wrong password would be). */
#define DERIVATIONS_PER_SECOND 10
static int64_t window_start_ms;
static int derivations;

static bool may_derive(void) {
    int64_t now = monotonic_ms();
    if (now - window_start_ms >= 1000) {
        window_start_ms = now;
        derivations = 0;
    }
    return derivations++ < DERIVATIONS_PER_SECOND;
}

static const char *raw_get(void *ctx, const char *key) { return props_get(&((broker *)ctx)->cfg.raw, key); }

int console_auth_start(broker *b, char *err, size_t errlen) {
    console_auth_stop();
    for (int i = 0; i < b->cfg.nlisteners && ncfgs < MAX_CONSOLE_LISTENERS; i++) {
        const char *name = b->cfg.listeners[i].name;
        const char *proto = broker_config_listener_protocol(&b->cfg, name);
        if (!proto || strncmp(proto, "SASL_", 5) != 0) continue;
        if (sasl_server_config_load(&cfgs[ncfgs], name, raw_get, b, err, errlen) < 0) {
            console_auth_stop();
            return -1;
        }
        ncfgs++;
    }
    return 0;
}

void console_auth_stop(void) {
    for (int i = 0; i < ncfgs; i++) sasl_server_config_free(&cfgs[i]);
    ncfgs = 0;
    memset(cache, 0, sizeof cache);
}

bool console_auth_enabled(void) { return ncfgs > 0; }

static bool plain_ok(const sasl_server_config *c, const char *user, const char *pass) {
    if (!sasl_mechanism_enabled(c, "PLAIN") || c->plain.nentries <= 0) return false;
    const jaas_entry *e = &c->plain.entries[0];
    if (strcmp(e->login_module, PLAIN_MODULE) != 0) return false;
    char key[300];
    snprintf(key, sizeof key, "user_%.255s", user); /* names are checked to be shorter */
    const char *expected = jaas_option_get(e, key);
    size_t n = strlen(pass);
    return expected && strlen(expected) == n && CRYPTO_memcmp(expected, pass, n) == 0;
}

static void digest(const char *user, const char *pass, const mscram *m, uint8_t out[32]) {
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    unsigned len = 0;
    memset(out, 0, 32);
    if (!x) return;
    if (EVP_DigestInit_ex(x, EVP_sha256(), NULL) == 1) {
        EVP_DigestUpdate(x, user, strlen(user) + 1);
        EVP_DigestUpdate(x, pass, strlen(pass) + 1);
        EVP_DigestUpdate(x, &m->mechanism, 1);
        EVP_DigestUpdate(x, m->stored_key, (size_t)m->key_len);
        EVP_DigestFinal_ex(x, out, &len);
    }
    EVP_MD_CTX_free(x);
}

static bool scram_ok(broker *b, const sasl_server_config *c, const char *user, const char *pass) {
    for (int mech = SCRAM_SHA_256; mech <= SCRAM_SHA_512; mech++) {
        if (!sasl_mechanism_enabled(c, scram_mechanism_name(mech))) continue;
        const mscram *m = b->image ? mimage_scram(b->image, user, (int8_t)mech) : NULL;
        if (!m || m->key_len != (int32_t)scram_key_len(mech) || m->salt_len > SCRAM_MAX_SALT) continue;
        uint8_t d[32];
        digest(user, pass, m, d);
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (CRYPTO_memcmp(cache[i], d, 32) == 0) return true;
        if (!may_derive()) return false;
        scram_credential cred;
        if (scram_credential_from_password(mech, pass, m->salt, (size_t)m->salt_len, m->iterations, &cred) != 0)
            continue;
        if (cred.key_len == (size_t)m->key_len && CRYPTO_memcmp(cred.stored_key, m->stored_key, cred.key_len) == 0) {
            memcpy(cache[cache_next], d, 32);
            cache_next = (cache_next + 1) % CACHE_SLOTS;
            return true;
        }
    }
    return false;
}

bool console_auth_check(broker *b, const char *header, size_t len, char *user, size_t userlen) {
    if (len < 6 || strncasecmp(header, "Basic ", 6) != 0) return false;
    const char *enc = header + 6;
    size_t elen = len - 6;
    while (elen && *enc == ' ') enc++, elen--;
    if (elen == 0 || elen > 1024) return false;
    uint8_t dec[800];
    long n = base64_decode(enc, elen, dec);
    if (n <= 0 || (size_t)n >= sizeof dec) return false;
    dec[n] = 0;
    if (memchr(dec, 0, (size_t)n)) return false;
    char *colon = strchr((char *)dec, ':');
    if (!colon || colon == (char *)dec) return false;
    *colon = 0;
    const char *name = (const char *)dec, *pass = colon + 1;
    if (strlen(name) >= 256) return false;
    snprintf(user, userlen, "%s", name);
    bool ok = false;
    for (int i = 0; i < ncfgs && !ok; i++) ok = plain_ok(&cfgs[i], name, pass) || scram_ok(b, &cfgs[i], name, pass);
    OPENSSL_cleanse(dec, sizeof dec);
    return ok;
}
