/*
 * queue.c - the queue front end: argument checks, deadlines, close, JoinableQueue counters,
 * and dispatch through the back ends' ops tables (SQLite's mutex-methods pattern).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

#include "internal.h"
#include "mproc/queue.h"
#include "queue_internal.h"
#include "queue_ring_internal.h"

static const struct mproc__queue_ops *const backends[MPROC_QUEUE_BACKEND_COUNT] = {
	[MPROC_QUEUE_PIPE] = &mproc__queue_pipe_ops,
	[MPROC_QUEUE_RING] = &mproc__queue_ring_ops,
	[MPROC_QUEUE_MQ] = &mproc__queue_mq_ops,
	[MPROC_QUEUE_SYSV] = &mproc__queue_sysv_ops,
};

void *mproc__shared_alloc(size_t bytes, int *fd, bool populate)
{
	void *p;
	int e;

	*fd = memfd_create("mproc-queue", MFD_CLOEXEC);
	if (*fd < 0)
		return NULL;
	if (ftruncate(*fd, (off_t)bytes) < 0)
		goto out_close;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0),
		 *fd, 0);
	if (p != MAP_FAILED)
		return p;
out_close:
	e = errno;
	mproc__closep(fd);
	errno = e;
	return NULL;
}

void *mproc__shared_map(int fd, size_t bytes)
{
	struct stat st;
	void *p;

	/* A smaller file than the descriptor says would SIGBUS on first touch. */
	if (fstat(fd, &st) < 0)
		return NULL;
	if ((uint64_t)st.st_size < bytes) {
		errno = EBADMSG;
		return NULL;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

void mproc__shared_free(void *p, size_t bytes, int *fd)
{
	if (p)
		munmap(p, bytes);
	mproc__closep(fd);
}

/* ---- attach descriptors -------------------------------------------------------------------- */

_Static_assert(sizeof(struct mproc__queue_wire) <= sizeof(struct mproc_queue_desc),
	       "struct mproc_queue_desc is too small for the wire form");

int mproc__queue_wire_fd(struct mproc__queue_wire *w, unsigned i, int fd)
{
	struct stat st;

	if (i >= MPROC__QUEUE_WIRE_FDS || fstat(fd, &st) < 0)
		return i >= MPROC__QUEUE_WIRE_FDS ? -EINVAL : -errno;
	w->fd[i] = fd;
	w->dev[i] = (uint64_t)st.st_dev;
	w->ino[i] = (uint64_t)st.st_ino;
	if (w->nfds < i + 1)
		w->nfds = i + 1;
	return 0;
}

static bool wire_same_file(const struct mproc__queue_wire *w, unsigned i, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (uint64_t)st.st_dev == w->dev[i] &&
	       (uint64_t)st.st_ino == w->ino[i];
}

int mproc__queue_wire_open(const struct mproc__queue_wire *w, unsigned i, int flags)
{
	char path[64];
	int fd, e;

	if (i >= w->nfds || w->fd[i] < 0)
		return -EINVAL;
	/* Inherited under the same number (fork, or an exec that kept it open): share it. */
	if (wire_same_file(w, i, w->fd[i])) {
		fd = fcntl(w->fd[i], F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	/* Else open the exporter's file again (a new open file description of the same pipe,
	 * memfd or message queue); needs ptrace read access to the exporter (same user). */
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)w->pid, (int)w->fd[i]);
	fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		return e == ENOENT || e == ESRCH ? -ESRCH : -e;
	}
	if (!wire_same_file(w, i, fd)) {
		mproc__close(fd);       /* the number was reused for another file */
		return -ESRCH;
	}
	return fd;
}

