/* openssl_lazy.c - libssl loaded when the broker first calls OpenSSL.
 *
 * On x86-64 the broker is not linked with libssl and libcrypto: its calls
 * go through trampolines (scripts/gen-openssl-lazy.sh, built into the
 * broker only) whose table starts out pointing at a stub that calls
 * samsa_ossl_resolve. Mapping the two libraries and relocating them is
 * 1.7 MB of a broker's resident memory, which one that serves no TLS, SASL
 * or compacted topic never needs (issue 18: idle RSS <= 5 MB). The tools
 * and the unit tests link OpenSSL as usual and do not use this file.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"
#include "util/log_files.h"

/* Defined by the generated trampolines. */
extern void *samsa_ossl_table[];
extern const char *const samsa_ossl_names[];
extern const size_t samsa_ossl_count;
extern const char samsa_ossl_soname[];

void samsa_ossl_resolve(void);

static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;

/* Fills the whole table at once: a call that reaches a stub after this
 * finds every entry set. Without libssl no OpenSSL call can be made, and
 * the caller cannot be given an answer: the broker stops, saying why. */
__attribute__((noreturn)) static void stop(const char *what) {
    log_error("kafka.server.KafkaServer", "%s: %s", what, dlerror());
    log_files_close();
    _exit(1);
}

static void ossl_load(void) {
    char what[256];
    void *h = dlopen(samsa_ossl_soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(what, sizeof what, "Cannot load %s (install libssl3)", samsa_ossl_soname);
        stop(what);
    }
    for (size_t i = 0; i < samsa_ossl_count; i++) {
        void *f = dlsym(h, samsa_ossl_names[i]); /* libssl's, or libcrypto's through its dependency */
        if (!f) {
            snprintf(what, sizeof what, "%s has no %s", samsa_ossl_soname, samsa_ossl_names[i]);
            stop(what);
        }
        /* read by the trampolines without a lock: whole pointers, released */
        __atomic_store_n(&samsa_ossl_table[i], f, __ATOMIC_RELEASE);
    }
}

/* Called by a trampoline's stub (with the caller's arguments saved). */
void samsa_ossl_resolve(void) { pthread_once(&ossl_once, ossl_load); }
