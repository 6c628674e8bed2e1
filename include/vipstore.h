/*
 * vipstore — stable virtual IPs per hostname, persisted in LMDB.
 *
 * One LMDB environment at DIR/vips.mdb (MDB_NOSUBDIR) with named databases:
 *   "name2vip"  key: lower-case hostname (no trailing dot)
 *               value: struct vip_record_disk (v4, v6, state, since)
 *   "vip2name"  key: 4- or 16-byte address, value: hostname
 *   "meta"      "schema" -> version, "pool4"/"pool6" -> CIDR text,
 *               "exhausted" -> hosts the last sync gave no VIP (pool full)
 *
 * Allocation policy (pure, see vipstore_preferred_slot): the preferred slot
 * is a hash (FNV-1a 64) of the name inside the pool, probing upward with wrap
 * on collision, never the pool's network address (offset 0) nor, for IPv4,
 * the broadcast address (last offset). Every write happens in one LMDB write
 * transaction, so a process killed at any instant leaves either the old or
 * the new state: never one VIP under two names.
 *
 * Ownership: struct vipstore is opaque and owned by the caller of
 * vipstore_open until vipstore_close. Strings passed in are borrowed for the
 * duration of the call. Several processes may open the same file; readers
 * (`sedns vips`) use read-only transactions and never block the writer.
 */
#ifndef SEDNS_VIPSTORE_H
#define SEDNS_VIPSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "netaddr.h"

#define SEDNS_MAX_HOST 253

#define VIPSTORE_FILE "vips.mdb"
#define VIPSTORE_SCHEMA 1

struct vipstore;

struct vipstore_opts {
	const char *dir;              /* state directory; created if missing
	                                 (unless readonly) */
	struct netprefix pool4;       /* e.g. 240.240.0.0/16 */
	bool pool6_on;
	struct netprefix pool6;       /* e.g. 2001:2::/48 when pool6_on */
	uint32_t hold_seconds;        /* how long a removed host's VIP is kept */
	bool readonly;                /* open for listing only */
	bool reallocate;              /* pool changed: drop all allocations and
	                                 start again instead of refusing */
	bool *disk_error;             /* optional out: the open failed because
	                                 the disk is full or unwritable */
};

/* Opens (creating if needed) the store. On failure returns NULL and writes a
 * one-line reason into err. A pool that differs from the one recorded in the
 * database is refused unless opts->reallocate. */
struct vipstore *vipstore_open(const struct vipstore_opts *opts, char *err,
    size_t errlen);
void vipstore_close(struct vipstore *vs);

enum vip_state { VIP_ACTIVE = 0, VIP_HELD = 1 };

/* One host that should hold a VIP after a sync. */
struct vip_want {
	const char *host;             /* lower-case, no trailing dot (borrowed) */
	/* outputs */
	bool has_v4;
	struct netaddr v4;
	bool has_v6;                  /* only when pool6_on */
	struct netaddr v6;
	bool exhausted;               /* pool full: this host got no VIP */
};

struct vipstore_stats {
	uint64_t pool_size;           /* usable IPv4 addresses */
	uint64_t active;              /* hosts holding a VIP now */
	uint64_t held;                /* removed hosts whose VIP is on hold */
	uint64_t allocated;           /* new allocations in this sync */
	uint64_t released;            /* holds that expired in this sync */
	uint64_t exhausted;           /* wants that got no VIP */
	bool unchanged;               /* no sync: vipstore_unchanged */
};

/*
 * Reconciles the store with the full set of hosts that want a VIP now, in one
 * write transaction:
 *  - a wanted host that has a VIP keeps it (held ones become active again);
 *  - new hosts are allocated in sorted-name order, whatever order wants[] is;
 *  - an active host not in wants[] is put on hold since `now`;
 *  - a held host whose hold expired (now - since >= hold) is released;
 *  - addresses in reserved[] (spec.addresses / status.addresses of any
 *    ServiceEntry) are never handed out; a host whose VIP collides with one
 *    is moved to a fresh slot.
 * Fills the outputs of every want. Returns false (err set, store unchanged)
 * only on an LMDB failure; exhaustion is per-want, not a failure.
 */
bool vipstore_sync(struct vipstore *vs, struct vip_want *wants, size_t nwants,
    const struct netaddr *reserved, size_t nreserved, time_t now,
    struct vipstore_stats *stats, char *err, size_t errlen);

/* A vip_want array of n entries owned by the store, for the caller's next
 * vipstore_sync. Valid until the next call, vipstore_trim or vipstore_close;
 * the caller sets every host (the sync fills the outputs). NULL when out of
 * memory. */
struct vip_want *vipstore_wants(struct vipstore *vs, size_t n);

