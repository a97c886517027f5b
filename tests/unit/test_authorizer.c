/* test_authorizer.c - the StandardAuthorizer decision (security/authorizer.c)
 * against Kafka 3.6.1's semantics: super users, literal / prefixed / wildcard
 * patterns, deny over allow, host and User:* matching, operation
 * implication (ALLOW only), allow.everyone.if.no.acl.found, filters
 * (AclBindingFilter.matches) and the CreateAcls validation messages.
 * Prints "authorizer: N passed, M failed". */
#include <stdio.h>
#include <string.h>

#include "metadata/image.h"
#include "protocol/gen/kmsg.h"
#include "security/authorizer.h"
#include "unit_check.h"

#define ACL(rt, name, pt, princ, host, op, perm) \
    {{0}, (rt), (pt), (op), (perm), (char *)(name), (char *)(princ), (char *)(host)}

static bool may(const az_config *c, const az_acl *acls, size_t n, const char *who, int8_t op, int8_t rt,
                const char *name) {
    return az_authorize(c, acls, n, who, "10.0.0.1", op, rt, name).allowed;
}

static void test_decisions(void) {
    az_config c = {0};
    c.enabled = true;
    CHECK(az_config_set_super_users(&c, " User:admin ; User:CN=broker,O=x") == 0, "super.users parses");
    CHECK(c.nsuper == 2 && strcmp(c.super_users[1], "User:CN=broker,O=x") == 0, "two super users");
    CHECK(may(&c, NULL, 0, "User:admin", AZ_OP_WRITE, AZ_RES_TOPIC, "t"), "super user may do anything");
    CHECK(!may(&c, NULL, 0, "User:alice", AZ_OP_WRITE, AZ_RES_TOPIC, "t"), "no ACL: denied by default");
    c.allow_everyone = true;
    CHECK(may(&c, NULL, 0, "User:alice", AZ_OP_WRITE, AZ_RES_TOPIC, "t"), "no ACL + allow.everyone: allowed");

    az_acl acls[] = {
        ACL(AZ_RES_TOPIC, "t", AZ_PAT_LITERAL, "User:alice", "*", AZ_OP_WRITE, AZ_PERM_ALLOW),
        ACL(AZ_RES_TOPIC, "pre-", AZ_PAT_PREFIXED, "User:bob", "*", AZ_OP_READ, AZ_PERM_ALLOW),
        ACL(AZ_RES_TOPIC, "pre-secret", AZ_PAT_PREFIXED, "User:bob", "*", AZ_OP_READ, AZ_PERM_DENY),
        ACL(AZ_RES_GROUP, "*", AZ_PAT_LITERAL, "User:*", "*", AZ_OP_READ, AZ_PERM_ALLOW),
        ACL(AZ_RES_TOPIC, "h", AZ_PAT_LITERAL, "User:carol", "10.0.0.2", AZ_OP_ALL, AZ_PERM_ALLOW),
        ACL(AZ_RES_TOPIC, "cfg", AZ_PAT_LITERAL, "User:carol", "*", AZ_OP_ALTER_CONFIGS, AZ_PERM_ALLOW),
        ACL(AZ_RES_TOPIC, "d", AZ_PAT_LITERAL, "User:dave", "*", AZ_OP_ALL, AZ_PERM_ALLOW),
        ACL(AZ_RES_TOPIC, "d", AZ_PAT_LITERAL, "User:dave", "*", AZ_OP_READ, AZ_PERM_DENY),
        ACL(AZ_RES_TOPIC, "tx", AZ_PAT_LITERAL, "User:erin", "*", AZ_OP_DESCRIBE, AZ_PERM_ALLOW),
    };
    size_t n = sizeof acls / sizeof acls[0];
    c.allow_everyone = false;
    CHECK(may(&c, acls, n, "User:alice", AZ_OP_WRITE, AZ_RES_TOPIC, "t"), "literal allow");
    CHECK(may(&c, acls, n, "User:alice", AZ_OP_DESCRIBE, AZ_RES_TOPIC, "t"), "WRITE implies DESCRIBE");
    CHECK(!may(&c, acls, n, "User:alice", AZ_OP_READ, AZ_RES_TOPIC, "t"), "WRITE does not give READ");
    CHECK(!may(&c, acls, n, "User:alice", AZ_OP_WRITE, AZ_RES_TOPIC, "t2"), "literal is not a prefix");
    CHECK(!may(&c, acls, n, "User:mallory", AZ_OP_WRITE, AZ_RES_TOPIC, "t"), "other principal denied");
    CHECK(may(&c, acls, n, "User:bob", AZ_OP_READ, AZ_RES_TOPIC, "pre-x"), "prefixed allow");
    CHECK(!may(&c, acls, n, "User:bob", AZ_OP_READ, AZ_RES_TOPIC, "pre-secret-1"), "longer prefixed deny wins");
    CHECK(may(&c, acls, n, "User:bob", AZ_OP_DESCRIBE, AZ_RES_TOPIC, "pre-secret-1"),
          "a DENY READ does not deny DESCRIBE (implication is for ALLOW only)");
    CHECK(may(&c, acls, n, "User:anyone", AZ_OP_READ, AZ_RES_GROUP, "g"), "wildcard name and User:*");
    CHECK(!may(&c, acls, n, "User:anyone", AZ_OP_DELETE, AZ_RES_GROUP, "g"), "wildcard READ is not DELETE");
    CHECK(!may(&c, acls, n, "User:carol", AZ_OP_WRITE, AZ_RES_TOPIC, "h"), "host mismatch");
    CHECK(az_authorize(&c, acls, n, "User:carol", "10.0.0.2", AZ_OP_WRITE, AZ_RES_TOPIC, "h").allowed,
          "host match, ALL covers WRITE");
    CHECK(may(&c, acls, n, "User:carol", AZ_OP_DESCRIBE_CONFIGS, AZ_RES_TOPIC, "cfg"),
          "ALTER_CONFIGS implies DESCRIBE_CONFIGS");
    CHECK(!may(&c, acls, n, "User:carol", AZ_OP_DESCRIBE, AZ_RES_TOPIC, "cfg"),
          "ALTER_CONFIGS does not imply DESCRIBE");
    CHECK(!may(&c, acls, n, "User:dave", AZ_OP_READ, AZ_RES_TOPIC, "d"), "deny beats allow ALL");
    CHECK(may(&c, acls, n, "User:dave", AZ_OP_WRITE, AZ_RES_TOPIC, "d"), "ALL allows WRITE");
    CHECK(!may(&c, acls, n, "User:erin", AZ_OP_WRITE, AZ_RES_TOPIC, "tx"), "DESCRIBE does not imply WRITE");
    c.allow_everyone = true;
    CHECK(!may(&c, acls, n, "User:mallory", AZ_OP_WRITE, AZ_RES_TOPIC, "t"),
          "allow.everyone does not apply when the resource has ACLs");
    CHECK(may(&c, acls, n, "User:mallory", AZ_OP_WRITE, AZ_RES_TOPIC, "other"), "allow.everyone, no ACLs");

    char line[2048];
    az_decision d = az_authorize(&c, acls, n, "User:dave", "10.0.0.1", AZ_OP_READ, AZ_RES_TOPIC, "d");
    az_audit_text(&d, "User:dave", "10.0.0.1", AZ_OP_READ, AZ_RES_TOPIC, "d", "Fetch", line, sizeof line);
    CHECK(strcmp(line, "Principal = User:dave is Denied operation = READ from host = 10.0.0.1 on resource = "
                       "Topic:LITERAL:d for request = Fetch with resourceRefCount = 1 based on rule "
                       "MatchingAcl(acl=StandardAcl(resourceType=TOPIC, resourceName=d, patternType=LITERAL, "
                       "principal=User:dave, host=*, operation=READ, permissionType=DENY))") == 0,
          "audit line: %s", line);
    c.allow_everyone = false;
    d = az_authorize(&c, acls, n, "User:x", "1.2.3.4", AZ_OP_WRITE, AZ_RES_TRANSACTIONAL_ID, "tid");
    az_audit_text(&d, "User:x", "1.2.3.4", AZ_OP_WRITE, AZ_RES_TRANSACTIONAL_ID, "tid", "InitProducerId", line,
                  sizeof line);
    CHECK(strstr(line, "on resource = TransactionalId:LITERAL:tid") && strstr(line, "based on rule DefaultDeny"),
          "audit default rule: %s", line);
    az_config_free(&c);
}

