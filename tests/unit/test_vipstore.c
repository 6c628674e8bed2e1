/* Unit tests for vipstore (LMDB VIP allocator). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netaddr.h"
#include "vipstore.h"

#define T0 ((time_t)1700000000)

struct tdir {
	char path[64];
};

static void
tdir_make(struct tdir *d)
{
	strcpy(d->path, "/tmp/vipstore-test-XXXXXX");
	cr_assert_not_null(mkdtemp(d->path));
}

static void
tdir_rm(struct tdir *d)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/vips.mdb", d->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s/vips.mdb-lock", d->path);
	unlink(p);
	rmdir(d->path);
}

static struct vipstore_opts
opts_for(const char *dir, const char *pool4)
{
	struct vipstore_opts o;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	cr_assert(netprefix_parse(pool4, true, &o.pool4));
	o.hold_seconds = 3600;
	return o;
}

static struct vipstore *
open_ok(const struct vipstore_opts *o)
{
	char err[512] = "";
	struct vipstore *vs = vipstore_open(o, err, sizeof(err));

	cr_assert_not_null(vs, "vipstore_open: %s", err);
	return vs;
}

/* Syncs names[0..n) and asserts success and a consistent store. */
static void
sync_ok(struct vipstore *vs, struct vip_want *w, const char **names, size_t n,
    const struct netaddr *res, size_t nres, time_t now,
    struct vipstore_stats *st)
{
	char err[512] = "";

	for (size_t i = 0; i < n; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].host = names[i];
	}
	cr_assert(vipstore_sync(vs, w, n, res, nres, now, st, err,
	    sizeof(err)), "sync: %s", err);
	cr_assert(vipstore_verify(vs, err, sizeof(err)), "verify: %s", err);
}

static char **
make_names(size_t n, const char *prefix)
{
	char **v = calloc(n, sizeof(*v));

	cr_assert_not_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = malloc(64);
		cr_assert_not_null(v[i]);
		snprintf(v[i], 64, "%s%zu.example.com", prefix, i);
	}
	return v;
}

static void
free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
shuffle(const char **v, size_t n, unsigned *seed)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rand_r(seed) % i;
		const char *t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

static const char *
fmt(const struct netaddr *a)
{
	static char buf[4][NETADDR_STRLEN];
	static int k;

	k = (k + 1) % 4;
	return netaddr_fmt(a, buf[k], sizeof(buf[k]));
}

static struct netaddr
addr(const char *s)
{
	struct netaddr a;

	cr_assert(netaddr_parse(s, &a), "parse %s", s);
	return a;
}

static bool
get4(struct vipstore *vs, const char *host, struct netaddr *out)
{
	bool h4, h6;
	struct netaddr v6;

	if (!vipstore_lookup(vs, host, out, &h4, &v6, &h6))
		return false;
	return h4;
}

Test(vipstore, preferred_slot_in_range_never_zero)
{
	char name[64];

	cr_assert_eq(vipstore_preferred_slot("a.com", 0), 0);
	cr_assert_eq(vipstore_preferred_slot("a.com", 1), 0);
	cr_assert_eq(vipstore_preferred_slot("a.com", 2), 1);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "h%d.svc", i);
		uint64_t s = vipstore_preferred_slot(name, 65536);
		cr_assert(s >= 1 && s < 65536, "%s -> %llu", name,
		    (unsigned long long)s);
		cr_assert_eq(s, vipstore_preferred_slot(name, 65536));
		s = vipstore_preferred_slot(name, 8);
		cr_assert(s >= 1 && s < 8);
		s = vipstore_preferred_slot(name, UINT64_MAX);
		cr_assert(s >= 1 && s < UINT64_MAX);
	}
	/* spreads: 5000 names over 64 buckets hit every bucket */
	bool seen[64] = { false };
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "h%d.svc", i);
		seen[vipstore_preferred_slot(name, 65) - 1] = true;
	}
	for (int i = 0; i < 64; i++)
		cr_assert(seen[i], "bucket %d never hit", i);
}

Test(vipstore, first_host_gets_preferred_slot)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[1];
	const char *names[] = { "api.stripe.com" };
	struct netaddr want;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, names, 1, NULL, 0, T0, NULL);
	uint64_t slot = vipstore_preferred_slot("api.stripe.com", 65536);
	if (slot == 65535)
		slot = 1;
	netprefix_nth(&o.pool4, slot, &want);
	cr_assert(w[0].has_v4);
	cr_assert(!w[0].has_v6);
	cr_assert(!w[0].exhausted);
	cr_assert(netaddr_equal(&w[0].v4, &want), "%s != %s", fmt(&w[0].v4),
	    fmt(&want));
	/* case and trailing dot are normalised to the same key */
	struct netaddr again;
	cr_assert(get4(vs, "API.Stripe.com.", &again));
	cr_assert(netaddr_equal(&again, &want));
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, deterministic_whatever_the_input_order)
{
	struct tdir d1, d2;
	struct vipstore *a, *b;
	struct vipstore_opts o1, o2;
	size_t n = 200;
	char **names = make_names(n, "svc");
	const char **n1 = calloc(n, sizeof(*n1)), **n2 = calloc(n, sizeof(*n2));
	struct vip_want *w1 = calloc(n, sizeof(*w1)), *w2 = calloc(n,
	    sizeof(*w2));
	unsigned seed = 42;

	cr_assert(n1 && n2 && w1 && w2);
	for (size_t i = 0; i < n; i++)
		n1[i] = n2[i] = names[i];
	shuffle(n2, n, &seed);
	tdir_make(&d1);
	tdir_make(&d2);
	/* a /24 so that collisions happen and order would matter */
	o1 = opts_for(d1.path, "240.240.7.0/24");
	o2 = opts_for(d2.path, "240.240.7.0/24");
	a = open_ok(&o1);
	b = open_ok(&o2);
	sync_ok(a, w1, n1, n, NULL, 0, T0, NULL);
	sync_ok(b, w2, n2, n, NULL, 0, T0, NULL);
	for (size_t i = 0; i < n; i++) {
		struct netaddr x, y;
		cr_assert(get4(a, names[i], &x));
		cr_assert(get4(b, names[i], &y));
		cr_assert(netaddr_equal(&x, &y), "%s: %s vs %s", names[i],
		    fmt(&x), fmt(&y));
	}
	/* the outputs follow wants[], not the sorted order */
	for (size_t i = 0; i < n; i++) {
		struct netaddr x;
		cr_assert(get4(b, n2[i], &x));
		cr_assert(netaddr_equal(&x, &w2[i].v4));
	}
	vipstore_close(a);
	vipstore_close(b);
	tdir_rm(&d1);
	tdir_rm(&d2);
	free(w1);
	free(w2);
	free(n1);
	free(n2);
	free_names(names, n);
}

