/*
 * serviceentry — Istio ServiceEntry YAML → validated structs.
 *
 * Input: files, directories (every *.yaml / *.yml inside, sorted by name) or
 * an in-memory buffer. Accepts single documents, multi-document streams and
 * `kind: List` with `items:`. Only kind ServiceEntry with apiVersion
 * networking.istio.io/{v1,v1beta1,v1alpha3} is loaded; other kinds are
 * skipped quietly.
 *
 * Ownership: a struct se_set owns its diagnostics and holds one reference
 * on each block its entries live in; se_set_free releases both. A block
 * (struct se_block) is what one file or buffer loaded: its entries and their
 * strings, immutable once the file is done, reference counted (atomically)
 * so that the next reload's set can share an unchanged file's entries
 * instead of parsing or copying them (se_set_adopt_block). Entries that
 * fail validation are NOT in entries[]: they appear only as error
 * diagnostics.
 *
 * Diagnostics are formatted "FILE:LINE:COL: NAMESPACE/NAME: field.path: what
 * is wrong" (structural YAML errors: "FILE:LINE:COL: message").
 */
#ifndef SEDNS_SERVICEENTRY_H
#define SEDNS_SERVICEENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits: past them a document / entry is rejected with a clear message. */
#define SE_MAX_FILE_BYTES   (512u * 1024 * 1024)
#define SE_MAX_HOSTS        256
#define SE_MAX_PORTS        256
#define SE_MAX_ENDPOINTS    4096
#define SE_MAX_ADDRESSES    256
#define SE_MAX_TARGETS      65536   /* hosts x ports x endpoints per entry */
#define SE_MAX_DEPTH        64      /* YAML nesting */
#define SE_MAX_NAME         253     /* DNS name, without trailing dot */
#define SE_MAX_UNKNOWN_REPORTED 20  /* unknown fields named per mapping */
#define SE_MAX_NODES        1000000 /* YAML nodes per document, or per item of
                                       a List (which is parsed an item at a
                                       time: bounds memory) */

enum se_resolution {
	SE_RES_NONE = 0,      /* default when absent, as in Istio */
	SE_RES_STATIC,
	SE_RES_DNS,
	SE_RES_DNS_ROUND_ROBIN,
	SE_RES_DYNAMIC_DNS,
};

enum se_location {
	SE_LOC_UNSET = 0,
	SE_LOC_MESH_EXTERNAL,
	SE_LOC_MESH_INTERNAL,
};

struct se_kv {
	char *key;
	char *value;
};

struct se_port {
	uint32_t number;      /* 1..65535 after validation */
	char *name;           /* may be NULL */
	char *protocol;       /* upper-cased canonical (e.g. "GRPC-Web" kept as
	                         written but compared case-insensitively); NULL = unset */
	uint32_t target_port; /* 0 = unset */
	int line;
};

struct se_endpoint {
	char *address;        /* IP, hostname, or unix:// path */
	struct se_kv *ports;  /* port name -> number (value as decimal string) */
	size_t nports;
	struct se_kv *labels;
	size_t nlabels;
	char *network;        /* may be NULL */
	char *locality;       /* may be NULL */
	uint32_t weight;      /* 0 = unset */
	int line;
};

struct se_status_address {
	char *host;           /* may be NULL (applies to all hosts) */
	char *value;          /* IP address */
};

struct serviceentry {
	char *file;           /* source path (or buffer name) */
	int line;             /* line of the document's first key */
	char *name;
	char *namespace;      /* "default" when absent */
	struct se_kv *labels;
	size_t nlabels;
	char *creation_timestamp; /* RFC 3339 string as written; NULL if absent */

	char **hosts;         /* as written (validated); the registry points at
	                         those already lower case, copies the rest */
	size_t nhosts;
	char **addresses;     /* IPs or CIDRs as written */
	size_t naddresses;
	struct se_port *ports;
	size_t nports;
	enum se_location location;
	enum se_resolution resolution;
	struct se_endpoint *endpoints;
	size_t nendpoints;
	char **export_to;
	size_t nexport_to;
	bool has_workload_selector;
	struct se_status_address *status_addresses;
	size_t nstatus_addresses;
};

/* Every host gets every port and every port every endpoint: the DNAT
 * targets an entry brings (at most SE_MAX_TARGETS once loaded). */
static inline size_t
se_dnat_targets(const struct serviceentry *e)
{
	return e->nhosts * e->nports * e->nendpoints;
}

enum se_severity { SE_WARNING = 0, SE_ERROR = 1 };

