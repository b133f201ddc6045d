/*
 * mproc/sync.h - process-shared Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and
 * Barrier on futexes (Python's multiprocessing.synchronize, without /dev/shm or sem_open).
 *
 * Every object lives in shared memory, in one of two ways:
 *  - mproc_<obj>_new() maps a small anonymous MAP_SHARED region of its own. A child forked
 *    afterwards inherits it at the same address and uses the same pointer. Each process that
 *    holds the mapping may call mproc_<obj>_free() to unmap its view (the object dies with the
 *    last mapping).
 *  - mproc_<obj>_init_at(mem, size, &obj) places the object inside memory the caller provides
 *    (MPROC_SYNC_SIZE bytes, 8-byte aligned), e.g. a region of <mproc/shm.h> that unrelated
 *    processes attach at different addresses; each of them gets its handle for its own view
 *    with mproc_<obj>_at(mem, &obj), which checks that an object of that type was initialized
 *    there (-EINVAL otherwise). The objects hold no pointers, so any address works.
 *    mproc_<obj>_free() on such an object does nothing: the memory is the caller's.
 * Initialize an object once, before any other process uses it; never initialize it again
 * while another process may use it.
 *
 * Timeouts are seconds (double): MPROC_FOREVER blocks, 0 polls, and any other negative value,
 * NaN or infinity gives -EINVAL. Deadlines are on CLOCK_MONOTONIC (FUTEX_WAIT_BITSET), so a
 * wall-clock change never stretches a wait, and a signal handler that returns (EINTR, with or
 * without SA_RESTART) never shortens or restarts one. Waits may be called from any thread and in
 * forked children; none is async-signal-safe.
 *
 * Locks and owner death. A Lock (and an RLock) stores its holder's thread id in the futex
 * word, so an uncontended acquire or release is one atomic instruction and no system call;
 * a contended one spins 20 pauses, then sleeps on the futex. A sleeping waiter wakes after
 * 10 ms, then at doubling intervals up to 160 ms, and once at the end of any timed or
 * non-blocking attempt, to check whether the holder still lives (kill(tid, 0), and
 * /proc/<tid>/stat to see through zombies). If the holder is gone, the waiter takes the lock
 * and gets -EOWNERDEAD: the lock is now held by the caller, and the data it guards may be
 * half-updated; release it as usual when the state is repaired. The kernel's robust list
 * (set_robust_list) would notice the death at once, but a thread has only one robust list
 * and glibc already owns it for robust pthread mutexes; sharing it would mean writing into
 * glibc's private list layout. The liveness check costs nothing on the fast path and at most
 * 160 ms of detection delay (and a few wake-ups a second per blocked waiter). Limits: all
 * processes must share one pid namespace, and a dead holder whose thread id was already
 * reused by a new thread looks alive (the waiter then waits until that thread also exits, or
 * times out).
 *
 * The thread id is cached per thread; the cache is reset in the child by a pthread_atfork
 * handler, so children made by fork() (or by anything that runs the atfork handlers) are
 * fine. A child made by raw clone()/_Fork() must not use these locks before exec.
 * Semaphores, Events, Conditions and Barriers have no owner; a process killed while it holds
 * a semaphore unit leaves it taken (as in Python). Never hold a lock across fork().
 *
 * Example: examples/shared.c (the Lock of a Value and of an Array).
 */
#ifndef MPROC_SYNC_H
#define MPROC_SYNC_H

#include <mproc/export.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes each object needs when placed with _init_at (alignment: 8 bytes). */
#define MPROC_SYNC_SIZE 64
#define MPROC_SYNC_ALIGN 8

/* Largest semaphore value (release beyond it gives -EOVERFLOW). */
#define MPROC_SEM_VALUE_MAX 0x7fffffffu

struct mproc_lock;
struct mproc_rlock;
struct mproc_sem;
struct mproc_cond;
struct mproc_event;
struct mproc_barrier;

/*
 * Lifecycle, the same for every object (shown for Lock):
 * mproc_lock_new - map and initialize a Lock (unlocked). Returns 0, -EINVAL (out NULL), -ENOMEM.
 * mproc_lock_init_at - initialize one inside mem (size >= MPROC_SYNC_SIZE, 8-aligned).
 *	Returns 0 or -EINVAL (NULL, too small, misaligned).
 * mproc_lock_at - a handle for a Lock another process initialized at mem (mapped here maybe at
 *	another address). Returns 0 or -EINVAL (NULL, misaligned, no Lock there).
 * mproc_lock_free - unmap (for _new) or forget (for _init_at); NULL is a no-op. Safe in a
 *	forked child.
 */
MPROC_EXPORT int mproc_lock_new(struct mproc_lock **out);
MPROC_EXPORT int mproc_lock_init_at(void *mem, size_t size, struct mproc_lock **out);
MPROC_EXPORT int mproc_lock_at(void *mem, struct mproc_lock **out);
MPROC_EXPORT void mproc_lock_free(struct mproc_lock *l);

