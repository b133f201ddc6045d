/*
 * queue_ring.c - the ring back end: a bounded ring of variable-size records in MAP_SHARED
 * memory of a memfd (inherited across fork, mapped again by mproc_queue_attach after exec, no
 * /dev/shm needed).
 *
 * Records are [u32 len][u32 seq][payload, padded to 8 bytes]; the payload may wrap around
 * the end of the storage (two copies). Producers serialize on one robust lock, consumers on
 * another (mproc__qlock: one atomic to take, one to release, a dead owner is detected), so
 * one producer and one consumer never contend on a lock.
 *
 * One user per side (issue 18). A thread that has run a side's last STICKY_STREAK (128)
 * operations with nobody else between keeps that side's lock between calls (the word holds
 * its tid | MPROC__QLOCK_STICKY) and then puts (gets) with no atomic read-modify-write at all:
 * it stores its tid in the side's busy word, re-checks the lock word (a compiler barrier
 * between, no fence), does the operation, and clears busy with a release store. Another
 * thread that wants the side revokes the keeper: it CASes the word to a plain lock held by
 * itself, calls membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (the keeper's half of the fence,
 * run by the kernel on the keeper's CPU: after it, a keeper that passed its re-check has its
 * busy store visible, and one that had not sees the new word and takes the slow path), then
 * waits until busy is 0. A keeper SIGKILLed anywhere is a lock holder that died: its word (or
 * its busy word) names a dead tid, the next thread takes over with -EOWNERDEAD and repairs as
 * below. A per-thread key beside the word keeps a new thread that got a dead keeper's tid from
 * taking its place unnoticed. So a 1-producer/1-consumer queue moves only its record lines
 * between the two CPUs, plus the progress words when a side must look at the other's; a side
 * shared by several users costs one membarrier when a keeper is revoked, at most once per
 * 128 operations. Processes where membarrier is unavailable, and MPROC_QUEUE_NOSPIN queues
 * (which sleep anyway, and would pay a membarrier per sleep), never keep a lock.
 *
 * Publishing. A producer copies the payload, then stores the 8-byte header with release
 * order: seq = item number + 1 (never 0, so zeroed storage is never a record; a stale header
 * from an earlier lap carries an older number). A consumer knows which item number it expects
 * at its read position, so it finds a record ready by reading the header alone: the record
 * and its readiness share a cache line, and the hot path of a consumer never reads the
 * producers' state (one cache-line transfer per small item, not two). The producer then also
 * publishes {puts, wpos} (below) for qsize, for its peers and as the consumers' futex word.
 *
 * Robustness. Each side keeps its progress in ONE 64-bit word that packs the item count (low
 * half, also the futex word) with the byte position (high half): producers {puts, wpos},
 * consumers {gets, rpos}. Positions run modulo 2^32 (storage is at most 1 GiB). A producer
 * killed before its header store has published nothing: the next producer (-EOWNERDEAD)
 * writes over the partial record, no torn record can be seen. One killed between the header
 * store and the {puts, wpos} store has committed the record (consumers may already have it):
 * the next producer finds a header with the expected number at wpos and advances past it
 * first. A consumer killed while copying has not advanced, so the next consumer reads the same
 * record again.
 *
 * Waiting. A keeper's consumer first waits inside its get, its busy word still set
 * (queue_ring_internal.h, mproc__ring_keeper_spin): a few PAUSEd checks, or with
 * MPROC_QUEUE_SPIN about a hundred microseconds of them while the producer runs on another CPU,
 * so that the record is copied as soon as its line arrives. Then, and for everybody else, a
 * waiter spins for a short, adaptive time (grows when spinning paid off, shrinks when it did
 * not; per process; MPROC_QUEUE_SPIN: the first 512 checks back to back, then with a PAUSE
 * each), consumers on the header they expect, producers on the consumers' word, then sleeps on
 * the other side's futex word after raising a "sleeping" flag; the other side wakes
 * (everybody) only when it finds the flag set, and clears it (store/re-check against
 * store/check, both ordered, so no wake-up is lost: by the other side's unlock exchange, or
 * when that side is kept, by the sleeper's membarrier).
 * MPROC_QUEUE_SPIN never sleeps. Where the other side runs is known from the CPU each keeper
 * publishes (rseq's cpu_id, in a read-mostly line, stored only when it changed; a producer
 * after its record, a consumer before it waits and every 64th get): while it
 * shares the waiter's CPU (or nobody knows), the waiter yields on every check, so that it gets
 * to run; elsewhere the waiter spins and yields only now and then. MPROC_QUEUE_NOSPIN sleeps
 * at once. Producers cache the consumers' word under their lock and reload it only when the
 * cache says full; a producer PREFETCHWs the lines a KiB ahead where the ring is free.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "queue_internal.h"
#include "queue_ring_internal.h"

#define RING_MIN_BYTES ((size_t)1 << 20)
#define RING_MAX_BYTES ((size_t)1 << 30)
#define RING_SLICE_NS (100 * INT64_C(1000000))
#define RING_WANT_SLICE_NS (10 * INT64_C(1000000))
#define RING_SPIN_MIN_NS 1000
#define RING_SPIN_MAX_NS 100000
#define RING_SPIN_START_NS 20000



/* The futex word: the low half of a packed state. */
static inline uint32_t *futex_word(_Atomic uint64_t *s)
{
	return (uint32_t *)s + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
}

