/*
 * queue_ring_internal.h - the ring back end's shared layout and its keeper's fast paths, inline
 * (queue_ring.c has the protocol's full description, the slow paths and the rest).
 *
 * mproc_queue_put and mproc_queue_get (queue.c) call mproc__ring_put_fast/mproc__ring_get_fast
 * inline, so that a one-producer/one-consumer ring's put or get is one function with no call of
 * its own: on a round trip between two cores every instruction between seeing the other side's
 * record and publishing ours is on the critical path, and a put that must push callee-saved
 * registers and return through two frames queues stack stores behind the record's (ring_steps
 * and perf annotate measured both).
 */
#ifndef MPROC_QUEUE_RING_INTERNAL_H
#define MPROC_QUEUE_RING_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define MPROC_HAVE_RSEQ 1
#endif
#endif
#ifndef MPROC_HAVE_RSEQ
#define MPROC_HAVE_RSEQ 0
#endif

#include "internal.h"
#include "queue_internal.h"

#define RING_REC_HDR 8u
#define RING_SPIN_HOT 512u      /* checks before the first PAUSE (about 0.5 us) */
#define RING_SPIN_KEPT 64u      /* a keeper's checks inside its get, PAUSE between (not SPIN) */
/* A spin-only keeper whose producer runs on another CPU checks this often inside its get (a
 * PAUSE between: about 100 us here) before it leaves for ring_wait's clock reads and yields. */
#define RING_SPIN_FAR (1u << 12)
#define RING_SPIN_FAR_RECHECK 1024u     /* ... looking again where the producer runs this often */

#define PACK(cnt, pos) (((uint64_t)(pos) << 32) | (uint32_t)(cnt))
#define CNT(s) ((uint32_t)(s))
#define POS(s) ((uint32_t)((s) >> 32))

/*
 * One side (producers or consumers): its lock word and what the single-owner fast path needs,
 * on one cache line that only that side writes while one thread runs it.
 */
struct ring_side {
	_Atomic uint32_t lock;          /* mproc__qlock word; tid | STICKY: kept by that thread */
	_Atomic uint32_t busy;          /* the keeper's tid while it is inside an operation */
	_Atomic uint32_t key;           /* the keeper's per-thread key (a recycled tid is not it) */
	uint32_t last;                  /* tid of the last holder (under the lock) */
	uint32_t streak;                /* its operations in a row (under the lock) */
};

struct ring_shared {
	/* Producer side: written by producers under plock. */
	_Alignas(MPROC__CACHELINE) struct ring_side ps;
	uint64_t cons_cache;            /* producers' last view of cons */
	_Alignas(MPROC__CACHELINE) _Atomic uint64_t prod;     /* {puts, wpos} */
	/* Consumer side. */
	_Alignas(MPROC__CACHELINE) struct ring_side cs;
	_Alignas(MPROC__CACHELINE) _Atomic uint64_t cons;     /* {gets, rpos} */
	/* Read-mostly: the CPU each side's keeper last ran on, plus 1 (0: unknown), [0] the
	 * producers', [1] the consumers'; stored only when it changed. */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t cpu[2];
	/* Read-mostly "someone sleeps" flags: set by sleepers, cleared by the waker. */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t cons_waiters;
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t prod_waiters;
	_Atomic uint32_t prod_want;     /* free bytes that sleeping producers want (max) */
	_Alignas(MPROC__CACHELINE) unsigned char data[];
};

struct ring {
	struct ring_shared *sh;
	int fd;                         /* memfd of sh */
	size_t map_bytes;
	uint32_t cap, mask;
	uint32_t maxsize;               /* 0 = count unlimited */
	bool may_keep;                  /* a side's only user may keep its lock (not NOSPIN) */
	bool spin_only;                 /* MPROC_QUEUE_SPIN */
	_Atomic int64_t spin_ns;        /* this process's adaptive spin budget */
};

/* The 8-byte header at pos (never wraps: positions and storage are multiples of 8). */
static inline _Atomic uint64_t *mproc__ring_hdr_at(struct ring *r, uint32_t pos)
{
	return (_Atomic uint64_t *)(void *)(r->sh->data + (pos & r->mask));
}

#define HDR(len, seq) (((uint64_t)(seq) << 32) | (uint32_t)(len))
#define HLEN(h) ((uint32_t)(h))
#define HSEQ(h) ((uint32_t)((h) >> 32))

#define STICKY MPROC__QLOCK_STICKY

/* This thread's keeper key (queue_ring.c my_key) and the tid it was made for: what tells a keeper
 * from a later thread that got a dead keeper's tid. 0 until the thread's first slow-path call. */
