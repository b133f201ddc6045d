/*
 * manager.c - starting and stopping a manager server process, and addresses.
 *
 * The owner creates the listening socket before it forks, so a bad address fails in the
 * caller with its own errno and the address (an ephemeral TCP port included) is known when
 * mproc_manager_start() returns. The server child keeps only the listening socket and the read
 * end of a parent-death pipe; it exits when that pipe reaches EOF (the owner and every process
 * that inherited the write end are gone, or mproc_manager_stop() closed it) or on SIGTERM
 * (PR_SET_PDEATHSIG, for an owner killed before the pipe could tell).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "manager_internal.h"

struct mproc_manager {
	pid_t pid;
	int death_fd;                           /* write end; closing it ends the server */
	struct mproc__mgr_addr addr;
	char address[MPROC_MANAGER_ADDRESS_MAX];
	char dir[64];                           /* private directory we made, or "" */
	uint8_t key[MPROC_MANAGER_KEY_MAX];
	size_t keylen;
};

int mproc__mgr_addr_parse(const char *s, struct mproc__mgr_addr *a)
{
	const char *colon, *host;
	size_t hl;
	uint64_t port;
	struct in6_addr a6;
	struct in_addr a4;

	memset(a, 0, sizeof(*a));
	if (!s)
		return -EINVAL;
	if (strncmp(s, "unix:", 5) == 0) {
		s += 5;
		if (!*s)
			return -EINVAL;
		if (strlen(s) >= sizeof(a->path))
			return -ENAMETOOLONG;
		strcpy(a->path, s);
		return 0;
	}
	if (strncmp(s, "tcp:", 4) != 0)
		return -EINVAL;
	host = s + 4;
	/* "tcp:PORT" and "tcp::PORT" mean the loopback address: listening on every interface
	 * has to be asked for ("tcp:0.0.0.0:PORT"). */
	colon = strrchr(host, ':');
	if (mproc__parse_u64(colon ? colon + 1 : host, 65535, &port) < 0)
		return -EINVAL;
	hl = colon ? (size_t)(colon - host) : 0;
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host++;
		hl -= 2;
	}
	if (hl >= sizeof(a->host))
		return -EINVAL;
	memcpy(a->host, host, hl);
	a->host[hl] = '\0';
	if (hl == 0 || strcmp(a->host, "localhost") == 0)
		strcpy(a->host, "127.0.0.1");
	if (inet_pton(AF_INET, a->host, &a4) != 1 && inet_pton(AF_INET6, a->host, &a6) != 1)
		return -EINVAL;
	a->tcp = true;
	a->port = (uint16_t)port;
	return 0;
}

int mproc__mgr_addr_format(const struct mproc__mgr_addr *a, char *buf, size_t size)
{
	int n;

	if (!a->tcp)
		n = snprintf(buf, size, "unix:%s", a->path);
	else if (strchr(a->host, ':'))
		n = snprintf(buf, size, "tcp:[%s]:%u", a->host, a->port);
	else
		n = snprintf(buf, size, "tcp:%s:%u", a->host, a->port);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Fill a sockaddr for a parsed address. */
static socklen_t addr_sockaddr(const struct mproc__mgr_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!a->tcp) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, a->path, strlen(a->path) + 1);
		return sizeof(*un);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, a->host, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons(a->port);
			return sizeof(*in4);
		}
		(void)inet_pton(AF_INET6, a->host, &in6->sin6_addr);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a->port);
		return sizeof(*in6);
	}
}

int mproc__mgr_socket(const struct mproc__mgr_addr *a, struct sockaddr_storage *ss,
		      socklen_t *sl)
{
	int fd;

	*sl = addr_sockaddr(a, ss);
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

/* Is someone listening on this Unix socket path? */
static bool unix_alive(const struct sockaddr_storage *ss, socklen_t sl)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return true;    /* cannot tell: do not remove it */
	alive = connect(fd, (const struct sockaddr *)ss, sl) == 0 || errno != ECONNREFUSED;
	mproc__close(fd);
	return alive;
}

