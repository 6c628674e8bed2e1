/*
 * endpoints — keeps the addresses of DNS-resolution endpoints fresh.
 *
 * For ServiceEntries with resolution DNS / DNS_ROUND_ROBIN, endpoint
 * addresses that are hostnames (or the host itself when it has no
 * endpoints) are resolved through the upstreams of their forward zone (a
 * Service name under the cluster domain goes to kube-dns) — never through
 * sedns's own table, which would answer the VIP — as A queries, and
 * re-resolved when the answer's TTL runs out, clamped to [min_ttl,
 * max_ttl]. A failed re-resolution keeps the last known addresses (logged
 * and counted); a name never resolved has no addresses. NXDOMAIN / NODATA
 * are retried after the reply's negative TTL (RFC 2308; at least min_ttl),
 * doubling per consecutive negative answer up to max_ttl. Every resolution
 * takes a token from a node-wide bucket of max_qps per second (a burst of
 * one second); without one it is postponed and counted, so no ServiceEntry
 * author sets the node's upstream query rate. At most EP_MAX_INFLIGHT names
 * hold a socket at once, whatever the rate.
 *
 * A reply counts only with our ID and our question; a truncated one (TC=1)
 * is asked again over TCP, never taken as "no addresses". A queries only:
 * the rules DNAT IPv4.
 *
 * Ownership: struct endpoints owns its name records and sockets; names given
 * to endpoints_set_names are copied. The changed callback runs from the
 * event loop when any name's address set changes.
 */
#ifndef SEDNS_ENDPOINTS_H
#define SEDNS_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "forward.h"
#include "netaddr.h"

struct event_base;
struct endpoints;
struct registry;

#define EP_MAX_ADDRS 32
/* Names being resolved at once (one socket each; a quarter of
 * RLIMIT_NOFILE when that is lower); the rest wait their turn (counted as
 * deferred). */
#define EP_MAX_INFLIGHT 128

struct endpoints_stats {
	uint64_t names;            /* names tracked */
	uint64_t resolutions;      /* successful answers */
	uint64_t failures;         /* re-resolutions that failed */
	uint64_t changes;          /* address-set changes */
	uint64_t negative;         /* NXDOMAIN / NODATA answers */
	uint64_t deferred;         /* resolutions postponed by the rate cap */
	uint64_t tcp_retries;      /* truncated answers asked again over TCP */
};

/* zones are copied (at most FWD_MAX_ZONES, CONFIG_MAX_LIST upstreams each). */
struct endpoints *endpoints_new(struct event_base *base, const struct fwd_zone_spec *zones, size_t nzones,
    uint64_t timeout_ms, uint64_t min_ttl_ms, uint64_t max_ttl_ms, uint64_t max_qps, void (*changed)(void *),
    void *arg);
void endpoints_free(struct endpoints *ep);
void endpoints_set_zones(struct endpoints *ep, const struct fwd_zone_spec *zones, size_t nzones);

/* Collects the names the registry needs resolved and starts tracking them
 * (new names are resolved at once; names no longer needed are dropped). */
bool endpoints_track_registry(struct endpoints *ep, const struct registry *reg);

/* rules_resolve_fn-compatible lookup of current addresses. */
size_t endpoints_lookup(void *ep, const char *name, struct netaddr *out, size_t max);

/* A copy of every name's addresses (owned by the caller, ep_snapshot_free)
 * that another thread may read while the loop resolves on; NULL on out of
 * memory. ep_snapshot_lookup has endpoints_lookup's contract. */
struct ep_snapshot;
/* Names that have not had a first outcome yet (an answer, a negative
 * answer or a failed resolution): the first rule sync after a start waits
 * for them, so it does not drop their rules for a moment. */
size_t endpoints_unsettled(const struct endpoints *ep);
struct ep_snapshot *endpoints_snapshot(const struct endpoints *ep);
size_t ep_snapshot_lookup(void *snap, const char *name, struct netaddr *out, size_t max);
void ep_snapshot_free(struct ep_snapshot *s);

void endpoints_stats(const struct endpoints *ep, struct endpoints_stats *st);

/* Pure: names in reg that need resolving (hostname endpoints of DNS /
 * DNS_ROUND_ROBIN hosts with a VIP, or the host itself). Calls cb per name
 * (duplicates possible). */
void endpoints_names(const struct registry *reg, void (*cb)(void *arg, const char *name), void *arg);

/* Blocking one-shot resolution (for `sedns rules` without a daemon):
 * tries each upstream in turn with timeout_ms each. */
size_t endpoints_resolve_blocking(const struct config_endpoint *ups, size_t nups, uint64_t timeout_ms,
    const char *name, struct netaddr *out, size_t max);

#endif
