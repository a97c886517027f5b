/* h_acls.c - CreateAcls, DescribeAcls, DeleteAcls (v0-3) as Kafka 3.6.1's
 * AclApis and AclControlManager: the caller needs ALTER (create, delete) or
 * DESCRIBE (describe) on the cluster; bindings are AccessControlEntryRecords
 * in the metadata, written through the metadata store so every node of a
 * cluster applies them. Without an authorizer: SECURITY_DISABLED.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

#define NO_AUTHORIZER "No Authorizer is configured on the broker"

/* A NUL-terminated copy in the request's arena ("" for null). */
static char *arena_str(kreq *req, kstr s) {
    return karena_strndup(&req->arena, s.len > 0 ? s.p : "", s.len > 0 ? (size_t)s.len : 0);
}
static char *arena_str_or_null(kreq *req, kstr s) { return s.len < 0 ? NULL : arena_str(req, s); }

/* ---- DescribeAcls ---- */

void h_describe_acls(broker *b, kreq *req) {
    DescribeAclsRequest r;
    if (KREQ_DECODE(req, DescribeAclsRequest, &r) < 0) return;
    DescribeAclsResponse resp;
    DescribeAclsResponse_init(&resp);
    resp.error_message = KSTR_NULL;
    resp.resources = NULL;
    resp.resources_count = 0;
    az_filter f = {r.resource_type_filter, r.pattern_type_filter, r.operation, r.permission_type,
                   arena_str_or_null(req, r.resource_name_filter), arena_str_or_null(req, r.principal_filter),
                   arena_str_or_null(req, r.host_filter)};
    const char *bad;
    if (!authz_cluster(req, AZ_OP_DESCRIBE)) {
        resp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
    } else if (!authz_enabled(b)) {
        resp.error_code = KERR_SECURITY_DISABLED;
        resp.error_message = kstr_from(NO_AUTHORIZER);
    } else if ((bad = az_filter_invalid(&f))) {
        resp.error_code = KERR_INVALID_REQUEST;
        resp.error_message = kstr_from(bad);
    } else {
        const mimage *img = b->image;
        if (!KREQ_ALLOC_ARRAY(req, img->nacls, resp.resources)) return kreq_fail(req, "out of memory");
        /* grouped by resource pattern, in the order the patterns first appear */
        for (int i = 0; i < img->nacls; i++) {
            const az_acl *a = &img->acls[i];
            if (!az_filter_matches(&f, a)) continue;
            DescribeAclsResponse_DescribeAclsResource *res = NULL;
            for (int j = 0; j < resp.resources_count && !res; j++) {
                DescribeAclsResponse_DescribeAclsResource *c = &resp.resources[j];
                if (c->resource_type == a->resource_type && c->pattern_type == a->pattern_type &&
                    kstr_eq_c(c->resource_name, a->resource_name))
                    res = c;
            }
            if (!res) {
                res = &resp.resources[resp.resources_count++];
                DescribeAclsResponse_DescribeAclsResource_init(res);
                res->resource_type = a->resource_type;
                res->resource_name = kstr_from(a->resource_name);
                res->pattern_type = a->pattern_type;
                if (!KREQ_ALLOC_ARRAY(req, img->nacls, res->acls)) return kreq_fail(req, "out of memory");
                res->acls_count = 0;
            }
            DescribeAclsResponse_AclDescription *d = &res->acls[res->acls_count++];
            DescribeAclsResponse_AclDescription_init(d);
            d->principal = kstr_from(a->principal);
            d->host = kstr_from(a->host);
            d->operation = a->operation;
            d->permission_type = a->permission;
        }
    }
    KREQ_REPLY(req, DescribeAclsResponse, &resp);
}

/* ---- CreateAcls and DeleteAcls: answered once the records are applied ---- */

typedef struct acl_change {
    kreq *req;
    bool create;
    CreateAclsResponse cresp;
    DeleteAclsResponse dresp;
} acl_change;

