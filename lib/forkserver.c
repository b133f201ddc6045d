/*
 * forkserver.c - the forkserver start method (mproc/process.h).
 *
 * Design: the server is a fresh image of the program (/proc/self/exe, or the image given to
 * mproc_set_executable before the server started, via clone+exec, entered
 * through mproc_main_hook), so it is small and single-threaded however late it starts, and it
 * knows the entries the image registers with MPROC_ENTRY. Functions are therefore named by entry,
 * as for spawn, never by address. The parent creates a private directory (mkdtemp, 0700) with
 * the listening Unix socket "sock" in it (chmod 0600, never abstract), and hands the listening
 * fd and one end of a control socketpair to the server. Each start connects, sends one request
 * (mproc__req_parse bounds and validates it), and reads back {STARTED, pid} or {STARTED, -errno};
 * when the child ends the server sends {EXITED, code} on the same connection, which is the
 * process's sentinel. EOF on the control socket means the parent is gone: the server SIGKILLs
 * its children, removes the socket and directory, and exits. If the server dies, the next start
 * notices (control readable) and starts a new one; children it had keep running (they are not
 * bound to the server), and join waits for them on a pidfd.
 *
 * The server process-wide state below is guarded by fs_lock and reset in a forked child.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/error.h"
#include "process_internal.h"

enum { FS_STARTED = 1, FS_EXITED = 2 };

struct fs_reply {
	int32_t kind;
	int32_t value;
};

/* On the fork state page (process_internal.h): a fork child resets it. */
static struct mproc__fs_state *const fs = &mproc__fork_state.fs;
_Static_assert(sizeof(fs->path) == sizeof(((struct sockaddr_un *)0)->sun_path), "sun_path");
static pthread_mutex_t *const fs_lock = &mproc__fork_state.fs_lock;

void mproc__fs_lock(void)
{
	pthread_mutex_lock(fs_lock);
}

void mproc__fs_unlock(void)
{
	pthread_mutex_unlock(fs_lock);
}

MPROC__FORK_CHILD void mproc__fs_atfork_child(void)
{
	/* The server belongs to the parent; a forked child starts its own when it needs one.
	 * Closing our copy of the control socket keeps "parent gone" detectable by the server.
	 * An inline close: no libc code in a fork child (MPROC__FORK_CHILD). */
	if (fs->control < 0 && !fs->pid)
		return;
	if (fs->control >= 0)
		mproc__sys5(SYS_close, fs->control, 0, 0, 0, 0);
	fs->control = -1;
	/* Two stores: merged, gcc loads their 64-bit value from .rodata, which a fork child has
	 * not mapped (one more page fault). */
	__asm__ volatile("" : : : "memory");
	fs->pid = 0;
	fs->dir[0] = fs->path[0] = '\0';
}

static void fs_cleanup_locked(bool graceful)
{
	int64_t deadline = mproc__now_ns() + 2 * MPROC__NSEC_PER_SEC;
	pid_t w;

	if (!fs->pid)
		return;
	mproc__closep(&fs->control);     /* the server sees EOF: kills its children and exits */
	for (;;) {
		w = waitpid(fs->pid, NULL, graceful ? WNOHANG : 0);
		if (w == fs->pid || (w < 0 && errno != EINTR))
			break;
		if (w == 0 && mproc__now_ns() > deadline) {
			kill(fs->pid, SIGKILL);
			graceful = false;
		} else if (w == 0) {
			usleep(1000);
		}
	}
	if (fs->path[0])
		unlink(fs->path);
	if (fs->dir[0])
		rmdir(fs->dir);
	fs->pid = 0;
	fs->dir[0] = fs->path[0] = '\0';
}

static bool fs_alive_locked(void)
{
	struct pollfd pf = { .fd = fs->control, .events = POLLIN };

	if (!fs->pid || fs->control < 0)
		return false;
	/* The server never writes after its hello: readable means EOF, it is gone. */
	return poll(&pf, 1, 0) == 0;
}

