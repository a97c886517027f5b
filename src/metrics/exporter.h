/* exporter.h - the Prometheus endpoint: `metrics.listener`
 * (http://host:port, off unless set) serves GET /metrics in the text
 * format 0.0.4, with the names and labels the Prometheus JMX exporter's
 * Kafka rules (kafka-2_0_0.yml) give Kafka's MBeans, consumer lag as
 * kafka-exporter names it, and the usual process_* metrics
 * (docs/metrics.md). */
#ifndef SAMSA_METRICS_EXPORTER_H
#define SAMSA_METRICS_EXPORTER_H

#include <stddef.h>

#include "metrics/mbuf.h"

struct broker;

/* metrics.listener's value: http://HOST:PORT, HOST a name, an IPv4
 * address, [IPv6] or empty (all interfaces), PORT 0-65535. Returns 0, or
 * -1 with Kafka's "Invalid value ... for configuration ..." in err. */
int metrics_parse_listener(const char *value, char *host, size_t hostlen, int *port, char *err, size_t errlen);

/* Starts the endpoint when metrics.listener is set (0 when it is not):
 * returns -1 with the reason in err when it cannot listen. */
int metrics_exporter_start(struct broker *b, char *err, size_t errlen);
void metrics_exporter_stop(void);
/* The port it listens on (tests, logs); -1 when off. */
int metrics_exporter_port(void);

/* Writes every metric of b to out (the body of GET /metrics). The
 * scratch space it needs is kept between calls. */
void metrics_render(struct broker *b, mbuf *out);
/* Frees that scratch space (at shutdown). */
void metrics_render_free(void);

#endif
