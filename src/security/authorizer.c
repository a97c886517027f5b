/* authorizer.c - Kafka's StandardAuthorizer decision (see authorizer.h).
 * A linear scan of the bindings: the sets an operator writes by hand are
 * small; Kafka's sorted-by-reversed-name index would matter at thousands.
 */
#include "security/authorizer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const RES_NAMES[] = {"UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID",
                                        "DELEGATION_TOKEN", "USER"};
static const char *const RES_PASCAL[] = {"Unknown", "Any", "Topic", "Group", "Cluster", "TransactionalId",
                                         "DelegationToken", "User"};
static const char *const PAT_NAMES[] = {"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"};
static const char *const OP_NAMES[] = {"UNKNOWN",  "ANY",           "ALL",              "READ",
                                       "WRITE",    "CREATE",        "DELETE",           "ALTER",
                                       "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS",
                                       "IDEMPOTENT_WRITE", "CREATE_TOKENS", "DESCRIBE_TOKENS"};
static const char *const PERM_NAMES[] = {"UNKNOWN", "ANY", "DENY", "ALLOW"};

#define NAME_OF(tab, v) ((v) >= 0 && (size_t)(v) < sizeof tab / sizeof tab[0] ? tab[(v)] : "UNKNOWN")

const char *az_resource_type_name(int8_t t) { return NAME_OF(RES_NAMES, t); }
const char *az_resource_type_pascal(int8_t t) { return NAME_OF(RES_PASCAL, t); }
const char *az_pattern_type_name(int8_t t) { return NAME_OF(PAT_NAMES, t); }
const char *az_operation_name(int8_t op) { return NAME_OF(OP_NAMES, op); }
const char *az_permission_name(int8_t p) { return NAME_OF(PERM_NAMES, p); }

/* Equal ignoring case and underscores: "TransactionalId" = "TRANSACTIONAL_ID". */
static bool loose_eq(const char *a, const char *b) {
    for (;;) {
        while (*a == '_') a++;
        while (*b == '_') b++;
        if (!*a || !*b) return !*a && !*b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
        a++, b++;
    }
}

static int parse_in(const char *const *tab, size_t n, const char *s) {
    if (!s) return -1;
    for (size_t i = 0; i < n; i++)
        if (loose_eq(tab[i], s)) return (int)i;
    return -1;
}
int az_parse_resource_type(const char *s) { return parse_in(RES_NAMES, sizeof RES_NAMES / sizeof *RES_NAMES, s); }
int az_parse_operation(const char *s) { return parse_in(OP_NAMES, sizeof OP_NAMES / sizeof *OP_NAMES, s); }
int az_parse_pattern_type(const char *s) { return parse_in(PAT_NAMES, sizeof PAT_NAMES / sizeof *PAT_NAMES, s); }

/* ---- config ---- */

