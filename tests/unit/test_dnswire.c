/*
 * Unit tests for dnswire. ldns is the reference: it builds the queries we
 * parse and parses the replies we build.
 */
#include <criterion/criterion.h>
#include <ldns/ldns.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dnswire.h"

static uint8_t qbuf[65536];
static uint8_t obuf[65536];

/* Wire of an ldns packet into dst; returns its length. */
static size_t
pkt_to_wire(ldns_pkt *p, uint8_t *dst, size_t cap)
{
	uint8_t *w = NULL;
	size_t n = 0;

	cr_assert_eq(ldns_pkt2wire(&w, p, &n), LDNS_STATUS_OK);
	cr_assert_leq(n, cap);
	memcpy(dst, w, n);
	free(w);
	return n;
}

/* A query for name/type/class; edns_udp 0 means no OPT. */
static size_t
mkquery(const char *name, ldns_rr_type t, ldns_rr_class c, uint16_t id,
    uint16_t edns_udp, bool dobit, uint8_t *dst)
{
	ldns_rdf *dn = ldns_dname_new_frm_str(name);
	ldns_pkt *p;
	size_t n;

	cr_assert_not_null(dn);
	p = ldns_pkt_query_new(dn, t, c, LDNS_RD);
	cr_assert_not_null(p);
	ldns_pkt_set_id(p, id);
	if (edns_udp != 0) {
		ldns_pkt_set_edns_udp_size(p, edns_udp);
		ldns_pkt_set_edns_do(p, dobit);
	}
	n = pkt_to_wire(p, dst, 65536);
	ldns_pkt_free(p);
	return n;
}

static ldns_pkt *
parse_out(const uint8_t *b, size_t n)
{
	ldns_pkt *p = NULL;

	cr_assert_gt(n, 0, "builder returned 0");
	cr_assert_eq(ldns_wire2pkt(&p, b, n), LDNS_STATUS_OK,
	    "ldns cannot parse our output");
	return p;
}

static char *
rdf_str(const ldns_rdf *r)
{
	return ldns_rdf2str(r);
}

static void
assert_owner(const ldns_rr *rr, const char *want)
{
	char *s = rdf_str(ldns_rr_owner(rr));
	cr_assert_str_eq(s, want);
	free(s);
}

static void
assert_a(const ldns_rr *rr, const char *addr)
{
	char *s = rdf_str(ldns_rr_rdf(rr, 0));
	cr_assert_str_eq(s, addr);
	free(s);
}

static struct netaddr
na(const char *s)
{
	struct netaddr a;
	cr_assert(netaddr_parse(s, &a), "bad test address %s", s);
	return a;
}

/* A hand-made query header + question. */
static size_t
rawq(uint8_t *b, uint8_t flags2, uint16_t qd, uint16_t an, uint16_t ar,
    const uint8_t *qname, size_t qnlen, bool tail)
{
	size_t n = 0;

	memset(b, 0, 12);
	b[0] = 0x12; b[1] = 0x34; b[2] = flags2;
	b[4] = qd >> 8; b[5] = qd & 0xff;
	b[6] = an >> 8; b[7] = an & 0xff;
	b[10] = ar >> 8; b[11] = ar & 0xff;
	n = 12;
	if (qnlen > 0)
		memcpy(b + n, qname, qnlen);
	n += qnlen;
	if (tail) {
		b[n++] = 0; b[n++] = 1; b[n++] = 0; b[n++] = 1;
	}
	return n;
}

static const uint8_t WWW_EX[] = "\3www\7example\3com";	/* + NUL = root */

/* ------------------------------------------------------------------ */
/* parse_query                                                         */

Test(dnswire, parse_basic)
{
	struct dns_query q;
	size_t n = mkquery("Api.Stripe.COM", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
	    0xbeef, 0, false, qbuf);

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	cr_assert_eq(q.id, 0xbeef);
	cr_assert(q.rd);
	cr_assert(!q.cd);
	cr_assert_eq(q.opcode, 0);
	cr_assert_eq(q.qtype, DNS_TYPE_A);
	cr_assert_eq(q.qclass, DNS_CLASS_IN);
	cr_assert_str_eq(q.name, "api.stripe.com");
	cr_assert(q.name_plain);
	cr_assert_eq(q.qname_len, 16);
	cr_assert_eq(q.question_end, 12 + 16 + 4);
	cr_assert(!q.has_edns);
	cr_assert_eq(q.client_limit, 512);
}

Test(dnswire, parse_edns)
{
	struct dns_query q;
	size_t n = mkquery("example.org", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN,
	    1, 4096, true, qbuf);

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	cr_assert(q.has_edns);
	cr_assert_eq(q.edns_udp, 4096);
	cr_assert(q.edns_do);
	cr_assert_eq(q.edns_version, 0);
	cr_assert_eq(q.client_limit, 4096);
	cr_assert_eq(q.qtype, DNS_TYPE_AAAA);

	n = mkquery("example.org", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 1, 100,
	    false, qbuf);
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	cr_assert(q.has_edns);
	cr_assert(!q.edns_do);
	cr_assert_eq(q.edns_udp, 100);
	cr_assert_eq(q.client_limit, 512);
}

Test(dnswire, parse_root_and_cd)
{
	struct dns_query q;
	uint8_t b[64];
	size_t n = rawq(b, 0x01, 1, 0, 0, (const uint8_t *)"", 1, true);

	b[3] = 0x10;		/* CD */
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_OK);
	cr_assert_str_eq(q.name, "");
	cr_assert_eq(q.qname_len, 1);
	cr_assert(q.cd);
	cr_assert(q.rd);
}

Test(dnswire, parse_drop)
{
	struct dns_query q;
	size_t n = mkquery("a.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 1, 0,
	    false, qbuf);

	cr_assert_eq(dnswire_parse_query(qbuf, 11, &q), DNS_Q_DROP);
	cr_assert_eq(dnswire_parse_query(qbuf, 0, &q), DNS_Q_DROP);
	qbuf[2] |= 0x80;	/* QR */
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_DROP);
}

Test(dnswire, parse_notimp)
{
	struct dns_query q;
	size_t n = mkquery("a.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 1, 0,
	    false, qbuf);

	qbuf[2] = (qbuf[2] & ~0x78) | (2 << 3);	/* opcode STATUS */
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_NOTIMP);
	cr_assert_eq(q.opcode, 2);
	qbuf[2] = (qbuf[2] & ~0x78) | (5 << 3);	/* UPDATE */
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_NOTIMP);
	cr_assert_eq(q.opcode, 5);
}

Test(dnswire, parse_qdcount)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n;

	n = rawq(b, 1, 0, 0, 0, WWW_EX, sizeof(WWW_EX), true);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
	cr_assert_eq(q.qname_len, 0);
	n = rawq(b, 1, 0, 0, 0, NULL, 0, false);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
	n = rawq(b, 1, 2, 0, 0, WWW_EX, sizeof(WWW_EX), true);
	memcpy(b + n, WWW_EX, sizeof(WWW_EX));
	n += sizeof(WWW_EX);
	memcpy(b + n, "\0\1\0\1", 4);
	n += 4;
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
}

