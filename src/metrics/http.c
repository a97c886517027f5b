/* http.c - request head parser and the metrics listener (see http.h). */
#include "metrics/http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

#define COMPONENT "samsa.metrics.HttpServer"

/* ---- mbuf ---- */

bool mb_grow(mbuf *b, size_t need) {
    if (b->err) return false;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->err = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void mb_free(mbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void mb_label_value(mbuf *b, const char *s, size_t n) {
    size_t plain = 0;
    while (plain < n && s[plain] != '\\' && s[plain] != '"' && s[plain] != '\n') plain++;
    mb_mem(b, s, plain);
    for (size_t i = plain; i < n; i++) {
        char c = s[i];
        if (c == '\\') mb_mem(b, "\\\\", 2);
        else if (c == '"') mb_mem(b, "\\\"", 2);
        else if (c == '\n') mb_mem(b, "\\n", 2);
        else mb_ch(b, c);
    }
}

/* ---- parser ---- */

static bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool ieq(const char *a, size_t alen, const char *b) {
    size_t blen = strlen(b);
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (char)(y + 32);
        if (x != y) return false;
    }
    return true;
}

/* Does the comma-separated header value list contain token? */
static bool has_token(const char *v, size_t n, const char *token) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > s && ieq(v + s, e - s, token)) return true;
    }
    return false;
}

/* One line ending in CRLF starting at pos: its length without the CRLF, or
 * -1 when the CRLF is not there yet, -2 for a bare CR or LF or a NUL. */
static long line_at(const char *buf, size_t len, size_t pos) {
    for (size_t i = pos; i < len; i++) {
        if (buf[i] == '\r') {
            if (i + 1 >= len) return -1;
            return buf[i + 1] == '\n' ? (long)(i - pos) : -2;
        }
        if (buf[i] == '\n' || buf[i] == 0) return -2;
    }
    return -1;
}

int http_parse_request(const char *buf, size_t len, http_request *out) {
    memset(out, 0, sizeof *out);
    size_t lim = len < HTTP_MAX_REQUEST ? len : HTTP_MAX_REQUEST;
    long n = line_at(buf, lim, 0);
    if (n == -2) return HTTP_BAD;
    if (n == -1) return len >= HTTP_MAX_REQUEST ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
    /* request-line = method SP request-target SP HTTP-version */
    const char *l = buf, *end = buf + n;
    const char *p = l;
    while (p < end && is_tchar((unsigned char)*p)) p++;
    if (p == l || p - l > 16 || p >= end || *p != ' ') return HTTP_BAD;
    out->method = l;
    out->method_len = (size_t)(p - l);
    const char *t = ++p;
    while (p < end && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f) p++;
    if (p == t || p >= end || *p != ' ' || *t != '/') return HTTP_BAD;
    out->path = t;
    const char *q = memchr(t, '?', (size_t)(p - t));
    out->path_len = (size_t)((q ? q : p) - t);
    if (q) {
        out->query = q + 1;
        out->query_len = (size_t)(p - q - 1);
    }
    p++;
    if (end - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9') return HTTP_BAD;
    out->minor = p[7] - '0';
    out->keep_alive = out->minor >= 1;
    size_t pos = (size_t)n + 2;
    for (int h = 0;; h++) {
        n = line_at(buf, lim, pos);
        if (n == -2) return HTTP_BAD;
        if (n == -1) return len >= HTTP_MAX_REQUEST ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
        if (n == 0) return (int)(pos + 2); /* the empty line ends the head */
        if (h >= HTTP_MAX_HEADERS) return HTTP_TOO_LARGE;
        const char *name = buf + pos, *lend = name + n;
        const char *c = name;
        while (c < lend && is_tchar((unsigned char)*c)) c++;
        if (c == name || c >= lend || *c != ':') return HTTP_BAD; /* no space before the colon (RFC 9112) */
        size_t name_len = (size_t)(c - name);
        const char *v = c + 1;
        while (v < lend && (*v == ' ' || *v == '\t')) v++;
        const char *ve = lend;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        for (const char *x = v; x < ve; x++)
            if ((unsigned char)*x < 0x20 && *x != '\t') return HTTP_BAD;
        size_t vlen = (size_t)(ve - v);
        if (ieq(name, name_len, "authorization")) {
            out->authorization = v;
            out->authorization_len = vlen;
        } else if (ieq(name, name_len, "x-samsa-console")) {
            out->console_header = true;
        } else if (ieq(name, name_len, "connection")) {
            if (has_token(v, vlen, "close")) out->keep_alive = false;
            else if (has_token(v, vlen, "keep-alive")) out->keep_alive = true;
        } else if (ieq(name, name_len, "transfer-encoding")) {
            return HTTP_HAS_BODY;
        } else if (ieq(name, name_len, "content-length")) {
            if (vlen == 0) return HTTP_BAD;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9') return HTTP_BAD;
                if (v[i] != '0') return HTTP_HAS_BODY;
            }
        }
        pos += (size_t)n + 2;
    }
}

