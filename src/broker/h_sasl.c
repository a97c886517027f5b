/* h_sasl.c - SaslHandshake, SaslAuthenticate (through the connection's
 * sasl_session, broker/sasl_broker.h) and the SCRAM credential APIs:
 * DescribeUserScramCredentials from the image (Kafka's ScramImage.describe),
 * AlterUserScramCredentials validated as Kafka's ScramControlManager and
 * committed as UserScramCredentialRecord / RemoveUserScramCredentialRecord
 * through the metadata store (so every node of a cluster sees them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "broker/sasl_broker.h"
#include "mstore/mstore.h"
#include "net/server.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "security/scram.h"
#include "util/log.h"

#define SELECTOR "org.apache.kafka.common.network.Selector"

/* ---- SASL ---- */

void h_sasl_handshake(broker *b, kreq *req) {
    SaslHandshakeRequest r;
    if (KREQ_DECODE(req, SaslHandshakeRequest, &r) < 0) return;
    SaslHandshakeResponse resp;
    SaslHandshakeResponse_init(&resp);
    resp.mechanisms = NULL;
    resp.mechanisms_count = 0;
    struct kconn *c = req->conn;
    sasl_session *s = c ? broker_sasl_session(b, c) : NULL;
    if (!s) { /* a PLAINTEXT or SSL listener: KafkaApis answers ILLEGAL_SASL_STATE */
        resp.error_code = KERR_ILLEGAL_SASL_STATE;
        KREQ_REPLY(req, SaslHandshakeResponse, &resp);
        return;
    }
    char why[300] = "";
    resp.error_code = sasl_handshake(s, req->api_version, r.mechanism.p ? r.mechanism.p : "",
                                     r.mechanism.len > 0 ? (size_t)r.mechanism.len : 0, why, sizeof why);
    const sasl_server_config *cfg = s->cfg;
    if (KREQ_ALLOC_ARRAY(req, cfg->nmechanisms, resp.mechanisms)) {
        for (int i = 0; i < cfg->nmechanisms; i++) resp.mechanisms[i] = kstr_from(cfg->mechanisms[i]);
        resp.mechanisms_count = cfg->nmechanisms;
    }
    if (resp.error_code) {
        log_info(SELECTOR, "[SocketServer listenerType=BROKER, nodeId=%d] Failed authentication with /%s (%s)",
                 b->cfg.node_id, kconn_peer(c), why);
        kwriter *w = kreq_response_begin(req);
        if (w) SaslHandshakeResponse_encode(&resp, w, req->api_version);
        broker_sasl_fail_later(b, req);
        return;
    }
    /* v0: raw tokens follow, which may be shorter than a request header */
    if (req->api_version == 0) kconn_set_frame_limit(c, broker_sasl_max_receive(b), true);
    KREQ_REPLY(req, SaslHandshakeResponse, &resp);
}

void h_sasl_authenticate(broker *b, kreq *req) {
    SaslAuthenticateRequest r;
    if (KREQ_DECODE(req, SaslAuthenticateRequest, &r) < 0) return;
    SaslAuthenticateResponse resp;
    SaslAuthenticateResponse_init(&resp);
    resp.auth_bytes = (kbytes){(const uint8_t *)"", 0};
    struct kconn *c = req->conn;
    sasl_session *s = c ? broker_sasl_session(b, c) : NULL;
    if (!s) {
        resp.error_code = KERR_ILLEGAL_SASL_STATE;
        resp.error_message = kstr_from("SaslAuthenticate request received after successful authentication");
        KREQ_REPLY(req, SaslAuthenticateResponse, &resp);
        return;
    }
    sasl_result res;
    sasl_authenticate(s, req->api_version, r.auth_bytes.p, r.auth_bytes.len > 0 ? (size_t)r.auth_bytes.len : 0,
                      loop_now_ms(b->loop), &res);
    resp.error_code = res.error_code;
    resp.error_message = res.error_code ? kstr_from(karena_sprintf(&req->arena, "%s", res.message)) : KSTR_NULL;
    if (res.token_len) {
        uint8_t *t = karena_alloc(&req->arena, res.token_len);
        if (t) {
            memcpy(t, res.token, res.token_len);
            resp.auth_bytes = (kbytes){t, (int32_t)res.token_len};
        }
    }
    resp.session_lifetime_ms = res.session_lifetime_ms;
    if (!res.error_code && sasl_authenticated(s)) {
        kconn_set_principal(c, s->principal);
        kconn_set_frame_limit(c, 0, false); /* authenticated: socket.request.max.bytes */
    }
    bool close = res.close;
    char reason[sizeof res.reason];
    snprintf(reason, sizeof reason, "%s", res.reason);
    sasl_result_free(&res);
    if (close) {
        log_info(SELECTOR, "[SocketServer listenerType=BROKER, nodeId=%d] Failed authentication with /%s (%s)",
                 b->cfg.node_id, kconn_peer(c), reason);
        kwriter *w = kreq_response_begin(req);
        if (w) SaslAuthenticateResponse_encode(&resp, w, req->api_version);
        broker_sasl_fail_later(b, req);
        return;
    }
    KREQ_REPLY(req, SaslAuthenticateResponse, &resp);
}

