/* configs_users.c - kafka-configs --entity-type users: SCRAM credentials, as
 * Kafka's ConfigCommand does them with --bootstrap-server:
 *   --alter --add-config 'SCRAM-SHA-256=[iterations=8192,password=secret]'
 *       AlterUserScramCredentials with a salted password (the salt and
 *       Hi(password) computed here, as the Java AdminClient does)
 *   --alter --delete-config 'SCRAM-SHA-512'
 *   --describe [--entity-name u]
 *       "SCRAM credential configs for user-principal 'u' are SCRAM-SHA-256=iterations=8192"
 * User quota configs (producer_byte_rate, ...) go through configs_quotas.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "security/scram.h"
#include "tools/admin_common.h"
#include "tools/configs_quotas.h"
#include "tools/configs_users.h"
#include "tools/java_compat.h"
#include "tools/kclient.h"

#define DEFAULT_ITERATIONS 4096

static bool is_quota_key(const char *k, size_t n) {
    static const char *const q[] = {"producer_byte_rate", "consumer_byte_rate", "request_percentage",
                                    "controller_mutation_rate"};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        if (strlen(q[i]) == n && memcmp(q[i], k, n) == 0) return true;
    return false;
}

static void print_args_error(int argc, char **argv) {
    fprintf(stderr, "Error while executing config command with args '");
    for (int k = 1; k < argc; k++) fprintf(stderr, "%s%s", k > 1 ? " " : "", argv[k]);
    fprintf(stderr, "'\n");
}

int configs_users_describe(kclient *c, const char *user, karena *a) {
    int16_t v = kclient_pick_version(c, KAPI_DESCRIBE_USER_SCRAM_CREDENTIALS);
    if (v < 0) {
        fprintf(stderr, "Error while executing config command: The broker does not support DESCRIBE_USER_SCRAM_CREDENTIALS\n");
        return 1;
    }
    DescribeUserScramCredentialsRequest req;
    DescribeUserScramCredentialsRequest_init(&req);
    DescribeUserScramCredentialsRequest_UserName un;
    if (user) {
        DescribeUserScramCredentialsRequest_UserName_init(&un);
        un.name = kstr_from(user);
        req.users = &un;
        req.users_count = 1;
    } else {
        req.users_count = 0; /* every user */
    }
    DescribeUserScramCredentialsResponse resp;
    if (kclient_request(c, KAPI_DESCRIBE_USER_SCRAM_CREDENTIALS, v, &req, &resp, a) != 0) {
        fprintf(stderr, "Error while executing config command: %s\n", c->err);
        return 1;
    }
    if (resp.error_code) {
        fprintf(stderr, "Error while executing config command: %s: %s\n", java_error_class(resp.error_code),
                admin_error_text(resp.error_code, resp.error_message, a));
        return 1;
    }
    for (int32_t i = 0; i < resp.results_count; i++) {
        const DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult *r = &resp.results[i];
        /* the AdminClient's users() leaves out users without credentials */
        if (r->error_code == KERR_RESOURCE_NOT_FOUND) continue;
        if (r->error_code) {
            printf("Error retrieving SCRAM credential configs for user-principal '%.*s': %s: %s\n", r->user.len,
                   r->user.p, strrchr(java_error_class(r->error_code), '.') + 1,
                   admin_error_text(r->error_code, r->error_message, a));
            continue;
        }
        printf("SCRAM credential configs for user-principal '%.*s' are ", r->user.len, r->user.p);
        for (int32_t k = 0; k < r->credential_infos_count; k++)
            printf("%s%s=iterations=%d", k ? ", " : "", scram_mechanism_name(r->credential_infos[k].mechanism),
                   r->credential_infos[k].iterations);
        printf("\n");
    }
    return 0;
}

/* "(?:iterations=(-?[0-9]*),)?password=(.*)" */
static int parse_credential(const char *mech, const char *value, int32_t *iterations, const char **password) {
    const char *p = value;
    *iterations = DEFAULT_ITERATIONS;
    if (strncmp(p, "iterations=", 11) == 0) {
        const char *q = p + 11;
        const char *digits = q;
        if (*q == '-') q++;
        while (*q >= '0' && *q <= '9') q++;
        if (*q == ',' && strncmp(q + 1, "password=", 9) == 0) {
            long long it = (q > digits && !(q == digits + 1 && *digits == '-')) ? strtoll(digits, NULL, 10) : 0;
            if (q == digits) it = -2; /* "iterations=," : Java's toInt fails */
            if (it == -2 || it > INT32_MAX || it < INT32_MIN) {
                fprintf(stderr, "For input string: \"%.*s\"\n", (int)(q - digits), digits);
                return -1;
            }
            *iterations = it == -1 ? DEFAULT_ITERATIONS : (int32_t)it;
            p = q + 1;
        }
    }
    if (strncmp(p, "password=", 9) != 0) {
        fprintf(stderr, "Invalid credential property %s=%s\n", mech, value);
        return -1;
    }
    *password = p + 9;
    if (*iterations < SCRAM_MIN_ITERATIONS) {
        fprintf(stderr, "Iterations %d is less than the minimum %d required for %s\n", *iterations,
                SCRAM_MIN_ITERATIONS, mech);
        return -1;
    }
    return 0;
}

