/* Unit tests for tenancy: who may declare which name. */
#include <criterion/criterion.h>

#include <string.h>

#include "nametable.h"
#include "registry.h"
#include "serviceentry.h"
#include "tenancy.h"

static enum k8s_owner
cls(const char *name, char *ns)
{
	const char *o;
	size_t ol;
	enum k8s_owner k = tenancy_classify(name, strlen(name), "cluster.local", &o, &ol);
	if (ns) {
		memcpy(ns, o ? o : "", ol);
		ns[ol] = '\0';
	}
	return k;
}

Test(tenancy, classify_kubernetes_names)
{
	char ns[64];
	cr_assert_eq(cls("api.stripe.com", ns), K8S_NOT_CLUSTER);
	cr_assert_eq(cls("xcluster.local", ns), K8S_NOT_CLUSTER);
	cr_assert_eq(cls("cluster.local", ns), K8S_RESERVED);
	cr_assert_eq(cls("svc.cluster.local", ns), K8S_RESERVED);
	cr_assert_eq(cls("pod.cluster.local", ns), K8S_RESERVED);
	cr_assert_eq(cls("prod.svc.cluster.local", ns), K8S_NAMESPACE);
	cr_assert_str_eq(ns, "prod");
	cr_assert_eq(cls("redis.prod.svc.cluster.local", ns), K8S_NAMESPACE);
	cr_assert_str_eq(ns, "prod");
	cr_assert_eq(cls("redis-0.redis.prod.svc.cluster.local", ns), K8S_NAMESPACE, "headless pod name");
	cr_assert_str_eq(ns, "prod");
	cr_assert_eq(cls("10-1-2-3.prod.pod.cluster.local", ns), K8S_NAMESPACE);
	cr_assert_str_eq(ns, "prod");
	cr_assert_eq(cls("kubernetes.default.svc.cluster.local", ns), K8S_NAMESPACE);
	cr_assert_str_eq(ns, "default");
	/* three labels above the namespace: no Kubernetes name, a search
	 * expansion of an external name */
	cr_assert_eq(cls("api.stripe.com.prod.svc.cluster.local", ns), K8S_FREE);
	cr_assert_eq(cls("api.stripe.com.cluster.local", ns), K8S_FREE);
	cr_assert_eq(cls("foo.cluster.local", ns), K8S_FREE);
}

static bool
allowed(const struct tenancy *t, const char *host, const char *ns, char *why)
{
	return tenancy_host_allowed(t, host, ns, why, 512);
}

Test(tenancy, hosts_and_wildcards)
{
	struct tenancy *t = tenancy_new("Cluster.Local.");
	cr_assert_not_null(t);
	char why[512];
	cr_assert(allowed(t, "api.stripe.com", "team-a", why));
	cr_assert(allowed(t, "*.example.com", "team-a", why));
	cr_assert(allowed(t, "*.s3.amazonaws.com", "team-a", why), "a provider suffix is not an ICANN one");
	cr_assert(allowed(t, "*.internal", "team-a", why), "unknown TLDs have no implicit rule");
	cr_assert(allowed(t, "payments-db.payments.svc.cluster.local", "payments", why), "own namespace");
	cr_assert(allowed(t, "*.payments.svc.cluster.local", "payments", why));
	cr_assert(allowed(t, "redis", "team-a", why), "short hosts are fine as written");

	cr_assert_not(allowed(t, "payments-db.payments.svc.cluster.local", "team-a", why));
	cr_assert(strstr(why, "namespace \"payments\"") && strstr(why, "only a ServiceEntry in \"payments\""), "%s", why);
	cr_assert_not(allowed(t, "kubernetes.default.svc.cluster.local", "team-a", why));
	cr_assert_not(allowed(t, "*.svc.cluster.local", "team-a", why));
	cr_assert(strstr(why, "cluster domain's own names"), "%s", why);
	cr_assert_not(allowed(t, "*.cluster.local", "team-a", why));
	cr_assert(strstr(why, "covers the cluster domain"), "%s", why);
	cr_assert_not(allowed(t, "*.local", "team-a", why));
	cr_assert_not(allowed(t, "*.payments.svc.cluster.local", "team-a", why));
	cr_assert_not(allowed(t, "*.com", "team-a", why));
	cr_assert(strstr(why, "public suffix \"com\""), "%s", why);
	cr_assert_not(allowed(t, "*.co.uk", "team-a", why));
	cr_assert_not(allowed(t, "svc.cluster.local", "team-a", why));
	tenancy_free(t);
	cr_assert(tenancy_host_allowed(NULL, "*.com", "x", why, sizeof(why)), "no policy: everything");
}

