#!/bin/sh
# make-manpages.sh OUT_DIR - a short manual page for each bin/kafka-*.sh
# (OUT_DIR/<name>.1.gz): what the command does, that it takes Kafka's
# options and lists them with --help, where the documentation is. The
# options themselves are not repeated here: each tool's --help is the
# reference, as for Kafka's scripts.
set -eu
out=${1:?usage: make-manpages.sh OUT_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"

summary() {
    case "$1" in
    kafka-acls) echo "add, remove and list access control lists" ;;
    kafka-broker-api-versions) echo "print the API versions each broker supports" ;;
    kafka-cluster) echo "print the cluster id or unregister a broker" ;;
    kafka-configs) echo "describe and alter the configs of topics, brokers, users and clients" ;;
    kafka-console-consumer) echo "read records from topics and print them" ;;
    kafka-console-producer) echo "send lines read from standard input to a topic" ;;
    kafka-consumer-groups) echo "list, describe and delete consumer groups and reset their offsets" ;;
    kafka-consumer-perf-test) echo "measure the throughput of a consumer" ;;
    kafka-delete-records) echo "delete the records of partitions below given offsets" ;;
    kafka-dump-log) echo "print the contents of log segments, indexes and snapshots" ;;
    kafka-features) echo "describe and change the cluster's feature levels" ;;
    kafka-get-offsets) echo "print the offsets of partitions" ;;
    kafka-leader-election) echo "elect the leaders of partitions" ;;
    kafka-log-dirs) echo "describe the log directories of brokers" ;;
    kafka-metadata-quorum) echo "describe the metadata quorum" ;;
    kafka-producer-perf-test) echo "measure the throughput of a producer" ;;
    kafka-reassign-partitions) echo "move the replicas of partitions between brokers" ;;
    kafka-server-start) echo "start a node (broker and controller)" ;;
    kafka-server-stop) echo "stop the running nodes" ;;
    kafka-storage) echo "format and inspect storage directories" ;;
    kafka-topics) echo "create, delete, describe or change topics" ;;
    kafka-transactions) echo "list, describe and abort transactions" ;;
    *) echo "Apache Kafka's $1 command" ;;
    esac
}

# How to learn the options (roff).
options() {
    case "$1" in
    kafka-server-start)
        printf '%s\n' 'The first argument is the \fIserver.properties\fR file;' \
            '\fB\-\-override\fR \fIproperty\fR=\fIvalue\fR overrides one of its properties.' \
            'With \fB\-daemon\fR the node runs in the background and the command returns at once;' \
            'its console output goes to \fB$LOG_DIR\fR/kafkaServer.out.' \
            'With \fBLOG_DIR\fR set the node writes server.log, controller.log and the other log' \
            'files of Kafka there, rolled over hourly.' ;;
    kafka-server-stop)
        printf '%s\n' 'It sends SIGTERM (\fBSIGNAL\fR chooses another) to every node running on this' \
            'machine, or with \fB\-\-node\-id\fR=\fIN\fR to those whose properties set node.id=\fIN\fR,' \
            'and does not wait for them to stop. \fB\-\-help\fR prints its usage.' ;;
    *)
        printf '%s\n' 'With \fB\-\-help\fR, or without options, it lists its options.' ;;
    esac
}

for s in "$root"/bin/kafka-*.sh; do
    name=$(basename "$s")
    base=${name%.sh}
    # roff: a hyphen in a name or option is \-
    rname=$(printf '%s' "$name" | sed 's/-/\\-/g')
    upper=$(printf '%s' "$name" | tr 'a-z' 'A-Z' | sed 's/-/\\-/g')
    {
        printf '.TH %s 1 "" "samsa 3.6.1" "Samsa"\n' "$upper"
        printf '.SH NAME\n%s \\- %s\n' "$rname" "$(summary "$base")"
        printf '.SH SYNOPSIS\n.B %s\n.RI [ options ]\n' "$rname"
        printf '.SH DESCRIPTION\n'
        printf "\\\\fB%s\\\\fR is Apache Kafka 3.6.1's command of that name, run by Samsa\n" "$rname"
        printf '(Kafka rewritten in C); it takes Kafka'"'"'s options.\n'
        options "$base"
        printf '.SH SEE ALSO\n'
        printf 'Kafka'"'"'s documentation, https://kafka.apache.org/36/documentation.html;\n'
        printf '.I /usr/share/doc/samsa/README.md\n'
    } | gzip -9n > "$out/$name.1.gz"
done
