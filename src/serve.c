/* serve — see include/serve.h. */
#include "serve.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bgjob.h"
#include "endpoints.h"
#include "fnv.h"
#include "forward.h"
#include "http.h"
#include "loader.h"
#include "log.h"
#include "monotime.h"
#include "metrics.h"
#include "nametable.h"
#include "notify.h"
#include "rules.h"
#include "rulesync.h"
#include "server.h"
#include "statelock.h"
#include "vipstore.h"
#include "watch.h"
#include "workloads.h"
#include "kube.h"

struct daemon {
	struct config *cfg;
	FILE *diag;                     /* diagnostics of config and loader:
	                                   log_stream(), so they get the log's
	                                   stamp, priority and format */
	const struct serve_opts *opts;
	struct vipstore *vs;
	struct event_base *base;
	struct server *srv;
	struct endpoints *ep;
	struct rulesync *rs;
	struct watch *watch;
	struct http *http;
	struct http *debug_http;        /* debug_listen, when set */
	struct event *watchdog;
	struct loader_cache cache;
	struct config_endpoint ups[CONFIG_MAX_LIST];
	size_t nups;
	struct load_summary sum;
	uint64_t reloads_ok, reloads_failed;
	double start_time;
	bool ready;
	char last_error[256];           /* the last reload's failure, "" when ok */
	struct event *stop_ev;          /* polls the drain on SIGTERM */
	double stop_deadline;
	bool stopping;
	/* the VIP store's durability: see build_table and open_store */
	int lock_fd;                    /* the state lock, -1 in standby */
	bool standby;                   /* another sedns holds the lock */
	bool vs_ro;                     /* d->vs was opened read-only */
	char store_ro[512];             /* why the store is not written now;
	                                   "" when it is */
	uint64_t store_write_failures;
	struct event *lock_ev;          /* standby: polls the lock */
	struct event *retry_ev;         /* store_ro: tries writing again */
	struct event *backup_ev;        /* the next backup, when too soon */
	double last_backup;             /* monotime of the last attempt */
	time_t last_backup_ok;          /* wall time of the last good one */
	uint64_t backup_gen;            /* store generation backed up */
	uint64_t backups_ok, backups_failed;
	/* the reload in flight on the build thread */
	struct build *building;
	struct bgjob *builder;
	struct bgjob *backuper;         /* the VIP store backup beside the loop */
	bool bk_ok;                     /* the running backup's result */
	char bk_err[512];
	uint64_t bk_gen;
	uint64_t input_fp;              /* of the installed table's input files */
	size_t nheld;                   /* VIPs on hold in the installed table */
	bool have_input_fp;
	bool reload_pending, reload_reread;
	/* the Kubernetes API as a source (kube.h), or NULL */
	struct kube *kube;
	bool kube_applied;              /* a table with its first LISTs is in */
};

#define STORE_RETRY_SECONDS 30
#define SERVE_MMAP_THRESHOLD (256 * 1024)
#define BACKUP_MIN_SECONDS 60
#define BACKUP_FIRST_SECONDS 2
#define LOCK_POLL_MS 1000

static void reload(struct daemon *, bool);
static bool config_same(const struct config *, const struct config *);
static void build_job(void *);
static void build_done(void *);



/* On the backup thread: the copy and its fsync (10-25 ms at 50k hosts)
 * never stall the query loop. LMDB lets this read beside a build's write. */
static void
backup_job(void *arg)
{
	struct daemon *d = arg;
	d->bk_ok = vipstore_backup(d->vs, d->bk_err, sizeof(d->bk_err));
}

static void
backup_done(void *arg)
{
	struct daemon *d = arg;
	if (!d->bk_ok) {
		d->backups_failed++;
		log_warnx("%s; the previous backup stays", d->bk_err);
	} else {
		d->backups_ok++;
		d->backup_gen = d->bk_gen;
		d->last_backup_ok = time(NULL);
		log_debug("VIP store backup written (generation %llu, %.1f ms, beside the loop)",
		    (unsigned long long)d->bk_gen, (monotime_now() - d->last_backup) * 1000);
	}
	/* a reload that waited for the copy */
	if (d->reload_pending && d->building == NULL && !d->stopping) {
		bool reread = d->reload_reread;
		d->reload_pending = d->reload_reread = false;
		reload(d, reread);
	}
}

/* A compact copy after a change, at most once a minute: the way back from
 * a corrupt or lost vips.mdb. */
static void
backup_now(struct daemon *d)
{
	uint64_t gen = vipstore_generation(d->vs);
	if (gen == d->backup_gen || d->vs_ro || d->stopping)
		return;
	if (bgjob_busy(d->backuper) || d->building != NULL) {
		struct timeval tv = { 1, 0 };
		evtimer_add(d->backup_ev, &tv);
		return;
	}
	d->last_backup = monotime_now();
	d->bk_gen = gen;
	bgjob_start(d->backuper, backup_job, d);
}

static void
backup_cb(evutil_socket_t fd, short what, void *arg)
{
	backup_now(arg);
}

static void
backup_soon(struct daemon *d)
{
	if (evtimer_pending(d->backup_ev, NULL))
		return;
	double wait = d->last_backup + BACKUP_MIN_SECONDS - monotime_now();
	/* the first one waits for the start to finish: its copy and fsync
	 * must not delay the first answers (a socket-activated restart has
	 * queries queued) */
	if (d->last_backup == 0)
		wait = BACKUP_FIRST_SECONDS;
	else if (wait <= 0) {
		backup_now(d);
		return;
	}
	struct timeval tv = monotime_tv((uint64_t)(wait * 1000) + 1);
	evtimer_add(d->backup_ev, &tv);
}

/* Returns the free pages of every heap to the system: a build's scratch
 * (the parse threads' sets, the index tables) and a replaced table are
 * freed in pieces that glibc would otherwise keep resident in the arenas
 * that held them. */
static void
trim_heap(const char *what)
{
	double t = monotime_now();
	malloc_trim(0);
	log_debug("heap trimmed after %s (%.1f ms)", what, (monotime_now() - t) * 1000);
}

/* Builds a table: VIPs allocated in a write transaction left open for the
 * commit below (allocate), or only looked up (the store cannot be written
 * now). NULL with err on failure; the store is then unchanged. */
static struct nametable *
build_table_mode(struct daemon *d, const struct config *cfg, const struct kube_snapshot *ks, bool allocate,
    struct load_summary *sum, char *err, size_t errlen)
{
	struct registry *reg = loader_build_docs(cfg, d->vs, allocate, &d->cache, ks ? ks->docs : NULL,
	    ks ? ks->ndocs : 0, time(NULL), d->diag, sum, err, errlen);
	if (reg == NULL)
		return NULL;
	struct workloads *wl = NULL;
	if (cfg->nworkloads || (ks && ks->pods_on)) {
		size_t npods = 0, nerr = 0;
		wl = cfg->nworkloads ? workloads_load(cfg->workloads, cfg->nworkloads, d->diag, &npods, &nerr) :
		    workloads_new();
		/* the files' pods first: an IP in both keeps the file's namespace */
		if (wl && ks)
			npods += kube_snapshot_pods(ks, wl);
		if (wl == NULL) {
			registry_free(reg);
			vipstore_abort(d->vs);
			snprintf(err, errlen, "out of memory reading workloads; the VIP store is unchanged");
			return NULL;
		}
		sum->errors += nerr;
		log_info("workloads pods=%zu ips=%zu errors=%zu", npods, workloads_count(wl), nerr);
	}
	double tn = monotime_now();
	size_t nhosts = reg->nhosts;
	struct nametable *nt = nametable_build(reg, cfg->cluster_domain, cfg->search_suffixes,
	    cfg->nsearch_suffixes, wl);
	if (nt == NULL) {
		registry_free(reg);
		workloads_free(wl);
		vipstore_abort(d->vs);
		snprintf(err, errlen, "out of memory building the name table; the VIP store is unchanged");
		return NULL;
	}
	log_debug("load: name table hosts=%zu entries=%zu duration_ms=%.1f", nhosts, nametable_size(nt),
	    (monotime_now() - tn) * 1000);
	/* the VIP store's changes land only with a table that can serve them */
	if (!vipstore_commit(d->vs, err, errlen)) {
		nametable_free(nt);
		return NULL;
	}
	vipstore_trim(d->vs);
	trim_heap("build");
	return nt;
}

