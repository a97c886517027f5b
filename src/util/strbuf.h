/* strbuf.h - a growable NUL-terminated text buffer for the tools' printers.
 *
 * A failed allocation sets oom and makes every later append a no-op, so a
 * printer appends freely and checks once at the end. The caller owns p
 * (free it, or hand it on); a zeroed strbuf is empty and ready. */
#ifndef SAMSA_UTIL_STRBUF_H
#define SAMSA_UTIL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *p;
    size_t len, cap;
    bool oom;
} strbuf;

void strbuf_add(strbuf *b, const char *s, size_t n);
void strbuf_str(strbuf *b, const char *s);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a JSON string the way Jackson writes it: quotes, backslash and
 * control characters escaped, everything else (UTF-8 included) as is. */
void strbuf_json_string(strbuf *b, const char *s, size_t n);

#endif
