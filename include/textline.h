/*
 * textline — a line of a larger text, by pointer and length, and the few
 * comparisons the rule-set differs (nftdiff, iptdiff) need. The text owns
 * the bytes; a line is valid as long as the text is.
 */
#ifndef SEDNS_TEXTLINE_H
#define SEDNS_TEXTLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct line {
	const char *p;
	size_t n;
};

/* The next line of *pos (no newline); advances *pos. */
static inline struct line
line_next(const char **pos)
{
	const char *p = *pos, *e = strchr(p, '\n');
	struct line l = { p, e ? (size_t)(e - p) : strlen(p) };
	*pos = e ? e + 1 : p + l.n;
	return l;
}

static inline bool
line_starts(struct line l, const char *s)
{
	size_t n = strlen(s);
	return l.n >= n && memcmp(l.p, s, n) == 0;
}

static inline bool
line_is(struct line l, const char *s)
{
	return l.n == strlen(s) && memcmp(l.p, s, l.n) == 0;
}

static inline int
line_cmp(struct line a, struct line b)
{
	size_t n = a.n < b.n ? a.n : b.n;
	int c = memcmp(a.p, b.p, n);
	return c ? c : (a.n < b.n ? -1 : a.n > b.n);
}

/* Appends l to the growable array *v; false on out of memory. */
static inline bool
line_push(struct line **v, size_t *n, size_t *cap, struct line l)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct line *nv = realloc(*v, nc * sizeof(*nv));
		if (nv == NULL)
			return false;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = l;
	return true;
}

#endif