static size_t round_pow2(size_t v)
{
	size_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static int ring_init(struct mproc_queue *q, const struct mproc_queue_opts *o)
{
	struct ring *r;
	size_t want, rec;
	void *p;

	if (!q->max_msg)
		q->max_msg = MPROC__QUEUE_DEFAULT_MSG;
	rec = RING_REC_HDR + ((q->max_msg + 7) & ~(size_t)7);
	want = o->ring_bytes;
	if (!want) {
		want = 4 * rec;
		if (want < RING_MIN_BYTES)
			want = RING_MIN_BYTES;
	}
	want = round_pow2(want);
	if (want > RING_MAX_BYTES || want < rec)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	q->be = r;
	r->map_bytes = sizeof(struct ring_shared) + want;
	p = mproc__shared_alloc(r->map_bytes, &r->fd, true);
	if (!p)
		return -errno;
	r->sh = p;
	r->cap = (uint32_t)want;
	r->mask = r->cap - 1;
	r->maxsize = (uint32_t)q->maxsize;
	r->may_keep = !(q->flags & MPROC_QUEUE_NOSPIN);
	r->spin_only = q->flags & MPROC_QUEUE_SPIN;
	atomic_init(&r->spin_ns, RING_SPIN_START_NS);
	return 0;
}

static void ring_fini(struct mproc_queue *q, bool creator)
{
	struct ring *r = q->be;

	if (!r)
		return;
	mproc__shared_free(r->sh, r->map_bytes, &r->fd);
	free(r);
	q->be = NULL;
}

static int ring_export(struct mproc_queue *q, struct mproc__queue_wire *w)
{
	struct ring *r = q->be;

	w->be_bytes = r->cap;
	return mproc__queue_wire_fd(w, 1, r->fd);
}

static int ring_attach(struct mproc_queue *q, const struct mproc__queue_wire *w)
{
	struct ring *r;
	int fd;

	if (w->be_bytes < RING_REC_HDR || w->be_bytes > RING_MAX_BYTES ||
	    (w->be_bytes & (w->be_bytes - 1)))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	q->be = r;
	fd = mproc__queue_wire_open(w, 1, O_RDWR);
	if (fd < 0)
		return fd;
	r->fd = fd;
	r->map_bytes = sizeof(struct ring_shared) + (size_t)w->be_bytes;
	r->sh = mproc__shared_map(r->fd, r->map_bytes);
	if (!r->sh)
		return -errno;
	r->cap = (uint32_t)w->be_bytes;
	r->mask = r->cap - 1;
	r->maxsize = (uint32_t)q->maxsize;
	r->may_keep = !(q->flags & MPROC_QUEUE_NOSPIN);
	r->spin_only = q->flags & MPROC_QUEUE_SPIN;
	atomic_init(&r->spin_ns, RING_SPIN_START_NS);
	return 0;
}


/* ---- the single-owner fast path ------------------------------------------------------------ */

#define LOCK_WAITERS 0x80000000u
#define TID_OF(v) ((v) & ~(LOCK_WAITERS | STICKY))
/* Operations in a row by one thread, under the lock, before it keeps the lock between calls. */
#define STICKY_STREAK 128u

/*
 * membarrier(2): the revoker's and the sleeper's half of an asymmetric fence. A keeper runs
 * its operations with plain loads and stores (a compiler barrier where a fence would be); a
 * thread that must see the keeper's stores in order (one taking the side over, one about to
 * sleep on the keeper's futex word) asks the kernel to run a full barrier on every CPU that runs
 * a registered process (MEMBARRIER_CMD_GLOBAL_EXPEDITED), which a keeper is. liburcu and folly's
 * asymmetric_thread_fence_heavy do the same. A process registers (once, per process: fork makes
 * a new one) before it keeps a lock; without membarrier it never keeps one.
 */
static _Atomic int64_t mb_state;       /* pid << 2 | 1 registered, | 2 unavailable */

static bool mb_register(void)
{
	int64_t me = (int64_t)getpid() << 2, st = atomic_load_explicit(&mb_state,
								       memory_order_relaxed);

	if ((st & ~INT64_C(3)) != me) {         /* not asked in this process yet (fork) */
		st = me | (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0)
			   == 0 && syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0)
			   == 0 ? 1 : 2);
		atomic_store_explicit(&mb_state, st, memory_order_relaxed);
	}
	return (st & 3) == 1;
}

