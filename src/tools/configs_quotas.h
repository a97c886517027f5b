/* configs_quotas.h - kafka-configs for client quotas (--entity-type users,
 * clients, ips) through DescribeClientQuotas / AlterClientQuotas, as
 * Kafka's ConfigCommand does with --bootstrap-server. */
#ifndef SAMSA_TOOLS_CONFIGS_QUOTAS_H
#define SAMSA_TOOLS_CONFIGS_QUOTAS_H

#include <stdbool.h>

#include "tools/configs_users.h"
#include "tools/kclient.h"
#include "util/arena.h"

/* One entity part: type is "users", "clients" or "ips"; name NULL = every
 * entity of the type, "" = the default. */
typedef struct quota_part {
    const char *type;
    const char *name;
} quota_part;

/* "Quota configs for user-principal 'alice' are producer_byte_rate=1024.0"
 * for every matching entity. Returns the exit code. */
int configs_quotas_describe(kclient *c, const quota_part *parts, int nparts, karena *a);
/* Adds and deletions of quota keys on one entity (every part named). */
int configs_quotas_alter(kclient *c, const quota_part *parts, int nparts, const config_kv *adds, int nadd,
                         const char *dels, int argc, char **argv, karena *a);
/* Is k a user/client quota key (QuotaConfigs.isClientOrUserQuotaConfig)? */
bool configs_is_client_quota_key(const char *k);

#endif
