/* placement.c - Kafka 3.6.1's striped replica placement (see placement.h).
 *
 * The structure follows Kafka's: a broker list per rack and fencing state
 * (sorted, random start offset, round-robin per iteration epoch), a rack list
 * (sorted names, random start offset, one more per partition), and a shuffle
 * of everything after as many partitions as there are unfenced brokers.
 *
 * Two Java details are reproduced because they decide which random number
 * goes where: rack names compare as Java Strings (UTF-16 code units), and
 * racks are initialised and shuffled in the iteration order of Kafka's
 * HashMap<Optional<String>, Rack> (bucket of the spread String.hashCode(),
 * then insertion order). Not reproduced: the order of a HashMap bin that
 * Java turns into a tree (9+ rack names in one bucket), only the initial and
 * shuffle random draws would differ.
 */
#include "controller/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"

/* ---- broker lists ---- */

typedef struct blist {
    int32_t *ids;
    int n;
    int index;  /* taken in the current epoch */
    int offset; /* added to index, modulo n */
    int epoch;  /* last iteration epoch seen */
} blist;

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static void blist_init(blist *b, placement_rand_fn rnd, void *ctx) {
    if (b->n == 0)
        return;
    qsort(b->ids, (size_t)b->n, sizeof(int32_t), cmp_i32);
    b->offset = (int)rnd(ctx, (uint32_t)b->n);
}

