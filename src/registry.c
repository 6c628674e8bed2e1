/* registry — see include/registry.h. */
#include "registry.h"
#include "tenancy.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bigmem.h"
#include "vipstore.h"

#define AUTOALLOC_LABEL "networking.istio.io/enable-autoallocate-ip"

/* A host of an entry, while sorting. key is the name's first 8 bytes
 * (big-endian, zero after its end): most comparisons end there instead of
 * in strcmp, and a pair is 24 bytes to move instead of a name buffer. */
struct pair {
	uint64_t key;
	char *name;                     /* lower-case, in the registry's block */
	const struct serviceentry *se;
};

/* Older first: creationTimestamp (RFC 3339 sorts as text; absent = newest),
 * then namespace, then name — Istio's conflict order. */
static int
se_age_cmp(const struct serviceentry *a, const struct serviceentry *b)
{
	const char *ta = a->creation_timestamp, *tb = b->creation_timestamp;
	if (ta && !tb)
		return -1;
	if (!ta && tb)
		return 1;
	if (ta && tb) {
		int c = strcmp(ta, tb);
		if (c)
			return c;
	}
	int c = strcmp(a->namespace, b->namespace);
	if (c)
		return c;
	return strcmp(a->name, b->name);
}

static uint64_t
name_key(const char *name)
{
	uint64_t k = 0;
	size_t i = 0;
	for (; i < 8 && name[i]; i++)
		k = k << 8 | (uint8_t)name[i];
	return k << (8 * (8 - i));
}

/* Name, then age: the order hosts and each host's entries end up in. */
static int
pair_cmp(const struct pair *a, const struct pair *b)
{
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	int c = strcmp(a->name, b->name);
	if (c)
		return c;
	return se_age_cmp(a->se, b->se);
}

/* Sorts a[0..n) by pair_cmp with tmp (n pairs) as scratch: a bottom-up
 * merge sort, so that the scratch comes from the caller's block (qsort
 * would map and fault in a buffer of its own at every build). Pairs that
 * compare equal are the same host of the same entry: stability does not
 * matter. */
