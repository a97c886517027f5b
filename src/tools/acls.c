/* acls.c - kafka-acls: add, remove and list ACL bindings, as Kafka 3.6.1's
 * AclCommand (AdminClientService) does with --bootstrap-server.
 *
 * The resources come from --topic/--group/--cluster/--transactional-id/
 * --delegation-token/--user-principal with --resource-pattern-type; the
 * entries from --allow-principal/--deny-principal x --operation x
 * --allow-host/--deny-host, or the --producer/--consumer convenience sets.
 * Output lines are AclCommand's ("Adding ACLs for resource `...`: ",
 * "Current ACLs for resource `...`: "). Kafka prints the entries of a
 * resource from a Scala hash set (no stable order); we print them in the
 * order the command names them, or the broker returns them.
 * The deprecated --authorizer mode (ZooKeeper) is not offered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "security/authorizer.h"
#include "tools/admin_common.h"
#include "tools/kclient.h"
#include "tools/opts.h"
#include "tools/tools.h"

static const opt_spec acl_specs[] = {
    {"bootstrap-server", OPT_ARG, "String: server to connect to",
     "A list of host/port pairs to use for establishing the connection to the Kafka cluster. This list should be in "
     "the form host1:port1,host2:port2,... This config is required for acl management using admin client API.",
     NULL, 0},
    {"command-config", OPT_ARG_OPTIONAL, "String: command-config",
     "A property file containing configs to be passed to Admin Client.", NULL, 0},
    {"authorizer", OPT_ARG, "String: authorizer",
     "DEPRECATED: Fully qualified class name of the authorizer (ZooKeeper mode; not supported here).", NULL, 0},
    {"authorizer-properties", OPT_ARG, "String: authorizer-properties",
     "DEPRECATED: The properties required to configure an instance of the Authorizer specified by --authorizer.",
     NULL, 1},
    {"topic", OPT_ARG, "String: topic",
     "topic to which ACLs should be added or removed. A value of '*' indicates ACL should apply to all topics.", NULL,
     1},
    {"cluster", OPT_FLAG, NULL, "Add/Remove cluster ACLs.", NULL, 0},
    {"group", OPT_ARG, "String: group",
     "Consumer Group to which the ACLs should be added or removed. A value of '*' indicates the ACLs should apply to "
     "all groups.",
     NULL, 1},
    {"transactional-id", OPT_ARG, "String: transactional-id",
     "The transactionalId to which ACLs should be added or removed. A value of '*' indicates the ACLs should apply "
     "to all transactionalIds.",
     NULL, 1},
    {"idempotent", OPT_FLAG, NULL,
     "Enable idempotence for the producer. This should be used in combination with the --producer option. Note that "
     "idempotence is enabled automatically if the producer is authorized to a particular transactional-id.",
     NULL, 0},
    {"delegation-token", OPT_ARG, "String: delegation-token",
     "Delegation token to which ACLs should be added or removed. A value of '*' indicates ACL should apply to all "
     "tokens.",
     NULL, 1},
    {"resource-pattern-type", OPT_ARG, "ANY|MATCH|LITERAL|PREFIXED",
     "The type of the resource pattern or pattern filter. When adding acls, this should be a specific pattern type, "
     "e.g. 'literal' or 'prefixed'. When listing or removing acls, a specific pattern type can be used to list or "
     "remove acls from specific resource patterns, or use the filter values of 'any' or 'match', where 'any' will "
     "match any pattern type, but will match the resource name exactly, where as 'match' will perform pattern "
     "matching to list or remove all acls that affect the supplied resource(s). WARNING: 'match', when used in "
     "combination with the '--remove' switch, should be used with care.",
     "LITERAL", 0},
    {"add", OPT_FLAG, NULL, "Indicates you are trying to add ACLs.", NULL, 0},
    {"remove", OPT_FLAG, NULL, "Indicates you are trying to remove ACLs.", NULL, 0},
    {"list", OPT_FLAG, NULL,
     "List ACLs for the specified resource, use --topic <topic> or --group <group> or --cluster to specify a "
     "resource.",
     NULL, 0},
    {"operation", OPT_ARG, "String",
     "Operation that is being allowed or denied. Valid operation names are: \n\tDescribe\n\tDescribeConfigs\n\t"
     "Alter\n\tIdempotentWrite\n\tRead\n\tDelete\n\tCreate\n\tClusterAction\n\tAll\n\tCreateTokens\n\t"
     "DescribeTokens\n\tWrite\n\tAlterConfigs\n",
     "All", 1},
    {"allow-principal", OPT_ARG, "String: allow-principal",
     "principal is in principalType:name format. Note that principalType must be supported by the Authorizer being "
     "used. For example, User:'*' is the wild card indicating all users.",
     NULL, 1},
    {"deny-principal", OPT_ARG, "String: deny-principal",
     "principal is in principalType:name format. By default anyone not added through --allow-principal is denied "
     "access. You only need to use this option as negation to already allowed set. Note that principalType must be "
     "supported by the Authorizer being used. For example if you wanted to allow access to all users in the system "
     "but not test-user you can define an ACL that allows access to User:'*' and specify "
     "--deny-principal=User:test@EXAMPLE.COM. AND PLEASE REMEMBER DENY RULES TAKES PRECEDENCE OVER ALLOW RULES.",
     NULL, 1},
    {"principal", OPT_ARG_OPTIONAL, "String: principal",
     "List ACLs for the specified principal. principal is in principalType:name format. Note that principalType "
     "must be supported by the Authorizer being used. Multiple --principal option can be passed.",
     NULL, 1},
    {"allow-host", OPT_ARG, "String: allow-host",
     "Host from which principals listed in --allow-principal will have access. If you have specified "
     "--allow-principal then the default for this option will be set to '*' which allows access from all hosts.",
     NULL, 1},
    {"deny-host", OPT_ARG, "String: deny-host",
     "Host from which principals listed in --deny-principal will be denied access. If you have specified "
     "--deny-principal then the default for this option will be set to '*' which denies access from all hosts.",
     NULL, 1},
    {"producer", OPT_FLAG, NULL,
     "Convenience option to add/remove ACLs for producer role. This will generate ACLs that allows WRITE,DESCRIBE "
     "and CREATE on topic.",
     NULL, 0},
    {"consumer", OPT_FLAG, NULL,
     "Convenience option to add/remove ACLs for consumer role. This will generate ACLs that allows READ,DESCRIBE on "
     "topic and READ on group.",
     NULL, 0},
    {"force", OPT_FLAG, NULL, "Assume Yes to all queries and do not prompt.", NULL, 0},
    {"user-principal", OPT_ARG, "String: user-principal",
     "Specifies a user principal as a resource in relation with the operation. For instance one could grant "
     "CreateTokens or DescribeTokens permission on a given user principal.",
     NULL, 1},
};

/* One resource pattern (filter) and the entries the command names for it. */
typedef struct entry {
    const char *principal;
    const char *host;
    int8_t op, perm;
} entry;

