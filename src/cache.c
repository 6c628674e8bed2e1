/* cache — see include/cache.h. */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TTLS 512            /* RRs per stored reply; more: not cached */
#define STALE_TTL 30            /* RFC 8767 4: TTL of a stale answer */
#define EDNS_OPT_ECS 8

struct entry {
	uint32_t hash;
	uint32_t next;              /* bucket chain: index + 1, 0 = end */
	bool used;
	bool ref;                   /* CLOCK: hit since the hand last passed */
	bool prefetching;
	uint8_t rcode;
	uint16_t keylen;
	uint16_t len;               /* reply bytes */
	uint16_t nttl;
	uint32_t ttl;               /* lifetime from stored */
	uint32_t hits;
	double stored;
	uint8_t *buf;               /* reply, then nttl uint16 TTL offsets */
	size_t bufcap;
	uint8_t key[CACHE_KEY_MAX];
};

struct cache {
	struct cache_opts o;
	struct entry *e;            /* o.size entries, calloc'd */
	size_t nused;               /* entries ever filled (a prefix of e[]) */
	uint32_t *buckets;          /* heads: index + 1 */
	size_t nbuckets;            /* power of two */
	size_t hand;                /* CLOCK */
	struct cache_stats st;
};

static uint32_t
key_hash(const uint8_t *b, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

struct cache *
cache_new(const struct cache_opts *o)
{
	if (o->size == 0)
		return NULL;
	struct cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->o = *o;
	c->nbuckets = 16;
	while (c->nbuckets < o->size * 2)
		c->nbuckets <<= 1;
	c->e = calloc(o->size, sizeof(*c->e));
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (c->e == NULL || c->buckets == NULL) {
		cache_free(c);
		return NULL;
	}
	return c;
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; c->e && i < c->nused; i++)
		free(c->e[i].buf);
	free(c->e);
	free(c->buckets);
	free(c);
}

void
cache_set_opts(struct cache *c, const struct cache_opts *o)
{
	if (c == NULL)
		return;
	size_t size = c->o.size;
	c->o = *o;
	c->o.size = size;
}

bool
cache_key(const uint8_t *pkt, size_t len, const struct dns_query *q, struct cache_key *k)
{
	if (!q->rd || q->qname_len == 0 || q->question_end > len || q->qname_len + 5 > sizeof(k->b))
		return false;
	if (q->has_edns) {
		/* a query with ECS asks for an answer per client subnet */
		uint16_t offs[8];
		struct dns_layout l;
		if (!dnswire_layout(pkt, len, offs, 8, &l) || l.opt_end == 0)
			return false;
		size_t o = l.opt_start + 11;
		while (o + 4 <= l.opt_end) {
			uint16_t code = DNS_GET16(pkt + o), ol = DNS_GET16(pkt + o + 2);
			if (code == EDNS_OPT_ECS)
				return false;
			o += 4 + (size_t)ol;
		}
	}
	const uint8_t *name = pkt + DNS_HDR_LEN;
	for (size_t i = 0; i < q->qname_len; i++)
		k->b[i] = (uint8_t)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	size_t n = q->qname_len;
	k->b[n++] = (uint8_t)(q->qtype >> 8);
	k->b[n++] = (uint8_t)q->qtype;
	k->b[n++] = (uint8_t)(q->qclass >> 8);
	k->b[n++] = (uint8_t)q->qclass;
	k->b[n++] = (uint8_t)((q->edns_do ? 1 : 0) | (q->cd ? 2 : 0) | (q->has_edns ? 4 : 0));
	k->len = (uint16_t)n;
	k->hash = key_hash(k->b, n);
	return true;
}

static struct entry *
find(const struct cache *c, const struct cache_key *k)
{
	for (uint32_t i = c->buckets[k->hash & (c->nbuckets - 1)]; i; i = c->e[i - 1].next) {
		struct entry *e = &c->e[i - 1];
		if (e->hash == k->hash && e->keylen == k->len && memcmp(e->key, k->b, k->len) == 0)
			return e;
	}
	return NULL;
}

static void
unlink_entry(struct cache *c, struct entry *e)
{
	uint32_t idx = (uint32_t)(e - c->e) + 1;
	uint32_t *p = &c->buckets[e->hash & (c->nbuckets - 1)];
	while (*p && *p != idx)
		p = &c->e[*p - 1].next;
	if (*p == idx)
		*p = e->next;
	e->next = 0;
	e->used = false;
	c->st.entries--;
}

/* A free entry: a never-used one, else the CLOCK victim. */
static struct entry *
take(struct cache *c)
{
	if (c->nused < c->o.size)
		return &c->e[c->nused++];
	for (;;) {
		struct entry *e = &c->e[c->hand];
		c->hand = (c->hand + 1) % c->o.size;
		if (!e->used)
			return e;
		if (e->ref) {
			e->ref = false;
			continue;
		}
		unlink_entry(c, e);
		c->st.evictions++;
		return e;
	}
}

