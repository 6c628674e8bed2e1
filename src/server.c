/* server — see include/server.h. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "dnswire.h"
#include "log.h"
#include "tcpframe.h"
#include "monotime.h"
#include "querylog.h"
#include "refuselog.h"
#include "vipstore.h"

#define UDP_BATCH 32           /* messages per recvmmsg */
#define UDP_BUDGET 8           /* batches per wakeup before yielding */
#define UDP_BUF 4096           /* per message: our EDNS size is <= 4096 */
/*
 * TCP output is bounded: a connection stops reading queries once what it
 * has buffered plus TCP_RESERVE per answer still to come passes
 * TCP_MAX_OUT; it never buffers more than TCP_OUT_HARD (a reply beyond is
 * dropped: the client is not reading), and all connections together never
 * more than TCP_OUT_TOTAL. So output memory is at most 64 MiB + one reply
 * in all, 1 MiB + one reply per connection.
 */
#define TCP_MAX_OUT (256 * 1024)
#define TCP_RESERVE 4096
#define TCP_OUT_HARD (1024 * 1024)
#define TCP_OUT_TOTAL (64 * 1024 * 1024)
#define TCP_MAX_PENDING 64      /* forwarded queries in flight per TCP client */
#define QUOTA_BUCKETS 4096
#define MAX_LISTENERS CONFIG_MAX_LIST
#define TXT_MAX 48

struct udp_listener {
	struct server *srv;
	int fd;
	int family;
	bool adopted;                  /* from systemd (LISTEN_FDS): it keeps
	                                  the socket open across our restart */
	struct event *ev;
};

struct tcp_conn {
	struct server *srv;
	struct bufferevent *bev;
	struct netaddr peer;
	size_t npending;
	bool paused;                   /* output over TCP_MAX_OUT */
	bool full;                     /* TCP_MAX_PENDING queries in flight */
	struct event *lifetime;        /* tcp_max_lifetime */
	size_t out_counted;            /* this connection's share of out_total */
	bool in_drain;                 /* tcp_drain is on the stack: a reply
	                                  callback must not re-enter it */
	bool eof;                      /* the client half-closed: answer what
	                                  it asked, then close */
	struct tcp_conn *prev, *next;
};

struct cmsgbuf {
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} u;
};

struct server {
	struct event_base *base;
	const struct config *cfg;
	struct nametable *nt;
	struct forwarder *fwd;
	struct cache *cache;           /* NULL: cache.size 0 */
	/* forwarded answers to UDP clients, held while the forwarder delivers
	 * one batch of upstream replies and sent with one sendmmsg */
	bool batching;
	int oq_fd;
	unsigned oq_n;
	uint8_t (*oq_buf)[UDP_BUF];
	struct mmsghdr oq_msg[UDP_BATCH];
	struct iovec oq_iov[UDP_BATCH];
	struct sockaddr_storage oq_peer[UDP_BATCH];
	struct cmsgbuf oq_cmsg[UDP_BATCH];
	size_t out_total;              /* TCP output buffered, all connections */
	/* per-client forwarded queries in flight (fairness): chained nodes,
	 * one per client with something in flight */
	struct quota_node {
		struct netaddr addr;
		uint32_t count;
		int32_t next;          /* index, -1 end */
	} *qnodes;
	int32_t *qbuckets;             /* QUOTA_BUCKETS heads */
	int32_t qfree;                 /* free list of nodes */
	size_t qcap;
	uint32_t quota;                /* per client */
	struct qlog_limit qlog_limit;  /* log_queries_rate */
	struct event *qlog_ev;         /* reports suppressed lines when idle */
	struct refuselog refused;      /* refused clients by prefix (fixed size) */
	struct event *refuse_ev;       /* every log_refused_period */
	uint64_t refuse_period_ms;     /* the period refuse_ev runs at */
	struct udp_listener udp[MAX_LISTENERS];
	size_t nudp;
	struct evconnlistener *tcp[MAX_LISTENERS];
	size_t ntcp;
	bool tcp_paused;
	bool draining;                 /* stopping: no new queries read */
	struct event *resume_ev;
	struct tcp_conn *conns;
	size_t nconns;
	uint64_t rr;                   /* rotation counter */
	struct server_stats st;
	/* UDP batch buffers, allocated once */
	uint8_t (*inbuf)[UDP_BUF];
	uint8_t (*outbuf)[UDP_BUF];
	struct mmsghdr inmsg[UDP_BATCH], outmsg[UDP_BATCH];
	struct iovec iniov[UDP_BATCH], outiov[UDP_BATCH];
	struct sockaddr_storage peers[UDP_BATCH];
	struct cmsgbuf incmsg[UDP_BATCH], outcmsg[UDP_BATCH];
	uint8_t tcpq[65536];           /* one TCP query being handled */
	uint8_t tcpout[65536 + 2];     /* one TCP reply being built */
	char txtbuf[8192];
	const char *txt[TXT_MAX];
};

bool
server_client_allowed(const struct netprefix *allow, size_t nallow, const struct netaddr *client)
{
	for (size_t i = 0; i < nallow; i++)
		if (netprefix_contains(&allow[i], client))
			return true;
	return false;
}

/* --- answering ---------------------------------------------------------- */

static bool quota_take(struct server *srv, const struct netaddr *a);
static void qlog_suppressed(struct server *srv, uint64_t n, double span);
static void qlog_timer_cb(evutil_socket_t fd, short what, void *arg);
static void refuse_note(struct server *srv, const struct netaddr *client, enum refuse_reason reason);
static void refuse_timer_cb(evutil_socket_t fd, short what, void *arg);
static void quota_give(struct server *srv, const struct netaddr *a);

enum action { ACT_DROP, ACT_REPLY, ACT_FORWARD };

/* TXT lines describing what sedns knows about a name (CH TXT introspection). */
static size_t
introspect(struct server *srv, const char *qname)
{
	char *p = srv->txtbuf, *end = srv->txtbuf + sizeof(srv->txtbuf);
	size_t n = 0;
#define LINE(...)                                                              \
	do {                                                                   \
		if (n < TXT_MAX && p < end - 1) {                              \
			int w_ = snprintf(p, (size_t)(end - p), __VA_ARGS__);  \
			if (w_ < 0)                                            \
				break;                                         \
			srv->txt[n++] = p;                                     \
			p += (size_t)w_ < (size_t)(end - p) ? (size_t)w_ + 1 : (size_t)(end - p); \
		}                                                              \
	} while (0)
	const struct registry *reg = nametable_registry(srv->nt);
	const struct reg_host *h = registry_find(reg, qname);
	const char *via = "";
	struct nt_result r;
	if (h == NULL && nametable_lookup(srv->nt, qname, &r)) {
		h = r.entry->host;
		via = r.via_cname ? " (search-path expansion)" : " (wildcard)";
	}
	char ups[256];
	const char *zone = forwarder_describe(srv->fwd, qname, ups, sizeof(ups));
	if (h == NULL) {
		LINE("%s: not a ServiceEntry host; queries are forwarded upstream", qname);
		LINE("forward zone=%s upstreams=%s", *zone ? zone : ".", ups);
		/* what the answer cache holds for it (queries with EDNS, then without) */
		static const uint16_t types[] = { DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_HTTPS, DNS_TYPE_MX };
		for (size_t t = 0; srv->cache && t < sizeof(types) / sizeof(types[0]); t++) {
			for (int edns = 1; edns >= 0; edns--) {
				uint8_t qb[512];
				struct dns_query cq;
				struct cache_key k;
				double left;
				unsigned rc;
				char tb[16], rb[16];
				size_t ql = dnswire_build_query(0, qname, types[t], edns ? 1232 : 0, qb, sizeof(qb));
				if (ql == 0 || dnswire_parse_query(qb, ql, &cq) != DNS_Q_OK || !cache_key(qb, ql, &cq, &k) ||
				    !cache_peek(srv->cache, &k, monotime_now(), &left, &rc))
					continue;
				if (left >= 0)
					LINE("cache type=%s %s ttl_left=%.0f rcode=%s", qlog_type_name(types[t], tb, sizeof(tb)),
					    edns ? "edns" : "no-edns", left, qlog_rcode_name(rc, rb, sizeof(rb)));
				else
					LINE("cache type=%s %s expired %.0fs ago (served only if every upstream fails)",
					    qlog_type_name(types[t], tb, sizeof(tb)), edns ? "edns" : "no-edns", -left);
				break;
			}
		}
		return n;
	}
	char a[NETADDR_STRLEN];
	char addrs[512] = "";
	for (size_t i = 0; i < h->naddrs; i++) {
		size_t l = strlen(addrs);
		snprintf(addrs + l, sizeof(addrs) - l, "%s%s", i ? "," : "", netaddr_fmt(&h->addrs[i], a, sizeof(a)));
	}
	LINE("host=%s%s answer=%s addrs=%s resolution=%s%s", h->name, via, registry_answer_name(h->answer),
	    h->naddrs ? addrs : "-", se_resolution_name(h->resolution),
	    h->vip_exhausted ? " vip=EXHAUSTED(pool full)" : "");
	for (size_t i = 0; i < h->nentries; i++) {
		const struct serviceentry *se = h->entries[i];
		LINE("serviceentry=%s/%s file=%s:%d", se->namespace, se->name, se->file, se->line);
	}
	for (size_t i = 0; i < h->nports; i++) {
		const struct reg_port *rp = &h->ports[i];
		char eps[700] = "";
		for (size_t j = 0; j < rp->neps; j++) {
			size_t l = strlen(eps);
			if (l > sizeof(eps) - 80) {
				snprintf(eps + l, sizeof(eps) - l, ",...");
				break;
			}
			snprintf(eps + l, sizeof(eps) - l, "%s%s:%u", j ? "," : "", reg_ep_address(&rp->eps[j]),
			    rp->eps[j].port);
			if (reg_ep_weight(&rp->eps[j]) != 1) {
				l = strlen(eps);
				snprintf(eps + l, sizeof(eps) - l, "(w%u)", reg_ep_weight(&rp->eps[j]));
			}
		}
		LINE("port=%u/%s name=%s endpoints=%s", rp->number, rp->udp ? "udp" : "tcp",
		    rp->name ? rp->name : "-",
		    rp->neps ? eps : (rp->resolve_host ? "(host resolved upstream)" : "none (connections rejected)"));
	}
	if (h->naddrs)
		LINE("owned: A/AAAA/PTR local, HTTPS/SVCB NODATA, other types forward zone=%s upstreams=%s "
		    "(NXDOMAIN becomes NODATA)", *zone ? zone : ".", ups);
#undef LINE
	return n;
}

