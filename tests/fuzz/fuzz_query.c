/* libFuzzer: client queries through the parser and every answer builder. */
#include <stdint.h>
#include <string.h>

#include "dnswire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65536 + 2];
	struct dns_query q;
	enum dns_verdict v = dnswire_parse_query(data, size, &q);
	dnswire_build_error(data, size, &q, DNS_RCODE_SERVFAIL, 1232, out, sizeof(out));
	if (v != DNS_Q_OK)
		return 0;
	struct netaddr a[3];
	memset(a, 0, sizeof(a));
	netaddr_parse("240.240.1.2", &a[0]);
	netaddr_parse("240.240.1.3", &a[1]);
	netaddr_parse("2001:db8::1", &a[2]);
	struct dns_answer ans = { .aa = true, .ttl = 30, .addrs = a, .naddrs = 3, .rotate = size, .soa = size & 1,
		.cname = (size & 2) ? q.name : NULL };
	/* every client limit, including ones too small for the question */
	dnswire_build_answer(data, &q, &ans, 1232, q.client_limit, out, sizeof(out));
	dnswire_build_answer(data, &q, &ans, 1232, 65535, out, sizeof(out));
	dnswire_build_answer(data, &q, &ans, 1232, 12 + (size % 64), out, sizeof(out));
	struct dns_answer ptr = { .aa = true, .ttl = 5, .ptr = q.name, .soa = true };
	dnswire_build_answer(data, &q, &ptr, 1232, 512, out, 600);
	struct netaddr x;
	dnswire_ptr_to_addr(q.name, &x);
	return 0;
}
