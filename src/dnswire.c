/* dnswire — see include/dnswire.h. No allocation, no I/O. */
#include "dnswire.h"

#include <string.h>
#include <strings.h>

/* A bounded writer: counts past cap (so callers learn the size a reply would
 * have) but never writes past it. */
struct wbuf {
	uint8_t *p;
	size_t cap;
	size_t len;
	bool over;		/* something did not fit in cap */
};

/* A parsed resource record header; offsets into the packet. */
struct rr {
	size_t owner;		/* offset of the owner name */
	uint16_t type, class;
	uint32_t ttl;
	uint16_t rdlen;
	size_t rdata;		/* offset of the rdata */
};

static void	 put16(uint8_t *, uint16_t);
static void	 put32(uint8_t *, uint32_t);
static uint32_t	 get32(const uint8_t *);
static uint8_t	 lower(uint8_t);
static bool	 skip_name(const uint8_t *, size_t, size_t *);
static bool	 question_name(const uint8_t *, size_t, size_t *);
static size_t	 read_name(const uint8_t *, size_t, size_t, uint8_t *);
static bool	 name_eq(const uint8_t *, size_t, const uint8_t *, size_t);
static bool	 read_rr(const uint8_t *, size_t, size_t *, struct rr *);
static void	 present_name(const uint8_t *, struct dns_query *);
static void	 w_bytes(struct wbuf *, const void *, size_t);
static void	 w_u16(struct wbuf *, uint16_t);
static void	 w_u32(struct wbuf *, uint32_t);
static void	 w_rrhdr(struct wbuf *, uint16_t, uint16_t, uint16_t, uint32_t,
		    uint16_t);
static void	 w_opt(struct wbuf *, uint16_t, unsigned, bool);
static bool	 parse_question(const uint8_t *, size_t, size_t *, uint16_t *,
		    uint16_t *);
static unsigned	 parse_label_num(const char *, size_t, unsigned, int *);
static int	 hexval(char);
static void	 reply_header(const uint8_t *, uint8_t *, bool, unsigned);

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

static uint8_t
lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

uint16_t
dnswire_get_id(const uint8_t *pkt)
{
	return DNS_GET16(pkt);
}

void
dnswire_set_id(uint8_t *pkt, uint16_t id)
{
	put16(pkt, id);
}

/*
 * Skips a possibly compressed name at *off (RR sections). Does not follow
 * pointers: a pointer ends the name.
 */
