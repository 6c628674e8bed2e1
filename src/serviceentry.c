/*
 * serviceentry — Istio ServiceEntry YAML → validated structs.
 * See include/serviceentry.h.
 *
 * The YAML is read with libyaml's event API into a small private tree (one
 * per document, freed after the document is handled), which lets us reject
 * aliases outright, bound nesting and node count, and keep the 1-based
 * line/column of every node. Each ServiceEntry is then decoded and checked
 * the way Istio's validating webhook does; entries with any error are
 * dropped and only their diagnostics remain.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "netaddr.h"
#include "serviceentry.h"
#include "suggest.h"

enum ytype { Y_SCALAR, Y_SEQ, Y_MAP };

/* One YAML node. Maps keep keys and values interleaved in kids[]. */
struct ynode {
	enum ytype type;
	int line, col;          /* 1-based */
	bool plain;             /* plain (unquoted, non-block) scalar */
	char *s;                /* scalar value, NUL-terminated */
	size_t len;
	struct ynode **kids;
	size_t nkids, cap;
};

/* Per-ServiceEntry decoding context. */
struct sectx {
	struct se_set *set;
	const char *file;
	const char *ns;         /* for the diagnostic prefix */
	const char *name;
	size_t nerr;
	bool oom;
};

/* Per-stream document builder. */
struct builder {
	struct se_set *set;
	const char *file;
	const unsigned char *buf;
	size_t len;
	struct ynode *root;
	struct ynode *stack[SE_MAX_DEPTH + 1];
	int depth;
	size_t nnodes;
	bool skip;              /* document already rejected: drain to its end */
	struct ynode *items;    /* the root mapping's "items" sequence: a List's
	                           items are processed (and freed) one by one as
	                           they complete, so a 50,000-entry kubectl dump
	                           never is one tree */
	size_t items_nodes;     /* nnodes when the items sequence started */
};

static void diag_push(struct se_set *, enum se_severity, const char *, int,
    int, char *);
static void sdiag(struct se_set *, enum se_severity, const char *, int, int,
    const char *, ...) __attribute__((format(printf, 6, 7)));
static void ediag(struct sectx *, enum se_severity, const struct ynode *,
    const char *, const char *, ...) __attribute__((format(printf, 5, 6)));
