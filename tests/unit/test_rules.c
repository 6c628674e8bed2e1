/* Unit tests for rules.c: golden files plus targeted behaviour checks.
 * Registries are built by hand (no YAML loader). Runner cwd: tests/unit/.
 * SEDNS_UPDATE_GOLDEN=1 rewrites ../golden/ from the current output. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"
#include "firewall.h"
#include "rules.h"

/* ---- registry builder ---- */

struct tb {
	struct registry reg;
	size_t hostcap;
};

static struct tb *
tb_new(void)
{
	struct tb *t = calloc(1, sizeof(*t));
	cr_assert_not_null(t);
	return t;
}

static struct reg_host *
tb_host(struct tb *t, const char *name, enum se_resolution res, const char *vip)
{
	if (t->reg.nhosts == t->hostcap) {
		t->hostcap = t->hostcap ? t->hostcap * 2 : 16;
		t->reg.hosts = realloc(t->reg.hosts, t->hostcap * sizeof(*t->reg.hosts));
		cr_assert_not_null(t->reg.hosts);
	}
	struct reg_host *h = &t->reg.hosts[t->reg.nhosts++];
	memset(h, 0, sizeof(*h));
	h->name = strdup(name);
	h->resolution = res;
	if (vip) {
		h->answer = REG_VIP;
		struct netaddr va;
		cr_assert(netaddr_parse(vip, &va));
		cr_assert(reg_host_add_addr(h, &va));
	}
	return h;
}

/* the host tb_port last added to: its endpoints' entries resolve as it does */
static enum se_resolution tb_resolution;

static struct reg_port *
tb_port(struct reg_host *h, uint16_t number, const char *proto)
{
	tb_resolution = h->resolution;
	h->ports = realloc(h->ports, (h->nports + 1) * sizeof(*h->ports));
	cr_assert_not_null(h->ports);
	struct reg_port *p = &h->ports[h->nports++];
	memset(p, 0, sizeof(*p));
	p->number = number;
	p->protocol = proto;
	p->udp = proto && strcmp(proto, "UDP") == 0;
	return p;
}

/* An endpoint reads its address and weight from its ServiceEntry: each
 * gets an entry of its own (freed by tb_free). */
static void
tb_ep(struct reg_port *p, const char *addr, uint16_t port, uint32_t weight)
{
	p->eps = realloc(p->eps, (p->neps + 1) * sizeof(*p->eps));
	cr_assert_not_null(p->eps);
	struct reg_endpoint *e = &p->eps[p->neps++];
	memset(e, 0, sizeof(*e));
	struct serviceentry *se = calloc(1, sizeof(*se));
	cr_assert_not_null(se);
	se->resolution = tb_resolution;
	se->nendpoints = 1;
	se->endpoints = calloc(1, sizeof(*se->endpoints));
	cr_assert_not_null(se->endpoints);
	se->endpoints[0].address = strdup(addr);
	se->endpoints[0].weight = weight;
	e->se = se;
	if (!netaddr_parse(addr, &e->ip))
		memset(&e->ip, 0, sizeof(e->ip));
	e->port = port;
}

/* Hosts must be sorted by name, like registry_build leaves them. */
static int
host_cmp(const void *x, const void *y)
{
	return strcmp(((const struct reg_host *)x)->name, ((const struct reg_host *)y)->name);
}

static void
tb_sort(struct tb *t)
{
	qsort(t->reg.hosts, t->reg.nhosts, sizeof(*t->reg.hosts), host_cmp);
}

static void
tb_free(struct tb *t)
{
	for (size_t i = 0; i < t->reg.nhosts; i++) {
		struct reg_host *h = &t->reg.hosts[i];
		for (size_t k = 0; k < h->nports; k++) {
			for (size_t e = 0; e < h->ports[k].neps; e++) {
				struct serviceentry *se = (struct serviceentry *)h->ports[k].eps[e].se;
				free(se->endpoints[0].address);
				free(se->endpoints);
				free(se);
			}
			free(h->ports[k].eps);
		}
		free(h->ports);
		free((char *)h->name);
		free(h->addrs);
	}
	free(t->reg.hosts);
	free(t);
}

/* ---- fake resolver ---- */

static const struct {
	const char *name;
	const char *ips[3];
} fake_dns[] = {
	{ "api.stripe.com", { "203.0.113.10", "203.0.113.11", NULL } },
	{ "orders.cluster-abc.eu-west-1.rds.amazonaws.com", { "10.50.1.20", NULL, NULL } },
	{ "partner.example.com", { "198.51.100.7", "2001:db8::7", NULL } },
	{ "a.example.net", { "192.0.2.1", "192.0.2.2", NULL } },
	{ "b.example.net", { "192.0.2.2", NULL, NULL } },
};

static int resolve_calls;

