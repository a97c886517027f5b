/* features.c - kafka-features: describe and change finalized feature levels.
 *
 * Follows Kafka's FeatureCommand (argparse4j command line): `describe`
 * prints each supported feature with its supported range and finalized
 * level (from ApiVersions v3); `upgrade`, `downgrade` and `disable` send
 * UpdateFeatures and print one line per feature, sorted by name.
 * metadata.version levels are shown by their release names (3.6-IV2 ...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/argp.h"
#include "tools/client_props.h"
#include "tools/java_compat.h"
#include "tools/kclient.h"
#include "tools/tools.h"

static const argp_arg features_main_args[] = {
    {"--bootstrap-server", NULL, ARGP_STORE, ARGP_STRING, 1,
     "Comma-separated host:port pairs of the Kafka brokers to connect to.", NULL},
    {"--command-config", NULL, ARGP_STORE, ARGP_STRING, 0,
     "A properties file with settings for the admin client.", NULL},
};

static const argp_arg upgrade_args[] = {
    {"--metadata", NULL, ARGP_STORE, ARGP_STRING, 0, "The metadata.version to move up to, e.g. 3.3-IV3.", NULL},
    {"--feature", NULL, ARGP_APPEND, ARGP_STRING, 0,
     "A feature to raise, as feature=level, e.g. `metadata.version=5`. May be repeated.", NULL},
    {"--dry-run", NULL, ARGP_STORE_TRUE, ARGP_STRING, 0, "Only check that the upgrade would be accepted.", NULL},
};

static const argp_arg downgrade_args[] = {
    {"--metadata", NULL, ARGP_STORE, ARGP_STRING, 0, "The metadata.version to move down to, e.g. 3.3-IV0.", NULL},
    {"--feature", NULL, ARGP_APPEND, ARGP_STRING, 0,
     "A feature to lower, as feature=level, e.g. `metadata.version=5`. May be repeated.", NULL},
    {"--unsafe", NULL, ARGP_STORE_TRUE, ARGP_STRING, 0,
     "Allow a downgrade that may lose metadata irreversibly.", NULL},
    {"--dry-run", NULL, ARGP_STORE_TRUE, ARGP_STRING, 0, "Only check that the downgrade would be accepted.", NULL},
};

static const argp_arg disable_args[] = {
    {"--feature", NULL, ARGP_APPEND, ARGP_STRING, 0, "A feature to turn off. May be repeated.", NULL},
    {"--unsafe", NULL, ARGP_STORE_TRUE, ARGP_STRING, 0,
     "Turn the feature off even if that may lose metadata irreversibly.", NULL},
    {"--dry-run", NULL, ARGP_STORE_TRUE, ARGP_STRING, 0, "Only check that disabling would be accepted.", NULL},
};

static const argp_command features_commands[] = {
    {"describe", "Show the supported and finalized feature levels.", NULL, 0},
    {"upgrade", "Raise the level of one or more features.", upgrade_args, 3},
    {"downgrade", "Lower the level of one or more features.", downgrade_args, 4},
    {"disable", "Turn one or more features off (the same as lowering them to level 0).", disable_args, 3},
};

static const argp_parser features_parser = {
    "kafka-features", "This tool shows and changes the feature flags of a Kafka cluster.",
    features_main_args, 2, features_commands, 4,
    NULL, NULL, NULL, 0,
};

/* Kafka 3.6.1's MetadataVersion values, oldest first. */
typedef struct metadata_version {
    int16_t level;       /* feature level, -1 before KRaft */
    const char *release; /* "3.3" */
    const char *name;    /* "3.3-IV3" */
} metadata_version;

