#!/bin/sh
# run.sh - `make bench`: release build, then the benchmark suite (bench/bench.py).
#
#   bench/run.sh           full run (under 10 minutes on 2 cores); prints the
#                          table and writes bench/results/<date>-<host>.md
#   bench/run.sh --smoke   every step at a tiny scale (seconds), for CI;
#                          prints the table, writes nothing
#   bench/run.sh --out F   full run, results to F
#   bench/run.sh --replication [--out F] [--smoke]
#                          RF 1 against RF 3, failover and catch-up on 3 etcd
#                          members and 3 nodes (bench/replication_bench.py,
#                          about 2-3 minutes; needs etcd)
#   bench/run.sh --transactions [--out F] [--smoke]
#                          idempotent against transactional produce, commit
#                          latency, read_committed against read_uncommitted
#                          reads on one node (bench/txn_bench.py, ~1.5 minutes)
#   bench/run.sh --peers [--out F] [--smoke] [--rounds N] [--variant 'LABEL[@BUILD_DIR]:k=v,...']
#                          1 KiB acks=all produce against the page-cache write
#                          rate and librdkafka's mock cluster, alternating rounds
#                          (bench/peer_bench.py, about 1-2 minutes)
#   bench/run.sh --startup [--out F] [--smoke]
#                          start-up over 10 M committed offsets before and after
#                          compaction, and over a long metadata log without and
#                          with a snapshot (bench/startup_bench.py, ~3.5 minutes)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# iperf3 measures the loopback limit; install it from Debian if missing.
if ! command -v iperf3 >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -yq --no-install-recommends iperf3 >/dev/null
fi
make -s -f bench/Makefile -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
if [ "$1" = "--replication" ]; then
    shift
    SAMSA_BUILD=build/release exec /usr/bin/python3 bench/replication_bench.py "$@"
fi
if [ "$1" = "--transactions" ]; then
    shift
    SAMSA_BUILD=build/release exec /usr/bin/python3 bench/txn_bench.py "$@"
fi
if [ "$1" = "--peers" ]; then
    shift
    SAMSA_BUILD=build/release exec /usr/bin/python3 bench/peer_bench.py "$@"
fi
if [ "$1" = "--startup" ]; then
    shift
    SAMSA_BUILD=build/release exec /usr/bin/python3 bench/startup_bench.py "$@"
fi
exec /usr/bin/python3 bench/bench.py "$@"