#define SE(ns, name, spec)                                                          \
	"---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n" \
	"  name: " name "\n  namespace: " ns "\nspec:\n" spec

Test(tenancy, registry_leaves_out_captures_with_an_error)
{
	const char *yaml =
	    SE("team-a", "grab", "  hosts: [kubernetes.default.svc.cluster.local, \"*.com\", ok.example.org]\n"
	                         "  resolution: NONE\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n")
	    SE("payments", "vm", "  hosts: [payments-db.payments.svc.cluster.local]\n  addresses: [198.18.4.4]\n"
	                         "  resolution: STATIC\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n"
	                         "  endpoints:\n  - address: 10.1.1.1\n");
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "t.yaml", yaml, strlen(yaml));
	cr_assert_eq(set.nerrors, 0, "%s", set.ndiags ? set.diags[0].message : "");
	struct tenancy *t = tenancy_new("cluster.local");
	struct registry *reg = registry_build(&set, t);
	tenancy_free(t);
	cr_assert_not_null(reg);
	cr_assert_null(registry_find(reg, "kubernetes.default.svc.cluster.local"));
	cr_assert_null(registry_find(reg, "*.com"));
	cr_assert_not_null(registry_find(reg, "ok.example.org"), "the entry's other hosts stay");
	cr_assert_not_null(registry_find(reg, "payments-db.payments.svc.cluster.local"), "a VM in its own namespace");
	cr_assert_eq(reg->ndiags, 2);
	cr_assert(strstr(reg->diags[0].message, "t.yaml:") && strstr(reg->diags[0].message, "team-a/grab") &&
	    strstr(reg->diags[0].message, "spec.hosts[0]"), "%s", reg->diags[0].message);
	cr_assert(strstr(reg->diags[1].message, "spec.hosts[1]"), "%s", reg->diags[1].message);
	cr_assert_eq(reg->diags[0].severity, SE_ERROR);
	registry_free(reg);
}

Test(tenancy, expansions_never_land_on_another_namespace)
{
	/* a short host "redis" and an x.y host from team-a, no views */
	const char *yaml = SE("team-a", "r", "  hosts: [redis, payments-db.payments]\n  addresses: [198.18.5.5]\n"
	                                     "  resolution: STATIC\n  ports:\n  - {number: 6379, name: r, protocol: TCP}\n"
	                                     "  endpoints:\n  - address: 10.1.1.2\n");
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "t.yaml", yaml, strlen(yaml));
	struct nametable *nt = nametable_build(registry_build(&set, NULL), "cluster.local", NULL, 0, NULL);
	struct nt_result r;
	cr_assert(nametable_lookup(nt, "redis", &r), "answered as written");
	cr_assert(nametable_lookup(nt, "payments-db.payments", &r), "answered as written");
	cr_assert_not(nametable_lookup(nt, "redis.prod.svc.cluster.local", &r), "prod's Service redis");
	cr_assert_not(nametable_lookup(nt, "payments-db.payments.svc.cluster.local", &r));
	cr_assert_not(nametable_lookup(nt, "payments-db.payments.prod.svc.cluster.local", &r));
	cr_assert_not(nametable_lookup(nt, "redis.svc.cluster.local", &r), "namespace redis's name");
	cr_assert(nametable_lookup(nt, "redis.team-a.svc.cluster.local", &r), "its own namespace");
	nametable_free(nt);
}
