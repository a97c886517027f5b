/* argp.c - argparse4j-compatible parsing, usage and help (see argp.h).
 *
 * The parse walks argv once, like argparse4j's ParseState: options of the
 * main parser until the first positional word, which picks the subcommand;
 * the rest belongs to that subcommand. A missing required option is an
 * error deferred to the end (so a later syntax error wins, as in Java).
 */
#include "tools/argp.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARGP_WIDTH 75      /* argparse4j's default format width */
#define ARGP_HELP_COL 25   /* column where option descriptions start */

static const argp_arg help_arg = {"--help", "-h", ARGP_STORE_TRUE, ARGP_STRING, 0,
                                  "show this help message and exit", NULL};

/* ---- text ---------------------------------------------------------- */

/* A growable string; on allocation failure it silently stops growing
 * (help text is best effort, never a crash). */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 128;
        while (cap < b->len + n + 1) cap *= 2;
        char *g = realloc(b->p, cap);
        if (!g) return;
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }
static void sb_spaces(sbuf *b, int n) {
    for (int i = 0; i < n; i++) sb_addn(b, " ", 1);
}
static const char *sb_str(const sbuf *b) { return b->p ? b->p : ""; }

/* Next line-break opportunity: after a run of spaces, after a newline, or
 * after a hyphen joining two words (Java's line BreakIterator). */
static size_t next_break(const char *s, size_t pos) {
    size_t i = pos;
    while (s[i]) {
        char c = s[i++];
        if (c == '\n') return i;
        if (c == ' ') {
            while (s[i] == ' ') i++;
            return i;
        }
        if (c == '-' && i >= 2 && isalnum((unsigned char)s[i - 2]) && isalpha((unsigned char)s[i])) return i;
    }
    return i;
}

/* TextHelper.adjustSpace: trim the line, then widen its gaps until it is
 * exactly `width` columns, the extra spaces going to the middle gaps. */
static void justify(sbuf *out, const char *line, size_t len, int width, int curwidth) {
    size_t start = 0, end = len;
    while (start < end && line[start] == ' ') start++;
    while (end > start && line[end - 1] == ' ') end--;
    curwidth -= (int)((len - end) + start);
    int blocks = 0;
    for (size_t i = start; i < end; i++)
        if (line[i] == ' ' && (i == start || line[i - 1] != ' ')) blocks++;
    if (blocks == 0) {
        sb_addn(out, line + start, end - start);
        return;
    }
    int need = width - curwidth;
    if (need < 0) need = 0;
    int each = need / blocks, rem = need % blocks;
    int rem_start = (blocks - rem + 1) / 2, rem_end = rem_start + rem;
    int b = 0;
    for (size_t i = start; i < end; i++) {
        if (line[i] == ' ' && line[i - 1] != ' ') {
            sb_spaces(out, each + (rem_start <= b && b < rem_end ? 1 : 0));
            b++;
        }
        sb_addn(out, line + i, 1);
    }
}

static void wrap_into(sbuf *out, const char *text, int width, int offset, const char *indent) {
    int indent_w = (int)strlen(indent);
    int cur = offset;
    sbuf line = {0};
    size_t pos = 0;
    while (text[pos]) {
        size_t end = next_break(text, pos);
        int w = (int)(end - pos);
        cur += w;
        if (cur > width) {
            justify(out, sb_str(&line), line.len, width, cur - w);
            sb_add(out, "\n");
            sb_add(out, indent);
            line.len = 0;
            if (line.p) line.p[0] = 0;
            cur = indent_w + w;
        }
        sb_addn(&line, text + pos, (size_t)w);
        if (text[end - 1] == '\n') {
            sb_addn(out, sb_str(&line), line.len);
            sb_add(out, indent);
            line.len = 0;
            if (line.p) line.p[0] = 0;
            cur = indent_w;
        }
        pos = end;
    }
    sb_addn(out, sb_str(&line), line.len);
    free(line.p);
}