static size_t
fake_resolve(void *arg, const char *hostname, struct netaddr *out, size_t max)
{
	size_t n = 0;
	(void)arg;
	resolve_calls++;
	for (size_t i = 0; i < sizeof(fake_dns) / sizeof(fake_dns[0]); i++) {
		if (strcmp(fake_dns[i].name, hostname) != 0)
			continue;
		for (size_t k = 0; k < 3 && fake_dns[i].ips[k] && n < max; k++)
			cr_assert(netaddr_parse(fake_dns[i].ips[k], &out[n++]));
	}
	return n;
}

/* ---- golden files ---- */

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	cr_assert_not_null(s);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

static void
golden(const char *name, const char *got)
{
	char path[256];
	const char *upd = getenv("SEDNS_UPDATE_GOLDEN");

	snprintf(path, sizeof(path), "../golden/%s", name);
	if (upd && strcmp(upd, "1") == 0) {
		FILE *f = fopen(path, "wb");
		cr_assert_not_null(f, "cannot write %s", path);
		fputs(got, f);
		fclose(f);
	}
	char *want = slurp(path);
	cr_assert_not_null(want, "missing golden file %s (run with SEDNS_UPDATE_GOLDEN=1)", path);
	if (strcmp(want, got) != 0) {
		char apath[300];
		snprintf(apath, sizeof(apath), "/tmp/sedns-golden-%s.actual", name);
		FILE *f = fopen(apath, "wb");
		if (f) {
			fputs(got, f);
			fclose(f);
		}
		cr_assert_fail("output differs from %s (actual in %s)", path, apath);
	}
	free(want);
}

static void
render_golden(struct tb *t, const char *base, bool masq)
{
	char name[128];
	struct rules_buf b = { 0 };
	struct rules_opts o = { .format = RULES_FMT_IPTABLES, .masquerade = masq };

	cr_assert(rules_render(&t->reg, &o, fake_resolve, NULL, &b));
	snprintf(name, sizeof(name), "%s.iptables", base);
	golden(name, b.data);
	o.format = RULES_FMT_NFT;
	cr_assert(rules_render(&t->reg, &o, fake_resolve, NULL, &b));
	snprintf(name, sizeof(name), "%s.nft", base);
	golden(name, b.data);
	rules_buf_free(&b);
}

/* ---- seed patterns ---- */

static struct tb *
seed_external_api(void)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "api.stripe.com", SE_RES_DNS, "240.240.0.7");
	tb_port(h, 443, "TLS")->resolve_host = true;
	return t;
}

static struct tb *
seed_managed_db(void)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "orders-db.prod.internal", SE_RES_DNS, "240.240.0.20");
	tb_ep(tb_port(h, 5432, "TCP"), "orders.cluster-abc.eu-west-1.rds.amazonaws.com", 5432, 0);
	return t;
}

static struct tb *
seed_legacy_vms(void)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "billing.legacy.internal", SE_RES_STATIC, "240.240.0.31");
	struct reg_port *p = tb_port(h, 8080, "HTTP");
	tb_ep(p, "10.10.0.11", 8080, 0);
	tb_ep(p, "10.10.0.12", 8080, 0);
	tb_ep(p, "10.10.0.13", 8080, 0);
	return t;
}

static struct tb *
seed_elasticsearch(void)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "es.logging.internal", SE_RES_STATIC, "240.240.1.2");
	struct reg_port *p = tb_port(h, 9200, "HTTP");
	tb_ep(p, "10.20.0.1", 9200, 0);
	tb_ep(p, "10.20.0.2", 9200, 0);
	p = tb_port(h, 9300, "TCP");
	tb_ep(p, "10.20.0.1", 9300, 0);
	tb_ep(p, "10.20.0.2", 9300, 0);
	return t;
}

/* TLS origination: port 80 (HTTP, targetPort 443) and port 443 (TLS) on a
 * DNS host resolved by name; 80 is DNATed to the endpoint's 443. */
static struct tb *
seed_tls_origination(void)
{
	static struct se_port sp[] = {
		{ .number = 80, .protocol = (char *)"HTTP", .target_port = 443 },
		{ .number = 443, .protocol = (char *)"TLS" },
	};
	static struct serviceentry se = { .ports = sp, .nports = 2, .resolution = SE_RES_DNS };
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "partner.example.com", SE_RES_DNS, "240.240.0.44");
	struct reg_port *p = tb_port(h, 80, "HTTP");
	p->resolve_host = true;
	p->owner = &se;
	p = tb_port(h, 443, "TLS");
	p->resolve_host = true;
	p->owner = &se;
	return t;
}

static struct tb *
seed_sticky(void)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "session.legacy.internal", SE_RES_STATIC, "240.240.0.50");
	struct reg_port *p = tb_port(h, 8443, "HTTPS");
	tb_ep(p, "10.40.0.2", 8443, 0);
	tb_ep(p, "10.40.0.1", 8443, 0);
	return t;
}

static struct tb *
seed_weights(void)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "canary.example.internal", SE_RES_STATIC, "240.240.0.60");
	struct reg_port *p = tb_port(h, 8080, "HTTP");
	tb_ep(p, "10.30.0.1", 8080, 80);
	tb_ep(p, "10.30.0.2", 8080, 20);
	return t;
}

