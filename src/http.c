/*
 * http — monitoring endpoints on evhttp. See http.h for the routes.
 * The listening socket is made here (not by evhttp) so that bind errors
 * carry errno and the exact address.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"

#define HTTP_MAX_HEADERS 8192
#define HTTP_MAX_BODY    1024
#define HTTP_TIMEOUT_SEC 10
#define HTTP_WHY_LEN     256

struct http {
	struct evhttp *evh;
	struct http_handlers h;
	uint16_t port;                  /* bound port */
	struct metrics_snapshot snap;   /* reused per scrape */
	char *text;                     /* render buffer, reused */
	size_t textcap;
};

static int listen_socket(const struct netaddr *, uint16_t, bool, uint16_t *, char *, size_t);
static void route(struct evhttp_request *, void *);
static void reply(struct evhttp_request *, int, const char *, const char *, struct evbuffer *);
static void reply_text(struct evhttp_request *, int, const char *, const char *);
static void reply_json_error(struct evhttp_request *, int, const char *, const char *);
static void serve_metrics(struct http *, struct evhttp_request *);
static void serve_readyz(struct http *, struct evhttp_request *);
static void serve_healthz(struct http *, struct evhttp_request *);
static void serve_hosts(struct http *, struct evhttp_request *);
static void serve_resolve(struct http *, struct evhttp_request *);

void
http_json_string(struct evbuffer *out, const char *s)
{
	const unsigned char *p;

	evbuffer_add(out, "\"", 1);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			evbuffer_add(out, "\\\"", 2);
			break;
		case '\\':
			evbuffer_add(out, "\\\\", 2);
			break;
		case '\n':
			evbuffer_add(out, "\\n", 2);
			break;
		case '\r':
			evbuffer_add(out, "\\r", 2);
			break;
		case '\t':
			evbuffer_add(out, "\\t", 2);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				evbuffer_add_printf(out, "\\u%04x", *p);
			else
				evbuffer_add(out, p, 1);
		}
	}
	evbuffer_add(out, "\"", 1);
}

static int
listen_socket(const struct netaddr *a, uint16_t port, bool reuseport, uint16_t *bound, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char abuf[NETADDR_STRLEN];
	int fd, on = 1, serr;

	netaddr_fmt(a, abuf, sizeof(abuf));
	sl = netaddr_to_sockaddr(a, port, &ss);
	fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1)
		goto fail;
	if (a->family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 64) == -1)
		goto fail;
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		goto fail;
	*bound = ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
fail:
	serr = errno;
	if (fd != -1)
		close(fd);
	snprintf(err, errlen, "cannot listen for HTTP on %s%s%s:%u: %s",
	    a->family == AF_INET6 ? "[" : "", abuf, a->family == AF_INET6 ? "]" : "",
	    (unsigned)port, strerror(serr));
	errno = serr;
	return -1;
}

int
http_bind_check(const char *addrport, bool reuseport, int *why, char *err, size_t errlen)
{
	struct netaddr a;
	uint16_t port, bound;
	int fd;

	*why = EINVAL;
	if (!netaddr_parse_hostport0(addrport, HTTP_DEFAULT_PORT, &a, &port)) {
		snprintf(err, errlen, "invalid HTTP listen address \"%s\" (want ADDR:PORT or [V6]:PORT)",
		    addrport);
		return -1;
	}
	if ((fd = listen_socket(&a, port, reuseport, &bound, err, errlen)) == -1) {
		*why = errno;
		return -1;
	}
	return fd;
}

