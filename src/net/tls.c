/* tls.c - OpenSSL contexts and sessions from Kafka's ssl.* settings (see tls.h). */
#include "net/tls.h"

#include "security/keystore.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "security/ssl_principal.h"

struct tls_ctx {
    SSL_CTX *ssl;
    bool server;
    bool verify_host; /* ssl.endpoint.identification.algorithm=https (clients) */
    ssl_principal_mapper *mapper;
};

SSL_CTX *tls_ctx_ssl(const tls_ctx *t) { return t->ssl; }

void tls_ctx_free(tls_ctx *t) {
    if (!t) return;
    SSL_CTX_free(t->ssl);
    ssl_principal_mapper_free(t->mapper);
    free(t);
}

/* The first queued OpenSSL error as text (the queue is emptied). */
static void ssl_error_text(char *out, size_t outlen) {
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(out, outlen, "unknown error");
        return;
    }
    ERR_error_string_n(e, out, outlen);
    ERR_clear_error();
}

static const char *nonblank(const char *v) {
    if (!v) return NULL;
    while (isspace((unsigned char)*v)) v++;
    return *v ? v : NULL;
}

/* ---- PEM text as Kafka reads it ----
 * Inline values in a properties file lose their line breaks (a '\' at the
 * end of a line joins the next one), so blocks are found by their BEGIN and
 * END lines and the base64 between them is re-wrapped before OpenSSL reads
 * it. Text outside the blocks is ignored, as Kafka's PemParser does. */
char *tls_pem_normalize(const char *in) {
    size_t cap = strlen(in) * 2 + 256, o = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    const char *p = in;
    for (;;) {
        const char *b = strstr(p, "-----BEGIN ");
        if (!b) break;
        const char *lab = b + 11, *labend = strstr(lab, "-----");
        if (!labend) break;
        char label[64];
        size_t ll = (size_t)(labend - lab);
        if (ll >= sizeof label) break;
        memcpy(label, lab, ll);
        label[ll] = 0;
        char endline[96];
        snprintf(endline, sizeof endline, "-----END %s-----", label);
        const char *body = labend + 5, *e = strstr(body, endline);
        if (!e) break;
        o += (size_t)snprintf(out + o, cap - o, "-----BEGIN %s-----\n", label);
        int col = 0;
        for (const char *q = body; q < e; q++) {
            if (isspace((unsigned char)*q)) continue;
            out[o++] = *q;
            if (++col == 64) out[o++] = '\n', col = 0;
        }
        if (col) out[o++] = '\n';
        o += (size_t)snprintf(out + o, cap - o, "%s\n", endline);
        p = e + strlen(endline);
    }
    out[o] = 0;
    return out;
}

static char *read_file(const char *path, char *err, size_t errlen, const char *what) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "Failed to load PEM SSL %s %s: cannot open the file", what, path);
        return NULL;
    }
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (n > (16u << 20)) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (!buf) snprintf(err, errlen, "Failed to load PEM SSL %s %s", what, path);
    else buf[n] = 0;
    return buf;
}

static BIO *pem_bio(const char *text, char **keep) {
    *keep = tls_pem_normalize(text);
    return *keep ? BIO_new_mem_buf(*keep, -1) : NULL;
}

/* Adds every CERTIFICATE of text; returns how many, -1 on a bad one. */
static int load_certs(const char *text, X509 **first, STACK_OF(X509) *rest, X509_STORE *store) {
    char *keep;
    BIO *bio = pem_bio(text, &keep);
    if (!bio) {
        free(keep);
        return -1;
    }
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (store) {
            X509_STORE_add_cert(store, x);
            X509_free(x);
        } else if (n == 0 && first) {
            *first = x;
        } else if (rest) {
            sk_X509_push(rest, x);
        } else
            X509_free(x);
        n++;
    }
    ERR_clear_error(); /* the end of the data reads as "no start line" */
    BIO_free(bio);
    free(keep);
    return n;
}

static EVP_PKEY *load_key(const char *text, const char *password) {
    char *keep;
    BIO *bio = pem_bio(text, &keep);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(password ? password : "")) : NULL;
    BIO_free(bio);
    free(keep);
    return k;
}

