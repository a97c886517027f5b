/* dispatch.h - the request layer's entry points for the network layer. */
#ifndef SAMSA_DISPATCH_H
#define SAMSA_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/server.h"

/* net_request_fn / net_close_fn for net_server_new (ctx = broker *). */
void dispatch_request(void *ctx, kconn *c, uint8_t *frame, size_t len);
void dispatch_connection_closed(void *ctx, kconn *c);
bool dispatch_api_supported(int16_t key, int16_t version);

#endif