bool
cache_insert(struct cache *c, const struct cache_key *k, const uint8_t *reply, size_t len, double now)
{
	if (c == NULL || len < DNS_HDR_LEN || len > UINT16_MAX || dnswire_tc(reply))
		return false;
	unsigned rcode = dnswire_rcode(reply);
	if (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN)
		return false;
	uint16_t offs[MAX_TTLS];
	struct dns_layout l;
	if (!dnswire_layout(reply, len, offs, MAX_TTLS, &l))
		return false;
	uint32_t ttl;
	if (rcode == DNS_RCODE_NOERROR && dnswire_ancount(reply) > 0) {
		ttl = l.min_answer_ttl;
		if (ttl < c->o.min_ttl)
			ttl = c->o.min_ttl;
		if (ttl > c->o.max_ttl)
			ttl = c->o.max_ttl;
	} else {
		uint32_t neg;
		ttl = dnswire_negative_ttl(reply, len, &neg) ? neg : c->o.min_ttl;
		if (ttl > c->o.max_negative_ttl)
			ttl = c->o.max_negative_ttl;
	}
	if (ttl == 0)
		return false;
	/* the OPT without its options (a COOKIE belongs to one client) */
	size_t stored = len;
	if (l.opt_end != 0 && l.opt_end - l.opt_start > 11)
		stored = l.opt_start + 11;
	struct entry *e = find(c, k);
	if (e == NULL) {
		e = take(c);
		e->hash = k->hash;
		e->keylen = k->len;
		memcpy(e->key, k->b, k->len);
		uint32_t *head = &c->buckets[k->hash & (c->nbuckets - 1)];
		e->next = *head;
		*head = (uint32_t)(e - c->e) + 1;
		e->used = true;
		e->ref = false;
		e->hits = 0;
		c->st.entries++;
	}
	size_t need = stored + (size_t)l.nttl * sizeof(uint16_t);
	if (need > e->bufcap) {
		uint8_t *nb = realloc(e->buf, need);
		if (nb == NULL) {
			unlink_entry(c, e);
			return false;
		}
		e->buf = nb;
		e->bufcap = need;
	}
	memcpy(e->buf, reply, stored);
	if (stored != len) {
		e->buf[stored - 2] = 0; /* OPT RDLENGTH */
		e->buf[stored - 1] = 0;
	}
	memcpy(e->buf + stored, offs, (size_t)l.nttl * sizeof(uint16_t));
	e->len = (uint16_t)stored;
	e->nttl = (uint16_t)l.nttl;
	e->ttl = ttl;
	e->stored = now;
	e->rcode = (uint8_t)rcode;
	e->prefetching = false;
	c->st.inserts++;
	return true;
}

size_t
cache_lookup(struct cache *c, const struct cache_key *k, const uint8_t *pkt, size_t plen, double now, bool stale_ok,
    uint8_t *out, size_t cap, struct cache_hit *hit)
{
	memset(hit, 0, sizeof(*hit));
	if (c == NULL)
		return 0;
	struct entry *e = find(c, k);
	double age = e ? now - e->stored : 0;
	if (age < 0)
		age = 0;
	bool fresh = e != NULL && age < (double)e->ttl;
	bool stale = e != NULL && !fresh && stale_ok && age < (double)e->ttl + (double)c->o.stale_max;
	if (!fresh && !stale) {
		if (!stale_ok)
			c->st.misses++;
		return 0;
	}
	size_t qn = k->len - 5; /* the QNAME's wire length */
	if (e->len > cap || plen < DNS_HDR_LEN + qn)
		return 0;
	memcpy(out, e->buf, e->len);
	out[0] = pkt[0];
	out[1] = pkt[1];
	memcpy(out + DNS_HDR_LEN, pkt + DNS_HDR_LEN, qn); /* the client's case */
	const uint16_t *offs = (const uint16_t *)(void *)(e->buf + e->len);
	uint32_t a = (uint32_t)age;
	for (size_t i = 0; i < e->nttl; i++) {
		uint16_t o;
		memcpy(&o, (const uint8_t *)offs + i * sizeof(o), sizeof(o));
		uint32_t t = get32(out + o);
		put32(out + o, stale ? STALE_TTL : t > a ? t - a : 0);
	}
	e->ref = true;
	e->hits++;
	hit->found = true;
	if (stale) {
		hit->stale = true;
		c->st.stale++;
	} else {
		hit->ttl_left = (uint32_t)((double)e->ttl - age);
		c->st.hits++;
		/* popular and in its last 10 %: refresh it before it expires */
		if (!e->prefetching && e->hits >= 2 && age >= (double)e->ttl * 0.9) {
			e->prefetching = true;
			hit->prefetch = true;
		}
	}
	return e->len;
}

bool
cache_peek(const struct cache *c, const struct cache_key *k, double now, double *left, unsigned *rcode)
{
	if (c == NULL)
		return false;
	const struct entry *e = find(c, k);
	if (e == NULL)
		return false;
	*left = (double)e->ttl - (now - e->stored);
	*rcode = e->rcode;
	return true;
}

void
cache_prefetch_failed(struct cache *c, const struct cache_key *k)
{
	struct entry *e = c ? find(c, k) : NULL;
	if (e)
		e->prefetching = false;
}

void
cache_flush(struct cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nused; i++) {
		c->e[i].used = false;
		c->e[i].next = 0;
	}
	memset(c->buckets, 0, c->nbuckets * sizeof(*c->buckets));
	c->st.entries = 0;
	c->hand = 0;
	/* buffers stay allocated for reuse; nused stays: freed entries are
	 * taken again through the CLOCK scan */
}

void
cache_stats(const struct cache *c, struct cache_stats *st)
{
	if (c == NULL) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = c->st;
}

void
cache_count_prefetch(struct cache *c)
{
	if (c)
		c->st.prefetches++;
}
