/* server — see include/server.h. */
#include "server.h"

#include <errno.h>
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

#include "dnswire.h"
#include "log.h"
#include "monotime.h"
#include "vipstore.h"

#define UDP_BATCH 32           /* messages per recvmmsg */
#define UDP_BUDGET 8           /* batches per wakeup before yielding */
#define UDP_BUF 4096           /* per message: our EDNS size is <= 4096 */
#define TCP_MAX_OUT (256 * 1024)
#define TCP_MAX_PENDING 64      /* forwarded queries in flight per TCP client */
#define MAX_LISTENERS CONFIG_MAX_LIST
#define TXT_MAX 48

struct udp_listener {
	struct server *srv;
	int fd;
	int family;
	struct event *ev;
};

struct tcp_conn {
	struct server *srv;
	struct bufferevent *bev;
	struct netaddr peer;
	size_t npending;
	bool paused;                   /* output over TCP_MAX_OUT */
	bool full;                     /* TCP_MAX_PENDING queries in flight */
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
	struct udp_listener udp[MAX_LISTENERS];
	size_t nudp;
	struct evconnlistener *tcp[MAX_LISTENERS];
	size_t ntcp;
	bool tcp_paused;
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
	if (h == NULL) {
		LINE("%s: not a ServiceEntry host; queries are forwarded upstream", qname);
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
			snprintf(eps + l, sizeof(eps) - l, "%s%s:%u", j ? "," : "", rp->eps[j].address, rp->eps[j].port);
			if (rp->eps[j].weight != 1) {
				l = strlen(eps);
				snprintf(eps + l, sizeof(eps) - l, "(w%u)", rp->eps[j].weight);
			}
		}
		LINE("port=%u/%s name=%s endpoints=%s", rp->number, rp->udp ? "udp" : "tcp",
		    rp->name ? rp->name : "-",
		    rp->neps ? eps : (rp->resolve_host ? "(host resolved upstream)" : "none (connections rejected)"));
	}
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
	}
	srv->st.chaos++;
	return dnswire_build_answer(pkt, q, &ans, (uint16_t)srv->cfg->edns_udp_size, limit, out, cap);
}

/* Decides what to do with one query; fills out when replying. */
static enum action
decide(struct server *srv, const uint8_t *pkt, size_t len, const struct netaddr *client, bool tcp,
    uint8_t *out, size_t cap, size_t *outlen, uint16_t *limit_out, struct dns_query *qp)
{
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
	} else if (v == DNS_Q_FORMERR) {
		rcode = DNS_RCODE_FORMERR;
		srv->st.formerr++;
	} else if (v == DNS_Q_NOTIMP) {
		rcode = DNS_RCODE_NOTIMP;
		srv->st.notimp++;
	} else if (v == DNS_Q_BADVERS) {
		rcode = DNS_RCODE_BADVERS;
		srv->st.formerr++;
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
	if (qp->qtype == DNS_TYPE_A || qp->qtype == DNS_TYPE_AAAA) {
		struct nt_result r;
		if (!nametable_lookup_client(srv->nt, qp->name, client, &r, NULL))
			return ACT_FORWARD;
		if (qp->qtype == DNS_TYPE_A) {
			ans.addrs = r.addrs->v4;
			ans.naddrs = r.addrs->n4;
		} else {
			ans.addrs = r.addrs->v6;
			ans.naddrs = r.addrs->n6;
		}
		ans.rotate = (size_t)srv->rr++;
		/* the CNAME points at the name the client meant (for a wildcard
		 * host that is the stripped query name, never "*.domain") */
		if (r.via_cname) {
			size_t tl = r.target_len < sizeof(cname) ? r.target_len : sizeof(cname) - 1;
			memcpy(cname, qp->name, tl);
			cname[tl] = '\0';
			ans.cname = cname;
		}
	} else if (qp->qtype == DNS_TYPE_PTR) {
		struct netaddr a;
		const char *target;
		if (!dnswire_ptr_to_addr(qp->name, &a) || (target = nametable_ptr(srv->nt, &a)) == NULL)
			return ACT_FORWARD;
		ans.ptr = target;
	} else {
		return ACT_FORWARD;
	}
	*outlen = dnswire_build_answer(pkt, qp, &ans, our, limit, out, cap);
	if (*outlen == 0)
		return ACT_DROP;
	srv->st.local++;
	histo_observe(&srv->st.local_latency, monotime_now() - t0);
	return ACT_REPLY;
}

/* Decides what to do with one query; fills out when replying. With
 * log_queries, one line per query says who asked what and what happened. */