Test(dnswire, parse_bad_labels)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n;
	static const uint8_t l40[] = { 0x40, 'a', 0 };
	static const uint8_t l80[] = { 0x80, 'a', 0 };
	static const uint8_t ptr[] = { 3, 'w', 'w', 'w', 0xc0, 0x0c };
	static const uint8_t ptr0[] = { 0xc0, 0x0c };

	n = rawq(b, 1, 1, 0, 0, l40, sizeof(l40), true);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
	n = rawq(b, 1, 1, 0, 0, l80, sizeof(l80), true);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
	n = rawq(b, 1, 1, 0, 0, ptr, sizeof(ptr), true);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
	n = rawq(b, 1, 1, 0, 0, ptr0, sizeof(ptr0), true);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
}

/* A wire name of exactly wirelen bytes made of 63-byte labels and filler. */
static size_t
long_name(uint8_t *w, size_t wirelen)
{
	size_t n = 0, left = wirelen - 1;

	while (left > 0) {
		size_t l = left - 1 > 63 ? 63 : left - 1;
		if (left - 1 - l == 1)	/* avoid a trailing 0-byte remainder */
			l--;
		w[n++] = l;
		memset(w + n, 'a', l);
		n += l;
		left -= l + 1;
	}
	w[n++] = 0;
	return n;
}

Test(dnswire, parse_name_length)
{
	struct dns_query q;
	uint8_t b[600], name[300];
	size_t nl, n;

	nl = long_name(name, 255);
	cr_assert_eq(nl, 255);
	n = rawq(b, 1, 1, 0, 0, name, nl, true);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_OK);
	cr_assert_eq(q.qname_len, 255);
	cr_assert_eq(strlen(q.name), 253);
	cr_assert(q.name_plain);

	nl = long_name(name, 256);
	cr_assert_eq(nl, 256);
	n = rawq(b, 1, 1, 0, 0, name, nl, true);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
}

Test(dnswire, parse_truncated_question)
{
	struct dns_query q;
	size_t n = mkquery("www.example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
	    1, 0, false, qbuf);

	for (size_t cut = 12; cut < n; cut++)
		cr_assert_eq(dnswire_parse_query(qbuf, cut, &q), DNS_Q_FORMERR,
		    "cut at %zu", cut);
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
}

static const uint8_t OPT0[] = { 0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0 };

Test(dnswire, parse_two_opts)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n = rawq(b, 1, 1, 0, 2, WWW_EX, sizeof(WWW_EX), true);

	memcpy(b + n, OPT0, 11);
	memcpy(b + n + 11, OPT0, 11);
	cr_assert_eq(dnswire_parse_query(b, n + 22, &q), DNS_Q_FORMERR);
	/* The question still parsed, for the error reply. */
	cr_assert_eq(q.qname_len, sizeof(WWW_EX));
	/* One OPT is fine. */
	b[11] = 1;
	cr_assert_eq(dnswire_parse_query(b, n + 11, &q), DNS_Q_OK);
	cr_assert_eq(q.edns_udp, 4096);
}

Test(dnswire, parse_bad_additional)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n = rawq(b, 1, 1, 0, 1, WWW_EX, sizeof(WWW_EX), true);

	/* OPT with a non-root owner. */
	b[n] = 1; b[n + 1] = 'x'; b[n + 2] = 0;
	memcpy(b + n + 3, OPT0 + 1, 10);
	cr_assert_eq(dnswire_parse_query(b, n + 13, &q), DNS_Q_FORMERR);
	/* Truncated OPT. */
	memcpy(b + n, OPT0, 11);
	for (size_t cut = n; cut < n + 11; cut++)
		cr_assert_eq(dnswire_parse_query(b, cut, &q), DNS_Q_FORMERR);
	/* rdlength past the end. */
	b[n + 10] = 4;
	cr_assert_eq(dnswire_parse_query(b, n + 11, &q), DNS_Q_FORMERR);
	/* ARCOUNT 2 with only one RR. */
	b[n + 10] = 0;
	b[11] = 2;
	cr_assert_eq(dnswire_parse_query(b, n + 11, &q), DNS_Q_FORMERR);
}

Test(dnswire, parse_answer_section_ignored)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n = rawq(b, 1, 1, 1, 1, WWW_EX, sizeof(WWW_EX), true);
	static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60,
	    0, 4, 1, 2, 3, 4 };

	memcpy(b + n, rr, sizeof(rr));
	memcpy(b + n + sizeof(rr), OPT0, 11);
	cr_assert_eq(dnswire_parse_query(b, n + sizeof(rr) + 11, &q), DNS_Q_OK);
	cr_assert(q.has_edns);
	cr_assert_str_eq(q.name, "www.example.com");
}

Test(dnswire, parse_badvers)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n = rawq(b, 1, 1, 0, 1, WWW_EX, sizeof(WWW_EX), true);

	memcpy(b + n, OPT0, 11);
	b[n + 6] = 1;		/* version 1 */
	cr_assert_eq(dnswire_parse_query(b, n + 11, &q), DNS_Q_BADVERS);
	cr_assert(q.has_edns);
	cr_assert_eq(q.edns_version, 1);
	cr_assert_eq(q.qname_len, sizeof(WWW_EX));
}

Test(dnswire, parse_escapes)
{
	struct dns_query q;
	uint8_t b[128];
	static const uint8_t dot[] = "\3a.b\1\001\3com";
	static const uint8_t star[] = "\1*\3com";
	size_t n = rawq(b, 1, 1, 0, 0, dot, sizeof(dot), true);

	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_OK);
	cr_assert_str_eq(q.name, "a\\046b.\\001.com");
	cr_assert(!q.name_plain);
	n = rawq(b, 1, 1, 0, 0, star, sizeof(star), true);
	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_OK);
	cr_assert_str_eq(q.name, "*.com");
	cr_assert(!q.name_plain);
}

/* ------------------------------------------------------------------ */
/* build_answer                                                        */

