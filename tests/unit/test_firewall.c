/* Unit tests for the pure part of firewall: stale chain deletion and the
 * hook jumps of a full apply. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firewall.h"
#include "rules.h"

static const char payload[] =
    "*nat\n:SEDNS-SERVICES - [0:0]\n:SEDNS-SVC-AAAA - [0:0]\n-A SEDNS-SERVICES -j SEDNS-SVC-AAAA\nCOMMIT\n"
    "*filter\n:SEDNS-FILTER - [0:0]\nCOMMIT\n";

Test(firewall, stale_chains_are_flushed_and_deleted_in_the_same_nat_transaction)
{
	const char *existing[] = { "SEDNS-SERVICES", "SEDNS-SVC-OLD1", "SEDNS-SVC-AAAA", "SEDNS-SEP-OLD2" };
	char *out = firewall_add_stale_deletions(payload, existing, 4);
	cr_assert_not_null(out);
	cr_assert_str_eq(out,
	    "*nat\n:SEDNS-SVC-OLD1 - [0:0]\n:SEDNS-SEP-OLD2 - [0:0]\n:SEDNS-SERVICES - [0:0]\n:SEDNS-SVC-AAAA - [0:0]\n"
	    "-A SEDNS-SERVICES -j SEDNS-SVC-AAAA\n-X SEDNS-SVC-OLD1\n-X SEDNS-SEP-OLD2\nCOMMIT\n"
	    "*filter\n:SEDNS-FILTER - [0:0]\nCOMMIT\n");
	free(out);
}

Test(firewall, nothing_stale_leaves_the_payload_unchanged)
{
	const char *existing[] = { "SEDNS-SERVICES", "SEDNS-SVC-AAAA" };
	char *out = firewall_add_stale_deletions(payload, existing, 2);
	cr_assert_str_eq(out, payload);
	free(out);
	out = firewall_add_stale_deletions(payload, NULL, 0);
	cr_assert_str_eq(out, payload);
	free(out);
}

Test(firewall, run_captures_output_and_status)
{
	char *out = NULL, err[256];
	char *const ok[] = { (char *)"cat", NULL };
	cr_assert_eq(firewall_run(ok, "hello", 5, &out, err, sizeof(err)), 0);
	cr_assert_str_eq(out, "hello");
	free(out);
	char *const bad[] = { (char *)"sh", (char *)"-c", (char *)"echo oops >&2; exit 3", NULL };
	cr_assert_eq(firewall_run(bad, NULL, 0, NULL, err, sizeof(err)), 3);
	cr_assert_str_eq(err, "oops");
	char *const missing[] = { (char *)"/nonexistent/tool", NULL };
	cr_assert_eq(firewall_run(missing, NULL, 0, NULL, err, sizeof(err)), 127);
	cr_assert(strstr(err, "cannot run /nonexistent/tool"), "%s", err);
}

Test(firewall, run_feeds_large_stdin_without_deadlock)
{
	size_t n = 4 * 1024 * 1024;
	char *big = malloc(n);
	memset(big, 'x', n);
	char *out = NULL, err[64];
	char *const wc[] = { (char *)"wc", (char *)"-c", NULL };
	cr_assert_eq(firewall_run(wc, big, n, &out, err, sizeof(err)), 0);
	cr_assert_eq(strtoul(out, NULL, 10), n);
	free(out);
	free(big);
}

static char *
fixes(const char *table, const char *save, bool masq)
{
	static char buf[4096];
	struct rules_buf b = { 0 };
	firewall_jump_fixes(table, save, masq, "240.240.0.0/16", &b);
	snprintf(buf, sizeof(buf), "%s", b.data ? b.data : "");
	rules_buf_free(&b);
	return buf;
}

Test(firewall, missing_jumps_are_inserted_in_the_transaction)
{
	cr_assert_str_eq(fixes("nat", "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n", true),
	    "-I PREROUTING 1 -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-I OUTPUT 1 -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-I POSTROUTING 1 -m comment --comment sedns -j SEDNS-POSTROUTING\n");
	cr_assert_str_eq(fixes("filter", "", false),
	    "-I INPUT 1 -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER\n"
	    "-I FORWARD 1 -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER\n"
	    "-I OUTPUT 1 -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER\n");
}

Test(firewall, present_jumps_send_nothing_doubles_and_old_forms_go)
{
	const char *save =
	    "*nat\n"
	    "-A PREROUTING -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-A PREROUTING -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-A OUTPUT -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-A OUTPUT -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-A POSTROUTING -m comment --comment sedns -j SEDNS-POSTROUTING\n"
	    "-A POSTROUTING -m comment --comment \"sedns\" -j OTHER\n"
	    "COMMIT\n";
	cr_assert_str_eq(fixes("nat", save, true),
	    "-D PREROUTING -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-D OUTPUT -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n");
	/* masquerade switched off: its jump goes before its chain does */
	cr_assert_str_eq(fixes("nat", save, false),
	    "-D PREROUTING -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-D OUTPUT -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-D POSTROUTING -m comment --comment sedns -j SEDNS-POSTROUTING\n");
}

