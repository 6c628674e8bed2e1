/* watch — see include/watch.h. */
#include "watch.h"

#include <errno.h>
#include <event2/event.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "monotime.h"

#define WATCH_MAX 64

struct wd {
	int wd;
	char *dir;
	char *file;                 /* NULL: the whole directory */
};

struct watch {
	struct event_base *base;
	int fd;
	struct event *ev, *timer;
	uint64_t debounce_ms;
	void (*cb)(void *);
	void *arg;
	struct wd wds[WATCH_MAX];
	size_t n;
};

static void
fire(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	w->cb(w->arg);
}

static bool
relevant(const struct watch *w, const struct inotify_event *ie)
{
	for (size_t i = 0; i < w->n; i++) {
		const struct wd *d = &w->wds[i];
		if (d->wd != ie->wd)
			continue;
		/* the watched directory itself went away or was replaced: the
		 * reload re-arms the watches on whatever is there now */
		if (ie->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
			return true;
		if (ie->len == 0 || ie->name[0] == '.')
			continue;
		if (d->file == NULL || strcmp(d->file, ie->name) == 0)
			return true;
	}
	return false;
}

static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r <= 0)
			break;
		for (char *p = buf; p < buf + r;) {
			struct inotify_event *ie = (struct inotify_event *)(void *)p;
			if (ie->mask & IN_Q_OVERFLOW)
				hit = true;
			else if (relevant(w, ie))
				hit = true;
			p += sizeof(*ie) + ie->len;
		}
	}
	if (hit) {
		/* restart the quiet period: one reload per burst */
		struct timeval tv = monotime_tv(w->debounce_ms);
		evtimer_del(w->timer);
		evtimer_add(w->timer, &tv);
	}
}

struct watch *
watch_new(struct event_base *base, uint64_t debounce_ms, void (*cb)(void *), void *arg)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->base = base;
	w->debounce_ms = debounce_ms;
	w->cb = cb;
	w->arg = arg;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		log_warn("inotify");
		free(w);
		return NULL;
	}
	w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, read_cb, w);
	w->timer = evtimer_new(base, fire, w);
	event_add(w->ev, NULL);
	return w;
}

void
watch_clear(struct watch *w)
{
	for (size_t i = 0; i < w->n; i++) {
		inotify_rm_watch(w->fd, w->wds[i].wd);
		free(w->wds[i].dir);
		free(w->wds[i].file);
	}
	w->n = 0;
}

void
watch_free(struct watch *w)
{
	if (w == NULL)
		return;
	watch_clear(w);
	event_free(w->ev);
	event_free(w->timer);
	close(w->fd);
	free(w);
}

bool
watch_add(struct watch *w, const char *path)
{
	if (w->n >= WATCH_MAX)
		return false;
	struct stat st;
	char dir[PATH_MAX], file[PATH_MAX];
	struct wd *d = &w->wds[w->n];
	memset(d, 0, sizeof(*d));
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(dir, sizeof(dir), "%s", path);
	} else {
		/* a file, or a directory that does not exist yet: watch the
		 * parent for that name, so creation and replacement are seen */
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", path);
		snprintf(dir, sizeof(dir), "%s", dirname(tmp));
		snprintf(file, sizeof(file), "%s", path);
		d->file = strdup(basename(file));
	}
	uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB |
	    IN_DELETE_SELF | IN_MOVE_SELF;
	d->wd = inotify_add_watch(w->fd, dir, mask);
	if (d->wd < 0) {
		log_warn("cannot watch %s", dir);
		free(d->file);
		return false;
	}
	d->dir = strdup(dir);
	w->n++;
	return true;
}
