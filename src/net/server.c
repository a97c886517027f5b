/* server.c - listeners, framing and response queues (see server.h).
 *
 * Two sides, two kinds of thread:
 * - the server's loop (the broker's): listeners, accepting, connection
 *   counts and quotas, and a kconn per connection, the handle the request
 *   layer holds;
 * - network threads (num.network.threads, Kafka's Processors), each with a
 *   loop of its own: every accepted socket goes to one of them (round robin,
 *   as Kafka's acceptor does) and lives there as an nconn: TLS, reading
 *   frames, writing responses and file ranges.
 * They share nothing but two kinds of mailbox (a mutex-guarded list and an
 * eventfd): frames, handshake results and closes go to the server; responses,
 * "request done", frame limits and closes go to the network thread. Each
 * mailbox is first-in first-out, so a connection's messages keep their order.
 *
 * An nconn is freed only after the server has seen it closed (M_CLOSED, then
 * M_FREE back), so a message to a connection that has just closed finds a
 * closed nconn, never freed memory.
 *
 * With no network threads (fewer CPUs than network.threads.min.cpus) one
 * worker runs on the server's own loop, and the two sides call each other
 * directly for requests, answers, "done", frame limits, principals and
 * closes asked by the server: a mailbox turn there cost two more epoll
 * rounds per request and took the p99 at 10k records/s from 0.4-0.7 ms to
 * 1.3-4 ms. A frame is then handled synchronously, as before the threads,
 * and `processing` keeps an answer given from inside it from recursing.
 * Adoption, M_CLOSED and M_FREE still go through the mailbox: the handle and
 * the nconn are freed there, outside any callback that may hold them.
 *
 * On either kind of loop a connection's answers and its epoll mask are
 * settled at the end of the loop's pass (worker_pass_end): the answers a
 * pass gave one connection (its pipelined requests) leave in one sendmsg,
 * and read interest turned off and on again within the pass costs nothing.
 */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/tls.h"
#include "util/array.h"
#include "util/log.h"

#define MAX_LISTENERS 8
#define MAX_NETWORK_THREADS 64
#define READ_CHUNK 65536
/* Stop taking requests from a connection whose peer is not reading. */
#define OUTPUT_HIGH_WATER (4u << 20)
/* File ranges on a TLS connection without kTLS: read and encrypted in
 * pieces of one TLS record. */
#define TLS_STAGE 16384
/* How often a stopping network thread looks whether its output is out. */
#define STOP_POLL_MS 2

typedef struct nconn nconn;
typedef struct net_worker net_worker;

/* ---- mailboxes ---- */

enum {
    /* to a network thread */
    M_ADOPT,   /* n: a new connection */
    M_SEND,    /* n, ptr: a kwriter to queue; flag: and the request is done */
    M_DONE,    /* n: its request is answered */
    M_LIMIT,   /* n, i32 (max frame), flag (small frames) */
    M_CLOSE,   /* n, ptr: why (or NULL) */
    M_FREE,    /* n: the server has forgotten it */
    M_STOP,    /* i64: flush output until this monotonic ms, then close all */
    /* to the server */
    M_REQUEST, /* c, ptr, len: a frame */
    M_READY,   /* c, ptr: the principal after a TLS handshake */
    M_CLOSED,  /* c, n: closed on the network thread (or after M_CLOSE) */
};

typedef struct msg {
    struct msg *next;
    int type;
    kconn *c;
    nconn *n;
    void *ptr;
    size_t len;
    int64_t i64;
    int32_t i32;
    bool flag;
} msg;

typedef struct mailbox {
    pthread_mutex_t lock;
    msg *head, *tail;
    int efd;
} mailbox;

static int mailbox_init(mailbox *mb) {
    mb->head = mb->tail = NULL;
    mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mb->efd < 0) return -1;
    pthread_mutex_init(&mb->lock, NULL);
    return 0;
}

/* Takes the chain first..last (linked by next). The eventfd is written only
 * when the box was empty: one wake-up for a burst of messages. */
static void mailbox_post_chain(mailbox *mb, msg *first, msg *last) {
    last->next = NULL;
    pthread_mutex_lock(&mb->lock);
    bool was_empty = mb->head == NULL;
    if (mb->tail) mb->tail->next = first;
    else mb->head = first;
    mb->tail = last;
    pthread_mutex_unlock(&mb->lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t r;
        do r = write(mb->efd, &one, sizeof one);
        while (r < 0 && errno == EINTR);
    }
}

static void mailbox_post(mailbox *mb, msg *m) {
    mailbox_post_chain(mb, m, m);
}

/* Everything posted so far, oldest first; the caller frees each message. */
static msg *mailbox_take(mailbox *mb) {
    uint64_t v;
    ssize_t r;
    do r = read(mb->efd, &v, sizeof v);
    while (r < 0 && errno == EINTR);
    pthread_mutex_lock(&mb->lock);
    msg *m = mb->head;
    mb->head = mb->tail = NULL;
    pthread_mutex_unlock(&mb->lock);
    return m;
}

static void mailbox_destroy(mailbox *mb) {
    if (mb->efd >= 0) close(mb->efd);
    pthread_mutex_destroy(&mb->lock);
}

static msg *msg_new(int type) {
    msg *m = calloc(1, sizeof *m);
    if (!m) log_error("kafka.network.SocketServer", "out of memory for a network message");
    else m->type = type;
    return m;
}

static void writer_free(kwriter *w) {
    kw_free(w);
    free(w);
}

/* ---- the two sides of a connection ---- */

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

/* The request layer's handle: the server's loop only. */
struct kconn {
    net_server *srv;
    kconn *prev, *next;         /* all connections */
    net_worker *worker;
    nconn *n;                   /* the network side: only named in messages */
    char peer[64];
    uint32_t peer_ip_hash;
    int listener;               /* index into srv->listeners */
    bool tls;
    bool closing;               /* on_close has been called */
    void *udata;
    char principal[256];
};

