/* log_files.h - the broker's log files, as Kafka's config/log4j.properties
 * lays them out in $LOG_DIR (kafka.logs.dir): loggers under
 * org.apache.kafka.controller and kafka.controller go to controller.log,
 * state.change.logger to state-change.log, kafka.log.LogCleaner to
 * log-cleaner.log, kafka.authorizer.logger to kafka-authorizer.log,
 * kafka.request.logger and kafka.network.RequestChannel$ to
 * kafka-request.log (those only there, log4j's additivity=false), and every
 * other logger to server.log and stdout. Each file rolls over hourly as
 * log4j's DailyRollingFileAppender with DatePattern '.'yyyy-MM-dd-HH: the
 * first line of a new hour renames server.log to server.log.<its hour> and
 * starts a new one. Old rolled files are not deleted (neither are Kafka's). */
#ifndef SAMSA_LOG_FILES_H
#define SAMSA_LOG_FILES_H

#include <stddef.h>
#include <time.h>

/* Starts writing into dir (created if missing, one level, as
 * kafka-run-class.sh's mkdir). Returns 0, or -1 with a message in err. */
int log_files_open(const char *dir, char *err, size_t errlen);
void log_files_close(void);

/* Writes one formatted line (with its newline) for component at local time
 * tm to its file; returns 1 when the line also goes to stdout (the root
 * logger), 0 when it does not. Without log_files_open, returns 1 and writes
 * nothing. Thread-safe. */
int log_files_write(const char *component, const struct tm *tm, const char *line, size_t len);

#endif
