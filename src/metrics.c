/*
 * metrics — histogram updates (hot path, no allocation) and the Prometheus
 * text exposition (format 0.0.4) of a struct metrics_snapshot. Pure: no I/O.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

const double histo_bounds[HISTO_NBUCKETS] = {
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
	0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
};

/* growable output; every helper is a no-op once ok is false */
struct out {
	char **buf;
	size_t *len, *cap;
	bool ok;
};

static bool out_reserve(struct out *, size_t);
static void out_printf(struct out *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void out_str(struct out *, const char *);
static void out_escaped(struct out *, const char *);
static void out_double(struct out *, double);
static void family(struct out *, const char *, const char *, const char *);
static void sample_head(struct out *, const char *, const char *, const char *);
static void sample_u(struct out *, const char *, const char *, const char *, uint64_t);
static void sample_d(struct out *, const char *, const char *, const char *, double);
static void histogram(struct out *, const char *, const char *, const struct histo *);

void
histo_observe(struct histo *h, double seconds)
{
	size_t i;

	if (!(seconds >= 0))	/* negative or NaN: a clock glitch */
		seconds = 0;
	h->count++;
	h->sum += seconds;
	for (i = 0; i < HISTO_NBUCKETS; i++) {
		if (seconds <= histo_bounds[i]) {
			h->buckets[i]++;
			return;
		}
	}
	h->inf++;
}

static bool
out_reserve(struct out *o, size_t need)
{
	size_t ncap;
	char *nb;

	if (!o->ok)
		return false;
	if (*o->cap - *o->len > need)
		return true;
	ncap = *o->cap ? *o->cap : 4096;
	while (ncap - *o->len <= need) {
		if (ncap > SIZE_MAX / 2) {
			o->ok = false;
			return false;
		}
		ncap *= 2;
	}
	if ((nb = realloc(*o->buf, ncap)) == NULL) {
		o->ok = false;
		return false;
	}
	*o->buf = nb;
	*o->cap = ncap;
	return true;
}

static void
out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!out_reserve(o, 256))
		return;
	va_start(ap, fmt);
	n = vsnprintf(*o->buf + *o->len, *o->cap - *o->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->ok = false;
		return;
	}
	if ((size_t)n >= *o->cap - *o->len) {
		if (!out_reserve(o, (size_t)n + 1))
			return;
		va_start(ap, fmt);
		n = vsnprintf(*o->buf + *o->len, *o->cap - *o->len, fmt, ap);
		va_end(ap);
		if (n < 0 || (size_t)n >= *o->cap - *o->len) {
			o->ok = false;
			return;
		}
	}
	*o->len += (size_t)n;
}

static void
out_str(struct out *o, const char *s)
{
	size_t n = strlen(s);

	if (!out_reserve(o, n + 1))
		return;
	memcpy(*o->buf + *o->len, s, n + 1);
	*o->len += n;
}

/* label value escaping per the text format: \\, \", \n */
static void
out_escaped(struct out *o, const char *s)
{
	const char *p;
	char *d;

	if (!out_reserve(o, 2 * strlen(s) + 1))
		return;
	d = *o->buf + *o->len;
	for (p = s; *p != '\0'; p++) {
		switch (*p) {
		case '\\':
			*d++ = '\\';
			*d++ = '\\';
			break;
		case '"':
			*d++ = '\\';
			*d++ = '"';
			break;
		case '\n':
			*d++ = '\\';
			*d++ = 'n';
			break;
		default:
			*d++ = *p;
		}
	}
	*d = '\0';
	*o->len = (size_t)(d - *o->buf);
}

