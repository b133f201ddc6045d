/*
 * mproc/pool.h - a pool of worker processes that run tasks: Python's multiprocessing.Pool
 * (apply, apply_async, map, starmap, imap, imap_unordered) and concurrent.futures'
 * ProcessPoolExecutor (submit, wait, as_completed, cancel, shutdown), done natively.
 *
 * Tasks and results are bytes: a task is at most opts.task_max bytes, a result at most
 * opts.result_max bytes (plain fixed-size records, or whatever the caller serialized). A worker
 * runs opts.fn(task, task_len, result, result_max, opts.arg), which writes its result in place
 * and returns the result length, or a negative errno that comes back to the caller as the
 * task's error code.
 *
 * How tasks travel, and why it never hangs: not over a queue but through a task table in
 * shared memory that the owner maps before it starts the workers. Each slot has a state word
 * {FREE, QUEUED, TAKEN by worker w, DONE with a status} and payload space reserved by the owner
 * for the task and for its result (no allocator is shared across processes). A worker claims a
 * task with one compare-and-swap QUEUED -> TAKEN|w: the claim *is* the announcement, so at
 * every instant the owner knows which worker holds which task. A queue cannot give that: its
 * get and a separate "I took it" message leave a window in which a SIGKILL loses the task
 * (CPython's Pool hangs forever there, gh-66587). The worker writes the result into the slot and
 * swaps TAKEN|w -> DONE. The owner's handler thread polls every worker's sentinel (a pidfd);
 * when a worker dies - SIGKILL, a crash, OOM, while reading its task, running it or writing its
 * result - the owner reaps it, fails exactly the slots TAKEN by it with -ECHILD, starts a
 * replacement and goes on (the default: only the lost tasks fail). With MPROC_POOL_BREAK_ON_DEATH
 * it does what ProcessPoolExecutor does instead: every pending task fails with -ECHILD and new
 * submissions are refused with -EPIPE ("broken pool"). A pool whose replacement worker cannot
 * start (fork fails: RLIMIT_NPROC, memory) breaks the same way rather than wait for workers
 * that may never come.
 *
 * Wake-ups: idle workers spin briefly, then sleep on a futex (a sequence counter the owner
 * bumps and wakes only when someone sleeps); a worker that finishes while the handler thread
 * sleeps rings an eventfd doorbell. Batches (map, imap) are published at once and woken once.
 *
 * Lifecycle: mproc_pool_new (starts the workers and the handler thread) -> submit work ->
 * mproc_pool_close (no more work) + mproc_pool_join (wait for the work, stop the workers), or
 * mproc_pool_terminate (kill the workers now; pending work fails with -ECANCELED) ->
 * mproc_pool_free. Results, iterators and futures belong to the caller and are freed with their
 * own _free, before or after the pool is freed (a result of a freed pool that never completed
 * reads -ECANCELED).
 *
 * Callbacks (opts in mproc_pool_apply_async) run in the handler thread, one at a time, as
 * Python's result handler does: keep them short. A callback may read its own result
 * (mproc_result_get with timeout 0); it must not submit to, wait on or close the same pool (the
 * handler thread is what harvests results: waiting there would wait forever).
 *
 * Locking: the pool and its results may be used from several threads of the owner process.
 * Workers ignore SIGINT (the terminal's Ctrl-C reaches the owner, which stops the pool) and get
 * SIGKILL when the owner dies (PR_SET_PDEATHSIG; mproc_pool_new must be called from a thread
 * that outlives the pool). Across fork(): a pool belongs to the process that made it; a forked
 * child must not use it (only mproc_pool_free is allowed there, and it only unmaps).
 * Start methods: workers are started by the process module, by any method but MPROC_START_THREAD
 * (a worker must be killable). With fork they inherit the table mapping, the doorbell, fn and
 * arg as they are. The exec-based methods (vfork, posix_spawn, spawn, forkserver) start a
 * fresh image that has none of these: the table is a memfd, and each new worker fetches it and
 * the doorbell over a Unix socket the pool listens on (an abstract name; the pool hands the
 * fds only to a peer whose SO_PEERCRED pid is the worker it just started). Function pointers
 * mean nothing in another image, so fn and the initializer must be registered by name
 * (MPROC_POOL_TASK / MPROC_POOL_INIT, or mproc_pool_register_*), arg and initargs travel as
 * opts.arg_len / opts.initargs_len bytes, and the program calls mproc_main_hook(argc, argv)
 * first in main() (mproc/process.h). The test hook of pool_internal.h reaches fork workers only.
 *
 * Example: examples/pool.c (map, apply_async and its result handle, under fork or spawn);
 * examples/futures.c (submit, as_completed).
 */
