#!/bin/sh
# kafka-acls.sh - Kafka's kafka-acls tool, run by Samsa's native samsa-tools.
# Works from the source tree (build/) and from an installed tree (libexec/).
here=$(dirname "$0")
for tools in "$here/../${SAMSA_BUILD:-build}/samsa-tools" "$here/../build/samsa-tools" "$here/../libexec/samsa-tools"; do
    [ -x "$tools" ] && exec "$tools" kafka-acls "$@"
done
echo "kafka-acls.sh: samsa-tools not found (looked in $here/../build and $here/../libexec)" >&2
exit 127