Test(vipstore, never_network_nor_broadcast_and_exact_exhaustion)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	size_t n = 9;
	char **names = make_names(n, "h");
	struct vip_want w[9];

	tdir_make(&d);
	o = opts_for(d.path, "10.9.8.0/29");
	vs = open_ok(&o);
	cr_assert_eq(vipstore_pool_size(vs), 6);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0, &st);
	size_t got = 0, exh = 0;
	bool used[8] = { false };
	for (size_t i = 0; i < n; i++) {
		if (w[i].has_v4) {
			got++;
			cr_assert(!w[i].exhausted);
			cr_assert(netprefix_contains(&o.pool4, &w[i].v4));
			uint64_t off = netprefix_offset(&o.pool4, &w[i].v4);
			cr_assert(off >= 1 && off <= 6, "%s", fmt(&w[i].v4));
			cr_assert(!used[off], "%s given twice", fmt(&w[i].v4));
			used[off] = true;
		} else {
			cr_assert(w[i].exhausted);
			exh++;
		}
	}
	cr_assert_eq(got, 6);
	cr_assert_eq(exh, 3);
	cr_assert_eq(st.exhausted, 3);
	cr_assert_eq(st.allocated, 6);
	cr_assert_eq(st.active, 6);
	cr_assert_eq(st.pool_size, 6);
	/* which ones: the first six in sorted order (h0..h5 < h6..h8) */
	for (size_t i = 0; i < 6; i++)
		cr_assert(w[i].has_v4, "%s", names[i]);

	/* nothing else changes in a later sync */
	struct netaddr before[6];
	for (size_t i = 0; i < 6; i++)
		before[i] = w[i].v4;
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0 + 5, &st);
	for (size_t i = 0; i < 6; i++)
		cr_assert(netaddr_equal(&before[i], &w[i].v4));
	cr_assert_eq(st.exhausted, 3);
	cr_assert_eq(st.allocated, 0);
	vipstore_close(vs);
	tdir_rm(&d);

	/* /30: two usable */
	tdir_make(&d);
	o = opts_for(d.path, "10.9.8.0/30");
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, 3, NULL, 0, T0, &st);
	cr_assert_eq(st.active, 2);
	cr_assert_eq(st.exhausted, 1);
	vipstore_close(vs);
	tdir_rm(&d);
	free_names(names, n);
}

Test(vipstore, stable_under_reorder_and_churn)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	size_t n = 300;
	char **names = make_names(n, "churn");
	struct netaddr *vip = calloc(n, sizeof(*vip));
	bool *has = calloc(n, sizeof(*has));
	const char **cur = calloc(n, sizeof(*cur));
	size_t *idx = calloc(n, sizeof(*idx));
	struct vip_want *w = calloc(n, sizeof(*w));
	unsigned seed = 7;

	cr_assert(vip && has && cur && idx && w);
	tdir_make(&d);
	o = opts_for(d.path, "240.240.3.0/24");
	o.hold_seconds = 0;     /* removed hosts free their slot at once */
	vs = open_ok(&o);
	bool present[300] = { false };
	for (int round = 0; round < 30; round++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			/* keep ~2/3, flip the rest */
			if (rand_r(&seed) % 3 == 0)
				present[i] = !present[i];
			if (present[i]) {
				idx[k] = i;
				cur[k++] = names[i];
			}
		}
		/* random order each round */
		for (size_t i = k; i > 1; i--) {
			size_t j = (size_t)rand_r(&seed) % i;
			const char *t = cur[i - 1];
			size_t ti = idx[i - 1];
			cur[i - 1] = cur[j];
			idx[i - 1] = idx[j];
			cur[j] = t;
			idx[j] = ti;
		}
		sync_ok(vs, w, cur, k, NULL, 0, T0 + round, NULL);
		bool now_has[300] = { false };
		for (size_t i = 0; i < k; i++) {
			size_t h = idx[i];
			cr_assert(w[i].has_v4, "%s got none", cur[i]);
			if (has[h])
				cr_assert(netaddr_equal(&vip[h], &w[i].v4),
				    "round %d: %s moved %s -> %s", round,
				    cur[i], fmt(&vip[h]), fmt(&w[i].v4));
			vip[h] = w[i].v4;
			now_has[h] = true;
		}
		for (size_t i = 0; i < n; i++)
			has[i] = now_has[i];
	}
	vipstore_close(vs);
	tdir_rm(&d);
	free(vip);
	free(has);
	free(cur);
	free(idx);
	free(w);
	free_names(names, n);
}

struct listed {
	size_t n;
	char host[16][SEDNS_MAX_HOST + 1];
	enum vip_state state[16];
	time_t since[16];
	struct netaddr v4[16];
};

static bool
collect(const struct vip_record *r, void *arg)
{
	struct listed *l = arg;

	cr_assert(l->n < 16);
	strcpy(l->host[l->n], r->host);
	l->state[l->n] = r->state;
	l->since[l->n] = r->since;
	l->v4[l->n] = r->v4;
	l->n++;
	return true;
}

static bool
stop_after_two(const struct vip_record *r, void *arg)
{
	size_t *n = arg;

	return ++*n < 2;
}

