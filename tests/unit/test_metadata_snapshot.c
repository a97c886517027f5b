/* test_metadata_snapshot.c - __cluster_metadata snapshots (metadata/snapshot.c,
 * metadata/mlog.c): file names as Kafka's Snapshots.parse reads them, an
 * image written and read back record for record, corrupt and partial
 * files refused, start-up from a snapshot plus the log after it, and
 * retention deleting segments and older snapshots. Real files in mkdtemp
 * directories. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metadata/image.h"
#include "metadata/mlog.h"
#include "metadata/snapshot.h"
#include "protocol/gen/kmsg.h"
#include "unit_check.h"

static char tmp_root[] = "/tmp/samsa-msnap-XXXXXX";

static void rm_rf(const char *path) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", path);
}

/* The image as the bytes of its snapshot records, to compare two images. */
static int collect(const mrecord *rec, void *ctx) {
    kwriter *w = ctx;
    return mrecord_encode(rec, w) < 0 ? -1 : 0;
}
static void image_bytes(const mimage *img, kwriter *w) {
    kw_reset(w);
    msnap_image_records(img, collect, w);
}
static int images_equal(const mimage *a, const mimage *b) {
    kwriter x, y;
    kw_init(&x);
    kw_init(&y);
    image_bytes(a, &x);
    image_bytes(b, &y);
    int eq = x.len == y.len && memcmp(x.buf, y.buf, x.len) == 0;
    kw_free(&x);
    kw_free(&y);
    return eq;
}

static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    size_t m = strlen(suffix);
    while ((e = readdir(d))) {
        size_t k = strlen(e->d_name);
        if (k >= m && strcmp(e->d_name + k - m, suffix) == 0) n++;
    }
    closedir(d);
    return n;
}

static void append(mlog *m, int16_t type, const void *data) {
    mrecord r = {type, 0, data};
    CHECK(mlog_append(m, &r, 1) == 0, "append type %d", type);
}

/* A topic with nparts partitions and one config, as CreateTopics writes it. */
static void add_topic(mlog *m, int i, int nparts) {
    char name[32];
    snprintf(name, sizeof name, "topic-%04d", i);
    mrecord recs[1 + 16 + 1];
    TopicRecord t;
    TopicRecord_init(&t);
    t.name = kstr_from(name);
    memset(t.topic_id.b, 0, 16);
    t.topic_id.b[0] = (uint8_t)(i >> 8);
    t.topic_id.b[1] = (uint8_t)i;
    t.topic_id.b[15] = 7;
    recs[0] = (mrecord){KMETA_TOPIC_RECORD, 0, &t};
    PartitionRecord p[16];
    int32_t replicas[1] = {1};
    for (int k = 0; k < nparts; k++) {
        PartitionRecord_init(&p[k]);
        p[k].partition_id = k;
        p[k].topic_id = t.topic_id;
        p[k].replicas = replicas;
        p[k].replicas_count = 1;
        p[k].isr = replicas;
        p[k].isr_count = 1;
        p[k].removing_replicas_count = 0;
        p[k].adding_replicas_count = 0;
        p[k].leader = 1;
        p[k].leader_epoch = k;
        recs[1 + k] = (mrecord){KMETA_PARTITION_RECORD, 0, &p[k]};
    }
    ConfigRecord c;
    ConfigRecord_init(&c);
    c.resource_type = MRES_TOPIC;
    c.resource_name = kstr_from(name);
    c.name = KSTR_LIT("retention.ms");
    char v[32];
    snprintf(v, sizeof v, "%d", 1000 + i);
    c.value = kstr_from(v);
    recs[1 + nparts] = (mrecord){KMETA_CONFIG_RECORD, 0, &c};
    CHECK(mlog_append(m, recs, nparts + 2) == 0, "append topic %d", i);
}