int az_config_set_super_users(az_config *c, const char *list) {
    for (int i = 0; i < c->nsuper; i++) free(c->super_users[i]);
    free(c->super_users);
    c->super_users = NULL;
    c->nsuper = 0;
    if (!list) return 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (len && isspace((unsigned char)*s)) s++, len--;
        while (len && isspace((unsigned char)s[len - 1])) len--;
        if (len) {
            char **grown = realloc(c->super_users, (size_t)(c->nsuper + 1) * sizeof *grown);
            if (!grown) return -1;
            c->super_users = grown;
            if (!(c->super_users[c->nsuper] = strndup(s, len))) return -1;
            c->nsuper++;
        }
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

void az_config_free(az_config *c) {
    az_config_set_super_users(c, NULL);
}

bool az_is_super_user(const az_config *c, const char *principal) {
    for (int i = 0; i < c->nsuper; i++)
        if (strcmp(c->super_users[i], principal) == 0) return true;
    return false;
}

/* ---- the decision ---- */

static bool resource_matches(const az_acl *a, int8_t rtype, const char *rname) {
    if (a->resource_type != rtype) return false;
    if (a->pattern_type == AZ_PAT_LITERAL)
        return strcmp(a->resource_name, rname) == 0 || strcmp(a->resource_name, AZ_WILDCARD) == 0;
    if (a->pattern_type == AZ_PAT_PREFIXED) return strncmp(rname, a->resource_name, strlen(a->resource_name)) == 0;
    return false;
}

static bool implies_describe(int8_t op) {
    return op == AZ_OP_DESCRIBE || op == AZ_OP_READ || op == AZ_OP_WRITE || op == AZ_OP_DELETE || op == AZ_OP_ALTER;
}

/* StandardAuthorizerData.findResult: 1 allowed, -1 denied, 0 no opinion. */
static int acl_result(const az_acl *a, const char *principal, const char *host, int8_t op) {
    if (strcmp(a->principal, principal) != 0 && strcmp(a->principal, AZ_WILDCARD_PRINCIPAL) != 0) return 0;
    if (strcmp(a->host, AZ_WILDCARD) != 0 && strcmp(a->host, host) != 0) return 0;
    if (a->operation != AZ_OP_ALL) {
        if (a->permission == AZ_PERM_ALLOW) {
            /* implication applies to ALLOW only: a DENY READ does not deny DESCRIBE */
            if (op == AZ_OP_DESCRIBE) {
                if (!implies_describe(a->operation)) return 0;
            } else if (op == AZ_OP_DESCRIBE_CONFIGS) {
                if (a->operation != AZ_OP_DESCRIBE_CONFIGS && a->operation != AZ_OP_ALTER_CONFIGS) return 0;
            } else if (op != a->operation) {
                return 0;
            }
        } else if (op != a->operation) {
            return 0;
        }
    }
    return a->permission == AZ_PERM_ALLOW ? 1 : -1;
}

az_decision az_authorize(const az_config *c, const az_acl *acls, size_t n, const char *principal, const char *host,
                         int8_t op, int8_t rtype, const char *rname) {
    az_decision d = {false, AZ_RULE_DEFAULT, NULL};
    if (az_is_super_user(c, principal)) return (az_decision){true, AZ_RULE_SUPER_USER, NULL};
    bool has_resource_acls = false;
    const az_acl *allow = NULL;
    for (size_t i = 0; i < n; i++) {
        const az_acl *a = &acls[i];
        if (!resource_matches(a, rtype, rname)) continue;
        has_resource_acls = true;
        int r = acl_result(a, principal, host, op);
        if (r < 0) return (az_decision){false, AZ_RULE_ACL, a};
        if (r > 0 && !allow) allow = a;
    }
    if (allow) return (az_decision){true, AZ_RULE_ACL, allow};
    if (!has_resource_acls) d.allowed = c->allow_everyone;
    return d;
}

static bool entry_applies(const az_acl *a, const char *principal, const char *host, int8_t op, int8_t rtype) {
    return a->resource_type == rtype && (a->operation == op || a->operation == AZ_OP_ALL) &&
           (strcmp(a->principal, principal) == 0 || strcmp(a->principal, AZ_WILDCARD_PRINCIPAL) == 0) &&
           (strcmp(a->host, AZ_WILDCARD) == 0 || strcmp(a->host, host) == 0);
}

bool az_authorize_any(const az_config *c, const az_acl *acls, size_t n, const char *principal, const char *host,
                      int8_t op, int8_t rtype) {
    if (az_authorize(c, acls, n, principal, host, op, rtype, "hardcode").allowed) return true;
    for (size_t i = 0; i < n; i++) {
        const az_acl *a = &acls[i];
        if (a->permission != AZ_PERM_ALLOW || !entry_applies(a, principal, host, op, rtype)) continue;
        bool denied = false;
        for (size_t j = 0; j < n && !denied; j++) {
            const az_acl *d = &acls[j];
            if (d->permission != AZ_PERM_DENY || !entry_applies(d, principal, host, op, rtype)) continue;
            if (d->pattern_type == AZ_PAT_LITERAL)
                denied = strcmp(d->resource_name, AZ_WILDCARD) == 0 ||
                         (a->pattern_type == AZ_PAT_LITERAL && strcmp(d->resource_name, a->resource_name) == 0);
            else if (d->pattern_type == AZ_PAT_PREFIXED)
                denied = strncmp(a->resource_name, d->resource_name, strlen(d->resource_name)) == 0;
        }
        if (!denied) return true;
    }
    return false;
}

static void acl_text(const az_acl *a, char *buf, size_t len) {
    snprintf(buf, len,
             "StandardAcl(resourceType=%s, resourceName=%s, patternType=%s, principal=%s, host=%s, operation=%s, "
             "permissionType=%s)",
             az_resource_type_name(a->resource_type), a->resource_name, az_pattern_type_name(a->pattern_type),
             a->principal, a->host, az_operation_name(a->operation), az_permission_name(a->permission));
}

const char *az_rule_text(const az_decision *d, char *buf, size_t len) {
    if (d->kind == AZ_RULE_SUPER_USER) {
        snprintf(buf, len, "SuperUser");
    } else if (d->kind == AZ_RULE_ACL && d->acl) {
        char acl[1024];
        acl_text(d->acl, acl, sizeof acl);
        snprintf(buf, len, "MatchingAcl(acl=%s)", acl);
    } else {
        snprintf(buf, len, "%s", d->allowed ? "DefaultAllow" : "DefaultDeny");
    }
    return buf;
}

const char *az_audit_text(const az_decision *d, const char *principal, const char *host, int8_t op, int8_t rtype,
                          const char *rname, const char *request, char *buf, size_t len) {
    char rule[1200];
    snprintf(buf, len,
             "Principal = %s is %s operation = %s from host = %s on resource = %s:LITERAL:%s for request = %s with "
             "resourceRefCount = 1 based on rule %s",
             principal, d->allowed ? "Allowed" : "Denied", az_operation_name(op), host, az_resource_type_pascal(rtype),
             rname, request, az_rule_text(d, rule, sizeof rule));
    return buf;
}

/* ---- filters and validation ---- */

static bool str_match(const char *want, const char *have) { return !want || strcmp(want, have) == 0; }

bool az_filter_matches(const az_filter *f, const az_acl *a) {
    if (f->resource_type != AZ_RES_ANY && f->resource_type != a->resource_type) return false;
    if (f->pattern_type != AZ_PAT_ANY && f->pattern_type != AZ_PAT_MATCH && f->pattern_type != a->pattern_type)
        return false;
    if (f->resource_name) {
        if (f->pattern_type == AZ_PAT_ANY || f->pattern_type == a->pattern_type) {
            if (strcmp(f->resource_name, a->resource_name) != 0) return false;
        } else if (a->pattern_type == AZ_PAT_LITERAL) { /* MATCH */
            if (strcmp(f->resource_name, a->resource_name) != 0 && strcmp(a->resource_name, AZ_WILDCARD) != 0)
                return false;
        } else if (a->pattern_type == AZ_PAT_PREFIXED) {
            if (strncmp(f->resource_name, a->resource_name, strlen(a->resource_name)) != 0) return false;
        } else {
            return false;
        }
    }
    return str_match(f->principal, a->principal) && str_match(f->host, a->host) &&
           (f->operation == AZ_OP_ANY || f->operation == a->operation) &&
           (f->permission == AZ_PERM_ANY || f->permission == a->permission);
}

const char *az_filter_invalid(const az_filter *f) {
    if (f->resource_type == AZ_RES_UNKNOWN || f->pattern_type == AZ_PAT_UNKNOWN ||
        f->resource_type > AZ_RES_USER || f->pattern_type > AZ_PAT_PREFIXED || f->resource_type < 0 ||
        f->pattern_type < 0)
        return "Unknown patternFilter.";
    if (f->operation == AZ_OP_UNKNOWN || f->permission == AZ_PERM_UNKNOWN || f->operation > AZ_OP_DESCRIBE_TOKENS ||
        f->permission > AZ_PERM_ALLOW || f->operation < 0 || f->permission < 0)
        return "Unknown entryFilter.";
    return NULL;
}

const char *az_acl_invalid(const az_acl *a, char *buf, size_t len) {
    /* the broker's checks (AclApis), then the controller's (validateNewAcl) */
    if (a->resource_type == AZ_RES_CLUSTER && strcmp(a->resource_name, AZ_CLUSTER_NAME) != 0)
        snprintf(buf, len, "The only valid name for the CLUSTER resource is %s", AZ_CLUSTER_NAME);
    else if (!*a->resource_name)
        snprintf(buf, len, "Invalid empty resource name");
    else if (a->resource_type <= AZ_RES_ANY || a->resource_type > AZ_RES_USER)
        snprintf(buf, len, "Invalid resourceType %s", az_resource_type_name(a->resource_type));
    else if (a->pattern_type != AZ_PAT_LITERAL && a->pattern_type != AZ_PAT_PREFIXED)
        snprintf(buf, len, "Invalid patternType %s", az_pattern_type_name(a->pattern_type));
    else if (a->operation <= AZ_OP_ANY || a->operation > AZ_OP_DESCRIBE_TOKENS)
        snprintf(buf, len, "Invalid operation %s", az_operation_name(a->operation));
    else if (a->permission != AZ_PERM_ALLOW && a->permission != AZ_PERM_DENY)
        snprintf(buf, len, "Invalid permissionType %s", az_permission_name(a->permission));
    else if (!strchr(a->principal, ':'))
        snprintf(buf, len, "expected a string in format principalType:principalName but got %s", a->principal);
    else
        return NULL;
    return buf;
}

bool az_acl_same(const az_acl *a, const az_acl *b) {
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           a->operation == b->operation && a->permission == b->permission &&
           strcmp(a->resource_name, b->resource_name) == 0 && strcmp(a->principal, b->principal) == 0 &&
           strcmp(a->host, b->host) == 0;
}