/* One table build. Set up on the loop; run on the build thread (a reload)
 * or inline (the start); settled and installed on the loop. While it runs
 * the thread owns the loader cache and the store's write transaction; the
 * loop keeps answering from the installed table. */
struct build {
	struct config *cfg;             /* to build with: nc, or the live one */
	struct config *nc;              /* a re-read config (owned), or NULL */
	struct kube_snapshot *ks;       /* the API's objects (owned), or NULL */
	bool config_failed;             /* re-reading it failed */
	bool allocate;                  /* the store can be written */
	bool may_skip;                  /* same config, nothing pending: an
	                                   unchanged input needs no build.
	                                   Never with VIPs on hold or a full
	                                   pool: only a build releases an
	                                   expired hold */
	uint64_t prev_fp;               /* the installed table's input */
	double t0;
	/* results */
	struct nametable *nt;
	struct netaddr *held;           /* VIPs on hold after the sync */
	size_t nheld;
	struct load_summary sum;
	bool disk_failed;               /* allocating failed for the disk: nt
	                                   was built from lookups */
	char disk_err[512];
	char err[512];
	uint64_t fp;                    /* of the input this build read */
	bool have_fp;
	bool unchanged;                 /* skipped: same input as installed */
};

/* a field, then a byte no text holds as the separator */
static uint64_t
fp_bytes(uint64_t h, const char *p, size_t n)
{
	return fnv64(fnv64(h, p, n), "\xff", 1);
}

/* The API's objects as the build reads them (0 without the API): a watch
 * event that changed nothing sedns reads is not a reason to rebuild. */
static uint64_t
kube_fp(const struct kube_snapshot *ks)
{
	if (ks == NULL)
		return 0;
	uint64_t h = FNV64_INIT;
	h = fp_bytes(h, ks->synced ? "s" : "u", 1);
	h = fp_bytes(h, ks->pods_on ? "p" : "-", 1);
	for (size_t i = 0; i < ks->ndocs; i++) {
		h = fp_bytes(h, ks->docs[i].name, strlen(ks->docs[i].name));
		h = fp_bytes(h, ks->docs[i].text, ks->docs[i].len);
	}
	for (size_t i = 0; i < ks->npods; i++) {
		h = fp_bytes(h, ks->pods[i].key, strlen(ks->pods[i].key));
		h = fp_bytes(h, ks->pods[i].payload, strlen(ks->pods[i].payload));
	}
	return h;
}

/* The thread's part: no event, no daemon state but the loader cache and
 * the store. */
static void
build_run(struct daemon *d, struct build *b)
{
	/* taken before reading: a file changed meanwhile makes the next
	 * reload see a difference, never the reverse */
	uint64_t se = 0, wl = 0;
	b->have_fp = loader_fingerprint(b->cfg->serviceentries, b->cfg->nserviceentries, &se) &&
	    loader_fingerprint(b->cfg->workloads, b->cfg->nworkloads, &wl);
	b->fp = se ^ (wl * 0x9e3779b97f4a7c15ULL + 1) ^ kube_fp(b->ks);
	if (b->may_skip && b->have_fp && b->fp == b->prev_fp) {
		/* a SIGHUP or a touched directory with nothing new: rebuilding
		 * 50k hosts costs half a second and twice the memory */
		b->unchanged = true;
		return;
	}
	b->nt = build_table_mode(d, b->cfg, b->ks, b->allocate, &b->sum, b->err, sizeof(b->err));
	if (b->nt == NULL && b->allocate && vipstore_disk_failed(d->vs)) {
		b->disk_failed = true;
		snprintf(b->disk_err, sizeof(b->disk_err), "%s", b->err);
		memset(&b->sum, 0, sizeof(b->sum));
		b->nt = build_table_mode(d, b->cfg, b->ks, false, &b->sum, b->err, sizeof(b->err));
	}
	/* a pass over every record: here, not on the loop */
	if (b->nt != NULL)
		b->nheld = vipstore_held(d->vs, &b->held);
}

/*
 * The loop's part. A store that cannot be written (full disk, read-only
 * filesystem, or another daemon holds the state lock) still answers every
 * host that has a VIP: the table was built from lookups, and hosts that
 * would need a new VIP are forwarded and counted until a later build can
 * write.
 */
static struct nametable *
build_settle(struct daemon *d, struct build *b)
{
	if (b->disk_failed) {
		d->store_write_failures++;
		if (d->store_ro[0] == '\0')
			log_error("%s: serving the VIPs the store has, read-only; new hosts are forwarded until it can "
			    "be written (retried every %ds and on every reload)", b->disk_err, STORE_RETRY_SECONDS);
		snprintf(d->store_ro, sizeof(d->store_ro), "%s", b->disk_err);
	} else if (b->nt != NULL && b->allocate && d->store_ro[0] != '\0') {
		log_info("VIP store writable again: new hosts get VIPs");
		d->store_ro[0] = '\0';
	}
	if (b->nt == NULL) {
		log_error("load failed: %s", b->err);
		return NULL;
	}
	if (b->sum.novip > 0)
		log_warnx("%zu host(s) have no VIP yet and are forwarded: the VIP store is read-only (%s)",
		    b->sum.novip, d->standby ? "waiting for the state lock" : "cannot be written");
	if (d->store_ro[0] != '\0' && !evtimer_pending(d->retry_ev, NULL)) {
		struct timeval tv = { STORE_RETRY_SECONDS, 0 };
		evtimer_add(d->retry_ev, &tv);
	}
	if (b->allocate && d->store_ro[0] == '\0')
		backup_soon(d);
	return b->nt;
}

/* The first table, inline: nothing to answer from yet. *held (caller
 * frees) the VIPs on hold. */
static struct nametable *
build_table(struct daemon *d, struct load_summary *sum, struct netaddr **held, size_t *nheld)
{
	struct build b;
	memset(&b, 0, sizeof(b));
	b.cfg = d->cfg;
	b.allocate = !d->vs_ro;
	b.ks = d->kube ? kube_snapshot(d->kube) : NULL;
	build_run(d, &b);
	d->input_fp = b.fp;
	d->have_input_fp = b.have_fp && b.nt != NULL;
	*sum = b.sum;
	*held = b.held;
	*nheld = b.nheld;
	struct nametable *nt = build_settle(d, &b);
	d->kube_applied = nt && b.ks && b.ks->synced;
	kube_snapshot_free(b.ks);
	return nt;
}

static void *
free_thread(void *arg)
{
	bgjob_background_priority();
	nametable_free(arg);
	trim_heap("free");
	return NULL;
}

/* Frees a replaced table beside the loop: 50,000 hosts take ~350 ms of
 * free(), which queries must not wait for. Nothing on the loop refers to
 * it once the new one is installed (a render holds its own reference to
 * the registry). */
static void
free_beside(struct nametable *old)
{
	pthread_t t;
	pthread_attr_t at;
	if (old == NULL)
		return;
	if (pthread_attr_init(&at) == 0 && pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) == 0 &&
	    pthread_create(&t, &at, free_thread, old) == 0) {
		pthread_attr_destroy(&at);
		return;
	}
	nametable_free(old);
}

