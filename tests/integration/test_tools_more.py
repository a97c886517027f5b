"""Black-box tests of kafka-delete-records, kafka-log-dirs, kafka-metadata-quorum,
kafka-cluster and kafka-features against our broker (the `broker` fixture).

Expected texts are Kafka 3.6.1's (DeleteRecordsCommand, LogDirsCommand,
MetadataQuorumCommand, ClusterTool, FeatureCommand and argparse4j 0.7.0).
"""
import json
import os
import re


def run(broker, tool, *args, **kw):
    return broker.run_tool(tool, *args, **kw)


def produce(broker, topic, n):
    r = run(broker, "kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
            input="".join("m%d\n" % i for i in range(n)))
    assert r.returncode == 0, r.stderr


def create_topic(broker, topic, partitions=1):
    r = run(broker, "kafka-topics", "--create", "--topic", topic, "--partitions", str(partitions),
            "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- kafka-delete-records -------------------------------------------------

def write_offsets(tmp_path, entries, version=1):
    p = tmp_path / "offsets.json"
    doc = {"partitions": [{"topic": t, "partition": pa, "offset": o} for t, pa, o in entries]}
    if version is not None:
        doc["version"] = version
    p.write_text(json.dumps(doc))
    return str(p)


def test_delete_records_moves_low_watermark(broker, tmp_path):
    create_topic(broker, "dr")
    produce(broker, "dr", 5)
    f = write_offsets(tmp_path, [("dr", 0, 3)])
    r = run(broker, "kafka-delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", f)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("Executing records delete operation\n"
                        "Records delete operation completed:\n"
                        "partition: dr-0\tlow_watermark: 3\n")
    r = run(broker, "kafka-get-offsets", "--bootstrap-server", broker.bootstrap, "--topic", "dr", "--time", "-2")
    assert r.stdout == "dr:0:3\n"


def test_delete_records_offset_beyond_end(broker, tmp_path):
    create_topic(broker, "dr-far")
    produce(broker, "dr-far", 2)
    f = write_offsets(tmp_path, [("dr-far", 0, 100)])
    r = run(broker, "kafka-delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", f)
    assert r.returncode == 0
    assert r.stdout.endswith("partition: dr-far-0\terror: org.apache.kafka.common.errors.OffsetOutOfRangeException: "
                             "The requested offset is not within the range of offsets maintained by the server.\n")


def test_delete_records_unknown_topic(broker, tmp_path):
    f = write_offsets(tmp_path, [("no-such-topic", 0, 1)])
    r = run(broker, "kafka-delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", f)
    assert r.returncode == 0
    assert r.stdout.endswith(
        "partition: no-such-topic-0\terror: org.apache.kafka.common.errors.UnknownTopicOrPartitionException: "
        "Failed to fetch metadata for partition no-such-topic-0 because metadata for topic `no-such-topic` "
        "could not be found\n")


def test_delete_records_minus_one_means_high_watermark(broker, tmp_path):
    create_topic(broker, "dr-hw")
    produce(broker, "dr-hw", 4)
    f = write_offsets(tmp_path, [("dr-hw", 0, -1)])
    r = run(broker, "kafka-delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", f)
    assert r.stdout.endswith("partition: dr-hw-0\tlow_watermark: 4\n"), r.stdout


def test_delete_records_argument_errors(broker, tmp_path):
    r = run(broker, "kafka-delete-records", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stderr.startswith('Missing required argument "[offset-json-file]"')
    f = write_offsets(tmp_path, [("t", 0, 1), ("t", 0, 2)])
    r = run(broker, "kafka-delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", f)
    assert r.returncode == 1 and r.stdout == ""
    assert "Offset json file contains duplicate topic partitions: t-0" in r.stderr
    f = write_offsets(tmp_path, [("t", 0, 1)], version=2)
    r = run(broker, "kafka-delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", f)
    assert r.returncode == 1 and "Not supported version field value 2" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    r = run(broker, "kafka-delete-records", "--bootstrap-server", broker.bootstrap, "--offset-json-file", str(bad))
    assert r.returncode == 1 and "The input string is not a valid JSON" in r.stderr


# ---- kafka-log-dirs -------------------------------------------------------

def test_log_dirs_describe(broker):
    create_topic(broker, "ld", partitions=2)
    produce(broker, "ld", 3)
    r = run(broker, "kafka-log-dirs", "--describe", "--bootstrap-server", broker.bootstrap, "--topic-list", "ld")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "Querying brokers for log directories information"
    assert lines[1] == "Received log directory information from brokers 1"
    assert lines[3] == ""
    # Key order is Java's HashMap order, fixed for these key sets.
    assert re.fullmatch(r'\{"brokers":\[\{"broker":1,"logDirs":\[\{"partitions":\[.*\],"error":null,'
                        r'"logDir":"[^"]+"\}\]\}\],"version":1\}', lines[2]), lines[2]
    doc = json.loads(lines[2])
    parts = doc["brokers"][0]["logDirs"][0]["partitions"]
    assert sorted(p["partition"] for p in parts) == ["ld-0", "ld-1"]
    for p in parts:
        assert list(p) == ["partition", "size", "offsetLag", "isFuture"]
        assert p["offsetLag"] == 0 and p["isFuture"] is False
    assert sum(p["size"] for p in parts) > 0
    assert os.path.realpath(doc["brokers"][0]["logDirs"][0]["logDir"]) == os.path.realpath(broker.log_dir)


def test_log_dirs_unknown_broker(broker):
    r = run(broker, "kafka-log-dirs", "--describe", "--bootstrap-server", broker.bootstrap, "--broker-list", "1,7")
    assert r.returncode == 1
    assert r.stderr == ("ERROR: The given brokers do not exist from --broker-list: 7. "
                        "Current existent brokers: 1\n")


def test_log_dirs_requires_describe(broker):
    r = run(broker, "kafka-log-dirs", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stderr.startswith('Missing required argument "[describe]"')


# ---- kafka-metadata-quorum ------------------------------------------------

def test_metadata_quorum_status(broker):
    r = run(broker, "kafka-metadata-quorum", "--bootstrap-server", broker.bootstrap, "describe", "--status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert re.fullmatch(r"ClusterId:              [A-Za-z0-9_-]{22}", lines[0])
    assert lines[1] == "LeaderId:               1"
    assert re.fullmatch(r"LeaderEpoch:            \d+", lines[2])
    assert re.fullmatch(r"HighWatermark:          \d+", lines[3])
    assert lines[4] == "MaxFollowerLag:         0"
    assert lines[5] == "MaxFollowerLagTimeMs:   0"
    assert lines[6] == "CurrentVoters:          [1]"
    assert lines[7] == "CurrentObservers:       []"
    cid = run(broker, "kafka-cluster", "cluster-id", "--bootstrap-server", broker.bootstrap)
    assert cid.stdout == "Cluster ID: %s\n" % lines[0].split()[1]


def test_metadata_quorum_replication(broker):
    r = run(broker, "kafka-metadata-quorum", "--bootstrap-server", broker.bootstrap, "describe", "--replication")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.rstrip("\n").split("\n")
    assert lines[0].split("\t")[:-1] == [h.ljust(len(h)) for h in
                                         ["NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                                          "LastCaughtUpTimestamp", "Status"]]
    row = [c.strip() for c in lines[1].split("\t")]
    assert row[0] == "1" and row[2] == "0" and row[5] == "Leader"
    r = run(broker, "kafka-metadata-quorum", "--bootstrap-server", broker.bootstrap, "describe", "--replication",
            "--human-readable")
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+ ms ago", r.stdout)


def test_metadata_quorum_argument_errors(broker):
    q = "kafka-metadata-quorum"
    r = run(broker, q, "--bootstrap-server", broker.bootstrap, "describe")
    assert (r.returncode, r.stderr) == (1, "One of --status or --replication must be specified with describe "
                                           "sub-command\n")
    r = run(broker, q, "--bootstrap-server", broker.bootstrap, "describe", "--status", "--replication")
    assert r.stderr == "Only one of --status or --replication should be specified with describe sub-command\n"
    r = run(broker, q, "--bootstrap-server", broker.bootstrap, "describe", "--status", "--human-readable")
    assert r.stderr == "The option --human-readable is only supported along with --replication\n"
    r = run(broker, q, "describe", "--status")
    assert r.returncode == 1
    assert r.stderr.startswith("usage: kafka-metadata-quorum [-h] --bootstrap-server BOOTSTRAP_SERVER\n")
    assert r.stderr.endswith("kafka-metadata-quorum: error: argument --bootstrap-server is required\n")
    r = run(broker, q, "--bootstrap-server", broker.bootstrap)
    assert r.stderr.endswith("kafka-metadata-quorum: error: too few arguments\n")
    r = run(broker, q, "--bootstrap-server", broker.bootstrap, "describe", "--stat")  # unique prefix
    assert r.returncode == 0, r.stderr


# ---- kafka-cluster --------------------------------------------------------

def test_cluster_id(broker):
    r = run(broker, "kafka-cluster", "cluster-id", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0
    assert re.fullmatch(r"Cluster ID: [A-Za-z0-9_-]{22}\n", r.stdout)


def test_cluster_argument_errors(broker):
    r = run(broker, "kafka-cluster", "cluster-id")
    assert (r.returncode, r.stderr) == (1, "Please specify --bootstrap-server.\n")
    r = run(broker, "kafka-cluster", "unregister", "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 1
    assert r.stderr.endswith("kafka-cluster: error: argument --id/-i is required\n")
    r = run(broker, "kafka-cluster", "unregister", "-b", broker.bootstrap, "--id", "x")
    # argparse4j wraps and justifies the error line at 75 columns.
    assert " ".join(r.stderr.split()).endswith("kafka-cluster: error: argument --id/-i: could not convert 'x' "
                                               "to Integer (For input string: \"x\")")


def test_cluster_unregister_unknown_broker(broker):
    r = run(broker, "kafka-cluster", "unregister", "--bootstrap-server", broker.bootstrap, "--id", "42")
    # Kafka 3.6.1's controller answers BROKER_ID_NOT_REGISTERED for an unknown id.
    assert r.returncode == 1
    assert "BrokerIdNotRegisteredException" in r.stderr


# ---- kafka-features -------------------------------------------------------

def test_features_describe(broker):
    r = run(broker, "kafka-features", "--bootstrap-server", broker.bootstrap, "describe")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"Feature: metadata\.version\tSupportedMinVersion: 3\.0-IV1\tSupportedMaxVersion: 3\.6-IV2\t"
                        r"FinalizedVersionLevel: 3\.6-IV2\tEpoch: \d+\n", r.stdout), r.stdout


def test_features_upgrade_dry_run(broker):
    r = run(broker, "kafka-features", "--bootstrap-server", broker.bootstrap, "upgrade", "--metadata", "3.6-IV2",
            "--dry-run")
    assert (r.returncode, r.stdout) == (0, "metadata.version can be upgraded to 14.\n"), r.stderr


def test_features_argument_errors(broker):
    f = "kafka-features"
    r = run(broker, f, "--bootstrap-server", broker.bootstrap, "upgrade")
    assert (r.returncode, r.stderr) == (1, "You must specify at least one feature to upgrade\n")
    r = run(broker, f, "--bootstrap-server", broker.bootstrap, "upgrade", "--metadata", "9.9")
    assert r.stderr == ("Unsupported metadata version 9.9. Supported metadata versions are 3.3-IV0, 3.3-IV1, "
                        "3.3-IV2, 3.3-IV3, 3.4-IV0, 3.5-IV0, 3.5-IV1, 3.5-IV2, 3.6-IV0, 3.6-IV1, 3.6-IV2\n")
    r = run(broker, f, "--bootstrap-server", broker.bootstrap, "upgrade", "--feature", "foo")
    assert r.stderr == "Can't parse feature=level string foo: equals sign not found.\n"
    r = run(broker, f, "--bootstrap-server", broker.bootstrap, "upgrade", "--feature", "a=x")
    assert r.stderr == "Can't parse feature=level string a=x: unable to parse x as a short.\n"
    r = run(broker, f, "--bootstrap-server", broker.bootstrap, "upgrade", "--feature", "a=1", "--feature", "a=2")
    assert r.stderr == "Feature a was specified more than once.\n"
    r = run(broker, f, "describe")
    assert r.stderr.endswith("kafka-features: error: argument --bootstrap-server is required\n")
    r = run(broker, f, "--bootstrap-server", broker.bootstrap, "frobnicate")
    assert " ".join(r.stderr.split()).endswith(
        "kafka-features: error: invalid choice: 'frobnicate' (choose from 'describe', 'upgrade', 'downgrade', "
        "'disable')")


def test_features_help(broker):
    r = run(broker, "kafka-features", "--help")
    assert r.returncode == 1  # argparse4j 0.7.0's parseArgsOrFail exits 1 after help
    assert r.stdout.startswith("usage: kafka-features [-h] --bootstrap-server BOOTSTRAP_SERVER\n")
    assert "{describe,upgrade,downgrade,disable}" in r.stdout
