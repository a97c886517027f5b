/* test_producer_state.c - idempotent producer rules (producer_state.c). */
#include <stdio.h>
#include <string.h>

#include "broker/producer_state.h"
#include "protocol/errors.h"

static int passed, failed;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) passed++;                                                      \
        else {                                                                   \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

static batch_header hdr(int64_t pid, int16_t epoch, int32_t seq, int32_t count, int64_t base_offset) {
    batch_header h;
    memset(&h, 0, sizeof h);
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = seq;
    h.last_offset_delta = count - 1;
    h.record_count = count;
    h.base_offset = base_offset;
    h.magic = 2;
    return h;
}

/* Check and, if to be appended, record at offset *next. */
static int16_t append(pstate *s, batch_header h, int64_t *next, bool *dup, int64_t *dup_offset) {
    int16_t ec = pstate_check(s, &h, dup, dup_offset);
    if (ec == KERR_NONE && !*dup) {
        h.base_offset = *next;
        pstate_record(s, &h);
        *next += h.last_offset_delta + 1;
    }
    return ec;
}

int main(void) {
    pstate *s = pstate_new();
    int64_t next = 0, dupo = -1;
    bool dup = false;
    /* unknown producer: any first sequence is taken */
    CHECK(append(s, hdr(1, 0, 10, 2, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(1, 0, 12, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    /* the last five batches are recognised, older ones are not */
    for (int i = 0; i < 5; i++) CHECK(append(s, hdr(1, 0, 13 + i, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(1, 0, 17, 1, 0), &next, &dup, &dupo) == KERR_NONE && dup && dupo == 7);
    CHECK(append(s, hdr(1, 0, 13, 1, 0), &next, &dup, &dupo) == KERR_NONE && dup && dupo == 3);
    CHECK(append(s, hdr(1, 0, 12, 1, 0), &next, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* a duplicate must match the whole range */
    CHECK(append(s, hdr(1, 0, 16, 2, 0), &next, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* epochs */
    CHECK(append(s, hdr(1, 1, 5, 1, 0), &next, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK(append(s, hdr(1, 1, 0, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(1, 0, 18, 1, 0), &next, &dup, &dupo) == KERR_INVALID_PRODUCER_EPOCH);
    /* sequence numbers wrap from INT32_MAX to 0 */
    CHECK(append(s, hdr(2, 0, INT32_MAX - 1, 2, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(2, 0, 0, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(2, 0, 1, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    /* non-idempotent batches and control batches are not tracked */
    CHECK(append(s, hdr(-1, -1, -1, 3, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    batch_header ctl = hdr(3, 0, 9, 1, 0);
    ctl.attributes = BATCH_ATTR_CONTROL;
    CHECK(append(s, ctl, &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(pstate_producer_count(s) == 2);
    /* many producers stay ordered for look-up */
    for (int64_t pid = 1000; pid > 100; pid -= 7) pstate_record(s, &(batch_header){.producer_id = pid, .base_sequence = 0});
    bool all = true;
    for (int64_t pid = 1000; pid > 100; pid -= 7) {
        batch_header h = hdr(pid, 0, 0, 1, 0);
        all = all && pstate_check(s, &h, &dup, &dupo) == KERR_NONE && dup;
    }
    CHECK(all);
    pstate_free(s);
    printf("producer_state: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
