"""The ACL matrix: each API of Kafka's "Operations and Resources on Protocols" table
(docs/security.html of Kafka 3.6.1), asked by a user without the ACL it names (Kafka's
authorization error), then with it (no longer that error; a second check where the table names
two, such as OffsetCommit's group then topic).

Requests are encoded from Kafka's message definitions (kproto.py) and sent over SASL/PLAIN as
User:alice (User:bob for the idempotent producer, which Kafka also lets in with WRITE on any
topic); ACLs are created with CreateAcls by the super user on the PLAINTEXT listener. Every row
uses resources of its own, and each round first grants, then checks every row, so a grant for
one row cannot answer another's denied check.
"""
import shutil
import struct
import tempfile
import time

import pytest

import kproto
from test_acls import BOB_PW, acl_node
from test_sasl import ALICE_PW

pytestmark = pytest.mark.skipif(not kproto.have_specs(), reason=f"no message definitions at {kproto.SPEC_DIR}")

NONE = 0
TOPIC_AUTH, GROUP_AUTH, CLUSTER_AUTH, TXN_AUTH = 29, 30, 31, 53
# ResourceType, AclOperation (org.apache.kafka.common.acl / resource)
TOPIC, GROUP, CLUSTER, TXN_ID = 2, 3, 4, 5
READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = \
    3, 4, 5, 6, 7, 8, 9, 10, 11, 12


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def zigzag(n):
    v = (n << 1) ^ (n >> 63)
    return kproto.uvarint(v)


def record_batch(value=b"v"):
    """One v2 batch with one record (no key), as a producer sends it."""
    body = b"\0" + zigzag(0) + zigzag(0) + zigzag(-1) + zigzag(len(value)) + value + zigzag(0)
    record = zigzag(len(body)) + body
    now = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 0, 0, now, now, -1, -1, -1, 1) + record
    head = struct.pack(">ib", -1, 2) + struct.pack(">I", crc32c(after_crc))
    batch = head + after_crc
    return struct.pack(">qi", 0, len(batch)) + batch


def acl(rtype, name, op, principal="User:alice"):
    return {"ResourceType": rtype, "ResourceName": name, "ResourcePatternType": 3, "Principal": principal,
            "Host": "*", "Operation": op, "PermissionType": 3}