static void fill(mlog *m, int from, int ntopics) {
    if (from == 0) {
        FeatureLevelRecord f;
        FeatureLevelRecord_init(&f);
        f.name = KSTR_LIT("metadata.version");
        f.feature_level = 14;
        append(m, KMETA_FEATURE_LEVEL_RECORD, &f);
        ConfigRecord bc;
        ConfigRecord_init(&bc);
        bc.resource_type = MRES_BROKER;
        bc.resource_name = KSTR_LIT("1");
        bc.name = KSTR_LIT("log.cleaner.threads");
        bc.value = KSTR_LIT("2");
        append(m, KMETA_CONFIG_RECORD, &bc);
        bc.resource_name = KSTR_LIT("");
        bc.name = KSTR_LIT("log.retention.ms");
        bc.value = KSTR_LIT("12345");
        append(m, KMETA_CONFIG_RECORD, &bc);
    }
    for (int i = from; i < from + ntopics; i++) {
        add_topic(m, i, 1 + i % 4);
        if (i % 10 == 0) {
            ProducerIdsRecord p;
            ProducerIdsRecord_init(&p);
            p.broker_id = 1;
            p.broker_epoch = 1;
            p.next_producer_id = 1000 * (i + 1);
            append(m, KMETA_PRODUCER_IDS_RECORD, &p);
        }
        if (i % 7 == 3) {
            /* a partition change and a removed config, so replay is not only adds */
            PartitionChangeRecord pc;
            PartitionChangeRecord_init(&pc);
            memset(pc.topic_id.b, 0, 16);
            pc.topic_id.b[0] = (uint8_t)(i >> 8);
            pc.topic_id.b[1] = (uint8_t)i;
            pc.topic_id.b[15] = 7;
            pc.partition_id = 0;
            pc.leader = -1;
            append(m, KMETA_PARTITION_CHANGE_RECORD, &pc);
            char name[32];
            snprintf(name, sizeof name, "topic-%04d", i);
            ConfigRecord c;
            ConfigRecord_init(&c);
            c.resource_type = MRES_TOPIC;
            c.resource_name = kstr_from(name);
            c.name = KSTR_LIT("retention.ms");
            c.value = KSTR_NULL;
            append(m, KMETA_CONFIG_RECORD, &c);
        }
    }
}

static void test_names(void) {
    msnap_id id;
    CHECK(msnap_parse_name("00000000000000000123-0000000001.checkpoint", &id) == MSNAP_FILE_CHECKPOINT &&
              id.end_offset == 123 && id.epoch == 1,
          "checkpoint name");
    CHECK(msnap_parse_name("00000000000000000123-0000000001-8342.checkpoint.part", &id) == MSNAP_FILE_PARTIAL,
          "partial name");
    CHECK(msnap_parse_name("00000000000000000123-0000000001.checkpoint.deleted", &id) == MSNAP_FILE_DELETED,
          "deleted name");
    CHECK(msnap_parse_name("00000000000000000000.log", &id) == MSNAP_FILE_NONE, "segment is not a snapshot");
    CHECK(msnap_parse_name("x.checkpoint", &id) == MSNAP_FILE_NONE, "short name");
    CHECK(msnap_parse_name("0000000000000000012a-0000000001.checkpoint", &id) == MSNAP_FILE_NONE, "not digits");
    char buf[64];
    msnap_file_name(buf, sizeof buf, (msnap_id){42, 3});
    CHECK(strcmp(buf, "00000000000000000042-0000000003.checkpoint") == 0, "file name %s", buf);
}

static mlog_options small_options(void) {
    mlog_options o;
    mlog_options_defaults(&o);
    o.max_bytes_between_snapshots = INT64_MAX; /* only explicit snapshots */
    o.max_snapshot_interval_ms = 0;
    return o;
}

static void test_write_read_restart(void) {
    char dir[1100], pdir[1200];
    snprintf(dir, sizeof dir, "%s/wr", tmp_root);
    mkdir(dir, 0755);
    snprintf(pdir, sizeof pdir, "%s/__cluster_metadata-0", dir);
    mlog_options o = small_options();
    mimage *img = mimage_new(1);
    mlog *m = NULL;
    char err[512];
    CHECK(mlog_open_with(dir, img, &o, &m, err, sizeof err) == 0, "open: %s", err);
    fill(m, 0, 60);
    int64_t end = mlog_end_offset(m);
    CHECK(mlog_snapshot(m) == 0, "snapshot");
    CHECK(mlog_latest_snapshot_offset(m) == end, "snapshot at the log end %lld", (long long)end);
    char path[2600], name[64];
    msnap_file_name(name, sizeof name, (msnap_id){end, 1});
    snprintf(path, sizeof path, "%s/%s", pdir, name);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0222) == 0, "read-only %s", path);
    CHECK(count_files(pdir, ".part") == 0, "no .part left");

    /* read back: the same image */
    mimage *back = mimage_new(1);
    int64_t ts = 0;
    CHECK(msnap_read_file(path, back, &ts, err, sizeof err) == 0, "read: %s", err);
    CHECK(ts > 0, "header timestamp %lld", (long long)ts);
    CHECK(images_equal(img, back), "snapshot reads back as the image");
    CHECK(back->ntopics == 60 && back->next_producer_id == img->next_producer_id, "topics %d pid %lld",
          back->ntopics, (long long)back->next_producer_id);
    CHECK(msnap_header_timestamp(path, err, sizeof err) == ts, "header timestamp alone");
    mimage_free(back);

    /* more records after the snapshot, then restart: snapshot + tail */
    fill(m, 60, 15);
    mlog_close(m);
    kwriter before;
    kw_init(&before);
    image_bytes(img, &before);
    mimage_free(img);

    /* a crash mid-write left a .part: start-up removes it */
    char part[2600];
    snprintf(part, sizeof part, "%s/00000000000000099999-0000000001-77.checkpoint.part", pdir);
    int fd = open(part, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "garbage", 7) == 7, "write .part");
    if (fd >= 0) close(fd);

    img = mimage_new(1);
    CHECK(mlog_open_with(dir, img, &o, &m, err, sizeof err) == 0, "reopen: %s", err);
    kwriter after;
    kw_init(&after);
    image_bytes(img, &after);
    CHECK(before.len == after.len && memcmp(before.buf, after.buf, before.len) == 0,
          "snapshot + log tail = the image before restart");
    CHECK(img->ntopics == 75, "75 topics, got %d", img->ntopics);
    CHECK(access(part, F_OK) != 0, ".part removed at start-up");
    CHECK(mlog_snapshot_count(m) == 1, "one snapshot known");
    mlog_close(m);
    mimage_free(img);
    kw_free(&before);
    kw_free(&after);

    /* a truncated newest snapshot is set aside; the log from 0 still gives the image */
    {
        char cmd[6000];
        snprintf(cmd, sizeof cmd, "chmod u+w '%s' && truncate -s -20 '%s'", path, path);
        CHECK(system(cmd) == 0, "truncate snapshot");
        mimage *bad = mimage_new(1);
        CHECK(msnap_read_file(path, bad, NULL, err, sizeof err) != 0, "truncated snapshot refused");
        mimage_free(bad);
        img = mimage_new(1);
        CHECK(mlog_open_with(dir, img, &o, &m, err, sizeof err) == 0, "open past a bad snapshot: %s", err);
        CHECK(img->ntopics == 75, "full replay: %d topics", img->ntopics);
        CHECK(mlog_snapshot_count(m) == 0, "bad snapshot not counted");
        mlog_close(m);
        mimage_free(img);
    }
}

