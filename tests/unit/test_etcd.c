/* test_etcd.c - the etcd client (src/mstore/etcd*.c).
 *
 * Part 1 needs nothing: base64, the HTTP/1.1 response parser and the JSON
 * decoders against answers recorded from etcd 3.4.23's gateway with curl,
 * each fed whole, split at every byte boundary and byte by byte; malformed
 * answers are refused without a crash. Part 2 runs when /usr/bin/etcd
 * exists: a real etcd on free loopback ports in a temp dir, every call
 * through the async API on a loop and through the sync API, failover past
 * a dead and a silent endpoint, timeouts, leases seen by a watch, watches
 * from past and compacted revisions, and a watch whose etcd dies. etcd is
 * killed at exit (and dies with us: PR_SET_PDEATHSIG). Prints
 * "etcd: N passed, M failed".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mstore/etcd.h"
#include "mstore/etcd_internal.h"
#include "util/base64.h"

static int g_pass, g_fail;

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (cond) {                                                      \
            g_pass++;                                                    \
        } else {                                                         \
            g_fail++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                \
    } while (0)

/* ---------------------------------------------------------------- recorded */

#define HDR200 "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\n" \
    "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\n"   \
    "Content-Type: application/json\r\nGrpc-Metadata-Content-Type: application/grpc\r\n"                      \
    "Date: Fri, 04 Dec 2026 20:20:43 GMT\r\n"
#define HDR404 "HTTP/1.1 404 Not Found\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\n" \
    "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\n"      \
    "Content-Type: application/json\r\nTrailer: Grpc-Trailer-Content-Type\r\nDate: Fri, 04 Dec 2026 20:20:56 GMT\r\n"
#define HEADER_JSON(rev) "{\"cluster_id\":\"15118495548433857066\",\"member_id\":\"13668033151171901709\",\"revision\":\"" rev "\",\"raft_term\":\"2\"}"

static const char rec_put[] = HDR200 "Content-Length: 114\r\n\r\n{\"header\":" HEADER_JSON("2") "}";

static const char rec_range[] = HDR200 "Content-Length: 308\r\n\r\n{\"header\":" HEADER_JSON("3")
    ",\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"},"
    "{\"key\":\"Zm9vMg==\",\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\",\"value\":\"YmFy\"}],\"count\":\"2\"}";

static const char rec_range_more[] = HDR200 "Content-Length: 231\r\n\r\n{\"header\":" HEADER_JSON("3")
    ",\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}],"
    "\"more\":true,\"count\":\"2\"}";

static const char rec_range_none[] = HDR200 "Content-Length: 114\r\n\r\n{\"header\":" HEADER_JSON("3") "}";

static const char rec_txn_ok_body[] = "{\"header\":" HEADER_JSON("4")
    ",\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"4\"}}},{\"response_range\":"
    "{\"header\":{\"revision\":\"4\"},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
    "\"version\":\"1\",\"value\":\"YmFy\"},{\"key\":\"Zm9vMg==\",\"create_revision\":\"3\",\"mod_revision\":\"3\","
    "\"version\":\"1\",\"value\":\"YmFy\"}],\"count\":\"2\"}}]}";

static const char rec_txn_fail_body[] = "{\"header\":" HEADER_JSON("4")
    ",\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"4\"},\"kvs\":[{\"key\":\"bG9jaw==\","
    "\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\",\"value\":\"bWU=\"}],\"count\":\"1\"}},"
    "{\"response_delete_range\":{\"header\":{\"revision\":\"4\"}}}]}";

static const char rec_grant_body[] = "{\"header\":" HEADER_JSON("4") ",\"ID\":\"4111120442286703628\",\"TTL\":\"5\"}";

static const char rec_keepalive[] = HDR200 "Transfer-Encoding: chunked\r\n\r\na4\r\n{\"result\":{\"header\":" HEADER_JSON("5")
    ",\"ID\":\"4111120442286703637\",\"TTL\":\"30\"}}\n\r\n0\r\n\r\n";

static const char rec_keepalive_gone[] = HDR200 "Transfer-Encoding: chunked\r\n\r\n99\r\n{\"result\":{\"header\":"
    HEADER_JSON("5") ",\"ID\":\"4111120442286703637\"}}\n\r\n0\r\n\r\n";

static const char rec_revoke_404[] = HDR404 "Transfer-Encoding: chunked\r\n\r\n6c\r\n{\"error\":\"etcdserver: requested lease not found\","
    "\"message\":\"etcdserver: requested lease not found\",\"code\":5}\r\n0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n";

