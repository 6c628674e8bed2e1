/* Unit tests for the answer cache (pure: time is passed in). */
#include <criterion/criterion.h>
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

static uint8_t qb[4096], rb[4096], out[4096];

static size_t
wire(ldns_pkt *p, uint8_t *dst)
{
	uint8_t *w = NULL;
	size_t n = 0;
	cr_assert_eq(ldns_pkt2wire(&w, p, &n), LDNS_STATUS_OK);
	memcpy(dst, w, n);
	free(w);
	return n;
}

/* query for name/type; edns 0 = none */
static size_t
query(const char *name, ldns_rr_type t, uint16_t edns, bool dobit, uint8_t *dst)
{
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str(name), t, LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_pkt_set_id(p, 0x1234);
	if (edns) {
		ldns_pkt_set_edns_udp_size(p, edns);
		ldns_pkt_set_edns_do(p, dobit);
	}
	size_t n = wire(p, dst);
	ldns_pkt_free(p);
	return n;
}

/* a reply to name/type with the given RRs (presentation) in answer and
 * authority, rcode, and an OPT with a COOKIE when cookie */
static size_t
reply(const char *name, ldns_rr_type t, const char *const *an, const char *const *ns, ldns_pkt_rcode rc, bool opt,
    uint8_t *dst)
{
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str(name), t, LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, rc);
	for (size_t i = 0; an && an[i]; i++) {
		ldns_rr *rr;
		cr_assert_eq(ldns_rr_new_frm_str(&rr, an[i], 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	for (size_t i = 0; ns && ns[i]; i++) {
		ldns_rr *rr;
		cr_assert_eq(ldns_rr_new_frm_str(&rr, ns[i], 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr);
	}
	if (opt) {
		ldns_pkt_set_edns_udp_size(p, 1232);
		uint8_t cookie[] = { 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
		ldns_pkt_set_edns_data(p, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, sizeof(cookie), cookie));
	}
	size_t n = wire(p, dst);
	ldns_pkt_free(p);
	return n;
}

static struct cache *
mk(size_t size)
{
	struct cache_opts o = { .size = size, .min_ttl = 5, .max_ttl = 3600, .max_negative_ttl = 300, .stale_max = 60 };
	struct cache *c = cache_new(&o);
	cr_assert_not_null(c);
	return c;
}

static bool
keyof(const uint8_t *q, size_t n, struct cache_key *k)
{
	struct dns_query dq;
	cr_assert_eq(dnswire_parse_query(q, n, &dq), DNS_Q_OK);
	return cache_key(q, n, &dq, k);
}

Test(cache, hit_ages_ttls_and_keeps_the_clients_id_and_case)
{
	struct cache *c = mk(16);
	const char *an[] = { "www.example.org. 100 IN A 192.0.2.1", "www.example.org. 60 IN A 192.0.2.2", NULL };
	size_t rl = reply("www.example.org.", LDNS_RR_TYPE_A, an, NULL, LDNS_RCODE_NOERROR, false, rb);
	size_t ql = query("www.example.org.", LDNS_RR_TYPE_A, 0, false, qb);
	struct cache_key k;
	cr_assert(keyof(qb, ql, &k));
	cr_assert(cache_insert(c, &k, rb, rl, 1000.0));
	size_t q2 = query("WWW.Example.ORG.", LDNS_RR_TYPE_A, 0, false, qb);
	struct cache_key k2;
	cr_assert(keyof(qb, q2, &k2));
	qb[0] = 0xbe;
	qb[1] = 0xef;
	struct cache_hit h;
	size_t n = cache_lookup(c, &k2, qb, q2, 1010.0, false, out, sizeof(out), &h);
	cr_assert_gt(n, 0, "a case variant is the same key");
	cr_assert(h.found);
	cr_assert_eq(h.ttl_left, 50, "life = min answer TTL 60, 10 s old");
	ldns_pkt *p;
	cr_assert_eq(ldns_wire2pkt(&p, out, n), LDNS_STATUS_OK);
	cr_assert_eq(ldns_pkt_id(p), 0xbeef);
	char *s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
	cr_assert_str_eq(s, "WWW.Example.ORG.");
	free(s);
	cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), 90);
	cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 1)), 50);
	ldns_pkt_free(p);
	/* expired: a miss, but a stale answer with TTL 30 within stale_max */
	cr_assert_eq(cache_lookup(c, &k2, qb, q2, 1061.0, false, out, sizeof(out), &h), 0);
	n = cache_lookup(c, &k2, qb, q2, 1061.0, true, out, sizeof(out), &h);
	cr_assert_gt(n, 0);
	cr_assert(h.stale);
	cr_assert_eq(ldns_wire2pkt(&p, out, n), LDNS_STATUS_OK);
	cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), 30);
	ldns_pkt_free(p);
	cr_assert_eq(cache_lookup(c, &k2, qb, q2, 1121.0, true, out, sizeof(out), &h), 0, "past stale_max");
	cache_free(c);
}

