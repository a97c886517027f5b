/* configs_quotas.c - kafka-configs --entity-type users|clients|ips quota
 * configs, as Kafka 3.6.1's ConfigCommand with --bootstrap-server:
 *   --alter --add-config 'producer_byte_rate=1024,request_percentage=50'
 *       AlterClientQuotas (values parsed as doubles; deletions must name
 *       keys that are set: "Invalid config(s): k")
 *   --describe [--entity-name x | --entity-default]
 *       DescribeClientQuotas with a strict filter, one line per entity:
 *       "Quota configs for user-principal 'alice' are producer_byte_rate=1024.0"
 * Values print as Java's Double.toString and in the order of the Java
 * AdminClient's HashMap (the order Kafka's tool prints them in).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/configs_quotas.h"
#include "tools/java_compat.h"

bool configs_is_client_quota_key(const char *k) {
    return !strcmp(k, "producer_byte_rate") || !strcmp(k, "consumer_byte_rate") || !strcmp(k, "request_percentage") ||
           !strcmp(k, "controller_mutation_rate");
}

/* Java's Double.toString: the shortest digits that read back, plain between
 * 1e-3 and 1e7 ("1024.0"), else computerized scientific ("1.0E7"). */
static void java_double(char *out, size_t len, double d) {
    if (isnan(d)) {
        snprintf(out, len, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(out, len, "%sInfinity", d < 0 ? "-" : "");
        return;
    }
    if (d == 0) {
        snprintf(out, len, "%s0.0", signbit(d) ? "-" : "");
        return;
    }
    char e[40];
    for (int p = 0; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p, d);
        if (strtod(e, NULL) == d) break;
    }
    /* e: [-]D[.DDD]e[+-]XX */
    const char *s = e;
    bool neg = *s == '-';
    if (neg) s++;
    char digits[32];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int exp = atoi(s + 1);
    char buf[64];
    size_t n = 0;
    if (neg) buf[n++] = '-';
    if (fabs(d) >= 1e-3 && fabs(d) < 1e7) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) buf[n++] = i < nd ? digits[i] : '0';
            buf[n++] = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++) buf[n++] = digits[i];
            else
                buf[n++] = '0';
        } else {
            buf[n++] = '0';
            buf[n++] = '.';
            for (int i = -1; i > exp; i--) buf[n++] = '0';
            for (int i = 0; i < nd; i++) buf[n++] = digits[i];
        }
        buf[n] = 0;
    } else {
        buf[n++] = digits[0];
        buf[n++] = '.';
        if (nd > 1)
            for (int i = 1; i < nd; i++) buf[n++] = digits[i];
        else
            buf[n++] = '0';
        snprintf(buf + n, sizeof buf - n, "E%d", exp);
    }
    snprintf(out, len, "%s", buf);
}

static const char *entity_key(const char *type) {
    if (!strcmp(type, "users")) return "user";
    if (!strcmp(type, "clients")) return "client-id";
    return "ip";
}

static bool query(kclient *c, const quota_part *parts, int nparts, DescribeClientQuotasResponse *resp, karena *a) {
    int16_t v = kclient_pick_version(c, KAPI_DESCRIBE_CLIENT_QUOTAS);
    if (v < 0) {
        fprintf(stderr, "Error while executing config command: The broker does not support DESCRIBE_CLIENT_QUOTAS\n");
        return false;
    }
    DescribeClientQuotasRequest req;
    DescribeClientQuotasRequest_init(&req);
    req.components = karena_calloc(a, (size_t)nparts + 1, sizeof *req.components);
    req.components_count = nparts;
    req.strict = true; /* ClientQuotaFilter.containsOnly */
    for (int i = 0; i < nparts; i++) {
        DescribeClientQuotasRequest_ComponentData *cd = &req.components[i];
        DescribeClientQuotasRequest_ComponentData_init(cd);
        cd->entity_type = kstr_from(entity_key(parts[i].type));
        if (!parts[i].name) cd->match_type = 2, cd->match = KSTR_NULL;
        else if (!*parts[i].name) cd->match_type = 1, cd->match = KSTR_NULL;
        else cd->match_type = 0, cd->match = kstr_from(parts[i].name);
    }
    if (kclient_request(c, KAPI_DESCRIBE_CLIENT_QUOTAS, v, &req, resp, a) != 0) {
        fprintf(stderr, "Error while executing config command: %s\n", c->err);
        return false;
    }
    if (resp->error_code) {
        fprintf(stderr, "Error while executing config command: %s: %s\n", java_error_class(resp->error_code),
                admin_error_text(resp->error_code, resp->error_message, a));
        return false;
    }
    return true;
}

/* The Java HashMap's iteration order of the quota keys. */
static const char *const key_order[] = {"connection_creation_rate", "request_percentage", "producer_byte_rate",
                                        "consumer_byte_rate", "controller_mutation_rate"};

