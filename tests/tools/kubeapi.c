/*
 * kubeapi — a small Kubernetes API server for sedns's tests, speaking the
 * real protocol over TLS (OpenSSL, a test CA made by the test):
 *
 *   GET /apis/networking.istio.io/{v1,v1beta1}/serviceentries   (--no-v1: v1 is 404)
 *   GET /api/v1/pods?fieldSelector=spec.nodeName=NODE
 *     ?limit=N&continue=T  LIST at one resourceVersion, paged (a continue
 *                          token older than the compaction floor: 410)
 *     ?watch=1&resourceVersion=R&allowWatchBookmarks=true&timeoutSeconds=S
 *                          chunked stream of ADDED/MODIFIED/DELETED events
 *                          after R, BOOKMARKs every --bookmark-ms, an ERROR
 *                          410 event when R is older than the floor
 *   every request needs "Authorization: Bearer TOKEN" (else 401)
 *
 * A plain-HTTP control port on 127.0.0.1 drives it (curl):
 *   PUT    /KIND/NS/NAME   (body: the object JSON) add or modify
 *   DELETE /KIND/NS/NAME
 *   POST   /freeze, /thaw  stop / resume sending events to watches
 *   POST   /drop           cut every watch connection (no TLS close, no
 *                          final chunk: a broken stream)
 *   POST   /expire         compaction: every version so far is gone; open
 *                          watches get ERROR 410 and end
 *   POST   /token/VALUE    the token accepted from now on
 *   POST   /hostile/MODE   serviceentries answers turn hostile (MODE "off":
 *                          normal again):
 *                          longline  every watch sends one 64 MiB line
 *                                    without a newline
 *                          nested    every LIST is a page of {} items just
 *                                    under 4 MiB (sedns's page cap)
 *                          bigrv     every LIST has a 2 MiB resourceVersion
 *                          bigpage   every LIST is a 5 MiB page (one item),
 *                                    whatever its limit
 *   GET    /stats          counters, one "name value" per line
 *   GET    /log            every API request line received
 *
 * State is an append-only event log; the objects at version R are replayed
 * from it (a consistent LIST at any version, as etcd gives).
 *
 * Usage: kubeapi --cert F --key F --port P --ctl-port P --token T
 *                [--no-v1] [--bookmark-ms MS]
 * Prints "ready" on stdout once both ports listen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 100000
#define MAX_WATCHERS 256

enum { K_SE, K_POD, NK };
static const char *const kind_names[NK] = { "serviceentries", "pods" };

struct event {
	long rv;
	int kind;
	const char *type;         /* ADDED MODIFIED DELETED */
	char *key;                /* ns/name */
	char *json;               /* the object, resourceVersion set */
	char *node;               /* pods: spec.nodeName */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct event evlog[MAX_EVENTS];
static size_t nev;
static long cur_rv = 100;          /* versions start above 0, like etcd's */
static long floor_rv;              /* versions below are compacted */
static bool frozen;
static unsigned drop_gen, expire_gen;
static char token[512];
static char hostile[32];           /* see /hostile/MODE */
static bool no_v1;
static long bookmark_ms = 1000;
static unsigned long stat_lists[NK], stat_watches[NK], stat_requests, stat_unauth, stat_gone;
static long stat_last_watch_rv[NK] = { -1, -1 };
static char *reqlog;
static size_t reqlog_len;
static SSL_CTX *ctx;

struct conn {
	int fd;
	SSL *ssl;
	char buf[65536];
	size_t len;
};

static void
logreq(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	char *nb = realloc(reqlog, reqlog_len + (size_t)n + 1);
	if (nb == NULL)
		return;
	reqlog = nb;
	memcpy(reqlog + reqlog_len, line, (size_t)n);
	reqlog_len += (size_t)n;
	reqlog[reqlog_len] = '\0';
}

