/* Unit tests for config (option table, file, flags) and netaddr. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "rules.h"
#include "netaddr.h"
#include "server.h"

static char errbuf[4096];

static struct config *
load(int argc, const char **argv)
{
	FILE *f = fmemopen(errbuf, sizeof(errbuf), "w");
	char *copy[32];
	for (int i = 0; i < argc; i++)
		copy[i] = (char *)argv[i];
	struct config *c = config_load(argc, copy, f, NULL, NULL, NULL);
	fclose(f);
	return c;
}

static const char *
write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/sedns-cfg-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(config, defaults)
{
	struct config *c = load(0, NULL);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->ttl, 30);
	cr_assert_eq(c->nlisten, 1);
	cr_assert_eq(c->listen[0].port, 5353);
	cr_assert_str_eq(c->cluster_domain, "cluster.local");
	cr_assert_eq(c->vip_pool.len, 16);
	cr_assert_not(c->vip_pool6_on);
	cr_assert_eq(c->vip_hold_ms, 3600000);
	cr_assert_eq(c->nallow_from, 2);
	cr_assert_eq(c->upstream_timeout_ms, 2000);
	/* auto is resolved at load: the daemon never sees "auto" */
	cr_assert(c->rules_format == RULES_FMT_IPTABLES || c->rules_format == RULES_FMT_NFT);
	cr_assert_eq((int)c->rules_format, config_auto_format(NULL));
	cr_assert_str_eq(c->rules_file,
	    c->rules_format == RULES_FMT_NFT ? "/var/lib/sedns/rules.nft" : "/var/lib/sedns/rules.iptables");
	config_free(c);
}

Test(config, explicit_format_is_kept)
{
	const char *argv[] = { "--rules-format", "iptables", "--state-dir", "/tmp/x" };
	struct config *c = load(4, argv);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->rules_format, RULES_FMT_IPTABLES);
	cr_assert_str_eq(c->rules_file, "/tmp/x/rules.iptables");
	config_free(c);
}

Test(config, file_then_flags_win)
{
	const char *p = write_tmp("ttl: 10\nlisten: [\"127.0.0.2:53\", \"[::1]:5300\"]\nrules:\n  format: nft\n"
	                          "vip_pool6: on\nvip_hold: 90m\n");
	const char *argv[] = { "-c", p, "--ttl", "5", "--upstream", "127.0.0.9", "--upstream=127.0.0.10:5300" };
	struct config *c = load(7, argv);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->ttl, 5);
	cr_assert_eq(c->nlisten, 2);
	cr_assert_eq(c->listen[1].addr.family, AF_INET6);
	cr_assert_eq(c->listen[1].port, 5300);
	cr_assert_eq(c->rules_format, 1);
	cr_assert(c->vip_pool6_on);
	cr_assert_eq(c->vip_pool6.len, 48);
	cr_assert_eq(c->vip_hold_ms, 90 * 60 * 1000);
	cr_assert_eq(c->nupstreams, 2);
	cr_assert_eq(c->upstreams[0].port, 53);
	cr_assert_eq(c->upstreams[1].port, 5300);
	config_free(c);
	unlink(p);
}

Test(config, list_flag_replaces_file_list)
{
	const char *p = write_tmp("listen: [127.0.0.2:53, 127.0.0.3:53]\n");
	const char *argv[] = { "-c", p, "--listen", "127.0.0.4:53" };
	struct config *c = load(4, argv);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->nlisten, 1);
	config_free(c);
	unlink(p);
}

Test(config, errors_have_positions)
{
	const char *p = write_tmp("ttl: 10\nrules:\n  aply: true\n");
	const char *argv[] = { "-c", p };
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, ":3:3: unknown key \"rules.aply\""), "%s", errbuf);
	unlink(p);
	p = write_tmp("ttl: -1\n");
	argv[1] = p;
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, ":1:6: ttl: \"-1\" is not a whole number"), "%s", errbuf);
	unlink(p);
	p = write_tmp("listen: [\"[::1\"]\n");
	argv[1] = p;
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, ":1:10: listen:"), "%s", errbuf);
	unlink(p);
	p = write_tmp("ttl: [1, 2]\n");
	argv[1] = p;
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, "expected a single value"), "%s", errbuf);
	unlink(p);
	p = write_tmp("ttl: 10\n  bad: indent\n");
	argv[1] = p;
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, ":2:"), "%s", errbuf);
	unlink(p);
}

