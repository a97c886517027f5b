#!/bin/sh
# kafka-server-start.sh - run a Samsa node in the foreground, as Kafka's script does.
# Usage: kafka-server-start.sh [-daemon] server.properties [--override property=value]*
# JVM variables (KAFKA_HEAP_OPTS, KAFKA_OPTS, ...) are accepted and ignored.
here=$(dirname "$0")
if [ $# -lt 1 ]; then
    echo "USAGE: $0 [-daemon] server.properties [--override property=value]*" >&2
    exit 1
fi
for broker in "$here/../${SAMSA_BUILD:-build}/samsa-broker" "$here/../build/samsa-broker" "$here/../libexec/samsa-broker"; do
    [ -x "$broker" ] && exec "$broker" "$@"
done
echo "kafka-server-start.sh: samsa-broker not found" >&2
exit 127
