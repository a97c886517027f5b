/* dump_log.c - kafka-dump-log: print the contents of log segment files.
 *
 * Reads a partition's files straight from disk, without a broker, and prints
 * them the way Kafka's DumpLogSegments does: .log files batch by batch (and
 * record by record with --deep-iteration / --print-data-log), .index and
 * .timeindex files entry by entry with a cross-check against the .log,
 * .txnindex files as aborted transactions, and __cluster_metadata snapshots
 * (<offset>-<epoch>.checkpoint) like a .log. Record contents decode as
 * __consumer_offsets (--offsets-decoder), __transaction_state
 * (--transaction-log-decoder) or metadata records (--cluster-metadata-decoder,
 * JSON), in that order of precedence as Kafka's messageParser. Mismatches found while checking
 * are collected and reported on stderr at the end, as Kafka does.
 *
 * Files are mapped read-only; nothing here writes to them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/batch_header.h"
#include "protocol/wire.h"
#include "tools/metadata_json.h"
#include "tools/offsets_format.h"
#include "tools/opts.h"
#include "tools/records_view.h"
#include "tools/tools.h"
#include "tools/txn_log_format.h"
#include "util/crc32c.h"

static const opt_spec dump_specs[] = {
    {"cluster-metadata-decoder", OPT_FLAG, NULL,
     "Decode the records as KRaft cluster metadata records.", NULL, 0},
    {"deep-iteration", OPT_FLAG, NULL,
     "Iterate over the records inside each batch instead of over batches only. "
     "Implied by --print-data-log.", NULL, 0},
    {"files", OPT_ARG, "String: file1, file2, ...",
     "REQUIRED: Comma-separated list of log and index files to dump.", NULL, 0},
    {"index-sanity-check", OPT_FLAG, NULL,
     "Only check that the index is sane (the check a broker runs at startup to decide "
     "whether to rebuild it); print nothing else.", NULL, 0},
    {"key-decoder-class", OPT_ARG_OPTIONAL, "String",
     "Decoder for record keys. Only the string decoder is built in.",
     "kafka.serializer.StringDecoder", 0},
    {"max-bytes", OPT_ARG, "Integer: size",
     "Stop after reading this many bytes of batches from a .log file.", "2147483647", 0},
    {"max-message-size", OPT_ARG, "Integer: size",
     "Largest batch size to expect when checking an index.", "5242880", 0},
    {"offsets-decoder", OPT_FLAG, NULL,
     "Decode the records as __consumer_offsets data.", NULL, 0},
    {"print-data-log", OPT_FLAG, NULL,
     "Print record contents too. Implied by any of the decoder options.", NULL, 0},
    {"skip-record-metadata", OPT_FLAG, NULL,
     "Leave out the per-record metadata (offset, timestamp, sizes).", NULL, 0},
    {"transaction-log-decoder", OPT_FLAG, NULL,
     "Decode the records as __transaction_state data.", NULL, 0},
    {"value-decoder-class", OPT_ARG_OPTIONAL, "String",
     "Decoder for record values. Only the string decoder is built in.",
     "kafka.serializer.StringDecoder", 0},
    {"verify-index-only", OPT_FLAG, NULL,
     "Check the index against the log without printing its entries.", NULL, 0},
};

/* ---- collected problems, printed on stderr after all files ---- */

typedef struct pair_list {
    char *file;          /* absolute path */
    int64_t (*pairs)[2];
    size_t n, cap;
    struct pair_list *next;
} pair_list;

static pair_list *pairs_for(pair_list **head, const char *abs_path) {
    for (pair_list *p = *head; p; p = p->next)
        if (strcmp(p->file, abs_path) == 0) return p;
    pair_list *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->file = strdup(abs_path);
    /* Append so the report keeps the order files were given in. */
    pair_list **tail = head;
    while (*tail) tail = &(*tail)->next;
    *tail = p;
    return p;
}

static void pairs_add(pair_list **head, const char *abs_path, int64_t a, int64_t b) {
    pair_list *p = pairs_for(head, abs_path);
    if (!p) return;
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 8;
        void *np = realloc(p->pairs, ncap * sizeof *p->pairs);
        if (!np) return;
        p->pairs = np;
        p->cap = ncap;
    }
    p->pairs[p->n][0] = a;
    p->pairs[p->n][1] = b;
    p->n++;
}

