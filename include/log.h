/*
 * log — the one logging API of sedns (after OpenBSD's log.c).
 *
 * Every line goes to stderr with one write(2) (lines from several threads
 * never interleave). Its form depends on two settings:
 *
 *  style  PLAIN    "LEVEL msg key=value ..."        (commands: check, vips...)
 *         STAMPED  "2024-05-01T12:00:00.123Z LEVEL msg ..."  (the daemon on a
 *                  terminal or a file: RFC 3339, UTC, milliseconds)
 *         JOURNAL  "<6>LEVEL msg ..."  (the daemon when stderr is the journal:
 *                  journald reads the syslog priority <3> error, <4> warn,
 *                  <6> info, <7> debug, and stamps the time itself)
 *  format TEXT     as above
 *         JSON     one object per line, {"ts":...,"level":...,"msg":...} plus
 *                  the fields of log_fields (Loki, Elastic); JOURNAL style
 *                  still puts the priority before the object, which journald
 *                  strips, so MESSAGE is pure JSON.
 *
 * log_warn appends strerror(errno); log_warnx does not. fatal/fatalx are for
 * start-up failures and broken invariants only: a bad packet or a bad file
 * must never reach them. No allocation on any path (query logging runs per
 * packet); buffers are on the stack. Settings are plain globals set by the
 * event loop at start and reload; reading a stale one only changes a line's
 * form.
 */
#ifndef SEDNS_LOG_H
#define SEDNS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_style { LOG_STYLE_PLAIN = 0, LOG_STYLE_STAMPED, LOG_STYLE_JOURNAL };
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON };

void log_set_level(enum log_level lvl);
void log_set_style(enum log_style style);
void log_set_format(enum log_format fmt);
enum log_style log_get_style(void);
enum log_format log_get_format(void);
/* The daemon's style: JOURNAL when $JOURNAL_STREAM names the file stderr
 * is (systemd's StandardError=journal), else STAMPED. */
enum log_style log_style_detect(void);
/* Pure: does a JOURNAL_STREAM value ("DEV:INODE", decimal) name dev/ino? */
bool log_journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino);

/* Copies in to out with control characters escaped ("\n", "\x1b"), cut
 * to fit cap (4x the input always fits). Every text line goes through it. */
void log_escape(const char *in, char *out, size_t cap);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns false for anything else. */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level lvl);

/* One structured field: a string (str != NULL) or a number. key is a
 * plain identifier; str is escaped as the format needs. */
struct log_field {
	const char *key;
	const char *str;
	unsigned long long num;
};

/*
 * Pure: renders one line (with its '\n') into out and returns its length
 * (cut to fit cap, always a whole line). now is the stamp (STAMPED style and
 * JSON); raw: msg is printed as is, without the level word (a diagnostic
 * that already says "error: "); fields follow msg as key=value (TEXT) or as
 * members (JSON).
 */
size_t log_render(char *out, size_t cap, enum log_style style, enum log_format fmt, const struct timespec *now,
    enum log_level lvl, const char *msg, bool raw, const struct log_field *f, size_t nf);

/* A line of fields at lvl, e.g. the query log: "query client=... type=A". */
void log_fields(enum log_level lvl, const char *msg, const struct log_field *f, size_t nf);

/* A stream whose lines are logged like the others (stamp, priority, JSON),
 * at warn for a line starting "warn", info for "note"/"info", else error
 * (a line without one of those words gets "error " before it): for the
 * modules that print diagnostics to a FILE * (config, loader). Line-buffered;
 * a line longer than 4 KiB is split. NULL if it cannot be made. */
FILE *log_stream(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