void argp_write_wrapped(FILE *f, const char *text, int width, int offset, const char *indent) {
    sbuf b = {0};
    wrap_into(&b, text, width, offset, indent);
    fputs(sb_str(&b), f);
    free(b.p);
}

/* ---- argument names ------------------------------------------------ */

static const char *bare_name(const char *flag) {
    while (*flag == '-') flag++;
    return flag;
}

/* The parser being parsed or printed (metavar overrides, defaultHelp). */
static const argp_parser *cur_parser;

/* Metavar: the dest in upper case ("--bootstrap-server" -> BOOTSTRAP_SERVER),
 * or the one the parser gives its main argument. */
static void metavar(const argp_arg *a, char *out, size_t len) {
    const argp_parser *p = cur_parser;
    if (p && p->metavars && a >= p->args && a < p->args + p->nargs && p->metavars[a - p->args]) {
        snprintf(out, len, "%s", p->metavars[a - p->args]);
        return;
    }
    const char *n = bare_name(a->flag);
    size_t i = 0;
    for (; n[i] && i + 1 < len; i++) out[i] = n[i] == '-' ? '_' : (char)toupper((unsigned char)n[i]);
    out[i] = 0;
}

static int takes_value(const argp_arg *a) { return a->action != ARGP_STORE_TRUE && a->action != ARGP_VERSION; }

/* argparse4j's textualName: the flags joined by '/'. */
static void textual_name(const argp_arg *a, char *out, size_t len) {
    if (a->short_flag) snprintf(out, len, "%s/%s", a->flag, a->short_flag);
    else snprintf(out, len, "%s", a->flag);
}

/* Usage syntax: "[--flag METAVAR]" (brackets unless required). */
static void short_syntax(const argp_arg *a, int with_brackets, sbuf *out) {
    char mv[128];
    if (with_brackets && !a->required) sb_add(out, "[");
    /* The help option is declared "-h", "--help": its first flag is -h. */
    /* Declared "-h", "--help" / "-v", "--version": the first flag shows. */
    sb_add(out, a == &help_arg ? "-h" : a->action == ARGP_VERSION && a->short_flag ? a->short_flag : a->flag);
    if (takes_value(a)) {
        metavar(a, mv, sizeof mv);
        sb_add(out, " ");
        sb_add(out, mv);
    }
    if (with_brackets && !a->required) sb_add(out, "]");
}

/* ---- usage and help ------------------------------------------------ */

typedef struct word_list {
    char **w;
    size_t n;
} word_list;

static void words_add(word_list *l, const char *s) {
    char **g = realloc(l->w, (l->n + 1) * sizeof *g);
    if (!g) return;
    l->w = g;
    char *d = strdup(s);
    if (d) l->w[l->n++] = d;
}

static void words_add_arg(word_list *l, const argp_arg *a) {
    sbuf b = {0};
    short_syntax(a, 1, &b);
    words_add(l, sb_str(&b));
    free(b.p);
}

static void words_free(word_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->w[i]);
    free(l->w);
}

static void commands_syntax(const argp_parser *p, sbuf *b);

void argp_print_usage(const argp_parser *p, const argp_command *cmd, FILE *f) {
    cur_parser = p;
    char prog[256];
    snprintf(prog, sizeof prog, "usage: %s", p->prog);
    int offset = (int)strlen(prog);
    const char *first_indent = "";
    char indent[64];
    fputs(prog, f);
    if (offset > 30) {
        fputs("\n", f);
        offset = 6;
        first_indent = "      ";
    }
    snprintf(indent, sizeof indent, "%*s", offset, "");
    word_list words = {0};
    if (cmd) {
        for (size_t i = 0; i < p->nargs; i++)
            if (p->args[i].required) words_add_arg(&words, &p->args[i]);
        words_add(&words, cmd->name);
        words_add_arg(&words, &help_arg);
        for (size_t i = 0; i < cmd->nargs; i++) words_add_arg(&words, &cmd->args[i]);
    } else {
        words_add_arg(&words, &help_arg);
        for (size_t i = 0; i < p->nargs; i++) words_add_arg(&words, &p->args[i]);
        if (p->ncommands) {
            sbuf b = {0};
            commands_syntax(p, &b);
            words_add(&words, sb_str(&b));
            free(b.p);
            words_add(&words, "...");
        }
    }
    int cur = offset + (int)strlen(first_indent);
    fputs(first_indent, f);
    for (size_t i = 0; i < words.n; i++) {
        int w = (int)strlen(words.w[i]);
        if (i > 0 && cur + w + 1 > ARGP_WIDTH) {
            fprintf(f, "\n%s %s", indent, words.w[i]);
            cur = offset + 1 + w;
        } else {
            fprintf(f, " %s", words.w[i]);
            cur += 1 + w;
        }
    }
    fputs("\n", f);
    words_free(&words);
}

