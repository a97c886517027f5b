/* sd_notify.h - systemd's readiness protocol without libsystemd: one
 * datagram ("READY=1", "STOPPING=1", ...) to the unix socket named by
 * $NOTIFY_SOCKET, which systemd sets for a Type=notify unit. Without the
 * variable (not under systemd) nothing is sent. */
#ifndef SAMSA_SD_NOTIFY_H
#define SAMSA_SD_NOTIFY_H

/* Sends `state` (newline-separated assignments). Returns 1 when sent, 0 when
 * $NOTIFY_SOCKET is unset, -1 on error (errno set); callers may ignore it,
 * as a service must keep running when its manager does not listen. */
int sd_notify_state(const char *state);

#endif