extern __thread uint32_t mproc__ring_t_key __attribute__((tls_model("initial-exec")));
extern __thread uint32_t mproc__ring_t_key_tid __attribute__((tls_model("initial-exec")));

/*
 * Is the thread me this side's keeper? Then mark it busy and say yes. The keeper's entry is a
 * store (busy) and a load (the word again) with only a compiler barrier between them: the
 * revoker's membarrier supplies the hardware half (see side_lock_slow).
 */
static inline bool mproc__ring_enter_kept(struct ring_side *sd, uint32_t me, uint32_t key)
{
	if (atomic_load_explicit(&sd->lock, memory_order_relaxed) != (me | STICKY) ||
	    atomic_load_explicit(&sd->key, memory_order_relaxed) != key)
		return false;
	atomic_store_explicit(&sd->busy, me, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&sd->lock, memory_order_relaxed) == (me | STICKY))
		return true;
	atomic_store_explicit(&sd->busy, 0, memory_order_release);
	return false;
}

/* Up to 64 bytes with two overlapping moves (or three single bytes) inline: for the small items
 * that latency and item rates are about, a memcpy call costs more than the copy. Never writes
 * outside [d, d + len). */
#define COPY_SMALL_MAX 64u
static inline void mproc__ring_copy_small(unsigned char *d, const unsigned char *s, size_t len)
{
	if (len > 32) {
		memcpy(d, s, 32);
		memcpy(d + len - 32, s + len - 32, 32);
	} else if (len > 16) {
		memcpy(d, s, 16);
		memcpy(d + len - 16, s + len - 16, 16);
	} else if (len >= 8) {
		memcpy(d, s, 8);
		memcpy(d + len - 8, s + len - 8, 8);
	} else if (len >= 4) {
		memcpy(d, s, 4);
		memcpy(d + len - 4, s + len - 4, 4);
	} else if (len) {
		d[0] = s[0];
		d[len / 2] = s[len / 2];
		d[len - 1] = s[len - 1];
	}
}

/*
 * A producer asks for the lines it will write RING_PREFETCH_AHEAD bytes from now while it
 * writes this record (PREFETCHW on x86: the line comes in writable). A ring deeper than the
 * caches (a lap ago the consumer read those lines) would otherwise make each new line a
 * write-allocate miss that fills the store buffer and stalls the producer: at 64-byte items
 * that miss, not the copy, was most of a put (perf annotate of bench_queue). Only where the
 * ring is free that far ahead by our view of the consumers (else the line may still hold a
 * record being read, and taking it would slow the consumer).
 */
