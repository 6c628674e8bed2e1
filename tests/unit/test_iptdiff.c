/* Unit tests for iptdiff (incremental iptables-restore payloads). The
 * model below applies a payload as iptables-restore --noflush does, so the
 * tests check the result of old + delta, not only the delta's text. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iptdiff.h"

/* ---- a small iptables-restore --noflush model ---- */

#define MCH 256
#define MRULES 64

struct mchain {
	char name[96];
	char *rules[MRULES];
	int n;
	int used;
};

struct model {
	struct mchain c[MCH];
};

static struct mchain *
mfind(struct model *m, const char *table, const char *name, int create)
{
	char full[80];
	snprintf(full, sizeof(full), "%s/%s", table, name);
	for (int i = 0; i < MCH; i++)
		if (m->c[i].used && strcmp(m->c[i].name, full) == 0)
			return &m->c[i];
	if (!create)
		return NULL;
	for (int i = 0; i < MCH; i++)
		if (!m->c[i].used) {
			m->c[i].used = 1;
			snprintf(m->c[i].name, sizeof(m->c[i].name), "%s", full);
			return &m->c[i];
		}
	cr_assert_fail("model full");
	return NULL;
}

static void
mflush(struct mchain *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->rules[i]);
	c->n = 0;
}

/* Applies payload; returns 0 or -1 where iptables-restore would fail. */
static int
mapply(struct model *m, const char *payload)
{
	char *copy = strdup(payload), *save = NULL, table[16] = "";
	int rc = 0;
	for (char *l = strtok_r(copy, "\n", &save); l && rc == 0; l = strtok_r(NULL, "\n", &save)) {
		char chain[64];
		if (l[0] == '*') {
			snprintf(table, sizeof(table), "%s", l + 1);
		} else if (strcmp(l, "COMMIT") == 0) {
			table[0] = '\0';
		} else if (l[0] == ':') {
			sscanf(l + 1, "%63s", chain);
			mflush(mfind(m, table, chain, 1));
		} else if (strncmp(l, "-A ", 3) == 0 || strncmp(l, "-D ", 3) == 0) {
			sscanf(l + 3, "%63s", chain);
			struct mchain *c = mfind(m, table, chain, 0);
			if (c == NULL) {
				rc = -1;
				break;
			}
			const char *spec = l + 3;
			if (l[1] == 'A') {
				cr_assert_lt(c->n, MRULES);
				c->rules[c->n++] = strdup(spec);
				continue;
			}
			int k = 0;
			while (k < c->n && strcmp(c->rules[k], spec) != 0)
				k++;
			if (k == c->n) {
				rc = -1;
				break;
			}
			free(c->rules[k]);
			memmove(c->rules + k, c->rules + k + 1, (size_t)(c->n - k - 1) * sizeof(char *));
			c->n--;
		} else if (strncmp(l, "-X ", 3) == 0) {
			struct mchain *c = mfind(m, table, l + 3, 0);
			if (c == NULL || c->n != 0) {
				rc = -1;
				break;
			}
			/* -X of a chain something still jumps to fails */
			char target[80];
			snprintf(target, sizeof(target), "-j %s", l + 3);
			for (int i = 0; i < MCH; i++)
				for (int r = 0; m->c[i].used && r < m->c[i].n; r++) {
					const char *t = strstr(m->c[i].rules[r], target);
					if (t && t[strlen(target)] == '\0')
						rc = -1;
				}
			c->used = 0;
		} else {
			rc = -1;
		}
	}
	free(copy);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The model as sorted text; the per-VIP chains' rules sorted too (their
 * group order is free), the others in their order. */