static void pairs_free(pair_list *head) {
    while (head) {
        pair_list *next = head->next;
        free(head->file);
        free(head->pairs);
        free(head);
        head = next;
    }
}

typedef struct dump_state {
    int print_data;
    int deep;
    int skip_metadata;
    int verify_only;
    int sanity_only;
    int txn_decoder;                 /* --transaction-log-decoder */
    int offsets_decoder;             /* --offsets-decoder */
    int metadata_decoder;            /* --cluster-metadata-decoder */
    int64_t max_bytes;
    int64_t max_message_size;
    pair_list *index_mismatches;     /* (index offset, log offset), newest first as Kafka */
    pair_list *time_mismatches;      /* (index timestamp, log timestamp) */
    pair_list *time_out_of_order;    /* (index timestamp, previous timestamp) */
    pair_list *time_not_found;       /* (indexed offset, found log offset) */
    pair_list *non_consecutive;      /* (offset, next offset), newest first as Kafka */
} dump_state;

/* ---- files ---- */

typedef struct mapped_file {
    const uint8_t *p;
    size_t len;
} mapped_file;

static int map_file(const char *path, mapped_file *m) {
    m->p = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return -1;
        }
        m->p = p;
        m->len = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

static void unmap_file(mapped_file *m) {
    if (m->p) munmap((void *)m->p, m->len);
    m->p = NULL;
    m->len = 0;
}

static char *absolute_path(const char *path) {
    char *r = realpath(path, NULL);
    if (r) return r;
    if (path[0] == '/') return strdup(path);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return strdup(path);
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", cwd, path);
    return s;
}

/* The base offset Kafka takes from a segment file name: digits before the first '.'. */
static int64_t base_offset_of(const char *path) {
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    return strtoll(name, NULL, 10);
}

/* "dir/00000.index" -> "dir/00000.log" (Kafka: name up to the first '.', plus suffix). */
static char *sibling_path(const char *path, const char *suffix) {
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    const char *dot = strchr(name, '.');
    size_t keep = (size_t)((dot ? dot : name + strlen(name)) - path);
    char *s = malloc(keep + strlen(suffix) + 1);
    if (!s) return NULL;
    memcpy(s, path, keep);
    strcpy(s + keep, suffix);
    return s;
}

/* ---- batches ---- */

/* Kafka's FileLogInputStream: the next batch starting at *pos before `end`,
 * or 0 when no complete batch remains. -1 on a size below the minimum. */
static int next_batch(const uint8_t *buf, size_t end, size_t *pos, batch_header *h, size_t *size,
                      const char *path) {
    if (*pos + 17 >= end || end - *pos <= 17) return 0; /* up to and including magic */
    int32_t length = (int32_t)bh_get_u32(buf + *pos + BATCH_OFF_LENGTH);
    if (length < 14) {
        fprintf(stderr,
                "Exception in thread \"main\" org.apache.kafka.common.errors.CorruptRecordException: "
                "Found record size %d smaller than minimum record overhead (14) in file %s.\n",
                length, path);
        return -1;
    }
    if ((int64_t)*pos > (int64_t)end - BATCH_LOG_OVERHEAD - length) return 0;
    *size = (size_t)length + BATCH_LOG_OVERHEAD;
    if (*size >= BATCH_HEADER_SIZE) {
        batch_header_parse(buf + *pos, h);
    } else {
        /* Too short for a v2 header: take what exists, zero the rest. */
        uint8_t tmp[BATCH_HEADER_SIZE] = {0};
        memcpy(tmp, buf + *pos, *size);
        batch_header_parse(tmp, h);
    }
    return 1;
}

static int batch_is_valid(const uint8_t *batch, size_t size, const batch_header *h) {
    if (size < BATCH_HEADER_SIZE) return 0;
    uint32_t crc = crc32c(0, batch + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES);
    return crc == h->crc;
}

static const char *timestamp_type(const batch_header *h) {
    return (h->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) ? "LogAppendTime" : "CreateTime";
}

static const char *compression_name(int codec) {
    static const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    return codec >= 0 && codec < 5 ? names[codec] : "unknown";
}

