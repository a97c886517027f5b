/* producer_state.h - idempotent producers: per partition, each producer's
 * epoch and its last five batches' sequence ranges (Kafka's
 * ProducerStateManager), so a retried batch is recognised and answered with
 * its first offset instead of being written twice, and a gap or an old
 * epoch is refused.
 *
 * The state is rebuilt at start-up from the batch headers of the partition's
 * last segments; Kafka keeps .snapshot files for that instead, so a producer
 * silent since before those segments is simply unknown here, which accepts
 * any sequence (as Kafka does for an unknown producer).
 */
#ifndef SAMSA_PRODUCER_STATE_H
#define SAMSA_PRODUCER_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/batch_header.h"

/* Batches per producer remembered for duplicate detection (Kafka's
 * ProducerStateEntry.NUM_BATCHES_TO_RETAIN). */
#define PSTATE_BATCHES 5

typedef struct pstate pstate;

pstate *pstate_new(void);
void pstate_free(pstate *s);

/* May the batch (header as sent, baseOffset not yet assigned) be appended?
 * Returns KERR_NONE with *duplicate false (append it), KERR_NONE with
 * *duplicate true and *dup_offset its first offset (already in the log:
 * answer that), or OUT_OF_ORDER_SEQUENCE_NUMBER / INVALID_PRODUCER_EPOCH. */
int16_t pstate_check(const pstate *s, const batch_header *h, bool *duplicate, int64_t *dup_offset);

/* Remember an appended batch (header with its assigned base offset). */
void pstate_record(pstate *s, const batch_header *h);

/* plog_scan_tail_headers callback: ctx is the pstate. */
int pstate_load_header(const batch_header *h, void *ctx);

int pstate_producer_count(const pstate *s);

/* The i-th producer (0 <= i < count), for DescribeProducers. */
typedef struct pstate_info {
    int64_t producer_id;
    int16_t epoch;
    int32_t last_sequence;
    int64_t last_timestamp;
} pstate_info;
int pstate_producer_at(const pstate *s, int i, pstate_info *out);

#endif