static int
cwrite(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		int w = c->ssl ? SSL_write(c->ssl, p, (int)n) : (int)write(c->fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
cprintf(struct conn *c, const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	int r = cwrite(c, s, (size_t)n);
	free(s);
	return r;
}

/* Reads one request: head into head, body (Content-Length) into *body. */
static int
read_request(struct conn *c, char *head, size_t headlen, char **body)
{
	*body = NULL;
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (end) {
			size_t hl = (size_t)(end - c->buf) + 4;
			if (hl >= headlen)
				return -1;
			memcpy(head, c->buf, hl);
			head[hl] = '\0';
			size_t clen = 0;
			char *cl = strcasestr(head, "\r\nContent-Length:");
			if (cl)
				clen = strtoul(cl + 17, NULL, 10);
			if (clen > sizeof(c->buf) - hl)
				return -1;
			while (c->len < hl + clen) {
				int r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len)) :
				    (int)read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
				if (r <= 0)
					return -1;
				c->len += (size_t)r;
			}
			*body = strndup(c->buf + hl, clen);
			memmove(c->buf, c->buf + hl + clen, c->len - hl - clen);
			c->len -= hl + clen;
			return 0;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		int r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len)) :
		    (int)read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

static void
urldecode(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (*s == '%' && s[1] && s[2]) {
			char h[3] = { s[1], s[2], 0 };
			*o++ = (char)strtol(h, NULL, 16);
			s += 2;
		} else if (*s == '+') {
			*o++ = ' ';
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The value of query parameter name (decoded) into out; false if absent. */
static bool
qparam(const char *query, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);
	for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1, *e = strchr(v, '&');
			size_t l = e ? (size_t)(e - v) : strlen(v);
			if (l >= len)
				l = len - 1;
			memcpy(out, v, l);
			out[l] = '\0';
			urldecode(out);
			return true;
		}
	}
	return false;
}

static void
reply(struct conn *c, int code, const char *reason, const char *body)
{
	cprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", code, reason,
	    strlen(body), body);
}

static void
reply_status(struct conn *c, int code, const char *reason, const char *msg)
{
	char b[600];
	snprintf(b, sizeof(b), "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"%s\","
	    "\"reason\":\"%s\",\"code\":%d}", msg, reason, code);
	reply(c, code, reason, b);
}

static bool
node_match(const struct event *e, const char *node)
{
	return node[0] == '\0' || (e->node && strcmp(e->node, node) == 0);
}

/* Objects of kind at version rv (latest event per key with rv <= at, not
 * deleted), sorted by key: indexes into evlog. Caller holds mu. */
static size_t
state_at(int kind, long at, const char *node, size_t *idx)
{
	size_t n = 0;
	for (size_t i = 0; i < nev && evlog[i].rv <= at; i++) {
		if (evlog[i].kind != kind)
			continue;
		size_t j;
		for (j = 0; j < n; j++)
			if (strcmp(evlog[idx[j]].key, evlog[i].key) == 0)
				break;
		if (j == n)
			idx[n++] = i;
		else
			idx[j] = i;
	}
	size_t m = 0;
	for (size_t j = 0; j < n; j++)
		if (strcmp(evlog[idx[j]].type, "DELETED") != 0 && node_match(&evlog[idx[j]], node))
			idx[m++] = idx[j];
	/* sort by key (insertion: test sizes) */
	for (size_t a = 1; a < m; a++)
		for (size_t b = a; b > 0 && strcmp(evlog[idx[b - 1]].key, evlog[idx[b]].key) > 0; b--) {
			size_t t = idx[b];
			idx[b] = idx[b - 1];
			idx[b - 1] = t;
		}
	return m;
}

