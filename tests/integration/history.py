"""A Jepsen-style history of producers and read-from-beginning consumers, and
its checker (issue 13, "What must hold").

The history is what the clients saw, nothing from the broker's insides:

    h = History()
    h.send("ck-0", "ck-0-17", partition=3)       # before the client is asked to send
    h.ack("ck-0-17", partition=3, offset=41)     # the broker's answer: written there
    h.fail("ck-0-18", "timed out")               # outcome unknown: may or may not be in the log
    h.copy("js-3-9", partition=1, offset=57)     # the client wrote the value again, acknowledged there
    r = h.read([(3, 40, "js-0-9"), (3, 41, "ck-0-17")])   # one read of everything from the beginning
    report = check(h)                            # or Checker(h) incrementally, read by read
    report.assert_ok()                           # AssertionError naming the first few violations

What must hold (a violation of each kind is reported with its details):

- unknown-value: every value read was sent by some producer (and to the partition it was sent to:
  wrong-partition);
- duplicate-read: no value is read twice in one read;
- offset-order: in one read, each partition's offsets strictly increase;
- offset-conflict: across all reads, one (partition, offset) never names two different values;
- value-moved: a value is never read at two different positions (a committed record never moves);
- lost-read: a record read once is there in every later read that reached past its offset
  (committed records are never lost);
- lost-acked: every value acknowledged before a read started is in that read (exactly once, with
  duplicate-read);
- ack-offset-mismatch: a value is read at the partition and offset its acknowledgement named;
- ack-conflict: two acknowledgements never name the same (partition, offset);
- order: per partition, per producer, acknowledged values are read in the order they were sent.

Values whose outcome is unknown (failed, or never answered) may be absent; if present they are held
to every rule above except lost-acked and ack-offset-mismatch.

A client's own second write of a value (copy(): the client sent it again as a new record, with a new
sequence number, and the broker acknowledged that copy too) is part of the history, not a broker
duplicate: the value must then be read at each acknowledged position (lost-acked), at no other
(ack-offset-mismatch, duplicate-read, value-moved), and a copy is left out of the order rule (it was
written after values sent later). Any other second position is still a violation.
"""
import time

KINDS = ("unknown-value", "wrong-partition", "duplicate-read", "offset-order", "offset-conflict", "value-moved",
         "lost-read", "lost-acked", "ack-offset-mismatch", "ack-conflict", "order")


class Read:
    """One read of every partition from the beginning. records: [(partition, offset, value)] in the
    order the consumer returned them. must_have: how many of the history's acknowledgements (in
    arrival order) came before the read started; those values must all be in it."""

    def __init__(self, index, records, must_have, started, note=""):
        self.index = index
        self.records = records
        self.must_have = must_have
        self.started = started
        self.note = note  # e.g. "stopped at the deadline, positions ..." for the report

    def __repr__(self):
        return f"read #{self.index} ({len(self.records)} records{', ' + self.note if self.note else ''})"


class History:
    """Sends, acknowledgements, failures and reads, in the order the test learnt of them."""

    def __init__(self):
        self.sends = {}          # producer -> [value, ...] in send order
        self.sent = {}           # value -> (producer, index in its producer's sends, partition or None)
        self.acks = {}           # value -> (partition, offset, time)
        self.ack_order = []      # values in the order their acknowledgements arrived
        self.extra_acks = []     # (value, partition, offset): a second acknowledgement of one value
        self.copies = {}         # value -> [(partition, offset)]: the client's own further writes of it
        self.failed = {}         # value -> error text (outcome unknown)
        self.reads = []

    def send(self, producer, value, partition=None):
        if value in self.sent:
            raise ValueError(f"value {value!r} sent twice: values must be unique")
        seq = self.sends.setdefault(producer, [])
        self.sent[value] = (producer, len(seq), partition)
        seq.append(value)

    def ack(self, value, partition, offset, t=None):
        if value not in self.sent:
            raise ValueError(f"acknowledgement of {value!r}, which was never sent")
        if value in self.acks:
            self.extra_acks.append((value, partition, offset))
            return
        self.acks[value] = (partition, offset, time.time() if t is None else t)
        self.ack_order.append(value)

    def copy(self, value, partition, offset):
        """The client wrote value once more, as a new record, and the broker acknowledged that copy at
        partition/offset (kafkajs does after a leader change: see js/torture_producer.js). Record
        it before the value's ack() so no read is checked knowing one and not the other."""
        if value not in self.sent:
            raise ValueError(f"copy of {value!r}, which was never sent")
        self.copies.setdefault(value, []).append((partition, offset))

    def positions(self, value):
        """Every (partition, offset) the broker acknowledged value at: its ack, then its copies."""
        a = self.acks.get(value)
        return ([a[:2]] if a else []) + self.copies.get(value, [])

    def fail(self, value, error):
        self.failed[value] = error

    def read(self, records, must_have=None, started=None, note=""):
        """Adds a read; must_have defaults to every acknowledgement recorded so far (take
        len(h.ack_order) before starting the consumer when acknowledgements keep arriving)."""
        r = Read(len(self.reads), list(records), len(self.ack_order) if must_have is None else must_have,
                 time.time() if started is None else started, note)
        self.reads.append(r)
        return r

    def unknown_outcome(self):
        """Values sent and neither acknowledged nor known to have failed."""
        return [v for v in self.sent if v not in self.acks and v not in self.failed]


