/* config — see include/config.h. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "firewall.h"
#include "log.h"

enum opt_type {
	OT_ADDRPORT_LIST,  /* ADDR[:PORT], repeatable */
	OT_STR_LIST,
	OT_CIDR_LIST,
	OT_STR,
	OT_UINT,
	OT_DURATION,
	OT_CIDR,
	OT_CIDR_OPT,       /* "" / off = disabled */
	OT_BOOL,
	OT_ENUM,
	OT_ZONE_LIST,      /* ZONE=ADDR[,ADDR...]; YAML {zone, upstreams} */
	OT_LISTEN_STR,     /* "" (off) or an HTTP ADDR[:PORT]; :0 picks a port */
	OT_FLAG_ONLY,      /* -c handled before everything else */
};

struct option_def {
	const char *key;           /* YAML key (dotted for nested) */
	const char *flag;          /* long flag without dashes */
	char shortflag;
	const char *arg;           /* metavar for --help */
	enum opt_type type;
	const char *def;           /* default as text (lists: comma-separated) */
	const char *help;
	size_t off;                /* offset of the value in struct config */
	size_t count_off;          /* lists: offset of the count */
	uint64_t min, max;         /* OT_UINT / OT_DURATION (ms) bounds */
	const char *const *enums;  /* OT_ENUM values; index stored */
	uint16_t default_port;     /* OT_ADDRPORT_LIST */
	size_t presence_off;       /* OT_CIDR_OPT: offset of the bool "on" */
};

/* Detected once per process: a reload must not switch formats because a
 * module got loaded meanwhile (the old format's rules would stay). */
static pthread_once_t auto_once = PTHREAD_ONCE_INIT;
static int auto_format;
static char auto_why[128];

static void
detect_once(void)
{
	auto_format = firewall_detect_format(auto_why, sizeof(auto_why));
}

int
config_auto_format(const char **why)
{
	pthread_once(&auto_once, detect_once);
	if (why)
		*why = auto_why;
	return auto_format;
}

