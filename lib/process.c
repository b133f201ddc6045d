/*
 * process.c - start methods and the process lifecycle (mproc/process.h).
 *
 * fork: fork() with every signal blocked around it, so a signal sent right after start is held
 * (a blocked signal is never discarded, even if the parent ignores it) until the child has reset
 * its handlers to the defaults and unblocked: terminate right after start always kills.
 * vfork/spawn: clone(CLONE_VM|CLONE_VFORK) on a small stack, child exec's the image with the
 * request in a memfd (musl posix_spawn.c: block signals, reset handlers in the child, errno back;
 * under CLONE_VFORK the parent sleeps until exec or exit, so the child's errno is passed through
 * the shared memory itself). posix_spawn: glibc's, with SETSIGDEF/SETSIGMASK.
 * Every exec'd image answers over a status pipe once it found its entry: start returns then.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define MPROC__HAVE_SINGLE_THREADED 1
#endif
#endif
#ifndef MPROC__HAVE_SINGLE_THREADED
#define MPROC__HAVE_SINGLE_THREADED 0
#endif
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/error.h"
#include "mproc/log.h"
#include "process_internal.h"

/* ---- daemon list, atfork ----------------------------------------------------------------- */

static struct mproc__fork_state *const fst = &mproc__fork_state;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Whether no other thread can exist: glibc's __libc_single_threaded is true until the first
 * pthread_create and never again after it, so atfork_prepare and atfork_parent of one fork give
 * the same answer. Unknown (another libc): false. */
static bool single_threaded(void)
{
#if MPROC__HAVE_SINGLE_THREADED
	return __libc_single_threaded;
#else
	return false;
#endif
}

static void atfork_prepare(void)
{
	/* Taking the locks here makes fork wait until no other thread holds them, so the child
	 * never inherits a held library lock. With no other thread nobody can hold them (the
	 * forking thread does not call fork holding one), and the parent writes nothing here and
	 * in atfork_parent: the page of the locks, write-protected by every fork, is not faulted
	 * in again on the parent's side (atfork_child resets the locks either way). */
	if (single_threaded())
		return;
	mproc__fs_lock();
	pthread_mutex_lock(&fst->daemon_lock);
	pthread_mutex_lock(&fst->reg_lock);
}

static void atfork_parent(void)
{
	if (single_threaded())
		return;
	pthread_mutex_unlock(&fst->reg_lock);
	pthread_mutex_unlock(&fst->daemon_lock);
	mproc__fs_unlock();
}

/* Set *m to init unless it already is (compared byte by byte: no libc call in a fork child). */
MPROC__FORK_TEXT static void mutex_reset(pthread_mutex_t *m, const pthread_mutex_t *init)
{
	const unsigned char *a = (const unsigned char *)m, *b = (const unsigned char *)init;

	for (size_t i = 0; i < sizeof(*m); i++) {
		if (a[i] != b[i]) {
			*m = *init;
			return;
		}
	}
}

MPROC__FORK_TEXT static void atfork_child(void)
{
	/* Writes only what needs resetting: the page of the fork state, write-protected by the
	 * fork, costs a page fault in the child to write, and this runs in every fork of the
	 * process, the host program's own too. */
	/* The parent's fst->daemons are not this process's children. */
	if (fst->daemons)
		fst->daemons = NULL;
	mproc__fs_atfork_child();
#if MPROC__TSAN
	if (single_threaded())
		return;         /* atfork_prepare took none */
	pthread_mutex_unlock(&fst->reg_lock);
	pthread_mutex_unlock(&fst->daemon_lock);
	mproc__fs_unlock();
#else
	/* Free, or taken by the forking thread (atfork_prepare), which is this process's only
	 * thread: either way, set them back to their initial state with plain stores, as glibc
	 * does for its own locks in a fork child, rather than run pthread_mutex_unlock, whose
	 * libc code the child would fault in (TSan, which tracks lock state, gets the unlocks).
	 * A lock already in that state (a process that never had a second thread) is not
	 * written. Built on the stack: an initializer copied from .rodata is a page to fault. */
	pthread_mutex_t normal = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_t recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

	mutex_reset(&fst->reg_lock, &normal);
	mutex_reset(&fst->daemon_lock, &recursive);
	mutex_reset(&fst->fs_lock, &normal);
#endif
}