/* The socket's side: its network thread only. */
struct nconn {
    net_worker *w;
    kconn *handle;              /* named in messages to the server, never touched here */
    nconn *prev, *next;         /* the thread's connections */
    int fd;
    char peer[64];
    char listener_name[32];
    /* input */
    uint8_t *rbuf;              /* bytes read but not yet part of a frame */
    size_t rlen, rcap;
    uint8_t *frame;             /* frame being filled (size known) */
    size_t frame_len, frame_got;
    uint8_t *ready;             /* a whole frame waiting behind the one in flight */
    size_t ready_len;
    bool in_flight;             /* a request is with the request layer */
    bool processing;            /* inside n_process (on the server's loop: answers must not recurse) */
    bool held;                  /* answered while the server holds requests (net_server_hold) */
    bool settle_queued;         /* in w->settleq: output and events settled at the end of the loop's pass */
    /* output */
    out_frame *out_head, *out_tail;
    size_t out_bytes;
    /* life cycle */
    bool closing;               /* closed: M_CLOSED sent, waiting for M_FREE */
    bool released;              /* socket and buffers gone */
    bool linked;                /* in w's list */
    int busy;                   /* >0 while inside a callback that may close it */
    int events;                 /* current epoll mask */
    int64_t last_active_ms;
    /* transport */
    int32_t max_frame;          /* 0: cfg.max_request_bytes (kconn_set_frame_limit) */
    bool allow_small_frames;
    tls_ctx *tls;               /* the listener's context when accepted (kept until the server goes) */
    SSL *ssl;                   /* NULL on a PLAINTEXT listener */
    bool tls_ready;             /* handshake done */
    int hs_want;                /* LOOP_READ/LOOP_WRITE the handshake waits for */
    bool read_wants_write, write_wants_read; /* TLS records going the other way */
    bool ktls;                  /* the kernel encrypts: SSL_sendfile */
    uint8_t *stage;             /* TLS_STAGE bytes of a file range being written */
    size_t stage_len, stage_off;
};

/* Counters a network thread alone writes and the server's loop reads. */
typedef struct worker_stats {
    uint64_t handshakes_done, handshakes_failed, ktls_connections, ktls_bytes, copied_bytes;
} worker_stats;

#define STAT_ADD(field, n) __atomic_fetch_add(&(field), (uint64_t)(n), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

struct net_worker {
    net_server *srv;
    int index;
    pthread_t thread;
    bool started;               /* its thread runs */
    bool on_server_loop;        /* no thread: the connections run on the server's loop */
    kloop *loop;
    mailbox inbox;              /* from the server */
    msg *out_head, *out_tail;   /* to the server, posted together at the end of the loop's pass */
    loop_timer_id out_timer;
    nconn **settleq;            /* connections to settle at the end of this pass (worker_pass_end) */
    int nsettle, capsettle;
    nconn *conns;
    loop_timer_id idle_timer;
    bool stopping;
    int64_t stop_deadline_ms;
    worker_stats stats;
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
    net_tls_stats tls_stats;    /* handshakes_started here; the rest summed from the threads when asked */
    struct {
        char name[32];
        int32_t max_bytes;
    } unauth[MAX_LISTENERS];    /* net_server_limit_unauthenticated */
    int nunauth;
    kconn *conns;
    int nconns;
    ip_count *ips;
    int nips, capips;
    loop_timer_id accept_retry;     /* accepting paused after EMFILE/ENFILE */
    mailbox inbox;              /* from the network threads */
    net_worker *workers;
    int nworkers, next_worker;
    bool workers_gone;          /* joined: the server frees nconns itself */
    tls_ctx **retired;          /* replaced TLS contexts: open connections may still map principals with them */
    int nretired;
    int hold;                   /* net_server_hold depth: answered connections wait in held */
    nconn **held;
    int nheld, capheld;
};

static void post_to_worker(net_worker *w, int type, nconn *n, void *ptr, int32_t i32, bool flag) {
    msg *m = msg_new(type);
    if (!m) {
        if (type == M_SEND) writer_free(ptr);
        else if (type == M_CLOSE) free(ptr);
        return;
    }
    m->n = n;
    m->ptr = ptr;
    m->i32 = i32;
    m->flag = flag;
    mailbox_post(&w->inbox, m);
}

/* What a network thread has for the server goes in one post per pass of its
 * loop, as Kafka's Processor hands over a poll's completed receives: one lock
 * and at most one wake-up for them, and the frames read together reach the
 * server's loop in the same turn (where Produce requests are written together). */
static void worker_flush(kloop *l, void *arg) {
    (void)l;
    net_worker *w = arg;
    w->out_timer = 0;
    if (!w->out_head) return;
    mailbox_post_chain(&w->srv->inbox, w->out_head, w->out_tail);
    w->out_head = w->out_tail = NULL;
}

static void post_to_server(net_worker *w, int type, kconn *c, nconn *n, void *ptr, size_t len) {
    msg *m = msg_new(type);
    if (!m) { /* nothing sensible is left to do; the frame is lost with the message */
        free(ptr);
        return;
    }
    m->c = c;
    m->n = n;
    m->ptr = ptr;
    m->len = len;
    if (w->on_server_loop) { /* the server's own loop reads the box after this pass's events */
        mailbox_post(&w->srv->inbox, m);
        return;
    }
    m->next = NULL;
    if (w->out_tail) w->out_tail->next = m;
    else w->out_head = m;
    w->out_tail = m;
    if (!w->out_timer) w->out_timer = loop_timer_add(w->loop, 0, worker_flush, w);
    if (!w->out_timer) worker_flush(w->loop, w); /* no timer: post at once */
}
/* ==== the network thread's side ==== */

/* ---- transport: the socket, or TLS on it ----
 * Each returns bytes moved (>0), 0 at end of stream (recv), or -1 with
 * errno: EAGAIN when the socket (or the TLS record layer) must wait. */

static ssize_t tls_fail(nconn *c, int rc, const char *op) {
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

static ssize_t n_recv(nconn *c, void *buf, size_t len) {
    if (!c->ssl) return recv(c->fd, buf, len, 0);
    ERR_clear_error();
    c->read_wants_write = false;
    int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0) return n;
    ssize_t r = tls_fail(c, n, "read");
    return r;
}

