/* kclient.c - a small blocking Kafka protocol client (see kclient.h). */
#include "tools/kclient.h"

#include "protocol/gen/kmsg.h"
#include "protocol/errors.h"
#include "net/tls.h"
#include "tools/client_props.h"
#include "security/jaas.h"
#include "util/props.h"
#include <openssl/err.h>
#include "security/scram.h"
#include <strings.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Largest response frame accepted; Kafka's clients have no fixed limit but
 * nothing the tools ask for comes close. */
#define KCLIENT_MAX_FRAME (100 * 1024 * 1024)

/* Kafka 3.6.1's ApiKeys: key, name, versions, first flexible version, and
 * whether brokers serve it (the list kafka-broker-api-versions prints). */
static const kclient_api api_table[KCLIENT_API_COUNT] = {
    {0, "Produce", 0, 9, 9, 1},
    {1, "Fetch", 0, 15, 12, 1},
    {2, "ListOffsets", 0, 8, 6, 1},
    {3, "Metadata", 0, 12, 9, 1},
    {4, "LeaderAndIsr", 0, 7, 4, 1},
    {5, "StopReplica", 0, 4, 2, 1},
    {6, "UpdateMetadata", 0, 8, 6, 1},
    {7, "ControlledShutdown", 0, 3, 3, 1},
    {8, "OffsetCommit", 0, 9, 8, 1},
    {9, "OffsetFetch", 0, 8, 6, 1},
    {10, "FindCoordinator", 0, 4, 3, 1},
    {11, "JoinGroup", 0, 9, 6, 1},
    {12, "Heartbeat", 0, 4, 4, 1},
    {13, "LeaveGroup", 0, 5, 4, 1},
    {14, "SyncGroup", 0, 5, 4, 1},
    {15, "DescribeGroups", 0, 5, 5, 1},
    {16, "ListGroups", 0, 4, 3, 1},
    {17, "SaslHandshake", 0, 1, -1, 1},
    {18, "ApiVersions", 0, 3, 3, 1},
    {19, "CreateTopics", 0, 7, 5, 1},
    {20, "DeleteTopics", 0, 6, 4, 1},
    {21, "DeleteRecords", 0, 2, 2, 1},
    {22, "InitProducerId", 0, 4, 2, 1},
    {23, "OffsetForLeaderEpoch", 0, 4, 4, 1},
    {24, "AddPartitionsToTxn", 0, 4, 3, 1},
    {25, "AddOffsetsToTxn", 0, 3, 3, 1},
    {26, "EndTxn", 0, 3, 3, 1},
    {27, "WriteTxnMarkers", 0, 1, 1, 1},
    {28, "TxnOffsetCommit", 0, 3, 3, 1},
    {29, "DescribeAcls", 0, 3, 2, 1},
    {30, "CreateAcls", 0, 3, 2, 1},
    {31, "DeleteAcls", 0, 3, 2, 1},
    {32, "DescribeConfigs", 0, 4, 4, 1},
    {33, "AlterConfigs", 0, 2, 2, 1},
    {34, "AlterReplicaLogDirs", 0, 2, 2, 1},
    {35, "DescribeLogDirs", 0, 4, 2, 1},
    {36, "SaslAuthenticate", 0, 2, 2, 1},
    {37, "CreatePartitions", 0, 3, 2, 1},
    {38, "CreateDelegationToken", 0, 3, 2, 1},
    {39, "RenewDelegationToken", 0, 2, 2, 1},
    {40, "ExpireDelegationToken", 0, 2, 2, 1},
    {41, "DescribeDelegationToken", 0, 3, 2, 1},
    {42, "DeleteGroups", 0, 2, 2, 1},
    {43, "ElectLeaders", 0, 2, 2, 1},
    {44, "IncrementalAlterConfigs", 0, 1, 1, 1},
    {45, "AlterPartitionReassignments", 0, 0, 0, 1},
    {46, "ListPartitionReassignments", 0, 0, 0, 1},
    {47, "OffsetDelete", 0, 0, -1, 1},
    {48, "DescribeClientQuotas", 0, 1, 1, 1},
    {49, "AlterClientQuotas", 0, 1, 1, 1},
    {50, "DescribeUserScramCredentials", 0, 0, 0, 1},
    {51, "AlterUserScramCredentials", 0, 0, 0, 1},
    {52, "Vote", 0, 0, 0, 0},
    {53, "BeginQuorumEpoch", 0, 0, -1, 0},
    {54, "EndQuorumEpoch", 0, 0, -1, 0},
    {55, "DescribeQuorum", 0, 1, 0, 1},
    {56, "AlterPartition", 0, 3, 0, 1},
    {57, "UpdateFeatures", 0, 1, 0, 1},
    {58, "Envelope", 0, 0, 0, 1},
    {59, "FetchSnapshot", 0, 0, 0, 0},
    {60, "DescribeCluster", 0, 0, 0, 1},
    {61, "DescribeProducers", 0, 0, 0, 1},
    {62, "BrokerRegistration", 0, 1, 0, 0},
    {63, "BrokerHeartbeat", 0, 0, 0, 0},
    {64, "UnregisterBroker", 0, 0, 0, 1},
    {65, "DescribeTransactions", 0, 0, 0, 1},
    {66, "ListTransactions", 0, 0, 0, 1},
    {67, "AllocateProducerIds", 0, 0, 0, 1},
    {68, "ConsumerGroupHeartbeat", 0, 0, 0, 1},
};

