/*
 * e2edns — a tiny UDP DNS server for the sedns e2e (netns) tests, whose
 * answers can be changed while it runs.
 *
 *   e2edns -a ADDR -p PORT -z ZONEFILE [-T TTL] [-t SECONDS]
 *
 * The zone file is re-read for every query; each line is
 * "NAME IPV4 [IPV4...]" (NAME without trailing dot, case-insensitive).
 * A query for a listed name: A records with TTL -T (default 1) for type A,
 * NOERROR/NODATA for other types. "NAME servfail" answers SERVFAIL and
 * "NAME drop" never answers. Any other name: NXDOMAIN. Exits after -t
 * seconds (default 120).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *zonefile;
static unsigned ttl = 1;

/* Addresses for name from the zone file; returns count, -1 if not listed,
 * -2 for servfail, -3 for drop. */
static int
lookup(const char *name, struct in_addr *out, int max)
{
	FILE *f = fopen(zonefile, "r");
	if (f == NULL)
		return -1;
	char line[1024];
	int found = -1, matched = 0;
	while (!matched && fgets(line, sizeof(line), f)) {
		char *save = NULL;
		char *tok = strtok_r(line, " \t\r\n", &save);
		if (tok == NULL || tok[0] == '#' || strcasecmp(tok, name) != 0)
			continue;
		matched = 1;
		found = 0;
		while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && found >= 0 && found < max) {
			if (strcasecmp(tok, "servfail") == 0)
				found = -2;
			else if (strcasecmp(tok, "drop") == 0)
				found = -3;
			else if (inet_pton(AF_INET, tok, &out[found]) == 1)
				found++;
		}
	}
	fclose(f);
	return found;
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 53, secs = 120, c;
	while ((c = getopt(argc, argv, "a:p:z:T:t:")) != -1) {
		switch (c) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'z': zonefile = optarg; break;
		case 'T': ttl = (unsigned)atoi(optarg); break;
		case 't': secs = atoi(optarg); break;
		default: return 2;
		}
	}
	if (zonefile == NULL) {
		fprintf(stderr, "usage: e2edns -a ADDR -p PORT -z ZONEFILE [-T TTL] [-t SECONDS]\n");
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, addr, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("e2edns: bind");
		return 2;
	}
	time_t end = time(NULL) + secs;
	while (time(NULL) < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 500) <= 0)
			continue;
		unsigned char q[512], r[1024];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n < 17 || (q[2] & 0x80))
			continue;
		/* question name */
		char name[256];
		size_t off = 12, nl = 0;
		int bad = 0;
		while (off < (size_t)n && q[off] != 0) {
			size_t l = q[off];
			if (l > 63 || off + 1 + l >= (size_t)n || nl + l + 1 >= sizeof(name)) {
				bad = 1;
				break;
			}
			if (nl)
				name[nl++] = '.';
			for (size_t i = 0; i < l; i++)
				name[nl++] = (char)tolower(q[off + 1 + i]);
			off += 1 + l;
		}
		if (bad || off + 5 > (size_t)n)
			continue;
		name[nl] = '\0';
		size_t qend = off + 5;
		uint16_t qtype = (uint16_t)(q[off + 1] << 8 | q[off + 2]);
		struct in_addr addrs[16];
		int cnt = lookup(name, addrs, 16);
		if (cnt == -3)
			continue;
		memcpy(r, q, qend);
		r[2] = 0x84 | (q[2] & 0x01); /* QR AA RD */
		r[3] = 0x80 | (cnt == -1 ? 3 : cnt == -2 ? 2 : 0); /* RA, rcode */
		r[4] = 0;
		r[5] = 1;
		memset(r + 6, 0, 6);
		size_t rl = qend;
		int an = 0;
		if (qtype == 1)
			for (int i = 0; i < cnt; i++) {
				unsigned char rr[16] = { 0xc0, 12, 0, 1, 0, 1, (unsigned char)(ttl >> 24),
					(unsigned char)(ttl >> 16), (unsigned char)(ttl >> 8), (unsigned char)ttl, 0, 4 };
				memcpy(rr + 12, &addrs[i], 4);
				memcpy(r + rl, rr, 16);
				rl += 16;
				an++;
			}
		r[7] = (unsigned char)an;
		sendto(fd, r, rl, 0, (struct sockaddr *)&from, fl);
	}
	return 0;
}
