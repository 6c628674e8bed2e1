/* loader — see include/loader.h. */
#include "loader.h"

#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "log.h"
#include "tenancy.h"

static void print_diags(const struct se_set *set, size_t from, FILE *diag);

void
loader_read(struct se_set *set, char *const *paths, size_t npaths, FILE *diag)
{
	for (size_t i = 0; i < npaths; i++)
		se_load_path(set, paths[i]);
	print_diags(set, 0, diag);
}

static void
print_diags(const struct se_set *set, size_t from, FILE *diag)
{
	if (diag == NULL)
		return;
	for (size_t i = from; i < set->ndiags; i++)
		fprintf(diag, "%s: %s\n", set->diags[i].severity == SE_ERROR ? "error" : "warning",
		    set->diags[i].message);
}

void
loader_cache_free(struct loader_cache *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->paths[i]);
		free(c->bufs[i]);
	}
	free(c->paths);
	free(c->bufs);
	free(c->lens);
	memset(c, 0, sizeof(*c));
}

static ssize_t
cache_find(const struct loader_cache *c, const char *path)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->paths[i], path) == 0)
			return (ssize_t)i;
	return -1;
}

/* Builds the next cache generation: entries for the files seen now. */
static void
cache_put(struct loader_cache *next, const char *path, const char *buf, size_t len)
{
	char **np = realloc(next->paths, (next->n + 1) * sizeof(*np));
	if (np == NULL)
		return;
	next->paths = np;
	char **nb = realloc(next->bufs, (next->n + 1) * sizeof(*nb));
	if (nb == NULL)
		return;
	next->bufs = nb;
	size_t *nl = realloc(next->lens, (next->n + 1) * sizeof(*nl));
	if (nl == NULL)
		return;
	next->lens = nl;
	char *p = strdup(path), *b = malloc(len + 1);
	if (p == NULL || b == NULL) {
		free(p);
		free(b);
		return;
	}
	memcpy(b, buf, len);
	b[len] = '\0';
	next->paths[next->n] = p;
	next->bufs[next->n] = b;
	next->lens[next->n] = len;
	next->n++;
}

void
loader_read_cached(struct se_set *set, char *const *paths, size_t npaths, struct loader_cache *cache, FILE *diag,
    struct load_summary *sum)
{
	if (cache == NULL) {
		loader_read(set, paths, npaths, diag);
		return;
	}
	struct loader_cache next;
	memset(&next, 0, sizeof(next));
	size_t extra_errors = 0, kept = 0;
	for (size_t p = 0; p < npaths; p++) {
		char **files;
		size_t nfiles;
		char err[256];
		if (!se_list_path(paths[p], &files, &nfiles, err, sizeof(err))) {
			se_load_path(set, paths[p]); /* records the error */
			continue;
		}
		for (size_t i = 0; i < nfiles; i++) {
			char *buf;
			size_t len;
			ssize_t ci = cache_find(cache, files[i]);
			if (!se_read_file(files[i], &buf, &len, err, sizeof(err))) {
				if (diag)
					fprintf(diag, "error: %s:1:1: %s\n", files[i], err);
				extra_errors++;
				if (ci >= 0) {
					kept++;
					se_load_buffer(set, files[i], cache->bufs[ci], cache->lens[ci]);
					cache_put(&next, files[i], cache->bufs[ci], cache->lens[ci]);
				}
				continue;
			}
			if (ci >= 0 && cache->lens[ci] == len && memcmp(cache->bufs[ci], buf, len) == 0) {
				/* unchanged since it was last good: one parse is enough */
				se_load_buffer(set, files[i], buf, len);
				set->nfiles++;
				cache_put(&next, files[i], buf, len);
				free(buf);
				continue;
			}
			/* changed: parse it alone first, to know whether it is good */
			struct se_set trial;
			se_set_init(&trial);
			se_load_buffer(&trial, files[i], buf, len);
			if (trial.nerrors == 0 || ci < 0) {
				/* good, or broken with nothing better: take what is valid */
				se_load_buffer(set, files[i], buf, len);
				set->nfiles++;
				if (trial.nerrors == 0)
					cache_put(&next, files[i], buf, len);
			} else {
				print_diags(&trial, 0, diag);
				extra_errors += trial.nerrors;
				kept++;
				log_warnx("file=%s has errors: keeping its last good version in effect", files[i]);
				se_load_buffer(set, files[i], cache->bufs[ci], cache->lens[ci]);
				set->nfiles++;
				cache_put(&next, files[i], cache->bufs[ci], cache->lens[ci]);
			}
			se_set_free(&trial);
			free(buf);
		}
		se_free_list(files, nfiles);
	}
	print_diags(set, 0, diag);
	loader_cache_free(cache);
	*cache = next;
	if (sum) {
		sum->errors += extra_errors;
		sum->kept = kept;
	}
}