static char *
mdump(struct model *m)
{
	static char buf[65536];
	char *lines[MCH];
	int n = 0;
	for (int i = 0; i < MCH; i++) {
		struct mchain *c = &m->c[i];
		if (!c->used)
			continue;
		char one[8192];
		size_t off = (size_t)snprintf(one, sizeof(one), "%s:", c->name);
		char *r[MRULES];
		memcpy(r, c->rules, sizeof(char *) * (size_t)c->n);
		if (strstr(c->name, "/SEDNS-SERVICES") || strstr(c->name, "/SEDNS-FILTER"))
			qsort(r, (size_t)c->n, sizeof(char *), cmp_str);
		for (int k = 0; k < c->n; k++)
			off += (size_t)snprintf(one + off, sizeof(one) - off, "\n  %s", r[k]);
		lines[n++] = strdup(one);
	}
	qsort(lines, (size_t)n, sizeof(char *), cmp_str);
	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		strcat(buf, lines[i]);
		strcat(buf, "\n");
		free(lines[i]);
	}
	return buf;
}

static void
mfree(struct model *m)
{
	for (int i = 0; i < MCH; i++)
		if (m->c[i].used)
			mflush(&m->c[i]);
	memset(m, 0, sizeof(*m));
}

/* ---- rendered-like texts ---- */

/* spec: services separated by ';', each "NAME@VIP=EP,EP,..." (no
 * endpoints: the port is rejected in SEDNS-FILTER). */
static char *
render(const char *spec)
{
	static char out[32768];
	char decl[8192] = "", svcs[8192] = "", chains[16384] = "", filt[4096] = "";
	char copy[1024], *save = NULL;
	snprintf(copy, sizeof(copy), "%s", spec);
	for (char *s = strtok_r(copy, ";", &save); s; s = strtok_r(NULL, ";", &save)) {
		char name[32], vip[32], eps[256] = "";
		if (sscanf(s, "%31[^@]@%31[^=]=%255s", name, vip, eps) < 2)
			cr_assert_fail("bad spec %s", s);
		if (eps[0] == '\0') {
			snprintf(filt + strlen(filt), sizeof(filt) - strlen(filt),
			    "-A SEDNS-FILTER -d %s/32 -p tcp -m comment --comment \"%s\" -j REJECT --reject-with tcp-reset\n"
			    "-A SEDNS-FILTER -d %s/32 -m comment --comment \"%s\" -j REJECT\n", vip, name, vip, name);
			continue;
		}
		snprintf(decl + strlen(decl), sizeof(decl) - strlen(decl), ":SEDNS-SVC-%s - [0:0]\n", name);
		snprintf(svcs + strlen(svcs), sizeof(svcs) - strlen(svcs),
		    "-A SEDNS-SERVICES -d %s/32 -p tcp -m tcp --dport 80 -j SEDNS-SVC-%s\n", vip, name);
		char *es = NULL;
		for (char *e = strtok_r(eps, ",", &es); e; e = strtok_r(NULL, ",", &es)) {
			snprintf(decl + strlen(decl), sizeof(decl) - strlen(decl), ":SEDNS-SEP-%s-%s - [0:0]\n", name, e);
			snprintf(chains + strlen(chains), sizeof(chains) - strlen(chains),
			    "-A SEDNS-SVC-%s -m statistic -j SEDNS-SEP-%s-%s\n"
			    "-A SEDNS-SEP-%s-%s -p tcp -j DNAT --to-destination %s:80\n", name, name, e, name, e, e);
		}
	}
	snprintf(out, sizeof(out), "*nat\n:SEDNS-SERVICES - [0:0]\n%s%s%sCOMMIT\n*filter\n:SEDNS-FILTER - [0:0]\n%sCOMMIT\n",
	    decl, svcs, chains, filt);
	return out;
}