static void mb_fence(void)
{
	int e = errno;

	/* GLOBAL (an RCU grace period, slower) needs no registration: the fallback. */
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) < 0)
		(void)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
	errno = e;
}

/* This thread's key: what tells a keeper from a later thread that got the dead keeper's tid. */

__thread uint32_t mproc__ring_t_key __attribute__((tls_model("initial-exec")));
__thread uint32_t mproc__ring_t_key_tid __attribute__((tls_model("initial-exec")));
#define t_key mproc__ring_t_key
#define t_key_tid mproc__ring_t_key_tid

static uint32_t my_key(uint32_t me)
{
	if (t_key_tid != me) {
		uint64_t x = (uint64_t)mproc__now_ns() * 0x9e3779b97f4a7c15ull ^ me;

		t_key = (uint32_t)(x >> 32) | 1u;       /* never 0: 0 is "no keeper" */
		t_key_tid = me;
	}
	return t_key;
}

/*
 * Wait until no keeper is inside an operation on this side (we hold the lock word now, so none
 * can start one). A keeper never waits with busy set, so this is the rest of one put or get,
 * unless it was descheduled or killed there: a dead one (or our own tid left by a dead thread
 * whose tid we got) is cleared and reported as -EOWNERDEAD, for the caller's repair.
 */
static int side_wait_busy(struct ring_side *sd, uint32_t me, int64_t deadline, int rc)
{
	for (unsigned i = 1;; i++) {
		uint32_t b = atomic_load_explicit(&sd->busy, memory_order_acquire);

		if (b == 0)
			return rc;
		if (b == me || ((i & 255) == 0 && !mproc__tid_alive((pid_t)b))) {
			if (atomic_compare_exchange_strong(&sd->busy, &b, 0))
				return -EOWNERDEAD;
			continue;
		}
		if ((i & 255) == 0) {
			if (mproc__now_ns() >= deadline) {
				mproc__qunlock(&sd->lock);
				return -ETIMEDOUT;
			}
			sched_yield();  /* the keeper may wait for our CPU */
		}
		mproc__cpu_relax();
	}
}