size_t
loader_restricted(const struct se_set *set)
{
	size_t n = 0;
	for (size_t i = 0; i < set->nentries; i++) {
		const struct serviceentry *se = &set->entries[i];
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
loader_open_store(const struct config *cfg, bool readonly, bool reallocate, char *err, size_t errlen)
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
	return vipstore_open(&o, err, errlen);
}

static struct registry *build(const struct config *cfg, struct vipstore *vs, bool allocate,
    struct loader_cache *cache, time_t now, FILE *diag, struct load_summary *sum, char *err, size_t errlen);

struct registry *
loader_build(const struct config *cfg, struct vipstore *vs, bool allocate, time_t now, FILE *diag,
    struct load_summary *sum, char *err, size_t errlen)
{
	return build(cfg, vs, allocate, NULL, now, diag, sum, err, errlen);
}

struct registry *
loader_build_cached(const struct config *cfg, struct vipstore *vs, struct loader_cache *cache, time_t now,
    FILE *diag, struct load_summary *sum, char *err, size_t errlen)
{
	return build(cfg, vs, true, cache, now, diag, sum, err, errlen);
}

static struct registry *
build(const struct config *cfg, struct vipstore *vs, bool allocate, struct loader_cache *cache, time_t now,
    FILE *diag, struct load_summary *sum, char *err, size_t errlen)
{
	struct se_set set;
	se_set_init(&set);
	struct load_summary s;
	memset(&s, 0, sizeof(s));
	loader_read_cached(&set, cfg->serviceentries, cfg->nserviceentries, cache, diag, &s);
	s.files = set.nfiles;
	s.entries = set.nentries;
	s.errors += set.nerrors;
	s.warnings = set.nwarnings;
	s.rejected = set.nrejected;
	s.restricted = loader_restricted(&set);
	struct tenancy *t = tenancy_new(cfg->cluster_domain);
	struct registry *reg = t ? registry_build(&set, t) : NULL;
	tenancy_free(t);
	if (reg == NULL) {
		se_set_free(&set);
		snprintf(err, errlen, "out of memory building the registry");
		return NULL;
	}
	s.hosts = reg->nhosts;
	if (vs) {
		if (allocate) {
			struct vipstore_stats st;
			if (!registry_assign_vips(reg, vs, now, &st, err, errlen)) {
				registry_free(reg);
				return NULL;
			}
		} else {
			registry_lookup_vips(reg, vs);
		}
	}
	/* after the VIP sync, which adds its own (address conflicts) */
	for (size_t i = 0; i < reg->ndiags; i++) {
		if (diag)
			fprintf(diag, "%s: %s\n", reg->diags[i].severity == SE_ERROR ? "error" : "warning",
			    reg->diags[i].message);
		if (reg->diags[i].severity == SE_ERROR)
			s.errors++;
		else
			s.warnings++;
	}
	for (size_t i = 0; i < reg->nhosts; i++) {
		const struct reg_host *h = &reg->hosts[i];
		s.conflicts += h->addr_conflict;
		if (h->answer == REG_VIP)
			s.vips++;
		if (h->vip_exhausted) {
			s.exhausted++;
			log_error("vip pool exhausted: host=%s gets no VIP and is forwarded", h->name);
		}
	}
	if (sum)
		*sum = s;
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
