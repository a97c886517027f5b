/* producer_state.c - idempotent and transactional producer state per
 * partition, and its snapshots (see producer_state.h). Rules follow Kafka
 * 3.6.1's ProducerStateManager, ProducerStateEntry and ProducerAppendInfo. */
#include "broker/producer_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "storage/fileio.h"
#include "storage/log.h"
#include "storage/producer_snapshot.h"
#include "util/log.h"

#define COMPONENT "kafka.log.ProducerStateManager"
#define NO_EPOCH ((int16_t)-1)

typedef struct pbatch {
    int32_t first_seq, last_seq;
    int64_t first_offset, last_offset;
} pbatch;

typedef struct pentry {
    int64_t producer_id;
    int16_t epoch;
    int32_t coordinator_epoch;
    int64_t last_timestamp;         /* of its last batch or marker */
    int64_t txn_first_offset;       /* ongoing transaction, -1 none */
    pbatch batches[PSTATE_BATCHES]; /* oldest first */
    int nbatches;
    uint32_t generation;            /* bumped by every marker and epoch change (not persisted) */
} pentry;

/* A transaction by first offset; last_offset is -1 while ongoing. */
typedef struct ptxn {
    int64_t producer_id, first_offset, last_offset;
} ptxn;

typedef struct txn_set {
    ptxn *v; /* sorted by first offset */
    int n, cap;
} txn_set;

struct pstate {
    pentry *v; /* sorted by producer id */
    int n, cap;
    txn_set ongoing;      /* undecided */
    txn_set unreplicated; /* decided, marker not yet under the HW */
    int64_t map_end;      /* every batch below is applied */
    int64_t last_snap;    /* offset of the latest snapshot written or loaded */
};

pstate *pstate_new(void) { return calloc(1, sizeof(pstate)); }

void pstate_free(pstate *s) {
    if (!s) return;
    free(s->v);
    free(s->ongoing.v);
    free(s->unreplicated.v);
    free(s);
}

int pstate_producer_count(const pstate *s) { return s->n; }
int pstate_ongoing_count(const pstate *s) { return s->ongoing.n; }
int64_t pstate_map_end_offset(const pstate *s) { return s->map_end; }
void pstate_set_map_end_offset(pstate *s, int64_t offset) { s->map_end = offset; }

/* ---- the producer table ---- */

/* Index of pid, or -(insertion point) - 1. */
static int find(const pstate *s, int64_t pid) {
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->v[mid].producer_id == pid) return mid;
        if (s->v[mid].producer_id < pid) lo = mid + 1;
        else hi = mid - 1;
    }
    return -lo - 1;
}

/* The entry of pid, created empty (Kafka's ProducerStateEntry.empty) if
 * new; NULL without memory (the producer then stays unknown). */
static pentry *entry_for(pstate *s, int64_t pid) {
    int i = find(s, pid);
    if (i >= 0) return &s->v[i];
    i = -i - 1;
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 8;
        pentry *nv = realloc(s->v, sizeof(*nv) * (size_t)nc);
        if (!nv) return NULL;
        s->v = nv;
        s->cap = nc;
    }
    memmove(&s->v[i + 1], &s->v[i], sizeof(pentry) * (size_t)(s->n - i));
    pentry *e = &s->v[i];
    memset(e, 0, sizeof *e);
    e->producer_id = pid;
    e->epoch = NO_EPOCH;
    e->coordinator_epoch = -1;
    e->last_timestamp = -1;
    e->txn_first_offset = -1;
    s->n++;
    return e;
}

/* ---- transaction sets ---- */

static int txn_find(const txn_set *t, int64_t first_offset) {
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->v[mid].first_offset == first_offset) return mid;
        if (t->v[mid].first_offset < first_offset) lo = mid + 1;
        else hi = mid - 1;
    }
    return -lo - 1;
}

/* Insert or replace (a TreeMap put). */
static int txn_put(txn_set *t, ptxn x) {
    int i = txn_find(t, x.first_offset);
    if (i >= 0) {
        t->v[i] = x;
        return 0;
    }
    i = -i - 1;
    if (t->n == t->cap) {
        int nc = t->cap ? t->cap * 2 : 8;
        ptxn *nv = realloc(t->v, sizeof(*nv) * (size_t)nc);
        if (!nv) return -1;
        t->v = nv;
        t->cap = nc;
    }
    memmove(&t->v[i + 1], &t->v[i], sizeof(ptxn) * (size_t)(t->n - i));
    t->v[i] = x;
    t->n++;
    return 0;
}

