/* bootstrap.c - bootstrap.checkpoint (see bootstrap.h). */
#include "broker/bootstrap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "protocol/gen/kmsg.h"
#include "security/scram.h"
#include "util/base64.h"

#define BOOTSTRAP_FILE "bootstrap.checkpoint"

/* "[k=v,k=v]": StorageTool drops the brackets, splits on ',' then on the first
 * '=' outside double quotes, and removes the quotes. */
static const char *arg_get(const char *body, const char *key, char *out, size_t outlen) {
    size_t kl = strlen(key);
    const char *p = body;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t o = 0;
            for (size_t i = kl + 1; i < n && o + 1 < outlen; i++)
                if (p[i] != '"') out[o++] = p[i];
            out[o] = 0;
            return out;
        }
        p = e ? e + 1 : p + n;
    }
    return NULL;
}

int bootstrap_add_scram(mimage *img, const char *arg, char *err, size_t errlen) {
    const char *eq = strchr(arg, '=');
    char mech_name[64];
    size_t ml = eq ? (size_t)(eq - arg) : strlen(arg);
    snprintf(mech_name, sizeof mech_name, "%.*s", (int)(ml < 63 ? ml : 63), arg);
    int mech = scram_mechanism_from_name(mech_name);
    if (!mech || !eq) {
        snprintf(err, errlen, "The add-scram mechanism %s is not supported.", mech_name);
        return -1;
    }
    const char *val = eq + 1;
    size_t vl = strlen(val);
    if (vl < 2) {
        snprintf(err, errlen, "You must supply 'name' to add-scram");
        return -1;
    }
    char body[2048];
    snprintf(body, sizeof body, "%.*s", (int)(vl - 2), val + 1); /* without [ and ] */
    char name[512], salt64[512], pw[512], salted64[512], iters[32];
    if (!arg_get(body, "name", name, sizeof name)) {
        snprintf(err, errlen, "You must supply 'name' to add-scram");
        return -1;
    }
    uint8_t salt[512];
    long salt_len;
    char rs[64];
    bool has_salt = arg_get(body, "salt", salt64, sizeof salt64) != NULL;
    if (has_salt) {
        salt_len = base64_decoded_max(strlen(salt64)) <= sizeof salt ? base64_decode(salt64, strlen(salt64), salt) : -1;
        if (salt_len < 0 || salt_len > SCRAM_MAX_SALT) {
            snprintf(err, errlen, "Illegal base64 character in 'salt' for add-scram");
            return -1;
        }
    } else {
        scram_random_string(rs, sizeof rs);
        salt_len = (long)strlen(rs);
        memcpy(salt, rs, (size_t)salt_len);
    }
    int32_t iterations = 4096; /* StorageTool reads 'iterations' only together with 'salt' */
    if (has_salt) {
        long it = arg_get(body, "iterations", iters, sizeof iters) ? strtol(iters, NULL, 10) : 0;
        if (it < SCRAM_MIN_ITERATIONS) {
            snprintf(err, errlen, "The 'iterations' value must be >= %d for add-scram", SCRAM_MIN_ITERATIONS);
            return -1;
        }
        if (it > SCRAM_MAX_ITERATIONS) {
            snprintf(err, errlen, "The 'iterations' value must be <= %d for add-scram", SCRAM_MAX_ITERATIONS);
            return -1;
        }
        iterations = (int32_t)it;
    }
    bool has_pw = arg_get(body, "password", pw, sizeof pw) != NULL;
    bool has_salted = arg_get(body, "saltedpassword", salted64, sizeof salted64) != NULL;
    uint8_t salted[SCRAM_MAX_KEY * 2];
    if (has_pw && has_salted) {
        snprintf(err, errlen, "You must only supply one of 'password' or 'saltedpassword' to add-scram");
        return -1;
    }
    if (!has_pw && !has_salted) {
        snprintf(err, errlen, "You must supply one of 'password' or 'saltedpassword' to add-scram");
        return -1;
    }
    if (has_salted && !has_salt) {
        snprintf(err, errlen, "You must supply 'salt' with 'saltedpassword' to add-scram");
        return -1;
    }
    if (has_pw) {
        if (scram_salted_password(mech, pw, strlen(pw), salt, (size_t)salt_len, iterations, salted) < 0) {
            snprintf(err, errlen, "Could not create credential");
            return -1;
        }
    } else {
        long sl = base64_decoded_max(strlen(salted64)) <= sizeof salted
                      ? base64_decode(salted64, strlen(salted64), salted)
                      : -1;
        if (sl <= 0) {
            snprintf(err, errlen, "Illegal base64 character in 'saltedpassword' for add-scram");
            return -1;
        }
    }
    scram_credential c;
    if (scram_credential_from_salted(mech, salted, salt, (size_t)salt_len, iterations, &c) < 0) {
        snprintf(err, errlen, "Could not create credential");
        return -1;
    }
    UserScramCredentialRecord r;
    UserScramCredentialRecord_init(&r);
    r.name = kstr_from(name);
    r.mechanism = (int8_t)mech;
    r.salt = (kbytes){c.salt, (int32_t)c.salt_len};
    r.stored_key = (kbytes){c.stored_key, (int32_t)c.key_len};
    r.server_key = (kbytes){c.server_key, (int32_t)c.key_len};
    r.iterations = iterations;
    mrecord rec = {KMETA_USER_SCRAM_CREDENTIAL_RECORD, 0, &r};
    if (mimage_apply(img, &rec) < 0) {
        snprintf(err, errlen, "Invalid SCRAM credential for %s", name);
        return -1;
    }
    return 0;
}