Test(dnswire, answer_a_case_preserved)
{
	struct dns_query q;
	struct netaddr addrs[2] = { na("240.240.0.7"), na("240.240.0.8") };
	struct dns_answer a = { .aa = true, .addrs = addrs, .naddrs = 2,
	    .ttl = 30 };
	size_t n = mkquery("Api.Stripe.COM", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
	    0x4242, 0, false, qbuf), m;
	ldns_pkt *p;
	ldns_rr_list *ans;

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, q.client_limit, obuf,
	    sizeof(obuf));
	/* Question echoed byte for byte. */
	cr_assert_eq(memcmp(obuf + 12, qbuf + 12, q.question_end - 12), 0);
	cr_assert_eq(memcmp(obuf + 12, "\3Api\6Stripe\3COM", 16), 0);
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_id(p), 0x4242);
	cr_assert(ldns_pkt_qr(p));
	cr_assert(ldns_pkt_aa(p));
	cr_assert(ldns_pkt_ra(p));
	cr_assert(ldns_pkt_rd(p));
	cr_assert(!ldns_pkt_tc(p));
	cr_assert(!ldns_pkt_cd(p));
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	cr_assert_eq(ldns_pkt_ancount(p), 2);
	cr_assert_eq(ldns_pkt_nscount(p), 0);
	cr_assert_eq(ldns_pkt_arcount(p), 0);
	cr_assert(!ldns_pkt_edns(p));
	ans = ldns_pkt_answer(p);
	for (size_t i = 0; i < 2; i++) {
		ldns_rr *rr = ldns_rr_list_rr(ans, i);
		cr_assert_eq(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
		cr_assert_eq(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
		cr_assert_eq(ldns_rr_ttl(rr), 30);
		/* Owner via the 0xC00C pointer: case as in the question. */
		assert_owner(rr, "Api.Stripe.COM.");
	}
	assert_a(ldns_rr_list_rr(ans, 0), "240.240.0.7");
	assert_a(ldns_rr_list_rr(ans, 1), "240.240.0.8");
	/* First answer owner is a pointer to the question name. */
	cr_assert_eq(obuf[q.question_end], 0xc0);
	cr_assert_eq(obuf[q.question_end + 1], 0x0c);
	ldns_pkt_free(p);
}

Test(dnswire, answer_rotation)
{
	struct dns_query q;
	struct netaddr addrs[3] = { na("10.0.0.1"), na("10.0.0.2"),
	    na("10.0.0.3") };
	struct dns_answer a = { .addrs = addrs, .naddrs = 3, .ttl = 5 };
	size_t n = mkquery("svc.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 7,
	    0, false, qbuf);
	static const char *want[4][3] = {
		{ "10.0.0.1", "10.0.0.2", "10.0.0.3" },
		{ "10.0.0.2", "10.0.0.3", "10.0.0.1" },
		{ "10.0.0.3", "10.0.0.1", "10.0.0.2" },
		{ "10.0.0.1", "10.0.0.2", "10.0.0.3" },
	};

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	for (size_t call = 0; call < 4; call++) {
		a.rotate = call;
		size_t m = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf,
		    sizeof(obuf));
		ldns_pkt *p = parse_out(obuf, m);
		cr_assert(!ldns_pkt_aa(p));
		cr_assert_eq(ldns_pkt_ancount(p), 3);
		for (size_t i = 0; i < 3; i++)
			assert_a(ldns_rr_list_rr(ldns_pkt_answer(p), i),
			    want[call][i]);
		ldns_pkt_free(p);
	}
}

Test(dnswire, answer_cname_chain)
{
	struct dns_query q;
	struct netaddr addrs[2] = { na("240.240.1.1"), na("240.240.1.2") };
	struct dns_answer a = { .aa = true, .cname = "Vip.Mesh.Local",
	    .addrs = addrs, .naddrs = 2, .ttl = 60 };
	size_t n = mkquery("db.Example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
	    9, 0, false, qbuf), m, tgt;
	ldns_pkt *p;
	ldns_rr *rr;
	char *s;

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_ancount(p), 3);
	rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	cr_assert_eq(ldns_rr_get_type(rr), LDNS_RR_TYPE_CNAME);
	cr_assert_eq(ldns_rr_ttl(rr), 60);
	assert_owner(rr, "db.Example.com.");
	s = rdf_str(ldns_rr_rdf(rr, 0));
	cr_assert_str_eq(s, "vip.mesh.local.");
	free(s);
	for (size_t i = 1; i < 3; i++) {
		rr = ldns_rr_list_rr(ldns_pkt_answer(p), i);
		cr_assert_eq(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
		assert_owner(rr, "vip.mesh.local.");
	}
	/* A owners point at the CNAME rdata. */
	tgt = q.question_end + 12;
	cr_assert_eq(obuf[tgt + 16], 0xc0);
	cr_assert_eq(obuf[tgt + 17], tgt);
	ldns_pkt_free(p);
}

Test(dnswire, answer_nodata_nxdomain)
{
	struct dns_query q;
	struct dns_answer a = { .aa = true, .ttl = 30 };
	size_t n = mkquery("svc.example", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN,
	    7, 0, false, qbuf), m;
	ldns_pkt *p;

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, sizeof(obuf));
	cr_assert_eq(m, q.question_end);
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	cr_assert(ldns_pkt_aa(p));
	ldns_pkt_free(p);

	a.rcode = DNS_RCODE_NXDOMAIN;
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
}

Test(dnswire, answer_aaaa)
{
	struct dns_query q;
	struct netaddr addrs[1] = { na("fd00::7") };
	struct dns_answer a = { .addrs = addrs, .naddrs = 1, .ttl = 10 };
	size_t n = mkquery("v6.example", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN,
	    7, 0, false, qbuf), m;
	ldns_pkt *p;
	ldns_rr *rr;

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_ancount(p), 1);
	rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	cr_assert_eq(ldns_rr_get_type(rr), LDNS_RR_TYPE_AAAA);
	assert_a(rr, "fd00::7");
	ldns_pkt_free(p);
}

Test(dnswire, answer_ptr)
{
	struct dns_query q;
	struct dns_answer a = { .aa = true, .ptr = "api.stripe.com", .ttl = 30 };
	size_t n = mkquery("7.0.240.240.in-addr.arpa", LDNS_RR_TYPE_PTR,
	    LDNS_RR_CLASS_IN, 7, 0, false, qbuf), m;
	ldns_pkt *p;
	ldns_rr *rr;
	char *s;

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_ancount(p), 1);
	rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	cr_assert_eq(ldns_rr_get_type(rr), LDNS_RR_TYPE_PTR);
	assert_owner(rr, "7.0.240.240.in-addr.arpa.");
	s = rdf_str(ldns_rr_rdf(rr, 0));
	cr_assert_str_eq(s, "api.stripe.com.");
	free(s);
	ldns_pkt_free(p);
}

Test(dnswire, answer_txt_chaos_split)
{
	struct dns_query q;
	char longs[601];
	const char *txt[3] = { "sedns 1.0", longs, "" };
	struct dns_answer a = { .aa = true, .txt = txt, .ntxt = 3, .ttl = 0 };
	size_t n = mkquery("version.bind", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH,
	    7, 0, false, qbuf), m;
	ldns_pkt *p;
	ldns_rr *rr;

	memset(longs, 'x', 600);
	longs[600] = '\0';
	longs[0] = 'A';
	longs[599] = 'Z';
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	cr_assert_eq(q.qclass, DNS_CLASS_CH);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 65535, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_ancount(p), 3);
	rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	cr_assert_eq(ldns_rr_get_type(rr), LDNS_RR_TYPE_TXT);
	cr_assert_eq(ldns_rr_get_class(rr), LDNS_RR_CLASS_CH);
	cr_assert_eq(ldns_rr_rd_count(rr), 1);
	cr_assert_eq(ldns_rdf_size(ldns_rr_rdf(rr, 0)), 10);
	cr_assert_eq(memcmp(ldns_rdf_data(ldns_rr_rdf(rr, 0)), "\011sedns 1.0",
	    10), 0);
	rr = ldns_rr_list_rr(ldns_pkt_answer(p), 1);
	cr_assert_eq(ldns_rr_rd_count(rr), 3);
	cr_assert_eq(ldns_rdf_size(ldns_rr_rdf(rr, 0)), 256);
	cr_assert_eq(ldns_rdf_size(ldns_rr_rdf(rr, 1)), 256);
	cr_assert_eq(ldns_rdf_size(ldns_rr_rdf(rr, 2)), 91);
	cr_assert_eq(ldns_rdf_data(ldns_rr_rdf(rr, 0))[1], 'A');
	cr_assert_eq(ldns_rdf_data(ldns_rr_rdf(rr, 2))[90], 'Z');
	rr = ldns_rr_list_rr(ldns_pkt_answer(p), 2);
	cr_assert_eq(ldns_rr_rd_count(rr), 1);
	cr_assert_eq(ldns_rdf_size(ldns_rr_rdf(rr, 0)), 1);
	ldns_pkt_free(p);
}