static const char *const rules_formats[] = { "iptables", "nft", "auto", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_formats[] = { "text", "json", NULL }; /* enum log_format */
static const char *const state_locks[] = { "exclusive", "wait", NULL };

#define OFF(f) offsetof(struct config, f)
#define NOOFF 0

static const struct option_def options[] = {
	{ "config", "config", 'c', "FILE", OT_FLAG_ONLY, NULL,
	  "read options from this YAML file (flags win over it; default: $SEDNS_CONFIG when set)", NOOFF, NOOFF, 0, 0, NULL, 0, 0 },
	{ "listen", "listen", 'l', "ADDR[:PORT]", OT_ADDRPORT_LIST, "127.0.0.1:5353",
	  "address to answer DNS on, UDP and TCP (repeatable; port 53 if omitted)",
	  OFF(listen), OFF(nlisten), 0, 0, NULL, 53, 0 },
	{ "serviceentries", "serviceentries", 's', "PATH", OT_STR_LIST, "/etc/sedns/serviceentries",
	  "ServiceEntry YAML file or directory (repeatable)",
	  OFF(serviceentries), OFF(nserviceentries), 0, 0, NULL, 0, 0 },
	{ "state_dir", "state-dir", 0, "DIR", OT_STR, "/var/lib/sedns",
	  "directory for the VIP store (vips.mdb) and rendered rules", OFF(state_dir), NOOFF, 0, 0, NULL, 0, 0 },
	{ "state_lock", "state-lock", 0, "exclusive|wait", OT_ENUM, "exclusive",
	  "another sedns holds state_dir: exit at once (exclusive), or serve read-only (known VIPs, no rules) "
	  "until it exits (wait: rolling updates)", OFF(state_lock), NOOFF, 0, 0, state_locks, 0, 0 },
	{ "upstreams", "upstream", 'u', "ADDR[:PORT]", OT_ADDRPORT_LIST, "",
	  "upstream resolver (repeatable; default: nameservers of resolv_conf)",
	  OFF(upstreams), OFF(nupstreams), 0, 0, NULL, 53, 0 },
	{ "forward_zones", "forward-zone", 0, "ZONE=ADDR[,ADDR...]", OT_ZONE_LIST, "",
	  "stub domain: queries at or under ZONE go to these upstreams, longest zone wins, \".\" is the "
	  "default (repeatable; ADDR kube-dns = $KUBE_DNS_SERVICE_HOST)",
	  OFF(forward_zones), OFF(nforward_zones), 0, 0, NULL, 53, 0 },
	{ "resolv_conf", "resolv-conf", 0, "FILE", OT_STR, "/etc/resolv.conf",
	  "where to find upstreams when none are configured", OFF(resolv_conf), NOOFF, 0, 0, NULL, 0, 0 },
	{ "upstream_timeout", "upstream-timeout", 0, "DURATION", OT_DURATION, "2s",
	  "time to wait for one upstream before trying the next",
	  OFF(upstream_timeout_ms), NOOFF, 10, 60000, NULL, 0, 0 },
	{ "ttl", "ttl", 't', "SECONDS", OT_UINT, "30",
	  "TTL of local answers", OFF(ttl), NOOFF, 0, 86400, NULL, 0, 0 },
	{ "cluster_domain", "cluster-domain", 0, "DOMAIN", OT_STR, "cluster.local",
	  "Kubernetes cluster domain for search-path expansions", OFF(cluster_domain), NOOFF, 0, 0, NULL, 0, 0 },
	{ "search_suffixes", "search-suffix", 0, "DOMAIN", OT_STR_LIST, "",
	  "extra search suffix answered like the cluster domain (repeatable)",
	  OFF(search_suffixes), OFF(nsearch_suffixes), 0, 0, NULL, 0, 0 },
	{ "vip_pool", "vip-pool", 0, "CIDR", OT_CIDR, "240.240.0.0/16",
	  "IPv4 pool that VIPs are allocated from", OFF(vip_pool), NOOFF, 0, 0, NULL, 0, 0 },
	{ "vip_pool6", "vip-pool6", 0, "CIDR|on|off", OT_CIDR_OPT, "",
	  "IPv6 VIP pool (empty or off: none; on: 2001:2::/48)", OFF(vip_pool6), NOOFF, 0, 0, NULL, 0,
	  OFF(vip_pool6_on) },
	{ "vip_hold", "vip-hold", 0, "DURATION", OT_DURATION, "1h",
	  "how long a removed host's VIP is kept for it", OFF(vip_hold_ms), NOOFF, 0,
	  UINT64_C(365) * 86400 * 1000, NULL, 0, 0 },
	{ "allow_from", "allow-from", 'a', "CIDR", OT_CIDR_LIST, "127.0.0.0/8,::1/128",
	  "clients allowed to query (repeatable); others get REFUSED",
	  OFF(allow_from), OFF(nallow_from), 0, 0, NULL, 0, 0 },
	{ "metrics", "metrics", 0, "ADDR:PORT", OT_LISTEN_STR, "",
	  "HTTP address for /metrics, /healthz, /readyz (empty: off)", OFF(metrics), NOOFF, 0, 0, NULL, 0, 0 },
	{ "edns_udp_size", "edns-udp-size", 0, "BYTES", OT_UINT, "1232",
	  "UDP payload size we advertise and accept", OFF(edns_udp_size), NOOFF, 512, 4096, NULL, 0, 0 },
	{ "tcp_idle_timeout", "tcp-idle-timeout", 0, "DURATION", OT_DURATION, "10s",
	  "close idle TCP client connections after this long", OFF(tcp_idle_timeout_ms), NOOFF, 100,
	  3600000, NULL, 0, 0 },
	{ "tcp_max_connections", "tcp-max-connections", 0, "N", OT_UINT, "1024",
	  "cap on concurrent TCP clients (accept pauses at the cap)", OFF(tcp_max_connections), NOOFF, 1,
	  65536, NULL, 0, 0 },
	{ "tcp_max_per_client", "tcp-max-per-client", 0, "N", OT_UINT, "32",
	  "cap on concurrent TCP connections from one client address", OFF(tcp_max_per_client), NOOFF, 1, 65536,
	  NULL, 0, 0 },
	{ "tcp_max_lifetime", "tcp-max-lifetime", 0, "DURATION", OT_DURATION, "120s",
	  "a TCP connection stops taking queries after this long, busy or not", OFF(tcp_max_lifetime_ms), NOOFF, 1000,
	  86400000, NULL, 0, 0 },
	{ "max_pending_per_client", "max-pending-per-client", 0, "N", OT_UINT, "0",
	  "queries one client address may have upstream at once (0: max_pending/8, at least 16); beyond it SERVFAIL",
	  OFF(max_pending_per_client), NOOFF, 0, 1000000, NULL, 0, 0 },
	{ "max_pending", "max-pending", 0, "N", OT_UINT, "4096",
	  "cap on queries in flight upstream (beyond it: SERVFAIL)", OFF(max_pending), NOOFF, 1, 1000000,
	  NULL, 0, 0 },
	{ "cache.size", "cache-size", 0, "N", OT_UINT, "10000",
	  "answer cache for forwarded replies: entries (0: off)", OFF(cache_size), NOOFF, 0, 10000000, NULL, 0, 0 },
	{ "cache.min_ttl", "cache-min-ttl", 0, "DURATION", OT_DURATION, "5s",
	  "cached answers live at least this long (and negative ones without an SOA this long)",
	  OFF(cache_min_ttl_ms), NOOFF, 0, 86400000, NULL, 0, 0 },
	{ "cache.max_ttl", "cache-max-ttl", 0, "DURATION", OT_DURATION, "1h",
	  "... and at most this long", OFF(cache_max_ttl_ms), NOOFF, 1000, UINT64_C(7) * 86400000, NULL, 0, 0 },
	{ "cache.max_negative_ttl", "cache-max-negative-ttl", 0, "DURATION", OT_DURATION, "5m",
	  "NXDOMAIN / NODATA live min(SOA TTL, SOA MINIMUM), at most this long", OFF(cache_max_negative_ttl_ms),
	  NOOFF, 0, 86400000, NULL, 0, 0 },
	{ "cache.stale_max", "cache-stale-max", 0, "DURATION", OT_DURATION, "1h",
	  "when every upstream fails, answer from an entry expired up to this long ago (RFC 8767; 0: never)",
	  OFF(cache_stale_max_ms), NOOFF, 0, UINT64_C(7) * 86400000, NULL, 0, 0 },
	{ "cache.prefetch", "cache-prefetch", 0, "BOOL", OT_BOOL, "true",
	  "refresh a popular entry hit in the last 10% of its TTL before it expires", OFF(cache_prefetch), NOOFF, 0,
	  0, NULL, 0, 0 },
	{ "rules.format", "rules-format", 0, "iptables|nft|auto", OT_ENUM, "auto",
	  "rule language for VIP DNAT; auto: nft where the nft tool is installed and the kernel uses nf_tables, else iptables", OFF(rules_format), NOOFF, 0, 0, rules_formats, 0, 0 },
	{ "rules.file", "rules-file", 0, "FILE", OT_STR, "",
	  "where rendered rules are written (default: STATE_DIR/rules.FORMAT)", OFF(rules_file), NOOFF, 0,
	  0, NULL, 0, 0 },
	{ "rules.apply", "rules-apply", 0, "BOOL", OT_BOOL, "false",
	  "apply rules with iptables-restore / nft (needs CAP_NET_ADMIN)", OFF(rules_apply), NOOFF, 0, 0,
	  NULL, 0, 0 },
	{ "rules.masquerade", "rules-masquerade", 0, "BOOL", OT_BOOL, "false",
	  "masquerade DNATed traffic (endpoints that cannot route back to pods)", OFF(rules_masquerade), NOOFF,
	  0, 0, NULL, 0, 0 },
	{ "rules.masq_mark", "rules-masq-mark", 0, "BIT", OT_UINT, "8192",
	  "fwmark bit for masquerade (default 0x2000; not kube-proxy's 0x4000/0x8000)", OFF(rules_masq_mark),
	  NOOFF, 1, 0xffff, NULL, 0, 0 },
	{ "rules.min_sync_period", "rules-min-sync-period", 0, "DURATION", OT_DURATION, "1s",
	  "at most one rule sync per period (changes are batched)", OFF(rules_min_sync_ms), NOOFF, 0, 3600000,
	  NULL, 0, 0 },
	{ "rules.resync_period", "rules-resync-period", 0, "DURATION", OT_DURATION, "1h",
	  "changes are applied incrementally; a full apply this often repairs rules changed or deleted by hand (0: never)",
	  OFF(rules_resync_ms), NOOFF, 0, UINT64_C(7) * 86400000, NULL, 0, 0 },
	{ "rules.apply_timeout", "rules-apply-timeout", 0, "DURATION", OT_DURATION, "300s",
	  "longest one iptables-restore / nft run may take before it is killed", OFF(rules_apply_timeout_ms), NOOFF,
	  1000, 3600000, NULL, 0, 0 },
	{ "endpoint_min_ttl", "endpoint-min-ttl", 0, "DURATION", OT_DURATION, "5s",
	  "DNS-resolved endpoints are re-resolved no sooner than this", OFF(endpoint_min_ttl_ms), NOOFF, 100,
	  86400000, NULL, 0, 0 },
	{ "endpoint_max_ttl", "endpoint-max-ttl", 0, "DURATION", OT_DURATION, "300s",
	  "... and no later than this, whatever the answer's TTL", OFF(endpoint_max_ttl_ms), NOOFF, 100,
	  86400000, NULL, 0, 0 },
	{ "endpoint_max_qps", "endpoint-max-qps", 0, "N", OT_UINT, "50",
	  "node-wide cap on endpoint resolutions per second (more wait their turn)", OFF(endpoint_max_qps), NOOFF,
	  1, 100000, NULL, 0, 0 },
	{ "workloads", "workloads", 0, "PATH", OT_STR_LIST, "",
	  "Pod list YAML (kubectl get pods -o yaml) mapping client IPs to namespaces (repeatable)",
	  OFF(workloads), OFF(nworkloads), 0, 0, NULL, 0, 0 },
	{ "kubernetes.in_cluster", "kube-in-cluster", 0, "BOOL", OT_BOOL, "false",
	  "watch ServiceEntries and this node's pods from the API server, as the pod's service account",
	  OFF(kube_in_cluster), NOOFF, 0, 0, NULL, 0, 0 },
	{ "kubernetes.kubeconfig", "kubeconfig", 0, "FILE", OT_STR, "",
	  "watch ServiceEntries and this node's pods from the API server this kubeconfig names",
	  OFF(kube_kubeconfig), NOOFF, 0, 0, NULL, 0, 0 },
	{ "kubernetes.service_account_dir", "kube-service-account-dir", 0, "DIR", OT_STR,
	  "/var/run/secrets/kubernetes.io/serviceaccount", "in_cluster: where the token (re-read when it rotates) "
	  "and ca.crt are", OFF(kube_sa_dir), NOOFF, 0, 0, NULL, 0, 0 },
	{ "kubernetes.node_name", "kube-node-name", 0, "NAME", OT_STR, "",
	  "this node, whose pods are watched (default: $NODE_NAME)", OFF(kube_node_name), NOOFF, 0, 0, NULL, 0, 0 },
	{ "kubernetes.serviceentries", "kube-serviceentries", 0, "BOOL", OT_BOOL, "true",
	  "watch ServiceEntries (networking.istio.io v1, else v1beta1)", OFF(kube_serviceentries), NOOFF, 0, 0,
	  NULL, 0, 0 },
	{ "kubernetes.pods", "kube-pods", 0, "BOOL", OT_BOOL, "true",
	  "watch this node's pods: client IP -> namespace (per-namespace views)", OFF(kube_pods), NOOFF, 0, 0,
	  NULL, 0, 0 },
	{ "kubernetes.request_timeout", "kube-request-timeout", 0, "DURATION", OT_DURATION, "30s",
	  "connect and LIST page timeout", OFF(kube_request_timeout_ms), NOOFF, 100, 600000, NULL, 0, 0 },
	{ "kubernetes.watch_timeout", "kube-watch-timeout", 0, "DURATION", OT_DURATION, "30m",
	  "a watch is renewed (from its last resourceVersion) this often, plus up to 10% jitter",
	  OFF(kube_watch_timeout_ms), NOOFF, 1000, 86400000, NULL, 0, 0 },
	{ "kubernetes.page_size", "kube-page-size", 0, "N", OT_UINT, "500",
	  "objects per LIST page", OFF(kube_page_size), NOOFF, 1, 100000, NULL, 0, 0 },
	{ "kubernetes.initial_sync_timeout", "kube-initial-sync-timeout", 0, "DURATION", OT_DURATION, "10s",
	  "at start, wait this long for the first LISTs before serving from files alone (/readyz says not "
	  "ready until they are applied)", OFF(kube_initial_sync_ms), NOOFF, 0, 600000, NULL, 0, 0 },
	{ "reload_debounce", "reload-debounce", 0, "DURATION", OT_DURATION, "250ms",
	  "wait this long after a file change before reloading", OFF(reload_debounce_ms), NOOFF, 0, 60000, NULL,
	  0, 0 },
	{ "listen_freebind", "listen-freebind", 0, "BOOL", OT_BOOL, "true",
	  "bind non-loopback listen addresses before they exist on an interface (IP_FREEBIND)",
	  OFF(listen_freebind), NOOFF, 0, 0, NULL, 0, 0 },
	{ "listen_reuseport", "listen-reuseport", 0, "BOOL", OT_BOOL, "true",
	  "SO_REUSEPORT on listeners: a new sedns can serve beside the old one during a rollout",
	  OFF(listen_reuseport), NOOFF, 0, 0, NULL, 0, 0 },
	{ "stop_timeout", "stop-timeout", 0, "DURATION", OT_DURATION, "5s",
	  "on SIGTERM: stop reading, answer what was received, SERVFAIL what is still upstream after this",
	  OFF(stop_timeout_ms), NOOFF, 0, 600000, NULL, 0, 0 },
	{ "debug_listen", "debug-listen", 0, "ADDR:PORT", OT_LISTEN_STR, "",
	  "HTTP address for /debug/* pages (empty: on the metrics address, only when that is loopback)",
	  OFF(debug_listen), NOOFF, 0, 0, NULL, 0, 0 },
	{ "log_level", "log-level", 0, "LEVEL", OT_ENUM, "info",
	  "error, warn, info or debug", OFF(log_level), NOOFF, 0, 0, log_levels, 0, 0 },
	{ "log_queries", "log-queries", 0, "BOOL", OT_BOOL, "false",
	  "log one line per query (time, client, name, type, class, rcode sent, source, latency)",
	  OFF(log_queries), NOOFF, 0, 0, NULL, 0, 0 },
	{ "log_queries_rate", "log-queries-rate", 0, "N", OT_UINT, "1000",
	  "at most N query log lines a second, the rest counted in one \"suppressed\" line (0: no cap)",
	  OFF(log_queries_rate), NOOFF, 0, 10000000, NULL, 0, 0 },
	{ "log_refused_period", "log-refused-period", 0, "DURATION", OT_DURATION, "1m",
	  "clients outside allow_from: the first refusal per /24 (v4) or /56 (v6) is logged at once, then a count "
	  "per prefix this often", OFF(log_refused_period_ms), NOOFF, 1000, 86400000, NULL, 0, 0 },
	{ "log_format", "log-format", 0, "text|json", OT_ENUM, "text",
	  "log lines as key=value text or as one JSON object each (Loki, Elastic)", OFF(log_format), NOOFF, 0, 0,
	  log_formats, 0, 0 },
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void *
field(struct config *cfg, size_t off)
{
	return (char *)cfg + off;
}

bool
config_parse_duration_ms(const char *s, uint64_t *ms)
{
	char *end;
	if (*s == '\0' || *s == '-')
		return false;
	/* digits first: strtod would also take "nan", "inf" and hex */
	if (!((*s >= '0' && *s <= '9') || *s == '.') || strpbrk(s, "xX") != NULL)
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || !(v >= 0) || v > 1e15)
		return false;
	double mult;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else if (strcmp(end, "d") == 0)
		mult = 86400000;
	else
		return false;
	double r = v * mult;
	if (r > 1e15)
		return false;
	*ms = (uint64_t)(r + 0.5);
	return true;
}

const char *
config_format_duration(uint64_t ms, char *buf, size_t len)
{
	/* the largest unit that says it exactly: 1h, not 3600000ms */
	static const struct { uint64_t ms; const char *unit; } units[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(buf, len, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
			return buf;
		}
	}
	snprintf(buf, len, ms ? "%llums" : "0s", (unsigned long long)ms);
	return buf;
}

static bool
parse_uint(const char *s, uint64_t *out)
{
	char *end;
	if (*s == '\0' || *s == '-' || *s == '+')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool
parse_bool(const char *s, bool *out)
{
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1")) {
		*out = true;
		return true;
	}
	if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0")) {
		*out = false;
		return true;
	}
	return false;
}