typedef struct resource {
    int8_t type, pattern;
    const char *name; /* NULL = any (a filter) */
    entry *entries;
    int n, cap;
} resource;

typedef struct acl_cmd {
    opts *o;
    resource *res;
    int nres;
    int8_t pattern;
    kclient c;
    karena a;
} acl_cmd;

static char *trim_dup(karena *a, const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    return karena_strndup(a, s, n);
}

static resource *add_resource(acl_cmd *x, int8_t type, const char *name, int8_t pattern) {
    for (int i = 0; i < x->nres; i++)
        if (x->res[i].type == type && x->res[i].pattern == pattern && strcmp(x->res[i].name, name) == 0)
            return &x->res[i];
    resource *grown = realloc(x->res, (size_t)(x->nres + 1) * sizeof *grown);
    if (!grown) return NULL;
    x->res = grown;
    resource *r = &x->res[x->nres++];
    *r = (resource){type, pattern, name, NULL, 0, 0};
    return r;
}

static int add_entry(resource *r, const char *principal, const char *host, int8_t op, int8_t perm) {
    for (int i = 0; i < r->n; i++)
        if (r->entries[i].op == op && r->entries[i].perm == perm && strcmp(r->entries[i].principal, principal) == 0 &&
            strcmp(r->entries[i].host, host) == 0)
            return 0;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 8;
        entry *grown = realloc(r->entries, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        r->entries = grown;
        r->cap = cap;
    }
    r->entries[r->n++] = (entry){principal, host, op, perm};
    return 0;
}

