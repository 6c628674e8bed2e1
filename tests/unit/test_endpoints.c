/* Unit tests for endpoints: which names a registry needs resolved, and the
 * tracked set following registry changes (no network: no upstreams). */
#include <criterion/criterion.h>

#include <event2/event.h>
#include <string.h>

#include "endpoints.h"
#include "registry.h"
#include "serviceentry.h"

#define SE(name, spec)                                                                              \
	"---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: " name        \
	"\n  namespace: ns\nspec:\n" spec

static struct registry *
reg_of(const char *yaml)
{
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "e.yaml", yaml, strlen(yaml));
	cr_assert_eq(set.nerrors, 0, "%s", set.ndiags ? set.diags[0].message : "");
	struct registry *reg = registry_build(&set, NULL);
	for (size_t i = 0; i < reg->nhosts; i++) { /* pretend VIPs were assigned */
		struct reg_host *h = &reg->hosts[i];
		if (h->wants_vip) {
			h->answer = REG_VIP;
			struct netaddr va;
			netaddr_parse("240.240.0.1", &va);
			cr_assert(reg_host_add_addr(h, &va));
		}
	}
	return reg;
}

static const char both[] =
    SE("db", "  hosts: [db.example.com]\n  resolution: DNS\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n")
    SE("api", "  hosts: [api.internal]\n  resolution: DNS\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n"
       "  endpoints:\n  - address: a.provider.net\n  - address: 198.18.0.9\n  - address: b.provider.net\n")
    SE("vm", "  hosts: [vm.internal]\n  resolution: STATIC\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n"
       "  endpoints:\n  - address: 10.0.0.1\n");

static void
collect(void *arg, const char *name)
{
	char *buf = arg;
	strcat(buf, name);
	strcat(buf, " ");
}

Test(endpoints, names_are_dns_hostnames_and_hosts_without_endpoints)
{
	struct registry *reg = reg_of(both);
	char buf[512] = "";
	endpoints_names(reg, collect, buf);
	cr_assert_str_eq(buf, "a.provider.net b.provider.net db.example.com ", "%s", buf);
	registry_free(reg);
}

Test(endpoints, tracked_set_follows_the_registry)
{
	struct event_base *base = event_base_new();
	struct endpoints *ep = endpoints_new(base, NULL, 0, 100, 1000, 2000, 50, NULL, NULL);
	struct registry *r1 = reg_of(both);
	struct endpoints_stats st;
	cr_assert(endpoints_track_registry(ep, r1));
	endpoints_stats(ep, &st);
	cr_assert_eq(st.names, 3);
	cr_assert_eq(st.failures, 3, "no upstreams: every first resolution fails");
	struct netaddr out[4];
	cr_assert_eq(endpoints_lookup(ep, "db.example.com", out, 4), 0, "never resolved: no addresses");
	cr_assert_eq(endpoints_lookup(ep, "unknown.example", out, 4), 0);
	struct registry *r2 = reg_of(SE("db", "  hosts: [db.example.com]\n  resolution: DNS\n  ports:\n"
	                                "  - {number: 5432, name: pg, protocol: TCP}\n")
	                             SE("new", "  hosts: [z.example.com]\n  resolution: DNS_ROUND_ROBIN\n  ports:\n"
	                                "  - {number: 80, name: http, protocol: HTTP}\n"));
	cr_assert(endpoints_track_registry(ep, r2));
	endpoints_stats(ep, &st);
	cr_assert_eq(st.names, 2, "removed names dropped, kept and new ones tracked");
	cr_assert_eq(st.failures, 4, "only the new name was queried again");
	endpoints_free(ep);
	registry_free(r1);
	registry_free(r2);
	event_base_free(base);
}
