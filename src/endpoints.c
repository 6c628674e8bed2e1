/* endpoints — see include/endpoints.h. */
#include "endpoints.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/resource.h>

#include "dnswire.h"
#include "log.h"
#include "monotime.h"
#include "tcpframe.h"
#include "registry.h"

struct ep_name {
	char *name;
	struct netaddr addrs[EP_MAX_ADDRS];
	size_t naddrs;
	bool resolved;
	bool settled;               /* had its first outcome: addresses, none,
	                               or a failure */
	unsigned fails;             /* consecutive failed resolutions */
	unsigned negatives;         /* consecutive NXDOMAIN / NODATA */
	/* in-flight query */
	int fd;
	uint16_t id;
	size_t attempt;
	struct event ev_io, ev_timer;
	bool io_added, timer_added;
	struct bufferevent *tcp;    /* the TCP retry of a truncated answer */
	bool inflight;              /* holds a socket (counted in ep->inflight) */
	struct endpoints *owner;
};

struct ep_zone {
	char name[256];
	struct config_endpoint ups[CONFIG_MAX_LIST];
	size_t nups;
};

struct endpoints {
	struct event_base *base;
	struct ep_zone zones[FWD_MAX_ZONES];
	struct fwd_zone_spec specs[FWD_MAX_ZONES];  /* point into zones */
	size_t nzones;
	uint64_t timeout_ms, min_ttl_ms, max_ttl_ms;
	double qps, tokens, refilled;  /* node-wide token bucket */
	void (*changed)(void *);
	void *arg;
	struct ep_name **names;
	size_t nnames;              /* sorted by name */
	size_t inflight;            /* names holding a socket now */
	size_t max_inflight;        /* EP_MAX_INFLIGHT, less under a low
	                               descriptor limit */
	struct endpoints_stats st;
};

static void start_query(struct ep_name *n);

static void
close_query(struct ep_name *n)
{
	if (n->io_added) {
		event_del(&n->ev_io);
		n->io_added = false;
	}
	if (n->fd >= 0) {
		close(n->fd);
		n->fd = -1;
	}
	if (n->tcp) {
		bufferevent_free(n->tcp);
		n->tcp = NULL;
	}
	if (n->inflight) {
		n->inflight = false;
		n->owner->inflight--;
	}
}

static void
schedule(struct ep_name *n, uint64_t ms)
{
	struct timeval tv = monotime_tv(ms);
	evtimer_add(&n->ev_timer, &tv);
	n->timer_added = true;
}

static void
resolved(struct ep_name *n, struct netaddr *addrs, size_t cnt, uint32_t ttl)
{
	struct endpoints *ep = n->owner;
	qsort(addrs, cnt, sizeof(*addrs), netaddr_cmp);
	bool same = n->resolved && cnt == n->naddrs;
	for (size_t i = 0; same && i < cnt; i++)
		same = netaddr_equal(&addrs[i], &n->addrs[i]);
	ep->st.resolutions++;
	if (!same) {
		memcpy(n->addrs, addrs, cnt * sizeof(*addrs));
		n->naddrs = cnt;
		ep->st.changes++;
		char first[NETADDR_STRLEN] = "-";
		if (cnt)
			netaddr_fmt(&addrs[0], first, sizeof(first));
		log_info("endpoint resolved name=%s addrs=%zu first=%s ttl=%u", n->name, cnt, first, ttl);
	}
	n->resolved = true;
	n->settled = true;
	if (n->fails)
		log_info("endpoint resolution recovered name=%s after %u failures", n->name, n->fails);
	n->fails = 0;
	n->negatives = 0;
	uint64_t ms = (uint64_t)ttl * 1000;
	if (ms < ep->min_ttl_ms)
		ms = ep->min_ttl_ms;
	if (ms > ep->max_ttl_ms)
		ms = ep->max_ttl_ms;
	schedule(n, ms);
	if (!same && ep->changed)
		ep->changed(ep->arg);
}

