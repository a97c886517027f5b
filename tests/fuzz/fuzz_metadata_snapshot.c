/* fuzz_metadata_snapshot.c - libFuzzer target for __cluster_metadata
 * snapshots (src/metadata/snapshot.c) and kafka-dump-log's metadata JSON
 * (src/tools/metadata_json.c, compiled in here: the tools are not in the
 * library).
 *
 * The input is a snapshot file's bytes. msnap_read_buf applies it to a
 * fresh image; a snapshot that reads whole must write back (msnap_write)
 * to a file that reads to the same image and the same bytes of records.
 * Every record value of every batch also goes through
 * metadata_record_json, and control values through the header/footer
 * printers, whatever the reader thought of the file. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_metadata_snapshot tests/fuzz/corpus/metadata_snapshot
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metadata/image.h"
#include "metadata/mlog.h"
#include "metadata/snapshot.h"
#include "protocol/batch_header.h"
#include "protocol/records.h"
#include "../../src/tools/metadata_json.c"

static int collect(const mrecord *rec, void *ctx) { return mrecord_encode(rec, ctx) < 0 ? -1 : 0; }

static void json_every_record(const uint8_t *data, size_t size) {
    karena a;
    karena_init(&a, 64u << 20);
    size_t pos = 0;
    while (pos + BATCH_HEADER_SIZE <= size) {
        batch_header h;
        batch_header_parse(data + pos, &h);
        if (h.batch_length < 0) break;
        size_t total = batch_total_size(&h);
        if (total > size - pos) break;
        rec_iter it;
        karena_reset(&a);
        if (rec_iter_init(&it, data + pos, total, &a) == 0) {
            rec_record r;
            while (rec_iter_next(&it, &r) == 1) {
                size_t n = r.value.len > 0 ? (size_t)r.value.len : 0;
                free(metadata_record_json(r.value.p, n, r.offset));
                free(snapshot_header_json(r.value.p, n));
                free(snapshot_footer_json(r.value.p, n));
            }
        }
        pos += total;
    }
    karena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    json_every_record(copy, size);
    mimage *img = mimage_new(1);
    char err[512];
    if (img && msnap_read_buf(copy, size, img, NULL, err, sizeof err) == 0) {
        kwriter before, after;
        kw_init(&before);
        kw_init(&after);
        if (msnap_image_records(img, collect, &before) == 0) {
            char dir[] = "/tmp/fuzz-msnap-XXXXXX";
            if (mkdtemp(dir)) {
                char path[128], name[64];
                msnap_id id = {1, 1};
                msnap_file_name(name, sizeof name, id);
                snprintf(path, sizeof path, "%s/%s", dir, name);
                if (msnap_write(dir, img, id, 0, 0, NULL, err, sizeof err) == 0) {
                    mimage *back = mimage_new(1);
                    if (msnap_read_file(path, back, NULL, err, sizeof err) != 0) __builtin_trap();
                    if (msnap_image_records(back, collect, &after) != 0) __builtin_trap();
                    if (before.len != after.len || memcmp(before.buf, after.buf, before.len) != 0) __builtin_trap();
                    mimage_free(back);
                    unlink(path);
                }
                rmdir(dir);
            }
        }
        kw_free(&before);
        kw_free(&after);
    }
    mimage_free(img);
    free(copy);
    return 0;
}
