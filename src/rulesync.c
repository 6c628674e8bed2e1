/* rulesync — see include/rulesync.h. */
#include "rulesync.h"

#include <errno.h>
#include <pthread.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bgjob.h"
#include "endpoints.h"
#include "firewall.h"
#include "fnv.h"
#include "log.h"
#include "monotime.h"
#include "registry.h"
#include "iptdiff.h"
#include "nftdiff.h"
#include "rules.h"

#define BACKOFF_MAX_MS 60000
#define FREE_BESIDE_BYTES (1u << 20)
#define RULESYNC_STOP_WAIT_MS 5000

enum child_kind { CHILD_APPLY, CHILD_FINGERPRINT };

struct rulesync {
	struct event_base *base;
	const struct config *cfg;
	struct endpoints *ep;
	const struct registry *reg;
	bool dirty;
	bool paused;                /* another daemon owns the rules for now */
	bool force;                 /* apply even if the text did not change */
	struct event *timer;
	double last_start;          /* monotime_now() of the last sync */
	bool started_once;
	/* The last successful apply, as a fingerprint; its text only where a
	 * delta needs it (apply on): at 50k services the iptables
	 * text is ~60 MB that nothing reads. */
	bool have_applied;
	uint64_t applied_hash;
	size_t applied_len;
	char *applied;              /* text, or NULL */
	char *pending_text;         /* text the running child applies, kept
	                               when it becomes applied */
	uint64_t pending_hash;
	size_t pending_len;
	bool pending_full;          /* ... whole, not as a delta */
	char pending_mode[160];     /* for the log line */
	struct event *resync;       /* periodic full apply */
	struct render_job *job;     /* a render in flight on renderer */
	struct bgjob *renderer;
	pid_t child;
	int child_fd;
	struct event *child_ev;
	char child_err[4096];
	size_t child_errlen;
	uint64_t backoff_ms;
	struct netaddr *held;
	size_t nheld;
	double first_mark;          /* monotime_now() of the first mark */
	bool try_adopt;             /* first sync: the kernel may already hold
	                               what the previous process applied */
	bool have_kernel_fp;        /* the kernel's fingerprint, taken after the
	                               last successful apply (or at adoption) */
	enum child_kind child_kind;
	struct event *fp_timer;
	double fp_start;
	uint64_t kernel_fp;
	time_t last_full;           /* wall time of the last full apply (kept
	                               across restarts in the mark) */
	struct rulesync_stats st;
};

#define KERNEL_MARK_MAX 256
#define KERNEL_MARK_SUFFIX ".kernel"
#define KERNEL_LIST_TIMEOUT_S 20
#define KERNEL_FP_IDLE_MS 1000          /* after an apply, before listing */
#define KERNEL_STOP_LIST_TIMEOUT_S 5    /* within systemd's stop timeout */

static uint64_t text_hash(const char *t, size_t n);

/* What else the kernel's rules depend on beyond the text: the iptables
 * hook jumps (fixed only by a full apply) follow masquerade and the pool. */
static uint64_t
opts_hash(const struct config *cfg)
{
	char pool[NETPREFIX_STRLEN], s[160];
	netprefix_fmt(&cfg->vip_pool, pool, sizeof(pool));
	int n = snprintf(s, sizeof(s), "%llu %d %llu %s", (unsigned long long)cfg->rules_format,
	    cfg->rules_masquerade ? 1 : 0, (unsigned long long)cfg->rules_masq_mark, pool);
	return text_hash(s, (size_t)n);
}

static bool
mark_path(const char *rules_file, char *out, size_t len)
{
	return snprintf(out, len, "%s" KERNEL_MARK_SUFFIX, rules_file) < (int)len;
}

/* Recorded at a clean stop, only when the last apply succeeded, nothing
 * ran after it, and the kernel still holds what that apply left (its
 * fingerprint, taken by the apply child right after the apply, equals a
 * fresh one: a change by hand or by another tool during the run is never
 * adopted): the rules options, the kernel's fingerprint, the hash and
 * length of the applied text (which is the rules file), and the time of the
 * last full apply (the next process keeps the resync schedule). Removed
 * before every apply, so a crash mid-apply leaves none. */