static void free_resources(acl_cmd *x) {
    for (int i = 0; i < x->nres; i++) free(x->res[i].entries);
    free(x->res);
    x->res = NULL;
    x->nres = 0;
}

/* getResourceFilter: every resource the command names, in Kafka's order. */
static int collect_resources(acl_cmd *x, int die_if_none) {
    const opts *o = x->o;
    static const struct {
        const char *opt;
        int8_t type;
        int trim;
    } kinds[] = {{"topic", AZ_RES_TOPIC, 1}, {"group", AZ_RES_GROUP, 1},
                 {"transactional-id", AZ_RES_TRANSACTIONAL_ID, 0}, {"delegation-token", AZ_RES_DELEGATION_TOKEN, 1},
                 {"user-principal", AZ_RES_USER, 1}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (k == 1 && x->pattern == AZ_PAT_LITERAL && (opts_has(o, "cluster") || opts_has(o, "idempotent")))
            if (!add_resource(x, AZ_RES_CLUSTER, AZ_CLUSTER_NAME, AZ_PAT_LITERAL)) return -1;
        for (size_t i = 0; i < opts_count(o, kinds[k].opt); i++) {
            const char *v = opts_get_at(o, kinds[k].opt, i);
            char *name = kinds[k].trim ? trim_dup(&x->a, v) : karena_strndup(&x->a, v, strlen(v));
            if (!name || !add_resource(x, kinds[k].type, name, x->pattern)) return -1;
        }
    }
    if (x->nres == 0 && die_if_none)
        return opts_usage_error(o, "You must provide at least one resource: --topic <topic> or --cluster or --group "
                                   "<group> or --delegation-token <Delegation Token ID>");
    return 0;
}

/* getAcl: principals x operations x hosts, allow then deny. */
static int entries_for(acl_cmd *x, resource *r, const int8_t *ops, int nops) {
    const opts *o = x->o;
    static const char *const sides[2][3] = {{"allow-principal", "allow-host", NULL},
                                            {"deny-principal", "deny-host", NULL}};
    for (int s = 0; s < 2; s++) {
        size_t np = opts_count(o, sides[s][0]);
        if (!np) continue;
        size_t nh = opts_count(o, sides[s][1]);
        for (size_t p = 0; p < np; p++) {
            char *principal = trim_dup(&x->a, opts_get_at(o, sides[s][0], p));
            if (!principal) return -1;
            for (int k = 0; k < nops; k++)
                for (size_t h = 0; h < (nh ? nh : 1); h++) {
                    char *host = nh ? trim_dup(&x->a, opts_get_at(o, sides[s][1], h)) : (char *)AZ_WILDCARD;
                    if (!host || add_entry(r, principal, host, ops[k], s == 0 ? AZ_PERM_ALLOW : AZ_PERM_DENY) < 0)
                        return -1;
                }
        }
    }
    return 0;
}

static int check_principals(acl_cmd *x) {
    static const char *const which[] = {"allow-principal", "deny-principal"};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < opts_count(x->o, which[s]); i++) {
            const char *p = opts_get_at(x->o, which[s], i);
            if (!strchr(p, ':')) {
                printf("Error while executing ACL command: expected a string in format principalType:principalName "
                       "but got %s\n",
                       p);
                return 1;
            }
        }
    return 0;
}

