/*
 * sync.c - process-shared Lock, RLock, Semaphore, Condition, Event, Barrier on futexes.
 *
 * Every object is a fixed 64-byte block of shared memory that holds no pointers (see
 * mproc/sync.h). All cross-process fields are accessed with __atomic builtins; the pairs
 * "waiters++ then read value" / "value++ then read waiters" are sequentially consistent so
 * that one side always sees the other (no lost wake-up).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/error.h"
#include "mproc/sync.h"

#define SYNC_MAGIC 0x6d707379u          /* "mpsy" */
#define SYNC_MAPPED 1u                  /* made by _new: _free unmaps */

enum sync_kind {
	KIND_LOCK = 1,
	KIND_RLOCK,
	KIND_SEM,
	KIND_COND,
	KIND_EVENT,
	KIND_BARRIER,
};

struct sync_hdr {
	uint32_t magic;
	uint16_t kind;
	uint16_t flags;
};

/* Lock word: 0 = free, else the holder's thread id, plus WAITERS when someone may sleep. */
#define LW_WAITERS 0x80000000u
#define LW_TID_MASK 0x3fffffffu

/* A blocked waiter wakes to check that the holder still lives: first after 10 ms, then at
 * doubling intervals up to 160 ms (a holder that dies is noticed within that; a long wait
 * costs about 6 wake-ups a second). */
#define LIVENESS_SLICE_MIN_NS (10 * INT64_C(1000000))
#define LIVENESS_SLICE_MAX_NS (160 * INT64_C(1000000))
/* Pauses before sleeping. Short: on a shared core the holder cannot run while we spin, so a
 * long spin only delays the hand-off (measured: 100 pauses made a same-core hand-off 1.2x a
 * raw futex round trip; 20 keep it within 1.05x). */
#define SPIN_TRIES 20

/* A counting semaphore core: the futex word and the number of sleepers. */
struct sem_core {
	uint32_t value;
	uint32_t waiters;
};

struct mproc_lock {
	struct sync_hdr h;
	uint32_t word;
};

struct mproc_rlock {
	struct sync_hdr h;
	uint32_t word;
	uint32_t count;         /* nesting depth; touched only by the owner */
};

struct mproc_sem {
	struct sync_hdr h;
	struct sem_core c;
	uint32_t max;           /* 0: unbounded */
};

struct mproc_cond {
	struct sync_hdr h;
	/* Python's multiprocessing.Condition: sleepers announce themselves in `sleeping`, the
	 * notifier moves them to `wait_sem` and waits for each to confirm in `woken`. */
	struct sem_core sleeping, woken, wait_sem;
};

struct mproc_event {
	struct sync_hdr h;
	uint32_t flag;
	uint32_t waiters;
};

struct mproc_barrier {
	struct sync_hdr h;
	uint32_t lock;          /* lock word guarding count, broken, seq updates */
	uint32_t seq;           /* futex word: the pass number, advanced when a pass ends */
	uint32_t parties;
	uint32_t count;         /* arrived in the current pass */
	uint32_t broken;
	uint32_t pad;
	uint64_t outcome;       /* bit (pass % 64): that pass ended broken */
};

_Static_assert(sizeof(struct mproc_lock) <= MPROC_SYNC_SIZE, "lock size");
_Static_assert(sizeof(struct mproc_rlock) <= MPROC_SYNC_SIZE, "rlock size");
_Static_assert(sizeof(struct mproc_sem) <= MPROC_SYNC_SIZE, "sem size");
_Static_assert(sizeof(struct mproc_cond) <= MPROC_SYNC_SIZE, "cond size");
_Static_assert(sizeof(struct mproc_event) <= MPROC_SYNC_SIZE, "event size");
_Static_assert(sizeof(struct mproc_barrier) <= MPROC_SYNC_SIZE, "barrier size");