Test(cache, what_is_not_cached)
{
	struct cache *c = mk(16);
	struct cache_key k;
	size_t ql = query("x.example.", LDNS_RR_TYPE_A, 0, false, qb);
	cr_assert(keyof(qb, ql, &k));
	size_t rl = reply("x.example.", LDNS_RR_TYPE_A, NULL, NULL, LDNS_RCODE_SERVFAIL, false, rb);
	cr_assert_not(cache_insert(c, &k, rb, rl, 1.0), "SERVFAIL");
	rl = reply("x.example.", LDNS_RR_TYPE_A, NULL, NULL, LDNS_RCODE_REFUSED, false, rb);
	cr_assert_not(cache_insert(c, &k, rb, rl, 1.0), "REFUSED");
	const char *an[] = { "x.example. 100 IN A 192.0.2.1", NULL };
	rl = reply("x.example.", LDNS_RR_TYPE_A, an, NULL, LDNS_RCODE_NOERROR, false, rb);
	rb[2] |= 0x02;
	cr_assert_not(cache_insert(c, &k, rb, rl, 1.0), "TC=1");
	/* RD=0 queries have no key */
	qb[2] &= (uint8_t)~0x01;
	struct dns_query dq;
	dnswire_parse_query(qb, ql, &dq);
	cr_assert_not(cache_key(qb, ql, &dq, &k));
	cache_free(c);
}

Test(cache, negative_lifetime_from_the_soa_and_keys_by_do)
{
	struct cache *c = mk(16);
	const char *ns[] = { "example. 900 IN SOA ns. h. 1 2 3 4 20", NULL };
	size_t rl = reply("nx.example.", LDNS_RR_TYPE_A, NULL, ns, LDNS_RCODE_NXDOMAIN, false, rb);
	size_t ql = query("nx.example.", LDNS_RR_TYPE_A, 0, false, qb);
	struct cache_key k, kdo;
	cr_assert(keyof(qb, ql, &k));
	cr_assert(cache_insert(c, &k, rb, rl, 0.0));
	struct cache_hit h;
	cr_assert_gt(cache_lookup(c, &k, qb, ql, 19.0, false, out, sizeof(out), &h), 0);
	cr_assert_eq(cache_lookup(c, &k, qb, ql, 21.0, false, out, sizeof(out), &h), 0, "min(900, 20) = 20 s");
	size_t qd = query("nx.example.", LDNS_RR_TYPE_A, 1232, true, qb);
	cr_assert(keyof(qb, qd, &kdo));
	cr_assert(k.len != kdo.len || memcmp(k.b, kdo.b, k.len) != 0, "DO is a different key");
	cache_free(c);
}

Test(cache, stored_opt_loses_its_options)
{
	struct cache *c = mk(16);
	const char *an[] = { "o.example. 100 IN A 192.0.2.9", NULL };
	size_t rl = reply("o.example.", LDNS_RR_TYPE_A, an, NULL, LDNS_RCODE_NOERROR, true, rb);
	size_t ql = query("o.example.", LDNS_RR_TYPE_A, 1232, false, qb);
	struct cache_key k;
	cr_assert(keyof(qb, ql, &k));
	cr_assert(cache_insert(c, &k, rb, rl, 0.0));
	struct cache_hit h;
	size_t n = cache_lookup(c, &k, qb, ql, 1.0, false, out, sizeof(out), &h);
	cr_assert_eq(n, rl - 12, "the 12-byte COOKIE option is gone");
	ldns_pkt *p;
	cr_assert_eq(ldns_wire2pkt(&p, out, n), LDNS_STATUS_OK);
	cr_assert(ldns_pkt_edns(p));
	cr_assert_null(ldns_pkt_edns_data(p));
	ldns_pkt_free(p);
	cache_free(c);
}

Test(cache, clock_keeps_the_bound)
{
	struct cache *c = mk(8);
	const char *an[] = { "a.example. 100 IN A 192.0.2.1", NULL };
	for (int i = 0; i < 100; i++) {
		char name[64];
		snprintf(name, sizeof(name), "n%d.example.", i);
		size_t ql = query(name, LDNS_RR_TYPE_A, 0, false, qb);
		struct cache_key k;
		cr_assert(keyof(qb, ql, &k));
		size_t rl = reply(name, LDNS_RR_TYPE_A, an, NULL, LDNS_RCODE_NOERROR, false, rb);
		cache_insert(c, &k, rb, rl, 0.0);
	}
	struct cache_stats st;
	cache_stats(c, &st);
	cr_assert_eq(st.entries, 8);
	cr_assert_eq(st.evictions, 92);
	cache_flush(c);
	cache_stats(c, &st);
	cr_assert_eq(st.entries, 0);
	cache_free(c);
}
