/*
 * bench_sync.c - round trips through the process-shared sync primitives, between two
 * processes pinned at a placement (compare with baseline/futex_rtt at the same placement),
 * and the time of one Barrier pass among N processes.
 *
 *   latency/lock_handoff/placement:<same_core|cross_core>  two Locks used as batons: the
 *       harness releases "ping" (the peer is blocked acquiring it), then blocks acquiring
 *       "pong" until the peer releases it: two hand-offs of a held lock to a waiter.
 *   latency/semaphore/placement:<...>   the same with two Semaphores (release / acquire)
 *   latency/event/placement:<...>       the same with two Events (set / wait / clear)
 *   latency/barrier/procs:<N>           one pass of a Barrier(N); N from 2 to the budget
 * Counters p50_ns, p99_ns, p999_ns from one sample per round trip (or pass).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "mproc.h"

enum prim { PRIM_LOCK, PRIM_SEM, PRIM_EVENT };
static const char *const prim_names[] = { "lock_handoff", "semaphore", "event" };

/* Everything both sides touch lives in one shared page, objects a cache line apart. */
struct pp_shared {
	_Alignas(64) unsigned char obj[2][64];  /* ping, pong */
	_Alignas(64) uint32_t stop;
};

struct pp {
	enum prim prim;
	struct pp_shared *sh;
	struct mproc_lock *l[2];
	struct mproc_sem *s[2];
	struct mproc_event *e[2];
};

/* Give baton i to the other side / wait for baton i. */
static int pp_give(struct pp *p, int i)
{
	switch (p->prim) {
	case PRIM_LOCK:
		return mproc_lock_release(p->l[i]);
	case PRIM_SEM:
		return mproc_sem_release(p->s[i]);
	case PRIM_EVENT:
		return mproc_event_set(p->e[i]);
	}
	return -EINVAL;
}

static int pp_take(struct pp *p, int i)
{
	int r;

	switch (p->prim) {
	case PRIM_LOCK:
		return mproc_lock_acquire(p->l[i], MPROC_FOREVER);
	case PRIM_SEM:
		return mproc_sem_acquire(p->s[i], MPROC_FOREVER);
	case PRIM_EVENT:
		/* Cleared before the answer is given, so the next set is never lost. */
		r = mproc_event_wait(p->e[i], MPROC_FOREVER);
		return r < 0 ? r : mproc_event_clear(p->e[i]);
	}
	return -EINVAL;
}