static void
kernel_mark_write(const struct config *cfg, const char *text, size_t len, bool have_fp, uint64_t applied_fp,
    time_t last_full)
{
	char path[4200], err[256];
	uint64_t k;
	if (!mark_path(cfg->rules_file, path, sizeof(path)))
		return;
	unlink(path);
	if (!have_fp) {
		log_debug("rules: no fingerprint of the last apply; the next start applies in full");
		return;
	}
	double t0 = monotime_now();
	firewall_set_timeout(KERNEL_STOP_LIST_TIMEOUT_S);
	if (!firewall_fingerprint((int)cfg->rules_format, &k, err, sizeof(err))) {
		log_warnx("rules: cannot list the kernel's rules at stop (%s); the next start applies in full", err);
		return;
	}
	if (k != applied_fp) {
		log_warnx("rules: the kernel's rules changed since the last apply (by hand or by another tool); the next "
		    "start applies in full");
		return;
	}
	char line[KERNEL_MARK_MAX];
	int n = snprintf(line, sizeof(line),
	    "sedns-kernel 2 opts=%016llx kernel=%016llx text=%016llx len=%zu full=%lld\n",
	    (unsigned long long)opts_hash(cfg), (unsigned long long)k,
	    (unsigned long long)text_hash(text, len), len, (long long)last_full);
	if (!rulesync_write_atomic(path, line, (size_t)n))
		log_warn("rules: cannot write %s", path);
	else
		log_debug("rules: kernel fingerprint recorded in %s (%.0f ms)", path, (monotime_now() - t0) * 1000);
}

static void
kernel_mark_remove(const char *rules_file)
{
	char path[4200];
	if (mark_path(rules_file, path, sizeof(path)))
		unlink(path);
}