static void at_exit(void)
{
	struct mproc_process *p;

	/* Daemons die with a normally exiting parent: SIGTERM, 1 s grace, SIGKILL, reaped. */
	pthread_mutex_lock(&fst->daemon_lock);
	for (p = fst->daemons; p; p = p->next_daemon) {
		if (p->state != P_RUNNING)
			continue;
		mproc_process_terminate(p);
		if (mproc_process_join(p, 1.0) == -ETIMEDOUT) {
			mproc_process_kill(p);
			mproc_process_join(p, MPROC_FOREVER);
		}
	}
	fst->daemons = NULL;
	pthread_mutex_unlock(&fst->daemon_lock);
	mproc_forkserver_stop();
}

/* ---- init (process objects live in process_arena.c) ------------------------------------- */

static void init(void)
{
	mproc__process_arena_init();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(at_exit);
}

static void init_once_now(void)
{
	pthread_once(&init_once, init);
}


/* ---- names -------------------------------------------------------------------------------- */

static const char *const method_names[MPROC_START__COUNT] = {
	[MPROC_START_FORK] = "fork",
	[MPROC_START_VFORK] = "vfork",
	[MPROC_START_POSIX_SPAWN] = "posix_spawn",
	[MPROC_START_SPAWN] = "spawn",
	[MPROC_START_FORKSERVER] = "forkserver",
	[MPROC_START_THREAD] = "thread",
};

const char *mproc_start_method_name(enum mproc_start_method m)
{
	if ((unsigned)m >= MPROC_START__COUNT)
		return "?";
	return method_names[m];
}

int mproc_start_method_from_name(const char *name, enum mproc_start_method *m)
{
	if (!name || !m)
		return -EINVAL;
	for (unsigned i = 0; i < MPROC_START__COUNT; i++) {
		if (strcmp(name, method_names[i]) == 0) {
			*m = (enum mproc_start_method)i;
			return 0;
		}
	}
	return -EINVAL;
}

static bool is_exec_method(enum mproc_start_method m)
{
	return m == MPROC_START_VFORK || m == MPROC_START_POSIX_SPAWN || m == MPROC_START_SPAWN ||
	       m == MPROC_START_FORKSERVER;
}

/* ---- the child image's entry ---------------------------------------------------------------- */

/* In the child image. */
static _Noreturn void run_child_image(int reqfd, int statusfd, int extrafd)
{
	struct mproc__req req;
	struct stat stt;
	mproc_process_fn *fn;
	int32_t answer;
	char *buf;
	ssize_t n;
	int r;

	if (fstat(reqfd, &stt) < 0 || stt.st_size < 0 || (size_t)stt.st_size > MPROC__REQ_MAX)
		_exit(127);
	buf = malloc((size_t)stt.st_size + 1);
	if (!buf)
		_exit(127);
	n = pread(reqfd, buf, (size_t)stt.st_size, 0);
	mproc__close(reqfd);
	if (n != stt.st_size || mproc__req_parse(buf, (size_t)n, &req) < 0)
		_exit(127);
	mproc__set_cloexec(statusfd, true);
	if (req.flags & MPROC__REQ_FORKSERVER)
		mproc__fs_server_main(statusfd, extrafd, &req);
	/* A process image: extrafd is the read end of its parent-death pipe (start_exec), armed
	 * below, after mproc__child_setup, and kept open (close-on-exec) for the image's life. */
	if (extrafd >= 0)
		mproc__set_cloexec(extrafd, true);
	fn = mproc__entry_find(req.entry);
	if (!fn) {
		answer = -ESRCH;
		mproc__write_all(statusfd, &answer, sizeof(answer), MPROC__NO_DEADLINE);
		_exit(127);
	}
	/* Not every signal: the exec that made this image reset the handlers (the vfork child
	 * before execve, posix_spawn with SETSIGDEF); what is set now the image's own constructors
	 * set on purpose. 5 syscalls, not 64. */
	mproc__child_setup(req.name, req.flags & MPROC__REQ_DAEMON, req.ppid, MPROC__STOP_SIGNALS);
	mproc__death_pipe_arm(extrafd);
	answer = 0;
	mproc__write_all(statusfd, &answer, sizeof(answer), MPROC__NO_DEADLINE);
	/* statusfd stays open (close-on-exec): without pidfds the parent's sentinel is its EOF. */
	r = fn(mproc__req_arg_copy(&req));
	exit(r & 0xff);
}