static void
failed(struct ep_name *n)
{
	struct endpoints *ep = n->owner;
	ep->st.failures++;
	/* say it once per outage, then retry with backoff up to max_ttl */
	if (n->fails == 0)
		log_warnx("endpoint resolution failed name=%s keeping=%zu addresses (%s)", n->name, n->naddrs,
		    n->resolved ? "last known" : "never resolved");
	else
		log_debug("endpoint resolution failed again name=%s fails=%u", n->name, n->fails + 1);
	uint64_t ms = ep->min_ttl_ms;
	for (unsigned i = 0; i < n->fails && ms < ep->max_ttl_ms; i++)
		ms *= 2;
	if (ms > ep->max_ttl_ms)
		ms = ep->max_ttl_ms;
	n->fails++;
	n->settled = true;
	schedule(n, ms);
}

/* NXDOMAIN / NODATA: retry after the negative TTL, doubling per answer in
 * a row (an author's typo must not set a query rate). Addresses that worked
 * before are kept meanwhile. */
static void
negative(struct ep_name *n, uint32_t neg_ttl)
{
	struct endpoints *ep = n->owner;
	ep->st.negative++;
	if (n->negatives == 0)
		log_warnx("endpoint has no address upstream name=%s keeping=%zu addresses (NXDOMAIN/NODATA, retried "
		    "with backoff)", n->name, n->naddrs);
	uint64_t ms = (uint64_t)neg_ttl * 1000;
	if (ms < ep->min_ttl_ms)
		ms = ep->min_ttl_ms;
	for (unsigned i = 0; i < n->negatives && ms < ep->max_ttl_ms; i++)
		ms *= 2;
	if (ms > ep->max_ttl_ms)
		ms = ep->max_ttl_ms;
	if (n->negatives < 64)
		n->negatives++;
	n->settled = true;
	if (!n->resolved) {
		/* known to have none: its rules reject rather than wait */
		n->resolved = true;
		if (ep->changed)
			ep->changed(ep->arg);
	}
	schedule(n, ms);
}

static void
next_attempt(struct ep_name *n)
{
	close_query(n);
	n->attempt++;
	start_query(n);
}

static void handle_reply(struct ep_name *n, const uint8_t *buf, size_t len, bool over_tcp);

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ep_name *n = arg;
	if (what & EV_TIMEOUT) {
		next_attempt(n);
		return;
	}
	uint8_t buf[4096];
	ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		next_attempt(n);
		return;
	}
	if ((size_t)r < DNS_HDR_LEN || DNS_GET16(buf) != n->id)
		return; /* not our reply: keep waiting */
	handle_reply(n, buf, (size_t)r, false);
}

static void tcp_retry(struct ep_name *n);

/* An answer to our query (UDP, or TCP after TC=1). */
static void
handle_reply(struct ep_name *n, const uint8_t *buf, size_t len, bool over_tcp)
{
	/* the question must be ours: a reply for another name is not an answer */
	uint8_t q[512];
	size_t ql = dnswire_build_query(n->id, n->name, DNS_TYPE_A, 1232, q, sizeof(q));
	if (ql == 0 || !dnswire_is_response(buf, len) || !dnswire_same_question(q, ql, buf, len)) {
		next_attempt(n);
		return;
	}
	if (dnswire_tc(buf)) {
		/* a truncated answer is never an answer: ask again over TCP */
		if (over_tcp)
			next_attempt(n);
		else
			tcp_retry(n);
		return;
	}
	struct netaddr addrs[EP_MAX_ADDRS];
	uint32_t ttl = 0;
	unsigned rcode = 0;
	size_t cnt = dnswire_extract_addrs(buf, len, DNS_TYPE_A, addrs, EP_MAX_ADDRS, &ttl, &rcode);
	if (rcode == DNS_RCODE_SERVFAIL || rcode == DNS_RCODE_REFUSED || (rcode != DNS_RCODE_NOERROR &&
	    rcode != DNS_RCODE_NXDOMAIN)) {
		next_attempt(n);
		return;
	}
	close_query(n);
	if (cnt == 0) {
		uint32_t nttl = 0;
		if (!dnswire_negative_ttl(buf, len, &nttl))
			nttl = 0;
		negative(n, nttl);
		return;
	}
	resolved(n, addrs, cnt, ttl);
}