/*
 * mproc_lock_acquire - take the Lock, waiting up to timeout_s seconds.
 * Returns 0; -EAGAIN when timeout_s is 0 and the Lock is held; -ETIMEDOUT when a positive
 * timeout passed; -EOWNERDEAD when the holder died holding it (the caller holds it now; see
 * above); -EINVAL for a NULL lock or a bad timeout. Not reentrant: the holder that acquires
 * again waits (use an RLock). Any thread or process may release a Lock (Python semantics).
 */
MPROC_EXPORT int mproc_lock_acquire(struct mproc_lock *l, double timeout_s);
/* mproc_lock_release - 0, -EPERM if the Lock was not held (nothing changes), -EINVAL (NULL). */
MPROC_EXPORT int mproc_lock_release(struct mproc_lock *l);
/* mproc_lock_locked - 1 if held, 0 if not, -EINVAL for NULL. A snapshot. */
MPROC_EXPORT int mproc_lock_locked(const struct mproc_lock *l);

/* RLock: a recursive Lock with an owner. Same lifecycle functions. */
MPROC_EXPORT int mproc_rlock_new(struct mproc_rlock **out);
MPROC_EXPORT int mproc_rlock_init_at(void *mem, size_t size, struct mproc_rlock **out);
MPROC_EXPORT int mproc_rlock_at(void *mem, struct mproc_rlock **out);
MPROC_EXPORT void mproc_rlock_free(struct mproc_rlock *l);
/*
 * mproc_rlock_acquire - as mproc_lock_acquire; the owner's nested acquire succeeds at once and
 * must be matched by one more release. -EOVERFLOW past 2^31 - 1 nested acquires.
 * mproc_rlock_release - 0; -EPERM if the caller (this thread) does not own it; -EINVAL (NULL).
 */
MPROC_EXPORT int mproc_rlock_acquire(struct mproc_rlock *l, double timeout_s);
MPROC_EXPORT int mproc_rlock_release(struct mproc_rlock *l);
/* 1 if the calling thread owns it, 0 if not, -EINVAL for NULL. */
MPROC_EXPORT int mproc_rlock_is_owned(const struct mproc_rlock *l);

/*
 * Semaphore and BoundedSemaphore (one type; bounded when max_value > 0).
 * mproc_sem_new / mproc_sem_init_at - value: initial count (<= MPROC_SEM_VALUE_MAX);
 *	max_value: 0 for an unbounded Semaphore, else a BoundedSemaphore whose releases beyond
 *	max_value fail. -EINVAL: value > MPROC_SEM_VALUE_MAX, or max_value != 0 and value >
 *	max_value, or the usual NULL/size/alignment errors. -ENOMEM (_new).
 */
MPROC_EXPORT int mproc_sem_new(struct mproc_sem **out, unsigned value, unsigned max_value);
MPROC_EXPORT int mproc_sem_init_at(void *mem, size_t size, unsigned value, unsigned max_value,
		      struct mproc_sem **out);
MPROC_EXPORT int mproc_sem_at(void *mem, struct mproc_sem **out);
MPROC_EXPORT void mproc_sem_free(struct mproc_sem *s);
/* Take one unit: 0, -EAGAIN (timeout 0 and value 0), -ETIMEDOUT, -EINVAL. */
MPROC_EXPORT int mproc_sem_acquire(struct mproc_sem *s, double timeout_s);
/* Give one unit back: 0; -EOVERFLOW for a BoundedSemaphore at max_value or a value at
 * MPROC_SEM_VALUE_MAX (nothing changes); -EINVAL (NULL). */
MPROC_EXPORT int mproc_sem_release(struct mproc_sem *s);
/* The current value (>= 0), or -EINVAL. A snapshot. */
MPROC_EXPORT int mproc_sem_value(const struct mproc_sem *s);

/*
 * Condition: a condition variable used with a Lock the caller chooses per wait, like
 * pthread_cond_wait (Python's Condition(lock)). Wake-ups are exact: notify(n) wakes at most n
 * of the waiters present, and none is lost, with Python's algorithm (the notifier waits until
 * each process it woke has left its wait). Hold the Lock around wait and notify. As in
 * Python, a waiter killed after it was picked but before it left its wait makes that notify
 * block; do not kill processes inside a Condition wait. Only a Lock (not an RLock) pairs with
 * a Condition.
 */
