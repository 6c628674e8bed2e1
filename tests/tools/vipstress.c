/*
 * vipstress — hammers a VIP store for the kill -9 crash test.
 *
 *   vipstress DIR N SEED   N syncs of growing/shrinking random host sets,
 *                          with random reserved addresses and a tiny hold;
 *                          checks stability and uniqueness as it goes
 *   vipstress DIR --check  opens DIR/vips.mdb read-only and verifies it
 *                          (name2vip <-> vip2name agree, no address twice)
 *
 * Build: cc -Iinclude src/vipstore.c src/bigmem.c src/netaddr.c src/log.c
 *        tests/tools/vipstress.c $(pkg-config --cflags --libs lmdb)
 * Exit status: 0 ok, 1 a check failed, 2 usage or open error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "netaddr.h"
#include "vipstore.h"

#define UNIVERSE 1500
#define POOL4 "10.200.0.0/22"        /* 1022 usable: exhaustion happens */
#define POOL6 "fd00:5e::/118"

static int	check(const char *);
static int	stress(const char *, long, unsigned);
static void	usage(void) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr, "usage: vipstress DIR N SEED | vipstress DIR --check\n");
	exit(2);
}

static int
check(const char *dir)
{
	struct vipstore_opts o;
	struct vipstore_stats st;
	struct vipstore *vs;
	char err[512];

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.readonly = true;
	if ((vs = vipstore_open(&o, err, sizeof(err))) == NULL) {
		printf("open failed: %s\n", err);
		return 1;
	}
	if (!vipstore_verify(vs, err, sizeof(err))) {
		printf("inconsistent: %s\n", err);
		vipstore_close(vs);
		return 1;
	}
	if (!vipstore_stats(vs, &st)) {
		printf("stats failed\n");
		vipstore_close(vs);
		return 1;
	}
	printf("consistent: %llu active, %llu held\n",
	    (unsigned long long)st.active, (unsigned long long)st.held);
	vipstore_close(vs);
	return 0;
}

static int
stress(const char *dir, long n, unsigned seed)
{
	static char names[UNIVERSE][40];
	static const char *cur[UNIVERSE];
	static size_t idx[UNIVERSE];
	static struct vip_want w[UNIVERSE];
	static bool present[UNIVERSE], had[UNIVERSE];
	static struct netaddr prev[UNIVERSE];
	struct netaddr res[8];
	struct vipstore_opts o;
	struct vipstore *vs;
	char err[512];
	size_t target = 100, maxk = 0, count = 0;
	uint64_t nexh = 0;
	struct vipstore_stats st;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.hold_seconds = 2;
	o.pool6_on = true;
	if (!netprefix_parse(POOL4, true, &o.pool4) ||
	    !netprefix_parse(POOL6, true, &o.pool6))
		return 2;
	if ((vs = vipstore_open(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "vipstress: %s\n", err);
		return 2;
	}
	for (size_t i = 0; i < UNIVERSE; i++)
		snprintf(names[i], sizeof(names[i]), "h%zu.stress.test", i);
	for (long it = 0; it < n; it++) {
		size_t k = 0, nres = 0;
		time_t now = time(NULL) + it;

		/* random walk of the set size, plus a few flips */
		size_t step = (size_t)rand_r(&seed) % 200;
		if (rand_r(&seed) % 2)
			target += step;
		else
			target = step > target ? 0 : target - step;
		if (target > UNIVERSE)
			target = UNIVERSE;
		for (size_t f = 0; f < UNIVERSE / 20; f++) {
			size_t i = (size_t)rand_r(&seed) % UNIVERSE;
			count += present[i] ? (size_t)-1 : 1;
			present[i] = !present[i];
		}
		while (count < target) {
			size_t i = (size_t)rand_r(&seed) % UNIVERSE;
			if (!present[i]) {
				present[i] = true;
				count++;
			}
		}
		while (count > target) {
			size_t i = (size_t)rand_r(&seed) % UNIVERSE;
			if (present[i]) {
				present[i] = false;
				count--;
			}
		}
		for (size_t i = 0; i < UNIVERSE; i++)
			if (present[i]) {
				idx[k] = i;
				cur[k++] = names[i];
			}
		/* random input order */
		for (size_t i = k; i > 1; i--) {
			size_t j = (size_t)rand_r(&seed) % i;
			const char *t = cur[i - 1];
			size_t ti = idx[i - 1];
			cur[i - 1] = cur[j];
			idx[i - 1] = idx[j];
			cur[j] = t;
			idx[j] = ti;
		}
		if (rand_r(&seed) % 5 == 0) {
			nres = 1 + (size_t)rand_r(&seed) % 4;
			for (size_t i = 0; i < nres; i++)
				netprefix_nth(&o.pool4, 1 + (uint64_t)rand_r(
				    &seed) % 1022, &res[i]);
		}
		for (size_t i = 0; i < k; i++) {
			memset(&w[i], 0, sizeof(w[i]));
			w[i].host = cur[i];
		}
		if (k > maxk)
			maxk = k;
		if (!vipstore_sync(vs, w, k, res, nres, now, &st, err,
		    sizeof(err))) {
			fprintf(stderr, "vipstress: sync: %s\n", err);
			vipstore_close(vs);
			return 1;
		}
		nexh += st.exhausted;
		bool now_had[UNIVERSE] = { false };
		for (size_t i = 0; i < k; i++) {
			size_t h = idx[i];
			bool moved_ok = false;
			if (!w[i].has_v4)
				continue;
			for (size_t r = 0; r < nres; r++)
				if (netaddr_equal(&res[r], &prev[h]))
					moved_ok = true;
			if (had[h] && !moved_ok &&
			    !netaddr_equal(&prev[h], &w[i].v4)) {
				char a[NETADDR_STRLEN], b[NETADDR_STRLEN];
				fprintf(stderr, "vipstress: %s moved %s -> %s\n",
				    cur[i], netaddr_fmt(&prev[h], a, sizeof(a)),
				    netaddr_fmt(&w[i].v4, b, sizeof(b)));
				vipstore_close(vs);
				return 1;
			}
			prev[h] = w[i].v4;
			now_had[h] = true;
		}
		memcpy(had, now_had, sizeof(had));
		if (it % 50 == 0 && !vipstore_verify(vs, err, sizeof(err))) {
			fprintf(stderr, "vipstress: verify: %s\n", err);
			vipstore_close(vs);
			return 1;
		}
	}
	if (!vipstore_verify(vs, err, sizeof(err))) {
		fprintf(stderr, "vipstress: verify: %s\n", err);
		vipstore_close(vs);
		return 1;
	}
	fprintf(stderr, "vipstress: %ld syncs, up to %zu hosts, %llu "
	    "exhausted wants\n", n, maxk, (unsigned long long)nexh);
	vipstore_close(vs);
	return 0;
}

int
main(int argc, char *argv[])
{
	char *end;
	long n;
	unsigned long seed;

	log_set_level(LOG_LVL_ERROR);
	if (argc == 3 && strcmp(argv[2], "--check") == 0)
		return check(argv[1]);
	if (argc != 4)
		usage();
	n = strtol(argv[2], &end, 10);
	if (*end != '\0' || n < 0)
		usage();
	seed = strtoul(argv[3], &end, 10);
	if (*end != '\0')
		usage();
	return stress(argv[1], n, (unsigned)seed);
}
