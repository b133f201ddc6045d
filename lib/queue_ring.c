/*
 * queue_ring.c - the ring back end: a bounded ring of variable-size records in anonymous
 * MAP_SHARED memory (inherited across fork, no /dev/shm needed).
 *
 * Records are [u32 len][u32 0][payload, padded to 8 bytes]; the payload may wrap around the
 * end of the storage (two copies). Producers serialize on one robust lock, consumers on
 * another (mproc__qlock: one atomic to take, one to release, a dead owner is detected), so
 * one producer and one consumer never contend on a lock.
 *
 * Robustness. Each side publishes its progress with ONE 64-bit atomic store that packs the
 * item count (low half, also the futex word) with the byte position (high half): producers
 * {puts, wpos}, consumers {gets, rpos}. Positions run modulo 2^32 (storage is at most 1 GiB,
 * so differences stay exact). A producer killed while copying has published nothing, so the
 * next producer (which sees -EOWNERDEAD) simply writes over the partial record: no torn record
 * can ever be seen. A consumer killed while copying has not advanced, so the next consumer
 * reads the same record again. Nothing needs repair, so -EOWNERDEAD is just cleared.
 *
 * Waiting. A waiter spins for a short, adaptive time (grows when spinning paid off, shrinks
 * when it did not; per process), then sleeps on the other side's futex word after raising a
 * "sleeping" flag; the other side wakes (everybody) only when it finds the flag set, and
 * clears it (store/re-check against store/check, both ordered, so no wake-up is lost). MPROC_QUEUE_SPIN never sleeps (it calls
 * sched_yield() every 128 spins, so a peer on the same CPU gets to run);
 * MPROC_QUEUE_NOSPIN sleeps at once. Each side caches the other side's state under its lock
 * and reloads it only when the cache says full/empty, so the hot path touches one remote
 * cache line per item at most.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "queue_internal.h"

#define RING_MIN_BYTES ((size_t)1 << 20)
#define RING_MAX_BYTES ((size_t)1 << 30)
#define RING_REC_HDR 8u
#define RING_SLICE_NS (100 * INT64_C(1000000))
#define RING_SPIN_MIN_NS 1000
#define RING_SPIN_MAX_NS 100000
#define RING_SPIN_START_NS 20000

#define PACK(cnt, pos) (((uint64_t)(pos) << 32) | (uint32_t)(cnt))
#define CNT(s) ((uint32_t)(s))
#define POS(s) ((uint32_t)((s) >> 32))

struct ring_shared {
	/* Producer side: written by producers under plock. */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t plock;
	uint64_t cons_cache;            /* producers' last view of cons */
	_Alignas(MPROC__CACHELINE) _Atomic uint64_t prod;     /* {puts, wpos} */
	/* Consumer side. */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t clock;
	uint64_t prod_cache;            /* consumers' last view of prod */
	_Alignas(MPROC__CACHELINE) _Atomic uint64_t cons;     /* {gets, rpos} */
	/* Read-mostly "someone sleeps" flags: set by sleepers, cleared by the waker. */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t cons_waiters;
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t prod_waiters;
	_Alignas(MPROC__CACHELINE) unsigned char data[];
};

struct ring {
	struct ring_shared *sh;
	size_t map_bytes;
	uint32_t cap, mask;
	uint32_t maxsize;               /* 0 = count unlimited */
	_Atomic int64_t spin_ns;        /* this process's adaptive spin budget */
};

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
	q->be = r;
	r->map_bytes = sizeof(struct ring_shared) + want;
	p = mmap(NULL, r->map_bytes, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->sh = p;
	r->cap = (uint32_t)want;
	r->mask = r->cap - 1;
	r->maxsize = (uint32_t)q->maxsize;
	atomic_init(&r->spin_ns, RING_SPIN_START_NS);
	return 0;
}

static void ring_fini(struct mproc_queue *q, bool creator)
{
	struct ring *r = q->be;

	if (!r)
		return;
	if (r->sh)
		munmap(r->sh, r->map_bytes);
	free(r);
	q->be = NULL;
}

/*
 * Wait until the low half of *state is no longer seen: spin (adaptive), then sleep.
 * Returns 0 (re-check) or -ETIMEDOUT.
 */
