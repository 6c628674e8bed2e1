/* kube — see include/kube.h. */
#include "kube.h"

#include "curlshim.h"
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kubeconfig.h"
#include "kubeobj.h"
#include "log.h"
#include "monotime.h"
#include "workloads.h"

#ifndef SEDNS_VERSION
#define SEDNS_VERSION "unknown"
#endif

/* Bodies: a LIST page is at most KINF_MAX_PAGE (larger: the request is
 * aborted, the list retried after a backoff with half as many objects a
 * page); a watch holds one line at most (KINF_MAX_LINE) plus what curl
 * hands over at once. */
#define KUBE_MAX_WATCH_BUF (KINF_MAX_LINE + (1u << 20))
/* a body buffer grown past this is freed when its request ends */
#define KUBE_KEEP_BODY (1u << 20)
#define KUBE_MAX_TOKEN 65536
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 30000
/* the same failure is logged again after this long (the backoff retries
 * every 30 s at most: once a minute is enough to see it persists) */
#define RELOG_SECONDS 60.0

struct kkind {
	struct kube *k;
	enum kube_kind kind;
	const char *name;
	bool on;
	struct kinf *inf;
	const char *const *paths;  /* API paths to try, in order */
	size_t npaths, path;
	char selector[320];        /* fieldSelector query part, or "" */
	/* the request in flight */
	CURL *easy;
	struct curl_slist *hdrs;
	enum kinf_op op;
	long status;               /* HTTP status of the response, 0: none */
	bool opened;               /* watch: headers of a 200 seen */
	bool aborted;              /* we stopped the transfer (kinf decided) */
	char *body;
	size_t len, cap;
	size_t scanned;            /* watch: bytes of the partial line searched */
	unsigned long long page_limit; /* LIST limit: halved after a page too
	                               large for KINF_MAX_PAGE (down to 1) */
	bool too_large;            /* this answer hit its size cap (or realloc failed) */
	char errbuf[CURL_ERROR_SIZE];
	struct event *timer;       /* the next request */
	uint64_t requests;
	char last_error[512];
	double last_logged;
	bool failing;
};

struct kube {
	struct event_base *base;
	CURLM *multi;
	struct event *curl_timer;
	struct kube_conn conn;
	char *token;               /* the token last read (to see a rotation) */
	struct kkind kinds[KUBE_NKINDS];
	uint64_t request_timeout_ms, watch_timeout_ms, page_size;
	struct event *debounce;
	uint64_t debounce_ms;
	void (*changed)(void *);
	void *arg;
	bool quiet;                /* kube_wait_synced: no callback */
	unsigned short rand[3];
};

static const char *const se_paths[] = {
	"/apis/networking.istio.io/v1/serviceentries",
	"/apis/networking.istio.io/v1beta1/serviceentries",
};
static const char *const pod_paths[] = { "/api/v1/pods" };

static void start_request(struct kkind *kk);
static void schedule_next(struct kkind *kk);
static void request_done(struct kkind *kk, CURLcode rc);

bool
kube_configured(const struct config *cfg)
{
	return cfg->kube_in_cluster || (cfg->kube_kubeconfig && cfg->kube_kubeconfig[0]);
}

static double
jitter(struct kube *k)
{
	return erand48(k->rand);
}

/* Logs a failure: at once when it is new, then once a minute while it
 * lasts (each retry is also counted in the metrics). */
static void
fail_log(struct kkind *kk, const char *msg, uint64_t retry_ms)
{
	double now = monotime_now();
	bool same = strcmp(kk->last_error, msg) == 0;
	if (!same || now - kk->last_logged >= RELOG_SECONDS) {
		log_error("kubernetes: %s: %s; retrying in %.1fs, serving what was loaded", kk->name, msg,
		    (double)retry_ms / 1000);
		kk->last_logged = now;
	}
	snprintf(kk->last_error, sizeof(kk->last_error), "%s", msg);
	kk->failing = true;
}

static void
recovered(struct kkind *kk)
{
	if (kk->failing)
		log_info("kubernetes: %s: the API server answers again", kk->name);
	kk->failing = false;
	kk->last_error[0] = '\0';
}

static void
debounce_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kube *k = arg;
	k->changed(k->arg);
}