static ssize_t n_send_buf(nconn *c, const uint8_t *buf, size_t len, int flags) {
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
static ssize_t n_send_file(nconn *c, int fd, off_t off, size_t len) {
    if (!c->ssl) return sendfile(c->fd, fd, &off, len);
#ifdef BIO_get_ktls_send
    if (c->ktls) {
        ERR_clear_error();
        ossl_ssize_t n = SSL_sendfile(c->ssl, fd, off, len, 0);
        if (n > 0) {
            STAT_ADD(c->w->stats.ktls_bytes, n);
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
        STAT_ADD(c->w->stats.copied_bytes, n);
        return n;
    }
    ssize_t r = tls_fail(c, n, "write");
    if (r == 0) errno = EPIPE, r = -1;
    return r;
}

/* Buffered bytes of a frame before its first file range (its own bytes
 * when it has none): where `sent` is below this, it is in the buffer. */
static size_t frame_buffered_end(const kwriter *w) { return w->nrefs ? w->refs[0].at : w->len; }

/* The head frame, all sent, leaves the queue. */
static void out_pop_head(nconn *c) {
    out_frame *f = c->out_head;
    c->out_head = f->next;
    if (!c->out_head) c->out_tail = NULL;
    writer_free(f->w);
    free(f);
}

/* Several answers queued on a plaintext socket (the end of a pass that took
 * pipelined requests): the buffered bytes of the frames, up to the first file
 * range, go in one sendmsg instead of one send each. 1 when some went, 0 on
 * EAGAIN, -1 on an error. */
#define GATHER_MAX 64
static int n_send_gathered(nconn *c) {
    struct iovec iov[GATHER_MAX];
    int n = 0;
    bool more = false;
    for (out_frame *f = c->out_head; f; f = f->next) {
        size_t end = frame_buffered_end(f->w);
        if (n == GATHER_MAX || (size_t)f->sent >= end) {
            more = true;
            break;
        }
        iov[n].iov_base = f->w->buf + f->sent;
        iov[n].iov_len = end - (size_t)f->sent;
        n++;
        if (f->w->nrefs) {
            more = true;
            break;
        }
    }
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t sent;
    do sent = sendmsg(c->fd, &mh, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    while (sent < 0 && errno == EINTR);
    if (sent < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    for (int i = 0; i < n && sent > 0; i++) {
        out_frame *f = c->out_head;
        size_t take = (size_t)sent < iov[i].iov_len ? (size_t)sent : iov[i].iov_len;
        f->sent += (int64_t)take;
        c->out_bytes -= take;
        sent -= (ssize_t)take;
        if (f->sent < kw_size(f->w)) break;
        out_pop_head(c);
    }
    return 1;
}

/* Send as much queued output as the socket takes. Returns -1 on a fatal error. */
static int n_flush(nconn *c) {
    while (c->out_head) {
        out_frame *f = c->out_head;
        kwriter *w = f->w;
        if (!c->ssl && f->next && (size_t)f->sent < frame_buffered_end(w)) {
            int r = n_send_gathered(c);
            if (r <= 0) return r;
            continue;
        }
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
                ssize_t n = n_send_file(c, w->refs[ref].fd, off, want);
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
                ssize_t n = n_send_buf(c, w->buf + start, end - start, flags);
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
        if (f->sent >= kw_size(w)) out_pop_head(c);
    }
    return 0;
}

static void n_event(kloop *l, int fd, int events, void *arg);
static void n_process(nconn *c);
static void n_read_tls_pending(nconn *c);
static void n_write_out(nconn *c);

/* Reading ahead: while a request is in flight one more whole frame may be
 * read into memory (never handed on before the answer), so the copy from the
 * socket overlaps the request layer's work on the previous frame. Not while
 * a frame limit is in force (SASL not done yet): that limit may still change
 * with the answer in flight. Not on the server's own loop either: there is
 * nothing to overlap, and the frame read early only pushes the one being
 * appended out of the cache. */
static bool n_may_read_ahead(const nconn *c) {
    return c->max_frame == 0 && !c->allow_small_frames && !c->w->on_server_loop;
}

/* Whether bytes may be taken off the socket now. */
static bool n_wants_input(const nconn *c) {
    if (c->closing || c->ready || c->out_bytes >= OUTPUT_HIGH_WATER || c->w->stopping) return false;
    return !c->in_flight || n_may_read_ahead(c);
}

/* The socket's epoll mask for what the connection wants now. */
static void n_apply_events(nconn *c) {
    if (c->closing) return;
    int want = 0;
    if (c->ssl && !c->tls_ready) {
        want = c->hs_want;
    } else {
        /* output queued for the pass's end is written then, without waiting for EPOLLOUT */
        bool unsent = c->out_head && !c->settle_queued;
        if (n_wants_input(c)) want |= LOOP_READ;
        if (unsent) want |= LOOP_WRITE;
        if (c->read_wants_write) want |= LOOP_WRITE;
        if (c->write_wants_read && unsent) want |= LOOP_READ;
    }
    if (want != c->events) {
        loop_watch(c->w->loop, c->fd, want, n_event, c);
        c->events = want;
    }
}

/* Output and the epoll mask are settled once, at the end of the loop's
 * pass (worker_pass_end): the answers the pass gave a connection leave in
 * one write, and a mask turned off while a request was in flight and on
 * again when it was answered in the same pass costs no epoll_ctl. false when
 * the queue cannot grow (the caller settles now). */
static bool n_settle_later(nconn *c) {
    if (c->settle_queued) return true;
    net_worker *w = c->w;
    if (array_reserve((void **)&w->settleq, &w->capsettle, w->nsettle + 1, sizeof *w->settleq) < 0) return false;
    w->settleq[w->nsettle++] = c;
    c->settle_queued = true;
    c->busy++;
    return true;
}

static void n_update_events(nconn *c) {
    if (c->closing) return;
    if (!n_settle_later(c)) n_apply_events(c);
}

/* A connection released before the pass ends leaves the queue. */
static void settleq_forget(nconn *c) {
    net_worker *w = c->w;
    for (int i = 0; i < w->nsettle; i++)
        if (w->settleq[i] == c) {
            memmove(w->settleq + i, w->settleq + i + 1, (size_t)(w->nsettle - i - 1) * sizeof *w->settleq);
            w->nsettle--;
            break;
        }
    c->settle_queued = false;
}

/* The socket and buffers go; the struct stays until M_FREE. */
static void n_release(nconn *c) {
    if (c->released) return;
    c->released = true;
    if (c->settle_queued) settleq_forget(c);
    if (c->linked) {
        net_worker *w = c->w;
        if (c->prev) c->prev->next = c->next;
        else w->conns = c->next;
        if (c->next) c->next->prev = c->prev;
        c->linked = false;
        loop_unwatch(w->loop, c->fd);
    }
    if (c->ssl) {
        if (c->tls_ready) SSL_shutdown(c->ssl); /* close_notify, without waiting for the peer's */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    out_frame *f = c->out_head;
    while (f) {
        out_frame *next = f->next;
        writer_free(f->w);
        free(f);
        f = next;
    }
    c->out_head = c->out_tail = NULL;
    free(c->stage);
    free(c->rbuf);
    free(c->frame);
    free(c->ready);
    c->stage = c->rbuf = c->frame = c->ready = NULL;
}

static void n_maybe_release(nconn *c) {
    if (c->closing && c->busy == 0) n_release(c);
}

/* Close on the network thread; the server hears of it once (M_CLOSED). */
static void n_close(nconn *c, const char *why) {
    if (c->closing) return;
    /* Answers kept for the pass's end go first, as they would have gone at
     * once (what the socket does not take now is dropped, as before). */
    if (c->settle_queued && c->out_head && !c->released) (void)n_flush(c);
    c->closing = true;
    if (why) log_info("kafka.network.Processor", "Closing connection from %s: %s", c->peer, why);
    post_to_server(c->w, M_CLOSED, c->handle, c, NULL, 0);
    n_maybe_release(c);
}

static void n_send(nconn *c, kwriter *w) {
    if (c->closing) {
        writer_free(w);
        return;
    }
    out_frame *f = calloc(1, sizeof *f);
    if (!f) {
        writer_free(w);
        n_close(c, "out of memory");
        return;
    }
    f->w = w;
    if (c->out_tail) c->out_tail->next = f;
    else c->out_head = f;
    c->out_tail = f;
    c->out_bytes += (size_t)kw_size(w);
    /* Written at the end of the loop's pass, with whatever else the pass
     * answers on this connection (its next pipelined requests are taken in
     * the same pass): one send for several answers. */
    if (!n_settle_later(c)) n_write_out(c); /* out of memory for the queue: now */
}

/* Writes what is queued and sets the socket's events; as after EPOLLOUT
 * (n_event), a frame the output's high water kept back is taken now. */
static void n_write_out(nconn *c) {
    c->busy++;
    if (n_flush(c) < 0) {
        n_close(c, NULL);
    } else if (!c->processing && !c->held) {
        n_process(c);
        n_read_tls_pending(c);
    }
    c->busy--;
    /* Answered from inside n_process: it sets the events once at the end. */
    if (!c->closing && !c->processing) n_apply_events(c);
    n_maybe_release(c);
}

/* The end of the worker's loop pass: every connection answered or changed
 * in it writes its output and sets its events. Taking a next request here
 * may queue it again (appended, so settled in this same drain). */
static void worker_pass_end(kloop *l, void *arg) {
    (void)l;
    net_worker *w = arg;
    for (int i = 0; i < w->nsettle; i++) {
        nconn *c = w->settleq[i];
        c->settle_queued = false;
        c->busy--;
        if (c->closing) n_maybe_release(c);
        else if (c->out_head) n_write_out(c);
        else n_apply_events(c);
    }
    w->nsettle = 0;
}

/* Answered while the server holds new requests: its next frame waits for
 * net_server_release (busy keeps its buffers). false when out of memory. */
static bool n_hold(nconn *c) {
    net_server *s = c->w->srv;
    if (c->held) return true;
    if (array_reserve((void **)&s->held, &s->capheld, s->nheld + 1, sizeof *s->held) < 0) return false;
    s->held[s->nheld++] = c;
    c->held = true;
    c->busy++;
    return true;
}

/* Its request answered: a frame read ahead goes now; the socket is read on
 * the next event. */
static void n_next_request(nconn *c) {
    c->busy++;
    n_process(c);
    n_read_tls_pending(c);
    c->busy--;
    if (!c->closing) n_update_events(c);
}

static void n_request_done(nconn *c) {
    c->in_flight = false;
    /* Answered synchronously from inside n_process: its loop goes on. */
    if (c->closing || c->processing) return;
    /* (a network thread's connections never run a request from inside another) */
    if (c->w->on_server_loop && c->w->srv->hold > 0 && n_hold(c)) return;
    n_next_request(c);
    n_maybe_release(c);
}

/* ---- input ---- */

static void server_take_request(net_server *s, kconn *c, uint8_t *frame, size_t len);

static void n_dispatch_ready(nconn *c) {
    uint8_t *frame = c->ready;
    size_t len = c->ready_len;
    c->ready = NULL;
    c->in_flight = true;
    if (c->w->on_server_loop) server_take_request(c->w->srv, c->handle, frame, len);
    else post_to_server(c->w, M_REQUEST, c->handle, c, frame, len);
}

static void n_process_frames(nconn *c);

/* Cut frames out of the bytes read: the next one is handed on when no
 * request is in flight, else it waits (one at most). */
static void n_process(nconn *c) {
    if (c->processing) return;
    c->processing = true;
    n_process_frames(c);
    c->processing = false;
}

static void n_process_frames(nconn *c) {
    for (;;) {
        if (c->closing) return;
        if (c->ready && !c->in_flight && c->out_bytes < OUTPUT_HIGH_WATER && !c->w->stopping)
            n_dispatch_ready(c);
        if (!n_wants_input(c)) return;
        if (!c->frame) {
            if (c->rlen < 4) return;
            int32_t size = (int32_t)(((uint32_t)c->rbuf[0] << 24) | ((uint32_t)c->rbuf[1] << 16) |
                                     ((uint32_t)c->rbuf[2] << 8) | c->rbuf[3]);
            int32_t max = c->max_frame > 0 ? c->max_frame : c->w->srv->cfg.max_request_bytes;
            if (size < 0 || size > max) {
                char why[160];
                snprintf(why, sizeof why, "Invalid receive (size = %d larger than %d)", size, max);
                if (size < 0) snprintf(why, sizeof why, "Invalid receive (size = %d)", size);
                n_close(c, why);
                return;
            }
            if (size < 8 && !c->allow_small_frames) { /* cannot even hold api key, version and correlation id */
                n_close(c, "request frame too small");
                return;
            }
            c->frame = malloc(size > 0 ? (size_t)size : 1);
            if (!c->frame) {
                n_close(c, "out of memory for request");
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
        c->ready = c->frame;
        c->ready_len = c->frame_len;
        c->frame = NULL;
    }
}

static void n_read(nconn *c) {
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
                    n_close(c, "out of memory");
                    return;
                }
                c->rbuf = nb;
                c->rcap = n;
            }
            dst = c->rbuf + c->rlen;
            room = c->rcap - c->rlen;
        }
        if (room == 0) break;
        ssize_t n = n_recv(c, dst, room);
        if (n == 0) {
            n_close(c, NULL);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            n_close(c, NULL);
            return;
        }
        if (dst == c->rbuf + c->rlen) c->rlen += (size_t)n;
        else c->frame_got += (size_t)n;
        n_process(c);
        if (!n_wants_input(c)) break;
        /* a short read drained the socket; on TLS it only ends a record: read until EAGAIN */
        if ((size_t)n < room && !c->ssl) break;
    }
}

/* Frames of plaintext already decrypted by OpenSSL wait for no event. */
static void n_read_tls_pending(nconn *c) {
    if (c->ssl && c->tls_ready && n_wants_input(c) && SSL_has_pending(c->ssl)) n_read(c);
}

/* One handshake step. Done: the peer's principal goes to the server (before
 * any frame of the connection can) and requests flow. */
static void n_handshake(nconn *c) {
    char err[320];
    int r = tls_handshake(c->ssl, err, sizeof err);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
        c->hs_want = r == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE;
        return;
    }
    net_worker *w = c->w;
    if (r != TLS_DONE) {
        STAT_ADD(w->stats.handshakes_failed, 1);
        log_info("org.apache.kafka.common.network.Selector",
                 "[SocketServer listenerType=BROKER] Failed authentication with /%s (channelId=%s) (SSL handshake "
                 "failed: %s)",
                 c->peer, c->listener_name, err);
        n_close(c, NULL);
        return;
    }
    char principal[256] = "User:ANONYMOUS";
    if (c->tls && tls_peer_principal(c->tls, c->ssl, principal, sizeof principal) < 0) {
        STAT_ADD(w->stats.handshakes_failed, 1);
        log_info("org.apache.kafka.common.network.Selector",
                 "[SocketServer listenerType=BROKER] Failed authentication with /%s (%s)", c->peer, principal);
        n_close(c, NULL);
        return;
    }
    c->tls_ready = true;
    c->ktls = tls_ktls_send(c->ssl);
    static int ktls_said = -1; /* once per process: how file ranges go out on TLS */
    if (__atomic_exchange_n(&ktls_said, (int)c->ktls, __ATOMIC_RELAXED) != (int)c->ktls) {
        log_info("kafka.network.Processor",
                 c->ktls ? "kTLS on: fetched file ranges go out with SSL_sendfile (the kernel encrypts)"
                         : "kTLS not available on this connection: fetched file ranges are read and encrypted in "
                           "user space (pread + SSL_write)");
    }
    if (strcmp(principal, "User:ANONYMOUS") != 0) /* a client certificate: say who it is */
        log_info("org.apache.kafka.common.network.Selector",
                 "[SocketServer listenerType=BROKER] Authenticated /%s on listener %s with %s: principal=%s", c->peer,
                 c->listener_name, SSL_get_version(c->ssl), principal);
    STAT_ADD(w->stats.handshakes_done, 1);
    if (c->ktls) STAT_ADD(w->stats.ktls_connections, 1);
    if (w->on_server_loop) { /* before any request of it, which may now come at once */
        kconn_set_principal(c->handle, principal);
        return;
    }
    char *p = strdup(principal);
    if (p) post_to_server(w, M_READY, c->handle, c, p, 0);
}

static void n_event(kloop *l, int fd, int events, void *arg) {
    (void)fd;
    nconn *c = arg;
    c->busy++;
    c->last_active_ms = loop_now_ms(l);
    if (c->ssl && !c->tls_ready && !c->closing) {
        n_handshake(c);
        if (!c->tls_ready) goto done;
        events |= LOOP_READ; /* the client's first request may have come with the handshake */
    }
    if (c->read_wants_write && (events & LOOP_WRITE)) events |= LOOP_READ;
    if (c->write_wants_read && (events & LOOP_READ)) events |= LOOP_WRITE;
    if ((events & LOOP_WRITE) && !c->closing) {
        if (n_flush(c) < 0) n_close(c, NULL);
        else n_process(c); /* output drained: maybe take the next request */
    }
    if ((events & LOOP_READ) && !c->closing) {
        if (n_wants_input(c)) n_read(c);
        else {
            /* Not reading now; just notice a hang-up. */
            char b;
            ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n == 0) n_close(c, NULL);
        }
    }
    n_read_tls_pending(c);
done:
    c->busy--;
    if (!c->closing) n_update_events(c);
    n_maybe_release(c);
}

static void idle_sweep(kloop *l, void *arg) {
    net_worker *w = arg;
    int64_t max_idle = w->srv->cfg.max_idle_ms;
    int64_t now = loop_now_ms(l);
    nconn *c = w->conns;
    while (c) {
        nconn *next = c->next;
        if (!c->in_flight && !c->ready && !c->out_head && now - c->last_active_ms > max_idle)
            n_close(c, "idle for longer than connections.max.idle.ms");
        c = next;
    }
    w->idle_timer = loop_timer_add(l, max_idle < 10000 ? max_idle : 10000, idle_sweep, w);
}

/* Shutting down: output goes out until the deadline, then every connection
 * closes and the thread's loop ends. */
static void stop_poll(kloop *l, void *arg) {
    net_worker *w = arg;
    bool pending = false;
    for (nconn *c = w->conns; c; c = c->next)
        if (c->out_head && !c->closing) pending = true;
    if (pending && monotonic_ms() < w->stop_deadline_ms) {
        loop_timer_add(l, STOP_POLL_MS, stop_poll, w);
        return;
    }
    while (w->conns) {
        nconn *c = w->conns;
        n_close(c, NULL);
        c->busy = 0;
        n_release(c); /* unlinks it */
    }
    loop_stop(l);
}

/* A frame limit (kconn_set_frame_limit), from the next frame on. */
static void n_set_frame_limit(nconn *c, int32_t max_bytes, bool allow_small) {
    c->max_frame = max_bytes;
    c->allow_small_frames = allow_small;
    if (!c->closing && !c->processing) n_update_events(c);
}

/* A new connection joins the worker and is read from now on. */
static void n_adopt(net_worker *w, nconn *c) {
    c->next = w->conns;
    c->prev = NULL;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    c->linked = true;
    c->last_active_ms = loop_now_ms(w->loop);
    c->events = LOOP_READ;
    if (loop_watch(w->loop, c->fd, LOOP_READ, n_event, c) < 0) n_close(c, "cannot watch the socket");
}

static void worker_mail(kloop *l, int fd, int events, void *arg) {
    (void)fd;
    (void)events;
    net_worker *w = arg;
    msg *m = mailbox_take(&w->inbox);
    while (m) {
        msg *next = m->next;
        nconn *c = m->n;
        switch (m->type) {
        case M_ADOPT:
            n_adopt(w, c);
            break;
        case M_SEND:
            n_send(c, m->ptr);
            if (m->flag) n_request_done(c); /* kconn_request_done came with it */
            break;
        case M_DONE:
            n_request_done(c);
            break;
        case M_LIMIT:
            n_set_frame_limit(c, m->i32, m->flag);
            break;
        case M_CLOSE:
            n_close(c, m->ptr);
            free(m->ptr);
            break;
        case M_FREE:
            c->busy = 0;
            n_release(c);
            free(c);
            break;
        case M_STOP:
            w->stopping = true;
            w->stop_deadline_ms = m->i64;
            if (w->idle_timer) loop_timer_cancel(l, w->idle_timer);
            w->idle_timer = 0;
            stop_poll(l, w);
            break;
        default:
            break;
        }
        free(m);
        m = next;
    }
}

static void *worker_main(void *arg) {
    net_worker *w = arg;
    loop_run(w->loop);
    /* the closes of its stop */
    if (w->out_timer) loop_timer_cancel(w->loop, w->out_timer);
    worker_flush(w->loop, w);
    return NULL;
}

/* ==== the server's side ==== */

static void server_mail(kloop *l, int fd, int events, void *arg);

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

net_server *net_server_new(kloop *loop, const net_config *cfg, net_request_fn on_request,
                           net_close_fn on_close, void *ctx) {
    net_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->loop = loop;
    s->cfg = *cfg;
    s->on_request = on_request;
    s->on_close = on_close;
    s->ctx = ctx;
    s->inbox.efd = -1;
    /* 0 network threads: one "worker" without a thread of its own, whose
     * messages go through the same mailboxes on the server's loop. */
    bool on_loop = cfg->network_threads < 1;
    int nw = on_loop ? 1 : cfg->network_threads;
    if (nw > MAX_NETWORK_THREADS) nw = MAX_NETWORK_THREADS;
    s->workers = calloc((size_t)nw, sizeof *s->workers);
    if (!s->workers || mailbox_init(&s->inbox) < 0) goto fail;
    if (loop_watch(loop, s->inbox.efd, LOOP_READ, server_mail, s) < 0) goto fail;
    for (int i = 0; i < nw; i++) {
        net_worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        w->inbox.efd = -1;
        w->on_server_loop = on_loop;
        if (!(w->loop = on_loop ? loop : loop_new()) || mailbox_init(&w->inbox) < 0) goto fail;
        s->nworkers++;
        if (loop_watch(w->loop, w->inbox.efd, LOOP_READ, worker_mail, w) < 0) goto fail;
        loop_set_pass_end(w->loop, worker_pass_end, w);
        if (cfg->max_idle_ms > 0)
            w->idle_timer = loop_timer_add(w->loop, cfg->max_idle_ms < 10000 ? cfg->max_idle_ms : 10000,
                                           idle_sweep, w);
        if (on_loop) break;
        /* Signals stay with the main thread (the broker reads them from a signalfd). */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) goto fail;
        w->started = true;
        /* Named here, so it has its name before the first connection comes. */
        char name[24];
        snprintf(name, sizeof name, "network-%d", i);
        name[15] = 0; /* a thread's name has 15 characters at most */
        pthread_setname_np(w->thread, name);
    }
    return s;
fail:
    log_error("kafka.network.SocketServer", "cannot start the network threads: %s", strerror(errno));
    net_server_free(s, 0);
    return NULL;
}

