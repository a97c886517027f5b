/* opts.c - joptsimple-compatible option parsing and help for the tools.
 *
 * See opts.h. Parsing never copies argument text: values point into argv.
 * The help renderer reproduces joptsimple's two-column table: the option
 * column is at most (80-2)/2 characters wide, descriptions fill the rest,
 * long cells wrap at spaces with continuation lines indented by two.
 */
#include "tools/opts.h"

#include <stdlib.h>
#include <string.h>

static const opt_spec builtin_specs[] = {
    {"help", OPT_FLAG, NULL, "Print usage information.", NULL, 0},
    {"version", OPT_FLAG, NULL, "Display Kafka version.", NULL, 0},
};

/* Index into the combined table: user specs first, then the builtins. */
static size_t total_specs(const opts *o) {
    return o->nspecs + (o->no_builtins ? 0 : OPTS_COUNT(builtin_specs));
}

static const opt_spec *spec_at(const opts *o, size_t i) {
    return i < o->nspecs ? &o->specs[i] : &builtin_specs[i - o->nspecs];
}

static long find_spec(const opts *o, const char *name, size_t namelen) {
    for (size_t i = 0; i < total_specs(o); i++) {
        const char *n = spec_at(o, i)->name;
        if (strlen(n) == namelen && memcmp(n, name, namelen) == 0) {
            /* A user spec shadows a builtin of the same name. */
            return (long)i;
        }
    }
    return -1;
}

static int add_value(opts *o, size_t idx, const char *val) {
    const char **grown = realloc(o->vals[idx], (o->count[idx] + 1) * sizeof *grown);
    if (!grown) return -1;
    grown[o->count[idx]++] = val;
    o->vals[idx] = grown;
    return 0;
}

/* joptsimple takes a following token as an optional argument unless it
 * looks like an option; negative numbers count as arguments. */
static int looks_like_option(const char *s) {
    if (s[0] != '-' || s[1] == 0) return 0;
    if (s[1] == '-') return 1;
    char *end;
    (void)strtod(s, &end);
    return *end != 0;
}

static int parse_args(opts *o, const opt_spec *specs, size_t nspecs, int argc, char **argv, int plain);

int opts_parse(opts *o, const opt_spec *specs, size_t nspecs, int argc, char **argv) {
    return parse_args(o, specs, nspecs, argc, argv, 0);
}

int opts_parse_plain(opts *o, const opt_spec *specs, size_t nspecs, int argc, char **argv) {
    return parse_args(o, specs, nspecs, argc, argv, 1);
}

static int parse_args(opts *o, const opt_spec *specs, size_t nspecs, int argc, char **argv, int plain) {
    memset(o, 0, sizeof *o);
    o->no_builtins = plain;
    o->specs = specs;
    o->nspecs = nspecs;
    o->argc = argc;
    size_t n = total_specs(o);
    o->count = calloc(n, sizeof *o->count);
    o->vals = calloc(n, sizeof *o->vals);
    o->nonopts = calloc(argc > 0 ? (size_t)argc : 1, sizeof *o->nonopts);
    if (!o->count || !o->vals || !o->nonopts) {
        snprintf(o->err, sizeof o->err, "out of memory");
        return -1;
    }
    int only_nonopts = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_nonopts || a[0] != '-' || a[1] == 0) {
            o->nonopts[o->nnonopts++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_nonopts = 1;
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
        long idx = find_spec(o, name, namelen);
        if (idx < 0) {
            snprintf(o->err, sizeof o->err, "%.*s is not a recognized option", (int)namelen, name);
            return -1;
        }
        const opt_spec *s = spec_at(o, (size_t)idx);
        const char *val = NULL;
        switch (s->kind) {
        case OPT_FLAG:
            if (eq) {
                snprintf(o->err, sizeof o->err, "Option %s does not take an argument", s->name);
                return -1;
            }
            break;
        case OPT_ARG:
            if (eq) val = eq + 1;
            else if (i + 1 < argc) val = argv[++i];
            else {
                snprintf(o->err, sizeof o->err, "Option %s requires an argument", s->name);
                return -1;
            }
            break;
        case OPT_ARG_OPTIONAL:
            if (eq) val = eq + 1;
            else if (i + 1 < argc && !looks_like_option(argv[i + 1])) val = argv[++i];
            break;
        }
        if (add_value(o, (size_t)idx, val) != 0) {
            snprintf(o->err, sizeof o->err, "out of memory");
            return -1;
        }
    }
    return 0;
}

void opts_free(opts *o) {
    if (o->vals)
        for (size_t i = 0; i < total_specs(o); i++) free(o->vals[i]);
    free(o->vals);
    free(o->count);
    free(o->nonopts);
    memset(o, 0, sizeof *o);
}