const kclient_api *kclient_api_info(int16_t key) {
    if (key < 0 || key >= KCLIENT_API_COUNT) return NULL;
    return &api_table[key];
}

int kclient_request_header_version(int16_t key, int16_t version) {
    const kclient_api *api = kclient_api_info(key);
    if (key == 7 && version == 0) return 0; /* ControlledShutdown v0 has no client id */
    if (api && api->flexible_from >= 0 && version >= api->flexible_from) return 2;
    return 1;
}

int kclient_response_header_version(int16_t key, int16_t version) {
    const kclient_api *api = kclient_api_info(key);
    if (key == 18) return 0; /* ApiVersions: so old clients can read the error */
    if (api && api->flexible_from >= 0 && version >= api->flexible_from) return 1;
    return 0;
}

static void set_err(kclient *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(kclient *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void kclient_init(kclient *c, const char *client_id) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->next_correlation_id = 1;
    c->request_timeout_ms = 30000;
    c->connect_timeout_ms = 5000;
    snprintf(c->client_id, sizeof c->client_id, "%s", client_id ? client_id : "samsa-tools");
}

void kclient_init_like(kclient *c, const kclient *proto) {
    kclient_init(c, proto->client_id);
    c->request_timeout_ms = proto->request_timeout_ms;
    c->connect_timeout_ms = proto->connect_timeout_ms;
    memcpy(c->sasl_mechanism, proto->sasl_mechanism, sizeof c->sasl_mechanism);
    memcpy(c->sasl_username, proto->sasl_username, sizeof c->sasl_username);
    memcpy(c->sasl_password, proto->sasl_password, sizeof c->sasl_password);
    c->use_tls = proto->use_tls;
    c->ssl_props = proto->ssl_props; /* freed at exit, never by a client */
}

void kclient_close(kclient *c) {
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    tls_ctx_free(c->tls); /* built again at the next connect (files may have changed) */
    c->tls = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

int kclient_parse_hostport(const char *s, size_t len, char *host, size_t hostlen, int *port) {
    while (len > 0 && (*s == ' ' || *s == '\t')) s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    const char *colon = NULL;
    const char *hs = s;
    size_t hl;
    if (len > 0 && s[0] == '[') {
        const char *close_br = memchr(s, ']', len);
        if (!close_br || close_br + 1 >= s + len || close_br[1] != ':') return -1;
        hs = s + 1;
        hl = (size_t)(close_br - hs);
        colon = close_br + 1;
    } else {
        for (size_t i = len; i-- > 0;)
            if (s[i] == ':') {
                colon = s + i;
                break;
            }
        if (!colon) return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen) return -1;
    const char *ps = colon + 1;
    size_t pl = (size_t)(s + len - ps);
    if (pl == 0 || pl > 5) return -1;
    int p = 0;
    for (size_t i = 0; i < pl; i++) {
        if (ps[i] < '0' || ps[i] > '9') return -1;
        p = p * 10 + (ps[i] - '0');
    }
    if (p <= 0 || p > 65535) return -1;
    memcpy(host, hs, hl);
    host[hl] = 0;
    *port = p;
    return 0;
}

/* One non-blocking connect attempt to every address of host:port, each
 * bounded by what is left of the deadline. Returns a connected fd or -1. */
static int try_connect(kclient *c, const char *host, int port, int64_t deadline) {
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        set_err(c, "Couldn't resolve server %s:%d from bootstrap.servers as DNS resolution failed for %s",
                host, port, host);
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) continue;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            int64_t left = deadline - now_ms();
            struct pollfd pfd = {fd, POLLOUT, 0};
            rc = -1;
            if (left > 0 && poll(&pfd, 1, (int)left) == 1) {
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                if (soerr == 0) rc = 0;
                else errno = soerr;
            } else if (left <= 0 || errno == 0) {
                errno = ETIMEDOUT;
            }
        }
        if (rc != 0) {
            set_err(c, "Connection to node -1 (%s:%d) could not be established. Broker may not be available. (%s)",
                    host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* ---- transport: the socket or TLS on it ---- */

/* Java's NetworkClient says why a TLS connection failed; the tools'
 * own messages only say the broker could not be reached. */
static void log_tls_failure(kclient *c, const char *why) {
    if (c->tls_failed_logged) return;
    c->tls_failed_logged = 1;
    tool_log("ERROR", "org.apache.kafka.clients.NetworkClient",
             "[AdminClient clientId=%s] Connection to node -1 (%s/%s:%d) failed authentication due to: SSL handshake "
             "failed (%s)",
             c->client_id, c->host, c->host, c->port, why);
}

/* >0 bytes, 0 end of stream, -1 with errno (EAGAIN: poll c->tls_wait). */
static ssize_t io_send(kclient *c, const uint8_t *p, size_t n) {
    c->tls_wait = POLLOUT;
    if (!c->ssl) return send(c->fd, p, n, MSG_NOSIGNAL);
    ERR_clear_error();
    int w = SSL_write(c->ssl, p, n > (1u << 30) ? (1 << 30) : (int)n);
    if (w > 0) return w;
    char err[256];
    int r = tls_result(c->ssl, w, err, sizeof err);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
        c->tls_wait = r == TLS_WANT_READ ? POLLIN : POLLOUT;
        errno = EAGAIN;
    } else
        errno = EPIPE;
    return -1;
}

static ssize_t io_recv(kclient *c, uint8_t *p, size_t n) {
    c->tls_wait = POLLIN;
    if (!c->ssl) return recv(c->fd, p, n, 0);
    ERR_clear_error();
    int rd = SSL_read(c->ssl, p, n > (1u << 30) ? (1 << 30) : (int)n);
    if (rd > 0) return rd;
    char err[256];
    int r = tls_result(c->ssl, rd, err, sizeof err);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
        c->tls_wait = r == TLS_WANT_READ ? POLLIN : POLLOUT;
        errno = EAGAIN;
        return -1;
    }
    if (r == TLS_CLOSED) return 0;
    log_tls_failure(c, err); /* TLSv1.3: a refused client certificate shows at the first read */
    errno = ECONNRESET;
    return -1;
}

/* ssl.* settings live until exit (a kclient has no destructor); freed
 * then, so leak checks of the tools stay quiet. */
#define MAX_SSL_SETTINGS 8
static props *ssl_settings[MAX_SSL_SETTINGS];
static int nssl_settings;

static void free_ssl_settings(void) {
    for (int i = 0; i < nssl_settings; i++) {
        props_free(ssl_settings[i]);
        free(ssl_settings[i]);
    }
    nssl_settings = 0;
}

static props *new_ssl_settings(void) {
    if (nssl_settings >= MAX_SSL_SETTINGS) return NULL;
    props *p = malloc(sizeof *p);
    if (!p) return NULL;
    props_init(p);
    if (nssl_settings == 0) atexit(free_ssl_settings);
    ssl_settings[nssl_settings++] = p;
    return p;
}

static const char *ssl_setting(void *arg, const char *key) { return props_get((const props *)arg, key); }

/* TLS handshake on the connected socket, bounded by the connect timeout. */
static int tls_start(kclient *c) {
    signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(2): a closed socket must be an error, not death */
    if (!c->tls) {
        props empty;
        props_init(&empty);
        char err[512];
        c->tls = tls_ctx_new(false, ssl_setting, c->ssl_props ? (void *)c->ssl_props : (void *)&empty, err, sizeof err);
        props_free(&empty);
        if (!c->tls) {
            set_err(c, "Failed to create SSL engine: %s", err);
            return -1;
        }
    }
    c->tls_failed_logged = 0;
    c->ssl = tls_session_client(c->tls, c->fd, c->host);
    if (!c->ssl) {
        set_err(c, "out of memory");
        return -1;
    }
    int64_t deadline = now_ms() + c->connect_timeout_ms;
    for (;;) {
        char err[320];
        int r = tls_handshake(c->ssl, err, sizeof err);
        if (r == TLS_DONE) return 0;
        if (r != TLS_WANT_READ && r != TLS_WANT_WRITE) {
            /* Java: SslAuthenticationException: SSL handshake failed */
            set_err(c, "SSL handshake failed with %s:%d: %s", c->host, c->port, err);
            log_tls_failure(c, err);
            return -1;
        }
        int64_t left = deadline - now_ms();
        struct pollfd pfd = {c->fd, (short)(r == TLS_WANT_READ ? POLLIN : POLLOUT), 0};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            set_err(c, "SSL handshake with %s:%d timed out", c->host, c->port);
            return -1;
        }
    }
}