/* Reads a whole file (the rules file: tens of MB at 50k services). */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (cap - n < 65536) {
			size_t nc = cap ? cap * 2 : 1 << 20;
			char *nb = realloc(buf, nc + 1);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = nc;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/*
 * On the render thread, first sync only: the text the previous process
 * applied, when the kernel verifiably still holds exactly it (the kernel's
 * fingerprint now equals the one recorded at its stop, and the rules file
 * is the text recorded). NULL otherwise; why says which check failed.
 */
static char *
kernel_adopt(int format, uint64_t opts, const char *rules_file, size_t *len, uint64_t *hash, uint64_t *kfp,
    time_t *last_full, char *why, size_t whylen)
{
	char path[4200], line[KERNEL_MARK_MAX], err[256];
	snprintf(why, whylen, "no fingerprint from a clean stop");
	if (!mark_path(rules_file, path, sizeof(path)))
		return NULL;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return NULL;
	bool got = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	unsigned long long o, k, th;
	size_t tl;
	long long full;
	if (!got || sscanf(line, "sedns-kernel 2 opts=%llx kernel=%llx text=%llx len=%zu full=%lld", &o, &k, &th, &tl,
	    &full) != 5) {
		snprintf(why, whylen, "%.200s is not a fingerprint", path);
		return NULL;
	}
	if (o != (unsigned long long)opts) {
		snprintf(why, whylen, "rules options changed since the last stop");
		return NULL;
	}
	size_t n = 0;
	char *text = slurp(rules_file, &n);
	if (text == NULL || n != tl || text_hash(text, n) != th) {
		snprintf(why, whylen, "%s is not the text that was applied", rules_file);
		free(text);
		return NULL;
	}
	uint64_t now;
	firewall_set_timeout(KERNEL_LIST_TIMEOUT_S);
	if (!firewall_fingerprint(format, &now, err, sizeof(err))) {
		snprintf(why, whylen, "cannot list the kernel's rules: %.180s", err);
		free(text);
		return NULL;
	}
	if (now != k) {
		snprintf(why, whylen, "the kernel's rules changed since the last stop");
		free(text);
		return NULL;
	}
	*len = n;
	*hash = th;
	*kfp = now;
	*last_full = (time_t)full;
	return text;
}

/* A file written under a temporary name and renamed over path once
 * whole and synced: readers see the old file or the new one. */
struct afile {
	int fd;                     /* -1: closed (failed or done) */
	int err;                    /* errno of the first failure */
	char tmp[4096];
};

static bool
afile_open(struct afile *f, const char *path)
{
	f->fd = -1;
	f->err = 0;
	if (snprintf(f->tmp, sizeof(f->tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(f->tmp)) {
		f->err = ENAMETOOLONG;
		return false;
	}
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (f->fd < 0) {
		f->err = errno;
		return false;
	}
	return true;
}

static void
afile_abort(struct afile *f)
{
	if (f->fd < 0)
		return;
	close(f->fd);
	unlink(f->tmp);
	f->fd = -1;
}

static bool
afile_write(struct afile *f, const char *data, size_t len)
{
	size_t off = 0;
	while (f->fd >= 0 && off < len) {
		ssize_t w = write(f->fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			f->err = errno;
			afile_abort(f);
			return false;
		}
		off += (size_t)w;
	}
	return f->fd >= 0;
}

static bool
afile_commit(struct afile *f, const char *path)
{
	if (f->fd < 0)
		return false;
	int fd = f->fd;
	f->fd = -1;
	/* closed on every path: a disk failing at fsync is retried */
	int err = fsync(fd) < 0 ? errno : 0;
	if (close(fd) < 0 && err == 0)
		err = errno;
	if (err == 0 && rename(f->tmp, path) < 0)
		err = errno;
	if (err != 0) {
		f->err = err;
		unlink(f->tmp);
		return false;
	}
	return true;
}

bool
rulesync_write_atomic(const char *path, const char *data, size_t len)
{
	struct afile f;
	if (!afile_open(&f, path) || !afile_write(&f, data, len) || !afile_commit(&f, path)) {
		errno = f.err;
		return false;
	}
	return true;
}

static void schedule(struct rulesync *rs, uint64_t ms);

static void *
free_thread(void *arg)
{
	free(arg);
	return NULL;
}

/* Frees a rules text beside the loop: unmapping 20-60 MB of touched pages
 * takes milliseconds the queries should not wait for. */
static bool freeing_inline; /* stopping: nothing may outlive the process */

static void
free_text(char *text, size_t len)
{
	pthread_t t;
	pthread_attr_t at;
	if (text == NULL)
		return;
	if (len >= FREE_BESIDE_BYTES && !freeing_inline && pthread_attr_init(&at) == 0) {
		bool started = pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) == 0 &&
		    pthread_create(&t, &at, free_thread, text) == 0;
		pthread_attr_destroy(&at);
		if (started)
			return;
	}
	free(text);
}


static void
child_done(struct rulesync *rs, bool ok)
{
	double dur = monotime_now() - rs->last_start;
	rs->st.last_duration_s = dur;
	rs->st.in_progress = false;
	rs->st.last_ok = ok;
	if (ok) {
		rs->have_kernel_fp = false;
		struct timeval ftv = monotime_tv(KERNEL_FP_IDLE_MS);
		evtimer_add(rs->fp_timer, &ftv);
		if (rs->pending_full)
			rs->last_full = time(NULL);
		rs->st.syncs_ok++;
		free_text(rs->applied, rs->applied_len);
		rs->applied = rs->pending_text;
		rs->pending_text = NULL;
		rs->have_applied = true;
		rs->applied_hash = rs->pending_hash;
		rs->applied_len = rs->pending_len;
		rs->backoff_ms = 0;
		if (rs->pending_full) {
			rs->st.applies_full++;
			if (rs->cfg->rules_resync_ms) {
				struct timeval tv = monotime_tv(rs->cfg->rules_resync_ms);
				evtimer_add(rs->resync, &tv);
			}
		} else {
			rs->st.applies_incremental++;
		}
		log_info("rules applied format=%s mode=%s duration_ms=%.0f", rs->cfg->rules_format == RULES_FMT_NFT ?
		    "nft" : "iptables", rs->pending_mode, dur * 1000);
	} else {
		rs->st.syncs_failed++;
		/* one event, one log line: the tools' stderr spans several */
		for (size_t i = 0; i < rs->child_errlen; i++)
			if (rs->child_err[i] == '\n' || rs->child_err[i] == '\r')
				rs->child_err[i] = i + 1 < rs->child_errlen ? ';' : ' ';
		free_text(rs->pending_text, rs->pending_len);
		rs->pending_text = NULL;
		rs->backoff_ms = rs->backoff_ms ? rs->backoff_ms * 2 : 1000;
		if (rs->backoff_ms > BACKOFF_MAX_MS)
			rs->backoff_ms = BACKOFF_MAX_MS;
		log_error("rules apply failed (retry in %llums): %s", (unsigned long long)rs->backoff_ms,
		    rs->child_errlen ? rs->child_err : "(no output)");
		rs->dirty = true;
		rs->force = true;
	}
	if (rs->dirty)
		schedule(rs, ok ? rs->cfg->rules_min_sync_ms : rs->backoff_ms);
}

static void
child_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rulesync *rs = arg;
	ssize_t r = read(fd, rs->child_err + rs->child_errlen, sizeof(rs->child_err) - 1 - rs->child_errlen);
	if (r > 0) {
		rs->child_errlen += (size_t)r;
		rs->child_err[rs->child_errlen] = '\0';
		if (rs->child_errlen < sizeof(rs->child_err) - 1)
			return;
	} else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
		return;
	}
	event_free(rs->child_ev);
	rs->child_ev = NULL;
	close(rs->child_fd);
	int status = 0;
	while (waitpid(rs->child, &status, 0) < 0 && errno == EINTR)
		;
	rs->child = 0;
	if (rs->child_kind == CHILD_FINGERPRINT) {
		int have = 0;
		unsigned long long fp = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		    sscanf(rs->child_err, "FP %d %llx", &have, &fp) == 2 && have) {
			rs->have_kernel_fp = true;
			rs->kernel_fp = fp;
			log_debug("rules: kernel fingerprint taken after the apply (%.0f ms)",
			    (monotime_now() - rs->fp_start) * 1000);
		}
		if (rs->dirty)
			schedule(rs, 0);
		return;
	}
	child_done(rs, WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static bool
start_child(struct rulesync *rs, enum child_kind kind, const char *text, size_t len)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return false;
	if (kind == CHILD_APPLY)
		rs->last_start = monotime_now();
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return false;
	}
	if (pid == 0) {
		/* child: blocking work is fine here; report errors on the pipe */
		char err[4000];
		/* libevent's handlers forward signals to the parent's loop: the
		 * child takes the defaults, and a group of its own so the daemon
		 * can stop it and its iptables-restore together */
		setpgid(0, 0);
		/* nothing of the daemon's (listeners, client sockets, the
		 * store): a socket held here would stay in its SO_REUSEPORT
		 * group after the daemon stopped */
		if (p[1] != 3) {
			dup2(p[1], 3);
			p[1] = 3;
		}
		close_range(4, ~0U, 0);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		firewall_set_timeout((unsigned)(rs->cfg->rules_apply_timeout_ms / 1000));
		char pool[NETPREFIX_STRLEN];
		netprefix_fmt(&rs->cfg->vip_pool, pool, sizeof(pool));
		if (kind == CHILD_FINGERPRINT) {
			uint64_t fp = 0;
			bool have = firewall_fingerprint((int)rs->cfg->rules_format, &fp, err, sizeof(err));
			char msg[64];
			int n = snprintf(msg, sizeof(msg), "FP %d %016llx\n", have ? 1 : 0, (unsigned long long)fp);
			ssize_t w = write(p[1], msg, (size_t)n);
			(void)w;
			_exit(0);
		}
		bool ok = firewall_apply((int)rs->cfg->rules_format, text, len, !rs->pending_full,
		    rs->cfg->rules_masquerade, pool, err, sizeof(err));
		if (!ok) {
			ssize_t w = write(p[1], err, strlen(err));
			(void)w;
		}
		_exit(ok ? 0 : 1);
	}
	close(p[1]);
	rs->child_kind = kind;
	rs->child = pid;
	rs->child_fd = p[0];
	rs->child_errlen = 0;
	rs->child_err[0] = '\0';
	rs->child_ev = event_new(rs->base, p[0], EV_READ | EV_PERSIST, child_cb, rs);
	event_add(rs->child_ev, NULL);
	if (kind == CHILD_APPLY)
		rs->st.in_progress = true;
	return true;
}

