/* main — command-line dispatch: serve, check, vips, rules, version. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "endpoints.h"
#include "fnv.h"
#include "firewall.h"
#include "loader.h"
#include "tenancy.h"
#include "log.h"
#include "rules.h"
#include "serve.h"
#include "vipstore.h"

#ifndef SEDNS_VERSION
#define SEDNS_VERSION "unknown"
#endif

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: sedns COMMAND [OPTIONS]\n"
	    "\n"
	    "sedns answers Istio ServiceEntry hostnames with stable virtual IPs,\n"
	    "forwards every other DNS query upstream, and renders DNAT rules.\n"
	    "\n"
	    "Commands:\n"
	    "  serve [-n|--check-config] [--reallocate] [OPTIONS]\n"
	    "                     run the DNS server; -n checks the config as serve does (every\n"
	    "                     value, a trial bind of every address: exit 1 if one cannot\n"
	    "                     be bound, 2 on a bad value), prints it and exits\n"
	    "  check [OPTIONS] [PATH...]\n"
	    "                     validate ServiceEntry files/directories as serve loads them\n"
	    "                     (default: the config's serviceentries); unknown fields are\n"
	    "                     errors; exit 0 clean, 1 errors, 2 usage\n"
	    "  vips [--json | --verify] [OPTIONS]\n"
	    "                     list VIP allocations and the hosts a full pool left without\n"
	    "                     one (state no-vip; safe while the daemon runs); --verify\n"
	    "                     checks the store (exit 0 sound, 1 corrupt or unreadable)\n"
	    "  rules [--format iptables|nft|auto] [--apply | --cleanup] [OPTIONS]\n"
	    "                     print the rules the daemon would apply for the current\n"
	    "                     ServiceEntries and VIP store (no store yet: the VIPs a first\n"
	    "                     start would allocate, nothing written); --apply applies them once,\n"
	    "                     --cleanup removes every chain, jump and table sedns owns,\n"
	    "                     in iptables and nft alike (whatever the format)\n"
	    "  version            print the version\n"
	    "\n"
	    "Every command reads its options from -c FILE, else from the file named by the\n"
	    "environment variable SEDNS_CONFIG (e.g. export SEDNS_CONFIG=config/sedns.yaml\n"
	    "beside make run), else from the built-in defaults; flags win over the file.\n"
	    "\n");
	config_usage(out);
}

/* Removes a command-specific flag from argv; returns true if it was there. */
static bool
take_flag(int *argc, char **argv, const char *a, const char *b)
{
	bool found = false;
	int j = 0;
	for (int i = 0; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < *argc)
				argv[j++] = argv[i++];
			break;
		}
		if ((a && strcmp(argv[i], a) == 0) || (b && strcmp(argv[i], b) == 0)) {
			found = true;
			continue;
		}
		argv[j++] = argv[i];
	}
	*argc = j;
	return found;
}

static struct config *
load_config(int argc, char **argv, char ***rest, int *nrest, int *status)
{
	bool help = false;
	struct config *cfg = config_load(argc, argv, stderr, rest, nrest, &help);
	if (cfg != NULL)
		log_set_level((enum log_level)cfg->log_level);
	if (cfg == NULL) {
		if (help) {
			usage(stdout);
			*status = 0;
		} else {
			*status = 2;
		}
	}
	return cfg;
}

