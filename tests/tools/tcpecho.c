/*
 * tcpecho — endpoint server and client for the sedns e2e (netns) tests.
 *
 * Server:  tcpecho -l IDENT=ADDR:PORT [-l ...] [-t SECONDS] [-p]
 *   For each -l, TCP and UDP on ADDR:PORT. A TCP connection is greeted with
 *   "IDENT:PORT\n" and then everything it sends is echoed back. A UDP
 *   datagram is answered with "IDENT:PORT\n". With -p the greeting is
 *   "IDENT:PORT from CLIENTIP". Exits after -t seconds (default 120).
 *
 * Client:  tcpecho -c ADDR:PORT [-u] [-n N] [-w MS]
 *   N (default 1) sequential connections (or datagrams with -u), each
 *   reading the greeting within -w ms (default 2000). Prints one line per
 *   distinct result, "COUNT RESULT", RESULT being the greeting or
 *   "ERR reason", then "MAXMS N" (slowest attempt in milliseconds).
 *
 * Client:  tcpecho -c ADDR:PORT -P SECONDS
 *   One connection kept for SECONDS: a line every 100 ms, each echo checked
 *   within 1 s. Prints "PERSIST IDENT ok=N fail=M [err=...]" and exits 0
 *   only when nothing failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXL 32
#define MAXC 256
#define MAXR 64

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
die(const char *msg)
{
	fprintf(stderr, "tcpecho: %s: %s\n", msg, strerror(errno));
	exit(2);
}

static int
parse_addr(const char *s, struct sockaddr_in *sa)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", s);
	char *c = strrchr(buf, ':');
	if (c == NULL)
		return -1;
	*c = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(c + 1));
	return inet_pton(AF_INET, buf, &sa->sin_addr) == 1 ? 0 : -1;
}

struct listener {
	char greet[96];
	int tfd, ufd;
};

static bool show_peer;

/* The greeting for one client. */
static const char *
greeting(const struct listener *l, const struct sockaddr_in *peer, char *buf, size_t len)
{
	if (!show_peer)
		return l->greet;
	char ip[INET_ADDRSTRLEN] = "?";
	inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%.*s from %s\n", (int)strcspn(l->greet, "\n"), l->greet, ip);
	return buf;
}

static int
server(struct listener *ls, int nl, int secs)
{
	int conns[MAXC];
	int nc = 0;
	long long end = now_ms() + (long long)secs * 1000;
	while (now_ms() < end) {
		struct pollfd p[MAXL * 2 + MAXC];
		int np = 0;
		for (int i = 0; i < nl; i++) {
			p[np++] = (struct pollfd){ .fd = ls[i].tfd, .events = POLLIN };
			p[np++] = (struct pollfd){ .fd = ls[i].ufd, .events = POLLIN };
		}
		for (int i = 0; i < nc; i++)
			p[np++] = (struct pollfd){ .fd = conns[i], .events = POLLIN };
		if (poll(p, (nfds_t)np, 500) <= 0)
			continue;
		for (int i = 0; i < nl; i++) {
			if (p[2 * i].revents & POLLIN) {
				struct sockaddr_in peer;
				socklen_t pl = sizeof(peer);
				char g[160];
				int c = accept(ls[i].tfd, (struct sockaddr *)&peer, &pl);
				if (c >= 0) {
					const char *gr = greeting(&ls[i], &peer, g, sizeof(g));
					if (write(c, gr, strlen(gr)) < 0 || nc >= MAXC)
						close(c);
					else
						conns[nc++] = c;
				}
			}
			if (p[2 * i + 1].revents & POLLIN) {
				char buf[2048];
				struct sockaddr_in from;
				socklen_t fl = sizeof(from);
				ssize_t r = recvfrom(ls[i].ufd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
				char g[160];
				const char *gr = greeting(&ls[i], &from, g, sizeof(g));
				if (r >= 0)
					sendto(ls[i].ufd, gr, strlen(gr), 0, (struct sockaddr *)&from, fl);
			}
		}
		for (int i = 2 * nl; i < np; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int k = i - 2 * nl;
			char buf[4096];
			ssize_t r = read(conns[k], buf, sizeof(buf));
			if (r <= 0 || write(conns[k], buf, (size_t)r) != r) {
				close(conns[k]);
				conns[k] = -1;
			}
		}
		int j = 0;
		for (int i = 0; i < nc; i++)
			if (conns[i] >= 0)
				conns[j++] = conns[i];
		nc = j;
	}
	return 0;
}

/* Reads one line (up to '\n') within deadline; returns length or -1. */
static int
read_line(int fd, char *buf, size_t len, long long deadline, const char **why)
{
	size_t off = 0;
	while (off + 1 < len) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			*why = "timeout";
			return -1;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t r = read(fd, buf + off, 1);
		if (r <= 0) {
			*why = r == 0 ? "eof" : strerror(errno);
			return -1;
		}
		if (buf[off] == '\n') {
			buf[off] = '\0';
			return (int)off;
		}
		off++;
	}
	buf[off] = '\0';
	return (int)off;
}

