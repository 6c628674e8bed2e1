/* loader — see include/loader.h. */
#include "loader.h"

#include <string.h>

#include "forward.h"
#include "log.h"

void
loader_read(struct se_set *set, char *const *paths, size_t npaths, FILE *diag)
{
	for (size_t i = 0; i < npaths; i++)
		se_load_path(set, paths[i]);
	if (diag == NULL)
		return;
	for (size_t i = 0; i < set->ndiags; i++)
		fprintf(diag, "%s: %s\n", set->diags[i].severity == SE_ERROR ? "error" : "warning",
		    set->diags[i].message);
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

struct registry *
loader_build(const struct config *cfg, struct vipstore *vs, bool allocate, time_t now, FILE *diag,
    struct load_summary *sum, char *err, size_t errlen)
{
	struct se_set set;
	se_set_init(&set);
	loader_read(&set, cfg->serviceentries, cfg->nserviceentries, diag);
	struct load_summary s;
	memset(&s, 0, sizeof(s));
	s.files = set.nfiles;
	s.entries = set.nentries;
	s.errors = set.nerrors;
	s.warnings = set.nwarnings;
	s.rejected = set.nrejected;
	struct registry *reg = registry_build(&set);
	if (reg == NULL) {
		se_set_free(&set);
		snprintf(err, errlen, "out of memory building the registry");
		return NULL;
	}
	for (size_t i = 0; i < reg->ndiags; i++) {
		if (diag)
			fprintf(diag, "%s: %s\n", reg->diags[i].severity == SE_ERROR ? "error" : "warning",
			    reg->diags[i].message);
		if (reg->diags[i].severity == SE_ERROR)
			s.errors++;
		else
			s.warnings++;
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
	for (size_t i = 0; i < reg->nhosts; i++) {
		const struct reg_host *h = &reg->hosts[i];
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
loader_upstreams(const struct config *cfg, struct config_endpoint *out)
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