static int
cmd_check(int argc, char **argv)
{
	char **rest = NULL;
	int nrest = 0, status = 2;
	struct config *cfg = load_config(argc, argv, &rest, &nrest, &status);
	if (cfg == NULL)
		return status;
	struct se_set set;
	se_set_init(&set);
	if (nrest > 0)
		loader_read(&set, rest, (size_t)nrest, stdout);
	else
		loader_read(&set, cfg->serviceentries, cfg->nserviceentries, stdout);
	size_t nentries = set.nentries, nerr = set.nerrors, nwarn = set.nwarnings, nfiles = set.nfiles;
	loader_note_export_to(cfg, loader_restricted(&set), stdout);
	struct tenancy *t = tenancy_new(cfg->cluster_domain);
	struct registry *reg = t ? registry_build(&set, t) : NULL;
	tenancy_free(t);
	size_t nhosts = 0;
	if (reg == NULL) {
		fprintf(stderr, "error: out of memory\n");
		se_set_free(&set);
		config_free(cfg);
		return 1;
	}
	for (size_t i = 0; i < reg->ndiags; i++) {
		printf("%s: %s\n", reg->diags[i].severity == SE_ERROR ? "error" : "warning", reg->diags[i].message);
		if (reg->diags[i].severity == SE_ERROR)
			nerr++;
		else
			nwarn++;
	}
	nhosts = reg->nhosts;
	printf("%zu files, %zu entries, %zu hosts, %zu errors, %zu warnings\n", nfiles, nentries, nhosts, nerr,
	    nwarn);
	registry_free(reg);
	config_free(cfg);
	return nerr ? 1 : 0;
}

struct list_ctx {
	bool json;
	size_t n;
};

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static bool
print_vip(const struct vip_record *r, void *arg)
{
	struct list_ctx *ctx = arg;
	char v4[NETADDR_STRLEN] = "-", v6[NETADDR_STRLEN] = "-", since[32];
	struct tm tm;
	if (r->has_v4)
		netaddr_fmt(&r->v4, v4, sizeof(v4));
	if (r->has_v6)
		netaddr_fmt(&r->v6, v6, sizeof(v6));
	gmtime_r(&r->since, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const char *state = r->state == VIP_HELD ? "held" : "active";
	if (ctx->json) {
		printf("%s\n  {\"host\": ", ctx->n ? "," : "");
		json_str(r->host);
		printf(", \"vip\": %s%s%s, \"vip6\": %s%s%s, \"state\": \"%s\", \"since\": \"%s\"}",
		    r->has_v4 ? "\"" : "", r->has_v4 ? v4 : "null", r->has_v4 ? "\"" : "",
		    r->has_v6 ? "\"" : "", r->has_v6 ? v6 : "null", r->has_v6 ? "\"" : "", state, since);
	} else {
		if (ctx->n == 0)
			printf("%-50s %-15s %-8s %s%s\n", "HOST", "VIP", "STATE", "SINCE", r->has_v6 ? "  VIP6" : "");
		printf("%-50s %-15s %-8s %s%s%s\n", r->host, v4, state, since, r->has_v6 ? "  " : "",
		    r->has_v6 ? v6 : "");
	}
	ctx->n++;
	return true;
}

/* A host with no VIP: state no-vip (or no-vip6), since = the sync. */
static void
print_exhausted(const struct vip_record *r, const char *state, struct list_ctx *ctx)
{
	char since[32];
	struct tm tm;
	gmtime_r(&r->since, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (ctx->json) {
		printf("%s\n  {\"host\": ", ctx->n ? "," : "");
		json_str(r->host);
		printf(", \"vip\": null, \"vip6\": null, \"state\": \"%s\", \"since\": \"%s\"}", state, since);
	} else {
		if (ctx->n == 0)
			printf("%-50s %-15s %-8s %s\n", "HOST", "VIP", "STATE", "SINCE");
		printf("%-50s %-15s %-8s %s\n", r->host, "-", state, since);
	}
	ctx->n++;
}

struct collect {
	struct vip_record *v;
	size_t n, cap;
};

static bool
collect_vip(const struct vip_record *r, void *arg)
{
	struct collect *c = arg;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 256;
		struct vip_record *nv = realloc(c->v, nc * sizeof(*nv));
		if (nv == NULL)
			return false;
		c->v = nv;
		c->cap = nc;
	}
	c->v[c->n++] = *r;
	return true;
}

/* Read-only open for the commands: the file is verified in a child first,
 * so a corrupt store is an error message, never a crash of `sedns vips`. */
static struct vipstore *
open_store_checked(const struct config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, VIPSTORE_FILE);
	if (stat(path, &st) == 0 && st.st_size > 0 && !vipstore_check_file(cfg->state_dir, err, errlen))
		return NULL;
	return loader_open_store(cfg, true, false, NULL, err, errlen);
}