/*
 * Take a side's lock the slow way: revoke a keeper, or mproc__qlock (rc: what side_lock's try
 * returned, -EALREADY if it found the word kept). 0, -EOWNERDEAD (held; the caller repairs),
 * -ETIMEDOUT, -errno.
 */
static int side_lock_slow(struct ring_side *sd, uint32_t me, int64_t deadline, int rc)
{
	uint32_t v;

	while (rc == -EALREADY) {
		v = atomic_load(&sd->lock);
		if (v & STICKY) {
			/*
			 * Revoke: the word becomes a plain lock held by us, then the barrier. After
			 * it, a keeper that had passed its re-check has its busy store visible to
			 * us, and one that had not will see our word and take the slow path.
			 */
			if (!atomic_compare_exchange_strong(&sd->lock, &v, me))
				continue;
			mb_fence();
			/* Our own tid as keeper is a dead thread's (ours would have gone fast). */
			rc = TID_OF(v) == me || !mproc__tid_alive((pid_t)TID_OF(v)) ? -EOWNERDEAD : 0;
			return side_wait_busy(sd, me, deadline, rc);
		}
		rc = mproc__qlock(&sd->lock, deadline);        /* -EALREADY: kept meanwhile */
	}
	if (rc < 0 && rc != -EOWNERDEAD)
		return rc;
	if (rc == -EOWNERDEAD)
		mb_fence();     /* the dead holder may have been a revoker before its fence */
	return side_wait_busy(sd, me, deadline, rc);
}

/* The common case inline: a plain lock, free, and no keeper's operation in flight. */
static inline int side_lock(struct ring_side *sd, uint32_t me, int64_t deadline)
{
	int rc = -EALREADY;

	if (!(atomic_load_explicit(&sd->lock, memory_order_relaxed) & STICKY)) {
		rc = mproc__qlock(&sd->lock, deadline);
		if (rc == 0 && atomic_load_explicit(&sd->busy, memory_order_acquire) == 0)
			return 0;
	}
	return side_lock_slow(sd, me, deadline, rc);
}


static inline bool side_enter_kept(struct ring_side *sd, uint32_t me)
{
	return mproc__ring_enter_kept(sd, me, my_key(me));
}

/* Enter a side: as its keeper (*fast), else through side_lock. */
static inline int side_enter(struct ring *r, struct ring_side *sd, uint32_t me,
			     int64_t deadline, bool *fast)
{
	*fast = r->may_keep && side_enter_kept(sd, me);
	return *fast ? 0 : side_lock(sd, me, deadline);
}

/*
 * Leave a side. A keeper clears busy (release: the revoker that reads 0 sees our stores). A
 * lock holder counts its streak (done: a put or get that moved an item) and, after
 * STICKY_STREAK in a row with nobody else between, keeps the lock (a CAS: it fails when
 * somebody sleeps on the word, who must then be woken). Both CAS and exchange are full
 * barriers, as the waiter check after a slow-path put or get needs.
 */
static inline void side_leave(struct ring *r, struct ring_side *sd, uint32_t me, bool fast,
			      bool done)
{
	uint32_t v = me;

	if (fast) {
		atomic_store_explicit(&sd->busy, 0, memory_order_release);
		/* The waiter check that follows must not move above our stores (compiler); the
		 * hardware half is the sleeper's membarrier (ring_wait). */
		atomic_signal_fence(memory_order_seq_cst);
		return;
	}
	if (done && r->may_keep) {
		if (sd->last != me) {
			sd->last = me;
			sd->streak = 0;
		}
		if (sd->streak < STICKY_STREAK)
			sd->streak++;
	}
	if (done && r->may_keep && sd->streak >= STICKY_STREAK && mb_register()) {
		atomic_store_explicit(&sd->key, my_key(me), memory_order_relaxed);
		if (atomic_compare_exchange_strong(&sd->lock, &v, me | STICKY))
			return;
	}
	mproc__qunlock(&sd->lock);
}

