/* config.c - broker and topic configuration with Kafka 3.6.1's names, types,
 * defaults and validators (see config.h).
 *
 * One table per resource describes every key the way Kafka's ConfigDef does:
 * type, default (as the string DescribeConfigs reports), validator, and
 * whether AlterConfigs may change it at runtime. The loader, the topic
 * resolver, the AlterConfigs validators and DescribeConfigs
 * (config_describe.c) all read these tables, so a key's rules live in one
 * place. Error messages follow Kafka's ConfigException wording because tools
 * and tests print them verbatim.
 */
#include "broker/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config_internal.h"
#include "metrics/exporter.h"
#include "util/log.h"

#define LOG_COMPONENT "kafka.server.KafkaConfig"

/* ---- tables ---- */

#define I64MAX "9223372036854775807"
#define I32MAX "2147483647"

/* name, type, default, check, lo, hi, choices, flags */
#define K(n, t, d, f) {n, t, CK_NONE, f, d, 0, 0, NULL}
#define KMIN(n, t, d, lo, f) {n, t, CK_MIN, f, d, lo, 0, NULL}
#define KRANGE(n, t, d, lo, hi, f) {n, t, CK_RANGE, f, d, lo, hi, NULL}
#define KIN(n, d, choices, f) {n, CFG_STRING, CK_IN, f, d, 0, 0, choices}
#define KLISTIN(n, d, choices, f) {n, CFG_LIST, CK_LIST_IN, f, d, 0, 0, choices}
#define KVER(n, d, f) {n, CFG_STRING, CK_VERSION, f, d, 0, 0, NULL}
#define KTHROTTLED(n) {n, CFG_LIST, CK_THROTTLED, 0, "", 0, 0, NULL}

#define DYN CF_DYNAMIC
#define LSN (CF_DYNAMIC | CF_LISTENER_ONLY)

#define COMPRESSION_CHOICES "uncompressed,zstd,lz4,snappy,gzip,producer"

static const config_def topic_defs[] = {
    /* sorted by name, as Kafka lists them */
    KLISTIN("cleanup.policy", "delete", "compact,delete", 0),
    KIN("compression.type", "producer", COMPRESSION_CHOICES, 0),
    KMIN("delete.retention.ms", CFG_LONG, "86400000", 0, 0),
    KMIN("file.delete.delay.ms", CFG_LONG, "60000", 0, 0),
    KMIN("flush.messages", CFG_LONG, I64MAX, 1, 0),
    KMIN("flush.ms", CFG_LONG, I64MAX, 0, 0),
    KTHROTTLED("follower.replication.throttled.replicas"),
    KMIN("index.interval.bytes", CFG_INT, "4096", 0, 0),
    KTHROTTLED("leader.replication.throttled.replicas"),
    KMIN("local.retention.bytes", CFG_LONG, "-2", -2, 0),
    KMIN("local.retention.ms", CFG_LONG, "-2", -2, 0),
    KMIN("max.compaction.lag.ms", CFG_LONG, I64MAX, 1, 0),
    KMIN("max.message.bytes", CFG_INT, "1048588", 0, 0),
    K("message.downconversion.enable", CFG_BOOLEAN, "true", 0),
    KVER("message.format.version", "3.0-IV1", 0),
    KMIN("message.timestamp.after.max.ms", CFG_LONG, I64MAX, 0, 0),
    KMIN("message.timestamp.before.max.ms", CFG_LONG, I64MAX, 0, 0),
    KMIN("message.timestamp.difference.max.ms", CFG_LONG, I64MAX, 0, 0),
    KIN("message.timestamp.type", "CreateTime", "CreateTime,LogAppendTime", 0),
    KRANGE("min.cleanable.dirty.ratio", CFG_DOUBLE, "0.5", 0, 1, 0),
    KMIN("min.compaction.lag.ms", CFG_LONG, "0", 0, 0),
    KMIN("min.insync.replicas", CFG_INT, "1", 1, 0),
    K("preallocate", CFG_BOOLEAN, "false", 0),
    K("remote.storage.enable", CFG_BOOLEAN, "false", 0),
    K("retention.bytes", CFG_LONG, "-1", 0),
    KMIN("retention.ms", CFG_LONG, "604800000", -1, 0),
    KMIN("segment.bytes", CFG_INT, "1073741824", 14, 0),
    KMIN("segment.index.bytes", CFG_INT, "10485760", 4, 0),
    KMIN("segment.jitter.ms", CFG_LONG, "0", 0, 0),
    KMIN("segment.ms", CFG_LONG, "604800000", 1, 0),
    K("unclean.leader.election.enable", CFG_BOOLEAN, "false", 0),
};

/* Broker keys in Kafka's definition order (KafkaConfig.configDef), without
 * the ZooKeeper-only ones. Defaults are the strings Kafka reports. */
