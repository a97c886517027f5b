/* cluster.c - kafka-cluster: cluster id and broker unregistration.
 *
 * Follows Kafka's ClusterTool (argparse4j command line): `cluster-id`
 * prints "Cluster ID: <id>" from DescribeCluster; `unregister --id N`
 * removes a broker's registration with UnregisterBroker.
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

#define CLUSTER_COMMON_ARGS                                                                              \
    {"--bootstrap-server", "-b", ARGP_STORE, ARGP_STRING, 0,                                             \
     "Comma-separated host:port pairs of the Kafka brokers to connect to.", NULL},                      \
    {"--config", "-c", ARGP_STORE, ARGP_STRING, 0, "A properties file with settings for the admin client.", NULL}

static const argp_arg cluster_id_args[] = {CLUSTER_COMMON_ARGS};
static const argp_arg unregister_args[] = {
    CLUSTER_COMMON_ARGS,
    {"--id", "-i", ARGP_STORE, ARGP_INT, 1, "The id of the broker whose registration is removed.", NULL},
};

static const argp_command cluster_commands[] = {
    {"cluster-id", "Print the id of the cluster.", cluster_id_args, 2},
    {"unregister", "Remove the registration of a broker.", unregister_args, 3},
};

static const argp_parser cluster_parser = {
    "kafka-cluster", "This tool inspects and manages the Kafka cluster.", NULL, 0, cluster_commands, 2,
    NULL, NULL, NULL, 0,
};

static int fail_with(const char *message) {
    fprintf(stderr, "%s\njava.util.concurrent.ExecutionException: %s\n", message, message);
    return 1;
}

static int cluster_id_command(kclient *c, karena *a) {
    char msg[700];
    kstr id = KSTR_NULL;
    int16_t v = kclient_pick_version(c, KAPI_DESCRIBE_CLUSTER);
    if (v >= 0) {
        DescribeClusterRequest req;
        DescribeClusterRequest_init(&req);
        DescribeClusterResponse resp;
        if (kclient_request(c, KAPI_DESCRIBE_CLUSTER, v, &req, &resp, a) != 0) {
            snprintf(msg, sizeof msg, "org.apache.kafka.common.errors.TimeoutException: %s", c->err);
            return fail_with(msg);
        }
        if (resp.error_code != 0) {
            snprintf(msg, sizeof msg, "%s: %s", java_error_class(resp.error_code),
                     admin_error_text(resp.error_code, resp.error_message, a));
            return fail_with(msg);
        }
        id = resp.cluster_id;
    } else {
        MetadataResponse md;
        if (kclient_metadata(c, NULL, 0, &md, NULL, a) != 0) {
            snprintf(msg, sizeof msg, "org.apache.kafka.common.errors.TimeoutException: %s", c->err);
            return fail_with(msg);
        }
        id = md.cluster_id;
    }
    if (id.len >= 0) printf("Cluster ID: %.*s\n", (int)id.len, id.p);
    else printf("No cluster ID found. The Kafka version is probably too old.\n");
    return 0;
}

static int unregister_command(kclient *c, karena *a, int32_t id) {
    char msg[700];
    int16_t v = kclient_pick_version(c, KAPI_UNREGISTER_BROKER);
    if (v < 0) {
        printf("The target cluster does not support the broker unregistration API.\n");
        return 0;
    }
    UnregisterBrokerRequest req;
    UnregisterBrokerRequest_init(&req);
    req.broker_id = id;
    UnregisterBrokerResponse resp;
    if (kclient_request(c, KAPI_UNREGISTER_BROKER, v, &req, &resp, a) != 0) {
        snprintf(msg, sizeof msg, "org.apache.kafka.common.errors.TimeoutException: %s", c->err);
        return fail_with(msg);
    }
    if (resp.error_code == KERR_UNSUPPORTED_VERSION) {
        printf("The target cluster does not support the broker unregistration API.\n");
        return 0;
    }
    if (resp.error_code != 0) {
        snprintf(msg, sizeof msg, "%s: %s", java_error_class(resp.error_code),
                 admin_error_text(resp.error_code, resp.error_message, a));
        return fail_with(msg);
    }
    printf("Broker %d is no longer registered.\n", id);
    return 0;
}

int tool_cluster(int argc, char **argv) {
    argp_result r;
    int rc;
    if (argp_parse(&cluster_parser, argc, argv, &r, &rc)) {
        argp_free(&r);
        return rc;
    }
    kclient c;
    kclient_init(&c, "adminclient-1");
    karena a;
    karena_init(&a, 0);
    client_props props = {0};
    const char *config = argp_get(&r, "config");
    const char *bootstrap = argp_get(&r, "bootstrap-server");
    if (config) {
        char err[600];
        if (client_props_load_file(&props, config, err, sizeof err) != 0) {
            /* Utils.loadProps fails with NoSuchFileException, whose message is the path. */
            fprintf(stderr, "%s\n%s\n", config, err);
            rc = 1;
            goto out;
        }
        admin_apply_command_config(&c, config);
        if (!bootstrap) bootstrap = client_props_get(&props, "bootstrap.servers");
    }
    if (!bootstrap) {
        fprintf(stderr, "Please specify --bootstrap-server.\n");
        rc = 1;
        goto out;
    }
    int unregister = r.command && strcmp(r.command->name, "unregister") == 0;
    if (kclient_connect(&c, bootstrap) != 0) {
        rc = fail_with(unregister ? "org.apache.kafka.common.errors.TimeoutException: "
                                    "Timed out waiting for a node assignment. Call: unregisterBroker"
                                  : "org.apache.kafka.common.errors.TimeoutException: "
                                    "Timed out waiting for a node assignment. Call: describeCluster");
        goto out;
    }
    if (unregister) {
        /* argp already checked it is a Java int ("+5" included). */
        int32_t id = (int32_t)strtol(argp_get(&r, "id"), NULL, 10);
        rc = unregister_command(&c, &a, id);
    } else {
        rc = cluster_id_command(&c, &a);
    }
out:
    client_props_free(&props);
    kclient_close(&c);
    karena_free(&a);
    argp_free(&r);
    return rc;
}