/* ---- framing ---- */

static int write_all(kclient *c, const uint8_t *p, size_t n, int64_t deadline) {
    while (n > 0) {
        ssize_t w = io_send(c, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - now_ms();
            struct pollfd pfd = {c->fd, (short)c->tls_wait, 0};
            if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
                set_err(c, "Timed out sending a request to %s:%d", c->host, c->port);
                return -1;
            }
            continue;
        }
        set_err(c, "Connection to %s:%d was lost while sending (%s)", c->host, c->port, strerror(errno));
        return -1;
    }
    return 0;
}

static int read_all(kclient *c, uint8_t *p, size_t n, int64_t deadline) {
    while (n > 0) {
        ssize_t r = io_recv(c, p, n);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0) {
            set_err(c, "Connection to %s:%d was closed by the broker", c->host, c->port);
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int64_t left = deadline - now_ms();
            struct pollfd pfd = {c->fd, (short)c->tls_wait, 0};
            if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
                set_err(c, "Timed out waiting for a response from %s:%d", c->host, c->port);
                return -1;
            }
            continue;
        }
        set_err(c, "Connection to %s:%d was lost while reading (%s)", c->host, c->port, strerror(errno));
        return -1;
    }
    return 0;
}

int kclient_call(kclient *c, int16_t key, int16_t version, const kwriter *body, karena *a, kreader *resp) {
    if (c->fd < 0) {
        set_err(c, "Not connected to a broker");
        return -1;
    }
    if (body->err || body->nrefs) {
        set_err(c, "Request body could not be encoded");
        return -1;
    }
    int32_t corr = c->next_correlation_id++;
    kwriter w;
    kw_init(&w);
    size_t size_at = kw_reserve(&w, 4);
    kw_i16(&w, key);
    kw_i16(&w, version);
    kw_i32(&w, corr);
    int hv = kclient_request_header_version(key, version);
    if (hv >= 1) kw_string(&w, false, kstr_from(c->client_id)); /* always a classic string */
    if (hv >= 2) kw_no_tagged_fields(&w);
    kw_raw(&w, body->buf, body->len);
    kw_patch_i32(&w, size_at, (int32_t)(w.len - 4));
    if (w.err) {
        kw_free(&w);
        set_err(c, "Out of memory encoding a request");
        return -1;
    }
    int64_t deadline = now_ms() + c->request_timeout_ms;
    int rc = write_all(c, w.buf, w.len, deadline);
    kw_free(&w);
    if (rc != 0) {
        kclient_close(c);
        return -1;
    }

    uint8_t sizebuf[4];
    if (read_all(c, sizebuf, 4, deadline) != 0) {
        kclient_close(c);
        return -1;
    }
    int32_t size = (int32_t)(((uint32_t)sizebuf[0] << 24) | ((uint32_t)sizebuf[1] << 16) |
                             ((uint32_t)sizebuf[2] << 8) | sizebuf[3]);
    if (size < 4 || size > KCLIENT_MAX_FRAME) {
        set_err(c, "Invalid response size %d from %s:%d", size, c->host, c->port);
        kclient_close(c);
        return -1;
    }
    uint8_t *frame = karena_alloc(a, (size_t)size);
    if (!frame) {
        set_err(c, "Out of memory reading a response of %d bytes", size);
        kclient_close(c);
        return -1;
    }
    if (read_all(c, frame, (size_t)size, deadline) != 0) {
        kclient_close(c);
        return -1;
    }
    kr_init(resp, frame, (size_t)size);
    int32_t got = kr_i32(resp);
    if (got != corr) {
        set_err(c, "Correlation id for response (%d) does not match request (%d)", got, corr);
        kclient_close(c);
        return -1;
    }
    if (kclient_response_header_version(key, version) >= 1) kr_skip_tagged_fields(resp);
    if (resp->err) {
        set_err(c, "Malformed response header from %s:%d", c->host, c->port);
        kclient_close(c);
        return -1;
    }
    return 0;
}