static enum action
handle_query(struct server *srv, const uint8_t *pkt, size_t len, const struct netaddr *client, bool tcp,
    uint8_t *out, size_t cap, size_t *outlen, uint16_t *limit_out)
{
	struct dns_query q;
	enum action a = decide(srv, pkt, len, client, tcp, out, cap, outlen, limit_out, &q);
	if (srv->cfg->log_queries) {
		char c[NETADDR_STRLEN];
		unsigned rcode = a == ACT_REPLY && *outlen >= DNS_HDR_LEN ? dnswire_rcode(out) : 0;
		log_info("query client=%s proto=%s name=%s type=%u class=%u action=%s rcode=%u",
		    netaddr_fmt(client, c, sizeof(c)), tcp ? "tcp" : "udp", q.qname_len ? q.name : "-", q.qtype,
		    q.qclass, a == ACT_REPLY ? "local" : a == ACT_FORWARD ? "forward" : "drop", rcode);
	}
	return a;
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
			enum action act = handle_query(srv, srv->inbuf[i], len, &client, false, srv->outbuf[nout], UDP_BUF,
			    &outlen, &limit);
			if (act == ACT_REPLY) {
				struct msghdr *om = &srv->outmsg[nout].msg_hdr;
				memset(om, 0, sizeof(*om));
				srv->outiov[nout].iov_base = srv->outbuf[nout];
				srv->outiov[nout].iov_len = outlen;
				om->msg_name = &srv->peers[i];
				om->msg_namelen = mh->msg_namelen;
				om->msg_iov = &srv->outiov[nout];
				om->msg_iovlen = 1;
				size_t cl = set_pktinfo(&srv->outcmsg[nout], &local, ifindex);
				if (cl) {
					om->msg_control = srv->outcmsg[nout].u.buf;
					om->msg_controllen = cl;
				}
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
				if (!forwarder_submit(srv->fwd, srv->inbuf[i], len, &c)) {
					struct dns_query q;
					dnswire_parse_query(srv->inbuf[i], len, &q);
					outlen = dnswire_build_error(srv->inbuf[i], len, &q, DNS_RCODE_SERVFAIL,
					    (uint16_t)srv->cfg->edns_udp_size, srv->outbuf[nout], UDP_BUF);
					srv->st.servfail++;
					if (outlen)
						udp_send_one(fd, &srv->peers[i], mh->msg_namelen, &local, ifindex,
						    srv->outbuf[nout], outlen);
				} else {
					srv->st.forwarded++;
				}
			}
		}
		for (unsigned sent = 0; sent < nout;) {
			int r = sendmmsg(fd, srv->outmsg + sent, nout - sent, MSG_DONTWAIT);
			if (r <= 0) {
				/* skip the one that failed (e.g. unreachable peer), keep the rest */
				sent++;
				continue;
			}
			sent += (unsigned)r;
		}
		if (n < UDP_BATCH)
			return;
	}
}

/* --- TCP ---------------------------------------------------------------- */

static void tcp_close(struct tcp_conn *c);

static void
tcp_queue_reply(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add(out, hdr, 2);
	evbuffer_add(out, buf, len);
	if (evbuffer_get_length(out) > TCP_MAX_OUT && !c->paused) {
		/* the client is not reading its answers: stop reading its queries */
		bufferevent_disable(c->bev, EV_READ);
		c->paused = true;
	}
}

/* After a half-close, the connection lives until its answers are out. */
static bool
tcp_maybe_finish(struct tcp_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	uint8_t hdr[2];
	bool complete_frame = evbuffer_copyout(in, hdr, 2) == 2 && evbuffer_get_length(in) >= (size_t)DNS_GET16(hdr) + 2;
	if (c->eof && c->npending == 0 && !complete_frame &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		tcp_close(c);
		return true;
	}
	return false;
}