static const config_def broker_defs[] = {
    /* general */
    K("broker.id.generation.enable", CFG_BOOLEAN, "true", 0),
    KMIN("reserved.broker.max.id", CFG_INT, "1000", 0, 0),
    K("broker.id", CFG_INT, "-1", 0),
    KMIN("message.max.bytes", CFG_INT, "1048588", 0, DYN),
    KMIN("num.network.threads", CFG_INT, "3", 1, DYN),
    KMIN("num.io.threads", CFG_INT, "8", 1, DYN),
    K("num.replica.alter.log.dirs.threads", CFG_INT, NULL, 0),
    KMIN("background.threads", CFG_INT, "10", 1, DYN),
    KMIN("queued.max.requests", CFG_INT, "500", 1, 0),
    K("queued.max.request.bytes", CFG_LONG, "-1", 0),
    K("request.timeout.ms", CFG_INT, "30000", 0),
    K("socket.connection.setup.timeout.ms", CFG_LONG, "10000", 0),
    K("socket.connection.setup.timeout.max.ms", CFG_LONG, "30000", 0),
    /* KRaft */
    KMIN("metadata.log.max.record.bytes.between.snapshots", CFG_LONG, "20971520", 1, 0),
    KMIN("metadata.log.max.snapshot.interval.ms", CFG_LONG, "3600000", 0, 0),
    KLISTIN("process.roles", "", "broker,controller", 0),
    K("node.id", CFG_INT, "-1", 0),
    K("initial.broker.registration.timeout.ms", CFG_INT, "60000", 0),
    K("broker.heartbeat.interval.ms", CFG_INT, "2000", 0),
    K("broker.session.timeout.ms", CFG_INT, "9000", 0),
    K("controller.listener.names", CFG_STRING, NULL, 0),
    K("sasl.mechanism.controller.protocol", CFG_STRING, "GSSAPI", 0),
    K("metadata.log.dir", CFG_STRING, NULL, 0),
    KMIN("metadata.log.segment.bytes", CFG_INT, "1073741824", 12, 0),
    K("metadata.log.segment.ms", CFG_LONG, "604800000", 0),
    K("metadata.max.retention.bytes", CFG_LONG, "104857600", 0),
    K("metadata.max.retention.ms", CFG_LONG, "604800000", 0),
    KMIN("metadata.max.idle.interval.ms", CFG_INT, "500", 0, 0),
    K("zookeeper.metadata.migration.enable", CFG_BOOLEAN, "false", 0),
    K("authorizer.class.name", CFG_STRING, "", 0),
    /* read by the authorizer (broker/authz.c), leniently as StandardAuthorizer does */
    K("super.users", CFG_STRING, NULL, 0),
    K("allow.everyone.if.no.acl.found", CFG_STRING, NULL, 0),
    K("early.start.listeners", CFG_STRING, NULL, 0),
    /* socket server */
    K("listeners", CFG_STRING, "PLAINTEXT://:9092", DYN),
    K("advertised.listeners", CFG_STRING, NULL, DYN),
    K("listener.security.protocol.map", CFG_STRING,
      "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", DYN),
    K("control.plane.listener.name", CFG_STRING, NULL, 0),
    K("socket.send.buffer.bytes", CFG_INT, "102400", 0),
    K("socket.receive.buffer.bytes", CFG_INT, "102400", 0),
    KMIN("socket.request.max.bytes", CFG_INT, "104857600", 1, 0),
    KMIN("socket.listen.backlog.size", CFG_INT, "50", 1, 0),
    KMIN("max.connections.per.ip", CFG_INT, I32MAX, 0, DYN),
    K("max.connections.per.ip.overrides", CFG_STRING, "", DYN),
    KMIN("max.connections", CFG_INT, I32MAX, 0, DYN),
    KMIN("max.connection.creation.rate", CFG_INT, I32MAX, 0, DYN),
    K("connections.max.idle.ms", CFG_LONG, "600000", 0),
    KMIN("connection.failed.authentication.delay.ms", CFG_INT, "100", 0, 0),
    K("broker.rack", CFG_STRING, NULL, 0),
    /* logs */
    KMIN("num.partitions", CFG_INT, "1", 1, 0),
    K("log.dir", CFG_STRING, "/tmp/kafka-logs", 0),
    K("log.dirs", CFG_STRING, NULL, 0),
    KMIN("log.segment.bytes", CFG_INT, "1073741824", 14, DYN),
    K("log.roll.ms", CFG_LONG, NULL, DYN),
    KMIN("log.roll.hours", CFG_INT, "168", 1, 0),
    K("log.roll.jitter.ms", CFG_LONG, NULL, DYN),
    KMIN("log.roll.jitter.hours", CFG_INT, "0", 0, 0),
    K("log.retention.ms", CFG_LONG, NULL, DYN),
    K("log.retention.minutes", CFG_INT, NULL, 0),
    K("log.retention.hours", CFG_INT, "168", 0),
    K("log.retention.bytes", CFG_LONG, "-1", DYN),
    KMIN("log.retention.check.interval.ms", CFG_LONG, "300000", 1, 0),
    KLISTIN("log.cleanup.policy", "delete", "compact,delete", DYN),
    KMIN("log.cleaner.threads", CFG_INT, "1", 0, DYN),
    K("log.cleaner.io.max.bytes.per.second", CFG_DOUBLE, "1.7976931348623157E308", DYN),
    K("log.cleaner.dedupe.buffer.size", CFG_LONG, "134217728", DYN),
    KMIN("log.cleaner.io.buffer.size", CFG_INT, "524288", 0, DYN),
    K("log.cleaner.io.buffer.load.factor", CFG_DOUBLE, "0.9", DYN),
    KMIN("log.cleaner.backoff.ms", CFG_LONG, "15000", 0, DYN),
    KRANGE("log.cleaner.min.cleanable.ratio", CFG_DOUBLE, "0.5", 0, 1, DYN),
    K("log.cleaner.enable", CFG_BOOLEAN, "true", 0),
    KMIN("log.cleaner.delete.retention.ms", CFG_LONG, "86400000", 0, DYN),
    KMIN("log.cleaner.min.compaction.lag.ms", CFG_LONG, "0", 0, DYN),
    KMIN("log.cleaner.max.compaction.lag.ms", CFG_LONG, I64MAX, 1, DYN),
    KMIN("log.index.size.max.bytes", CFG_INT, "10485760", 4, DYN),
    KMIN("log.index.interval.bytes", CFG_INT, "4096", 0, DYN),
    KMIN("log.flush.interval.messages", CFG_LONG, I64MAX, 1, DYN),
    KMIN("log.segment.delete.delay.ms", CFG_LONG, "60000", 0, DYN),
    K("log.flush.scheduler.interval.ms", CFG_LONG, I64MAX, 0),
    K("log.flush.interval.ms", CFG_LONG, NULL, DYN),
    KMIN("log.flush.offset.checkpoint.interval.ms", CFG_INT, "60000", 0, 0),
    KMIN("log.flush.start.offset.checkpoint.interval.ms", CFG_INT, "60000", 0, 0),
    K("log.preallocate", CFG_BOOLEAN, "false", DYN),
    KMIN("num.recovery.threads.per.data.dir", CFG_INT, "1", 1, DYN),
    K("auto.create.topics.enable", CFG_BOOLEAN, "true", 0),
    KMIN("min.insync.replicas", CFG_INT, "1", 1, DYN),
    KVER("log.message.format.version", "3.0-IV1", 0),
    KIN("log.message.timestamp.type", "CreateTime", "CreateTime,LogAppendTime", DYN),
    KMIN("log.message.timestamp.difference.max.ms", CFG_LONG, I64MAX, 0, DYN),
    KMIN("log.message.timestamp.before.max.ms", CFG_LONG, I64MAX, 0, DYN),
    KMIN("log.message.timestamp.after.max.ms", CFG_LONG, I64MAX, 0, DYN),
    K("create.topic.policy.class.name", CFG_CLASS, NULL, 0),
    K("alter.config.policy.class.name", CFG_CLASS, NULL, 0),
    K("log.message.downconversion.enable", CFG_BOOLEAN, "true", DYN),
    /* replication */
    K("controller.socket.timeout.ms", CFG_INT, "30000", 0),
    K("default.replication.factor", CFG_INT, "1", 0),
    K("replica.lag.time.max.ms", CFG_LONG, "30000", 0),
    K("replica.socket.timeout.ms", CFG_INT, "30000", 0),
    K("replica.socket.receive.buffer.bytes", CFG_INT, "65536", 0),
    KMIN("replica.fetch.max.bytes", CFG_INT, "1048576", 0, 0),
    K("replica.fetch.wait.max.ms", CFG_INT, "500", 0),
    KMIN("replica.fetch.backoff.ms", CFG_INT, "1000", 0, 0),
    K("replica.fetch.min.bytes", CFG_INT, "1", 0),
    KMIN("replica.fetch.response.max.bytes", CFG_INT, "10485760", 0, 0),
    K("num.replica.fetchers", CFG_INT, "1", DYN),
    K("replica.high.watermark.checkpoint.interval.ms", CFG_LONG, "5000", 0),
    K("fetch.purgatory.purge.interval.requests", CFG_INT, "1000", 0),
    K("producer.purgatory.purge.interval.requests", CFG_INT, "1000", 0),
    K("delete.records.purgatory.purge.interval.requests", CFG_INT, "1", 0),
    K("auto.leader.rebalance.enable", CFG_BOOLEAN, "true", 0),
    K("leader.imbalance.per.broker.percentage", CFG_INT, "10", 0),
    KMIN("leader.imbalance.check.interval.seconds", CFG_LONG, "300", 1, 0),
    K("unclean.leader.election.enable", CFG_BOOLEAN, "false", DYN),
    KIN("security.inter.broker.protocol", "PLAINTEXT", "PLAINTEXT,SSL,SASL_PLAINTEXT,SASL_SSL", 0),
    KVER("inter.broker.protocol.version", "3.6-IV2", 0),
    K("inter.broker.listener.name", CFG_STRING, NULL, 0),
    K("replica.selector.class", CFG_STRING, NULL, 0),
    /* controlled shutdown */
    K("controlled.shutdown.max.retries", CFG_INT, "3", 0),
    K("controlled.shutdown.retry.backoff.ms", CFG_LONG, "5000", 0),
    K("controlled.shutdown.enable", CFG_BOOLEAN, "true", 0),
    /* group coordinator */
    K("group.min.session.timeout.ms", CFG_INT, "6000", 0),
    K("group.max.session.timeout.ms", CFG_INT, "1800000", 0),
    K("group.initial.rebalance.delay.ms", CFG_INT, "3000", 0),
    KMIN("group.max.size", CFG_INT, I32MAX, 1, 0),
    /* offsets */
    K("offset.metadata.max.bytes", CFG_INT, "4096", 0),
    KMIN("offsets.load.buffer.size", CFG_INT, "5242880", 1, 0),
    KMIN("offsets.topic.replication.factor", CFG_SHORT, "3", 1, 0),
    KMIN("offsets.topic.num.partitions", CFG_INT, "50", 1, 0),
    KMIN("offsets.topic.segment.bytes", CFG_INT, "104857600", 1, 0),
    K("offsets.topic.compression.codec", CFG_INT, "0", 0),
    KMIN("offsets.retention.minutes", CFG_INT, "10080", 1, 0),
    KMIN("offsets.retention.check.interval.ms", CFG_LONG, "600000", 1, 0),
    KMIN("offsets.commit.timeout.ms", CFG_INT, "5000", 1, 0),
    K("offsets.commit.required.acks", CFG_SHORT, "-1", 0),
    K("delete.topic.enable", CFG_BOOLEAN, "true", 0),
    KIN("compression.type", "producer", COMPRESSION_CHOICES, DYN),
    /* transactions */
    KMIN("transactional.id.expiration.ms", CFG_INT, "604800000", 1, 0),
    KMIN("transaction.max.timeout.ms", CFG_INT, "900000", 1, 0),
    KMIN("transaction.state.log.min.isr", CFG_INT, "2", 1, 0),
    KMIN("transaction.state.log.load.buffer.size", CFG_INT, "5242880", 1, 0),
    KMIN("transaction.state.log.replication.factor", CFG_SHORT, "3", 1, 0),
    KMIN("transaction.state.log.num.partitions", CFG_INT, "50", 1, 0),
    KMIN("transaction.state.log.segment.bytes", CFG_INT, "104857600", 1, 0),
    KMIN("transaction.abort.timed.out.transaction.cleanup.interval.ms", CFG_INT, "10000", 1, 0),
    KMIN("transaction.remove.expired.transaction.cleanup.interval.ms", CFG_INT, "3600000", 1, 0),
    K("transaction.partition.verification.enable", CFG_BOOLEAN, "true", DYN),
    KMIN("producer.id.expiration.ms", CFG_INT, "86400000", 1, DYN),
    /* fetch */
    KMIN("max.incremental.fetch.session.cache.slots", CFG_INT, "1000", 0, 0),
    KMIN("fetch.max.bytes", CFG_INT, "57671680", 1024, 0),
    /* metrics */
    KMIN("metrics.num.samples", CFG_INT, "2", 1, 0),
    KMIN("metrics.sample.window.ms", CFG_LONG, "30000", 1, 0),
    K("metric.reporters", CFG_LIST, "", DYN),
    K("metrics.recording.level", CFG_STRING, "INFO", 0),
    K("auto.include.jmx.reporter", CFG_BOOLEAN, "true", 0),
    K("kafka.metrics.reporters", CFG_LIST, "", 0),
    KMIN("kafka.metrics.polling.interval.secs", CFG_INT, "10", 1, 0),
    /* quotas */
    KMIN("quota.window.num", CFG_INT, "11", 1, 0),
    KMIN("replication.quota.window.num", CFG_INT, "11", 1, 0),
    KMIN("alter.log.dirs.replication.quota.window.num", CFG_INT, "11", 1, 0),
    KMIN("controller.quota.window.num", CFG_INT, "11", 1, 0),
    KMIN("quota.window.size.seconds", CFG_INT, "1", 1, 0),
    KMIN("replication.quota.window.size.seconds", CFG_INT, "1", 1, 0),
    KMIN("alter.log.dirs.replication.quota.window.size.seconds", CFG_INT, "1", 1, 0),
    KMIN("controller.quota.window.size.seconds", CFG_INT, "1", 1, 0),
    K("client.quota.callback.class", CFG_CLASS, NULL, 0),
    /* security */
    K("connections.max.reauth.ms", CFG_LONG, "0", 0),
    K("sasl.server.max.receive.size", CFG_INT, "524288", 0),
    K("security.providers", CFG_STRING, NULL, 0),
    K("principal.builder.class", CFG_CLASS,
      "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder", DYN),
    K("ssl.protocol", CFG_STRING, "TLSv1.3", DYN),
    K("ssl.provider", CFG_STRING, NULL, DYN),
    K("ssl.enabled.protocols", CFG_LIST, "TLSv1.2,TLSv1.3", DYN),
    K("ssl.keystore.type", CFG_STRING, "JKS", LSN),
    K("ssl.keystore.location", CFG_STRING, NULL, LSN),
    K("ssl.keystore.password", CFG_PASSWORD, NULL, LSN),
    K("ssl.key.password", CFG_PASSWORD, NULL, LSN),
    K("ssl.keystore.key", CFG_PASSWORD, NULL, LSN),
    K("ssl.keystore.certificate.chain", CFG_PASSWORD, NULL, LSN),
    K("ssl.truststore.type", CFG_STRING, "JKS", LSN),
    K("ssl.truststore.location", CFG_STRING, NULL, LSN),
    K("ssl.truststore.password", CFG_PASSWORD, NULL, LSN),
    K("ssl.truststore.certificates", CFG_PASSWORD, NULL, LSN),
    K("ssl.keymanager.algorithm", CFG_STRING, "SunX509", DYN),
    K("ssl.trustmanager.algorithm", CFG_STRING, "PKIX", DYN),
    K("ssl.endpoint.identification.algorithm", CFG_STRING, "https", DYN),
    K("ssl.secure.random.implementation", CFG_STRING, NULL, DYN),
    KIN("ssl.client.auth", "none", "required,requested,none", DYN),
    K("ssl.cipher.suites", CFG_LIST, "", DYN),
    K("ssl.principal.mapping.rules", CFG_STRING, "DEFAULT", 0),
    K("ssl.engine.factory.class", CFG_CLASS, NULL, DYN),
    K("sasl.mechanism.inter.broker.protocol", CFG_STRING, "GSSAPI", DYN),
    K("sasl.jaas.config", CFG_PASSWORD, NULL, DYN),
    K("sasl.enabled.mechanisms", CFG_LIST, "GSSAPI", DYN),
    K("sasl.server.callback.handler.class", CFG_CLASS, NULL, 0),
    K("sasl.client.callback.handler.class", CFG_CLASS, NULL, 0),
    K("sasl.login.class", CFG_CLASS, NULL, 0),
    K("sasl.login.callback.handler.class", CFG_CLASS, NULL, 0),
    K("sasl.kerberos.service.name", CFG_STRING, NULL, DYN),
    K("sasl.kerberos.kinit.cmd", CFG_STRING, "/usr/bin/kinit", DYN),
    K("sasl.kerberos.ticket.renew.window.factor", CFG_DOUBLE, "0.8", DYN),
    K("sasl.kerberos.ticket.renew.jitter", CFG_DOUBLE, "0.05", DYN),
    K("sasl.kerberos.min.time.before.relogin", CFG_LONG, "60000", DYN),
    K("sasl.kerberos.principal.to.local.rules", CFG_LIST, "DEFAULT", DYN),
    K("sasl.login.refresh.window.factor", CFG_DOUBLE, "0.8", DYN),
    K("sasl.login.refresh.window.jitter", CFG_DOUBLE, "0.05", DYN),
    K("sasl.login.refresh.min.period.seconds", CFG_SHORT, "60", DYN),
    K("sasl.login.refresh.buffer.seconds", CFG_SHORT, "300", DYN),
    K("sasl.login.connect.timeout.ms", CFG_INT, NULL, 0),
    K("sasl.login.read.timeout.ms", CFG_INT, NULL, 0),
    K("sasl.login.retry.backoff.max.ms", CFG_LONG, "10000", 0),
    K("sasl.login.retry.backoff.ms", CFG_LONG, "100", 0),
    K("sasl.oauthbearer.scope.claim.name", CFG_STRING, "scope", 0),
    K("sasl.oauthbearer.sub.claim.name", CFG_STRING, "sub", 0),
    K("sasl.oauthbearer.token.endpoint.url", CFG_STRING, NULL, 0),
    K("sasl.oauthbearer.jwks.endpoint.url", CFG_STRING, NULL, 0),
    K("sasl.oauthbearer.jwks.endpoint.refresh.ms", CFG_LONG, "3600000", 0),
    K("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", CFG_LONG, "100", 0),
    K("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", CFG_LONG, "10000", 0),
    K("sasl.oauthbearer.clock.skew.seconds", CFG_INT, "30", 0),
    K("sasl.oauthbearer.expected.audience", CFG_LIST, NULL, 0),
    K("sasl.oauthbearer.expected.issuer", CFG_STRING, NULL, 0),
    /* delegation tokens and password encoding */
    K("delegation.token.master.key", CFG_PASSWORD, NULL, 0),
    K("delegation.token.secret.key", CFG_PASSWORD, NULL, 0),
    KMIN("delegation.token.max.lifetime.ms", CFG_LONG, "604800000", 1, 0),
    KMIN("delegation.token.expiry.time.ms", CFG_LONG, "86400000", 1, 0),
    KMIN("delegation.token.expiry.check.interval.ms", CFG_LONG, "3600000", 1, 0),
    K("password.encoder.secret", CFG_PASSWORD, NULL, 0),
    K("password.encoder.old.secret", CFG_PASSWORD, NULL, 0),
    K("password.encoder.keyfactory.algorithm", CFG_STRING, NULL, 0),
    K("password.encoder.cipher.algorithm", CFG_STRING, "AES/CBC/PKCS5Padding", 0),
    KMIN("password.encoder.key.length", CFG_INT, "128", 8, 0),
    KMIN("password.encoder.iterations", CFG_INT, "4096", 1024, 0),
    /* raft quorum */
    K("controller.quorum.voters", CFG_LIST, "", 0),
    K("controller.quorum.election.timeout.ms", CFG_INT, "1000", 0),
    K("controller.quorum.fetch.timeout.ms", CFG_INT, "2000", 0),
    K("controller.quorum.election.backoff.max.ms", CFG_INT, "1000", 0),
    K("controller.quorum.append.linger.ms", CFG_INT, "25", 0),
    K("controller.quorum.request.timeout.ms", CFG_INT, "2000", 0),
    K("controller.quorum.retry.backoff.ms", CFG_INT, "20", 0),
    /* tiered storage (accepted, not implemented) */
    K("remote.log.storage.system.enable", CFG_BOOLEAN, "false", 0),
    KMIN("log.local.retention.ms", CFG_LONG, "-2", -2, DYN),
    KMIN("log.local.retention.bytes", CFG_LONG, "-2", -2, DYN),
};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Broker-level quota keys Kafka accepts dynamically although KafkaConfig
 * does not define them (DynamicConfig.Broker). */