Test(config, bad_flags)
{
	const char *a1[] = { "--vip-pool", "240.240.0.0/33" };
	cr_assert_null(load(2, a1));
	const char *a2[] = { "--vip-pool", "2001:db8::/48" };
	cr_assert_null(load(2, a2));
	cr_assert(strstr(errbuf, "IPv4"), "%s", errbuf);
	const char *a3[] = { "--nope" };
	cr_assert_null(load(1, a3));
	cr_assert(strstr(errbuf, "unknown option --nope"), "%s", errbuf);
	const char *a4[] = { "--ttl" };
	cr_assert_null(load(1, a4));
	const char *a5[] = { "--listen", "127.0.0.1:53", "--upstream", "127.0.0.1:53" };
	cr_assert_null(load(4, a5));
	cr_assert(strstr(errbuf, "would loop"), "%s", errbuf);
	const char *a6[] = { "--allow-from", "nonsense" };
	cr_assert_null(load(2, a6));
}

Test(config, durations)
{
	uint64_t ms;
	cr_assert(config_parse_duration_ms("250ms", &ms) && ms == 250);
	cr_assert(config_parse_duration_ms("2", &ms) && ms == 2000);
	cr_assert(config_parse_duration_ms("1.5s", &ms) && ms == 1500);
	cr_assert(config_parse_duration_ms("1d", &ms) && ms == 86400000);
	cr_assert_not(config_parse_duration_ms("", &ms));
	cr_assert_not(config_parse_duration_ms("-1s", &ms));
	cr_assert_not(config_parse_duration_ms("5 parsecs", &ms));
}

Test(netaddr, parse_format_prefix)
{
	struct netaddr a;
	char buf[64];
	cr_assert(netaddr_parse("240.240.0.7", &a));
	cr_assert_str_eq(netaddr_fmt(&a, buf, sizeof(buf)), "240.240.0.7");
	cr_assert_not(netaddr_parse("240.240.0", &a));
	cr_assert_not(netaddr_parse("example.com", &a));
	struct netprefix p;
	cr_assert(netprefix_parse("240.240.0.0/16", true, &p));
	cr_assert_eq(netprefix_size(&p), 65536);
	netprefix_nth(&p, 258, &a);
	cr_assert_str_eq(netaddr_fmt(&a, buf, sizeof(buf)), "240.240.1.2");
	cr_assert_eq(netprefix_offset(&p, &a), 258);
	cr_assert(netprefix_contains(&p, &a));
	netaddr_parse("240.241.0.1", &a);
	cr_assert_not(netprefix_contains(&p, &a));
	cr_assert_not(netprefix_parse("240.240.0.1/16", true, &p), "host bits set in strict mode");
	cr_assert(netprefix_parse("240.240.0.1/16", false, &p));
	cr_assert(netprefix_parse("2001:2::/48", true, &p));
	netprefix_nth(&p, 0x10001, &a);
	cr_assert_str_eq(netaddr_fmt(&a, buf, sizeof(buf)), "2001:2::1:1");
	uint16_t port;
	cr_assert(netaddr_parse_hostport("[::1]:5353", 53, &a, &port) && port == 5353 && a.family == AF_INET6);
	cr_assert(netaddr_parse_hostport("::1", 53, &a, &port) && port == 53);
	cr_assert(netaddr_parse_hostport("10.0.0.1", 53, &a, &port) && port == 53);
	cr_assert_not(netaddr_parse_hostport("10.0.0.1:0", 53, &a, &port));
	cr_assert_not(netaddr_parse_hostport("10.0.0.1:65536", 53, &a, &port));
}