/* ---- ApiVersions ---- */

static int decode_api_versions(kclient *c, kreader *r, int16_t version, int16_t *error_code) {
    bool flex = version >= 3;
    *error_code = kr_i16(r);
    int32_t n = kr_array_len(r, flex, false, 6);
    if (r->err || n < 0) return -1;
    memset(c->apis, 0, sizeof c->apis);
    c->n_unknown = 0;
    for (int32_t i = 0; i < n; i++) {
        int16_t key = kr_i16(r), lo = kr_i16(r), hi = kr_i16(r);
        if (flex) kr_skip_tagged_fields(r);
        if (r->err) return -1;
        if (key >= 0 && key < KCLIENT_API_COUNT) {
            c->apis[key].supported = 1;
            c->apis[key].min_version = lo;
            c->apis[key].max_version = hi;
        } else if (c->n_unknown < (int)(sizeof c->unknown_keys / sizeof c->unknown_keys[0])) {
            c->unknown_keys[c->n_unknown][0] = key;
            c->unknown_keys[c->n_unknown][1] = lo;
            c->unknown_keys[c->n_unknown][2] = hi;
            c->n_unknown++;
        }
    }
    /* Throttle time and tagged fields (features) follow; the tools do not need them. */
    return 0;
}

static int negotiate_versions(kclient *c) {
    int16_t version = 3;
    for (int attempt = 0; attempt < 2; attempt++) {
        karena a;
        karena_init(&a, 0);
        kwriter body;
        kw_init(&body);
        if (version >= 3) {
            kw_string(&body, true, KSTR_LIT("samsa-tools"));
            kw_string(&body, true, KSTR_LIT("3.6.1"));
            kw_no_tagged_fields(&body);
        }
        kreader r;
        int rc = kclient_call(c, 18, version, &body, &a, &r);
        kw_free(&body);
        if (rc != 0) {
            karena_free(&a);
            return -1;
        }
        int16_t ec = 0;
        /* A broker that does not know our version answers in v0 layout. */
        kreader probe = r;
        rc = decode_api_versions(c, &r, version, &ec);
        if (rc == 0 && ec == 35 && version > 0) {
            decode_api_versions(c, &probe, 0, &ec);
            int16_t theirs = c->apis[18].supported ? c->apis[18].max_version : 0;
            karena_free(&a);
            if (theirs >= version) theirs = 0;
            version = theirs;
            continue;
        }
        karena_free(&a);
        if (rc != 0) {
            set_err(c, "Malformed ApiVersions response from %s:%d", c->host, c->port);
            kclient_close(c);
            return -1;
        }
        if (ec != 0) {
            set_err(c, "ApiVersions request to %s:%d failed with error code %d", c->host, c->port, ec);
            kclient_close(c);
            return -1;
        }
        return 0;
    }
    set_err(c, "Could not agree on an ApiVersions version with %s:%d", c->host, c->port);
    kclient_close(c);
    return -1;
}