/* The key, its certificate and the rest of the chain become the context's. */
static int use_key_and_chain(tls_ctx *t, X509 *leaf, STACK_OF(X509) *rest, EVP_PKEY *pk, const char *what,
                             char *err, size_t errlen) {
    char why[256];
    if (SSL_CTX_use_certificate(t->ssl, leaf) != 1 || SSL_CTX_use_PrivateKey(t->ssl, pk) != 1 ||
        SSL_CTX_check_private_key(t->ssl) != 1) {
        ssl_error_text(why, sizeof why);
        snprintf(err, errlen, "Invalid %s configs: the private key does not match the certificate (%s)", what, why);
        return -1;
    }
    for (int i = 0; i < sk_X509_num(rest); i++)
        if (SSL_CTX_add1_chain_cert(t->ssl, sk_X509_value(rest, i)) != 1) {
            snprintf(err, errlen, "Invalid %s configs: cannot use the certificate chain", what);
            return -1;
        }
    return 0;
}

static int setup_keystore(tls_ctx *t, tls_get_fn get, void *arg, char *err, size_t errlen) {
    const char *type = nonblank(get(arg, "ssl.keystore.type"));
    const char *loc = nonblank(get(arg, "ssl.keystore.location"));
    const char *chain = nonblank(get(arg, "ssl.keystore.certificate.chain"));
    const char *key = nonblank(get(arg, "ssl.keystore.key"));
    const char *kpass = get(arg, "ssl.key.password");
    const char *spass = nonblank(get(arg, "ssl.keystore.password"));
    if (!type) type = "JKS";
    if (key || chain) {
        if (strcmp(type, "PEM") != 0) {
            snprintf(err, errlen, "SSL private key can be specified only for PEM, but key store type is %s.", type);
            return -1;
        }
        if (!chain) {
            snprintf(err, errlen, "SSL private key is specified, but certificate chain is not specified.");
            return -1;
        }
        if (!key) {
            snprintf(err, errlen, "SSL certificate chain is specified, but private key is not specified");
            return -1;
        }
        if (loc) {
            snprintf(err, errlen, "Both SSL key store location and separate private key are specified.");
            return -1;
        }
    } else if (!loc) {
        if (spass) {
            snprintf(err, errlen, "SSL key store is not specified, but key store password is specified.");
            return -1;
        }
        if (t->server) {
            snprintf(err, errlen, "SSL key store is not specified (ssl.keystore.location or "
                                  "ssl.keystore.certificate.chain and ssl.keystore.key)");
            return -1;
        }
        return 0; /* a client without a certificate */
    }
    if (strcmp(type, "PEM") != 0) {
        if (!spass) {
            snprintf(err, errlen, "SSL key store is specified, but key store password is not specified.");
            return -1;
        }
        keystore_contents ks;
        char why[256];
        if (keystore_load(loc, type, spass, kpass, 1, &ks, why, sizeof why) != 0) {
            snprintf(err, errlen, "Failed to load SSL keystore %s of type %s: %s", loc, type, why);
            return -1;
        }
        int rc = use_key_and_chain(t, ks.leaf, ks.chain, ks.key, "keystore", err, errlen);
        keystore_contents_free(&ks);
        return rc;
    }
    if (spass) {
        snprintf(err, errlen,
                 "SSL key store password cannot be specified with PEM format, only key password may be specified");
        return -1;
    }
    char *file = NULL;
    if (loc) {
        file = read_file(loc, err, errlen, "keystore");
        if (!file) return -1;
        chain = key = file;
    }
    X509 *leaf = NULL;
    STACK_OF(X509) *rest = sk_X509_new_null();
    int n = load_certs(chain, &leaf, rest, NULL);
    EVP_PKEY *pk = n > 0 ? load_key(key, kpass) : NULL;
    int rc = -1;
    char why[256];
    if (n <= 0) {
        snprintf(err, errlen, "Invalid PEM keystore configs%s%s: At least one certificate expected, but none found",
                 loc ? " in " : "", loc ? loc : "");
    } else if (!pk) {
        ssl_error_text(why, sizeof why);
        snprintf(err, errlen, "Invalid PEM keystore configs%s%s: Private key could not be loaded (%s)%s",
                 loc ? " in " : "", loc ? loc : "", why, kpass ? "" : "; an encrypted key needs ssl.key.password");
    } else {
        rc = use_key_and_chain(t, leaf, rest, pk, "PEM keystore", err, errlen);
    }
    X509_free(leaf);
    sk_X509_pop_free(rest, X509_free);
    EVP_PKEY_free(pk);
    free(file);
    return rc;
}