static int32_t increment_sequence(int32_t seq, int32_t inc) {
    if (seq > INT32_MAX - inc) return inc - (INT32_MAX - seq) - 1;
    return seq + inc;
}

static void print_batch_line(const batch_header *h, int64_t position, size_t size, int valid) {
    int32_t last_seq = h->base_sequence == -1 ? -1 : increment_sequence(h->base_sequence, h->last_offset_delta);
    printf("baseOffset: %" PRId64 " lastOffset: %" PRId64 " count: %" PRId32
           " baseSequence: %" PRId32 " lastSequence: %" PRId32 " producerId: %" PRId64
           " producerEpoch: %d partitionLeaderEpoch: %" PRId32 " isTransactional: %s"
           " isControl: %s deleteHorizonMs: ",
           h->base_offset, batch_last_offset(h), h->record_count, h->base_sequence, last_seq,
           h->producer_id, h->producer_epoch, h->partition_leader_epoch,
           (h->attributes & BATCH_ATTR_TRANSACTIONAL) ? "true" : "false",
           (h->attributes & BATCH_ATTR_CONTROL) ? "true" : "false");
    if (h->attributes & BATCH_ATTR_DELETE_HORIZON)
        printf("OptionalLong[%" PRId64 "]", h->base_timestamp);
    else
        printf("OptionalLong.empty");
    printf(" position: %" PRId64 " %s: %" PRId64 " size: %zu magic: %d compresscodec: %s crc: %" PRIu32
           " isvalid: %s\n",
           position, timestamp_type(h), h->max_timestamp, size, h->magic,
           compression_name(h->attributes & BATCH_ATTR_COMPRESSION_MASK), h->crc,
           valid ? "true" : "false");
}

static const char *control_type_name(int16_t type) {
    switch (type) {
    case 0: return "ABORT";
    case 1: return "COMMIT";
    case 2: return "LEADER_CHANGE";
    case 3: return "SNAPSHOT_HEADER";
    case 4: return "SNAPSHOT_FOOTER";
    default: return "UNKNOWN";
    }
}

/* Returns 0, or -1 when Kafka's tool would die on this record (the
 * exception is printed). */
static int print_record(dump_state *st, const batch_header *h, const rv_record *r) {
    const char *prefix = "| ";
    if (!st->skip_metadata) {
        int64_t ts = (h->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) ? h->max_timestamp
                                                                        : h->base_timestamp + r->timestamp_delta;
        int32_t seq = h->base_sequence == -1 ? -1 : increment_sequence(h->base_sequence, r->offset_delta);
        printf("%soffset: %" PRId64 " %s: %" PRId64 " keySize: %" PRId32 " valueSize: %" PRId32,
               prefix, h->base_offset + r->offset_delta, timestamp_type(h), ts, r->key.len, r->value.len);
        prefix = " ";
        printf(" sequence: %" PRId32 " headerKeys: [", seq);
        for (int32_t i = 0; i < r->header_count; i++) {
            kstr k = rv_header_key(r, i);
            printf("%s%.*s", i ? "," : "", k.len > 0 ? (int)k.len : 0, k.len > 0 ? k.p : "");
        }
        printf("]");
        if (h->attributes & BATCH_ATTR_CONTROL) {
            int16_t type = r->key.len >= 4 ? (int16_t)bh_get_u16(r->key.p + 2) : -1;
            char *json = NULL;
            if ((type == 0 || type == 1) && r->value.len >= 6) {
                int32_t epoch = (int32_t)bh_get_u32(r->value.p + 2);
                printf(" endTxnMarker: %s coordinatorEpoch: %" PRId32, control_type_name(type), epoch);
            } else if (type == 3 && (json = snapshot_header_json(r->value.p, r->value.len > 0 ? (size_t)r->value.len : 0))) {
                printf(" SnapshotHeader %s", json);
            } else if (type == 4 && (json = snapshot_footer_json(r->value.p, r->value.len > 0 ? (size_t)r->value.len : 0))) {
                printf(" SnapshotFooter %s", json);
            } else {
                printf(" controlType: %s(%d)", control_type_name(type), type);
            }
            free(json);
        }
    }
    if (st->print_data && !(h->attributes & BATCH_ATTR_CONTROL) && st->offsets_decoder) {
        char *k, *v, *e;
        if (offsets_format(r->key.p, r->key.len, r->value.p, r->value.len, &k, &v, &e) != 0) {
            fflush(stdout);
            fprintf(stderr, "Exception in thread \"main\" %s\n", e ? e : "java.lang.RuntimeException");
            free(e);
            return -1;
        }
        if (k) printf("%skey: %s", prefix, k);
        if (v) printf(" payload: %s", v);
        free(k);
        free(v);
        printf("\n");
        return 0;
    }
    if (st->print_data && !(h->attributes & BATCH_ATTR_CONTROL) && st->metadata_decoder) {
        char *v = metadata_record_json(r->value.p, r->value.len > 0 ? (size_t)r->value.len : 0,
                                       h->base_offset + r->offset_delta);
        printf(" payload: %s\n", v ? v : "");
        free(v);
        return 0;
    }
    if (st->print_data && !(h->attributes & BATCH_ATTR_CONTROL) && st->txn_decoder) {
        char *k, *v;
        txn_log_format(r->key.p, r->key.len, r->value.p, r->value.len, &k, &v);
        if (k) printf("%skey: %s", prefix, k);
        if (v) printf(" payload: %s", v);
        free(k);
        free(v);
    } else if (st->print_data && !(h->attributes & BATCH_ATTR_CONTROL)) {
        if (r->key.len >= 0) {
            printf("%skey: ", prefix);
            fwrite(r->key.p, 1, (size_t)r->key.len, stdout);
            prefix = " ";
        }
        if (r->value.len >= 0) {
            printf(" payload: ");
            fwrite(r->value.p, 1, (size_t)r->value.len, stdout);
        }
    }
    printf("\n");
    return 0;
}

