/* etcd_internal.h - the pieces of the etcd client below its public API:
 * the incremental HTTP/1.1 response parser, the splitter of a stream of JSON
 * objects, non-blocking HTTP connections with an idle pool per endpoint
 * (etcd_http.c), and the decoders of etcd's JSON answers (etcd.c). Exposed
 * for the unit test and the fuzz target; nothing else should need them.
 */
#ifndef SAMSA_ETCD_INTERNAL_H
#define SAMSA_ETCD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mstore/etcd.h"
#include "net/loop.h"

#define ETCD_MAX_HEADER (64u << 10) /* status line + headers, and a chunk's size line + trailers */
#define ETCD_MAX_BODY (64u << 20)   /* a whole answer, or one buffered message of a stream */

/* ---- HTTP/1.1 response parser (no I/O) ---- */

enum { HTTP_MORE = 0, HTTP_DONE = 1, HTTP_BAD = -1 };

typedef struct http_resp {
    int state;
    int status;             /* HTTP status code once the status line is parsed */
    bool keep_alive;        /* the connection may carry another request */
    bool chunked;
    int64_t content_length; /* -1: none given */
    uint64_t chunk_left;
    char *line;             /* header / chunk-size / trailer bytes being gathered */
    size_t line_len, line_cap, head_total;
    uint8_t *body;          /* decoded body bytes; [body_off, body_len) not yet consumed */
    size_t body_len, body_off, body_cap;
    const char *bad;        /* why HTTP_BAD */
} http_resp;

void http_resp_init(http_resp *r);
void http_resp_free(http_resp *r);
/* Forget the previous response (keeps buffers) before the next one on a connection. */
void http_resp_reset(http_resp *r);
/* Feeds n bytes; *used gets how many were consumed (bytes after a complete
 * response are left for the caller). Returns HTTP_MORE, HTTP_DONE or
 * HTTP_BAD (r->bad says why). Sticky once DONE or BAD. */
int http_resp_feed(http_resp *r, const uint8_t *p, size_t n, size_t *used);
/* The peer closed: HTTP_DONE for a body delimited by the close, else HTTP_BAD. */
int http_resp_eof(http_resp *r);
bool http_resp_head_done(const http_resp *r);
/* The body bytes not yet consumed (never a NULL pointer). */
static inline const uint8_t *http_resp_data(const http_resp *r) {
    return r->body ? r->body + r->body_off : (const uint8_t *)"";
}
static inline size_t http_resp_avail(const http_resp *r) { return r->body_len - r->body_off; }
/* Drops n consumed body bytes from the front (for streams). */
void http_resp_consume(http_resp *r, size_t n);

/* ---- a stream of JSON objects, possibly split anywhere ---- */

typedef struct json_split {
    size_t pos;   /* scanned so far, relative to the buffer start */
    size_t start; /* where the current object starts */
    int depth;
    bool in_str, esc;
} json_split;

/* Scans buf[0, len) (the same bytes as before plus more); returns 1 with the
 * object in [*off, *off + *olen) (the caller consumes *off + *olen bytes and
 * zeroes the splitter), 0 when more bytes are needed, -1 when the bytes are
 * not a sequence of JSON objects (or nest deeper than 512). */
int json_split_next(json_split *s, const uint8_t *buf, size_t len, size_t *off, size_t *olen);

/* ---- connections ---- */

typedef struct etcd_endpoint {
    char host[256];
    int port;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct http_conn *idle[4]; /* idle keep-alive connections */
    int nidle;
} etcd_endpoint;

typedef struct http_conn http_conn;
enum { HC_FAIL = 1, HC_DATA = 2, HC_DONE = 3 };
/* HC_FAIL: transport failure (hc->why; hc->sent says whether any request
 * byte went out); HC_DATA: head parsed or new body bytes (streams);
 * HC_DONE: the response is complete. The owner must release or close the
 * connection on FAIL and DONE, and may do either on DATA. */
typedef void (*http_conn_fn)(void *owner, http_conn *hc, int what);

struct http_conn {
    kloop *loop;
    int fd;
    int ep;
    bool connecting, sent, done, malformed;
    loop_timer_id fail_timer;
    char *out;
    size_t out_len, out_off;
    http_resp resp;
    http_conn_fn fn;
    void *owner;
    const char *why;
    bool *dead_flag; /* set while calling fn: the owner may close us from inside */
};

/* A connection to ep (an idle one if any, else a new non-blocking connect)
 * that sends POST path with the JSON body. NULL if a socket cannot even be
 * created (errno set). */
http_conn *http_conn_post(kloop *l, etcd_endpoint *ep, int ep_index, const char *path, const char *body,
                          size_t body_len, http_conn_fn fn, void *owner, bool tcp_keepalive);
/* After HC_DONE: back to the endpoint's idle pool if reusable, else closed. */
void http_conn_release(http_conn *hc, etcd_endpoint *ep);
void http_conn_close(http_conn *hc);

/* ---- answer decoders (pure: bytes in, owned structs out) ---- */

enum { EK_PUT, EK_RANGE, EK_DELETE, EK_TXN, EK_GRANT, EK_KEEPALIVE, EK_REVOKE, EK_COMPACT };

typedef struct etcd_answer {
    etcd_result r; /* r.kvs = kvs, r.error = error */
    etcd_kv *kvs;  /* key/value each malloc'd */
    int nkvs, capkvs;
    char *error;
} etcd_answer;

/* Decodes an answer of the given kind (EK_*) with its HTTP status; always
 * fills a->r (status ETCD_OK, ETCD_ERROR or ETCD_BAD_ANSWER). */
void etcd_answer_decode(etcd_answer *a, int kind, int http_status, const uint8_t *body, size_t len);
void etcd_answer_free(etcd_answer *a);

/* Deep copy of a result (what the *_sync calls hand back). */
void etcd_result_copy(etcd_sync_result *out, const etcd_result *r);

typedef struct etcd_watch_msg {
    int status;              /* ETCD_OK, ETCD_ERROR (canceled / stream error), ETCD_BAD_ANSWER */
    char *error;
    bool created, canceled, fragment;
    int64_t revision, compact_revision;
    etcd_event *events;      /* key/value each malloc'd */
    int nevents, capevents;
} etcd_watch_msg;

/* Decodes one object of the watch stream ({"result":{...}} or {"error":...}). */
void etcd_watch_msg_decode(etcd_watch_msg *m, const uint8_t *obj, size_t len);
void etcd_watch_msg_free(etcd_watch_msg *m);

#endif