static int setup_truststore(tls_ctx *t, tls_get_fn get, void *arg, char *err, size_t errlen) {
    const char *type = nonblank(get(arg, "ssl.truststore.type"));
    const char *loc = nonblank(get(arg, "ssl.truststore.location"));
    const char *certs = nonblank(get(arg, "ssl.truststore.certificates"));
    const char *pass = nonblank(get(arg, "ssl.truststore.password"));
    if (!type) type = "JKS";
    if (!loc && !certs) {
        if (pass) {
            snprintf(err, errlen, "SSL trust store is not specified, but trust store password is specified.");
            return -1;
        }
        SSL_CTX_set_default_verify_paths(t->ssl); /* the system's CAs, as Java's cacerts */
        return 0;
    }
    if (certs && strcmp(type, "PEM") != 0) {
        snprintf(err, errlen, "SSL trust store certs can be specified only for PEM, but trust store type is %s.", type);
        return -1;
    }
    if (certs && loc) {
        snprintf(err, errlen, "Both SSL trust store location and separate trust certificates are specified.");
        return -1;
    }
    if (strcmp(type, "PEM") != 0) {
        /* no password: readable, but the integrity is not checked (as Java) */
        keystore_contents ks;
        char why[256];
        if (keystore_load(loc, type, pass, NULL, 0, &ks, why, sizeof why) != 0) {
            snprintf(err, errlen, "Failed to load SSL keystore %s of type %s: %s", loc, type, why);
            return -1;
        }
        X509_STORE *store = SSL_CTX_get_cert_store(t->ssl);
        int n = sk_X509_num(ks.trusted);
        for (int i = 0; i < n; i++) X509_STORE_add_cert(store, sk_X509_value(ks.trusted, i));
        keystore_contents_free(&ks);
        if (n <= 0) {
            snprintf(err, errlen, "Invalid truststore %s: the trustAnchors parameter must be non-empty", loc);
            return -1;
        }
        return 0;
    }
    if (pass) {
        snprintf(err, errlen, "SSL trust store password cannot be specified for PEM format.");
        return -1;
    }
    char *file = NULL;
    if (loc) {
        file = read_file(loc, err, errlen, "truststore");
        if (!file) return -1;
        certs = file;
    }
    int n = load_certs(certs, NULL, NULL, SSL_CTX_get_cert_store(t->ssl));
    free(file);
    if (n <= 0) {
        snprintf(err, errlen, "Invalid PEM truststore configs%s%s: At least one certificate expected, but none found",
                 loc ? " in " : "", loc ? loc : "");
        return -1;
    }
    return 0;
}

/* Iterates the comma-separated items of list into item. */
#define FOR_ITEMS(list, item, body)                                   \
    do {                                                              \
        const char *p_ = (list);                                      \
        while (p_ && *p_) {                                           \
            const char *e_ = strchr(p_, ',');                         \
            size_t l_ = e_ ? (size_t)(e_ - p_) : strlen(p_);          \
            char item[128];                                           \
            while (l_ && isspace((unsigned char)*p_)) p_++, l_--;     \
            while (l_ && isspace((unsigned char)p_[l_ - 1])) l_--;    \
            if (l_ >= sizeof item) l_ = sizeof item - 1;              \
            memcpy(item, p_, l_);                                     \
            item[l_] = 0;                                             \
            p_ = e_ ? e_ + 1 : NULL;                                  \
            if (!*item) continue;                                     \
            body                                                      \
        }                                                             \
    } while (0)

static int proto_version(const char *name) {
    if (strcmp(name, "TLSv1.3") == 0) return TLS1_3_VERSION;
    if (strcmp(name, "TLSv1.2") == 0) return TLS1_2_VERSION;
    if (strcmp(name, "TLSv1.1") == 0) return TLS1_1_VERSION;
    if (strcmp(name, "TLSv1") == 0) return TLS1_VERSION;
    return -1;
}

