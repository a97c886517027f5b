/* test_quota.c - the rate and throttle arithmetic of client quotas
 * (broker/quota.h) against Kafka 3.6.1's ClientQuotaManagerTest and the
 * Rate/SampledStat rules (11 samples of 1 s, at least 10 windows).
 *
 * Run: make build/tests/test_quota && build/tests/test_quota
 */
#include <math.h>
#include <stdio.h>

#include "broker/quota.h"
#include "metadata/image.h"
#include "metadata/snapshot.h"
#include "protocol/gen/kmsg.h"

#include "unit_check.h"

static double throttle_after(qrate *r, double bound, int64_t now) {
    return (double)quota_throttle_ms(qrate_measure(r, now), bound, qrate_window_ms(r, now));
}

static int apply_to(const mrecord *rec, void *ctx) { return mimage_apply(ctx, rec); }

static void quota_record_apply(mimage *img, const char *user, const char *client, const char *key, double v,
                               bool remove) {
    ClientQuotaRecord_EntityData e[2];
    int32_t n = 0;
    if (user) {
        ClientQuotaRecord_EntityData_init(&e[n]);
        e[n].entity_type = kstr_from("user");
        e[n++].entity_name = *user ? kstr_from(user) : KSTR_NULL;
    }
    if (client) {
        ClientQuotaRecord_EntityData_init(&e[n]);
        e[n].entity_type = kstr_from("client-id");
        e[n++].entity_name = *client ? kstr_from(client) : KSTR_NULL;
    }
    ClientQuotaRecord r;
    ClientQuotaRecord_init(&r);
    r.entity = e;
    r.entity_count = n;
    r.key = kstr_from(key);
    r.value = v;
    r.remove = remove;
    mrecord rec = {KMETA_CLIENT_QUOTA_RECORD, 0, &r};
    CHECK(mimage_apply(img, &rec) == 0, "apply %s", key);
}

/* ClientQuotaRecords replayed into the image, written to a snapshot's
 * records and read back: the same entities and values. */
static void image_and_snapshot(void) {
    mimage *img = mimage_new(1);
    quota_record_apply(img, "alice", NULL, "producer_byte_rate", 1024, false);
    quota_record_apply(img, "alice", NULL, "consumer_byte_rate", 2048, false);
    quota_record_apply(img, "alice", "c1", "request_percentage", 50, false);
    quota_record_apply(img, NULL, "", "producer_byte_rate", 1e7, false); /* default client-id */
    quota_record_apply(img, "alice", NULL, "consumer_byte_rate", 0, true);
    quota_record_apply(img, NULL, "gone", "producer_byte_rate", 1, false);
    quota_record_apply(img, NULL, "gone", "producer_byte_rate", 0, true);
    CHECK(img->nquotas == 3, "%d entities", img->nquotas);
    const char *alice[MQE_NTYPES] = {"alice", NULL, NULL};
    const mquota *q = mimage_quota(img, 1u << MQE_USER, alice);
    CHECK(q && q->set == (1u << MQ_PRODUCER_BYTE_RATE) && q->value[MQ_PRODUCER_BYTE_RATE] == 1024, "alice");
    const char *dflt[MQE_NTYPES] = {NULL, NULL, NULL};
    q = mimage_quota(img, 1u << MQE_CLIENT_ID, dflt);
    CHECK(q && q->value[MQ_PRODUCER_BYTE_RATE] == 1e7, "default client-id");

    mimage *back = mimage_new(1);
    CHECK(msnap_image_records(img, apply_to, back) == 0, "snapshot records");
    CHECK(back->nquotas == 3, "%d entities read back", back->nquotas);
    for (int i = 0; i < img->nquotas; i++) {
        const mquota *a = &img->quotas[i];
        const mquota *b = mimage_quota(back, a->has, (const char *const *)a->name);
        CHECK(b && b->set == a->set, "entity %d read back", i);
        for (int k = 0; b && k < MQ_NKEYS; k++)
            if (a->set & (1u << k)) CHECK(b->value[k] == a->value[k], "entity %d key %d", i, k);
    }
    mimage_free(back);
    mimage_free(img);
}

