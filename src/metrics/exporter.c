/* exporter.c - metrics.listener: parse it, serve GET /metrics (see
 * exporter.h). */
#include "metrics/exporter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "console/console.h"
#include "metrics/http.h"
#include "util/log.h"

#define COMPONENT "samsa.metrics.PrometheusExporter"

static http_server *server;
static int bound_port = -1;

int metrics_parse_listener(const char *value, char *host, size_t hostlen, int *port, char *err, size_t errlen) {
    const char *why = NULL;
    const char *p = value;
    if (strncmp(p, "http://", 7) != 0) {
        why = "it must be http://host:port";
        goto bad;
    }
    p += 7;
    const char *host_end, *colon;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (!host_end || host_end[1] != ':') {
            why = "an IPv6 address is written [address]:port";
            goto bad;
        }
        colon = host_end + 1;
        p++;
    } else {
        colon = strrchr(p, ':');
        if (!colon) {
            why = "it must be http://host:port";
            goto bad;
        }
        host_end = colon;
        if (memchr(p, ':', (size_t)(host_end - p))) {
            why = "an IPv6 address is written [address]:port";
            goto bad;
        }
    }
    size_t hl = (size_t)(host_end - p);
    if (hl >= hostlen) {
        why = "the host name is too long";
        goto bad;
    }
    for (size_t i = 0; i < hl; i++)
        if (p[i] == '/' || p[i] == ' ' || p[i] == '@') {
            why = "it must be http://host:port";
            goto bad;
        }
    const char *d = colon + 1;
    if (!*d) {
        why = "the port must be a number from 0 to 65535";
        goto bad;
    }
    long v = 0;
    for (const char *c = d; *c; c++) {
        if (*c < '0' || *c > '9') {
            why = *c == '/' ? "no path after the port (the endpoint is /metrics)"
                            : "the port must be a number from 0 to 65535";
            goto bad;
        }
        if (v <= 65535) v = v * 10 + (*c - '0');
    }
    if (v > 65535) {
        why = "the port must be a number from 0 to 65535";
        goto bad;
    }
    memcpy(host, p, hl);
    host[hl] = 0;
    *port = (int)v;
    return 0;
bad:
    snprintf(err, errlen, "Invalid value %s for configuration metrics.listener: %s (e.g. http://127.0.0.1:9404)",
             value, why);
    return -1;
}

static int handle(void *ctx, const http_request *req, mbuf *out, const char **content_type) {
    broker *b = ctx;
    if (req->path_len == 8 && memcmp(req->path, "/metrics", 8) == 0) {
        *content_type = "text/plain; version=0.0.4; charset=utf-8";
        metrics_render(b, out);
        return 200;
    }
    int status = console_handle(b, req, out, content_type); /* `/`, /static/, /api/ (docs/console.md) */
    if (status) return status;
    mb_str(out, "Not Found: the metrics are at /metrics, the console at /\n");
    return 404;
}

int metrics_exporter_start(broker *b, char *err, size_t errlen) {
    const char *v = props_get(&b->cfg.raw, "metrics.listener");
    if (!v || !*v) return 0;
    char host[256];
    int port;
    if (metrics_parse_listener(v, host, sizeof host, &port, err, errlen) != 0) return -1;
    char why[512];
    if (console_start(b, why, sizeof why) != 0) {
        snprintf(err, errlen, "console: %s", why);
        return -1;
    }
    server = http_server_start(b->loop, host, port, handle, b, &bound_port, why, sizeof why);
    if (!server) {
        snprintf(err, errlen, "metrics.listener %s: %s", v, why);
        return -1;
    }
    log_info(COMPONENT, "Serving Prometheus metrics at http://%s:%d/metrics", host[0] ? host : "0.0.0.0",
             bound_port);
    return 0;
}

void metrics_exporter_stop(void) {
    http_server_free(server);
    server = NULL;
    bound_port = -1;
    metrics_render_free();
    console_stop();
}

int metrics_exporter_port(void) { return bound_port; }
