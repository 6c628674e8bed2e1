/* forward — see include/forward.h. */
#include "forward.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "tcpframe.h"
#include "monotime.h"

#define RECHECK_SECONDS 30      /* a failed upstream is tried first again after this */

/*
 * UDP to upstreams goes through a small pool of connected sockets per
 * upstream, each bound by the kernel to its own random port, many queries
 * in flight on each, matched by (socket, ID) and then the question. A
 * socket is retired after SOCK_MAX_USES queries or SOCK_MAX_AGE seconds
 * (closed once its last query is done) and replaced by a new one on a new
 * port: an off-path spoofer must hit one of POOL_SOCKS ports (of ~28,000
 * ephemeral ones) that change every few thousand queries, and then one of
 * 65,536 IDs with the right question, per query in flight.
 */
#define POOL_SOCKS 4
#define SOCK_MAX_USES 4096
#define SOCK_MAX_AGE 30.0
#define MAX_USOCKS 1024
#define RX_BATCH 16
#define RX_BUF 4096

/*
 * TCP to upstreams (truncated answers, TCP clients): one connection per
 * upstream, reused and pipelined (RFC 7766): queries are written framed
 * back to back and answers matched by ID in any order. Closed after
 * TCONN_IDLE seconds without a query in flight, or on any error (its
 * queries then fail over).
 */
#define MAX_TCONNS 256
#define TCONN_IDLE 10
#define TCONN_BASE MAX_USOCKS       /* (connection, ID) share the ID map */

struct tconn {
	struct forwarder *f;
	struct bufferevent *bev;    /* NULL: free */
	uint32_t inflight;
	bool broken;                /* failed: no new queries, freed when idle */
};

struct usock {
	struct forwarder *f;
	int fd;                     /* -1: free */
	struct event ev;
	struct sockaddr_storage ss; /* the upstream it is connected to */
	socklen_t sslen;
	uint32_t uses, inflight;
	double born;
	bool retired;               /* closed when inflight reaches 0 */
	bool referenced;            /* reload bookkeeping */
};

struct upstream {
	struct netaddr addr;
	uint16_t port;
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint64_t requests, failures, timeouts;
	unsigned consecutive;
	time_t last_fail;
	int16_t socks[POOL_SOCKS];  /* indices into f->usocks */
	uint8_t nsocks, rr;
	int16_t tconn;              /* index + 1 into f->tconns; 0 none */
};

struct zone {
	char name[256];             /* "" = root */
	struct upstream ups[FWD_MAX_UPSTREAMS];
	size_t nups;
};


/* A client that joined an identical query already upstream. */
struct waiter {
	struct fwd_client client;
	bool dead;                  /* its TCP connection went away */
	uint16_t qlen;
	uint32_t next;              /* index + 1 */
	uint8_t query[FWD_WAITER_QUERY];
};

struct slot {
	struct forwarder *f;
	bool used;
	bool primary_dead;          /* the client's TCP connection went away;
	                               waiters still want the answer */
	struct fwd_client client;
	bool keyed;
	struct cache_key key;
	uint32_t kq_next;           /* in-flight chain: slot index + 1 */
	uint32_t waiters;           /* list head: index + 1 */
	uint32_t nwaiters;
	size_t zone;                /* index into f->zones */
	uint8_t query[FWD_MAX_QUERY];
	size_t qlen;
	uint16_t client_id, up_id;
	uint8_t order[FWD_MAX_UPSTREAMS];
	size_t norder, attempt;
	bool force_tcp, tcp;
	int usock;                  /* UDP attempts: pooled socket, or -1 */
	uint32_t id_next;           /* (usock, up_id) chain: slot index + 1 */
	struct event ev_timer;
	double start;               /* monotime_now() at submit */
};

struct forwarder {
	struct event_base *base;
	struct zone *zones;
	size_t nzones;
	const char *znames[FWD_MAX_ZONES];
	uint64_t timeout_ms;
	struct slot *slots;
	size_t nslots;
	uint32_t *free_idx;
	size_t nfree;
	size_t ntouched;            /* slots [0, ntouched) have been initialised */
	uint32_t *kq;               /* in-flight keyed slots by key hash */
	size_t nkq;                 /* power of two */
	struct waiter *w;           /* waiter pool, nslots entries, calloc'd */
	uint32_t wfree;             /* free list head: index + 1 */
	size_t wtouched;
	uint32_t delivering;        /* waiters being called back right now */
	uint8_t wbuf[65536];        /* one waiter's copy of a reply */
	struct usock *usocks;       /* MAX_USOCKS, calloc'd */
	size_t nusocks;             /* entries ever used */
	uint32_t *idmap;            /* (usock, ID) -> slot index + 1 */
	size_t nidmap;              /* power of two */
	uint8_t (*rx)[RX_BUF];      /* RX_BATCH receive buffers */
	struct tconn *tconns;       /* MAX_TCONNS, calloc'd */
	size_t ntconns;
	uint8_t tbuf[65536];        /* one TCP answer being matched */
	struct mmsghdr rxmsg[RX_BATCH];
	struct iovec rxiov[RX_BATCH];
	fwd_reply_fn cb;
	fwd_batch_fn batch;
	void *cb_arg;
	struct fwd_stats st;
	time_t last_socket_log;
};