/* AclEntry.supportedOperations + ALL, for validateOperation. */
static const char *supported_ops(int8_t type, int8_t op) {
    static const int8_t topic[] = {AZ_OP_READ, AZ_OP_WRITE, AZ_OP_CREATE, AZ_OP_DESCRIBE, AZ_OP_DELETE, AZ_OP_ALTER,
                                   AZ_OP_DESCRIBE_CONFIGS, AZ_OP_ALTER_CONFIGS, AZ_OP_ALL, 0};
    static const int8_t group[] = {AZ_OP_READ, AZ_OP_DESCRIBE, AZ_OP_DELETE, AZ_OP_ALL, 0};
    static const int8_t cluster[] = {AZ_OP_CREATE, AZ_OP_CLUSTER_ACTION, AZ_OP_DESCRIBE_CONFIGS, AZ_OP_ALTER_CONFIGS,
                                     AZ_OP_IDEMPOTENT_WRITE, AZ_OP_ALTER, AZ_OP_DESCRIBE, AZ_OP_ALL, 0};
    static const int8_t txn[] = {AZ_OP_DESCRIBE, AZ_OP_WRITE, AZ_OP_ALL, 0};
    static const int8_t token[] = {AZ_OP_DESCRIBE, AZ_OP_ALL, 0};
    static const int8_t user[] = {AZ_OP_CREATE_TOKENS, AZ_OP_DESCRIBE_TOKENS, AZ_OP_ALL, 0};
    const int8_t *ok = type == AZ_RES_TOPIC ? topic : type == AZ_RES_GROUP ? group : type == AZ_RES_CLUSTER ? cluster
                     : type == AZ_RES_TRANSACTIONAL_ID ? txn : type == AZ_RES_DELEGATION_TOKEN ? token : user;
    for (int i = 0; ok[i]; i++)
        if (ok[i] == op) return NULL;
    static char msg[512];
    int len = snprintf(msg, sizeof msg, "ResourceType %s only supports operations ", az_resource_type_name(type));
    for (int i = 0; ok[i] && len < (int)sizeof msg; i++)
        len += snprintf(msg + len, sizeof msg - (size_t)len, "%s%s", i ? "," : "", az_operation_name(ok[i]));
    return msg;
}

/* getResourceFilterToAcls. Returns 0, or the exit code. */
static int build(acl_cmd *x) {
    const opts *o = x->o;
    bool producer = opts_has(o, "producer"), consumer = opts_has(o, "consumer");
    int rc = collect_resources(x, 1);
    if (rc) return rc;
    if (check_principals(x)) return 1;
    int nres = x->nres;
    for (int i = 0; i < nres; i++) {
        resource *r = &x->res[i];
        if (!producer && !consumer) {
            int8_t ops[32];
            int nops = 0;
            size_t n = opts_count(o, "operation");
            for (size_t k = 0; k < (n ? n : 1) && nops < 32; k++) {
                const char *name = n ? opts_get_at(o, "operation", k) : "All";
                char *t = trim_dup(&x->a, name);
                int op = az_parse_operation(t);
                if (op < 0 || op == AZ_OP_UNKNOWN || op == AZ_OP_ANY) {
                    printf("Error while executing ACL command: Unknown operation: %s\n", t);
                    return 1;
                }
                ops[nops++] = (int8_t)op;
            }
            if (entries_for(x, r, ops, nops) < 0) return 1;
            continue;
        }
        static const int8_t topic_producer[] = {AZ_OP_WRITE, AZ_OP_DESCRIBE, AZ_OP_CREATE};
        static const int8_t txn_producer[] = {AZ_OP_WRITE, AZ_OP_DESCRIBE};
        static const int8_t idem[] = {AZ_OP_IDEMPOTENT_WRITE};
        static const int8_t topic_consumer[] = {AZ_OP_READ, AZ_OP_DESCRIBE};
        static const int8_t group_consumer[] = {AZ_OP_READ};
        if (producer && r->type == AZ_RES_TOPIC && entries_for(x, r, topic_producer, 3) < 0) return 1;
        if (producer && r->type == AZ_RES_TRANSACTIONAL_ID && entries_for(x, r, txn_producer, 2) < 0) return 1;
        if (producer && r->type == AZ_RES_CLUSTER && opts_has(o, "idempotent") && entries_for(x, r, idem, 1) < 0)
            return 1;
        if (consumer && r->type == AZ_RES_TOPIC && entries_for(x, r, topic_consumer, 2) < 0) return 1;
        if (consumer && r->type == AZ_RES_GROUP && entries_for(x, r, group_consumer, 1) < 0) return 1;
    }
    for (int i = 0; i < x->nres; i++)
        for (int k = 0; k < x->res[i].n; k++) {
            const char *bad = supported_ops(x->res[i].type, x->res[i].entries[k].op);
            if (bad) return opts_usage_error(o, bad);
        }
    return 0;
}

