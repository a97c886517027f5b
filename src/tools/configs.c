/* configs.c - kafka-configs: describe and alter topic, broker and broker-logger configs.
 *
 * Follows Kafka's ConfigCommand with --bootstrap-server: --describe prints
 * the dynamic (or, with --all, every) config of each entity with its
 * sensitivity and synonyms; --alter applies --add-config / --delete-config
 * with IncrementalAlterConfigs and prints "Completed updating config for
 * <type> <name>.". Argument errors go to stderr with exit code 1.
 * As Kafka's AdminClient (nodeFor), a broker or broker-logger resource with
 * a broker id is asked of that broker; the rest of any node.
 * Users' SCRAM credentials are in configs_users.c, client quotas (users,
 * clients, (users, clients) and ips) in configs_quotas.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/configs_quotas.h"
#include "tools/configs_users.h"
#include "tools/kclient.h"
#include "tools/opts.h"
#include "tools/tools.h"

static const opt_spec configs_specs[] = {
    {"add-config", OPT_ARG, "String",
     "Configs to set, as k1=v1,k2=[v1,v2,v2],k3=v3 (square brackets group a list value).", NULL, 0},
    {"all", OPT_FLAG, NULL, "With --describe, list every config, not only the dynamic ones.", NULL, 0},
    {"alter", OPT_FLAG, NULL, "Change the configs of an entity.", NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: server to connect to",
     "The Kafka broker(s) to connect to.", NULL, 0},
    {"broker", OPT_ARG, "String", "Broker id; same as --entity-type brokers --entity-name <id>.", NULL, 0},
    {"broker-defaults", OPT_FLAG, NULL, "The config defaults for all brokers.", NULL, 0},
    {"broker-logger", OPT_ARG, "String",
     "Broker id for logger levels; same as --entity-type broker-loggers --entity-name <id>.", NULL, 0},
    {"client", OPT_ARG, "String", "Client id; same as --entity-type clients --entity-name <id>.", NULL, 0},
    {"client-defaults", OPT_FLAG, NULL, "The config defaults for all clients.", NULL, 0},
    {"command-config", OPT_ARG, "String: command config property file",
     "A properties file with settings for the admin client.", NULL, 0},
    {"delete-config", OPT_ARG, "String", "Comma-separated names of configs to remove.", NULL, 0},
    {"describe", OPT_FLAG, NULL, "List the configs of the given entity.", NULL, 0},
    {"entity-default", OPT_FLAG, NULL, "Act on the cluster-wide default of the entity type.", NULL, 0},
    {"entity-name", OPT_ARG, "String", "Name of the entity (topic name, broker id, ...).", NULL, 1},
    {"entity-type", OPT_ARG, "String", "Type of entity: topics, clients, users, brokers, ips or broker-loggers.", NULL, 1},
    {"ip", OPT_ARG, "String", "IP address; same as --entity-type ips --entity-name <ip>.", NULL, 0},
    {"ip-defaults", OPT_FLAG, NULL, "The config defaults for all IPs.", NULL, 0},
    {"topic", OPT_ARG, "String", "Topic name; same as --entity-type topics --entity-name <name>.", NULL, 0},
    {"user", OPT_ARG, "String", "User principal name; same as --entity-type users --entity-name <name>.", NULL, 0},
    {"user-defaults", OPT_FLAG, NULL, "The config defaults for all users.", NULL, 0},
};

/* ConfigCommandOptions' entity shorthands, in the order Kafka appends them
 * after the --entity-type ones: named entities, then defaults. */
static const struct {
    const char *opt, *type;
    bool is_default;
} shorthands[] = {
    {"topic", "topics", false},         {"client", "clients", false},        {"user", "users", false},
    {"broker", "brokers", false},       {"broker-logger", "broker-loggers", false}, {"ip", "ips", false},
    {"client-defaults", "clients", true}, {"user-defaults", "users", true},    {"broker-defaults", "brokers", true},
    {"ip-defaults", "ips", true},
};
#define NSHORTHANDS (sizeof shorthands / sizeof shorthands[0])