static void start_attempt(struct slot *s);

static time_t
mono_now(void)
{
	return (time_t)monotime_now();
}

#define NO_UPSTREAM 0xff       /* an order[] entry whose upstream was removed */
#define NO_ZONE ((size_t)-1)

size_t
fwd_zone_match(const char *const *names, size_t n, const char *qname)
{
	size_t best = n, best_len = 0, ql = strlen(qname);
	if (ql > 0 && qname[ql - 1] == '.')
		ql--; /* "a.b." is "a.b" */
	for (size_t i = 0; i < n; i++) {
		size_t zl = strlen(names[i]);
		bool match = zl == 0 || (ql == zl && strncasecmp(qname, names[i], zl) == 0) ||
		    (ql > zl && qname[ql - zl - 1] == '.' && strncasecmp(qname + ql - zl, names[i], zl) == 0);
		if (match && (best == n || zl > best_len)) {
			best = i;
			best_len = zl;
		}
	}
	return best;
}

const struct fwd_zone_spec *
fwd_zone_pick(const struct fwd_zone_spec *specs, size_t n, const char *qname)
{
	const char *names[FWD_MAX_ZONES] = { NULL };
	if (n > FWD_MAX_ZONES)
		n = FWD_MAX_ZONES;
	for (size_t i = 0; i < n; i++)
		names[i] = specs[i].name;
	size_t i = fwd_zone_match(names, n, qname);
	return i < n ? &specs[i] : NULL;
}

static struct upstream *
zone_upstream(struct forwarder *f, const struct slot *s, size_t ui)
{
	if (s->zone >= f->nzones || ui >= f->zones[s->zone].nups)
		return NULL;
	return &f->zones[s->zone].ups[ui];
}

/* Installs new zones; an upstream already known in the same zone keeps its
 * counters and health (a reload must not forget that one is dead).
 * zmap gets, per old zone, the new zone index or NO_ZONE; umap[old zone]
 * per old upstream index the new one or NO_UPSTREAM. */
static bool
set_zones(struct forwarder *f, const struct fwd_zone_spec *specs, size_t nspecs, size_t *zmap,
    uint8_t (*umap)[FWD_MAX_UPSTREAMS])
{
	bool has_root = false;
	for (size_t i = 0; i < nspecs; i++)
		has_root |= specs[i].name[0] == '\0';
	size_t nz = nspecs + !has_root;
	if (nz > FWD_MAX_ZONES)
		nz = FWD_MAX_ZONES;
	struct zone *nzs = calloc(nz, sizeof(*nzs));
	if (nzs == NULL)
		return false;
	for (size_t i = 0; i < f->nzones; i++) {
		zmap[i] = NO_ZONE;
		memset(umap[i], NO_UPSTREAM, FWD_MAX_UPSTREAMS);
	}
	for (size_t z = 0; z < nz; z++) {
		struct zone *zn = &nzs[z];
		const struct fwd_zone_spec *sp = z < nspecs ? &specs[z] : NULL;
		snprintf(zn->name, sizeof(zn->name), "%s", sp ? sp->name : "");
		size_t nups = sp ? sp->nups : 0;
		if (nups > FWD_MAX_UPSTREAMS)
			nups = FWD_MAX_UPSTREAMS;
		struct zone *old = NULL;
		for (size_t k = 0; k < f->nzones; k++) {
			if (strcmp(f->zones[k].name, zn->name) == 0) {
				old = &f->zones[k];
				zmap[k] = z;
			}
		}
		for (size_t i = 0; i < nups; i++) {
			struct upstream *u = &zn->ups[i];
			for (size_t k = 0; old && k < old->nups; k++) {
				if (netaddr_equal(&old->ups[k].addr, &sp->ups[i].addr) && old->ups[k].port == sp->ups[i].port) {
					*u = old->ups[k];
					umap[old - f->zones][k] = (uint8_t)i;
				}
			}
			u->addr = sp->ups[i].addr;
			u->port = sp->ups[i].port;
			u->sslen = netaddr_to_sockaddr(&u->addr, u->port, &u->ss);
		}
		zn->nups = nups;
	}
	free(f->zones);
	f->zones = nzs;
	f->nzones = nz;
	for (size_t z = 0; z < nz; z++)
		f->znames[z] = nzs[z].name;
	return true;
}

struct forwarder *
forwarder_new(struct event_base *base, const struct fwd_zone_spec *zones, size_t nzones, uint64_t timeout_ms,
    size_t max_pending, fwd_reply_fn cb, void *arg)
{
	struct forwarder *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->base = base;
	f->timeout_ms = timeout_ms;
	f->cb = cb;
	f->cb_arg = arg;
	f->nslots = max_pending;
	f->slots = calloc(max_pending, sizeof(*f->slots));
	f->free_idx = calloc(max_pending, sizeof(*f->free_idx));
	f->nkq = 16;
	while (f->nkq < max_pending)
		f->nkq <<= 1;
	f->kq = calloc(f->nkq, sizeof(*f->kq));
	f->w = calloc(max_pending, sizeof(*f->w));
	f->usocks = calloc(MAX_USOCKS, sizeof(*f->usocks));
	f->nidmap = 16;
	while (f->nidmap < max_pending * 2)
		f->nidmap <<= 1;
	f->idmap = calloc(f->nidmap, sizeof(*f->idmap));
	f->rx = malloc(RX_BATCH * sizeof(*f->rx));
	f->tconns = calloc(MAX_TCONNS, sizeof(*f->tconns));
	if (f->slots == NULL || f->free_idx == NULL || f->kq == NULL || f->w == NULL || f->usocks == NULL ||
	    f->idmap == NULL || f->rx == NULL || f->tconns == NULL) {
		forwarder_free(f);
		return NULL;
	}
	/* slots are initialised when first taken (take_slot) */
	size_t zmap[FWD_MAX_ZONES];
	uint8_t umap[FWD_MAX_ZONES][FWD_MAX_UPSTREAMS];
	if (!set_zones(f, zones, nzones, zmap, umap)) {
		forwarder_free(f);
		return NULL;
	}
	return f;
}