int configs_quotas_describe(kclient *c, const quota_part *parts, int nparts, karena *a) {
    DescribeClientQuotasResponse resp;
    if (!query(c, parts, nparts, &resp, a)) return 1;
    static const char *const types[] = {"user", "client-id", "ip"};
    static const char *const words[] = {"user-principal", "client-id", "ip"};
    for (int32_t i = 0; i < resp.entries_count; i++) {
        const DescribeClientQuotasResponse_EntryData *e = &resp.entries[i];
        printf("Quota configs for ");
        bool first = true;
        for (int t = 0; t < 3; t++)
            for (int32_t k = 0; k < e->entity_count; k++) {
                if (!kstr_eq_c(e->entity[k].entity_type, types[t])) continue;
                if (e->entity[k].entity_name.len < 0) printf("%sthe default %s", first ? "" : ", ", words[t]);
                else
                    printf("%s%s '%.*s'", first ? "" : ", ", words[t], (int)e->entity[k].entity_name.len,
                           e->entity[k].entity_name.p);
                first = false;
            }
        printf(" are ");
        first = true;
        for (size_t o = 0; o < sizeof key_order / sizeof key_order[0]; o++)
            for (int32_t k = 0; k < e->values_count; k++) {
                if (!kstr_eq_c(e->values[k].key, key_order[o])) continue;
                char num[64];
                java_double(num, sizeof num, e->values[k].value);
                printf("%s%s=%s", first ? "" : ", ", key_order[o], num);
                first = false;
            }
        printf("\n");
    }
    return 0;
}

static void print_args_error(int argc, char **argv) {
    fprintf(stderr, "Error while executing config command with args '");
    for (int k = 1; k < argc; k++) fprintf(stderr, "%s%s", k > 1 ? " " : "", argv[k]);
    fprintf(stderr, "'\n");
}

int configs_quotas_alter(kclient *c, const quota_part *parts, int nparts, const config_kv *adds, int nadd,
                         const char *dels, int argc, char **argv, karena *a) {
    /* deletions: the keys must be set now (getClientQuotasConfig) */
    int ndel = 0;
    char *delv[32];
    char *copy = karena_strndup(a, dels ? dels : "", dels ? strlen(dels) : 0);
    char *save = NULL;
    for (char *d = strtok_r(copy, ",", &save); d && ndel < 32; d = strtok_r(NULL, ",", &save)) {
        while (*d == ' ') d++;
        if (*d) delv[ndel++] = d;
    }
    AlterClientQuotasRequest_OpData *ops = karena_calloc(a, (size_t)(nadd + ndel) + 1, sizeof *ops);
    int nops = 0;
    for (int i = 0; i < nadd; i++) {
        char *end = NULL;
        double v = strtod(adds[i].value, &end);
        if (!*adds[i].value || (end && *end)) {
            fprintf(stderr, "Cannot parse quota configuration value for %s: %s\n", adds[i].key, adds[i].value);
            return 1;
        }
        AlterClientQuotasRequest_OpData_init(&ops[nops]);
        ops[nops].key = kstr_from(adds[i].key);
        ops[nops++].value = v;
    }
    if (ndel) {
        DescribeClientQuotasResponse cur;
        if (!query(c, parts, nparts, &cur, a)) return 1;
        char invalid[1024] = "";
        for (int i = 0; i < ndel; i++) {
            bool found = false;
            for (int32_t k = 0; cur.entries_count > 0 && k < cur.entries[0].values_count; k++)
                if (kstr_eq_c(cur.entries[0].values[k].key, delv[i])) found = true;
            if (!found)
                snprintf(invalid + strlen(invalid), sizeof invalid - strlen(invalid), "%s%s", invalid[0] ? "," : "",
                         delv[i]);
            AlterClientQuotasRequest_OpData_init(&ops[nops]);
            ops[nops].key = kstr_from(delv[i]);
            ops[nops++].remove = true;
        }
        if (invalid[0]) {
            fprintf(stderr, "Invalid config(s): %s\n", invalid);
            return 1;
        }
    }
    AlterClientQuotasRequest req;
    AlterClientQuotasRequest_init(&req);
    AlterClientQuotasRequest_EntryData entry;
    AlterClientQuotasRequest_EntryData_init(&entry);
    entry.entity = karena_calloc(a, (size_t)nparts + 1, sizeof *entry.entity);
    entry.entity_count = nparts;
    for (int i = 0; i < nparts; i++) {
        AlterClientQuotasRequest_EntityData_init(&entry.entity[i]);
        entry.entity[i].entity_type = kstr_from(entity_key(parts[i].type));
        entry.entity[i].entity_name = parts[i].name && *parts[i].name ? kstr_from(parts[i].name) : KSTR_NULL;
    }
    entry.ops = ops;
    entry.ops_count = nops;
    req.entries = &entry;
    req.entries_count = 1;
    req.validate_only = false;
    int16_t v = kclient_pick_version(c, KAPI_ALTER_CLIENT_QUOTAS);
    if (v < 0) {
        fprintf(stderr, "Error while executing config command: The broker does not support ALTER_CLIENT_QUOTAS\n");
        return 1;
    }
    AlterClientQuotasResponse resp;
    if (kclient_request(c, KAPI_ALTER_CLIENT_QUOTAS, v, &req, &resp, a) != 0) {
        fprintf(stderr, "Error while executing config command: %s\n", c->err);
        return 1;
    }
    for (int32_t i = 0; i < resp.entries_count; i++) {
        if (resp.entries[i].error_code == 0) continue;
        print_args_error(argc, argv);
        fprintf(stderr, "java.util.concurrent.ExecutionException: %s: %s\n",
                java_error_class(resp.entries[i].error_code),
                admin_error_text(resp.entries[i].error_code, resp.entries[i].error_message, a));
        return 1;
    }
    return 0;
}
