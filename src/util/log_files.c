/* log_files.c - see log_files.h. One mutex around the files: the log
 * cleaner's threads log too, and a rollover must not race a write. */
#include "util/log_files.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *file;     /* name in the directory */
    char *path;           /* dir/file */
    int fd;               /* -1 when closed */
    char period[16];      /* yyyy-MM-dd-HH of what the file holds */
} appender;

enum { SERVER, CONTROLLER, STATE_CHANGE, CLEANER, AUTHORIZER, REQUEST, NAPPENDERS };

static appender appenders[NAPPENDERS] = {
    [SERVER] = {.file = "server.log", .fd = -1},
    [CONTROLLER] = {.file = "controller.log", .fd = -1},
    [STATE_CHANGE] = {.file = "state-change.log", .fd = -1},
    [CLEANER] = {.file = "log-cleaner.log", .fd = -1},
    [AUTHORIZER] = {.file = "kafka-authorizer.log", .fd = -1},
    [REQUEST] = {.file = "kafka-request.log", .fd = -1},
};

/* log4j.properties' loggers with their own appender; a logger's name
 * matches its own name and its descendants (name + "."). */
static const struct {
    const char *logger;
    int appender;
} routes[] = {
    {"org.apache.kafka.controller", CONTROLLER},
    {"kafka.controller", CONTROLLER},
    {"state.change.logger", STATE_CHANGE},
    {"kafka.log.LogCleaner", CLEANER},
    {"kafka.authorizer.logger", AUTHORIZER},
    {"kafka.request.logger", REQUEST},
    {"kafka.network.RequestChannel$", REQUEST},
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool active;

static void period_of(const struct tm *tm, char out[16]) { strftime(out, 16, "%Y-%m-%d-%H", tm); }

/* Opens (appending) the appender's file; its period is that of the file's
 * last change, as log4j takes the file's lastModified at start-up. */
static int open_appender(appender *a) {
    a->fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (a->fd < 0) return -1;
    struct stat st;
    time_t t = fstat(a->fd, &st) == 0 ? st.st_mtime : time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    period_of(&tm, a->period);
    return 0;
}

int log_files_open(const char *dir, char *err, size_t errlen) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the log directory %s: %s", dir, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&mu);
    int rc = 0;
    for (int i = 0; i < NAPPENDERS && rc == 0; i++) {
        appender *a = &appenders[i];
        if (asprintf(&a->path, "%s/%s", dir, a->file) < 0) {
            a->path = NULL;
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else if (open_appender(a) != 0) {
            snprintf(err, errlen, "cannot open %s: %s", a->path, strerror(errno));
            rc = -1;
        }
    }
    active = rc == 0;
    pthread_mutex_unlock(&mu);
    if (rc != 0) log_files_close();
    return rc;
}

void log_files_close(void) {
    pthread_mutex_lock(&mu);
    active = false;
    for (int i = 0; i < NAPPENDERS; i++) {
        if (appenders[i].fd >= 0) close(appenders[i].fd);
        appenders[i].fd = -1;
        free(appenders[i].path);
        appenders[i].path = NULL;
    }
    pthread_mutex_unlock(&mu);
}

static int appender_of(const char *component) {
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t n = strlen(routes[i].logger);
        if (strncmp(component, routes[i].logger, n) == 0 && (component[n] == 0 || component[n] == '.'))
            return routes[i].appender;
    }
    return SERVER;
}

/* log4j's rollOver: the file becomes file.<its period> (replacing one of
 * that name) and a new file starts. When the rename fails the lines keep
 * going to the old file. */
static void roll_over(appender *a, const char *now_period) {
    char *target = NULL;
    if (asprintf(&target, "%s.%s", a->path, a->period) < 0) return;
    close(a->fd);
    a->fd = -1;
    unlink(target);
    if (rename(a->path, target) != 0)
        fprintf(stderr, "log4j:ERROR Failed to rename [%s] to [%s]: %s\n", a->path, target, strerror(errno));
    free(target);
    a->fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    memcpy(a->period, now_period, sizeof a->period);
}

int log_files_write(const char *component, const struct tm *tm, const char *line, size_t len) {
    pthread_mutex_lock(&mu);
    if (!active) {
        pthread_mutex_unlock(&mu);
        return 1;
    }
    int which = appender_of(component);
    appender *a = &appenders[which];
    char now_period[16];
    period_of(tm, now_period);
    if (strcmp(now_period, a->period) > 0) roll_over(a, now_period);
    if (a->fd >= 0) {
        /* One write per line (O_APPEND): lines never interleave. A full disk
         * loses the line, as log4j's appender would. */
        ssize_t n = write(a->fd, line, len);
        (void)n;
    }
    pthread_mutex_unlock(&mu);
    return which == SERVER;
}
