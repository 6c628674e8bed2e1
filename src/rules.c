/* rules — see include/rules.h. */
#include "rules.h"

#include <ldns/sha2.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

/*
 * Why the filter part can reject everything addressed to a VIP:
 * DNAT happens in nat PREROUTING / OUTPUT (priority -100), before the filter
 * hooks (priority 0) see the packet, and conntrack applies the same
 * translation to every later packet of the connection. A packet that was
 * DNATed to an endpoint therefore no longer carries the VIP as destination
 * when it reaches SEDNS-FILTER. What still does is exactly the traffic no
 * DNAT rule took: a declared port without endpoints, or a port no
 * ServiceEntry declares. Rejecting it (TCP reset, else ICMP port
 * unreachable) fails fast instead of black-holing into 240.0.0.0/4.
 * The per-port "has no endpoints" rules are redundant with the catch-all
 * ones; they are kept so a dry run says why a port is refused.
 */

#define COMMENT_MAX_IPT 255     /* xt_comment: 256 bytes with NUL */
#define COMMENT_MAX_NFT 127     /* NFTNL_UDATA_COMMENT_MAXLEN 128 */
#define NFT_WEIGHT_LIMIT (1u << 30)
#define NAMELEN 32

struct ep {
	struct netaddr ip;
	uint16_t port;
	uint64_t weight;
};

struct svc_elem {               /* nft map element */
	uint8_t vip[4];
	uint8_t udp;
	uint16_t port;
	char chain[NAMELEN];
};


/* The parts of the output: one pass over the registry per part, in the
 * order of the text, so that it is written front to back (and can be
 * streamed) with no part held aside. */
enum {
	SEC_DECL = 1,               /* iptables chain declarations */
	SEC_SVCS = 2,               /* iptables SEDNS-SERVICES jumps */
	SEC_CHAINS = 4,             /* service/endpoint chains */
	SEC_FILT = 8,               /* iptables SEDNS-FILTER rejects */
	SEC_ELEMS = 16,             /* nft map elements and @vips (no text) */
};

struct ctx {
	const struct rules_opts *o;
	uint32_t mark;
	rules_resolve_fn resolve;
	void *arg;
	struct rules_buf *out;      /* the text, front to back */
	unsigned sec;               /* SEC_*: what this pass writes */
	/* nft */
	struct svc_elem *elems;
	size_t nelems, elemcap;
	uint32_t *vips;             /* network order, as memcpy'd */
	size_t nvips, vipcap;
	/* scratch */
	struct ep *eps;
	size_t neps, epcap;
	bool oom;
};

static void buf_reserve(struct rules_buf *, size_t);
static void buf_puts(struct rules_buf *, const char *);
#define buf_printf rules_buf_printf
static void put_comment(struct rules_buf *, const char *, uint16_t, const char *, size_t);
static void hash_name(const char *, const char *, char *, size_t);
static const char *ip4_fmt(const struct netaddr *, char *, size_t);
static bool add_ep(struct ctx *, const struct netaddr *, uint16_t, uint32_t);
static void collect_eps(struct ctx *, const struct reg_host *, const struct reg_port *);
static int ep_cmp(const void *, const void *);
static uint64_t gcd64(uint64_t, uint64_t);
static void normalize_weights(struct ctx *, uint64_t);
static void render_host(struct ctx *, const struct reg_host *);
static void reject_vip(struct ctx *, const char *, const struct netaddr *);
static void ipt_port(struct ctx *, const struct reg_host *, const struct reg_port *,
    const struct netaddr *, size_t);
static void nft_port(struct ctx *, const struct reg_host *, const struct reg_port *,
    const struct netaddr *, size_t);
static void ctx_free(struct ctx *);
static void nft_name(const char *, char *, size_t);
static bool dns_resolution(enum se_resolution);
static uint16_t host_target_port(const struct reg_port *);
static int elem_cmp(const void *, const void *);
static int u32_cmp(const void *, const void *);
static void out_reset(struct rules_buf *);

/* ---- buffer ---- */