static int dump_log_file(dump_state *st, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t blen = strlen(base);
    if (blen >= 11 && strcmp(base + blen - 11, ".checkpoint") == 0) {
        if (strcmp(base, "bootstrap.checkpoint") == 0) {
            printf("KRaft bootstrap snapshot\n");
        } else {
            /* Snapshots.parse: <20-digit end offset>-<10-digit epoch> */
            char off[21] = {0}, ep[11] = {0};
            if (blen >= 31) {
                memcpy(off, base, 20);
                memcpy(ep, base + 21, 10);
            }
            printf("Snapshot end offset: %lld, epoch: %d\n", strtoll(off, NULL, 10), (int)strtol(ep, NULL, 10));
        }
    } else {
        printf("Log starting offset: %" PRId64 "\n", base_offset_of(path));
    }
    mapped_file m;
    if (map_file(path, &m) != 0) {
        fprintf(stderr, "Exception in thread \"main\" java.nio.file.NoSuchFileException: %s\n", path);
        return 1;
    }
    size_t end = m.len;
    if (st->max_bytes >= 0 && (uint64_t)st->max_bytes < end) end = (size_t)st->max_bytes;
    char *abs = absolute_path(path);
    size_t pos = 0;
    int64_t last_offset = -1;
    int rc = 0;
    batch_header h;
    size_t size;
    int got;
    while ((got = next_batch(m.p, end, &pos, &h, &size, path)) == 1) {
        const uint8_t *batch = m.p + pos;
        print_batch_line(&h, (int64_t)pos, size, batch_is_valid(batch, size, &h));
        if (st->deep && h.magic >= 2 && size >= BATCH_HEADER_SIZE) {
            rv_iter it;
            char err[256];
            if (rv_iter_init(&it, batch, size, err, sizeof err) != 0) {
                fprintf(stderr, "Exception in thread \"main\" org.apache.kafka.common.KafkaException: %s\n", err);
                rc = 1;
                break;
            }
            rv_record r;
            int more;
            while ((more = rv_iter_next(&it, &r)) == 1) {
                int64_t off = h.base_offset + r.offset_delta;
                if (last_offset != -1 && off != last_offset + 1)
                    pairs_add(&st->non_consecutive, abs ? abs : path, last_offset, off);
                last_offset = off;
                if (print_record(st, &h, &r) != 0) {
                    more = -2;
                    break;
                }
            }
            if (more == -2) {
                rv_iter_free(&it);
                rc = 1;
                break;
            }
            if (more < 0) {
                fflush(stdout);
                fprintf(stderr, "Exception in thread \"main\" org.apache.kafka.common.errors.CorruptRecordException: %s\n",
                        it.err);
                rv_iter_free(&it);
                rc = 1;
                break;
            }
            rv_iter_free(&it);
        }
        pos += size;
    }
    if (got < 0) rc = 1;
    if (rc == 0 && m.len > pos && st->max_bytes == INT32_MAX) {
        const char *name = strrchr(path, '/');
        printf("Found %zu invalid bytes at the end of %s\n", m.len - pos, name ? name + 1 : path);
    }
    free(abs);
    unmap_file(&m);
    return rc;
}

