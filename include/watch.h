/*
 * watch — inotify on the ServiceEntry / workload directories and on
 * resolv.conf, debounced: a burst of changes fires the callback once,
 * `debounce` after the last event.
 *
 * Directories are watched for files created, written, moved in or out and
 * deleted (the sync script and ConfigMaps swap files by rename); a named
 * file is watched through its directory, so a replaced resolv.conf is still
 * seen. Names starting with '.' (temp files) are ignored.
 *
 * Ownership: struct watch owns its inotify descriptor and path copies.
 */
#ifndef SEDNS_WATCH_H
#define SEDNS_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct watch;

struct watch *watch_new(struct event_base *base, uint64_t debounce_ms, void (*cb)(void *arg), void *arg);
void watch_free(struct watch *w);
/* Adds a file or directory; false (logged) when it cannot be watched. */
bool watch_add(struct watch *w, const char *path);
/* Forgets every path (before re-adding after a config reload). */
void watch_clear(struct watch *w);

#endif
