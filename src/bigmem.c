/* bigmem — see include/bigmem.h. */
#include "bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_SIZE ((size_t)2 << 20)

static size_t
map_len(size_t n)
{
	return (n + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
}

void *
bigmem_alloc(size_t n)
{
	if (n < BIGMEM_MIN)
		return calloc(n ? n : 1, 1);
	size_t len = map_len(n);
	if (len < n || len + HUGE_SIZE < len)
		return NULL;
	/* one huge page more, to cut a 2 MiB aligned run out of it */
	char *m = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	char *p = (char *)(((uintptr_t)m + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1));
	if (p > m)
		munmap(m, (size_t)(p - m));
	if (m + len + HUGE_SIZE > p + len)
		munmap(p + len, (size_t)(m + len + HUGE_SIZE - (p + len)));
	/* advice (without it, small pages), for the whole huge pages only: a
	 * partly used last one would be resident whole, up to 2 MiB more */
	if (n >= HUGE_SIZE)
		(void)madvise(p, n & ~(HUGE_SIZE - 1), MADV_HUGEPAGE);
	return p;
}

void
bigmem_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	if (n < BIGMEM_MIN)
		free(p);
	else
		munmap(p, map_len(n));
}

void *
bigmem_grow(void *p, size_t n, size_t m)
{
	if (p != NULL && m >= BIGMEM_MIN && n >= BIGMEM_MIN && map_len(m) == map_len(n)) {
		/* the mapping has the room, zeroed; its new whole runs too */
		if ((m & ~(HUGE_SIZE - 1)) > (n & ~(HUGE_SIZE - 1)))
			(void)madvise(p, m & ~(HUGE_SIZE - 1), MADV_HUGEPAGE);
		return p;
	}
	char *q = bigmem_alloc(m);
	if (q == NULL)
		return NULL;
	if (p != NULL && n > 0)
		memcpy(q, p, n);
	bigmem_free(p, n);
	return q;
}
