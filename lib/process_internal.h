/*
 * process_internal.h - what process.c, process_child.c and forkserver.c share: the process
 * object, the fork state, the request format that carries an entry, a name and argument bytes
 * to a child image or to the forkserver, and its parser (kept separate so a fuzz target can
 * call it). process.c calls the other two; forkserver.c calls process_child.c; process_child.c
 * calls neither.
 */
#ifndef MPROC_PROCESS_INTERNAL_H
#define MPROC_PROCESS_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/process.h"

/* Sanitizer builds: what the fork and exec paths must do differently under them. */
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

/* P_FOREIGN is 0: what every object inherited by a fork child reads as (process.c, "arena"). */
enum mproc__proc_state { P_FOREIGN, P_NEW, P_RUNNING, P_ENDED, P_CLOSED };

struct mproc__thr;
struct mproc__fs_state {
	pid_t pid;
	int control;
	char dir[64];
	char path[108];         /* sizeof(sockaddr_un.sun_path) */
};

/*
 * Everything a fork writes, on one page. fork(2) write-protects every private page of the
 * parent; each page written afterwards by the parent (atfork_parent unlocking) or by the child
 * (atfork_child, child_setup) costs a page fault, which under a hypervisor can cost as much as
 * tens of syscalls. Kept together, a fork costs one such fault on each side instead of one per variable.
 * Aligned so it never straddles two pages.
 */
#define MPROC__FORK_STATE_ALIGN 512
struct mproc__fork_state {
	pthread_mutex_t fs_lock;        /* the forkserver (forkserver.c) */
	pthread_mutex_t reg_lock;       /* the entry registry */
	pthread_mutex_t daemon_lock;    /* recursive: at_exit joins daemons while holding it */
	struct mproc_process *daemons;
	bool am_daemon;
	char log_name[MPROC__LOG_NAME_MAX];     /* log.c */
	struct mproc__fs_state fs;
};
extern struct mproc__fork_state mproc__fork_state;

struct mproc_process {
	enum mproc_start_method method;
	enum mproc__proc_state state;
	mproc_process_fn *fn;
	void *arg;
	char *entry;            /* exec methods */
	void *argbuf;           /* exec methods: arg_len bytes */
	size_t arg_len;
	char *exe;
	bool daemon;
	pid_t pid, ppid;
	int pidfd;              /* -1 if none */
	int sentinel;           /* the fd poll waits on (may equal pidfd) */
	int death_wr;           /* write end of the child's parent-death pipe; -1 if none */
	bool status_lost;
	int exitcode;
	struct mproc__thr *thr; /* thread method */
	struct mproc_process *next_daemon;
	struct mproc_process *next_free;        /* the arena's free list */
	bool in_arena;          /* from the arena, not malloc */
	/* Here, not malloc'd: starting and freeing a process then write no heap page, each of
	 * which would cost the parent a fault again after every fork. */
	char name[MPROC_PROCESS_NAME_MAX + 1];
};

/*
 * A system call made inline, not through libc's syscall(): a fork child maps none of libc's
 * code (file-backed text is not copied by fork), so the first call into each 64 KiB of libc
 * text it runs costs a page fault -- syscall() lies in a part of libc that neither fork() nor
 * _exit() touch. Returns the kernel's result (-errno on error) and never writes errno (the
 * thread's TLS page would be one more fault). Other architectures use syscall().
 */
static inline long mproc__sys5(long nr, long a, long b, long c, long d, long e)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	long r;

	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return r;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
			 : "memory", "cc");
	return x0;
#else
	long r = syscall(nr, a, b, c, d, e);

	return r < 0 ? -errno : r;
#endif
}

/*
 * The code a fork child runs before the user's function (atfork_child, start_fork's child side,
 * child setup, the parent-death pipe, the forkserver reset): hidden, so calls between them are
 * direct and never go through the PLT, and kept together at the head of .text (.text.hot.* is
 * placed there by the linker from every object), so a fork child maps one 64 KiB window of
 * libmproc's code, not one per function it runs (a page fault each: fork does not copy the
 * page table entries of file-backed code).
 */
#define MPROC__FORK_TEXT __attribute__((section(".text.hot.mproc_fork")))
#define MPROC__FORK_CHILD __attribute__((visibility("hidden"))) MPROC__FORK_TEXT

/* process_child.c */
/* Request: header + entry + name + arg bytes, all lengths checked against the limits. */
#define MPROC__REQ_MAGIC 0x7172706du  /* "mprq" */
#define MPROC__REQ_VERSION 1
enum {
	MPROC__REQ_DAEMON = 1 << 0,
	MPROC__REQ_FORKSERVER = 1 << 1,  /* the image becomes the forkserver */
	MPROC__REQ_FLAGS_ALL = (1 << 2) - 1,
};
struct mproc__req_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	int32_t ppid;
	uint32_t entry_len;
	uint32_t name_len;
	uint32_t arg_len;
};
#define MPROC__REQ_MAX (sizeof(struct mproc__req_hdr) + MPROC_ENTRY_NAME_MAX + \
			MPROC_PROCESS_NAME_MAX + MPROC_PROCESS_ARG_MAX)

struct mproc__req {
	unsigned flags;
	pid_t ppid;
	char entry[MPROC_ENTRY_NAME_MAX + 1];
	char name[MPROC_PROCESS_NAME_MAX + 1];
	const void *arg;        /* points into the parsed buffer; NULL if arg_len is 0 */
	size_t arg_len;
};