/* Swaps the new table in, then points the endpoint resolver and the rule
 * sync at its registry before the old table (and registry) is freed. */
static void
install_table(struct daemon *d, struct nametable *nt, const struct netaddr *held, size_t nheld)
{
	struct nametable *old = server_set_table(d->srv, nt);
	const struct registry *reg = nametable_registry(nt);
	rulesync_set_held(d->rs, held, nheld);
	d->nheld = nheld;
	endpoints_track_registry(d->ep, reg);
	rulesync_mark(d->rs, reg);
	/* the next reload keeps last-good entries from this table's */
	loader_cache_commit(&d->cache, reg);
	free_beside(old);
}

static void
endpoints_changed(void *arg)
{
	struct daemon *d = arg;
	rulesync_mark(d->rs, NULL);
}

static void
watch_paths(struct daemon *d)
{
	if (d->watch == NULL)
		return;
	watch_clear(d->watch);
	for (size_t i = 0; i < d->cfg->nserviceentries; i++)
		watch_add(d->watch, d->cfg->serviceentries[i]);
	for (size_t i = 0; i < d->cfg->nworkloads; i++)
		watch_add(d->watch, d->cfg->workloads[i]);
	if (d->cfg->nupstreams == 0)
		watch_add(d->watch, d->cfg->resolv_conf);
	if (d->cfg->config_file)
		watch_add(d->watch, d->cfg->config_file);
}

/* Options that only take effect at start: a reload keeps the running ones
 * (and says so) instead of half-applying them. */
/* The API watches are set up at start: kubernetes.* is start-only. */
static void
keep_kube_options(const struct config *old, struct config *nc)
{
	char **strs[] = { &nc->kube_kubeconfig, &nc->kube_sa_dir, &nc->kube_node_name };
	const char *olds[] = { old->kube_kubeconfig, old->kube_sa_dir, old->kube_node_name };
	bool changed = old->kube_in_cluster != nc->kube_in_cluster ||
	    old->kube_serviceentries != nc->kube_serviceentries || old->kube_pods != nc->kube_pods ||
	    old->kube_request_timeout_ms != nc->kube_request_timeout_ms ||
	    old->kube_watch_timeout_ms != nc->kube_watch_timeout_ms ||
	    old->kube_initial_sync_ms != nc->kube_initial_sync_ms || old->kube_page_size != nc->kube_page_size;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		const char *a = olds[i] ? olds[i] : "", *b = *strs[i] ? *strs[i] : "";
		changed |= strcmp(a, b) != 0;
	}
	if (changed)
		log_warnx("reload: kubernetes.* changes take effect at the next restart");
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		char *c = olds[i] ? strdup(olds[i]) : NULL;
		if (olds[i] && c == NULL)
			continue; /* out of memory: the new value stays, harmless */
		free(*strs[i]);
		*strs[i] = c;
	}
	nc->kube_in_cluster = old->kube_in_cluster;
	nc->kube_serviceentries = old->kube_serviceentries;
	nc->kube_pods = old->kube_pods;
	nc->kube_request_timeout_ms = old->kube_request_timeout_ms;
	nc->kube_watch_timeout_ms = old->kube_watch_timeout_ms;
	nc->kube_initial_sync_ms = old->kube_initial_sync_ms;
	nc->kube_page_size = old->kube_page_size;
}

static void
keep_start_only(const struct config *old, struct config *nc)
{
	bool listen_changed = old->nlisten != nc->nlisten ||
	    memcmp(old->listen, nc->listen, old->nlisten * sizeof(old->listen[0])) != 0;
	if (listen_changed)
		log_warnx("reload: listen changed; it takes effect at the next restart");
	memcpy(nc->listen, old->listen, sizeof(old->listen));
	nc->nlisten = old->nlisten;
	if (strcmp(old->state_dir, nc->state_dir) != 0 || memcmp(&old->vip_pool, &nc->vip_pool, sizeof(old->vip_pool)) ||
	    old->vip_pool6_on != nc->vip_pool6_on)
		log_warnx("reload: state_dir / vip_pool changes take effect at the next restart");
	char *sd = strdup(old->state_dir);
	if (sd) {
		free(nc->state_dir);
		nc->state_dir = sd;
	}
	if (strcmp(old->state_dir, nc->state_dir) != 0) {
		/* a default rules_file was derived from the new state_dir */
		char *rf = strdup(old->rules_file);
		if (rf) {
			free(nc->rules_file);
			nc->rules_file = rf;
		}
	}
	if (old->vip_hold_ms != nc->vip_hold_ms || old->max_pending != nc->max_pending ||
	    old->upstream_timeout_ms != nc->upstream_timeout_ms || old->endpoint_min_ttl_ms != nc->endpoint_min_ttl_ms ||
	    old->endpoint_max_ttl_ms != nc->endpoint_max_ttl_ms ||
	    old->endpoint_max_qps != nc->endpoint_max_qps || old->reload_debounce_ms != nc->reload_debounce_ms)
		log_warnx("reload: vip_hold, max_pending, upstream_timeout, endpoint_min_ttl/max_ttl/max_qps and "
		    "reload_debounce take effect at the next restart");
	nc->vip_pool = old->vip_pool;
	nc->vip_pool6 = old->vip_pool6;
	nc->vip_pool6_on = old->vip_pool6_on;
	nc->vip_hold_ms = old->vip_hold_ms;
	nc->max_pending = old->max_pending;
	nc->upstream_timeout_ms = old->upstream_timeout_ms;
	nc->endpoint_min_ttl_ms = old->endpoint_min_ttl_ms;
	nc->endpoint_max_qps = old->endpoint_max_qps;
	nc->endpoint_max_ttl_ms = old->endpoint_max_ttl_ms;
	nc->reload_debounce_ms = old->reload_debounce_ms;
	keep_kube_options(old, nc);
	if (old->cache_size != nc->cache_size)
		log_warnx("reload: cache.size takes effect at the next restart");
	nc->cache_size = old->cache_size;
	char *m = strdup(old->metrics);
	if (m) {
		if (strcmp(old->metrics, nc->metrics) != 0)
			log_warnx("reload: metrics address changes take effect at the next restart");
		free(nc->metrics);
		nc->metrics = m;
	}
}

/*
 * Re-reads the config (when asked) and every source and builds the new
 * table on the build thread, with the new config; build_done puts config
 * and table live together only when that worked, otherwise everything
 * running stays as it was. A reload asked for while one runs is done once
 * it ends (requests in between are one).
 */
static void
reload(struct daemon *d, bool reread_config)
{
	/* one of build and backup at a time: a build may grow the store's map,
	 * which LMDB allows only with no read transaction open (the copy's) */
	if (d->building != NULL || (d->backuper && bgjob_busy(d->backuper))) {
		d->reload_pending = true;
		d->reload_reread |= reread_config;
		return;
	}
	struct build *b = calloc(1, sizeof(*b));
	if (b == NULL) {
		log_error("reload: out of memory; keeping the running config and table");
		return;
	}
	b->t0 = monotime_now();
	log_debug("reload: start (%s)", reread_config && d->opts->argv ? "config and every source re-read" :
	    "every source re-read");
	notify_reloading();
	if (reread_config && d->opts->argv) {
		char **argv = calloc((size_t)d->opts->argc + 1, sizeof(*argv));
		if (argv) {
			memcpy(argv, d->opts->argv, (size_t)d->opts->argc * sizeof(*argv));
			b->nc = config_load(d->opts->argc, argv, d->diag, NULL, NULL, NULL);
			free(argv);
		}
		if (b->nc == NULL) {
			log_error("reload: the config has errors (above); keeping the running config");
			b->config_failed = true;
		} else {
			keep_start_only(d->cfg, b->nc);
		}
	}
	log_set_level((enum log_level)(b->nc ? b->nc : d->cfg)->log_level);
	log_set_format((enum log_format)(b->nc ? b->nc : d->cfg)->log_format);
	b->cfg = b->nc ? b->nc : d->cfg;
	b->allocate = !d->vs_ro;
	b->prev_fp = d->input_fp;
	b->may_skip = d->have_input_fp && b->allocate && d->store_ro[0] == '\0' && !d->standby &&
	    d->sum.novip == 0 && d->sum.exhausted == 0 && d->nheld == 0 && d->last_error[0] == '\0' &&
	    (b->nc == NULL || config_same(d->cfg, b->nc));
	/* the API's objects as they are now: the build thread reads this copy */
	b->ks = d->kube ? kube_snapshot(d->kube) : NULL;
	d->building = b;
	bgjob_start(d->builder, build_job, d);
}

