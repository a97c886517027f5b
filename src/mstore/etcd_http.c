/* etcd_http.c - HTTP/1.1 for the etcd client: an incremental response parser
 * (Content-Length, chunked and close-delimited bodies, every length checked
 * before use), a splitter for streams of JSON objects, and non-blocking
 * connections on the event loop with a small idle pool per endpoint.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mstore/etcd_internal.h"

/* ---- response parser ---- */

enum { S_STATUS, S_HEADER, S_BODY_LEN, S_BODY_EOF, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_END, S_TRAILER, S_DONE, S_BAD };

void http_resp_init(http_resp *r) {
    memset(r, 0, sizeof *r);
    r->content_length = -1;
}

void http_resp_free(http_resp *r) {
    free(r->line);
    free(r->body);
    http_resp_init(r);
}

void http_resp_reset(http_resp *r) {
    char *line = r->line;
    size_t line_cap = r->line_cap;
    uint8_t *body = r->body;
    size_t body_cap = r->body_cap;
    http_resp_init(r);
    r->line = line;
    r->line_cap = line_cap;
    r->body = body;
    r->body_cap = body_cap;
}

bool http_resp_head_done(const http_resp *r) { return r->state > S_HEADER && r->state != S_BAD; }

static int bad(http_resp *r, const char *why) {
    r->state = S_BAD;
    r->bad = why;
    return HTTP_BAD;
}

void http_resp_consume(http_resp *r, size_t n) {
    size_t avail = r->body_len - r->body_off;
    r->body_off += n < avail ? n : avail;
    if (r->body_off == r->body_len) r->body_off = r->body_len = 0;
}

static int body_append(http_resp *r, const uint8_t *p, size_t n) {
    if (r->body_len - r->body_off > ETCD_MAX_BODY || n > ETCD_MAX_BODY - (r->body_len - r->body_off))
        return bad(r, "body too large");
    if (r->body_len + n > r->body_cap && r->body_off > 0) {
        memmove(r->body, r->body + r->body_off, r->body_len - r->body_off);
        r->body_len -= r->body_off;
        r->body_off = 0;
    }
    if (r->body_len + n > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n) cap *= 2;
        uint8_t *nb = realloc(r->body, cap);
        if (!nb) return bad(r, "out of memory");
        r->body = nb;
        r->body_cap = cap;
    }
    if (n) memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    return HTTP_MORE;
}

/* Gathers bytes up to '\n' into r->line. Returns 1 with the line complete
 * (CR/LF stripped, NUL-terminated), 0 when more is needed, -1 when too long. */