/* TextHelper.printHelp: title at column 2, description from column 25. */
static void print_help_row(FILE *f, const char *title, const char *help) {
    fprintf(f, "  %s", title);
    if (!help || !*help) {
        fputs("\n", f);
        return;
    }
    int tw = (int)strlen(title);
    if (tw <= 21) fprintf(f, "%*s", ARGP_HELP_COL - tw - 2, "");
    else fprintf(f, "\n%*s", ARGP_HELP_COL, "");
    char indent[ARGP_HELP_COL + 1];
    memset(indent, ' ', ARGP_HELP_COL);
    indent[ARGP_HELP_COL] = 0;
    argp_write_wrapped(f, help, ARGP_WIDTH, ARGP_HELP_COL, indent);
    fputs("\n", f);
}

static void print_arg_help(FILE *f, const argp_arg *a) {
    sbuf title = {0}, help = {0};
    char mv[128];
    metavar(a, mv, sizeof mv);
    if (a == &help_arg) {
        sb_add(&title, "-h, --help");
    } else if (a->action == ARGP_VERSION) {
        sb_add(&title, a->short_flag ? a->short_flag : "");
        sb_add(&title, a->short_flag ? ", " : "");
        sb_add(&title, a->flag);
    } else {
        const char *flags[2] = {a->flag, a->short_flag};
        for (int i = 0; i < 2 && flags[i]; i++) {
            if (i) sb_add(&title, ", ");
            sb_add(&title, flags[i]);
            if (takes_value(a)) {
                sb_add(&title, " ");
                sb_add(&title, mv);
            }
        }
    }
    sb_add(&help, a->help ? a->help : "");
    /* defaultHelp(true): flags show their default, false. */
    if (a != &help_arg && a->action == ARGP_STORE_TRUE && !(cur_parser && cur_parser->no_default_help))
        sb_add(&help, help.len ? " (default: false)" : "(default: false)");
    print_help_row(f, sb_str(&title), sb_str(&help));
    free(title.p);
    free(help.p);
}

static void print_args_help(FILE *f, const argp_arg *args, size_t n) {
    fputs("\noptional arguments:\n", f);
    print_arg_help(f, &help_arg);
    for (size_t i = 0; i < n; i++)
        if (!args[i].group) print_arg_help(f, &args[i]);
    /* Separate sections, in order of first appearance. */
    for (size_t i = 0; i < n; i++) {
        const char *g = args[i].group;
        if (!g) continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (args[j].group && strcmp(args[j].group, g) == 0) seen = 1;
        if (seen) continue;
        /* "Title\nDescription": argparse4j's group description under its title */
        const char *nl = strchr(g, '\n');
        fprintf(f, "\n%.*s:\n", nl ? (int)(nl - g) : (int)strlen(g), g);
        if (nl && nl[1]) {
            fputs("  ", f);
            argp_write_wrapped(f, nl + 1, ARGP_WIDTH, 2, "  ");
            fputs("\n\n", f);
        }
        for (size_t j = i; j < n; j++)
            if (args[j].group && strcmp(args[j].group, g) == 0) print_arg_help(f, &args[j]);
    }
}

