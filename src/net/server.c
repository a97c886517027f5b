/* server.c - listeners, framing and response queues (see server.h). */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/tls.h"
#include "util/log.h"

#define MAX_LISTENERS 8
#define READ_CHUNK 65536
/* Stop taking requests from a connection whose peer is not reading. */
#define OUTPUT_HIGH_WATER (4u << 20)
/* File ranges on a TLS connection without kTLS: read and encrypted in
 * pieces of one TLS record. */
#define TLS_STAGE 16384

typedef struct listener_slot {
    int fd;
    char name[32];
    tls_ctx *tls;               /* NULL: PLAINTEXT; replaced by net_server_set_tls */
    net_listener_stats stats;   /* Kafka's socket-server-metrics of this listener */
} listener_slot;

typedef struct out_frame {
    struct out_frame *next;
    kwriter *w;
    int64_t sent; /* logical bytes of w already sent (buffer + file bytes) */
} out_frame;

struct kconn {
    net_server *srv;
    kconn *prev, *next;         /* all connections */
    int fd;
    char peer[64];
    uint32_t peer_ip_hash;
    /* input */
    uint8_t *rbuf;              /* bytes read but not yet part of a frame */
    size_t rlen, rcap;
    uint8_t *frame;             /* frame being filled (size known) */
    size_t frame_len, frame_got;
    bool in_flight;             /* a request is with the request layer */
    bool processing;            /* inside conn_process: answers must not recurse */
    void *udata;
    /* output */
    out_frame *out_head, *out_tail;
    size_t out_bytes;
    /* life cycle */
    bool closing;
    int busy;                   /* >0 while inside a callback that may close it */
    int events;                 /* current epoll mask */
    int64_t last_active_ms;
    /* transport */
    int listener;               /* index into srv->listeners */
    int32_t max_frame;          /* 0: cfg.max_request_bytes (kconn_set_frame_limit) */
    bool allow_small_frames;
    SSL *ssl;                   /* NULL on a PLAINTEXT listener */
    bool tls_ready;             /* handshake done */
    int hs_want;                /* LOOP_READ/LOOP_WRITE the handshake waits for */
    bool read_wants_write, write_wants_read; /* TLS records going the other way */
    bool ktls;                  /* the kernel encrypts: SSL_sendfile */
    uint8_t *stage;             /* TLS_STAGE bytes of a file range being written */
    size_t stage_len, stage_off;
    char principal[256];
};

typedef struct ip_count {
    uint32_t hash;
    int count;
} ip_count;

struct net_server {
    kloop *loop;
    net_config cfg;
    net_request_fn on_request;
    net_close_fn on_close;
    void *ctx;
    net_accept_throttle_fn accept_throttle; /* connection_creation_rate; NULL = none */
    listener_slot listeners[MAX_LISTENERS];
    int nlisten;
    net_tls_stats tls_stats;
    struct {
        char name[32];
        int32_t max_bytes;
    } unauth[MAX_LISTENERS];    /* net_server_limit_unauthenticated */
    int nunauth;
    kconn *conns;
    int nconns;
    ip_count *ips;
    int nips, capips;
    loop_timer_id idle_timer;
    loop_timer_id accept_retry;     /* accepting paused after EMFILE/ENFILE */
};

static void conn_event(kloop *l, int fd, int events, void *arg);
static void conn_maybe_free(kconn *c);
static void conn_process(kconn *c);
static void conn_read_tls_pending(kconn *c);

/* ---- per-IP connection counts ---- */

static int *ip_slot(net_server *s, uint32_t hash, bool create) {
    for (int i = 0; i < s->nips; i++)
        if (s->ips[i].hash == hash) return &s->ips[i].count;
    if (!create) return NULL;
    if (s->nips == s->capips) {
        int n = s->capips ? s->capips * 2 : 16;
        ip_count *ni = realloc(s->ips, sizeof(*ni) * (size_t)n);
        if (!ni) return NULL;
        s->ips = ni;
        s->capips = n;
    }
    s->ips[s->nips].hash = hash;
    s->ips[s->nips].count = 0;
    return &s->ips[s->nips++].count;
}

