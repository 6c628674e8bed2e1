/* iptdiff — see include/iptdiff.h. */
#include "iptdiff.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "textline.h"

#define MAX_TABLES 4

/* One "-A CHAIN ..." line: its chain, its group key (the -d value in the
 * per-VIP chains, empty elsewhere) and its place in the text. */
struct rule {
	struct line chain, key, text;
	size_t seq;
};

struct table {
	struct line name;
	struct line *decls;         /* chain names, sorted */
	size_t ndecls, capdecls;
	struct rule *rules;         /* sorted by chain, key, seq */
	size_t nrules, caprules;
};

struct parsed {
	struct table t[MAX_TABLES];
	size_t nt;
};

static void
parsed_free(struct parsed *ps)
{
	for (size_t i = 0; i < ps->nt; i++) {
		free(ps->t[i].decls);
		free(ps->t[i].rules);
	}
}

static bool
keyed(struct line chain)
{
	return line_is(chain, RULES_CHAIN_SERVICES) || line_is(chain, RULES_CHAIN_FILTER);
}

/* The value after " -d " (up to the next space), or an empty line. */
static struct line
dest_key(struct line l)
{
	for (size_t i = 0; i + 4 <= l.n; i++) {
		if (memcmp(l.p + i, " -d ", 4) != 0)
			continue;
		size_t s = i + 4, e = s;
		while (e < l.n && l.p[e] != ' ')
			e++;
		return (struct line){ l.p + s, e - s };
	}
	return (struct line){ l.p, 0 };
}

static int
decl_qcmp(const void *x, const void *y)
{
	return line_cmp(*(const struct line *)x, *(const struct line *)y);
}

static int
rule_qcmp(const void *x, const void *y)
{
	const struct rule *a = x, *b = y;
	int c = line_cmp(a->chain, b->chain);
	if (c == 0)
		c = line_cmp(a->key, b->key);
	if (c == 0)
		c = a->seq < b->seq ? -1 : a->seq > b->seq;
	return c;
}

static bool
add_rule(struct table *t, struct line l, size_t seq)
{
	struct line rest = { l.p + 3, l.n - 3 };         /* after "-A " */
	size_t sp = 0;
	while (sp < rest.n && rest.p[sp] != ' ')
		sp++;
	if (sp == 0)
		return false;
	if (t->nrules == t->caprules) {
		size_t nc = t->caprules ? t->caprules * 2 : 256;
		struct rule *nv = realloc(t->rules, nc * sizeof(*nv));
		if (nv == NULL)
			return false;
		t->rules = nv;
		t->caprules = nc;
	}
	struct rule *r = &t->rules[t->nrules++];
	r->chain = (struct line){ rest.p, sp };
	r->key = keyed(r->chain) ? dest_key(l) : (struct line){ l.p, 0 };
	r->text = rest;
	r->seq = seq;
	return true;
}

/* Only what rules_render writes parses: anything else means "full". */
static bool
parse(const char *text, struct parsed *ps)
{
	struct table *cur = NULL;
	size_t seq = 0;

	memset(ps, 0, sizeof(*ps));
	for (const char *p = text; *p;) {
		struct line l = line_next(&p);
		bool ok = true;
		if (l.n == 0 || l.p[0] == '#')
			continue;
		if (l.p[0] == '*' && cur == NULL && ps->nt < MAX_TABLES) {
			cur = &ps->t[ps->nt++];
			cur->name = (struct line){ l.p + 1, l.n - 1 };
		} else if (line_is(l, "COMMIT") && cur != NULL) {
			cur = NULL;
		} else if (l.p[0] == ':' && cur != NULL) {
			size_t e = 1;
			while (e < l.n && l.p[e] != ' ')
				e++;
			ok = e > 1 && line_push(&cur->decls, &cur->ndecls, &cur->capdecls,
			    (struct line){ l.p + 1, e - 1 });
		} else if (line_starts(l, "-A ") && cur != NULL) {
			ok = add_rule(cur, l, seq++);
		} else {
			ok = false;
		}
		if (!ok) {
			parsed_free(ps);
			return false;
		}
	}
	if (cur != NULL) {
		parsed_free(ps);
		return false;
	}
	for (size_t i = 0; i < ps->nt; i++) {
		struct table *t = &ps->t[i];
		if (t->ndecls > 0)
			qsort(t->decls, t->ndecls, sizeof(*t->decls), decl_qcmp);
		if (t->nrules > 0)
			qsort(t->rules, t->nrules, sizeof(*t->rules), rule_qcmp);
		for (size_t k = 1; k < t->ndecls; k++)
			if (line_cmp(t->decls[k - 1], t->decls[k]) == 0) {
				parsed_free(ps);
				return false;
			}
	}
	return true;
}

/* [*lo, *hi): the rules of chain in t (sorted by chain first). */
static void
chain_range(const struct table *t, struct line chain, size_t *lo, size_t *hi)
{
	size_t a = 0, b = t->nrules;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (line_cmp(t->rules[m].chain, chain) < 0)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	while (a < t->nrules && line_cmp(t->rules[a].chain, chain) == 0)
		a++;
	*hi = a;
}

static bool
rules_equal(const struct rule *a, size_t na, const struct rule *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (line_cmp(a[i].text, b[i].text) != 0)
			return false;
	return true;
}

/* The payload of one table, in four parts so that every declaration
 * comes first and every deletion of a chain last. */
struct tout {
	struct rules_buf decl, del, add, drop;
};

