/*
 * serve — the daemon: owns the live config, VIP store, registry, name table,
 * listeners, forwarder, endpoint resolver, rule sync, file watches and the
 * HTTP endpoint. Reloads (SIGHUP, or a watched file changing) build new
 * objects beside the live ones and swap them in; a broken input never
 * replaces a good one.
 *
 * serve_run takes ownership of cfg and returns the process exit status.
 * argv (the flags after "serve") is kept to re-read the config on SIGHUP.
 */
#ifndef SEDNS_SERVE_H
#define SEDNS_SERVE_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

struct serve_opts {
	bool reallocate;       /* pool changed: drop allocations */
	int argc;              /* config arguments, re-read on SIGHUP */
	char **argv;
};

int serve_run(struct config *cfg, const struct serve_opts *opts);

/* serve -n past config_load (which already checked every value): binds
 * every address serve would (listen UDP and TCP, metrics, debug_listen)
 * through the functions serve binds with, then closes them. Writes
 * "error: ..." / "warning: ..." lines to out; an address in use is a
 * warning (the running sedns holds it). Returns 0, or 1 on an error. */
int serve_check(const struct config *cfg, FILE *out);

#endif
