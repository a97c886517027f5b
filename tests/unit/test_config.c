/* test_config.c - broker/topic configuration: loading the shipped
 * server.properties, Kafka's validation messages, derived keys, topic
 * resolution precedence, and the DescribeConfigs view (sources, synonyms).
 *
 * Run: make build/tests/test_config && build/tests/test_config
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "broker/default_config.h"
#include "util/log.h"

#include "unit_check.h"

static int str_is(const char *got, const char *want) { return got && strcmp(got, want) == 0; }
#define CHECK_STR(got, want) \
    CHECK(str_is((got), (want)), "got '%s', want '%s'", str_is((got), (got)) ? (got) : "(null)", (want))

/* Load a properties text; returns the load result and the error text. */
static int load_text(broker_config *c, const char *text, char *err, size_t errlen) {
    props p;
    props_init(&p);
    props_load_string(&p, text);
    err[0] = 0;
    int rc = broker_config_load(c, &p, err, errlen);
    props_free(&p);
    return rc;
}

static void test_shipped_file_matches_embedded(void) {
    FILE *f = fopen("config/kraft/server.properties", "rb");
    CHECK(f != NULL, "config/kraft/server.properties not found (run from the repo root)");
    if (!f) return;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    CHECK(strcmp(buf, samsa_default_server_properties) == 0,
          "src/broker/default_config.c is stale: run scripts/embed-config.sh");
}

static void test_load_shipped(void) {
    broker_config c;
    char err[512];
    int rc = load_text(&c, samsa_default_server_properties, err, sizeof err);
    CHECK(rc == 0, "shipped config failed: %s", err);
    if (rc) return;
    CHECK(c.node_id == 1, "node_id %d", c.node_id);
    CHECK(c.role_broker && c.role_controller, "roles");
    CHECK_STR(c.controller_quorum_voters, "1@localhost:9093");
    CHECK_STR(c.controller_listener_names, "CONTROLLER");
    CHECK_STR(c.inter_broker_listener_name, "PLAINTEXT");
    CHECK(c.nlisteners == 2, "nlisteners %d", c.nlisteners);
    CHECK_STR(c.listeners[0].name, "PLAINTEXT");
    CHECK_STR(c.listeners[0].host, "");
    CHECK(c.listeners[0].port == 9092, "port %d", c.listeners[0].port);
    CHECK_STR(c.listeners[1].name, "CONTROLLER");
    CHECK(c.listeners[1].port == 9093, "port %d", c.listeners[1].port);
    CHECK(c.nadvertised == 1, "nadvertised %d", c.nadvertised);
    CHECK_STR(c.advertised[0].host, "localhost");
    CHECK(c.nlog_dirs == 1, "nlog_dirs");
    CHECK_STR(c.log_dirs[0], "/tmp/kraft-combined-logs");
    CHECK_STR(c.metadata_log_dir, "/tmp/kraft-combined-logs");
    CHECK(c.num_partitions == 1, "num_partitions");
    CHECK(c.offsets_topic_replication_factor == 1, "offsets rf");
    CHECK(c.transaction_state_log_replication_factor == 1, "txn rf");
    CHECK(c.transaction_state_log_min_isr == 1, "txn min isr");
    CHECK(c.log_retention_ms == 168LL * 3600000, "retention %lld", (long long)c.log_retention_ms);
    CHECK(c.log_roll_ms == 168LL * 3600000, "roll");
    CHECK(c.log_segment_bytes == 1073741824, "segment bytes");
    CHECK(c.log_retention_check_interval_ms == 300000, "check interval");
    CHECK(c.socket_request_max_bytes == 104857600, "request max");
    /* defaults of keys not in the file */
    CHECK(c.message_max_bytes == 1048588, "message.max.bytes %d", c.message_max_bytes);
    CHECK(c.offsets_topic_num_partitions == 50, "offsets partitions");
    CHECK(c.group_initial_rebalance_delay_ms == 3000, "rebalance delay");
    CHECK(c.auto_create_topics_enable, "auto create");
    CHECK(c.log_flush_interval_messages == INT64_MAX, "flush messages");
    CHECK(c.log_flush_interval_ms == INT64_MAX, "flush ms");
    CHECK_STR(c.log_cleanup_policy, "delete");
    CHECK_STR(c.compression_type, "producer");
    CHECK(c.transaction_max_timeout_ms == 900000, "txn max timeout");
    /* broker.id follows node.id, as Kafka does */
    CHECK_STR(props_get(&c.raw, "broker.id"), "1");
    broker_config_free(&c);
}