size_t opts_count(const opts *o, const char *name) {
    long idx = find_spec(o, name, strlen(name));
    return idx < 0 || !o->count ? 0 : o->count[idx];
}

int opts_has(const opts *o, const char *name) { return opts_count(o, name) > 0; }

const char *opts_get(const opts *o, const char *name, const char *fallback) {
    long idx = find_spec(o, name, strlen(name));
    if (idx < 0 || !o->count || o->count[idx] == 0) return fallback;
    const char *v = o->vals[idx][o->count[idx] - 1];
    return v ? v : fallback;
}

const char *opts_get_at(const opts *o, const char *name, size_t i) {
    long idx = find_spec(o, name, strlen(name));
    if (idx < 0 || !o->count || i >= o->count[idx]) return NULL;
    return o->vals[idx][i];
}

/* ---- help table ---------------------------------------------------- */

typedef struct help_row {
    char *left, *right; /* owned */
} help_row;

typedef struct help_rows {
    help_row *rows;
    size_t n, cap;
} help_rows;

static int rows_add(help_rows *r, const char *left, size_t llen, const char *right, size_t rlen) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        help_row *g = realloc(r->rows, cap * sizeof *g);
        if (!g) return -1;
        r->rows = g;
        r->cap = cap;
    }
    r->rows[r->n].left = strndup(left, llen);
    r->rows[r->n].right = strndup(right, rlen);
    if (!r->rows[r->n].left || !r->rows[r->n].right) {
        free(r->rows[r->n].left);
        free(r->rows[r->n].right);
        return -1;
    }
    r->n++;
    return 0;
}

static void rows_free(help_rows *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->rows[i].left);
        free(r->rows[i].right);
    }
    free(r->rows);
}

/* A wrapped cell: pieces of at most `width` characters (a single word
 * longer than that stays whole), continuation pieces indented by two. */
typedef struct pieces {
    char **p;
    size_t n;
} pieces;

static void pieces_free(pieces *ps) {
    for (size_t i = 0; i < ps->n; i++) free(ps->p[i]);
    free(ps->p);
}

static int pieces_push(pieces *ps, const char *s, size_t len) {
    while (len > 0 && s[len - 1] == ' ') len--;
    char **g = realloc(ps->p, (ps->n + 1) * sizeof *g);
    if (!g) return -1;
    ps->p = g;
    if (!(ps->p[ps->n] = strndup(s, len))) return -1;
    ps->n++;
    return 0;
}

static int wrap_line(pieces *ps, const char *line, size_t len, size_t width) {
    char *cur = malloc(len + 3);
    if (!cur) return -1;
    size_t curlen = 0;
    size_t pos = 0;
    while (pos < len) {
        /* A "word" is its text plus the spaces that follow it. */
        size_t end = pos;
        while (end < len && line[end] != ' ') end++;
        while (end < len && line[end] == ' ') end++;
        size_t wlen = end - pos;
        if (curlen > 0 && curlen + wlen > width) {
            if (pieces_push(ps, cur, curlen) != 0) { free(cur); return -1; }
            memcpy(cur, "  ", 2);
            curlen = 2;
        }
        memcpy(cur + curlen, line + pos, wlen);
        curlen += wlen;
        pos = end;
    }
    int rc = curlen > 0 ? pieces_push(ps, cur, curlen) : 0;
    free(cur);
    return rc;
}

static int wrap_cell(pieces *ps, const char *text, size_t width) {
    /* joptsimple trims the cell, then wraps each embedded line. */
    while (*text == ' ' || *text == '\n') text++;
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\n')) len--;
    size_t pos = 0;
    do {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (wrap_line(ps, text + pos, end - pos, width ? width : 1) != 0) return -1;
        pos = end + 1;
    } while (pos < len);
    return 0;
}

static int cmp_spec_name(const void *a, const void *b) {
    const opt_spec *x = *(const opt_spec *const *)a, *y = *(const opt_spec *const *)b;
    return strcmp(x->name, y->name);
}

static void widths(const help_rows *r, size_t *lw, size_t *rw) {
    size_t wl = 0, wr = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t a = strlen(r->rows[i].left), b = strlen(r->rows[i].right);
        if (a > wl) wl = a;
        if (b > wr) wr = b;
    }
    const size_t overall = 80, sep = 2;
    *lw = wl < (overall - sep) / 2 ? wl : (overall - sep) / 2;
    *rw = wr < overall - *lw - sep ? wr : overall - *lw - sep;
}

