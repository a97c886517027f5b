/* test_placement.c - replica placement (controller/placement) against the
 * expectations of Kafka 3.6.1's StripedReplicaPlacerTest, with Kafka's
 * MockRandom reproduced through placement_rand_fn, plus properties any
 * placement must have (distinct replicas, unfenced leaders, spread, racks).
 *
 * Run: make build/tests/test_placement && build/tests/test_placement
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/placement.h"
#include "protocol/errors.h"

#include "unit_check.h"

/* ---- Kafka's MockRandom (server-common/.../util/MockRandom.java): a
 * java.util.Random whose next(bits) is this LCG, seed 17; nextInt(bound) is
 * java.util.Random's algorithm on top of it. ---- */

typedef struct mockrandom {
    uint64_t state;
} mockrandom;

static int32_t mr_next(mockrandom *m, int bits) {
    m->state = m->state * 2862933555777941757ULL + 3037000493ULL;
    return (int32_t)(uint32_t)(m->state >> (64 - bits));
}

static uint32_t mr_next_int(void *ctx, uint32_t ubound) {
    mockrandom *m = ctx;
    int32_t bound = (int32_t)ubound;
    int32_t r = mr_next(m, 31);
    int32_t mask = bound - 1;
    if ((bound & mask) == 0)
        return (uint32_t)(int32_t)(((int64_t)bound * (int64_t)r) >> 31);
    for (int32_t u = r;; u = mr_next(m, 31)) {
        r = u % bound;
        if ((int32_t)((uint32_t)u - (uint32_t)r + (uint32_t)mask) >= 0)
            break;
    }
    return (uint32_t)r;
}

static mockrandom mock(void) {
    mockrandom m = {17};
    return m;
}

/* ---- helpers ---- */

#define B(i, r, f) ((placement_broker){(i), (r), (f)})

static char err[256];

static int16_t place(const placement_broker *b, int n, int32_t nparts, int16_t rf, mockrandom *m, int32_t *out) {
    return placement_place(b, n, 0, nparts, rf, mr_next_int, m, out, err, sizeof(err));
}

/* Compare partition p of out (rf wide) with the expected list. */
static bool row_is(const int32_t *out, int rf, int p, const int32_t *want) {
    return memcmp(out + p * rf, want, (size_t)rf * sizeof(int32_t)) == 0;
}

static void print_rows(const char *what, const int32_t *out, int nparts, int rf) {
    fprintf(stderr, "%s:", what);
    for (int p = 0; p < nparts; p++) {
        fprintf(stderr, " [");
        for (int r = 0; r < rf; r++)
            fprintf(stderr, "%s%d", r ? "," : "", out[p * rf + r]);
        fprintf(stderr, "]");
    }
    fprintf(stderr, "\n");
}

static void expect_rows(const char *what, const int32_t *out, int nparts, int rf, const int32_t *want) {
    bool ok = true;
    for (int p = 0; p < nparts; p++)
        ok = ok && row_is(out, rf, p, want + p * rf);
    CHECK(ok, "%s: placement differs from Kafka's", what);
    if (!ok)
        print_rows("  got", out, nparts, rf);
}

/* ---- Kafka's StripedReplicaPlacerTest ---- */

static void test_avoid_fenced_single_rack(void) {
    placement_broker b[] = {B(3, NULL, false), B(1, NULL, true), B(0, NULL, false), B(4, NULL, false),
                            B(2, NULL, false)};
    int32_t out[5 * 4];
    mockrandom m = mock();
    CHECK(place(b, 5, 1, 0, &m, out) == KERR_INVALID_REPLICATION_FACTOR, "rf 0");
    m = mock();
    CHECK(place(b, 5, 1, -1, &m, out) == KERR_INVALID_REPLICATION_FACTOR, "rf -1");
    m = mock();
    CHECK(place(b, 5, 5, 4, &m, out) == 0, "placed: %s", err);
    const int32_t want[] = {3, 4, 0, 2, 4, 0, 2, 3, 0, 2, 3, 4, 2, 3, 4, 0, 0, 4, 3, 2};
    expect_rows("testAvoidFencedReplicaIfPossibleOnSingleRack", out, 5, 4, want);
}