static char *pathf(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void ynode_free(struct ynode *);
static void load_stream(struct se_set *, const char *, const unsigned char *,
    size_t);
static void process_doc(struct se_set *, const char *, const struct ynode *,
    bool);
static void load_serviceentry(struct se_set *, const char *,
    const struct ynode *);
static void entry_free(struct serviceentry *);
static void append_list(char *, size_t, const char *const *, size_t);

/* What check_keys does with a key that is not in known[]. */
enum unknown_policy {
	UNKNOWN_ANY,    /* free-form mapping (labels, metadata): nothing */
	UNKNOWN_WARN,   /* written by istiod (status): a newer one may add
	                   fields, so a warning, and the entry loads */
	UNKNOWN_ERROR,  /* authored (spec, top level): the entry is rejected */
};
static bool grow(void *, size_t, size_t);

static const char *const api_versions[] = {
	"networking.istio.io/v1",
	"networking.istio.io/v1beta1",
	"networking.istio.io/v1alpha3",
};

static const char *const protocols[] = {
	"HTTP", "HTTPS", "GRPC", "GRPC-Web", "HTTP2", "HTTP_PROXY", "TCP",
	"TLS", "UDP", "Mongo", "Redis", "MySQL",
};

static const char *const resolutions[] = {
	[SE_RES_NONE] = "NONE",
	[SE_RES_STATIC] = "STATIC",
	[SE_RES_DNS] = "DNS",
	[SE_RES_DNS_ROUND_ROBIN] = "DNS_ROUND_ROBIN",
	[SE_RES_DYNAMIC_DNS] = "DYNAMIC_DNS",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define UNNAMED "<unnamed>"

/* ---------------------------------------------------------------- set */

void
se_set_init(struct se_set *set)
{
	memset(set, 0, sizeof(*set));
}

static void
kv_free(struct se_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * The set's string pool: strings that repeat across entries (the file, the
 * namespace, port names and protocols) are stored once, in chunks freed with
 * the set. At 50,000 entries that is ~10 MB of small allocations fewer.
 */
#define POOL_CHUNK 16384
struct pool_chunk {
	struct pool_chunk *next;
	size_t used, cap;
	char data[];
};
struct se_strpool {
	const char **slots;             /* open addressing; NULL = empty */
	size_t cap, n;
	struct pool_chunk *chunks;
};

static uint32_t
pool_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void
pool_free(struct se_strpool *p)
{
	if (p == NULL)
		return;
	for (struct pool_chunk *c = p->chunks, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	free(p->slots);
	free(p);
}

static bool
pool_rehash(struct se_strpool *p)
{
	size_t ncap = p->cap ? p->cap * 2 : 256;
	const char **ns = calloc(ncap, sizeof(*ns));
	if (ns == NULL)
		return false;
	for (size_t i = 0; i < p->cap; i++) {
		if (p->slots[i] == NULL)
			continue;
		size_t k = pool_hash(p->slots[i]) & (ncap - 1);
		while (ns[k])
			k = (k + 1) & (ncap - 1);
		ns[k] = p->slots[i];
	}
	free(p->slots);
	p->slots = ns;
	p->cap = ncap;
	return true;
}

/* n zeroed bytes from p's chunks, 8-byte aligned (the chunks' data is);
 * NULL on out of memory. They live as long as the pool. */
static void *
pool_take(struct se_strpool **pp, size_t n)
{
	if (*pp == NULL && (*pp = calloc(1, sizeof(**pp))) == NULL)
		return NULL;
	struct se_strpool *p = *pp;
	struct pool_chunk *c = p->chunks;
	size_t at = c ? (c->used + 7) & ~(size_t)7 : 0;
	if (c == NULL || at > c->cap || c->cap - at < n) {
		/* a block may hold one small document: start small */
		size_t cap = c == NULL ? 256 : (c->cap >= POOL_CHUNK / 2 ? POOL_CHUNK : c->cap * 2);
		if (cap < n)
			cap = n;
		if ((c = malloc(sizeof(*c) + cap)) == NULL)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = p->chunks;
		p->chunks = c;
		at = 0;
	}
	c->used = at + n;
	return memset(c->data + at, 0, n);
}

/* The pooled copy of s (NULL stays NULL); false on out of memory. */
static bool
pool_intern(struct se_strpool **pp, char **dst, const char *s)
{
	*dst = NULL;
	if (s == NULL)
		return true;
	if (*pp == NULL && (*pp = calloc(1, sizeof(**pp))) == NULL)
		return false;
	struct se_strpool *p = *pp;
	if ((p->n + 1) * 2 > p->cap && !pool_rehash(p))
		return false;
	size_t k = pool_hash(s) & (p->cap - 1);
	for (; p->slots[k]; k = (k + 1) & (p->cap - 1)) {
		if (strcmp(p->slots[k], s) == 0) {
			*dst = (char *)p->slots[k];
			return true;
		}
	}
	size_t len = strlen(s) + 1;
	char *r = pool_take(pp, len);
	if (r == NULL)
		return false;
	memcpy(r, s, len);
	p->slots[k] = r;
	p->n++;
	*dst = r;
	return true;
}

/* A copy of s in the pool, not interned (it seldom repeats). */
static bool
pool_dup(struct se_strpool **pp, char **dst, const char *s)
{
	*dst = NULL;
	if (s == NULL)
		return true;
	size_t len = strlen(s) + 1;
	char *d = pool_take(pp, len);
	if (d == NULL)
		return false;
	memcpy(d, s, len);
	*dst = d;
	return true;
}

/* the strings stay; only the lookup table goes */
static void
pool_seal(struct se_strpool *p)
{
	if (p == NULL)
		return;
	free(p->slots);
	p->slots = NULL;
	p->cap = p->n = 0;
}

static void
entry_free(struct serviceentry *e)
{
	free(e->file);
	free(e->namespace);
	for (size_t i = 0; i < e->nports; i++) {
		free(e->ports[i].name);
		free(e->ports[i].protocol);
	}
	free(e->name);
	kv_free(e->labels, e->nlabels);
	free(e->creation_timestamp);
	strv_free(e->hosts, e->nhosts);
	strv_free(e->addresses, e->naddresses);
	free(e->ports);
	for (size_t i = 0; i < e->nendpoints; i++) {
		struct se_endpoint *ep = &e->endpoints[i];
		free(ep->address);
		kv_free(ep->ports, ep->nports);
		kv_free(ep->labels, ep->nlabels);
		free(ep->network);
		free(ep->locality);
	}
	free(e->endpoints);
	strv_free(e->export_to, e->nexport_to);
	for (size_t i = 0; i < e->nstatus_addresses; i++) {
		free(e->status_addresses[i].host);
		free(e->status_addresses[i].value);
	}
	free(e->status_addresses);
	memset(e, 0, sizeof(*e));
}

/*
 * A block: the entries one file (or buffer, or a run of copies) added, in
 * one array, and the pool their repeated strings live in. The array may
 * move while its file loads; the set's pointers into it are then fixed up
 * (block_fixup), and it never moves once closed.
 */
struct se_block {
	_Atomic int refs;
	struct serviceentry *e;
	size_t n, cap;
	struct se_strpool *pool;
};

static void
block_free(struct se_block *b)
{
	/* its entries own nothing: everything they point at is in the pool */
	free(b->e);
	pool_free(b->pool);
	free(b);
}

void
se_block_hold(struct se_block *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void
se_block_release(struct se_block *b)
{
	if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		block_free(b);
}

size_t
se_block_count(const struct se_block *b)
{
	return b ? b->n : 0;
}

/* The open block's entries moved: the set's pointers follow. */
static void
block_fixup(struct se_set *set, const struct se_block *b)
{
	for (size_t i = 0; i < b->n; i++)
		set->entries[set->open_from + i] = &b->e[i];
}

/* Shrinks the open block to what it holds and closes it for good. */
static void
block_close(struct se_set *set)
{
	struct se_block *b = set->open;
	if (b == NULL)
		return;
	set->open = NULL;
	set->open_shared = false;
	pool_seal(b->pool);
	if (b->n < b->cap && b->n > 0) {
		struct serviceentry *ne = realloc(b->e, b->n * sizeof(*ne));
		if (ne != NULL) {
			b->e = ne;
			b->cap = b->n;
			block_fixup(set, b);
		}
	}
}

/* Starts a new block that entries are added to; false on out of memory. */
static bool
block_open(struct se_set *set)
{
	block_close(set);
	struct se_block **nb = reallocarray(set->blocks, set->nblocks + 1, sizeof(*nb));
	if (nb == NULL)
		return false;
	set->blocks = nb;
	struct se_block *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return false;
	atomic_init(&b->refs, 1);
	set->blocks[set->nblocks++] = b;
	set->open = b;
	set->open_from = set->nentries;
	return true;
}

void
se_set_seal(struct se_set *set)
{
	block_close(set);
}

struct se_block *
se_set_last_block(const struct se_set *set)
{
	return set->nblocks ? set->blocks[set->nblocks - 1] : NULL;
}

void
se_set_free(struct se_set *set)
{
	for (size_t i = 0; i < set->nblocks; i++)
		se_block_release(set->blocks[i]);
	free(set->blocks);
	free(set->entries);
	for (size_t i = 0; i < set->ndiags; i++) {
		free(set->diags[i].file);
		free(set->diags[i].message);
	}
	free(set->diags);
	free(set->index);
	for (size_t i = 0; i < set->nrejected_keys; i++) {
		free(set->rejected_keys[i].ns);
		free(set->rejected_keys[i].name);
		free(set->rejected_keys[i].file);
	}
	free(set->rejected_keys);
	strv_free(set->broken, set->nbroken);
	memset(set, 0, sizeof(*set));
}

void
se_set_mark_broken(struct se_set *set, const char *file)
{
	if (se_set_is_broken(set, file) || !grow(&set->broken, set->nbroken, sizeof(*set->broken)))
		return;
	if ((set->broken[set->nbroken] = strdup(file)) != NULL)
		set->nbroken++;
}

bool
se_set_is_broken(const struct se_set *set, const char *file)
{
	for (size_t i = 0; i < set->nbroken; i++)
		if (strcmp(set->broken[i], file) == 0)
			return true;
	return false;
}

static void
add_rejected_key(struct se_set *set, const char *ns, const char *name, const char *file, int line)
{
	if (!grow(&set->rejected_keys, set->nrejected_keys, sizeof(*set->rejected_keys)))
		return;
	struct se_key *k = &set->rejected_keys[set->nrejected_keys];
	k->ns = strdup(ns);
	k->name = strdup(name);
	k->file = strdup(file);
	k->line = line;
	if (k->ns == NULL || k->name == NULL || k->file == NULL) {
		free(k->ns);
		free(k->name);
		free(k->file);
		return;
	}
	set->nrejected_keys++;
}

/* --- deep copy into a pool --------------------------------------------- */

static bool
dup_strv(struct se_strpool **pool, char ***dst, size_t *ndst, char *const *src, size_t n)
{
	*dst = NULL;
	*ndst = n;
	if (n == 0)
		return true;
	if ((*dst = pool_take(pool, n * sizeof(**dst))) == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!pool_dup(pool, &(*dst)[i], src[i]))
			return false;
	return true;
}

static bool
dup_kv(struct se_strpool **pool, struct se_kv **dst, size_t *ndst, const struct se_kv *src, size_t n)
{
	*dst = NULL;
	*ndst = n;
	if (n == 0)
		return true;
	if ((*dst = pool_take(pool, n * sizeof(**dst))) == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!pool_dup(pool, &(*dst)[i].key, src[i].key) || !pool_dup(pool, &(*dst)[i].value, src[i].value))
			return false;
	return true;
}

/*
 * d = s, every pointer into pool: a packed entry, one allocation fewer per
 * string and array (about 150 bytes of malloc headers and rounding per
 * entry at 50,000 entries). On failure what was taken stays in the pool,
 * freed with it, and d must not be used.
 */
static bool
entry_copy(struct se_strpool **pool, struct serviceentry *d, const struct serviceentry *s)
{
	*d = *s;
	if (!pool_intern(pool, &d->file, s->file) || !pool_dup(pool, &d->name, s->name) ||
	    !pool_intern(pool, &d->namespace, s->namespace) ||
	    !pool_dup(pool, &d->creation_timestamp, s->creation_timestamp) ||
	    !dup_kv(pool, &d->labels, &d->nlabels, s->labels, s->nlabels) ||
	    !dup_strv(pool, &d->hosts, &d->nhosts, s->hosts, s->nhosts) ||
	    !dup_strv(pool, &d->addresses, &d->naddresses, s->addresses, s->naddresses) ||
	    !dup_strv(pool, &d->export_to, &d->nexport_to, s->export_to, s->nexport_to))
		return false;
	d->ports = NULL;
	if (s->nports) {
		if ((d->ports = pool_take(pool, s->nports * sizeof(*d->ports))) == NULL)
			return false;
		for (size_t i = 0; i < s->nports; i++) {
			d->ports[i] = s->ports[i];
			if (!pool_intern(pool, &d->ports[i].name, s->ports[i].name) ||
			    !pool_intern(pool, &d->ports[i].protocol, s->ports[i].protocol))
				return false;
		}
	}
	d->endpoints = NULL;
	if (s->nendpoints) {
		if ((d->endpoints = pool_take(pool, s->nendpoints * sizeof(*d->endpoints))) == NULL)
			return false;
		for (size_t i = 0; i < s->nendpoints; i++) {
			const struct se_endpoint *se = &s->endpoints[i];
			struct se_endpoint *de = &d->endpoints[i];
			*de = *se;
			if (!pool_dup(pool, &de->address, se->address) ||
			    !dup_kv(pool, &de->ports, &de->nports, se->ports, se->nports) ||
			    !dup_kv(pool, &de->labels, &de->nlabels, se->labels, se->nlabels) ||
			    !pool_dup(pool, &de->network, se->network) || !pool_dup(pool, &de->locality, se->locality))
				return false;
		}
	}
	d->status_addresses = NULL;
	if (s->nstatus_addresses) {
		if ((d->status_addresses = pool_take(pool, s->nstatus_addresses * sizeof(*d->status_addresses))) ==
		    NULL)
			return false;
		for (size_t i = 0; i < s->nstatus_addresses; i++)
			if (!pool_dup(pool, &d->status_addresses[i].host, s->status_addresses[i].host) ||
			    !pool_dup(pool, &d->status_addresses[i].value, s->status_addresses[i].value))
				return false;
	}
	return true;
}

/* Makes room for element n of an array grown by doubling; capacity is
 * implied by n (8, then powers of two), so no field holds it. */
static bool
grow(void *pp, size_t n, size_t sz)
{
	void **p = pp, *np;
	size_t ncap;

	if (n == 0)
		ncap = 8;
	else if (n >= 8 && (n & (n - 1)) == 0)
		ncap = n * 2;
	else
		return true;
	if ((np = reallocarray(*p, ncap, sz)) == NULL)
		return false;
	*p = np;
	return true;
}

/* FNV-1a over "namespace/name". */
static size_t
name_hash(const char *ns, const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = ns; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return (size_t)h;
}

/* Open-addressing table of entries[] indices plus one (0 = empty). */
static const struct serviceentry *
index_find(const struct se_set *set, const char *ns, const char *name)
{
	if (set->index_cap == 0)
		return NULL;
	size_t mask = set->index_cap - 1;
	for (size_t i = name_hash(ns, name) & mask;; i = (i + 1) & mask) {
		size_t v = set->index[i];
		if (v == 0)
			return NULL;
		const struct serviceentry *e = set->entries[v - 1];
		if (strcmp(e->name, name) == 0 &&
		    strcmp(e->namespace, ns) == 0)
			return e;
	}
}

static void
index_put(uint32_t *tab, size_t cap, const struct serviceentry *e, size_t v)
{
	size_t mask = cap - 1;
	size_t i = name_hash(e->namespace, e->name) & mask;
	while (tab[i] != 0)
		i = (i + 1) & mask;
	tab[i] = (uint32_t)v;
}

/* Makes room for one more entry in the index (load factor <= 1/2). */
static bool
index_reserve(struct se_set *set)
{
	size_t ncap;
	uint32_t *tab;

	if ((set->nentries + 1) * 2 <= set->index_cap)
		return true;
	if (set->nentries + 1 >= UINT32_MAX)
		return false;
	ncap = set->index_cap ? set->index_cap * 2 : 64;
	if ((tab = calloc(ncap, sizeof(*tab))) == NULL)
		return false;
	for (size_t i = 0; i < set->nentries; i++)
		index_put(tab, ncap, set->entries[i], i + 1);
	free(set->index);
	set->index = tab;
	set->index_cap = ncap;
	return true;
}

const char *
se_resolution_name(enum se_resolution r)
{
	if ((size_t)r < NELEM(resolutions))
		return resolutions[r];
	return "?";
}

const char *
se_location_name(enum se_location l)
{
	switch (l) {
	case SE_LOC_MESH_EXTERNAL:
		return "MESH_EXTERNAL";
	case SE_LOC_MESH_INTERNAL:
		return "MESH_INTERNAL";
	case SE_LOC_UNSET:
		break;
	}
	return "";
}

/* -------------------------------------------------------- diagnostics */

/* Takes ownership of msg (which may be NULL after a failed allocation). */
static void
diag_push(struct se_set *set, enum se_severity sev, const char *file,
    int line, int col, char *msg)
{
	if (sev == SE_ERROR)
		set->nerrors++;
	else
		set->nwarnings++;
	if (msg == NULL)
		return;
	struct se_diag *d;
	if (!grow(&set->diags, set->ndiags, sizeof(*d))) {
		free(msg);
		return;
	}
	d = &set->diags[set->ndiags];
	d->severity = sev;
	d->file = strdup(file);
	d->line = line;
	d->col = col;
	d->message = msg;
	if (d->file == NULL) {
		free(msg);
		return;
	}
	set->ndiags++;
}

/* Structural diagnostic: "FILE:LINE:COL: message". */
static void
sdiag(struct se_set *set, enum se_severity sev, const char *file, int line,
    int col, const char *fmt, ...)
{
	char *body = NULL, *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	va_end(ap);
	if (body == NULL || asprintf(&msg, "%s:%d:%d: %s", file, line, col,
	    body) < 0)
		msg = NULL;
	free(body);
	diag_push(set, sev, file, line, col, msg);
}

/* Entry diagnostic: "FILE:LINE:COL: NS/NAME: path: message". */
static void
ediag(struct sectx *c, enum se_severity sev, const struct ynode *at,
    const char *path, const char *fmt, ...)
{
	char *body = NULL, *msg = NULL;
	va_list ap;
	int line = at ? at->line : 1, col = at ? at->col : 1;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	va_end(ap);
	if (body != NULL) {
		int r;
		if (path != NULL && *path != '\0')
			r = asprintf(&msg, "%s:%d:%d: %s/%s: %s: %s", c->file,
			    line, col, c->ns, c->name, path, body);
		else
			r = asprintf(&msg, "%s:%d:%d: %s/%s: %s", c->file,
			    line, col, c->ns, c->name, body);
		if (r < 0)
			msg = NULL;
	}
	free(body);
	if (sev == SE_ERROR)
		c->nerr++;
	diag_push(c->set, sev, c->file, line, col, msg);
}

/* Formats a field path into buf; a too-long path is cut, never overrun. */
static char *
pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (r < 0)
		buf[0] = '\0';
	return buf;
}

/* ------------------------------------------------------------ yaml tree */

static void
ynode_free(struct ynode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->s);
	free(n);
}

static bool
ynode_add(struct ynode *parent, struct ynode *kid)
{
	if (parent->nkids == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 4;
		struct ynode **k = reallocarray(parent->kids, ncap,
		    sizeof(*k));
		if (k == NULL)
			return false;
		parent->kids = k;
		parent->cap = ncap;
	}
	parent->kids[parent->nkids++] = kid;
	return true;
}

static bool
is_null(const struct ynode *n)
{
	if (n == NULL)
		return true;
	if (n->type != Y_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->s, "~") == 0 ||
	    strcmp(n->s, "null") == 0 || strcmp(n->s, "Null") == 0 ||
	    strcmp(n->s, "NULL") == 0;
}

static const char *
ytype_name(const struct ynode *n)
{
	if (is_null(n))
		return "null";
	switch (n->type) {
	case Y_SCALAR:
		return "a scalar";
	case Y_SEQ:
		return "a sequence";
	case Y_MAP:
		return "a mapping";
	}
	return "?";
}

static const struct ynode *
map_get(const struct ynode *m, const char *key)
{
	if (m == NULL || m->type != Y_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < m->nkids; i += 2) {
		const struct ynode *k = m->kids[i];
		if (k->type == Y_SCALAR && strcmp(k->s, key) == 0)
			return m->kids[i + 1];
	}
	return NULL;
}

const struct serviceentry *
se_set_find(const struct se_set *set, const char *ns, const char *name)
{
	return index_find(set, ns, name);
}

/* Room for one more entry in the open block, the set's pointers and the
 * index; false on out of memory (nothing changed). */
static bool
entry_reserve(struct se_set *set)
{
	struct se_block *b = set->open;
	if (!index_reserve(set) || !grow(&set->entries, set->nentries, sizeof(*set->entries)))
		return false;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 4;
		struct serviceentry *ne = reallocarray(b->e, ncap, sizeof(*ne));
		if (ne == NULL)
			return false;
		b->e = ne;
		b->cap = ncap;
		block_fixup(set, b);
	}
	return true;
}

/* Moves e (pooled into the open block) into the set; entry_reserve first. */
static void
entry_add(struct se_set *set, const struct serviceentry *e)
{
	struct se_block *b = set->open;
	b->e[b->n] = *e;
	set->entries[set->nentries] = &b->e[b->n++];
	index_put(set->index, set->index_cap, set->entries[set->nentries], set->nentries + 1);
	set->nentries++;
}

bool
se_set_copy_entry(struct se_set *set, const struct serviceentry *e)
{
	struct serviceentry c;
	if (index_find(set, e->namespace, e->name) != NULL)
		return false;
	/* copies made after a file share one block of their own, never a
	 * cached group of documents' */
	if ((set->open == NULL || set->open_shared) && !block_open(set))
		return false;
	if (!entry_copy(&set->open->pool, &c, e) || !entry_reserve(set))
		return false;
	entry_add(set, &c);
	return true;
}

bool
se_set_adopt_block(struct se_set *set, struct se_block *b)
{
	block_close(set);
	size_t n0 = set->nentries;
	struct se_block **nb = reallocarray(set->blocks, set->nblocks + 1, sizeof(*nb));
	if (nb == NULL)
		return false;
	set->blocks = nb;
	for (size_t i = 0; i < b->n; i++) {
		if (index_find(set, b->e[i].namespace, b->e[i].name) != NULL || !index_reserve(set) ||
		    !grow(&set->entries, set->nentries, sizeof(*set->entries)))
			goto undo;
		set->entries[set->nentries] = &b->e[i];
		index_put(set->index, set->index_cap, &b->e[i], set->nentries + 1);
		set->nentries++;
	}
	se_block_hold(b);
	set->blocks[set->nblocks++] = b;
	return true;
undo:
	/* the index is rebuilt without the entries this call added */
	set->nentries = n0;
	memset(set->index, 0, set->index_cap * sizeof(*set->index));
	for (size_t i = 0; i < set->nentries; i++)
		index_put(set->index, set->index_cap, set->entries[i], i + 1);
	return false;
}

/* ------------------------------------------------------------- loading */

static void
offset_to_pos(const unsigned char *buf, size_t len, size_t off, int *line,
    int *col)
{
	int l = 1, c = 1;
	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			l++;
			c = 1;
		} else if ((buf[i] & 0xc0) != 0x80)
			c++;
	}
	*line = l;
	*col = c;
}

