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

/* (client quotas: h_quotas.c) */

