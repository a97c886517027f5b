/* scram.c - SCRAM-SHA-256/512 credentials and the server side of the
 * exchange (see scram.h). Message grammar as Kafka's ScramMessages:
 *
 *   client-first  = "n," [ "a=" saslname ] "," [ "m=" value "," ] "n=" saslname ",r=" printable *("," alpha "=" value)
 *   client-final  = "c=" base64 ",r=" printable *("," alpha "=" value) ",p=" base64
 *
 * Beyond Kafka 3.6.1 (later Kafka versions check it): the final message's
 * nonce must end with the one the server sent, and the channel binding must
 * be a gs2 header without channel binding (none is offered).
 */
#include "security/scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "util/base64.h"

int scram_mechanism_from_name(const char *name) {
    if (!name) return SCRAM_UNKNOWN;
    if (strcmp(name, "SCRAM-SHA-256") == 0) return SCRAM_SHA_256;
    if (strcmp(name, "SCRAM-SHA-512") == 0) return SCRAM_SHA_512;
    return SCRAM_UNKNOWN;
}

const char *scram_mechanism_name(int mech) {
    return mech == SCRAM_SHA_256 ? "SCRAM-SHA-256" : mech == SCRAM_SHA_512 ? "SCRAM-SHA-512" : "UNKNOWN";
}

size_t scram_key_len(int mech) { return mech == SCRAM_SHA_256 ? 32 : mech == SCRAM_SHA_512 ? 64 : 0; }

static const EVP_MD *digest_of(int mech) {
    return mech == SCRAM_SHA_256 ? EVP_sha256() : mech == SCRAM_SHA_512 ? EVP_sha512() : NULL;
}

static int hmac(int mech, const uint8_t *key, size_t klen, const void *data, size_t dlen, uint8_t *out) {
    unsigned int n = 0;
    const EVP_MD *md = digest_of(mech);
    if (!md || !HMAC(md, key, (int)klen, data, dlen, out, &n) || n != scram_key_len(mech)) return -1;
    return 0;
}

static int hash(int mech, const uint8_t *in, size_t len, uint8_t *out) {
    unsigned int n = 0;
    const EVP_MD *md = digest_of(mech);
    if (!md || !EVP_Digest(in, len, out, &n, md, NULL) || n != scram_key_len(mech)) return -1;
    return 0;
}

int scram_salted_password(int mech, const char *password, size_t password_len, const uint8_t *salt,
                          size_t salt_len, int32_t iterations, uint8_t *out) {
    const EVP_MD *md = digest_of(mech);
    if (!md || iterations <= 0) return -1;
    if (!PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, iterations, md,
                           (int)scram_key_len(mech), out))
        return -1;
    return 0;
}

int scram_credential_from_salted(int mech, const uint8_t *salted, const uint8_t *salt, size_t salt_len,
                                 int32_t iterations, scram_credential *out) {
    size_t kl = scram_key_len(mech);
    if (!kl || salt_len > SCRAM_MAX_SALT) return -1;
    uint8_t client_key[SCRAM_MAX_KEY];
    memset(out, 0, sizeof *out);
    if (hmac(mech, salted, kl, "Client Key", 10, client_key) < 0 || hash(mech, client_key, kl, out->stored_key) < 0 ||
        hmac(mech, salted, kl, "Server Key", 10, out->server_key) < 0)
        return -1;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    out->key_len = kl;
    out->iterations = iterations;
    OPENSSL_cleanse(client_key, sizeof client_key);
    return 0;
}

/* ScramFormatter.secureRandomString: a random 130-bit number in base 36. */
void scram_random_string(char *out, size_t outlen) {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t r[32];
    if (RAND_bytes(r, sizeof r) != 1) abort(); /* no entropy: never hand out a guessable nonce */
    size_t n = 0;
    for (size_t i = 0; i < sizeof r && n + 1 < outlen && n < 26; i++) out[n++] = digits[r[i] % 36];
    out[n] = 0;
}

int scram_credential_from_password(int mech, const char *password, const uint8_t *salt, size_t salt_len,
                                   int32_t iterations, scram_credential *out) {
    char rs[32];
    if (!salt) { /* Kafka's salt: the bytes of a random string */
        scram_random_string(rs, sizeof rs);
        salt = (const uint8_t *)rs;
        salt_len = strlen(rs);
    }
    uint8_t salted[SCRAM_MAX_KEY];
    if (scram_salted_password(mech, password, strlen(password), salt, salt_len, iterations, salted) < 0) return -1;
    int rc = scram_credential_from_salted(mech, salted, salt, salt_len, iterations, out);
    OPENSSL_cleanse(salted, sizeof salted);
    return rc;
}