static size_t
answer_chaos(struct server *srv, const uint8_t *pkt, const struct dns_query *q, size_t limit, uint8_t *out,
    size_t cap)
{
	struct dns_answer ans;
	memset(&ans, 0, sizeof(ans));
	ans.aa = true;
	ans.ttl = 0;
	const char *one[1];
	if (q->qtype != DNS_TYPE_TXT && q->qtype != DNS_TYPE_ANY) {
		ans.rcode = DNS_RCODE_NOERROR; /* NODATA */
	} else if (strcmp(q->name, "version.bind") == 0 || strcmp(q->name, "version.server") == 0) {
		one[0] = "sedns " SEDNS_VERSION;
		ans.txt = one;
		ans.ntxt = 1;
	} else if (strcmp(q->name, "id.server") == 0 || strcmp(q->name, "hostname.bind") == 0) {
		static char host[256];
		if (gethostname(host, sizeof(host) - 1) != 0)
			snprintf(host, sizeof(host), "sedns");
		one[0] = host;
		ans.txt = one;
		ans.ntxt = 1;
	} else if (q->name_plain) {
		ans.ntxt = introspect(srv, q->name);
		ans.txt = srv->txt;
	} else {
		ans.rcode = DNS_RCODE_REFUSED;
		srv->st.refused_chaos++;
	}
	srv->st.chaos++;
	return dnswire_build_answer(pkt, q, &ans, (uint16_t)srv->cfg->edns_udp_size, limit, out, cap);
}

/* An owned name's NXDOMAIN (from upstream or the cache) as NODATA with our
 * SOA (RFC 8020: the name exists here). 0 when it cannot be built. */
static size_t
owned_nodata(struct server *srv, const uint8_t *query, size_t qlen, size_t limit, uint8_t *out, size_t cap)
{
	struct dns_query q;
	if (dnswire_parse_query(query, qlen, &q) != DNS_Q_OK)
		return 0;
	struct dns_answer ans;
	memset(&ans, 0, sizeof(ans));
	ans.aa = true;
	ans.ttl = (uint32_t)srv->cfg->ttl;
	ans.soa = true;
	return dnswire_build_answer(query, &q, &ans, (uint16_t)srv->cfg->edns_udp_size, limit, out, cap);
}

/* Local answers first (the name table, per view), never from the cache. */
static enum action
decide_local(struct server *srv, const uint8_t *pkt, size_t len, const struct netaddr *client, bool tcp,
    uint8_t *out, size_t cap, size_t *outlen, uint16_t *limit_out, struct dns_query *qp, bool *owned,
    const char **note)
{
	*owned = false;
	*note = NULL;
	double t0 = monotime_now();
	enum dns_verdict v = dnswire_parse_query(pkt, len, qp);
	uint16_t our = (uint16_t)srv->cfg->edns_udp_size;
	*limit_out = qp->client_limit ? qp->client_limit : 512;
	if (v == DNS_Q_DROP) {
		srv->st.dropped++;
		return ACT_DROP;
	}
	srv->st.queries++;
	unsigned rcode = 0;
	if (!server_client_allowed(srv->cfg->allow_from, srv->cfg->nallow_from, client)) {
		rcode = DNS_RCODE_REFUSED;
		srv->st.refused++;
		srv->st.refused_acl++;
		*note = "allow_from";
		refuse_note(srv, client, REFUSE_ALLOW_FROM);
	} else if (v == DNS_Q_FORMERR) {
		rcode = DNS_RCODE_FORMERR;
		srv->st.formerr++;
	} else if (v == DNS_Q_NOTIMP) {
		rcode = DNS_RCODE_NOTIMP;
		srv->st.notimp++;
	} else if (v == DNS_Q_BADVERS) {
		rcode = DNS_RCODE_BADVERS;
		srv->st.formerr++;
		*note = "badvers"; /* the header says NOERROR, the OPT the rest */
	}
	if (rcode) {
		*outlen = dnswire_build_error(pkt, len, qp, rcode, our, out, cap);
		return *outlen ? ACT_REPLY : ACT_DROP;
	}
	size_t limit = tcp ? 65535 : (qp->client_limit < cap ? qp->client_limit : cap);
	switch (qp->qtype) {
	case DNS_TYPE_A:
		srv->st.qtype_a++;
		break;
	case DNS_TYPE_AAAA:
		srv->st.qtype_aaaa++;
		break;
	case DNS_TYPE_PTR:
		srv->st.qtype_ptr++;
		break;
	default:
		srv->st.qtype_other++;
	}
	if (qp->qclass == DNS_CLASS_CH) {
		*outlen = answer_chaos(srv, pkt, qp, limit, out, cap);
		return *outlen ? ACT_REPLY : ACT_DROP;
	}
	if (qp->qclass != DNS_CLASS_IN || !qp->name_plain || srv->nt == NULL)
		return ACT_FORWARD;
	struct dns_answer ans;
	char cname[256];
	memset(&ans, 0, sizeof(ans));
	ans.aa = true;
	ans.ttl = (uint32_t)srv->cfg->ttl;
	if (qp->qtype == DNS_TYPE_PTR) {
		struct netaddr a;
		const char *target;
		if (!dnswire_ptr_to_addr(qp->name, &a) || (target = nametable_ptr(srv->nt, &a)) == NULL)
			return ACT_FORWARD;
		ans.ptr = target;
	} else {
		struct nt_result r;
		if (!nametable_lookup_client(srv->nt, qp->name, client, &r, NULL))
			return ACT_FORWARD;
		/* a name answered locally is ours for every type */
		if (qp->qtype == DNS_TYPE_A) {
			ans.addrs = r.addrs->v4;
			ans.naddrs = r.addrs->n4;
		} else if (qp->qtype == DNS_TYPE_AAAA) {
			ans.addrs = r.addrs->v6;
			ans.naddrs = r.addrs->n6;
		} else if (qp->qtype != DNS_TYPE_HTTPS && qp->qtype != DNS_TYPE_SVCB) {
			/* MX, TXT, SRV...: the real zone may have them; an
			 * NXDOMAIN from it becomes NODATA (RFC 8020) */
			*owned = true;
			return ACT_FORWARD;
		}
		/* HTTPS/SVCB: NODATA, never forwarded: their address hints
		 * would bypass the VIP */
		ans.soa = ans.naddrs == 0;
		ans.rotate = (size_t)srv->rr++;
		/* the CNAME points at the name the client meant (for a wildcard
		 * host that is the stripped query name, never "*.domain"). A
		 * search expansion with nothing of the asked family is plain
		 * NODATA with the SOA, as Istio answers it (istio#31251): a lone
		 * CNAME would send the stub on to query the target too. */
		if (r.via_cname && ans.naddrs > 0) {
			size_t tl = r.target_len < sizeof(cname) ? r.target_len : sizeof(cname) - 1;
			memcpy(cname, qp->name, tl);
			cname[tl] = '\0';
			ans.cname = cname;
		}
	}
	*outlen = dnswire_build_answer(pkt, qp, &ans, our, limit, out, cap);
	if (*outlen == 0)
		return ACT_DROP;
	srv->st.local++;
	histo_observe(&srv->st.local_latency, monotime_now() - t0);
	return ACT_REPLY;
}

