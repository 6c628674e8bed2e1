/*
 * bigmem — zeroed memory for the large arrays a reload builds (the
 * registry's hosts, ports and endpoints, the name table's hash tables).
 *
 * Why: on a paravirtualized VM a page fault is a trip through the
 * hypervisor, and memory given back to the kernel is soon given back to
 * the host (free page reporting), so touching it again costs the host's
 * fault too: the 25 MB a 50k-host registry and table touch cost tens of
 * milliseconds per reload as fresh small pages. So: at BIGMEM_MIN bytes and
 * up a block is its own mapping, 2 MiB aligned and advised as transparent
 * huge pages (one fault per 2 MiB; small pages when huge ones are off),
 * and a freed block stays mapped as a spare that the next reload's block
 * of the same size reuses, zeroed by memset. Smaller blocks come from
 * calloc.
 *
 * The price is memory: up to BIGMEM_SPARES spares (at most
 * BIGMEM_SPARE_BYTES together, oldest dropped first) stay resident between
 * reloads, about one registry and table's worth. bigmem_release unmaps
 * them. Thread-safe (the rule render thread frees registries too).
 *
 * Ownership: bigmem_free takes the size that bigmem_alloc was given (the
 * mapping's length is not stored anywhere else).
 */
#ifndef SEDNS_BIGMEM_H
#define SEDNS_BIGMEM_H

#include <stddef.h>

#define BIGMEM_MIN (1024u * 1024)
#define BIGMEM_SPARES 4
#define BIGMEM_SPARE_BYTES ((size_t)128 << 20)

/* n zeroed bytes (n 0: a valid, unusable pointer); NULL on out of memory. */
void *bigmem_alloc(size_t n);
/* p from bigmem_alloc(n), or NULL. */
void bigmem_free(void *p, size_t n);
/* Unmaps the spares. */
void bigmem_release(void);
/* What the spares hold. */
size_t bigmem_spare_bytes(void);

#endif