/* The subparsers' short syntax ("{a,b}" or their metavar) into b. */
static void commands_syntax(const argp_parser *p, sbuf *b) {
    if (p->commands_metavar) {
        sb_add(b, p->commands_metavar);
        return;
    }
    sb_add(b, "{");
    for (size_t i = 0; i < p->ncommands; i++) {
        if (i) sb_add(b, ",");
        sb_add(b, p->commands[i].name);
    }
    sb_add(b, "}");
}

static void print_commands_help(const argp_parser *p, FILE *f) {
    sbuf names = {0};
    commands_syntax(p, &names);
    print_help_row(f, sb_str(&names), "");
    free(names.p);
    for (size_t i = 0; i < p->ncommands; i++) {
        char title[128];
        snprintf(title, sizeof title, "  %s", p->commands[i].name);
        const char *h = p->commands[i].help, *nl = h ? strchr(h, '\n') : NULL;
        if (nl) { /* "help\ndescription": the listing shows the help */
            char *only = strndup(h, (size_t)(nl - h));
            if (only && *only) print_help_row(f, title, only);
            free(only);
        } else if (h && *h) {
            print_help_row(f, title, h);
        }
    }
}

void argp_print_help(const argp_parser *p, const argp_command *cmd, FILE *f) {
    cur_parser = p;
    argp_print_usage(p, cmd, f);
    if (cmd) {
        const char *nl = cmd->help ? strchr(cmd->help, '\n') : NULL;
        if (nl && nl[1]) { /* the subparser's description() */
            fputs("\n", f);
            argp_write_wrapped(f, nl + 1, ARGP_WIDTH, 0, "");
            fputs("\n", f);
        }
        print_args_help(f, cmd->args, cmd->nargs);
        return;
    }
    if (p->description && *p->description) {
        fputs("\n", f);
        argp_write_wrapped(f, p->description, ARGP_WIDTH, 0, "");
        fputs("\n", f);
    }
    /* argparse4j 0.7.0: untitled subcommands are listed as positional
     * arguments before the options, titled ones in their own section after */
    if (p->ncommands && !p->commands_title) {
        fputs("\npositional arguments:\n", f);
        print_commands_help(p, f);
    }
    print_args_help(f, p->args, p->nargs);
    if (p->ncommands && p->commands_title) {
        fprintf(f, "\n%s:\n", p->commands_title);
        print_commands_help(p, f);
    }
}

/* ---- "Did you mean" ------------------------------------------------ */

/* Damerau-Levenshtein distance with git's costs (swap 0, sub 2, add 1, del 4). */
static int edit_distance(const char *a, const char *b) {
    size_t al = strlen(a), bl = strlen(b);
    int *rows = calloc(3 * (bl + 1), sizeof *rows);
    if (!rows) return 1000;
    int *prev2 = rows, *prev = rows + (bl + 1), *cur = rows + 2 * (bl + 1);
    for (size_t j = 0; j <= bl; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= al; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= bl; j++) {
            cur[j] = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 2);
            if (i >= 2 && j >= 2 && a[i - 1] != b[j - 1] && a[i - 2] == b[j - 1] && a[i - 1] == b[j - 2] &&
                prev2[j - 2] < cur[j])
                cur[j] = prev2[j - 2];
            if (prev[j] + 4 < cur[j]) cur[j] = prev[j] + 4;
            if (cur[j - 1] + 1 < cur[j]) cur[j] = cur[j - 1] + 1;
        }
        int *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    int d = prev[bl];
    free(rows);
    return d;
}

typedef struct candidate {
    int score;
    const char *subject;
} candidate;

static int cmp_candidate(const void *x, const void *y) {
    const candidate *a = x, *b = y;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    return strcmp(a->subject, b->subject);
}

static void print_candidates(FILE *f, const char *body, const char *const *subjects, const char *const *bodies,
                             size_t n) {
    if (n == 0) return;
    candidate *c = calloc(n, sizeof *c);
    if (!c) return;
    for (size_t i = 0; i < n; i++) {
        c[i].subject = subjects[i];
        c[i].score = strncmp(bodies[i], body, strlen(body)) == 0 ? 0 : edit_distance(body, bodies[i]);
    }
    qsort(c, n, sizeof *c, cmp_candidate);
    if (c[0].score < 7) {
        fputs("\nDid you mean:\n", f);
        for (size_t i = 0; i < n && c[i].score == c[0].score; i++) fprintf(f, "\t%s\n", c[i].subject);
    }
    free(c);
}