/*
 * Wait for the other side: spin (adaptive) until *spin_on no longer equals spin_seen, then
 * sleep on the low half of *state (futex) until it changes. Returns 0 (re-check) or
 * -ETIMEDOUT. side: the waiter's (0 producers, 1 consumers).
 * Deadline 0 or MPROC__FIRST_TRY is the front end's first try: no wait at all.
 */
static int ring_wait(struct mproc_queue *q, struct ring *r, int side, _Atomic uint64_t *spin_on,
		     uint64_t spin_seen, _Atomic uint64_t *state, _Atomic uint32_t *waiters,
		     struct ring_side *other, int64_t deadline, int64_t slice_ns)
{
	int64_t start, now, until, budget;
	uint32_t seen;
	int rr = 0;

	if (deadline <= MPROC__FIRST_TRY)
		return -ETIMEDOUT;
	if (!(q->flags & MPROC_QUEUE_NOSPIN)) {
		budget = (q->flags & MPROC_QUEUE_SPIN) ? INT64_MAX : atomic_load_explicit(
			&r->spin_ns, memory_order_relaxed);
		/* Spin-only mode (latency) makes its first RING_SPIN_HOT checks back to back, with
		 * no PAUSE and no clock read: each costs about 30 ns here (AMD Zen 3, a VM's
		 * clock), and half a PAUSE on average is added to the moment we see the other
		 * side's store, which is often only a cache-line transfer away (70 ns across
		 * cores). Measured on this path (no keeper: a lock per operation), back to back
		 * against a PAUSE per check: latency/ring_spin 1.71 against 1.79 times the cache
		 * line (20 paired rounds, issue 18). A keeper's wait inside its get measured the
		 * other way round, so it PAUSEs (mproc__ring_keeper_spin). The default mode keeps
		 * its PAUSE: a consumer that chases its producer would otherwise pull the record
		 * line away from it between every two stores.
		 * Where the other side runs on our CPU (or we do not know where), spinning only
		 * delays it: spin-only mode then yields at once, and on every check. */
		bool far = mproc__ring_peer_far(r->sh, side);

		for (unsigned i = 0; budget == INT64_MAX && far && i < RING_SPIN_HOT; i++) {
			if (atomic_load_explicit(spin_on, memory_order_acquire) != spin_seen)
				return 0;
		}
		start = mproc__now_ns();
		for (unsigned i = 1;; i++) {
			if (atomic_load_explicit(spin_on, memory_order_acquire) != spin_seen) {
				if (budget < RING_SPIN_MAX_NS)
					atomic_store_explicit(&r->spin_ns, budget + budget / 4 + 100,
							      memory_order_relaxed);
				return 0;
			}
			/* Spin-only mode yields: on every check while the other side shares our CPU
			 * (same_core: it would otherwise wait for our time slice to end), else now
			 * and then (where it runs is a hint). */
			if (budget == INT64_MAX && (!far || (i & 8191) == 0))
				sched_yield();
			else
				mproc__cpu_relax();
			if ((i & 63) == 0) {
				if (budget == INT64_MAX)
					far = mproc__ring_peer_far(r->sh, side);
				now = mproc__now_ns();
				if (now >= deadline)
					return -ETIMEDOUT;
				if (now - start >= budget)
					break;
			}
		}
		if (budget > RING_SPIN_MIN_NS)
			atomic_store_explicit(&r->spin_ns, budget - budget / 8, memory_order_relaxed);
	}
	now = mproc__now_ns();
	if (now >= deadline)
		return -ETIMEDOUT;
	until = deadline - now > slice_ns ? now + slice_ns : deadline;
	/* Raise the flag, then re-check (seq_cst on both): a waker either sees the flag or we
	 * see its new state. The waker clears the flag as it wakes everybody, so a burst of
	 * puts costs one FUTEX_WAKE per sleep, not one per put while the sleeper is still
	 * on its way back to a CPU. */
	/* The futex word is read only here, on the way to sleep: a consumer that spins never
	 * touches the producers' line, so the producer's store to it needs no line transfer
	 * on the critical path. Read after the flag, before the final check: a put that lands
	 * after the read changes the word (futex returns at once) or sees the flag. */
	atomic_store(waiters, 1);
	/* A keeper of the other side checks the flag after its stores with no fence between
	 * (side_leave): our membarrier is that fence. Without a keeper the other side's unlock
	 * (an atomic exchange) is; a side that becomes kept after our read of its word did so
	 * with a CAS, a full barrier, so its later check sees our flag. */
	if (atomic_load(&other->lock) & STICKY)
		mb_fence();
	seen = CNT(atomic_load(state));
	if (atomic_load(spin_on) == spin_seen)
		rr = mproc__futex_wait(futex_word(state), seen, until);
	if (rr == -ETIMEDOUT && until == deadline)
		return -ETIMEDOUT;
	return 0;
}