static void ip_release(net_server *s, uint32_t hash) {
    for (int i = 0; i < s->nips; i++) {
        if (s->ips[i].hash == hash) {
            if (--s->ips[i].count <= 0) s->ips[i] = s->ips[--s->nips];
            return;
        }
    }
}

/* ---- set-up ---- */

static void idle_sweep(kloop *l, void *arg);

net_server *net_server_new(kloop *loop, const net_config *cfg, net_request_fn on_request,
                           net_close_fn on_close, void *ctx) {
    net_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->loop = loop;
    s->cfg = *cfg;
    s->on_request = on_request;
    s->on_close = on_close;
    s->ctx = ctx;
    if (s->cfg.max_idle_ms > 0)
        s->idle_timer = loop_timer_add(loop, s->cfg.max_idle_ms < 10000 ? s->cfg.max_idle_ms : 10000,
                                       idle_sweep, s);
    return s;
}

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void accept_event(kloop *l, int lfd, int events, void *arg);

int net_server_listen(net_server *s, const char *host, int port, char *err, size_t errlen) {
    return net_server_listen_as(s, "PLAINTEXT", host, port, NULL, err, errlen);
}

int net_server_listen_as(net_server *s, const char *name, const char *host, int port, tls_ctx *tls, char *err,
                         size_t errlen) {
    if (s->nlisten >= MAX_LISTENERS) {
        snprintf(err, errlen, "too many listeners");
        return -1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *h = (host && *host) ? host : NULL;
    int rc = getaddrinfo(h, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    /* For "all interfaces", prefer a dual-stack IPv6 socket, as Java does. */
    struct addrinfo *ai = res;
    if (!h) {
        for (struct addrinfo *p = res; p; p = p->ai_next)
            if (p->ai_family == AF_INET6) ai = p;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "Socket server failed to bind to %s:%d: %s.", host ? host : "", port,
                 strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    set_nonblock(fd);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int bound = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6) bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (loop_watch(s->loop, fd, LOOP_READ, accept_event, s) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        close(fd);
        return -1;
    }
    listener_slot *ls = &s->listeners[s->nlisten++];
    ls->fd = fd;
    snprintf(ls->name, sizeof ls->name, "%s", name);
    ls->tls = tls;
    return bound;
}

void net_server_stop_listening(net_server *s) {
    if (s->accept_retry) {
        loop_timer_cancel(s->loop, s->accept_retry);
        s->accept_retry = 0;
    }
    for (int i = 0; i < s->nlisten; i++) {
        if (s->listeners[i].fd < 0) continue;
        loop_unwatch(s->loop, s->listeners[i].fd);
        close(s->listeners[i].fd);
        s->listeners[i].fd = -1; /* the slot (name, TLS context) stays for open connections */
    }
}

int net_server_connection_count(const net_server *s) { return s->nconns; }

int net_server_listener_count(const net_server *s) { return s->nlisten; }

const net_listener_stats *net_server_listener_stats(const net_server *s, int i, const char **name) {
    if (i < 0 || i >= s->nlisten) return NULL;
    if (name) *name = s->listeners[i].name;
    return &s->listeners[i].stats;
}

int net_server_set_tls(net_server *s, const char *name, tls_ctx *tls) {
    for (int i = 0; i < s->nlisten; i++) {
        if (strcmp(s->listeners[i].name, name) != 0 || !s->listeners[i].tls) continue;
        /* open sessions hold their own reference to the old SSL_CTX */
        tls_ctx_free(s->listeners[i].tls);
        s->listeners[i].tls = tls;
        return 0;
    }
    return -1;
}

const net_tls_stats *net_server_tls_stats(const net_server *s) { return &s->tls_stats; }

const tls_ctx *net_server_tls(const net_server *s, const char *name) {
    for (int i = 0; i < s->nlisten; i++)
        if (strcmp(s->listeners[i].name, name) == 0) return s->listeners[i].tls;
    return NULL;
}

/* ---- accept ---- */

static void describe_peer(const struct sockaddr_storage *ss, char *out, size_t outlen, uint32_t *hash) {
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    uint32_t h = 2166136261u;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        const uint8_t *b = (const uint8_t *)&a->sin_addr;
        for (int i = 0; i < 4; i++) h = (h ^ b[i]) * 16777619u;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        const uint8_t *b = (const uint8_t *)&a->sin6_addr;
        for (int i = 0; i < 16; i++) h = (h ^ b[i]) * 16777619u;
    }
    snprintf(out, outlen, "%s:%d", host, port);
    *hash = h;
}

/* Out of descriptors: the pending connection stays in the backlog and the
 * level-triggered listener would wake the loop at once, forever. Stop
 * watching the listeners for a moment instead (closing connections frees
 * descriptors meanwhile). */
#define ACCEPT_RETRY_MS 100

static void accept_resume(kloop *l, void *arg) {
    net_server *s = arg;
    s->accept_retry = 0;
    for (int i = 0; i < s->nlisten; i++)
        if (s->listeners[i].fd >= 0) loop_watch(l, s->listeners[i].fd, LOOP_READ, accept_event, s);
}

static void accept_pause(net_server *s, int err) {
    if (s->accept_retry) return;
    log_warn("kafka.network.Acceptor", "accept failed: %s; pausing accepts for %d ms (%d connections open)",
             strerror(err), ACCEPT_RETRY_MS, s->nconns);
    for (int i = 0; i < s->nlisten; i++)
        if (s->listeners[i].fd >= 0) loop_unwatch(s->loop, s->listeners[i].fd);
    s->accept_retry = loop_timer_add(s->loop, ACCEPT_RETRY_MS, accept_resume, s);
}

void net_server_set_accept_throttle(net_server *s, net_accept_throttle_fn fn) { s->accept_throttle = fn; }

static void delayed_close(kloop *l, void *arg) {
    (void)l;
    close((int)(intptr_t)arg);
}

/* The connection-rate quota of the peer's IP: true when the socket is taken
 * (closed later, unserved). */
static bool accept_throttled(net_server *s, const struct sockaddr_storage *ss, int fd) {
    if (!s->accept_throttle) return false;
    char ip[INET6_ADDRSTRLEN] = "";
    if (ss->ss_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof ip);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
    int64_t delay = s->accept_throttle(s->ctx, ip);
    if (delay <= 0) return false;
    log_debug("kafka.network.Acceptor", "Delaying closing of connection from %s for %lld ms", ip, (long long)delay);
    loop_timer_add(s->loop, delay, delayed_close, (void *)(intptr_t)fd);
    return true;
}

static void accept_event(kloop *l, int lfd, int events, void *arg) {
    (void)events;
    net_server *s = arg;
    for (int n = 0; n < 64; n++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(s, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warn("kafka.network.Acceptor", "accept failed: %s", strerror(errno));
            return;
        }
        char peer[64];
        uint32_t hash;
        describe_peer(&ss, peer, sizeof peer, &hash);
        int *cnt = ip_slot(s, hash, true);
        if (s->nconns >= s->cfg.max_connections || !cnt || *cnt >= s->cfg.max_connections_per_ip) {
            log_info("kafka.network.Acceptor", "Rejected connection from %s, connection limit reached",
                     peer);
            close(fd);
            continue;
        }
        if (accept_throttled(s, &ss, fd)) continue;
        int li = 0;
        while (li < s->nlisten && s->listeners[li].fd != lfd) li++;
        kconn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->listener = li < s->nlisten ? li : 0;
        for (int u = 0; u < s->nunauth && li < s->nlisten; u++)
            if (strcmp(s->unauth[u].name, s->listeners[li].name) == 0) c->max_frame = s->unauth[u].max_bytes;
        snprintf(c->principal, sizeof c->principal, "User:ANONYMOUS");
        tls_ctx *tls = li < s->nlisten ? s->listeners[li].tls : NULL;
        if (tls) {
            c->ssl = tls_session_server(tls, fd);
            if (!c->ssl) {
                free(c);
                close(fd);
                continue;
            }
            c->hs_want = LOOP_READ;
        }
        (*cnt)++;
        c->srv = s;
        c->fd = fd;
        c->peer_ip_hash = hash;
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        c->last_active_ms = loop_now_ms(l);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (s->cfg.send_buffer_bytes > 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s->cfg.send_buffer_bytes, sizeof(int));
        if (s->cfg.receive_buffer_bytes > 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &s->cfg.receive_buffer_bytes, sizeof(int));
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        if (c->listener < s->nlisten) { /* slots stay until the server is freed */
            s->listeners[c->listener].stats.connections++;
            s->listeners[c->listener].stats.created++;
        }
        c->events = LOOP_READ;
        loop_watch(l, fd, LOOP_READ, conn_event, c);
        if (c->ssl) s->tls_stats.handshakes_started++;
    }
}

/* ---- close ---- */

static void conn_free_now(kconn *c) {
    net_server *s = c->srv;
    loop_unwatch(s->loop, c->fd);
    if (c->ssl) {
        if (c->tls_ready) SSL_shutdown(c->ssl); /* close_notify, without waiting for the peer's */
        SSL_free(c->ssl);
    }
    free(c->stage);
    close(c->fd);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    if (c->listener < s->nlisten) {
        s->listeners[c->listener].stats.connections--;
        s->listeners[c->listener].stats.closed++;
    }
    ip_release(s, c->peer_ip_hash);
    out_frame *f = c->out_head;
    while (f) {
        out_frame *n = f->next;
        kw_free(f->w);
        free(f->w);
        free(f);
        f = n;
    }
    free(c->rbuf);
    free(c->frame);
    free(c);
}

void kconn_close(kconn *c, const char *why) {
    if (c->closing) return;
    c->closing = true;
    if (why) log_info("kafka.network.Processor", "Closing connection from %s: %s", c->peer, why);
    /* Tell the request layer first, so an in-flight request is orphaned. */
    if (c->srv->on_close) c->srv->on_close(c->srv->ctx, c);
    c->udata = NULL;
    conn_maybe_free(c);
}

static void conn_maybe_free(kconn *c) {
    if (c->closing && c->busy == 0) conn_free_now(c);
}

const char *kconn_peer(const kconn *c) { return c->peer; }
const char *kconn_listener(const kconn *c) { return c->srv->listeners[c->listener].name; }
const char *kconn_principal(const kconn *c) { return c->principal; }

int net_server_limit_unauthenticated(net_server *s, const char *listener, int32_t max_bytes) {
    if (s->nunauth >= MAX_LISTENERS) return -1;
    snprintf(s->unauth[s->nunauth].name, sizeof s->unauth[0].name, "%s", listener);
    s->unauth[s->nunauth++].max_bytes = max_bytes;
    return 0;
}

void kconn_set_frame_limit(kconn *c, int32_t max_bytes, bool allow_small) {
    c->max_frame = max_bytes;
    c->allow_small_frames = allow_small;
}
void kconn_set_principal(kconn *c, const char *principal) {
    snprintf(c->principal, sizeof c->principal, "%s", principal);
}
bool kconn_is_tls(const kconn *c) { return c->ssl != NULL; }
void *kconn_udata(const kconn *c) { return c->udata; }
void kconn_set_udata(kconn *c, void *udata) { c->udata = udata; }

/* ---- output ---- */

static void update_events(kconn *c) {
    if (c->closing) return;
    int want = 0;
    if (c->ssl && !c->tls_ready) {
        want = c->hs_want;
    } else {
        /* read when no request is in flight and the peer keeps up with output */
        if (!c->in_flight && c->out_bytes < OUTPUT_HIGH_WATER) want |= LOOP_READ;
        if (c->out_head) want |= LOOP_WRITE;
        if (c->read_wants_write) want |= LOOP_WRITE;
        if (c->write_wants_read && c->out_head) want |= LOOP_READ;
    }
    if (want != c->events) {
        loop_watch(c->srv->loop, c->fd, want, conn_event, c);
        c->events = want;
    }
}

/* ---- transport: the socket, or TLS on it ----
 * Each returns bytes moved (>0), 0 at end of stream (recv), or -1 with
 * errno: EAGAIN when the socket (or the TLS record layer) must wait. */

static ssize_t tls_fail(kconn *c, int rc, const char *op) {
    char err[256];
    int r = tls_result(c->ssl, rc, err, sizeof err);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
        if (strcmp(op, "read") == 0) c->read_wants_write = r == TLS_WANT_WRITE;
        else c->write_wants_read = r == TLS_WANT_READ;
        errno = EAGAIN;
        return -1;
    }
    if (r == TLS_CLOSED) return 0;
    log_info("kafka.network.Processor", "TLS %s failed on the connection from %s: %s", op, c->peer, err);
    errno = EPROTO;
    return -1;
}

