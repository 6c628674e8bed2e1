/*
 * server — UDP and TCP listeners on libevent, per-query dispatch.
 *
 * UDP sockets are drained in batches with recvmmsg/sendmmsg into buffers
 * allocated once at start (no allocation per packet); replies leave from
 * the address the query was sent to (IP_PKTINFO / IPV6_RECVPKTINFO). TCP
 * (RFC 7766) uses one bufferevent per connection with 2-byte framing,
 * pipelining, an idle timeout, a cap on connections (accept pauses at the
 * cap or on EMFILE) and a cap on bytes queued per connection.
 *
 * Ownership: the server borrows the event_base and the config (which must
 * outlive it, or be replaced with server_set_config). The name table is
 * borrowed: server_set_table swaps the pointer and returns the old one for
 * the caller to free (single-threaded: nothing refers to it afterwards).
 */
#ifndef SEDNS_SERVER_H
#define SEDNS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "forward.h"
#include "metrics.h"
#include "nametable.h"

struct event_base;
struct server;

struct server_stats {
	uint64_t queries;           /* every packet that parsed as a query */
	uint64_t qtype_a, qtype_aaaa, qtype_ptr, qtype_other;
	uint64_t local, forwarded, nxdomain, servfail, refused, formerr, notimp, dropped, chaos;
	uint64_t nxdomain_rewritten;        /* upstream NXDOMAIN for an owned
	                                       name, answered NODATA */
	uint64_t cached;                    /* answered from the answer cache */
	uint64_t tcp_refused_acl;           /* closed at accept: not in allow_from */
	uint64_t refused_acl;               /* queries REFUSED: not in allow_from */
	uint64_t refused_chaos;             /* CHAOS queries REFUSED (not a name) */
	uint64_t refused_prefixes;          /* source prefixes tracked for the log */
	uint64_t tcp_refused_per_client;    /* closed at accept: per-client cap */
	uint64_t tcp_lifetime_ends;         /* connections past tcp_max_lifetime */
	uint64_t tcp_out_dropped;           /* replies dropped: output caps */
	uint64_t quota_hits;                /* SERVFAIL: client over its share */
	uint64_t tcp_conns, tcp_accepted, tcp_refused_cap;
	uint64_t udp_batches;
	struct histo local_latency;
};

/* Listens on cfg->listen. listen_fds (may be empty) are sockets handed
 * over by systemd (server_listen_fds): they are adopted, and only the
 * configured addresses they do not cover are bound here (SO_REUSEPORT and,
 * off loopback, IP_FREEBIND per the config). */
struct server *server_new(struct event_base *base, const struct config *cfg, const struct fwd_zone_spec *zones,
    size_t nzones, const int *listen_fds, size_t nlisten_fds, char *err, size_t errlen);
void server_free(struct server *srv);
/* One listening socket on ep (SOCK_DGRAM or SOCK_STREAM), with the options
 * server_new uses; -1 with the errno in *why and a message in err. serve -n
 * binds through it too, so the check and the start agree, with trial set:
 * no SO_REUSEPORT, so a check beside the running daemon fails with
 * EADDRINUSE instead of joining its socket group and taking its queries. */
int server_bind_listener(const struct config *cfg, const struct config_endpoint *ep, int type, bool trial, int *why,
    char *err, size_t errlen);

struct nametable *server_set_table(struct server *srv, struct nametable *nt);
struct nametable *server_table(struct server *srv);
/* Reload: new config (allow_from, ttl, sizes) and forward zones. */
void server_set_config(struct server *srv, const struct config *cfg, const struct fwd_zone_spec *zones,
    size_t nzones);

/* Socket activation: the descriptors systemd passed (LISTEN_PID/LISTEN_FDS,
 * fds from 3), at most max; the variables are removed from the environment
 * so that child processes do not see them. 0 when not activated. */
size_t server_listen_fds(int *fds, size_t max);

/* Stopping without a gap. server_drain stops taking new queries: a socket
 * from systemd is left to the next instance (the kernel queues meanwhile),
 * our own UDP sockets are connected to themselves (which takes them out of
 * their SO_REUSEPORT group, so a second sedns gets the new queries) and
 * still read what was queued, TCP listeners close and connections answer
 * what they read, then close. server_drained: nothing left to answer.
 * server_fail_inflight: the deadline passed; SERVFAIL what is upstream. */
void server_drain(struct server *srv);
bool server_drained(const struct server *srv);
void server_fail_inflight(struct server *srv);

void server_stats(const struct server *srv, struct server_stats *st);
/* The answer cache (NULL when off): stats, flush (SIGUSR1), introspection. */
struct cache *server_cache(struct server *srv);
struct forwarder *server_forwarder(struct server *srv);

/* Pure helper, exposed for tests: is the client in one of the prefixes? */
bool server_client_allowed(const struct netprefix *allow, size_t nallow, const struct netaddr *client);

#endif