int main(void) {
    image_and_snapshot();
    qrate r;

    /* one record: the rate spans (samples - 1) windows, not the 0 ms elapsed */
    qrate_init(&r);
    qrate_record(&r, 1000, 0);
    CHECK(qrate_window_ms(&r, 0) == 10000, "window %lld", (long long)qrate_window_ms(&r, 0));
    CHECK(fabs(qrate_measure(&r, 0) - 100.0) < 1e-9, "rate %f", qrate_measure(&r, 0));

    /* ClientQuotaManagerTest.testQuotaViolation: quota 500 B/s, 400 B each
     * second for 10 s: no throttle; then 2300 B at 10.5 s: 6300 / 10.5 s =
     * 600 B/s, (600 - 500) / 500 * 10500 ms = 2100 ms */
    qrate_init(&r);
    int violations = 0;
    for (int i = 0; i < 10; i++) {
        qrate_record(&r, 400, i * 1000);
        violations += throttle_after(&r, 500, i * 1000) > 0;
    }
    CHECK(violations == 0, "%d throttled while under the quota", violations);
    qrate_record(&r, 2300, 10500);
    CHECK(qrate_window_ms(&r, 10500) == 10500, "window %lld", (long long)qrate_window_ms(&r, 10500));
    CHECK(throttle_after(&r, 500, 10500) == 2100, "throttle %f", throttle_after(&r, 500, 10500));

    /* samples older than 11 windows are forgotten */
    CHECK(qrate_measure(&r, 10500 + 11000) < 1e-9, "old samples still counted: %f",
          qrate_measure(&r, 10500 + 11000));

    /* within the quota, or no quota: nothing */
    CHECK(quota_throttle_ms(499, 500, 10000) == 0, "within");
    CHECK(quota_throttle_ms(500, 500, 10000) == 0, "at the bound");
    CHECK(quota_throttle_ms(1000, 500, 10000) == 10000, "double the quota: one elapsed span");
    CHECK(quota_throttle_ms(1000, 0, 10000) == 0, "no bound");

    /* a burst at start: quota * 10 s goes before the first throttle */
    qrate_init(&r);
    qrate_record(&r, 100000.0 * 10, 0);
    CHECK(throttle_after(&r, 100000, 0) == 0, "the first 10 s of quota are free");
    qrate_record(&r, 100000, 0);
    CHECK(throttle_after(&r, 100000, 0) == 1000, "then 1 s per second of quota over: %f",
          throttle_after(&r, 100000, 0));

    /* TokenBucket (controller_mutation_rate 2/s): a fresh bucket holds the
     * burst, 11 windows of quota; taking 30 leaves -8, refilled at 2/s */
    qbucket t = {0, 0};
    CHECK(fabs(qbucket_measure(&t, 2, 100000) - 22) < 1e-9, "burst %f", qbucket_measure(&t, 2, 100000));
    qbucket_record(&t, 2, 30, 100000);
    CHECK(fabs(t.tokens + 8) < 1e-9, "tokens %f", t.tokens);
    CHECK(qbucket_throttle_ms(t.tokens, 2) == 4000, "throttle %d", qbucket_throttle_ms(t.tokens, 2));
    double later = qbucket_measure(&t, 2, 102000);
    CHECK(fabs(later + 4) < 1e-9 && qbucket_throttle_ms(later, 2) == 2000, "2 s later %f", later);
    later = qbucket_measure(&t, 2, 104000);
    CHECK(fabs(later) < 1e-9 && qbucket_throttle_ms(later, 2) == 0, "4 s later %f", later);
    CHECK(fabs(qbucket_measure(&t, 2, 1000000) - 22) < 1e-9, "refill stops at the burst");

    printf("test_quota: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