/* Handles every complete query in the input; false when c was closed. */
static bool
tcp_drain(struct tcp_conn *c)
{
	struct server *srv = c->srv;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	while (!c->paused && !c->full) {
		uint8_t hdr[2];
		if (evbuffer_copyout(in, hdr, 2) < 2)
			return true;
		size_t len = DNS_GET16(hdr);
		if (len == 0) {
			tcp_close(c);
			return false;
		}
		if (evbuffer_get_length(in) < len + 2)
			return true;
		evbuffer_drain(in, 2);
		evbuffer_remove(in, srv->tcpq, len);
		size_t outlen = 0;
		uint16_t limit;
		enum action act = handle_query(srv, srv->tcpq, len, &c->peer, true, srv->tcpout, sizeof(srv->tcpout),
		    &outlen, &limit);
		if (act == ACT_REPLY) {
			tcp_queue_reply(c, srv->tcpout, outlen);
		} else if (act == ACT_FORWARD) {
			struct fwd_client fc;
			memset(&fc, 0, sizeof(fc));
			fc.tcp = true;
			fc.conn = c;
			fc.limit = 65535;
			/* counted first: the forwarder may answer synchronously
			 * (no usable upstream) and decrement it */
			c->npending++;
			srv->st.forwarded++;
			if (c->npending >= TCP_MAX_PENDING && !c->full) {
				/* one client must not take every forward slot */
				c->full = true;
				bufferevent_disable(c->bev, EV_READ);
			}
			if (!forwarder_submit(srv->fwd, srv->tcpq, len, &fc)) {
				c->npending--;
				srv->st.forwarded--;
				struct dns_query q;
				dnswire_parse_query(srv->tcpq, len, &q);
				outlen = dnswire_build_error(srv->tcpq, len, &q, DNS_RCODE_SERVFAIL,
				    (uint16_t)srv->cfg->edns_udp_size, srv->tcpout, sizeof(srv->tcpout));
				srv->st.servfail++;
				if (outlen)
					tcp_queue_reply(c, srv->tcpout, outlen);
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
	if (c->paused && evbuffer_get_length(bufferevent_get_output(bev)) <= TCP_MAX_OUT / 2) {
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
	if (c->npending)
		forwarder_detach_conn(srv->fwd, c);
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

static void
accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	struct tcp_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->srv = srv;
	netaddr_from_sockaddr(sa, &c->peer, NULL);
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
fwd_reply(void *arg, const struct fwd_client *c, const uint8_t *reply, size_t len, const uint8_t *query, size_t qlen)
{
	struct server *srv = arg;
	uint8_t buf[UDP_BUF];
	if (reply == NULL) {
		struct dns_query q;
		dnswire_parse_query(query, qlen, &q);
		len = dnswire_build_error(query, qlen, &q, DNS_RCODE_SERVFAIL, (uint16_t)srv->cfg->edns_udp_size, buf,
		    sizeof(buf));
		reply = buf;
		srv->st.servfail++;
		if (len == 0)
			return;
	} else if (len >= DNS_HDR_LEN && dnswire_rcode(reply) == DNS_RCODE_NXDOMAIN) {
		srv->st.nxdomain++;
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
		if (conn->eof) {
			if (!tcp_drain(conn))
				return;
			tcp_maybe_finish(conn);
		}
	} else {
		udp_send_one(c->fd, &c->peer, c->peerlen, &c->local, c->ifindex, reply, len);
	}
}

/* --- setup -------------------------------------------------------------- */

static int
bind_udp(const struct config_endpoint *ep, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = netaddr_to_sockaddr(&ep->addr, ep->port, &ss);
	char a[NETADDR_STRLEN];
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "udp socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	if (ss.ss_family == AF_INET) {
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	int rcv = 4 * 1024 * 1024;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		snprintf(err, errlen, "cannot listen on udp %s port %u: %s", netaddr_fmt(&ep->addr, a, sizeof(a)),
		    ep->port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct server *
server_new(struct event_base *base, const struct config *cfg, const struct config_endpoint *ups, size_t nups,
    char *err, size_t errlen)
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
	srv->fwd = forwarder_new(base, ups, nups, cfg->upstream_timeout_ms, (size_t)cfg->max_pending, fwd_reply, srv);
	if (srv->inbuf == NULL || srv->outbuf == NULL || srv->resume_ev == NULL || srv->fwd == NULL) {
		snprintf(err, errlen, "out of memory");
		server_free(srv);
		return NULL;
	}
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_endpoint *ep = &cfg->listen[i];
		int fd = bind_udp(ep, err, errlen);
		if (fd < 0) {
			server_free(srv);
			return NULL;
		}
		struct udp_listener *l = &srv->udp[srv->nudp++];
		l->srv = srv;
		l->fd = fd;
		l->family = ep->addr.family;
		l->ev = event_new(base, fd, EV_READ | EV_PERSIST, udp_read_cb, l);
		if (l->ev == NULL) {
			snprintf(err, errlen, "out of memory");
			server_free(srv);
			return NULL;
		}
		event_add(l->ev, NULL);

		struct sockaddr_storage ss;
		socklen_t sl = netaddr_to_sockaddr(&ep->addr, ep->port, &ss);
		struct evconnlistener *tl = evconnlistener_new_bind(base, accept_cb, srv,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 256, (struct sockaddr *)&ss,
		    (int)sl);
		if (tl == NULL) {
			char a[NETADDR_STRLEN];
			snprintf(err, errlen, "cannot listen on tcp %s port %u: %s", netaddr_fmt(&ep->addr, a, sizeof(a)),
			    ep->port, strerror(errno));
			server_free(srv);
			return NULL;
		}
		evconnlistener_set_error_cb(tl, accept_error_cb);
		srv->tcp[srv->ntcp++] = tl;
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
		close(srv->udp[i].fd);
	}
	for (size_t i = 0; i < srv->ntcp; i++)
		evconnlistener_free(srv->tcp[i]);
	forwarder_free(srv->fwd);
	if (srv->resume_ev)
		event_free(srv->resume_ev);
	free(srv->inbuf);
	free(srv->outbuf);
	free(srv);
}

struct nametable *
server_set_table(struct server *srv, struct nametable *nt)
{
	struct nametable *old = srv->nt;
	srv->nt = nt;
	return old;
}

void
server_set_config(struct server *srv, const struct config *cfg, const struct config_endpoint *ups, size_t nups)
{
	srv->cfg = cfg;
	forwarder_set_upstreams(srv->fwd, ups, nups);
	if (srv->nconns < cfg->tcp_max_connections && !event_pending(srv->resume_ev, EV_TIMEOUT, NULL))
		tcp_resume_accept(srv);
}

void
server_stats(const struct server *srv, struct server_stats *st)
{
	*st = srv->st;
}

struct nametable *
server_table(struct server *srv)
{
	return srv->nt;
}

struct forwarder *
server_forwarder(struct server *srv)
{
	return srv->fwd;
}