/* Upstreams, zones and rule options from d->cfg (a new config, or
 * resolv.conf re-read). */
static void
refresh_upstreams(struct daemon *d)
{
	d->nups = loader_upstreams(d->cfg, d->ups);
	struct fwd_zone_spec specs[FWD_MAX_ZONES];
	size_t nspecs = loader_zone_specs(d->cfg, d->ups, d->nups, specs);
	server_set_config(d->srv, d->cfg, specs, nspecs);
	endpoints_set_zones(d->ep, specs, nspecs);
	rulesync_set_config(d->rs, d->cfg);
}

/* Two configs that print the same are the same to a reload. */
static bool
config_same(const struct config *a, const struct config *b)
{
	char *ta = NULL, *tb = NULL;
	size_t la = 0, lb = 0;
	FILE *fa = open_memstream(&ta, &la), *fb = open_memstream(&tb, &lb);
	if (fa)
		config_print(a, fa);
	if (fb)
		config_print(b, fb);
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	bool same = fa && fb && ta && tb && la == lb && memcmp(ta, tb, la) == 0;
	free(ta);
	free(tb);
	return same;
}

/* On the build thread. */
static void
build_job(void *arg)
{
	struct daemon *d = arg;
	build_run(d, d->building);
}

/* Back on the loop. */
static void
build_done(void *arg)
{
	struct daemon *d = arg;
	struct build *b = d->building;
	d->building = NULL;
	struct config *nc = b->nc;
	if (b->unchanged) {
		config_free(nc); /* equal to the live one */
		if (d->cfg->nupstreams == 0)
			refresh_upstreams(d);
		if (b->config_failed)
			d->reloads_failed++;
		else
			d->reloads_ok++;
		watch_paths(d);
		log_info("reloaded unchanged files=%zu hosts=%zu duration_ms=%.1f", d->sum.files, d->sum.hosts,
		    (monotime_now() - b->t0) * 1000);
		notify_send("READY=1");
		goto next;
	}
	struct nametable *nt = build_settle(d, b);
	if (nt == NULL) {
		log_set_level((enum log_level)d->cfg->log_level);
		log_set_format((enum log_format)d->cfg->log_format);
		config_free(nc);
		d->reloads_failed++;
		snprintf(d->last_error, sizeof(d->last_error), "%s", "last reload failed (see the log); serving the "
		    "previous table");
		log_error("reload failed; still serving the previous config and table");
		/* a path that went away may come back: watch for it */
		watch_paths(d);
		notify_send("READY=1");
		goto next;
	}
	struct config *live = d->cfg;
	if (nc)
		d->cfg = nc;
	if (nc || d->cfg->nupstreams == 0)
		refresh_upstreams(d); /* new config, or resolv.conf may have changed */
	install_table(d, nt, b->held, b->nheld);
	d->input_fp = b->fp;
	d->have_input_fp = b->have_fp;
	if (b->ks && b->ks->synced && !d->kube_applied) {
		d->kube_applied = true;
		log_info("kubernetes: first LISTs applied");
	}
	d->last_error[0] = '\0';
	d->sum = b->sum;
	if (b->config_failed)
		d->reloads_failed++;
	else
		d->reloads_ok++;
	/* re-arm: a watched directory may have been replaced or created */
	watch_paths(d);
	if (nc)
		config_free(live);
	log_info("reloaded files=%zu entries=%zu hosts=%zu vips=%zu errors=%zu warnings=%zu kept_last_good=%zu "
	    "duration_ms=%.1f", b->sum.files, b->sum.entries, b->sum.hosts, b->sum.vips, b->sum.errors,
	    b->sum.warnings, b->sum.kept, (monotime_now() - b->t0) * 1000);
	notify_send("READY=1");
next:
	kube_snapshot_free(b->ks);
	free(b->held);
	free(b);
	if (d->reload_pending && !d->stopping) {
		bool reread = d->reload_reread;
		d->reload_pending = d->reload_reread = false;
		reload(d, reread);
	}
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading config and ServiceEntries");
		reload(d, true);
		return;
	}
	if (sig == SIGUSR1) {
		struct cache_stats cs;
		cache_stats(server_cache(d->srv), &cs);
		cache_flush(server_cache(d->srv));
		log_info("SIGUSR1: answer cache flushed (%llu entries)", (unsigned long long)cs.entries);
		return;
	}
	if (d->stopping) {
		log_info("signal %d again: stopping now", (int)sig);
		event_base_loopexit(d->base, NULL);
		return;
	}
	log_info("signal %d: stopping; answering what was received (at most %llums)", (int)sig,
	    (unsigned long long)d->cfg->stop_timeout_ms);
	notify_send("STOPPING=1");
	d->stopping = true;
	d->ready = false;
	d->stop_deadline = monotime_now() + (double)d->cfg->stop_timeout_ms / 1000;
	server_drain(d->srv);
	struct timeval tv = { 0, 0 };
	event_add(d->stop_ev, &tv);
}

/* While stopping: exit once nothing is left to answer, or at the deadline
 * after answering SERVFAIL to what is still upstream. */
static void
stop_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	if (!server_drained(d->srv)) {
		if (monotime_now() < d->stop_deadline) {
			struct timeval tv = { 0, 10 * 1000 };
			event_add(d->stop_ev, &tv);
			return;
		}
		log_warnx("stop deadline: answering SERVFAIL to the queries still upstream");
		server_fail_inflight(d->srv);
		/* a moment for the TCP answers to be written */
		struct timeval flush = { 0, 100 * 1000 };
		event_base_loopexit(d->base, &flush);
		return;
	}
	event_base_loopexit(d->base, NULL);
}

/* The API's objects changed (debounced by kube). */
static void
kube_changed(void *arg)
{
	struct daemon *d = arg;
	log_debug("kubernetes: objects changed: reloading");
	reload(d, false);
}

static void
files_changed(void *arg)
{
	struct daemon *d = arg;
	log_info("watched files changed: reloading");
	reload(d, true);
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	/* sent from the event loop: a stuck loop stops the pings */
	notify_send("WATCHDOG=1");
}

/*
 * Opens d->vs. With the state lock: a lost vips.mdb comes back from its
 * backup, the file is verified in a child (a corrupt store is never
 * served), then opened writable, or read-only when the disk refuses even
 * that. In standby: verified and opened read-only. False with err.
 */
