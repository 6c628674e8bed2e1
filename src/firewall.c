/* firewall — see include/firewall.h. */
#include "firewall.h"

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

char *
firewall_add_stale_deletions(const char *payload, const char *const *existing, size_t nexisting)
{
	const char *nat = strstr(payload, "*nat\n");
	const char *commit = nat ? strstr(nat, "\nCOMMIT\n") : NULL;
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
	/* declarations go right after "*nat\n", deletions right before COMMIT */
	size_t head = (size_t)(nat - payload) + 5;
	append(&buf, &len, &cap, payload, head);
	for (size_t i = 0; i < nexisting; i++) {
		if (!stale[i])
			continue;
		append(&buf, &len, &cap, ":", 1);
		append(&buf, &len, &cap, existing[i], strlen(existing[i]));
		append(&buf, &len, &cap, " - [0:0]\n", 9);
	}
	size_t mid = (size_t)(commit - payload) + 1;
	append(&buf, &len, &cap, payload + head, mid - head);
	for (size_t i = 0; i < nexisting; i++) {
		if (!stale[i])
			continue;
		append(&buf, &len, &cap, "-X ", 3);
		append(&buf, &len, &cap, existing[i], strlen(existing[i]));
		append(&buf, &len, &cap, "\n", 1);
	}
	append(&buf, &len, &cap, payload + mid, strlen(payload + mid));
	free(stale);
	free(decl);
	free(copy);
	return buf;
}

/* SEDNS chains in a table, from iptables-save. */
static size_t
list_chains(const char *table, char **names, size_t max)
{
	char *const argv[] = { (char *)"iptables-save", (char *)"-t", (char *)table, NULL };
	char *out = NULL, err[256];
	if (firewall_run(argv, NULL, 0, &out, err, sizeof(err)) != 0 || out == NULL) {
		free(out);
		return 0;
	}
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] != ':')
			continue;
		char *sp = strchr(line, ' ');
		if (sp)
			*sp = '\0';
		if (rules_is_own_chain(line + 1))
			names[n++] = strdup(line + 1);
	}
	free(out);
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

bool
firewall_apply(int format, const char *payload, size_t len, bool masquerade, const char *pool, char *err,
    size_t errlen)
{
	if (format == RULES_FMT_NFT) {
		char *const argv[] = { (char *)"nft", (char *)"-f", (char *)"-", NULL };
		return firewall_run(argv, payload, len, NULL, err, errlen) == 0;
	}
	char **existing = calloc(MAX_CHAINS, sizeof(*existing));
	if (existing == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	if (!masquerade) {
		/* masquerade was switched off: its chain is about to be deleted
		 * as stale, which the kernel refuses while POSTROUTING jumps in */
		for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++)
			if (jumps[i].masq_only)
				jump_remove_all(&jumps[i], pool);
	}
	size_t n = list_chains("nat", existing, MAX_CHAINS);
	char *full = firewall_add_stale_deletions(payload, (const char *const *)existing, n);
	for (size_t i = 0; i < n; i++)
		free(existing[i]);
	free(existing);
	if (full == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	char *const argv[] = { (char *)"iptables-restore", (char *)"-w", (char *)"5", (char *)"--noflush", NULL };
	int rc = firewall_run(argv, full, strlen(full), NULL, err, errlen);
	free(full);
	if (rc != 0)
		return false;
	for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
		const struct jump *j = &jumps[i];
		if (j->masq_only && !masquerade)
			continue;
		char e2[256];
		if (jump_cmd(j, "-C", pool, e2, sizeof(e2)) != 0 && jump_cmd(j, "-I", pool, err, errlen) != 0)
			return false;
		/* an unguarded jump of an older version: every packet would
		 * still walk the chain */
		for (int k = 0; j->to_pool && pool && k < 16 && jump_cmd(j, "-C", NULL, e2, sizeof(e2)) == 0; k++)
			jump_cmd(j, "-D", NULL, e2, sizeof(e2));
	}
	return true;
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
	size_t n = list_chains("nat", existing, MAX_CHAINS);
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