int mproc__mgr_listen(struct mproc__mgr_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, r, one = 1, tries;

	fd = mproc__mgr_socket(a, &ss, &sl);
	if (fd < 0)
		return fd;
	if (a->tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto out_errno;
	for (tries = 0;; tries++) {
		if (bind(fd, (struct sockaddr *)&ss, sl) == 0)
			break;
		/* A stale socket file of a dead server: replace it (restart on the same path). */
		if (errno == EADDRINUSE && !a->tcp && tries == 0 && !unix_alive(&ss, sl) &&
		    unlink(a->path) == 0)
			continue;
		goto out_errno;
	}
	if (listen(fd, 512) < 0)
		goto out_errno;
	if (a->tcp && a->port == 0) {
		sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
			goto out_errno;
		a->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
				((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
out_errno:
	r = -errno;
	mproc__close(fd);
	return r;
}

/* Close every fd from 3 up except the n (<= 3) in keep (the server child owns nothing else). */
static void close_others(int *keep, int n)
{
	unsigned lo = 3;

	for (int i = 1; i < n; i++)     /* sort: three at most */
		for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];

			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < lo)
			continue;
		if ((unsigned)keep[i] > lo)
			close_range(lo, (unsigned)keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	close_range(lo, ~0u, 0);
}

/* The server: serves until its owner goes. Tells the owner on ready_fd that it serves (0) or
 * why it cannot (-errno of its setup: epoll, signalfd... under RLIMIT_NOFILE). */
static _Noreturn void server_child(struct mproc_manager *m, int lfd, int death_rd, int ready_fd,
				   pid_t owner, size_t max_frame, unsigned flags)
{
	struct mproc__mgr_config cfg = {
		.key = m->key,
		.keylen = m->keylen,
		.max_frame = max_frame,
		.spin_ns = flags & MPROC_MANAGER_NOSPIN ? 0 : MPROC__MGR_SPIN_NS,
		.no_chan = flags & MPROC_MANAGER_NOSHM,
	};
	int keep[3] = { lfd, death_rd, ready_fd };
	sigset_t set;
	int r;

	prctl(PR_SET_NAME, "mproc-manager", 0, 0, 0);
	/* Block SIGTERM before arming the death signal: an owner that exits right after start
	 * would otherwise kill the server with it before the serve loop owns the signal (the
	 * loop sees the owner go through the death pipe and exits cleanly). The re-check closes
	 * the race where the owner died before prctl. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() == owner) {
		close_others(keep, 3);
		signal(SIGINT, SIG_IGN);        /* Ctrl-C is for the clients */
		r = mproc__mgr_serve(lfd, death_rd, &ready_fd, &cfg);
	} else {
		r = 0;  /* the owner is already gone: clean up below, serve nobody */
	}
	if (!m->addr.tcp)
		unlink(m->addr.path);
	if (m->dir[0])
		rmdir(m->dir);
	if (ready_fd >= 0) {            /* setup failed: say why (the owner waits for it) */
		int32_t v = r < 0 ? r : -ECHILD;

		mproc__write_all(ready_fd, &v, sizeof(v), MPROC__NO_DEADLINE);
	}
	_exit(r < 0 ? 1 : 0);
}

/* Long (about 105 lines) on purpose: one goto ladder over the directory, the listening socket,
 * the ready pipe and the server process, in the order they are acquired (STYLE.md). */
int mproc_manager_start(struct mproc_manager **out, const struct mproc_manager_opts *o)
{
	static const struct mproc_manager_opts defaults;
	struct mproc_manager *m;
	size_t max_frame;
	int lfd = -1, pfd[2] = { -1, -1 }, rdy[2] = { -1, -1 }, r;
	int32_t ready = -ECHILD;
	ssize_t n;
	pid_t owner = getpid();

	if (!out)
		return -EINVAL;
	if (!o)
		o = &defaults;
	if (o->key && (o->keylen < MPROC_MANAGER_KEY_MIN || o->keylen > MPROC_MANAGER_KEY_MAX))
		return -EINVAL;
	if (o->flags & ~MPROC_MANAGER_FLAGS_ALL)
		return -EINVAL;
	max_frame = o->max_frame ? o->max_frame : MPROC_MANAGER_MAX_FRAME_DEFAULT;
	if (max_frame < 4096)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->death_fd = -1;
	m->pid = -1;
	if (o->key) {
		memcpy(m->key, o->key, o->keylen);
		m->keylen = o->keylen;
	} else {
		m->keylen = 32;
		r = mproc__random(m->key, m->keylen);
		if (r < 0)
			goto out_free;
	}
	if (o->address) {
		r = mproc__mgr_addr_parse(o->address, &m->addr);
		if (r < 0)
			goto out_free;
	} else {
		/* A private 0700 directory: no window between bind and chmod, no one else can
		 * connect or replace the socket. */
		const char *tmp = getenv("TMPDIR");

		if (!tmp || !*tmp || strlen(tmp) > 40)
			tmp = "/tmp";
		snprintf(m->dir, sizeof(m->dir), "%s/mproc-%d-XXXXXX", tmp, (int)owner);
		if (!mkdtemp(m->dir)) {
			r = -errno;
			m->dir[0] = '\0';
			goto out_free;
		}
		snprintf(m->addr.path, sizeof(m->addr.path), "%s/manager.sock", m->dir);
	}
	lfd = mproc__mgr_listen(&m->addr);
	if (lfd < 0) {
		r = lfd;
		goto out_dir;
	}
	r = mproc__mgr_addr_format(&m->addr, m->address, sizeof(m->address));
	if (r < 0)
		goto out_listen;
	if (pipe2(pfd, O_CLOEXEC) < 0 || pipe2(rdy, O_CLOEXEC) < 0) {
		r = -errno;
		goto out_pipe;
	}
	m->pid = fork();
	if (m->pid < 0) {
		r = -errno;
		goto out_pipe;
	}
	if (m->pid == 0)
		server_child(m, lfd, pfd[0], rdy[1], owner, max_frame, o->flags);
	mproc__closep(&rdy[1]);
	/* Return once it serves, or with the reason it could not (it has cleaned up then). */
	n = mproc__read_all(rdy[0], &ready, sizeof(ready), MPROC__NO_DEADLINE);
	if (n != (ssize_t)sizeof(ready) || ready != 0) {
		r = n < 0 ? (int)n : n != (ssize_t)sizeof(ready) || ready >= 0 ? -ECHILD : ready;
		kill(m->pid, SIGKILL);
		while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
			;
		m->pid = -1;
		goto out_pipe;
	}
	mproc__close(rdy[0]);
	mproc__close(pfd[0]);
	mproc__close(lfd);
	m->death_fd = pfd[1];
	*out = m;
	return 0;

out_pipe:
	mproc__close(rdy[0]);
	mproc__close(rdy[1]);
	mproc__close(pfd[0]);
	mproc__close(pfd[1]);
out_listen:
	mproc__close(lfd);
	if (!m->addr.tcp)
		unlink(m->addr.path);
out_dir:
	if (m->dir[0])
		rmdir(m->dir);
out_free:
	memset(m->key, 0, sizeof(m->key));
	free(m);
	return r;
}

int mproc_manager_stop(struct mproc_manager *m)
{
	struct timespec ts = { 0, 1000000 };
	int64_t deadline;
	int status = 0, r = 0;
	pid_t p = 0;

	if (!m)
		return 0;
	mproc__closep(&m->death_fd);
	if (m->pid > 0) {
		deadline = mproc__now_ns() + MPROC__NSEC_PER_SEC;
		while ((p = waitpid(m->pid, &status, WNOHANG)) == 0 && mproc__now_ns() < deadline)
			nanosleep(&ts, NULL);
		if (p == 0) {
			kill(m->pid, SIGKILL);
			while ((p = waitpid(m->pid, &status, 0)) < 0 && errno == EINTR)
				;
		}
		if (p == m->pid) {
			if (WIFSIGNALED(status))
				r = -WTERMSIG(status);
			else if (WIFEXITED(status))
				r = WEXITSTATUS(status);
		}
	}
	if (!m->addr.tcp)
		unlink(m->addr.path);
	if (m->dir[0])
		rmdir(m->dir);
	memset(m->key, 0, sizeof(m->key));
	free(m);
	return r;
}

const char *mproc_manager_address(const struct mproc_manager *m)
{
	return m->address;
}

const void *mproc_manager_key(const struct mproc_manager *m, size_t *keylen)
{
	if (keylen)
		*keylen = m->keylen;
	return m->key;
}

pid_t mproc_manager_pid(const struct mproc_manager *m)
{
	return m->pid;
}