static bool
skip_name(const uint8_t *p, size_t len, size_t *off)
{
	size_t o = *off, total = 0;

	for (;;) {
		if (o >= len)
			return false;
		uint8_t c = p[o];
		if ((c & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return false;
			*off = o + 2;
			return true;
		}
		if (c & 0xc0)
			return false;
		total += c + 1;
		if (total > DNS_MAX_NAME)
			return false;
		if (c == 0) {
			*off = o + 1;
			return true;
		}
		o += 1 + c;
	}
}

/* The question name at offset 12: plain labels only. Sets its wire length. */
static bool
question_name(const uint8_t *p, size_t len, size_t *qlen)
{
	size_t o = DNS_HDR_LEN;

	for (;;) {
		if (o >= len)
			return false;
		uint8_t c = p[o];
		if (c & 0xc0)		/* pointer or reserved label type */
			return false;
		if (o + 1 + c - DNS_HDR_LEN > DNS_MAX_NAME)
			return false;
		if (c == 0) {
			*qlen = o + 1 - DNS_HDR_LEN;
			return true;
		}
		o += 1 + c;
	}
}

/* Question at 12 with QTYPE/QCLASS; sets the offset after it. */
static bool
parse_question(const uint8_t *p, size_t len, size_t *end, uint16_t *qtype,
    uint16_t *qclass)
{
	size_t qlen;

	if (len < DNS_HDR_LEN || dnswire_qdcount(p) != 1)
		return false;
	if (!question_name(p, len, &qlen))
		return false;
	if (DNS_HDR_LEN + qlen + 4 > len)
		return false;
	*qtype = DNS_GET16(p + DNS_HDR_LEN + qlen);
	*qclass = DNS_GET16(p + DNS_HDR_LEN + qlen + 2);
	*end = DNS_HDR_LEN + qlen + 4;
	return true;
}

/*
 * Reads the (possibly compressed) name at off into out (uncompressed wire,
 * at most 255 bytes). Every pointer must go strictly backwards from the
 * label that holds it, so the walk terminates. Returns the wire length or 0.
 */
static size_t
read_name(const uint8_t *p, size_t len, size_t off, uint8_t *out)
{
	size_t o = off, n = 0, floor = off;

	for (;;) {
		if (o >= len)
			return 0;
		uint8_t c = p[o];
		if ((c & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return 0;
			size_t t = ((size_t)(c & 0x3f) << 8) | p[o + 1];
			if (t >= floor)
				return 0;
			o = floor = t;
			continue;
		}
		if (c & 0xc0)
			return 0;
		if (n + 1 + c > DNS_MAX_NAME || o + 1 + c > len)
			return 0;
		memcpy(out + n, p + o, 1 + c);
		n += 1 + c;
		if (c == 0)
			return n;
		o += 1 + c;
	}
}

/* Case-insensitive comparison of two uncompressed wire names. */
static bool
name_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

/* Reads one RR at *off and advances past its rdata. */
static bool
read_rr(const uint8_t *p, size_t len, size_t *off, struct rr *rr)
{
	size_t o = *off;

	rr->owner = o;
	if (!skip_name(p, len, &o))
		return false;
	if (o + 10 > len)
		return false;
	rr->type = DNS_GET16(p + o);
	rr->class = DNS_GET16(p + o + 2);
	rr->ttl = get32(p + o + 4);
	rr->rdlen = DNS_GET16(p + o + 8);
	rr->rdata = o + 10;
	if (rr->rdata + rr->rdlen > len)
		return false;
	*off = rr->rdata + rr->rdlen;
	return true;
}

/* Fills q->name and q->name_plain from the wire name at pkt + 12. */
static void
present_name(const uint8_t *wire, struct dns_query *q)
{
	size_t o = 0, n = 0;
	bool plain = true, cut = false;
	const size_t room = sizeof(q->name) - 1;

	while (wire[o] != 0) {
		uint8_t l = wire[o++];
		if (n > 0) {
			if (n < room)
				q->name[n++] = '.';
			else
				cut = true;
		}
		for (uint8_t i = 0; i < l; i++, o++) {
			uint8_t c = lower(wire[o]);
			bool ldh = (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_';
			if (!ldh)
				plain = false;
			if (c < '!' || c > '~' || c == '.' || c == '\\') {
				if (n + 4 <= room) {
					q->name[n++] = '\\';
					q->name[n++] = '0' + c / 100;
					q->name[n++] = '0' + (c / 10) % 10;
					q->name[n++] = '0' + c % 10;
				} else
					cut = true;
			} else if (n < room)
				q->name[n++] = c;
			else
				cut = true;
		}
	}
	q->name[n] = '\0';
	q->name_plain = plain && !cut;
}

enum dns_verdict
dnswire_parse_query(const uint8_t *pkt, size_t len, struct dns_query *q)
{
	size_t off, qlen;
	unsigned ancount, nscount, arcount;
	bool opt_bad = false;

	memset(q, 0, sizeof(*q));
	q->client_limit = DNS_MIN_UDP;
	if (len < DNS_HDR_LEN || dnswire_qr(pkt))
		return DNS_Q_DROP;
	q->id = dnswire_get_id(pkt);
	q->opcode = dnswire_opcode(pkt);
	q->rd = dnswire_rd(pkt);
	q->cd = (pkt[3] & 0x10) != 0;

	if (dnswire_qdcount(pkt) != 1 || !question_name(pkt, len, &qlen) ||
	    DNS_HDR_LEN + qlen + 4 > len)
		return q->opcode != 0 ? DNS_Q_NOTIMP : DNS_Q_FORMERR;
	q->qname_len = qlen;
	q->question_end = DNS_HDR_LEN + qlen + 4;
	q->qtype = DNS_GET16(pkt + DNS_HDR_LEN + qlen);
	q->qclass = DNS_GET16(pkt + DNS_HDR_LEN + qlen + 2);
	present_name(pkt + DNS_HDR_LEN, q);

	/* Answer and authority: tolerated, skipped. Additional: OPT. */
	off = q->question_end;
	ancount = dnswire_ancount(pkt);
	nscount = dnswire_nscount(pkt);
	arcount = dnswire_arcount(pkt);
	for (unsigned i = 0; i < ancount + nscount + arcount; i++) {
		struct rr rr;
		if (!read_rr(pkt, len, &off, &rr)) {
			opt_bad = true;
			break;
		}
		if (rr.type != DNS_TYPE_OPT)
			continue;
		/* OPT: only in additional, root owner, at most one. */
		if (i < ancount + nscount || pkt[rr.owner] != 0 ||
		    q->has_edns) {
			opt_bad = true;
			break;
		}
		q->has_edns = true;
		q->edns_udp = rr.class;
		q->edns_version = (rr.ttl >> 16) & 0xff;
		q->edns_do = (rr.ttl & 0x8000) != 0;
		q->client_limit = rr.class > DNS_MIN_UDP ? rr.class :
		    DNS_MIN_UDP;
	}
	if (q->opcode != 0)
		return DNS_Q_NOTIMP;
	if (opt_bad)
		return DNS_Q_FORMERR;
	if (q->has_edns && q->edns_version > 0)
		return DNS_Q_BADVERS;
	return DNS_Q_OK;
}

static void
w_bytes(struct wbuf *w, const void *d, size_t n)
{
	if (!w->over && w->len + n <= w->cap)
		memcpy(w->p + w->len, d, n);
	else
		w->over = true;
	w->len += n;
}

static void
w_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2];

	put16(b, v);
	w_bytes(w, b, 2);
}

static void
w_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4];

	put32(b, v);
	w_bytes(w, b, 4);
}