static void test_multi_partition_single_unfenced(void) {
    placement_broker b[] = {B(0, NULL, false), B(1, NULL, true)};
    int32_t out[3];
    mockrandom m = mock();
    CHECK(place(b, 2, 3, 1, &m, out) == 0, "placed: %s", err);
    const int32_t want[] = {0, 0, 0};
    expect_rows("testMultiPartitionTopicPlacementOnSingleUnfencedBroker", out, 3, 1, want);
}

static void test_fenced_when_needed_single_rack(void) {
    placement_broker b[] = {B(3, NULL, false), B(1, NULL, true), B(2, NULL, false)};
    int32_t out[4 * 3];
    mockrandom m = mock();
    CHECK(place(b, 3, 4, 3, &m, out) == 0, "placed: %s", err);
    const int32_t want[] = {3, 2, 1, 2, 3, 1, 3, 2, 1, 2, 3, 1};
    expect_rows("testPlacementOnFencedReplicaOnSingleRack", out, 4, 3, want);
}

static void test_multiple_racks(void) {
    placement_broker b[] = {B(11, "1", false), B(10, "1", false), B(30, "3", false),
                            B(31, "3", false), B(21, "2", false), B(20, "2", true)};
    int32_t out[3 * 4];
    mockrandom m = mock();
    CHECK(place(b, 6, 3, 4, &m, out) == 0, "placed: %s", err);
    const int32_t want[] = {11, 21, 31, 10, 21, 30, 10, 20, 31, 11, 21, 30};
    expect_rows("testRackListWithMultipleRacks", out, 3, 4, want);
}

static void test_invalid_racks(void) {
    placement_broker b[] = {B(11, "1", false), B(10, "1", false), B(30, "3", true), B(31, "3", true),
                            B(20, "2", true),  B(21, "2", true),  B(41, "4", false), B(40, "4", true)};
    int32_t out[3 * 4];
    mockrandom m = mock();
    CHECK(place(b, 8, 3, 4, &m, out) == 0, "placed: %s", err);
    const int32_t want[] = {41, 11, 21, 30, 10, 20, 31, 41, 41, 21, 30, 11};
    expect_rows("testRackListWithInvalidRacks", out, 3, 4, want);
}

static void test_error_messages(void) {
    int32_t out[8];
    mockrandom m = mock();
    placement_broker fenced2[] = {B(11, "1", true), B(10, "1", true)};
    CHECK(place(fenced2, 2, 1, 1, &m, out) == KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(err, "All brokers are currently fenced.") == 0,
          "testAllBrokersFenced: %s", err);

    placement_broker two[] = {B(11, "1", false), B(10, "1", false)};
    m = mock();
    CHECK(place(two, 2, 1, 3, &m, out) == KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(err, "The target replication factor of 3 cannot be reached because only 2 broker(s) are "
                          "registered.") == 0,
          "testNotEnoughBrokers: %s", err);
    m = mock();
    CHECK(place(two, 2, 1, 0, &m, out) == KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(err, "Invalid replication factor 0: the replication factor must be positive.") == 0,
          "testNonPositiveReplicationFactor: %s", err);
    m = mock();
    CHECK(place(two, 2, 1, -1, &m, out) == KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(err, "Invalid replication factor -1: the replication factor must be positive.") == 0,
          "testRackListNonPositiveReplicationFactor: %s", err);

    placement_broker fenced3[] = {B(0, NULL, true), B(1, NULL, true), B(2, NULL, true)};
    m = mock();
    CHECK(place(fenced3, 3, 1, 3, &m, out) == KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(err, "All brokers are currently fenced.") == 0,
          "testRackListAllBrokersFenced: %s", err);

    /* Both fenced and too few: the placer reports fencing first. */
    m = mock();
    CHECK(place(fenced2, 2, 1, 3, &m, out) == KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(err, "All brokers are currently fenced.") == 0,
          "fenced before too few: %s", err);
    /* No broker at all: Kafka says all (zero) brokers are fenced. */
    m = mock();
    CHECK(place(NULL, 0, 1, 1, &m, out) == KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(err, "All brokers are currently fenced.") == 0,
          "no brokers: %s", err);
    /* rf 4 on 3 brokers, the message with the figures of the call. */
    placement_broker three[] = {B(1, NULL, false), B(2, NULL, false), B(3, NULL, false)};
    m = mock();
    CHECK(place(three, 3, 5, 4, &m, out) == KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(err, "The target replication factor of 4 cannot be reached because only 3 broker(s) are "
                          "registered.") == 0,
          "rf > brokers: %s", err);
    /* A short buffer gets a truncated, terminated message; NULL is allowed. */
    char small[8];
    m = mock();
    CHECK(placement_place(fenced2, 2, 0, 1, 1, mr_next_int, &m, out, small, sizeof(small)) ==
                  KERR_INVALID_REPLICATION_FACTOR &&
              strcmp(small, "All bro") == 0,
          "truncated: %s", small);
    m = mock();
    CHECK(placement_place(fenced2, 2, 0, 1, 1, mr_next_int, &m, out, NULL, 0) == KERR_INVALID_REPLICATION_FACTOR,
          "NULL errmsg");
    /* Zero partitions: nothing placed, no error (Kafka's empty assignment). */
    m = mock();
    CHECK(place(three, 3, 0, 3, &m, out) == 0, "zero partitions");
}

