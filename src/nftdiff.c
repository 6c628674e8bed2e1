/* nftdiff — see include/nftdiff.h. */
#include "nftdiff.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "textline.h"

struct chain {
	struct line name;
	struct line *rules;
	size_t nrules;
};

struct parsed {
	struct line *skel;          /* every other line, in order */
	size_t nskel;
	struct line *elems;         /* services map elements, no comma */
	size_t nelems;
	struct line *vips;          /* vips set elements */
	size_t nvips;
	struct chain *chains;
	size_t nchains;
	struct line *pool;          /* storage for skel/elems/vips/rules */
	size_t npool, cappool;
};

static void
parsed_free(struct parsed *ps)
{
	free(ps->pool);
	free(ps->chains);
	free(ps->skel);
	free(ps->elems);
	free(ps->vips);
}




static int
line_qcmp(const void *x, const void *y)
{
	return line_cmp(*(const struct line *)x, *(const struct line *)y);
}

static int
chain_qcmp(const void *x, const void *y)
{
	return line_cmp(((const struct chain *)x)->name, ((const struct chain *)y)->name);
}


/* The element key: "VIP . proto . port" of "VIP . proto . port : goto X". */
static struct line
elem_key(struct line e)
{
	for (size_t i = 0; i + 2 < e.n; i++)
		if (e.p[i] == ' ' && e.p[i + 1] == ':' && e.p[i + 2] == ' ')
			return (struct line){ e.p, i };
	return e;
}

/*
 * Splits a rendered table into its parts. Rules of a chain are kept as
 * indexes into one pool; the chains' rule pointers are set at the end,
 * when the pool no longer moves.
 */
static bool
parse(const char *text, struct parsed *ps)
{
	size_t capskel = 0, capel = 0, capvip = 0, capch = 0;
	size_t *first = NULL;       /* per chain: its first rule's pool index */
	enum { TOP, MAP, SET, SVC } where = TOP;
	bool ok = true;

	memset(ps, 0, sizeof(*ps));
	for (const char *p = text; *p && ok;) {
		const char *e = strchr(p, '\n');
		struct line l = { p, e ? (size_t)(e - p) : strlen(p) };
		p = e ? e + 1 : p + l.n;
		if (where == SVC) {
			if (line_is(l, "\t}")) {
				where = TOP;
				continue;
			}
			if (!line_starts(l, "\t\t"))
				return parsed_free(ps), free(first), false;
			l.p += 2;
			l.n -= 2;
			ps->chains[ps->nchains - 1].nrules++;
			ok = line_push(&ps->pool, &ps->npool, &ps->cappool, l);
			continue;
		}
		if ((where == MAP || where == SET) && line_starts(l, "\t\t\t")) {
			l.p += 3;
			l.n -= 3;
			if (l.n > 0 && l.p[l.n - 1] == ',')
				l.n--;
			ok = where == MAP ? line_push(&ps->elems, &ps->nelems, &capel, l) :
			    line_push(&ps->vips, &ps->nvips, &capvip, l);
			continue;
		}
		/* the elements braces come and go with the first element:
		 * not part of the skeleton */
		if ((where == MAP || where == SET) && (line_is(l, "\t\telements = {") || line_is(l, "\t\t}")))
			continue;
		if (line_is(l, "\tmap services {"))
			where = MAP;
		else if (line_is(l, "\tset vips {"))
			where = SET;
		else if (line_is(l, "\t}"))
			where = TOP;
		if (line_starts(l, "\tchain svc_") && l.n > 2 && l.p[l.n - 1] == '{') {
			if (ps->nchains == capch) {
				size_t nc = capch ? capch * 2 : 64;
				struct chain *cv = realloc(ps->chains, nc * sizeof(*cv));
				size_t *fv = realloc(first, nc * sizeof(*fv));
				if (cv)
					ps->chains = cv;
				if (fv)
					first = fv;
				if (cv == NULL || fv == NULL) {
					ok = false;
					break;
				}
				capch = nc;
			}
			struct chain *c = &ps->chains[ps->nchains];
			c->name = (struct line){ l.p + 7, l.n - 7 - 2 };   /* "svc_X" */
			c->nrules = 0;
			first[ps->nchains++] = ps->npool;
			where = SVC;
			continue;
		}
		ok = line_push(&ps->skel, &ps->nskel, &capskel, l);
	}
	if (!ok || where != TOP) {
		free(first);
		parsed_free(ps);
		return false;
	}
	for (size_t i = 0; i < ps->nchains; i++)
		ps->chains[i].rules = ps->pool + first[i];
	free(first);
	if (ps->nelems > 0)
		qsort(ps->elems, ps->nelems, sizeof(*ps->elems), line_qcmp);
	if (ps->nvips > 0)
		qsort(ps->vips, ps->nvips, sizeof(*ps->vips), line_qcmp);
	if (ps->nchains > 0)
		qsort(ps->chains, ps->nchains, sizeof(*ps->chains), chain_qcmp);
	return true;
}

static bool
chain_equal(const struct chain *a, const struct chain *b)
{
	if (a->nrules != b->nrules)
		return false;
	for (size_t i = 0; i < a->nrules; i++)
		if (line_cmp(a->rules[i], b->rules[i]) != 0)
			return false;
	return true;
}

static void
put_rules(struct rules_buf *out, const struct chain *c)
{
	for (size_t i = 0; i < c->nrules; i++)
		rules_buf_printf(out, "add rule ip " RULES_NFT_TABLE " %.*s %.*s\n", (int)c->name.n, c->name.p,
		    (int)c->rules[i].n, c->rules[i].p);
}