/* One attempt: writes the greeting or "ERR reason" to out. */
static int
attempt(const struct sockaddr_in *sa, bool udp, int wait_ms, char *out, size_t outlen, int *fdp)
{
	long long deadline = now_ms() + wait_ms;
	const char *why = NULL;
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) {
		snprintf(out, outlen, "ERR %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (udp) {
		if (send(fd, "x\n", 2, 0) < 0) {
			snprintf(out, outlen, "ERR %s", strerror(errno));
			close(fd);
			return -1;
		}
	} else {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int pr = poll(&p, 1, wait_ms);
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (pr <= 0 || err != 0) {
			snprintf(out, outlen, "ERR %s", pr <= 0 ? "connect timeout" : strerror(err));
			close(fd);
			return -1;
		}
	}
	char line[256];
	int r;
	if (udp) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		r = -1;
		why = "timeout";
		if (poll(&p, 1, wait_ms) > 0) {
			ssize_t n = recv(fd, line, sizeof(line) - 1, 0);
			if (n < 0) {
				why = strerror(errno);
			} else {
				line[n] = '\0';
				line[strcspn(line, "\n")] = '\0';
				r = (int)n;
			}
		}
	} else {
		r = read_line(fd, line, sizeof(line), deadline, &why);
	}
	if (r < 0) {
		snprintf(out, outlen, "ERR %s", why);
		close(fd);
		return -1;
	}
	snprintf(out, outlen, "%s", line);
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return 0;
}

static int
persist(const struct sockaddr_in *sa, int secs)
{
	char ident[256], line[256], msg[64];
	int fd, okc = 0;
	if (attempt(sa, false, 2000, ident, sizeof(ident), &fd) < 0) {
		printf("PERSIST none ok=0 fail=1 err=%s\n", ident);
		return 1;
	}
	long long end = now_ms() + (long long)secs * 1000;
	for (int i = 0; now_ms() < end; i++) {
		snprintf(msg, sizeof(msg), "ping %d\n", i);
		const char *why = "mismatch";
		if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg)) {
			why = strerror(errno);
			goto fail;
		}
		if (read_line(fd, line, sizeof(line), now_ms() + 1000, &why) < 0)
			goto fail;
		msg[strlen(msg) - 1] = '\0';
		if (strcmp(line, msg) != 0)
			goto fail;
		okc++;
		usleep(100000);
		continue;
fail:
		printf("PERSIST %s ok=%d fail=1 err=%s\n", ident, okc, why);
		return 1;
	}
	printf("PERSIST %s ok=%d fail=0\n", ident, okc);
	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	struct listener ls[MAXL];
	int nl = 0, secs = 120, n = 1, wait_ms = 2000, psecs = 0;
	bool udp = false;
	const char *target = NULL;
	int c;
	while ((c = getopt(argc, argv, "l:t:c:un:w:P:p")) != -1) {
		switch (c) {
		case 'l': {
			if (nl >= MAXL)
				return 2;
			char *eq = strchr(optarg, '=');
			struct sockaddr_in sa;
			if (eq == NULL || parse_addr(eq + 1, &sa) < 0) {
				fprintf(stderr, "tcpecho: bad -l %s\n", optarg);
				return 2;
			}
			snprintf(ls[nl].greet, sizeof(ls[nl].greet), "%.*s:%u\n", (int)(eq - optarg), optarg,
			    ntohs(sa.sin_port));
			int one = 1;
			ls[nl].tfd = socket(AF_INET, SOCK_STREAM, 0);
			ls[nl].ufd = socket(AF_INET, SOCK_DGRAM, 0);
			setsockopt(ls[nl].tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(ls[nl].tfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls[nl].tfd, 128) < 0)
				die(optarg);
			if (bind(ls[nl].ufd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
				die(optarg);
			nl++;
			break;
		}
		case 't': secs = atoi(optarg); break;
		case 'c': target = optarg; break;
		case 'u': udp = true; break;
		case 'n': n = atoi(optarg); break;
		case 'w': wait_ms = atoi(optarg); break;
		case 'P': psecs = atoi(optarg); break;
		case 'p': show_peer = true; break;
		default:
			fprintf(stderr, "usage: see tcpecho.c\n");
			return 2;
		}
	}
	if (target == NULL) {
		if (nl == 0)
			return 2;
		return server(ls, nl, secs);
	}
	struct sockaddr_in sa;
	if (parse_addr(target, &sa) < 0) {
		fprintf(stderr, "tcpecho: bad -c %s\n", target);
		return 2;
	}
	if (psecs > 0)
		return persist(&sa, psecs);
	char res[MAXR][256];
	int cnt[MAXR], nr = 0;
	long long maxms = 0;
	for (int i = 0; i < n; i++) {
		char out[256];
		long long t0 = now_ms();
		attempt(&sa, udp, wait_ms, out, sizeof(out), NULL);
		if (now_ms() - t0 > maxms)
			maxms = now_ms() - t0;
		int k;
		for (k = 0; k < nr; k++)
			if (strcmp(res[k], out) == 0)
				break;
		if (k == nr && nr < MAXR) {
			snprintf(res[nr], sizeof(res[nr]), "%s", out);
			cnt[nr++] = 0;
		}
		if (k < nr)
			cnt[k]++;
	}
	for (int k = 0; k < nr; k++)
		printf("%d %s\n", cnt[k], res[k]);
	printf("MAXMS %lld\n", maxms);
	return 0;
}