static void expect_error(const char *text, const char *want) {
    broker_config c;
    char err[512];
    int rc = load_text(&c, text, err, sizeof err);
    CHECK(rc == -1, "expected failure for: %s", text);
    CHECK(strcmp(err, want) == 0, "for %s\n   got  '%s'\n   want '%s'", text, err, want);
    if (rc == 0) broker_config_free(&c);
}

static void test_bad_values(void) {
    expect_error("num.partitions=abc\n", "Invalid value abc for configuration num.partitions: Not a number of type INT");
    expect_error("num.partitions=0\n", "Invalid value 0 for configuration num.partitions: Value must be at least 1");
    expect_error("log.retention.ms=1.5\n",
                 "Invalid value 1.5 for configuration log.retention.ms: Not a number of type LONG");
    expect_error("num.partitions=9999999999\n",
                 "Invalid value 9999999999 for configuration num.partitions: Not a number of type INT");
    expect_error("offsets.topic.replication.factor=40000\n",
                 "Invalid value 40000 for configuration offsets.topic.replication.factor: Not a number of type SHORT");
    expect_error("auto.create.topics.enable=yes\n",
                 "Invalid value yes for configuration auto.create.topics.enable: Expected value to be either true or false");
    expect_error("log.segment.bytes=10\n",
                 "Invalid value 10 for configuration log.segment.bytes: Value must be at least 14");
    expect_error("log.cleanup.policy=compact,zap\n",
                 "Invalid value zap for configuration log.cleanup.policy: String must be one of: compact, delete");
    expect_error("compression.type=brotli\n",
                 "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer");
    expect_error("log.cleaner.min.cleanable.ratio=1.5\n",
                 "Invalid value 1.5 for configuration log.cleaner.min.cleanable.ratio: Value must be no more than 1");
    expect_error("process.roles=broker,witch\nnode.id=1\n",
                 "Invalid value witch for configuration process.roles: String must be one of: broker, controller");
    expect_error("process.roles=broker\n",
                 "Missing configuration `node.id` which is required when `process.roles` is defined (i.e. when running in KRaft mode).");
    expect_error("listeners=PLAINTEXT:9092\n",
                 "Error creating broker listeners from 'PLAINTEXT:9092': Unable to parse PLAINTEXT:9092 to a broker endpoint");
    expect_error("inter.broker.protocol.version=9.9\n",
                 "Invalid value 9.9 for configuration inter.broker.protocol.version: Version 9.9 is not a valid version");
}

static void test_lenient_values(void) {
    broker_config c;
    char err[512];
    /* Kafka trims values, accepts any case for booleans, a leading sign,
     * ignores class names and unknown keys (with a warning) */
    int rc = load_text(&c,
                       "num.partitions= 4 \nauto.create.topics.enable=FALSE\nlog.retention.bytes=-1\n"
                       "foo.bar=1\nalter.config.policy.class.name=com.example.Policy\n"
                       "listener.name.plaintext.ssl.keystore.location=/x\n"
                       "inter.broker.protocol.version=3.6\nlog.message.format.version=3.0\n",
                       err, sizeof err);
    CHECK(rc == 0, "lenient load failed: %s", err);
    if (rc) return;
    CHECK(c.num_partitions == 4, "trimmed int");
    CHECK(!c.auto_create_topics_enable, "FALSE");
    CHECK(c.log_retention_bytes == -1, "negative");
    broker_config_free(&c);
}

