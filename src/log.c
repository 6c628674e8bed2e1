/* log — see include/log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum log_level cur_level = LOG_LVL_INFO;
static enum log_style cur_style = LOG_STYLE_PLAIN;
static enum log_format cur_format = LOG_FMT_TEXT;
static const char *const names[] = { "error", "warn", "info", "debug" };
/* syslog priorities journald reads from a "<N>" line prefix */
static const int prios[] = { 3, 4, 6, 7 };

#define LINE_MAX_BYTES 16384

void log_set_level(enum log_level lvl) { cur_level = lvl; }
enum log_level log_get_level(void) { return cur_level; }
void log_set_style(enum log_style style) { cur_style = style; }
enum log_style log_get_style(void) { return cur_style; }
void log_set_format(enum log_format fmt) { cur_format = fmt; }
enum log_format log_get_format(void) { return cur_format; }
const char *log_level_name(enum log_level lvl) { return names[lvl]; }

bool
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return true;
	}
	return false;
}

bool
log_journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino)
{
	if (env == NULL || *env == '\0')
		return false;
	char *end;
	errno = 0;
	unsigned long long d = strtoull(env, &end, 10);
	if (errno || end == env || *end != ':')
		return false;
	const char *p = end + 1;
	unsigned long long i = strtoull(p, &end, 10);
	if (errno || end == p || *end != '\0')
		return false;
	return d == dev && i == ino;
}

enum log_style
log_style_detect(void)
{
	/* systemd sets JOURNAL_STREAM for a unit whose stderr is the journal;
	 * a child that inherits the variable with stderr redirected elsewhere
	 * (a shell in the unit, a test) must not lose its timestamps, hence
	 * the device:inode comparison sd_journal_stream_fd(3) recommends */
	struct stat st;
	const char *env = getenv("JOURNAL_STREAM");
	if (env != NULL && fstat(STDERR_FILENO, &st) == 0 &&
	    log_journal_stream_matches(env, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino))
		return LOG_STYLE_JOURNAL;
	return LOG_STYLE_STAMPED;
}