static void
put_rules(struct rules_buf *b, const char *op, const struct rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rules_buf_printf(b, "%s %.*s\n", op, (int)r[i].text.n, r[i].text.p);
}

/* The end of the group that starts at r[i] (same key). */
static size_t
group_end(const struct rule *r, size_t i, size_t n)
{
	size_t e = i + 1;
	while (e < n && line_cmp(r[e].key, r[i].key) == 0)
		e++;
	return e;
}

static void
diff_groups(struct tout *o, const struct rule *a, size_t na, const struct rule *b, size_t nb,
    struct iptdiff_stats *st)
{
	size_t i = 0, j = 0;
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : line_cmp(a[i].key, b[j].key);
		size_t ie = c <= 0 ? group_end(a, i, na) : i;
		size_t je = c >= 0 ? group_end(b, j, nb) : j;
		if (c == 0 && rules_equal(a + i, ie - i, b + j, je - j)) {
			i = ie;
			j = je;
			continue;
		}
		put_rules(&o->del, "-D", a + i, ie - i);
		put_rules(&o->add, "-A", b + j, je - j);
		st->rules_deleted += ie - i;
		st->rules_added += je - j;
		i = ie;
		j = je;
	}
}

static void
diff_table(struct tout *o, const struct table *a, const struct table *b, struct iptdiff_stats *st)
{
	size_t i = 0, j = 0;
	while (i < a->ndecls || j < b->ndecls) {
		int c = i == a->ndecls ? 1 : j == b->ndecls ? -1 : line_cmp(a->decls[i], b->decls[j]);
		struct line name = c <= 0 ? a->decls[i] : b->decls[j];
		size_t alo = 0, ahi = 0, blo = 0, bhi = 0;
		if (c <= 0)
			chain_range(a, name, &alo, &ahi);
		if (c >= 0)
			chain_range(b, name, &blo, &bhi);
		if (c < 0) {
			/* flushed here, deleted once nothing points at it */
			rules_buf_printf(&o->decl, ":%.*s - [0:0]\n", (int)name.n, name.p);
			rules_buf_printf(&o->drop, "-X %.*s\n", (int)name.n, name.p);
			st->chains_deleted++;
			i++;
			continue;
		}
		if (c > 0) {
			rules_buf_printf(&o->decl, ":%.*s - [0:0]\n", (int)name.n, name.p);
			put_rules(&o->add, "-A", b->rules + blo, bhi - blo);
			st->chains_added++;
			j++;
			continue;
		}
		if (keyed(name)) {
			diff_groups(o, a->rules + alo, ahi - alo, b->rules + blo, bhi - blo, st);
		} else if (!rules_equal(a->rules + alo, ahi - alo, b->rules + blo, bhi - blo)) {
			rules_buf_printf(&o->decl, ":%.*s - [0:0]\n", (int)name.n, name.p);
			put_rules(&o->add, "-A", b->rules + blo, bhi - blo);
			st->chains_changed++;
		}
		i++;
		j++;
	}
}

static void
tout_free(struct tout *o)
{
	rules_buf_free(&o->decl);
	rules_buf_free(&o->del);
	rules_buf_free(&o->add);
	rules_buf_free(&o->drop);
}

/* Every rule names a declared chain (a stray one would be lost). */
static bool
rules_declared(const struct table *t)
{
	size_t d = 0;
	for (size_t i = 0; i < t->nrules; i++) {
		while (d < t->ndecls && line_cmp(t->decls[d], t->rules[i].chain) < 0)
			d++;
		if (d == t->ndecls || line_cmp(t->decls[d], t->rules[i].chain) != 0)
			return false;
	}
	return true;
}

enum iptdiff_result
iptdiff(const char *old, const char *new, struct rules_buf *out, struct iptdiff_stats *st)
{
	struct parsed a, b;

	memset(st, 0, sizeof(*st));
	out->len = 0;
	if (out->data)
		out->data[0] = '\0';
	out->oom = false;
	if (!parse(old, &a))
		return IPTDIFF_FULL;
	if (!parse(new, &b)) {
		parsed_free(&a);
		return IPTDIFF_FULL;
	}
	enum iptdiff_result r = IPTDIFF_FULL;
	bool same_tables = a.nt == b.nt;
	for (size_t k = 0; same_tables && k < a.nt; k++)
		same_tables = line_cmp(a.t[k].name, b.t[k].name) == 0 && rules_declared(&a.t[k]) &&
		    rules_declared(&b.t[k]);
	if (!same_tables)
		goto done;
	bool oom = false;
	for (size_t k = 0; k < a.nt; k++) {
		struct tout o;
		memset(&o, 0, sizeof(o));
		diff_table(&o, &a.t[k], &b.t[k], st);
		oom |= o.decl.oom || o.del.oom || o.add.oom || o.drop.oom;
		if (o.decl.len + o.del.len + o.add.len + o.drop.len > 0) {
			rules_buf_printf(out, "*%.*s\n", (int)a.t[k].name.n, a.t[k].name.p);
			struct rules_buf *parts[] = { &o.decl, &o.del, &o.add, &o.drop };
			for (size_t p = 0; p < 4; p++)
				if (parts[p]->len)
					rules_buf_printf(out, "%s", parts[p]->data);
			rules_buf_printf(out, "COMMIT\n");
		}
		tout_free(&o);
	}
	r = oom || out->oom ? IPTDIFF_OOM : out->len == 0 ? IPTDIFF_SAME : IPTDIFF_DELTA;
done:
	parsed_free(&a);
	parsed_free(&b);
	return r;
}