static void
tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct ep_name *n = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	long l = tcpframe_peek(in);
	if (l < 0)
		return;
	size_t len;
	uint8_t *buf = malloc((size_t)l ? (size_t)l : 1);
	if (buf == NULL || !tcpframe_take(in, buf, (size_t)l, &len)) {
		free(buf);
		next_attempt(n);
		return;
	}
	if (len >= DNS_HDR_LEN && DNS_GET16(buf) == n->id)
		handle_reply(n, buf, len, true);
	else
		next_attempt(n);
	free(buf);
}

static void
tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_CONNECTED)
		return;
	next_attempt(arg); /* error, EOF or timeout */
}

/* The same upstream, the same question, over TCP (RFC 7766). */
static void
tcp_retry(struct ep_name *n)
{
	struct endpoints *ep = n->owner;
	const struct fwd_zone_spec *z = fwd_zone_pick(ep->specs, ep->nzones, n->name);
	close_query(n);
	if (z == NULL || n->attempt >= z->nups) {
		next_attempt(n);
		return;
	}
	ep->st.tcp_retries++;
	struct sockaddr_storage ss;
	socklen_t sl = netaddr_to_sockaddr(&z->ups[n->attempt].addr, z->ups[n->attempt].port, &ss);
	uint8_t q[514];
	size_t ql = dnswire_build_query(n->id, n->name, DNS_TYPE_A, 0, q + 2, sizeof(q) - 2);
	n->tcp = bufferevent_socket_new(ep->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (ql == 0 || n->tcp == NULL) {
		next_attempt(n);
		return;
	}
	n->inflight = true;
	ep->inflight++;
	q[0] = (uint8_t)(ql >> 8);
	q[1] = (uint8_t)ql;
	bufferevent_setcb(n->tcp, tcp_read_cb, NULL, tcp_event_cb, n);
	struct timeval tv = monotime_tv(ep->timeout_ms);
	bufferevent_set_timeouts(n->tcp, &tv, &tv);
	bufferevent_enable(n->tcp, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(n->tcp, (struct sockaddr *)&ss, (int)sl) < 0 ||
	    bufferevent_write(n->tcp, q, ql + 2) < 0)
		next_attempt(n);
}

/* One token per resolution; false when the node-wide rate is used up. */
static bool
take_token(struct endpoints *ep)
{
	double now = monotime_now();
	ep->tokens += (now - ep->refilled) * ep->qps;
	if (ep->tokens > ep->qps)
		ep->tokens = ep->qps;
	ep->refilled = now;
	if (ep->tokens < 1)
		return false;
	ep->tokens -= 1;
	return true;
}

static void
start_query(struct ep_name *n)
{
	struct endpoints *ep = n->owner;
	if (n->attempt == 0 && ep->inflight >= ep->max_inflight) {
		/* a descriptor each: however high max_qps, the names being
		 * resolved never take the descriptors the listeners, the
		 * forwarder and inotify need */
		ep->st.deferred++;
		schedule(n, 20 + arc4random_uniform(200));
		return;
	}
	if (n->attempt == 0 && !take_token(ep)) {
		/* over the cap: come back when a token is likely, spread out */
		ep->st.deferred++;
		schedule(n, 1000 / (uint64_t)ep->qps + 1 + arc4random_uniform(1000));
		return;
	}
	const struct fwd_zone_spec *z = fwd_zone_pick(ep->specs, ep->nzones, n->name);
	size_t nups = z ? z->nups : 0;
	for (; n->attempt < nups; n->attempt++) {
		const struct config_endpoint *u = &z->ups[n->attempt];
		struct sockaddr_storage ss;
		socklen_t sl = netaddr_to_sockaddr(&u->addr, u->port, &ss);
		uint8_t q[512];
		n->id = (uint16_t)arc4random();
		size_t ql = dnswire_build_query(n->id, n->name, DNS_TYPE_A, 1232, q, sizeof(q));
		if (ql == 0)
			break;
		int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, (struct sockaddr *)&ss, sl) < 0 || send(fd, q, ql, 0) != (ssize_t)ql) {
			close(fd);
			continue;
		}
		n->fd = fd;
		n->inflight = true;
		ep->inflight++;
		event_assign(&n->ev_io, ep->base, fd, EV_READ | EV_PERSIST, io_cb, n);
		struct timeval tv = monotime_tv(ep->timeout_ms);
		event_add(&n->ev_io, &tv);
		n->io_added = true;
		return;
	}
	failed(n);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ep_name *n = arg;
	n->timer_added = false;
	close_query(n);
	n->attempt = 0;
	start_query(n);
}

