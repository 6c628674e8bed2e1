/*
 * tenancy — who may declare which name, so that a ServiceEntry author in one
 * namespace cannot capture another namespace's names (or everybody's).
 *
 * Names under the cluster domain follow Kubernetes: <ns>.svc.<cd>,
 * <svc>.<ns>.svc.<cd> and <host>.<svc>.<ns>.svc.<cd> (and the same under
 * pod.<cd>) belong to namespace <ns>; <cd>, svc.<cd> and pod.<cd> belong to
 * nobody; deeper names (three or more labels above <ns>, which Kubernetes
 * never creates: search-path expansions of external names such as
 * api.stripe.com.<ns>.svc.<cd>) and other names under <cd> are free.
 *
 *   host                  allowed for an entry in namespace N when
 *   exact name            it is not under <cd>, or free, or belongs to N
 *   *.R (wildcard)        R is not a public suffix (ICANN section of the
 *                         Public Suffix List, via libpsl), R is not <cd> or
 *                         above it, and R is free or belongs to N
 *
 * At lookup time a search-path expansion that lands on a name of namespace
 * X is answered only from a host with a ServiceEntry in X
 * (nametable.c uses tenancy_classify).
 *
 * The classification is pure. struct tenancy holds the cluster domain and
 * the PSL context (psl_latest: the system's list, else libpsl's built-in
 * one); owned, freed by tenancy_free.
 */
#ifndef SEDNS_TENANCY_H
#define SEDNS_TENANCY_H

#include <stdbool.h>
#include <stddef.h>

enum k8s_owner {
	K8S_NOT_CLUSTER,   /* not under the cluster domain */
	K8S_NAMESPACE,     /* belongs to one namespace (*ns, *nslen) */
	K8S_RESERVED,      /* <cd>, svc.<cd>, pod.<cd>: nobody's */
	K8S_FREE,          /* under <cd> but no Kubernetes name */
};

/* name: lower-case, no trailing dot, len bytes; cd likewise. */
enum k8s_owner tenancy_classify(const char *name, size_t len, const char *cd, const char **ns, size_t *nslen);

struct tenancy;

struct tenancy *tenancy_new(const char *cluster_domain);
void tenancy_free(struct tenancy *t);

/* May an entry in namespace ns declare host (lower-case, no trailing dot;
 * "*.R" for a wildcard)? When not, why gets the reason. */
bool tenancy_host_allowed(const struct tenancy *t, const char *host, const char *ns, char *why, size_t whylen);

#endif