/* Decides what to do with one query: a local answer, else a cached
 * upstream reply (fresh only; RD=1), else forward. *cached says which.
 * A forwarded query's key (*keyed) is built here once: it serves the
 * cache lookup, the forwarder's coalescing and the cache insert. */
static enum action
decide(struct server *srv, const uint8_t *pkt, size_t len, const struct netaddr *client, bool tcp,
    uint8_t *out, size_t cap, size_t *outlen, uint16_t *limit_out, struct dns_query *qp, bool *owned,
    struct cache_hit *cached, struct cache_key *k, bool *keyed, const char **note)
{
	memset(cached, 0, sizeof(*cached));
	*keyed = false;
	enum action a = decide_local(srv, pkt, len, client, tcp, out, cap, outlen, limit_out, qp, owned, note);
	if (a != ACT_FORWARD)
		return a;
	*keyed = cache_key(pkt, len, qp, k);
	if (!*keyed || srv->cache == NULL)
		return a;
	size_t n = cache_lookup(srv->cache, k, pkt, len, monotime_now(), false, out, cap, cached);
	if (n == 0)
		return ACT_FORWARD;
	size_t limit = tcp ? 65535 : (*limit_out < cap ? *limit_out : cap);
	if (*owned && dnswire_rcode(out) == DNS_RCODE_NXDOMAIN) {
		size_t m = owned_nodata(srv, pkt, len, limit, out, cap);
		if (m)
			n = m;
	} else if (n > limit) {
		n = dnswire_truncate(out, n, limit);
	}
	if (cached->prefetch && srv->cfg->cache_prefetch) {
		/* refreshed beside the hit: the upstream reply only fills the cache */
		struct fwd_client pc;
		memset(&pc, 0, sizeof(pc));
		pc.internal = true;
		pc.limit = 65535;
		if (forwarder_submit(srv->fwd, pkt, len, qp->name, &pc, k))
			cache_count_prefetch(srv->cache);
		else
			cache_prefetch_failed(srv->cache, k);
	}
	srv->st.cached++;
	*outlen = n;
	return ACT_REPLY;
}

/* One query log line (log_queries): what the client was sent (reply,
 * rlen; NULL: nothing), from where, and how long it took since t0. */
static void
qlog_write(struct server *srv, const struct netaddr *client, bool tcp, const struct dns_query *q,
    const char *action, const char *zone, const char *upstream, const uint8_t *reply, size_t rlen,
    long ttl_left, const char *note, double t0)
{
	double now = monotime_now();
	double span;
	uint64_t gone = qlog_limit_due(&srv->qlog_limit, now, &span);
	if (gone > 0)
		qlog_suppressed(srv, gone, span);
	if (!qlog_limit_take(&srv->qlog_limit, now)) {
		/* the count is reported after the window, even if no query
		 * comes then */
		if (!evtimer_pending(srv->qlog_ev, NULL)) {
			struct timeval tv = { 1, 100000 };
			evtimer_add(srv->qlog_ev, &tv);
		}
		return;
	}
	char ca[NETADDR_STRLEN], scratch[QLOG_SCRATCH];
	struct qlog_entry e = {
		.client = netaddr_fmt(client, ca, sizeof(ca)),
		.tcp = tcp,
		.name = q->name,
		.have_question = q->qname_len > 0,
		.qtype = q->qtype,
		.qclass = q->qclass,
		.action = action,
		.zone = zone,
		.upstream = upstream,
		.rcode = reply != NULL && rlen >= DNS_HDR_LEN ? (int)dnswire_rcode(reply) : -1,
		.answers = reply != NULL && rlen >= DNS_HDR_LEN ? dnswire_ancount(reply) : 0,
		.ttl_left = ttl_left,
		.note = note,
		.latency_us = now > t0 ? (uint64_t)((now - t0) * 1e6) : 0,
	};
	if (note != NULL && strcmp(note, "badvers") == 0 && e.rcode == 0)
		e.rcode = DNS_RCODE_BADVERS;
	struct log_field f[QLOG_MAX_FIELDS];
	size_t nf = qlog_fields(&e, f, scratch);
	log_fields(LOG_LVL_INFO, "query", f, nf);
}

static void
qlog_suppressed(struct server *srv, uint64_t n, double span)
{
	struct log_field f[] = {
		{ "suppressed", NULL, (unsigned long long)n },
		{ "seconds", NULL, (unsigned long long)(span + 0.5) },
		{ "log_queries_rate", NULL, (unsigned long long)srv->qlog_limit.per_sec },
	};
	log_fields(LOG_LVL_INFO, "query log: lines over log_queries_rate not written", f, 3);
}

static void
qlog_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	double span;
	uint64_t gone = qlog_limit_due(&srv->qlog_limit, monotime_now(), &span);
	if (gone > 0)
		qlog_suppressed(srv, gone, span);
	else if (srv->qlog_limit.suppressed > 0) {
		struct timeval tv = { 0, 200000 };
		evtimer_add(srv->qlog_ev, &tv);
	}
}

/* Decides what to do with one query; fills out when replying. With
 * log_queries, one line per local answer or drop (forwarded queries are
 * logged when their reply goes out, with the zone and upstream). */
static enum action
handle_query(struct server *srv, const uint8_t *pkt, size_t len, const struct netaddr *client, bool tcp,
    uint8_t *out, size_t cap, size_t *outlen, uint16_t *limit_out, struct dns_query *q, bool *owned,
    struct cache_key *k, bool *keyed)
{
	struct cache_hit hit;
	const char *note;
	double t0 = srv->cfg->log_queries ? monotime_now() : 0;
	enum action a = decide(srv, pkt, len, client, tcp, out, cap, outlen, limit_out, q, owned, &hit, k, keyed,
	    &note);
	if (srv->cfg->log_queries && a != ACT_FORWARD) {
		bool from_cache = a == ACT_REPLY && hit.found;
		qlog_write(srv, client, tcp, q, a == ACT_DROP ? "drop" : from_cache ? "cache" : "local", NULL, NULL,
		    a == ACT_REPLY ? out : NULL, *outlen, from_cache ? (long)hit.ttl_left : -1, note, t0);
	}
	return a;
}

/* --- refused clients ---------------------------------------------------- */

/* A refusal: the first of its prefix is logged now, with what allow_from
 * holds (a wrong pod CIDR is then one look away); the rest are counted. */
static void
refuse_note(struct server *srv, const struct netaddr *client, enum refuse_reason reason)
{
	struct netprefix p;
	if (!refuselog_note(&srv->refused, client, reason, monotime_now(), &p))
		return;
	char a[NETADDR_STRLEN], pb[NETPREFIX_STRLEN], allow[256] = "";
	for (size_t i = 0; i < srv->cfg->nallow_from; i++) {
		size_t l = strlen(allow);
		char b[NETPREFIX_STRLEN];
		if (l + NETPREFIX_STRLEN + 8 > sizeof(allow)) {
			snprintf(allow + l, sizeof(allow) - l, ",...");
			break;
		}
		snprintf(allow + l, sizeof(allow) - l, "%s%s", i ? "," : "",
		    netprefix_fmt(&srv->cfg->allow_from[i], b, sizeof(b)));
	}
	log_warnx("refused %s from %s: not in allow_from=%s; more from %s are counted and logged every %llus "
	    "(reason=%s)", reason == REFUSE_ALLOW_FROM_TCP ? "a TCP connection" : "a query",
	    netaddr_fmt(client, a, sizeof(a)), allow, netprefix_fmt(&p, pb, sizeof(pb)),
	    (unsigned long long)(srv->refuse_period_ms / 1000), refuselog_reason_name(reason));
}