#ifndef MPROC_POOL_H
#define MPROC_POOL_H

#include <mproc/export.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mproc/process.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mproc_pool;
struct mproc_result;
struct mproc_imap;
struct mproc_as_completed;

/*
 * The work: read task_len bytes at task, write at most result_max bytes at result, return the
 * result length (0..result_max) or a negative errno (the task's error, returned to the caller
 * as is). A length over result_max fails the task with -EMSGSIZE. Runs in a worker process.
 */
typedef ssize_t mproc_task_fn(const void *task, size_t task_len, void *result, size_t result_max,
			      void *arg);
/* Run once in each worker before its first task; non-zero ends the worker (a start failure). */
typedef int mproc_pool_init_fn(void *arg);
/* A completion callback: status is the result length or the task's -errno. Owner side. */
typedef void mproc_result_cb(struct mproc_result *r, ssize_t status, void *arg);

enum {
	MPROC_POOL_BREAK_ON_DEATH = 1 << 0,     /* ProcessPoolExecutor: a death breaks the pool */
	MPROC_POOL_AUTO_SIZE = 1 << 1,          /* workers = usable CPUs (sched_getaffinity) */
	MPROC_POOL_FLAGS_ALL = (1 << 2) - 1,
};

/* Limits: tasks and results are at most 64 MiB each; the table holds at most 1 << 20 tasks. */
#define MPROC_POOL_ITEM_MAX ((size_t)64 << 20)
#define MPROC_POOL_QUEUE_MAX ((size_t)1 << 20)
#define MPROC_POOL_WORKERS_MAX 1024

struct mproc_pool_opts {
	int workers;            /* > 0, <= MPROC_POOL_WORKERS_MAX; 0 only with MPROC_POOL_AUTO_SIZE */
	enum mproc_start_method method; /* default MPROC_START_FORK (0); not THREAD */
	mproc_task_fn *fn;      /* required */
	void *arg;              /* fn's last argument (inherited by fork) */
	size_t task_max;        /* bytes per task, 1..MPROC_POOL_ITEM_MAX; 0 = 64 */
	size_t result_max;      /* bytes per result, 1..MPROC_POOL_ITEM_MAX; 0 = 64 */
	size_t queue_max;       /* tasks in flight (table slots); 0 = 16384; more waits */
	unsigned maxtasksperchild; /* a worker exits and is replaced after this many; 0 = never */
	mproc_pool_init_fn *initializer;
	void *initargs;
	unsigned flags;         /* MPROC_POOL_* */
	/* Exec-based methods only (fork passes the pointers as they are): arg and initargs are
	 * arg_len / initargs_len bytes, copied to each worker, at most MPROC_POOL_ARG_MAX
	 * together; 0 gives the worker's function NULL. */
	size_t arg_len;
	size_t initargs_len;
};

/* Bytes of arg + initargs that travel to a worker started by an exec-based method. */
#define MPROC_POOL_ARG_MAX ((size_t)1 << 19)

/*
 * Names of task functions and initializers, for workers started by an exec-based method (the
 * pool looks opts.fn / opts.initializer up by pointer, the worker image by name). Register
 * before mproc_main_hook() runs and before the forkserver starts, or with the constructor
 * macros below, so that every image of the program knows them.
 * Returns 0 (also when the same pair is registered again), -EINVAL (NULL or empty), -EMSGSIZE
 * (name over MPROC_ENTRY_NAME_MAX), -EEXIST (name taken by another function), -ENOSPC
 * (registry full: 256 names). Not for a forked child of a multi-threaded process.
 */