/* ---- DescribeUserScramCredentials ---- */

#define DESCRIBE_DUPLICATE_USER "Cannot describe SCRAM credentials for the same user twice in a single request: "
#define DESCRIBE_MISSING_USER "Attempt to describe a user credential that does not exist: "

void h_describe_user_scram_credentials(broker *b, kreq *req) {
    DescribeUserScramCredentialsRequest r;
    if (KREQ_DECODE(req, DescribeUserScramCredentialsRequest, &r) < 0) return;
    DescribeUserScramCredentialsResponse resp;
    DescribeUserScramCredentialsResponse_init(&resp);
    resp.error_message = KSTR_NULL;
    if (!authz_cluster(req, AZ_OP_DESCRIBE)) { /* KafkaApis: DESCRIBE on the cluster */
        resp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = kstr_from(kerr_message(KERR_CLUSTER_AUTHORIZATION_FAILED));
        resp.results_count = 0;
        KREQ_REPLY(req, DescribeUserScramCredentialsResponse, &resp);
        return;
    }
    const mimage *img = b->image;
    /* the users asked for (each once, remembering duplicates), or every user with a credential */
    int cap = r.users_count > 0 ? r.users_count : img->nscram;
    kstr *users = NULL;
    bool *dup = NULL;
    if (!KREQ_ALLOC_ARRAY(req, cap, users) || !KREQ_ALLOC_ARRAY(req, cap, dup)) return kreq_fail(req, "out of memory");
    int n = 0;
    if (r.users_count > 0) {
        for (int i = 0; i < r.users_count; i++) {
            int k = 0;
            while (k < n && !kstr_eq(users[k], r.users[i].name)) k++;
            if (k < n) dup[k] = true;
            else users[n++] = r.users[i].name;
        }
    } else {
        for (int i = 0; i < img->nscram; i++) {
            kstr u = kstr_from(img->scram[i].name);
            int k = 0;
            while (k < n && !kstr_eq(users[k], u)) k++;
            if (k == n) users[n++] = u;
        }
    }
    if (!KREQ_ALLOC_ARRAY(req, n, resp.results)) return kreq_fail(req, "out of memory");
    resp.results_count = n;
    for (int i = 0; i < n; i++) {
        DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult *o = &resp.results[i];
        DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult_init(o);
        o->user = users[i];
        o->error_message = KSTR_NULL;
        o->credential_infos = NULL;
        o->credential_infos_count = 0;
        if (dup[i]) {
            o->error_code = KERR_DUPLICATE_RESOURCE;
            o->error_message = kstr_from(karena_sprintf(&req->arena, DESCRIBE_DUPLICATE_USER "%.*s", users[i].len,
                                                        users[i].p));
            continue;
        }
        char *name = kstr_dup(users[i], &req->arena);
        if (!KREQ_ALLOC_ARRAY(req, 2, o->credential_infos) || !name) return kreq_fail(req, "out of memory");
        for (int8_t mech = SCRAM_SHA_256; mech <= SCRAM_SHA_512; mech++) {
            const mscram *m = mimage_scram(img, name, mech);
            if (!m) continue;
            DescribeUserScramCredentialsResponse_CredentialInfo *ci = &o->credential_infos[o->credential_infos_count++];
            DescribeUserScramCredentialsResponse_CredentialInfo_init(ci);
            ci->mechanism = mech;
            ci->iterations = m->iterations;
        }
        if (o->credential_infos_count == 0) {
            o->error_code = KERR_RESOURCE_NOT_FOUND;
            o->error_message = kstr_from(karena_sprintf(&req->arena, DESCRIBE_MISSING_USER "%.*s", users[i].len,
                                                        users[i].p));
        }
    }
    KREQ_REPLY(req, DescribeUserScramCredentialsResponse, &resp);
}