static void txn_remove_at(txn_set *t, int i) {
    memmove(&t->v[i], &t->v[i + 1], sizeof(ptxn) * (size_t)(t->n - i - 1));
    t->n--;
}

/* Drops completed transactions whose marker is below offset. */
static void remove_unreplicated_below(pstate *s, int64_t offset) {
    int k = 0;
    for (int i = 0; i < s->unreplicated.n; i++)
        if (!(s->unreplicated.v[i].last_offset >= 0 && s->unreplicated.v[i].last_offset < offset))
            s->unreplicated.v[k++] = s->unreplicated.v[i];
    s->unreplicated.n = k;
}

int64_t pstate_first_undecided_offset(const pstate *s) { return s->ongoing.n ? s->ongoing.v[0].first_offset : -1; }

int64_t pstate_first_unstable_offset(const pstate *s) {
    int64_t undecided = pstate_first_undecided_offset(s);
    int64_t unreplicated = s->unreplicated.n ? s->unreplicated.v[0].first_offset : -1;
    if (unreplicated < 0) return undecided;
    if (undecided < 0) return unreplicated;
    return undecided < unreplicated ? undecided : unreplicated;
}

int64_t pstate_last_stable_offset(const pstate *s, int64_t high_watermark, int64_t log_start) {
    int64_t fuo = pstate_first_unstable_offset(s);
    if (fuo >= 0 && fuo < log_start) fuo = log_start; /* maybeIncrementFirstUnstableOffset */
    return fuo >= 0 && fuo < high_watermark ? fuo : high_watermark;
}

void pstate_on_high_watermark(pstate *s, int64_t high_watermark) { remove_unreplicated_below(s, high_watermark); }

void pstate_on_log_start(pstate *s, int64_t log_start) {
    remove_unreplicated_below(s, log_start);
    if (s->map_end < log_start) s->map_end = log_start;
}

/* ---- validation ---- */

/* Sequences wrap from INT32_MAX to 0. */
static int32_t last_seq_of(const batch_header *h) {
    int64_t last = (int64_t)h->base_sequence + h->last_offset_delta;
    return (int32_t)(last > INT32_MAX ? last - INT32_MAX - 1 : last);
}

/* Java's wrapping long subtraction: snapshot fields may hold anything. */
static int64_t wrap_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }

/* DefaultRecordBatch.decrementSequence, wrapping as Java's int does */
static int32_t decrement_seq(int32_t seq, int32_t by) {
    int64_t v = seq < by ? (int64_t)INT32_MAX - ((int64_t)by - seq) + 1 : (int64_t)seq - by;
    return (int32_t)(uint32_t)(uint64_t)v;
}

static bool in_sequence(int32_t last_seq, int32_t next_seq) {
    return (int64_t)next_seq == (int64_t)last_seq + 1 || (next_seq == 0 && last_seq == INT32_MAX);
}

