/*
 * process_child.c - what a new process runs before the user's function, and what starts an
 * image: the entry registry, the request format (an entry, a name and argument bytes for a
 * child image or the forkserver), the child-side setup every start method shares, and the exec
 * of a child image (clone(CLONE_VM|CLONE_VFORK) or posix_spawn). process.c and forkserver.c
 * both call it; it calls neither, so the two no longer call each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/error.h"
#include "process_internal.h"

#if MPROC__ASAN
#include <sanitizer/asan_interface.h>
#endif

extern char **environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* ---- the fork state and the entry registry ---------------------------------------------- */

#define ENTRY_MAX 256
struct mproc__fork_state mproc__fork_state __attribute__((aligned(MPROC__FORK_STATE_ALIGN))) = {
	.fs_lock = PTHREAD_MUTEX_INITIALIZER,
	.reg_lock = PTHREAD_MUTEX_INITIALIZER,
	.daemon_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP,
	.log_name = "MainProcess",
	.fs = { .pid = 0, .control = -1 },
};
_Static_assert(sizeof(struct mproc__fork_state) <= MPROC__FORK_STATE_ALIGN,
	       "the fork state must fit in its alignment, so it never straddles two pages");
static struct mproc__fork_state *const fst = &mproc__fork_state;

static struct {
	char name[MPROC_ENTRY_NAME_MAX + 1];
	mproc_process_fn *fn;
} reg[ENTRY_MAX];
static int reg_n;

int mproc_entry_register(const char *name, mproc_process_fn *fn)
{
	size_t n;
	int r = 0;

	if (!name || !fn || !name[0])
		return -EINVAL;
	n = strlen(name);
	if (n > MPROC_ENTRY_NAME_MAX)
		return -EMSGSIZE;
	pthread_mutex_lock(&fst->reg_lock);
	for (int i = 0; i < reg_n; i++) {
		if (strcmp(reg[i].name, name) == 0) {
			r = reg[i].fn == fn ? 0 : -EEXIST;
			goto out;
		}
	}
	if (reg_n == ENTRY_MAX) {
		r = -ENOSPC;
		goto out;
	}
	memcpy(reg[reg_n].name, name, n + 1);
	reg[reg_n].fn = fn;
	reg_n++;
out:
	pthread_mutex_unlock(&fst->reg_lock);
	return r;
}

/* The image the exec-based methods run by default (mproc_set_executable); NULL: our own. Guarded
 * by reg_lock (reset across fork by the atfork handlers). */
static char *default_exe;

int mproc_set_executable(const char *path)
{
	char *abs = NULL, *old;
	struct stat st;
	int r = 0;

	if (path) {
		if (!path[0])
			return -EINVAL;
		if (strnlen(path, PATH_MAX) >= PATH_MAX)
			return -ENAMETOOLONG;
		/* Absolute, so a later chdir does not change what runs. */
		abs = realpath(path, NULL);
		if (!abs)
			return errno == ENOMEM ? -ENOMEM : -errno;
		/* A directory passes access(X_OK), but execve refuses anything but a regular
		 * file with EACCES: say it now, not at start. */
		if (stat(abs, &st) < 0)
			r = -errno;
		else if (!S_ISREG(st.st_mode))
			r = -EACCES;
		else if (access(abs, X_OK) < 0)
			r = -errno;
		if (r < 0) {
			free(abs);
			return r;
		}
	}
	pthread_mutex_lock(&fst->reg_lock);
	old = default_exe;
	default_exe = abs;
	pthread_mutex_unlock(&fst->reg_lock);
	free(old);
	return 0;
}

char *mproc__exe_dup(void)
{
	char *r;

	pthread_mutex_lock(&fst->reg_lock);
	r = strdup(default_exe ? default_exe : "/proc/self/exe");
	pthread_mutex_unlock(&fst->reg_lock);
	return r;
}

