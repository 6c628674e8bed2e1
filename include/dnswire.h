/*
 * dnswire — DNS wire-format parsing and answer building (RFC 1035, 6891).
 *
 * The hot path of the proxy: every client query is parsed here and every
 * local answer is written here. Pure: no I/O, no allocation, no global state.
 * All input packets are caller-owned, read-only and never read past their
 * given length; all output goes into caller-owned buffers of a given
 * capacity. Structs filled here hold copies or offsets, never pointers into
 * the packet, so they stay valid after the packet buffer is reused.
 */
#ifndef SEDNS_DNSWIRE_H
#define SEDNS_DNSWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define DNS_MAX_UDP	65535
#define DNS_HDR_LEN	12
#define DNS_MIN_UDP	512	/* client limit without EDNS */
#define DNS_MAX_NAME	255	/* wire octets, root byte included */

#define DNS_TYPE_A	1
#define DNS_TYPE_NS	2
#define DNS_TYPE_CNAME	5
#define DNS_TYPE_SOA	6
#define DNS_TYPE_PTR	12
#define DNS_TYPE_MX	15
#define DNS_TYPE_TXT	16
#define DNS_TYPE_AAAA	28
#define DNS_TYPE_SRV	33
#define DNS_TYPE_OPT	41
#define DNS_TYPE_SVCB	64
#define DNS_TYPE_HTTPS	65
#define DNS_TYPE_ANY	255

#define DNS_CLASS_IN	1
#define DNS_CLASS_CH	3

#define DNS_RCODE_NOERROR	0
#define DNS_RCODE_FORMERR	1
#define DNS_RCODE_SERVFAIL	2
#define DNS_RCODE_NXDOMAIN	3
#define DNS_RCODE_NOTIMP	4
#define DNS_RCODE_REFUSED	5
#define DNS_RCODE_BADVERS	16	/* extended: 4 low bits in header, rest in OPT */

/*
 * Header accessors. Callers must have checked len >= DNS_HDR_LEN.
 */
#define DNS_GET16(p)	((uint16_t)(((uint16_t)(p)[0] << 8) | (p)[1]))
static inline bool dnswire_qr(const uint8_t *p) { return (p[2] & 0x80) != 0; }
static inline unsigned dnswire_opcode(const uint8_t *p) { return (p[2] >> 3) & 0xf; }
static inline bool dnswire_tc(const uint8_t *p) { return (p[2] & 0x02) != 0; }
static inline bool dnswire_rd(const uint8_t *p) { return (p[2] & 0x01) != 0; }
static inline unsigned dnswire_rcode(const uint8_t *p) { return p[3] & 0xf; }
static inline uint16_t dnswire_qdcount(const uint8_t *p) { return DNS_GET16(p + 4); }
static inline uint16_t dnswire_ancount(const uint8_t *p) { return DNS_GET16(p + 6); }
static inline uint16_t dnswire_nscount(const uint8_t *p) { return DNS_GET16(p + 8); }
static inline uint16_t dnswire_arcount(const uint8_t *p) { return DNS_GET16(p + 10); }

/*
 * A parsed client query. A value: filled by dnswire_parse_query, owned by the
 * caller, no pointers into the packet (offsets only).
 */
struct dns_query {
	uint16_t id;		/* header ID */
	uint8_t opcode;		/* header opcode (0 = QUERY) */
	bool rd, cd;		/* header RD and CD bits */
	uint16_t qtype, qclass;	/* from the question */
	size_t qname_len;	/* wire length of QNAME at offset 12, root byte
				   included; 0 when the question did not parse */
	char name[256];		/* QNAME lower-cased, presentation form, no
				   trailing dot, "" for the root. Bytes outside
				   [!-~], '.' and '\\' inside labels are written
				   \DDD. Only meaningful for lookups when
				   name_plain is true; otherwise for logging (it
				   may then be cut short) */
	bool name_plain;	/* every label byte is [a-z0-9_-] (after
				   lower-casing): safe to look up locally */
	size_t question_end;	/* offset just after QCLASS (12 + qname_len + 4) */
	bool has_edns;		/* an OPT RR was found in the additional section */
	uint16_t edns_udp;	/* its advertised UDP payload size (CLASS) */
	uint8_t edns_version;	/* its EDNS version */
	bool edns_do;		/* its DO bit */
	uint16_t client_limit;	/* 512 without EDNS, else max(512, edns_udp) */
};