struct endpoints *
endpoints_new(struct event_base *base, const struct fwd_zone_spec *zones, size_t nzones, uint64_t timeout_ms,
    uint64_t min_ttl_ms, uint64_t max_ttl_ms, uint64_t max_qps, void (*changed)(void *), void *arg)
{
	struct endpoints *ep = calloc(1, sizeof(*ep));
	if (ep == NULL)
		return NULL;
	ep->base = base;
	ep->timeout_ms = timeout_ms;
	ep->min_ttl_ms = min_ttl_ms;
	ep->max_ttl_ms = max_ttl_ms < min_ttl_ms ? min_ttl_ms : max_ttl_ms;
	ep->changed = changed;
	ep->arg = arg;
	ep->qps = max_qps ? (double)max_qps : 50;
	ep->tokens = ep->qps;
	ep->refilled = monotime_now();
	/* a quarter of the descriptors at most: the rest are the listeners',
	 * the forwarder's, the clients' and inotify's */
	struct rlimit rl;
	ep->max_inflight = EP_MAX_INFLIGHT;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < ep->max_inflight)
		ep->max_inflight = rl.rlim_cur / 4 > 4 ? (size_t)(rl.rlim_cur / 4) : 4;
	endpoints_set_zones(ep, zones, nzones);
	return ep;
}

static void
name_free(struct ep_name *n)
{
	close_query(n);
	if (n->timer_added)
		event_del(&n->ev_timer);
	free(n->name);
	free(n);
}

void
endpoints_free(struct endpoints *ep)
{
	if (ep == NULL)
		return;
	for (size_t i = 0; i < ep->nnames; i++)
		name_free(ep->names[i]);
	free(ep->names);
	free(ep);
}

void
endpoints_set_zones(struct endpoints *ep, const struct fwd_zone_spec *zones, size_t nzones)
{
	if (nzones > FWD_MAX_ZONES)
		nzones = FWD_MAX_ZONES;
	for (size_t i = 0; i < nzones; i++) {
		struct ep_zone *z = &ep->zones[i];
		snprintf(z->name, sizeof(z->name), "%s", zones[i].name);
		z->nups = zones[i].nups < CONFIG_MAX_LIST ? zones[i].nups : CONFIG_MAX_LIST;
		if (z->nups)
			memcpy(z->ups, zones[i].ups, z->nups * sizeof(z->ups[0]));
		ep->specs[i].name = z->name;
		ep->specs[i].ups = z->ups;
		ep->specs[i].nups = z->nups;
	}
	ep->nzones = nzones;
}

static int
name_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(struct ep_name *const *)elem)->name);
}

/* names[] is kept sorted by name: lookups are a bsearch (the rule renderer
 * asks once per hostname endpoint). */