static void test_successful_placement(void) {
    placement_broker b[] = {B(0, NULL, false), B(3, NULL, false), B(2, NULL, false), B(1, NULL, false)};
    int32_t out[5 * 3];
    mockrandom m = mock();
    CHECK(place(b, 4, 5, 3, &m, out) == 0, "placed: %s", err);
    const int32_t want[] = {2, 3, 0, 3, 0, 1, 0, 1, 2, 1, 2, 3, 1, 0, 2};
    expect_rows("testSuccessfulPlacement", out, 5, 3, want);
}

static void test_even_distribution(void) {
    placement_broker b[] = {B(0, NULL, false), B(1, NULL, false), B(2, NULL, false), B(3, NULL, false)};
    int32_t out[200 * 2];
    mockrandom m = mock();
    CHECK(place(b, 4, 200, 2, &m, out) == 0, "placed: %s", err);
    int counts[4][4] = {{0}};
    for (int p = 0; p < 200; p++)
        counts[out[2 * p]][out[2 * p + 1]]++;
    static const int want[4][4] = {{0, 14, 22, 14}, {17, 0, 17, 16}, {13, 17, 0, 20}, {20, 19, 11, 0}};
    bool ok = memcmp(counts, want, sizeof(want)) == 0;
    CHECK(ok, "testEvenDistribution: pair counts differ from Kafka's");
    if (!ok)
        for (int i = 0; i < 4; i++)
            fprintf(stderr, "  %d: %d %d %d %d\n", i, counts[i][0], counts[i][1], counts[i][2], counts[i][3]);
}

/* ---- properties ---- */

static const char *rack_of(const placement_broker *b, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (b[i].id == id)
            return b[i].rack;
    return "?";
}

static bool fenced_of(const placement_broker *b, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (b[i].id == id)
            return b[i].fenced;
    return true;
}

static bool known(const placement_broker *b, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (b[i].id == id)
            return true;
    return false;
}

/* Every replica a known broker, distinct within a partition, leader unfenced. */
static bool well_formed(const placement_broker *b, int n, const int32_t *out, int nparts, int rf) {
    for (int p = 0; p < nparts; p++) {
        const int32_t *row = out + p * rf;
        if (fenced_of(b, n, row[0]))
            return false;
        for (int r = 0; r < rf; r++) {
            if (!known(b, n, row[r]))
                return false;
            for (int s = 0; s < r; s++)
                if (row[s] == row[r])
                    return false;
        }
    }
    return true;
}