/* ---- parsing ------------------------------------------------------- */

typedef enum { ERR_PLAIN, ERR_UNKNOWN_FLAG, ERR_UNKNOWN_COMMAND } err_kind;

typedef struct parse_state {
    const argp_parser *p;
    argp_result *r;
    int argc;
    char **argv;
    int idx;
    int consumed_sep;
    char deferred[512];            /* required-argument error, reported last */
    const argp_command *deferred_level;
    int deferred_set;
    int *exit_code;
} parse_state;

/* Which argument table a level uses and where its values start in r. */
static const argp_arg *level_args(const parse_state *s, const argp_command *cmd, size_t *n, size_t *base) {
    if (cmd) {
        *n = cmd->nargs;
        *base = s->p->nargs;
        return cmd->args;
    }
    *n = s->p->nargs;
    *base = 0;
    return s->p->args;
}

static int flag_found(const parse_state *s, const char *term) {
    if (s->consumed_sep) return 0;
    if (strcmp(term, "--") == 0) return 1;
    if (term[0] != '-') return 0;
    const char *t = term;
    while (*t == '-') t++;
    if (!*t) return 0; /* only dashes */
    if (term[1] && term[1] != '-') { /* "-123" is a negative number */
        const char *d = term + 1;
        while (isdigit((unsigned char)*d)) d++;
        if (!*d) return 0;
    }
    return 1;
}

static void report(const parse_state *s, const argp_command *level, err_kind kind, const char *msg, const char *what) {
    argp_print_usage(s->p, level, stderr);
    char line[1024];
    snprintf(line, sizeof line, "%s: error: %s\n", s->p->prog, msg);
    argp_write_wrapped(stderr, line, ARGP_WIDTH, 0, "");
    if (kind == ERR_UNKNOWN_FLAG) {
        const char *body = bare_name(what);
        if (strlen(body) >= 2) {
            size_t n;
            size_t base;
            const argp_arg *args = level_args(s, level, &n, &base);
            const char *subjects[64], *bodies[64];
            size_t k = 0;
            subjects[k] = "--help", bodies[k++] = "help";
            for (size_t i = 0; i < n && k + 2 < 64; i++) {
                const char *fl[2] = {args[i].flag, args[i].short_flag};
                for (int j = 0; j < 2; j++)
                    if (fl[j] && strlen(bare_name(fl[j])) > 1) subjects[k] = fl[j], bodies[k++] = bare_name(fl[j]);
            }
            print_candidates(stderr, body, subjects, bodies, k);
        }
    } else if (kind == ERR_UNKNOWN_COMMAND) {
        const char *names[64];
        size_t k = 0;
        for (size_t i = 0; i < s->p->ncommands && k < 64; i++) names[k++] = s->p->commands[i].name;
        print_candidates(stderr, what, names, names, k);
    }
    fflush(stderr);
}

static int add_value(argp_result *r, size_t slot, const char *v) {
    const char **g = realloc(r->vals[slot], (r->count[slot] + 1) * sizeof *g);
    if (!g) return -1;
    g[r->count[slot]++] = v;
    r->vals[slot] = g;
    return 0;
}

/* Integer.valueOf's acceptance: optional sign, decimal digits, int range. */
/* Java's parse of a decimal integer within [lo, hi]. */
static int java_integer_ok(const char *v, long long lo, long long hi) {
    const char *d = v;
    if (*d == '+' || *d == '-') d++;
    if (!*d) return 0;
    for (const char *c = d; *c; c++)
        if (!isdigit((unsigned char)*c)) return 0;
    errno = 0;
    long long x = strtoll(v, NULL, 10);
    return errno == 0 && x >= lo && x <= hi;
}

static int java_int_ok(const char *v) { return java_integer_ok(v, -2147483648LL, 2147483647LL); }

