/* loader — see include/loader.h. */
#include "loader.h"
#include "fnv.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "forward.h"
#include "log.h"
#include "monotime.h"
#include "tenancy.h"

static void print_diags(const struct se_set *set, size_t from, FILE *diag, struct loader_cache *cache);

void
loader_read(struct se_set *set, char *const *paths, size_t npaths, FILE *diag)
{
	for (size_t i = 0; i < npaths; i++)
		se_load_path(set, paths[i]);
	print_diags(set, 0, diag, NULL);
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Prints one diagnostic unless the last build printed the same one. */
static void
emit(struct loader_cache *cache, FILE *diag, enum se_severity sev, const char *msg)
{
	if (diag == NULL)
		return;
	if (cache != NULL) {
		uint64_t h = 1469598103934665603ull;
		for (const char *p = msg; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		h ^= (uint64_t)sev;
		bool room = cache->nseen_next % 1024 != 0;
		if (!room) {
			uint64_t *n = realloc(cache->seen_next, (cache->nseen_next + 1024) * sizeof(*n));
			if (n != NULL) {
				cache->seen_next = n;
				room = true;
			}
		}
		if (room)
			cache->seen_next[cache->nseen_next++] = h;
		if (cache->seen != NULL && bsearch(&h, cache->seen, cache->nseen, sizeof(h), u64_cmp) != NULL)
			return;
	}
	char safe[4096];
	log_escape(msg, safe, sizeof(safe));
	fprintf(diag, "%s: %s\n", sev == SE_ERROR ? "error" : "warning", safe);
}

/* The build is over: what it printed is what the next one will not. */
static void
seen_rotate(struct loader_cache *cache)
{
	free(cache->seen);
	cache->seen = cache->seen_next;
	cache->nseen = cache->nseen_next;
	cache->seen_next = NULL;
	cache->nseen_next = 0;
	if (cache->seen)
		qsort(cache->seen, cache->nseen, sizeof(*cache->seen), u64_cmp);
}

static void
print_diags(const struct se_set *set, size_t from, FILE *diag, struct loader_cache *cache)
{
	for (size_t i = from; i < set->ndiags; i++)
		emit(cache, diag, set->diags[i].severity, set->diags[i].message);
}

static void
files_free(struct lc_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].path);
		se_block_release(f[i].blk);
	}
	free(f);
}

static void
groups_free(struct lc_group *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		se_block_release(g[i].blk);
	free(g);
}

static int
group_cmp(const void *x, const void *y)
{
	const struct lc_group *a = x, *b = y;
	return a->hash < b->hash ? -1 : a->hash > b->hash;
}

void
loader_cache_free(struct loader_cache *c)
{
	files_free(c->files, c->nfiles);
	files_free(c->pending, c->npending);
	groups_free(c->groups, c->ngroups);
	groups_free(c->pending_groups, c->npending_groups);
	free(c->seen);
	free(c->seen_next);
	memset(c, 0, sizeof(*c));
}

void
loader_cache_commit(struct loader_cache *c, const struct registry *reg)
{
	files_free(c->files, c->nfiles);
	c->files = c->pending;
	c->nfiles = c->npending;
	c->pending = NULL;
	c->npending = 0;
	groups_free(c->groups, c->ngroups);
	c->groups = c->pending_groups;
	c->ngroups = c->npending_groups;
	c->pending_groups = NULL;
	c->npending_groups = 0;
	if (c->groups)
		qsort(c->groups, c->ngroups, sizeof(*c->groups), group_cmp);
	c->good = &reg->set;
}

static const struct lc_file *
file_find(const struct lc_file *f, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].path, path) == 0)
			return &f[i];
	return NULL;
}

