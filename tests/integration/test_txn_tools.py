"""The transaction tools (issue 14): kafka-transactions.sh list / describe /
describe-producers / find-hanging / abort with Kafka's columns and messages,
kafka-console-consumer.sh --isolation-level, and kafka-dump-log.sh
--transaction-log-decoder on a real __transaction_state segment."""
import glob
import os
import re
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_txn_partitions import Client  # noqa: E402

ck = pytest.importorskip("confluent_kafka")


HANGING_HEADERS = ["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
                   "LastTimestamp", "Duration(min)"]


def create(broker, topic, partitions=1):
    r = broker.run_tool("kafka-topics", "--create", "--topic", topic, "--partitions", str(partitions),
                        "--bootstrap-server", broker.bootstrap)
    assert r.returncode == 0, r.stderr


def txn(broker, *args):
    return broker.run_tool("kafka-transactions", "--bootstrap-server", broker.bootstrap, *args)


def table(stdout):
    """prettyPrintTable's rows: cells padded and tab-terminated."""
    lines = stdout.splitlines()
    assert lines, stdout
    for ln in lines:
        assert ln.endswith("\t"), repr(ln)
    return [[c.strip() for c in ln.split("\t")[:-1]] for ln in lines]


def open_transaction(broker, tid, topic, values):
    p = ck.Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": tid})
    p.init_transactions(20)
    p.begin_transaction()
    for v in values:
        p.produce(topic, v, partition=0)
    p.flush(20)
    return p


def test_list_describe_and_describe_producers(broker):
    create(broker, "t")
    p = open_transaction(broker, "tool-tx", "t", [b"a", b"b", b"c"])
    r = txn(broker, "list")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
    mine = [row for row in rows[1:] if row[0] == "tool-tx"]
    assert len(mine) == 1 and mine[0][1] == "1" and mine[0][3] == "Ongoing", rows
    pid = mine[0][2]

    r = txn(broker, "describe", "--transactional-id", "tool-tx")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                       "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                       "TopicPartitions"]
    row = rows[1]
    assert row[:6] == ["1", "tool-tx", pid, "0", "Ongoing", "60000"], row
    assert abs(int(row[6]) - time.time() * 1000) < 60000 and int(row[7]) >= 0, row
    assert row[8] == "t-0", row

    r = txn(broker, "describe-producers", "--topic", "t", "--partition", "0")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
                       "CurrentTransactionStartOffset"]
    assert len(rows) == 2 and rows[1][0] == pid and rows[1][1] == "0" and rows[1][3] == "2", rows
    assert rows[1][5] == "0", rows
    r2 = txn(broker, "describe-producers", "--topic", "t", "--partition", "0", "--broker-id", "1")
    assert r2.returncode == 0 and table(r2.stdout)[1][0] == pid, r2.stderr

    p.commit_transaction(20)
    rows = table(txn(broker, "describe", "--transactional-id", "tool-tx").stdout)
    # Kafka keeps the start time of the completed transaction
    assert rows[1][4:6] == ["CompleteCommit", "60000"] and rows[1][6] == row[6] and rows[1][8] == "", rows
    rows = table(txn(broker, "describe-producers", "--topic", "t", "--partition", "0").stdout)
    assert rows[1][5] == "None", rows

    r = txn(broker, "describe", "--transactional-id", "nope")
    assert r.returncode == 1
    assert r.stderr == ("Failed to describe transaction state of transactional-id `nope`: DescribeTransactions "
                        "request for transactionalId `nope` failed because the ID could not be found. Enable debug "
                        "logging for additional detail.\n")
    # argparse4j's refusals
    r = txn(broker, "describe")
    assert r.returncode == 1 and "error: argument --transactional-id is required" in r.stderr, r.stderr


