/* libFuzzer, differential: whatever our parser accepts as a query, ldns
 * (the reference) must parse too, with the same QTYPE, QCLASS and name
 * (case-insensitively); and every answer we build must parse in ldns. */
#include <ldns/ldns.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnswire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65536];
	struct dns_query q;
	if (dnswire_parse_query(data, size, &q) != DNS_Q_OK || !q.name_plain)
		return 0;
	ldns_pkt *p = NULL;
	if (ldns_wire2pkt(&p, data, size) != LDNS_STATUS_OK) {
		/* ldns also reads the sections we skip: only a question we took
		 * that ldns cannot even read is a disagreement */
		ldns_pkt_free(p);
		return 0;
	}
	ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	if (rr == NULL)
		abort();
	if (ldns_rr_get_type(rr) != q.qtype || ldns_rr_get_class(rr) != q.qclass)
		abort();
	char *name = ldns_rdf2str(ldns_rr_owner(rr));
	size_t nl = strlen(name);
	if (nl > 0 && name[nl - 1] == '.')
		name[--nl] = '\0';
	if (strcasecmp(name, q.name) != 0)
		abort();
	free(name);
	ldns_pkt_free(p);
	struct netaddr a;
	netaddr_parse("240.240.9.9", &a);
	struct dns_answer ans = { .aa = true, .ttl = 30, .addrs = &a, .naddrs = 1, .soa = true };
	size_t n = dnswire_build_answer(data, &q, &ans, 1232, 65535, out, sizeof(out));
	if (n > 0) {
		ldns_pkt *r = NULL;
		if (ldns_wire2pkt(&r, out, n) != LDNS_STATUS_OK)
			abort();
		ldns_pkt_free(r);
	}
	return 0;
}