mproc_process_fn *mproc__entry_find(const char *name)
{
	mproc_process_fn *fn = NULL;

	pthread_mutex_lock(&fst->reg_lock);
	for (int i = 0; i < reg_n; i++) {
		if (strcmp(reg[i].name, name) == 0) {
			fn = reg[i].fn;
			break;
		}
	}
	pthread_mutex_unlock(&fst->reg_lock);
	return fn;
}

const char *mproc__entry_name_of(mproc_process_fn *fn)
{
	const char *name = NULL;

	pthread_mutex_lock(&fst->reg_lock);
	for (int i = 0; i < reg_n; i++) {
		if (reg[i].fn == fn) {
			name = reg[i].name;     /* entries are never removed */
			break;
		}
	}
	pthread_mutex_unlock(&fst->reg_lock);
	return name;
}

bool mproc__is_daemon(void)
{
	return fst->am_daemon;
}

/* ---- request format ----------------------------------------------------------------------- */

int mproc__req_parse(const void *buf, size_t len, struct mproc__req *out)
{
	struct mproc__req_hdr h;
	const char *p = buf;
	size_t need;

	if (!buf || len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != MPROC__REQ_MAGIC || h.version != MPROC__REQ_VERSION ||
	    (h.flags & ~MPROC__REQ_FLAGS_ALL))
		return -EBADMSG;
	if (h.entry_len > MPROC_ENTRY_NAME_MAX || h.name_len > MPROC_PROCESS_NAME_MAX ||
	    h.arg_len > MPROC_PROCESS_ARG_MAX)
		return -EMSGSIZE;
	need = sizeof(h) + (size_t)h.entry_len + h.name_len + h.arg_len;
	if (need != len || h.ppid < 0)
		return -EBADMSG;
	if (h.entry_len == 0 && !(h.flags & MPROC__REQ_FORKSERVER))
		return -EBADMSG;
	p += sizeof(h);
	if (memchr(p, '\0', h.entry_len) || memchr(p + h.entry_len, '\0', h.name_len))
		return -EBADMSG;
	out->flags = h.flags;
	out->ppid = h.ppid;
	memcpy(out->entry, p, h.entry_len);
	out->entry[h.entry_len] = '\0';
	p += h.entry_len;
	memcpy(out->name, p, h.name_len);
	out->name[h.name_len] = '\0';
	p += h.name_len;
	out->arg = h.arg_len ? p : NULL;
	out->arg_len = h.arg_len;
	return 0;
}

int mproc__req_build(void **buf, size_t *len, unsigned flags, pid_t ppid, const char *entry,
		     const char *name, const void *arg, size_t arg_len)
{
	struct mproc__req_hdr h = {
		.magic = MPROC__REQ_MAGIC,
		.version = MPROC__REQ_VERSION,
		.flags = (uint16_t)flags,
		.ppid = ppid,
	};
	size_t el = entry ? strlen(entry) : 0, nl = name ? strlen(name) : 0;
	char *b, *p;

	if (el > MPROC_ENTRY_NAME_MAX || nl > MPROC_PROCESS_NAME_MAX ||
	    arg_len > MPROC_PROCESS_ARG_MAX)
		return -EMSGSIZE;
	h.entry_len = (uint32_t)el;
	h.name_len = (uint32_t)nl;
	h.arg_len = (uint32_t)arg_len;
	b = malloc(sizeof(h) + el + nl + arg_len + 1);
	if (!b)
		return -ENOMEM;
	p = b;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	if (el)
		memcpy(p, entry, el);
	p += el;
	if (nl)
		memcpy(p, name, nl);
	p += nl;
	if (arg_len)
		memcpy(p, arg, arg_len);
	*buf = b;
	*len = sizeof(h) + el + nl + arg_len;
	return 0;
}

/* Held for the life of the child (and reachable, so leak checkers at exit do not flag it). */
static void *child_arg;

void *mproc__req_arg_copy(const struct mproc__req *req)
{
	if (!req->arg_len)
		return NULL;
	child_arg = malloc(req->arg_len);
	if (!child_arg)
		_exit(127);
	memcpy(child_arg, req->arg, req->arg_len);
	return child_arg;
}

