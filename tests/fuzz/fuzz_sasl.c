/* fuzz_sasl.c - libFuzzer target for the SASL decoders: the JAAS config
 * parser, PLAIN tokens, the SCRAM server's client-first / client-final
 * parsing and proof check, the SCRAM client's server-first / server-final
 * parsing, and the authenticator state machine driven by arbitrary request
 * keys.
 *
 * Input: [u8 mode][u16 n][n bytes: first message][rest: second message]
 *   mode % 6: 0 JAAS text; 1 PLAIN token(s); 2 SCRAM-SHA-256 server;
 *             3 SCRAM-SHA-512 server; 4 SCRAM client; 5 OAUTHBEARER server
 *             (unsecured JWS: the initial response and its token's JSON).
 * The server knows user "user" (password "pencil", 4096 iterations) and
 * answers with the fixed nonce "N", so inputs can reach the proof check.
 * Whatever the bytes: no crash, no leak, and a session is authenticated
 * only with a principal "User:<name>".
 *   make fuzz-build && build-fuzz/fuzz_sasl tests/fuzz/corpus/sasl
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/kmsg.h"
#include "security/jaas.h"
#include "security/sasl.h"
#include "security/scram.h"
#include "util/log.h"

static scram_credential creds[3];

static int lookup(void *ctx, const char *user, int mech, scram_credential *out) {
    (void)ctx;
    if (strcmp(user, "user") != 0 || mech < 1 || mech > 2) return -1;
    *out = creds[mech];
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    for (int m = 1; m <= 2; m++)
        scram_credential_from_password(m, "pencil", (const uint8_t *)"salt", 4, 4096, &creds[m]);
    return 0;
}

static const char *const cfg_keys[] = {
    "sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
    "sasl.jaas.config",
    "org.apache.kafka.common.security.plain.PlainLoginModule required user_user=\"pencil\" user_a=\"b\";",
    "connections.max.reauth.ms", "1000", NULL};

static const char *get(void *ctx, const char *key) {
    (void)ctx;
    for (int i = 0; cfg_keys[i]; i += 2)
        if (strcmp(cfg_keys[i], key) == 0) return cfg_keys[i + 1];
    return NULL;
}

static void check_session(const sasl_session *s) {
    if (sasl_authenticated(s) && strncmp(s->principal, "User:", 5) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3 || size > (64u << 10)) return 0;
    int mode = data[0] % 6;
    size_t n = ((size_t)data[1] << 8 | data[2]);
    data += 3;
    size -= 3;
    if (n > size) n = size;
    const uint8_t *m1 = data, *m2 = data + n;
    size_t l1 = n, l2 = size - n;

    if (mode == 0) {
        char *text = malloc(size + 1);
        if (!text) return 0;
        memcpy(text, data, size);
        text[size] = 0;
        jaas_config c;
        char err[256];
        if (jaas_parse(text, &c, err, sizeof err) == 0) {
            for (int i = 0; i < c.nentries; i++) jaas_option_get(&c.entries[i], "username");
            jaas_free(&c);
        }
        free(text);
        return 0;
    }
    if (mode == 4) {
        scram_client c;
        char first[700], final[800], err[256];
        if (scram_client_first(&c, 1 + (l1 & 1), "user", first, sizeof first) == 0 &&
            scram_client_final(&c, m1, l1, "pencil", final, sizeof final, err, sizeof err) == 0)
            scram_client_verify(&c, m2, l2, err, sizeof err);
        return 0;
    }
    sasl_server_config cfg;
    char err[512], why[512];
    if (sasl_server_config_load(&cfg, "SASL_PLAINTEXT", get, NULL, err, sizeof err) != 0) abort();
    cfg.scram_lookup = lookup;
    sasl_session s;
    sasl_session_init(&s, &cfg);
    static const char *const mechs[] = {"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "", "OAUTHBEARER"};
    const char *mech = mechs[mode];
    int16_t version = (int16_t)(l2 & 1); /* v0 raw tokens or v1 */
    if (sasl_check_request(&s, KAPI_SASL_HANDSHAKE, version, 0, why, sizeof why) == SASL_SERVE &&
        sasl_handshake(&s, version, mech, strlen(mech), why, sizeof why) == 0) {
        if (s.scram_active) snprintf(s.scram.fixed_nonce, sizeof s.scram.fixed_nonce, "N");
        const uint8_t *msgs[2] = {m1, m2};
        size_t lens[2] = {l1, l2};
        for (int i = 0; i < 2; i++) {
            sasl_result r;
            sasl_authenticate(&s, 2, msgs[i], lens[i], 10, &r);
            check_session(&s);
            sasl_result_free(&r);
            if (r.close) break;
        }
        /* whatever state it ended in: requests are gated, never crash */
        for (size_t i = 0; i < l1 && i < 8; i++)
            sasl_check_request(&s, (int16_t)(m1[i] % 70), 0, (int64_t)i * 500, why, sizeof why);
    }
    sasl_session_free(&s);
    sasl_server_config_free(&cfg);
    return 0;
}