static const char *const broker_quota_keys[] = {
    "leader.replication.throttled.rate", "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
};

static const config_def *find_def(const config_def *defs, int n, const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0) return &defs[i];
    return NULL;
}

const config_def *broker_config_def(const char *name) { return find_def(broker_defs, NELEM(broker_defs), name); }
const config_def *topic_config_def(const char *name) { return find_def(topic_defs, NELEM(topic_defs), name); }
int broker_config_def_count(void) { return NELEM(broker_defs); }
int topic_config_def_count(void) { return NELEM(topic_defs); }
const config_def *broker_config_def_at(int i) { return i >= 0 && i < NELEM(broker_defs) ? &broker_defs[i] : NULL; }
const config_def *topic_config_def_at(int i) { return i >= 0 && i < NELEM(topic_defs) ? &topic_defs[i] : NULL; }
const char *config_def_name(const config_def *d) { return d->name; }
int config_def_type(const config_def *d) { return d->type; }
const char *config_def_default(const config_def *d) { return d->dflt; }
const char *config_def_doc(const config_def *d) { (void)d; return NULL; }

bool broker_config_is_dynamic(const char *name) {
    const config_def *d = broker_config_def(name);
    if (d) return (d->flags & CF_DYNAMIC) != 0;
    for (int i = 0; i < NELEM(broker_quota_keys); i++)
        if (strcmp(broker_quota_keys[i], name) == 0) return true;
    return false;
}