int scram_username(const char *sasl_name, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (sasl_name[i] != '=') {
            out[n++] = sasl_name[i];
        } else if (i + 2 < len && sasl_name[i + 1] == '2' && sasl_name[i + 2] == 'C') {
            out[n++] = ',';
            i += 2;
        } else if (i + 2 < len && sasl_name[i + 1] == '3' && sasl_name[i + 2] == 'D') {
            out[n++] = '=';
            i += 2;
        } else {
            return -1;
        }
    }
    out[n] = 0;
    return 0;
}

void scram_server_init(scram_server *s, int mech, scram_lookup_fn lookup, void *ctx) {
    memset(s, 0, sizeof *s);
    s->mech = mech;
    s->lookup = lookup;
    s->lookup_ctx = ctx;
    s->state = SCRAM_RECEIVE_CLIENT_FIRST;
}

static void clear_credentials(scram_server *s) { OPENSSL_cleanse(&s->cred, sizeof s->cred); }

void scram_server_free(scram_server *s) {
    clear_credentials(s);
    free(s->client_first_bare);
    free(s->server_first);
    free(s->nonce);
    s->client_first_bare = s->server_first = s->nonce = NULL;
}

/* ---- message grammar ---- */

typedef struct cursor {
    const char *p, *end;
} cursor;

/* value chars: 0x01-0x7F except ',' (and '=' when safe). */
static bool value_char(unsigned char ch, bool allow_eq) { return ch >= 0x01 && ch <= 0x7F && ch != ',' && (allow_eq || ch != '='); }

/* One field up to the next ',' (or the end): at least one char of the class. */
static bool take(cursor *c, bool (*ok)(unsigned char), const char **start, size_t *len) {
    const char *q = c->p;
    while (q < c->end && *q != ',' && ok((unsigned char)*q)) q++;
    if (q == c->p || (q < c->end && *q != ',')) return false;
    *start = c->p;
    *len = (size_t)(q - c->p);
    c->p = q;
    return true;
}

static bool is_value(unsigned char ch) { return value_char(ch, true); }
static bool is_printable(unsigned char ch) { return ch >= 0x21 && ch <= 0x7E && ch != ','; }
static bool is_base64(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '/' || ch == '+' ||
           ch == '=';
}
/* saslname: value-safe chars or =2C / =3D (checked by scram_username). */
static bool is_saslname(unsigned char ch) { return value_char(ch, true); }

static bool lit(cursor *c, const char *s) {
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0) return false;
    c->p += n;
    return true;
}

static bool valid_saslname(const char *p, size_t len) {
    char tmp[512];
    return len < sizeof tmp && scram_username(p, len, tmp) == 0;
}