static void
refuse_report(void *arg, const struct refuselog_group *g)
{
	struct server *srv = arg;
	char pb[NETPREFIX_STRLEN];
	log_warnx("refused %llu %s from %s in the last %llus: not in allow_from (%llu since it was first seen; "
	    "reason=%s)", (unsigned long long)g->count, g->reason == REFUSE_ALLOW_FROM_TCP ? "TCP connections" :
	    "queries", netprefix_fmt(&g->pfx, pb, sizeof(pb)), (unsigned long long)(srv->refuse_period_ms / 1000),
	    (unsigned long long)g->total, refuselog_reason_name(g->reason));
}

static void
refuse_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t others;
	refuselog_flush(&srv->refused, refuse_report, srv, &others);
	if (others > 0)
		log_warnx("refused %llu more queries or connections from other prefixes (more than %d prefixes refused "
		    "in %llus: not tracked one by one)", (unsigned long long)others, REFUSELOG_MAX,
		    (unsigned long long)(srv->refuse_period_ms / 1000));
}

/* --- UDP ---------------------------------------------------------------- */

static void
get_pktinfo(struct msghdr *mh, struct netaddr *local, int *ifindex)
{
	memset(local, 0, sizeof(*local));
	*ifindex = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			local->family = AF_INET;
			memcpy(local->a, &pi.ipi_addr, 4);
			*ifindex = pi.ipi_ifindex;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			local->family = AF_INET6;
			memcpy(local->a, &pi.ipi6_addr, 16);
			*ifindex = (int)pi.ipi6_ifindex;
		}
	}
}

