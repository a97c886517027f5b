/* get_offsets.c - kafka-get-offsets: print topic:partition:offset lines.
 *
 * Kafka's GetOffsetShell rebuilt on librdkafka. The partitions come from
 * a metadata request filtered by --topic (a regular expression matched
 * against the whole name) and --partitions, or by --topic-partitions
 * patterns; the offsets come from one ListOffsets lookup per partition
 * for --time (latest, earliest, max-timestamp or a timestamp). Lines are
 * sorted by topic then partition; partitions with no offset for the time
 * are left out. Failures print "Error occurred: ..." on stdout and exit 1,
 * as the Java tool does.
 */
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "tools/client_props.h"
#include "tools/opts.h"
#include "tools/tools.h"

#define API_TIMEOUT_MS 60000

static const opt_spec offsets_specs[] = {
    {"broker-list", OPT_ARG, "String: HOST1:PORT1,...,HOST3:PORT3", "DEPRECATED, use "
     "--bootstrap-server instead; ignored if --bootstrap-server is given. Brokers as "
     "HOST1:PORT1,HOST2:PORT2.", NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: HOST1:PORT1,...,HOST3:PORT3", "REQUIRED. Broker(s) "
     "to connect to, as HOST1:PORT1,HOST2:PORT2.", NULL, 0},
    {"topic-partitions", OPT_ARG, "String: topic1:1,topic2:0-3,topic3,topic4:5-,topic5:-3",
     "Comma-separated topic-partition patterns. Each is an optional topic regex (any topic "
     "when left out), then optionally ':' and a partition: a number, N-M (N included, M "
     "excluded), N- (from N up) or -M (below M); no partition part means every partition.",
     NULL, 0},
    {"topic", OPT_ARG, "String: topic", "Topic, or regular expression of topics, to look up; "
     "all topics when absent. Not usable with --topic-partitions.", NULL, 0},
    {"partitions", OPT_ARG, "String: partition ids", "Comma-separated partition ids to look "
     "up; all partitions when absent. Not usable with --topic-partitions.", NULL, 0},
    {"time", OPT_ARG, "String: <timestamp> / -1 or latest / -2 or earliest / -3 or max-timestamp",
     "Which offset: for a timestamp, the first offset whose record time is at or after it "
     "(partitions with none are left out).", "latest", 0},
    {"command-config", OPT_ARG, "String: config file", "Properties file of client settings.", NULL, 0},
    {"exclude-internal-topics", OPT_FLAG, NULL, "Leave out internal topics (they are included by default).", NULL, 0},
};

/* One rule: topic regex + partition range [lo, hi) or a set. */
typedef struct tp_rule {
    regex_t re;
    int re_ok;
    int32_t lo, hi;       /* range; hi exclusive */
    int32_t *set;         /* explicit ids (from --partitions), NULL for the range */
    size_t nset;
} tp_rule;

typedef struct tp_offset {
    const char *topic;
    int32_t partition;
    int64_t offset;
} tp_offset;

static int fail(const char *fmt, const char *arg) {
    printf("Error occurred: ");
    printf(fmt, arg);
    printf("\n");
    fflush(stdout);
    return 1;
}

/* Kafka's IncludeList cleanup: trim, ',' means '|', no spaces, no quotes at the ends. */
static int compile_topic_regex(regex_t *re, const char *raw) {
    size_t n = strlen(raw);
    char *clean = malloc(n + 1);
    char *pat = malloc(n + 8);
    if (!clean || !pat) { free(clean); free(pat); return -1; }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == ' ') continue;
        clean[o++] = raw[i] == ',' ? '|' : raw[i];
    }
    clean[o] = 0;
    char *s = clean;
    while (*s == '"' || *s == '\'') s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == '"' || s[l - 1] == '\'')) l--;
    snprintf(pat, n + 8, "^(%.*s)$", (int)l, s);
    int rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB);
    free(clean);
    free(pat);
    return rc == 0 ? 0 : -1;
}

static int parse_digits(const char *s, size_t len, int32_t *out) {
    if (len == 0 || len > 10) return -1;
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > 2147483647LL) return -1;
    *out = (int32_t)v;
    return 0;
}

