/* props.c - Java .properties parser (see props.h). */
#include "util/props.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void props_init(props *p) { memset(p, 0, sizeof *p); }

void props_free(props *p) {
    for (int i = 0; i < p->count; i++) {
        free(p->items[i].key);
        free(p->items[i].value);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

int props_set(props *p, const char *key, const char *value) {
    for (int i = 0; i < p->count; i++) {
        if (strcmp(p->items[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v) return -1;
            free(p->items[i].value);
            p->items[i].value = v;
            return 0;
        }
    }
    if (p->count == p->cap) {
        int n = p->cap ? p->cap * 2 : 32;
        prop *ni = realloc(p->items, sizeof(*ni) * (size_t)n);
        if (!ni) return -1;
        p->items = ni;
        p->cap = n;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    p->items[p->count].key = k;
    p->items[p->count].value = v;
    p->count++;
    return 0;
}

const char *props_get(const props *p, const char *key) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->items[i].key, key) == 0) return p->items[i].value;
    return NULL;
}

/* Growable string used while unescaping one logical line. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static int sb_put(sbuf *b, char c) {
    if (b->len + 1 >= b->cap) {
        size_t n = b->cap ? b->cap * 2 : 128;
        char *ns = realloc(b->s, n);
        if (!ns) return -1;
        b->s = ns;
        b->cap = n;
    }
    b->s[b->len++] = c;
    b->s[b->len] = 0;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Append the UTF-8 encoding of code point cp. */
static int sb_put_utf8(sbuf *b, unsigned cp) {
    if (cp < 0x80) return sb_put(b, (char)cp);
    if (cp < 0x800) return sb_put(b, (char)(0xc0 | (cp >> 6))) | sb_put(b, (char)(0x80 | (cp & 0x3f)));
    return sb_put(b, (char)(0xe0 | (cp >> 12))) | sb_put(b, (char)(0x80 | ((cp >> 6) & 0x3f))) |
           sb_put(b, (char)(0x80 | (cp & 0x3f)));
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\f'; }

int props_load_string(props *p, const char *text) {
    const char *s = text;
    sbuf key = {0}, val = {0};
    int rc = 0;
    while (*s) {
        /* skip leading whitespace and blank lines */
        while (is_ws(*s) || *s == '\r' || *s == '\n') s++;
        if (!*s) break;
        if (*s == '#' || *s == '!') {
            while (*s && *s != '\n') s++;
            continue;
        }
        key.len = val.len = 0;
        if (key.s) key.s[0] = 0;
        if (val.s) val.s[0] = 0;
        sbuf *cur = &key;
        int in_key = 1, seen_sep = 0;
        while (*s && *s != '\n' && *s != '\r') {
            char c = *s++;
            if (c == '\\') {
                char e = *s;
                if (e == '\n' || e == '\r' || e == 0) {
                    /* continuation: skip the newline and leading whitespace */
                    if (e == '\r') s++;
                    if (*s == '\n') s++;
                    while (is_ws(*s)) s++;
                    continue;
                }
                s++;
                if (e == 't') rc |= sb_put(cur, '\t');
                else if (e == 'n') rc |= sb_put(cur, '\n');
                else if (e == 'r') rc |= sb_put(cur, '\r');
                else if (e == 'f') rc |= sb_put(cur, '\f');
                else if (e == 'u') {
                    unsigned cp = 0;
                    int ok = 1;
                    for (int i = 0; i < 4; i++) {
                        int h = hexval(s[i]);
                        if (h < 0) { ok = 0; break; }
                        cp = cp * 16 + (unsigned)h;
                    }
                    if (ok) {
                        s += 4;
                        rc |= sb_put_utf8(cur, cp);
                    } else {
                        rc |= sb_put(cur, 'u');
                    }
                } else rc |= sb_put(cur, e);
                continue;
            }
            if (in_key && (c == '=' || c == ':' || is_ws(c))) {
                in_key = 0;
                cur = &val;
                if (c == '=' || c == ':') seen_sep = 1;
                /* skip whitespace, then at most one separator, then whitespace */
                while (is_ws(*s)) s++;
                if (!seen_sep && (*s == '=' || *s == ':')) {
                    s++;
                    while (is_ws(*s)) s++;
                }
                continue;
            }
            rc |= sb_put(cur, c);
        }
        if (rc) break;
        if (props_set(p, key.s ? key.s : "", val.s ? val.s : "") < 0) {
            rc = -1;
            break;
        }
    }
    free(key.s);
    free(val.s);
    return rc ? -1 : 0;
}

int props_load_file(props *p, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s (%s)", path, strerror(errno));
        return -1;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len <= 1) {
            if (cap > (64u << 20)) break; /* a properties file is never this big */
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    buf[len] = 0;
    int rc = props_load_string(p, buf);
    free(buf);
    if (rc) snprintf(err, errlen, "%s: could not parse", path);
    return rc;
}
