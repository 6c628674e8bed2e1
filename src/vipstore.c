/* vipstore — stable virtual IPs per hostname in LMDB; see include/vipstore.h. */
#include "vipstore.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "bigmem.h"
#include "log.h"

/*
 * On-disk value of name2vip: a fixed layout independent of the compiler's
 * struct packing, 32 bytes.
 *   [0..3]   IPv4 address (network order), zero when absent
 *   [4..19]  IPv6 address (network order), zero when absent
 *   [20]     flags: VRD_HAS_V4, VRD_HAS_V6, VRD_HELD, VRD_SUMMED
 *   [21..23] with VRD_SUMMED: a 24-bit checksum of the key and the other
 *            29 bytes (a flipped bit in a time or an address is found,
 *            not served); zero in records written before it
 *   [24..31] since, int64 little endian (unix seconds)
 */
#define VRD_SIZE	32
#define VRD_HAS_V4	0x01
#define VRD_HAS_V6	0x02
#define VRD_HELD	0x04
#define VRD_SUMMED	0x08
#define VRD_KNOWN	(VRD_HAS_V4 | VRD_HAS_V6 | VRD_HELD | VRD_SUMMED)

size_t vipstore_mapsize = (size_t)64 << 20;

/*
 * The in-memory copy of name2vip a sync works from, so that a reload reads
 * and writes only the records that change. struct vipstore keeps two: the
 * current one (vs->cache[vs->cur]) and the one a sync builds. The current
 * one is the file's content at LMDB transaction id vs->cache_gen: a sync
 * whose write transaction does not follow that id (another process wrote,
 * a commit failed) reads the file again first. Records are in LMDB's key
 * order (memcmp, then length), their names in one arena.
 */
struct crec {
	uint32_t off;                 /* name: names + off, len bytes */
	uint16_t len;
	uint8_t flags;                /* VRD_HAS_V4 | VRD_HAS_V6 | VRD_HELD,
	                                 or CREC_BAD */
	uint8_t v4[4];
	uint8_t v6[16];
	int64_t since;
};
#define CREC_BAD	0x80          /* undecodable on disk: skipped */

struct vcache {
	struct crec *r;
	size_t n, cap;
	char *names;
	size_t nlen, ncap;
	size_t live;                  /* name bytes the records use */
};

/* One wanted name of a sync. */
struct want_key {
	const char *name;             /* wants[idx].host when already
	                                 normalized, else a copy; len bytes and
	                                 a NUL */
	uint32_t len;
	uint32_t idx;                 /* into wants[] */
};

/* A decoded record. */
struct vrec {
	bool has_v4, has_v6;
	struct netaddr v4, v6;
	enum vip_state state;
	time_t since;
};

/* Buffers a sync grows; vipstore_trim gives them back between reloads. */
struct sync_scratch {
	struct want_key *wk;
	size_t wkcap;
	char *names;                  /* normalized copies of wanted names */
	size_t namescap;
	uint32_t *uw;                 /* per unique want: its first key */
	size_t uwcap;
	uint32_t *wrec;               /* per unique want: its record */
	size_t wreccap;
	struct crec *add;             /* records new in this sync */
	size_t addcap;
	struct netaddr *res;
	size_t rescap;
	uint64_t *bits;               /* IPv4 offsets taken */
	size_t bitscap;
	struct vip_want *wants;       /* vipstore_wants */
	size_t wantscap;
};

struct vipstore {
	MDB_env *env;
	MDB_dbi name2vip;
	MDB_dbi vip2name;
	MDB_dbi meta;
	struct netprefix pool4;
	bool pool6_on;
	struct netprefix pool6;
	uint32_t hold;
	bool readonly;
	bool defer;                   /* vipstore_sync leaves its txn to
	                                 vipstore_commit / vipstore_abort */
	MDB_txn *pending;
	size_t mapsize;
	bool disk_error;              /* the last failure was the disk's */
	char dir[PATH_MAX];
	char path[PATH_MAX];
	struct vipstore_stats last;   /* counters of the last sync */
	pthread_mutex_t last_mu;      /* guards last and last_set */
	bool last_set;                /* a sync filled last */
	struct vcache cache[2];       /* see struct crec; only the sync's
	                                 thread touches these */
	int cur;
	bool cache_ok;                /* cache[cur] is the file at cache_gen */
	uint64_t cache_gen;
	bool pend_set;                /* a deferred sync built cache[cur ^ 1] */
	bool pend_ok;                 /* ... and it may be kept */
	uint64_t pend_txnid;          /* ... in this write transaction */
	bool pend_wrote;              /* ... which wrote something */
	bool pend_settled;            /* ... which exhausted nothing */
	bool settled;                 /* the sync that left cache[cur]
	                                 exhausted nothing (vipstore_unchanged) */
	struct netaddr *res;          /* its reserved addresses (owned) */
	size_t nres;
	struct netaddr *pend_res;     /* those of a deferred sync (owned) */
	size_t npend_res;
	struct sync_scratch scr;
};

/* State of one sync, shared by its helpers. */
struct sync_ctx {
	struct vipstore *vs;
	MDB_txn *txn;
	struct want_key *keys;        /* sorted by name, then idx */
	size_t nkeys;
	uint32_t *uw;                 /* unique names: index of the first key */
	size_t nuw;
	uint32_t *wrec;               /* per unique name: index into out->r,
	                                 or WREC_NONE / WREC_BAD */
	struct vcache *old, *out;     /* the file before; what the sync leaves */
	struct crec *add;             /* new records, in name order */
	size_t nadd;
	struct netaddr *reserved;     /* sorted, only those inside a pool */
	size_t nreserved;
	time_t now;
	bool full4, full6;            /* a probe run failed in this sync */
	bool bad;                     /* a bad record: the copy is not kept */
	bool wrote;                   /* something was written in txn */
	MDB_cursor *cn, *cv;          /* on name2vip, vip2name */
	bool use_bits, bits_built;    /* bitmap of taken IPv4 offsets */
	uint64_t *bits;
	uint32_t base4;               /* pool4's first address, host order */
	uint64_t maxoff4;
	uint64_t allocated, released, exhausted;
	uint64_t active, held;
};
#define WREC_NONE	UINT32_MAX
#define WREC_BAD	(UINT32_MAX - 1)

/* Pools up to this many IPv4 addresses track taken slots in a bitmap
 * (512 KiB at most); wider ones probe vip2name. */
#define BITS_MAX_POOL	((uint64_t)1 << 22)

