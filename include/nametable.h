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

struct nt_entry {
	const char *name;               /* host name (registry's string) */
	const struct reg_host *host;
	struct netaddr v4[REG_MAX_ADDRS];
	size_t n4;
	struct netaddr v6[REG_MAX_ADDRS];
	size_t n6;
};

struct nametable;

struct nt_result {
	const struct nt_entry *entry;
	bool via_cname;                 /* answer = CNAME qname -> entry->name,
	                                   then entry's records */
	bool via_wildcard;              /* records owned by the query name */
};

/* Takes ownership of reg. suffixes are copied. NULL on out of memory. */
struct nametable *nametable_build(struct registry *reg, const char *cluster_domain,
    char *const *extra_suffixes, size_t nextra);
void nametable_free(struct nametable *nt);

/* Client namespace: NULL = no namespace view (everything visible). */
bool nametable_lookup(const struct nametable *nt, const char *qname, struct nt_result *res);
/* Host name for a VIP (PTR), or NULL. */
const char *nametable_ptr(const struct nametable *nt, const struct netaddr *a);
const struct registry *nametable_registry(const struct nametable *nt);
size_t nametable_size(const struct nametable *nt);

#endif
