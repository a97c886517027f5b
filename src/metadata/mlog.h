/* mlog.h - the cluster metadata log, __cluster_metadata-0.
 *
 * Kafka's KRaft layout: a partition log in the metadata log dir whose
 * records are metadata records framed as
 *   [uvarint frame version=1][uvarint api key][uvarint record version][record]
 * with a null key. Changes are appended as one batch per operation (so a
 * topic and its partitions appear atomically), then applied to the image.
 * At start-up the whole log is replayed into a fresh image.
 */
#ifndef SAMSA_MLOG_H
#define SAMSA_MLOG_H

#include <stdint.h>

#include "metadata/image.h"
#include "storage/log.h"

typedef struct mlog mlog;

/* Open (creating if needed) <dir>/__cluster_metadata-0 and replay it into
 * img. fsync_each: fsync every append (metadata changes are rare and must
 * survive power loss, as Kafka's controller does). */
int mlog_open(const char *dir, mimage *img, mlog **out, char *err, size_t errlen);
/* Append records as one batch, then apply them to the image. Returns 0, or
 * -1 when the write failed (nothing applied). */
int mlog_append(mlog *m, const mrecord *recs, int n);
int64_t mlog_end_offset(const mlog *m);
int32_t mlog_leader_epoch(const mlog *m);
plog *mlog_plog(mlog *m);
void mlog_close(mlog *m);

/* Encode one metadata record value in the framing above. */
int mrecord_encode(const mrecord *rec, kwriter *w);
/* Decode one record value; the struct is allocated from a. */
int mrecord_decode(const uint8_t *p, size_t len, karena *a, mrecord *out);

#endif