static void
do_list(struct conn *c, int kind, const char *query, const char *node)
{
	char lim[32] = "", cont[600] = "";
	qparam(query, "limit", lim, sizeof(lim));
	qparam(query, "continue", cont, sizeof(cont));
	long limit = lim[0] ? atol(lim) : 0;
	pthread_mutex_lock(&mu);
	if (kind == K_SE && (strcmp(hostile, "nested") == 0 || strcmp(hostile, "bigrv") == 0 ||
	    strcmp(hostile, "bigpage") == 0)) {
		bool nested = hostile[0] == 'n', bigpage = strcmp(hostile, "bigpage") == 0;
		stat_lists[kind]++;
		logreq("LIST %s hostile=%s limit=%ld", kind_names[kind], hostile, limit);
		pthread_mutex_unlock(&mu);
		/* nested, bigrv: under sedns's 4 MiB page cap, so the page is
		 * read whole and refused for what it holds, not for its size */
		size_t big = nested ? (4u << 20) - 4096 : bigpage ? 5u << 20 : 2u << 20;
		char *out = malloc(big + 200), *p = out;
		p += sprintf(p, "{\"kind\":\"ServiceEntryList\",\"metadata\":{\"resourceVersion\":\"");
		if (nested) {
			p += sprintf(p, "1\"},\"items\":[{}");
			for (size_t i = 0; i + 3 < big; i += 3)
				p += sprintf(p, ",{}");
		} else if (bigpage) {
			p += sprintf(p, "1\"},\"items\":[{\"metadata\":{\"namespace\":\"team-a\",\"name\":\"big\"},"
			    "\"spec\":{\"pad\":\"");
			memset(p, 'x', big);
			p += big;
			p += sprintf(p, "\"}}");
		} else {
			memset(p, '1', big);
			p += big;
			p += sprintf(p, "\"},\"items\":[");
		}
		sprintf(p, "]}");
		reply(c, 200, "OK", out);
		free(out);
		return;
	}
	long at = cur_rv;
	char after[512] = "";
	if (cont[0]) {
		char *bar = strchr(cont, '|');
		at = atol(cont);
		if (bar)
			snprintf(after, sizeof(after), "%s", bar + 1);
		if (at < floor_rv) {
			stat_gone++;
			pthread_mutex_unlock(&mu);
			logreq("LIST %s continue-expired", kind_names[kind]);
			reply_status(c, 410, "Expired", "The provided continue parameter is too old");
			return;
		}
	}
	size_t *idx = calloc(nev + 1, sizeof(*idx));
	size_t n = state_at(kind, at, node, idx);
	size_t first = 0;
	while (first < n && after[0] && strcmp(evlog[idx[first]].key, after) <= 0)
		first++;
	size_t last = limit > 0 && first + (size_t)limit < n ? first + (size_t)limit : n;
	char *out = NULL;
	size_t olen = 0;
	FILE *f = open_memstream(&out, &olen);
	fprintf(f, "{\"kind\":\"%sList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"%ld\"",
	    kind == K_SE ? "ServiceEntry" : "Pod", at);
	if (last < n)
		fprintf(f, ",\"continue\":\"%ld|%s\"", at, evlog[idx[last - 1]].key);
	fprintf(f, "},\"items\":[");
	for (size_t i = first; i < last; i++)
		fprintf(f, "%s%s", i > first ? "," : "", evlog[idx[i]].json);
	fprintf(f, "]}");
	fclose(f);
	stat_lists[kind] += first == 0;
	logreq("LIST %s limit=%s continue=%s at=%ld items=%zu", kind_names[kind], lim, cont[0] ? "yes" : "", at,
	    last - first);
	pthread_mutex_unlock(&mu);
	free(idx);
	reply(c, 200, "OK", out);
	free(out);
}

static int
chunk(struct conn *c, const char *s)
{
	size_t n = strlen(s);
	return cprintf(c, "%zx\r\n%s\n\r\n", n + 1, s);
}