MPROC_EXPORT int mproc_pool_register_task(const char *name, mproc_task_fn *fn);
MPROC_EXPORT int mproc_pool_register_init(const char *name, mproc_pool_init_fn *fn);
#define MPROC_POOL_TASK(name, fn)                                                      \
	__attribute__((constructor)) static void mproc__pool_task_ctor_##fn(void)     \
	{                                                                              \
		mproc_pool_register_task(name, fn);                                    \
	}
#define MPROC_POOL_INIT(name, fn)                                                      \
	__attribute__((constructor)) static void mproc__pool_init_ctor_##fn(void)     \
	{                                                                              \
		mproc_pool_register_init(name, fn);                                    \
	}

/*
 * mproc_pool_new - start a pool: map the task table, start the workers (each runs the
 * initializer and reports ready before this returns) and the handler thread.
 * Returns 0, -EINVAL (NULL out/opts/fn, workers <= 0 without AUTO_SIZE or over the maximum,
 * sizes over the limits, unknown flag bits), -ENOTSUP (MPROC_START_THREAD), -ESRCH (an exec
 * method and fn or the initializer is not registered), -EMSGSIZE (arg_len + initargs_len over
 * MPROC_POOL_ARG_MAX), -ECHILD (a worker died or its initializer failed before it was ready,
 * or its image did not know the task's name: the workers already started are killed and
 * reaped), -ETIMEDOUT (a worker was not ready within 30 s), -EAGAIN/-ENOMEM (fork, mmap,
 * thread), or the process module's start errors.
 */
MPROC_EXPORT int mproc_pool_new(struct mproc_pool **out, const struct mproc_pool_opts *opts);

/* The number of workers; the pids of the current workers (returns how many were written).
 * Both -EINVAL for a NULL pool; worker_pids also for n < 0, or a NULL pids with n > 0. */
MPROC_EXPORT int mproc_pool_workers(const struct mproc_pool *p);
MPROC_EXPORT int mproc_pool_worker_pids(struct mproc_pool *p, pid_t *pids, int n);

/*
 * mproc_pool_close - refuse new work (-EPIPE from then on); work already submitted still runs.
 * mproc_pool_join - after close or terminate: wait until every submitted task is finished, then
 * stop the workers and reap them. Returns 0, -EINVAL (not closed), -ETIMEDOUT (timeout_s
 * passed; the pool keeps going, join again later).
 * mproc_pool_terminate - stop now: workers are SIGKILLed and reaped, every unfinished task fails
 * with -ECANCELED. Returns within milliseconds whatever is pending. Returns 0.
 * mproc_pool_free - terminate if still running, then free. NULL is a no-op.
 */
MPROC_EXPORT int mproc_pool_close(struct mproc_pool *p);
MPROC_EXPORT int mproc_pool_join(struct mproc_pool *p, double timeout_s);
MPROC_EXPORT int mproc_pool_terminate(struct mproc_pool *p);
MPROC_EXPORT void mproc_pool_free(struct mproc_pool *p);

/*
 * mproc_pool_shutdown - concurrent.futures' shutdown: close; with cancel_futures, tasks not yet
 * taken by a worker fail with -ECANCELED; with wait, join. Returns 0 or join's error.
 */
MPROC_EXPORT int mproc_pool_shutdown(struct mproc_pool *p, bool wait, bool cancel_futures);

/* Options of one asynchronous task. */
struct mproc_apply_opts {
	mproc_result_cb *callback;       /* on success (status >= 0) */
	mproc_result_cb *error_callback; /* on failure (status < 0) */
	void *cb_arg;
};

/*
 * mproc_pool_apply_async / mproc_pool_submit - queue one task of len bytes (copied). Waits while
 * the table is full. *out receives the result handle (free it with mproc_result_free).
 * Returns 0, -EINVAL (NULL), -EMSGSIZE (len over task_max), -EPIPE (closed, terminated or broken pool).
 * submit is apply_async without callbacks (a "future").
 */