static struct ep_name *
find(const struct endpoints *ep, const char *name)
{
	if (ep->nnames == 0)
		return NULL;
	struct ep_name **n = bsearch(name, ep->names, ep->nnames, sizeof(*ep->names), name_key_cmp);
	return n ? *n : NULL;
}

size_t
endpoints_lookup(void *arg, const char *name, struct netaddr *out, size_t max)
{
	const struct endpoints *ep = arg;
	const struct ep_name *n = find(ep, name);
	if (n == NULL)
		return 0;
	size_t k = n->naddrs < max ? n->naddrs : max;
	memcpy(out, n->addrs, k * sizeof(*out));
	return k;
}

void
endpoints_names(const struct registry *reg, void (*cb)(void *arg, const char *name), void *arg)
{
	for (size_t i = 0; i < reg->nhosts; i++) {
		const struct reg_host *h = &reg->hosts[i];
		if (h->answer != REG_VIP)
			continue;
		if (h->resolution != SE_RES_DNS && h->resolution != SE_RES_DNS_ROUND_ROBIN)
			continue;
		for (size_t p = 0; p < h->nports; p++) {
			const struct reg_port *rp = &h->ports[p];
			if (rp->resolve_host && !h->wildcard)
				cb(arg, h->name);
			for (size_t e = 0; e < rp->neps; e++)
				if (!reg_ep_is_ip(&rp->eps[e]))
					cb(arg, reg_ep_address(&rp->eps[e]));
		}
	}
}

struct wanted {
	const char **v;             /* borrowed from the registry */
	size_t n, cap;
	bool oom;
};

static void
want_name(void *arg, const char *name)
{
	struct wanted *w = arg;
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		const char **nv = realloc(w->v, nc * sizeof(*nv));
		if (nv == NULL) {
			w->oom = true;
			return;
		}
		w->v = nv;
		w->cap = nc;
	}
	w->v[w->n++] = name;
}

static int
str_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static struct ep_name *
name_new(struct endpoints *ep, const char *name)
{
	struct ep_name *n = calloc(1, sizeof(*n));
	if (n == NULL || (n->name = strdup(name)) == NULL) {
		free(n);
		return NULL;
	}
	n->fd = -1;
	n->owner = ep;
	evtimer_assign(&n->ev_timer, ep->base, timer_cb, n);
	return n;
}

bool
endpoints_track_registry(struct endpoints *ep, const struct registry *reg)
{
	struct wanted w = { NULL, 0, 0, false };
	endpoints_names(reg, want_name, &w);
	struct ep_name **next = calloc(w.n ? w.n : 1, sizeof(*next));
	if (w.oom || next == NULL) {
		free(w.v);
		free(next);
		log_warnx("endpoints: out of memory; keeping the names tracked so far");
		return false;
	}
	if (w.n > 1)
		qsort(w.v, w.n, sizeof(*w.v), str_cmp);
	/* merge two sorted lists: keep the names still wanted (with their
	 * addresses and timers), start the new ones, drop the rest */
	size_t i = 0, k = 0;
	for (size_t j = 0; j < w.n; j++) {
		if (j > 0 && strcmp(w.v[j], w.v[j - 1]) == 0)
			continue;
		while (i < ep->nnames && strcmp(ep->names[i]->name, w.v[j]) < 0)
			name_free(ep->names[i++]);
		struct ep_name *n;
		bool fresh = false;
		if (i < ep->nnames && strcmp(ep->names[i]->name, w.v[j]) == 0) {
			n = ep->names[i++];
		} else if ((n = name_new(ep, w.v[j])) != NULL) {
			fresh = true;
		} else {
			continue;
		}
		next[k++] = n;
		if (fresh)
			start_query(n);
	}
	while (i < ep->nnames)
		name_free(ep->names[i++]);
	free(ep->names);
	free(w.v);
	ep->names = next;
	ep->nnames = k;
	ep->st.names = k;
	return true;
}

