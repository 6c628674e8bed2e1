/* netaddr — see include/netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
netaddr_parse(const char *s, struct netaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (strchr(s, ':') != NULL) {
		if (inet_pton(AF_INET6, s, out->a) == 1) {
			out->family = AF_INET6;
			return true;
		}
		return false;
	}
	if (inet_pton(AF_INET, s, out->a) == 1) {
		out->family = AF_INET;
		return true;
	}
	return false;
}

static unsigned
family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static void
clear_host_bits(struct netaddr *a, unsigned len, bool *had_bits)
{
	unsigned bytes = a->family == AF_INET ? 4 : 16;
	for (unsigned i = 0; i < bytes; i++) {
		unsigned bit0 = i * 8;
		uint8_t mask;
		if (bit0 + 8 <= len)
			mask = 0xff;
		else if (bit0 >= len)
			mask = 0;
		else
			mask = (uint8_t)(0xff << (8 - (len - bit0)));
		if ((a->a[i] & ~mask) && had_bits)
			*had_bits = true;
		a->a[i] &= mask;
	}
}

bool
netprefix_parse(const char *s, bool strict, struct netprefix *out)
{
	char buf[NETPREFIX_STRLEN + 8];
	memset(out, 0, sizeof(*out));
	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	char *slash = strchr(buf, '/');
	unsigned len;
	if (slash != NULL) {
		*slash = '\0';
		const char *l = slash + 1;
		if (*l == '\0' || strlen(l) > 3)
			return false;
		for (const char *c = l; *c; c++)
			if (*c < '0' || *c > '9')
				return false;
		len = (unsigned)atoi(l);
	}
	if (!netaddr_parse(buf, &out->addr))
		return false;
	if (slash == NULL)
		len = family_bits(out->addr.family);
	if (len > family_bits(out->addr.family))
		return false;
	bool had = false;
	clear_host_bits(&out->addr, len, &had);
	if (had && strict)
		return false;
	out->len = len;
	return true;
}

bool
netaddr_parse_hostport(const char *s, uint16_t default_port,
    struct netaddr *out, uint16_t *port)
{
	char host[NETADDR_STRLEN + 2];
	const char *p = NULL;
	*port = default_port;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || (size_t)(end - s - 1) >= sizeof(host))
			return false;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		if (end[1] == ':')
			p = end + 2;
		else if (end[1] != '\0')
			return false;
		if (!netaddr_parse(host, out) || out->family != AF_INET6)
			return false;
	} else {
		const char *colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			/* bare IPv6 without port */
			return netaddr_parse(s, out);
		}
		size_t hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl >= sizeof(host))
			return false;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (colon)
			p = colon + 1;
		if (!netaddr_parse(host, out))
			return false;
	}
	if (p != NULL) {
		if (*p == '\0' || strlen(p) > 5)
			return false;
		unsigned long v = 0;
		for (const char *c = p; *c; c++) {
			if (*c < '0' || *c > '9')
				return false;
			v = v * 10 + (unsigned long)(*c - '0');
		}
		if (v == 0 || v > 65535)
			return false;
		*port = (uint16_t)v;
	}
	return true;
}

bool
netaddr_parse_hostport0(const char *s, uint16_t default_port, struct netaddr *a, uint16_t *port)
{
	char buf[NETADDR_STRLEN + 16];
	size_t n = strlen(s);
	const char *colon;

	if (n >= sizeof(buf))
		return false;
	colon = strrchr(s, ':');
	if (colon != NULL && colon > s && strcmp(colon, ":0") == 0 &&
	    (colon[-1] == ']' || strchr(s, ':') == colon)) {
		memcpy(buf, s, (size_t)(colon - s));
		buf[colon - s] = '\0';
		if (!netaddr_parse_hostport(buf, default_port, a, port))
			return false;
		*port = 0;
		return true;
	}
	return netaddr_parse_hostport(s, default_port, a, port);
}