bool broker_config_needs_listener_prefix(const char *name) {
    const config_def *d = broker_config_def(name);
    return d && (d->flags & CF_LISTENER_ONLY);
}

/* ---- synonyms ---- */

typedef struct synonym_row {
    const char *topic_key;
    const char *broker_keys[3];
} synonym_row;

static const synonym_row topic_synonyms[] = {
    {"segment.bytes", {"log.segment.bytes"}},
    {"segment.ms", {"log.roll.ms", "log.roll.hours"}},
    {"segment.jitter.ms", {"log.roll.jitter.ms", "log.roll.jitter.hours"}},
    {"segment.index.bytes", {"log.index.size.max.bytes"}},
    {"flush.messages", {"log.flush.interval.messages"}},
    {"flush.ms", {"log.flush.interval.ms", "log.flush.scheduler.interval.ms"}},
    {"retention.bytes", {"log.retention.bytes"}},
    {"retention.ms", {"log.retention.ms", "log.retention.minutes", "log.retention.hours"}},
    {"max.message.bytes", {"message.max.bytes"}},
    {"index.interval.bytes", {"log.index.interval.bytes"}},
    {"delete.retention.ms", {"log.cleaner.delete.retention.ms"}},
    {"min.compaction.lag.ms", {"log.cleaner.min.compaction.lag.ms"}},
    {"max.compaction.lag.ms", {"log.cleaner.max.compaction.lag.ms"}},
    {"file.delete.delay.ms", {"log.segment.delete.delay.ms"}},
    {"min.cleanable.dirty.ratio", {"log.cleaner.min.cleanable.ratio"}},
    {"cleanup.policy", {"log.cleanup.policy"}},
    {"unclean.leader.election.enable", {"unclean.leader.election.enable"}},
    {"min.insync.replicas", {"min.insync.replicas"}},
    {"compression.type", {"compression.type"}},
    {"preallocate", {"log.preallocate"}},
    {"message.format.version", {"log.message.format.version"}},
    {"message.timestamp.type", {"log.message.timestamp.type"}},
    {"message.timestamp.difference.max.ms", {"log.message.timestamp.difference.max.ms"}},
    {"message.timestamp.before.max.ms", {"log.message.timestamp.before.max.ms"}},
    {"message.timestamp.after.max.ms", {"log.message.timestamp.after.max.ms"}},
    {"message.downconversion.enable", {"log.message.downconversion.enable"}},
    {"local.retention.ms", {"log.local.retention.ms"}},
    {"local.retention.bytes", {"log.local.retention.bytes"}},
};

int topic_config_synonyms(const char *topic_key, const char **out, int max) {
    for (int i = 0; i < NELEM(topic_synonyms); i++) {
        if (strcmp(topic_synonyms[i].topic_key, topic_key) != 0) continue;
        int n = 0;
        for (int j = 0; j < 3 && topic_synonyms[i].broker_keys[j] && n < max; j++)
            out[n++] = topic_synonyms[i].broker_keys[j];
        return n;
    }
    return 0;
}

int broker_config_synonyms(const char *name, const char **out, int max) {
    static const char *const groups[][4] = {
        {"log.roll.ms", "log.roll.hours"},
        {"log.roll.jitter.ms", "log.roll.jitter.hours"},
        {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
    };
    for (int g = 0; g < NELEM(groups); g++) {
        bool member = false;
        for (int j = 0; groups[g][j]; j++)
            if (strcmp(groups[g][j], name) == 0) member = true;
        if (!member) continue;
        int n = 0;
        for (int j = 0; groups[g][j] && n < max; j++) out[n++] = groups[g][j];
        return n;
    }
    /* the flush scheduler interval is only the fallback of the flush interval */
    if (strcmp(name, "log.flush.interval.ms") == 0 && max >= 2) {
        out[0] = "log.flush.interval.ms";
        out[1] = "log.flush.scheduler.interval.ms";
        return 2;
    }
    if (max < 1) return 0;
    out[0] = name;
    return 1;
}

/* ---- value parsing and validation (Kafka's ConfigDef rules) ---- */

static void trim_copy(const char *s, char *out, size_t outlen) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    if (n >= outlen) n = outlen - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* Java's Integer/Long.parseXxx: optional sign, decimal digits only. */
bool config_parse_integer(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char buf[64];
    trim_copy(s, buf, sizeof buf);
    const char *p = buf;
    if (*p == '+' || *p == '-') p++;
    if (!*p) return false;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q)) return false;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool config_parse_double(const char *s, double *out) {
    char buf[64];
    trim_copy(s, buf, sizeof buf);
    if (!*buf) return false;
    char *end;
    double v = strtod(buf, &end);
    /* Java accepts a trailing d/D/f/F type suffix */
    if (*end == 'd' || *end == 'D' || *end == 'f' || *end == 'F') end++;
    if (*end || isnan(v)) return false;
    *out = v;
    return true;
}

bool config_parse_bool(const char *s, bool *out) {
    char buf[16];
    trim_copy(s, buf, sizeof buf);
    if (strcasecmp(buf, "true") == 0) *out = true;
    else if (strcasecmp(buf, "false") == 0) *out = false;
    else return false;
    return true;
}

static const char *type_name(int type) {
    switch (type) {
    case CFG_INT: return "INT";
    case CFG_SHORT: return "SHORT";
    case CFG_LONG: return "LONG";
    case CFG_DOUBLE: return "DOUBLE";
    default: return "?";
    }
}

/* Whether item is one of the comma-separated choices. */
static bool in_choices(const char *choices, const char *item, size_t len) {
    const char *c = choices;
    while (*c) {
        const char *e = strchr(c, ',');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == len && strncmp(c, item, len) == 0) return true;
        if (!e) break;
        c = e + 1;
    }
    return false;
}

/* "a, b, c" from "a,b,c", as Kafka joins the valid strings. */
static void choices_joined(const char *choices, char *out, size_t outlen) {
    size_t o = 0;
    for (const char *c = choices; *c && o + 3 < outlen; c++) {
        if (*c == ',') {
            out[o++] = ',';
            out[o++] = ' ';
        } else {
            out[o++] = *c;
        }
    }
    out[o] = 0;
}

/* Metadata/IBP versions Kafka 3.6.1 knows ("3.6-IV2"; "3.6" means latest). */
static bool valid_metadata_version(const char *v) {
    static const char *const known[] = {
        "0.8.0", "0.8.1", "0.8.2", "0.9.0", "0.10.0-IV0", "0.10.0-IV1", "0.10.1-IV0", "0.10.1-IV1",
        "0.10.1-IV2", "0.10.2-IV0", "0.11.0-IV0", "0.11.0-IV1", "0.11.0-IV2", "1.0-IV0", "1.1-IV0",
        "2.0-IV0", "2.0-IV1", "2.1-IV0", "2.1-IV1", "2.1-IV2", "2.2-IV0", "2.2-IV1", "2.3-IV0",
        "2.3-IV1", "2.4-IV0", "2.4-IV1", "2.5-IV0", "2.6-IV0", "2.7-IV0", "2.7-IV1", "2.7-IV2",
        "2.8-IV0", "2.8-IV1", "3.0-IV0", "3.0-IV1", "3.1-IV0", "3.2-IV0", "3.3-IV0", "3.3-IV1",
        "3.3-IV2", "3.3-IV3", "3.4-IV0", "3.5-IV0", "3.5-IV1", "3.5-IV2", "3.6-IV0", "3.6-IV1",
        "3.6-IV2",
    };
    /* Kafka keeps only the first 2 dot-separated parts (3 for 0.x), so
     * "3.6.1" means "3.6". */
    char key[64];
    size_t vlen = strlen(v);
    if (vlen >= sizeof key) return false;
    memcpy(key, v, vlen + 1);
    int keep = strncmp(key, "0.", 2) == 0 ? 3 : 2, seen = 0;
    for (char *p = key; *p; p++)
        if (*p == '.' && ++seen == keep) {
            *p = 0;
            break;
        }
    size_t klen = strlen(key);
    for (int i = 0; i < NELEM(known); i++) {
        if (strcmp(known[i], key) == 0) return true;
        /* the release without -IVn is an alias of its latest IV */
        if (strncmp(known[i], key, klen) == 0 && (known[i][klen] == '-' || known[i][klen] == 0)) return true;
    }
    return false;
}

