/* fuzz_offsets_format.c - libFuzzer target for kafka-dump-log
 * --offsets-decoder (src/tools/offsets_format.c, compiled in here with
 * java_compat.c: the tools are not in the library).
 *
 * The input is [u8 flags][u8 key length][key][value]: flag bit 0 = no key,
 * bit 1 = tombstone. Whatever the bytes, formatting returns either text or
 * an error, never both, and never reads outside key and value (private
 * copies, so ASan sees it). Build and run:
 *   make fuzz-build && build-fuzz/fuzz_offsets_format tests/fuzz/corpus/offsets_format
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/tools/java_compat.c"
#include "../../src/tools/offsets_format.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t flags = data[0];
    size_t klen = data[1];
    if (klen > size - 2) klen = size - 2;
    size_t vlen = size - 2 - klen;
    uint8_t *key = malloc(klen ? klen : 1);
    uint8_t *value = malloc(vlen ? vlen : 1);
    if (!key || !value) {
        free(key);
        free(value);
        return 0;
    }
    memcpy(key, data + 2, klen);
    memcpy(value, data + 2 + klen, vlen);
    char *k, *v, *e;
    int rc = offsets_format(key, (flags & 1) ? -1 : (int32_t)klen, (flags & 2) ? NULL : value,
                            (flags & 2) ? -1 : (int32_t)vlen, &k, &v, &e);
    if (rc == 0 && e) __builtin_trap();
    if (rc != 0 && (k || v)) __builtin_trap();
    free(k);
    free(v);
    free(e);
    free(key);
    free(value);
    return 0;
}