/* Fills a control buffer so the reply leaves from `local`. */
static size_t
set_pktinfo(struct cmsgbuf *cb, const struct netaddr *local, int ifindex)
{
	memset(cb, 0, sizeof(*cb));
	struct msghdr mh = { .msg_control = cb->u.buf, .msg_controllen = sizeof(cb->u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (local->family == AF_INET) {
		struct in_pktinfo pi;
		memset(&pi, 0, sizeof(pi));
		memcpy(&pi.ipi_spec_dst, local->a, 4);
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	if (local->family == AF_INET6) {
		struct in6_pktinfo pi;
		memset(&pi, 0, sizeof(pi));
		memcpy(&pi.ipi6_addr, local->a, 16);
		pi.ipi6_ifindex = (unsigned)ifindex;
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	return 0;
}

static void
udp_send_one(int fd, const struct sockaddr_storage *peer, socklen_t plen, const struct netaddr *local, int ifindex,
    const uint8_t *buf, size_t len)
{
	struct cmsgbuf cb;
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = (void *)(uintptr_t)peer;
	mh.msg_namelen = plen;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	size_t cl = set_pktinfo(&cb, local, ifindex);
	if (cl) {
		mh.msg_control = cb.u.buf;
		mh.msg_controllen = cl;
	}
	if (sendmsg(fd, &mh, MSG_DONTWAIT) < 0)
		log_debug("udp send failed: %s", strerror(errno));
}

/* One reply of a sendmmsg batch: buf to peer, leaving from `local`. */
static void
batch_msg(struct mmsghdr *m, struct iovec *iov, struct cmsgbuf *cb, void *peer, socklen_t plen,
    const struct netaddr *local, int ifindex, void *buf, size_t len)
{
	struct msghdr *mh = &m->msg_hdr;
	memset(mh, 0, sizeof(*mh));
	iov->iov_base = buf;
	iov->iov_len = len;
	mh->msg_name = peer;
	mh->msg_namelen = plen;
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	size_t cl = set_pktinfo(cb, local, ifindex);
	if (cl) {
		mh->msg_control = cb->u.buf;
		mh->msg_controllen = cl;
	}
}

static void
send_batch(int fd, struct mmsghdr *msgs, unsigned n)
{
	for (unsigned sent = 0; sent < n;) {
		int r = sendmmsg(fd, msgs + sent, n - sent, MSG_DONTWAIT);
		if (r <= 0) {
			sent++; /* skip the one that failed (e.g. unreachable peer), keep the rest */
			continue;
		}
		sent += (unsigned)r;
	}
}

static void
oq_flush(struct server *srv)
{
	send_batch(srv->oq_fd, srv->oq_msg, srv->oq_n);
	srv->oq_n = 0;
}

/* A forwarded answer to a UDP client: held for the batch's sendmmsg while
 * the forwarder delivers a batch, sent at once otherwise. */
static void
udp_out(struct server *srv, int fd, const struct sockaddr_storage *peer, socklen_t plen, const struct netaddr *local,
    int ifindex, const uint8_t *buf, size_t len)
{
	if (!srv->batching || len > UDP_BUF) {
		udp_send_one(fd, peer, plen, local, ifindex, buf, len);
		return;
	}
	if (srv->oq_n > 0 && (srv->oq_fd != fd || srv->oq_n == UDP_BATCH))
		oq_flush(srv);
	unsigned i = srv->oq_n++;
	srv->oq_fd = fd;
	memcpy(srv->oq_buf[i], buf, len);
	memcpy(&srv->oq_peer[i], peer, plen);
	batch_msg(&srv->oq_msg[i], &srv->oq_iov[i], &srv->oq_cmsg[i], &srv->oq_peer[i], plen, local, ifindex,
	    srv->oq_buf[i], len);
}

static void
fwd_batch(void *arg, bool begin)
{
	struct server *srv = arg;
	if (!begin && srv->oq_n > 0)
		oq_flush(srv);
	srv->batching = begin;
}

static void
udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_listener *l = arg;
	struct server *srv = l->srv;
	for (int round = 0; round < UDP_BUDGET; round++) {
		for (int i = 0; i < UDP_BATCH; i++) {
			srv->iniov[i].iov_base = srv->inbuf[i];
			srv->iniov[i].iov_len = UDP_BUF;
			struct msghdr *mh = &srv->inmsg[i].msg_hdr;
			memset(mh, 0, sizeof(*mh));
			mh->msg_name = &srv->peers[i];
			mh->msg_namelen = sizeof(srv->peers[i]);
			mh->msg_iov = &srv->iniov[i];
			mh->msg_iovlen = 1;
			mh->msg_control = srv->incmsg[i].u.buf;
			mh->msg_controllen = sizeof(srv->incmsg[i].u.buf);
		}
		int n = recvmmsg(fd, srv->inmsg, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		srv->st.udp_batches++;
		unsigned nout = 0;
		for (int i = 0; i < n; i++) {
			struct msghdr *mh = &srv->inmsg[i].msg_hdr;
			size_t len = srv->inmsg[i].msg_len;
			if (mh->msg_flags & MSG_TRUNC) {
				srv->st.dropped++;
				continue;
			}
			struct netaddr client, local;
			int ifindex;
			if (!netaddr_from_sockaddr((struct sockaddr *)&srv->peers[i], &client, NULL))
				continue;
			get_pktinfo(mh, &local, &ifindex);
			size_t outlen = 0;
			uint16_t limit = 512;
			struct dns_query q;
			bool owned;
			struct cache_key k;
			bool keyed;
			enum action act = handle_query(srv, srv->inbuf[i], len, &client, false, srv->outbuf[nout], UDP_BUF,
			    &outlen, &limit, &q, &owned, &k, &keyed);
			if (act == ACT_REPLY) {
				batch_msg(&srv->outmsg[nout], &srv->outiov[nout], &srv->outcmsg[nout], &srv->peers[i],
				    mh->msg_namelen, &local, ifindex, srv->outbuf[nout], outlen);
				nout++;
			} else if (act == ACT_FORWARD) {
				struct fwd_client c;
				memset(&c, 0, sizeof(c));
				c.fd = fd;
				memcpy(&c.peer, &srv->peers[i], mh->msg_namelen);
				c.peerlen = mh->msg_namelen;
				c.local = local;
				c.ifindex = ifindex;
				c.limit = limit;
				c.owned = owned;
				bool fair = quota_take(srv, &client);
				if (!fair)
					srv->st.quota_hits++;
				if (!fair || !forwarder_submit(srv->fwd, srv->inbuf[i], len, q.name, &c, keyed ? &k : NULL)) {
					if (fair)
						quota_give(srv, &client);
					outlen = dnswire_build_error(srv->inbuf[i], len, &q, DNS_RCODE_SERVFAIL,
					    (uint16_t)srv->cfg->edns_udp_size, srv->outbuf[nout], UDP_BUF);
					srv->st.servfail++;
					if (outlen)
						udp_send_one(fd, &srv->peers[i], mh->msg_namelen, &local, ifindex,
						    srv->outbuf[nout], outlen);
					if (srv->cfg->log_queries)
						qlog_write(srv, &client, false, &q, "forward", NULL, "none",
						    outlen ? srv->outbuf[nout] : NULL, outlen, -1,
						    fair ? "pending_full" : "client_quota", monotime_now());
				} else {
					srv->st.forwarded++;
				}
			}
		}
		send_batch(fd, srv->outmsg, nout);
		if (n < UDP_BATCH)
			return;
	}
}

/* --- forwarding fairness --------------------------------------------------- */

static size_t
quota_bucket(const struct netaddr *a)
{
	return netaddr_hash(a) & (QUOTA_BUCKETS - 1);
}

/* One more query upstream for this client; false when it is at its share. */
static bool
quota_take(struct server *srv, const struct netaddr *a)
{
	size_t b = quota_bucket(a);
	for (int32_t i = srv->qbuckets[b]; i >= 0; i = srv->qnodes[i].next) {
		if (netaddr_equal(&srv->qnodes[i].addr, a)) {
			if (srv->qnodes[i].count >= srv->quota)
				return false;
			srv->qnodes[i].count++;
			return true;
		}
	}
	if (srv->qfree < 0)
		return true; /* more clients than slots: the pending cap still holds */
	int32_t i = srv->qfree;
	srv->qfree = srv->qnodes[i].next;
	srv->qnodes[i].addr = *a;
	srv->qnodes[i].count = 1;
	srv->qnodes[i].next = srv->qbuckets[b];
	srv->qbuckets[b] = i;
	return true;
}

static void
quota_give(struct server *srv, const struct netaddr *a)
{
	size_t b = quota_bucket(a);
	for (int32_t *p = &srv->qbuckets[b]; *p >= 0; p = &srv->qnodes[*p].next) {
		struct quota_node *n = &srv->qnodes[*p];
		if (!netaddr_equal(&n->addr, a))
			continue;
		if (--n->count == 0) {
			int32_t i = *p;
			*p = n->next;
			n->next = srv->qfree;
			srv->qfree = i;
		}
		return;
	}
}

/* --- TCP ---------------------------------------------------------------- */

static void tcp_close(struct tcp_conn *c);

/* Keeps out_total in step with what libevent buffers and writes. */
static void
tcp_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct tcp_conn *c = arg;
	c->out_counted += info->n_added;
	c->out_counted -= info->n_deleted < c->out_counted ? info->n_deleted : c->out_counted;
	c->srv->out_total += info->n_added;
	c->srv->out_total -= info->n_deleted < c->srv->out_total ? info->n_deleted : c->srv->out_total;
}

/* Stops reading queries while the output (and the answers still to come)
 * would pass TCP_MAX_OUT. */
static void
tcp_check_out(struct tcp_conn *c)
{
	size_t want = evbuffer_get_length(bufferevent_get_output(c->bev)) + c->npending * TCP_RESERVE;
	if (want > TCP_MAX_OUT && !c->paused) {
		bufferevent_disable(c->bev, EV_READ);
		c->paused = true;
	}
}

static void
tcp_queue_reply(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	struct server *srv = c->srv;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) + len + 2 > TCP_OUT_HARD || srv->out_total + len + 2 > TCP_OUT_TOTAL) {
		/* a client that does not read its answers gets no more of them;
		 * the write timeout closes it */
		srv->st.tcp_out_dropped++;
		return;
	}
	uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
	evbuffer_add(out, hdr, 2);
	evbuffer_add(out, buf, len);
	tcp_check_out(c);
}

/* After a half-close, the connection lives until its answers are out. */
static bool
tcp_maybe_finish(struct tcp_conn *c)
{
	bool complete_frame = tcpframe_peek(bufferevent_get_input(c->bev)) >= 0;
	if (c->eof && c->npending == 0 && !complete_frame &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		tcp_close(c);
		return true;
	}
	return false;
}

/* Handles every complete query in the input; false when c was closed. */
static bool tcp_drain_loop(struct tcp_conn *c);

/* A forwarded query can be answered synchronously (no usable upstream)
 * from inside the loop; the loop then picks up what is left, instead of a
 * nested drain (which could free c under the outer one, or recurse once
 * per buffered frame). */
static bool
tcp_drain(struct tcp_conn *c)
{
	if (c->in_drain)
		return true;
	c->in_drain = true;
	bool alive = tcp_drain_loop(c);
	if (alive)
		c->in_drain = false;
	return alive;
}

static bool
tcp_drain_loop(struct tcp_conn *c)
{
	struct server *srv = c->srv;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	while (!c->paused && !c->full) {
		uint8_t hdr[2];
		if (evbuffer_copyout(in, hdr, 2) == 2 && DNS_GET16(hdr) == 0) {
			tcp_close(c); /* a zero-length message: nonsense, not a query */
			return false;
		}
		size_t len;
		if (!tcpframe_take(in, srv->tcpq, sizeof(srv->tcpq), &len))
			return true;
		size_t outlen = 0;
		uint16_t limit;
		struct dns_query q;
		bool owned;
		struct cache_key k;
		bool keyed;
		enum action act = handle_query(srv, srv->tcpq, len, &c->peer, true, srv->tcpout, sizeof(srv->tcpout),
		    &outlen, &limit, &q, &owned, &k, &keyed);
		if (act == ACT_REPLY) {
			tcp_queue_reply(c, srv->tcpout, outlen);
		} else if (act == ACT_FORWARD) {
			struct fwd_client fc;
			memset(&fc, 0, sizeof(fc));
			fc.tcp = true;
			fc.conn = c;
			fc.limit = 65535;
			fc.owned = owned;
			/* counted first: the forwarder may answer synchronously
			 * (no usable upstream) and decrement it */
			c->npending++;
			srv->st.forwarded++;
			if (c->npending >= TCP_MAX_PENDING && !c->full) {
				/* one client must not take every forward slot */
				c->full = true;
				bufferevent_disable(c->bev, EV_READ);
			}
			tcp_check_out(c);
			bool fair = quota_take(srv, &c->peer);
			if (!fair)
				srv->st.quota_hits++;
			if (!fair || !forwarder_submit(srv->fwd, srv->tcpq, len, q.name, &fc, keyed ? &k : NULL)) {
				if (fair)
					quota_give(srv, &c->peer);
				c->npending--;
				srv->st.forwarded--;
				outlen = dnswire_build_error(srv->tcpq, len, &q, DNS_RCODE_SERVFAIL,
				    (uint16_t)srv->cfg->edns_udp_size, srv->tcpout, sizeof(srv->tcpout));
				srv->st.servfail++;
				if (outlen)
					tcp_queue_reply(c, srv->tcpout, outlen);
				if (srv->cfg->log_queries)
					qlog_write(srv, &c->peer, true, &q, "forward", NULL, "none",
					    outlen ? srv->tcpout : NULL, outlen, -1, fair ? "pending_full" : "client_quota",
					    monotime_now());
			}
		}
	}
	return true;
}

static void
tcp_read_cb(struct bufferevent *bev, void *arg)
{
	tcp_drain(arg);
}

/* Reading resumes only when neither cap holds and the client has not
 * half-closed; false when c was closed. */
static bool
tcp_resume(struct tcp_conn *c)
{
	if (c->paused || c->full || c->eof)
		return true;
	bufferevent_enable(c->bev, EV_READ);
	return tcp_drain(c);
}

static void
tcp_write_cb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;
	if (c->paused && evbuffer_get_length(bufferevent_get_output(bev)) + c->npending * TCP_RESERVE <= TCP_MAX_OUT / 2) {
		c->paused = false;
		if (!tcp_resume(c))
			return;
	}
	if (c->eof) {
		/* half-closed: finish what was read, then go */
		if (!tcp_drain(c))
			return;
		tcp_maybe_finish(c);
	}
}

