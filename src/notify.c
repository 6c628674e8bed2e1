/* notify — see include/notify.h. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

bool
notify_send(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path == NULL || path[0] == '\0')
		return false;
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	size_t pl = strlen(path);
	if (pl >= sizeof(sun.sun_path))
		return false;
	memcpy(sun.sun_path, path, pl);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ssize_t r = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, sl);
	close(fd);
	return r == (ssize_t)strlen(msg);
}

uint64_t
notify_watchdog_usec(void)
{
	const char *u = getenv("WATCHDOG_USEC");
	if (u == NULL)
		return 0;
	const char *p = getenv("WATCHDOG_PID");
	if (p != NULL && strtol(p, NULL, 10) != (long)getpid())
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(u, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return 0;
	return v;
}

bool
notify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[96];
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
	return notify_send(msg);
}