static void
report_parser_error(struct builder *b, yaml_parser_t *p)
{
	int line, col;

	switch (p->error) {
	case YAML_READER_ERROR:
		offset_to_pos(b->buf, b->len, p->problem_offset, &line, &col);
		if (p->problem_value != -1)
			sdiag(b->set, SE_ERROR, b->file, line, col,
			    "invalid input: %s (byte 0x%02x); the file must "
			    "be UTF-8 text", p->problem ? p->problem : "?",
			    (unsigned)p->problem_value & 0xff);
		else
			sdiag(b->set, SE_ERROR, b->file, line, col,
			    "invalid input: %s; the file must be UTF-8 text",
			    p->problem ? p->problem : "?");
		break;
	case YAML_SCANNER_ERROR:
	case YAML_PARSER_ERROR: {
		const char *hint = "";
		size_t idx = p->problem_mark.index;
		line = (int)p->problem_mark.line + 1;
		col = (int)p->problem_mark.column + 1;
		if (idx < b->len && b->buf[idx] == '\t')
			hint = " (tabs are not allowed for indentation; use "
			    "spaces)";
		if (p->context != NULL &&
		    (p->context_mark.line != p->problem_mark.line ||
		    p->context_mark.column != p->problem_mark.column))
			sdiag(b->set, SE_ERROR, b->file, line, col,
			    "YAML syntax error: %s %s (line %d, column %d)%s",
			    p->context, p->problem ? p->problem : "",
			    (int)p->context_mark.line + 1,
			    (int)p->context_mark.column + 1, hint);
		else
			sdiag(b->set, SE_ERROR, b->file, line, col,
			    "YAML syntax error: %s%s%s%s",
			    p->context ? p->context : "", p->context ? " " : "",
			    p->problem ? p->problem : "?", hint);
		break;
	}
	case YAML_MEMORY_ERROR:
		sdiag(b->set, SE_ERROR, b->file, 1, 1,
		    "out of memory while parsing YAML");
		break;
	default:
		sdiag(b->set, SE_ERROR, b->file, 1, 1, "YAML error: %s",
		    p->problem ? p->problem : "unknown");
		break;
	}
}

static void
builder_reset(struct builder *b)
{
	ynode_free(b->root);
	b->root = NULL;
	b->items = NULL;
	b->depth = 0;
	b->nnodes = 0;
	b->skip = false;
}

static void
builder_reject(struct builder *b, const yaml_event_t *ev, const char *msg)
{
	sdiag(b->set, SE_ERROR, b->file, (int)ev->start_mark.line + 1,
	    (int)ev->start_mark.column + 1, "%s; document skipped", msg);
	ynode_free(b->root);
	b->root = NULL;
	b->items = NULL;
	b->depth = 0;
	b->skip = true;
}

/* A List item just completed (the last kid of the items sequence): load it
 * and let it go. */
static void
builder_item_done(struct builder *b)
{
	struct ynode *it = b->items;
	if (it->nkids == 0)
		return;
	struct ynode *elem = it->kids[--it->nkids];
	process_doc(b->set, b->file, elem, true);
	ynode_free(elem);
	b->nnodes = b->items_nodes;
}

