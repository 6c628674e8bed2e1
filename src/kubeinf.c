/* kubeinf — see include/kubeinf.h. */
#include "kubeinf.h"
#include "kubeobj.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A watch that ends this soon after opening, having delivered nothing, is a
 * failure (backoff), not the server's timeout: else a server that closes
 * every watch at once would be asked again in a tight loop. */
#define QUICK_END_SECONDS 1.0

struct kent {
	char *key;
	char *payload;
	struct kent *next;
};

struct kmap {
	struct kent **b;
	size_t nb, n;              /* nb: power of two (0 before the first put) */
	size_t bytes;              /* keys and payloads (strlen) */
};

struct kinf {
	kinf_payload_fn payload;
	uint64_t base_ms, max_ms;
	size_t max_objects;
	size_t max_bytes;          /* store.bytes + pending.bytes at most */
	struct kmap store;
	struct kmap pending;       /* pages of the LIST in progress */
	enum kinf_op op;
	char *cont;                /* continue token of the next page */
	char *rv;                  /* last resourceVersion seen */
	unsigned attempts;         /* consecutive failures */
	unsigned watch_failures;   /* consecutive failed watches */
	uint64_t delay_ms;
	bool gone;                 /* the stream said 410: relist */
	bool stream_error;         /* the stream said something else bad */
	double opened;             /* the watch stream's start */
	uint64_t stream_events;
	uint64_t events_since_list;
	struct kinf_stats st;
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void
kmap_free(struct kmap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		for (struct kent *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			free(e->key);
			free(e->payload);
			free(e);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

static struct kent **
kmap_slot(const struct kmap *m, const char *key)
{
	if (m->nb == 0)
		return NULL;
	struct kent **p = &m->b[hash(key) & (m->nb - 1)];
	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

static bool
kmap_grow(struct kmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct kent **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return false;
	for (size_t i = 0; i < m->nb; i++) {
		for (struct kent *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			size_t h = hash(e->key) & (nb - 1);
			e->next = b[h];
			b[h] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return true;
}

/* Takes payload. 1: changed, 0: same payload, -1: out of memory / full
 * (more than max entries, or the map would grow past max_bytes). */
static int
kmap_put(struct kmap *m, const char *key, char *payload, size_t max, size_t max_bytes)
{
	struct kent **p = kmap_slot(m, key);
	size_t pl = strlen(payload);
	if (p && *p) {
		if (strcmp((*p)->payload, payload) == 0) {
			free(payload);
			return 0;
		}
		size_t old = strlen((*p)->payload);
		if (pl > old && m->bytes + (pl - old) > max_bytes) {
			free(payload);
			return -1;
		}
		m->bytes = m->bytes - old + pl;
		free((*p)->payload);
		(*p)->payload = payload;
		return 1;
	}
	size_t add = strlen(key) + pl;
	if (m->n >= max || m->bytes + add > max_bytes || ((m->n + 1 > m->nb) && !kmap_grow(m))) {
		free(payload);
		return -1;
	}
	struct kent *e = calloc(1, sizeof(*e));
	if (e == NULL || (e->key = strdup(key)) == NULL) {
		free(e);
		free(payload);
		return -1;
	}
	e->payload = payload;
	p = kmap_slot(m, key);
	e->next = *p;
	*p = e;
	m->n++;
	m->bytes += add;
	return 1;
}

static bool
kmap_del(struct kmap *m, const char *key)
{
	struct kent **p = kmap_slot(m, key);
	if (p == NULL || *p == NULL)
		return false;
	struct kent *e = *p;
	*p = e->next;
	m->bytes -= strlen(e->key) + strlen(e->payload);
	free(e->key);
	free(e->payload);
	free(e);
	m->n--;
	return true;
}

static const char *
kmap_get(const struct kmap *m, const char *key)
{
	struct kent **p = kmap_slot(m, key);
	return p && *p ? (*p)->payload : NULL;
}

/* Same keys with the same payloads. */
static bool
kmap_equal(const struct kmap *a, const struct kmap *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->nb; i++)
		for (const struct kent *e = a->b[i]; e; e = e->next) {
			const char *o = kmap_get(b, e->key);
			if (o == NULL || strcmp(o, e->payload) != 0)
				return false;
		}
	return true;
}

struct kinf *
kinf_new(kinf_payload_fn payload, uint64_t backoff_base_ms, uint64_t backoff_max_ms, size_t max_objects)
{
	struct kinf *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	k->payload = payload;
	k->base_ms = backoff_base_ms ? backoff_base_ms : 1;
	k->max_ms = backoff_max_ms >= k->base_ms ? backoff_max_ms : k->base_ms;
	k->max_objects = max_objects ? max_objects : KINF_DEFAULT_MAX_OBJECTS;
	k->max_bytes = KINF_DEFAULT_MAX_BYTES;
	k->op = KINF_LIST;
	return k;
}

void
kinf_set_max_bytes(struct kinf *k, size_t max_bytes)
{
	k->max_bytes = max_bytes;
}

/* The bytes m may still grow by: the cap less both maps. */
static size_t
room(const struct kinf *k, const struct kmap *m)
{
	size_t used = k->store.bytes + k->pending.bytes;
	return m->bytes + (used < k->max_bytes ? k->max_bytes - used : 0);
}

void
kinf_free(struct kinf *k)
{
	if (k == NULL)
		return;
	kmap_free(&k->store);
	kmap_free(&k->pending);
	free(k->cont);
	free(k->rv);
	free(k);
}

uint64_t
kinf_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned n, double jitter)
{
	uint64_t d = base_ms;
	for (unsigned i = 0; i < n && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	if (!(jitter >= 0) || jitter >= 1)
		jitter = 0;
	/* half fixed, half random: spread, but never zero (a thousand nodes
	 * must not come back in the same millisecond) */
	return d / 2 + (uint64_t)(jitter * (double)(d - d / 2));
}

void
kinf_next(const struct kinf *k, struct kinf_req *req)
{
	memset(req, 0, sizeof(*req));
	req->op = k->op;
	req->delay_ms = k->delay_ms;
	if (k->op == KINF_LIST)
		req->cont = k->cont;
	else
		req->rv = k->rv ? k->rv : "";
}

static void
set_str(char **dst, const char *s)
{
	char *d = s ? strdup(s) : NULL;
	free(*dst);
	*dst = d;
}

/* "namespace/name" of obj into buf; false when it has no name. */
static bool
obj_key(struct json_object *obj, char *buf, size_t len)
{
	struct json_object *md = kubeobj_get(obj, "metadata");
	const char *name = kubeobj_str(md, "name"), *ns = kubeobj_str(md, "namespace");
	if (name == NULL || name[0] == '\0')
		return false;
	int n = snprintf(buf, len, "%s/%s", ns ? ns : "", name);
	return n > 0 && (size_t)n < len;
}

/* Starts the list over from its first page. */
static void
restart_list(struct kinf *k)
{
	kmap_free(&k->pending);
	set_str(&k->cont, NULL);
	k->op = KINF_LIST;
	k->watch_failures = 0;
}

/* A resourceVersion or continue token goes into a URL: 1 to max bytes of
 * printable ASCII (see KINF_MAX_RV). */
static bool
token_ok(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= max || (unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
			return false;
	return n > 0;
}

bool
kinf_token_ok(const char *s)
{
	return token_ok(s, KINF_MAX_RV);
}

bool
kinf_list_page(struct kinf *k, struct json_object *list, double now, bool *changed, char *err, size_t errlen)
{
	*changed = false;
	struct json_object *items = kubeobj_get(list, "items");
	struct json_object *md = kubeobj_get(list, "metadata");
	const char *rv = kubeobj_str(md, "resourceVersion");
	if (items == NULL || !json_object_is_type(items, json_type_array) || rv == NULL || rv[0] == '\0') {
		snprintf(err, errlen, "LIST answer is not a list with items and metadata.resourceVersion");
		restart_list(k);
		k->stream_error = true;
		return false;
	}
	const char *cont = kubeobj_str(md, "continue");
	bool rv_ok = token_ok(rv, KINF_MAX_RV);
	if (!rv_ok || (cont && cont[0] && !token_ok(cont, KINF_MAX_CONTINUE))) {
		snprintf(err, errlen, "LIST answer's metadata.%s is longer than %d bytes or not printable ASCII",
		    rv_ok ? "continue" : "resourceVersion", rv_ok ? KINF_MAX_CONTINUE : KINF_MAX_RV);
		restart_list(k);
		k->stream_error = true;
		return false;
	}
	size_t n = json_object_array_length(items);
	for (size_t i = 0; i < n; i++) {
		struct json_object *obj = json_object_array_get_idx(items, i);
		char key[600];
		if (!obj_key(obj, key, sizeof(key))) {
			/* an API server always names its objects: a page of
			 * nameless items would otherwise replace the store
			 * with nothing and drop every name it served */
			snprintf(err, errlen, "LIST item %zu has no usable metadata.name; keeping the previous objects", i);
			restart_list(k);
			k->stream_error = true;
			return false;
		}
		char *p = k->payload(obj);
		if (p == NULL)
			continue;
		if (strlen(p) > KINF_MAX_PAYLOAD) {
			snprintf(err, errlen, "LIST: object %.200s is larger than %u KiB; keeping the previous ones", key,
			    KINF_MAX_PAYLOAD >> 10);
			free(p);
			restart_list(k);
			k->stream_error = true;
			return false;
		}
		if (kmap_put(&k->pending, key, p, k->max_objects, room(k, &k->pending)) < 0) {
			snprintf(err, errlen, "LIST has more than %zu objects or %zu MiB (or out of memory); keeping the "
			    "previous ones", k->max_objects, k->max_bytes >> 20);
			restart_list(k);
			k->stream_error = true;
			return false;
		}
	}
	if (cont && cont[0]) {
		set_str(&k->cont, cont);
		if (k->cont == NULL) {
			snprintf(err, errlen, "out of memory");
			restart_list(k);
			k->stream_error = true;
			return false;
		}
		return true;
	}
	/* the last page: the list replaces the store whole */
	*changed = !kmap_equal(&k->store, &k->pending) || !k->st.synced;
	kmap_free(&k->store);
	k->store = k->pending;
	memset(&k->pending, 0, sizeof(k->pending));
	set_str(&k->cont, NULL);
	set_str(&k->rv, rv);
	if (k->st.synced)
		k->st.relists++;
	k->st.lists++;
	k->st.synced = true;
	k->st.last_sync = now;
	k->st.changes += *changed;
	k->op = KINF_WATCH;
	/* attempts is not reset here but by the first watch event: a server
	 * that answers every watch after a LIST with 410 would otherwise be
	 * relisted from in a tight loop */
	k->events_since_list = 0;
	k->delay_ms = 0;
	return true;
}

void
kinf_watch_open(struct kinf *k, double now)
{
	k->opened = now;
	k->stream_events = 0;
	k->gone = k->stream_error = false;
	k->st.watches++;
}

static int
status_code(struct json_object *status)
{
	struct json_object *c = kubeobj_get(status, "code");
	return c && json_object_is_type(c, json_type_int) ? json_object_get_int(c) : 0;
}

bool
kinf_watch_event(struct kinf *k, struct json_object *ev, double now, bool *changed, char *err, size_t errlen)
{
	*changed = false;
	const char *type = kubeobj_str(ev, "type");
	struct json_object *obj = kubeobj_get(ev, "object");
	if (type == NULL || obj == NULL || !json_object_is_type(obj, json_type_object)) {
		snprintf(err, errlen, "malformed watch event (no type or object)");
		k->stream_error = true;
		return false;
	}
	if (strcmp(type, "ERROR") == 0) {
		int code = status_code(obj);
		const char *msg = kubeobj_str(obj, "message");
		snprintf(err, errlen, "watch ERROR %d: %s", code, msg ? msg : "(no message)");
		if (code == 410)
			k->gone = true;
		else
			k->stream_error = true;
		return false;
	}
	enum kinf_event e;
	if (strcmp(type, "ADDED") == 0)
		e = KINF_ADDED;
	else if (strcmp(type, "MODIFIED") == 0)
		e = KINF_MODIFIED;
	else if (strcmp(type, "DELETED") == 0)
		e = KINF_DELETED;
	else if (strcmp(type, "BOOKMARK") == 0)
		e = KINF_BOOKMARK;
	else {
		snprintf(err, errlen, "unknown watch event type \"%.40s\"", type);
		k->stream_error = true;
		return false;
	}
	const char *rv = kubeobj_str(kubeobj_get(obj, "metadata"), "resourceVersion");
	if (rv == NULL || rv[0] == '\0') {
		snprintf(err, errlen, "watch event %s without metadata.resourceVersion", type);
		k->stream_error = true;
		return false;
	}
	if (!token_ok(rv, KINF_MAX_RV)) {
		snprintf(err, errlen, "watch event %s: metadata.resourceVersion is longer than %d bytes or not printable "
		    "ASCII", type, KINF_MAX_RV);
		k->stream_error = true;
		return false;
	}
	char key[600];
	if (e != KINF_BOOKMARK && !obj_key(obj, key, sizeof(key))) {
		snprintf(err, errlen, "watch event %s for an object without metadata.name", type);
		k->stream_error = true;
		return false;
	}
	int r = 0;
	if (e == KINF_ADDED || e == KINF_MODIFIED) {
		char *p = k->payload(obj);
		if (p && strlen(p) > KINF_MAX_PAYLOAD) {
			free(p);
			snprintf(err, errlen, "watch event %s: object %.200s is larger than %u KiB", type, key,
			    KINF_MAX_PAYLOAD >> 10);
			k->stream_error = true;
			return false;
		}
		/* an object that stopped counting (a pod that finished) leaves */
		r = p ? kmap_put(&k->store, key, p, k->max_objects, room(k, &k->store)) : kmap_del(&k->store, key);
		if (r < 0) {
			snprintf(err, errlen, "more than %zu objects or %zu MiB (or out of memory)", k->max_objects,
			    k->max_bytes >> 20);
			k->stream_error = true;
			return false;
		}
	} else if (e == KINF_DELETED) {
		r = kmap_del(&k->store, key);
	}
	set_str(&k->rv, rv);
	k->st.events[e]++;
	k->st.last_sync = now;
	k->st.changes += r > 0;
	k->stream_events++;
	k->events_since_list++;
	k->attempts = 0;
	k->watch_failures = 0;
	*changed = r > 0;
	return true;
}

long
kinf_line_end(const char *buf, size_t len, size_t *scanned, size_t max)
{
	size_t from = *scanned < len ? *scanned : len;
	const char *nl = memchr(buf + from, '\n', len - from);
	size_t l = nl ? (size_t)(nl - buf) : len;
	if (l > max) {
		*scanned = len;
		return -2;
	}
	if (nl == NULL) {
		*scanned = len;
		return -1;
	}
	*scanned = l;
	return (long)l;
}

bool
kinf_json_budget_ok(const char *buf, size_t len, char *err, size_t errlen)
{
	if (kubeobj_json_budget_ok(buf, len, KINF_JSON_BYTES_PER_CONTAINER, KINF_JSON_CONTAINER_FLOOR))
		return true;
	snprintf(err, errlen, "more than %zu objects and arrays in %zu bytes (at most one per %d bytes): refused "
	    "unparsed", len / KINF_JSON_BYTES_PER_CONTAINER + KINF_JSON_CONTAINER_FLOOR, len,
	    KINF_JSON_BYTES_PER_CONTAINER);
	return false;
}

void
kinf_broken(struct kinf *k)
{
	k->stream_error = true;
}

void
kinf_ended(struct kinf *k, enum kinf_op op, int http_status, bool clean, double now, double jitter)
{
	bool failed;
	if (op == KINF_LIST && k->op == KINF_WATCH && http_status == 200 && !k->stream_error) {
		failed = false; /* its last page came: watch next */
	} else if (op == KINF_LIST) {
		k->op = KINF_LIST;
		/* a page that did not come (or was unusable): from the top */
		failed = http_status != 200 || k->stream_error;
		if (failed) {
			restart_list(k);
			k->st.expired += http_status == 410;
		}
		k->stream_error = false;
		/* an expired continue token is not the server failing */
		failed &= http_status != 410;
	} else if (http_status == 410 || k->gone) {
		k->st.expired++;
		restart_list(k);
		/* at once, unless the list just made is already too old */
		failed = k->events_since_list == 0;
	} else if (http_status != 200 || k->stream_error) {
		/* a bad stream cannot be trusted to resume: relist; so does a
		 * watch that keeps failing (whatever the version it resumes
		 * from, the server will not take it). restart_list zeroes
		 * watch_failures. */
		if (http_status == 200 || ++k->watch_failures >= KINF_WATCH_FAILS_RELIST)
			restart_list(k);
		failed = true;
	} else {
		/* resume from the last version: at once after the server's
		 * timeout, after a backoff when the connection broke */
		k->st.watch_restarts++;
		failed = !clean || (k->stream_events == 0 && now - k->opened < QUICK_END_SECONDS);
	}
	k->gone = k->stream_error = false;
	if (failed) {
		k->st.failures++;
		k->delay_ms = kinf_backoff_ms(k->base_ms, k->max_ms, k->attempts, jitter);
		if (k->attempts < 64)
			k->attempts++;
	} else {
		k->delay_ms = 0;
	}
}

void
kinf_stats(const struct kinf *k, struct kinf_stats *st)
{
	*st = k->st;
	st->objects = k->store.n;
}

const char *
kinf_rv(const struct kinf *k)
{
	return k->rv ? k->rv : "";
}

const char *
kinf_get(const struct kinf *k, const char *key)
{
	return kmap_get(&k->store, key);
}

static int
doc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kinf_doc *)a)->key, ((const struct kinf_doc *)b)->key);
}

void
kinf_docs_free(struct kinf_doc *docs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(docs[i].key);
		free(docs[i].payload);
	}
	free(docs);
}

bool
kinf_snapshot(const struct kinf *k, struct kinf_doc **docs, size_t *n)
{
	*docs = NULL;
	*n = 0;
	struct kinf_doc *d = calloc(k->store.n ? k->store.n : 1, sizeof(*d));
	if (d == NULL)
		return false;
	size_t j = 0;
	for (size_t i = 0; i < k->store.nb; i++)
		for (const struct kent *e = k->store.b[i]; e; e = e->next) {
			d[j].key = strdup(e->key);
			d[j].payload = strdup(e->payload);
			if (d[j].key == NULL || d[j].payload == NULL) {
				kinf_docs_free(d, j + 1);
				return false;
			}
			j++;
		}
	qsort(d, j, sizeof(*d), doc_cmp);
	*docs = d;
	*n = j;
	return true;
}