int mproc__memfd_of(const void *buf, size_t len)
{
	int fd = memfd_create("mproc-req", MFD_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -errno;
	r = mproc__write_all(fd, buf, len, MPROC__NO_DEADLINE);
	if (r < 0) {
		mproc__close(fd);
		return (int)r;
	}
	return fd;
}

/* ---- child side --------------------------------------------------------------------------- */


void mproc__signals_changed(sigset_t *set)
{
	struct sigaction old;

	sigemptyset(set);
	for (int s = 1; s < _NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		if (sigaction(s, NULL, &old) == 0 && old.sa_handler != SIG_DFL)
			sigaddset(set, s);
	}
}

void mproc__signals_default_in(const sigset_t *set)
{
	unsigned long ksa_default[8] = { 0 };   /* see mproc__child_setup */

	for (int s = 1; s < _NSIG; s++) {
		if (sigismember(set, s) == 1)
			syscall(SYS_rt_sigaction, s, ksa_default, NULL, (_NSIG - 1) / 8);
	}
}

uint64_t mproc__stop_signals_changed(void)
{
	uint64_t changed = 0;
	struct sigaction old;

	for (int sig = 1; sig < 64; sig++) {
		if ((MPROC__STOP_SIGNALS & 1ULL << sig) && sigaction(sig, NULL, &old) == 0 &&
		    old.sa_handler != SIG_DFL)
			changed |= 1ULL << sig;
	}
	return changed;
}

MPROC__FORK_CHILD void mproc__child_setup(const char *name, bool daemon, pid_t ppid,
					uint64_t reset)
{
	/* The kernel's struct sigaction for SIG_DFL, no flags, empty mask is all zeros whatever
	 * the architecture's field order. On the stack, not in .rodata, for the same reason. */
	unsigned long ksa_default[8] = { 0 };
	char comm[16];
	size_t n;

	/* Inline system calls (sys5), not sigaction/prctl/strlen: in a fork child every 64 KiB of
	 * libc code not yet run there costs a page fault. */
	for (int sig = 1; reset && sig < 64; sig++) {
		if (reset & 1ULL << sig)
			mproc__sys5(SYS_rt_sigaction, sig, (long)ksa_default, 0, (_NSIG - 1) / 8, 0);
	}
	/* Die with the parent. PDEATHSIG is armed after fork, so the parent may already be gone:
	 * the getppid() re-check closes that race. */
	if (ppid > 0) {
		mproc__sys5(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (mproc__sys5(SYS_getppid, 0, 0, 0, 0, 0) != ppid)
			_exit(128 + SIGKILL);
	}
	if (name && name[0]) {
		for (n = 0; name[n] && n < sizeof(comm) - 1; n++)
			comm[n] = name[n];      /* PR_SET_NAME keeps 15 bytes; the API keeps it all */
		comm[n] = '\0';
		mproc__sys5(SYS_prctl, PR_SET_NAME, (long)comm, 0, 0, 0);
		/* The log name, copied here: a call out of this section would map more code. */
		for (n = 0; name[n] && n < sizeof(fst->log_name) - 1; n++)
			fst->log_name[n] = name[n];
		fst->log_name[n] = '\0';
	}
	if (fst->am_daemon != daemon)
		fst->am_daemon = daemon;
}

int mproc__decode_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return -EINVAL;
}

int mproc__pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -errno : fd;
#else
	return -ENOSYS;
#endif
}

/* ---- exec of a child image ---------------------------------------------------------------- */

struct exec_args {
	const char *exe;
	char *const *argv;
	int keep[3];
	bool closefds;
	volatile int err;
};

/* Runs on its own small stack sharing our memory (CLONE_VM): like a signal handler, only
 * syscalls. Not instrumented: ASan would see a foreign stack. */