struct http *
http_start(struct event_base *base, const char *addrport, const struct http_handlers *h,
    char *err, size_t errlen)
{
	struct http *s;
	struct netaddr a;
	uint16_t port;
	int fd;

	if (!netaddr_parse_hostport0(addrport, HTTP_DEFAULT_PORT, &a, &port)) {
		snprintf(err, errlen, "invalid HTTP listen address \"%s\" (want ADDR:PORT or [V6]:PORT)",
		    addrport);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "cannot start HTTP server: out of memory");
		return NULL;
	}
	s->h = *h;
	if ((s->evh = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "cannot start HTTP server: evhttp_new failed");
		free(s);
		return NULL;
	}
	evhttp_set_max_headers_size(s->evh, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(s->evh, HTTP_MAX_BODY);
	evhttp_set_timeout(s->evh, HTTP_TIMEOUT_SEC);
	/* every method reaches route(), which answers 405 (evhttp would say 501) */
	evhttp_set_allowed_methods(s->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(s->evh, route, s);
	if ((fd = listen_socket(&a, port, h->reuseport, &s->port, err, errlen)) == -1) {
		http_free(s);
		return NULL;
	}
	if (evhttp_accept_socket_with_handle(s->evh, fd) == NULL) {
		snprintf(err, errlen, "cannot start HTTP server: evhttp_accept_socket failed");
		close(fd);
		http_free(s);
		return NULL;
	}
	return s;
}

uint16_t
http_port(const struct http *s)
{
	return s->port;
}

void
http_free(struct http *s)
{
	if (s == NULL)
		return;
	if (s->evh != NULL)
		evhttp_free(s->evh);
	free(s->text);
	free(s);
}

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
    struct evbuffer *body)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);

	evhttp_add_header(hdr, "Content-Type", ctype);
	evhttp_add_header(hdr, "Cache-Control", "no-store");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* evhttp 2.1 would send the body with a HEAD reply */
		char clen[32];

		snprintf(clen, sizeof(clen), "%zu", evbuffer_get_length(body));
		evhttp_add_header(hdr, "Content-Length", clen);
		body = NULL;
	}
	evhttp_send_reply(req, code, reason, body);
}

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add(b, text, strlen(text));
	reply(req, code, reason, "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

static void
reply_json_error(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add_printf(b, "{\"error\": ");
	http_json_string(b, msg);
	evbuffer_add_printf(b, "}\n");
	reply(req, code, reason, "application/json", b);
	evbuffer_free(b);
}

static void
route(struct evhttp_request *req, void *arg)
{
	struct http *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed", "method not allowed\n");
		return;
	}
	if (path == NULL || *path == '\0')
		path = "/";
	if (strcmp(path, "/metrics") == 0)
		serve_metrics(s, req);
	else if (strcmp(path, "/healthz") == 0)
		serve_healthz(s, req);
	else if (strcmp(path, "/readyz") == 0)
		serve_readyz(s, req);
	else if (strcmp(path, "/debug/hosts") == 0 && s->h.debug_hosts != NULL)
		serve_hosts(s, req);
	else if (strcmp(path, "/debug/resolve") == 0 && s->h.debug_resolve != NULL)
		serve_resolve(s, req);
	else
		reply_text(req, HTTP_NOTFOUND, "Not Found", "not found\n");
}

static void
serve_metrics(struct http *s, struct evhttp_request *req)
{
	struct evbuffer *b;
	size_t len = 0;

	memset(&s->snap, 0, sizeof(s->snap));
	if (s->h.snapshot != NULL)
		s->h.snapshot(s->h.arg, &s->snap);
	if (!metrics_render(&s->snap, &s->text, &len, &s->textcap) ||
	    (b = evbuffer_new()) == NULL) {
		log_warnx("http: out of memory rendering metrics");
		reply_text(req, HTTP_INTERNAL, "Internal Server Error", "out of memory\n");
		return;
	}
	evbuffer_add(b, s->text, len);
	reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
	evbuffer_free(b);
}

static void
serve_healthz(struct http *s, struct evhttp_request *req)
{
	char why[HTTP_WHY_LEN] = "", msg[HTTP_WHY_LEN + 24];

	if (s->h.degraded == NULL || !s->h.degraded(s->h.arg, why, sizeof(why))) {
		reply_text(req, HTTP_OK, "OK", "ok\n");
		return;
	}
	why[sizeof(why) - 1] = '\0';
	snprintf(msg, sizeof(msg), "ok: degraded: %s\n", why);
	reply_text(req, HTTP_OK, "OK", msg);
}

static void
serve_readyz(struct http *s, struct evhttp_request *req)
{
	char why[HTTP_WHY_LEN] = "", msg[HTTP_WHY_LEN + 16];

	if (s->h.ready == NULL || s->h.ready(s->h.arg, why, sizeof(why))) {
		reply_text(req, HTTP_OK, "OK", "ready\n");
		return;
	}
	why[sizeof(why) - 1] = '\0';
	snprintf(msg, sizeof(msg), "not ready: %s\n", why[0] != '\0' ? why : "unknown");
	reply_text(req, 503, "Service Unavailable", msg);
}

static void
serve_hosts(struct http *s, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	s->h.debug_hosts(s->h.arg, b);
	evbuffer_add(b, "\n", 1);
	reply(req, HTTP_OK, "OK", "application/json", b);
	evbuffer_free(b);
}

static void
serve_resolve(struct http *s, struct evhttp_request *req)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq params;
	const char *host = NULL;
	struct evbuffer *b;
	char msg[320];

	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) == 0)
		host = evhttp_find_header(&params, "host");
	if (host == NULL || *host == '\0') {
		reply_json_error(req, HTTP_BADREQUEST, "Bad Request",
		    "missing query parameter host");
		goto out;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		goto out;
	}
	if (s->h.debug_resolve(s->h.arg, host, b)) {
		evbuffer_add(b, "\n", 1);
		reply(req, HTTP_OK, "OK", "application/json", b);
	} else {
		snprintf(msg, sizeof(msg), "unknown host %.256s", host);
		reply_json_error(req, HTTP_NOTFOUND, "Not Found", msg);
	}
	evbuffer_free(b);
out:
	evhttp_clear_headers(&params);
}