static long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns false when the connection must be dropped. */
static bool
do_watch(struct conn *c, int kind, const char *query, const char *node)
{
	char rvs[32] = "", ts[32] = "", bm[16] = "";
	qparam(query, "resourceVersion", rvs, sizeof(rvs));
	qparam(query, "timeoutSeconds", ts, sizeof(ts));
	qparam(query, "allowWatchBookmarks", bm, sizeof(bm));
	long from = atol(rvs), timeout = ts[0] ? atol(ts) : 1800;
	bool bookmarks = strcmp(bm, "true") == 0;
	pthread_mutex_lock(&mu);
	stat_watches[kind]++;
	stat_last_watch_rv[kind] = from;
	logreq("WATCH %s rv=%ld timeout=%ld bookmarks=%d", kind_names[kind], from, timeout, bookmarks);
	unsigned my_drop = drop_gen, my_expire = expire_gen;
	pthread_mutex_unlock(&mu);
	if (cprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n") < 0)
		return false;
	long end = now_ms() + timeout * 1000, next_bm = now_ms() + bookmark_ms;
	long pos = from;
	pthread_mutex_lock(&mu);
	if (kind == K_SE && strcmp(hostile, "longline") == 0) {
		pthread_mutex_unlock(&mu);
		/* one event that never ends: 64 MiB without a newline */
		if (cprintf(c, "%zx\r\n{\"type\":\"ADDED\",\"object\":{\"x\":\"\r\n", (size_t)31) < 0)
			return false;
		static char xs[65536];
		memset(xs, 'x', sizeof(xs));
		for (int i = 0; i < 1024; i++)
			if (cprintf(c, "%zx\r\n", sizeof(xs)) < 0 || cwrite(c, xs, sizeof(xs)) < 0 ||
			    cwrite(c, "\r\n", 2) < 0)
				return false;
		return cprintf(c, "0\r\n\r\n") == 0;
	}
	if (from < floor_rv) {
		stat_gone++;
		pthread_mutex_unlock(&mu);
		char e[300];
		snprintf(e, sizeof(e), "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
		    "\"status\":\"Failure\",\"message\":\"too old resource version: %ld (%ld)\",\"reason\":\"Expired\","
		    "\"code\":410}}", from, floor_rv);
		chunk(c, e);
		return cprintf(c, "0\r\n\r\n") == 0;
	}
	for (;;) {
		if (drop_gen != my_drop) {
			pthread_mutex_unlock(&mu);
			return false;
		}
		if (expire_gen != my_expire) {
			stat_gone++;
			pthread_mutex_unlock(&mu);
			char e[300];
			snprintf(e, sizeof(e), "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
			    "\"status\":\"Failure\",\"message\":\"too old resource version: %ld\",\"reason\":\"Expired\","
			    "\"code\":410}}", pos);
			chunk(c, e);
			return cprintf(c, "0\r\n\r\n") == 0;
		}
		/* events after pos */
		while (!frozen) {
			size_t i;
			for (i = 0; i < nev && evlog[i].rv <= pos; i++)
				;
			if (i == nev)
				break;
			struct event *e = &evlog[i];
			pos = e->rv;
			if (e->kind != kind || !node_match(e, node))
				continue;
			char *s;
			if (asprintf(&s, "{\"type\":\"%s\",\"object\":%s}", e->type, e->json) < 0)
				break;
			pthread_mutex_unlock(&mu);
			int r = chunk(c, s);
			free(s);
			pthread_mutex_lock(&mu);
			if (r < 0) {
				pthread_mutex_unlock(&mu);
				return false;
			}
		}
		long t = now_ms();
		if (t >= end) {
			pthread_mutex_unlock(&mu);
			return cprintf(c, "0\r\n\r\n") == 0;
		}
		if (bookmarks && t >= next_bm && !frozen) {
			long brv = pos > cur_rv ? pos : cur_rv;
			pos = brv;
			pthread_mutex_unlock(&mu);
			char b[300];
			snprintf(b, sizeof(b), "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\","
			    "\"metadata\":{\"resourceVersion\":\"%ld\"}}}", kind == K_SE ? "ServiceEntry" : "Pod",
			    kind == K_SE ? "networking.istio.io/v1" : "v1", brv);
			if (chunk(c, b) < 0)
				return false;
			pthread_mutex_lock(&mu);
			next_bm = t + bookmark_ms;
			continue;
		}
		long wait = end - t;
		if (bookmarks && next_bm - t < wait)
			wait = next_bm - t;
		if (wait > 200 || wait < 1)
			wait = 200; /* < 1: a bookmark overdue while frozen */
		struct timespec ab;
		clock_gettime(CLOCK_REALTIME, &ab);
		ab.tv_nsec += wait * 1000000;
		ab.tv_sec += ab.tv_nsec / 1000000000;
		ab.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&cv, &mu, &ab);
	}
}