static void
mark_changed(struct kube *k)
{
	if (k->quiet || evtimer_pending(k->debounce, NULL))
		return;
	struct timeval tv = monotime_tv(k->debounce_ms);
	evtimer_add(k->debounce, &tv);
}

/* --- curl on libevent --- */

static void
check_done(struct kube *k)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(k->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct kkind *kk = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&kk);
		CURLcode rc = m->data.result;
		if (kk == NULL)
			continue;
		/* m is invalid once the handle is removed */
		request_done(kk, rc);
	}
}

static void
sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kube *k = arg;
	int running, flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	curl_multi_socket_action(k->multi, fd, flags, &running);
	check_done(k);
}

static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct kube *k = userp;
	struct event *ev = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (ev) {
			event_free(ev);
			curl_multi_assign(k->multi, s, NULL);
		}
		return 0;
	}
	short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (ev) {
		event_del(ev);
		event_assign(ev, k->base, s, kind, sock_event_cb, k);
	} else {
		ev = event_new(k->base, s, kind, sock_event_cb, k);
		if (ev == NULL)
			return -1;
		curl_multi_assign(k->multi, s, ev);
	}
	event_add(ev, NULL);
	return 0;
}

static void
curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kube *k = arg;
	int running;
	curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(k);
}

static int
timer_cb(CURLM *m, long ms, void *userp)
{
	struct kube *k = userp;
	if (ms < 0) {
		evtimer_del(k->curl_timer);
		return 0;
	}
	struct timeval tv = monotime_tv((uint64_t)ms);
	evtimer_add(k->curl_timer, &tv);
	return 0;
}

/* --- responses --- */

static void
parse_status_line(struct kkind *kk, const char *buf, size_t len)
{
	char line[64];
	size_t n = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
	memcpy(line, buf, n);
	line[n] = '\0';
	int code;
	if (sscanf(line, "HTTP/%*s %d", &code) == 1)
		kk->status = code;
}

static size_t
header_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct kkind *kk = arg;
	size_t len = size * n;
	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		parse_status_line(kk, buf, len);
	} else if (len <= 2 && kk->op == KINF_WATCH && kk->status == 200 && !kk->opened) {
		/* the end of a 200's headers: the stream is open, even if no
		 * event comes for a long time */
		kk->opened = true;
		kinf_watch_open(kk->inf, monotime_now());
		recovered(kk);
	}
	return len;
}

static struct json_object *
parse(const char *buf, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = tok ? json_tokener_parse_ex(tok, buf, (int)len) : NULL;
	json_tokener_free(tok);
	return o;
}

/* Feeds the complete lines of a watch stream to the informer. false: stop
 * the stream (the informer decided what comes next). Each byte is searched
 * for a newline once (kk->scanned): a long line arriving in many chunks costs
 * its length, not its length squared, on the loop DNS runs on. */
static bool
watch_lines(struct kkind *kk)
{
	size_t start = 0;
	bool ok = true;
	while (ok) {
		size_t scanned = kk->scanned;
		long r = kinf_line_end(kk->body + start, kk->len - start, &scanned, KINF_MAX_LINE);
		if (r == -2) {
			kinf_broken(kk->inf);
			log_warnx("kubernetes: %s: watch stream: a line longer than %u MiB (an object etcd cannot hold): "
			    "ending the watch, relisting", kk->name, KINF_MAX_LINE >> 20);
			ok = false;
			break;
		}
		if (r == -1) {
			kk->scanned = scanned;
			break;
		}
		size_t l = (size_t)r;
		kk->scanned = 0;
		if (l > 0) {
			bool changed = false;
			char err[300];
			struct json_object *ev = NULL;
			char why[200];
			if (!kinf_json_budget_ok(kk->body + start, l, why, sizeof(why))) {
				kinf_broken(kk->inf);
				snprintf(err, sizeof(err), "watch stream: an event with %s; relisting", why);
				ok = false;
			} else if ((ev = parse(kk->body + start, l)) == NULL) {
				/* a broken line: the stream cannot be trusted */
				kinf_broken(kk->inf);
				snprintf(err, sizeof(err), "watch stream: a line is not JSON");
				ok = false;
			} else {
				ok = kinf_watch_event(kk->inf, ev, monotime_now(), &changed, err, sizeof(err));
				json_object_put(ev);
			}
			if (!ok)
				log_warnx("kubernetes: %s: %s", kk->name, err);
			if (changed)
				mark_changed(kk->k);
		}
		start += l + 1;
	}
	memmove(kk->body, kk->body + start, kk->len - start);
	kk->len -= start;
	return ok;
}