void
log_escape(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (cap == 0)
		return;
	for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < cap; p++) {
		if (*p == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (*p < 0x20 || *p == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
}

/* --- rendering (pure) ---------------------------------------------------- */

/* Output with a content limit below the real end: what closes a line (the
 * JSON object's "}", the newline, a NUL) always fits. */
struct wr {
	char *p;
	size_t len, lim;
	bool cut;
};

static void
w_mem(struct wr *w, const char *s, size_t n)
{
	if (w->cut || w->len + n > w->lim) {
		w->cut = true;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

static void
w_str(struct wr *w, const char *s)
{
	w_mem(w, s, strlen(s));
}

static void
w_num(struct wr *w, unsigned long long v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%llu", v);
	w_mem(w, b, (size_t)n);
}

/* Text: control characters escaped as log_escape does. */
static void
w_text(struct wr *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (const unsigned char *c = (const unsigned char *)s; *c && !w->cut; c++) {
		if (*c == '\n') {
			w_mem(w, "\\n", 2);
		} else if (*c < 0x20 || *c == 0x7f) {
			char e[4] = { '\\', 'x', hex[*c >> 4], hex[*c & 15] };
			w_mem(w, e, 4);
		} else {
			w_mem(w, (const char *)c, 1);
		}
	}
}

/* Length of a valid UTF-8 sequence at s (1..4), 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	unsigned cp = c & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A JSON string: quotes, backslash and controls escaped, invalid UTF-8 as
 * U+FFFD (a strict parser rejects the raw bytes). Cut at a character
 * boundary; the closing quote always fits (one byte of lim is kept). */
static void
w_json(struct wr *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	if (w->cut)
		return;
	w->lim--; /* room for the closing quote */
	w_mem(w, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c && !w->cut;) {
		size_t n = utf8_len(c);
		if (n == 0) {
			w_mem(w, "\\ufffd", 6);
			c++;
		} else if (*c == '"' || *c == '\\') {
			char e[2] = { '\\', (char)*c };
			w_mem(w, e, 2);
			c++;
		} else if (*c < 0x20 || *c == 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15] };
			w_mem(w, e, 6);
			c++;
		} else {
			w_mem(w, (const char *)c, n);
			c += n;
		}
	}
	w->lim++;
	bool cut = w->cut;
	w->cut = false;
	w_mem(w, "\"", 1);
	w->cut = cut;
}

static void
w_stamp(struct wr *w, const struct timespec *now)
{
	struct tm tm;
	char b[48];
	time_t t = now->tv_sec;
	gmtime_r(&t, &tm);
	size_t n = strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(b + n, sizeof(b) - n, ".%03ldZ", now->tv_nsec / 1000000);
	w_str(w, b);
}

size_t
log_render(char *out, size_t cap, enum log_style style, enum log_format fmt, const struct timespec *now,
    enum log_level lvl, const char *msg, bool raw, const struct log_field *f, size_t nf)
{
	if (cap < 8)
		return 0;
	/* kept for what closes the line: "}", "\n" and a NUL */
	struct wr w = { out, 0, cap - 3, false };
	if (style == LOG_STYLE_JOURNAL) {
		char b[8];
		snprintf(b, sizeof(b), "<%d>", prios[lvl]);
		w_str(&w, b);
	}
	if (fmt == LOG_FMT_JSON) {
		w_str(&w, "{\"ts\":\"");
		w_stamp(&w, now);
		w_str(&w, "\",\"level\":\"");
		w_str(&w, names[lvl]);
		w_str(&w, "\",\"msg\":");
		w_json(&w, msg);
		for (size_t i = 0; i < nf && !w.cut; i++) {
			size_t mark = w.len;
			w_str(&w, ",\"");
			w_str(&w, f[i].key);
			w_str(&w, "\":");
			if (f[i].str != NULL)
				w_json(&w, f[i].str);
			else
				w_num(&w, f[i].num);
			if (w.cut) /* a member cut short: drop it whole */
				w.len = mark;
		}
		out[w.len++] = '}';
	} else {
		if (style == LOG_STYLE_STAMPED) {
			w_stamp(&w, now);
			w_str(&w, " ");
		}
		if (!raw) {
			w_str(&w, names[lvl]);
			w_str(&w, " ");
		}
		w_text(&w, msg);
		for (size_t i = 0; i < nf && !w.cut; i++) {
			w_str(&w, " ");
			w_str(&w, f[i].key);
			w_str(&w, "=");
			if (f[i].str != NULL)
				w_text(&w, f[i].str);
			else
				w_num(&w, f[i].num);
		}
	}
	out[w.len++] = '\n';
	out[w.len] = '\0';
	return w.len;
}

/* --- output -------------------------------------------------------------- */

static void
emit(enum log_level lvl, const char *msg, bool raw, const struct log_field *f, size_t nf)
{
	char line[LINE_MAX_BYTES];
	struct timespec now = { 0, 0 };
	if (cur_style == LOG_STYLE_STAMPED || cur_format == LOG_FMT_JSON)
		clock_gettime(CLOCK_REALTIME, &now);
	size_t n = log_render(line, sizeof(line), cur_style, cur_format, &now, lvl, msg, raw, f, nf);
	/* one write per line: lines of several threads never interleave */
	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

void
log_fields(enum log_level lvl, const char *msg, const struct log_field *f, size_t nf)
{
	if (lvl > cur_level)
		return;
	int e = errno;
	emit(lvl, msg, false, f, nf);
	errno = e;
}

static void
vlog(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	char buf[4096];
	if (lvl > cur_level)
		return;
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if (errnum) {
		size_t l = strlen(buf);
		snprintf(buf + l, sizeof(buf) - l, ": %s", strerror(errnum));
	}
	/* one line per event, whatever a ServiceEntry or a packet put in a
	 * name: a tenant cannot forge log lines (the renderer escapes) */
	emit(lvl, buf, false, NULL, 0);
}

#define LOGFN(fn, lvl, witherr)                                   \
	void fn(const char *fmt, ...)                             \
	{                                                         \
		int e = (witherr) ? errno : 0;                    \
		va_list ap;                                       \
		va_start(ap, fmt);                                \
		vlog(lvl, e, fmt, ap);                            \
		va_end(ap);                                       \
		errno = e;                                        \
	}

LOGFN(log_error, LOG_LVL_ERROR, 0)
LOGFN(log_warn, LOG_LVL_WARN, 1)
LOGFN(log_warnx, LOG_LVL_WARN, 0)
LOGFN(log_info, LOG_LVL_INFO, 0)
LOGFN(log_debug, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/* --- the diagnostics stream ---------------------------------------------- */

/* The FILE's own lock serializes calls here, so one buffer serves. */
static char sbuf[4096];
static size_t slen;

static void
stream_line(void)
{
	sbuf[slen] = '\0';
	/* "error: ...", "warning: ...", "note: ..." become lines of that
	 * level without the word (one prefix style for every daemon line:
	 * "TIME LEVEL message"); a bare "FILE:LINE:COL: ..." from the config
	 * parser is an error */
	static const struct { const char *word; enum log_level lvl; } words[] = {
		{ "error: ", LOG_LVL_ERROR }, { "warning: ", LOG_LVL_WARN }, { "warn: ", LOG_LVL_WARN },
		{ "note: ", LOG_LVL_INFO }, { "info: ", LOG_LVL_INFO },
	};
	enum log_level lvl = LOG_LVL_ERROR;
	const char *msg = sbuf;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t wl = strlen(words[i].word);
		if (strncmp(sbuf, words[i].word, wl) == 0) {
			lvl = words[i].lvl;
			msg = sbuf + wl;
			break;
		}
	}
	if (lvl <= cur_level && slen > 0)
		emit(lvl, msg, false, NULL, 0);
	slen = 0;
}

static ssize_t
stream_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	for (size_t i = 0; i < size; i++) {
		if (buf[i] == '\n') {
			stream_line();
			continue;
		}
		if (slen == sizeof(sbuf) - 1)
			stream_line();
		sbuf[slen++] = buf[i];
	}
	return (ssize_t)size;
}

FILE *
log_stream(void)
{
	static FILE *f;
	if (f == NULL) {
		cookie_io_functions_t io = { .write = stream_write };
		f = fopencookie(NULL, "w", io);
		if (f != NULL)
			setvbuf(f, NULL, _IOLBF, 0);
	}
	return f;
}