/* "kube-dns": the cluster DNS Service as the environment of a pod in
 * kube-system describes it (enableServiceLinks). */
static bool
kube_dns_from_env(struct config_endpoint *ep, char *err, size_t errlen)
{
	const char *host = getenv("KUBE_DNS_SERVICE_HOST");
	const char *port = getenv("KUBE_DNS_SERVICE_PORT_DNS");
	if (port == NULL || *port == '\0')
		port = getenv("KUBE_DNS_SERVICE_PORT");
	if (host == NULL || *host == '\0') {
		snprintf(err, errlen, "kube-dns: KUBE_DNS_SERVICE_HOST is not set (it is in a pod of kube-system; "
		    "elsewhere give the kube-dns ClusterIP: kubectl -n kube-system get svc kube-dns)");
		return false;
	}
	uint64_t p = 53;
	if (port && *port && (!parse_uint(port, &p) || p == 0 || p > 65535)) {
		snprintf(err, errlen, "kube-dns: KUBE_DNS_SERVICE_PORT \"%s\" is not a port", port);
		return false;
	}
	if (!netaddr_parse(host, &ep->addr)) {
		snprintf(err, errlen, "kube-dns: KUBE_DNS_SERVICE_HOST \"%s\" is not an address", host);
		return false;
	}
	ep->port = (uint16_t)p;
	return true;
}

