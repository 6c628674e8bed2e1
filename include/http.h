/*
 * http — the small monitoring HTTP server (libevent evhttp) on the daemon's
 * event loop:
 *
 *   GET /metrics               200 text/plain; version=0.0.4 (metrics_render)
 *   GET /healthz               200 "ok\n" (answering proves the loop turns),
 *                              or 200 "ok: degraded: WHY\n" (still alive:
 *                              restarting would not help)
 *   GET /readyz                200 "ready\n", or 503 "not ready: WHY\n"
 *   GET /debug/hosts           200 application/json (handler's JSON array)
 *   GET /debug/resolve?host=N  200 JSON, 404 {"error": ...}, 400 without host
 *   anything else              404; methods other than GET/HEAD: 405
 *
 * Bounded: 8 KiB of headers, 1 KiB of body, 10 s read/write timeout per
 * connection. libevent 2.1 has no connection cap (evhttp_set_max_connections
 * is 2.2 only); the timeouts bound how long idle clients hold descriptors.
 *
 * The handlers run on the loop thread; the struct http_handlers is copied.
 * Everything the server allocates is freed by http_free.
 */
#ifndef SEDNS_HTTP_H
#define SEDNS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct event_base;
struct evbuffer;
struct http;

#define HTTP_DEFAULT_PORT 9153

struct http_handlers {
	void *arg;
	/* fills a (zeroed) snapshot for /metrics; NULL renders zeros */
	void (*snapshot)(void *arg, struct metrics_snapshot *m);
	/* /readyz: true when ready; otherwise writes why (NUL-terminated);
	 * NULL means always ready */
	bool (*ready)(void *arg, char *why, size_t len);
	/* /healthz detail: writes why the daemon is degraded and returns true,
	 * or returns false when all is well; NULL means never degraded */
	bool (*degraded)(void *arg, char *why, size_t len);
	/* /debug/hosts: appends a JSON array of every host; NULL → 404 */
	void (*debug_hosts)(void *arg, struct evbuffer *out);
	/* /debug/resolve?host=NAME: appends a JSON object and returns true, or
	 * returns false (output discarded) for 404 {"error": ...}; NULL → 404 */
	bool (*debug_resolve)(void *arg, const char *host, struct evbuffer *out);
	/* listener option: SO_REUSEPORT, so that a second sedns (a rollout
	 * with maxSurge) can serve the same address beside this one */
	bool reuseport;
};

/* Listens on addrport ("127.0.0.1:9153", "[::1]:9153"; port defaults to
 * HTTP_DEFAULT_PORT; port 0 picks a free one, see http_port). Returns NULL
 * with a message in err, e.g. "cannot listen for HTTP on 127.0.0.1:9153:
 * Address already in use". */
struct http *http_start(struct event_base *base, const char *addrport,
    const struct http_handlers *h, char *err, size_t errlen);
/* Binds what http_start would listen on (serve -n): the descriptor, or -1
 * with the errno in *why and the message http_start would give in err. */
int http_bind_check(const char *addrport, bool reuseport, int *why, char *err, size_t errlen);
/* The port actually bound (useful after asking for port 0). */
uint16_t http_port(const struct http *h);
/* Closes the listener and every connection; NULL is a no-op. */
void http_free(struct http *h);

/* Appends s as a JSON string literal (quotes included), escaping quotes,
 * backslashes and control characters; for the debug handlers. */
void http_json_string(struct evbuffer *out, const char *s);

#endif
