/*
 * iptdiff — the iptables-restore --noflush payload that turns one rendered
 * iptables rule set into another.
 *
 * Both inputs are rules_render's iptables text (*nat and *filter sections
 * of ":CHAIN - [0:0]" declarations and "-A CHAIN ..." rules). The output
 * sends only what changed, as kube-proxy does with MinimizeIPTablesRestore:
 * a new chain is declared and filled, a changed chain is declared again
 * (which flushes it under --noflush) and refilled, a removed chain is
 * flushed and deleted (-X) after everything that pointed at it is gone.
 *
 * SEDNS-SERVICES and SEDNS-FILTER hold one group of rules per VIP (the
 * rules with that "-d VIP/32"); the order of the groups does not matter,
 * the order inside a group does. Rewriting a 10k-rule chain for one new
 * host costs ~1.5 s in iptables-nft, so these two are changed group by
 * group: the old rules of a changed or removed group are deleted (-D by
 * their spec), the new group appended whole. After a delta those two
 * chains can hold their groups in another order than a full apply would.
 *
 * Pure: no I/O. The caller owns out (reset first).
 */
#ifndef SEDNS_IPTDIFF_H
#define SEDNS_IPTDIFF_H

#include <stddef.h>

#include "rules.h"

enum iptdiff_result {
	IPTDIFF_SAME,       /* nothing to send */
	IPTDIFF_DELTA,      /* out holds the payload */
	IPTDIFF_FULL,       /* a text did not parse or the tables differ:
	                       apply the new text whole */
	IPTDIFF_OOM,
};

struct iptdiff_stats {
	size_t chains_added, chains_changed, chains_deleted;
	size_t rules_added, rules_deleted;      /* in the per-VIP chains */
};

enum iptdiff_result iptdiff(const char *old, const char *new, struct rules_buf *out, struct iptdiff_stats *st);

#endif