static void change_committed(broker *b, void *arg, mstore_status st) {
    (void)b;
    acl_change *x = arg;
    kreq *req = x->req;
    if (st != MSTORE_OK) {
        int16_t err = mstore_status_error(st);
        if (x->create) {
            for (int i = 0; i < x->cresp.results_count; i++)
                if (x->cresp.results[i].error_code == 0) x->cresp.results[i].error_code = err;
        } else {
            for (int i = 0; i < x->dresp.filter_results_count; i++)
                if (x->dresp.filter_results[i].error_code == 0) {
                    x->dresp.filter_results[i].error_code = err;
                    x->dresp.filter_results[i].matching_acls_count = 0;
                }
        }
    }
    if (x->create) KREQ_REPLY(req, CreateAclsResponse, &x->cresp);
    else KREQ_REPLY(req, DeleteAclsResponse, &x->dresp);
}

static void new_acl_id(const mimage *img, kuuid *id) {
    do {
        if (getrandom(id->b, 16, 0) != 16)
            for (int i = 0; i < 16; i++) id->b[i] = (uint8_t)rand();
    } while (kuuid_is_zero(id) || mimage_acl(img, id));
}

static bool id_taken(const az_acl *added, int n, const kuuid *id) {
    for (int j = 0; j < n; j++)
        if (memcmp(added[j].id, id->b, 16) == 0) return true;
    return false;
}

void h_create_acls(broker *b, kreq *req) {
    CreateAclsRequest r;
    if (KREQ_DECODE(req, CreateAclsRequest, &r) < 0) return;
    acl_change *x = karena_calloc(&req->arena, 1, sizeof *x);
    if (!x) return kreq_fail(req, "out of memory");
    x->req = req;
    x->create = true;
    CreateAclsResponse_init(&x->cresp);
    int n = r.creations_count > 0 ? r.creations_count : 0;
    mrecord *recs = karena_calloc(&req->arena, (size_t)(n ? n : 1), sizeof *recs);
    az_acl *added = karena_calloc(&req->arena, (size_t)(n ? n : 1), sizeof *added);
    if (!KREQ_ALLOC_ARRAY(req, n, x->cresp.results) || !recs || !added) return kreq_fail(req, "out of memory");
    x->cresp.results_count = n;
    bool cluster_ok = authz_cluster(req, AZ_OP_ALTER);
    int nrecs = 0;
    for (int i = 0; i < n; i++) {
        const CreateAclsRequest_AclCreation *c = &r.creations[i];
        CreateAclsResponse_AclCreationResult *o = &x->cresp.results[i];
        CreateAclsResponse_AclCreationResult_init(o);
        o->error_message = KSTR_NULL;
        if (!cluster_ok) {
            o->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            continue;
        }
        if (!authz_enabled(b)) {
            o->error_code = KERR_SECURITY_DISABLED;
            o->error_message = kstr_from(NO_AUTHORIZER);
            continue;
        }
        az_acl a = {.resource_type = c->resource_type, .pattern_type = c->resource_pattern_type,
                    .operation = c->operation, .permission = c->permission_type,
                    .resource_name = arena_str(req, c->resource_name), .principal = arena_str(req, c->principal),
                    .host = arena_str(req, c->host)};
        if (!a.resource_name || !a.principal || !a.host) return kreq_fail(req, "out of memory");
        char msg[256];
        const char *bad = az_acl_invalid(&a, msg, sizeof msg);
        if (bad) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from(karena_strndup(&req->arena, bad, strlen(bad)));
            continue;
        }
        /* an existing binding is not added twice; the creation still succeeds */
        bool exists = false;
        for (int j = 0; j < b->image->nacls && !exists; j++) exists = az_acl_same(&b->image->acls[j], &a);
        for (int j = 0; j < nrecs && !exists; j++) exists = az_acl_same(&added[j], &a);
        if (exists) continue;
        AccessControlEntryRecord *rec = karena_calloc(&req->arena, 1, sizeof *rec);
        if (!rec) return kreq_fail(req, "out of memory");
        AccessControlEntryRecord_init(rec);
        kuuid id;
        do new_acl_id(b->image, &id);
        while (id_taken(added, nrecs, &id));
        rec->id = id;
        memcpy(a.id, id.b, 16);
        rec->resource_type = a.resource_type;
        rec->resource_name = c->resource_name;
        rec->pattern_type = a.pattern_type;
        rec->principal = c->principal;
        rec->host = c->host;
        rec->operation = a.operation;
        rec->permission_type = a.permission;
        added[nrecs] = a;
        recs[nrecs++] = (mrecord){KMETA_ACCESS_CONTROL_ENTRY_RECORD, 0, rec};
    }
    if (nrecs == 0) {
        change_committed(b, x, MSTORE_OK);
        return;
    }
    mstore_commit(b->store, recs, nrecs, 0, change_committed, x);
}