static int arg_error(const char *msg) {
    fprintf(stderr, "%s\n", msg);
    return 1;
}

typedef struct entry_ref {
    const DescribeConfigsResponse_DescribeConfigsResourceResult *e;
} entry_ref;

static int cmp_entry(const void *a, const void *b) {
    const entry_ref *x = a, *y = b;
    int n = x->e->name.len < y->e->name.len ? x->e->name.len : y->e->name.len;
    int c = memcmp(x->e->name.p, y->e->name.p, (size_t)n);
    return c ? c : (x->e->name.len > y->e->name.len) - (x->e->name.len < y->e->name.len);
}

static void print_kstr_or_null(kstr s) {
    if (s.len < 0) fputs("null", stdout);
    else fwrite(s.p, 1, (size_t)s.len, stdout);
}

/* Where config requests go: the bootstrap connection, or the broker named
 * by a broker (non-default) or broker-logger resource. */
typedef struct cfg_route {
    kclient *boot;
    admin_pool pool;
    MetadataResponse md;
    int have_md;
    karena *a;
} cfg_route;

/* The connection for a resource, or NULL (failure in r->boot->err). A broker
 * id the cluster does not list is asked of the bootstrap node, whose answer
 * names the error. */
static kclient *route(cfg_route *r, int8_t rtype, const char *name) {
    int32_t id;
    if (rtype == CONFIG_RESOURCE_TOPIC || !name || !*name || admin_parse_int(name, &id) != 0) return r->boot;
    if (!r->have_md) {
        static const char *const no_topics[1] = {NULL};
        if (kclient_metadata(r->boot, no_topics, 0, &r->md, NULL, r->a) != 0) return NULL;
        r->have_md = 1;
    }
    for (int32_t i = 0; i < r->md.brokers_count; i++)
        if (r->md.brokers[i].node_id == id) return admin_pool_node(&r->pool, &r->md, id);
    return r->boot;
}

/* Prints one entity's configs (filtered to `source` unless it is -1). */
static int describe_entity(cfg_route *r, karena *a, int8_t rtype, const char *name, int source) {
    DescribeConfigsResponse_DescribeConfigsResult *res;
    int16_t v;
    kclient *c = route(r, rtype, name);
    if (!c) {
        fprintf(stderr, "Error while executing config command: %s\n", r->boot->err);
        return 1;
    }
    if (admin_describe_configs(c, rtype, name, &res, &v, a) != 0) {
        fprintf(stderr, "Error while executing config command: %s\n", c->err);
        return 1;
    }
    if (res->error_code != 0) {
        fprintf(stderr, "Error while executing config command: %s\n",
                admin_error_text(res->error_code, res->error_message, a));
        return 1;
    }
    entry_ref *refs = karena_calloc(a, (size_t)(res->configs_count > 0 ? res->configs_count : 1), sizeof *refs);
    int n = 0;
    for (int32_t i = 0; i < res->configs_count; i++)
        if (source < 0 || res->configs[i].config_source == source) refs[n++].e = &res->configs[i];
    qsort(refs, (size_t)n, sizeof *refs, cmp_entry);
    for (int i = 0; i < n; i++) {
        const DescribeConfigsResponse_DescribeConfigsResourceResult *e = refs[i].e;
        printf("  %.*s=", (int)e->name.len, e->name.p);
        print_kstr_or_null(e->is_sensitive ? KSTR_NULL : e->value);
        printf(" sensitive=%s synonyms={", e->is_sensitive ? "true" : "false");
        for (int32_t s = 0; s < e->synonyms_count; s++) {
            const DescribeConfigsResponse_DescribeConfigsSynonym *sy = &e->synonyms[s];
            printf("%s%s:%.*s=", s ? ", " : "", config_source_name(sy->source), (int)sy->name.len, sy->name.p);
            print_kstr_or_null(e->is_sensitive ? KSTR_NULL : sy->value);
        }
        printf("}\n");
    }
    return 0;
}