static void	 seterr(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static bool	 normalize_host(const char *, char *, size_t *);
static uint32_t	 rec_sum(const MDB_val *, const uint8_t *);
static void	 rec_encode(const struct vrec *, const MDB_val *, uint8_t *);
static bool	 rec_decode(const MDB_val *, const MDB_val *, struct vrec *);
static int	 put_exhausted(struct sync_ctx *, const struct vip_want *);
static int	 count_records(struct vipstore *, MDB_txn *, uint64_t *,
		    uint64_t *);
static int	 meta_get_str(MDB_txn *, MDB_dbi, const char *, char *, size_t,
		    bool *);
static int	 meta_put_str(MDB_txn *, MDB_dbi, const char *, const char *);
static int	 open_dbis(struct vipstore *, MDB_txn *, unsigned);
static bool	 check_meta(struct vipstore *, const struct vipstore_opts *,
		    char *, size_t);
static bool	 mkdir_p(const char *);

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * LMDB passes write(2)/fsync(2) errors through, and reports a short write as
 * EIO: on a full filesystem that is "Input/output error", which sends an
 * operator looking at the disk hardware. Name the cause when the state
 * directory's filesystem is (nearly) full, and remember that the failure was
 * the disk's (the daemon then serves the VIPs it has, read-only).
 */
static const char *
rc_words(struct vipstore *vs, int rc, char *buf, size_t len)
{
	struct statvfs sv;
	bool low = statvfs(vs->dir, &sv) == 0 &&
	    (unsigned long long)sv.f_bavail * sv.f_frsize < (1ULL << 20);

	vs->disk_error = rc == ENOSPC || rc == EDQUOT || rc == EIO || rc == EROFS || rc == EFBIG;
	if (low && (rc == ENOSPC || rc == EDQUOT || rc == EIO))
		snprintf(buf, len, "no space left on device (%llu KiB free)",
		    (unsigned long long)sv.f_bavail * sv.f_frsize / 1024);
	else if (rc == ENOSPC || rc == EDQUOT)
		snprintf(buf, len, "no space left on device");
	else if (rc == EROFS)
		snprintf(buf, len, "read-only file system");
	else
		snprintf(buf, len, "%s", mdb_strerror(rc));
	return buf;
}

bool
vipstore_disk_failed(const struct vipstore *vs)
{
	return vs->disk_error;
}

/* Lower-cases host and drops one trailing dot; false if empty or too long. */
static bool
normalize_host(const char *host, char *out, size_t *lenp)
{
	size_t len;

	if (host == NULL)
		return false;
	len = strlen(host);
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > SEDNS_MAX_HOST)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = host[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';
	*lenp = len;
	return true;
}

/* FNV-1a 32 over the key and the value without its checksum bytes. */
static uint32_t
rec_sum(const MDB_val *key, const uint8_t *b)
{
	uint32_t h = 0x811c9dc5u;
	const uint8_t *k = key->mv_data;

	for (size_t i = 0; i < key->mv_size; i++)
		h = (h ^ k[i]) * 0x01000193u;
	for (size_t i = 0; i < VRD_SIZE; i++)
		if (i < 21 || i > 23)
			h = (h ^ b[i]) * 0x01000193u;
	return h & 0xffffffu;
}

static void
rec_encode(const struct vrec *r, const MDB_val *key, uint8_t *b)
{
	uint64_t since = (uint64_t)(int64_t)r->since;
	uint32_t sum;

	memset(b, 0, VRD_SIZE);
	if (r->has_v4) {
		memcpy(b, r->v4.a, 4);
		b[20] |= VRD_HAS_V4;
	}
	if (r->has_v6) {
		memcpy(b + 4, r->v6.a, 16);
		b[20] |= VRD_HAS_V6;
	}
	if (r->state == VIP_HELD)
		b[20] |= VRD_HELD;
	b[20] |= VRD_SUMMED;
	for (int i = 0; i < 8; i++)
		b[24 + i] = (uint8_t)(since >> (8 * i));
	sum = rec_sum(key, b);
	b[21] = (uint8_t)sum;
	b[22] = (uint8_t)(sum >> 8);
	b[23] = (uint8_t)(sum >> 16);
}

/* Decodes the name2vip value of key; the caller fills host. False on a
 * bad layout or checksum. A record without VRD_SUMMED (older sedns) must
 * have zero checksum bytes: one flip cannot both clear the flag and zero
 * the sum. */
static bool
rec_decode(const MDB_val *key, const MDB_val *v, struct vrec *r)
{
	const uint8_t *b = v->mv_data;
	uint64_t since = 0;

	memset(r, 0, sizeof(*r));
	if (v->mv_size != VRD_SIZE || (b[20] & ~VRD_KNOWN) != 0)
		return false;
	uint32_t stored = (uint32_t)b[21] | (uint32_t)b[22] << 8 | (uint32_t)b[23] << 16;
	if ((b[20] & VRD_SUMMED) ? stored != rec_sum(key, b) : stored != 0)
		return false;
	if (b[20] & VRD_HAS_V4) {
		r->has_v4 = true;
		r->v4.family = AF_INET;
		memcpy(r->v4.a, b, 4);
	}
	if (b[20] & VRD_HAS_V6) {
		r->has_v6 = true;
		r->v6.family = AF_INET6;
		memcpy(r->v6.a, b + 4, 16);
	}
	r->state = (b[20] & VRD_HELD) ? VIP_HELD : VIP_ACTIVE;
	for (int i = 0; i < 8; i++)
		since |= (uint64_t)b[24 + i] << (8 * i);
	r->since = (time_t)(int64_t)since;
	return true;
}

static void
addr_key(const struct netaddr *a, MDB_val *k)
{
	k->mv_data = (void *)(uintptr_t)a->a;
	k->mv_size = a->family == AF_INET ? 4 : 16;
}

/* LMDB's key order: memcmp over the shorter, then the shorter first. */
static int
name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
want_key_cmp(const void *x, const void *y)
{
	const struct want_key *a = x, *b = y;
	int c = name_cmp(a->name, a->len, b->name, b->len);

	if (c != 0)
		return c;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* p grown to hold need elements (a reused buffer only grows); NULL when
 * out of memory, p then still valid. Large ones are bigmem blocks: a
 * reload after vipstore_trim faults them in as huge pages. */
static void *
grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t nc;
	void *np;

	if (p != NULL && need <= *cap)
		return p;
	nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	if (nc > SIZE_MAX / elem)
		return NULL;
	if ((np = bigmem_grow(p, p ? *cap * elem : 0, nc * elem)) != NULL)
		*cap = nc;
	return np;
}

/* Frees a buffer grow() made; *cap is reset. */
static void
ungrow(void *p, size_t *cap, size_t elem)
{
	bigmem_free(p, p ? *cap * elem : 0);
	*cap = 0;
}

static bool
is_reserved(const struct sync_ctx *sc, const struct netaddr *a)
{
	if (sc->nreserved == 0)
		return false;
	return bsearch(a, sc->reserved, sc->nreserved, sizeof(*sc->reserved),
	    netaddr_cmp) != NULL;
}

/* Highest offset that may be handed out: IPv4 skips the broadcast. */
static uint64_t
pool_maxoff(const struct netprefix *p)
{
	uint64_t size = netprefix_size(p);

	if (p->addr.family == AF_INET)
		return size >= 2 ? size - 2 : 0;
	return size >= 1 ? size - 1 : 0;
}

static bool
addr_usable(const struct netprefix *p, const struct netaddr *a)
{
	uint64_t off;

	if (!netprefix_contains(p, a))
		return false;
	off = netprefix_offset(p, a);
	return off >= 1 && off <= pool_maxoff(p);
}

static uint32_t
be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* addr_usable for IPv4 in pool4, from the sync's precomputed bounds. */
static bool
usable4(const struct sync_ctx *sc, const uint8_t *a)
{
	uint64_t off = (uint32_t)(be32(a) - sc->base4);

	return off >= 1 && off <= sc->maxoff4;
}

uint64_t
vipstore_preferred_slot(const char *host, uint64_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;           /* FNV-1a 64 */

	if (size <= 1)
		return 0;
	for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return 1 + h % (size - 1);                    /* never offset 0 */
}

uint64_t
vipstore_pool_size(const struct vipstore *vs)
{
	return pool_maxoff(&vs->pool4);
}

/* The sync's cursor on dbi, if it has one: name2vip is written in key
 * order, and LMDB looks for a key on the cursor's page before descending
 * from the root. */
static MDB_cursor *
sync_cursor(const struct sync_ctx *sc, MDB_dbi dbi)
{
	if (dbi == sc->vs->name2vip)
		return sc->cn;
	if (dbi == sc->vs->vip2name)
		return sc->cv;
	return NULL;
}

static int
wput(struct sync_ctx *sc, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
	MDB_cursor *c = sync_cursor(sc, dbi);
	int rc = c != NULL ? mdb_cursor_put(c, k, v, flags) : mdb_put(sc->txn, dbi, k, v, flags);

	if (rc == 0)
		sc->wrote = true;
	return rc;
}

static int
wdel(struct sync_ctx *sc, MDB_dbi dbi, MDB_val *k)
{
	MDB_cursor *c = sync_cursor(sc, dbi);
	MDB_val d;
	int rc;

	if (c == NULL)
		rc = mdb_del(sc->txn, dbi, k, NULL);
	else if ((rc = mdb_cursor_get(c, k, &d, MDB_SET)) == 0)
		rc = mdb_cursor_del(c, 0);
	if (rc == 0)
		sc->wrote = true;
	return rc;
}

/* Deletes vip2name[a] if it points at name (name == NULL: whatever). */
static int
unlink_addr(struct sync_ctx *sc, const struct netaddr *a, const MDB_val *name)
{
	MDB_val k, v;
	int rc;

	addr_key(a, &k);
	rc = mdb_cursor_get(sc->cv, &k, &v, MDB_SET);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (name != NULL && (v.mv_size != name->mv_size ||
	    memcmp(v.mv_data, name->mv_data, v.mv_size) != 0))
		return 0;
	if ((rc = mdb_cursor_del(sc->cv, 0)) == 0)
		sc->wrote = true;
	return rc;
}

static void
crec_get(const struct crec *c, struct vrec *r)
{
	memset(r, 0, sizeof(*r));
	if (c->flags & VRD_HAS_V4) {
		r->has_v4 = true;
		r->v4.family = AF_INET;
		memcpy(r->v4.a, c->v4, 4);
	}
	if (c->flags & VRD_HAS_V6) {
		r->has_v6 = true;
		r->v6.family = AF_INET6;
		memcpy(r->v6.a, c->v6, 16);
	}
	r->state = (c->flags & VRD_HELD) ? VIP_HELD : VIP_ACTIVE;
	r->since = (time_t)c->since;
}

static void
crec_set(struct crec *c, const struct vrec *r)
{
	c->flags = 0;
	memset(c->v4, 0, sizeof(c->v4));
	memset(c->v6, 0, sizeof(c->v6));
	if (r->has_v4) {
		c->flags |= VRD_HAS_V4;
		memcpy(c->v4, r->v4.a, 4);
	}
	if (r->has_v6) {
		c->flags |= VRD_HAS_V6;
		memcpy(c->v6, r->v6.a, 16);
	}
	if (r->state == VIP_HELD)
		c->flags |= VRD_HELD;
	c->since = (int64_t)r->since;
}

/* Appends name to c's arena; its offset in *off. */
static bool
cache_name(struct vcache *c, const void *name, size_t len, uint32_t *off)
{
	char *np;

	if (c->nlen + len > UINT32_MAX)
		return false;
	if ((np = grow(c->names, &c->ncap, c->nlen + len, 1)) == NULL)
		return false;
	c->names = np;
	memcpy(c->names + c->nlen, name, len);
	*off = (uint32_t)c->nlen;
	c->nlen += len;
	c->live += len;
	return true;
}

/*
 * Reads every name2vip record into vs->cache[vs->cur] (the copy was stale
 * or never read). A bad record is warned about and kept as CREC_BAD: a
 * sync that wants that name replaces it, and the copy is not kept past
 * this sync (the next one reads and warns again, as every sync did).
 */
static int
cache_load(struct sync_ctx *sc)
{
	struct vipstore *vs = sc->vs;
	struct vcache *c = &vs->cache[vs->cur];
	MDB_cursor *cur;
	MDB_val k, v;
	struct vrec r;
	MDB_stat st;
	int rc;

	log_debug("VIP store %s: reading every record (%s)", vs->path, !vs->cache_ok ? "no copy in memory" :
	    "written by another process since");
	vs->cache_ok = false;
	vs->settled = false;
	c->n = c->nlen = c->live = 0;
	if ((rc = mdb_stat(sc->txn, vs->name2vip, &st)) != 0)
		return rc;
	struct crec *nr = grow(c->r, &c->cap, st.ms_entries + 1, sizeof(*c->r));
	if (nr == NULL)
		return ENOMEM;
	c->r = nr;
	if ((rc = mdb_cursor_open(sc->txn, vs->name2vip, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		bool badkey = k.mv_size == 0 || k.mv_size > SEDNS_MAX_HOST;
		struct crec e;

		memset(&e, 0, sizeof(e));
		if (badkey || !rec_decode(&k, &v, &r)) {
			log_warnx("vipstore: skipping bad record %.*s "
			    "(key %zu bytes, value %zu bytes)",
			    (int)(k.mv_size > SEDNS_MAX_HOST ? SEDNS_MAX_HOST :
			    k.mv_size), (const char *)k.mv_data, k.mv_size,
			    v.mv_size);
			sc->bad = true;
			if (badkey)
				continue; /* no wanted name can be it */
			e.flags = CREC_BAD;
		} else
			crec_set(&e, &r);
		if ((nr = grow(c->r, &c->cap, c->n + 1, sizeof(*c->r))) == NULL) {
			rc = ENOMEM;
			break;
		}
		c->r = nr;
		e.len = (uint16_t)k.mv_size;
		if (!cache_name(c, k.mv_data, k.mv_size, &e.off)) {
			rc = ENOMEM;
			break;
		}
		c->r[c->n++] = e;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	/* the committed state before this transaction: kept even if the
	 * transaction is aborted */
	vs->cache_ok = !sc->bad;
	vs->cache_gen = (uint64_t)mdb_txn_id(sc->txn) - 1;
	return 0;
}

static void
bit_set(uint64_t *b, uint64_t i)
{
	b[i >> 6] |= (uint64_t)1 << (i & 63);
}

static bool
bit_get(const uint64_t *b, uint64_t i)
{
	return (b[i >> 6] >> (i & 63)) & 1;
}

/* The IPv4 offsets the records hold now (before the first allocation of
 * the sync: pass 1 is done, pass 2 adds its own). */
static void
bits_build(struct sync_ctx *sc)
{
	const struct vcache *c = sc->out;

	memset(sc->bits, 0, (size_t)((sc->maxoff4 + 64) / 64) * sizeof(uint64_t));
	for (size_t i = 0; i < c->n; i++) {
		if (!(c->r[i].flags & VRD_HAS_V4))
			continue;
		uint64_t off = (uint32_t)(be32(c->r[i].v4) - sc->base4);
		if (off <= sc->maxoff4)
			bit_set(sc->bits, off);
	}
	sc->bits_built = true;
}

/*
 * Finds a free address for name: preferred slot, then upward with wrap,
 * skipping offset 0, the IPv4 broadcast, reserved and taken addresses, at
 * most VIPSTORE_MAX_PROBES probes. Claims it in vip2name. *got false (rc 0)
 * when the pool is exhausted. IPv4 slots the records hold are known from
 * the bitmap; vip2name still has the last word (MDB_NOOVERWRITE).
 */
static int
alloc_addr(struct sync_ctx *sc, bool v6, const char *name, size_t namelen,
    struct netaddr *out, bool *got)
{
	struct vipstore *vs = sc->vs;
	const struct netprefix *pool = v6 ? &vs->pool6 : &vs->pool4;
	bool *full = v6 ? &sc->full6 : &sc->full4;
	bool bits = !v6 && sc->use_bits;
	uint64_t maxoff, off, probes;
	MDB_val k, v;
	int rc;

	*got = false;
	maxoff = pool_maxoff(pool);
	if (*full || maxoff == 0) {
		*full = true;
		return 0;
	}
	if (bits && !sc->bits_built)
		bits_build(sc);
	off = vipstore_preferred_slot(name, netprefix_size(pool));
	if (off > maxoff)
		off = 1;
	probes = maxoff < VIPSTORE_MAX_PROBES ? maxoff : VIPSTORE_MAX_PROBES;
	for (uint64_t i = 0; i < probes; i++) {
		uint64_t at = off;
		off = off >= maxoff ? 1 : off + 1;
		if (bits && bit_get(sc->bits, at))
			continue;
		netprefix_nth(pool, at, out);
		if (is_reserved(sc, out))
			continue;
		addr_key(out, &k);
		if (!bits) {
			rc = mdb_get(sc->txn, vs->vip2name, &k, &v);
			if (rc == 0)
				continue;
			if (rc != MDB_NOTFOUND)
				return rc;
		}
		v.mv_data = (void *)(uintptr_t)name;
		v.mv_size = namelen;
		rc = wput(sc, vs->vip2name, &k, &v, MDB_NOOVERWRITE);
		if (bits && (rc == 0 || rc == MDB_KEYEXIST))
			bit_set(sc->bits, at);
		if (rc == MDB_KEYEXIST && bits)
			continue; /* taken by no record we hold */
		if (rc != 0)
			return rc;
		*got = true;
		return 0;
	}
	*full = true;
	return 0;
}

/*
 * Pass 1 over every record (from the in-memory copy, not the file):
 * reactivate wanted ones, hold removed ones, release expired holds, and
 * drop addresses that are now reserved or outside the pool (pass 2 gives
 * wanted hosts a fresh slot). Only the records that change are written.
 * Builds sc->out from sc->old and, per unique wanted name, its record.
 */
static int
sync_existing(struct sync_ctx *sc)
{
	struct vipstore *vs = sc->vs;
	const struct vcache *old = sc->old;
	struct vcache *out = sc->out;
	MDB_val k, nv;
	struct vrec r;
	uint8_t buf[VRD_SIZE];
	size_t j = 0;
	bool compact;
	int rc;

	/* the names: one copy of the arena unless mostly garbage */
	compact = old->nlen > 2 * old->live + 65536;
	out->n = out->nlen = out->live = 0;
	if (!compact && old->nlen > 0) {
		char *np = grow(out->names, &out->ncap, old->nlen, 1);
		if (np == NULL)
			return ENOMEM;
		out->names = np;
		memcpy(out->names, old->names, old->nlen);
		out->nlen = old->nlen;
	}
	for (size_t i = 0; i < old->n; i++) {
		const struct crec *c = &old->r[i];
		const char *name = old->names + c->off;
		bool changed = false, del = false, wanted = false;
		int cmp = 1;

		while (j < sc->nuw) {
			const struct want_key *w = &sc->keys[sc->uw[j]];
			cmp = name_cmp(w->name, w->len, name, c->len);
			if (cmp >= 0)
				break;
			sc->wrec[j++] = WREC_NONE;
		}
		wanted = j < sc->nuw && cmp == 0;
		if (c->flags & CREC_BAD) {
			/* warned when read; a wanted one is replaced */
			if (wanted)
				sc->wrec[j++] = WREC_BAD;
			continue;
		}
		k.mv_data = (void *)(uintptr_t)name;
		k.mv_size = c->len;
		crec_get(c, &r);
		if (r.has_v4 && (!usable4(sc, c->v4) || is_reserved(sc, &r.v4))) {
			if ((rc = unlink_addr(sc, &r.v4, &k)) != 0)
				return rc;
			r.has_v4 = false;
			changed = true;
		}
		if (r.has_v6 && (!vs->pool6_on ||
		    !addr_usable(&vs->pool6, &r.v6) || is_reserved(sc, &r.v6))) {
			if ((rc = unlink_addr(sc, &r.v6, &k)) != 0)
				return rc;
			r.has_v6 = false;
			changed = true;
		}
		if (wanted) {
			if (r.state == VIP_HELD) {
				r.state = VIP_ACTIVE;
				r.since = sc->now;
				changed = true;
			}
		} else if (r.state == VIP_ACTIVE) {
			r.state = VIP_HELD;
			r.since = sc->now;
			changed = true;
		} else if ((int64_t)sc->now - (int64_t)r.since >=
		    (int64_t)vs->hold) {
			if (r.has_v4 && (rc = unlink_addr(sc, &r.v4, &k)) != 0)
				return rc;
			if (r.has_v6 && (rc = unlink_addr(sc, &r.v6, &k)) != 0)
				return rc;
			sc->released++;
			del = true;
		}
		if (!r.has_v4 && !r.has_v6)
			del = true;
		if (del) {
			if ((rc = wdel(sc, vs->name2vip, &k)) != 0)
				return rc;
			if (wanted)
				sc->wrec[j++] = WREC_NONE;
			continue;
		}
		if (changed) {
			rec_encode(&r, &k, buf);
			nv.mv_data = buf;
			nv.mv_size = sizeof(buf);
			if ((rc = wput(sc, vs->name2vip, &k, &nv, 0)) != 0)
				return rc;
		}
		struct crec *o = &out->r[out->n];
		*o = *c;
		if (changed)
			crec_set(o, &r);
		if (compact && !cache_name(out, name, c->len, &o->off))
			return ENOMEM;
		if (!compact)
			out->live += c->len;
		if (wanted)
			sc->wrec[j++] = (uint32_t)out->n;
		out->n++;
	}
	while (j < sc->nuw)
		sc->wrec[j++] = WREC_NONE;
	return 0;
}

/* Pass 2: every wanted name, in sorted order, gets its missing addresses. */
static int
sync_wanted(struct sync_ctx *sc, struct vip_want *wants)
{
	struct vipstore *vs = sc->vs;
	struct vcache *out = sc->out;
	struct vrec r;
	MDB_val k, v;
	uint8_t buf[VRD_SIZE];
	/* new names past every record can be appended (a first start) */
	const struct crec *last = out->n > 0 ? &out->r[out->n - 1] : NULL;
	int rc;

	for (size_t u = 0; u < sc->nuw; u++) {
		const struct want_key *w = &sc->keys[sc->uw[u]];
		uint32_t ri = sc->wrec[u];
		bool exists = ri < WREC_BAD, got, changed = false, exh = false;

		k.mv_data = (void *)(uintptr_t)w->name;
		k.mv_size = w->len;
		if (exists)
			crec_get(&out->r[ri], &r);
		else {
			if (ri == WREC_BAD)
				log_warnx("vipstore: replacing bad record for "
				    "%s", w->name);
			memset(&r, 0, sizeof(r));
			r.state = VIP_ACTIVE;
			r.since = sc->now;
		}
		if (!r.has_v4) {
			if ((rc = alloc_addr(sc, false, w->name, w->len, &r.v4,
			    &got)) != 0)
				return rc;
			if (got)
				r.has_v4 = changed = true;
			else
				exh = true;
		}
		/* a host that got no IPv4 gets no VIP at all */
		if (vs->pool6_on && !r.has_v6 && r.has_v4) {
			if ((rc = alloc_addr(sc, true, w->name, w->len, &r.v6,
			    &got)) != 0)
				return rc;
			if (got)
				r.has_v6 = changed = true;
			else
				exh = true;
		}
		if (changed)
			sc->allocated++;
		if (changed && (r.has_v4 || r.has_v6)) {
			unsigned fl = 0;
			rec_encode(&r, &k, buf);
			v.mv_data = buf;
			v.mv_size = sizeof(buf);
			if (!exists && !sc->bad && (last == NULL ||
			    name_cmp(w->name, w->len, out->names + last->off, last->len) > 0))
				fl = MDB_APPEND;
			rc = wput(sc, vs->name2vip, &k, &v, fl);
			if (rc == MDB_KEYEXIST && fl == MDB_APPEND)
				rc = wput(sc, vs->name2vip, &k, &v, 0);
			if (rc != 0)
				return rc;
			if (exists)
				crec_set(&out->r[ri], &r);
			else {
				struct crec *a = &sc->add[sc->nadd];
				memset(a, 0, sizeof(*a));
				crec_set(a, &r);
				a->len = (uint16_t)w->len;
				if (!cache_name(out, w->name, w->len, &a->off))
					return ENOMEM;
				sc->nadd++;
			}
		}
		if (exh)
			sc->exhausted++;
		/* fill the outputs of every want with this name */
		size_t end = u + 1 < sc->nuw ? sc->uw[u + 1] : sc->nkeys;
		for (size_t j = sc->uw[u]; j < end; j++) {
			struct vip_want *o = &wants[sc->keys[j].idx];
			o->has_v4 = r.has_v4;
			o->v4 = r.v4;
			o->has_v6 = r.has_v6;
			o->v6 = r.v6;
			o->exhausted = exh;
		}
	}
	return 0;
}

/* The records new in this sync merged into out (room reserved), then the
 * counts. */
static void
sync_merge(struct sync_ctx *sc)
{
	struct vcache *out = sc->out;
	size_t i = out->n, j = sc->nadd, w = out->n + sc->nadd;

	while (j > 0) {
		const struct crec *b = &sc->add[j - 1];
		if (i > 0 && name_cmp(out->names + out->r[i - 1].off, out->r[i - 1].len,
		    out->names + b->off, b->len) > 0)
			out->r[--w] = out->r[--i];
		else
			out->r[--w] = sc->add[--j];
	}
	out->n += sc->nadd;
	sc->active = sc->held = 0;
	for (size_t k = 0; k < out->n; k++) {
		if (out->r[k].flags & VRD_HELD)
			sc->held++;
		else
			sc->active++;
	}
}

static int
count_records(struct vipstore *vs, MDB_txn *txn, uint64_t *active,
    uint64_t *held)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct vrec r;
	int rc;

	*active = *held = 0;
	if ((rc = mdb_cursor_open(txn, vs->name2vip, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (!rec_decode(&k, &v, &r))
			continue;
		if (r.state == VIP_HELD)
			(*held)++;
		else
			(*active)++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* meta "exhausted": "TIME TOTAL\n" then the names of the hosts that got
 * no VIP in this sync, one a line, in name order, at most
 * VIPSTORE_EXHAUSTED_MAX; absent when every host got what it needs. In the
 * sync's transaction, so readers see it with the records it goes with. */
static int
put_exhausted(struct sync_ctx *sc, const struct vip_want *wants)
{
	MDB_val k = { 9, (void *)(uintptr_t)"exhausted" }, v;
	uint64_t total = 0;
	size_t len = 0;
	for (size_t i = 0; i < sc->nkeys; i++) {
		if (!wants[sc->keys[i].idx].exhausted)
			continue;
		if (total++ < VIPSTORE_EXHAUSTED_MAX)
			len += sc->keys[i].len + 1;
	}
	if (total == 0) {
		int rc = wdel(sc, sc->vs->meta, &k);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	char head[48];
	int hl = snprintf(head, sizeof(head), "%lld %llu\n", (long long)sc->now, (unsigned long long)total);
	v.mv_size = (size_t)hl + len;
	/* MDB_RESERVE: written in place, no copy of up to 250 KB */
	int rc = wput(sc, sc->vs->meta, &k, &v, MDB_RESERVE);
	if (rc != 0)
		return rc;
	char *p = v.mv_data;
	memcpy(p, head, (size_t)hl);
	p += hl;
	size_t n = 0;
	for (size_t i = 0; i < sc->nkeys && n < VIPSTORE_EXHAUSTED_MAX; i++) {
		if (!wants[sc->keys[i].idx].exhausted)
			continue;
		memcpy(p, sc->keys[i].name, sc->keys[i].len);
		p[sc->keys[i].len] = '\n';
		p += sc->keys[i].len + 1;
		n++;
	}
	return 0;
}

size_t
vipstore_exhausted(struct vipstore *vs, char **names, uint64_t *total, time_t *when)
{
	MDB_txn *txn;
	MDB_val k = { 9, (void *)(uintptr_t)"exhausted" }, v;
	char *copy = NULL;
	size_t len = 0;
	*names = NULL;
	*total = 0;
	*when = 0;
	if (mdb_txn_begin(vs->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	/* copied out, parsed after the transaction (see vipstore_list) */
	if (mdb_get(txn, vs->meta, &k, &v) == 0 && v.mv_size > 0 && (copy = malloc(v.mv_size + 1)) != NULL) {
		memcpy(copy, v.mv_data, v.mv_size);
		len = v.mv_size;
		copy[len] = '\0';
	}
	mdb_txn_abort(txn);
	if (copy == NULL)
		return 0;
	long long t;
	unsigned long long tot;
	char *nl = memchr(copy, '\n', len);
	if (nl == NULL || sscanf(copy, "%lld %llu", &t, &tot) != 2) {
		free(copy);
		return 0;
	}
	*when = (time_t)t;
	*total = tot;
	/* the names, NUL-separated, at the start of the buffer */
	size_t n = 0, o = 0;
	for (char *p = nl + 1; p < copy + len;) {
		char *e = memchr(p, '\n', (size_t)(copy + len - p));
		size_t l = e ? (size_t)(e - p) : (size_t)(copy + len - p);
		if (l > 0 && l <= SEDNS_MAX_HOST) {
			memmove(copy + o, p, l);
			copy[o + l] = '\0';
			o += l + 1;
			n++;
		}
		p += l + 1;
	}
	if (n == 0) {
		free(copy);
		return 0;
	}
	*names = copy;
	return n;
}

/*
 * The wanted names, normalized (a copy only for a name that needs one),
 * sorted (skipped when they come sorted, as the registry's do), and the
 * first key of each unique name.
 */
static bool
sync_keys(struct sync_ctx *sc, const struct vip_want *wants, size_t nwants)
{
	struct sync_scratch *s = &sc->vs->scr;
	size_t n = 0, extra = 0, u = 0;
	bool sorted = true;
	void *np;

	if ((np = grow(s->wk, &s->wkcap, nwants + 1, sizeof(*s->wk))) == NULL)
		return false;
	s->wk = np;
	for (size_t i = 0; i < nwants; i++) {
		const char *h = wants[i].host, *p;
		bool dirty = false;
		size_t len;

		if (h == NULL) {
			log_warnx("vipstore: ignoring bad host name \"\"");
			continue;
		}
		for (p = h; *p; p++)
			dirty |= *p >= 'A' && *p <= 'Z';
		len = (size_t)(p - h);
		if (len > 0 && h[len - 1] == '.') {
			len--;
			dirty = true;
		}
		if (len == 0 || len > SEDNS_MAX_HOST || i > UINT32_MAX) {
			log_warnx("vipstore: ignoring bad host name \"%.*s\"",
			    SEDNS_MAX_HOST, h);
			continue;
		}
		s->wk[n].name = dirty ? NULL : h;
		s->wk[n].len = (uint32_t)len;
		s->wk[n].idx = (uint32_t)i;
		if (dirty)
			extra += len + 1;
		n++;
	}
	if (extra > 0) {
		size_t off = 0, l;
		if ((np = grow(s->names, &s->namescap, extra, 1)) == NULL)
			return false;
		s->names = np;
		for (size_t i = 0; i < n; i++) {
			if (s->wk[i].name != NULL)
				continue;
			normalize_host(wants[s->wk[i].idx].host, s->names + off, &l);
			s->wk[i].name = s->names + off;
			off += l + 1;
		}
	}
	for (size_t i = 1; i < n && sorted; i++)
		sorted = want_key_cmp(&s->wk[i - 1], &s->wk[i]) < 0;
	if (!sorted)
		qsort(s->wk, n, sizeof(*s->wk), want_key_cmp);
	if ((np = grow(s->uw, &s->uwcap, n + 1, sizeof(*s->uw))) == NULL)
		return false;
	s->uw = np;
	if ((np = grow(s->wrec, &s->wreccap, n + 1, sizeof(*s->wrec))) == NULL)
		return false;
	s->wrec = np;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || name_cmp(s->wk[i - 1].name, s->wk[i - 1].len,
		    s->wk[i].name, s->wk[i].len) != 0)
			s->uw[u++] = (uint32_t)i;
	sc->keys = s->wk;
	sc->nkeys = n;
	sc->uw = s->uw;
	sc->nuw = u;
	sc->wrec = s->wrec;
	return true;
}

/* The reserved addresses that could be a VIP (inside a pool), sorted,
 * IPv4 ones with their unused bytes zeroed. */
static bool
sync_reserved(struct sync_ctx *sc, const struct netaddr *reserved, size_t nreserved)
{
	struct vipstore *vs = sc->vs;
	struct sync_scratch *s = &vs->scr;
	size_t n = 0;
	void *np;

	if ((np = grow(s->res, &s->rescap, nreserved + 1, sizeof(*s->res))) == NULL)
		return false;
	s->res = np;
	for (size_t i = 0; i < nreserved; i++) {
		struct netaddr a = reserved[i];
		if (a.family == AF_INET)
			memset(a.a + 4, 0, 12);
		if (!netprefix_contains(&vs->pool4, &a) &&
		    !(vs->pool6_on && netprefix_contains(&vs->pool6, &a)))
			continue;
		s->res[n++] = a;
	}
	if (n > 1)
		qsort(s->res, n, sizeof(*s->res), netaddr_cmp);
	sc->reserved = s->res;
	sc->nreserved = n;
	return true;
}

/* Room for everything one attempt of a sync may write into its buffers. */
static bool
sync_room(struct sync_ctx *sc)
{
	struct vipstore *vs = sc->vs;
	struct sync_scratch *s = &vs->scr;
	size_t need = sc->old->n + sc->nuw + 1;
	void *np;

	if ((np = grow(sc->out->r, &sc->out->cap, need, sizeof(*sc->out->r))) == NULL)
		return false;
	sc->out->r = np;
	if ((np = grow(s->add, &s->addcap, sc->nuw + 1, sizeof(*s->add))) == NULL)
		return false;
	s->add = np;
	sc->add = s->add;
	sc->use_bits = sc->maxoff4 > 0 && sc->maxoff4 < BITS_MAX_POOL;
	if (sc->use_bits) {
		size_t words = (size_t)((sc->maxoff4 + 64) / 64);
		if ((np = grow(s->bits, &s->bitscap, words, sizeof(*s->bits))) == NULL)
			return false;
		s->bits = np;
		sc->bits = s->bits;
	}
	return true;
}

/* The copy the sync built becomes the current one, kept when it may be
 * (no bad record) and the file is at the transaction id it expects. */
static void
cache_install(struct vipstore *vs, bool ok, uint64_t txnid, bool wrote, bool settled, struct netaddr *res,
    size_t nres)
{
	MDB_envinfo info;
	/* a transaction that wrote nothing does not move the id */
	uint64_t gen = wrote ? txnid : txnid - 1;

	vs->settled = settled && (nres == 0 || res != NULL);
	free(vs->res);
	vs->res = res;
	vs->nres = res ? nres : 0;
	vs->cur ^= 1;
	vs->cache_gen = gen;
	vs->cache_ok = ok && mdb_env_info(vs->env, &info) == 0 &&
	    (uint64_t)info.me_last_txnid == gen;
}

/* A copy of a sync's reserved addresses (NULL for none, or out of memory:
 * cache_install then marks the copy unsettled). */
static struct netaddr *
res_dup(const struct netaddr *r, size_t n)
{
	struct netaddr *c = n ? malloc(n * sizeof(*c)) : NULL;
	if (c != NULL)
		memcpy(c, r, n * sizeof(*c));
	return c;
}

bool
vipstore_sync(struct vipstore *vs, struct vip_want *wants, size_t nwants,
    const struct netaddr *reserved, size_t nreserved, time_t now,
    struct vipstore_stats *stats, char *err, size_t errlen)
{
	struct sync_ctx sc;
	int rc;

	memset(&sc, 0, sizeof(sc));
	sc.vs = vs;
	sc.now = now;
	for (size_t i = 0; i < nwants; i++) {
		wants[i].has_v4 = wants[i].has_v6 = false;
		wants[i].exhausted = false;
		memset(&wants[i].v4, 0, sizeof(wants[i].v4));
		memset(&wants[i].v6, 0, sizeof(wants[i].v6));
	}
	if (vs->readonly) {
		seterr(err, errlen, "VIP store %s is open read-only", vs->path);
		return false;
	}
	vs->pend_set = false;
	if (!sync_keys(&sc, wants, nwants) ||
	    !sync_reserved(&sc, reserved, nreserved)) {
		seterr(err, errlen, "out of memory");
		return false;
	}
	sc.base4 = be32(vs->pool4.addr.a);
	sc.maxoff4 = pool_maxoff(&vs->pool4);

	for (;;) {
		/* readers that died (a `sedns vips | head`) pin old pages:
		 * clear them before writing */
		int dead = 0;
		mdb_reader_check(vs->env, &dead);
		sc.full4 = sc.full6 = sc.bad = sc.wrote = sc.bits_built = false;
		sc.allocated = sc.released = sc.exhausted = 0;
		sc.nadd = 0;
		if ((rc = mdb_txn_begin(vs->env, NULL, 0, &sc.txn)) != 0)
			goto fail;
		/* the copy is the file unless someone wrote since */
		rc = 0;
		if (!vs->cache_ok || vs->cache_gen != (uint64_t)mdb_txn_id(sc.txn) - 1)
			rc = cache_load(&sc);
		sc.old = &vs->cache[vs->cur];
		sc.out = &vs->cache[vs->cur ^ 1];
		if (rc == 0 && !sync_room(&sc))
			rc = ENOMEM;
		sc.cn = sc.cv = NULL;
		if (rc == 0 && (rc = mdb_cursor_open(sc.txn, vs->name2vip, &sc.cn)) != 0)
			sc.cn = NULL;
		if (rc == 0 && (rc = mdb_cursor_open(sc.txn, vs->vip2name, &sc.cv)) != 0)
			sc.cv = NULL;
		if (rc == 0 && (rc = sync_existing(&sc)) == 0 && (rc = sync_wanted(&sc, wants)) == 0 &&
		    (rc = put_exhausted(&sc, wants)) == 0)
			sync_merge(&sc);
		if (sc.cn != NULL)
			mdb_cursor_close(sc.cn);
		if (sc.cv != NULL)
			mdb_cursor_close(sc.cv);
		sc.cn = sc.cv = NULL;
		if (rc == 0 && vs->defer) {
			vs->pending = sc.txn; /* committed or aborted by the caller */
			vs->pend_set = true;
			vs->pend_ok = !sc.bad;
			vs->pend_txnid = (uint64_t)mdb_txn_id(sc.txn);
			vs->pend_wrote = sc.wrote;
			vs->pend_settled = sc.exhausted == 0;
			free(vs->pend_res);
			vs->pend_res = res_dup(reserved, nreserved);
			vs->npend_res = nreserved;
			break;
		}
		if (rc == 0) {
			uint64_t id = (uint64_t)mdb_txn_id(sc.txn);
			/* a failed commit has freed the transaction already */
			if ((rc = mdb_txn_commit(sc.txn)) == 0) {
				cache_install(vs, !sc.bad, id, sc.wrote, sc.exhausted == 0, res_dup(reserved, nreserved),
				    nreserved);
				break;
			}
			vs->cache_ok = false;
		} else {
			mdb_txn_abort(sc.txn);
		}
		/* the map is full: grow it (no transaction open now) and redo */
		if (rc != MDB_MAP_FULL || vs->mapsize >= VIPSTORE_MAX_MAPSIZE ||
		    mdb_env_set_mapsize(vs->env, vs->mapsize * 2) != 0)
			goto fail;
		vs->mapsize *= 2;
		log_info("VIP store %s: map grown to %zu MiB", vs->path, vs->mapsize >> 20);
	}
	/* the daemon reads these from its loop while a reload syncs on the
	 * build thread */
	pthread_mutex_lock(&vs->last_mu);
	memset(&vs->last, 0, sizeof(vs->last));
	vs->last.active = sc.active;
	vs->last.held = sc.held;
	vs->last.pool_size = vipstore_pool_size(vs);
	vs->last.allocated = sc.allocated;
	vs->last.released = sc.released;
	vs->last.exhausted = sc.exhausted;
	vs->last_set = true;
	pthread_mutex_unlock(&vs->last_mu);
	if (stats != NULL)
		*stats = vs->last;
	return true;
fail:
	{
		char w[160];
		seterr(err, errlen, "VIP store %s: %s%s", vs->path, rc_words(vs, rc, w, sizeof(w)),
		    rc == MDB_MAP_FULL ? " (database map full)" : "");
	}
	for (size_t i = 0; i < nwants; i++) {
		wants[i].has_v4 = wants[i].has_v6 = false;
		wants[i].exhausted = false;
	}
	return false;
}

bool
vipstore_unchanged(struct vipstore *vs, size_t n, const struct netaddr *reserved, size_t nreserved, time_t now,
    struct vipstore_stats *stats)
{
	MDB_envinfo info;
	const struct vcache *c = &vs->cache[vs->cur];
	uint64_t active = 0, held = 0;

	if (vs->readonly || vs->pending != NULL || !vs->cache_ok || !vs->settled ||
	    mdb_env_info(vs->env, &info) != 0 || (uint64_t)info.me_last_txnid != vs->cache_gen ||
	    nreserved != vs->nres)
		return false;
	for (size_t i = 0; i < nreserved; i++)
		if (!netaddr_equal(&reserved[i], &vs->res[i]))
			return false;
	/* a hold that ran out is released by a sync */
	for (size_t i = 0; i < c->n; i++) {
		if (c->r[i].flags & CREC_BAD)
			return false;
		if (!(c->r[i].flags & VRD_HELD)) {
			active++;
			continue;
		}
		if ((int64_t)now - c->r[i].since >= (int64_t)vs->hold)
			return false;
		held++;
	}
	/* the caller found each of its n distinct names active: with as many
	 * active records, the wanted names are exactly the active ones */
	if (active != n)
		return false;
	pthread_mutex_lock(&vs->last_mu);
	memset(&vs->last, 0, sizeof(vs->last));
	vs->last.active = active;
	vs->last.held = held;
	vs->last.pool_size = vipstore_pool_size(vs);
	vs->last.unchanged = true;
	vs->last_set = true;
	pthread_mutex_unlock(&vs->last_mu);
	if (stats != NULL)
		*stats = vs->last;
	return true;
}

bool
vipstore_cached(const struct vipstore *vs, const char *host, struct netaddr *v4, bool *has_v4,
    struct netaddr *v6, bool *has_v6)
{
	const struct vcache *c = &vs->cache[vs->cur];
	size_t len = strlen(host), lo = 0, hi = c->n;

	*has_v4 = *has_v6 = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct crec *r = &c->r[mid];
		int cmp = name_cmp(c->names + r->off, r->len, host, len);
		if (cmp < 0) {
			lo = mid + 1;
			continue;
		}
		if (cmp > 0) {
			hi = mid;
			continue;
		}
		if (r->flags & (CREC_BAD | VRD_HELD))
			return false;
		if (r->flags & VRD_HAS_V4) {
			memset(v4, 0, sizeof(*v4));
			v4->family = AF_INET;
			memcpy(v4->a, r->v4, 4);
			*has_v4 = true;
		}
		if (r->flags & VRD_HAS_V6) {
			memset(v6, 0, sizeof(*v6));
			v6->family = AF_INET6;
			memcpy(v6->a, r->v6, 16);
			*has_v6 = true;
		}
		return *has_v4 || *has_v6;
	}
	return false;
}

struct vip_want *
vipstore_wants(struct vipstore *vs, size_t n)
{
	struct vip_want *w = grow(vs->scr.wants, &vs->scr.wantscap, n + 1, sizeof(*w));

	if (w != NULL)
		vs->scr.wants = w;
	return w;
}

static void
scratch_free(struct sync_scratch *s)
{
	ungrow(s->wk, &s->wkcap, sizeof(*s->wk));
	ungrow(s->names, &s->namescap, 1);
	ungrow(s->uw, &s->uwcap, sizeof(*s->uw));
	ungrow(s->wrec, &s->wreccap, sizeof(*s->wrec));
	ungrow(s->add, &s->addcap, sizeof(*s->add));
	ungrow(s->res, &s->rescap, sizeof(*s->res));
	ungrow(s->bits, &s->bitscap, sizeof(*s->bits));
	ungrow(s->wants, &s->wantscap, sizeof(*s->wants));
	memset(s, 0, sizeof(*s));
}

static void
vcache_free(struct vcache *c)
{
	ungrow(c->r, &c->cap, sizeof(*c->r));
	ungrow(c->names, &c->ncap, 1);
	memset(c, 0, sizeof(*c));
}

void
vipstore_trim(struct vipstore *vs)
{
	MDB_envinfo info;

	if (vs->pending != NULL)
		return;
	scratch_free(&vs->scr);
	vcache_free(&vs->cache[vs->cur ^ 1]);
	/* without MDB_WRITEMAP the map is read-only and shared: dropped pages
	 * are read back from the page cache when a transaction touches them */
	if (mdb_env_info(vs->env, &info) == 0 && info.me_mapaddr != NULL && info.me_mapsize > 0)
		(void)madvise(info.me_mapaddr, info.me_mapsize, MADV_DONTNEED);
}

void
vipstore_set_deferred(struct vipstore *vs, bool on)
{
	vs->defer = on;
}

bool
vipstore_commit(struct vipstore *vs, char *err, size_t errlen)
{
	if (vs->pending == NULL)
		return true;
	int rc = mdb_txn_commit(vs->pending);
	vs->pending = NULL;
	if (rc != 0) {
		char w[160];
		vs->pend_set = false;
		vs->cache_ok = false;
		free(vs->pend_res);
		vs->pend_res = NULL;
		seterr(err, errlen, "VIP store %s: %s", vs->path, rc_words(vs, rc, w, sizeof(w)));
		return false;
	}
	if (vs->pend_set) {
		cache_install(vs, vs->pend_ok, vs->pend_txnid, vs->pend_wrote, vs->pend_settled, vs->pend_res,
		    vs->npend_res);
		vs->pend_res = NULL;
	}
	vs->pend_set = false;
	vs->disk_error = false;
	return true;
}

void
vipstore_abort(struct vipstore *vs)
{
	if (vs->pending != NULL) {
		mdb_txn_abort(vs->pending);
		/* its counts never landed */
		pthread_mutex_lock(&vs->last_mu);
		vs->last_set = false;
		pthread_mutex_unlock(&vs->last_mu);
	}
	/* the current copy is still the file */
	vs->pend_set = false;
	vs->pending = NULL;
	free(vs->pend_res);
	vs->pend_res = NULL;
}

bool
vipstore_in_pool(const struct vipstore *vs, const struct netaddr *a)
{
	return netprefix_contains(&vs->pool4, a) || (vs->pool6_on && netprefix_contains(&vs->pool6, a));
}

bool
vipstore_owner(struct vipstore *vs, const struct netaddr *a, char *host, size_t hostlen, enum vip_state *state)
{
	MDB_txn *txn;
	MDB_val k, v, k2, v2;
	struct vrec r;
	bool found = false;

	if (mdb_txn_begin(vs->env, NULL, MDB_RDONLY, &txn) != 0)
		return false;
	addr_key(a, &k);
	if (mdb_get(txn, vs->vip2name, &k, &v) == 0) {
		k2 = v;
		if (mdb_get(txn, vs->name2vip, &k2, &v2) == 0 && rec_decode(&k2, &v2, &r)) {
			found = true;
			snprintf(host, hostlen, "%.*s", (int)v.mv_size, (const char *)v.mv_data);
			*state = r.state;
		}
	}
	mdb_txn_abort(txn);
	return found;
}

bool
vipstore_lookup(struct vipstore *vs, const char *host, struct netaddr *v4,
    bool *has_v4, struct netaddr *v6, bool *has_v6)
{
	char name[SEDNS_MAX_HOST + 1];
	size_t len;
	MDB_txn *txn;
	MDB_val k, v;
	struct vrec r;
	bool found = false;

	*has_v4 = *has_v6 = false;
	if (!normalize_host(host, name, &len))
		return false;
	if (mdb_txn_begin(vs->env, NULL, MDB_RDONLY, &txn) != 0)
		return false;
	k.mv_data = name;
	k.mv_size = len;
	if (mdb_get(txn, vs->name2vip, &k, &v) == 0 && rec_decode(&k, &v, &r)) {
		found = true;
		*has_v4 = r.has_v4;
		*has_v6 = r.has_v6;
		if (v4 != NULL)
			*v4 = r.v4;
		if (v6 != NULL)
			*v6 = r.v6;
	}
	mdb_txn_abort(txn);
	return found;
}

bool
vipstore_lookup_wants(struct vipstore *vs, struct vip_want *wants, size_t n)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct vrec r;
	char name[SEDNS_MAX_HOST + 1];
	size_t len;

	for (size_t i = 0; i < n; i++) {
		wants[i].has_v4 = wants[i].has_v6 = wants[i].exhausted = false;
		memset(&wants[i].v4, 0, sizeof(wants[i].v4));
		memset(&wants[i].v6, 0, sizeof(wants[i].v6));
	}
	if (mdb_txn_begin(vs->env, NULL, MDB_RDONLY, &txn) != 0)
		return false;
	if (mdb_cursor_open(txn, vs->name2vip, &cur) != 0) {
		mdb_txn_abort(txn);
		return false;
	}
	/* a cursor: hosts in name order are found on its page mostly */
	for (size_t i = 0; i < n; i++) {
		if (!normalize_host(wants[i].host, name, &len))
			continue;
		k.mv_data = name;
		k.mv_size = len;
		if (mdb_cursor_get(cur, &k, &v, MDB_SET) != 0 || !rec_decode(&k, &v, &r))
			continue;
		wants[i].has_v4 = r.has_v4;
		wants[i].v4 = r.v4;
		wants[i].has_v6 = r.has_v6;
		wants[i].v6 = r.v6;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return true;
}

bool
vipstore_list(struct vipstore *vs,
    bool (*cb)(const struct vip_record *rec, void *arg), void *arg,
    char *err, size_t errlen)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct vip_record r;
	struct vrec d;
	int rc;

	if ((rc = mdb_txn_begin(vs->env, NULL, MDB_RDONLY, &txn)) != 0)
		goto fail;
	if ((rc = mdb_cursor_open(txn, vs->name2vip, &cur)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size == 0 || k.mv_size > SEDNS_MAX_HOST ||
		    !rec_decode(&k, &v, &d)) {
			log_warnx("vipstore: skipping bad record (key %zu "
			    "bytes, value %zu bytes)", k.mv_size, v.mv_size);
			continue;
		}
		r.has_v4 = d.has_v4;
		r.has_v6 = d.has_v6;
		r.v4 = d.v4;
		r.v6 = d.v6;
		r.state = d.state;
		r.since = d.since;
		memcpy(r.host, k.mv_data, k.mv_size);
		r.host[k.mv_size] = '\0';
		if (!cb(&r, arg)) {
			rc = MDB_NOTFOUND;
			break;
		}
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return true;
fail:
	seterr(err, errlen, "VIP store %s: %s", vs->path, mdb_strerror(rc));
	return false;
}

bool
vipstore_stats_cached(struct vipstore *vs, struct vipstore_stats *st)
{
	pthread_mutex_lock(&vs->last_mu);
	*st = vs->last;
	bool have = vs->last_set;
	pthread_mutex_unlock(&vs->last_mu);
	st->pool_size = vipstore_pool_size(vs);
	return have;
}

bool
vipstore_stats(struct vipstore *vs, struct vipstore_stats *st)
{
	MDB_txn *txn;
	int rc;

	pthread_mutex_lock(&vs->last_mu);
	*st = vs->last;
	pthread_mutex_unlock(&vs->last_mu);
	st->pool_size = vipstore_pool_size(vs);
	if (mdb_txn_begin(vs->env, NULL, MDB_RDONLY, &txn) != 0)
		return false;
	rc = count_records(vs, txn, &st->active, &st->held);
	mdb_txn_abort(txn);
	return rc == 0;
}

/* A stored name for a message: at most SEDNS_MAX_HOST bytes, control
 * and non-ASCII bytes escaped (a corrupt key must not write to a terminal). */
static void
val_str(const MDB_val *v, char *out, size_t cap)
{
	size_t n = v->mv_size > SEDNS_MAX_HOST ? SEDNS_MAX_HOST : v->mv_size, o = 0;
	const unsigned char *p = v->mv_data;

	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
	}
	out[o] = '\0';
}

bool
vipstore_verify(struct vipstore *vs, char *err, size_t errlen)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k, v, k2, v2;
	struct vrec r;
	char a[NETADDR_STRLEN];
	int rc;
	bool ok = false;
	time_t now = time(NULL);

	if ((rc = mdb_txn_begin(vs->env, NULL, MDB_RDONLY, &txn)) != 0) {
		seterr(err, errlen, "%s: %s", vs->path, mdb_strerror(rc));
		return false;
	}
	if ((rc = mdb_cursor_open(txn, vs->name2vip, &cur)) != 0)
		goto lmdberr;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char kn[4 * SEDNS_MAX_HOST + 1], vn[4 * SEDNS_MAX_HOST + 1];
		val_str(&k, kn, sizeof(kn));
		if (k.mv_size == 0 || k.mv_size > SEDNS_MAX_HOST ||
		    !rec_decode(&k, &v, &r)) {
			seterr(err, errlen, "name2vip: bad record %s "
			    "(value %zu bytes)", kn,
			    v.mv_size);
			goto out;
		}
		if (!r.has_v4 && !r.has_v6) {
			seterr(err, errlen, "name2vip: %s has no address", kn);
			goto out;
		}
		/* a clock set back a little is not corruption; a year ahead
		 * or before 1970 is a flipped bit in the time */
		if (r.since < 0 || (int64_t)r.since > (int64_t)now + 366 * 86400) {
			seterr(err, errlen, "name2vip: %s has an impossible %s time %lld", kn,
			    r.state == VIP_HELD ? "hold" : "allocation", (long long)r.since);
			goto out;
		}
		for (int fam = 0; fam < 2; fam++) {
			const struct netaddr *x = fam == 0 ? &r.v4 : &r.v6;
			const struct netprefix *p = fam == 0 ? &vs->pool4 :
			    &vs->pool6;
			if (fam == 0 ? !r.has_v4 : !r.has_v6)
				continue;
			netaddr_fmt(x, a, sizeof(a));
			if ((fam == 0 || vs->pool6_on) && !addr_usable(p, x)) {
				seterr(err, errlen, "name2vip: %s has %s, "
				    "outside the pool or not usable", kn, a);
				goto out;
			}
			addr_key(x, &k2);
			rc = mdb_get(txn, vs->vip2name, &k2, &v2);
			if (rc == MDB_NOTFOUND || (rc == 0 &&
			    (v2.mv_size != k.mv_size || memcmp(v2.mv_data,
			    k.mv_data, k.mv_size) != 0))) {
				if (rc == 0)
					val_str(&v2, vn, sizeof(vn));
				seterr(err, errlen, "name2vip: %s has %s but "
				    "vip2name says %s", kn, a, rc == 0 ? vn : "<none>");
				goto out;
			}
			if (rc != 0)
				goto lmdberr;
		}
	}
	if (rc != MDB_NOTFOUND)
		goto lmdberr;
	mdb_cursor_close(cur);
	if ((rc = mdb_cursor_open(txn, vs->vip2name, &cur)) != 0) {
		cur = NULL;
		goto lmdberr;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct netaddr x;
		char vn[4 * SEDNS_MAX_HOST + 1];
		val_str(&v, vn, sizeof(vn));
		if (k.mv_size != 4 && k.mv_size != 16) {
			seterr(err, errlen, "vip2name: key of %zu bytes",
			    k.mv_size);
			goto out;
		}
		memset(&x, 0, sizeof(x));
		x.family = k.mv_size == 4 ? AF_INET : AF_INET6;
		memcpy(x.a, k.mv_data, k.mv_size);
		netaddr_fmt(&x, a, sizeof(a));
		rc = mdb_get(txn, vs->name2vip, &v, &v2);
		if (rc == MDB_NOTFOUND || (rc == 0 && (!rec_decode(&v, &v2, &r) ||
		    !(x.family == AF_INET ? r.has_v4 &&
		    netaddr_equal(&r.v4, &x) : r.has_v6 &&
		    netaddr_equal(&r.v6, &x))))) {
			seterr(err, errlen, "vip2name: %s -> %s, but that "
			    "name does not hold it", a, vn);
			goto out;
		}
		if (rc != 0)
			goto lmdberr;
	}
	if (rc != MDB_NOTFOUND)
		goto lmdberr;
	mdb_cursor_close(cur);
	/* the free list: a flipped page number there would hand a live page
	 * to the next write. Each record is a count then that many page
	 * numbers, all below the file's last page. */
	MDB_envinfo info;
	if ((rc = mdb_env_info(vs->env, &info)) != 0 || (rc = mdb_cursor_open(txn, 0, &cur)) != 0) {
		cur = NULL;
		goto lmdberr;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t cnt;
		if (v.mv_size < sizeof(size_t) || v.mv_size % sizeof(size_t) != 0 ||
		    (memcpy(&cnt, v.mv_data, sizeof(cnt)), cnt != v.mv_size / sizeof(size_t) - 1)) {
			seterr(err, errlen, "free list: record of %zu bytes does not hold its page count", v.mv_size);
			goto out;
		}
		for (size_t i = 1; i <= cnt; i++) {
			size_t pg;
			memcpy(&pg, (const char *)v.mv_data + i * sizeof(size_t), sizeof(pg));
			if (pg < 2 || pg > info.me_last_pgno) {
				seterr(err, errlen, "free list: page %zu is outside the file (last page %zu)", pg,
				    info.me_last_pgno);
				goto out;
			}
		}
	}
	if (rc != MDB_NOTFOUND)
		goto lmdberr;
	ok = true;
	goto out;
lmdberr:
	seterr(err, errlen, "%s: %s", vs->path, mdb_strerror(rc));
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return ok;
}

static int
meta_get_str(MDB_txn *txn, MDB_dbi dbi, const char *key, char *out,
    size_t outlen, bool *found)
{
	MDB_val k, v;
	int rc;

	*found = false;
	out[0] = '\0';
	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = strlen(key);
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	*found = true;
	if (v.mv_size >= outlen)
		v.mv_size = outlen - 1;
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = '\0';
	return 0;
}

static int
meta_put_str(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *val)
{
	MDB_val k, v;

	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = strlen(key);
	v.mv_data = (void *)(uintptr_t)val;
	v.mv_size = strlen(val);
	return mdb_put(txn, dbi, &k, &v, 0);
}

static int
open_dbis(struct vipstore *vs, MDB_txn *txn, unsigned flags)
{
	int rc;

	if ((rc = mdb_dbi_open(txn, "name2vip", flags, &vs->name2vip)) != 0 ||
	    (rc = mdb_dbi_open(txn, "vip2name", flags, &vs->vip2name)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", flags, &vs->meta)) != 0)
		return rc;
	return 0;
}

/*
 * Checks schema and pools against the database. Writable: records them on
 * first use, refuses a changed pool (or drops everything with reallocate).
 * Read-only: adopts the recorded pools, since listing needs no config.
 */
static bool
check_meta(struct vipstore *vs, const struct vipstore_opts *opts, char *err,
    size_t errlen)
{
	MDB_txn *txn;
	char buf[64], want4[NETPREFIX_STRLEN], want6[NETPREFIX_STRLEN];
	char schema[16];
	bool found, f4, f6;
	struct netprefix p;
	int rc;

	netprefix_fmt(&vs->pool4, want4, sizeof(want4));
	netprefix_fmt(&vs->pool6, want6, sizeof(want6));
	if ((rc = mdb_txn_begin(vs->env, NULL, vs->readonly ? MDB_RDONLY : 0,
	    &txn)) != 0)
		goto lmdberr;
	if ((rc = open_dbis(vs, txn, vs->readonly ? 0 : MDB_CREATE)) != 0) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND && vs->readonly) {
			seterr(err, errlen, "VIP store %s is not initialised "
			    "(the daemon has never written it)", vs->path);
			return false;
		}
		goto lmdberr;
	}
	if ((rc = meta_get_str(txn, vs->meta, "schema", schema,
	    sizeof(schema), &found)) != 0)
		goto abort;
	if (found && strtol(schema, NULL, 10) != VIPSTORE_SCHEMA) {
		seterr(err, errlen, "VIP store %s has schema %s, this sedns "
		    "understands %d", vs->path, schema, VIPSTORE_SCHEMA);
		mdb_txn_abort(txn);
		return false;
	}
	if (vs->readonly) {
		if ((rc = meta_get_str(txn, vs->meta, "pool4", buf,
		    sizeof(buf), &found)) != 0)
			goto abort;
		if (found && netprefix_parse(buf, true, &p) &&
		    p.addr.family == AF_INET)
			vs->pool4 = p;
		if ((rc = meta_get_str(txn, vs->meta, "pool6", buf,
		    sizeof(buf), &found)) != 0)
			goto abort;
		vs->pool6_on = false;
		if (found && netprefix_parse(buf, true, &p) &&
		    p.addr.family == AF_INET6) {
			vs->pool6 = p;
			vs->pool6_on = true;
		}
		/* commit keeps the dbi handles open for later read txns */
		if ((rc = mdb_txn_commit(txn)) != 0)
			goto lmdberr;
		return true;
	}

	if (!found) {
		snprintf(schema, sizeof(schema), "%d", VIPSTORE_SCHEMA);
		if ((rc = meta_put_str(txn, vs->meta, "schema", schema)) != 0)
			goto abort;
	}
	if ((rc = meta_get_str(txn, vs->meta, "pool4", buf, sizeof(buf),
	    &f4)) != 0)
		goto abort;
	bool change4 = f4 && strcmp(buf, want4) != 0;
	char old4[64];
	snprintf(old4, sizeof(old4), "%s", buf);
	if ((rc = meta_get_str(txn, vs->meta, "pool6", buf, sizeof(buf),
	    &f6)) != 0)
		goto abort;
	bool change6 = f6 && vs->pool6_on && strcmp(buf, want6) != 0;
	if ((change4 || change6) && !opts->reallocate) {
		seterr(err, errlen, "VIP pool changed: %s was allocated from "
		    "%s but the configuration says %s; refusing to move every "
		    "VIP. Restore the old pool, or start once with "
		    "--reallocate to drop all allocations and allocate again "
		    "from %s", vs->path, change4 ? old4 : buf,
		    change4 ? want4 : want6, change4 ? want4 : want6);
		mdb_txn_abort(txn);
		return false;
	}
	if (change4 || change6) {
		MDB_stat st;
		if ((rc = mdb_stat(txn, vs->name2vip, &st)) != 0)
			goto abort;
		log_warnx("VIP pool changed (%s -> %s), --reallocate given: "
		    "dropping %zu allocations", change4 ? old4 : buf,
		    change4 ? want4 : want6, st.ms_entries);
		if ((rc = mdb_drop(txn, vs->name2vip, 0)) != 0 ||
		    (rc = mdb_drop(txn, vs->vip2name, 0)) != 0)
			goto abort;
	}
	if (!f4 || change4) {
		if ((rc = meta_put_str(txn, vs->meta, "pool4", want4)) != 0)
			goto abort;
	}
	if (vs->pool6_on && (!f6 || change6)) {
		if ((rc = meta_put_str(txn, vs->meta, "pool6", want6)) != 0)
			goto abort;
	} else if (!vs->pool6_on && f6) {
		/* v6 turned off: the next sync strips the v6 addresses */
		MDB_val k = { 5, (void *)(uintptr_t)"pool6" };
		if ((rc = mdb_del(txn, vs->meta, &k, NULL)) != 0)
			goto abort;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto lmdberr;
	return true;
abort:
	mdb_txn_abort(txn);
lmdberr:
	{
		char w[160];
		seterr(err, errlen, "VIP store %s: %s", vs->path, rc_words(vs, rc, w, sizeof(w)));
	}
	return false;
}

static bool
mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return false;
		*p = '/';
	}
	return mkdir(buf, 0755) == 0 || errno == EEXIST;
}

/*
 * LMDB maps the whole file and trusts it: a truncated vips.mdb is a SIGBUS
 * inside liblmdb. Before opening, compare the file's size with what its
 * newest meta page says it holds (LMDB 0.9 layout: meta pages at the start
 * of pages 0 and 1, after a 16-byte page header: magic at +0, the page
 * size in the first MDB_db's md_pad at +24, mm_last_pg at +120, mm_txnid
 * at +128). A missing or empty file is fine: it starts empty.
 */
static bool
check_file_size(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* absent: LMDB creates it */
	struct stat st;
	uint8_t pg[2][160];
	bool ok = true;
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		close(fd);
		return true;
	}
	uint64_t best_txn = 0, last_pg = 0, psize = 0;
	bool any = false;
	ssize_t n0 = pread(fd, pg[0], sizeof(pg[0]), 0);
	uint32_t ps = 0;
	if (n0 == (ssize_t)sizeof(pg[0]))
		memcpy(&ps, pg[0] + 16 + 24, 4);
	for (int m = 0; m < 2; m++) {
		off_t at = m == 0 ? 0 : (off_t)ps;
		if (m == 1 && (ps < 512 || ps > 65536 || pread(fd, pg[1], sizeof(pg[1]), at) != (ssize_t)sizeof(pg[1])))
			continue;
		if (m == 0 && n0 != (ssize_t)sizeof(pg[0]))
			continue;
		uint32_t magic;
		uint64_t lp, txn;
		memcpy(&magic, pg[m] + 16, 4);
		memcpy(&lp, pg[m] + 16 + 120, 8);
		memcpy(&txn, pg[m] + 16 + 128, 8);
		if (magic != 0xBEEFC0DE)
			continue;
		if (!any || txn > best_txn) {
			best_txn = txn;
			last_pg = lp;
			psize = ps;
			any = true;
		}
	}
	close(fd);
	if (!any || psize < 512 || psize > 65536) {
		seterr(err, errlen, "VIP store %s is not a readable LMDB file (%lld bytes, no valid meta page); restore "
		    "it from a copy, or move it away to start with an empty store (hosts may then get other VIPs)",
		    path, (long long)st.st_size);
		ok = false;
	} else if ((uint64_t)st.st_size < (last_pg + 1) * psize || (uint64_t)st.st_size < 2 * psize) {
		seterr(err, errlen, "VIP store %s is truncated: %lld bytes, its meta page needs %llu; restore it from a "
		    "copy, or move it away to start with an empty store (hosts may then get other VIPs)", path,
		    (long long)st.st_size, (unsigned long long)((last_pg + 1) * psize));
		ok = false;
	}
	return ok;
}

/* Copies src to dst through dst.tmp, fsynced and renamed, so dst is either the old file or all of the
 * new one. */
static bool
copy_atomic(const char *src, const char *dst, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8], buf[65536];
	int in = -1, out = -1;
	ssize_t n = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0 ||
	    (out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		goto fail;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				goto fail;
			}
			off += w;
		}
	}
	if (n < 0 || fsync(out) < 0 || close(out) < 0) {
		out = -1;
		goto fail;
	}
	out = -1;
	close(in);
	if (rename(tmp, dst) < 0) {
		seterr(err, errlen, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
		unlink(tmp);
		return false;
	}
	return true;
fail:
	seterr(err, errlen, "cannot copy %s to %s: %s", src, tmp, strerror(errno));
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	unlink(tmp);
	return false;
}

/*
 * A vips.mdb that is missing or empty next to a backup is the store lost
 * (a wiped file, a bad restore), not a fresh node: starting empty would
 * hand every host a new VIP. Put the backup back first.
 */
bool
vipstore_restore_if_empty(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX], bak[PATH_MAX + 8], when[32] = "?";
	struct stat st, bs;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, VIPSTORE_FILE) >= sizeof(path)) {
		seterr(err, errlen, "VIP store: path too long");
		return false;
	}
	snprintf(bak, sizeof(bak), "%s%s", path, VIPSTORE_BACKUP_SUFFIX);
	bool missing = stat(path, &st) < 0;
	if (!missing && st.st_size > 0)
		return true;
	if (stat(bak, &bs) < 0 || bs.st_size == 0)
		return true;
	struct tm tm;
	if (gmtime_r(&bs.st_mtime, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!copy_atomic(bak, path, err, errlen))
		return false;
	log_warnx("VIP store %s was %s: restored from the backup %s (written %s); VIPs allocated after that are "
	    "allocated again", path, missing ? "missing" : "empty", bak, when);
	return true;
}