Test(dnswire, answer_opt_iff_edns)
{
	struct dns_query q;
	struct netaddr addrs[1] = { na("240.240.0.1") };
	struct dns_answer a = { .addrs = addrs, .naddrs = 1, .ttl = 30 };
	size_t n = mkquery("svc.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 7,
	    4096, true, qbuf), m;
	ldns_pkt *p;

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, q.client_limit, obuf,
	    sizeof(obuf));
	cr_assert_eq(obuf[11], 1);	/* ARCOUNT on the wire */
	p = parse_out(obuf, m);
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), 1232);
	cr_assert(ldns_pkt_edns_do(p));
	cr_assert_eq(ldns_pkt_edns_version(p), 0);
	cr_assert_eq(ldns_pkt_ancount(p), 1);
	ldns_pkt_free(p);

	n = mkquery("svc.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 7, 0,
	    false, qbuf);
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, q.client_limit, obuf,
	    sizeof(obuf));
	cr_assert_eq(obuf[10], 0);
	cr_assert_eq(obuf[11], 0);
	p = parse_out(obuf, m);
	cr_assert(!ldns_pkt_edns(p));
	ldns_pkt_free(p);
}

Test(dnswire, answer_truncation)
{
	struct dns_query q;
	struct netaddr addrs[40];
	struct dns_answer a = { .aa = true, .addrs = addrs, .naddrs = 40,
	    .ttl = 30 };
	size_t n, m;
	ldns_pkt *p;

	for (int i = 0; i < 40; i++) {
		memset(&addrs[i], 0, sizeof(addrs[i]));
		addrs[i].family = AF_INET;
		addrs[i].a[0] = 10;
		addrs[i].a[3] = i;
	}
	n = mkquery("many.example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 7, 0,
	    false, qbuf);
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, q.client_limit, obuf,
	    sizeof(obuf));
	cr_assert_leq(m, 512);
	p = parse_out(obuf, m);
	cr_assert(ldns_pkt_tc(p));
	cr_assert(ldns_pkt_aa(p));
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	ldns_pkt_free(p);

	/* Same over TCP: everything fits. */
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 65535, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert(!ldns_pkt_tc(p));
	cr_assert_eq(ldns_pkt_ancount(p), 40);
	ldns_pkt_free(p);

	/* EDNS 4096: all fit, OPT kept. */
	n = mkquery("many.example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 7,
	    4096, false, qbuf);
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, q.client_limit, obuf,
	    sizeof(obuf));
	cr_assert_gt(m, 512);
	p = parse_out(obuf, m);
	cr_assert(!ldns_pkt_tc(p));
	cr_assert_eq(ldns_pkt_ancount(p), 40);
	cr_assert(ldns_pkt_edns(p));
	ldns_pkt_free(p);

	/* EDNS 512 (small): truncated, OPT still there. */
	n = mkquery("many.example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 7,
	    512, false, qbuf);
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, q.client_limit, obuf,
	    sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert(ldns_pkt_tc(p));
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), 1232);
	ldns_pkt_free(p);
}

Test(dnswire, answer_small_cap)
{
	struct dns_query q;
	struct netaddr addrs[2] = { na("10.0.0.1"), na("10.0.0.2") };
	struct dns_answer a = { .addrs = addrs, .naddrs = 2, .ttl = 30 };
	size_t n = mkquery("svc.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 7,
	    0, false, qbuf), full;

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	full = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, sizeof(obuf));
	cr_assert_eq(full, q.question_end + 2 * 16);
	cr_assert_eq(dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf,
	    full - 1), 0);
	cr_assert_eq(dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf,
	    full), full);
	cr_assert_eq(dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, 5), 0);
	a.cname = "bad..name";
	cr_assert_eq(dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf,
	    sizeof(obuf)), 0);
}

/* ------------------------------------------------------------------ */
/* build_error                                                         */

Test(dnswire, error_formerr_echo)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n = rawq(b, 1, 1, 0, 2, WWW_EX, sizeof(WWW_EX), true), m;
	ldns_pkt *p;

	memcpy(b + n, OPT0, 11);
	memcpy(b + n + 11, OPT0, 11);
	b[3] = 0x10;	/* CD */
	cr_assert_eq(dnswire_parse_query(b, n + 22, &q), DNS_Q_FORMERR);
	m = dnswire_build_error(b, n + 22, &q, DNS_RCODE_FORMERR, 1232, obuf,
	    sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_id(p), 0x1234);
	cr_assert(ldns_pkt_qr(p));
	cr_assert(ldns_pkt_ra(p));
	cr_assert(ldns_pkt_rd(p));
	cr_assert(ldns_pkt_cd(p));
	cr_assert(!ldns_pkt_aa(p));
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(memcmp(obuf + 12, b + 12, q.question_end - 12), 0);
	ldns_pkt_free(p);
}

Test(dnswire, error_no_question)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n = rawq(b, 1, 0, 0, 0, NULL, 0, false), m;
	ldns_pkt *p;

	cr_assert_eq(dnswire_parse_query(b, n, &q), DNS_Q_FORMERR);
	m = dnswire_build_error(b, n, &q, DNS_RCODE_FORMERR, 1232, obuf,
	    sizeof(obuf));
	cr_assert_eq(m, 12);
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_qdcount(p), 0);
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
	ldns_pkt_free(p);
	/* q NULL: header only too. */
	cr_assert_eq(dnswire_build_error(b, n, NULL, DNS_RCODE_SERVFAIL, 1232,
	    obuf, sizeof(obuf)), 12);
	cr_assert_eq(obuf[3] & 0xf, DNS_RCODE_SERVFAIL);
	/* Runts and tiny buffers. */
	cr_assert_eq(dnswire_build_error(b, 11, NULL, 1, 1232, obuf,
	    sizeof(obuf)), 0);
	cr_assert_eq(dnswire_build_error(b, n, NULL, 1, 1232, obuf, 11), 0);
}

Test(dnswire, error_notimp_keeps_opcode)
{
	struct dns_query q;
	size_t n = mkquery("a.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 77,
	    0, false, qbuf), m;
	ldns_pkt *p;

	qbuf[2] = (qbuf[2] & ~0x78) | (2 << 3);
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_NOTIMP);
	m = dnswire_build_error(qbuf, n, &q, DNS_RCODE_NOTIMP, 1232, obuf,
	    sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOTIMPL);
	cr_assert_eq(ldns_pkt_get_opcode(p), LDNS_PACKET_STATUS);
	cr_assert_eq(ldns_pkt_id(p), 77);
	ldns_pkt_free(p);
}

Test(dnswire, error_refused_edns_and_badvers)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n = rawq(b, 1, 1, 0, 1, WWW_EX, sizeof(WWW_EX), true), m;
	ldns_pkt *p;

	memcpy(b + n, OPT0, 11);
	b[n + 7] = 0x80;	/* DO */
	cr_assert_eq(dnswire_parse_query(b, n + 11, &q), DNS_Q_OK);
	m = dnswire_build_error(b, n + 11, &q, DNS_RCODE_REFUSED, 1232, obuf,
	    sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), 1232);
	cr_assert(ldns_pkt_edns_do(p));
	cr_assert_eq(ldns_pkt_edns_extended_rcode(p), 0);
	ldns_pkt_free(p);

	b[n + 6] = 1;		/* version 1 */
	cr_assert_eq(dnswire_parse_query(b, n + 11, &q), DNS_Q_BADVERS);
	m = dnswire_build_error(b, n + 11, &q, DNS_RCODE_BADVERS, 1232, obuf,
	    sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_get_rcode(p), 0);
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_edns_extended_rcode(p), 1);
	cr_assert_eq(ldns_pkt_edns_version(p), 0);
	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	ldns_pkt_free(p);
}

