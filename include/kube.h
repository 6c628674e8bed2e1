/*
 * kube — sedns's Kubernetes client: informers for ServiceEntries (all
 * namespaces) and this node's pods, over HTTPS to the API server, on the
 * daemon's event loop.
 *
 * HTTP: libcurl's multi interface driven by libevent (curl's sockets and
 * timer become events on the loop; nothing blocks). TLS verification is
 * always on; every request has a connect timeout and a total timeout (LIST:
 * kubernetes.request_timeout; WATCH: its timeoutSeconds plus that), and TCP
 * keepalive finds a dead peer under an idle watch. The token file is read
 * before every request, so a rotated token is used from the next one.
 *
 * The protocol decisions (what to request next, what changed) are
 * kubeinf's; this module does the requests, parses bodies with json-c and
 * logs failures clearly (a wrong token, a CA that does not match, RBAC),
 * while the daemon keeps serving what it had.
 *
 * A change in either store arms one timer (reload_debounce): the callback
 * runs once, reload_debounce after the first change, however many events
 * came meanwhile. The daemon then takes a kube_snapshot for its reload.
 *
 * Ownership: struct kube owns its curl handles, events and informers;
 * kube_free cancels whatever is in flight. A snapshot is a copy the reload
 * (build thread) owns until kube_snapshot_free; it shares nothing with the
 * kube, which may change meanwhile.
 */
#ifndef SEDNS_KUBE_H
#define SEDNS_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kubeinf.h"
#include "loader.h"

struct event_base;
struct kube;
struct workloads;

enum kube_kind { KUBE_SERVICEENTRIES = 0, KUBE_PODS = 1, KUBE_NKINDS };

/* On when cfg has kubernetes.in_cluster or kubernetes.kubeconfig. */
bool kube_configured(const struct config *cfg);

/* Reads the connection settings (kubeconfig or service account) and starts
 * both informers. NULL with a reason in err (bad kubeconfig, no node name).
 * changed(arg) runs on the loop, debounce_ms after the first change. */
struct kube *kube_new(struct event_base *base, const struct config *cfg, uint64_t debounce_ms,
    void (*changed)(void *arg), void *arg, char *err, size_t errlen);
void kube_free(struct kube *k);

/* Every watched kind has completed a LIST. */
bool kube_synced(const struct kube *k);
/* At start, before anything else runs on the loop: runs it until synced or
 * timeout_ms; changes meanwhile do not call back (the first build reads
 * them). Returns kube_synced. */
bool kube_wait_synced(struct kube *k, uint64_t timeout_ms);
/* Why not synced (kinds waiting, their last error), for /readyz. */
void kube_why_not_synced(const struct kube *k, char *buf, size_t len);

struct kube_snapshot {
	struct loader_doc *docs;   /* ServiceEntries, named "kubernetes:NS/NAME" */
	size_t ndocs;
	struct kinf_doc *pods;     /* payloads as kubeobj.h says */
	size_t npods;
	bool pods_on;              /* pods are watched: views on, even with none */
	bool synced;               /* kube_synced when taken */
};
/* NULL on out of memory. */
struct kube_snapshot *kube_snapshot(const struct kube *k);
void kube_snapshot_free(struct kube_snapshot *s);
/* Adds the snapshot's pod IPs to w; returns how many pods. */
size_t kube_snapshot_pods(const struct kube_snapshot *s, struct workloads *w);

struct kube_kind_stats {
	bool on;
	const char *kind;          /* "serviceentries", "pods" */
	uint64_t requests;         /* HTTP requests sent */
	struct kinf_stats inf;
	double last_sync_age;      /* seconds; -1 before the first LIST */
};
void kube_stats(const struct kube *k, struct kube_kind_stats st[KUBE_NKINDS]);

#endif
