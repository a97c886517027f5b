/* tools.h - entry points of Kafka's command-line tools.
 *
 * All tools live in one native program, build/samsa-tools, dispatched by
 * the name it is called with (bin/kafka-*.sh pass it as the first argument).
 * Each tool is a function taking argc/argv (argv[0] = tool name) and
 * returning the process exit code.
 */
#ifndef SAMSA_TOOLS_H
#define SAMSA_TOOLS_H

typedef int (*tool_main_fn)(int argc, char **argv);

/* Defined weak: a tool not built yet reports that instead of failing to link. */
#define TOOL_DECL(fn) int fn(int argc, char **argv) __attribute__((weak))
TOOL_DECL(tool_broker_api_versions);
TOOL_DECL(tool_topics);
TOOL_DECL(tool_console_producer);
TOOL_DECL(tool_console_consumer);
TOOL_DECL(tool_get_offsets);
TOOL_DECL(tool_configs);
TOOL_DECL(tool_delete_records);
TOOL_DECL(tool_log_dirs);
TOOL_DECL(tool_metadata_quorum);
TOOL_DECL(tool_cluster);
TOOL_DECL(tool_features);
TOOL_DECL(tool_acls);
TOOL_DECL(tool_dump_log);
TOOL_DECL(tool_producer_perf_test);
TOOL_DECL(tool_consumer_perf_test);
TOOL_DECL(tool_consumer_groups);
TOOL_DECL(tool_leader_election);
TOOL_DECL(tool_reassign_partitions);
TOOL_DECL(tool_transactions);
#undef TOOL_DECL

#endif