/* ---- SASL (SaslHandshake v1 + SaslAuthenticate) ---- */

static int sasl_step(kclient *c, const uint8_t *tok, size_t len, SaslAuthenticateResponse *resp, karena *a) {
    int16_t v = kclient_pick_version(c, KAPI_SASL_AUTHENTICATE);
    if (v < 0) {
        set_err(c, "The broker does not support SaslAuthenticate");
        return -1;
    }
    SaslAuthenticateRequest req;
    SaslAuthenticateRequest_init(&req);
    req.auth_bytes = (kbytes){tok, (int32_t)len};
    if (kclient_request(c, KAPI_SASL_AUTHENTICATE, v, &req, resp, a) != 0) return -1;
    if (resp->error_code) {
        set_err(c, "%s", resp->error_message.len > 0 ? kstr_dup(resp->error_message, a) : kerr_message(resp->error_code));
        return -1;
    }
    return 0;
}

static int sasl_login(kclient *c) {
    karena a;
    karena_init(&a, 0);
    int rc = -1;
    SaslHandshakeRequest hs;
    SaslHandshakeRequest_init(&hs);
    hs.mechanism = kstr_from(c->sasl_mechanism);
    SaslHandshakeResponse hr;
    SaslAuthenticateResponse ar;
    int mech = scram_mechanism_from_name(c->sasl_mechanism);
    if (kclient_pick_version(c, KAPI_SASL_HANDSHAKE) < 1) {
        set_err(c, "The broker does not support SaslHandshake v1");
        goto out;
    }
    if (kclient_request(c, KAPI_SASL_HANDSHAKE, 1, &hs, &hr, &a) != 0) goto out;
    if (hr.error_code == KERR_UNSUPPORTED_SASL_MECHANISM) {
        char list[256] = "";
        for (int32_t i = 0; i < hr.mechanisms_count; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.*s", i ? ", " : "", hr.mechanisms[i].len,
                     hr.mechanisms[i].p);
        set_err(c, "Client SASL mechanism '%s' not enabled in the server, enabled mechanisms are [%s]",
                c->sasl_mechanism, list);
        goto out;
    }
    if (hr.error_code) {
        set_err(c, "%s", kerr_message(hr.error_code));
        goto out;
    }
    if (strcmp(c->sasl_mechanism, "PLAIN") == 0) {
        size_t ul = strlen(c->sasl_username), pl = strlen(c->sasl_password);
        uint8_t tok[520];
        tok[0] = 0;
        memcpy(tok + 1, c->sasl_username, ul);
        tok[1 + ul] = 0;
        memcpy(tok + 2 + ul, c->sasl_password, pl);
        rc = sasl_step(c, tok, 2 + ul + pl, &ar, &a);
    } else if (mech) {
        scram_client sc;
        char msg[800], err[256];
        if (scram_client_first(&sc, mech, c->sasl_username, msg, sizeof msg) < 0 ||
            sasl_step(c, (const uint8_t *)msg, strlen(msg), &ar, &a) != 0)
            goto out;
        if (scram_client_final(&sc, ar.auth_bytes.p, (size_t)(ar.auth_bytes.len > 0 ? ar.auth_bytes.len : 0),
                               c->sasl_password, msg, sizeof msg, err, sizeof err) < 0) {
            set_err(c, "%s", err);
            goto out;
        }
        if (sasl_step(c, (const uint8_t *)msg, strlen(msg), &ar, &a) != 0) goto out;
        if (scram_client_verify(&sc, ar.auth_bytes.p, (size_t)(ar.auth_bytes.len > 0 ? ar.auth_bytes.len : 0), err,
                                sizeof err) < 0) {
            set_err(c, "%s", err);
            goto out;
        }
        rc = 0;
    }
out:
    karena_free(&a);
    if (rc != 0) {
        c->auth_failed = 1;
        kclient_close(c);
    }
    return rc;
}