class Violation:
    def __init__(self, kind, text, read=None):
        assert kind in KINDS, kind
        self.kind, self.text, self.read = kind, text, read

    def __repr__(self):
        where = f" [read #{self.read}]" if self.read is not None else ""
        return f"{self.kind}{where}: {self.text}"


class Report:
    def __init__(self, violations, stats):
        self.violations = violations
        self.stats = stats

    @property
    def ok(self):
        return not self.violations

    def counts(self):
        out = {}
        for v in self.violations:
            out[v.kind] = out.get(v.kind, 0) + 1
        return out

    def summary(self, first=10):
        if self.ok:
            return "history OK: " + ", ".join(f"{k} {v}" for k, v in self.stats.items())
        lines = [f"history check FAILED: {len(self.violations)} violations "
                 + ", ".join(f"{k}: {n}" for k, n in sorted(self.counts().items()))]
        # The first few of each kind, so one noisy kind does not hide another.
        shown = {}
        for v in self.violations:
            if shown.get(v.kind, 0) < first:
                shown[v.kind] = shown.get(v.kind, 0) + 1
                lines.append("  " + repr(v))
        lines.append("  (" + ", ".join(f"{k} {v}" for k, v in self.stats.items()) + ")")
        return "\n".join(lines)

    def assert_ok(self, context=""):
        if not self.ok:
            raise AssertionError((context + "\n" if context else "") + self.summary())