/* Adds a node for a scalar / sequence / mapping start event. */
static void
builder_node(struct builder *b, const yaml_event_t *ev)
{
	struct ynode *n;
	char msg[96];

	if (++b->nnodes > SE_MAX_NODES) {
		pathf(msg, sizeof(msg), "document has more than %d YAML nodes",
		    SE_MAX_NODES);
		builder_reject(b, ev, msg);
		return;
	}
	if (ev->type != YAML_SCALAR_EVENT && b->depth >= SE_MAX_DEPTH) {
		pathf(msg, sizeof(msg), "YAML nesting deeper than %d levels",
		    SE_MAX_DEPTH);
		builder_reject(b, ev, msg);
		return;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		goto oom;
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	if (ev->type == YAML_SCALAR_EVENT) {
		n->type = Y_SCALAR;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->len = ev->data.scalar.length;
		if ((n->s = malloc(n->len + 1)) == NULL) {
			free(n);
			goto oom;
		}
		memcpy(n->s, ev->data.scalar.value, n->len);
		n->s[n->len] = '\0';
	} else
		n->type = ev->type == YAML_SEQUENCE_START_EVENT ? Y_SEQ : Y_MAP;

	if (b->depth == 0) {
		if (b->root != NULL) {  /* cannot happen with libyaml */
			ynode_free(n);
			return;
		}
		b->root = n;
	} else if (!ynode_add(b->stack[b->depth - 1], n)) {
		ynode_free(n);
		goto oom;
	}
	if (n->type == Y_SEQ && b->depth == 1 && b->items == NULL && b->root->type == Y_MAP &&
	    b->root->nkids % 2 == 0 && b->root->nkids >= 2) {
		const struct ynode *key = b->root->kids[b->root->nkids - 2];
		if (key->type == Y_SCALAR && strcmp(key->s, "items") == 0) {
			b->items = n;
			b->items_nodes = b->nnodes;
		}
	}
	if (n->type != Y_SCALAR)
		b->stack[b->depth++] = n;
	else if (b->items != NULL && b->depth == 2 && b->stack[1] == b->items)
		builder_item_done(b); /* a scalar item: process_doc says what is wrong */
	return;
oom:
	builder_reject(b, ev, "out of memory");
}

static void
load_stream(struct se_set *set, const char *file, const unsigned char *buf,
    size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct builder b;
	bool done = false;

	memset(&b, 0, sizeof(b));
	b.set = set;
	b.file = file;
	b.buf = buf;
	b.len = len;

	if (!yaml_parser_initialize(&p)) {
		sdiag(set, SE_ERROR, file, 1, 1, "out of memory");
		return;
	}
	yaml_parser_set_input_string(&p, buf, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			report_parser_error(&b, &p);
			se_set_mark_broken(set, file);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			builder_reset(&b);
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (!b.skip && b.root != NULL)
				process_doc(set, file, b.root, false);
			builder_reset(&b);
			break;
		case YAML_ALIAS_EVENT:
			if (!b.skip)
				builder_reject(&b, &ev, "YAML aliases (*name) "
				    "are not supported");
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (!b.skip)
				builder_node(&b, &ev);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (!b.skip && b.depth > 0) {
				b.depth--;
				if (b.items != NULL && b.depth == 2 && b.stack[1] == b.items)
					builder_item_done(&b);
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	builder_reset(&b);
	yaml_parser_delete(&p);
}

/* Returns the offset of the first byte that is not valid UTF-8 or starts
 * a character YAML does not allow (control characters), or len. *cp gets
 * the code point for the latter, or UINT32_MAX for bad UTF-8. */
static size_t
text_check(const unsigned char *s, size_t len, uint32_t *bad_cp)
{
	size_t i = 0;

	while (i < len) {
		unsigned char ch = s[i];
		size_t n;
		uint32_t cp;
		if (ch < 0x80) {
			n = 0;
			cp = ch;
		} else if ((ch & 0xe0) == 0xc0) {
			n = 1;
			cp = ch & 0x1f;
		} else if ((ch & 0xf0) == 0xe0) {
			n = 2;
			cp = ch & 0x0f;
		} else if ((ch & 0xf8) == 0xf0) {
			n = 3;
			cp = ch & 0x07;
		} else
			goto bad_utf8;
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				goto bad_utf8;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			goto bad_utf8;
		/* YAML printable: TAB, LF, CR, 0x20-0x7E, 0x85, 0xA0-... */
		if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') ||
		    (cp >= 0x7f && cp <= 0x9f && cp != 0x85) || cp == 0xfffe ||
		    cp == 0xffff) {
			*bad_cp = cp;
			return i;
		}
		i += n + 1;
	}
	return len;
bad_utf8:
	*bad_cp = UINT32_MAX;
	return i;
}

/* Offset of the last "---" document marker line starting before off. */
static size_t
last_doc_marker(const unsigned char *s, size_t off)
{
	size_t best = 0;

	for (size_t i = 0; i + 3 <= off; i++) {
		if (i > 0 && s[i - 1] != '\n')
			continue;
		if (memcmp(s + i, "---", 3) == 0 && (i + 3 == off ||
		    s[i + 3] == ' ' || s[i + 3] == '\n' || s[i + 3] == '\r' ||
		    s[i + 3] == '\t'))
			best = i;
	}
	return best;
}

/* Loads a whole file's text: checks size and encoding, then parses. */
static void
load_text(struct se_set *set, const char *name, const unsigned char *buf,
    size_t len)
{
	size_t bad;
	uint32_t cp;
	int line, col;

	if (len > SE_MAX_FILE_BYTES) {
		sdiag(set, SE_ERROR, name, 1, 1, "file is too large (%zu bytes; "
		    "the limit is %u bytes)", len, SE_MAX_FILE_BYTES);
		se_set_mark_broken(set, name);
		return;
	}
	/* UTF-16 with a BOM is left to libyaml; everything else must be
	 * UTF-8. libyaml decodes ahead, so it would report a bad byte before
	 * the documents preceding it: check first, parse the clean part. */
	if (len >= 2 && ((buf[0] == 0xfe && buf[1] == 0xff) ||
	    (buf[0] == 0xff && buf[1] == 0xfe))) {
		load_stream(set, name, buf, len);
		return;
	}
	bad = text_check(buf, len, &cp);
	if (bad == len) {
		load_stream(set, name, buf, len);
		return;
	}
	load_stream(set, name, buf, last_doc_marker(buf, bad));
	se_set_mark_broken(set, name);
	offset_to_pos(buf, len, bad, &line, &col);
	if (cp == UINT32_MAX)
		sdiag(set, SE_ERROR, name, line, col, "invalid UTF-8 byte "
		    "0x%02x; the file must be UTF-8 text (the rest of the file "
		    "is ignored)", buf[bad]);
	else
		sdiag(set, SE_ERROR, name, line, col, "control character "
		    "U+%04X is not allowed in YAML (the rest of the file is "
		    "ignored)", (unsigned)cp);
}

void
se_load_buffer(struct se_set *set, const char *name, const char *buf,
    size_t len)
{
	if (set->open != NULL && set->open_shared) {
		load_text(set, name, (const unsigned char *)buf, len);
		return;
	}
	/* without a block every entry is refused as out of memory */
	(void)block_open(set);
	load_text(set, name, (const unsigned char *)buf, len);
	block_close(set);
}

bool
se_set_begin_block(struct se_set *set)
{
	if (!block_open(set))
		return false;
	set->open_shared = true;
	return true;
}

bool
se_read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	int fd;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;

	*out = NULL;
	*outlen = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return false;
	}
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			if (ncap > (size_t)SE_MAX_FILE_BYTES + 1)
				ncap = (size_t)SE_MAX_FILE_BYTES + 1;
			if (len == ncap) {
				snprintf(err, errlen, "file is too large (more than %u bytes)", SE_MAX_FILE_BYTES);
				free(buf);
				close(fd);
				return false;
			}
			char *nb = realloc(buf, ncap);
			if (nb == NULL) {
				snprintf(err, errlen, "out of memory reading file");
				free(buf);
				close(fd);
				return false;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - len);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot read: %s", strerror(errno));
			free(buf);
			close(fd);
			return false;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (buf == NULL && (buf = malloc(1)) == NULL) {
		snprintf(err, errlen, "out of memory reading file");
		return false;
	}
	*out = buf;
	*outlen = len;
	return true;
}

/* Reads and loads one file. */
static void
load_file(struct se_set *set, const char *path)
{
	char *buf;
	size_t len;
	char err[256];

	if (!se_read_file(path, &buf, &len, err, sizeof(err))) {
		sdiag(set, SE_ERROR, path, 1, 1, "%s", err);
		se_set_mark_broken(set, path);
		set->nunreadable++;
		return;
	}
	set->nfiles++;
	(void)block_open(set);
	load_text(set, path, (const unsigned char *)buf, len);
	block_close(set);
	free(buf);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
has_yaml_suffix(const char *n)
{
	size_t l = strlen(n);
	return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
	    (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

void
se_free_list(char **files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
}

bool
se_list_path(const char *path, char ***files, size_t *nfiles, char *err, size_t errlen)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	*files = NULL;
	*nfiles = 0;
	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "cannot read: %s", strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		if ((names = calloc(1, sizeof(*names))) == NULL || (names[0] = strdup(path)) == NULL) {
			free(names);
			snprintf(err, errlen, "out of memory");
			return false;
		}
		*files = names;
		*nfiles = 1;
		return true;
	}
	if ((d = opendir(path)) == NULL) {
		snprintf(err, errlen, "cannot open directory: %s", strerror(errno));
		return false;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !has_yaml_suffix(de->d_name))
			continue;
		char **nn = reallocarray(names, n + 1, sizeof(*nn));
		char *s = NULL;
		if (nn != NULL) {
			names = nn;
			if (asprintf(&s, "%s/%s", path, de->d_name) < 0)
				s = NULL;
		}
		if (s == NULL) {
			closedir(d);
			se_free_list(names, n);
			snprintf(err, errlen, "out of memory");
			return false;
		}
		/* stat follows ConfigMap symlinks; skip what is not a file */
		if (stat(s, &st) == 0 && !S_ISREG(st.st_mode)) {
			free(s);
			continue;
		}
		names[n++] = s;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_str);
	*files = names;
	*nfiles = n;
	return true;
}

bool
se_load_path(struct se_set *set, const char *path)
{
	char **files;
	size_t n;
	char err[256];

	if (!se_list_path(path, &files, &n, err, sizeof(err))) {
		sdiag(set, SE_ERROR, path, 1, 1, "%s", err);
		set->nunreadable++;
		return false;
	}
	for (size_t i = 0; i < n; i++)
		load_file(set, files[i]);
	se_free_list(files, n);
	return true;
}

/* ----------------------------------------------------------- documents */

static void
process_doc(struct se_set *set, const char *file, const struct ynode *root,
    bool in_list)
{
	const struct ynode *kind, *items;

	if (is_null(root) && !in_list)
		return;         /* empty document, e.g. a trailing "---" */
	if (root->type != Y_MAP) {
		sdiag(set, SE_ERROR, file, root->line, root->col,
		    "%s is not a mapping (found %s)",
		    in_list ? "list item" : "document", ytype_name(root));
		return;
	}
	kind = map_get(root, "kind");
	if (is_null(kind)) {
		if (root->nkids > 0)
			sdiag(set, SE_WARNING, file, root->line, root->col,
			    "document has no kind; skipped");
		return;
	}
	if (kind->type != Y_SCALAR) {
		sdiag(set, SE_ERROR, file, kind->line, kind->col,
		    "kind: expected a string, found %s", ytype_name(kind));
		return;
	}
	if (!in_list && strcmp(kind->s, "List") == 0) {
		items = map_get(root, "items");
		if (is_null(items))
			return;
		if (items->type != Y_SEQ) {
			sdiag(set, SE_ERROR, file, items->line, items->col,
			    "items: expected a sequence, found %s",
			    ytype_name(items));
			return;
		}
		for (size_t i = 0; i < items->nkids; i++)
			process_doc(set, file, items->kids[i], true);
		return;
	}
	if (strcmp(kind->s, "ServiceEntry") != 0)
		return;         /* DestinationRule, VirtualService, ... */
	load_serviceentry(set, file, root);
}

