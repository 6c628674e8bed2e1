/* bgjob — see include/bgjob.h. */
#include "bgjob.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

struct bgjob {
	void (*done)(void *);
	void *arg;
	void (*fn)(void *);
	void *fnarg;
	bool running;
	pthread_t thread;
	int pipe[2];                    /* the thread's "returned", to the loop */
	struct event *ev;
};

void
bgjob_background_priority(void)
{
	/* per thread on Linux: the loop keeps nice 0 */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), BGJOB_NICE) != 0)
		log_debug("background thread: cannot lower its priority");
}

static void *
run(void *arg)
{
	struct bgjob *j = arg;
	bgjob_background_priority();
	j->fn(j->fnarg);
	while (write(j->pipe[1], "x", 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bgjob *j = arg;
	char c[16];
	while (read(fd, c, sizeof(c)) > 0)
		;
	if (!j->running)
		return;
	pthread_join(j->thread, NULL);
	j->running = false;
	j->done(j->arg);
}

struct bgjob *
bgjob_new(struct event_base *base, void (*done)(void *arg), void *arg)
{
	struct bgjob *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->done = done;
	j->arg = arg;
	if (pipe2(j->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(j);
		return NULL;
	}
	j->ev = event_new(base, j->pipe[0], EV_READ | EV_PERSIST, wake_cb, j);
	if (j->ev == NULL || event_add(j->ev, NULL) < 0) {
		bgjob_free(j);
		return NULL;
	}
	return j;
}

bool
bgjob_start(struct bgjob *j, void (*fn)(void *), void *fnarg)
{
	if (j->running)
		return false;
	j->fn = fn;
	j->fnarg = fnarg;
	j->running = true;
	if (pthread_create(&j->thread, NULL, run, j) != 0) {
		log_warnx("cannot start a worker thread; working on the event loop");
		j->running = false;
		fn(fnarg);
		j->done(j->arg);
	}
	return true;
}

bool
bgjob_busy(const struct bgjob *j)
{
	return j->running;
}

void
bgjob_wait(struct bgjob *j)
{
	if (!j->running)
		return;
	pthread_join(j->thread, NULL);
	j->running = false;
}

void
bgjob_free(struct bgjob *j)
{
	if (j == NULL)
		return;
	bgjob_wait(j);
	if (j->ev)
		event_free(j->ev);
	close(j->pipe[0]);
	close(j->pipe[1]);
	free(j);
}