Test(server, allow_from)
{
	struct netprefix allow[2];
	netprefix_parse("127.0.0.0/8", false, &allow[0]);
	netprefix_parse("::1/128", false, &allow[1]);
	struct netaddr a;
	netaddr_parse("127.9.9.9", &a);
	cr_assert(server_client_allowed(allow, 2, &a));
	netaddr_parse("::1", &a);
	cr_assert(server_client_allowed(allow, 2, &a));
	netaddr_parse("198.18.0.1", &a);
	cr_assert_not(server_client_allowed(allow, 2, &a));
	netaddr_parse("::2", &a);
	cr_assert_not(server_client_allowed(allow, 2, &a));
	cr_assert_not(server_client_allowed(allow, 0, &a));
}

Test(config, forward_zones_flags_and_file)
{
	const char *p = write_tmp("forward_zones:\n"
	                          "  - zone: Cluster.Local.\n"
	                          "    upstreams: [10.96.0.10, \"10.96.0.11:5353\"]\n"
	                          "  - zone: in-addr.arpa\n"
	                          "    upstreams: [10.96.0.10]\n"
	                          "  - \"ip6.arpa=[fd00::10]:53\"\n");
	const char *argv[] = { "-c", p };
	struct config *c = load(2, argv);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->nforward_zones, 3);
	cr_assert_str_eq(c->forward_zones[0].name, "cluster.local");
	cr_assert_eq(c->forward_zones[0].nups, 2);
	cr_assert_eq(c->forward_zones[0].ups[0].port, 53);
	cr_assert_eq(c->forward_zones[0].ups[1].port, 5353);
	cr_assert_str_eq(c->forward_zones[2].name, "ip6.arpa");
	cr_assert_eq(c->forward_zones[2].ups[0].addr.family, AF_INET6);
	config_free(c);

	/* the flag replaces the file's list; "." is the default zone */
	const char *argv2[] = { "-c", p, "--forward-zone", ".=127.0.0.1:5300", "--forward-zone=corp=10.1.1.1,10.1.1.2" };
	c = load(5, argv2);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->nforward_zones, 2);
	cr_assert_str_eq(c->forward_zones[0].name, "");
	cr_assert_str_eq(c->forward_zones[1].name, "corp");
	cr_assert_eq(c->forward_zones[1].nups, 2);
	config_free(c);
	unlink(p);
}

Test(config, forward_zones_errors)
{
	struct {
		const char *flag;
		const char *want;
	} cases[] = {
		{ "cluster.local", "is not ZONE=ADDR" },
		{ "cluster.local=", "no upstreams" },
		{ "cluster..local=10.0.0.1", "empty label" },
		{ "..=10.0.0.1", "empty label" },
		{ "a..=10.0.0.1", "empty label" },
		{ "clu ster=10.0.0.1", "only letters" },
		{ "cluster.local=nothost", "is not ADDR[:PORT]" },
		{ "=10.0.0.1", "is not ZONE=ADDR" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = { "--forward-zone", cases[i].flag };
		struct config *c = load(2, argv);
		cr_assert_null(c, "%s accepted", cases[i].flag);
		cr_assert(strstr(errbuf, cases[i].want), "%s: %s", cases[i].flag, errbuf);
	}
	const char *dup[] = { "--forward-zone", "a.b=10.0.0.1", "--forward-zone", "A.B.=10.0.0.2" };
	cr_assert_null(load(4, dup));
	cr_assert(strstr(errbuf, "given twice"), "%s", errbuf);
	const char *both[] = { "--forward-zone", ".=10.0.0.1", "--upstream", "10.0.0.2" };
	cr_assert_null(load(4, both));
	cr_assert(strstr(errbuf, "keep one"), "%s", errbuf);
	const char *loop[] = { "--listen", "127.0.0.1:5353", "--forward-zone", "x=127.0.0.1:5353" };
	cr_assert_null(load(4, loop));
	cr_assert(strstr(errbuf, "would loop"), "%s", errbuf);
	const char *p = write_tmp("forward_zones:\n  - zone: x\n    upstream: [10.0.0.1]\n");
	const char *argv[] = { "-c", p };
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, ":3:5: forward_zones: unknown key \"upstream\""), "%s", errbuf);
	unlink(p);
}