int mproc_queue_export(struct mproc_queue *q, struct mproc_queue_desc *d)
{
	struct mproc__queue_wire w;
	int r;

	if (!q || !d)
		return -EINVAL;
	if (!q->ops->export_)
		return -EOPNOTSUPP;
	memset(&w, 0, sizeof(w));
	for (unsigned i = 0; i < MPROC__QUEUE_WIRE_FDS; i++)
		w.fd[i] = -1;
	w.magic = MPROC__QUEUE_WIRE_MAGIC;
	w.version = MPROC__QUEUE_WIRE_VERSION;
	w.backend = (uint16_t)q->backend;
	w.pid = (int32_t)getpid();
	w.flags = q->flags;
	w.maxsize = q->maxsize;
	w.max_msg = q->max_msg;
	w.sysv_id = -1;
	r = mproc__queue_wire_fd(&w, 0, q->shfd);
	if (r < 0)
		return r;
	r = q->ops->export_(q, &w);
	if (r < 0)
		return r;
	memset(d, 0, sizeof(*d));
	memcpy(d->opaque, &w, sizeof(w));
	return 0;
}

int mproc_queue_attach(struct mproc_queue **out, const struct mproc_queue_desc *d)
{
	struct mproc__queue_wire w;
	struct mproc_queue *q;
	int r;

	if (!out || !d)
		return -EINVAL;
	*out = NULL;
	memcpy(&w, d->opaque, sizeof(w));
	if (w.magic != MPROC__QUEUE_WIRE_MAGIC || w.version != MPROC__QUEUE_WIRE_VERSION ||
	    w.backend >= MPROC_QUEUE_BACKEND_COUNT || w.nfds < 1 ||
	    w.nfds > MPROC__QUEUE_WIRE_FDS || (w.flags & ~(unsigned)MPROC_QUEUE_FLAGS_ALL) ||
	    w.maxsize > UINT32_MAX || w.max_msg > MPROC__QUEUE_MSG_LIMIT || w.pid <= 0)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->ops = backends[w.backend];
	q->backend = w.backend;
	q->flags = w.flags;
	q->maxsize = (size_t)w.maxsize;
	q->max_msg = (size_t)w.max_msg;
	q->creator = -1;
	r = mproc__queue_wire_open(&w, 0, O_RDWR);
	if (r < 0)
		goto out_free;
	q->shfd = r;
	q->sh = mproc__shared_map(q->shfd, sizeof(*q->sh));
	if (!q->sh) {
		r = -errno;
		goto out_close;
	}
	r = q->ops->attach(q, &w);
	if (r < 0)
		goto out_fini;
	*out = q;
	return 0;
out_fini:
	q->ops->fini(q, false);
	mproc__shared_free(q->sh, sizeof(*q->sh), &q->shfd);
	free(q);
	return r;
out_close:
	mproc__closep(&q->shfd);
out_free:
	free(q);
	return r;
}

int mproc__robust_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int r;

	r = pthread_mutexattr_init(&a);
	if (r)
		return -r;
	r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!r)
		r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!r)
		r = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -r;
}

int mproc__robust_lock(pthread_mutex_t *m, int64_t deadline)
{
	struct timespec ts;
	int r;

	if (deadline == MPROC__NO_DEADLINE) {
		r = pthread_mutex_lock(m);
	} else {
		ts.tv_sec = deadline / MPROC__NSEC_PER_SEC;
		ts.tv_nsec = deadline % MPROC__NSEC_PER_SEC;
#if defined(__SANITIZE_THREAD__)
		/* ThreadSanitizer (gcc 12's at least) does not intercept pthread_mutex_clocklock:
		 * without these it reports the unlock as "unlock of an unlocked mutex" and misses
		 * what the lock orders. Annotated as its timedlock interceptor does (a try lock). */
		__tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
		r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
		__tsan_mutex_post_lock(m, r != 0 && r != EOWNERDEAD ?
				       __tsan_mutex_try_lock | __tsan_mutex_try_lock_failed :
				       __tsan_mutex_try_lock, 0);
#else
		r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#endif
	}
	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		return -EOWNERDEAD;
	}
	return -r;
}

void mproc__robust_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

#define QLOCK_WAITERS 0x80000000u

static pthread_once_t tid_once = PTHREAD_ONCE_INIT;
/* initial-exec: one load from the thread pointer, not a __tls_get_addr call per access (the
 * ring's fast path reads it on every put and get through mproc__qlock_self_fast). */
__thread uint32_t mproc__t_tid __attribute__((tls_model("initial-exec")));

static void tid_reset_in_child(void)
{
	mproc__t_tid = 0;       /* the child's only thread has a new tid */
}

