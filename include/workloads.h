/*
 * workloads — which namespace a client IP belongs to, from Pod lists as
 * `kubectl get pods -A -o yaml --field-selector spec.nodeName=NODE` prints
 * them (kind: List / PodList with items, or single Pod documents).
 *
 * Each running pod's status.podIPs[].ip (and status.podIP) maps to its
 * metadata.namespace. hostNetwork pods are skipped (their IP is the node's,
 * shared by many), and so are pods in phase Succeeded or Failed (their IP
 * may already belong to someone else).
 *
 * Ownership: an immutable map owned by the caller (workloads_free); the
 * name table takes it over and frees it with itself. Lookups allocate
 * nothing.
 */
#ifndef SEDNS_WORKLOADS_H
#define SEDNS_WORKLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "netaddr.h"

struct workloads;

/* Loads every path (files or directories of *.yaml). Problems are printed
 * to diag as "error: FILE:LINE:COL: message" and counted in *nerrors; the
 * pods that did parse are kept. NULL only on out of memory. */
struct workloads *workloads_load(char *const *paths, size_t npaths, FILE *diag, size_t *npods,
    size_t *nerrors);
/* Loads one YAML buffer (tests). */
struct workloads *workloads_load_buffer(const char *name, const char *buf, size_t len, FILE *diag,
    size_t *npods, size_t *nerrors);
void workloads_free(struct workloads *w);
/* An empty map, and one IP added to a map (the Kubernetes API's pods, after
 * the files'): the first namespace given for an IP keeps it. false on out
 * of memory. */
struct workloads *workloads_new(void);
bool workloads_add(struct workloads *w, const struct netaddr *ip, const char *ns);

/* Namespace of the pod with this IP, or NULL. */
const char *workloads_namespace(const struct workloads *w, const struct netaddr *ip);
size_t workloads_count(const struct workloads *w);

#endif
