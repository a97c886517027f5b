/* handlers.h - one function per Kafka API this broker answers.
 *
 * Each takes the broker and a request and answers it exactly once (see
 * request.h). Files: src/broker/h_<area>.c for the core APIs,
 * src/group/ for the group coordinator's, h_configs.c for configs.
 */
#ifndef SAMSA_HANDLERS_H
#define SAMSA_HANDLERS_H

#include "broker/broker.h"
#include "broker/request.h"

#define HANDLER(name) void name(broker *b, kreq *req)

/* Metadata changes made for one request complete asynchronously (in a
 * cluster, when etcd has ordered them): the request is answered when the
 * last one completes. Lives in the request's arena. */
typedef struct req_changes req_changes;
typedef void (*req_changes_reply_fn)(broker *b, kreq *req, void *ctx);
/* Starts with one hold for the handler itself; NULL on out of memory. */
req_changes *req_changes_begin(kreq *req, req_changes_reply_fn reply, void *ctx);
void req_changes_add(req_changes *rc);
/* Drops a hold; the last one answers the request. */
void req_changes_done(broker *b, req_changes *rc);
/* Defines the usual req_changes_reply_fn: encode the response kept in ctx. */
#define REQ_CHANGES_REPLY(fname, Type)                         \
    static void fname(broker *b, kreq *req, void *ctx) {       \
        (void)b;                                               \
        KREQ_REPLY(req, Type, (Type *)ctx);                    \
    }

/* core: h_produce.c, h_fetch.c, h_metadata.c, h_offsets.c, h_topics.c, h_admin.c */
HANDLER(h_produce);
/* Produce requests queued for the end of the loop's turn are appended and
 * answered now (shutdown, after the loop stopped). */
void produce_turn_shutdown(broker *b);
HANDLER(h_fetch);
HANDLER(h_list_offsets);
HANDLER(h_metadata);
HANDLER(h_api_versions);
HANDLER(h_create_topics);
HANDLER(h_delete_topics);
HANDLER(h_create_partitions);
HANDLER(h_delete_records);
HANDLER(h_offset_for_leader_epoch);
HANDLER(h_describe_log_dirs);
HANDLER(h_describe_cluster);
HANDLER(h_describe_quorum);
HANDLER(h_elect_leaders);
HANDLER(h_update_features);
HANDLER(h_init_producer_id);
HANDLER(h_alter_replica_log_dirs);
HANDLER(h_alter_partition_reassignments);
HANDLER(h_list_partition_reassignments);
HANDLER(h_unregister_broker);
HANDLER(h_describe_producers);

/* configs: h_configs.c */
HANDLER(h_describe_configs);
HANDLER(h_alter_configs);
HANDLER(h_incremental_alter_configs);

/* groups: src/group/ */
HANDLER(h_find_coordinator);
HANDLER(h_join_group);
HANDLER(h_sync_group);
HANDLER(h_heartbeat);
HANDLER(h_leave_group);
HANDLER(h_offset_commit);
HANDLER(h_offset_fetch);
HANDLER(h_describe_groups);
HANDLER(h_list_groups);
HANDLER(h_delete_groups);
HANDLER(h_offset_delete);

/* not yet implemented features answer as Kafka 3.6.1 does on a node
 * without SASL, authorizer, or (yet) transactions: h_later.c */
HANDLER(h_sasl_handshake);
HANDLER(h_sasl_authenticate);
HANDLER(h_add_partitions_to_txn);
HANDLER(h_add_offsets_to_txn);
HANDLER(h_end_txn);
HANDLER(h_write_txn_markers);
HANDLER(h_txn_offset_commit);
HANDLER(h_describe_acls);
HANDLER(h_create_acls);
HANDLER(h_delete_acls);
HANDLER(h_create_delegation_token);
HANDLER(h_renew_delegation_token);
HANDLER(h_expire_delegation_token);
HANDLER(h_describe_delegation_token);
HANDLER(h_describe_client_quotas);
HANDLER(h_alter_client_quotas);
HANDLER(h_describe_user_scram_credentials);
HANDLER(h_alter_user_scram_credentials);
HANDLER(h_describe_transactions);
HANDLER(h_list_transactions);

#undef HANDLER
#endif
