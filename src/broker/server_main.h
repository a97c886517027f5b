/* server_main.h - kafka-server-start's entry point (see server_main.c). */
#ifndef SAMSA_SERVER_MAIN_H
#define SAMSA_SERVER_MAIN_H

int server_main(int argc, char **argv);

#endif