const char *
netaddr_hostport_problem(const char *s)
{
	struct netaddr a;
	uint16_t port;
	char host[NETADDR_STRLEN + 2];
	const char *p = NULL;
	size_t hl;

	if (netaddr_parse_hostport(s, 53, &a, &port))
		return NULL;
	if (*s == '\0')
		return "empty";
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL)
			return "an IPv6 address needs its closing ']'";
		if (end[1] == ':')
			p = end + 2;
		else if (end[1] != '\0')
			return "expected :PORT after ']'";
		s++;
		hl = (size_t)(end - s);
	} else {
		const char *colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return "not an IP address (an IPv6 address with a port is [ADDR]:PORT)";
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			p = colon + 1;
	}
	if (hl >= sizeof(host))
		return "not an IP address";
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (!netaddr_parse(host, &a))
		return "not an IP address (a name is not resolved here)";
	if (p != NULL) {
		if (*p == '\0')
			return "the port is empty";
		for (const char *c = p; *c; c++)
			if (*c < '0' || *c > '9')
				return "the port is not a number";
		return "the port is out of range (1..65535)";
	}
	return "not ADDR[:PORT]";
}

bool
netaddr_equal(const struct netaddr *x, const struct netaddr *y)
{
	if (x->family != y->family)
		return false;
	return memcmp(x->a, y->a, x->family == AF_INET ? 4 : 16) == 0;
}

int
netaddr_cmp(const void *x, const void *y)
{
	const struct netaddr *a = x, *b = y;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->a, b->a, a->family == AF_INET ? 4 : 16);
}

uint32_t
netaddr_hash(const struct netaddr *a)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < (a->family == AF_INET ? 4u : 16u); i++) {
		h ^= a->a[i];
		h *= 16777619u;
	}
	return h;
}

bool
netprefix_contains(const struct netprefix *p, const struct netaddr *a)
{
	if (p->addr.family != a->family)
		return false;
	struct netaddr t = *a;
	clear_host_bits(&t, p->len, NULL);
	return netaddr_equal(&t, &p->addr);
}

uint64_t
netprefix_size(const struct netprefix *p)
{
	unsigned host = family_bits(p->addr.family) - p->len;
	if (host >= 64)
		return UINT64_MAX;
	return (uint64_t)1 << host;
}

void
netprefix_nth(const struct netprefix *p, uint64_t idx, struct netaddr *out)
{
	*out = p->addr;
	unsigned bytes = out->family == AF_INET ? 4 : 16;
	/* add idx to the low 64 bits, big-endian */
	unsigned carry = 0;
	for (unsigned i = 0; i < bytes; i++) {
		unsigned pos = bytes - 1 - i;
		unsigned add = i < 8 ? (unsigned)((idx >> (8 * i)) & 0xff) : 0;
		unsigned v = out->a[pos] + add + carry;
		out->a[pos] = (uint8_t)v;
		carry = v >> 8;
	}
}

uint64_t
netprefix_offset(const struct netprefix *p, const struct netaddr *a)
{
	/* the low 64 bits are enough: every VIP is netprefix_nth() of its pool
	 * with a 64-bit index */
	unsigned bytes = a->family == AF_INET ? 4 : 16;
	unsigned start = bytes > 8 ? bytes - 8 : 0;
	uint64_t off = 0, base = 0;
	for (unsigned i = start; i < bytes; i++) {
		off = (off << 8) | a->a[i];
		base = (base << 8) | p->addr.a[i];
	}
	return off - base;
}

const char *
netaddr_fmt(const struct netaddr *a, char *buf, size_t len)
{
	if (a->family == 0 || inet_ntop(a->family, a->a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

const char *
netprefix_fmt(const struct netprefix *p, char *buf, size_t len)
{
	char tmp[NETADDR_STRLEN];
	snprintf(buf, len, "%s/%u", netaddr_fmt(&p->addr, tmp, sizeof(tmp)), p->len);
	return buf;
}

socklen_t
netaddr_to_sockaddr(const struct netaddr *a, uint16_t port,
    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->a, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, a->a, 16);
	return sizeof(*sin6);
}

bool
netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *a,
    uint16_t *port)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		a->family = AF_INET;
		memcpy(a->a, &sin->sin_addr, 4);
		if (port)
			*port = ntohs(sin->sin_port);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		/* v4-mapped clients are treated as IPv4 for allow lists */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			a->family = AF_INET;
			memcpy(a->a, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			a->family = AF_INET6;
			memcpy(a->a, &sin6->sin6_addr, 16);
		}
		if (port)
			*port = ntohs(sin6->sin6_port);
		return true;
	}
	return false;
}
