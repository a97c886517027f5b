/* authz.h - the broker's authorizer: Kafka's StandardAuthorizer over the
 * ACL bindings of the metadata image (security/authorizer.h decides).
 *
 * Handlers ask authz_allowed() once per resource, as KafkaApis does through
 * AuthHelper.authorize; with no authorizer configured every check passes.
 * A denial that the client asked for explicitly is logged at INFO on
 * kafka.authorizer.logger, as Kafka.
 */
#ifndef SAMSA_AUTHZ_H
#define SAMSA_AUTHZ_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/request.h"
#include "security/authorizer.h"

struct broker;

/* Reads authorizer.class.name, super.users, allow.everyone.if.no.acl.found. */
int broker_authz_start(struct broker *b, char *err, size_t errlen);
void broker_authz_stop(struct broker *b);
bool authz_enabled(const struct broker *b);

/* May the request's principal do op on (rtype, name)? Denials are logged. */
bool authz_allowed(kreq *req, int8_t op, int8_t rtype, const char *name);
bool authz_allowed_k(kreq *req, int8_t op, int8_t rtype, kstr name);
/* The same without logging a denial (Kafka's logIfDenied=false: filtering
 * lists such as all-topic Metadata). */
bool authz_allowed_quiet(kreq *req, int8_t op, int8_t rtype, kstr name);
/* Kafka's authorizedOperations: the bit set (1 << op) of the resource
 * type's operations the principal may do, logging nothing; all of them
 * without an authorizer. */
int32_t authz_operations(kreq *req, int8_t rtype, kstr name);
/* Kafka's authorizeByResourceType: op on some resource of the type. */
bool authz_any(kreq *req, int8_t op, int8_t rtype);
/* CLUSTER resource checks. */
static inline bool authz_cluster(kreq *req, int8_t op) {
    return authz_allowed(req, op, AZ_RES_CLUSTER, AZ_CLUSTER_NAME);
}

#endif