static bool
start_apply(struct rulesync *rs, const char *text, size_t len)
{
	return start_child(rs, CHILD_APPLY, text, len);
}

/* A while after an apply, when nothing else is to do: what the kernel holds
 * now, for the mark a clean stop writes (a change by hand after this shows
 * there and is not adopted). Listing 10k services takes seconds, so it runs
 * only when idle, and an apply that needs the slot stops it. */
static void
fp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rulesync *rs = arg;
	if (rs->child || rs->job || rs->dirty || rs->paused || !rs->cfg->rules_apply || !rs->st.last_ok ||
	    rs->have_kernel_fp)
		return;
	rs->fp_start = monotime_now();
	if (!start_child(rs, CHILD_FINGERPRINT, NULL, 0))
		log_debug("rules: cannot start the kernel listing");
}

/* Stops a running fingerprint child (an apply needs the slot). */
static void
stop_fingerprint(struct rulesync *rs)
{
	if (rs->child == 0 || rs->child_kind != CHILD_FINGERPRINT)
		return;
	kill(-rs->child, SIGKILL);
	kill(rs->child, SIGKILL);
	int status;
	while (waitpid(rs->child, &status, 0) < 0 && errno == EINTR)
		;
	event_free(rs->child_ev);
	rs->child_ev = NULL;
	close(rs->child_fd);
	rs->child = 0;
	rs->have_kernel_fp = false;
}

/*
 * One render, on the render thread: the text (rules_render over a held
 * registry and a snapshot of the endpoint addresses), whether it changed,
 * the nft delta, and the rules file written. Nothing here touches the loop's
 * state: rs->applied is only replaced when an apply ends, and an apply never
 * runs beside a render.
 */