/* endpoints[].ports[name] wins, else targetPort (the registry already
 * resolved both into reg_endpoint.port). */
static struct tb *
seed_port_map(void)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "inventory.vm.internal", SE_RES_STATIC, "240.240.0.70");
	struct reg_port *p = tb_port(h, 8080, "HTTP");
	tb_ep(p, "10.60.0.1", 18080, 0);   /* ports: {http: 18080} */
	tb_ep(p, "10.60.0.2", 9090, 0);    /* targetPort 9090 */
	p = tb_port(h, 9000, "GRPC");
	tb_ep(p, "10.60.0.1", 9000, 0);
	tb_ep(p, "10.60.0.2", 9000, 0);
	return t;
}

static struct tb *
seed_no_endpoint(void)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "pending.example.internal", SE_RES_STATIC, "240.240.0.80");
	tb_port(h, 5000, "TCP");
	tb_port(h, 5001, "UDP");
	return t;
}

static struct tb *
seed_all(void)
{
	struct tb *t = tb_new();
	struct tb *parts[] = {
		seed_external_api(), seed_managed_db(), seed_legacy_vms(), seed_elasticsearch(),
		seed_tls_origination(), seed_sticky(), seed_weights(), seed_port_map(),
		seed_no_endpoint(),
	};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		for (size_t k = 0; k < parts[i]->reg.nhosts; k++) {
			struct reg_host *h = tb_host(t, "x", SE_RES_NONE, NULL);
			free((char *)h->name);
			*h = parts[i]->reg.hosts[k];
		}
		parts[i]->reg.nhosts = 0;
		tb_free(parts[i]);
	}
	tb_sort(t);
	return t;
}

#define GOLDEN_TEST(fn, base) \
	Test(rules, golden_##fn) { struct tb *t = seed_##fn(); render_golden(t, base, false); tb_free(t); }

GOLDEN_TEST(external_api, "external-api")
GOLDEN_TEST(managed_db, "managed-db")
GOLDEN_TEST(legacy_vms, "legacy-vms")
GOLDEN_TEST(elasticsearch, "elasticsearch")
GOLDEN_TEST(tls_origination, "tls-origination")
GOLDEN_TEST(sticky, "sticky-session")
GOLDEN_TEST(weights, "weights-80-20")
GOLDEN_TEST(port_map, "port-map")
GOLDEN_TEST(no_endpoint, "no-endpoint")
GOLDEN_TEST(all, "all")

Test(rules, golden_masquerade)
{
	struct tb *t = seed_legacy_vms();
	render_golden(t, "masquerade", true);
	tb_free(t);
}

Test(rules, golden_empty)
{
	struct tb *t = tb_new();
	render_golden(t, "empty", false);
	tb_free(t);
}

/* ---- behaviour ---- */

static char *
render(struct tb *t, enum rules_format fmt)
{
	struct rules_buf b = { 0 };
	struct rules_opts o = { .format = fmt };
	cr_assert(rules_render(&t->reg, &o, fake_resolve, NULL, &b));
	return b.data;
}

/* Own loop: sanitizer interceptors make repeated strstr over a big
 * buffer quadratic. */
static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (*p == needle[0] && strncmp(p, needle, nl) == 0) {
			n++;
			p += nl - 1;
		}
	return n;
}

Test(rules, probabilities_equal_thirds)
{
	struct tb *t = seed_legacy_vms();
	char *s = render(t, RULES_FMT_IPTABLES);
	cr_assert_eq(count(s, "--probability 0.3333333333 "), 1, "%s", s);
	cr_assert_eq(count(s, "--probability 0.5000000000 "), 1, "%s", s);
	cr_assert_eq(count(s, "--probability"), 2);
	/* the last endpoint is unconditional */
	char svc[RULES_CHAIN_MAX + 1], sep[RULES_CHAIN_MAX + 1], line[256];
	struct netaddr ep;
	netaddr_parse("10.10.0.13", &ep);
	rules_svc_chain("billing.legacy.internal", 8080, "tcp", svc, sizeof(svc));
	rules_sep_chain("billing.legacy.internal", 8080, "tcp", &ep, 8080, sep, sizeof(sep));
	snprintf(line, sizeof(line), "-A %s -m comment --comment \"billing.legacy.internal:8080\" -j %s\n",
	    svc, sep);
	cr_assert_not_null(strstr(s, line), "%s", s);
	free(s);
	tb_free(t);
}

Test(rules, weights_80_20)
{
	struct tb *t = seed_weights();
	char *s = render(t, RULES_FMT_IPTABLES);
	cr_assert_eq(count(s, "--probability 0.8000000000 "), 1, "%s", s);
	cr_assert_eq(count(s, "--probability"), 1);
	free(s);
	s = render(t, RULES_FMT_NFT);
	/* 4 of 5, then the rest; no anonymous map (their names make a full
	 * load quadratic in the kernel) */
	cr_assert_not_null(strstr(s, "\t\tmeta l4proto tcp numgen random mod 5 < 4 dnat to 10.30.0.1:8080 "
	    "comment \"canary.example.internal:8080\"\n"
	    "\t\tmeta l4proto tcp dnat to 10.30.0.2:8080 comment \"canary.example.internal:8080\"\n"), "%s", s);
	cr_assert_null(strstr(s, " map {"), "%s", s);
	/* endpoints are rules of the service chain, not chains */
	cr_assert_null(strstr(s, "sep_"), "%s", s);
	cr_assert_eq(count(s, "\tchain svc_"), 1, "%s", s);
	free(s);
	tb_free(t);
}