static ssize_t conn_recv(kconn *c, void *buf, size_t len) {
    if (!c->ssl) return recv(c->fd, buf, len, 0);
    ERR_clear_error();
    c->read_wants_write = false;
    int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0) return n;
    ssize_t r = tls_fail(c, n, "read");
    return r;
}

static ssize_t conn_send_buf(kconn *c, const uint8_t *buf, size_t len, int flags) {
    if (!c->ssl) return send(c->fd, buf, len, flags);
    ERR_clear_error();
    c->write_wants_read = false;
    int n = SSL_write(c->ssl, buf, len > TLS_STAGE * 4 ? TLS_STAGE * 4 : (int)len);
    if (n > 0) return n;
    ssize_t r = tls_fail(c, n, "write");
    if (r == 0) errno = EPIPE, r = -1;
    return r;
}

/* Bytes of a file range: sendfile on plain sockets and with kTLS; else
 * pread into the stage and SSL_write from it (a write that must be
 * repeated is repeated from the same stage, as OpenSSL requires). */
static ssize_t conn_send_file(kconn *c, int fd, off_t off, size_t len) {
    if (!c->ssl) return sendfile(c->fd, fd, &off, len);
#ifdef BIO_get_ktls_send
    if (c->ktls) {
        ERR_clear_error();
        ossl_ssize_t n = SSL_sendfile(c->ssl, fd, off, len, 0);
        if (n > 0) {
            c->srv->tls_stats.ktls_bytes += (uint64_t)n;
            return (ssize_t)n;
        }
        int e = SSL_get_error(c->ssl, (int)n);
        if (e == SSL_ERROR_WANT_WRITE) {
            errno = EAGAIN;
            return -1;
        }
        errno = EIO;
        return -1;
    }
#endif
    if (c->stage_off >= c->stage_len) {
        if (!c->stage && !(c->stage = malloc(TLS_STAGE))) {
            errno = ENOMEM;
            return -1;
        }
        size_t want = len < TLS_STAGE ? len : TLS_STAGE;
        ssize_t r;
        do r = pread(fd, c->stage, want, off);
        while (r < 0 && errno == EINTR);
        if (r <= 0) return r; /* 0: the file is shorter than promised */
        c->stage_len = (size_t)r;
        c->stage_off = 0;
    }
    ERR_clear_error();
    c->write_wants_read = false;
    int n = SSL_write(c->ssl, c->stage + c->stage_off, (int)(c->stage_len - c->stage_off));
    if (n > 0) {
        c->stage_off += (size_t)n;
        c->srv->tls_stats.copied_bytes += (uint64_t)n;
        return n;
    }
    ssize_t r = tls_fail(c, n, "write");
    if (r == 0) errno = EPIPE, r = -1;
    return r;
}