/* argparse4j's conversion failure for Long/Short values: the Java
 * NumberFormatException message in parentheses. Returns 1 when v fails. */
static int conversion_error(const argp_arg *a, const char *name, const char *v, char *msg, size_t len) {
    if (a->type == ARGP_LONG && !java_integer_ok(v, INT64_MIN, INT64_MAX)) {
        snprintf(msg, len, "argument %s: could not convert '%s' to Long (For input string: \"%s\")", name, v, v);
        return 1;
    }
    if (a->type == ARGP_SHORT && !java_integer_ok(v, -32768, 32767)) {
        if (java_int_ok(v)) /* Short.parseShort: an int out of range */
            snprintf(msg, len, "argument %s: could not convert '%s' to Short (Value out of range. Value:\"%s\" Radix:10)",
                     name, v, v);
        else
            snprintf(msg, len, "argument %s: could not convert '%s' to Short (For input string: \"%s\")", name, v, v);
        return 1;
    }
    return 0;
}

/* Resolves a flag of this level: exact, else a unique prefix. Returns the
 * argument, &help_arg, or NULL; -1 in *ambiguous on an ambiguous prefix. */
static const argp_arg *resolve_flag(const parse_state *s, const argp_command *level, const char *flag, size_t flen,
                                    size_t *slot, int *ambiguous, char *cands, size_t candlen) {
    size_t n, base;
    const argp_arg *args = level_args(s, level, &n, &base);
    *ambiguous = 0;
    /* Exact match first. */
    if ((flen == 6 && memcmp(flag, "--help", 6) == 0) || (flen == 2 && memcmp(flag, "-h", 2) == 0)) return &help_arg;
    for (size_t i = 0; i < n; i++) {
        const char *fl[2] = {args[i].flag, args[i].short_flag};
        for (int j = 0; j < 2; j++)
            if (fl[j] && strlen(fl[j]) == flen && memcmp(fl[j], flag, flen) == 0) {
                *slot = base + i;
                return &args[i];
            }
    }
    /* Prefixes, collected sorted for the ambiguity message. */
    const char *names[66];
    const argp_arg *owners[66];
    size_t slots[66], k = 0;
    const char *hf[2] = {"-h", "--help"};
    for (int j = 0; j < 2; j++)
        if (strlen(hf[j]) > flen && strncmp(hf[j], flag, flen) == 0) names[k] = hf[j], owners[k] = &help_arg, k++;
    for (size_t i = 0; i < n && k + 2 < 66; i++) {
        const char *fl[2] = {args[i].flag, args[i].short_flag};
        for (int j = 0; j < 2; j++)
            if (fl[j] && strlen(fl[j]) > flen && strncmp(fl[j], flag, flen) == 0)
                names[k] = fl[j], owners[k] = &args[i], slots[k] = base + i, k++;
    }
    if (k == 1) {
        if (owners[0] != &help_arg) *slot = slots[0];
        return owners[0];
    }
    if (k > 1) {
        for (size_t i = 1; i < k; i++)
            for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
                const char *t = names[j];
                names[j] = names[j - 1];
                names[j - 1] = t;
            }
        cands[0] = 0;
        for (size_t i = 0; i < k; i++) {
            size_t l = strlen(cands);
            snprintf(cands + l, candlen - l, "%s%s", i ? ", " : "", names[i]);
        }
        *ambiguous = 1;
    }
    return NULL;
}

static void check_required(parse_state *s, const argp_command *level) {
    if (s->deferred_set) return;
    size_t n, base;
    const argp_arg *args = level_args(s, level, &n, &base);
    for (size_t i = 0; i < n; i++) {
        if (args[i].required && s->r->count[base + i] == 0) {
            char name[128];
            textual_name(&args[i], name, sizeof name);
            snprintf(s->deferred, sizeof s->deferred, "argument %s is required", name);
            s->deferred_level = level;
            s->deferred_set = 1;
        }
    }
}

