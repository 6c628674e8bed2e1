/*
 * forward — the upstream client: pending table, per-attempt timeouts, TCP
 * retry on TC=1, failover across upstreams with health ordering.
 *
 * Every forwarded query takes one slot of a table allocated once at start
 * (max_pending slots, each with a fixed query buffer): no allocation per UDP
 * query. The table is calloc'd and a slot is first written when first
 * used, so an idle node does not pay for max_pending buffers. Each attempt uses a new connected UDP socket (fresh random source
 * port chosen by the kernel) and a fresh random ID from getrandom(); a reply is
 * accepted only from that socket (the kernel drops other sources), with that
 * ID and the same question. TCP upstream reads allocate a buffer sized to the
 * reply (slow path).
 *
 * Forward zones (stub domains): each zone has its own upstream list with its
 * own health ordering and failover; a query goes to the zone with the
 * longest name its QNAME is at or under, the root zone "" being the default.
 *
 * Replies are delivered whole (the caller fits them to a UDP client's size,
 * after caching them).
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

#include "cache.h"
#include "config.h"
#include "dnswire.h"
#include "metrics.h"
#include "netaddr.h"

struct event_base;
struct forwarder;

#define FWD_MAX_QUERY 4096      /* larger client queries are refused */
#define FWD_MAX_UPSTREAMS CONFIG_MAX_LIST   /* per zone */
#define FWD_MAX_ZONES (CONFIG_MAX_ZONES + 1)

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
	bool owned;                 /* the name is answered locally for A/AAAA:
	                               an upstream NXDOMAIN becomes NODATA */
	bool internal;              /* no client: a cache refresh (prefetch) */
};

/* Where a forwarded query went, for logs (valid during the callback). */
struct fwd_info {
	const char *zone;           /* "" = the root zone */
	bool have_upstream;         /* false: none was tried or all failed */
	struct netaddr addr;        /* the upstream that answered */
	uint16_t port;
	double seconds;             /* submit -> reply */
	const struct cache_key *key;/* the query's key when it had one */
};

typedef void (*fwd_reply_fn)(void *arg, const struct fwd_client *c, const uint8_t *reply, size_t len,
    const uint8_t *query, size_t qlen, const struct fwd_info *info);

/* Called with begin=true before the replies of one batch read from an
 * upstream socket are delivered and begin=false after: the caller may hold
 * its own sends back and flush them together (sendmmsg). */
typedef void (*fwd_batch_fn)(void *arg, bool begin);

/* One zone handed to the forwarder; strings and arrays are copied. */
struct fwd_zone_spec {
	const char *name;           /* lower-case, no trailing dot, "" = root */
	const struct config_endpoint *ups;
	size_t nups;
};

struct fwd_upstream_stats {
	char zone[256];             /* "." for the root zone */
	struct netaddr addr;
	uint16_t port;
	uint64_t requests, failures, timeouts;
	bool healthy;
};

struct fwd_stats {
	uint64_t forwarded, replies, servfail, pending_full, tcp_retries, spoofed;
	uint64_t coalesced;         /* queries that joined an identical one */
	uint64_t pending;
	uint64_t socket_errors;     /* upstream sockets that could not open */
	struct histo latency;       /* submit -> reply relayed */
};

/* zones: at most FWD_MAX_ZONES; a root zone is added (with no upstreams:
 * SERVFAIL) when none is given. */
struct forwarder *forwarder_new(struct event_base *base, const struct fwd_zone_spec *zones, size_t nzones,
    uint64_t timeout_ms, size_t max_pending, fwd_reply_fn cb, void *arg);
void forwarder_free(struct forwarder *f);
void forwarder_set_batch_cb(struct forwarder *f, fwd_batch_fn fn);
/* Replaces the zones (reload). An upstream kept in the same zone keeps its
 * counters and health; queries in flight go on with their remaining
 * upstreams that still exist. */
bool forwarder_set_zones(struct forwarder *f, const struct fwd_zone_spec *zones, size_t nzones);

/* Starts forwarding the client's query; qname (lower-case presentation, as
 * dnswire_parse_query writes it) picks the zone. With a key (cache_key of
 * the query; NULL: none), a query identical to one already upstream joins
 * it instead (request coalescing): one upstream exchange, and every client
 * gets the reply with its own ID and question case (up to
 * FWD_MAX_WAITERS per query, queries up to FWD_WAITER_QUERY bytes).
 * Returns false when the pending table is full or the query is too large
 * (the caller answers SERVFAIL). */
#define FWD_MAX_WAITERS 256
#define FWD_WAITER_QUERY 512
bool forwarder_submit(struct forwarder *f, const uint8_t *pkt, size_t len, const char *qname,
    const struct fwd_client *c, const struct cache_key *key);
/* Fails every query in flight now (stop deadline): each gets its callback
 * with reply == NULL. */
void forwarder_fail_all(struct forwarder *f);
size_t forwarder_pending(const struct forwarder *f);

/* The zone a name would be forwarded to, and its upstreams as
 * "ADDR:PORT,..." in health order (introspection). Returns the zone name. */
const char *forwarder_describe(const struct forwarder *f, const char *qname, char *ups, size_t upslen);

/* Pure: index of the longest zone name that qname is at or under ("" matches
 * everything), or n when none does. Label-aligned, ASCII case-insensitive,
 * a trailing dot on qname ignored (zone names are stored without one). */
size_t fwd_zone_match(const char *const *names, size_t n, const char *qname);
/* The same over specs (at most FWD_MAX_ZONES): the zone for qname, or NULL. */
const struct fwd_zone_spec *fwd_zone_pick(const struct fwd_zone_spec *specs, size_t n, const char *qname);
/* A TCP client connection went away: its pending queries finish silently. */
void forwarder_detach_conn(struct forwarder *f, void *conn);

void forwarder_stats(const struct forwarder *f, struct fwd_stats *st);
size_t forwarder_upstream_stats(const struct forwarder *f, struct fwd_upstream_stats *out, size_t max);

/* Reads "nameserver" lines of a resolv.conf; returns the count (port 53). */
size_t forward_read_resolv_conf(const char *path, struct config_endpoint *out, size_t max);

#endif