bool
config_parse_zone(const char *val, struct config_zone *z, char *err, size_t errlen)
{
	memset(z, 0, sizeof(*z));
	const char *eq = strchr(val, '=');
	if (eq == NULL || eq == val) {
		snprintf(err, errlen, "\"%s\" is not ZONE=ADDR[,ADDR...]", val);
		return false;
	}
	size_t zl = (size_t)(eq - val);
	if (zl >= sizeof(z->name)) {
		snprintf(err, errlen, "zone \"%.*s...\" is longer than a domain name", 40, val);
		return false;
	}
	for (size_t i = 0; i < zl; i++) {
		unsigned char ch = (unsigned char)val[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '_' || ch == '.')) {
			snprintf(err, errlen, "zone \"%.*s\": only letters, digits, '-', '_' and '.'", (int)zl, val);
			return false;
		}
		z->name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	if (strstr(z->name, "..") != NULL) {
		snprintf(err, errlen, "zone \"%s\" has an empty label", z->name);
		return false;
	}
	if (zl > 1 && z->name[zl - 1] == '.')
		zl--;
	z->name[zl] = '\0';
	if (strcmp(z->name, ".") == 0) {
		z->name[0] = '\0';
	} else if (z->name[0] == '.' || strstr(z->name, "..") != NULL) {
		snprintf(err, errlen, "zone \"%s\" has an empty label", z->name);
		return false;
	} else {
		for (const char *l = z->name; *l;) {
			const char *dot = strchr(l, '.');
			size_t ll = dot ? (size_t)(dot - l) : strlen(l);
			if (ll > 63) {
				snprintf(err, errlen, "zone \"%s\" has a label over 63 characters", z->name);
				return false;
			}
			l += ll + (dot != NULL);
		}
	}
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", eq + 1);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (z->nups >= CONFIG_MAX_ZONE_UPS) {
			snprintf(err, errlen, "zone \"%s\": more than %d upstreams", *z->name ? z->name : ".",
			    CONFIG_MAX_ZONE_UPS);
			return false;
		}
		struct config_endpoint *ep = &z->ups[z->nups];
		if (strcmp(tok, "kube-dns") == 0) {
			if (!kube_dns_from_env(ep, err, errlen))
				return false;
		} else if (!netaddr_parse_hostport(tok, 53, &ep->addr, &ep->port)) {
			snprintf(err, errlen, "zone \"%s\": \"%s\" is not ADDR[:PORT] (IPv6 as [ADDR]:PORT) or kube-dns",
			    *z->name ? z->name : ".", tok);
			return false;
		}
		z->nups++;
	}
	if (z->nups == 0) {
		snprintf(err, errlen, "zone \"%s\": no upstreams", *z->name ? z->name : ".");
		return false;
	}
	return true;
}

static void
list_clear(struct config *cfg, const struct option_def *o)
{
	size_t *n = field(cfg, o->count_off);
	if (o->type == OT_STR_LIST) {
		char **v = field(cfg, o->off);
		for (size_t i = 0; i < *n; i++) {
			free(v[i]);
			v[i] = NULL;
		}
	}
	*n = 0;
}

