/*
 * kubeinf — the informer core for one Kubernetes kind, pure: the objects
 * last seen (key "namespace/name" → payload), the resourceVersion to resume
 * from, and the decision of what to request next. It does no I/O: kube.c
 * makes the HTTP requests and feeds the parsed bodies (json-c objects) and
 * their outcomes here; the unit tests feed the same calls by hand.
 *
 * Protocol (client-go's reflector):
 * - LIST, paged (limit/continue), without resourceVersion: a consistent read.
 *   Its pages are gathered aside and replace the store whole when the last
 *   page arrives, so a relist neither loses nor duplicates an object: what
 *   the store holds afterwards is exactly the list, at the list's version.
 * - then WATCH from the list's resourceVersion, with bookmarks. ADDED and
 *   MODIFIED upsert, DELETED removes, BOOKMARK only advances the version.
 * - a watch that ends is resumed from the last version seen: at once when
 *   the server ended it (its timeout), after a backoff when the connection
 *   broke or ended at once. 410 Gone (the watch request's status, or an
 *   ERROR event with code 410) means that version was compacted away:
 *   relist. Any other failure (no answer, TLS, 401/403/5xx, a malformed
 *   body) waits an exponential backoff with jitter and retries; a LIST
 *   failed midway starts again from its first page.
 *
 * Payloads: the payload function turns an object into the text sedns needs
 * (a ServiceEntry: its JSON without managedFields and such; a Pod: its
 * namespace and IPs), or NULL when the object contributes nothing (a
 * hostNetwork or finished pod): it is then absent from the store. Changes
 * are judged by payload, so a pod status update that moves no IP is no
 * change and costs no reload.
 *
 * Ownership: a kinf owns its store, its tokens and its payload strings.
 * json objects passed in are borrowed for the call. Pointers in a struct
 * kinf_req stay valid until the next call that changes the kinf.
 * kinf_snapshot copies. Not thread-safe: one owner (the event loop).
 */
#ifndef SEDNS_KUBEINF_H
#define SEDNS_KUBEINF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct kinf;

/* malloc'd payload of obj, or NULL (object ignored). */
typedef char *(*kinf_payload_fn)(struct json_object *obj);

enum kinf_op { KINF_LIST, KINF_WATCH };

struct kinf_req {
	enum kinf_op op;
	const char *cont;          /* LIST: continue token; NULL = first page */
	const char *rv;            /* WATCH: resourceVersion to watch from */
	uint64_t delay_ms;         /* wait this long before sending it */
};

enum kinf_event { KINF_ADDED, KINF_MODIFIED, KINF_DELETED, KINF_BOOKMARK, KINF_NEVENTS };

struct kinf_stats {
	uint64_t lists;            /* LISTs completed (every page) */
	uint64_t relists;          /* ... of them after the first */
	uint64_t watches;          /* watch streams opened */
	uint64_t watch_restarts;   /* watch streams resumed from a version */
	uint64_t events[KINF_NEVENTS];
	uint64_t failures;         /* requests that failed (any reason) */
	uint64_t expired;          /* 410 Gone seen */
	uint64_t changes;          /* LISTs and events that changed the store */
	size_t objects;            /* in the store now */
	bool synced;               /* a LIST has completed */
	double last_sync;          /* when the store was last known current
	                              (a LIST or any watch event), caller's clock */
};

/* Limits: a list or watch past max_objects objects is an error. */
#define KINF_DEFAULT_MAX_OBJECTS 200000
/* One watch event (one line of the stream): etcd stores objects of at most
 * 1.5 MiB, so an event is well under this; a longer line is a hostile or
 * broken server (the watch ends with an error and a relist after backoff). */
#define KINF_MAX_LINE (4u << 20)
/* One LIST page: a page of 500 objects is a few MiB. A larger answer is
 * refused and the next LIST asks for half as many objects a page (down to
 * one: an object is at most 1.5 MiB). */
#define KINF_MAX_PAGE (4u << 20)
/* json-c spends about 800 bytes on each object it builds ({} costs that),
 * so a small body can cost a great deal: a 4 MiB page of {} is 1.4 million
 * objects, 1 GB. Before parsing, a body may hold at most
 * KINF_JSON_CONTAINER_FLOOR plus one container ('{' or '[' outside strings)
 * per KINF_JSON_BYTES_PER_CONTAINER bytes, which bounds a 4 MiB page or
 * watch line to ~560 MB of json-c, transiently. Real JSON is sparser but
 * not by much: managedFields spends ~11 bytes on a container, and a
 * ServiceEntry with many endpoints ~20 ({"address":"10.0.0.1","ports":
 * {"http":8080}} is 2 in 44 bytes), so a tighter ratio would refuse real
 * objects for good. */