Test(rules, weights_uneven_three)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "w.example", SE_RES_STATIC, "240.240.9.9");
	struct reg_port *p = tb_port(h, 80, "HTTP");
	tb_ep(p, "10.0.0.1", 80, 1);
	tb_ep(p, "10.0.0.2", 80, 2);
	tb_ep(p, "10.0.0.3", 80, 3);
	char *s = render(t, RULES_FMT_IPTABLES);
	/* 1/6, then 2/5, then the rest */
	cr_assert_not_null(strstr(s, "--probability 0.1666666667 "), "%s", s);
	cr_assert_not_null(strstr(s, "--probability 0.4000000000 "), "%s", s);
	cr_assert_eq(count(s, "--probability"), 2);
	free(s);
	s = render(t, RULES_FMT_NFT);
	/* 1 of 6, then 2 of the remaining 5, then the rest: 1/6, 2/6, 3/6 */
	cr_assert_not_null(strstr(s, "numgen random mod 6 < 1 dnat to 10.0.0.1:80 "), "%s", s);
	cr_assert_not_null(strstr(s, "numgen random mod 5 < 2 dnat to 10.0.0.2:80 "), "%s", s);
	cr_assert_not_null(strstr(s, "meta l4proto tcp dnat to 10.0.0.3:80 "), "%s", s);
	free(s);
	tb_free(t);
}

Test(rules, huge_weights_fit_nft)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "w.example", SE_RES_STATIC, "240.240.9.9");
	struct reg_port *p = tb_port(h, 80, "HTTP");
	tb_ep(p, "10.0.0.1", 80, 4000000000u);
	tb_ep(p, "10.0.0.2", 80, 4000000001u);
	char *s = render(t, RULES_FMT_NFT);
	const char *m = strstr(s, "numgen random mod ");
	cr_assert_not_null(m);
	unsigned long long n = strtoull(m + strlen("numgen random mod "), NULL, 10);
	cr_assert(n > 1 && n <= (1ull << 31), "mod %llu", n);
	free(s);
	tb_free(t);
}

Test(rules, stable_names_across_renders_and_insertions)
{
	struct tb *t = seed_legacy_vms();
	char *a = render(t, RULES_FMT_IPTABLES);
	char *b = render(t, RULES_FMT_IPTABLES);
	cr_assert_str_eq(a, b);
	/* add another host sorting before it: the original chains are unchanged */
	struct reg_host *h = tb_host(t, "aaa.example", SE_RES_STATIC, "240.240.0.1");
	tb_ep(tb_port(h, 80, "HTTP"), "10.99.0.1", 80, 0);
	tb_sort(t);
	char *c = render(t, RULES_FMT_IPTABLES);
	char *line = strtok(a, "\n");
	size_t checked = 0;
	for (; line; line = strtok(NULL, "\n"), checked++)
		cr_assert_not_null(strstr(c, line), "line lost after insertion: %s", line);
	cr_assert(checked > 10);
	free(a);
	free(b);
	free(c);
	tb_free(t);
}

Test(rules, chain_name_shape)
{
	char n[64];
	char longhost[300];
	memset(longhost, 'a', 250);
	memcpy(longhost + 250, ".io", 4);
	rules_svc_chain(longhost, 65535, "udp", n, sizeof(n));
	cr_assert_leq(strlen(n), RULES_CHAIN_MAX);
	cr_assert_eq(strncmp(n, "SEDNS-SVC-", 10), 0);
	cr_assert_eq(strlen(n), 26);
	struct netaddr ep;
	netaddr_parse("10.0.0.1", &ep);
	rules_sep_chain(longhost, 65535, "udp", &ep, 1, n, sizeof(n));
	cr_assert_leq(strlen(n), RULES_CHAIN_MAX);
	cr_assert_eq(strncmp(n, "SEDNS-SEP-", 10), 0);
	for (const char *p = n + 10; *p; p++)
		cr_assert((*p >= 'A' && *p <= 'Z') || (*p >= '2' && *p <= '7'), "%s", n);
	/* protocol and port are part of the identity */
	char m[64];
	rules_svc_chain("x.example", 80, "tcp", n, sizeof(n));
	rules_svc_chain("x.example", 80, "udp", m, sizeof(m));
	cr_assert_str_neq(n, m);
	rules_svc_chain("x.example", 81, "tcp", m, sizeof(m));
	cr_assert_str_neq(n, m);
	/* every chain declared in a big render is short enough */
	struct tb *t = seed_all();
	char *s = render(t, RULES_FMT_IPTABLES);
	for (char *l = strtok(s, "\n"); l; l = strtok(NULL, "\n"))
		if (l[0] == ':')
			cr_assert_leq(strcspn(l + 1, " "), RULES_CHAIN_MAX, "%s", l);
	free(s);
	tb_free(t);
}