/* --- the UDP socket pool ------------------------------------------------ */

static size_t
id_bucket(const struct forwarder *f, int us, uint16_t id)
{
	return (((uint32_t)us * 2654435761u) ^ ((uint32_t)id * 40503u)) & (f->nidmap - 1);
}

static struct slot *
id_find(struct forwarder *f, int us, uint16_t id)
{
	for (uint32_t i = f->idmap[id_bucket(f, us, id)]; i; i = f->slots[i - 1].id_next) {
		struct slot *s = &f->slots[i - 1];
		if (s->usock == us && s->up_id == id)
			return s;
	}
	return NULL;
}

static void
id_link(struct forwarder *f, struct slot *s)
{
	uint32_t *head = &f->idmap[id_bucket(f, s->usock, s->up_id)];
	s->id_next = *head;
	*head = (uint32_t)(s - f->slots) + 1;
}

static void
id_unlink(struct forwarder *f, struct slot *s)
{
	uint32_t idx = (uint32_t)(s - f->slots) + 1;
	uint32_t *p = &f->idmap[id_bucket(f, s->usock, s->up_id)];
	while (*p && *p != idx)
		p = &f->slots[*p - 1].id_next;
	if (*p == idx)
		*p = s->id_next;
	s->id_next = 0;
}

static void
usock_close(struct forwarder *f, int us)
{
	struct usock *k = &f->usocks[us];
	if (k->fd < 0)
		return;
	event_del(&k->ev);
	close(k->fd);
	k->fd = -1;
}

/* A query left the socket: a retired socket closes with its last one. */
static void
usock_done(struct forwarder *f, int us)
{
	struct usock *k = &f->usocks[us];
	if (k->inflight > 0)
		k->inflight--;
	if (k->retired && k->inflight == 0)
		usock_close(f, us);
}

static void usock_read_cb(evutil_socket_t fd, short what, void *arg);

/* A new connected socket to u (the kernel picks a random port). */
static int
usock_new(struct forwarder *f, const struct upstream *u)
{
	int us = -1;
	for (size_t i = 0; i < f->nusocks; i++) {
		if (f->usocks[i].fd < 0) {
			us = (int)i;
			break;
		}
	}
	if (us < 0) {
		if (f->nusocks >= MAX_USOCKS)
			return -1;
		us = (int)f->nusocks++;
	}
	int fd = socket(u->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&u->ss, u->sslen) < 0) {
		close(fd);
		return -1;
	}
	struct usock *k = &f->usocks[us];
	memset(k, 0, sizeof(*k));
	k->f = f;
	k->fd = fd;
	k->ss = u->ss;
	k->sslen = u->sslen;
	k->born = monotime_now();
	event_assign(&k->ev, f->base, fd, EV_READ | EV_PERSIST, usock_read_cb, k);
	event_add(&k->ev, NULL);
	return us;
}

/* The next pooled socket of u, replacing worn-out ones (round robin). */
static int
pick_usock(struct forwarder *f, struct upstream *u)
{
	double now = monotime_now();
	if (u->nsocks < POOL_SOCKS) {
		int us = usock_new(f, u);
		if (us >= 0)
			u->socks[u->nsocks++] = (int16_t)us;
		if (us >= 0 || u->nsocks == 0)
			return us;
	}
	uint8_t i = (uint8_t)(u->rr++ % u->nsocks);
	int us = u->socks[i];
	struct usock *k = &f->usocks[us];
	if (k->fd >= 0 && k->uses < SOCK_MAX_USES && now - k->born < SOCK_MAX_AGE)
		return us;
	/* worn out (or gone): a fresh port; the old one drains */
	int nu = usock_new(f, u);
	if (nu < 0)
		return k->fd >= 0 ? us : -1;
	k->retired = true;
	if (k->inflight == 0)
		usock_close(f, us);
	u->socks[i] = (int16_t)nu;
	return nu;
}

/* After a reload: sockets of upstreams that are gone drain and close. */
static void
usocks_reconcile(struct forwarder *f)
{
	for (size_t i = 0; i < f->nusocks; i++)
		f->usocks[i].referenced = false;
	for (size_t z = 0; z < f->nzones; z++)
		for (size_t u = 0; u < f->zones[z].nups; u++)
			for (size_t j = 0; j < f->zones[z].ups[u].nsocks; j++)
				f->usocks[f->zones[z].ups[u].socks[j]].referenced = true;
	for (size_t i = 0; i < f->nusocks; i++) {
		struct usock *k = &f->usocks[i];
		if (k->fd < 0 || k->referenced)
			continue;
		k->retired = true;
		if (k->inflight == 0)
			usock_close(f, (int)i);
	}
}

