/* console.c - routing of the console's requests: authentication, the
 * embedded static files, the JSON API (see console.h). */
#include "console/console.h"

#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config_internal.h"
#include "util/log.h"

#define COMPONENT "samsa.console.Console"

static bool read_only = true;

int console_start(broker *b, char *err, size_t errlen) {
    const char *v = props_get(&b->cfg.raw, "console.read.only");
    read_only = true;
    if (v && !config_parse_bool(v, &read_only)) {
        snprintf(err, errlen, "Invalid value %s for configuration console.read.only", v);
        return -1;
    }
    if (console_auth_start(b, err, errlen) != 0) return -1;
    log_info(COMPONENT, "Web console at / (%s%s)", read_only ? "read-only" : "offset resets allowed",
             console_auth_enabled() ? ", HTTP Basic with the SASL credentials" : ", no authentication");
    return 0;
}

void console_stop(void) { console_auth_stop(); }

static bool path_is(const http_request *req, const char *p) {
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

static bool path_starts(const http_request *req, const char *p) {
    size_t n = strlen(p);
    return req->path_len >= n && memcmp(req->path, p, n) == 0;
}

static int serve_static(const http_request *req, mbuf *out, const char **ctype) {
    const char *want = "/index.html";
    size_t wlen = strlen(want);
    if (!path_is(req, "/")) {
        want = req->path + 7; /* after "/static" */
        wlen = req->path_len - 7;
    }
    for (const console_static_file *f = console_static_files; f->path; f++)
        if (strlen(f->path) == wlen && memcmp(f->path, want, wlen) == 0) {
            *ctype = f->content_type;
            mb_mem(out, (const char *)f->data, f->len);
            return 200;
        }
    mb_str(out, "Not Found\n");
    return 404;
}

int console_handle(broker *b, const http_request *req, mbuf *out, const char **ctype) {
    bool api = path_starts(req, "/api/");
    if (!path_is(req, "/") && !path_starts(req, "/static/") && !api) return 0;
    if (console_auth_enabled()) {
        char user[256];
        if (!req->authorization || !console_auth_check(b, req->authorization, req->authorization_len, user,
                                                       sizeof user)) {
            if (req->authorization) log_info(COMPONENT, "Console authentication failed");
            *ctype = "text/plain; charset=utf-8";
            mb_str(out, "Unauthorized: sign in with a user of the Kafka listeners (SASL PLAIN or SCRAM)\n");
            return 401;
        }
    }
    bool post = req->method_len == 4 && memcmp(req->method, "POST", 4) == 0;
    if (!api) {
        if (post) {
            mb_str(out, "Method Not Allowed\n");
            return 405;
        }
        return serve_static(req, out, ctype);
    }
    return console_api(b, req, read_only, out, ctype);
}