/* Last offset of the first batch at `position` of the log, -1 if none. */
static int64_t first_batch_last_offset(const mapped_file *log, int64_t position, int64_t limit) {
    if (position < 0 || (size_t)position >= log->len) return -1;
    size_t end = log->len;
    if (limit >= 0 && (uint64_t)position + (uint64_t)limit < end) end = (size_t)(position + limit);
    size_t pos = (size_t)position, size;
    batch_header h;
    if (next_batch(log->p, end, &pos, &h, &size, "") != 1) return -1;
    return batch_last_offset(&h);
}

static int dump_index_file(dump_state *st, const char *path) {
    mapped_file idx, log;
    if (map_file(path, &idx) != 0) {
        fprintf(stderr, "Exception in thread \"main\" java.nio.file.NoSuchFileException: %s\n", path);
        return 1;
    }
    char *log_path = sibling_path(path, ".log");
    if (!log_path || map_file(log_path, &log) != 0) log.p = NULL, log.len = 0;
    int64_t base = base_offset_of(path);
    size_t entries = idx.len / 8;
    char *abs = absolute_path(path);
    if (entries == 0) {
        printf("%s is empty.\n", path);
    } else if (st->sanity_only) {
        if (idx.len % 8 != 0) {
            fprintf(stderr, "Exception in thread \"main\" org.apache.kafka.common.errors.CorruptIndexException: "
                            "Index file %s is corrupt, found %zu bytes which is neither positive nor a multiple of 8.\n",
                    abs ? abs : path, idx.len);
        } else {
            printf("%s passed sanity check.\n", path);
        }
    } else {
        for (size_t i = 0; i < entries; i++) {
            int64_t offset = base + (int32_t)bh_get_u32(idx.p + i * 8);
            int64_t position = (int32_t)bh_get_u32(idx.p + i * 8 + 4);
            /* A preallocated, partly filled index ends in zero entries. */
            if (offset == base && i > 0) break;
            int64_t found = first_batch_last_offset(&log, position, st->max_message_size);
            if (found != offset) pairs_add(&st->index_mismatches, abs ? abs : path, offset, found);
            if (!st->verify_only) printf("offset: %" PRId64 " position: %" PRId64 "\n", offset, position);
        }
    }
    free(abs);
    free(log_path);
    unmap_file(&log);
    unmap_file(&idx);
    return 0;
}

/* Kafka's OffsetIndex.lookup: position of the largest entry <= target, else 0. */
static int64_t index_lookup(const mapped_file *idx, int64_t base, int64_t target) {
    size_t entries = idx->len / 8;
    int64_t best = 0;
    for (size_t i = 0; i < entries; i++) {
        int64_t off = base + (int32_t)bh_get_u32(idx->p + i * 8);
        if (i > 0 && off == base) break;
        if (off > target) break;
        best = (int32_t)bh_get_u32(idx->p + i * 8 + 4);
    }
    return best;
}