static void
tcp_resume_accept(struct server *srv)
{
	if (!srv->tcp_paused)
		return;
	srv->tcp_paused = false;
	for (size_t i = 0; i < srv->ntcp; i++)
		evconnlistener_enable(srv->tcp[i]);
}

static void
tcp_pause_accept(struct server *srv)
{
	if (srv->tcp_paused)
		return;
	srv->tcp_paused = true;
	for (size_t i = 0; i < srv->ntcp; i++)
		evconnlistener_disable(srv->tcp[i]);
}

static void
tcp_close(struct tcp_conn *c)
{
	struct server *srv = c->srv;
	if (c->npending) {
		forwarder_detach_conn(srv->fwd, c);
		for (size_t i = 0; i < c->npending; i++)
			quota_give(srv, &c->peer);
	}
	if (c->lifetime)
		event_free(c->lifetime);
	srv->out_total -= c->out_counted < srv->out_total ? c->out_counted : srv->out_total;
	bufferevent_free(c->bev);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	srv->nconns--;
	srv->st.tcp_conns = srv->nconns;
	if (srv->nconns < srv->cfg->tcp_max_connections && !event_pending(srv->resume_ev, EV_TIMEOUT, NULL))
		tcp_resume_accept(srv);
}

static void
tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_conn *c = arg;
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->npending > 0) {
		/* answers are still on their way: not idle (a client that does
		 * not read its answers times out on writing and is closed) */
		if (!c->paused && !c->full && !c->eof)
			bufferevent_enable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !c->eof) {
		/* half-close (RFC 7766 allows it): finish the queries already read */
		c->eof = true;
		if (!tcp_drain(c))
			return;
		bufferevent_disable(bev, EV_READ);
		tcp_maybe_finish(c);
		return;
	}
	tcp_close(c);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	if (srv->nconns < srv->cfg->tcp_max_connections)
		tcp_resume_accept(srv);
}

/* tcp_max_lifetime: stop taking queries, answer what was read, close. */
static void
tcp_lifetime_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_conn *c = arg;
	c->srv->st.tcp_lifetime_ends++;
	if (c->eof)
		return;
	c->eof = true;
	bufferevent_disable(c->bev, EV_READ);
	if (tcp_drain(c))
		tcp_maybe_finish(c);
}

static void
accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	struct netaddr peer;
	if (!netaddr_from_sockaddr(sa, &peer, NULL) ||
	    !server_client_allowed(srv->cfg->allow_from, srv->cfg->nallow_from, &peer)) {
		/* not a client of ours: no slot, not even for a moment */
		srv->st.tcp_refused_acl++;
		if (peer.family != 0)
			refuse_note(srv, &peer, REFUSE_ALLOW_FROM_TCP);
		close(fd);
		return;
	}
	size_t same = 0;
	for (const struct tcp_conn *o = srv->conns; o; o = o->next)
		same += netaddr_equal(&o->peer, &peer);
	if (same >= srv->cfg->tcp_max_per_client) {
		srv->st.tcp_refused_per_client++;
		close(fd);
		return;
	}
	struct tcp_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->peer = peer;
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, tcp_read_cb, tcp_write_cb, tcp_event_cb, c);
	/* input is capped: one maximal query plus its length */
	bufferevent_setwatermark(c->bev, EV_READ, 0, 65537 * 2);
	struct timeval idle = monotime_tv(srv->cfg->tcp_idle_timeout_ms);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	evbuffer_add_cb(bufferevent_get_output(c->bev), tcp_out_cb, c);
	/* a byte now and then must not hold a slot for ever */
	c->lifetime = evtimer_new(srv->base, tcp_lifetime_cb, c);
	if (c->lifetime) {
		struct timeval lt = monotime_tv(srv->cfg->tcp_max_lifetime_ms);
		evtimer_add(c->lifetime, &lt);
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	srv->st.tcp_accepted++;
	srv->st.tcp_conns = srv->nconns;
	if (srv->nconns >= srv->cfg->tcp_max_connections) {
		srv->st.tcp_refused_cap++;
		tcp_pause_accept(srv);
	}
}

static void
accept_error_cb(struct evconnlistener *lis, void *arg)
{
	struct server *srv = arg;
	int e = EVUTIL_SOCKET_ERROR();
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		/* out of descriptors: stop accepting for a moment instead of spinning */
		log_warnx("tcp accept: %s; pausing accept for 1s", strerror(e));
		tcp_pause_accept(srv);
		struct timeval tv = { 1, 0 };
		event_add(srv->resume_ev, &tv);
	}
}

/* --- forwarder replies -------------------------------------------------- */

static void
fwd_reply(void *arg, const struct fwd_client *c, const uint8_t *reply, size_t len, const uint8_t *query, size_t qlen,
    const struct fwd_info *info)
{
	struct server *srv = arg;
	uint8_t buf[UDP_BUF];
	struct dns_query q;
	bool parsed = false;
	bool rewritten = false, stale = false;
	const struct cache_key *k = srv->cache != NULL ? info->key : NULL; /* computed once, at submit */
	bool keyed = k != NULL;
	if (c->internal) {
		/* a prefetch: the reply only refreshes the cache */
		if (keyed && (reply == NULL || !cache_insert(srv->cache, k, reply, len, monotime_now())))
			cache_prefetch_failed(srv->cache, k);
		return;
	}
	struct netaddr who;
	if (c->tcp)
		who = ((struct tcp_conn *)c->conn)->peer;
	else if (!netaddr_from_sockaddr((const struct sockaddr *)&c->peer, &who, NULL))
		memset(&who, 0, sizeof(who));
	quota_give(srv, &who);
	size_t limit = c->tcp ? 65535 : c->limit;
	if (reply == NULL && keyed && srv->cfg->cache_stale_max_ms > 0) {
		/* every upstream failed: an expired answer beats SERVFAIL (RFC 8767) */
		struct cache_hit hit;
		size_t n = cache_lookup(srv->cache, k, query, qlen, monotime_now(), true, buf, sizeof(buf), &hit);
		if (n > 0) {
			reply = buf;
			len = n > limit ? dnswire_truncate(buf, n, limit) : n;
			stale = true;
		}
	}
	if (reply == NULL) {
		if (!parsed)
			dnswire_parse_query(query, qlen, &q);
		parsed = true;
		len = dnswire_build_error(query, qlen, &q, DNS_RCODE_SERVFAIL, (uint16_t)srv->cfg->edns_udp_size, buf,
		    sizeof(buf));
		reply = buf;
		srv->st.servfail++;
		if (len == 0)
			return;
	} else if (!stale) {
		if (keyed)
			cache_insert(srv->cache, k, reply, len, monotime_now());
		size_t m = 0;
		bool nx = len >= DNS_HDR_LEN && dnswire_rcode(reply) == DNS_RCODE_NXDOMAIN;
		/* the name exists here (A/AAAA answer it): its other types are
		 * NODATA, not NXDOMAIN (RFC 8020) */
		if (nx && c->owned && (m = owned_nodata(srv, query, qlen, limit, buf, sizeof(buf))) > 0) {
			reply = buf;
			len = m;
			rewritten = true;
			srv->st.nxdomain_rewritten++;
		} else {
			if (nx)
				srv->st.nxdomain++;
			if (len > limit) /* the forwarder's buffer: truncated in place */
				len = dnswire_truncate((uint8_t *)(uintptr_t)reply, len, limit);
		}
	}
	if (srv->cfg->log_queries) {
		char ua[NETADDR_STRLEN], up[NETADDR_STRLEN + 8] = "none";
		if (!parsed)
			dnswire_parse_query(query, qlen, &q);
		if (info->have_upstream)
			snprintf(up, sizeof(up), info->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			    netaddr_fmt(&info->addr, ua, sizeof(ua)), info->port);
		/* info->seconds runs from the submit, right after the read */
		qlog_write(srv, &who, c->tcp, &q, "forward", info->zone, up, reply, len, -1,
		    rewritten ? "was_nxdomain" : stale ? "stale" : NULL, monotime_now() - info->seconds);
	}
	if (c->tcp) {
		struct tcp_conn *conn = c->conn;
		conn->npending--;
		tcp_queue_reply(conn, reply, len);
		if (conn->full && conn->npending <= TCP_MAX_PENDING / 2) {
			conn->full = false;
			if (!tcp_resume(conn))
				return;
		}
		if (conn->eof && !conn->in_drain) {
			if (!tcp_drain(conn))
				return;
			tcp_maybe_finish(conn);
		}
	} else {
		udp_out(srv, c->fd, &c->peer, c->peerlen, &c->local, c->ifindex, reply, len);
	}
}

