/*
 * firewall — applies rendered rules (rules.c) to the kernel.
 *
 * iptables: one `iptables-restore -w --noflush` transaction fed on stdin;
 * sedns chains that exist in the kernel but are not in the payload are
 * flushed and deleted in that same transaction (so a failure leaves the old
 * state whole); then the jumps from the built-in chains (nat PREROUTING and
 * OUTPUT -> SEDNS-SERVICES, nat POSTROUTING -> SEDNS-POSTROUTING with
 * masquerade, filter INPUT/FORWARD/OUTPUT -> SEDNS-FILTER) are checked with
 * -C and inserted only when missing. nft: `nft -f -` with the payload, which
 * replaces table ip sedns atomically.
 *
 * These calls block (they run child processes): the daemon calls them from a
 * forked child (see serve.c), `sedns rules` calls them directly. Every child
 * process is bounded by a timeout.
 */
#ifndef SEDNS_FIREWALL_H
#define SEDNS_FIREWALL_H

#include <stdbool.h>
#include <stddef.h>

#define FIREWALL_TIMEOUT_S 300   /* default; rules.apply_timeout */

/* Longest a child tool may run (iptables-restore of 10k services takes
 * minutes on some kernels). */
void firewall_set_timeout(unsigned seconds);

/* format: enum rules_format. err receives the failing tool's stderr. pool
 * ("240.240.0.0/16"): iptables hooks jump to sedns's chains only for
 * packets to it (NULL: for every packet). */
bool firewall_apply(int format, const char *payload, size_t len, bool masquerade, const char *pool, char *err,
    size_t errlen);
/* Removes every chain, jump (guarded by pool or not) and table sedns owns. */
bool firewall_cleanup(int format, const char *pool, char *err, size_t errlen);

/* Runs argv with stdin from `in` (may be NULL), capturing stdout (malloc'd,
 * NUL-terminated, into *out when out != NULL) and stderr (into err).
 * Returns the exit status, or -1 when it could not run or timed out. */
int firewall_run(char *const argv[], const char *in, size_t inlen, char **out, char *err, size_t errlen);

/* Pure: the payload with "-X" deletions added to its *nat section for every
 * chain in existing[] that the payload does not declare. malloc'd. */
char *firewall_add_stale_deletions(const char *payload, const char *const *existing, size_t nexisting);

#endif