static void
pair_sort(struct pair *a, struct pair *tmp, size_t n)
{
	enum { RUN = 16 };
	for (size_t lo = 0; lo < n; lo += RUN) {
		size_t hi = lo + RUN < n ? lo + RUN : n;
		for (size_t i = lo + 1; i < hi; i++) {
			struct pair x = a[i];
			size_t j = i;
			for (; j > lo && pair_cmp(&x, &a[j - 1]) < 0; j--)
				a[j] = a[j - 1];
			a[j] = x;
		}
	}
	struct pair *src = a, *dst = tmp;
	for (size_t w = RUN; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				dst[k++] = pair_cmp(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		struct pair *x = src;
		src = dst;
		dst = x;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}

static bool
add_diag(struct registry *reg, enum se_severity sev, const char *fmt, ...)
{
	if (reg->ndiags == reg->diagcap) {
		/* doubling: 50k refused hosts are 50k diagnostics */
		size_t nc = reg->diagcap ? reg->diagcap * 2 : 8;
		struct reg_diag *d = realloc(reg->diags, nc * sizeof(*d));
		if (d == NULL)
			return false;
		reg->diags = d;
		reg->diagcap = nc;
	}
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return false;
	reg->diags[reg->ndiags].severity = sev;
	reg->diags[reg->ndiags].message = msg;
	reg->ndiags++;
	return true;
}

static const char *
label(const struct serviceentry *se, const char *key)
{
	for (size_t i = 0; i < se->nlabels; i++)
		if (strcmp(se->labels[i].key, key) == 0)
			return se->labels[i].value;
	return NULL;
}

static const char *
ep_port_for(const struct se_endpoint *ep, const char *pname)
{
	if (pname == NULL)
		return NULL;
	for (size_t i = 0; i < ep->nports; i++)
		if (strcmp(ep->ports[i].key, pname) == 0)
			return ep->ports[i].value;
	return NULL;
}

static int
port_cmp(const void *x, const void *y)
{
	const struct reg_port *a = x, *b = y;
	return (int)a->number - (int)b->number;
}

static bool
is_socket(const struct se_endpoint *ep)
{
	/* cannot be a DNAT target; the first byte settles nearly every one */
	return ep->address[0] == 'u' && strncmp(ep->address, "unix://", 7) == 0;
}

static size_t
dnat_endpoints(const struct serviceentry *se)
{
	size_t n = 0;
	for (size_t i = 0; i < se->nendpoints; i++)
		n += !is_socket(&se->endpoints[i]);
	return n;
}

_Static_assert(SE_MAX_ENDPOINTS <= UINT16_MAX, "reg_endpoint.idx is 16 bits");

/* Into the run merge_ports sized for rp. */
static void
append_endpoints(struct reg_port *rp, const struct serviceentry *se, const struct se_port *sp)
{
	for (size_t i = 0; i < se->nendpoints; i++) {
		const struct se_endpoint *ep = &se->endpoints[i];
		if (is_socket(ep))
			continue;
		struct reg_endpoint *re = &rp->eps[rp->neps];
		memset(re, 0, sizeof(*re));
		re->se = se;
		re->idx = (uint16_t)i;
		if (!netaddr_parse(ep->address, &re->ip))
			memset(&re->ip, 0, sizeof(re->ip));
		const char *mapped = ep_port_for(ep, sp->name);
		if (mapped)
			re->port = (uint16_t)atoi(mapped);
		else if (sp->target_port)
			re->port = (uint16_t)sp->target_port;
		else
			re->port = (uint16_t)sp->number;
		rp->neps++;
	}
}

static bool
is_udp(const char *proto)
{
	return proto && strcasecmp(proto, "UDP") == 0;
}

static bool
same_protocol(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcasecmp(a, b) == 0;
}

static const char *
se_where(const struct serviceentry *se, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d: %s/%s", se->file, se->line, se->namespace, se->name);
	return buf;
}

static struct reg_port *
find_port(struct reg_host *h, uint32_t number)
{
	for (size_t k = 0; k < h->nports; k++)
		if (h->ports[k].number == number)
			return &h->ports[k];
	return NULL;
}

/* The host's ports go to *pcur, their endpoints to *ecur (runs of the
 * registry's block, sized by registry_build's bounds); both cursors move
 * past what the host used. Two passes: the definitions first (the older
 * entry's wins) with each port's endpoint count, then the endpoints, so
 * that each port's endpoints are one run whichever entries add to it. */
static void
merge_ports(struct registry *reg, struct reg_host *h, struct reg_port **pcur, struct reg_endpoint **ecur)
{
	h->ports = *pcur;
	for (size_t e = 0; e < h->nentries; e++) {
		const struct serviceentry *se = h->entries[e];
		size_t ndnat = se->nports ? dnat_endpoints(se) : 0;
		for (size_t p = 0; p < se->nports; p++) {
			const struct se_port *sp = &se->ports[p];
			struct reg_port *rp = find_port(h, sp->number);
			if (rp && !same_protocol(rp->protocol, sp->protocol)) {
				char w1[512], w2[512];
				add_diag(reg, SE_WARNING,
				    "%s: host %s port %u: protocol %s conflicts with %s from older %s; the older wins",
				    se_where(se, w1, sizeof(w1)), h->name, sp->number,
				    sp->protocol ? sp->protocol : "(unset)",
				    rp->protocol ? rp->protocol : "(unset)", se_where(rp->owner, w2, sizeof(w2)));
				continue;
			}
			if (rp == NULL) {
				rp = &h->ports[h->nports++];
				memset(rp, 0, sizeof(*rp));
				rp->number = (uint16_t)sp->number;
				rp->name = sp->name;
				rp->protocol = sp->protocol;
				rp->udp = is_udp(sp->protocol);
				rp->owner = se;
			}
			rp->neps += ndnat; /* counted here, filled below */
			if (se->nendpoints == 0 && !se->has_workload_selector &&
			    (se->resolution == SE_RES_DNS || se->resolution == SE_RES_DNS_ROUND_ROBIN))
				rp->resolve_host = true;
		}
	}
	for (size_t k = 0; k < h->nports; k++) {
		struct reg_port *rp = &h->ports[k];
		rp->eps = rp->neps ? *ecur : NULL;
		*ecur += rp->neps;
		rp->neps = 0;
	}
	for (size_t e = 0; e < h->nentries; e++) {
		const struct serviceentry *se = h->entries[e];
		if (se->nendpoints == 0)
			continue;
		for (size_t p = 0; p < se->nports; p++) {
			const struct se_port *sp = &se->ports[p];
			struct reg_port *rp = find_port(h, sp->number);
			/* the first pass refused it (and said so) */
			if (rp && same_protocol(rp->protocol, sp->protocol))
				append_endpoints(rp, se, sp);
		}
	}
	if (h->nports > 1)
		qsort(h->ports, h->nports, sizeof(*h->ports), port_cmp);
	*pcur += h->nports;
}

bool
reg_host_add_addr(struct reg_host *h, const struct netaddr *a)
{
	for (size_t i = 0; i < h->naddrs; i++)
		if (netaddr_equal(&h->addrs[i], a))
			return true;
	if (h->naddrs >= REG_MAX_ADDRS)
		return true;
	if (h->naddrs == h->addrcap) {
		/* most hosts have one or two: grow from exactly that */
		size_t nc = h->addrcap ? h->addrcap * 2 : 2;
		struct netaddr *na;
		if (h->addrs_shared) {
			/* the registry's block keeps its two slots */
			if ((na = malloc(nc * sizeof(*na))) != NULL)
				memcpy(na, h->addrs, h->naddrs * sizeof(*na));
		} else {
			na = realloc(h->addrs, nc * sizeof(*na));
		}
		if (na == NULL)
			return false;
		h->addrs = na;
		h->addrcap = nc;
		h->addrs_shared = false;
	}
	h->addrs[h->naddrs++] = *a;
	return true;
}

static void
compute_answer(struct registry *reg, struct reg_host *h)
{
	/* spec.addresses: plain IPs and full-length prefixes are answerable */
	bool any_spec = false;
	for (size_t e = 0; e < h->nentries; e++) {
		const struct serviceentry *se = h->entries[e];
		for (size_t i = 0; i < se->naddresses; i++) {
			struct netprefix p;
			any_spec = true;
			if (!netprefix_parse(se->addresses[i], false, &p))
				continue;
			if (p.len == (p.addr.family == AF_INET ? 32u : 128u))
				reg_host_add_addr(h, &p.addr);
		}
	}
	if (h->naddrs) {
		h->answer = REG_ADDRESSES;
		return;
	}
	if (any_spec) {
		h->answer = REG_FORWARD; /* only wide CIDRs: nothing to answer */
		return;
	}
	for (size_t e = 0; e < h->nentries; e++) {
		const struct serviceentry *se = h->entries[e];
		for (size_t i = 0; i < se->nstatus_addresses; i++) {
			const struct se_status_address *sa = &se->status_addresses[i];
			struct netaddr a;
			if (sa->host && strcasecmp(sa->host, h->name) != 0)
				continue;
			if (netaddr_parse(sa->value, &a))
				reg_host_add_addr(h, &a);
		}
	}
	if (h->naddrs) {
		h->answer = REG_STATUS;
		return;
	}
	for (size_t e = 0; e < h->nentries; e++) {
		const struct serviceentry *se = h->entries[e];
		const char *l = label(se, AUTOALLOC_LABEL);
		if (se->resolution == SE_RES_NONE)
			continue;
		if (h->wildcard && se->resolution != SE_RES_DYNAMIC_DNS)
			continue;
		if (l && strcasecmp(l, "false") == 0)
			continue;
		h->wants_vip = true;
	}
	h->answer = REG_FORWARD; /* until a VIP is assigned */
	(void)reg;
}

/* Lower-cased copy of src (at most cap - 1 bytes, no trailing dot) at dst;
 * returns the byte after its terminator. */
static char *
lower_copy(char *dst, const char *src, size_t cap)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++) {
		char c = src[i];
		dst[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	dst[i] = '\0';
	if (i > 0 && dst[i - 1] == '.')
		dst[i - 1] = '\0';
	return dst + i + 1;
}

#define NAME_CAP (SE_MAX_NAME + 2)

/* A host name the registry can point at as written (the ServiceEntry
 * outlives the registry, which holds its set): lower case, no trailing
 * dot, not over the cap. Most are; the rest are copied. */
static bool
name_as_is(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return false;
	return i + 1 < NAME_CAP && !(i > 0 && s[i - 1] == '.');
}

struct ns_use {
	const char *ns;
	size_t idx;                     /* in the set: load order */
};

static int
ns_use_cmp(const void *x, const void *y)
{
	const struct ns_use *a = x, *b = y;
	int c = strcmp(a->ns, b->ns);
	return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/*
 * The entries over their namespace's REG_MAX_NS_TARGETS, in load order:
 * *over (owned, nentries flags) set, or NULL when no namespace is over
 * (always when all entries together are under: nothing to sort). False on
 * out of memory.
 */
static bool
over_budget(struct registry *reg, bool **over)
{
	const struct se_set *set = &reg->set;
	size_t total = 0, n = 0;
	*over = NULL;
	for (size_t i = 0; i < set->nentries; i++) {
		size_t t = se_dnat_targets(set->entries[i]);
		total += t;
		n += t > 0;
	}
	if (total <= REG_MAX_NS_TARGETS)
		return true;
	struct ns_use *u = malloc(n * sizeof(*u));
	bool *o = calloc(set->nentries, sizeof(*o));
	if (u == NULL || o == NULL) {
		free(u);
		free(o);
		return false;
	}
	n = 0;
	for (size_t i = 0; i < set->nentries; i++)
		if (se_dnat_targets(set->entries[i]) > 0)
			u[n++] = (struct ns_use){ set->entries[i]->namespace, i };
	qsort(u, n, sizeof(*u), ns_use_cmp);
	size_t used = 0;
	for (size_t k = 0; k < n; k++) {
		if (k == 0 || strcmp(u[k].ns, u[k - 1].ns) != 0)
			used = 0;
		const struct serviceentry *se = set->entries[u[k].idx];
		size_t t = se_dnat_targets(se);
		if (used + t <= REG_MAX_NS_TARGETS) {
			used += t;
			continue;
		}
		o[u[k].idx] = true;
		char w[512];
		add_diag(reg, SE_ERROR, "%s: namespace %s would hold more than %u DNAT targets (hosts x ports x "
		    "endpoints of its ServiceEntries, in load order; this one has %zu); not answered",
		    se_where(se, w, sizeof(w)), se->namespace, REG_MAX_NS_TARGETS, t);
	}
	free(u);
	*over = o;
	return true;
}

static size_t
block_align(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

struct registry *
registry_build(struct se_set *set, const struct tenancy *t)
{
	struct registry *reg = calloc(1, sizeof(*reg));
	if (reg != NULL)
		reg->refs = 1;
	if (reg == NULL)
		return NULL;
	reg->set = *set;
	se_set_init(set);

	/*
	 * Everything the hosts hold lives in one block, sized from bounds
	 * known before the merge: a pair per (entry, host) bounds hosts and
	 * entry pointers, ports and endpoints are bounded by every pair
	 * bringing all of its entry's. What is not used is never touched, so
	 * it costs address space, not memory: a few large mappings instead
	 * of five allocations per host and their page faults.
	 */
	bool *over;
	if (!over_budget(reg, &over)) {
		registry_free(reg);
		return NULL;
	}
	size_t npairs = 0, nports = 0, neps = 0, nnames = 0;
	for (size_t i = 0; i < reg->set.nentries; i++) {
		const struct serviceentry *se = reg->set.entries[i];
		if (over && over[i])
			continue;
		npairs += se->nhosts;
		nports += se->nhosts * se->nports;
		neps += se_dnat_targets(se);
		for (size_t j = 0; j < se->nhosts; j++) {
			if (name_as_is(se->hosts[j]))
				continue;
			size_t l = strlen(se->hosts[j]);
			nnames += (l < NAME_CAP - 1 ? l : NAME_CAP - 1) + 1;
		}
	}
	size_t off_entries = block_align(npairs * sizeof(struct reg_host));
	size_t off_ports = off_entries + block_align(npairs * sizeof(struct serviceentry *));
	size_t off_eps = off_ports + block_align(nports * sizeof(struct reg_port));
	size_t off_addrs = off_eps + block_align(neps * sizeof(struct reg_endpoint));
	size_t off_names = off_addrs + block_align(2 * npairs * sizeof(struct netaddr));
	reg->block_len = off_names + nnames;
	char *block = bigmem_alloc(reg->block_len);
	size_t pairs_len = 2 * npairs * sizeof(struct pair);
	struct pair *pairs = bigmem_alloc(pairs_len);
	if (block == NULL || pairs == NULL)
		goto oom_pairs;
	reg->block = block;
	reg->hosts = (struct reg_host *)(void *)block;
	const struct serviceentry **ent = (const struct serviceentry **)(void *)(block + off_entries);
	struct reg_port *pcur = (struct reg_port *)(void *)(block + off_ports);
	struct reg_endpoint *ecur = (struct reg_endpoint *)(void *)(block + off_eps);
	struct netaddr *acur = (struct netaddr *)(void *)(block + off_addrs);
	char *ncur = block + off_names;

	size_t k = 0;
	for (size_t i = 0; i < reg->set.nentries; i++) {
		const struct serviceentry *se = reg->set.entries[i];
		if (over && over[i])
			continue;
		for (size_t j = 0; j < se->nhosts; j++) {
			char *name = se->hosts[j];
			if (!name_as_is(name)) {
				name = ncur;
				ncur = lower_copy(name, se->hosts[j], NAME_CAP);
			}
			char why[512], w[512];
			if (!tenancy_host_allowed(t, name, se->namespace, why, sizeof(why))) {
				add_diag(reg, SE_ERROR, "%s: spec.hosts[%zu]: %s; not answered", se_where(se, w, sizeof(w)),
				    j, why);
				continue;
			}
			pairs[k].key = name_key(name);
			pairs[k].name = name;
			pairs[k].se = se;
			k++;
		}
	}
	npairs = k;
	pair_sort(pairs, pairs + npairs, npairs);

	for (size_t i = 0; i < npairs;) {
		size_t j = i + 1;
		while (j < npairs && pairs[j].key == pairs[i].key && strcmp(pairs[j].name, pairs[i].name) == 0)
			j++;
		struct reg_host *h = &reg->hosts[reg->nhosts++];
		h->name = pairs[i].name;
		h->entries = ent;
		for (size_t m = i; m < j; m++) {
			/* one entry naming a host twice counts once */
			if (h->nentries && h->entries[h->nentries - 1] == pairs[m].se)
				continue;
			h->entries[h->nentries++] = pairs[m].se;
		}
		ent += h->nentries;
		h->addrs = acur; /* room for a VIP pair; more moves out */
		h->addrcap = 2;
		h->addrs_shared = true;
		acur += 2;
		h->wildcard = strncmp(h->name, "*.", 2) == 0;
		h->resolution = h->entries[0]->resolution;
		for (size_t m = 1; m < h->nentries; m++) {
			if (h->entries[m]->resolution != h->resolution) {
				char w1[512], w2[512];
				add_diag(reg, SE_WARNING,
				    "%s: host %s: resolution %s differs from %s of older %s; the older wins",
				    se_where(h->entries[m], w1, sizeof(w1)), h->name,
				    se_resolution_name(h->entries[m]->resolution), se_resolution_name(h->resolution),
				    se_where(h->entries[0], w2, sizeof(w2)));
			}
		}
		merge_ports(reg, h, &pcur, &ecur);
		compute_answer(reg, h);
		i = j;
	}
	bigmem_free(pairs, pairs_len);
	free(over);
	return reg;
oom_pairs:
	bigmem_free(pairs, pairs_len);
	bigmem_free(block, reg->block_len);
	free(over);
	registry_free(reg);
	return NULL;
}

void
registry_hold(struct registry *reg)
{
	__atomic_add_fetch(&reg->refs, 1, __ATOMIC_RELAXED);
}

void
registry_free(struct registry *reg)
{
	if (reg != NULL && __atomic_sub_fetch(&reg->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (reg == NULL)
		return;
	for (size_t i = 0; i < reg->nhosts; i++)
		if (!reg->hosts[i].addrs_shared)
			free(reg->hosts[i].addrs);
	bigmem_free(reg->block, reg->block_len);
	for (size_t i = 0; i < reg->ndiags; i++)
		free(reg->diags[i].message);
	free(reg->diags);
	se_set_free(&reg->set);
	free(reg);
}

static int
host_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct reg_host *)elem)->name);
}

const struct reg_host *
registry_find(const struct registry *reg, const char *name)
{
	if (reg->nhosts == 0)
		return NULL;
	return bsearch(name, reg->hosts, reg->nhosts, sizeof(*reg->hosts), host_key_cmp);
}

struct netaddr *
registry_reserved(const struct registry *reg, size_t *n)
{
	size_t cnt = 0;
	for (size_t i = 0; i < reg->nhosts; i++)
		if (reg->hosts[i].answer == REG_ADDRESSES || reg->hosts[i].answer == REG_STATUS)
			cnt += reg->hosts[i].naddrs;
	struct netaddr *out = calloc(cnt ? cnt : 1, sizeof(*out));
	*n = 0;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < reg->nhosts; i++) {
		const struct reg_host *h = &reg->hosts[i];
		if (h->answer != REG_ADDRESSES && h->answer != REG_STATUS)
			continue;
		for (size_t j = 0; j < h->naddrs; j++)
			out[(*n)++] = h->addrs[j];
	}
	return out;
}

static void
set_vip(struct reg_host *h, bool has4, const struct netaddr *v4, bool has6, const struct netaddr *v6)
{
	h->naddrs = 0;
	/* out of memory leaves the host forwarded, never half-answered */
	if ((has4 && !reg_host_add_addr(h, v4)) || (has6 && !reg_host_add_addr(h, v6)))
		h->naddrs = 0;
	h->answer = h->naddrs ? REG_VIP : REG_FORWARD;
}

/* Address conflicts settled before VIPs are assigned or looked up. */
static void
settle_addr_conflicts(struct registry *reg, struct vipstore *vs)
{
	/* a tenant's spec.addresses never take another host's VIP */
	for (size_t i = 0; i < reg->nhosts; i++) {
		struct reg_host *h = &reg->hosts[i];
		if (h->answer != REG_ADDRESSES)
			continue;
		for (size_t j = 0; j < h->naddrs; j++) {
			char owner[SEDNS_MAX_HOST + 1], a[NETADDR_STRLEN], wh[512];
			enum vip_state st;
			if (!vipstore_in_pool(vs, &h->addrs[j]) ||
			    !vipstore_owner(vs, &h->addrs[j], owner, sizeof(owner), &st) || strcmp(owner, h->name) == 0)
				continue;
			add_diag(reg, SE_ERROR, "%s: spec.addresses: %s is the VIP of host %s (%s); host %s is not "
			    "answered and that VIP does not move", se_where(h->entries[0], wh, sizeof(wh)),
			    netaddr_fmt(&h->addrs[j], a, sizeof(a)), owner, st == VIP_HELD ? "held" : "active", h->name);
			h->addr_conflict = true;
			h->answer = REG_FORWARD;
			h->naddrs = 0;
			break;
		}
	}
	/* status.addresses (istiod's) of two hosts collide: the host of the
	 * older ServiceEntry keeps the address, the other is not answered */
	for (size_t i = 0; i < reg->nhosts; i++) {
		struct reg_host *h = &reg->hosts[i];
		if (h->answer != REG_STATUS)
			continue;
		for (size_t k = 0; k < reg->nhosts && h->answer == REG_STATUS; k++) {
			struct reg_host *o = &reg->hosts[k];
			if (k == i || o->answer != REG_STATUS || se_age_cmp(o->entries[0], h->entries[0]) > 0 ||
			    (se_age_cmp(o->entries[0], h->entries[0]) == 0 && k > i))
				continue;
			for (size_t a = 0; a < h->naddrs && h->answer == REG_STATUS; a++) {
				for (size_t b = 0; b < o->naddrs; b++) {
					if (!netaddr_equal(&h->addrs[a], &o->addrs[b]))
						continue;
					char wh[512], ab[NETADDR_STRLEN];
					add_diag(reg, SE_ERROR, "%s: status.addresses: %s is also host %s's (an older "
					    "ServiceEntry); host %s is not answered", se_where(h->entries[0], wh, sizeof(wh)),
					    netaddr_fmt(&h->addrs[a], ab, sizeof(ab)), o->name, h->name);
					h->addr_conflict = true;
					h->answer = REG_FORWARD;
					h->naddrs = 0;
					break;
				}
			}
		}
	}
}

/* Every wanting host's VIPs from the store's copy; false (some hosts may
 * be set, a sync then sets them all again) when one has none there.
 * Before vipstore_unchanged, which publishes the reload's counts. */
static bool
vips_from_copy(struct registry *reg, const struct vipstore *vs)
{
	for (size_t i = 0; i < reg->nhosts; i++) {
		struct reg_host *h = &reg->hosts[i];
		struct netaddr v4, v6;
		bool h4, h6;
		if (!h->wants_vip)
			continue;
		if (!vipstore_cached(vs, h->name, &v4, &h4, &v6, &h6))
			return false;
		set_vip(h, h4, &v4, h6, &v6);
		h->vip_exhausted = false;
	}
	return true;
}

bool
registry_assign_vips(struct registry *reg, struct vipstore *vs, time_t now, struct vipstore_stats *stats,
    char *err, size_t errlen)
{
	size_t nw = 0;
	for (size_t i = 0; i < reg->nhosts; i++)
		nw += reg->hosts[i].wants_vip;
	settle_addr_conflicts(reg, vs);
	size_t nres = 0;
	struct netaddr *res = registry_reserved(reg, &nres);
	if (res == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	/* the common reload (endpoints or ports changed, no host came or
	 * went): the VIPs stay, the sync and its buffers are not needed */
	if (vips_from_copy(reg, vs) && vipstore_unchanged(vs, nw, res, nres, now, stats)) {
		free(res);
		return true;
	}
	struct vip_want *w = vipstore_wants(vs, nw);
	if (w == NULL) {
		free(res);
		snprintf(err, errlen, "out of memory");
		return false;
	}
	/* in host order (sorted by name), which the sync needs no sort for */
	size_t k = 0;
	for (size_t i = 0; i < reg->nhosts; i++) {
		if (!reg->hosts[i].wants_vip)
			continue;
		memset(&w[k], 0, sizeof(w[k]));
		w[k++].host = reg->hosts[i].name;
	}
	bool ok = vipstore_sync(vs, w, nw, res, nres, now, stats, err, errlen);
	if (ok) {
		k = 0;
		for (size_t i = 0; i < reg->nhosts; i++) {
			struct reg_host *h = &reg->hosts[i];
			if (!h->wants_vip)
				continue;
			set_vip(h, w[k].has_v4, &w[k].v4, w[k].has_v6, &w[k].v6);
			h->vip_exhausted = w[k].exhausted;
			k++;
		}
	}
	free(res);
	return ok;
}

/* set sorted by netaddr_cmp */
static bool
addr_in(const struct netaddr *a, const struct netaddr *set, size_t n)
{
	return n > 0 && bsearch(a, set, n, sizeof(*set), netaddr_cmp) != NULL;
}

size_t
registry_lookup_vips(struct registry *reg, struct vipstore *vs)
{
	size_t missing = 0, nres = 0, nw = 0, k = 0;
	settle_addr_conflicts(reg, vs);
	/* a sync would move a VIP that is now someone's address; without one,
	 * that host is forwarded rather than answered with a shared address */
	struct netaddr *res = registry_reserved(reg, &nres);
	if (res == NULL)
		nres = 0;
	else if (nres > 1)
		qsort(res, nres, sizeof(*res), netaddr_cmp);
	for (size_t i = 0; i < reg->nhosts; i++)
		nw += reg->hosts[i].wants_vip;
	/* one read transaction for all of them, in host (name) order */
	struct vip_want *w = vipstore_wants(vs, nw);
	if (w != NULL) {
		for (size_t i = 0; i < reg->nhosts; i++) {
			if (!reg->hosts[i].wants_vip)
				continue;
			memset(&w[k], 0, sizeof(w[k]));
			w[k++].host = reg->hosts[i].name;
		}
		if (!vipstore_lookup_wants(vs, w, nw))
			nw = 0;
	}
	k = 0;
	for (size_t i = 0; i < reg->nhosts; i++) {
		struct reg_host *h = &reg->hosts[i];
		if (!h->wants_vip)
			continue;
		/* without an array (out of memory) or a transaction: forwarded */
		if (w != NULL && k < nw && (w[k].has_v4 || w[k].has_v6)) {
			bool h4 = w[k].has_v4 && !addr_in(&w[k].v4, res, nres);
			bool h6 = w[k].has_v6 && !addr_in(&w[k].v6, res, nres);
			set_vip(h, h4, &w[k].v4, h6, &w[k].v6);
		}
		k++;
		missing += h->answer != REG_VIP;
	}
	free(res);
	return missing;
}

bool
registry_exported_to(const struct serviceentry *se, const char *ns)
{
	if (se->nexport_to == 0)
		return true;
	for (size_t i = 0; i < se->nexport_to; i++) {
		const char *x = se->export_to[i];
		if (strcmp(x, "*") == 0)
			return true;
		if (strcmp(x, "~") == 0)
			return false;
		if (strcmp(x, ".") == 0 && strcmp(se->namespace, ns) == 0)
			return true;
		if (strcmp(x, ns) == 0)
			return true;
	}
	return false;
}

const char *
registry_answer_name(enum reg_answer a)
{
	switch (a) {
	case REG_ADDRESSES:
		return "spec.addresses";
	case REG_STATUS:
		return "status.addresses";
	case REG_VIP:
		return "vip";
	case REG_FORWARD:
		break;
	}
	return "forward";
}