int16_t pstate_check(const pstate *s, const batch_header *h, bool *duplicate, int64_t *dup_offset) {
    *duplicate = false;
    if (h->producer_id < 0 || (h->attributes & BATCH_ATTR_CONTROL)) return KERR_NONE;
    int i = s ? find(s, h->producer_id) : -1;
    if (i < 0) return KERR_NONE; /* unknown producer: any sequence starts it */
    const pentry *e = &s->v[i];
    int32_t last = last_seq_of(h);
    if (h->producer_epoch == e->epoch) {
        for (int k = 0; k < e->nbatches; k++) {
            if (e->batches[k].first_seq == h->base_sequence && e->batches[k].last_seq == last) {
                *duplicate = true;
                *dup_offset = e->batches[k].first_offset;
                return KERR_NONE;
            }
        }
    }
    if (h->producer_epoch < e->epoch) return KERR_INVALID_PRODUCER_EPOCH;
    if (h->producer_epoch != e->epoch) {
        /* a new epoch starts over at sequence 0 */
        if (h->base_sequence != 0 && e->epoch != NO_EPOCH) return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    } else if (e->epoch != NO_EPOCH) {
        int32_t current_last = e->nbatches > 0 ? e->batches[e->nbatches - 1].last_seq : -1;
        if (!in_sequence(current_last, h->base_sequence)) return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    if (e->txn_first_offset >= 0 && !(h->attributes & BATCH_ATTR_TRANSACTIONAL)) return KERR_INVALID_TXN_STATE;
    return KERR_NONE;
}

bool pstate_txn_ongoing(const pstate *s, int64_t producer_id) {
    int i = s ? find(s, producer_id) : -1;
    return i >= 0 && s->v[i].txn_first_offset >= 0;
}

uint32_t pstate_txn_generation(const pstate *s, int64_t producer_id) {
    int i = s ? find(s, producer_id) : -1;
    return i >= 0 ? s->v[i].generation : 0;
}

int16_t pstate_check_epoch(const pstate *s, const batch_header *h) {
    int i = s && h->producer_id >= 0 && !(h->attributes & BATCH_ATTR_CONTROL) ? find(s, h->producer_id) : -1;
    return i >= 0 && h->producer_epoch < s->v[i].epoch ? KERR_INVALID_PRODUCER_EPOCH : KERR_NONE;
}

int16_t pstate_check_marker(const pstate *s, int64_t producer_id, int16_t producer_epoch,
                            int32_t coordinator_epoch) {
    int i = s ? find(s, producer_id) : -1;
    if (i < 0) return KERR_NONE;
    const pentry *e = &s->v[i];
    if (producer_epoch < e->epoch) return KERR_INVALID_PRODUCER_EPOCH;
    if (e->coordinator_epoch > coordinator_epoch) return KERR_TRANSACTION_COORDINATOR_FENCED;
    return KERR_NONE;
}

/* ---- applying batches ---- */

/* ProducerStateEntry.maybeUpdateProducerEpoch */
static void set_epoch(pentry *e, int16_t epoch) {
    if (e->epoch != epoch) {
        e->epoch = epoch;
        e->nbatches = 0;
        e->generation++;
    }
}

static void add_batch(pentry *e, int32_t first_seq, int32_t last_seq, int64_t first_offset, int64_t last_offset) {
    if (e->nbatches == PSTATE_BATCHES) {
        memmove(&e->batches[0], &e->batches[1], sizeof(pbatch) * (PSTATE_BATCHES - 1));
        e->nbatches--;
    }
    e->batches[e->nbatches++] = (pbatch){first_seq, last_seq, first_offset, last_offset};
}

static void apply_data(pstate *s, const batch_header *h) {
    pentry *e = entry_for(s, h->producer_id);
    if (!e) return;
    set_epoch(e, h->producer_epoch);
    add_batch(e, h->base_sequence, last_seq_of(h), h->base_offset, batch_last_offset(h));
    e->last_timestamp = h->max_timestamp;
    if (e->txn_first_offset < 0 && (h->attributes & BATCH_ATTR_TRANSACTIONAL)) {
        /* a transaction begins */
        e->txn_first_offset = h->base_offset;
        txn_put(&s->ongoing, (ptxn){h->producer_id, h->base_offset, -1});
    }
}

/* ProducerAppendInfo.appendEndTxnMarker, then the log's completion. */
static int apply_marker(pstate *s, const batch_header *h, bool aborted, int32_t coordinator_epoch,
                        int64_t timestamp, pstate_txn *done) {
    pentry *e = entry_for(s, h->producer_id);
    if (!e) return 0;
    int completed = 0;
    if (e->txn_first_offset >= 0) {
        done->producer_id = h->producer_id;
        done->first_offset = e->txn_first_offset;
        done->last_offset = h->base_offset;
        done->aborted = aborted;
        /* lastStableOffset(completedTxn): the next incomplete transaction of
         * another producer, else just past the marker */
        done->last_stable_offset = h->base_offset + 1;
        for (int i = 0; i < s->ongoing.n; i++)
            if (s->ongoing.v[i].producer_id != h->producer_id) {
                done->last_stable_offset = s->ongoing.v[i].first_offset;
                break;
            }
        int i = txn_find(&s->ongoing, e->txn_first_offset);
        if (i >= 0) txn_remove_at(&s->ongoing, i);
        txn_put(&s->unreplicated, (ptxn){h->producer_id, done->first_offset, done->last_offset});
        completed = 1;
    }
    set_epoch(e, h->producer_epoch);
    e->generation++;
    e->coordinator_epoch = coordinator_epoch;
    e->txn_first_offset = -1;
    e->last_timestamp = timestamp;
    return completed;
}

/* Unsigned LEB128 with zigzag (Kafka's varint/varlong); -1 when malformed. */
static int read_varlong(const uint8_t *p, size_t len, size_t *pos, int64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1;
}

int pstate_parse_marker(const uint8_t *batch, size_t len, bool *commit, int32_t *coordinator_epoch,
                        int64_t *timestamp) {
    if (len < BATCH_HEADER_SIZE) return -1;
    batch_header h;
    batch_header_parse(batch, &h);
    if (!(h.attributes & BATCH_ATTR_CONTROL) || (h.attributes & BATCH_ATTR_COMPRESSION_MASK)) return -1;
    if (h.record_count <= 0) return 1; /* the whole transaction was cleaned away */
    size_t pos = BATCH_HEADER_SIZE;
    int64_t rec_len, ts_delta, off_delta, key_len, val_len;
    if (read_varlong(batch, len, &pos, &rec_len) != 0 || rec_len < 0 || (uint64_t)rec_len > len - pos) return -1;
    size_t end = pos + (size_t)rec_len;
    if (pos >= end) return -1;
    pos++; /* record attributes */
    if (read_varlong(batch, end, &pos, &ts_delta) != 0 || read_varlong(batch, end, &pos, &off_delta) != 0 ||
        read_varlong(batch, end, &pos, &key_len) != 0 || key_len < 4 || (uint64_t)key_len > end - pos)
        return -1;
    int16_t type = (int16_t)bh_get_u16(batch + pos + 2); /* key: version, type */
    pos += (size_t)key_len;
    if (type != 0 && type != 1) return 1; /* not ABORT (0) nor COMMIT (1) */
    if (read_varlong(batch, end, &pos, &val_len) != 0 || val_len < 6 || (uint64_t)val_len > end - pos) return -1;
    if ((int16_t)bh_get_u16(batch + pos) < 0) return -1; /* value version */
    *commit = type == 1;
    *coordinator_epoch = (int32_t)bh_get_u32(batch + pos + 2);
    *timestamp = (h.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) ? h.max_timestamp : h.base_timestamp + ts_delta;
    return 0;
}

int pstate_apply(pstate *s, const batch_header *h, const uint8_t *batch, size_t len, pstate_txn *done) {
    int rc = 0;
    if (h->producer_id >= 0) {
        if (!(h->attributes & BATCH_ATTR_CONTROL)) {
            apply_data(s, h);
        } else if (!batch) {
            rc = apply_marker(s, h, false, -1, h->max_timestamp, done);
        } else {
            bool commit = false;
            int32_t coordinator_epoch = -1;
            int64_t ts = -1;
            int prc = pstate_parse_marker(batch, len, &commit, &coordinator_epoch, &ts);
            if (prc == 0) rc = apply_marker(s, h, !commit, coordinator_epoch, ts, done);
            else if (prc < 0) rc = -1;
        }
    }
    int64_t next = batch_next_offset(h);
    if (next > s->map_end) s->map_end = next;
    return rc;
}

void pstate_record(pstate *s, const batch_header *h) {
    pstate_txn done;
    pstate_apply(s, h, NULL, 0, &done);
}

int pstate_load_header(const batch_header *h, void *ctx) {
    pstate_record(ctx, h);
    return 0;
}

void pstate_remove_expired(pstate *s, int64_t now_ms, int64_t expiration_ms) {
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        const pentry *e = &s->v[i];
        bool expired = e->txn_first_offset < 0 && wrap_sub(now_ms, e->last_timestamp) >= expiration_ms;
        if (!expired) s->v[k++] = s->v[i];
    }
    s->n = k;
}