__attribute__((no_sanitize_address, no_sanitize("undefined")))
MPROC__FORK_CHILD void mproc__death_pipe_arm(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec zero = { 0, 0 };

	if (fd < 0)
		return;
	/* Inline system calls, as in mproc__child_setup: no libc code in a fork child. */
	mproc__sys5(SYS_fcntl, fd, F_SETSIG, SIGKILL, 0, 0);
	mproc__sys5(SYS_fcntl, fd, F_SETOWN, mproc__sys5(SYS_getpid, 0, 0, 0, 0, 0), 0, 0);
	mproc__sys5(SYS_fcntl, fd, F_SETFL, O_ASYNC, 0, 0);
	/* The parent may be gone before the request was made: then no signal comes. */
	if (mproc__sys5(SYS_ppoll, (long)&pfd, 1, (long)&zero, 0, 0) > 0 && (pfd.revents & POLLHUP))
		_exit(128 + SIGKILL);
}

pid_t mproc__pdeathsig_ppid(void)
{
	pid_t me = getpid();

	return gettid() == me ? me : 0;
}

static int exec_child_fn(void *a)
{
	struct exec_args *c = a;
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < _NSIG; s++) {
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	}
	if (c->closefds)
		syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	for (int i = 0; i < 3; i++) {
		if (c->keep[i] >= 0 && fcntl(c->keep[i], F_SETFD, 0) < 0) {
			c->err = errno;
			_exit(127);
		}
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(c->exe, c->argv, environ);
	c->err = errno;
	_exit(127);
}

int mproc__exec_child(enum mproc_start_method how, const char *exe, const char *argv0, int reqfd,
		      int statusfd, int extrafd, bool closefds, pid_t *pid_out)
{
	char arg1[64];
	char *argv[] = { (char *)argv0, arg1, NULL };
	sigset_t all, old;
	pid_t pid;
	int r;

	snprintf(arg1, sizeof(arg1), "--mproc-child=%d:%d:%d", reqfd, statusfd, extrafd);
	if (how == MPROC_START_POSIX_SPAWN) {
		posix_spawn_file_actions_t fa;
		posix_spawnattr_t at;
		sigset_t none;

		posix_spawn_file_actions_init(&fa);
		posix_spawnattr_init(&at);
		/* dup2 onto itself clears FD_CLOEXEC (glibc >= 2.29). */
		r = posix_spawn_file_actions_adddup2(&fa, reqfd, reqfd);
		if (!r)
			r = posix_spawn_file_actions_adddup2(&fa, statusfd, statusfd);
		if (!r && extrafd >= 0)
			r = posix_spawn_file_actions_adddup2(&fa, extrafd, extrafd);
		sigemptyset(&none);
		sigfillset(&all);
		if (!r)
			r = posix_spawnattr_setsigmask(&at, &none);
		if (!r)
			r = posix_spawnattr_setsigdefault(&at, &all);
		if (!r)
			r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
						     POSIX_SPAWN_SETSIGDEF);
		if (!r)
			r = posix_spawn(&pid, exe, &fa, &at, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
		if (r)
			return -r;      /* glibc reaped the failed child already */
		*pid_out = pid;
		return 0;
	}

	{
		struct exec_args c = {
			.exe = exe,
			.argv = argv,
			.keep = { reqfd, statusfd, extrafd },
			.closefds = closefds,
			.err = 0,
		};
		_Alignas(16) char stack[16384];
		int e;

		/* Block everything so no handler of ours runs on the child's stack, in our memory;
		 * the child resets the handlers before it unblocks. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		pid = clone(exec_child_fn, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD,
			    &c);
		e = errno;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
#if MPROC__ASAN
		/* The child's frames poisoned ASan's shadow of this array (shared memory: CLONE_VM)
		 * and it exec'd before unpoisoning them: later frames of ours would trip on it. */
		ASAN_UNPOISON_MEMORY_REGION(stack, sizeof(stack));
#endif
		if (pid < 0)
			return -e;
		if (c.err) {
			/* exec failed: the child has _exit(127)ed; reap it so no zombie stays. */
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			return -c.err;
		}
		*pid_out = pid;
		return 0;
	}
}