void h_delete_acls(broker *b, kreq *req) {
    DeleteAclsRequest r;
    if (KREQ_DECODE(req, DeleteAclsRequest, &r) < 0) return;
    acl_change *x = karena_calloc(&req->arena, 1, sizeof *x);
    if (!x) return kreq_fail(req, "out of memory");
    x->req = req;
    DeleteAclsResponse_init(&x->dresp);
    int n = r.filters_count > 0 ? r.filters_count : 0;
    const mimage *img = b->image;
    /* each binding is removed once, whichever filters match it */
    bool *removed = karena_calloc(&req->arena, (size_t)(img->nacls ? img->nacls : 1), sizeof *removed);
    mrecord *recs = karena_calloc(&req->arena, (size_t)(img->nacls ? img->nacls : 1), sizeof *recs);
    if (!KREQ_ALLOC_ARRAY(req, n, x->dresp.filter_results) || !removed || !recs)
        return kreq_fail(req, "out of memory");
    x->dresp.filter_results_count = n;
    bool cluster_ok = authz_cluster(req, AZ_OP_ALTER);
    int nrecs = 0;
    for (int i = 0; i < n; i++) {
        const DeleteAclsRequest_DeleteAclsFilter *fl = &r.filters[i];
        DeleteAclsResponse_DeleteAclsFilterResult *o = &x->dresp.filter_results[i];
        DeleteAclsResponse_DeleteAclsFilterResult_init(o);
        o->error_message = KSTR_NULL;
        o->matching_acls = NULL;
        o->matching_acls_count = 0;
        if (!cluster_ok) {
            o->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            continue;
        }
        if (!authz_enabled(b)) {
            o->error_code = KERR_SECURITY_DISABLED;
            o->error_message = kstr_from(NO_AUTHORIZER);
            continue;
        }
        az_filter f = {fl->resource_type_filter, fl->pattern_type_filter, fl->operation, fl->permission_type,
                       arena_str_or_null(req, fl->resource_name_filter), arena_str_or_null(req, fl->principal_filter),
                       arena_str_or_null(req, fl->host_filter)};
        const char *bad = az_filter_invalid(&f);
        if (bad) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from(bad);
            continue;
        }
        if (!KREQ_ALLOC_ARRAY(req, img->nacls, o->matching_acls)) return kreq_fail(req, "out of memory");
        for (int j = 0; j < img->nacls; j++) {
            const az_acl *a = &img->acls[j];
            if (!az_filter_matches(&f, a)) continue;
            DeleteAclsResponse_DeleteAclsMatchingAcl *m = &o->matching_acls[o->matching_acls_count++];
            DeleteAclsResponse_DeleteAclsMatchingAcl_init(m);
            m->error_message = KSTR_NULL;
            m->resource_type = a->resource_type;
            /* copies: applying the removal frees the image's strings before the answer is encoded */
            m->resource_name = kstr_from(karena_strndup(&req->arena, a->resource_name, strlen(a->resource_name)));
            m->pattern_type = a->pattern_type;
            m->principal = kstr_from(karena_strndup(&req->arena, a->principal, strlen(a->principal)));
            m->host = kstr_from(karena_strndup(&req->arena, a->host, strlen(a->host)));
            if (!m->resource_name.p || !m->principal.p || !m->host.p) return kreq_fail(req, "out of memory");
            m->operation = a->operation;
            m->permission_type = a->permission;
            if (removed[j]) continue;
            removed[j] = true;
            RemoveAccessControlEntryRecord *rec = karena_calloc(&req->arena, 1, sizeof *rec);
            if (!rec) return kreq_fail(req, "out of memory");
            RemoveAccessControlEntryRecord_init(rec);
            memcpy(rec->id.b, a->id, 16);
            recs[nrecs++] = (mrecord){KMETA_REMOVE_ACCESS_CONTROL_ENTRY_RECORD, 0, rec};
        }
    }
    if (nrecs == 0) {
        change_committed(b, x, MSTORE_OK);
        return;
    }
    mstore_commit(b->store, recs, nrecs, 0, change_committed, x);
}