/* --- setup -------------------------------------------------------------- */

static bool
is_loopback(const struct netaddr *a)
{
	static const uint8_t v6lo[16] = { [15] = 1 };
	if (a->family == AF_INET)
		return a->a[0] == 127;
	return a->family == AF_INET6 && memcmp(a->a, v6lo, 16) == 0;
}

/* Options every listener gets, adopted or our own. */
static void
udp_sockopts(int fd, int family)
{
	int one = 1;
	if (family == AF_INET) {
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	}
	int rcv = 4 * 1024 * 1024;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
}

/* A new socket bound to ep: SO_REUSEPORT so that a second sedns can serve
 * beside us during a rollout; IP_FREEBIND for a non-loopback address that
 * may not be on an interface yet (the dummy interface comes up late). */
int
server_bind_listener(const struct config *cfg, const struct config_endpoint *ep, int type, bool trial, int *why,
    char *err, size_t errlen)
{
	bool reuseport = cfg->listen_reuseport && !trial;
	struct sockaddr_storage ss;
	socklen_t sl = netaddr_to_sockaddr(&ep->addr, ep->port, &ss);
	char a[NETADDR_STRLEN];
	const char *proto = type == SOCK_DGRAM ? "udp" : "tcp";
	int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*why = errno;
		snprintf(err, errlen, "%s socket: %s", proto, strerror(errno));
		return -1;
	}
	int one = 1;
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (cfg->listen_freebind && !is_loopback(&ep->addr)) {
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
#ifdef IPV6_FREEBIND
		if (ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
#endif
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || (type == SOCK_STREAM && listen(fd, 256) < 0)) {
		int e = errno;
		*why = e;
		snprintf(err, errlen, "cannot listen on %s %s port %u: %s%s", proto, netaddr_fmt(&ep->addr, a, sizeof(a)),
		    ep->port, strerror(e), e == EADDRINUSE && reuseport ?
		    " (another program holds it without SO_REUSEPORT, or a sedns of another user)" :
		    e == EACCES && ep->port < 1024 ? " (ports below 1024 need CAP_NET_BIND_SERVICE)" :
		    e == EADDRNOTAVAIL ? " (not an address of this node; listen_freebind binds it before it is)" : "");
		close(fd);
		return -1;
	}
	if (type == SOCK_DGRAM)
		udp_sockopts(fd, ss.ss_family);
	return fd;
}

static bool
add_udp(struct server *srv, int fd, int family, bool adopted, char *err, size_t errlen)
{
	if (srv->nudp >= MAX_LISTENERS) {
		snprintf(err, errlen, "more than %d UDP listeners", MAX_LISTENERS);
		close(fd);
		return false;
	}
	struct udp_listener *l = &srv->udp[srv->nudp++];
	l->srv = srv;
	l->fd = fd;
	l->family = family;
	l->adopted = adopted;
	l->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, udp_read_cb, l);
	if (l->ev == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	event_add(l->ev, NULL);
	return true;
}

static bool
add_tcp(struct server *srv, int fd, char *err, size_t errlen)
{
	if (srv->ntcp >= MAX_LISTENERS) {
		snprintf(err, errlen, "more than %d TCP listeners", MAX_LISTENERS);
		close(fd);
		return false;
	}
	/* backlog 0: the socket already listens */
	struct evconnlistener *tl = evconnlistener_new(srv->base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (tl == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return false;
	}
	evconnlistener_set_error_cb(tl, accept_error_cb);
	srv->tcp[srv->ntcp++] = tl;
	return true;
}

/* Does an adopted socket of this type already serve ep? */
static bool
adopted_covers(const int *fds, const int *types, const struct netaddr *addrs, const uint16_t *ports, size_t n,
    const struct config_endpoint *ep, int type)
{
	for (size_t i = 0; i < n; i++)
		if (types[i] == type && ports[i] == ep->port && netaddr_equal(&addrs[i], &ep->addr) && fds[i] >= 0)
			return true;
	return false;
}

size_t
server_listen_fds(int *fds, size_t max)
{
	/* sd_listen_fds(3): LISTEN_PID must be us; fds start at 3 */
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	if (pid == NULL || nfds == NULL || strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	long n = strtol(nfds, NULL, 10);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	size_t k = 0;
	for (long i = 0; i < n && i < 4096; i++) {
		if (k < max)
			fds[k++] = 3 + (int)i;
		else
			close(3 + (int)i); /* more than we can use: not leaked to children */
	}
	return k;
}

/* A client's share of the forward slots. */
static uint32_t
quota_of(const struct config *cfg)
{
	if (cfg->max_pending_per_client)
		return (uint32_t)cfg->max_pending_per_client;
	uint64_t q = cfg->max_pending / 8;
	return (uint32_t)(q < 16 ? 16 : q);
}

static void
cache_opts_of(const struct config *cfg, struct cache_opts *co)
{
	co->size = (size_t)cfg->cache_size;
	co->min_ttl = (uint32_t)(cfg->cache_min_ttl_ms / 1000);
	co->max_ttl = (uint32_t)(cfg->cache_max_ttl_ms / 1000);
	co->max_negative_ttl = (uint32_t)(cfg->cache_max_negative_ttl_ms / 1000);
	co->stale_max = (uint32_t)(cfg->cache_stale_max_ms / 1000);
}

struct server *
server_new(struct event_base *base, const struct config *cfg, const struct fwd_zone_spec *zones, size_t nzones,
    const int *listen_fds, size_t nlisten_fds, char *err, size_t errlen)
{
	struct server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->base = base;
	srv->cfg = cfg;
	srv->inbuf = calloc(UDP_BATCH, UDP_BUF);
	srv->outbuf = calloc(UDP_BATCH, UDP_BUF);
	srv->resume_ev = evtimer_new(base, resume_cb, srv);
	srv->qlog_ev = evtimer_new(base, qlog_timer_cb, srv);
	srv->refuse_ev = event_new(base, -1, EV_PERSIST, refuse_timer_cb, srv);
	if (srv->refuse_ev) {
		srv->refuse_period_ms = cfg->log_refused_period_ms;
		struct timeval tv = monotime_tv(srv->refuse_period_ms);
		event_add(srv->refuse_ev, &tv);
	}
	qlog_limit_init(&srv->qlog_limit, cfg->log_queries_rate);
	srv->fwd = forwarder_new(base, zones, nzones, cfg->upstream_timeout_ms, (size_t)cfg->max_pending, fwd_reply, srv);
	srv->oq_buf = calloc(UDP_BATCH, UDP_BUF);
	if (srv->fwd)
		forwarder_set_batch_cb(srv->fwd, fwd_batch);
	srv->qcap = (size_t)cfg->max_pending;
	srv->qnodes = calloc(srv->qcap, sizeof(*srv->qnodes));
	srv->qbuckets = malloc(QUOTA_BUCKETS * sizeof(*srv->qbuckets));
	if (srv->qnodes == NULL || srv->qbuckets == NULL) {
		snprintf(err, errlen, "out of memory");
		server_free(srv);
		return NULL;
	}
	for (size_t i = 0; i < QUOTA_BUCKETS; i++)
		srv->qbuckets[i] = -1;
	for (size_t i = 0; i < srv->qcap; i++)
		srv->qnodes[i].next = i + 1 < srv->qcap ? (int32_t)(i + 1) : -1;
	srv->qfree = srv->qcap ? 0 : -1;
	srv->quota = quota_of(cfg);
	if (cfg->cache_size > 0) {
		struct cache_opts co;
		cache_opts_of(cfg, &co);
		if ((srv->cache = cache_new(&co)) == NULL) {
			snprintf(err, errlen, "out of memory for a cache of %llu entries",
			    (unsigned long long)cfg->cache_size);
			server_free(srv);
			return NULL;
		}
	}
	if (srv->inbuf == NULL || srv->outbuf == NULL || srv->oq_buf == NULL || srv->resume_ev == NULL ||
	    srv->qlog_ev == NULL || srv->refuse_ev == NULL || srv->fwd == NULL) {
		snprintf(err, errlen, "out of memory");
		server_free(srv);
		return NULL;
	}
	/* sockets handed over by systemd (socket activation): they stay open
	 * in systemd while we restart, so the kernel queues queries meanwhile */
	int fds[MAX_LISTENERS], types[MAX_LISTENERS];
	struct netaddr addrs[MAX_LISTENERS];
	uint16_t ports[MAX_LISTENERS];
	size_t nfds = 0;
	for (size_t i = MAX_LISTENERS; i < nlisten_fds; i++) {
		log_warnx("LISTEN_FDS: more than %d sockets; closing descriptor %d", MAX_LISTENERS, listen_fds[i]);
		close(listen_fds[i]);
	}
	for (size_t i = 0; i < nlisten_fds && nfds < MAX_LISTENERS; i++) {
		int fd = listen_fds[i], type = 0, acc = 0;
		socklen_t tl = sizeof(type), al = sizeof(acc);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
		    !netaddr_from_sockaddr((struct sockaddr *)&ss, &addrs[nfds], &ports[nfds]) ||
		    (type != SOCK_DGRAM && type != SOCK_STREAM)) {
			snprintf(err, errlen, "LISTEN_FDS: descriptor %d is not a UDP or TCP socket", fd);
			server_free(srv);
			return NULL;
		}
		if (type == SOCK_STREAM && (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 || !acc)) {
			snprintf(err, errlen, "LISTEN_FDS: TCP descriptor %d is not listening", fd);
			server_free(srv);
			return NULL;
		}
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fds[nfds] = fd;
		types[nfds] = type;
		nfds++;
		bool ok;
		if (type == SOCK_DGRAM) {
			udp_sockopts(fd, ss.ss_family);
			ok = add_udp(srv, fd, ss.ss_family, true, err, errlen);
		} else {
			ok = add_tcp(srv, fd, err, errlen);
		}
		if (!ok) {
			server_free(srv);
			return NULL;
		}
		char a[NETADDR_STRLEN];
		log_info("listening on %s %s port %u (socket from systemd)", type == SOCK_DGRAM ? "udp" : "tcp",
		    netaddr_fmt(&addrs[nfds - 1], a, sizeof(a)), ports[nfds - 1]);
	}
	/* every configured address not covered by an adopted socket: our own */
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_endpoint *ep = &cfg->listen[i];
		if (!adopted_covers(fds, types, addrs, ports, nfds, ep, SOCK_DGRAM)) {
			int why, fd = server_bind_listener(cfg, ep, SOCK_DGRAM, false, &why, err, errlen);
			if (fd < 0 || !add_udp(srv, fd, ep->addr.family, false, err, errlen)) {
				server_free(srv);
				return NULL;
			}
		}
		if (!adopted_covers(fds, types, addrs, ports, nfds, ep, SOCK_STREAM)) {
			int why, fd = server_bind_listener(cfg, ep, SOCK_STREAM, false, &why, err, errlen);
			if (fd < 0 || !add_tcp(srv, fd, err, errlen)) {
				server_free(srv);
				return NULL;
			}
		}
	}
	return srv;
}