int kclient_configure(kclient *c, const char *key, const char *value) {
    if (strcmp(key, "security.protocol") == 0) {
        if (strcasecmp(value, "PLAINTEXT") == 0 || strcasecmp(value, "SSL") == 0) {
            c->sasl_mechanism[0] = 0;
        } else if (strcasecmp(value, "SASL_PLAINTEXT") == 0 || strcasecmp(value, "SASL_SSL") == 0) {
            if (!c->sasl_mechanism[0]) snprintf(c->sasl_mechanism, sizeof c->sasl_mechanism, "GSSAPI"); /* Java's default */
        } else {
            set_err(c, "Invalid value %s for configuration security.protocol: String must be one of: PLAINTEXT, SSL, "
                       "SASL_PLAINTEXT, SASL_SSL", value);
            return -1;
        }
        c->use_tls = strcasecmp(value, "SSL") == 0 || strcasecmp(value, "SASL_SSL") == 0;
        return 0;
    }
    if (strncmp(key, "ssl.", 4) == 0) {
        if (!c->ssl_props && !(c->ssl_props = new_ssl_settings())) {
            set_err(c, "too many clients with ssl.* settings");
            return -1;
        }
        props_set(c->ssl_props, key, value);
        return 0;
    }
    if (strcmp(key, "sasl.mechanism") == 0) {
        /* only on a SASL security.protocol (configure that first) */
        if (c->sasl_mechanism[0]) snprintf(c->sasl_mechanism, sizeof c->sasl_mechanism, "%s", value);
        return 0;
    }
    if (strcmp(key, "sasl.jaas.config") == 0) {
        jaas_config jc;
        char jerr[256];
        if (jaas_parse(value, &jc, jerr, sizeof jerr) < 0) {
            set_err(c, "Invalid value [hidden] for configuration sasl.jaas.config: %s", jerr);
            return -1;
        }
        const char *u = jaas_option_get(&jc.entries[0], "username"), *p = jaas_option_get(&jc.entries[0], "password");
        snprintf(c->sasl_username, sizeof c->sasl_username, "%s", u ? u : "");
        snprintf(c->sasl_password, sizeof c->sasl_password, "%s", p ? p : "");
        jaas_free(&jc);
    }
    return 0;
}

