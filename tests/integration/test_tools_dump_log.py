"""kafka-dump-log on segments written by segment_writer (no broker needed)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import segment_writer as sw  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(REPO, "bin", "kafka-dump-log.sh")


def run(*args):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=30)


def make_segment(d):
    b1 = sw.batch(0, [(None, b"hello", ()), (None, b"world", ()), (None, b"!", ())])
    b2 = sw.batch(3, [(b"k1", b"v1", ((b"h1", b"x"), (b"h2", None)))], base_ts=1700000000003,
                  producer_id=5, producer_epoch=0, base_sequence=0)
    return sw.write_segment(str(d), 0, [b1, b2]), len(b1)


def test_batches_and_records(tmp_path):
    log, size1 = make_segment(tmp_path)
    r = run("--files", log, "--print-data-log")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "Dumping " + log
    assert lines[1] == "Log starting offset: 0"
    assert lines[2].startswith(
        "baseOffset: 0 lastOffset: 2 count: 3 baseSequence: -1 lastSequence: -1 producerId: -1 "
        "producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
        "deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700000000002 size: %d magic: 2 "
        "compresscodec: none crc: " % size1)
    assert lines[2].endswith(" isvalid: true")
    assert lines[3] == ("| offset: 0 CreateTime: 1700000000000 keySize: -1 valueSize: 5 sequence: -1 "
                        "headerKeys: [] payload: hello")
    assert lines[5] == ("| offset: 2 CreateTime: 1700000000002 keySize: -1 valueSize: 1 sequence: -1 "
                        "headerKeys: [] payload: !")
    assert " baseSequence: 0 lastSequence: 0 producerId: 5 producerEpoch: 0 " in lines[6]
    assert lines[7] == ("| offset: 3 CreateTime: 1700000000003 keySize: 2 valueSize: 2 sequence: 0 "
                        "headerKeys: [h1,h2] key: k1 payload: v1")
    assert r.stderr == ""


def test_shallow_by_default(tmp_path):
    log, _ = make_segment(tmp_path)
    r = run("--files", log)
    assert [l for l in r.stdout.split("\n") if l.startswith("|")] == []
    assert len([l for l in r.stdout.split("\n") if l.startswith("baseOffset: ")]) == 2


def test_index_and_timeindex(tmp_path):
    log, size1 = make_segment(tmp_path)
    idx = log[:-4] + ".index"
    tix = log[:-4] + ".timeindex"
    r = run("--files", idx + "," + tix)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("Dumping %s\noffset: 2 position: 0\noffset: 3 position: %d\n"
                        "Dumping %s\ntimestamp: 1700000000002 offset: 2\ntimestamp: 1700000000003 offset: 3\n"
                        % (idx, size1, tix))
    assert r.stderr == ""


def test_corrupt_crc_and_trailing_bytes(tmp_path):
    log, _ = make_segment(tmp_path)
    data = bytearray(open(log, "rb").read())
    data[-1] ^= 0xFF
    data += b"\x00\x01\x02"
    open(log, "wb").write(bytes(data))
    r = run("--files", log)
    lines = r.stdout.split("\n")
    assert lines[3].endswith(" isvalid: false")
    assert lines[4] == "Found 3 invalid bytes at the end of %s" % os.path.basename(log)


def test_missing_files_argument():
    r = run("--print-data-log")
    assert r.returncode == 1
    assert r.stderr.startswith('Missing required argument "[files]"')


def test_unknown_file_is_ignored(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"")
    r = run("--files", str(p))
    assert r.stdout == "Dumping %s\n" % p
    assert r.stderr == "Ignoring unknown file %s\n" % p