/* Sets (or, for lists, appends) one value. On error writes the reason. */
static bool
set_value(struct config *cfg, const struct option_def *o, const char *val, char *err, size_t errlen)
{
	size_t *n = o->count_off ? field(cfg, o->count_off) : NULL;
	switch (o->type) {
	case OT_ADDRPORT_LIST: {
		struct config_endpoint *v = field(cfg, o->off);
		if (*n >= CONFIG_MAX_LIST) {
			snprintf(err, errlen, "%s: more than %d values", o->key, CONFIG_MAX_LIST);
			return false;
		}
		if (!netaddr_parse_hostport(val, o->default_port, &v[*n].addr, &v[*n].port)) {
			snprintf(err, errlen, "%s: \"%s\" is not ADDR[:PORT]: %s", o->key, val,
			    netaddr_hostport_problem(val));
			return false;
		}
		(*n)++;
		return true;
	}
	case OT_STR_LIST: {
		char **v = field(cfg, o->off);
		if (*n >= CONFIG_MAX_LIST) {
			snprintf(err, errlen, "%s: more than %d values", o->key, CONFIG_MAX_LIST);
			return false;
		}
		if (*val == '\0') {
			snprintf(err, errlen, "%s: empty value", o->key);
			return false;
		}
		if ((v[*n] = strdup(val)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		(*n)++;
		return true;
	}
	case OT_CIDR_LIST: {
		struct netprefix *v = field(cfg, o->off);
		if (*n >= CONFIG_MAX_LIST) {
			snprintf(err, errlen, "%s: more than %d values", o->key, CONFIG_MAX_LIST);
			return false;
		}
		if (!netprefix_parse(val, false, &v[*n])) {
			snprintf(err, errlen, "%s: \"%s\" is not an address or CIDR", o->key, val);
			return false;
		}
		(*n)++;
		return true;
	}
	case OT_LISTEN_STR:
	case OT_STR: {
		char **v = field(cfg, o->off);
		struct netaddr a;
		uint16_t port;
		/* checked here, not when the listener opens: serve -n and every
		 * command reject what serve could not bind to (file:line:col) */
		if (o->type == OT_LISTEN_STR && *val != '\0' && !netaddr_parse_hostport0(val, 9153, &a, &port)) {
			snprintf(err, errlen, "%s: \"%s\" is not ADDR:PORT: %s", o->key, val,
			    netaddr_hostport_problem(val));
			return false;
		}
		char *d = strdup(val);
		if (d == NULL) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		free(*v);
		*v = d;
		return true;
	}
	case OT_UINT: {
		uint64_t *v = field(cfg, o->off), x;
		if (!parse_uint(val, &x) || x < o->min || x > o->max) {
			snprintf(err, errlen, "%s: \"%s\" is not a whole number in %llu..%llu", o->key, val,
			    (unsigned long long)o->min, (unsigned long long)o->max);
			return false;
		}
		*v = x;
		return true;
	}
	case OT_DURATION: {
		uint64_t *v = field(cfg, o->off), x;
		if (!config_parse_duration_ms(val, &x)) {
			snprintf(err, errlen, "%s: \"%s\" is not a duration (e.g. 250ms, 30s, 5m, 1h, 1d)", o->key, val);
			return false;
		}
		if (x < o->min || x > o->max) {
			char lo[32], hi[32];
			snprintf(err, errlen, "%s: \"%s\" is out of range (%s..%s)", o->key, val,
			    config_format_duration(o->min, lo, sizeof(lo)), config_format_duration(o->max, hi, sizeof(hi)));
			return false;
		}
		*v = x;
		return true;
	}
	case OT_CIDR:
	case OT_CIDR_OPT: {
		struct netprefix *v = field(cfg, o->off);
		if (o->type == OT_CIDR_OPT) {
			bool *on = field(cfg, o->presence_off);
			bool b;
			if (*val == '\0' || (parse_bool(val, &b) && !b)) {
				*on = false;
				return true;
			}
			if (parse_bool(val, &b) && b)
				val = "2001:2::/48";
			*on = true;
		}
		if (!netprefix_parse(val, true, v)) {
			snprintf(err, errlen, "%s: \"%s\" is not a CIDR with host bits clear (e.g. 240.240.0.0/16)",
			    o->key, val);
			return false;
		}
		int want = o->type == OT_CIDR ? AF_INET : AF_INET6;
		if (v->addr.family != want) {
			snprintf(err, errlen, "%s: \"%s\" must be an %s prefix", o->key, val,
			    want == AF_INET ? "IPv4" : "IPv6");
			return false;
		}
		unsigned maxlen = want == AF_INET ? 30 : 126;
		unsigned minlen = want == AF_INET ? 8 : 16;
		if (v->len > maxlen || v->len < minlen) {
			snprintf(err, errlen, "%s: \"%s\": prefix length must be %u..%u", o->key, val, minlen, maxlen);
			return false;
		}
		return true;
	}
	case OT_BOOL: {
		bool *v = field(cfg, o->off);
		if (!parse_bool(val, v)) {
			snprintf(err, errlen, "%s: \"%s\" is not a boolean (true/false)", o->key, val);
			return false;
		}
		return true;
	}
	case OT_ENUM: {
		uint64_t *v = field(cfg, o->off);
		for (size_t i = 0; o->enums[i]; i++) {
			if (strcasecmp(val, o->enums[i]) == 0) {
				*v = i;
				return true;
			}
		}
		char list[256] = "";
		for (size_t i = 0; o->enums[i]; i++) {
			strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
			strncat(list, o->enums[i], sizeof(list) - strlen(list) - 1);
		}
		snprintf(err, errlen, "%s: \"%s\" is not one of %s", o->key, val, list);
		return false;
	}
	case OT_ZONE_LIST: {
		struct config_zone *v = field(cfg, o->off);
		if (*n >= CONFIG_MAX_ZONES) {
			snprintf(err, errlen, "%s: more than %d zones", o->key, CONFIG_MAX_ZONES);
			return false;
		}
		char why[400];
		if (!config_parse_zone(val, &v[*n], why, sizeof(why))) {
			snprintf(err, errlen, "%s: %s", o->key, why);
			return false;
		}
		for (size_t i = 0; i < *n; i++) {
			if (strcmp(v[i].name, v[*n].name) == 0) {
				snprintf(err, errlen, "%s: zone \"%s\" is given twice", o->key,
				    *v[i].name ? v[i].name : ".");
				return false;
			}
		}
		(*n)++;
		return true;
	}
	case OT_FLAG_ONLY:
		return true;
	}
	return false;
}

static bool
is_list(const struct option_def *o)
{
	return o->type == OT_ADDRPORT_LIST || o->type == OT_STR_LIST || o->type == OT_CIDR_LIST ||
	    o->type == OT_ZONE_LIST;
}

static bool
apply_default(struct config *cfg, const struct option_def *o)
{
	char err[256];
	if (o->type == OT_FLAG_ONLY)
		return true;
	if (!is_list(o))
		return set_value(cfg, o, o->def, err, sizeof(err));
	list_clear(cfg, o);
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", o->def);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!set_value(cfg, o, tok, err, sizeof(err)))
			return false;
	return true;
}

static const struct option_def *
find_key(const char *key)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].type != OT_FLAG_ONLY && strcmp(options[i].key, key) == 0)
			return &options[i];
	return NULL;
}

static bool
has_prefix_key(const char *prefix)
{
	size_t l = strlen(prefix);
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strncmp(options[i].key, prefix, l) == 0 && options[i].key[l] == '.')
			return true;
	return false;
}

/* --- YAML file ---------------------------------------------------------- */

#define CONFIG_MAX_FILE (1024 * 1024)

static bool
yerr(FILE *errf, const char *file, const yaml_node_t *n, const char *msg)
{
	fprintf(errf, "error: %s:%zu:%zu: %s\n", file, n->start_mark.line + 1, n->start_mark.column + 1, msg);
	return false;
}

static bool load_mapping(struct config *cfg, yaml_document_t *doc, yaml_node_t *map, const char *prefix,
    const char *file, FILE *errf);