int net_server_network_threads(const net_server *s) {
    return s->nworkers == 1 && s->workers[0].on_server_loop ? 0 : s->nworkers;
}

double net_server_network_idle_share(const net_server *s) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < s->nworkers; i++) {
        if (!s->workers[i].loop) continue;
        int64_t age = loop_age_ns(s->workers[i].loop);
        sum += age > 0 ? (double)loop_idle_ns(s->workers[i].loop) / (double)age : 0;
        n++;
    }
    return n ? sum / n : 0;
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
        /* Open sessions hold their own reference to the old SSL_CTX, and
         * their network threads may still map a certificate's principal with
         * the old context's rules: it is freed with the server. */
        tls_ctx **r = realloc(s->retired, sizeof(*r) * (size_t)(s->nretired + 1));
        if (!r) return -1;
        s->retired = r;
        s->retired[s->nretired++] = s->listeners[i].tls;
        s->listeners[i].tls = tls;
        return 0;
    }
    return -1;
}

const net_tls_stats *net_server_tls_stats(const net_server *s) {
    net_server *m = (net_server *)s; /* the sums are a cache of the threads' counters */
    m->tls_stats.handshakes_done = m->tls_stats.handshakes_failed = 0;
    m->tls_stats.ktls_connections = m->tls_stats.ktls_bytes = m->tls_stats.copied_bytes = 0;
    for (int i = 0; i < s->nworkers; i++) {
        worker_stats *st = &s->workers[i].stats;
        m->tls_stats.handshakes_done += STAT_GET(st->handshakes_done);
        m->tls_stats.handshakes_failed += STAT_GET(st->handshakes_failed);
        m->tls_stats.ktls_connections += STAT_GET(st->ktls_connections);
        m->tls_stats.ktls_bytes += STAT_GET(st->ktls_bytes);
        m->tls_stats.copied_bytes += STAT_GET(st->copied_bytes);
    }
    return &s->tls_stats;
}

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
    (void)l;
    (void)events;
    net_server *s = arg;
    for (int round = 0; round < 64; round++) {
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
        if (li >= s->nlisten) li = 0;
        kconn *c = calloc(1, sizeof *c);
        nconn *n = calloc(1, sizeof *n);
        if (!c || !n) {
            free(c);
            free(n);
            close(fd);
            continue;
        }
        for (int u = 0; u < s->nunauth; u++)
            if (strcmp(s->unauth[u].name, s->listeners[li].name) == 0) n->max_frame = s->unauth[u].max_bytes;
        n->tls = s->listeners[li].tls;
        if (n->tls) {
            n->ssl = tls_session_server(n->tls, fd);
            if (!n->ssl) {
                free(c);
                free(n);
                close(fd);
                continue;
            }
            n->hs_want = LOOP_READ;
        }
        (*cnt)++;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (s->cfg.send_buffer_bytes > 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s->cfg.send_buffer_bytes, sizeof(int));
        if (s->cfg.receive_buffer_bytes > 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &s->cfg.receive_buffer_bytes, sizeof(int));
        net_worker *w = &s->workers[s->next_worker];
        s->next_worker = (s->next_worker + 1) % s->nworkers;
        c->srv = s;
        c->worker = w;
        c->n = n;
        c->listener = li;
        c->tls = n->ssl != NULL;
        c->peer_ip_hash = hash;
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        snprintf(c->principal, sizeof c->principal, "User:ANONYMOUS");
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        s->listeners[li].stats.connections++; /* slots stay until the server is freed */
        s->listeners[li].stats.created++;
        n->w = w;
        n->handle = c;
        n->fd = fd;
        snprintf(n->peer, sizeof n->peer, "%s", peer);
        snprintf(n->listener_name, sizeof n->listener_name, "%s", s->listeners[li].name);
        if (n->ssl) s->tls_stats.handshakes_started++;
        if (w->on_server_loop) n_adopt(w, n);
        else post_to_worker(w, M_ADOPT, n, NULL, 0, false);
    }
}


