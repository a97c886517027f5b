/* json_mini.c - strict JSON reader and compact writer (see json_mini.h). */
#include "tools/json_mini.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct jparser {
    const char *s;
    size_t len, pos;
    karena *a;
    char *err;
    size_t errlen;
    int depth;
} jparser;

static json_value *fail(jparser *p, const char *what) {
    if (p->err && p->err[0] == 0) snprintf(p->err, p->errlen, "%s at offset %zu", what, p->pos);
    return NULL;
}

static void skip_ws(jparser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static json_value *new_value(jparser *p, json_type t) {
    json_value *v = karena_calloc(p->a, 1, sizeof *v);
    if (v) v->type = t;
    return v;
}

static int hex4(const char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string literal at p->pos (the opening quote). The decoded text
 * is never longer than the literal, so one allocation of that size does. */
static const char *parse_string(jparser *p, size_t *out_len) {
    size_t start = ++p->pos;
    size_t end = start;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return (const char *)fail(p, "unterminated string");
    char *o = karena_alloc(p->a, end - start + 1);
    if (!o) return (const char *)fail(p, "out of memory");
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) return (const char *)fail(p, "control character in string");
        if (c != '\\') {
            o[n++] = (char)c;
            p->pos++;
            continue;
        }
        char e = p->s[p->pos + 1];
        p->pos += 2;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (p->pos + 4 > end || hex4(p->s + p->pos, &cp) != 0) return (const char *)fail(p, "bad \\u escape");
            p->pos += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p->pos + 6 <= end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u' &&
                hex4(p->s + p->pos + 2, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->pos += 6;
            }
            /* 6 source bytes always cover up to 4 output bytes. */
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            return (const char *)fail(p, "bad escape");
        }
    }
    p->pos = end + 1;
    o[n] = 0;
    *out_len = n;
    return o;
}

static json_value *parse_number(jparser *p) {
    size_t start = p->pos;
    int is_float = 0;
    if (p->s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len) return fail(p, "bad number");
    if (p->s[p->pos] == '0') {
        p->pos++;
    } else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    } else {
        return fail(p, "bad number");
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        is_float = 1;
        p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == d) return fail(p, "bad number");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        is_float = 1;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == d) return fail(p, "bad number");
    }
    /* A digit right after "0" (leading zero) is not JSON. */
    if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') return fail(p, "bad number");
    json_value *v = new_value(p, is_float ? JSON_FLOAT : JSON_INT);
    if (!v) return fail(p, "out of memory");
    v->text = karena_strndup(p->a, p->s + start, p->pos - start);
    v->text_len = p->pos - start;
    if (!v->text) return fail(p, "out of memory");
    if (!is_float) {
        errno = 0;
        long long x = strtoll(v->text, NULL, 10);
        if (errno == ERANGE) v->type = JSON_BIGINT;
        else v->integer = x;
    }
    return v;
}

static json_value *parse_value(jparser *p);

/* Collects container members into arena arrays, growing by doubling. */
static int grow(jparser *p, json_value *v, size_t *cap, int with_keys) {
    if (v->count < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    json_value **items = karena_calloc(p->a, ncap, sizeof *items);
    const char **keys = with_keys ? karena_calloc(p->a, ncap, sizeof *keys) : NULL;
    if (!items || (with_keys && !keys)) return -1;
    if (v->count) {
        memcpy(items, v->items, v->count * sizeof *items);
        if (with_keys) memcpy(keys, v->keys, v->count * sizeof *keys);
    }
    v->items = items;
    v->keys = keys;
    *cap = ncap;
    return 0;
}

static json_value *parse_container(jparser *p, int is_object) {
    if (++p->depth > JSON_MAX_DEPTH) return fail(p, "nesting too deep");
    json_value *v = new_value(p, is_object ? JSON_OBJECT : JSON_ARRAY);
    if (!v) return fail(p, "out of memory");
    char close = is_object ? '}' : ']';
    size_t cap = 0;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return v;
    }
    for (;;) {
        const char *key = NULL;
        skip_ws(p);
        if (is_object) {
            size_t klen;
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a field name");
            if (!(key = parse_string(p, &klen))) return NULL;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected ':'");
            p->pos++;
        }
        json_value *item = parse_value(p);
        if (!item) return NULL;
        if (grow(p, v, &cap, is_object) != 0) return fail(p, "out of memory");
        if (is_object) v->keys[v->count] = key;
        v->items[v->count++] = item;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unexpected end of input");
        char c = p->s[p->pos++];
        if (c == close) break;
        if (c != ',') return fail(p, "expected ',' or a closing bracket");
    }
    p->depth--;
    return v;
}

static int literal(jparser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return 0;
    p->pos += n;
    return 1;
}

static json_value *parse_value(jparser *p) {
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input");
    char c = p->s[p->pos];
    json_value *v;
    switch (c) {
    case '{': return parse_container(p, 1);
    case '[': return parse_container(p, 0);
    case '"': {
        size_t n;
        const char *s = parse_string(p, &n);
        if (!s || !(v = new_value(p, JSON_STRING))) return NULL;
        v->text = s;
        v->text_len = n;
        return v;
    }
    case 't':
    case 'f':
        if (!literal(p, c == 't' ? "true" : "false")) return fail(p, "unexpected token");
        if (!(v = new_value(p, JSON_BOOL))) return NULL;
        v->boolean = c == 't';
        return v;
    case 'n':
        if (!literal(p, "null")) return fail(p, "unexpected token");
        return new_value(p, JSON_NULL);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
        return fail(p, "unexpected character");
    }
}

json_value *json_parse(const char *text, size_t len, karena *a, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    jparser p = {.s = text, .len = len, .a = a, .err = err, .errlen = errlen};
    return parse_value(&p);
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = obj->count; i-- > 0;)
        if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
    return NULL;
}

int json_is_int32(const json_value *v) {
    return v && v->type == JSON_INT && v->integer >= INT32_MIN && v->integer <= INT32_MAX;
}

void json_write_string(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04X", c);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}

void json_write(FILE *f, const json_value *v) {
    switch (v->type) {
    case JSON_NULL: fputs("null", f); break;
    case JSON_BOOL: fputs(v->boolean ? "true" : "false", f); break;
    case JSON_INT:
    case JSON_BIGINT:
    case JSON_FLOAT: fwrite(v->text, 1, v->text_len, f); break;
    case JSON_STRING: json_write_string(f, v->text, v->text_len); break;
    case JSON_ARRAY:
        fputc('[', f);
        for (size_t i = 0; i < v->count; i++) {
            if (i) fputc(',', f);
            json_write(f, v->items[i]);
        }
        fputc(']', f);
        break;
    case JSON_OBJECT:
        fputc('{', f);
        for (size_t i = 0; i < v->count; i++) {
            if (i) fputc(',', f);
            json_write_string(f, v->keys[i], strlen(v->keys[i]));
            fputc(':', f);
            json_write(f, v->items[i]);
        }
        fputc('}', f);
        break;
    }
}