static void
api_conn(struct conn *c)
{
	char head[16384];
	char *body;
	while (read_request(c, head, sizeof(head), &body) == 0) {
		free(body);
		char method[16], target[4096];
		if (sscanf(head, "%15s %4095s", method, target) != 2)
			return;
		pthread_mutex_lock(&mu);
		stat_requests++;
		pthread_mutex_unlock(&mu);
		char want[600];
		snprintf(want, sizeof(want), "Authorization: Bearer %s\r\n", token);
		if (strcasestr(head, want) == NULL) {
			pthread_mutex_lock(&mu);
			stat_unauth++;
			logreq("401 %s", target);
			pthread_mutex_unlock(&mu);
			reply_status(c, 401, "Unauthorized", "Unauthorized");
			continue;
		}
		char *query = strchr(target, '?');
		if (query)
			*query++ = '\0';
		int kind = -1;
		if (strcmp(target, "/apis/networking.istio.io/v1beta1/serviceentries") == 0 ||
		    (!no_v1 && strcmp(target, "/apis/networking.istio.io/v1/serviceentries") == 0))
			kind = K_SE;
		else if (strcmp(target, "/api/v1/pods") == 0)
			kind = K_POD;
		if (kind < 0 || strcmp(method, "GET") != 0) {
			logreq("404 %s", target);
			reply_status(c, 404, "NotFound", "the server could not find the requested resource");
			continue;
		}
		char node[256] = "", fs[300] = "", w[8] = "";
		if (query && qparam(query, "fieldSelector", fs, sizeof(fs)) && strncmp(fs, "spec.nodeName=", 14) == 0)
			snprintf(node, sizeof(node), "%.250s", fs + 14);
		if (query && qparam(query, "watch", w, sizeof(w)) && (strcmp(w, "1") == 0 || strcmp(w, "true") == 0)) {
			if (!do_watch(c, kind, query, node))
				return;
		} else {
			do_list(c, kind, query ? query : "", node);
		}
	}
}

static void
add_event(int kind, const char *type, const char *ns, const char *name, struct json_object *obj, char *out,
    size_t outlen)
{
	cur_rv++;
	struct json_object *md;
	if (!json_object_object_get_ex(obj, "metadata", &md)) {
		md = json_object_new_object();
		json_object_object_add(obj, "metadata", md);
	}
	json_object_object_add(md, "namespace", json_object_new_string(ns));
	json_object_object_add(md, "name", json_object_new_string(name));
	char rv[32];
	snprintf(rv, sizeof(rv), "%ld", cur_rv);
	json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
	/* what a real server adds and sedns must ignore */
	json_object_object_add(md, "managedFields", json_tokener_parse("[{\"manager\":\"kubectl\"}]"));
	struct event *e = &evlog[nev++];
	e->rv = cur_rv;
	e->kind = kind;
	e->type = type;
	asprintf(&e->key, "%s/%s", ns, name);
	e->json = strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
	struct json_object *spec, *nn;
	if (json_object_object_get_ex(obj, "spec", &spec) && json_object_object_get_ex(spec, "nodeName", &nn))
		e->node = strdup(json_object_get_string(nn));
	snprintf(out, outlen, "%ld\n", cur_rv);
}

/* The last event of kind/key, or NULL. Caller holds mu. */
static struct event *
last_of(int kind, const char *key)
{
	for (size_t i = nev; i-- > 0;)
		if (evlog[i].kind == kind && strcmp(evlog[i].key, key) == 0)
			return &evlog[i];
	return NULL;
}

