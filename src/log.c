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

static void
vlog(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	char buf[2048];
	if (lvl > cur_level)
		return;
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if (errnum)
		fprintf(stderr, "%s %s: %s\n", names[lvl], buf, strerror(errnum));
	else
		fprintf(stderr, "%s %s\n", names[lvl], buf);
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
