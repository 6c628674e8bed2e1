/* nametable — see include/nametable.h. */
#include "nametable.h"

#include "bigmem.h"
#include "tenancy.h"
#include "workloads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	uint32_t hash;
	uint32_t idx;                   /* entry index + 1; 0 = empty */
};

/* 8 bytes, not a copy of the address and a name pointer (32): at 50k VIPs
 * the table is 1 MiB instead of 4 */
struct ptr_slot {
	uint32_t host;                  /* registry host index + 1; 0 = empty */
	uint32_t addr;                  /* index in that host's addrs */
};

struct nametable {
	struct registry *reg;
	struct workloads *wl;
	struct nt_entry *entries;
	size_t nentries;
	struct slot *exact;             /* names and "*.x" keys both live here */
	size_t exact_cap;               /* power of two */
	struct ptr_slot *ptrs;
	size_t ptr_cap;
	char *suffixes[NT_MAX_SUFFIXES + 2]; /* ".svc.<cd>" first, then others */
	size_t nsuffixes;
	char *svc_suffix;               /* ".svc.<cd>" */
	char *cd;                       /* the cluster domain, lower-case */
	void *block;                    /* bigmem: entries, exact, ptrs */
	size_t block_len;
};

static uint32_t
hash_str(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

static size_t
pow2_at_least(size_t n)
{
	size_t c = 16;
	while (c < n * 2)
		c <<= 1;
	return c;
}

static const struct nt_entry *
find_len(const struct nametable *nt, const char *name, size_t len)
{
	uint32_t h = hash_str(name, len);
	size_t mask = nt->exact_cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct slot *s = &nt->exact[i];
		if (s->idx == 0)
			return NULL;
		if (s->hash != h)
			continue;
		const struct nt_entry *e = &nt->entries[s->idx - 1];
		if (strlen(e->host->name) == len && memcmp(e->host->name, name, len) == 0)
			return e;
	}
}

/* Orders a[0..n) IPv4 first, each family in its order, and points out at
 * the two runs. */
static void
split_addrs(struct nt_addrs *out, struct netaddr *a, size_t n)
{
	struct netaddr tmp[REG_MAX_ADDRS];
	size_t n4 = 0, k = 0;

	if (n > REG_MAX_ADDRS)
		n = REG_MAX_ADDRS;
	for (size_t j = 0; j < n; j++)
		if (a[j].family == AF_INET)
			tmp[k++] = a[j];
	n4 = k;
	for (size_t j = 0; j < n; j++)
		if (a[j].family == AF_INET6)
			tmp[k++] = a[j];
	if (k) /* a variant without addresses has no store */
		memcpy(a, tmp, k * sizeof(*a));
	out->v4 = a;
	out->n4 = n4;
	out->v6 = a + n4;
	out->n6 = k - n4;
}

/* Per-namespace spec.addresses for hosts declared in several namespaces. */
static bool
build_variants(struct nt_entry *e)
{
	const struct reg_host *h = e->host;
	if (h->answer != REG_ADDRESSES || h->nentries < 2)
		return true;
	e->variants = calloc(h->nentries, sizeof(*e->variants));
	if (e->variants == NULL)
		return false;
	for (size_t i = 0; i < h->nentries; i++) {
		const struct serviceentry *se = h->entries[i];
		struct nt_variant *v = NULL;
		for (size_t k = 0; k < e->nvariants; k++)
			if (strcmp(e->variants[k].ns, se->namespace) == 0)
				v = &e->variants[k];
		if (v == NULL) {
			v = &e->variants[e->nvariants++];
			v->ns = se->namespace;
		}
		for (size_t j = 0; j < se->naddresses; j++) {
			struct netprefix p;
			if (!netprefix_parse(se->addresses[j], false, &p) ||
			    p.len != (p.addr.family == AF_INET ? 32u : 128u) || v->nstore >= REG_MAX_ADDRS)
				continue;
			struct netaddr *ns = realloc(v->store, (v->nstore + 1) * sizeof(*ns));
			if (ns == NULL)
				return false;
			v->store = ns;
			v->store[v->nstore++] = p.addr;
		}
	}
	for (size_t k = 0; k < e->nvariants; k++)
		split_addrs(&e->variants[k].addrs, e->variants[k].store, e->variants[k].nstore);
	if (e->nvariants < 2) {
		for (size_t k = 0; k < e->nvariants; k++)
			free(e->variants[k].store);
		free(e->variants);
		e->variants = NULL;
		e->nvariants = 0;
	}
	return true;
}