static void tconn_done(struct forwarder *f, int tc);

static void
slot_close_io(struct slot *s)
{
	if (s->usock >= TCONN_BASE) {
		id_unlink(s->f, s);
		tconn_done(s->f, s->usock - TCONN_BASE);
		s->usock = -1;
	} else if (s->usock >= 0) {
		id_unlink(s->f, s);
		usock_done(s->f, s->usock);
		s->usock = -1;
	}
	event_del(&s->ev_timer);
}

static struct slot *
take_slot(struct forwarder *f)
{
	if (f->nfree > 0)
		return &f->slots[f->free_idx[--f->nfree]];
	if (f->ntouched < f->nslots) {
		struct slot *s = &f->slots[f->ntouched++];
		s->f = f;
		s->usock = -1;
		return s;
	}
	return NULL;
}

static void
kq_unlink(struct forwarder *f, struct slot *s)
{
	if (!s->keyed)
		return;
	uint32_t idx = (uint32_t)(s - f->slots) + 1;
	uint32_t *p = &f->kq[s->key.hash & (f->nkq - 1)];
	while (*p && *p != idx)
		p = &f->slots[*p - 1].kq_next;
	if (*p == idx)
		*p = s->kq_next;
	s->kq_next = 0;
	s->keyed = false;
}

static struct slot *
kq_find(struct forwarder *f, const struct cache_key *k)
{
	for (uint32_t i = f->kq[k->hash & (f->nkq - 1)]; i; i = f->slots[i - 1].kq_next) {
		struct slot *s = &f->slots[i - 1];
		if (s->key.hash == k->hash && s->key.len == k->len && memcmp(s->key.b, k->b, k->len) == 0)
			return s;
	}
	return NULL;
}

static void
waiters_free(struct forwarder *f, uint32_t head)
{
	while (head) {
		struct waiter *w = &f->w[head - 1];
		uint32_t next = w->next;
		w->next = f->wfree;
		f->wfree = head;
		head = next;
	}
}

static void
slot_release(struct slot *s)
{
	struct forwarder *f = s->f;
	slot_close_io(s);
	kq_unlink(f, s);
	s->used = false;
	f->free_idx[f->nfree++] = (uint32_t)(s - f->slots);
	f->st.pending--;
}

void
forwarder_set_batch_cb(struct forwarder *f, fwd_batch_fn fn)
{
	f->batch = fn;
}

void
forwarder_free(struct forwarder *f)
{
	if (f == NULL)
		return;
	if (f->slots) {
		for (size_t i = 0; i < f->ntouched; i++)
			if (f->slots[i].used)
				slot_close_io(&f->slots[i]);
	}
	free(f->slots);
	free(f->free_idx);
	free(f->kq);
	free(f->w);
	for (size_t i = 0; f->usocks && i < f->nusocks; i++)
		usock_close(f, (int)i);
	free(f->usocks);
	free(f->idmap);
	free(f->rx);
	for (size_t i = 0; f->tconns && i < f->ntconns; i++)
		if (f->tconns[i].bev)
			bufferevent_free(f->tconns[i].bev);
	free(f->tconns);
	free(f->zones);
	free(f);
}

bool
forwarder_set_zones(struct forwarder *f, const struct fwd_zone_spec *zones, size_t nzones)
{
	size_t zmap[FWD_MAX_ZONES];
	uint8_t (*umap)[FWD_MAX_UPSTREAMS] = calloc(FWD_MAX_ZONES, sizeof(*umap));
	if (umap == NULL || !set_zones(f, zones, nzones, zmap, umap)) {
		free(umap);
		return false;
	}
	/* queries in flight keep their order and position (s->attempt), with
	 * each entry renumbered; a removed upstream (or zone) is skipped and no
	 * longer credited or blamed */
	for (size_t i = 0; i < f->ntouched; i++) {
		struct slot *s = &f->slots[i];
		if (!s->used)
			continue;
		size_t oz = s->zone;
		s->zone = oz < FWD_MAX_ZONES ? zmap[oz] : NO_ZONE;
		for (size_t j = 0; j < s->norder; j++)
			s->order[j] = s->zone != NO_ZONE && s->order[j] < FWD_MAX_UPSTREAMS ? umap[oz][s->order[j]] :
			    NO_UPSTREAM;
	}
	free(umap);
	usocks_reconcile(f);
	return true;
}