Test(rules, comment_quoting)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "evil\" -j ACCEPT \\x", SE_RES_STATIC, "240.240.0.9");
	tb_ep(tb_port(h, 80, "HTTP"), "10.0.0.1", 80, 0);
	char *s = render(t, RULES_FMT_IPTABLES);
	cr_assert_not_null(strstr(s, "--comment \"evil_ -j ACCEPT _x:80\""), "%s", s);
	cr_assert_null(strstr(s, "\\"));
	/* exactly two quotes per comment, comments never end early */
	for (char *l = strtok(s, "\n"); l; l = strtok(NULL, "\n"))
		cr_assert_eq(count(l, "\"") % 2, 0, "%s", l);
	free(s);
	s = render(t, RULES_FMT_NFT);
	cr_assert_not_null(strstr(s, "comment \"evil_ -j ACCEPT _x:80\""), "%s", s);
	free(s);
	tb_free(t);
}

Test(rules, comment_truncated_to_kernel_limit)
{
	char host[300];
	memset(host, 'a', 253);
	host[253] = '\0';
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, host, SE_RES_STATIC, "240.240.0.9");
	tb_ep(tb_port(h, 65535, "HTTP"), "10.0.0.1", 80, 0);
	char *s = render(t, RULES_FMT_IPTABLES);
	const char *c = strstr(s, "--comment \"");
	cr_assert_not_null(c);
	c += strlen("--comment \"");
	cr_assert_eq(strcspn(c, "\""), 255);
	free(s);
	s = render(t, RULES_FMT_NFT);
	c = strstr(s, "comment \"");
	cr_assert_not_null(c);
	c += strlen("comment \"");
	cr_assert_eq(strcspn(c, "\""), 127);
	free(s);
	tb_free(t);
}

Test(rules, udp)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "syslog.example", SE_RES_STATIC, "240.240.0.5");
	tb_ep(tb_port(h, 514, "UDP"), "10.0.0.9", 514, 0);
	char *s = render(t, RULES_FMT_IPTABLES);
	cr_assert_not_null(strstr(s, "-d 240.240.0.5/32 -p udp -m udp --dport 514 "), "%s", s);
	cr_assert_not_null(strstr(s, " -p udp -m udp -j DNAT --to-destination 10.0.0.9:514\n"), "%s", s);
	cr_assert_null(strstr(s, "-p tcp -m tcp"));
	free(s);
	s = render(t, RULES_FMT_NFT);
	cr_assert_not_null(strstr(s, "240.240.0.5 . udp . 514 : goto svc_"), "%s", s);
	cr_assert_not_null(strstr(s, "meta l4proto udp dnat to 10.0.0.9:514"), "%s", s);
	free(s);
	tb_free(t);
}

Test(rules, no_endpoint_rejected_not_dnated)
{
	struct tb *t = seed_no_endpoint();
	char *s = render(t, RULES_FMT_IPTABLES);
	cr_assert_null(strstr(s, "SEDNS-SVC-"), "%s", s);
	cr_assert_not_null(strstr(s, "-A SEDNS-FILTER -d 240.240.0.80/32 -p tcp -m tcp --dport 5000 "
	    "-m comment --comment \"pending.example.internal:5000 has no endpoints\" -j REJECT --reject-with tcp-reset\n"), "%s", s);
	cr_assert_not_null(strstr(s, "--dport 5001 -m comment --comment \"pending.example.internal:5001 has no endpoints\" "
	    "-j REJECT --reject-with icmp-port-unreachable\n"), "%s", s);
	cr_assert_not_null(strstr(s, "-A SEDNS-FILTER -d 240.240.0.80/32 -m comment --comment \"pending.example.internal\" "
	    "-j REJECT --reject-with icmp-port-unreachable\n"), "%s", s);
	free(s);
	tb_free(t);
}

Test(rules, only_vip_hosts_and_ipv4)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "addr.example", SE_RES_STATIC, NULL);
	h->answer = REG_ADDRESSES;
	struct netaddr a1;
	netaddr_parse("10.1.1.1", &a1);
	cr_assert(reg_host_add_addr(h, &a1));
	tb_ep(tb_port(h, 80, "HTTP"), "10.0.0.1", 80, 0);
	h = tb_host(t, "v6.example", SE_RES_STATIC, "fd00::1");
	tb_ep(tb_port(h, 80, "HTTP"), "10.0.0.1", 80, 0);
	h = tb_host(t, "v4.example", SE_RES_STATIC, "240.240.0.3");
	struct reg_port *p = tb_port(h, 80, "HTTP");
	tb_ep(p, "fd00::2", 80, 0);
	tb_ep(p, "10.0.0.2", 80, 0);
	char *s = render(t, RULES_FMT_IPTABLES);
	cr_assert_null(strstr(s, "10.1.1.1"));
	cr_assert_null(strstr(s, "addr.example"));
	cr_assert_null(strstr(s, "v6.example"));
	cr_assert_null(strstr(s, "fd00"));
	cr_assert_eq(count(s, "-j DNAT"), 1, "%s", s);
	cr_assert_eq(count(s, "--probability"), 0);
	free(s);
	tb_free(t);
}