/* Splits --add-config on commas outside [...], then each pair on '='. */
static int parse_add_config(const char *spec, karena *a, IncrementalAlterConfigsRequest_AlterableConfig **out, int *n) {
    size_t len = strlen(spec);
    *out = karena_calloc(a, len + 1, sizeof **out);
    *n = 0;
    size_t start = 0;
    int depth = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && spec[i] == '[') depth++;
        if (i < len && spec[i] == ']' && depth > 0) depth--;
        if (i < len && !(spec[i] == ',' && depth == 0)) continue;
        const char *item = spec + start;
        size_t ilen = i - start;
        const char *eq = memchr(item, '=', ilen);
        if (!eq) return -1;
        const char *ks = item, *ke = eq;
        while (ks < ke && *ks == ' ') ks++;
        while (ke > ks && ke[-1] == ' ') ke--;
        /* Value: drop the list brackets, trim. */
        char *val = karena_alloc(a, ilen + 1);
        size_t vl = 0;
        for (const char *p = eq + 1; p < item + ilen; p++)
            if (*p != '[' && *p != ']') val[vl++] = *p;
        val[vl] = 0;
        char *vs = val;
        while (*vs == ' ') vs++;
        while (vl > 0 && val[vl - 1] == ' ') val[--vl] = 0;
        IncrementalAlterConfigsRequest_AlterableConfig *cfg = &(*out)[(*n)++];
        IncrementalAlterConfigsRequest_AlterableConfig_init(cfg);
        cfg->name = (kstr){karena_strndup(a, ks, (size_t)(ke - ks)), (int32_t)(ke - ks)};
        cfg->config_operation = 0; /* SET */
        cfg->value = kstr_from(vs);
        start = i + 1;
    }
    return 0;
}