/* old -> new through the delta equals new applied fresh. */
static struct iptdiff_stats
roundtrip(const char *oldspec, const char *newspec, enum iptdiff_result want, char **delta_out)
{
	char *old = strdup(render(oldspec)), *new = strdup(render(newspec));
	struct rules_buf d = { 0 };
	struct iptdiff_stats st;
	enum iptdiff_result r = iptdiff(old, new, &d, &st);
	cr_assert_eq(r, want, "result %d, want %d; delta:\n%s", r, want, d.data ? d.data : "");
	struct model a = { 0 }, b = { 0 };
	cr_assert_eq(mapply(&a, old), 0);
	if (r == IPTDIFF_DELTA)
		cr_assert_eq(mapply(&a, d.data), 0, "delta failed to apply:\n%s", d.data);
	cr_assert_eq(mapply(&b, new), 0);
	char *got = strdup(mdump(&a));
	cr_assert_str_eq(got, mdump(&b), "delta:\n%s", d.data ? d.data : "");
	free(got);
	mfree(&a);
	mfree(&b);
	if (delta_out)
		*delta_out = d.data ? strdup(d.data) : strdup("");
	rules_buf_free(&d);
	free(old);
	free(new);
	return st;
}

Test(iptdiff, same_text_sends_nothing)
{
	roundtrip("a@240.240.0.1=10.0.0.1,10.0.0.2;b@240.240.0.2=", "a@240.240.0.1=10.0.0.1,10.0.0.2;b@240.240.0.2=",
	    IPTDIFF_SAME, NULL);
}

Test(iptdiff, reordered_groups_send_nothing)
{
	roundtrip("a@240.240.0.1=10.0.0.1;b@240.240.0.2=10.0.0.2", "b@240.240.0.2=10.0.0.2;a@240.240.0.1=10.0.0.1",
	    IPTDIFF_SAME, NULL);
}

Test(iptdiff, endpoint_change_touches_only_that_service)
{
	char *d;
	struct iptdiff_stats st = roundtrip("a@240.240.0.1=10.0.0.1,10.0.0.2;b@240.240.0.2=10.0.0.9",
	    "a@240.240.0.1=10.0.0.1,10.0.0.3;b@240.240.0.2=10.0.0.9", IPTDIFF_DELTA, &d);
	cr_assert_eq(st.chains_added, 1);       /* SEP 10.0.0.3 */
	cr_assert_eq(st.chains_changed, 1);     /* SVC a */
	cr_assert_eq(st.chains_deleted, 1);     /* SEP 10.0.0.2 */
	cr_assert_eq(st.rules_added + st.rules_deleted, 0);
	cr_assert_null(strstr(d, "SEDNS-SERVICES"), "%s", d);
	cr_assert_null(strstr(d, "-b"), "%s", d);
	cr_assert_null(strstr(d, "*filter"), "an unchanged table is not sent:\n%s", d);
	cr_assert_not_null(strstr(d, "-X SEDNS-SEP-a-10.0.0.2\n"), "%s", d);
	free(d);
}

Test(iptdiff, added_host_appends_one_services_rule)
{
	char *d;
	struct iptdiff_stats st = roundtrip("a@240.240.0.1=10.0.0.1", "a@240.240.0.1=10.0.0.1;c@240.240.0.3=10.0.0.7",
	    IPTDIFF_DELTA, &d);
	cr_assert_eq(st.rules_added, 1);
	cr_assert_eq(st.rules_deleted, 0);
	cr_assert_eq(st.chains_added, 2);
	cr_assert_null(strstr(d, ":SEDNS-SERVICES"), "SERVICES is not flushed:\n%s", d);
	free(d);
}

Test(iptdiff, removed_host_is_unlinked_before_its_chains_go)
{
	char *d;
	struct iptdiff_stats st = roundtrip("a@240.240.0.1=10.0.0.1;c@240.240.0.3=10.0.0.7", "a@240.240.0.1=10.0.0.1",
	    IPTDIFF_DELTA, &d);
	cr_assert_eq(st.rules_deleted, 1);
	cr_assert_eq(st.chains_deleted, 2);
	cr_assert_lt(strstr(d, "-D SEDNS-SERVICES"), strstr(d, "-X "), "%s", d);
	free(d);
}

