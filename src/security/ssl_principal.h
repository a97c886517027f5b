/* ssl_principal.h - ssl.principal.mapping.rules as Kafka's SslPrincipalMapper
 * reads and applies them: the name of a TLS client is its certificate's
 * subject DN in RFC 2253 form ("CN=alice,OU=eng,O=acme"), mapped by the
 * first rule that applies:
 *   DEFAULT                      the DN itself;
 *   RULE:pattern/replacement/[LU] when pattern matches the whole DN, the DN
 *                                with it replaced (Java's replaceAll: $n are
 *                                groups, \x a literal x), then lower- or
 *                                upper-cased with L / U.
 * Rules are separated by commas (a pattern may contain commas).
 *
 * Patterns are Java regular expressions; they run here as POSIX extended
 * expressions after a small translation (\d \s \w and their capitals, lazy
 * quantifiers *? +? ?? taken as greedy). Look-arounds and other Java-only
 * constructs are refused when the rules are parsed.
 */
#ifndef SAMSA_SSL_PRINCIPAL_H
#define SAMSA_SSL_PRINCIPAL_H

#include <stddef.h>

typedef struct ssl_principal_mapper ssl_principal_mapper;

/* Parses rules (NULL = "DEFAULT"). NULL with Kafka's message in err
 * ("Invalid rule: `x`, unmatched substring: `y`") when they do not parse. */
ssl_principal_mapper *ssl_principal_mapper_new(const char *rules, char *err, size_t errlen);
void ssl_principal_mapper_free(ssl_principal_mapper *m);

/* The principal name for dn into out. Returns 0, or -1 when no rule
 * applies (Kafka's NoMatchingRule: "No rules apply to <dn>, ..."), with the
 * message in out. */
int ssl_principal_map(const ssl_principal_mapper *m, const char *dn, char *out, size_t outlen);

#endif
