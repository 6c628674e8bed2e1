/*
 * fakeupstream — a controllable DNS server (and a raw DNS client) for the
 * sedns integration tests. Plain sockets and poll; packets built by hand.
 *
 * Server:  fakeupstream -p PORT [-a ADDR] [-l LOGFILE] [-t SECONDS] [-m MODE]
 *   UDP and TCP on ADDR:PORT (default 127.0.0.1). Exits after -t seconds
 *   (default 300). -m: normal (default), drop (never answer), spoof (before
 *   every answer, send a reply with the right ID but A 203.0.113.66 from a
 *   different source port), plain (every name, whatever its first label,
 *   gets A 192.0.2.N; other types NODATA). Every query is logged to LOGFILE as
 *   "PROTO NAME TYPE" (name as received).
 *   Behaviour by the first label of the query name (case-insensitive):
 *     delay-MS   answer after MS milliseconds
 *     drop       never answer
 *     tc         UDP: TC=1, no records; TCP: the full answer (3 A records)
 *     big        64 A records (~1050 bytes) whatever the client's size
 *     wrongid    a reply with a wrong ID first, the right one 50 ms later
 *     wrongidonly  only the wrong-ID reply
 *     wrongq     a reply for a different question (A 203.0.113.66)
 *     garbage    40 random bytes
 *     nx         NXDOMAIN
 *     nxsoa-N    NXDOMAIN with an SOA (TTL N, MINIMUM N) in the authority
 *     ttl-N      records with TTL N (default 300)
 *     servfail   SERVFAIL (with EDE "fakeupstream servfail" when EDNS)
 *     formerr-noq FORMERR with no question section (an EDNS-unaware server)
 *     nx-noq     NXDOMAIN with no question section (not a legitimate answer)
 *     refused    REFUSED
 *     echo-edns  TXT "edns=none" or "edns=SIZE opts=HEX" (options received)
 *   Otherwise names under .test get A 192.0.2.N / AAAA 2001:db8::N /
 *   MX 10 mail.NAME / TXT "fakeupstream NAME" (N from a hash of the name);
 *   every other name is NXDOMAIN.
 *
 * Client:  fakeupstream -c ADDR:PORT [-T] [-H] [-w MS] [-b SRCADDR] [-e SIZE] Q...
 *   Q is "hex:BYTES" (sent as is) or NAME[/TYPE] (a query with RD, an OPT
 *   record with -e). UDP: each query in turn, waiting -w ms (default 1000)
 *   for its reply. TCP (-T): all queries written back to back on one
 *   connection (-H: then shut down the write side), then the replies are
 *   read. Prints per reply:
 *   "REPLY id=.. qr=.. opcode=.. aa=.. tc=.. rd=.. ra=.. rcode=.. qd=.. an=..
 *   ns=.. ar=.. len=.. hex=..", or "NOREPLY". With -I (TCP, no queries):
 *   connects, sends nothing, prints "CLOSED MS" when the server closes or
 *   "OPEN MS" after -w ms.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 512
#define MAXDELAY 512

enum mode { M_NORMAL, M_DROP, M_SPOOF, M_PLAIN };

static FILE *logf;
static enum mode mode = M_NORMAL;
static int spoof_fd = -1;

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fakeupstream: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* --- packet building --------------------------------------------------- */

struct pkt {
	uint8_t b[65535];
	size_t n;
};

static void
put8(struct pkt *p, unsigned v)
{
	if (p->n < sizeof(p->b))
		p->b[p->n++] = (uint8_t)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void
put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

static void
putbytes(struct pkt *p, const void *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put8(p, ((const uint8_t *)d)[i]);
}

/* dotted name (no trailing dot needed) in wire form */
static void
putname(struct pkt *p, const char *name)
{
	const char *s = name;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		if (l > 63)
			l = 63;
		put8(p, (unsigned)l);
		putbytes(p, s, l);
		s += l;
		if (*s == '.')
			s++;
	}
	put8(p, 0);
}