void pstate_truncate_fully(pstate *s, int64_t offset) {
    s->n = 0;
    s->ongoing.n = 0;
    s->unreplicated.n = 0;
    s->map_end = offset;
    s->last_snap = 0;
}

int pstate_producer_at(const pstate *s, int i, pstate_info *out) {
    if (!s || i < 0 || i >= s->n) return -1;
    const pentry *e = &s->v[i];
    out->producer_id = e->producer_id;
    out->epoch = e->epoch;
    out->last_sequence = e->nbatches ? e->batches[e->nbatches - 1].last_seq : -1;
    out->last_timestamp = e->last_timestamp;
    out->coordinator_epoch = e->coordinator_epoch;
    out->current_txn_start_offset = e->txn_first_offset;
    out->last_data_offset = e->nbatches ? e->batches[e->nbatches - 1].last_offset : -1;
    return 0;
}

/* ---- snapshots ---- */

static void to_snapshot(const pentry *e, psnap_entry *out) {
    const pbatch *last = e->nbatches ? &e->batches[e->nbatches - 1] : NULL;
    out->producer_id = e->producer_id;
    out->epoch = e->epoch;
    out->last_sequence = last ? last->last_seq : -1;
    out->last_offset = last ? last->last_offset : -1;
    out->offset_delta = last ? (int32_t)wrap_sub(last->last_offset, last->first_offset) : 0;
    out->timestamp = e->last_timestamp;
    out->coordinator_epoch = e->coordinator_epoch;
    out->current_txn_first_offset = e->txn_first_offset;
}