static void test_properties(void) {
    enum { NB = 6, NP = 600 };
    static int32_t out[NP * 3];
    placement_broker b[NB];
    for (int i = 0; i < NB; i++)
        b[i] = B(100 + i, NULL, false);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        uint64_t st = seed;
        int16_t e = placement_place(b, NB, 0, NP, 3, placement_rand_splitmix, &st, out, err, sizeof(err));
        CHECK(e == 0 && well_formed(b, NB, out, NP, 3), "seed %llu: distinct replicas", (unsigned long long)seed);
        int leaders[NB] = {0}, replicas[NB] = {0};
        for (int p = 0; p < NP; p++) {
            leaders[out[p * 3] - 100]++;
            for (int r = 0; r < 3; r++)
                replicas[out[p * 3 + r] - 100]++;
        }
        /* The striping gives every broker exactly one leader per lap. */
        for (int i = 0; i < NB; i++) {
            CHECK(leaders[i] == NP / NB, "seed %llu: broker %d leads %d of %d", (unsigned long long)seed, i,
                  leaders[i], NP);
            CHECK(replicas[i] >= NP * 3 / NB * 8 / 10 && replicas[i] <= NP * 3 / NB * 12 / 10,
                  "seed %llu: broker %d holds %d replicas", (unsigned long long)seed, i, replicas[i]);
        }
    }

    /* Same seed, same placement (a simulator can replay it). */
    int32_t a[30 * 3], c[30 * 3];
    uint64_t s1 = 42, s2 = 42;
    placement_place(b, NB, 0, 30, 3, placement_rand_splitmix, &s1, a, err, sizeof(err));
    placement_place(b, NB, 7, 30, 3, placement_rand_splitmix, &s2, c, err, sizeof(err));
    CHECK(memcmp(a, c, sizeof(a)) == 0, "deterministic for a seed (start_partition does not matter)");
}

static void test_racks_alternate(void) {
    /* Three racks of two: with rf 3 every partition has one replica per rack,
     * and leaders cycle through the racks. */
    placement_broker b[] = {B(1, "a", false), B(2, "a", false), B(3, "b", false),
                            B(4, "b", false), B(5, "c", false), B(6, "c", false)};
    static int32_t out[300 * 3];
    for (uint64_t seed = 1; seed <= 10; seed++) {
        uint64_t st = seed;
        CHECK(placement_place(b, 6, 0, 300, 3, placement_rand_splitmix, &st, out, err, sizeof(err)) == 0,
              "placed: %s", err);
        CHECK(well_formed(b, 6, out, 300, 3), "well formed");
        int bad = 0, leader_racks[3] = {0};
        for (int p = 0; p < 300; p++) {
            const char *r0 = rack_of(b, 6, out[p * 3]), *r1 = rack_of(b, 6, out[p * 3 + 1]),
                       *r2 = rack_of(b, 6, out[p * 3 + 2]);
            if (!strcmp(r0, r1) || !strcmp(r1, r2) || !strcmp(r0, r2))
                bad++;
            leader_racks[r0[0] - 'a']++;
        }
        CHECK(bad == 0, "seed %llu: %d partitions with two replicas in one rack", (unsigned long long)seed, bad);
        CHECK(leader_racks[0] == 100 && leader_racks[1] == 100 && leader_racks[2] == 100,
              "leaders per rack %d %d %d", leader_racks[0], leader_racks[1], leader_racks[2]);
    }
    /* rf 2 on two racks: the two replicas are always in different racks. */
    placement_broker two[] = {B(1, "x", false), B(2, "x", false), B(3, "x", false),
                              B(4, "y", false), B(5, "y", false), B(6, "y", false)};
    uint64_t st = 9;
    CHECK(placement_place(two, 6, 0, 300, 2, placement_rand_splitmix, &st, out, err, sizeof(err)) == 0, "placed");
    int same = 0;
    for (int p = 0; p < 300; p++)
        same += strcmp(rack_of(two, 6, out[p * 2]), rack_of(two, 6, out[p * 2 + 1])) == 0;
    CHECK(same == 0, "%d partitions with both replicas in one rack", same);
}