static void
set16(struct pkt *p, size_t off, unsigned v)
{
	p->b[off] = (uint8_t)(v >> 8);
	p->b[off + 1] = (uint8_t)v;
}

/* --- query parsing ----------------------------------------------------- */

struct query {
	uint16_t id, flags, qtype, qclass;
	char name[256];          /* as received, dotted, no trailing dot */
	char lname[256];         /* lower case */
	const uint8_t *qwire;    /* question (name+type+class) in the packet */
	size_t qwlen;
	int edns;                /* OPT present */
	unsigned edns_size;
	uint8_t opts[4096];
	size_t optlen;
};

static int
parse_query(const uint8_t *b, size_t n, struct query *q)
{
	memset(q, 0, sizeof(*q));
	if (n < 12)
		return -1;
	q->id = (uint16_t)(b[0] << 8 | b[1]);
	q->flags = (uint16_t)(b[2] << 8 | b[3]);
	if (q->flags & 0x8000)
		return -1;
	unsigned qd = (unsigned)(b[4] << 8 | b[5]);
	unsigned an = (unsigned)(b[6] << 8 | b[7]);
	unsigned ns = (unsigned)(b[8] << 8 | b[9]);
	unsigned ar = (unsigned)(b[10] << 8 | b[11]);
	if (qd != 1)
		return -1;
	size_t off = 12, o = 0;
	for (;;) {
		if (off >= n)
			return -1;
		unsigned l = b[off++];
		if (l == 0)
			break;
		if (l > 63 || off + l > n || o + l + 2 > sizeof(q->name))
			return -1;
		if (o)
			q->name[o++] = '.';
		memcpy(q->name + o, b + off, l);
		o += l;
		off += l;
	}
	q->name[o] = 0;
	for (size_t i = 0; i <= o; i++)
		q->lname[i] = (char)tolower((unsigned char)q->name[i]);
	if (off + 4 > n)
		return -1;
	q->qtype = (uint16_t)(b[off] << 8 | b[off + 1]);
	q->qclass = (uint16_t)(b[off + 2] << 8 | b[off + 3]);
	off += 4;
	q->qwire = b + 12;
	q->qwlen = off - 12;
	if (an || ns)
		return 0;
	/* additional: look for OPT (root name, type 41) */
	for (unsigned i = 0; i < ar; i++) {
		if (off + 11 > n || b[off] != 0)
			return 0;
		unsigned type = (unsigned)(b[off + 1] << 8 | b[off + 2]);
		unsigned cls = (unsigned)(b[off + 3] << 8 | b[off + 4]);
		size_t rdlen = (size_t)(b[off + 9] << 8 | b[off + 10]);
		off += 11;
		if (off + rdlen > n)
			return 0;
		if (type == 41) {
			q->edns = 1;
			q->edns_size = cls;
			q->optlen = rdlen < sizeof(q->opts) ? rdlen : sizeof(q->opts);
			memcpy(q->opts, b + off, q->optlen);
		}
		off += rdlen;
	}
	return 0;
}

static unsigned
name_hash(const char *s)
{
	unsigned h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h % 254 + 1;
}

static int
ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* header + question; answer counts are set with set16 afterwards */
static void
begin_reply(struct pkt *p, const struct query *q, uint16_t id, unsigned rcode, int aa)
{
	p->n = 0;
	put16(p, id);
	unsigned fl = 0x8000 | (q->flags & 0x7900) /* opcode, RD */ | 0x0080 /* RA */ | (rcode & 0xf);
	if (aa)
		fl |= 0x0400;
	put16(p, fl);
	put16(p, 1);
	put16(p, 0);
	put16(p, 0);
	put16(p, 0);
	putbytes(p, q->qwire, q->qwlen);
}

/* a header with no question and no records */
static int
header_only(struct pkt *p, const struct query *q, unsigned rcode)
{
	p->n = 0;
	put16(p, q->id);
	put16(p, 0x8000 | (q->flags & 0x0100) | 0x0080 | (rcode & 0xf));
	for (int i = 0; i < 4; i++)
		put16(p, 0);
	return 1;
}