/* ProducerStateManager.loadProducerEntry */
static void from_snapshot(pstate *s, const psnap_entry *in) {
    pentry *e = entry_for(s, in->producer_id);
    if (!e) return;
    e->epoch = in->epoch;
    e->coordinator_epoch = in->coordinator_epoch;
    e->last_timestamp = in->timestamp;
    e->txn_first_offset = in->current_txn_first_offset >= 0 ? in->current_txn_first_offset : -1;
    e->nbatches = 0;
    if (in->last_offset >= 0)
        add_batch(e, decrement_seq(in->last_sequence, in->offset_delta), in->last_sequence,
                  wrap_sub(in->last_offset, in->offset_delta), in->last_offset);
    if (e->txn_first_offset >= 0) txn_put(&s->ongoing, (ptxn){in->producer_id, e->txn_first_offset, -1});
}

int pstate_snapshot_write(pstate *s, const char *dir, int64_t offset) {
    s->map_end = offset;
    return pstate_take_snapshot(s, dir);
}

static int take_snapshot(pstate *s, const char *dir, bool sync) {
    if (s->map_end <= s->last_snap) return 0; /* not worth another one */
    psnap_entry *v = s->n ? malloc(sizeof(*v) * (size_t)s->n) : NULL;
    if (s->n && !v) return -1;
    for (int i = 0; i < s->n; i++) to_snapshot(&s->v[i], &v[i]);
    int rc = psnap_write_sync(dir, s->map_end, v, s->n, sync);
    free(v);
    if (rc == 0) s->last_snap = s->map_end;
    return rc;
}

int pstate_take_snapshot(pstate *s, const char *dir) { return take_snapshot(s, dir, true); }

void pstate_roll_hook(void *ctx, int64_t new_base) {
    (void)new_base;
    pstate_roll_ctx *c = ctx;
    if (c->s && take_snapshot(c->s, c->dir, false) != 0) /* on the event loop: no fsync */
        log_warn(COMPONENT, "Could not write a producer snapshot in %s at offset %lld: %s", c->dir,
                 (long long)c->s->map_end, strerror(errno));
}

static bool expired(const psnap_entry *e, int64_t now_ms, int64_t expiration_ms) {
    return expiration_ms > 0 && e->current_txn_first_offset < 0 && wrap_sub(now_ms, e->timestamp) >= expiration_ms;
}

/* pstate_snapshot_load on snapshots already listed (offs ascending, n of
 * them; taken over): the offset of the snapshot loaded, or -1 for none (an
 * unreadable one is skipped with a warning, a corrupt one deleted). */
static int64_t load_listed_snapshot(pstate *s, const char *dir, int64_t *offs, int n, int64_t log_start,
                                    int64_t max_offset, int64_t now_ms, int64_t expiration_ms) {
    pstate_truncate_fully(s, log_start);
    int64_t loaded = -1;
    for (int i = n - 1; i >= 0 && loaded < 0; i--) {
        if (offs[i] > max_offset || offs[i] <= log_start) { /* truncateAndReload: out of range */
            psnap_delete(dir, offs[i]);
            continue;
        }
        psnap_entry *v;
        int nv;
        char why[160] = "";
        int rc = psnap_read(dir, offs[i], &v, &nv, why, sizeof why);
        if (rc == PSNAP_CORRUPT) {
            log_warn(COMPONENT, "Failed to load producer snapshot from '%s/%020lld.snapshot': %s", dir,
                     (long long)offs[i], why);
            psnap_delete(dir, offs[i]);
            continue;
        }
        if (rc != 0) {
            log_warn(COMPONENT, "Could not read producer snapshot '%s/%020lld.snapshot': %s", dir,
                     (long long)offs[i], strerror(errno));
            continue;
        }
        for (int k = 0; k < nv; k++)
            if (!expired(&v[k], now_ms, expiration_ms)) from_snapshot(s, &v[k]);
        free(v);
        s->map_end = offs[i];
        s->last_snap = offs[i];
        loaded = offs[i];
    }
    /* anything older than the loaded one stays: Kafka deletes by segment */
    free(offs);
    return loaded;
}

