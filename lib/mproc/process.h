/*
 * mproc/process.h - run a C function in a new process (or thread) by a chosen start method:
 * Python's multiprocessing.Process done natively.
 *
 * Start methods (what the child inherits):
 *  - MPROC_START_FORK: fork(2). The child is a copy of the caller: all memory (copy-on-write),
 *    every fd, only the calling thread, locks in whatever state other threads left them (the
 *    library's own locks are made safe by pthread_atfork). Start cost grows with parent RSS.
 *  - MPROC_START_VFORK: clone(CLONE_VM|CLONE_VFORK) + execve of the program's own image
 *    (opts.exe, else mproc_set_executable's, else /proc/self/exe). A fresh image: no memory,
 *    no threads, no locks; fds not marked close-on-exec are inherited. Start cost is
 *    independent of parent RSS.
 *  - MPROC_START_POSIX_SPAWN: the same through posix_spawn(3).
 *  - MPROC_START_SPAWN: as vfork, and the child closes every fd beyond stdio first (Python's
 *    spawn: a fresh image that inherits only stdin/stdout/stderr).
 *  - MPROC_START_FORKSERVER: a small single-threaded server (a fresh image of the program,
 *    started by mproc_forkserver_start() or lazily on first use) forks the child on request over
 *    a Unix socket. The child is a copy of the server, not of the caller: it inherits only stdio
 *    and the entries registered with MPROC_ENTRY; its exit status comes back over the socket.
 *  - MPROC_START_THREAD: a pthread, the baseline. Shares everything.
 *
 * Methods other than fork and thread run a fresh image, so they cannot take a function pointer:
 * the function must be registered under a name (MPROC_ENTRY or mproc_entry_register) and its
 * argument is copied as opts.arg_len bytes (0: the child's fn gets NULL). Programs that use
 * these methods call mproc_main_hook(argc, argv) first thing in main(): in a child image it runs
 * the entry and exits; otherwise it returns at once. For fork and thread, arg is passed as is.
 *
 * Lifecycle: mproc_process_new -> _start -> _join (or poll on _sentinel) -> _exitcode ->
 * _free. _close releases the OS resources of a finished process (its sentinel) early; after it
 * every call but _free returns -EINVAL. Exit codes: the function's return value (0..255 for
 * processes, the full int for threads), or minus the signal number that killed the process.
 *
 * Children are reaped by waitpid on their own pid only (never waitpid(-1)); if the host set
 * SIGCHLD to SIG_IGN the kernel reaps them and the exit code is unknown (-ECHILD). No SIGCHLD
 * handler is ever installed. Children die with their parent, however it dies: each child holds
 * the read end of a pipe of its own whose only writer is the parent, armed to deliver SIGKILL
 * when that writer is gone (O_ASYNC + F_SETSIG), with a re-check for a parent already gone;
 * children started by the main thread also get PR_SET_PDEATHSIG(SIGKILL) with a getppid()
 * re-check (not others: it fires when the *thread* that started them exits). Forkserver
 * children are killed by the server when the parent goes. A fork child of the parent that is
 * not an mproc process (raw fork without exec) inherits the write ends and delays this until
 * it exits too.
 * Daemon children are terminated and reaped when the parent exits normally (atexit); a daemon
 * may not start processes (-EPERM).
 *
 * Locking: a process object is used by one thread at a time; different objects are
 * independent. Entry registration and the forkserver are protected by library locks that are
 * reset across fork (pthread_atfork). In a forked child (method fork), the library is usable.
 *
 * Objects inherited by a fork child (a child of method fork, or any fork of a process that holds
 * objects) belong to the parent: there they are foreign. Every call on one returns -ECHILD
 * (_is_alive false, _pid and _ppid 0, _name NULL, _method MPROC_START__COUNT) and _free does
 * nothing, so a child can neither wait for, signal nor disturb its siblings (Python: "can only
 * join a child process"). The child's own new objects work as usual. This relies on
 * MADV_WIPEONFORK (Linux 4.14): without it a child sees the objects as they were at fork.
 *
 * Example: examples/terminate.c (is_alive, terminate, exitcode); examples/queue.c (one child
 * function under every start method: MPROC_ENTRY, mproc_main_hook).
 */
#ifndef MPROC_PROCESS_H
#define MPROC_PROCESS_H