static int fs_start_locked(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = -1, ctl[2] = { -1, -1 }, reqfd = -1, r;
	char *exe = NULL;
	int32_t hello;
	void *req = NULL;
	size_t len;
	ssize_t n;
	pid_t pid = 0;

	if (fs_alive_locked())
		return 0;
	/* A dead server (killed, crashed): reap it and clear its directory, then start anew. */
	fs_cleanup_locked(false);

	/* The pid in the name lets cleaners and leak checks tell whose it is. */
	snprintf(fs->dir, sizeof(fs->dir), "/tmp/mproc-%d-fs-XXXXXX", (int)getpid());
	if (!mkdtemp(fs->dir)) {         /* mode 0700: only we can reach the socket */
		r = -errno;
		fs->dir[0] = '\0';
		return r;
	}
	snprintf(fs->path, sizeof(fs->path), "%s/sock", fs->dir);
	memcpy(sa.sun_path, fs->path, strlen(fs->path) + 1);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		r = -errno;
		goto out_dir;
	}
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(fs->path, 0600) < 0 ||
	    listen(lfd, 128) < 0) {
		r = -errno;
		goto out_dir;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
		r = -errno;
		goto out_dir;
	}
	r = mproc__req_build(&req, &len, MPROC__REQ_FORKSERVER, getpid(), NULL, fs->dir, NULL, 0);
	if (r < 0)
		goto out_dir;
	reqfd = mproc__memfd_of(req, len);
	free(req);
	if (reqfd < 0) {
		r = reqfd;
		goto out_dir;
	}
	exe = mproc__exe_dup();
	r = exe ? mproc__exec_child(MPROC_START_VFORK, exe, "mproc-forkserver", reqfd, ctl[1], lfd,
				    true, &pid) : -ENOMEM;
	free(exe);
	mproc__closep(&reqfd);
	mproc__closep(&ctl[1]);
	mproc__closep(&lfd);
	if (r < 0)
		goto out_dir;
	n = mproc__read_all(ctl[0], &hello, sizeof(hello),
			    mproc__now_ns() + 30 * MPROC__NSEC_PER_SEC);
	if (n != (ssize_t)sizeof(hello) || hello != 0) {
		/* No hello: the image did not call mproc_main_hook, or died. */
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		r = -ECONNREFUSED;
		goto out_dir;
	}
	fs->pid = pid;
	fs->control = ctl[0];
	return 0;
out_dir:
	mproc__close(lfd);
	mproc__close(ctl[0]);
	mproc__close(ctl[1]);
	if (fs->path[0])
		unlink(fs->path);
	rmdir(fs->dir);
	fs->dir[0] = fs->path[0] = '\0';
	return r;
}

int mproc_forkserver_start(void)
{
	int r;

	if (mproc__is_daemon())
		return -EPERM;
	pthread_mutex_lock(fs_lock);
	r = fs_start_locked();
	pthread_mutex_unlock(fs_lock);
	return r;
}

void mproc_forkserver_stop(void)
{
	pthread_mutex_lock(fs_lock);
	fs_cleanup_locked(true);
	pthread_mutex_unlock(fs_lock);
}

pid_t mproc_forkserver_pid(void)
{
	pid_t pid;

	pthread_mutex_lock(fs_lock);
	pid = fs_alive_locked() ? fs->pid : 0;
	pthread_mutex_unlock(fs_lock);
	return pid;
}

/* ---- client ------------------------------------------------------------------------------- */