static void
deliver(struct slot *s, uint8_t *reply, size_t len)
{
	struct forwarder *f = s->f;
	struct fwd_info info;
	memset(&info, 0, sizeof(info));
	/* zones are replaced only by a reload, never inside a callback */
	info.zone = s->zone < f->nzones ? f->zones[s->zone].name : "";
	info.seconds = monotime_now() - s->start;
	struct cache_key key;
	if (s->keyed) {
		key = s->key; /* the slot is released before the callbacks */
		info.key = &key;
	}
	const struct upstream *u = reply && s->attempt < s->norder ? zone_upstream(f, s, s->order[s->attempt]) : NULL;
	if (u) {
		info.have_upstream = true;
		info.addr = u->addr;
		info.port = u->port;
	}
	s->query[0] = (uint8_t)(s->client_id >> 8);
	s->query[1] = (uint8_t)s->client_id;
	if (reply) {
		histo_observe(&f->st.latency, info.seconds);
		reply[0] = s->query[0];
		reply[1] = s->query[1];
		f->st.replies++;
	} else {
		f->st.servfail++;
	}
	/* the slot is free before the callbacks run: a callback may submit
	 * new queries or close the client (detaching its other slots), and
	 * must not find this one still in use */
	struct fwd_client c = s->client;
	bool primary = !s->primary_dead;
	uint8_t query[FWD_MAX_QUERY];
	size_t qlen = s->qlen;
	memcpy(query, s->query, qlen);
	uint32_t waiters = s->waiters;
	size_t qn = s->keyed ? (size_t)s->key.len - 5 : 0;
	s->waiters = 0;
	s->nwaiters = 0;
	slot_release(s);
	if (primary)
		f->cb(f->cb_arg, &c, reply, reply ? len : 0, query, qlen, &info);
	if (waiters == 0)
		return;
	/* every joined client: the same reply with its own ID and case;
	 * forwarder_detach_conn marks the ones whose connection closes
	 * meanwhile */
	f->delivering = waiters;
	for (uint32_t i = waiters; i; i = f->w[i - 1].next) {
		struct waiter *w = &f->w[i - 1];
		if (w->dead)
			continue;
		if (reply == NULL) {
			f->cb(f->cb_arg, &w->client, NULL, 0, w->query, w->qlen, &info);
			continue;
		}
		if (len > sizeof(f->wbuf) || w->qlen < DNS_HDR_LEN + qn || len < DNS_HDR_LEN + qn)
			continue;
		memcpy(f->wbuf, reply, len);
		f->wbuf[0] = w->query[0];
		f->wbuf[1] = w->query[1];
		memcpy(f->wbuf + DNS_HDR_LEN, w->query + DNS_HDR_LEN, qn);
		f->cb(f->cb_arg, &w->client, f->wbuf, len, w->query, w->qlen, &info);
	}
	f->delivering = 0;
	waiters_free(f, waiters);
}

static void
mark_ok(struct slot *s)
{
	struct upstream *u = zone_upstream(s->f, s, s->order[s->attempt]);
	if (u)
		u->consecutive = 0;
}

static void
fail_attempt(struct slot *s, bool timeout)
{
	struct forwarder *f = s->f;
	struct upstream *u = zone_upstream(f, s, s->order[s->attempt]);
	if (u) {
		u->failures++;
		u->timeouts += timeout;
		u->consecutive++;
		u->last_fail = mono_now();
		char a[NETADDR_STRLEN];
		log_debug("upstream failed upstream=%s:%u reason=%s consecutive=%u",
		    netaddr_fmt(&u->addr, a, sizeof(a)), u->port, timeout ? "timeout" : "error", u->consecutive);
	}
	slot_close_io(s);
	s->attempt++;
	s->force_tcp = false;
	start_attempt(s);
}

/* Checks a reply read from the attempt's socket. Returns 1 accept, 0 ignore,
 * -1 fail the attempt. */
static int
check_reply(struct slot *s, const uint8_t *buf, size_t n)
{
	if (n < DNS_HDR_LEN || DNS_GET16(buf) != s->up_id) {
		s->f->st.spoofed++;
		return 0;
	}
	/* a server that does not understand the query (e.g. its EDNS) may
	 * answer FORMERR/NOTIMP without a question: that is its answer; any
	 * other rcode needs the question (else: this upstream failed) */
	if ((buf[2] & 0x80) && dnswire_qdcount(buf) == 0 &&
	    (dnswire_rcode(buf) == DNS_RCODE_FORMERR || dnswire_rcode(buf) == DNS_RCODE_NOTIMP))
		return 1;
	if (!dnswire_is_response(buf, n) || !dnswire_same_question(s->query, s->qlen, buf, n))
		return -1;
	return 1;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	fail_attempt(arg, true);
}

/* Every query in flight on a socket whose sends were refused (ICMP port
 * unreachable surfaces on the socket, not on one query): fail over. */
static void
usock_refused(struct forwarder *f, int us)
{
	for (size_t i = 0; i < f->ntouched; i++) {
		struct slot *s = &f->slots[i];
		if (s->used && s->usock == us)
			fail_attempt(s, false);
	}
}