/* Send as much queued output as the socket takes. Returns -1 on a fatal error. */
static int conn_flush(kconn *c) {
    while (c->out_head) {
        out_frame *f = c->out_head;
        kwriter *w = f->w;
        /* Find which piece of the logical stream f->sent falls into. */
        int64_t pos = f->sent; /* logical position */
        int64_t buf_pos = pos; /* position in w->buf */
        int ref = 0;
        for (; ref < w->nrefs; ref++) {
            int64_t at = (int64_t)w->refs[ref].at;
            if (buf_pos < at) break; /* inside buffer before this ref */
            int64_t in_ref = buf_pos - at;
            if (in_ref < w->refs[ref].len) {
                /* inside file range ref */
                off_t off = (off_t)(w->refs[ref].offset + in_ref);
                size_t want = (size_t)(w->refs[ref].len - in_ref);
                ssize_t n = conn_send_file(c, w->refs[ref].fd, off, want);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
                    if (errno == EINTR) goto next;
                    return -1;
                }
                if (n == 0) {
                    /* the file is shorter than promised (truncated): cannot continue the frame */
                    return -1;
                }
                f->sent += n;
                c->out_bytes -= (size_t)n;
                goto next;
            }
            buf_pos -= w->refs[ref].len;
        }
        {
            size_t end = ref < w->nrefs ? w->refs[ref].at : w->len;
            size_t start = (size_t)buf_pos;
            if (start < end) {
                int flags = MSG_NOSIGNAL | ((ref < w->nrefs || f->next) ? MSG_MORE : 0);
                ssize_t n = conn_send_buf(c, w->buf + start, end - start, flags);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
                    if (errno == EINTR) goto next;
                    return -1;
                }
                f->sent += n;
                c->out_bytes -= (size_t)n;
            }
        }
    next:
        if (f->sent >= kw_size(w)) {
            c->out_head = f->next;
            if (!c->out_head) c->out_tail = NULL;
            kw_free(w);
            free(w);
            free(f);
        }
    }
    return 0;
}