static int fs_connect(pid_t *server)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	pthread_mutex_lock(fs_lock);
	r = fs_start_locked();
	if (r < 0) {
		pthread_mutex_unlock(fs_lock);
		return r;
	}
	memcpy(sa.sun_path, fs->path, strlen(fs->path) + 1);
	*server = fs->pid;
	pthread_mutex_unlock(fs_lock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while ((r = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 && errno == EINTR)
		;
	if (r < 0) {
		r = -errno;
		mproc__close(fd);
		return r;
	}
	return fd;
}

int mproc__fs_start_process(struct mproc_process *p)
{
	struct fs_reply rep;
	void *req = NULL;
	size_t len;
	pid_t server = 0;
	ssize_t n;
	int fd = -1, r;

	r = mproc__req_build(&req, &len, p->daemon ? MPROC__REQ_DAEMON : 0, 0, p->entry, p->name,
			     p->argbuf, p->arg_len);
	if (r < 0)
		return r;
	/* Two tries: the first may meet a server that died since we last looked. */
	for (int attempt = 0; attempt < 2; attempt++) {
		fd = fs_connect(&server);
		if (fd < 0) {
			r = fd;
			continue;
		}
		n = mproc__write_all(fd, req, len, MPROC__NO_DEADLINE);
		if (n == (ssize_t)len)
			n = mproc__read_all(fd, &rep, sizeof(rep), MPROC__NO_DEADLINE);
		if (n == (ssize_t)sizeof(rep) && rep.kind == FS_STARTED)
			break;
		r = n < 0 ? (int)n : -EPIPE;
		mproc__closep(&fd);
	}
	free(req);
	if (fd < 0)
		return r;
	if (rep.value <= 0) {
		mproc__close(fd);
		return rep.value < 0 ? rep.value : -EBADMSG;
	}
	p->pid = rep.value;
	p->ppid = server;
	r = mproc__pidfd_open(p->pid);  /* fails if it already ended and was reaped: fine */
	p->pidfd = r < 0 ? -1 : r;
	p->sentinel = fd;
	return 0;
}

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int mproc__fs_wait(struct mproc_process *p, int64_t deadline)
{
	struct fs_reply rep;
	siginfo_t si;
	ssize_t n;
	int r;

	if (p->sentinel != p->pidfd) {
		r = mproc__poll1(p->sentinel, POLLIN, deadline);
		if (r < 0)
			return r;
		n = mproc__read_all(p->sentinel, &rep, sizeof(rep), deadline);
		if (n == (ssize_t)sizeof(rep) && rep.kind == FS_EXITED) {
			p->exitcode = rep.value;
			return 0;
		}
		if (n == -ETIMEDOUT)
			return -ETIMEDOUT;
		/* The server died: its child lives on. Wait for it on its pidfd from now on. */
		mproc__close(p->sentinel);
		p->sentinel = p->pidfd;
		if (p->pidfd < 0) {
			p->status_lost = true;
			return 0;
		}
	}
	r = mproc__poll1(p->pidfd, POLLIN, deadline);
	if (r < 0)
		return r;
	/* Reparented to us if we are a subreaper: then the status is ours to collect. */
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED) == 0 && si.si_pid) {
		p->exitcode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
		return 0;
	}
	p->status_lost = true;
	return 0;
}

/* ---- server ------------------------------------------------------------------------------- */

struct fs_child {
	pid_t pid;
	int pidfd;
	int conn;
};

#define FS_CHILDREN_MAX 4096

static void fs_reply_send(int conn, int kind, int value)
{
	struct fs_reply rep = { .kind = kind, .value = value };

	/* Bounded: a client that does not read is not worth blocking the server for. */
	mproc__write_all(conn, &rep, sizeof(rep), mproc__now_ns() + MPROC__NSEC_PER_SEC);
}

int mproc__fs_read_request(int conn, char *buf, struct mproc__req *req)
{
	int64_t deadline = mproc__now_ns() + 2 * MPROC__NSEC_PER_SEC;
	struct mproc__req_hdr h;
	size_t rest;
	ssize_t n;

	mproc__set_nonblock(conn, true);
	n = mproc__read_all(conn, &h, sizeof(h), deadline);
	if (n != (ssize_t)sizeof(h))
		return -EBADMSG;
	/* Bound before reading the rest: lengths over the limits are refused unread. */
	if (h.entry_len > MPROC_ENTRY_NAME_MAX || h.name_len > MPROC_PROCESS_NAME_MAX ||
	    h.arg_len > MPROC_PROCESS_ARG_MAX)
		return -EMSGSIZE;
	rest = (size_t)h.entry_len + h.name_len + h.arg_len;
	memcpy(buf, &h, sizeof(h));
	n = mproc__read_all(conn, buf + sizeof(h), rest, deadline);
	if (n != (ssize_t)rest)
		return -EBADMSG;
	return mproc__req_parse(buf, sizeof(h) + rest, req);
}