static int setup_protocols(tls_ctx *t, tls_get_fn get, void *arg, char *err, size_t errlen) {
    const char *list = nonblank(get(arg, "ssl.enabled.protocols"));
    if (!list) list = "TLSv1.2,TLSv1.3";
    int lo = 0, hi = 0, rc = 0;
    FOR_ITEMS(list, name, {
        int v = proto_version(name);
        if (v < 0 && rc == 0) {
            snprintf(err, errlen, "Invalid value %s in ssl.enabled.protocols: supported are TLSv1.2, TLSv1.3", name);
            rc = -1;
        }
        if (v > 0 && (!lo || v < lo)) lo = v;
        if (v > hi) hi = v;
    });
    if (rc) return rc;
    if (!lo) {
        snprintf(err, errlen, "ssl.enabled.protocols names no protocol");
        return -1;
    }
    SSL_CTX_set_min_proto_version(t->ssl, lo);
    SSL_CTX_set_max_proto_version(t->ssl, hi);
    return 0;
}

/* ssl.cipher.suites holds Java's (IANA) names: TLS 1.3 suites go to
 * SSL_CTX_set_ciphersuites, the others are found by their standard name. */
static int setup_ciphers(tls_ctx *t, tls_get_fn get, void *arg, char *err, size_t errlen) {
    const char *list = nonblank(get(arg, "ssl.cipher.suites"));
    if (!list) return 0;
    char v13[512] = "", v12[2048] = "";
    int rc = 0;
    STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(t->ssl);
    FOR_ITEMS(list, name, {
        if (strncmp(name, "TLS_AES_", 8) == 0 || strncmp(name, "TLS_CHACHA20_", 13) == 0) {
            size_t l = strlen(v13);
            snprintf(v13 + l, sizeof v13 - l, "%s%s", l ? ":" : "", name);
            continue;
        }
        const char *ossl = NULL;
        for (int i = 0; all && i < sk_SSL_CIPHER_num(all); i++) {
            const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);
            const char *std = SSL_CIPHER_standard_name(c);
            if (std && strcmp(std, name) == 0) ossl = SSL_CIPHER_get_name(c);
        }
        if (!ossl) {
            if (rc == 0) snprintf(err, errlen, "Unsupported cipher suite %s in ssl.cipher.suites", name);
            rc = -1;
            continue;
        }
        size_t l = strlen(v12);
        snprintf(v12 + l, sizeof v12 - l, "%s%s", l ? ":" : "", ossl);
    });
    if (rc) return rc;
    if (SSL_CTX_set_ciphersuites(t->ssl, v13) != 1 || (*v12 && SSL_CTX_set_cipher_list(t->ssl, v12) != 1)) {
        snprintf(err, errlen, "Invalid ssl.cipher.suites %s", list);
        return -1;
    }
    if (!*v12) SSL_CTX_set_min_proto_version(t->ssl, TLS1_3_VERSION); /* no TLS 1.2 suite left */
    if (!*v13) SSL_CTX_set_max_proto_version(t->ssl, TLS1_2_VERSION);
    return 0;
}

static int setup_client_auth(tls_ctx *t, tls_get_fn get, void *arg, char *err, size_t errlen) {
    const char *v = nonblank(get(arg, "ssl.client.auth"));
    if (!v || strcmp(v, "none") == 0) {
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    } else if (strcmp(v, "requested") == 0) {
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
    } else if (strcmp(v, "required") == 0) {
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        snprintf(err, errlen, "Invalid value %s for configuration ssl.client.auth: String must be one of: required, "
                              "requested, none", v);
        return -1;
    }
    /* A session id context is needed once clients are verified. */
    SSL_CTX_set_session_id_context(t->ssl, (const unsigned char *)"samsa", 5);
    return 0;
}