struct render_job {
	struct registry *reg;           /* held */
	struct ep_snapshot *snap;
	struct rules_opts o;            /* o.held points at held */
	struct netaddr *held;
	const char *applied;            /* rs->applied, borrowed (NULL when
	                                   only its fingerprint is kept) */
	bool have_applied;
	uint64_t applied_hash;
	size_t applied_len;
	uint64_t hash;                  /* of text */
	bool force, apply;
	bool try_adopt;
	uint64_t opts_hash;
	char *file;
	/* results */
	char *adopted;                  /* kernel_adopt's text, or NULL */
	size_t adopted_len;
	uint64_t adopted_hash;
	uint64_t adopted_kfp;           /* the kernel's fingerprint then */
	time_t adopted_full;            /* the previous process's last full apply */
	char adopt_why[256];
	bool rendered;
	struct rules_buf text, delta;   /* text: empty in a dry run, which
	                                   streams it to the file */
	size_t text_len;
	bool changed, full, same, written;
	int write_errno;
	char mode[160];
	double render_s;
};

/* FNV-1a 64: enough to tell "changed" from "the same" (a full resync
 * every rules.resync_period covers the rest). */
static uint64_t
text_hash(const char *t, size_t n)
{
	return fnv64(FNV64_INIT, t, n);
}

/* The dry run's sink: the fingerprint, and the file while it can be
 * written (a write error is the file's, not the render's). */
struct stream_out {
	struct afile f;
	uint64_t hash;
};

static bool
stream_sink(void *arg, const char *data, size_t len)
{
	struct stream_out *so = arg;
	so->hash = fnv64(so->hash, data, len);
	(void)afile_write(&so->f, data, len);
	return true;
}

/* A dry run: the text only goes to the rules file and a fingerprint, so it
 * is streamed there (20 MB at 50k hosts never held). Whether it changed is
 * known at its end: the temporary file is written every time and an
 * unchanged text unlinks it, leaving the rules file as it was (a render
 * follows a build, which nearly always changes the rules). */
static void
render_stream(struct render_job *j, double t0)
{
	struct stream_out so = { .hash = FNV64_INIT };
	(void)afile_open(&so.f, j->file);
	j->rendered = rules_render_to(j->reg, &j->o, j->snap ? ep_snapshot_lookup : NULL, j->snap, stream_sink, &so, 0,
	    &j->text_len);
	j->render_s = monotime_now() - t0;
	j->hash = so.hash;
	j->changed = j->rendered &&
	    (!j->have_applied || j->applied_len != j->text_len || j->applied_hash != j->hash);
	if (!j->rendered || (!j->changed && !j->force)) {
		afile_abort(&so.f);
		return;
	}
	j->full = true;
	snprintf(j->mode, sizeof(j->mode), "full bytes=%zu", j->text_len);
	j->written = afile_commit(&so.f, j->file);
	j->write_errno = j->written ? 0 : so.f.err;
}

static void
render_run(struct render_job *j)
{
	double t0 = monotime_now();
	if (j->try_adopt && j->apply) {
		j->adopted = kernel_adopt(j->o.format, j->opts_hash, j->file, &j->adopted_len, &j->adopted_hash,
		    &j->adopted_kfp, &j->adopted_full, j->adopt_why,
		    sizeof(j->adopt_why));
		if (j->adopted) {
			/* a delta against what the kernel verifiably holds */
			j->applied = j->adopted;
			j->have_applied = true;
			j->applied_hash = j->adopted_hash;
			j->applied_len = j->adopted_len;
			j->force = false;
		}
	}
	if (!j->apply) {
		render_stream(j, t0);
		return;
	}
	j->rendered = rules_render(j->reg, &j->o, j->snap ? ep_snapshot_lookup : NULL, j->snap, &j->text);
	j->render_s = monotime_now() - t0;
	if (!j->rendered)
		return;
	j->text_len = j->text.len;
	j->hash = text_hash(j->text.data, j->text.len);
	j->changed = !j->have_applied || j->applied_len != j->text.len || j->applied_hash != j->hash ||
	    (j->applied != NULL && strcmp(j->applied, j->text.data) != 0);
	if (!j->changed && !j->force)
		return;
	/* only what changed, as one transaction; a full apply at start, after
	 * a failure, on a rules option change and every resync_period */
	j->full = true;
	snprintf(j->mode, sizeof(j->mode), "full bytes=%zu", j->text_len);
	if (j->apply && j->applied && !j->force && j->o.format == RULES_FMT_NFT) {
		struct nftdiff_stats ds;
		enum nftdiff_result r = nftdiff(j->applied, j->text.data, &j->delta, &ds);
		j->same = r == NFTDIFF_SAME;
		j->full = r != NFTDIFF_DELTA && !j->same;
		if (r == NFTDIFF_DELTA)
			snprintf(j->mode, sizeof(j->mode), "incremental bytes=%zu chains=+%zu~%zu-%zu elements=+%zu-%zu "
			    "vips=+%zu-%zu", j->delta.len, ds.chains_added, ds.chains_changed, ds.chains_deleted,
			    ds.elems_added, ds.elems_deleted, ds.vips_added, ds.vips_deleted);
	} else if (j->apply && j->applied && !j->force) {
		struct iptdiff_stats ds;
		enum iptdiff_result r = iptdiff(j->applied, j->text.data, &j->delta, &ds);
		j->same = r == IPTDIFF_SAME;
		j->full = r != IPTDIFF_DELTA && !j->same;
		if (r == IPTDIFF_DELTA)
			snprintf(j->mode, sizeof(j->mode), "incremental bytes=%zu chains=+%zu~%zu-%zu rules=+%zu-%zu",
			    j->delta.len, ds.chains_added, ds.chains_changed, ds.chains_deleted, ds.rules_added,
			    ds.rules_deleted);
	}
	j->written = rulesync_write_atomic(j->file, j->text.data, j->text.len);
	j->write_errno = j->written ? 0 : errno;
}

