/* main.c - samsa-broker: the Kafka node, and kafka-storage.
 *
 *   samsa-broker [server.properties] [--override key=value]...
 *       run a node in the foreground (kafka-server-start.sh). Without a file,
 *       the embedded default configuration is used and its data dir is
 *       formatted on first use.
 *   samsa-broker storage random-uuid | format -t ID -c FILE [--ignore-formatted] | info -c FILE
 *       kafka-storage.sh
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/server_main.h"
#include "broker/storage_cmd.h"

int main(int argc, char **argv) {
    /* The JVM scripts' environment (KAFKA_HEAP_OPTS, ...) means nothing here. */
    if (argc >= 2 && strcmp(argv[1], "storage") == 0) return storage_main(argc - 1, argv + 1);
    return server_main(argc, argv);
}
