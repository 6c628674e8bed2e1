/*
 * querylog — the query log's line and its rate cap (pure: no I/O, no
 * allocation; the server calls it per packet when log_queries is on).
 *
 * A line is the fields of struct qlog_entry, logged through log_fields as
 * "query client=10.0.0.5 proto=udp name=api.stripe.com type=A class=IN
 * action=local rcode=NOERROR answers=1 latency_us=18" (or one JSON object):
 *   action   local (answered by sedns: its names, CHAOS, errors such as
 *            REFUSED), cache (a cached upstream reply; ttl_left follows),
 *            forward (zone= and upstream= say where it went; upstream=none
 *            when no upstream answered), drop (no reply at all)
 *   rcode    the one in the reply the client was sent (after the NXDOMAIN to
 *            NODATA rewrite, truncation, a stale answer or our SERVFAIL)
 *   note     why the reply is not simply the upstream's: was_nxdomain,
 *            stale, client_quota, pending_full, allow_from
 *   latency  from reading the query to sending the reply, microseconds
 * Type and class are names (A, AAAA, IN, CH); an unknown one is TYPE65534 /
 * CLASS7 (RFC 3597). The entry's strings are borrowed for the call.
 *
 * The cap: at most per_sec lines in each one-second window; the lines over
 * it are counted, and the count is reported once that window is over (the
 * next line, or the server's timer, asks qlog_limit_due).
 */
#ifndef SEDNS_QUERYLOG_H
#define SEDNS_QUERYLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct qlog_entry {
	const char *client;            /* address text */
	bool tcp;
	const char *name;              /* presentation, "" = the root */
	bool have_question;            /* false: the packet had none (name, type
	                                  and class are "-") */
	uint16_t qtype, qclass;
	const char *action;
	const char *zone;              /* forward: "" = the root zone; else NULL */
	const char *upstream;          /* forward: "ADDR:PORT" or "none" */
	int rcode;                     /* -1: no reply sent */
	unsigned answers;
	long ttl_left;                 /* cache: seconds; < 0: not shown */
	const char *note;              /* NULL: none */
	uint64_t latency_us;
};

#define QLOG_MAX_FIELDS 14
#define QLOG_SCRATCH 64

/* Fills f (QLOG_MAX_FIELDS) for log_fields; scratch (QLOG_SCRATCH bytes)
 * holds the names made up for unknown codes. Returns the count. */
size_t qlog_fields(const struct qlog_entry *e, struct log_field *f, char *scratch);

const char *qlog_type_name(uint16_t t, char *buf, size_t len);
const char *qlog_class_name(uint16_t c, char *buf, size_t len);
const char *qlog_rcode_name(unsigned rc, char *buf, size_t len);

struct qlog_limit {
	uint64_t per_sec;              /* 0: no cap */
	double window;                 /* start of the current window */
	uint64_t used;                 /* lines written in it */
	uint64_t suppressed;           /* lines not written, not yet reported */
	double suppressed_since;       /* window of the first of them */
};

void qlog_limit_init(struct qlog_limit *l, uint64_t per_sec);
/* May a line be written at now (seconds, monotonic)? Counts it either way. */
bool qlog_limit_take(struct qlog_limit *l, double now);
/* Lines suppressed in windows that are over by now: returned (and reset)
 * with the seconds they span in *span; 0 while the window is still on. */
uint64_t qlog_limit_due(struct qlog_limit *l, double now, double *span);

#endif