/* {zone: Z, upstreams: [A, B]} -> "Z=A,B" (the flag's form). */
static bool
zone_item_text(yaml_document_t *doc, yaml_node_t *m, char *out, size_t cap, char *err, size_t errlen,
    yaml_node_t **bad)
{
	*bad = m;
	const char *zone = NULL;
	char ups[900] = "";
	bool have_ups = false;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
			snprintf(err, errlen, "forward_zones: keys must be plain strings");
			return false;
		}
		*bad = k;
		const char *key = (const char *)k->data.scalar.value;
		if (strcmp(key, "zone") == 0 && v->type == YAML_SCALAR_NODE) {
			zone = (const char *)v->data.scalar.value;
		} else if (strcmp(key, "upstreams") == 0 && v->type == YAML_SEQUENCE_NODE) {
			have_ups = true;
			for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
				yaml_node_t *e = yaml_document_get_node(doc, *it);
				if (e == NULL || e->type != YAML_SCALAR_NODE) {
					*bad = e ? e : v;
					snprintf(err, errlen, "forward_zones: upstreams must be plain values");
					return false;
				}
				size_t l = strlen(ups);
				snprintf(ups + l, sizeof(ups) - l, "%s%s", l ? "," : "", (const char *)e->data.scalar.value);
			}
		} else if (strcmp(key, "upstreams") == 0 && v->type == YAML_SCALAR_NODE) {
			have_ups = true;
			snprintf(ups, sizeof(ups), "%s", (const char *)v->data.scalar.value);
		} else {
			snprintf(err, errlen, "forward_zones: unknown key \"%s\" (a zone has zone: and upstreams:)", key);
			return false;
		}
	}
	*bad = m;
	if (zone == NULL || !have_ups) {
		snprintf(err, errlen, "forward_zones: each item needs zone: and upstreams:");
		return false;
	}
	snprintf(out, cap, "%s=%s", zone, ups);
	return true;
}

static bool
load_value(struct config *cfg, yaml_document_t *doc, const struct option_def *o, yaml_node_t *v,
    const char *file, FILE *errf)
{
	char err[512];
	if (v->type == YAML_SEQUENCE_NODE) {
		if (!is_list(o))
			return yerr(errf, file, v, (snprintf(err, sizeof(err), "%s: expected a single value, not a list",
			    o->key), err));
		list_clear(cfg, o);
		for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
			yaml_node_t *e = yaml_document_get_node(doc, *it);
			if (e != NULL && e->type == YAML_MAPPING_NODE && o->type == OT_ZONE_LIST) {
				char zs[1024];
				yaml_node_t *bad;
				if (!zone_item_text(doc, e, zs, sizeof(zs), err, sizeof(err), &bad))
					return yerr(errf, file, bad, err);
				if (!set_value(cfg, o, zs, err, sizeof(err)))
					return yerr(errf, file, e, err);
				continue;
			}
			if (e == NULL || e->type != YAML_SCALAR_NODE)
				return yerr(errf, file, e ? e : v, (snprintf(err, sizeof(err),
				    "%s: list items must be plain values", o->key), err));
			if (!set_value(cfg, o, (const char *)e->data.scalar.value, err, sizeof(err)))
				return yerr(errf, file, e, err);
		}
		return true;
	}
	if (v->type != YAML_SCALAR_NODE)
		return yerr(errf, file, v, (snprintf(err, sizeof(err), "%s: expected a value, not a mapping", o->key), err));
	const char *s = (const char *)v->data.scalar.value;
	if (is_list(o)) {
		list_clear(cfg, o);
		/* a bare empty value (or ~) means "no values" */
		if (*s == '\0' || (strcmp(s, "~") == 0 && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
			return true;
	}
	if (!set_value(cfg, o, s, err, sizeof(err)))
		return yerr(errf, file, v, err);
	return true;
}

static bool
load_mapping(struct config *cfg, yaml_document_t *doc, yaml_node_t *map, const char *prefix,
    const char *file, FILE *errf)
{
	char err[512];
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		if (k == NULL || v == NULL)
			continue;
		if (k->type != YAML_SCALAR_NODE)
			return yerr(errf, file, k, "keys must be plain strings");
		/* a key given twice: YAML leaves it to us, and the last one
		 * silently winning hides a mistake. Quadratic in the pairs read
		 * so far, which are known keys (the first unknown one stops the
		 * load): at most a few dozen. */
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *qk = yaml_document_get_node(doc, q->key);
			if (qk != NULL && qk->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)qk->data.scalar.value, (const char *)k->data.scalar.value) == 0) {
				snprintf(err, sizeof(err), "duplicate key \"%s%s%s\" (first at line %zu)", prefix,
				    *prefix ? "." : "", (const char *)k->data.scalar.value, qk->start_mark.line + 1);
				return yerr(errf, file, k, err);
			}
		}
		char key[128];
		snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", (const char *)k->data.scalar.value);
		const struct option_def *o = find_key(key);
		if (o == NULL && v->type == YAML_MAPPING_NODE && has_prefix_key(key)) {
			if (!load_mapping(cfg, doc, v, key, file, errf))
				return false;
			continue;
		}
		if (o == NULL) {
			snprintf(err, sizeof(err), "unknown key \"%s\" (see sedns serve --help for the keys)", key);
			return yerr(errf, file, k, err);
		}
		if (!load_value(cfg, doc, o, v, file, errf))
			return false;
	}
	return true;
}