Test(vipstore, hold_reuse_and_release)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	struct vip_want w[8];
	struct netaddr va, x;
	const char *ab[] = { "a.svc", "b.svc" };
	const char *b_only[] = { "b.svc" };
	/* b plus five newcomers: only four free slots in a /29 */
	const char *crowd[] = { "b.svc", "c.svc", "d.svc", "e.svc", "f.svc",
	    "g.svc" };
	char err[256];

	tdir_make(&d);
	o = opts_for(d.path, "10.1.1.0/29");
	o.hold_seconds = 100;
	vs = open_ok(&o);
	sync_ok(vs, w, ab, 2, NULL, 0, T0, NULL);
	va = w[0].v4;

	/* a removed: held, still known */
	sync_ok(vs, w, b_only, 1, NULL, 0, T0 + 10, &st);
	cr_assert_eq(st.active, 1);
	cr_assert_eq(st.held, 1);
	cr_assert(get4(vs, "a.svc", &x));
	cr_assert(netaddr_equal(&x, &va));

	/* nobody can take it while held */
	sync_ok(vs, w, crowd, 6, NULL, 0, T0 + 20, &st);
	cr_assert_eq(st.exhausted, 1);
	for (size_t i = 0; i < 6; i++)
		if (w[i].has_v4)
			cr_assert(!netaddr_equal(&w[i].v4, &va), "%s took %s",
			    crowd[i], fmt(&va));

	/* back within the hold: same VIP, active again */
	const char *back[] = { "a.svc", "b.svc" };
	sync_ok(vs, w, back, 2, NULL, 0, T0 + 50, &st);
	cr_assert(w[0].has_v4);
	cr_assert(netaddr_equal(&w[0].v4, &va));
	cr_assert_eq(st.held, 4);  /* c..f were held by this sync */

	/* list shows states and since */
	struct listed l = { 0 };
	cr_assert(vipstore_list(vs, collect, &l, err, sizeof(err)), "%s", err);
	cr_assert_eq(l.n, 6);
	cr_assert_str_eq(l.host[0], "a.svc");
	cr_assert_eq(l.state[0], VIP_ACTIVE);
	cr_assert_eq(l.since[0], T0 + 50);
	cr_assert_str_eq(l.host[2], "c.svc");
	cr_assert_eq(l.state[2], VIP_HELD);
	cr_assert_eq(l.since[2], T0 + 50);

	/* removed again; before the hold ends it stays */
	sync_ok(vs, w, b_only, 1, NULL, 0, T0 + 60, &st);
	cr_assert_eq(st.released, 0);
	sync_ok(vs, w, b_only, 1, NULL, 0, T0 + 60 + 99, &st);
	cr_assert_eq(st.released, 4);  /* c..f: since T0+50, hold 100 */
	cr_assert(get4(vs, "a.svc", &x));
	/* hold over: released and reusable */
	sync_ok(vs, w, b_only, 1, NULL, 0, T0 + 60 + 100, &st);
	cr_assert_eq(st.released, 1);
	cr_assert_eq(st.held, 0);
	cr_assert(!get4(vs, "a.svc", &x));
	sync_ok(vs, w, crowd, 6, NULL, 0, T0 + 200, &st);
	cr_assert_eq(st.exhausted, 0);  /* five free slots, five newcomers */
	cr_assert_eq(st.active, 6);
	bool reused = false;
	for (size_t i = 0; i < 6; i++)
		if (w[i].has_v4 && netaddr_equal(&w[i].v4, &va))
			reused = true;
	cr_assert(reused, "%s was not handed out again", fmt(&va));

	size_t cnt = 0;
	cr_assert(vipstore_list(vs, stop_after_two, &cnt, err, sizeof(err)));
	cr_assert_eq(cnt, 2);
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, reserved_addresses_are_skipped_and_collisions_move)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[2];
	const char *h[] = { "db.internal" };
	const char *h2[] = { "db.internal", "other.internal" };
	struct netaddr pref, res[2], first;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	uint64_t slot = vipstore_preferred_slot("db.internal", 65536);
	if (slot == 65535)
		slot = 1;
	netprefix_nth(&o.pool4, slot, &pref);

	/* reserved equal to the preferred slot: skipped */
	res[0] = pref;
	res[1] = addr("2001:db8::1");
	sync_ok(vs, w, h, 1, res, 2, T0, NULL);
	cr_assert(w[0].has_v4);
	cr_assert(!netaddr_equal(&w[0].v4, &pref));
	first = w[0].v4;

	/* reservation gone: the host keeps its VIP (stability) */
	sync_ok(vs, w, h, 1, NULL, 0, T0 + 1, NULL);
	cr_assert(netaddr_equal(&w[0].v4, &first));

	/* an existing allocation that becomes reserved moves */
	res[0] = first;
	sync_ok(vs, w, h2, 2, res, 1, T0 + 2, NULL);
	cr_assert(w[0].has_v4 && w[1].has_v4);
	cr_assert(!netaddr_equal(&w[0].v4, &first));
	cr_assert(!netaddr_equal(&w[1].v4, &first));
	/* and nothing holds the reserved address any more */
	struct listed l = { 0 };
	char err[256];
	cr_assert(vipstore_list(vs, collect, &l, err, sizeof(err)));
	cr_assert_eq(l.n, 2);
	for (size_t i = 0; i < l.n; i++)
		cr_assert(!netaddr_equal(&l.v4[i], &first));

	/* a held record colliding with a reservation loses it and goes */
	struct vipstore_stats st;
	const char *o_only[] = { "other.internal" };
	sync_ok(vs, w, o_only, 1, NULL, 0, T0 + 3, &st);
	cr_assert_eq(st.held, 1);
	struct netaddr dbv;
	cr_assert(get4(vs, "db.internal", &dbv));
	res[0] = dbv;
	sync_ok(vs, w, o_only, 1, res, 1, T0 + 4, &st);
	cr_assert_eq(st.held, 0);
	cr_assert(!get4(vs, "db.internal", &dbv));
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, reopen_keeps_everything)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	size_t n = 50;
	char **names = make_names(n, "re");
	struct vip_want w[50];
	struct netaddr before[50], x;
	struct vipstore_stats st;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0, NULL);
	for (size_t i = 0; i < n; i++)
		before[i] = w[i].v4;
	/* hold the last ten */
	sync_ok(vs, w, (const char **)names, 40, NULL, 0, T0 + 1, NULL);
	vipstore_close(vs);

	vs = open_ok(&o);
	cr_assert(vipstore_stats(vs, &st));
	cr_assert_eq(st.active, 40);
	cr_assert_eq(st.held, 10);
	cr_assert_eq(st.pool_size, 65534);
	for (size_t i = 0; i < n; i++) {
		cr_assert(get4(vs, names[i], &x));
		cr_assert(netaddr_equal(&x, &before[i]));
	}
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0 + 2, &st);
	cr_assert_eq(st.allocated, 0);
	for (size_t i = 0; i < n; i++)
		cr_assert(netaddr_equal(&w[i].v4, &before[i]));
	vipstore_close(vs);
	tdir_rm(&d);
	free_names(names, n);
}

Test(vipstore, pool_change_refused_unless_reallocate)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[1];
	const char *h[] = { "x.com" };
	char err[512] = "";
	struct netaddr x;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, h, 1, NULL, 0, T0, NULL);
	vipstore_close(vs);

	o = opts_for(d.path, "10.77.0.0/16");
	cr_assert_null(vipstore_open(&o, err, sizeof(err)));
	cr_assert(strstr(err, "240.240.0.0/16") != NULL, "%s", err);
	cr_assert(strstr(err, "10.77.0.0/16") != NULL, "%s", err);
	cr_assert(strstr(err, "--reallocate") != NULL, "%s", err);

	/* the refusal changed nothing */
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	cr_assert(get4(vs, "x.com", &x));
	vipstore_close(vs);

	o = opts_for(d.path, "10.77.0.0/16");
	o.reallocate = true;
	vs = open_ok(&o);
	cr_assert(!get4(vs, "x.com", &x));
	sync_ok(vs, w, h, 1, NULL, 0, T0 + 1, NULL);
	cr_assert(netprefix_contains(&o.pool4, &w[0].v4));
	vipstore_close(vs);

	/* and the new pool is now the recorded one */
	o.reallocate = false;
	vs = open_ok(&o);
	cr_assert(get4(vs, "x.com", &x));
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, bad_options_refused)
{
	struct vipstore_opts o;
	char err[256];

	o = opts_for("/tmp/never-created-vipstore", "10.0.0.0/31");
	cr_assert_null(vipstore_open(&o, err, sizeof(err)));
	o = opts_for("/tmp/never-created-vipstore", "10.0.0.0/16");
	o.pool6_on = true;
	cr_assert(netprefix_parse("10.1.0.0/16", true, &o.pool6));
	cr_assert_null(vipstore_open(&o, err, sizeof(err)));
	o.pool6_on = false;
	o.dir = "";
	cr_assert_null(vipstore_open(&o, err, sizeof(err)));
}

Test(vipstore, readonly_missing_store_is_a_clear_error)
{
	struct tdir d;
	struct vipstore_opts o;
	char err[512] = "", want[256];

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	o.readonly = true;
	cr_assert_null(vipstore_open(&o, err, sizeof(err)));
	snprintf(want, sizeof(want), "no VIP store at %s/vips.mdb", d.path);
	cr_assert_str_eq(err, want);
	/* and it did not create one */
	char p[128];
	snprintf(p, sizeof(p), "%s/vips.mdb", d.path);
	cr_assert_neq(access(p, F_OK), 0);
	tdir_rm(&d);
}

static bool
count_cb(const struct vip_record *r, void *arg)
{
	(*(size_t *)arg)++;
	return true;
}

Test(vipstore, readonly_list_while_writer_open)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	size_t n = 20;
	char **names = make_names(n, "ro");
	struct vip_want w[20];

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0, NULL);

	/* LMDB wants one env per process: the reader is a child process */
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct vipstore_opts ro;
		char err[256];
		size_t cnt = 0;
		struct vip_want w1[1];
		const char *h[] = { "new.one" };
		memset(&ro, 0, sizeof(ro));
		ro.dir = d.path;
		ro.readonly = true;   /* no pool given: adopted from the DB */
		struct vipstore *r = vipstore_open(&ro, err, sizeof(err));
		if (r == NULL)
			_exit(10);
		if (!vipstore_list(r, count_cb, &cnt, err, sizeof(err)))
			_exit(11);
		if (cnt != 20)
			_exit(12);
		if (vipstore_pool_size(r) != 65534)
			_exit(13);
		if (!vipstore_verify(r, err, sizeof(err)))
			_exit(14);
		w1[0].host = h[0];
		if (vipstore_sync(r, w1, 1, NULL, 0, T0, NULL, err,
		    sizeof(err)))
			_exit(15);
		vipstore_close(r);
		_exit(0);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "child failed with %d",
	    WEXITSTATUS(status));
	/* the writer still works after the reader went away */
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0 + 1, NULL);
	vipstore_close(vs);
	tdir_rm(&d);
	free_names(names, n);
}