/* ------------------------------------------------------- value helpers */

static char *
xstrdup(struct sectx *c, const char *s)
{
	char *r = strdup(s);
	if (r == NULL)
		c->oom = true;
	return r;
}

static void *
xcalloc(struct sectx *c, size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (p == NULL)
		c->oom = true;
	return p;
}

/* Node must be a scalar. Sets *out to a copy, or NULL for null. */
static bool
get_str(struct sectx *c, const struct ynode *n, const char *path, char **out)
{
	*out = NULL;
	if (is_null(n))
		return true;
	if (n->type != Y_SCALAR) {
		ediag(c, SE_ERROR, n, path, "expected a string, found %s",
		    ytype_name(n));
		return false;
	}
	if (strlen(n->s) != n->len) {
		ediag(c, SE_ERROR, n, path, "string contains a NUL character");
		return false;
	}
	*out = xstrdup(c, n->s);
	return *out != NULL;
}

/* Parses a plain decimal integer scalar. Returns false (with an error) on
 * anything else; *present is false for a null / absent node. */
static bool
get_int(struct sectx *c, const struct ynode *n, const char *path,
    int64_t *out, bool *present)
{
	const char *s;
	int64_t v = 0;
	bool neg = false;

	*present = false;
	if (is_null(n))
		return true;
	*present = true;
	if (n->type != Y_SCALAR) {
		ediag(c, SE_ERROR, n, path, "expected an integer, found %s",
		    ytype_name(n));
		return false;
	}
	if (!n->plain) {
		ediag(c, SE_ERROR, n, path, "expected an integer, found the "
		    "quoted string \"%.64s\"; remove the quotes", n->s);
		return false;
	}
	s = n->s;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (*s == '\0')
		goto bad;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			goto bad;
		if (v > (INT64_MAX - 9) / 10) {
			ediag(c, SE_ERROR, n, path, "integer %.64s is too large",
			    n->s);
			return false;
		}
		v = v * 10 + (*s - '0');
	}
	*out = neg ? -v : v;
	return true;
bad:
	ediag(c, SE_ERROR, n, path, "expected an integer, found \"%.64s\"",
	    n->s);
	return false;
}

/* Checks the node is a mapping. Null counts as absent (false, no error). */
static bool
want_map(struct sectx *c, const struct ynode *n, const char *path)
{
	if (is_null(n))
		return false;
	if (n->type != Y_MAP) {
		ediag(c, SE_ERROR, n, path, "expected a mapping, found %s",
		    ytype_name(n));
		return false;
	}
	return true;
}

static bool
want_seq(struct sectx *c, const struct ynode *n, const char *path)
{
	if (is_null(n))
		return false;
	if (n->type != Y_SEQ) {
		ediag(c, SE_ERROR, n, path, "expected a sequence, found %s",
		    ytype_name(n));
		return false;
	}
	return true;
}

/* By key text, then by position in the document (nodes are allocated in
 * document order, but line and column say it without relying on that). */
static int
key_node_cmp(const void *a, const void *b)
{
	const struct ynode *x = *(const struct ynode *const *)a, *y = *(const struct ynode *const *)b;
	int c = strcmp(x->s, y->s);
	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

static void
check_keys(struct sectx *c, const struct ynode *m, const char *path,
    const char *const *known, size_t nknown, enum unknown_policy unknown)
{
	char p[256], list[512];
	size_t nunknown = 0;

	/* duplicates by sorting (O(n log n)): an author controls n */
	size_t nk = m->nkids / 2, ns = 0;
	const struct ynode **keys = nk ? calloc(nk, sizeof(*keys)) : NULL;
	for (size_t i = 0; i + 1 < m->nkids; i += 2) {
		const struct ynode *k = m->kids[i];
		if (k->type != Y_SCALAR) {
			ediag(c, SE_ERROR, k, path, "mapping key is %s, "
			    "expected a string", ytype_name(k));
			continue;
		}
		if (keys)
			keys[ns++] = k;
		if (unknown == UNKNOWN_ANY)
			continue;
		bool found = false;
		for (size_t j = 0; j < nknown; j++)
			if (strcmp(known[j], k->s) == 0)
				found = true;
		/* a flood of unknown fields is one line past the first ones */
		if (found || ++nunknown > SE_MAX_UNKNOWN_REPORTED)
			continue;
		pathf(p, sizeof(p), "%s%s%.64s", path, *path ? "." : "", k->s);
		if (unknown == UNKNOWN_WARN) {
			ediag(c, SE_WARNING, k, p, "unknown field ignored");
			continue;
		}
		/* strict, as kubectl's field validation: a misspelled field
		 * would otherwise silently take its default (resolution NONE) */
		const char *near = suggest_closest(k->s, known, nknown);
		if (near != NULL) {
			ediag(c, SE_ERROR, k, p, "unknown field (did you mean "
			    "%s?)", near);
		} else {
			append_list(list, sizeof(list), known, nknown);
			ediag(c, SE_ERROR, k, p, "unknown field (known: %s)",
			    list);
		}
	}
	if (nunknown > SE_MAX_UNKNOWN_REPORTED)
		ediag(c, unknown == UNKNOWN_ERROR ? SE_ERROR : SE_WARNING, m,
		    path, "%zu more unknown fields%s",
		    nunknown - SE_MAX_UNKNOWN_REPORTED,
		    unknown == UNKNOWN_ERROR ? "" : " ignored");
	if (keys == NULL)
		return;
	qsort(keys, ns, sizeof(*keys), key_node_cmp);
	for (size_t i = 1; i < ns; i++) {
		if (strcmp(keys[i]->s, keys[i - 1]->s) != 0)
			continue;
		size_t first = i - 1;
		while (first > 0 && strcmp(keys[first - 1]->s, keys[i]->s) == 0)
			first--;
		ediag(c, SE_ERROR, keys[i], pathf(p, sizeof(p),
		    "%s%s%.64s", path, *path ? "." : "", keys[i]->s),
		    "duplicate key (first at line %d)", keys[first]->line);
	}
	free(keys);
}

/* Reads a string -> string mapping (labels). */
static bool
get_labels(struct sectx *c, const struct ynode *n, const char *path,
    struct se_kv **out, size_t *nout)
{
	char p[256];
	size_t cnt;

	*out = NULL;
	*nout = 0;
	if (!want_map(c, n, path))
		return true;
	check_keys(c, n, path, NULL, 0, UNKNOWN_ANY);
	cnt = n->nkids / 2;
	if (cnt == 0)
		return true;
	if ((*out = xcalloc(c, cnt, sizeof(**out))) == NULL)
		return false;
	for (size_t i = 0; i + 1 < n->nkids; i += 2) {
		const struct ynode *k = n->kids[i], *v = n->kids[i + 1];
		struct se_kv *kv = &(*out)[*nout];
		if (k->type != Y_SCALAR)
			continue;
		pathf(p, sizeof(p), "%s.%.64s", path, k->s);
		if (!get_str(c, v, p, &kv->value))
			continue;
		if (kv->value == NULL && (kv->value = xstrdup(c, "")) == NULL)
			continue;
		if ((kv->key = xstrdup(c, k->s)) == NULL) {
			free(kv->value);
			kv->value = NULL;
			continue;
		}
		(*nout)++;
	}
	return true;
}

/* ----------------------------------------------------------- validators */

static bool
is_dns_label(const char *s, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!isascii(ch) || (!isalnum(ch) && ch != '-'))
			return false;
	}
	return s[0] != '-' && s[len - 1] != '-';
}

static bool
is_dns_label_str(const char *s)
{
	return is_dns_label(s, strlen(s));
}

const char *
se_hostname_problem(const char *host, bool allow_wildcard)
{
	size_t len = strlen(host);
	const char *p, *label, *last = NULL;
	size_t last_len = 0;

	if (len == 0)
		return "empty hostname";
	if (strcmp(host, "*") == 0)
		return "\"*\" alone is not allowed; use a wildcard such as "
		    "\"*.example.com\"";
	if (host[len - 1] == '.')
		len--;
	if (len == 0)
		return "empty hostname";
	if (len > SE_MAX_NAME)
		return "hostname longer than 253 characters";
	p = host;
	if (p[0] == '*') {
		if (!allow_wildcard)
			return "wildcards are not allowed here";
		if (len < 3 || p[1] != '.')
			return "a wildcard is only allowed as the whole first "
			    "label (\"*.example.com\")";
		p += 2;
	}
	label = p;
	for (;; p++) {
		if ((size_t)(p - host) == len || *p == '.') {
			size_t l = (size_t)(p - label);
			if (l == 0)
				return "empty label (two dots in a row, or a "
				    "leading dot)";
			if (l > 63)
				return "label longer than 63 characters";
			if (label[0] == '-' || label[l - 1] == '-')
				return "label starts or ends with '-'";
			last = label;
			last_len = l;
			if ((size_t)(p - host) == len)
				break;
			label = p + 1;
			continue;
		}
		unsigned char ch = (unsigned char)*p;
		if (ch == '*')
			return "a wildcard is only allowed as the whole first "
			    "label (\"*.example.com\")";
		if (!isascii(ch) || (!isalnum(ch) && ch != '-'))
			return "invalid character (only letters, digits, "
			    "'-' and '.' are allowed)";
	}
	if (last != NULL) {
		size_t i;
		for (i = 0; i < last_len; i++)
			if (!isdigit((unsigned char)last[i]))
				break;
		if (i == last_len)
			return "top-level label cannot be all-numeric";
	}
	return NULL;
}

bool
se_valid_hostname(const char *host, bool allow_wildcard)
{
	return host != NULL && se_hostname_problem(host, allow_wildcard) ==
	    NULL;
}

static bool
is_wildcard(const char *h)
{
	return h[0] == '*';
}

static bool
is_ip(const char *s)
{
	struct netaddr a;
	return netaddr_parse(s, &a);
}

/* k8s object names: DNS-1123 subdomain, lower case. */
static bool
is_k8s_name(const char *s, bool subdomain)
{
	size_t len = strlen(s);
	if (len == 0 || len > (subdomain ? 253u : 63u))
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
		if (alnum)
			continue;
		if (ch == '-' && i > 0 && i + 1 < len && s[i - 1] != '.' &&
		    s[i + 1] != '.')
			continue;
		if (ch == '.' && subdomain && i > 0 && i + 1 < len &&
		    s[i - 1] != '.')
			continue;
		return false;
	}
	return true;
}

