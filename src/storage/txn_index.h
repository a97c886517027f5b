/* txn_index.h - a segment's transaction index, `<base>.txnindex`, in Kafka
 * 3.6.1's format (TransactionIndex, AbortedTxn): one 34-byte entry per
 * aborted transaction whose ABORT marker is in the segment,
 *
 *   version i16 (0) | producer_id i64 | first_offset i64 | last_offset i64 |
 *   last_stable_offset i64          (big-endian, no header, no checksum)
 *
 * last_offset is the marker's offset; last_stable_offset the LSO when the
 * marker was written. Entries are appended in increasing last_offset. A
 * read_committed Fetch asks every index from the segment holding the fetch
 * offset on for the aborted transactions overlapping [fetch offset, upper
 * bound) until one says the search is complete (an entry's LSO reaches the
 * upper bound): txi_collect / txi_collect_segments. The file is created on
 * the first append, as in Kafka; a trailing partial entry is ignored.
 */
#ifndef SAMSA_STORAGE_TXN_INDEX_H
#define SAMSA_STORAGE_TXN_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TXN_INDEX_SUFFIX ".txnindex"
#define ABORTED_TXN_SIZE 34
#define ABORTED_TXN_VERSION 0

typedef struct aborted_txn {
    int16_t version; /* Kafka reads the first byte only: 0 for every entry it writes */
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset;
    int64_t last_stable_offset;
} aborted_txn;

void aborted_txn_encode(const aborted_txn *t, uint8_t out[ABORTED_TXN_SIZE]);
void aborted_txn_decode(const uint8_t in[ABORTED_TXN_SIZE], aborted_txn *t);

typedef struct txn_index {
    char *path;
    int fd;                 /* -1 until the file exists */
    int64_t start_offset;   /* the segment's base offset */
    int64_t size;           /* bytes in the file */
    int64_t last_offset;    /* of the last entry appended since open, -1 none (as Kafka) */
} txn_index;

/* "<dir>/<20-digit base>.txnindex" into buf. */
int txi_path(char *buf, size_t cap, const char *dir, int64_t base);
/* Opens the index of the segment at base; the file is opened if present,
 * created on the first append otherwise. 0 or -1 with errno. */
int txi_open(txn_index *x, const char *dir, int64_t base);
void txi_close(txn_index *x);
/* Appends one entry. EINVAL when its last_offset does not exceed the last
 * one appended since open (Kafka does not read the file's last entry). On an
 * I/O failure the file is cut back. 0 or -1 with errno. */
int txi_append(txn_index *x, const aborted_txn *t);
int txi_flush(txn_index *x);
/* Empties the index (segment recovery rebuilds it). */
int txi_reset(txn_index *x);
/* Drops the first entry with last_offset >= offset and everything after. */
int txi_truncate_to(txn_index *x, int64_t offset);
/* Closes and removes the file (absent is fine). */
int txi_delete(txn_index *x);

/* Errors while reading entries: an entry whose version is above ours. */
#define TXI_BAD_VERSION 1

/* Every entry (*out malloc'd, NULL when none). 0, TXI_BAD_VERSION or -1. */
int txi_read_all(txn_index *x, aborted_txn **out, int *n);
/* Kafka's sanityCheck: every entry's last offset >= start_offset. 0, or
 * TXI_BAD_VERSION / -1 (EINVAL when an entry is below the start). */
int txi_sanity_check(txn_index *x);

/* A growable list of aborted transactions, the answer of a collect. */
typedef struct aborted_list {
    aborted_txn *v;
    int n, cap;
} aborted_list;
void aborted_list_free(aborted_list *l);

/* Kafka's collectAbortedTxns: appends to out the entries with last_offset
 * >= fetch_offset and first_offset < upper_bound; *complete is set when an
 * entry's last_stable_offset >= upper_bound (later segments need not be
 * read). 0, TXI_BAD_VERSION or -1. */
int txi_collect(txn_index *x, int64_t fetch_offset, int64_t upper_bound, aborted_list *out, bool *complete);
/* The same over the indexes of consecutive segments, starting with the one
 * holding fetch_offset (LocalLog.collectAbortedTransactions). */
int txi_collect_segments(txn_index *const *segs, int nsegs, int64_t fetch_offset, int64_t upper_bound,
                         aborted_list *out);

#endif
