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

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vipstore.h"

static struct registry *
reg_of(const char *yaml)
{
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "s.yaml", yaml, strlen(yaml));
	cr_assert_eq(set.nerrors, 0, "%s", set.ndiags ? set.diags[0].message : "");
	return registry_build(&set, NULL);
}


/* A real LMDB store in a temp dir, and its removal. */
static struct vipstore *
store_open(char *dir, uint32_t hold)
{
	char err[512];
	cr_assert_not_null(mkdtemp(dir));
	struct vipstore_opts o;
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	cr_assert(netprefix_parse("240.240.0.0/16", true, &o.pool4));
	o.hold_seconds = hold;
	struct vipstore *vs = vipstore_open(&o, err, sizeof(err));
	cr_assert_not_null(vs, "%s", err);
	return vs;
}

static void
store_rm(struct vipstore *vs, const char *dir)
{
	char p[128];
	vipstore_close(vs);
	snprintf(p, sizeof(p), "%s/vips.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/vips.mdb-lock", dir);
	unlink(p);
	rmdir(dir);
}

/* A tenant's spec.addresses naming another host's VIP: the tenant loses,
 * the VIP stays where it is (active or held). */
Test(tenancy, spec_addresses_never_take_a_vip)
{
	char dir[64] = "/tmp/sedns-squat-XXXXXX", err[512];
	struct vipstore *vs = store_open(dir, 3600);
	const char *db = SE("team-a", "db", "  hosts: [db.internal.example]\n  resolution: DNS\n"
	                                    "  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n");
	struct registry *reg = reg_of(db);
	cr_assert(registry_assign_vips(reg, vs, 1000, NULL, err, sizeof(err)), "%s", err);
	struct netaddr vip = registry_find(reg, "db.internal.example")->addrs[0];
	registry_free(reg);
	char vs_[64], yaml[2048];
	netaddr_fmt(&vip, vs_, sizeof(vs_));
	snprintf(yaml, sizeof(yaml), "%s" SE("team-b", "squat", "  hosts: [squat.example]\n  addresses: [%s]\n"
	    "  resolution: STATIC\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n"
	    "  endpoints:\n  - address: 10.9.9.9\n"), db, vs_);
	reg = reg_of(yaml);
	cr_assert(registry_assign_vips(reg, vs, 1001, NULL, err, sizeof(err)), "%s", err);
	const struct reg_host *sq = registry_find(reg, "squat.example");
	cr_assert(sq->addr_conflict);
	cr_assert_eq(sq->answer, REG_FORWARD, "the squatter is not answered");
	cr_assert(netaddr_equal(&registry_find(reg, "db.internal.example")->addrs[0], &vip), "the VIP did not move");
	cr_assert_eq(reg->ndiags, 1);
	cr_assert(strstr(reg->diags[0].message, "team-b/squat") && strstr(reg->diags[0].message, "is the VIP of host "
	    "db.internal.example (active)"), "%s", reg->diags[0].message);
	registry_free(reg);

	/* held: db removed (its VIP on hold), then the squat: still refused */
	reg = reg_of(SE("team-c", "other", "  hosts: [other.example]\n  resolution: DNS\n"
	    "  ports:\n  - {number: 80, name: h, protocol: TCP}\n"));
	cr_assert(registry_assign_vips(reg, vs, 1002, NULL, err, sizeof(err)), "%s", err);
	registry_free(reg);
	snprintf(yaml, sizeof(yaml), SE("team-b", "squat", "  hosts: [squat.example]\n  addresses: [%s]\n"
	    "  resolution: STATIC\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n"
	    "  endpoints:\n  - address: 10.9.9.9\n"), vs_);
	reg = reg_of(yaml);
	cr_assert(registry_assign_vips(reg, vs, 1002, NULL, err, sizeof(err)), "%s", err);
	cr_assert(registry_find(reg, "squat.example")->addr_conflict);
	cr_assert(strstr(reg->diags[0].message, "(held)"), "%s", reg->diags[0].message);
	registry_free(reg);
	struct netaddr got;
	bool h4, h6;
	cr_assert(vipstore_lookup(vs, "db.internal.example", &got, &h4, NULL, &h6));
	cr_assert(netaddr_equal(&got, &vip), "the held VIP is still db's");

	/* an address in the pool that is nobody's VIP: allowed (and reserved) */
	reg = reg_of(SE("team-b", "free", "  hosts: [free.example]\n  addresses: [240.240.255.1]\n"
	    "  resolution: STATIC\n  ports:\n  - {number: 80, name: h, protocol: TCP}\n  endpoints:\n  - address: 10.9.9.8\n"));
	cr_assert(registry_assign_vips(reg, vs, 1003, NULL, err, sizeof(err)), "%s", err);
	cr_assert_not(registry_find(reg, "free.example")->addr_conflict);
	cr_assert_eq(registry_find(reg, "free.example")->answer, REG_ADDRESSES);
	registry_free(reg);
	store_rm(vs, dir);
}

/* istiod's status.addresses are honoured; two hosts with the same one: the
 * older ServiceEntry's host keeps it. */
Test(tenancy, status_address_collision_older_wins)
{
	char dir[64] = "/tmp/sedns-status-XXXXXX", err[512];
	struct vipstore *vs = store_open(dir, 60);
	const char *yaml =
	    "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: new\n  namespace: b\n"
	    "  creationTimestamp: \"2026-06-01T00:00:00Z\"\nspec:\n  hosts: [new.example]\n  resolution: DNS\n"
	    "  ports:\n  - {number: 80, name: h, protocol: HTTP}\nstatus:\n  addresses:\n  - {host: new.example, value: 240.240.9.9}\n"
	    "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: old\n  namespace: a\n"
	    "  creationTimestamp: \"2026-01-01T00:00:00Z\"\nspec:\n  hosts: [old.example]\n  resolution: DNS\n"
	    "  ports:\n  - {number: 80, name: h, protocol: HTTP}\nstatus:\n  addresses:\n  - {host: old.example, value: 240.240.9.9}\n";
	struct registry *reg = reg_of(yaml);
	cr_assert(registry_assign_vips(reg, vs, 1000, NULL, err, sizeof(err)), "%s", err);
	cr_assert_eq(registry_find(reg, "old.example")->answer, REG_STATUS);
	cr_assert_eq(registry_find(reg, "new.example")->answer, REG_FORWARD);
	cr_assert(registry_find(reg, "new.example")->addr_conflict);
	cr_assert(strstr(reg->diags[0].message, "b/new") && strstr(reg->diags[0].message, "also host old.example's"),
	    "%s", reg->diags[0].message);
	registry_free(reg);
	store_rm(vs, dir);
}
