/*
 * pktfuzz — throws malformed DNS at a server, bounded.
 * usage: pktfuzz ADDR PORT COUNT SEED
 * Sends COUNT UDP datagrams (random bytes, bit-flipped and truncated valid
 * queries, header-only, oversized) and COUNT/50 TCP connections with random
 * framing (short lengths, lengths larger than the data, zero length, random
 * payloads, abrupt closes). Never waits long for replies; exits 0.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint8_t base_query[] = {
	0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	3, 'a', 'p', 'i', 6, 's', 't', 'r', 'i', 'p', 'e', 3, 'c', 'o', 'm', 0,
	0x00, 0x01, 0x00, 0x01,
	0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static size_t
make_packet(uint8_t *buf, size_t cap)
{
	size_t len;
	switch (rand() % 6) {
	case 0: /* random bytes */
		len = (size_t)(rand() % 600);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand();
		return len;
	case 1: /* bit flips in a valid query */
	case 2:
		len = sizeof(base_query);
		memcpy(buf, base_query, len);
		for (int k = rand() % 6 + 1; k > 0; k--)
			buf[rand() % len] ^= (uint8_t)(1u << (rand() % 8));
		return len;
	case 3: /* truncated query */
		len = (size_t)(rand() % (int)sizeof(base_query));
		memcpy(buf, base_query, len);
		return len;
	case 4: /* valid header, random rest, huge counts */
		len = 12 + (size_t)(rand() % 300);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand();
		buf[2] = 0x01;
		buf[3] = 0;
		return len;
	default: /* oversized */
		len = cap;
		memcpy(buf, base_query, sizeof(base_query));
		for (size_t i = sizeof(base_query); i < len; i++)
			buf[i] = (uint8_t)rand();
		return len;
	}
}

int
main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: pktfuzz ADDR PORT COUNT SEED\n");
		return 2;
	}
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &sin.sin_addr);
	long count = atol(argv[3]);
	srand((unsigned)atoi(argv[4]));
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	static uint8_t buf[9000], rbuf[65536];
	for (long i = 0; i < count; i++) {
		size_t len = make_packet(buf, sizeof(buf));
		sendto(u, buf, len, 0, (struct sockaddr *)&sin, sizeof(sin));
		while (recv(u, rbuf, sizeof(rbuf), MSG_DONTWAIT) > 0)
			;
		if (i % 256 == 0)
			usleep(1000); /* let the server drain: this is a robustness test, not a flood */
	}
	close(u);
	for (long i = 0; i < count / 50; i++) {
		int t = socket(AF_INET, SOCK_STREAM, 0);
		struct timeval tv = { 0, 200000 };
		setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(t, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			close(t);
			continue;
		}
		int frames = rand() % 4 + 1;
		for (int f = 0; f < frames; f++) {
			size_t len = make_packet(buf + 2, sizeof(buf) - 2);
			uint16_t claimed = (uint16_t)len;
			switch (rand() % 4) {
			case 0:
				claimed = (uint16_t)(len + 1 + (size_t)(rand() % 100)); /* promises more */
				break;
			case 1:
				claimed = 0;
				break;
			default:
				break;
			}
			buf[0] = (uint8_t)(claimed >> 8);
			buf[1] = (uint8_t)claimed;
			if (send(t, buf, len + 2, MSG_NOSIGNAL) < 0)
				break;
		}
		if (rand() % 2)
			recv(t, rbuf, sizeof(rbuf), 0);
		close(t);
	}
	return 0;
}
