/* opts.h - command-line option parsing shared by the Kafka tools.
 *
 * Kafka's tools parse their arguments with joptsimple; this module gives
 * the same surface: long options only ("--name value" or "--name=value"),
 * no abbreviations, flags without values, options with a required or an
 * optional value, repeatable options, and everything else collected as
 * non-option arguments ("--" ends option parsing).  Error texts match
 * joptsimple's ("foo is not a recognized option", "Option foo requires an
 * argument"), and the help table has joptsimple's "Option / Description"
 * layout so `--help` looks like Kafka's.
 *
 * Usage:
 *   static const opt_spec specs[] = {
 *       {"bootstrap-server", OPT_ARG, "String: server to connect to", "...", NULL},
 *       {"from-beginning", OPT_FLAG, NULL, "...", NULL},
 *   };
 *   opts o;
 *   if (opts_parse(&o, specs, OPTS_COUNT(specs), argc, argv) != 0)
 *       return opts_usage_error(&o, o.err);
 *   ...
 *   opts_free(&o);
 *
 * Ownership: values returned by opts_get()/opts_get_at() point into argv
 * (or into argv strings' text after '='), valid as long as argv is.
 */
#ifndef SAMSA_TOOLS_OPTS_H
#define SAMSA_TOOLS_OPTS_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    OPT_FLAG,         /* no value: --sync */
    OPT_ARG,          /* value required: --topic <String> */
    OPT_ARG_OPTIONAL, /* value may follow: --compression-codec [String] */
} opt_kind;

typedef struct opt_spec {
    const char *name;     /* long name without the leading "--" */
    opt_kind kind;
    const char *arg_desc; /* help: text inside <> / [], e.g. "String: topic"; NULL = "String" */
    const char *help;     /* help: description in the right column */
    const char *defval;   /* help: shown as "(default: X)"; NULL for none */
    int repeatable;       /* may be given several times (--property a=b --property c=d) */
} opt_spec;

#define OPTS_COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct opts {
    const opt_spec *specs;
    size_t nspecs;
    size_t *count;       /* per spec: times seen */
    const char ***vals;  /* per spec: array of `count` values (NULL entries for flags) */
    const char **nonopts;
    size_t nnonopts;
    int argc;            /* as given (0 means "no arguments": tools print help) */
    int no_builtins;     /* set by opts_parse_plain: no --help/--version */
    char err[512];       /* message of the last failure */
} opts;

/* Parses argv[1..argc-1] (argv[0] is the tool name). The options "help"
 * and "version" are recognised even if not in specs (Kafka adds them to
 * every tool). Returns 0, or -1 with o->err set to joptsimple's message.
 * o must be freed with opts_free() either way. */
int opts_parse(opts *o, const opt_spec *specs, size_t nspecs, int argc, char **argv);
void opts_free(opts *o);
/* Like opts_parse, without the implicit --help and --version (for tools
 * built on a plain joptsimple parser, e.g. kafka-get-offsets). */
int opts_parse_plain(opts *o, const opt_spec *specs, size_t nspecs, int argc, char **argv);

/* True if the option was given at least once. */
int opts_has(const opts *o, const char *name);
/* Times the option was given. */
size_t opts_count(const opts *o, const char *name);
/* Its (last) value, or `fallback` if absent or given without a value. */
const char *opts_get(const opts *o, const char *name, const char *fallback);
/* The i-th value of a repeatable option (0-based), NULL past the end. */
const char *opts_get_at(const opts *o, const char *name, size_t i);

/* Writes the joptsimple-style help table for the specs plus --help and
 * --version to f. */
void opts_print_help(const opts *o, FILE *f);

/* Kafka's printUsageAndExit: message line (if any) and the help table on
 * stderr. Returns the exit code 1 for the caller to return. */
int opts_usage_error(const opts *o, const char *message);

/* Kafka's checkRequiredArgs: if `name` is missing, prints
 * Missing required argument "[name]" with usage and returns 1; else 0. */
int opts_require(const opts *o, const char *name);

/* Kafka's checkInvalidArgs: if `used` and `other` are both present prints
 * Option "[used]" can't be used with option "[other]" with usage and
 * returns 1; else 0. */
int opts_check_invalid(const opts *o, const char *used, const char *other);

/* Kafka's maybePrintHelpOrVersion. With --help, or no argument at all,
 * prints `message` and usage to stderr and sets *exit_code = 1; with
 * --version prints the version to stdout and sets *exit_code = 0.
 * Returns 1 when the caller must exit with *exit_code, else 0. */
int opts_maybe_help_or_version(const opts *o, const char *message, int *exit_code);

/* Version string printed for --version. */
#define SAMSA_KAFKA_VERSION "3.6.1"

/* Splits "k=v" like Kafka's parseKeyValueArgs: key before the first '=',
 * value after it ("" when there is none). Writes pointers into a copy the
 * caller owns (free(*key) releases both). Returns 0, or -1 on no memory. */
int opts_split_kv(const char *arg, char **key, char **value);

#endif