static uint32_t rr_ttl = 300;   /* per query: "ttl-N" first label */

static void
rr_a(struct pkt *p, unsigned a, unsigned b, unsigned c, unsigned d)
{
	put16(p, 0xc00c);
	put16(p, 1);
	put16(p, 1);
	put32(p, rr_ttl);
	put16(p, 4);
	put8(p, a);
	put8(p, b);
	put8(p, c);
	put8(p, d);
}

static void
rr_txt(struct pkt *p, const char *txt)
{
	size_t l = strlen(txt);
	if (l > 255)
		l = 255;
	put16(p, 0xc00c);
	put16(p, 16);
	put16(p, 1);
	put32(p, 300);
	put16(p, (unsigned)l + 1);
	put8(p, (unsigned)l);
	putbytes(p, txt, l);
}

static void
add_opt(struct pkt *p, const struct query *q, const char *ede)
{
	if (!q->edns)
		return;
	put8(p, 0);
	put16(p, 41);
	put16(p, 4096);
	put32(p, 0);
	if (ede) {
		size_t l = strlen(ede);
		put16(p, (unsigned)(4 + 2 + l));
		put16(p, 15);           /* Extended DNS Error */
		put16(p, (unsigned)(2 + l));
		put16(p, 0);            /* Other */
		putbytes(p, ede, l);
	} else {
		put16(p, 0);
	}
	set16(p, 10, 1);
}

/* Builds the normal answer for q. Returns 0 = no answer. */
static int
build_answer(const struct query *q, int tcp, struct pkt *p)
{
	const char *l = q->lname;
	unsigned an = 0;
	rr_ttl = strncmp(l, "ttl-", 4) == 0 ? (uint32_t)strtoul(l + 4, NULL, 10) : 300;
	if (strncmp(l, "nxsoa-", 6) == 0) {
		uint32_t n = (uint32_t)strtoul(l + 6, NULL, 10);
		begin_reply(p, q, q->id, 3, 1);
		/* SOA of "test": owner "test." */
		put8(p, 4);
		putbytes(p, "test", 4);
		put8(p, 0);
		put16(p, 6);
		put16(p, 1);
		put32(p, n);
		put16(p, 1 + 1 + 20);
		put8(p, 0); /* MNAME "." */
		put8(p, 0); /* RNAME "." */
		put32(p, 1);
		put32(p, 3600);
		put32(p, 600);
		put32(p, 86400);
		put32(p, n);
		set16(p, 8, 1); /* NSCOUNT */
		add_opt(p, q, NULL);
		return 1;
	}
	if (strncmp(l, "nx.", 3) == 0 || !ends_with(l, ".test")) {
		if (strcmp(l, "test") == 0) {
			begin_reply(p, q, q->id, 0, 1);
			add_opt(p, q, NULL);
			return 1;
		}
		begin_reply(p, q, q->id, 3, 1);
		add_opt(p, q, NULL);
		return 1;
	}
	if (strncmp(l, "servfail.", 9) == 0) {
		begin_reply(p, q, q->id, 2, 0);
		add_opt(p, q, "fakeupstream servfail");
		return 1;
	}
	/* what a server that does not understand the query may send:
	 * FORMERR with the header only, no question; and the same shape
	 * with an rcode that must not be believed without a question */
	if (strncmp(l, "formerr-noq.", 12) == 0)
		return header_only(p, q, 1);
	if (strncmp(l, "nx-noq.", 7) == 0)
		return header_only(p, q, 3);
	if (strncmp(l, "refused.", 8) == 0) {
		begin_reply(p, q, q->id, 5, 0);
		add_opt(p, q, NULL);
		return 1;
	}
	if (strncmp(l, "tc.", 3) == 0 && !tcp) {
		begin_reply(p, q, q->id, 0, 1);
		p->b[2] |= 0x02;
		add_opt(p, q, NULL);
		return 1;
	}
	begin_reply(p, q, q->id, 0, 1);
	unsigned h = name_hash(l);
	if (strncmp(l, "echo-edns.", 10) == 0 && q->qtype == 16) {
		char txt[256];
		if (!q->edns) {
			snprintf(txt, sizeof(txt), "edns=none");
		} else {
			int w = snprintf(txt, sizeof(txt), "edns=%u opts=", q->edns_size);
			for (size_t i = 0; i < q->optlen && (size_t)w + 3 < sizeof(txt); i++)
				w += snprintf(txt + w, sizeof(txt) - (size_t)w, "%02x", q->opts[i]);
			if (q->optlen == 0)
				snprintf(txt + w, sizeof(txt) - (size_t)w, "-");
		}
		rr_txt(p, txt);
		an = 1;
	} else if (q->qtype == 1) {
		if (strncmp(l, "big.", 4) == 0) {
			for (unsigned i = 0; i < 64; i++)
				rr_a(p, 192, 0, 2, i + 1);
			an = 64;
		} else if (strncmp(l, "tc.", 3) == 0) {
			for (unsigned i = 0; i < 3; i++)
				rr_a(p, 192, 0, 2, 100 + i);
			an = 3;
		} else {
			rr_a(p, 192, 0, 2, h);
			an = 1;
		}
	} else if (q->qtype == 28) {
		put16(p, 0xc00c);
		put16(p, 28);
		put16(p, 1);
		put32(p, 300);
		put16(p, 16);
		uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
		a6[15] = (uint8_t)h;
		putbytes(p, a6, 16);
		an = 1;
	} else if (q->qtype == 15) {
		put16(p, 0xc00c);
		put16(p, 15);
		put16(p, 1);
		put32(p, 300);
		size_t at = p->n;
		put16(p, 0);
		put16(p, 10);
		char mx[300];
		snprintf(mx, sizeof(mx), "mail.%s", q->name);
		putname(p, mx);
		set16(p, at, (unsigned)(p->n - at - 2));
		an = 1;
	} else if (q->qtype == 16) {
		char txt[300];
		snprintf(txt, sizeof(txt), "fakeupstream %s", q->name);
		rr_txt(p, txt);
		an = 1;
	}
	set16(p, 6, an);
	add_opt(p, q, NULL);
	return 1;
}

