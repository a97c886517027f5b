/* api_versions.c - kafka-broker-api-versions: which API versions each broker offers.
 *
 * Bootstraps, reads the broker list from Metadata, then asks every broker for
 * its ApiVersions and prints them as Kafka's NodeApiVersions.toString(true):
 * one line per API in key order, with the newest version both sides can use,
 * and "UNSUPPORTED" for broker-facing APIs (Kafka's ApiKeys.clientApis) the
 * broker does not list.
 */
#include <stdio.h>
#include <string.h>

#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/kclient.h"
#include "tools/opts.h"
#include "tools/tools.h"

static const opt_spec api_versions_specs[] = {
    {"bootstrap-server", OPT_ARG, "String: server(s) to use for bootstrapping",
     "REQUIRED: The broker(s) to connect to, as host:port[,host:port].", NULL, 0},
    {"command-config", OPT_ARG, "String: command config property file",
     "A properties file with settings for the admin client.", NULL, 0},
};

/* Writes one broker's API table (Kafka's layout, from "(" to ")") to f. */
static void print_node_apis(FILE *f, const kclient *c) {
    const char *sep = "";
    fputs("(\n\t", f);
    for (int key = 0; key < KCLIENT_API_COUNT; key++) {
        const kclient_api *api = kclient_api_info((int16_t)key);
        const kclient_broker_api *b = &c->apis[key];
        if (!b->supported && !api->client_visible) continue;
        fprintf(f, "%s%s(%d): ", sep, api->name, key);
        sep = ",\n\t";
        if (!b->supported) {
            fputs("UNSUPPORTED", f);
            continue;
        }
        if (b->min_version == b->max_version) fprintf(f, "%d", b->min_version);
        else fprintf(f, "%d to %d", b->min_version, b->max_version);
        if (api->max_version < b->min_version) fputs(" [unusable: node too new]", f);
        else if (b->max_version < api->min_version) fputs(" [unusable: node too old]", f);
        else fprintf(f, " [usable: %d]", b->max_version < api->max_version ? b->max_version : api->max_version);
    }
    /* Keys newer than this client knows (every key below is known), in key order. */
    int16_t last = -1;
    for (int printed = 0; printed < c->n_unknown; printed++) {
        int best = -1;
        for (int i = 0; i < c->n_unknown; i++)
            if (c->unknown_keys[i][0] > last && (best < 0 || c->unknown_keys[i][0] < c->unknown_keys[best][0]))
                best = i;
        if (best < 0) break;
        last = c->unknown_keys[best][0];
        fprintf(f, "%sUNKNOWN(%d): ", sep, last);
        sep = ",\n\t";
        if (c->unknown_keys[best][1] == c->unknown_keys[best][2]) fprintf(f, "%d", c->unknown_keys[best][1]);
        else fprintf(f, "%d to %d", c->unknown_keys[best][1], c->unknown_keys[best][2]);
    }
    fputs("\n)", f);
}

int tool_broker_api_versions(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, api_versions_specs, OPTS_COUNT(api_versions_specs), argc, argv) != 0) {
        fprintf(stderr, "Exception in thread \"main\" joptsimple.OptionException: %s\n", o.err);
        opts_free(&o);
        return 1;
    }
    if (opts_maybe_help_or_version(&o, "This tool helps to retrieve broker version information.", &rc) ||
        opts_require(&o, "bootstrap-server")) {
        opts_free(&o);
        return rc ? rc : 1;
    }
    kclient c;
    kclient_init(&c, "broker-api-versions");
    if (opts_has(&o, "command-config") && admin_apply_command_config(&c, opts_get(&o, "command-config", "")) != 0) {
        opts_free(&o);
        return 1;
    }
    const char *bootstrap = opts_get(&o, "bootstrap-server", "");
    karena a;
    karena_init(&a, 0);
    MetadataResponse md;
    if (kclient_connect(&c, bootstrap) != 0 || kclient_metadata(&c, NULL, 0, &md, NULL, &a) != 0) {
        fprintf(stderr, "Exception in thread \"main\" java.lang.RuntimeException: "
                        "Request METADATA failed on brokers List(%s (id: -1 rack: null)): %s\n",
                bootstrap, c.err);
        rc = 1;
        goto out;
    }
    kclient_close(&c);
    for (int32_t i = 0; i < md.brokers_count; i++) {
        const MetadataResponse_MetadataResponseBroker *b = &md.brokers[i];
        char *host = kstr_dup(b->host, &a);
        char rack[256] = "null";
        if (b->rack.len >= 0) snprintf(rack, sizeof rack, "%.*s", (int)b->rack.len, b->rack.p);
        printf("%s:%d (id: %d rack: %s) -> ", host, b->port, b->node_id, rack);
        if (kclient_connect_to(&c, host, b->port) != 0) {
            printf("ERROR: org.apache.kafka.common.errors.DisconnectException: %s\n", c.err);
            rc = 1;
            continue;
        }
        print_node_apis(stdout, &c);
        printf("\n");
        kclient_close(&c);
    }
out:
    kclient_close(&c);
    karena_free(&a);
    opts_free(&o);
    return rc;
}
