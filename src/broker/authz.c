/* authz.c - the broker's authorizer (see authz.h). */
#include "broker/authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"
#include "net/server.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

#define AUDIT "kafka.authorizer.logger"

struct broker_authz {
    az_config cfg;
};

/* StandardAuthorizer.getDefaultResult: Boolean.valueOf of the trimmed value. */
static bool truthy(const char *v) {
    if (!v) return false;
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    return n == 4 && strncasecmp(v, "true", 4) == 0;
}

int broker_authz_start(broker *b, char *err, size_t errlen) {
    const char *cls = props_get(&b->cfg.raw, "authorizer.class.name");
    if (!cls || !strstr(cls, "StandardAuthorizer")) return 0; /* config_security.c refused the others */
    struct broker_authz *z = calloc(1, sizeof *z);
    if (!z || az_config_set_super_users(&z->cfg, props_get(&b->cfg.raw, "super.users")) < 0) {
        if (z) az_config_free(&z->cfg);
        free(z);
        snprintf(err, errlen, "out of memory reading super.users");
        return -1;
    }
    z->cfg.enabled = true;
    z->cfg.allow_everyone = truthy(props_get(&b->cfg.raw, "allow.everyone.if.no.acl.found"));
    b->authz = z;
    return 0;
}

void broker_authz_stop(broker *b) {
    if (!b->authz) return;
    az_config_free(&b->authz->cfg);
    free(b->authz);
    b->authz = NULL;
}

bool authz_enabled(const broker *b) { return b->authz != NULL; }

/* The client's address without the port ("127.0.0.1:5555" -> "127.0.0.1"). */
static void client_host(const kreq *req, char *out, size_t len) {
    const char *peer = req->conn ? kconn_peer(req->conn) : "";
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= len) n = len - 1;
    memcpy(out, peer, n);
    out[n] = 0;
}

static bool decide(kreq *req, int8_t op, int8_t rtype, const char *name, bool log_denied) {
    broker *b = req->broker;
    if (!b->authz) return true;
    const char *principal = req->conn ? kconn_principal(req->conn) : "User:ANONYMOUS";
    char host[64];
    client_host(req, host, sizeof host);
    az_decision d = az_authorize(&b->authz->cfg, b->image->acls, (size_t)b->image->nacls, principal, host, op, rtype,
                                 name);
    if (!d.allowed && log_denied) {
        const kapi_info *info = kapi_lookup(req->api_key);
        char line[2048];
        log_info(AUDIT, "%s", az_audit_text(&d, principal, host, op, rtype, name, info ? info->name : "?", line,
                                            sizeof line));
    }
    return d.allowed;
}

bool authz_allowed(kreq *req, int8_t op, int8_t rtype, const char *name) { return decide(req, op, rtype, name, true); }

static bool decide_k(kreq *req, int8_t op, int8_t rtype, kstr name, bool log_denied) {
    if (!req->broker->authz) return true;
    char buf[512];
    const char *n = buf;
    char *heap = NULL;
    int32_t len = name.len > 0 ? name.len : 0;
    if ((size_t)len < sizeof buf) {
        if (len) memcpy(buf, name.p, (size_t)len);
        buf[len] = 0;
    } else {
        heap = strndup(name.p, (size_t)len);
        if (!heap) return false;
        n = heap;
    }
    bool ok = decide(req, op, rtype, n, log_denied);
    free(heap);
    return ok;
}

bool authz_allowed_k(kreq *req, int8_t op, int8_t rtype, kstr name) { return decide_k(req, op, rtype, name, true); }
bool authz_allowed_quiet(kreq *req, int8_t op, int8_t rtype, kstr name) {
    return decide_k(req, op, rtype, name, false);
}

int32_t authz_operations(kreq *req, int8_t rtype, kstr name) {
    /* AclEntry.supportedOperations */
    static const int8_t topic[] = {AZ_OP_READ, AZ_OP_WRITE, AZ_OP_CREATE, AZ_OP_DESCRIBE, AZ_OP_DELETE, AZ_OP_ALTER,
                                   AZ_OP_DESCRIBE_CONFIGS, AZ_OP_ALTER_CONFIGS, 0};
    static const int8_t group[] = {AZ_OP_READ, AZ_OP_DESCRIBE, AZ_OP_DELETE, 0};
    static const int8_t cluster[] = {AZ_OP_CREATE, AZ_OP_CLUSTER_ACTION, AZ_OP_DESCRIBE_CONFIGS, AZ_OP_ALTER_CONFIGS,
                                     AZ_OP_IDEMPOTENT_WRITE, AZ_OP_ALTER, AZ_OP_DESCRIBE, 0};
    static const int8_t txn[] = {AZ_OP_DESCRIBE, AZ_OP_WRITE, 0};
    const int8_t *ops = rtype == AZ_RES_TOPIC ? topic : rtype == AZ_RES_GROUP ? group
                      : rtype == AZ_RES_CLUSTER ? cluster : txn;
    int32_t bits = 0;
    for (int i = 0; ops[i]; i++)
        if (authz_allowed_quiet(req, ops[i], rtype, name)) bits |= (int32_t)1 << ops[i];
    return bits;
}

bool authz_any(kreq *req, int8_t op, int8_t rtype) {
    broker *b = req->broker;
    if (!b->authz) return true;
    char host[64];
    client_host(req, host, sizeof host);
    return az_authorize_any(&b->authz->cfg, b->image->acls, (size_t)b->image->nacls,
                            req->conn ? kconn_principal(req->conn) : "User:ANONYMOUS", host, op, rtype);
}
