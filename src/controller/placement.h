/* placement.h - replica placement for new partitions, as Kafka 3.6.1's
 * StripedReplicaPlacer (metadata/.../placement/StripedReplicaPlacer.java).
 *
 * Pure: no I/O, no global state. Randomness comes from the caller through
 * placement_rand_fn, called exactly where Kafka calls Random.nextInt(bound)
 * (including inside Collections.shuffle), so a caller that implements Java's
 * nextInt(bound) on the same generator gets Kafka's placements bit for bit
 * (tests/unit/test_placement.c does this with Kafka's MockRandom).
 *
 * Behaviour, as Kafka:
 * - Brokers are grouped by rack (NULL = no rack, sorted before every named
 *   rack); racks are visited round-robin from a random start that advances
 *   by one per partition (the "stripes"); inside a rack brokers are taken
 *   round-robin from a random start, unfenced ones first.
 * - The leader (first replica) is always an unfenced broker; fenced brokers
 *   are used for followers only when the unfenced ones are exhausted.
 * - Once as many partitions have been placed as there are unfenced brokers,
 *   the rack order and every rack's broker lists are shuffled.
 *
 * Errors (Kafka's InvalidReplicationFactorException texts, checked in this
 * order): rf <= 0, all brokers fenced (also: no broker at all), rf larger
 * than the number of brokers.
 */
#ifndef SAMSA_CONTROLLER_PLACEMENT_H
#define SAMSA_CONTROLLER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct placement_broker {
    int32_t id;       /* distinct per call */
    const char *rack; /* NULL = no rack (Optional.empty()) */
    bool fenced;
} placement_broker;

/* A uniformly distributed integer in [0, bound), bound >= 1: Java's
 * Random.nextInt(bound) contract. */
typedef uint32_t (*placement_rand_fn)(void *ctx, uint32_t bound);

/* Place nparts partitions of rf replicas each on the given brokers:
 * out[i * rf + r] is replica r of the i-th placed partition (replica 0 is the
 * preferred leader); out must hold nparts * rf entries. start_partition is
 * the index of the first new partition (CreatePartitions); as in Kafka it
 * does not change the result. nparts <= 0 places nothing.
 *
 * Returns 0, or KERR_INVALID_REPLICATION_FACTOR with Kafka's message written
 * to errmsg (NUL-terminated, truncated to errlen; errmsg may be NULL), or
 * KERR_UNKNOWN_SERVER_ERROR when out of memory. out is undefined on error. */
int16_t placement_place(const placement_broker *brokers, int nbrokers, int32_t start_partition,
                        int32_t nparts, int16_t rf, placement_rand_fn rnd, void *rnd_ctx, int32_t *out,
                        char *errmsg, size_t errlen);

/* A small seeded generator for callers without their own (the controller,
 * simulations): ctx is a uint64_t state (any seed), splitmix64 with
 * rejection so every value in [0, bound) is equally likely. */
uint32_t placement_rand_splitmix(void *ctx, uint32_t bound);

#endif