static const char rec_bad_request[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
    "Date: Fri, 04 Dec 2026 20:20:47 GMT\r\nContent-Length: 62\r\n\r\n"
    "{\"error\":\"unexpected EOF\",\"message\":\"unexpected EOF\",\"code\":3}";

/* created, a put at 6, a txn of two puts at 7, a delete at 8 (no end: a stream) */
static const char rec_watch[] = HDR200 "Transfer-Encoding: chunked\r\n\r\n"
    "8d\r\n{\"result\":{\"header\":" HEADER_JSON("5") ",\"created\":true}}\n\r\n"
    "e9\r\n{\"result\":{\"header\":" HEADER_JSON("6") ",\"events\":[{\"kv\":{\"key\":\"dzE=\",\"create_revision\":\"6\","
    "\"mod_revision\":\"6\",\"version\":\"1\",\"value\":\"aGVsbG8=\"}}]}}\n\r\n"
    "141\r\n{\"result\":{\"header\":" HEADER_JSON("7") ",\"events\":[{\"kv\":{\"key\":\"dzI=\",\"create_revision\":\"7\","
    "\"mod_revision\":\"7\",\"version\":\"1\",\"value\":\"YQ==\"}},{\"kv\":{\"key\":\"dzM=\",\"create_revision\":\"7\","
    "\"mod_revision\":\"7\",\"version\":\"1\",\"value\":\"Yg==\"}}]}}\n\r\n"
    "c2\r\n{\"result\":{\"header\":" HEADER_JSON("8") ",\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"dzE=\","
    "\"mod_revision\":\"8\"}}]}}\n\r\n";

static const char rec_watch_compacted[] = "{\"result\":{\"header\":{\"cluster_id\":\"15118495548433857066\","
    "\"member_id\":\"13668033151171901709\",\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":\"7\"}}";

/* ------------------------------------------------------------------ part 1 */

static void test_base64(void) {
    char enc[64];
    uint8_t dec[64];
    CHECK(base64_encode((const uint8_t *)"foo", 3, enc) == 4 && strcmp(enc, "Zm9v") == 0);
    CHECK(base64_encode((const uint8_t *)"foo2", 4, enc) == 8 && strcmp(enc, "Zm9vMg==") == 0);
    CHECK(base64_encode((const uint8_t *)"", 0, enc) == 0 && enc[0] == 0);
    CHECK(base64_decode("bWU=", 4, dec) == 2 && memcmp(dec, "me", 2) == 0);
    CHECK(base64_decode("", 0, dec) == 0);
    CHECK(base64_decode("bWU", 3, dec) == 2); /* unpadded accepted */
    const char *badv[] = {"b", "bW=", "bWU==", "b!U=", "====", "bWV=", "Zm9v\n", "Zm=v"};
    for (size_t i = 0; i < sizeof badv / sizeof *badv; i++) CHECK(base64_decode(badv[i], strlen(badv[i]), dec) < 0);
    uint8_t in[40];
    int ok = 1;
    for (size_t n = 0; n <= sizeof in; n++) {
        for (size_t i = 0; i < n; i++) in[i] = (uint8_t)(i * 37 + n * 11);
        size_t el = base64_encode(in, n, enc);
        if (el != base64_encoded_len(n) || base64_decode(enc, el, dec) != (long)n || memcmp(in, dec, n)) ok = 0;
    }
    CHECK(ok);
    uint8_t out[8];
    CHECK(etcd_prefix_end("abc", 3, out) == 3 && memcmp(out, "abd", 3) == 0);
    CHECK(etcd_prefix_end("a\xff", 2, out) == 1 && out[0] == 'b');
    CHECK(etcd_prefix_end("\xff\xff", 2, out) == 1 && out[0] == 0);
}

/* Parses a whole answer fed in pieces: split = 0 whole, > 0 at that offset, -1 byte by byte. */
static int parse(const char *text, size_t len, long split, http_resp *r) {
    http_resp_init(r);
    const uint8_t *p = (const uint8_t *)text;
    int rc = HTTP_MORE;
    size_t off = 0;
    while (off < len && rc == HTTP_MORE) {
        size_t n = split < 0 ? 1 : split > 0 && off < (size_t)split ? (size_t)split - off : len - off;
        size_t used = 0;
        rc = http_resp_feed(r, p + off, n, &used);
        off += used;
        if (rc == HTTP_MORE && used != n) return HTTP_BAD;
    }
    return rc;
}

typedef void (*answer_check)(const etcd_result *r);

/* Every split of one recorded answer decodes to the same result. */
static void check_answer(const char *text, int kind, int want_status, answer_check fn) {
    size_t len = strlen(text);
    int bad = 0;
    for (long split = -1; split < (long)len; split++) {
        http_resp r;
        int rc = parse(text, len, split, &r);
        if (rc != HTTP_DONE) {
            bad++;
            http_resp_free(&r);
            continue;
        }
        etcd_answer a;
        etcd_answer_decode(&a, kind, r.status, http_resp_data(&r), http_resp_avail(&r));
        if (a.r.status != want_status) bad++;
        else if (split == 0) fn(&a.r);
        etcd_answer_free(&a);
        http_resp_free(&r);
    }
    CHECK(bad == 0);
}

static char *with_length(const char *body) {
    static char buf[4096];
    snprintf(buf, sizeof buf, HDR200 "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    return buf;
}

static bool kv_is(const etcd_kv *kv, const char *key, const char *value, int64_t crev) {
    return kv->key_len == strlen(key) && memcmp(kv->key, key, kv->key_len) == 0 && kv->value_len == strlen(value) &&
           memcmp(kv->value, value, kv->value_len) == 0 && kv->create_revision == crev;
}

static void c_put(const etcd_result *r) { CHECK(r->revision == 2 && r->nkvs == 0); }
static void c_range(const etcd_result *r) {
    CHECK(r->revision == 3 && r->nkvs == 2 && !r->more);
    if (r->nkvs == 2) {
        CHECK(kv_is(&r->kvs[0], "foo", "bar", 2) && r->kvs[0].mod_revision == 2 && r->kvs[0].version == 1);
        CHECK(kv_is(&r->kvs[1], "foo2", "bar", 3) && r->kvs[1].lease == 0);
    }
}
static void c_range_more(const etcd_result *r) { CHECK(r->nkvs == 1 && r->more); }
static void c_range_none(const etcd_result *r) { CHECK(r->nkvs == 0 && r->revision == 3); }
static void c_txn_ok(const etcd_result *r) {
    CHECK(r->succeeded && r->revision == 4 && r->nkvs == 2);
    if (r->nkvs == 2) CHECK(kv_is(&r->kvs[1], "foo2", "bar", 3));
}
static void c_txn_fail(const etcd_result *r) {
    CHECK(!r->succeeded && r->nkvs == 1);
    if (r->nkvs == 1) CHECK(kv_is(&r->kvs[0], "lock", "me", 4));
}
static void c_grant(const etcd_result *r) { CHECK(r->lease_id == 4111120442286703628LL && r->ttl == 5); }
static void c_keepalive(const etcd_result *r) { CHECK(r->lease_id == 4111120442286703637LL && r->ttl == 30 && r->revision == 5); }
static void c_keepalive_gone(const etcd_result *r) { CHECK(r->lease_id == 4111120442286703637LL && r->ttl == 0); }
static void c_error(const etcd_result *r) { CHECK(r->error && strstr(r->error, "lease not found")); }
static void c_bad_request(const etcd_result *r) { CHECK(r->error && strcmp(r->error, "unexpected EOF") == 0); }
static void c_none(const etcd_result *r) { (void)r; }

static void test_answers(void) {
    check_answer(rec_put, EK_PUT, ETCD_OK, c_put);
    check_answer(rec_range, EK_RANGE, ETCD_OK, c_range);
    check_answer(rec_range_more, EK_RANGE, ETCD_OK, c_range_more);
    check_answer(rec_range_none, EK_RANGE, ETCD_OK, c_range_none);
    check_answer(with_length(rec_txn_ok_body), EK_TXN, ETCD_OK, c_txn_ok);
    check_answer(with_length(rec_txn_fail_body), EK_TXN, ETCD_OK, c_txn_fail);
    check_answer(with_length(rec_grant_body), EK_GRANT, ETCD_OK, c_grant);
    check_answer(rec_keepalive, EK_KEEPALIVE, ETCD_OK, c_keepalive);
    check_answer(rec_keepalive_gone, EK_KEEPALIVE, ETCD_OK, c_keepalive_gone);
    check_answer(rec_revoke_404, EK_REVOKE, ETCD_ERROR, c_error);
    check_answer(rec_bad_request, EK_PUT, ETCD_ERROR, c_bad_request);
    /* wrong shapes: BAD_ANSWER, never a crash */
    check_answer(with_length("[1,2]"), EK_RANGE, ETCD_BAD_ANSWER, c_none);
    check_answer(with_length("{\"kvs\":[{\"key\":\"!!\"}]}"), EK_RANGE, ETCD_BAD_ANSWER, c_none);
    check_answer(with_length("{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"12x\"}]}"), EK_RANGE, ETCD_BAD_ANSWER, c_none);
    check_answer(with_length("{\"header\":{\"revision\":true}}"), EK_PUT, ETCD_BAD_ANSWER, c_none);
    check_answer(with_length("{\"succeeded\":\"yes\"}"), EK_TXN, ETCD_BAD_ANSWER, c_none);
    check_answer(with_length("{\"responses\":[{\"response_range\":{\"kvs\":{}}}]}"), EK_TXN, ETCD_BAD_ANSWER, c_none);
    check_answer(with_length("{\"header\":"), EK_PUT, ETCD_BAD_ANSWER, c_none);
    check_answer(with_length("{\"ID\":\"1\",\"TTL\":\"5\",\"error\":\"too many leases\"}"), EK_GRANT, ETCD_ERROR, c_none);
    check_answer("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nbad", EK_PUT, ETCD_ERROR, c_none);
    /* numbers as JSON numbers are accepted too */
    etcd_answer a;
    const char *nums = "{\"header\":{\"revision\":12},\"ID\":7,\"TTL\":9}";
    etcd_answer_decode(&a, EK_GRANT, 200, (const uint8_t *)nums, strlen(nums));
    CHECK(a.r.status == ETCD_OK && a.r.revision == 12 && a.r.lease_id == 7 && a.r.ttl == 9);
    etcd_answer_free(&a);
}

static void test_http_malformed(void) {
    const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        http_resp r;
        int rc = parse(bad[i], strlen(bad[i]), 0, &r);
        if (rc != HTTP_BAD) fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK(rc == HTTP_BAD);
        http_resp_free(&r);
    }
    /* a head over 64 KiB is refused, not buffered */
    size_t n = 70000;
    char *big = malloc(n + 40);
    strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
    memset(big + strlen(big), 'a', n);
    big[n] = '\0';
    http_resp r;
    CHECK(parse(big, strlen(big), 0, &r) == HTTP_BAD);
    http_resp_free(&r);
    free(big);
    /* close-delimited body, keep-alive rules, 100 Continue skipped */
    const char *eofb = "HTTP/1.1 200 OK\r\n\r\n{\"header\":{}}";
    CHECK(parse(eofb, strlen(eofb), 0, &r) == HTTP_MORE && http_resp_eof(&r) == HTTP_DONE && !r.keep_alive &&
          r.body_len == 13);
    http_resp_free(&r);
    const char *cont = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    CHECK(parse(cont, strlen(cont), -1, &r) == HTTP_DONE && r.status == 200 && !r.keep_alive);
    http_resp_free(&r);
    CHECK(parse(rec_put, strlen(rec_put), 0, &r) == HTTP_DONE && r.keep_alive);
    http_resp_free(&r);
    const char *trunc = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}";
    CHECK(parse(trunc, strlen(trunc), 0, &r) == HTTP_MORE && http_resp_eof(&r) == HTTP_BAD);
    http_resp_free(&r);
}