#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define CAS(p, expp, v) \
	__atomic_compare_exchange_n((p), (expp), (v), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define FETCH_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define FETCH_SUB(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)

/* ---- thread id cache ------------------------------------------------------------------ */

/* initial-exec: a fixed offset from the thread pointer, no __tls_get_addr call on the
 * fast path (libmproc is linked, not dlopen'ed; 4 bytes fit glibc's static TLS surplus). */
static __thread uint32_t tls_tid __attribute__((tls_model("initial-exec")));
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The child of fork() has a new tid but a copy of the parent thread's TLS. */
static void atfork_child(void)
{
	tls_tid = 0;
}

static void atfork_register(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

static inline uint32_t self_tid(void)
{
	if (__builtin_expect(tls_tid == 0, 0)) {
		pthread_once(&atfork_once, atfork_register);
		tls_tid = (uint32_t)syscall(SYS_gettid) & LW_TID_MASK;
	}
	return tls_tid;
}

/* ---- timeouts ------------------------------------------------------------------------- */

static inline bool timeout_valid(double t)
{
	return t == MPROC_FOREVER || (t >= 0 && t < INFINITY);
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* ---- lock word ------------------------------------------------------------------------ */

/* If the holder recorded in v is dead, take the lock over: -EOWNERDEAD, else 0. */
static int lw_take_if_dead(uint32_t *w, uint32_t v, uint32_t tid)
{
	uint32_t owner = v & LW_TID_MASK;

	if (owner == 0 || owner == tid || mproc__tid_alive((pid_t)owner))
		return 0;
	/* Only one waiter wins the exchange from this exact value. */
	if (CAS(w, &v, tid | (v & LW_WAITERS)))
		return -EOWNERDEAD;
	return 0;
}

/* Slow path of lw_lock: spin briefly, then sleep with FUTEX_WAITERS-style marking. Returns
 * 0, -EOWNERDEAD, -ETIMEDOUT (deadline passed). */
static int lw_lock_slow(uint32_t *w, uint32_t tid, int64_t deadline)
{
	int64_t now, slice = LIVENESS_SLICE_MIN_NS;
	uint32_t v;
	int r;

	if (deadline != 0) {
		for (int i = 0; i < SPIN_TRIES; i++) {
			v = __atomic_load_n(w, __ATOMIC_RELAXED);
			if (v == 0 && CAS(w, &v, tid))
				return 0;
			mproc__cpu_relax();
		}
	}
	for (;;) {
		v = __atomic_load_n(w, __ATOMIC_RELAXED);
		if (v == 0) {
			/* Others may sleep: keep WAITERS so our release wakes one. */
			if (CAS(w, &v, tid | LW_WAITERS))
				return 0;
			continue;
		}
		now = mproc__now_ns();
		if (now >= deadline) {
			r = lw_take_if_dead(w, v, tid);
			return r ? r : -ETIMEDOUT;
		}
		if (!(v & LW_WAITERS)) {
			if (!CAS(w, &v, v | LW_WAITERS))
				continue;
			v |= LW_WAITERS;
		}
		r = mproc__futex_wait(w, v, min64(deadline, now + slice));
		if (r == -ETIMEDOUT) {
			r = lw_take_if_dead(w, v, tid);
			if (r)
				return r;
			if (slice < LIVENESS_SLICE_MAX_NS)
				slice *= 2;
		}
		/* 0 (woken or changed), -EINTR, or a slice ended: look again. */
	}
}

/* deadline 0 = no wait at all. */
static inline int lw_lock(uint32_t *w, uint32_t tid, int64_t deadline)
{
	uint32_t v = 0;

	if (__builtin_expect(CAS(w, &v, tid), 1))
		return 0;
	return lw_lock_slow(w, tid, deadline);
}

/* Returns the old word (0 if it was free). */
static inline uint32_t lw_unlock(uint32_t *w)
{
	uint32_t old = __atomic_exchange_n(w, 0, __ATOMIC_SEQ_CST);

	if (__builtin_expect(old & LW_WAITERS, 0))
		mproc__futex_wake(w, 1);
	return old;
}

/* Lock with an API timeout: 0 = try (-EAGAIN), else -ETIMEDOUT at the deadline. */
static int lw_acquire(uint32_t *w, double timeout_s)
{
	uint32_t tid = self_tid(), v = 0;
	int64_t deadline;
	int r;

	if (__builtin_expect(CAS(w, &v, tid), 1))
		return 0;
	if (timeout_s == 0) {
		r = lw_lock_slow(w, tid, 0);
		return r == -ETIMEDOUT ? -EAGAIN : r;
	}
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	return lw_lock_slow(w, tid, deadline);
}

/* ---- semaphore core ------------------------------------------------------------------- */

static inline bool sc_trydown(struct sem_core *s)
{
	uint32_t v = __atomic_load_n(&s->value, __ATOMIC_RELAXED);

	while (v > 0) {
		if (CAS(&s->value, &v, v - 1))
			return true;
	}
	return false;
}

/* 0, or -ETIMEDOUT at the deadline (0 = do not wait). */
static int sc_down(struct sem_core *s, int64_t deadline)
{
	int r;

	if (sc_trydown(s))
		return 0;
	if (deadline == 0)
		return -ETIMEDOUT;
	for (;;) {
		FETCH_ADD(&s->waiters, 1);
		if (sc_trydown(s)) {
			FETCH_SUB(&s->waiters, 1);
			return 0;
		}
		r = mproc__futex_wait(&s->value, 0, deadline);
		FETCH_SUB(&s->waiters, 1);
		if (sc_trydown(s))
			return 0;
		if (r == -ETIMEDOUT)
			return -ETIMEDOUT;
	}
}

/* 0, or -EOVERFLOW when the value is already max (nothing changes). */
static int sc_up(struct sem_core *s, uint32_t max)
{
	uint32_t v = __atomic_load_n(&s->value, __ATOMIC_RELAXED);

	do {
		if (v >= max)
			return -EOVERFLOW;
	} while (!CAS(&s->value, &v, v + 1));
	if (LOAD(&s->waiters) > 0)
		mproc__futex_wake(&s->value, 1);
	return 0;
}

/* ---- object lifecycle ----------------------------------------------------------------- */

static void *obj_map(void)
{
	void *p = mmap(NULL, MPROC_SYNC_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int obj_check_mem(const void *mem, size_t size)
{
	if (!mem || size < MPROC_SYNC_SIZE || ((uintptr_t)mem % MPROC_SYNC_ALIGN) != 0)
		return -EINVAL;
	return 0;
}

/* Fields are set; publish the header last so _at never sees a half-made object. */
static void obj_publish(void *mem, enum sync_kind kind, uint16_t flags)
{
	struct sync_hdr *h = mem;

	h->kind = (uint16_t)kind;
	h->flags = flags;
	__atomic_store_n(&h->magic, SYNC_MAGIC, __ATOMIC_RELEASE);
}

static int obj_at(void *mem, enum sync_kind kind)
{
	const struct sync_hdr *h = mem;

	if (obj_check_mem(mem, MPROC_SYNC_SIZE) < 0)
		return -EINVAL;
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != SYNC_MAGIC || h->kind != kind)
		return -EINVAL;
	return 0;
}

static void obj_free(void *mem)
{
	const struct sync_hdr *h = mem;

	if (mem && (h->flags & SYNC_MAPPED))
		munmap(mem, MPROC_SYNC_SIZE);
}

/*
 * Objects without parameters: _new maps, _init_at zeroes and publishes. `setup` (may be NULL)
 * fills the fields of a zeroed object.
 */
#define SYNC_SIMPLE_LIFECYCLE(name, KIND)                                                    \
	int mproc_##name##_new(struct mproc_##name **out)                                     \
	{                                                                                     \
		void *p;                                                                      \
		if (!out)                                                                     \
			return -EINVAL;                                                       \
		p = obj_map();                                                                \
		if (!p)                                                                       \
			return -ENOMEM;                                                       \
		obj_publish(p, KIND, SYNC_MAPPED);                                            \
		*out = p;                                                                     \
		return 0;                                                                     \
	}                                                                                     \
	int mproc_##name##_init_at(void *mem, size_t size, struct mproc_##name **out)         \
	{                                                                                     \
		if (!out || obj_check_mem(mem, size) < 0)                                     \
			return -EINVAL;                                                       \
		memset(mem, 0, MPROC_SYNC_SIZE);                                              \
		obj_publish(mem, KIND, 0);                                                    \
		*out = mem;                                                                   \
		return 0;                                                                     \
	}

#define SYNC_AT_FREE(name, KIND)                                                             \
	int mproc_##name##_at(void *mem, struct mproc_##name **out)                           \
	{                                                                                     \
		if (!out || obj_at(mem, KIND) < 0)                                            \
			return -EINVAL;                                                       \
		*out = mem;                                                                   \
		return 0;                                                                     \
	}                                                                                     \
	void mproc_##name##_free(struct mproc_##name *o)                                      \
	{                                                                                     \
		obj_free(o);                                                                  \
	}

SYNC_SIMPLE_LIFECYCLE(lock, KIND_LOCK)
SYNC_AT_FREE(lock, KIND_LOCK)
SYNC_SIMPLE_LIFECYCLE(rlock, KIND_RLOCK)
SYNC_AT_FREE(rlock, KIND_RLOCK)
SYNC_SIMPLE_LIFECYCLE(cond, KIND_COND)
SYNC_AT_FREE(cond, KIND_COND)
SYNC_SIMPLE_LIFECYCLE(event, KIND_EVENT)
SYNC_AT_FREE(event, KIND_EVENT)
SYNC_AT_FREE(sem, KIND_SEM)
SYNC_AT_FREE(barrier, KIND_BARRIER)

/* ---- Lock ----------------------------------------------------------------------------- */

int mproc_lock_acquire(struct mproc_lock *l, double timeout_s)
{
	if (!l || !timeout_valid(timeout_s))
		return -EINVAL;
	return lw_acquire(&l->word, timeout_s);
}

int mproc_lock_release(struct mproc_lock *l)
{
	if (!l)
		return -EINVAL;
	/* The exchange to 0 is harmless on a free lock, and keeps release one atomic. */
	return lw_unlock(&l->word) ? 0 : -EPERM;
}

int mproc_lock_locked(const struct mproc_lock *l)
{
	if (!l)
		return -EINVAL;
	return __atomic_load_n(&l->word, __ATOMIC_ACQUIRE) != 0;
}

/* ---- RLock ---------------------------------------------------------------------------- */

int mproc_rlock_acquire(struct mproc_rlock *l, double timeout_s)
{
	uint32_t tid;
	int r;

	if (!l || !timeout_valid(timeout_s))
		return -EINVAL;
	tid = self_tid();
	if ((__atomic_load_n(&l->word, __ATOMIC_RELAXED) & LW_TID_MASK) == tid) {
		if (l->count >= INT_MAX)
			return -EOVERFLOW;
		l->count++;
		return 0;
	}
	r = lw_acquire(&l->word, timeout_s);
	if (r == 0 || r == -EOWNERDEAD)
		l->count = 1;
	return r;
}

int mproc_rlock_release(struct mproc_rlock *l)
{
	if (!l)
		return -EINVAL;
	if ((__atomic_load_n(&l->word, __ATOMIC_RELAXED) & LW_TID_MASK) != self_tid())
		return -EPERM;
	if (--l->count > 0)
		return 0;
	lw_unlock(&l->word);
	return 0;
}

int mproc_rlock_is_owned(const struct mproc_rlock *l)
{
	if (!l)
		return -EINVAL;
	return (__atomic_load_n(&l->word, __ATOMIC_RELAXED) & LW_TID_MASK) == self_tid();
}

/* ---- Semaphore ------------------------------------------------------------------------ */

static int sem_check(unsigned value, unsigned max_value)
{
	if (value > MPROC_SEM_VALUE_MAX || max_value > MPROC_SEM_VALUE_MAX)
		return -EINVAL;
	if (max_value != 0 && value > max_value)
		return -EINVAL;
	return 0;
}

static void sem_setup(struct mproc_sem *s, unsigned value, unsigned max_value)
{
	s->c.value = value;
	s->c.waiters = 0;
	s->max = max_value ? max_value : MPROC_SEM_VALUE_MAX;
}

int mproc_sem_new(struct mproc_sem **out, unsigned value, unsigned max_value)
{
	struct mproc_sem *s;

	if (!out || sem_check(value, max_value) < 0)
		return -EINVAL;
	s = obj_map();
	if (!s)
		return -ENOMEM;
	sem_setup(s, value, max_value);
	obj_publish(s, KIND_SEM, SYNC_MAPPED);
	*out = s;
	return 0;
}

int mproc_sem_init_at(void *mem, size_t size, unsigned value, unsigned max_value,
		      struct mproc_sem **out)
{
	if (!out || obj_check_mem(mem, size) < 0 || sem_check(value, max_value) < 0)
		return -EINVAL;
	memset(mem, 0, MPROC_SYNC_SIZE);
	sem_setup(mem, value, max_value);
	obj_publish(mem, KIND_SEM, 0);
	*out = mem;
	return 0;
}

int mproc_sem_acquire(struct mproc_sem *s, double timeout_s)
{
	int64_t deadline;
	int r;

	if (!s || !timeout_valid(timeout_s))
		return -EINVAL;
	if (sc_trydown(&s->c))
		return 0;
	if (timeout_s == 0)
		return -EAGAIN;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	return sc_down(&s->c, deadline);
}

int mproc_sem_release(struct mproc_sem *s)
{
	if (!s)
		return -EINVAL;
	return sc_up(&s->c, s->max);
}

int mproc_sem_value(const struct mproc_sem *s)
{
	if (!s)
		return -EINVAL;
	return (int)__atomic_load_n(&s->c.value, __ATOMIC_RELAXED);
}

/* ---- Condition ------------------------------------------------------------------------ */

/* Whether the calling thread holds the lock word (a Condition needs its caller to). */
static bool held_by_me(uint32_t *w)
{
	return (__atomic_load_n(w, __ATOMIC_RELAXED) & LW_TID_MASK) == self_tid();
}

static int cond_wait_deadline(struct mproc_cond *c, struct mproc_lock *l, int64_t deadline)
{
	int r, r2;

	sc_up(&c->sleeping, UINT32_MAX);
	lw_unlock(&l->word);
	r = sc_down(&c->wait_sem, deadline);
	/* Confirm, woken or not: the notifier counts these to know its sleepers left. */
	sc_up(&c->woken, UINT32_MAX);
	r2 = lw_lock(&l->word, self_tid(), MPROC__NO_DEADLINE);
	return r2 < 0 ? r2 : r;
}

int mproc_cond_wait(struct mproc_cond *c, struct mproc_lock *l, double timeout_s)
{
	int64_t deadline;
	int r;

	if (!c || !l)
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	if (!held_by_me(&l->word))
		return -EPERM;
	if (timeout_s == 0)
		deadline = 0;
	return cond_wait_deadline(c, l, deadline);
}

int mproc_cond_wait_for(struct mproc_cond *c, struct mproc_lock *l, int (*pred)(void *arg),
			void *arg, double timeout_s)
{
	int64_t deadline;
	int r;

	if (!c || !l || !pred)
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	if (!held_by_me(&l->word))
		return -EPERM;
	while (!pred(arg)) {
		if (deadline != MPROC__NO_DEADLINE && mproc__now_ns() >= deadline)
			return -ETIMEDOUT;
		r = cond_wait_deadline(c, l, deadline);
		if (r == -ETIMEDOUT)
			return pred(arg) ? 0 : -ETIMEDOUT;
		if (r < 0)
			return r;
	}
	return 0;
}

int mproc_cond_notify(struct mproc_cond *c, struct mproc_lock *l, int n)
{
	int sleepers = 0;

	if (!c || !l || n < 0)
		return -EINVAL;
	if (!held_by_me(&l->word))
		return -EPERM;
	/* Waiters that timed out since the last notify confirmed in `woken` without being
	 * picked: forget them. */
	while (sc_trydown(&c->woken))
		sc_trydown(&c->sleeping);
	while (sleepers < n && sc_trydown(&c->sleeping)) {
		sc_up(&c->wait_sem, UINT32_MAX);
		sleepers++;
	}
	if (sleepers) {
		/* Wait until each picked sleeper has left its wait, then drop the units of those
		 * that timed out meanwhile: a later waiter must not take a stale unit. The caller
		 * holds the lock, so no new waiter can arrive before this ends. */
		for (int i = 0; i < sleepers; i++)
			sc_down(&c->woken, MPROC__NO_DEADLINE);
		while (sc_trydown(&c->wait_sem))
			;
	}
	return sleepers;
}

int mproc_cond_notify_all(struct mproc_cond *c, struct mproc_lock *l)
{
	return mproc_cond_notify(c, l, INT_MAX);
}

/* ---- Event ---------------------------------------------------------------------------- */

int mproc_event_set(struct mproc_event *e)
{
	if (!e)
		return -EINVAL;
	STORE(&e->flag, 1);
	if (LOAD(&e->waiters) > 0)
		mproc__futex_wake(&e->flag, INT_MAX);
	return 0;
}

int mproc_event_clear(struct mproc_event *e)
{
	if (!e)
		return -EINVAL;
	STORE(&e->flag, 0);
	return 0;
}

int mproc_event_is_set(const struct mproc_event *e)
{
	if (!e)
		return -EINVAL;
	return __atomic_load_n(&e->flag, __ATOMIC_ACQUIRE) != 0;
}

int mproc_event_wait(struct mproc_event *e, double timeout_s)
{
	int64_t deadline;
	int r;

	if (!e || !timeout_valid(timeout_s))
		return -EINVAL;
	if (__atomic_load_n(&e->flag, __ATOMIC_ACQUIRE))
		return 0;
	if (timeout_s == 0)
		return -ETIMEDOUT;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	for (;;) {
		FETCH_ADD(&e->waiters, 1);
		if (LOAD(&e->flag)) {
			FETCH_SUB(&e->waiters, 1);
			return 0;
		}
		r = mproc__futex_wait(&e->flag, 0, deadline);
		FETCH_SUB(&e->waiters, 1);
		if (LOAD(&e->flag))
			return 0;
		if (r == -ETIMEDOUT)
			return -ETIMEDOUT;
	}
}

/* ---- Barrier -------------------------------------------------------------------------- */

static void barrier_setup(struct mproc_barrier *b, unsigned parties)
{
	b->parties = parties;
}

int mproc_barrier_new(struct mproc_barrier **out, unsigned parties)
{
	struct mproc_barrier *b;

	if (!out || parties == 0 || parties > INT_MAX)
		return -EINVAL;
	b = obj_map();
	if (!b)
		return -ENOMEM;
	barrier_setup(b, parties);
	obj_publish(b, KIND_BARRIER, SYNC_MAPPED);
	*out = b;
	return 0;
}

int mproc_barrier_init_at(void *mem, size_t size, unsigned parties, struct mproc_barrier **out)
{
	if (!out || obj_check_mem(mem, size) < 0 || parties == 0 || parties > INT_MAX)
		return -EINVAL;
	memset(mem, 0, MPROC_SYNC_SIZE);
	barrier_setup(mem, parties);
	obj_publish(mem, KIND_BARRIER, 0);
	*out = mem;
	return 0;
}

static inline uint64_t pass_bit(uint32_t seq)
{
	return UINT64_C(1) << (seq % 64);
}

/* With b->lock held: end the current pass as broken and wake its waiters (after unlock). */
static void barrier_break_locked(struct mproc_barrier *b)
{
	uint32_t seq = b->seq;

	b->broken = 1;
	b->count = 0;
	__atomic_fetch_or(&b->outcome, pass_bit(seq), __ATOMIC_SEQ_CST);
	STORE(&b->seq, seq + 1);
}

static void barrier_lock(struct mproc_barrier *b)
{
	/* A process killed inside this short section leaves consistent enough state: take the
	 * lock over (-EOWNERDEAD) and go on. */
	(void)lw_lock(&b->lock, self_tid(), MPROC__NO_DEADLINE);
}

static void barrier_unlock_wake(struct mproc_barrier *b, bool wake)
{
	lw_unlock(&b->lock);
	if (wake)
		mproc__futex_wake(&b->seq, INT_MAX);
}

int mproc_barrier_wait(struct mproc_barrier *b, double timeout_s)
{
	int64_t deadline;
	uint32_t g, s;
	int idx, r;

	if (!b)
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	barrier_lock(b);
	if (b->broken) {
		barrier_unlock_wake(b, false);
		return -EPIPE;
	}
	idx = (int)b->count++;
	g = b->seq;
	if (b->count == b->parties) {
		b->count = 0;
		__atomic_fetch_and(&b->outcome, ~pass_bit(g), __ATOMIC_SEQ_CST);
		STORE(&b->seq, g + 1);
		barrier_unlock_wake(b, true);
		return idx;
	}
	barrier_unlock_wake(b, false);
	for (;;) {
		r = mproc__futex_wait(&b->seq, g, deadline);
		s = LOAD(&b->seq);
		if (s != g)
			return (LOAD(&b->outcome) & pass_bit(g)) ? -EPIPE : idx;
		if (r == -ETIMEDOUT) {
			barrier_lock(b);
			if (b->seq == g) {
				barrier_break_locked(b);
				barrier_unlock_wake(b, true);
				return -ETIMEDOUT;
			}
			barrier_unlock_wake(b, false);
		}
	}
}

int mproc_barrier_abort(struct mproc_barrier *b)
{
	bool wake = false;

	if (!b)
		return -EINVAL;
	barrier_lock(b);
	if (!b->broken) {
		barrier_break_locked(b);
		wake = true;
	}
	barrier_unlock_wake(b, wake);
	return 0;
}

int mproc_barrier_reset(struct mproc_barrier *b)
{
	bool wake = false;

	if (!b)
		return -EINVAL;
	barrier_lock(b);
	if (!b->broken && b->count > 0) {
		barrier_break_locked(b);
		wake = true;
	}
	b->broken = 0;
	barrier_unlock_wake(b, wake);
	return 0;
}

int mproc_barrier_n_waiting(const struct mproc_barrier *b)
{
	if (!b)
		return -EINVAL;
	return (int)__atomic_load_n(&b->count, __ATOMIC_RELAXED);
}

int mproc_barrier_broken(const struct mproc_barrier *b)
{
	if (!b)
		return -EINVAL;
	return __atomic_load_n(&b->broken, __ATOMIC_RELAXED) != 0;
}

int mproc_barrier_parties(const struct mproc_barrier *b)
{
	if (!b)
		return -EINVAL;
	return (int)b->parties;
}
