/* sasl_broker.h - SASL on the broker's SASL_PLAINTEXT / SASL_SSL listeners:
 * one sasl_server_config per such listener (security/sasl.h), one
 * sasl_session per connection on them, and the gate dispatch.c passes every
 * request through. Connections on other listeners are not touched.
 */
#ifndef SAMSA_SASL_BROKER_H
#define SAMSA_SASL_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "security/sasl.h"

struct broker;
struct kconn;
struct kreq;

/* Reads every SASL listener's settings; -1 with Kafka's message in err
 * (unknown mechanism, PLAIN without a JAAS config...). */
int broker_sasl_start(struct broker *b, char *err, size_t errlen);
void broker_sasl_stop(struct broker *b);

/* Is listener a SASL_PLAINTEXT or SASL_SSL listener of this node? */
bool broker_sasl_listener(const struct broker *b, const char *listener);

/* Before the request header is parsed: after a v0 SaslHandshake the next
 * frame is a raw SASL token. Returns true when the frame was consumed
 * (answered or the connection closed); the frame is then freed. */
bool broker_sasl_raw_frame(struct broker *b, struct kconn *c, uint8_t *frame, size_t len);
/* After the header: may req be served on its connection now? false when
 * the connection was closed (req is freed then). */
bool broker_sasl_admit(struct broker *b, struct kreq *req);
void broker_sasl_connection_closed(struct broker *b, struct kconn *c);

/* Frames before authentication: sasl.server.max.receive.size. */
int32_t broker_sasl_max_receive(const struct broker *b);

/* The connection's session; NULL on a non-SASL listener. */
sasl_session *broker_sasl_session(struct broker *b, struct kconn *c);
/* An authentication failed: close c after connection.failed.authentication.delay.ms. */
void broker_sasl_close_later(struct broker *b, struct kconn *c, const char *why);
/* The same for a failed SaslHandshake/SaslAuthenticate whose error response
 * is in req->out (kreq_response_begin + encode): as Kafka, the response goes
 * out when the delay is over, just before the close; meanwhile nothing more
 * is read from the connection. Takes req. */
void broker_sasl_fail_later(struct broker *b, struct kreq *req);

#endif
