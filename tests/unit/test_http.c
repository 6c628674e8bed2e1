/* Unit tests for http.c: a real evhttp server on 127.0.0.1 (port 0), driven
 * with event_base_loop(EVLOOP_NONBLOCK) on the test thread while a plain
 * blocking socket client runs in a second thread. */
#include <criterion/criterion.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "http.h"

struct fake {
	bool ready;
	int snapshots;
	const char *last_host;
	char hostbuf[256];
};

static void
fake_snapshot(void *arg, struct metrics_snapshot *m)
{
	struct fake *f = arg;

	f->snapshots++;
	m->q_a = 42;
	m->version = "test-1";
	histo_observe(&m->local_latency, 0.0003);
}

static bool
fake_ready(void *arg, char *why, size_t len)
{
	struct fake *f = arg;

	if (!f->ready)
		snprintf(why, len, "config not loaded yet");
	return f->ready;
}

static void
fake_hosts(void *arg, struct evbuffer *out)
{
	evbuffer_add_printf(out, "[{\"host\": \"a.example.com\"}]");
}

static bool
fake_resolve(void *arg, const char *host, struct evbuffer *out)
{
	struct fake *f = arg;

	snprintf(f->hostbuf, sizeof(f->hostbuf), "%s", host);
	f->last_host = f->hostbuf;
	if (strcmp(host, "a.example.com") != 0) {
		evbuffer_add_printf(out, "garbage that must not be sent");
		return false;
	}
	evbuffer_add_printf(out, "{\"host\": ");
	http_json_string(out, host);
	evbuffer_add_printf(out, ", \"vip\": \"240.240.0.1\"}");
	return true;
}

static struct event_base *base;
static struct http *srv;
static struct fake fake;

static void
setup(void)
{
	struct http_handlers h = {
		.arg = &fake, .snapshot = fake_snapshot, .ready = fake_ready,
		.debug_hosts = fake_hosts, .debug_resolve = fake_resolve,
	};
	char err[256];

	memset(&fake, 0, sizeof(fake));
	fake.ready = true;
	base = event_base_new();
	cr_assert_not_null(base);
	srv = http_start(base, "127.0.0.1:0", &h, err, sizeof(err));
	cr_assert_not_null(srv, "%s", err);
	cr_assert_neq(http_port(srv), 0);
}

static void
teardown(void)
{
	http_free(srv);
	srv = NULL;
	event_base_free(base);
	base = NULL;
}

struct client {
	uint16_t port;
	const char *request;
	char resp[65536];
	size_t len;
	atomic_bool done;
};

static void *
client_run(void *arg)
{
	struct client *c = arg;
	struct sockaddr_in sin;
	struct timeval tv = { 5, 0 };
	ssize_t n;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd == -1)
		goto out;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(c->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    write(fd, c->request, strlen(c->request)) != (ssize_t)strlen(c->request)) {
		close(fd);
		goto out;
	}
	while (c->len < sizeof(c->resp) - 1 &&
	    (n = read(fd, c->resp + c->len, sizeof(c->resp) - 1 - c->len)) > 0)
		c->len += (size_t)n;
	c->resp[c->len] = '\0';
	close(fd);
out:
	atomic_store(&c->done, true);
	return NULL;
}