/* ---- server ---- */

typedef struct hconn {
    http_server *srv;
    struct hconn *prev, *next;
    int fd;
    char in[HTTP_MAX_REQUEST];
    size_t inlen;
    mbuf out;                /* the answer being sent; kept for the next one */
    size_t out_off;          /* first byte of the answer in out (headers are placed before the body) */
    size_t sent;
    bool close_after;
    bool draining;           /* answered and shut down for writing: reading what the peer still sends */
    int events;
    int64_t last_active_ms;
} hconn;

struct http_server {
    kloop *loop;
    int lfd;
    http_handler_fn fn;
    void *ctx;
    hconn *conns;
    int nconns;
    loop_timer_id idle_timer;
};

static void conn_event(kloop *l, int fd, int events, void *arg);

static void conn_free(hconn *c) {
    http_server *s = c->srv;
    loop_unwatch(s->loop, c->fd);
    close(c->fd);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    mb_free(&c->out);
    free(c);
}

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* Room kept in front of the body for the status line and headers. */
#define HEAD_ROOM 512

/* On every answer: the console's pages may not be framed by another site
 * (a framed reset button could be clicked by a trick) nor load anything
 * but their own files; answers are not cached (they are live state). */
#define SAFETY_HEADERS                                                                                     \
    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"                                         \
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\nCache-Control: no-store\r\n"

/* Builds the answer in c->out: body first (after HEAD_ROOM bytes), then
 * the head written just before it, so nothing is copied. */
static void answer(hconn *c, const http_request *req, int parse_result) {
    mbuf *o = &c->out;
    o->len = 0;
    o->err = false;
    if (!mb_room(o, HEAD_ROOM)) {
        c->close_after = true;
        return;
    }
    o->len = HEAD_ROOM;
    int status;
    const char *ctype = "text/plain; charset=utf-8";
    bool head_only = false;
    if (parse_result < 0) {
        status = -parse_result;
        mb_str(o, reason(status));
        mb_ch(o, '\n');
        c->close_after = true;
    } else if (!((req->method_len == 3 && memcmp(req->method, "GET", 3) == 0) ||
                 (req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0) ||
                 (req->method_len == 4 && memcmp(req->method, "POST", 4) == 0))) {
        status = 405;
        mb_str(o, "Method Not Allowed\n");
        c->close_after = !req->keep_alive;
    } else {
        head_only = req->method_len == 4 && req->method[0] == 'H';
        status = c->srv->fn(c->srv->ctx, req, o, &ctype);
        c->close_after = !req->keep_alive;
    }
    if (o->err) {
        /* out of memory while rendering: answer 500 with no body */
        o->err = false;
        o->len = HEAD_ROOM;
        status = 500;
        c->close_after = true;
    }
    size_t body = o->len - HEAD_ROOM;
    char head[HEAD_ROOM];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n" SAFETY_HEADERS "%s%s\r\n", status,
                     reason(status), ctype, body,
                     status == 405   ? "Allow: GET, HEAD, POST\r\n"
                     : status == 401 ? "WWW-Authenticate: Basic realm=\"samsa\", charset=\"UTF-8\"\r\n"
                                     : "",
                     c->close_after ? "Connection: close\r\n" : "");
    if (n < 0 || n >= HEAD_ROOM) n = 0; /* cannot happen: the head is short */
    memcpy(o->p + HEAD_ROOM - n, head, (size_t)n);
    c->out_off = HEAD_ROOM - (size_t)n;
    if (head_only) o->len = HEAD_ROOM;
    c->sent = 0;
}

static bool pending(const hconn *c) { return c->out.len > 0 && c->out_off + c->sent < c->out.len; }

static void update_events(hconn *c) {
    int want = pending(c) && !c->draining ? LOOP_WRITE : LOOP_READ;
    if (want != c->events) {
        loop_watch(c->srv->loop, c->fd, want, conn_event, c);
        c->events = want;
    }
}

/* Parses and answers what is buffered while nothing is waiting to be sent.
 * Returns false when the connection must close now. */