/*
 * mproc__req_parse - validate and decode a request of exactly len bytes. Returns 0, -EBADMSG
 * (short, bad magic/version/flags, lengths that do not add up to len, a NUL inside a string,
 * empty entry without MPROC__REQ_FORKSERVER), -EMSGSIZE (a length over its limit).
 * Pure function: no allocation, no syscalls; safe on any input.
 */
int mproc__req_parse(const void *buf, size_t len, struct mproc__req *out);
/* Build one into a malloc'd buffer. Returns 0, -ENOMEM, -EMSGSIZE. */
int mproc__req_build(void **buf, size_t *len, unsigned flags, pid_t ppid, const char *entry,
		     const char *name, const void *arg, size_t arg_len);

/* The argument bytes of a request in a malloc'd (so max-aligned) copy; NULL if none. The
 * process keeps it for its life. Exits 127 when out of memory. */
void *mproc__req_arg_copy(const struct mproc__req *req);
/* A malloc'd copy of the image exec methods run by default: mproc_set_executable's, or
 * "/proc/self/exe". NULL when out of memory. */
char *mproc__exe_dup(void);
/* Registry lookup (locks the registry). NULL if unknown. */
mproc_process_fn *mproc__entry_find(const char *name);
/* The name fn is registered under (entries are never removed), or NULL. */
const char *mproc__entry_name_of(mproc_process_fn *fn);
/* The signals that stop a process, reset to their default in every child so that terminate
 * works when the parent ignores SIGTERM, and the child's own children are waitable. A fork
 * child keeps the (valid, copied) handlers of the others. */
#define MPROC__STOP_SIGNALS (1ULL << SIGTERM | 1ULL << SIGINT | 1ULL << SIGHUP | \
			     1ULL << SIGQUIT | 1ULL << SIGCHLD)
/* Which of MPROC__STOP_SIGNALS have a disposition other than SIG_DFL now (5 sigaction calls). */
uint64_t mproc__stop_signals_changed(void);
/* Child-side setup shared by all process methods: default handlers for the signals in reset
 * (a mask of 1 << signo: MPROC__STOP_SIGNALS, or those of it a fork parent found changed),
 * PDEATHSIG with the getppid re-check against ppid (ppid 0: skip), name, daemon flag. Leaves
 * the mask alone. Async-signal-safe. */
MPROC__FORK_CHILD void mproc__child_setup(const char *name, bool daemon, pid_t ppid,
					uint64_t reset);
/*
 * The parent-death pipe, child side. fd is the read end of a pipe made for this child alone,
 * whose only writer is the parent (it closes when the parent dies, however it dies): ask for
 * SIGKILL when that last writer is gone (O_ASYNC, F_SETSIG, F_SETOWN), then check it is not
 * gone already (_exit if so). Unlike PR_SET_PDEATHSIG it does not fire when the parent *thread*
 * that started the child exits. Async-signal-safe; fd < 0: nothing.
 */
MPROC__FORK_CHILD void mproc__death_pipe_arm(int fd);
/* The ppid to give mproc__child_setup: PR_SET_PDEATHSIG fires when the *thread* that forked
 * exits, so it is armed only for children started by the main thread (0 otherwise). */
pid_t mproc__pdeathsig_ppid(void);
/* The signals whose handler is not SIG_DFL now (64 sigaction calls: once, not per child). */
void mproc__signals_changed(sigset_t *set);
/* Default handlers for the signals in set. Async-signal-safe. */
void mproc__signals_default_in(const sigset_t *set);
/* Whether this process is a daemon (may not start processes). */
bool mproc__is_daemon(void);
/* Decode a wait status into an exit code (code or -signal). */
int mproc__decode_status(int status);
/* pidfd_open, or -errno. */
int mproc__pidfd_open(pid_t pid);

/* Exec a child image of exe with the request in reqfd and statusfd (and extrafd, or -1)
 * inherited; closefds: close every other fd beyond stdio. how is VFORK or POSIX_SPAWN. */
int mproc__exec_child(enum mproc_start_method how, const char *exe, const char *argv0, int reqfd,
		      int statusfd, int extrafd, bool closefds, pid_t *pid);
/* Make a sealed-size memfd holding buf (O_CLOEXEC). Returns the fd or -errno. */
int mproc__memfd_of(const void *buf, size_t len);

/* process_arena.c: process objects in chunks wiped on fork, else from malloc. init: once,
 * before the first alloc (process.c's init). alloc: a zeroed object or NULL; release: back to
 * the arena or free(3). */
void mproc__process_arena_init(void);
struct mproc_process *mproc__process_alloc(void);
void mproc__process_release(struct mproc_process *p);

/* forkserver.c */
/* The server's read of one request from a client connection (made non-blocking): the header,
 * its lengths bounded before the rest is read (into buf, MPROC__REQ_MAX bytes), at most 2 s in
 * all, then mproc__req_parse. Returns 0 and *req filled, -EBADMSG (short, malformed, EOF),
 * -EMSGSIZE. Exposed for the fuzz target. */
int mproc__fs_read_request(int conn, char *buf, struct mproc__req *req);
int mproc__fs_start_process(struct mproc_process *p);
int mproc__fs_wait(struct mproc_process *p, int64_t deadline_ns);
_Noreturn void mproc__fs_server_main(int control, int listenfd, const struct mproc__req *req);
MPROC__FORK_CHILD void mproc__fs_atfork_child(void);
void mproc__fs_lock(void);
void mproc__fs_unlock(void);

#endif /* MPROC_PROCESS_INTERNAL_H */