/* "topicregex(:N | :N-M | :N- | :-M)?" -> rule. Returns -1 if malformed. */
static int parse_rule(tp_rule *r, const char *spec) {
    memset(r, 0, sizeof *r);
    r->lo = 0;
    r->hi = INT32_MAX;
    const char *colon = strchr(spec, ':');
    size_t tlen = colon ? (size_t)(colon - spec) : strlen(spec);
    char *topic = strndup(spec, tlen);
    if (!topic) return -1;
    if (colon) {
        const char *p = colon + 1;
        const char *dash = strchr(p, '-');
        if (!dash) {
            if (*p) {
                if (parse_digits(p, strlen(p), &r->lo) != 0) { free(topic); return -1; }
                r->hi = r->lo + 1;
                if (r->lo == INT32_MAX) r->hi = INT32_MAX;
            }
        } else {
            if (dash > p && parse_digits(p, (size_t)(dash - p), &r->lo) != 0) { free(topic); return -1; }
            if (dash[1] && parse_digits(dash + 1, strlen(dash + 1), &r->hi) != 0) { free(topic); return -1; }
        }
    }
    int rc = compile_topic_regex(&r->re, *topic ? topic : ".*");
    free(topic);
    if (rc != 0) return -1;
    r->re_ok = 1;
    return 0;
}

static int rule_topic_ok(const tp_rule *r, const char *topic) { return regexec(&r->re, topic, 0, NULL, 0) == 0; }

static int rule_partition_ok(const tp_rule *r, int32_t p) {
    if (r->set) {
        if (r->nset == 0) return 1;
        for (size_t i = 0; i < r->nset; i++)
            if (r->set[i] == p) return 1;
        return 0;
    }
    return p >= r->lo && p < r->hi;
}

static int is_internal(const char *topic) {
    return strcmp(topic, "__consumer_offsets") == 0 || strcmp(topic, "__transaction_state") == 0;
}

static int cmp_tp(const void *a, const void *b) {
    const tp_offset *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c) return c;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* Parses --time into the ListOffsets timestamp. */
static int parse_time(const char *s, int64_t *ts) {
    if (strcmp(s, "earliest") == 0) { *ts = -2; return 0; }
    if (strcmp(s, "latest") == 0) { *ts = -1; return 0; }
    if (strcmp(s, "max-timestamp") == 0) { *ts = -3; return 0; }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *ts = v;
    return 0;
}

static int valid_host_ports(const char *list) {
    if (!*list) return 0;
    for (const char *s = list;;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        const char *colon = NULL;
        for (size_t i = 0; i < l; i++)
            if (s[i] == ':') colon = s + i;
        if (!colon || colon + 1 >= s + l) return 0;
        for (const char *d = colon + 1; d < s + l; d++)
            if (*d < '0' || *d > '9') return 0;
        if (!e) return 1;
        s = e + 1;
    }
}

