/*
 * suggest — "did you mean ...?" for a misspelled field or key.
 *
 * Pure: no allocation, no I/O. The candidates and the result belong to the
 * caller; the result is one of the candidates (or NULL).
 */
#ifndef SEDNS_SUGGEST_H
#define SEDNS_SUGGEST_H

#include <stddef.h>

/* Longest word compared; longer words get no suggestion (bounds the
 * distance table, which lives on the stack). */
#define SUGGEST_MAX_LEN 64

/* Edit distance between a and b (case-insensitive): insertions, deletions,
 * substitutions and transpositions of two adjacent characters count one
 * each (optimal string alignment), so "resolutoin" is 1 from "resolution".
 * SIZE_MAX when either word is longer than SUGGEST_MAX_LEN. */
size_t suggest_distance(const char *a, const char *b);

/* The candidate closest to word, when it is close enough to be a typo of
 * it: at most 1 edit for words up to 4 characters, 2 up to 8, 3 beyond
 * (by the candidate's length). Ties go to the first candidate. NULL
 * candidates are skipped. NULL when none is close enough. */
const char *suggest_closest(const char *word, const char *const *cands, size_t n);

#endif
