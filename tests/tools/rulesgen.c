/*
 * rulesgen — renders rules for ServiceEntry YAML, for the rule syntax test.
 *
 *   rulesgen [-n] [-m] [-c] [-e FILE] PATH...
 *     -n       nft instead of iptables-restore text
 *     -m       masquerade on
 *     -c       print the cleanup payload instead of the rules
 *     -e FILE  existing sedns nat chains, one per line (stale removal /
 *              cleanup), as iptables-save lists them
 *
 * Every host that wants a VIP gets a fake one, 240.240.0.1 upwards in host
 * order (no VIP store). Hostnames "resolve" to two addresses in
 * 198.18.0.0/15 derived from the name, so output is deterministic.
 *
 * Build: cc -Iinclude src/log.c src/netaddr.c src/serviceentry.c
 *        src/registry.c src/bigmem.c src/vipstore.c src/rules.c tests/tools/rulesgen.c
 *        $(pkg-config --cflags --libs yaml-0.1 lmdb ldns)
 * Exit status: 0 ok, 1 render failed, 2 usage or load error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netaddr.h"
#include "registry.h"
#include "firewall.h"
#include "rules.h"
#include "serviceentry.h"

#define MAX_EXISTING 100000

static size_t	fake_resolve(void *, const char *, struct netaddr *, size_t);
static size_t	read_lines(const char *, char **, size_t);
static void	usage(void) __attribute__((noreturn));

static size_t
fake_resolve(void *arg, const char *hostname, struct netaddr *out, size_t max)
{
	uint32_t h = 2166136261u;
	(void)arg;
	for (const char *p = hostname; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	size_t n = 0;
	for (uint32_t k = 0; k < 2 && n < max; k++, n++) {
		memset(&out[n], 0, sizeof(out[n]));
		out[n].family = AF_INET;
		out[n].a[0] = 198;
		out[n].a[1] = (uint8_t)(18 + (h & 1));
		out[n].a[2] = (uint8_t)(h >> 8);
		out[n].a[3] = (uint8_t)(((h >> 16) + k) % 254 + 1);
	}
	return n;
}

static size_t
read_lines(const char *path, char **out, size_t max)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t n = 0;
	if (f == NULL) {
		perror(path);
		exit(2);
	}
	while (n < max && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] && (out[n] = strdup(line)) != NULL)
			n++;
	}
	fclose(f);
	return n;
}

static void
usage(void)
{
	fprintf(stderr, "usage: rulesgen [-n] [-m] [-c] [-e FILE] PATH...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct rules_opts o = { .format = RULES_FMT_IPTABLES };
	bool cleanup = false;
	static char *existing[MAX_EXISTING];
	size_t nexisting = 0;
	int ch;

	while ((ch = getopt(argc, argv, "nmce:")) != -1) {
		switch (ch) {
		case 'n': o.format = RULES_FMT_NFT; break;
		case 'm': o.masquerade = true; break;
		case 'c': cleanup = true; break;
		case 'e': nexisting = read_lines(optarg, existing, MAX_EXISTING); break;
		default: usage();
		}
	}
	o.existing_chains = (const char *const *)existing;
	o.nexisting = nexisting;

	struct rules_buf b = { 0 };
	if (cleanup) {
		if (!rules_render_cleanup(&o, &b))
			return 1;
		fputs(b.data, stdout);
		rules_buf_free(&b);
		return 0;
	}
	if (optind >= argc)
		usage();

	struct se_set set;
	se_set_init(&set);
	for (int i = optind; i < argc; i++)
		if (!se_load_path(&set, argv[i])) {
			fprintf(stderr, "rulesgen: cannot read %s\n", argv[i]);
			return 2;
		}
	struct registry *reg = registry_build(&set, NULL);
	if (reg == NULL) {
		fprintf(stderr, "rulesgen: out of memory\n");
		return 2;
	}
	unsigned next = 1;
	for (size_t i = 0; i < reg->nhosts; i++) {
		struct reg_host *h = &reg->hosts[i];
		if (!h->wants_vip || h->answer != REG_FORWARD)
			continue;
		struct netaddr va;
		memset(&va, 0, sizeof(va));
		va.family = AF_INET;
		va.a[0] = 240;
		va.a[1] = 240;
		va.a[2] = (uint8_t)(next >> 8);
		va.a[3] = (uint8_t)next;
		if (!reg_host_add_addr(h, &va))
			return 1;
		h->answer = REG_VIP;
		next++;
	}
	bool ok = rules_render(reg, &o, fake_resolve, NULL, &b);
	if (ok && nexisting > 0 && o.format == RULES_FMT_IPTABLES) {
		/* what the applier does with the chains the kernel has */
		char *full = firewall_add_stale_deletions(b.data, (const char *const *)existing, nexisting);
		ok = full != NULL;
		if (ok)
			fputs(full, stdout);
		free(full);
	} else if (ok) {
		fputs(b.data, stdout);
	}
	else
		fprintf(stderr, "rulesgen: render failed: %s\n",
		    rules_opts_problem(&o) ? rules_opts_problem(&o) : "out of memory");
	rules_buf_free(&b);
	registry_free(reg);
	for (size_t i = 0; i < nexisting; i++)
		free(existing[i]);
	return ok ? 0 : 1;
}