static int fail(char *err, size_t errlen, const char *name, const char *value, const char *msg) {
    snprintf(err, errlen, "Invalid value %s for configuration %s: %s", value, name, msg);
    return -1;
}

int config_check_value(const config_def *d, const char *value, char *err, size_t errlen) {
    char msg[512];
    switch (d->type) {
    case CFG_BOOLEAN: {
        bool b;
        if (!config_parse_bool(value, &b)) return fail(err, errlen, d->name, value, "Expected value to be either true or false");
        return 0;
    }
    case CFG_INT: case CFG_SHORT: case CFG_LONG: {
        int64_t lo = d->type == CFG_INT ? INT32_MIN : d->type == CFG_SHORT ? INT16_MIN : INT64_MIN;
        int64_t hi = d->type == CFG_INT ? INT32_MAX : d->type == CFG_SHORT ? INT16_MAX : INT64_MAX;
        int64_t v;
        if (!config_parse_integer(value, lo, hi, &v)) {
            snprintf(msg, sizeof msg, "Not a number of type %s", type_name(d->type));
            return fail(err, errlen, d->name, value, msg);
        }
        char shown[32];
        snprintf(shown, sizeof shown, "%" PRId64, v);
        if ((d->check == CK_MIN || d->check == CK_RANGE) && v < d->lo) {
            snprintf(msg, sizeof msg, "Value must be at least %" PRId64, d->lo);
            return fail(err, errlen, d->name, shown, msg);
        }
        if (d->check == CK_RANGE && v > d->hi) {
            snprintf(msg, sizeof msg, "Value must be no more than %" PRId64, d->hi);
            return fail(err, errlen, d->name, shown, msg);
        }
        return 0;
    }
    case CFG_DOUBLE: {
        double v;
        if (!config_parse_double(value, &v)) return fail(err, errlen, d->name, value, "Not a number of type DOUBLE");
        char shown[40];
        config_format_double(v, shown, sizeof shown);
        if ((d->check == CK_MIN || d->check == CK_RANGE) && v < (double)d->lo) {
            snprintf(msg, sizeof msg, "Value must be at least %" PRId64, d->lo);
            return fail(err, errlen, d->name, shown, msg);
        }
        if (d->check == CK_RANGE && v > (double)d->hi) {
            snprintf(msg, sizeof msg, "Value must be no more than %" PRId64, d->hi);
            return fail(err, errlen, d->name, shown, msg);
        }
        return 0;
    }
    case CFG_STRING: {
        char t[1024];
        trim_copy(value, t, sizeof t);
        if (d->check == CK_IN && !in_choices(d->choices, t, strlen(t))) {
            char joined[256];
            choices_joined(d->choices, joined, sizeof joined);
            snprintf(msg, sizeof msg, "String must be one of: %s", joined);
            return fail(err, errlen, d->name, t, msg);
        }
        if (d->check == CK_VERSION && !valid_metadata_version(t)) {
            snprintf(msg, sizeof msg, "Version %.256s is not a valid version", t);
            return fail(err, errlen, d->name, t, msg);
        }
        return 0;
    }
    case CFG_LIST: {
        char t[4096];
        trim_copy(value, t, sizeof t);
        if (!*t) return 0; /* the empty list */
        if (d->check == CK_LIST_IN) {
            /* Kafka splits on commas with surrounding whitespace */
            const char *p = t;
            for (;;) {
                const char *e = strchr(p, ',');
                const char *end = e ? e : p + strlen(p);
                const char *s = p;
                while (s < end && isspace((unsigned char)*s)) s++;
                const char *x = end;
                while (x > s && isspace((unsigned char)x[-1])) x--;
                if (!in_choices(d->choices, s, (size_t)(x - s))) {
                    char joined[256], item[256];
                    choices_joined(d->choices, joined, sizeof joined);
                    snprintf(item, sizeof item, "%.*s", (int)(x - s), s);
                    snprintf(msg, sizeof msg, "String must be one of: %s", joined);
                    return fail(err, errlen, d->name, item, msg);
                }
                if (!e) break;
                p = e + 1;
            }
        }
        if (d->check == CK_THROTTLED) {
            bool ok = strcmp(t, "*") == 0;
            if (!ok) {
                ok = true;
                const char *p = t;
                for (;;) {
                    const char *e = strchr(p, ',');
                    const char *end = e ? e : p + strlen(p);
                    const char *s = p;
                    while (s < end && isspace((unsigned char)*s)) s++;
                    const char *x = end;
                    while (x > s && isspace((unsigned char)x[-1])) x--;
                    /* "partition:broker" or empty */
                    if (x > s) {
                        const char *c = s;
                        int digits1 = 0, digits2 = 0;
                        while (c < x && isdigit((unsigned char)*c)) c++, digits1++;
                        if (c < x && *c == ':') c++;
                        else ok = false;
                        while (c < x && isdigit((unsigned char)*c)) c++, digits2++;
                        if (c != x || !digits1 || !digits2) ok = false;
                    }
                    if (!e) break;
                    p = e + 1;
                }
            }
            if (!ok) {
                char listed[4200];
                config_list_bracketed(t, listed, sizeof listed);
                snprintf(msg, sizeof msg,
                         "%s must be the literal '*' or a list of replicas in the following format: "
                         "[partitionId]:[brokerId],[partitionId]:[brokerId],...",
                         d->name);
                return fail(err, errlen, d->name, listed, msg);
            }
        }
        return 0;
    }
    case CFG_CLASS:      /* accepted and ignored: there is no JVM to load it */
    case CFG_PASSWORD:
    default:
        return 0;
    }
}

/* "[a, b]" as Java prints a List. */
void config_list_bracketed(const char *list, char *out, size_t outlen) {
    size_t o = 0;
    if (outlen < 3) return;
    out[o++] = '[';
    for (const char *p = list; *p && o + 3 < outlen; p++) {
        if (*p == ',') {
            out[o++] = ',';
            out[o++] = ' ';
            while (p[1] == ' ') p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o++] = ']';
    out[o] = 0;
}

/* Java's Double.toString: shortest digits that read back the same, with
 * ".0" for whole numbers and E notation outside [1e-3, 1e7). */
void config_format_double(double v, char *out, size_t outlen) {
    if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    double a = fabs(v);
    char digits[40];
    int prec;
    if (a == 0 || (a >= 1e-3 && a < 1e7)) {
        for (prec = 1; prec <= 17; prec++) {
            snprintf(digits, sizeof digits, "%.*g", prec, v);
            if (strtod(digits, NULL) == v) break;
        }
        /* %g may still pick E notation for small precisions, e.g. 1e+06 */
        if (strchr(digits, 'e')) {
            for (prec = 0; prec <= 17; prec++) {
                snprintf(digits, sizeof digits, "%.*f", prec, v);
                if (strtod(digits, NULL) == v) break;
            }
        }
        if (!strchr(digits, '.')) strncat(digits, ".0", sizeof digits - strlen(digits) - 1);
        snprintf(out, outlen, "%s", digits);
        return;
    }
    for (prec = 0; prec <= 16; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec, v);
        if (strtod(digits, NULL) == v) break;
    }
    char *e = strchr(digits, 'e');
    int exp = atoi(e + 1);
    *e = 0;
    if (!strchr(digits, '.')) strncat(digits, ".0", sizeof digits - strlen(digits) - 1);
    snprintf(out, outlen, "%sE%d", digits, exp);
}

/* Canonical form of a valid value, as Kafka prints a parsed value: numbers
 * re-printed, booleans lower case, lists joined by ",". */