/* ApiVersions, then SASL when configured. */
static int handshake(kclient *c) {
    c->auth_failed = 0;
    if (c->use_tls && tls_start(c) != 0) {
        kclient_close(c);
        return -1;
    }
    if (negotiate_versions(c) != 0) return -1;
    if (!c->sasl_mechanism[0]) return 0;
    if (strcmp(c->sasl_mechanism, "PLAIN") != 0 && !scram_mechanism_from_name(c->sasl_mechanism)) {
        set_err(c, "SASL mechanism %s is not supported by this tool (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 are)",
                c->sasl_mechanism);
        kclient_close(c);
        return -1;
    }
    return sasl_login(c);
}

int kclient_connect_to(kclient *c, const char *host, int port) {
    kclient_close(c);
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    int64_t deadline = now_ms() + c->connect_timeout_ms;
    int backoff = 50;
    for (;;) {
        int fd = try_connect(c, host, port, deadline);
        if (fd >= 0) {
            c->fd = fd;
            return handshake(c);
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) return -1;
        sleep_ms(backoff < left ? backoff : (int)left);
        if (backoff < 1000) backoff *= 2;
    }
}

int kclient_connect(kclient *c, const char *bootstrap) {
    int64_t deadline = now_ms() + c->connect_timeout_ms;
    int backoff = 50;
    int any_valid = 0;
    for (;;) {
        const char *s = bootstrap;
        while (*s) {
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            char host[256];
            int port;
            if (kclient_parse_hostport(s, len, host, sizeof host, &port) == 0) {
                any_valid = 1;
                kclient_close(c);
                snprintf(c->host, sizeof c->host, "%s", host);
                c->port = port;
                int fd = try_connect(c, host, port, deadline);
                if (fd >= 0) {
                    c->fd = fd;
                    if (handshake(c) == 0) return 0;
                    if (c->auth_failed) return -1; /* as Java's clients: fatal, not retried */
                }
            }
            s = comma ? comma + 1 : s + len;
        }
        if (!any_valid) {
            set_err(c, "No resolvable bootstrap urls given in bootstrap.servers");
            return -1;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) break;
        sleep_ms(backoff < left ? backoff : (int)left);
        if (backoff < 1000) backoff *= 2;
    }
    return -1;
}