/* The recorded watch stream split at every byte boundary (and byte by byte)
 * gives the same messages: created, put w1@6, puts w2,w3@7, delete w1@8. */
static int run_watch_stream(long split, char *log, size_t logcap) {
    http_resp r;
    http_resp_init(&r);
    json_split s = {0};
    const uint8_t *p = (const uint8_t *)rec_watch;
    size_t len = strlen(rec_watch), off = 0;
    size_t ll = 0;
    log[0] = 0;
    int rc = 0;
    while (off < len) {
        size_t n = split < 0 ? 1 : split > 0 && off < (size_t)split ? (size_t)split - off : len - off;
        size_t used;
        if (http_resp_feed(&r, p + off, n, &used) != HTTP_MORE || used != n) {
            rc = -1;
            break;
        }
        off += n;
        size_t o, ol;
        int sr;
        while ((sr = json_split_next(&s, http_resp_data(&r), http_resp_avail(&r), &o, &ol)) == 1) {
            etcd_watch_msg m;
            etcd_watch_msg_decode(&m, http_resp_data(&r) + o, ol);
            http_resp_consume(&r, o + ol);
            memset(&s, 0, sizeof s);
            if (m.status != ETCD_OK) rc = -1;
            if (m.created) ll += (size_t)snprintf(log + ll, logcap - ll, "C%lld ", (long long)m.revision);
            for (int i = 0; i < m.nevents && ll < logcap; i++)
                ll += (size_t)snprintf(log + ll, logcap - ll, "%c%.*s@%lld ", m.events[i].is_delete ? 'D' : 'P',
                                       (int)m.events[i].kv.key_len, (const char *)m.events[i].kv.key,
                                       (long long)m.events[i].kv.mod_revision);
            etcd_watch_msg_free(&m);
        }
        if (sr < 0) rc = -1;
    }
    http_resp_free(&r);
    return rc;
}