static void
render_job_free(struct render_job *j)
{
	if (j == NULL)
		return;
	registry_free(j->reg);
	ep_snapshot_free(j->snap);
	free(j->held);
	free(j->file);
	free_text(j->adopted, j->adopted_len);
	free_text(j->text.data, j->text.len);
	j->text.data = NULL;
	rules_buf_free(&j->text);
	rules_buf_free(&j->delta);
	free(j);
}

/* On the render thread. */
static void
render_job(void *arg)
{
	struct rulesync *rs = arg;
	render_run(rs->job);
}

/* Long enough for every attempt of a first resolution (see endpoints.c). */
static double
first_sync_wait_s(const struct config *cfg)
{
	double s = 3.0 * (double)cfg->upstream_timeout_ms / 1000.0;
	return s < 2.0 ? 2.0 : s > 15.0 ? 15.0 : s;
}

static void
sync_now(struct rulesync *rs)
{
	stop_fingerprint(rs); /* bookkeeping yields to work */
	if (rs->child || rs->job) {
		rs->dirty = true; /* picked up when the child or render finishes */
		return;
	}
	if (rs->reg == NULL)
		return;
	if (rs->paused) {
		rs->dirty = true; /* picked up by rulesync_pause(rs, false) */
		return;
	}
	if (rs->try_adopt && rs->ep && endpoints_unsettled(rs->ep) > 0 &&
	    monotime_now() - rs->first_mark < first_sync_wait_s(rs->cfg)) {
		/* the first render after a start waits (bounded) for the DNS
		 * endpoints' first answers: rendered without them, their rules
		 * would be dropped and re-added a moment later */
		rs->dirty = true;
		schedule(rs, 50);
		return;
	}
	rs->dirty = false;
	rs->last_start = monotime_now();
	struct render_job *j = calloc(1, sizeof(*j));
	if (j == NULL || (j->file = strdup(rs->cfg->rules_file)) == NULL ||
	    (rs->nheld && (j->held = malloc(rs->nheld * sizeof(*j->held))) == NULL) ||
	    (rs->ep && (j->snap = endpoints_snapshot(rs->ep)) == NULL)) {
		render_job_free(j);
		log_error("rules: out of memory preparing a render; retrying");
		rs->dirty = true;
		schedule(rs, BACKOFF_MAX_MS / 4);
		return;
	}
	if (rs->nheld)
		memcpy(j->held, rs->held, rs->nheld * sizeof(*j->held));
	j->o.format = (enum rules_format)rs->cfg->rules_format;
	j->o.masquerade = rs->cfg->rules_masquerade;
	j->o.masq_mark = (uint32_t)rs->cfg->rules_masq_mark;
	j->o.held = j->held;
	j->o.nheld = rs->nheld;
	j->applied = rs->applied;
	j->have_applied = rs->have_applied;
	j->applied_hash = rs->applied_hash;
	j->applied_len = rs->applied_len;
	/* the job owns this force now; one set meanwhile is for the next */
	j->force = rs->force;
	rs->force = false;
	j->apply = rs->cfg->rules_apply;
	j->try_adopt = rs->try_adopt;
	j->opts_hash = opts_hash(rs->cfg);
	rs->try_adopt = false;
	registry_hold((struct registry *)rs->reg);
	j->reg = (struct registry *)rs->reg;
	rs->job = j;
	/* the render of 10k services takes ~100 ms: not on the query loop */
	bgjob_start(rs->renderer, render_job, rs);
}