static void tid_register(void)
{
	pthread_atfork(NULL, NULL, tid_reset_in_child);
}

static pid_t my_tid(void)
{
	if (!mproc__t_tid) {
		pthread_once(&tid_once, tid_register);
		mproc__t_tid = (uint32_t)syscall(SYS_gettid);
	}
	return (pid_t)mproc__t_tid;
}

uint32_t mproc__qlock_self(void)
{
	return (uint32_t)my_tid();
}

/* The holder recorded in v is gone: take the lock over (v must still be its value). */
static bool qlock_take_dead(_Atomic uint32_t *lock, uint32_t v, uint32_t me)
{
	pid_t owner = (pid_t)(v & ~(QLOCK_WAITERS | MPROC__QLOCK_STICKY));

	return owner > 0 && !mproc__tid_alive(owner) &&
	       atomic_compare_exchange_strong(lock, &v, me | QLOCK_WAITERS);
}

int mproc__qlock(_Atomic uint32_t *lock, int64_t deadline)
{
	uint32_t me = (uint32_t)my_tid(), v = 0;
	int64_t now, until;

	if (atomic_compare_exchange_strong(lock, &v, me))
		return 0;
	for (int i = 0; i < 200; i++) {
		v = 0;
		if (atomic_load_explicit(lock, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak(lock, &v, me))
			return 0;
		mproc__cpu_relax();
	}
	for (;;) {
		v = atomic_load(lock);
		if (v == 0) {
			/* Others may sleep: keep the bit so our unlock wakes them. */
			if (atomic_compare_exchange_weak(lock, &v, me | QLOCK_WAITERS))
				return 0;
			continue;
		}
		/* Kept by one thread for good (queue_ring.c): its caller revokes it; never
		 * sleep on it, the keeper may never come back to unlock. */
		if (v & MPROC__QLOCK_STICKY)
			return -EALREADY;
		if (!(v & QLOCK_WAITERS) &&
		    !atomic_compare_exchange_weak(lock, &v, v | QLOCK_WAITERS))
			continue;
		v |= QLOCK_WAITERS;
		now = mproc__now_ns();
		/* Before giving up, and after each slice, ask whether the holder still exists:
		 * also when the caller's whole timeout is one slice or none (a get with timeout 0
		 * or 0.05 s). Checking only after a full slice left a queue whose holder was
		 * killed wedged for good while every caller polled (found by tests/test_soak.c). */
		if (now >= deadline)
			return qlock_take_dead(lock, v, me) ? -EOWNERDEAD : -ETIMEDOUT;
		until = deadline - now > MPROC__QLOCK_SLICE_NS ? now + MPROC__QLOCK_SLICE_NS
							       : deadline;
		if (mproc__futex_wait((uint32_t *)lock, v, until) == -ETIMEDOUT &&
		    qlock_take_dead(lock, v, me))
			return -EOWNERDEAD;
	}
}

void mproc__qunlock(_Atomic uint32_t *lock)
{
	if (atomic_exchange(lock, 0) & QLOCK_WAITERS)
		mproc__futex_wake((uint32_t *)lock, 1);
}

/* Sleep on *word while it equals seen, at most until deadline and for one slice. */
static int qwait(_Atomic uint32_t *word, _Atomic uint32_t *waiters, uint32_t seen,
		 int64_t deadline, int64_t slice_ns)
{
	int64_t now = mproc__now_ns(), until = deadline;
	int r;

	if (now >= deadline)
		return -ETIMEDOUT;
	if (slice_ns > 0 && deadline - now > slice_ns)
		until = now + slice_ns;
	r = 0;
	/* The "sleeping" flag is raised before the final check (seq_cst on both sides), so a
	 * notifier that bumps the word after our check sees the flag and wakes us: no lost
	 * wake-up. The notifier clears the flag as it wakes all, so a burst of notifications
	 * costs one FUTEX_WAKE, not one each. */
	atomic_store(waiters, 1);
	if (atomic_load(word) == seen)
		r = mproc__futex_wait((uint32_t *)word, seen, until);
	if (r == -ETIMEDOUT && until == deadline)
		return -ETIMEDOUT;
	return 0;
}

int mproc__qwait_put(struct mproc_queue *q, uint32_t seen, int64_t deadline, int64_t slice_ns)
{
	return qwait(&q->sh->put_seq, &q->sh->getters, seen, deadline, slice_ns);
}

int mproc__qwait_get(struct mproc_queue *q, uint32_t seen, int64_t deadline, int64_t slice_ns)
{
	return qwait(&q->sh->get_seq, &q->sh->putters, seen, deadline, slice_ns);
}

void mproc__qnotify_put(struct mproc_queue *q)
{
	atomic_fetch_add(&q->sh->put_seq, 1);
	if (atomic_load(&q->sh->getters) && atomic_exchange(&q->sh->getters, 0))
		mproc__futex_wake((uint32_t *)&q->sh->put_seq, INT_MAX);
}

void mproc__qnotify_get(struct mproc_queue *q)
{
	atomic_fetch_add(&q->sh->get_seq, 1);
	if (atomic_load(&q->sh->putters) && atomic_exchange(&q->sh->putters, 0))
		mproc__futex_wake((uint32_t *)&q->sh->get_seq, INT_MAX);
}

const char *mproc_queue_backend_name(enum mproc_queue_backend b)
{
	if ((unsigned)b >= MPROC_QUEUE_BACKEND_COUNT)
		return NULL;
	return backends[b]->name;
}

int mproc_queue_backend_from_name(const char *name, enum mproc_queue_backend *out)
{
	if (!name || !out)
		return -EINVAL;
	for (unsigned i = 0; i < MPROC_QUEUE_BACKEND_COUNT; i++) {
		if (strcmp(name, backends[i]->name) == 0) {
			*out = (enum mproc_queue_backend)i;
			return 0;
		}
	}
	return -EINVAL;
}

int mproc_queue_new(struct mproc_queue **out, const struct mproc_queue_opts *opts)
{
	static const struct mproc_queue_opts defaults;
	const struct mproc_queue_opts *o = opts ? opts : &defaults;
	struct mproc_queue *q = NULL;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((unsigned)o->backend >= MPROC_QUEUE_BACKEND_COUNT)
		return -EINVAL;
	if (o->flags & ~(unsigned)MPROC_QUEUE_FLAGS_ALL)
		return -EINVAL;
	if ((o->flags & MPROC_QUEUE_SPIN) && (o->flags & MPROC_QUEUE_NOSPIN))
		return -EINVAL;
	if (o->max_msg > MPROC__QUEUE_MSG_LIMIT || o->maxsize > UINT32_MAX ||
	    o->ring_bytes > ((size_t)1 << 40))
		return -EINVAL;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->ops = backends[o->backend];
	q->backend = o->backend;
	q->flags = o->flags;
	q->maxsize = o->maxsize;
	q->max_msg = o->max_msg;
	q->creator = getpid();
	q->shfd = -1;
	q->sh = mproc__shared_alloc(sizeof(*q->sh), &q->shfd, false);
	if (!q->sh) {
		r = -errno;
		goto out_free;
	}
	r = q->ops->init(q, o);
	if (r < 0)
		goto out_fini;
	*out = q;
	return 0;

out_fini:
	q->ops->fini(q, true);
	mproc__shared_free(q->sh, sizeof(*q->sh), &q->shfd);
out_free:
	free(q);
	return r;
}

void mproc_queue_free(struct mproc_queue *q)
{
	if (!q)
		return;
	q->ops->fini(q, q->creator == getpid());
	mproc__shared_free(q->sh, sizeof(*q->sh), &q->shfd);
	free(q);
}

/* timeout 0 means "would block" (-EAGAIN), not "timed out". */
static int fix_timeout_code(int r, double timeout_s)
{
	return (r == -ETIMEDOUT && timeout_s == 0) ? -EAGAIN : r;
}

/*
 * The deadline for a call that found it must wait. Deadline 0 (long past) means "do not
 * wait": a first attempt with it costs no clock read (a vDSO call, tens of ns), which matters
 * on the ring's fast path.
 */
static int64_t deadline_of(double timeout_s)
{
	int64_t d = 0;

	if (timeout_s != 0)
		mproc__deadline(timeout_s, &d);
	return d;
}

/* Everything but a ring keeper's inline put: checks, joinable counting, the first try and the
 * wait. Out of line, so that the inline path saves no registers and makes no call. */
__attribute__((noinline))
static int queue_put_slow(struct mproc_queue *q, const void *buf, size_t len, double timeout_s)
{
	bool joinable;
	int r;

	if (!q || !buf || !mproc__timeout_valid(timeout_s))
		return -EINVAL;
	if (atomic_load_explicit(&q->closed, memory_order_relaxed))
		return -EPIPE;
	if (len > q->max_msg)
		return -EMSGSIZE;
	/* Count the task before the item can be seen, so a consumer's task_done can never
	 * run ahead of our increment and find the counter at zero. */
	joinable = q->flags & MPROC_QUEUE_JOINABLE;
	if (joinable)
		atomic_fetch_add(&q->sh->unfinished, 1);
	r = -ETIMEDOUT;
	if (q->ops->try_first)
		r = q->ops->put(q, buf, len, timeout_s == 0 ? 0 : MPROC__FIRST_TRY);
	if (r == -ETIMEDOUT && (timeout_s != 0 || !q->ops->try_first))
		r = q->ops->put(q, buf, len, deadline_of(timeout_s));
	if (r < 0 && joinable && atomic_fetch_sub(&q->sh->unfinished, 1) == 1 &&
	    atomic_load(&q->sh->joiners))
		mproc__futex_wake((uint32_t *)&q->sh->unfinished, INT_MAX);
	return fix_timeout_code(r, timeout_s);
}

/*
 * A ring's keeper puts inline (queue_ring_internal.h): the checks that every put makes, then
 * the ring's own fast path, with no call of its own and no registers saved (on a round trip
 * between two cores this is the critical path). Anything else, a failed check included, goes
 * to queue_put_slow, which checks again and says why.
 */
int mproc_queue_put(struct mproc_queue *q, const void *buf, size_t len, double timeout_s)
{
	if (q && buf && q->ops == &mproc__queue_ring_ops && !(q->flags & MPROC_QUEUE_JOINABLE) &&
	    len <= q->max_msg && mproc__timeout_valid(timeout_s) &&
	    !atomic_load_explicit(&q->closed, memory_order_relaxed) &&
	    mproc__ring_put_fast(q->be, buf, len) == 0)
		return 0;
	return queue_put_slow(q, buf, len, timeout_s);
}

/* A ring's keeper found nothing ready (and spun for it if it could): wait for it. */
__attribute__((noinline))
static ssize_t queue_get_wait(struct mproc_queue *q, void *buf, size_t cap, double timeout_s)
{
	ssize_t r;

	if (timeout_s == 0)
		return -EAGAIN;
	r = mproc__ring_get_slow(q, buf, cap, deadline_of(timeout_s));
	return r < 0 ? fix_timeout_code((int)r, timeout_s) : r;
}

__attribute__((noinline))
static ssize_t queue_get_slow(struct mproc_queue *q, void *buf, size_t cap, double timeout_s)
{
	ssize_t r;

	if (!q || !buf || !mproc__timeout_valid(timeout_s))
		return -EINVAL;
	if (atomic_load_explicit(&q->closed, memory_order_relaxed))
		return -EPIPE;
	r = -ETIMEDOUT;
	if (q->ops->try_first)
		r = q->ops->get(q, buf, cap, timeout_s == 0 ? 0 : MPROC__FIRST_TRY);
	if (r == -ETIMEDOUT && (timeout_s != 0 || !q->ops->try_first))
		r = q->ops->get(q, buf, cap, deadline_of(timeout_s));
	return r < 0 ? fix_timeout_code((int)r, timeout_s) : r;
}

/* As mproc_queue_put: a ring's keeper gets inline, and spins for its record there if the call
 * may wait (timeout not 0). */
ssize_t mproc_queue_get(struct mproc_queue *q, void *buf, size_t cap, double timeout_s)
{
	if (q && buf && q->ops == &mproc__queue_ring_ops && mproc__timeout_valid(timeout_s) &&
	    !atomic_load_explicit(&q->closed, memory_order_relaxed)) {
		ssize_t n = mproc__ring_get_fast(q->be, buf, cap, timeout_s != 0);

		if (n >= 0)
			return n;
		if (n == MPROC__RING_SLOW_EMPTY)
			return queue_get_wait(q, buf, cap, timeout_s);
	}
	return queue_get_slow(q, buf, cap, timeout_s);
}

ssize_t mproc_queue_qsize(struct mproc_queue *q)
{
	if (!q)
		return -EINVAL;
	return q->ops->qsize(q);
}

bool mproc_queue_empty(struct mproc_queue *q)
{
	return mproc_queue_qsize(q) == 0;
}

bool mproc_queue_full(struct mproc_queue *q)
{
	ssize_t n = mproc_queue_qsize(q);

	return q && q->maxsize && n >= 0 && (size_t)n >= q->maxsize;
}

int mproc_queue_close(struct mproc_queue *q)
{
	if (!q)
		return -EINVAL;
	atomic_store(&q->closed, true);
	return 0;
}

int mproc_queue_task_done(struct mproc_queue *q)
{
	uint32_t v;

	if (!q || !(q->flags & MPROC_QUEUE_JOINABLE))
		return -EINVAL;
	v = atomic_load(&q->sh->unfinished);
	do {
		if (v == 0)
			return -EINVAL;     /* task_done() called too many times */
	} while (!atomic_compare_exchange_weak(&q->sh->unfinished, &v, v - 1));
	if (v == 1 && atomic_load(&q->sh->joiners))
		mproc__futex_wake((uint32_t *)&q->sh->unfinished, INT_MAX);
	return 0;
}

int mproc_queue_join(struct mproc_queue *q, double timeout_s)
{
	int64_t deadline;
	uint32_t v;
	int r;

	if (!q || !(q->flags & MPROC_QUEUE_JOINABLE))
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	for (;;) {
		v = atomic_load(&q->sh->unfinished);
		if (v == 0)
			return 0;
		if (mproc__now_ns() >= deadline)
			return fix_timeout_code(-ETIMEDOUT, timeout_s);
		atomic_fetch_add(&q->sh->joiners, 1);
		/* Slices of 100 ms: a consumer killed between its decrement and its wake-up
		 * cannot leave us asleep. */
		int64_t until = mproc__now_ns() + 100 * 1000000;
		r = mproc__futex_wait((uint32_t *)&q->sh->unfinished, v,
				      until < deadline ? until : deadline);
		atomic_fetch_sub(&q->sh->joiners, 1);
	}
}

enum mproc_queue_backend mproc_queue_backend_of(const struct mproc_queue *q)
{
	return q->backend;
}

size_t mproc_queue_max_msg(const struct mproc_queue *q)
{
	return q ? q->max_msg : 0;
}

int mproc_queue_backend_available(enum mproc_queue_backend b, const char **reason)
{
	struct mproc_queue_opts o = { .backend = b };
	struct mproc_queue *q;
	int r;

	if (reason)
		*reason = NULL;
	if ((unsigned)b >= MPROC_QUEUE_BACKEND_COUNT) {
		if (reason)
			*reason = "unknown queue back end";
		return -EINVAL;
	}
	r = mproc_queue_new(&q, &o);
	if (r == 0) {
		mproc_queue_free(q);
		return 0;
	}
	if (reason) {
		switch (b) {
		case MPROC_QUEUE_MQ:
			*reason = r == -ENOSYS ? "POSIX message queues are not supported by this kernel"
			    : r == -EMFILE || r == -ENOSPC ? "POSIX message queue limit reached (fs.mqueue.queues_max or RLIMIT_MSGQUEUE)"
			    : "mq_open failed (no mqueue filesystem, or denied)";
			break;
		case MPROC_QUEUE_SYSV:
			*reason = r == -ENOSYS ? "SysV IPC is not supported by this kernel"
			    : r == -ENOSPC ? "SysV message queue limit reached (kernel.msgmni)"
			    : "msgget failed (denied by the system)";
			break;
		case MPROC_QUEUE_RING:
			*reason = "shared memory (mmap MAP_SHARED|MAP_ANONYMOUS) failed";
			break;
		default:
			*reason = "pipe2 failed";
			break;
		}
	}
	return r;
}