int bootstrap_write(const char *dir, const mimage *img, char *err, size_t errlen) {
    msnap_id id = {0, 0};
    char name[64], from[1200], to[1200];
    msnap_file_name(name, sizeof name, id);
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/" BOOTSTRAP_FILE, dir);
    unlink(from);
    int64_t now = (int64_t)time(NULL) * 1000;
    int64_t size;
    if (msnap_write(dir, img, id, now, now, &size, err, errlen) < 0) return -1;
    if (rename(from, to) < 0) {
        snprintf(err, errlen, "Unable to write %s: %s", to, strerror(errno));
        unlink(from);
        return -1;
    }
    return 0;
}

typedef struct filter_ctx {
    msnap_record_fn fn;
    void *ctx;
} filter_ctx;

static int only_bootstrap(const mrecord *rec, void *arg) {
    filter_ctx *f = arg;
    if (rec->type != KMETA_FEATURE_LEVEL_RECORD && rec->type != KMETA_USER_SCRAM_CREDENTIAL_RECORD) return 0;
    return f->fn(rec, f->ctx);
}

int bootstrap_load(const char *dir, mimage **out, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/" BOOTSTRAP_FILE, dir);
    *out = NULL;
    if (access(path, F_OK) != 0) return 0;
    mimage *img = mimage_new(-1);
    if (!img) return -1;
    int64_t ts;
    if (msnap_read_file(path, img, &ts, err, errlen) != 0) {
        mimage_free(img);
        return -1;
    }
    *out = img;
    return 0;
}

int bootstrap_read(const char *dir, msnap_record_fn fn, void *ctx, bool *found, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/" BOOTSTRAP_FILE, dir);
    *found = access(path, F_OK) == 0;
    if (!*found) return 0;
    mimage *img = mimage_new(-1);
    if (!img) return -1;
    int64_t ts;
    int rc = msnap_read_file(path, img, &ts, err, errlen);
    filter_ctx f = {fn, ctx};
    if (rc == 0) rc = msnap_image_records(img, only_bootstrap, &f);
    mimage_free(img);
    return rc == 0 ? 0 : -1;
}