static void test_watch_stream(void) {
    const char *want = "C5 Pw1@6 Pw2@7 Pw3@7 Dw1@8 ";
    char log[256];
    int bad = 0;
    for (long split = -1; split < (long)strlen(rec_watch); split++)
        if (run_watch_stream(split, log, sizeof log) != 0 || strcmp(log, want) != 0) {
            if (!bad) fprintf(stderr, "split %ld: %s\n", split, log);
            bad++;
        }
    CHECK(bad == 0);
    etcd_watch_msg m;
    etcd_watch_msg_decode(&m, (const uint8_t *)rec_watch_compacted, strlen(rec_watch_compacted));
    CHECK(m.status == ETCD_OK && m.canceled && m.compact_revision == 7 && m.nevents == 0);
    etcd_watch_msg_free(&m);
    const char *canc = "{\"result\":{\"canceled\":true,\"cancel_reason\":\"mvcc: required revision is a future revision\"}}";
    etcd_watch_msg_decode(&m, (const uint8_t *)canc, strlen(canc));
    CHECK(m.status == ETCD_ERROR && m.error && strstr(m.error, "future"));
    etcd_watch_msg_free(&m);
    const char *err = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"no leader\",\"http_status\":\"x\"}}";
    etcd_watch_msg_decode(&m, (const uint8_t *)err, strlen(err));
    CHECK(m.status == ETCD_ERROR && m.error && strcmp(m.error, "no leader") == 0);
    etcd_watch_msg_free(&m);
    const char *badt = "{\"result\":{\"events\":[{\"type\":\"EXPLODE\",\"kv\":{}}]}}";
    etcd_watch_msg_decode(&m, (const uint8_t *)badt, strlen(badt));
    CHECK(m.status == ETCD_BAD_ANSWER);
    etcd_watch_msg_free(&m);
    /* the splitter: braces inside strings, escapes, garbage between objects */
    json_split s = {0};
    const char *t = " {\"a\":\"}\\\"{\"} \n{}";
    size_t o, ol;
    CHECK(json_split_next(&s, (const uint8_t *)t, strlen(t), &o, &ol) == 1 && o == 1 && ol == 12);
    memset(&s, 0, sizeof s);
    CHECK(json_split_next(&s, (const uint8_t *)"x{}", 3, &o, &ol) == -1);
}

/* ------------------------------------------------------------------ part 2 */

static pid_t etcd_pid;
static char etcd_dir[64];
static int port_client, port_dead1, port_dead2, silent_fd = -1, port_silent;

static void kill_etcd(void) {
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGKILL);
        waitpid(etcd_pid, NULL, 0);
        etcd_pid = 0;
    }
    if (etcd_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", etcd_dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", etcd_dir);
        etcd_dir[0] = 0;
    }
}

