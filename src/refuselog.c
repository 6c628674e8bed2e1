/* refuselog — see include/refuselog.h. */
#include "refuselog.h"

#include <string.h>

const char *
refuselog_reason_name(enum refuse_reason r)
{
	return r == REFUSE_ALLOW_FROM_TCP ? "allow_from_tcp" : "allow_from";
}

void
refuselog_prefix(const struct netaddr *client, struct netprefix *out)
{
	memset(out, 0, sizeof(*out));
	out->addr.family = client->family;
	out->len = client->family == AF_INET ? REFUSELOG_V4_BITS : REFUSELOG_V6_BITS;
	/* both widths are whole bytes */
	memcpy(out->addr.a, client->a, out->len / 8);
}

bool
refuselog_note(struct refuselog *rl, const struct netaddr *client, enum refuse_reason reason, double now,
    struct netprefix *pfx)
{
	refuselog_prefix(client, pfx);
	struct refuselog_group *free_slot = NULL, *oldest = NULL;
	for (size_t i = 0; i < REFUSELOG_MAX; i++) {
		struct refuselog_group *g = &rl->g[i];
		if (!g->used) {
			if (free_slot == NULL)
				free_slot = g;
			continue;
		}
		if (g->reason == reason && g->pfx.len == pfx->len && memcmp(&g->pfx.addr, &pfx->addr, sizeof(pfx->addr)) == 0) {
			g->count++;
			g->total++;
			g->last_seen = now;
			g->seen = true;
			return false;
		}
		/* reusable: not seen this period (so nothing to report, and no
		 * "first" line for it this period: a flood from many prefixes
		 * logs at most REFUSELOG_MAX first lines a period) */
		if (!g->seen && (oldest == NULL || g->last_seen < oldest->last_seen))
			oldest = g;
	}
	struct refuselog_group *g = free_slot ? free_slot : oldest;
	if (g == NULL) {
		rl->others++;
		return false;
	}
	memset(g, 0, sizeof(*g));
	g->used = true;
	g->pfx = *pfx;
	g->reason = reason;
	g->total = 1;
	g->last_seen = now;
	g->seen = true;
	/* the first is logged by the caller, not counted for the next report */
	return true;
}

void
refuselog_flush(struct refuselog *rl, void (*cb)(void *arg, const struct refuselog_group *g), void *arg,
    uint64_t *others)
{
	for (size_t i = 0; i < REFUSELOG_MAX; i++) {
		struct refuselog_group *g = &rl->g[i];
		if (!g->used)
			continue;
		if (g->count > 0) {
			cb(arg, g);
			g->count = 0;
		}
		if (g->seen)
			g->quiet = 0;
		else if (++g->quiet >= REFUSELOG_FORGET_PERIODS)
			g->used = false;
		g->seen = false;
	}
	*others = rl->others;
	rl->others = 0;
}

size_t
refuselog_groups(const struct refuselog *rl)
{
	size_t n = 0;
	for (size_t i = 0; i < REFUSELOG_MAX; i++)
		n += rl->g[i].used;
	return n;
}
