"""Black-box tests of the admin tools against our broker (the `broker` fixture).

Expected outputs are Kafka 3.6.1's, as shown in the lab (steps.md).
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import segment_writer  # noqa: E402

API_VERSIONS_BODY = '\tProduce(0): 0 to 9 [usable: 9],\n\tFetch(1): 0 to 15 [usable: 15],\n\tListOffsets(2): 0 to 8 [usable: 8],\n\tMetadata(3): 0 to 12 [usable: 12],\n\tLeaderAndIsr(4): UNSUPPORTED,\n\tStopReplica(5): UNSUPPORTED,\n\tUpdateMetadata(6): UNSUPPORTED,\n\tControlledShutdown(7): UNSUPPORTED,\n\tOffsetCommit(8): 0 to 8 [usable: 8],\n\tOffsetFetch(9): 0 to 8 [usable: 8],\n\tFindCoordinator(10): 0 to 4 [usable: 4],\n\tJoinGroup(11): 0 to 9 [usable: 9],\n\tHeartbeat(12): 0 to 4 [usable: 4],\n\tLeaveGroup(13): 0 to 5 [usable: 5],\n\tSyncGroup(14): 0 to 5 [usable: 5],\n\tDescribeGroups(15): 0 to 5 [usable: 5],\n\tListGroups(16): 0 to 4 [usable: 4],\n\tSaslHandshake(17): 0 to 1 [usable: 1],\n\tApiVersions(18): 0 to 3 [usable: 3],\n\tCreateTopics(19): 0 to 7 [usable: 7],\n\tDeleteTopics(20): 0 to 6 [usable: 6],\n\tDeleteRecords(21): 0 to 2 [usable: 2],\n\tInitProducerId(22): 0 to 4 [usable: 4],\n\tOffsetForLeaderEpoch(23): 0 to 4 [usable: 4],\n\tAddPartitionsToTxn(24): 0 to 4 [usable: 4],\n\tAddOffsetsToTxn(25): 0 to 3 [usable: 3],\n\tEndTxn(26): 0 to 3 [usable: 3],\n\tWriteTxnMarkers(27): 0 to 1 [usable: 1],\n\tTxnOffsetCommit(28): 0 to 3 [usable: 3],\n\tDescribeAcls(29): 0 to 3 [usable: 3],\n\tCreateAcls(30): 0 to 3 [usable: 3],\n\tDeleteAcls(31): 0 to 3 [usable: 3],\n\tDescribeConfigs(32): 0 to 4 [usable: 4],\n\tAlterConfigs(33): 0 to 2 [usable: 2],\n\tAlterReplicaLogDirs(34): 0 to 2 [usable: 2],\n\tDescribeLogDirs(35): 0 to 4 [usable: 4],\n\tSaslAuthenticate(36): 0 to 2 [usable: 2],\n\tCreatePartitions(37): 0 to 3 [usable: 3],\n\tCreateDelegationToken(38): 0 to 3 [usable: 3],\n\tRenewDelegationToken(39): 0 to 2 [usable: 2],\n\tExpireDelegationToken(40): 0 to 2 [usable: 2],\n\tDescribeDelegationToken(41): 0 to 3 [usable: 3],\n\tDeleteGroups(42): 0 to 2 [usable: 2],\n\tElectLeaders(43): 0 to 2 [usable: 2],\n\tIncrementalAlterConfigs(44): 0 to 1 [usable: 1],\n\tAlterPartitionReassignments(45): 0 [usable: 0],\n\tListPartitionReassignments(46): 0 [usable: 0],\n\tOffsetDelete(47): 0 [usable: 0],\n\tDescribeClientQuotas(48): 0 to 1 [usable: 1],\n\tAlterClientQuotas(49): 0 to 1 [usable: 1],\n\tDescribeUserScramCredentials(50): 0 [usable: 0],\n\tAlterUserScramCredentials(51): 0 [usable: 0],\n\tDescribeQuorum(55): 0 to 1 [usable: 1],\n\tAlterPartition(56): UNSUPPORTED,\n\tUpdateFeatures(57): 0 to 1 [usable: 1],\n\tEnvelope(58): UNSUPPORTED,\n\tDescribeCluster(60): 0 [usable: 0],\n\tDescribeProducers(61): 0 [usable: 0],\n\tUnregisterBroker(64): 0 [usable: 0],\n\tDescribeTransactions(65): 0 [usable: 0],\n\tListTransactions(66): 0 [usable: 0],\n\tAllocateProducerIds(67): UNSUPPORTED,\n\tConsumerGroupHeartbeat(68): UNSUPPORTED\n)\n'

TOPIC_ID = re.compile(r"TopicId: [A-Za-z0-9_-]{22}\t")


def test_api_versions_block_matches_lab(broker):
    r = broker.run_tool("kafka-broker-api-versions", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    first, rest = r.stdout.split("\n", 1)
    assert re.fullmatch(r"\S+:\d+ \(id: 1 rack: null\) -> \(", first), first
    assert rest == API_VERSIONS_BODY


def test_api_versions_requires_bootstrap(broker):
    r = broker.run_tool("kafka-broker-api-versions")
    assert r.returncode == 1
    r = broker.run_tool("kafka-broker-api-versions", "--command-config", "/dev/null")
    assert r.returncode == 1
    assert r.stderr.startswith('Missing required argument "[bootstrap-server]"')


def test_create_list_describe(broker):
    r = broker.run_tool("kafka-topics", "--create", "--topic", "test", "--bootstrap-server", broker.bootstrap)
    assert (r.returncode, r.stdout) == (0, "Created topic test.\n"), r.stderr
    r = broker.run_tool("kafka-topics", "--list", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0
    assert "test" in r.stdout.split("\n")
    r = broker.run_tool("kafka-topics", "--describe", "--topic", "test", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stdout + r.stderr
    masked = TOPIC_ID.sub("TopicId: X\t", r.stdout)
    assert masked == ("Topic: test\tTopicId: X\tPartitionCount: 1\tReplicationFactor: 1\t"
                      "Configs: segment.bytes=1073741824\n"
                      "\tTopic: test\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n")


def test_create_existing_topic_fails(broker):
    args = ("--create", "--topic", "dup", "--bootstrap-server", broker.bootstrap)
    assert broker.run_tool("kafka-topics", *args).returncode == 0
    r = broker.run_tool("kafka-topics", *args)
    assert r.returncode == 1
    assert r.stdout == "Error while executing topic command : Topic 'dup' already exists.\n"
    r = broker.run_tool("kafka-topics", *args, "--if-not-exists")
    assert (r.returncode, r.stdout) == (0, "")


def test_bad_partitions_value(broker):
    r = broker.run_tool("kafka-topics", "--create", "--topic", "bad", "--partitions", "abc",
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stdout == "Error while executing topic command : Cannot parse argument 'abc' of option partitions\n"
    r = broker.run_tool("kafka-topics", "--create", "--topic", "bad", "--partitions", "0",
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stdout == "Error while executing topic command : The partitions must be greater than 0\n"


def test_alter_partitions(broker):
    assert broker.run_tool("kafka-topics", "--create", "--topic", "grow",
                           "--bootstrap-server", broker.bootstrap).returncode == 0
    r = broker.run_tool("kafka-topics", "--alter", "--topic", "grow", "--partitions", "2",
                        "--bootstrap-server", broker.bootstrap)
    assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr
    r = broker.run_tool("kafka-topics", "--describe", "--topic", "grow", "--bootstrap-server", broker.bootstrap)
    assert "PartitionCount: 2\t" in r.stdout
    assert "\tTopic: grow\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1\n" in r.stdout
    r = broker.run_tool("kafka-topics", "--alter", "--topic", "missing", "--partitions", "2",
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stdout == "Error while executing topic command : Topic 'missing' does not exist as expected\n"


def test_delete_topic(broker):
    assert broker.run_tool("kafka-topics", "--create", "--topic", "gone",
                           "--bootstrap-server", broker.bootstrap).returncode == 0
    r = broker.run_tool("kafka-topics", "--delete", "--topic", "gone", "--bootstrap-server", broker.bootstrap)
    assert (r.returncode, r.stdout) == (0, "")
    for _ in range(50):
        r = broker.run_tool("kafka-topics", "--list", "--bootstrap-server", broker.bootstrap)
        if "gone" not in r.stdout.split("\n"):
            break
        time.sleep(0.1)
    assert "gone" not in r.stdout.split("\n")


def test_topics_action_required(broker):
    r = broker.run_tool("kafka-topics", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stderr.startswith(
        "Command must include exactly one action: --list, --describe, --create, --alter or --delete")


def test_unreachable_broker_fails_fast(broker):
    start = time.time()
    r = broker.run_tool("kafka-topics", "--list", "--bootstrap-server", "127.0.0.1:1", timeout=60)
    assert r.returncode == 1
    assert r.stdout == "Error while executing topic command : Timed out waiting for a node assignment. Call: listTopics\n"
    assert time.time() - start < 45
    r = broker.run_tool("kafka-broker-api-versions", "--bootstrap-server", "127.0.0.1:1", timeout=60)
    assert r.returncode != 0
    assert r.stderr


def test_configs_describe_and_alter(broker):
    assert broker.run_tool("kafka-topics", "--create", "--topic", "cfg",
                           "--bootstrap-server", broker.bootstrap).returncode == 0
    r = broker.run_tool("kafka-configs", "--alter", "--entity-type", "topics", "--entity-name", "cfg",
                        "--add-config", "retention.ms=1000,cleanup.policy=[delete]",
                        "--bootstrap-server", broker.bootstrap)
    assert (r.returncode, r.stdout) == (0, "Completed updating config for topic cfg.\n"), r.stderr
    r = broker.run_tool("kafka-configs", "--describe", "--entity-type", "topics", "--entity-name", "cfg",
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "Dynamic configs for topic cfg are:"
    assert lines[1].startswith("  cleanup.policy=delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=delete")
    assert lines[2].startswith("  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000")
    r = broker.run_tool("kafka-configs", "--alter", "--topic", "cfg", "--delete-config", "retention.ms",
                        "--bootstrap-server", broker.bootstrap)
    assert (r.returncode, r.stdout) == (0, "Completed updating config for topic cfg.\n"), r.stderr
    r = broker.run_tool("kafka-configs", "--describe", "--topic", "cfg", "--bootstrap-server", broker.bootstrap)
    assert "retention.ms" not in r.stdout


def test_dump_log_of_produced_segment(broker, tmp_path):
    """Produce with kcat, then dump the partition's segment."""
    assert broker.run_tool("kafka-topics", "--create", "--topic", "dumpme",
                           "--bootstrap-server", broker.bootstrap).returncode == 0
    subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", "dumpme", "-p", "0"],
                   input=b"hello\nworld\n!\n", check=True, timeout=30)
    seg = os.path.join(broker.log_dir, "dumpme-0", "%020d.log" % 0)
    r = broker.run_tool("kafka-dump-log", "--files", seg, "--print-data-log")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "Dumping " + seg
    assert lines[1] == "Log starting offset: 0"
    payloads = [l.rsplit(" payload: ", 1)[1] for l in lines if l.startswith("| offset: ")]
    assert payloads == ["hello", "world", "!"]
    assert all(" isvalid: true" in l for l in lines if l.startswith("baseOffset: "))