static bool
same_fp(const struct lc_file *a, const struct stat *st)
{
	return a->dev == st->st_dev && a->ino == st->st_ino && a->size == st->st_size &&
	    a->mtime.tv_sec == st->st_mtim.tv_sec && a->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The committed build loaded old cleanly and st (NULL: no stat) says the
 * file is the same: its block can be shared. */
static bool
reusable(const struct lc_file *old, const struct stat *st)
{
	return st != NULL && old != NULL && old->clean && old->blk != NULL && same_fp(old, st);
}

/*
 * Files that must be parsed (new or changed) are parsed on two threads into
 * sets of their own before the files are merged in order: a cold start at
 * 50,000 entries spends most of its time in YAML. A file whose own parse
 * was not clean, or that declares a namespace/name an earlier file has, is
 * parsed again in order by the merge, which reports it exactly as a serial
 * load would. The stat is taken before the parse, so a file rewritten
 * meanwhile has a fingerprint older than its contents and is read again.
 */
struct pre {
	struct stat st;
	bool have_st;
	bool parse;             /* new or changed: parsed beside */
	bool parsed;
	const char *path;
	struct se_set set;
};

static bool
pre_clean(const struct pre *p)
{
	return p->parsed && p->set.ndiags == 0 && p->set.nbroken == 0 && p->set.nunreadable == 0 &&
	    p->set.nfiles == 1 && p->set.nblocks == 1;
}

struct pre_job {
	struct pre *v;
	size_t n;
	size_t first;           /* parses every second file from here */
};

static void
pre_run(struct pre_job *j)
{
	size_t k = 0;
	for (size_t i = 0; i < j->n; i++) {
		if (!j->v[i].parse)
			continue;
		if (k++ % 2 == j->first) {
			se_load_path(&j->v[i].set, j->v[i].path);
			se_set_seal(&j->v[i].set);
			j->v[i].parsed = true;
		}
	}
}

static void *
pre_thread(void *arg)
{
	pre_run(arg);
	return NULL;
}

static void
preparse(struct pre *v, char *const *files, size_t n, const struct loader_cache *cache)
{
	size_t nparse = 0;
	for (size_t i = 0; i < n; i++) {
		v[i].path = files[i];
		se_set_init(&v[i].set);
		v[i].have_st = stat(files[i], &v[i].st) == 0;
		const struct lc_file *old = file_find(cache->files, cache->nfiles, files[i]);
		v[i].parse = !reusable(old, v[i].have_st ? &v[i].st : NULL);
		nparse += v[i].parse;
	}
	/* one file alone is parsed by the merge itself */
	if (nparse < 2)
		return;
	struct pre_job a = { v, n, 0 }, b = { v, n, 1 };
	pthread_t t;
	bool two = pthread_create(&t, NULL, pre_thread, &b) == 0;
	pre_run(&a);
	if (two)
		pthread_join(t, NULL);
}

#define GROUP_MASK 31
#define GROUP_MAX 256

/* Loads docs in runs (struct lc_group): a run identical to one of the
 * committed build's that loaded cleanly shares its block. */
static void
load_docs(struct se_set *set, const struct loader_doc *docs, size_t ndocs, struct loader_cache *cache)
{
	groups_free(cache->pending_groups, cache->npending_groups);
	cache->pending_groups = NULL;
	cache->npending_groups = 0;
	size_t start = 0;
	uint64_t h = FNV64_INIT;
	for (size_t i = 0; i < ndocs; i++) {
		const struct loader_doc *d = &docs[i];
		uint64_t len = d->len;
		h = fnv64(h, d->name, strlen(d->name) + 1);
		h = fnv64(h, &len, sizeof(len));
		h = fnv64(h, d->text, d->len);
		bool end = i + 1 == ndocs || i + 1 - start >= GROUP_MAX ||
		    (fnv64(FNV64_INIT, d->name, strlen(d->name)) & GROUP_MASK) == 0;
		if (!end)
			continue;
		struct lc_group key = { .hash = h };
		const struct lc_group *old = cache->groups ?
		    bsearch(&key, cache->groups, cache->ngroups, sizeof(key), group_cmp) : NULL;
		size_t d0 = set->ndiags;
		struct se_block *blk = NULL;
		if (old && old->clean && old->blk && se_set_adopt_block(set, old->blk)) {
			blk = old->blk;
		} else {
			size_t b0 = set->nblocks;
			bool shared = se_set_begin_block(set);
			for (size_t k = start; k <= i; k++)
				se_load_buffer(set, docs[k].name, docs[k].text, docs[k].len);
			se_set_seal(set);
			if (shared && set->nblocks > b0)
				blk = se_set_last_block(set);
		}
		struct lc_group *ng = realloc(cache->pending_groups, (cache->npending_groups + 1) * sizeof(*ng));
		if (ng != NULL) {
			cache->pending_groups = ng;
			struct lc_group *g = &ng[cache->npending_groups++];
			g->hash = h;
			g->clean = set->ndiags == d0;
			g->blk = g->clean ? blk : NULL;
			if (g->blk)
				se_block_hold(g->blk);
		}
		start = i + 1;
		h = FNV64_INIT;
	}
}

static void read_cached(struct se_set *set, char *const *paths, size_t npaths, const struct loader_doc *docs,
    size_t ndocs, struct loader_cache *cache, FILE *diag, struct load_summary *sum);

void
loader_read_cached(struct se_set *set, char *const *paths, size_t npaths, struct loader_cache *cache, FILE *diag,
    struct load_summary *sum)
{
	read_cached(set, paths, npaths, NULL, 0, cache, diag, sum);
}

static void
read_cached(struct se_set *set, char *const *paths, size_t npaths, const struct loader_doc *docs, size_t ndocs,
    struct loader_cache *cache, FILE *diag, struct load_summary *sum)
{
	if (cache == NULL) {
		size_t from = set->ndiags;
		for (size_t i = 0; i < npaths; i++)
			se_load_path(set, paths[i]);
		for (size_t i = 0; i < ndocs; i++)
			se_load_buffer(set, docs[i].name, docs[i].text, docs[i].len);
		print_diags(set, from, diag, NULL);
		return;
	}
	files_free(cache->pending, cache->npending);
	cache->pending = NULL;
	cache->npending = 0;
	size_t kept = 0;
	size_t from = set->ndiags;
	const char *unlisted[CONFIG_MAX_LIST];
	size_t nunlisted = 0;
	for (size_t p = 0; p < npaths && p < CONFIG_MAX_LIST; p++) {
		char **files;
		size_t nfiles;
		char err[256];
		if (!se_list_path(paths[p], &files, &nfiles, err, sizeof(err))) {
			se_load_path(set, paths[p]); /* records the error */
			unlisted[nunlisted++] = paths[p];
			continue;
		}
		struct pre *pre = calloc(nfiles ? nfiles : 1, sizeof(*pre));
		if (pre != NULL)
			preparse(pre, files, nfiles, cache);
		for (size_t i = 0; i < nfiles; i++) {
			struct stat sti;
			struct stat *st = pre ? &pre[i].st : &sti;
			bool have_st = pre ? pre[i].have_st : stat(files[i], &sti) == 0;
			const struct lc_file *old = file_find(cache->files, cache->nfiles, files[i]);
			size_t d0 = set->ndiags, b0 = set->nblocks;
			struct se_block *blk = NULL;
			if (reusable(old, have_st ? st : NULL) && se_set_adopt_block(set, old->blk)) {
				/* unchanged since a clean load: its entries are
				 * shared, neither parsed nor copied */
				set->nfiles++;
				blk = old->blk;
			} else if (pre && pre_clean(&pre[i]) && se_set_adopt_block(set, se_set_last_block(&pre[i].set))) {
				set->nfiles++;
				blk = se_set_last_block(&pre[i].set);
			} else {
				/* again here, in order: its diagnostics, and a
				 * namespace/name an earlier file declared */
				se_load_path(set, files[i]);
				if (set->nblocks > b0)
					blk = se_set_last_block(set);
			}
			struct lc_file *np = realloc(cache->pending, (cache->npending + 1) * sizeof(*np));
			if (np == NULL || !have_st)
				continue;
			cache->pending = np;
			struct lc_file *f = &np[cache->npending];
			if ((f->path = strdup(files[i])) == NULL)
				continue;
			f->dev = st->st_dev;
			f->ino = st->st_ino;
			f->size = st->st_size;
			f->mtime = st->st_mtim;
			f->clean = set->ndiags == d0;
			f->blk = f->clean ? blk : NULL;
			if (f->blk)
				se_block_hold(f->blk);
			cache->npending++;
		}
		for (size_t i = 0; pre && i < nfiles; i++)
			se_set_free(&pre[i].set);
		free(pre);
		se_free_list(files, nfiles);
	}
	/* after the files: a namespace/name both declare is the file's */
	load_docs(set, docs, ndocs, cache);
	/* an entry that failed validation keeps its last valid version */
	for (size_t i = 0; cache->good && i < set->nrejected_keys; i++) {
		const struct se_key *k = &set->rejected_keys[i];
		const struct serviceentry *g = se_set_find(cache->good, k->ns, k->name);
		if (g == NULL || se_set_find(set, k->ns, k->name) != NULL)
			continue;
		if (se_set_copy_entry(set, g)) {
			kept++;
			log_warnx("serviceentry=%s/%s (%s:%d) has errors: keeping its last valid version from %s:%d", k->ns,
			    k->name, k->file, k->line, g->file, g->line);
		}
	}
	/* a file not read to its end: what did not load keeps its last version */
	for (size_t i = 0; cache->good && i < cache->good->nentries; i++) {
		const struct serviceentry *g = cache->good->entries[i];
		bool lost = se_set_is_broken(set, g->file);
		for (size_t u = 0; u < nunlisted && !lost; u++) {
			size_t ul = strlen(unlisted[u]);
			lost = strncmp(g->file, unlisted[u], ul) == 0 && (g->file[ul] == '\0' || g->file[ul] == '/');
		}
		if (!lost || se_set_find(set, g->namespace, g->name) != NULL)
			continue;
		if (se_set_copy_entry(set, g)) {
			kept++;
			log_warnx("serviceentry=%s/%s: %s could not be read to its end; keeping its last valid version",
			    g->namespace, g->name, g->file);
		}
	}
	print_diags(set, from, diag, cache);
	if (sum)
		sum->kept = kept;
}

size_t
loader_restricted(const struct se_set *set)
{
	size_t n = 0;
	for (size_t i = 0; i < set->nentries; i++) {
		const struct serviceentry *se = set->entries[i];
		bool all = se->nexport_to == 0;
		for (size_t k = 0; k < se->nexport_to; k++)
			all |= strcmp(se->export_to[k], "*") == 0;
		n += !all;
	}
	return n;
}

void
loader_note_export_to(const struct config *cfg, size_t n, FILE *out)
{
	if (cfg->nworkloads || n == 0 || out == NULL)
		return;
	fprintf(out, "note: %zu ServiceEntries restrict exportTo, but per-namespace views are off (no workloads: "
	    "configured): every allowed client sees them\n", n);
}

struct vipstore *
loader_open_store(const struct config *cfg, bool readonly, bool reallocate, bool *disk_error, char *err,
    size_t errlen)
{
	struct vipstore_opts o;
	memset(&o, 0, sizeof(o));
	o.dir = cfg->state_dir;
	o.pool4 = cfg->vip_pool;
	o.pool6_on = cfg->vip_pool6_on;
	o.pool6 = cfg->vip_pool6;
	o.hold_seconds = (uint32_t)(cfg->vip_hold_ms / 1000);
	o.readonly = readonly;
	o.reallocate = reallocate;
	o.disk_error = disk_error;
	return vipstore_open(&o, err, errlen);
}

static struct registry *build(const struct config *cfg, struct vipstore *vs, bool allocate,
    struct loader_cache *cache, const struct loader_doc *docs, size_t ndocs, time_t now, FILE *diag,
    struct load_summary *sum, char *err, size_t errlen);

struct registry *
loader_build(const struct config *cfg, struct vipstore *vs, bool allocate, time_t now, FILE *diag,
    struct load_summary *sum, char *err, size_t errlen)
{
	return build(cfg, vs, allocate, NULL, NULL, 0, now, diag, sum, err, errlen);
}

struct registry *
loader_build_cached(const struct config *cfg, struct vipstore *vs, bool allocate, struct loader_cache *cache,
    time_t now, FILE *diag, struct load_summary *sum, char *err, size_t errlen)
{
	return build(cfg, vs, allocate, cache, NULL, 0, now, diag, sum, err, errlen);
}

struct registry *
loader_build_docs(const struct config *cfg, struct vipstore *vs, bool allocate, struct loader_cache *cache,
    const struct loader_doc *docs, size_t ndocs, time_t now, FILE *diag, struct load_summary *sum, char *err,
    size_t errlen)
{
	return build(cfg, vs, allocate, cache, docs, ndocs, now, diag, sum, err, errlen);
}

static struct registry *
build(const struct config *cfg, struct vipstore *vs, bool allocate, struct loader_cache *cache,
    const struct loader_doc *docs, size_t ndocs, time_t now, FILE *diag, struct load_summary *sum, char *err,
    size_t errlen)
{
	struct se_set set;
	se_set_init(&set);
	struct load_summary s;
	memset(&s, 0, sizeof(s));
	double t0 = monotime_now();
	read_cached(&set, cfg->serviceentries, cfg->nserviceentries, docs, ndocs, cache, diag, &s);
	se_set_seal(&set);
	log_debug("load: read paths=%zu files=%zu entries=%zu docs=%zu errors=%zu warnings=%zu rejected=%zu "
	    "kept_last_good=%zu unreadable=%zu duration_ms=%.1f", cfg->nserviceentries, set.nfiles, set.nentries, ndocs,
	    set.nerrors, set.nwarnings, set.nrejected, s.kept, set.nunreadable, (monotime_now() - t0) * 1000);
	s.files = set.nfiles;
	s.entries = set.nentries;
	s.errors += set.nerrors;
	s.warnings = set.nwarnings;
	s.rejected = set.nrejected;
	s.restricted = loader_restricted(&set);
	if (set.nunreadable > 0 && cache != NULL) {
		/* unreadable is not empty: building from what was readable
		 * would put every host of the rest on hold */
		snprintf(err, errlen, "%zu ServiceEntry path(s) or file(s) could not be read (see above); nothing "
		    "changed", set.nunreadable);
		se_set_free(&set);
		if (sum)
			*sum = s;
		return NULL;
	}
	double tb = monotime_now();
	struct tenancy *t = tenancy_new(cfg->cluster_domain);
	struct registry *reg = t ? registry_build(&set, t) : NULL;
	tenancy_free(t);
	if (reg == NULL) {
		se_set_free(&set);
		snprintf(err, errlen, "out of memory building the registry");
		return NULL;
	}
	log_debug("load: registry hosts=%zu diagnostics=%zu duration_ms=%.1f", reg->nhosts, reg->ndiags,
	    (monotime_now() - tb) * 1000);
	s.hosts = reg->nhosts;
	if (vs) {
		double t1 = monotime_now();
		if (allocate) {
			struct vipstore_stats st;
			if (!registry_assign_vips(reg, vs, now, &st, err, errlen)) {
				registry_free(reg);
				return NULL;
			}
			log_debug("load: VIP sync hosts=%zu unchanged=%s allocated=%llu released=%llu exhausted=%llu "
			    "active=%llu held=%llu pool=%llu duration_ms=%.1f", reg->nhosts, st.unchanged ? "yes" : "no",
			    (unsigned long long)st.allocated,
			    (unsigned long long)st.released, (unsigned long long)st.exhausted,
			    (unsigned long long)st.active, (unsigned long long)st.held, (unsigned long long)st.pool_size,
			    (monotime_now() - t1) * 1000);
		} else {
			s.novip = registry_lookup_vips(reg, vs);
			log_debug("load: VIP lookup (store read-only) hosts=%zu without_vip=%zu duration_ms=%.1f",
			    reg->nhosts, s.novip, (monotime_now() - t1) * 1000);
		}
	}
	/* after the VIP sync, which adds its own (address conflicts) */
	for (size_t i = 0; i < reg->ndiags; i++) {
		emit(cache, diag, reg->diags[i].severity, reg->diags[i].message);
		if (reg->diags[i].severity == SE_ERROR)
			s.errors++;
		else
			s.warnings++;
	}
	char first[5 * 64] = "";
	for (size_t i = 0; i < reg->nhosts; i++) {
		const struct reg_host *h = &reg->hosts[i];
		s.conflicts += h->addr_conflict;
		if (h->answer == REG_VIP)
			s.vips++;
		if (h->vip_exhausted && s.exhausted++ < 5) {
			size_t l = strlen(first);
			snprintf(first + l, sizeof(first) - l, "%s%.60s", l ? ", " : "", h->name);
		}
	}
	/* one line per load, whatever the count: a full pool must not flood
	 * the log with a line per host on every reload */
	if (s.exhausted > 0) {
		char pool[NETPREFIX_STRLEN];
		/* each host left without its VIP is an error of this load */
		s.errors += s.exhausted;
		log_error("VIP pool %s exhausted: %zu host(s) get no VIP and are forwarded (first: %s%s; all: sedns vips)",
		    netprefix_fmt(&cfg->vip_pool, pool, sizeof(pool)), s.exhausted, first, s.exhausted > 5 ? ", ..." : "");
	}
	if (sum)
		*sum = s;
	if (cache)
		seen_rotate(cache);
	return reg;
}

size_t
loader_zone_specs(const struct config *cfg, const struct config_endpoint *ups, size_t nups,
    struct fwd_zone_spec *specs)
{
	size_t n = 0;
	bool root = false;
	for (size_t i = 0; i < cfg->nforward_zones && n < FWD_MAX_ZONES; i++) {
		const struct config_zone *z = &cfg->forward_zones[i];
		specs[n].name = z->name;
		if (z->name[0] == '\0') {
			/* its list went through loader_upstreams' own-address filter */
			root = true;
			specs[n].ups = ups;
			specs[n].nups = nups;
		} else {
			specs[n].ups = z->ups;
			specs[n].nups = z->nups;
		}
		n++;
	}
	if (!root && n < FWD_MAX_ZONES) {
		specs[n].name = "";
		specs[n].ups = ups;
		specs[n].nups = nups;
		n++;
	}
	return n;
}

size_t
loader_upstreams(const struct config *cfg, struct config_endpoint *out)
{
	struct config_endpoint cand[CONFIG_MAX_LIST];
	size_t n;
	const char *src;
	const struct config_zone *root = NULL;
	for (size_t i = 0; i < cfg->nforward_zones; i++)
		if (cfg->forward_zones[i].name[0] == '\0')
			root = &cfg->forward_zones[i];
	if (root) {
		memcpy(cand, root->ups, root->nups * sizeof(cand[0]));
		n = root->nups;
		src = "forward_zones \".\"";
	} else if (cfg->nupstreams) {
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

bool
loader_fingerprint(char *const *paths, size_t npaths, uint64_t *fp)
{
	uint64_t h = FNV64_INIT;
	for (size_t p = 0; p < npaths; p++) {
		char **files;
		size_t n;
		char err[256];
		if (!se_list_path(paths[p], &files, &n, err, sizeof(err)))
			return false;
		h = fnv64(h, paths[p], strlen(paths[p]) + 1);
		for (size_t i = 0; i < n; i++) {
			struct stat st;
			if (stat(files[i], &st) != 0) {
				se_free_list(files, n);
				return false;
			}
			/* ctime too: a rewrite that kept size and mtime (cp -p,
			 * touch -r) still moves it, and nothing can set it */
			uint64_t v[7] = { (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
				(uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ctim.tv_sec,
				(uint64_t)st.st_ctim.tv_nsec };
			h = fnv64(h, files[i], strlen(files[i]) + 1);
			h = fnv64(h, v, sizeof(v));
		}
		se_free_list(files, n);
	}
	*fp = h;
	return true;
}