static void fs_serve_one(int lfd, struct fs_child *kids, int *nkids, char *buf,
			 const sigset_t *changed)
{
	struct mproc__req req;
	mproc_process_fn *fn;
	sigset_t all, old, none;
	int conn, r;
	pid_t pid;

	conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return;
	r = mproc__fs_read_request(conn, buf, &req);
	if (r == 0 && (req.flags & MPROC__REQ_FORKSERVER))
		r = -EBADMSG;
	fn = r == 0 ? mproc__entry_find(req.entry) : NULL;
	if (r == 0 && !fn)
		r = -ESRCH;
	if (r == 0 && *nkids >= FS_CHILDREN_MAX)
		r = -EAGAIN;
	if (r < 0) {
		fs_reply_send(conn, FS_STARTED, r);
		mproc__close(conn);
		return;
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* Only stdio survives: not the listening socket, the control socket, other clients'
		 * connections or pidfds. No PDEATHSIG: a child outlives a crashed server. */
		syscall(SYS_close_range, 3U, ~0U, 0U);
		/* The handlers the server's image set (SIGPIPE ignored, a constructor's): the
		 * others are SIG_DFL already. A few syscalls, not 64 per child. */
		mproc__signals_default_in(changed);
		mproc__child_setup(req.name, req.flags & MPROC__REQ_DAEMON, 0, MPROC__STOP_SIGNALS);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		exit(fn(mproc__req_arg_copy(&req)) & 0xff);
	}
	r = pid < 0 ? -errno : 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		fs_reply_send(conn, FS_STARTED, r);
		mproc__close(conn);
		return;
	}
	kids[*nkids].pid = pid;
	kids[*nkids].pidfd = mproc__pidfd_open(pid);
	kids[*nkids].conn = conn;
	(*nkids)++;
	fs_reply_send(conn, FS_STARTED, pid);
}

static bool fs_reap_one(struct fs_child *k, bool block)
{
	int status;
	pid_t w;

	while ((w = waitpid(k->pid, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR)
		;
	if (w == 0)
		return false;
	fs_reply_send(k->conn, FS_EXITED, w == k->pid ? mproc__decode_status(status) : -ECHILD);
	mproc__close(k->conn);
	mproc__close(k->pidfd);
	return true;
}

_Noreturn void mproc__fs_server_main(int control, int lfd, const struct mproc__req *sreq)
{
	static struct fs_child kids[FS_CHILDREN_MAX];
	static struct pollfd pf[FS_CHILDREN_MAX + 2];
	char *buf = malloc(MPROC__REQ_MAX);
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	int nkids = 0, hello = 0, n, i;
	bool polling = false;
	sigset_t changed;

	prctl(PR_SET_NAME, "mproc-forksrv");
	signal(SIGPIPE, SIG_IGN);
	mproc__signals_changed(&changed);
	if (!buf || lfd < 0 ||
	    (size_t)snprintf(path, sizeof(path), "%s/sock", sreq->name) >= sizeof(path))
		_exit(1);
	mproc__write_all(control, &hello, sizeof(hello), MPROC__NO_DEADLINE);
	for (;;) {
		pf[0] = (struct pollfd){ .fd = control, .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		polling = false;
		for (i = 0; i < nkids; i++) {
			pf[2 + i] = (struct pollfd){ .fd = kids[i].pidfd, .events = POLLIN };
			if (kids[i].pidfd < 0)
				polling = true;
		}
		n = poll(pf, (nfds_t)(2 + nkids), polling ? 10 : -1);
		if (n < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;          /* the parent is gone, or stopped us */
		for (i = nkids - 1; i >= 0; i--) {
			if ((pf[2 + i].revents || kids[i].pidfd < 0) && fs_reap_one(&kids[i], false))
				kids[i] = kids[--nkids];
		}
		if (pf[1].revents & POLLIN)
			fs_serve_one(lfd, kids, &nkids, buf, &changed);
	}
	/* Parent gone: its children go too (they are its processes, not ours). */
	for (i = 0; i < nkids; i++)
		kill(kids[i].pid, SIGKILL);
	for (i = 0; i < nkids; i++)
		fs_reap_one(&kids[i], true);
	unlink(path);
	rmdir(sreq->name);
	_exit(0);
}