/* A reload whose VIPs cannot move, without a sync (and without its
 * buffers): the caller found each of its n distinct wanted names active
 * with vipstore_cached. True when the wanted names are then exactly the
 * active records, the reserved addresses equal the last sync's, that sync
 * exhausted nothing, nobody has written the store since and no hold runs
 * out by now: a sync would change nothing. stats as such a sync would give.
 * False: call vipstore_sync. Not with a deferred transaction open. */
bool vipstore_unchanged(struct vipstore *vs, size_t n, const struct netaddr *reserved, size_t nreserved, time_t now,
    struct vipstore_stats *stats);
/* The active VIPs of host in the copy the last sync left (no transaction):
 * true when it has one. host lower case without a trailing dot, as the
 * sync stores names (any other spelling is not found). */
bool vipstore_cached(const struct vipstore *vs, const char *host, struct netaddr *v4, bool *has_v4,
    struct netaddr *v6, bool *has_v6);

/* Deferred commit (the daemon's reload): vipstore_sync leaves its write
 * transaction open, and the caller ends it with vipstore_commit once every
 * later step of the reload worked, or vipstore_abort: a failed reload
 * changes nothing in the store. No other store call may come in between. */
void vipstore_set_deferred(struct vipstore *vs, bool on);
bool vipstore_commit(struct vipstore *vs, char *err, size_t errlen);
void vipstore_abort(struct vipstore *vs);

/* Gives back what only a sync needs: the wants array, the sync's scratch,
 * the copy of the records the last sync replaced, and the pages of the
 * file mapped in this process (the kernel keeps them cached). Between
 * reloads the daemon holds only the current copy; the next sync allocates
 * and faults in again (a few ms at 50k hosts). A no-op while a deferred
 * transaction is open. */
void vipstore_trim(struct vipstore *vs);

/* The map starts at vipstore_mapsize and doubles on MDB_MAP_FULL up to
 * this (a sync is redone after growing). */
#define VIPSTORE_MAX_MAPSIZE ((size_t)4 << 30)

/* Is a inside one of the store's pools (a VIP could be there)? */
bool vipstore_in_pool(const struct vipstore *vs, const struct netaddr *a);
/* The host (active or held) whose VIP a is: true and host/state filled, or
 * false when nobody's. Read-only. */
bool vipstore_owner(struct vipstore *vs, const struct netaddr *a, char *host, size_t hostlen,
    enum vip_state *state);

/* Read-only lookup of one host (active or held). */
bool vipstore_lookup(struct vipstore *vs, const char *host, struct netaddr *v4,
    bool *has_v4, struct netaddr *v6, bool *has_v6);

/* vipstore_lookup of every wants[i].host in one read transaction (a
 * reload that cannot write the store): fills has_v4/v4 and has_v6/v6
 * (exhausted stays false); a host without a record gets neither. False
 * (no output set) when the transaction cannot start. */
bool vipstore_lookup_wants(struct vipstore *vs, struct vip_want *wants, size_t n);

struct vip_record {
	char host[SEDNS_MAX_HOST + 1];
	bool has_v4, has_v6;
	struct netaddr v4, v6;
	enum vip_state state;
	time_t since;                 /* allocation time, or hold start */
};

/* Lists every record in host order inside one read transaction. cb returns
 * false to stop. Returns false on LMDB failure (err set). */
bool vipstore_list(struct vipstore *vs,
    bool (*cb)(const struct vip_record *rec, void *arg), void *arg,
    char *err, size_t errlen);

bool vipstore_stats(struct vipstore *vs, struct vipstore_stats *st);
/* The counts the last sync in this process left (no scan: the daemon's
 * /metrics must not walk 50k records on its loop); false before any sync
 * (a read-only store: use vipstore_stats). Thread-safe. */
bool vipstore_stats_cached(struct vipstore *vs, struct vipstore_stats *st);

/* Hosts that wanted a VIP and got none (or no IPv6 one) at the last sync
 * because the pool was full, recorded by vipstore_sync in its transaction
 * (meta "exhausted"), so `sedns vips` can list them read-only while the
 * daemon runs. Returns how many names *names holds (malloc'd, the caller
 * frees; NUL-separated, in name order, at most VIPSTORE_EXHAUSTED_MAX);
 * *total is the full count and *when the time of that sync. 0 when none. */
#define VIPSTORE_EXHAUSTED_MAX 1000
size_t vipstore_exhausted(struct vipstore *vs, char **names, uint64_t *total, time_t *when);

/* Every VIP currently on hold (v4 and v6), malloc'd into *out (caller
 * frees). Returns the count; 0 with *out NULL when none or on failure. */
size_t vipstore_held(struct vipstore *vs, struct netaddr **out);

/* Pure: the preferred offset for host inside a pool of `size` addresses
 * (exposed for unit tests). */
uint64_t vipstore_preferred_slot(const char *host, uint64_t size);

/* --- additions (vipstore.c) --- */

