/*
 * nametable — the immutable lookup structure the query path reads.
 *
 * Built from a registry whose VIPs are assigned; owns that registry from
 * then on (nametable_free frees it). Never changed after build: a reload
 * builds a new table and the server swaps its pointer, so a query never sees
 * a half-built table. Lookups allocate nothing.
 *
 * Lookup order for a query name (lower-case, no trailing dot):
 *   1. exact host;
 *   2. wildcard hosts: the longest "*.suffix" that the name is under
 *      (the apex itself never matches);
 *   3. search-path expansions: NAME.<ns>.svc.<cluster domain>,
 *      NAME.svc.<cluster domain>, NAME.<cluster domain> and NAME.<extra
 *      suffix> answer a CNAME to NAME followed by NAME's records.
 */
#ifndef SEDNS_NAMETABLE_H
#define SEDNS_NAMETABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"
#include "registry.h"

#define NT_MAX_SUFFIXES 16

/* The A and AAAA records of an answer. An entry's point into its registry
 * host's addrs (which nametable_build orders IPv4 first), so a table costs
 * no copy of them; a variant's into its own store. */
struct nt_addrs {
	const struct netaddr *v4;
	const struct netaddr *v6;
	uint32_t n4, n6;
};

/* spec.addresses of the entries of one namespace, when a host is declared
 * in several namespaces with different addresses: a client of that
 * namespace is answered with these. */
struct nt_variant {
	const char *ns;
	struct nt_addrs addrs;
	struct netaddr *store;          /* owned: addrs point here */
	size_t nstore;
};

/* 48 bytes, one per answered host; the name is host->name. */
struct nt_entry {
	const struct reg_host *host;
	struct nt_addrs addrs;          /* merged answer */
	struct nt_variant *variants;    /* may be NULL */
	uint32_t nvariants;
};

struct nametable;

struct nt_result {
	const struct nt_entry *entry;
	const struct nt_addrs *addrs;   /* what to answer (entry's or a
	                                   namespace variant) */
	bool via_cname;                 /* answer = CNAME qname -> entry->name,
	                                   then entry's records */
	bool via_wildcard;              /* records owned by the query name */
	size_t target_len;              /* the name the records belong to is
	                                   qname[0..target_len): the query name
	                                   itself, or (via_cname) the name left
	                                   after the search suffix; never "*" */
};

struct workloads;

/* Takes ownership of reg and of wl (may be NULL: no namespace views).
 * suffixes are copied. NULL on out of memory (ownership stays with the
 * caller then). */
struct nametable *nametable_build(struct registry *reg, const char *cluster_domain,
    char *const *extra_suffixes, size_t nextra, struct workloads *wl);
void nametable_free(struct nametable *nt);

/* Lookup without a namespace view: every host is visible. */
bool nametable_lookup(const struct nametable *nt, const char *qname, struct nt_result *res);
/*
 * Lookup as seen by a client. Without workloads this is nametable_lookup.
 * With workloads: the client's namespace comes from its IP; a host is
 * visible when one of its ServiceEntries is exported to that namespace
 * (clients not in the list see only hosts exported to "*"); HOST.<ns>.svc
 * expansions match only the client's own namespace; a host declared in
 * several namespaces answers with the client's namespace's addresses.
 * *ns_out (may be NULL) gets the namespace or NULL.
 */
bool nametable_lookup_client(const struct nametable *nt, const char *qname, const struct netaddr *client,
    struct nt_result *res, const char **ns_out);
bool nametable_has_workloads(const struct nametable *nt);
/* Host name for a VIP (PTR), or NULL. */
const char *nametable_ptr(const struct nametable *nt, const struct netaddr *a);
const struct registry *nametable_registry(const struct nametable *nt);
size_t nametable_size(const struct nametable *nt);

#endif