Test(firewall, a_full_apply_fixes_jumps_before_it_deletes_chains)
{
	const char *nat =
	    "*nat\n:PREROUTING ACCEPT [0:0]\n:SEDNS-SERVICES - [0:0]\n:SEDNS-POSTROUTING - [0:0]\n"
	    "-A PREROUTING -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-A OUTPUT -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES\n"
	    "-A POSTROUTING -m comment --comment sedns -j SEDNS-POSTROUTING\nCOMMIT\n";
	char *out = firewall_full_payload(payload, nat, NULL, false, "240.240.0.0/16");
	cr_assert_not_null(out);
	cr_assert_str_eq(out,
	    "*nat\n:SEDNS-POSTROUTING - [0:0]\n:SEDNS-SERVICES - [0:0]\n:SEDNS-SVC-AAAA - [0:0]\n"
	    "-A SEDNS-SERVICES -j SEDNS-SVC-AAAA\n"
	    "-D POSTROUTING -m comment --comment sedns -j SEDNS-POSTROUTING\n"
	    "-X SEDNS-POSTROUTING\nCOMMIT\n"
	    "*filter\n:SEDNS-FILTER - [0:0]\n"
	    "-I INPUT 1 -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER\n"
	    "-I FORWARD 1 -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER\n"
	    "-I OUTPUT 1 -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER\n"
	    "COMMIT\n");
	free(out);
}

Test(firewall, auto_format_picks_nft_only_where_both_tool_and_kernel_have_it)
{
	cr_assert_eq(firewall_choose_format(true, true), RULES_FMT_NFT);
	cr_assert_eq(firewall_choose_format(true, false), RULES_FMT_IPTABLES);
	cr_assert_eq(firewall_choose_format(false, true), RULES_FMT_IPTABLES);
	cr_assert_eq(firewall_choose_format(false, false), RULES_FMT_IPTABLES);
}

Test(firewall, detect_format_names_its_reason)
{
	char why[128];
	int f = firewall_detect_format(why, sizeof(why));
	cr_assert(f == RULES_FMT_NFT || f == RULES_FMT_IPTABLES);
	cr_assert(strncmp(why, "nft_tool:", 9) == 0 && strchr(why, ' ') == NULL, "%s", why);
	if (f == RULES_FMT_NFT)
		cr_assert(strstr(why, "nft_tool:installed") && !strstr(why, "nf_tables:absent"), "%s", why);
	cr_assert(firewall_tool_present("sh"));
	cr_assert_not(firewall_tool_present("no-such-tool-sedns"));
}

