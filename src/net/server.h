/* server.h - listeners and client connections: Kafka's size-prefixed
 * framing in, queued responses out (memory and sendfile ranges).
 *
 * The sockets live on network threads (net_config.network_threads, Kafka's
 * num.network.threads): TLS, reading and writing run there, on other cores
 * than the request layer; with 0 threads, on the server's loop. Everything
 * in this header is called on the server's loop only, and every callback
 * comes on it.
 *
 * A connection hands the request layer one frame at a time and hands on the
 * next only after kconn_request_done() (Kafka's per-connection ordering). On
 * a network thread it may read one whole frame ahead meanwhile, never before
 * a SASL authentication has lifted the frame limit. A frame size beyond
 * max_request_bytes closes the connection before anything is allocated.
 */
#ifndef SAMSA_SERVER_H
#define SAMSA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"
#include "protocol/wire.h"

typedef struct net_server net_server;
typedef struct kconn kconn;
typedef struct tls_ctx tls_ctx;

typedef struct net_config {
    int32_t max_request_bytes;      /* socket.request.max.bytes */
    int64_t max_idle_ms;            /* connections.max.idle.ms */
    int32_t max_connections;        /* max.connections */
    int32_t max_connections_per_ip; /* max.connections.per.ip */
    int32_t send_buffer_bytes;      /* socket.send.buffer.bytes (-1 = OS default) */
    int32_t receive_buffer_bytes;
    int network_threads;            /* num.network.threads; 0: the sockets stay on the server's loop */
} net_config;

/* A complete request frame (without the 4-byte size). The callee owns frame
 * (malloc'd) and must eventually call kconn_request_done(). */
typedef void (*net_request_fn)(void *ctx, kconn *c, uint8_t *frame, size_t len);
/* The connection is closing; its in-flight request (kconn_udata) is orphaned. */
typedef void (*net_close_fn)(void *ctx, kconn *c);

net_server *net_server_new(kloop *loop, const net_config *cfg, net_request_fn on_request,
                           net_close_fn on_close, void *ctx);
/* How many network threads serve the connections (0: the server's loop does). */
int net_server_network_threads(const net_server *s);
/* Their average share of time spent waiting for work since start, 0-1
 * (Kafka's NetworkProcessorAvgIdlePercent). */
double net_server_network_idle_share(const net_server *s);
/* Listen on host:port (host "" = all interfaces). Returns the bound port
 * (useful with port 0) or -1 with a message in err. */
int net_server_listen(net_server *s, const char *host, int port, char *err, size_t errlen);
/* A named listener (Kafka's listener name); tls NULL for PLAINTEXT, else
 * its TLS context, owned by the server from now on. */
int net_server_listen_as(net_server *s, const char *name, const char *host, int port, tls_ctx *tls, char *err,
                         size_t errlen);
/* Replace listener name's TLS context (certificate reload): new
 * connections use tls, open ones keep the context they started with. The
 * server owns tls (and frees the old one). -1 when no TLS listener has name. */
int net_server_set_tls(net_server *s, const char *name, tls_ctx *tls);
/* The TLS context listener name uses now (NULL: none or no such listener). */
const tls_ctx *net_server_tls(const net_server *s, const char *name);

typedef struct net_tls_stats {
    uint64_t handshakes_started, handshakes_done, handshakes_failed;
    uint64_t ktls_connections;
    uint64_t ktls_bytes;   /* file bytes sent with SSL_sendfile (kernel TLS) */
    uint64_t copied_bytes; /* file bytes read and encrypted in user space */
} net_tls_stats;
const net_tls_stats *net_server_tls_stats(const net_server *s);

/* Until the request layer says otherwise, connections of this listener
 * take frames of at most max_bytes: Kafka reads at most
 * sasl.server.max.receive.size bytes before SASL authentication. */
int net_server_limit_unauthenticated(net_server *s, const char *listener, int32_t max_bytes);
/* This connection's largest frame (0 = socket.request.max.bytes) and whether
 * frames under 8 bytes may come (raw SASL tokens after a v0 SaslHandshake). */
void kconn_set_frame_limit(kconn *c, int32_t max_bytes, bool allow_small);

/* Connection-rate quotas (Kafka's ConnectionQuotas): fn is asked about each
 * accepted connection with the peer's IP; > 0 means throttled: the socket is
 * closed after that many ms without being served (DelayedCloseSocket). */
typedef int64_t (*net_accept_throttle_fn)(void *ctx, const char *ip);
void net_server_set_accept_throttle(net_server *s, net_accept_throttle_fn fn);

/* Stop accepting; connections stay until net_server_free. */
void net_server_stop_listening(net_server *s);
/* Flush pending output for up to timeout_ms, then close everything. */
void net_server_free(net_server *s, int64_t timeout_ms);
int net_server_connection_count(const net_server *s);
/* Per listener, as Kafka's socket-server-metrics (connection-count,
 * connection-creation-total, connection-close-total). */
typedef struct net_listener_stats {
    int connections;
    uint64_t created, closed;
} net_listener_stats;
int net_server_listener_count(const net_server *s);
/* Listener i's counters and name; NULL when there is no listener i. */
const net_listener_stats *net_server_listener_stats(const net_server *s, int i, const char **name);

/* Queue a response; takes ownership of the heap-allocated writer w. */
void kconn_send(kconn *c, kwriter *w);
/* The current request is answered (or dropped): go on with the next frame. */
void kconn_request_done(kconn *c);
/* Between hold and release no connection's next request starts, even where
 * answering would start it at once (sockets on the loop): a handler that
 * answers requests in the middle of its work (the produce turn) finishes
 * before any request it did not expect runs. Nests. */
void net_server_hold(net_server *s);
void net_server_release(net_server *s);
/* Close (after the current callback returns). */
void kconn_close(kconn *c, const char *why);
const char *kconn_peer(const kconn *c);
/* The listener the connection came in on (its name, e.g. "SSL"). */
const char *kconn_listener(const kconn *c);
/* Who the peer is: "User:ANONYMOUS" on PLAINTEXT, "User:<mapped DN>" after
 * a TLS handshake with a client certificate (ssl.principal.mapping.rules). */
const char *kconn_principal(const kconn *c);
bool kconn_is_tls(const kconn *c);
/* After SASL authentication: the authenticated principal ("User:alice"). */
void kconn_set_principal(kconn *c, const char *principal);
void *kconn_udata(const kconn *c);
void kconn_set_udata(kconn *c, void *udata);

#endif
