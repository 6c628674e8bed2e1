/*
 * nftdiff — the nft commands that turn one rendered rule set into another.
 *
 * Both inputs are rules_render's nft text (one table: the services verdict
 * map, the vips set, the hook chains, one svc_* chain per service). The
 * output is an nft -f payload, one kernel transaction, that sends only what
 * changed, as kube-proxy's nftables proxier does: new service chains are
 * added, changed ones flushed and refilled, map and set elements added and
 * deleted one by one, removed chains deleted after the elements that point
 * at them. Anything outside those parts (hook chains, masquerade, types)
 * differing means "apply the new text whole".
 *
 * Pure: no I/O. The caller owns out (reset first).
 */
#ifndef SEDNS_NFTDIFF_H
#define SEDNS_NFTDIFF_H

#include <stddef.h>

#include "rules.h"

enum nftdiff_result {
	NFTDIFF_SAME,       /* nothing to send */
	NFTDIFF_DELTA,      /* out holds the commands */
	NFTDIFF_FULL,       /* the skeleton differs or a text did not parse:
	                       apply the new text as it is */
	NFTDIFF_OOM,
};

struct nftdiff_stats {
	size_t chains_added, chains_changed, chains_deleted;
	size_t elems_added, elems_deleted;      /* services map */
	size_t vips_added, vips_deleted;        /* vips set */
};

enum nftdiff_result nftdiff(const char *old, const char *new, struct rules_buf *out, struct nftdiff_stats *st);

#endif
