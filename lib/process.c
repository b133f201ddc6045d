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
#if defined(__SANITIZE_ADDRESS__)
#define MPROC__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPROC__ASAN 1
#endif
#endif
#ifndef MPROC__ASAN
#define MPROC__ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define MPROC__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPROC__TSAN 1
#endif
#endif
#ifndef MPROC__TSAN
#define MPROC__TSAN 0
#endif
#if MPROC__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif
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
#include <spawn.h>
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

extern char **environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* ---- registry, daemon list, atfork ------------------------------------------------------- */

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
	 * fork, costs a fault in the child to write (tens of us on a VM), and this runs in every
	 * fork of the process, the host program's own too. */
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

/* ---- process objects: a wipe-on-fork arena ----------------------------------------------- */

/*
 * Process objects live in chunks of their own that are wiped on fork (MADV_WIPEONFORK), not on
 * the heap. fork(2) write-protects every private page of the parent, and the parent writes the
 * object (pid, pidfd, state) right after fork while the child still maps the page: a
 * copy-on-write fault and a page copy on the start path of every fork (26-32 us of 700-860 on
 * the 2-core VM, interleaved medians; tools/fork_steps.c, "heap_write"). The kernel copies nothing of a
 * wiped range to the child, so the parent's pages stay writable. In a fork child every inherited
 * object reads as zeros, which is P_FOREIGN: the object of a process that is not the caller's
 * child (Python: "can only join a child process"); calls on it return -ECHILD, free does
 * nothing, and the child never hands the inherited memory out again: the arena's header, in the
 * first chunk, is wiped too, so the child starts with no chunks and maps its own.
 * Without MADV_WIPEONFORK (Linux < 4.14) or memory for a chunk, objects come from malloc, and a
 * child sees the parent's objects as they were at fork.
 */
#define ARENA_CHUNK ((size_t)64 << 10)
struct proc_arena {
	_Atomic int lock;       /* a spin lock: held for a few stores; zero (free) in a child */
	struct mproc_process *free;
};
#define ARENA_SLOT (((sizeof(struct mproc_process) + 63) / 64) * 64)
static struct proc_arena *arena;        /* set once by init(); NULL: objects come from malloc */
_Static_assert(sizeof(struct proc_arena) <= ARENA_SLOT, "the header fits in slot 0");

static void *arena_chunk(void)
{
	void *c = mmap(NULL, ARENA_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (c == MAP_FAILED)
		return NULL;
	if (madvise(c, ARENA_CHUNK, MADV_WIPEONFORK) < 0) {
		munmap(c, ARENA_CHUNK);
		return NULL;
	}
#if MPROC__ASAN
	/* LeakSanitizer scans globals, stacks and the heap, not mmap'd memory: what only a
	 * process object points to (an exec method's strings) would read as leaked. */
	__lsan_register_root_region(c, ARENA_CHUNK);
#endif
	return c;
}

/* Put the slots of chunk [from, ARENA_CHUNK) on the free list (lock held). */
static void arena_add(char *c, size_t from)
{
	for (size_t off = ARENA_CHUNK - ARENA_SLOT; off >= from && off < ARENA_CHUNK;
	     off -= ARENA_SLOT) {
		struct mproc_process *p = (struct mproc_process *)(c + off);

		p->next_free = arena->free;
		arena->free = p;
	}
}

static void arena_init(void)
{
	char *c = arena_chunk();

	if (!c)
		return;
	arena = (struct proc_arena *)c;
	arena_add(c, ARENA_SLOT);       /* slot 0 holds the header */
}

static void arena_lock(void)
{
	while (atomic_exchange_explicit(&arena->lock, 1, memory_order_acquire))
		sched_yield();
}

static void arena_unlock(void)
{
	atomic_store_explicit(&arena->lock, 0, memory_order_release);
}

static struct mproc_process *proc_alloc(void)
{
	struct mproc_process *p = NULL;
	char *c;

	if (arena) {
		arena_lock();
		if (!arena->free && (c = arena_chunk()) != NULL)
			arena_add(c, 0);
		p = arena->free;
		if (p)
			arena->free = p->next_free;
		arena_unlock();
	}
	if (p) {
		memset(p, 0, sizeof(*p));
		p->in_arena = true;
		return p;
	}
	/* malloc + memset, not calloc: glibc's calloc skips the thread cache and writes the
	 * arena, one more page for a forking parent to fault in again after every fork. */
	p = malloc(sizeof(*p));
	if (p)
		memset(p, 0, sizeof(*p));
	return p;
}

static void proc_release(struct mproc_process *p)
{
	if (!p->in_arena) {
		free(p);
		return;
	}
	p->state = P_FOREIGN;   /* a stale pointer gets -ECHILD, not a live object's state */
	arena_lock();
	p->next_free = arena->free;
	arena->free = p;
	arena_unlock();
}

static void init(void)
{
	arena_init();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(at_exit);
}

static void init_once_now(void)
{
	pthread_once(&init_once, init);
}

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
		/* A directory passes access(X_OK) (issue 16: the error came only at start);
		 * execve refuses anything but a regular file with EACCES, so say it now. */
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

static const char *entry_name_of(mproc_process_fn *fn)
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
	 * libc code not yet run there costs a page fault (tens of us on a VM). */
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
			entry = entry_name_of(fn);
			if (!entry)
				return -ESRCH;
		}
	}
	init_once_now();
	p = proc_alloc();
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
	return s >= 0;  /* unknown (EMFILE...): try the pidfd, as before */
}

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
	/* Which stop signals the child must reset: asked here, where a system call costs a third
	 * of one in the new child (3 us there against 1 here on the 2-core VM, whose first touch
	 * of each page in a new process is slow). */
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
	proc_release(p);
}