static void
ctl_conn(struct conn *c)
{
	char head[16384], *body;
	if (read_request(c, head, sizeof(head), &body) != 0)
		return;
	char method[16], target[1024], out[8192] = "ok\n";
	int code = 200;
	if (sscanf(head, "%15s %1023s", method, target) != 2) {
		free(body);
		return;
	}
	pthread_mutex_lock(&mu);
	char k[64], ns[256], name[256];
	if ((strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0) &&
	    sscanf(target, "/%63[^/]/%255[^/]/%255s", k, ns, name) == 3) {
		int kind = strcmp(k, "pods") == 0 ? K_POD : K_SE;
		char key[600];
		snprintf(key, sizeof(key), "%s/%s", ns, name);
		struct event *prev = last_of(kind, key);
		bool exists = prev && strcmp(prev->type, "DELETED") != 0;
		if (nev >= MAX_EVENTS) {
			code = 507;
			snprintf(out, sizeof(out), "event log full\n");
		} else if (method[0] == 'P') {
			struct json_object *obj = json_tokener_parse(body ? body : "");
			if (obj == NULL) {
				code = 400;
				snprintf(out, sizeof(out), "body is not JSON\n");
			} else {
				add_event(kind, exists ? "MODIFIED" : "ADDED", ns, name, obj, out, sizeof(out));
				json_object_put(obj);
			}
		} else if (!exists) {
			code = 404;
			snprintf(out, sizeof(out), "no such object\n");
		} else {
			struct json_object *obj = json_tokener_parse(prev->json);
			add_event(kind, "DELETED", ns, name, obj, out, sizeof(out));
			json_object_put(obj);
		}
	} else if (strcmp(target, "/freeze") == 0) {
		frozen = true;
	} else if (strcmp(target, "/thaw") == 0) {
		frozen = false;
	} else if (strcmp(target, "/drop") == 0) {
		drop_gen++;
	} else if (strcmp(target, "/expire") == 0) {
		floor_rv = cur_rv; /* a watch from before now is too old */
		expire_gen++;
		frozen = false;
	} else if (strncmp(target, "/hostile/", 9) == 0) {
		snprintf(hostile, sizeof(hostile), "%.31s", strcmp(target + 9, "off") == 0 ? "" : target + 9);
	} else if (strncmp(target, "/token/", 7) == 0) {
		snprintf(token, sizeof(token), "%.500s", target + 7);
	} else if (strcmp(target, "/stats") == 0) {
		snprintf(out, sizeof(out), "rv %ld\nrequests %lu\nunauthorized %lu\ngone %lu\n"
		    "lists_serviceentries %lu\nlists_pods %lu\nwatches_serviceentries %lu\nwatches_pods %lu\n"
		    "last_watch_rv_serviceentries %ld\nlast_watch_rv_pods %ld\n", cur_rv, stat_requests, stat_unauth,
		    stat_gone, stat_lists[K_SE], stat_lists[K_POD], stat_watches[K_SE], stat_watches[K_POD],
		    stat_last_watch_rv[K_SE], stat_last_watch_rv[K_POD]);
	} else if (strcmp(target, "/log") == 0) {
		char *l = strdup(reqlog ? reqlog : "");
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		cprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen(l), l);
		free(l);
		free(body);
		return;
	} else {
		code = 404;
		snprintf(out, sizeof(out), "unknown control\n");
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	free(body);
	cprintf(c, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", code, strlen(out), out);
}

struct job {
	int fd;
	bool tls;
};

static void *
conn_thread(void *arg)
{
	struct job *j = arg;
	struct conn *c = calloc(1, sizeof(*c));
	c->fd = j->fd;
	if (j->tls) {
		c->ssl = SSL_new(ctx);
		SSL_set_fd(c->ssl, c->fd);
		if (SSL_accept(c->ssl) == 1)
			api_conn(c);
		/* no SSL_shutdown: a dropped watch must look broken; a
		 * finished one has ended its chunked body already */
		SSL_free(c->ssl);
	} else {
		ctl_conn(c);
	}
	close(c->fd);
	free(c);
	free(j);
	return NULL;
}

static int
listen_on(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 64) < 0) {
		fprintf(stderr, "kubeapi: port %d: %s\n", port, strerror(errno));
		exit(1);
	}
	return s;
}

struct acceptor {
	int fd;
	bool tls;
};

static void *
accept_thread(void *arg)
{
	struct acceptor *a = arg;
	for (;;) {
		int fd = accept(a->fd, NULL, NULL);
		if (fd < 0)
			continue;
		struct job *j = malloc(sizeof(*j));
		j->fd = fd;
		j->tls = a->tls;
		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &at, conn_thread, j) != 0) {
			close(fd);
			free(j);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	int port = 0, ctl = 0;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";
		if (strcmp(argv[i], "--cert") == 0)
			cert = v, i++;
		else if (strcmp(argv[i], "--key") == 0)
			key = v, i++;
		else if (strcmp(argv[i], "--port") == 0)
			port = atoi(v), i++;
		else if (strcmp(argv[i], "--ctl-port") == 0)
			ctl = atoi(v), i++;
		else if (strcmp(argv[i], "--token") == 0)
			snprintf(token, sizeof(token), "%s", v), i++;
		else if (strcmp(argv[i], "--bookmark-ms") == 0)
			bookmark_ms = atol(v), i++;
		else if (strcmp(argv[i], "--no-v1") == 0)
			no_v1 = true;
		else {
			fprintf(stderr, "kubeapi: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!cert || !key || !port || !ctl) {
		fprintf(stderr, "usage: kubeapi --cert F --key F --port P --ctl-port P --token T [--no-v1] "
		    "[--bookmark-ms MS]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	static struct acceptor api, ctlacc;
	api.fd = listen_on(port);
	api.tls = true;
	ctlacc.fd = listen_on(ctl);
	ctlacc.tls = false;
	pthread_t t1;
	pthread_create(&t1, NULL, accept_thread, &api);
	printf("ready\n");
	fflush(stdout);
	accept_thread(&ctlacc);
	return 0;
}