Test(vipstore, ipv6_pool)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	size_t n = 100;
	char **names = make_names(n, "six");
	struct vip_want w[100];
	struct netaddr v4s[100];

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0, NULL);
	for (size_t i = 0; i < n; i++) {
		cr_assert(!w[i].has_v6);
		v4s[i] = w[i].v4;
	}
	vipstore_close(vs);

	/* turning v6 on adds v6 to existing hosts; v4 stays */
	o.pool6_on = true;
	cr_assert(netprefix_parse("2001:2::/48", true, &o.pool6));
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0 + 1, NULL);
	for (size_t i = 0; i < n; i++) {
		cr_assert(w[i].has_v4 && w[i].has_v6);
		cr_assert(netaddr_equal(&w[i].v4, &v4s[i]));
		cr_assert_eq(w[i].v6.family, AF_INET6);
		cr_assert(netprefix_contains(&o.pool6, &w[i].v6), "%s",
		    fmt(&w[i].v6));
		cr_assert_neq(netprefix_offset(&o.pool6, &w[i].v6), 0);
		for (size_t j = 0; j < i; j++)
			cr_assert(!netaddr_equal(&w[i].v6, &w[j].v6));
	}
	/* lookup returns both */
	struct netaddr a4, a6;
	bool h4, h6;
	cr_assert(vipstore_lookup(vs, names[3], &a4, &h4, &a6, &h6));
	cr_assert(h4 && h6);
	cr_assert(netaddr_equal(&a6, &w[3].v6));
	vipstore_close(vs);

	/* a different v6 pool is refused too */
	char err[512];
	cr_assert(netprefix_parse("2001:3::/48", true, &o.pool6));
	cr_assert_null(vipstore_open(&o, err, sizeof(err)));
	cr_assert(strstr(err, "2001:2::/48") && strstr(err, "2001:3::/48"),
	    "%s", err);

	/* v6 off again: v6 addresses dropped, v4 kept */
	o.pool6_on = false;
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0 + 2, NULL);
	for (size_t i = 0; i < n; i++) {
		cr_assert(w[i].has_v4 && !w[i].has_v6);
		cr_assert(netaddr_equal(&w[i].v4, &v4s[i]));
	}
	vipstore_close(vs);
	tdir_rm(&d);
	free_names(names, n);
}

Test(vipstore, ipv6_small_pool_exhausts_without_partial_vip)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[5];
	struct vipstore_stats st;
	const char *h[] = { "a", "b", "c", "d", "e" };

	tdir_make(&d);
	o = opts_for(d.path, "10.0.0.0/24");
	o.pool6_on = true;
	cr_assert(netprefix_parse("fd00::/126", true, &o.pool6));
	vs = open_ok(&o);
	sync_ok(vs, w, h, 5, NULL, 0, T0, &st);
	/* v6 /126: offsets 1..3 usable */
	size_t six = 0;
	for (size_t i = 0; i < 5; i++) {
		cr_assert(w[i].has_v4);
		if (w[i].has_v6)
			six++;
		else
			cr_assert(w[i].exhausted);
	}
	cr_assert_eq(six, 3);
	cr_assert_eq(st.exhausted, 2);
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, list_in_host_order_with_states)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[4];
	const char *h[] = { "zeta.io", "alpha.io", "mid.io", "beta.io" };
	const char *keep[] = { "mid.io", "zeta.io" };
	struct listed l = { 0 };
	char err[256];

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, h, 4, NULL, 0, T0, NULL);
	sync_ok(vs, w, keep, 2, NULL, 0, T0 + 30, NULL);
	cr_assert(vipstore_list(vs, collect, &l, err, sizeof(err)));
	cr_assert_eq(l.n, 4);
	cr_assert_str_eq(l.host[0], "alpha.io");
	cr_assert_str_eq(l.host[1], "beta.io");
	cr_assert_str_eq(l.host[2], "mid.io");
	cr_assert_str_eq(l.host[3], "zeta.io");
	cr_assert_eq(l.state[0], VIP_HELD);
	cr_assert_eq(l.since[0], T0 + 30);
	cr_assert_eq(l.state[1], VIP_HELD);
	cr_assert_eq(l.state[2], VIP_ACTIVE);
	cr_assert_eq(l.since[2], T0);
	cr_assert_eq(l.state[3], VIP_ACTIVE);
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, duplicate_and_bad_wants)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[4];
	struct vipstore_stats st;
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	const char *h[] = { "Dup.example.", "dup.example", "", longname };

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, h, 4, NULL, 0, T0, &st);
	cr_assert(w[0].has_v4 && w[1].has_v4);
	cr_assert(netaddr_equal(&w[0].v4, &w[1].v4));
	cr_assert(!w[2].has_v4 && !w[3].has_v4);
	cr_assert_eq(st.active, 1);
	cr_assert_eq(st.allocated, 1);
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, bad_record_on_disk_is_skipped)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[2];
	const char *h[] = { "good.io", "bad.io" };
	char p[128], err[256];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 6, (void *)"bad.io" }, v = { 3, (void *)"xyz" };

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, h, 1, NULL, 0, T0, NULL);
	vipstore_close(vs);

	snprintf(p, sizeof(p), "%s/vips.mdb", d.path);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
	cr_assert_eq(mdb_env_open(env, p, MDB_NOSUBDIR, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "name2vip", 0, &dbi), 0);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	vs = open_ok(&o);
	cr_assert(!vipstore_verify(vs, err, sizeof(err)));
	cr_assert(strstr(err, "bad.io") != NULL, "%s", err);
	struct listed l = { 0 };
	cr_assert(vipstore_list(vs, collect, &l, err, sizeof(err)));
	cr_assert_eq(l.n, 1);
	cr_assert_str_eq(l.host[0], "good.io");
	struct netaddr x;
	cr_assert(!get4(vs, "bad.io", &x));
	/* a sync that wants it replaces the bad record */
	memset(w, 0, sizeof(w));
	w[0].host = h[0];
	w[1].host = h[1];
	cr_assert(vipstore_sync(vs, w, 2, NULL, 0, T0 + 1, NULL, err,
	    sizeof(err)), "%s", err);
	cr_assert(w[0].has_v4 && w[1].has_v4);
	cr_assert(vipstore_verify(vs, err, sizeof(err)), "%s", err);
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, map_full_grows_the_map)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	size_t n = 5000;
	char **names = make_names(n, "a-rather-long-host-name-to-fill-pages-");
	struct vip_want *w = calloc(n, sizeof(*w));
	char err[512] = "";
	struct netaddr x;

	cr_assert_not_null(w);
	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vipstore_mapsize = 256 * 1024;
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, 10, NULL, 0, T0, NULL);
	for (size_t i = 0; i < n; i++)
		w[i].host = names[i];
	/* a 256 KiB map cannot hold 5000 names: it grows, and the sync is
	 * redone whole */
	cr_assert(vipstore_sync(vs, w, n, NULL, 0, T0 + 1, NULL, err,
	    sizeof(err)), "%s", err);
	cr_assert(w[0].has_v4 && w[n - 1].has_v4);
	cr_assert(get4(vs, names[0], &x));
	cr_assert(get4(vs, names[n - 1], &x));
	cr_assert(vipstore_verify(vs, err, sizeof(err)), "%s", err);
	vipstore_close(vs);
	vipstore_mapsize = (size_t)64 << 20;
	tdir_rm(&d);
	free(w);
	free_names(names, n);
}