static void
append_list(char *buf, size_t len, const char *const *v, size_t n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *parts[2] = { i ? ", " : "", v[i] ? v[i] : "" };
		for (size_t j = 0; j < 2; j++)
			for (const char *q = parts[j]; *q && off + 1 < len; q++)
				buf[off++] = *q;
	}
	buf[off] = '\0';
}

/* ---------------------------------------------------------- spec parts */

static void
load_ports(struct sectx *c, struct serviceentry *e, const struct ynode *n)
{
	static const char *const known[] = { "number", "name", "protocol",
	    "targetPort" };
	char p[256], list[256];

	if (!want_seq(c, n, "spec.ports"))
		return;
	if (n->nkids > SE_MAX_PORTS) {
		ediag(c, SE_ERROR, n, "spec.ports", "too many ports (%zu; the "
		    "limit is %d)", n->nkids, SE_MAX_PORTS);
		return;
	}
	if (n->nkids == 0 ||
	    (e->ports = xcalloc(c, n->nkids, sizeof(*e->ports))) == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++) {
		const struct ynode *pn = n->kids[i], *v;
		struct se_port *port = &e->ports[e->nports];
		int64_t num;
		bool present;

		pathf(p, sizeof(p), "spec.ports[%zu]", i);
		if (is_null(pn)) {
			ediag(c, SE_ERROR, pn, p, "port may not be null");
			continue;
		}
		if (!want_map(c, pn, p))
			continue;
		e->nports++;
		port->line = pn->line;
		check_keys(c, pn, p, known, NELEM(known), UNKNOWN_ERROR);

		v = map_get(pn, "number");
		pathf(p, sizeof(p), "spec.ports[%zu].number", i);
		if (get_int(c, v, p, &num, &present)) {
			if (!present)
				ediag(c, SE_ERROR, pn, p, "missing");
			else if (num < 1 || num > 65535)
				ediag(c, SE_ERROR, v, p, "port number %" PRId64
				    " out of range 1-65535", num);
			else {
				port->number = (uint32_t)num;
				for (size_t j = 0; j + 1 < e->nports; j++)
					if (e->ports[j].number == port->number)
						ediag(c, SE_ERROR, v, p,
						    "port %u already declared "
						    "(line %d)", port->number,
						    e->ports[j].line);
			}
		}

		v = map_get(pn, "name");
		pathf(p, sizeof(p), "spec.ports[%zu].name", i);
		if (get_str(c, v, p, &port->name) && port->name != NULL) {
			if (!is_dns_label_str(port->name))
				ediag(c, SE_ERROR, v, p, "invalid port name "
				    "\"%.64s\": must be a DNS-1123 label (1-63 "
				    "letters, digits or '-', not starting or "
				    "ending with '-')", port->name);
			else
				for (size_t j = 0; j + 1 < e->nports; j++)
					if (e->ports[j].name != NULL &&
					    strcmp(e->ports[j].name,
					    port->name) == 0)
						ediag(c, SE_ERROR, v, p,
						    "port name \"%s\" already "
						    "used (line %d)",
						    port->name,
						    e->ports[j].line);
		}

		v = map_get(pn, "protocol");
		pathf(p, sizeof(p), "spec.ports[%zu].protocol", i);
		char *proto = NULL;
		if (get_str(c, v, p, &proto) && proto != NULL &&
		    *proto != '\0') {
			size_t j;
			for (j = 0; j < NELEM(protocols); j++)
				if (strcasecmp(proto, protocols[j]) == 0)
					break;
			if (j == NELEM(protocols)) {
				append_list(list, sizeof(list), protocols,
				    NELEM(protocols));
				ediag(c, SE_ERROR, v, p, "unknown protocol "
				    "\"%.64s\" (valid: %s)", proto, list);
			} else
				port->protocol = xstrdup(c, protocols[j]);
		}
		free(proto);

		v = map_get(pn, "targetPort");
		pathf(p, sizeof(p), "spec.ports[%zu].targetPort", i);
		if (get_int(c, v, p, &num, &present) && present) {
			if (num < 1 || num > 65535)
				ediag(c, SE_ERROR, v, p, "target port %" PRId64
				    " out of range 1-65535", num);
			else
				port->target_port = (uint32_t)num;
		}
	}
}

static const struct se_port *
find_port(const struct serviceentry *e, const char *name)
{
	for (size_t i = 0; i < e->nports; i++)
		if (e->ports[i].name != NULL &&
		    strcmp(e->ports[i].name, name) == 0)
			return &e->ports[i];
	return NULL;
}

static void
load_hosts(struct sectx *c, struct serviceentry *e, const struct ynode *spec,
    const struct ynode *n)
{
	char p[64];

	if (!want_seq(c, n, "spec.hosts") || n->nkids == 0) {
		if (is_null(n) || (n->type == Y_SEQ && n->nkids == 0))
			ediag(c, SE_ERROR, n && !is_null(n) ? n : spec,
			    "spec.hosts", "at least one host is required");
		return;
	}
	if (n->nkids > SE_MAX_HOSTS) {
		ediag(c, SE_ERROR, n, "spec.hosts", "too many hosts (%zu; the "
		    "limit is %d)", n->nkids, SE_MAX_HOSTS);
		return;
	}
	if ((e->hosts = xcalloc(c, n->nkids, sizeof(*e->hosts))) == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++) {
		const struct ynode *h = n->kids[i];
		char *s;
		const char *why;

		pathf(p, sizeof(p), "spec.hosts[%zu]", i);
		if (!get_str(c, h, p, &s))
			continue;
		if (s == NULL) {
			ediag(c, SE_ERROR, h, p, "host may not be empty");
			continue;
		}
		if ((why = se_hostname_problem(s, true)) != NULL) {
			if (strcmp(s, "*") == 0)
				ediag(c, SE_ERROR, h, p, "%s", why);
			else
				ediag(c, SE_ERROR, h, p, "invalid hostname "
				    "\"%.260s\": %s", s, why);
			free(s);
			continue;
		}
		for (size_t j = 0; j < e->nhosts; j++)
			if (strcasecmp(e->hosts[j], s) == 0)
				ediag(c, SE_WARNING, h, p, "duplicate host "
				    "\"%s\"", s);
		e->hosts[e->nhosts++] = s;
	}
}

/* Returns true when any address is a CIDR shorter than full length. */
static void
load_addresses(struct sectx *c, struct serviceentry *e, const struct ynode *n,
    const struct ynode **cidr_node)
{
	char p[64];

	*cidr_node = NULL;
	if (!want_seq(c, n, "spec.addresses") || n->nkids == 0)
		return;
	if (n->nkids > SE_MAX_ADDRESSES) {
		ediag(c, SE_ERROR, n, "spec.addresses", "too many addresses "
		    "(%zu; the limit is %d)", n->nkids, SE_MAX_ADDRESSES);
		return;
	}
	if ((e->addresses = xcalloc(c, n->nkids, sizeof(*e->addresses))) ==
	    NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++) {
		const struct ynode *a = n->kids[i];
		struct netprefix pfx;
		char *s;

		pathf(p, sizeof(p), "spec.addresses[%zu]", i);
		if (!get_str(c, a, p, &s))
			continue;
		if (s == NULL || !netprefix_parse(s, false, &pfx)) {
			ediag(c, SE_ERROR, a, p, "\"%.64s\" is not an IP "
			    "address or CIDR", s ? s : "");
			free(s);
			continue;
		}
		if (pfx.len < (pfx.addr.family == AF_INET ? 32u : 128u) &&
		    *cidr_node == NULL)
			*cidr_node = a;
		e->addresses[e->naddresses++] = s;
	}
}

static void
load_endpoints(struct sectx *c, struct serviceentry *e, const struct ynode *n)
{
	static const char *const known[] = { "address", "ports", "labels",
	    "network", "locality", "weight", "serviceAccount" };
	char p[256], pp[256];

	if (!want_seq(c, n, "spec.endpoints") || n->nkids == 0)
		return;
	if (n->nkids > SE_MAX_ENDPOINTS) {
		ediag(c, SE_ERROR, n, "spec.endpoints", "too many endpoints "
		    "(%zu; the limit is %d)", n->nkids, SE_MAX_ENDPOINTS);
		return;
	}
	if ((e->endpoints = xcalloc(c, n->nkids, sizeof(*e->endpoints))) ==
	    NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++) {
		const struct ynode *en = n->kids[i], *v;
		struct se_endpoint *ep = &e->endpoints[e->nendpoints];
		int64_t num;
		bool present;

		pathf(p, sizeof(p), "spec.endpoints[%zu]", i);
		if (is_null(en)) {
			ediag(c, SE_ERROR, en, p, "endpoint may not be null");
			continue;
		}
		if (!want_map(c, en, p))
			continue;
		e->nendpoints++;
		ep->line = en->line;
		check_keys(c, en, p, known, NELEM(known), UNKNOWN_ERROR);

		v = map_get(en, "address");
		pathf(pp, sizeof(pp), "%s.address", p);
		if (get_str(c, v, pp, &ep->address) && ep->address == NULL)
			ediag(c, SE_ERROR, en, pp, "missing");
		else if (ep->address != NULL)
			ep->line = v->line;

		v = map_get(en, "ports");
		pathf(pp, sizeof(pp), "%s.ports", p);
		if (want_map(c, v, pp)) {
			check_keys(c, v, pp, NULL, 0, UNKNOWN_ANY);
			ep->ports = xcalloc(c, v->nkids / 2 + 1,
			    sizeof(*ep->ports));
			for (size_t j = 0; ep->ports && j + 1 < v->nkids;
			    j += 2) {
				const struct ynode *k = v->kids[j];
				const struct ynode *val = v->kids[j + 1];
				char kp[256];
				if (k->type != Y_SCALAR)
					continue;
				pathf(kp, sizeof(kp), "%s.%.64s", pp, k->s);
				if (find_port(e, k->s) == NULL)
					ediag(c, SE_ERROR, k, kp, "port name "
					    "\"%.64s\" is not declared in "
					    "spec.ports", k->s);
				if (!get_int(c, val, kp, &num, &present))
					continue;
				if (!present) {
					ediag(c, SE_ERROR, k, kp, "missing "
					    "port number");
					continue;
				}
				if (num < 1 || num > 65535) {
					ediag(c, SE_ERROR, val, kp, "port %"
					    PRId64 " out of range 1-65535",
					    num);
					continue;
				}
				struct se_kv *kv = &ep->ports[ep->nports];
				if ((kv->key = xstrdup(c, k->s)) == NULL)
					continue;
				if (asprintf(&kv->value, "%" PRId64, num) <
				    0) {
					c->oom = true;
					free(kv->key);
					kv->key = NULL;
					continue;
				}
				ep->nports++;
			}
		}

		pathf(pp, sizeof(pp), "%s.labels", p);
		get_labels(c, map_get(en, "labels"), pp, &ep->labels,
		    &ep->nlabels);
		pathf(pp, sizeof(pp), "%s.network", p);
		get_str(c, map_get(en, "network"), pp, &ep->network);
		pathf(pp, sizeof(pp), "%s.locality", p);
		get_str(c, map_get(en, "locality"), pp, &ep->locality);
		pathf(pp, sizeof(pp), "%s.serviceAccount", p);
		char *sa = NULL;
		get_str(c, map_get(en, "serviceAccount"), pp, &sa);
		free(sa);

		v = map_get(en, "weight");
		pathf(pp, sizeof(pp), "%s.weight", p);
		if (get_int(c, v, pp, &num, &present) && present) {
			if (num < 0 || num > UINT32_MAX)
				ediag(c, SE_ERROR, v, pp, "weight %" PRId64
				    " out of range 0-4294967295", num);
			else
				ep->weight = (uint32_t)num;
		}
	}
}