Test(config, forward_zone_kube_dns_from_env)
{
	unsetenv("KUBE_DNS_SERVICE_HOST");
	const char *argv[] = { "--forward-zone", "cluster.local=kube-dns" };
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, "KUBE_DNS_SERVICE_HOST is not set"), "%s", errbuf);
	setenv("KUBE_DNS_SERVICE_HOST", "10.96.0.10", 1);
	setenv("KUBE_DNS_SERVICE_PORT_DNS", "1053", 1);
	struct config *c = load(2, argv);
	cr_assert_not_null(c, "%s", errbuf);
	char a[NETADDR_STRLEN];
	cr_assert_str_eq(netaddr_fmt(&c->forward_zones[0].ups[0].addr, a, sizeof(a)), "10.96.0.10");
	cr_assert_eq(c->forward_zones[0].ups[0].port, 1053);
	config_free(c);
	unsetenv("KUBE_DNS_SERVICE_PORT_DNS");
	setenv("KUBE_DNS_SERVICE_PORT", "99999", 1);
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, "is not a port"), "%s", errbuf);
	unsetenv("KUBE_DNS_SERVICE_PORT");
	unsetenv("KUBE_DNS_SERVICE_HOST");
}

Test(config, stop_freebind_reuseport_defaults)
{
	struct config *c = load(0, NULL);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert(c->listen_freebind);
	cr_assert(c->listen_reuseport);
	cr_assert_eq(c->stop_timeout_ms, 5000);
	cr_assert_str_eq(c->debug_listen, "");
	config_free(c);
}

/* serve -n output is a config: it loads again and prints the same. */
Test(config, print_round_trips)
{
	const char *argv[] = { "--serviceentries", "/tmp/a\"b\\c d", "--serviceentries", "x:y #z",
		"--forward-zone", "cluster.local=10.96.0.10,[fd00::10]:5353", "--forward-zone", ".=127.0.0.1:5300",
		"--vip-pool6", "on", "--ttl", "17", "--cache-size", "0", "--stop-timeout", "1.5s", "--rules-format", "nft",
		"--allow-from", "10.0.0.0/8", "--listen", "[::1]:5353", "--log-level", "debug" };
	struct config *c = load(sizeof(argv) / sizeof(argv[0]), argv);
	cr_assert_not_null(c, "%s", errbuf);
	char *p1 = NULL, *p2 = NULL;
	size_t l1 = 0, l2 = 0;
	FILE *f = open_memstream(&p1, &l1);
	config_print(c, f);
	fclose(f);
	config_free(c);
	const char *path = write_tmp(p1);
	const char *argv2[] = { "-c", path };
	c = load(2, argv2);
	cr_assert_not_null(c, "the printed config does not load: %s\n%s", errbuf, p1);
	cr_assert_str_eq(c->serviceentries[0], "/tmp/a\"b\\c d");
	f = open_memstream(&p2, &l2);
	config_print(c, f);
	fclose(f);
	/* only the header line names the file */
	cr_assert_str_eq(strchr(p1, '\n'), strchr(p2, '\n'));
	config_free(c);
	free(p1);
	free(p2);
	unlink(path);
}

Test(config, durations_reject_nan_inf_and_overflow)
{
	uint64_t ms;
	cr_assert_not(config_parse_duration_ms("nan", &ms));
	cr_assert_not(config_parse_duration_ms("inf", &ms));
	cr_assert_not(config_parse_duration_ms("infinity", &ms));
	cr_assert_not(config_parse_duration_ms("1e400", &ms));
	cr_assert_not(config_parse_duration_ms("0x10", &ms));
	cr_assert_not(config_parse_duration_ms("1e300s", &ms));
	cr_assert_not(config_parse_duration_ms("-1s", &ms));
	cr_assert(config_parse_duration_ms("1.5s", &ms));
	cr_assert_eq(ms, 1500);
	const char *argv[] = { "--ttl", "99999999999999999999999" };
	cr_assert_null(load(2, argv));
	cr_assert(strstr(errbuf, "not a whole number"), "%s", errbuf);
}

/* $SEDNS_CONFIG names the file when -c does not: one export serves every
 * command (make run's config/sedns.yaml, /etc/sedns/sedns.yaml on a node). */