void opts_print_help(const opts *o, FILE *f) {
    size_t n = total_specs(o);
    const opt_spec **sorted = calloc(n, sizeof *sorted);
    help_rows raw = {0}, fitted = {0};
    char *left = NULL, *right = NULL;
    if (!sorted) return;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const opt_spec *s = spec_at(o, i);
        /* Skip a builtin the tool redefined itself. */
        if (i >= o->nspecs && find_spec(o, s->name, strlen(s->name)) != (long)i) continue;
        sorted[m++] = s;
    }
    qsort(sorted, m, sizeof *sorted, cmp_spec_name);

    if (rows_add(&raw, "Option", 6, "Description", 11) != 0 ||
        rows_add(&raw, "------", 6, "-----------", 11) != 0)
        goto out;
    for (size_t i = 0; i < m; i++) {
        const opt_spec *s = sorted[i];
        const char *ad = s->arg_desc ? s->arg_desc : "String";
        size_t lcap = strlen(s->name) + strlen(ad) + 8;
        size_t rcap = (s->help ? strlen(s->help) : 0) + (s->defval ? strlen(s->defval) : 0) + 16;
        left = malloc(lcap);
        right = malloc(rcap);
        if (!left || !right) goto out;
        if (s->kind == OPT_FLAG) snprintf(left, lcap, "--%s", s->name);
        else if (s->kind == OPT_ARG) snprintf(left, lcap, "--%s <%s>", s->name, ad);
        else snprintf(left, lcap, "--%s [%s]", s->name, ad);
        if (s->defval) snprintf(right, rcap, "%s (default: %s)", s->help ? s->help : "", s->defval);
        else snprintf(right, rcap, "%s", s->help ? s->help : "");
        if (rows_add(&raw, left, strlen(left), right, strlen(right)) != 0) goto out;
        free(left);
        free(right);
        left = right = NULL;
    }

    size_t lw, rw;
    widths(&raw, &lw, &rw);
    for (size_t i = 0; i < raw.n; i++) {
        pieces pl = {0}, pr = {0};
        if (wrap_cell(&pl, raw.rows[i].left, lw) != 0 || wrap_cell(&pr, raw.rows[i].right, rw) != 0) {
            pieces_free(&pl);
            pieces_free(&pr);
            goto out;
        }
        size_t k = pl.n > pr.n ? pl.n : pr.n;
        int bad = 0;
        for (size_t j = 0; j < k && !bad; j++) {
            const char *a = j < pl.n ? pl.p[j] : "", *b = j < pr.n ? pr.p[j] : "";
            bad = rows_add(&fitted, a, strlen(a), b, strlen(b)) != 0;
        }
        pieces_free(&pl);
        pieces_free(&pr);
        if (bad) goto out;
    }
    widths(&fitted, &lw, &rw);
    for (size_t i = 0; i < fitted.n; i++) {
        const char *a = fitted.rows[i].left, *b = fitted.rows[i].right;
        size_t la = strlen(a), lb = strlen(b);
        fprintf(f, "%s%*s  %s%*s\n", a, (int)(la < lw ? lw - la : 0), "", b,
                (int)(lb < rw ? rw - lb : 0), "");
    }
out:
    free(left);
    free(right);
    rows_free(&raw);
    rows_free(&fitted);
    free(sorted);
}

int opts_usage_error(const opts *o, const char *message) {
    if (message && *message) fprintf(stderr, "%s\n", message);
    opts_print_help(o, stderr);
    fflush(stderr);
    return 1;
}

int opts_require(const opts *o, const char *name) {
    if (opts_has(o, name)) return 0;
    char msg[256];
    snprintf(msg, sizeof msg, "Missing required argument \"[%s]\"", name);
    return opts_usage_error(o, msg);
}

int opts_check_invalid(const opts *o, const char *used, const char *other) {
    if (!opts_has(o, used) || !opts_has(o, other)) return 0;
    char msg[512];
    snprintf(msg, sizeof msg, "Option \"[%s]\" can't be used with option \"[%s]\"", used, other);
    return opts_usage_error(o, msg);
}

int opts_maybe_help_or_version(const opts *o, const char *message, int *exit_code) {
    if (o->argc <= 1 || opts_has(o, "help")) {
        *exit_code = opts_usage_error(o, message);
        return 1;
    }
    if (opts_has(o, "version")) {
        printf("%s\n", SAMSA_KAFKA_VERSION);
        fflush(stdout);
        *exit_code = 0;
        return 1;
    }
    return 0;
}

int opts_split_kv(const char *arg, char **key, char **value) {
    char *copy = strdup(arg);
    if (!copy) return -1;
    char *eq = strchr(copy, '=');
    if (eq) {
        *eq = 0;
        *value = eq + 1;
    } else {
        *value = copy + strlen(copy);
    }
    *key = copy;
    return 0;
}