#include <mproc/export.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mproc_start_method {
	MPROC_START_FORK = 0,
	MPROC_START_VFORK,
	MPROC_START_POSIX_SPAWN,
	MPROC_START_SPAWN,
	MPROC_START_FORKSERVER,
	MPROC_START_THREAD,
	MPROC_START__COUNT,
};

/* The work of a process: its return value becomes the exit code. */
typedef int mproc_process_fn(void *arg);

struct mproc_process;

/* Limits: entry names, process names (longer names are refused with -EMSGSIZE), argument
 * bytes for the exec-based methods. */
#define MPROC_ENTRY_NAME_MAX 64
#define MPROC_PROCESS_NAME_MAX 256
#define MPROC_PROCESS_ARG_MAX (1u << 20)

struct mproc_process_opts {
	enum mproc_start_method method;  /* default MPROC_START_FORK */
	const char *name;       /* kept whole; the first 15 bytes go to PR_SET_NAME (ps) */
	bool daemon;            /* terminated when the parent exits; may not start processes */
	const char *entry;      /* exec methods: registered entry name (NULL: look fn up) */
	size_t arg_len;         /* exec methods: arg is arg_len bytes, copied at _new; the child
				 * gets a malloc'd (max-aligned) copy */
	const char *exe;        /* vfork/posix_spawn/spawn: image to run (NULL: the one set with
				 * mproc_set_executable, else /proc/self/exe) */
};

/*
 * mproc_process_new - make a process object (nothing starts yet).
 * @out: receives the object. @fn: the function (must not be NULL). @arg: its argument.
 * @opts: NULL for defaults. Copied; the library keeps no pointer to it.
 *
 * Returns 0, -EINVAL (NULL fn or out, unknown method, name or entry with a NUL-free length
 * of 0, an exec method with arg_len > 0 and a NULL arg), -EMSGSIZE (name, entry or arg_len over the limits above), -ESRCH (exec method and fn
 * is not registered / entry unknown), -ENOMEM. Not for use in a vforked child.
 */
MPROC_EXPORT int mproc_process_new(struct mproc_process **out, mproc_process_fn *fn, void *arg,
		      const struct mproc_process_opts *opts);

/*
 * mproc_process_start - start it. Returns once the child exists (exec methods: once the new
 * image has found its entry and is about to call it).
 * Returns 0, -EINVAL (already started, or closed), -EPERM (called in a daemon), -ENOENT /
 * -EACCES / -ENOEXEC... (exec of opts.exe failed; no child is left), -ESRCH (the child image
 * does not know the entry: did it call mproc_main_hook?), -EAGAIN / -ENOMEM (fork limits),
 * -EMFILE / -ENFILE (no fd for the pipe, memfd or pidfd it needs; a forked child is killed and
 * reaped then),
 * -ECONNREFUSED / -EPIPE (the forkserver could not be started or reached).
 */
MPROC_EXPORT int mproc_process_start(struct mproc_process *p);

/*
 * mproc_process_join - wait until it ends, at most timeout_s seconds (MPROC_FOREVER: no limit,
 * 0: poll), and reap it. A second join is a no-op that returns 0.
 * Returns 0, -ETIMEDOUT (still running, left alive), -EINVAL (not started, closed, bad
 * timeout).
 */
MPROC_EXPORT int mproc_process_join(struct mproc_process *p, double timeout_s);

/* Whether it has started and not yet ended (reaps it if it has ended). false if closed. */
MPROC_EXPORT bool mproc_process_is_alive(struct mproc_process *p);

/*
 * mproc_process_terminate / _kill - send SIGTERM / SIGKILL. A no-op (0) if it already ended.
 * Returns 0, -EINVAL (not started or closed), -ENOTSUP (thread method: threads cannot be
 * killed), -errno of the signal call.
 */
MPROC_EXPORT int mproc_process_terminate(struct mproc_process *p);
MPROC_EXPORT int mproc_process_kill(struct mproc_process *p);

/*
 * mproc_process_exitcode - the exit code of an ended process: the return value of fn, or
 * -signal if a signal killed it (Python's Process.exitcode).
 * Returns 0 and sets *code, -EAGAIN (not ended yet; call join), -EINVAL (not started, or
 * closed), -ECHILD (it ended but its status is lost: SIGCHLD=SIG_IGN, or the forkserver died).
 */