tls_ctx *tls_ctx_new(bool server, tls_get_fn get, void *arg, char *err, size_t errlen) {
    tls_ctx *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->server = server;
    t->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!t->ssl) {
        snprintf(err, errlen, "cannot create an SSL context");
        free(t);
        return NULL;
    }
    SSL_CTX_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* One read(2) takes whatever has arrived, not a record header and then its body: small
     * records (clients' produce requests) cost a syscall each otherwise. Callers must then
     * ask SSL_has_pending, not SSL_pending, whether OpenSSL holds bytes the socket will not
     * signal again. */
    SSL_CTX_set_read_ahead(t->ssl, 1);
    SSL_CTX_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_ENABLE_KTLS
    SSL_CTX_set_options(t->ssl, SSL_OP_ENABLE_KTLS); /* the kernel encrypts when it can: SSL_sendfile */
#endif
    if (setup_protocols(t, get, arg, err, errlen) < 0 || setup_ciphers(t, get, arg, err, errlen) < 0 ||
        setup_keystore(t, get, arg, err, errlen) < 0 || setup_truststore(t, get, arg, err, errlen) < 0)
        goto fail;
    if (server) {
        if (setup_client_auth(t, get, arg, err, errlen) < 0) goto fail;
        char merr[256];
        t->mapper = ssl_principal_mapper_new(nonblank(get(arg, "ssl.principal.mapping.rules")), merr, sizeof merr);
        if (!t->mapper) {
            snprintf(err, errlen, "Invalid value for ssl.principal.mapping.rules: %s", merr);
            goto fail;
        }
    } else {
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
        const char *alg = get(arg, "ssl.endpoint.identification.algorithm");
        t->verify_host = !alg || nonblank(alg); /* default https; "" turns it off */
    }
    return t;
fail:
    tls_ctx_free(t);
    return NULL;
}

SSL *tls_session_server(const tls_ctx *t, int fd) {
    SSL *s = SSL_new(t->ssl);
    if (!s) return NULL;
    if (SSL_set_fd(s, fd) != 1) {
        SSL_free(s);
        return NULL;
    }
    SSL_set_accept_state(s);
    return s;
}

SSL *tls_session_client(const tls_ctx *t, int fd, const char *host) {
    SSL *s = SSL_new(t->ssl);
    if (!s) return NULL;
    if (SSL_set_fd(s, fd) != 1) {
        SSL_free(s);
        return NULL;
    }
    unsigned char ip[16];
    bool is_ip = host && (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1);
    if (host && *host && !is_ip) SSL_set_tlsext_host_name(s, host);
    if (t->verify_host && host && *host) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(s);
        if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(vp, host);
        else SSL_set1_host(s, host);
    }
    SSL_set_connect_state(s);
    return s;
}

int tls_result(SSL *ssl, int rc, char *err, size_t errlen) {
    if (rc > 0) return TLS_DONE;
    int e = SSL_get_error(ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ: return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return TLS_CLOSED;
    default: break;
    }
    long vr = SSL_get_verify_result(ssl);
    char why[256];
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(why, sizeof why, "connection closed by the peer");
    else
        ssl_error_text(why, sizeof why);
    if (vr != X509_V_OK)
        snprintf(err, errlen, "%s (certificate verification: %s)", why, X509_verify_cert_error_string(vr));
    else
        snprintf(err, errlen, "%s", why);
    ERR_clear_error();
    return TLS_FAILED;
}

int tls_handshake(SSL *ssl, char *err, size_t errlen) {
    ERR_clear_error();
    return tls_result(ssl, SSL_do_handshake(ssl), err, errlen);
}

void tls_peer_dn(SSL *ssl, char *out, size_t outlen) {
    out[0] = 0;
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer) return;
    BIO *b = BIO_new(BIO_s_mem());
    if (b) {
        /* Java's X500Principal.getName(): RFC 2253, most specific RDN first */
        X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
        int n = BIO_read(b, out, (int)outlen - 1);
        out[n > 0 ? n : 0] = 0;
        BIO_free(b);
    }
    X509_free(peer);
}

int tls_peer_principal(const tls_ctx *t, SSL *ssl, char *out, size_t outlen) {
    char dn[1024];
    tls_peer_dn(ssl, dn, sizeof dn);
    if (!*dn || !t->mapper) {
        snprintf(out, outlen, "User:ANONYMOUS");
        return 0;
    }
    char name[1024];
    if (ssl_principal_map(t->mapper, dn, name, sizeof name) < 0) {
        snprintf(out, outlen, "%s", name);
        return -1;
    }
    snprintf(out, outlen, "User:%s", name);
    return 0;
}