void kconn_send(kconn *c, kwriter *w) {
    if (c->closing) {
        kw_free(w);
        free(w);
        return;
    }
    out_frame *f = calloc(1, sizeof *f);
    if (!f) {
        kw_free(w);
        free(w);
        kconn_close(c, "out of memory");
        return;
    }
    f->w = w;
    if (c->out_tail) c->out_tail->next = f;
    else c->out_head = f;
    c->out_tail = f;
    c->out_bytes += (size_t)kw_size(w);
    c->busy++;
    if (conn_flush(c) < 0) kconn_close(c, NULL);
    c->busy--;
    /* Inside conn_process the caller sets the events once at the end: two
     * epoll_ctl calls per request otherwise (read off, then on again). */
    if (!c->closing && !c->processing) update_events(c);
    conn_maybe_free(c);
}

void kconn_request_done(kconn *c) {
    c->in_flight = false;
    /* Answered synchronously from inside conn_process: its loop goes on. */
    if (c->closing || c->processing) return;
    c->busy++;
    /* Frames already buffered are handled now; the socket is read on the next event. */
    conn_process(c);
    conn_read_tls_pending(c);
    c->busy--;
    if (!c->closing) update_events(c);
    conn_maybe_free(c);
}

/* ---- input ---- */

static void conn_process_frames(kconn *c);