/* Owner as a compression pointer, then TYPE CLASS TTL RDLENGTH. */
static void
w_rrhdr(struct wbuf *w, uint16_t owner, uint16_t type, uint16_t class,
    uint32_t ttl, uint16_t rdlen)
{
	w_u16(w, 0xc000 | owner);
	w_u16(w, type);
	w_u16(w, class);
	w_u32(w, ttl);
	w_u16(w, rdlen);
}

/* An OPT RR without options (RFC 6891 6.1.2/6.1.3). */
static void
w_opt(struct wbuf *w, uint16_t udp, unsigned rcode, bool dobit)
{
	uint8_t b[11] = { 0 };

	put16(b + 1, DNS_TYPE_OPT);
	put16(b + 3, udp);
	b[5] = (rcode >> 4) & 0xff;	/* extended rcode; version 0 */
	b[7] = dobit ? 0x80 : 0;
	w_bytes(w, b, sizeof(b));
}

/* Header bits shared by every reply: ID, opcode, RD, CD copied; QR, RA set. */
static void
reply_header(const uint8_t *pkt, uint8_t *out, bool aa, unsigned rcode)
{
	memset(out, 0, DNS_HDR_LEN);
	out[0] = pkt[0];
	out[1] = pkt[1];
	out[2] = 0x80 | (pkt[2] & 0x78) | (pkt[2] & 0x01) | (aa ? 0x04 : 0);
	out[3] = 0x80 | (pkt[3] & 0x10) | (rcode & 0x0f);
}

size_t
dnswire_build_error(const uint8_t *pkt, size_t len, const struct dns_query *q,
    unsigned rcode, uint16_t our_udp, uint8_t *out, size_t cap)
{
	struct wbuf w = { out, cap, 0, false };
	bool echo, edns;

	if (len < DNS_HDR_LEN || cap < DNS_HDR_LEN)
		return 0;
	echo = q != NULL && q->qname_len != 0 && q->question_end <= len;
	edns = q != NULL && q->has_edns;
	reply_header(pkt, out, false, rcode);
	w.len = DNS_HDR_LEN;
	if (echo) {
		put16(out + 4, 1);
		w_bytes(&w, pkt + DNS_HDR_LEN, q->question_end - DNS_HDR_LEN);
	}
	if (edns) {
		put16(out + 10, 1);
		w_opt(&w, our_udp, rcode, q->edns_do);
	}
	if (w.over) {
		/* Bare header, always fits. */
		put16(out + 4, 0);
		put16(out + 10, 0);
		return DNS_HDR_LEN;
	}
	return w.len;
}