bool
vipstore_backup(struct vipstore *vs, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 16], bak[PATH_MAX + 8];
	int fd, rc;

	snprintf(bak, sizeof(bak), "%s%s", vs->path, VIPSTORE_BACKUP_SUFFIX);
	snprintf(tmp, sizeof(tmp), "%s.tmp", bak);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		seterr(err, errlen, "VIP store backup %s: %s", tmp, strerror(errno));
		return false;
	}
	/* compact: only live pages, so the copy is small and has no freelist
	 * a later bit flip could poison */
	if ((rc = mdb_env_copyfd2(vs->env, fd, MDB_CP_COMPACT)) != 0 || (fsync(fd) < 0 && (rc = errno) != 0)) {
		char w[160];
		seterr(err, errlen, "VIP store backup %s: %s", tmp, rc_words(vs, rc, w, sizeof(w)));
		close(fd);
		unlink(tmp);
		return false;
	}
	close(fd);
	if (rename(tmp, bak) < 0) {
		seterr(err, errlen, "VIP store backup: cannot rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return false;
	}
	if ((fd = open(vs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return true;
}

uint64_t
vipstore_generation(struct vipstore *vs)
{
	MDB_envinfo info;

	if (mdb_env_info(vs->env, &info) != 0)
		return 0;
	return (uint64_t)info.me_last_txnid;
}

/*
 * LMDB trusts its pages: a bit flip in a page header can crash the reader.
 * The check runs in a child so that a crash or a loop there is a verdict
 * ("corrupt"), not the daemon's death.
 */
bool
vipstore_check_file(const char *dir, char *err, size_t errlen)
{
	int pfd[2];
	char msg[512] = "";
	pid_t pid;
	int status = 0;
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		seterr(err, errlen, "VIP store check: pipe: %s", strerror(errno));
		return false;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		seterr(err, errlen, "VIP store check: fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return false;
	}
	if (pid == 0) {
		struct vipstore_opts o;
		struct vipstore *vs;
		char e[sizeof(msg)] = "";
		bool ok;
		int devnull = open("/dev/null", O_WRONLY);

		/* a crash report from a sanitizer build is the verdict, not
		 * output: the parent words it */
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		close(pfd[0]);
		alarm(VIPSTORE_CHECK_SECONDS);
		memset(&o, 0, sizeof(o));
		o.dir = dir;
		o.readonly = true;
		vs = vipstore_open(&o, e, sizeof(e));
		ok = vs != NULL && vipstore_verify(vs, e, sizeof(e));
		vipstore_close(vs); /* frees its reader slot */
		if (!ok && write(pfd[1], e, strlen(e)) < 0)
			_exit(3);
		_exit(ok ? 0 : 1);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], msg, sizeof(msg) - 1)) < 0 && errno == EINTR)
		;
	msg[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	if (msg[0] != '\0')
		seterr(err, errlen, "%s", msg);
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		seterr(err, errlen, "VIP store %s/%s: reading it did not finish in %d s (its pages are corrupt)", dir,
		    VIPSTORE_FILE, VIPSTORE_CHECK_SECONDS);
	else if (WIFSIGNALED(status))
		seterr(err, errlen, "VIP store %s/%s: reading it crashed (signal %d): its pages are corrupt", dir,
		    VIPSTORE_FILE, WTERMSIG(status));
	else
		seterr(err, errlen, "VIP store %s/%s: reading it failed (the checker exited %d): its pages are "
		    "corrupt", dir, VIPSTORE_FILE, WEXITSTATUS(status));
	return false;
}

struct vipstore *
vipstore_open(const struct vipstore_opts *opts, char *err, size_t errlen)
{
	struct vipstore *vs;
	struct stat sb;
	int rc, dead = 0;
	char p[NETPREFIX_STRLEN];

	if (opts != NULL && opts->disk_error != NULL)
		*opts->disk_error = false;
	if (opts == NULL || opts->dir == NULL || opts->dir[0] == '\0') {
		seterr(err, errlen, "VIP store: no state directory");
		return NULL;
	}
	if (!opts->readonly && (opts->pool4.addr.family != AF_INET ||
	    opts->pool4.len > 30)) {
		seterr(err, errlen, "VIP pool %s: need an IPv4 prefix of /30 "
		    "or wider", netprefix_fmt(&opts->pool4, p, sizeof(p)));
		return NULL;
	}
	if (!opts->readonly && opts->pool6_on &&
	    (opts->pool6.addr.family != AF_INET6 || opts->pool6.len > 126)) {
		seterr(err, errlen, "VIP pool %s: need an IPv6 prefix of /126 "
		    "or wider", netprefix_fmt(&opts->pool6, p, sizeof(p)));
		return NULL;
	}
	if ((vs = calloc(1, sizeof(*vs))) == NULL || pthread_mutex_init(&vs->last_mu, NULL) != 0) {
		free(vs);
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	vs->pool4 = opts->pool4;
	vs->pool6_on = opts->pool6_on;
	vs->pool6 = opts->pool6;
	vs->hold = opts->hold_seconds;
	vs->readonly = opts->readonly;
	snprintf(vs->dir, sizeof(vs->dir), "%s", opts->dir);
	if ((size_t)snprintf(vs->path, sizeof(vs->path), "%s/%s", opts->dir,
	    VIPSTORE_FILE) >= sizeof(vs->path)) {
		seterr(err, errlen, "VIP store: path too long");
		free(vs);
		return NULL;
	}
	if (vs->readonly) {
		if (stat(vs->path, &sb) == -1) {
			seterr(err, errlen, "no VIP store at %s", vs->path);
			free(vs);
			return NULL;
		}
	} else if (!mkdir_p(opts->dir)) {
		seterr(err, errlen, "VIP store: cannot create %s: %s",
		    opts->dir, strerror(errno));
		free(vs);
		return NULL;
	}
	if (!check_file_size(vs->path, err, errlen)) {
		free(vs);
		return NULL;
	}
	if ((rc = mdb_env_create(&vs->env)) != 0) {
		seterr(err, errlen, "VIP store: %s", mdb_strerror(rc));
		free(vs);
		return NULL;
	}
	if ((rc = mdb_env_set_maxdbs(vs->env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(vs->env, vipstore_mapsize)) != 0 ||
	    (rc = mdb_env_open(vs->env, vs->path, MDB_NOSUBDIR |
	    (vs->readonly ? MDB_RDONLY : 0), 0600)) != 0) {
		char w[160];
		seterr(err, errlen, "VIP store %s: %s", vs->path, rc_words(vs, rc, w, sizeof(w)));
		goto fail;
	}
	vs->mapsize = vipstore_mapsize;
	if ((rc = mdb_reader_check(vs->env, &dead)) != 0)
		log_warnx("VIP store %s: reader check: %s", vs->path,
		    mdb_strerror(rc));
	else if (dead > 0)
		log_info("VIP store %s: cleared %d stale reader(s)", vs->path,
		    dead);
	if (!check_meta(vs, opts, err, errlen))
		goto fail;
	vs->last.pool_size = vipstore_pool_size(vs);
	return vs;
fail:
	if (opts->disk_error != NULL)
		*opts->disk_error = vs->disk_error;
	mdb_env_close(vs->env);
	free(vs);
	return NULL;
}

void
vipstore_close(struct vipstore *vs)
{
	if (vs == NULL)
		return;
	mdb_env_close(vs->env);
	pthread_mutex_destroy(&vs->last_mu);
	for (int i = 0; i < 2; i++)
		vcache_free(&vs->cache[i]);
	free(vs->res);
	free(vs->pend_res);
	scratch_free(&vs->scr);
	free(vs);
}

struct held_ctx {
	struct netaddr *v;
	size_t n, cap;
	bool oom;
};

static bool
collect_held(const struct vip_record *r, void *arg)
{
	struct held_ctx *h = arg;
	if (r->state != VIP_HELD)
		return true;
	for (int k = 0; k < 2; k++) {
		if (!(k ? r->has_v6 : r->has_v4))
			continue;
		if (h->n == h->cap) {
			size_t nc = h->cap ? h->cap * 2 : 16;
			struct netaddr *nv = realloc(h->v, nc * sizeof(*nv));
			if (nv == NULL) {
				h->oom = true;
				return false;
			}
			h->v = nv;
			h->cap = nc;
		}
		h->v[h->n++] = k ? r->v6 : r->v4;
	}
	return true;
}

size_t
vipstore_held(struct vipstore *vs, struct netaddr **out)
{
	struct held_ctx h = { NULL, 0, 0, false };
	char err[128];
	*out = NULL;
	if (!vipstore_list(vs, collect_held, &h, err, sizeof(err)) || h.oom) {
		free(h.v);
		return 0;
	}
	*out = h.v;
	return h.n;
}
