/*
 * Unit tests for registry (merge of ServiceEntries into hosts) and
 * nametable (the query-path lookup structure built from it).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nametable.h"
#include "registry.h"
#include "serviceentry.h"

static struct registry *
build(const char *yaml)
{
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "r.yaml", yaml, strlen(yaml));
	cr_assert_eq(set.nerrors, 0, "fixture has errors: %s", set.ndiags ? set.diags[0].message : "");
	struct registry *reg = registry_build(&set, NULL);
	cr_assert_not_null(reg);
	return reg;
}

#define SE(ns, name, ts, spec)                                                      \
	"---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n" \
	"  name: " name "\n  namespace: " ns "\n" ts "spec:\n" spec

static const char *
diag_text(const struct registry *reg)
{
	static char buf[4096];
	buf[0] = '\0';
	for (size_t i = 0; i < reg->ndiags; i++) {
		strncat(buf, reg->diags[i].message, sizeof(buf) - strlen(buf) - 2);
		strncat(buf, "\n", sizeof(buf) - strlen(buf) - 1);
	}
	return buf;
}

Test(registry, one_record_per_lowercased_host_with_union_of_ports)
{
	struct registry *reg = build(
	    SE("a", "one", "", "  hosts: [API.Example.com]\n  resolution: DNS\n"
	                       "  ports:\n  - {number: 443, name: https, protocol: TLS}\n")
	    SE("b", "two", "", "  hosts: [api.example.com.]\n  resolution: DNS\n"
	                       "  ports:\n  - {number: 80, name: http, protocol: HTTP}\n"));
	cr_assert_eq(reg->nhosts, 1);
	const struct reg_host *h = registry_find(reg, "api.example.com");
	cr_assert_not_null(h);
	cr_assert_eq(h->nentries, 2);
	cr_assert_eq(h->nports, 2);
	cr_assert_eq(h->ports[0].number, 80);
	cr_assert_eq(h->ports[1].number, 443);
	cr_assert(h->wants_vip);
	registry_free(reg);
}

Test(registry, conflicting_port_older_entry_wins_with_warning)
{
	struct registry *reg = build(
	    SE("z", "newer", "  creationTimestamp: \"2024-05-01T00:00:00Z\"\n",
	       "  hosts: [db.example.com]\n  resolution: DNS\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n")
	    SE("a", "older", "  creationTimestamp: \"2023-01-01T00:00:00Z\"\n",
	       "  hosts: [db.example.com]\n  resolution: DNS\n  ports:\n  - {number: 5432, name: pg, protocol: UDP}\n"));
	const struct reg_host *h = registry_find(reg, "db.example.com");
	cr_assert_not_null(h);
	cr_assert_eq(h->nports, 1);
	cr_assert(h->ports[0].udp, "older entry (UDP) should win");
	cr_assert_str_eq(h->entries[0]->name, "older");
	cr_assert_eq(reg->ndiags, 1);
	cr_assert(strstr(diag_text(reg), "z/newer") && strstr(diag_text(reg), "older wins"), "%s", diag_text(reg));
	registry_free(reg);
}

Test(registry, same_timestamp_orders_by_namespace_then_name)
{
	struct registry *reg = build(
	    SE("b", "x", "", "  hosts: [h.example.com]\n  resolution: DNS\n  ports:\n  - {number: 1, name: a, protocol: TCP}\n")
	    SE("a", "y", "", "  hosts: [h.example.com]\n  resolution: DNS\n  ports:\n  - {number: 1, name: a, protocol: UDP}\n"));
	const struct reg_host *h = registry_find(reg, "h.example.com");
	cr_assert_str_eq(h->entries[0]->namespace, "a");
	cr_assert(h->ports[0].udp);
	registry_free(reg);
}

Test(registry, endpoint_port_from_map_then_targetport_then_number)
{
	struct registry *reg = build(SE("ns", "e", "",
	    "  hosts: [vm.internal]\n  resolution: STATIC\n"
	    "  ports:\n  - {number: 8080, name: http, protocol: HTTP, targetPort: 9090}\n"
	    "  - {number: 8443, name: https, protocol: HTTPS}\n"
	    "  endpoints:\n  - address: 10.0.0.1\n    ports: {http: 7070}\n    weight: 3\n"
	    "  - address: 10.0.0.2\n"));
	const struct reg_host *h = registry_find(reg, "vm.internal");
	cr_assert_eq(h->nports, 2);
	const struct reg_port *p80 = &h->ports[0], *p443 = &h->ports[1];
	cr_assert_eq(p80->neps, 2);
	cr_assert_eq(p80->eps[0].port, 7070);
	cr_assert_eq(reg_ep_weight(&p80->eps[0]), 3);
	cr_assert_eq(p80->eps[1].port, 9090);
	cr_assert_eq(reg_ep_weight(&p80->eps[1]), 1, "weight 0 means 1");
	cr_assert_eq(p443->eps[0].port, 8443);
	cr_assert(reg_ep_is_ip(&p80->eps[0]));
	registry_free(reg);
}

/* Endpoints of a port that several entries (with several ports each) add to
 * are one run, oldest entry first; a refused port adds none, socket paths
 * none. */
