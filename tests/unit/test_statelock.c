/* Unit tests for statelock (one daemon per state directory). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "statelock.h"

Test(statelock, second_taker_is_told_the_holder)
{
	char dir[] = "/tmp/statelock-test-XXXXXX", err[256] = "", p[128];
	int fd1 = -1, fd2 = -1;
	pid_t holder = 0;

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(statelock_acquire(dir, &fd1, &holder, err, sizeof(err)), STATELOCK_TAKEN, "%s", err);
	cr_assert(fd1 >= 0);
	/* flock is per open file: a second open in this process conflicts
	 * the way a second daemon does */
	cr_assert_eq(statelock_acquire(dir, &fd2, &holder, err, sizeof(err)), STATELOCK_BUSY);
	cr_assert_eq(fd2, -1);
	cr_assert_eq(holder, getpid());
	statelock_release(fd1);
	cr_assert_eq(statelock_acquire(dir, &fd2, &holder, err, sizeof(err)), STATELOCK_TAKEN, "%s", err);
	statelock_release(fd2);
	snprintf(p, sizeof(p), "%s/%s", dir, STATELOCK_FILE);
	unlink(p);
	rmdir(dir);
}

Test(statelock, missing_directory_is_an_error)
{
	char err[256] = "";
	int fd = -1;
	pid_t holder = 0;

	cr_assert_eq(statelock_acquire("/nonexistent/sedns-state", &fd, &holder, err, sizeof(err)), STATELOCK_ERROR);
	cr_assert(strstr(err, "/nonexistent/sedns-state/sedns.lock") != NULL, "%s", err);
}
