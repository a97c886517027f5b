/* txn_log_format.h - __transaction_state records as Kafka 3.6.1's
 * TransactionLog.formatRecordKeyAndValue prints them (kafka-dump-log
 * --transaction-log-decoder). */
#ifndef SAMSA_TOOLS_TXN_LOG_FORMAT_H
#define SAMSA_TOOLS_TXN_LOG_FORMAT_H

#include <stdint.h>

/* Format one record (value NULL or len < 0 = tombstone). *key_out and
 * *value_out are malloc'd strings the caller frees; NULL when Kafka prints
 * none (an unknown key version has no payload). */
void txn_log_format(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len, char **key_out,
                    char **value_out);

#endif