Test(registry, endpoints_of_a_port_from_several_entries_stay_in_entry_order)
{
	struct registry *reg = build(
	    SE("a", "old", "  creationTimestamp: \"2023-01-01T00:00:00Z\"\n",
	       "  hosts: [m.example.com]\n  resolution: STATIC\n"
	       "  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  - {number: 443, name: tls, protocol: TLS}\n"
	       "  endpoints:\n  - address: 10.0.0.1\n  - address: unix:///run/x.sock\n  - address: 10.0.0.2\n")
	    SE("b", "mid", "  creationTimestamp: \"2023-06-01T00:00:00Z\"\n",
	       "  hosts: [M.Example.Com]\n  resolution: STATIC\n"
	       "  ports:\n  - {number: 443, name: tls, protocol: TCP}\n  - {number: 80, name: http, protocol: http}\n"
	       "  - {number: 9000, name: m, protocol: TCP}\n"
	       "  endpoints:\n  - address: 10.0.1.1\n"));
	const struct reg_host *h = registry_find(reg, "m.example.com");
	cr_assert_not_null(h);
	cr_assert_eq(h->nports, 3);
	const struct reg_port *p80 = &h->ports[0], *p443 = &h->ports[1], *p9000 = &h->ports[2];
	cr_assert_eq(p80->number, 80);
	cr_assert_eq(p80->neps, 3);
	cr_assert_str_eq(reg_ep_address(&p80->eps[0]), "10.0.0.1");
	cr_assert_str_eq(reg_ep_address(&p80->eps[1]), "10.0.0.2");
	cr_assert_str_eq(reg_ep_address(&p80->eps[2]), "10.0.1.1");
	cr_assert_eq(p443->neps, 2, "TCP from the newer entry conflicts with TLS: none of its endpoints");
	cr_assert_str_eq(p443->owner->name, "old");
	cr_assert_eq(p9000->neps, 1);
	cr_assert_str_eq(reg_ep_address(&p9000->eps[0]), "10.0.1.1");
	cr_assert_eq(reg->ndiags, 1, "%s", diag_text(reg));
	registry_free(reg);
}

/* Hosts sort past the 8 bytes of the sort key and across the merge sort's
 * runs; a host named twice by one entry counts once; more addresses than
 * the two slots a host starts with move to their own array. */
Test(registry, many_hosts_sorted_and_addresses_grow)
{
	char *yaml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&yaml, &len);
	cr_assert_not_null(f);
	for (int i = 99; i >= 0; i--)
		fprintf(f, SE("ns", "e%d", "", "  hosts: [svc-common-prefix-%d.Example.com, svc-common-prefix-%d.example.com, "
		    "short%d]\n  resolution: DNS\n"), i, i % 37, i % 37, i);
	fprintf(f, SE("ns", "addrs", "", "  hosts: [many.example.com]\n  resolution: STATIC\n"
	    "  addresses: [198.18.0.1, 198.18.0.2, 198.18.0.3, \"2001:db8::1\", 198.18.0.2]\n"));
	fclose(f);
	struct registry *reg = build(yaml);
	free(yaml);
	cr_assert_eq(reg->nhosts, 37 + 100 + 1);
	for (size_t i = 1; i < reg->nhosts; i++)
		cr_assert_lt(strcmp(reg->hosts[i - 1].name, reg->hosts[i].name), 0, "%s before %s",
		    reg->hosts[i - 1].name, reg->hosts[i].name);
	const struct reg_host *h = registry_find(reg, "svc-common-prefix-3.example.com");
	cr_assert_not_null(h);
	cr_assert_eq(h->nentries, 3, "e3, e40, e77 once each");
	cr_assert_str_eq(h->entries[0]->name, "e3");
	cr_assert_str_eq(h->entries[1]->name, "e40");
	cr_assert_str_eq(h->entries[2]->name, "e77");
	h = registry_find(reg, "many.example.com");
	cr_assert_eq(h->answer, REG_ADDRESSES);
	cr_assert_eq(h->naddrs, 4);
	char b[NETADDR_STRLEN];
	cr_assert_str_eq(netaddr_fmt(&h->addrs[2], b, sizeof(b)), "198.18.0.3");
	cr_assert_str_eq(netaddr_fmt(&h->addrs[3], b, sizeof(b)), "2001:db8::1");
	registry_free(reg);
}