/* A streamed buffer hands what it holds to its sink. */
static void
buf_flush(struct rules_buf *b)
{
	if (b->oom || b->len == 0)
		return;
	if (!b->sink(b->sink_arg, b->data, b->len))
		b->oom = true;
	b->sent += b->len;
	b->len = 0;
	b->data[0] = '\0';
}

static void
buf_reserve(struct rules_buf *b, size_t extra)
{
	if (b->oom)
		return;
	if (b->sink != NULL && b->len > 0 && b->len + extra + 1 > b->spill) {
		buf_flush(b);
		if (b->oom)
			return;
	}
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		b->oom = true;
		return;
	}
	b->data = p;
	b->cap = cap;
}

static void
buf_puts(struct rules_buf *b, const char *s)
{
	size_t n = strlen(s);
	buf_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->data + b->len, s, n + 1);
	b->len += n;
}

void
rules_buf_printf(struct rules_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	buf_reserve(b, 256);
	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n);
		if (b->oom)
			return;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void
rules_buf_free(struct rules_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/*
 * A double-quoted comment "host:port[suffix]". Host names are validated DNS
 * names, but the renderer must not trust that: anything outside a safe set
 * becomes '_', so neither iptables-restore's nor nft's quoting can be broken
 * out of, and the text is cut to the kernel's comment limit.
 */
static void
put_comment(struct rules_buf *b, const char *host, uint16_t port, const char *suffix,
    size_t max)
{
	char tmp[512];
	size_t n = 0;

	if (host == NULL)
		host = "";
	if (port)
		snprintf(tmp, sizeof(tmp), "%s:%u%s", host, port, suffix ? suffix : "");
	else
		snprintf(tmp, sizeof(tmp), "%s%s", host, suffix ? suffix : "");
	for (char *p = tmp; *p; p++, n++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
		    c == ':' || c == '/' || c == '*' || c == ' '))
			*p = '_';
	}
	if (n > max)
		tmp[max] = '\0';
	buf_puts(b, "\"");
	buf_puts(b, tmp);
	buf_puts(b, "\"");
}

/* ---- names ---- */

static void
hash_name(const char *prefix, const char *key, char *buf, size_t len)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint8_t d[LDNS_SHA256_DIGEST_LENGTH];
	char enc[17];
	ldns_sha256_CTX sc;

	ldns_sha256_init(&sc);
	ldns_sha256_update(&sc, (const uint8_t *)key, strlen(key));
	ldns_sha256_final(d, &sc);
	/* first 80 bits, 5 bits per character */
	for (int i = 0; i < 16; i++) {
		int bit = i * 5, byte = bit / 8, off = bit % 8;
		unsigned v = ((unsigned)d[byte] << 8) | d[byte + 1];
		enc[i] = b32[(v >> (11 - off)) & 31];
	}
	enc[16] = '\0';
	snprintf(buf, len, "%s%s", prefix, enc);
}

void
rules_svc_chain(const char *host, uint16_t port, const char *proto, char *buf, size_t len)
{
	char key[600];
	snprintf(key, sizeof(key), "%s/%u/%s", host, port, proto);
	hash_name("SEDNS-SVC-", key, buf, len);
}

void
rules_sep_chain(const char *host, uint16_t port, const char *proto,
    const struct netaddr *ep, uint16_t ep_port, char *buf, size_t len)
{
	char key[700], a[NETADDR_STRLEN];
	snprintf(key, sizeof(key), "%s/%u/%s/%s:%u", host, port, proto,
	    netaddr_fmt(ep, a, sizeof(a)), ep_port);
	hash_name("SEDNS-SEP-", key, buf, len);
}

