/* log.c - a partition's log: segments, recovery, append, fetch, lookups and
 * retention (see log.h). Offsets and positions follow Kafka 3.6.1's
 * UnifiedLog / LocalLog / LogSegment; only the mechanics are our own. */
#include "storage/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "protocol/batch_header.h"
#include "storage/checkpoint.h"
#include "storage/cleaner.h"
#include "storage/epoch_cache.h"
#include "storage/fileio.h"
#include "storage/page_trim.h"
#include "storage/producer_snapshot.h"
#include "storage/segment.h"
#include "storage/syncer.h"
#include "storage/txn_index.h"
#include "util/crc32c.h"

#define MIN_BATCH_LENGTH (BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD)

/* A deleted segment's files, renamed *.deleted, kept open until its delay
 * passes so fetch responses that reference its fd can still be sent. */
#define SEG_FILES 4 /* .log, .index, .timeindex, .txnindex */
typedef struct trash_entry {
    int fds[SEG_FILES];
    char *paths[SEG_FILES];
    int64_t deleted_ms;
} trash_entry;

struct plog {
    char *dir, *topic;
    int32_t partition;
    log_config cfg;
    segment *segs;          /* ascending base offsets; the last is active */
    int nsegs, capsegs;
    int64_t log_start, leo, recovery_point;
    int64_t hw;             /* -1: follows the LEO */
    int64_t last_flush_ms;
    epoch_cache epochs;
    trash_entry *trash;
    int ntrash, captrash;
    bool failed;
    /* Created by this process and not yet known durable: its directory and
     * small files were written without fsync (see syncer.h). */
    bool unsynced;
    bool dir_created;       /* plog_open made the directory */
    /* The producer snapshots plog_open's listing found, ascending, until
     * plog_take_open_snapshots hands them over (or plog_forget_open_snapshots). */
    int64_t *open_snaps;
    int nopen_snaps;
    bool open_snaps_valid;
    uint64_t sync_ticket;   /* 0: not handed to the syncer yet */
    plog_roll_fn roll_hook; /* producer-state hook: told of every roll */
    void *roll_ctx;
    /* The transaction index of one segment (usually the active one), kept
     * open between appends and read_committed fetches; txi_base is its
     * segment's base, -1 when none is open. dirty: appended since fsync. */
    txn_index txi;
    int64_t txi_base;
    bool txi_dirty;
    /* The log cleaner (log_cleaner.h): segments below cleaning_end are being
     * cleaned (-1: none); deleting or truncating any of them aborts that
     * clean (Kafka's abortAndPauseCleaning) by setting cleaning_aborted, so
     * its swap is refused. truncated_to: lowest offset truncated to since
     * the cleaner last asked (INT64_MAX: none; maybeTruncateCheckpoint). */
    int64_t cleaning_end;
    bool cleaning_aborted;
    int64_t truncated_to;
    /* Between plog_append_begin and plog_append_end: the append in flight */
    bool append_open;
    seg_mark append_mark;
    int64_t append_first, append_last;
    int32_t append_epoch;
    /* The page cache kept to a window (log_config.page_cache_window_bytes):
     * ranges of appended bytes, oldest first, each handed to page_trim.h
     * once the log has grown a window past its end. pc_total counts the
     * bytes appended since open; pc_base/pc_seen/pc_cursor follow the
     * segment being appended to: its size last seen, and how far it has
     * been cut into ranges. */
    struct pc_range {
        int64_t base, pos, len, end_total;
    } *pc_ranges;
    int pc_head, pc_count, pc_cap;
    int64_t pc_total, pc_base, pc_seen, pc_cursor;
};

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void log_config_defaults(log_config *c) {
    c->segment_bytes = 1073741824;
    c->segment_ms = 604800000;
    c->index_interval_bytes = 4096;
    c->segment_index_bytes = 10485760;
    c->flush_messages = INT64_MAX;
    c->flush_ms = INT64_MAX;
    c->retention_bytes = -1;
    c->retention_ms = 604800000;
    c->file_delete_delay_ms = 60000;
    c->retention_delete = true;
    c->prealloc_chunk_bytes = 0;
    c->page_cache_window_bytes = 0;
}

static segment *active(plog *l) { return &l->segs[l->nsegs - 1]; }
static int64_t effective_hw(const plog *l) { return l->hw >= 0 && l->hw < l->leo ? l->hw : l->leo; }

/* Index of the segment holding offset: the last with base <= offset (0 if
 * offset is below all). */