Test(registry, answer_precedence_spec_then_status_then_vip)
{
	struct registry *reg = build(
	    SE("ns", "spec", "", "  hosts: [s.example.com]\n  addresses: [198.18.0.5/32, 10.0.0.0/8]\n  resolution: STATIC\n"
	       "  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  endpoints:\n  - address: 10.1.1.1\n")
	    SE("ns", "wide", "", "  hosts: [w.example.com]\n  addresses: [10.0.0.0/8]\n  resolution: NONE\n"
	       "  ports:\n  - {number: 80, name: http, protocol: HTTP}\n")
	    SE("ns", "status", "", "  hosts: [st.example.com]\n  resolution: DNS\n"
	       "  ports:\n  - {number: 80, name: http, protocol: HTTP}\n"
	       "status:\n  addresses:\n  - {host: st.example.com, value: 240.240.9.9}\n  - {host: other, value: 240.240.1.1}\n")
	    SE("ns", "none", "", "  hosts: [n.example.com]\n  resolution: NONE\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n")
	    SE("ns", "off", "  labels:\n    networking.istio.io/enable-autoallocate-ip: \"false\"\n",
	       "  hosts: [off.example.com]\n  resolution: DNS\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n")
	    SE("ns", "wild", "", "  hosts: [\"*.wild.com\"]\n  resolution: NONE\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n")
	    SE("ns", "dyn", "", "  hosts: [\"*.dyn.com\"]\n  resolution: DYNAMIC_DNS\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n"));
	const struct reg_host *h = registry_find(reg, "s.example.com");
	cr_assert_eq(h->answer, REG_ADDRESSES);
	cr_assert_eq(h->naddrs, 1, "only the /32 is answerable");
	cr_assert_not(h->wants_vip);
	cr_assert_eq(registry_find(reg, "w.example.com")->answer, REG_FORWARD);
	h = registry_find(reg, "st.example.com");
	cr_assert_eq(h->answer, REG_STATUS);
	cr_assert_eq(h->naddrs, 1, "status address for another host is not ours");
	cr_assert_not(registry_find(reg, "n.example.com")->wants_vip);
	cr_assert_not(registry_find(reg, "off.example.com")->wants_vip);
	cr_assert_not(registry_find(reg, "*.wild.com")->wants_vip);
	cr_assert(registry_find(reg, "*.dyn.com")->wants_vip);
	size_t nres = 0;
	struct netaddr *res = registry_reserved(reg, &nres);
	cr_assert_eq(nres, 2);
	free(res);
	registry_free(reg);
}

Test(registry, dns_without_endpoints_resolves_the_host)
{
	struct registry *reg = build(SE("ns", "d", "",
	    "  hosts: [db.rds.example.com]\n  resolution: DNS\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n"));
	const struct reg_host *h = registry_find(reg, "db.rds.example.com");
	cr_assert(h->ports[0].resolve_host);
	cr_assert_eq(h->ports[0].neps, 0);
	registry_free(reg);
}

Test(registry, exported_to)
{
	struct serviceentry se;
	memset(&se, 0, sizeof(se));
	se.namespace = (char *)"team-a";
	cr_assert(registry_exported_to(&se, "anything"), "no exportTo = everywhere");
	char *dot[] = { (char *)"." };
	se.export_to = dot;
	se.nexport_to = 1;
	cr_assert(registry_exported_to(&se, "team-a"));
	cr_assert_not(registry_exported_to(&se, "team-b"));
	char *list[] = { (char *)"team-b", (char *)"istio-system" };
	se.export_to = list;
	se.nexport_to = 2;
	cr_assert(registry_exported_to(&se, "istio-system"));
	cr_assert_not(registry_exported_to(&se, "team-a"));
	char *none[] = { (char *)"~" };
	se.export_to = none;
	se.nexport_to = 1;
	cr_assert_not(registry_exported_to(&se, "team-a"));
}