Test(firewall, fingerprint_ignores_counters_and_foreign_rules_but_not_ours)
{
	const char *a = "*nat\n:PREROUTING ACCEPT [10:600]\n:SEDNS-SERVICES - [0:0]\n"
	                "-A PREROUTING -d 240.240.0.0/16 -j SEDNS-SERVICES\n-A PREROUTING -j KUBE-SERVICES\n"
	                "-A SEDNS-SERVICES -d 240.240.0.1/32 -p tcp -m tcp --dport 80 -j SEDNS-SVC-1\nCOMMIT\n";
	const char *b = "*nat\n:PREROUTING ACCEPT [99:9000]\n:SEDNS-SERVICES - [5:300]\n"
	                "-A PREROUTING -d 240.240.0.0/16 -j SEDNS-SERVICES\n-A PREROUTING -j KUBE-SVC-OTHER\n"
	                "-A SEDNS-SERVICES -d 240.240.0.1/32 -p tcp -m tcp --dport 80 -j SEDNS-SVC-1\nCOMMIT\n";
	cr_assert_eq(firewall_fingerprint_text(RULES_FMT_IPTABLES, a), firewall_fingerprint_text(RULES_FMT_IPTABLES, b));
	const char *c = "*nat\n:SEDNS-SERVICES - [0:0]\n"
	                "-A SEDNS-SERVICES -d 240.240.0.1/32 -p tcp -m tcp --dport 81 -j SEDNS-SVC-1\nCOMMIT\n";
	const char *d = "*nat\n:SEDNS-SERVICES - [0:0]\n"
	                "-A SEDNS-SERVICES -d 240.240.0.1/32 -p tcp -m tcp --dport 80 -j SEDNS-SVC-1\nCOMMIT\n";
	cr_assert_neq(firewall_fingerprint_text(RULES_FMT_IPTABLES, c), firewall_fingerprint_text(RULES_FMT_IPTABLES, d));
	/* a jump deleted by hand is a difference */
	const char *e = "*nat\n:PREROUTING ACCEPT [10:600]\n:SEDNS-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n"
	                "-A SEDNS-SERVICES -d 240.240.0.1/32 -p tcp -m tcp --dport 80 -j SEDNS-SVC-1\nCOMMIT\n";
	cr_assert_neq(firewall_fingerprint_text(RULES_FMT_IPTABLES, a), firewall_fingerprint_text(RULES_FMT_IPTABLES, e));
	/* rule order inside an iptables chain is meaning */
	const char *f1 = "-A SEDNS-SVC-1 -m statistic --probability 0.5 -j SEDNS-EP-1\n-A SEDNS-SVC-1 -j SEDNS-EP-2\n";
	const char *f2 = "-A SEDNS-SVC-1 -j SEDNS-EP-2\n-A SEDNS-SVC-1 -m statistic --probability 0.5 -j SEDNS-EP-1\n";
	cr_assert_neq(firewall_fingerprint_text(RULES_FMT_IPTABLES, f1), firewall_fingerprint_text(RULES_FMT_IPTABLES, f2));
}

Test(firewall, nft_fingerprint_takes_the_kernels_order_and_counters_as_noise)
{
	const char *a = "table ip sedns {\n\tchain svc-1 {\n\t\tcounter packets 5 bytes 300 dnat to 10.0.0.1:80\n\t}\n"
	                "\tchain svc-2 {\n\t\tdnat to 10.0.0.2:80\n\t}\n}\n";
	const char *b = "table ip sedns {\n\tchain svc-2 {\n\t\tdnat to 10.0.0.2:80\n\t}\n"
	                "\tchain svc-1 {\n\t\tcounter packets 0 bytes 0 dnat to 10.0.0.1:80\n\t}\n}\n";
	const char *c = "table ip sedns {\n\tchain svc-2 {\n\t\tdnat to 10.0.0.9:80\n\t}\n"
	                "\tchain svc-1 {\n\t\tcounter packets 0 bytes 0 dnat to 10.0.0.1:80\n\t}\n}\n";
	cr_assert_eq(firewall_fingerprint_text(RULES_FMT_NFT, a), firewall_fingerprint_text(RULES_FMT_NFT, b));
	cr_assert_neq(firewall_fingerprint_text(RULES_FMT_NFT, b), firewall_fingerprint_text(RULES_FMT_NFT, c));
	cr_assert_neq(firewall_fingerprint_text(RULES_FMT_NFT, ""), firewall_fingerprint_text(RULES_FMT_NFT, a));
}