static int
cmd_vips(int argc, char **argv)
{
	bool verify = take_flag(&argc, argv, "--verify", NULL);
	bool json = take_flag(&argc, argv, "--json", NULL);
	int status = 2;
	struct config *cfg = load_config(argc, argv, NULL, NULL, &status);
	if (cfg == NULL)
		return status;
	char err[512];
	struct vipstore *vs = open_store_checked(cfg, err, sizeof(err));
	if (vs == NULL) {
		fprintf(stderr, "error: %s\n", err);
		if (verify)
			fprintf(stderr, "note: to recover: stop sedns, move %s/%s aside and copy its backup %s/%s%s in "
			    "its place, then run sedns vips --verify again\n", cfg->state_dir, VIPSTORE_FILE,
			    cfg->state_dir, VIPSTORE_FILE, VIPSTORE_BACKUP_SUFFIX);
		config_free(cfg);
		return 1;
	}
	if (verify) {
		struct vipstore_stats st;
		bool ok = vipstore_stats(vs, &st);
		printf("%s/%s: ok: %llu active, %llu held, pool of %llu\n", cfg->state_dir, VIPSTORE_FILE,
		    ok ? (unsigned long long)st.active : 0ULL, ok ? (unsigned long long)st.held : 0ULL,
		    (unsigned long long)vipstore_pool_size(vs));
		vipstore_close(vs);
		config_free(cfg);
		return 0;
	}
	/* copied out first, printed after the read transaction: a reader
	 * that dies of SIGPIPE (`sedns vips | head`) must not do it inside
	 * the transaction, where it would pin the store's old pages */
	struct collect c = { NULL, 0, 0 };
	bool ok = vipstore_list(vs, collect_vip, &c, err, sizeof(err));
	char *ex = NULL;
	uint64_t ex_total = 0;
	time_t ex_when = 0;
	size_t nex = ok ? vipstore_exhausted(vs, &ex, &ex_total, &ex_when) : 0;
	char pool[NETPREFIX_STRLEN] = "";
	if (nex > 0) {
		/* read-only open adopts the pool recorded in the store */
		struct vipstore_stats st;
		vipstore_stats(vs, &st);
		snprintf(pool, sizeof(pool), "%llu addresses", (unsigned long long)st.pool_size);
	}
	vipstore_close(vs);
	vs = NULL;
	struct list_ctx ctx = { json, 0 };
	if (json)
		printf("[");
	for (size_t i = 0; ok && i < c.n; i++)
		print_vip(&c.v[i], &ctx);
	/* hosts the last sync left without a VIP: the pool was full */
	const char *name = ex;
	for (size_t i = 0; i < nex; i++, name += strlen(name) + 1) {
		struct vip_record r;
		memset(&r, 0, sizeof(r));
		snprintf(r.host, sizeof(r.host), "%s", name);
		r.since = ex_when;
		/* one with a record still has its IPv4 VIP: it lacks the v6 one */
		bool has_record = false;
		for (size_t j = 0; j < c.n && !has_record; j++)
			has_record = strcmp(c.v[j].host, name) == 0;
		print_exhausted(&r, has_record ? "no-vip6" : "no-vip", &ctx);
	}
	free(c.v);
	free(ex);
	if (json)
		printf("%s]\n", ctx.n ? "\n" : "");
	if (nex > 0)
		fprintf(stderr, "sedns: %llu host(s) got no VIP at the last sync: the pool (%s) is full; they are "
		    "forwarded until addresses are free%s\n", (unsigned long long)ex_total, pool,
		    ex_total > nex ? " (the first ones listed)" : "");
	if (!ok)
		fprintf(stderr, "error: %s\n", err);
	config_free(cfg);
	return ok ? 0 : 1;
}