/* --- nametable ----------------------------------------------------------- */

static struct nametable *
table(const char *yaml)
{
	struct registry *reg = build(yaml);
	/* fake VIPs: 240.240.0.<n> in host order */
	for (size_t i = 0; i < reg->nhosts; i++) {
		struct reg_host *h = &reg->hosts[i];
		if (!h->wants_vip)
			continue;
		h->answer = REG_VIP;
		char a[32];
		struct netaddr va;
		snprintf(a, sizeof(a), "240.240.0.%zu", i + 1);
		netaddr_parse(a, &va);
		cr_assert(reg_host_add_addr(h, &va));
	}
	char *extra[] = { (char *)"corp.example" };
	struct nametable *nt = nametable_build(reg, "cluster.local", extra, 1, NULL);
	cr_assert_not_null(nt);
	return nt;
}

#define HOSTS                                                                                       \
	SE("ns", "a", "", "  hosts: [api.stripe.com]\n  resolution: DNS\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n") \
	SE("ns", "w", "", "  hosts: [\"*.example.com\"]\n  addresses: [198.18.0.1]\n  resolution: STATIC\n"          \
	   "  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  endpoints:\n  - address: 10.0.0.1\n")                 \
	SE("ns", "w2", "", "  hosts: [\"*.deep.example.com\"]\n  addresses: [198.18.0.2, \"2001:db8::2\"]\n  resolution: STATIC\n" \
	   "  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  endpoints:\n  - address: 10.0.0.2\n")

Test(nametable, exact_and_missing)
{
	struct nametable *nt = table(HOSTS);
	struct nt_result r;
	cr_assert(nametable_lookup(nt, "api.stripe.com", &r));
	cr_assert_str_eq(r.entry->host->name, "api.stripe.com");
	cr_assert_not(r.via_cname);
	cr_assert_eq(r.addrs->n4, 1);
	cr_assert_eq(r.addrs->n6, 0);
	cr_assert_not(nametable_lookup(nt, "stripe.com", &r));
	cr_assert_not(nametable_lookup(nt, "x.api.stripe.com", &r));
	cr_assert_not(nametable_lookup(nt, "", &r));
	nametable_free(nt);
}

Test(nametable, wildcard_most_specific_wins_apex_excluded)
{
	struct nametable *nt = table(HOSTS);
	struct nt_result r;
	cr_assert(nametable_lookup(nt, "a.example.com", &r));
	cr_assert(r.via_wildcard);
	cr_assert_str_eq(r.entry->host->name, "*.example.com");
	cr_assert(nametable_lookup(nt, "x.y.example.com", &r));
	cr_assert_str_eq(r.entry->host->name, "*.example.com");
	cr_assert(nametable_lookup(nt, "a.deep.example.com", &r));
	cr_assert_str_eq(r.entry->host->name, "*.deep.example.com");
	cr_assert_eq(r.addrs->n6, 1);
	cr_assert(nametable_lookup(nt, "deep.example.com", &r), "deep.example.com is under *.example.com");
	cr_assert_str_eq(r.entry->host->name, "*.example.com");
	cr_assert_not(nametable_lookup(nt, "example.com", &r));
	nametable_free(nt);
}

Test(nametable, search_path_expansions_answer_with_cname)
{
	struct nametable *nt = table(HOSTS);
	struct nt_result r;
	const char *forms[] = { "api.stripe.com.ns1.svc.cluster.local", "api.stripe.com.cluster.local",
		"api.stripe.com.corp.example" };
	for (size_t i = 0; i < 3; i++) {
		cr_assert(nametable_lookup(nt, forms[i], &r), "%s", forms[i]);
		cr_assert(r.via_cname, "%s", forms[i]);
		cr_assert_str_eq(r.entry->host->name, "api.stripe.com");
	}
	cr_assert_not(nametable_lookup(nt, "kubernetes.default.svc.cluster.local", &r));
	cr_assert_not(nametable_lookup(nt, "svc.cluster.local", &r));
	cr_assert_not(nametable_lookup(nt, "stripe.com.ns1.svc.cluster.local", &r));
	/* <host>.<svc>.<ns>.svc: a headless pod name of namespace "com" (tenancy) */
	cr_assert_not(nametable_lookup(nt, "api.stripe.com.svc.cluster.local", &r));
	nametable_free(nt);
}

