/*
 * config — daemon options: defaults, the YAML config file, command-line flags.
 *
 * One table (src/config.c: options[]) drives all three and `--help`: each row
 * gives the YAML key, the flag, the type, the default and the help text.
 * Precedence: defaults < file < flags. A list given by flags replaces the
 * file's list (repeat the flag to give several values).
 *
 * Ownership: config_load returns a new struct config owned by the caller and
 * released with config_free. Nothing in it points into the YAML document or
 * argv. A reload builds a new config beside the live one and swaps.
 */
#ifndef SEDNS_CONFIG_H
#define SEDNS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "netaddr.h"

#define CONFIG_MAX_LIST 64

struct config_endpoint {
	struct netaddr addr;
	uint16_t port;
};

#define CONFIG_MAX_ZONES 32
#define CONFIG_MAX_ZONE_UPS 8

/* A forward zone (stub domain): queries at or under name go to ups. */
struct config_zone {
	char name[256];                     /* lower-case, no trailing dot; ""
	                                       is the root "." */
	struct config_endpoint ups[CONFIG_MAX_ZONE_UPS];
	size_t nups;
};


enum config_state_lock { STATE_LOCK_EXCLUSIVE = 0, STATE_LOCK_WAIT = 1 };

struct config {
	char *config_file;                  /* NULL when only defaults/flags */

	struct config_endpoint listen[CONFIG_MAX_LIST];
	size_t nlisten;
	char *serviceentries[CONFIG_MAX_LIST];
	size_t nserviceentries;
	char *state_dir;
	uint64_t state_lock;                /* enum config_state_lock */
	struct config_endpoint upstreams[CONFIG_MAX_LIST];
	size_t nupstreams;                  /* 0: use /etc/resolv.conf */
	char *resolv_conf;                  /* where to read nameservers */
	struct config_zone forward_zones[CONFIG_MAX_ZONES];
	size_t nforward_zones;              /* "." among them replaces
	                                       upstreams/resolv.conf */
	uint64_t upstream_timeout_ms;
	uint64_t ttl;
	char *cluster_domain;
	char *search_suffixes[CONFIG_MAX_LIST];
	size_t nsearch_suffixes;
	struct netprefix vip_pool;
	bool vip_pool6_on;
	struct netprefix vip_pool6;
	uint64_t vip_hold_ms;
	struct netprefix allow_from[CONFIG_MAX_LIST];
	size_t nallow_from;
	char *metrics;                      /* "" = off; else ADDR:PORT */
	uint64_t edns_udp_size;
	uint64_t tcp_idle_timeout_ms;
	uint64_t tcp_max_connections;
	uint64_t max_pending;
	uint64_t max_pending_per_client;    /* 0: max_pending / 8 (>= 16) */
	uint64_t tcp_max_per_client;
	uint64_t tcp_max_lifetime_ms;
	uint64_t cache_size;                /* answer cache entries, 0 = off */
	uint64_t cache_min_ttl_ms, cache_max_ttl_ms, cache_max_negative_ttl_ms, cache_stale_max_ms;
	bool cache_prefetch;
	uint64_t rules_format;              /* enum rules_format (rules.h); never AUTO after load */
	bool rules_format_auto;             /* it was "auto": the log says why */
	char *rules_file;
	bool rules_apply;
	bool rules_masquerade;
	uint64_t rules_masq_mark;
	uint64_t rules_min_sync_ms;
	uint64_t rules_resync_ms;           /* full apply period, 0: never */
	uint64_t rules_apply_timeout_ms;
	uint64_t endpoint_min_ttl_ms;       /* re-resolution bounds for DNS */
	uint64_t endpoint_max_ttl_ms;       /* resolution endpoints */
	uint64_t endpoint_max_qps;          /* node-wide resolution rate cap */
	char *workloads[CONFIG_MAX_LIST];   /* Pod list YAML: IP -> namespace */
	size_t nworkloads;
	/* kubernetes (kube.h): on with in_cluster or a kubeconfig */
	bool kube_in_cluster;
	char *kube_kubeconfig;              /* "" = none */
	char *kube_sa_dir;
	char *kube_node_name;               /* "": $NODE_NAME */
	bool kube_serviceentries, kube_pods;
	uint64_t kube_request_timeout_ms, kube_watch_timeout_ms, kube_initial_sync_ms;
	uint64_t kube_page_size;
	uint64_t reload_debounce_ms;
	bool listen_freebind;               /* IP_FREEBIND on non-loopback */
	bool listen_reuseport;              /* SO_REUSEPORT on listeners */
	uint64_t stop_timeout_ms;           /* drain deadline on SIGTERM */
	char *debug_listen;                 /* "": /debug pages on the metrics
	                                       listener if it is loopback */
	uint64_t log_level;                 /* enum log_level */
	bool log_queries;
	uint64_t log_queries_rate;          /* query lines a second, 0 no cap */
	uint64_t log_format;                /* enum log_format */
	uint64_t log_refused_period_ms;     /* refused-client counts, per prefix */
};

/* The environment variable naming the config file when -c is not given. */
#define CONFIG_ENV "SEDNS_CONFIG"

/* Parses argv (after the sub-command) and the config file named by -c (if
 * any; else by $SEDNS_CONFIG when set and not empty). On error prints "FILE:LINE:COL: message" or "sedns: message" to errf
 * and returns NULL. Positional arguments (not options) are returned in
 * *rest / *nrest (pointers into argv) when rest is non-NULL; otherwise they
 * are an error. *help_out is set when --help was given (usage printed). */
struct config *config_load(int argc, char **argv, FILE *errf, char ***rest,
    int *nrest, bool *help_out);
void config_free(struct config *cfg);

/* Prints the effective configuration as YAML that config_load accepts. */
void config_print(const struct config *cfg, FILE *out);
/* Prints the option reference (flags, keys, defaults) used by --help. */
void config_usage(FILE *out);

/* Parses "ZONE=ADDR[:PORT][,ADDR[:PORT]...]" into z. "kube-dns" as an
 * address means $KUBE_DNS_SERVICE_HOST port $KUBE_DNS_SERVICE_PORT_DNS
 * (else $KUBE_DNS_SERVICE_PORT, else 53): what a pod in kube-system is
 * given. On error writes the reason to err. */
bool config_parse_zone(const char *val, struct config_zone *z, char *err, size_t errlen);

/* Parses "1h", "30s", "250ms", "2m", "1d" or a plain number of seconds. */
bool config_parse_duration_ms(const char *s, uint64_t *ms);
/* Writes ms as config_parse_duration_ms reads it back, in the largest unit
 * that is exact ("1h", "90m", "250ms", "0s"); returns buf. */
const char *config_format_duration(uint64_t ms, char *buf, size_t len);

/* What rules.format auto means on this node (firewall_detect_format,
 * run once per process); why (may be NULL) receives the reason. */
int config_auto_format(const char **why);

#endif
