/* argp.h - argparse4j-style command lines for the tools Kafka built on it.
 *
 * Kafka's newer tools (kafka-metadata-quorum, kafka-cluster, kafka-features)
 * parse their arguments with argparse4j 0.7.0 rather than joptsimple, and
 * users see the difference: a "usage:" line, subcommands, abbreviated long
 * options, "prog: error: message" on stderr, "Did you mean:" hints, and a
 * help screen with fully justified, wrapped descriptions. This module gives
 * the same surface for a parser with options and one level of subcommands.
 *
 * Usage:
 *   static const argp_arg main_args[] = {
 *       {"--bootstrap-server", NULL, ARGP_STORE, ARGP_STRING, 1, "...", NULL},
 *   };
 *   static const argp_command cmds[] = {{"describe", "...", desc_args, 2}};
 *   static const argp_parser p = {"kafka-metadata-quorum", "...", main_args, 1, cmds, 1};
 *   argp_result r;
 *   int rc;
 *   if (argp_parse(&p, argc, argv, &r, &rc)) return rc;   // help or error shown
 *   ... argp_get(&r, "bootstrap-server") ...
 *   argp_free(&r);
 *
 * Ownership: values point into argv. argp_result owns only its arrays.
 */
#ifndef SAMSA_TOOLS_ARGP_H
#define SAMSA_TOOLS_ARGP_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    ARGP_STORE,      /* one value, last one wins */
    ARGP_STORE_TRUE, /* flag */
    ARGP_APPEND,     /* one value per use, all kept */
    ARGP_VERSION,    /* "-v", "--version": prints Kafka's version, exits 0 */
} argp_action;

typedef enum {
    ARGP_STRING,
    ARGP_INT, /* converted like Integer.valueOf; errors as argparse4j's */
    ARGP_LONG,  /* Long.valueOf */
    ARGP_SHORT, /* Short.valueOf */
} argp_type;

typedef struct argp_arg {
    const char *flag;       /* "--bootstrap-server": also the lookup name (without "--") */
    const char *short_flag; /* "-b", or NULL */
    argp_action action;
    argp_type type;
    int required;
    const char *help;
    const char *group;      /* title of a separate help section, NULL for the default one;
                             * "Title\nDescription" adds the group's description */
} argp_arg;

typedef struct argp_command {
    const char *name;
    const char *help;       /* "help\ndescription" gives the subcommand a description too */
    const argp_arg *args;
    size_t nargs;
} argp_command;

typedef struct argp_parser {
    const char *prog;
    const char *description;
    const argp_arg *args;
    size_t nargs;
    const argp_command *commands; /* NULL/0 for a parser without subcommands */
    size_t ncommands;
    /* Optional (zero = argparse4j's defaults as the older tools use them): */
    const char *commands_title;   /* subparsers' title(): own help section */
    const char *commands_metavar; /* subparsers' metavar() instead of {a,b} */
    const char *const *metavars;  /* per main argument; NULL = from its name */
    int no_default_help;          /* parser without defaultHelp(true) */
} argp_parser;

typedef struct argp_result {
    const argp_parser *parser;
    const argp_command *command; /* the subcommand given, NULL if none */
    size_t *count;               /* per argument (main ones, then the command's) */
    const char ***vals;
} argp_result;

/* Parses argv[1..argc-1]. Returns 0 when the caller should go on; 1 when
 * it must exit with *exit_code because help was shown (stdout) or an error
 * was reported (usage and "prog: error: ..." on stderr). argparse4j's
 * parseArgsOrFail exits with 1 in both cases. r must be freed with
 * argp_free() either way. */
int argp_parse(const argp_parser *p, int argc, char **argv, argp_result *r, int *exit_code);
void argp_free(argp_result *r);

/* Lookups by long flag name without dashes ("bootstrap-server"), searching
 * the main parser and the chosen subcommand. */
int argp_has(const argp_result *r, const char *name);
const char *argp_get(const argp_result *r, const char *name);          /* last value or NULL */
size_t argp_count(const argp_result *r, const char *name);
const char *argp_get_at(const argp_result *r, const char *name, size_t i);

/* argparse4j's TextHelper.wrap: wraps `text` at `width` columns, the first
 * line starting at column `offset`, continuation lines prefixed with
 * `indent`, every wrapped line fully justified. Writes to f. */
void argp_write_wrapped(FILE *f, const char *text, int width, int offset, const char *indent);

/* Prints the help screen of the main parser (cmd NULL) or of a subcommand. */
void argp_print_help(const argp_parser *p, const argp_command *cmd, FILE *f);
/* Prints the usage line(s) of the main parser or of a subcommand. */
void argp_print_usage(const argp_parser *p, const argp_command *cmd, FILE *f);

#endif