/* ("," alpha "=" value)* ; remembers whether tokenauth=true was given. */
static bool extensions(cursor *c, bool stop_at_proof, bool *tokenauth) {
    while (c->p < c->end && *c->p == ',') {
        if (stop_at_proof && c->end - c->p >= 3 && memcmp(c->p, ",p=", 3) == 0) return true;
        c->p++;
        const char *k = c->p;
        while (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z'))) c->p++;
        size_t klen = (size_t)(c->p - k);
        if (!klen || !lit(c, "=")) return false;
        const char *v;
        size_t vlen;
        if (!take(c, is_value, &v, &vlen)) return false;
        if (tokenauth && klen == 9 && memcmp(k, "tokenauth", 9) == 0 && vlen == 4 && strncasecmp(v, "true", 4) == 0)
            *tokenauth = true;
    }
    return true;
}

static char *dup_range(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* Kafka quotes the whole message in this error; keep it printable and short. */
static void quote_message(const uint8_t *in, size_t len, char *out, size_t outlen) {
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < outlen && n < 200; i++)
        out[n++] = (in[i] >= 0x20 && in[i] < 0x7F) ? (char)in[i] : '?';
    out[n] = 0;
}

static scram_step_result fail(scram_server *s, scram_step_result r, char *msg, size_t msglen, const char *fmt,
                              const char *arg) {
    snprintf(msg, msglen, fmt, arg);
    clear_credentials(s);
    s->state = SCRAM_FAILED;
    return r;
}

static scram_step_result client_first(scram_server *s, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                                      char *msg, size_t msglen) {
    char quoted[256];
    quote_message(in, len, quoted, sizeof quoted);
    cursor c = {(const char *)in, (const char *)in + len};
    const char *authz = NULL, *name, *nonce, *v;
    size_t authz_len = 0, name_len, nonce_len, vlen;
    bool tokenauth = false;
    if (memchr(in, 0, len)) return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "Invalid SCRAM client first message format: %s", quoted);
    bool ok = lit(&c, "n,");
    if (ok && lit(&c, "a=")) ok = take(&c, is_saslname, &authz, &authz_len) && valid_saslname(authz, authz_len);
    ok = ok && lit(&c, ",");
    const char *bare = c.p;
    if (ok && lit(&c, "m=")) ok = take(&c, is_value, &v, &vlen) && lit(&c, ",");
    if (ok) bare = c.p; /* Kafka's clientFirstMessageBare starts at n= */
    ok = ok && lit(&c, "n=") && take(&c, is_saslname, &name, &name_len) && valid_saslname(name, name_len);
    ok = ok && lit(&c, ",r=") && take(&c, is_printable, &nonce, &nonce_len);
    ok = ok && extensions(&c, false, &tokenauth) && c.p == c.end;
    if (!ok) return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "Invalid SCRAM client first message format: %s", quoted);
    if (name_len >= sizeof s->username)
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Authentication failed: Invalid user credentials");
    scram_username(name, name_len, s->username);
    if (tokenauth) /* no delegation tokens here: no token has an owner */
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "Token Authentication failed: Invalid tokenId : %s",
                    s->username);
    if (!s->lookup || s->lookup(s->lookup_ctx, s->username, s->mech, &s->cred) < 0)
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Authentication failed: Invalid user credentials");
    if (authz_len) {
        char az[512];
        scram_username(authz, authz_len, az);
        if (strcmp(az, s->username) != 0)
            return fail(s, SCRAM_STEP_AUTH_ERROR, msg, msglen, "%s",
                        "Authentication failed: Client requested an authorization id that is different from username");
    }
    if (s->cred.iterations < SCRAM_MIN_ITERATIONS) {
        char why[160];
        snprintf(why, sizeof why, "Iterations %d is less than the minimum %d for %s", s->cred.iterations,
                 SCRAM_MIN_ITERATIONS, scram_mechanism_name(s->mech));
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", why);
    }
    char server_nonce[64];
    if (s->fixed_nonce[0]) snprintf(server_nonce, sizeof server_nonce, "%s", s->fixed_nonce);
    else scram_random_string(server_nonce, sizeof server_nonce);
    char salt64[SCRAM_MAX_SALT * 4 / 3 + 8];
    base64_encode(s->cred.salt, s->cred.salt_len, salt64);
    s->client_first_bare = dup_range(bare, (size_t)(c.end - bare));
    size_t nl = nonce_len + strlen(server_nonce);
    s->nonce = malloc(nl + 1);
    size_t sfl = nl + strlen(salt64) + 32;
    s->server_first = malloc(sfl);
    if (!s->client_first_bare || !s->nonce || !s->server_first)
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Authentication failed: out of memory");
    memcpy(s->nonce, nonce, nonce_len);
    strcpy(s->nonce + nonce_len, server_nonce);
    int n = snprintf(s->server_first, sfl, "r=%s,s=%s,i=%d", s->nonce, salt64, s->cred.iterations);
    *out = (uint8_t *)dup_range(s->server_first, (size_t)n);
    if (!*out) return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Authentication failed: out of memory");
    *out_len = (size_t)n;
    s->state = SCRAM_RECEIVE_CLIENT_FINAL;
    return SCRAM_STEP_CONTINUE;
}