static bool process(hconn *c) {
    while (!pending(c) && !c->close_after) {
        http_request req;
        int r = http_parse_request(c->in, c->inlen, &req);
        if (r == HTTP_INCOMPLETE) return true;
        answer(c, &req, r);
        if (r > 0) {
            memmove(c->in, c->in + r, c->inlen - (size_t)r);
            c->inlen -= (size_t)r;
        } else {
            c->inlen = 0;
        }
    }
    return true;
}

/* Closing at once with unread input would reset the connection and the
 * peer could lose the error answer: shut down the sending side and read
 * until the peer closes (or HTTP_DRAIN_MS passes, see idle_sweep). */
#define HTTP_DRAIN_MS 2000

static void start_draining(hconn *c) {
    shutdown(c->fd, SHUT_WR);
    c->draining = true;
    c->last_active_ms = loop_now_ms(c->srv->loop);
    c->inlen = 0;
}

/* Sends what the socket takes. Returns false on an error or when the
 * answer is out and the connection is to close. */
static bool flush(hconn *c) {
    while (pending(c)) {
        size_t at = c->out_off + c->sent;
        ssize_t n = send(c->fd, c->out.p + at, c->out.len - at, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            if (errno == EINTR) continue;
            return false;
        }
        c->sent += (size_t)n;
    }
    c->out.len = 0;
    if (c->close_after) {
        if (!c->draining) start_draining(c);
        return true;
    }
    /* a large answer's buffer is not kept for small ones forever */
    if (c->out.cap > (16u << 20)) mb_free(&c->out);
    return true;
}

static void conn_event(kloop *l, int fd, int events, void *arg) {
    (void)fd;
    hconn *c = arg;
    if (c->draining) { /* last_active_ms stays when draining began: bounded by HTTP_DRAIN_MS */
        char sink[4096];
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) conn_free(c);
        return;
    }
    c->last_active_ms = loop_now_ms(l);
    if (events & LOOP_WRITE) {
        if (!flush(c)) {
            conn_free(c);
            return;
        }
    }
    if (events & LOOP_READ) {
        if (c->inlen < sizeof c->in) {
            ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                conn_free(c);
                return;
            }
            if (n > 0) c->inlen += (size_t)n;
        }
    }
    /* answer what is complete, send it, and go on while the socket takes it */
    for (int rounds = 0; rounds < 8 && !c->draining; rounds++) {
        process(c);
        if (!flush(c)) {
            conn_free(c);
            return;
        }
        if (pending(c) || c->inlen == 0) break;
    }
    update_events(c);
}

static void accept_event(kloop *l, int lfd, int events, void *arg) {
    (void)events;
    http_server *s = arg;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (s->nconns >= HTTP_MAX_CONNECTIONS) {
            close(fd);
            continue;
        }
        hconn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->srv = s;
        c->fd = fd;
        c->events = LOOP_READ;
        c->last_active_ms = loop_now_ms(l);
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        if (loop_watch(l, fd, LOOP_READ, conn_event, c) < 0) conn_free(c);
    }
}

static void idle_sweep(kloop *l, void *arg) {
    http_server *s = arg;
    int64_t now = loop_now_ms(l);
    for (hconn *c = s->conns, *n; c; c = n) {
        n = c->next;
        if (now - c->last_active_ms > (c->draining ? HTTP_DRAIN_MS : HTTP_IDLE_MS)) conn_free(c);
    }
    s->idle_timer = loop_timer_add(l, 1000, idle_sweep, s);
}

http_server *http_server_start(kloop *loop, const char *host, int port, http_handler_fn fn, void *ctx,
                               int *bound_port, char *err, size_t errlen) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *h = host && *host ? host : NULL;
    int rc = getaddrinfo(h, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return NULL;
    }
    struct addrinfo *ai = res;
    if (!h)
        for (struct addrinfo *p = res; p; p = p->ai_next)
            if (p->ai_family == AF_INET6) ai = p;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return NULL;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        snprintf(err, errlen, "cannot bind to %s:%d: %s", host ? host : "", port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return NULL;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6) *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    s->loop = loop;
    s->lfd = fd;
    s->fn = fn;
    s->ctx = ctx;
    if (loop_watch(loop, fd, LOOP_READ, accept_event, s) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        close(fd);
        free(s);
        return NULL;
    }
    s->idle_timer = loop_timer_add(loop, 5000, idle_sweep, s);
    return s;
}

void http_server_free(http_server *s) {
    if (!s) return;
    loop_unwatch(s->loop, s->lfd);
    close(s->lfd);
    loop_timer_cancel(s->loop, s->idle_timer);
    while (s->conns) conn_free(s->conns);
    free(s);
}

int http_server_connection_count(const http_server *s) { return s ? s->nconns : 0; }