static const metadata_version metadata_versions[] = {
    {-1, "0.8.0", "0.8.0"}, {-1, "0.8.1", "0.8.1"}, {-1, "0.8.2", "0.8.2"}, {-1, "0.9.0", "0.9.0"},
    {-1, "0.10.0", "0.10.0-IV0"}, {-1, "0.10.0", "0.10.0-IV1"}, {-1, "0.10.1", "0.10.1-IV0"},
    {-1, "0.10.1", "0.10.1-IV1"}, {-1, "0.10.1", "0.10.1-IV2"}, {-1, "0.10.2", "0.10.2-IV0"},
    {-1, "0.11.0", "0.11.0-IV0"}, {-1, "0.11.0", "0.11.0-IV1"}, {-1, "0.11.0", "0.11.0-IV2"},
    {-1, "1.0", "1.0-IV0"}, {-1, "1.1", "1.1-IV0"}, {-1, "2.0", "2.0-IV0"}, {-1, "2.0", "2.0-IV1"},
    {-1, "2.1", "2.1-IV0"}, {-1, "2.1", "2.1-IV1"}, {-1, "2.1", "2.1-IV2"}, {-1, "2.2", "2.2-IV0"},
    {-1, "2.2", "2.2-IV1"}, {-1, "2.3", "2.3-IV0"}, {-1, "2.3", "2.3-IV1"}, {-1, "2.4", "2.4-IV0"},
    {-1, "2.4", "2.4-IV1"}, {-1, "2.5", "2.5-IV0"}, {-1, "2.6", "2.6-IV0"}, {-1, "2.7", "2.7-IV0"},
    {-1, "2.7", "2.7-IV1"}, {-1, "2.7", "2.7-IV2"}, {-1, "2.8", "2.8-IV0"}, {-1, "2.8", "2.8-IV1"},
    {-1, "3.0", "3.0-IV0"}, {1, "3.0", "3.0-IV1"}, {2, "3.1", "3.1-IV0"}, {3, "3.2", "3.2-IV0"},
    {4, "3.3", "3.3-IV0"}, {5, "3.3", "3.3-IV1"}, {6, "3.3", "3.3-IV2"}, {7, "3.3", "3.3-IV3"},
    {8, "3.4", "3.4-IV0"}, {9, "3.5", "3.5-IV0"}, {10, "3.5", "3.5-IV1"}, {11, "3.5", "3.5-IV2"},
    {12, "3.6", "3.6-IV0"}, {13, "3.6", "3.6-IV1"}, {14, "3.6", "3.6-IV2"},
};
#define METADATA_VERSION_COUNT (sizeof metadata_versions / sizeof metadata_versions[0])
#define MINIMUM_BOOTSTRAP_INDEX 37 /* 3.3-IV0 */
#define METADATA_FEATURE "metadata.version"

/* MetadataVersion.fromVersionString: "3.3-IV3", or a release ("3.3" = its
 * newest IV); anything after the release's 2 (or, for "0.x", 3) parts is
 * ignored. NULL if unknown. */
static const metadata_version *metadata_version_parse(const char *s) {
    int parts = strncmp(s, "0.", 2) == 0 ? 3 : 2;
    size_t keylen = strlen(s);
    int seen = 0;
    int segments = 1;
    for (const char *p = s; *p; p++) segments += *p == '.';
    if (segments > parts) {
        for (size_t i = 0; s[i]; i++)
            if (s[i] == '.' && ++seen == parts) {
                keylen = i;
                break;
            }
    }
    const metadata_version *found = NULL;
    for (size_t i = 0; i < METADATA_VERSION_COUNT; i++) {
        const metadata_version *m = &metadata_versions[i];
        if (strlen(m->name) == keylen && strncmp(m->name, s, keylen) == 0) return m;
        if (strlen(m->release) == keylen && strncmp(m->release, s, keylen) == 0) found = m; /* newest wins */
    }
    return found;
}

/* FeatureCommand.levelToString. */
static void level_to_string(const char *feature, int16_t level, char *out, size_t len) {
    if (strcmp(feature, METADATA_FEATURE) == 0) {
        for (size_t i = 0; i < METADATA_VERSION_COUNT; i++)
            if (metadata_versions[i].level == level) {
                snprintf(out, len, "%s", metadata_versions[i].name);
                return;
            }
        snprintf(out, len, "UNKNOWN %d", level);
        return;
    }
    snprintf(out, len, "%d", level);
}