static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct kkind *kk = arg;
	size_t len = size * n;
	if (kk->len + len + 1 > kk->cap) {
		size_t nc = kk->cap ? kk->cap : 65536;
		while (nc < kk->len + len + 1)
			nc *= 2;
		size_t max = kk->op == KINF_LIST ? KINF_MAX_PAGE : KUBE_MAX_WATCH_BUF;
		if (nc > max && kk->len + len + 1 <= max)
			nc = max;
		char *nb = nc <= max ? realloc(kk->body, nc) : NULL;
		if (nb == NULL) {
			kk->too_large = true;
			snprintf(kk->errbuf, sizeof(kk->errbuf), "answer larger than %zu MiB (or out of memory)",
			    max >> 20);
			return 0;
		}
		kk->body = nb;
		kk->cap = nc;
	}
	memcpy(kk->body + kk->len, p, len);
	kk->len += len;
	kk->body[kk->len] = '\0';
	if (kk->op == KINF_WATCH && kk->status == 200 && !watch_lines(kk)) {
		kk->aborted = true;
		return 0;
	}
	return len;
}

/* "message" of a Kubernetes Status body, else the body's start. */
static void
body_message(const struct kkind *kk, char *out, size_t len)
{
	out[0] = '\0';
	if (kk->len == 0)
		return;
	struct json_object *o = json_tokener_parse(kk->body), *m;
	if (o && json_object_object_get_ex(o, "message", &m) && json_object_is_type(m, json_type_string))
		snprintf(out, len, "%s", json_object_get_string(m));
	else
		snprintf(out, len, "%.120s", kk->body);
	json_object_put(o);
	for (char *c = out; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
}

static const char *
op_name(enum kinf_op op)
{
	return op == KINF_LIST ? "LIST" : "WATCH";
}

static void
request_done(struct kkind *kk, CURLcode rc)
{
	struct kube *k = kk->k;
	double now = monotime_now();
	long status = 0;
	curl_easy_getinfo(kk->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 0)
		status = kk->status;
	char url_path[200];
	snprintf(url_path, sizeof(url_path), "%s %s%s", op_name(kk->op), k->conn.server, kk->paths[kk->path]);
	char msg[800] = "";
	if (kk->op == KINF_LIST && rc == CURLE_OK && status == 200) {
		bool changed = false;
		char err[300];
		struct json_object *list = NULL;
		if (!kinf_json_budget_ok(kk->body ? kk->body : "", kk->len, err, sizeof(err))) {
			kinf_broken(kk->inf);
			snprintf(msg, sizeof(msg), "%s: the answer has %s", url_path, err);
		} else if ((list = parse(kk->body ? kk->body : "", kk->len)) == NULL) {
			kinf_broken(kk->inf);
			snprintf(msg, sizeof(msg), "%s: the answer is not JSON", url_path);
		} else if (!kinf_list_page(kk->inf, list, now, &changed, err, sizeof(err))) {
			snprintf(msg, sizeof(msg), "%s: %s", url_path, err);
		} else {
			recovered(kk);
		}
		json_object_put(list);
		if (changed)
			mark_changed(k);
	} else if (kk->op == KINF_LIST && status == 404 && kk->path + 1 < kk->npaths) {
		/* v1 not served (Istio before 1.22): the next version */
		log_info("kubernetes: %s: %s%s is not served (404); trying %s", kk->name, k->conn.server,
		    kk->paths[kk->path], kk->paths[kk->path + 1]);
		kk->path++;
		curl_multi_remove_handle(k->multi, kk->easy);
		curl_easy_cleanup(kk->easy);
		kk->easy = NULL;
		curl_slist_free_all(kk->hdrs);
		kk->hdrs = NULL;
		start_request(kk);
		return;
	} else if (status != 0 && status != 200) {
		char bm[300];
		body_message(kk, bm, sizeof(bm));
		const char *hint = "";
		if (status == 401)
			hint = " (the token was refused: expired, or not this cluster's?)";
		else if (status == 403)
			hint = " (RBAC: the service account needs get, list and watch on serviceentries."
			    "networking.istio.io and pods)";
		else if (status == 404)
			hint = " (is the ServiceEntry CRD installed?)";
		if (status != 410)
			snprintf(msg, sizeof(msg), "%s: HTTP %ld%s%s%s", url_path, status, bm[0] ? ": " : "", bm, hint);
	} else if (rc != CURLE_OK && !kk->aborted) {
		const char *why = kk->errbuf[0] ? kk->errbuf : curl_easy_strerror(rc);
		if (kk->op == KINF_WATCH && kk->opened)
			log_info("kubernetes: %s: watch stream broke (%s); resuming from resourceVersion %s", kk->name,
			    why, kinf_rv(kk->inf));
		else
			snprintf(msg, sizeof(msg), "%s: %s%s", url_path, why,
			    rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ?
			    " (is the CA the API server's?)" : "");
	}
	bool clean = rc == CURLE_OK || kk->aborted;
	int st = (int)status;
	if (kk->op == KINF_WATCH && !kk->opened && st == 200)
		st = 0; /* 200 without headers seen: cannot happen, but is no stream */
	if (kk->op == KINF_LIST && rc != CURLE_OK)
		st = 0; /* a page cut short is no page */
	if (kk->op == KINF_WATCH && kk->opened && rc == CURLE_OK)
		log_debug("kubernetes: %s: watch ended by the server; resuming from resourceVersion %s", kk->name,
		    kinf_rv(kk->inf));
	if (status == 410)
		log_info("kubernetes: %s: %s: 410 Gone (resourceVersion too old): relisting", kk->name, url_path);
	kinf_ended(kk->inf, kk->op, st, clean, now, jitter(k));
	struct kinf_req req;
	kinf_next(kk->inf, &req);
	if (msg[0])
		fail_log(kk, msg, req.delay_ms);
	curl_multi_remove_handle(k->multi, kk->easy);
	curl_easy_cleanup(kk->easy);
	kk->easy = NULL;
	curl_slist_free_all(kk->hdrs);
	kk->hdrs = NULL;
	/* a LIST page too large: smaller pages (an object is at most 1.5 MiB) */
	if (kk->too_large && kk->op == KINF_LIST) {
		unsigned long long cur = kk->page_limit ? kk->page_limit : (unsigned long long)k->page_size;
		kk->page_limit = cur > 1 ? cur / 2 : 1;
		log_warnx("kubernetes: %s: a LIST page over %u MiB; asking for %llu objects a page", kk->name,
		    KINF_MAX_PAGE >> 20, kk->page_limit);
	}
	/* one large answer must not pin its buffer for the life of the daemon */
	if (kk->cap > KUBE_KEEP_BODY) {
		free(kk->body);
		kk->body = NULL;
		kk->cap = kk->len = kk->scanned = 0;
	}
	schedule_next(kk);
}

/* --- requests --- */

/* The bearer token: the fixed one, or the file's current contents. false
 * with a reason when the file cannot be read. */
static bool
read_token(struct kube *k, char *tok, size_t len, char *err, size_t errlen)
{
	tok[0] = '\0';
	if (k->conn.token_file == NULL) {
		if (k->conn.token)
			snprintf(tok, len, "%s", k->conn.token);
		return true;
	}
	FILE *f = fopen(k->conn.token_file, "re");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read the token file %s: %s", k->conn.token_file, strerror(errno));
		return false;
	}
	size_t n = fread(tok, 1, len - 1, f);
	fclose(f);
	tok[n] = '\0';
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
		tok[--n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "the token file %s is empty", k->conn.token_file);
		return false;
	}
	if (k->token == NULL || strcmp(k->token, tok) != 0) {
		if (k->token != NULL)
			log_info("kubernetes: the token in %s changed: using the new one", k->conn.token_file);
		free(k->token);
		k->token = strdup(tok);
	}
	return true;
}