static bool
open_store(struct daemon *d, char *err, size_t errlen)
{
	const struct config *cfg = d->cfg;
	char path[PATH_MAX + 16];
	struct stat st;
	if (!d->standby && !vipstore_restore_if_empty(cfg->state_dir, err, errlen))
		return false;
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, VIPSTORE_FILE);
	if (stat(path, &st) == 0 && st.st_size > 0 && !vipstore_check_file(cfg->state_dir, err, errlen)) {
		size_t l = strlen(err);
		snprintf(err + l, errlen - l, ". Nothing was changed. To recover: stop sedns, move %s aside and copy "
		    "its backup %s%s in its place (`sedns vips --verify` checks the result), or start without it "
		    "(hosts then get new VIPs)", path, path, VIPSTORE_BACKUP_SUFFIX);
		return false;
	}
	bool disk = false;
	struct vipstore *vs = NULL;
	if (!d->standby) {
		vs = loader_open_store(cfg, false, d->opts->reallocate, &disk, err, errlen);
		if (vs == NULL && !disk)
			return false;
		if (vs == NULL) {
			log_error("%s: opening it read-only; new hosts are forwarded until it can be written", err);
			snprintf(d->store_ro, sizeof(d->store_ro), "%s", err);
		}
	}
	d->vs_ro = vs == NULL;
	if (vs == NULL && (vs = loader_open_store(cfg, true, false, NULL, err, errlen)) == NULL)
		return false;
	vipstore_set_deferred(vs, true);
	if (d->backuper)
		bgjob_wait(d->backuper); /* a backup copies from the store it closes */
	vipstore_close(d->vs);
	d->vs = vs;
	return true;
}

/* store_ro: try the write again (space may have been freed). */
static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	char err[1024];
	if (d->stopping || d->store_ro[0] == '\0' || d->standby)
		return;
	if (d->building != NULL) {
		/* the build thread uses d->vs: not now */
		struct timeval tv = { 1, 0 };
		evtimer_add(d->retry_ev, &tv);
		return;
	}
	if (d->vs_ro && !open_store(d, err, sizeof(err)))
		log_warnx("VIP store still read-only: %s", err);
	if (d->vs_ro) {
		struct timeval tv = { STORE_RETRY_SECONDS, 0 };
		evtimer_add(d->retry_ev, &tv);
		return;
	}
	reload(d, false);
}

/* Standby: the other sedns (an older pod of a rolling update) exits, the
 * lock frees, and this one takes over writing the store and the rules. */
static void
lock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	char err[1024];
	pid_t holder = 0;
	struct timeval tv = monotime_tv(LOCK_POLL_MS);
	if (d->stopping)
		return;
	if (d->building != NULL) {
		evtimer_add(d->lock_ev, &tv); /* the build thread uses d->vs */
		return;
	}
	switch (statelock_acquire(d->cfg->state_dir, &d->lock_fd, &holder, err, sizeof(err))) {
	case STATELOCK_BUSY:
		evtimer_add(d->lock_ev, &tv);
		return;
	case STATELOCK_ERROR:
		log_warnx("%s", err);
		evtimer_add(d->lock_ev, &tv);
		return;
	case STATELOCK_TAKEN:
		break;
	}
	d->standby = false;
	log_info("state lock %s/%s taken: writing the VIP store and applying rules from now on", d->cfg->state_dir,
	    STATELOCK_FILE);
	if (!open_store(d, err, sizeof(err))) {
		/* the previous holder left a store that fails verification */
		log_error("%s", err);
		snprintf(d->last_error, sizeof(d->last_error), "VIP store cannot be opened for writing (see the log)");
		return;
	}
	rulesync_pause(d->rs, false);
	reload(d, false);
}

/* Takes the state lock, or says who has it: exit (exclusive) or standby
 * (wait). */
static void
take_lock(struct daemon *d)
{
	char err[1024];
	pid_t holder = 0;
	d->lock_fd = -1;
	switch (statelock_acquire(d->cfg->state_dir, &d->lock_fd, &holder, err, sizeof(err))) {
	case STATELOCK_TAKEN:
		return;
	case STATELOCK_ERROR:
		fatalx("%s", err);
	case STATELOCK_BUSY:
		break;
	}
	char who[64] = "another process";
	if (holder > 0)
		snprintf(who, sizeof(who), "sedns PID %ld", (long)holder);
	if (d->cfg->state_lock != STATE_LOCK_WAIT)
		fatalx("state_dir %s is in use by %s (lock %s/%s): one daemon per state directory; nothing was "
		    "changed. Stop it, use another state_dir, or start with --state-lock wait to serve read-only "
		    "until it exits", d->cfg->state_dir, who, d->cfg->state_dir, STATELOCK_FILE);
	log_warnx("state_dir %s is in use by %s: serving read-only (hosts that have a VIP are answered, new ones "
	    "forwarded, no rules applied) until it exits", d->cfg->state_dir, who);
	d->standby = true;
}

/* --- HTTP handlers -------------------------------------------------------- */

static void
snapshot(void *arg, struct metrics_snapshot *m)
{
	struct daemon *d = arg;
	memset(m, 0, sizeof(*m));
	struct server_stats ss;
	server_stats(d->srv, &ss);
	m->q_a = ss.qtype_a;
	m->q_aaaa = ss.qtype_aaaa;
	m->q_ptr = ss.qtype_ptr;
	m->q_other = ss.qtype_other;
	m->local = ss.local;
	m->forwarded = ss.forwarded;
	m->nxdomain = ss.nxdomain;
	m->nxdomain_rewritten = ss.nxdomain_rewritten;
	m->servfail = ss.servfail;
	m->refused = ss.refused;
	m->formerr = ss.formerr;
	m->notimp = ss.notimp;
	m->dropped = ss.dropped;
	m->chaos = ss.chaos;
	m->local_latency = ss.local_latency;
	m->tcp_conns = ss.tcp_conns;
	m->tcp_accepted = ss.tcp_accepted;
	m->tcp_cap_reached = ss.tcp_refused_cap;
	m->cached = ss.cached;
	m->tcp_refused_acl = ss.tcp_refused_acl;
	m->refused_acl = ss.refused_acl;
	m->refused_chaos = ss.refused_chaos;
	m->refused_prefixes = ss.refused_prefixes;
	m->tcp_refused_per_client = ss.tcp_refused_per_client;
	m->tcp_lifetime_ends = ss.tcp_lifetime_ends;
	m->tcp_out_dropped = ss.tcp_out_dropped;
	m->quota_hits = ss.quota_hits;
	struct cache_stats cs;
	cache_stats(server_cache(d->srv), &cs);
	m->cache_on = server_cache(d->srv) != NULL;
	m->cache_hits = cs.hits;
	m->cache_misses = cs.misses;
	m->cache_entries = cs.entries;
	m->cache_evictions = cs.evictions;
	m->cache_prefetches = cs.prefetches;
	m->cache_stale = cs.stale;
	struct fwd_stats fws;
	forwarder_stats(server_forwarder(d->srv), &fws);
	m->cache_coalesced = fws.coalesced;
	struct forwarder *f = server_forwarder(d->srv);
	struct fwd_stats fs;
	forwarder_stats(f, &fs);
	m->pending = fs.pending;
	m->pending_full = fs.pending_full;
	m->tcp_retries = fs.tcp_retries;
	m->spoofed = fs.spoofed;
	m->upstream_latency = fs.latency;
	struct fwd_upstream_stats us[METRICS_MAX_UPSTREAMS];
	size_t nu = forwarder_upstream_stats(f, us, METRICS_MAX_UPSTREAMS);
	for (size_t i = 0; i < nu; i++) {
		char a[NETADDR_STRLEN];
		snprintf(m->upstreams[i].zone, sizeof(m->upstreams[i].zone), "%s", us[i].zone);
		netaddr_fmt(&us[i].addr, a, sizeof(a));
		snprintf(m->upstreams[i].addr, sizeof(m->upstreams[i].addr), us[i].addr.family == AF_INET6 ? "[%s]:%u" :
		    "%s:%u", a, us[i].port);
		m->upstreams[i].requests = us[i].requests;
		m->upstreams[i].failures = us[i].failures;
		m->upstreams[i].timeouts = us[i].timeouts;
		m->upstreams[i].healthy = us[i].healthy;
	}
	m->nupstreams = nu;
	struct vipstore_stats vst;
	/* counts from the last sync: a scan of 50k records stalls the loop */
	if (vipstore_stats_cached(d->vs, &vst) || vipstore_stats(d->vs, &vst)) {
		m->pool_size = vst.pool_size;
		m->vips_active = vst.active;
		m->vips_held = vst.held;
	}
	m->vips_exhausted = d->sum.exhausted;
	m->store_writable = !d->vs_ro && d->store_ro[0] == '\0';
	m->state_lock_held = !d->standby;
	m->vips_missing_readonly = d->sum.novip;
	m->store_write_failures = d->store_write_failures;
	m->backups_ok = d->backups_ok;
	m->backups_failed = d->backups_failed;
	m->backup_age_seconds = d->last_backup_ok ? (double)(time(NULL) - d->last_backup_ok) : -1;
	m->addr_conflicts = d->sum.conflicts;
	m->serviceentries = d->sum.entries;
	m->serviceentries_rejected = d->sum.rejected;
	m->hosts = d->sum.hosts;
	m->files_kept = d->sum.kept;
	m->reloads_ok = d->reloads_ok;
	m->reloads_failed = d->reloads_failed;
	struct rulesync_stats rs;
	rulesync_stats(d->rs, &rs);
	m->rule_syncs_ok = rs.syncs_ok;
	m->rule_syncs_failed = rs.syncs_failed;
	m->rule_sync_seconds = rs.last_duration_s;
	m->rule_render_seconds = rs.last_render_s;
	m->rules_last_ok = rs.last_ok;
	m->rule_applies_full = rs.applies_full;
	m->rule_applies_incremental = rs.applies_incremental;
	m->rule_applies_adopted = rs.adopted;
	struct endpoints_stats es;
	endpoints_stats(d->ep, &es);
	m->endpoint_names = es.names;
	m->endpoint_resolutions = es.resolutions;
	m->endpoint_failures = es.failures;
	m->endpoint_changes = es.changes;
	m->endpoint_negative = es.negative;
	m->endpoint_deferred = es.deferred;
	m->nkube = 0;
	if (d->kube) {
		struct kube_kind_stats ks[KUBE_NKINDS];
		kube_stats(d->kube, ks);
		for (int i = 0; i < KUBE_NKINDS; i++) {
			if (!ks[i].on)
				continue;
			struct metrics_kube *mk = &m->kube[m->nkube++];
			mk->kind = ks[i].kind;
			mk->requests = ks[i].requests;
			mk->watches = ks[i].inf.watches;
			mk->watch_restarts = ks[i].inf.watch_restarts;
			mk->lists = ks[i].inf.lists;
			mk->relists = ks[i].inf.relists;
			mk->failures = ks[i].inf.failures;
			mk->expired = ks[i].inf.expired;
			for (int t = 0; t < 4; t++)
				mk->events[t] = ks[i].inf.events[t];
			mk->objects = ks[i].inf.objects;
			mk->last_sync_age = ks[i].last_sync_age;
		}
	}
	m->version = SEDNS_VERSION;
	m->start_time = d->start_time;
}