static void test_derived_keys(void) {
    broker_config c;
    char err[512];
    CHECK(load_text(&c, "log.retention.hours=1\nlog.retention.minutes=2\n", err, sizeof err) == 0, "%s", err);
    CHECK(c.log_retention_ms == 120000, "minutes beat hours: %lld", (long long)c.log_retention_ms);
    broker_config_free(&c);
    CHECK(load_text(&c, "log.retention.hours=1\nlog.retention.minutes=2\nlog.retention.ms=5\n", err, sizeof err) == 0,
          "%s", err);
    CHECK(c.log_retention_ms == 5, "ms beats minutes");
    broker_config_free(&c);
    CHECK(load_text(&c, "log.retention.ms=-5\n", err, sizeof err) == 0, "%s", err);
    CHECK(c.log_retention_ms == -1, "negative retention is -1");
    broker_config_free(&c);
    CHECK(load_text(&c, "log.roll.hours=2\n", err, sizeof err) == 0, "%s", err);
    CHECK(c.log_roll_ms == 7200000, "roll hours");
    broker_config_free(&c);
    CHECK(load_text(&c, "log.roll.hours=2\nlog.roll.ms=77\n", err, sizeof err) == 0, "%s", err);
    CHECK(c.log_roll_ms == 77, "roll ms wins");
    broker_config_free(&c);
    CHECK(load_text(&c, "log.dir=/a\nlog.dirs=/b, /c\n", err, sizeof err) == 0, "%s", err);
    CHECK(c.nlog_dirs == 2, "log.dirs wins");
    CHECK_STR(c.log_dirs[0], "/b");
    CHECK_STR(c.log_dirs[1], "/c");
    broker_config_free(&c);
    CHECK(load_text(&c, "", err, sizeof err) == 0, "%s", err);
    CHECK(c.nlog_dirs == 1, "default log.dir");
    CHECK_STR(c.log_dirs[0], "/tmp/kafka-logs");
    CHECK(c.nlisteners == 1 && c.listeners[0].port == 9092, "default listener");
    CHECK(c.nadvertised == 1, "advertised defaults to listeners");
    CHECK(c.node_id == -1, "no node id");
    broker_config_free(&c);
    CHECK(load_text(&c, "listeners=PLAINTEXT://127.0.0.1:1234,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n",
                    err, sizeof err) == 0,
          "%s", err);
    CHECK(c.nadvertised == 1, "controller listener is not advertised: %d", c.nadvertised);
    CHECK_STR(c.advertised[0].host, "127.0.0.1");
    CHECK(c.advertised[0].port == 1234, "adv port");
    broker_config_free(&c);
}

static void test_topic_validate(void) {
    char err[512];
    CHECK(topic_config_validate("segment.bytes", "13", err, sizeof err) == 40, "segment.bytes 13");
    CHECK_STR(err, "Invalid value 13 for configuration segment.bytes: Value must be at least 14");
    CHECK(topic_config_validate("segment.bytes", "14", err, sizeof err) == 0, "segment.bytes 14");
    CHECK(topic_config_validate("cleanup.policy", "compact, delete", err, sizeof err) == 0, "compact, delete");
    CHECK(topic_config_validate("cleanup.policy", "", err, sizeof err) == 0, "empty list");
    CHECK(topic_config_validate("cleanup.policy", "nope", err, sizeof err) == 40, "nope");
    CHECK_STR(err, "Invalid value nope for configuration cleanup.policy: String must be one of: compact, delete");
    CHECK(topic_config_validate("retention.ms", "-2", err, sizeof err) == 40, "retention -2");
    CHECK_STR(err, "Invalid value -2 for configuration retention.ms: Value must be at least -1");
    CHECK(topic_config_validate("retention.ms", "x", err, sizeof err) == 40, "retention x");
    CHECK_STR(err, "Invalid value x for configuration retention.ms: Not a number of type LONG");
    CHECK(topic_config_validate("min.cleanable.dirty.ratio", "0.7", err, sizeof err) == 0, "ratio");
    CHECK(topic_config_validate("message.timestamp.type", "Whenever", err, sizeof err) == 40, "ts type");
    CHECK_STR(err, "Invalid value Whenever for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime");
    CHECK(topic_config_validate("foo", "1", err, sizeof err) == 40, "unknown");
    CHECK_STR(err, "Unknown topic config name: foo");
    CHECK(topic_config_validate("leader.replication.throttled.replicas", "0:1,1:1", err, sizeof err) == 0, "thr ok");
    CHECK(topic_config_validate("leader.replication.throttled.replicas", "*", err, sizeof err) == 0, "thr *");
    CHECK(topic_config_validate("leader.replication.throttled.replicas", "x", err, sizeof err) == 40, "thr x");
    CHECK(topic_config_known("message.timestamp.after.max.ms"), "after.max.ms known");
    CHECK(topic_config_known("remote.storage.enable"), "remote.storage.enable known");
    CHECK(!topic_config_known("log.segment.bytes"), "broker key is not a topic key");
    CHECK(topic_config_def_count() == 31, "31 topic configs in 3.6.1, have %d", topic_config_def_count());
}

