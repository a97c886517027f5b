/* log.c - Kafka-layout log lines (see log.h). */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static log_level min_level = LOG_INFO;
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
    /* One fprintf per line so lines never interleave. */
    fprintf(stdout, "[%s,%03d] %s %s (%s)\n", ts, (int)(tv.tv_usec / 1000), level_names[lvl], msg,
            component);
    fflush(stdout);
}