static void print_pattern(const char *prefix, int8_t type, const char *name, int8_t pattern) {
    printf("%s `ResourcePattern(resourceType=%s, name=%s, patternType=%s)`: \n", prefix, az_resource_type_name(type),
           name ? name : "<any>", az_pattern_type_name(pattern));
}

static void print_entry(int first, int last, const char *principal, const char *host, int8_t op, int8_t perm) {
    printf("%s\t(principal=%s, host=%s, operation=%s, permissionType=%s)%s", first ? " " : "", principal, host,
           az_operation_name(op), az_permission_name(perm), last ? " \n\n" : "\n");
}

static const char *java_exception(int16_t code) {
    switch (code) {
    case KERR_SECURITY_DISABLED: return "org.apache.kafka.common.errors.SecurityDisabledException";
    case KERR_CLUSTER_AUTHORIZATION_FAILED: return "org.apache.kafka.common.errors.ClusterAuthorizationException";
    case KERR_INVALID_REQUEST: return "org.apache.kafka.common.errors.InvalidRequestException";
    case KERR_NOT_CONTROLLER: return "org.apache.kafka.common.errors.NotControllerException";
    default: return "org.apache.kafka.common.errors.ApiException";
    }
}

static int fail_code(acl_cmd *x, int16_t code, kstr msg) {
    const char *text = admin_error_text(code, msg, &x->a);
    printf("Error while executing ACL command: %s: %s\n", java_exception(code), text);
    printf("java.util.concurrent.ExecutionException: %s: %s\n", java_exception(code), text);
    return 1;
}

static int fail_io(acl_cmd *x) {
    printf("Error while executing ACL command: org.apache.kafka.common.errors.TimeoutException: %s\n", x->c.err);
    return 1;
}

