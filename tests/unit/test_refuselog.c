/* Unit tests for refuselog.c: grouping by /24 and /56, first-at-once then
 * counts, forgetting quiet groups, and the fixed cap under a flood. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "refuselog.h"

static struct refuselog rl; /* 128 groups: static, not on the stack */

static struct netaddr
A(const char *s)
{
	struct netaddr a;
	cr_assert(netaddr_parse(s, &a), "%s", s);
	return a;
}

struct seen {
	char lines[8][96];
	size_t n;
};

static void
collect(void *arg, const struct refuselog_group *g)
{
	struct seen *s = arg;
	char p[NETPREFIX_STRLEN];
	if (s->n < 8)
		snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s %s %llu/%llu", netprefix_fmt(&g->pfx, p, sizeof(p)),
		    refuselog_reason_name(g->reason), (unsigned long long)g->count, (unsigned long long)g->total);
}

Test(refuselog, prefixes)
{
	struct netprefix p;
	char b[NETPREFIX_STRLEN];
	struct netaddr a = A("10.1.2.3");
	refuselog_prefix(&a, &p);
	cr_assert_str_eq(netprefix_fmt(&p, b, sizeof(b)), "10.1.2.0/24");
	a = A("2001:db8:aa:bbcc:1::5");
	refuselog_prefix(&a, &p);
	cr_assert_str_eq(netprefix_fmt(&p, b, sizeof(b)), "2001:db8:aa:bb00::/56");
}

Test(refuselog, first_then_counts)
{
	memset(&rl, 0, sizeof(rl));
	struct netprefix p;
	struct netaddr a1 = A("10.1.2.3"), a2 = A("10.1.2.200"), b = A("10.1.3.1");
	cr_assert(refuselog_note(&rl, &a1, REFUSE_ALLOW_FROM, 1, &p), "the first of 10.1.2.0/24 is logged");
	cr_assert_not(refuselog_note(&rl, &a2, REFUSE_ALLOW_FROM, 2, &p), "same /24: counted");
	cr_assert_not(refuselog_note(&rl, &a1, REFUSE_ALLOW_FROM, 3, &p));
	cr_assert(refuselog_note(&rl, &b, REFUSE_ALLOW_FROM, 3, &p), "another /24");
	cr_assert(refuselog_note(&rl, &a1, REFUSE_ALLOW_FROM_TCP, 3, &p), "another reason");
	struct seen s = { .n = 0 };
	uint64_t others;
	refuselog_flush(&rl, collect, &s, &others);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.lines[0], "10.1.2.0/24 allow_from 2/3");
	cr_assert_eq(others, 0);
	s.n = 0;
	refuselog_flush(&rl, collect, &s, &others);
	cr_assert_eq(s.n, 0, "reported once");
	cr_assert_not(refuselog_note(&rl, &a1, REFUSE_ALLOW_FROM, 70, &p), "still known: counted");
	/* quiet for REFUSELOG_FORGET_PERIODS periods: forgotten */
	for (int i = 0; i < REFUSELOG_FORGET_PERIODS + 1; i++)
		refuselog_flush(&rl, collect, &s, &others);
	cr_assert_eq(refuselog_groups(&rl), 0);
	cr_assert(refuselog_note(&rl, &a1, REFUSE_ALLOW_FROM, 900, &p), "first again once forgotten");
}

Test(refuselog, capped_under_a_flood)
{
	memset(&rl, 0, sizeof(rl));
	struct netprefix p;
	size_t firsts = 0;
	char s[32];
	/* 1000 /24s in one period: at most REFUSELOG_MAX first lines */
	for (int i = 0; i < 1000; i++) {
		snprintf(s, sizeof(s), "10.%d.%d.1", i / 256, i % 256);
		struct netaddr a = A(s);
		firsts += refuselog_note(&rl, &a, REFUSE_ALLOW_FROM, 10 + i * 0.001, &p);
	}
	cr_assert_eq(firsts, REFUSELOG_MAX);
	cr_assert_eq(refuselog_groups(&rl), REFUSELOG_MAX);
	struct seen sn = { .n = 0 };
	uint64_t others;
	refuselog_flush(&rl, collect, &sn, &others);
	cr_assert_eq(others, 1000 - REFUSELOG_MAX, "the rest counted as others");
	/* next period: quiet groups make room for new prefixes */
	struct netaddr n = A("192.0.2.9");
	cr_assert(refuselog_note(&rl, &n, REFUSE_ALLOW_FROM, 100, &p));
	cr_assert_eq(refuselog_groups(&rl), REFUSELOG_MAX);
}
