/*
 * netaddr — IPv4/IPv6 addresses and CIDR prefixes as plain values.
 *
 * Pure helpers shared by config, ServiceEntry validation, the VIP allocator,
 * the name table and the rule renderer. No allocation; every struct is a
 * value the caller owns.
 */
#ifndef SEDNS_NETADDR_H
#define SEDNS_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct netaddr {
	int family;          /* AF_INET or AF_INET6; 0 = unset */
	uint8_t a[16];       /* network byte order; IPv4 uses a[0..3] */
};

struct netprefix {
	struct netaddr addr; /* host bits cleared */
	unsigned len;        /* prefix length */
};

#define NETADDR_STRLEN 46          /* INET6_ADDRSTRLEN */
#define NETPREFIX_STRLEN (46 + 4)

/* Parses a literal IPv4 or IPv6 address (no brackets, no port). */
bool netaddr_parse(const char *s, struct netaddr *out);
/* Parses "ADDR/LEN"; with require_len false a bare ADDR is a full-length
 * prefix. Rejects host bits set only when strict is true. */
bool netprefix_parse(const char *s, bool strict, struct netprefix *out);
/* Parses "ADDR", "ADDR:PORT", "[V6]:PORT" or "[V6]"; port defaults to
 * default_port. */
bool netaddr_parse_hostport(const char *s, uint16_t default_port,
    struct netaddr *out, uint16_t *port);
/* netaddr_parse_hostport, plus an explicit port 0 ("pick a free port"). */
bool netaddr_parse_hostport0(const char *s, uint16_t default_port, struct netaddr *out, uint16_t *port);
/* Why s is not what netaddr_parse_hostport accepts, for an error message
 * ("the port is out of range (1..65535)", "not an IP address", ...); NULL
 * when it parses. The string is static. */
const char *netaddr_hostport_problem(const char *s);

bool netaddr_equal(const struct netaddr *x, const struct netaddr *y);
/* qsort/bsearch order on struct netaddr: family, then the address bytes
 * (4 for IPv4, whatever the rest holds). */
int netaddr_cmp(const void *x, const void *y);
/* FNV-1a over the address bytes, for open-addressing tables. */
uint32_t netaddr_hash(const struct netaddr *a);
bool netprefix_contains(const struct netprefix *p, const struct netaddr *a);
/* Number of addresses in the prefix, saturated at UINT64_MAX. */
uint64_t netprefix_size(const struct netprefix *p);
/* The address at offset idx from the prefix base (idx < size). */
void netprefix_nth(const struct netprefix *p, uint64_t idx, struct netaddr *out);
/* Offset of a (which must be inside p) from the prefix base. */
uint64_t netprefix_offset(const struct netprefix *p, const struct netaddr *a);

const char *netaddr_fmt(const struct netaddr *a, char *buf, size_t len);
const char *netprefix_fmt(const struct netprefix *p, char *buf, size_t len);

/* Socket address helpers for listeners and upstreams. */
socklen_t netaddr_to_sockaddr(const struct netaddr *a, uint16_t port,
    struct sockaddr_storage *ss);
bool netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *a,
    uint16_t *port);

#endif
