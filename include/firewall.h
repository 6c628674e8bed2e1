/*
 * firewall — applies rendered rules (rules.c) to the kernel.
 *
 * iptables, full apply: iptables-save of nat and filter, then one
 * `iptables-restore -w --noflush` transaction fed on stdin: the payload;
 * the sedns chains the kernel has but the payload does not declare,
 * flushed and deleted; and the jumps from the built-in chains (nat
 * PREROUTING and OUTPUT -> SEDNS-SERVICES, nat POSTROUTING ->
 * SEDNS-POSTROUTING with masquerade, filter INPUT/FORWARD/OUTPUT ->
 * SEDNS-FILTER) inserted where missing and removed where doubled or of an
 * older form. A failure leaves the old state whole. iptables, delta: the
 * iptdiff payload alone, one restore. nft: `nft -f -` with the payload
 * (a full one replaces table ip sedns atomically; a delta is nftdiff's).
 *
 * These calls block (they run child processes): the daemon calls them from a
 * forked child (see serve.c), `sedns rules` calls them directly. Every child
 * process is bounded by a timeout.
 */
#ifndef SEDNS_FIREWALL_H
#define SEDNS_FIREWALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

#define FIREWALL_TIMEOUT_S 300   /* default; rules.apply_timeout */

/* Longest a child tool may run (iptables-restore of 10k services takes
 * minutes on some kernels). */
void firewall_set_timeout(unsigned seconds);

/* format: enum rules_format. delta: payload is an iptdiff/nftdiff delta
 * against what the kernel has (iptables: no listing, no jump check).
 * err receives the failing tool's stderr. pool ("240.240.0.0/16"):
 * iptables hooks jump to sedns's chains only for packets to it (NULL:
 * for every packet). */
bool firewall_apply(int format, const char *payload, size_t len, bool delta, bool masquerade, const char *pool,
    char *err, size_t errlen);

/* Pure: the whole transaction of a full iptables apply, from the rendered
 * payload and the kernel's iptables-save text of nat and filter (NULL:
 * empty): stale SEDNS chains flushed and deleted, hook jumps fixed before
 * the deletions. malloc'd; NULL on out of memory. */
char *firewall_full_payload(const char *payload, const char *nat_save, const char *filter_save, bool masquerade,
    const char *pool);

/* Pure: the restore lines (-I/-D) that make table's hook jumps right,
 * given that table's iptables-save text: exactly one jump per hook
 * (none to SEDNS-POSTROUTING without masquerade), guarded by pool. */
void firewall_jump_fixes(const char *table, const char *save_text, bool masquerade, const char *pool,
    struct rules_buf *out);
/* Removes every chain, jump (guarded by pool or not) and table sedns owns
 * in one format (`sedns rules --cleanup` calls it for each format whose
 * tool is installed). */
bool firewall_cleanup(int format, const char *pool, char *err, size_t errlen);

/* Runs argv with stdin from `in` (may be NULL), capturing stdout (malloc'd,
 * NUL-terminated, into *out when out != NULL) and stderr (into err).
 * Returns the exit status, or -1 when it could not run or timed out. */
int firewall_run(char *const argv[], const char *in, size_t inlen, char **out, char *err, size_t errlen);

/* Pure: the payload with "-X" deletions added to its *nat section for every
 * chain in existing[] that the payload does not declare. malloc'd. */
char *firewall_add_stale_deletions(const char *payload, const char *const *existing, size_t nexisting);

/* What the kernel holds of sedns's rules, as a hash: iptables, the SEDNS
 * chains and the jumps into them (nat and filter, in listing order); nft,
 * table ip sedns (lines sorted: the kernel lists elements in its own order).
 * Counters are left out. A restart compares it with the one recorded at the
 * last stop to know the kernel still holds exactly what was applied.
 * firewall_fingerprint_text is the pure part, over the listing text. */
uint64_t firewall_fingerprint_text(int format, const char *listing);
bool firewall_fingerprint(int format, uint64_t *hash, char *err, size_t errlen);

/* True when tool is an executable in PATH. */
bool firewall_tool_present(const char *tool);

/* rules.format auto: nft when the nft tool is installed and the kernel
 * filters through nf_tables (the module is loaded, or iptables is the
 * iptables-nft variant); iptables otherwise. Pure. */
int firewall_choose_format(bool nft_tool, bool nf_tables_kernel);
/* The same, from this node (looks at PATH and /sys; starts no process).
 * why receives the reason, e.g. "nft: nft installed, nf_tables loaded". */
int firewall_detect_format(char *why, size_t whylen);

#endif