Test(vipstore, full_slash16_terminates_fast, .timeout = 120)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	size_t n = 65534 + 200;
	char **names = make_names(n, "f");
	struct vip_want *w = calloc(n, sizeof(*w));
	struct vipstore_stats st;
	struct timespec t0, t1;

	cr_assert_not_null(w);
	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, 65534, NULL, 0, T0, &st);
	cr_assert_eq(st.active, 65534);
	cr_assert_eq(st.exhausted, 0);
	/* full: 200 more hosts, each must fail without a full scan each */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0 + 1, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_eq(st.active, 65534);
	cr_assert_eq(st.exhausted, 200);
	cr_assert_eq(st.allocated, 0);
	cr_assert(secs < 10.0, "full-pool sync took %.1f s", secs);
	for (size_t i = 65534; i < n; i++)
		cr_assert(w[i].exhausted && !w[i].has_v4);
	vipstore_close(vs);
	tdir_rm(&d);
	free(w);
	free_names(names, n);
}

/* Rewrites host's name2vip value with fn applied to its 32 bytes. */
static void
poke_record(const char *dir, const char *host, void (*fn)(uint8_t *))
{
	char p[128];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { strlen(host), (void *)host }, v;
	uint8_t b[32];

	snprintf(p, sizeof(p), "%s/vips.mdb", dir);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
	cr_assert_eq(mdb_env_open(env, p, MDB_NOSUBDIR, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "name2vip", 0, &dbi), 0);
	cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
	cr_assert_eq(v.mv_size, 32);
	memcpy(b, v.mv_data, 32);
	fn(b);
	v.mv_data = b;
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void flip_time_bit(uint8_t *b) { b[25] ^= 0x01; }
static void flip_vip_bit(uint8_t *b) { b[3] ^= 0x01; }
/* what a sedns from before the checksum wrote: no flag, zero sum */
static void make_legacy(uint8_t *b) { b[20] &= (uint8_t)~0x08; b[21] = b[22] = b[23] = 0; }
static void far_future(uint8_t *b) { make_legacy(b); b[24 + 5] = 0x7f; }

static bool
verify_after(void (*fn)(uint8_t *), char *err, size_t errlen)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[2];
	const char *h[] = { "a.example", "b.example" };

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, h, 2, NULL, 0, time(NULL), NULL);
	vipstore_close(vs);
	poke_record(d.path, "a.example", fn);
	vs = open_ok(&o);
	bool ok = vipstore_verify(vs, err, errlen);
	vipstore_close(vs);
	tdir_rm(&d);
	return ok;
}

Test(vipstore, one_flipped_bit_in_a_record_is_found)
{
	char err[256] = "";

	cr_assert(!verify_after(flip_time_bit, err, sizeof(err)), "a flipped time bit passed");
	cr_assert(strstr(err, "a.example") != NULL, "%s", err);
	cr_assert(!verify_after(flip_vip_bit, err, sizeof(err)), "a flipped VIP bit passed");
}

Test(vipstore, records_from_before_the_checksum_still_read)
{
	char err[256] = "";

	cr_assert(verify_after(make_legacy, err, sizeof(err)), "%s", err);
}

Test(vipstore, impossible_time_fails_verify)
{
	char err[256] = "";

	cr_assert(!verify_after(far_future, err, sizeof(err)));
	cr_assert(strstr(err, "impossible allocation time") != NULL, "%s", err);
}

static void
rm_extra(const struct tdir *d)
{
	char p[128];
	const char *f[] = { "vips.mdb.bak", "vips.mdb.bak.tmp", "vips.mdb.tmp" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", d->path, f[i]);
		unlink(p);
	}
}

Test(vipstore, backup_restores_a_lost_or_empty_store)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[3];
	const char *h[] = { "a.example", "b.example", "c.example" };
	char p[128], err[512] = "";
	struct netaddr before, after;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, h, 3, NULL, 0, T0, NULL);
	cr_assert(vipstore_backup(vs, err, sizeof(err)), "%s", err);
	cr_assert(get4(vs, "b.example", &before));
	vipstore_close(vs);
	snprintf(p, sizeof(p), "%s/vips.mdb", d.path);
	for (int round = 0; round < 2; round++) {
		if (round == 0) {
			cr_assert_eq(truncate(p, 0), 0); /* empty */
		} else {
			cr_assert_eq(unlink(p), 0); /* missing */
		}
		cr_assert(vipstore_restore_if_empty(d.path, err, sizeof(err)), "%s", err);
		cr_assert(vipstore_check_file(d.path, err, sizeof(err)), "%s", err);
		vs = open_ok(&o);
		cr_assert(get4(vs, "b.example", &after), "round %d: b.example lost", round);
		cr_assert(netaddr_equal(&before, &after), "round %d: b.example moved", round);
		vipstore_close(vs);
	}
	/* a store with content is never overwritten by the backup */
	vs = open_ok(&o);
	const char *h2[] = { "a.example", "b.example", "c.example", "d.example" };
	struct vip_want w2[4];
	sync_ok(vs, w2, h2, 4, NULL, 0, T0 + 1, NULL);
	vipstore_close(vs);
	cr_assert(vipstore_restore_if_empty(d.path, err, sizeof(err)));
	vs = open_ok(&o);
	cr_assert(get4(vs, "d.example", &after));
	vipstore_close(vs);
	rm_extra(&d);
	tdir_rm(&d);
}

Test(vipstore, check_file_survives_a_crashing_reader)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[2];
	const char *h[] = { "a.example", "b.example" };
	char p[128], err[512] = "";

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, h, 2, NULL, 0, T0, NULL);
	vipstore_close(vs);
	cr_assert(vipstore_check_file(d.path, err, sizeof(err)), "%s", err);
	/* garbage over every data page (meta pages 0 and 1 intact) */
	snprintf(p, sizeof(p), "%s/vips.mdb", d.path);
	FILE *f = fopen(p, "r+");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 2 * 4096, SEEK_SET);
	for (long i = 2 * 4096; i < size; i++)
		fputc((int)((i * 131) & 0xff), f);
	fclose(f);
	cr_assert(!vipstore_check_file(d.path, err, sizeof(err)), "garbage pages passed the check");
	cr_assert(err[0] != '\0', "no reason given");
	tdir_rm(&d);
}

Test(vipstore, exhausted_hosts_recorded_for_readers)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore_stats st;
	size_t n = 9;
	char **names = make_names(n, "h");
	struct vip_want w[9];
	char *ex;
	uint64_t total;
	time_t when;

	tdir_make(&d);
	o = opts_for(d.path, "10.9.8.0/29");
	struct vipstore *vs = open_ok(&o);
	cr_assert_eq(vipstore_exhausted(vs, &ex, &total, &when), 0, "a new store has no record");
	cr_assert_null(ex);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0, &st);
	/* a second, read-only handle (sedns vips beside the daemon) */
	struct vipstore_opts ro = o;
	ro.readonly = true;
	struct vipstore *rd = open_ok(&ro);
	size_t k = vipstore_exhausted(rd, &ex, &total, &when);
	cr_assert_eq(k, 3);
	cr_assert_eq(total, 3);
	cr_assert_eq(when, T0);
	const char *p = ex;
	for (size_t i = 6; i < 9; i++, p += strlen(p) + 1)
		cr_assert_str_eq(p, names[i], "in name order");
	free(ex);
	char err[512];
	cr_assert(vipstore_verify(rd, err, sizeof(err)), "%s", err);
	/* the pool has room again (hosts gone): the record goes */
	sync_ok(vs, w, (const char **)names, 6, NULL, 0, T0 + 10, &st);
	cr_assert_eq(vipstore_exhausted(rd, &ex, &total, &when), 0);
	cr_assert_eq(total, 0);
	vipstore_close(rd);
	vipstore_close(vs);
	tdir_rm(&d);
	free_names(names, n);
}