enum dns_verdict {
	DNS_Q_OK,		/* a standard query: look up / forward it */
	DNS_Q_DROP,		/* not worth an answer: runt or a response */
	DNS_Q_FORMERR,		/* answer with FORMERR */
	DNS_Q_NOTIMP,		/* opcode != QUERY: answer NOTIMP */
	DNS_Q_BADVERS,		/* EDNS version > 0: answer BADVERS (rcode 16) */
};

/*
 * Parses and classifies a client query. q is always (re)initialised; on
 * FORMERR/NOTIMP/BADVERS it holds whatever parsed (qname_len != 0 when the
 * question did, has_edns when a well-formed OPT was seen) so that
 * dnswire_build_error can echo it. Answer and authority RRs are skipped;
 * bytes after the last counted RR are ignored.
 */
enum dns_verdict dnswire_parse_query(const uint8_t *pkt, size_t len,
    struct dns_query *q);

/*
 * Error reply (FORMERR, NOTIMP, REFUSED, SERVFAIL, BADVERS, ...): copies ID,
 * opcode, RD and CD from pkt, sets QR=1, RA=1; echoes the question when q is
 * non-NULL and parsed it (qname_len != 0), with QDCOUNT set accordingly; adds
 * an OPT RR (our_udp, DO echoed, upper rcode bits as extended rcode) when q
 * saw one. Returns the length written, 0 if it cannot (len < 12, cap small).
 */
size_t dnswire_build_error(const uint8_t *pkt, size_t len,
    const struct dns_query *q, unsigned rcode, uint16_t our_udp,
    uint8_t *out, size_t cap);

/*
 * A local answer. Everything it points to is owned by the caller and only
 * read during dnswire_build_answer.
 */
struct dns_answer {
	unsigned rcode;			/* usually 0; > 15 needs EDNS */
	bool aa;			/* set the AA bit */
	const char *cname;		/* NULL, or a CNAME target (presentation,
					   trailing dot optional): a CNAME RR owned
					   by the query name comes first, and the
					   address/PTR/TXT records are owned by the
					   target */
	const struct netaddr *addrs;	/* addresses: AF_INET ones become A RRs,
					   AF_INET6 ones AAAA RRs; the caller
					   passes only the family asked for */
	size_t naddrs;
	size_t rotate;			/* first address emitted is
					   addrs[rotate % naddrs] (round robin) */
	const char *ptr;		/* PTR target, or NULL */
	const char *const *txt;		/* TXT strings; each becomes one TXT RR of
					   one or more <character-string>s of at
					   most 255 bytes */
	size_t ntxt;
	uint32_t ttl;			/* TTL of every record */
	bool soa;			/* NODATA: an SOA RR in the authority
					   section, owned by the records' owner
					   (query name or CNAME target), MNAME
					   that owner, RNAME hostmaster.<owner>,
					   TTL and MINIMUM = ttl (RFC 2308) */
};

/*
 * Builds a local answer into out: ID echoed, QR=1, opcode copied, AA from a,
 * RD copied, RA=1, CD copied; the question copied byte for byte from pkt
 * (case preserved; q must come from a DNS_Q_OK parse of pkt); the answer
 * records (owners compressed: 0xC00C for the query name, a pointer to the
 * CNAME target's rdata for records it owns; class = q->qclass); an OPT RR
 * when the query had EDNS (our_udp, DO echoed). If the reply would exceed
 * limit (client_limit for UDP, 65535 for TCP), all answer records are
 * dropped and TC=1 is set (question and OPT kept). Returns the length, 0 on
 * failure (bad name in a, or cap too small for a reply within limit).
 */