class Checker:
    """Checks a History read by read (check_read), keeping what earlier reads established, so
    a long run checks each read once; check_acks looks at the acknowledgements alone."""

    def __init__(self, history):
        self.h = history
        self.at = {}        # (partition, offset) -> value, from every read so far
        self.where = {}     # value -> (partition, offset, read index where first seen)
        self.violations = []
        self.reads_checked = 0
        self.records_checked = 0
        self._acks_checked = 0
        self._ack_at = {}   # (partition, offset) -> acknowledged value

    def _add(self, kind, text, read=None):
        v = Violation(kind, text, read)
        self.violations.append(v)
        return v

    def _describe(self, value):
        s = self.h.sent.get(value)
        if s is None:
            return repr(value)
        prod, idx, part = s
        if value in self.h.acks:
            p, o, _t = self.h.acks[value]
            state = f"acknowledged at {p}/{o}"
            if value in self.h.copies:
                state += ", client's copies acknowledged at " + ", ".join(f"{q}/{qo}" for q, qo in self.h.copies[value])
        elif value in self.h.failed:
            state = f"failed ({self.h.failed[value]})"
        else:
            state = "no answer"
        return f"{value!r} (producer {prod} #{idx}, sent to partition {part}, {state})"

    def check_acks(self):
        """ack-conflict: two values acknowledged at one (partition, offset); also a value
        acknowledged twice at different places. Incremental over the acknowledgements."""
        new = []
        for value in self.h.ack_order[self._acks_checked:]:
            for p, o in self.h.positions(value):
                other = self._ack_at.setdefault((p, o), value)
                if other != value:
                    new.append(self._add("ack-conflict", f"offset {p}/{o} acknowledged for {self._describe(other)} "
                                                         f"and for {self._describe(value)}"))
        self._acks_checked = len(self.h.ack_order)
        for value, p, o in self.h.extra_acks:
            first = self.h.acks[value]
            if (p, o) != first[:2]:
                new.append(self._add("ack-conflict", f"{value!r} acknowledged twice: at {first[0]}/{first[1]} "
                                                     f"and at {p}/{o}"))
        self.h.extra_acks = [e for e in self.h.extra_acks if (e[1], e[2]) == self.h.acks[e[0]][:2]]
        return new

    def check_read(self, read):
        """Checks one Read against the history and every earlier read; returns its violations."""
        start = len(self.violations)
        h, ri = self.h, read.index
        seen = {}           # value -> [(partition, offset), ...] in this read
        last_off = {}       # partition -> last offset in this read
        last_send = {}      # (partition, producer) -> (send index, value) of the last acknowledged value
        here = set()        # (partition, offset) in this read
        for p, o, v in read.records:
            self.records_checked += 1
            here.add((p, o))
            s = h.sent.get(v)
            if s is None:
                self._add("unknown-value", f"{v!r} read at {p}/{o} was never sent", ri)
            elif s[2] is not None and s[2] != p:
                self._add("wrong-partition", f"{self._describe(v)} read at {p}/{o}", ri)
            acked_at = h.positions(v) if v in h.acks else []
            copy = len(acked_at) > 1 and (p, o) in acked_at  # one of the client's own acknowledged writes
            if v in seen:
                q, qo = seen[v][0]
                if not (copy and all(x in acked_at for x in seen[v])):
                    self._add("duplicate-read", f"{self._describe(v)} read at {q}/{qo} and again at {p}/{o}", ri)
            seen.setdefault(v, []).append((p, o))
            prev = last_off.get(p)
            if prev is not None and o <= prev:
                self._add("offset-order", f"partition {p}: offset {o} ({v!r}) read after offset {prev}", ri)
            last_off[p] = o if prev is None else max(prev, o)
            known = self.at.get((p, o))
            if known is None:
                self.at[(p, o)] = v
            elif known != v:
                self._add("offset-conflict", f"offset {p}/{o} named {self._describe(known)} in an earlier read, "
                                             f"now {self._describe(v)}", ri)
            first = self.where.get(v)
            if first is None:
                self.where[v] = (p, o, ri)
            elif first[:2] != (p, o) and not (copy and first[:2] in acked_at):
                self._add("value-moved", f"{self._describe(v)} read at {first[0]}/{first[1]} in read "
                                         f"#{first[2]}, now at {p}/{o}", ri)
            a = h.acks.get(v)
            if a is not None:
                if (p, o) not in acked_at:
                    self._add("ack-offset-mismatch", f"{self._describe(v)} read at {p}/{o}", ri)
                if (p, o) != a[:2]:
                    continue  # a copy came after values sent later: only the first write is in send order
                prod, idx, _part = s
                lp = last_send.get((p, prod))
                if lp is not None and idx < lp[0]:
                    self._add("order", f"partition {p}, producer {prod}: {v!r} (sent #{idx}) read at offset {o} "
                                       f"after {lp[1]!r} (sent #{lp[0]})", ri)
                if lp is None or idx > lp[0]:
                    last_send[(p, prod)] = (idx, v)
        # Every acknowledgement that came before the read started.
        for v in h.ack_order[:read.must_have]:
            if v not in seen:
                p, o, _t = h.acks[v]
                reached = last_off.get(p, -1)
                self._add("lost-acked", f"{self._describe(v)} not read (read reached offset {reached} of "
                                        f"partition {p}{'; ' + read.note if read.note else ''})", ri)
                continue
            for p, o in h.copies.get(v, []):
                if (p, o) not in seen[v]:
                    self._add("lost-acked", f"{self._describe(v)}: the copy at {p}/{o} not read (read reached "
                                            f"offset {last_off.get(p, -1)} of partition {p})", ri)
        # Records earlier reads established, below where this read reached.
        if self.reads_checked:
            for (p, o), v in self.at.items():
                if o <= last_off.get(p, -1) and (p, o) not in here:
                    self._add("lost-read", f"{self._describe(v)} read at {p}/{o} in read "
                                           f"#{self.where[v][2]}, missing now (read reached {last_off[p]})", ri)
        self.reads_checked += 1
        return self.violations[start:]

    def report(self):
        stats = {"values sent": len(self.h.sent), "acknowledged": len(self.h.acks), "failed": len(self.h.failed),
                 "client's copies": sum(len(c) for c in self.h.copies.values()), "reads": self.reads_checked,
                 "records checked": self.records_checked,
                 "distinct positions": len(self.at)}
        return Report(list(self.violations), stats)


def check(history):
    """Checks a whole history from scratch; returns a Report."""
    c = Checker(history)
    c.check_acks()
    for r in history.reads:
        c.check_read(r)
    return c.report()