static int dump_time_index_file(dump_state *st, const char *path) {
    mapped_file tix, idx, log;
    if (map_file(path, &tix) != 0) {
        fprintf(stderr, "Exception in thread \"main\" java.nio.file.NoSuchFileException: %s\n", path);
        return 1;
    }
    char *log_path = sibling_path(path, ".log");
    char *idx_path = sibling_path(path, ".index");
    if (!log_path || map_file(log_path, &log) != 0) log.p = NULL, log.len = 0;
    if (!idx_path || map_file(idx_path, &idx) != 0) idx.p = NULL, idx.len = 0;
    char *abs = absolute_path(path);
    const char *key = abs ? abs : path;
    int64_t base = base_offset_of(path);
    if (st->sanity_only) {
        printf("%s passed sanity check.\n", path);
    } else {
        size_t entries = tix.len / 12;
        int64_t prev_ts = -1;
        for (size_t i = 0; i < entries; i++) {
            int64_t ts = (int64_t)bh_get_u64(tix.p + i * 12);
            int64_t offset = base + (int32_t)bh_get_u32(tix.p + i * 12 + 8);
            if (offset == base && i > 0) break;
            size_t pos = (size_t)index_lookup(&idx, base, offset), size;
            batch_header h;
            int found = 0;
            while (next_batch(log.p, log.len, &pos, &h, &size, "") == 1) {
                if (batch_last_offset(&h) >= offset) {
                    found = 1;
                    break;
                }
                pos += size;
            }
            if (!found) {
                pairs_add(&st->time_not_found, key, offset, -1);
            } else if (batch_last_offset(&h) != offset) {
                pairs_add(&st->time_not_found, key, offset, batch_last_offset(&h));
            } else {
                int64_t max_ts = -1;
                rv_iter it;
                char err[256];
                if (rv_iter_init(&it, log.p + pos, size, err, sizeof err) == 0) {
                    rv_record r;
                    while (rv_iter_next(&it, &r) == 1) {
                        int64_t rts = (h.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND)
                                          ? h.max_timestamp : h.base_timestamp + r.timestamp_delta;
                        if (rts > max_ts) max_ts = rts;
                    }
                    rv_iter_free(&it);
                }
                if (max_ts != ts) pairs_add(&st->time_mismatches, key, ts, max_ts);
                if (prev_ts >= ts) pairs_add(&st->time_out_of_order, key, ts, prev_ts);
            }
            if (!st->verify_only) printf("timestamp: %" PRId64 " offset: %" PRId64 "\n", ts, offset);
            prev_ts = ts;
        }
    }
    free(abs);
    free(log_path);
    free(idx_path);
    unmap_file(&log);
    unmap_file(&idx);
    unmap_file(&tix);
    return 0;
}

/* .txnindex: fixed 34-byte entries of aborted transactions. */
static int dump_txn_index_file(const char *path) {
    mapped_file m;
    if (map_file(path, &m) != 0) {
        fprintf(stderr, "Exception in thread \"main\" java.nio.file.NoSuchFileException: %s\n", path);
        return 1;
    }
    for (size_t at = 0; at + 34 <= m.len; at += 34) {
        const uint8_t *e = m.p + at;
        printf("version: %d producerId: %" PRId64 " firstOffset: %" PRId64 " lastOffset: %" PRId64
               " lastStableOffset: %" PRId64 "\n",
               (int16_t)bh_get_u16(e), (int64_t)bh_get_u64(e + 2), (int64_t)bh_get_u64(e + 10),
               (int64_t)bh_get_u64(e + 18), (int64_t)bh_get_u64(e + 26));
    }
    unmap_file(&m);
    return 0;
}

static void report_problems(dump_state *st) {
    for (pair_list *p = st->index_mismatches; p; p = p->next) {
        fprintf(stderr, "Mismatches in :%s\n", p->file);
        for (size_t i = p->n; i-- > 0;) /* Kafka prepends, so newest first */
            fprintf(stderr, "  Index offset: %" PRId64 ", log offset: %" PRId64 "\n", p->pairs[i][0], p->pairs[i][1]);
    }
    for (pair_list *p = st->time_mismatches; p; p = p->next) {
        fprintf(stderr, "Found timestamp mismatch in :%s\n", p->file);
        for (size_t i = 0; i < p->n; i++)
            fprintf(stderr, "  Index timestamp: %" PRId64 ", log timestamp: %" PRId64 "\n", p->pairs[i][0], p->pairs[i][1]);
    }
    for (pair_list *p = st->time_out_of_order; p; p = p->next) {
        fprintf(stderr, "Found out of order timestamp in :%s\n", p->file);
        for (size_t i = 0; i < p->n; i++)
            fprintf(stderr, "  Index timestamp: %" PRId64 ", Previously indexed timestamp: %" PRId64 "\n",
                    p->pairs[i][0], p->pairs[i][1]);
    }
    for (pair_list *p = st->time_not_found; p; p = p->next) {
        fprintf(stderr, "The following indexed offsets are not found in the log.\n");
        for (size_t i = 0; i < p->n; i++)
            fprintf(stderr, "Indexed offset: %" PRId64 ", found log offset: %" PRId64 "\n", p->pairs[i][0], p->pairs[i][1]);
    }
    for (pair_list *p = st->non_consecutive; p; p = p->next) {
        fprintf(stderr, "Non-consecutive offsets in %s\n", p->file);
        for (size_t i = p->n; i-- > 0;)
            fprintf(stderr, "  %" PRId64 " is followed by %" PRId64 "\n", p->pairs[i][0], p->pairs[i][1]);
    }
}

