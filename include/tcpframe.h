/*
 * tcpframe — DNS over TCP framing (RFC 1035 4.2.2: a 2-byte length, then
 * the message) on a libevent input buffer, shared by the server, the
 * forwarder's pipelined upstream connections and endpoint resolution.
 */
#ifndef SEDNS_TCPFRAME_H
#define SEDNS_TCPFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* The length of the next complete message in in (its 2-byte prefix
 * excluded), or -1 while it is still incomplete. */
long tcpframe_peek(struct evbuffer *in);
/* Removes the next complete message into buf (cap >= 65535 takes any);
 * false while it is incomplete. A message longer than cap is drained and
 * *len set to 0. */
bool tcpframe_take(struct evbuffer *in, uint8_t *buf, size_t cap, size_t *len);

#endif