void mproc_main_hook(int argc, char **argv)
{
	int a, b, c;
	char tail;

	if (argc < 2 || !argv || !argv[1] || strncmp(argv[1], "--mproc-child=", 14) != 0)
		return;
	if (sscanf(argv[1] + 14, "%d:%d:%d%c", &a, &b, &c, &tail) != 3 || a < 0 || b < 0)
		_exit(127);
	run_child_image(a, b, c);
}

/* ---- the object --------------------------------------------------------------------------- */

struct mproc__thr {
	mproc_process_fn *fn;
	void *arg;
	int ret;
	int wfd;                /* closed when the thread ends: the sentinel reads EOF */
	pthread_t tid;
};

int mproc_process_new(struct mproc_process **out, mproc_process_fn *fn, void *arg,
		      const struct mproc_process_opts *opts)
{
	struct mproc_process_opts def = { 0 };
	struct mproc_process *p = NULL;
	const char *entry = NULL;
	char namebuf[32];
	const char *name;

	if (!out || !fn)
		return -EINVAL;
	if (!opts)
		opts = &def;
	if ((unsigned)opts->method >= MPROC_START__COUNT)
		return -EINVAL;
	if (opts->name && !opts->name[0])
		return -EINVAL;
	if (opts->name && strlen(opts->name) > MPROC_PROCESS_NAME_MAX)
		return -EMSGSIZE;
	if (is_exec_method(opts->method)) {
		if (opts->arg_len > MPROC_PROCESS_ARG_MAX)
			return -EMSGSIZE;
		if (opts->arg_len && !arg)
			return -EINVAL;
		if (opts->entry) {
			if (!opts->entry[0])
				return -EINVAL;
			if (strlen(opts->entry) > MPROC_ENTRY_NAME_MAX)
				return -EMSGSIZE;
			if (mproc__entry_find(opts->entry) != fn)
				return -ESRCH;
			entry = opts->entry;
		} else {
			entry = mproc__entry_name_of(fn);
			if (!entry)
				return -ESRCH;
		}
	}
	init_once_now();
	p = mproc__process_alloc();
	if (!p)
		return -ENOMEM;
	p->method = opts->method;
	p->fn = fn;
	p->arg = arg;
	p->daemon = opts->daemon;
	p->pidfd = -1;
	p->sentinel = -1;
	p->death_wr = -1;
	p->state = P_NEW;
	snprintf(namebuf, sizeof(namebuf), "mproc-%s", method_names[opts->method]);
	name = opts->name ? opts->name : namebuf;
	memcpy(p->name, name, strlen(name) + 1);        /* checked: <= MPROC_PROCESS_NAME_MAX */
	if (entry) {
		p->entry = strdup(entry);
		p->exe = opts->exe ? strdup(opts->exe) : mproc__exe_dup();
		if (!p->entry || !p->exe)
			goto out_nomem;
		if (opts->arg_len) {
			p->argbuf = malloc(opts->arg_len);
			if (!p->argbuf)
				goto out_nomem;
			memcpy(p->argbuf, arg, opts->arg_len);
			p->arg_len = opts->arg_len;
		}
	}
	*out = p;
	return 0;
out_nomem:
	mproc_process_free(p);
	return -ENOMEM;
}

static void fork_warn_threads(void)
{
	char buf[512], *s;
	long threads = 0;
	ssize_t n;
	int fd;

	/* Only when someone listens: reading /proc costs more than a warning is worth. */
	if (!mproc_log_enabled(MPROC_LOG_WARNING))
		return;
	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	mproc__close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	s = strrchr(buf, ')');
	/* After "(comm)": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice num_threads (the 18th field). */
	for (int i = 0; s && i < 18; i++)
		s = strchr(s + 1, ' ');
	if (s)
		threads = strtol(s + 1, NULL, 10);
	if (threads > 1)
		mproc_log(MPROC_LOG_WARNING,
			  "fork with %ld threads: the child gets only the calling one, and locks "
			  "other threads held stay held in it", threads);
}