Test(rules, resolution_dedupe_and_sort)
{
	/* a.example.net → .1 .2, b.example.net → .2: three answers, two
	 * endpoints, the shared one carrying both weights */
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "rr.example", SE_RES_DNS_ROUND_ROBIN, "240.240.0.4");
	struct reg_port *p = tb_port(h, 443, "TLS");
	tb_ep(p, "b.example.net", 443, 0);
	tb_ep(p, "a.example.net", 443, 0);
	tb_ep(p, "unknown.example.net", 443, 0);
	char *s = render(t, RULES_FMT_IPTABLES);
	cr_assert_eq(count(s, "-j DNAT"), 2, "%s", s);
	const char *d1 = strstr(s, "--to-destination 192.0.2.1:443");
	const char *d2 = strstr(s, "--to-destination 192.0.2.2:443");
	cr_assert(d1 && d2 && d1 < d2, "%s", s);
	cr_assert_not_null(strstr(s, "--probability 0.3333333333 "), "%s", s);
	free(s);
	/* STATIC entries never resolve hostnames */
	h->resolution = SE_RES_STATIC;
	for (size_t i = 0; i < p->neps; i++)
		((struct serviceentry *)p->eps[i].se)->resolution = SE_RES_STATIC;
	resolve_calls = 0;
	s = render(t, RULES_FMT_IPTABLES);
	cr_assert_eq(resolve_calls, 0);
	cr_assert_eq(count(s, "-j DNAT"), 0);
	free(s);
	tb_free(t);
}

Test(rules, unresolved_host_is_rejected)
{
	struct tb *t = tb_new();
	struct reg_host *h = tb_host(t, "never.example", SE_RES_DNS, "240.240.0.6");
	tb_port(h, 443, "TLS")->resolve_host = true;
	char *s = render(t, RULES_FMT_IPTABLES);
	cr_assert_null(strstr(s, "-j DNAT"));
	cr_assert_not_null(strstr(s, "never.example:443 has no endpoints"), "%s", s);
	free(s);
	s = render(t, RULES_FMT_NFT);
	cr_assert_null(strstr(s, "dnat"));
	cr_assert_not_null(strstr(s, "240.240.0.6"), "%s", s);   /* in @vips */
	free(s);
	tb_free(t);
}

Test(rules, masquerade_and_mark)
{
	struct rules_opts o = { .format = RULES_FMT_IPTABLES, .masquerade = true };
	cr_assert_null(rules_opts_problem(&o));
	o.masq_mark = 0x4000;
	cr_assert_not_null(rules_opts_problem(&o));
	o.masq_mark = 0x8000;
	cr_assert_not_null(rules_opts_problem(&o));
	o.masq_mark = 0x10000;
	cr_assert_not_null(rules_opts_problem(&o));
	o.masq_mark = 0x3000;
	cr_assert_not_null(rules_opts_problem(&o));
	o.masq_mark = 0x1000;
	cr_assert_null(rules_opts_problem(&o));

	struct tb *t = seed_legacy_vms();
	struct rules_buf b = { 0 };
	cr_assert(rules_render(&t->reg, &o, NULL, NULL, &b));
	cr_assert_not_null(strstr(b.data, "-A SEDNS-MARK-MASQ -j MARK --or-mark 0x1000\n"));
	cr_assert_eq(count(b.data, " -j SEDNS-MARK-MASQ\n"), 3);
	cr_assert_not_null(strstr(b.data, "-j MASQUERADE"));
	/* nft: the service rule marks, then DNATs; postrouting masquerades */
	o.format = RULES_FMT_NFT;
	cr_assert(rules_render(&t->reg, &o, NULL, NULL, &b));
	cr_assert_eq(count(b.data, "meta mark set meta mark or 0x1000 dnat to "), 3, "%s", b.data);
	cr_assert_eq(count(b.data, "meta l4proto tcp numgen random mod 3 < 1 meta mark set meta mark or 0x1000 "
	    "dnat to "), 1, "%s", b.data);
	cr_assert_not_null(strstr(b.data, "meta mark & 0x1000 == 0 return\n"), "%s", b.data);
	cr_assert_not_null(strstr(b.data, "\t\tmasquerade\n"), "%s", b.data);
	o.masquerade = false;
	cr_assert(rules_render(&t->reg, &o, NULL, NULL, &b));
	cr_assert_null(strstr(b.data, "mark"), "%s", b.data);
	cr_assert_null(strstr(b.data, "masquerade"), "%s", b.data);
	cr_assert_not_null(strstr(b.data, "meta l4proto tcp numgen random mod 3 < 1 dnat to "), "%s", b.data);
	o.format = RULES_FMT_IPTABLES;
	cr_assert(rules_render(&t->reg, &o, NULL, NULL, &b));
	cr_assert_null(strstr(b.data, "MASQ"));
	o.masq_mark = 0x4000;
	cr_assert_not(rules_render(&t->reg, &o, NULL, NULL, &b));
	rules_buf_free(&b);
	tb_free(t);
}

