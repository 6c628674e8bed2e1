/* Unit tests for metrics.c: histogram buckets, exact exposition lines,
 * escaping, and a strict line-format validator over the whole output. */
#include <criterion/criterion.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *
render(const struct metrics_snapshot *m)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;

	cr_assert(metrics_render(m, &buf, &len, &cap));
	cr_assert_not_null(buf);
	cr_assert_eq(strlen(buf), len);
	cr_assert_lt(len, cap);
	return buf;
}

/* true when text holds exactly this line */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
		p++;
	}
	return false;
}

static int
count_lines_starting(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = text;
	int c = 0;

	while (*p != '\0') {
		if (strncmp(p, prefix, n) == 0)
			c++;
		p = strchr(p, '\n');
		if (p == NULL)
			break;
		p++;
	}
	return c;
}

static void
full_snapshot(struct metrics_snapshot *m)
{
	memset(m, 0, sizeof(*m));
	m->q_a = 10; m->q_aaaa = 11; m->q_ptr = 12; m->q_other = 13;
	m->local = 1; m->forwarded = 2; m->nxdomain = 3; m->servfail = 4; m->refused = 5;
	m->formerr = 6; m->notimp = 7; m->dropped = 8; m->chaos = 9;
	histo_observe(&m->local_latency, 0.00003);
	histo_observe(&m->local_latency, 0.0003);
	histo_observe(&m->local_latency, 3.0);
	histo_observe(&m->upstream_latency, 0.02);
	snprintf(m->upstreams[0].addr, sizeof(m->upstreams[0].addr), "10.0.0.10:53");
	m->upstreams[0].requests = 100; m->upstreams[0].failures = 2;
	m->upstreams[0].timeouts = 1; m->upstreams[0].healthy = true;
	snprintf(m->upstreams[1].addr, sizeof(m->upstreams[1].addr), "[fd00::1]:5353");
	m->upstreams[1].requests = 7;
	m->nupstreams = 2;
	m->pending = 3; m->pending_full = 4; m->tcp_retries = 5; m->spoofed = 6;
	m->tcp_conns = 2; m->tcp_accepted = 20; m->tcp_cap_reached = 1;
	m->pool_size = 65534; m->vips_active = 40; m->vips_held = 2; m->vips_exhausted = 0;
	m->serviceentries = 30; m->serviceentries_rejected = 1; m->hosts = 42; m->files_kept = 1;
	m->reloads_ok = 5; m->reloads_failed = 1;
	m->rule_syncs_ok = 8; m->rule_syncs_failed = 2;
	m->rule_sync_seconds = 0.125; m->rule_render_seconds = 0.0025; m->rules_last_ok = true;
	m->rule_applies_full = 3; m->rule_applies_incremental = 4; m->rule_applies_adopted = 1;
	m->endpoint_names = 3; m->endpoint_resolutions = 50; m->endpoint_failures = 4;
	m->endpoint_changes = 6;
	m->version = "v1.2.3";
	m->start_time = 1700000000.5;
}

/* ---- strict validator for the text format ---- */

