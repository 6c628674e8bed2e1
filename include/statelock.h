/*
 * statelock — one daemon per state directory.
 *
 * Two daemons on one VIP store would each sync it to their own
 * ServiceEntries: each puts the other's hosts on hold and, once the hold
 * expires, hands their VIPs out again. The lock is flock(LOCK_EX) on
 * DIR/sedns.lock, held through an O_CLOEXEC descriptor for the life of the
 * process: the kernel drops it however the process ends (no stale lock
 * after a crash), and helpers the daemon runs (iptables-restore) do not
 * inherit it. The holder writes its PID into the file so that the next
 * one can name it; the PID is a hint, the flock is the lock.
 *
 * Ownership: a taken lock is the descriptor *fd, owned by the caller until
 * statelock_release (or exit).
 */
#ifndef SEDNS_STATELOCK_H
#define SEDNS_STATELOCK_H

#include <stddef.h>
#include <sys/types.h>

#define STATELOCK_FILE "sedns.lock"

enum statelock_result {
	STATELOCK_TAKEN,      /* *fd holds the lock */
	STATELOCK_BUSY,       /* another process holds it; *holder its PID
	                         (0 when the file does not say) */
	STATELOCK_ERROR,      /* could not create or lock the file: err */
};

/* Never blocks. The directory must exist. */
enum statelock_result statelock_acquire(const char *dir, int *fd, pid_t *holder, char *err, size_t errlen);
void statelock_release(int fd);

#endif