Test(rules, stale_chains_removed)
{
	/* render knows only what it renders; the applier adds the deletion of
	 * chains the kernel still has (firewall_add_stale_deletions) */
	struct tb *t = seed_weights();
	char svc[RULES_CHAIN_MAX + 1];
	rules_svc_chain("canary.example.internal", 8080, "tcp", svc, sizeof(svc));
	const char *existing[] = { "SEDNS-SERVICES", svc, "SEDNS-SVC-GONEGONEGONEGONE", "KUBE-SVC-X",
		"SEDNS-MARK-MASQ" };
	struct rules_opts o = { .format = RULES_FMT_IPTABLES };
	struct rules_buf b = { 0 };
	cr_assert(rules_render(&t->reg, &o, NULL, NULL, &b));
	cr_assert_eq(count(b.data, "-X "), 0, "render alone deletes nothing");
	char *full = firewall_add_stale_deletions(b.data, existing, 5);
	cr_assert_not_null(full);
	cr_assert_not_null(strstr(full, ":SEDNS-SVC-GONEGONEGONEGONE - [0:0]\n"));
	cr_assert_not_null(strstr(full, "-X SEDNS-SVC-GONEGONEGONEGONE\n"));
	cr_assert_not_null(strstr(full, "-X SEDNS-MARK-MASQ\n"));
	cr_assert_null(strstr(full, "KUBE"), "never someone else's chain");
	cr_assert_eq(count(full, "-X "), 2, "%s", full);
	free(full);
	rules_buf_free(&b);
	tb_free(t);
}

Test(rules, cleanup_payloads)
{
	struct rules_buf b = { 0 };
	const char *existing[] = { "SEDNS-SVC-AAAAAAAAAAAAAAAA", "SEDNS-SERVICES", "OTHER" };
	struct rules_opts o = { .format = RULES_FMT_NFT };
	cr_assert(rules_render_cleanup(&o, &b));
	cr_assert_str_eq(b.data, "table ip sedns {}\ndelete table ip sedns\n");
	o.format = RULES_FMT_IPTABLES;
	o.existing_chains = existing;
	o.nexisting = 3;
	cr_assert(rules_render_cleanup(&o, &b));
	cr_assert_str_eq(b.data,
	    "*nat\n"
	    ":SEDNS-SERVICES - [0:0]\n:SEDNS-MARK-MASQ - [0:0]\n:SEDNS-POSTROUTING - [0:0]\n"
	    ":SEDNS-SVC-AAAAAAAAAAAAAAAA - [0:0]\n"
	    "-X SEDNS-SERVICES\n-X SEDNS-MARK-MASQ\n-X SEDNS-POSTROUTING\n"
	    "-X SEDNS-SVC-AAAAAAAAAAAAAAAA\n"
	    "COMMIT\n*filter\n:SEDNS-FILTER - [0:0]\n-X SEDNS-FILTER\nCOMMIT\n");
	cr_assert(rules_is_own_chain("SEDNS-SEP-X"));
	cr_assert_not(rules_is_own_chain("KUBE-SEP-X"));
	cr_assert_not(rules_is_own_chain(NULL));
	rules_buf_free(&b);
}

Test(rules, buffer_reused_and_reset)
{
	struct tb *t = seed_legacy_vms();
	struct tb *e = tb_new();
	struct rules_buf b = { 0 };
	struct rules_opts o = { .format = RULES_FMT_IPTABLES };
	cr_assert(rules_render(&t->reg, &o, NULL, NULL, &b));
	size_t big = b.len;
	cr_assert(rules_render(&e->reg, &o, NULL, NULL, &b));
	cr_assert_lt(b.len, big);
	cr_assert_eq(strlen(b.data), b.len);
	cr_assert_str_eq(b.data, "*nat\n:SEDNS-SERVICES - [0:0]\nCOMMIT\n*filter\n:SEDNS-FILTER - [0:0]\nCOMMIT\n");
	rules_buf_free(&b);
	tb_free(t);
	tb_free(e);
}

/* "Well under a second" in a normal build; sanitizers cost ~5x. */
#if defined(__SANITIZE_ADDRESS__)
#define PERF_LIMIT_MS 8000.0
#else
#define PERF_LIMIT_MS 800.0
#endif