static int pp_init(struct pp *p)
{
	for (int i = 0; i < 2; i++) {
		void *mem = p->sh->obj[i];
		int r;

		switch (p->prim) {
		case PRIM_LOCK:
			/* Both batons start held by the harness; any process may release a Lock. */
			r = mproc_lock_init_at(mem, 64, &p->l[i]);
			if (r == 0)
				r = mproc_lock_acquire(p->l[i], 0);
			break;
		case PRIM_SEM:
			r = mproc_sem_init_at(mem, 64, 0, 0, &p->s[i]);
			break;
		case PRIM_EVENT:
			r = mproc_event_init_at(mem, 64, &p->e[i]);
			break;
		default:
			r = -EINVAL;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int pp_peer(void *arg)
{
	struct pp *p = arg;

	for (;;) {
		if (pp_take(p, 0) < 0)
			return 1;
		if (__atomic_load_n(&p->sh->stop, __ATOMIC_ACQUIRE))
			return 0;
		if (pp_give(p, 1) < 0)
			return 1;
	}
}

static void bm_pingpong(struct gbench_state *st, void *arg)
{
	enum prim prim = (enum prim)((intptr_t)arg >> 4);
	enum mproc_topo_placement place = (enum mproc_topo_placement)((intptr_t)arg & 15);
	struct pp p = { .prim = prim };
	struct bench_samples s = { 0 };
	cpu_set_t saved;
	int a, b, r;
	pid_t peer = -1;

	r = bench_pair(place, &a, &b);
	if (r < 0) {
		gbench_skip_with_error(st, r == -ENODEV ? "one usable core: no cross-core pair" :
					   "no placement for this pair");
		return;
	}
	p.sh = bench_shared_alloc(sizeof(*p.sh));
	if (!p.sh || bench_samples_init(&s, 1 << 21) < 0 || pp_init(&p) < 0) {
		gbench_skip_with_error(st, "setup failed");
		goto out;
	}
	peer = bench_fork(b, pp_peer, &p);
	if (peer < 0) {
		gbench_skip_with_error(st, "fork failed");
		goto out;
	}
	sched_getaffinity(0, sizeof(saved), &saved);
	mproc_topo_pin(0, a);
	/* Warm up: both sides running, caches and futex hash warm. */
	for (int i = 0; i < 100; i++) {
		pp_give(&p, 0);
		pp_take(&p, 1);
	}
	while (gbench_keep_running(st)) {
		int64_t t0 = bench_now_ns(), t1;

		pp_give(&p, 0);
		if (pp_take(&p, 1) < 0) {
			gbench_skip_with_error(st, "the peer failed");
			break;
		}
		t1 = bench_now_ns();
		bench_samples_add(&s, t1 - t0);
		gbench_set_iteration_time(st, (double)(t1 - t0) / 1e9);
	}
	__atomic_store_n(&p.sh->stop, 1, __ATOMIC_RELEASE);
	pp_give(&p, 0);
	if (bench_reap(peer, false) != 0 && !gbench_error_occurred(st))
		gbench_skip_with_error(st, "the peer failed");
	sched_setaffinity(0, sizeof(saved), &saved);    /* as it was, with or without hwloc */
	if (!gbench_error_occurred(st))
		bench_samples_report(st, &s);
out:
	bench_samples_free(&s);
	if (p.sh)
		bench_shared_free(p.sh, sizeof(*p.sh));
}

/* ---- latency/barrier ------------------------------------------------------------------ */

struct bar_shared {
	_Alignas(64) unsigned char obj[64];
	_Alignas(64) uint32_t stop;
};

struct bar_arg {
	struct mproc_barrier *b;
	struct bar_shared *sh;
};

static int bar_peer(void *arg)
{
	struct bar_arg *ba = arg;

	/* The harness ends with stop + abort: a peer in a wait, or arriving later, gets -EPIPE. */
	for (;;) {
		if (mproc_barrier_wait(ba->b, MPROC_FOREVER) < 0)
			return __atomic_load_n(&ba->sh->stop, __ATOMIC_ACQUIRE) ? 0 : 1;
	}
}

static void bm_barrier(struct gbench_state *st, void *arg)
{
	int procs = (int)gbench_arg(st, 0), npu = 0, pus[256];
	const struct mproc_topo *topo = bench_topo();
	struct bench_samples s = { 0 };
	struct bar_arg ba = { 0 };
	cpu_set_t saved;
	pid_t pid[256];
	int started = 0, bad = 0;

	if (procs < 2 || procs > 256) {
		gbench_skip_with_error(st, "procs out of range");
		return;
	}
	if (topo)
		npu = mproc_topo_pu_order(topo, MPROC_TOPO_PHYSICAL_FIRST, pus, 256);
	ba.sh = bench_shared_alloc(sizeof(*ba.sh));
	if (!ba.sh || bench_samples_init(&s, 1 << 21) < 0 ||
	    mproc_barrier_init_at(ba.sh->obj, 64, (unsigned)procs, &ba.b) < 0) {
		gbench_skip_with_error(st, "setup failed");
		goto out;
	}
	for (started = 0; started < procs - 1; started++) {
		pid[started] = bench_fork(npu > 0 ? pus[(started + 1) % npu] : -1, bar_peer, &ba);
		if (pid[started] < 0) {
			gbench_skip_with_error(st, "fork failed");
			__atomic_store_n(&ba.sh->stop, 1, __ATOMIC_RELEASE);
			mproc_barrier_abort(ba.b);
			goto out_reap;
		}
	}
	sched_getaffinity(0, sizeof(saved), &saved);
	if (npu > 0)
		mproc_topo_pin(0, pus[0]);
	for (int i = 0; i < 100; i++)
		mproc_barrier_wait(ba.b, MPROC_FOREVER);
	while (gbench_keep_running(st)) {
		int64_t t0 = bench_now_ns(), t1;

		if (mproc_barrier_wait(ba.b, 10.0) < 0) {
			gbench_skip_with_error(st, "barrier broken");
			break;
		}
		t1 = bench_now_ns();
		bench_samples_add(&s, t1 - t0);
		gbench_set_iteration_time(st, (double)(t1 - t0) / 1e9);
	}
	__atomic_store_n(&ba.sh->stop, 1, __ATOMIC_RELEASE);
	mproc_barrier_abort(ba.b);
	sched_setaffinity(0, sizeof(saved), &saved);
out_reap:
	for (int i = 0; i < started; i++)
		bad |= bench_reap(pid[i], false) != 0;
	if (bad && !gbench_error_occurred(st))
		gbench_skip_with_error(st, "a peer failed");
	if (!gbench_error_occurred(st))
		bench_samples_report(st, &s);
out:
	bench_samples_free(&s);
	if (ba.sh)
		bench_shared_free(ba.sh, sizeof(*ba.sh));
}

static void register_all(void)
{
	enum gbench_profile prof = gbench_current_profile();
	int budget = bench_budget();
	char name[128];
	struct gbench *b;

	static const enum mproc_topo_placement places[] = { MPROC_TOPO_SAME_CORE,
							     MPROC_TOPO_CROSS_CORE };

	/* The placement is a word in the name (ArgNames would print a number): one family per
	 * primitive and placement, the two packed into the argument pointer. */
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 2; j++) {
			snprintf(name, sizeof(name), "latency/%s/placement:%s", prim_names[i],
				 mproc_topo_placement_name(places[j]));
			b = gbench_register(name, bm_pingpong,
					    (void *)(intptr_t)(i << 4 | (int)places[j]));
			gbench_use_manual_time(b);
		}
	}
	b = gbench_register("latency/barrier", bm_barrier, NULL);
	GBENCH_ARG_NAMES(b, "procs");
	gbench_use_manual_time(b);
	for (int n = 2; n <= (budget < 2 ? 2 : budget); n++) {
		if (prof == GBENCH_SMOKE && n > 2)
			break;
		if (prof == GBENCH_QUICK && n != 2 && n != budget)
			continue;
		GBENCH_ARGS(b, n);
	}
}

int main(int argc, char **argv)
{
	return bench_main(argc, argv, register_all);
}
