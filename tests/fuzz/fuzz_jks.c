/* fuzz_jks.c - libFuzzer target for the JKS keystore reader
 * (security/keystore.c).
 *
 * Input: [u8 flags][rest: a JKS image]. flags bit 0: check the integrity
 * digest with the password "broker-store" (mutations then mostly stop
 * there; without it the entries are parsed whatever the bytes), bit 1:
 * want a key entry, bit 2: decrypt keys with "broker-key". Whatever the
 * bytes, the reader must not crash, leak, or read outside the input, and a
 * failure must leave nothing behind. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_jks tests/fuzz/corpus/jks
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "security/keystore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    keystore_contents ks;
    char err[256];
    int rc = keystore_parse_jks(data + 1, size - 1, flags & 1 ? "broker-store" : NULL, flags & 4 ? "broker-key" : NULL,
                                flags & 2, &ks, err, sizeof err);
    if (rc == 0) {
        if ((flags & 2) && (!ks.key || !ks.leaf)) abort(); /* asked for a key, said yes, has none */
        keystore_contents_free(&ks);
    } else if (ks.key || ks.leaf || ks.chain || ks.trusted) {
        abort(); /* a failure left contents behind */
    }
    return 0;
}