struct nametable *
nametable_build(struct registry *reg, const char *cluster_domain, char *const *extra, size_t nextra,
    struct workloads *wl)
{
	struct nametable *nt = calloc(1, sizeof(*nt));
	if (nt == NULL)
		return NULL;
	nt->reg = reg;
	size_t n = 0, nptr = 0;
	for (size_t i = 0; i < reg->nhosts; i++) {
		if (reg->hosts[i].answer != REG_FORWARD && reg->hosts[i].naddrs)
			n++;
		if (reg->hosts[i].answer == REG_VIP)
			nptr += reg->hosts[i].naddrs;
	}
	/* one zeroed block for the three arrays (5 MB at 50k VIPs): huge
	 * pages where it is large, see bigmem.h */
	nt->exact_cap = pow2_at_least(n);
	nt->ptr_cap = pow2_at_least(nptr);
	size_t off_exact = n * sizeof(*nt->entries);
	size_t off_ptrs = off_exact + nt->exact_cap * sizeof(*nt->exact);
	nt->block_len = off_ptrs + nt->ptr_cap * sizeof(*nt->ptrs);
	if ((nt->block = bigmem_alloc(nt->block_len)) == NULL)
		goto fail;
	nt->entries = nt->block;
	nt->exact = (struct slot *)(void *)((char *)nt->block + off_exact);
	nt->ptrs = (struct ptr_slot *)(void *)((char *)nt->block + off_ptrs);
	for (size_t i = 0; i < reg->nhosts; i++) {
		struct reg_host *h = &reg->hosts[i];
		if (h->answer == REG_FORWARD || h->naddrs == 0)
			continue;
		struct nt_entry *e = &nt->entries[nt->nentries++];
		e->host = h;
		split_addrs(&e->addrs, h->addrs, h->naddrs);
		if (!build_variants(e))
			goto fail;
		uint32_t hv = hash_str(h->name, strlen(h->name));
		size_t mask = nt->exact_cap - 1;
		size_t k = hv & mask;
		while (nt->exact[k].idx)
			k = (k + 1) & mask;
		nt->exact[k].hash = hv;
		nt->exact[k].idx = (uint32_t)nt->nentries;
		if (h->answer != REG_VIP)
			continue;
		for (size_t j = 0; j < h->naddrs; j++) {
			size_t pm = nt->ptr_cap - 1, p = netaddr_hash(&h->addrs[j]) & pm;
			while (nt->ptrs[p].host)
				p = (p + 1) & pm;
			nt->ptrs[p].host = (uint32_t)i + 1;
			nt->ptrs[p].addr = (uint32_t)j;
		}
	}
	if ((nt->cd = strdup(cluster_domain)) == NULL)
		goto fail;
	for (char *c = nt->cd; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (asprintf(&nt->svc_suffix, ".svc.%s", cluster_domain) < 0) {
		nt->svc_suffix = NULL;
		goto fail;
	}
	if (asprintf(&nt->suffixes[nt->nsuffixes++], ".%s", cluster_domain) < 0)
		goto fail;
	for (size_t i = 0; i < nextra && nt->nsuffixes < NT_MAX_SUFFIXES; i++) {
		const char *s = extra[i];
		while (*s == '.')
			s++;
		if (asprintf(&nt->suffixes[nt->nsuffixes++], ".%s", s) < 0)
			goto fail;
	}
	for (size_t i = 0; i < nt->nsuffixes; i++) {
		/* the table compares lower-case names; drop a trailing dot */
		for (char *c = nt->suffixes[i]; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		size_t l = strlen(nt->suffixes[i]);
		if (l > 1 && nt->suffixes[i][l - 1] == '.')
			nt->suffixes[i][l - 1] = '\0';
	}
	nt->wl = wl;
	return nt;
fail:
	nt->reg = NULL; /* the caller keeps ownership on failure */
	nametable_free(nt);
	return NULL;
}

void
nametable_free(struct nametable *nt)
{
	if (nt == NULL)
		return;
	registry_free(nt->reg);
	workloads_free(nt->wl);
	for (size_t i = 0; i < nt->nentries; i++) {
		for (size_t k = 0; k < nt->entries[i].nvariants; k++)
			free(nt->entries[i].variants[k].store);
		free(nt->entries[i].variants);
	}
	bigmem_free(nt->block, nt->block_len);
	for (size_t i = 0; i < nt->nsuffixes; i++)
		free(nt->suffixes[i]);
	free(nt->svc_suffix);
	free(nt->cd);
	free(nt);
}

/* Exact name, then the most specific wildcard above it. */
static bool
lookup_direct(const struct nametable *nt, const char *name, size_t len, struct nt_result *res)
{
	const struct nt_entry *e = find_len(nt, name, len);
	if (e) {
		res->entry = e;
		return true;
	}
	char key[260];
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.')
			continue;
		size_t sl = len - i; /* ".suffix" */
		if (sl + 1 >= sizeof(key))
			break;
		key[0] = '*';
		memcpy(key + 1, name + i, sl);
		e = find_len(nt, key, sl + 1);
		if (e) {
			res->entry = e;
			res->via_wildcard = true;
			return true;
		}
	}
	return false;
}

static bool
ends_with(const char *s, size_t len, const char *suf, size_t *cut)
{
	size_t sl = strlen(suf);
	if (len <= sl || memcmp(s + len - sl, suf, sl) != 0)
		return false;
	*cut = len - sl;
	return true;
}

/* ns_mode: 0 = no view; 1 = client namespace ns; 2 = client unknown
 * (only hosts exported to "*"). */
static bool
visible(const struct nt_entry *e, int ns_mode, const char *ns)
{
	if (ns_mode == 0)
		return true;
	const struct reg_host *h = e->host;
	for (size_t i = 0; i < h->nentries; i++) {
		const struct serviceentry *se = h->entries[i];
		if (ns_mode == 1 && registry_exported_to(se, ns))
			return true;
		if (ns_mode == 2) {
			if (se->nexport_to == 0)
				return true;
			for (size_t k = 0; k < se->nexport_to; k++)
				if (strcmp(se->export_to[k], "*") == 0)
					return true;
		}
	}
	return false;
}

static bool
direct_visible(const struct nametable *nt, const char *name, size_t len, int ns_mode, const char *ns,
    struct nt_result *res)
{
	memset(res, 0, sizeof(*res));
	res->target_len = len;
	return lookup_direct(nt, name, len, res) && visible(res->entry, ns_mode, ns);
}

/* A search-path expansion never answers another namespace's name: one of
 * Kubernetes' names of namespace X (redis.X.svc.<cd>, a.b.X.svc.<cd>) only
 * from a host with a ServiceEntry in X; <cd>'s own names never. */
static bool
expansion_allowed(const struct nametable *nt, const char *qname, size_t len, const struct reg_host *h)
{
	const char *owner;
	size_t ol;
	switch (tenancy_classify(qname, len, nt->cd, &owner, &ol)) {
	case K8S_NOT_CLUSTER:
	case K8S_FREE:
		return true;
	case K8S_RESERVED:
		return false;
	case K8S_NAMESPACE:
		for (size_t i = 0; i < h->nentries; i++) {
			const char *sns = h->entries[i]->namespace;
			if (strlen(sns) == ol && memcmp(sns, owner, ol) == 0)
				return true;
		}
		return false;
	}
	return false;
}

static bool
lookup_ns(const struct nametable *nt, const char *qname, int ns_mode, const char *ns, struct nt_result *res)
{
	memset(res, 0, sizeof(*res));
	size_t len = strlen(qname);
	if (len == 0 || nt->nentries == 0)
		return false;
	if (direct_visible(nt, qname, len, ns_mode, ns, res))
		goto found;
	size_t cut;
	if (ends_with(qname, len, nt->svc_suffix, &cut)) {
		/* NAME.svc.<cd>, then NAME.<ns>.svc.<cd> */
		if (direct_visible(nt, qname, cut, ns_mode, ns, res))
			goto cname;
		for (size_t i = cut; i > 0; i--) {
			if (qname[i - 1] != '.')
				continue;
			/* with a namespace view, only the client's own namespace */
			bool ns_ok = ns_mode != 1 || (cut - i == strlen(ns) && memcmp(qname + i, ns, cut - i) == 0);
			if (ns_ok && i - 1 > 0 && direct_visible(nt, qname, i - 1, ns_mode, ns, res))
				goto cname;
			break;
		}
	}
	for (size_t s = 0; s < nt->nsuffixes; s++)
		if (ends_with(qname, len, nt->suffixes[s], &cut) && direct_visible(nt, qname, cut, ns_mode, ns, res))
			goto cname;
	memset(res, 0, sizeof(*res));
	return false;
cname:
	if (!expansion_allowed(nt, qname, len, res->entry->host)) {
		memset(res, 0, sizeof(*res));
		return false;
	}
	res->via_cname = true;
found:
	res->addrs = &res->entry->addrs;
	if (ns_mode == 1) {
		for (size_t i = 0; i < res->entry->nvariants; i++)
			if (strcmp(res->entry->variants[i].ns, ns) == 0)
				res->addrs = &res->entry->variants[i].addrs;
	}
	return true;
}

bool
nametable_lookup(const struct nametable *nt, const char *qname, struct nt_result *res)
{
	return lookup_ns(nt, qname, 0, NULL, res);
}

bool
nametable_lookup_client(const struct nametable *nt, const char *qname, const struct netaddr *client,
    struct nt_result *res, const char **ns_out)
{
	if (ns_out)
		*ns_out = NULL;
	if (nt->wl == NULL)
		return lookup_ns(nt, qname, 0, NULL, res);
	const char *ns = workloads_namespace(nt->wl, client);
	if (ns_out)
		*ns_out = ns;
	return lookup_ns(nt, qname, ns ? 1 : 2, ns, res);
}

bool
nametable_has_workloads(const struct nametable *nt)
{
	return nt->wl != NULL;
}

const char *
nametable_ptr(const struct nametable *nt, const struct netaddr *a)
{
	size_t pm = nt->ptr_cap - 1;
	for (size_t p = netaddr_hash(a) & pm;; p = (p + 1) & pm) {
		if (nt->ptrs[p].host == 0)
			return NULL;
		const struct reg_host *h = &nt->reg->hosts[nt->ptrs[p].host - 1];
		if (netaddr_equal(&h->addrs[nt->ptrs[p].addr], a))
			return h->name;
	}
}

const struct registry *
nametable_registry(const struct nametable *nt)
{
	return nt->reg;
}

size_t
nametable_size(const struct nametable *nt)
{
	return nt->nentries;
}