static bool
ready(void *arg, char *why, size_t len)
{
	struct daemon *d = arg;
	struct rulesync_stats rs;
	rulesync_stats(d->rs, &rs);
	if (!d->ready) {
		snprintf(why, len, "starting: table not loaded or listeners not bound");
		return false;
	}
	if (d->last_error[0]) {
		snprintf(why, len, "%s", d->last_error);
		return false;
	}
	if (d->kube && !d->kube_applied) {
		kube_why_not_synced(d->kube, why, len);
		if (why[0] == '\0')
			snprintf(why, len, "kubernetes: first LISTs not applied yet");
		return false;
	}
	/* standby serves: the lock holder owns the rules (and a rolling update
	 * removes it only once this one is ready) */
	if (d->standby)
		return true;
	if (d->cfg->rules_apply && rs.syncs_ok == 0 && rs.syncs_failed == 0) {
		snprintf(why, len, "rules not applied yet");
		return false;
	}
	if (d->cfg->rules_apply && !rs.last_ok) {
		snprintf(why, len, "last rule sync failed (%llu failures)", (unsigned long long)rs.syncs_failed);
		return false;
	}
	return true;
}

static bool
degraded(void *arg, char *why, size_t len)
{
	struct daemon *d = arg;
	if (d->standby) {
		snprintf(why, len, "standby: another sedns holds the state lock; VIP store read-only (%zu host(s) "
		    "forwarded for lack of a VIP), rules not applied", d->sum.novip);
		return true;
	}
	if (d->store_ro[0]) {
		snprintf(why, len, "VIP store read-only, %zu host(s) forwarded for lack of a VIP: %s", d->sum.novip,
		    d->store_ro);
		return true;
	}
	return false;
}

static void
host_json(struct daemon *d, const struct reg_host *h, struct evbuffer *out)
{
	char a[NETADDR_STRLEN];
	evbuffer_add_printf(out, "{\"host\": ");
	http_json_string(out, h->name);
	evbuffer_add_printf(out, ", \"answer\": \"%s\", \"resolution\": \"%s\", \"vip_exhausted\": %s, \"addresses\": [",
	    registry_answer_name(h->answer), se_resolution_name(h->resolution), h->vip_exhausted ? "true" : "false");
	for (size_t i = 0; i < h->naddrs; i++)
		evbuffer_add_printf(out, "%s\"%s\"", i ? ", " : "", netaddr_fmt(&h->addrs[i], a, sizeof(a)));
	evbuffer_add_printf(out, "], \"serviceentries\": [");
	for (size_t i = 0; i < h->nentries; i++) {
		const struct serviceentry *se = h->entries[i];
		evbuffer_add_printf(out, "%s{\"namespace\": ", i ? ", " : "");
		http_json_string(out, se->namespace);
		evbuffer_add_printf(out, ", \"name\": ");
		http_json_string(out, se->name);
		evbuffer_add_printf(out, ", \"file\": ");
		http_json_string(out, se->file);
		evbuffer_add_printf(out, ", \"line\": %d, \"exportTo\": [", se->line);
		for (size_t k = 0; k < se->nexport_to; k++) {
			evbuffer_add_printf(out, "%s", k ? ", " : "");
			http_json_string(out, se->export_to[k]);
		}
		evbuffer_add_printf(out, "]}");
	}
	evbuffer_add_printf(out, "], \"ports\": [");
	for (size_t p = 0; p < h->nports; p++) {
		const struct reg_port *rp = &h->ports[p];
		evbuffer_add_printf(out, "%s{\"port\": %u, \"protocol\": ", p ? ", " : "", rp->number);
		http_json_string(out, rp->protocol ? rp->protocol : "");
		evbuffer_add_printf(out, ", \"transport\": \"%s\", \"endpoints\": [", rp->udp ? "udp" : "tcp");
		size_t k = 0;
		for (size_t e = 0; e < rp->neps; e++) {
			const struct reg_endpoint *ep = &rp->eps[e];
			if (reg_ep_is_ip(ep)) {
				evbuffer_add_printf(out, "%s{\"address\": \"%s\", \"port\": %u, \"weight\": %u}", k++ ? ", " : "",
				    netaddr_fmt(&ep->ip, a, sizeof(a)), ep->port, reg_ep_weight(ep));
				continue;
			}
			struct netaddr res[EP_MAX_ADDRS];
			size_t nr = endpoints_lookup(d->ep, reg_ep_address(ep), res, EP_MAX_ADDRS);
			evbuffer_add_printf(out, "%s{\"hostname\": ", k++ ? ", " : "");
			http_json_string(out, reg_ep_address(ep));
			evbuffer_add_printf(out, ", \"port\": %u, \"weight\": %u, \"resolved\": [", ep->port,
			    reg_ep_weight(ep));
			for (size_t r = 0; r < nr; r++)
				evbuffer_add_printf(out, "%s\"%s\"", r ? ", " : "", netaddr_fmt(&res[r], a, sizeof(a)));
			evbuffer_add_printf(out, "]}");
		}
		if (rp->resolve_host) {
			struct netaddr res[EP_MAX_ADDRS];
			size_t nr = endpoints_lookup(d->ep, h->name, res, EP_MAX_ADDRS);
			evbuffer_add_printf(out, "%s{\"hostname\": ", k++ ? ", " : "");
			http_json_string(out, h->name);
			evbuffer_add_printf(out, ", \"port\": %u, \"resolved\": [", rp->number);
			for (size_t r = 0; r < nr; r++)
				evbuffer_add_printf(out, "%s\"%s\"", r ? ", " : "", netaddr_fmt(&res[r], a, sizeof(a)));
			evbuffer_add_printf(out, "]}");
		}
		evbuffer_add_printf(out, "]}");
	}
	evbuffer_add_printf(out, "]}");
}