void config_normalize(int type, const char *value, char *out, size_t outlen) {
    int64_t i;
    double d;
    bool b;
    switch (type) {
    case CFG_INT: case CFG_SHORT: case CFG_LONG:
        if (config_parse_integer(value, INT64_MIN, INT64_MAX, &i)) {
            snprintf(out, outlen, "%" PRId64, i);
            return;
        }
        break;
    case CFG_DOUBLE:
        if (config_parse_double(value, &d)) {
            config_format_double(d, out, outlen);
            return;
        }
        break;
    case CFG_BOOLEAN:
        if (config_parse_bool(value, &b)) {
            snprintf(out, outlen, "%s", b ? "true" : "false");
            return;
        }
        break;
    case CFG_LIST: {
        char t[4096];
        trim_copy(value, t, sizeof t);
        size_t o = 0;
        const char *p = t;
        while (*p && o + 1 < outlen) {
            if (*p == ',') {
                while (o > 0 && isspace((unsigned char)out[o - 1])) o--;
                out[o++] = ',';
                p++;
                while (*p && isspace((unsigned char)*p)) p++;
                continue;
            }
            out[o++] = *p++;
        }
        out[o] = 0;
        return;
    }
    default:
        break;
    }
    trim_copy(value, out, outlen);
}

/* ---- layered lookup ---- */

static const char *lookup_pairs(const char *const *keys, const char *const *values, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (keys[i] && strcmp(keys[i], name) == 0) return values[i];
    return NULL;
}

const char *config_layer_get(const config_layers *l, const char *name, int8_t *source) {
    const char *v;
    if ((v = lookup_pairs(l->dyn_broker_keys, l->dyn_broker_values, l->ndyn_broker, name))) {
        if (source) *source = CFG_SRC_DYNAMIC_BROKER;
        return v;
    }
    if ((v = lookup_pairs(l->dyn_default_keys, l->dyn_default_values, l->ndyn_default, name))) {
        if (source) *source = CFG_SRC_DYNAMIC_DEFAULT_BROKER;
        return v;
    }
    if (l->static_cfg && (v = props_get(l->static_cfg, name))) {
        if (source) *source = CFG_SRC_STATIC_BROKER;
        return v;
    }
    return NULL;
}

/* Unit factor of a broker synonym relative to its topic config (ms). */
static int64_t synonym_factor(const char *broker_key) {
    size_t n = strlen(broker_key);
    if (n > 6 && strcmp(broker_key + n - 6, ".hours") == 0) return 3600000;
    if (n > 8 && strcmp(broker_key + n - 8, ".minutes") == 0) return 60000;
    return 1;
}

/* The topic config's value when the topic does not override it: the first
 * broker synonym set in any layer (converted to the topic's unit), else
 * Kafka's default. Writes into buf. */
const char *config_topic_inherited(const config_layers *l, const config_def *d, char *buf, size_t buflen) {
    const char *syn[4];
    int ns = topic_config_synonyms(d->name, syn, 4);
    for (int i = 0; i < ns; i++) {
        const char *v = config_layer_get(l, syn[i], NULL);
        if (!v) continue;
        int64_t factor = synonym_factor(syn[i]), x;
        if (factor != 1 && config_parse_integer(v, INT64_MIN, INT64_MAX, &x)) {
            /* Kafka treats a negative retention as "forever" (-1) */
            if (x < 0) x = -1;
            else if (x > INT64_MAX / factor) x = INT64_MAX;
            else x *= factor;
            snprintf(buf, buflen, "%" PRId64, x);
            return buf;
        }
        if (strcmp(syn[i], "log.retention.ms") == 0 && config_parse_integer(v, INT64_MIN, INT64_MAX, &x) && x < 0) {
            snprintf(buf, buflen, "-1");
            return buf;
        }
        config_normalize(d->type, v, buf, buflen);
        return buf;
    }
    snprintf(buf, buflen, "%s", d->dflt ? d->dflt : "");
    return d->dflt ? buf : NULL;
}

/* ---- topics ---- */

bool topic_config_known(const char *key) { return topic_config_def(key) != NULL; }

int16_t topic_config_validate(const char *key, const char *value, char *err, size_t errlen) {
    const config_def *d = topic_config_def(key);
    if (!d) {
        snprintf(err, errlen, "Unknown topic config name: %s", key);
        return 40; /* INVALID_CONFIG */
    }
    if (!value) {
        snprintf(err, errlen, "Null value not supported for topic configs: %s", key);
        return 40;
    }
    if (config_check_value(d, value, err, errlen) < 0) return 40;
    return 0;
}

static int64_t value_i64(const char *v, int64_t dflt) {
    int64_t x;
    return v && config_parse_integer(v, INT64_MIN, INT64_MAX, &x) ? x : dflt;
}

void topic_config_resolve_layers(topic_config *out, const config_layers *l, const char *const *keys,
                                 const char *const *values, int n) {
    memset(out, 0, sizeof *out);
    char bufs[NELEM(topic_defs)][256];
    const char *eff[NELEM(topic_defs)];
    for (int i = 0; i < NELEM(topic_defs); i++) {
        const config_def *d = &topic_defs[i];
        const char *ov = lookup_pairs(keys, values, n, d->name);
        char dummy[256];
        if (ov && config_check_value(d, ov, dummy, sizeof dummy) == 0) {
            config_normalize(d->type, ov, bufs[i], sizeof bufs[i]);
            eff[i] = bufs[i];
        } else {
            eff[i] = config_topic_inherited(l, d, bufs[i], sizeof bufs[i]);
        }
    }
#define EFF(name) eff[find_def(topic_defs, NELEM(topic_defs), name) - topic_defs]
    const char *cp = EFF("cleanup.policy");
    snprintf(out->cleanup_policy, sizeof out->cleanup_policy, "%s", cp ? cp : "delete");
    out->compact = strstr(out->cleanup_policy, "compact") != NULL;
    out->delete_ = strstr(out->cleanup_policy, "delete") != NULL;
    const char *ct = EFF("compression.type");
    snprintf(out->compression_type, sizeof out->compression_type, "%s", ct ? ct : "producer");
    out->delete_retention_ms = value_i64(EFF("delete.retention.ms"), 86400000);
    out->file_delete_delay_ms = value_i64(EFF("file.delete.delay.ms"), 60000);
    out->flush_messages = value_i64(EFF("flush.messages"), INT64_MAX);
    out->flush_ms = value_i64(EFF("flush.ms"), INT64_MAX);
    out->index_interval_bytes = (int32_t)value_i64(EFF("index.interval.bytes"), 4096);
    out->max_message_bytes = (int32_t)value_i64(EFF("max.message.bytes"), 1048588);
    out->message_timestamp_difference_max_ms = value_i64(EFF("message.timestamp.difference.max.ms"), INT64_MAX);
    /* before/after fall back to the deprecated difference setting while they
     * keep their default, as Kafka 3.6 does */
    int64_t before = value_i64(EFF("message.timestamp.before.max.ms"), INT64_MAX);
    int64_t after = value_i64(EFF("message.timestamp.after.max.ms"), INT64_MAX);
    out->message_timestamp_before_max_ms = before != INT64_MAX ? before : out->message_timestamp_difference_max_ms;
    out->message_timestamp_after_max_ms = after != INT64_MAX ? after : out->message_timestamp_difference_max_ms;
    const char *tt = EFF("message.timestamp.type");
    out->log_append_time = tt && strcmp(tt, "LogAppendTime") == 0;
    out->min_insync_replicas = (int32_t)value_i64(EFF("min.insync.replicas"), 1);
    out->retention_bytes = value_i64(EFF("retention.bytes"), -1);
    out->retention_ms = value_i64(EFF("retention.ms"), 604800000);
    out->segment_bytes = value_i64(EFF("segment.bytes"), 1073741824);
    out->segment_index_bytes = (int32_t)value_i64(EFF("segment.index.bytes"), 10485760);
    out->segment_ms = value_i64(EFF("segment.ms"), 604800000);
    out->segment_jitter_ms = value_i64(EFF("segment.jitter.ms"), 0);
    out->min_compaction_lag_ms = value_i64(EFF("min.compaction.lag.ms"), 0);
    out->max_compaction_lag_ms = value_i64(EFF("max.compaction.lag.ms"), INT64_MAX);
    double ratio = 0.5;
    const char *r = EFF("min.cleanable.dirty.ratio");
    if (r) config_parse_double(r, &ratio);
    out->min_cleanable_dirty_ratio = ratio;
    bool b;
    const char *v;
    out->preallocate = (v = EFF("preallocate")) && config_parse_bool(v, &b) && b;
    out->unclean_leader_election_enable = (v = EFF("unclean.leader.election.enable")) && config_parse_bool(v, &b) && b;
    out->message_downconversion_enable = !((v = EFF("message.downconversion.enable")) && config_parse_bool(v, &b) && !b);
#undef EFF
}