/* shortest %g form that reads back to the same double; +Inf/-Inf/NaN */
static void
out_double(struct out *o, double v)
{
	char tmp[64];
	int prec;

	if (isnan(v)) {
		out_str(o, "NaN");
		return;
	}
	if (isinf(v)) {
		out_str(o, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	out_str(o, tmp);
}

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	out_printf(o, "# HELP sedns_%s %s\n# TYPE sedns_%s %s\n", name, help, name, type);
}

/* one sample: sedns_NAME{LABEL="VALUE"} V; label NULL for none */
static void
sample_head(struct out *o, const char *name, const char *label, const char *value)
{
	out_printf(o, "sedns_%s", name);
	if (label != NULL) {
		out_printf(o, "{%s=\"", label);
		out_escaped(o, value);
		out_str(o, "\"}");
	}
	out_str(o, " ");
}

static void
sample_u(struct out *o, const char *name, const char *label, const char *value, uint64_t v)
{
	sample_head(o, name, label, value);
	out_printf(o, "%llu\n", (unsigned long long)v);
}

/* an upstream's sample: {upstream="ADDR:PORT",zone="ZONE"} */
static void
sample_up(struct out *o, const char *name, const struct metrics_upstream *u, uint64_t v)
{
	out_printf(o, "sedns_%s{upstream=\"", name);
	out_escaped(o, u->addr);
	out_str(o, "\",zone=\"");
	out_escaped(o, u->zone[0] ? u->zone : ".");
	out_printf(o, "\"} %llu\n", (unsigned long long)v);
}

static void
sample_d(struct out *o, const char *name, const char *label, const char *value, double v)
{
	sample_head(o, name, label, value);
	out_double(o, v);
	out_str(o, "\n");
}

static void
histogram(struct out *o, const char *name, const char *help, const struct histo *h)
{
	uint64_t cum = 0;
	size_t i;

	family(o, name, "histogram", help);
	for (i = 0; i < HISTO_NBUCKETS; i++) {
		cum += h->buckets[i];
		out_printf(o, "sedns_%s_bucket{le=\"", name);
		out_double(o, histo_bounds[i]);
		out_printf(o, "\"} %llu\n", (unsigned long long)cum);
	}
	cum += h->inf;
	out_printf(o, "sedns_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	out_printf(o, "sedns_%s_sum ", name);
	out_double(o, h->sum);
	out_printf(o, "\nsedns_%s_count %llu\n", name, (unsigned long long)h->count);
}

bool
metrics_render(const struct metrics_snapshot *m, char **buf, size_t *len, size_t *cap)
{
	struct out o = { buf, len, cap, true };
	size_t i, nup = m->nupstreams;

	if (nup > METRICS_MAX_UPSTREAMS)
		nup = METRICS_MAX_UPSTREAMS;
	if (!out_reserve(&o, 1))
		return false;
	(*buf)[*len] = '\0';

	family(&o, "queries_total", "counter", "DNS queries received, by query type.");
	sample_u(&o, "queries_total", "type", "A", m->q_a);
	sample_u(&o, "queries_total", "type", "AAAA", m->q_aaaa);
	sample_u(&o, "queries_total", "type", "PTR", m->q_ptr);
	sample_u(&o, "queries_total", "type", "other", m->q_other);

	family(&o, "responses_total", "counter", "DNS queries by outcome.");
	sample_u(&o, "responses_total", "outcome", "local", m->local);
	sample_u(&o, "responses_total", "outcome", "forwarded", m->forwarded);
	sample_u(&o, "responses_total", "outcome", "nxdomain", m->nxdomain);
	sample_u(&o, "responses_total", "outcome", "nxdomain_to_nodata", m->nxdomain_rewritten);
	sample_u(&o, "responses_total", "outcome", "cache", m->cached);
	sample_u(&o, "responses_total", "outcome", "servfail", m->servfail);
	sample_u(&o, "responses_total", "outcome", "refused", m->refused);
	sample_u(&o, "responses_total", "outcome", "formerr", m->formerr);
	sample_u(&o, "responses_total", "outcome", "notimp", m->notimp);
	sample_u(&o, "responses_total", "outcome", "dropped", m->dropped);
	sample_u(&o, "responses_total", "outcome", "chaos", m->chaos);

	histogram(&o, "local_answer_duration_seconds",
	    "Time from parsing a query to building a local answer.", &m->local_latency);
	histogram(&o, "upstream_duration_seconds",
	    "Time from forwarding a query upstream to relaying the reply.", &m->upstream_latency);

	family(&o, "upstream_requests_total", "counter", "Queries sent to each upstream.");
	for (i = 0; i < nup; i++)
		sample_up(&o, "upstream_requests_total", &m->upstreams[i], m->upstreams[i].requests);
	family(&o, "upstream_failures_total", "counter", "Failed exchanges with each upstream.");
	for (i = 0; i < nup; i++)
		sample_up(&o, "upstream_failures_total", &m->upstreams[i], m->upstreams[i].failures);
	family(&o, "upstream_timeouts_total", "counter", "Timed-out queries to each upstream.");
	for (i = 0; i < nup; i++)
		sample_up(&o, "upstream_timeouts_total", &m->upstreams[i], m->upstreams[i].timeouts);
	family(&o, "upstream_healthy", "gauge", "1 when the upstream is considered healthy.");
	for (i = 0; i < nup; i++)
		sample_up(&o, "upstream_healthy", &m->upstreams[i], m->upstreams[i].healthy ? 1 : 0);

	family(&o, "cache_hits_total", "counter", "Queries answered from the answer cache (fresh entries).");
	sample_u(&o, "cache_hits_total", NULL, NULL, m->cache_hits);
	family(&o, "cache_misses_total", "counter", "Cacheable queries the answer cache could not answer.");
	sample_u(&o, "cache_misses_total", NULL, NULL, m->cache_misses);
	family(&o, "cache_entries", "gauge", "Entries in the answer cache.");
	sample_u(&o, "cache_entries", NULL, NULL, m->cache_entries);
	family(&o, "cache_evictions_total", "counter", "Entries evicted to make room.");
	sample_u(&o, "cache_evictions_total", NULL, NULL, m->cache_evictions);
	family(&o, "cache_prefetches_total", "counter", "Popular entries refreshed before they expired.");
	sample_u(&o, "cache_prefetches_total", NULL, NULL, m->cache_prefetches);
	family(&o, "cache_stale_answers_total", "counter", "Expired answers served because every upstream failed.");
	sample_u(&o, "cache_stale_answers_total", NULL, NULL, m->cache_stale);
	family(&o, "cache_coalesced_total", "counter", "Queries that joined an identical one already upstream.");
	sample_u(&o, "cache_coalesced_total", NULL, NULL, m->cache_coalesced);

	family(&o, "refused_total", "counter",
	    "Clients refused, by reason: allow_from (queries answered REFUSED), allow_from_tcp (TCP connections "
	    "closed at accept), chaos (CHAOS queries for no known name).");
	sample_u(&o, "refused_total", "reason", "allow_from", m->refused_acl);
	sample_u(&o, "refused_total", "reason", "allow_from_tcp", m->tcp_refused_acl);
	sample_u(&o, "refused_total", "reason", "chaos", m->refused_chaos);
	family(&o, "refused_prefixes", "gauge",
	    "Source prefixes (/24, /56) refused recently and tracked for the log (at most 128).");
	sample_u(&o, "refused_prefixes", NULL, NULL, m->refused_prefixes);
	family(&o, "tcp_refused_total", "counter", "TCP connections closed at accept, by reason.");
	sample_u(&o, "tcp_refused_total", "reason", "allow_from", m->tcp_refused_acl);
	sample_u(&o, "tcp_refused_total", "reason", "per_client_cap", m->tcp_refused_per_client);
	family(&o, "tcp_lifetime_ends_total", "counter", "TCP connections that reached tcp_max_lifetime.");
	sample_u(&o, "tcp_lifetime_ends_total", NULL, NULL, m->tcp_lifetime_ends);
	family(&o, "tcp_replies_dropped_total", "counter",
	    "TCP replies dropped because the client was not reading (output caps).");
	sample_u(&o, "tcp_replies_dropped_total", NULL, NULL, m->tcp_out_dropped);
	family(&o, "forward_quota_hits_total", "counter",
	    "Queries answered SERVFAIL because their client had its share of forward slots in flight.");
	sample_u(&o, "forward_quota_hits_total", NULL, NULL, m->quota_hits);

	family(&o, "forward_pending", "gauge", "Forwarded queries awaiting a reply.");
	sample_u(&o, "forward_pending", NULL, NULL, m->pending);
	family(&o, "forward_pending_full_total", "counter",
	    "Queries dropped because the pending table was full.");
	sample_u(&o, "forward_pending_full_total", NULL, NULL, m->pending_full);
	family(&o, "forward_tcp_retries_total", "counter",
	    "Truncated upstream replies retried over TCP.");
	sample_u(&o, "forward_tcp_retries_total", NULL, NULL, m->tcp_retries);
	family(&o, "forward_spoofed_replies_total", "counter",
	    "Upstream replies that matched no pending query.");
	sample_u(&o, "forward_spoofed_replies_total", NULL, NULL, m->spoofed);

	family(&o, "tcp_connections", "gauge", "Open client TCP connections.");
	sample_u(&o, "tcp_connections", NULL, NULL, m->tcp_conns);
	family(&o, "tcp_accepted_total", "counter", "Client TCP connections accepted.");
	sample_u(&o, "tcp_accepted_total", NULL, NULL, m->tcp_accepted);
	family(&o, "tcp_connection_cap_reached_total", "counter",
	    "Times the client TCP connection cap was reached.");
	sample_u(&o, "tcp_connection_cap_reached_total", NULL, NULL, m->tcp_cap_reached);

	family(&o, "vip_pool_size", "gauge", "Addresses in the virtual IP pool.");
	sample_u(&o, "vip_pool_size", NULL, NULL, m->pool_size);
	family(&o, "vip_active", "gauge", "Virtual IPs assigned to current hosts.");
	sample_u(&o, "vip_active", NULL, NULL, m->vips_active);
	family(&o, "vip_held", "gauge", "Virtual IPs held for removed hosts.");
	sample_u(&o, "vip_held", NULL, NULL, m->vips_held);
	family(&o, "vip_exhausted", "gauge", "Hosts without a virtual IP because the pool is full.");
	sample_u(&o, "vip_exhausted", NULL, NULL, m->vips_exhausted);
	family(&o, "vip_store_writable", "gauge",
	    "1 when the VIP store can be written; 0 while it is read-only (full disk, or the state lock is held by "
	    "another sedns): new hosts are forwarded.");
	sample_u(&o, "vip_store_writable", NULL, NULL, m->store_writable);
	family(&o, "state_lock_held", "gauge", "1 when this process holds the state directory's lock.");
	sample_u(&o, "state_lock_held", NULL, NULL, m->state_lock_held);
	family(&o, "vip_missing_readonly", "gauge",
	    "Hosts that want a virtual IP and have none because the VIP store is read-only (forwarded).");
	sample_u(&o, "vip_missing_readonly", NULL, NULL, m->vips_missing_readonly);
	family(&o, "vip_store_write_failures_total", "counter",
	    "Reloads whose VIP store write failed because of the disk (no space, I/O error, read-only).");
	sample_u(&o, "vip_store_write_failures_total", NULL, NULL, m->store_write_failures);
	family(&o, "vip_store_backups_total", "counter", "Compact copies of the VIP store written to vips.mdb.bak.");
	sample_u(&o, "vip_store_backups_total", "result", "ok", m->backups_ok);
	sample_u(&o, "vip_store_backups_total", "result", "failed", m->backups_failed);
	family(&o, "vip_store_backup_age_seconds", "gauge", "Seconds since the last good backup (-1: none yet).");
	sample_d(&o, "vip_store_backup_age_seconds", NULL, NULL, m->backup_age_seconds);
	family(&o, "address_conflicts", "gauge",
	    "Hosts not answered because their spec.addresses are another host's virtual IP.");
	sample_u(&o, "address_conflicts", NULL, NULL, m->addr_conflicts);

	family(&o, "serviceentries_loaded", "gauge", "ServiceEntries accepted.");
	sample_u(&o, "serviceentries_loaded", NULL, NULL, m->serviceentries);
	family(&o, "serviceentries_rejected", "gauge", "ServiceEntries rejected as invalid.");
	sample_u(&o, "serviceentries_rejected", NULL, NULL, m->serviceentries_rejected);
	family(&o, "hosts", "gauge", "Hostnames served.");
	sample_u(&o, "hosts", NULL, NULL, m->hosts);
	family(&o, "files_kept_last_good", "gauge",
	    "Input files whose last good contents are kept because the current ones fail to load.");
	sample_u(&o, "files_kept_last_good", NULL, NULL, m->files_kept);

	family(&o, "reloads_total", "counter", "Configuration reloads, by result.");
	sample_u(&o, "reloads_total", "result", "ok", m->reloads_ok);
	sample_u(&o, "reloads_total", "result", "failed", m->reloads_failed);

	family(&o, "rule_syncs_total", "counter", "Firewall rule syncs, by result.");
	sample_u(&o, "rule_syncs_total", "result", "ok", m->rule_syncs_ok);
	sample_u(&o, "rule_syncs_total", "result", "failed", m->rule_syncs_failed);
	family(&o, "rule_applies_total", "counter",
	    "Successful rule applies: full, incremental (only what changed), or adopted (a start that found its "
	    "rules verifiably in the kernel and applied nothing).");
	sample_u(&o, "rule_applies_total", "mode", "full", m->rule_applies_full);
	sample_u(&o, "rule_applies_total", "mode", "incremental", m->rule_applies_incremental);
	sample_u(&o, "rule_applies_total", "mode", "adopted", m->rule_applies_adopted);
	family(&o, "rule_sync_duration_seconds", "gauge", "Duration of the last rule apply.");
	sample_d(&o, "rule_sync_duration_seconds", NULL, NULL, m->rule_sync_seconds);
	family(&o, "rule_render_duration_seconds", "gauge", "Duration of the last rule render.");
	sample_d(&o, "rule_render_duration_seconds", NULL, NULL, m->rule_render_seconds);
	family(&o, "rules_last_sync_ok", "gauge", "1 when the last rule sync succeeded.");
	sample_u(&o, "rules_last_sync_ok", NULL, NULL, m->rules_last_ok ? 1 : 0);

	family(&o, "endpoint_names", "gauge", "Endpoint hostnames being resolved.");
	sample_u(&o, "endpoint_names", NULL, NULL, m->endpoint_names);
	family(&o, "endpoint_resolutions_total", "counter", "Endpoint hostname resolutions.");
	sample_u(&o, "endpoint_resolutions_total", NULL, NULL, m->endpoint_resolutions);
	family(&o, "endpoint_resolution_failures_total", "counter",
	    "Failed endpoint hostname resolutions.");
	sample_u(&o, "endpoint_resolution_failures_total", NULL, NULL, m->endpoint_failures);
	family(&o, "endpoint_changes_total", "counter", "Endpoint address set changes.");
	sample_u(&o, "endpoint_changes_total", NULL, NULL, m->endpoint_changes);
	family(&o, "endpoint_negative_answers_total", "counter",
	    "Endpoint resolutions answered NXDOMAIN or NODATA (retried with backoff).");
	sample_u(&o, "endpoint_negative_answers_total", NULL, NULL, m->endpoint_negative);
	family(&o, "endpoint_resolutions_deferred_total", "counter",
	    "Endpoint resolutions postponed by the endpoint_max_qps cap.");
	sample_u(&o, "endpoint_resolutions_deferred_total", NULL, NULL, m->endpoint_deferred);

	if (m->nkube > 0) {
		static const char *const evname[4] = { "added", "modified", "deleted", "bookmark" };
		family(&o, "kube_requests_total", "counter", "HTTP requests to the Kubernetes API server (LIST pages "
		    "and WATCHes).");
		for (size_t q = 0; q < m->nkube; q++)
			sample_u(&o, "kube_requests_total", "kind", m->kube[q].kind, m->kube[q].requests);
		family(&o, "kube_lists_total", "counter", "Complete LISTs (every page).");
		for (size_t q = 0; q < m->nkube; q++)
			sample_u(&o, "kube_lists_total", "kind", m->kube[q].kind, m->kube[q].lists);
		family(&o, "kube_relists_total", "counter", "LISTs after the first (410 Gone, a bad stream).");
		for (size_t q = 0; q < m->nkube; q++)
			sample_u(&o, "kube_relists_total", "kind", m->kube[q].kind, m->kube[q].relists);
		family(&o, "kube_watch_restarts_total", "counter",
		    "Watches resumed from their last resourceVersion (server timeout, broken connection).");
		for (size_t q = 0; q < m->nkube; q++)
			sample_u(&o, "kube_watch_restarts_total", "kind", m->kube[q].kind, m->kube[q].watch_restarts);
		family(&o, "kube_request_failures_total", "counter",
		    "Requests that failed (no answer, TLS, 401/403, 5xx, a bad body); retried after a backoff.");
		for (size_t q = 0; q < m->nkube; q++)
			sample_u(&o, "kube_request_failures_total", "kind", m->kube[q].kind, m->kube[q].failures);
		family(&o, "kube_expired_total", "counter", "410 Gone answers (resourceVersion compacted away).");
		for (size_t q = 0; q < m->nkube; q++)
			sample_u(&o, "kube_expired_total", "kind", m->kube[q].kind, m->kube[q].expired);
		family(&o, "kube_events_total", "counter", "Watch events received, by type.");
		for (size_t q = 0; q < m->nkube; q++)
			for (int t = 0; t < 4; t++) {
				out_str(&o, "sedns_kube_events_total{kind=\"");
				out_escaped(&o, m->kube[q].kind);
				out_printf(&o, "\",type=\"%s\"} %llu\n", evname[t], (unsigned long long)m->kube[q].events[t]);
			}
		family(&o, "kube_objects", "gauge", "Objects held from the API (pods: those with IPs that map).");
		for (size_t q = 0; q < m->nkube; q++)
			sample_u(&o, "kube_objects", "kind", m->kube[q].kind, m->kube[q].objects);
		family(&o, "kube_last_sync_age_seconds", "gauge",
		    "Seconds since the store was last known current (a LIST or any watch event or bookmark); -1 "
		    "before the first LIST.");
		for (size_t q = 0; q < m->nkube; q++)
			sample_d(&o, "kube_last_sync_age_seconds", "kind", m->kube[q].kind, m->kube[q].last_sync_age);
	}

	family(&o, "build_info", "gauge", "Build information; always 1.");
	sample_u(&o, "build_info", "version", m->version != NULL ? m->version : "unknown", 1);
	family(&o, "start_time_seconds", "gauge", "Process start time in seconds since the epoch.");
	sample_d(&o, "start_time_seconds", NULL, NULL, m->start_time);

	return o.ok;
}