static void test_topic_resolve(void) {
    broker_config c;
    char err[512];
    CHECK(load_text(&c, "log.segment.bytes=5000\nlog.retention.hours=2\nmessage.max.bytes=777\n"
                        "log.cleanup.policy=compact\nlog.message.timestamp.type=LogAppendTime\n",
                    err, sizeof err) == 0,
          "%s", err);
    topic_config t;
    topic_config_resolve(&t, &c, NULL, NULL, 0);
    CHECK(t.segment_bytes == 5000, "broker synonym");
    CHECK(t.retention_ms == 7200000, "hours converted: %lld", (long long)t.retention_ms);
    CHECK(t.max_message_bytes == 777, "message.max.bytes");
    CHECK(t.compact && !t.delete_, "compact");
    CHECK(t.log_append_time, "append time");
    CHECK(t.segment_ms == 604800000, "default segment.ms");
    CHECK(t.index_interval_bytes == 4096, "default index interval");

    const char *keys[] = {"segment.bytes", "retention.ms", "cleanup.policy", "min.cleanable.dirty.ratio"};
    const char *vals[] = {"123456", "1000", "compact, delete", "0.25"};
    topic_config_resolve(&t, &c, keys, vals, 4);
    CHECK(t.segment_bytes == 123456, "topic override wins");
    CHECK(t.retention_ms == 1000, "topic retention");
    CHECK_STR(t.cleanup_policy, "compact,delete");
    CHECK(t.compact && t.delete_, "both policies");
    CHECK(t.min_cleanable_dirty_ratio == 0.25, "ratio");

    /* a dynamic broker setting beats the static one; per-broker beats the
     * cluster default */
    const char *dk[] = {"log.segment.bytes"}, *dv[] = {"9000"};
    const char *ddk[] = {"log.segment.bytes", "log.retention.ms"}, *ddv[] = {"8000", "60000"};
    config_layers l = {&c.raw, dk, dv, 1, ddk, ddv, 2};
    topic_config_resolve_layers(&t, &l, NULL, NULL, 0);
    CHECK(t.segment_bytes == 9000, "dynamic per-broker");
    CHECK(t.retention_ms == 60000, "dynamic default log.retention.ms beats static hours");
    broker_config_free(&c);
}

static const config_entry *find_entry(const config_entry *e, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0) return &e[i];
    return NULL;
}

static void test_describe_topic(void) {
    broker_config c;
    char err[512];
    CHECK(load_text(&c, samsa_default_server_properties, err, sizeof err) == 0, "%s", err);
    karena a;
    karena_init(&a, 0);
    config_layers l = {0};
    l.static_cfg = &c.raw;
    static config_entry es[64];
    const char *keys[] = {"retention.ms", "cleanup.policy"};
    const char *vals[] = {"1000", "compact , delete"};
    int n = config_describe_topic(&l, keys, vals, 2, es, 64, &a);
    CHECK(n == 31, "all topic configs: %d", n);

    /* the lab's line: segment.bytes comes from server.properties */
    const config_entry *e = find_entry(es, n, "segment.bytes");
    CHECK(e && e->source == CFG_SRC_STATIC_BROKER, "segment.bytes source %d", e ? e->source : -1);
    CHECK(e && e->value && strcmp(e->value, "1073741824") == 0, "segment.bytes value");
    CHECK(e && e->nsynonyms == 2, "segment.bytes synonyms %d", e ? e->nsynonyms : -1);
    if (e && e->nsynonyms == 2) {
        CHECK_STR(e->synonyms[0].name, "log.segment.bytes");
        CHECK(e->synonyms[0].source == CFG_SRC_STATIC_BROKER, "static first");
        CHECK(e->synonyms[1].source == CFG_SRC_DEFAULT, "default second");
    }
    CHECK(e && e->type == CFG_INT, "INT");

    /* log.retention.hours is not retention.ms's primary synonym: default */
    const config_entry *r = find_entry(es, n, "retention.ms");
    CHECK(r && r->source == CFG_SRC_DYNAMIC_TOPIC, "retention.ms overridden");
    CHECK(r && r->value && strcmp(r->value, "1000") == 0, "override value");
    CHECK(r && r->nsynonyms == 1, "only the topic synonym survives: %d", r ? r->nsynonyms : -1);

    const config_entry *cp = find_entry(es, n, "cleanup.policy");
    CHECK(cp && cp->value && strcmp(cp->value, "compact,delete") == 0, "list normalized: %s", cp ? cp->value : "");
    CHECK(cp && cp->type == CFG_LIST, "LIST");

    const config_entry *fm = find_entry(es, n, "flush.ms");
    CHECK(fm && fm->source == CFG_SRC_DEFAULT && fm->nsynonyms == 0, "flush.ms default");
    CHECK(fm && fm->value && strcmp(fm->value, "9223372036854775807") == 0, "flush.ms value");

    const config_entry *rs = find_entry(es, n, "remote.storage.enable");
    CHECK(rs && rs->source == CFG_SRC_DEFAULT && rs->type == CFG_BOOLEAN, "remote.storage.enable");

    /* without overrides, retention.ms is default although hours is static */
    n = config_describe_topic(&l, NULL, NULL, 0, es, 64, &a);
    r = find_entry(es, n, "retention.ms");
    CHECK(r && r->source == CFG_SRC_DEFAULT, "retention.ms default: %d", r ? r->source : -1);
    CHECK(r && r->value && strcmp(r->value, "604800000") == 0, "retention.ms value");
    int non_default = 0;
    for (int i = 0; i < n; i++)
        if (es[i].source != CFG_SRC_DEFAULT) non_default++;
    CHECK(non_default == 1, "only segment.bytes is non-default, got %d", non_default);

    karena_free(&a);
    broker_config_free(&c);
}