def rows(t):
    """(name, principal, api, version, body, error path, [(grants, expected)]); expected is an error
    code the answer must have, or ("not", code) for one it must not have. t(x) names a row's own
    resources."""
    part = [{"PartitionIndex": 0}]
    txn_body = {"TransactionalId": t("tx"), "ProducerId": 1, "ProducerEpoch": 0}
    return [
        ("Produce", "alice", "Produce", 7,
         {"Acks": 1, "TimeoutMs": 5000, "TopicData": [{"Name": t("topic"), "PartitionData": [
             {"Index": 0, "Records": record_batch()}]}]},
         ("Responses", 0, "PartitionResponses", 0, "ErrorCode"),
         [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), WRITE)], NONE)]),
        ("Fetch", "alice", "Fetch", 11,
         {"ReplicaId": -1, "MaxWaitMs": 0, "MaxBytes": 1 << 20, "SessionEpoch": -1, "Topics": [
             {"Topic": t("topic"), "Partitions": [{"Partition": 0, "CurrentLeaderEpoch": -1, "LogStartOffset": -1,
                                                   "PartitionMaxBytes": 1 << 16}]}]},
         ("Responses", 0, "Partitions", 0, "ErrorCode"),
         [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), READ)], NONE)]),
        ("ListOffsets", "alice", "ListOffsets", 5,
         {"ReplicaId": -1, "Topics": [{"Name": t("topic"), "Partitions": [
             {"PartitionIndex": 0, "CurrentLeaderEpoch": -1, "Timestamp": -1}]}]},
         ("Topics", 0, "Partitions", 0, "ErrorCode"),
         [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), DESCRIBE)], NONE)]),
        ("Metadata", "alice", "Metadata", 8,
         {"Topics": [{"Name": t("topic")}], "AllowAutoTopicCreation": False},
         ("Topics", 0, "ErrorCode"),
         [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), DESCRIBE)], NONE)]),
        ("Metadata auto-creation", "alice", "Metadata", 8,
         {"Topics": [{"Name": t("new")}], "AllowAutoTopicCreation": True},
         ("Topics", 0, "ErrorCode"),
         [([acl(TOPIC, t("new"), DESCRIBE)], TOPIC_AUTH), ([acl(TOPIC, t("new"), CREATE)], ("not", TOPIC_AUTH))]),
        ("OffsetCommit", "alice", "OffsetCommit", 7,
         {"GroupId": t("group"), "GenerationIdOrMemberEpoch": -1, "Topics": [{"Name": t("topic"), "Partitions": [
             {"PartitionIndex": 0, "CommittedOffset": 0, "CommittedLeaderEpoch": -1}]}]},
         ("Topics", 0, "Partitions", 0, "ErrorCode"),
         [([], GROUP_AUTH), ([acl(GROUP, t("group"), READ)], TOPIC_AUTH), ([acl(TOPIC, t("topic"), READ)], NONE)]),
        ("OffsetFetch", "alice", "OffsetFetch", 7,
         {"GroupId": t("group"), "Topics": [{"Name": t("topic"), "PartitionIndexes": [0]}]},
         ("ErrorCode",),
         [([], GROUP_AUTH), ([acl(GROUP, t("group"), DESCRIBE)], NONE)]),
        ("OffsetFetch topic", "alice", "OffsetFetch", 7,
         {"GroupId": t("group"), "Topics": [{"Name": t("topic"), "PartitionIndexes": [0]}]},
         ("Topics", 0, "Partitions", 0, "ErrorCode"),
         [([acl(GROUP, t("group"), DESCRIBE)], TOPIC_AUTH), ([acl(TOPIC, t("topic"), DESCRIBE)], NONE)]),
        ("FindCoordinator group", "alice", "FindCoordinator", 3, {"Key": t("group"), "KeyType": 0},
         ("ErrorCode",), [([], GROUP_AUTH), ([acl(GROUP, t("group"), DESCRIBE)], NONE)]),
        ("FindCoordinator transaction", "alice", "FindCoordinator", 3, {"Key": t("tx"), "KeyType": 1},
         ("ErrorCode",), [([], TXN_AUTH), ([acl(TXN_ID, t("tx"), DESCRIBE)], ("not", TXN_AUTH))]),
        ("JoinGroup", "alice", "JoinGroup", 5,
         {"GroupId": t("group"), "SessionTimeoutMs": 10000, "RebalanceTimeoutMs": 10000, "ProtocolType": "consumer",
          "Protocols": [{"Name": "range", "Metadata": b""}]},
         ("ErrorCode",), [([], GROUP_AUTH), ([acl(GROUP, t("group"), READ)], ("not", GROUP_AUTH))]),
        ("Heartbeat", "alice", "Heartbeat", 3, {"GroupId": t("group"), "GenerationId": 1, "MemberId": "m"},
         ("ErrorCode",), [([], GROUP_AUTH), ([acl(GROUP, t("group"), READ)], ("not", GROUP_AUTH))]),
        ("LeaveGroup", "alice", "LeaveGroup", 3, {"GroupId": t("group"), "Members": [{"MemberId": "m"}]},
         ("ErrorCode",), [([], GROUP_AUTH), ([acl(GROUP, t("group"), READ)], ("not", GROUP_AUTH))]),
        ("SyncGroup", "alice", "SyncGroup", 3, {"GroupId": t("group"), "GenerationId": 1, "MemberId": "m"},
         ("ErrorCode",), [([], GROUP_AUTH), ([acl(GROUP, t("group"), READ)], ("not", GROUP_AUTH))]),
        ("DescribeGroups", "alice", "DescribeGroups", 4, {"Groups": [t("group")]},
         ("Groups", 0, "ErrorCode"), [([], GROUP_AUTH), ([acl(GROUP, t("group"), DESCRIBE)], NONE)]),
        ("CreateTopics", "alice", "CreateTopics", 4,
         {"Topics": [{"Name": t("created"), "NumPartitions": 1, "ReplicationFactor": 1}], "timeoutMs": 5000},
         ("Topics", 0, "ErrorCode"), [([], TOPIC_AUTH), ([acl(TOPIC, t("created"), CREATE)], NONE)]),
        ("DeleteTopics", "alice", "DeleteTopics", 4, {"TopicNames": [t("topic")], "TimeoutMs": 5000},
         ("Responses", 0, "ErrorCode"), [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), DELETE)], NONE)]),
        ("DeleteRecords", "alice", "DeleteRecords", 1,
         {"Topics": [{"Name": t("topic"), "Partitions": [{"PartitionIndex": 0, "Offset": 0}]}], "TimeoutMs": 5000},
         ("Topics", 0, "Partitions", 0, "ErrorCode"),
         [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), DELETE)], NONE)]),
        ("InitProducerId transactional", "alice", "InitProducerId", 3,
         {"TransactionalId": t("tx"), "TransactionTimeoutMs": 60000, "ProducerId": -1, "ProducerEpoch": -1},
         ("ErrorCode",), [([], TXN_AUTH), ([acl(TXN_ID, t("tx"), WRITE)], ("not", TXN_AUTH))]),
        ("InitProducerId idempotent", "bob", "InitProducerId", 3,
         {"TransactionalId": None, "TransactionTimeoutMs": 60000, "ProducerId": -1, "ProducerEpoch": -1},
         ("ErrorCode",),
         [([], CLUSTER_AUTH), ([acl(CLUSTER, "kafka-cluster", IDEMPOTENT_WRITE, "User:bob")], NONE)]),
        ("OffsetForLeaderEpoch", "alice", "OffsetForLeaderEpoch", 3,
         {"ReplicaId": -1, "Topics": [{"Topic": t("topic"), "Partitions": [
             {"Partition": 0, "CurrentLeaderEpoch": -1, "LeaderEpoch": 0}]}]},
         ("Topics", 0, "Partitions", 0, "ErrorCode"),
         [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), DESCRIBE)], NONE)]),
        ("AddPartitionsToTxn", "alice", "AddPartitionsToTxn", 3,
         {"V3AndBelowTransactionalId": t("tx"), "V3AndBelowProducerId": 1, "V3AndBelowProducerEpoch": 0,
          "V3AndBelowTopics": [{"Name": t("topic"), "Partitions": [0]}]},
         ("ResultsByTopicV3AndBelow", 0, "ResultsByPartition", 0, "PartitionErrorCode"),
         [([], TXN_AUTH), ([acl(TXN_ID, t("tx"), WRITE)], TOPIC_AUTH),
          ([acl(TOPIC, t("topic"), WRITE)], ("not", TOPIC_AUTH))]),
        ("AddOffsetsToTxn", "alice", "AddOffsetsToTxn", 3, dict(txn_body, GroupId=t("group")),
         ("ErrorCode",),
         [([], TXN_AUTH), ([acl(TXN_ID, t("tx"), WRITE)], GROUP_AUTH),
          ([acl(GROUP, t("group"), READ)], ("not", GROUP_AUTH))]),
        ("EndTxn", "alice", "EndTxn", 3, dict(txn_body, Committed=True),
         ("ErrorCode",), [([], TXN_AUTH), ([acl(TXN_ID, t("tx"), WRITE)], ("not", TXN_AUTH))]),
        ("TxnOffsetCommit", "alice", "TxnOffsetCommit", 3,
         dict(txn_body, GroupId=t("group"), GenerationId=-1, Topics=[{"Name": t("topic"), "Partitions": [
             {"PartitionIndex": 0, "CommittedOffset": 0, "CommittedLeaderEpoch": -1}]}]),
         ("Topics", 0, "Partitions", 0, "ErrorCode"),
         [([], TXN_AUTH), ([acl(TXN_ID, t("tx"), WRITE)], GROUP_AUTH),
          ([acl(GROUP, t("group"), READ)], TOPIC_AUTH), ([acl(TOPIC, t("topic"), READ)], ("not", TOPIC_AUTH))]),
        ("DescribeConfigs topic", "alice", "DescribeConfigs", 4,
         {"Resources": [{"ResourceType": TOPIC, "ResourceName": t("topic"), "ConfigurationKeys": None}]},
         ("Results", 0, "ErrorCode"), [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), DESCRIBE_CONFIGS)], NONE)]),
        ("AlterConfigs", "alice", "AlterConfigs", 1,
         {"Resources": [{"ResourceType": TOPIC, "ResourceName": t("topic"),
                         "Configs": [{"Name": "retention.ms", "Value": "100000"}]}], "ValidateOnly": True},
         ("Responses", 0, "ErrorCode"), [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), ALTER_CONFIGS)], NONE)]),
        ("IncrementalAlterConfigs", "alice", "IncrementalAlterConfigs", 1,
         {"Resources": [{"ResourceType": TOPIC, "ResourceName": t("topic"),
                         "Configs": [{"Name": "retention.ms", "ConfigOperation": 0, "Value": "100000"}]}],
          "ValidateOnly": True},
         ("Responses", 0, "ErrorCode"), [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), ALTER_CONFIGS)], NONE)]),
        ("CreatePartitions", "alice", "CreatePartitions", 3,
         {"Topics": [{"Name": t("topic"), "Count": 2, "Assignments": None}], "TimeoutMs": 5000, "ValidateOnly": True},
         ("Results", 0, "ErrorCode"), [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), ALTER)], NONE)]),
        ("DeleteGroups", "alice", "DeleteGroups", 2, {"GroupsNames": [t("group")]},
         ("Results", 0, "ErrorCode"), [([], GROUP_AUTH), ([acl(GROUP, t("group"), DELETE)], ("not", GROUP_AUTH))]),
        ("OffsetDelete", "alice", "OffsetDelete", 0,
         {"GroupId": t("group"), "Topics": [{"Name": t("topic"), "Partitions": part}]},
         ("ErrorCode",), [([], GROUP_AUTH), ([acl(GROUP, t("group"), DELETE)], ("not", GROUP_AUTH))]),
        ("DescribeProducers", "alice", "DescribeProducers", 0,
         {"Topics": [{"Name": t("topic"), "PartitionIndexes": [0]}]},
         ("Topics", 0, "Partitions", 0, "ErrorCode"), [([], TOPIC_AUTH), ([acl(TOPIC, t("topic"), READ)], NONE)]),
        ("DescribeTransactions", "alice", "DescribeTransactions", 0, {"TransactionalIds": [t("tx")]},
         ("TransactionStates", 0, "ErrorCode"),
         [([], TXN_AUTH), ([acl(TXN_ID, t("tx"), DESCRIBE)], ("not", TXN_AUTH))]),
    ]


