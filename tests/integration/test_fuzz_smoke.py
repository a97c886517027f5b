"""A short libFuzzer run of every target in tests/fuzz, when clang is here.

Each target is built with `make fuzz-build` (into build-fuzz/) and run for
FUZZ_SMOKE_SECONDS (10 by default) on a copy of its seed corpus, so the
committed corpus does not grow. A crash, a sanitizer report or a failed
invariant makes libFuzzer exit nonzero and leaves the input in the temp dir;
the test prints where. `make fuzz FUZZ_SECONDS=...` does the long runs.
"""
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FUZZ_DIR = os.path.join(ROOT, "tests", "fuzz")
SECONDS = int(os.environ.get("FUZZ_SMOKE_SECONDS", "10"))
TARGETS = sorted(os.path.basename(p)[len("fuzz_"):-2] for p in glob.glob(os.path.join(FUZZ_DIR, "fuzz_*.c")))

pytestmark = pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")


@pytest.fixture(scope="module")
def fuzz_bins():
    r = subprocess.run(["make", "-s", f"-j{os.cpu_count() or 2}", "fuzz-build"], cwd=ROOT,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return os.path.join(ROOT, "build-fuzz")


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_does_not_crash(fuzz_bins, target, tmp_path):
    corpus = tmp_path / "corpus"
    seeds = os.path.join(FUZZ_DIR, "corpus", target)
    if os.path.isdir(seeds):
        shutil.copytree(seeds, corpus)
    else:
        corpus.mkdir()
    env = dict(os.environ)
    env.pop("ASAN_OPTIONS", None)  # the fuzzer's own defaults (leak checks on)
    r = subprocess.run([os.path.join(fuzz_bins, "fuzz_" + target), f"-max_total_time={SECONDS}",
                        "-print_final_stats=1", f"-artifact_prefix={tmp_path}/", str(corpus)],
                       capture_output=True, text=True, timeout=SECONDS + 300, env=env)
    runs = [line for line in r.stderr.splitlines() if line.startswith("stat::number_of_executed_units")]
    print(target, runs)
    assert r.returncode == 0, f"fuzz_{target} failed (inputs in {tmp_path}):\n{r.stderr[-6000:]}"
    assert runs, r.stderr[-3000:]
