/* test_console.c - the parts of the HTTP request parser the console uses:
 * the query string, the Authorization header, the X-Samsa-Console header,
 * and a POST without a body (the reset); and the embedded static files. */
#include <stdio.h>
#include <string.h>

#include "console/console.h"
#include "metrics/http.h"
#include "unit_check.h"

static int parse(const char *s, http_request *r) { return http_parse_request(s, strlen(s), r); }

static bool eq(const char *p, size_t n, const char *want) { return p && n == strlen(want) && memcmp(p, want, n) == 0; }

static void test_request_fields(void) {
    http_request r;
    CHECK(parse("GET /api/messages?topic=a%2Fb&partition=0 HTTP/1.1\r\n\r\n", &r) > 0, "parsed");
    CHECK(eq(r.path, r.path_len, "/api/messages"), "the path stops at '?'");
    CHECK(eq(r.query, r.query_len, "topic=a%2Fb&partition=0"), "the query is passed undecoded");
    CHECK(parse("GET /api/topics HTTP/1.1\r\n\r\n", &r) > 0 && r.query == NULL && !r.authorization &&
              !r.console_header,
          "no query, no credentials, no console header");
    CHECK(parse("GET /api/topics? HTTP/1.1\r\n\r\n", &r) > 0 && r.query && r.query_len == 0, "an empty query");
    CHECK(parse("GET / HTTP/1.1\r\nauthorization:   Basic YWRtaW46eA==  \r\n\r\n", &r) > 0 &&
              eq(r.authorization, r.authorization_len, "Basic YWRtaW46eA=="),
          "Authorization (any case), spaces trimmed");
    CHECK(parse("POST /api/group/reset?group=g HTTP/1.1\r\nX-Samsa-Console: 1\r\nContent-Length: 0\r\n\r\n", &r) > 0 &&
              r.console_header && r.method_len == 4,
          "a POST without a body, with the console header");
    CHECK(parse("POST /api/group/reset HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", &r) == HTTP_HAS_BODY,
          "a POST with a body is still refused");
}

static void test_static_files(void) {
    const console_static_file *index = NULL, *js = NULL;
    int n = 0;
    for (const console_static_file *f = console_static_files; f->path; f++, n++) {
        if (strcmp(f->path, "/index.html") == 0) index = f;
        if (strcmp(f->path, "/app.js") == 0) js = f;
    }
    CHECK(n >= 3, "the static files are embedded (%d)", n);
    CHECK(index && strstr(index->content_type, "text/html") && index->len > 100 &&
              memmem(index->data, index->len, "/static/app.js", 14),
          "index.html loads app.js");
    CHECK(js && strstr(js->content_type, "javascript") && js->data[js->len] == 0, "app.js, NUL after its bytes");
}

int main(void) {
    test_request_fields();
    test_static_files();
    printf("test_console: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
