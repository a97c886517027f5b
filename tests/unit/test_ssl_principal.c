/* test_ssl_principal.c - ssl.principal.mapping.rules against the cases of
 * Kafka's SslPrincipalMapperTest. */
#include <string.h>

#include "security/ssl_principal.h"
#include "unit_check.h"

static void expect_map(const char *rules, const char *dn, const char *want) {
    char err[256], out[512];
    ssl_principal_mapper *m = ssl_principal_mapper_new(rules, err, sizeof err);
    CHECK(m != NULL, "rules %s: %s", rules, err);
    if (!m) return;
    int rc = ssl_principal_map(m, dn, out, sizeof out);
    if (want) CHECK(rc == 0 && strcmp(out, want) == 0, "rules %s on %s: got %s (rc %d), want %s", rules, dn, out, rc, want);
    else CHECK(rc == -1 && strstr(out, "No rules apply to") != NULL, "rules %s on %s: want no match, got %s", rules, dn, out);
    ssl_principal_mapper_free(m);
}

static void expect_invalid(const char *rules, const char *msg) {
    char err[256];
    ssl_principal_mapper *m = ssl_principal_mapper_new(rules, err, sizeof err);
    CHECK(m == NULL, "rules %s should not parse", rules);
    if (m) ssl_principal_mapper_free(m);
    else if (msg) CHECK(strstr(err, msg) != NULL, "rules %s: %s (want %s)", rules, err, msg);
}

int main(void) {
    /* valid rules parse */
    const char *valid[] = {"DEFAULT", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
                           "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
                           "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L", "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
                           "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/", "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        char err[256];
        ssl_principal_mapper *m = ssl_principal_mapper_new(valid[i], err, sizeof err);
        CHECK(m != NULL, "%s: %s", valid[i], err);
        ssl_principal_mapper_free(m);
    }
    /* invalid ones, with Kafka's message */
    expect_invalid("default", "Invalid rule: `default`");
    expect_invalid("DEFAUL", "Invalid rule: `DEFAUL`");
    expect_invalid("DEFAULT/L", "unmatched substring: `/L`");
    expect_invalid("DEFAULT/U", NULL);
    expect_invalid("RULE:CN=(.*?),OU=ServiceUsers.*/$1", NULL);
    expect_invalid("rule:^CN=(.*?),OU=ServiceUsers.*$/$1/", NULL);
    expect_invalid("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U", "unmatched substring: `/U`");
    expect_invalid("RULE:^CN=(.*?),OU=ServiceUsers.*$/L", NULL);
    expect_invalid("RULE:^CN=(.*?),OU=ServiceUsers.*$/U", NULL);
    expect_invalid("RULE:^CN=(.*?),OU=ServiceUsers.*$/LU", NULL);

    /* SslPrincipalMapperTest.testSslPrincipalMapper */
    const char *rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, "
                        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, "
                        "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, "
                        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT";
    expect_map(rules, "CN=Duke,OU=ServiceUsers,O=Org,C=US", "duke");
    expect_map(rules, "CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme");
    expect_map(rules, "cn=duke,ou=sme,dc=mycp,dc=com", "DUKE@SME");
    expect_map(rules, "cN=duke,OU=JavaSoft,O=Sun Microsystems", "DUKE");
    expect_map(rules, "OU=JavaSoft,O=Sun Microsystems,C=US", "OU=JavaSoft,O=Sun Microsystems,C=US");

    /* testRulesSplitting: commas inside a pattern, blanks around rules */
    expect_map("RULE:^CN=([^,]*),OU=test,O=samsa$/$1@samsa/U, DEFAULT", "CN=client,OU=test,O=samsa", "CLIENT@SAMSA");
    expect_map("  RULE:^CN=([^,]*),.*$/$1/  ,  DEFAULT  ", "CN=a,O=b", "a");
    /* the DN as it is without rules */
    expect_map(NULL, "CN=client,OU=test,O=samsa", "CN=client,OU=test,O=samsa");
    /* no rule applies */
    expect_map("RULE:^CN=(.*),OU=x$/$1/", "CN=a,OU=y", NULL);
    /* escaped slash in the replacement, and a back reference beyond the groups kept literally */
    expect_map("RULE:^CN=([a-z]*)$/$1\\/x/", "CN=abc", "abc/x");
    expect_map("RULE:^CN=([a-z]*)$/$1$2/", "CN=abc", "abc$2");
    /* \d and \s translated */
    expect_map("RULE:^CN=user(\\d+)\\s*$/u$1/", "CN=user42", "u42");

    printf("ssl_principal: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