# The cluster resource is one for all: these rows are checked without it, then all with it.
def cluster_rows():
    return [
        ("DescribeConfigs broker", "DescribeConfigs", 4,
         {"Resources": [{"ResourceType": 4, "ResourceName": "1", "ConfigurationKeys": None}]},
         ("Results", 0, "ErrorCode"), DESCRIBE_CONFIGS),
        ("ElectLeaders", "ElectLeaders", 2, {"ElectionType": 0, "TopicPartitions": None, "TimeoutMs": 5000},
         ("ErrorCode",), ALTER),
        ("AlterPartitionReassignments", "AlterPartitionReassignments", 0, {"TimeoutMs": 5000, "Topics": []},
         ("ErrorCode",), ALTER),
        ("ListPartitionReassignments", "ListPartitionReassignments", 0, {"TimeoutMs": 5000, "Topics": None},
         ("ErrorCode",), DESCRIBE),
        ("DescribeLogDirs", "DescribeLogDirs", 3, {"Topics": None}, ("ErrorCode",), DESCRIBE),
        ("DescribeUserScramCredentials", "DescribeUserScramCredentials", 0, {"Users": None}, ("ErrorCode",), DESCRIBE),
        ("AlterUserScramCredentials", "AlterUserScramCredentials", 0,
         {"Deletions": [{"Name": "nobody", "Mechanism": 1}], "Upsertions": []},
         ("Results", 0, "ErrorCode"), ALTER),
        ("DescribeClientQuotas", "DescribeClientQuotas", 0, {"Components": [], "Strict": False},
         ("ErrorCode",), DESCRIBE_CONFIGS),
        ("AlterClientQuotas", "AlterClientQuotas", 0,
         {"Entries": [{"Entity": [{"EntityType": "user", "EntityName": "zed"}],
                       "Ops": [{"Key": "producer_byte_rate", "Value": 1000.0, "Remove": False}]}],
          "ValidateOnly": True},
         ("Entries", 0, "ErrorCode"), ALTER_CONFIGS),
        ("UpdateFeatures", "UpdateFeatures", 1, {"timeoutMs": 5000, "FeatureUpdates": [], "ValidateOnly": True},
         ("ErrorCode",), ALTER),
        ("DescribeAcls", "DescribeAcls", 1,
         {"ResourceTypeFilter": 1, "ResourceNameFilter": None, "PatternTypeFilter": 1, "PrincipalFilter": None,
          "HostFilter": None, "Operation": 1, "PermissionType": 1},
         ("ErrorCode",), DESCRIBE),
        ("CreateAcls", "CreateAcls", 1,
         {"Creations": [acl(TOPIC, "matrix-made-by-alice", READ, "User:zed")]},
         ("Results", 0, "ErrorCode"), ALTER),
        ("WriteTxnMarkers", "WriteTxnMarkers", 1,
         {"Markers": [{"ProducerId": 77, "ProducerEpoch": 0, "TransactionResult": False,
                       "Topics": [{"Name": "matrix-markers", "PartitionIndexes": [0]}], "CoordinatorEpoch": 0}]},
         ("Markers", 0, "Topics", 0, "Partitions", 0, "ErrorCode"), CLUSTER_ACTION),
    ]