/* listAcls: DescribeAcls per named resource (all bindings when none). */
static int list_acls(acl_cmd *x) {
    free_resources(x);
    if (collect_resources(x, 0) < 0) return 1;
    int nfilters = x->nres ? x->nres : 1;
    size_t nlist = opts_count(x->o, "principal");
    int16_t v = kclient_pick_version(&x->c, KAPI_DESCRIBE_ACLS);
    for (int i = 0; i < nfilters; i++) {
        DescribeAclsRequest req;
        DescribeAclsRequest_init(&req);
        if (x->nres) {
            req.resource_type_filter = x->res[i].type;
            req.resource_name_filter = kstr_from(x->res[i].name);
            req.pattern_type_filter = x->res[i].pattern;
        } else {
            req.resource_type_filter = AZ_RES_ANY;
            req.resource_name_filter = KSTR_NULL;
            req.pattern_type_filter = AZ_PAT_ANY;
        }
        req.principal_filter = KSTR_NULL;
        req.host_filter = KSTR_NULL;
        req.operation = AZ_OP_ANY;
        req.permission_type = AZ_PERM_ANY;
        DescribeAclsResponse resp;
        if (v < 0 || kclient_request(&x->c, KAPI_DESCRIBE_ACLS, v, &req, &resp, &x->a) != 0) return fail_io(x);
        if (resp.error_code) return fail_code(x, resp.error_code, resp.error_message);
        for (size_t p = 0; p < (nlist ? nlist : 1); p++) {
            const char *who = nlist ? opts_get_at(x->o, "principal", p) : NULL;
            if (who) printf("ACLs for principal `%s`\n", who);
            for (int r = 0; r < resp.resources_count; r++) {
                const DescribeAclsResponse_DescribeAclsResource *res = &resp.resources[r];
                int shown = 0, total = 0;
                for (int k = 0; k < res->acls_count; k++) total += !who || kstr_eq_c(res->acls[k].principal, who);
                if (!total) continue;
                char *name = kstr_dup(res->resource_name, &x->a);
                print_pattern("Current ACLs for resource", res->resource_type, name, res->pattern_type);
                for (int k = 0; k < res->acls_count; k++) {
                    const DescribeAclsResponse_AclDescription *d = &res->acls[k];
                    if (who && !kstr_eq_c(d->principal, who)) continue;
                    shown++;
                    print_entry(shown == 1, shown == total, kstr_dup(d->principal, &x->a), kstr_dup(d->host, &x->a),
                                d->operation, d->permission_type);
                }
            }
        }
    }
    return 0;
}

static int add_acls(acl_cmd *x) {
    if (x->pattern != AZ_PAT_LITERAL && x->pattern != AZ_PAT_PREFIXED) {
        char msg[128];
        snprintf(msg, sizeof msg, "A '--resource-pattern-type' value of '%s' is not valid when adding acls.",
                 az_pattern_type_name(x->pattern));
        return opts_usage_error(x->o, msg);
    }
    int rc = build(x);
    if (rc) return rc;
    for (int i = 0; i < x->nres; i++)
        if (x->res[i].n == 0)
            return opts_usage_error(x->o,
                                    "You must specify one of: --allow-principal, --deny-principal when trying to add "
                                    "ACLs.");
    if (kclient_connect(&x->c, opts_get(x->o, "bootstrap-server", "")) != 0) return fail_io(x);
    int16_t v = kclient_pick_version(&x->c, KAPI_CREATE_ACLS);
    for (int i = 0; i < x->nres; i++) {
        resource *r = &x->res[i];
        print_pattern("Adding ACLs for resource", r->type, r->name, r->pattern);
        for (int k = 0; k < r->n; k++)
            print_entry(k == 0, k == r->n - 1, r->entries[k].principal, r->entries[k].host, r->entries[k].op,
                        r->entries[k].perm);
        fflush(stdout);
        CreateAclsRequest req;
        CreateAclsRequest_init(&req);
        req.creations = karena_calloc(&x->a, (size_t)r->n, sizeof *req.creations);
        if (!req.creations) return 1;
        req.creations_count = r->n;
        for (int k = 0; k < r->n; k++) {
            CreateAclsRequest_AclCreation *c = &req.creations[k];
            CreateAclsRequest_AclCreation_init(c);
            c->resource_type = r->type;
            c->resource_name = kstr_from(r->name);
            c->resource_pattern_type = r->pattern;
            c->principal = kstr_from(r->entries[k].principal);
            c->host = kstr_from(r->entries[k].host);
            c->operation = r->entries[k].op;
            c->permission_type = r->entries[k].perm;
        }
        CreateAclsResponse resp;
        if (v < 0 || kclient_request(&x->c, KAPI_CREATE_ACLS, v, &req, &resp, &x->a) != 0) return fail_io(x);
        for (int k = 0; k < resp.results_count; k++)
            if (resp.results[k].error_code)
                return fail_code(x, resp.results[k].error_code, resp.results[k].error_message);
    }
    return list_acls(x);
}

