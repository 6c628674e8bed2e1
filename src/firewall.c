/* firewall — see include/firewall.h. */
#include "firewall.h"
#include "fnv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rules.h"

/* Growable text; on out of memory the buffer is dropped and every later
 * append is a no-op (cap = SIZE_MAX marks it), so callers check once. */
static void
append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (*cap == SIZE_MAX)
		return;
	if (*len + n + 1 > *cap) {
		size_t nc = (*cap ? *cap : 4096);
		while (nc < *len + n + 1)
			nc *= 2;
		char *nb = realloc(*buf, nc);
		if (nb == NULL) {
			free(*buf);
			*buf = NULL;
			*len = 0;
			*cap = SIZE_MAX;
			return;
		}
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static unsigned run_timeout_s = FIREWALL_TIMEOUT_S;

void
firewall_set_timeout(unsigned seconds)
{
	run_timeout_s = seconds ? seconds : FIREWALL_TIMEOUT_S;
}

int
firewall_run(char *const argv[], const char *in, size_t inlen, char **out, char *err, size_t errlen)
{
	int pin[2], pout[2], perr[2];
	if (err && errlen)
		err[0] = '\0';
	if (out)
		*out = NULL;
	if (pipe2(pin, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pout, O_CLOEXEC) < 0) {
		close(pin[0]);
		close(pin[1]);
		return -1;
	}
	if (pipe2(perr, O_CLOEXEC) < 0) {
		close(pin[0]);
		close(pin[1]);
		close(pout[0]);
		close(pout[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		if (err && errlen)
			snprintf(err, errlen, "fork: %s", strerror(errno));
		int fds[] = { pin[0], pin[1], pout[0], pout[1], perr[0], perr[1] };
		for (size_t i = 0; i < 6; i++)
			close(fds[i]);
		return -1;
	}
	if (pid == 0) {
		/* a pipe end that already is 0/1/2 (the daemon started with
		 * stdio closed) only needs its close-on-exec flag cleared */
		int from[3] = { pin[0], pout[1], perr[1] };
		for (int k = 0; k < 3; k++) {
			if (from[k] == k)
				fcntl(k, F_SETFD, 0);
			else
				dup2(from[k], k);
		}
		/* the tool gets its three pipes and nothing else of ours */
		close_range(3, ~0U, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	size_t off = 0;
	if (in == NULL || inlen == 0) {
		close(pin[1]);
		pin[1] = -1;
	}
	char *obuf = NULL;
	size_t olen = 0, ocap = 0, elen = 0;
	time_t deadline = time(NULL) + (time_t)run_timeout_s;
	bool out_open = true, err_open = true;
	bool timed_out = false;
	while (out_open || err_open || pin[1] >= 0) {
		struct pollfd p[3];
		int np = 0;
		int iin = -1, iout = -1, ierr = -1;
		if (pin[1] >= 0) {
			p[np] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
			iin = np++;
		}
		if (out_open) {
			p[np] = (struct pollfd){ .fd = pout[0], .events = POLLIN };
			iout = np++;
		}
		if (err_open) {
			p[np] = (struct pollfd){ .fd = perr[0], .events = POLLIN };
			ierr = np++;
		}
		int left = (int)(deadline - time(NULL));
		if (left <= 0 || poll(p, (nfds_t)np, left * 1000) == 0) {
			timed_out = true;
			break;
		}
		if (iin >= 0 && (p[iin].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(pin[1], in + off, inlen - off);
			if (w > 0)
				off += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				off = inlen; /* the child stopped reading: let it report */
			if (off >= inlen) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
		char buf[8192];
		if (iout >= 0 && (p[iout].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = read(pout[0], buf, sizeof(buf));
			if (r <= 0)
				out_open = false;
			else if (out)
				append(&obuf, &olen, &ocap, buf, (size_t)r);
		}
		if (ierr >= 0 && (p[ierr].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = read(perr[0], buf, sizeof(buf));
			if (r <= 0) {
				err_open = false;
			} else if (err && elen + 1 < errlen) {
				size_t k = (size_t)r < errlen - elen - 1 ? (size_t)r : errlen - elen - 1;
				memcpy(err + elen, buf, k);
				elen += k;
				err[elen] = '\0';
			}
		}
	}
	if (pin[1] >= 0)
		close(pin[1]);
	close(pout[0]);
	close(perr[0]);
	if (timed_out) {
		kill(pid, SIGKILL);
		if (err && errlen)
			snprintf(err, errlen, "%s timed out after %us (rules.apply_timeout)", argv[0], run_timeout_s);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (out)
		*out = obuf;
	else
		free(obuf);
	if (timed_out)
		return -1;
	/* trim a trailing newline for one-line log messages */
	while (err && elen > 0 && (err[elen - 1] == '\n' || err[elen - 1] == '\r'))
		err[--elen] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The chain names a payload declares (":NAME ..." lines), sorted; they
 * point into *copy, which the caller frees after the array. */
static char **
declared_chains(const char *payload, size_t *n, char **copy)
{
	*n = 0;
	*copy = strdup(payload);
	if (*copy == NULL)
		return NULL;
	size_t cap = 64;
	char **v = malloc(cap * sizeof(*v));
	if (v == NULL)
		return NULL;
	char *save = NULL;
	for (char *line = strtok_r(*copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] != ':')
			continue;
		char *sp = strchr(line, ' ');
		if (sp)
			*sp = '\0';
		if (*n == cap) {
			char **nv = realloc(v, cap * 2 * sizeof(*v));
			if (nv == NULL) {
				free(v);
				return NULL;
			}
			v = nv;
			cap *= 2;
		}
		v[(*n)++] = line + 1;
	}
	qsort(v, *n, sizeof(*v), cmp_strp);
	return v;
}

/* Appends the lines of text between [from, to) and returns to. */
static const char *
copy_span(char **buf, size_t *len, size_t *cap, const char *from, const char *to)
{
	append(buf, len, cap, from, (size_t)(to - from));
	return to;
}

/*
 * payload with, in its *nat section, a flush (declaration, right after
 * "*nat") and a -X (right before COMMIT) for every stale chain of
 * existing[], and natfix / filterfix (may be NULL) before the -X lines
 * of *nat and before the COMMIT of *filter.
 */
static char *
assemble_full(const char *payload, const char *const *existing, size_t nexisting, const char *natfix,
    const char *filterfix)
{
	const char *nat = strstr(payload, "*nat\n");
	const char *commit = nat ? strstr(nat, "\nCOMMIT\n") : NULL;
	const char *filter = strstr(payload, "*filter\n");
	const char *fcommit = filter ? strstr(filter, "\nCOMMIT\n") : NULL;
	char *buf = NULL, *copy = NULL;
	size_t len = 0, cap = 0, ndecl = 0;
	if (commit == NULL) {
		append(&buf, &len, &cap, payload, strlen(payload));
		return buf;
	}
	char **decl = declared_chains(payload, &ndecl, &copy);
	bool *stale = calloc(nexisting ? nexisting : 1, sizeof(*stale));
	if (decl == NULL || stale == NULL) {
		free(decl);
		free(copy);
		free(stale);
		return NULL;
	}
	/* bsearch: a payload can declare tens of thousands of chains */
	for (size_t i = 0; i < nexisting; i++)
		stale[i] = rules_is_own_chain(existing[i]) &&
		    bsearch(&existing[i], decl, ndecl, sizeof(*decl), cmp_strp) == NULL;
	const char *p = copy_span(&buf, &len, &cap, payload, nat + 5);
	for (size_t i = 0; i < nexisting; i++) {
		if (!stale[i])
			continue;
		append(&buf, &len, &cap, ":", 1);
		append(&buf, &len, &cap, existing[i], strlen(existing[i]));
		append(&buf, &len, &cap, " - [0:0]\n", 9);
	}
	p = copy_span(&buf, &len, &cap, p, commit + 1);
	if (natfix)
		append(&buf, &len, &cap, natfix, strlen(natfix));
	for (size_t i = 0; i < nexisting; i++) {
		if (!stale[i])
			continue;
		append(&buf, &len, &cap, "-X ", 3);
		append(&buf, &len, &cap, existing[i], strlen(existing[i]));
		append(&buf, &len, &cap, "\n", 1);
	}
	if (fcommit && fcommit > p && filterfix) {
		p = copy_span(&buf, &len, &cap, p, fcommit + 1);
		append(&buf, &len, &cap, filterfix, strlen(filterfix));
	}
	append(&buf, &len, &cap, p, strlen(p));
	free(stale);
	free(decl);
	free(copy);
	return buf;
}

char *
firewall_add_stale_deletions(const char *payload, const char *const *existing, size_t nexisting)
{
	return assemble_full(payload, existing, nexisting, NULL, NULL);
}

/* iptables-save -t table: malloc'd text, or NULL. */
static char *
save_table(const char *table)
{
	char *const argv[] = { (char *)"iptables-save", (char *)"-t", (char *)table, NULL };
	char *out = NULL, err[256];
	if (firewall_run(argv, NULL, 0, &out, err, sizeof(err)) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* The SEDNS chains an iptables-save text declares (strdup'd names). */
static size_t
own_chains(const char *save_text, char **names, size_t max)
{
	size_t n = 0;
	for (const char *p = save_text; p && *p && n < max;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (p[0] == ':') {
			size_t k = 1;
			while (k < l && p[k] != ' ')
				k++;
			char name[RULES_CHAIN_MAX + 2];
			if (k - 1 < sizeof(name)) {
				memcpy(name, p + 1, k - 1);
				name[k - 1] = '\0';
				if (rules_is_own_chain(name))
					names[n++] = strdup(name);
			}
		}
		p = e ? e + 1 : p + l;
	}
	return n;
}

struct jump {
	const char *table, *chain, *target;
	bool masq_only;
	bool to_pool;               /* only packets to the VIP pool jump */
};

/* Only traffic to the VIP pool enters sedns's chains: every other packet
 * of the node passes the hooks with one rule each, not one per VIP. */
static const struct jump jumps[] = {
	{ "nat", "PREROUTING", RULES_CHAIN_SERVICES, false, true },
	{ "nat", "OUTPUT", RULES_CHAIN_SERVICES, false, true },
	{ "nat", "POSTROUTING", RULES_CHAIN_POSTROUTING, true, false },
	{ "filter", "INPUT", RULES_CHAIN_FILTER, false, true },
	{ "filter", "FORWARD", RULES_CHAIN_FILTER, false, true },
	{ "filter", "OUTPUT", RULES_CHAIN_FILTER, false, true },
};

/* dst NULL: the unguarded form (what versions before the guard
 * installed; removed on apply and cleanup). */
static int
jump_cmd(const struct jump *j, const char *op, const char *dst, char *err, size_t errlen)
{
	char *argv[16];
	int n = 0;
	argv[n++] = (char *)"iptables";
	argv[n++] = (char *)"-w";
	argv[n++] = (char *)"5";
	argv[n++] = (char *)"-t";
	argv[n++] = (char *)j->table;
	argv[n++] = (char *)op;
	argv[n++] = (char *)j->chain;
	if (j->to_pool && dst != NULL) {
		argv[n++] = (char *)"-d";
		argv[n++] = (char *)dst;
	}
	argv[n++] = (char *)"-m";
	argv[n++] = (char *)"comment";
	argv[n++] = (char *)"--comment";
	argv[n++] = (char *)"sedns";
	argv[n++] = (char *)"-j";
	argv[n++] = (char *)j->target;
	argv[n] = NULL;
	return firewall_run(argv, NULL, 0, NULL, err, errlen);
}

/* Deletes every copy of a jump, guarded (dst) and unguarded. */
static void
jump_remove_all(const struct jump *j, const char *dst)
{
	char e2[256];
	for (int k = 0; k < 16 && jump_cmd(j, "-C", NULL, e2, sizeof(e2)) == 0; k++)
		jump_cmd(j, "-D", NULL, e2, sizeof(e2));
	for (int k = 0; dst && j->to_pool && k < 16 && jump_cmd(j, "-C", dst, e2, sizeof(e2)) == 0; k++)
		jump_cmd(j, "-D", dst, e2, sizeof(e2));
}

#define MAX_CHAINS 200000

/* How many lines of save_text are exactly line. */
static size_t
count_lines(const char *save_text, const char *line)
{
	size_t n = 0, l = strlen(line);
	for (const char *p = save_text; p && (p = strstr(p, line)) != NULL; p += l)
		if ((p == save_text || p[-1] == '\n') && (p[l] == '\n' || p[l] == '\0'))
			n++;
	return n;
}

void
firewall_jump_fixes(const char *table, const char *save_text, bool masquerade, const char *pool,
    struct rules_buf *out)
{
	for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
		const struct jump *j = &jumps[i];
		if (strcmp(j->table, table) != 0)
			continue;
		bool guarded = j->to_pool && pool != NULL;
		char want[320], bare[128];
		snprintf(bare, sizeof(bare), "-m comment --comment sedns -j %s", j->target);
		if (guarded)
			snprintf(want, sizeof(want), "-d %s %s", pool, bare);
		else
			snprintf(want, sizeof(want), "%s", bare);
		char wline[400], bline[200];
		snprintf(wline, sizeof(wline), "-A %s %s", j->chain, want);
		snprintf(bline, sizeof(bline), "-A %s %s", j->chain, bare);
		size_t have = count_lines(save_text, wline);
		size_t keep = j->masq_only && !masquerade ? 0 : 1;
		if (keep && have == 0)
			rules_buf_printf(out, "-I %s 1 %s\n", j->chain, want);
		for (size_t k = keep; k < have; k++)
			rules_buf_printf(out, "-D %s %s\n", j->chain, want);
		/* the unguarded jump of older versions: every packet of the
		 * node would still walk the chain */
		for (size_t k = 0, n = guarded ? count_lines(save_text, bline) : 0; k < n; k++)
			rules_buf_printf(out, "-D %s %s\n", j->chain, bare);
	}
}

char *
firewall_full_payload(const char *payload, const char *nat_save, const char *filter_save, bool masquerade,
    const char *pool)
{
	char **existing = calloc(MAX_CHAINS, sizeof(*existing));
	struct rules_buf natfix = { 0 }, filterfix = { 0 };
	char *full = NULL;
	if (existing == NULL)
		return NULL;
	size_t n = own_chains(nat_save, existing, MAX_CHAINS);
	firewall_jump_fixes("nat", nat_save ? nat_save : "", masquerade, pool, &natfix);
	firewall_jump_fixes("filter", filter_save ? filter_save : "", masquerade, pool, &filterfix);
	if (!natfix.oom && !filterfix.oom)
		full = assemble_full(payload, (const char *const *)existing, n, natfix.data, filterfix.data);
	for (size_t i = 0; i < n; i++)
		free(existing[i]);
	free(existing);
	rules_buf_free(&natfix);
	rules_buf_free(&filterfix);
	return full;
}

/* No process per hook: at 10k services each "iptables -C" reads the
 * whole nat table. */
static bool
apply_iptables_full(const char *payload, bool masquerade, const char *pool, char *err, size_t errlen)
{
	char *nat = save_table("nat"), *filter = save_table("filter");
	char *full = firewall_full_payload(payload, nat, filter, masquerade, pool);
	free(nat);
	free(filter);
	if (full == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	char *const argv[] = { (char *)"iptables-restore", (char *)"-w", (char *)"5", (char *)"--noflush", NULL };
	bool ok = firewall_run(argv, full, strlen(full), NULL, err, errlen) == 0;
	free(full);
	return ok;
}

bool
firewall_apply(int format, const char *payload, size_t len, bool delta, bool masquerade, const char *pool,
    char *err, size_t errlen)
{
	if (format == RULES_FMT_NFT) {
		char *const argv[] = { (char *)"nft", (char *)"-f", (char *)"-", NULL };
		return firewall_run(argv, payload, len, NULL, err, errlen) == 0;
	}
	if (delta) {
		/* iptdiff's payload: the changed chains only, one transaction */
		char *const argv[] = { (char *)"iptables-restore", (char *)"-w", (char *)"5", (char *)"--noflush", NULL };
		return firewall_run(argv, payload, len, NULL, err, errlen) == 0;
	}
	return apply_iptables_full(payload, masquerade, pool, err, errlen);
}

bool
firewall_cleanup(int format, const char *pool, char *err, size_t errlen)
{
	struct rules_opts o;
	memset(&o, 0, sizeof(o));
	o.format = (enum rules_format)format;
	struct rules_buf b;
	memset(&b, 0, sizeof(b));
	if (format == RULES_FMT_NFT) {
		bool ok = rules_render_cleanup(&o, &b);
		char *const argv[] = { (char *)"nft", (char *)"-f", (char *)"-", NULL };
		ok = ok && firewall_run(argv, b.data, b.len, NULL, err, errlen) == 0;
		rules_buf_free(&b);
		return ok;
	}
	/* jumps first: a chain still referenced cannot be deleted */
	for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++)
		jump_remove_all(&jumps[i], pool);
	char **existing = calloc(MAX_CHAINS, sizeof(*existing));
	if (existing == NULL)
		return false;
	char *nat = save_table("nat");
	size_t n = own_chains(nat, existing, MAX_CHAINS);
	free(nat);
	o.existing_chains = (const char *const *)existing;
	o.nexisting = n;
	bool ok = rules_render_cleanup(&o, &b);
	char *const argv[] = { (char *)"iptables-restore", (char *)"-w", (char *)"5", (char *)"--noflush", NULL };
	ok = ok && firewall_run(argv, b.data, b.len, NULL, err, errlen) == 0;
	for (size_t i = 0; i < n; i++)
		free(existing[i]);
	free(existing);
	rules_buf_free(&b);
	return ok;
}

static int
line_cmp_qsort(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* one line of a listing: its bytes, then a newline as the separator */
static uint64_t
fnv_add(uint64_t h, const char *s, size_t n)
{
	return fnv64(fnv64(h, s, n), "\n", 1);
}

/* Copies line [p, p+n) without packet/byte counters ("[12:345]" in
 * iptables-save, "packets 12 bytes 345" in nft): they move with traffic. */
static size_t
strip_counters(const char *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap;) {
		if (p[i] == '[' && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9') {
			size_t k = i + 1;
			while (k < n && ((p[k] >= '0' && p[k] <= '9') || p[k] == ':'))
				k++;
			if (k < n && p[k] == ']') {
				i = k + 1;
				continue;
			}
		}
		const char *kw[] = { "packets ", "bytes " };
		bool skipped = false;
		for (size_t w = 0; w < 2; w++) {
			size_t kl = strlen(kw[w]);
			if (n - i > kl && memcmp(p + i, kw[w], kl) == 0 && p[i + kl] >= '0' && p[i + kl] <= '9') {
				i += kl;
				while (i < n && p[i] >= '0' && p[i] <= '9')
					i++;
				skipped = true;
				break;
			}
		}
		if (!skipped)
			out[o++] = p[i++];
	}
	out[o] = '\0';
	return o;
}

uint64_t
firewall_fingerprint_text(int format, const char *listing)
{
	uint64_t h = FNV64_INIT;
	size_t nlines = 0, cap = 0;
	char **lines = NULL;
	char buf[8192];
	bool oom = false;
	for (const char *p = listing ? listing : ""; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		/* iptables: only sedns's chains and the jumps into them; nft:
		 * the whole table */
		bool ours = format == RULES_FMT_NFT || memmem(p, l, "SEDNS", 5) != NULL;
		if (ours && l > 0) {
			/* a line too long for buf has no counters: taken whole */
			const char *src = p;
			size_t n = l;
			if (l < sizeof(buf)) {
				n = strip_counters(p, l, buf, sizeof(buf));
				src = buf;
			}
			if (format == RULES_FMT_NFT) {
				/* the kernel may list set elements and chains in
				 * another order than it was given them */
				if (nlines == cap) {
					size_t nc = cap ? cap * 2 : 256;
					char **nl = realloc(lines, nc * sizeof(*nl));
					if (nl == NULL) {
						oom = true;
						break;
					}
					lines = nl;
					cap = nc;
				}
				if ((lines[nlines] = strndup(src, n)) == NULL) {
					oom = true;
					break;
				}
				nlines++;
			} else {
				h = fnv_add(h, src, n);
			}
		}
		p += l + (e != NULL);
	}
	if (lines) {
		qsort(lines, nlines, sizeof(*lines), line_cmp_qsort);
		for (size_t i = 0; i < nlines; i++) {
			h = fnv_add(h, lines[i], strlen(lines[i]));
			free(lines[i]);
		}
		free(lines);
	}
	/* 0 is "no fingerprint": a partial listing must never match */
	return oom ? 0 : h == 0 ? 1 : h;
}

bool
firewall_fingerprint(int format, uint64_t *hash, char *err, size_t errlen)
{
	char *out = NULL;
	if (format == RULES_FMT_NFT) {
		char *const argv[] = { (char *)"nft", (char *)"list", (char *)"table", (char *)"ip",
			(char *)RULES_NFT_TABLE, NULL };
		if (firewall_run(argv, NULL, 0, &out, err, errlen) != 0) {
			free(out);
			return false;
		}
		*hash = firewall_fingerprint_text(format, out);
		free(out);
		if (*hash == 0 && err && errlen)
			snprintf(err, errlen, "out of memory hashing the listing");
		return *hash != 0;
	}
	char *nat = save_table("nat"), *filter = save_table("filter");
	bool ok = nat != NULL && filter != NULL;
	if (ok) {
		size_t a = strlen(nat), b = strlen(filter);
		out = malloc(a + b + 1);
		ok = out != NULL;
		if (ok) {
			memcpy(out, nat, a);
			memcpy(out + a, filter, b + 1);
			*hash = firewall_fingerprint_text(format, out);
			ok = *hash != 0;
		}
	} else if (err && errlen) {
		snprintf(err, errlen, "iptables-save failed");
	}
	free(out);
	free(nat);
	free(filter);
	return ok;
}

int
firewall_choose_format(bool nft_tool, bool nf_tables_kernel)
{
	return nft_tool && nf_tables_kernel ? RULES_FMT_NFT : RULES_FMT_IPTABLES;
}

static bool
tool_in_path(const char *tool, char *found, size_t len);

bool
firewall_tool_present(const char *tool)
{
	char found[4096];
	return tool_in_path(tool, found, sizeof(found));
}

static bool
tool_in_path(const char *tool, char *found, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s", path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (snprintf(found, len, "%s/%s", d, tool) < (int)len && access(found, X_OK) == 0)
			return true;
	}
	return false;
}

/* No process is started: this runs for every command that reads the
 * config, as any user. */
int
firewall_detect_format(char *why, size_t whylen)
{
	char nft[4096], ipt[4096], real[4096];
	bool have_nft = tool_in_path("nft", nft, sizeof(nft));
	bool kmod = access("/sys/module/nf_tables", F_OK) == 0;
	/* iptables-nft (Debian 11+, RHEL 8+) means the node already filters
	 * through nf_tables, loaded or not yet */
	bool ipt_nft = tool_in_path("iptables", ipt, sizeof(ipt)) && realpath(ipt, real) != NULL &&
	    strstr(real, "nft") != NULL;
	int f = firewall_choose_format(have_nft, kmod || ipt_nft);
	/* one log token: key=value parsers split on spaces */
	snprintf(why, whylen, "nft_tool:%s,nf_tables:%s", have_nft ? "installed" : "missing",
	    kmod ? "loaded" : ipt_nft ? "iptables-nft" : "absent");
	return f;
}

