/*
 * fnv — FNV-1a 64, the one non-cryptographic hash for fingerprints
 * (rules texts, kernel listings, input files, API objects): enough to tell
 * "changed" from "the same", never a security boundary. Header-only.
 */
#ifndef SEDNS_FNV_H
#define SEDNS_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV64_INIT 0xcbf29ce484222325ULL

static inline uint64_t
fnv64(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

#endif