/* Hand complete frames to the request layer, one at a time. */
static void conn_process(kconn *c) {
    if (c->processing) return;
    c->processing = true;
    conn_process_frames(c);
    c->processing = false;
}

static void conn_process_frames(kconn *c) {
    while (!c->closing && !c->in_flight && c->out_bytes < OUTPUT_HIGH_WATER) {
        if (!c->frame) {
            if (c->rlen < 4) return;
            int32_t size = (int32_t)(((uint32_t)c->rbuf[0] << 24) | ((uint32_t)c->rbuf[1] << 16) |
                                     ((uint32_t)c->rbuf[2] << 8) | c->rbuf[3]);
            int32_t max = c->max_frame > 0 ? c->max_frame : c->srv->cfg.max_request_bytes;
            if (size < 0 || size > max) {
                char why[160];
                snprintf(why, sizeof why, "Invalid receive (size = %d larger than %d)", size, max);
                if (size < 0) snprintf(why, sizeof why, "Invalid receive (size = %d)", size);
                kconn_close(c, why);
                return;
            }
            if (size < 8 && !c->allow_small_frames) { /* cannot even hold api key, version and correlation id */
                kconn_close(c, "request frame too small");
                return;
            }
            c->frame = malloc(size > 0 ? (size_t)size : 1);
            if (!c->frame) {
                kconn_close(c, "out of memory for request");
                return;
            }
            c->frame_len = (size_t)size;
            c->frame_got = 0;
            memmove(c->rbuf, c->rbuf + 4, c->rlen - 4);
            c->rlen -= 4;
        }
        size_t take = c->frame_len - c->frame_got;
        if (take > c->rlen) take = c->rlen;
        memcpy(c->frame + c->frame_got, c->rbuf, take);
        c->frame_got += take;
        memmove(c->rbuf, c->rbuf + take, c->rlen - take);
        c->rlen -= take;
        if (c->frame_got < c->frame_len) return;
        uint8_t *frame = c->frame;
        size_t len = c->frame_len;
        c->frame = NULL;
        c->in_flight = true;
        c->srv->on_request(c->srv->ctx, c, frame, len);
    }
}