static void
usock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct usock *k = arg;
	struct forwarder *f = k->f;
	int us = (int)(k - f->usocks);
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < RX_BATCH; i++) {
			f->rxiov[i].iov_base = f->rx[i];
			f->rxiov[i].iov_len = RX_BUF;
			memset(&f->rxmsg[i].msg_hdr, 0, sizeof(f->rxmsg[i].msg_hdr));
			f->rxmsg[i].msg_hdr.msg_iov = &f->rxiov[i];
			f->rxmsg[i].msg_hdr.msg_iovlen = 1;
		}
		int n = recvmmsg(fd, f->rxmsg, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				usock_refused(f, us);
			return;
		}
		if (f->batch)
			f->batch(f->cb_arg, true);
		for (int i = 0; i < n; i++) {
			uint8_t *buf = f->rx[i];
			size_t len = f->rxmsg[i].msg_len;
			struct slot *s = len >= DNS_HDR_LEN ? id_find(f, us, DNS_GET16(buf)) : NULL;
			if (s == NULL) {
				f->st.spoofed++; /* no query with that ID here (or too late) */
				continue;
			}
			bool cut = (f->rxmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
			int r = cut ? 1 : check_reply(s, buf, len);
			if (r == 0)
				continue;
			if (r < 0) {
				fail_attempt(s, false);
				continue;
			}
			mark_ok(s);
			if (cut || dnswire_tc(buf)) {
				/* the answer did not fit: ask the same upstream over TCP */
				f->st.tcp_retries++;
				slot_close_io(s);
				s->force_tcp = true;
				start_attempt(s);
				continue;
			}
			deliver(s, buf, len);
		}
		if (f->batch)
			f->batch(f->cb_arg, false);
		if (k->fd != fd || n < RX_BATCH)
			return; /* closed by a callback, or drained */
	}
}

/* --- pooled, pipelined TCP -------------------------------------------------- */

static void
tconn_free(struct forwarder *f, int tc)
{
	struct tconn *t = &f->tconns[tc];
	if (t->bev)
		bufferevent_free(t->bev);
	t->bev = NULL;
	t->broken = false;
	t->inflight = 0;
	/* the upstream that pointed here forgets it */
	for (size_t z = 0; z < f->nzones; z++)
		for (size_t u = 0; u < f->zones[z].nups; u++)
			if (f->zones[z].ups[u].tconn == tc + 1)
				f->zones[z].ups[u].tconn = 0;
}

static void
tconn_done(struct forwarder *f, int tc)
{
	struct tconn *t = &f->tconns[tc];
	if (t->inflight > 0)
		t->inflight--;
	if (t->broken && t->inflight == 0)
		tconn_free(f, tc);
}

/* The connection failed: everything in flight on it fails over. */
static void
tconn_break(struct forwarder *f, int tc)
{
	struct tconn *t = &f->tconns[tc];
	t->broken = true;
	if (t->bev)
		bufferevent_disable(t->bev, EV_READ | EV_WRITE);
	for (size_t i = 0; i < f->ntouched; i++) {
		struct slot *s = &f->slots[i];
		if (s->used && s->usock == TCONN_BASE + tc)
			fail_attempt(s, false);
	}
	if (t->inflight == 0)
		tconn_free(f, tc);
}

static void
tconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct tconn *t = arg;
	struct forwarder *f = t->f;
	int tc = (int)(t - f->tconns);
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	while (t->bev == bev && !t->broken && tcpframe_take(in, f->tbuf, sizeof(f->tbuf), &len)) {
		struct slot *s = len >= DNS_HDR_LEN ? id_find(f, TCONN_BASE + tc, DNS_GET16(f->tbuf)) : NULL;
		if (s == NULL) {
			f->st.spoofed++; /* late (timed out) or not ours */
			continue;
		}
		if (check_reply(s, f->tbuf, len) != 1) {
			fail_attempt(s, false);
			continue;
		}
		mark_ok(s);
		deliver(s, f->tbuf, len);
	}
}

static void
tconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tconn *t = arg;
	struct forwarder *f = t->f;
	int tc = (int)(t - f->tconns);
	if (what & BEV_EVENT_CONNECTED)
		return;
	if ((what & BEV_EVENT_TIMEOUT) && t->inflight > 0) {
		/* queries have their own timers; the connection is not idle */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && t->inflight == 0) {
		tconn_free(f, tc); /* idle */
		return;
	}
	tconn_break(f, tc);
}