size_t
dnswire_build_answer(const uint8_t *pkt, const struct dns_query *q,
    const struct dns_answer *a, uint16_t our_udp, size_t limit,
    uint8_t *out, size_t cap)
{
	struct wbuf w = { out, cap, 0, false };
	uint8_t wire[DNS_MAX_NAME + 1];
	uint16_t owner = DNS_HDR_LEN, ancount = 0;
	size_t owner_len = q->qname_len;	/* wire length of the owner name */
	size_t n, optlen = q->has_edns ? 11 : 0;

	if (q->qname_len == 0 || q->question_end > cap)
		return 0;
	reply_header(pkt, out, a->aa, a->rcode);
	put16(out + 4, 1);
	memcpy(out + DNS_HDR_LEN, pkt + DNS_HDR_LEN,
	    q->question_end - DNS_HDR_LEN);
	w.len = q->question_end;

	if (a->cname != NULL) {
		if ((n = dnswire_name_to_wire(a->cname, wire, sizeof(wire))) == 0)
			return 0;
		w_rrhdr(&w, DNS_HDR_LEN, DNS_TYPE_CNAME, q->qclass, a->ttl, n);
		owner = w.len;		/* < 0x4000: header + question + 12 */
		owner_len = n;
		w_bytes(&w, wire, n);
		ancount++;
	}
	for (size_t i = 0; i < a->naddrs; i++) {
		const struct netaddr *ad = &a->addrs[(a->rotate + i) % a->naddrs];
		if (ad->family == AF_INET) {
			w_rrhdr(&w, owner, DNS_TYPE_A, q->qclass, a->ttl, 4);
			w_bytes(&w, ad->a, 4);
		} else if (ad->family == AF_INET6) {
			w_rrhdr(&w, owner, DNS_TYPE_AAAA, q->qclass, a->ttl, 16);
			w_bytes(&w, ad->a, 16);
		} else
			continue;
		ancount++;
	}
	if (a->ptr != NULL) {
		if ((n = dnswire_name_to_wire(a->ptr, wire, sizeof(wire))) == 0)
			return 0;
		w_rrhdr(&w, owner, DNS_TYPE_PTR, q->qclass, a->ttl, n);
		w_bytes(&w, wire, n);
		ancount++;
	}
	for (size_t i = 0; i < a->ntxt; i++) {
		const char *s = a->txt[i];
		size_t sl = strlen(s), chunks = sl == 0 ? 1 : (sl + 254) / 255;
		if (sl + chunks > UINT16_MAX)
			return 0;
		w_rrhdr(&w, owner, DNS_TYPE_TXT, q->qclass, a->ttl, sl + chunks);
		for (size_t c = 0; c < chunks; c++) {
			size_t cl = sl - c * 255 > 255 ? 255 : sl - c * 255;
			uint8_t lb = cl;
			w_bytes(&w, &lb, 1);
			w_bytes(&w, s + c * 255, cl);
		}
		ancount++;
	}

	uint16_t nscount = 0;
	if (a->soa) {
		/* MNAME = owner; RNAME = "hostmaster" + owner */
		static const uint8_t hm[] = { 10, 'h', 'o', 's', 't', 'm', 'a', 's', 't', 'e', 'r' };
		/* hostmaster.<owner> must stay within 255 octets: else "." */
		bool long_owner = owner_len + sizeof(hm) > DNS_MAX_NAME;
		w_rrhdr(&w, owner, DNS_TYPE_SOA, q->qclass, a->ttl, 2 + (long_owner ? 1 : sizeof(hm) + 2) + 20);
		w_u16(&w, 0xc000 | owner);
		if (long_owner) {
			w_bytes(&w, "", 1);
		} else {
			w_bytes(&w, hm, sizeof(hm));
			w_u16(&w, 0xc000 | owner);
		}
		w_u32(&w, 1);		/* serial */
		w_u32(&w, 3600);	/* refresh */
		w_u32(&w, 600);		/* retry */
		w_u32(&w, 86400);	/* expire */
		w_u32(&w, a->ttl);	/* minimum: the negative TTL */
		nscount = 1;
	}

	if (w.len + optlen > limit) {
		/* Too big for the client: question (+ OPT) only, TC=1. */
		w.len = q->question_end;
		w.over = false;
		ancount = 0;
		nscount = 0;
		out[2] |= 0x02;
	} else if (w.over || w.len + optlen > cap)
		return 0;
	put16(out + 6, ancount);
	put16(out + 8, nscount);
	if (q->has_edns) {
		put16(out + 10, 1);
		w_opt(&w, our_udp, a->rcode, q->edns_do);
	}
	return w.over ? 0 : w.len;
}

