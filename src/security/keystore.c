/* keystore.c - JKS and PKCS12 keystores (see keystore.h).
 *
 * JKS is Sun's own format (sun.security.provider.JavaKeyStore): a header,
 * entries, and a SHA-1 over the password, the words "Mighty Aphrodite" and
 * everything before it. A private key entry holds an EncryptedPrivateKeyInfo
 * whose algorithm is Sun's KeyProtector: a SHA-1 chain over the password and
 * a salt gives a keystream XORed with the PKCS#8 key, followed by a SHA-1
 * check of password and key. Passwords enter every digest as Java chars,
 * UTF-16 big-endian. PKCS12 is read by OpenSSL. As Java 9+ does in its
 * "compat" mode, either type name reads either format: the file's magic
 * number decides.
 */
#include "security/keystore.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>
#include <openssl/sha.h>

#define JKS_MAGIC 0xFEEDFEEDu
#define JKS_TAG_KEY 1
#define JKS_TAG_TRUSTED_CERT 2
#define JKS_MAX_ENTRIES 100000
#define JKS_MAX_CHAIN 1000
#define KEYSTORE_MAX_FILE (64u << 20)
/* sun.security.provider.KeyProtector's algorithm */
#define JKS_KEY_PROTECTOR_OID "1.3.6.1.4.1.42.2.17.1.1"

void keystore_contents_free(keystore_contents *c) {
    EVP_PKEY_free(c->key);
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    sk_X509_pop_free(c->trusted, X509_free);
    memset(c, 0, sizeof *c);
}

/* SHA-1 of up to three parts (c may be NULL); 0 or -1. */
static int sha1_parts(uint8_t out[SHA_DIGEST_LENGTH], const void *a, size_t alen, const void *b, size_t blen,
                      const void *c, size_t clen) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = m && EVP_DigestInit_ex(m, EVP_sha1(), NULL) && EVP_DigestUpdate(m, a, alen) &&
             EVP_DigestUpdate(m, b, blen) && (!c || EVP_DigestUpdate(m, c, clen)) && EVP_DigestFinal_ex(m, out, &n);
    EVP_MD_CTX_free(m);
    return ok && n == SHA_DIGEST_LENGTH ? 0 : -1;
}

/* ---- the password as Java chars: UTF-16BE of the (UTF-8) setting ---- */

/* malloc'd; *len its bytes. NULL on bad UTF-8 or out of memory. */
static uint8_t *password_utf16be(const char *pw, size_t *len) {
    size_t n = strlen(pw);
    uint8_t *out = malloc(n * 4 + 1); /* at most two UTF-16 units per input byte's code point */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)pw[i];
        uint32_t cp;
        size_t extra;
        if (c < 0x80) cp = c, extra = 0;
        else if ((c & 0xE0) == 0xC0) cp = c & 0x1F, extra = 1;
        else if ((c & 0xF0) == 0xE0) cp = c & 0x0F, extra = 2;
        else if ((c & 0xF8) == 0xF0) cp = c & 0x07, extra = 3;
        else goto bad;
        if (extra && i + extra >= n) goto bad;
        for (size_t k = 1; k <= extra; k++) {
            unsigned char cc = (unsigned char)pw[i + k];
            if ((cc & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (cc & 0x3F);
        }
        i += extra + 1;
        if (cp >= 0x10000) { /* a surrogate pair */
            uint32_t v = cp - 0x10000;
            uint16_t hi = (uint16_t)(0xD800 + (v >> 10)), lo = (uint16_t)(0xDC00 + (v & 0x3FF));
            out[o++] = (uint8_t)(hi >> 8), out[o++] = (uint8_t)hi;
            out[o++] = (uint8_t)(lo >> 8), out[o++] = (uint8_t)lo;
        } else {
            out[o++] = (uint8_t)(cp >> 8), out[o++] = (uint8_t)cp;
        }
    }
    *len = o;
    return out;
bad:
    free(out);
    return NULL;
}