/* --- server ------------------------------------------------------------ */

struct conn {
	int fd;
	unsigned gen;
	uint8_t buf[70000];
	size_t n;
};

struct delayed {
	int used;
	long long due;
	int tcp;
	int cidx;
	unsigned gen;
	struct sockaddr_storage peer;
	socklen_t plen;
	size_t n;
	uint8_t b[1500];
	uint8_t *big;
};

static struct conn conns[MAXCONN];
static struct delayed delays[MAXDELAY];
static int udp_fd = -1;

static void
send_tcp(int cidx, const uint8_t *b, size_t n)
{
	uint8_t hdr[2] = { (uint8_t)(n >> 8), (uint8_t)n };
	int fd = conns[cidx].fd;
	if (fd < 0)
		return;
	/* blocking-enough for test sizes: the socket buffer takes it */
	if (write(fd, hdr, 2) != 2 || write(fd, b, n) != (ssize_t)n)
		return;
}

static void
send_reply(int tcp, int cidx, const struct sockaddr_storage *peer, socklen_t plen, const uint8_t *b, size_t n)
{
	if (tcp)
		send_tcp(cidx, b, n);
	else
		sendto(udp_fd, b, n, 0, (const struct sockaddr *)peer, plen);
}

static void
schedule(long long due, int tcp, int cidx, const struct sockaddr_storage *peer, socklen_t plen, const uint8_t *b,
    size_t n)
{
	for (int i = 0; i < MAXDELAY; i++) {
		struct delayed *d = &delays[i];
		if (d->used)
			continue;
		d->used = 1;
		d->due = due;
		d->tcp = tcp;
		d->cidx = cidx;
		d->gen = tcp ? conns[cidx].gen : 0;
		if (peer)
			memcpy(&d->peer, peer, plen);
		d->plen = plen;
		d->n = n;
		d->big = NULL;
		if (n > sizeof(d->b)) {
			d->big = malloc(n);
			if (d->big == NULL) {
				d->used = 0;
				return;
			}
			memcpy(d->big, b, n);
		} else {
			memcpy(d->b, b, n);
		}
		return;
	}
}

