/* fetch_wait.h - parked (long-polling) fetches, woken by appends. */
#ifndef SAMSA_FETCH_WAIT_H
#define SAMSA_FETCH_WAIT_H

#include "broker/broker.h"

void fetch_wait_init(broker *b);
/* Answer every parked fetch now (shutdown). */
void fetch_wait_shutdown(broker *b);

#endif