static void
check_endpoint_addresses(struct sectx *c, struct serviceentry *e,
    const struct ynode *n)
{
	char p[64];

	for (size_t i = 0, k = 0; n && i < n->nkids && k < e->nendpoints;
	    i++) {
		const struct ynode *en = n->kids[i], *an;
		const struct se_endpoint *ep;
		if (en->type != Y_MAP)
			continue;
		ep = &e->endpoints[k++];
		if (ep->address == NULL)
			continue;
		an = map_get(en, "address");
		pathf(p, sizeof(p), "spec.endpoints[%zu].address", i);
		if (e->resolution == SE_RES_STATIC) {
			if (is_ip(ep->address) ||
			    strncmp(ep->address, "unix://", 7) == 0)
				continue;
			if (se_valid_hostname(ep->address, false))
				ediag(c, SE_ERROR, an, p, "\"%.260s\" is a "
				    "hostname, but resolution STATIC needs IP "
				    "addresses; use resolution: DNS to resolve "
				    "endpoint hostnames", ep->address);
			else
				ediag(c, SE_ERROR, an, p, "\"%.260s\" is not an "
				    "IP address or unix:// path", ep->address);
		} else if (e->resolution == SE_RES_DNS ||
		    e->resolution == SE_RES_DNS_ROUND_ROBIN) {
			if (is_ip(ep->address) ||
			    strncmp(ep->address, "unix://", 7) == 0 ||
			    se_valid_hostname(ep->address, false))
				continue;
			ediag(c, SE_ERROR, an, p, "\"%.260s\" is not a "
			    "hostname or IP address", ep->address);
		}
	}
}

static void
load_export_to(struct sectx *c, struct serviceentry *e, const struct ynode *n)
{
	char p[64];
	const struct ynode *none = NULL;

	if (!want_seq(c, n, "spec.exportTo") || n->nkids == 0)
		return;
	if ((e->export_to = xcalloc(c, n->nkids, sizeof(*e->export_to))) ==
	    NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++) {
		const struct ynode *x = n->kids[i];
		char *s;
		bool dup = false;

		pathf(p, sizeof(p), "spec.exportTo[%zu]", i);
		if (!get_str(c, x, p, &s))
			continue;
		if (s == NULL || (strcmp(s, ".") != 0 && strcmp(s, "*") != 0 &&
		    strcmp(s, "~") != 0 && !is_dns_label_str(s))) {
			ediag(c, SE_ERROR, x, p, "invalid exportTo \"%.64s\": "
			    "must be \".\", \"*\", \"~\" or a namespace name",
			    s ? s : "");
			free(s);
			continue;
		}
		/* "." is the entry's own namespace */
		const char *si = strcmp(s, ".") == 0 ? e->namespace : s;
		for (size_t j = 0; j < e->nexport_to; j++) {
			const char *sj = strcmp(e->export_to[j], ".") == 0 ?
			    e->namespace : e->export_to[j];
			if (si != NULL && sj != NULL && strcmp(si, sj) == 0)
				dup = true;
		}
		if (dup)
			ediag(c, SE_ERROR, x, p, "duplicate exportTo entry "
			    "\"%s\"", s);
		if (strcmp(s, "~") == 0)
			none = x;
		e->export_to[e->nexport_to++] = s;
	}
	if (none != NULL && e->nexport_to > 1)
		ediag(c, SE_ERROR, none, "spec.exportTo", "\"~\" (export to "
		    "no namespace) cannot be combined with other entries");
}

static void
load_status(struct sectx *c, struct serviceentry *e, const struct ynode *st)
{
	static const char *const known[] = { "host", "value", "type" };
	const struct ynode *n = map_get(st, "addresses");
	char p[64], pp[80];

	if (!want_seq(c, n, "status.addresses") || n->nkids == 0)
		return;
	if (n->nkids > SE_MAX_ADDRESSES * 2) {
		ediag(c, SE_WARNING, n, "status.addresses", "too many "
		    "addresses (%zu); ignored", n->nkids);
		return;
	}
	e->status_addresses = xcalloc(c, n->nkids,
	    sizeof(*e->status_addresses));
	if (e->status_addresses == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++) {
		const struct ynode *a = n->kids[i], *v;
		struct se_status_address *sa =
		    &e->status_addresses[e->nstatus_addresses];
		pathf(p, sizeof(p), "status.addresses[%zu]", i);
		if (!want_map(c, a, p))
			continue;
		check_keys(c, a, p, known, NELEM(known), UNKNOWN_WARN);
		pathf(pp, sizeof(pp), "%s.host", p);
		get_str(c, map_get(a, "host"), pp, &sa->host);
		v = map_get(a, "value");
		pathf(pp, sizeof(pp), "%s.value", p);
		if (!get_str(c, v, pp, &sa->value) || sa->value == NULL ||
		    !is_ip(sa->value)) {
			if (sa->value != NULL || is_null(v))
				ediag(c, SE_WARNING, v ? v : a, pp, "\"%.64s\" "
				    "is not an IP address; status address "
				    "ignored", sa->value ? sa->value : "");
			free(sa->host);
			free(sa->value);
			sa->host = sa->value = NULL;
			continue;
		}
		e->nstatus_addresses++;
	}
}

/* Host nodes for cross-field checks (hosts that passed validation). */
static size_t
nhostn(const struct ynode *hosts)
{
	return hosts != NULL && hosts->type == Y_SEQ &&
	    hosts->nkids <= SE_MAX_HOSTS ? hosts->nkids : 0;
}

static const struct ynode *
valid_host(const struct ynode *hosts, size_t i)
{
	const struct ynode *h = hosts->kids[i];
	if (h->type != Y_SCALAR || strlen(h->s) != h->len ||
	    !se_valid_hostname(h->s, true))
		return NULL;
	return h;
}

static bool
parse_enum(const char *s, const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	return false;
}

/* The entry opts out of VIPs (Istio's auto-allocation label). */
static bool
autoallocate_off(const struct serviceentry *e)
{
	for (size_t i = 0; i < e->nlabels; i++)
		if (strcmp(e->labels[i].key,
		    "networking.istio.io/enable-autoallocate-ip") == 0)
			return strcasecmp(e->labels[i].value, "false") == 0;
	return false;
}