static void
timer_fire(evutil_socket_t fd, short what, void *arg)
{
	start_request(arg);
}

static void
schedule_next(struct kkind *kk)
{
	struct kinf_req req;
	kinf_next(kk->inf, &req);
	if (req.delay_ms == 0) {
		start_request(kk);
		return;
	}
	struct timeval tv = monotime_tv(req.delay_ms);
	evtimer_add(kk->timer, &tv);
}

/* A request that could not be sent counts as failed: logged, and the
 * next one after the informer's backoff. */
static void
not_sent(struct kkind *kk, enum kinf_op op, const char *err)
{
	struct kinf_req req;
	kinf_ended(kk->inf, op, 0, false, monotime_now(), jitter(kk->k));
	kinf_next(kk->inf, &req);
	fail_log(kk, err, req.delay_ms);
	struct timeval tv = monotime_tv(req.delay_ms ? req.delay_ms : 1000);
	evtimer_add(kk->timer, &tv);
}

static void
start_request(struct kkind *kk)
{
	struct kube *k = kk->k;
	struct kinf_req req;
	kinf_next(kk->inf, &req);
	char *tok = malloc(KUBE_MAX_TOKEN);
	char err[400];
	if (tok == NULL || !read_token(k, tok, KUBE_MAX_TOKEN, err, sizeof(err))) {
		if (tok == NULL)
			snprintf(err, sizeof(err), "out of memory");
		free(tok);
		not_sent(kk, req.op, err);
		return;
	}
	CURL *e = curl_easy_init();
	char *url = NULL, *esc = NULL;
	const char *badopt = NULL; /* the first option curl refused */
	/* every option is checked: one refused (a URL too long for curl) must
	 * fail the request, not send another */
#define SETOPT(e, opt, val) do { \
	if (badopt == NULL && curl_easy_setopt(e, opt, val) != CURLE_OK) \
		badopt = #opt; \
} while (0)
	struct curl_slist *h = NULL;
	if (e == NULL)
		goto oom;
	if (req.op == KINF_LIST) {
		esc = req.cont ? curl_easy_escape(e, req.cont, 0) : NULL;
		if (asprintf(&url, "%s%s?limit=%llu%s%s%s", k->conn.server, kk->paths[kk->path],
		    kk->page_limit ? kk->page_limit : (unsigned long long)k->page_size, esc ? "&continue=" : "",
		    esc ? esc : "", kk->selector) < 0)
			url = NULL;
	} else {
		esc = curl_easy_escape(e, req.rv, 0);
		/* renewed every watch_timeout, spread by up to 10% so a
		 * thousand nodes do not renew together */
		unsigned long secs = (unsigned long)((double)k->watch_timeout_ms / 1000 * (1 + 0.1 * jitter(k)));
		if (asprintf(&url, "%s%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%lu%s",
		    k->conn.server, kk->paths[kk->path], esc ? esc : "", secs, kk->selector) < 0)
			url = NULL;
		SETOPT(e, CURLOPT_TIMEOUT_MS, (long)(secs * 1000 + k->request_timeout_ms));
	}
	if (url == NULL)
		goto oom;
	char *auth = NULL;
	if (tok[0] && asprintf(&auth, "Authorization: Bearer %s", tok) < 0)
		goto oom;
	h = curl_slist_append(h, "Accept: application/json");
	if (auth) {
		struct curl_slist *h2 = curl_slist_append(h, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
		if (h2 == NULL)
			goto oom;
		h = h2;
	}
	if (h == NULL)
		goto oom;
	explicit_bzero(tok, strlen(tok));
	SETOPT(e, CURLOPT_URL, url);
	SETOPT(e, CURLOPT_HTTPHEADER, h);
	SETOPT(e, CURLOPT_PRIVATE, kk);
	SETOPT(e, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(e, CURLOPT_WRITEDATA, kk);
	SETOPT(e, CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(e, CURLOPT_HEADERDATA, kk);
	SETOPT(e, CURLOPT_ERRORBUFFER, kk->errbuf);
	SETOPT(e, CURLOPT_NOSIGNAL, 1L);
	SETOPT(e, CURLOPT_USERAGENT, "sedns/" SEDNS_VERSION);
	/* the bearer token never goes out in clear */
	SETOPT(e, CURLOPT_PROTOCOLS_STR, "https");
	SETOPT(e, CURLOPT_ACCEPT_ENCODING, "");
	SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, (long)k->request_timeout_ms);
	if (req.op == KINF_LIST)
		SETOPT(e, CURLOPT_TIMEOUT_MS, (long)k->request_timeout_ms);
	/* a peer gone without a word under an idle watch */
	SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(e, CURLOPT_TCP_KEEPIDLE, 30L);
	SETOPT(e, CURLOPT_TCP_KEEPINTVL, 10L);
	SETOPT(e, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (k->conn.ca_data) {
		struct curl_blob b = { k->conn.ca_data, k->conn.ca_len, CURL_BLOB_NOCOPY };
		SETOPT(e, CURLOPT_CAINFO_BLOB, &b);
	} else if (k->conn.ca_file) {
		SETOPT(e, CURLOPT_CAINFO, k->conn.ca_file);
	}
	if (k->conn.cert_data) {
		struct curl_blob c = { k->conn.cert_data, k->conn.cert_len, CURL_BLOB_NOCOPY };
		struct curl_blob y = { k->conn.key_data, k->conn.key_len, CURL_BLOB_NOCOPY };
		SETOPT(e, CURLOPT_SSLCERT_BLOB, &c);
		SETOPT(e, CURLOPT_SSLKEY_BLOB, &y);
	} else if (k->conn.cert_file) {
		SETOPT(e, CURLOPT_SSLCERT, k->conn.cert_file);
		SETOPT(e, CURLOPT_SSLKEY, k->conn.key_file);
	}
#undef SETOPT
	if (badopt != NULL) {
		snprintf(err, sizeof(err), "%s %s%s: curl refused %s (%zu-byte URL)", op_name(req.op), k->conn.server,
		    kk->paths[kk->path], badopt, strlen(url));
		free(url);
		curl_free(esc);
		explicit_bzero(tok, KUBE_MAX_TOKEN);
		free(tok);
		curl_slist_free_all(h);
		curl_easy_cleanup(e);
		not_sent(kk, req.op, err);
		return;
	}
	kk->easy = e;
	kk->hdrs = h;
	kk->op = req.op;
	kk->status = 0;
	kk->opened = kk->aborted = kk->too_large = false;
	kk->len = kk->scanned = 0;
	kk->errbuf[0] = '\0';
	kk->requests++;
	log_debug("kubernetes: %s %s", op_name(req.op), url);
	free(url);
	curl_free(esc);
	free(tok);
	if (curl_multi_add_handle(k->multi, e) != CURLM_OK) {
		log_error("kubernetes: %s: cannot start a request", kk->name);
		kk->easy = NULL;
		kk->hdrs = NULL;
		curl_easy_cleanup(e);
		curl_slist_free_all(h);
		struct timeval tv = monotime_tv(BACKOFF_MAX_MS);
		evtimer_add(kk->timer, &tv);
	}
	return;
oom:
	log_error("kubernetes: %s: out of memory starting a request", kk->name);
	free(url);
	curl_free(esc);
	free(tok);
	curl_slist_free_all(h);
	if (e)
		curl_easy_cleanup(e);
	struct timeval tv = monotime_tv(BACKOFF_MAX_MS);
	evtimer_add(kk->timer, &tv);
}

/* --- life cycle --- */

static bool curl_ready;

struct kube *
kube_new(struct event_base *base, const struct config *cfg, uint64_t debounce_ms, void (*changed)(void *arg),
    void *arg, char *err, size_t errlen)
{
	const char *node = cfg->kube_node_name[0] ? cfg->kube_node_name : getenv("NODE_NAME");
	if (cfg->kube_pods && (node == NULL || node[0] == '\0')) {
		snprintf(err, errlen, "kubernetes.pods: no node name (set kubernetes.node_name, or NODE_NAME from the "
		    "downward API: fieldRef spec.nodeName)");
		return NULL;
	}
	if (!cfg->kube_serviceentries && !cfg->kube_pods) {
		snprintf(err, errlen, "kubernetes: neither serviceentries nor pods is watched");
		return NULL;
	}
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
			snprintf(err, errlen, "curl_global_init failed");
			return NULL;
		}
		curl_ready = true;
	}
	struct kube *k = calloc(1, sizeof(*k));
	if (k == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	bool ok = cfg->kube_in_cluster ? kubeconfig_in_cluster(cfg->kube_sa_dir, &k->conn, err, errlen) :
	    kubeconfig_load(cfg->kube_kubeconfig, &k->conn, err, errlen);
	if (!ok) {
		free(k);
		return NULL;
	}
	k->base = base;
	k->request_timeout_ms = cfg->kube_request_timeout_ms;
	k->watch_timeout_ms = cfg->kube_watch_timeout_ms;
	k->page_size = cfg->kube_page_size;
	k->debounce_ms = debounce_ms;
	k->changed = changed;
	k->arg = arg;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16) ^ (uint64_t)(monotime_now() * 1e6);
	k->rand[0] = (unsigned short)seed;
	k->rand[1] = (unsigned short)(seed >> 16);
	k->rand[2] = (unsigned short)(seed >> 32);
	k->multi = curl_multi_init();
	k->curl_timer = evtimer_new(base, curl_timer_cb, k);
	k->debounce = evtimer_new(base, debounce_cb, k);
	if (k->multi == NULL || k->curl_timer == NULL || k->debounce == NULL)
		goto oom;
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	for (int i = 0; i < KUBE_NKINDS; i++) {
		struct kkind *kk = &k->kinds[i];
		kk->k = k;
		kk->kind = (enum kube_kind)i;
		if (i == KUBE_SERVICEENTRIES) {
			kk->name = "serviceentries";
			kk->on = cfg->kube_serviceentries;
			kk->paths = se_paths;
			kk->npaths = 2;
			kk->inf = kinf_new(kubeobj_serviceentry_payload, BACKOFF_BASE_MS, BACKOFF_MAX_MS, 0);
		} else {
			kk->name = "pods";
			kk->on = cfg->kube_pods;
			kk->paths = pod_paths;
			kk->npaths = 1;
			kk->inf = kinf_new(kubeobj_pod_payload, BACKOFF_BASE_MS, BACKOFF_MAX_MS, 0);
			if (kk->on) {
				char *esc = curl_easy_escape(NULL, node, 0);
				if (esc == NULL)
					goto oom;
				snprintf(kk->selector, sizeof(kk->selector), "&fieldSelector=spec.nodeName%%3D%.256s", esc);
				curl_free(esc);
			}
		}
		kk->timer = evtimer_new(base, timer_fire, kk);
		if (kk->inf == NULL || kk->timer == NULL)
			goto oom;
	}
	log_info("kubernetes: watching%s%s from %s (%s)%s%s", cfg->kube_serviceentries ? " serviceentries" : "",
	    cfg->kube_pods ? " pods" : "", k->conn.server, k->conn.source, cfg->kube_pods ? " node=" : "",
	    cfg->kube_pods ? node : "");
	for (int i = 0; i < KUBE_NKINDS; i++)
		if (k->kinds[i].on)
			start_request(&k->kinds[i]);
	return k;
oom:
	snprintf(err, errlen, "out of memory");
	kube_free(k);
	return NULL;
}

