/* log.c - Kafka-layout log lines (see log.h). */
#include "util/log.h"
#include "util/log_files.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static log_level min_level = LOG_INFO;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(log_level lvl) { min_level = lvl; }

void log_msg(log_level lvl, const char *component, const char *fmt, ...) {
    if (lvl < min_level) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[2400];
    int len = snprintf(line, sizeof line, "[%s,%03d] %s %s (%s)\n", ts, (int)(tv.tv_usec / 1000),
                       level_names[lvl], msg, component);
    if (len < 0) return;
    if ((size_t)len >= sizeof line) { /* cut, but still one line */
        len = (int)sizeof line - 1;
        line[len - 1] = '\n';
    }
    /* $LOG_DIR's files (log_files.h); only the root logger's lines go on to
     * stdout. One lock over both so server.log and stdout keep one order
     * when several threads log; one fputs per line so lines never interleave. */
    pthread_mutex_lock(&write_lock);
    if (log_files_write(component, &tm, line, (size_t)len)) {
        fputs(line, stdout);
        fflush(stdout);
    }
    pthread_mutex_unlock(&write_lock);
}
