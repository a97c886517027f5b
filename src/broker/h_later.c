/* h_later.c - APIs whose features come in later issues
 * (delegation tokens, quotas, transactions; SASL and SCRAM are in h_sasl.c). Each answers with the
 * error Apache Kafka 3.6.1 gives on a node configured like the lab
 * (PLAINTEXT listener, no authorizer), or, for transactions, a retriable
 * COORDINATOR_NOT_AVAILABLE until the transaction coordinator lands.
 * docs/ARCHITECTURE.md lists each choice.
 */
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

/* ---- delegation tokens: not allowed on a PLAINTEXT channel ---- */

void h_create_delegation_token(broker *b, kreq *req) {
    (void)b;
    CreateDelegationTokenRequest r;
    if (KREQ_DECODE(req, CreateDelegationTokenRequest, &r) < 0) return;
    CreateDelegationTokenResponse resp;
    CreateDelegationTokenResponse_init(&resp);
    resp.error_code = KERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED;
    resp.principal_type = kstr_from("User");
    resp.principal_name = kstr_from("ANONYMOUS");
    resp.token_id = kstr_from("");
    resp.hmac = (kbytes){(const uint8_t *)"", 0};
    KREQ_REPLY(req, CreateDelegationTokenResponse, &resp);
}

void h_renew_delegation_token(broker *b, kreq *req) {
    (void)b;
    RenewDelegationTokenRequest r;
    if (KREQ_DECODE(req, RenewDelegationTokenRequest, &r) < 0) return;
    RenewDelegationTokenResponse resp;
    RenewDelegationTokenResponse_init(&resp);
    resp.error_code = KERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED;
    resp.expiry_timestamp_ms = -1;
    KREQ_REPLY(req, RenewDelegationTokenResponse, &resp);
}

void h_expire_delegation_token(broker *b, kreq *req) {
    (void)b;
    ExpireDelegationTokenRequest r;
    if (KREQ_DECODE(req, ExpireDelegationTokenRequest, &r) < 0) return;
    ExpireDelegationTokenResponse resp;
    ExpireDelegationTokenResponse_init(&resp);
    resp.error_code = KERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED;
    resp.expiry_timestamp_ms = -1;
    KREQ_REPLY(req, ExpireDelegationTokenResponse, &resp);
}

void h_describe_delegation_token(broker *b, kreq *req) {
    (void)b;
    DescribeDelegationTokenRequest r;
    if (KREQ_DECODE(req, DescribeDelegationTokenRequest, &r) < 0) return;
    DescribeDelegationTokenResponse resp;
    DescribeDelegationTokenResponse_init(&resp);
    resp.error_code = KERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED;
    resp.tokens = NULL;
    resp.tokens_count = 0;
    KREQ_REPLY(req, DescribeDelegationTokenResponse, &resp);
}

/* ---- quotas and SCRAM: none are defined on this node yet ---- */

void h_describe_client_quotas(broker *b, kreq *req) {
    (void)b;
    DescribeClientQuotasRequest r;
    if (KREQ_DECODE(req, DescribeClientQuotasRequest, &r) < 0) return;
    DescribeClientQuotasResponse resp;
    DescribeClientQuotasResponse_init(&resp);
    resp.error_message = KSTR_NULL;
    resp.entries = NULL;
    resp.entries_count = 0;
    KREQ_REPLY(req, DescribeClientQuotasResponse, &resp);
}

void h_alter_client_quotas(broker *b, kreq *req) {
    (void)b;
    AlterClientQuotasRequest r;
    if (KREQ_DECODE(req, AlterClientQuotasRequest, &r) < 0) return;
    AlterClientQuotasResponse resp;
    AlterClientQuotasResponse_init(&resp);
    int n = r.entries_count > 0 ? r.entries_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, n, resp.entries)) return kreq_fail(req, "out of memory");
    resp.entries_count = n;
    for (int i = 0; i < n; i++) {
        AlterClientQuotasResponse_EntryData *o = &resp.entries[i];
        AlterClientQuotasResponse_EntryData_init(o);
        o->error_code = KERR_INVALID_REQUEST;
        o->error_message = kstr_from("Client quotas are not supported by this broker yet.");
        int ne = r.entries[i].entity_count > 0 ? r.entries[i].entity_count : 0;
        if (!KREQ_ALLOC_ARRAY(req, ne, o->entity)) return kreq_fail(req, "out of memory");
        o->entity_count = ne;
        for (int k = 0; k < ne; k++) {
            AlterClientQuotasResponse_EntityData_init(&o->entity[k]);
            o->entity[k].entity_type = r.entries[i].entity[k].entity_type;
            o->entity[k].entity_name = r.entries[i].entity[k].entity_name;
        }
    }
    KREQ_REPLY(req, AlterClientQuotasResponse, &resp);
}

