/* producer_snapshot.h - producer state snapshot files, `<offset>.snapshot`
 * in the partition dir, byte for byte Kafka 3.6.1's
 * (ProducerStateManager.writeSnapshot/readSnapshot):
 *
 *   version i16 (= 1) | crc u32 | count i32 | count x entry
 *   entry (46 bytes): producer_id i64 | epoch i16 | last_sequence i32 |
 *     last_offset i64 | offset_delta i32 | timestamp i64 |
 *     coordinator_epoch i32 | current_txn_first_offset i64 (-1: none)
 *
 * all big-endian; the CRC-32C covers every byte after the crc field (to the
 * end of the file, as Kafka computes it). The file name's offset is the
 * state's end offset: the snapshot describes every batch below it. This
 * module is the codec and the file operations only; what goes in an entry
 * and when snapshots are taken is broker/producer_state.c's job.
 */
#ifndef SAMSA_STORAGE_PRODUCER_SNAPSHOT_H
#define SAMSA_STORAGE_PRODUCER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSNAP_SUFFIX ".snapshot"
#define PSNAP_VERSION 1
#define PSNAP_HEADER_SIZE 10 /* version, crc, entry count */
#define PSNAP_CRC_OFFSET 2
#define PSNAP_ENTRIES_OFFSET 6 /* the CRC covers from here */
#define PSNAP_ENTRY_SIZE 46

typedef struct psnap_entry {
    int64_t producer_id;
    int16_t epoch;
    int32_t last_sequence;          /* -1: no batch */
    int64_t last_offset;            /* -1: no batch (then the sequence fields are unused) */
    int32_t offset_delta;           /* last offset - first offset of the last batch */
    int64_t timestamp;              /* the producer's last timestamp */
    int32_t coordinator_epoch;
    int64_t current_txn_first_offset; /* -1: no ongoing transaction */
} psnap_entry;

/* Bytes of a snapshot holding n entries. */
size_t psnap_encoded_size(int n);
/* Encodes n entries, in the order given, into out (psnap_encoded_size(n)
 * bytes), CRC included. */
void psnap_encode(const psnap_entry *e, int n, uint8_t *out);

/* Result of decoding or reading a file that is not a usable snapshot
 * (Kafka's CorruptSnapshotException): the caller deletes it. */
#define PSNAP_CORRUPT 1
/* Decodes a whole file's bytes. Returns 0 with *out (malloc'd, may be NULL
 * when *n == 0) or PSNAP_CORRUPT with why filled (short, wrong version,
 * negative or oversized count, CRC mismatch), or -1 (ENOMEM). Bytes after
 * the last entry are allowed, as Kafka's schema read allows them (they are
 * under the CRC). */
int psnap_decode(const uint8_t *buf, size_t len, psnap_entry **out, int *n, char *why, size_t whylen);

/* "<dir>/<20-digit offset>.snapshot" into buf. */
int psnap_path(char *buf, size_t cap, const char *dir, int64_t offset);

/* Writes the snapshot for offset atomically: a temporary file
 * ("<name>.tmp"), fsync, rename over any old one, fsync the dir. Returns 0
 * or -1 with errno (the temporary file is removed). */
int psnap_write(const char *dir, int64_t offset, const psnap_entry *e, int n);
/* The same, without fsync when sync is false (snapshots taken at roll, on
 * the event loop: a crash may leave a torn one, which its CRC rejects and
 * the next older one or the log replay replaces). */
int psnap_write_sync(const char *dir, int64_t offset, const psnap_entry *e, int n, bool sync);
/* Reads and decodes <offset>.snapshot: 0, PSNAP_CORRUPT (why filled) or -1
 * with errno (ENOENT when absent). Files above 256 MiB are corrupt. */
int psnap_read(const char *dir, int64_t offset, psnap_entry **out, int *n, char *why, size_t whylen);

/* Offsets of the snapshot files in dir, ascending (*offsets malloc'd, NULL
 * when none). A name is a snapshot when it is digits then ".snapshot", as
 * Kafka's listSnapshotFiles. Leftover "*.snapshot.tmp" files of an
 * interrupted write are removed on the way. Returns 0 or -1 with errno. */
int psnap_list(const char *dir, int64_t **offsets, int *n);
/* The offset a file name stands for when it is a snapshot's (as psnap_list
 * reads names): 0, or -1 when it is not one. */
int psnap_parse_name(const char *name, int64_t *offset);
/* Removes <offset>.snapshot (absent is fine). 0 or -1 with errno. */
int psnap_delete(const char *dir, int64_t offset);
/* Removes every snapshot with offset < below (Kafka's deleteSnapshotsBefore).
 * Returns how many were removed, or -1. */
int psnap_delete_below(const char *dir, int64_t below);

#endif
