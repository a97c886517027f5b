/* configs_users.h - kafka-configs for --entity-type users (SCRAM credentials). */
#ifndef SAMSA_TOOLS_CONFIGS_USERS_H
#define SAMSA_TOOLS_CONFIGS_USERS_H

#include <stdbool.h>

#include "tools/kclient.h"
#include "util/arena.h"

typedef struct config_kv {
    const char *key;
    const char *value;
} config_kv;

/* user NULL: every user with a credential. Returns the exit code. */
int configs_users_describe(kclient *c, const char *user, karena *a);
int configs_users_alter(kclient *c, const char *user, bool is_default, const config_kv *adds, int nadd,
                        const char *dels, int argc, char **argv, karena *a);

#endif
