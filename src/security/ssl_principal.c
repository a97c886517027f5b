/* ssl_principal.c - Kafka's SslPrincipalMapper (see ssl_principal.h). */
#include "security/ssl_principal.h"

#include <ctype.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 32

typedef struct rule {
    bool is_default;
    bool lower, upper;
    regex_t re;
    char *replacement;
} rule;

struct ssl_principal_mapper {
    rule rules[MAX_RULES];
    int n;
};

void ssl_principal_mapper_free(ssl_principal_mapper *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) {
        if (!m->rules[i].is_default) {
            regfree(&m->rules[i].re);
            free(m->rules[i].replacement);
        }
    }
    free(m);
}

/* Reads "(\\.|[^\\/])*" from *p up to the closing '/': the text as written
 * (escapes kept). Returns a malloc'd copy, or NULL when there is no '/'. */
static char *take_part(const char **p) {
    const char *s = *p, *q = s;
    while (*q && *q != '/') {
        if (*q == '\\') {
            if (!q[1]) return NULL;
            q += 2;
        } else
            q++;
    }
    if (*q != '/') return NULL;
    char *out = strndup(s, (size_t)(q - s));
    *p = q + 1;
    return out;
}

/* Java regex -> POSIX ERE for the constructs DN rules use. */
static int translate(const char *java, char *out, size_t outlen) {
    size_t o = 0;
#define PUT(str)                                                  \
    do {                                                          \
        const char *s_ = (str);                                   \
        size_t l_ = strlen(s_);                                   \
        if (o + l_ + 1 > outlen) return -1;                       \
        memcpy(out + o, s_, l_);                                  \
        o += l_;                                                  \
    } while (0)
    for (const char *p = java; *p; p++) {
        if (*p == '\\' && p[1]) {
            char ch = *++p;
            switch (ch) {
            case 'd': PUT("[0-9]"); break;
            case 'D': PUT("[^0-9]"); break;
            case 's': PUT("[[:space:]]"); break;
            case 'S': PUT("[^[:space:]]"); break;
            case 'w': PUT("[[:alnum:]_]"); break;
            case 'W': PUT("[^[:alnum:]_]"); break;
            default: {
                char lit[3] = {'\\', ch, 0};
                if (isalnum((unsigned char)ch)) return -1; /* \b \Q ...: Java only */
                PUT(lit);
            }
            }
        } else if ((*p == '*' || *p == '+' || *p == '?' || *p == '}') && p[1] == '?') {
            char q[2] = {*p, 0};
            PUT(q);
            p++; /* lazy: POSIX matching is leftmost-longest anyway */
        } else if (*p == '(' && p[1] == '?') {
            return -1; /* (?:...), look-arounds, flags */
        } else {
            char c[2] = {*p, 0};
            PUT(c);
        }
    }
    out[o] = 0;
    return 0;
#undef PUT
}