def test_find_hanging_and_abort(broker):
    create(broker, "h")
    c = Client(broker)
    # a transactional batch no coordinator knows about: a hanging transaction
    assert c.produce("h", [b"x", b"y"], pid=9000, epoch=3, seq=0) == (0, 0)
    time.sleep(0.05)
    r = txn(broker, "find-hanging", "--topic", "h", "--max-transaction-timeout", "0")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == HANGING_HEADERS
    assert [row[:6] for row in rows[1:]] == [["h", "0", "9000", "3", "-1", "0"]], rows
    assert rows[1][7] == "0"
    # within the default 15 minutes nothing is hanging yet
    assert table(txn(broker, "find-hanging", "--broker-id", "1").stdout) == [rows[0]]

    r = txn(broker, "find-hanging")
    assert r.returncode == 1
    assert r.stderr == ("The `find-hanging` command requires either --topic or --broker-id to limit the scope of the "
                        "search\n")
    r = txn(broker, "find-hanging", "--broker-id", "1", "--partition", "0")
    assert (r.returncode, r.stderr) == (1, "The --partition argument requires --topic to be provided\n")

    r = txn(broker, "abort", "--topic", "h", "--partition", "0")
    assert r.returncode == 1
    assert r.stderr.startswith("The transaction to abort must be identified either with --start-offset")
    r = txn(broker, "abort", "--topic", "h", "--partition", "0", "--start-offset", "7")
    assert (r.returncode, r.stderr) == (1, "Could not find any open transactions starting at offset 7 on partition "
                                           "h-0\n")
    r = txn(broker, "abort", "--topic", "h", "--partition", "0", "--producer-id", "9000")
    assert (r.returncode, r.stderr) == (1, "Missing required argument --producer-epoch\n")

    r = txn(broker, "abort", "--topic", "h", "--partition", "0", "--start-offset", "0")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    rows = table(txn(broker, "describe-producers", "--topic", "h", "--partition", "0").stdout)
    assert rows[1][0] == "9000" and rows[1][5] == "None", rows
    assert table(txn(broker, "find-hanging", "--topic", "h", "--max-transaction-timeout", "0").stdout) == [
        HANGING_HEADERS]
    # read_committed consumers now get past the aborted records
    f = c.fetch("h", 0, read_committed=True)
    assert f["lso"] == 3 and f["aborted"] == [(9000, 0)], f

    # an abort of a producer whose epoch is older than the partition's: Kafka's message
    assert c.produce("h", [b"z"], pid=9100, epoch=5, seq=0) == (0, 3)
    r = txn(broker, "abort", "--topic", "h", "--partition", "0", "--producer-id", "9100", "--producer-epoch", "4",
            "--coordinator-epoch", "0")
    assert r.returncode == 1
    assert r.stderr == ("Failed to abort transaction AbortTransactionSpec(topicPartition=h-0, producerId=9100, "
                        "producerEpoch=4, coordinatorEpoch=0): WriteTxnMarkers request with AbortTransactionSpec("
                        "topicPartition=h-0, producerId=9100, producerEpoch=4, coordinatorEpoch=0) failed due an "
                        "invalid producer epoch. Enable debug logging for additional detail.\n"), r.stderr
    r = txn(broker, "abort", "--topic", "h", "--partition", "0", "--producer-id", "9100", "--producer-epoch", "5",
            "--coordinator-epoch", "-1")
    assert r.returncode == 0, r.stderr


def test_console_consumer_isolation_level(broker):
    create(broker, "iso")
    p = open_transaction(broker, "iso-tx", "iso", [b"c1", b"c2"])
    p.commit_transaction(20)
    p.begin_transaction()
    p.produce("iso", b"a1", partition=0)
    p.produce("iso", b"a2", partition=0)
    p.flush(20)
    p.abort_transaction(20)
    p.begin_transaction()
    p.produce("iso", b"c3", partition=0)
    p.commit_transaction(20)

    def consume(*extra):
        r = broker.run_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", "iso",
                            "--from-beginning", "--timeout-ms", "4000", *extra)
        return r.stdout.split()

    assert consume("--isolation-level", "read_committed") == ["c1", "c2", "c3"]
    assert consume("--isolation-level", "read_uncommitted") == ["c1", "c2", "a1", "a2", "c3"]
    assert consume() == ["c1", "c2", "a1", "a2", "c3"]  # Kafka's default: read_uncommitted


