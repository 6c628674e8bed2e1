/* bigmem — see include/bigmem.h. */
#include "bigmem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_SIZE ((size_t)2 << 20)

/* freed mappings kept for the next reload, oldest first */
static struct {
	char *p;
	size_t len;
} spares[BIGMEM_SPARES];
static size_t nspares, spare_bytes;
static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t
map_len(size_t n)
{
	return (n + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
}

static void
drop_spare(size_t i)
{
	spare_bytes -= spares[i].len;
	memmove(&spares[i], &spares[i + 1], (nspares - i - 1) * sizeof(spares[0]));
	nspares--;
}

/* The smallest spare of at least len bytes, cut to len; NULL if none. */
static char *
take_spare(size_t len)
{
	pthread_mutex_lock(&spare_mu);
	size_t best = nspares;
	for (size_t i = 0; i < nspares; i++)
		if (spares[i].len >= len && (best == nspares || spares[i].len < spares[best].len))
			best = i;
	char *p = NULL;
	size_t have = 0;
	if (best < nspares) {
		p = spares[best].p;
		have = spares[best].len;
		drop_spare(best);
	}
	pthread_mutex_unlock(&spare_mu);
	if (p != NULL && have > len)
		munmap(p + len, have - len); /* both are huge page multiples */
	return p;
}

void *
bigmem_alloc(size_t n)
{
	if (n < BIGMEM_MIN)
		return calloc(n ? n : 1, 1);
	size_t len = map_len(n);
	if (len < n || len + HUGE_SIZE < len)
		return NULL;
	char *p = take_spare(len);
	if (p != NULL) {
		memset(p, 0, n);
		return p;
	}
	/* one huge page more, to cut a 2 MiB aligned run out of it */
	char *m = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)m + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1));
	if (p > m)
		munmap(m, (size_t)(p - m));
	if (m + len + HUGE_SIZE > p + len)
		munmap(p + len, (size_t)(m + len + HUGE_SIZE - (p + len)));
	(void)madvise(p, len, MADV_HUGEPAGE); /* advice: without it, small pages */
	return p;
}

void
bigmem_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	if (n < BIGMEM_MIN) {
		free(p);
		return;
	}
	size_t len = map_len(n);
	if (len > BIGMEM_SPARE_BYTES) {
		munmap(p, len);
		return;
	}
	char *old[BIGMEM_SPARES + 1];
	size_t oldlen[BIGMEM_SPARES + 1], nold = 0;
	pthread_mutex_lock(&spare_mu);
	while (nspares > 0 && (nspares == BIGMEM_SPARES || spare_bytes + len > BIGMEM_SPARE_BYTES)) {
		old[nold] = spares[0].p;
		oldlen[nold++] = spares[0].len;
		drop_spare(0);
	}
	spares[nspares].p = p;
	spares[nspares].len = len;
	nspares++;
	spare_bytes += len;
	pthread_mutex_unlock(&spare_mu);
	for (size_t i = 0; i < nold; i++)
		munmap(old[i], oldlen[i]);
}

void
bigmem_release(void)
{
	pthread_mutex_lock(&spare_mu);
	while (nspares > 0) {
		munmap(spares[0].p, spares[0].len);
		drop_spare(0);
	}
	pthread_mutex_unlock(&spare_mu);
}

size_t
bigmem_spare_bytes(void)
{
	pthread_mutex_lock(&spare_mu);
	size_t n = spare_bytes;
	pthread_mutex_unlock(&spare_mu);
	return n;
}