Test(config, sedns_config_env_is_the_default_file)
{
	char envfile[64], flagfile[64];
	snprintf(envfile, sizeof(envfile), "%s", write_tmp("ttl: 11\n"));
	snprintf(flagfile, sizeof(flagfile), "%s", write_tmp("ttl: 12\n"));
	setenv(CONFIG_ENV, envfile, 1);
	struct config *c = load(0, NULL);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->ttl, 11);
	cr_assert_str_eq(c->config_file, envfile);
	config_free(c);
	const char *argv[] = { "-c", flagfile };
	c = load(2, argv);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->ttl, 12, "-c wins over the environment");
	config_free(c);
	setenv(CONFIG_ENV, "", 1);
	c = load(0, NULL);
	cr_assert_not_null(c, "%s", errbuf);
	cr_assert_eq(c->ttl, 30, "an empty SEDNS_CONFIG is no file");
	cr_assert_null(c->config_file);
	config_free(c);
	setenv(CONFIG_ENV, "/nonexistent/sedns.yaml", 1);
	cr_assert_null(load(0, NULL));
	cr_assert(strstr(errbuf, "came from SEDNS_CONFIG=/nonexistent/sedns.yaml") != NULL, "%s", errbuf);
	unsetenv(CONFIG_ENV);
	unlink(envfile);
	unlink(flagfile);
}

/* serve -n prints durations as an operator writes them, and they load back */
Test(config, durations_print_in_the_largest_exact_unit)
{
	static const struct { uint64_t ms; const char *text; } cases[] = {
		{ 0, "0s" }, { 250, "250ms" }, { 1500, "1500ms" }, { 2000, "2s" }, { 90000, "90s" },
		{ 300000, "5m" }, { 3600000, "1h" }, { 5400000, "90m" }, { 86400000, "1d" },
		{ UINT64_C(7) * 86400000, "7d" }, { 3600001, "3600001ms" },
	};
	char buf[32];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_str_eq(config_format_duration(cases[i].ms, buf, sizeof(buf)), cases[i].text);
		uint64_t back = 1;
		cr_assert(config_parse_duration_ms(buf, &back), "%s does not parse", buf);
		cr_assert_eq(back, cases[i].ms, "%s loads back as %llu", buf, (unsigned long long)back);
	}
}

Test(config, duplicate_keys_are_errors)
{
	const char *p = write_tmp("listen: [\"127.0.0.1:5353\"]\ncache:\n  size: 5\n  size: 6\n");
	const char *argv[] = { "-c", p };
	cr_assert_null(load(2, argv));
	char want[128];
	snprintf(want, sizeof(want), "error: %s:4:3: duplicate key \"cache.size\" (first at line 3)", p);
	cr_assert(strstr(errbuf, want) != NULL, "%s", errbuf);
	unlink(p);
}

Test(config, hostport_problems_say_what_is_wrong)
{
	cr_assert_null(netaddr_hostport_problem("127.0.0.1:53"));
	cr_assert_null(netaddr_hostport_problem("[::1]:53"));
	cr_assert_str_eq(netaddr_hostport_problem("127.0.0.1:99999"), "the port is out of range (1..65535)");
	cr_assert_str_eq(netaddr_hostport_problem("127.0.0.1:0"), "the port is out of range (1..65535)");
	cr_assert_str_eq(netaddr_hostport_problem("[::1]:123456"), "the port is out of range (1..65535)");
	cr_assert_str_eq(netaddr_hostport_problem("127.0.0.1:dns"), "the port is not a number");
	cr_assert_str_eq(netaddr_hostport_problem("127.0.0.1:"), "the port is empty");
	cr_assert_str_eq(netaddr_hostport_problem("localhost:53"), "not an IP address (a name is not resolved here)");
	cr_assert_str_eq(netaddr_hostport_problem("[::1"), "an IPv6 address needs its closing ']'");
	cr_assert_str_eq(netaddr_hostport_problem("::1:53:x"), "not an IP address (an IPv6 address with a port is [ADDR]:PORT)");
}