int16_t kclient_pick_version(const kclient *c, int16_t key) {
    const kclient_api *api = kclient_api_info(key);
    if (!api || !c->apis[key].supported) return -1;
    int16_t hi = api->max_version < c->apis[key].max_version ? api->max_version : c->apis[key].max_version;
    int16_t lo = api->min_version > c->apis[key].min_version ? api->min_version : c->apis[key].min_version;
    return hi >= lo ? hi : -1;
}

/* ---- typed requests over the generated codecs ---- */

int kclient_request(kclient *c, int16_t key, int16_t version, const void *req, void *resp, karena *a) {
    const kmsg_type *rq = kmsg_request_type(key);
    const kmsg_type *rs = kmsg_response_type(key);
    if (!rq || !rs) {
        set_err(c, "No codec for API key %d", key);
        return -1;
    }
    kwriter body;
    kw_init(&body);
    if (rq->encode(req, &body, version) != 0 || body.err) {
        kw_free(&body);
        set_err(c, "Could not encode %s v%d", rq->name, version);
        return -1;
    }
    kreader r;
    int rc = kclient_call(c, key, version, &body, a, &r);
    kw_free(&body);
    if (rc != 0) return -1;
    rs->init(resp);
    if (rs->decode(resp, &r, version, a) != 0 || r.err) {
        set_err(c, "Malformed %s v%d from %s:%d", rs->name, version, c->host, c->port);
        return -1;
    }
    return 0;
}

int kclient_metadata(kclient *c, const char *const *topics, int ntopics, MetadataResponse *out,
                     int16_t *version_out, karena *a) {
    int16_t v = kclient_pick_version(c, KAPI_METADATA);
    if (v < 1) {
        set_err(c, "The broker does not support METADATA");
        return -1;
    }
    MetadataRequest req;
    MetadataRequest_init(&req);
    if (topics) {
        req.topics = karena_calloc(a, ntopics > 0 ? (size_t)ntopics : 1, sizeof *req.topics);
        if (!req.topics) {
            set_err(c, "Out of memory");
            return -1;
        }
        for (int i = 0; i < ntopics; i++) {
            MetadataRequest_MetadataRequestTopic_init(&req.topics[i]);
            req.topics[i].name = kstr_from(topics[i]);
        }
        req.topics_count = ntopics;
    } else {
        req.topics_count = -1; /* null: every topic */
    }
    req.allow_auto_topic_creation = false;
    if (version_out) *version_out = v;
    return kclient_request(c, KAPI_METADATA, v, &req, out, a);
}