int configs_users_alter(kclient *c, const char *user, bool is_default, const config_kv *adds, int nadd,
                        const char *dels, int argc, char **argv, karena *a) {
    /* sort the keys as ConfigCommand does: SCRAM, quota, unknown */
    char unknown[1024] = "";
    bool quota = false, scram = false;
    for (int i = 0; i < nadd; i++) {
        const char *k = adds[i].key;
        if (scram_mechanism_from_name(k)) scram = true;
        else if (is_quota_key(k, strlen(k))) quota = true;
        else snprintf(unknown + strlen(unknown), sizeof unknown - strlen(unknown), "%s%s", unknown[0] ? ", " : "", k);
    }
    if (unknown[0]) {
        fprintf(stderr,
                "Only quota and SCRAM credential configs can be added for 'users' using --bootstrap-server. "
                "Unexpected config names: Set(%s)\n",
                unknown);
        return 1;
    }
    int ndel = 0;
    const char *delnames[16];
    size_t dellens[16];
    for (const char *p = dels; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ') p++, n--;
        while (n && p[n - 1] == ' ') n--;
        if (n && ndel < 16) {
            delnames[ndel] = p;
            dellens[ndel++] = n;
        }
        p = e ? e + 1 : p + strlen(p);
    }
    unknown[0] = 0;
    for (int i = 0; i < ndel; i++) {
        char k[64];
        snprintf(k, sizeof k, "%.*s", (int)dellens[i], delnames[i]);
        if (scram_mechanism_from_name(k)) scram = true;
        else if (is_quota_key(delnames[i], dellens[i])) quota = true;
        else snprintf(unknown + strlen(unknown), sizeof unknown - strlen(unknown), "%s%s", unknown[0] ? ", " : "", k);
    }
    if (unknown[0]) {
        fprintf(stderr,
                "Only quota and SCRAM credential configs can be deleted for 'users' using --bootstrap-server. "
                "Unexpected config names: List(%s)\n",
                unknown);
        return 1;
    }
    if (scram && is_default) {
        fprintf(stderr, "The use of --entity-default or --user-defaults is not allowed with User SCRAM Credentials "
                        "using --bootstrap-server.\n");
        return 1;
    }
    if (scram && quota) {
        fprintf(stderr, "Cannot alter both quota and SCRAM credential configs simultaneously for 'users' using "
                        "--bootstrap-server.\n");
        return 1;
    }
    if (quota) {
        quota_part p = {"users", is_default ? "" : user};
        int rc = configs_quotas_alter(c, &p, 1, adds, nadd, dels, argc, argv, a);
        if (rc == 0 && is_default) printf("Completed updating default config for users in the cluster.\n");
        else if (rc == 0) printf("Completed updating config for user %s.\n", user);
        return rc;
    }
    AlterUserScramCredentialsRequest req;
    AlterUserScramCredentialsRequest_init(&req);
    req.deletions = karena_calloc(a, (size_t)ndel + 1, sizeof *req.deletions);
    req.upsertions = karena_calloc(a, (size_t)nadd + 1, sizeof *req.upsertions);
    req.deletions_count = 0;
    req.upsertions_count = 0;
    for (int i = 0; i < ndel; i++) {
        AlterUserScramCredentialsRequest_ScramCredentialDeletion *d = &req.deletions[req.deletions_count++];
        AlterUserScramCredentialsRequest_ScramCredentialDeletion_init(d);
        char k[64];
        snprintf(k, sizeof k, "%.*s", (int)dellens[i], delnames[i]);
        d->name = kstr_from(user);
        d->mechanism = (int8_t)scram_mechanism_from_name(k);
    }
    for (int i = 0; i < nadd; i++) {
        int mech = scram_mechanism_from_name(adds[i].key);
        int32_t iterations;
        const char *password;
        if (parse_credential(adds[i].key, adds[i].value, &iterations, &password) < 0) return 1;
        char salt[64];
        scram_random_string(salt, sizeof salt);
        uint8_t *salted = karena_alloc(a, SCRAM_MAX_KEY);
        char *salt_copy = karena_strndup(a, salt, strlen(salt));
        if (!salted || !salt_copy ||
            scram_salted_password(mech, password, strlen(password), (const uint8_t *)salt, strlen(salt), iterations,
                                  salted) < 0) {
            fprintf(stderr, "Could not create credential\n");
            return 1;
        }
        AlterUserScramCredentialsRequest_ScramCredentialUpsertion *u = &req.upsertions[req.upsertions_count++];
        AlterUserScramCredentialsRequest_ScramCredentialUpsertion_init(u);
        u->name = kstr_from(user);
        u->mechanism = (int8_t)mech;
        u->iterations = iterations;
        u->salt = (kbytes){(const uint8_t *)salt_copy, (int32_t)strlen(salt)};
        u->salted_password = (kbytes){salted, (int32_t)scram_key_len(mech)};
    }
    int16_t v = kclient_pick_version(c, KAPI_ALTER_USER_SCRAM_CREDENTIALS);
    if (v < 0) {
        fprintf(stderr, "Error while executing config command: The broker does not support ALTER_USER_SCRAM_CREDENTIALS\n");
        return 1;
    }
    AlterUserScramCredentialsResponse resp;
    if (kclient_request(c, KAPI_ALTER_USER_SCRAM_CREDENTIALS, v, &req, &resp, a) != 0) {
        fprintf(stderr, "Error while executing config command: %s\n", c->err);
        return 1;
    }
    for (int32_t i = 0; i < resp.results_count; i++) {
        if (resp.results[i].error_code == 0) continue;
        print_args_error(argc, argv);
        fprintf(stderr, "java.util.concurrent.ExecutionException: %s: %s\n",
                java_error_class(resp.results[i].error_code),
                admin_error_text(resp.results[i].error_code, resp.results[i].error_message, a));
        return 1;
    }
    printf("Completed updating config for user %s.\n", user);
    return 0;
}
