/* querylog — see include/querylog.h. */
#include "querylog.h"

#include <stdio.h>
#include <string.h>

static const struct {
	uint16_t code;
	const char *name;
} types[] = {
	{ 1, "A" }, { 2, "NS" }, { 5, "CNAME" }, { 6, "SOA" }, { 12, "PTR" }, { 13, "HINFO" }, { 15, "MX" },
	{ 16, "TXT" }, { 17, "RP" }, { 18, "AFSDB" }, { 24, "SIG" }, { 25, "KEY" }, { 28, "AAAA" }, { 29, "LOC" },
	{ 33, "SRV" }, { 35, "NAPTR" }, { 36, "KX" }, { 37, "CERT" }, { 39, "DNAME" }, { 41, "OPT" }, { 42, "APL" },
	{ 43, "DS" }, { 44, "SSHFP" }, { 45, "IPSECKEY" }, { 46, "RRSIG" }, { 47, "NSEC" }, { 48, "DNSKEY" },
	{ 49, "DHCID" }, { 50, "NSEC3" }, { 51, "NSEC3PARAM" }, { 52, "TLSA" }, { 53, "SMIMEA" }, { 55, "HIP" },
	{ 59, "CDS" }, { 60, "CDNSKEY" }, { 61, "OPENPGPKEY" }, { 62, "CSYNC" }, { 63, "ZONEMD" }, { 64, "SVCB" },
	{ 65, "HTTPS" }, { 99, "SPF" }, { 108, "EUI48" }, { 109, "EUI64" }, { 249, "TKEY" }, { 250, "TSIG" },
	{ 251, "IXFR" }, { 252, "AXFR" }, { 255, "ANY" }, { 256, "URI" }, { 257, "CAA" },
};

const char *
qlog_type_name(uint16_t t, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].code == t)
			return types[i].name;
	snprintf(buf, len, "TYPE%u", t);
	return buf;
}

const char *
qlog_class_name(uint16_t c, char *buf, size_t len)
{
	switch (c) {
	case 1: return "IN";
	case 3: return "CH";
	case 4: return "HS";
	case 254: return "NONE";
	case 255: return "ANY";
	default:
		snprintf(buf, len, "CLASS%u", c);
		return buf;
	}
}

const char *
qlog_rcode_name(unsigned rc, char *buf, size_t len)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
		"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE" };
	if (rc < sizeof(names) / sizeof(names[0]))
		return names[rc];
	if (rc == 16)
		return "BADVERS";
	snprintf(buf, len, "RCODE%u", rc);
	return buf;
}

size_t
qlog_fields(const struct qlog_entry *e, struct log_field *f, char *scratch)
{
	size_t n = 0;
	char *tb = scratch, *cb = scratch + 16, *rb = scratch + 32;
#define S(k, v) f[n++] = (struct log_field){ (k), (v), 0 }
#define N(k, v) f[n++] = (struct log_field){ (k), NULL, (v) }
	S("client", e->client);
	S("proto", e->tcp ? "tcp" : "udp");
	if (e->have_question) {
		S("name", *e->name ? e->name : ".");
		S("type", qlog_type_name(e->qtype, tb, 16));
		S("class", qlog_class_name(e->qclass, cb, 16));
	} else {
		S("name", "-");
		S("type", "-");
		S("class", "-");
	}
	S("action", e->action);
	if (e->zone != NULL)
		S("zone", *e->zone ? e->zone : ".");
	if (e->upstream != NULL)
		S("upstream", e->upstream);
	if (e->ttl_left >= 0)
		N("ttl_left", (unsigned long long)e->ttl_left);
	S("rcode", e->rcode >= 0 ? qlog_rcode_name((unsigned)e->rcode, rb, 32) : "-");
	N("answers", e->answers);
	if (e->note != NULL)
		S("note", e->note);
	N("latency_us", e->latency_us);
#undef S
#undef N
	return n;
}

void
qlog_limit_init(struct qlog_limit *l, uint64_t per_sec)
{
	memset(l, 0, sizeof(*l));
	l->per_sec = per_sec;
}

bool
qlog_limit_take(struct qlog_limit *l, double now)
{
	if (l->per_sec == 0)
		return true;
	if (now - l->window >= 1.0 || now < l->window) {
		l->window = now;
		l->used = 0;
	}
	if (l->used < l->per_sec) {
		l->used++;
		return true;
	}
	if (l->suppressed++ == 0)
		l->suppressed_since = l->window;
	return false;
}

uint64_t
qlog_limit_due(struct qlog_limit *l, double now, double *span)
{
	/* the window that suppressed the last of them must be over: the
	 * count then covers it whole */
	if (l->suppressed == 0 || (now - l->window < 1.0 && now >= l->window))
		return 0;
	uint64_t n = l->suppressed;
	double end = l->window + 1.0 < now && l->window <= now ? l->window + 1.0 : now;
	*span = end - l->suppressed_since;
	l->suppressed = 0;
	return n;
}