static void test_fenced_rules(void) {
    /* Fenced brokers never lead and are used only when rf needs them. */
    placement_broker b[] = {B(1, NULL, false), B(2, NULL, true), B(3, NULL, false), B(4, NULL, false),
                            B(5, NULL, true)};
    static int32_t out[100 * 5];
    uint64_t st = 3;
    CHECK(placement_place(b, 5, 0, 100, 3, placement_rand_splitmix, &st, out, err, sizeof(err)) == 0, "rf 3");
    int fenced_used = 0;
    for (int i = 0; i < 100 * 3; i++)
        fenced_used += out[i] == 2 || out[i] == 5;
    CHECK(well_formed(b, 5, out, 100, 3) && fenced_used == 0, "rf 3 on 3 unfenced: %d fenced replicas",
          fenced_used);
    st = 3;
    CHECK(placement_place(b, 5, 0, 100, 5, placement_rand_splitmix, &st, out, err, sizeof(err)) == 0, "rf 5");
    bool tail_fenced = true;
    for (int p = 0; p < 100; p++)
        tail_fenced = tail_fenced && fenced_of(b, 5, out[p * 5 + 3]) && fenced_of(b, 5, out[p * 5 + 4]);
    CHECK(well_formed(b, 5, out, 100, 5) && tail_fenced, "rf 5: the fenced brokers come last");

    /* One unfenced broker among fenced ones leads everything. */
    placement_broker one[] = {B(7, "r1", true), B(8, "r2", false), B(9, "r3", true)};
    st = 5;
    CHECK(placement_place(one, 3, 0, 50, 3, placement_rand_splitmix, &st, out, err, sizeof(err)) == 0, "one");
    bool all8 = true;
    for (int p = 0; p < 50; p++)
        all8 = all8 && out[p * 3] == 8;
    CHECK(well_formed(one, 3, out, 50, 3) && all8, "the only unfenced broker leads");
}

static void test_many_racks(void) {
    /* More racks than a 16-bucket HashMap holds at 3/4, names with shared
     * hash buckets, a no-rack group and UTF-8 names. */
    static const char *names[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9",
                                  "r10", "r11", "r12", "r13", "Aa", "BB", "z\xc3\xa9", "\xf0\x9f\x98\x80", NULL};
    placement_broker b[38];
    for (int i = 0; i < 38; i++)
        b[i] = B(i, names[i % 19], i % 7 == 3);
    static int32_t out[400 * 4];
    uint64_t st = 11;
    CHECK(placement_place(b, 38, 0, 400, 4, placement_rand_splitmix, &st, out, err, sizeof(err)) == 0,
          "placed: %s", err);
    CHECK(well_formed(b, 38, out, 400, 4), "well formed with many racks");
    int multi = 0;
    for (int p = 0; p < 400; p++) {
        const int32_t *row = out + p * 4;
        for (int r = 0; r < 4; r++)
            for (int s = 0; s < r; s++) {
                const char *x = rack_of(b, 38, row[r]), *y = rack_of(b, 38, row[s]);
                if ((!x && !y) || (x && y && !strcmp(x, y)))
                    multi++;
            }
    }
    CHECK(multi == 0, "%d replica pairs share a rack though 19 racks exist", multi);
    /* rf = number of brokers: every broker once per partition. */
    st = 12;
    static int32_t all[10 * 38];
    CHECK(placement_place(b, 38, 0, 10, 38, placement_rand_splitmix, &st, all, err, sizeof(err)) == 0 &&
              well_formed(b, 38, all, 10, 38),
          "rf = brokers: %s", err);
}

int main(void) {
    test_avoid_fenced_single_rack();
    test_multi_partition_single_unfenced();
    test_fenced_when_needed_single_rack();
    test_multiple_racks();
    test_invalid_racks();
    test_error_messages();
    test_successful_placement();
    test_even_distribution();
    test_properties();
    test_racks_alternate();
    test_fenced_rules();
    test_many_racks();
    printf("test_placement: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