/* sends raw, turns the loop until the client has the whole response */
static struct client *
request(const char *raw)
{
	struct client *c = calloc(1, sizeof(*c));
	pthread_t t;
	int i;

	cr_assert_not_null(c);
	c->port = http_port(srv);
	c->request = raw;
	cr_assert_eq(pthread_create(&t, NULL, client_run, c), 0);
	for (i = 0; i < 5000 && !atomic_load(&c->done); i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	pthread_join(t, NULL);
	cr_assert(atomic_load(&c->done));
	return c;
}

static int
status(const struct client *c)
{
	int code = 0;

	if (sscanf(c->resp, "HTTP/1.%*d %d", &code) != 1)
		return -1;
	return code;
}

static const char *
body(const struct client *c)
{
	const char *p = strstr(c->resp, "\r\n\r\n");

	return p != NULL ? p + 4 : "";
}

/* case-insensitive header lookup: true when "Name: value" is present */
static bool
has_header(const struct client *c, const char *line)
{
	const char *end = strstr(c->resp, "\r\n\r\n");
	const char *p = strcasestr(c->resp, line);

	return p != NULL && end != NULL && p < end && p[-1] == '\n' &&
	    (p[strlen(line)] == '\r');
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 30);

Test(http, metrics_route)
{
	struct client *c = request("GET /metrics HTTP/1.0\r\n\r\n");

	cr_assert_eq(status(c), 200, "%s", c->resp);
	cr_assert(has_header(c, "Content-Type: text/plain; version=0.0.4; charset=utf-8"), "%s",
	    c->resp);
	cr_assert_not_null(strstr(body(c), "# TYPE sedns_queries_total counter\n"));
	cr_assert_not_null(strstr(body(c), "\nsedns_queries_total{type=\"A\"} 42\n"));
	cr_assert_not_null(strstr(body(c), "\nsedns_build_info{version=\"test-1\"} 1\n"));
	cr_assert_not_null(strstr(body(c),
	    "\nsedns_local_answer_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
	cr_assert_eq(fake.snapshots, 1);
	free(c);
	/* a second scrape reuses the buffer and sees a fresh snapshot */
	c = request("GET /metrics HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 200);
	cr_assert_not_null(strstr(body(c), "\nsedns_queries_total{type=\"A\"} 42\n"));
	cr_assert_not_null(strstr(body(c), "sedns_local_answer_duration_seconds_count 1\n"));
	cr_assert_eq(fake.snapshots, 2);
	free(c);
}

Test(http, healthz)
{
	struct client *c = request("GET /healthz HTTP/1.0\r\n\r\n");

	cr_assert_eq(status(c), 200);
	cr_assert_str_eq(body(c), "ok\n");
	free(c);
}

Test(http, readyz_ready_and_not)
{
	struct client *c = request("GET /readyz HTTP/1.0\r\n\r\n");

	cr_assert_eq(status(c), 200);
	cr_assert_str_eq(body(c), "ready\n");
	free(c);
	fake.ready = false;
	c = request("GET /readyz HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 503, "%s", c->resp);
	cr_assert_str_eq(body(c), "not ready: config not loaded yet\n");
	free(c);
}

Test(http, debug_hosts)
{
	struct client *c = request("GET /debug/hosts HTTP/1.0\r\n\r\n");

	cr_assert_eq(status(c), 200);
	cr_assert(has_header(c, "Content-Type: application/json"), "%s", c->resp);
	cr_assert_str_eq(body(c), "[{\"host\": \"a.example.com\"}]\n");
	free(c);
}

Test(http, debug_resolve_found_missing_and_bad)
{
	struct client *c = request("GET /debug/resolve?host=a.example.com HTTP/1.0\r\n\r\n");

	cr_assert_eq(status(c), 200);
	cr_assert(has_header(c, "Content-Type: application/json"));
	cr_assert_str_eq(body(c), "{\"host\": \"a.example.com\", \"vip\": \"240.240.0.1\"}\n");
	free(c);

	/* percent-decoded, unknown → 404 with a JSON error, escaped */
	c = request("GET /debug/resolve?host=b%22x.example.com HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 404, "%s", c->resp);
	cr_assert_str_eq(fake.last_host, "b\"x.example.com");
	cr_assert(has_header(c, "Content-Type: application/json"));
	cr_assert_str_eq(body(c), "{\"error\": \"unknown host b\\\"x.example.com\"}\n");
	free(c);

	c = request("GET /debug/resolve HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 400, "%s", c->resp);
	cr_assert_not_null(strstr(body(c), "\"error\""));
	free(c);
	c = request("GET /debug/resolve?host= HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 400);
	free(c);
	c = request("GET /debug/resolve?other=1 HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 400);
	free(c);
}

Test(http, unknown_path_404)
{
	struct client *c = request("GET /nope HTTP/1.0\r\n\r\n");

	cr_assert_eq(status(c), 404);
	free(c);
	c = request("GET /metrics/extra HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 404);
	free(c);
	c = request("GET / HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 404);
	free(c);
}

Test(http, non_get_405)
{
	struct client *c = request("POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");

	cr_assert_eq(status(c), 405, "%s", c->resp);
	cr_assert(has_header(c, "Allow: GET, HEAD"), "%s", c->resp);
	free(c);
	c = request("DELETE /healthz HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 405);
	free(c);
}

Test(http, head_has_no_body)
{
	struct client *c = request("HEAD /healthz HTTP/1.0\r\n\r\n");

	cr_assert_eq(status(c), 200);
	cr_assert_str_eq(body(c), "");
	cr_assert(has_header(c, "Content-Length: 3"), "%s", c->resp);
	free(c);
}

Test(http, http11_request_with_host)
{
	struct client *c = request("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

	cr_assert_eq(status(c), 200);
	cr_assert_str_eq(body(c), "ok\n");
	free(c);
}

Test(http, oversized_body_rejected)
{
	static char raw[4096];
	struct client *c;

	snprintf(raw, sizeof(raw), "POST /metrics HTTP/1.0\r\nContent-Length: 3000\r\n\r\n");
	memset(raw + strlen(raw), 'x', 3000);
	raw[sizeof(raw) - 1] = '\0';
	c = request(raw);
	cr_assert_eq(status(c), 413, "%s", c->resp);
	free(c);
}

Test(http, oversized_headers_rejected)
{
	static char raw[16384];
	struct client *c;
	size_t n;

	n = (size_t)snprintf(raw, sizeof(raw), "GET /healthz HTTP/1.0\r\nX-Big: ");
	memset(raw + n, 'a', 10000);
	memcpy(raw + n + 10000, "\r\n\r\n", 5);
	c = request(raw);
	cr_assert_neq(status(c), 200, "%s", c->resp);
	free(c);
}

Test(http, bind_conflict_message)
{
	struct http_handlers h = { .arg = NULL };
	char addr[64], err[256], want[128];
	struct http *s2;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)http_port(srv));
	s2 = http_start(base, addr, &h, err, sizeof(err));
	cr_assert_null(s2);
	snprintf(want, sizeof(want), "cannot listen for HTTP on %s: Address already in use", addr);
	cr_assert_str_eq(err, want);
}

Test(http, invalid_address)
{
	struct http_handlers h = { .arg = NULL };
	char err[256];

	cr_assert_null(http_start(base, "localhost:9153", &h, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "invalid HTTP listen address \"localhost:9153\""), "%s", err);
	cr_assert_null(http_start(base, "127.0.0.1:99999", &h, err, sizeof(err)));
	cr_assert_null(http_start(base, ":0", &h, err, sizeof(err)));
}

Test(http, ipv6_loopback)
{
	struct http_handlers h = { .arg = NULL };
	char err[256];
	struct http *s6;

	s6 = http_start(base, "[::1]:0", &h, err, sizeof(err));
	if (s6 == NULL) {
		cr_log_warn("no IPv6 loopback here: %s", err);
		return;
	}
	cr_assert_neq(http_port(s6), 0);
	http_free(s6);
}

Test(http, null_handlers_defaults)
{
	struct http_handlers h = { .arg = NULL };
	char err[256];
	struct client *c;

	http_free(srv);
	srv = http_start(base, "127.0.0.1:0", &h, err, sizeof(err));
	cr_assert_not_null(srv, "%s", err);
	c = request("GET /readyz HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 200);
	free(c);
	c = request("GET /debug/hosts HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 404);
	free(c);
	c = request("GET /metrics HTTP/1.0\r\n\r\n");
	cr_assert_eq(status(c), 200);
	cr_assert_not_null(strstr(body(c), "\nsedns_queries_total{type=\"A\"} 0\n"));
	free(c);
}

Test(http, json_string_escapes)
{
	struct evbuffer *b = evbuffer_new();
	char out[128];
	size_t n;

	cr_assert_not_null(b);
	http_json_string(b, "a\"b\\c\nd\x01");
	n = evbuffer_get_length(b);
	cr_assert_lt(n, sizeof(out));
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	cr_assert_str_eq(out, "\"a\\\"b\\\\c\\nd\\u0001\"");
	evbuffer_free(b);
}