static bool
load_file(struct config *cfg, const char *file, FILE *errf)
{
	FILE *f = fopen(file, "rb");
	if (f == NULL) {
		fprintf(errf, "error: %s: cannot open: %s\n", file, strerror(errno));
		return false;
	}
	char *buf = malloc(CONFIG_MAX_FILE + 1);
	if (buf == NULL) {
		fclose(f);
		fprintf(errf, "error: %s: out of memory\n", file);
		return false;
	}
	size_t len = fread(buf, 1, CONFIG_MAX_FILE + 1, f);
	fclose(f);
	if (len > CONFIG_MAX_FILE) {
		free(buf);
		fprintf(errf, "error: %s: larger than %d bytes\n", file, CONFIG_MAX_FILE);
		return false;
	}
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	bool ok = false;
	if (!yaml_parser_load(&parser, &doc)) {
		fprintf(errf, "error: %s:%zu:%zu: %s\n", file, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
		    parser.problem ? parser.problem : "YAML syntax error");
		yaml_parser_delete(&parser);
		free(buf);
		return false;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		ok = true; /* empty file: all defaults */
	else if (root->type != YAML_MAPPING_NODE)
		ok = yerr(errf, file, root, "the config must be a mapping of key: value");
	else
		ok = load_mapping(cfg, &doc, root, "", file, errf);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	free(buf);
	return ok;
}

/* --- flags -------------------------------------------------------------- */

static const struct option_def *
find_flag(const char *arg, const char **inline_val)
{
	*inline_val = NULL;
	if (arg[0] != '-')
		return NULL;
	if (arg[1] != '-') {
		if (arg[1] == '\0' || arg[2] != '\0')
			return NULL;
		for (size_t i = 0; i < NOPTIONS; i++)
			if (options[i].shortflag == arg[1])
				return &options[i];
		return NULL;
	}
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t nl = eq ? (size_t)(eq - name) : strlen(name);
	for (size_t i = 0; i < NOPTIONS; i++) {
		if (strlen(options[i].flag) == nl && strncmp(options[i].flag, name, nl) == 0) {
			if (eq)
				*inline_val = eq + 1;
			return &options[i];
		}
	}
	return NULL;
}

static bool
validate(const struct config *cfg, FILE *errf)
{
	/* "error: FILE: key: ..." (no position: these span keys), or
	 * "error: key: ..." when there is no file */
	char where[4096 + 16];
	snprintf(where, sizeof(where), "error: %s%s", cfg->config_file ? cfg->config_file : "",
	    cfg->config_file ? ": " : "");
	if (cfg->nlisten == 0) {
		fprintf(errf, "%slisten: at least one address is needed\n", where);
		return false;
	}
	if (cfg->kube_in_cluster && cfg->kube_kubeconfig[0]) {
		fprintf(errf, "%s: kubernetes: in_cluster and kubeconfig both given; keep one\n", where);
		return false;
	}
	if (cfg->nserviceentries == 0 && !cfg->kube_in_cluster && cfg->kube_kubeconfig[0] == '\0')
		log_warnx("config: no serviceentries paths: every query will be forwarded");
	if (cfg->nallow_from == 0) {
		fprintf(errf, "%sallow_from: empty, nobody could query (use 0.0.0.0/0 and ::/0 deliberately)\n", where);
		return false;
	}
	if (cfg->cluster_domain[0] == '\0' || cfg->cluster_domain[0] == '.') {
		fprintf(errf, "%scluster_domain: \"%s\" is not a domain name\n", where, cfg->cluster_domain);
		return false;
	}
	for (size_t z = 0; z < cfg->nforward_zones; z++) {
		const struct config_zone *zn = &cfg->forward_zones[z];
		if (zn->name[0] == '\0' && cfg->nupstreams) {
			fprintf(errf, "%sforward_zones: zone \".\" and upstreams both give the default upstreams; "
			    "keep one\n", where);
			return false;
		}
		for (size_t i = 0; i < zn->nups; i++) {
			for (size_t j = 0; j < cfg->nlisten; j++) {
				if (netaddr_equal(&zn->ups[i].addr, &cfg->listen[j].addr) &&
				    zn->ups[i].port == cfg->listen[j].port) {
					char a[NETADDR_STRLEN];
					fprintf(errf, "%sforward_zones: zone \"%s\": %s port %u is one of our own listen "
					    "addresses; forwarding to ourselves would loop\n", where,
					    *zn->name ? zn->name : ".", netaddr_fmt(&zn->ups[i].addr, a, sizeof(a)),
					    zn->ups[i].port);
					return false;
				}
			}
		}
	}
	for (size_t i = 0; i < cfg->nupstreams; i++) {
		for (size_t j = 0; j < cfg->nlisten; j++) {
			if (netaddr_equal(&cfg->upstreams[i].addr, &cfg->listen[j].addr) &&
			    cfg->upstreams[i].port == cfg->listen[j].port) {
				char a[NETADDR_STRLEN];
				fprintf(errf, "%supstreams: %s port %u is one of our own listen addresses; "
				    "forwarding to ourselves would loop\n", where,
				    netaddr_fmt(&cfg->upstreams[i].addr, a, sizeof(a)), cfg->upstreams[i].port);
				return false;
			}
		}
	}
	return true;
}

struct config *
config_load(int argc, char **argv, FILE *errf, char ***rest, int *nrest, bool *help_out)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		fprintf(errf, "error: out of memory\n");
		return NULL;
	}
	if (help_out)
		*help_out = false;
	for (size_t i = 0; i < NOPTIONS; i++) {
		if (!apply_default(cfg, &options[i])) {
			fprintf(errf, "error: internal error: bad default for %s\n", options[i].key);
			config_free(cfg);
			return NULL;
		}
	}
	/* Pass 1: -c/--config and --help, so the file is read before flags. */
	for (int i = 0; i < argc; i++) {
		const char *iv;
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			if (help_out)
				*help_out = true;
			config_free(cfg);
			return NULL;
		}
		const struct option_def *o = find_flag(argv[i], &iv);
		if (o == NULL)
			continue;
		if (o->type == OT_FLAG_ONLY) {
			const char *v = iv ? iv : (i + 1 < argc ? argv[++i] : NULL);
			if (v == NULL) {
				fprintf(errf, "error: --config needs a FILE\n");
				config_free(cfg);
				return NULL;
			}
			free(cfg->config_file);
			cfg->config_file = strdup(v);
		} else if (!iv && o->type != OT_BOOL) {
			i++;
		}
	}
	/* no -c: $SEDNS_CONFIG, so that one export serves every command (the
	 * source tree's config after make run, /etc/sedns/sedns.yaml on a node) */
	bool from_env = false;
	const char *env = getenv(CONFIG_ENV);
	if (cfg->config_file == NULL && env != NULL && *env != '\0') {
		if ((cfg->config_file = strdup(env)) == NULL) {
			fprintf(errf, "error: out of memory\n");
			config_free(cfg);
			return NULL;
		}
		from_env = true;
	}
	if (cfg->config_file && !load_file(cfg, cfg->config_file, errf)) {
		if (from_env)
			fprintf(errf, "error: %s came from %s=%s (pass -c FILE, or unset it, to read another)\n",
			    cfg->config_file, CONFIG_ENV, env);
		config_free(cfg);
		return NULL;
	}
	/* Pass 2: flags; the first use of a list flag replaces the file's list. */
	bool touched[NOPTIONS] = { false };
	int npos = 0;
	bool only_pos = false;
	for (int i = 0; i < argc; i++) {
		const char *iv = NULL, *a = argv[i];
		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		const struct option_def *o = only_pos ? NULL : find_flag(a, &iv);
		if (o == NULL) {
			if (!only_pos && a[0] == '-' && a[1] != '\0') {
				fprintf(errf, "error: unknown option %s (see --help)\n", a);
				goto fail;
			}
			if (rest == NULL) {
				fprintf(errf, "error: unexpected argument \"%s\"\n", a);
				goto fail;
			}
			argv[npos++] = argv[i];
			continue;
		}
		const char *val = iv;
		if (o->type == OT_FLAG_ONLY) {
			if (!iv)
				i++;
			continue;
		}
		if (val == NULL) {
			/* a bare boolean flag is true; a word after it that is
			 * not a boolean is a mistake, not a stray argument, unless
			 * the command takes arguments (check PATH...) */
			if (o->type == OT_BOOL && rest == NULL && i + 1 < argc && argv[i + 1][0] != '-' &&
			    !parse_bool(argv[i + 1], &(bool){ false })) {
				fprintf(errf, "error: --%s: \"%s\" is not a boolean (true/false, yes/no, on/off, 1/0)\n",
				    o->flag, argv[i + 1]);
				goto fail;
			}
			if (o->type == OT_BOOL && (i + 1 >= argc || argv[i + 1][0] == '-' ||
			    !parse_bool(argv[i + 1], &(bool){ false }))) {
				val = "true";
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				fprintf(errf, "error: --%s needs a value (%s)\n", o->flag, o->arg);
				goto fail;
			}
		}
		size_t idx = (size_t)(o - options);
		if (is_list(o) && !touched[idx])
			list_clear(cfg, o);
		touched[idx] = true;
		char err[512];
		if (!set_value(cfg, o, val, err, sizeof(err))) {
			fprintf(errf, "error: --%s: %s\n", o->flag, strchr(err, ':') ? strchr(err, ':') + 2 : err);
			goto fail;
		}
	}
	if (rest) {
		*rest = argv;
		*nrest = npos;
	}
	if (cfg->rules_format == RULES_FMT_AUTO) {
		cfg->rules_format = (uint64_t)config_auto_format(NULL);
		cfg->rules_format_auto = true;
	}
	if (cfg->rules_file[0] == '\0') {
		char buf[4096];
		snprintf(buf, sizeof(buf), "%s/rules.%s", cfg->state_dir, rules_formats[cfg->rules_format]);
		free(cfg->rules_file);
		cfg->rules_file = strdup(buf);
	}
	if (!validate(cfg, errf))
		goto fail;
	/* the caller decides when a new config's log level takes effect */
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option_def *o = &options[i];
		if (o->type == OT_STR_LIST)
			list_clear(cfg, o);
		else if (o->type == OT_STR || o->type == OT_LISTEN_STR)
			free(*(char **)field(cfg, o->off));
	}
	free(cfg->config_file);
	free(cfg);
}

