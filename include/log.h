/*
 * log — the one logging API of sedns (after OpenBSD's log.c).
 *
 * Lines go to stderr as "LEVEL msg key=value ..." (journald adds time and
 * unit). log_warn appends strerror(errno); log_warnx does not. fatal/fatalx
 * are for start-up failures and broken invariants only: a bad packet or a bad
 * file must never reach them. No allocation; safe to call from any module.
 */
#ifndef SEDNS_LOG_H
#define SEDNS_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
/* Copies in to out with control characters escaped ("\n", "\x1b"), cut
 * to fit cap (4x the input always fits). Every log line goes through it. */
void log_escape(const char *in, char *out, size_t cap);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns false for anything else. */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level lvl);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