/* ---- the request layer's handle ---- */

/* The network side has closed: forget the connection. */
static void server_forget(net_server *s, kconn *c, nconn *n) {
    if (!c->closing) {
        c->closing = true;
        if (s->on_close) s->on_close(s->ctx, c);
        c->udata = NULL;
    }
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    s->listeners[c->listener].stats.connections--;
    s->listeners[c->listener].stats.closed++;
    ip_release(s, c->peer_ip_hash);
    if (s->workers_gone) {
        n->busy = 0;
        n_release(n);
        free(n);
    } else {
        post_to_worker(c->worker, M_FREE, n, NULL, 0, false);
    }
    free(c);
}

static void server_take_request(net_server *s, kconn *c, uint8_t *frame, size_t len) {
    if (c->closing) free(frame);
    else s->on_request(s->ctx, c, frame, len); /* takes the frame */
}

static void server_handle(net_server *s, msg *m) {
    kconn *c = m->c;
    switch (m->type) {
    case M_REQUEST:
        server_take_request(s, c, m->ptr, m->len);
        break;
    case M_READY:
        kconn_set_principal(c, m->ptr);
        free(m->ptr);
        break;
    case M_CLOSED:
        server_forget(s, c, m->n);
        break;
    default:
        break;
    }
}

static void server_mail(kloop *l, int fd, int events, void *arg) {
    (void)l;
    (void)fd;
    (void)events;
    net_server *s = arg;
    msg *m = mailbox_take(&s->inbox);
    while (m) {
        msg *next = m->next;
        server_handle(s, m);
        free(m);
        m = next;
    }
}