/* A YAML double-quoted scalar that loads back as s. */
static void
print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void
print_value(const struct config *cfg, const struct option_def *o, FILE *out)
{
	struct config *c = (struct config *)(uintptr_t)cfg;
	char buf[NETPREFIX_STRLEN];
	switch (o->type) {
	case OT_ADDRPORT_LIST: {
		size_t n = *(size_t *)field(c, o->count_off);
		struct config_endpoint *v = field(c, o->off);
		fprintf(out, n ? "\n" : " []\n");
		for (size_t i = 0; i < n; i++) {
			netaddr_fmt(&v[i].addr, buf, sizeof(buf));
			if (v[i].addr.family == AF_INET6)
				fprintf(out, "  - \"[%s]:%u\"\n", buf, v[i].port);
			else
				fprintf(out, "  - \"%s:%u\"\n", buf, v[i].port);
		}
		break;
	}
	case OT_STR_LIST: {
		size_t n = *(size_t *)field(c, o->count_off);
		char **v = field(c, o->off);
		fprintf(out, n ? "\n" : " []\n");
		for (size_t i = 0; i < n; i++)
		{
			fprintf(out, "  - ");
			print_quoted(out, v[i]);
			fputc('\n', out);
		}
		break;
	}
	case OT_CIDR_LIST: {
		size_t n = *(size_t *)field(c, o->count_off);
		struct netprefix *v = field(c, o->off);
		fprintf(out, n ? "\n" : " []\n");
		for (size_t i = 0; i < n; i++)
			fprintf(out, "  - \"%s\"\n", netprefix_fmt(&v[i], buf, sizeof(buf)));
		break;
	}
	case OT_ZONE_LIST: {
		size_t n = *(size_t *)field(c, o->count_off);
		struct config_zone *v = field(c, o->off);
		fprintf(out, n ? "\n" : " []\n");
		for (size_t i = 0; i < n; i++) {
			fprintf(out, "  - zone: \"%s\"\n    upstreams:\n", *v[i].name ? v[i].name : ".");
			for (size_t k = 0; k < v[i].nups; k++) {
				netaddr_fmt(&v[i].ups[k].addr, buf, sizeof(buf));
				fprintf(out, v[i].ups[k].addr.family == AF_INET6 ? "      - \"[%s]:%u\"\n" :
				    "      - \"%s:%u\"\n", buf, v[i].ups[k].port);
			}
		}
		break;
	}
	case OT_STR:
	case OT_LISTEN_STR:
		fputc(' ', out);
		print_quoted(out, *(char **)field(c, o->off));
		fputc('\n', out);
		break;
	case OT_UINT:
		fprintf(out, " %llu\n", (unsigned long long)*(uint64_t *)field(c, o->off));
		break;
	case OT_DURATION:
		fprintf(out, " %s\n", config_format_duration(*(uint64_t *)field(c, o->off), buf, sizeof(buf)));
		break;
	case OT_CIDR:
		fprintf(out, " \"%s\"\n", netprefix_fmt(field(c, o->off), buf, sizeof(buf)));
		break;
	case OT_CIDR_OPT:
		if (*(bool *)field(c, o->presence_off))
			fprintf(out, " \"%s\"\n", netprefix_fmt(field(c, o->off), buf, sizeof(buf)));
		else
			fprintf(out, " \"\"\n");
		break;
	case OT_BOOL:
		fprintf(out, " %s\n", *(bool *)field(c, o->off) ? "true" : "false");
		break;
	case OT_ENUM:
		fprintf(out, " %s\n", o->enums[*(uint64_t *)field(c, o->off)]);
		break;
	case OT_FLAG_ONLY:
		break;
	}
}

void
config_print(const struct config *cfg, FILE *out)
{
	fprintf(out, "# effective sedns configuration%s%s\n", cfg->config_file ? " from " : "",
	    cfg->config_file ? cfg->config_file : "");
	const char *section = NULL;
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option_def *o = &options[i];
		if (o->type == OT_FLAG_ONLY)
			continue;
		const char *dot = strchr(o->key, '.');
		if (dot) {
			size_t sl = (size_t)(dot - o->key);
			if (section == NULL || strncmp(section, o->key, sl) != 0 || section[sl] != '.') {
				fprintf(out, "%.*s:\n", (int)sl, o->key);
				section = o->key;
			}
			fprintf(out, "  %s:", dot + 1);
			/* nested list items would need deeper indentation; rules.* has none */
		} else {
			section = NULL;
			fprintf(out, "%s:", o->key);
		}
		print_value(cfg, o, out);
	}
}

void
config_usage(FILE *out)
{
	fprintf(out, "Options (flag / config key, default):\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option_def *o = &options[i];
		char lhs[96];
		if (o->shortflag)
			snprintf(lhs, sizeof(lhs), "-%c, --%s %s", o->shortflag, o->flag, o->arg);
		else
			snprintf(lhs, sizeof(lhs), "    --%s %s", o->flag, o->arg);
		fprintf(out, "  %-38s %s\n", lhs, o->help);
		if (o->type == OT_FLAG_ONLY)
			continue;
		fprintf(out, "  %-38s key: %s, default: %s\n", "", o->key, *o->def ? o->def : "(empty)");
	}
}