/*
 * The sync works from an in-memory copy of the records kept by the handle
 * between syncs. The tests below fail if that copy is used when it is not
 * the file's content, or disagrees with what a fresh open reads.
 */

struct dump {
	size_t n;
	char host[64][SEDNS_MAX_HOST + 1];
	enum vip_state state[64];
	time_t since[64];
	bool has_v4[64], has_v6[64];
	struct netaddr v4[64], v6[64];
};

static bool
dump_cb(const struct vip_record *r, void *arg)
{
	struct dump *d = arg;

	cr_assert(d->n < 64);
	snprintf(d->host[d->n], sizeof(d->host[d->n]), "%s", r->host);
	d->state[d->n] = r->state;
	d->since[d->n] = r->since;
	d->has_v4[d->n] = r->has_v4;
	d->has_v6[d->n] = r->has_v6;
	d->v4[d->n] = r->v4;
	d->v6[d->n] = r->v6;
	d->n++;
	return true;
}

static void
dump_store(struct vipstore *vs, struct dump *d)
{
	char err[256];

	memset(d, 0, sizeof(*d));
	cr_assert(vipstore_list(vs, dump_cb, d, err, sizeof(err)), "%s", err);
}

Test(vipstore, kept_handle_matches_a_fresh_open_every_sync, .timeout = 60)
{
	/* the same random syncs on a handle kept open (works from its copy,
	 * trimmed every third step) and on one reopened before every sync
	 * (reads the file): the same
	 * VIPs, states, times and counts at every step */
	struct tdir da, db;
	struct vipstore_opts oa, ob;
	struct vipstore *a, *b;
	size_t n = 40;
	char **names = make_names(n, "r");
	const char *pick[40];
	struct vip_want wa[40], wb[40];
	struct netaddr res[4];
	unsigned seed = 12345;
	time_t now = T0;

	tdir_make(&da);
	tdir_make(&db);
	oa = opts_for(da.path, "10.20.30.0/26");
	oa.hold_seconds = 30;
	oa.pool6_on = true;
	cr_assert(netprefix_parse("fd00:1::/122", true, &oa.pool6));
	ob = oa;
	ob.dir = db.path;
	a = open_ok(&oa);
	for (int step = 0; step < 120; step++) {
		struct vipstore_stats sa, sb;
		struct dump xa, xb;
		size_t k = 0, nres = (size_t)rand_r(&seed) % 3;
		char err[256];

		for (size_t i = 0; i < n; i++)
			if (rand_r(&seed) % 4 != 0)
				pick[k++] = names[i];
		shuffle(pick, k, &seed);
		for (size_t i = 0; i < nres; i++) {
			char s[32];
			snprintf(s, sizeof(s), "10.20.30.%d", 1 + rand_r(&seed) % 62);
			res[i] = addr(s);
		}
		now += rand_r(&seed) % 20;
		b = open_ok(&ob);
		sync_ok(a, wa, pick, k, res, nres, now, &sa);
		sync_ok(b, wb, pick, k, res, nres, now, &sb);
		/* what the daemon does between reloads: the next sync must not
		 * depend on what this gives back */
		if (step % 3 == 1)
			vipstore_trim(a);
		for (size_t i = 0; i < k; i++) {
			cr_assert_eq(wa[i].has_v4, wb[i].has_v4, "step %d %s", step, pick[i]);
			cr_assert_eq(wa[i].has_v6, wb[i].has_v6, "step %d %s", step, pick[i]);
			cr_assert_eq(wa[i].exhausted, wb[i].exhausted, "step %d %s", step, pick[i]);
			if (wa[i].has_v4)
				cr_assert(netaddr_equal(&wa[i].v4, &wb[i].v4), "step %d %s: %s vs %s", step,
				    pick[i], fmt(&wa[i].v4), fmt(&wb[i].v4));
			if (wa[i].has_v6)
				cr_assert(netaddr_equal(&wa[i].v6, &wb[i].v6), "step %d %s", step, pick[i]);
		}
		cr_assert_eq(sa.allocated, sb.allocated, "step %d", step);
		cr_assert_eq(sa.released, sb.released, "step %d", step);
		cr_assert_eq(sa.exhausted, sb.exhausted, "step %d", step);
		cr_assert_eq(sa.active, sb.active, "step %d", step);
		cr_assert_eq(sa.held, sb.held, "step %d", step);
		dump_store(a, &xa);
		dump_store(b, &xb);
		cr_assert_eq(xa.n, xb.n, "step %d", step);
		cr_assert_eq(xa.n, sa.active + sa.held, "step %d", step);
		for (size_t i = 0; i < xa.n; i++) {
			cr_assert_str_eq(xa.host[i], xb.host[i]);
			cr_assert_eq(xa.state[i], xb.state[i], "step %d %s", step, xa.host[i]);
			cr_assert_eq(xa.since[i], xb.since[i], "step %d %s", step, xa.host[i]);
			cr_assert(netaddr_equal(&xa.v4[i], &xb.v4[i]), "step %d %s", step, xa.host[i]);
		}
		cr_assert(vipstore_verify(b, err, sizeof(err)), "%s", err);
		vipstore_close(b);
	}
	vipstore_close(a);
	tdir_rm(&da);
	tdir_rm(&db);
	free_names(names, n);
}

Test(vipstore, removed_and_back_within_the_hold_keeps_its_vip)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	struct vip_want w[3];
	const char *abc[] = { "a.svc", "b.svc", "c.svc" };
	const char *ac[] = { "a.svc", "c.svc" };
	const char *cd[] = { "c.svc", "d.svc", "a.svc" };
	struct netaddr vb;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	o.hold_seconds = 100;
	vs = open_ok(&o);
	sync_ok(vs, w, abc, 3, NULL, 0, T0, &st);
	vb = w[1].v4;
	sync_ok(vs, w, ac, 2, NULL, 0, T0 + 10, &st);
	cr_assert_eq(st.held, 1);
	cr_assert_eq(st.active, 2);
	/* a newcomer whose preferred slot might be b's does not get it */
	sync_ok(vs, w, cd, 3, NULL, 0, T0 + 20, &st);
	cr_assert(!netaddr_equal(&w[1].v4, &vb));
	cr_assert_eq(st.allocated, 1);
	sync_ok(vs, w, abc, 3, NULL, 0, T0 + 109, &st);
	cr_assert(w[1].has_v4);
	cr_assert(netaddr_equal(&w[1].v4, &vb), "b came back as %s, had %s", fmt(&w[1].v4), fmt(&vb));
	cr_assert_eq(st.allocated, 0);
	cr_assert_eq(st.released, 0);
	cr_assert_eq(st.held, 1); /* d */
	cr_assert_eq(st.active, 3);
	/* gone past the hold: released, and allocated fresh when back */
	sync_ok(vs, w, ac, 2, NULL, 0, T0 + 110, &st);
	sync_ok(vs, w, ac, 2, NULL, 0, T0 + 210, &st);
	cr_assert_eq(st.released, 2); /* b, d */
	struct netaddr x;
	cr_assert(!get4(vs, "b.svc", &x));
	sync_ok(vs, w, abc, 3, NULL, 0, T0 + 211, &st);
	cr_assert_eq(st.allocated, 1);
	vipstore_close(vs);
	tdir_rm(&d);
}

/* Another process (LMDB allows one env per process) syncs names into the
 * store o names; the VIP of the last name, which must get one. */