static void test_describe_broker(void) {
    broker_config c;
    char err[512];
    CHECK(load_text(&c, samsa_default_server_properties, err, sizeof err) == 0, "%s", err);
    karena a;
    karena_init(&a, 0);
    const char *dk[] = {"log.retention.ms"}, *dv[] = {"5000"};
    const char *ddk[] = {"log.retention.ms", "message.max.bytes"}, *ddv[] = {"6000", "2000000"};
    config_layers l = {&c.raw, dk, dv, 1, ddk, ddv, 2};
    static config_entry es[400];
    int n = config_describe_broker(&l, 1, true, es, 400, &a);
    CHECK(n == broker_config_def_count(), "every broker key");

    const config_entry *e = find_entry(es, n, "num.partitions");
    CHECK(e && e->source == CFG_SRC_STATIC_BROKER && e->read_only, "num.partitions static read-only");
    e = find_entry(es, n, "num.network.threads");
    CHECK(e && !e->read_only, "num.network.threads dynamic");
    e = find_entry(es, n, "log.retention.ms");
    CHECK(e && e->source == CFG_SRC_DYNAMIC_BROKER, "dynamic per broker");
    CHECK(e && e->value && strcmp(e->value, "5000") == 0, "value 5000");
    /* synonyms: DYNAMIC_BROKER ms, DYNAMIC_DEFAULT ms, STATIC hours, DEFAULT hours */
    CHECK(e && e->nsynonyms == 4, "4 synonyms: %d", e ? e->nsynonyms : -1);
    e = find_entry(es, n, "message.max.bytes");
    CHECK(e && e->source == CFG_SRC_DYNAMIC_DEFAULT_BROKER, "cluster default");
    e = find_entry(es, n, "log.flush.interval.ms");
    CHECK(e && e->value == NULL && e->source == CFG_SRC_DEFAULT, "unset key has null value");
    e = find_entry(es, n, "ssl.keystore.password");
    CHECK(e && e->sensitive && e->value == NULL && e->type == CFG_PASSWORD, "password sensitive");
    e = find_entry(es, n, "log.cleaner.io.max.bytes.per.second");
    CHECK(e && e->value && strcmp(e->value, "1.7976931348623157E308") == 0, "Double.MAX_VALUE: %s",
          e && e->value ? e->value : "");
    e = find_entry(es, n, "broker.id");
    CHECK(e && e->value && strcmp(e->value, "1") == 0, "broker.id follows node.id");

    n = config_describe_broker(&l, 1, false, es, 400, &a);
    CHECK(n == 2, "cluster default lists only its own keys: %d", n);
    CHECK(n >= 1 && es[0].source == CFG_SRC_DYNAMIC_DEFAULT_BROKER && es[0].nsynonyms == 1, "default only synonyms");
    karena_free(&a);
    broker_config_free(&c);
}

static void test_dynamic_rules(void) {
    CHECK(broker_config_is_dynamic("log.retention.ms"), "log.retention.ms");
    CHECK(!broker_config_is_dynamic("log.retention.hours"), "log.retention.hours is not dynamic");
    CHECK(broker_config_is_dynamic("message.max.bytes"), "message.max.bytes");
    CHECK(!broker_config_is_dynamic("num.partitions"), "num.partitions");
    CHECK(broker_config_is_dynamic("leader.replication.throttled.rate"), "quota key");
    CHECK(broker_config_needs_listener_prefix("ssl.keystore.location"), "keystore needs prefix");
    const char *syn[4];
    CHECK(broker_config_synonyms("log.retention.hours", syn, 4) == 3, "retention group");
    CHECK(topic_config_synonyms("segment.ms", syn, 4) == 2, "segment.ms synonyms");
    CHECK(topic_config_synonyms("remote.storage.enable", syn, 4) == 0, "no synonym");
}

int main(void) {
    log_set_level(LOG_ERROR); /* unknown-key warnings are expected here */
    test_shipped_file_matches_embedded();
    test_load_shipped();
    test_bad_values();
    test_lenient_values();
    test_derived_keys();
    test_topic_validate();
    test_topic_resolve();
    test_describe_topic();
    test_describe_broker();
    test_dynamic_rules();
    printf("test_config: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
