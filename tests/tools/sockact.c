/*
 * sockact — the part of systemd socket activation that the restart tests
 * need: it binds a UDP and a TCP socket on ADDR:PORT once, then runs the
 * command with them as fds 3 and 4 (LISTEN_FDS=2, LISTEN_PID=child), the
 * way systemd starts a service from sedns.socket. On SIGUSR1 it restarts
 * the child as `systemctl restart` does: SIGTERM, wait for it to exit, start
 * a new one on the same sockets (queries meanwhile wait in the kernel).
 * SIGTERM/SIGINT stop the child and exit. -p FILE gets the child's PID
 * (rewritten on every start). Exits by itself after -t SECONDS (default 120).
 *
 *   sockact -l ADDR:PORT [-p PIDFILE] [-t SECONDS] -- COMMAND ARGS...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t restart_req, stop_req;

static void
on_sig(int sig)
{
	if (sig == SIGUSR1)
		restart_req = 1;
	else
		stop_req = 1;
}

static int
bind_sock(int type, const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, type, 0), one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || (type == SOCK_STREAM && listen(fd, 256) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static pid_t
start(int udp, int tcp, char **argv, const char *pidfile)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* fds 3 and 4, without close-on-exec */
		int u = dup(udp), t = dup(tcp);
		if (u < 0 || t < 0 || dup2(u, 3) < 0 || dup2(t, 4) < 0)
			_exit(127);
		if (u > 4)
			close(u);
		if (t > 4)
			close(t);
		char pidbuf[32];
		snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)getpid());
		setenv("LISTEN_PID", pidbuf, 1);
		setenv("LISTEN_FDS", "2", 1);
		setenv("LISTEN_FDNAMES", "dns-udp:dns-tcp", 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pidfile) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", pidfile);
		FILE *f = fopen(tmp, "w");
		if (f) {
			fprintf(f, "%ld\n", (long)pid);
			fclose(f);
			rename(tmp, pidfile);
		}
	}
	return pid;
}

static void
stop_child(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 300; i++) { /* 30 s, then SIGKILL */
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(100 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

int
main(int argc, char **argv)
{
	const char *listen = NULL, *pidfile = NULL;
	int limit = 120, c;
	while ((c = getopt(argc, argv, "l:p:t:")) != -1) {
		switch (c) {
		case 'l': listen = optarg; break;
		case 'p': pidfile = optarg; break;
		case 't': limit = atoi(optarg); break;
		default: return 2;
		}
	}
	if (listen == NULL || optind >= argc) {
		fprintf(stderr, "usage: sockact -l ADDR:PORT [-p PIDFILE] [-t SECONDS] -- COMMAND ARGS...\n");
		return 2;
	}
	char host[64];
	snprintf(host, sizeof(host), "%s", listen);
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return 2;
	*colon = '\0';
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return 2;
	int udp = bind_sock(SOCK_DGRAM, &sa), tcp = bind_sock(SOCK_STREAM, &sa);
	if (udp < 0 || tcp < 0) {
		fprintf(stderr, "sockact: cannot bind %s: %s\n", listen, strerror(errno));
		return 1;
	}
	int rcv = 4 * 1024 * 1024;
	setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	struct sigaction act;
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_sig;
	sigaction(SIGUSR1, &act, NULL);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	pid_t child = start(udp, tcp, argv + optind, pidfile);
	time_t end = time(NULL) + limit;
	while (!stop_req && time(NULL) < end) {
		if (restart_req) {
			restart_req = 0;
			stop_child(child);
			child = start(udp, tcp, argv + optind, pidfile);
			fprintf(stderr, "sockact: restarted, pid %ld\n", (long)child);
		}
		if (child > 0 && waitpid(child, NULL, WNOHANG) == child)
			child = -1; /* died by itself: stay, like a failed unit */
		usleep(10 * 1000);
	}
	stop_child(child);
	return 0;
}