/* 1 if pidfd_open works here, 0 if not (Linux < 5.3, a seccomp filter, valgrind 3.19), asked
 * once by opening a pidfd of ourselves. Callers that need a sentinel must know before fork:
 * a pipe sentinel has to be made before the child exists. */
static bool pidfd_works(void)
{
	static _Atomic int state;       /* 0 unknown, 1 works, -1 does not */
	int s = atomic_load_explicit(&state, memory_order_relaxed), fd;

	if (s == 0) {
		fd = mproc__pidfd_open(getpid());
		if (fd >= 0)
			mproc__close(fd);
		if (fd >= 0 || fd == -ENOSYS || fd == -EPERM) {
			s = fd >= 0 ? 1 : -1;
			atomic_store_explicit(&state, s, memory_order_relaxed);
		}
	}
	return s >= 0;  /* unknown (EMFILE...): try the pidfd */
}

/* Long (about 100 lines) on purpose: the fork path reads top to bottom: what the child needs,
 * read before fork (the child may make async-signal-safe calls only), the signal mask around
 * fork, the child's few lines, then the parent's; cut apart, the orderings that the comments
 * inside name would span functions. */
MPROC__FORK_TEXT static int start_fork(struct mproc_process *p)
{
	int sp[2] = { -1, -1 }, dp[2];
	sigset_t all, old;
	pid_t pid, me = getpid();
	/* PR_SET_PDEATHSIG fires when the starting *thread* exits: armed only from the main one
	 * (mproc__pdeathsig_ppid, with one system call fewer). */
	pid_t pdeath = gettid() == me ? me : 0;
	bool no_pidfd = !pidfd_works();
	/* What the child needs, read before fork: in the child, p reads as zeros (the arena).
	 * The name as far as the child uses it (PR_SET_NAME keeps 15 bytes, the log name 63). */
	mproc_process_fn *fn = p->fn;
	void *arg = p->arg;
	char name[MPROC__LOG_NAME_MAX];
	bool daemon = p->daemon;
	uint64_t reset;
	bool masked;
	size_t n;
	int r;

	fork_warn_threads();
	for (n = 0; n < sizeof(name) - 1 && p->name[n]; n++)
		name[n] = p->name[n];   /* truncated on purpose: see above */
	name[n] = '\0';
	if (pipe2(dp, O_CLOEXEC) < 0)
		return -errno;
	if (no_pidfd && pipe2(sp, O_CLOEXEC) < 0) {
		r = -errno;
		mproc__close(dp[0]);
		mproc__close(dp[1]);
		return r;
	}
	/* Which stop signals the child must reset: asked here, not in the new child, where the
	 * first touch of each page of libc and of the stack is a page fault, so the same system
	 * call costs several times more (tools/fork_steps measures it). */
	reset = mproc__stop_signals_changed();
	pthread_sigmask(SIG_SETMASK, NULL, &old);
	/* Signals stay blocked across fork only when the child has something to undo: a stop
	 * signal to reset (no handler of the parent's may run in the child first) or a mask to
	 * clear. Otherwise the child starts with the empty mask and default stop signals it needs,
	 * and 3 system calls are saved (tools/fork_steps: "sigmask"). A handler another thread
	 * installs between the question and fork stays in the child, as every other handler does. */
	masked = reset || !sigisemptyset(&old);
	if (masked) {
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, NULL);
	}
	pid = fork();
	if (pid == 0) {
		/* The empty set is all zero bits, and the kernel's sigset is 64 bits. */
		const uint64_t none = 0;

		/* Inline system calls only (see sys5): no libc code beyond fork's and _exit's. The
		 * child holds the write end of sp until it exits: EOF is the parent's sentinel. */
		if (sp[0] >= 0)
			mproc__sys5(SYS_close, sp[0], 0, 0, 0, 0);
		mproc__sys5(SYS_close, dp[1], 0, 0, 0, 0);
		mproc__child_setup(name, daemon, pdeath, reset);
		mproc__death_pipe_arm(dp[0]);
		if (masked)
			mproc__sys5(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, sizeof(none),
				    0);
		r = fn(arg) & 0xff;
		/* _exit, inline (glibc's _exit is exit_group). */
		for (;;)
			mproc__sys5(SYS_exit_group, r, 0, 0, 0, 0);
	}
	r = pid < 0 ? -errno : 0;
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	mproc__close(sp[1]);
	mproc__close(dp[0]);
	if (r < 0) {
		mproc__close(sp[0]);
		mproc__close(dp[1]);
		return r;
	}
	p->death_wr = dp[1];
	p->pid = pid;
	p->ppid = me;
	if (sp[0] >= 0) {
		p->sentinel = sp[0];
		return 0;
	}
	p->pidfd = mproc__pidfd_open(pid);
	if (p->pidfd < 0 && p->pidfd != -ENOSYS) {
		/* EMFILE, ENOMEM: a child without a sentinel could not be polled for; undo. */
		r = p->pidfd;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		p->pid = 0;
		p->ppid = 0;
		p->pidfd = -1;
		mproc__closep(&p->death_wr);
		return r;
	}
	if (p->pidfd < 0)
		p->pidfd = -1;  /* this child is waited for by polling waitpid */
	p->sentinel = p->pidfd;
	return 0;
}