static void
load_spec(struct sectx *c, struct serviceentry *e, const struct ynode *spec)
{
	static const char *const known[] = { "hosts", "addresses", "ports",
	    "location", "resolution", "endpoints", "exportTo",
	    "workloadSelector", "subjectAltNames" };
	static const char *const locations[] = { NULL, "MESH_EXTERNAL",
	    "MESH_INTERNAL" };
	const struct ynode *v, *resn, *hostsn, *epn, *wsn, *addrn, *cidr;
	char *s = NULL, list[128];
	int x;
	bool res_ok = true;

	check_keys(c, spec, "spec", known, NELEM(known), UNKNOWN_ERROR);

	/* resolution and location first: other checks depend on them */
	resn = map_get(spec, "resolution");
	if (!get_str(c, resn, "spec.resolution", &s))
		res_ok = false;
	else if (s != NULL) {
		if (parse_enum(s, resolutions, NELEM(resolutions), &x))
			e->resolution = (enum se_resolution)x;
		else {
			res_ok = false;
			append_list(list, sizeof(list), resolutions,
			    NELEM(resolutions));
			ediag(c, SE_ERROR, resn, "spec.resolution", "unknown "
			    "resolution \"%.64s\" (valid: %s)", s, list);
		}
	}
	free(s);
	s = NULL;
	v = map_get(spec, "location");
	if (get_str(c, v, "spec.location", &s) && s != NULL) {
		if (parse_enum(s, locations, NELEM(locations), &x))
			e->location = (enum se_location)x;
		else
			ediag(c, SE_ERROR, v, "spec.location", "unknown location "
			    "\"%.64s\" (valid: MESH_EXTERNAL, MESH_INTERNAL)",
			    s);
	}
	free(s);

	hostsn = map_get(spec, "hosts");
	load_hosts(c, e, spec, hostsn);
	load_ports(c, e, map_get(spec, "ports"));
	addrn = map_get(spec, "addresses");
	load_addresses(c, e, addrn, &cidr);
	epn = map_get(spec, "endpoints");
	load_endpoints(c, e, epn);
	load_export_to(c, e, map_get(spec, "exportTo"));

	wsn = map_get(spec, "workloadSelector");
	if (want_map(c, wsn, "spec.workloadSelector")) {
		struct se_kv *l = NULL;
		size_t nl = 0;
		check_keys(c, wsn, "spec.workloadSelector",
		    (const char *const[]){ "labels" }, 1, UNKNOWN_ERROR);
		get_labels(c, map_get(wsn, "labels"),
		    "spec.workloadSelector.labels", &l, &nl);
		kv_free(l, nl);
		e->has_workload_selector = true;
	}
	v = map_get(spec, "subjectAltNames");
	if (want_seq(c, v, "spec.subjectAltNames"))
		for (size_t i = 0; i < v->nkids; i++) {
			char p[64];
			pathf(p, sizeof(p), "spec.subjectAltNames[%zu]", i);
			get_str(c, v->kids[i], p, &s);
			free(s);
		}

	/* every host gets every port, every port every endpoint: the product
	 * is what the registry holds and the rules carry. Each factor is
	 * capped, the product must be too: 256 x 256 x 4096 from 150 KB of
	 * YAML would be 8 GB on every node */
	size_t targets = se_dnat_targets(e);
	if (targets > SE_MAX_TARGETS)
		ediag(c, SE_ERROR, epn ? epn : spec, "spec", "%zu hosts x %zu ports x %zu endpoints = %zu "
		    "DNAT targets; the limit is %d per ServiceEntry (split it, or use fewer hosts or ports "
		    "per entry)", e->nhosts, e->nports, e->nendpoints, targets, SE_MAX_TARGETS);

	/* cross-field rules, in the order of Istio's webhook */
	if (e->has_workload_selector && e->nendpoints > 0)
		ediag(c, SE_ERROR, wsn, "spec.workloadSelector", "endpoints and "
		    "workloadSelector are mutually exclusive; use one of them");

	/* as Istio: an address with a TCP port cannot tell hosts apart */
	if (e->naddresses > 0 && e->nhosts > 1)
		for (size_t i = 0; i < e->nports; i++) {
			const char *pr = e->ports[i].protocol;
			if (pr == NULL || strcmp(pr, "TCP") == 0 ||
			    strcmp(pr, "TLS") == 0 || strcmp(pr, "Mongo") == 0 ||
			    strcmp(pr, "Redis") == 0 || strcmp(pr, "MySQL") == 0) {
				ediag(c, SE_WARNING, hostsn, "spec.hosts",
				    "more than one host with addresses and the "
				    "TCP port %u: TCP traffic to the addresses "
				    "cannot be told apart by host",
				    e->ports[i].number);
				break;
			}
		}

	/* a VIP without ports: DNS answers, then every connection is refused
	 * (the DNAT rules are per declared port; the rest of a VIP is
	 * rejected so it fails fast): say so before traffic finds out */
	if (res_ok && e->nports == 0 && is_null(map_get(spec, "ports")) &&
	    e->resolution != SE_RES_NONE && e->naddresses == 0 &&
	    !autoallocate_off(e))
		ediag(c, SE_WARNING, spec, "spec.ports", "missing: the hosts "
		    "get a VIP but no DNAT rule, so every connection to the "
		    "VIP is rejected; declare the ports clients use");

	if (!res_ok)
		return;     /* the rules below depend on a valid resolution */
	if (cidr != NULL && e->resolution != SE_RES_NONE &&
	    e->resolution != SE_RES_STATIC)
		ediag(c, SE_ERROR, cidr, "spec.addresses", "CIDR \"%.64s\" is "
		    "only allowed with resolution NONE or STATIC, not %s",
		    cidr->s, se_resolution_name(e->resolution));

	switch (e->resolution) {
	case SE_RES_NONE:
		if (e->nendpoints > 0)
			ediag(c, SE_ERROR, epn, "spec.endpoints", "resolution "
			    "NONE does not allow endpoints; use STATIC or DNS");
		break;
	case SE_RES_STATIC:
		if (e->nendpoints == 0 && !e->has_workload_selector)
			ediag(c, SE_WARNING, resn, "spec.endpoints",
			    "resolution STATIC with no endpoints and no "
			    "workloadSelector: the service has no endpoints");
		check_endpoint_addresses(c, e, epn);
		break;
	case SE_RES_DNS:
	case SE_RES_DNS_ROUND_ROBIN:
		for (size_t i = 0; e->nendpoints == 0 &&
		    !e->has_workload_selector && i < nhostn(hostsn); i++) {
			const struct ynode *h = valid_host(hostsn, i);
			char p[64];
			if (h == NULL || !is_wildcard(h->s))
				continue;
			pathf(p, sizeof(p), "spec.hosts[%zu]", i);
			ediag(c, SE_ERROR, h, p, "wildcard host \"%s\" cannot "
			    "be resolved with resolution %s and no endpoints; "
			    "use resolution NONE or DYNAMIC_DNS, or add "
			    "endpoints", h->s,
			    se_resolution_name(e->resolution));
		}
		if (e->resolution == SE_RES_DNS_ROUND_ROBIN &&
		    e->nendpoints > 1)
			ediag(c, SE_ERROR, epn, "spec.endpoints", "resolution "
			    "DNS_ROUND_ROBIN allows at most one endpoint "
			    "(found %zu)", e->nendpoints);
		check_endpoint_addresses(c, e, epn);
		break;
	case SE_RES_DYNAMIC_DNS:
		if (e->nendpoints > 0)
			ediag(c, SE_ERROR, epn, "spec.endpoints", "resolution "
			    "DYNAMIC_DNS does not allow endpoints");
		if (e->naddresses > 0)
			ediag(c, SE_ERROR, addrn, "spec.addresses", "resolution "
			    "DYNAMIC_DNS does not allow addresses");
		for (size_t i = 0; i < nhostn(hostsn); i++) {
			const struct ynode *h = valid_host(hostsn, i);
			char p[64];
			if (h == NULL || is_wildcard(h->s))
				continue;
			pathf(p, sizeof(p), "spec.hosts[%zu]", i);
			ediag(c, SE_ERROR, h, p, "resolution DYNAMIC_DNS "
			    "requires wildcard hosts (\"*.example.com\"), not "
			    "\"%s\"", h->s);
		}
		break;
	}
}

/* ------------------------------------------------------- ServiceEntry */

static void
load_serviceentry(struct se_set *set, const char *file,
    const struct ynode *root)
{
	static const char *const known_top[] = { "apiVersion", "kind",
	    "metadata", "spec", "status" };
	struct sectx c;
	struct serviceentry e;
	const struct ynode *md, *v, *spec;
	char ns_buf[80], name_buf[260];
	char *s = NULL;

	memset(&c, 0, sizeof(c));
	memset(&e, 0, sizeof(e));
	c.set = set;
	c.file = file;
	c.ns = "default";
	c.name = UNNAMED;
	e.line = root->line;
	e.file = xstrdup(&c, file);

	/* name and namespace first: every diagnostic carries them */
	md = map_get(root, "metadata");
	v = map_get(md, "namespace");
	if (v != NULL && v->type == Y_SCALAR && !is_null(v) && v->len > 0)
		c.ns = pathf(ns_buf, sizeof(ns_buf), "%.64s", v->s);
	v = map_get(md, "name");
	if (v != NULL && v->type == Y_SCALAR && !is_null(v))
		c.name = pathf(name_buf, sizeof(name_buf), "%.253s", v->s);

	check_keys(&c, root, "", known_top, NELEM(known_top), UNKNOWN_ERROR);

	v = map_get(root, "apiVersion");
	if (get_str(&c, v, "apiVersion", &s)) {
		size_t i;
		for (i = 0; s != NULL && i < NELEM(api_versions); i++)
			if (strcmp(s, api_versions[i]) == 0)
				break;
		if (s == NULL)
			ediag(&c, SE_ERROR, root, "apiVersion", "missing "
			    "(use networking.istio.io/v1)");
		else if (i == NELEM(api_versions))
			ediag(&c, SE_ERROR, v, "apiVersion", "unsupported "
			    "apiVersion \"%.64s\" for ServiceEntry "
			    "(supported: networking.istio.io/v1, "
			    "networking.istio.io/v1beta1, "
			    "networking.istio.io/v1alpha3)", s);
	}
	free(s);

	if (is_null(md))
		ediag(&c, SE_ERROR, root, "metadata.name", "missing");
	else if (want_map(&c, md, "metadata")) {
		v = map_get(md, "name");
		if (get_str(&c, v, "metadata.name", &e.name)) {
			if (e.name == NULL)
				ediag(&c, SE_ERROR, md, "metadata.name",
				    "missing");
			else if (!is_k8s_name(e.name, true))
				ediag(&c, SE_ERROR, v, "metadata.name",
				    "invalid name \"%.253s\": must be a "
				    "lower-case DNS-1123 subdomain", e.name);
		}
		v = map_get(md, "namespace");
		if (get_str(&c, v, "metadata.namespace", &e.namespace) &&
		    e.namespace != NULL && *e.namespace == '\0') {
			free(e.namespace);
			e.namespace = NULL;
		} else if (e.namespace != NULL &&
		    !is_k8s_name(e.namespace, false))
			ediag(&c, SE_ERROR, v, "metadata.namespace", "invalid "
			    "namespace \"%.64s\": must be a lower-case "
			    "DNS-1123 label", e.namespace);
		get_labels(&c, map_get(md, "labels"), "metadata.labels",
		    &e.labels, &e.nlabels);
		get_str(&c, map_get(md, "creationTimestamp"),
		    "metadata.creationTimestamp", &e.creation_timestamp);
		check_keys(&c, md, "metadata", NULL, 0, UNKNOWN_ANY);
	}
	if (e.namespace == NULL)
		e.namespace = xstrdup(&c, "default");

	spec = map_get(root, "spec");
	if (is_null(spec))
		ediag(&c, SE_ERROR, spec ? spec : root, "spec", "missing");
	else if (want_map(&c, spec, "spec"))
		load_spec(&c, &e, spec);

	v = map_get(root, "status");
	if (want_map(&c, v, "status"))
		load_status(&c, &e, v);

	if (c.nerr == 0 && !c.oom && e.name != NULL) {
		const struct serviceentry *o = index_find(set, e.namespace,
		    e.name);
		if (o != NULL)
			ediag(&c, SE_ERROR, map_get(md, "name"),
			    "metadata.name", "duplicate ServiceEntry %s/%s, "
			    "first defined at %s:%d", e.namespace, e.name,
			    o->file, o->line);
	}
	if (c.oom && c.nerr == 0)
		ediag(&c, SE_ERROR, root, "", "out of memory");
	if (c.nerr > 0) {
		set->nrejected++;
		if (c.name != NULL && strcmp(c.name, UNNAMED) != 0)
			add_rejected_key(set, c.ns, c.name, file, root->line);
		entry_free(&e);
		return;
	}
	struct serviceentry packed;
	if (set->open == NULL || !entry_reserve(set) || !entry_copy(&set->open->pool, &packed, &e)) {
		ediag(&c, SE_ERROR, root, "", "out of memory");
		set->nrejected++;
		entry_free(&e);
		return;
	}
	entry_free(&e);
	entry_add(set, &packed);
}
