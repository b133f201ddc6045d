/*
 * mproc/queue.h - multi-producer multi-consumer queues between processes (Python's Queue,
 * SimpleQueue and JoinableQueue), on four back ends chosen at creation:
 *
 *   MPROC_QUEUE_PIPE  Python's design: one pipe, a process-shared robust lock for writers and
 *                     one for readers; records framed (header + payload + trailer). A consumer
 *                     killed in the middle of reading a record breaks the queue for good:
 *                     every later put and get returns -EBADMSG (CPython's Queue has the same
 *                     weakness). Where consumers may be killed (terminate, a timeout that
 *                     kills, the OOM killer), choose MPROC_QUEUE_RING, which survives it.
 *   MPROC_QUEUE_RING  a bounded ring of variable-size records in MAP_SHARED memory of a memfd
 *                     (no /dev/shm needed); futex waits after a short adaptive spin
 *                     (MPROC_QUEUE_SPIN: spin only; MPROC_QUEUE_NOSPIN: futex at once). A
 *                     side (producers, consumers) that one thread has used alone for a while
 *                     runs without atomic read-modify-writes until another thread uses it
 *                     (Linux membarrier; not with MPROC_QUEUE_NOSPIN).
 *   MPROC_QUEUE_MQ    a POSIX message queue, unlinked right after it is opened.
 *   MPROC_QUEUE_SYSV  a SysV message queue (IPC_RMID by the creator in mproc_queue_free(); one
 *                     left by a creator that crashed is removed by mproc_queue_clean_stale()).
 *
 * Lifecycle: mproc_queue_new() in the parent, fork(), then every process uses the same handle;
 * each process calls mproc_queue_free() on its copy (only the creator's call destroys the
 * kernel object; the others unmap and close). A child that runs a fresh image (start methods
 * spawn, vfork, posix_spawn, forkserver) inherits no memory: the parent passes it a
 * struct mproc_queue_desc from mproc_queue_export() (as the process argument, 256 bytes) and
 * the child calls mproc_queue_attach() on it (Python pickles a Queue for spawn the same way).
 * All shared memory of a queue lives in memfds for that reason (no /dev/shm needed).
 *
 * Items are byte strings of 0..max_msg bytes; each get returns one whole item as it was put.
 * Timeouts are double seconds: MPROC_FOREVER blocks, 0 is non-blocking (-EAGAIN when full or
 * empty), t > 0 gives -ETIMEDOUT after about t seconds (CLOCK_MONOTONIC, EINTR retried).
 *
 * Locking: all calls are safe between processes and between threads of one process. put and
 * get allocate nothing, except sysv items over 8 KiB (a malloc'd bounce buffer).
 * A process killed inside put or get never wedges the queue: locks are robust (-EOWNERDEAD is
 * recovered inside the library), a record is published only when complete (ring) or is
 * recognised as torn and dropped (pipe), and mq/sysv messages are atomic in the kernel. The one
 * exception is a pipe-queue reader killed mid-record, which breaks that queue (see above).
 * Each item of a JoinableQueue (MPROC_QUEUE_JOINABLE) counts as unfinished from its put until a
 * consumer calls mproc_queue_task_done(); mproc_queue_join() waits until none is unfinished.
 *
 * Close: mproc_queue_close() marks this process's handle closed; put and get on it then return
 * -EPIPE (as Python's Queue.close()). Other processes are unaffected.
 *
 * Example: examples/queue.c (a list through a Queue to a child, exported to spawn and
 * forkserver children).
 */
#ifndef MPROC_QUEUE_H
#define MPROC_QUEUE_H

#include <mproc/export.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <mproc/error.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mproc_queue;

enum mproc_queue_backend {
	MPROC_QUEUE_PIPE = 0,
	MPROC_QUEUE_RING = 1,
	MPROC_QUEUE_MQ = 2,
	MPROC_QUEUE_SYSV = 3,
	MPROC_QUEUE_BACKEND_COUNT
};

