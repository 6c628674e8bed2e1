/*
 * monotime — the one place sedns reads the monotonic clock and turns
 * milliseconds into libevent timeouts. Pure helpers, no state; cheap enough
 * for the query path (clock_gettime is a vDSO call).
 */
#ifndef SEDNS_MONOTIME_H
#define SEDNS_MONOTIME_H

#include <stdint.h>
#include <sys/time.h>

/* Seconds since an arbitrary start (CLOCK_MONOTONIC), with ns resolution. */
double monotime_now(void);
/* A timeout of ms milliseconds for event_add / bufferevent_set_timeouts. */
struct timeval monotime_tv(uint64_t ms);

#endif