static int floor_segment(const plog *l, int64_t offset) {
    int lo = 0, hi = l->nsegs - 1, found = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (l->segs[mid].base <= offset) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

static int push_segment(plog *l, const segment *s) {
    if (l->nsegs == l->capsegs) {
        int ncap = l->capsegs ? l->capsegs * 2 : 2; /* most logs have one or two segments */
        segment *n = realloc(l->segs, (size_t)ncap * sizeof *n);
        if (!n) {
            errno = ENOMEM;
            return -1;
        }
        l->segs = n;
        l->capsegs = ncap;
    }
    l->segs[l->nsegs++] = *s;
    return 0;
}

/* ---- transaction indexes ---- */

/* Closes the cached transaction index (fsynced first when dirty). */
static int txi_forget(plog *l) {
    int rc = 0;
    if (l->txi_base >= 0) {
        if (l->txi_dirty && txi_flush(&l->txi) != 0) rc = -1;
        txi_close(&l->txi);
    }
    l->txi_base = -1;
    l->txi_dirty = false;
    return rc;
}

/* Opens x for the segment at base and reads its last entry's offset into
 * x->last_offset (Kafka only checks appends made since open; we also skip
 * entries already in the file, so replaying the log after a crash is
 * idempotent). */
static int txi_open_tail(txn_index *x, const char *dir, int64_t base) {
    if (txi_open(x, dir, base) != 0) return -1;
    int64_t whole = x->size - x->size % ABORTED_TXN_SIZE;
    if (x->fd >= 0 && whole >= ABORTED_TXN_SIZE) {
        uint8_t buf[ABORTED_TXN_SIZE];
        aborted_txn t;
        if (fio_pread_full(x->fd, buf, sizeof buf, whole - ABORTED_TXN_SIZE) != 0) {
            int saved = errno;
            txi_close(x);
            errno = saved;
            return -1;
        }
        aborted_txn_decode(buf, &t);
        x->last_offset = t.last_offset;
        x->size = whole; /* a trailing partial entry is overwritten */
    }
    return 0;
}

/* The cached index, (re)opened for the segment at base. */
static txn_index *txi_for(plog *l, int64_t base) {
    if (l->txi_base == base) return &l->txi;
    if (txi_forget(l) != 0) return NULL;
    if (txi_open_tail(&l->txi, l->dir, base) != 0) return NULL;
    l->txi_base = base;
    return &l->txi;
}

/* ---- deleting segments ---- */

static void trash_purge(trash_entry *t) {
    for (int k = 0; k < SEG_FILES; k++) {
        if (t->fds[k] >= 0) storage_fio.close(t->fds[k]);
        if (t->paths[k]) {
            storage_fio.unlink(t->paths[k]);
            free(t->paths[k]);
        }
    }
}

/* Renames segment i's files to *.deleted and moves it to the trash (or, if
 * that is impossible, closes and unlinks at once). Removes it from segs. */
static int delete_segment(plog *l, int i, int64_t now_ms) {
    segment *s = &l->segs[i];
    if (s->base < l->cleaning_end) l->cleaning_aborted = true;
    static const char *const suffixes[SEG_FILES] = {SEG_LOG_SUFFIX, SEG_INDEX_SUFFIX, SEG_TIMEINDEX_SUFFIX,
                                                    TXN_INDEX_SUFFIX};
    seg_close_indexes(s); /* only the .log descriptor moves to the trash */
    if (l->txi_base == s->base) txi_forget(l);
    int fds[SEG_FILES] = {s->log_fd, -1, -1, -1};
    trash_entry t = {{-1, -1, -1, -1}, {NULL, NULL, NULL, NULL}, now_ms};
    int rc = 0;
    for (int k = 0; k < SEG_FILES; k++) {
        char from[PATH_MAX], to[PATH_MAX];
        t.fds[k] = fds[k];
        if (seg_path(from, sizeof from, l->dir, s->base, suffixes[k]) != 0 ||
            snprintf(to, sizeof to, "%s%s", from, SEG_DELETED_SUFFIX) >= (int)sizeof to) {
            rc = -1;
            continue;
        }
        if (storage_fio.rename(from, to) != 0) {
            if (errno != ENOENT) rc = -1;
            storage_fio.unlink(from); /* best effort: never leave it live */
            continue;
        }
        t.paths[k] = strdup(to);
    }
    memmove(&l->segs[i], &l->segs[i + 1], (size_t)(l->nsegs - i - 1) * sizeof *l->segs);
    l->nsegs--;
    if (l->ntrash == l->captrash) {
        int ncap = l->captrash ? l->captrash * 2 : 4;
        trash_entry *n = realloc(l->trash, (size_t)ncap * sizeof *n);
        if (!n) {
            trash_purge(&t); /* cannot keep it: unlink now */
            return rc;
        }
        l->trash = n;
        l->captrash = ncap;
    }
    l->trash[l->ntrash++] = t;
    return rc;
}

static int make_durable(plog *l);

/* ---- rolling ---- */

/* Starts a new active segment at new_base. A non-empty old active segment
 * is sealed and everything up to it fsynced (Kafka flushes on roll); an
 * empty one is replaced. */
static int roll(plog *l, int64_t new_base) {
    segment *old = active(l);
    bool replace = old->size == 0;
    if (replace && old->base == new_base) return 0;
    if (txi_forget(l) != 0) return -1; /* the old segment's aborted transactions are durable with it */
    if (!replace) {
        if (seg_seal(old) != 0 || make_durable(l) != 0) return -1;
        for (int i = floor_segment(l, l->recovery_point); i < l->nsegs; i++)
            if (seg_flush(&l->segs[i]) != 0) {
                l->failed = true;
                return -1;
            }
        if (l->recovery_point < new_base) l->recovery_point = new_base;
    }
    int64_t now = wall_ms();
    segment s;
    if (seg_open(&s, l->dir, new_base, l->cfg.segment_index_bytes, true, now) != 0) return -1;
    if (s.size != 0 || seg_reset_indexes(&s) != 0) {
        if (s.size != 0) errno = EEXIST; /* never clobber data we do not know */
        int saved = errno;
        seg_close(&s);
        errno = saved;
        return -1;
    }
    s.bytes_since_index = 0;
    if (push_segment(l, &s) != 0) {
        int saved = errno;
        seg_close(&s);
        errno = saved;
        return -1;
    }
    if (replace && delete_segment(l, l->nsegs - 2, now) != 0) return -1;
    if (fio_fsync_dir(l->dir) != 0) return -1;
    if (l->roll_hook) l->roll_hook(l->roll_ctx, new_base); /* producer-state hook */
    return 0;
}

/* ---- opening and recovery ---- */

static int parse_segment_name(const char *name, int64_t *base, const char **suffix) {
    for (int i = 0; i < 20; i++)
        if (name[i] < '0' || name[i] > '9') return -1;
    if (name[20] != '.') return -1;
    char digits[21];
    memcpy(digits, name, 20);
    digits[20] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(digits, &end, 10);
    if (errno || v < 0) return -1;
    *base = v;
    *suffix = name + 20;
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Lists segment bases, removing leftovers of interrupted operations
 * (*.deleted, *.cleaned, *.swap, *.tmp) and index files without a log.
 * With stop_at_clean, a file of an interrupted clean or deletion (*.deleted,
 * *.cleaned, *.swap) stops the listing before anything is removed and
 * returns 1: cleaner_recover_dir must see those first. */
typedef struct dir_listing {
    int64_t *bases;       /* segment bases (.log files), ascending */
    int n;
    int64_t max_txi_base; /* largest base of a .txnindex file, -1 if none */
    int64_t *snaps;       /* producer snapshot offsets, ascending */
    int nsnaps;
} dir_listing;

static void listing_free(dir_listing *ls) {
    free(ls->bases);
    free(ls->snaps);
    memset(ls, 0, sizeof *ls);
}

static int push_i64(int64_t **v, int *n, int *cap, int64_t x) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        int64_t *nv = realloc(*v, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static int list_segments(const char *dir, bool stop_at_clean, dir_listing *ls) {
    memset(ls, 0, sizeof *ls);
    ls->max_txi_base = -1;
    fio_dir d;
    if (fio_dir_open(&d, dir) != 0) return -1;
    int cap = 0, capsnaps = 0;
    char **orphans = NULL;
    int norphans = 0, caporphans = 0;
    const char *name;
    int rc = 0;
    while ((name = fio_dir_next(&d))) {
        size_t len = strlen(name);
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) continue;
#define ENDS_WITH(s) (len >= sizeof(s) - 1 && strcmp(name + len - (sizeof(s) - 1), s) == 0)
        if (ENDS_WITH(".deleted") || ENDS_WITH(".cleaned") || ENDS_WITH(".swap")) {
            if (stop_at_clean) {
                rc = 1;
                break;
            }
            storage_fio.unlink(path);
            continue;
        }
        if (ENDS_WITH(".tmp") && name[0] != '.') {
            storage_fio.unlink(path);
            continue;
        }
#undef ENDS_WITH
        int64_t base;
        const char *suffix;
        if (psnap_parse_name(name, &base) == 0) {
            if (push_i64(&ls->snaps, &ls->nsnaps, &capsnaps, base) != 0) rc = -1;
        } else if (parse_segment_name(name, &base, &suffix) != 0) {
            continue;
        } else if (strcmp(suffix, TXN_INDEX_SUFFIX) == 0) {
            if (base > ls->max_txi_base) ls->max_txi_base = base;
        } else if (strcmp(suffix, SEG_LOG_SUFFIX) == 0) {
            if (push_i64(&ls->bases, &ls->n, &cap, base) != 0) rc = -1;
        } else if (strcmp(suffix, SEG_INDEX_SUFFIX) == 0 || strcmp(suffix, SEG_TIMEINDEX_SUFFIX) == 0) {
            if (norphans == caporphans) {
                caporphans = caporphans ? caporphans * 2 : 16;
                char **no = realloc(orphans, (size_t)caporphans * sizeof *no);
                if (!no) {
                    rc = -1;
                    break;
                }
                orphans = no;
            }
            if (!(orphans[norphans] = strdup(path))) rc = -1;
            else norphans++;
        }
        if (rc) break;
    }
    if (rc == 0 && errno != 0) rc = -2; /* the listing itself failed */
    int saved = errno;
    fio_dir_close(&d);
    if (rc == 0 && ls->n > 1) qsort(ls->bases, (size_t)ls->n, sizeof *ls->bases, cmp_i64);
    if (rc == 0 && ls->nsnaps > 1) qsort(ls->snaps, (size_t)ls->nsnaps, sizeof *ls->snaps, cmp_i64);
    /* An index whose log is gone belongs to nothing. */
    for (int i = 0; i < norphans; i++) {
        if (rc == 0) {
            const char *name = strrchr(orphans[i], '/') + 1;
            int64_t base;
            const char *suffix;
            parse_segment_name(name, &base, &suffix);
            if (ls->n == 0 || !bsearch(&base, ls->bases, (size_t)ls->n, sizeof *ls->bases, cmp_i64))
                storage_fio.unlink(orphans[i]);
        }
        free(orphans[i]);
    }
    free(orphans);
    if (rc != 0) {
        listing_free(ls);
        ls->max_txi_base = -1;
        if (rc == 1) return 1;
        errno = rc == -2 ? saved : ENOMEM;
        return -1;
    }
    return 0;
}

/* Recovery callback: batches carry their leader epoch; record new ones. */
static int recover_epoch(const batch_header *h, void *ctx) {
    epoch_cache *c = ctx;
    if (h->partition_leader_epoch >= 0 && h->partition_leader_epoch > ec_latest_epoch(c))
        return ec_assign(c, h->partition_leader_epoch, h->base_offset);
    return 0;
}

static void free_log(plog *l) {
    free(l->open_snaps);
    txi_forget(l);
    for (int i = 0; i < l->nsegs; i++) seg_close(&l->segs[i]);
    for (int i = 0; i < l->ntrash; i++) trash_purge(&l->trash[i]);
    ec_close(&l->epochs);
    free(l->trash);
    free(l->pc_ranges);
    free(l->segs);
    free(l->dir);
    free(l->topic);
    free(l);
}

static int check_partition_metadata(plog *l, const uint8_t topic_id[16], bool sync, char *err, size_t errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", l->dir, CKPT_PARTITION_METADATA_FILE);
    uint8_t have[16];
    if (ckpt_partition_metadata_read(path, have) == 0) {
        if (memcmp(have, topic_id, 16) != 0) {
            char a[23], b[23];
            kafka_uuid_to_string(have, a);
            kafka_uuid_to_string(topic_id, b);
            set_err(err, errlen, "%s: topic id %s does not match expected %s", path, a, b);
            errno = EINVAL;
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        set_err(err, errlen, "%s: %s", path, errno == EINVAL ? "malformed" : strerror(errno));
        return -1;
    }
    if (ckpt_partition_metadata_write(path, topic_id, sync) != 0) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Opens the segments; ls keeps what else the listing found. clean: the log
 * was closed cleanly (see plog_open); *trusted tells whether it was loaded
 * without recovering anything. */
static int load_segments(plog *l, int64_t recovery_point, bool clean, bool *trusted, dir_listing *ls, char *err,
                         size_t errlen) {
    *trusted = false;
    /* One listing when nothing was interrupted. A clean interrupted by a
     * crash: its committed *.swap must be completed before the listing
     * removes leftovers (cleaner.h), then the directory is listed again. */
    int listed = list_segments(l->dir, true, ls);
    if (listed == 1) {
        if (cleaner_recover_dir(l->dir) != 0) {
            set_err(err, errlen, "%s: recovering an interrupted clean: %s", l->dir, strerror(errno));
            return -1;
        }
        listed = list_segments(l->dir, false, ls);
    }
    if (listed != 0) {
        set_err(err, errlen, "%s: listing: %s", l->dir, strerror(errno));
        return -1;
    }
    int64_t now = wall_ms();
    for (int i = 0; i < ls->n; i++) {
        segment s;
        if (seg_open(&s, l->dir, ls->bases[i], l->cfg.segment_index_bytes, false, now) != 0 ||
            push_segment(l, &s) != 0) {
            set_err(err, errlen, "%s: opening segment %" PRId64 ": %s", l->dir, ls->bases[i], strerror(errno));
            return -1;
        }
    }
    if (l->nsegs == 0) {
        segment s;
        int64_t base = l->log_start > 0 ? l->log_start : 0;
        if (seg_open(&s, l->dir, base, l->cfg.segment_index_bytes, true, now) != 0 || push_segment(l, &s) != 0) {
            set_err(err, errlen, "%s: creating segment: %s", l->dir, strerror(errno));
            return -1;
        }
        /* Fresh index files; nothing to recover. */
        l->segs[0].bytes_since_index = 0;
        l->leo = base;
        return 0;
    }

    /* Segments wholly below the recovery point were fsynced: trust them,
     * unless their indexes are unusable. After a clean shutdown every segment
     * was flushed, the active one too (Kafka skips recovery). */
    int first_unflushed = clean ? l->nsegs - 1 : floor_segment(l, recovery_point);
    for (int i = 0; i < first_unflushed; i++) {
        segment *s = &l->segs[i];
        if (s->opened_empty) continue; /* empty log, empty indexes */
        int rc = seg_load_indexes(s, l->segs[i + 1].base);
        if (rc == 1) {
            fprintf(stderr, "storage: %s: rebuilding indexes of segment %020" PRId64 "\n", l->dir, s->base);
            seg_scan_result res;
            rc = seg_rebuild(s, l->cfg.index_interval_bytes, true, NULL, NULL, &res);
            if (rc == 0 && res.truncated_bytes > 0)
                fprintf(stderr, "storage: %s: segment %020" PRId64 ": truncated %" PRId64 " bytes at position %" PRId64
                        ": %s\n", l->dir, s->base, res.truncated_bytes, res.valid_bytes, res.why);
        }
        if (rc != 0) {
            set_err(err, errlen, "%s: loading indexes of %" PRId64 ": %s", l->dir, s->base, strerror(errno));
            return -1;
        }
    }
    if (clean) {
        segment *a = active(l);
        int64_t next = a->base;
        char why[160] = "";
        int rc = a->opened_empty ? 0 : seg_load_tail(a, &next, why, sizeof why);
        if (rc < 0) {
            set_err(err, errlen, "%s: loading segment %" PRId64 ": %s", l->dir, a->base, strerror(errno));
            return -1;
        }
        if (rc == 0) {
            l->leo = next;
            *trusted = true;
            return 0;
        }
        fprintf(stderr, "storage: %s: closed cleanly, but segment %020" PRId64 " does not end as indexed (%s): "
                "recovering it\n", l->dir, a->base, why);
    }
    int64_t next_offset = l->segs[first_unflushed].base;
    for (int i = first_unflushed; i < l->nsegs; i++) {
        segment *s = &l->segs[i];
        if (s->opened_empty) { /* nothing to scan, indexes already empty */
            next_offset = s->base;
            continue;
        }
        seg_scan_result res;
        if (seg_rebuild(s, l->cfg.index_interval_bytes, true, recover_epoch, &l->epochs, &res) != 0) {
            set_err(err, errlen, "%s: recovering segment %" PRId64 ": %s", l->dir, s->base, strerror(errno));
            return -1;
        }
        next_offset = res.valid_bytes > 0 ? res.next_offset : s->base;
        if (res.truncated_bytes > 0) {
            int dropped = l->nsegs - i - 1;
            fprintf(stderr,
                    "storage: %s: recovery truncated segment %020" PRId64 " at position %" PRId64 " (%" PRId64
                    " bytes cut, next offset %" PRId64 "): %s; %d later segment(s) deleted\n",
                    l->dir, s->base, res.valid_bytes, res.truncated_bytes, next_offset, res.why, dropped);
            while (l->nsegs > i + 1) {
                if (delete_segment(l, l->nsegs - 1, now) != 0) {
                    set_err(err, errlen, "%s: deleting segment after corruption: %s", l->dir, strerror(errno));
                    return -1;
                }
            }
            break;
        }
    }
    /* An empty segment after a full one still starts at its base. */
    if (next_offset < active(l)->base) next_offset = active(l)->base;
    l->leo = next_offset;
    return 0;
}

/* Frees a log whose opening failed; -1, errno kept (EIO if none). */
static int open_failed(plog *l) {
    int saved = errno;
    free_log(l);
    errno = saved ? saved : EIO;
    return -1;
}

/* A log with nothing loaded yet; NULL (err set) when out of memory. */
static plog *log_new(const char *dir, const char *topic, int32_t partition, const log_config *cfg,
                     int64_t log_start_offset, char *err, size_t errlen) {
    plog *l = calloc(1, sizeof *l);
    if (!l || !(l->dir = strdup(dir)) || !(l->topic = strdup(topic ? topic : ""))) {
        if (l) free(l->dir);
        free(l);
        set_err(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    l->partition = partition;
    l->cfg = *cfg;
    l->hw = -1;
    l->pc_base = -1;
    l->txi_base = -1;
    l->cleaning_end = -1;
    l->truncated_to = INT64_MAX;
    l->log_start = log_start_offset;
    l->last_flush_ms = wall_ms();
    return l;
}

int plog_open(const char *dir, const char *topic, int32_t partition, const uint8_t topic_id[16],
              const log_config *cfg, int64_t recovery_point, int64_t log_start_offset, bool clean_shutdown,
              plog **out, char *err, size_t errlen) {
    *out = NULL;
    plog *l = log_new(dir, topic, partition, cfg, log_start_offset, err, errlen);
    if (!l) return -1;
    /* mkdir of an existing directory takes its parent's lock, for which it waits while another
     * thread (broker/partition_dirs.h) creates a partition there: look first. */
    struct stat st;
    bool exists = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    bool created = !exists && storage_fio.mkdir(dir, 0755) == 0;
    if (!exists && !created && errno != EEXIST) {
        set_err(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
        goto fail;
    }
    /* A new directory is written without fsync: plog_created hands it to
     * the background syncer, and the first flush syncs it if still needed. */
    l->unsynced = created;
    l->dir_created = created;
    if (topic_id && check_partition_metadata(l, topic_id, !created, err, errlen) != 0) goto fail;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, CKPT_LEADER_EPOCH_FILE);
    if (ec_open(&l->epochs, path) != 0) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    l->epochs.lazy = created;
    dir_listing ls = {0};
    bool trusted;
    int loaded = load_segments(l, recovery_point, clean_shutdown, &trusted, &ls, err, errlen);
    int64_t max_txi_base = ls.max_txi_base;
    /* the producer snapshots listed wait for plog_take_open_snapshots */
    l->open_snaps = ls.snaps;
    l->nopen_snaps = ls.nsnaps;
    l->open_snaps_valid = loaded == 0;
    ls.snaps = NULL;
    listing_free(&ls);
    if (loaded != 0) goto fail;

    int64_t first_base = l->segs[0].base;
    if (l->log_start < first_base) l->log_start = first_base;
    if (l->log_start > l->leo) l->log_start = l->leo;
    l->recovery_point = recovery_point < first_base ? first_base : recovery_point;
    if (l->recovery_point > l->leo || trusted) l->recovery_point = l->leo; /* flushed at the clean close */
    /* Entries past the LEO are gone with their records. One starting exactly
     * at the LEO (an epoch with no records yet) stays: dropping it, as Kafka
     * does, only makes the leader write it back, two fsyncs per partition at
     * every start-up. */
    if (ec_truncate_from_end(&l->epochs, l->leo + 1) != 0 ||
        ec_truncate_from_start(&l->epochs, l->log_start) != 0) {
        set_err(err, errlen, "%s: writing leader epoch checkpoint: %s", dir, strerror(errno));
        goto fail;
    }
    /* Aborted transactions whose marker recovery cut away go too; the
     * producer state's replay writes back any the crash lost (Kafka resets
     * and rebuilds the indexes of the segments it recovers). Most active
     * segments have no such file: the listing said so, no probe. */
    if (max_txi_base >= active(l)->base) {
        txn_index *x = txi_for(l, active(l)->base);
        if (!x || txi_truncate_to(x, l->leo) != 0) {
            set_err(err, errlen, "%s: transaction index: %s", dir, strerror(errno));
            goto fail;
        }
    }
    *out = l;
    return 0;
fail:
    return open_failed(l);
}

void plog_set_config(plog *l, const log_config *cfg) {
    l->cfg = *cfg;
    /* Only the active segment grows; the new index size applies to it. */
    oidx_set_max_bytes(&active(l)->oidx, cfg->segment_index_bytes);
    tidx_set_max_bytes(&active(l)->tidx, cfg->segment_index_bytes);
}

/* Before anything of a new log is flushed, its directory must be durable,
 * or the flushed records could be unreachable after a crash. */
static int make_durable(plog *l) {
    if (!l->unsynced) return 0;
    if (l->sync_ticket && syncer_done(l->sync_ticket)) {
        l->unsynced = false;
        return 0;
    }
    l->epochs.lazy = false;
    if (syncer_sync_now(l->dir) != 0) {
        l->failed = true;
        return -1;
    }
    l->unsynced = false;
    return 0;
}

bool plog_dir_was_created(const plog *l) { return l->dir_created; }

int plog_make_dir(const char *dir, const uint8_t topic_id[16], int32_t first_epoch) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, CKPT_PARTITION_METADATA_FILE) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int made = 0;
    if (storage_fio.mkdir(dir, 0755) != 0) {
        if (errno != EEXIST) return -1;
        /* A directory of another topic of the same name (a start deletes
         * those a crash left as stray logs; this is one found while
         * running). The new topic owns the name: the old one goes as a
         * deleted log would. */
        uint8_t have[16];
        char gone[PATH_MAX];
        if (ckpt_partition_metadata_read(path, have) != 0 || memcmp(have, topic_id, 16) == 0) return 1;
        if (plog_retire_dir(dir, gone, sizeof gone) != 0) return -1;
        plog_remove_dir(gone); /* what is left, the next start removes */
        if (storage_fio.mkdir(dir, 0755) != 0) return -1;
        made = 2;
    }
    if (ckpt_partition_metadata_write(path, topic_id, false) != 0) return -1;
    if (first_epoch >= 0) {
        epoch_entry first = {first_epoch, 0};
        if (snprintf(path, sizeof path, "%s/%s", dir, CKPT_LEADER_EPOCH_FILE) >= (int)sizeof path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (ckpt_epochs_write(path, &first, 1, false) != 0) return -1;
    }
    static const char *const suffixes[] = {SEG_LOG_SUFFIX, SEG_INDEX_SUFFIX, SEG_TIMEINDEX_SUFFIX};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        if (seg_path(path, sizeof path, dir, 0, suffixes[i]) != 0) return -1;
        int fd = storage_fio.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return -1;
        storage_fio.close(fd);
    }
    return made;
}

int plog_open_made(const char *dir, const char *topic, int32_t partition, const log_config *cfg, int32_t first_epoch,
                   plog **out, char *err, size_t errlen) {
    *out = NULL;
    plog *l = log_new(dir, topic, partition, cfg, 0, err, errlen);
    if (!l) return -1;
    plog_mark_new(l);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, CKPT_LEADER_EPOCH_FILE);
    epoch_entry first = {first_epoch, 0};
    if (ec_open_known(&l->epochs, path, &first, first_epoch >= 0 ? 1 : 0) != 0) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    l->epochs.lazy = true;
    segment s; /* its indexes keep the directory's name: l->dir, not the caller's */
    if (seg_open(&s, l->dir, 0, cfg->segment_index_bytes, false, wall_ms()) != 0 || push_segment(l, &s) != 0) {
        set_err(err, errlen, "%s: opening segment 0: %s", dir, strerror(errno));
        goto fail;
    }
    /* What plog_open's listing would have found: no producer snapshot. */
    l->open_snaps_valid = true;
    *out = l;
    return 0;
fail:
    return open_failed(l);
}

void plog_mark_new(plog *l) {
    l->unsynced = true;
    l->dir_created = true;
}

int plog_take_open_snapshots(plog *l, int64_t **offsets, int *n) {
    if (!l->open_snaps_valid) return -1;
    *offsets = l->open_snaps;
    *n = l->nopen_snaps;
    l->open_snaps = NULL;
    l->nopen_snaps = 0;
    l->open_snaps_valid = false;
    return 0;
}

void plog_forget_open_snapshots(plog *l) {
    free(l->open_snaps);
    l->open_snaps = NULL;
    l->nopen_snaps = 0;
    l->open_snaps_valid = false;
}

void plog_created(plog *l) {
    if (!l->unsynced || l->sync_ticket) return;
    l->epochs.lazy = false; /* later epoch changes are durable at once again */
    l->sync_ticket = syncer_submit(l->dir);
    if (l->sync_ticket == 0) l->unsynced = false;
}

int plog_flush(plog *l) {
    if (make_durable(l) != 0) return -1;
    if (l->txi_dirty) {
        if (txi_flush(&l->txi) != 0) {
            l->failed = true;
            return -1;
        }
        l->txi_dirty = false;
    }
    if (l->recovery_point >= l->leo) {
        l->last_flush_ms = wall_ms();
        return 0;
    }
    for (int i = floor_segment(l, l->recovery_point); i < l->nsegs; i++) {
        if (seg_flush(&l->segs[i]) != 0) {
            l->failed = true; /* after a failed fsync the page cache cannot be trusted */
            return -1;
        }
    }
    l->recovery_point = l->leo;
    l->last_flush_ms = wall_ms();
    return 0;
}

int plog_sync_handle(plog *l, int64_t *upto) {
    if (l->unsynced || l->txi_dirty || l->recovery_point < active(l)->base) return -1;
    int fd = fcntl(active(l)->log_fd, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) *upto = l->leo;
    return fd;
}

void plog_synced_to(plog *l, int64_t upto) {
    if (upto > l->leo) upto = l->leo; /* truncated meanwhile */
    if (l->recovery_point < upto) l->recovery_point = upto;
    l->last_flush_ms = wall_ms();
}

int plog_close(plog *l) {
    if (!l) return 0;
    segment *a = active(l);
    bool failed_before = l->failed;
    int rc = 0;
    if (seg_seal(a) != 0 || plog_flush(l) != 0 || seg_flush(a) != 0) {
        fprintf(stderr, "storage: %s: flush on close failed: %s\n", l->dir, strerror(errno));
        rc = -1;
    }
    if (failed_before) rc = -1; /* an I/O error earlier: not a clean close */
    free_log(l);
    return rc;
}

int plog_delete(plog *l) {
    char *dir = strdup(l->dir);
    free_log(l);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int rc = plog_remove_dir(dir);
    free(dir);
    return rc;
}

int plog_retired_name(const char *dir, char *gone, size_t cap) {
    /* LocalLog.logDeleteDirName: <topic>-<partition>.<32 hex>-delete, the
     * topic cut so the name fits 255 bytes */
    const char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    const char *dash = strrchr(base, '-');
    char *end;
    long partition = dash ? strtol(dash + 1, &end, 10) : -1;
    if (!dash || dash == base || dash[1] == 0 || *end || partition < 0) {
        errno = EINVAL;
        return -1;
    }
    uint8_t id[16];
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) {
        for (size_t i = 0; i < sizeof id; i++) id[i] = (uint8_t)rand();
    }
    char hex[33];
    for (size_t i = 0; i < sizeof id; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
    char suffix[64];
    int slen = snprintf(suffix, sizeof suffix, "-%ld.%s%s", partition, hex, PLOG_DELETE_DIR_SUFFIX);
    int tlen = (int)(dash - base);
    if (tlen > 255 - slen) tlen = 255 - slen;
    int n = snprintf(gone, cap, "%.*s%.*s%s", (int)(base - dir), dir, tlen, base, suffix);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int plog_retire_dir(const char *dir, char *gone, size_t cap) {
    if (plog_retired_name(dir, gone, cap) != 0) return -1;
    return storage_fio.rename(dir, gone);
}

void plog_discard(plog *l) {
    if (l) free_log(l);
}

int plog_remove_dir(const char *dir) {
    int rc = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char path[PATH_MAX];
            if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
            if (storage_fio.unlink(path) != 0 && errno != ENOENT) rc = -1;
        }
        closedir(d);
    }
    if (storage_fio.rmdir(dir) != 0 && errno != ENOENT) rc = -1;
    return rc;
}

/* ---- the page cache kept to a window (page_trim.h) ---- */

/* Ranges are cut at this many bytes: an eighth of the window, 64 KiB to 8 MiB. */
static int64_t pc_step(int64_t window) {
    int64_t step = window / 8;
    return step < (64 << 10) ? 64 << 10 : step > (8 << 20) ? 8 << 20 : step;
}

static int segment_with_base(const plog *l, int64_t base) {
    int i = floor_segment(l, base);
    return i < l->nsegs && l->segs[i].base == base ? i : -1;
}

static void pc_push(plog *l, int64_t base, int64_t pos, int64_t len, int64_t end_total) {
    if (len <= 0) return;
    if (l->pc_count == l->pc_cap) {
        int cap = l->pc_cap ? l->pc_cap * 2 : 16;
        struct pc_range *r = malloc((size_t)cap * sizeof *r);
        if (!r) return; /* the range just stays cached */
        for (int i = 0; i < l->pc_count; i++) r[i] = l->pc_ranges[(l->pc_head + i) % l->pc_cap];
        free(l->pc_ranges);
        l->pc_ranges = r;
        l->pc_cap = cap;
        l->pc_head = 0;
    }
    l->pc_ranges[(l->pc_head + l->pc_count) % l->pc_cap] = (struct pc_range){base, pos, len, end_total};
    l->pc_count++;
}

/* After appends: cuts what was appended since the last call into ranges,
 * and trims the ranges now a window behind the end. Segments gone since
 * (retention, truncation, cleaning) are skipped. */
static void pc_note_appends(plog *l) {
    int64_t window = l->cfg.page_cache_window_bytes;
    if (window <= 0) return;
    int64_t step = pc_step(window);
    segment *s = active(l);
    if (s->base != l->pc_base) { /* rolled: the rest of the segment appended to before */
        int i = l->pc_base >= 0 ? segment_with_base(l, l->pc_base) : -1;
        if (i >= 0 && i != l->nsegs - 1) {
            const segment *old = &l->segs[i];
            if (old->size > l->pc_seen) l->pc_total += old->size - l->pc_seen;
            pc_push(l, old->base, l->pc_cursor, old->size - l->pc_cursor, l->pc_total);
        }
        l->pc_base = s->base;
        l->pc_seen = l->pc_cursor = 0;
    }
    if (s->size < l->pc_seen) { /* truncated since */
        l->pc_seen = s->size;
        if (l->pc_cursor > s->size) l->pc_cursor = s->size;
    }
    l->pc_total += s->size - l->pc_seen;
    l->pc_seen = s->size;
    while (s->size - l->pc_cursor >= step) {
        pc_push(l, s->base, l->pc_cursor, step, l->pc_total - (s->size - l->pc_cursor - step));
        l->pc_cursor += step;
    }
    while (l->pc_count > 0) {
        const struct pc_range *r = &l->pc_ranges[l->pc_head];
        if (l->pc_total - r->end_total < window) break;
        int i = segment_with_base(l, r->base);
        if (i >= 0) ptrim_submit(l->segs[i].log_fd, r->pos, r->len);
        l->pc_head = (l->pc_head + 1) % l->pc_cap;
        l->pc_count--;
    }
}

/* ---- append ---- */

/* Should the active segment roll before an append of len bytes whose last
 * offset is last_offset and largest timestamp max_ts? (LogSegment.shouldRoll) */
static bool should_roll(plog *l, size_t len, int64_t max_ts, int64_t last_offset) {
    segment *s = active(l);
    if (s->size == 0) return s->base != l->leo; /* an empty active segment is reused when aligned */
    int64_t waited = s->rolling_ts >= 0 ? max_ts - s->rolling_ts : wall_ms() - s->created_ms;
    return s->size > l->cfg.segment_bytes - (int64_t)len || waited > l->cfg.segment_ms || oidx_full(&s->oidx) ||
           tidx_full(&s->tidx) || last_offset - s->base > INT32_MAX;
}

int plog_append_begin(plog *l, uint8_t *batches, size_t len, int32_t leader_epoch, plog_write *w) {
    if (l->failed) {
        errno = EIO;
        return -1;
    }
    if (l->append_open) { /* one append at a time: the caller ends the last first */
        errno = EBUSY;
        return -1;
    }
    /* Framing check: the caller validated contents, but never trust sizes. */
    int64_t count = 0, max_ts = -1;
    for (size_t off = 0; off < len;) {
        if (len - off < BATCH_HEADER_SIZE) goto invalid;
        batch_header h;
        batch_header_parse(batches + off, &h);
        if (h.magic != 2 || h.batch_length < MIN_BATCH_LENGTH || h.last_offset_delta < 0) goto invalid;
        size_t total = batch_total_size(&h);
        if (total > len - off) goto invalid;
        if ((int64_t)total > l->cfg.segment_bytes) {
            errno = EMSGSIZE;
            return -1;
        }
        count += (int64_t)h.last_offset_delta + 1;
        if (h.max_timestamp > max_ts) max_ts = h.max_timestamp;
        off += total;
    }
    if (len == 0 || count <= 0) goto invalid;
    int64_t first = l->leo, last = first + count - 1;
    if (should_roll(l, len, max_ts, last) && roll(l, first) != 0) return -1;

    int64_t next = first;
    for (size_t off = 0; off < len;) {
        batch_header h;
        batch_header_parse(batches + off, &h);
        bh_put_u64(batches + off + BATCH_OFF_BASE_OFFSET, (uint64_t)next);
        bh_put_u32(batches + off + BATCH_OFF_LEADER_EPOCH, (uint32_t)leader_epoch);
        next += (int64_t)h.last_offset_delta + 1;
        off += batch_total_size(&h);
    }
    segment *s = active(l);
    seg_set_prealloc(s, l->cfg.prealloc_chunk_bytes, l->cfg.segment_bytes);
    seg_append_prepare(s, len, &l->append_mark);
    l->append_open = true;
    l->append_first = first;
    l->append_last = last;
    l->append_epoch = leader_epoch;
    *w = (plog_write){s->log_fd, batches, len, l->append_mark.size, 0};
    return 0;
invalid:
    errno = EINVAL;
    return -1;
}

void plog_write_run(plog_write *w) {
    w->err = fio_pwrite_full(w->fd, w->data, w->len, w->pos) == 0 ? 0 : (errno ? errno : EIO);
}

/* Closes the open append: its write's bytes committed to the active segment
 * (index entries, sizes) or, when the write failed, undone. 0, or -1 with
 * errno; a log whose undo did not take is failed. */
static int append_close(plog *l, const plog_write *w) {
    l->append_open = false;
    segment *s = active(l);
    const seg_mark *mark = &l->append_mark;
    int rc;
    if (w->err) {
        seg_mark_restore(s, mark);
        errno = w->err;
        rc = -1;
    } else {
        rc = seg_append_commit(s, w->data, w->len, l->cfg.index_interval_bytes, mark);
    }
    if (rc != 0) {
        int saved = errno;
        if (fio_file_size(s->log_fd) != mark->size) l->failed = true; /* could not undo */
        errno = saved;
    }
    return rc;
}

int plog_append_end(plog *l, const plog_write *w, int64_t *first_offset, int64_t *last_offset) {
    if (!l->append_open) {
        errno = EINVAL;
        return -1;
    }
    if (append_close(l, w) != 0) return -1;
    segment *s = active(l);
    const seg_mark *mark = &l->append_mark;
    int64_t first = l->append_first, last = l->append_last;
    int32_t leader_epoch = l->append_epoch;
    if (leader_epoch >= 0 && leader_epoch > ec_latest_epoch(&l->epochs) &&
        ec_assign(&l->epochs, leader_epoch, first) != 0) {
        int saved = errno;
        if (seg_mark_restore(s, mark) != 0) l->failed = true;
        errno = saved;
        return -1;
    }
    l->leo = last + 1;
    pc_note_appends(l);
    if (first_offset) *first_offset = first;
    if (last_offset) *last_offset = last;
    if (l->leo - l->recovery_point >= l->cfg.flush_messages && plog_flush(l) != 0) return -1;
    return 0;
}

bool plog_append_in_flight(const plog *l) { return l->append_open; }

int plog_append(plog *l, uint8_t *batches, size_t len, int32_t leader_epoch, int64_t *first_offset,
                int64_t *last_offset) {
    plog_write w;
    if (plog_append_begin(l, batches, len, leader_epoch, &w) != 0) return -1;
    plog_write_run(&w);
    return plog_append_end(l, &w, first_offset, last_offset);
}

/* ---- accessors ---- */

int64_t plog_start_offset(const plog *l) { return l->log_start; }
int64_t plog_end_offset(const plog *l) { return l->leo; }
int64_t plog_recovery_point(const plog *l) { return l->recovery_point; }
int plog_segment_count(const plog *l) { return l->nsegs; }
const char *plog_dir(const plog *l) { return l->dir; }
const char *plog_topic(const plog *l) { return l->topic; }
int32_t plog_partition(const plog *l) { return l->partition; }
void plog_set_high_watermark(plog *l, int64_t hw) { l->hw = hw; }

int64_t plog_size(const plog *l) {
    int64_t total = 0;
    for (int i = 0; i < l->nsegs; i++) total += l->segs[i].size;
    return total;
}

/* ---- fetch ---- */

int plog_read(plog *l, int64_t offset, int32_t max_bytes, bool min_one, int64_t max_offset, plog_slice *out) {
    out->fd = active(l)->log_fd;
    out->file_pos = active(l)->size;
    out->len = 0;
    if (offset < l->log_start || offset > l->leo) return PLOG_OFFSET_OUT_OF_RANGE;
    if (offset == l->leo || offset >= max_offset || max_bytes < 0) return 0;
    for (int i = floor_segment(l, offset); i < l->nsegs; i++) {
        segment *s = &l->segs[i];
        int64_t start;
        batch_header h;
        int rc = seg_translate_offset(s, offset, &start, &h);
        if (rc < 0) return -1;
        if (rc == 1) continue; /* offset past this segment's data */
        if (batch_last_offset(&h) >= max_offset) return 0;
        /* Stop before the batch holding the high watermark. */
        int64_t end = s->size;
        if (max_offset < l->leo) {
            int64_t hw_pos;
            batch_header hh;
            rc = seg_translate_offset(s, max_offset, &hw_pos, &hh);
            if (rc < 0) return -1;
            if (rc == 0) end = hw_pos;
        }
        int64_t limit = start + max_bytes;
        if (min_one && limit < start + (int64_t)batch_total_size(&h)) limit = start + (int64_t)batch_total_size(&h);
        if (limit >= end) {
            limit = end;
        } else {
            /* Largest batch boundary <= limit: jump by the index, then walk. */
            int32_t ipos;
            if (oidx_lookup_pos(&s->oidx, limit, &ipos) != 0) return -1;
            int64_t p = ipos > start ? ipos : start;
            for (;;) {
                batch_header b;
                rc = seg_read_header(s, p, &b);
                if (rc < 0) return -1;
                if (rc == 1 || p + (int64_t)batch_total_size(&b) > limit) break;
                p += (int64_t)batch_total_size(&b);
            }
            limit = p;
        }
        if (limit - start > INT32_MAX) limit = start + INT32_MAX;
        out->fd = s->log_fd;
        out->file_pos = start;
        out->len = (int32_t)(limit - start);
        return 0;
    }
    return 0;
}

/* ---- timestamps ---- */

/* Kafka's LogSegment.findOffsetByTimestamp: time index, offset index, then
 * batches; the first batch with max timestamp >= ts is scanned for the
 * record. Sets *offset = -1 when this segment has none. */
static int segment_find_by_timestamp(segment *s, int64_t ts, int64_t starting_offset, plog_batch_scan_fn scan,
                                     void *ctx, int64_t *offset, int64_t *timestamp) {
    *offset = -1;
    *timestamp = -1;
    int64_t tts, toff, ioff;
    int32_t ipos;
    if (tidx_lookup(&s->tidx, ts, &tts, &toff) != 0) return -1;
    if (oidx_lookup(&s->oidx, toff > starting_offset ? toff : starting_offset, &ioff, &ipos) != 0) return -1;
    for (int64_t p = ipos;;) {
        batch_header h;
        int rc = seg_read_header(s, p, &h);
        if (rc < 0) return -1;
        if (rc == 1) return 0;
        size_t total = batch_total_size(&h);
        if (h.max_timestamp >= ts && batch_last_offset(&h) >= starting_offset) {
            if (!scan) {
                *offset = h.base_offset > starting_offset ? h.base_offset : starting_offset;
                *timestamp = h.max_timestamp;
                return 0;
            }
            uint8_t *buf = malloc(total);
            if (!buf) {
                errno = ENOMEM;
                return -1;
            }
            if (fio_pread_full(s->log_fd, buf, total, p) != 0) {
                int saved = errno;
                free(buf);
                errno = saved;
                return -1;
            }
            int64_t o = -1, t = -1;
            rc = scan(buf, total, ts, &o, &t, ctx); /* 1 found, 0 none, -1 corrupt */
            free(buf);
            if (rc < 0) {
                errno = EIO;
                return -1;
            }
            if (o >= 0) {
                *offset = o;
                *timestamp = t;
                return 0;
            }
        }
        p += (int64_t)total;
    }
}

int plog_offset_for_timestamp(plog *l, int64_t ts, plog_batch_scan_fn scan, void *ctx, int64_t *offset,
                              int64_t *timestamp) {
    *offset = -1;
    *timestamp = -1;
    switch (ts) {
    case PLOG_TS_EARLIEST:
    case PLOG_TS_EARLIEST_LOCAL:
        *offset = l->log_start;
        return 0;
    case PLOG_TS_LATEST:
        *offset = l->leo;
        return 0;
    case PLOG_TS_MAX_TIMESTAMP:
        return plog_max_timestamp(l, scan, ctx, offset, timestamp);
    default:
        break;
    }
    if (ts < 0) {
        errno = EINVAL;
        return -1;
    }
    /* The first segment whose largest timestamp reaches ts. */
    for (int i = 0; i < l->nsegs; i++) {
        segment *s = &l->segs[i];
        if (s->size == 0 || seg_largest_timestamp(s) < ts) continue;
        return segment_find_by_timestamp(s, ts, l->log_start, scan, ctx, offset, timestamp);
    }
    return 0;
}

int plog_max_timestamp(plog *l, plog_batch_scan_fn scan, void *ctx, int64_t *offset, int64_t *timestamp) {
    *offset = -1;
    *timestamp = -1;
    segment *best = NULL;
    for (int i = 0; i < l->nsegs; i++)
        if (l->segs[i].size > 0 && l->segs[i].max_ts >= 0 && (!best || l->segs[i].max_ts > best->max_ts))
            best = &l->segs[i];
    if (!best) { /* Kafka 3.6.1 answers from an empty time index: (-1, base) */
        *offset = l->segs[0].base;
        return 0;
    }
    return segment_find_by_timestamp(best, best->max_ts, best->base, scan, ctx, offset, timestamp);
}

/* ---- leader epochs ---- */

int plog_end_offset_for_epoch(plog *l, int32_t epoch, int32_t *epoch_out, int64_t *end_offset) {
    ec_end_offset_for(&l->epochs, epoch, l->leo, epoch_out, end_offset);
    return 0;
}
int plog_scan_tail_headers(plog *l, int max_segments, plog_header_fn fn, void *ctx) {
    int first = l->nsegs > max_segments ? l->nsegs - max_segments : 0;
    for (int i = first; i < l->nsegs; i++) {
        const segment *s = &l->segs[i];
        batch_header h;
        for (int64_t pos = 0;; pos += (int64_t)batch_total_size(&h)) {
            int rc = seg_read_header(s, pos, &h);
            if (rc < 0) return -1;
            if (rc == 1) break;
            if (fn(&h, ctx) != 0) return 0;
        }
    }
    return 0;
}

/* ---- producer-state hooks (broker/producer_state.c, snapshots) ---- */

int64_t plog_segment_base(const plog *l, int i) { return i >= 0 && i < l->nsegs ? l->segs[i].base : -1; }

int plog_add_aborted_txn(plog *l, const aborted_txn *t) {
    if (l->failed) {
        errno = EIO;
        return -1;
    }
    if (t->last_offset < l->segs[0].base || t->last_offset >= l->leo) {
        errno = EINVAL;
        return -1;
    }
    txn_index *x = txi_for(l, l->segs[floor_segment(l, t->last_offset)].base);
    if (!x) return -1;
    if (x->last_offset >= t->last_offset) return 0; /* already there (a replay) */
    if (txi_append(x, t) != 0) return -1;
    l->txi_dirty = true;
    return 0;
}

int plog_collect_aborted_txns(plog *l, int64_t fetch_offset, int64_t upper_bound, aborted_list *out) {
    int first = floor_segment(l, fetch_offset);
    /* LocalLog.addAbortedTransactions: the read stays in one segment, so
     * the bound is at most the next segment's base */
    if (first + 1 < l->nsegs && l->segs[first + 1].base < upper_bound) upper_bound = l->segs[first + 1].base;
    for (int i = first; i < l->nsegs; i++) {
        bool complete = false;
        int rc;
        if (i == l->nsegs - 1 || l->txi_base == l->segs[i].base) {
            txn_index *x = txi_for(l, l->segs[i].base);
            rc = x ? txi_collect(x, fetch_offset, upper_bound, out, &complete) : -1;
        } else {
            txn_index x;
            if (txi_open(&x, l->dir, l->segs[i].base) != 0) return -1;
            rc = txi_collect(&x, fetch_offset, upper_bound, out, &complete);
            txi_close(&x);
        }
        if (rc != 0) return -1;
        if (complete) break;
    }
    return 0;
}

int plog_collect_all_aborted_txns(plog *l, aborted_list *out) {
    for (int i = 0; i < l->nsegs; i++) {
        bool complete = false;
        int rc;
        if (i == l->nsegs - 1 || l->txi_base == l->segs[i].base) {
            txn_index *x = txi_for(l, l->segs[i].base);
            rc = x ? txi_collect(x, INT64_MIN, INT64_MAX, out, &complete) : -1;
        } else {
            txn_index x;
            if (txi_open(&x, l->dir, l->segs[i].base) != 0) return -1;
            rc = txi_collect(&x, INT64_MIN, INT64_MAX, out, &complete);
            txi_close(&x);
        }
        if (rc != 0) return -1;
    }
    return 0;
}

void plog_set_roll_hook(plog *l, plog_roll_fn fn, void *ctx) {
    l->roll_hook = fn;
    l->roll_ctx = ctx;
}

int plog_scan_batches_from(plog *l, int64_t from_offset, plog_batch_at_fn fn, void *ctx) {
    for (int i = floor_segment(l, from_offset); i < l->nsegs; i++) {
        const segment *s = &l->segs[i];
        batch_header h;
        int64_t pos = 0;
        int rc = from_offset > s->base ? seg_translate_offset(s, from_offset, &pos, &h) : seg_read_header(s, 0, &h);
        for (; rc == 0; pos += (int64_t)batch_total_size(&h), rc = seg_read_header(s, pos, &h))
            if (fn(&h, s->log_fd, pos, ctx) != 0) return 0;
        if (rc < 0) return -1;
    }
    return 0;
}

int32_t plog_latest_epoch(const plog *l) { return ec_latest_epoch(&l->epochs); }
int32_t plog_epoch_for_offset(const plog *l, int64_t offset) { return ec_epoch_for_offset(&l->epochs, offset); }
/* A new leader epoch is written at once and made durable in the background
 * (the syncer, or this log's next flush, whichever comes first): a node
 * taking over thousands of partitions at start-up would otherwise spend two
 * fsyncs per partition on the event loop. Nothing is acknowledged as durable
 * before a flush, and a flush syncs the checkpoint first (make_durable). */
int plog_assign_epoch(plog *l, int32_t epoch) {
    if (epoch <= ec_latest_epoch(&l->epochs)) return 0;
    bool was_lazy = l->epochs.lazy;
    l->epochs.lazy = true;
    int rc = ec_assign(&l->epochs, epoch, l->leo);
    l->epochs.lazy = was_lazy;
    /* A log still being created (unsynced, no ticket yet) is handed over by
     * its owner's plog_created. Otherwise a fresh ticket: one taken before
     * this write does not cover it. */
    if (rc == 0 && (!l->unsynced || l->sync_ticket)) {
        l->unsynced = true;
        l->sync_ticket = 0;
        plog_created(l);
    }
    return rc;
}

/* ---- retention and truncation ---- */

typedef enum { RETAIN_MS, RETAIN_BYTES, RETAIN_LOG_START } retention_kind;

/* Kafka's deletableSegments + deleteSegments: a prefix of segments that the
 * predicate accepts, never past the high watermark nor the last segment
 * when it is empty. Returns how many were deleted or -1. */
static int delete_old_segments(plog *l, retention_kind kind, int64_t now_ms) {
    int64_t hw = effective_hw(l);
    int64_t bytes_over = plog_size(l) - l->cfg.retention_bytes;
    int n = 0;
    for (; n < l->nsegs; n++) {
        segment *s = &l->segs[n];
        bool last = n == l->nsegs - 1;
        int64_t upper = last ? l->leo : l->segs[n + 1].base;
        if (hw < upper || (last && s->size == 0)) break;
        bool ok;
        switch (kind) {
        case RETAIN_MS:
            ok = now_ms - seg_largest_timestamp(s) > l->cfg.retention_ms;
            break;
        case RETAIN_BYTES:
            ok = bytes_over - s->size >= 0;
            if (ok) bytes_over -= s->size;
            break;
        default:
            ok = !last && l->segs[n + 1].base <= l->log_start;
            break;
        }
        if (!ok) break;
    }
    if (n == 0) return 0;
    /* Always keep an active segment: roll an empty one first. */
    if (n == l->nsegs && roll(l, l->leo) != 0) return -1;
    for (int i = 0; i < n; i++)
        if (delete_segment(l, 0, now_ms) != 0) return -1;
    if (l->log_start < l->segs[0].base) l->log_start = l->segs[0].base;
    if (l->recovery_point < l->segs[0].base) l->recovery_point = l->segs[0].base;
    if (ec_truncate_from_start(&l->epochs, l->log_start) != 0) return -1;
    return n;
}

void plog_housekeeping(plog *l, int64_t now_ms) {
    /* Deleted files whose grace period has passed. */
    int keep = 0;
    for (int i = 0; i < l->ntrash; i++) {
        if (now_ms - l->trash[i].deleted_ms >= l->cfg.file_delete_delay_ms) trash_purge(&l->trash[i]);
        else l->trash[keep++] = l->trash[i];
    }
    l->ntrash = keep;

    if (l->cfg.flush_ms != INT64_MAX && now_ms - l->last_flush_ms >= l->cfg.flush_ms && plog_flush(l) != 0)
        fprintf(stderr, "storage: %s: flush failed: %s\n", l->dir, strerror(errno));

    segment *s = active(l);
    if (s->size > 0) {
        int64_t waited = now_ms - (s->rolling_ts >= 0 ? s->rolling_ts : s->created_ms);
        if (waited > l->cfg.segment_ms && roll(l, l->leo) != 0)
            fprintf(stderr, "storage: %s: time-based roll failed: %s\n", l->dir, strerror(errno));
    }
}

void plog_tick(plog *l, int64_t now_ms) {
    plog_housekeeping(l, now_ms);
    int rc = 0;
    /* cleanup.policy without delete (compact): only the log start deletes */
    if (l->cfg.retention_delete && l->cfg.retention_ms >= 0) rc = delete_old_segments(l, RETAIN_MS, now_ms);
    if (rc >= 0 && l->cfg.retention_delete && l->cfg.retention_bytes >= 0 && plog_size(l) >= l->cfg.retention_bytes)
        rc = delete_old_segments(l, RETAIN_BYTES, now_ms);
    if (rc >= 0) rc = delete_old_segments(l, RETAIN_LOG_START, now_ms);
    if (rc < 0) fprintf(stderr, "storage: %s: retention failed: %s\n", l->dir, strerror(errno));
}

int plog_delete_records(plog *l, int64_t offset) {
    if (offset > l->leo) {
        errno = EINVAL;
        return -1;
    }
    if (offset <= l->log_start) return 0;
    l->log_start = offset;
    if (ec_truncate_from_start(&l->epochs, offset) != 0) return -1;
    return delete_old_segments(l, RETAIN_LOG_START, wall_ms()) < 0 ? -1 : 0;
}

/* Kafka's LocalLog.truncateFullyAndStartAt, made durable before it returns.
 * The epoch cache is cleared first: a crash part way leaves a suffix of the
 * old log and no epochs, which the follower truncates fully again, never
 * epochs that claim records the log no longer has. */
static int truncate_fully(plog *l, int64_t offset) {
    int64_t now = wall_ms();
    l->cleaning_aborted = l->cleaning_end >= 0;
    if (offset < l->truncated_to) l->truncated_to = offset;
    if (ec_clear(&l->epochs) != 0) return -1;
    /* Oldest first, so a crash leaves a suffix of the old log. */
    int rc = 0;
    while (l->nsegs > 1)
        if (delete_segment(l, 0, now) != 0) rc = -1;
    segment *s = active(l);
    if (s->base == offset) {
        /* Reuse it, emptied. */
        seg_scan_result res;
        if (storage_fio.ftruncate(s->log_fd, 0) != 0) goto failed;
        s->size = 0;
        txn_index *x = txi_for(l, s->base);
        if (!x || txi_truncate_to(x, INT64_MIN) != 0) goto failed;
        if (seg_rebuild(s, l->cfg.index_interval_bytes, false, NULL, NULL, &res) != 0 || seg_flush(s) != 0)
            goto failed;
        s->created_ms = now;
    } else {
        segment n;
        if (seg_open(&n, l->dir, offset, l->cfg.segment_index_bytes, true, now) != 0) goto failed;
        if (n.size != 0 || seg_reset_indexes(&n) != 0 || push_segment(l, &n) != 0) {
            if (n.size != 0) errno = EEXIST;
            int saved = errno;
            seg_close(&n);
            errno = saved;
            goto failed;
        }
        l->segs[l->nsegs - 1].bytes_since_index = 0;
        if (delete_segment(l, 0, now) != 0) rc = -1;
    }
    if (rc != 0 || fio_fsync_dir(l->dir) != 0) goto failed;
    l->log_start = l->recovery_point = l->leo = offset;
    if (l->hw >= 0) l->hw = offset;
    return 0;
failed:;
    /* The files no longer match what we know of them. */
    int saved = errno;
    l->failed = true;
    errno = saved ? saved : EIO;
    return -1;
}

int plog_truncate_fully_and_start_at(plog *l, int64_t offset) {
    if (offset < 0) {
        errno = EINVAL;
        return -1;
    }
    if (l->failed) {
        errno = EIO;
        return -1;
    }
    return truncate_fully(l, offset);
}

int plog_truncate_to(plog *l, int64_t offset) {
    if (offset < 0) {
        errno = EINVAL;
        return -1;
    }
    if (l->failed) {
        errno = EIO;
        return -1;
    }
    /* Nothing to cut: still drop epochs starting at the LEO (one this node
     * started as leader without writing a record), as Kafka does. */
    if (offset >= l->leo) return ec_truncate_from_end(&l->epochs, l->leo);
    if (offset < l->segs[0].base) return truncate_fully(l, offset);
    if (offset < l->cleaning_end) l->cleaning_aborted = true;
    if (offset < l->truncated_to) l->truncated_to = offset;

    int64_t now = wall_ms();
    bool deleted = false;
    int rc = 0;
    while (l->nsegs > 1 && active(l)->base > offset) {
        if (delete_segment(l, l->nsegs - 1, now) != 0) rc = -1;
        deleted = true;
    }
    if (rc != 0 || (deleted && fio_fsync_dir(l->dir) != 0)) goto failed;
    /* Whole batches go: one holding offset goes entirely, and the LEO is
     * where the kept data ends (recovery would say the same on reopen). */
    segment *s = active(l);
    int64_t new_leo = offset, pos;
    batch_header h;
    int found = seg_translate_offset(s, offset, &pos, &h);
    if (found < 0) goto failed;
    if (found == 0 && h.base_offset < offset) new_leo = h.base_offset;
    if (found == 0) {
        if (new_leo < s->base) new_leo = s->base;
        if (seg_truncate_to(s, offset, l->cfg.index_interval_bytes) != 0 || seg_flush(s) != 0) goto failed;
    }
    txn_index *x = txi_for(l, s->base);
    if (!x || txi_truncate_to(x, new_leo) != 0 || txi_flush(x) != 0) goto failed;
    l->leo = new_leo;
    if (l->recovery_point > new_leo) l->recovery_point = new_leo;
    if (l->log_start > new_leo) l->log_start = new_leo;
    if (l->hw > new_leo) l->hw = new_leo;
    if (ec_truncate_from_end(&l->epochs, new_leo) != 0) goto failed;
    return 0;
failed:;
    int saved = errno;
    l->failed = true;
    errno = saved ? saved : EIO;
    return -1;
}

int64_t plog_high_watermark(const plog *l) { return effective_hw(l); }

/* ---- follower append ---- */

/* Could a batch of len bytes, last offset last and max timestamp max_ts go
 * into a segment of size bytes and base offset base after pending bytes
 * already bound for it? rolling_ts is the segment's rolling timestamp, or
 * when it is empty the max timestamp of the first batch bound for it. The
 * follower's form of should_roll, applied batch by batch. */
static bool follower_fits(const plog *l, int64_t size, int64_t base, int64_t rolling_ts, int64_t pending, size_t len,
                          int64_t max_ts, int64_t last) {
    if (size + pending > l->cfg.segment_bytes - (int64_t)len) return false;
    if (rolling_ts >= 0 && max_ts - rolling_ts > l->cfg.segment_ms) return false;
    return last - base <= INT32_MAX;
}

/* The rolling timestamp follower_fits takes for segment s. */
static int64_t follower_rolling_ts(const segment *s, int64_t first_ts) {
    return s->size > 0 ? s->rolling_ts : first_ts;
}

/* The bytes of the whole batches at the start of data[0..len) that go into
 * one segment of size bytes and base offset base (rolling_ts as
 * follower_fits takes it): the first batch always, then each next one that
 * fits. *last: the last offset of the last batch taken. */
static size_t follower_segment_bytes(const plog *l, const uint8_t *data, size_t len, int64_t size, int64_t base,
                                     int64_t rolling_ts, int64_t *last) {
    batch_header h;
    batch_header_parse(data, &h);
    size_t n = batch_total_size(&h);
    *last = batch_last_offset(&h);
    while (n < len) {
        batch_header nh;
        batch_header_parse(data + n, &nh);
        size_t nt = batch_total_size(&nh);
        if (!follower_fits(l, size, base, rolling_ts, (int64_t)n, nt, nh.max_timestamp, batch_last_offset(&nh)))
            break;
        n += nt;
        *last = batch_last_offset(&nh);
    }
    return n;
}

/* Assigns the epochs of the batches in data[0..len) (Kafka's
 * maybeAssignEpochStartOffset per batch). */
static int follower_assign_epochs(plog *l, const uint8_t *data, size_t len) {
    for (size_t off = 0; off < len;) {
        batch_header h;
        batch_header_parse(data + off, &h);
        if (h.partition_leader_epoch >= 0 && ec_assign(&l->epochs, h.partition_leader_epoch, h.base_offset) != 0)
            return -1;
        off += batch_total_size(&h);
    }
    return 0;
}

/* Checks every whole batch of a follower append before anything is written
 * (plog_append_as_follower's contract): 0 with the whole batches' bytes in
 * *used (a trailing partial batch left out), or a PLOG_* refusal.
 * *drop_recordless: an older epoch supersedes the newest ones, whose
 * entries must go before the batches are assigned. */
static int follower_check(const plog *l, const uint8_t *batches, size_t len, size_t *used_out, bool *drop_recordless,
                          char *err, size_t errlen) {
    size_t used = 0;
    int64_t expect = l->leo;
    int32_t epoch = ec_latest_epoch(&l->epochs); /* highest epoch so far */
    *used_out = 0;
    *drop_recordless = false;
    for (;;) {
        size_t left = len - used;
        if (left < BATCH_LOG_OVERHEAD) break; /* partial (or no) batch */
        const uint8_t *b = batches + used;
        int32_t blen = (int32_t)bh_get_u32(b + BATCH_OFF_LENGTH);
        if (blen < MIN_BATCH_LENGTH) {
            set_err(err, errlen, "batch at byte %zu: length %" PRId32 " too small", used, blen);
            return PLOG_CORRUPT_RECORD;
        }
        size_t total = (size_t)blen + BATCH_LOG_OVERHEAD;
        if (total > left) break; /* the response ended mid-batch */
        batch_header h;
        batch_header_parse(b, &h);
        if (h.magic != 2) {
            set_err(err, errlen, "batch at byte %zu: magic %d (only v2 is stored)", used, h.magic);
            return PLOG_CORRUPT_RECORD;
        }
        if (h.last_offset_delta < 0 || h.base_offset < 0 || h.base_offset > INT64_MAX - h.last_offset_delta) {
            set_err(err, errlen, "batch at byte %zu: bad offsets %" PRId64 " + %" PRId32, used, h.base_offset,
                    h.last_offset_delta);
            return PLOG_CORRUPT_RECORD;
        }
        uint32_t crc = crc32c(0, b + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES);
        if (crc != h.crc) {
            set_err(err, errlen,
                    "batch at offset %" PRId64 " is corrupt (stored crc = %" PRIu32 ", computed %" PRIu32 ")",
                    h.base_offset, h.crc, crc);
            return PLOG_CORRUPT_RECORD;
        }
        /* Offsets may jump (a compacted leader's log has gaps, as Kafka's
         * appendAsFollower allows) but never go back. */
        if (h.base_offset < expect) {
            if (used == 0) {
                set_err(err, errlen, "first offset %" PRId64 " is not the log end offset %" PRId64, h.base_offset,
                        expect);
                return PLOG_UNEXPECTED_APPEND_OFFSET;
            }
            set_err(err, errlen, "batch at offset %" PRId64 " is not after offset %" PRId64, h.base_offset,
                    expect - 1);
            return PLOG_OFFSETS_OUT_OF_ORDER;
        }
        if ((int64_t)total > l->cfg.segment_bytes) {
            set_err(err, errlen, "batch at offset %" PRId64 " has %zu bytes, more than segment.bytes %" PRId64,
                    h.base_offset, total, l->cfg.segment_bytes);
            return PLOG_BATCH_TOO_LARGE;
        }
        if (h.partition_leader_epoch >= 0 && h.partition_leader_epoch < epoch) {
            /* An older epoch may only supersede epochs this log holds no
             * record of (started at the LEO, as a leader that wrote
             * nothing); Kafka's assign would silently drop them either way. */
            bool ok = true;
            for (size_t i = 0; i < l->epochs.n && ok; i++)
                ok = l->epochs.v[i].epoch <= h.partition_leader_epoch || l->epochs.v[i].start_offset >= l->leo;
            for (size_t off = 0; off < used && ok;) { /* nor one of this input */
                batch_header p;
                batch_header_parse(batches + off, &p);
                ok = p.partition_leader_epoch <= h.partition_leader_epoch;
                off += batch_total_size(&p);
            }
            if (!ok) {
                set_err(err, errlen, "batch at offset %" PRId64 " has leader epoch %" PRId32
                        " below epoch %" PRId32 " already in the log",
                        h.base_offset, h.partition_leader_epoch, epoch);
                return PLOG_EPOCH_REGRESSION;
            }
            *drop_recordless = true;
            epoch = h.partition_leader_epoch;
        }
        if (h.partition_leader_epoch > epoch) epoch = h.partition_leader_epoch;
        expect = batch_next_offset(&h);
        used += total;
    }
    *used_out = used;
    return 0;
}

int plog_append_as_follower(plog *l, const uint8_t *batches, size_t len, int64_t *last_offset_out,
                            size_t *used_out, char *err, size_t errlen) {
    if (last_offset_out) *last_offset_out = -1;
    if (used_out) *used_out = 0;
    if (l->failed) {
        set_err(err, errlen, "%s: log failed after an I/O error", l->dir);
        errno = EIO;
        return -1;
    }
    size_t used;
    bool drop_recordless;
    int rc = follower_check(l, batches, len, &used, &drop_recordless, err, errlen);
    if (rc != 0 || used == 0) return rc;
    /* Epochs without records go first, or assigning an older epoch after
     * them would also drop that epoch's own earlier start. */
    if (drop_recordless && ec_truncate_from_end(&l->epochs, l->leo) != 0) goto io_error;

    /* Write in groups that fit the active segment, rolling between them. */
    size_t done = 0;
    while (done < used) {
        batch_header h;
        batch_header_parse(batches + done, &h);
        size_t total = batch_total_size(&h);
        if (should_roll(l, total, h.max_timestamp, batch_last_offset(&h)) && roll(l, h.base_offset) != 0) goto io_error;
        segment *s = active(l);
        int64_t last;
        size_t n = follower_segment_bytes(l, batches + done, used - done, s->size, s->base,
                                          follower_rolling_ts(s, h.max_timestamp), &last);
        seg_set_prealloc(s, l->cfg.prealloc_chunk_bytes, l->cfg.segment_bytes);
        seg_mark mark;
        seg_mark_save(s, &mark);
        if (seg_append(s, batches + done, n, l->cfg.index_interval_bytes) != 0) {
            if (fio_file_size(s->log_fd) != mark.size) l->failed = true; /* could not undo */
            goto io_error;
        }
        if (follower_assign_epochs(l, batches + done, n) != 0) {
            int saved = errno;
            if (seg_mark_restore(s, &mark) != 0 || ec_truncate_from_end(&l->epochs, h.base_offset) != 0)
                l->failed = true;
            errno = saved;
            goto io_error;
        }
        l->leo = last + 1;
        pc_note_appends(l);
        done += n;
        if (used_out) *used_out = done;
        if (last_offset_out) *last_offset_out = last;
    }
    if (l->leo - l->recovery_point >= l->cfg.flush_messages && plog_flush(l) != 0) goto io_error;
    return 0;
io_error:
    set_err(err, errlen, "%s: appending at offset %" PRId64 ": %s", l->dir, l->leo, strerror(errno));
    return -1;
}

int plog_append_as_follower_begin(plog *l, const uint8_t *batches, size_t len, plog_write *w, char *err,
                                  size_t errlen) {
    *w = (plog_write){-1, batches, 0, 0, 0};
    if (l->failed) {
        set_err(err, errlen, "%s: log failed after an I/O error", l->dir);
        errno = EIO;
        return -1;
    }
    if (l->append_open) { /* one append at a time: the caller ends the last first */
        set_err(err, errlen, "%s: an append is in flight", l->dir);
        errno = EBUSY;
        return -1;
    }
    size_t used;
    bool drop_recordless;
    int rc = follower_check(l, batches, len, &used, &drop_recordless, err, errlen);
    if (rc != 0 || used == 0 || drop_recordless) return rc; /* drop_recordless: appended by plog_append_as_follower */
    /* One write into one segment: the active one, or the one a roll due
     * before the first batch starts. */
    batch_header h;
    batch_header_parse(batches, &h);
    bool rolls = should_roll(l, batch_total_size(&h), h.max_timestamp, batch_last_offset(&h));
    const segment *s = active(l);
    int64_t size = rolls ? 0 : s->size, base = rolls ? h.base_offset : s->base;
    int64_t rolling_ts = rolls ? h.max_timestamp : follower_rolling_ts(s, h.max_timestamp);
    /* the batches that go into that segment; a roll inside leaves the rest
     * to the caller */
    int64_t last;
    size_t n = follower_segment_bytes(l, batches, used, size, base, rolling_ts, &last);
    if (rolls && roll(l, h.base_offset) != 0) {
        set_err(err, errlen, "%s: appending at offset %" PRId64 ": %s", l->dir, l->leo, strerror(errno));
        return -1;
    }
    segment *as = active(l);
    seg_set_prealloc(as, l->cfg.prealloc_chunk_bytes, l->cfg.segment_bytes);
    seg_append_prepare(as, n, &l->append_mark);
    l->append_open = true;
    l->append_first = h.base_offset;
    l->append_last = last;
    l->append_epoch = -1; /* each batch keeps its own (follower_assign_epochs) */
    *w = (plog_write){as->log_fd, batches, n, l->append_mark.size, 0};
    return 0;
}

int plog_append_as_follower_end(plog *l, const plog_write *w, int64_t *last_offset_out, size_t *used_out, char *err,
                                size_t errlen) {
    *last_offset_out = -1;
    *used_out = 0;
    if (!l->append_open) {
        set_err(err, errlen, "%s: no append in flight", l->dir);
        errno = EINVAL;
        return -1;
    }
    if (append_close(l, w) != 0) goto io_error;
    segment *s = active(l);
    const seg_mark *mark = &l->append_mark;
    if (follower_assign_epochs(l, w->data, w->len) != 0) {
        int saved = errno;
        if (seg_mark_restore(s, mark) != 0 || ec_truncate_from_end(&l->epochs, l->append_first) != 0)
            l->failed = true;
        errno = saved;
        goto io_error;
    }
    l->leo = l->append_last + 1;
    pc_note_appends(l);
    *used_out = w->len;
    *last_offset_out = l->append_last;
    if (l->leo - l->recovery_point >= l->cfg.flush_messages && plog_flush(l) != 0) goto io_error;
    return 0;
io_error:
    set_err(err, errlen, "%s: appending at offset %" PRId64 ": %s", l->dir, l->leo, strerror(errno));
    return -1;
}

/* ---- the log cleaner's hooks (log_cleaner.h) ---- */

int plog_segment_info(const plog *l, int i, int64_t *base, int64_t *size, int64_t *largest_ts, int64_t *rolling_ts) {
    if (i < 0 || i >= l->nsegs) return -1;
    const segment *s = &l->segs[i];
    *base = s->base;
    *size = s->size;
    *largest_ts = seg_largest_timestamp(s);
    *rolling_ts = s->rolling_ts;
    return 0;
}

void plog_cleaning_begin(plog *l, int64_t end) {
    l->cleaning_end = end;
    l->cleaning_aborted = false;
}

bool plog_cleaning_ok(const plog *l, int64_t end) {
    return l->cleaning_end == end && !l->cleaning_aborted && !l->failed;
}

void plog_cleaning_done(plog *l) {
    l->cleaning_end = -1;
    l->cleaning_aborted = false;
}

void plog_mark_failed(plog *l) { l->failed = true; }

int64_t plog_take_truncation(plog *l) {
    int64_t t = l->truncated_to;
    l->truncated_to = INT64_MAX;
    return t;
}

void plog_forget_indexes(plog *l, const int64_t *bases, int n) {
    for (int i = 0; i < l->nsegs; i++)
        for (int k = 0; k < n; k++)
            if (l->segs[i].base == bases[k]) {
                seg_close_indexes(&l->segs[i]);
                if (l->txi_base == bases[k]) txi_forget(l);
            }
}

int plog_replace_segments(plog *l, int64_t new_base, const int64_t *old_bases, int nold) {
    int first = -1;
    for (int i = 0; i < l->nsegs; i++)
        if (l->segs[i].base == old_bases[0]) first = i;
    if (first < 0 || first + nold >= l->nsegs || l->segs[first].base != new_base) {
        errno = EINVAL;
        return -1;
    }
    for (int k = 0; k < nold; k++)
        if (l->segs[first + k].base != old_bases[k]) {
            errno = EINVAL;
            return -1;
        }
    int64_t now = wall_ms();
    int64_t next = l->segs[first + nold].base;
    segment n;
    if (seg_open(&n, l->dir, new_base, l->cfg.segment_index_bytes, false, now) != 0) goto failed;
    int rc = seg_load_indexes(&n, next);
    if (rc == 1) {
        seg_scan_result res;
        rc = seg_rebuild(&n, l->cfg.index_interval_bytes, false, NULL, NULL, &res);
    }
    if (rc != 0) {
        int saved = errno;
        seg_close(&n);
        errno = saved;
        goto failed;
    }
    /* The old segments' files are already unlinked: only their .log
     * descriptors stay open (the trash) for fetches that still send them. */
    int added = 0;
    for (int k = 0; k < nold; k++) {
        segment *s = &l->segs[first + k];
        seg_close_indexes(s);
        if (l->txi_base == s->base) txi_forget(l);
        if (l->ntrash == l->captrash) {
            int ncap = l->captrash ? l->captrash * 2 : 4;
            trash_entry *t = realloc(l->trash, (size_t)ncap * sizeof *t);
            if (!t) {
                storage_fio.close(s->log_fd);
                continue;
            }
            l->trash = t;
            l->captrash = ncap;
        }
        trash_entry t = {{s->log_fd, -1, -1, -1}, {NULL, NULL, NULL, NULL}, now};
        l->trash[l->ntrash++] = t;
        added++;
    }
    (void)added;
    l->segs[first] = n;
    memmove(&l->segs[first + 1], &l->segs[first + nold], (size_t)(l->nsegs - first - nold) * sizeof *l->segs);
    l->nsegs -= nold - 1;
    return 0;
failed:;
    /* The directory holds the cleaned segment but the log cannot use it:
     * like a failed swap in Kafka, the log needs reopening. */
    int saved = errno;
    l->failed = true;
    errno = saved ? saved : EIO;
    return -1;
}