/* nft spelling of an iptables chain name: "svc_"/"sep_" + lower-case hash. */
static void
nft_name(const char *ipt, char *buf, size_t len)
{
	/* "SEDNS-SVC-XXXX" → "svc_xxxx" */
	snprintf(buf, len, "%c%c%c_%s", ipt[6] + 32, ipt[7] + 32, ipt[8] + 32, ipt + 10);
	for (char *p = buf + 4; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
}

bool
rules_is_own_chain(const char *name)
{
	return name != NULL && strncmp(name, "SEDNS-", 6) == 0;
}

static const char *
ip4_fmt(const struct netaddr *a, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", a->a[0], a->a[1], a->a[2], a->a[3]);
	return buf;
}

const char *
rules_opts_problem(const struct rules_opts *o)
{
	uint32_t m = o->masq_mark ? o->masq_mark : RULES_DEFAULT_MASQ_MARK;

	if (o->format != RULES_FMT_IPTABLES && o->format != RULES_FMT_NFT)
		return "unknown rule format";
	if (m & (m - 1))
		return "masquerade mark must be a single bit";
	if (m == 0x4000 || m == 0x8000)
		return "masquerade mark collides with kube-proxy's 0x4000/0x8000";
	if (m & 0xffff0000u)
		return "masquerade mark collides with Calico's 0xffff0000 range";
	return NULL;
}

/* ---- endpoints ---- */

static bool
add_ep(struct ctx *c, const struct netaddr *ip, uint16_t port, uint32_t weight)
{
	if (ip->family != AF_INET || port == 0)
		return true;
	for (size_t i = 0; i < c->neps; i++)
		if (c->eps[i].port == port && memcmp(c->eps[i].ip.a, ip->a, 4) == 0) {
			/* same ip:port twice (two names, one address): one
			 * endpoint carrying both weights */
			c->eps[i].weight += weight;
			return true;
		}
	if (c->neps == c->epcap) {
		size_t cap = c->epcap ? c->epcap * 2 : 16;
		struct ep *n = realloc(c->eps, cap * sizeof(*n));
		if (n == NULL) {
			c->oom = true;
			return false;
		}
		c->eps = n;
		c->epcap = cap;
	}
	struct ep *e = &c->eps[c->neps++];
	memset(e, 0, sizeof(*e));
	e->ip = *ip;
	e->port = port;
	e->weight = weight ? weight : 1;
	return true;
}

static bool
dns_resolution(enum se_resolution r)
{
	return r == SE_RES_DNS || r == SE_RES_DNS_ROUND_ROBIN;
}

static uint16_t
host_target_port(const struct reg_port *p)
{
	if (p->owner)
		for (size_t i = 0; i < p->owner->nports; i++)
			if (p->owner->ports[i].number == p->number &&
			    p->owner->ports[i].target_port)
				return (uint16_t)p->owner->ports[i].target_port;
	return p->number;
}

static void
collect_eps(struct ctx *c, const struct reg_host *h, const struct reg_port *p)
{
	struct netaddr got[REG_MAX_ADDRS];
	size_t n;

	c->neps = 0;
	for (size_t i = 0; i < p->neps; i++) {
		const struct reg_endpoint *e = &p->eps[i];
		if (reg_ep_is_ip(e)) {
			if (!add_ep(c, &e->ip, e->port, reg_ep_weight(e)))
				return;
			continue;
		}
		const char *address = reg_ep_address(e);
		if (!dns_resolution(e->se->resolution) || c->resolve == NULL || address == NULL)
			continue;
		n = c->resolve(c->arg, address, got, REG_MAX_ADDRS);
		for (size_t k = 0; k < n && k < REG_MAX_ADDRS; k++)
			if (!add_ep(c, &got[k], e->port, reg_ep_weight(e)))
				return;
	}
	if (p->resolve_host && !h->wildcard && c->resolve != NULL) {
		uint16_t port = host_target_port(p);
		n = c->resolve(c->arg, h->name, got, REG_MAX_ADDRS);
		for (size_t k = 0; k < n && k < REG_MAX_ADDRS; k++)
			if (!add_ep(c, &got[k], port, 1))
				return;
	}
	/* canonical order: a DNS round-robin answer rotating does not change
	 * the rendered text */
	if (c->neps > 1)
		qsort(c->eps, c->neps, sizeof(*c->eps), ep_cmp);
}

static int
ep_cmp(const void *x, const void *y)
{
	const struct ep *a = x, *b = y;
	int r = memcmp(a->ip.a, b->ip.a, 4);
	if (r)
		return r;
	return (int)a->port - (int)b->port;
}

static uint64_t
gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Reduces weights by their gcd and, for nft's 32-bit numgen, scales them
 * down proportionally (each at least 1) when the total is too large. */
static void
normalize_weights(struct ctx *c, uint64_t limit)
{
	uint64_t g = 0, total = 0;

	for (size_t i = 0; i < c->neps; i++)
		g = gcd64(g, c->eps[i].weight);
	for (size_t i = 0; i < c->neps; i++) {
		c->eps[i].weight /= g ? g : 1;
		total += c->eps[i].weight;
	}
	if (total <= limit)
		return;
	for (size_t i = 0; i < c->neps; i++) {
		long double w = (long double)c->eps[i].weight * (long double)limit / (long double)total;
		c->eps[i].weight = w < 1 ? 1 : (uint64_t)w;
	}
}

/* ---- iptables ---- */

static void
ipt_port(struct ctx *c, const struct reg_host *h, const struct reg_port *p,
    const struct netaddr *vips, size_t nvips)
{
	const char *proto = p->udp ? "udp" : "tcp";
	char svc[NAMELEN], sep[NAMELEN], a[NETADDR_STRLEN];
	uint64_t remaining = 0;

	if (c->neps == 0) {
		for (size_t v = 0; v < nvips && (c->sec & SEC_FILT); v++) {
			buf_printf(c->out, "-A " RULES_CHAIN_FILTER " -d %s/32 -p %s -m %s --dport %u -m comment --comment ",
			    ip4_fmt(&vips[v], a, sizeof(a)), proto, proto, p->number);
			put_comment(c->out, h->name, p->number, " has no endpoints", COMMENT_MAX_IPT);
			buf_printf(c->out, " -j REJECT --reject-with %s\n",
			    p->udp ? "icmp-port-unreachable" : "tcp-reset");
		}
		return;
	}
	if (!(c->sec & (SEC_DECL | SEC_SVCS | SEC_CHAINS)))
		return;
	normalize_weights(c, UINT64_MAX / 2);
	rules_svc_chain(h->name, p->number, proto, svc, sizeof(svc));
	if (c->sec & SEC_DECL)
		buf_printf(c->out, ":%s - [0:0]\n", svc);
	for (size_t v = 0; v < nvips && (c->sec & SEC_SVCS); v++) {
		buf_printf(c->out, "-A " RULES_CHAIN_SERVICES " -d %s/32 -p %s -m %s --dport %u -m comment --comment ",
		    ip4_fmt(&vips[v], a, sizeof(a)), proto, proto, p->number);
		put_comment(c->out, h->name, p->number, NULL, COMMENT_MAX_IPT);
		buf_printf(c->out, " -j %s\n", svc);
	}
	if (!(c->sec & (SEC_DECL | SEC_CHAINS)))
		return;
	for (size_t i = 0; i < c->neps; i++)
		remaining += c->eps[i].weight;
	for (size_t i = 0; i < c->neps; i++) {
		const struct ep *e = &c->eps[i];
		rules_sep_chain(h->name, p->number, proto, &e->ip, e->port, sep, sizeof(sep));
		if (c->sec & SEC_DECL)
			buf_printf(c->out, ":%s - [0:0]\n", sep);
		if (c->sec & SEC_CHAINS) {
			buf_printf(c->out, "-A %s -m comment --comment ", svc);
			put_comment(c->out, h->name, p->number, NULL, COMMENT_MAX_IPT);
			if (i + 1 < c->neps)
				buf_printf(c->out, " -m statistic --mode random --probability %.10f",
				    (double)e->weight / (double)remaining);
			buf_printf(c->out, " -j %s\n", sep);
		}
		remaining -= e->weight;
	}
	for (size_t i = 0; i < c->neps && (c->sec & SEC_CHAINS); i++) {
		const struct ep *e = &c->eps[i];
		rules_sep_chain(h->name, p->number, proto, &e->ip, e->port, sep, sizeof(sep));
		if (c->o->masquerade) {
			buf_printf(c->out, "-A %s -m comment --comment ", sep);
			put_comment(c->out, h->name, p->number, NULL, COMMENT_MAX_IPT);
			buf_puts(c->out, " -j " RULES_CHAIN_MARK_MASQ "\n");
		}
		buf_printf(c->out, "-A %s -m comment --comment ", sep);
		put_comment(c->out, h->name, p->number, NULL, COMMENT_MAX_IPT);
		buf_printf(c->out, " -p %s -m %s -j DNAT --to-destination %s:%u\n",
		    proto, proto, ip4_fmt(&e->ip, a, sizeof(a)), e->port);
	}
}

static void
ipt_head(struct ctx *c, struct rules_buf *out)
{
	buf_puts(out, "*nat\n");
	buf_puts(out, ":" RULES_CHAIN_SERVICES " - [0:0]\n");
	if (c->o->masquerade)
		buf_puts(out, ":" RULES_CHAIN_MARK_MASQ " - [0:0]\n"
		    ":" RULES_CHAIN_POSTROUTING " - [0:0]\n");
}

/* after the declarations */
static void
ipt_masq(struct ctx *c, struct rules_buf *out)
{
	if (c->o->masquerade) {
		buf_printf(out, "-A " RULES_CHAIN_MARK_MASQ " -j MARK --or-mark 0x%x\n", c->mark);
		buf_printf(out, "-A " RULES_CHAIN_POSTROUTING " -m mark ! --mark 0x%x/0x%x -j RETURN\n",
		    c->mark, c->mark);
		buf_printf(out, "-A " RULES_CHAIN_POSTROUTING " -j MARK --xor-mark 0x%x\n", c->mark);
		buf_puts(out, "-A " RULES_CHAIN_POSTROUTING
		    " -m comment --comment \"sedns service traffic requiring SNAT\" -j MASQUERADE\n");
	}
}

#define IPT_FILTER_HEAD "COMMIT\n*filter\n:" RULES_CHAIN_FILTER " - [0:0]\n"

/* ---- nft ---- */

static void
nft_port(struct ctx *c, const struct reg_host *h, const struct reg_port *p,
    const struct netaddr *vips, size_t nvips)
{
	const char *proto = p->udp ? "udp" : "tcp";
	char ipt[NAMELEN], svc[NAMELEN], a[NETADDR_STRLEN];
	if (c->neps == 0)
		return;         /* @vips reject catches it */
	normalize_weights(c, NFT_WEIGHT_LIMIT);
	rules_svc_chain(h->name, p->number, proto, ipt, sizeof(ipt));
	nft_name(ipt, svc, sizeof(svc));
	for (size_t v = 0; v < nvips && (c->sec & SEC_ELEMS); v++) {
		if (c->nelems == c->elemcap) {
			size_t cap = c->elemcap ? c->elemcap * 2 : 64;
			struct svc_elem *n = realloc(c->elems, cap * sizeof(*n));
			if (n == NULL) {
				c->oom = true;
				return;
			}
			c->elems = n;
			c->elemcap = cap;
		}
		struct svc_elem *el = &c->elems[c->nelems++];
		memcpy(el->vip, vips[v].a, 4);
		el->udp = p->udp;
		el->port = p->number;
		snprintf(el->chain, sizeof(el->chain), "%s", svc);
	}
	/*
	 * No per-endpoint chains and no anonymous numgen map: the kernel names
	 * every anonymous set by scanning the table's sets, so one per service
	 * made a full load quadratic (10k services: 25 s). Instead one rule per
	 * endpoint, each drawing its own number: rule i matches with
	 * probability w_i / (w_i + ... + w_n), which picks endpoint i with
	 * probability w_i / total exactly, as iptables' statistic chain does.
	 */
	if (!(c->sec & SEC_CHAINS))
		return;
	uint64_t remaining = 0;
	for (size_t i = 0; i < c->neps; i++)
		remaining += c->eps[i].weight;
	buf_printf(c->out, "\tchain %s {\n", svc);
	for (size_t i = 0; i < c->neps; i++) {
		const struct ep *e = &c->eps[i];
		buf_printf(c->out, "\t\tmeta l4proto %s ", proto);
		if (i + 1 < c->neps)
			buf_printf(c->out, "numgen random mod %llu < %llu ", (unsigned long long)remaining,
			    (unsigned long long)e->weight);
		if (c->o->masquerade)
			buf_printf(c->out, "meta mark set meta mark or 0x%x ", c->mark);
		buf_printf(c->out, "dnat to %s:%u comment ", ip4_fmt(&e->ip, a, sizeof(a)), e->port);
		put_comment(c->out, h->name, p->number, NULL, COMMENT_MAX_NFT);
		buf_puts(c->out, "\n");
		remaining -= e->weight;
	}
	buf_puts(c->out, "\t}\n");
}

static int
elem_cmp(const void *x, const void *y)
{
	const struct svc_elem *a = x, *b = y;
	int r = memcmp(a->vip, b->vip, 4);
	if (r)
		return r;
	if (a->udp != b->udp)
		return (int)a->udp - (int)b->udp;
	return (int)a->port - (int)b->port;
}

static int
u32_cmp(const void *x, const void *y)
{
	return memcmp(x, y, 4);
}

/* Everything before the chains; the elements and VIPs are collected. */
static void
nft_head(struct ctx *c, struct rules_buf *out)
{
	static const char lookup[] = "\t\tip daddr . meta l4proto . th dport vmap @services\n";
	bool first = true;

	if (c->nelems > 1)
		qsort(c->elems, c->nelems, sizeof(*c->elems), elem_cmp);
	if (c->nvips > 1)
		qsort(c->vips, c->nvips, sizeof(*c->vips), u32_cmp);

	buf_puts(out, "table ip " RULES_NFT_TABLE " {}\n"
	    "delete table ip " RULES_NFT_TABLE "\n"
	    "table ip " RULES_NFT_TABLE " {\n");
	buf_puts(out, "\tmap services {\n"
	    "\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n");
	for (size_t i = 0; i < c->nelems; i++) {
		const struct svc_elem *e = &c->elems[i];
		/* two hosts on one VIP:port would make nft refuse the
		 * whole table: the first (by host name) wins */
		if (i > 0 && elem_cmp(e, &c->elems[i - 1]) == 0)
			continue;
		buf_printf(out, "%s%u.%u.%u.%u . %s . %u : goto %s",
		    first ? "\t\telements = {\n\t\t\t" : ",\n\t\t\t",
		    e->vip[0], e->vip[1], e->vip[2], e->vip[3], e->udp ? "udp" : "tcp",
		    e->port, e->chain);
		first = false;
	}
	if (!first)
		buf_puts(out, "\n\t\t}\n");
	buf_puts(out, "\t}\n\tset vips {\n\t\ttype ipv4_addr\n");
	first = true;
	for (size_t i = 0; i < c->nvips; i++) {
		const uint8_t *v = (const uint8_t *)&c->vips[i];
		if (i > 0 && c->vips[i] == c->vips[i - 1])
			continue;
		buf_printf(out, "%s%u.%u.%u.%u", first ? "\t\telements = {\n\t\t\t" : ",\n\t\t\t",
		    v[0], v[1], v[2], v[3]);
		first = false;
	}
	if (!first)
		buf_puts(out, "\n\t\t}\n");
	buf_puts(out, "\t}\n");
	buf_puts(out, "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n");
	buf_puts(out, lookup);
	buf_puts(out, "\t}\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n");
	buf_puts(out, lookup);
	buf_puts(out, "\t}\n");
	if (c->o->masquerade) {
		buf_puts(out, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
		buf_printf(out, "\t\tmeta mark & 0x%x == 0 return\n", c->mark);
		buf_printf(out, "\t\tmeta mark set meta mark xor 0x%x\n", c->mark);
		buf_puts(out, "\t\tmasquerade\n\t}\n");
	}
	/* see the comment at the top: only un-DNATed VIP traffic gets here */
	/* output, forward and input: the same hooks the iptables applier uses */
	static const char *const fchains[][2] = {
		{ "filter_out", "output" }, { "filter_fwd", "forward" }, { "filter_in", "input" },
	};
	for (size_t i = 0; i < sizeof(fchains) / sizeof(fchains[0]); i++) {
		buf_printf(out, "\tchain %s {\n\t\ttype filter hook %s priority 0; policy accept;\n",
		    fchains[i][0], fchains[i][1]);
		buf_puts(out, "\t\tip daddr @vips meta l4proto tcp reject with tcp reset\n"
		    "\t\tip daddr @vips reject\n\t}\n");
	}
}

/* ---- driver ---- */

/* Whatever still goes to this VIP after DNAT had its chance is rejected:
 * nft collects it in @vips, iptables gets two SEDNS-FILTER rules. */
static void
reject_vip(struct ctx *c, const char *name, const struct netaddr *vip)
{
	char a[NETADDR_STRLEN];

	if (c->o->format == RULES_FMT_NFT) {
		if (!(c->sec & SEC_ELEMS))
			return;
		if (c->nvips == c->vipcap) {
			size_t cap = c->vipcap ? c->vipcap * 2 : 64;
			uint32_t *n = realloc(c->vips, cap * sizeof(*n));
			if (n == NULL) {
				c->oom = true;
				return;
			}
			c->vips = n;
			c->vipcap = cap;
		}
		memcpy(&c->vips[c->nvips++], vip->a, 4);
		return;
	}
	if (!(c->sec & SEC_FILT))
		return;
	ip4_fmt(vip, a, sizeof(a));
	buf_printf(c->out, "-A " RULES_CHAIN_FILTER " -d %s/32 -p tcp -m comment --comment ", a);
	put_comment(c->out, name, 0, NULL, COMMENT_MAX_IPT);
	buf_puts(c->out, " -j REJECT --reject-with tcp-reset\n");
	buf_printf(c->out, "-A " RULES_CHAIN_FILTER " -d %s/32 -m comment --comment ", a);
	put_comment(c->out, name, 0, NULL, COMMENT_MAX_IPT);
	buf_puts(c->out, " -j REJECT --reject-with icmp-port-unreachable\n");
}

static void
render_host(struct ctx *c, const struct reg_host *h)
{
	struct netaddr vips[REG_MAX_ADDRS];
	size_t nvips = 0;

	if (h->answer != REG_VIP)
		return;
	for (size_t i = 0; i < h->naddrs && i < REG_MAX_ADDRS; i++)
		if (h->addrs[i].family == AF_INET)
			vips[nvips++] = h->addrs[i];
	if (nvips == 0)
		return;         /* IPv6-only VIP: not rendered */
	for (size_t pi = 0; pi < h->nports && !c->oom; pi++) {
		const struct reg_port *p = &h->ports[pi];
		collect_eps(c, h, p);
		if (c->oom)
			return;
		if (c->o->format == RULES_FMT_NFT)
			nft_port(c, h, p, vips, nvips);
		else
			ipt_port(c, h, p, vips, nvips);
	}
	for (size_t v = 0; v < nvips; v++)
		reject_vip(c, h->name, &vips[v]);
}

static void
ctx_free(struct ctx *c)
{
	free(c->elems);
	free(c->vips);
	free(c->eps);
}

static void
out_reset(struct rules_buf *out)
{
	out->len = 0;
	out->oom = false;
	if (out->data)
		out->data[0] = '\0';
}

static void
ctx_init(struct ctx *c, const struct rules_opts *o, rules_resolve_fn resolve, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->o = o;
	c->mark = o->masq_mark ? o->masq_mark : RULES_DEFAULT_MASQ_MARK;
	c->resolve = resolve;
	c->arg = arg;
}

/* Every host, then the held VIPs, writing the parts in sec. */
static void
render_pass(struct ctx *c, const struct registry *reg, unsigned sec)
{
	c->sec = sec;
	for (size_t i = 0; reg && i < reg->nhosts && !c->oom; i++)
		render_host(c, &reg->hosts[i]);
	/* a removed host's VIP is held, not routed: refuse it at once instead
	 * of letting cached answers hang on an unroutable address */
	for (size_t i = 0; i < c->o->nheld && !c->oom; i++)
		if (c->o->held[i].family == AF_INET)
			reject_vip(c, "held VIP of a removed host", &c->o->held[i]);
}

/* The whole text into out, part by part (a streamed out hands it on). */
static bool
render_parts(const struct registry *reg, const struct rules_opts *o, rules_resolve_fn resolve, void *arg,
    struct rules_buf *out)
{
	struct ctx c;
	ctx_init(&c, o, resolve, arg);
	c.out = out;
	if (o->format == RULES_FMT_NFT) {
		render_pass(&c, reg, SEC_ELEMS);
		if (!c.oom)
			nft_head(&c, out);
		if (!c.oom && !out->oom)
			render_pass(&c, reg, SEC_CHAINS);
		buf_puts(out, "}\n");
	} else {
		ipt_head(&c, out);
		render_pass(&c, reg, SEC_DECL);
		ipt_masq(&c, out);
		if (!c.oom && !out->oom)
			render_pass(&c, reg, SEC_SVCS);
		if (!c.oom && !out->oom)
			render_pass(&c, reg, SEC_CHAINS);
		buf_puts(out, IPT_FILTER_HEAD);
		if (!c.oom && !out->oom)
			render_pass(&c, reg, SEC_FILT);
		buf_puts(out, "COMMIT\n");
	}
	bool ok = !c.oom && !out->oom;
	ctx_free(&c);
	return ok;
}

bool
rules_render(const struct registry *reg, const struct rules_opts *o,
    rules_resolve_fn resolve, void *arg, struct rules_buf *out)
{
	out_reset(out);
	if (rules_opts_problem(o) != NULL)
		return false;
	return render_parts(reg, o, resolve, arg, out);
}

bool
rules_render_to(const struct registry *reg, const struct rules_opts *o, rules_resolve_fn resolve, void *arg,
    rules_sink_fn sink, void *sink_arg, size_t chunk, size_t *len)
{
	struct rules_buf out = { 0 };

	*len = 0;
	if (rules_opts_problem(o) != NULL)
		return false;
	out.sink = sink;
	out.sink_arg = sink_arg;
	out.spill = chunk ? chunk : RULES_SINK_CHUNK;
	bool ok = render_parts(reg, o, resolve, arg, &out);
	buf_flush(&out);
	ok = ok && !out.oom;
	*len = out.sent;
	free(out.data);
	return ok;
}

bool
rules_render_cleanup(const struct rules_opts *o, struct rules_buf *out)
{
	static const char *const statics[] = {
		RULES_CHAIN_SERVICES, RULES_CHAIN_MARK_MASQ, RULES_CHAIN_POSTROUTING,
	};

	out_reset(out);
	if (rules_opts_problem(o) != NULL)
		return false;
	if (o->format == RULES_FMT_NFT) {
		buf_puts(out, "table ip " RULES_NFT_TABLE " {}\n"
		    "delete table ip " RULES_NFT_TABLE "\n");
		return !out->oom;
	}
	buf_puts(out, "*nat\n");
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < sizeof(statics) / sizeof(statics[0]); i++)
			buf_printf(out, pass == 0 ? ":%s - [0:0]\n" : "-X %s\n", statics[i]);
		for (size_t i = 0; i < o->nexisting; i++) {
			const char *s = o->existing_chains[i];
			bool dup = false;
			if (!rules_is_own_chain(s) || strlen(s) > RULES_CHAIN_MAX)
				continue;
			for (size_t k = 0; k < sizeof(statics) / sizeof(statics[0]); k++)
				dup |= strcmp(s, statics[k]) == 0;
			dup |= strcmp(s, RULES_CHAIN_FILTER) == 0;
			if (!dup)
				buf_printf(out, pass == 0 ? ":%s - [0:0]\n" : "-X %s\n", s);
		}
	}
	buf_puts(out, "COMMIT\n*filter\n:" RULES_CHAIN_FILTER " - [0:0]\n-X " RULES_CHAIN_FILTER "\nCOMMIT\n");
	return !out->oom;
}
