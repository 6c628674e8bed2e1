/* Unit tests for log.c's pure parts: line rendering in every style and
 * format (exact lines), JSON escaping and cutting, JOURNAL_STREAM parsing. */
#include <criterion/criterion.h>

#include <string.h>

#include "log.h"

static const struct timespec T = { 1714564800, 123456789 }; /* 2024-05-01T12:00:00.123Z */

static const char *
render(enum log_style st, enum log_format fmt, enum log_level lvl, const char *msg, bool raw,
    const struct log_field *f, size_t nf)
{
	static char out[4096];
	size_t n = log_render(out, sizeof(out), st, fmt, &T, lvl, msg, raw, f, nf);
	cr_assert_eq(n, strlen(out));
	return out;
}

Test(log, text_styles)
{
	cr_assert_str_eq(render(LOG_STYLE_PLAIN, LOG_FMT_TEXT, LOG_LVL_INFO, "hello", false, NULL, 0), "info hello\n");
	cr_assert_str_eq(render(LOG_STYLE_STAMPED, LOG_FMT_TEXT, LOG_LVL_WARN, "x y", false, NULL, 0),
	    "2024-05-01T12:00:00.123Z warn x y\n");
	cr_assert_str_eq(render(LOG_STYLE_JOURNAL, LOG_FMT_TEXT, LOG_LVL_ERROR, "bad", false, NULL, 0),
	    "<3>error bad\n");
	cr_assert_str_eq(render(LOG_STYLE_JOURNAL, LOG_FMT_TEXT, LOG_LVL_DEBUG, "d", false, NULL, 0), "<7>debug d\n");
	cr_assert_str_eq(render(LOG_STYLE_JOURNAL, LOG_FMT_TEXT, LOG_LVL_INFO, "i", false, NULL, 0), "<6>info i\n");
	cr_assert_str_eq(render(LOG_STYLE_JOURNAL, LOG_FMT_TEXT, LOG_LVL_ERROR, "error: f:1:2: m", true, NULL, 0),
	    "<3>error: f:1:2: m\n");
}

Test(log, text_fields_and_escaping)
{
	struct log_field f[] = { { "name", "a\nb", 0 }, { "n", NULL, 42 } };
	cr_assert_str_eq(render(LOG_STYLE_PLAIN, LOG_FMT_TEXT, LOG_LVL_INFO, "query", false, f, 2),
	    "info query name=a\\nb n=42\n");
	cr_assert_str_eq(render(LOG_STYLE_PLAIN, LOG_FMT_TEXT, LOG_LVL_INFO, "x\x1b[31m", false, NULL, 0),
	    "info x\\x1b[31m\n");
}

Test(log, json)
{
	struct log_field f[] = { { "name", "q\"\\.x", 0 }, { "latency_us", NULL, 17 } };
	cr_assert_str_eq(render(LOG_STYLE_STAMPED, LOG_FMT_JSON, LOG_LVL_INFO, "query", false, f, 2),
	    "{\"ts\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"query\",\"name\":\"q\\\"\\\\.x\","
	    "\"latency_us\":17}\n");
	/* the journal strips the priority: MESSAGE is the object */
	cr_assert_str_eq(render(LOG_STYLE_JOURNAL, LOG_FMT_JSON, LOG_LVL_WARN, "a\nb\x01", false, NULL, 0),
	    "<4>{\"ts\":\"2024-05-01T12:00:00.123Z\",\"level\":\"warn\",\"msg\":\"a\\u000ab\\u0001\"}\n");
	/* valid UTF-8 passes, invalid bytes become U+FFFD */
	cr_assert_str_eq(render(LOG_STYLE_PLAIN, LOG_FMT_JSON, LOG_LVL_INFO, "\xc3\xa9\xff\xc3", false, NULL, 0),
	    "{\"ts\":\"2024-05-01T12:00:00.123Z\",\"level\":\"info\",\"msg\":\"\xc3\xa9\\ufffd\\ufffd\"}\n");
}

Test(log, json_cut_stays_valid)
{
	char big[3000];
	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char out[256];
	struct log_field f[] = { { "k", "v", 0 } };
	size_t n = log_render(out, sizeof(out), LOG_STYLE_PLAIN, LOG_FMT_JSON, &T, LOG_LVL_INFO, big, false, f, 1);
	cr_assert_leq(n, sizeof(out) - 1);
	cr_assert_eq(out[n - 1], '\n');
	cr_assert_eq(out[n - 2], '}');
	cr_assert_eq(out[n - 3], '"');
	/* the cut never splits an escape: the closing quote is not escaped */
	size_t bs = 0;
	for (size_t i = n - 4; out[i] == '\\'; i--)
		bs++;
	cr_assert_eq(bs % 2, 0);
}

Test(log, journal_stream)
{
	cr_assert(log_journal_stream_matches("8:12345", 8, 12345));
	cr_assert_not(log_journal_stream_matches("8:12345", 8, 12346));
	cr_assert_not(log_journal_stream_matches("", 8, 12345));
	cr_assert_not(log_journal_stream_matches(NULL, 8, 12345));
	cr_assert_not(log_journal_stream_matches("8:", 8, 0));
	cr_assert_not(log_journal_stream_matches("8:1x", 8, 1));
	cr_assert_not(log_journal_stream_matches("x:1", 0, 1));
}
