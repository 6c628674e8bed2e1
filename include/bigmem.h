/*
 * bigmem — zeroed memory for the large arrays a reload builds (the
 * registry's hosts, ports and endpoints, the name table's hash tables).
 *
 * Why: on a paravirtualized VM every 4 KiB page fault is a trip through the
 * hypervisor (about 15 us measured here): the 20 MB a 50k-host registry
 * touches cost ~80 ms of faults as 4 KiB pages. At BIGMEM_MIN bytes and up,
 * a block is its own mapping, 2 MiB aligned and advised as transparent huge
 * pages (one fault per 2 MiB); smaller blocks come from calloc. When huge
 * pages are off or unavailable the mapping still works, with small pages.
 *
 * Ownership: bigmem_free takes the size that bigmem_alloc was given (the
 * mapping's length is not stored anywhere else).
 */
#ifndef SEDNS_BIGMEM_H
#define SEDNS_BIGMEM_H

#include <stddef.h>

#define BIGMEM_MIN (1024u * 1024)

/* n zeroed bytes (n 0: a valid, unusable pointer); NULL on out of memory. */
void *bigmem_alloc(size_t n);
/* p from bigmem_alloc(n), or NULL. */
void bigmem_free(void *p, size_t n);

#endif