/* Returns 0 when parsing went through, 1 on help/error (already printed). */
static int parse_level(parse_state *s, const argp_command *level) {
    char msg[1024], name[128];
    while (s->idx < s->argc) {
        const char *term = s->argv[s->idx];
        if (flag_found(s, term) && strcmp(term, "--") != 0) {
            const char *eq = strchr(term, '=');
            size_t flen = eq ? (size_t)(eq - term) : strlen(term);
            const char *embedded = eq ? eq + 1 : NULL;
            size_t slot = 0;
            int ambiguous;
            char cands[512];
            const argp_arg *a = resolve_flag(s, level, term, flen, &slot, &ambiguous, cands, sizeof cands);
            if (ambiguous) {
                snprintf(msg, sizeof msg, "ambiguous option: %.*s could match %s", (int)flen, term, cands);
                report(s, level, ERR_PLAIN, msg, NULL);
                return 1;
            }
            if (!a) {
                snprintf(msg, sizeof msg, "unrecognized arguments: '%s'", term);
                report(s, level, ERR_UNKNOWN_FLAG, msg, term);
                return 1;
            }
            s->idx++;
            if (a->action == ARGP_VERSION) { /* PrintVersionAndExitAction */
                printf("3.6.1\n");
                fflush(stdout);
                *s->exit_code = 0;
                return 1;
            }
            if (a == &help_arg) {
                if (embedded) {
                    snprintf(msg, sizeof msg, "argument -h/--help: ignore implicit argument '%s'", embedded);
                    report(s, level, ERR_PLAIN, msg, NULL);
                    return 1;
                }
                argp_print_help(s->p, level, stdout);
                fflush(stdout);
                return 1;
            }
            textual_name(a, name, sizeof name);
            if (a->action == ARGP_STORE_TRUE) {
                if (embedded) {
                    snprintf(msg, sizeof msg, "argument %s: ignore implicit argument '%s'", name, embedded);
                    report(s, level, ERR_PLAIN, msg, NULL);
                    return 1;
                }
                if (add_value(s->r, slot, NULL) != 0) return 1;
                continue;
            }
            const char *val = embedded;
            if (!val && s->idx < s->argc && !flag_found(s, s->argv[s->idx])) val = s->argv[s->idx++];
            if (!val) {
                snprintf(msg, sizeof msg, "argument %s: expected one argument", name);
                report(s, level, ERR_PLAIN, msg, NULL);
                return 1;
            }
            if (a->type == ARGP_INT && !java_int_ok(val)) {
                snprintf(msg, sizeof msg, "argument %s: could not convert '%s' to Integer (For input string: \"%s\")",
                         name, val, val);
                report(s, level, ERR_PLAIN, msg, NULL);
                return 1;
            }
            if (conversion_error(a, name, val, msg, sizeof msg)) {
                report(s, level, ERR_PLAIN, msg, NULL);
                return 1;
            }
            if (a->action == ARGP_STORE) s->r->count[slot] = 0; /* last one wins */
            if (add_value(s->r, slot, val) != 0) return 1;
        } else if (strcmp(term, "--") == 0 && !s->consumed_sep) {
            s->consumed_sep = 1;
            s->idx++;
        } else if (!level && s->p->ncommands && !s->consumed_sep) {
            check_required(s, NULL);
            const argp_command *cmd = NULL;
            size_t tl = strlen(term), matches = 0;
            for (size_t i = 0; i < s->p->ncommands; i++)
                if (strcmp(s->p->commands[i].name, term) == 0) cmd = &s->p->commands[i];
            if (!cmd && tl > 0) {
                char cands[512] = "";
                for (size_t i = 0; i < s->p->ncommands; i++)
                    if (strncmp(s->p->commands[i].name, term, tl) == 0) {
                        size_t l = strlen(cands);
                        snprintf(cands + l, sizeof cands - l, "%s%s", matches ? ", " : "", s->p->commands[i].name);
                        cmd = &s->p->commands[i];
                        matches++;
                    }
                if (matches > 1) {
                    snprintf(msg, sizeof msg, "ambiguous command: %s could match %s", term, cands);
                    report(s, NULL, ERR_PLAIN, msg, NULL);
                    return 1;
                }
            }
            if (!cmd) {
                size_t l = (size_t)snprintf(msg, sizeof msg, "invalid choice: '%s' (choose from ", term);
                for (size_t i = 0; i < s->p->ncommands && l < sizeof msg; i++)
                    l += (size_t)snprintf(msg + l, sizeof msg - l, "%s'%s'", i ? ", " : "", s->p->commands[i].name);
                if (l < sizeof msg) snprintf(msg + l, sizeof msg - l, ")");
                report(s, NULL, ERR_UNKNOWN_COMMAND, msg, term);
                return 1;
            }
            s->idx++;
            s->r->command = cmd;
            return parse_level(s, cmd);
        } else {
            size_t l = (size_t)snprintf(msg, sizeof msg, "unrecognized arguments: '");
            for (int i = s->idx; i < s->argc && l < sizeof msg; i++)
                l += (size_t)snprintf(msg + l, sizeof msg - l, "%s%s", i > s->idx ? " " : "", s->argv[i]);
            if (l < sizeof msg) snprintf(msg + l, sizeof msg - l, "'");
            report(s, level, ERR_PLAIN, msg, NULL);
            return 1;
        }
    }
    if (!level && s->p->ncommands) {
        report(s, NULL, ERR_PLAIN, "too few arguments", NULL);
        return 1;
    }
    check_required(s, level);
    return 0;
}