def test_dump_log_transaction_log_decoder(broker):
    create(broker, "dl", 2)
    p = ck.Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "dump-tx"})
    p.init_transactions(20)
    p.begin_transaction()
    p.produce("dl", b"v", partition=0)
    p.produce("dl", b"v", partition=1)
    p.flush(20)
    p.commit_transaction(20)
    pid = None
    segs = [s for s in glob.glob(os.path.join(broker.log_dir, "__transaction_state-*", "*.log")) if os.path.getsize(s)]
    assert segs
    outs = []
    for seg in segs:
        r = broker.run_tool("kafka-dump-log", "--files", seg, "--transaction-log-decoder")
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    text = "".join(outs)
    payloads = re.findall(r"key: transaction_metadata::transactionalId=dump-tx payload: (\S+)", text)
    assert payloads, text
    states = []
    for pl in payloads:
        m = re.fullmatch(r"producerId:(\d+),producerEpoch:(\d+),state=(\w+),partitions=\[(.*)\],"
                         r"txnLastUpdateTimestamp=(\d+),txnTimeoutMs=60000", pl)
        assert m, pl
        pid = pid or m.group(1)
        assert m.group(1) == pid
        states.append((m.group(3), m.group(4)))
    # Kafka's transitions: Empty, Ongoing (partitions added), PrepareCommit, CompleteCommit
    assert states[0] == ("Empty", "")
    assert ("Ongoing", "dl-0,dl-1") in states or ("Ongoing", "dl-1,dl-0") in states, states
    assert ("PrepareCommit", "dl-0,dl-1") in states or ("PrepareCommit", "dl-1,dl-0") in states, states
    assert states[-1] == ("CompleteCommit", ""), states
    # record metadata precedes the decoded key as Kafka prints it
    assert re.search(r"\| offset: \d+ CreateTime: \d+ keySize: \d+ valueSize: \d+ sequence: -1 headerKeys: \[\] "
                     r"key: transaction_metadata::transactionalId=dump-tx payload: ", text), text


def test_no_broker_answers(broker):
    from conftest import free_port
    dead = f"127.0.0.1:{free_port()}"
    r = broker.run_tool("kafka-transactions", "--bootstrap-server", dead, "list")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("Failed to list transactions: Timed out waiting for a node assignment. Call: "
                        "listTransactions(api=METADATA). Enable debug logging for additional detail.\n")
    r = broker.run_tool("kafka-transactions", "--bootstrap-server", dead, "describe-producers", "--topic", "t",
                        "--partition", "0")
    assert r.stderr == ("Failed to describe producers for partition t-0 on leader: Timed out waiting for a node "
                        "assignment. Call: describeProducers(api=METADATA). Enable debug logging for additional "
                        "detail.\n")


def last_error(stderr):
    """argparse4j's error line, unwrapped (it wraps and justifies it)."""
    text = " ".join(stderr.split())
    return text[text.rindex("kafka-transactions.sh: error:"):]


def test_help_and_argument_errors(broker):
    r = broker.run_tool("kafka-transactions", "--help")
    assert r.returncode == 1  # argparse4j's help ends in Exit.exit(1) in TransactionsCommand
    assert r.stdout.startswith("usage: kafka-transactions.sh [-h] [-v] [--command-config FILE]\n"
                               "                             --bootstrap-server host:port COMMAND ...\n"), r.stdout
    assert "\ncommands:\n  COMMAND\n    list                 list transactions\n" in r.stdout, r.stdout
    r = broker.run_tool("kafka-transactions", "--version")
    assert (r.returncode, r.stdout) == (0, "3.6.1\n")
    r = txn(broker, "abort", "--topic", "t", "--partition", "0", "--producer-epoch", "70000")
    assert r.returncode == 1
    assert last_error(r.stderr) == ("kafka-transactions.sh: error: argument --producer-epoch: could not convert "
                                    "'70000' to Short (Value out of range. Value:\"70000\" Radix:10)"), r.stderr
    r = txn(broker, "describe-producers", "--topic", "t", "--partition", "x")
    assert last_error(r.stderr) == ("kafka-transactions.sh: error: argument --partition: could not convert 'x' to "
                                    "Integer (For input string: \"x\")"), r.stderr
    r = txn(broker, "abort", "--topic", "t", "--partition", "0", "--start-offset", "1e3")
    assert last_error(r.stderr) == ("kafka-transactions.sh: error: argument --start-offset: could not convert '1e3' "
                                    "to Long (For input string: \"1e3\")"), r.stderr
    r = txn(broker)
    assert (r.returncode, r.stderr.splitlines()[-1]) == (1, "kafka-transactions.sh: error: too few arguments")
