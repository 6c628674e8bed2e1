/* Unit tests for nftdiff (incremental nft updates). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nftdiff.h"

static const char *const head =
    "table ip sedns {}\n"
    "delete table ip sedns\n"
    "table ip sedns {\n"
    "\tmap services {\n"
    "\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n";
static const char *const hooks =
    "\tchain prerouting {\n"
    "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
    "\t\tip daddr . meta l4proto . th dport vmap @services\n"
    "\t}\n";

/* A table with services "A:B:..." where each is NAME=IP (one endpoint,
 * VIP 240.240.0.N for the Nth), plus extra vips. */
static char *
table(const char *svcs, const char *extra_vips)
{
	static char buf[8192];
	char elems[2048] = "", vips[1024] = "", chains[4096] = "";
	char copy[512];
	int n = 0;
	snprintf(copy, sizeof(copy), "%s", svcs);
	for (char *tok = strtok(copy, ":"); tok; tok = strtok(NULL, ":")) {
		char *eq = strchr(tok, '=');
		*eq = '\0';
		n++;
		size_t l = strlen(elems);
		snprintf(elems + l, sizeof(elems) - l, "%s240.240.0.%d . tcp . 80 : goto svc_%s", l ? ",\n\t\t\t" :
		    "\t\telements = {\n\t\t\t", n, tok);
		l = strlen(vips);
		snprintf(vips + l, sizeof(vips) - l, "%s240.240.0.%d", l ? ",\n\t\t\t" : "\t\telements = {\n\t\t\t", n);
		l = strlen(chains);
		snprintf(chains + l, sizeof(chains) - l, "\tchain svc_%s {\n\t\tmeta l4proto tcp dnat to %s:80 comment "
		    "\"%s:80\"\n\t}\n", tok, eq + 1, tok);
	}
	if (extra_vips[0]) {
		size_t l = strlen(vips);
		snprintf(vips + l, sizeof(vips) - l, "%s%s", l ? ",\n\t\t\t" : "\t\telements = {\n\t\t\t", extra_vips);
	}
	snprintf(buf, sizeof(buf), "%s%s%s\t}\n\tset vips {\n\t\ttype ipv4_addr\n%s%s\t}\n%s%s}\n", head, elems,
	    elems[0] ? "\n\t\t}\n" : "", vips, vips[0] ? "\n\t\t}\n" : "", hooks, chains);
	return strdup(buf);
}

Test(nftdiff, same_text_sends_nothing)
{
	char *a = table("a=10.0.0.1:b=10.0.0.2", "");
	struct rules_buf out = { 0 };
	struct nftdiff_stats st;
	cr_assert_eq(nftdiff(a, a, &out, &st), NFTDIFF_SAME);
	cr_assert_eq(out.len, 0);
	free(a);
	rules_buf_free(&out);
}

Test(nftdiff, one_endpoint_changed_refills_one_chain)
{
	char *a = table("a=10.0.0.1:b=10.0.0.2:c=10.0.0.3", "");
	char *b = table("a=10.0.0.1:b=10.0.0.9:c=10.0.0.3", "");
	struct rules_buf out = { 0 };
	struct nftdiff_stats st;
	cr_assert_eq(nftdiff(a, b, &out, &st), NFTDIFF_DELTA);
	cr_assert_str_eq(out.data, "flush chain ip sedns svc_b\n"
	    "add rule ip sedns svc_b meta l4proto tcp dnat to 10.0.0.9:80 comment \"b:80\"\n");
	cr_assert_eq(st.chains_changed, 1);
	cr_assert_eq(st.chains_added + st.chains_deleted + st.elems_added + st.elems_deleted, 0);
	free(a);
	free(b);
	rules_buf_free(&out);
}

Test(nftdiff, added_and_removed_services)
{
	char *a = table("a=10.0.0.1:b=10.0.0.2", "");
	char *b = table("a=10.0.0.1:c=10.0.0.3", "");   /* c takes b's VIP .2 */
	struct rules_buf out = { 0 };
	struct nftdiff_stats st;
	cr_assert_eq(nftdiff(a, b, &out, &st), NFTDIFF_DELTA);
	cr_assert_str_eq(out.data,
	    "add chain ip sedns svc_c\n"
	    "add rule ip sedns svc_c meta l4proto tcp dnat to 10.0.0.3:80 comment \"c:80\"\n"
	    "delete element ip sedns services { 240.240.0.2 . tcp . 80 }\n"
	    "add element ip sedns services { 240.240.0.2 . tcp . 80 : goto svc_c }\n"
	    "delete chain ip sedns svc_b\n");
	cr_assert_eq(st.chains_added, 1);
	cr_assert_eq(st.chains_deleted, 1);
	free(a);
	free(b);
	rules_buf_free(&out);
}

Test(nftdiff, vips_set_and_empty_tables)
{
	char *a = table("", "");
	char *b = table("a=10.0.0.1", "240.240.7.7");
	struct rules_buf out = { 0 };
	struct nftdiff_stats st;
	cr_assert_eq(nftdiff(a, b, &out, &st), NFTDIFF_DELTA);
	cr_assert(strstr(out.data, "add element ip sedns vips { 240.240.0.1 }\n") != NULL, "%s", out.data);
	cr_assert(strstr(out.data, "add element ip sedns vips { 240.240.7.7 }\n") != NULL, "%s", out.data);
	cr_assert_eq(st.vips_added, 2);
	cr_assert_eq(nftdiff(b, a, &out, &st), NFTDIFF_DELTA);
	cr_assert_eq(st.vips_deleted, 2);
	cr_assert_eq(st.chains_deleted, 1);
	cr_assert_eq(st.elems_deleted, 1);
	free(a);
	free(b);
	rules_buf_free(&out);
}

Test(nftdiff, skeleton_change_or_garbage_means_full)
{
	char *a = table("a=10.0.0.1", "");
	char *b = table("a=10.0.0.1", "");
	char *c = malloc(strlen(b) + 64);
	/* a hook chain changed (masquerade on, say) */
	char *at = strstr(b, "\t\tip daddr . meta");
	size_t pre = (size_t)(at - b);
	memcpy(c, b, pre);
	strcpy(c + pre, "\t\tmeta mark set 1\n");
	strcat(c, at);
	struct rules_buf out = { 0 };
	struct nftdiff_stats st;
	cr_assert_eq(nftdiff(a, c, &out, &st), NFTDIFF_FULL);
	cr_assert_eq(nftdiff(a, "table ip sedns {\n\tchain svc_x {\n", &out, &st), NFTDIFF_FULL);
	free(a);
	free(b);
	free(c);
	rules_buf_free(&out);
}