int tool_get_offsets(int argc, char **argv) {
    opts o;
    tp_rule *rules = NULL;
    size_t nrules = 0;
    client_props props = {0};
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *tpl = NULL;
    tp_offset *found = NULL;
    int rc = 1;
    char err[1024];

    if (opts_parse_plain(&o, offsets_specs, OPTS_COUNT(offsets_specs), argc, argv) != 0) {
        if (argc <= 1) rc = opts_usage_error(&o, "An interactive shell for getting topic-partition offsets.");
        else rc = fail("%s", o.err);
        goto out;
    }
    if (argc <= 1) {
        rc = opts_usage_error(&o, "An interactive shell for getting topic-partition offsets.");
        goto out;
    }
    if (!opts_has(&o, "bootstrap-server") && !opts_has(&o, "broker-list")) {
        rc = fail("%s", "Missing required option(s) [bootstrap-server]");
        goto out;
    }
    const char *servers = opts_has(&o, "bootstrap-server") ? opts_get(&o, "bootstrap-server", "")
                                                            : opts_get(&o, "broker-list", "");
    if (!valid_host_ports(servers)) {
        rc = opts_usage_error(&o, "Please provide valid host:port like host1:9091,host2:9092\n ");
        goto out;
    }
    int exclude_internal = opts_has(&o, "exclude-internal-topics");
    if (opts_has(&o, "topic-partitions") && (opts_has(&o, "topic") || opts_has(&o, "partitions"))) {
        rc = fail("%s", "--topic-partitions cannot be used with --topic or --partitions");
        goto out;
    }
    int64_t ts;
    const char *time_arg = opts_get(&o, "time", "latest");
    if (parse_time(time_arg, &ts) != 0) {
        rc = fail("Malformed time argument %s, please use -1 or latest / -2 or earliest / -3 or max-timestamp, "
                  "or a specified long format timestamp", time_arg);
        goto out;
    }

    if (opts_has(&o, "topic-partitions")) {
        const char *list = opts_get(&o, "topic-partitions", "");
        size_t cap = 1;
        for (const char *c = list; *c; c++) cap += *c == ',';
        rules = calloc(cap, sizeof *rules);
        if (!rules) goto out;
        char *copy = strdup(list);
        if (!copy) goto out;
        /* Java's split(",") keeps inner empty items but drops trailing ones. */
        char *p = copy;
        for (;;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = 0;
            int trailing_empty = !*p && !comma;
            if (!trailing_empty) {
                if (parse_rule(&rules[nrules], p) != 0) {
                    snprintf(err, sizeof err, "Invalid rule specification: %s", p);
                    free(copy);
                    rc = fail("%s", err);
                    goto out;
                }
                nrules++;
            }
            if (!comma) break;
            p = comma + 1;
        }
        free(copy);
    } else {
        rules = calloc(1, sizeof *rules);
        if (!rules) goto out;
        if (compile_topic_regex(&rules[0].re, opts_get(&o, "topic", ".*")) != 0) {
            rc = fail("Invalid topic pattern: %s", opts_get(&o, "topic", ""));
            goto out;
        }
        rules[0].re_ok = 1;
        nrules = 1;
        const char *parts = opts_get(&o, "partitions", NULL);
        rules[0].set = calloc(parts ? strlen(parts) + 1 : 1, sizeof *rules[0].set);
        if (!rules[0].set) goto out;
        if (parts && *parts) {
            for (const char *s = parts;;) {
                const char *e = strchr(s, ',');
                size_t l = e ? (size_t)(e - s) : strlen(s);
                int32_t v;
                int neg = l > 0 && s[0] == '-';
                if (parse_digits(s + neg, l - (size_t)neg, &v) != 0) {
                    rc = fail("--partitions expects a comma separated list of numeric partition ids, but received: %s",
                              parts);
                    goto out;
                }
                rules[0].set[rules[0].nset++] = neg ? -v : v;
                if (!e) break;
                s = e + 1;
            }
        }
    }

    if (opts_has(&o, "command-config") &&
        client_props_load_file(&props, opts_get(&o, "command-config", ""), err, sizeof err) != 0) {
        rc = fail("%s", err);
        goto out;
    }
    client_props_put(&props, "bootstrap.servers", servers);
    client_props_put(&props, "client.id", "GetOffsetShell");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    client_conf_defaults(conf);
    if (client_props_apply(&props, conf, CLIENT_ADMIN, "org.apache.kafka.clients.admin.AdminClientConfig", err,
                           sizeof err) != 0) {
        rd_kafka_conf_destroy(conf);
        rc = fail("%s", err);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        rc = fail("%s", err);
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, API_TIMEOUT_MS);
    if (e) {
        snprintf(err, sizeof err, "%s: %s", client_java_exception(e), rd_kafka_err2str(e));
        rc = fail("%s", err);
        goto out;
    }
    tpl = rd_kafka_topic_partition_list_new(16);
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        if (mt->err || (exclude_internal && is_internal(mt->topic))) continue;
        for (int p = 0; p < mt->partition_cnt; p++) {
            int32_t id = mt->partitions[p].id;
            for (size_t r = 0; r < nrules; r++)
                if (rule_topic_ok(&rules[r], mt->topic) && rule_partition_ok(&rules[r], id)) {
                    rd_kafka_topic_partition_list_add(tpl, mt->topic, id)->offset = ts;
                    break;
                }
        }
    }
    if (tpl->cnt == 0) {
        rc = fail("%s", "Could not match any topic-partitions with the specified filters");
        goto out;
    }
    e = rd_kafka_offsets_for_times(rk, tpl, API_TIMEOUT_MS);
    if (e) {
        snprintf(err, sizeof err, "%s: %s", client_java_exception(e), rd_kafka_err2str(e));
        rc = fail("%s", err);
        goto out;
    }
    found = calloc((size_t)tpl->cnt, sizeof *found);
    if (!found) goto out;
    size_t n = 0;
    for (int i = 0; i < tpl->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &tpl->elems[i];
        if (tp->err) {
            fprintf(stderr, "Skip getting offsets for topic-partition %s:%" PRId32 " due to error: %s\n", tp->topic,
                    tp->partition, rd_kafka_err2str(tp->err));
            continue;
        }
        if (tp->offset < 0) continue; /* no offset for this time */
        found[n++] = (tp_offset){tp->topic, tp->partition, tp->offset};
    }
    qsort(found, n, sizeof *found, cmp_tp);
    for (size_t i = 0; i < n; i++) printf("%s:%" PRId32 ":%" PRId64 "\n", found[i].topic, found[i].partition, found[i].offset);
    fflush(stdout);
    rc = 0;

out:
    free(found);
    if (tpl) rd_kafka_topic_partition_list_destroy(tpl);
    if (md) rd_kafka_metadata_destroy(md);
    if (rk) rd_kafka_destroy(rk);
    for (size_t i = 0; i < nrules; i++) {
        if (rules[i].re_ok) regfree(&rules[i].re);
        free(rules[i].set);
    }
    free(rules);
    client_props_free(&props);
    opts_free(&o);
    return rc;
}