static struct netaddr
sync_in_child(const struct vipstore_opts *o, const char **names, size_t n, time_t now)
{
	int pfd[2];
	struct netaddr v;
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct vip_want cw[8];
		char err[256];
		struct vipstore *o2 = vipstore_open(o, err, sizeof(err));
		if (o2 == NULL || n == 0 || n > 8)
			_exit(10);
		memset(cw, 0, sizeof(cw));
		for (size_t i = 0; i < n; i++)
			cw[i].host = names[i];
		if (!vipstore_sync(o2, cw, n, NULL, 0, now, NULL, err, sizeof(err)) || !cw[n - 1].has_v4)
			_exit(11);
		if (write(pfd[1], &cw[n - 1].v4, sizeof(v)) != (ssize_t)sizeof(v))
			_exit(12);
		vipstore_close(o2);
		_exit(0);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
	cr_assert_eq(read(pfd[0], &v, sizeof(v)), (ssize_t)sizeof(v));
	close(pfd[0]);
	close(pfd[1]);
	return v;
}

Test(vipstore, a_write_by_another_process_is_read_back)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	struct vip_want w[3];
	const char *ab[] = { "a.svc", "b.svc" };
	const char *abc[] = { "a.svc", "b.svc", "c.svc" };
	struct netaddr va, vb, vc;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, ab, 2, NULL, 0, T0, &st);
	va = w[0].v4;
	vb = w[1].v4;
	uint64_t gen = vipstore_generation(vs);

	/* another process (one env per process) puts a on hold and gives c
	 * a VIP: this handle's copy is now stale */
	const char *bc[] = { "b.svc", "c.svc" };
	vc = sync_in_child(&o, bc, 2, T0 + 5);
	cr_assert_gt(vipstore_generation(vs), gen);

	/* c keeps what the other process gave it, a comes back from hold */
	sync_ok(vs, w, abc, 3, NULL, 0, T0 + 6, &st);
	cr_assert(netaddr_equal(&w[0].v4, &va));
	cr_assert(netaddr_equal(&w[1].v4, &vb));
	cr_assert(netaddr_equal(&w[2].v4, &vc), "c: %s, the other process gave %s", fmt(&w[2].v4), fmt(&vc));
	cr_assert_eq(st.allocated, 0);
	cr_assert_eq(st.active, 3);
	struct dump x;
	dump_store(vs, &x);
	cr_assert_eq(x.n, 3);
	cr_assert_eq(x.state[0], VIP_ACTIVE);
	cr_assert_eq(x.since[0], T0 + 6, "a was held by the other process, active again now");
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, reserved_address_on_an_unchanged_host_still_moves_it)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	struct vip_want w[2];
	const char *ab[] = { "a.svc", "b.svc" };
	struct netaddr va, vb, va2, x;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, ab, 2, NULL, 0, T0, &st);
	va = w[0].v4;
	vb = w[1].v4;
	sync_ok(vs, w, ab, 2, NULL, 0, T0 + 1, &st);
	cr_assert_eq(st.allocated, 0);
	/* the same hosts; a's VIP is now someone's status.addresses */
	sync_ok(vs, w, ab, 2, &va, 1, T0 + 2, &st);
	va2 = w[0].v4;
	cr_assert(w[0].has_v4);
	cr_assert(!netaddr_equal(&va2, &va), "a kept a reserved address");
	cr_assert(netaddr_equal(&w[1].v4, &vb));
	cr_assert_eq(st.allocated, 1);
	cr_assert(get4(vs, "a.svc", &x) && netaddr_equal(&x, &va2));
	/* still reserved: a stays on its new slot, nobody gets the old one */
	const char *abz[] = { "a.svc", "b.svc", "z.svc" };
	struct vip_want w3[3];
	sync_ok(vs, w3, abz, 3, &va, 1, T0 + 3, &st);
	cr_assert(netaddr_equal(&w3[0].v4, &va2));
	cr_assert(!netaddr_equal(&w3[2].v4, &va));
	/* reservation gone: nobody moves back */
	sync_ok(vs, w, ab, 2, NULL, 0, T0 + 4, &st);
	cr_assert(netaddr_equal(&w[0].v4, &va2));
	cr_assert_eq(st.allocated, 0);
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, deferred_abort_and_commit_with_a_kept_handle)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	struct vip_want w[2];
	const char *a[] = { "a.svc" };
	const char *ab[] = { "a.svc", "b.svc" };
	char err[256];
	struct netaddr x, vb;

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, a, 1, NULL, 0, T0, &st);
	vipstore_set_deferred(vs, true);
	memset(w, 0, sizeof(w));
	w[0].host = ab[0];
	w[1].host = ab[1];
	cr_assert(vipstore_sync(vs, w, 2, NULL, 0, T0 + 1, &st, err, sizeof(err)), "%s", err);
	cr_assert_eq(st.allocated, 1);
	vipstore_abort(vs);
	cr_assert(!get4(vs, "b.svc", &x), "an aborted sync left b");
	/* the next sync must not think b exists */
	memset(w, 0, sizeof(w));
	w[0].host = a[0];
	cr_assert(vipstore_sync(vs, w, 1, NULL, 0, T0 + 2, &st, err, sizeof(err)), "%s", err);
	cr_assert(vipstore_commit(vs, err, sizeof(err)), "%s", err);
	cr_assert_eq(st.active, 1);
	cr_assert_eq(st.held, 0);
	cr_assert(vipstore_verify(vs, err, sizeof(err)), "%s", err);
	/* committed: kept by the next sync */
	memset(w, 0, sizeof(w));
	w[0].host = ab[0];
	w[1].host = ab[1];
	cr_assert(vipstore_sync(vs, w, 2, NULL, 0, T0 + 3, &st, err, sizeof(err)), "%s", err);
	cr_assert(vipstore_commit(vs, err, sizeof(err)), "%s", err);
	vb = w[1].v4;
	cr_assert_eq(st.allocated, 1);
	memset(w, 0, sizeof(w));
	w[0].host = a[0];
	cr_assert(vipstore_sync(vs, w, 1, NULL, 0, T0 + 4, &st, err, sizeof(err)), "%s", err);
	cr_assert(vipstore_commit(vs, err, sizeof(err)), "%s", err);
	cr_assert_eq(st.held, 1);
	memset(w, 0, sizeof(w));
	w[0].host = ab[0];
	w[1].host = ab[1];
	cr_assert(vipstore_sync(vs, w, 2, NULL, 0, T0 + 5, &st, err, sizeof(err)), "%s", err);
	cr_assert(vipstore_commit(vs, err, sizeof(err)), "%s", err);
	cr_assert(netaddr_equal(&w[1].v4, &vb));
	cr_assert_eq(st.allocated, 0);
	cr_assert_eq(st.held, 0);
	cr_assert(vipstore_verify(vs, err, sizeof(err)), "%s", err);
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, an_unchanged_sync_writes_nothing)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	size_t n = 300;
	char **names = make_names(n, "u");
	struct vip_want *w = calloc(n, sizeof(*w));

	cr_assert_not_null(w);
	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	vs = open_ok(&o);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0, &st);
	uint64_t gen = vipstore_generation(vs);
	sync_ok(vs, w, (const char **)names, n, NULL, 0, T0 + 1, &st);
	cr_assert_eq(vipstore_generation(vs), gen, "a sync that changed nothing wrote");
	cr_assert_eq(st.active, n);
	/* and after that the copy is still trusted and still right */
	sync_ok(vs, w, (const char **)names, n - 1, NULL, 0, T0 + 2, &st);
	cr_assert_eq(st.held, 1);
	cr_assert_gt(vipstore_generation(vs), gen);
	vipstore_close(vs);
	tdir_rm(&d);
	free(w);
	free_names(names, n);
}