def dig(resp, path):
    v = resp
    for step in path:
        v = v[step]
    return v


def meets(code, expected):
    if isinstance(expected, tuple):
        return code != expected[1]
    return code == expected


@pytest.fixture
def node():
    d = tempfile.mkdtemp(prefix="samsa-acl-matrix-")
    n = acl_node(d, **{"listener.name.sasl_plaintext.plain.sasl.jaas.config":
                       'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
                       'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret" '
                       f'user_bob="{BOB_PW}";'})
    yield n
    code = n.b.stop()
    log = n.b.log_text()
    shutil.rmtree(d, ignore_errors=True)
    assert code in (0, None), f"broker exited with {code}:\n{log[-4000:]}"


def test_each_api_of_kafkas_operation_table(node):
    port = int(node.sasl_bootstrap.rsplit(":", 1)[1])
    super_user = kproto.Conn("127.0.0.1", node.b.port)  # PLAINTEXT: User:ANONYMOUS, a super user
    users = {"alice": kproto.Conn("127.0.0.1", port).login_plain("alice", ALICE_PW),
             "bob": kproto.Conn("127.0.0.1", port).login_plain("bob", BOB_PW)}
    count = len(rows(lambda x: x))
    table = [rows(lambda x, i=i: f"m{i}-{x}")[i] for i in range(count)]  # each row's own resources
    made = super_user.call("CreateTopics", 4, {"Topics": [
        {"Name": n, "NumPartitions": 1, "ReplicationFactor": 1}
        for n in [f"m{i}-topic" for i in range(count)] + ["matrix-markers"]], "timeoutMs": 10000})
    assert all(t["ErrorCode"] == 0 for t in made["Topics"]), made

    def grant(bindings):
        if bindings:
            r = super_user.call("CreateAcls", 1, {"Creations": bindings})
            assert all(x["ErrorCode"] == 0 for x in r["Results"]), r

    failures, checked = [], []

    def check(name, principal, api, version, body, path, expected, stage):
        # an answer that should come once granted may lag the grant a little (bindings reach the
        # authorizer through the metadata log): ask again for up to 5 s before calling it wrong
        deadline = time.time() + 5
        while True:
            code = dig(users[principal].call(api, version, body), path)
            if meets(code, expected) or time.time() > deadline:
                break
            time.sleep(0.1)
        checked.append(name)
        if not meets(code, expected):
            failures.append(f"{name} (step {stage}): error {code}, want {expected}")

    stages = max(len(r[6]) for r in table)
    for stage in range(stages):
        for r in table:
            if stage < len(r[6]):
                grant(r[6][stage][0])
        for name, principal, api, version, body, path, steps in table:
            if stage < len(steps):
                check(name, principal, api, version, body, path, steps[stage][1], stage)
    # the cluster resource: every row refused, then every row allowed
    for name, api, version, body, path, op in cluster_rows():
        check(name, "alice", api, version, body, path, CLUSTER_AUTH, 0)
    grant([acl(CLUSTER, "kafka-cluster", op) for op in {r[5] for r in cluster_rows()}])
    for name, api, version, body, path, op in cluster_rows():
        check(name, "alice", api, version, body, path, ("not", CLUSTER_AUTH), 1)
    for c in (super_user, *users.values()):
        c.close()
    assert not failures, "\n".join(failures)
    assert len(checked) == sum(len(r[6]) for r in table) + 2 * len(cluster_rows()), len(checked)
    assert node.b.proc.poll() is None