bool
dnswire_same_question(const uint8_t *query, size_t qlen, const uint8_t *reply,
    size_t rlen)
{
	size_t qe, re;
	uint16_t qt, qc, rt, rc;

	if (!parse_question(query, qlen, &qe, &qt, &qc) ||
	    !parse_question(reply, rlen, &re, &rt, &rc))
		return false;
	if (qt != rt || qc != rc)
		return false;
	return name_eq(query + DNS_HDR_LEN, qe - 4 - DNS_HDR_LEN,
	    reply + DNS_HDR_LEN, re - 4 - DNS_HDR_LEN);
}

bool
dnswire_is_response(const uint8_t *pkt, size_t len)
{
	size_t end;
	uint16_t t, c;

	if (len < DNS_HDR_LEN || !dnswire_qr(pkt))
		return false;
	return parse_question(pkt, len, &end, &t, &c);
}

size_t
dnswire_truncate(uint8_t *pkt, size_t len, size_t limit)
{
	size_t qend, off, optoff = 0, optlen = 0;
	uint16_t t, c;
	unsigned an, ns, ar;

	if (len < DNS_HDR_LEN)
		return len;
	an = dnswire_ancount(pkt);
	ns = dnswire_nscount(pkt);
	ar = dnswire_arcount(pkt);
	pkt[2] |= 0x02;
	put16(pkt + 6, 0);
	put16(pkt + 8, 0);
	put16(pkt + 10, 0);
	if (!parse_question(pkt, len, &qend, &t, &c) || qend > limit) {
		put16(pkt + 4, 0);
		return DNS_HDR_LEN;
	}
	/* Find the OPT RR; give up quietly on a malformed section. */
	off = qend;
	for (unsigned i = 0; i < an + ns + ar; i++) {
		struct rr rr;
		if (!read_rr(pkt, len, &off, &rr))
			break;
		if (i >= an + ns && rr.type == DNS_TYPE_OPT &&
		    pkt[rr.owner] == 0) {
			optoff = rr.owner;
			optlen = off - rr.owner;
			break;
		}
	}
	if (optlen == 0)
		return qend;
	if (qend + 11 > limit)
		return qend;
	memmove(pkt + qend, pkt + optoff, qend + optlen <= limit ? optlen : 11);
	if (qend + optlen > limit) {
		put16(pkt + qend + 9, 0);	/* options dropped */
		optlen = 11;
	}
	put16(pkt + 10, 1);
	return qend + optlen;
}

/* Parses a decimal label of 1..3 digits (no leading zero) up to max. */
static unsigned
parse_label_num(const char *s, size_t n, unsigned max, int *ok)
{
	unsigned v = 0;

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0')) {
		*ok = 0;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			*ok = 0;
			return 0;
		}
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		*ok = 0;
	return v;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
dnswire_ptr_to_addr(const char *name, struct netaddr *out)
{
	static const char v4sfx[] = "in-addr.arpa", v6sfx[] = "ip6.arpa";
	size_t n = strlen(name);
	int ok = 1;

	memset(out, 0, sizeof(*out));
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n > sizeof(v4sfx) && name[n - sizeof(v4sfx)] == '.' &&
	    strncasecmp(name + n - (sizeof(v4sfx) - 1), v4sfx,
	    sizeof(v4sfx) - 1) == 0) {
		const char *p = name, *end = name + n - sizeof(v4sfx);
		for (int i = 3; i >= 0; i--) {
			const char *dot = p;
			while (dot < end && *dot != '.')
				dot++;
			if ((i > 0) != (dot < end))
				return false;
			out->a[i] = parse_label_num(p, dot - p, 255, &ok);
			if (!ok)
				return false;
			p = dot + 1;
		}
		out->family = AF_INET;
		return true;
	}
	if (n == 64 + sizeof(v6sfx) - 1 &&
	    strncasecmp(name + 64, v6sfx, sizeof(v6sfx) - 1) == 0) {
		for (int i = 0; i < 32; i++) {
			int v = hexval(name[2 * i]);
			if (v < 0 || name[2 * i + 1] != '.')
				return false;
			/* First nibble label is the lowest nibble. */
			int byte = 15 - i / 2;
			if (i % 2 == 0)
				out->a[byte] |= v;
			else
				out->a[byte] |= v << 4;
		}
		out->family = AF_INET6;
		return true;
	}
	memset(out, 0, sizeof(*out));
	return false;
}