/*
 * Details of the contract above:
 *  - vipstore_preferred_slot returns 1 + FNV-1a64(host) % (size - 1), so
 *    [1, size-1]; 0 when size <= 1. The allocator turns an IPv4 broadcast
 *    slot into offset 1 and probes upward from there.
 *  - Read-only open ignores opts->pool4/pool6 and adopts the pools recorded
 *    in the database (listing needs no config); vipstore_sync then fails.
 *  - Turning pool6 off keeps the store (the next sync drops the v6
 *    addresses); turning it on gives every wanted host a v6 on the next
 *    sync. Only a different recorded pool is refused.
 *  - A new host that gets no IPv4 gets no IPv6 either (exhausted, no
 *    record). An existing host keeps what it has; exhausted is set when a
 *    family it needs could not be allocated.
 *  - stats.allocated counts hosts that got any new address in the sync.
 *    vipstore_stats() counts active/held now and repeats the last sync's
 *    allocated/released/exhausted.
 *  - vipstore_list's callback runs inside the read transaction: it must not
 *    call vipstore_sync.
 *  - A name2vip record of the wrong size or unknown flags is skipped with a
 *    warning (its addresses stay taken); a sync that wants that host
 *    replaces it.
 *  - The handle keeps a copy of the records in memory between syncs (the
 *    file's content at one LMDB transaction id) so that a sync reads no
 *    record and writes only those that change: a sync that changes nothing
 *    writes nothing (vipstore_generation does not move). A sync whose write
 *    transaction does not follow that id (another process wrote, a commit
 *    failed) and a store with a bad record read every record again;
 *    vipstore_abort keeps the copy, vipstore_commit installs the new one.
 *    The copy and the sync's buffers stay allocated until vipstore_close
 *    (about 250 bytes a host, 12 MB for 50k), so that a reload does not
 *    fault in fresh pages; vipstore_sync and vipstore_wants use them and
 *    must not run concurrently (the daemon's build thread calls both).
 */

/* LMDB map size used by vipstore_open: 64 MiB by default, enough for a full
 * /16 plus a v6 pool's used slots. Tests may lower it before opening to
 * exercise MDB_MAP_FULL (a sync then fails cleanly, store unchanged). */
extern size_t vipstore_mapsize;

/* Upper bound on probes for one allocation; a pool whose probe run exceeds
 * it is treated as exhausted for the rest of that sync. */
#define VIPSTORE_MAX_PROBES 65536

/* Usable IPv4 addresses in the store's pool (size minus network and
 * broadcast). */
uint64_t vipstore_pool_size(const struct vipstore *vs);

/* Consistency check in one read transaction: every name2vip record has the
 * right size and its addresses map back to it in vip2name, every vip2name
 * entry maps to a record holding that address (so no address is under two
 * names), and every address is inside its pool and not the network address.
 * Also: allocation and hold times are not before 1970 nor a year ahead,
 * and every free-list page is inside the file.
 * Returns false with the first problem in err. Used by `vipstress --check`,
 * `sedns vips --verify`, the daemon's start and the unit tests. */
bool vipstore_verify(struct vipstore *vs, char *err, size_t errlen);

/* --- durability (vipstore.c) --- */

/* The last failed call (open, sync, commit, backup) failed because of the
 * disk: no space (LMDB says EIO for a short write; the message then says
 * "no space left on device" when the filesystem is full), a quota, a
 * read-only filesystem or an I/O error. The store can still be read. */
bool vipstore_disk_failed(const struct vipstore *vs);

/* The last committed transaction id: changes with every write. */
uint64_t vipstore_generation(struct vipstore *vs);

/* A compact copy (mdb_env_copyfd2, MDB_CP_COMPACT) written to
 * DIR/vips.mdb.bak through vips.mdb.bak.tmp, fsynced and renamed: the
 * backup is either the previous one or the whole new one. Blocks for the
 * copy (a few ms for 50k hosts). */
#define VIPSTORE_BACKUP_SUFFIX ".bak"
bool vipstore_backup(struct vipstore *vs, char *err, size_t errlen);

/* Verifies DIR/vips.mdb in a forked child (open read-only, then
 * vipstore_verify): a page corrupt enough to crash or hang liblmdb is
 * reported as corrupt instead of killing the caller. The file must exist.
 * True when it passes; otherwise err says what is wrong. Call it before
 * the process has threads. */
#define VIPSTORE_CHECK_SECONDS 20
bool vipstore_check_file(const char *dir, char *err, size_t errlen);

/* Restores DIR/vips.mdb from DIR/vips.mdb.bak when vips.mdb is missing or 0
 * bytes and the backup is not (starting empty would give every host a new
 * VIP), logging a warning. True when nothing needed doing or the copy
 * worked; false with err when the copy failed. The daemon calls it before
 * opening the store writable; delete the backup too to start empty. */
bool vipstore_restore_if_empty(const char *dir, char *err, size_t errlen);

#endif