/* ------------------------------------------------------------------ */
/* forwarding helpers                                                  */

Test(dnswire, id_accessors)
{
	uint8_t b[12] = { 0 };

	dnswire_set_id(b, 0xabcd);
	cr_assert_eq(b[0], 0xab);
	cr_assert_eq(b[1], 0xcd);
	cr_assert_eq(dnswire_get_id(b), 0xabcd);
}

Test(dnswire, same_question)
{
	static uint8_t r[512];
	size_t n = mkquery("www.Example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
	    1, 1232, false, qbuf), rn;

	rn = mkquery("WwW.eXaMpLe.CoM", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 2, 0,
	    false, r);
	r[2] |= 0x80;
	cr_assert(dnswire_same_question(qbuf, n, r, rn));
	rn = mkquery("www.example.com", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN, 2,
	    0, false, r);
	cr_assert(!dnswire_same_question(qbuf, n, r, rn));
	rn = mkquery("www.example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_CH, 2, 0,
	    false, r);
	cr_assert(!dnswire_same_question(qbuf, n, r, rn));
	rn = mkquery("www.example.org", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 2, 0,
	    false, r);
	cr_assert(!dnswire_same_question(qbuf, n, r, rn));
	rn = mkquery("www.example.com.x", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 2,
	    0, false, r);
	cr_assert(!dnswire_same_question(qbuf, n, r, rn));
	/* Garbage, runts, QDCOUNT 0, cut question. */
	memset(r, 0xff, 64);
	cr_assert(!dnswire_same_question(qbuf, n, r, 64));
	cr_assert(!dnswire_same_question(qbuf, n, r, 3));
	rn = mkquery("www.example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 2, 0,
	    false, r);
	cr_assert(dnswire_same_question(qbuf, n, r, rn));
	cr_assert(!dnswire_same_question(qbuf, n, r, rn - 1));
	r[5] = 0;
	cr_assert(!dnswire_same_question(qbuf, n, r, rn));
}

Test(dnswire, is_response)
{
	size_t n = mkquery("a.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 1, 0,
	    false, qbuf);

	cr_assert(!dnswire_is_response(qbuf, n));
	qbuf[2] |= 0x80;
	cr_assert(dnswire_is_response(qbuf, n));
	cr_assert(!dnswire_is_response(qbuf, 11));
	cr_assert(!dnswire_is_response(qbuf, n - 1));
	qbuf[5] = 2;
	cr_assert(!dnswire_is_response(qbuf, n));
}

/* A reply with count A records for name (+ OPT when udp != 0). */
static size_t
mkreply(const char *name, int count, uint16_t udp, uint8_t *dst)
{
	ldns_rdf *dn = ldns_dname_new_frm_str(name);
	ldns_pkt *p = ldns_pkt_query_new(dn, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
	    LDNS_RD);
	size_t n;

	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_id(p, 5);
	for (int i = 0; i < count; i++) {
		char line[256];
		ldns_rr *rr = NULL;
		snprintf(line, sizeof(line), "%s 300 IN A 10.1.%d.%d", name,
		    i / 256, i % 256);
		cr_assert_eq(ldns_rr_new_frm_str(&rr, line, 0, NULL, NULL),
		    LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	if (udp != 0)
		ldns_pkt_set_edns_udp_size(p, udp);
	n = pkt_to_wire(p, dst, 65536);
	ldns_pkt_free(p);
	return n;
}

Test(dnswire, truncate_keeps_opt)
{
	size_t n = mkreply("big.example.com.", 100, 4096, qbuf), m;
	ldns_pkt *p;

	cr_assert_gt(n, 512);
	m = dnswire_truncate(qbuf, n, 512);
	cr_assert_leq(m, 512);
	p = parse_out(qbuf, m);
	cr_assert(ldns_pkt_tc(p));
	cr_assert(ldns_pkt_qr(p));
	cr_assert_eq(ldns_pkt_id(p), 5);
	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), 4096);
	ldns_pkt_free(p);
	cr_assert_eq(m, 12 + 17 + 4 + 11);
}

Test(dnswire, truncate_without_opt)
{
	size_t n = mkreply("big.example.com.", 100, 0, qbuf), m;
	ldns_pkt *p;

	m = dnswire_truncate(qbuf, n, 512);
	cr_assert_eq(m, 12 + 17 + 4);
	p = parse_out(qbuf, m);
	cr_assert(ldns_pkt_tc(p));
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	cr_assert_eq(ldns_pkt_arcount(p), 0);
	cr_assert(!ldns_pkt_edns(p));
	ldns_pkt_free(p);
	/* Garbage question: header only. */
	n = mkreply("big.example.com.", 3, 0, qbuf);
	qbuf[12] = 0x80;
	cr_assert_eq(dnswire_truncate(qbuf, n, 40), 12);
	cr_assert_eq(dnswire_qdcount(qbuf), 0);
	cr_assert(dnswire_tc(qbuf));
	cr_assert_eq(dnswire_truncate(qbuf, 5, 3), 5);
}

/* ------------------------------------------------------------------ */
/* names                                                               */