static int start_exec(struct mproc_process *p)
{
	int st[2] = { -1, -1 }, dp[2] = { -1, -1 };
	int reqfd = -1, r;
	void *req = NULL;
	size_t len;
	int32_t answer;
	ssize_t n;
	pid_t pid = 0, me = getpid();

	r = mproc__req_build(&req, &len, p->daemon ? MPROC__REQ_DAEMON : 0, mproc__pdeathsig_ppid(),
			     p->entry, p->name, p->argbuf, p->arg_len);
	if (r < 0)
		return r;
	reqfd = mproc__memfd_of(req, len);
	free(req);
	if (reqfd < 0)
		return reqfd;
	if (pipe2(st, O_CLOEXEC) < 0 || pipe2(dp, O_CLOEXEC) < 0) {
		r = -errno;
		goto out_close;
	}
	/* The image gets the read end of its parent-death pipe (mproc__death_pipe_arm). */
	r = mproc__exec_child(p->method == MPROC_START_POSIX_SPAWN ? MPROC_START_POSIX_SPAWN :
			      MPROC_START_VFORK, p->exe, p->name, reqfd, st[1], dp[0],
			      p->method == MPROC_START_SPAWN, &pid);
	mproc__closep(&reqfd);
	mproc__closep(&st[1]);
	mproc__closep(&dp[0]);
	if (r < 0)
		goto out_close;
	p->pid = pid;
	p->ppid = me;
	p->pidfd = mproc__pidfd_open(pid);
	/* The handshake: the image found its entry (0), or not (-ESRCH), or died (EOF). */
	n = mproc__read_all(st[0], &answer, sizeof(answer), MPROC__NO_DEADLINE);
	if (n != (ssize_t)sizeof(answer) || answer < 0) {
		r = n < 0 ? (int)n : n != (ssize_t)sizeof(answer) ? -ECHILD : answer;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		mproc__closep(&p->pidfd);
		p->pid = 0;
		goto out_close;
	}
	if (p->pidfd >= 0) {
		mproc__closep(&st[0]);
		p->sentinel = p->pidfd;
	} else {
		p->sentinel = st[0];    /* EOF when the child (which holds the write end) exits */
	}
	p->death_wr = dp[1];
	return 0;
out_close:
	mproc__close(reqfd);
	mproc__close(st[0]);
	mproc__close(st[1]);
	mproc__close(dp[0]);
	mproc__close(dp[1]);
	return r;
}

static void *thread_main(void *a)
{
	struct mproc__thr *t = a;

	t->ret = t->fn(t->arg);
	mproc__closep(&t->wfd);
	return NULL;
}

static int start_thread(struct mproc_process *p)
{
	struct mproc__thr *t;
	int fds[2];
	int r;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		r = -errno;
		free(t);
		return r;
	}
	t->fn = p->fn;
	t->arg = p->arg;
	t->wfd = fds[1];
	r = -pthread_create(&t->tid, NULL, thread_main, t);
	if (r < 0) {
		mproc__close(fds[0]);
		mproc__close(fds[1]);
		free(t);
		return r;
	}
	p->thr = t;
	p->sentinel = fds[0];
	p->pid = 0;
	p->ppid = getpid();
	return 0;
}