enum {
	MPROC_QUEUE_JOINABLE = 1u << 0,  /* task_done/join available */
	MPROC_QUEUE_SPIN = 1u << 1,      /* ring: spin only, never sleep (latency benchmarks) */
	MPROC_QUEUE_NOSPIN = 1u << 2,    /* ring: sleep on the futex at once, no spin */
	MPROC_QUEUE_FLAGS_ALL = (1u << 3) - 1,
};

/* Options; zero means default. The library keeps no pointer to them. */
struct mproc_queue_opts {
	enum mproc_queue_backend backend;
	/* Most items in the queue at once; 0 = no count limit (pipe, ring, sysv: the channel's
	 * byte capacity still bounds it and put blocks when it is full; mq: the system's
	 * fs.mqueue.msg_max). mq needs a count limit, so 0 there means msg_max. */
	size_t maxsize;
	/* Largest item in bytes; 0 = 64 KiB (pipe, ring), fs.mqueue.msgsize_max (mq),
	 * kernel.msgmax (sysv). mq and sysv refuse a value above what the kernel allows
	 * with -EMSGSIZE (never clamped). At most 64 MiB. */
	size_t max_msg;
	/* ring: bytes of record storage (rounded up to a power of two); 0 = max(1 MiB,
	 * 4 records of max_msg). Other back ends ignore it. */
	size_t ring_bytes;
	unsigned flags;                  /* MPROC_QUEUE_* */
};

/*
 * mproc_queue_new - create a queue.
 * @out: receives the queue (NULL on failure).
 * @opts: options (NULL = all defaults: pipe back end).
 *
 * Returns 0, -EINVAL (NULL out, unknown back end or flag, SPIN with NOSPIN, max_msg over
 * 64 MiB, ring_bytes too small for one max_msg record, maxsize over UINT32_MAX), -EMSGSIZE
 * (max_msg over the kernel's limit for mq/sysv), -ENOSYS/-EACCES/-ENOSPC... when the back end
 * is unavailable (see mproc_queue_backend_available()), -ENOMEM, -EMFILE. Nothing is
 * allocated on failure. Not async-signal-safe.
 */
MPROC_EXPORT int mproc_queue_new(struct mproc_queue **out, const struct mproc_queue_opts *opts);

/*
 * mproc_queue_free - release this process's use of the queue; the creating process also
 * destroys the kernel objects (SysV: IPC_RMID). NULL is a no-op. Items still queued are lost.
 */
MPROC_EXPORT void mproc_queue_free(struct mproc_queue *q);

/*
 * mproc_queue_put - append one item of len bytes (0 allowed).
 * Returns 0, -EAGAIN (timeout 0 and full), -ETIMEDOUT, -EPIPE (handle closed),
 * -EMSGSIZE (len > max_msg; nothing sent), -EINVAL (NULL q or buf, bad timeout),
 * -EBADMSG (the queue was broken by a reader killed mid-record, pipe back end only).
 * A put that has begun to write a pipe record larger than the free pipe space finishes it
 * even past its timeout (a half-written record would be lost).
 */
MPROC_EXPORT int mproc_queue_put(struct mproc_queue *q, const void *buf, size_t len,
		double timeout_s);

/*
 * mproc_queue_get - remove the oldest item and copy it to buf (cap bytes).
 * Returns the item's length, -EAGAIN (timeout 0 and empty), -ETIMEDOUT, -EPIPE (closed),
 * -EMSGSIZE (the item is larger than cap; it stays in the queue; the mq back end refuses
 * any cap below max_msg this way, before it takes anything), -EINVAL (NULL q or buf, bad
 * timeout),
 * -EBADMSG (pipe: queue broken, see put).
 */
MPROC_EXPORT ssize_t mproc_queue_get(struct mproc_queue *q, void *buf, size_t cap,
		double timeout_s);

/*
 * An attach descriptor: plain bytes, copy it anywhere (a spawn argument, a pipe, a file). It
 * names the queue's fds in the exporting process (with their inode numbers), the SysV id and
 * the limits; it holds no pointer. Valid while the exporting process is alive and holds q.
 */
