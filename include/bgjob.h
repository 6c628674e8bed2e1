/*
 * bgjob — one slow function at a time on a thread beside the event loop,
 * its end reported on the loop.
 *
 * The daemon's loop answers queries; a reload's build and a rule render run
 * here instead. The thread wakes the loop through a pipe; the loop joins it
 * and calls done there, so everything done touches is the loop's alone.
 * Whatever fn and the loop share meanwhile is the caller's to keep apart
 * (the reload and the render say what they share in their own headers).
 *
 * Ownership: bgjob_new's caller owns the job until bgjob_free, which waits
 * for a running fn first (without calling done).
 */
#ifndef SEDNS_BGJOB_H
#define SEDNS_BGJOB_H

#include <stdbool.h>

struct event_base;
struct bgjob;

/* Background threads run at this nice value (the loop at the process's):
 * on a 2-core node a build, a render and a free beside the loop must not
 * take the CPU the queries need. */
#define BGJOB_NICE 10
/* Lowers the calling thread's priority to BGJOB_NICE. */
void bgjob_background_priority(void);

struct bgjob *bgjob_new(struct event_base *base, void (*done)(void *arg), void *arg);
/* Starts fn(fnarg) on a new thread; false when one is running. When no
 * thread can be started, runs fn inline and calls done before returning. */
bool bgjob_start(struct bgjob *j, void (*fn)(void *), void *fnarg);
bool bgjob_busy(const struct bgjob *j);
/* Waits for a running fn to return; done is not called. */
void bgjob_wait(struct bgjob *j);
void bgjob_free(struct bgjob *j);

#endif