#define RING_PREFETCH_AHEAD 1024u
static inline void mproc__ring_prefetch_w(struct ring *r, uint32_t pos)
{
	const unsigned char *p = r->sh->data + (pos & r->mask);

#if defined(__x86_64__) || defined(__i386__)
	/* gcc emits PREFETCHW only with -mprfchw; the instruction is a NOP where unsupported. */
	__asm__ volatile("prefetchw %0" : : "m"(*p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/*
 * The CPU this thread runs on, plus 1, or 0 where unknown: the kernel keeps it in the thread's
 * rseq area, which glibc (2.35 and later) registers, so reading it is one load (sched_getcpu
 * took 26 ns here: a vDSO getcpu under a hypervisor). A hint only: the thread may move at once.
 */
static inline uint32_t mproc__ring_cpu_now(void)
{
#if MPROC_HAVE_RSEQ
	if (__rseq_size >= 8) {
		/* The kernel writes cpu_id (a plain __u32) behind our back: a relaxed atomic
		 * load, with the builtin since the field is not _Atomic. */
		int32_t c = (int32_t)__atomic_load_n(
			&((struct rseq *)(void *)((char *)__builtin_thread_pointer() +
						   __rseq_offset))->cpu_id, __ATOMIC_RELAXED);

		return c >= 0 ? (uint32_t)c + 1 : 0;
	}
#endif
	return 0;
}

/* A keeper publishes where it runs (side 0 producers, 1 consumers), in a read-mostly line. */
static inline void mproc__ring_publish_cpu(struct ring_shared *s, int side)
{
	uint32_t c = mproc__ring_cpu_now();

	if (atomic_load_explicit(&s->cpu[side], memory_order_relaxed) != c)
		atomic_store_explicit(&s->cpu[side], c, memory_order_relaxed);
}

/* Does the other side run somewhere else (as far as we know)? Then waiting for it by spinning
 * costs it nothing; on our CPU (or unknown) it needs the CPU we would spin on. */
static inline bool mproc__ring_peer_far(struct ring_shared *s, int side)
{
	uint32_t me = atomic_load_explicit(&s->cpu[side], memory_order_relaxed);
	uint32_t other = atomic_load_explicit(&s->cpu[!side], memory_order_relaxed);

	return me && other && me != other;
}

/*
 * A keeper's consumer waits for its next record right here, inside its operation (busy still
 * set), for a bounded number of checks and only when the caller would wait anyway (deadline
 * not 0): the record is then copied as soon as its line arrives, with no way out through the
 * slow path and back in between (on the critical path of every round trip). Every
 * RING_SPIN_EVERY checks it looks at its lock word (its own cache line: no transfer), so a
 * revoker that took the word (and waits for busy to clear) gets the side within that many
 * PAUSEs (about 2 us here): the keeper leaves through the slow path.
 *
 * A PAUSE between checks, in spin-only mode too. Checking back to back looks faster (a PAUSE
 * is 27 ns here, AMD Zen 3 under KVM, added between the record's arrival and its check) but
 * measured slower: latency/ring_spin 1.44 against 1.31 times the cache-line floor (16 paired
 * rounds, issue 18). A tight loop keeps many loads of the record's line in flight while the
 * producer claims it; writing payload and header with one 16-byte store did not help the tight
 * loop, so it is not (only) the line lost between the producer's two stores. No PMU here to
 * say more.
 */
#define RING_SPIN_EVERY 64u
static inline uint64_t mproc__ring_keeper_spin(struct ring *r, struct ring_side *sd, uint32_t me,
						_Atomic uint64_t *hp, uint32_t seq, uint64_t h)
{
	unsigned i = 0, n = RING_SPIN_KEPT;

	if (r->spin_only) {
		if (!mproc__ring_peer_far(r->sh, 1))
			return h;       /* the producer needs our CPU: yield to it (ring_wait) */
		n = RING_SPIN_FAR;
	}
	while (HSEQ(h) != seq) {
		if (++i % RING_SPIN_EVERY == 0 &&
		    (i >= n ||
		     atomic_load_explicit(&sd->lock, memory_order_relaxed) != (me | STICKY) ||
		     (r->spin_only && i % RING_SPIN_FAR_RECHECK == 0 &&
		      !mproc__ring_peer_far(r->sh, 1))))
			break;
		mproc__cpu_relax();
		h = atomic_load_explicit(hp, memory_order_acquire);
	}
	return h;
}

/* The wake-ups that end a keeper's put or get, out of line (queue_ring.c): tail calls, so the
 * fast paths make no call of their own and need no registers saved. */
int mproc__ring_put_wake(struct ring_shared *s);
ssize_t mproc__ring_get_wake(struct ring *r, struct ring_shared *s, uint32_t rpos, ssize_t n);

/* The slow paths (queue_ring.c): everything the fast paths do not serve, with the lock when the
 * side is not kept, waiting until deadline (0 and MPROC__FIRST_TRY: no wait). */
int mproc__ring_put_slow(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline);
ssize_t mproc__ring_get_slow(struct mproc_queue *q, void *buf, size_t cap, int64_t deadline);

/* What the fast paths return when they could not serve the call (never a length or an errno):
 * RING_SLOW_OTHER, not this thread's to do fast (not the keeper, a large or wrapping item, a
 * full ring); RING_SLOW_EMPTY, the keeper's consumer found no record, having spun if allowed. */
#define MPROC__RING_SLOW_OTHER ((ssize_t)INT32_MIN)
#define MPROC__RING_SLOW_EMPTY ((ssize_t)INT32_MIN + 1)

/*
 * The keeper's whole put, inline: an item of at most COPY_SMALL_MAX bytes that fits without
 * wrapping. 0, or MPROC__RING_SLOW_OTHER (nothing done: the caller takes the slow path, which
 * serves everything else, and a thread whose tid or key is not cached yet). Same steps and
 * orders as ring_put_slow, minus the lock.
 */
static inline int mproc__ring_put_fast(struct ring *r, const void *buf, size_t len)
{
	struct ring_shared *s = r->sh;
	uint32_t me = mproc__t_tid;
	uint32_t need = RING_REC_HDR + (uint32_t)((len + 7) & ~(size_t)7);
	uint64_t prod, cons;

	/* mproc__ring_t_key_tid is 0 until my_key ran, and a thread with no cached tid (me 0)
	 * is no keeper: it fails mproc__ring_enter_kept. */
	if (!r->may_keep || mproc__ring_t_key_tid != me || len > COPY_SMALL_MAX ||
	    !mproc__ring_enter_kept(&s->ps, me, mproc__ring_t_key))
		return (int)MPROC__RING_SLOW_OTHER;
	prod = atomic_load_explicit(&s->prod, memory_order_relaxed);
	cons = s->cons_cache;
	if ((uint32_t)(POS(prod) - POS(cons)) + need > r->cap ||
	    (r->maxsize && (uint32_t)(CNT(prod) - CNT(cons)) >= r->maxsize) ||
	    r->cap - ((POS(prod) + RING_REC_HDR) & r->mask) < len) {
		atomic_store_explicit(&s->ps.busy, 0, memory_order_release);
		return (int)MPROC__RING_SLOW_OTHER;     /* full, or wraps */
	}
	mproc__ring_copy_small(s->data + ((POS(prod) + RING_REC_HDR) & r->mask), buf, len);
	atomic_store_explicit(mproc__ring_hdr_at(r, POS(prod)), HDR(len, CNT(prod) + 1),
			      memory_order_release);
	atomic_store_explicit(&s->prod, PACK(CNT(prod) + 1, POS(prod) + need),
			      memory_order_release);
	/* What does not make the record: after it, so that it is off the round trip's critical
	 * path (from the get that saw the last record to this header's store). */
	if ((uint32_t)(POS(prod) - POS(cons)) + need + RING_PREFETCH_AHEAD <= r->cap) {
		mproc__ring_prefetch_w(r, POS(prod) + RING_PREFETCH_AHEAD);
		mproc__ring_prefetch_w(r, POS(prod) + RING_PREFETCH_AHEAD + need - 1);
	}
	mproc__ring_publish_cpu(s, 0);
	/* Leave (a keeper clears busy: release, so a revoker that reads 0 sees our stores), then
	 * the check for sleeping consumers: after our stores for the compiler; the hardware half
	 * is the sleeper's membarrier (ring_wait). */
	atomic_store_explicit(&s->ps.busy, 0, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&s->cons_waiters, memory_order_relaxed))
		return mproc__ring_put_wake(s);
	return 0;
}

/*
 * The keeper's whole get, inline: a ready record of at most COPY_SMALL_MAX bytes that does not
 * wrap. may_wait: the caller would wait (its timeout is not 0), so the keeper may spin for its
 * record first (mproc__ring_keeper_spin). Its length, or MPROC__RING_SLOW_EMPTY (kept, nothing
 * ready) or MPROC__RING_SLOW_OTHER (nothing done).
 */
static inline ssize_t mproc__ring_get_fast(struct ring *r, void *buf, size_t cap, bool may_wait)
{
	struct ring_shared *s = r->sh;
	uint32_t me = mproc__t_tid;
	_Atomic uint64_t *hp;
	uint64_t cons, h;
	uint32_t need;

	if (!r->may_keep || mproc__ring_t_key_tid != me ||
	    !mproc__ring_enter_kept(&s->cs, me, mproc__ring_t_key))
		return MPROC__RING_SLOW_OTHER;
	cons = atomic_load_explicit(&s->cons, memory_order_relaxed);
	hp = mproc__ring_hdr_at(r, POS(cons));
	h = atomic_load_explicit(hp, memory_order_acquire);
	/* The consumer says where it runs before it waits, and now and then besides (producers
	 * that wait for room read it): not on every get, whose tail is on the critical path. */
	if (HSEQ(h) != CNT(cons) + 1 || CNT(cons) % 64 == 0)
		mproc__ring_publish_cpu(s, 1);
	if (HSEQ(h) != CNT(cons) + 1 && may_wait)
		h = mproc__ring_keeper_spin(r, &s->cs, me, hp, CNT(cons) + 1, h);
	if (HSEQ(h) != CNT(cons) + 1 || HLEN(h) > cap || HLEN(h) > COPY_SMALL_MAX ||
	    r->cap - ((POS(cons) + RING_REC_HDR) & r->mask) < HLEN(h)) {
		atomic_store_explicit(&s->cs.busy, 0, memory_order_release);
		/* waits, says -EMSGSIZE, or copies a large or wrapping record */
		return HSEQ(h) != CNT(cons) + 1 ? MPROC__RING_SLOW_EMPTY : MPROC__RING_SLOW_OTHER;
	}
	mproc__ring_copy_small(buf, s->data + ((POS(cons) + RING_REC_HDR) & r->mask), HLEN(h));
	need = RING_REC_HDR + ((HLEN(h) + 7) & ~7u);
	atomic_store_explicit(&s->cons, PACK(CNT(cons) + 1, POS(cons) + need),
			      memory_order_release);
	atomic_store_explicit(&s->cs.busy, 0, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&s->prod_waiters, memory_order_relaxed))
		return mproc__ring_get_wake(r, s, POS(cons) + need, (ssize_t)HLEN(h));
	return (ssize_t)HLEN(h);
}

#endif