void
server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	while (srv->conns)
		tcp_close(srv->conns);
	for (size_t i = 0; i < srv->nudp; i++) {
		if (srv->udp[i].ev)
			event_free(srv->udp[i].ev);
		if (srv->udp[i].fd >= 0)
			close(srv->udp[i].fd);
	}
	for (size_t i = 0; i < srv->ntcp; i++)
		if (srv->tcp[i])
			evconnlistener_free(srv->tcp[i]);
	forwarder_free(srv->fwd);
	cache_free(srv->cache);
	if (srv->qlog_limit.suppressed > 0) /* said before going */
		qlog_suppressed(srv, srv->qlog_limit.suppressed, monotime_now() - srv->qlog_limit.suppressed_since);
	free(srv->qnodes);
	free(srv->qbuckets);
	if (srv->resume_ev)
		event_free(srv->resume_ev);
	if (srv->qlog_ev)
		event_free(srv->qlog_ev);
	if (srv->refuse_ev) {
		refuse_timer_cb(-1, 0, srv); /* the last counts */
		event_free(srv->refuse_ev);
	}
	free(srv->inbuf);
	free(srv->outbuf);
	free(srv->oq_buf);
	free(srv);
}

void
server_drain(struct server *srv)
{
	if (srv->draining)
		return;
	srv->draining = true;
	for (size_t i = 0; i < srv->nudp; i++) {
		struct udp_listener *l = &srv->udp[i];
		if (l->adopted) {
			/* systemd keeps it: what arrives now is the next
			 * instance's to answer */
			event_del(l->ev);
			continue;
		}
		/* connected, the socket leaves its SO_REUSEPORT group's
		 * selection: new queries go to the other sedns, while the ones
		 * already queued here are still read and answered */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct netaddr self;
		uint16_t port;
		if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0 &&
		    netaddr_from_sockaddr((struct sockaddr *)&ss, &self, &port)) {
			bool any = true;
			for (size_t b = 0; b < 16; b++)
				any &= self.a[b] == 0;
			if (any)
				netaddr_parse(self.family == AF_INET ? "127.0.0.1" : "::1", &self);
			sl = netaddr_to_sockaddr(&self, port, &ss);
			if (connect(l->fd, (struct sockaddr *)&ss, sl) < 0)
				log_debug("drain: connect udp listener: %s", strerror(errno));
		}
	}
	/* TCP: no new connections (systemd's listening socket stays open);
	 * open connections answer what they hold, then close */
	for (size_t i = 0; i < srv->ntcp; i++) {
		evconnlistener_free(srv->tcp[i]);
		srv->tcp[i] = NULL;
	}
	srv->ntcp = 0;
	for (struct tcp_conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		c->eof = true;
		bufferevent_disable(c->bev, EV_READ);
		if (tcp_drain(c))
			tcp_maybe_finish(c);
	}
}

bool
server_drained(const struct server *srv)
{
	if (forwarder_pending(srv->fwd) > 0 || srv->conns != NULL)
		return false;
	for (size_t i = 0; i < srv->nudp; i++) {
		int n = 0;
		if (!srv->udp[i].adopted && ioctl(srv->udp[i].fd, FIONREAD, &n) == 0 && n > 0)
			return false;
	}
	return true;
}

void
server_fail_inflight(struct server *srv)
{
	/* the SERVFAILs are queued on each connection; a drained connection
	 * closes itself once they are written (the caller gives the loop a
	 * moment for that before server_free) */
	forwarder_fail_all(srv->fwd);
}

struct nametable *
server_set_table(struct server *srv, struct nametable *nt)
{
	struct nametable *old = srv->nt;
	srv->nt = nt;
	return old;
}

void
server_set_config(struct server *srv, const struct config *cfg, const struct fwd_zone_spec *zones, size_t nzones)
{
	srv->cfg = cfg;
	struct cache_opts co;
	cache_opts_of(cfg, &co);
	cache_set_opts(srv->cache, &co); /* the size waits for a restart */
	srv->quota = quota_of(cfg);
	srv->qlog_limit.per_sec = cfg->log_queries_rate;
	if (cfg->log_refused_period_ms != srv->refuse_period_ms) {
		srv->refuse_period_ms = cfg->log_refused_period_ms;
		struct timeval tv = monotime_tv(srv->refuse_period_ms);
		event_add(srv->refuse_ev, &tv);
	}
	if (!forwarder_set_zones(srv->fwd, zones, nzones))
		log_error("reload: out of memory setting forward zones; keeping the previous ones");
	if (srv->nconns < cfg->tcp_max_connections && !event_pending(srv->resume_ev, EV_TIMEOUT, NULL))
		tcp_resume_accept(srv);
}

void
server_stats(const struct server *srv, struct server_stats *st)
{
	*st = srv->st;
	st->refused_prefixes = refuselog_groups(&srv->refused);
}

struct nametable *
server_table(struct server *srv)
{
	return srv->nt;
}

struct cache *
server_cache(struct server *srv)
{
	return srv->cache;
}

struct forwarder *
server_forwarder(struct server *srv)
{
	return srv->fwd;
}