void topic_config_resolve(topic_config *out, const broker_config *b, const char *const *keys,
                          const char *const *values, int n) {
    config_layers l = {0};
    l.static_cfg = b ? &b->raw : NULL;
    topic_config_resolve_layers(out, &l, keys, values, n);
}

/* ---- broker config loading ---- */

/* Parse "NAME://host:port[,...]" (Kafka's listener syntax). */
static int parse_listeners(const char *key, const char *text, listener *out, int max, int *count, char *err,
                           size_t errlen) {
    *count = 0;
    char buf[2048];
    trim_copy(text, buf, sizeof buf);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char item[1024];
        trim_copy(tok, item, sizeof item);
        if (!*item) continue;
        char *sep = strstr(item, "://");
        char *colon = sep ? strrchr(sep + 3, ':') : NULL;
        if (!sep || !colon || sep == item) {
            snprintf(err, errlen, "Error creating broker listeners from '%s': Unable to parse %s to a broker endpoint",
                     text, item);
            return -1;
        }
        int64_t port;
        if (!config_parse_integer(colon + 1, INT32_MIN, INT32_MAX, &port)) {
            snprintf(err, errlen, "Error creating broker listeners from '%s': Unable to parse %s to a broker endpoint",
                     text, item);
            return -1;
        }
        if (*count >= max) {
            snprintf(err, errlen, "Too many listeners in %s (at most %d)", key, max);
            return -1;
        }
        listener *ln = &out[(*count)++];
        memset(ln, 0, sizeof *ln);
        size_t nlen = (size_t)(sep - item);
        if (nlen >= sizeof ln->name) nlen = sizeof ln->name - 1;
        for (size_t i = 0; i < nlen; i++) ln->name[i] = (char)toupper((unsigned char)item[i]);
        char *host = sep + 3;
        *colon = 0;
        /* IPv6 literals come bracketed */
        size_t hl = strlen(host);
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
            host[hl - 1] = 0;
            host++;
        }
        snprintf(ln->host, sizeof ln->host, "%s", host);
        ln->port = (int)port;
    }
    for (int i = 0; i < *count; i++)
        for (int j = i + 1; j < *count; j++) {
            if (strcmp(out[i].name, out[j].name) == 0) {
                snprintf(err, errlen, "Error creating broker listeners from '%s': Each listener must have a different name, listeners: %s",
                         text, text);
                return -1;
            }
            if (strcmp(key, "listeners") == 0 && out[i].port == out[j].port && out[i].port != 0) {
                snprintf(err, errlen, "Error creating broker listeners from '%s': Each listener must have a different port, listeners: %s",
                         text, text);
                return -1;
            }
        }
    return 0;
}

/* Effective value of a broker key: given, else default (may be NULL). */
static const char *eff_value(const props *p, const char *name) {
    const char *v = props_get(p, name);
    if (v) return v;
    const config_def *d = broker_config_def(name);
    return d ? d->dflt : NULL;
}

static int64_t get_i64(const props *p, const char *name) { return value_i64(eff_value(p, name), 0); }

static bool get_bool(const props *p, const char *name) {
    bool b = false;
    const char *v = eff_value(p, name);
    if (v) config_parse_bool(v, &b);
    return b;
}

static void get_str(const props *p, const char *name, char *out, size_t outlen) {
    const char *v = eff_value(p, name);
    if (v) trim_copy(v, out, outlen);
    else if (outlen) out[0] = 0;
}

static bool is_listener_prefixed(const char *key) { return strncmp(key, "listener.name.", 14) == 0; }

/* Samsa's own keys (docs/cluster.md): the metadata store of a cluster, the
 * Prometheus endpoint (docs/metrics.md), the web console on it
 * (docs/console.md), the CPUs below which the sockets stay on the loop, and
 * each log's page-cache window (storage/page_trim.h). Not Kafka's, so not in
 * the table DescribeConfigs reports. */
static const char *const samsa_keys[] = {"metadata.store",    "etcd.endpoints", "etcd.prefix",
                                         "metrics.listener",  "console.read.only",
                                         "network.threads.min.cpus", "log.page.cache.window.bytes"};

/* Kafka's internal settings (defineInternal: accepted, never described) that are read here. */
static const char *const kafka_internal_keys[] = {"metadata.log.segment.min.bytes"};

static bool is_samsa_key(const char *key) {
    for (size_t i = 0; i < sizeof samsa_keys / sizeof samsa_keys[0]; i++)
        if (strcmp(key, samsa_keys[i]) == 0) return true;
    for (size_t i = 0; i < sizeof kafka_internal_keys / sizeof kafka_internal_keys[0]; i++)
        if (strcmp(key, kafka_internal_keys[i]) == 0) return true;
    return false;
}

/* metrics.listener is http://host:port; metadata.store=local|etcd; etcd
 * needs http:// endpoints. */
static int check_samsa_keys(const props *p, char *err, size_t errlen) {
    const char *ml = props_get(p, "metrics.listener");
    char mhost[256];
    int mport;
    if (ml && *ml && metrics_parse_listener(ml, mhost, sizeof mhost, &mport, err, errlen) != 0) return -1;
    const char *ro = props_get(p, "console.read.only");
    bool ro_value;
    if (ro && !config_parse_bool(ro, &ro_value)) {
        snprintf(err, errlen,
                 "Invalid value %s for configuration console.read.only: Expected value to be either true or false",
                 ro);
        return -1;
    }
    const char *mc = props_get(p, "network.threads.min.cpus");
    char *end = NULL;
    long mc_value = mc ? strtol(mc, &end, 10) : 1;
    if (mc && (!*mc || *end || mc_value < 1 || mc_value > 4096)) {
        snprintf(err, errlen, "Invalid value %s for configuration network.threads.min.cpus: Value must be at least 1",
                 mc);
        return -1;
    }
    const char *pcw = props_get(p, "log.page.cache.window.bytes");
    end = NULL;
    long long pcw_value = pcw ? strtoll(pcw, &end, 10) : 0;
    if (pcw && (!*pcw || *end || pcw_value < 0)) {
        snprintf(err, errlen,
                 "Invalid value %s for configuration log.page.cache.window.bytes: Value must be at least 0", pcw);
        return -1;
    }
    const char *store = props_get(p, "metadata.store");
    if (store && strcmp(store, "local") != 0 && strcmp(store, "etcd") != 0) {
        snprintf(err, errlen, "Invalid value %s for configuration metadata.store: String must be one of: local, etcd",
                 store);
        return -1;
    }
    if (store && strcmp(store, "etcd") == 0) {
        const char *eps = props_get(p, "etcd.endpoints");
        if (!eps || !*eps) {
            snprintf(err, errlen, "Missing required configuration \"etcd.endpoints\" which has no default value "
                                  "(metadata.store=etcd).");
            return -1;
        }
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", eps);
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            if (strncmp(t, "http://", 7) != 0 || !t[7]) {
                snprintf(err, errlen, "Invalid value %s for configuration etcd.endpoints: each endpoint must be "
                                      "http://host:port", eps);
                return -1;
            }
        }
    }
    return 0;
}