static void
run_delays(void)
{
	long long now = now_ms();
	for (int i = 0; i < MAXDELAY; i++) {
		struct delayed *d = &delays[i];
		if (!d->used || d->due > now)
			continue;
		if (!d->tcp || conns[d->cidx].gen == d->gen)
			send_reply(d->tcp, d->cidx, &d->peer, d->plen, d->big ? d->big : d->b, d->n);
		free(d->big);
		d->big = NULL;
		d->used = 0;
	}
}

static int
next_delay_ms(void)
{
	long long now = now_ms(), best = -1;
	for (int i = 0; i < MAXDELAY; i++)
		if (delays[i].used && (best < 0 || delays[i].due < best))
			best = delays[i].due;
	if (best < 0)
		return 200;
	return best <= now ? 0 : (int)(best - now);
}

static void
handle(const uint8_t *b, size_t n, int tcp, int cidx, const struct sockaddr_storage *peer, socklen_t plen)
{
	static struct pkt p;
	struct query q;
	if (parse_query(b, n, &q) < 0)
		return;
	if (logf) {
		fprintf(logf, "%s %s %u\n", tcp ? "tcp" : "udp", q.name, q.qtype);
		fflush(logf);
	}
	if (mode == M_DROP)
		return;
	if (mode == M_PLAIN) {
		begin_reply(&p, &q, q.id, 0, 1);
		if (q.qtype == 1) {
			rr_a(&p, 192, 0, 2, name_hash(q.lname));
			set16(&p, 6, 1);
		}
		add_opt(&p, &q, NULL);
		send_reply(tcp, cidx, peer, plen, p.b, p.n);
		return;
	}
	const char *l = q.lname;
	long long delay = 0;
	if (strncmp(l, "drop.", 5) == 0)
		return;
	if (strncmp(l, "delay-", 6) == 0)
		delay = atoll(l + 6);
	if (strncmp(l, "garbage.", 8) == 0) {
		uint8_t g[40];
		for (size_t i = 0; i < sizeof(g); i++)
			g[i] = (uint8_t)rand();
		send_reply(tcp, cidx, peer, plen, g, sizeof(g));
		return;
	}
	if (strncmp(l, "wrongq.", 7) == 0) {
		struct query q2 = q;
		static struct pkt w;
		w.n = 0;
		put16(&w, q.id);
		put16(&w, 0x8180);
		put16(&w, 1);
		put16(&w, 1);
		put16(&w, 0);
		put16(&w, 0);
		putname(&w, "other.test");
		put16(&w, q2.qtype);
		put16(&w, 1);
		rr_a(&w, 203, 0, 113, 66);
		send_reply(tcp, cidx, peer, plen, w.b, w.n);
		return;
	}
	if (!build_answer(&q, tcp, &p))
		return;
	if (mode == M_SPOOF && !tcp && spoof_fd >= 0) {
		static struct pkt s;
		begin_reply(&s, &q, q.id, 0, 1);
		rr_a(&s, 203, 0, 113, 66);
		set16(&s, 6, 1);
		sendto(spoof_fd, s.b, s.n, 0, (const struct sockaddr *)peer, plen);
		delay = delay > 50 ? delay : 50;
	}
	if (strncmp(l, "wrongid", 7) == 0) {
		uint16_t good = q.id;
		p.b[0] ^= 0x55;
		p.b[1] ^= 0xaa;
		send_reply(tcp, cidx, peer, plen, p.b, p.n);
		if (strncmp(l, "wrongidonly.", 12) == 0)
			return;
		set16(&p, 0, good);
		delay = delay > 50 ? delay : 50;
	}
	if (delay > 0)
		schedule(now_ms() + delay, tcp, cidx, peer, plen, p.b, p.n);
	else
		send_reply(tcp, cidx, peer, plen, p.b, p.n);
}

