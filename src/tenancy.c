/* tenancy — see include/tenancy.h. */
#include "tenancy.h"

#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tenancy {
	char *cd;
	psl_ctx_t *psl;               /* psl_latest; NULL: the built-in list */
};

enum k8s_owner
tenancy_classify(const char *name, size_t len, const char *cd, const char **ns, size_t *nslen)
{
	size_t cl = strlen(cd);
	*ns = NULL;
	*nslen = 0;
	if (len == cl && memcmp(name, cd, cl) == 0)
		return K8S_RESERVED;
	if (len <= cl + 1 || name[len - cl - 1] != '.' || memcmp(name + len - cl, cd, cl) != 0)
		return K8S_NOT_CLUSTER;
	size_t rl = len - cl - 1; /* name[0..rl) is what is above <cd> */
	size_t p = rl;
	while (p > 0 && name[p - 1] != '.')
		p--;
	size_t kl = rl - p; /* the label right above <cd> */
	bool svc = (kl == 3 && memcmp(name + p, "svc", 3) == 0) || (kl == 3 && memcmp(name + p, "pod", 3) == 0);
	if (!svc)
		return K8S_FREE;
	if (p == 0)
		return K8S_RESERVED; /* svc.<cd> / pod.<cd> */
	size_t ne = p - 1, nb = ne;
	while (nb > 0 && name[nb - 1] != '.')
		nb--;
	size_t above = 0; /* labels above <ns> */
	for (size_t i = 0; i < nb; i++)
		above += name[i] == '.';
	if (above > 2)
		return K8S_FREE;
	*ns = name + nb;
	*nslen = ne - nb;
	return K8S_NAMESPACE;
}

struct tenancy *
tenancy_new(const char *cluster_domain)
{
	struct tenancy *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->cd = strdup(cluster_domain);
	if (t->cd == NULL) {
		free(t);
		return NULL;
	}
	size_t l = strlen(t->cd);
	for (size_t i = 0; i < l; i++)
		if (t->cd[i] >= 'A' && t->cd[i] <= 'Z')
			t->cd[i] = (char)(t->cd[i] - 'A' + 'a');
	if (l > 1 && t->cd[l - 1] == '.')
		t->cd[l - 1] = '\0';
	t->psl = psl_latest(NULL);
	return t;
}

void
tenancy_free(struct tenancy *t)
{
	if (t == NULL)
		return;
	psl_free(t->psl);
	free(t->cd);
	free(t);
}

static bool
public_suffix(const struct tenancy *t, const char *s)
{
	const psl_ctx_t *ctx = t->psl ? t->psl : psl_builtin();
	if (ctx == NULL)
		return false;
	/* the ICANN section: TLDs and registries (com, co.uk), not provider
	 * suffixes such as s3.amazonaws.com, which ServiceEntries legitimately
	 * cover with a wildcard; no implicit "*" rule for unknown TLDs
	 * (internal, local) */
	return psl_is_public_suffix2(ctx, s, PSL_TYPE_ICANN | PSL_TYPE_NO_STAR_RULE) != 0;
}

bool
tenancy_host_allowed(const struct tenancy *t, const char *host, const char *ns, char *why, size_t whylen)
{
	if (t == NULL)
		return true;
	bool wild = strncmp(host, "*.", 2) == 0;
	const char *r = wild ? host + 2 : host;
	size_t rl = strlen(r), cl = strlen(t->cd);
	if (wild) {
		if (public_suffix(t, r)) {
			snprintf(why, whylen, "wildcard \"%s\" covers the public suffix \"%s\" (everybody's names)", host,
			    r);
			return false;
		}
		if (rl == cl ? strcmp(r, t->cd) == 0 :
		    rl < cl && t->cd[cl - rl - 1] == '.' && strcmp(t->cd + cl - rl, r) == 0) {
			snprintf(why, whylen, "wildcard \"%s\" covers the cluster domain %s (every namespace's names)",
			    host, t->cd);
			return false;
		}
	}
	const char *owner;
	size_t ol;
	switch (tenancy_classify(r, rl, t->cd, &owner, &ol)) {
	case K8S_NOT_CLUSTER:
	case K8S_FREE:
		return true;
	case K8S_RESERVED:
		snprintf(why, whylen, "\"%s\" %s the cluster domain's own names (%s, svc.%s, pod.%s), which no "
		    "ServiceEntry may take", host, wild ? "covers" : "is one of", t->cd, t->cd, t->cd);
		return false;
	case K8S_NAMESPACE:
		if (strlen(ns) == ol && memcmp(ns, owner, ol) == 0)
			return true;
		snprintf(why, whylen, "\"%s\" is a name of namespace \"%.*s\" (cluster domain %s); only a "
		    "ServiceEntry in \"%.*s\" may declare it", host, (int)ol, owner, t->cd, (int)ol, owner);
		return false;
	}
	return true;
}