Test(vipstore, lookup_wants_matches_lookup)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vip_want w[6];
	const char *have[] = { "a.svc", "b.svc", "c.svc" };
	const char *ask[] = { "b.svc", "A.SVC.", "nope.svc", "", "c.svc", "b.svc" };

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	o.pool6_on = true;
	cr_assert(netprefix_parse("fd00:2::/64", true, &o.pool6));
	vs = open_ok(&o);
	sync_ok(vs, w, have, 3, NULL, 0, T0, NULL);
	sync_ok(vs, w, have, 2, NULL, 0, T0 + 1, NULL); /* c held: still found */
	for (size_t i = 0; i < 6; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].host = ask[i];
		w[i].exhausted = true;
	}
	cr_assert(vipstore_lookup_wants(vs, w, 6));
	for (size_t i = 0; i < 6; i++) {
		struct netaddr v4, v6;
		bool h4 = false, h6 = false;
		bool found = vipstore_lookup(vs, ask[i], &v4, &h4, &v6, &h6);
		cr_assert(!w[i].exhausted);
		cr_assert_eq(w[i].has_v4, found && h4, "%s", ask[i]);
		cr_assert_eq(w[i].has_v6, found && h6, "%s", ask[i]);
		if (h4)
			cr_assert(netaddr_equal(&w[i].v4, &v4), "%s", ask[i]);
		if (h6)
			cr_assert(netaddr_equal(&w[i].v6, &v6), "%s", ask[i]);
	}
	cr_assert(w[0].has_v4 && w[1].has_v4 && w[1].has_v6 && !w[2].has_v4 && !w[3].has_v4 && w[4].has_v4);
	vipstore_close(vs);
	tdir_rm(&d);
}

/* What registry_assign_vips does: every name found active in the copy,
 * then vipstore_unchanged. */
static bool
unchanged(struct vipstore *vs, const char **names, size_t n, const struct netaddr *res, size_t nres,
    time_t now, struct vipstore_stats *st)
{
	struct netaddr v4, v6;
	bool h4, h6;
	for (size_t i = 0; i < n; i++)
		if (!vipstore_cached(vs, names[i], &v4, &h4, &v6, &h6))
			return false;
	return vipstore_unchanged(vs, n, res, nres, now, st);
}

Test(vipstore, unchanged_inputs_need_no_sync)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	struct vip_want w[3];
	const char *abc[] = { "a.svc", "b.svc", "c.svc" };
	const char *acb[] = { "a.svc", "c.svc", "b.svc" };
	const char *ab[] = { "a.svc", "b.svc" };
	const char *abd[] = { "a.svc", "b.svc", "d.svc" };
	struct netaddr res = addr("240.240.9.9"), v4, v6;
	bool h4, h6;
	char err[256];

	tdir_make(&d);
	o = opts_for(d.path, "240.240.0.0/16");
	o.hold_seconds = 30;
	vs = open_ok(&o);
	cr_assert_not(unchanged(vs, abc, 3, NULL, 0, T0, &st), "no sync yet");
	sync_ok(vs, w, abc, 3, NULL, 0, T0, &st);
	cr_assert_not(st.unchanged);
	struct netaddr va = w[0].v4, vb = w[1].v4, vc = w[2].v4;

	memset(&st, 0, sizeof(st));
	cr_assert(unchanged(vs, abc, 3, NULL, 0, T0 + 1, &st));
	cr_assert(st.unchanged);
	cr_assert_eq(st.active, 3);
	cr_assert_eq(st.allocated, 0);
	cr_assert(vipstore_cached(vs, "a.svc", &v4, &h4, &v6, &h6) && h4 && !h6);
	cr_assert(netaddr_equal(&v4, &va));
	cr_assert(vipstore_cached(vs, "b.svc", &v4, &h4, &v6, &h6) && netaddr_equal(&v4, &vb));
	cr_assert(vipstore_cached(vs, "c.svc", &v4, &h4, &v6, &h6) && netaddr_equal(&v4, &vc));
	cr_assert_not(vipstore_cached(vs, "d.svc", &v4, &h4, &v6, &h6));

	/* any input that differs asks for a sync */
	/* a sync allocates in name order whatever order it is given */
	cr_assert(unchanged(vs, acb, 3, NULL, 0, T0 + 1, &st), "the order does not matter");
	cr_assert_not(unchanged(vs, ab, 2, NULL, 0, T0 + 1, &st), "a host gone");
	cr_assert_not(vipstore_unchanged(vs, 2, NULL, 0, T0 + 1, &st), "two names for three active records");
	cr_assert_not(unchanged(vs, abd, 3, NULL, 0, T0 + 1, &st), "one host replaced by a new one");
	cr_assert_not(unchanged(vs, abc, 3, &res, 1, T0 + 1, &st), "an address reserved");

	/* c on hold: unchanged until its hold runs out, and never answered */
	sync_ok(vs, w, ab, 2, NULL, 0, T0 + 2, &st);
	cr_assert(unchanged(vs, ab, 2, NULL, 0, T0 + 2 + 29, &st));
	cr_assert_eq(st.held, 1);
	cr_assert_not(vipstore_cached(vs, "c.svc", &v4, &h4, &v6, &h6), "held");
	cr_assert_not(unchanged(vs, ab, 2, NULL, 0, T0 + 2 + 30, &st), "the hold ran out: a sync releases it");

	/* not while a deferred transaction is open; after its commit, yes */
	vipstore_set_deferred(vs, true);
	memset(w, 0, sizeof(w));
	w[0].host = "a.svc";
	w[1].host = "b.svc";
	cr_assert(vipstore_sync(vs, w, 2, NULL, 0, T0 + 40, &st, err, sizeof(err)), "%s", err);
	cr_assert_not(unchanged(vs, ab, 2, NULL, 0, T0 + 40, &st));
	cr_assert(vipstore_commit(vs, err, sizeof(err)), "%s", err);
	vipstore_set_deferred(vs, false);
	cr_assert(unchanged(vs, ab, 2, NULL, 0, T0 + 41, &st));
	cr_assert_not(vipstore_cached(vs, "c.svc", &v4, &h4, &v6, &h6), "released");
	/* reserved addresses are compared as they are, not by count */
	struct netaddr res2 = addr("240.240.9.10");
	sync_ok(vs, w, ab, 2, &res, 1, T0 + 41, &st);
	cr_assert(unchanged(vs, ab, 2, &res, 1, T0 + 41, &st));
	cr_assert_not(unchanged(vs, ab, 2, &res2, 1, T0 + 41, &st), "another address reserved");

	/* another process writes: the copy is stale */
	const char *a[] = { "a.svc" };
	(void)sync_in_child(&o, a, 1, T0 + 42);
	cr_assert_not(unchanged(vs, ab, 2, NULL, 0, T0 + 43, &st), "written by another process");
	vipstore_close(vs);
	tdir_rm(&d);
}

Test(vipstore, an_exhausted_sync_is_never_unchanged)
{
	struct tdir d;
	struct vipstore_opts o;
	struct vipstore *vs;
	struct vipstore_stats st;
	struct vip_want w[4];
	const char *names[] = { "a.svc", "b.svc", "c.svc", "d.svc" };

	tdir_make(&d);
	o = opts_for(d.path, "10.9.8.0/30"); /* two usable addresses */
	vs = open_ok(&o);
	sync_ok(vs, w, names, 4, NULL, 0, T0, &st);
	cr_assert_gt(st.exhausted, 0);
	/* a later sync could find room (a hold released, the pool free) */
	cr_assert_not(unchanged(vs, names, 4, NULL, 0, T0, &st));
	vipstore_close(vs);
	tdir_rm(&d);
}