/* ---- a bounds-checked reader of the JKS stream ---- */

typedef struct jks_reader {
    const uint8_t *p, *end;
    bool short_read;
} jks_reader;

static uint32_t rd_u32(jks_reader *r) {
    if (r->end - r->p < 4) {
        r->short_read = true;
        r->p = r->end;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    return v;
}

static const uint8_t *rd_bytes(jks_reader *r, size_t n) {
    if ((size_t)(r->end - r->p) < n) {
        r->short_read = true;
        r->p = r->end;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

/* Java's DataOutput.writeUTF: a 2-byte length and the bytes. */
static void skip_utf(jks_reader *r) {
    const uint8_t *l = rd_bytes(r, 2);
    if (l) rd_bytes(r, (size_t)l[0] << 8 | l[1]);
}

/* A certificate (version 2 stores its type first, always "X.509" for us). */
static X509 *rd_cert(jks_reader *r, uint32_t version, char *err, size_t errlen) {
    if (version == 2) skip_utf(r);
    uint32_t len = rd_u32(r);
    const uint8_t *der = rd_bytes(r, len);
    if (!der) return NULL;
    const unsigned char *pp = der;
    X509 *x = d2i_X509(NULL, &pp, (long)len);
    if (!x || pp != der + len) {
        X509_free(x);
        snprintf(err, errlen, "a certificate of the keystore cannot be parsed");
        ERR_clear_error();
        return NULL;
    }
    return x;
}

/* KeyProtector.recover: the PKCS#8 key inside an EncryptedPrivateKeyInfo. */
static EVP_PKEY *recover_key(const uint8_t *der, size_t len, const uint8_t *pw, size_t pwlen, char *err,
                             size_t errlen) {
    const unsigned char *pp = der;
    X509_SIG *sig = d2i_X509_SIG(NULL, &pp, (long)len);
    if (!sig) {
        ERR_clear_error();
        snprintf(err, errlen, "a private key entry cannot be parsed");
        return NULL;
    }
    const X509_ALGOR *alg;
    const ASN1_OCTET_STRING *data;
    X509_SIG_get0(sig, &alg, &data);
    const ASN1_OBJECT *oid;
    X509_ALGOR_get0(&oid, NULL, NULL, alg);
    char oidtxt[80];
    OBJ_obj2txt(oidtxt, sizeof oidtxt, oid, 1);
    EVP_PKEY *key = NULL;
    uint8_t *plain = NULL;
    size_t klen = 0;
    size_t dlen = (size_t)ASN1_STRING_length(data);
    const uint8_t *d = ASN1_STRING_get0_data(data);
    if (strcmp(oidtxt, JKS_KEY_PROTECTOR_OID) != 0) {
        snprintf(err, errlen, "the private key is protected with %s, which Samsa does not read "
                              "(JKS keys are protected with %s)", oidtxt, JKS_KEY_PROTECTOR_OID);
        goto out;
    }
    if (dlen <= 2 * SHA_DIGEST_LENGTH) {
        snprintf(err, errlen, "a private key entry is too short");
        goto out;
    }
    klen = dlen - 2 * SHA_DIGEST_LENGTH;
    const uint8_t *salt = d, *enc = d + SHA_DIGEST_LENGTH, *check = d + SHA_DIGEST_LENGTH + klen;
    plain = malloc(klen);
    if (!plain) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    uint8_t digest[SHA_DIGEST_LENGTH];
    memcpy(digest, salt, sizeof digest);
    for (size_t off = 0; off < klen; off += SHA_DIGEST_LENGTH) {
        if (sha1_parts(digest, pw, pwlen, digest, sizeof digest, NULL, 0) < 0) {
            snprintf(err, errlen, "SHA-1 failed");
            goto out;
        }
        for (size_t k = 0; k < SHA_DIGEST_LENGTH && off + k < klen; k++) plain[off + k] = enc[off + k] ^ digest[k];
    }
    uint8_t mac[SHA_DIGEST_LENGTH];
    if (sha1_parts(mac, pw, pwlen, plain, klen, NULL, 0) < 0 || CRYPTO_memcmp(mac, check, sizeof mac) != 0) {
        snprintf(err, errlen, "Cannot recover key");
        goto out;
    }
    const unsigned char *kp = plain;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &kp, (long)klen);
    key = p8 ? EVP_PKCS82PKEY(p8) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (!key) {
        ERR_clear_error();
        snprintf(err, errlen, "the private key cannot be parsed");
    }
out:
    if (plain) OPENSSL_cleanse(plain, klen);
    free(plain);
    X509_SIG_free(sig);
    return key;
}

int keystore_parse_jks(const uint8_t *data, size_t len, const char *store_password, const char *key_password,
                       int want_key, keystore_contents *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    size_t spwlen = 0, kpwlen = 0;
    uint8_t *spw = store_password ? password_utf16be(store_password, &spwlen) : NULL;
    const char *kp_text = key_password ? key_password : store_password;
    uint8_t *kpw = kp_text ? password_utf16be(kp_text, &kpwlen) : NULL;
    int rc = -1;
    out->chain = sk_X509_new_null();
    out->trusted = sk_X509_new_null();
    if ((store_password && !spw) || (kp_text && !kpw) || !out->chain || !out->trusted) {
        snprintf(err, errlen, "a password is not valid UTF-8, or out of memory");
        goto out;
    }
    if (len < 12 + SHA_DIGEST_LENGTH) {
        snprintf(err, errlen, "the keystore is too short (%zu bytes)", len);
        goto out;
    }
    /* the integrity check first: a wrong password should say so, not "cannot parse" */
    if (store_password) {
        uint8_t mac[SHA_DIGEST_LENGTH];
        if (sha1_parts(mac, spw, spwlen, "Mighty Aphrodite", 16, data, len - SHA_DIGEST_LENGTH) < 0 ||
            CRYPTO_memcmp(mac, data + len - SHA_DIGEST_LENGTH, sizeof mac) != 0) {
            snprintf(err, errlen, "Keystore was tampered with, or password was incorrect");
            goto out;
        }
    }
    jks_reader r = {data, data + len - SHA_DIGEST_LENGTH, false};
    uint32_t magic = rd_u32(&r), version = rd_u32(&r), count = rd_u32(&r);
    if (magic != JKS_MAGIC || (version != 1 && version != 2)) {
        snprintf(err, errlen, "Invalid keystore format");
        goto out;
    }
    if (count > JKS_MAX_ENTRIES) {
        snprintf(err, errlen, "the keystore says it has %u entries", count);
        goto out;
    }
    for (uint32_t i = 0; i < count && !r.short_read; i++) {
        uint32_t tag = rd_u32(&r);
        skip_utf(&r);        /* alias */
        rd_bytes(&r, 8);     /* creation date */
        if (tag == JKS_TAG_KEY) {
            uint32_t klen = rd_u32(&r);
            const uint8_t *kder = rd_bytes(&r, klen);
            uint32_t nchain = rd_u32(&r);
            if (r.short_read) break;
            if (nchain > JKS_MAX_CHAIN) {
                snprintf(err, errlen, "a key entry says it has %u certificates", nchain);
                goto out;
            }
            bool first_key = want_key && !out->key; /* a truststore reads no keys (as Java's PKIX) */
            if (first_key) {
                if (!kpw) {
                    snprintf(err, errlen, "a password is needed to read the private key");
                    goto out;
                }
                out->key = recover_key(kder, klen, kpw, kpwlen, err, errlen);
                if (!out->key) goto out;
            }
            for (uint32_t c = 0; c < nchain; c++) {
                X509 *x = rd_cert(&r, version, err, errlen);
                if (!x) {
                    if (r.short_read) break;
                    goto out;
                }
                if (!first_key) X509_free(x); /* only the first key entry is used */
                else if (c == 0) out->leaf = x;
                else sk_X509_push(out->chain, x);
            }
            if (first_key && !out->leaf && !r.short_read) {
                snprintf(err, errlen, "the key entry has no certificate");
                goto out;
            }
        } else if (tag == JKS_TAG_TRUSTED_CERT) {
            X509 *x = rd_cert(&r, version, err, errlen);
            if (!x) {
                if (r.short_read) break;
                goto out;
            }
            sk_X509_push(out->trusted, x);
        } else {
            snprintf(err, errlen, "Unrecognized keystore entry: %u", tag);
            goto out;
        }
    }
    if (r.short_read) {
        snprintf(err, errlen, "the keystore ends inside an entry");
        goto out;
    }
    if (want_key && !out->key) {
        snprintf(err, errlen, "the keystore has no private key entry");
        goto out;
    }
    rc = 0;
out:
    if (spw) OPENSSL_cleanse(spw, spwlen);
    if (kpw) OPENSSL_cleanse(kpw, kpwlen);
    free(spw);
    free(kpw);
    if (rc) keystore_contents_free(out);
    return rc;
}

static int parse_pkcs12(const uint8_t *data, size_t len, const char *store_password, const char *key_password,
                        int want_key, keystore_contents *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const unsigned char *pp = data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &pp, (long)len);
    int rc = -1;
    if (!p12) {
        snprintf(err, errlen, "the file is neither a JKS nor a PKCS12 keystore");
        goto out;
    }
    if (store_password && PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, store_password, -1)) {
        snprintf(err, errlen, "keystore password was incorrect");
        goto out;
    }
    /* keytool makes the key's password the store's; a different ssl.key.password is tried first */
    STACK_OF(X509) *certs = NULL;
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    const char *pass = key_password ? key_password : store_password;
    if (!PKCS12_parse(p12, pass, &key, &leaf, &certs) &&
        (!key_password || !store_password || !PKCS12_parse(p12, store_password, &key, &leaf, &certs))) {
        if (pass) snprintf(err, errlen, "Cannot recover key");
        else snprintf(err, errlen, "its contents are encrypted and no password was given");
        goto out;
    }
    out->key = key;
    out->leaf = leaf;
    out->chain = certs ? certs : sk_X509_new_null();
    out->trusted = sk_X509_new_null();
    if (!out->chain || !out->trusted) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* a truststore: every certificate it holds */
    if (leaf && X509_up_ref(leaf)) sk_X509_push(out->trusted, leaf);
    for (int i = 0; i < sk_X509_num(out->chain); i++) {
        X509 *x = sk_X509_value(out->chain, i);
        if (X509_up_ref(x)) sk_X509_push(out->trusted, x);
    }
    if (want_key && (!out->key || !out->leaf)) {
        snprintf(err, errlen, "the keystore has no private key entry");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    PKCS12_free(p12);
    if (rc) keystore_contents_free(out);
    return rc;
}

int keystore_load(const char *path, const char *type, const char *store_password, const char *key_password,
                  int want_key, keystore_contents *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (strcasecmp(type, "JKS") != 0 && strcasecmp(type, "PKCS12") != 0) {
        snprintf(err, errlen, "%s not found", type); /* Java's KeyStoreException */
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= KEYSTORE_MAX_FILE) {
                snprintf(err, errlen, "the file is larger than %u bytes", KEYSTORE_MAX_FILE);
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read the file");
        goto fail;
    }
    fclose(f);
    f = NULL;
    int rc = len >= 4 && buf[0] == 0xFE && buf[1] == 0xED && buf[2] == 0xFE && buf[3] == 0xED
                 ? keystore_parse_jks(buf, len, store_password, key_password, want_key, out, err, errlen)
                 : parse_pkcs12(buf, len, store_password, key_password, want_key, out, err, errlen);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
fail:
    if (f) fclose(f);
    free(buf);
    return -1;
}