Test(dnswire, ptr_to_addr_v4)
{
	struct netaddr a;

	cr_assert(dnswire_ptr_to_addr("7.0.240.240.in-addr.arpa", &a));
	cr_assert(netaddr_equal(&a, &(struct netaddr){ 0 }) == false);
	struct netaddr want = na("240.240.0.7");
	cr_assert(netaddr_equal(&a, &want));
	cr_assert(dnswire_ptr_to_addr("7.0.240.240.IN-ADDR.ARPA.", &a));
	cr_assert(netaddr_equal(&a, &want));
	cr_assert(dnswire_ptr_to_addr("255.0.0.0.in-addr.arpa", &a));
	want = na("0.0.0.255");
	cr_assert(netaddr_equal(&a, &want));

	cr_assert(!dnswire_ptr_to_addr("0.240.240.in-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr("1.7.0.240.240.in-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr("256.0.240.240.in-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr("07.0.240.240.in-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr("x.0.240.240.in-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr("7..240.240.in-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr("in-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr(".in-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr("7.0.240.240.in-addr.arpa.com", &a));
	cr_assert(!dnswire_ptr_to_addr("7.0.240.240xin-addr.arpa", &a));
	cr_assert(!dnswire_ptr_to_addr("", &a));
}

Test(dnswire, ptr_to_addr_v6)
{
	struct netaddr a, want = na("2001:db8::567:89ab");
	const char *n6 = "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "8.b.d.0.1.0.0.2.ip6.arpa";

	cr_assert(dnswire_ptr_to_addr(n6, &a));
	cr_assert(netaddr_equal(&a, &want));
	cr_assert(dnswire_ptr_to_addr("B.A.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.0.8.B.D.0.1.0.0.2.IP6.ARPA.", &a));
	cr_assert(netaddr_equal(&a, &want));
	/* 31 nibbles, bad hex, a two-char label, 33 nibbles. */
	char buf[128];
	cr_assert(!dnswire_ptr_to_addr(n6 + 2, &a));
	snprintf(buf, sizeof(buf), "%s", n6);
	buf[0] = 'g';
	cr_assert(!dnswire_ptr_to_addr(buf, &a));
	snprintf(buf, sizeof(buf), "%s", n6);
	buf[1] = 'a';		/* "ba.9...": 2-char label, one nibble short */
	cr_assert(!dnswire_ptr_to_addr(buf, &a));
	snprintf(buf, sizeof(buf), "0.%s", n6);
	cr_assert(!dnswire_ptr_to_addr(buf, &a));
	snprintf(buf, sizeof(buf), "%s", n6);
	memcpy(buf + 62, "2x", 2);	/* no dot before ip6.arpa */
	cr_assert(!dnswire_ptr_to_addr(buf, &a));
	cr_assert(!dnswire_ptr_to_addr("ip6.arpa", &a));
}

Test(dnswire, name_to_wire)
{
	uint8_t w[300];
	char lab[80];

	cr_assert_eq(dnswire_name_to_wire("Foo.Example", w, sizeof(w)), 13);
	cr_assert_eq(memcmp(w, "\3foo\7example", 13), 0);
	cr_assert_eq(dnswire_name_to_wire("foo.example.", w, sizeof(w)), 13);
	cr_assert_eq(memcmp(w, "\3foo\7example", 13), 0);
	cr_assert_eq(dnswire_name_to_wire("", w, sizeof(w)), 1);
	cr_assert_eq(w[0], 0);
	cr_assert_eq(dnswire_name_to_wire(".", w, sizeof(w)), 1);
	cr_assert_eq(dnswire_name_to_wire("a\\.b.c", w, sizeof(w)), 7);
	cr_assert_eq(memcmp(w, "\3a.b\1c", 7), 0);
	cr_assert_eq(dnswire_name_to_wire("a\\000.c", w, sizeof(w)), 6);
	cr_assert_eq(memcmp(w, "\2a\0\1c", 6), 0);
	cr_assert_eq(dnswire_name_to_wire("a..b", w, sizeof(w)), 0);
	cr_assert_eq(dnswire_name_to_wire(".a", w, sizeof(w)), 0);
	cr_assert_eq(dnswire_name_to_wire("a\\", w, sizeof(w)), 0);
	cr_assert_eq(dnswire_name_to_wire("a\\25", w, sizeof(w)), 0);
	cr_assert_eq(dnswire_name_to_wire("a\\256", w, sizeof(w)), 0);
	cr_assert_eq(dnswire_name_to_wire("foo.example", w, 12), 0);
	memset(lab, 'a', 63);
	lab[63] = '\0';
	cr_assert_eq(dnswire_name_to_wire(lab, w, sizeof(w)), 65);
	lab[63] = 'a';
	lab[64] = '\0';
	cr_assert_eq(dnswire_name_to_wire(lab, w, sizeof(w)), 0);

	/* 253 characters = 255 wire bytes; one more is too long. */
	char big[300];
	size_t n = 0;
	for (int i = 0; i < 4; i++) {
		if (i > 0)
			big[n++] = '.';
		size_t l = i < 3 ? 63 : 61;
		memset(big + n, 'b', l);
		n += l;
	}
	big[n] = '\0';
	cr_assert_eq(strlen(big), 253);
	cr_assert_eq(dnswire_name_to_wire(big, w, sizeof(w)), 255);
	big[n++] = 'b';
	big[n] = '\0';
	cr_assert_eq(dnswire_name_to_wire(big, w, sizeof(w)), 0);
	big[n - 1] = '.';
	cr_assert_eq(dnswire_name_to_wire(big, w, sizeof(w)), 255);
}

Test(dnswire, build_query_parsed_by_ldns)
{
	size_t n = dnswire_build_query(0x1357, "Db.Example.Com", DNS_TYPE_AAAA,
	    1232, obuf, sizeof(obuf));
	ldns_pkt *p = parse_out(obuf, n);
	ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	struct dns_query dq;

	cr_assert_eq(ldns_pkt_id(p), 0x1357);
	cr_assert(ldns_pkt_rd(p));
	cr_assert(!ldns_pkt_qr(p));
	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	cr_assert_eq(ldns_rr_get_type(q), LDNS_RR_TYPE_AAAA);
	cr_assert_eq(ldns_rr_get_class(q), LDNS_RR_CLASS_IN);
	assert_owner(q, "db.example.com.");
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), 1232);
	ldns_pkt_free(p);
	cr_assert_eq(dnswire_parse_query(obuf, n, &dq), DNS_Q_OK);

	n = dnswire_build_query(1, "a.example", DNS_TYPE_A, 0, obuf,
	    sizeof(obuf));
	cr_assert_eq(n, 12 + 11 + 4);
	p = parse_out(obuf, n);
	cr_assert(!ldns_pkt_edns(p));
	ldns_pkt_free(p);
	cr_assert_eq(dnswire_build_query(1, "a..b", DNS_TYPE_A, 0, obuf,
	    sizeof(obuf)), 0);
	cr_assert_eq(dnswire_build_query(1, "a.example", DNS_TYPE_A, 1232,
	    obuf, 30), 0);
}

static size_t
mkchain(bool shuffled, ldns_pkt_rcode rc, uint8_t *dst)
{
	static const char *lines[] = {
		"www.example.com. 300 IN CNAME a.cdn.net.",
		"A.CDN.net. 60 IN CNAME b.cdn.net.",
		"b.cdn.net. 120 IN A 192.0.2.1",
		"b.cdn.net. 100 IN A 192.0.2.2",
		"other.net. 5 IN A 198.51.100.9",
		"b.cdn.net. 7 IN AAAA 2001:db8::1",
	};
	static const int order[2][6] = { { 0, 1, 2, 3, 4, 5 },
	    { 4, 3, 5, 1, 2, 0 } };
	ldns_rdf *dn = ldns_dname_new_frm_str("WWW.example.com.");
	ldns_pkt *p = ldns_pkt_query_new(dn, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
	    LDNS_RD);
	size_t n;

	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, rc);
	for (int i = 0; i < 6; i++) {
		ldns_rr *rr = NULL;
		cr_assert_eq(ldns_rr_new_frm_str(&rr, lines[order[shuffled][i]],
		    0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	n = pkt_to_wire(p, dst, 65536);
	ldns_pkt_free(p);
	return n;
}

Test(dnswire, extract_addrs_cname_chain)
{
	struct netaddr out[8];
	uint32_t ttl = 1;
	unsigned rc = 99;
	struct netaddr w1 = na("192.0.2.1"), w2 = na("192.0.2.2");

	for (int sh = 0; sh < 2; sh++) {
		size_t n = mkchain(sh, LDNS_RCODE_NOERROR, qbuf), c;
		c = dnswire_extract_addrs(qbuf, n, DNS_TYPE_A, out, 8, &ttl, &rc);
		cr_assert_eq(c, 2, "shuffled=%d", sh);
		cr_assert_eq(rc, 0);
		cr_assert_eq(ttl, 60);
		cr_assert(netaddr_equal(&out[sh ? 1 : 0], &w1));
		cr_assert(netaddr_equal(&out[sh ? 0 : 1], &w2));
		c = dnswire_extract_addrs(qbuf, n, DNS_TYPE_A, out, 1, &ttl, &rc);
		cr_assert_eq(c, 1);
		c = dnswire_extract_addrs(qbuf, n, DNS_TYPE_AAAA, out, 8, &ttl,
		    &rc);
		cr_assert_eq(c, 1);
		cr_assert_eq(out[0].family, AF_INET6);
		cr_assert_eq(ttl, 7);
	}
	size_t n = mkchain(false, LDNS_RCODE_NXDOMAIN, qbuf);
	cr_assert_eq(dnswire_extract_addrs(qbuf, n, DNS_TYPE_A, out, 8, &ttl,
	    &rc), 2);
	cr_assert_eq(rc, DNS_RCODE_NXDOMAIN);
	memset(qbuf, 0xff, 40);
	cr_assert_eq(dnswire_extract_addrs(qbuf, 40, DNS_TYPE_A, out, 8, &ttl,
	    &rc), 0);
	cr_assert_eq(rc, DNS_RCODE_SERVFAIL);
	cr_assert_eq(ttl, 0);
}

Test(dnswire, extract_addrs_cname_loop)
{
	/* a → b → a: bounded, no addresses, no hang. */
	static const char *lines[] = {
		"a.test. 30 IN CNAME b.test.",
		"b.test. 30 IN CNAME a.test.",
	};
	ldns_rdf *dn = ldns_dname_new_frm_str("a.test.");
	ldns_pkt *p = ldns_pkt_query_new(dn, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
	    0);
	struct netaddr out[2];
	uint32_t ttl;
	unsigned rc;
	size_t n;

	ldns_pkt_set_qr(p, true);
	for (int i = 0; i < 2; i++) {
		ldns_rr *rr = NULL;
		cr_assert_eq(ldns_rr_new_frm_str(&rr, lines[i], 0, NULL, NULL),
		    LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	n = pkt_to_wire(p, qbuf, sizeof(qbuf));
	ldns_pkt_free(p);
	cr_assert_eq(dnswire_extract_addrs(qbuf, n, DNS_TYPE_A, out, 2, &ttl,
	    &rc), 0);
	cr_assert_eq(rc, 0);
}

Test(dnswire, extract_addrs_pointer_loop)
{
	/* An answer owner that is a pointer to itself. */
	uint8_t b[128];
	size_t n = rawq(b, 0x81, 1, 1, 0, WWW_EX, sizeof(WWW_EX), true);
	uint8_t rr[] = { 0xc0, 0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4 };
	struct netaddr out[2];

	rr[1] = n;
	memcpy(b + n, rr, sizeof(rr));
	cr_assert_eq(dnswire_extract_addrs(b, n + sizeof(rr), DNS_TYPE_A, out,
	    2, NULL, NULL), 0);
	/* Pointing back to the question name works. */
	rr[1] = 12;
	memcpy(b + n, rr, sizeof(rr));
	cr_assert_eq(dnswire_extract_addrs(b, n + sizeof(rr), DNS_TYPE_A, out,
	    2, NULL, NULL), 1);
}

/* ------------------------------------------------------------------ */
/* robustness                                                          */

static uint32_t rng = 12345;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

Test(dnswire, fuzz_no_overread)
{
	uint8_t seeds[4][2048];
	size_t seedlen[4];
	static uint8_t out[70000];

	seedlen[0] = mkchain(false, LDNS_RCODE_NOERROR, seeds[0]);
	seedlen[1] = mkquery("Api.Stripe.COM", LDNS_RR_TYPE_A,
	    LDNS_RR_CLASS_IN, 1, 4096, true, seeds[1]);
	seedlen[2] = mkreply("x.example.", 20, 1232, seeds[2]);
	seedlen[3] = mkchain(true, LDNS_RCODE_NOERROR, seeds[3]);

	for (int iter = 0; iter < 20000; iter++) {
		size_t len;
		uint8_t tmp[2048];
		int kind = rnd() % 3;

		if (kind == 0) {
			len = rnd() % 600;
			for (size_t i = 0; i < len; i++)
				tmp[i] = rnd();
			if (len > 5 && rnd() % 2) {
				tmp[4] = 0;
				tmp[5] = 1;
			}
		} else {
			int s = rnd() % 4;
			len = seedlen[s];
			memcpy(tmp, seeds[s], len);
			int flips = 1 + rnd() % 8;
			for (int f = 0; f < flips; f++) {
				size_t at = rnd() % len;
				switch (rnd() % 4) {
				case 0: tmp[at] = rnd(); break;
				case 1: tmp[at] ^= 1u << (rnd() % 8); break;
				case 2: tmp[at] = 0xc0 | (rnd() % 4); break;
				default: tmp[at] = rnd() % 70; break;
				}
			}
			if (kind == 2)
				len = rnd() % (len + 1);
		}
		/* Exact-size heap copy: any overread trips ASan. */
		uint8_t *pkt = malloc(len ? len : 1);
		cr_assert_not_null(pkt);
		memcpy(pkt, tmp, len);

		struct dns_query q;
		struct netaddr addrs[4];
		uint32_t ttl;
		unsigned rc;
		enum dns_verdict v = dnswire_parse_query(pkt, len, &q);
		if (v != DNS_Q_DROP)
			(void)dnswire_build_error(pkt, len, &q, 1, 1232, out,
			    sizeof(out));
		if (v == DNS_Q_OK) {
			struct netaddr one = na("10.0.0.1");
			struct dns_answer a = { .cname = "x.y", .addrs = &one,
			    .naddrs = 1, .ttl = 1 };
			size_t m = dnswire_build_answer(pkt, &q, &a, 1232,
			    q.client_limit, out, sizeof(out));
			cr_assert_gt(m, 0);
			cr_assert_leq(m, q.client_limit);
		}
		(void)dnswire_is_response(pkt, len);
		(void)dnswire_same_question(seeds[1], seedlen[1], pkt, len);
		(void)dnswire_same_question(pkt, len, seeds[0], seedlen[0]);
		size_t c = dnswire_extract_addrs(pkt, len, DNS_TYPE_A, addrs, 4,
		    &ttl, &rc);
		cr_assert_leq(c, 4);
		if (len > 0) {
			size_t lim = 12 + rnd() % 600;
			if (lim < len) {
				size_t m = dnswire_truncate(pkt, len, lim);
				cr_assert_leq(m, len);
				if (len >= 12)
					cr_assert_leq(m, lim);
			}
		}
		free(pkt);
	}
}

Test(dnswire, parse_opt_with_options)
{
	struct dns_query q;
	uint8_t b[128];
	size_t n = rawq(b, 1, 1, 0, 1, WWW_EX, sizeof(WWW_EX), true);
	/* OPT udp 1400 with a 12-byte option (COOKIE, 8-byte client cookie). */
	static const uint8_t opt[] = { 0, 0, 41, 0x05, 0x78, 0, 0, 0x80, 0,
	    0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };

	memcpy(b + n, opt, sizeof(opt));
	cr_assert_eq(dnswire_parse_query(b, n + sizeof(opt), &q), DNS_Q_OK);
	cr_assert(q.has_edns);
	cr_assert_eq(q.edns_udp, 1400);
	cr_assert(q.edns_do);
	cr_assert_eq(q.client_limit, 1400);
	/* Cut inside the option data. */
	cr_assert_eq(dnswire_parse_query(b, n + sizeof(opt) - 1, &q),
	    DNS_Q_FORMERR);
}

Test(dnswire, truncate_opt_options_dropped_when_tight)
{
	uint8_t b[256];
	size_t n = rawq(b, 0x81, 1, 1, 1, WWW_EX, sizeof(WWW_EX), true), q0, m;
	static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60,
	    0, 4, 1, 2, 3, 4 };
	static const uint8_t opt[] = { 0, 0, 41, 0x10, 0x00, 0, 0, 0, 0,
	    0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
	ldns_pkt *p;

	q0 = n;
	memcpy(b + n, rr, sizeof(rr));
	n += sizeof(rr);
	memcpy(b + n, opt, sizeof(opt));
	n += sizeof(opt);
	/* Room for the question and a bare OPT only. */
	m = dnswire_truncate(b, n, q0 + 11 + 5);
	cr_assert_eq(m, q0 + 11);
	cr_assert_eq(b[q0 + 9], 0);
	cr_assert_eq(b[q0 + 10], 0);
	p = parse_out(b, m);
	cr_assert(ldns_pkt_tc(p));
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), 4096);
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
}

Test(dnswire, truncate_opt_options_kept_when_room)
{
	uint8_t b[256];
	size_t n = rawq(b, 0x81, 1, 1, 1, WWW_EX, sizeof(WWW_EX), true), q0, m;
	static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60,
	    0, 4, 1, 2, 3, 4 };
	static const uint8_t opt[] = { 0, 0, 41, 0x10, 0x00, 0, 0, 0, 0,
	    0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };

	q0 = n;
	memcpy(b + n, rr, sizeof(rr));
	n += sizeof(rr);
	memcpy(b + n, opt, sizeof(opt));
	n += sizeof(opt);
	m = dnswire_truncate(b, n, n - 1);
	cr_assert_eq(m, q0 + sizeof(opt));
	cr_assert_eq(memcmp(b + q0, opt, sizeof(opt)), 0);
	cr_assert_eq(dnswire_arcount(b), 1);
	cr_assert_eq(dnswire_ancount(b), 0);
}

/* RFC 2308: a local NODATA carries an SOA whose MINIMUM and TTL are the
 * local TTL, owned by the name the records belong to. */
Test(dnswire, answer_nodata_soa)
{
	struct dns_query q;
	struct dns_answer a = { .aa = true, .ttl = 45, .soa = true };
	size_t n = mkquery("Api.Stripe.com", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN,
	    7, 1232, false, qbuf), m;
	ldns_pkt *p;
	ldns_rr *rr;
	char *s;

	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	cr_assert_eq(ldns_pkt_nscount(p), 1);
	cr_assert_eq(ldns_pkt_arcount(p), 0); /* ldns counts OPT apart */
	cr_assert(ldns_pkt_edns(p));
	rr = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
	cr_assert_eq(ldns_rr_get_type(rr), LDNS_RR_TYPE_SOA);
	cr_assert_eq(ldns_rr_ttl(rr), 45);
	assert_owner(rr, "Api.Stripe.com.");
	s = rdf_str(ldns_rr_rdf(rr, 1));
	cr_assert_str_eq(s, "hostmaster.Api.Stripe.com.");
	free(s);
	s = rdf_str(ldns_rr_rdf(rr, 6));
	cr_assert_str_eq(s, "45");
	free(s);
	ldns_pkt_free(p);

	/* via a CNAME: the SOA belongs to the target */
	a.cname = "api.stripe.com";
	n = mkquery("api.stripe.com.default.svc.cluster.local", LDNS_RR_TYPE_HTTPS, LDNS_RR_CLASS_IN, 8, 0, false,
	    qbuf);
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 512, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert_eq(ldns_pkt_ancount(p), 1);
	cr_assert_eq(ldns_pkt_nscount(p), 1);
	rr = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
	assert_owner(rr, "api.stripe.com.");
	s = rdf_str(ldns_rr_rdf(rr, 0));
	cr_assert_str_eq(s, "api.stripe.com.");
	free(s);
	ldns_pkt_free(p);

	/* too big for the client: TC, no authority either */
	m = dnswire_build_answer(qbuf, &q, &a, 1232, q.question_end + 20, obuf, sizeof(obuf));
	p = parse_out(obuf, m);
	cr_assert(ldns_pkt_tc(p));
	cr_assert_eq(ldns_pkt_nscount(p), 0);
	ldns_pkt_free(p);
}

/* An owner too long for "hostmaster.<owner>": the RNAME is the root. */
Test(dnswire, answer_nodata_soa_long_owner)
{
	struct dns_query q;
	struct dns_answer a = { .aa = true, .ttl = 5, .soa = true };
	char name[256];
	/* 4 labels of 60 = 244 presentation chars, 245 wire octets with root */
	snprintf(name, sizeof(name), "%.60s.%.60s.%.60s.%.60s",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	    "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
	    "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
	size_t n = mkquery(name, LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN, 1, 0, false, qbuf), m;
	cr_assert_eq(dnswire_parse_query(qbuf, n, &q), DNS_Q_OK);
	m = dnswire_build_answer(qbuf, &q, &a, 1232, 65535, obuf, sizeof(obuf));
	ldns_pkt *p = parse_out(obuf, m);
	ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
	cr_assert_eq(ldns_rr_get_type(rr), LDNS_RR_TYPE_SOA);
	char *s = rdf_str(ldns_rr_rdf(rr, 1));
	cr_assert_str_eq(s, ".");
	free(s);
	ldns_pkt_free(p);
}

/* RFC 2308: min(SOA TTL, SOA MINIMUM) from the authority section. */
Test(dnswire, negative_ttl_from_soa)
{
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str("nx.example."), LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0);
	ldns_rr *soa = NULL;
	cr_assert_eq(ldns_rr_new_frm_str(&soa, "example. 900 IN SOA ns.example. h.example. 1 2 3 4 60", 0, NULL, NULL),
	    LDNS_STATUS_OK);
	ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, soa);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
	size_t n = pkt_to_wire(p, obuf, sizeof(obuf));
	uint32_t ttl = 0;
	cr_assert(dnswire_negative_ttl(obuf, n, &ttl));
	cr_assert_eq(ttl, 60, "MINIMUM is smaller");
	ldns_pkt_free(p);

	p = ldns_pkt_query_new(ldns_dname_new_frm_str("nx.example."), LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0);
	cr_assert_eq(ldns_rr_new_frm_str(&soa, "example. 30 IN SOA ns.example. h.example. 1 2 3 4 600", 0, NULL, NULL),
	    LDNS_STATUS_OK);
	ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, soa);
	n = pkt_to_wire(p, obuf, sizeof(obuf));
	cr_assert(dnswire_negative_ttl(obuf, n, &ttl));
	cr_assert_eq(ttl, 30, "the SOA's own TTL is smaller");
	ldns_pkt_free(p);

	n = mkquery("nx.example", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 1, 0, false, qbuf);
	cr_assert_not(dnswire_negative_ttl(qbuf, n, &ttl), "no SOA");
	cr_assert_not(dnswire_negative_ttl(qbuf, 5, &ttl), "runt");
}