static int confirm(const acl_cmd *x, const char *question) {
    if (opts_has(x->o, "force")) return 1;
    printf("%s\n", question);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 0;
    line[strcspn(line, "\r\n")] = 0;
    return strcasecmp(line, "y") == 0;
}

static int remove_acls(acl_cmd *x) {
    int rc = build(x);
    if (rc) return rc;
    if (kclient_connect(&x->c, opts_get(x->o, "bootstrap-server", "")) != 0) return fail_io(x);
    int16_t v = kclient_pick_version(&x->c, KAPI_DELETE_ACLS);
    for (int i = 0; i < x->nres; i++) {
        resource *r = &x->res[i];
        char pat[1024];
        snprintf(pat, sizeof pat, "ResourcePattern(resourceType=%s, name=%s, patternType=%s)",
                 az_resource_type_name(r->type), r->name, az_pattern_type_name(r->pattern));
        char *q;
        if (r->n == 0) {
            q = karena_sprintf(&x->a, "Are you sure you want to delete all ACLs for resource filter `%s`? (y/n)", pat);
        } else {
            size_t len = 0, cap = 256 + (size_t)r->n * 160;
            q = karena_alloc(&x->a, cap);
            if (!q) return 1;
            len += (size_t)snprintf(q + len, cap - len, "Are you sure you want to remove ACLs: \n");
            for (int k = 0; k < r->n; k++)
                len += (size_t)snprintf(q + len, cap - len, "%s\t(principal=%s, host=%s, operation=%s, "
                                                            "permissionType=%s)%s",
                                        k == 0 ? " " : "", r->entries[k].principal, r->entries[k].host,
                                        az_operation_name(r->entries[k].op), az_permission_name(r->entries[k].perm),
                                        k == r->n - 1 ? " \n" : "\n");
            snprintf(q + len, cap - len, " from resource filter `%s`? (y/n)", pat);
        }
        if (!q || !confirm(x, q)) continue;
        DeleteAclsRequest req;
        DeleteAclsRequest_init(&req);
        int nf = r->n ? r->n : 1;
        req.filters = karena_calloc(&x->a, (size_t)nf, sizeof *req.filters);
        if (!req.filters) return 1;
        req.filters_count = nf;
        for (int k = 0; k < nf; k++) {
            DeleteAclsRequest_DeleteAclsFilter *f = &req.filters[k];
            DeleteAclsRequest_DeleteAclsFilter_init(f);
            f->resource_type_filter = r->type;
            f->resource_name_filter = kstr_from(r->name);
            f->pattern_type_filter = r->pattern;
            f->principal_filter = r->n ? kstr_from(r->entries[k].principal) : KSTR_NULL;
            f->host_filter = r->n ? kstr_from(r->entries[k].host) : KSTR_NULL;
            f->operation = r->n ? r->entries[k].op : AZ_OP_ANY;
            f->permission_type = r->n ? r->entries[k].perm : AZ_PERM_ANY;
        }
        DeleteAclsResponse resp;
        if (v < 0 || kclient_request(&x->c, KAPI_DELETE_ACLS, v, &req, &resp, &x->a) != 0) return fail_io(x);
        for (int k = 0; k < resp.filter_results_count; k++)
            if (resp.filter_results[k].error_code)
                return fail_code(x, resp.filter_results[k].error_code, resp.filter_results[k].error_message);
    }
    return list_acls(x);
}

