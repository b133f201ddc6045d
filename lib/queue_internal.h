/*
 * queue_internal.h - what the queue front end (queue.c) shares with its back ends
 * (queue_pipe.c, queue_ring.c, queue_mq.c, queue_sysv.c). Not installed.
 *
 * The front end checks arguments, turns timeouts into deadlines, keeps the JoinableQueue
 * counters and the "closed" flag, then calls the back end through its ops table. Every back
 * end gets a small shared control block (struct mproc__qshared, MAP_SHARED on a memfd, so it
 * is inherited across fork and can be mapped again after exec) with two futex sequence words it
 * may use for waking waiters.
 */
#ifndef MPROC_QUEUE_INTERNAL_H
#define MPROC_QUEUE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"
#include "mproc/queue.h"

#define MPROC__QUEUE_MSG_LIMIT ((size_t)64 << 20)
#define MPROC__QUEUE_DEFAULT_MSG ((size_t)64 << 10)

/* Shared by every process using the queue. Each futex word on its own cache line. */
struct mproc__qshared {
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t put_seq;  /* bumped after each put */
	_Atomic uint32_t getters;                             /* flag: someone sleeps on put_seq */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t get_seq;  /* bumped after each get */
	_Atomic uint32_t putters;                             /* flag: someone sleeps on get_seq */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t unfinished; /* JoinableQueue */
	_Atomic uint32_t joiners;
	/* sysv with maxsize: a robust lock word (mproc__qlock) held across "count, then send" */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t put_lock;
};

struct mproc_queue;

/*
 * The attach descriptor behind struct mproc_queue_desc (queue.h): what an exec'd child needs
 * to open the same queue. Every shared region is a memfd, so it can be mapped again; fds are
 * found in the child either inherited under the same number or through /proc/<pid>/fd/<n> of
 * the exporting process, and are accepted only if st_dev/st_ino match what was exported.
 * fd[0] is the front end's control block; the back end numbers the rest from 1.
 */
#define MPROC__QUEUE_WIRE_MAGIC 0x6d705164u    /* "mpQd" */
#define MPROC__QUEUE_WIRE_VERSION 3u     /* 2: the ring keeps a side's lock (keeper words);
					    3: the ring's keepers publish their CPU */
#define MPROC__QUEUE_WIRE_FDS 4
struct mproc__queue_wire {
	uint32_t magic;
	uint16_t version;
	uint16_t backend;
	int32_t pid;                    /* the exporting process */
	uint32_t flags;
	uint64_t maxsize, max_msg;
	uint64_t be_bytes;              /* ring: storage bytes */
	int32_t sysv_id;                /* sysv: the msqid */
	uint32_t nfds;
	int32_t fd[MPROC__QUEUE_WIRE_FDS];
	uint64_t dev[MPROC__QUEUE_WIRE_FDS];
	uint64_t ino[MPROC__QUEUE_WIRE_FDS];
};

/* Record fd as w->fd[i] (with its st_dev/st_ino). 0 or -errno. */
int mproc__queue_wire_fd(struct mproc__queue_wire *w, unsigned i, int fd);
/* Open w->fd[i] in this process (flags: O_RDONLY/O_WRONLY/O_RDWR, O_NONBLOCK): a new fd
 * (close-on-exec) or -ESRCH (the exporter is gone or the fd is no longer that file), -EACCES
 * (no access to the exporter's /proc/<pid>/fd), -errno. */
int mproc__queue_wire_open(const struct mproc__queue_wire *w, unsigned i, int flags);

/*
 * A deadline already past, like 0, that also says "the caller will wait if this fails": a back
 * end with try_first may spin for a moment without reading the clock (a short, bounded number
 * of checks) before it returns -ETIMEDOUT; with 0 (a timeout of 0) it must not wait at all.
 */
#define MPROC__FIRST_TRY INT64_C(1)

struct mproc__queue_ops {
	const char *name;
	/* Create the back end's objects in q->be. o has been checked; q->maxsize and
	 * q->max_msg hold the resolved limits (the back end may resolve 0 defaults). */
	int (*init)(struct mproc_queue *q, const struct mproc_queue_opts *o);
	/* Release; creator true in the process that called new. Safe on a half-made q. */
	void (*fini)(struct mproc_queue *q, bool creator);
	/* deadline: absolute CLOCK_MONOTONIC ns; 0 = do not wait; MPROC__NO_DEADLINE. */
	int (*put)(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline);
	ssize_t (*get)(struct mproc_queue *q, void *buf, size_t cap, int64_t deadline);
	ssize_t (*qsize)(struct mproc_queue *q);
	/* Fill w's back end part (fds from 1, be_bytes, sysv_id); attach opens the same queue
	 * from it in another process (q->be NULL on entry; fini(q, false) cleans up a failure). */
	int (*export_)(struct mproc_queue *q, struct mproc__queue_wire *w);
	int (*attach)(struct mproc_queue *q, const struct mproc__queue_wire *w);
	/* put/get are cheap to try with deadline 0 ("do not wait") or MPROC__FIRST_TRY: the
	 * front end does that first and computes a real deadline only when the call has to
	 * wait. */
	bool try_first;
};