static scram_step_result client_final(scram_server *s, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                                      char *msg, size_t msglen) {
    char quoted[256];
    quote_message(in, len, quoted, sizeof quoted);
    cursor c = {(const char *)in, (const char *)in + len};
    const char *cb, *nonce, *proof;
    size_t cb_len, nonce_len, proof_len;
    bool ok = !memchr(in, 0, len) && lit(&c, "c=") && take(&c, is_base64, &cb, &cb_len);
    ok = ok && lit(&c, ",r=") && take(&c, is_printable, &nonce, &nonce_len) && extensions(&c, true, NULL);
    const char *without_proof_end = c.p;
    ok = ok && lit(&c, ",p=") && take(&c, is_base64, &proof, &proof_len) && c.p == c.end;
    uint8_t cbind[128], proof_bytes[SCRAM_MAX_KEY * 2];
    long cbl = -1, pl = -1;
    if (ok && base64_decoded_max(cb_len) <= sizeof cbind) cbl = base64_decode(cb, cb_len, cbind);
    if (ok && base64_decoded_max(proof_len) <= sizeof proof_bytes) pl = base64_decode(proof, proof_len, proof_bytes);
    if (!ok || cbl < 0 || pl < 0)
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "Invalid SCRAM client final message format: %s", quoted);
    /* later Kafka's check: the nonce must end with the one the server sent
     * (librdkafka 2.0 sends its own nonce once more in front of it) */
    size_t sn = strlen(s->nonce);
    if (nonce_len < sn || memcmp(nonce + nonce_len - sn, s->nonce, sn) != 0)
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Invalid client nonce in the final client message.");
    /* gs2 header: "n," [a=authzid] "," ; no channel binding is offered */
    if (cbl < 3 || cbind[0] != 'n' || cbind[1] != ',' || cbind[cbl - 1] != ',')
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Invalid SCRAM channel binding in the final client message.");
    size_t kl = s->cred.key_len;
    if ((size_t)pl != kl) return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Invalid client credentials");
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    size_t wl = (size_t)(without_proof_end - (const char *)in);
    size_t al = strlen(s->client_first_bare) + strlen(s->server_first) + wl + 2;
    char *auth = malloc(al + 1);
    if (!auth) return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Authentication failed: out of memory");
    snprintf(auth, al + 1, "%s,%s,%.*s", s->client_first_bare, s->server_first, (int)wl, (const char *)in);
    uint8_t sig[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], computed[SCRAM_MAX_KEY], server_sig[SCRAM_MAX_KEY];
    int rc = hmac(s->mech, s->cred.stored_key, kl, auth, al, sig);
    for (size_t i = 0; i < kl; i++) client_key[i] = sig[i] ^ proof_bytes[i];
    rc = rc < 0 ? rc : hash(s->mech, client_key, kl, computed);
    rc = rc < 0 ? rc : hmac(s->mech, s->cred.server_key, kl, auth, al, server_sig);
    free(auth);
    OPENSSL_cleanse(client_key, sizeof client_key);
    if (rc < 0 || CRYPTO_memcmp(computed, s->cred.stored_key, kl) != 0)
        return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Invalid client credentials");
    char sig64[SCRAM_MAX_KEY * 2];
    base64_encode(server_sig, kl, sig64);
    char *v = malloc(strlen(sig64) + 3);
    if (!v) return fail(s, SCRAM_STEP_SASL_ERROR, msg, msglen, "%s", "Authentication failed: out of memory");
    *out_len = (size_t)sprintf(v, "v=%s", sig64);
    *out = (uint8_t *)v;
    clear_credentials(s);
    s->state = SCRAM_COMPLETE;
    return SCRAM_STEP_DONE;
}

scram_step_result scram_server_step(scram_server *s, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                                    char *msg, size_t msglen) {
    *out = NULL;
    *out_len = 0;
    msg[0] = 0;
    switch (s->state) {
    case SCRAM_RECEIVE_CLIENT_FIRST: return client_first(s, in, len, out, out_len, msg, msglen);
    case SCRAM_RECEIVE_CLIENT_FINAL: return client_final(s, in, len, out, out_len, msg, msglen);
    default:
        snprintf(msg, msglen, "Unexpected challenge in Sasl server state %s",
                 s->state == SCRAM_COMPLETE ? "COMPLETE" : "FAILED");
        s->state = SCRAM_FAILED;
        return SCRAM_STEP_AUTH_ERROR; /* IllegalSaslStateException reaches the client */
    }
}

/* ---- client side ---- */

int scram_client_first(scram_client *c, int mech, const char *user, char *out, size_t outlen) {
    memset(c, 0, sizeof *c);
    c->mech = mech;
    c->key_len = scram_key_len(mech);
    scram_random_string(c->client_nonce, sizeof c->client_nonce);
    char name[512];
    size_t n = 0;
    for (const char *p = user; *p && n + 4 < sizeof name; p++) { /* ScramFormatter.saslName */
        if (*p == '=') n += (size_t)snprintf(name + n, sizeof name - n, "=3D");
        else if (*p == ',') n += (size_t)snprintf(name + n, sizeof name - n, "=2C");
        else name[n++] = *p;
    }
    name[n] = 0;
    int w = snprintf(c->client_first_bare, sizeof c->client_first_bare, "n=%s,r=%s", name, c->client_nonce);
    if (w < 0 || (size_t)w >= sizeof c->client_first_bare) return -1;
    w = snprintf(out, outlen, "n,,%s", c->client_first_bare);
    return w < 0 || (size_t)w >= outlen ? -1 : 0;
}