static void test_filters_and_validation(void) {
    az_acl lit = ACL(AZ_RES_TOPIC, "foo", AZ_PAT_LITERAL, "User:a", "*", AZ_OP_READ, AZ_PERM_ALLOW);
    az_acl pre = ACL(AZ_RES_TOPIC, "fo", AZ_PAT_PREFIXED, "User:a", "*", AZ_OP_READ, AZ_PERM_ALLOW);
    az_acl wild = ACL(AZ_RES_TOPIC, "*", AZ_PAT_LITERAL, "User:a", "*", AZ_OP_READ, AZ_PERM_ALLOW);
    az_filter any = {AZ_RES_ANY, AZ_PAT_ANY, AZ_OP_ANY, AZ_PERM_ANY, NULL, NULL, NULL};
    CHECK(az_filter_matches(&any, &lit) && az_filter_matches(&any, &pre), "ANY matches all");
    az_filter exact = {AZ_RES_TOPIC, AZ_PAT_LITERAL, AZ_OP_ANY, AZ_PERM_ANY, "foo", NULL, NULL};
    CHECK(az_filter_matches(&exact, &lit) && !az_filter_matches(&exact, &pre) && !az_filter_matches(&exact, &wild),
          "LITERAL filter: that pattern only");
    az_filter match = {AZ_RES_TOPIC, AZ_PAT_MATCH, AZ_OP_ANY, AZ_PERM_ANY, "foo", NULL, NULL};
    CHECK(az_filter_matches(&match, &lit) && az_filter_matches(&match, &pre) && az_filter_matches(&match, &wild),
          "MATCH filter: every pattern that applies");
    az_filter anyname = {AZ_RES_TOPIC, AZ_PAT_ANY, AZ_OP_ANY, AZ_PERM_ANY, "fo", NULL, NULL};
    CHECK(az_filter_matches(&anyname, &pre) && !az_filter_matches(&anyname, &lit), "ANY pattern: exact name");
    az_filter op = {AZ_RES_ANY, AZ_PAT_ANY, AZ_OP_WRITE, AZ_PERM_ANY, NULL, "User:a", NULL};
    CHECK(!az_filter_matches(&op, &lit), "operation filter");
    az_filter unk = {AZ_RES_UNKNOWN, AZ_PAT_ANY, AZ_OP_ANY, AZ_PERM_ANY, NULL, NULL, NULL};
    CHECK(az_filter_invalid(&unk) && strcmp(az_filter_invalid(&unk), "Unknown patternFilter.") == 0, "unknown filter");

    char buf[256];
    az_acl bad = lit;
    bad.resource_type = AZ_RES_CLUSTER;
    CHECK(az_acl_invalid(&bad, buf, sizeof buf) &&
              strcmp(buf, "The only valid name for the CLUSTER resource is kafka-cluster") == 0,
          "cluster name: %s", buf);
    bad = lit;
    bad.pattern_type = AZ_PAT_MATCH;
    CHECK(az_acl_invalid(&bad, buf, sizeof buf) && strcmp(buf, "Invalid patternType MATCH") == 0, "%s", buf);
    bad = lit;
    bad.operation = AZ_OP_ANY;
    CHECK(az_acl_invalid(&bad, buf, sizeof buf) && strcmp(buf, "Invalid operation ANY") == 0, "%s", buf);
    bad = lit;
    bad.resource_name = (char *)"";
    CHECK(az_acl_invalid(&bad, buf, sizeof buf) && strcmp(buf, "Invalid empty resource name") == 0, "%s", buf);
    CHECK(!az_acl_invalid(&lit, buf, sizeof buf), "valid");
    CHECK(az_parse_operation("IdempotentWrite") == AZ_OP_IDEMPOTENT_WRITE, "IdempotentWrite");
    CHECK(az_parse_operation("describe_configs") == AZ_OP_DESCRIBE_CONFIGS, "describe_configs");
    CHECK(az_parse_resource_type("TransactionalId") == AZ_RES_TRANSACTIONAL_ID, "TransactionalId");
    CHECK(az_parse_pattern_type("Prefixed") == AZ_PAT_PREFIXED, "Prefixed");
    CHECK(az_parse_operation("Fly") < 0, "unknown op");
}