static void conn_read(kconn *c) {
    /* TLS returns one record (16 KiB at most) per read: more rounds for the
     * same bytes, and plaintext OpenSSL already holds is read on (no event
     * would come for it). */
    int max_rounds = c->ssl ? 64 : 16;
    for (int rounds = 0; (rounds < max_rounds || (c->ssl && SSL_has_pending(c->ssl))) && !c->closing; rounds++) {
        uint8_t *dst;
        size_t room;
        if (c->frame && c->rlen == 0) {
            /* read the frame body straight into place */
            dst = c->frame + c->frame_got;
            room = c->frame_len - c->frame_got;
        } else {
            if (c->rcap - c->rlen < READ_CHUNK / 4) {
                size_t n = c->rcap ? c->rcap * 2 : READ_CHUNK;
                if (n > 4 * READ_CHUNK && c->rlen + READ_CHUNK / 4 <= c->rcap) break;
                uint8_t *nb = realloc(c->rbuf, n);
                if (!nb) {
                    kconn_close(c, "out of memory");
                    return;
                }
                c->rbuf = nb;
                c->rcap = n;
            }
            dst = c->rbuf + c->rlen;
            room = c->rcap - c->rlen;
        }
        if (room == 0) break;
        ssize_t n = conn_recv(c, dst, room);
        if (n == 0) {
            kconn_close(c, NULL);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            kconn_close(c, NULL);
            return;
        }
        if (dst == c->rbuf + c->rlen) c->rlen += (size_t)n;
        else c->frame_got += (size_t)n;
        conn_process(c);
        if (c->in_flight || c->closing) break;
        /* a short read drained the socket; on TLS it only ends a record: read until EAGAIN */
        if ((size_t)n < room && !c->ssl) break;
    }
}

/* Frames of plaintext already decrypted by OpenSSL wait for no event. */
static void conn_read_tls_pending(kconn *c) {
    if (c->ssl && c->tls_ready && !c->closing && !c->in_flight && c->out_bytes < OUTPUT_HIGH_WATER &&
        SSL_has_pending(c->ssl))
        conn_read(c);
}