struct mproc_queue_desc {
	unsigned long long opaque[32];
};

/*
 * mproc_queue_export - describe q so another process can attach to it. Returns 0, -EINVAL
 * (NULL q or d). Allocates nothing; not async-signal-safe (fstat only, but keep it simple).
 */
MPROC_EXPORT int mproc_queue_export(struct mproc_queue *q, struct mproc_queue_desc *d);

/*
 * mproc_queue_attach - open the queue that d describes, in this process: typically a child
 * started by an exec-based method, given d as its argument. Each fd is taken from this
 * process if it was inherited under the same number (same inode), else opened again through
 * /proc/<exporter>/fd/<n> (Linux; the exporter must be alive and of the same user, since
 * that needs ptrace read access to it). The handle is used and freed like any other; its
 * mproc_queue_free never destroys the queue (the creator's does).
 * Returns 0, -EINVAL (NULL, or d is not a descriptor of this version), -ESRCH (the exporter
 * is gone, or no longer holds the queue), -EACCES (its /proc/<pid>/fd is not ours to open),
 * -ENOMEM, -EMFILE. Nothing is left allocated on failure.
 */
MPROC_EXPORT int mproc_queue_attach(struct mproc_queue **out, const struct mproc_queue_desc *d);

/* Items in the queue now (exact when no put or get is in progress; pipe: a process killed
 * inside put or get can leave it one too high each, until a get or put finds the pipe empty
 * and resyncs). -errno on error. */
MPROC_EXPORT ssize_t mproc_queue_qsize(struct mproc_queue *q);
MPROC_EXPORT bool mproc_queue_empty(struct mproc_queue *q);
/* Full: qsize == maxsize (always false without maxsize). */
MPROC_EXPORT bool mproc_queue_full(struct mproc_queue *q);

/* Mark this handle closed (put/get -> -EPIPE). Returns 0, -EINVAL for NULL. Idempotent. */
MPROC_EXPORT int mproc_queue_close(struct mproc_queue *q);

/*
 * mproc_queue_task_done - a consumer finished one item (JoinableQueue).
 * Returns 0, -EINVAL (not joinable, or called more times than items were put).
 */
MPROC_EXPORT int mproc_queue_task_done(struct mproc_queue *q);

/*
 * mproc_queue_join - wait until every item put has been task_done.
 * Returns 0, -ETIMEDOUT, -EAGAIN (timeout 0 and unfinished items), -EINVAL (not joinable).
 */
MPROC_EXPORT int mproc_queue_join(struct mproc_queue *q, double timeout_s);

/* The back end and limits of q. */
MPROC_EXPORT enum mproc_queue_backend mproc_queue_backend_of(const struct mproc_queue *q);
MPROC_EXPORT size_t mproc_queue_max_msg(const struct mproc_queue *q);

/* "pipe", "ring", "mq", "sysv"; NULL for an unknown value. */
MPROC_EXPORT const char *mproc_queue_backend_name(enum mproc_queue_backend b);
/* Name -> back end: 0 or -EINVAL. */
MPROC_EXPORT int mproc_queue_backend_from_name(const char *name, enum mproc_queue_backend *out);

/*
 * mproc_queue_backend_available - can this machine create queues on back end b?
 * Probes by creating and destroying one (no leftovers). Returns 0 if available, else the
 * -errno creation would fail with; *reason (NULL-able) receives a static sentence.
 */
MPROC_EXPORT int mproc_queue_backend_available(enum mproc_queue_backend b, const char **reason);

/*
 * mproc_queue_clean_stale - remove SysV message queues that mproc processes created and did
 * not free because they died (SIGKILL, crash): keys 0x6d70xxxx owned by this user whose
 * creator pid no longer exists. POSIX mq names are unlinked at creation and ring/pipe queues
 * vanish with their last process, so only SysV can leave anything behind.
 * Returns the number removed, or -errno (reading /proc/sysvipc/msg). Not async-signal-safe.
 */
MPROC_EXPORT int mproc_queue_clean_stale(void);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_QUEUE_H */