size_t
dnswire_name_to_wire(const char *name, uint8_t *out, size_t cap)
{
	uint8_t buf[DNS_MAX_NAME + 1];
	size_t n, lab = 0;		/* lab: offset of the current length byte */
	const char *s = name;

	if (strcmp(name, ".") == 0)
		s = "";
	n = 1;
	while (*s != '\0') {
		uint8_t c;
		if (*s == '.') {
			if (n - lab - 1 == 0)
				return 0;	/* empty label */
			buf[lab] = n - lab - 1;
			lab = n++;
			if (*++s == '\0')	/* trailing dot */
				break;
			continue;
		}
		if (*s == '\\') {
			s++;
			if (s[0] >= '0' && s[0] <= '9') {
				unsigned v;
				if (!(s[1] >= '0' && s[1] <= '9' &&
				    s[2] >= '0' && s[2] <= '9'))
					return 0;
				v = (s[0] - '0') * 100 + (s[1] - '0') * 10 +
				    (s[2] - '0');
				if (v > 255)
					return 0;
				c = v;
				s += 3;
			} else if (*s == '\0')
				return 0;
			else
				c = *s++;
		} else
			c = *s++;
		if (n - lab - 1 >= 63 || n >= DNS_MAX_NAME)
			return 0;
		buf[n++] = lower(c);
	}
	if (n - lab - 1 > 0) {		/* close the last label */
		buf[lab] = n - lab - 1;
		lab = n++;
	}
	if (n > DNS_MAX_NAME)
		return 0;
	buf[lab] = 0;			/* root */
	if (n > cap)
		return 0;
	memcpy(out, buf, n);
	return n;
}

size_t
dnswire_build_query(uint16_t id, const char *name, uint16_t qtype,
    uint16_t udp, uint8_t *out, size_t cap)
{
	struct wbuf w = { out, cap, 0, false };
	uint8_t wire[DNS_MAX_NAME + 1], hdr[DNS_HDR_LEN] = { 0 };
	size_t n;

	if ((n = dnswire_name_to_wire(name, wire, sizeof(wire))) == 0)
		return 0;
	put16(hdr, id);
	hdr[2] = 0x01;			/* RD */
	put16(hdr + 4, 1);
	put16(hdr + 10, udp != 0 ? 1 : 0);
	w_bytes(&w, hdr, sizeof(hdr));
	w_bytes(&w, wire, n);
	w_u16(&w, qtype);
	w_u16(&w, DNS_CLASS_IN);
	if (udp != 0)
		w_opt(&w, udp, 0, false);
	return w.over ? 0 : w.len;
}

bool
dnswire_layout(const uint8_t *pkt, size_t len, uint16_t *ttl_offs, size_t max, struct dns_layout *out)
{
	size_t qend, off;
	uint16_t t, c;

	memset(out, 0, sizeof(*out));
	out->min_answer_ttl = UINT32_MAX;
	if (len > UINT16_MAX || !parse_question(pkt, len, &qend, &t, &c) || dnswire_qdcount(pkt) != 1)
		return false;
	unsigned an = dnswire_ancount(pkt), total = an + dnswire_nscount(pkt) + dnswire_arcount(pkt);
	off = qend;
	for (unsigned i = 0; i < total; i++) {
		struct rr rr;
		if (out->opt_end != 0 || !read_rr(pkt, len, &off, &rr))
			return false; /* malformed, or something after the OPT */
		if (rr.type == DNS_TYPE_OPT) {
			if (i < an + dnswire_nscount(pkt) || pkt[rr.owner] != 0)
				return false;
			out->opt_start = rr.owner;
			out->opt_end = off;
			continue;
		}
		if (out->nttl >= max)
			return false;
		ttl_offs[out->nttl++] = (uint16_t)(rr.rdata - 6);
		uint32_t v = rr.ttl & 0x80000000 ? 0 : rr.ttl;
		if (i < an && v < out->min_answer_ttl)
			out->min_answer_ttl = v;
	}
	return true;
}