MPROC_EXPORT int mproc_process_exitcode(struct mproc_process *p, int *code);

/* The pid (0 before start and for threads), the pid of its parent (the caller, or the
 * forkserver), the name given (or "mproc-<method>"), the method. */
MPROC_EXPORT pid_t mproc_process_pid(const struct mproc_process *p);
MPROC_EXPORT pid_t mproc_process_ppid(const struct mproc_process *p);
MPROC_EXPORT const char *mproc_process_name(const struct mproc_process *p);
MPROC_EXPORT enum mproc_start_method mproc_process_method(const struct mproc_process *p);

/*
 * mproc_process_sentinel - an fd that becomes readable (POLLIN) when the process ends: a pidfd,
 * a pipe only the child holds, the forkserver connection, or for threads a pipe the thread
 * closes. Owned by the object. Returns the fd, or -EINVAL (not started or closed).
 */
MPROC_EXPORT int mproc_process_sentinel(const struct mproc_process *p);

/*
 * mproc_process_close - release the sentinel and other resources of an ended process (Python's
 * Process.close). Returns 0, -EBUSY (still running: join first), -EINVAL (not started).
 * Closing twice returns 0.
 */
MPROC_EXPORT int mproc_process_close(struct mproc_process *p);

/* mproc_process_free - free the object. A started, unjoined process is left running (and is
 * reaped by nobody, and the write end of its parent-death pipe stays open: join first). NULL is
 * a no-op. */
MPROC_EXPORT void mproc_process_free(struct mproc_process *p);

/* "fork", "vfork", "posix_spawn", "spawn", "forkserver", "thread"; "?" if unknown. */
MPROC_EXPORT const char *mproc_start_method_name(enum mproc_start_method m);
/* Returns 0 and sets *m, or -EINVAL for an unknown name (or NULL). */
MPROC_EXPORT int mproc_start_method_from_name(const char *name, enum mproc_start_method *m);

/*
 * Entry points for the exec-based methods. mproc_entry_register adds fn under name.
 * Returns 0, -EEXIST (name taken by another fn), -EINVAL (NULL, empty), -EMSGSIZE (name too
 * long), -ENOSPC (registry full: 256 entries). Register before mproc_main_hook() runs and before
 * the forkserver starts, or with MPROC_ENTRY (a constructor), so that child images know it.
 */
MPROC_EXPORT int mproc_entry_register(const char *name, mproc_process_fn *fn);
#define MPROC_ENTRY(name, fn)                                                          \
	__attribute__((constructor)) static void mproc__entry_ctor_##fn(void)         \
	{                                                                              \
		mproc_entry_register(name, fn);                                        \
	}

/*
 * mproc_main_hook - call first in main(). In a child image started by an exec method (or in the
 * forkserver) it runs what it was started for and exits; never returns there. Otherwise it
 * returns at once.
 */
MPROC_EXPORT void mproc_main_hook(int argc, char **argv);

/*
 * mproc_set_executable - the image that vfork, posix_spawn and spawn run when opts.exe is NULL,
 * and that the forkserver runs when it next starts (Python's multiprocessing.set_executable).
 * Default (and after a NULL path): the program's own image, /proc/self/exe. A small dedicated
 * image starts faster than a large program: it must link libmproc, register the same entry
 * names (MPROC_ENTRY) and call mproc_main_hook first in main(). The path is made absolute
 * (realpath) and copied. A forkserver already running keeps its image until
 * mproc_forkserver_stop.
 * Returns 0, -EINVAL (empty path), -ENAMETOOLONG, -ENOENT / -ENOTDIR (no such file),
 * -EACCES (not a regular file, such as a directory, or not executable), -ENOMEM.
 */
MPROC_EXPORT int mproc_set_executable(const char *path);

/*
 * mproc_forkserver_start - start the forkserver now (early: before the program grows or starts
 * threads; the server is a fresh image anyway, so a late start is correct, only slower).
 * Returns 0 (also if running), -EPERM (in a daemon), -errno of spawning it.
 * mproc_forkserver_stop - stop it: it kills the children it still runs, exits and is reaped.
 */
MPROC_EXPORT int mproc_forkserver_start(void);
MPROC_EXPORT void mproc_forkserver_stop(void);
/* The server's pid, 0 if none. */
MPROC_EXPORT pid_t mproc_forkserver_pid(void);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_PROCESS_H */
