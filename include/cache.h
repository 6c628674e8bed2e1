/*
 * cache — the answer cache for forwarded replies (a packet cache, as
 * dnsdist has): one entry per question holds the upstream reply's wire.
 *
 * Key: the QNAME lower-cased, QTYPE, QCLASS and the query bits that change
 * the answer (DO, CD, and whether the query had EDNS). RD=0 queries and
 * queries carrying an EDNS Client Subnet option are not cached. Stored
 * replies have their EDNS options dropped (a COOKIE is per client) and are
 * kept only when the OPT is the last RR.
 *
 * Lifetime: a positive answer lives the smallest TTL of its answer RRs,
 * clamped to [min_ttl, max_ttl]; NXDOMAIN and NODATA live min(SOA TTL, SOA
 * MINIMUM) (RFC 2308) capped by max_negative_ttl, or min_ttl when the reply
 * has no SOA. Other rcodes and TC=1 replies are never stored. An expired
 * entry stays usable for serve-stale (RFC 8767) for stale_max more.
 *
 * On a hit the stored reply is copied out with the client's ID and
 * question bytes (its case), and every TTL but the OPT's lowered by the
 * entry's age (30 for a stale answer).
 *
 * Bounded: size entries, allocated once (the table is calloc'd, so pages a
 * node never fills are never touched); eviction is CLOCK, O(1) amortised. A
 * hit allocates nothing; an insert may (the reply buffer, reused when it
 * fits). Single-threaded: the event loop owns it. Pure apart from malloc:
 * the time is passed in.
 */
#ifndef SEDNS_CACHE_H
#define SEDNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnswire.h"

#define CACHE_KEY_MAX (DNS_MAX_NAME + 5)

struct cache_key {
	uint8_t b[CACHE_KEY_MAX];
	uint16_t len;
	uint32_t hash;
};

struct cache_opts {
	size_t size;                  /* entries; 0 = no cache */
	uint32_t min_ttl, max_ttl, max_negative_ttl; /* seconds */
	uint32_t stale_max;           /* seconds after expiry; 0 = no stale */
};

struct cache_stats {
	uint64_t hits, misses, inserts, evictions, stale, prefetches;
	uint64_t entries;
};

/* What a lookup found, for logs, CH TXT and prefetch. */
struct cache_hit {
	bool found;                   /* answered from the cache */
	bool stale;                   /* expired, served per RFC 8767 */
	uint32_t ttl_left;            /* seconds until expiry (0 when stale) */
	bool prefetch;                /* popular and in the last 10 % of its
	                                 life: the caller should refresh it (set
	                                 once per entry life) */
};

struct cache;

struct cache *cache_new(const struct cache_opts *o);
void cache_free(struct cache *c);
/* New TTL bounds (reload); the size is kept. */
void cache_set_opts(struct cache *c, const struct cache_opts *o);

/* Pure: the key of a parsed query (q from dnswire_parse_query(pkt)).
 * False when the query is not cacheable. */
bool cache_key(const uint8_t *pkt, size_t len, const struct dns_query *q, struct cache_key *k);

/* A fresh entry (or, with stale_ok, one expired less than stale_max ago)
 * for k: the reply for the client whose query is pkt is written to out and
 * its length returned; 0 on a miss (or cap too small). */
size_t cache_lookup(struct cache *c, const struct cache_key *k, const uint8_t *pkt, size_t plen, double now,
    bool stale_ok, uint8_t *out, size_t cap, struct cache_hit *hit);
/* Only looks: seconds left for k (negative: expired that long ago), false
 * when absent. For CH TXT / debug pages. */
bool cache_peek(const struct cache *c, const struct cache_key *k, double now, double *left, unsigned *rcode);

/* Stores an upstream reply (already checked by the forwarder) under k.
 * True when it was cacheable and stored. */
bool cache_insert(struct cache *c, const struct cache_key *k, const uint8_t *reply, size_t len, double now);
/* A refresh asked for by a hit failed: the entry may ask again. */
void cache_prefetch_failed(struct cache *c, const struct cache_key *k);

void cache_flush(struct cache *c);
void cache_stats(const struct cache *c, struct cache_stats *st);
/* The caller counts refreshes it started (they happen outside the cache). */
void cache_count_prefetch(struct cache *c);

#endif
