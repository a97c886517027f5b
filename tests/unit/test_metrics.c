/* test_metrics.c - the metrics endpoint's pure parts: the HTTP request
 * parser, metrics.listener, the latency histograms and the text helpers. */
#include <stdio.h>
#include <string.h>

#include "broker/request.h"
#include "metrics/exporter.h"
#include "metrics/http.h"
#include "metrics/mbuf.h"
#include "metrics/metrics.h"
#include "unit_check.h"

static int parse(const char *s, http_request *r) { return http_parse_request(s, strlen(s), r); }

static void test_parser(void) {
    http_request r;
    const char *prom = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9404\r\nAccept: text/plain;version=0.0.4\r\n"
                       "Accept-Encoding: gzip\r\n\r\n";
    int n = parse(prom, &r);
    CHECK(n == (int)strlen(prom), "a Prometheus scrape takes its whole head (%d)", n);
    CHECK(r.method_len == 3 && memcmp(r.method, "GET", 3) == 0, "method GET");
    CHECK(r.path_len == 8 && memcmp(r.path, "/metrics", 8) == 0, "path /metrics");
    CHECK(r.minor == 1 && r.keep_alive, "HTTP/1.1 keeps the connection");

    CHECK(parse("GET /metrics?name[]=up HTTP/1.1\r\n\r\n", &r) > 0 && r.path_len == 8, "the query is not the path");
    CHECK(parse("GET /metrics HTTP/1.0\r\n\r\n", &r) > 0 && !r.keep_alive, "HTTP/1.0 closes by default");
    CHECK(parse("GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r) > 0 && r.keep_alive,
          "HTTP/1.0 with keep-alive keeps it");
    CHECK(parse("GET /metrics HTTP/1.1\r\nconnection: foo, close\r\n\r\n", &r) > 0 && !r.keep_alive,
          "Connection: close (a token in a list, any case) closes");
    CHECK(parse("HEAD / HTTP/1.1\r\n\r\n", &r) > 0 && r.method_len == 4, "HEAD");
    CHECK(parse("GET /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r) > 0, "an empty body is fine");

    /* incomplete: every strict prefix of a head */
    size_t len = strlen(prom);
    int incomplete = 0;
    for (size_t i = 0; i < len; i++)
        if (http_parse_request(prom, i, &r) == HTTP_INCOMPLETE) incomplete++;
    CHECK(incomplete == (int)len, "every prefix is incomplete (%d of %zu)", incomplete, len);

    /* pipelined: the first head only */
    const char *two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    n = parse(two, &r);
    CHECK(n == 19 && r.path_len == 2 && r.path[1] == 'a', "two pipelined heads: the first (%d)", n);
    n = parse(two + n, &r);
    CHECK(n == 19 && r.path[1] == 'b', "then the second");

    /* malformed */
    static const char *const bad[] = {
        "GET  /metrics HTTP/1.1\r\n\r\n",      /* two spaces */
        "GET metrics HTTP/1.1\r\n\r\n",        /* not origin-form */
        "GET /metrics HTTP/2.0\r\n\r\n",       /* not HTTP/1.x */
        "GET /metrics HTTP/1.1\n\n",           /* bare LF */
        "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", /* space before the colon */
        "GET /metrics HTTP/1.1\r\n: x\r\n\r\n",     /* empty header name */
        "GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", /* bare CR in a value */
        "GET /met\x01rics HTTP/1.1\r\n\r\n",   /* control byte in the target */
        "\r\n",                                /* empty request line */
        "GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        "G@T /metrics HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(parse(bad[i], &r) == HTTP_BAD, "bad request %zu refused (%d)", i, parse(bad[i], &r));
    char nul[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n";
    CHECK(http_parse_request(nul, sizeof nul - 1, &r) == HTTP_BAD, "a NUL is refused");

    CHECK(parse("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &r) == HTTP_HAS_BODY, "a body is refused");
    CHECK(parse("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r) == HTTP_HAS_BODY,
          "chunked is refused");

    /* too large: a head that does not end within HTTP_MAX_REQUEST bytes */
    static char big[HTTP_MAX_REQUEST + 100];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    CHECK(http_parse_request(big, sizeof big, &r) == HTTP_TOO_LARGE, "an endless request line is too large");
    CHECK(http_parse_request(big, HTTP_MAX_REQUEST - 1, &r) == HTTP_INCOMPLETE, "below the bound it is incomplete");
    int at = snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
    for (int h = 0; h < HTTP_MAX_HEADERS + 1; h++) at += snprintf(big + at, sizeof big - (size_t)at, "X%d: y\r\n", h);
    snprintf(big + at, sizeof big - (size_t)at, "\r\n");
    CHECK(parse(big, &r) == HTTP_TOO_LARGE, "more than %d headers are too many", HTTP_MAX_HEADERS);
}

static void test_listener(void) {
    char host[256], err[512];
    int port = -1;
    CHECK(metrics_parse_listener("http://127.0.0.1:9404", host, sizeof host, &port, err, sizeof err) == 0 &&
              strcmp(host, "127.0.0.1") == 0 && port == 9404,
          "http://127.0.0.1:9404");
    CHECK(metrics_parse_listener("http://:0", host, sizeof host, &port, err, sizeof err) == 0 && host[0] == 0 &&
              port == 0,
          "all interfaces, any port");
    CHECK(metrics_parse_listener("http://[::1]:9404", host, sizeof host, &port, err, sizeof err) == 0 &&
              strcmp(host, "::1") == 0 && port == 9404,
          "IPv6 in brackets");
    CHECK(metrics_parse_listener("http://localhost:9404", host, sizeof host, &port, err, sizeof err) == 0 &&
              strcmp(host, "localhost") == 0,
          "a host name");
    static const char *const bad[] = {"127.0.0.1:9404", "https://127.0.0.1:9404", "http://127.0.0.1",
                                      "http://127.0.0.1:", "http://127.0.0.1:65536", "http://127.0.0.1:94x4",
                                      "http://127.0.0.1:9404/metrics", "http://::1:9404", "PLAINTEXT://:9404",
                                      "http://a b:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(metrics_parse_listener(bad[i], host, sizeof host, &port, err, sizeof err) == -1 &&
                  strstr(err, "Invalid value") && strstr(err, "metrics.listener"),
              "%s refused with a clear message (%s)", bad[i], err);
    }
}

static void test_histogram(void) {
    /* buckets are contiguous and ordered */
    uint64_t prev_end = 0;
    bool contiguous = true;
    for (int i = 0; i < HISTO_BUCKETS; i++) {
        uint64_t low, width;
        histo_bucket_range(i, &low, &width);
        if (low != prev_end || histo_bucket(low) != i || histo_bucket(low + width - 1) != i) contiguous = false;
        prev_end = low + width;
    }
    CHECK(contiguous, "buckets cover the range without gaps");
    CHECK(histo_bucket(UINT64_MAX) == HISTO_BUCKETS - 1, "huge values land in the last bucket");

    static histo h;
    uint32_t w = 100;
    for (uint64_t us = 1; us <= 1000; us++) histo_record(&h, us * 1000, w); /* 1..1000 ms */
    uint64_t p50 = histo_quantile(&h, 0.50, w), p99 = histo_quantile(&h, 0.99, w);
    CHECK(p50 > 450000 && p50 < 560000, "p50 of 1..1000 ms is about 500 ms (%llu us)", (unsigned long long)p50);
    CHECK(p99 > 900000 && p99 < 1100000, "p99 about 990 ms (%llu us)", (unsigned long long)p99);
    CHECK(h.count == 1000, "count");
    /* the next window still sees them, the one after does not */
    CHECK(histo_quantile(&h, 0.5, w + 1) == p50, "previous window still counted");
    CHECK(histo_quantile(&h, 0.5, w + 2) == 0, "two windows later they are gone");
    histo_record(&h, 7, w + 1);
    CHECK(histo_quantile(&h, 0.0001, w + 1) == 7, "a new window keeps the old one as previous");
    histo_record(&h, 7, w + 5);
    CHECK(histo_quantile(&h, 0.99, w + 5) == 7, "after a gap only the new value is left");
    CHECK(h.count == 1002, "the count is cumulative");
}

static void test_mbuf(void) {
    mbuf b = {0};
    mb_u64(&b, 0);
    mb_ch(&b, ' ');
    mb_i64(&b, -42);
    mb_ch(&b, ' ');
    mb_u64(&b, UINT64_MAX);
    mb_ch(&b, ' ');
    mb_milli(&b, 1234567);
    mb_ch(&b, ' ');
    mb_milli(&b, 5);
    mb_ch(&b, ' ');
    mb_label_value(&b, "a\"b\\c\nd", 7);
    mb_ch(&b, 0);
    CHECK(!b.err && strcmp(b.p, "0 -42 18446744073709551615 1234.567 0.005 a\\\"b\\\\c\\nd") == 0, "formatting: %s",
          b.p);
    size_t cap = b.cap;
    b.len = 0;
    for (int i = 0; i < 1000; i++) mb_str(&b, "0123456789");
    CHECK(b.len == 10000 && b.cap >= 10000 && b.cap >= cap, "grows");
    mb_free(&b);
}

/* Request timing when handlers nest: A's handler answers a parked request
 * whose connection dispatches B inside it; A finishes inside B's handler. */
static void test_request_timing(void) {
    kreq a = {0}, b = {0}, c = {0};
    a.api_key = 3; /* Metadata */
    a.api_version = 12;
    b.api_key = 3;
    b.api_version = 12;
    c.api_key = 1; /* Fetch, parked */
    c.api_version = 15;
    uint64_t before = metrics_requests[3].requests[12];
    metrics_request_start(&a);
    metrics_request_start(&b);
    metrics_request_sending(&a);
    metrics_request_end(&a);    /* A answered (and freed) while B's handler runs */
    memset(&a, 0x5a, sizeof a); /* a freed request must not be written to */
    metrics_request_returned(); /* B's handler returns, B not answered yet */
    CHECK(b.m_local_ns != 0, "B waits from its handler's return");
    metrics_request_returned(); /* A's handler returns: A is gone */
    kreq poisoned;
    memset(&poisoned, 0x5a, sizeof poisoned);
    CHECK(memcmp(&a, &poisoned, sizeof a) == 0, "the finished request is not touched");
    metrics_request_sending(&b);
    metrics_request_end(&b);
    CHECK(metrics_requests[3].requests[12] == before + 2, "both counted");
    metrics_request_start(&c);
    metrics_fetch_kind(&c, false);
    metrics_request_returned();
    metrics_request_sending(&c);
    metrics_request_end(&c);
    CHECK(metrics_requests[METRICS_FETCH_CONSUMER].requests[15] >= 1, "a consumer fetch is FetchConsumer too");
    CHECK(metrics_requests[1].remote.count >= 1, "remote time recorded");
    metrics_error(0, -1);
    metrics_error(0, 500); /* out of range: ignored */
    CHECK(metrics_requests[0].errors[0] >= 1, "UNKNOWN_SERVER_ERROR (-1) counted");
}

int main(void) {
    test_parser();
    test_listener();
    test_histogram();
    test_mbuf();
    test_request_timing();
    printf("test_metrics: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