int mproc_process_start(struct mproc_process *p)
{
	int r;

	if (!p)
		return -EINVAL;
	if (p->state != P_NEW)
		return p->state == P_FOREIGN ? -ECHILD : -EINVAL;
	if (fst->am_daemon && p->method != MPROC_START_THREAD)
		return -EPERM;
	switch (p->method) {
	case MPROC_START_FORK:
		r = start_fork(p);
		break;
	case MPROC_START_VFORK:
	case MPROC_START_POSIX_SPAWN:
	case MPROC_START_SPAWN:
		r = start_exec(p);
		break;
	case MPROC_START_FORKSERVER:
		r = mproc__fs_start_process(p);
		break;
	case MPROC_START_THREAD:
		r = start_thread(p);
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0)
		return r;
	p->state = P_RUNNING;
	if (p->daemon && p->method != MPROC_START_THREAD) {
		pthread_mutex_lock(&fst->daemon_lock);
		p->next_daemon = fst->daemons;
		fst->daemons = p;
		pthread_mutex_unlock(&fst->daemon_lock);
	}
	return 0;
}

#ifndef PIDFD_GET_INFO
/* Linux 6.15: the exit status survives reaping by someone else (SIGCHLD=SIG_IGN). */
struct mproc__pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define MPROC__PIDFD_INFO_EXIT (1ULL << 3)
#define MPROC__PIDFD_GET_INFO _IOWR(0xFF, 11, struct mproc__pidfd_info)
#endif

static void reap(struct mproc_process *p)
{
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(p->pid, &status, 0);
		if (r == p->pid) {
			p->exitcode = mproc__decode_status(status);
			p->status_lost = false;
			return;
		}
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	/* ECHILD: the host ignores SIGCHLD, so the kernel reaped it. Ask the pidfd. */
	p->status_lost = true;
#ifndef PIDFD_GET_INFO
	if (p->pidfd >= 0) {
		struct mproc__pidfd_info info;

		memset(&info, 0, sizeof(info));
		info.mask = MPROC__PIDFD_INFO_EXIT;
		if (ioctl(p->pidfd, MPROC__PIDFD_GET_INFO, &info) == 0 &&
		    (info.mask & MPROC__PIDFD_INFO_EXIT)) {
			p->exitcode = mproc__decode_status(info.exit_code);
			p->status_lost = false;
		}
	}
#endif
}

static void ended(struct mproc_process *p)
{
	p->state = P_ENDED;
	if (p->daemon) {
		struct mproc_process **pp;

		pthread_mutex_lock(&fst->daemon_lock);
		for (pp = &fst->daemons; *pp; pp = &(*pp)->next_daemon) {
			if (*pp == p) {
				*pp = p->next_daemon;
				break;
			}
		}
		pthread_mutex_unlock(&fst->daemon_lock);
	}
}

static int wait_ended(struct mproc_process *p, int64_t deadline)
{
	int r;

	if (p->method == MPROC_START_THREAD) {
		r = mproc__poll1(p->sentinel, POLLIN, deadline);
		if (r < 0)
			return r;
		pthread_join(p->thr->tid, NULL);
		p->exitcode = p->thr->ret;
		free(p->thr);
		p->thr = NULL;
		return 0;
	}
	if (p->method == MPROC_START_FORKSERVER)
		return mproc__fs_wait(p, deadline);
	if (p->sentinel >= 0 && deadline == MPROC__NO_DEADLINE && p->sentinel == p->pidfd) {
		reap(p);        /* a blocking waitpid: one syscall and one wakeup fewer than poll */
		return 0;
	}
	if (p->sentinel >= 0) {
		r = mproc__poll1(p->sentinel, POLLIN, deadline);
		if (r < 0)
			return r;
		reap(p);
		return 0;
	}
	/* No sentinel (no pidfds): poll waitpid with a short sleep. */
	for (;;) {
		int status;
		pid_t w = waitpid(p->pid, &status, WNOHANG);

		if (w == p->pid) {
			p->exitcode = mproc__decode_status(status);
			return 0;
		}
		if (w < 0 && errno != EINTR) {
			p->status_lost = true;
			return 0;
		}
		if (deadline != MPROC__NO_DEADLINE && mproc__now_ns() >= deadline)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

int mproc_process_join(struct mproc_process *p, double timeout_s)
{
	int64_t deadline;
	int r;

	if (!p)
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	if (p->state == P_ENDED)
		return 0;
	if (p->state != P_RUNNING)
		return p->state == P_FOREIGN ? -ECHILD : -EINVAL;
	r = wait_ended(p, deadline);
	if (r < 0)
		return r;
	ended(p);
	return 0;
}

bool mproc_process_is_alive(struct mproc_process *p)
{
	if (!p || p->state != P_RUNNING)
		return false;
	return mproc_process_join(p, 0) == -ETIMEDOUT;
}

static int send_signal(struct mproc_process *p, int sig)
{
	if (p && p->state == P_FOREIGN)
		return -ECHILD;
	if (!p || p->state == P_NEW || p->state == P_CLOSED)
		return -EINVAL;
	if (p->method == MPROC_START_THREAD)
		return -ENOTSUP;
	if (p->state == P_ENDED)
		return 0;
#ifdef SYS_pidfd_send_signal
	if (p->pidfd >= 0) {
		if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) == 0 || errno == ESRCH)
			return 0;
		return -errno;
	}
#endif
	/* Without a pidfd the pid is still ours: it is not reaped until join, so not reused. */
	if (kill(p->pid, sig) == 0 || errno == ESRCH)
		return 0;
	return -errno;
}