static void on_signal(int sig) {
    if (etcd_pid > 0) kill(etcd_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A free port: bound to 0 and closed (ports are not reused at once). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* A listener that never accepts: connects succeed, nothing answers. */
static int silent_listener(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static char eps_ok[64], eps_dead_first[128], eps_all_dead[128], eps_silent_first[128], eps_silent[64];

static int start_etcd(void) {
    snprintf(etcd_dir, sizeof etcd_dir, "/tmp/samsa-etcd-test.XXXXXX");
    if (!mkdtemp(etcd_dir)) {
        etcd_dir[0] = 0;
        return -1;
    }
    port_client = free_port();
    int port_peer = free_port();
    port_dead1 = free_port();
    port_dead2 = free_port();
    silent_fd = silent_listener(&port_silent);
    if (port_client < 0 || port_peer < 0 || port_dead1 < 0 || port_dead2 < 0 || silent_fd < 0) return -1;
    char data[128], curl[64], purl[64], cluster[96], logp[128];
    snprintf(data, sizeof data, "%s/data", etcd_dir);
    snprintf(logp, sizeof logp, "%s/etcd.log", etcd_dir);
    snprintf(curl, sizeof curl, "http://127.0.0.1:%d", port_client);
    snprintf(purl, sizeof purl, "http://127.0.0.1:%d", port_peer);
    snprintf(cluster, sizeof cluster, "default=%s", purl);
    snprintf(eps_ok, sizeof eps_ok, "%s", curl);
    snprintf(eps_dead_first, sizeof eps_dead_first, "http://127.0.0.1:%d,%s", port_dead1, curl);
    snprintf(eps_all_dead, sizeof eps_all_dead, "http://127.0.0.1:%d,127.0.0.1:%d", port_dead1, port_dead2);
    snprintf(eps_silent_first, sizeof eps_silent_first, "http://127.0.0.1:%d,%s", port_silent, curl);
    snprintf(eps_silent, sizeof eps_silent, "http://127.0.0.1:%d", port_silent);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        FILE *f = freopen(logp, "w", stderr);
        (void)f;
        if (dup2(2, 1) < 0) _exit(1);
        execl("/usr/bin/etcd", "etcd", "--data-dir", data, "--listen-client-urls", curl, "--advertise-client-urls",
              curl, "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster,
              "--name", "default", (char *)NULL);
        _exit(127);
    }
    etcd_pid = pid;
    return 0;
}

/* ---- helpers: one loop per wait (loop_stop is final for a loop) ---- */

static etcd_sync_result got;
static int ncalls;

static void got_cb(void *arg, const etcd_result *r) {
    kloop *l = arg;
    etcd_sync_result_free(&got);
    etcd_result_copy(&got, r);
    ncalls++;
    loop_stop(l);
}

static etcd_client *client_on(kloop *l, const char *eps, int64_t timeout) {
    char err[256];
    etcd_client *c = etcd_new(l, eps, timeout, err, sizeof err);
    if (!c) fprintf(stderr, "etcd_new: %s\n", err);
    return c;
}

/* ---- the async scenario: one loop, one client, a chain of calls ---- */

typedef struct scen {
    kloop *l;
    etcd_client *c;
    int step;
    int64_t rev_a, lease, rev_lput;
    etcd_watch *w;
    char wlog[512];
    size_t wll;
    int wbatches;
    bool saw_delete, revoked, waiting_delete;
    int failures;
} scen;

static void scen_next(void *arg, const etcd_result *r);

static void scen_watch(void *arg, const etcd_watch_batch *b) {
    scen *s = arg;
    s->wbatches++;
    if (b->status != ETCD_OK || b->compact_revision) {
        s->wll += (size_t)snprintf(s->wlog + s->wll, sizeof s->wlog - s->wll, "END%d ", b->status);
        s->w = NULL;
        return;
    }
    for (int i = 0; i < b->nevents && s->wll < sizeof s->wlog - 64; i++) {
        const etcd_event *e = &b->events[i];
        s->wll += (size_t)snprintf(s->wlog + s->wll, sizeof s->wlog - s->wll, "%c%.*s ", e->is_delete ? 'D' : 'P',
                                   (int)e->kv.key_len, (const char *)e->kv.key);
        if (e->is_delete) s->saw_delete = true;
    }
    if (s->saw_delete && s->waiting_delete) { /* step 13 waits for the delete */
        s->waiting_delete = false;
        scen_next(s, NULL);
    }
}

#define K(s) s, strlen(s)

static void scen_next(void *arg, const etcd_result *r) {
    scen *s = arg;
    int st = s->step++;
    bool ok = true;
    uint8_t end[16];
    /* check the answer to step st-1 ... */
    switch (st) {
    case 0:
        break;
    case 1:
        ok = r->status == ETCD_OK && r->revision > 0;
        s->rev_a = r->revision;
        break;
    case 2:
        ok = r->status == ETCD_OK && r->revision == s->rev_a + 1;
        break;
    case 3:
        ok = r->status == ETCD_OK && r->nkvs == 1 && kv_is(&r->kvs[0], "/t/a", "1", s->rev_a);
        break;
    case 4:
        ok = r->status == ETCD_OK && r->nkvs == 2 && kv_is(&r->kvs[0], "/t/a", "1", s->rev_a) &&
             kv_is(&r->kvs[1], "/t/b", "2", s->rev_a + 1) && !r->more;
        break;
    case 5:
        ok = r->status == ETCD_OK && r->nkvs == 1 && r->more;
        break;
    case 6:
        ok = r->status == ETCD_OK && r->succeeded && r->nkvs == 3;
        break;
    case 7:
        ok = r->status == ETCD_OK && !r->succeeded && r->nkvs == 1 && kv_is(&r->kvs[0], "/t/lock", "me", s->rev_a + 2);
        break;
    case 8:
        ok = r->status == ETCD_OK && r->lease_id != 0 && r->ttl == 30;
        s->lease = r->lease_id;
        break;
    case 9:
        ok = r->status == ETCD_OK;
        s->rev_lput = r->revision;
        break;
    case 10:
        ok = r->status == ETCD_OK && r->nkvs == 1 && r->kvs[0].lease == s->lease;
        break;
    case 11:
        ok = r->status == ETCD_OK && r->ttl > 0 && r->lease_id == s->lease;
        break;
    case 12:
        ok = r->status == ETCD_OK;
        s->revoked = true;
        if (ok && !s->saw_delete) { /* wait for the watch to see the delete */
            s->waiting_delete = true;
            return;
        }
        break;
    case 13: /* reached from the watch callback (r NULL) or the revoke */
        break;
    case 14:
        ok = r->status == ETCD_OK && r->ttl == 0;
        break;
    case 15:
        ok = r->status == ETCD_OK && r->nkvs == 0;
        break;
    }
    if (!ok) {
        s->failures++;
        fprintf(stderr, "async step %d failed: status %d %s\n", st, r ? r->status : 0, r && r->error ? r->error : "");
    }
    /* ... and issue step st */
    int rc = 0;
    switch (st) {
    case 0: rc = etcd_put(s->c, K("/t/a"), K("1"), 0, scen_next, s); break;
    case 1: rc = etcd_put(s->c, K("/t/b"), K("2"), 0, scen_next, s); break;
    case 2: rc = etcd_range(s->c, K("/t/a"), NULL, 0, 0, 0, scen_next, s); break;
    case 3: rc = etcd_range(s->c, K("/t/"), end, etcd_prefix_end("/t/", 3, end), 0, 0, scen_next, s); break;
    case 4: rc = etcd_range(s->c, K("/t/"), end, etcd_prefix_end("/t/", 3, end), 0, 1, scen_next, s); break;
    case 5:
    case 6: {
        etcd_cmp cmp = {.target = ETCD_CMP_CREATE, .result = ETCD_EQUAL, .key = "/t/lock", .key_len = 7, .number = 0};
        etcd_op put = {.type = ETCD_OP_PUT, .key = "/t/lock", .key_len = 7, .value = "me", .value_len = 2};
        etcd_op rng = {.type = ETCD_OP_RANGE, .key = "/t/", .key_len = 3, .range_end = end,
                       .range_end_len = etcd_prefix_end("/t/", 3, end)};
        etcd_op succ[2] = {put, rng};
        etcd_op fail = {.type = ETCD_OP_RANGE, .key = "/t/lock", .key_len = 7};
        rc = etcd_txn(s->c, &cmp, 1, succ, 2, &fail, 1, scen_next, s);
        break;
    }
    case 7: rc = etcd_lease_grant(s->c, 30, scen_next, s); break;
    case 8: rc = etcd_put(s->c, K("/l/x"), K("leased"), s->lease, scen_next, s); break;
    case 9:
        s->w = etcd_watch_start(s->c, K("/l/"), end, etcd_prefix_end("/l/", 3, end), s->rev_lput, scen_watch, s);
        rc = s->w ? etcd_range(s->c, K("/l/x"), NULL, 0, 0, 0, scen_next, s) : -1;
        break;
    case 10: rc = etcd_lease_keepalive(s->c, s->lease, scen_next, s); break;
    case 11: rc = etcd_lease_revoke(s->c, s->lease, scen_next, s); break;
    case 12:
    case 13: rc = etcd_lease_keepalive(s->c, s->lease, scen_next, s); s->step = 14; break;
    case 14: rc = etcd_range(s->c, K("/l/x"), NULL, 0, 0, 0, scen_next, s); break;
    default: loop_stop(s->l); return;
    }
    if (rc != 0) {
        s->failures++;
        fprintf(stderr, "async call %d refused\n", st);
        loop_stop(s->l);
    }
}

static int64_t now_ms(void) { return monotonic_ms(); }

static void stop_timer(kloop *l, void *arg) {
    (void)arg;
    loop_stop(l);
}

static void test_async(void) {
    scen s = {0};
    s.l = loop_new();
    s.c = client_on(s.l, eps_dead_first, 3000); /* the first endpoint refuses */
    CHECK(s.c != NULL);
    if (!s.c) return;
    loop_timer_id guard = loop_timer_add(s.l, 8000, stop_timer, NULL);
    scen_next(&s, NULL);
    loop_run(s.l);
    loop_timer_cancel(s.l, guard);
    CHECK(s.failures == 0);
    CHECK(s.step >= 15);
    CHECK(strcmp(s.wlog, "P/l/x D/l/x ") == 0);
    if (strcmp(s.wlog, "P/l/x D/l/x ") != 0) fprintf(stderr, "watch saw: %s\n", s.wlog);
    if (s.w) etcd_watch_cancel(s.w);
    etcd_free(s.c);
    loop_free(s.l);
}

/* Runs l until a callback stops it or limit_ms passes; returns the elapsed ms. */
static int64_t run_for(kloop *l, int64_t limit_ms) {
    int64_t t0 = now_ms();
    loop_timer_id guard = loop_timer_add(l, limit_ms, stop_timer, NULL);
    loop_run(l);
    loop_timer_cancel(l, guard);
    return now_ms() - t0;
}

static void test_sync(void) {
    kloop *l = loop_new();
    etcd_client *c = client_on(l, eps_ok, 3000);
    CHECK(c != NULL);
    if (!c) {
        loop_free(l);
        return;
    }
    etcd_sync_result r;
    CHECK(etcd_range_sync(c, K("/t/a"), NULL, 0, 0, 0, &r) == ETCD_OK && r.r.nkvs == 1 &&
          kv_is(&r.r.kvs[0], "/t/a", "1", r.r.kvs[0].create_revision) && r.r.kvs[0].create_revision > 0);
    etcd_sync_result_free(&r);
    etcd_cmp cmp = {.target = ETCD_CMP_CREATE, .result = ETCD_EQUAL, .key = "/s/lock", .key_len = 7, .number = 0};
    etcd_op put = {.type = ETCD_OP_PUT, .key = "/s/lock", .key_len = 7, .value = "x", .value_len = 1};
    etcd_op get = {.type = ETCD_OP_RANGE, .key = "/s/lock", .key_len = 7};
    CHECK(etcd_txn_sync(c, &cmp, 1, &put, 1, &get, 1, &r) == ETCD_OK && r.r.succeeded && r.r.nkvs == 0);
    etcd_sync_result_free(&r);
    CHECK(etcd_txn_sync(c, &cmp, 1, &put, 1, &get, 1, &r) == ETCD_OK && !r.r.succeeded && r.r.nkvs == 1 &&
          kv_is(&r.r.kvs[0], "/s/lock", "x", r.r.kvs[0].create_revision));
    etcd_sync_result_free(&r);
    /* compare on the value and the version */
    etcd_cmp cv = {.target = ETCD_CMP_VALUE, .result = ETCD_EQUAL, .key = "/s/lock", .key_len = 7, .value = "x",
                   .value_len = 1};
    etcd_cmp cver = {.target = ETCD_CMP_VERSION, .result = ETCD_GREATER, .key = "/s/lock", .key_len = 7, .number = 0};
    etcd_cmp two[2] = {cv, cver};
    etcd_op del = {.type = ETCD_OP_DELETE, .key = "/s/lock", .key_len = 7};
    CHECK(etcd_txn_sync(c, two, 2, &del, 1, NULL, 0, &r) == ETCD_OK && r.r.succeeded);
    etcd_sync_result_free(&r);
    CHECK(etcd_range_sync(c, K("/s/lock"), NULL, 0, 0, 0, &r) == ETCD_OK && r.r.nkvs == 0);
    etcd_sync_result_free(&r);
    CHECK(etcd_lease_grant_sync(c, 7, &r) == ETCD_OK && r.r.lease_id != 0 && r.r.ttl == 7);
    etcd_sync_result_free(&r);
    /* a future revision: etcd's error, with its message */
    CHECK(etcd_range_sync(c, K("/t/a"), NULL, 0, 1000000, 0, &r) == ETCD_ERROR && r.r.error &&
          strstr(r.r.error, "future revision"));
    etcd_sync_result_free(&r);
    /* the client's own loop is untouched: an async call still works on it */
    ncalls = 0;
    CHECK(etcd_range(c, K("/t/a"), NULL, 0, 0, 0, got_cb, l) == 0);
    run_for(l, 3000);
    CHECK(ncalls == 1 && got.r.status == ETCD_OK && got.r.nkvs == 1);
    etcd_free(c);
    loop_free(l);
}

/* A watch from a past revision sees the history in order, one callback per revision at most. */
typedef struct wrec {
    kloop *l;
    char log[512];
    size_t ll;
    int want_events, nevents;
    int64_t last_rev, compact;
    int end_status;
    bool ended, order_ok;
} wrec;

static void wrec_fn(void *arg, const etcd_watch_batch *b) {
    wrec *w = arg;
    if (b->status != ETCD_OK || b->compact_revision > 0) {
        w->ended = true;
        w->end_status = b->status;
        w->compact = b->compact_revision;
        loop_stop(w->l);
        return;
    }
    for (int i = 0; i < b->nevents; i++) {
        const etcd_event *e = &b->events[i];
        if (e->kv.mod_revision < w->last_rev) w->order_ok = false;
        w->last_rev = e->kv.mod_revision;
        w->nevents++;
        if (w->ll < sizeof w->log - 64)
            w->ll += (size_t)snprintf(w->log + w->ll, sizeof w->log - w->ll, "%c%.*s ", e->is_delete ? 'D' : 'P',
                                      (int)e->kv.key_len, (const char *)e->kv.key);
    }
    if (w->want_events && w->nevents >= w->want_events) loop_stop(w->l);
}

static void test_watch_history_and_compaction(void) {
    kloop *l = loop_new();
    etcd_client *c = client_on(l, eps_ok, 3000);
    if (!c) {
        loop_free(l);
        return;
    }
    etcd_sync_result r;
    CHECK(etcd_range_sync(c, K("/t/a"), NULL, 0, 0, 0, &r) == ETCD_OK && r.r.nkvs == 1);
    int64_t rev_a = r.r.nkvs ? r.r.kvs[0].create_revision : 1;
    etcd_sync_result_free(&r);
    uint8_t end[8];
    wrec w = {.l = l, .want_events = 3, .order_ok = true};
    etcd_watch *wa = etcd_watch_start(c, K("/t/"), end, etcd_prefix_end("/t/", 3, end), rev_a, wrec_fn, &w);
    CHECK(wa != NULL);
    run_for(l, 3000);
    CHECK(strcmp(w.log, "P/t/a P/t/b P/t/lock ") == 0 && w.order_ok && !w.ended);
    if (strcmp(w.log, "P/t/a P/t/b P/t/lock ") != 0) fprintf(stderr, "history watch saw: %s\n", w.log);
    etcd_watch_cancel(wa);
    etcd_free(c);
    loop_free(l);

    /* compact at the current revision, then watch from before it */
    l = loop_new();
    c = client_on(l, eps_ok, 3000);
    if (!c) {
        loop_free(l);
        return;
    }
    CHECK(etcd_range_sync(c, K("/t/a"), NULL, 0, 0, 0, &r) == ETCD_OK);
    int64_t head = r.r.revision;
    etcd_sync_result_free(&r);
    ncalls = 0;
    CHECK(etcd_compact(c, head, got_cb, l) == 0);
    run_for(l, 3000);
    CHECK(ncalls == 1 && got.r.status == ETCD_OK);
    etcd_free(c);
    loop_free(l);
    l = loop_new();
    c = client_on(l, eps_ok, 3000);
    wrec w2 = {.l = l, .order_ok = true};
    etcd_watch *wc = etcd_watch_start(c, K("/t/"), end, etcd_prefix_end("/t/", 3, end), rev_a, wrec_fn, &w2);
    CHECK(wc != NULL);
    run_for(l, 3000);
    CHECK(w2.ended && w2.end_status == ETCD_OK && w2.compact == head && w2.nevents == 0);
    etcd_free(c);
    loop_free(l);
}

static void test_unreachable(void) {
    /* every endpoint refuses: ETCD_UNREACHABLE quickly */
    kloop *l = loop_new();
    etcd_client *c = client_on(l, eps_all_dead, 1000);
    ncalls = 0;
    CHECK(c && etcd_put(c, K("k"), K("v"), 0, got_cb, l) == 0);
    int64_t took = run_for(l, 5000);
    CHECK(ncalls == 1 && got.r.status == ETCD_UNREACHABLE && took <= 1100);
    etcd_free(c);
    loop_free(l);
    /* a silent endpoint (connects, never answers): the timeout bounds the call */
    l = loop_new();
    c = client_on(l, eps_silent, 800);
    ncalls = 0;
    CHECK(c && etcd_range(c, K("k"), NULL, 0, 0, 0, got_cb, l) == 0);
    took = run_for(l, 5000);
    CHECK(ncalls == 1 && got.r.status == ETCD_UNREACHABLE && took >= 790 && took <= 1000);
    etcd_free(c);
    loop_free(l);
    /* silent first endpoint: a read moves on to the next after half the timeout */
    l = loop_new();
    c = client_on(l, eps_silent_first, 2000);
    ncalls = 0;
    CHECK(c && etcd_range(c, K("/t/a"), NULL, 0, 0, 0, got_cb, l) == 0);
    took = run_for(l, 5000);
    CHECK(ncalls == 1 && got.r.status == ETCD_OK && got.r.nkvs == 1 && took >= 990 && took < 2000);
    etcd_free(c);
    loop_free(l);
    /* a watch whose endpoints all refuse ends with ETCD_UNREACHABLE */
    l = loop_new();
    c = client_on(l, eps_all_dead, 1000);
    wrec w = {.l = l, .order_ok = true};
    CHECK(c && etcd_watch_start(c, K("x"), NULL, 0, 0, wrec_fn, &w) != NULL);
    run_for(l, 3000);
    CHECK(w.ended && w.end_status == ETCD_UNREACHABLE);
    etcd_free(c);
    loop_free(l);
    /* sync call, all dead */
    l = loop_new();
    c = client_on(l, eps_all_dead, 1000);
    etcd_sync_result r;
    CHECK(c && etcd_range_sync(c, K("x"), NULL, 0, 0, 0, &r) == ETCD_UNREACHABLE && r.r.error);
    etcd_sync_result_free(&r);
    etcd_free(c);
    loop_free(l);
}

/* etcd dies under a live watch: the watch reports ETCD_UNREACHABLE once. */
static void kill_timer(kloop *l, void *arg) {
    (void)l;
    (void)arg;
    if (etcd_pid > 0) kill(etcd_pid, SIGKILL);
}

static void test_watch_lost(void) {
    kloop *l = loop_new();
    etcd_client *c = client_on(l, eps_ok, 3000);
    wrec w = {.l = l, .order_ok = true};
    etcd_watch *wl = c ? etcd_watch_start(c, K("/zz"), NULL, 0, 0, wrec_fn, &w) : NULL;
    CHECK(wl != NULL);
    loop_timer_add(l, 300, kill_timer, NULL);
    run_for(l, 3000);
    CHECK(w.ended && w.end_status == ETCD_UNREACHABLE);
    waitpid(etcd_pid, NULL, 0);
    etcd_pid = 0;
    etcd_free(c);
    loop_free(l);
}


/* ---- a fake gateway: a fragmented revision is delivered in one callback ---- */

static const char *const frag_msgs[] = {
    "{\"result\":{\"header\":{\"revision\":\"8\"},\"created\":true}}\n",
    "{\"result\":{\"header\":{\"revision\":\"9\"},\"fragment\":true,\"events\":[{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"9\"}}]}}",
    "{\"result\":{\"header\":{\"revision\":\"9\"},\"events\":[{\"kv\":{\"key\":\"Yg==\",\"mod_revision\":\"9\"}}]}}\n",
    "{\"result\":{\"header\":{\"revision\":\"10\"},\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"10\"}}]}}",
};
static char frag_stream[2048];

static void build_frag_stream(void) {
    size_t n = (size_t)snprintf(frag_stream, sizeof frag_stream, HDR200 "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < sizeof frag_msgs / sizeof *frag_msgs; i++)
        n += (size_t)snprintf(frag_stream + n, sizeof frag_stream - n, "%zx\r\n%s\r\n", strlen(frag_msgs[i]), frag_msgs[i]);
}

typedef struct fake {
    kloop *l;
    int lfd, cfd;
    int batches;
    char log[128];
    size_t ll;
} fake;

static void fake_client(kloop *l, int fd, int events, void *arg) {
    (void)events;
    fake *f = arg;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0 && memmem(buf, (size_t)n, "create_request", 14)) {
        if (send(fd, frag_stream, strlen(frag_stream), MSG_NOSIGNAL) < 0) loop_stop(l);
    }
    (void)f;
}

static void fake_accept(kloop *l, int fd, int events, void *arg) {
    (void)events;
    fake *f = arg;
    f->cfd = accept(fd, NULL, NULL);
    if (f->cfd >= 0) loop_watch(l, f->cfd, LOOP_READ, fake_client, f);
}

static void fake_watch_fn(void *arg, const etcd_watch_batch *b) {
    fake *f = arg;
    f->batches++;
    f->ll += (size_t)snprintf(f->log + f->ll, sizeof f->log - f->ll, "[");
    for (int i = 0; i < b->nevents; i++)
        f->ll += (size_t)snprintf(f->log + f->ll, sizeof f->log - f->ll, "%c%.*s@%lld", b->events[i].is_delete ? 'D' : 'P',
                                  (int)b->events[i].kv.key_len, (const char *)b->events[i].kv.key,
                                  (long long)b->events[i].kv.mod_revision);
    f->ll += (size_t)snprintf(f->log + f->ll, sizeof f->log - f->ll, "]");
    if (f->batches == 2) loop_stop(f->l);
}

static void test_fragments(void) {
    fake f = {.cfd = -1};
    int port;
    build_frag_stream();
    f.lfd = silent_listener(&port);
    CHECK(f.lfd >= 0);
    if (f.lfd < 0) return;
    f.l = loop_new();
    loop_watch(f.l, f.lfd, LOOP_READ, fake_accept, &f);
    char eps[64], err[128];
    snprintf(eps, sizeof eps, "http://127.0.0.1:%d", port);
    etcd_client *c = etcd_new(f.l, eps, 2000, err, sizeof err);
    etcd_watch *w = c ? etcd_watch_start(c, "a", 1, "c", 1, 9, fake_watch_fn, &f) : NULL;
    CHECK(w != NULL);
    loop_timer_id guard = loop_timer_add(f.l, 3000, stop_timer, NULL);
    loop_run(f.l);
    loop_timer_cancel(f.l, guard);
    CHECK(strcmp(f.log, "[Pa@9Pb@9][Da@10]") == 0);
    if (strcmp(f.log, "[Pa@9Pb@9][Da@10]") != 0) fprintf(stderr, "fragments: %s\n", f.log);
    etcd_watch_cancel(w);
    etcd_free(c);
    if (f.cfd >= 0) {
        loop_unwatch(f.l, f.cfd);
        close(f.cfd);
    }
    loop_unwatch(f.l, f.lfd);
    close(f.lfd);
    loop_free(f.l);
}

static bool wait_ready(void) {
    kloop *l = loop_new();
    etcd_client *c = client_on(l, eps_ok, 500);
    bool ok = false;
    for (int i = 0; c && i < 50 && !ok; i++) {
        etcd_sync_result r;
        ok = etcd_range_sync(c, K("ready"), NULL, 0, 0, 0, &r) == ETCD_OK;
        etcd_sync_result_free(&r);
        if (!ok) usleep(100000);
    }
    etcd_free(c);
    loop_free(l);
    return ok;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_base64();
    test_answers();
    test_http_malformed();
    test_watch_stream();
    test_fragments();
    int p1 = g_pass, f1 = g_fail;
    struct stat st;
    if (stat("/usr/bin/etcd", &st) == 0 && !getenv("SAMSA_NO_ETCD")) {
        atexit(kill_etcd);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGABRT, on_signal);
        signal(SIGSEGV, on_signal);
        CHECK(start_etcd() == 0);
        if (etcd_pid > 0 && wait_ready()) {
            CHECK(1);
            test_async();
            test_sync();
            test_watch_history_and_compaction();
            test_unreachable();
            test_watch_lost();
        } else {
            CHECK(!"etcd did not start");
        }
        kill_etcd();
        printf("etcd: %d passed, %d failed (codec %d/%d, live etcd %d/%d)\n", g_pass, g_fail, p1, f1, g_pass - p1,
               g_fail - f1);
    } else {
        printf("etcd: %d passed, %d failed (no /usr/bin/etcd: live tests skipped)\n", g_pass, g_fail);
    }
    etcd_sync_result_free(&got);
    if (silent_fd >= 0) close(silent_fd);
    return g_fail ? 1 : 0;
}
