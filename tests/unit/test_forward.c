/* Unit tests for the forwarder's pure parts: forward-zone matching. */
#include <criterion/criterion.h>

#include "forward.h"

Test(forward, zone_longest_label_aligned_match)
{
	const char *z[] = { "", "cluster.local", "svc.cluster.local", "in-addr.arpa", "10.in-addr.arpa" };
	size_t n = sizeof(z) / sizeof(z[0]);
	cr_assert_eq(fwd_zone_match(z, n, "kubernetes.default.svc.cluster.local"), 2);
	cr_assert_eq(fwd_zone_match(z, n, "svc.cluster.local"), 2);
	cr_assert_eq(fwd_zone_match(z, n, "pod.cluster.local"), 1);
	cr_assert_eq(fwd_zone_match(z, n, "cluster.local"), 1);
	/* a label boundary is needed: xcluster.local is not under cluster.local */
	cr_assert_eq(fwd_zone_match(z, n, "xcluster.local"), 0);
	cr_assert_eq(fwd_zone_match(z, n, "ocal"), 0);
	cr_assert_eq(fwd_zone_match(z, n, "1.0.96.10.in-addr.arpa"), 4);
	cr_assert_eq(fwd_zone_match(z, n, "1.0.0.192.in-addr.arpa"), 3);
	cr_assert_eq(fwd_zone_match(z, n, "www.example.com"), 0);
	cr_assert_eq(fwd_zone_match(z, n, ""), 0);
	/* without a root zone, an unmatched name has no zone */
	cr_assert_eq(fwd_zone_match(z + 1, n - 1, "www.example.com"), n - 1);
	/* order does not matter: the longest wins */
	const char *r[] = { "svc.cluster.local", "cluster.local", "" };
	cr_assert_eq(fwd_zone_match(r, 3, "a.b.svc.cluster.local"), 0);
	cr_assert_eq(fwd_zone_match(r, 3, "a.cluster.local"), 1);
	/* endpoint names come as written: any case, maybe a trailing dot */
	cr_assert_eq(fwd_zone_match(r, 3, "Web.NS1.svc.Cluster.Local."), 0);
	cr_assert_eq(fwd_zone_match(r, 3, "cluster.local."), 1);
}

Test(forward, zone_pick_over_specs)
{
	struct config_endpoint up = { .port = 53 };
	struct fwd_zone_spec z[] = { { "cluster.local", &up, 1 }, { "", NULL, 0 } };
	cr_assert_eq(fwd_zone_pick(z, 2, "kubernetes.default.svc.cluster.local"), &z[0]);
	cr_assert_eq(fwd_zone_pick(z, 2, "example.org"), &z[1]);
	cr_assert_null(fwd_zone_pick(z, 1, "example.org"));
}
