/* strbuf.c - growable text buffer (see strbuf.h). */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_add(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 128;
        while (nc < b->len + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void strbuf_str(strbuf *b, const char *s) { strbuf_add(b, s, strlen(s)); }

void strbuf_printf(strbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        strbuf_add(b, tmp, (size_t)n);
        return;
    }
    /* Longer than the stack buffer: format again into the heap. */
    char *s = NULL;
    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    strbuf_add(b, s, (size_t)n);
    free(s);
}

void strbuf_json_string(strbuf *b, const char *s, size_t n) {
    strbuf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': strbuf_add(b, "\\\"", 2); break;
        case '\\': strbuf_add(b, "\\\\", 2); break;
        case '\b': strbuf_add(b, "\\b", 2); break;
        case '\t': strbuf_add(b, "\\t", 2); break;
        case '\n': strbuf_add(b, "\\n", 2); break;
        case '\f': strbuf_add(b, "\\f", 2); break;
        case '\r': strbuf_add(b, "\\r", 2); break;
        default:
            if (c < 0x20) strbuf_printf(b, "\\u%04X", c);
            else strbuf_add(b, (const char *)&s[i], 1);
        }
    }
    strbuf_add(b, "\"", 1);
}
