/* client_props.h - Java client properties for the librdkafka-based tools.
 *
 * Kafka's tools take client settings as Java property names, from a
 * properties file (--producer.config) and from key=value arguments
 * (--producer-property). This module keeps such a set in order (a later
 * put of a key replaces the earlier value, as java.util.Properties does),
 * reads Java .properties files, and applies a set to a librdkafka
 * configuration, translating names and values where librdkafka differs
 * from the Java client (buffer.memory, auto.offset.reset=none, assignor
 * class names, ...). Java-only settings with no librdkafka meaning are
 * dropped silently; names neither client knows draw the Java client's
 * "supplied but isn't a known config" warning.
 *
 * It also holds the log4j-style stderr logger the tools share, so that
 * warnings look like the Java tools' ("[date] WARN message (logger)").
 */
#ifndef SAMSA_TOOLS_CLIENT_PROPS_H
#define SAMSA_TOOLS_CLIENT_PROPS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

typedef struct client_props {
    char **keys; /* owned */
    char **vals; /* owned */
    size_t n, cap;
} client_props;

/* Sets key to value (copies both). Returns 0, or -1 on no memory. */
int client_props_put(client_props *p, const char *key, const char *value);
/* The value of key, or NULL. */
const char *client_props_get(const client_props *p, const char *key);
int client_props_has(const client_props *p, const char *key);
void client_props_remove(client_props *p, const char *key);
void client_props_free(client_props *p);

/* Adds a "k=v" argument the way Kafka's parseKeyValueArgs does (text
 * after the first '='; a missing value is ""). */
int client_props_put_kv(client_props *p, const char *arg);

/* Reads a Java .properties file (comments starting '#' or '!', "k=v", "k:v", "k v",
 * backslash continuations and escapes) into p. Returns 0, or -1 with a
 * Java-style message in err ("java.nio.file.NoSuchFileException: f"). */
int client_props_load_file(client_props *p, const char *path, char *err, size_t errlen);

typedef enum { CLIENT_PRODUCER, CLIENT_CONSUMER, CLIENT_ADMIN } client_kind;

/* Applies every property to conf, translating Java names/values for
 * librdkafka. `java_config_class` names the Java config class for the
 * unknown-key warning (e.g. "org.apache.kafka.clients.producer.ProducerConfig").
 * Returns 0, or -1 with a message in err for a value librdkafka rejects. */
int client_props_apply(const client_props *p, rd_kafka_conf_t *conf, client_kind kind,
                       const char *java_config_class, char *err, size_t errlen);

/* Translates one Java property into its librdkafka form. Returns 1 and
 * sets rk_key and rk_val (static or in `buf`) when it maps, 0 when the Java
 * name is known but has no librdkafka equivalent (to be ignored), -1 when
 * the name is not a Java one (pass it through unchanged). Exposed for tests. */
int client_props_translate(const char *key, const char *val, client_kind kind,
                           const char **rk_key, const char **rk_val, char *buf, size_t buflen);

/* log4j "[yyyy-MM-dd HH:mm:ss,SSS] LEVEL message (logger)" line on stderr,
 * the layout of Kafka's tools-log4j.properties. */
void tool_log(const char *level, const char *logger, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* librdkafka log callback: warnings and errors become tool_log lines,
 * chatter below warning level is dropped (the Java tools log at WARN). */
void client_rdk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Sets the settings every tool's librdkafka client shares (log callback,
 * quiet connection-close logging). */
void client_conf_defaults(rd_kafka_conf_t *conf);

/* The Java exception class a Kafka client would raise for err, for
 * messages shaped like the Java tools' ("...TimeoutException: text"). */
const char *client_java_exception(rd_kafka_resp_err_t err);

/* Java's consumer asks for its subscribed topics with allowAutoTopicCreation
 * (allow.auto.create.topics, true by default; client_props_apply sets it so
 * for consumers) and logs every topic error of the answer as NetworkClient
 * does: "[Consumer clientId=C, groupId=G] Error while fetching metadata with
 * correlation id N : {topic=ERROR}". librdkafka 2.0.2's group consumer never
 * asks the broker to create a subscribed topic, but a topic handle's own
 * look-up does; so the tools hold a handle (rkt) for a subscribed topic and
 * look it up with this until it exists. N counts this process's look-ups
 * (librdkafka does not expose its correlation ids). Returns 1 when the topic
 * exists, 0 when it does not (yet), -1 when no broker answered within
 * timeout_ms. */
int client_consumer_topic_metadata(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *client_id,
                                   const char *group_id, int timeout_ms);

#endif
