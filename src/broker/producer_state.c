/* producer_state.c - idempotent producer state per partition (see
 * producer_state.h). Rules follow Kafka 3.6.1's ProducerAppendInfo. */
#include "broker/producer_state.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"

typedef struct pbatch {
    int32_t first_seq, last_seq;
    int64_t first_offset;
} pbatch;

typedef struct pentry {
    int64_t producer_id;
    int16_t epoch;
    int64_t last_timestamp;         /* max timestamp of its last batch */
    pbatch batches[PSTATE_BATCHES]; /* oldest first */
    int nbatches;
} pentry;

struct pstate {
    pentry *v;     /* sorted by producer id */
    int n, cap;
};

pstate *pstate_new(void) { return calloc(1, sizeof(pstate)); }

void pstate_free(pstate *s) {
    if (!s) return;
    free(s->v);
    free(s);
}

int pstate_producer_count(const pstate *s) { return s->n; }

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

/* Sequences wrap from INT32_MAX to 0. */
static int32_t last_seq_of(const batch_header *h) {
    int64_t last = (int64_t)h->base_sequence + h->last_offset_delta;
    return (int32_t)(last > INT32_MAX ? last - INT32_MAX - 1 : last);
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
    if (h->producer_epoch < e->epoch) return KERR_INVALID_PRODUCER_EPOCH;
    if (h->producer_epoch != e->epoch) {
        /* a new epoch starts over at sequence 0 */
        return h->base_sequence == 0 ? KERR_NONE : KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    int32_t last = last_seq_of(h);
    for (int k = 0; k < e->nbatches; k++) {
        if (e->batches[k].first_seq == h->base_sequence && e->batches[k].last_seq == last) {
            *duplicate = true;
            *dup_offset = e->batches[k].first_offset;
            return KERR_NONE;
        }
    }
    if (e->nbatches > 0 && !in_sequence(e->batches[e->nbatches - 1].last_seq, h->base_sequence))
        return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    return KERR_NONE;
}

void pstate_record(pstate *s, const batch_header *h) {
    if (h->producer_id < 0 || (h->attributes & BATCH_ATTR_CONTROL)) return;
    int i = find(s, h->producer_id);
    if (i < 0) {
        i = -i - 1;
        if (s->n == s->cap) {
            int nc = s->cap ? s->cap * 2 : 8;
            pentry *nv = realloc(s->v, sizeof(*nv) * (size_t)nc);
            if (!nv) return; /* without memory this producer just stays unknown */
            s->v = nv;
            s->cap = nc;
        }
        memmove(&s->v[i + 1], &s->v[i], sizeof(pentry) * (size_t)(s->n - i));
        memset(&s->v[i], 0, sizeof(pentry));
        s->v[i].producer_id = h->producer_id;
        s->v[i].epoch = h->producer_epoch;
        s->n++;
    }
    pentry *e = &s->v[i];
    if (h->producer_epoch != e->epoch) {
        e->epoch = h->producer_epoch;
        e->nbatches = 0;
    }
    if (e->nbatches == PSTATE_BATCHES) {
        memmove(&e->batches[0], &e->batches[1], sizeof(pbatch) * (PSTATE_BATCHES - 1));
        e->nbatches--;
    }
    e->batches[e->nbatches].first_seq = h->base_sequence;
    e->batches[e->nbatches].last_seq = last_seq_of(h);
    e->batches[e->nbatches].first_offset = h->base_offset;
    e->nbatches++;
    e->last_timestamp = h->max_timestamp;
}

int pstate_producer_at(const pstate *s, int i, pstate_info *out) {
    if (!s || i < 0 || i >= s->n) return -1;
    const pentry *e = &s->v[i];
    out->producer_id = e->producer_id;
    out->epoch = e->epoch;
    out->last_sequence = e->nbatches ? e->batches[e->nbatches - 1].last_seq : -1;
    out->last_timestamp = e->last_timestamp;
    return 0;
}

int pstate_load_header(const batch_header *h, void *ctx) {
    pstate_record(ctx, h);
    return 0;
}