void kconn_close(kconn *c, const char *why) {
    if (c->closing) return;
    c->closing = true;
    /* Tell the request layer first, so an in-flight request is orphaned. */
    if (c->srv->on_close) c->srv->on_close(c->srv->ctx, c);
    c->udata = NULL;
    /* The handle lives on until the network side says it has closed. */
    if (c->worker->on_server_loop) n_close(c->n, why);
    else post_to_worker(c->worker, M_CLOSE, c->n, why ? strdup(why) : NULL, 0, false);
}

void kconn_send(kconn *c, kwriter *w) {
    if (c->closing) {
        writer_free(w);
        return;
    }
    if (c->worker->on_server_loop) n_send(c->n, w);
    else post_to_worker(c->worker, M_SEND, c->n, w, 0, false);
}

void net_server_hold(net_server *s) {
    if (s) s->hold++;
}

void net_server_release(net_server *s) {
    if (!s || --s->hold > 0) return;
    /* Taken one at a time: a request run here may hold and release again. */
    while (s->nheld > 0 && s->hold == 0) {
        nconn *c = s->held[0];
        memmove(s->held, s->held + 1, (size_t)--s->nheld * sizeof *s->held);
        c->held = false;
        c->busy--;
        if (!c->closing && !c->in_flight && !c->processing) n_next_request(c);
        n_maybe_release(c);
    }
}

