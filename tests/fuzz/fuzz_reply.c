/* libFuzzer: upstream replies through the forwarder's checks, truncation,
 * address extraction, negative TTL, the cache's layout walk, insert and a
 * hit, for a fixed query and for one made from the reply's own question. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dnswire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[65536], out[65536], q[512];
	static struct cache *c;
	if (c == NULL) {
		struct cache_opts o = { .size = 64, .min_ttl = 1, .max_ttl = 60, .max_negative_ttl = 30, .stale_max = 10 };
		c = cache_new(&o);
	}
	if (size > sizeof(buf))
		return 0;
	size_t ql = dnswire_build_query(0x1234, "www.example.com", DNS_TYPE_A, 1232, q, sizeof(q));
	dnswire_is_response(data, size);
	dnswire_same_question(q, ql, data, size);
	struct netaddr a[32];
	uint32_t ttl;
	unsigned rc;
	dnswire_extract_addrs(data, size, DNS_TYPE_A, a, 32, &ttl, &rc);
	dnswire_extract_addrs(data, size, DNS_TYPE_AAAA, a, 32, &ttl, &rc);
	dnswire_negative_ttl(data, size, &ttl);
	uint16_t offs[64];
	struct dns_layout l;
	dnswire_layout(data, size, offs, 64, &l);
	memcpy(buf, data, size);
	dnswire_truncate(buf, size, size / 2);
	memcpy(buf, data, size);
	dnswire_truncate(buf, size, 512);
	/* the cache, keyed by a query for the reply's own question when it has one */
	struct dns_query dq;
	if (dnswire_parse_query(q, ql, &dq) == DNS_Q_OK) {
		struct cache_key k;
		if (cache_key(q, ql, &dq, &k)) {
			cache_insert(c, &k, data, size, 1.0);
			struct cache_hit h;
			cache_lookup(c, &k, q, ql, 2.0, false, out, sizeof(out), &h);
			cache_lookup(c, &k, q, ql, 100.0, true, out, sizeof(out), &h);
		}
	}
	if (size >= 12 && size < sizeof(q)) {
		memcpy(q, data, size);
		q[2] &= 0x7f; /* as a query */
		q[2] |= 0x01;
		if (dnswire_parse_query(q, size, &dq) == DNS_Q_OK) {
			struct cache_key k;
			if (cache_key(q, size, &dq, &k)) {
				cache_insert(c, &k, data, size, 3.0);
				struct cache_hit h;
				cache_lookup(c, &k, q, size, 3.5, false, out, sizeof(out), &h);
			}
		}
	}
	return 0;
}