/* Past COPY_SMALL_MAX, or wrapping around the end of the storage: memcpy, out of line. */
__attribute__((noinline))
static void copy_in_big(struct ring *r, uint32_t off, const void *src, size_t len)
{
	size_t first = r->cap - off;

	if (len <= first) {
		memcpy(r->sh->data + off, src, len);
	} else {
		memcpy(r->sh->data + off, src, first);
		memcpy(r->sh->data, (const char *)src + first, len - first);
	}
}

static inline void copy_in(struct ring *r, uint32_t pos, const void *src, size_t len)
{
	uint32_t off = pos & r->mask;

	if (len <= COPY_SMALL_MAX && len <= r->cap - off)
		mproc__ring_copy_small(r->sh->data + off, src, len);
	else
		copy_in_big(r, off, src, len);
}

__attribute__((noinline))
static void copy_out_big(struct ring *r, uint32_t off, void *dst, size_t len)
{
	size_t first = r->cap - off;

	if (len <= first) {
		memcpy(dst, r->sh->data + off, len);
	} else {
		memcpy(dst, r->sh->data + off, first);
		memcpy((char *)dst + first, r->sh->data, len - first);
	}
}

static inline void copy_out(struct ring *r, uint32_t pos, void *dst, size_t len)
{
	uint32_t off = pos & r->mask;

	if (len <= COPY_SMALL_MAX && len <= r->cap - off)
		mproc__ring_copy_small(dst, r->sh->data + off, len);
	else
		copy_out_big(r, off, dst, len);
}

/* Producers sleep (prod_waiters was set): wake them when their wish is met, the ring is
 * empty, or a count limit is what they wait for. rpos: our read position after the get. */
__attribute__((noinline))
static void ring_wake_producers(struct ring *r, struct ring_shared *s, uint32_t rpos)
{
	uint64_t prod = atomic_load(&s->prod);
	uint32_t used = POS(prod) - rpos;

	if (r->maxsize || (int32_t)used <= 0 || r->cap - used >= atomic_load(&s->prod_want)) {
		if (atomic_exchange(&s->prod_waiters, 0)) {
			atomic_store(&s->prod_want, 0);
			mproc__futex_wake(futex_word(&s->cons), INT_MAX);
		}
	}
}