void kconn_request_done(kconn *c) {
    if (c->closing) return;
    if (c->worker->on_server_loop) {
        n_request_done(c->n);
        return;
    }
    /* Most answers are sent and done in one go: when the answer is still the
     * last message waiting for the thread, it carries "done" too (one wake-up
     * of the network thread instead of two). */
    mailbox *mb = &c->worker->inbox;
    pthread_mutex_lock(&mb->lock);
    msg *last = mb->tail;
    bool merged = last && last->type == M_SEND && last->n == c->n && !last->flag;
    if (merged) last->flag = true;
    pthread_mutex_unlock(&mb->lock);
    if (!merged) post_to_worker(c->worker, M_DONE, c->n, NULL, 0, false);
}

void kconn_set_frame_limit(kconn *c, int32_t max_bytes, bool allow_small) {
    /* Applies from the next frame on: the answer to the request that set
     * it goes out after this message (one mailbox, in order), and no frame
     * is read ahead while a limit is in force. */
    if (c->closing) return;
    if (c->worker->on_server_loop) n_set_frame_limit(c->n, max_bytes, allow_small);
    else post_to_worker(c->worker, M_LIMIT, c->n, NULL, max_bytes, allow_small);
}

const char *kconn_peer(const kconn *c) { return c->peer; }
const char *kconn_listener(const kconn *c) { return c->srv->listeners[c->listener].name; }
const char *kconn_principal(const kconn *c) { return c->principal; }
void kconn_set_principal(kconn *c, const char *principal) {
    snprintf(c->principal, sizeof c->principal, "%s", principal);
}
bool kconn_is_tls(const kconn *c) { return c->tls; }
void *kconn_udata(const kconn *c) { return c->udata; }
void kconn_set_udata(kconn *c, void *udata) { c->udata = udata; }

