"""bench/write_paths.c (samsa-write-paths) keeps working: every write path runs on a small
size, its file reads back equal to the source, and a path made to drop its last chunk is
caught by that check. Speeds are not checked here; benchmarks never fail CI on speed."""
import os
import re
import subprocess

from conftest import BUILD, ROOT

BIN = os.path.join(ROOT, BUILD, "bin", "samsa-write-paths")
PATHS = ("pwrite", "fallocate", "fallocate-16m", "direct", "direct-sync", "mmap", "mmap-populate", "iothread", "raw256k")


def run(tmp_path, *args):
    return subprocess.run([BIN, "--dir", str(tmp_path), "--mib", "8", "--rounds", "1", "--wait", "0", *args],
                          capture_output=True, text=True, timeout=120)


def run_lines(out):
    """path -> the key=value fields of its run line."""
    runs = {}
    for line in out.splitlines():
        if line.startswith("round="):
            fields = dict(kv.split("=", 1) for kv in re.findall(r"\S+=\S+", line))
            runs[fields["path"]] = fields
    return runs


def check_all_paths(r):
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = run_lines(r.stdout)
    assert set(runs) == set(PATHS), r.stdout
    for name, fields in runs.items():
        # O_DIRECT may be refused by the file system (EINVAL, e.g. on some tmpfs): reported, accepted.
        if fields["supported"] == "no":
            assert name.startswith("direct"), r.stdout
            continue
        assert fields["verified"] == "yes", r.stdout
        assert float(fields["mb_per_s"]) > 0, r.stdout
    assert "| path | MB/s |" in r.stdout
    return runs


def test_every_path_writes_and_verifies(tmp_path):
    runs = check_all_paths(run(tmp_path))
    # The I/O thread's CPU is reported apart from the main thread's.
    assert "io_cpu_ms_per_mb" in runs["iothread"]
    assert os.listdir(tmp_path) == [], "the run's temp dir is removed"


def test_small_appends(tmp_path):
    check_all_paths(run(tmp_path, "--chunk", "16384"))


def test_every_path_with_fdatasync(tmp_path):
    r = run(tmp_path, "--sync")
    check_all_paths(r)
    assert " sync=1 " in r.stdout.splitlines()[0]


def test_a_broken_path_does_not_verify(tmp_path):
    for name in ("direct", "mmap", "iothread"):
        r = run(tmp_path, "--paths", name, "--break", name)
        fields = run_lines(r.stdout)[name]
        if fields["supported"] == "no":
            continue
        assert r.returncode == 1, r.stdout
        assert fields["verified"] == "NO", r.stdout


def test_refuses_more_than_free_space(tmp_path):
    r = subprocess.run([BIN, "--dir", str(tmp_path), "--mib", str(1 << 20), "--rounds", "1", "--wait", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "refused" in r.stderr
