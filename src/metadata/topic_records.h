/* topic_records.h - a topic of the metadata image as the records that
 * recreate it (TopicRecord, then one PartitionRecord a partition): what a
 * metadata snapshot and the etcd store's topics/<name> key both hold. */
#ifndef SAMSA_METADATA_TOPIC_RECORDS_H
#define SAMSA_METADATA_TOPIC_RECORDS_H

#include "metadata/image.h"
#include "protocol/gen/partition_record.h"
#include "protocol/gen/topic_record.h"

/* The records borrow t's name and arrays: t must outlive their encoding. */
void mtopic_to_record(const mtopic *t, TopicRecord *tr);
void mpartition_to_record(const mtopic *t, const mpartition *p, PartitionRecord *pr);

#endif