bool
dnswire_negative_ttl(const uint8_t *pkt, size_t len, uint32_t *ttl)
{
	size_t qend, off;
	uint16_t t, c;

	if (!parse_question(pkt, len, &qend, &t, &c))
		return false;
	unsigned an = dnswire_ancount(pkt), ns = dnswire_nscount(pkt);
	off = qend;
	for (unsigned i = 0; i < an + ns; i++) {
		struct rr rr;
		if (!read_rr(pkt, len, &off, &rr))
			return false;
		if (i < an || rr.type != DNS_TYPE_SOA)
			continue;
		/* rdata: MNAME, RNAME, then five 32-bit fields, MINIMUM last */
		if (rr.rdlen < 22)
			return false;
		uint32_t min = get32(pkt + rr.rdata + rr.rdlen - 4);
		uint32_t v = rr.ttl & 0x80000000 ? 0 : rr.ttl;
		if (min & 0x80000000)
			min = 0;
		*ttl = v < min ? v : min;
		return true;
	}
	return false;
}

size_t
dnswire_extract_addrs(const uint8_t *pkt, size_t len, uint16_t qtype,
    struct netaddr *out, size_t max, uint32_t *min_ttl, unsigned *rcode)
{
	uint8_t target[DNS_MAX_NAME + 1], owner[DNS_MAX_NAME + 1];
	size_t tlen, qend, off, count = 0;
	uint32_t minttl = UINT32_MAX;
	uint16_t t, c;
	unsigned an;
	size_t alen = qtype == DNS_TYPE_AAAA ? 16 : 4;

	if (min_ttl != NULL)
		*min_ttl = 0;
	if (rcode != NULL)
		*rcode = DNS_RCODE_SERVFAIL;
	if (!parse_question(pkt, len, &qend, &t, &c))
		return 0;
	if (rcode != NULL)
		*rcode = dnswire_rcode(pkt);
	if (qtype != DNS_TYPE_A && qtype != DNS_TYPE_AAAA)
		return 0;
	tlen = qend - 4 - DNS_HDR_LEN;
	memcpy(target, pkt + DNS_HDR_LEN, tlen);
	an = dnswire_ancount(pkt);

	/* Follow the CNAME chain from the question name. */
	for (int hop = 0; hop < 16; hop++) {
		bool found = false;
		off = qend;
		for (unsigned i = 0; i < an; i++) {
			struct rr rr;
			size_t olen, nlen;
			if (!read_rr(pkt, len, &off, &rr))
				break;
			if (rr.type != DNS_TYPE_CNAME ||
			    rr.class != DNS_CLASS_IN)
				continue;
			olen = read_name(pkt, len, rr.owner, owner);
			if (olen == 0 || !name_eq(owner, olen, target, tlen))
				continue;
			nlen = read_name(pkt, rr.rdata + rr.rdlen, rr.rdata,
			    owner);
			if (nlen == 0)
				continue;
			memcpy(target, owner, nlen);
			tlen = nlen;
			if (rr.ttl & 0x80000000)
				rr.ttl = 0;
			if (rr.ttl < minttl)
				minttl = rr.ttl;
			found = true;
			break;
		}
		if (!found)
			break;
	}

	off = qend;
	for (unsigned i = 0; i < an && count < max; i++) {
		struct rr rr;
		size_t olen;
		if (!read_rr(pkt, len, &off, &rr))
			break;
		if (rr.type != qtype || rr.class != DNS_CLASS_IN ||
		    rr.rdlen != alen)
			continue;
		olen = read_name(pkt, len, rr.owner, owner);
		if (olen == 0 || !name_eq(owner, olen, target, tlen))
			continue;
		memset(&out[count], 0, sizeof(out[count]));
		out[count].family = alen == 4 ? AF_INET : AF_INET6;
		if (rr.ttl & 0x80000000)	/* RFC 2181 8 */
			rr.ttl = 0;
		memcpy(out[count].a, pkt + rr.rdata, alen);
		count++;
		if (rr.ttl < minttl)
			minttl = rr.ttl;
	}
	if (min_ttl != NULL && count > 0)
		*min_ttl = minttl;
	return count;
}
