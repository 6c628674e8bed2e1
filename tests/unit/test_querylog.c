/* Unit tests for querylog.c: names for types, classes and rcodes, the
 * line's fields, and the rate cap's windows and suppressed counts. */
#include <criterion/criterion.h>

#include <string.h>

#include "querylog.h"

Test(querylog, names)
{
	char b[32];
	cr_assert_str_eq(qlog_type_name(1, b, sizeof(b)), "A");
	cr_assert_str_eq(qlog_type_name(28, b, sizeof(b)), "AAAA");
	cr_assert_str_eq(qlog_type_name(65, b, sizeof(b)), "HTTPS");
	cr_assert_str_eq(qlog_type_name(65534, b, sizeof(b)), "TYPE65534");
	cr_assert_str_eq(qlog_class_name(1, b, sizeof(b)), "IN");
	cr_assert_str_eq(qlog_class_name(3, b, sizeof(b)), "CH");
	cr_assert_str_eq(qlog_class_name(7, b, sizeof(b)), "CLASS7");
	cr_assert_str_eq(qlog_rcode_name(3, b, sizeof(b)), "NXDOMAIN");
	cr_assert_str_eq(qlog_rcode_name(16, b, sizeof(b)), "BADVERS");
	cr_assert_str_eq(qlog_rcode_name(12, b, sizeof(b)), "RCODE12");
}

Test(querylog, fields_text)
{
	struct qlog_entry e = { .client = "10.0.0.5", .name = "nothing.example", .have_question = true, .qtype = 1,
		.qclass = 1, .action = "forward", .zone = "", .upstream = "127.0.0.1:53", .rcode = 3, .answers = 0,
		.ttl_left = -1, .latency_us = 812 };
	struct log_field f[QLOG_MAX_FIELDS];
	char scratch[QLOG_SCRATCH], out[1024];
	size_t nf = qlog_fields(&e, f, scratch);
	struct timespec t = { 0, 0 };
	log_render(out, sizeof(out), LOG_STYLE_PLAIN, LOG_FMT_TEXT, &t, LOG_LVL_INFO, "query", false, f, nf);
	cr_assert_str_eq(out, "info query client=10.0.0.5 proto=udp name=nothing.example type=A class=IN "
	    "action=forward zone=. upstream=127.0.0.1:53 rcode=NXDOMAIN answers=0 latency_us=812\n");
	struct qlog_entry d = { .client = "::1", .tcp = true, .action = "drop", .rcode = -1, .ttl_left = -1 };
	nf = qlog_fields(&d, f, scratch);
	log_render(out, sizeof(out), LOG_STYLE_PLAIN, LOG_FMT_TEXT, &t, LOG_LVL_INFO, "query", false, f, nf);
	cr_assert_str_eq(out, "info query client=::1 proto=tcp name=- type=- class=- action=drop rcode=- answers=0 "
	    "latency_us=0\n");
	struct qlog_entry c = { .client = "10.0.0.5", .name = "", .have_question = true, .qtype = 65534, .qclass = 1,
		.action = "cache", .rcode = 0, .answers = 2, .ttl_left = 29, .note = "stale", .latency_us = 3 };
	nf = qlog_fields(&c, f, scratch);
	log_render(out, sizeof(out), LOG_STYLE_PLAIN, LOG_FMT_JSON, &t, LOG_LVL_INFO, "query", false, f, nf);
	cr_assert_str_eq(out, "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"info\",\"msg\":\"query\","
	    "\"client\":\"10.0.0.5\",\"proto\":\"udp\",\"name\":\".\",\"type\":\"TYPE65534\",\"class\":\"IN\","
	    "\"action\":\"cache\",\"ttl_left\":29,\"rcode\":\"NOERROR\",\"answers\":2,\"note\":\"stale\","
	    "\"latency_us\":3}\n");
}

Test(querylog, limit)
{
	struct qlog_limit l;
	double span;
	qlog_limit_init(&l, 3);
	for (int i = 0; i < 3; i++)
		cr_assert(qlog_limit_take(&l, 100.0 + i * 0.1));
	cr_assert_not(qlog_limit_take(&l, 100.5));
	cr_assert_not(qlog_limit_take(&l, 100.9));
	cr_assert_eq(qlog_limit_due(&l, 100.95, &span), 0, "not while the window is on");
	cr_assert_eq(qlog_limit_due(&l, 101.2, &span), 2);
	cr_assert_float_eq(span, 1.0, 1e-9);
	cr_assert_eq(qlog_limit_due(&l, 101.3, &span), 0, "reported once");
	cr_assert(qlog_limit_take(&l, 101.3), "a new window");
	qlog_limit_init(&l, 0);
	for (int i = 0; i < 10000; i++)
		cr_assert(qlog_limit_take(&l, 5.0));
	cr_assert_eq(qlog_limit_due(&l, 9.0, &span), 0);
}
