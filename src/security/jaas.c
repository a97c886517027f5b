/* jaas.c - JAAS configuration text (see jaas.h). */
#include "security/jaas.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { TOK_EOF = -1, TOK_WORD = -3, TOK_NUMBER = -2, TOK_QUOTED = -4 };

typedef struct tokenizer {
    const char *p;
    int type;     /* TOK_* or the ordinary character */
    char *sval;   /* word or quoted string (owned until the next token) */
} tokenizer;

/* StreamTokenizer's defaults plus JaasConfig's wordChars('-', '_', '$'). */
static bool word_start(unsigned char ch) {
    return isalpha(ch) || ch == '-' || ch == '_' || ch == '$' || ch >= 0xA0;
}
static bool word_char(unsigned char ch) { return word_start(ch) || isdigit(ch) || ch == '.'; }

static int next_token(tokenizer *t) {
    free(t->sval);
    t->sval = NULL;
    for (;;) {
        while (*t->p && (unsigned char)*t->p <= ' ') t->p++;
        if (t->p[0] == '/' && t->p[1] == '/') {
            while (*t->p && *t->p != '\n' && *t->p != '\r') t->p++;
        } else if (t->p[0] == '/' && t->p[1] == '*') {
            const char *e = strstr(t->p + 2, "*/");
            t->p = e ? e + 2 : t->p + strlen(t->p);
        } else if (t->p[0] == '/') {
            while (*t->p && *t->p != '\n' && *t->p != '\r') t->p++; /* '/' is the comment char */
        } else {
            break;
        }
    }
    unsigned char ch = (unsigned char)*t->p;
    if (!ch) return t->type = TOK_EOF;
    if (word_start(ch)) {
        const char *s = t->p;
        while (*t->p && word_char((unsigned char)*t->p)) t->p++;
        t->sval = strndup(s, (size_t)(t->p - s));
        return t->type = TOK_WORD;
    }
    if (isdigit(ch) || ch == '.') {
        t->p++;
        while (*t->p && (isdigit((unsigned char)*t->p) || *t->p == '.')) t->p++;
        return t->type = TOK_NUMBER;
    }
    if (ch == '"' || ch == '\'') {
        char q = (char)ch;
        t->p++;
        size_t cap = strlen(t->p) + 1, n = 0;
        char *v = malloc(cap);
        if (!v) return t->type = TOK_EOF;
        while (*t->p && *t->p != q && *t->p != '\n' && *t->p != '\r') {
            char c = *t->p++;
            if (c == '\\' && *t->p) {
                char e = *t->p++;
                switch (e) {
                case 'a': c = 7; break;
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'v': c = '\v'; break;
                default: c = e;
                }
            }
            v[n++] = c;
        }
        v[n] = 0;
        if (*t->p == q) t->p++;
        t->sval = v;
        return t->type = TOK_QUOTED;
    }
    t->p++;
    return t->type = ch;
}

static int parse_entry(tokenizer *t, jaas_entry *e, char *err, size_t errlen) {
    e->login_module = t->sval ? strdup(t->sval) : strdup("");
    if (next_token(t) == TOK_EOF) {
        snprintf(err, errlen, "Login module control flag not specified in JAAS config");
        return -1;
    }
    if (!t->sval) {
        snprintf(err, errlen, "Login module control flag is not available in the JAAS config");
        return -1;
    }
    static const char *const flags[] = {"REQUIRED", "REQUISITE", "SUFFICIENT", "OPTIONAL"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(t->sval, flags[i]) == 0) snprintf(e->flag, sizeof e->flag, "%s", flags[i]);
    if (!e->flag[0]) {
        snprintf(err, errlen, "Invalid login module control flag '%s' in JAAS config", t->sval);
        return -1;
    }
    while (next_token(t) != TOK_EOF && t->type != ';') {
        char *key = t->sval ? strdup(t->sval) : strdup("null");
        if (next_token(t) != '=' || next_token(t) == TOK_EOF || !t->sval) {
            snprintf(err, errlen, "Value not specified for key '%s' in JAAS config", key);
            free(key);
            return -1;
        }
        int slot = -1;
        for (int i = 0; i < e->noptions; i++)
            if (strcmp(e->options[i].key, key) == 0) slot = i; /* a later key replaces (HashMap.put) */
        if (slot < 0) {
            jaas_option *no = realloc(e->options, sizeof *no * (size_t)(e->noptions + 1));
            if (!no) {
                free(key);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            e->options = no;
            slot = e->noptions++;
            e->options[slot].key = key;
        } else {
            free(key);
            free(e->options[slot].value);
        }
        e->options[slot].value = strdup(t->sval);
    }
    if (t->type != ';') {
        snprintf(err, errlen, "JAAS config entry not terminated by semi-colon");
        return -1;
    }
    return 0;
}

int jaas_parse(const char *text, jaas_config *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    tokenizer t = {text ? text : "", 0, NULL};
    int rc = 0;
    while (rc == 0 && next_token(&t) != TOK_EOF) {
        jaas_entry *ne = realloc(out->entries, sizeof *ne * (size_t)(out->nentries + 1));
        if (!ne) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        out->entries = ne;
        memset(&ne[out->nentries], 0, sizeof *ne);
        rc = parse_entry(&t, &ne[out->nentries++], err, errlen);
    }
    free(t.sval);
    if (rc == 0 && out->nentries == 0) {
        snprintf(err, errlen, "Login module not specified in JAAS config");
        rc = -1;
    }
    if (rc < 0) jaas_free(out);
    return rc;
}

void jaas_free(jaas_config *c) {
    for (int i = 0; i < c->nentries; i++) {
        jaas_entry *e = &c->entries[i];
        free(e->login_module);
        for (int k = 0; k < e->noptions; k++) {
            free(e->options[k].key);
            free(e->options[k].value);
        }
        free(e->options);
    }
    free(c->entries);
    memset(c, 0, sizeof *c);
}

const char *jaas_option_get(const jaas_entry *e, const char *key) {
    for (int i = 0; i < e->noptions; i++)
        if (strcmp(e->options[i].key, key) == 0) return e->options[i].value;
    return NULL;
}