typedef struct feature_ref {
    const char *name;
    const ApiVersionsResponse_SupportedFeatureKey *k;
} feature_ref;

static int cmp_feature(const void *x, const void *y) {
    return strcmp(((const feature_ref *)x)->name, ((const feature_ref *)y)->name);
}

static int handle_describe(kclient *c, karena *a) {
    ApiVersionsRequest req;
    ApiVersionsRequest_init(&req);
    req.client_software_name = KSTR_LIT("apache-kafka-java");
    req.client_software_version = KSTR_LIT("3.6.1");
    int16_t v = kclient_pick_version(c, KAPI_API_VERSIONS);
    ApiVersionsResponse resp;
    if (v < 0 || kclient_request(c, KAPI_API_VERSIONS, v, &req, &resp, a) != 0) {
        fprintf(stderr, "org.apache.kafka.common.errors.TimeoutException: %s\n", c->err);
        return 1;
    }
    if (resp.error_code != 0) {
        fprintf(stderr, "%s: %s\n", java_error_class(resp.error_code), kerr_message(resp.error_code));
        return 1;
    }
    int32_t n = resp.supported_features_count > 0 ? resp.supported_features_count : 0;
    feature_ref *refs = karena_calloc(a, (size_t)n + 1, sizeof *refs);
    for (int32_t i = 0; i < n; i++) {
        refs[i].name = kstr_dup(resp.supported_features[i].name, a);
        refs[i].k = &resp.supported_features[i];
    }
    qsort(refs, (size_t)n, sizeof *refs, cmp_feature);
    for (int32_t i = 0; i < n; i++) {
        int16_t finalized = 0;
        for (int32_t f = 0; f < resp.finalized_features_count; f++)
            if (kstr_eq_c(resp.finalized_features[f].name, refs[i].name))
                finalized = resp.finalized_features[f].max_version_level;
        char lo[32], hi[32], fin[32], epoch[32];
        level_to_string(refs[i].name, refs[i].k->min_version, lo, sizeof lo);
        level_to_string(refs[i].name, refs[i].k->max_version, hi, sizeof hi);
        level_to_string(refs[i].name, finalized, fin, sizeof fin);
        if (resp.finalized_features_epoch >= 0) snprintf(epoch, sizeof epoch, "%lld", (long long)resp.finalized_features_epoch);
        else snprintf(epoch, sizeof epoch, "-");
        printf("Feature: %s\tSupportedMinVersion: %s\tSupportedMaxVersion: %s\tFinalizedVersionLevel: %s\tEpoch: %s\n",
               refs[i].name, lo, hi, fin, epoch);
    }
    return 0;
}

/* FeatureUpdate.UpgradeType codes. */
#define UPGRADE_TYPE_UPGRADE 1
#define UPGRADE_TYPE_SAFE_DOWNGRADE 2
#define UPGRADE_TYPE_UNSAFE_DOWNGRADE 3

typedef struct feature_update {
    const char *name;
    int16_t level;
    const char *error; /* exception message when it failed */
    int answered;
} feature_update;

static int cmp_update(const void *x, const void *y) {
    return strcmp(((const feature_update *)x)->name, ((const feature_update *)y)->name);
}

/* Adds an update, refusing what Kafka's FeatureUpdate constructor refuses.
 * Returns 0, or 1 after printing the error. */
static int add_update(feature_update *u, size_t *n, const char *name, long level, int type) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(u[i].name, name) == 0) {
            fprintf(stderr, "Feature %s was specified more than once.\n", name);
            return 1;
        }
    if (level == 0 && type == UPGRADE_TYPE_UPGRADE) {
        fprintf(stderr, "The downgradeType flag should be set to SAFE or UNSAFE when the provided "
                        "maxVersionLevel:0 is < 1.\n");
        return 1;
    }
    if (level < 0) {
        fprintf(stderr, "Cannot specify a negative version level.\n");
        return 1;
    }
    u[*n].name = name;
    u[*n].level = (int16_t)level;
    (*n)++;
    return 0;
}