Test(rules, perf_10k_ports)
{
	struct tb *t = tb_new();
	char name[64];
	for (int i = 0; i < 2500; i++) {
		snprintf(name, sizeof(name), "svc%05d.example.internal", i);
		char vip[32];
		snprintf(vip, sizeof(vip), "240.240.%d.%d", i / 250, i % 250 + 1);
		struct reg_host *h = tb_host(t, name, SE_RES_STATIC, vip);
		for (int k = 0; k < 4; k++) {
			struct reg_port *p = tb_port(h, (uint16_t)(8000 + k), "HTTP");
			tb_ep(p, "10.0.0.1", 8000, 0);
			tb_ep(p, "10.0.0.2", 8000, 0);
			tb_ep(p, "10.0.0.3", 8000, 0);
		}
	}
	for (int f = 0; f < 2; f++) {
		struct rules_buf b = { 0 };
		struct rules_opts o = { .format = f ? RULES_FMT_NFT : RULES_FMT_IPTABLES };
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		cr_assert(rules_render(&t->reg, &o, NULL, NULL, &b));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		cr_assert_lt(ms, PERF_LIMIT_MS, "render took %.1f ms", ms);
		if (f)
			cr_assert_eq(count(b.data, "numgen random mod 3 < 1 dnat to 10.0.0.1:8000 "), 10000);
		else
			cr_assert_eq(count(b.data, "-j DNAT"), 30000);
		rules_buf_free(&b);
	}
	tb_free(t);
}

Test(rules, held_vips_are_rejected)
{
	struct netaddr held[2];
	netaddr_parse("240.240.9.9", &held[0]);
	netaddr_parse("2001:2::9", &held[1]);
	struct rules_opts o;
	memset(&o, 0, sizeof(o));
	o.held = held;
	o.nheld = 2;
	struct rules_buf b;
	memset(&b, 0, sizeof(b));
	cr_assert(rules_render(NULL, &o, NULL, NULL, &b));
	cr_assert_not_null(strstr(b.data, "-A SEDNS-FILTER -d 240.240.9.9/32 -p tcp -m comment --comment "
	    "\"held VIP of a removed host\" -j REJECT --reject-with tcp-reset\n"), "%s", b.data);
	cr_assert_not_null(strstr(b.data, "-A SEDNS-FILTER -d 240.240.9.9/32 -m comment --comment "
	    "\"held VIP of a removed host\" -j REJECT --reject-with icmp-port-unreachable\n"), "%s", b.data);
	cr_assert_null(strstr(b.data, "2001:2::9"), "IPv6 is not rendered");
	o.format = RULES_FMT_NFT;
	cr_assert(rules_render(NULL, &o, NULL, NULL, &b));
	cr_assert_not_null(strstr(b.data, "set vips {\n\t\ttype ipv4_addr\n\t\telements = {\n\t\t\t240.240.9.9\n"), "%s",
	    b.data);
	rules_buf_free(&b);
}

/* a rules_sink_fn collecting the text, failing past limit bytes */
struct sink_buf {
	char *data;
	size_t len, limit;
	size_t calls;
};

static bool
sink_collect(void *arg, const char *data, size_t len)
{
	struct sink_buf *s = arg;
	if (s->len + len > s->limit)
		return false;
	s->data = realloc(s->data, s->len + len + 1);
	cr_assert_not_null(s->data);
	memcpy(s->data + s->len, data, len);
	s->len += len;
	s->data[s->len] = '\0';
	s->calls++;
	return true;
}

Test(rules, streamed_render_is_the_same_text)
{
	/* both write through one mechanism; this checks the hand-over: every
	 * byte passed to the sink once, in order, whatever the piece size
	 * (a printf that straddles a piece, a piece of one byte) */
	struct tb *t = seed_all();
	struct netaddr held[1];
	netaddr_parse("240.240.9.9", &held[0]);
	size_t chunks[] = { 1, 7, 64, 4096, 0 };
	for (int f = 0; f < 2; f++) {
		for (int m = 0; m < 2; m++) {
			struct rules_opts o = { .format = f ? RULES_FMT_NFT : RULES_FMT_IPTABLES, .masquerade = m };
			o.held = held;
			o.nheld = 1;
			struct rules_buf b = { 0 };
			cr_assert(rules_render(&t->reg, &o, fake_resolve, NULL, &b));
			for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
				struct sink_buf s = { .limit = SIZE_MAX };
				size_t len = 0;
				cr_assert(rules_render_to(&t->reg, &o, fake_resolve, NULL, sink_collect, &s, chunks[k], &len));
				cr_assert_eq(len, b.len, "format %d masq %d chunk %zu", f, m, chunks[k]);
				cr_assert_eq(s.len, b.len);
				cr_assert(memcmp(s.data, b.data, b.len) == 0, "format %d masq %d chunk %zu:\n%s", f, m,
				    chunks[k], s.data);
				if (chunks[k] == 64)
					cr_assert_gt(s.calls, b.len / 200, "handed over in pieces, not held");
				free(s.data);
			}
			/* a sink that fails (a full disk) fails the render */
			struct sink_buf s = { .limit = b.len / 2 };
			size_t len = 0;
			cr_assert_not(rules_render_to(&t->reg, &o, fake_resolve, NULL, sink_collect, &s, 64, &len));
			free(s.data);
			rules_buf_free(&b);
		}
	}
	tb_free(t);
}
