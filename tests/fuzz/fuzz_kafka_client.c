/* fuzz_kafka_client.c - libFuzzer target for the Kafka client's response
 * side (src/net/kafka_client.c): frame sizes, reassembly across reads,
 * the large-frame buffer, correlation ids, response header versions, the
 * ApiVersions handshake and its fallback, and the generated decoders of
 * the responses that get through.
 *
 * The input is what a broker sends back on one connection. A kc_conn adopts
 * one end of a socketpair and queues a few requests of different header
 * versions (correlation ids are deterministic: ApiVersions is 1, then 2,
 * 3, ...); a timer writes the input into the other end in pieces (the first
 * byte picks the piece size) and then shuts it. Every callback must come
 * exactly once, after which the loop ends; a hang traps. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_kafka_client tests/fuzz/corpus/kafka_client
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/kafka_client.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

#define FUZZ_MAX_INPUT (1u << 20)

typedef struct fz {
    kloop *l;
    kc_conn *c;
    int peer;
    const uint8_t *data;
    size_t size, off, piece;
    int sent, called;
    bool shut;
} fz;

static void on_response(kc_status st, kc_resp *resp, void *arg) {
    fz *f = arg;
    f->called++;
    if (f->called > f->sent) __builtin_trap();
    if (st == KC_OK) {
        if (!resp->body.buf && resp->api_key >= 0) __builtin_trap();
        if (resp->api_key >= 0) {
            const kmsg_type *t = kmsg_response_type(resp->api_key);
            void *m = t ? karena_alloc(resp->arena, t->size) : NULL;
            if (m) kc_resp_decode(resp, m);
        }
        if (f->called & 1) {
            size_t len = 0;
            uint8_t *frame = kc_resp_take(resp, &len);
            if (frame && (resp->body.buf < frame || resp->body.buf > frame + len)) __builtin_trap();
            free(frame);
        }
    } else if (resp->body.len != 0) {
        __builtin_trap();
    }
    if (f->c && kc_outstanding(f->c) == 0 && f->shut) loop_stop(f->l);
}

static void feed(kloop *l, void *arg) {
    fz *f = arg;
    while (f->off < f->size) {
        size_t n = f->size - f->off;
        if (n > f->piece) n = f->piece;
        ssize_t w = send(f->peer, f->data + f->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        if (w <= 0) {
            f->off = f->size;
            break;
        }
        f->off += (size_t)w;
        break; /* one piece per loop turn */
    }
    if (f->off < f->size) {
        loop_timer_add(l, 0, feed, f);
        return;
    }
    shutdown(f->peer, SHUT_WR);
    f->shut = true;
    if (kc_outstanding(f->c) == 0) loop_stop(l);
}

static void hang(kloop *l, void *arg) {
    (void)l;
    (void)arg;
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR);
        quiet = true;
    }
    if (size < 1 || size > FUZZ_MAX_INPUT) return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return 0;
    fz f;
    memset(&f, 0, sizeof f);
    f.piece = data[0] ? (size_t)data[0] * 97 : FUZZ_MAX_INPUT;
    f.data = data + 1;
    f.size = size - 1;
    f.peer = sv[1];
    f.l = loop_new();
    kc_config cfg;
    kc_config_defaults(&cfg);
    cfg.max_in_flight = 16;
    cfg.max_response_bytes = 512 << 10;
    cfg.request_timeout_ms = 60000;
    f.c = kc_conn_new_fd(f.l, sv[0], &cfg);
    if (!f.c) __builtin_trap();
    /* header v1 responses (flexible) and v0 ones, and a connect waiter */
    static const int16_t reqs[][2] = {{KAPI_METADATA, 12}, {KAPI_FETCH, 15}, {KAPI_METADATA, 8},
                                      {KAPI_PRODUCE, 9},   {KAPI_FETCH, 4},  {KAPI_LIST_OFFSETS, 7}};
    kwriter body;
    kw_init(&body);
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        if (kc_send(f.c, reqs[i][0], reqs[i][1], &body, 0, on_response, &f) == 0) f.sent++;
    if (kc_connect(f.c, 0, on_response, &f) == 0) f.sent++;
    kw_free(&body);
    loop_timer_add(f.l, 0, feed, &f);
    loop_timer_id guard = loop_timer_add(f.l, 10000, hang, NULL);
    loop_run(f.l);
    loop_timer_cancel(f.l, guard);
    if (f.called != f.sent) __builtin_trap();
    kc_conn *c = f.c;
    f.c = NULL;
    kc_conn_free(c); /* nothing left to cancel */
    if (f.called != f.sent) __builtin_trap();
    close(sv[1]);
    loop_free(f.l);
    return 0;
}
