/* admin_common.h - pieces shared by the admin tools (topics, configs, ...).
 *
 * Connecting from --bootstrap-server/--command-config, Kafka's textual forms
 * of ids (topic ids as URL-safe base64), topic include-lists (Kafka's regex
 * filters), and the error text Kafka's admin client would give for an error
 * code returned by the broker.
 */
#ifndef SAMSA_TOOLS_ADMIN_COMMON_H
#define SAMSA_TOOLS_ADMIN_COMMON_H

#include <regex.h>
#include <stdint.h>

#include "protocol/wire.h"
#include "tools/kclient.h"

/* Applies the client settings the tools honour from a --command-config
 * properties file (request.timeout.ms, default.api.timeout.ms,
 * socket.connection.setup.timeout.ms, client.id). Returns 0, or -1 with a
 * message on stderr when the file cannot be read. */
int admin_apply_command_config(kclient *c, const char *path);

/* Kafka's Uuid.toString: 22 characters of URL-safe base64, no padding.
 * out must hold 23 bytes. */
void admin_uuid_str(const kuuid *u, char out[23]);
/* Parses that form back; 0 on success. */
int admin_uuid_parse(const char *s, kuuid *u);

/* Kafka's IncludeList for --topic: a Java-style regex (commas mean '|',
 * surrounding quotes dropped) that must match the whole name. */
typedef struct include_list {
    regex_t re;
    int ok;
} include_list;
int include_list_init(include_list *l, const char *pattern);
int include_list_matches(const include_list *l, const char *topic);
void include_list_free(include_list *l);

/* Kafka's internal topics (__consumer_offsets, __transaction_state). */
int admin_topic_is_internal(const char *topic);

/* The message Kafka's admin client reports for an error in a response:
 * the broker's own error message when it sent one, else the error's
 * default message. Result in arena a. */
const char *admin_error_text(int16_t code, kstr broker_message, karena *a);

/* Reads a decimal int32 like Java's Integer.parseInt (optional sign, no
 * spaces). Returns 0 or -1. */
int admin_parse_int(const char *s, int32_t *out);



struct DescribeConfigsResponse_DescribeConfigsResult;
/* Config sources in DescribeConfigs responses (Kafka's ConfigSource ids). */
#define CONFIG_SOURCE_DYNAMIC_TOPIC 1
#define CONFIG_SOURCE_DYNAMIC_BROKER 2
#define CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER 3
#define CONFIG_SOURCE_STATIC_BROKER 4
#define CONFIG_SOURCE_DEFAULT 5
#define CONFIG_SOURCE_DYNAMIC_BROKER_LOGGER 6
/* Resource types (Kafka's ConfigResource.Type ids). */
#define CONFIG_RESOURCE_TOPIC 2
#define CONFIG_RESOURCE_BROKER 4
#define CONFIG_RESOURCE_BROKER_LOGGER 8

/* DescribeConfigs for one resource, with synonyms. *out points at the
 * result in arena a. Returns 0, or -1 (c->err set). The result's own
 * error_code is left for the caller to check. */
int admin_describe_configs(kclient *c, int8_t resource_type, const char *name,
                           struct DescribeConfigsResponse_DescribeConfigsResult **out, int16_t *version_out,
                           karena *a);

/* Connections to particular brokers, opened on demand next to the bootstrap
 * connection: Kafka's AdminClient sends each request to the node it belongs
 * to (a partition's leader, a group's coordinator, the broker of a broker
 * resource, every broker for per-broker APIs), not to the bootstrap node.
 * Connections copy the bootstrap client's id and timeouts; one to the
 * bootstrap connection's own address reuses it. */
typedef struct admin_conn {
    char host[256];
    int port;
    kclient c;
    struct admin_conn *next;
} admin_conn;

typedef struct admin_pool {
    kclient *boot;     /* the bootstrap connection (not owned) */
    admin_conn *conns; /* owned */
} admin_pool;

void admin_pool_init(admin_pool *p, kclient *boot);
/* A connected client for host:port, or NULL with the failure copied into
 * boot->err. */
kclient *admin_pool_get(admin_pool *p, const char *host, int port);
/* The same for a broker of a Metadata response (by node id); NULL with
 * boot->err set when md does not list it or it cannot be reached. */
struct MetadataResponse;
kclient *admin_pool_node(admin_pool *p, const struct MetadataResponse *md, int32_t node_id);
void admin_pool_close(admin_pool *p);

#endif
