/* statelock — see include/statelock.h. */
#include "statelock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static pid_t
read_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end;
	long v = strtol(buf, &end, 10);
	return v > 0 && v < INT_MAX && (*end == '\n' || *end == '\0') ? (pid_t)v : 0;
}

enum statelock_result
statelock_acquire(const char *dir, int *fd, pid_t *holder, char *err, size_t errlen)
{
	char path[PATH_MAX];
	*fd = -1;
	*holder = 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, STATELOCK_FILE) >= sizeof(path)) {
		snprintf(err, errlen, "state directory path too long: %s", dir);
		return STATELOCK_ERROR;
	}
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (f < 0) {
		snprintf(err, errlen, "cannot open the state lock %s: %s", path, strerror(errno));
		return STATELOCK_ERROR;
	}
	while (flock(f, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			*holder = read_holder(f);
			close(f);
			return STATELOCK_BUSY;
		}
		snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
		close(f);
		return STATELOCK_ERROR;
	}
	/* best effort: on a full disk the PID may not fit, the lock holds */
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(f, 0) == 0 && pwrite(f, pid, (size_t)n, 0) != n)
		(void)ftruncate(f, 0);
	*fd = f;
	return STATELOCK_TAKEN;
}

void
statelock_release(int fd)
{
	if (fd >= 0)
		close(fd);
}