/* Bindings through the image: AccessControlEntryRecord adds, the remove
 * record takes away, a duplicate id or an unknown removal is refused. */
static void test_image(void) {
    mimage *img = mimage_new(1);
    AccessControlEntryRecord r;
    AccessControlEntryRecord_init(&r);
    memset(r.id.b, 7, 16);
    r.resource_type = AZ_RES_TOPIC;
    r.resource_name = kstr_from("t");
    r.pattern_type = AZ_PAT_LITERAL;
    r.principal = kstr_from("User:alice");
    r.host = kstr_from("*");
    r.operation = AZ_OP_WRITE;
    r.permission_type = AZ_PERM_ALLOW;
    mrecord rec = {KMETA_ACCESS_CONTROL_ENTRY_RECORD, 0, &r};
    CHECK(mimage_apply(img, &rec) == 0 && img->nacls == 1, "ACL added");
    CHECK(strcmp(img->acls[0].principal, "User:alice") == 0, "principal copied");
    CHECK(mimage_apply(img, &rec) < 0 && img->nacls == 1, "same id twice refused");
    RemoveAccessControlEntryRecord rm;
    RemoveAccessControlEntryRecord_init(&rm);
    memset(rm.id.b, 8, 16);
    mrecord rrec = {KMETA_REMOVE_ACCESS_CONTROL_ENTRY_RECORD, 0, &rm};
    CHECK(mimage_apply(img, &rrec) < 0, "unknown id refused");
    memset(rm.id.b, 7, 16);
    CHECK(mimage_apply(img, &rrec) == 0 && img->nacls == 0, "removed");
    CHECK(mimage_apply(img, &rec) == 0, "added again");
    mimage_free(img); /* frees the binding: ASan checks */
}