int mproc_process_terminate(struct mproc_process *p)
{
	return send_signal(p, SIGTERM);
}

int mproc_process_kill(struct mproc_process *p)
{
	return send_signal(p, SIGKILL);
}

int mproc_process_exitcode(struct mproc_process *p, int *code)
{
	if (p && code && p->state == P_FOREIGN)
		return -ECHILD;
	if (!p || !code || p->state == P_NEW || p->state == P_CLOSED)
		return -EINVAL;
	if (p->state == P_RUNNING && mproc_process_join(p, 0) == -ETIMEDOUT)
		return -EAGAIN;
	if (p->status_lost)
		return -ECHILD;
	*code = p->exitcode;
	return 0;
}

pid_t mproc_process_pid(const struct mproc_process *p)
{
	return p ? p->pid : 0;
}

pid_t mproc_process_ppid(const struct mproc_process *p)
{
	return p ? p->ppid : 0;
}

const char *mproc_process_name(const struct mproc_process *p)
{
	return p && p->state != P_FOREIGN ? p->name : NULL;
}

enum mproc_start_method mproc_process_method(const struct mproc_process *p)
{
	return p && p->state != P_FOREIGN ? p->method : MPROC_START__COUNT;
}

int mproc_process_sentinel(const struct mproc_process *p)
{
	if (p && p->state == P_FOREIGN)
		return -ECHILD;
	if (!p || p->state == P_NEW || p->state == P_CLOSED || p->sentinel < 0)
		return -EINVAL;
	return p->sentinel;
}

static void release(struct mproc_process *p)
{
	if (p->sentinel != p->pidfd)
		mproc__close(p->sentinel);
	mproc__closep(&p->pidfd);
	mproc__closep(&p->death_wr);
	p->sentinel = -1;
}

int mproc_process_close(struct mproc_process *p)
{
	if (!p || p->state == P_NEW)
		return -EINVAL;
	if (p->state == P_FOREIGN)
		return -ECHILD;
	if (p->state == P_CLOSED)
		return 0;
	if (p->state == P_RUNNING && mproc_process_join(p, 0) == -ETIMEDOUT)
		return -EBUSY;
	release(p);
	p->state = P_CLOSED;
	return 0;
}

void mproc_process_free(struct mproc_process *p)
{
	/* A foreign object (inherited by a fork child) is the parent's: its memory is never
	 * handed out again here, and what it points to is not this process's to free. */
	if (!p || p->state == P_FOREIGN)
		return;
	if (p->state == P_RUNNING) {
		if (p->thr) {
			/* A running thread keeps its block; it is detached and freed by nobody
			 * (a documented, bounded leak: do join first). */
			pthread_detach(p->thr->tid);
		}
		p->daemon = true;       /* unlink from the daemon list */
		ended(p);
		/* Left running, it keeps its parent-death link: closing our end would kill it.
		 * The fd stays open, as the unreaped child stays a zombie (join first). */
		p->death_wr = -1;
	}
	release(p);
	free(p->entry);
	free(p->argbuf);
	free(p->exe);
	mproc__process_release(p);
}