/* Back on the loop: apply what the render thread produced. */
static void
render_done(void *arg)
{
	struct rulesync *rs = arg;
	struct render_job *j = rs->job;
	rs->job = NULL;
	if (!j->rendered) {
		const char *why = rules_opts_problem(&j->o);
		log_error("rules render failed: %s", why ? why : "out of memory");
		rs->force |= j->force;
		render_job_free(j);
		rs->st.last_ok = false;
		rs->dirty = true;
		schedule(rs, BACKOFF_MAX_MS);
		return;
	}
	rs->st.renders++;
	rs->st.last_render_s = j->render_s;
	if (j->adopted) {
		free_text(rs->applied, rs->applied_len);
		rs->applied = j->adopted;
		j->adopted = NULL;
		rs->have_applied = true;
		rs->applied_hash = j->adopted_hash;
		rs->applied_len = j->adopted_len;
		rs->st.last_ok = true;
		rs->st.adopted++;
		rs->have_kernel_fp = true;
		rs->kernel_fp = j->adopted_kfp;
		rs->last_full = j->adopted_full;
		if (!j->changed)
			rs->st.syncs_ok++; /* the kernel is in sync: /readyz */
		log_info("rules: the kernel holds what the previous process applied (verified by fingerprint)%s",
		    j->changed ? "; applying the difference" : "; nothing to apply");
		if (rs->cfg->rules_resync_ms && !evtimer_pending(rs->resync, NULL)) {
			/* the schedule runs from the last full apply, not from each
			 * start: restarts more often than the period still resync */
			time_t now = time(NULL);
			uint64_t since = now > rs->last_full ? (uint64_t)(now - rs->last_full) * 1000 : 0;
			uint64_t left = since >= rs->cfg->rules_resync_ms ? 0 : rs->cfg->rules_resync_ms - since;
			struct timeval tv = monotime_tv(left);
			evtimer_add(rs->resync, &tv);
		}
	} else if (j->try_adopt && j->apply) {
		log_info("rules: applying in full (%s)", j->adopt_why);
	}
	log_debug("rules: rendered bytes=%zu delta_bytes=%zu changed=%s forced=%s apply=%s mode=%s render_ms=%.1f",
	    j->text_len, j->delta.len, j->changed ? "yes" : "no", j->force ? "yes" : "no",
	    !j->apply ? "dry-run" : j->same ? "no (same rules, new order)" : j->changed || j->force ? "yes" : "no",
	    j->mode[0] ? j->mode : "-", j->render_s * 1000);
	if (!j->changed && !j->force) {
		render_job_free(j);
		if (rs->dirty)
			schedule(rs, 0);
		return;
	}
	if (!j->written) {
		rs->st.writes_failed++;
		errno = j->write_errno;
		log_warn("cannot write rules file %s", j->file);
	}
	if (!j->apply && !j->written) {
		/* dry run and the file is the product: try again later */
		render_job_free(j);
		rs->dirty = true;
		rs->force = true;
		schedule(rs, BACKOFF_MAX_MS / 4);
		return;
	}
	if (!j->apply) {
		/* dry run: the file is the product */
		free_text(rs->applied, rs->applied_len);
		rs->applied = NULL;
		rs->have_applied = true;
		rs->applied_hash = j->hash;
		rs->applied_len = j->text_len;
		rs->st.last_ok = true;
		render_job_free(j);
		if (rs->dirty)
			schedule(rs, rs->cfg->rules_min_sync_ms);
		return;
	}
	if (j->same) {
		/* the text moved (groups reordered), the kernel's rules did not */
		free_text(rs->applied, rs->applied_len);
		rs->applied = j->text.data;
		j->text.data = NULL;
		rs->applied_hash = j->hash;
		rs->applied_len = j->text.len;
		render_job_free(j);
		if (rs->dirty)
			schedule(rs, rs->cfg->rules_min_sync_ms);
		return;
	}
	rs->pending_full = j->full;
	snprintf(rs->pending_mode, sizeof(rs->pending_mode), "%s", j->mode);
	const char *payload = j->full ? j->text.data : j->delta.data;
	size_t plen = j->full ? j->text.len : j->delta.len;
	rs->pending_hash = j->hash;
	rs->pending_len = j->text.len;
	rs->last_start = monotime_now();
	/* the kernel is about to differ from any fingerprint on disk */
	kernel_mark_remove(rs->cfg->rules_file);
	bool started = start_apply(rs, payload, plen);
	/* the child has its own copy; keep the text for the next delta */
	rs->pending_text = j->text.data;
	j->text.data = NULL;
	if (!started) {
		log_warn("rules: cannot start the apply");
		child_done(rs, false);
	}
	render_job_free(j);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	sync_now(arg);
}

/* Rules someone else changed or deleted come back whole. */
static void
resync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rulesync *rs = arg;
	rs->force = true;
	rulesync_mark(rs, NULL);
}

static void
schedule(struct rulesync *rs, uint64_t ms)
{
	if (evtimer_pending(rs->timer, NULL))
		return;
	struct timeval tv = monotime_tv(ms);
	evtimer_add(rs->timer, &tv);
}

