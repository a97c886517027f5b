#!/usr/bin/env bash
# cluster-up.sh - a Samsa cluster on this machine's loopback: 3 etcd members
# and N Samsa nodes (metadata.store=etcd), for trying things by hand.
#
#   scripts/cluster-up.sh N        start (3 etcd members, nodes 1..N)
#   scripts/cluster-up.sh status   what is running
#   scripts/cluster-up.sh stop     SIGTERM everything, SIGKILL after 10 s
#
# Ports: etcd clients 2379/2381/2383, peers 2380/2382/2384; node i listens on
# 9091+i (PLAINTEXT) and 19091+i (CONTROLLER). Data, logs and pid files live
# under ${SAMSA_CLUSTER_DIR:-/tmp/samsa-cluster}; a second start reuses them
# (same etcd data, same cluster id, nodes not formatted again). Remove the
# directory for a fresh cluster. SAMSA_BUILD picks the build dir (build).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SAMSA_CLUSTER_DIR:-/tmp/samsa-cluster}
BUILD_DIR=${SAMSA_BUILD:-build}
BROKER="$ROOT/$BUILD_DIR/samsa-broker"
ETCD=${SAMSA_ETCD:-/usr/bin/etcd}
ETCDCTL=${SAMSA_ETCDCTL:-$(dirname "$ETCD")/etcdctl}
PIDS="$DIR/pids"
MEMBERS=3
STOP_WAIT=10

etcd_client_port() { echo $((2379 + 2 * $1)); }
etcd_peer_port() { echo $((2380 + 2 * $1)); }
node_port() { echo $((9091 + $1)); }
node_controller_port() { echo $((19091 + $1)); }

endpoints() {
    local i out=""
    for ((i = 0; i < MEMBERS; i++)); do
        out="$out${out:+,}http://127.0.0.1:$(etcd_client_port "$i")"
    done
    echo "$out"
}

die() { echo "cluster-up: $*" >&2; exit 1; }

# pid from a pid file if that process is alive and is the program named.
live_pid() {
    local file=$1 prog=$2 pid
    [ -f "$file" ] || return 1
    pid=$(cat "$file" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$prog" || return 1
    # a zombie is not alive
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ] || return 1
    echo "$pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port pid seconds
    local port=$1 pid=$2 n=$(( $3 * 10 ))
    while ((n-- > 0)); do
        kill -0 "$pid" 2>/dev/null || return 2
        port_busy "$port" && return 0
        sleep 0.1
    done
    return 1
}

etcd_healthy() {
    ETCDCTL_API=3 "$ETCDCTL" --endpoints="$(endpoints)" --dial-timeout=1s --command-timeout=2s \
        endpoint health >/dev/null 2>&1
}

start_etcd() {
    local i name cport pport initial="" pid
    for ((i = 0; i < MEMBERS; i++)); do
        initial="$initial${initial:+,}m$i=http://127.0.0.1:$(etcd_peer_port "$i")"
    done
    for ((i = 0; i < MEMBERS; i++)); do
        name=m$i
        cport=$(etcd_client_port "$i")
        pport=$(etcd_peer_port "$i")
        if pid=$(live_pid "$PIDS/etcd-$name.pid" etcd); then
            echo "etcd $name already running (pid $pid)"
            continue
        fi
        port_busy "$cport" && die "port $cport is in use (another etcd?); etcd $name not started"
        port_busy "$pport" && die "port $pport is in use; etcd $name not started"
        # --initial-cluster-state new is ignored when the data dir already exists.
        setsid "$ETCD" --name "$name" --data-dir "$DIR/etcd-$name" \
            --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
            --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "$initial" --initial-cluster-token samsa-cluster-up --initial-cluster-state new \
            --logger zap --log-outputs stderr \
            </dev/null >>"$DIR/etcd-$name.log" 2>&1 &
        echo $! >"$PIDS/etcd-$name.pid"
        echo "etcd $name: client 127.0.0.1:$cport, peer 127.0.0.1:$pport, pid $!, log $DIR/etcd-$name.log"
    done
    local n=300
    until etcd_healthy; do
        ((n-- > 0)) || die "etcd not healthy after 30 s; see $DIR/etcd-m*.log"
        sleep 0.1
    done
    echo "etcd healthy: $(endpoints)"
}

node_config() { # node id -> writes $DIR/node<id>/server.properties
    local id=$1 nd="$DIR/node$1"
    mkdir -p "$nd"
    {
        cat "$ROOT/config/kraft/server.properties"
        echo
        echo "# scripts/cluster-up.sh"
        echo "node.id=$id"
        echo "listeners=PLAINTEXT://127.0.0.1:$(node_port "$id"),CONTROLLER://127.0.0.1:$(node_controller_port "$id")"
        echo "advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$id")"
        echo "controller.quorum.voters=$id@127.0.0.1:$(node_controller_port "$id")"
        echo "log.dirs=$nd/data"
        echo "metadata.store=etcd"
        echo "etcd.endpoints=$(endpoints)"
    } >"$nd/server.properties"
}

