/* partition_txn.c - a partition's log and producer state kept in step (see
 * partition_txn.h). */
#include "broker/partition_txn.h"

#include <errno.h>
#include <string.h>

#include "broker/producer_state.h"
#include "protocol/batch_header.h"
#include "util/log.h"

#define COMPONENT "kafka.log.UnifiedLog"

/* A follower append in progress: the batches not yet applied to the
 * producer state (the roll hook applies those below the new segment
 * before it takes the snapshot). One at a time: the event loop is single
 * threaded. */
static struct {
    partition *p;
    const uint8_t *buf;
    size_t len, pos;
} pending;

static void txn_completed(partition *p, const pstate_txn *t) {
    if (!t->aborted) return;
    aborted_txn a = {ABORTED_TXN_VERSION, t->producer_id, t->first_offset, t->last_offset, t->last_stable_offset};
    if (plog_add_aborted_txn(p->log, &a) != 0)
        log_error(COMPONENT, "[UnifiedLog partition=%s-%d] Could not write the aborted transaction of producer "
                  "%lld (offsets %lld to %lld) to the transaction index: %s", p->topic->name, p->index,
                  (long long)t->producer_id, (long long)t->first_offset, (long long)t->last_offset, strerror(errno));
}

/* Applies the whole batches of buf[*pos, len) to the producer state, up to
 * (not including) the first batch whose last offset >= stop_before. */
static void apply_batches(partition *p, const uint8_t *buf, size_t len, size_t *pos, int64_t stop_before) {
    while (p->producers && *pos + BATCH_HEADER_SIZE <= len) {
        batch_header h;
        batch_header_parse(buf + *pos, &h);
        if (h.batch_length <= 0) break;
        size_t size = batch_total_size(&h);
        if (size > len - *pos || batch_last_offset(&h) >= stop_before) break;
        pstate_txn done;
        if (pstate_apply(p->producers, &h, buf + *pos, size, &done) == 1) txn_completed(p, &done);
        *pos += size;
    }
}

/* plog roll hook: Kafka's roll takes the producer snapshot at the new base
 * offset, with every batch below it applied. */
static void on_roll(void *ctx, int64_t new_base) {
    partition *p = ctx;
    if (!p->producers) return;
    if (pending.p == p) apply_batches(p, pending.buf, pending.len, &pending.pos, new_base);
    pstate_roll_ctx c = {p->producers, plog_dir(p->log)};
    pstate_roll_hook(&c, new_base);
}

static void on_aborted_replayed(const pstate_txn *t, void *ctx) { txn_completed(ctx, t); }

void part_txn_load(partition *p) {
    pstate_free(p->producers);
    p->producers = pstate_new();
    plog_set_roll_hook(p->log, on_roll, p);
    /* Kafka's rebuildProducerState / truncateAndReload: the latest usable
     * snapshot and the log after it; aborted transactions replayed go back
     * to the .txnindex (entries already there are skipped) */
    if (p->producers && pstate_load(p->producers, p->log, wall_clock_ms(), 0, on_aborted_replayed, p) != 0)
        log_warn(COMPONENT, "Could not read producer state of %s-%d: %s", p->topic->name, p->index, strerror(errno));
    if (p->producers) pstate_on_high_watermark(p->producers, p->high_watermark);
}

int part_txn_append_begin(partition *p, uint8_t *batches, size_t len, plog_write *w) {
    return plog_append_begin(p->log, batches, len, p->leader_epoch, w);
}

int part_txn_append_end(partition *p, const plog_write *w, int64_t *first_offset, int64_t *last_offset) {
    if (plog_append_end(p->log, w, first_offset, last_offset) != 0) return -1;
    size_t pos = 0;
    apply_batches(p, w->data, w->len, &pos, INT64_MAX);
    return 0;
}

int part_txn_append(partition *p, uint8_t *batches, size_t len, int64_t *first_offset, int64_t *last_offset) {
    plog_write w;
    if (part_txn_append_begin(p, batches, len, &w) != 0) return -1;
    plog_write_run(&w);
    return part_txn_append_end(p, &w, first_offset, last_offset);
}

int part_txn_append_as_follower(partition *p, const uint8_t *batches, size_t len, int64_t *last_offset_out,
                                size_t *used_out, char *err, size_t errlen) {
    pending.p = p;
    pending.buf = batches;
    pending.len = len;
    pending.pos = 0;
    int rc = plog_append_as_follower(p->log, batches, len, last_offset_out, used_out, err, errlen);
    int saved = errno;
    size_t pos = pending.pos;
    pending.p = NULL;
    if (*used_out > pos) apply_batches(p, batches, *used_out, &pos, INT64_MAX);
    errno = saved;
    return rc;
}

int part_txn_append_as_follower_begin(partition *p, const uint8_t *batches, size_t len, plog_write *w, char *err,
                                      size_t errlen) {
    /* a roll taken here comes before every batch: the snapshot it takes has
     * exactly the batches already applied */
    return plog_append_as_follower_begin(p->log, batches, len, w, err, errlen);
}

int part_txn_append_as_follower_end(partition *p, const plog_write *w, int64_t *last_offset_out, size_t *used_out,
                                    char *err, size_t errlen) {
    int rc = plog_append_as_follower_end(p->log, w, last_offset_out, used_out, err, errlen);
    int saved = errno;
    size_t pos = 0;
    if (*used_out > 0) apply_batches(p, w->data, *used_out, &pos, INT64_MAX);
    errno = saved;
    return rc;
}

int64_t part_txn_lso(const partition *p) {
    if (!p->producers) return p->high_watermark;
    return pstate_last_stable_offset(p->producers, p->high_watermark, plog_start_offset(p->log));
}

void part_txn_hw_moved(partition *p) {
    if (p->producers) pstate_on_high_watermark(p->producers, p->high_watermark);
}

void part_txn_log_start_moved(partition *p) {
    int64_t start = plog_start_offset(p->log);
    if (p->producers) pstate_on_log_start(p->producers, start);
    if (pstate_snapshots_delete_below(plog_dir(p->log), start) != 0)
        log_warn(COMPONENT, "Could not delete producer snapshots below %lld in %s: %s", (long long)start,
                 plog_dir(p->log), strerror(errno));
}

void part_txn_expire_producers(partition *p, int64_t now_ms, int64_t expiration_ms) {
    if (p->producers && expiration_ms > 0) pstate_remove_expired(p->producers, now_ms, expiration_ms);
}

void part_txn_maintenance(partition *p, int64_t now_ms, bool retention_due) {
    int64_t start = plog_start_offset(p->log);
    if (retention_due) plog_tick(p->log, now_ms);
    else plog_housekeeping(p->log, now_ms);
    if (plog_start_offset(p->log) != start) part_txn_log_start_moved(p);
}