static bool blank_to(const char *s, const char *end) {
    for (; s < end; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

ssl_principal_mapper *ssl_principal_mapper_new(const char *rules, char *err, size_t errlen) {
    ssl_principal_mapper *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!rules) rules = "DEFAULT";
    const char *p = rules;
    while (*p) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *start = p;
        rule r = {0};
        bool ok = false;
        if (strncmp(p, "RULE:", 5) == 0) {
            const char *q = p + 5;
            char *pat = take_part(&q);
            char *rep = pat ? take_part(&q) : NULL;
            if (pat && rep) {
                if (*q == 'L') r.lower = true, q++;
                else if (*q == 'U') r.upper = true, q++;
                const char *comma = strchr(q, ',');
                const char *end = comma ? comma : q + strlen(q);
                if (!blank_to(q, end)) {
                    const char *tail_end = end;
                    while (tail_end > q && isspace((unsigned char)tail_end[-1])) tail_end--;
                    snprintf(err, errlen, "Invalid rule: `%.*s`, unmatched substring: `%.*s`",
                             (int)(tail_end - start), start, (int)(tail_end - q), q);
                    free(pat);
                    free(rep);
                    ssl_principal_mapper_free(m);
                    return NULL;
                }
                char ere[1024];
                if (translate(pat, ere, sizeof ere) < 0 || regcomp(&r.re, ere, REG_EXTENDED) != 0) {
                    snprintf(err, errlen, "Invalid rule: `%.*s`: the pattern `%s` is not supported",
                             (int)(end - start), start, pat);
                    free(pat);
                    free(rep);
                    ssl_principal_mapper_free(m);
                    return NULL;
                }
                free(pat);
                r.replacement = rep;
                p = comma ? comma + 1 : end;
                ok = true;
            } else {
                free(pat);
                free(rep);
            }
        }
        if (!ok) {
            /* DEFAULT, or anything else up to the next comma */
            const char *comma = strchr(p, ',');
            const char *end = comma ? comma : p + strlen(p);
            const char *tend = end;
            while (tend > p && isspace((unsigned char)tend[-1])) tend--;
            size_t len = (size_t)(tend - p);
            if (len == 7 && strncmp(p, "DEFAULT", 7) == 0) {
                r.is_default = true;
            } else if (len > 0) {
                size_t matched = strncmp(p, "DEFAULT", 7) == 0 ? 7 : 0;
                snprintf(err, errlen, "Invalid rule: `%.*s`, unmatched substring: `%.*s`", (int)len, p,
                         (int)(len - matched), p + matched);
                ssl_principal_mapper_free(m);
                return NULL;
            } else {
                p = comma ? comma + 1 : end;
                continue; /* empty rules are ignored */
            }
            p = comma ? comma + 1 : end;
        }
        if (m->n >= MAX_RULES) {
            if (!r.is_default) {
                regfree(&r.re);
                free(r.replacement);
            }
            snprintf(err, errlen, "Too many rules in ssl.principal.mapping.rules (at most %d)", MAX_RULES);
            ssl_principal_mapper_free(m);
            return NULL;
        }
        m->rules[m->n++] = r;
    }
    return m;
}

/* Java's Matcher.appendReplacement: $n is group n (Kafka's mapper first
 * turns $n beyond the group count into a literal, truncating digits as
 * escapeLiteralBackReferences does), \x is x. */
static int expand(const rule *r, const char *dn, const regmatch_t *g, char *out, size_t outlen) {
    size_t o = 0, ngroups = r->re.re_nsub;
    for (const char *p = r->replacement; *p; p++) {
        const char *piece = p;
        size_t plen = 1;
        if (*p == '\\' && p[1]) {
            piece = ++p;
        } else if (*p == '$' && isdigit((unsigned char)p[1])) {
            const char *d = p + 1;
            size_t idx = 0, used = 0;
            /* longest prefix of the digits that names a group ($0 always does) */
            for (const char *e = d; isdigit((unsigned char)*e); e++) {
                size_t v = idx * 10 + (size_t)(*e - '0');
                if (used > 0 && v > ngroups) break;
                idx = v, used++;
                if (idx == 0) break;
            }
            if (idx > ngroups) { /* a literal "$n" */
                piece = p;
                plen = 1;
            } else {
                p = d + used - 1;
                if (idx >= 10 || g[idx].rm_so < 0) continue;
                piece = dn + g[idx].rm_so;
                plen = (size_t)(g[idx].rm_eo - g[idx].rm_so);
            }
        }
        if (o + plen >= outlen) return -1;
        memcpy(out + o, piece, plen);
        o += plen;
    }
    out[o] = 0;
    return 0;
}

int ssl_principal_map(const ssl_principal_mapper *m, const char *dn, char *out, size_t outlen) {
    for (int i = 0; i < m->n; i++) {
        const rule *r = &m->rules[i];
        if (r->is_default) {
            snprintf(out, outlen, "%s", dn);
            return 0;
        }
        regmatch_t g[10];
        size_t ng = r->re.re_nsub + 1 < 10 ? r->re.re_nsub + 1 : 10;
        if (regexec(&r->re, dn, ng, g, 0) != 0) continue;
        if (g[0].rm_so != 0 || (size_t)g[0].rm_eo != strlen(dn)) continue; /* matches(): the whole DN */
        if (expand(r, dn, g, out, outlen) < 0) continue;
        for (char *c = out; *c; c++) {
            if (r->lower) *c = (char)tolower((unsigned char)*c);
            else if (r->upper) *c = (char)toupper((unsigned char)*c);
        }
        return 0;
    }
    snprintf(out, outlen, "No rules apply to %s, rules %d", dn, m->n);
    return -1;
}
