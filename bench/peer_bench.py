"""peer_bench.py - 1 KiB acks=all produce against the page cache and librdkafka's mock cluster.

The step `make bench` runs (bench.py's measure_produce_peers) on its own, with optional broker
variants run in the same alternating rounds, for before/after comparisons of produce-path settings:

  SAMSA_BUILD=build/release /usr/bin/python3 bench/peer_bench.py [--smoke] [--out F.md] \\
      [--rounds N] [--variant 'LABEL[@BUILD_DIR]:key=value,key=value' ...]

Without --variant the step's own two brokers run (bench.PEER_VARIANTS: the defaults, and the page
cache kept to a window). A variant with @BUILD_DIR runs the broker of
that build dir (another commit's, built in its own checkout with `make -f bench/Makefile`) in the
same rounds. Every round writes the page-cache file, then at 1 and 8 partitions runs each variant
and the mock in turn.
"""
import argparse
import datetime
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def parse_variant(text):
    """'LABEL[@BUILD_DIR]:key=value,...' -> (label, overrides, broker binary or None)."""
    label, _, settings = text.partition(":")
    label, _, build = label.partition("@")
    overrides = dict(kv.split("=", 1) for kv in settings.split(",") if kv)
    binary = os.path.join(os.path.abspath(build), "samsa-broker") if build else None
    if binary and not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary}: no broker there")
    return label, overrides, binary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--smoke", action="store_true", help="tiny scale; figures meaningless")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--records", type=int)
    ap.add_argument("--variant", action="append", default=[], help="LABEL:key=value,... (repeatable)")
    args = ap.parse_args()
    build = bench.use_build()
    S = {k: v[1 if args.smoke else 0] for k, v in bench.SCALES.items()}
    if args.rounds:
        S["peer_rounds"] = args.rounds
    if args.records:
        S["peer_records"] = args.records
    variants = [parse_variant(v) for v in args.variant] or [(label, o, None) for label, o in bench.PEER_VARIANTS]
    if not os.access(bench.BENCH_BIN, os.X_OK):
        raise SystemExit(f"{bench.BENCH_BIN} missing: make -f bench/Makefile REL={build}")
    started, load_before = time.time(), os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="samsa-peer-bench-")
    rep = bench.Report()
    budget = bench.arm_budget(900)
    try:
        bench.measure_produce_peers(rep, S, work, variants)
    except bench.OverBudget:
        rep.note(f"the run hit its {budget} s budget; the steps after the last row were skipped")
    finally:
        signal.alarm(0)
        for b in list(bench.ALL_BROKERS):
            b.kill9()
        shutil.rmtree(work, ignore_errors=True)
    for label, overrides, binary in variants:
        rep.note(f"{label}: " + (", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults")
                 + (f"; broker {binary}" if binary else ""))
    now = datetime.datetime.now()
    header = (f"# Produce against its peers: {now:%Y-%m-%d %H:%M} on {socket.gethostname()}\n\n"
              f"Mode: {'smoke (figures meaningless)' if args.smoke else 'full'}; {os.cpu_count()} CPUs; build "
              f"{build}; {S['peer_rounds']} alternating rounds; total run time {time.time() - started:.0f} s; "
              f"1-minute load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end (the machine "
              f"is shared: other work runs on the same 2 cores).\n\n")
    bench.emit(rep, header, args.out)


if __name__ == "__main__":
    sys.exit(main())