__attribute__((noinline))
int mproc__ring_put_slow(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline)
{
	struct ring *r = q->be;
	struct ring_shared *s = r->sh;
	uint32_t need = RING_REC_HDR + (uint32_t)((len + 7) & ~(size_t)7);
	uint32_t me = mproc__qlock_self_fast();
	uint64_t prod, cons, h;
	bool fast;
	int rc;

	mproc__ring_publish_cpu(s, 0);
	for (;;) {
		rc = side_enter(r, &s->ps, me, deadline, &fast);
		if (rc < 0 && rc != -EOWNERDEAD)
			return rc;
		prod = atomic_load_explicit(&s->prod, memory_order_relaxed);
		if (rc == -EOWNERDEAD) {
			/* The dead producer may have committed its record (header stored) without
			 * advancing {puts, wpos}: advance past it. */
			h = atomic_load_explicit(mproc__ring_hdr_at(r, POS(prod)), memory_order_acquire);
			if (HSEQ(h) == CNT(prod) + 1) {
				prod = PACK(CNT(prod) + 1, POS(prod) + RING_REC_HDR +
					    ((HLEN(h) + 7) & ~7u));
				atomic_store_explicit(&s->prod, prod, memory_order_release);
			}
		}
		cons = s->cons_cache;
		if ((uint32_t)(POS(prod) - POS(cons)) + need > r->cap ||
		    (r->maxsize && (uint32_t)(CNT(prod) - CNT(cons)) >= r->maxsize)) {
			cons = atomic_load_explicit(&s->cons, memory_order_acquire);
			s->cons_cache = cons;
		}
		/* A consumer may be one item ahead of prod for a moment (it took a committed
		 * record before its producer advanced prod): count that as used, not free. */
		if ((int32_t)(POS(prod) - POS(cons)) >= 0 &&
		    (uint32_t)(POS(prod) - POS(cons)) + need <= r->cap &&
		    (!r->maxsize || (uint32_t)(CNT(prod) - CNT(cons)) < r->maxsize))
			break;
		side_leave(r, &s->ps, me, fast, false);
		/* Sleep until a quarter of the ring is free, not one record: a full ring would
		 * otherwise cost one wake-up (a context switch) per record. Consumers honour it;
		 * a consumer that stops early leaves us asleep for one short slice at most. */
		uint32_t want = need > r->cap / 4 ? need : r->cap / 4;
		uint32_t w = atomic_load(&s->prod_want);
		while (w < want && !atomic_compare_exchange_weak(&s->prod_want, &w, want))
			;
		rc = ring_wait(q, r, 0, &s->cons, cons, &s->cons, &s->prod_waiters, &s->cs, deadline,
			       RING_WANT_SLICE_NS);
		if (rc < 0)
			return rc;
	}
	copy_in(r, POS(prod) + RING_REC_HDR, buf, len);
	/* Commit: the release store makes the payload visible with the header. */
	atomic_store_explicit(mproc__ring_hdr_at(r, POS(prod)), HDR(len, CNT(prod) + 1), memory_order_release);
	atomic_store_explicit(&s->prod, PACK(CNT(prod) + 1, POS(prod) + need),
			      memory_order_release);
	/* Then the check for sleeping consumers, ordered after the stores above (a sleeper
	 * raises its flag, then re-checks): by the unlock's atomic exchange (a full barrier on
	 * x86 and ARMv8) or, for a keeper, by the sleeper's membarrier (ring_wait). */
	side_leave(r, &s->ps, me, fast, true);
	if (atomic_load(&s->cons_waiters) && atomic_exchange(&s->cons_waiters, 0))
		mproc__futex_wake(futex_word(&s->prod), INT_MAX);
	return 0;
}

__attribute__((noinline))
ssize_t mproc__ring_get_slow(struct mproc_queue *q, void *buf, size_t cap, int64_t deadline)
{
	struct ring *r = q->be;
	struct ring_shared *s = r->sh;
	uint32_t me = mproc__qlock_self_fast();
	uint64_t cons, h;
	uint32_t need;
	bool fast;
	int rc;

	mproc__ring_publish_cpu(s, 1);
	for (;;) {
		rc = side_enter(r, &s->cs, me, deadline, &fast);
		if (rc < 0 && rc != -EOWNERDEAD)
			return rc;
		/* After -EOWNERDEAD nothing to repair: the dead consumer had not advanced. */
		cons = atomic_load_explicit(&s->cons, memory_order_relaxed);
		h = atomic_load_explicit(mproc__ring_hdr_at(r, POS(cons)), memory_order_acquire);
		if (HSEQ(h) == CNT(cons) + 1)
			break;
		side_leave(r, &s->cs, me, fast, false);
		rc = ring_wait(q, r, 1, mproc__ring_hdr_at(r, POS(cons)), h, &s->prod,
			       &s->cons_waiters, &s->ps, deadline, RING_SLICE_NS);
		if (rc < 0)
			return rc;
	}
	if (HLEN(h) > cap) {
		side_leave(r, &s->cs, me, fast, false);
		return -EMSGSIZE;       /* the item stays */
	}
	copy_out(r, POS(cons) + RING_REC_HDR, buf, HLEN(h));
	need = RING_REC_HDR + ((HLEN(h) + 7) & ~7u);
	atomic_store_explicit(&s->cons, PACK(CNT(cons) + 1, POS(cons) + need),
			      memory_order_release);
	side_leave(r, &s->cs, me, fast, true);  /* orders the store before the waiter check */
	if (atomic_load(&s->prod_waiters))
		ring_wake_producers(r, s, POS(cons) + need);
	return (ssize_t)HLEN(h);
}



