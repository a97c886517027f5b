/* test_log_files.c - LOG_DIR's files (util/log_files.h) and the systemd
 * notification (util/sd_notify.h), with the clock passed in: lines go to the
 * file of their logger (the root logger's also to stdout), an hour change
 * renames the file to <file>.<its hour> as log4j's DailyRollingFileAppender
 * and starts a new one, a clock going back does not roll, and a restart
 * appends. sd_notify sends one datagram to a path or an abstract name and
 * nothing without NOTIFY_SOCKET. Prints "log_files: N passed, M failed". */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unit_check.h"
#include "util/log_files.h"
#include "util/sd_notify.h"

static char dir[] = "/tmp/samsa-test-log-files-XXXXXX";

static char *slurp(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[4][4096];
    static int next;
    char *b = buf[next++ % 4];
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

static struct tm at(int hour, int min) {
    struct tm tm = {.tm_year = 200, .tm_mon = 0, .tm_mday = 2, .tm_hour = hour, .tm_min = min};
    return tm;
}

static int write_line(const char *component, struct tm tm, const char *line) {
    return log_files_write(component, &tm, line, strlen(line));
}

static void test_routes_and_rollover(void) {
    char err[256];
    CHECK(log_files_write("kafka.server.KafkaServer", &(struct tm){0}, "x\n", 2) == 1,
          "without log_files_open every line goes to stdout only");
    CHECK(log_files_open(dir, err, sizeof err) == 0, "open: %s", err);
    /* The files were just created: their period is this hour. The test's
     * clock is in 2100, so each file's first line rolls the empty file away
     * to <file>.<this hour> and starts 2100-01-02 09:00's. */
    CHECK(write_line("kafka.server.KafkaServer", at(9, 0), "a\n") == 1, "root logger: also stdout");
    CHECK(write_line("org.apache.kafka.controller.QuorumController", at(9, 1), "c\n") == 0,
          "controller: not on stdout");
    CHECK(write_line("kafka.controller.ReplicationControlManager", at(9, 2), "d\n") == 0, "ZK-mode controller");
    CHECK(write_line("kafka.log.LogCleaner", at(9, 3), "l\n") == 0, "cleaner");
    CHECK(write_line("kafka.log.LogCleanerManager", at(9, 3), "m\n") == 1, "a sibling name is not a child");
    CHECK(write_line("kafka.authorizer.logger", at(9, 4), "z\n") == 0, "authorizer");
    CHECK(write_line("state.change.logger", at(9, 5), "s\n") == 0, "state change");
    CHECK(write_line("kafka.network.RequestChannel$", at(9, 6), "r\n") == 0, "request channel");
    CHECK(write_line("kafka.server.KafkaServer", at(9, 59), "b\n") == 1, "same hour");
    CHECK(strcmp(slurp("server.log"), "a\nm\nb\n") == 0, "server.log: %s", slurp("server.log"));
    CHECK(strcmp(slurp("controller.log"), "c\nd\n") == 0, "controller.log");
    CHECK(strcmp(slurp("log-cleaner.log"), "l\n") == 0, "log-cleaner.log");
    CHECK(strcmp(slurp("kafka-authorizer.log"), "z\n") == 0, "kafka-authorizer.log");
    CHECK(strcmp(slurp("state-change.log"), "s\n") == 0, "state-change.log");
    CHECK(strcmp(slurp("kafka-request.log"), "r\n") == 0, "kafka-request.log");

    /* 10:00: server.log (09's lines) becomes server.log.2100-01-02-09. */
    CHECK(write_line("kafka.server.KafkaServer", at(10, 0), "e\n") == 1, "next hour");
    CHECK(slurp("server.log.2100-01-02-09") && strcmp(slurp("server.log.2100-01-02-09"), "a\nm\nb\n") == 0,
          "rolled file");
    CHECK(strcmp(slurp("server.log"), "e\n") == 0, "new server.log: %s", slurp("server.log"));
    CHECK(strcmp(slurp("controller.log"), "c\nd\n") == 0, "each file rolls on its own next line");
    /* The clock going back does not roll. */
    CHECK(write_line("kafka.server.KafkaServer", at(9, 30), "f\n") == 1, "back");
    CHECK(strcmp(slurp("server.log"), "e\nf\n") == 0, "no roll back: %s", slurp("server.log"));
    /* Two hours later: named by the hour the file was for (10). */
    CHECK(write_line("kafka.server.KafkaServer", at(12, 5), "g\n") == 1, "later");
    CHECK(slurp("server.log.2100-01-02-10") && strcmp(slurp("server.log.2100-01-02-10"), "e\nf\n") == 0,
          "second roll");
    CHECK(strcmp(slurp("server.log"), "g\n") == 0, "after the second roll");
    log_files_close();
    CHECK(log_files_write("kafka.server.KafkaServer", &(struct tm){0}, "x\n", 2) == 1, "closed: stdout only");

    /* A restart appends to what is there. */
    CHECK(log_files_open(dir, err, sizeof err) == 0, "reopen: %s", err);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    CHECK(log_files_write("kafka.server.KafkaServer", &tm, "h\n", 2) == 1, "after restart");
    CHECK(strcmp(slurp("server.log"), "g\nh\n") == 0, "appended: %s", slurp("server.log"));
    log_files_close();
}

static void test_open_fails_cleanly(void) {
    char err[256] = "";
    CHECK(log_files_open("/proc/samsa-no-such-dir/x", err, sizeof err) == -1, "unwritable dir");
    CHECK(strstr(err, "cannot create the log directory") != NULL, "message: %s", err);
    CHECK(log_files_write("kafka.server.KafkaServer", &(struct tm){0}, "x\n", 2) == 1, "stdout only after a failure");
}

static void test_sd_notify(void) {
    unsetenv("NOTIFY_SOCKET");
    CHECK(sd_notify_state("READY=1") == 0, "no socket: nothing sent");
    for (int abstract = 0; abstract < 2; abstract++) {
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char name[108];
        socklen_t len;
        if (abstract) {
            snprintf(name, sizeof name, "@samsa-unit-notify-%d", (int)getpid());
            memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
            len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
        } else {
            snprintf(name, sizeof name, "%s/notify", dir);
            memcpy(sa.sun_path, name, strlen(name) + 1);
            len = sizeof sa;
        }
        CHECK(bind(fd, (struct sockaddr *)&sa, len) == 0, "bind %s", name);
        setenv("NOTIFY_SOCKET", name, 1);
        CHECK(sd_notify_state("READY=1") == 1, "sent to %s", name);
        char buf[64] = {0};
        ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        CHECK(n == 7 && strcmp(buf, "READY=1") == 0, "received %zd '%s'", n, buf);
        close(fd);
        if (!abstract) unlink(name);
    }
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK(sd_notify_state("READY=1") == -1, "not a path or an abstract name");
    setenv("NOTIFY_SOCKET", "@samsa-unit-nobody-listens", 1);
    CHECK(sd_notify_state("STOPPING=1") == -1, "nobody listens: an error the caller may ignore");
    unsetenv("NOTIFY_SOCKET");
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_routes_and_rollover();
    test_open_fails_cleanly();
    test_sd_notify();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("log_files: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
