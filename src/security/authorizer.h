/* authorizer.h - Kafka's StandardAuthorizer decision, pure (no I/O).
 *
 * An ACL binding is (resource pattern, entry): a resource type and name with
 * a LITERAL or PREFIXED pattern, and a principal, host, operation and
 * ALLOW/DENY. az_authorize() decides one action as Kafka 3.6.1's
 * StandardAuthorizerData.authorize: super users may do anything; otherwise
 * the ACLs that match the resource (its literal name, a prefix of it, or the
 * literal wildcard "*") and the principal (or User:*) and host (or *) are
 * looked at: any DENY wins, then any ALLOW; an ALLOW of READ, WRITE, DELETE
 * or ALTER implies DESCRIBE, of ALTER_CONFIGS implies DESCRIBE_CONFIGS, and
 * ALL matches every operation. With no ACL at all on the resource the answer
 * is allow.everyone.if.no.acl.found.
 *
 * Codes are Kafka's wire values (ResourceType, PatternType, AclOperation,
 * AclPermissionType).
 */
#ifndef SAMSA_AUTHORIZER_H
#define SAMSA_AUTHORIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { AZ_RES_UNKNOWN = 0, AZ_RES_ANY, AZ_RES_TOPIC, AZ_RES_GROUP, AZ_RES_CLUSTER, AZ_RES_TRANSACTIONAL_ID,
       AZ_RES_DELEGATION_TOKEN, AZ_RES_USER };
enum { AZ_PAT_UNKNOWN = 0, AZ_PAT_ANY, AZ_PAT_MATCH, AZ_PAT_LITERAL, AZ_PAT_PREFIXED };
enum { AZ_OP_UNKNOWN = 0, AZ_OP_ANY, AZ_OP_ALL, AZ_OP_READ, AZ_OP_WRITE, AZ_OP_CREATE, AZ_OP_DELETE, AZ_OP_ALTER,
       AZ_OP_DESCRIBE, AZ_OP_CLUSTER_ACTION, AZ_OP_DESCRIBE_CONFIGS, AZ_OP_ALTER_CONFIGS, AZ_OP_IDEMPOTENT_WRITE,
       AZ_OP_CREATE_TOKENS, AZ_OP_DESCRIBE_TOKENS };
enum { AZ_PERM_UNKNOWN = 0, AZ_PERM_ANY, AZ_PERM_DENY, AZ_PERM_ALLOW };

#define AZ_CLUSTER_NAME "kafka-cluster"
#define AZ_WILDCARD "*"
#define AZ_WILDCARD_PRINCIPAL "User:*"

/* One ACL binding (Kafka's StandardAcl, with the record's id). */
typedef struct az_acl {
    uint8_t id[16];
    int8_t resource_type;
    int8_t pattern_type;
    int8_t operation;
    int8_t permission;
    char *resource_name;
    char *principal;       /* "User:alice" */
    char *host;            /* "*" or an address */
} az_acl;

/* A filter (Kafka's AclBindingFilter): NULL strings match anything. */
typedef struct az_filter {
    int8_t resource_type;  /* ANY matches every type */
    int8_t pattern_type;   /* ANY, MATCH, LITERAL or PREFIXED */
    int8_t operation;      /* ANY matches every operation */
    int8_t permission;     /* ANY matches both */
    const char *resource_name;
    const char *principal;
    const char *host;
} az_filter;

typedef struct az_config {
    bool enabled;               /* authorizer.class.name names StandardAuthorizer */
    bool allow_everyone;        /* allow.everyone.if.no.acl.found */
    char **super_users;         /* "User:admin", ... (owned) */
    int nsuper;
} az_config;

typedef enum { AZ_RULE_SUPER_USER, AZ_RULE_DEFAULT, AZ_RULE_ACL } az_rule_kind;

typedef struct az_decision {
    bool allowed;
    az_rule_kind kind;
    const az_acl *acl;          /* the matching ACL for AZ_RULE_ACL */
} az_decision;

/* Parse super.users ("User:a;User:b"), keeping the other fields. Returns 0
 * or -1 (out of memory). */
int az_config_set_super_users(az_config *c, const char *list);
void az_config_free(az_config *c);
bool az_is_super_user(const az_config *c, const char *principal);

/* Decide: may principal, from host, do op on resource (rtype, rname)? */
az_decision az_authorize(const az_config *c, const az_acl *acls, size_t n, const char *principal, const char *host,
                         int8_t op, int8_t rtype, const char *rname);

/* Kafka's Authorizer.authorizeByResourceType: may the principal do op on
 * at least one resource of the type? (A super user, or an ALLOW for the
 * hard-coded name "hardcode", or an ALLOW pattern that no DENY for the
 * wildcard, the same name or a prefix of it takes away.) */
bool az_authorize_any(const az_config *c, const az_acl *acls, size_t n, const char *principal, const char *host,
                      int8_t op, int8_t rtype);

/* The decision's rule as Kafka prints it ("SuperUser", "DefaultDeny",
 * "MatchingAcl(acl=StandardAcl(...))") into buf. */
const char *az_rule_text(const az_decision *d, char *buf, size_t len);
/* Kafka's audit line (kafka.authorizer.logger) into buf. */
const char *az_audit_text(const az_decision *d, const char *principal, const char *host, int8_t op, int8_t rtype,
                          const char *rname, const char *request, char *buf, size_t len);

/* Kafka's AclBindingFilter.matches. */
bool az_filter_matches(const az_filter *f, const az_acl *a);
/* Kafka's isUnknown checks: a filter with UNKNOWN parts matches nothing
 * and is refused. Returns the INVALID_REQUEST message or NULL. */
const char *az_filter_invalid(const az_filter *f);
/* AclControlManager.validateNewAcl and the broker's checks: NULL when valid,
 * otherwise the INVALID_REQUEST message (in buf). */
const char *az_acl_invalid(const az_acl *a, char *buf, size_t len);
/* Same binding (ignoring the id). */
bool az_acl_same(const az_acl *a, const az_acl *b);

/* Names as Kafka's enums print (TOPIC, LITERAL, DESCRIBE_CONFIGS, ALLOW);
 * "UNKNOWN" when out of range. */
const char *az_resource_type_name(int8_t t);
const char *az_pattern_type_name(int8_t t);
const char *az_operation_name(int8_t op);
const char *az_permission_name(int8_t p);
/* SecurityUtils.resourceTypeName: PascalCase ("TransactionalId"). */
const char *az_resource_type_pascal(int8_t t);
/* Parse a name case-insensitively, with or without underscores as Kafka's
 * CLI and SecurityUtils accept ("Topic", "TRANSACTIONAL_ID",
 * "TransactionalId", "IdempotentWrite"); -1 when unknown. */
int az_parse_resource_type(const char *s);
int az_parse_operation(const char *s);
int az_parse_pattern_type(const char *s);

#endif