/* authorizeByResourceType, as InitProducerId uses it for idempotent producers */
static void test_any(void) {
    az_config c = {0};
    az_acl acls[] = {
        ACL(AZ_RES_TOPIC, "a", AZ_PAT_LITERAL, "User:alice", "*", AZ_OP_WRITE, AZ_PERM_ALLOW),
        ACL(AZ_RES_TOPIC, "p-", AZ_PAT_PREFIXED, "User:bob", "*", AZ_OP_ALL, AZ_PERM_ALLOW),
        ACL(AZ_RES_TOPIC, "p", AZ_PAT_PREFIXED, "User:bob", "*", AZ_OP_WRITE, AZ_PERM_DENY),
        ACL(AZ_RES_TOPIC, "x", AZ_PAT_LITERAL, "User:carol", "*", AZ_OP_READ, AZ_PERM_ALLOW),
    };
    size_t n = sizeof acls / sizeof acls[0];
    CHECK(az_authorize_any(&c, acls, n, "User:alice", "h", AZ_OP_WRITE, AZ_RES_TOPIC), "a literal allow");
    CHECK(!az_authorize_any(&c, acls, n, "User:bob", "h", AZ_OP_WRITE, AZ_RES_TOPIC), "allow under a wider deny");
    CHECK(!az_authorize_any(&c, acls, n, "User:carol", "h", AZ_OP_WRITE, AZ_RES_TOPIC), "READ is not WRITE");
    CHECK(!az_authorize_any(&c, acls, n, "User:dave", "h", AZ_OP_WRITE, AZ_RES_TOPIC), "nothing");
    c.allow_everyone = true;
    CHECK(az_authorize_any(&c, acls, n, "User:dave", "h", AZ_OP_WRITE, AZ_RES_TOPIC),
          "allow.everyone: some topic has no ACL");
}

int main(void) {
    test_any();
    test_decisions();
    test_filters_and_validation();
    test_image();
    printf("authorizer: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
