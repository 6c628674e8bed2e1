/*
 * notify — the systemd sd_notify protocol, without libsystemd.
 *
 * Sends datagrams ("READY=1", "RELOADING=1\nMONOTONIC_USEC=...",
 * "STOPPING=1", "WATCHDOG=1", "STATUS=...") to $NOTIFY_SOCKET (a path, or
 * "@name" for the abstract namespace). Without NOTIFY_SOCKET (Kubernetes,
 * a terminal) every call is a quiet no-op.
 */
#ifndef SEDNS_NOTIFY_H
#define SEDNS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Sends one message; false when there is no socket or sending failed. */
bool notify_send(const char *msg);
/* Watchdog interval from $WATCHDOG_USEC (honouring $WATCHDOG_PID), in
 * microseconds; 0 when systemd does not expect pings. */
uint64_t notify_watchdog_usec(void);
/* "RELOADING=1\nMONOTONIC_USEC=<now>" as systemd's notify-reload wants it. */
bool notify_reloading(void);

#endif
