/* java_compat.c - Java exception names and HashMap ordering (see java_compat.h). */
#include "tools/java_compat.h"

#include <stdlib.h>

/* Kafka 3.6.1's Errors table: code -> exception class. */
static const char *const error_classes[] = {
    [1] = "org.apache.kafka.common.errors.OffsetOutOfRangeException",
    [2] = "org.apache.kafka.common.errors.CorruptRecordException",
    [3] = "org.apache.kafka.common.errors.UnknownTopicOrPartitionException",
    [4] = "org.apache.kafka.common.errors.InvalidFetchSizeException",
    [5] = "org.apache.kafka.common.errors.LeaderNotAvailableException",
    [6] = "org.apache.kafka.common.errors.NotLeaderOrFollowerException",
    [7] = "org.apache.kafka.common.errors.TimeoutException",
    [8] = "org.apache.kafka.common.errors.BrokerNotAvailableException",
    [9] = "org.apache.kafka.common.errors.ReplicaNotAvailableException",
    [10] = "org.apache.kafka.common.errors.RecordTooLargeException",
    [11] = "org.apache.kafka.common.errors.ControllerMovedException",
    [12] = "org.apache.kafka.common.errors.OffsetMetadataTooLarge",
    [13] = "org.apache.kafka.common.errors.NetworkException",
    [14] = "org.apache.kafka.common.errors.CoordinatorLoadInProgressException",
    [15] = "org.apache.kafka.common.errors.CoordinatorNotAvailableException",
    [16] = "org.apache.kafka.common.errors.NotCoordinatorException",
    [17] = "org.apache.kafka.common.errors.InvalidTopicException",
    [18] = "org.apache.kafka.common.errors.RecordBatchTooLargeException",
    [19] = "org.apache.kafka.common.errors.NotEnoughReplicasException",
    [20] = "org.apache.kafka.common.errors.NotEnoughReplicasAfterAppendException",
    [21] = "org.apache.kafka.common.errors.InvalidRequiredAcksException",
    [22] = "org.apache.kafka.common.errors.IllegalGenerationException",
    [23] = "org.apache.kafka.common.errors.InconsistentGroupProtocolException",
    [24] = "org.apache.kafka.common.errors.InvalidGroupIdException",
    [25] = "org.apache.kafka.common.errors.UnknownMemberIdException",
    [26] = "org.apache.kafka.common.errors.InvalidSessionTimeoutException",
    [27] = "org.apache.kafka.common.errors.RebalanceInProgressException",
    [28] = "org.apache.kafka.common.errors.InvalidCommitOffsetSizeException",
    [29] = "org.apache.kafka.common.errors.TopicAuthorizationException",
    [30] = "org.apache.kafka.common.errors.GroupAuthorizationException",
    [31] = "org.apache.kafka.common.errors.ClusterAuthorizationException",
    [32] = "org.apache.kafka.common.errors.InvalidTimestampException",
    [33] = "org.apache.kafka.common.errors.UnsupportedSaslMechanismException",
    [34] = "org.apache.kafka.common.errors.IllegalSaslStateException",
    [35] = "org.apache.kafka.common.errors.UnsupportedVersionException",
    [36] = "org.apache.kafka.common.errors.TopicExistsException",
    [37] = "org.apache.kafka.common.errors.InvalidPartitionsException",
    [38] = "org.apache.kafka.common.errors.InvalidReplicationFactorException",
    [39] = "org.apache.kafka.common.errors.InvalidReplicaAssignmentException",
    [40] = "org.apache.kafka.common.errors.InvalidConfigurationException",
    [41] = "org.apache.kafka.common.errors.NotControllerException",
    [42] = "org.apache.kafka.common.errors.InvalidRequestException",
    [43] = "org.apache.kafka.common.errors.UnsupportedForMessageFormatException",
    [44] = "org.apache.kafka.common.errors.PolicyViolationException",
    [45] = "org.apache.kafka.common.errors.OutOfOrderSequenceException",
    [46] = "org.apache.kafka.common.errors.DuplicateSequenceException",
    [47] = "org.apache.kafka.common.errors.InvalidProducerEpochException",
    [48] = "org.apache.kafka.common.errors.InvalidTxnStateException",
    [49] = "org.apache.kafka.common.errors.InvalidPidMappingException",
    [50] = "org.apache.kafka.common.errors.InvalidTxnTimeoutException",
    [51] = "org.apache.kafka.common.errors.ConcurrentTransactionsException",
    [52] = "org.apache.kafka.common.errors.TransactionCoordinatorFencedException",
    [53] = "org.apache.kafka.common.errors.TransactionalIdAuthorizationException",
    [54] = "org.apache.kafka.common.errors.SecurityDisabledException",
    [55] = "org.apache.kafka.common.errors.OperationNotAttemptedException",
    [56] = "org.apache.kafka.common.errors.KafkaStorageException",
    [57] = "org.apache.kafka.common.errors.LogDirNotFoundException",
    [58] = "org.apache.kafka.common.errors.SaslAuthenticationException",
    [59] = "org.apache.kafka.common.errors.UnknownProducerIdException",
    [60] = "org.apache.kafka.common.errors.ReassignmentInProgressException",
    [61] = "org.apache.kafka.common.errors.DelegationTokenDisabledException",
    [62] = "org.apache.kafka.common.errors.DelegationTokenNotFoundException",
    [63] = "org.apache.kafka.common.errors.DelegationTokenOwnerMismatchException",
    [64] = "org.apache.kafka.common.errors.UnsupportedByAuthenticationException",
    [65] = "org.apache.kafka.common.errors.DelegationTokenAuthorizationException",
    [66] = "org.apache.kafka.common.errors.DelegationTokenExpiredException",
    [67] = "org.apache.kafka.common.errors.InvalidPrincipalTypeException",
    [68] = "org.apache.kafka.common.errors.GroupNotEmptyException",
    [69] = "org.apache.kafka.common.errors.GroupIdNotFoundException",
    [70] = "org.apache.kafka.common.errors.FetchSessionIdNotFoundException",
    [71] = "org.apache.kafka.common.errors.InvalidFetchSessionEpochException",
    [72] = "org.apache.kafka.common.errors.ListenerNotFoundException",
    [73] = "org.apache.kafka.common.errors.TopicDeletionDisabledException",
    [74] = "org.apache.kafka.common.errors.FencedLeaderEpochException",
    [75] = "org.apache.kafka.common.errors.UnknownLeaderEpochException",
    [76] = "org.apache.kafka.common.errors.UnsupportedCompressionTypeException",
    [77] = "org.apache.kafka.common.errors.StaleBrokerEpochException",
    [78] = "org.apache.kafka.common.errors.OffsetNotAvailableException",
    [79] = "org.apache.kafka.common.errors.MemberIdRequiredException",
    [80] = "org.apache.kafka.common.errors.PreferredLeaderNotAvailableException",
    [81] = "org.apache.kafka.common.errors.GroupMaxSizeReachedException",
    [82] = "org.apache.kafka.common.errors.FencedInstanceIdException",
    [83] = "org.apache.kafka.common.errors.EligibleLeadersNotAvailableException",
    [84] = "org.apache.kafka.common.errors.ElectionNotNeededException",
    [85] = "org.apache.kafka.common.errors.NoReassignmentInProgressException",
    [86] = "org.apache.kafka.common.errors.GroupSubscribedToTopicException",
    [87] = "org.apache.kafka.common.InvalidRecordException",
    [88] = "org.apache.kafka.common.errors.UnstableOffsetCommitException",
    [89] = "org.apache.kafka.common.errors.ThrottlingQuotaExceededException",
    [90] = "org.apache.kafka.common.errors.ProducerFencedException",
    [91] = "org.apache.kafka.common.errors.ResourceNotFoundException",
    [92] = "org.apache.kafka.common.errors.DuplicateResourceException",
    [93] = "org.apache.kafka.common.errors.UnacceptableCredentialException",
    [94] = "org.apache.kafka.common.errors.InconsistentVoterSetException",
    [95] = "org.apache.kafka.common.errors.InvalidUpdateVersionException",
    [96] = "org.apache.kafka.common.errors.FeatureUpdateFailedException",
    [97] = "org.apache.kafka.common.errors.PrincipalDeserializationException",
    [98] = "org.apache.kafka.common.errors.SnapshotNotFoundException",
    [100] = "org.apache.kafka.common.errors.UnknownTopicIdException",
    [101] = "org.apache.kafka.common.errors.DuplicateBrokerRegistrationException",
    [102] = "org.apache.kafka.common.errors.BrokerIdNotRegisteredException",
    [103] = "org.apache.kafka.common.errors.InconsistentTopicIdException",
    [104] = "org.apache.kafka.common.errors.InconsistentClusterIdException",
    [105] = "org.apache.kafka.common.errors.TransactionalIdNotFoundException",
    [106] = "org.apache.kafka.common.errors.FetchSessionTopicIdException",
    [107] = "org.apache.kafka.common.errors.IneligibleReplicaException",
    [108] = "org.apache.kafka.common.errors.NewLeaderElectedException",
    [109] = "org.apache.kafka.common.errors.OffsetMovedToTieredStorageException",
    [110] = "org.apache.kafka.common.errors.FencedMemberEpochException",
    [111] = "org.apache.kafka.common.errors.UnreleasedInstanceIdException",
    [112] = "org.apache.kafka.common.errors.UnsupportedAssignorException",
    [113] = "org.apache.kafka.common.errors.StaleMemberEpochException",
};