#define KINF_JSON_BYTES_PER_CONTAINER 6
#define KINF_JSON_CONTAINER_FLOOR 64
/* One payload: etcd's object limit; a compact payload is never longer than
 * the object it comes from, so only a hostile server reaches it (an error
 * for that LIST or watch, the store stays). */
#define KINF_MAX_PAYLOAD (1536u * 1024)
/* Keys and payloads held by one informer, the store and a LIST in progress
 * together: 10k ServiceEntries of 2 KiB are 20 MiB, so this leaves room for
 * a relist of a store six times that. Past it, that LIST (or event) is an
 * error and the previous store stays. */
#define KINF_DEFAULT_MAX_BYTES (256u << 20)
/* resourceVersion and continue tokens go into URLs: longer than these, or
 * with a byte outside printable ASCII, the body is unusable (relist); else a
 * 9 MiB version went into every watch URL, which curl refused, forever. A
 * resourceVersion is etcd's revision (a number); a continue token is base64
 * of a JSON naming the next key (namespace/name: up to ~320 bytes), so it
 * gets more room. */
#define KINF_MAX_RV 128
#define KINF_MAX_CONTINUE 4096
/* This many watch requests failing in a row (no event between): relist,
 * in case the version itself is what the server or the client cannot use. */
#define KINF_WATCH_FAILS_RELIST 5

struct kinf *kinf_new(kinf_payload_fn payload, uint64_t backoff_base_ms, uint64_t backoff_max_ms,
    size_t max_objects);
void kinf_free(struct kinf *k);
/* Changes the byte cap (KINF_DEFAULT_MAX_BYTES); tests. */
void kinf_set_max_bytes(struct kinf *k, size_t max_bytes);

/* The request to make now (after req->delay_ms). */
void kinf_next(const struct kinf *k, struct kinf_req *req);

/* The body of a LIST page answered 200. The last page (no
 * metadata.continue) replaces the store; *changed says whether that changed
 * anything. false with a reason when the body is unusable: the list starts
 * over after a backoff (kinf_ended must still be called). */
bool kinf_list_page(struct kinf *k, struct json_object *list, double now, bool *changed, char *err,
    size_t errlen);

/* A resourceVersion sedns will send: 1 to KINF_MAX_RV bytes of printable
 * ASCII (a continue token: the same, up to KINF_MAX_CONTINUE bytes). */
bool kinf_token_ok(const char *s);

/* The watch request was answered 200: its stream is open. */
void kinf_watch_open(struct kinf *k, double now);
/* One watch event ({"type": ..., "object": {...}}). false when the stream
 * must be closed (an ERROR event, a malformed event): the next request is
 * decided (err says why) and kinf_ended must still be called. */
bool kinf_watch_event(struct kinf *k, struct json_object *ev, double now, bool *changed, char *err,
    size_t errlen);
/* The request (op, as kinf_next gave it) is over. http_status: its HTTP status, 0 when there was no
 * answer (connect, TLS, timeout); clean: a 200 stream the server ended
 * (not a broken connection). jitter: uniform in [0, 1). */
void kinf_ended(struct kinf *k, enum kinf_op op, int http_status, bool clean, double now, double jitter);

/* The backoff for the n-th consecutive failure (0-based), jitter in
 * [0, 1): half of min(max, base * 2^n), plus jitter times the other half. */
uint64_t kinf_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned n, double jitter);

/* Watch stream framing, linear however the line arrives: the length of the
 * first line of buf[0..len) (its '\n' is at buf[ret]), looking only at the
 * bytes from *scanned on (those before it were searched by an earlier call
 * on the same line; start with *scanned = 0 and reset it to 0 after taking a
 * line). -1: no newline yet (*scanned = len); -2: the line is already longer
 * than max (without its newline). */
long kinf_line_end(const char *buf, size_t len, size_t *scanned, size_t max);
/* false (with a reason) when buf holds more containers than the bound above
 * allows (kubeobj_json_budget_ok with KINF_JSON_*): the body is refused
 * unparsed. Strings (with escapes) are skipped. */
bool kinf_json_budget_ok(const char *buf, size_t len, char *err, size_t errlen);
/* The body is unusable (a watch line or a LIST page that is not JSON, too
 * long or too dense): like a malformed event or page, kinf_ended then
 * relists (from the first page) after a backoff. */
void kinf_broken(struct kinf *k);

void kinf_stats(const struct kinf *k, struct kinf_stats *st);
/* The resourceVersion last seen ("" before the first LIST). */
const char *kinf_rv(const struct kinf *k);

/* A copy of the store sorted by key. */
struct kinf_doc {
	char *key;                 /* "namespace/name" */
	char *payload;
};
bool kinf_snapshot(const struct kinf *k, struct kinf_doc **docs, size_t *n);
void kinf_docs_free(struct kinf_doc *docs, size_t n);
/* The payload stored under key, or NULL (tests). */
const char *kinf_get(const struct kinf *k, const char *key);

#endif