static void
debug_hosts(void *arg, struct evbuffer *out)
{
	struct daemon *d = arg;
	struct nametable *nt = server_table(d->srv);
	const struct registry *reg = nametable_registry(nt);
	evbuffer_add_printf(out, "[");
	for (size_t i = 0; i < reg->nhosts; i++) {
		evbuffer_add_printf(out, "%s\n  ", i ? "," : "");
		host_json(d, &reg->hosts[i], out);
	}
	evbuffer_add_printf(out, "\n]\n");
}

static bool
debug_resolve(void *arg, const char *host, struct evbuffer *out)
{
	struct daemon *d = arg;
	struct nametable *nt = server_table(d->srv);
	char name[256];
	size_t l = 0;
	for (; host[l] && l < sizeof(name) - 1; l++)
		name[l] = (char)(host[l] >= 'A' && host[l] <= 'Z' ? host[l] - 'A' + 'a' : host[l]);
	name[l] = '\0';
	if (l > 0 && name[l - 1] == '.')
		name[--l] = '\0';
	const struct reg_host *h = registry_find(nametable_registry(nt), name);
	struct nt_result r;
	bool local = nametable_lookup(nt, name, &r);
	if (h == NULL && local)
		h = r.entry->host;
	if (h == NULL)
		return false;
	char a[NETADDR_STRLEN];
	evbuffer_add_printf(out, "{\"query\": ");
	http_json_string(out, name);
	evbuffer_add_printf(out, ", \"local\": %s, \"via\": \"%s\", \"a\": [", local ? "true" : "false",
	    !local ? "forward" : r.via_cname ? "search-path" : r.via_wildcard ? "wildcard" : "exact");
	for (size_t i = 0; local && i < r.addrs->n4; i++)
		evbuffer_add_printf(out, "%s\"%s\"", i ? ", " : "", netaddr_fmt(&r.addrs->v4[i], a, sizeof(a)));
	evbuffer_add_printf(out, "], \"aaaa\": [");
	for (size_t i = 0; local && i < r.addrs->n6; i++)
		evbuffer_add_printf(out, "%s\"%s\"", i ? ", " : "", netaddr_fmt(&r.addrs->v6[i], a, sizeof(a)));
	evbuffer_add_printf(out, "], \"host\": ");
	host_json(d, h, out);
	evbuffer_add_printf(out, "}\n");
	return true;
}

static bool
loopback_addrport(const char *s)
{
	return strncmp(s, "127.", 4) == 0 || strncmp(s, "[::1]", 5) == 0 || strncmp(s, "localhost:", 10) == 0;
}

/* /metrics, /healthz, /readyz on `metrics`; the /debug pages (every host,
 * file and endpoint) only on loopback: on the metrics address when that is
 * loopback, else only on an explicit debug_listen. */
static void
start_http(struct daemon *d)
{
	char err[512];
	const struct config *cfg = d->cfg;
	struct http_handlers h = { .arg = d, .snapshot = snapshot, .ready = ready, .degraded = degraded,
		.reuseport = cfg->listen_reuseport };
	bool debug_on_metrics = cfg->debug_listen[0] == '\0' && loopback_addrport(cfg->metrics);
	if (cfg->metrics[0]) {
		if (debug_on_metrics) {
			h.debug_hosts = debug_hosts;
			h.debug_resolve = debug_resolve;
		} else if (cfg->debug_listen[0] == '\0') {
			log_info("debug pages off: metrics %s is not a loopback address (set debug_listen to serve them)",
			    cfg->metrics);
		}
		d->http = http_start(d->base, cfg->metrics, &h, err, sizeof(err));
		if (d->http == NULL)
			fatalx("%s", err);
	}
	if (cfg->debug_listen[0]) {
		h.debug_hosts = debug_hosts;
		h.debug_resolve = debug_resolve;
		d->debug_http = http_start(d->base, cfg->debug_listen, &h, err, sizeof(err));
		if (d->debug_http == NULL)
			fatalx("%s", err);
	}
}

/* The soft descriptor limit up to the hard one: a soft 1024 is a default
 * for interactive shells, not a budget chosen for a resolver. */
static void
raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_debug("descriptor limit raised from %llu to %llu", (unsigned long long)was,
		    (unsigned long long)rl.rlim_max);
}

/* One trial bind's outcome: an address in use is only a warning, since
 * serve -n is the pre-check run beside the live daemon (the trial binds do
 * not share addresses, so they never take one of its queries). */
static bool
check_bind(int fd, int why, const char *err, FILE *out, int *fds, size_t *nfds, size_t max)
{
	if (fd >= 0) {
		if (*nfds < max)
			fds[(*nfds)++] = fd;
		else
			close(fd);
		return true;
	}
	if (why == EADDRINUSE) {
		fprintf(out, "warning: %s (the running sedns? serve can share it with a sedns of the same user "
		    "through SO_REUSEPORT; anything else holding it makes serve fail)\n", err);
		return true;
	}
	fprintf(out, "error: %s\n", err);
	return false;
}

int
serve_check(const struct config *cfg, FILE *out)
{
	/* every socket serve opens, held open together as serve holds them */
	int fds[2 * CONFIG_MAX_LIST + 2];
	size_t nfds = 0, max = sizeof(fds) / sizeof(fds[0]);
	char err[512];
	bool ok = true;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
		for (size_t t = 0; t < 2; t++) {
			int why = 0, fd = server_bind_listener(cfg, &cfg->listen[i], types[t], true, &why, err,
			    sizeof(err));
			ok &= check_bind(fd, why, err, out, fds, &nfds, max);
		}
	}
	const char *http[] = { cfg->metrics, cfg->debug_listen };
	for (size_t i = 0; i < 2; i++) {
		if (http[i][0] == '\0')
			continue;
		/* no SO_REUSEPORT: see server_bind_listener */
		int why = 0, fd = http_bind_check(http[i], false, &why, err, sizeof(err));
		ok &= check_bind(fd, why, err, out, fds, &nfds, max);
	}
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	return ok ? 0 : 1;
}