/* copies n bytes of src (truncated to fit) into dst, NUL-terminated */
static void
copyn(char *dst, size_t dstsize, const char *src, size_t n)
{
	if (n >= dstsize)
		n = dstsize - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *
skip_name(const char *p)
{
	if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
		return NULL;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
		p++;
	return p;
}

static bool
valid_value(const char *s, const char *end)
{
	char tmp[64], *e;
	size_t n = (size_t)(end - s);

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (strcmp(tmp, "+Inf") == 0 || strcmp(tmp, "-Inf") == 0 || strcmp(tmp, "NaN") == 0)
		return true;
	if (!(isdigit((unsigned char)tmp[0]) || tmp[0] == '-' || tmp[0] == '.'))
		return false;
	strtod(tmp, &e);
	return *e == '\0';
}

/* base family of a sample name given the current TYPE */
static bool
belongs(const char *sample, size_t slen, const char *fam, const char *type)
{
	size_t flen = strlen(fam);
	static const char *const hsuf[] = { "_bucket", "_sum", "_count" };
	size_t i;

	if (slen == flen && strncmp(sample, fam, flen) == 0)
		return strcmp(type, "histogram") != 0;
	if (strcmp(type, "histogram") != 0 || slen <= flen || strncmp(sample, fam, flen) != 0)
		return false;
	for (i = 0; i < 3; i++)
		if (slen - flen == strlen(hsuf[i]) && strncmp(sample + flen, hsuf[i], slen - flen) == 0)
			return true;
	return false;
}

/* returns NULL when valid, else a message naming the bad line */
static const char *
validate(const char *text, int *nsamples)
{
	static char msg[512];
	char fam[128] = "", type[32] = "";
	char seen[64][128];
	size_t nseen = 0, i;
	const char *line = text, *nl;

	*nsamples = 0;
	if (*text == '\0' || text[strlen(text) - 1] != '\n')
		return "output does not end in a newline";
	for (; *line != '\0'; line = nl + 1) {
		const char *p, *q;

		nl = strchr(line, '\n');
		memcpy(msg, "bad line: ", 10);
		copyn(msg + 10, sizeof(msg) - 10, line, (size_t)(nl - line));
		if (strncmp(line, "# HELP ", 7) == 0) {
			p = line + 7;
			if ((q = skip_name(p)) == NULL || *q != ' ' || q + 1 >= nl)
				return msg;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			p = line + 7;
			if ((q = skip_name(p)) == NULL || *q != ' ')
				return msg;
			copyn(fam, sizeof(fam), p, (size_t)(q - p));
			copyn(type, sizeof(type), q + 1, (size_t)(nl - q - 1));
			if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram"))
				return msg;
			for (i = 0; i < nseen; i++)
				if (strcmp(seen[i], fam) == 0)
					return "family TYPEd twice";
			if (nseen < 64)
				snprintf(seen[nseen++], sizeof(seen[0]), "%s", fam);
			continue;
		}
		if (*line == '#')
			return msg;
		if ((q = skip_name(line)) == NULL)
			return msg;
		if (!belongs(line, (size_t)(q - line), fam, type))
			return msg;
		if (strcmp(type, "counter") == 0 && (size_t)(q - line) > 6 &&
		    strncmp(q - 6, "_total", 6) != 0)
			return msg;
		p = q;
		if (*p == '{') {
			p++;
			for (;;) {
				if ((p = skip_name(p)) == NULL || *p++ != '=' || *p++ != '"')
					return msg;
				while (*p != '"') {
					if (*p == '\n' || *p == '\0')
						return msg;
					if (*p == '\\') {
						p++;
						if (*p != '\\' && *p != '"' && *p != 'n')
							return msg;
					}
					p++;
				}
				p++;
				if (*p == ',') {
					p++;
					continue;
				}
				if (*p++ != '}')
					return msg;
				break;
			}
		}
		if (*p++ != ' ')
			return msg;
		if (!valid_value(p, nl))
			return msg;
		(*nsamples)++;
	}
	return NULL;
}

/* ---- tests ---- */

Test(metrics, histo_observe_buckets_by_upper_bound)
{
	struct histo h;

	memset(&h, 0, sizeof(h));
	histo_observe(&h, 0.00003);	/* bucket 0 */
	histo_observe(&h, 0.00005);	/* exactly on a bound: le is inclusive */
	histo_observe(&h, 0.0003);	/* 0.0005 bucket, index 3 */
	histo_observe(&h, 2.5);		/* last bound */
	histo_observe(&h, 3.0);		/* +Inf */
	histo_observe(&h, -1.0);	/* clamped to 0 */
	cr_assert_eq(h.buckets[0], 3);
	cr_assert_eq(h.buckets[1], 0);
	cr_assert_eq(h.buckets[3], 1);
	cr_assert_eq(h.buckets[HISTO_NBUCKETS - 1], 1);
	cr_assert_eq(h.inf, 1);
	cr_assert_eq(h.count, 6);
	cr_assert_float_eq(h.sum, 0.00003 + 0.00005 + 0.0003 + 2.5 + 3.0, 1e-12);
}

Test(metrics, bounds_ascend)
{
	size_t i;

	for (i = 1; i < HISTO_NBUCKETS; i++)
		cr_assert_lt(histo_bounds[i - 1], histo_bounds[i]);
	cr_assert_float_eq(histo_bounds[0], 0.00005, 1e-15);
	cr_assert_float_eq(histo_bounds[HISTO_NBUCKETS - 1], 2.5, 1e-15);
}

Test(metrics, histogram_lines_cumulative)
{
	struct metrics_snapshot m;
	char *t;

	full_snapshot(&m);
	t = render(&m);
#define L(s) cr_assert(has_line(t, s), "missing line: %s\n%s", s, t)
	L("# TYPE sedns_local_answer_duration_seconds histogram");
	L("sedns_local_answer_duration_seconds_bucket{le=\"5e-05\"} 1");
	L("sedns_local_answer_duration_seconds_bucket{le=\"0.0001\"} 1");
	L("sedns_local_answer_duration_seconds_bucket{le=\"0.00025\"} 1");
	L("sedns_local_answer_duration_seconds_bucket{le=\"0.0005\"} 2");
	L("sedns_local_answer_duration_seconds_bucket{le=\"0.001\"} 2");
	L("sedns_local_answer_duration_seconds_bucket{le=\"0.0025\"} 2");
	L("sedns_local_answer_duration_seconds_bucket{le=\"0.1\"} 2");
	L("sedns_local_answer_duration_seconds_bucket{le=\"2.5\"} 2");
	L("sedns_local_answer_duration_seconds_bucket{le=\"+Inf\"} 3");
	L("sedns_local_answer_duration_seconds_count 3");
	L("sedns_local_answer_duration_seconds_sum 3.00033");
	L("sedns_upstream_duration_seconds_bucket{le=\"0.01\"} 0");
	L("sedns_upstream_duration_seconds_bucket{le=\"0.025\"} 1");
	L("sedns_upstream_duration_seconds_bucket{le=\"+Inf\"} 1");
	L("sedns_upstream_duration_seconds_count 1");
	L("sedns_upstream_duration_seconds_sum 0.02");
	cr_assert_eq(count_lines_starting(t, "sedns_local_answer_duration_seconds_bucket{"),
	    HISTO_NBUCKETS + 1);
	free(t);
}

Test(metrics, exact_sample_lines)
{
	struct metrics_snapshot m;
	char *t;

	full_snapshot(&m);
	t = render(&m);
	L("sedns_queries_total{type=\"A\"} 10");
	L("sedns_queries_total{type=\"AAAA\"} 11");
	L("sedns_queries_total{type=\"PTR\"} 12");
	L("sedns_queries_total{type=\"other\"} 13");
	L("sedns_responses_total{outcome=\"local\"} 1");
	L("sedns_responses_total{outcome=\"forwarded\"} 2");
	L("sedns_responses_total{outcome=\"nxdomain\"} 3");
	L("sedns_responses_total{outcome=\"servfail\"} 4");
	L("sedns_responses_total{outcome=\"refused\"} 5");
	L("sedns_responses_total{outcome=\"formerr\"} 6");
	L("sedns_responses_total{outcome=\"notimp\"} 7");
	L("sedns_responses_total{outcome=\"dropped\"} 8");
	L("sedns_responses_total{outcome=\"chaos\"} 9");
	L("sedns_upstream_requests_total{upstream=\"10.0.0.10:53\",zone=\".\"} 100");
	L("sedns_upstream_requests_total{upstream=\"[fd00::1]:5353\",zone=\".\"} 7");
	L("sedns_upstream_failures_total{upstream=\"10.0.0.10:53\",zone=\".\"} 2");
	L("sedns_upstream_timeouts_total{upstream=\"10.0.0.10:53\",zone=\".\"} 1");
	L("sedns_upstream_healthy{upstream=\"10.0.0.10:53\",zone=\".\"} 1");
	L("sedns_upstream_healthy{upstream=\"[fd00::1]:5353\",zone=\".\"} 0");
	L("sedns_forward_pending 3");
	L("sedns_forward_pending_full_total 4");
	L("sedns_forward_tcp_retries_total 5");
	L("sedns_forward_spoofed_replies_total 6");
	L("sedns_tcp_connections 2");
	L("sedns_tcp_accepted_total 20");
	L("sedns_tcp_connection_cap_reached_total 1");
	L("sedns_vip_pool_size 65534");
	L("sedns_vip_active 40");
	L("sedns_vip_held 2");
	L("sedns_vip_exhausted 0");
	L("sedns_serviceentries_loaded 30");
	L("sedns_serviceentries_rejected 1");
	L("sedns_hosts 42");
	L("sedns_files_kept_last_good 1");
	L("sedns_reloads_total{result=\"ok\"} 5");
	L("sedns_reloads_total{result=\"failed\"} 1");
	L("sedns_rule_syncs_total{result=\"ok\"} 8");
	L("sedns_rule_syncs_total{result=\"failed\"} 2");
	L("sedns_rule_applies_total{mode=\"full\"} 3");
	L("sedns_rule_applies_total{mode=\"incremental\"} 4");
	L("sedns_rule_applies_total{mode=\"adopted\"} 1");
	L("sedns_rule_sync_duration_seconds 0.125");
	L("sedns_rule_render_duration_seconds 0.0025");
	L("sedns_rules_last_sync_ok 1");
	L("sedns_endpoint_names 3");
	L("sedns_endpoint_resolutions_total 50");
	L("sedns_endpoint_resolution_failures_total 4");
	L("sedns_endpoint_changes_total 6");
	L("sedns_build_info{version=\"v1.2.3\"} 1");
	L("sedns_start_time_seconds 1700000000.5");
	free(t);
}

Test(metrics, every_family_has_help_and_type_once)
{
	static const char *const fams[] = {
		"queries_total counter", "responses_total counter",
		"local_answer_duration_seconds histogram", "upstream_duration_seconds histogram",
		"upstream_requests_total counter", "upstream_failures_total counter",
		"upstream_timeouts_total counter", "upstream_healthy gauge",
		"cache_hits_total counter", "cache_misses_total counter", "cache_entries gauge", "cache_evictions_total counter",
		"cache_prefetches_total counter", "cache_stale_answers_total counter", "cache_coalesced_total counter",
		"refused_total counter", "refused_prefixes gauge",
		"tcp_refused_total counter", "tcp_lifetime_ends_total counter", "tcp_replies_dropped_total counter",
		"forward_quota_hits_total counter",
		"forward_pending gauge", "forward_pending_full_total counter",
		"forward_tcp_retries_total counter", "forward_spoofed_replies_total counter",
		"tcp_connections gauge", "tcp_accepted_total counter",
		"tcp_connection_cap_reached_total counter",
		"vip_pool_size gauge", "vip_active gauge", "vip_held gauge", "vip_exhausted gauge",
		"vip_store_writable gauge", "state_lock_held gauge", "vip_missing_readonly gauge",
		"vip_store_write_failures_total counter", "vip_store_backups_total counter",
		"vip_store_backup_age_seconds gauge", "address_conflicts gauge",
		"serviceentries_loaded gauge", "serviceentries_rejected gauge", "hosts gauge",
		"files_kept_last_good gauge", "reloads_total counter", "rule_syncs_total counter",
		"rule_applies_total counter", "rule_sync_duration_seconds gauge", "rule_render_duration_seconds gauge",
		"rules_last_sync_ok gauge", "endpoint_names gauge",
		"endpoint_resolutions_total counter", "endpoint_resolution_failures_total counter",
		"endpoint_changes_total counter", "endpoint_negative_answers_total counter", "endpoint_resolutions_deferred_total counter", "build_info gauge", "start_time_seconds gauge",
	};
	struct metrics_snapshot m;
	char *t, line[160], help[160];
	size_t i, nf = sizeof(fams) / sizeof(fams[0]);

	full_snapshot(&m);
	t = render(&m);
	for (i = 0; i < nf; i++) {
		size_t nlen = strcspn(fams[i], " ");

		snprintf(line, sizeof(line), "# TYPE sedns_%s", fams[i]);
		cr_assert(has_line(t, line), "missing %s", line);
		strcpy(line, "# TYPE sedns_");
		copyn(line + 13, 100, fams[i], nlen);
		strcat(line, " ");
		cr_assert_eq(count_lines_starting(t, line), 1, "%s", line);
		strcpy(help, "# HELP sedns_");
		copyn(help + 13, 100, fams[i], nlen);
		strcat(help, " ");
		cr_assert_eq(count_lines_starting(t, help), 1, "%s", help);
	}
	cr_assert_eq(count_lines_starting(t, "# TYPE "), (int)nf, "a family is not in the list");
	cr_assert_eq(count_lines_starting(t, "# HELP "), (int)nf);
	free(t);
}

Test(metrics, strict_parser_accepts_output)
{
	struct metrics_snapshot m;
	const char *err;
	char *t;
	int n;

	full_snapshot(&m);
	t = render(&m);
	err = validate(t, &n);
	cr_assert_null(err, "%s", err);
	/* 4+11 query lines, 7 cache, 2x15 histogram lines, 4x2 upstream, 2+2+2 results, 3 apply modes, 3+1 refused, rest single */
	cr_assert_eq(n, 4 + 11 + 2 * (HISTO_NBUCKETS + 3) + 4 * 2 + 2 + 2 + 2 + 3 + 27 + 7 + 5 + 5 + 3 + 1, "n=%d", n);
	free(t);
}

Test(metrics, validator_rejects_bad_text)
{
	int n;

	cr_assert_not_null(validate("# TYPE sedns_x gauge\nsedns_x{a=\"b} 1\n", &n));
	cr_assert_not_null(validate("# TYPE sedns_x gauge\nsedns_x 1.2.3\n", &n));
	cr_assert_not_null(validate("# TYPE sedns_x gauge\nsedns_y 1\n", &n));
	cr_assert_not_null(validate("# TYPE sedns_x counter\nsedns_x 1\n", &n));
	cr_assert_not_null(validate("# TYPE sedns_x gauge\nsedns_x{a=\"\\q\"} 1\n", &n));
	cr_assert_null(validate("# TYPE sedns_x gauge\nsedns_x{a=\"\\\\\\\"\\n\"} 1\n", &n));
}

Test(metrics, label_values_escaped)
{
	struct metrics_snapshot m;
	const char *err;
	char *t;
	int n;

	full_snapshot(&m);
	m.version = "a\\b\"c\nd";
	snprintf(m.upstreams[0].addr, sizeof(m.upstreams[0].addr), "x\"y");
	t = render(&m);
	L("sedns_build_info{version=\"a\\\\b\\\"c\\nd\"} 1");
	L("sedns_upstream_requests_total{upstream=\"x\\\"y\",zone=\".\"} 100");
	err = validate(t, &n);
	cr_assert_null(err, "%s", err);
	free(t);
}

Test(metrics, empty_snapshot_and_special_floats)
{
	struct metrics_snapshot m;
	const char *err;
	char *t;
	int n;

	memset(&m, 0, sizeof(m));
	m.rule_sync_seconds = NAN;
	m.rule_render_seconds = INFINITY;
	t = render(&m);
	L("sedns_build_info{version=\"unknown\"} 1");
	L("sedns_rule_sync_duration_seconds NaN");
	L("sedns_rule_render_duration_seconds +Inf");
	L("sedns_local_answer_duration_seconds_bucket{le=\"+Inf\"} 0");
	L("sedns_local_answer_duration_seconds_sum 0");
	cr_assert_eq(count_lines_starting(t, "sedns_upstream_healthy"), 0);
	err = validate(t, &n);
	cr_assert_null(err, "%s", err);
	free(t);
}

Test(metrics, appends_to_existing_buffer_and_grows)
{
	struct metrics_snapshot m;
	char *buf;
	size_t len, cap = 8, i;

	full_snapshot(&m);
	for (i = 0; i < METRICS_MAX_UPSTREAMS; i++)
		snprintf(m.upstreams[i].addr, sizeof(m.upstreams[i].addr), "10.0.%zu.1:53", i);
	m.nupstreams = METRICS_MAX_UPSTREAMS + 10;	/* clamped, not overread */
	buf = malloc(cap);
	cr_assert_not_null(buf);
	memcpy(buf, "HEAD\n", 6);
	len = 5;
	cr_assert(metrics_render(&m, &buf, &len, &cap));
	cr_assert_eq(strncmp(buf, "HEAD\n# HELP ", 12), 0);
	cr_assert_eq(strlen(buf), len);
	cr_assert(has_line(buf, "sedns_upstream_healthy{upstream=\"10.0.63.1:53\",zone=\".\"} 0"));
	cr_assert_eq(count_lines_starting(buf, "sedns_upstream_requests_total{"),
	    METRICS_MAX_UPSTREAMS);
	free(buf);
}
