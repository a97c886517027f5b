"""The history checker (history.py) on synthetic histories: ones that must pass
and, for each kind of violation, one that must fail with that kind. No broker."""
import pytest

from history import KINDS, Checker, History, check


def base():
    """Two producers, two partitions, everything acknowledged and read in place."""
    h = History()
    for i in range(4):
        h.send("a", f"a{i}", partition=i % 2)
        h.send("b", f"b{i}", partition=i % 2)
    # partition 0: a0 b0 a2 b2; partition 1: a1 b1 a3 b3
    for p in (0, 1):
        for j, v in enumerate([f"a{p}", f"b{p}", f"a{p + 2}", f"b{p + 2}"]):
            h.ack(v, p, j)
    return h


def full_read(h):
    return sorted((a[0], a[1], v) for v, a in h.acks.items())


def kinds(report):
    return set(report.counts())


def test_a_clean_history_passes():
    h = base()
    h.read(full_read(h))
    h.read(full_read(h))
    r = check(h)
    assert r.ok, r.summary()
    assert r.stats["records checked"] == 16 and r.stats["reads"] == 2
    assert "history OK" in r.summary()


def test_interleaved_partitions_and_unknown_outcomes_pass():
    h = base()
    # Partitions interleaved as a consumer returns them; an unacknowledged value that did reach
    # the log (its answer was lost), one that failed and is absent, one never answered.
    recs = [(1, 0, "a1"), (0, 0, "a0"), (0, 1, "b0"), (1, 1, "b1"), (0, 2, "a2"), (1, 2, "a3"),
            (0, 3, "b2"), (1, 3, "b3")]
    h.send("a", "a4", partition=0)
    h.fail("a4", "timed out")
    h.send("a", "a5", partition=0)
    h.fail("a5", "timed out")
    h.send("b", "b4", partition=1)
    recs.append((0, 4, "a4"))
    h.read(recs)
    assert check(h).ok, check(h).summary()
    assert h.unknown_outcome() == ["b4"]


def test_acknowledgements_after_a_read_started_need_not_be_in_it():
    h = base()
    h.send("a", "late", partition=0)
    snapshot = len(h.ack_order)
    h.ack("late", 0, 4)
    h.read([r for r in full_read(h) if r[2] != "late"], must_have=snapshot)
    assert check(h).ok, check(h).summary()
    h.read(full_read(h))  # a later read must have it
    assert check(h).ok


def test_a_later_read_may_reach_further():
    h = base()
    first = [r for r in full_read(h) if r[1] < 2]
    h.read(first, must_have=0)
    h.read(full_read(h))
    assert check(h).ok, check(h).summary()


@pytest.mark.parametrize("kind", KINDS)
def test_each_violation_is_caught(kind):
    h = base()
    recs = full_read(h)
    if kind == "unknown-value":
        recs.append((0, 4, "ghost"))
    elif kind == "wrong-partition":
        h.send("a", "misplaced", partition=0)
        recs.append((1, 4, "misplaced"))
    elif kind == "duplicate-read":
        h.send("b", "twice", partition=1)
        recs += [(1, 4, "twice"), (1, 5, "twice")]
    elif kind == "offset-order":
        recs = [(0, 1, "b0"), (0, 0, "a0")] + [r for r in recs if r[1] > 1 or r[0] == 1]
        h.acks["a0"] = (0, 0, 0.0)
    elif kind == "offset-conflict":
        h.read(recs)
        h.send("a", "x", partition=0)
        h.send("a", "y", partition=0)
        h.read(recs + [(0, 4, "x")])
        recs = recs + [(0, 4, "y")]
    elif kind == "value-moved":
        h.send("a", "x", partition=0)
        h.read(recs + [(0, 4, "x")])
        recs = recs + [(0, 5, "x")]
    elif kind == "lost-read":
        h.send("a", "x", partition=0)
        h.send("a", "y", partition=0)
        h.read(recs + [(0, 4, "x"), (0, 5, "y")])
        recs = recs + [(0, 5, "y")]  # x (never acknowledged, but read once) vanished below 5
    elif kind == "lost-acked":
        recs = [r for r in recs if r[2] != "b3"]
    elif kind == "ack-offset-mismatch":
        h.acks["b3"] = (1, 7, 0.0)
        recs = recs  # read at 1/3
    elif kind == "ack-conflict":
        h.send("b", "other", partition=0)
        h.ack("other", 0, 2)  # 0/2 is a2's
    elif kind == "order":
        # b's values on partition 1 read in the wrong order (offsets swapped)
        recs = [r for r in recs if r[0] == 0] + [(1, 0, "a1"), (1, 1, "b3"), (1, 2, "a3"), (1, 3, "b1")]
        h.acks["b3"] = (1, 1, 0.0)
        h.acks["b1"] = (1, 3, 0.0)
    h.read(recs)
    r = check(h)
    assert kind in kinds(r), r.summary()
    # The report says what went wrong, clearly enough to act on.
    text = r.summary()
    assert "FAILED" in text and kind in text
    with pytest.raises(AssertionError, match=kind):
        r.assert_ok("cycle 3, fault zombie")


