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
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "forward.h"
#include "registry.h"
#include "serviceentry.h"
#include "vipstore.h"

struct load_summary {
	size_t files, entries, hosts, errors, warnings, rejected, vips, exhausted;
	size_t kept;          /* entries whose last good version was used */
	size_t conflicts;     /* hosts whose spec.addresses took another's VIP */
	size_t restricted;    /* entries whose exportTo is not "*" */
	size_t novip;         /* looked up, not allocated (read-only store):
	                         hosts that want a VIP and have none yet */
};

/*
 * Last good version per ServiceEntry (namespace/name), for the daemon: an
 * entry that no longer validates keeps its previous valid version (or is
 * absent if it never had one), and the other entries of its file load as
 * they are; entries of a file that cannot be read to its end (unreadable,
 * YAML syntax error, bad encoding) and that did not load keep theirs too. A
 * removed file (or an entry removed from a good file) drops out.
 *
 * good borrows the entries of the installed registry: the daemon calls
 * loader_cache_commit with it after every install. A file whose
 * fingerprint (device, inode, size, mtime) is unchanged since the committed
 * build and that loaded cleanly then is not parsed again: the new set
 * shares its block of entries (a reference held here). Owned by the
 * daemon; loader_cache_free releases it.
 */
struct lc_file {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool clean;           /* no diagnostic when it was loaded */
	struct se_block *blk; /* its entries when clean (one reference) */
};
/* A run of in-memory documents (API objects) loaded as one block: runs end
 * after a document whose name hashes to 0 mod 32 (or at 256), so adding or
 * removing one object changes one run and the others are shared. */
struct lc_group {
	uint64_t hash;        /* names, lengths and texts of its documents */
	bool clean;
	struct se_block *blk; /* when clean (one reference) */
};
struct loader_cache {
	const struct se_set *good;      /* borrowed; NULL before the first commit */
	struct lc_file *files;          /* fingerprints matching good */
	size_t nfiles;
	struct lc_file *pending;        /* of the last build, until committed */
	size_t npending;
	struct lc_group *groups, *pending_groups; /* sorted by hash once committed */
	size_t ngroups, npending_groups;
	/* diagnostics are logged once: hashes of those the last build printed
	 * (sorted), and of this build's; one that goes away and comes back is
	 * logged again */
	uint64_t *seen, *seen_next;
	size_t nseen, nseen_next;
};
void loader_cache_commit(struct loader_cache *c, const struct registry *reg);
void loader_cache_free(struct loader_cache *c);

/*
 * An in-memory source: a ServiceEntry from the Kubernetes API (kube.c),
 * read after the files exactly like a file named name: same parser,
 * validation, registry, VIP store and per-entry last good version (an
 * object that stops validating keeps its last valid version; a deleted
 * one drops out). A namespace/name that a file also declares is a
 * duplicate: the file's wins and the object is reported. Different
 * ServiceEntries naming one host merge as files do (one VIP per host).
 */
struct loader_doc {
	char *name;
	char *text;
	size_t len;
};

/* Loads the given paths into set and prints diagnostics ("error: ..." /
 * "warning: ...") to diag. */
void loader_read(struct se_set *set, char *const *paths, size_t npaths, FILE *diag);
/* Same, through a last-good cache (may be NULL = plain loader_read). */
void loader_read_cached(struct se_set *set, char *const *paths, size_t npaths, struct loader_cache *cache,
    FILE *diag, struct load_summary *sum);

/* A fingerprint of the files under paths as listed for loading (names,
 * device, inode, size, mtime): equal fingerprints mean a build would read
 * the same bytes. False when a path cannot be listed or a file stat'ed. */
bool loader_fingerprint(char *const *paths, size_t npaths, uint64_t *fp);

/* Reads cfg's sources, builds a registry and, when vs is writable
 * (allocate=true), assigns VIPs; with allocate=false looks them up only.
 * Returns NULL on out-of-memory or store failure (reason in err). */
struct registry *loader_build(const struct config *cfg, struct vipstore *vs, bool allocate,
    time_t now, FILE *diag, struct load_summary *sum, char *err, size_t errlen);
/* loader_build with a last-good cache. */
struct registry *loader_build_cached(const struct config *cfg, struct vipstore *vs, bool allocate,
    struct loader_cache *cache, time_t now, FILE *diag, struct load_summary *sum, char *err, size_t errlen);

/* loader_build_cached with in-memory documents after the files. */
struct registry *loader_build_docs(const struct config *cfg, struct vipstore *vs, bool allocate,
    struct loader_cache *cache, const struct loader_doc *docs, size_t ndocs, time_t now, FILE *diag,
    struct load_summary *sum, char *err, size_t errlen);

/* Entries of set whose exportTo restricts who sees them (not "*"). */
size_t loader_restricted(const struct se_set *set);
/* The line that says exportTo is not enforced: views (workloads) are off
 * and n entries restrict exportTo; NULL-safe, writes nothing when moot. */
void loader_note_export_to(const struct config *cfg, size_t n, FILE *out);

/* Opens the VIP store described by cfg. disk_error (optional): set when a
 * failure was the disk's (full, read-only, I/O error). */
struct vipstore *loader_open_store(const struct config *cfg, bool readonly, bool reallocate, bool *disk_error,
    char *err, size_t errlen);

/* Upstreams from cfg, else the nameservers of cfg->resolv_conf; our own
 * listen addresses are dropped with an error (forwarding to them would
 * loop). Returns the count written to out (at most CONFIG_MAX_LIST). */
size_t loader_upstreams(const struct config *cfg, struct config_endpoint *out);

/* The forward zones: cfg->forward_zones, with the root zone's upstreams
 * replaced by ups (what loader_upstreams gave), and a root zone added with
 * them when the config has none. specs (FWD_MAX_ZONES) point into cfg and
 * ups, which must outlive them. Returns the count. */
size_t loader_zone_specs(const struct config *cfg, const struct config_endpoint *ups, size_t nups,
    struct fwd_zone_spec *specs);

#endif