static int parse_int_opt(const opts *o, const char *name, const char *fallback, int64_t *out) {
    const char *v = opts_get(o, name, fallback);
    char *endp;
    errno = 0;
    long long n = strtoll(v, &endp, 10);
    if (errno || *endp || endp == v || n < INT32_MIN || n > INT32_MAX) {
        fprintf(stderr, "Exception in thread \"main\" joptsimple.OptionArgumentConversionException: "
                        "Cannot parse argument '%s' of option %s\n", v, name);
        return -1;
    }
    *out = n;
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int tool_dump_log(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, dump_specs, OPTS_COUNT(dump_specs), argc, argv) != 0) {
        fprintf(stderr, "Exception in thread \"main\" joptsimple.OptionException: %s\n", o.err);
        opts_free(&o);
        return 1;
    }
    if (opts_maybe_help_or_version(&o,
                                   "This tool helps to parse a log file and dump its contents to the console, "
                                   "useful for debugging a seemingly corrupt log segment.",
                                   &rc)) {
        opts_free(&o);
        return rc;
    }
    if (opts_require(&o, "files")) {
        opts_free(&o);
        return 1;
    }
    dump_state st;
    memset(&st, 0, sizeof st);
    st.print_data = opts_has(&o, "print-data-log") || opts_has(&o, "offsets-decoder") ||
                    opts_has(&o, "transaction-log-decoder") || opts_has(&o, "cluster-metadata-decoder") ||
                    opts_has(&o, "value-decoder-class") || opts_has(&o, "key-decoder-class");
    st.deep = opts_has(&o, "deep-iteration") || st.print_data;
    st.skip_metadata = opts_has(&o, "skip-record-metadata");
    /* Kafka's messageParser: the offsets decoder is tried first */
    st.offsets_decoder = opts_has(&o, "offsets-decoder");
    st.txn_decoder = opts_has(&o, "transaction-log-decoder") && !st.offsets_decoder;
    st.metadata_decoder = opts_has(&o, "cluster-metadata-decoder") && !st.offsets_decoder && !st.txn_decoder;
    st.verify_only = opts_has(&o, "verify-index-only");
    st.sanity_only = opts_has(&o, "index-sanity-check");
    if (parse_int_opt(&o, "max-bytes", "2147483647", &st.max_bytes) != 0 ||
        parse_int_opt(&o, "max-message-size", "5242880", &st.max_message_size) != 0) {
        opts_free(&o);
        return 1;
    }

    char *files = strdup(opts_get(&o, "files", ""));
    char *save = NULL;
    /* Java's split(",") keeps empty names between commas but drops trailing ones. */
    for (char *f = strtok_r(files, ",", &save); f && rc == 0; f = strtok_r(NULL, ",", &save)) {
        printf("Dumping %s\n", f);
        const char *name = strrchr(f, '/');
        name = name ? name + 1 : f;
        if (ends_with(name, ".log") || ends_with(name, ".checkpoint"))
            rc = dump_log_file(&st, f);
        else if (ends_with(name, ".timeindex"))
            rc = dump_time_index_file(&st, f);
        else if (ends_with(name, ".txnindex"))
            rc = dump_txn_index_file(f);
        else if (ends_with(name, ".index"))
            rc = dump_index_file(&st, f);
        else
            fprintf(stderr, "Ignoring unknown file %s\n", f);
        fflush(stdout);
    }
    report_problems(&st);
    free(files);
    pairs_free(st.index_mismatches);
    pairs_free(st.time_mismatches);
    pairs_free(st.time_out_of_order);
    pairs_free(st.time_not_found);
    pairs_free(st.non_consecutive);
    opts_free(&o);
    return rc;
}