/* Takes "--NAME VALUE" or "--NAME=VALUE" out of argv; NULL if absent.
 * *missing is set when --NAME is the last argument (no value). */
static const char *
take_value(int *argc, char **argv, const char *name, bool *missing)
{
	const char *val = NULL;
	size_t nl = strlen(name);
	int j = 0;
	*missing = false;
	for (int i = 0; i < *argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			if (i + 1 < *argc)
				val = argv[++i];
			else
				*missing = true;
			continue;
		}
		if (strncmp(argv[i], name, nl) == 0 && argv[i][nl] == '=') {
			val = argv[i] + nl + 1;
			continue;
		}
		argv[j++] = argv[i];
	}
	*argc = j;
	return val;
}

/* A name's answer, kept for the rest of the render. */
struct memo {
	char *name;                     /* NULL: empty slot */
	struct netaddr *a;
	size_t n;
};

struct blocking_resolver {
	struct config_endpoint ups[CONFIG_MAX_LIST];
	size_t nups;
	struct fwd_zone_spec zones[FWD_MAX_ZONES];
	size_t nzones;
	uint64_t timeout_ms;
	struct memo *memo;              /* open addressing, load <= 1/2 */
	size_t memo_cap, memo_n;
};

static struct memo *
memo_slot(struct memo *m, size_t cap, const char *name)
{
	size_t i = (size_t)fnv64(FNV64_INIT, name, strlen(name)) & (cap - 1);
	while (m[i].name != NULL && strcmp(m[i].name, name) != 0)
		i = (i + 1) & (cap - 1);
	return &m[i];
}

/* Room for one more name; false on out of memory. */
static bool
memo_reserve(struct blocking_resolver *r)
{
	if ((r->memo_n + 1) * 2 <= r->memo_cap)
		return true;
	size_t cap = r->memo_cap ? r->memo_cap * 2 : 64;
	struct memo *m = calloc(cap, sizeof(*m));
	if (m == NULL)
		return false;
	for (size_t i = 0; i < r->memo_cap; i++)
		if (r->memo[i].name != NULL)
			*memo_slot(m, cap, r->memo[i].name) = r->memo[i];
	free(r->memo);
	r->memo = m;
	r->memo_cap = cap;
	return true;
}

static void
memo_free(struct blocking_resolver *r)
{
	for (size_t i = 0; i < r->memo_cap; i++) {
		free(r->memo[i].name);
		free(r->memo[i].a);
	}
	free(r->memo);
}

/*
 * Through the name's forward zone, as the daemon resolves it, each name
 * once: a render asks again in every pass over the registry (and for every
 * port), and its passes must see one answer, as the daemon's snapshot
 * gives (a round-robin answer that changed between passes would make a map
 * element point at a chain never written).
 */
static size_t
resolve_blocking(void *arg, const char *name, struct netaddr *out, size_t max)
{
	struct blocking_resolver *r = arg;
	struct memo *m = memo_reserve(r) ? memo_slot(r->memo, r->memo_cap, name) : NULL;
	if (m != NULL && m->name != NULL) {
		size_t n = m->n < max ? m->n : max;
		memcpy(out, m->a, n * sizeof(*out));
		return n;
	}
	const struct fwd_zone_spec *z = fwd_zone_pick(r->zones, r->nzones, name);
	size_t n = z ? endpoints_resolve_blocking(z->ups, z->nups, r->timeout_ms, name, out, max) : 0;
	if (m != NULL && (m->name = strdup(name)) != NULL) {
		m->a = n ? malloc(n * sizeof(*m->a)) : NULL;
		m->n = m->a ? n : 0;
		if (m->a)
			memcpy(m->a, out, n * sizeof(*out));
		r->memo_n++;
	}
	return n;
}