MPROC_EXPORT int mproc_pool_apply_async(struct mproc_pool *p, const void *task, size_t len,
			   const struct mproc_apply_opts *opts, struct mproc_result **out);
MPROC_EXPORT int mproc_pool_submit(struct mproc_pool *p, const void *task, size_t len,
		      struct mproc_result **out);

/*
 * mproc_pool_apply - run one task and wait for it: copies at most size result bytes to result.
 * Returns the result length, the task's -errno, -ECHILD (its worker died), -EMSGSIZE (result
 * longer than size), -ETIMEDOUT, or apply_async's errors.
 */
MPROC_EXPORT ssize_t mproc_pool_apply(struct mproc_pool *p, const void *task, size_t len,
		void *result, size_t size, double timeout_s);

/*
 * Result handles (AsyncResult / Future).
 * mproc_result_get - wait at most timeout_s (MPROC_FOREVER, 0 = poll) and copy the result.
 *   Returns the result length, the task's -errno, -ECHILD, -ECANCELED, -EMSGSIZE (size too
 *   small; nothing copied), -ETIMEDOUT (not ready: nothing changes), -EINVAL.
 * mproc_result_wait - wait without copying: 0 (ready) or -ETIMEDOUT.
 * mproc_result_ready / _successful - done? done with status >= 0?
 * mproc_result_cancel - cancel if no worker took it yet: 0 (now -ECANCELED), -EBUSY (running
 *   or done).
 * mproc_result_free - free the handle; an unfinished task still runs, its result is dropped.
 */
MPROC_EXPORT ssize_t mproc_result_get(struct mproc_result *r, void *result, size_t size,
		double timeout_s);
MPROC_EXPORT int mproc_result_wait(struct mproc_result *r, double timeout_s);
MPROC_EXPORT bool mproc_result_ready(struct mproc_result *r);
MPROC_EXPORT bool mproc_result_successful(struct mproc_result *r);
MPROC_EXPORT int mproc_result_cancel(struct mproc_result *r);
MPROC_EXPORT void mproc_result_free(struct mproc_result *r);

/*
 * A batch of fixed-size records for map / imap: n tasks of task_len bytes, task_stride apart
 * (0 = task_len); results land at results + i * result_stride, at most result_stride bytes
 * each (0 = the pool's result_max); status[i] (optional) receives each result length or -errno.
 * chunksize: tasks a worker takes in one visit (0 = 1).
 */
struct mproc_pool_batch {
	const void *tasks;
	size_t task_len, task_stride;
	void *results;
	size_t result_stride;
	ssize_t *status;
	size_t n;
	size_t chunksize;
	size_t buffersize;      /* imap only: see mproc_pool_imap (0 = submit all at once) */
};

/*
 * mproc_pool_map - run every task of the batch and wait for all of them (even when one fails).
 * Returns 0, the first failed task's error (by index), -ETIMEDOUT (tasks left running: their
 * results are dropped), -EINVAL (bad batch), -EMSGSIZE (task_len over task_max), -EPIPE
 * (closed/broken pool). n == 0 returns 0.
 */
MPROC_EXPORT int mproc_pool_map(struct mproc_pool *p, const struct mproc_pool_batch *b,
		double timeout_s);

/*
 * mproc_pool_map_async - map without waiting for the results (Python's map_async): returns
 * once every task is in the table (waiting while it is full; b->tasks may go then) with a
 * handle that is ready when every task is done. b->results and b->status must stay valid until
 * then, or until the handle is freed (tasks still running then write elsewhere). On the handle,
 * mproc_result_get (result NULL, size 0) returns 0 or the first failed task's error by index,
 * as mproc_pool_map does, or -ETIMEDOUT; wait, ready and successful work as for one task;
 * opts' callback (status 0) or error_callback (that error) runs once, when all are done.
 * Returns 0, -EINVAL (bad batch, NULL out), -EMSGSIZE (task_len over task_max), -EPIPE
 * (closed/broken pool), -ENOMEM.
 * n == 0 gives a handle that is ready at once.
 */
