/* http.h - the smallest HTTP/1.1 server the metrics endpoint needs, on the
 * broker's event loop.
 *
 * One request at a time per connection (the next is parsed once the answer
 * is sent), keep-alive as HTTP/1.1 and HTTP/1.0 want it, requests without a
 * body only. A request's head is at most HTTP_MAX_REQUEST bytes, read into
 * a buffer inside the connection; anything malformed, too large or with a
 * body is answered 400/413/431 and that connection alone is closed. The
 * answer buffer of a connection is kept for its next request.
 */
#ifndef SAMSA_METRICS_HTTP_H
#define SAMSA_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics/mbuf.h"
#include "net/loop.h"

#define HTTP_MAX_REQUEST 8192
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_IDLE_MS 60000

typedef struct http_request {
    const char *method;
    size_t method_len;
    const char *path;        /* the target up to '?' */
    size_t path_len;
    const char *query;       /* after '?' (not decoded); NULL when there is none */
    size_t query_len;
    const char *authorization; /* the Authorization header's value; NULL when absent */
    size_t authorization_len;
    bool console_header;     /* X-Samsa-Console present: a same-origin script sent it (no
                              * cross-site form can set it), so a POST may write */
    int minor;               /* HTTP/1.<minor> */
    bool keep_alive;
} http_request;

/* Results of http_parse_request besides the byte count of a complete head. */
#define HTTP_INCOMPLETE 0
#define HTTP_BAD (-400)         /* malformed */
#define HTTP_TOO_LARGE (-431)   /* the head does not fit HTTP_MAX_REQUEST */
#define HTTP_HAS_BODY (-413)    /* Content-Length > 0 or Transfer-Encoding */

/* Parses the request head at buf: returns the bytes it takes (> 0) and
 * fills *out (pointing into buf), HTTP_INCOMPLETE when more bytes are
 * needed, or one of the negative errors. Pure: no I/O, no allocation. */
int http_parse_request(const char *buf, size_t len, http_request *out);

/* Answers a parsed GET, HEAD or POST (POST without a body: its
 * parameters are in the query): appends the body to out and returns the
 * status (200, 400, 401 (answered with a Basic challenge), 403, 404, 405,
 * 409, 503); *content_type is a static string. Other methods get 405
 * without calling it. */
typedef int (*http_handler_fn)(void *ctx, const http_request *req, mbuf *out, const char **content_type);

typedef struct http_server http_server;

/* Listens on host:port ("" = all interfaces; port 0 = any). Returns NULL
 * with a message in err; *bound_port gets the port. */
http_server *http_server_start(kloop *loop, const char *host, int port, http_handler_fn fn, void *ctx,
                               int *bound_port, char *err, size_t errlen);
/* Closes the listener and every connection. */
void http_server_free(http_server *s);
int http_server_connection_count(const http_server *s);

#endif
