/*
 * registry — ServiceEntries merged into one record per lower-cased hostname.
 *
 * Pure: takes a loaded se_set and computes, per host, what the DNS side
 * answers (explicit addresses, istiod's status addresses, a VIP, or nothing =
 * forward) and the endpoint list per port that the rules side uses.
 *
 * Ownership: registry_build takes ownership of the se_set (moved into the
 * registry; the caller's struct is reset). Every pointer inside a registry
 * (hosts, ports, endpoints, entry pointers) lives until registry_free.
 * A registry is immutable once VIPs are assigned; reloads build a new one.
 * Host names, entry lists, ports and endpoints are slices of one block the
 * registry owns (a reload at 50k hosts would otherwise make a quarter of a
 * million allocations and fault in their pages one by one): nothing of a
 * registry is freed or reallocated on its own, except a host's addrs, which
 * only reg_host_add_addr grows.
 */
#ifndef SEDNS_REGISTRY_H
#define SEDNS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "netaddr.h"
#include "serviceentry.h"

struct vipstore;
struct vipstore_stats;

enum reg_answer {
	REG_FORWARD = 0,   /* nothing local: forward upstream */
	REG_ADDRESSES,     /* spec.addresses (plain IPs, /32, /128) */
	REG_STATUS,        /* status.addresses from istiod's allocator */
	REG_VIP,           /* our allocated VIP */
};

/* One DNAT target of a port: 32 bytes (150,000 of them at 50k hosts), so
 * what the ServiceEntry holds is read from it, not copied. */
struct reg_endpoint {
	const struct serviceentry *se;  /* where it came from */
	struct netaddr ip;              /* family 0 unless the address is an IP */
	uint16_t port;                  /* target port on the endpoint */
	uint16_t idx;                   /* se->endpoints[idx] */
};

static inline const char *
reg_ep_address(const struct reg_endpoint *e)
{
	return e->se->endpoints[e->idx].address;
}

static inline bool
reg_ep_is_ip(const struct reg_endpoint *e)
{
	return e->ip.family != 0;
}

/* >= 1 (an unset weight counts 1) */
static inline uint32_t
reg_ep_weight(const struct reg_endpoint *e)
{
	uint32_t w = e->se->endpoints[e->idx].weight;
	return w ? w : 1;
}

/* Fields ordered (and counts 32-bit) for size: 50,000 hosts hold one
 * of these per port and one reg_host each. */
struct reg_port {
	const char *name;               /* may be NULL */
	const char *protocol;           /* as written; NULL = unset */
	const struct serviceentry *owner; /* entry whose definition won */
	struct reg_endpoint *eps;
	uint32_t neps;
	uint16_t number;
	bool udp;                       /* protocol UDP: DNAT udp; else tcp */
	bool resolve_host;              /* DNS resolution, no endpoints: the
	                                   host itself is resolved upstream */
};

#define REG_MAX_ADDRS 64
/* DNAT targets (hosts x ports x endpoints) the entries of one namespace may
 * hold together; entries past it, in load order, are left out with an
 * error. One tenant cannot fill a node's memory with many entries each
 * under SE_MAX_TARGETS. */
#define REG_MAX_NS_TARGETS (1u << 20)

struct reg_host {
	const char *name;               /* lower-case, no trailing dot; borrowed:
	                                   the ServiceEntry's (shared, never written)
	                                   or the registry block's copy */
	const struct serviceentry **entries; /* oldest first */
	struct reg_port *ports;         /* sorted by number */
	struct netaddr *addrs;          /* what A/AAAA answer (at most
	                                   REG_MAX_ADDRS): reg_host_add_addr */
	uint32_t nentries;
	uint32_t nports;
	uint32_t naddrs, addrcap;
	enum se_resolution resolution;  /* of the oldest entry */
	enum reg_answer answer;
	bool wildcard;                  /* "*.example.com" */
	bool addrs_shared;              /* private: addrs is the two slots
	                                   the registry's block keeps for a
	                                   VIP pair (false: malloc'd, owned) */
	bool wants_vip;                 /* eligible for auto-allocation */
	bool vip_exhausted;             /* wanted one, pool full */
	bool addr_conflict;             /* spec.addresses name another host's
	                                   VIP: not answered */
};

struct reg_diag {
	enum se_severity severity;
	char *message;                  /* "FILE:LINE:COL: ns/name: ...: ..." */
};

struct registry {
	struct se_set set;              /* owned */
	struct reg_host *hosts;         /* sorted by name */
	size_t nhosts;
	struct reg_diag *diags;         /* merge warnings */
	size_t ndiags;
	int refs;                       /* registry_hold / registry_free */
	/* private */
	size_t diagcap;
	void *block;                    /* bigmem: hosts, names, entry
	                                   lists, ports, endpoints */
	size_t block_len;
};

struct tenancy;

/* Builds the registry from set (ownership moves in). Hosts the tenancy
 * policy t refuses (another namespace's names, public suffixes, the cluster
 * domain) are left out with an error diagnostic; t NULL allows every host.
 * NULL on out of memory. */
struct registry *registry_build(struct se_set *set, const struct tenancy *t);
/* Reference counted (atomically): the rule render thread holds the registry
 * it renders while the loop installs the next one. registry_free drops a
 * reference and frees at the last. */
void registry_hold(struct registry *reg);
/* Appends a to h->addrs unless it is there or the host has REG_MAX_ADDRS;
 * false on out of memory. */
bool reg_host_add_addr(struct reg_host *h, const struct netaddr *a);
void registry_free(struct registry *reg);

/* Exact host lookup (name lower-case, no trailing dot). */
const struct reg_host *registry_find(const struct registry *reg, const char *name);

/* Every address that spec.addresses / status.addresses put on any host:
 * never handed out as a VIP. Returns a malloc'd array (caller frees). */
struct netaddr *registry_reserved(const struct registry *reg, size_t *n);

/*
 * Allocates / refreshes VIPs for every host that wants one, in one store
 * transaction, and fills those hosts' addrs. Hosts that already answer from
 * addresses are untouched, except that spec.addresses inside the VIP pool
 * that are another host's VIP (active or held) are a conflict: that host
 * loses (forwarded, addr_conflict, an error diagnostic), the VIP stays where
 * it is. status.addresses (istiod's own allocation) win over our VIPs: the
 * VIP holder moves. When the wanting hosts and the reserved addresses are
 * those of the last sync (vipstore_unchanged), the VIPs come from the
 * store's copy without a transaction (stats->unchanged). Returns false on
 * store failure (err set).
 */
bool registry_assign_vips(struct registry *reg, struct vipstore *vs, time_t now,
    struct vipstore_stats *stats, char *err, size_t errlen);
/* Same, read-only: looks VIPs up without allocating (`sedns rules`, and the
 * daemon while its store cannot be written). A VIP that is now another
 * host's address is not used. Returns how many hosts that want a VIP have
 * none (they are forwarded). */
size_t registry_lookup_vips(struct registry *reg, struct vipstore *vs);

/* "vip", "spec.addresses", "status.addresses" or "forward". */
const char *registry_answer_name(enum reg_answer a);

/* True when the entry is visible from namespace ns per exportTo
 * (no exportTo = "*"). */
bool registry_exported_to(const struct serviceentry *se, const char *ns);

#endif