/* The upstream's pipelined connection, opened on first use. */
static int
pick_tconn(struct forwarder *f, struct upstream *u)
{
	if (u->tconn > 0) {
		struct tconn *t = &f->tconns[u->tconn - 1];
		if (t->bev != NULL && !t->broken)
			return u->tconn - 1;
		u->tconn = 0;
	}
	int tc = -1;
	for (size_t i = 0; i < f->ntconns; i++) {
		if (f->tconns[i].bev == NULL) {
			tc = (int)i;
			break;
		}
	}
	if (tc < 0) {
		if (f->ntconns >= MAX_TCONNS)
			return -1;
		tc = (int)f->ntconns++;
	}
	struct tconn *t = &f->tconns[tc];
	memset(t, 0, sizeof(*t));
	t->f = f;
	t->bev = bufferevent_socket_new(f->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (t->bev == NULL)
		return -1;
	bufferevent_setcb(t->bev, tconn_read_cb, NULL, tconn_event_cb, t);
	struct timeval idle = { TCONN_IDLE, 0 };
	bufferevent_set_timeouts(t->bev, &idle, NULL);
	bufferevent_enable(t->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(t->bev, (struct sockaddr *)&u->ss, (int)u->sslen) < 0) {
		bufferevent_free(t->bev);
		t->bev = NULL;
		return -1;
	}
	u->tconn = (int16_t)(tc + 1);
	return tc;
}

/* out of descriptors under load: say so once a minute */
static void
socket_error(struct forwarder *f)
{
	time_t now = mono_now();
	f->st.socket_errors++;
	if (now - f->last_socket_log >= 60) {
		log_warn("forward: cannot open an upstream socket (%llu so far)", (unsigned long long)f->st.socket_errors);
		f->last_socket_log = now;
	}
}

static void
start_attempt(struct slot *s)
{
	struct forwarder *f = s->f;
	for (; s->attempt < s->norder; s->attempt++, s->force_tcp = false) {
		struct upstream *u = zone_upstream(f, s, s->order[s->attempt]);
		if (u == NULL)
			continue;
		s->tcp = s->client.tcp || s->force_tcp;
		struct timeval tv = monotime_tv(f->timeout_ms);
		evtimer_assign(&s->ev_timer, f->base, timer_cb, s);
		if (!s->tcp) {
			int us = pick_usock(f, u);
			if (us < 0) {
				socket_error(f);
				continue;
			}
			/* an ID not in flight on this socket */
			for (int tries = 0; tries < 8; tries++) {
				s->up_id = (uint16_t)arc4random();
				if (id_find(f, us, s->up_id) == NULL)
					break;
			}
			s->query[0] = (uint8_t)(s->up_id >> 8);
			s->query[1] = (uint8_t)s->up_id;
			u->requests++;
			if (send(f->usocks[us].fd, s->query, s->qlen, 0) != (ssize_t)s->qlen) {
				/* e.g. an earlier ICMP port unreachable */
				u->failures++;
				u->consecutive++;
				u->last_fail = mono_now();
				continue;
			}
			f->usocks[us].uses++;
			f->usocks[us].inflight++;
			s->usock = us;
			id_link(f, s);
			evtimer_add(&s->ev_timer, &tv);
			return;
		}
		int tc = pick_tconn(f, u);
		if (tc < 0) {
			socket_error(f);
			continue;
		}
		for (int tries = 0; tries < 8; tries++) {
			s->up_id = (uint16_t)arc4random();
			if (id_find(f, TCONN_BASE + tc, s->up_id) == NULL)
				break;
		}
		s->query[0] = (uint8_t)(s->up_id >> 8);
		s->query[1] = (uint8_t)s->up_id;
		uint8_t hdr[2] = { (uint8_t)(s->qlen >> 8), (uint8_t)s->qlen };
		struct evbuffer *out = bufferevent_get_output(f->tconns[tc].bev);
		u->requests++;
		if (evbuffer_add(out, hdr, 2) < 0 || evbuffer_add(out, s->query, s->qlen) < 0) {
			socket_error(f);
			continue;
		}
		f->tconns[tc].inflight++;
		s->usock = TCONN_BASE + tc;
		id_link(f, s);
		evtimer_add(&s->ev_timer, &tv);
		return;
	}
	deliver(s, NULL, 0);
}

static void
make_order(struct forwarder *f, struct slot *s)
{
	time_t now = mono_now();
	size_t k = 0;
	struct zone *z = &f->zones[s->zone];
	/* healthy (or due for a re-check) in configured order, then the rest,
	 * longest-failed first. One query probes a failed upstream per
	 * period: the re-check restarts its clock. */
	bool taken[FWD_MAX_UPSTREAMS] = { false };
	for (size_t i = 0; i < z->nups; i++) {
		if (z->ups[i].consecutive == 0) {
			s->order[k++] = (uint8_t)i;
			taken[i] = true;
		} else if (now - z->ups[i].last_fail >= RECHECK_SECONDS) {
			z->ups[i].last_fail = now;
			s->order[k++] = (uint8_t)i;
			taken[i] = true;
		}
	}
	size_t first_bad = k;
	for (size_t i = 0; i < z->nups; i++)
		if (!taken[i])
			s->order[k++] = (uint8_t)i;
	for (size_t i = first_bad + 1; i < k; i++) {
		uint8_t v = s->order[i];
		size_t j = i;
		while (j > first_bad && z->ups[s->order[j - 1]].last_fail > z->ups[v].last_fail) {
			s->order[j] = s->order[j - 1];
			j--;
		}
		s->order[j] = v;
	}
	s->norder = k;
}

bool
forwarder_submit(struct forwarder *f, const uint8_t *pkt, size_t len, const char *qname, const struct fwd_client *c,
    const struct cache_key *key)
{
	if (len > FWD_MAX_QUERY || len < DNS_HDR_LEN)
		return false;
	if (key != NULL && !c->internal) {
		/* the same question is already upstream: wait for its answer */
		struct slot *o = kq_find(f, key);
		if (o != NULL && o->nwaiters < FWD_MAX_WAITERS && len <= FWD_WAITER_QUERY &&
		    (f->wfree || f->wtouched < f->nslots)) {
			uint32_t wi;
			if (f->wfree) {
				wi = f->wfree;
				f->wfree = f->w[wi - 1].next;
			} else {
				wi = (uint32_t)++f->wtouched;
			}
			struct waiter *w = &f->w[wi - 1];
			w->client = *c;
			w->dead = false;
			w->qlen = (uint16_t)len;
			memcpy(w->query, pkt, len);
			w->next = o->waiters;
			o->waiters = wi;
			o->nwaiters++;
			f->st.coalesced++;
			return true;
		}
	}
	struct slot *s = take_slot(f);
	if (s == NULL) {
		f->st.pending_full++;
		return false;
	}
	s->primary_dead = false;
	s->waiters = 0;
	s->nwaiters = 0;
	s->keyed = false;
	if (key != NULL) {
		s->key = *key;
		s->keyed = true;
		uint32_t *head = &f->kq[key->hash & (f->nkq - 1)];
		s->kq_next = *head;
		*head = (uint32_t)(s - f->slots) + 1;
	}
	s->used = true;
	s->client = *c;
	s->zone = fwd_zone_match(f->znames, f->nzones, qname ? qname : "");
	if (s->zone >= f->nzones)
		s->zone = 0; /* unreachable: the root zone always matches */
	memcpy(s->query, pkt, len);
	s->qlen = len;
	s->client_id = DNS_GET16(pkt);
	s->attempt = 0;
	s->force_tcp = false;
	s->usock = -1;
	s->start = monotime_now();
	evtimer_assign(&s->ev_timer, f->base, timer_cb, s);
	make_order(f, s);
	f->st.pending++;
	f->st.forwarded++;
	start_attempt(s);
	return true;
}

void
forwarder_fail_all(struct forwarder *f)
{
	for (size_t i = 0; i < f->ntouched; i++) {
		struct slot *s = &f->slots[i];
		if (s->used) {
			slot_close_io(s);
			s->attempt = s->norder;
			deliver(s, NULL, 0);
		}
	}
}

size_t
forwarder_pending(const struct forwarder *f)
{
	return (size_t)f->st.pending;
}

const char *
forwarder_describe(const struct forwarder *f, const char *qname, char *ups, size_t upslen)
{
	size_t zi = fwd_zone_match(f->znames, f->nzones, qname);
	if (zi >= f->nzones) {
		snprintf(ups, upslen, "none");
		return "";
	}
	const struct zone *z = &f->zones[zi];
	size_t l = 0;
	ups[0] = '\0';
	for (size_t i = 0; i < z->nups && l < upslen; i++) {
		char a[NETADDR_STRLEN];
		netaddr_fmt(&z->ups[i].addr, a, sizeof(a));
		int w = snprintf(ups + l, upslen - l, z->ups[i].addr.family == AF_INET6 ? "%s[%s]:%u%s" : "%s%s:%u%s",
		    i ? "," : "", a, z->ups[i].port, z->ups[i].consecutive ? "(failing)" : "");
		if (w < 0)
			break;
		l += (size_t)w;
	}
	if (z->nups == 0)
		snprintf(ups, upslen, "none");
	return z->name;
}

void
forwarder_detach_conn(struct forwarder *f, void *conn)
{
	for (size_t i = 0; i < f->ntouched; i++) {
		struct slot *s = &f->slots[i];
		if (!s->used)
			continue;
		for (uint32_t *p = &s->waiters; *p;) {
			struct waiter *w = &f->w[*p - 1];
			if (w->client.tcp && w->client.conn == conn) {
				uint32_t dead = *p;
				*p = w->next;
				w->next = 0;
				waiters_free(f, dead);
				s->nwaiters--;
			} else {
				p = &w->next;
			}
		}
		if (s->client.tcp && s->client.conn == conn && !s->primary_dead) {
			if (s->waiters)
				s->primary_dead = true; /* the others still want it */
			else
				slot_release(s);
		}
	}
	for (uint32_t i = f->delivering; i; i = f->w[i - 1].next)
		if (f->w[i - 1].client.tcp && f->w[i - 1].client.conn == conn)
			f->w[i - 1].dead = true;
}

void
forwarder_stats(const struct forwarder *f, struct fwd_stats *st)
{
	*st = f->st;
}

size_t
forwarder_upstream_stats(const struct forwarder *f, struct fwd_upstream_stats *out, size_t max)
{
	size_t n = 0;
	for (size_t z = 0; z < f->nzones; z++) {
		for (size_t i = 0; i < f->zones[z].nups && n < max; i++) {
			const struct upstream *u = &f->zones[z].ups[i];
			snprintf(out[n].zone, sizeof(out[n].zone), "%s", f->zones[z].name[0] ? f->zones[z].name : ".");
			out[n].addr = u->addr;
			out[n].port = u->port;
			out[n].requests = u->requests;
			out[n].failures = u->failures;
			out[n].timeouts = u->timeouts;
			out[n].healthy = u->consecutive == 0;
			n++;
		}
	}
	return n;
}

size_t
forward_read_resolv_conf(const char *path, struct config_endpoint *out, size_t max)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	char line[512];
	size_t n = 0;
	while (n < max && fgets(line, sizeof(line), fp)) {
		char *save = NULL;
		char *kw = strtok_r(line, " \t\r\n", &save);
		if (kw == NULL || strcmp(kw, "nameserver") != 0)
			continue;
		char *addr = strtok_r(NULL, " \t\r\n", &save);
		if (addr == NULL)
			continue;
		char *pct = strchr(addr, '%'); /* zone index: not supported */
		if (pct)
			continue;
		if (netaddr_parse(addr, &out[n].addr)) {
			out[n].port = 53;
			n++;
		}
	}
	fclose(fp);
	return n;
}
