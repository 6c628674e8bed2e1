/*
 * metrics — a snapshot of every counter sedns exposes, and its Prometheus
 * text rendering (pure). The daemon fills a struct metrics_snapshot from the
 * modules' stats structs when /metrics is scraped; metrics_render turns it
 * into text exposition format 0.0.4, every name prefixed "sedns_".
 *
 * Histograms use fixed bucket bounds (seconds) shared by every latency
 * metric; struct histo is plain data, updated on the hot path with
 * histo_observe (no allocation, a handful of comparisons).
 */
#ifndef SEDNS_METRICS_H
#define SEDNS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define HISTO_NBUCKETS 12
/* upper bounds in seconds: 50us 100us 250us 500us 1ms 2.5ms 5ms 10ms 25ms 100ms 500ms 2.5s (+Inf implicit) */
extern const double histo_bounds[HISTO_NBUCKETS];

struct histo {
	uint64_t buckets[HISTO_NBUCKETS]; /* NON-cumulative counts per bucket */
	uint64_t inf;                     /* above the last bound */
	uint64_t count;
	double sum;                       /* seconds */
};

void histo_observe(struct histo *h, double seconds);

#define METRICS_MAX_UPSTREAMS 64

struct metrics_upstream {
	char zone[256];                   /* forward zone, "." = default */
	char addr[NETADDR_STRLEN + 8];    /* "ADDR:PORT" */
	uint64_t requests, failures, timeouts;
	bool healthy;
};

struct metrics_snapshot {
	/* queries */
	uint64_t q_a, q_aaaa, q_ptr, q_other;             /* by type */
	uint64_t local, forwarded, nxdomain, servfail, refused, formerr, notimp, dropped, chaos;
	uint64_t nxdomain_rewritten;
	uint64_t addr_conflicts;                          /* hosts refused: VIP squat */
	uint64_t cached;                                  /* answered from the cache */
	uint64_t tcp_refused_acl, tcp_refused_per_client, tcp_lifetime_ends, tcp_out_dropped, quota_hits;
	uint64_t refused_acl, refused_chaos;              /* REFUSED queries by reason */
	uint64_t refused_prefixes;                        /* refused sources tracked */
	bool cache_on;
	uint64_t cache_hits, cache_misses, cache_entries, cache_evictions, cache_prefetches, cache_stale,
	    cache_coalesced;
	struct histo local_latency;                       /* parse → reply built */
	struct histo upstream_latency;                    /* submit → reply relayed */
	/* forwarding */
	struct metrics_upstream upstreams[METRICS_MAX_UPSTREAMS];
	size_t nupstreams;
	uint64_t pending, pending_full, tcp_retries, spoofed;
	/* tcp */
	uint64_t tcp_conns, tcp_accepted, tcp_cap_reached;
	/* vips */
	uint64_t pool_size, vips_active, vips_held, vips_exhausted;
	/* VIP store durability */
	bool store_writable, state_lock_held;
	uint64_t vips_missing_readonly;   /* hosts forwarded: store read-only */
	uint64_t store_write_failures, backups_ok, backups_failed;
	double backup_age_seconds;        /* -1: no backup yet */
	/* config */
	uint64_t serviceentries, serviceentries_rejected, hosts, files_kept;
	uint64_t reloads_ok, reloads_failed;
	/* rules */
	uint64_t rule_syncs_ok, rule_syncs_failed;
	double rule_sync_seconds;                         /* last apply */
	double rule_render_seconds;                       /* last render */
	bool rules_last_ok;
	uint64_t rule_applies_full, rule_applies_incremental, rule_applies_adopted;
	/* endpoints */
	uint64_t endpoint_names, endpoint_resolutions, endpoint_failures, endpoint_changes;
	uint64_t endpoint_negative, endpoint_deferred;
	/* kubernetes: the kinds watched (nkube 0: the API is no source) */
	struct metrics_kube {
		const char *kind;                         /* "serviceentries", "pods" */
		uint64_t requests, watches, watch_restarts, lists, relists, failures, expired;
		uint64_t events[4];                       /* added, modified, deleted, bookmark */
		uint64_t objects;
		double last_sync_age;                     /* seconds; -1: no LIST yet */
	} kube[2];
	size_t nkube;
	/* process */
	const char *version;
	double start_time;                                /* unix seconds */
};

/* Appends the exposition text to buf (malloc'd, grown as needed, NUL-
 * terminated; *len updated). Returns false on out of memory. */
bool metrics_render(const struct metrics_snapshot *m, char **buf, size_t *len, size_t *cap);

#endif
