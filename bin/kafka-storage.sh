#!/bin/sh
# kafka-storage.sh - format and inspect a node's log directories (Kafka's StorageTool).
here=$(dirname "$0")
for broker in "$here/../${SAMSA_BUILD:-build}/samsa-broker" "$here/../build/samsa-broker" "$here/../libexec/samsa-broker"; do
    [ -x "$broker" ] && exec "$broker" storage "$@"
done
echo "kafka-storage.sh: samsa-broker not found" >&2
exit 127
