/*
 * bigmem — zeroed memory for the large arrays a reload builds (the
 * registry's hosts, ports and endpoints, the name table's hash tables, the
 * VIP sync's buffers).
 *
 * Why: on a paravirtualized VM every page fault is a trip through the
 * hypervisor, and the 25 MB a 50k-host registry and table touch cost tens
 * of milliseconds per reload as fresh 4 KiB pages. So at BIGMEM_MIN bytes
 * and up a block is its own mapping, 2 MiB aligned, its whole 2 MiB runs
 * advised as transparent huge pages (one fault per 2 MiB; small pages when
 * huge ones are off) and the rest left to small pages (a partly used huge
 * page would be resident whole), unmapped on free: nothing is kept between
 * reloads. Smaller blocks come from calloc.
 *
 * Ownership: bigmem_free and bigmem_grow take the size the block was
 * allocated with (the mapping's length is not stored anywhere else).
 * Thread-safe (no shared state).
 */
#ifndef SEDNS_BIGMEM_H
#define SEDNS_BIGMEM_H

#include <stddef.h>

#define BIGMEM_MIN (1024u * 1024)

/* n zeroed bytes (n 0: a valid, unusable pointer); NULL on out of memory. */
void *bigmem_alloc(size_t n);
/* p from bigmem_alloc(n), or NULL. */
void bigmem_free(void *p, size_t n);
/* p (of n bytes, or NULL with n 0) moved to a zeroed block of m >= n bytes
 * holding p's n bytes first; p is freed. NULL on out of memory, p then
 * untouched. */
void *bigmem_grow(void *p, size_t n, size_t m);

#endif