int
serve_run(struct config *cfg, const struct serve_opts *opts)
{
	struct daemon d;
	memset(&d, 0, sizeof(d));
	/* Big transient buffers (the rendered rules: 20-60 MB at 50k hosts,
	 * a replaced table's arrays) are mapped and unmapped whole: glibc's
	 * adaptive threshold would otherwise move them into a thread's heap,
	 * where the freed memory stays resident. A fixed threshold also fixes
	 * the trim threshold, so freed heap tops go back too. */
	mallopt(M_MMAP_THRESHOLD, SERVE_MMAP_THRESHOLD);
	d.cfg = cfg;
	d.opts = opts;
	d.start_time = (double)time(NULL);
	/* timestamps on a terminal or in a file; the journal stamps lines
	 * itself and reads the priority from a "<N>" prefix */
	log_set_style(log_style_detect());
	log_set_format((enum log_format)cfg->log_format);
	d.diag = log_stream();
	if (d.diag == NULL)
		d.diag = stderr;
	char err[512];
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (mkdir(cfg->state_dir, 0750) < 0 && errno != EEXIST)
		fatal("cannot create state_dir %s", cfg->state_dir);
	take_lock(&d);
	{
		char serr[1536];
		if (!open_store(&d, serr, sizeof(serr)))
			fatalx("%s", serr);
	}
	d.nups = loader_upstreams(cfg, d.ups);
	/* listeners first: a start that cannot serve (address taken, no
	 * permission) exits before it writes anything to the VIP store */
	d.base = event_base_new();
	if (d.base == NULL)
		fatalx("event_base_new failed");
	d.retry_ev = evtimer_new(d.base, retry_cb, &d);
	d.lock_ev = evtimer_new(d.base, lock_cb, &d);
	d.backup_ev = evtimer_new(d.base, backup_cb, &d);
	d.builder = bgjob_new(d.base, build_done, &d);
	d.backuper = bgjob_new(d.base, backup_done, &d);
	if (d.retry_ev == NULL || d.lock_ev == NULL || d.backup_ev == NULL || d.builder == NULL || d.backuper == NULL)
		fatalx("out of memory");
	/* the API's objects before the first table (and before the listeners:
	 * nothing else runs on the loop yet), bounded: an unreachable API
	 * server delays the start by at most initial_sync_timeout */
	if (kube_configured(cfg)) {
		d.kube = kube_new(d.base, cfg, cfg->reload_debounce_ms, kube_changed, &d, err, sizeof(err));
		if (d.kube == NULL)
			fatalx("%s", err);
		if (!kube_wait_synced(d.kube, cfg->kube_initial_sync_ms)) {
			char why[512];
			kube_why_not_synced(d.kube, why, sizeof(why));
			log_warnx("%s after %llums: serving from files until it is (/readyz: not ready)", why,
			    (unsigned long long)cfg->kube_initial_sync_ms);
		}
	}
	int lfds[CONFIG_MAX_LIST];
	size_t nlfds = server_listen_fds(lfds, CONFIG_MAX_LIST);
	struct fwd_zone_spec specs[FWD_MAX_ZONES];
	size_t nspecs = loader_zone_specs(cfg, d.ups, d.nups, specs);
	d.srv = server_new(d.base, cfg, specs, nspecs, lfds, nlfds, err, sizeof(err));
	if (d.srv == NULL)
		fatalx("%s", err);
	struct netaddr *held = NULL;
	size_t nheld = 0;
	struct nametable *nt = build_table(&d, &d.sum, &held, &nheld);
	/* once, at start: exportTo is only enforced with views */
	if (!(d.kube && cfg->kube_pods)) /* the API's pods turn views on */
		loader_note_export_to(cfg, d.sum.restricted, d.diag);
	if (nt == NULL)
		fatalx("cannot build the first name table");
	d.ep = endpoints_new(d.base, specs, nspecs, cfg->upstream_timeout_ms, cfg->endpoint_min_ttl_ms,
	    cfg->endpoint_max_ttl_ms, cfg->endpoint_max_qps, endpoints_changed, &d);
	d.rs = rulesync_new(d.base, cfg, d.ep);
	if (d.ep == NULL || d.rs == NULL)
		fatalx("out of memory");
	if (d.standby) {
		rulesync_pause(d.rs, true);
		struct timeval ltv = monotime_tv(LOCK_POLL_MS);
		evtimer_add(d.lock_ev, &ltv);
	}
	/* inotify before the endpoint resolutions start taking descriptors */
	d.watch = watch_new(d.base, cfg->reload_debounce_ms, files_changed, &d);
	if (d.watch == NULL)
		log_error("file watching is off (no inotify instance): changes need SIGHUP");
	start_http(&d);
	install_table(&d, nt, held, nheld);
	free(held);
	watch_paths(&d);
	d.stop_ev = evtimer_new(d.base, stop_poll_cb, &d);
	if (d.stop_ev == NULL)
		fatalx("out of memory");
	struct event *sigs[4];
	int signums[4] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1 };
	for (int i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(d.base, signums[i], signal_cb, &d);
		event_add(sigs[i], NULL);
	}
	uint64_t wd = notify_watchdog_usec();
	if (wd) {
		d.watchdog = event_new(d.base, -1, EV_PERSIST, watchdog_cb, &d);
		struct timeval tv = monotime_tv(wd / 2 / 1000);
		event_add(d.watchdog, &tv);
	}
	char la[NETADDR_STRLEN], ua[256] = "";
	for (size_t i = 0; i < d.nups; i++) {
		char a[NETADDR_STRLEN];
		size_t l = strlen(ua);
		snprintf(ua + l, sizeof(ua) - l, "%s%s:%u", i ? "," : "", netaddr_fmt(&d.ups[i].addr, a, sizeof(a)),
		    d.ups[i].port);
	}
	d.ready = true;
	const char *auto_why = "";
	if (cfg->rules_format_auto)
		config_auto_format(&auto_why);
	log_info("sedns %s serving listen=%s:%u%s files=%zu entries=%zu hosts=%zu vips=%zu errors=%zu warnings=%zu "
	    "upstreams=%s metrics=%s vip_store=%s rules=%s%s%s%s", SEDNS_VERSION, netaddr_fmt(&cfg->listen[0].addr, la, sizeof(la)),
	    cfg->listen[0].port, cfg->nlisten > 1 ? ",..." : "", d.sum.files, d.sum.entries, d.sum.hosts, d.sum.vips,
	    d.sum.errors, d.sum.warnings, d.nups ? ua : "none", cfg->metrics[0] ? cfg->metrics : "off",
	    d.standby ? "standby" : d.store_ro[0] ? "read-only" : "writable",
	    cfg->rules_format == RULES_FMT_NFT ? "nft" : "iptables", cfg->rules_apply ? "" : "(dry-run)",
	    cfg->rules_format_auto ? " rules_auto=" : "", cfg->rules_format_auto ? auto_why : "");
	char status[256];
	snprintf(status, sizeof(status), "READY=1\nSTATUS=serving %zu hosts, %zu VIPs", d.sum.hosts, d.sum.vips);
	notify_send(status);
	event_base_dispatch(d.base);
	for (int i = 0; i < 4; i++)
		event_free(sigs[i]);
	if (d.watchdog)
		event_free(d.watchdog);
	/* a reload still building: let it end, install nothing */
	bgjob_wait(d.builder);
	if (d.building != NULL) {
		nametable_free(d.building->nt);
		config_free(d.building->nc);
		free(d.building->held);
		kube_snapshot_free(d.building->ks);
		free(d.building);
		d.building = NULL;
	}
	bgjob_free(d.builder);
	bgjob_free(d.backuper);
	kube_free(d.kube);
	event_free(d.stop_ev);
	event_free(d.retry_ev);
	event_free(d.lock_ev);
	/* no backup on the way out: it would lengthen a restart's gap; the
	 * next start writes one (BACKUP_FIRST_SECONDS after it serves) */
	event_free(d.backup_ev);
	http_free(d.http);
	http_free(d.debug_http);
	watch_free(d.watch);
	rulesync_free(d.rs);
	endpoints_free(d.ep);
	nametable_free(server_set_table(d.srv, NULL));
	server_free(d.srv);
	event_base_free(d.base);
	vipstore_close(d.vs);
	statelock_release(d.lock_fd);
	loader_cache_free(&d.cache);
	config_free(d.cfg);
	log_info("stopped");
	return 0;
}