struct rulesync *
rulesync_new(struct event_base *base, const struct config *cfg, struct endpoints *ep)
{
	struct rulesync *rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		return NULL;
	rs->base = base;
	rs->cfg = cfg;
	rs->ep = ep;
	rs->force = true;
	rs->try_adopt = true;
	rs->st.last_ok = !cfg->rules_apply;
	rs->timer = evtimer_new(base, timer_cb, rs);
	rs->resync = evtimer_new(base, resync_cb, rs);
	rs->fp_timer = evtimer_new(base, fp_cb, rs);
	rs->renderer = bgjob_new(base, render_done, rs);
	if (rs->timer == NULL || rs->resync == NULL || rs->fp_timer == NULL || rs->renderer == NULL) {
		if (rs->timer)
			event_free(rs->timer);
		if (rs->resync)
			event_free(rs->resync);
		if (rs->fp_timer)
			event_free(rs->fp_timer);
		bgjob_free(rs->renderer);
		free(rs);
		return NULL;
	}
	return rs;
}

void
rulesync_free(struct rulesync *rs)
{
	if (rs == NULL)
		return;
	freeing_inline = true;
	stop_fingerprint(rs);
	bool clean = rs->child == 0 && rs->job == NULL && !rs->paused;
	if (rs->child) {
		/* give a running apply a moment to finish; then stop it: the
		 * restore is one transaction, so killing it before COMMIT leaves
		 * the previous rules whole */
		int status;
		pid_t r = 0;
		for (int i = 0; i < RULESYNC_STOP_WAIT_MS / 50 && (r = waitpid(rs->child, &status, WNOHANG)) == 0; i++)
			usleep(50000);
		if (r == 0) {
			log_warnx("stopping: rule apply still running after %dms; killing it", RULESYNC_STOP_WAIT_MS);
			kill(-rs->child, SIGKILL);
			waitpid(rs->child, &status, 0);
		}
	}
	if (rs->child_ev) {
		event_free(rs->child_ev);
		close(rs->child_fd);
	}
	/* a restart then applies only what changed, if the kernel still holds
	 * exactly this */
	if (clean && rs->cfg->rules_apply && rs->applied && rs->st.last_ok)
		kernel_mark_write(rs->cfg, rs->applied, rs->applied_len, rs->have_kernel_fp, rs->kernel_fp, rs->last_full);
	event_free(rs->timer);
	event_free(rs->resync);
	event_free(rs->fp_timer);
	bgjob_free(rs->renderer);
	render_job_free(rs->job);
	free(rs->applied);
	free(rs->pending_text);
	free(rs->held);
	free(rs);
}

void
rulesync_set_held(struct rulesync *rs, const struct netaddr *held, size_t n)
{
	struct netaddr *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	if (n && copy == NULL)
		return; /* keep the previous list: rejecting too much is harmless */
	if (n)
		memcpy(copy, held, n * sizeof(*copy));
	free(rs->held);
	rs->held = copy;
	rs->nheld = n;
}

void
rulesync_set_config(struct rulesync *rs, const struct config *cfg)
{
	const struct config *o = rs->cfg;
	/* a SIGHUP re-reads the config: only a change in how rules are made
	 * or where they go is a reason to apply text that did not change */
	if (o->rules_format != cfg->rules_format || o->rules_apply != cfg->rules_apply ||
	    o->rules_masquerade != cfg->rules_masquerade || o->rules_masq_mark != cfg->rules_masq_mark ||
	    o->rules_resync_ms != cfg->rules_resync_ms ||
	    strcmp(o->rules_file, cfg->rules_file) != 0)
		rs->force = true;
	rs->cfg = cfg;
}

void
rulesync_mark(struct rulesync *rs, const struct registry *reg)
{
	if (reg)
		rs->reg = reg;
	if (!rs->started_once)
		rs->first_mark = monotime_now();
	rs->dirty = true;
	/* batch: at most one sync per min_sync_period */
	double since_ms = (monotime_now() - rs->last_start) * 1000;
	uint64_t wait = 0;
	if (rs->started_once && since_ms < (double)rs->cfg->rules_min_sync_ms)
		wait = rs->cfg->rules_min_sync_ms - (uint64_t)since_ms;
	rs->started_once = true;
	if (!rs->child || rs->child_kind == CHILD_FINGERPRINT)
		schedule(rs, wait);
}

void
rulesync_pause(struct rulesync *rs, bool on)
{
	rs->paused = on;
	if (!on && rs->dirty && (!rs->child || rs->child_kind == CHILD_FINGERPRINT))
		schedule(rs, 0);
}

void
rulesync_stats(const struct rulesync *rs, struct rulesync_stats *st)
{
	*st = rs->st;
}
