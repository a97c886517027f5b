/* test_quota.c - the rate and throttle arithmetic of client quotas
 * (broker/quota.h) against Kafka 3.6.1's ClientQuotaManagerTest and the
 * Rate/SampledStat rules (11 samples of 1 s, at least 10 windows).
 *
 * Run: make build/tests/test_quota && build/tests/test_quota
 */
#include <math.h>
#include <stdio.h>

#include "broker/quota.h"

#include "unit_check.h"

static double throttle_after(qrate *r, double bound, int64_t now) {
    return (double)quota_throttle_ms(qrate_measure(r, now), bound, qrate_window_ms(r, now));
}

int main(void) {
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

    printf("test_quota: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
