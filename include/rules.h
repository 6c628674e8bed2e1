/*
 * rules — VIP → endpoint DNAT rules rendered as iptables-restore or nft text.
 *
 * Pure: takes a registry (hosts whose answer is REG_VIP) and returns text in
 * a caller-owned growable buffer; no I/O, no global state. Applying the text
 * (iptables-restore --noflush / nft -f), hooking the chains from the built-in
 * ones and removing stale chains is firewall.c's business.
 *
 * iptables (kube-proxy style), one --noflush transaction:
 *   *nat
 *   SEDNS-SERVICES       one rule per VIP:port:proto → SEDNS-SVC-<hash>
 *   SEDNS-SVC-<hash>     picks an endpoint: -m statistic --mode random
 *                        --probability w_i / (sum of remaining weights),
 *                        10 decimals, the last endpoint unconditional
 *   SEDNS-SEP-<hash>     -j DNAT --to-destination IP:PORT
 *   SEDNS-MARK-MASQ,     only with masquerade: SEP chains mark, the
 *   SEDNS-POSTROUTING    postrouting chain masquerades marked packets
 *   *filter
 *   SEDNS-FILTER         rejects whatever still goes to a VIP (see rules.c)
 * The applier hooks SEDNS-SERVICES from nat PREROUTING and OUTPUT,
 * SEDNS-POSTROUTING from nat POSTROUTING and SEDNS-FILTER from filter INPUT,
 * FORWARD and OUTPUT.
 *
 * Chain names are "SEDNS-SVC-"/"SEDNS-SEP-" + 16 base32 characters of a
 * SHA-256 over host/port/proto (SEP: plus endpoint ip:port), 26 characters:
 * an unchanged service renders byte for byte the same across runs and
 * whatever other hosts come and go.
 *
 * nft: one private table "ip sedns", replaced atomically by the
 * "table ip sedns {}" / "delete table ip sedns" / "table ip sedns { ... }"
 * idiom. Nothing needs hooking: its base chains hook themselves.
 *
 * Only IPv4 VIPs and IPv4 endpoints are rendered (both formats).
 */
#ifndef SEDNS_RULES_H
#define SEDNS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

struct registry;

#define RULES_DEFAULT_MASQ_MARK 0x2000u
#define RULES_CHAIN_MAX         28      /* iptables chain name limit */
#define RULES_NFT_TABLE         "sedns" /* family ip */

/* Static iptables chains (always declared, except the masquerade pair which
 * only exists with masquerade on). */
#define RULES_CHAIN_SERVICES    "SEDNS-SERVICES"     /* nat */
#define RULES_CHAIN_MARK_MASQ   "SEDNS-MARK-MASQ"    /* nat */
#define RULES_CHAIN_POSTROUTING "SEDNS-POSTROUTING"  /* nat */
#define RULES_CHAIN_FILTER      "SEDNS-FILTER"       /* filter */

enum rules_format {
	RULES_FMT_IPTABLES = 0,
	RULES_FMT_NFT,
	RULES_FMT_AUTO,         /* config only: resolved once per process
	                           (config.c, firewall_detect_format) */
};

struct rules_opts {
	enum rules_format format;
	bool masquerade;             /* rules.masquerade */
	uint32_t masq_mark;          /* one bit; 0 = RULES_DEFAULT_MASQ_MARK */
	/*
	 * rules_render_cleanup only (iptables): sedns chains that exist in the
	 * nat table, from iptables-save. Stale chains of a normal apply are
	 * added to the payload by firewall_add_stale_deletions, which sees the
	 * kernel. Borrowed for the duration of the call.
	 */
	const char *const *existing_chains;
	size_t nexisting;
	/* VIPs on hold (their host was removed): rejected like an undeclared
	 * port, so clients with a cached answer fail at once. Borrowed. */
	const struct netaddr *held;
	size_t nheld;
};

/*
 * Current IPv4 addresses of a hostname (a DNS-resolution endpoint address,
 * or the host itself): writes at most max addresses to out and returns how
 * many; 0 when never resolved (the port is then rejected). Non-IPv4
 * addresses in the answer are ignored. A render asks for a name once per
 * pass and per port: it must answer the same throughout one render (the
 * daemon's is a snapshot, `sedns rules` keeps each answer), or the parts
 * of the text disagree.
 */
typedef size_t (*rules_resolve_fn)(void *arg, const char *hostname,
    struct netaddr *out, size_t max);

/* Where rules_render_to hands the text, in order, in pieces; false stops
 * the render (it then fails). */
typedef bool (*rules_sink_fn)(void *arg, const char *data, size_t len);

/* Growable output buffer: zero-initialise it; data is malloc'd and
 * NUL-terminated, owned by the caller (rules_buf_free). oom is sticky. */
struct rules_buf {
	char *data;
	size_t len, cap;
	bool oom;
	/* private to rules_render_to: a streamed buffer hands its text to
	 * sink before it would grow past spill bytes; sent counts it */
	rules_sink_fn sink;
	void *sink_arg;
	size_t spill, sent;
};

/* NULL if the options are usable, else a static English reason (a mark that
 * is not a single bit or collides with kube-proxy 0x4000/0x8000 or Calico's
 * 0xffff0000 range). */
const char *rules_opts_problem(const struct rules_opts *o);

/*
 * Renders the whole rule set for reg into out (out is reset first; its
 * storage is reused). The text is written front to back, one pass over the
 * registry per part of it (resolve is called again in each). resolve may be
 * NULL (hostname endpoints then have no addresses). Returns false on out of
 * memory or unusable options; out is then unspecified (but still safe to
 * free).
 */
bool rules_render(const struct registry *reg, const struct rules_opts *o,
    rules_resolve_fn resolve, void *arg, struct rules_buf *out);

/*
 * The same text, handed to sink in pieces of about chunk bytes (0:
 * RULES_SINK_CHUNK) instead of held whole: a dry run at 50k hosts writes
 * 20 MB of rules to a file and keeps only its fingerprint. *len is the
 * text's length. False on out of memory, unusable options or a sink that
 * failed.
 */
#define RULES_SINK_CHUNK ((size_t)1 << 20)
bool rules_render_to(const struct registry *reg, const struct rules_opts *o, rules_resolve_fn resolve, void *arg,
    rules_sink_fn sink, void *sink_arg, size_t chunk, size_t *len);

/*
 * Payload removing everything sedns owns. nft: "delete table ip sedns"
 * (after creating it, so it never fails when absent). iptables: flushes and
 * deletes the static chains plus the nat chains named in
 * o->existing_chains (the applier lists them with iptables-save and keeps
 * those rules_is_own_chain accepts). The jumps from the built-in chains must
 * be deleted (iptables -D) before this payload is applied.
 */
bool rules_render_cleanup(const struct rules_opts *o, struct rules_buf *out);

/* True for a chain name sedns owns ("SEDNS-" prefix). */
bool rules_is_own_chain(const char *name);

/* Chain name for a service port / endpoint, as used in the iptables output
 * (buf at least RULES_CHAIN_MAX + 1 bytes). proto is "tcp" or "udp". */
void rules_svc_chain(const char *host, uint16_t port, const char *proto,
    char *buf, size_t len);
void rules_sep_chain(const char *host, uint16_t port, const char *proto,
    const struct netaddr *ep, uint16_t ep_port, char *buf, size_t len);

void rules_buf_free(struct rules_buf *b);
/* Appends to b (oom sticky on failure). */
void rules_buf_printf(struct rules_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