start_nodes() {
    local count=$1 id cid pid port failed=0 bootstrap=""
    if [ -s "$DIR/cluster.id" ]; then
        cid=$(cat "$DIR/cluster.id")
    else
        cid=$(SAMSA_BUILD=$BUILD_DIR "$ROOT/bin/kafka-storage.sh" random-uuid) || die "kafka-storage random-uuid failed"
        echo "$cid" >"$DIR/cluster.id"
    fi
    echo "cluster id: $cid"
    for ((id = 1; id <= count; id++)); do
        port=$(node_port "$id")
        bootstrap="$bootstrap${bootstrap:+,}127.0.0.1:$port"
        if pid=$(live_pid "$PIDS/node$id.pid" samsa-broker); then
            echo "node $id already running (pid $pid)"
            continue
        fi
        port_busy "$port" && die "port $port is in use; node $id not started"
        node_config "$id"
        if [ ! -f "$DIR/node$id/data/meta.properties" ]; then
            SAMSA_BUILD=$BUILD_DIR "$ROOT/bin/kafka-storage.sh" format -t "$cid" -c "$DIR/node$id/server.properties" \
                >>"$DIR/node$id/broker.out" 2>&1 || die "formatting node $id failed; see $DIR/node$id/broker.out"
        fi
        setsid "$BROKER" "$DIR/node$id/server.properties" </dev/null >>"$DIR/node$id/broker.out" 2>&1 &
        pid=$!
        echo "$pid" >"$PIDS/node$id.pid"
        wait_port "$port" "$pid" 15
        case $? in
        0) echo "node $id: 127.0.0.1:$port (controller port $(node_controller_port "$id")), pid $pid, log $DIR/node$id/broker.out" ;;
        2)
            echo "node $id exited at start-up; last lines of $DIR/node$id/broker.out:" >&2
            tail -n 5 "$DIR/node$id/broker.out" | sed 's/^/    /' >&2
            rm -f "$PIDS/node$id.pid"
            failed=$((failed + 1))
            ;;
        *)
            echo "node $id (pid $pid) is not listening on $port after 15 s; see $DIR/node$id/broker.out" >&2
            failed=$((failed + 1))
            ;;
        esac
    done
    echo
    echo "bootstrap servers: $bootstrap"
    echo "etcd endpoints:    $(endpoints)"
    echo "stop with:         $0 stop"
    [ "$failed" -eq 0 ] || { echo "$failed node(s) failed to start" >&2; return 1; }
}

# SIGTERM (after SIGCONT, in case it was stopped), SIGKILL after STOP_WAIT s.
stop_one() { # pidfile prog label
    local file=$1 prog=$2 label=$3 pid n
    if ! pid=$(live_pid "$file" "$prog"); then
        rm -f "$file"
        return 0
    fi
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
    n=$((STOP_WAIT * 10))
    while ((n-- > 0)) && kill -0 "$pid" 2>/dev/null && live_pid "$file" "$prog" >/dev/null; do
        sleep 0.1
    done
    if live_pid "$file" "$prog" >/dev/null; then
        echo "$label (pid $pid) did not stop in ${STOP_WAIT} s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    else
        echo "$label (pid $pid) stopped"
    fi
    rm -f "$file"
}

cmd_stop() {
    local f id name
    [ -d "$PIDS" ] || { echo "nothing running under $DIR"; return 0; }
    # Nodes first (they may still talk to etcd on their way out), then etcd.
    for f in "$PIDS"/node*.pid; do
        [ -e "$f" ] || continue
        id=$(basename "$f" .pid)
        stop_one "$f" samsa-broker "$id" &
    done
    wait
    for f in "$PIDS"/etcd-*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid)
        stop_one "$f" etcd "$name" &
    done
    wait
}

cmd_status() {
    local f pid label prog any=0
    [ -d "$PIDS" ] || { echo "nothing running under $DIR"; return 0; }
    for f in "$PIDS"/etcd-*.pid "$PIDS"/node*.pid; do
        [ -e "$f" ] || continue
        any=1
        label=$(basename "$f" .pid)
        case $label in etcd-*) prog=etcd ;; *) prog=samsa-broker ;; esac
        if pid=$(live_pid "$f" "$prog"); then
            echo "$label: running, pid $pid"
        else
            echo "$label: not running"
        fi
    done
    [ "$any" -eq 1 ] || echo "nothing running under $DIR"
    if [ -n "$(ls "$PIDS"/etcd-*.pid 2>/dev/null)" ]; then
        echo
        ETCDCTL_API=3 "$ETCDCTL" --endpoints="$(endpoints)" --dial-timeout=1s --command-timeout=2s \
            endpoint status -w table 2>&1 || true
    fi
}

case "${1:-}" in
stop) cmd_stop ;;
status) cmd_status ;;
'' | -h | --help | help)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    [[ "$1" =~ ^[1-9][0-9]*$ ]] || die "usage: $0 N | stop | status"
    [ -x "$ETCD" ] && [ -x "$ETCDCTL" ] || die "$ETCD or $ETCDCTL missing: run scripts/install-deps.sh"
    if [ ! -x "$BROKER" ]; then
        echo "$BROKER missing: building"
        make -C "$ROOT" -j"$(nproc 2>/dev/null || echo 2)" BUILD="$BUILD_DIR" all || die "build failed"
    fi
    mkdir -p "$PIDS"
    start_etcd
    start_nodes "$1"
    ;;
esac