static void test_corrupt_bytes(void) {
    mimage *img = mimage_new(1);
    char dir[1100], err[512];
    snprintf(dir, sizeof dir, "%s/corrupt", tmp_root);
    mkdir(dir, 0755);
    mlog_options o = small_options();
    mlog *m;
    CHECK(mlog_open_with(dir, img, &o, &m, err, sizeof err) == 0, "open: %s", err);
    fill(m, 0, 5);
    char pdir[1200];
    snprintf(pdir, sizeof pdir, "%s/__cluster_metadata-0", dir);
    int64_t size = 0;
    CHECK(msnap_write(pdir, img, (msnap_id){mlog_end_offset(m), 1}, 1, 2, &size, err, sizeof err) == 0, "write: %s",
          err);
    CHECK(msnap_write(pdir, img, (msnap_id){mlog_end_offset(m), 1}, 1, 2, &size, err, sizeof err) != 0,
          "the same id twice is refused");
    char path[2600], name[64];
    msnap_file_name(name, sizeof name, (msnap_id){mlog_end_offset(m), 1});
    snprintf(path, sizeof path, "%s/%s", pdir, name);
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc((size_t)size);
    CHECK(f && fread(buf, 1, (size_t)size, f) == (size_t)size, "read bytes");
    if (f) fclose(f);
    mimage *x = mimage_new(1);
    CHECK(msnap_read_buf(buf, (size_t)size, x, NULL, err, sizeof err) == 0, "good bytes: %s", err);
    CHECK(images_equal(img, x), "same image");
    mimage_free(x);
    /* a flipped byte anywhere is caught (CRC, framing or structure), but in
     * partitionLeaderEpoch, which no CRC covers (nor does Kafka's reader check it) */
    uint8_t *epoch_byte = calloc((size_t)size, 1);
    for (int64_t pos = 0; pos + 61 <= size;) {
        for (int k = 12; k < 16; k++) epoch_byte[pos + k] = 1;
        int32_t blen = (int32_t)((uint32_t)buf[pos + 8] << 24 | (uint32_t)buf[pos + 9] << 16 |
                                 (uint32_t)buf[pos + 10] << 8 | buf[pos + 11]);
        pos += 12 + blen;
    }
    int caught = 0, tries = 0;
    for (int64_t i = 0; i < size; i += 7) {
        if (epoch_byte[i]) continue;
        buf[i] ^= 0x5a;
        x = mimage_new(1);
        if (msnap_read_buf(buf, (size_t)size, x, NULL, err, sizeof err) != 0) caught++;
        mimage_free(x);
        buf[i] ^= 0x5a;
        tries++;
    }
    CHECK(caught == tries && tries > 100, "every flipped byte refused: %d of %d", caught, tries);
    free(epoch_byte);
    /* nothing, or only the header, is not a snapshot */
    x = mimage_new(1);
    CHECK(msnap_read_buf(buf, 0, x, NULL, err, sizeof err) != 0, "empty refused");
    mimage_free(x);
    free(buf);
    mlog_close(m);
    mimage_free(img);
}