struct mproc_queue {
	const struct mproc__queue_ops *ops;
	enum mproc_queue_backend backend;
	unsigned flags;
	size_t maxsize;         /* 0 = none */
	size_t max_msg;
	pid_t creator;          /* -1 for a handle made by mproc_queue_attach */
	_Atomic bool closed;
	struct mproc__qshared *sh;
	int shfd;               /* memfd of sh */
	void *be;               /* back end state */
};

extern const struct mproc__queue_ops mproc__queue_pipe_ops;
extern const struct mproc__queue_ops mproc__queue_ring_ops;
extern const struct mproc__queue_ops mproc__queue_mq_ops;
extern const struct mproc__queue_ops mproc__queue_sysv_ops;

/* Shared memory on a memfd (zeroed; close-on-exec fd in *fd), so that mproc_queue_attach can
 * map it again in an exec'd child; mproc__shared_map maps an existing one. NULL + errno on
 * failure. mproc__shared_free unmaps and closes (NULL / -1 are no-ops). */
void *mproc__shared_alloc(size_t bytes, int *fd, bool populate);
void *mproc__shared_map(int fd, size_t bytes);
void mproc__shared_free(void *p, size_t bytes, int *fd);

/* A robust, process-shared mutex. */
int mproc__robust_mutex_init(pthread_mutex_t *m);
/* Lock with an absolute CLOCK_MONOTONIC deadline. Returns 0, -EOWNERDEAD (now held and made
 * consistent: the caller repairs what the dead holder left), -ETIMEDOUT, -errno. */
int mproc__robust_lock(pthread_mutex_t *m, int64_t deadline);
void mproc__robust_unlock(pthread_mutex_t *m);

/*
 * A light robust lock for the ring's hot path: one 32-bit word in shared memory holding the
 * owner's thread id (bit 31: someone sleeps on it). Uncontended lock and unlock are one atomic
 * each (a glibc robust mutex costs about 4x more). A waiter sleeps in slices of
 * MPROC__QLOCK_SLICE_NS; after each, and before it gives up at its deadline (timeout 0
 * included), it asks whether the owner still runs (mproc__tid_alive: gone, or a zombie not
 * yet reaped, counts as dead); if not, it takes the lock over and gets -EOWNERDEAD. A recycled tid can
 * hide a dead owner until the caller's deadline (-ETIMEDOUT), never beyond it.
 */
#define MPROC__QLOCK_SLICE_NS (50 * INT64_C(1000000))
/* Bit 30 of a lock word: kept by its owner between calls (the ring's single-producer or
 * single-consumer fast path, queue_ring.c); mproc__qlock returns -EALREADY on such a word and
 * the caller revokes it. Never set together with the waiters bit (31). */
#define MPROC__QLOCK_STICKY 0x40000000u
int mproc__qlock(_Atomic uint32_t *lock, int64_t deadline);
void mproc__qunlock(_Atomic uint32_t *lock);
/* The calling thread's id as lock words hold it (cached; right again after fork). */
uint32_t mproc__qlock_self(void);
extern __thread uint32_t mproc__t_tid __attribute__((tls_model("initial-exec")));
static inline uint32_t mproc__qlock_self_fast(void)
{
	uint32_t t = mproc__t_tid;

	return t ? t : mproc__qlock_self();
}
/* Ring queues only, for tests: the tid that keeps the producers' (consumers') lock between
 * calls (the single-owner fast path of queue_ring.c), 0 if none. */
uint32_t mproc__ring_keeper(struct mproc_queue *q, bool consumers);

/* Wait for the next put (sleeping on put_seq, which the caller read as seen before it
 * found the queue empty). Returns 0 (re-check), -ETIMEDOUT. Slice-bounded so a wake-up
 * that a killed process never sent cannot hang the caller beyond slice_ns. */
int mproc__qwait_put(struct mproc_queue *q, uint32_t seen, int64_t deadline, int64_t slice_ns);
int mproc__qwait_get(struct mproc_queue *q, uint32_t seen, int64_t deadline, int64_t slice_ns);
void mproc__qnotify_put(struct mproc_queue *q);
void mproc__qnotify_get(struct mproc_queue *q);

#endif /* MPROC_QUEUE_INTERNAL_H */