#define ERROR_CLASS_COUNT ((int)(sizeof error_classes / sizeof error_classes[0]))

const char *java_error_class(int16_t code) {
    if (code == 0) return NULL;
    if (code > 0 && code < ERROR_CLASS_COUNT && error_classes[code]) return error_classes[code];
    return "org.apache.kafka.common.errors.UnknownServerException";
}

int32_t java_string_hash(const char *s, size_t len) {
    uint32_t h = 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* Decode one UTF-8 code point; invalid bytes count as themselves. */
        uint32_t cp = p[i];
        size_t extra = cp >= 0xF0 && cp < 0xF8 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : 0;
        if (cp >= 0xF8 || i + extra >= len) extra = 0;
        if (extra) {
            cp &= 0x3Fu >> extra;
            for (size_t k = 1; k <= extra; k++) cp = cp << 6 | (p[i + k] & 0x3F);
        }
        i += 1 + extra;
        if (cp >= 0x10000) { /* surrogate pair, two UTF-16 units */
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)h;
}

int32_t java_topic_partition_hash(const char *topic, int32_t partition) {
    uint32_t h = 31u * 1u + (uint32_t)partition;
    size_t len = 0;
    while (topic[len]) len++;
    h = 31u * h + (uint32_t)java_string_hash(topic, len);
    return (int32_t)h;
}

size_t java_hashmap_capacity(size_t n, size_t initial_capacity) {
    size_t cap = 16;
    if (initial_capacity > 0) {
        cap = 1; /* tableSizeFor: next power of two */
        while (cap < initial_capacity) cap <<= 1;
    }
    /* The table doubles whenever size exceeds 3/4 of it. */
    while (n > cap * 3 / 4 && cap < ((size_t)1 << 30)) cap <<= 1;
    return cap;
}

typedef struct slot {
    size_t bucket, index;
} slot;

static int cmp_slot(const void *a, const void *b) {
    const slot *x = a, *y = b;
    if (x->bucket != y->bucket) return x->bucket < y->bucket ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

int java_hashmap_order(const int32_t *hashes, size_t n, size_t capacity, size_t *order) {
    if (n == 0) return 0;
    slot *s = malloc(n * sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)hashes[i];
        h ^= h >> 16; /* HashMap.hash spreads the high bits down */
        s[i].bucket = h & (capacity - 1);
        s[i].index = i;
    }
    /* Buckets in table order; within one, insertion order (resizes keep it). */
    qsort(s, n, sizeof *s, cmp_slot);
    for (size_t i = 0; i < n; i++) order[i] = s[i].index;
    free(s);
    return 0;
}