void
endpoints_stats(const struct endpoints *ep, struct endpoints_stats *st)
{
	*st = ep->st;
	st->names = ep->nnames;
}

size_t
endpoints_resolve_blocking(const struct config_endpoint *ups, size_t nups, uint64_t timeout_ms, const char *name,
    struct netaddr *out, size_t max)
{
	for (size_t i = 0; i < nups; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = netaddr_to_sockaddr(&ups[i].addr, ups[i].port, &ss);
		uint8_t q[512], buf[4096];
		uint16_t id = (uint16_t)arc4random();
		size_t ql = dnswire_build_query(id, name, DNS_TYPE_A, 1232, q, sizeof(q));
		if (ql == 0)
			return 0;
		int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, (struct sockaddr *)&ss, sl) < 0 || send(fd, q, ql, 0) != (ssize_t)ql) {
			close(fd);
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		size_t cnt = 0;
		bool done = false;
		while (!done && poll(&pfd, 1, (int)timeout_ms) > 0) {
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r < 0)
				break;
			if ((size_t)r < DNS_HDR_LEN || DNS_GET16(buf) != id)
				continue;
			uint32_t ttl;
			unsigned rcode;
			cnt = dnswire_extract_addrs(buf, (size_t)r, DNS_TYPE_A, out, max, &ttl, &rcode);
			done = rcode != DNS_RCODE_SERVFAIL && rcode != DNS_RCODE_REFUSED;
		}
		close(fd);
		if (done)
			return cnt;
	}
	return 0;
}

/* A copy of every resolved name's addresses, sorted like ep->names, for a
 * render on another thread while the loop goes on resolving. */
struct ep_snapshot {
	size_t n;
	char **names;
	size_t *first, *count;      /* into addrs */
	struct netaddr *addrs;
};

struct ep_snapshot *
endpoints_snapshot(const struct endpoints *ep)
{
	struct ep_snapshot *s = calloc(1, sizeof(*s));
	size_t total = 0;
	if (s == NULL)
		return NULL;
	for (size_t i = 0; ep != NULL && i < ep->nnames; i++)
		total += ep->names[i]->naddrs;
	size_t nn = ep ? ep->nnames : 0;
	s->names = calloc(nn ? nn : 1, sizeof(*s->names));
	s->first = calloc(nn ? nn : 1, sizeof(*s->first));
	s->count = calloc(nn ? nn : 1, sizeof(*s->count));
	s->addrs = calloc(total ? total : 1, sizeof(*s->addrs));
	if (s->names == NULL || s->first == NULL || s->count == NULL || s->addrs == NULL) {
		ep_snapshot_free(s);
		return NULL;
	}
	size_t at = 0;
	for (size_t i = 0; i < nn; i++) {
		const struct ep_name *n = ep->names[i];
		if ((s->names[s->n] = strdup(n->name)) == NULL) {
			ep_snapshot_free(s);
			return NULL;
		}
		s->first[s->n] = at;
		s->count[s->n] = n->naddrs;
		memcpy(s->addrs + at, n->addrs, n->naddrs * sizeof(*s->addrs));
		at += n->naddrs;
		s->n++;
	}
	return s;
}

size_t
ep_snapshot_lookup(void *arg, const char *name, struct netaddr *out, size_t max)
{
	const struct ep_snapshot *s = arg;
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, s->names[mid]);
		if (c == 0) {
			size_t k = s->count[mid] < max ? s->count[mid] : max;
			memcpy(out, s->addrs + s->first[mid], k * sizeof(*out));
			return k;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

void
ep_snapshot_free(struct ep_snapshot *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s->first);
	free(s->count);
	free(s->addrs);
	free(s);
}

size_t
endpoints_unsettled(const struct endpoints *ep)
{
	size_t n = 0;
	for (size_t i = 0; i < ep->nnames; i++)
		n += !ep->names[i]->settled;
	return n;
}
