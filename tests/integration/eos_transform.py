"""A consume-transform-produce loop with exactly-once semantics (confluent-kafka), run as a child
process by test_transactions_eos.py so the test can kill -9 it mid-transaction.

    eos_transform.py <bootstrap> <transactional.id> <group> <input> <output> <progress> <stop> <abort every>

Reads <input> with isolation.level=read_committed in group <group>, and for each batch of records
begins a transaction, writes "out-<n>" for every "in-<n>" to the same partition of <output>, adds
the consumed offsets to the transaction (send_offsets_to_transaction) and commits; every
<abort every>-th transaction is flushed then aborted instead and the consumer rewound to the committed offsets,
so its records are written again in a later transaction. Errors are handled as confluent-kafka
documents: retriable -> retry, txn_requires_abort -> abort and rewind, anything else is fatal
(exit 3). Appends one line per step to <progress> (flushed at once):
    B <txn>            transaction begun, records being produced
    C <txn> <records>  commit_transaction called
    K <txn> <records>  committed
    A <txn> <records> <acked>  aborted (<acked>: how many of its records the broker acknowledged,
                               so read_uncommitted readers must see at least those)
    R <partition>:<offset>:<error> ...  the committed offsets read back after an abort
    H <point>          held at <point> (see below) until the test releases the loop
    S <partition>:<offset><<expected> <n>  n records delivered below the position the loop set, dropped
Each line ends with @<unix time>. Runs until the file <stop> exists. Exit 0 then.

The test places its faults by holding the loop: while the file <progress>.hold names a point
("produced": a transaction's records handed to the producer, before send_offsets_to_transaction;
"commit": just before commit_transaction), the loop notes "H <point>" on reaching it and waits
there (at most 60 s) until the file is removed or names another point.

EOS_CLIENT_DEBUG=<librdkafka debug contexts> (e.g. topic,fetch) turns on the consumer's debug log,
written to the loop's stderr (kept with the progress file when SAMSA_KEEP_DIRS is set).
"""
import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

bootstrap, tid, group, src, dst, progress_path, stop_path, abort_every = sys.argv[1:9]
abort_every = int(abort_every)
progress = open(progress_path, "a", buffering=1)
hold_path = progress_path + ".hold"


def note(line):
    progress.write(f"{line} @{time.time():.3f}\n")  # the time last, for reading a failure against the broker logs
    progress.flush()
    os.fsync(progress.fileno())


consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 500, **({"debug": os.environ["EOS_CLIENT_DEBUG"]}
                                                      if os.environ.get("EOS_CLIENT_DEBUG") else {})})
producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": 20000,
                     "linger.ms": 5, "message.timeout.ms": 20000})
producer.init_transactions(60)
consumer.subscribe([src])


# partition -> the next input offset this loop expects there (set by a rewind, then by each record
# transformed). librdkafka 2.0.2 can move a partition back to a logical offset it was asked for
# earlier, after a later seek: a ListOffsets answer outdated by a seek re-arms its offset-query timer,
# which fires 500 ms later with the old query (BEGINNING) even though the partition was seeked to a
# committed offset meanwhile ("outdated offset response: (re)starting offset query timer" in its
# debug log). A consumer that seeks back to offset 0 would transform records again in a new
# transaction; like any application that keeps its own positions, the loop drops records below the
# position it set. It never drops anything at or above it, so offsets read back wrong still show.
expected = {}


def rewind():
    """Back to the committed offsets (what the aborted transaction consumed is read again)."""
    parts = consumer.assignment()
    if not parts:
        return
    deadline = time.time() + 60
    while True:
        got = consumer.committed(parts, timeout=30)
        note("R " + " ".join(f"{tp.partition}:{tp.offset}:{tp.error}" for tp in got))
        if not any(tp.error for tp in got):
            break
        # an error for a partition is not "nothing committed": asking again beats reading it all twice
        if time.time() > deadline:
            print(f"fatal: committed offsets unreadable: {got}", file=sys.stderr, flush=True)
            os._exit(3)
        time.sleep(0.2)
    for tp in got:
        consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
        expected[tp.partition] = tp.offset if tp.offset >= 0 else None


