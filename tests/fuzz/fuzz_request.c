/* fuzz_request.c - libFuzzer target for request framing, the request header
 * and every generated request decoder.
 *
 * An input is what a client writes on a connection: size-prefixed frames,
 * one after another. Each frame is cut out the way the network layer does
 * (a negative size or one past the bytes available ends the stream), its
 * api key and version pick the header version as the dispatcher does, then
 * the body goes to the generated decoder for that (key, version). Whatever
 * decodes is encoded, decoded again and encoded again: the two encodings
 * must be identical, or the codec loses or invents data. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_request tests/fuzz/corpus/request
 */
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/kmsg.h"

#define FUZZ_ARENA_LIMIT (64u << 20)
#define FUZZ_MAX_FRAMES 16

/* Message structs are opaque here; the type table says how big they are. */
static void *new_message(const kmsg_type *t, karena *a) {
    void *m = karena_alloc(a, t->size);
    if (m) t->init(m);
    return m;
}

/* encode(m) -> decode -> encode must give the same bytes twice. */
static void check_round_trip(const kmsg_type *t, const void *m, int16_t version, karena *a) {
    kwriter w1, w2;
    kw_init(&w1);
    kw_init(&w2);
    if (t->encode(m, &w1, version) < 0 || w1.err) goto out; /* out of memory only */

    void *again = new_message(t, a);
    if (!again) goto out;
    kreader r;
    kr_init(&r, w1.buf, w1.len);
    if (t->decode(again, &r, version, a) < 0 || r.err) __builtin_trap(); /* our own output must decode */
    if (kr_remaining(&r) != 0) __builtin_trap();                        /* ... all of it */
    if (t->encode(again, &w2, version) < 0 || w2.err) goto out;
    if (w1.len != w2.len || (w1.len && memcmp(w1.buf, w2.buf, w1.len) != 0)) __builtin_trap();
out:
    kw_free(&w1);
    kw_free(&w2);
}

static void one_frame(const uint8_t *frame, size_t len, karena *a) {
    kreader r;
    kr_init(&r, frame, len);
    int16_t key = kr_i16(&r);
    int16_t version = kr_i16(&r);
    if (r.err) return;
    const kapi_info *info = kapi_lookup(key);
    const kmsg_type *t = kmsg_request_type(key);
    if (!info || !t) return;
    if (version < t->min_version || version > t->max_version) return;

    RequestHeader h;
    RequestHeader_init(&h);
    kr_init(&r, frame, len);
    int16_t hv = kapi_request_header_version(key, version);
    if (RequestHeader_decode(&h, &r, hv, a) < 0 || r.err) return;
    if (h.request_api_key != key || h.request_api_version != version) __builtin_trap();

    /* the header itself must round-trip too */
    check_round_trip(kmsg_type_by_name("RequestHeader"), &h, hv, a);

    void *m = new_message(t, a);
    if (!m) return;
    if (t->decode(m, &r, version, a) < 0 || r.err) return;
    check_round_trip(t, m, version, a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    karena a;
    karena_init(&a, FUZZ_ARENA_LIMIT);
    kreader stream;
    kr_init(&stream, data, size);
    for (int n = 0; n < FUZZ_MAX_FRAMES && kr_remaining(&stream) >= 4; n++) {
        int32_t frame_len = kr_i32(&stream);
        if (frame_len < 0 || (size_t)frame_len > kr_remaining(&stream)) break;
        const uint8_t *frame = kr_take(&stream, (size_t)frame_len);
        if (!frame && frame_len > 0) break;
        /* a private copy, so ASan sees reads past the frame, not into the next one */
        uint8_t *copy = malloc(frame_len ? (size_t)frame_len : 1);
        if (!copy) break;
        if (frame_len) memcpy(copy, frame, (size_t)frame_len);
        one_frame(copy, (size_t)frame_len, &a);
        free(copy);
        karena_reset(&a);
    }
    karena_free(&a);
    return 0;
}