/* Retention: with metadata.max.retention.bytes exceeded, each new snapshot
 * moves the log start up to it: segments wholly below go, older snapshots
 * go, the newest stays. */
static void test_retention(void) {
    char dir[1100], pdir[1200], err[512];
    snprintf(dir, sizeof dir, "%s/ret", tmp_root);
    mkdir(dir, 0755);
    snprintf(pdir, sizeof pdir, "%s/__cluster_metadata-0", dir);
    mlog_options o;
    mlog_options_defaults(&o);
    o.segment_bytes = 4096;
    o.max_bytes_between_snapshots = 16384;
    o.max_snapshot_interval_ms = 0;
    o.retention_bytes = 0;
    o.file_delete_delay_ms = 0;
    mimage *img = mimage_new(1);
    mlog *m;
    CHECK(mlog_open_with(dir, img, &o, &m, err, sizeof err) == 0, "open: %s", err);
    fill(m, 0, 200);
    CHECK(count_files(pdir, ".checkpoint") == 1, "one snapshot kept, %d on disk", count_files(pdir, ".checkpoint"));
    int64_t snap = mlog_latest_snapshot_offset(m);
    CHECK(snap > 0, "a snapshot was written by size");
    CHECK(plog_start_offset(mlog_plog(m)) == snap, "log start at the snapshot: %lld vs %lld",
          (long long)plog_start_offset(mlog_plog(m)), (long long)snap);
    CHECK(plog_segment_base(mlog_plog(m), 0) <= snap, "first segment holds the snapshot offset");
    CHECK(count_files(pdir, ".log") < 20, "old segments deleted (%d left)", count_files(pdir, ".log"));
    kwriter before;
    kw_init(&before);
    image_bytes(img, &before);
    mlog_close(m);
    mimage_free(img);
    img = mimage_new(1);
    o.max_bytes_between_snapshots = INT64_MAX;
    CHECK(mlog_open_with(dir, img, &o, &m, err, sizeof err) == 0, "reopen: %s", err);
    kwriter after;
    kw_init(&after);
    image_bytes(img, &after);
    CHECK(before.len == after.len && memcmp(before.buf, after.buf, before.len) == 0, "same image after restart");
    CHECK(img->ntopics == 200, "200 topics, got %d", img->ntopics);
    mlog_close(m);
    mimage_free(img);
    kw_free(&before);
    kw_free(&after);

    /* the log gone past the snapshot (a node that lost its tail): the log
     * restarts at the snapshot instead of refusing to start */
    char cmd[6000];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*.log '%s'/*.index '%s'/*.timeindex '%s'/leader-epoch-checkpoint", pdir,
             pdir, pdir, pdir);
    CHECK(system(cmd) == 0, "remove segments");
    img = mimage_new(1);
    CHECK(mlog_open_with(dir, img, &o, &m, err, sizeof err) == 0, "open with only a snapshot: %s", err);
    CHECK(img->ntopics > 0 && mlog_end_offset(m) >= snap, "snapshot loaded, log at %lld",
          (long long)mlog_end_offset(m));
    mlog_close(m);
    mimage_free(img);
}

/* metadata.log.max.snapshot.interval.ms: a record coming after the
 * interval brings a snapshot (none without a record, none before it). */
static void test_interval(void) {
    char dir[1100], err[512];
    snprintf(dir, sizeof dir, "%s/interval", tmp_root);
    mkdir(dir, 0755);
    mlog_options o;
    mlog_options_defaults(&o);
    o.max_bytes_between_snapshots = INT64_MAX;
    o.max_snapshot_interval_ms = 50;
    mimage *img = mimage_new(1);
    mlog *m;
    CHECK(mlog_open_with(dir, img, &o, &m, err, sizeof err) == 0, "open: %s", err);
    fill(m, 0, 2);
    CHECK(mlog_snapshot_count(m) == 0, "no snapshot before the interval");
    usleep(80 * 1000);
    CHECK(mlog_snapshot_count(m) == 0, "no snapshot without a record");
    fill(m, 2, 1);
    CHECK(mlog_snapshot_count(m) == 1 && mlog_latest_snapshot_offset(m) == mlog_end_offset(m),
          "a snapshot at the log end after the interval");
    fill(m, 3, 1);
    CHECK(mlog_snapshot_count(m) == 1, "the interval starts again");
    mlog_close(m);
    mimage_free(img);
}

int main(void) {
    if (!mkdtemp(tmp_root)) return 1;
    test_names();
    test_write_read_restart();
    test_corrupt_bytes();
    test_retention();
    test_interval();
    rm_rf(tmp_root);
    printf("test_metadata_snapshot: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
