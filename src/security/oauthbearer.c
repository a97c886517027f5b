/* oauthbearer.c - OAUTHBEARER initial responses and unsecured JWS
 * validation (see oauthbearer.h), with the checks and messages of Kafka's
 * OAuthBearerClientInitialResponse, OAuthBearerUnsecuredJws and
 * OAuthBearerValidationUtils. */
#include "security/oauthbearer.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void oauth_validator_defaults(oauth_validator *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->principal_claim, sizeof v->principal_claim, "sub");
    snprintf(v->scope_claim, sizeof v->scope_claim, "scope");
}

static bool saslname_char(unsigned char c) { return c >= 0x01 && c <= 0x7F && c != '=' && c != ','; }
static bool key_char(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static bool value_char(unsigned char c) { return (c >= 0x21 && c <= 0x7E) || c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool token_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

int oauth_parse_initial_response(const uint8_t *in, size_t len, char **token, char *authzid, size_t authzid_len,
                                 char *err, size_t errlen) {
    const char *p = (const char *)in, *end = p + len;
    *token = NULL;
    authzid[0] = 0;
    const char *bad = "Invalid OAUTHBEARER client first message";
    if (len < 5 || p[0] != 'n' || p[1] != ',') goto invalid;
    p += 2;
    if (p + 2 <= end && p[0] == 'a' && p[1] == '=') {
        const char *a = p += 2;
        while (p < end && *p != ',') {
            if (*p == '=' && end - p >= 3 && (!memcmp(p, "=2C", 3) || !memcmp(p, "=3D", 3))) p += 3;
            else if (saslname_char((unsigned char)*p)) p++;
            else goto invalid;
        }
        if (p == a) goto invalid;
        snprintf(authzid, authzid_len, "%.*s", (int)(p - a), a);
    }
    if (p >= end || *p++ != ',' || p >= end || *p++ != 0x01) goto invalid;
    const char *auth = NULL;
    size_t auth_len = 0;
    /* (key=value\x01)* then \x01 */
    while (p < end && *p != 0x01) {
        const char *k = p;
        while (p < end && key_char((unsigned char)*p)) p++;
        if (p == k || p >= end || *p != '=') goto invalid;
        size_t kl = (size_t)(p - k);
        const char *v = ++p;
        while (p < end && value_char((unsigned char)*p)) p++;
        if (p == v || p >= end || *p != 0x01) goto invalid;
        if (kl == 4 && memcmp(k, "auth", 4) == 0) {
            auth = v;
            auth_len = (size_t)(p - v);
        }
        p++;
    }
    if (p >= end || *p != 0x01 || p + 1 != end) goto invalid;
    if (!auth) {
        snprintf(err, errlen, "%s: 'auth' not specified", bad);
        return -1;
    }
    /* "(?<scheme>\w+)[ ]+(?<token>[-_.a-zA-Z0-9]+)" */
    const char *s = auth, *aend = auth + auth_len;
    while (s < aend && (token_char((unsigned char)*s) && *s != '-' && *s != '.')) s++;
    size_t scheme_len = (size_t)(s - auth);
    const char *sp = s;
    while (s < aend && *s == ' ') s++;
    const char *t = s;
    while (s < aend && token_char((unsigned char)*s)) s++;
    if (!scheme_len || s == sp || t == s || s != aend) {
        snprintf(err, errlen, "%s: invalid 'auth' format", bad);
        return -1;
    }
    if (scheme_len != 6 || strncasecmp(auth, "bearer", 6) != 0) {
        snprintf(err, errlen, "Invalid scheme in OAUTHBEARER client first message: %.*s", (int)scheme_len, auth);
        return -1;
    }
    *token = strndup(t, (size_t)(s - t));
    if (!*token) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
invalid:
    snprintf(err, errlen, "%s", bad);
    return -1;
}

/* base64url without padding (JWS compact serialization) into a JSON object. */
static json_t *b64url_json(const char *s, size_t len) {
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (len % 4 == 1) return NULL;
    uint8_t *out = malloc(len * 3 / 4 + 3);
    if (!out) return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *pos = memchr(alpha, s[i], 64);
        if (!pos || !s[i]) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)(pos - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    json_error_t e;
    json_t *j = json_loadb((const char *)out, o, JSON_REJECT_DUPLICATES, &e);
    free(out);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* A claim that must be a number of seconds, or absent. */
static int number_claim(json_t *claims, const char *name, double *out, bool *present, char *err, size_t errlen) {
    json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (!v) return 0;
    if (!json_is_number(v)) {
        snprintf(err, errlen, "The '%s' claim was not of type Number", name);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static bool scope_has(json_t *scope, const char *want, size_t wl) {
    if (json_is_string(scope)) {
        const char *s = json_string_value(scope);
        while (*s) {
            while (*s == ' ') s++;
            const char *e = s;
            while (*e && *e != ' ') e++;
            if ((size_t)(e - s) == wl && memcmp(s, want, wl) == 0) return true;
            s = e;
        }
    } else if (json_is_array(scope)) {
        size_t i;
        json_t *x;
        json_array_foreach(scope, i, x) if (json_is_string(x) && strlen(json_string_value(x)) == wl &&
                                            memcmp(json_string_value(x), want, wl) == 0) return true;
    }
    return false;
}

int oauth_validate_unsecured(const oauth_validator *v, const char *token, int64_t now_ms, oauth_token *out, char *err,
                             size_t errlen) {
    memset(out, 0, sizeof *out);
    if (strstr(token, "..")) {
        snprintf(err, errlen, "Malformed compact serialization contains '..'");
        return -1;
    }
    const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.')) {
        snprintf(err, errlen, "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values");
        return -1;
    }
    json_t *header = b64url_json(token, (size_t)(d1 - token));
    json_t *claims = b64url_json(d1 + 1, (size_t)(d2 - d1 - 1));
    int rc = -1;
    if (!header || !claims) {
        snprintf(err, errlen, "Invalid unsecured JWS: a part is not Base64URL-encoded JSON");
        goto out;
    }
    json_t *alg = json_object_get(header, "alg");
    if (!alg) {
        snprintf(err, errlen, "JWS header must have an Algorithm value");
        goto out;
    }
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "none") != 0) {
        snprintf(err, errlen, "Unsecured JWS must have 'none' for an algorithm");
        goto out;
    }
    if (d2[1]) {
        snprintf(err, errlen, "Unsecured JWS must not contain a digital signature");
        goto out;
    }
    double exp = 0, iat = 0;
    bool has_exp, has_iat;
    if (number_claim(claims, "exp", &exp, &has_exp, err, errlen) < 0 ||
        number_claim(claims, "iat", &iat, &has_iat, err, errlen) < 0)
        goto out;
    if (!has_exp) {
        snprintf(err, errlen, "No expiration time in JWT");
        goto out;
    }
    json_t *sub = json_object_get(claims, v->principal_claim);
    if (!sub) {
        snprintf(err, errlen, "No principal name in JWT claim: %s", v->principal_claim);
        goto out;
    }
    if (!json_is_string(sub) || !json_string_value(sub)[0]) {
        snprintf(err, errlen, "The %s claim had the incorrect type: %s", v->principal_claim,
                 json_is_string(sub) ? "String" : "Object");
        goto out;
    }
    if (strlen(json_string_value(sub)) >= sizeof out->principal) {
        snprintf(err, errlen, "The %s claim is too long", v->principal_claim);
        goto out;
    }
    if (has_iat && iat * 1000 > (double)(now_ms + v->clock_skew_ms)) {
        snprintf(err, errlen,
                 "The Issued At value (%f seconds) was after the indicated time (%lld ms) plus allowable clock skew "
                 "(%lld ms)",
                 iat, (long long)now_ms, (long long)v->clock_skew_ms);
        goto out;
    }
    if ((double)(now_ms - v->clock_skew_ms) >= exp * 1000) {
        snprintf(err, errlen,
                 "The indicated time (%lld ms) minus allowable clock skew (%lld ms) was on or after the Expiration "
                 "Time value (%f seconds)",
                 (long long)now_ms, (long long)v->clock_skew_ms, exp);
        goto out;
    }
    if (has_iat && exp <= iat) {
        snprintf(err, errlen, "The Expiration Time time (%f seconds) was not after the Issued At time (%f seconds)", exp,
                 iat);
        goto out;
    }
    json_t *scope = json_object_get(claims, v->scope_claim);
    for (const char *s = v->required_scope; *s;) {
        while (*s == ' ') s++;
        const char *e = s;
        while (*e && *e != ' ') e++;
        if (e > s && !scope_has(scope, s, (size_t)(e - s))) {
            snprintf(err, errlen, "The provided scope was missing a required scope (%.*s).  All required scope "
                                  "elements: %s",
                     (int)(e - s), s, v->required_scope);
            goto out;
        }
        s = e;
    }
    snprintf(out->principal, sizeof out->principal, "%s", json_string_value(sub));
    out->expires_wall_ms = isfinite(exp) && exp * 1000 < 9e18 ? (int64_t)(exp * 1000) : INT64_MAX;
    rc = 0;
out:
    json_decref(header);
    json_decref(claims);
    return rc;
}
