/* topic_records.c - a topic's current state as metadata records (see topic_records.h). */
#include "metadata/topic_records.h"

void mtopic_to_record(const mtopic *t, TopicRecord *tr) {
    TopicRecord_init(tr);
    tr->name = kstr_from(t->name);
    tr->topic_id = t->id;
}

void mpartition_to_record(const mtopic *t, const mpartition *p, PartitionRecord *pr) {
    PartitionRecord_init(pr);
    pr->partition_id = p->partition_id;
    pr->topic_id = t->id;
    pr->replicas = p->replicas;
    pr->replicas_count = p->nreplicas;
    pr->isr = p->isr;
    pr->isr_count = p->nisr;
    pr->removing_replicas = p->removing; /* an ongoing reassignment */
    pr->removing_replicas_count = p->nremoving;
    pr->adding_replicas = p->adding;
    pr->adding_replicas_count = p->nadding;
    pr->leader = p->leader;
    pr->leader_epoch = p->leader_epoch;
    pr->partition_epoch = p->partition_epoch;
}
