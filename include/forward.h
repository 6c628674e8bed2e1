/*
 * forward — the upstream client: pending table, per-attempt timeouts, TCP
 * retry on TC=1, failover across upstreams with health ordering.
 *
 * Every forwarded query takes one slot of a table allocated once at start
 * (max_pending slots, each with a fixed query buffer): no allocation per UDP
 * query. Each attempt uses a new connected UDP socket (fresh random source
 * port chosen by the kernel) and a fresh random ID from getrandom(); a reply is
 * accepted only from that socket (the kernel drops other sources), with that
 * ID and the same question. TCP upstream reads allocate a buffer sized to the
 * reply (slow path).
 *
 * Ownership: the forwarder borrows the event_base; fwd_client values are
 * copied into the slot. Results are delivered through the reply callback
 * exactly once per accepted submission, with reply == NULL when every
 * upstream failed (the caller answers SERVFAIL).
 */
#ifndef SEDNS_FORWARD_H
#define SEDNS_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "dnswire.h"
#include "metrics.h"
#include "netaddr.h"

struct event_base;
struct forwarder;

#define FWD_MAX_QUERY 4096      /* larger client queries are refused */
#define FWD_MAX_UPSTREAMS CONFIG_MAX_LIST

/* Who asked: enough to send the reply back. */
struct fwd_client {
	bool tcp;
	void *conn;                 /* TCP: the server's connection */
	uint64_t conn_serial;       /* TCP: guards against a reused conn */
	int fd;                     /* UDP: listener socket */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct netaddr local;       /* UDP: address the query was sent to */
	int ifindex;
	uint16_t limit;             /* UDP size the client accepts */
};

typedef void (*fwd_reply_fn)(void *arg, const struct fwd_client *c, const uint8_t *reply, size_t len,
    const uint8_t *query, size_t qlen);

struct fwd_upstream_stats {
	struct netaddr addr;
	uint16_t port;
	uint64_t requests, failures, timeouts;
	bool healthy;
};

struct fwd_stats {
	uint64_t forwarded, replies, servfail, pending_full, tcp_retries, spoofed;
	uint64_t pending;
	uint64_t socket_errors;     /* upstream sockets that could not open */
	struct histo latency;       /* submit -> reply relayed */
};

struct forwarder *forwarder_new(struct event_base *base, const struct config_endpoint *ups, size_t nups,
    uint64_t timeout_ms, size_t max_pending, fwd_reply_fn cb, void *arg);
void forwarder_free(struct forwarder *f);
/* Replaces the upstream list (reload); queries in flight finish on the old
 * addresses' order. */
bool forwarder_set_upstreams(struct forwarder *f, const struct config_endpoint *ups, size_t nups);

/* Starts forwarding the client's query. Returns false when the pending table
 * is full or the query is too large (the caller answers SERVFAIL). */
bool forwarder_submit(struct forwarder *f, const uint8_t *pkt, size_t len, const struct fwd_client *c);
/* A TCP client connection went away: its pending queries finish silently. */
void forwarder_detach_conn(struct forwarder *f, void *conn);

void forwarder_stats(const struct forwarder *f, struct fwd_stats *st);
size_t forwarder_upstream_stats(const struct forwarder *f, struct fwd_upstream_stats *out, size_t max);

/* Reads "nameserver" lines of a resolv.conf; returns the count (port 53). */
size_t forward_read_resolv_conf(const char *path, struct config_endpoint *out, size_t max);

#endif