Test(iptdiff, filter_group_keeps_its_order)
{
	/* a loses its endpoints: its FILTER pair (tcp reset first) appears */
	roundtrip("a@240.240.0.1=10.0.0.1;b@240.240.0.2=", "a@240.240.0.1=;b@240.240.0.2=", IPTDIFF_DELTA, NULL);
	roundtrip("a@240.240.0.1=;b@240.240.0.2=", "a@240.240.0.1=10.0.0.1;b@240.240.0.2=", IPTDIFF_DELTA, NULL);
	/* a VIP moving to another host: the group is replaced whole */
	roundtrip("a@240.240.0.1=;b@240.240.0.2=", "z@240.240.0.1=;b@240.240.0.2=", IPTDIFF_DELTA, NULL);
}

Test(iptdiff, random_changes_round_trip)
{
	unsigned seed = 12345;
	char specs[2][1024];
	for (int round = 0; round < 300; round++) {
		for (int s = 0; s < 2; s++) {
			specs[s][0] = '\0';
			for (int i = 0; i < 8; i++) {
				seed = seed * 1103515245u + 12345u;
				if ((seed >> 16) % 4 == 0)
					continue;       /* host absent */
				int neps = (int)((seed >> 8) % 4);
				size_t l = strlen(specs[s]);
				snprintf(specs[s] + l, sizeof(specs[s]) - l, "%sh%d@240.240.0.%d=", l ? ";" : "", i,
				    1 + (int)((seed >> 20) % 3) * 10 + i);
				for (int e = 0; e < neps; e++) {
					seed = seed * 1103515245u + 12345u;
					l = strlen(specs[s]);
					snprintf(specs[s] + l, sizeof(specs[s]) - l, "%s10.0.%d.%d", e ? "," : "", i,
					    1 + (int)((seed >> 16) % 3) * 4 + e);
				}
			}
		}
		char *old = strdup(render(specs[0])), *new = strdup(render(specs[1]));
		struct rules_buf d = { 0 };
		struct iptdiff_stats st;
		enum iptdiff_result r = iptdiff(old, new, &d, &st);
		cr_assert(r == IPTDIFF_DELTA || r == IPTDIFF_SAME, "round %d: %d", round, r);
		struct model a = { 0 }, b = { 0 };
		cr_assert_eq(mapply(&a, old), 0);
		if (r == IPTDIFF_DELTA)
			cr_assert_eq(mapply(&a, d.data), 0, "round %d: delta failed:\n%s", round, d.data);
		mapply(&b, new);
		char *got = strdup(mdump(&a));
		cr_assert_str_eq(got, mdump(&b), "round %d\nold %s\nnew %s\ndelta:\n%s", round, specs[0], specs[1],
		    d.data ? d.data : "");
		free(got);
		mfree(&a);
		mfree(&b);
		rules_buf_free(&d);
		free(old);
		free(new);
	}
}

Test(iptdiff, unknown_lines_mean_full)
{
	struct rules_buf d = { 0 };
	struct iptdiff_stats st;
	const char *ok = render("a@240.240.0.1=10.0.0.1");
	char *okc = strdup(ok);
	cr_assert_eq(iptdiff("*nat\n-I SEDNS-SERVICES x\nCOMMIT\n", okc, &d, &st), IPTDIFF_FULL);
	cr_assert_eq(iptdiff(okc, "*nat\n:A - [0:0]\n", &d, &st), IPTDIFF_FULL, "an unterminated table");
	cr_assert_eq(iptdiff(okc, "*nat\n:A - [0:0]\n-A B x\nCOMMIT\n", &d, &st), IPTDIFF_FULL,
	    "a rule in an undeclared chain");
	cr_assert_eq(iptdiff(okc, "*filter\n:SEDNS-FILTER - [0:0]\nCOMMIT\n", &d, &st), IPTDIFF_FULL,
	    "another set of tables");
	cr_assert_eq(iptdiff(okc, "*nat\n:A - [0:0]\n:A - [0:0]\nCOMMIT\n*filter\nCOMMIT\n", &d, &st),
	    IPTDIFF_FULL, "a chain declared twice");
	free(okc);
	rules_buf_free(&d);
}