size_t dnswire_build_answer(const uint8_t *pkt, const struct dns_query *q,
    const struct dns_answer *a, uint16_t our_udp, size_t limit,
    uint8_t *out, size_t cap);

/* ID accessors for the forwarder (pkt must hold at least 2 bytes). */
uint16_t dnswire_get_id(const uint8_t *pkt);
void dnswire_set_id(uint8_t *pkt, uint16_t id);

/*
 * True when both packets carry exactly one well-formed question with the
 * same QTYPE, QCLASS and QNAME compared case-insensitively (0x20 tolerant).
 * False for malformed input or any difference.
 */
bool dnswire_same_question(const uint8_t *query, size_t qlen,
    const uint8_t *reply, size_t rlen);

/* True for len >= 12, QR=1, QDCOUNT == 1 and a question that parses. */
bool dnswire_is_response(const uint8_t *pkt, size_t len);

/*
 * Truncates a reply in place to at most limit bytes: keeps the header and the
 * question, plus the OPT RR when one is found and fits (its options are
 * dropped if only the bare RR fits), sets TC=1 and fixes the counts. A reply
 * whose question does not parse keeps the header only (QDCOUNT=0). Returns
 * the new length (len unchanged if len < 12).
 */
size_t dnswire_truncate(uint8_t *pkt, size_t len, size_t limit);

/*
 * Reverse names to addresses: "7.0.240.240.in-addr.arpa" → 240.240.0.7, 32
 * nibble labels under "ip6.arpa" → IPv6. Case-insensitive, trailing dot
 * allowed. False unless the name spells exactly one full address.
 */
bool dnswire_ptr_to_addr(const char *name, struct netaddr *out);

/*
 * Presentation name → uncompressed wire form, lower-cased. "" and "." are the
 * root; a trailing dot is optional; \DDD and \X escapes are understood.
 * Returns the wire length (root byte included) or 0 (empty label, label over
 * 63, name over 255, cap too small).
 */
size_t dnswire_name_to_wire(const char *name, uint8_t *out, size_t cap);

/*
 * Builds a standard query (RD=1, class IN) for name/qtype, with an OPT RR
 * advertising udp when udp != 0. Returns the length or 0.
 */
size_t dnswire_build_query(uint16_t id, const char *name, uint16_t qtype,
    uint16_t udp, uint8_t *out, size_t cap);

/*
 * Extracts the addresses of type qtype (A or AAAA, class IN) owned by the
 * question name of a reply, following CNAME chains inside the answer section
 * (at most 16 links, any record order). Stores at most max addresses in out
 * and returns how many; *min_ttl gets the smallest TTL among the CNAMEs
 * followed and the addresses stored (0 when none stored); *rcode gets the
 * header rcode (or 2/SERVFAIL for a packet that does not parse). Either
 * out-pointer may be NULL.
 */
size_t dnswire_extract_addrs(const uint8_t *pkt, size_t len, uint16_t qtype,
    struct netaddr *out, size_t max, uint32_t *min_ttl, unsigned *rcode);

/*
 * The negative-caching TTL of a NXDOMAIN / NODATA reply (RFC 2308 5): the
 * smaller of the TTL and the MINIMUM field of the first SOA in the
 * authority section. False when there is none (or the packet is malformed).
 */
bool dnswire_negative_ttl(const uint8_t *pkt, size_t len, uint32_t *ttl);

/*
 * The layout of a reply for the answer cache: the offsets of the TTL field
 * of every RR but OPT (at most max, in order), the smallest TTL in the
 * answer section (UINT32_MAX when it is empty), and where the OPT RR starts
 * and ends (both 0 without one). False for a malformed packet, more than
 * max RRs, or an OPT that is not the last RR.
 */
struct dns_layout {
	size_t nttl;
	uint32_t min_answer_ttl;
	size_t opt_start, opt_end;
};
bool dnswire_layout(const uint8_t *pkt, size_t len, uint16_t *ttl_offs, size_t max, struct dns_layout *out);

#endif