void
kube_free(struct kube *k)
{
	if (k == NULL)
		return;
	for (int i = 0; i < KUBE_NKINDS; i++) {
		struct kkind *kk = &k->kinds[i];
		if (kk->easy) {
			curl_multi_remove_handle(k->multi, kk->easy);
			curl_easy_cleanup(kk->easy);
		}
		curl_slist_free_all(kk->hdrs);
		if (kk->timer)
			event_free(kk->timer);
		kinf_free(kk->inf);
		free(kk->body);
	}
	if (k->multi)
		curl_multi_cleanup(k->multi);
	if (k->curl_timer)
		event_free(k->curl_timer);
	if (k->debounce)
		event_free(k->debounce);
	kube_conn_free(&k->conn);
	free(k->token);
	free(k);
}

bool
kube_synced(const struct kube *k)
{
	for (int i = 0; i < KUBE_NKINDS; i++) {
		struct kinf_stats st;
		kinf_stats(k->kinds[i].inf, &st);
		if (k->kinds[i].on && !st.synced)
			return false;
	}
	return true;
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
}

bool
kube_wait_synced(struct kube *k, uint64_t timeout_ms)
{
	double deadline = monotime_now() + (double)timeout_ms / 1000;
	struct event *wake = evtimer_new(k->base, wake_cb, NULL);
	if (wake == NULL)
		return kube_synced(k);
	struct timeval tv = monotime_tv(timeout_ms);
	evtimer_add(wake, &tv);
	k->quiet = true;
	while (!kube_synced(k) && monotime_now() < deadline)
		event_base_loop(k->base, EVLOOP_ONCE);
	k->quiet = false;
	event_free(wake);
	return kube_synced(k);
}

