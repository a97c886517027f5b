/* jaas.h - the JAAS configuration text of `sasl.jaas.config` and
 * `listener.name.<l>.<mechanism>.sasl.jaas.config`, parsed as Kafka's
 * JaasConfig does (java.io.StreamTokenizer: words, quoted strings, // and
 * slash-star comments; numbers are not values):
 *
 *   org.apache.kafka.common.security.plain.PlainLoginModule required
 *       username="admin" password="admin-secret" user_alice="alice-secret";
 */
#ifndef SAMSA_JAAS_H
#define SAMSA_JAAS_H

#include <stddef.h>

typedef struct jaas_option {
    char *key;
    char *value;
} jaas_option;

typedef struct jaas_entry {
    char *login_module;
    char flag[16];              /* REQUIRED, REQUISITE, SUFFICIENT or OPTIONAL */
    jaas_option *options;
    int noptions;
} jaas_entry;

typedef struct jaas_config {
    jaas_entry *entries;
    int nentries;
} jaas_config;

/* Returns 0, or -1 with Kafka's message in err (the config is then empty). */
int jaas_parse(const char *text, jaas_config *out, char *err, size_t errlen);
void jaas_free(jaas_config *c);
/* The value of an option of an entry; NULL when absent. */
const char *jaas_option_get(const jaas_entry *e, const char *key);

#endif