int net_server_limit_unauthenticated(net_server *s, const char *listener, int32_t max_bytes) {
    if (s->nunauth >= MAX_LISTENERS) return -1;
    snprintf(s->unauth[s->nunauth].name, sizeof s->unauth[0].name, "%s", listener);
    s->unauth[s->nunauth++].max_bytes = max_bytes;
    return 0;
}

/* ---- shutdown ---- */

/* No thread to stop: the server's loop has ended, so the connections'
 * output is pushed out here, the way the thread's stop_poll would. */
static void worker_stop_here(net_worker *w, int64_t deadline_ms) {
    worker_mail(w->loop, w->inbox.efd, LOOP_READ, w); /* answers posted since the loop's last turn */
    w->stopping = true;
    if (w->idle_timer) loop_timer_cancel(w->loop, w->idle_timer);
    w->idle_timer = 0;
    for (;;) {
        bool pending = false;
        for (nconn *c = w->conns; c; c = c->next) {
            if (!c->out_head || c->closing) continue;
            if (n_flush(c) < 0) n_close(c, NULL);
            else if (c->out_head) pending = true;
        }
        if (!pending || monotonic_ms() >= deadline_ms) break;
        usleep(1000);
    }
    while (w->conns) {
        nconn *c = w->conns;
        n_close(c, NULL);
        c->busy = 0;
        n_release(c);
    }
}

static void workers_stop(net_server *s, int64_t deadline_ms) {
    for (int i = 0; i < s->nworkers; i++) {
        net_worker *w = &s->workers[i];
        if (w->on_server_loop && w->inbox.efd >= 0) worker_stop_here(w, deadline_ms);
        if (!w->started) continue;
        msg *m = msg_new(M_STOP);
        if (m) {
            m->i64 = deadline_ms;
            mailbox_post(&w->inbox, m);
        } else {
            /* no message: stop the loop without flushing (its timer-less loop
             * wakes for the eventfd anyway when the server posts next) */
            loop_stop(w->loop);
        }
    }
    for (int i = 0; i < s->nworkers; i++) {
        net_worker *w = &s->workers[i];
        if (w->started) pthread_join(w->thread, NULL);
        w->started = false;
    }
    s->workers_gone = true;
}

void net_server_free(net_server *s, int64_t timeout_ms) {
    if (!s) return;
    net_server_stop_listening(s);
    /* Best effort: queued responses go out before the connections close. */
    workers_stop(s, monotonic_ms() + timeout_ms);
    /* What the threads said last: their closes (frames that came meanwhile are dropped). */
    if (s->inbox.efd >= 0) {
        msg *m = mailbox_take(&s->inbox);
        while (m) {
            msg *next = m->next;
            if (m->type == M_CLOSED) server_handle(s, m);
            else free(m->ptr);
            free(m);
            m = next;
        }
        loop_unwatch(s->loop, s->inbox.efd);
    }
    /* What the threads did not read: its nconns were all closed and released at their stop. */
    for (int i = 0; i < s->nworkers; i++) {
        net_worker *w = &s->workers[i];
        if (w->inbox.efd >= 0) {
            msg *m = mailbox_take(&w->inbox);
            while (m) {
                msg *next = m->next;
                if (m->type == M_SEND) writer_free(m->ptr);
                else if (m->type == M_CLOSE) free(m->ptr);
                else if (m->type == M_ADOPT) { /* accepted just before the stop */
                    m->n->busy = 0;
                    n_release(m->n);
                    free(m->n);
                } else if (m->type == M_FREE) {
                    n_release(m->n);
                    free(m->n);
                }
                free(m);
                m = next;
            }
            if (w->on_server_loop) loop_unwatch(w->loop, w->inbox.efd);
            mailbox_destroy(&w->inbox);
        }
        if (w->loop && w->on_server_loop) loop_set_pass_end(w->loop, NULL, NULL);
        if (w->loop && !w->on_server_loop) loop_free(w->loop);
        free(w->settleq);
    }
    /* Handles the threads never closed (an ADOPT left unread, out of memory): */
    while (s->conns) {
        kconn *c = s->conns;
        if (!c->closing && s->on_close) s->on_close(s->ctx, c);
        s->conns = c->next;
        ip_release(s, c->peer_ip_hash);
        free(c);
    }
    if (s->inbox.efd >= 0) mailbox_destroy(&s->inbox);
    for (int i = 0; i < s->nlisten; i++) tls_ctx_free(s->listeners[i].tls);
    for (int i = 0; i < s->nretired; i++) tls_ctx_free(s->retired[i]);
    free(s->retired);
    free(s->held);
    free(s->workers);
    free(s->ips);
    free(s);
}