/* AclCommandOptions.checkArgs. Returns 0 or the exit code. */
static int check_args(const opts *o) {
    static const char *const list_bad[] = {"producer", "consumer", "allow-host", "allow-principal", "deny-host",
                                           "deny-principal"};
    static const char *const role_bad[] = {"operation", "deny-principal", "deny-host"};
    if (opts_has(o, "bootstrap-server") && opts_has(o, "authorizer"))
        return opts_usage_error(o, "Only one of --bootstrap-server or --authorizer must be specified");
    if (!opts_has(o, "bootstrap-server")) {
        fprintf(stderr, "Warning: support for ACL configuration directly through the authorizer is deprecated and "
                        "will be removed in a future release. Please use --bootstrap-server instead to set ACLs "
                        "through the admin client.\n");
        if (!opts_has(o, "authorizer-properties")) return opts_require(o, "authorizer-properties");
        fprintf(stderr, "kafka-acls: --authorizer (ZooKeeper's AclAuthorizer) is not supported by Samsa; use "
                        "--bootstrap-server.\n");
        return 1;
    }
    if (opts_has(o, "authorizer-properties"))
        return opts_usage_error(o, "The --authorizer-properties option can only be used with --authorizer option");
    int actions = opts_has(o, "add") + opts_has(o, "remove") + opts_has(o, "list");
    if (actions != 1) return opts_usage_error(o, "Command must include exactly one action: --list, --add, --remove. ");
    for (size_t i = 0; i < sizeof list_bad / sizeof *list_bad; i++)
        if (opts_check_invalid(o, "list", list_bad[i])) return 1;
    for (size_t i = 0; i < sizeof role_bad / sizeof *role_bad; i++)
        if (opts_check_invalid(o, "producer", role_bad[i]) || opts_check_invalid(o, "consumer", role_bad[i]))
            return 1;
    if (opts_has(o, "principal") && !opts_has(o, "list"))
        return opts_usage_error(o, "The --principal option is only available if --list is set");
    if (opts_has(o, "producer") && !opts_has(o, "topic"))
        return opts_usage_error(o, "With --producer you must specify a --topic");
    if (opts_has(o, "idempotent") && !opts_has(o, "producer"))
        return opts_usage_error(o, "The --idempotent option is only available if --producer is set");
    if (opts_has(o, "consumer") &&
        (!opts_has(o, "topic") || !opts_has(o, "group") ||
         (!opts_has(o, "producer") && (opts_has(o, "cluster") || opts_has(o, "transactional-id")))))
        return opts_usage_error(o, "With --consumer you must specify a --topic and a --group and no --cluster or "
                                   "--transactional-id option should be specified.");
    return 0;
}

int tool_acls(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, acl_specs, OPTS_COUNT(acl_specs), argc, argv) != 0) {
        rc = opts_usage_error(&o, o.err);
        opts_free(&o);
        return rc;
    }
    if (opts_maybe_help_or_version(&o, "This tool helps to manage acls on kafka.", &rc) || (rc = check_args(&o))) {
        opts_free(&o);
        return rc;
    }
    acl_cmd x = {.o = &o, .pattern = AZ_PAT_LITERAL};
    karena_init(&x.a, 0);
    kclient_init(&x.c, "adminclient-1");
    const char *pt = opts_get(&o, "resource-pattern-type", "LITERAL");
    int p = az_parse_pattern_type(pt);
    if (p <= AZ_PAT_UNKNOWN) {
        char msg[256];
        snprintf(msg, sizeof msg, "Unknown resource-pattern-type: %s", pt);
        rc = opts_usage_error(&o, msg);
        goto out;
    }
    x.pattern = (int8_t)p;
    const char *cc = opts_get(&o, "command-config", NULL);
    if (cc && admin_apply_command_config(&x.c, cc) != 0) {
        rc = 1;
        goto out;
    }
    if (opts_has(&o, "add")) {
        rc = add_acls(&x);
    } else if (opts_has(&o, "remove")) {
        rc = remove_acls(&x);
    } else {
        rc = kclient_connect(&x.c, opts_get(&o, "bootstrap-server", "")) != 0 ? fail_io(&x) : list_acls(&x);
    }
out:
    free_resources(&x);
    kclient_close(&x.c);
    karena_free(&x.a);
    opts_free(&o);
    return rc;
}
