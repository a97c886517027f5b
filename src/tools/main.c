/* main.c - samsa-tools: dispatch to one of Kafka's command-line tools.
 *
 * Usage: samsa-tools <tool-name> [args...]   e.g. samsa-tools kafka-topics --list ...
 * The bin/kafka-*.sh wrappers call it this way, so `argv[0]` seen by the
 * tool is its Kafka name.
 */
#include <stdio.h>
#include <string.h>

#include "tools/tools.h"

static tool_main_fn lookup(const char *name) {
    /* Weak symbols: a tool not built yet is NULL here. */
    const struct { const char *name; tool_main_fn fn; } table[] = {
        {"kafka-broker-api-versions", tool_broker_api_versions},
        {"kafka-topics", tool_topics},
        {"kafka-console-producer", tool_console_producer},
        {"kafka-console-consumer", tool_console_consumer},
        {"kafka-get-offsets", tool_get_offsets},
        {"kafka-configs", tool_configs},
        {"kafka-delete-records", tool_delete_records},
        {"kafka-log-dirs", tool_log_dirs},
        {"kafka-metadata-quorum", tool_metadata_quorum},
        {"kafka-cluster", tool_cluster},
        {"kafka-features", tool_features},
        {"kafka-acls", tool_acls},
        {"kafka-dump-log", tool_dump_log},
        {"kafka-producer-perf-test", tool_producer_perf_test},
        {"kafka-consumer-perf-test", tool_consumer_perf_test},
        {"kafka-consumer-groups", tool_consumer_groups},
        {"kafka-leader-election", tool_leader_election},
        {"kafka-reassign-partitions", tool_reassign_partitions},
        {"kafka-transactions", tool_transactions},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0) return table[i].fn;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: samsa-tools <kafka-tool-name> [args...]\n");
        return 1;
    }
    const char *name = argv[1];
    size_t n = strlen(name);
    char buf[128];
    if (n > 3 && strcmp(name + n - 3, ".sh") == 0 && n - 3 < sizeof buf) {
        memcpy(buf, name, n - 3);
        buf[n - 3] = 0;
        name = buf;
    }
    tool_main_fn fn = lookup(name);
    if (!fn) {
        fprintf(stderr, "%s: this tool is not available in this build\n", name);
        return 1;
    }
    return fn(argc - 1, argv + 1);
}