int scram_client_final(scram_client *c, const uint8_t *server_first, size_t len, const char *password, char *out,
                       size_t outlen, char *err, size_t errlen) {
    char sf[1024];
    if (len >= sizeof sf || memchr(server_first, 0, len)) {
        snprintf(err, errlen, "Invalid SCRAM server first message");
        return -1;
    }
    memcpy(sf, server_first, len);
    sf[len] = 0;
    /* r=<nonce>,s=<salt>,i=<iterations> */
    char *r = strstr(sf, "r="), *s = strstr(sf, ",s="), *i = strstr(sf, ",i=");
    if (r != sf || !s || !i || i < s) {
        snprintf(err, errlen, "Invalid SCRAM server first message format: %s", sf);
        return -1;
    }
    size_t nonce_len = (size_t)(s - (sf + 2));
    size_t cl = strlen(c->client_nonce);
    if (nonce_len <= cl || strncmp(sf + 2, c->client_nonce, cl) != 0) {
        snprintf(err, errlen, "Invalid server nonce: does not start with client nonce");
        return -1;
    }
    const char *salt64 = s + 3;
    size_t salt64_len = (size_t)(i - salt64);
    uint8_t salt[SCRAM_MAX_SALT * 2];
    long sl = base64_decoded_max(salt64_len) <= sizeof salt ? base64_decode(salt64, salt64_len, salt) : -1;
    long iterations = strtol(i + 3, NULL, 10);
    if (sl < 0 || iterations <= 0) {
        snprintf(err, errlen, "Invalid SCRAM server first message format: %s", sf);
        return -1;
    }
    if (iterations < SCRAM_MIN_ITERATIONS) {
        snprintf(err, errlen, "Requested iterations %ld is less than the minimum %d for %s", iterations,
                 SCRAM_MIN_ITERATIONS, scram_mechanism_name(c->mech));
        return -1;
    }
    size_t kl = c->key_len;
    uint8_t salted[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], stored[SCRAM_MAX_KEY], sig[SCRAM_MAX_KEY],
        proof[SCRAM_MAX_KEY], server_key[SCRAM_MAX_KEY];
    char without[700];
    int wl = snprintf(without, sizeof without, "c=biws,r=%.*s", (int)nonce_len, sf + 2);
    size_t al = strlen(c->client_first_bare) + len + (size_t)wl + 2;
    char *auth = malloc(al + 1);
    if (!auth || wl < 0 || (size_t)wl >= sizeof without) {
        free(auth);
        snprintf(err, errlen, "SCRAM message too long");
        return -1;
    }
    snprintf(auth, al + 1, "%s,%s,%s", c->client_first_bare, sf, without);
    int rc = scram_salted_password(c->mech, password, strlen(password), salt, (size_t)sl, (int32_t)iterations, salted);
    rc = rc < 0 ? rc : hmac(c->mech, salted, kl, "Client Key", 10, client_key);
    rc = rc < 0 ? rc : hash(c->mech, client_key, kl, stored);
    rc = rc < 0 ? rc : hmac(c->mech, stored, kl, auth, al, sig);
    rc = rc < 0 ? rc : hmac(c->mech, salted, kl, "Server Key", 10, server_key);
    rc = rc < 0 ? rc : hmac(c->mech, server_key, kl, auth, al, c->server_signature);
    free(auth);
    OPENSSL_cleanse(salted, sizeof salted);
    if (rc < 0) {
        snprintf(err, errlen, "Could not compute the SCRAM proof");
        return -1;
    }
    for (size_t k = 0; k < kl; k++) proof[k] = client_key[k] ^ sig[k];
    OPENSSL_cleanse(client_key, sizeof client_key);
    char p64[SCRAM_MAX_KEY * 2];
    base64_encode(proof, kl, p64);
    int n = snprintf(out, outlen, "%s,p=%s", without, p64);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "SCRAM message too long");
        return -1;
    }
    return 0;
}

int scram_client_verify(const scram_client *c, const uint8_t *server_final, size_t len, char *err, size_t errlen) {
    if (len >= 2 && server_final[0] == 'e' && server_final[1] == '=') {
        snprintf(err, errlen, "Sasl authentication using %s failed with error: %.*s", scram_mechanism_name(c->mech),
                 (int)(len - 2 < 200 ? len - 2 : 200), (const char *)server_final + 2);
        return -1;
    }
    uint8_t sig[SCRAM_MAX_KEY * 2];
    long sl = -1;
    if (len > 2 && server_final[0] == 'v' && server_final[1] == '=' && base64_decoded_max(len - 2) <= sizeof sig)
        sl = base64_decode((const char *)server_final + 2, len - 2, sig);
    if (sl != (long)c->key_len || CRYPTO_memcmp(sig, c->server_signature, c->key_len) != 0) {
        snprintf(err, errlen, "Invalid server signature in server final message");
        return -1;
    }
    return 0;
}