static int gather_line(http_resp *r, const uint8_t *p, size_t n, size_t *i) {
    const uint8_t *nl = memchr(p + *i, '\n', n - *i);
    size_t take = nl ? (size_t)(nl - (p + *i)) + 1 : n - *i;
    if (take > ETCD_MAX_HEADER - r->line_len || r->head_total + take > ETCD_MAX_HEADER) return -1;
    if (r->line_len + take + 1 > r->line_cap) {
        size_t cap = r->line_cap ? r->line_cap : 256;
        while (cap < r->line_len + take + 1) cap *= 2;
        char *nl2 = realloc(r->line, cap);
        if (!nl2) return -1;
        r->line = nl2;
        r->line_cap = cap;
    }
    memcpy(r->line + r->line_len, p + *i, take);
    r->line_len += take;
    r->head_total += take;
    *i += take;
    if (!nl) return 0;
    size_t len = r->line_len - 1; /* drop '\n' */
    if (len > 0 && r->line[len - 1] == '\r') len--;
    r->line[len] = '\0';
    r->line_len = len; /* caller resets to 0 after use */
    return 1;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

static int parse_status_line(http_resp *r, const char *s) {
    if (strncmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return bad(r, "not an HTTP/1.x status line");
    const char *c = s + 9;
    if (c[0] < '1' || c[0] > '5' || c[1] < '0' || c[1] > '9' || c[2] < '0' || c[2] > '9' ||
        (c[3] != ' ' && c[3] != '\0'))
        return bad(r, "bad HTTP status code");
    r->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
    r->keep_alive = s[7] == '1';
    return HTTP_MORE;
}

static int parse_header(http_resp *r, char *s) {
    char *colon = strchr(s, ':');
    if (!colon || colon == s) return bad(r, "bad header line");
    *colon = '\0';
    char *name = s, *value = trim(colon + 1);
    for (char *q = name; *q; q++)
        if (*q == ' ' || *q == '\t') return bad(r, "bad header name");
    if (strcasecmp(name, "Content-Length") == 0) {
        if (!*value) return bad(r, "bad Content-Length");
        int64_t v = 0;
        for (const char *q = value; *q; q++) {
            if (*q < '0' || *q > '9') return bad(r, "bad Content-Length");
            v = v * 10 + (*q - '0');
            if (v > (int64_t)ETCD_MAX_BODY) return bad(r, "body too large");
        }
        if (r->content_length >= 0 && r->content_length != v) return bad(r, "conflicting Content-Length");
        r->content_length = v;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (strcasecmp(value, "chunked") != 0) return bad(r, "unsupported Transfer-Encoding");
        r->chunked = true;
    } else if (strcasecmp(name, "Connection") == 0) {
        if (strcasestr(value, "close")) r->keep_alive = false;
        else if (strcasestr(value, "keep-alive")) r->keep_alive = true;
    }
    return HTTP_MORE;
}

/* The head is complete: choose how the body is delimited. */
static int head_done(http_resp *r) {
    if (r->status < 200) { /* interim (100 Continue): the real answer follows */
        http_resp_reset(r);
        return HTTP_MORE;
    }
    r->head_total = 0;
    if (r->status == 204 || r->status == 304) {
        r->state = S_DONE;
        return HTTP_DONE;
    }
    if (r->chunked) {
        r->state = S_CHUNK_SIZE;
    } else if (r->content_length >= 0) {
        r->state = r->content_length ? S_BODY_LEN : S_DONE;
        if (r->state == S_DONE) return HTTP_DONE;
    } else {
        r->state = S_BODY_EOF;
        r->keep_alive = false;
    }
    return HTTP_MORE;
}

static int parse_chunk_size(http_resp *r, const char *s) {
    uint64_t v = 0;
    int digits = 0;
    const char *q = s;
    for (;; q++) {
        int d;
        if (*q >= '0' && *q <= '9') d = *q - '0';
        else if (*q >= 'a' && *q <= 'f') d = *q - 'a' + 10;
        else if (*q >= 'A' && *q <= 'F') d = *q - 'A' + 10;
        else break;
        v = v * 16 + (uint64_t)d;
        if (v > ETCD_MAX_BODY) return bad(r, "chunk too large");
        digits++;
    }
    if (!digits || (*q && *q != ';' && *q != ' ' && *q != '\t')) return bad(r, "bad chunk size");
    r->chunk_left = v;
    if (v == 0) {
        r->state = S_TRAILER;
        r->head_total = 0;
    } else {
        r->state = S_CHUNK_DATA;
    }
    return HTTP_MORE;
}

int http_resp_feed(http_resp *r, const uint8_t *p, size_t n, size_t *used) {
    size_t i = 0;
    int rc = HTTP_MORE;
    while (rc == HTTP_MORE && r->state != S_DONE && r->state != S_BAD && i < n) {
        switch (r->state) {
        case S_STATUS:
        case S_HEADER:
        case S_CHUNK_SIZE:
        case S_CHUNK_END:
        case S_TRAILER: {
            int g = gather_line(r, p, n, &i);
            if (g < 0) {
                rc = bad(r, r->state == S_STATUS || r->state == S_HEADER ? "header too large" : "chunk line too large");
                break;
            }
            if (g == 0) break;
            char *line = r->line;
            r->line_len = 0;
            if (r->state == S_CHUNK_SIZE || r->state == S_CHUNK_END) r->head_total = 0; /* per line in a stream */
            if (r->state == S_STATUS) {
                rc = parse_status_line(r, line);
                if (rc == HTTP_MORE) r->state = S_HEADER;
            } else if (r->state == S_HEADER) {
                rc = *line ? parse_header(r, line) : head_done(r);
            } else if (r->state == S_CHUNK_SIZE) {
                rc = parse_chunk_size(r, line);
            } else if (r->state == S_CHUNK_END) {
                if (*line) rc = bad(r, "chunk not followed by CRLF");
                else r->state = S_CHUNK_SIZE;
            } else if (!*line) { /* S_TRAILER: an empty line ends the response */
                r->state = S_DONE;
                rc = HTTP_DONE;
            }
            break;
        }
        case S_BODY_LEN:
        case S_CHUNK_DATA: {
            uint64_t left = r->state == S_BODY_LEN ? (uint64_t)r->content_length : r->chunk_left;
            size_t take = n - i;
            if (take > left) take = (size_t)left;
            rc = body_append(r, p + i, take);
            if (rc != HTTP_MORE) break;
            i += take;
            left -= take;
            if (r->state == S_BODY_LEN) {
                r->content_length = (int64_t)left;
                if (!left) {
                    r->state = S_DONE;
                    rc = HTTP_DONE;
                }
            } else {
                r->chunk_left = left;
                if (!left) r->state = S_CHUNK_END;
            }
            break;
        }
        case S_BODY_EOF:
            rc = body_append(r, p + i, n - i);
            if (rc == HTTP_MORE) i = n;
            break;
        }
    }
    if (used) *used = i;
    if (r->state == S_DONE) return HTTP_DONE;
    if (r->state == S_BAD) return HTTP_BAD;
    return HTTP_MORE;
}

int http_resp_eof(http_resp *r) {
    if (r->state == S_DONE) return HTTP_DONE;
    if (r->state == S_BODY_EOF) {
        r->state = S_DONE;
        return HTTP_DONE;
    }
    if (r->state != S_BAD) bad(r, "connection closed before the answer was complete");
    return HTTP_BAD;
}

/* ---- JSON object stream ---- */

int json_split_next(json_split *s, const uint8_t *buf, size_t len, size_t *off, size_t *olen) {
    for (; s->pos < len; s->pos++) {
        uint8_t ch = buf[s->pos];
        if (s->depth == 0) {
            if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
            if (ch != '{') return -1;
            s->start = s->pos;
            s->depth = 1;
            continue;
        }
        if (s->in_str) {
            if (s->esc) s->esc = false;
            else if (ch == '\\') s->esc = true;
            else if (ch == '"') s->in_str = false;
            continue;
        }
        if (ch == '"') {
            s->in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++s->depth > 512) return -1;
        } else if (ch == '}' || ch == ']') {
            if (--s->depth == 0) {
                *off = s->start;
                *olen = s->pos + 1 - s->start;
                s->pos++;
                return 1;
            }
        }
    }
    return 0;
}

/* ---- connections ---- */

static void conn_io(kloop *l, int fd, int events, void *arg);

/* Calls the owner; false when the connection was closed or released from
 * inside (then it must not be touched). */
static bool notify(http_conn *hc, int what) {
    bool dead = false;
    hc->dead_flag = &dead;
    hc->fn(hc->owner, hc, what);
    if (dead) return false;
    hc->dead_flag = NULL;
    return true;
}

static void fail(http_conn *hc, const char *why) {
    hc->why = why;
    notify(hc, HC_FAIL);
}

static void fail_later(kloop *l, void *arg) {
    (void)l;
    http_conn *hc = arg;
    hc->fail_timer = 0;
    fail(hc, hc->why);
}

void http_conn_close(http_conn *hc) {
    if (!hc) return;
    if (hc->dead_flag) *hc->dead_flag = true;
    if (hc->fail_timer) loop_timer_cancel(hc->loop, hc->fail_timer);
    if (hc->fd >= 0) {
        loop_unwatch(hc->loop, hc->fd);
        close(hc->fd);
    }
    free(hc->out);
    http_resp_free(&hc->resp);
    free(hc);
}

void http_conn_release(http_conn *hc, etcd_endpoint *ep) {
    if (!hc) return;
    if (!hc->done || !hc->resp.keep_alive || hc->fd < 0 || ep->nidle >= (int)(sizeof ep->idle / sizeof ep->idle[0])) {
        http_conn_close(hc);
        return;
    }
    if (hc->dead_flag) *hc->dead_flag = true;
    hc->dead_flag = NULL;
    loop_unwatch(hc->loop, hc->fd);
    free(hc->out);
    hc->out = NULL;
    hc->out_len = hc->out_off = 0;
    http_resp_reset(&hc->resp);
    hc->fn = NULL;
    hc->owner = NULL;
    hc->sent = hc->done = false;
    ep->idle[ep->nidle++] = hc;
}

/* An idle connection the server has not closed (nothing to read, no error). */
static bool idle_usable(http_conn *hc) {
    char c;
    ssize_t n = recv(hc->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void set_keepalive(int fd) {
    int on = 1, idle = 5, intvl = 2, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

http_conn *http_conn_post(kloop *l, etcd_endpoint *ep, int ep_index, const char *path, const char *body,
                          size_t body_len, http_conn_fn fn, void *owner, bool tcp_keepalive) {
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, ep->host, ep->port, body_len);
    if (hl < 0 || (size_t)hl >= sizeof head) return NULL;
    char *out = malloc((size_t)hl + body_len);
    if (!out) return NULL;
    memcpy(out, head, (size_t)hl);
    if (body_len) memcpy(out + hl, body, body_len);

    http_conn *hc = NULL;
    while (!tcp_keepalive && ep->nidle > 0) {
        http_conn *cand = ep->idle[--ep->nidle];
        if (idle_usable(cand)) {
            hc = cand;
            break;
        }
        http_conn_close(cand);
    }
    if (!hc) {
        hc = calloc(1, sizeof *hc);
        if (!hc) {
            free(out);
            return NULL;
        }
        hc->loop = l;
        hc->ep = ep_index;
        hc->fd = -1;
        http_resp_init(&hc->resp);
        hc->connecting = true;
        int fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            hc->why = "cannot create a socket";
        } else {
            hc->fd = fd;
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (tcp_keepalive) set_keepalive(fd);
            if (connect(fd, (struct sockaddr *)&ep->addr, ep->addrlen) < 0 && errno != EINPROGRESS)
                hc->why = errno == ECONNREFUSED ? "connection refused" : "connect failed";
        }
    }
    hc->out = out;
    hc->out_len = (size_t)hl + body_len;
    hc->out_off = 0;
    hc->fn = fn;
    hc->owner = owner;
    if (!hc->why && loop_watch(l, hc->fd, LOOP_READ | LOOP_WRITE, conn_io, hc) < 0) hc->why = "cannot watch the socket";
    if (hc->why) {
        /* failures reach the owner from the loop, never from inside the call */
        hc->fail_timer = loop_timer_add(l, 0, fail_later, hc);
        if (!hc->fail_timer) {
            http_conn_close(hc);
            return NULL;
        }
    }
    return hc;
}

static void conn_io(kloop *l, int fd, int events, void *arg) {
    (void)fd;
    http_conn *hc = arg;
    if (hc->connecting) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(hc->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
        if (err) {
            fail(hc, err == ECONNREFUSED ? "connection refused" : "connect failed");
            return;
        }
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        if (getpeername(hc->fd, (struct sockaddr *)&peer, &pl) < 0) return; /* not connected yet */
        hc->connecting = false;
    }
    if ((events & LOOP_WRITE) && hc->out_off < hc->out_len) {
        while (hc->out_off < hc->out_len) {
            ssize_t w = send(hc->fd, hc->out + hc->out_off, hc->out_len - hc->out_off, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                fail(hc, "send failed");
                return;
            }
            hc->sent = true;
            hc->out_off += (size_t)w;
        }
        if (hc->out_off == hc->out_len && loop_watch(l, hc->fd, LOOP_READ, conn_io, hc) < 0) {
            fail(hc, "cannot watch the socket");
            return;
        }
    }
    if (!(events & LOOP_READ)) return;
    uint8_t buf[65536];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = recv(hc->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            fail(hc, "connection reset");
            return;
        }
        if (n == 0) {
            if (http_resp_eof(&hc->resp) == HTTP_DONE) {
                hc->done = true;
                hc->resp.keep_alive = false;
                notify(hc, HC_DONE);
            } else {
                fail(hc, hc->resp.state == 0 && hc->resp.line_len == 0 ? "connection closed" : hc->resp.bad);
            }
            return;
        }
        size_t used = 0;
        int rc = http_resp_feed(&hc->resp, buf, (size_t)n, &used);
        if (rc == HTTP_BAD) {
            hc->malformed = true;
            fail(hc, hc->resp.bad);
            return;
        }
        if (rc == HTTP_DONE) {
            if (used < (size_t)n || hc->out_off < hc->out_len) hc->resp.keep_alive = false;
            hc->done = true;
            notify(hc, HC_DONE);
            return;
        }
        if (http_resp_head_done(&hc->resp) && !notify(hc, HC_DATA)) return;
    }
}
