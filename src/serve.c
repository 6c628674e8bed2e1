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

#include "forward.h"
#include "loader.h"
#include "log.h"
#include "nametable.h"
#include "server.h"

struct daemon {
	struct config *cfg;
	struct vipstore *vs;
	struct event_base *base;
	struct server *srv;
	struct config_endpoint ups[CONFIG_MAX_LIST];
	size_t nups;
	uint64_t reloads_ok, reloads_failed;
};

/* Upstreams from the config, else resolv.conf; never one of our own
 * listen addresses (that would loop). */
static size_t
pick_upstreams(const struct config *cfg, struct config_endpoint *out)
{
	struct config_endpoint cand[CONFIG_MAX_LIST];
	size_t n;
	const char *src;
	if (cfg->nupstreams) {
		memcpy(cand, cfg->upstreams, cfg->nupstreams * sizeof(cand[0]));
		n = cfg->nupstreams;
		src = "config";
	} else {
		n = forward_read_resolv_conf(cfg->resolv_conf, cand, CONFIG_MAX_LIST);
		src = cfg->resolv_conf;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool self = false;
		for (size_t j = 0; j < cfg->nlisten; j++) {
			const struct config_endpoint *l = &cfg->listen[j];
			bool any = true;
			for (size_t b = 0; b < 16; b++)
				any &= l->addr.a[b] == 0;
			if (l->port == cand[i].port && (netaddr_equal(&l->addr, &cand[i].addr) ||
			    (any && l->addr.family == cand[i].addr.family)))
				self = true;
		}
		char a[NETADDR_STRLEN];
		if (self) {
			log_error("upstream refused: %s port %u (from %s) is our own listen address; forwarding to it "
			    "would loop", netaddr_fmt(&cand[i].addr, a, sizeof(a)), cand[i].port, src);
			continue;
		}
		out[k++] = cand[i];
	}
	if (k == 0)
		log_error("no usable upstream (from %s): forwarded queries will get SERVFAIL", src);
	return k;
}

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
	nametable_free(server_set_table(d->srv, nt));
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
	d.nups = pick_upstreams(cfg, d.ups);
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
	server_set_table(d.srv, nt);
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
	nametable_free(server_set_table(d.srv, NULL));
	server_free(d.srv);
	event_base_free(d.base);
	vipstore_close(d.vs);
	config_free(cfg);
	log_info("stopped");
	return 0;
}