/* Collections.shuffle on a random-access list. */
static void shuffle_i32(int32_t *v, int n, placement_rand_fn rnd, void *ctx) {
    for (int i = n; i > 1; i--) {
        int j = (int)rnd(ctx, (uint32_t)i);
        int32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Next broker of this epoch; false when the list is empty or exhausted. */
static bool blist_next(blist *b, int epoch, int32_t *id) {
    if (b->n == 0)
        return false;
    if (b->epoch != epoch) {
        b->epoch = epoch;
        b->index = 0;
        b->offset = (b->offset + 1) % b->n;
    }
    if (b->index >= b->n)
        return false;
    *id = b->ids[(b->index + b->offset) % b->n];
    b->index++;
    return true;
}

/* ---- racks ---- */

typedef struct prack {
    const char *name; /* NULL = no rack */
    uint16_t *u16;    /* name as Java's UTF-16 code units */
    size_t u16len;
    int32_t jhash; /* Optional<String>.hashCode() */
    blist fenced, unfenced;
} prack;

/* UTF-8 to UTF-16 code units; a byte that starts no valid sequence stands for
 * itself (Latin-1), so any byte string maps to some Java String. */
static uint16_t *to_utf16(const char *s, size_t *outlen) {
    size_t n = strlen(s);
    uint16_t *u = malloc((n + 1) * sizeof(uint16_t));
    if (!u)
        return NULL;
    size_t k = 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        uint32_t cp = *p;
        int len = 1;
        if (cp >= 0xC2 && cp <= 0xDF && end - p >= 2 && (p[1] & 0xC0) == 0x80) {
            cp = ((cp & 0x1F) << 6) | (p[1] & 0x3F);
            len = 2;
        } else if (cp >= 0xE0 && cp <= 0xEF && end - p >= 3 && (p[1] & 0xC0) == 0x80 &&
                   (p[2] & 0xC0) == 0x80) {
            uint32_t c = ((cp & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
            if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) {
                cp = c;
                len = 3;
            }
        } else if (cp >= 0xF0 && cp <= 0xF4 && end - p >= 4 && (p[1] & 0xC0) == 0x80 &&
                   (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) {
            uint32_t c = ((cp & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
                         ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
            if (c >= 0x10000 && c <= 0x10FFFF) {
                cp = c;
                len = 4;
            }
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            u[k++] = (uint16_t)(0xD800 + (cp >> 10));
            u[k++] = (uint16_t)(0xDC00 + (cp & 0x3FF));
        } else {
            u[k++] = (uint16_t)cp;
        }
        p += len;
    }
    *outlen = k;
    return u;
}

/* OptionalStringComparator: empty first, then String.compareTo. */
static int rack_cmp(const prack *a, const prack *b) {
    if (!a->name)
        return b->name ? -1 : 0;
    if (!b->name)
        return 1;
    size_t n = a->u16len < b->u16len ? a->u16len : b->u16len;
    for (size_t i = 0; i < n; i++)
        if (a->u16[i] != b->u16[i])
            return (int)a->u16[i] - (int)b->u16[i];
    return a->u16len < b->u16len ? -1 : a->u16len > b->u16len;
}

/* ---- the rack list ---- */

typedef struct rlist {
    prack *racks; /* in order of first appearance */
    int nracks;
    int *names;     /* rack indexes, in Kafka's rackNames order */
    int *hashorder; /* rack indexes, in HashMap iteration order */
    int total, unfenced;
    int epoch, offset;
    placement_rand_fn rnd;
    void *ctx;
} rlist;

static int cmp_names(const void *a, const void *b, void *racks) {
    const prack *r = racks;
    return rack_cmp(&r[*(const int *)a], &r[*(const int *)b]);
}

typedef struct hkey {
    uint32_t bucket;
    int seq;
} hkey;

static int cmp_hkey(const void *a, const void *b) {
    const hkey *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void rlist_free(rlist *rl) {
    if (rl->racks) {
        for (int i = 0; i < rl->nracks; i++)
            free(rl->racks[i].u16);
        if (rl->nracks > 0)
            free(rl->racks[0].fenced.ids); /* the pool, see rlist_build */
    }
    free(rl->racks);
    free(rl->names);
    free(rl->hashorder);
    memset(rl, 0, sizeof(*rl));
}

static bool same_rack(const char *a, const char *b) {
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int rlist_build(rlist *rl, const placement_broker *brokers, int nbrokers, placement_rand_fn rnd,
                       void *ctx) {
    memset(rl, 0, sizeof(*rl));
    rl->rnd = rnd;
    rl->ctx = ctx;
    if (nbrokers <= 0)
        return 0;
    int *rack_of = malloc((size_t)nbrokers * sizeof(int));
    rl->racks = calloc((size_t)nbrokers, sizeof(prack));
    int32_t *pool = malloc((size_t)nbrokers * sizeof(int32_t));
    if (!rack_of || !rl->racks || !pool)
        goto oom;
    for (int i = 0; i < nbrokers; i++) {
        int r = 0;
        while (r < rl->nracks && !same_rack(rl->racks[r].name, brokers[i].rack))
            r++;
        if (r == rl->nracks) {
            prack *k = &rl->racks[rl->nracks++];
            k->name = brokers[i].rack;
            if (k->name) {
                k->u16 = to_utf16(k->name, &k->u16len);
                if (!k->u16)
                    goto oom;
                uint32_t h = 0;
                for (size_t j = 0; j < k->u16len; j++)
                    h = 31 * h + k->u16[j];
                k->jhash = (int32_t)h;
            }
        }
        rack_of[i] = r;
        if (brokers[i].fenced)
            rl->racks[r].fenced.n++;
        else
            rl->racks[r].unfenced.n++;
    }
    /* Carve the pool: rack 0's fenced list starts at pool[0] (freed through it). */
    int32_t *p = pool;
    for (int r = 0; r < rl->nracks; r++) {
        rl->racks[r].fenced.ids = p;
        p += rl->racks[r].fenced.n;
        rl->racks[r].unfenced.ids = p;
        p += rl->racks[r].unfenced.n;
        rl->racks[r].fenced.n = rl->racks[r].unfenced.n = 0;
    }
    pool = NULL;
    for (int i = 0; i < nbrokers; i++) {
        prack *k = &rl->racks[rack_of[i]];
        blist *b = brokers[i].fenced ? &k->fenced : &k->unfenced;
        b->ids[b->n++] = brokers[i].id;
        rl->total++;
        if (!brokers[i].fenced)
            rl->unfenced++;
    }
    free(rack_of);
    rack_of = NULL;

    /* HashMap iteration order: table of 16 buckets, doubled while more than
     * 3/4 full; bucket = (h ^ h >>> 16) & (cap - 1); a bin keeps insertion
     * order (a resize splits bins without reordering them). */
    rl->hashorder = malloc((size_t)rl->nracks * sizeof(int));
    rl->names = malloc((size_t)rl->nracks * sizeof(int));
    hkey *keys = malloc((size_t)rl->nracks * sizeof(hkey));
    if (!rl->hashorder || !rl->names || !keys) {
        free(keys);
        goto oom;
    }
    uint32_t cap = 16;
    while ((uint32_t)rl->nracks > cap / 4 * 3)
        cap *= 2;
    for (int r = 0; r < rl->nracks; r++) {
        uint32_t h = (uint32_t)rl->racks[r].jhash;
        keys[r].bucket = (h ^ (h >> 16)) & (cap - 1);
        keys[r].seq = r;
    }
    qsort(keys, (size_t)rl->nracks, sizeof(hkey), cmp_hkey);
    for (int r = 0; r < rl->nracks; r++)
        rl->hashorder[r] = keys[r].seq;
    free(keys);

    for (int r = 0; r < rl->nracks; r++) {
        prack *k = &rl->racks[rl->hashorder[r]];
        blist_init(&k->fenced, rnd, ctx);
        blist_init(&k->unfenced, rnd, ctx);
    }
    for (int r = 0; r < rl->nracks; r++)
        rl->names[r] = r;
    qsort_r(rl->names, (size_t)rl->nracks, sizeof(int), cmp_names, rl->racks);
    rl->offset = rl->nracks == 0 ? 0 : (int)rnd(ctx, (uint32_t)rl->nracks);
    return 0;
oom:
    free(rack_of);
    free(pool);
    rlist_free(rl);
    return -1;
}

static void rlist_shuffle(rlist *rl) {
    /* Collections.shuffle(rackNames), then each rack in HashMap order. */
    for (int i = rl->nracks; i > 1; i--) {
        int j = (int)rl->rnd(rl->ctx, (uint32_t)i);
        int t = rl->names[i - 1];
        rl->names[i - 1] = rl->names[j];
        rl->names[j] = t;
    }
    for (int r = 0; r < rl->nracks; r++) {
        prack *k = &rl->racks[rl->hashorder[r]];
        shuffle_i32(k->fenced.ids, k->fenced.n, rl->rnd, rl->ctx);
        shuffle_i32(k->unfenced.ids, k->unfenced.n, rl->rnd, rl->ctx);
    }
}

enum rf_check { RF_OK, RF_NOT_POSITIVE, RF_ALL_FENCED, RF_TOO_FEW };

/* Kafka's three InvalidReplicationFactorException texts. */
static int16_t rf_error(enum rf_check c, int rf, int total, char *errmsg, size_t errlen) {
    if (c == RF_OK)
        return 0;
    if (errmsg && errlen > 0) {
        if (c == RF_NOT_POSITIVE)
            snprintf(errmsg, errlen, "Invalid replication factor %d: the replication factor must be positive.",
                     rf);
        else if (c == RF_ALL_FENCED)
            snprintf(errmsg, errlen, "All brokers are currently fenced.");
        else
            snprintf(errmsg, errlen,
                     "The target replication factor of %d cannot be reached because only %d broker(s) are "
                     "registered.",
                     rf, total);
    }
    return KERR_INVALID_REPLICATION_FACTOR;
}

/* RackList.place: one partition's replicas into out[0..rf). */
static int16_t rlist_place(rlist *rl, int rf, int32_t *out, char *errmsg, size_t errlen) {
    /* RackList.place checks the broker count before fencing. */
    enum rf_check c = rf <= 0                ? RF_NOT_POSITIVE
                      : rf > rl->total       ? RF_TOO_FEW
                      : rl->unfenced == 0    ? RF_ALL_FENCED
                                             : RF_OK;
    if (c != RF_OK)
        return rf_error(c, rf, rl->total, errmsg, errlen);
    if (rl->epoch == rl->unfenced && rl->unfenced > 1) {
        rlist_shuffle(rl);
        rl->epoch = 0;
    }
    if (rl->offset == rl->nracks)
        rl->offset = 0;
    /* Kafka loops until a broker turns up; a whole lap of the racks with none
     * found twice in a row would repeat forever, so that is an error here. */
    int guard = 2 * rl->nracks + 2;
    int first = rl->offset;
    for (int tries = 0;; tries++) {
        if (tries > guard)
            goto stuck;
        if (blist_next(&rl->racks[rl->names[first]].unfenced, rl->epoch, &out[0]))
            break;
        if (++first == rl->nracks)
            first = 0;
    }
    int idx = rl->offset;
    for (int replica = 1; replica < rf; replica++) {
        bool found = false;
        for (int tries = 0; !found; tries++) {
            if (tries > guard)
                goto stuck;
            if (idx == first) {
                first = -1;
            } else {
                prack *k = &rl->racks[rl->names[idx]];
                found = blist_next(&k->unfenced, rl->epoch, &out[replica]) ||
                        blist_next(&k->fenced, rl->epoch, &out[replica]);
            }
            if (++idx == rl->nracks)
                idx = 0;
        }
    }
    rl->epoch++;
    rl->offset++;
    return 0;
stuck:
    if (errmsg && errlen > 0)
        snprintf(errmsg, errlen, "Replica placement found no broker for a replica.");
    return KERR_UNKNOWN_SERVER_ERROR;
}

int16_t placement_place(const placement_broker *brokers, int nbrokers, int32_t start_partition,
                        int32_t nparts, int16_t rf, placement_rand_fn rnd, void *rnd_ctx, int32_t *out,
                        char *errmsg, size_t errlen) {
    (void)start_partition; /* Kafka's PlacementSpec carries it; the striped placer ignores it */
    if (errmsg && errlen > 0)
        errmsg[0] = '\0';
    rlist rl;
    if (rlist_build(&rl, brokers, nbrokers, rnd, rnd_ctx) != 0) {
        if (errmsg && errlen > 0)
            snprintf(errmsg, errlen, "Out of memory placing replicas.");
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    /* StripedReplicaPlacer.place checks fencing before the broker count. */
    enum rf_check c = rf <= 0             ? RF_NOT_POSITIVE
                      : rl.unfenced == 0  ? RF_ALL_FENCED
                      : rf > rl.total     ? RF_TOO_FEW
                                          : RF_OK;
    int16_t err = rf_error(c, rf, rl.total, errmsg, errlen);
    for (int32_t i = 0; !err && i < nparts; i++)
        err = rlist_place(&rl, rf, out + (size_t)i * (size_t)rf, errmsg, errlen);
    rlist_free(&rl);
    return err;
}

uint32_t placement_rand_splitmix(void *ctx, uint32_t bound) {
    uint64_t *state = ctx;
    if (bound <= 1)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t z;
    do {
        z = (*state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
    } while (z >= limit);
    return (uint32_t)(z % bound);
}
