/* Unit tests for workloads (pod IP -> namespace) and namespace views in the
 * name table. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "nametable.h"
#include "registry.h"
#include "serviceentry.h"
#include "workloads.h"

static const char pods[] =
    "apiVersion: v1\nkind: List\nitems:\n"
    "- apiVersion: v1\n  kind: Pod\n  metadata: {name: a, namespace: team-a}\n"
    "  spec: {nodeName: n1}\n  status:\n    phase: Running\n    podIP: 10.1.0.5\n"
    "    podIPs:\n    - ip: 10.1.0.5\n    - ip: fd00::5\n"
    "- apiVersion: v1\n  kind: Pod\n  metadata: {name: b, namespace: team-b}\n"
    "  status: {phase: Running, podIP: 10.1.0.6}\n"
    "- apiVersion: v1\n  kind: Pod\n  metadata: {name: host, namespace: kube-system}\n"
    "  spec: {hostNetwork: true}\n  status: {phase: Running, podIP: 192.168.0.1}\n"
    "- apiVersion: v1\n  kind: Pod\n  metadata: {name: done, namespace: batch}\n"
    "  status: {phase: Succeeded, podIP: 10.1.0.7}\n"
    "- apiVersion: v1\n  kind: Pod\n  metadata: {name: pending, namespace: team-c}\n  status: {phase: Pending}\n";

static struct workloads *
load(const char *text, size_t *npods, size_t *nerr)
{
	struct workloads *w = workloads_load_buffer("pods.yaml", text, strlen(text), NULL, npods, nerr);
	cr_assert_not_null(w);
	return w;
}

static const char *
ns_of(const struct workloads *w, const char *ip)
{
	struct netaddr a;
	cr_assert(netaddr_parse(ip, &a));
	return workloads_namespace(w, &a);
}

Test(workloads, pod_ips_map_to_namespaces)
{
	size_t np, ne;
	struct workloads *w = load(pods, &np, &ne);
	cr_assert_eq(ne, 0);
	cr_assert_eq(np, 2);
	cr_assert_str_eq(ns_of(w, "10.1.0.5"), "team-a");
	cr_assert_str_eq(ns_of(w, "fd00::5"), "team-a");
	cr_assert_str_eq(ns_of(w, "10.1.0.6"), "team-b");
	cr_assert_null(ns_of(w, "192.168.0.1"), "hostNetwork pods share the node IP: skipped");
	cr_assert_null(ns_of(w, "10.1.0.7"), "finished pods: skipped");
	cr_assert_null(ns_of(w, "10.9.9.9"));
	workloads_free(w);
}

Test(workloads, broken_yaml_is_an_error_with_position_and_keeps_nothing_bad)
{
	char buf[2048];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	size_t np, ne;
	const char *bad = "kind: List\nitems:\n- metadata: {namespace: x\n";
	struct workloads *w = workloads_load_buffer("bad.yaml", bad, strlen(bad), f, &np, &ne);
	fclose(f);
	cr_assert_not_null(w);
	cr_assert_eq(ne, 1);
	cr_assert(strstr(buf, "error: bad.yaml:"), "%s", buf);
	cr_assert_eq(workloads_count(w), 0);
	workloads_free(w);
}

#define SE(ns, name, spec)                                                                                   \
	"---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: " name "\n  namespace: " ns \
	"\nspec:\n" spec

static struct nametable *
table_with_views(void)
{
	const char *yaml =
	    SE("team-a", "private", "  hosts: [db.internal]\n  addresses: [198.18.9.1]\n  exportTo: [\".\"]\n"
	       "  resolution: STATIC\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n  endpoints:\n  - address: 10.0.0.1\n")
	    SE("team-b", "shared", "  hosts: [api.example.com]\n  addresses: [198.18.9.2]\n  exportTo: [\"*\"]\n"
	       "  resolution: STATIC\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n  endpoints:\n  - address: 10.0.0.2\n")
	    SE("team-a", "mine", "  hosts: [api.example.com]\n  addresses: [198.18.9.3]\n  exportTo: [\".\"]\n"
	       "  resolution: STATIC\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n  endpoints:\n  - address: 10.0.0.3\n")
	    SE("team-b", "listed", "  hosts: [b-and-c.example.com]\n  addresses: [198.18.9.4]\n  exportTo: [team-c]\n"
	       "  resolution: STATIC\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  endpoints:\n  - address: 10.0.0.4\n")
	    SE("team-b", "hidden", "  hosts: [nobody.example.com]\n  addresses: [198.18.9.5]\n  exportTo: [\"~\"]\n"
	       "  resolution: STATIC\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  endpoints:\n  - address: 10.0.0.5\n");
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "v.yaml", yaml, strlen(yaml));
	cr_assert_eq(set.nerrors, 0, "%s", set.ndiags ? set.diags[0].message : "");
	struct registry *reg = registry_build(&set, NULL);
	const char *p = "kind: List\nitems:\n"
	                "- metadata: {namespace: team-a}\n  status: {podIP: 127.0.0.11}\n"
	                "- metadata: {namespace: team-b}\n  status: {podIP: 127.0.0.12}\n"
	                "- metadata: {namespace: team-c}\n  status: {podIP: 127.0.0.13}\n";
	size_t np, ne;
	struct workloads *w = load(p, &np, &ne);
	struct nametable *nt = nametable_build(reg, "cluster.local", NULL, 0, w);
	cr_assert_not_null(nt);
	return nt;
}

static bool
lookup(struct nametable *nt, const char *client, const char *name, struct nt_result *r)
{
	struct netaddr a;
	netaddr_parse(client, &a);
	return nametable_lookup_client(nt, name, &a, r, NULL);
}

static const char *
first_v4(const struct nt_result *r)
{
	static char buf[64];
	return netaddr_fmt(&r->addrs->v4[0], buf, sizeof(buf));
}

Test(nametable_ns, export_to_dot_visible_only_in_own_namespace)
{
	struct nametable *nt = table_with_views();
	struct nt_result r;
	cr_assert(lookup(nt, "127.0.0.11", "db.internal", &r));
	cr_assert_not(lookup(nt, "127.0.0.12", "db.internal", &r), "team-b may not see team-a's '.' entry");
	cr_assert_not(lookup(nt, "127.0.0.99", "db.internal", &r), "unknown clients see only '*'");
	nametable_free(nt);
}

Test(nametable_ns, namespace_lists_and_tilde)
{
	struct nametable *nt = table_with_views();
	struct nt_result r;
	cr_assert(lookup(nt, "127.0.0.13", "b-and-c.example.com", &r));
	cr_assert_not(lookup(nt, "127.0.0.11", "b-and-c.example.com", &r));
	cr_assert_not(lookup(nt, "127.0.0.12", "nobody.example.com", &r));
	nametable_free(nt);
}

Test(nametable_ns, own_namespace_preferred_when_declared_twice)
{
	struct nametable *nt = table_with_views();
	struct nt_result r;
	cr_assert(lookup(nt, "127.0.0.11", "api.example.com", &r));
	cr_assert_str_eq(first_v4(&r), "198.18.9.3");
	cr_assert_eq(r.addrs->n4, 1);
	cr_assert(lookup(nt, "127.0.0.12", "api.example.com", &r));
	cr_assert_str_eq(first_v4(&r), "198.18.9.2");
	cr_assert(lookup(nt, "127.0.0.13", "api.example.com", &r), "exported to * for team-c");
	cr_assert(lookup(nt, "127.0.0.99", "api.example.com", &r));
	nametable_free(nt);
}

Test(nametable_ns, search_expansion_uses_client_namespace)
{
	struct nametable *nt = table_with_views();
	struct nt_result r;
	cr_assert(lookup(nt, "127.0.0.12", "api.example.com.team-b.svc.cluster.local", &r));
	cr_assert(r.via_cname);
	cr_assert_not(lookup(nt, "127.0.0.12", "api.example.com.team-a.svc.cluster.local", &r),
	    "another namespace's search path is not the client's");
	cr_assert_not(lookup(nt, "127.0.0.12", "api.example.com.svc.cluster.local", &r),
	    "a name of namespace \"com\" (pod api of headless service example)");
	nametable_free(nt);
}

Test(nametable_ns, no_workloads_everything_visible)
{
	const char *yaml = SE("team-a", "private", "  hosts: [db.internal]\n  addresses: [198.18.9.1]\n  exportTo: [\".\"]\n"
	                   "  resolution: STATIC\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}\n  endpoints:\n  - address: 10.0.0.1\n");
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "v.yaml", yaml, strlen(yaml));
	struct nametable *nt = nametable_build(registry_build(&set, NULL), "cluster.local", NULL, 0, NULL);
	struct nt_result r;
	cr_assert(lookup(nt, "127.0.0.99", "db.internal", &r));
	cr_assert_not(lookup(nt, "127.0.0.99", "db.internal.other.svc.cluster.local", &r),
	    "namespace other's name, from a team-a entry: never");
	cr_assert(lookup(nt, "127.0.0.99", "db.internal.team-a.svc.cluster.local", &r),
	    "the entry's own namespace");
	nametable_free(nt);
}

Test(workloads, aliases_are_refused)
{
	const char *y = "apiVersion: v1\nkind: List\nitems:\n- &p\n  metadata: {name: a, namespace: x}\n"
	                "  status: {phase: Running, podIP: 10.0.0.1}\n- *p\n";
	char err[512] = "";
	FILE *f = fmemopen(err, sizeof(err), "w");
	size_t np = 0, ne = 0;
	struct workloads *w = workloads_load_buffer("p.yaml", y, strlen(y), f, &np, &ne);
	fclose(f);
	cr_assert_not_null(w);
	cr_assert_eq(ne, 1);
	cr_assert_eq(workloads_count(w), 0, "the whole file is refused");
	cr_assert(strstr(err, "p.yaml:7:3: YAML aliases (*name) are not supported"), "%s", err);
	workloads_free(w);
}