/* Walks two sorted lists: cb(side, line) for what only one side has;
 * same-key pairs that differ go to changed (both). key may be NULL. */
static void
merge(const struct line *a, size_t na, const struct line *b, size_t nb, struct line (*key)(struct line),
    void (*only)(void *, bool newside, struct line), void (*changed)(void *, struct line, struct line), void *arg)
{
	size_t i = 0, j = 0;
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : line_cmp(key ? key(a[i]) : a[i], key ? key(b[j]) : b[j]);
		if (c < 0)
			only(arg, false, a[i++]);
		else if (c > 0)
			only(arg, true, b[j++]);
		else {
			if (line_cmp(a[i], b[j]) != 0 && changed)
				changed(arg, a[i], b[j]);
			i++;
			j++;
		}
	}
}

struct emit {
	struct rules_buf *out;
	const char *set;            /* "services" or "vips" */
	bool adding;                /* this pass writes additions */
	size_t *added, *deleted;
};

static void
elem_only(void *arg, bool newside, struct line l)
{
	struct emit *em = arg;
	if (newside != em->adding)
		return;
	struct line k = newside ? l : elem_key(l);
	rules_buf_printf(em->out, "%s element ip " RULES_NFT_TABLE " %s { %.*s }\n", newside ? "add" : "delete",
	    em->set, (int)k.n, k.p);
	(*(newside ? em->added : em->deleted))++;
}

static void
elem_changed(void *arg, struct line o, struct line n)
{
	/* a VIP:port that now goes to another chain: out, then in */
	struct emit *em = arg;
	if (em->adding) {
		rules_buf_printf(em->out, "add element ip " RULES_NFT_TABLE " %s { %.*s }\n", em->set, (int)n.n, n.p);
		(*em->added)++;
	} else {
		struct line k = elem_key(o);
		rules_buf_printf(em->out, "delete element ip " RULES_NFT_TABLE " %s { %.*s }\n", em->set, (int)k.n, k.p);
		(*em->deleted)++;
	}
}

enum nftdiff_result
nftdiff(const char *old, const char *new, struct rules_buf *out, struct nftdiff_stats *st)
{
	struct parsed a, b;
	enum nftdiff_result r = NFTDIFF_FULL;

	memset(st, 0, sizeof(*st));
	out->len = 0;
	if (out->data)
		out->data[0] = '\0';
	out->oom = false;
	if (!parse(old, &a))
		return NFTDIFF_FULL;
	if (!parse(new, &b)) {
		parsed_free(&a);
		return NFTDIFF_FULL;
	}
	bool same_skel = a.nskel == b.nskel;
	for (size_t i = 0; same_skel && i < a.nskel; i++)
		same_skel = line_cmp(a.skel[i], b.skel[i]) == 0;
	if (!same_skel)
		goto done;
	/* 1. chains: new ones created and filled, changed ones refilled */
	size_t i = 0, j = 0;
	while (i < a.nchains || j < b.nchains) {
		int c = i == a.nchains ? 1 : j == b.nchains ? -1 : line_cmp(a.chains[i].name, b.chains[j].name);
		if (c < 0) {
			i++;                        /* deleted in step 4 */
		} else if (c > 0) {
			rules_buf_printf(out, "add chain ip " RULES_NFT_TABLE " %.*s\n", (int)b.chains[j].name.n,
			    b.chains[j].name.p);
			put_rules(out, &b.chains[j]);
			st->chains_added++;
			j++;
		} else {
			if (!chain_equal(&a.chains[i], &b.chains[j])) {
				rules_buf_printf(out, "flush chain ip " RULES_NFT_TABLE " %.*s\n",
				    (int)b.chains[j].name.n, b.chains[j].name.p);
				put_rules(out, &b.chains[j]);
				st->chains_changed++;
			}
			i++;
			j++;
		}
	}
	/* 2. elements out, then in (a changed target is out and in) */
	struct emit em = { out, "services", false, &st->elems_added, &st->elems_deleted };
	merge(a.elems, a.nelems, b.elems, b.nelems, elem_key, elem_only, elem_changed, &em);
	em.adding = true;
	merge(a.elems, a.nelems, b.elems, b.nelems, elem_key, elem_only, elem_changed, &em);
	struct emit ev = { out, "vips", false, &st->vips_added, &st->vips_deleted };
	merge(a.vips, a.nvips, b.vips, b.nvips, NULL, elem_only, NULL, &ev);
	ev.adding = true;
	merge(a.vips, a.nvips, b.vips, b.nvips, NULL, elem_only, NULL, &ev);
	/* 3. chains nothing points at any more */
	i = j = 0;
	while (i < a.nchains) {
		int c = j == b.nchains ? -1 : line_cmp(a.chains[i].name, b.chains[j].name);
		if (c < 0) {
			rules_buf_printf(out, "delete chain ip " RULES_NFT_TABLE " %.*s\n", (int)a.chains[i].name.n,
			    a.chains[i].name.p);
			st->chains_deleted++;
			i++;
		} else if (c > 0) {
			j++;
		} else {
			i++;
			j++;
		}
	}
	r = out->oom ? NFTDIFF_OOM : out->len == 0 ? NFTDIFF_SAME : NFTDIFF_DELTA;
done:
	parsed_free(&a);
	parsed_free(&b);
	return r;
}