/* A rejected ServiceEntry: namespace/name and where. */
struct se_key {
	char *ns, *name, *file;
	int line;
};

struct se_diag {
	enum se_severity severity;
	char *file;
	int line, col;
	char *message;        /* the whole formatted line, without "error:" tag */
};

struct se_block;

struct se_set {
	struct serviceentry **entries;  /* valid entries, in load order (they
	                                   live in blocks: stable addresses) */
	size_t nentries;
	struct se_diag *diags;
	size_t ndiags;
	size_t nerrors, nwarnings;
	size_t nrejected;               /* ServiceEntries rejected by validation */
	struct se_key *rejected_keys;   /* which (when they had a name) */
	size_t nrejected_keys;
	char **broken;                  /* files not read to their end: unreadable,
	                                   too large, bad encoding, YAML syntax */
	size_t nbroken;
	size_t nunreadable;             /* paths or files that could not be
	                                   read at all (missing, EACCES, EMFILE,
	                                   EIO): not the same as empty */
	size_t nfiles;                  /* files read */
	/* private: namespace/name -> entries[] index, for duplicates */
	uint32_t *index;                /* entries[] index + 1; 0 = empty */
	size_t index_cap;
	struct se_block **blocks;       /* one reference each */
	size_t nblocks;
	struct se_block *open;          /* being filled (the last of blocks);
	                                   NULL between files */
	size_t open_from;               /* its first entry's index in entries */
	bool open_shared;               /* se_set_begin_block's: buffers join it */
};

void se_set_init(struct se_set *set);
/* Done adding: closes the block being filled (entries copied with
 * se_set_copy_entry). Adding after this still works. */
void se_set_seal(struct se_set *set);

/* The block the last se_load_path of one file or se_load_buffer filled
 * (NULL if it could not be made); borrowed from set. */
struct se_block *se_set_last_block(const struct se_set *set);
/* Starts a block that the following se_load_buffer calls share (until
 * se_set_seal, another file or block): many small documents in one block
 * cost one pool and one array. false on out of memory. */
bool se_set_begin_block(struct se_set *set);
/* Appends block b's entries to set, sharing them (b gains a reference);
 * false, with set unchanged, on out of memory or when one of them is a
 * namespace/name set already has (then load the file to report it). */
bool se_set_adopt_block(struct se_set *set, struct se_block *b);
/* Extra references, for a cache that outlives the set (atomic). */
void se_block_hold(struct se_block *b);
void se_block_release(struct se_block *b);
/* Entries in b. */
size_t se_block_count(const struct se_block *b);
void se_set_free(struct se_set *set);

/* The valid entry namespace/name, or NULL. */
const struct serviceentry *se_set_find(const struct se_set *set, const char *ns, const char *name);
/* Appends a deep copy of e (an entry of another set) to set; false on out
 * of memory or when set already has namespace/name. */
bool se_set_copy_entry(struct se_set *set, const struct serviceentry *e);
/* Records file as broken (not read to its end), once. */
void se_set_mark_broken(struct se_set *set, const char *file);
bool se_set_is_broken(const struct se_set *set, const char *file);

/* Loads one path (file or directory) into set, appending entries and
 * diagnostics. Returns false only if the path itself cannot be read (that is
 * also recorded as an error diagnostic). */
bool se_load_path(struct se_set *set, const char *path);
/* Loads YAML text; name is used as FILE in diagnostics. */
void se_load_buffer(struct se_set *set, const char *name, const char *buf, size_t len);

/* The files a path stands for: itself, or every *.yaml / *.yml regular
 * file in the directory (hidden names skipped), sorted. *files is malloc'd
 * (se_free_list). false with a reason in err when the path cannot be read. */
bool se_list_path(const char *path, char ***files, size_t *nfiles, char *err, size_t errlen);
void se_free_list(char **files, size_t n);
/* Reads a whole file (at most SE_MAX_FILE_BYTES) into a malloc'd buffer. */
bool se_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);

const char *se_resolution_name(enum se_resolution r);

const char *se_location_name(enum se_location l);

/* Hostname checks shared with the registry and name table. A host is
 * DNS-1123 labels (1-63 chars of [A-Za-z0-9-], not starting or ending with
 * '-'), at most SE_MAX_NAME characters, one optional trailing dot, and a
 * top-level label that is not all digits. With allow_wildcard, "*" may be the
 * whole first label ("*.example.com"); "*" alone is never valid. */
bool se_valid_hostname(const char *host, bool allow_wildcard);
/* Same check; returns NULL when valid, else a static English reason. */
const char *se_hostname_problem(const char *host, bool allow_wildcard);

#endif
