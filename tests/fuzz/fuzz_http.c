/* fuzz_http.c - libFuzzer target for the metrics endpoint's HTTP request
 * parser (metrics/http.h) and the metrics.listener parser.
 *
 * The input is a byte stream as a client would send it. It is parsed as
 * the server does (head after head, the bytes a head takes dropped), and
 * every prefix must agree with the whole: a complete head found in a
 * prefix is found at the same length in the whole. Pointers into the
 * request must stay inside the input. The same bytes, as text, go through
 * metrics_parse_listener. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_http tests/fuzz/corpus/http
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/exporter.h"
#include "metrics/http.h"

#define FUZZ_MAX_INPUT (4 * HTTP_MAX_REQUEST)

static void check_inside(const char *buf, size_t len, const http_request *r) {
    if (r->method < buf || r->method + r->method_len > buf + len) __builtin_trap();
    if (r->path < buf || r->path + r->path_len > buf + len) __builtin_trap();
    if (r->path_len == 0 || r->path[0] != '/') __builtin_trap();
    /* the console's fields: the query follows the path's '?', the credentials are in the head */
    if (r->query && (r->query != r->path + r->path_len + 1 || r->query + r->query_len > buf + len))
        __builtin_trap();
    if (r->authorization && (r->authorization < buf || r->authorization + r->authorization_len > buf + len))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    const char *buf = (const char *)data;
    size_t pos = 0;
    for (int heads = 0; heads < 64 && pos < size; heads++) {
        http_request r;
        int n = http_parse_request(buf + pos, size - pos, &r);
        if (n == HTTP_INCOMPLETE || n < 0) {
            if (n == HTTP_INCOMPLETE && size - pos >= HTTP_MAX_REQUEST) __builtin_trap();
            break;
        }
        if ((size_t)n > size - pos || n > HTTP_MAX_REQUEST) __builtin_trap();
        check_inside(buf + pos, (size_t)n, &r);
        /* a shorter prefix is incomplete, never a different head */
        http_request r2;
        int m = http_parse_request(buf + pos, (size_t)n - 1, &r2);
        if (m > 0) __builtin_trap();
        pos += (size_t)n;
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char host[256], err[512];
    int port = -1;
    if (metrics_parse_listener(text, host, sizeof host, &port, err, sizeof err) == 0 &&
        (port < 0 || port > 65535 || strlen(host) >= sizeof host))
        __builtin_trap();
    free(text);
    return 0;
}