static int ring_wait(struct mproc_queue *q, struct ring *r, _Atomic uint64_t *state,
		     _Atomic uint32_t *waiters, uint32_t seen, int64_t deadline)
{
	int64_t start, now, until, budget;
	int rr = 0;

	if (deadline <= 0)
		return -ETIMEDOUT;      /* a first try: the front end comes back with a deadline */
	if (!(q->flags & MPROC_QUEUE_NOSPIN)) {
		budget = (q->flags & MPROC_QUEUE_SPIN) ? INT64_MAX : atomic_load_explicit(
			&r->spin_ns, memory_order_relaxed);
		start = mproc__now_ns();
		for (unsigned i = 1;; i++) {
			if (CNT(atomic_load_explicit(state, memory_order_acquire)) != seen) {
				if (budget < RING_SPIN_MAX_NS)
					atomic_store_explicit(&r->spin_ns, budget + budget / 4 + 100,
							      memory_order_relaxed);
				return 0;
			}
			mproc__cpu_relax();
			/* Spin-only mode yields now and then: a waiter that shares its CPU with
			 * the other side (same_core) would otherwise burn a whole time slice. */
			if ((i & 127) == 0 && budget == INT64_MAX)
				sched_yield();
			if ((i & 63) == 0) {
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
	until = deadline - now > RING_SLICE_NS ? now + RING_SLICE_NS : deadline;
	/* Raise the flag, then re-check (seq_cst on both): a waker either sees the flag or we
	 * see its new state. The waker clears the flag as it wakes everybody, so a burst of
	 * puts costs one FUTEX_WAKE per sleep, not one per put while the sleeper is still
	 * on its way back to a CPU. */
	atomic_store(waiters, 1);
	if (CNT(atomic_load(state)) == seen)
		rr = mproc__futex_wait(futex_word(state), seen, until);
	if (rr == -ETIMEDOUT && until == deadline)
		return -ETIMEDOUT;
	return 0;
}

static void copy_in(struct ring *r, uint32_t pos, const void *src, size_t len)
{
	uint32_t off = pos & r->mask;
	size_t first = r->cap - off;

	if (len <= first) {
		memcpy(r->sh->data + off, src, len);
	} else {
		memcpy(r->sh->data + off, src, first);
		memcpy(r->sh->data, (const char *)src + first, len - first);
	}
}

static void copy_out(struct ring *r, uint32_t pos, void *dst, size_t len)
{
	uint32_t off = pos & r->mask;
	size_t first = r->cap - off;

	if (len <= first) {
		memcpy(dst, r->sh->data + off, len);
	} else {
		memcpy(dst, r->sh->data + off, first);
		memcpy((char *)dst + first, r->sh->data, len - first);
	}
}

static int ring_put(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline)
{
	struct ring *r = q->be;
	struct ring_shared *s = r->sh;
	uint32_t need = RING_REC_HDR + (uint32_t)((len + 7) & ~(size_t)7);
	uint32_t hdr[2] = { (uint32_t)len, 0 };
	uint64_t prod, cons;
	int rc;

	for (;;) {
		rc = mproc__qlock(&s->plock, deadline);
		if (rc < 0 && rc != -EOWNERDEAD)
			return rc;
		/* After -EOWNERDEAD nothing to repair: see the file comment. */
		prod = atomic_load_explicit(&s->prod, memory_order_relaxed);
		cons = s->cons_cache;
		if ((uint32_t)(POS(prod) - POS(cons)) + need > r->cap ||
		    (r->maxsize && (uint32_t)(CNT(prod) - CNT(cons)) >= r->maxsize)) {
			cons = atomic_load_explicit(&s->cons, memory_order_acquire);
			s->cons_cache = cons;
		}
		if ((uint32_t)(POS(prod) - POS(cons)) + need <= r->cap &&
		    (!r->maxsize || (uint32_t)(CNT(prod) - CNT(cons)) < r->maxsize))
			break;
		mproc__qunlock(&s->plock);
		rc = ring_wait(q, r, &s->cons, &s->prod_waiters, CNT(cons), deadline);
		if (rc < 0)
			return rc;
	}
	copy_in(r, POS(prod), hdr, sizeof(hdr));
	copy_in(r, POS(prod) + RING_REC_HDR, buf, len);
	/* The release store publishes the record's bytes with the count: consumers that see the
	 * new count see the whole record. The unlock's atomic exchange (a full barrier on x86
	 * and ARMv8) then orders that store before our load of cons_waiters, the other half of
	 * the waiter's "raise count, re-check" (no lost wake-up) without a second fence. */
	atomic_store_explicit(&s->prod, PACK(CNT(prod) + 1, POS(prod) + need),
			      memory_order_release);
	mproc__qunlock(&s->plock);
	if (atomic_load(&s->cons_waiters) && atomic_exchange(&s->cons_waiters, 0))
		mproc__futex_wake(futex_word(&s->prod), INT_MAX);
	return 0;
}

static ssize_t ring_get(struct mproc_queue *q, void *buf, size_t cap, int64_t deadline)
{
	struct ring *r = q->be;
	struct ring_shared *s = r->sh;
	uint64_t prod, cons;
	uint32_t hdr[2], need;
	int rc;

	for (;;) {
		rc = mproc__qlock(&s->clock, deadline);
		if (rc < 0 && rc != -EOWNERDEAD)
			return rc;
		cons = atomic_load_explicit(&s->cons, memory_order_relaxed);
		prod = s->prod_cache;
		if (CNT(prod) == CNT(cons)) {
			prod = atomic_load_explicit(&s->prod, memory_order_acquire);
			s->prod_cache = prod;
		}
		if (CNT(prod) != CNT(cons))
			break;
		mproc__qunlock(&s->clock);
		rc = ring_wait(q, r, &s->prod, &s->cons_waiters, CNT(prod), deadline);
		if (rc < 0)
			return rc;
	}
	copy_out(r, POS(cons), hdr, sizeof(hdr));
	if (hdr[0] > cap) {
		mproc__qunlock(&s->clock);
		return -EMSGSIZE;       /* the item stays */
	}
	copy_out(r, POS(cons) + RING_REC_HDR, buf, hdr[0]);
	need = RING_REC_HDR + ((hdr[0] + 7) & ~7u);
	atomic_store_explicit(&s->cons, PACK(CNT(cons) + 1, POS(cons) + need),
			      memory_order_release);
	mproc__qunlock(&s->clock);      /* orders the store before the waiter check (put) */
	if (atomic_load(&s->prod_waiters) && atomic_exchange(&s->prod_waiters, 0))
		mproc__futex_wake(futex_word(&s->cons), INT_MAX);
	return (ssize_t)hdr[0];
}

static ssize_t ring_qsize(struct mproc_queue *q)
{
	struct ring *r = q->be;
	uint64_t cons = atomic_load(&r->sh->cons);
	uint64_t prod = atomic_load(&r->sh->prod);

	return (ssize_t)(uint32_t)(CNT(prod) - CNT(cons));
}

const struct mproc__queue_ops mproc__queue_ring_ops = {
	.name = "ring",
	.init = ring_init,
	.fini = ring_fini,
	.put = ring_put,
	.get = ring_get,
	.qsize = ring_qsize,
	.try_first = true,
};