int argp_parse(const argp_parser *p, int argc, char **argv, argp_result *r, int *exit_code) {
    memset(r, 0, sizeof *r);
    r->parser = p;
    size_t most = 0;
    for (size_t i = 0; i < p->ncommands; i++)
        if (p->commands[i].nargs > most) most = p->commands[i].nargs;
    size_t total = p->nargs + most + 1;
    r->count = calloc(total, sizeof *r->count);
    r->vals = calloc(total, sizeof *r->vals);
    *exit_code = 1;
    if (!r->count || !r->vals) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    cur_parser = p;
    parse_state s = {.p = p, .r = r, .argc = argc, .argv = argv, .idx = 1, .exit_code = exit_code};
    if (parse_level(&s, NULL)) return 1;
    if (s.deferred_set) {
        report(&s, s.deferred_level, ERR_PLAIN, s.deferred, NULL);
        return 1;
    }
    *exit_code = 0;
    return 0;
}

void argp_free(argp_result *r) {
    if (r->vals && r->parser) {
        size_t most = 0;
        for (size_t i = 0; i < r->parser->ncommands; i++)
            if (r->parser->commands[i].nargs > most) most = r->parser->commands[i].nargs;
        for (size_t i = 0; i < r->parser->nargs + most + 1; i++) free(r->vals[i]);
    }
    free(r->vals);
    free(r->count);
    memset(r, 0, sizeof *r);
}

static long find_slot(const argp_result *r, const char *name) {
    const argp_parser *p = r->parser;
    for (size_t i = 0; i < p->nargs; i++)
        if (strcmp(bare_name(p->args[i].flag), name) == 0) return (long)i;
    if (r->command)
        for (size_t i = 0; i < r->command->nargs; i++)
            if (strcmp(bare_name(r->command->args[i].flag), name) == 0) return (long)(p->nargs + i);
    return -1;
}

size_t argp_count(const argp_result *r, const char *name) {
    long s = find_slot(r, name);
    return s < 0 || !r->count ? 0 : r->count[s];
}

int argp_has(const argp_result *r, const char *name) { return argp_count(r, name) > 0; }

const char *argp_get(const argp_result *r, const char *name) {
    long s = find_slot(r, name);
    if (s < 0 || !r->count || r->count[s] == 0) return NULL;
    return r->vals[s][r->count[s] - 1];
}

const char *argp_get_at(const argp_result *r, const char *name, size_t i) {
    long s = find_slot(r, name);
    if (s < 0 || !r->count || i >= r->count[s]) return NULL;
    return r->vals[s][i];
}
