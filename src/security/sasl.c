/* sasl.c - the per-connection SASL authenticator (see sasl.h). Messages are
 * Kafka 3.6.1's (SaslServerAuthenticator, PlainSaslServer,
 * PlainServerCallbackHandler, ScramSaslServer). */
#include "security/sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <openssl/crypto.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

#define PLAIN_MODULE "org.apache.kafka.common.security.plain.PlainLoginModule"

/* ---- configuration ---- */

static void lower(const char *in, char *out, size_t outlen) {
    size_t n = 0;
    for (; in[n] && n + 1 < outlen; n++) out[n] = (in[n] >= 'A' && in[n] <= 'Z') ? (char)(in[n] + 32) : in[n];
    out[n] = 0;
}

/* listener.name.<l>.<key>, else <key> (Kafka's valuesWithPrefixOverride). */
static const char *listener_get(const char *listener, sasl_config_get_fn get, void *ctx, const char *key) {
    char lk[256], full[512];
    lower(listener, lk, sizeof lk);
    snprintf(full, sizeof full, "listener.name.%s.%s", lk, key);
    const char *v = get(ctx, full);
    return v ? v : get(ctx, key);
}

static void trim(const char **p, size_t *len) {
    while (*len && (**p == ' ' || **p == '\t')) (*p)++, (*len)--;
    while (*len && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t')) (*len)--;
}

int sasl_server_config_load(sasl_server_config *c, const char *listener, sasl_config_get_fn get, void *ctx,
                            char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    snprintf(c->listener, sizeof c->listener, "%s", listener);
    const char *mechs = listener_get(listener, get, ctx, "sasl.enabled.mechanisms");
    if (!mechs) mechs = "GSSAPI";
    for (const char *p = mechs; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *m = p;
        p = e ? e + 1 : p + len;
        trim(&m, &len);
        if (!len) continue;
        if (c->nmechanisms >= SASL_MAX_MECHANISMS || len >= sizeof c->mechanisms[0]) {
            snprintf(err, errlen, "Too many or too long SASL mechanisms in sasl.enabled.mechanisms for listener %s",
                     listener);
            return -1;
        }
        snprintf(c->mechanisms[c->nmechanisms++], sizeof c->mechanisms[0], "%.*s", (int)len, m);
    }
    for (int i = 0; i < c->nmechanisms; i++) {
        const char *m = c->mechanisms[i];
        if (strcmp(m, "PLAIN") && strcmp(m, "OAUTHBEARER") && !scram_mechanism_from_name(m)) {
            snprintf(err, errlen,
                     "SASL mechanism %s (sasl.enabled.mechanisms of listener %s) is not supported by Samsa; supported: "
                     "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER",
                     m, listener);
            return -1;
        }
    }
    if (sasl_mechanism_enabled(c, "PLAIN")) {
        /* JaasContext.loadServerContext: listener.name.<l>.plain.sasl.jaas.config, then sasl.jaas.config */
        const char *jaas = listener_get(listener, get, ctx, "plain.sasl.jaas.config");
        if (!jaas) jaas = listener_get(listener, get, ctx, "sasl.jaas.config");
        if (!jaas) {
            char lk[64];
            lower(listener, lk, sizeof lk);
            snprintf(err, errlen,
                     "Could not find a 'KafkaServer' or '%s.KafkaServer' entry in the JAAS configuration. System "
                     "property 'java.security.auth.login.config' is not set (set listener.name.%s.plain.sasl.jaas.config)",
                     lk, lk);
            return -1;
        }
        char jerr[256];
        if (jaas_parse(jaas, &c->plain, jerr, sizeof jerr) < 0) {
            snprintf(err, errlen, "Invalid JAAS configuration for listener %s: %s", listener, jerr);
            return -1;
        }
        if (c->plain.nentries != 1) {
            snprintf(err, errlen, "JAAS config property contains %d login modules, should be 1 module",
                     c->plain.nentries);
            jaas_free(&c->plain);
            return -1;
        }
    }
    oauth_validator_defaults(&c->oauth);
    if (sasl_mechanism_enabled(c, "OAUTHBEARER")) {
        /* Kafka's default OAuthBearerUnsecuredValidatorCallbackHandler, with
         * the options of the mechanism's JAAS entry when there is one */
        const char *jaas = listener_get(listener, get, ctx, "oauthbearer.sasl.jaas.config");
        if (!jaas) jaas = listener_get(listener, get, ctx, "sasl.jaas.config");
        jaas_config jc;
        char jerr[256];
        if (jaas && jaas_parse(jaas, &jc, jerr, sizeof jerr) < 0) {
            snprintf(err, errlen, "Invalid JAAS configuration for listener %s: %s", listener, jerr);
            jaas_free(&c->plain);
            return -1;
        }
        if (jaas) {
            const jaas_entry *e = &jc.entries[0];
            const char *v;
            if ((v = jaas_option_get(e, "unsecuredValidatorPrincipalClaimName")) && *v)
                snprintf(c->oauth.principal_claim, sizeof c->oauth.principal_claim, "%s", v);
            if ((v = jaas_option_get(e, "unsecuredValidatorScopeClaimName")) && *v)
                snprintf(c->oauth.scope_claim, sizeof c->oauth.scope_claim, "%s", v);
            if ((v = jaas_option_get(e, "unsecuredValidatorRequiredScope")))
                snprintf(c->oauth.required_scope, sizeof c->oauth.required_scope, "%s", v);
            if ((v = jaas_option_get(e, "unsecuredValidatorAllowableClockSkewMs")))
                c->oauth.clock_skew_ms = strtoll(v, NULL, 10);
            jaas_free(&jc);
        }
        if (c->oauth.clock_skew_ms < 0) {
            snprintf(err, errlen, "Allowable clock skew must not be negative: %lld", (long long)c->oauth.clock_skew_ms);
            jaas_free(&c->plain);
            return -1;
        }
    }
    const char *reauth = listener_get(listener, get, ctx, "connections.max.reauth.ms");
    c->max_reauth_ms = reauth ? strtoll(reauth, NULL, 10) : 0;
    return 0;
}

void sasl_server_config_free(sasl_server_config *c) { jaas_free(&c->plain); }

bool sasl_mechanism_enabled(const sasl_server_config *c, const char *mech) {
    for (int i = 0; i < c->nmechanisms; i++)
        if (strcmp(c->mechanisms[i], mech) == 0) return true;
    return false;
}

/* ---- session ---- */

void sasl_session_init(sasl_session *s, const sasl_server_config *cfg) {
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->state = SASL_HANDSHAKE_OR_VERSIONS;
}

void sasl_session_free(sasl_session *s) {
    if (s->scram_active) scram_server_free(&s->scram);
    s->scram_active = false;
}

bool sasl_authenticated(const sasl_session *s) { return s->state == SASL_COMPLETE; }

static const char *api_name(int16_t key) {
    const kapi_info *i = kapi_lookup(key);
    return i ? i->name : "UNKNOWN";
}

sasl_gate sasl_check_request(sasl_session *s, int16_t api_key, int16_t api_version, int64_t now_ms, char *why,
                             size_t whylen) {
    (void)api_version;
    switch (s->state) {
    case SASL_COMPLETE:
        /* KIP-368: a SaslHandshake on an authenticated connection re-authenticates. */
        if (api_key == KAPI_SASL_HANDSHAKE && s->cfg->max_reauth_ms > 0 && s->client_reauth) {
            s->state = SASL_HANDSHAKE;
            s->reauthenticating = true;
            return SASL_SERVE;
        }
        if (s->expires_ms > 0 && now_ms > s->expires_ms) {
            snprintf(why, whylen, "SASL session of %s expired (connections.max.reauth.ms) without re-authentication",
                     s->principal);
            return SASL_CLOSE;
        }
        return SASL_SERVE;
    case SASL_HANDSHAKE_OR_VERSIONS:
        if (api_key == KAPI_API_VERSIONS || api_key == KAPI_SASL_HANDSHAKE) return SASL_SERVE;
        break;
    case SASL_HANDSHAKE:
        if (api_key == KAPI_SASL_HANDSHAKE) return SASL_SERVE;
        break;
    case SASL_AUTHENTICATE:
        if (s->kafka_headers && api_key == KAPI_SASL_AUTHENTICATE) return SASL_SERVE;
        snprintf(why, whylen, "Unexpected Kafka request of type %s during SASL authentication.", api_name(api_key));
        s->state = SASL_FAILED;
        return SASL_CLOSE;
    case SASL_FAILED:
        snprintf(why, whylen, "SASL authentication failed earlier on this connection");
        return SASL_CLOSE;
    }
    snprintf(why, whylen, "Unexpected Kafka request of type %s during SASL handshake.", api_name(api_key));
    s->state = SASL_FAILED;
    return SASL_CLOSE;
}

void sasl_on_api_versions(sasl_session *s) {
    if (s->state == SASL_HANDSHAKE_OR_VERSIONS) s->state = SASL_HANDSHAKE;
}

int16_t sasl_handshake(sasl_session *s, int16_t version, const char *mechanism, size_t mech_len, char *why,
                       size_t whylen) {
    char mech[64];
    snprintf(mech, sizeof mech, "%.*s", (int)(mech_len < 63 ? mech_len : 63), mechanism);
    if (s->state != SASL_HANDSHAKE_OR_VERSIONS && s->state != SASL_HANDSHAKE) {
        snprintf(why, whylen, "SaslHandshake received in SASL state %d", (int)s->state);
        s->state = SASL_FAILED;
        return KERR_ILLEGAL_SASL_STATE;
    }
    if (mech_len >= sizeof s->mechanism || strlen(mech) != mech_len || !sasl_mechanism_enabled(s->cfg, mech)) {
        snprintf(why, whylen, "Unsupported SASL mechanism %s", mech);
        s->state = SASL_FAILED;
        return KERR_UNSUPPORTED_SASL_MECHANISM;
    }
    if (s->reauthenticating && strcmp(mech, s->mechanism) != 0) {
        snprintf(why, whylen, "SASL mechanism '%s' requested by client is not supported for re-authentication of mechanism '%s'",
                 mech, s->mechanism);
        s->state = SASL_FAILED;
        return KERR_UNSUPPORTED_SASL_MECHANISM;
    }
    s->kafka_headers = version >= 1;
    memcpy(s->mechanism, mech, mech_len);
    s->mechanism[mech_len] = 0;
    if (s->scram_active) scram_server_free(&s->scram);
    s->scram_active = false;
    int sm = scram_mechanism_from_name(mech);
    if (sm) {
        scram_server_init(&s->scram, sm, s->cfg->scram_lookup, s->cfg->scram_ctx);
        s->scram_active = true;
    }
    s->state = SASL_AUTHENTICATE;
    return 0;
}

/* PlainSaslServer.evaluateResponse with PlainServerCallbackHandler. Returns
 * 0 with the user in user, or -1 with the client's message. */
static int plain_authenticate(const sasl_session *s, const uint8_t *tok, size_t len, char *user, size_t userlen,
                              char *msg, size_t msglen) {
    /* [authzid] NUL authcid NUL passwd: Kafka splits at most 4 times and wants exactly 3 tokens */
    const char *parts[4];
    size_t lens[4];
    int n = 0;
    size_t start = 0;
    for (int i = 0; i < 4; i++) {
        const uint8_t *z = start <= len ? memchr(tok + start, 0, len - start) : NULL;
        parts[n] = (const char *)tok + start;
        if (!z) {
            lens[n++] = len - start;
            break;
        }
        lens[n++] = (size_t)(z - (tok + start));
        start = (size_t)(z - tok) + 1;
    }
    if (n != 3) {
        snprintf(msg, msglen, "Invalid SASL/PLAIN response: expected 3 tokens, got %d", n);
        return -1;
    }
    if (lens[1] == 0) {
        snprintf(msg, msglen, "Authentication failed: username not specified");
        return -1;
    }
    if (lens[2] == 0) {
        snprintf(msg, msglen, "Authentication failed: password not specified");
        return -1;
    }
    char key[300];
    bool ok = false;
    if (lens[1] < 256 && s->cfg->plain.nentries > 0) {
        snprintf(key, sizeof key, "user_%.*s", (int)lens[1], parts[1]);
        const jaas_entry *e = &s->cfg->plain.entries[0];
        const char *expected = strcmp(e->login_module, PLAIN_MODULE) == 0 ? jaas_option_get(e, key) : NULL;
        /* constant time over the expected password's length */
        ok = expected && strlen(expected) == lens[2] && CRYPTO_memcmp(expected, parts[2], lens[2]) == 0;
    }
    if (!ok) {
        snprintf(msg, msglen, "Authentication failed: Invalid username or password");
        return -1;
    }
    if (lens[0] && (lens[0] != lens[1] || memcmp(parts[0], parts[1], lens[1]) != 0)) {
        snprintf(msg, msglen,
                 "Authentication failed: Client requested an authorization id that is different from username");
        return -1;
    }
    snprintf(user, userlen, "%.*s", (int)lens[1], parts[1]);
    return 0;
}

static void failed(sasl_session *s, sasl_result *r, const char *msg) {
    s->state = SASL_FAILED;
    r->error_code = KERR_SASL_AUTHENTICATION_FAILED;
    snprintf(r->message, sizeof r->message, "%s", msg);
    snprintf(r->reason, sizeof r->reason, "%s", msg);
    r->close = true;
    if (!s->kafka_headers) r->send_nothing = true; /* v0: the failure is the closed connection */
}

/* credential_lifetime_ms: how long the credential stays valid (an OAUTHBEARER
 * token's exp), -1 when it does not expire. */
static void complete_until(sasl_session *s, const char *user, int64_t now_ms, int64_t credential_lifetime_ms,
                           sasl_result *r);

static void complete(sasl_session *s, const char *user, int64_t now_ms, sasl_result *r) {
    complete_until(s, user, now_ms, -1, r);
}

static int64_t wall_ms(const sasl_server_config *c) {
    if (c->wall_clock_ms) return c->wall_clock_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void complete_until(sasl_session *s, const char *user, int64_t now_ms, int64_t credential_lifetime_ms,
                           sasl_result *r) {
    char principal[sizeof s->principal];
    snprintf(principal, sizeof principal, "User:%s", user);
    if (s->reauthenticating && strcmp(principal, s->principal) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "Cannot change principals during re-authentication from %s: %s", s->principal,
                 principal);
        failed(s, r, msg);
        return;
    }
    snprintf(s->principal, sizeof s->principal, "%s", principal);
    s->state = SASL_COMPLETE;
    s->reauthenticating = false;
    /* SaslServerAuthenticator.calcCompletionTimesAndReturnSessionLifetimeMs */
    int64_t lifetime = -1;
    if (credential_lifetime_ms >= 0 && s->cfg->max_reauth_ms > 0)
        lifetime = credential_lifetime_ms < s->cfg->max_reauth_ms ? credential_lifetime_ms : s->cfg->max_reauth_ms;
    else if (credential_lifetime_ms >= 0)
        lifetime = credential_lifetime_ms;
    else if (s->cfg->max_reauth_ms > 0)
        lifetime = s->cfg->max_reauth_ms;
    if (lifetime >= 0) {
        r->session_lifetime_ms = lifetime;
        s->expires_ms = now_ms + lifetime;
    } else {
        s->expires_ms = 0;
    }
}

/* OAuthBearerSaslServer.evaluateResponse with the unsecured validator. */
static void oauth_step(sasl_session *s, const uint8_t *token, size_t len, int64_t now_ms, sasl_result *r) {
    if (len == 1 && token[0] == 0x01 && s->oauth_error[0]) {
        failed(s, r, s->oauth_error); /* the client acknowledged our error */
        snprintf(r->reason, sizeof r->reason, "%s: %s", s->oauth_error, s->oauth_reason);
        return;
    }
    s->oauth_error[0] = 0;
    char *jws = NULL, authzid[256], err[500];
    if (oauth_parse_initial_response(token, len, &jws, authzid, sizeof authzid, err, sizeof err) < 0) {
        char generic[256];
        snprintf(generic, sizeof generic,
                 "Authentication failed during %s due to invalid credentials with SASL mechanism OAUTHBEARER",
                 s->reauthenticating ? "re-authentication" : "authentication");
        failed(s, r, generic);
        snprintf(r->reason, sizeof r->reason, "%s", err);
        return;
    }
    oauth_token t;
    int64_t wall = wall_ms(s->cfg);
    int rc = oauth_validate_unsecured(&s->cfg->oauth, jws, wall, &t, err, sizeof err);
    free(jws);
    if (rc < 0) {
        /* a challenge, not an error: the client answers %x01, then it fails */
        snprintf(s->oauth_error, sizeof s->oauth_error, "{\"status\":\"invalid_token\"}");
        r->token = (uint8_t *)strdup(s->oauth_error);
        r->token_len = r->token ? strlen(s->oauth_error) : 0;
        snprintf(r->reason, sizeof r->reason, "%s", err);
        snprintf(s->oauth_reason, sizeof s->oauth_reason, "%s", err);
        return;
    }
    if (authzid[0] && strcmp(authzid, t.principal) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg,
                 "Authentication failed: Client requested an authorization id (%s) that is different from the "
                 "token's principal name (%s)",
                 authzid, t.principal);
        failed(s, r, msg);
        return;
    }
    int64_t left = t.expires_wall_ms - wall;
    complete_until(s, t.principal, now_ms, left > 0 ? left : 0, r);
}