def fresh(msgs):
    """The records at or after the positions this loop set; notes what librdkafka delivered below them."""
    def stale(m):
        return expected.get(m.partition()) is not None and m.offset() < expected[m.partition()]
    dropped = [m for m in msgs if stale(m)]
    if dropped:
        note(f"S {dropped[0].partition()}:{dropped[0].offset()}<{expected[dropped[0].partition()]} {len(dropped)}")
    return [m for m in msgs if not stale(m)]


def held_at(point):
    """Waits while the test holds the loop at this point (see the module's text)."""
    def holding():
        try:
            with open(hold_path) as f:
                return f.read().strip() == point
        except FileNotFoundError:
            return False
    if not holding():
        return
    note(f"H {point}")
    deadline = time.time() + 60
    while holding() and time.time() < deadline:
        time.sleep(0.001)


def retry(what, fn):
    """Calls fn until it succeeds or fails non-retriably (re-raised); bounded by 120 s."""
    deadline = time.time() + 120
    while True:
        try:
            return fn()
        except KafkaException as e:
            err = e.args[0]
            if not err.retriable() or time.time() > deadline:
                raise
            time.sleep(0.1)


acked = {}  # transaction -> records the broker acknowledged


def on_delivery(err, msg, txn_no):
    if err is None:
        acked[txn_no] = acked.get(txn_no, 0) + 1


def aborted(txn_no, records):
    """Notes the abort once every delivery report of the transaction was served (abort_transaction
    has waited for the in-flight ones and purged the rest)."""
    for _ in range(100):
        if producer.poll(0) == 0:
            break
    note(f"A {txn_no} {records} {acked.pop(txn_no, 0)}")


txn = 0
while not os.path.exists(stop_path):
    msgs = fresh([m for m in consumer.consume(num_messages=300, timeout=0.5) if not m.error()])
    if not msgs:
        continue
    txn += 1
    next_offsets = {}
    try:
        producer.begin_transaction()
        note(f"B {txn}")
        for m in msgs:
            value = m.value().decode()
            assert value.startswith("in-"), value
            while True:
                try:
                    producer.produce(dst, value=("out-" + value[3:]).encode(), key=m.key(), partition=m.partition(),
                                     on_delivery=lambda err, msg, t=txn: on_delivery(err, msg, t))
                    break
                except BufferError:
                    producer.poll(0.05)
            next_offsets[(m.topic(), m.partition())] = m.offset() + 1
            expected[m.partition()] = m.offset() + 1
        held_at("produced")
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(next_offsets.items())]
        retry("send_offsets", lambda: producer.send_offsets_to_transaction(
            offsets, consumer.consumer_group_metadata(), 30))
        if abort_every > 0 and txn % abort_every == 0:
            # flushed first, so the aborted records are in the log (abort_transaction purges what
            # the client has not sent yet) and read_uncommitted readers must see them
            if producer.flush(30) != 0:
                raise RuntimeError("flush before abort timed out")
            retry("abort", lambda: producer.abort_transaction(30))
            aborted(txn, len(msgs))
            rewind()
            continue
        note(f"C {txn} {len(msgs)}")
        held_at("commit")
        retry("commit", lambda: producer.commit_transaction(30))
        producer.poll(0)
        acked.pop(txn, None)
        note(f"K {txn} {len(msgs)}")
    except KafkaException as e:
        err = e.args[0]
        if err.txn_requires_abort():
            retry("abort", lambda: producer.abort_transaction(30))
            aborted(txn, len(msgs))
            rewind()
            continue
        print(f"fatal: {err} (retriable={err.retriable()} fatal={err.fatal()})", file=sys.stderr, flush=True)
        os._exit(3)

consumer.close()
producer.flush(10)
sys.exit(0)