static int
serve(const char *addr, int port, int seconds)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		die("bad address %s", addr);
	udp_fd = socket(AF_INET, SOCK_DGRAM, 0);
	int tfd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (udp_fd < 0 || tfd < 0 || bind(udp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    bind(tfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(tfd, 1024) < 0)
		die("cannot listen on %s:%d: %s", addr, port, strerror(errno));
	if (mode == M_SPOOF) {
		struct sockaddr_in s2 = sin;
		s2.sin_port = 0;
		spoof_fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (spoof_fd < 0 || bind(spoof_fd, (struct sockaddr *)&s2, sizeof(s2)) < 0)
			die("spoof socket: %s", strerror(errno));
	}
	for (int i = 0; i < MAXCONN; i++)
		conns[i].fd = -1;
	long long end = now_ms() + (long long)seconds * 1000;
	static uint8_t ubuf[65536];
	while (now_ms() < end) {
		struct pollfd pfd[2 + MAXCONN];
		int idx[2 + MAXCONN];
		int np = 0;
		pfd[np].fd = udp_fd;
		pfd[np].events = POLLIN;
		idx[np++] = -1;
		pfd[np].fd = tfd;
		pfd[np].events = POLLIN;
		idx[np++] = -2;
		for (int i = 0; i < MAXCONN; i++) {
			if (conns[i].fd < 0)
				continue;
			pfd[np].fd = conns[i].fd;
			pfd[np].events = POLLIN;
			idx[np++] = i;
		}
		int r = poll(pfd, (nfds_t)np, next_delay_ms());
		if (r < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		run_delays();
		if (r <= 0)
			continue;
		for (int k = 0; k < np; k++) {
			if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (idx[k] == -1) {
				for (int m = 0; m < 64; m++) {
					struct sockaddr_storage peer;
					socklen_t plen = sizeof(peer);
					ssize_t n = recvfrom(udp_fd, ubuf, sizeof(ubuf), MSG_DONTWAIT,
					    (struct sockaddr *)&peer, &plen);
					if (n < 0)
						break;
					handle(ubuf, (size_t)n, 0, 0, &peer, plen);
				}
			} else if (idx[k] == -2) {
				int cfd = accept(tfd, NULL, NULL);
				if (cfd < 0)
					continue;
				int slot = -1;
				for (int i = 0; i < MAXCONN; i++)
					if (conns[i].fd < 0) {
						slot = i;
						break;
					}
				if (slot < 0) {
					close(cfd);
					continue;
				}
				conns[slot].fd = cfd;
				conns[slot].gen++;
				conns[slot].n = 0;
			} else {
				struct conn *c = &conns[idx[k]];
				ssize_t n = read(c->fd, c->buf + c->n, sizeof(c->buf) - c->n);
				if (n <= 0) {
					close(c->fd);
					c->fd = -1;
					c->gen++;
					continue;
				}
				c->n += (size_t)n;
				while (c->n >= 2) {
					size_t l = (size_t)(c->buf[0] << 8 | c->buf[1]);
					if (c->n < l + 2)
						break;
					handle(c->buf + 2, l, 1, idx[k], NULL, 0);
					if (c->fd < 0)
						break;
					memmove(c->buf, c->buf + 2 + l, c->n - 2 - l);
					c->n -= 2 + l;
				}
			}
		}
	}
	return 0;
}

/* --- client ------------------------------------------------------------ */

static unsigned
type_num(const char *t)
{
	static const struct {
		const char *n;
		unsigned v;
	} tab[] = { { "A", 1 }, { "NS", 2 }, { "CNAME", 5 }, { "SOA", 6 }, { "PTR", 12 }, { "MX", 15 }, { "TXT", 16 },
		{ "AAAA", 28 }, { "SRV", 33 }, { "ANY", 255 } };
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcasecmp(t, tab[i].n) == 0)
			return tab[i].v;
	return (unsigned)atoi(t);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void
make_query(const char *spec, int edns, struct pkt *p)
{
	p->n = 0;
	if (strncmp(spec, "hex:", 4) == 0) {
		const char *s = spec + 4;
		while (*s) {
			if (!isxdigit((unsigned char)s[0])) {
				s++;
				continue;
			}
			if (!isxdigit((unsigned char)s[1]))
				die("odd hex in %s", spec);
			put8(p, (unsigned)(hexval(s[0]) << 4 | hexval(s[1])));
			s += 2;
		}
		return;
	}
	char name[300];
	snprintf(name, sizeof(name), "%s", spec);
	unsigned type = 1;
	char *sl = strchr(name, '/');
	if (sl) {
		*sl = 0;
		type = type_num(sl + 1);
	}
	put16(p, (unsigned)rand() & 0xffff);
	put16(p, 0x0100);
	put16(p, 1);
	put16(p, 0);
	put16(p, 0);
	put16(p, edns ? 1 : 0);
	putname(p, name);
	put16(p, type);
	put16(p, 1);
	if (edns) {
		put8(p, 0);
		put16(p, 41);
		put16(p, (unsigned)edns);
		put32(p, 0);
		put16(p, 0);
	}
}

static void
print_reply(const uint8_t *b, size_t n)
{
	if (n < 12) {
		printf("REPLY short len=%zu hex=", n);
	} else {
		unsigned fl = (unsigned)(b[2] << 8 | b[3]);
		printf("REPLY id=%u qr=%u opcode=%u aa=%u tc=%u rd=%u ra=%u rcode=%u qd=%u an=%u ns=%u ar=%u len=%zu hex=",
		    (unsigned)(b[0] << 8 | b[1]), fl >> 15, (fl >> 11) & 0xf, (fl >> 10) & 1, (fl >> 9) & 1, (fl >> 8) & 1,
		    (fl >> 7) & 1, fl & 0xf, (unsigned)(b[4] << 8 | b[5]), (unsigned)(b[6] << 8 | b[7]),
		    (unsigned)(b[8] << 8 | b[9]), (unsigned)(b[10] << 8 | b[11]), n);
	}
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
	fflush(stdout);
}

static int
parse_hostport(const char *s, struct sockaddr_in *sin)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", s);
	char *c = strrchr(buf, ':');
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(53);
	if (c) {
		*c = 0;
		sin->sin_port = htons((uint16_t)atoi(c + 1));
	}
	return inet_pton(AF_INET, buf, &sin->sin_addr) == 1 ? 0 : -1;
}

static int halfclose;

static int
client(const char *server, int tcp, int wait_ms, const char *src, int edns, int idle, char **qs, int nq)
{
	struct sockaddr_in sin, bsin;
	if (parse_hostport(server, &sin) < 0)
		die("bad server %s", server);
	int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (src) {
		if (parse_hostport(src, &bsin) < 0)
			die("bad source %s", src);
		bsin.sin_port = 0;
		if (bind(fd, (struct sockaddr *)&bsin, sizeof(bsin)) < 0)
			die("bind %s: %s", src, strerror(errno));
	}
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("connect %s: %s", server, strerror(errno));
	static struct pkt p;
	static uint8_t rb[70000];
	if (!tcp) {
		for (int i = 0; i < nq; i++) {
			make_query(qs[i], edns, &p);
			if (send(fd, p.b, p.n, 0) < 0) {
				printf("SENDERR %s\n", strerror(errno));
				continue;
			}
			struct pollfd pfd = { fd, POLLIN, 0 };
			long long end = now_ms() + wait_ms;
			int got = 0;
			while (!got) {
				long long left = end - now_ms();
				if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
					break;
				ssize_t n = recv(fd, rb, sizeof(rb), 0);
				if (n < 0)
					break;
				/* built queries: a reply to an earlier query is skipped */
				if (strncmp(qs[i], "hex:", 4) != 0 && n >= 2 && (rb[0] != p.b[0] || rb[1] != p.b[1]))
					continue;
				print_reply(rb, (size_t)n);
				got = 1;
			}
			if (!got)
				printf("NOREPLY\n");
		}
		return 0;
	}
	long long start = now_ms();
	/* all queries in one write: pipelined */
	static uint8_t out[200000];
	size_t on = 0;
	for (int i = 0; i < nq; i++) {
		make_query(qs[i], edns, &p);
		if (on + p.n + 2 > sizeof(out))
			die("too many queries");
		out[on++] = (uint8_t)(p.n >> 8);
		out[on++] = (uint8_t)p.n;
		memcpy(out + on, p.b, p.n);
		on += p.n;
	}
	if (on && write(fd, out, on) != (ssize_t)on)
		die("write: %s", strerror(errno));
	if (halfclose)
		shutdown(fd, SHUT_WR);
	size_t have = 0;
	int replies = 0;
	long long end = start + wait_ms;
	while (idle || replies < nq) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = end - now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		ssize_t n = read(fd, rb + have, sizeof(rb) - have);
		if (n <= 0) {
			if (idle) {
				printf("CLOSED %lld\n", now_ms() - start);
				return 0;
			}
			break;
		}
		have += (size_t)n;
		while (have >= 2) {
			size_t l = (size_t)(rb[0] << 8 | rb[1]);
			if (have < l + 2)
				break;
			print_reply(rb + 2, l);
			replies++;
			memmove(rb, rb + 2 + l, have - 2 - l);
			have -= 2 + l;
		}
	}
	if (idle) {
		printf("OPEN %lld\n", now_ms() - start);
		return 0;
	}
	for (int i = replies; i < nq; i++)
		printf("NOREPLY\n");
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: fakeupstream -p PORT [-a ADDR] [-l LOG] [-t SECONDS] [-m normal|drop|spoof|plain]\n"
			"       fakeupstream -c ADDR:PORT [-T] [-I] [-H] [-w MS] [-b SRC] [-e SIZE] QUERY...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *logpath = NULL, *server = NULL, *src = NULL;
	int port = 0, seconds = 300, tcp = 0, wait_ms = 1000, edns = 0, idle = 0, c;
	srand((unsigned)(time(NULL) ^ getpid()));
	signal(SIGPIPE, SIG_IGN); /* a peer that went away must not kill us */
	while ((c = getopt(argc, argv, "p:a:l:t:m:c:TIHw:b:e:")) != -1) {
		switch (c) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'a':
			addr = optarg;
			break;
		case 'l':
			logpath = optarg;
			break;
		case 't':
			seconds = atoi(optarg);
			break;
		case 'm':
			if (strcmp(optarg, "normal") == 0)
				mode = M_NORMAL;
			else if (strcmp(optarg, "drop") == 0)
				mode = M_DROP;
			else if (strcmp(optarg, "spoof") == 0)
				mode = M_SPOOF;
			else if (strcmp(optarg, "plain") == 0)
				mode = M_PLAIN;
			else
				usage();
			break;
		case 'c':
			server = optarg;
			break;
		case 'T':
			tcp = 1;
			break;
		case 'I':
			idle = 1;
			break;
		case 'H':
			halfclose = 1;
			break;
		case 'w':
			wait_ms = atoi(optarg);
			break;
		case 'b':
			src = optarg;
			break;
		case 'e':
			edns = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (server)
		return client(server, tcp || idle, wait_ms, src, edns, idle, argv + optind, argc - optind);
	if (port <= 0)
		usage();
	if (logpath && (logf = fopen(logpath, "a")) == NULL)
		die("cannot open %s: %s", logpath, strerror(errno));
	return serve(addr, port, seconds);
}
