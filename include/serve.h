/*
 * serve — the daemon: owns the live config, VIP store, registry, name table,
 * listeners, forwarder and rule sync; reloads build new objects and swap.
 *
 * serve_run takes ownership of cfg and returns the process exit status.
 */
#ifndef SEDNS_SERVE_H
#define SEDNS_SERVE_H

#include <stdbool.h>

#include "config.h"

struct serve_opts {
	bool reallocate;       /* pool changed: drop allocations */
};

int serve_run(struct config *cfg, const struct serve_opts *opts);

#endif