int broker_config_load(broker_config *c, const props *p, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    props_init(&c->raw);
    for (int i = 0; i < p->count; i++) {
        const char *k = p->items[i].key, *v = p->items[i].value;
        const config_def *d = broker_config_def(k);
        if (!d) {
            if (!is_listener_prefixed(k) && !topic_config_known(k) && !is_samsa_key(k))
                log_warn(LOG_COMPONENT, "The configuration '%s' was supplied but isn't a known config.", k);
        } else if (config_check_value(d, v, err, errlen) < 0) {
            props_free(&c->raw);
            return -1;
        }
        if (props_set(&c->raw, k, v) < 0) {
            snprintf(err, errlen, "out of memory");
            props_free(&c->raw);
            return -1;
        }
    }
    const props *r = &c->raw;
    if (check_samsa_keys(r, err, errlen) != 0) goto fail;

    /* roles and identity: Kafka treats broker.id and node.id as synonyms */
    char roles[64];
    get_str(r, "process.roles", roles, sizeof roles);
    c->role_broker = strstr(roles, "broker") != NULL;
    c->role_controller = strstr(roles, "controller") != NULL;
    const char *nid = props_get(r, "node.id"), *bid = props_get(r, "broker.id");
    if (nid && bid && value_i64(nid, -1) != value_i64(bid, -1)) {
        snprintf(err, errlen, "You must set `node.id` to the same value as `broker.id`.");
        goto fail;
    }
    c->node_id = (int32_t)value_i64(nid ? nid : bid, -1);
    if ((c->role_broker || c->role_controller) && c->node_id < 0) {
        snprintf(err, errlen,
                 "Missing configuration `node.id` which is required when `process.roles` is defined (i.e. when running in KRaft mode).");
        goto fail;
    }
    char idbuf[16];
    snprintf(idbuf, sizeof idbuf, "%d", (int)c->node_id);
    if (c->node_id >= 0 && ((!nid && props_set(&c->raw, "node.id", idbuf) < 0) ||
                            (!bid && props_set(&c->raw, "broker.id", idbuf) < 0))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    get_str(r, "controller.quorum.voters", c->controller_quorum_voters, sizeof c->controller_quorum_voters);
    get_str(r, "controller.listener.names", c->controller_listener_names, sizeof c->controller_listener_names);
    get_str(r, "inter.broker.listener.name", c->inter_broker_listener_name, sizeof c->inter_broker_listener_name);
    if (!c->inter_broker_listener_name[0])
        get_str(r, "security.inter.broker.protocol", c->inter_broker_listener_name,
                sizeof c->inter_broker_listener_name);

    /* listeners; advertised.listeners defaults to listeners (minus the
     * controller listeners, which are never advertised to clients) */
    if (parse_listeners("listeners", eff_value(r, "listeners"), c->listeners, MAX_LISTENERS, &c->nlisteners, err,
                        errlen) < 0)
        goto fail;
    const char *adv = props_get(r, "advertised.listeners");
    if (adv) {
        if (parse_listeners("advertised.listeners", adv, c->advertised, MAX_LISTENERS, &c->nadvertised, err,
                            errlen) < 0)
            goto fail;
    } else {
        for (int i = 0; i < c->nlisteners; i++) {
            const char *cn = c->controller_listener_names;
            if (*cn && in_choices(cn, c->listeners[i].name, strlen(c->listeners[i].name))) continue;
            c->advertised[c->nadvertised++] = c->listeners[i];
        }
    }

    /* log.dirs wins over log.dir */
    char dirs[4096];
    const char *ld = props_get(r, "log.dirs");
    trim_copy(ld ? ld : eff_value(r, "log.dir"), dirs, sizeof dirs);
    char *save = NULL;
    for (char *tok = strtok_r(dirs, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char one[1024];
        trim_copy(tok, one, sizeof one);
        if (!*one) continue;
        if (c->nlog_dirs >= MAX_LOG_DIRS) {
            snprintf(err, errlen, "Too many log directories (at most %d)", MAX_LOG_DIRS);
            goto fail;
        }
        snprintf(c->log_dirs[c->nlog_dirs++], sizeof c->log_dirs[0], "%s", one);
    }
    get_str(r, "metadata.log.dir", c->metadata_log_dir, sizeof c->metadata_log_dir);
    if (!c->metadata_log_dir[0] && c->nlog_dirs > 0)
        snprintf(c->metadata_log_dir, sizeof c->metadata_log_dir, "%s", c->log_dirs[0]);

    /* network */
    c->socket_request_max_bytes = (int32_t)get_i64(r, "socket.request.max.bytes");
    c->socket_send_buffer_bytes = (int32_t)get_i64(r, "socket.send.buffer.bytes");
    c->socket_receive_buffer_bytes = (int32_t)get_i64(r, "socket.receive.buffer.bytes");
    c->queued_max_requests = (int32_t)get_i64(r, "queued.max.requests");
    c->num_network_threads = (int32_t)get_i64(r, "num.network.threads");
    c->num_io_threads = (int32_t)get_i64(r, "num.io.threads");
    const char *min_cpus = props_get(&c->raw, "network.threads.min.cpus");
    c->network_threads_min_cpus = min_cpus ? (int32_t)strtol(min_cpus, NULL, 10) : 4;
    const char *window = props_get(&c->raw, "log.page.cache.window.bytes");
    c->log_page_cache_window_bytes = window ? strtoll(window, NULL, 10) : LOG_PAGE_CACHE_WINDOW_DEFAULT;
    c->connections_max_idle_ms = get_i64(r, "connections.max.idle.ms");
    c->max_connections = (int32_t)get_i64(r, "max.connections");
    c->max_connections_per_ip = (int32_t)get_i64(r, "max.connections.per.ip");

    /* topics and logs */
    c->num_partitions = (int32_t)get_i64(r, "num.partitions");
    c->default_replication_factor = (int16_t)get_i64(r, "default.replication.factor");
    c->min_insync_replicas = (int32_t)get_i64(r, "min.insync.replicas");
    c->auto_create_topics_enable = get_bool(r, "auto.create.topics.enable");
    c->delete_topic_enable = get_bool(r, "delete.topic.enable");
    c->message_max_bytes = (int32_t)get_i64(r, "message.max.bytes");
    c->log_segment_bytes = get_i64(r, "log.segment.bytes");
    /* derived keys, as KafkaConfig: .ms beats .minutes beats .hours */
    const char *v;
    if ((v = props_get(r, "log.roll.ms"))) c->log_roll_ms = value_i64(v, 0);
    else c->log_roll_ms = get_i64(r, "log.roll.hours") * 3600000;
    if ((v = props_get(r, "log.retention.ms"))) c->log_retention_ms = value_i64(v, 0);
    else if ((v = props_get(r, "log.retention.minutes"))) c->log_retention_ms = value_i64(v, 0) * 60000;
    else c->log_retention_ms = get_i64(r, "log.retention.hours") * 3600000;
    if (c->log_retention_ms < 0) c->log_retention_ms = -1;
    c->log_retention_bytes = get_i64(r, "log.retention.bytes");
    c->log_retention_check_interval_ms = get_i64(r, "log.retention.check.interval.ms");
    c->log_flush_interval_messages = get_i64(r, "log.flush.interval.messages");
    c->log_flush_scheduler_interval_ms = get_i64(r, "log.flush.scheduler.interval.ms");
    if ((v = props_get(r, "log.flush.interval.ms"))) c->log_flush_interval_ms = value_i64(v, 0);
    else c->log_flush_interval_ms = c->log_flush_scheduler_interval_ms;
    c->log_flush_offset_checkpoint_interval_ms = get_i64(r, "log.flush.offset.checkpoint.interval.ms");
    c->log_index_interval_bytes = (int32_t)get_i64(r, "log.index.interval.bytes");
    c->log_index_size_max_bytes = (int32_t)get_i64(r, "log.index.size.max.bytes");
    c->log_file_delete_delay_ms = get_i64(r, "log.segment.delete.delay.ms");
    char tmp[256];
    get_str(r, "log.cleanup.policy", tmp, sizeof tmp);
    config_normalize(CFG_LIST, tmp, c->log_cleanup_policy, sizeof c->log_cleanup_policy);
    get_str(r, "log.message.timestamp.type", c->log_message_timestamp_type, sizeof c->log_message_timestamp_type);
    c->log_message_timestamp_difference_max_ms = get_i64(r, "log.message.timestamp.difference.max.ms");
    get_str(r, "compression.type", c->compression_type, sizeof c->compression_type);
    c->unclean_leader_election_enable = get_bool(r, "unclean.leader.election.enable");
    c->log_preallocate = get_bool(r, "log.preallocate");

    /* groups and offsets */
    c->offsets_topic_num_partitions = (int32_t)get_i64(r, "offsets.topic.num.partitions");
    c->offsets_topic_replication_factor = (int16_t)get_i64(r, "offsets.topic.replication.factor");
    c->offsets_topic_segment_bytes = get_i64(r, "offsets.topic.segment.bytes");
    c->offsets_retention_minutes = get_i64(r, "offsets.retention.minutes");
    c->offsets_retention_check_interval_ms = get_i64(r, "offsets.retention.check.interval.ms");
    c->offset_metadata_max_bytes = (int32_t)get_i64(r, "offset.metadata.max.bytes");
    c->group_initial_rebalance_delay_ms = (int32_t)get_i64(r, "group.initial.rebalance.delay.ms");
    c->group_min_session_timeout_ms = (int32_t)get_i64(r, "group.min.session.timeout.ms");
    c->group_max_session_timeout_ms = (int32_t)get_i64(r, "group.max.session.timeout.ms");
    c->group_max_size = (int32_t)get_i64(r, "group.max.size");

    /* transactions */
    c->transaction_state_log_num_partitions = (int32_t)get_i64(r, "transaction.state.log.num.partitions");
    c->transaction_state_log_replication_factor = (int16_t)get_i64(r, "transaction.state.log.replication.factor");
    c->transaction_state_log_min_isr = (int32_t)get_i64(r, "transaction.state.log.min.isr");
    c->transaction_max_timeout_ms = (int32_t)get_i64(r, "transaction.max.timeout.ms");
    c->transactional_id_expiration_ms = get_i64(r, "transactional.id.expiration.ms");
    c->producer_id_expiration_ms = get_i64(r, "producer.id.expiration.ms");
    return 0;

fail:
    props_free(&c->raw);
    return -1;
}

void broker_config_free(broker_config *c) { props_free(&c->raw); }
