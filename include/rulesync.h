/*
 * rulesync — the daemon's side of rules: render when something changed,
 * write rules.file atomically, apply through a forked child, batch changes
 * (at most one sync per min_sync_period), retry failures with backoff.
 *
 * Handlers only mark state dirty (rulesync_mark); one deferred step renders
 * and applies (the Redis "before sleep" idea). The first sync after start is
 * applied in full unless the kernel verifiably holds what the previous
 * process applied (a fingerprint of the kernel's listing taken when idle
 * after its last apply, still matching at its clean stop and recorded then
 * in RULES_FILE.kernel, matched against a fresh listing, and the rules file
 * unchanged since): then only the difference; later ones only when the rendered text changed or
 * the last apply failed. nft changes go as a delta (nftdiff: the changed
 * service chains and map elements only); a full apply follows a failure, a
 * rules option change, and every rules.resync_period.
 *
 * The render, the comparison with what was applied, the nft delta and the
 * rules file write run on a render thread, over a held reference to the
 * registry (registry_hold) and a snapshot of the endpoint addresses taken on
 * the loop; the loop then starts the apply child. One render or apply at a
 * time; marks in between are one.
 *
 * Ownership: the registry passed to rulesync_mark is borrowed until the next
 * rulesync_mark or rulesync_free (the daemon marks the new one before
 * freeing the old; a render in flight holds its own reference). The
 * endpoints resolver and config are borrowed.
 */
#ifndef SEDNS_RULESYNC_H
#define SEDNS_RULESYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "netaddr.h"

struct event_base;
struct endpoints;
struct registry;
struct rulesync;

struct rulesync_stats {
	uint64_t syncs_ok, syncs_failed, renders, writes_failed;
	uint64_t applies_full, applies_incremental;
	uint64_t adopted;           /* starts that found their rules in the kernel */
	double last_duration_s;     /* of the last apply */
	double last_render_s;
	bool last_ok;               /* last apply succeeded (or apply is off) */
	bool in_progress;
};

struct rulesync *rulesync_new(struct event_base *base, const struct config *cfg, struct endpoints *ep);
void rulesync_free(struct rulesync *rs);
/* A new config (borrowed; the previous one may be freed after the call).
 * Forces the next apply only when a rules option changed. */
void rulesync_set_config(struct rulesync *rs, const struct config *cfg);
/* Something changed (new registry, or NULL = same registry, endpoints moved). */
void rulesync_mark(struct rulesync *rs, const struct registry *reg);
void rulesync_stats(const struct rulesync *rs, struct rulesync_stats *st);
/* Paused: nothing is rendered, written or applied (the daemon waits for the
 * state lock, and the lock holder owns the rules); marks are kept and the
 * first unpause syncs. */
void rulesync_pause(struct rulesync *rs, bool on);
/* VIPs on hold (copied): rejected by the rules until they are released. */
void rulesync_set_held(struct rulesync *rs, const struct netaddr *held, size_t n);

/* Writes data to path atomically (temp file in the same directory, fsync,
 * rename). Returns false with errno set. */
bool rulesync_write_atomic(const char *path, const char *data, size_t len);

#endif
