/* serve — see include/serve.h. */
#include "serve.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "endpoints.h"
#include "forward.h"
#include "loader.h"
#include "log.h"
#include "nametable.h"
#include "rulesync.h"
#include "server.h"

struct daemon {
	struct config *cfg;
	struct vipstore *vs;
	struct event_base *base;
	struct server *srv;
	struct endpoints *ep;
	struct rulesync *rs;
	struct config_endpoint ups[CONFIG_MAX_LIST];
	size_t nups;
	uint64_t reloads_ok, reloads_failed;
};

static struct nametable *
build_table(struct daemon *d, struct load_summary *sum)
{
	char err[512];
	struct registry *reg = loader_build(d->cfg, d->vs, true, time(NULL), stderr, sum, err, sizeof(err));
	if (reg == NULL) {
		log_error("load failed: %s", err);
		return NULL;
	}
	struct nametable *nt = nametable_build(reg, d->cfg->cluster_domain, d->cfg->search_suffixes,
	    d->cfg->nsearch_suffixes);
	if (nt == NULL) {
		registry_free(reg);
		log_error("load failed: out of memory building the name table");
	}
	return nt;
}

/* Swaps the new table in, then points the endpoint resolver and the rule
 * sync at its registry before the old table (and registry) is freed. */
static void
install_table(struct daemon *d, struct nametable *nt)
{
	struct nametable *old = server_set_table(d->srv, nt);
	const struct registry *reg = nametable_registry(nt);
	endpoints_track_registry(d->ep, reg);
	rulesync_mark(d->rs, reg);
	nametable_free(old);
}

static void
endpoints_changed(void *arg)
{
	struct daemon *d = arg;
	rulesync_mark(d->rs, NULL);
}

static void
reload(struct daemon *d)
{
	struct load_summary sum;
	struct nametable *nt = build_table(d, &sum);
	if (nt == NULL) {
		d->reloads_failed++;
		log_error("reload failed; still serving the previous table");
		return;
	}
	install_table(d, nt);
	d->reloads_ok++;
	log_info("reloaded files=%zu entries=%zu hosts=%zu vips=%zu errors=%zu warnings=%zu", sum.files, sum.entries,
	    sum.hosts, sum.vips, sum.errors, sum.warnings);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading");
		reload(d);
		return;
	}
	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(d->base, NULL);
}

int
serve_run(struct config *cfg, const struct serve_opts *opts)
{
	struct daemon d;
	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	char err[512];
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(cfg->state_dir, 0750) < 0 && errno != EEXIST)
		fatal("cannot create state_dir %s", cfg->state_dir);
	d.vs = loader_open_store(cfg, false, opts->reallocate, err, sizeof(err));
	if (d.vs == NULL)
		fatalx("%s", err);
	d.nups = loader_upstreams(cfg, d.ups);
	struct load_summary sum;
	struct nametable *nt = build_table(&d, &sum);
	if (nt == NULL)
		fatalx("cannot build the first name table");
	d.base = event_base_new();
	if (d.base == NULL)
		fatalx("event_base_new failed");
	d.srv = server_new(d.base, cfg, d.ups, d.nups, err, sizeof(err));
	if (d.srv == NULL)
		fatalx("%s", err);
	d.ep = endpoints_new(d.base, d.ups, d.nups, cfg->upstream_timeout_ms, cfg->endpoint_min_ttl_ms,
	    cfg->endpoint_max_ttl_ms, endpoints_changed, &d);
	d.rs = rulesync_new(d.base, cfg, d.ep);
	if (d.ep == NULL || d.rs == NULL)
		fatalx("out of memory");
	install_table(&d, nt);
	struct event *sigs[3];
	int signums[3] = { SIGHUP, SIGTERM, SIGINT };
	for (int i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(d.base, signums[i], signal_cb, &d);
		event_add(sigs[i], NULL);
	}
	char la[NETADDR_STRLEN], ua[256] = "";
	for (size_t i = 0; i < d.nups; i++) {
		char a[NETADDR_STRLEN];
		size_t l = strlen(ua);
		snprintf(ua + l, sizeof(ua) - l, "%s%s:%u", i ? "," : "", netaddr_fmt(&d.ups[i].addr, a, sizeof(a)),
		    d.ups[i].port);
	}
	log_info("sedns %s serving listen=%s:%u%s files=%zu entries=%zu hosts=%zu vips=%zu errors=%zu warnings=%zu "
	    "upstreams=%s", SEDNS_VERSION, netaddr_fmt(&cfg->listen[0].addr, la, sizeof(la)), cfg->listen[0].port,
	    cfg->nlisten > 1 ? ",..." : "", sum.files, sum.entries, sum.hosts, sum.vips, sum.errors, sum.warnings,
	    d.nups ? ua : "none");
	event_base_dispatch(d.base);
	for (int i = 0; i < 3; i++)
		event_free(sigs[i]);
	rulesync_free(d.rs);
	endpoints_free(d.ep);
	nametable_free(server_set_table(d.srv, NULL));
	server_free(d.srv);
	event_base_free(d.base);
	vipstore_close(d.vs);
	config_free(cfg);
	log_info("stopped");
	return 0;
}
