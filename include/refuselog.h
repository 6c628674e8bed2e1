/*
 * refuselog — which clients sedns refuses, grouped by source prefix, for a
 * log that names them without flooding (pure: the caller passes the time
 * and does the logging).
 *
 * A refusal (a query from outside allow_from, a TCP connection closed at
 * accept for the same reason) is grouped by its source's /24 (IPv4) or /56
 * (IPv6) and its reason. The first refusal of a group is to be logged at
 * once (refuselog_note says so); later ones are only counted, and
 * refuselog_flush, called once a period, hands out each group's count since
 * the last report. A group quiet for REFUSELOG_FORGET_PERIODS periods is
 * forgotten (its next refusal is "first" again).
 *
 * Memory is fixed: at most REFUSELOG_MAX groups, in the struct itself. When
 * every slot is taken, the group seen least recently that had no refusal
 * this period is reused; when all had one, the refusal is counted in
 * `others` (reported by the flush as one number) and not tracked. So a
 * period logs at most REFUSELOG_MAX "first" lines and REFUSELOG_MAX counts,
 * however many sources a flood spoofs.
 */
#ifndef SEDNS_REFUSELOG_H
#define SEDNS_REFUSELOG_H

#include <stdbool.h>
#include <stdint.h>

#include "netaddr.h"

#define REFUSELOG_MAX 128
#define REFUSELOG_FORGET_PERIODS 10
#define REFUSELOG_V4_BITS 24
#define REFUSELOG_V6_BITS 56

enum refuse_reason {
	REFUSE_ALLOW_FROM = 0,   /* a query from outside allow_from */
	REFUSE_ALLOW_FROM_TCP,   /* a TCP connection from outside it */
	REFUSE_NREASONS
};

struct refuselog_group {
	struct netprefix pfx;
	enum refuse_reason reason;
	uint64_t count;          /* since the last report */
	uint64_t total;          /* since first seen */
	double last_seen;
	unsigned quiet;          /* periods without a refusal */
	bool seen;               /* refused in this period */
	bool used;
};

struct refuselog {
	struct refuselog_group g[REFUSELOG_MAX];
	uint64_t others;         /* untracked refusals since the last flush */
};

const char *refuselog_reason_name(enum refuse_reason r);
/* The group a client falls in (/24 or /56). */
void refuselog_prefix(const struct netaddr *client, struct netprefix *out);
/* Counts one refusal at now. True: the first of its group (log it now);
 * *pfx is its prefix either way. */
bool refuselog_note(struct refuselog *rl, const struct netaddr *client, enum refuse_reason reason, double now,
    struct netprefix *pfx);
/* Once a period: cb for every group with a count (then reset), and
 * *others (then reset). Forgets long-quiet groups. */
void refuselog_flush(struct refuselog *rl,
    void (*cb)(void *arg, const struct refuselog_group *g), void *arg, uint64_t *others);
/* Groups tracked now. */
size_t refuselog_groups(const struct refuselog *rl);

#endif