/* The VIP store file exists (it may still be corrupt: the open says). */
static bool
store_exists(const struct config *cfg)
{
	char path[PATH_MAX + 16];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, VIPSTORE_FILE);
	return stat(path, &st) == 0 || errno != ENOENT;
}

/* Removes a scratch store directory (its files first); "" is a no-op. */
static void
remove_scratch(const char *dir)
{
	if (dir[0] == '\0')
		return;
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *e;
		char p[PATH_MAX + 256];
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* A writable store in a new temporary directory, with cfg's pools: what a
 * first start would allocate, without creating the real one. dir receives
 * the directory (for remove_scratch). */
static struct vipstore *
open_scratch_store(const struct config *cfg, char *dir, size_t dirlen, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, dirlen, "%s/sedns-rules-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		snprintf(err, errlen, "cannot create a scratch directory %s: %s", dir, strerror(errno));
		dir[0] = '\0';
		return NULL;
	}
	struct config scfg = *cfg;
	scfg.state_dir = dir;
	return loader_open_store(&scfg, false, false, NULL, err, errlen);
}

static int
cmd_rules(int argc, char **argv)
{
	bool no_format = false;
	const char *format = take_value(&argc, argv, "--format", &no_format);
	if (no_format) {
		fprintf(stderr, "error: --format needs a value (iptables, nft or auto)\n");
		return 2;
	}
	bool cleanup = take_flag(&argc, argv, "--cleanup", NULL);
	bool apply = take_flag(&argc, argv, "--apply", NULL);
	int status = 2;
	struct config *cfg = load_config(argc, argv, NULL, NULL, &status);
	if (cfg == NULL)
		return status;
	if (format) {
		if (strcmp(format, "iptables") == 0) {
			cfg->rules_format = RULES_FMT_IPTABLES;
		} else if (strcmp(format, "nft") == 0) {
			cfg->rules_format = RULES_FMT_NFT;
		} else if (strcmp(format, "auto") == 0) {
			cfg->rules_format = (uint64_t)config_auto_format(NULL);
		} else {
			fprintf(stderr, "error: --format: \"%s\" is not one of iptables, nft, auto\n", format);
			config_free(cfg);
			return 2;
		}
	}
	char err[4096];
	firewall_set_timeout((unsigned)(cfg->rules_apply_timeout_ms / 1000));
	if (cleanup) {
		char pool[NETPREFIX_STRLEN];
		netprefix_fmt(&cfg->vip_pool, pool, sizeof(pool));
		/* every format, whatever the config says now: rules applied
		 * under another rules.format must not outlive sedns */
		static const struct { int fmt; const char *tool, *name; } fw[] = {
			{ RULES_FMT_IPTABLES, "iptables-restore", "iptables" },
			{ RULES_FMT_NFT, "nft", "nft" },
		};
		bool ok = true, any = false;
		for (size_t i = 0; i < sizeof(fw) / sizeof(fw[0]); i++) {
			if (!firewall_tool_present(fw[i].tool))
				continue;
			any = true;
			if (!firewall_cleanup(fw[i].fmt, pool, err, sizeof(err))) {
				fprintf(stderr, "error: cleanup (%s) failed: %s\n", fw[i].name, err);
				ok = false;
			}
		}
		if (!any) {
			fprintf(stderr, "error: cleanup: neither iptables-restore nor nft is installed\n");
			ok = false;
		}
		config_free(cfg);
		return ok ? 0 : 1;
	}
	/* sedns never ran here: render with the VIPs a first start would
	 * allocate (the same hash, in a scratch store), the real one untouched */
	char scratch[PATH_MAX] = "";
	bool fresh = !store_exists(cfg);
	if (fresh && apply) {
		fprintf(stderr, "error: no VIP store at %s/%s: --apply needs the VIPs sedns serves; start sedns serve "
		    "first (sedns rules without --apply shows what it would render)\n", cfg->state_dir, VIPSTORE_FILE);
		config_free(cfg);
		return 1;
	}
	struct vipstore *vs = fresh ? open_scratch_store(cfg, scratch, sizeof(scratch), err, sizeof(err)) :
	    open_store_checked(cfg, err, sizeof(err));
	if (vs == NULL) {
		fprintf(stderr, "error: %s\n", err);
		remove_scratch(scratch);
		config_free(cfg);
		return 1;
	}
	if (fresh)
		fprintf(stderr, "note: no VIP store at %s/%s (sedns never ran here): these rules use the VIPs a first "
		    "start would allocate; nothing was written there\n", cfg->state_dir, VIPSTORE_FILE);
	struct registry *reg = loader_build(cfg, vs, fresh, time(NULL), stderr, NULL, err, sizeof(err));
	struct netaddr *held = NULL;
	size_t nheld = vipstore_held(vs, &held);
	vipstore_close(vs);
	remove_scratch(scratch);
	if (reg == NULL) {
		fprintf(stderr, "error: %s\n", err);
		free(held);
		config_free(cfg);
		return 1;
	}
	struct blocking_resolver br;
	memset(&br, 0, sizeof(br));
	br.nups = loader_upstreams(cfg, br.ups);
	br.nzones = loader_zone_specs(cfg, br.ups, br.nups, br.zones);
	br.timeout_ms = cfg->upstream_timeout_ms;
	struct rules_opts o;
	memset(&o, 0, sizeof(o));
	o.format = (enum rules_format)cfg->rules_format;
	o.masquerade = cfg->rules_masquerade;
	o.masq_mark = (uint32_t)cfg->rules_masq_mark;
	o.held = held;
	o.nheld = nheld;
	struct rules_buf b;
	memset(&b, 0, sizeof(b));
	int rc = 0;
	if (!rules_render(reg, &o, resolve_blocking, &br, &b)) {
		const char *why = rules_opts_problem(&o);
		fprintf(stderr, "error: cannot render rules: %s\n", why ? why : "out of memory");
		rc = 1;
	} else if (apply) {
		char pool[NETPREFIX_STRLEN];
		netprefix_fmt(&cfg->vip_pool, pool, sizeof(pool));
		if (!firewall_apply((int)cfg->rules_format, b.data, b.len, false, cfg->rules_masquerade, pool, err, sizeof(err))) {
			fprintf(stderr, "error: apply failed: %s\n", err);
			rc = 1;
		}
	} else {
		fwrite(b.data, 1, b.len, stdout);
	}
	rules_buf_free(&b);
	memo_free(&br);
	free(held);
	registry_free(reg);
	config_free(cfg);
	return rc;
}

static int
cmd_serve(int argc, char **argv)
{
	bool check_only = take_flag(&argc, argv, "-n", "--check-config");
	struct serve_opts opts = { .reallocate = take_flag(&argc, argv, "--reallocate", NULL) };
	opts.argc = argc;
	opts.argv = argv;
	int status = 2;
	struct config *cfg = load_config(argc, argv, NULL, NULL, &status);
	if (cfg == NULL)
		return status;
	if (check_only) {
		/* what serve would bind, bound the same way: a config that
		 * cannot start does not pass the pre-check */
		int rc = serve_check(cfg, stderr);
		config_print(cfg, stdout);
		config_free(cfg);
		return rc;
	}
	return serve_run(cfg, &opts);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	argc -= 2;
	argv += 2;
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc, argv);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc, argv);
	if (strcmp(cmd, "vips") == 0)
		return cmd_vips(argc, argv);
	if (strcmp(cmd, "rules") == 0)
		return cmd_rules(argc, argv);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("sedns %s\n", SEDNS_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "error: unknown command \"%s\"\n\n", cmd);
	usage(stderr);
	return 2;
}