void
kube_why_not_synced(const struct kube *k, char *buf, size_t len)
{
	size_t l = 0;
	buf[0] = '\0';
	for (int i = 0; i < KUBE_NKINDS && l < len; i++) {
		const struct kkind *kk = &k->kinds[i];
		struct kinf_stats st;
		kinf_stats(kk->inf, &st);
		if (!kk->on || st.synced)
			continue;
		l += (size_t)snprintf(buf + l, len - l, "%skubernetes: first LIST of %s not done%s%s", l ? "; " : "",
		    kk->name, kk->last_error[0] ? ": " : "", kk->last_error);
	}
}

void
kube_snapshot_free(struct kube_snapshot *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->ndocs; i++) {
		free(s->docs[i].name);
		free(s->docs[i].text);
	}
	free(s->docs);
	kinf_docs_free(s->pods, s->npods);
	free(s);
}

struct kube_snapshot *
kube_snapshot(const struct kube *k)
{
	struct kube_snapshot *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->synced = kube_synced(k);
	s->pods_on = k->kinds[KUBE_PODS].on;
	struct kinf_doc *d = NULL;
	size_t n = 0;
	if (k->kinds[KUBE_SERVICEENTRIES].on && !kinf_snapshot(k->kinds[KUBE_SERVICEENTRIES].inf, &d, &n))
		goto oom;
	s->docs = calloc(n ? n : 1, sizeof(*s->docs));
	if (s->docs == NULL) {
		kinf_docs_free(d, n);
		goto oom;
	}
	for (size_t i = 0; i < n; i++) {
		/* the name diagnostics give: where the object came from */
		char *name;
		if (asprintf(&name, "kubernetes:%s", d[i].key) < 0) {
			/* elements before i are s's now; the rest, then the
			 * array once (kinf_docs_free would free d + i) */
			for (size_t j = i; j < n; j++) {
				free(d[j].key);
				free(d[j].payload);
			}
			free(d);
			goto oom;
		}
		free(d[i].key);
		s->docs[i].name = name;
		s->docs[i].text = d[i].payload;
		s->docs[i].len = strlen(d[i].payload);
		s->ndocs++;
	}
	free(d);
	if (s->pods_on && !kinf_snapshot(k->kinds[KUBE_PODS].inf, &s->pods, &s->npods))
		goto oom;
	return s;
oom:
	kube_snapshot_free(s);
	return NULL;
}

size_t
kube_snapshot_pods(const struct kube_snapshot *s, struct workloads *w)
{
	size_t n = 0;
	for (size_t i = 0; i < s->npods; i++) {
		char ns[128];
		struct netaddr ips[KUBEOBJ_MAX_POD_IPS];
		size_t nips = kubeobj_pod_parse(s->pods[i].payload, ns, sizeof(ns), ips);
		for (size_t j = 0; j < nips; j++)
			workloads_add(w, &ips[j], ns);
		n += nips > 0;
	}
	return n;
}

void
kube_stats(const struct kube *k, struct kube_kind_stats st[KUBE_NKINDS])
{
	double now = monotime_now();
	for (int i = 0; i < KUBE_NKINDS; i++) {
		const struct kkind *kk = &k->kinds[i];
		st[i].on = kk->on;
		st[i].kind = kk->name;
		st[i].requests = kk->requests;
		kinf_stats(kk->inf, &st[i].inf);
		st[i].last_sync_age = st[i].inf.synced ? now - st[i].inf.last_sync : -1;
	}
}
