#!/bin/sh
# install-deps.sh - everything Samsa needs to build and test, from Debian
# bookworm's archive (and kafkajs from npm for the client tests).
# Idempotent: packages already present are skipped quickly.
set -e
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="build-essential pkg-config zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev libjansson-dev libssl-dev openssl librdkafka-dev \
python3 python3-pytest python3-pytest-timeout python3-kafka python3-snappy python3-lz4 python3-zstandard python3-confluent-kafka kcat clang iperf3 etcd-server etcd-client \
lintian adduser chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js: the machine's own (these images ship one with npm) or Debian's.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -yq --no-install-recommends $missing
fi
# kafkajs for the Node.js client tests (kept inside the repo, not global).
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$here/tests/integration/js/package.json" ] && [ ! -d "$here/tests/integration/js/node_modules/kafkajs" ]; then
    (cd "$here/tests/integration/js" && npm install --no-audit --no-fund --silent)
fi