def test_exactly_the_expected_kinds():
    """A lost acknowledged value is reported once, as lost-acked, not as other noise."""
    h = base()
    h.read([r for r in full_read(h) if r[2] != "a2"])
    r = check(h)
    assert r.counts() == {"lost-acked": 1}, r.summary()
    assert "'a2' (producer a #2, sent to partition 0, acknowledged at 0/2) not read" in r.summary()


def test_a_zombie_acknowledgement_is_caught():
    """A deposed leader acknowledges a value at an offset the new leader gave to another: the
    read shows the new leader's value, the zombie's value is lost."""
    h = base()
    h.send("a", "zombie", partition=0)
    h.send("b", "fresh", partition=0)
    h.ack("zombie", 0, 4)
    h.ack("fresh", 0, 4)
    h.read([r for r in full_read(h) if r[2] != "zombie"])
    r = check(h)
    assert r.counts() == {"ack-conflict": 1, "lost-acked": 1}, r.summary()


def test_incremental_checking_matches_the_whole():
    h = base()
    c = Checker(h)
    assert c.check_acks() == []
    assert c.check_read(h.read(full_read(h))) == []
    h.send("a", "x", partition=1)
    h.ack("x", 1, 4)
    assert c.check_acks() == []
    new = c.check_read(h.read(full_read(h)[:-1]))  # drops the last of partition 1: x
    assert [v.kind for v in new] == ["lost-acked"], new
    assert check(h).counts() == c.report().counts()


def test_the_report_is_bounded():
    h = History()
    for i in range(1000):
        h.send("a", f"v{i}", partition=0)
        h.ack(f"v{i}", 0, i)
    h.read([])
    r = check(h)
    assert r.counts() == {"lost-acked": 1000}
    assert len(r.summary(first=5).splitlines()) <= 8


def test_values_must_be_unique():
    h = History()
    h.send("a", "v", 0)
    with pytest.raises(ValueError):
        h.send("b", "v", 0)
    with pytest.raises(ValueError):
        h.ack("never", 0, 0)


def kafkajs_resend():
    """The history of the CI failure at seed 1285469847, in small: kafkajs sent x to partition 1
    (written at 1/4), a leader change made it send x again as a new batch after b's later value y
    (written at 1/6), and it reported both answers: x's ack and the client's copy."""
    h = base()
    h.send("b", "x", partition=1)
    h.send("b", "y", partition=1)
    h.copy("x", 1, 6)
    h.ack("x", 1, 4)
    h.ack("y", 1, 5)
    return h, full_read(h) + [(1, 6, "x")]


def test_a_clients_acknowledged_copy_passes():
    h, recs = kafkajs_resend()
    h.read(recs)
    h.read(recs)
    r = check(h)
    assert r.ok, r.summary()
    assert h.positions("x") == [(1, 4), (1, 6)]


def test_a_clients_copy_is_held_to_its_positions():
    # The copy missing from a read is an acknowledged write lost.
    h, recs = kafkajs_resend()
    h.read([rec for rec in recs if rec != (1, 6, "x")])
    r = check(h)
    assert r.counts() == {"lost-acked": 1}, r.summary()
    assert "the copy at 1/6 not read" in r.summary()
    # A third position, acknowledged nowhere, is still a duplicate.
    h, recs = kafkajs_resend()
    h.send("a", "z", partition=1)
    h.read(recs + [(1, 7, "z"), (1, 8, "x")])
    assert {"duplicate-read", "ack-offset-mismatch"} <= kinds(check(h)), check(h).summary()
    # Without the copy in the history, the same read is a broker duplicate, as before.
    h, recs = kafkajs_resend()
    h.copies.clear()
    h.read(recs)
    assert {"duplicate-read", "ack-offset-mismatch"} <= kinds(check(h)), check(h).summary()
    # A copy's position acknowledged to another value too is an ack-conflict.
    h, recs = kafkajs_resend()
    h.send("a", "w", partition=1)
    h.ack("w", 1, 6)
    assert "ack-conflict" in kinds(check(h)), check(h).summary()
