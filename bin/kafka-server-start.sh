#!/bin/sh
# kafka-server-start.sh - run a Samsa node, as Kafka's script does.
# Usage: kafka-server-start.sh [-daemon] server.properties [--override property=value]*
# -daemon: as Kafka's kafka-run-class.sh, start it in the background with nohup,
# its console output in $LOG_DIR/kafkaServer.out (LOG_DIR defaults to the logs
# directory beside bin/), and return at once. With LOG_DIR set the node also
# writes Kafka's server.log, controller.log, ... there, rolled hourly
# (docs/packaging.md); in the foreground without LOG_DIR it logs to stdout only.
# JVM variables (KAFKA_HEAP_OPTS, KAFKA_OPTS, ...) are accepted and ignored.
here=$(dirname "$0")
if [ $# -lt 1 ]; then
    echo "USAGE: $0 [-daemon] server.properties [--override property=value]*" >&2
    exit 1
fi
daemon=false
if [ "$1" = "-daemon" ]; then
    daemon=true
    shift
fi
for broker in "$here/../${SAMSA_BUILD:-build}/samsa-broker" "$here/../build/samsa-broker" "$here/../libexec/samsa-broker"; do
    [ -x "$broker" ] || continue
    if ! $daemon; then
        exec "$broker" "$@"
    fi
    LOG_DIR=${LOG_DIR:-$here/../logs}
    mkdir -p "$LOG_DIR" || exit 1
    export LOG_DIR
    nohup "$broker" "$@" > "$LOG_DIR/kafkaServer.out" 2>&1 < /dev/null &
    exit 0
done
echo "kafka-server-start.sh: samsa-broker not found" >&2
exit 127