void sasl_authenticate(sasl_session *s, int16_t version, const uint8_t *token, size_t len, int64_t now_ms,
                       sasl_result *r) {
    memset(r, 0, sizeof *r);
    if (s->state != SASL_AUTHENTICATE) {
        /* KafkaApis: SaslAuthenticate outside the exchange */
        r->error_code = KERR_ILLEGAL_SASL_STATE;
        snprintf(r->message, sizeof r->message, "%s",
                 s->state == SASL_COMPLETE ? "SaslAuthenticate request received after successful authentication"
                                           : "Unexpected SaslAuthenticate request");
        r->close = s->state != SASL_COMPLETE;
        if (s->state != SASL_COMPLETE) s->state = SASL_FAILED;
        return;
    }
    if (s->kafka_headers && version >= 1) s->client_reauth = true;
    char what[64];
    snprintf(what, sizeof what, "%s", s->reauthenticating ? "re-authentication" : "authentication");
    if (strcmp(s->mechanism, "PLAIN") == 0) {
        char user[256], msg[256];
        if (plain_authenticate(s, token, len, user, sizeof user, msg, sizeof msg) < 0) {
            failed(s, r, msg); /* SaslAuthenticationException: its message reaches the client */
            return;
        }
        complete(s, user, now_ms, r);
        return;
    }
    if (strcmp(s->mechanism, "OAUTHBEARER") == 0) {
        oauth_step(s, token, len, now_ms, r);
        return;
    }
    if (s->scram_active) {
        char msg[256];
        scram_step_result st = scram_server_step(&s->scram, token, len, &r->token, &r->token_len, msg, sizeof msg);
        if (st == SCRAM_STEP_CONTINUE) return;
        if (st == SCRAM_STEP_DONE) {
            complete(s, s->scram.username, now_ms, r);
            if (r->error_code) {
                free(r->token);
                r->token = NULL;
                r->token_len = 0;
            }
            return;
        }
        if (st == SCRAM_STEP_AUTH_ERROR) {
            failed(s, r, msg);
            return;
        }
        /* SaslException: the client gets the generic message, the log the reason */
        char generic[256];
        snprintf(generic, sizeof generic, "Authentication failed during %s due to invalid credentials with SASL mechanism %s",
                 what, s->mechanism);
        failed(s, r, generic);
        snprintf(r->reason, sizeof r->reason, "%s", msg);
        return;
    }
    failed(s, r, "Unexpected SASL mechanism state");
}

void sasl_result_free(sasl_result *r) {
    free(r->token);
    r->token = NULL;
}