int tool_configs(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, configs_specs, OPTS_COUNT(configs_specs), argc, argv) != 0) {
        rc = arg_error(o.err);
        opts_free(&o);
        return rc;
    }
    if (opts_maybe_help_or_version(&o, "This tool helps to manipulate and describe entity config for a topic, "
                                       "client, user, broker or ip", &rc)) {
        opts_free(&o);
        return rc;
    }
    /* Entity type and name, from --entity-type/--entity-name or the shorthands. */
    const char *etype = opts_get(&o, "entity-type", NULL);
    const char *ename = opts_get(&o, "entity-name", NULL);
    int is_default = opts_has(&o, "entity-default");
    quota_part given[2]; /* the shorthands given, "" naming a default */
    size_t nshort = 0;
    for (size_t i = 0; i < NSHORTHANDS; i++) {
        if (!opts_has(&o, shorthands[i].opt)) continue;
        if (nshort < 2)
            given[nshort] = (quota_part){shorthands[i].type,
                                         shorthands[i].is_default ? "" : opts_get(&o, shorthands[i].opt, "")};
        nshort++;
    }
    size_t ntypes = opts_count(&o, "entity-type");
    if (ntypes == 0 && nshort >= 1) {
        etype = given[0].type;
        ename = *given[0].name ? given[0].name : NULL;
        is_default = !*given[0].name;
    }
    karena a;
    karena_init(&a, 0);
    kclient c;
    kclient_init(&c, "adminclient-1");
    cfg_route rt;
    memset(&rt, 0, sizeof rt);
    rt.boot = &c;
    rt.a = &a;
    admin_pool_init(&rt.pool, &c);
    int8_t rtype;
    bool users = false, quotas = false;
    int describe = opts_has(&o, "describe"), alter = opts_has(&o, "alter");
    if (describe + alter != 1) {
        rc = opts_usage_error(&o, "Command must include exactly one action: --describe, --alter");
        goto out;
    }
    if (!etype) {
        rc = arg_error("At least one entity type must be specified");
        goto out;
    }
    if (strcmp(etype, "topics") == 0) rtype = CONFIG_RESOURCE_TOPIC;
    else if (strcmp(etype, "brokers") == 0) rtype = CONFIG_RESOURCE_BROKER;
    else if (strcmp(etype, "broker-loggers") == 0) rtype = CONFIG_RESOURCE_BROKER_LOGGER;
    else if (!strcmp(etype, "users")) {
        rtype = -1;
        users = true;
    } else if (!strcmp(etype, "clients") || !strcmp(etype, "ips")) {
        rtype = -1;
        quotas = true;
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "Invalid entity type %s, the entity type must be one of topics, clients, users, "
                                  "brokers, ips, broker-loggers with the --bootstrap-server argument", etype);
        rc = arg_error(msg);
        goto out;
    }
    if (!opts_has(&o, "bootstrap-server")) {
        rc = arg_error("One of the required --bootstrap-server or --zookeeper arguments must be specified");
        goto out;
    }
    if (rtype != CONFIG_RESOURCE_TOPIC && !users && !quotas && ename && !is_default) {
        int32_t id;
        if (admin_parse_int(ename, &id) != 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "The entity name for %s must be a valid integer broker id, but it is: %s", etype, ename);
            rc = arg_error(msg);
            goto out;
        }
    }
    if (alter && !ename && !is_default) {
        char msg[128];
        if (rtype == CONFIG_RESOURCE_BROKER || users || quotas)
            snprintf(msg, sizeof msg, "an entity-name or default entity must be specified with --alter of users, clients, brokers or ips");
        else
            snprintf(msg, sizeof msg, "an entity name must be specified with --alter of %s", etype);
        rc = arg_error(msg);
        goto out;
    }
    if (alter && !opts_has(&o, "add-config") && !opts_has(&o, "delete-config")) {
        rc = arg_error("At least one of --add-config, --add-config-file, or --delete-config must be specified with --alter");
        goto out;
    }
    if (opts_has(&o, "command-config") && admin_apply_command_config(&c, opts_get(&o, "command-config", "")) != 0) {
        rc = 1;
        goto out;
    }
    if (kclient_connect(&c, opts_get(&o, "bootstrap-server", "")) != 0) {
        fprintf(stderr, "Error while executing config command: %s\n", c.err);
        rc = 1;
        goto out;
    }
    const char *name = is_default ? "" : (ename ? ename : NULL);
    /* users and clients together: --entity-type users --entity-type clients, a name (or
     * --entity-default) for each */
    quota_part parts[2] = {{etype, name}, {NULL, NULL}};
    int nparts = 1;
    if (ntypes + nshort == 2 && nshort > 0 && (users || quotas)) {
        /* --user u --client c, or --entity-type users --entity-name u --client c */
        if (ntypes == 0) parts[0] = given[0];
        parts[1] = given[nshort - 1];
        nparts = 2;
    } else if (ntypes == 2 && (users || quotas)) {
        parts[0].type = opts_get_at(&o, "entity-type", 0);
        parts[1].type = opts_get_at(&o, "entity-type", 1);
        parts[0].name = opts_get_at(&o, "entity-name", 0);
        parts[1].name = opts_get_at(&o, "entity-name", 1);
        if (is_default && !parts[1].name) parts[1].name = "";
        nparts = 2;
    }
    if ((users || quotas) && describe) {
        rc = configs_quotas_describe(&c, parts, nparts, &a);
        /* Kafka describes SCRAM credentials unless asked for defaults or clients */
        if (rc == 0 && users && nparts == 1 && !is_default) rc = configs_users_describe(&c, name, &a);
        goto out;
    }
    if (describe) {
        int all = opts_has(&o, "all");
        int source = all ? -1
                     : rtype == CONFIG_RESOURCE_TOPIC ? CONFIG_SOURCE_DYNAMIC_TOPIC
                     : rtype == CONFIG_RESOURCE_BROKER ? (is_default ? CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER
                                                                     : CONFIG_SOURCE_DYNAMIC_BROKER)
                                                       : -1;
        const char *singular = rtype == CONFIG_RESOURCE_TOPIC ? "topic"
                               : rtype == CONFIG_RESOURCE_BROKER ? "broker" : "broker-logger";
        if (name) {
            if (is_default) printf("Default configs for %s in the cluster are:\n", etype);
            else printf("%s configs for %s %s are:\n", all ? "All" : "Dynamic", singular, name);
            rc = describe_entity(&rt, &a, rtype, name, source);
        } else if (rtype == CONFIG_RESOURCE_TOPIC) {
            MetadataResponse md;
            if (kclient_metadata(&c, NULL, 0, &md, NULL, &a) != 0) {
                fprintf(stderr, "Error while executing config command: %s\n", c.err);
                rc = 1;
                goto out;
            }
            for (int32_t i = 0; i < md.topics_count && rc == 0; i++) {
                char *t = kstr_dup(md.topics[i].name, &a);
                printf("%s configs for topic %s are:\n", all ? "All" : "Dynamic", t);
                rc = describe_entity(&rt, &a, rtype, t, source);
            }
        } else {
            MetadataResponse md;
            if (kclient_metadata(&c, NULL, 0, &md, NULL, &a) != 0) {
                fprintf(stderr, "Error while executing config command: %s\n", c.err);
                rc = 1;
                goto out;
            }
            for (int32_t i = 0; i < md.brokers_count && rc == 0; i++) {
                char id[16];
                snprintf(id, sizeof id, "%d", md.brokers[i].node_id);
                printf("%s configs for %s %s are:\n", all ? "All" : "Dynamic", singular, id);
                rc = describe_entity(&rt, &a, rtype, id, source);
            }
            if (rc == 0) {
                printf("Default configs for %s in the cluster are:\n", etype);
                rc = describe_entity(&rt, &a, rtype, "",
                                     rtype == CONFIG_RESOURCE_BROKER ? CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER : -1);
            }
        }
        goto out;
    }

    /* --alter */
    IncrementalAlterConfigsRequest_AlterableConfig *adds = NULL;
    int nadd = 0;
    if (opts_has(&o, "add-config") && parse_add_config(opts_get(&o, "add-config", ""), &a, &adds, &nadd) != 0) {
        rc = arg_error("requirement failed: Invalid entity config: all configs to be added must be in the format \"key=val\".");
        goto out;
    }
    const char *dels = opts_get(&o, "delete-config", "");
    if (quotas || (users && nparts == 2)) {
        config_kv *kv = karena_calloc(&a, (size_t)nadd + 1, sizeof *kv);
        char unknown[1024] = "";
        bool ip = !strcmp(etype, "ips") && nparts == 1;
        for (int i = 0; i < nadd; i++) {
            kv[i].key = kstr_dup(adds[i].name, &a);
            kv[i].value = kstr_dup(adds[i].value, &a);
            if (ip ? strcmp(kv[i].key, "connection_creation_rate") != 0 : !configs_is_client_quota_key(kv[i].key))
                snprintf(unknown + strlen(unknown), sizeof unknown - strlen(unknown), "%s%s",
                         unknown[0] ? (ip ? "," : ", ") : "", kv[i].key);
        }
        if (unknown[0]) {
            char msg[1200];
            if (ip)
                snprintf(msg, sizeof msg, "Only connection quota configs can be added for 'ips' using "
                                          "--bootstrap-server. Unexpected config names: %s", unknown);
            else
                snprintf(msg, sizeof msg, "Only quota configs can be added for 'clients' using --bootstrap-server. "
                                          "Unexpected config names: Set(%s)", unknown);
            rc = arg_error(msg);
            goto out;
        }
        rc = configs_quotas_alter(&c, parts, nparts, kv, nadd, dels, argc, argv, &a);
        if (rc == 0 && name && *name)
            printf("Completed updating config for %.*s %s.\n", (int)strlen(etype) - 1, etype, name);
        else if (rc == 0)
            printf("Completed updating default config for %s in the cluster.\n", etype);
        goto out;
    }
    if (users) {
        config_kv *kv = karena_calloc(&a, (size_t)nadd + 1, sizeof *kv);
        for (int i = 0; i < nadd; i++) {
            kv[i].key = kstr_dup(adds[i].name, &a);
            kv[i].value = kstr_dup(adds[i].value, &a);
        }
        rc = configs_users_alter(&c, name, is_default, kv, nadd, dels, argc, argv, &a);
        goto out;
    }
    int ndel = 0;
    for (const char *p = dels; *p; p++) ndel += *p == ',';
    ndel += *dels ? 1 : 0;
    IncrementalAlterConfigsRequest_AlterConfigsResource res;
    IncrementalAlterConfigsRequest_AlterConfigsResource_init(&res);
    res.resource_type = rtype;
    res.resource_name = kstr_from(name);
    res.configs = karena_calloc(&a, (size_t)(nadd + ndel + 1), sizeof *res.configs);
    for (int i = 0; i < nadd; i++) res.configs[i] = adds[i];
    res.configs_count = nadd;
    if (ndel) {
        /* Deleting something that is not set is an error in Kafka (topics and brokers). */
        DescribeConfigsResponse_DescribeConfigsResult *cur = NULL;
        int16_t v;
        kclient *tc = rtype != CONFIG_RESOURCE_BROKER_LOGGER ? route(&rt, rtype, name) : &c;
        if (!tc || (rtype != CONFIG_RESOURCE_BROKER_LOGGER &&
                    admin_describe_configs(tc, rtype, name, &cur, &v, &a) != 0)) {
            fprintf(stderr, "Error while executing config command: %s\n", tc ? tc->err : c.err);
            rc = 1;
            goto out;
        }
        char *copy = karena_strndup(&a, dels, strlen(dels));
        char *save = NULL;
        char invalid[1024] = "";
        for (char *d = strtok_r(copy, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
            while (*d == ' ') d++;
            if (cur) {
                int found = 0;
                for (int32_t k = 0; k < cur->configs_count; k++)
                    if (kstr_eq_c(cur->configs[k].name, d)) found = 1;
                if (!found) {
                    size_t l = strlen(invalid);
                    snprintf(invalid + l, sizeof invalid - l, "%s%s", l ? "," : "", d);
                }
            }
            IncrementalAlterConfigsRequest_AlterableConfig *cfg = &res.configs[res.configs_count++];
            IncrementalAlterConfigsRequest_AlterableConfig_init(cfg);
            cfg->name = kstr_from(d);
            cfg->config_operation = 1; /* DELETE */
            cfg->value = KSTR_LIT("");
        }
        if (invalid[0]) {
            fprintf(stderr, "Invalid config(s): %s\n", invalid);
            rc = 1;
            goto out;
        }
    }
    kclient *tc = route(&rt, rtype, name);
    if (!tc) {
        fprintf(stderr, "Error while executing config command: %s\n", c.err);
        rc = 1;
        goto out;
    }
    int16_t v = kclient_pick_version(tc, KAPI_INCREMENTAL_ALTER_CONFIGS);
    if (v < 0) {
        fprintf(stderr, "Error while executing config command: The broker does not support INCREMENTAL_ALTER_CONFIGS\n");
        rc = 1;
        goto out;
    }
    IncrementalAlterConfigsRequest req;
    IncrementalAlterConfigsRequest_init(&req);
    req.resources = &res;
    req.resources_count = 1;
    IncrementalAlterConfigsResponse resp;
    if (kclient_request(tc, KAPI_INCREMENTAL_ALTER_CONFIGS, v, &req, &resp, &a) != 0) {
        fprintf(stderr, "Error while executing config command: %s\n", tc->err);
        rc = 1;
        goto out;
    }
    for (int32_t i = 0; i < resp.responses_count; i++) {
        if (resp.responses[i].error_code != 0) {
            fprintf(stderr, "Error while executing config command with args '");
            for (int k = 1; k < argc; k++) fprintf(stderr, "%s%s", k > 1 ? " " : "", argv[k]);
            fprintf(stderr, "'\n%s\n", admin_error_text(resp.responses[i].error_code, resp.responses[i].error_message, &a));
            rc = 1;
            goto out;
        }
    }
    if (!is_default) {
        /* Kafka drops the plural 's' of the entity type. */
        printf("Completed updating config for %.*s %s.\n", (int)strlen(etype) - 1, etype, name);
    } else {
        printf("Completed updating default config for %s in the cluster.\n", etype);
    }
out:
    admin_pool_close(&rt.pool);
    kclient_close(&c);
    karena_free(&a);
    opts_free(&o);
    return rc;
}