MPROC_EXPORT int mproc_cond_new(struct mproc_cond **out);
MPROC_EXPORT int mproc_cond_init_at(void *mem, size_t size, struct mproc_cond **out);
MPROC_EXPORT int mproc_cond_at(void *mem, struct mproc_cond **out);
MPROC_EXPORT void mproc_cond_free(struct mproc_cond *c);
/*
 * mproc_cond_wait - release l, sleep until notified or timeout_s passes, take l again (without
 * a timeout, as Python does). Returns 0 when notified, -ETIMEDOUT, -EOWNERDEAD if retaking l
 * found its holder dead (l is held), -EPERM if the calling thread does not hold l (nothing
 * happens), -EINVAL.
 */
MPROC_EXPORT int mproc_cond_wait(struct mproc_cond *c, struct mproc_lock *l, double timeout_s);
/*
 * mproc_cond_wait_for - wait until pred(arg) returns nonzero, re-checking after each wake-up;
 * timeout_s covers the whole wait. Returns 0 when pred holds (checked with l held),
 * -ETIMEDOUT when it still does not at the deadline, or an error of mproc_cond_wait.
 */
MPROC_EXPORT int mproc_cond_wait_for(struct mproc_cond *c, struct mproc_lock *l,
		int (*pred)(void *arg), void *arg, double timeout_s);
/* Wake up to n waiters (n >= 0; 0 does nothing). Returns how many were woken (>= 0),
 * -EPERM if the calling thread does not hold l, -EINVAL. mproc_cond_notify_all wakes every
 * waiter. */
MPROC_EXPORT int mproc_cond_notify(struct mproc_cond *c, struct mproc_lock *l, int n);
MPROC_EXPORT int mproc_cond_notify_all(struct mproc_cond *c, struct mproc_lock *l);

/* Event: a flag that waiters sleep on until it is set. */
MPROC_EXPORT int mproc_event_new(struct mproc_event **out);
MPROC_EXPORT int mproc_event_init_at(void *mem, size_t size, struct mproc_event **out);
MPROC_EXPORT int mproc_event_at(void *mem, struct mproc_event **out);
MPROC_EXPORT void mproc_event_free(struct mproc_event *e);
/* Set (wakes every waiter) / clear: 0 or -EINVAL. */
MPROC_EXPORT int mproc_event_set(struct mproc_event *e);
MPROC_EXPORT int mproc_event_clear(struct mproc_event *e);
/* 1 if set, 0 if not, -EINVAL. */
MPROC_EXPORT int mproc_event_is_set(const struct mproc_event *e);
/* Wait until set: 0; -ETIMEDOUT (also for timeout 0 when clear: Python's wait(0) is False);
 * -EINVAL. */
MPROC_EXPORT int mproc_event_wait(struct mproc_event *e, double timeout_s);

/*
 * Barrier: parties processes (or threads) meet; each pass returns every waiter a distinct
 * index in 0..parties-1 (its arrival order). Broken state (Python's BrokenBarrierError):
 * mproc_barrier_abort(), a waiter's timeout or mproc_barrier_reset() while others wait break
 * the current pass: every process waiting gets -EPIPE, the one whose timeout ran out gets
 * -ETIMEDOUT, and later waits get -EPIPE at once until mproc_barrier_reset().
 * A waiter that oversleeps by more than 64 further passes may misreport its pass's outcome.
 * A party killed while it waits still counts as arrived in that pass (as in Python); a pass
 * that waits for a party that died never completes: use timeouts, or abort from a supervisor.
 */
MPROC_EXPORT int mproc_barrier_new(struct mproc_barrier **out, unsigned parties);
MPROC_EXPORT int mproc_barrier_init_at(void *mem, size_t size, unsigned parties,
		struct mproc_barrier **out);
MPROC_EXPORT int mproc_barrier_at(void *mem, struct mproc_barrier **out);
MPROC_EXPORT void mproc_barrier_free(struct mproc_barrier *b);
/* mproc_barrier_new / _init_at: parties in 1..INT_MAX, else -EINVAL.
 * mproc_barrier_wait returns the index (>= 0), -EPIPE (broken), -ETIMEDOUT (this waiter's
 * timeout broke it; timeout 0 breaks it unless the caller is the last party), -EINVAL. */
MPROC_EXPORT int mproc_barrier_wait(struct mproc_barrier *b, double timeout_s);
/* Break the barrier: 0 or -EINVAL. */
MPROC_EXPORT int mproc_barrier_abort(struct mproc_barrier *b);
/* Make it usable again; processes waiting now get -EPIPE. 0 or -EINVAL. */
MPROC_EXPORT int mproc_barrier_reset(struct mproc_barrier *b);
/* Snapshots: waiters in the current pass; 1 if broken, else 0; the party count. -EINVAL. */
MPROC_EXPORT int mproc_barrier_n_waiting(const struct mproc_barrier *b);
MPROC_EXPORT int mproc_barrier_broken(const struct mproc_barrier *b);
MPROC_EXPORT int mproc_barrier_parties(const struct mproc_barrier *b);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_SYNC_H */