/* One handshake step. Done: the peer's principal is set and requests flow. */
static void conn_handshake(kconn *c) {
    char err[320];
    int r = tls_handshake(c->ssl, err, sizeof err);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
        c->hs_want = r == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE;
        return;
    }
    net_server *s = c->srv;
    if (r != TLS_DONE) {
        s->tls_stats.handshakes_failed++;
        log_info("org.apache.kafka.common.network.Selector",
                 "[SocketServer listenerType=BROKER] Failed authentication with /%s (channelId=%s) (SSL handshake "
                 "failed: %s)",
                 c->peer, s->listeners[c->listener].name, err);
        kconn_close(c, NULL);
        return;
    }
    tls_ctx *tls = s->listeners[c->listener].tls;
    if (tls && tls_peer_principal(tls, c->ssl, c->principal, sizeof c->principal) < 0) {
        s->tls_stats.handshakes_failed++;
        log_info("org.apache.kafka.common.network.Selector",
                 "[SocketServer listenerType=BROKER] Failed authentication with /%s (%s)", c->peer, c->principal);
        kconn_close(c, NULL);
        return;
    }
    c->tls_ready = true;
    c->ktls = tls_ktls_send(c->ssl);
    static int ktls_said = -1; /* once per process: how file ranges go out on TLS */
    if (ktls_said != (int)c->ktls) {
        ktls_said = c->ktls;
        log_info("kafka.network.Processor",
                 c->ktls ? "kTLS on: fetched file ranges go out with SSL_sendfile (the kernel encrypts)"
                         : "kTLS not available on this connection: fetched file ranges are read and encrypted in "
                           "user space (pread + SSL_write)");
    }
    if (strcmp(c->principal, "User:ANONYMOUS") != 0) /* a client certificate: say who it is */
        log_info("org.apache.kafka.common.network.Selector",
                 "[SocketServer listenerType=BROKER] Authenticated /%s on listener %s with %s: principal=%s", c->peer,
                 s->listeners[c->listener].name, SSL_get_version(c->ssl), c->principal);
    s->tls_stats.handshakes_done++;
    if (c->ktls) s->tls_stats.ktls_connections++;
}

static void conn_event(kloop *l, int fd, int events, void *arg) {
    (void)fd;
    kconn *c = arg;
    c->busy++;
    c->last_active_ms = loop_now_ms(l);
    if (c->ssl && !c->tls_ready && !c->closing) {
        conn_handshake(c);
        if (!c->tls_ready) goto done;
        events |= LOOP_READ; /* the client's first request may have come with the handshake */
    }
    if (c->read_wants_write && (events & LOOP_WRITE)) events |= LOOP_READ;
    if (c->write_wants_read && (events & LOOP_READ)) events |= LOOP_WRITE;
    if ((events & LOOP_WRITE) && !c->closing) {
        if (conn_flush(c) < 0) kconn_close(c, NULL);
        else conn_process(c); /* output drained: maybe take the next request */
    }
    if ((events & LOOP_READ) && !c->closing) {
        if (!c->in_flight && c->out_bytes < OUTPUT_HIGH_WATER) conn_read(c);
        else {
            /* Not reading now; just notice a hang-up. */
            char b;
            ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n == 0) kconn_close(c, NULL);
        }
    }
    conn_read_tls_pending(c);
done:
    c->busy--;
    if (!c->closing) update_events(c);
    conn_maybe_free(c);
}

static void idle_sweep(kloop *l, void *arg) {
    net_server *s = arg;
    int64_t now = loop_now_ms(l);
    kconn *c = s->conns;
    while (c) {
        kconn *n = c->next;
        if (!c->in_flight && !c->out_head && now - c->last_active_ms > s->cfg.max_idle_ms)
            kconn_close(c, "idle for longer than connections.max.idle.ms");
        c = n;
    }
    s->idle_timer = loop_timer_add(l, s->cfg.max_idle_ms < 10000 ? s->cfg.max_idle_ms : 10000,
                                   idle_sweep, s);
}

void net_server_free(net_server *s, int64_t timeout_ms) {
    if (!s) return;
    net_server_stop_listening(s);
    loop_timer_cancel(s->loop, s->idle_timer);
    /* Best effort: push out queued responses before closing. */
    int64_t deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        bool pending = false;
        for (kconn *c = s->conns; c; c = c->next) {
            if (c->out_head && !c->closing) {
                if (conn_flush(c) < 0) c->closing = true;
                else if (c->out_head) pending = true;
            }
        }
        if (!pending || monotonic_ms() >= deadline) break;
        usleep(1000);
    }
    while (s->conns) {
        kconn *c = s->conns;
        if (!c->closing && s->on_close) s->on_close(s->ctx, c);
        c->closing = true;
        c->busy = 0;
        conn_free_now(c);
    }
    for (int i = 0; i < s->nlisten; i++) tls_ctx_free(s->listeners[i].tls);
    free(s->ips);
    free(s);
}