/* Short.parseShort acceptance. */
static int parse_short(const char *s, long *out) {
    const char *d = s + (*s == '+' || *s == '-');
    if (!*d) return -1;
    for (const char *p = d; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    long v = strtol(s, NULL, 10);
    if (strlen(d) > 6 || v < -32768 || v > 32767) return -1;
    *out = v;
    return 0;
}

static char *trim_copy(const char *s, size_t len, karena *a) {
    while (len > 0 && (unsigned char)*s <= ' ') s++, len--;
    while (len > 0 && (unsigned char)s[len - 1] <= ' ') len--;
    return karena_strndup(a, s, len);
}

/* Sends the updates and records each feature's outcome. */
static void send_updates(kclient *c, feature_update *u, size_t n, int type, int dry_run, karena *a) {
    int16_t v = kclient_pick_version(c, KAPI_UPDATE_FEATURES);
    const char *all_error = NULL;
    UpdateFeaturesResponse resp;
    if (v < 0) {
        all_error = "The broker does not support UPDATE_FEATURES";
    } else if (dry_run && v < 1) {
        all_error = "validateOnly is not supported in version 0 of UpdateFeaturesRequest";
    } else {
        UpdateFeaturesRequest req;
        UpdateFeaturesRequest_init(&req);
        req.timeout_ms = c->request_timeout_ms;
        req.validate_only = dry_run;
        req.feature_updates = karena_calloc(a, n, sizeof *req.feature_updates);
        req.feature_updates_count = (int32_t)n;
        for (size_t i = 0; i < n; i++) {
            UpdateFeaturesRequest_FeatureUpdateKey *k = &req.feature_updates[i];
            UpdateFeaturesRequest_FeatureUpdateKey_init(k);
            k->feature = kstr_from(u[i].name);
            k->max_version_level = u[i].level;
            k->upgrade_type = (int8_t)type;
            k->allow_downgrade = type != UPGRADE_TYPE_UPGRADE;
        }
        if (kclient_request(c, KAPI_UPDATE_FEATURES, v, &req, &resp, a) != 0) all_error = c->err;
        else if (resp.error_code != 0) all_error = admin_error_text(resp.error_code, resp.error_message, a);
    }
    for (size_t i = 0; i < n; i++) {
        if (all_error) {
            u[i].error = all_error;
            continue;
        }
        for (int32_t k = 0; k < resp.results_count; k++) {
            if (!kstr_eq_c(resp.results[k].feature, u[i].name)) continue;
            u[i].answered = 1;
            if (resp.results[k].error_code != 0)
                u[i].error = admin_error_text(resp.results[k].error_code, resp.results[k].error_message, a);
        }
        if (!u[i].answered)
            u[i].error = karena_sprintf(a, "The controller response did not contain a result for feature %s", u[i].name);
    }
}

static int handle_update(kclient *c, const argp_result *r, const char *bootstrap, karena *a) {
    const char *op = r->command->name;
    int is_disable = strcmp(op, "disable") == 0, is_upgrade = strcmp(op, "upgrade") == 0;
    int type = is_upgrade ? UPGRADE_TYPE_UPGRADE
               : argp_has(r, "unsafe") ? UPGRADE_TYPE_UNSAFE_DOWNGRADE : UPGRADE_TYPE_SAFE_DOWNGRADE;
    int dry_run = argp_has(r, "dry-run");
    size_t nfeat = argp_count(r, "feature");
    feature_update *u = karena_calloc(a, nfeat + 2, sizeof *u);
    size_t n = 0;
    const char *metadata = is_disable ? NULL : argp_get(r, "metadata");
    if (metadata) {
        const metadata_version *mv = metadata_version_parse(metadata);
        if (!mv) {
            fprintf(stderr, "Unsupported metadata version %s. Supported metadata versions are ", metadata);
            for (size_t i = MINIMUM_BOOTSTRAP_INDEX; i < METADATA_VERSION_COUNT; i++)
                fprintf(stderr, "%s%s", i > MINIMUM_BOOTSTRAP_INDEX ? ", " : "", metadata_versions[i].name);
            fprintf(stderr, "\n");
            return 1;
        }
        if (add_update(u, &n, METADATA_FEATURE, mv->level, type)) return 1;
    }
    for (size_t i = 0; i < nfeat; i++) {
        const char *f = argp_get_at(r, "feature", i);
        if (is_disable) {
            if (add_update(u, &n, f, 0, type)) return 1;
            continue;
        }
        const char *eq = strchr(f, '=');
        if (!eq) {
            fprintf(stderr, "Can't parse feature=level string %s: equals sign not found.\n", f);
            return 1;
        }
        char *name = trim_copy(f, (size_t)(eq - f), a);
        char *level_text = trim_copy(eq + 1, strlen(eq + 1), a);
        long level;
        if (parse_short(level_text, &level) != 0) {
            fprintf(stderr, "Can't parse feature=level string %s: unable to parse %s as a short.\n", f, level_text);
            return 1;
        }
        if (add_update(u, &n, name, level, type)) return 1;
    }
    if (n == 0) {
        fprintf(stderr, "You must specify at least one feature to %s\n", op);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = u[i].name;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (!*p) {
            fprintf(stderr, "Provided feature can not be empty.\n");
            return 1;
        }
    }
    if (kclient_connect(c, bootstrap) != 0) {
        for (size_t i = 0; i < n; i++) u[i].error = "Timed out waiting for a node assignment. Call: updateFeatures";
    } else {
        send_updates(c, u, n, type, dry_run, a);
    }
    qsort(u, n, sizeof *u, cmp_update);
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        if (u[i].error) {
            failures++;
            if (is_disable) printf("%s disable %s. %s\n", dry_run ? "Can not" : "Could not", u[i].name, u[i].error);
            else printf("%s %s %s to %d. %s\n", dry_run ? "Can not" : "Could not", op, u[i].name, u[i].level, u[i].error);
        } else if (is_disable) {
            printf("%s%sdisabled.\n", u[i].name, dry_run ? " can be " : " was ");
        } else {
            printf("%s%s%sd to %d.\n", u[i].name, dry_run ? " can be " : " was ", op, u[i].level);
        }
    }
    fflush(stdout);
    if (failures) {
        fprintf(stderr, "%d out of %zu operation(s) failed.\n", failures, n);
        return 1;
    }
    return 0;
}

int tool_features(int argc, char **argv) {
    argp_result r;
    int rc;
    if (argp_parse(&features_parser, argc, argv, &r, &rc)) {
        argp_free(&r);
        return rc;
    }
    kclient c;
    kclient_init(&c, "adminclient-1");
    karena a;
    karena_init(&a, 0);
    client_props props = {0};
    const char *config = argp_get(&r, "command-config");
    const char *bootstrap = argp_get(&r, "bootstrap-server");
    if (config) {
        char err[600];
        if (client_props_load_file(&props, config, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", config); /* NoSuchFileException's message is the path */
            rc = 1;
            goto out;
        }
        admin_apply_command_config(&c, config);
    }
    if (strcmp(r.command->name, "describe") == 0) {
        if (kclient_connect(&c, bootstrap) != 0) {
            fprintf(stderr, "org.apache.kafka.common.errors.TimeoutException: "
                            "Timed out waiting for a node assignment. Call: describeFeatures\n");
            rc = 1;
            goto out;
        }
        rc = handle_describe(&c, &a);
    } else {
        rc = handle_update(&c, &r, bootstrap, &a);
    }
out:
    client_props_free(&props);
    kclient_close(&c);
    karena_free(&a);
    argp_free(&r);
    return rc;
}