/* ---- AlterUserScramCredentials ---- */

typedef struct alter_ctx {
    kreq *req;
    AlterUserScramCredentialsResponse resp;
    int ok_from, ok_to; /* results [ok_from, ok_to) wait for the commit */
} alter_ctx;

static void alter_committed(broker *b, void *arg, mstore_status st) {
    (void)b;
    alter_ctx *x = arg;
    if (st != MSTORE_OK)
        for (int i = x->ok_from; i < x->ok_to; i++) {
            x->resp.results[i].error_code = mstore_status_error(st);
            x->resp.results[i].error_message = KSTR_NULL;
        }
    kreq *req = x->req;
    KREQ_REPLY(req, AlterUserScramCredentialsResponse, &x->resp);
    free(x);
}

typedef struct user_state {
    kstr name;
    int kind;            /* 0 = error, 1 = deletion, 2 = upsertion */
    int index;           /* into deletions / upsertions */
    int16_t error;
    const char *message;
} user_state;

static user_state *user_find(user_state *u, int n, kstr name) {
    for (int i = 0; i < n; i++)
        if (kstr_eq(u[i].name, name)) return &u[i];
    return NULL;
}

static int16_t validate_name_mech(kstr name, int8_t mech, const char **msg) {
    if (name.len <= 0) {
        *msg = "Username must not be empty";
        return KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (mech != SCRAM_SHA_256 && mech != SCRAM_SHA_512) {
        *msg = "Unknown SCRAM mechanism";
        return KERR_UNSUPPORTED_SASL_MECHANISM;
    }
    return 0;
}

void h_alter_user_scram_credentials(broker *b, kreq *req) {
    AlterUserScramCredentialsRequest r;
    if (KREQ_DECODE(req, AlterUserScramCredentialsRequest, &r) < 0) return;
    int nd = r.deletions_count > 0 ? r.deletions_count : 0, nu = r.upsertions_count > 0 ? r.upsertions_count : 0;
    if (!authz_cluster(req, AZ_OP_ALTER)) { /* KafkaApis: ALTER on the cluster; every user gets the error */
        AlterUserScramCredentialsResponse resp;
        AlterUserScramCredentialsResponse_init(&resp);
        if (!KREQ_ALLOC_ARRAY(req, nd + nu, resp.results)) return kreq_fail(req, "out of memory");
        resp.results_count = nd + nu;
        for (int i = 0; i < nd + nu; i++) {
            AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult_init(&resp.results[i]);
            resp.results[i].user = i < nd ? r.deletions[i].name : r.upsertions[i - nd].name;
            resp.results[i].error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            resp.results[i].error_message = kstr_from(kerr_message(KERR_CLUSTER_AUTHORIZATION_FAILED));
        }
        KREQ_REPLY(req, AlterUserScramCredentialsResponse, &resp);
        return;
    }
    user_state *users;
    int nusers = 0;
    if (!KREQ_ALLOC_ARRAY(req, nd + nu, users)) return kreq_fail(req, "out of memory");
    const char *dup_msg = "A user credential cannot be altered twice in the same request";
    for (int pass = 0; pass < 2; pass++) {
        int count = pass == 0 ? nd : nu;
        for (int i = 0; i < count; i++) {
            kstr name = pass == 0 ? r.deletions[i].name : r.upsertions[i].name;
            int8_t mech = pass == 0 ? r.deletions[i].mechanism : r.upsertions[i].mechanism;
            user_state *u = user_find(users, nusers, name);
            if (u && u->kind == 0) continue; /* already an error */
            if (u) {
                u->kind = 0;
                u->error = KERR_DUPLICATE_RESOURCE;
                u->message = dup_msg;
                continue;
            }
            u = &users[nusers++];
            u->name = name;
            u->index = i;
            u->kind = pass + 1;
            const char *msg = NULL;
            int16_t err = validate_name_mech(name, mech, &msg);
            if (!err && pass == 0) {
                char *cname = kstr_dup(name, &req->arena);
                if (!cname || !mimage_scram(b->image, cname, mech)) {
                    err = KERR_RESOURCE_NOT_FOUND;
                    msg = "Attempt to delete a user credential that does not exist";
                }
            } else if (!err) {
                int32_t it = r.upsertions[i].iterations;
                if (it < SCRAM_MIN_ITERATIONS) err = KERR_UNACCEPTABLE_CREDENTIAL, msg = "Too few iterations";
                else if (it > SCRAM_MAX_ITERATIONS) err = KERR_UNACCEPTABLE_CREDENTIAL, msg = "Too many iterations";
                else if (r.upsertions[i].salt.len > SCRAM_MAX_SALT || r.upsertions[i].salt.len <= 0 ||
                         r.upsertions[i].salted_password.len <= 0)
                    err = KERR_UNACCEPTABLE_CREDENTIAL, msg = "Invalid salt or salted password";
            }
            if (err) {
                u->kind = 0;
                u->error = err;
                u->message = msg;
            }
        }
    }
    alter_ctx *x = calloc(1, sizeof *x);
    mrecord *recs = NULL;
    if (x) AlterUserScramCredentialsResponse_init(&x->resp);
    if (!x || !KREQ_ALLOC_ARRAY(req, nusers, recs) || !KREQ_ALLOC_ARRAY(req, nusers, x->resp.results)) {
        free(x);
        return kreq_fail(req, "out of memory");
    }
    x->req = req;
    int nrecs = 0, nres = 0;
    for (int kind = 1; kind <= 2; kind++) {
        for (int i = 0; i < nusers; i++) {
            const user_state *u = &users[i];
            if (u->kind != kind) continue;
            if (kind == 1) {
                RemoveUserScramCredentialRecord *rr = karena_calloc(&req->arena, 1, sizeof *rr);
                if (!rr) goto oom;
                RemoveUserScramCredentialRecord_init(rr);
                rr->name = u->name;
                rr->mechanism = r.deletions[u->index].mechanism;
                recs[nrecs++] = (mrecord){KMETA_REMOVE_USER_SCRAM_CREDENTIAL_RECORD, 0, rr};
            } else {
                const AlterUserScramCredentialsRequest_ScramCredentialUpsertion *up = &r.upsertions[u->index];
                scram_credential cred;
                UserScramCredentialRecord *ur = karena_calloc(&req->arena, 1, sizeof *ur);
                uint8_t *keys = karena_alloc(&req->arena, 2 * SCRAM_MAX_KEY);
                if (!ur || !keys) goto oom;
                if (scram_credential_from_salted(up->mechanism, up->salted_password.p, up->salt.p,
                                                 (size_t)up->salt.len, up->iterations, &cred) < 0)
                    goto oom;
                memcpy(keys, cred.stored_key, cred.key_len);
                memcpy(keys + SCRAM_MAX_KEY, cred.server_key, cred.key_len);
                UserScramCredentialRecord_init(ur);
                ur->name = up->name;
                ur->mechanism = up->mechanism;
                ur->salt = up->salt;
                ur->stored_key = (kbytes){keys, (int32_t)cred.key_len};
                ur->server_key = (kbytes){keys + SCRAM_MAX_KEY, (int32_t)cred.key_len};
                ur->iterations = up->iterations;
                recs[nrecs++] = (mrecord){KMETA_USER_SCRAM_CREDENTIAL_RECORD, 0, ur};
            }
            AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult *o = &x->resp.results[nres++];
            AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult_init(o);
            o->user = u->name;
            o->error_message = KSTR_NULL;
        }
    }
    x->ok_to = nres;
    for (int i = 0; i < nusers; i++) {
        if (users[i].kind != 0) continue;
        AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult *o = &x->resp.results[nres++];
        AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult_init(o);
        o->user = users[i].name;
        o->error_code = users[i].error;
        o->error_message = kstr_from(users[i].message);
    }
    x->resp.results_count = nres;
    if (nrecs == 0) {
        alter_committed(b, x, MSTORE_OK);
        return;
    }
    mstore_commit(b->store, recs, nrecs, 0, alter_committed, x);
    return;
oom:
    free(x);
    kreq_fail(req, "out of memory");
}