Test(nametable, ptr_for_vips_only)
{
	struct nametable *nt = table(HOSTS);
	const struct registry *reg = nametable_registry(nt);
	const struct reg_host *h = registry_find(reg, "api.stripe.com");
	cr_assert_str_eq(nametable_ptr(nt, &h->addrs[0]), "api.stripe.com");
	struct netaddr a;
	netaddr_parse("198.18.0.1", &a);
	cr_assert_null(nametable_ptr(nt, &a), "spec.addresses are not ours: no PTR");
	netaddr_parse("240.240.99.99", &a);
	cr_assert_null(nametable_ptr(nt, &a));
	nametable_free(nt);
}

Test(nametable, empty_registry)
{
	struct se_set set;
	se_set_init(&set);
	struct registry *reg = registry_build(&set, NULL);
	struct nametable *nt = nametable_build(reg, "cluster.local", NULL, 0, NULL);
	struct nt_result r;
	cr_assert_not(nametable_lookup(nt, "api.stripe.com", &r));
	struct netaddr a;
	netaddr_parse("240.240.0.1", &a);
	cr_assert_null(nametable_ptr(nt, &a));
	nametable_free(nt);
}

Test(nametable, expansion_of_a_wildcard_targets_the_stripped_name_not_the_star)
{
	struct nametable *nt = table(HOSTS);
	struct nt_result r;
	const char *q = "foo.example.com.ns1.svc.cluster.local";
	cr_assert(nametable_lookup(nt, q, &r));
	cr_assert(r.via_cname);
	cr_assert_str_eq(r.entry->host->name, "*.example.com");
	cr_assert_eq(r.target_len, strlen("foo.example.com"), "CNAME target is foo.example.com, never *.example.com");
	cr_assert(nametable_lookup(nt, "api.stripe.com.cluster.local", &r));
	cr_assert_eq(r.target_len, strlen("api.stripe.com"));
	cr_assert(nametable_lookup(nt, "a.example.com", &r));
	cr_assert_eq(r.target_len, strlen("a.example.com"), "direct hits own the query name");
	nametable_free(nt);
}

/* An entry of n hosts (h<tag>-<i>.big.example), port 80 and e endpoints. */
static void
put_entry(FILE *f, const char *ns, const char *name, int n, int e)
{
	fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: %s\n"
	    "  namespace: %s\nspec:\n  resolution: STATIC\n  ports: [{number: 80, name: http}]\n  hosts: [",
	    name, ns);
	for (int i = 0; i < n; i++)
		fprintf(f, "%sh%s-%d.big.example", i ? ", " : "", name, i);
	fprintf(f, "]\n  endpoints: [");
	for (int i = 0; i < e; i++)
		fprintf(f, "%s{address: 10.8.%d.%d}", i ? ", " : "", i / 250, i % 250 + 1);
	fprintf(f, "]\n");
}

Test(registry, a_namespace_holds_at_most_its_budget_of_dnat_targets, .timeout = 60)
{
	/* 16 entries at the per-entry cap fill namespace big exactly; one
	 * more, however small, is left out; another namespace is not
	 * affected */
	char *yaml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&yaml, &len);
	cr_assert_not_null(f);
	int per = SE_MAX_TARGETS / SE_MAX_ENDPOINTS;
	for (int k = 0; k < (int)(REG_MAX_NS_TARGETS / SE_MAX_TARGETS); k++) {
		char name[16];
		snprintf(name, sizeof(name), "e%d", k);
		put_entry(f, "big", name, per, SE_MAX_ENDPOINTS);
	}
	put_entry(f, "big", "late", 1, 1);
	put_entry(f, "other", "mine", 1, 1);
	fclose(f);
	struct registry *reg = build(yaml);
	free(yaml);
	cr_assert_not_null(registry_find(reg, "he15-15.big.example"), "the 16th entry fits");
	cr_assert_null(registry_find(reg, "hlate-0.big.example"), "one target over: left out");
	cr_assert_not_null(registry_find(reg, "hmine-0.big.example"), "another namespace is not affected");
	cr_assert_eq(reg->ndiags, 1, "%s", diag_text(reg));
	cr_assert_eq(reg->diags[0].severity, SE_ERROR);
	cr_assert_not_null(strstr(reg->diags[0].message, "r.yaml:"), "%s", reg->diags[0].message);
	cr_assert_not_null(strstr(reg->diags[0].message, "big/late: namespace big would hold more than 1048576 DNAT "
	    "targets"), "%s", reg->diags[0].message);
	registry_free(reg);
}
