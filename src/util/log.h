/* log.h - log lines in Kafka's layout, to stdout:
 *   [2026-01-01 10:00:00,123] INFO [KafkaServer id=1] started (kafka.server.KafkaServer)
 * The component in parentheses names the module that speaks. */
#ifndef SAMSA_LOG_H
#define SAMSA_LOG_H

typedef enum { LOG_TRACE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level lvl);
void log_msg(log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_info(comp, ...) log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)
#define log_debug(comp, ...) log_msg(LOG_DEBUG, comp, __VA_ARGS__)

#endif