/* The wake-ups that end a keeper's put or get (queue_ring_internal.h). */
__attribute__((noinline))
int mproc__ring_put_wake(struct ring_shared *s)
{
	if (atomic_exchange(&s->cons_waiters, 0))
		mproc__futex_wake(futex_word(&s->prod), INT_MAX);
	return 0;
}

__attribute__((noinline))
ssize_t mproc__ring_get_wake(struct ring *r, struct ring_shared *s, uint32_t rpos, ssize_t n)
{
	ring_wake_producers(r, s, rpos);
	return n;
}

/*
 * put and get of the ops table (a joinable queue's, and the calls that the front end's inline
 * path passed on): the keeper's fast path, else the slow path, which serves everything else.
 */
static int ring_put(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline)
{
	int rc = mproc__ring_put_fast(q->be, buf, len);

	return rc == (int)MPROC__RING_SLOW_OTHER ? mproc__ring_put_slow(q, buf, len, deadline) : rc;
}

static ssize_t ring_get(struct mproc_queue *q, void *buf, size_t cap, int64_t deadline)
{
	ssize_t n = mproc__ring_get_fast(q->be, buf, cap, deadline != 0);

	if (n == MPROC__RING_SLOW_EMPTY && deadline <= MPROC__FIRST_TRY)
		return -ETIMEDOUT;      /* the keeper looked (and spun if it could): nothing */
	if (n == MPROC__RING_SLOW_EMPTY || n == MPROC__RING_SLOW_OTHER)
		return mproc__ring_get_slow(q, buf, cap, deadline);
	return n;
}

static ssize_t ring_qsize(struct mproc_queue *q)
{
	struct ring *r = q->be;
	uint64_t cons = atomic_load(&r->sh->cons);
	uint64_t prod = atomic_load(&r->sh->prod);
	uint64_t h = atomic_load_explicit(mproc__ring_hdr_at(r, POS(prod)), memory_order_acquire);
	uint32_t puts = CNT(prod);
	int32_t n;

	/*
	 * A record committed (its header stored) but not yet counted in {puts, wpos}: its
	 * producer is between the two stores, or was killed there and the next put will advance
	 * past it. Consumers can already take it, so it counts (a kill there made qsize say one
	 * less than a drain then got). The header at wpos can carry puts + 1 only then: a stale
	 * header from an earlier lap has an older number, and a full ring's oldest record, at the
	 * same offset, carries gets + 1 <= puts.
	 */
	if (HSEQ(h) == puts + 1)
		puts++;
	n = (int32_t)(puts - CNT(cons));
	return n > 0 ? n : 0;   /* a consumer can be one committed item ahead for a moment */
}

uint32_t mproc__ring_keeper(struct mproc_queue *q, bool consumers)
{
	struct ring *r = q->be;
	uint32_t v = atomic_load(consumers ? &r->sh->cs.lock : &r->sh->ps.lock);

	return v & STICKY ? TID_OF(v) : 0;
}

const struct mproc__queue_ops mproc__queue_ring_ops = {
	.name = "ring",
	.init = ring_init,
	.fini = ring_fini,
	.export_ = ring_export,
	.attach = ring_attach,
	.put = ring_put,
	.get = ring_get,
	.qsize = ring_qsize,
	.try_first = true,
};