static void name_rfc2253(X509_NAME *n, char *out, size_t outlen) {
    out[0] = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return;
    X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    int len = BIO_read(b, out, (int)outlen - 1);
    out[len > 0 ? len : 0] = 0;
    BIO_free(b);
}

/* The SANs as "[type, value]" items, Java's getSubjectAlternativeNames form, joined by ", ". */
static void san_list(X509 *x, char *out, size_t outlen) {
    size_t o = 0;
    out[0] = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char val[256] = "";
        int type = g->type;
        if (type == GEN_DNS || type == GEN_EMAIL || type == GEN_URI) {
            const ASN1_IA5STRING *s = g->d.ia5;
            snprintf(val, sizeof val, "%.*s", s->length, (const char *)s->data);
        } else if (type == GEN_IPADD) {
            const ASN1_OCTET_STRING *ip = g->d.ip;
            if (ip->length == 4) inet_ntop(AF_INET, ip->data, val, sizeof val);
            else if (ip->length == 16) inet_ntop(AF_INET6, ip->data, val, sizeof val);
        } else {
            snprintf(val, sizeof val, "?");
        }
        /* Java's GeneralName tags: rfc822Name 1, dNSName 2, URI 6, iPAddress 7 */
        int jtype = type == GEN_EMAIL ? 1 : type == GEN_DNS ? 2 : type == GEN_URI ? 6 : type == GEN_IPADD ? 7 : type;
        int n = snprintf(out + o, outlen - o, "%s[%d, %s]", o ? ", " : "", jtype, val);
        if (n < 0 || (size_t)n >= outlen - o) break;
        o += (size_t)n;
    }
    GENERAL_NAMES_free(names);
}

static bool contains_item(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *p = strstr(list, item); p; p = strstr(p + 1, item))
        if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == 0)) return true;
    return false;
}

int tls_ctx_compatible(const tls_ctx *old_ctx, const tls_ctx *new_ctx, char *err, size_t errlen) {
    X509 *o = SSL_CTX_get0_certificate(old_ctx->ssl), *n = SSL_CTX_get0_certificate(new_ctx->ssl);
    if (!o && n) {
        snprintf(err, errlen, "Cannot add SSL keystore to an existing listener for which no keystore was configured.");
        return -1;
    }
    if (o && !n) {
        snprintf(err, errlen, "Cannot remove the SSL keystore from an existing listener for which a keystore was "
                              "configured.");
        return -1;
    }
    if (!o) return 0;
    char odn[512], ndn[512];
    name_rfc2253(X509_get_subject_name(o), odn, sizeof odn);
    name_rfc2253(X509_get_subject_name(n), ndn, sizeof ndn);
    if (strcasecmp(odn, ndn) != 0) {
        snprintf(err, errlen, "Keystore DistinguishedName does not match:  existing={alias=mykey, DN=%s}, "
                              "new={alias=mykey, DN=%s}", odn, ndn);
        return -1;
    }
    char osan[1024], nsan[1024];
    san_list(o, osan, sizeof osan);
    san_list(n, nsan, sizeof nsan);
    /* every old item ("[t, v]") must be among the new ones */
    const char *p = osan;
    while (*p) {
        const char *e = strstr(p, "], ");
        size_t len = e ? (size_t)(e - p) + 1 : strlen(p);
        char item[300];
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        if (!contains_item(nsan, item)) {
            snprintf(err, errlen, "Keystore SubjectAltNames do not match:  existing={alias=mykey, SAN=[%s]}, "
                                  "new={alias=mykey, SAN=[%s]}", osan, nsan);
            return -1;
        }
        p = e ? e + 3 : p + len;
    }
    return 0;
}

bool tls_ktls_send(SSL *ssl) {
#ifdef BIO_get_ktls_send
    return BIO_get_ktls_send(SSL_get_wbio(ssl)) != 0;
#else
    (void)ssl;
    return false;
#endif
}