MPROC_EXPORT int mproc_pool_map_async(struct mproc_pool *p, const struct mproc_pool_batch *b,
			 const struct mproc_apply_opts *opts, struct mproc_result **out);

/*
 * mproc_pool_starmap - map where task i is the concatenation of nargs fields: field k is
 * arg_size[k] bytes at args[k] + i * arg_stride[k] (a stride of 0 = arg_size[k]). The fields
 * together must fit task_max (else -EMSGSIZE). b->tasks, task_len and task_stride are
 * ignored. Returns as mproc_pool_map.
 */
MPROC_EXPORT int mproc_pool_starmap(struct mproc_pool *p, const void *const *args,
		const size_t *arg_size,
		       const size_t *arg_stride, size_t nargs, const struct mproc_pool_batch *b,
		       double timeout_s);

/*
 * mproc_pool_imap / _imap_unordered - start the batch (b->results and b->status are ignored)
 * and return an iterator. mproc_imap_next copies the next result (in input order for imap,
 * in completion order for imap_unordered) and sets *index (optional) to its input index.
 * Returns the result length or the task's -errno (the iteration goes on past it), MPROC_EOF
 * after the last, -ETIMEDOUT, -EMSGSIZE (size too small; the item stays next).
 * Eager (b->buffersize == 0): returns once every task is in the table (waiting while it is
 * full); results are kept in the iterator until read (n results of memory).
 * Lazy (b->buffersize = B > 0, concurrent.futures' map(buffersize=) of Python 3.14): tasks
 * are submitted as the caller consumes, at most B submitted and not yet returned by _next,
 * and the iterator holds B results, whatever n is. b->tasks must then stay valid until the
 * iterator ends or is freed. A lazy iterator made before mproc_pool_close keeps submitting its
 * batch until join; after join its unsubmitted items fail with -EPIPE, after terminate with
 * -ECANCELED. -EINVAL if B > MPROC_POOL_QUEUE_MAX, -EMSGSIZE if b->task_len > task_max.
 * mproc_imap_free - free; unfinished tasks still run, their results are dropped; tasks of a
 * lazy iterator not yet submitted never are.
 */
MPROC_EXPORT int mproc_pool_imap(struct mproc_pool *p, const struct mproc_pool_batch *b,
		    struct mproc_imap **out);
MPROC_EXPORT int mproc_pool_imap_unordered(struct mproc_pool *p, const struct mproc_pool_batch *b,
			      struct mproc_imap **out);
MPROC_EXPORT ssize_t mproc_imap_next(struct mproc_imap *it, void *result, size_t size,
		size_t *index, double timeout_s);
MPROC_EXPORT void mproc_imap_free(struct mproc_imap *it);

/*
 * concurrent.futures.wait: wait until one (MPROC_FIRST_COMPLETED) or all (MPROC_ALL_COMPLETED)
 * of the n results are done, at most timeout_s. *ndone (optional) receives how many are done.
 * Returns 0, -ETIMEDOUT, -EINVAL.
 */
enum mproc_wait_mode { MPROC_FIRST_COMPLETED = 1, MPROC_ALL_COMPLETED = 2 };
MPROC_EXPORT int mproc_futures_wait(struct mproc_result *const *rs, size_t n,
		enum mproc_wait_mode mode, double timeout_s, size_t *ndone);

/*
 * concurrent.futures.as_completed: mproc_as_completed_next returns the index (>= 0) in rs of
 * the next result to complete, each index once, MPROC_EOF after the last, -ETIMEDOUT.
 * The array rs must stay valid until the iterator is freed.
 */
MPROC_EXPORT int mproc_as_completed_new(struct mproc_as_completed **out,
		struct mproc_result *const *rs, size_t n);
MPROC_EXPORT ssize_t mproc_as_completed_next(struct mproc_as_completed *it, double timeout_s);
MPROC_EXPORT void mproc_as_completed_free(struct mproc_as_completed *it);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_POOL_H */
