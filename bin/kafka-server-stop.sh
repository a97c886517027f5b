#!/bin/sh
# kafka-server-stop.sh - stop running Samsa nodes with SIGTERM (a clean shutdown),
# as Kafka's script does for its JVMs. --process-role and --node-id narrow the choice
# the way Kafka's do, matched against the config file's node.id. SIGNAL picks
# another signal, as in Kafka's script (SIGNAL=KILL kafka-server-stop.sh).
signal=${SIGNAL:-TERM}
node_id=""
while [ $# -gt 0 ]; do
    case "$1" in
        --node-id) node_id="$2"; shift 2 ;;
        --node-id=*) node_id="${1#--node-id=}"; shift ;;
        --process-role|--process-role=*) [ "$1" = "--process-role" ] && shift; shift ;;
        # Kafka's script has no help and would stop every node; asking must not.
        -h|--help)
            echo "USAGE: $0 [--node-id=N] [--process-role=ROLE]  (SIGTERM to the running nodes; SIGNAL=... for another)"
            exit 0 ;;
        *) shift ;;
    esac
done
pids=$(pgrep -f 'samsa-broker( |$)' | while read -r pid; do
    if [ -n "$node_id" ]; then
        cfg=$(tr '\0' '\n' < /proc/"$pid"/cmdline | sed -n 2p)
        [ -f "$cfg" ] && grep -q "^node.id=$node_id\$" "$cfg" || continue
    fi
    echo "$pid"
done)
if [ -z "$pids" ]; then
    echo "No kafka server to stop"
    exit 1
fi
kill -s "$signal" $pids
