/* test_sasl.c - the SASL authenticator state machine, PLAIN, the JAAS
 * parser and SCRAM (RFC 7677's SCRAM-SHA-256 exchange, exactly). */
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "security/jaas.h"
#include "security/sasl.h"
#include "security/scram.h"
#include "unit_check.h"
#include "util/base64.h"

/* ---- config lookup from a key=value table ---- */
static const char *const *cfg_table;
static const char *table_get(void *ctx, const char *key) {
    (void)ctx;
    for (int i = 0; cfg_table[i]; i += 2)
        if (strcmp(cfg_table[i], key) == 0) return cfg_table[i + 1];
    return NULL;
}

/* RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096 */
static int rfc_lookup(void *ctx, const char *user, int mech, scram_credential *out) {
    (void)ctx;
    if (strcmp(user, "user") != 0 || mech != SCRAM_SHA_256) return -1;
    uint8_t salt[32];
    long sl = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt);
    return scram_credential_from_password(mech, "pencil", salt, (size_t)sl, 4096, out);
}

static void test_rfc7677(void) {
    scram_server s;
    scram_server_init(&s, SCRAM_SHA_256, rfc_lookup, NULL);
    snprintf(s.fixed_nonce, sizeof s.fixed_nonce, "%s", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    const char *first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    uint8_t *out;
    size_t olen;
    char msg[256];
    int st = scram_server_step(&s, (const uint8_t *)first, strlen(first), &out, &olen, msg, sizeof msg);
    const char *want1 = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    CHECK(st == SCRAM_STEP_CONTINUE, "client-first: %d %s", st, msg);
    CHECK(out && olen == strlen(want1) && memcmp(out, want1, olen) == 0, "server-first: %.*s", (int)olen, out ? (char *)out : "");
    free(out);
    const char *final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    st = scram_server_step(&s, (const uint8_t *)final, strlen(final), &out, &olen, msg, sizeof msg);
    const char *want2 = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    CHECK(st == SCRAM_STEP_DONE, "client-final: %d %s", st, msg);
    CHECK(out && olen == strlen(want2) && memcmp(out, want2, olen) == 0, "server-final: %.*s", (int)olen, out ? (char *)out : "");
    CHECK(strcmp(s.username, "user") == 0, "user %s", s.username);
    free(out);
    scram_server_free(&s);

    /* wrong proof, wrong nonce, bad formats, unknown user, tokenauth */
    const char *bad_finals[] = {
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVA=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=x",
        "",
        "c=Zm9v,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    };
    for (size_t i = 0; i < sizeof bad_finals / sizeof bad_finals[0]; i++) {
        scram_server_init(&s, SCRAM_SHA_256, rfc_lookup, NULL);
        snprintf(s.fixed_nonce, sizeof s.fixed_nonce, "%s", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        st = scram_server_step(&s, (const uint8_t *)first, strlen(first), &out, &olen, msg, sizeof msg);
        free(out);
        st = scram_server_step(&s, (const uint8_t *)bad_finals[i], strlen(bad_finals[i]), &out, &olen, msg, sizeof msg);
        CHECK(st == SCRAM_STEP_SASL_ERROR && !out && s.state == SCRAM_FAILED, "bad final %zu: %d", i, st);
        scram_server_free(&s);
    }
    const char *bad_firsts[] = {"n,,n=nobody,r=abc", "n,,n=user,r=abc,tokenauth=true", "y,,n=user,r=abc",
                                "n,,n=us=er,r=abc", "n,,r=abc", "n,,n=user,r=", "n,,n=user,r=abc,"};
    for (size_t i = 0; i < sizeof bad_firsts / sizeof bad_firsts[0]; i++) {
        scram_server_init(&s, SCRAM_SHA_256, rfc_lookup, NULL);
        st = scram_server_step(&s, (const uint8_t *)bad_firsts[i], strlen(bad_firsts[i]), &out, &olen, msg, sizeof msg);
        CHECK(st < 0 && !out, "bad first %zu: %d", i, st);
        scram_server_free(&s);
    }
    scram_server_init(&s, SCRAM_SHA_256, rfc_lookup, NULL);
    st = scram_server_step(&s, (const uint8_t *)"n,a=other,n=user,r=abc", 22, &out, &olen, msg, sizeof msg);
    CHECK(st == SCRAM_STEP_AUTH_ERROR && strstr(msg, "authorization id"), "authzid: %d %s", st, msg);
    scram_server_free(&s);
    /* an extension Kafka ignores, and a=user (same as n=) */
    scram_server_init(&s, SCRAM_SHA_256, rfc_lookup, NULL);
    st = scram_server_step(&s, (const uint8_t *)"n,a=user,n=user,r=abc,foo=bar", 29, &out, &olen, msg, sizeof msg);
    CHECK(st == SCRAM_STEP_CONTINUE, "extension: %d %s", st, msg);
    free(out);
    scram_server_free(&s);

    char name[32];
    CHECK(scram_username("a=2Cb=3Dc", 9, name) == 0 && strcmp(name, "a,b=c") == 0, "saslname %s", name);
    CHECK(scram_username("a=4", 3, name) < 0, "bad saslname");
}

/* SCRAM-SHA-512 key lengths and a full client computed with the same primitives */
static void test_sha512_roundtrip(void) {
    scram_credential c;
    CHECK(scram_credential_from_password(SCRAM_SHA_512, "secret", NULL, 0, 4096, &c) == 0 && c.key_len == 64 &&
              c.salt_len > 10,
          "sha512 credential");
    CHECK(scram_mechanism_from_name("SCRAM-SHA-512") == SCRAM_SHA_512 && scram_mechanism_from_name("PLAIN") == 0,
          "names");
}

static void test_jaas(void) {
    jaas_config c;
    char err[256];
    int rc = jaas_parse("org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" "
                        "password=\"admin-secret\" user_admin=\"admin-secret\" user_alice='alice \\\"x'; // c",
                        &c, err, sizeof err);
    CHECK(rc == 0 && c.nentries == 1, "parse: %s", err);
    if (rc == 0) {
        CHECK(strcmp(c.entries[0].login_module, "org.apache.kafka.common.security.plain.PlainLoginModule") == 0,
              "module %s", c.entries[0].login_module);
        CHECK(strcmp(c.entries[0].flag, "REQUIRED") == 0, "flag");
        const char *a = jaas_option_get(&c.entries[0], "user_alice");
        CHECK(a && strcmp(a, "alice \"x") == 0, "alice %s", a ? a : "(null)");
        CHECK(jaas_option_get(&c.entries[0], "username") && !jaas_option_get(&c.entries[0], "nope"), "options");
        jaas_free(&c);
    }
    CHECK(jaas_parse("Mod required a=\"b\"", &c, err, sizeof err) < 0 && strstr(err, "semi-colon"), "%s", err);
    CHECK(jaas_parse("Mod bogus a=\"b\";", &c, err, sizeof err) < 0 &&
              strcmp(err, "Invalid login module control flag 'bogus' in JAAS config") == 0,
          "%s", err);
    CHECK(jaas_parse("Mod required a=1;", &c, err, sizeof err) < 0 &&
              strcmp(err, "Value not specified for key 'a' in JAAS config") == 0,
          "%s", err);
    CHECK(jaas_parse("  ", &c, err, sizeof err) < 0 && strstr(err, "Login module not specified"), "%s", err);
    CHECK(jaas_parse("Mod", &c, err, sizeof err) < 0 && strstr(err, "control flag not specified"), "%s", err);
}

static const char *const base_cfg[] = {
    "sasl.enabled.mechanisms", "GSSAPI",
    "listener.name.sasl_plaintext.sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config",
    "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"a\" "
    "user_admin=\"a\" user_alice=\"alice-secret\";",
    NULL};

static void plain_token(const char *authz, const char *user, const char *pw, uint8_t *buf, size_t *len) {
    size_t n = 0;
    memcpy(buf + n, authz, strlen(authz)), n += strlen(authz);
    buf[n++] = 0;
    memcpy(buf + n, user, strlen(user)), n += strlen(user);
    buf[n++] = 0;
    memcpy(buf + n, pw, strlen(pw)), n += strlen(pw);
    *len = n;
}

static void test_state_machine(void) {
    sasl_server_config cfg;
    char err[512], why[256];
    cfg_table = base_cfg;
    int rc = sasl_server_config_load(&cfg, "SASL_PLAINTEXT", table_get, NULL, err, sizeof err);
    CHECK(rc == 0 && cfg.nmechanisms == 2, "config: %s", err);
    if (rc) return;
    sasl_session s;
    sasl_result r;
    uint8_t tok[128];
    size_t tl;

    /* happy path: ApiVersions, handshake v1, authenticate v2 */
    sasl_session_init(&s, &cfg);
    CHECK(sasl_check_request(&s, KAPI_API_VERSIONS, 3, 0, why, sizeof why) == SASL_SERVE, "apiversions");
    sasl_on_api_versions(&s);
    CHECK(sasl_check_request(&s, KAPI_API_VERSIONS, 3, 0, why, sizeof why) == SASL_CLOSE, "second apiversions");
    sasl_session_free(&s);

    sasl_session_init(&s, &cfg);
    sasl_on_api_versions(&s);
    CHECK(sasl_check_request(&s, KAPI_SASL_HANDSHAKE, 1, 0, why, sizeof why) == SASL_SERVE, "handshake allowed");
    CHECK(sasl_handshake(&s, 1, "PLAIN", 5, why, sizeof why) == 0, "handshake PLAIN");
    CHECK(sasl_check_request(&s, KAPI_METADATA, 12, 0, why, sizeof why) == SASL_CLOSE &&
              strcmp(why, "Unexpected Kafka request of type Metadata during SASL authentication.") == 0,
          "metadata during auth: %s", why);
    sasl_session_free(&s);

    sasl_session_init(&s, &cfg);
    CHECK(sasl_handshake(&s, 1, "PLAIN", 5, why, sizeof why) == 0, "handshake without ApiVersions");
    CHECK(sasl_check_request(&s, KAPI_SASL_AUTHENTICATE, 2, 0, why, sizeof why) == SASL_SERVE, "auth allowed");
    plain_token("", "alice", "alice-secret", tok, &tl);
    sasl_authenticate(&s, 2, tok, tl, 1000, &r);
    CHECK(r.error_code == 0 && sasl_authenticated(&s) && strcmp(s.principal, "User:alice") == 0, "plain ok: %s",
          r.message);
    CHECK(r.session_lifetime_ms == 0, "no lifetime");
    sasl_result_free(&r);
    CHECK(sasl_check_request(&s, KAPI_METADATA, 12, 99999999, why, sizeof why) == SASL_SERVE, "served after auth");
    CHECK(sasl_check_request(&s, KAPI_SASL_AUTHENTICATE, 2, 0, why, sizeof why) == SASL_SERVE, "passes to handler");
    sasl_authenticate(&s, 2, tok, tl, 1000, &r);
    CHECK(r.error_code == KERR_ILLEGAL_SASL_STATE &&
              strcmp(r.message, "SaslAuthenticate request received after successful authentication") == 0 && !r.close,
          "authenticate again: %s", r.message);
    sasl_result_free(&r);
    sasl_session_free(&s);

    /* wrong password, unknown user, bad token shapes */
    struct {
        const char *authz, *user, *pw, *msg;
    } bad[] = {
        {"", "alice", "wrong", "Authentication failed: Invalid username or password"},
        {"", "bob", "x", "Authentication failed: Invalid username or password"},
        {"", "", "x", "Authentication failed: username not specified"},
        {"", "alice", "", "Authentication failed: password not specified"},
        {"admin", "alice", "alice-secret",
         "Authentication failed: Client requested an authorization id that is different from username"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sasl_session_init(&s, &cfg);
        sasl_handshake(&s, 1, "PLAIN", 5, why, sizeof why);
        plain_token(bad[i].authz, bad[i].user, bad[i].pw, tok, &tl);
        sasl_authenticate(&s, 1, tok, tl, 0, &r);
        CHECK(r.error_code == KERR_SASL_AUTHENTICATION_FAILED && r.close && strcmp(r.message, bad[i].msg) == 0 &&
                  !r.send_nothing,
              "bad %zu: %s", i, r.message);
        CHECK(sasl_check_request(&s, KAPI_METADATA, 1, 0, why, sizeof why) == SASL_CLOSE, "failed stays closed");
        sasl_result_free(&r);
        sasl_session_free(&s);
    }
    sasl_session_init(&s, &cfg);
    sasl_handshake(&s, 1, "PLAIN", 5, why, sizeof why);
    sasl_authenticate(&s, 1, (const uint8_t *)"alice", 5, 0, &r);
    CHECK(r.error_code == KERR_SASL_AUTHENTICATION_FAILED &&
              strcmp(r.message, "Invalid SASL/PLAIN response: expected 3 tokens, got 1") == 0,
          "1 token: %s", r.message);
    sasl_result_free(&r);
    sasl_session_free(&s);

    /* unsupported mechanism; SaslAuthenticate and others before the handshake */
    sasl_session_init(&s, &cfg);
    CHECK(sasl_handshake(&s, 1, "GSSAPI", 6, why, sizeof why) == KERR_UNSUPPORTED_SASL_MECHANISM &&
              strcmp(why, "Unsupported SASL mechanism GSSAPI") == 0,
          "gssapi: %s", why);
    sasl_session_free(&s);
    sasl_session_init(&s, &cfg);
    CHECK(sasl_check_request(&s, KAPI_SASL_AUTHENTICATE, 2, 0, why, sizeof why) == SASL_CLOSE &&
              strcmp(why, "Unexpected Kafka request of type SaslAuthenticate during SASL handshake.") == 0,
          "auth before handshake: %s", why);
    sasl_session_free(&s);
    sasl_session_init(&s, &cfg);
    CHECK(sasl_check_request(&s, KAPI_PRODUCE, 9, 0, why, sizeof why) == SASL_CLOSE, "produce before handshake");
    sasl_session_free(&s);

    /* v0 handshake: raw tokens */
    sasl_session_init(&s, &cfg);
    CHECK(sasl_handshake(&s, 0, "PLAIN", 5, why, sizeof why) == 0 && sasl_expects_raw_token(&s), "v0 raw");
    plain_token("", "alice", "nope", tok, &tl);
    sasl_authenticate(&s, 0, tok, tl, 0, &r);
    CHECK(r.error_code && r.send_nothing && r.close, "v0 failure closes");
    sasl_result_free(&r);
    sasl_session_free(&s);
    sasl_session_free(&s);
    sasl_server_config_free(&cfg);

    /* re-authentication and expiry */
    static const char *const reauth_cfg[] = {
        "sasl.enabled.mechanisms", "PLAIN", "connections.max.reauth.ms", "5000", "sasl.jaas.config",
        "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"a\" user_bob=\"b\";", NULL};
    cfg_table = reauth_cfg;
    rc = sasl_server_config_load(&cfg, "SASL_PLAINTEXT", table_get, NULL, err, sizeof err);
    CHECK(rc == 0 && cfg.max_reauth_ms == 5000, "reauth config: %s", err);
    sasl_session_init(&s, &cfg);
    sasl_handshake(&s, 1, "PLAIN", 5, why, sizeof why);
    plain_token("", "alice", "a", tok, &tl);
    sasl_authenticate(&s, 2, tok, tl, 1000, &r);
    CHECK(r.error_code == 0 && r.session_lifetime_ms == 5000, "lifetime %lld", (long long)r.session_lifetime_ms);
    sasl_result_free(&r);
    CHECK(sasl_check_request(&s, KAPI_FETCH, 12, 5999, why, sizeof why) == SASL_SERVE, "before expiry");
    CHECK(sasl_check_request(&s, KAPI_SASL_HANDSHAKE, 1, 5500, why, sizeof why) == SASL_SERVE, "reauth begins");
    CHECK(sasl_handshake(&s, 1, "PLAIN", 5, why, sizeof why) == 0, "reauth handshake");
    sasl_authenticate(&s, 2, tok, tl, 5600, &r);
    CHECK(r.error_code == 0 && s.expires_ms == 10600, "reauth ok: %s", r.message);
    sasl_result_free(&r);
    CHECK(sasl_check_request(&s, KAPI_FETCH, 12, 10601, why, sizeof why) == SASL_CLOSE, "expired: closes");
    /* a re-authentication may not change the principal */
    CHECK(sasl_check_request(&s, KAPI_SASL_HANDSHAKE, 1, 10601, why, sizeof why) == SASL_SERVE, "reauth 2");
    sasl_handshake(&s, 1, "PLAIN", 5, why, sizeof why);
    plain_token("", "bob", "b", tok, &tl);
    sasl_authenticate(&s, 2, tok, tl, 10700, &r);
    CHECK(r.error_code == KERR_SASL_AUTHENTICATION_FAILED &&
              strcmp(r.message, "Cannot change principals during re-authentication from User:alice: User:bob") == 0,
          "principal change: %s", r.message);
    sasl_result_free(&r);
    sasl_session_free(&s);
    sasl_server_config_free(&cfg);

    /* start-up errors */
    static const char *const no_jaas[] = {"sasl.enabled.mechanisms", "PLAIN", NULL};
    cfg_table = no_jaas;
    CHECK(sasl_server_config_load(&cfg, "SASL_PLAINTEXT", table_get, NULL, err, sizeof err) < 0 &&
              strstr(err, "Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry"),
          "no jaas: %s", err);
    static const char *const gssapi[] = {NULL};
    cfg_table = gssapi;
    CHECK(sasl_server_config_load(&cfg, "SASL_PLAINTEXT", table_get, NULL, err, sizeof err) < 0 && strstr(err, "GSSAPI"),
          "gssapi default: %s", err);
}

/* A full SCRAM-SHA-512 exchange through the session, the client side computed here. */
static int alice_lookup(void *ctx, const char *user, int mech, scram_credential *out) {
    (void)ctx;
    if (strcmp(user, "alice") != 0) return -1;
    return scram_credential_from_password(mech, "alice-secret", (const uint8_t *)"saltsalt", 8, 4096, out);
}

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void test_scram_session(void) {
    sasl_server_config cfg;
    char err[256], why[256];
    static const char *const c[] = {"sasl.enabled.mechanisms", "SCRAM-SHA-512", NULL};
    cfg_table = c;
    CHECK(sasl_server_config_load(&cfg, "SASL_PLAINTEXT", table_get, NULL, err, sizeof err) == 0, "%s", err);
    cfg.scram_lookup = alice_lookup;
    for (int good = 0; good < 2; good++) {
        sasl_session s;
        sasl_result r;
        sasl_session_init(&s, &cfg);
        CHECK(sasl_handshake(&s, 1, "SCRAM-SHA-512", 13, why, sizeof why) == 0, "handshake");
        const char *first = "n,,n=alice,r=clientnonce";
        sasl_authenticate(&s, 2, (const uint8_t *)first, strlen(first), 0, &r);
        CHECK(r.error_code == 0 && r.token && !sasl_authenticated(&s), "first");
        char server_first[256];
        snprintf(server_first, sizeof server_first, "%.*s", (int)r.token_len, (char *)r.token);
        sasl_result_free(&r);
        char nonce[128];
        const char *comma = strchr(server_first + 2, ',');
        snprintf(nonce, sizeof nonce, "%.*s", (int)(comma - server_first - 2), server_first + 2);
        uint8_t salted[64], ck[64], sk[64], sig[64], proof[64];
        unsigned n;
        scram_salted_password(SCRAM_SHA_512, good ? "alice-secret" : "bad", good ? 12 : 3, (const uint8_t *)"saltsalt",
                              8, 4096, salted);
        HMAC(EVP_sha512(), salted, 64, (const uint8_t *)"Client Key", 10, ck, &n);
        EVP_Digest(ck, 64, sk, &n, EVP_sha512(), NULL);
        char without[256], auth[700], final[400], p64[100];
        snprintf(without, sizeof without, "c=biws,r=%s", nonce);
        snprintf(auth, sizeof auth, "n=alice,r=clientnonce,%s,%s", server_first, without);
        HMAC(EVP_sha512(), sk, 64, (const uint8_t *)auth, strlen(auth), sig, &n);
        for (int i = 0; i < 64; i++) proof[i] = ck[i] ^ sig[i];
        base64_encode(proof, 64, p64);
        snprintf(final, sizeof final, "%s,p=%s", without, p64);
        sasl_authenticate(&s, 2, (const uint8_t *)final, strlen(final), 0, &r);
        if (good)
            CHECK(r.error_code == 0 && sasl_authenticated(&s) && strcmp(s.principal, "User:alice") == 0 && r.token &&
                      r.token[0] == 'v',
                  "scram-512 ok: %s", r.message);
        else
            CHECK(r.error_code == KERR_SASL_AUTHENTICATION_FAILED &&
                      strcmp(r.message, "Authentication failed during authentication due to invalid credentials with "
                                        "SASL mechanism SCRAM-SHA-512") == 0 &&
                      strcmp(r.reason, "Invalid client credentials") == 0,
                  "scram-512 bad: %s / %s", r.message, r.reason);
        sasl_result_free(&r);
        sasl_session_free(&s);
    }
    sasl_server_config_free(&cfg);
}

/* Our client against our server, both mechanisms, right and wrong password. */
static void test_scram_client(void) {
    for (int mech = SCRAM_SHA_256; mech <= SCRAM_SHA_512; mech++) {
        for (int good = 0; good < 2; good++) {
            scram_client cl;
            scram_server sv;
            char first[700], final[700], err[256], msg[256];
            uint8_t *out;
            size_t olen;
            CHECK(scram_client_first(&cl, mech, "alice", first, sizeof first) == 0, "client first");
            scram_server_init(&sv, mech, alice_lookup, NULL);
            int st = scram_server_step(&sv, (const uint8_t *)first, strlen(first), &out, &olen, msg, sizeof msg);
            CHECK(st == SCRAM_STEP_CONTINUE, "server first %s", msg);
            int rc = scram_client_final(&cl, out, olen, good ? "alice-secret" : "nope", final, sizeof final, err,
                                        sizeof err);
            free(out);
            CHECK(rc == 0, "client final: %s", err);
            st = scram_server_step(&sv, (const uint8_t *)final, strlen(final), &out, &olen, msg, sizeof msg);
            if (good) {
                CHECK(st == SCRAM_STEP_DONE && scram_client_verify(&cl, out, olen, err, sizeof err) == 0,
                      "mech %d verified: %d %s", mech, st, err);
                CHECK(scram_client_verify(&cl, (const uint8_t *)"v=AAAA", 6, err, sizeof err) < 0, "forged signature");
            } else {
                CHECK(st == SCRAM_STEP_SASL_ERROR, "mech %d wrong password refused", mech);
            }
            free(out);
            scram_server_free(&sv);
        }
    }
    scram_client cl;
    char first[700], final[700], err[256];
    scram_client_first(&cl, SCRAM_SHA_256, "a=b,c", first, sizeof first);
    CHECK(strncmp(first, "n,,n=a=3Db=2Cc,r=", 17) == 0, "saslname escaping: %s", first);
    CHECK(scram_client_final(&cl, (const uint8_t *)"r=other,s=QUJD,i=4096", 21, "x", final, sizeof final, err,
                             sizeof err) < 0,
          "foreign nonce refused");
}

/* OAUTHBEARER with Kafka's unsecured validator */
static int64_t fake_wall;
static int64_t wall(void) { return fake_wall; }

static char *b64url(const char *s) {
    static char buf[4][512];
    static int k;
    char *out = buf[k++ % 4];
    base64_encode((const uint8_t *)s, strlen(s), out);
    for (char *p = out; *p; p++) {
        if (*p == '+') *p = '-';
        else if (*p == '/') *p = '_';
        else if (*p == '=') *p = 0;
    }
    return out;
}

static size_t oauth_msg(uint8_t *buf, const char *authz, const char *header, const char *claims, const char *sig) {
    return (size_t)sprintf((char *)buf, "n,%s%s,\001auth=Bearer %s.%s.%s\001\001", authz[0] ? "a=" : "", authz,
                           b64url(header), b64url(claims), sig);
}

static void test_oauthbearer(void) {
    static const char *const c[] = {
        "sasl.enabled.mechanisms", "OAUTHBEARER", "connections.max.reauth.ms", "60000",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
        "unsecuredValidatorRequiredScope=\"read\";",
        NULL};
    cfg_table = c;
    sasl_server_config cfg;
    char err[256], why[256];
    CHECK(sasl_server_config_load(&cfg, "SASL_PLAINTEXT", table_get, NULL, err, sizeof err) == 0, "%s", err);
    cfg.wall_clock_ms = wall;
    fake_wall = 1000000000000LL; /* exp below is 1000000030 s: 30 s left */
    const char *hdr = "{\"alg\":\"none\"}";
    struct {
        const char *authz, *header, *claims, *sig;
        int outcome; /* 0 ok, 1 invalid_token challenge, 2 failed at once */
    } cases[] = {
        {"", hdr, "{\"sub\":\"alice\",\"exp\":1000000030,\"iat\":1000000000,\"scope\":\"read write\"}", "", 0},
        {"alice", hdr, "{\"sub\":\"alice\",\"exp\":1000000030,\"scope\":[\"read\"]}", "", 0},
        {"bob", hdr, "{\"sub\":\"alice\",\"exp\":1000000030,\"scope\":\"read\"}", "", 2},
        {"", hdr, "{\"sub\":\"alice\",\"exp\":999999999,\"scope\":\"read\"}", "", 1},
        {"", hdr, "{\"sub\":\"alice\",\"scope\":\"read\"}", "", 1},
        {"", hdr, "{\"exp\":1000000030,\"scope\":\"read\"}", "", 1},
        {"", hdr, "{\"sub\":\"alice\",\"exp\":1000000030,\"scope\":\"write\"}", "", 1},
        {"", "{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"exp\":1000000030,\"scope\":\"read\"}", "", 1},
        {"", hdr, "{\"sub\":\"alice\",\"exp\":1000000030,\"scope\":\"read\"}", "c2ln", 1},
        {"", hdr, "{\"sub\":\"alice\",\"exp\":1000000030,\"iat\":1000000040,\"scope\":\"read\"}", "", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sasl_session s;
        sasl_result r;
        uint8_t msg[1024];
        sasl_session_init(&s, &cfg);
        CHECK(sasl_handshake(&s, 1, "OAUTHBEARER", 11, why, sizeof why) == 0, "handshake");
        size_t n = oauth_msg(msg, cases[i].authz, cases[i].header, cases[i].claims, cases[i].sig);
        sasl_authenticate(&s, 2, msg, n, 5000, &r);
        if (cases[i].outcome == 0) {
            CHECK(r.error_code == 0 && sasl_authenticated(&s) && strcmp(s.principal, "User:alice") == 0 &&
                      r.session_lifetime_ms == 30000 && s.expires_ms == 35000,
                  "oauth %zu: %d %s %lld", i, r.error_code, r.message, (long long)r.session_lifetime_ms);
        } else if (cases[i].outcome == 1) {
            CHECK(r.error_code == 0 && !sasl_authenticated(&s) && r.token_len == 26 &&
                      memcmp(r.token, "{\"status\":\"invalid_token\"}", 26) == 0,
                  "oauth %zu: challenge (%s)", i, r.reason);
            sasl_result_free(&r);
            sasl_authenticate(&s, 2, (const uint8_t *)"\001", 1, 5000, &r);
            CHECK(r.error_code == KERR_SASL_AUTHENTICATION_FAILED && r.close &&
                      strcmp(r.message, "{\"status\":\"invalid_token\"}") == 0,
                  "oauth %zu: then failed: %s", i, r.message);
        } else {
            CHECK(r.error_code == KERR_SASL_AUTHENTICATION_FAILED && strstr(r.message, "authorization id (bob)"),
                  "oauth %zu: %s", i, r.message);
        }
        sasl_result_free(&r);
        sasl_session_free(&s);
    }
    /* malformed initial responses */
    const char *bad[] = {"n,,auth=Bearer x\001\001", "n,,\001auth=Basic abc\001\001", "n,,\001foo=bar\001\001",
                         "n,,\001auth=Bearer a b\001\001", "", "y,,\001auth=Bearer a.b.\001\001"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sasl_session s;
        sasl_result r;
        sasl_session_init(&s, &cfg);
        sasl_handshake(&s, 1, "OAUTHBEARER", 11, why, sizeof why);
        sasl_authenticate(&s, 2, (const uint8_t *)bad[i], strlen(bad[i]), 0, &r);
        CHECK(r.error_code == KERR_SASL_AUTHENTICATION_FAILED &&
                  strcmp(r.message, "Authentication failed during authentication due to invalid credentials with SASL "
                                    "mechanism OAUTHBEARER") == 0,
              "bad oauth %zu: %s", i, r.message);
        sasl_result_free(&r);
        sasl_session_free(&s);
    }
    sasl_server_config_free(&cfg);
}

int main(void) {
    test_rfc7677();
    test_sha512_roundtrip();
    test_jaas();
    test_state_machine();
    test_scram_session();
    test_scram_client();
    test_oauthbearer();
    printf("test_sasl: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
