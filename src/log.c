/* log — see include/log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level cur_level = LOG_LVL_INFO;
static const char *const names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level lvl) { cur_level = lvl; }
enum log_level log_get_level(void) { return cur_level; }
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

static void
vlog(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	char buf[2048], safe[4 * 2048 + 1];
	if (lvl > cur_level)
		return;
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	/* one line per event, whatever a ServiceEntry or a packet put in a
	 * name: a tenant cannot forge log lines */
	log_escape(buf, safe, sizeof(safe));
	if (errnum)
		fprintf(stderr, "%s %s: %s\n", names[lvl], safe, strerror(errnum));
	else
		fprintf(stderr, "%s %s\n", names[lvl], safe);
}

#define LOGFN(fn, lvl, witherr)                                   \
	void fn(const char *fmt, ...)                             \
	{                                                         \
		int e = (witherr) ? errno : 0;                    \
		va_list ap;                                       \
		va_start(ap, fmt);                                \
		vlog(lvl, e, fmt, ap);                            \
		va_end(ap);                                       \
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