int64_t pstate_snapshot_load(pstate *s, const char *dir, int64_t log_start, int64_t max_offset, int64_t now_ms,
                             int64_t expiration_ms) {
    int64_t *offs;
    int n;
    if (psnap_list(dir, &offs, &n) != 0) return -2;
    return load_listed_snapshot(s, dir, offs, n, log_start, max_offset, now_ms, expiration_ms);
}

int pstate_snapshots_delete_below(const char *dir, int64_t log_start) {
    return psnap_delete_below(dir, log_start) < 0 ? -1 : 0;
}

/* Kafka's removeStraySnapshots: a snapshot not at a segment base goes,
 * except the latest such one when it is above every base (written at clean
 * shutdown). offs (ascending) loses the deleted ones. */
static void remove_stray_snapshots(plog *l, int64_t *offs, int *n) {
    int nsegs = plog_segment_count(l);
    int64_t max_base = nsegs ? plog_segment_base(l, nsegs - 1) : -1;
    int stray = -1; /* index of the latest snapshot not at a base */
    int si = 0;     /* segments and snapshots are both ascending */
    for (int i = 0; i < *n; i++) {
        while (si < nsegs && plog_segment_base(l, si) < offs[i]) si++;
        bool at_base = si < nsegs && plog_segment_base(l, si) == offs[i];
        if (at_base) continue;
        if (stray >= 0) {
            psnap_delete(plog_dir(l), offs[stray]);
            offs[stray] = -1; /* offsets are never negative */
        }
        stray = i;
    }
    if (stray >= 0 && nsegs && offs[stray] < max_base) {
        psnap_delete(plog_dir(l), offs[stray]);
        offs[stray] = -1;
    }
    int kept = 0;
    for (int i = 0; i < *n; i++)
        if (offs[i] >= 0) offs[kept++] = offs[i];
    *n = kept;
}

typedef struct replay_ctx {
    pstate *s;
    pstate_aborted_fn on_aborted;
    void *ctx;
    int64_t from;
    int err; /* errno of a failed read of a marker */
} replay_ctx;

/* A control batch holds one small record; more is never needed. */
#define MARKER_READ_MAX 4096

static int replay_batch(const batch_header *h, int fd, int64_t file_pos, void *ctx) {
    replay_ctx *c = ctx;
    if (batch_last_offset(h) < c->from) return 0;
    pstate_txn done;
    int rc;
    if (h->producer_id >= 0 && (h->attributes & BATCH_ATTR_CONTROL)) {
        uint8_t buf[MARKER_READ_MAX];
        size_t want = batch_total_size(h) < sizeof buf ? batch_total_size(h) : sizeof buf;
        if (fio_pread_full(fd, buf, want, file_pos) != 0) {
            c->err = errno;
            return 1;
        }
        rc = pstate_apply(c->s, h, buf, want, &done);
    } else {
        rc = pstate_apply(c->s, h, NULL, 0, &done);
    }
    if (rc == 1 && done.aborted && c->on_aborted) c->on_aborted(&done, c->ctx);
    return 0;
}

int pstate_load(pstate *s, plog *l, int64_t now_ms, int64_t expiration_ms, pstate_aborted_fn on_aborted,
                void *ctx) {
    const char *dir = plog_dir(l);
    int64_t log_start = plog_start_offset(l), leo = plog_end_offset(l);
    int64_t *offs;
    int n;
    /* one listing for both: plog_open's when loading right after the open */
    if (plog_take_open_snapshots(l, &offs, &n) != 0 && psnap_list(dir, &offs, &n) != 0) return -1;
    remove_stray_snapshots(l, offs, &n);
    int64_t from = load_listed_snapshot(s, dir, offs, n, log_start, leo, now_ms, expiration_ms);
    if (from < 0) {
        /* no snapshot: the last two segments, as before snapshots existed */
        int nsegs = plog_segment_count(l);
        from = nsegs >= 2 ? plog_segment_base(l, nsegs - 2) : log_start;
        if (from < log_start) from = log_start;
        s->map_end = from;
    }
    if (from < leo) {
        replay_ctx c = {s, on_aborted, ctx, from, 0};
        if (plog_scan_batches_from(l, from, replay_batch, &c) != 0) return -1;
        if (c.err) {
            errno = c.err;
            return -1;
        }
    }
    s->map_end = leo;
    return 0;
}
