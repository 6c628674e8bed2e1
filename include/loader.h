/*
 * loader — the one path from config to a ready registry:
 * read every ServiceEntry source, report diagnostics, merge, assign VIPs.
 *
 * Used by `serve` (start and every reload), `check`, `rules` and `make run`.
 * Ownership: on success *out is a new registry owned by the caller. The
 * vipstore is borrowed. Diagnostics are written to diag (may be NULL).
 */
#ifndef SEDNS_LOADER_H
#define SEDNS_LOADER_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "registry.h"
#include "serviceentry.h"
#include "vipstore.h"

struct load_summary {
	size_t files, entries, hosts, errors, warnings, rejected, vips, exhausted;
};

/* Loads the given paths into set and prints diagnostics ("error: ..." /
 * "warning: ...") to diag. */
void loader_read(struct se_set *set, char *const *paths, size_t npaths, FILE *diag);

/* Reads cfg's sources, builds a registry and, when vs is writable
 * (allocate=true), assigns VIPs; with allocate=false looks them up only.
 * Returns NULL on out-of-memory or store failure (reason in err). */
struct registry *loader_build(const struct config *cfg, struct vipstore *vs, bool allocate,
    time_t now, FILE *diag, struct load_summary *sum, char *err, size_t errlen);

/* Opens the VIP store described by cfg. */
struct vipstore *loader_open_store(const struct config *cfg, bool readonly, bool reallocate,
    char *err, size_t errlen);

/* Upstreams from cfg, else the nameservers of cfg->resolv_conf; our own
 * listen addresses are dropped with an error (forwarding to them would
 * loop). Returns the count written to out (at most CONFIG_MAX_LIST). */
size_t loader_upstreams(const struct config *cfg, struct config_endpoint *out);

#endif
