/*
 * bench_shm.c - shared state: a shared counter updated by N processes (under the Value's
 * Lock, with an atomic add, or with a plain racy increment), and the cost of creating,
 * attaching and first touching regions of each kind.
 *
 *   shm/value/<lock|atomic|none>/procs:<N>   updates_per_second (none: lost_updates too);
 *	real_time is the time of one update (a round of per * N updates is a batch of that many
 *	iterations); first_touch's is one region of N MiB, create's and attach's one call.
 *   shm/create/<anon|memfd|named>/bytes:<N>  create + destroy; p50_ns, p99_ns, p999_ns
 *   shm/attach/<memfd|named>/bytes:<N>       attach + detach of an existing region
 *   shm/first_touch/<anon|memfd|named>/mib:<N>   writing one byte per page of a new region
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "mproc.h"

enum value_mode { MODE_LOCK, MODE_ATOMIC, MODE_NONE };
static const char *const mode_names[] = { "lock", "atomic", "none" };

static const enum mproc_shm_kind kinds[] = { MPROC_SHM_ANON, MPROC_SHM_MEMFD, MPROC_SHM_NAMED };
static const char *const kind_names[] = { "anon", "memfd", "named" };

/* ---- shm/value ------------------------------------------------------------------------ */

/* Shared between the harness and its workers (one page, fields a cache line apart). */
struct value_shared {
	struct bench_gate gate;
	char pad0[64 - sizeof(struct bench_gate)];
	int64_t start_ns[256];  /* per worker: after the gate ... */
	int64_t end_ns[256];    /* ... and after its last update */
};

struct value_worker {
	struct mproc_value *v;
	struct value_shared *sh;
	enum value_mode mode;
	int64_t updates;
	uint32_t parties;
	int idx;
};

static int value_worker_run(void *p)
{
	struct value_worker *w = p;
	struct mproc_lock *l = mproc_value_lock(w->v);
	volatile int64_t *x = mproc_value_ptr(w->v);

	bench_gate_wait(&w->sh->gate, w->parties);
	w->sh->start_ns[w->idx] = bench_now_ns();
	switch (w->mode) {
	case MODE_LOCK:
		for (int64_t i = 0; i < w->updates; i++) {
			if (mproc_lock_acquire(l, MPROC_FOREVER) < 0)
				return 1;
			*x = *x + 1;
			mproc_lock_release(l);
		}
		break;
	case MODE_ATOMIC:
		for (int64_t i = 0; i < w->updates; i++)
			mproc_value_add(w->v, 1, NULL);
		break;
	case MODE_NONE:
		for (int64_t i = 0; i < w->updates; i++)
			*x = *x + 1;
		break;
	}
	w->sh->end_ns[w->idx] = bench_now_ns();
	return 0;
}

static void bm_value(struct gbench_state *st, void *arg)
{
	enum value_mode mode = (enum value_mode)(intptr_t)arg;
	int procs = (int)gbench_arg(st, 0);
	int64_t total = gbench_current_profile() == GBENCH_SMOKE ? 100000 :
			mode == MODE_LOCK ? 1000000 : 4000000;
	int64_t per = total / procs, updates = 0, lost = 0, runs = 0;
	const struct mproc_topo *topo = bench_topo();
	struct value_shared *sh;
	struct mproc_value *v = NULL;
	double secs = 0;
	int pus[256], npu = 0;

	if (procs < 1 || procs > 256) {
		gbench_skip_with_error(st, "procs out of range");
		return;
	}
	if (topo)
		npu = mproc_topo_pu_order(topo, MPROC_TOPO_PHYSICAL_FIRST, pus, 256);
	sh = bench_shared_alloc(sizeof(*sh));
	if (!sh || mproc_value_new(&v, MPROC_INT64, MPROC_SHM_LOCK) < 0) {
		gbench_skip_with_error(st, "cannot allocate shared memory");
		goto out;
	}
	/* One update is one iteration (real_time per update, whatever the profile's total). */
	while (gbench_keep_running_batch(st, per * procs)) {
		struct value_worker w = { .v = v, .sh = sh, .mode = mode, .updates = per,
					  .parties = (uint32_t)procs };
		pid_t pid[256];
		int64_t t0 = INT64_MAX, t1 = 0, got;
		int bad = 0;

		mproc_value_store(v, 0);
		bench_gate_init(&sh->gate);
		for (int i = 0; i < procs; i++) {
			w.idx = i;
			pid[i] = bench_fork(npu > 0 ? pus[i % npu] : -1, value_worker_run, &w);
			if (pid[i] < 0) {
				for (int j = 0; j < i; j++)
					bench_reap(pid[j], true);
				gbench_skip_with_error(st, "fork failed");
				goto out;
			}
		}
		for (int i = 0; i < procs; i++)
			bad |= bench_reap(pid[i], false) != 0;
		if (bad) {
			gbench_skip_with_error(st, "a worker failed");
			goto out;
		}
		for (int i = 0; i < procs; i++) {
			if (sh->start_ns[i] < t0)
				t0 = sh->start_ns[i];
			if (sh->end_ns[i] > t1)
				t1 = sh->end_ns[i];
		}
		mproc_value_load(v, &got);
		/* A locked or atomic counter that lost an update is a broken primitive. */
		if (mode != MODE_NONE && got != per * procs) {
			gbench_skip_with_error(st, "counter lost updates under lock/atomic");
			goto out;
		}
		lost += per * procs - got;
		updates += per * procs;
		runs++;
		secs += (double)(t1 - t0) / 1e9;
		gbench_set_iteration_time(st, (double)(t1 - t0) / 1e9);
	}
	if (secs > 0)
		gbench_counter(st, "updates_per_second", (double)updates / secs, GBENCH_DEFAULT);
	if (mode == MODE_NONE && runs > 0)
		gbench_counter(st, "lost_updates", (double)lost / (double)runs, GBENCH_DEFAULT);
out:
	mproc_value_free(v);
	if (sh)
		bench_shared_free(sh, sizeof(*sh));
}

/* ---- shm/create, shm/attach, shm/first_touch ------------------------------------------ */

static int new_region(struct mproc_shm **s, enum mproc_shm_kind kind, size_t bytes)
{
	struct mproc_shm_opts o = { .kind = kind };

	return mproc_shm_new(s, bytes, &o);
}

static void skip_errno(struct gbench_state *st, const char *what, int r)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "%s: %s", what, mproc_strerror(r));
	gbench_skip_with_error(st, msg);
}

static void bm_create(struct gbench_state *st, void *arg)
{
	enum mproc_shm_kind kind = (enum mproc_shm_kind)(intptr_t)arg;
	size_t bytes = (size_t)gbench_arg(st, 0);
	struct bench_samples s;

	if (bench_samples_init(&s, 1 << 20) < 0) {
		gbench_skip_with_error(st, "no memory for samples");
		return;
	}
	while (gbench_keep_running(st)) {
		struct mproc_shm *r;
		int64_t t0 = bench_now_ns(), t1;
		int e = new_region(&r, kind, bytes);

		if (e < 0) {
			skip_errno(st, "create", e);
			break;
		}
		mproc_shm_free(r);
		t1 = bench_now_ns();
		bench_samples_add(&s, t1 - t0);
		gbench_set_iteration_time(st, (double)(t1 - t0) / 1e9);
	}
	if (!gbench_error_occurred(st))
		bench_samples_report(st, &s);
	bench_samples_free(&s);
}

static void bm_attach(struct gbench_state *st, void *arg)
{
	enum mproc_shm_kind kind = (enum mproc_shm_kind)(intptr_t)arg;
	size_t bytes = (size_t)gbench_arg(st, 0);
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *owner = NULL;
	struct bench_samples s;
	int e;

	if (bench_samples_init(&s, 1 << 20) < 0) {
		gbench_skip_with_error(st, "no memory for samples");
		return;
	}
	e = new_region(&owner, kind, bytes);
	if (e < 0) {
		skip_errno(st, "create", e);
		goto out;
	}
	o.name = mproc_shm_name(owner);
	while (gbench_keep_running(st)) {
		struct mproc_shm *r;
		int64_t t0 = bench_now_ns(), t1;

		e = kind == MPROC_SHM_NAMED ? mproc_shm_attach(&r, 0, &o) :
					      mproc_shm_attach_fd(&r, mproc_shm_fd(owner), 0);
		if (e < 0) {
			skip_errno(st, "attach", e);
			break;
		}
		mproc_shm_free(r);
		t1 = bench_now_ns();
		bench_samples_add(&s, t1 - t0);
		gbench_set_iteration_time(st, (double)(t1 - t0) / 1e9);
	}
	if (!gbench_error_occurred(st))
		bench_samples_report(st, &s);
out:
	mproc_shm_free(owner);
	bench_samples_free(&s);
}

static void bm_first_touch(struct gbench_state *st, void *arg)
{
	enum mproc_shm_kind kind = (enum mproc_shm_kind)(intptr_t)arg;
	size_t bytes = (size_t)gbench_arg(st, 0) << 20;
	long page = sysconf(_SC_PAGESIZE);
	double secs = 0;
	int64_t touched = 0;

	while (gbench_keep_running(st)) {
		struct mproc_shm *r;
		volatile char *p;
		int64_t t0, t1;
		int e = new_region(&r, kind, bytes);

		if (e < 0) {
			skip_errno(st, "create", e);
			break;
		}
		p = mproc_shm_addr(r);
		t0 = bench_now_ns();
		for (size_t off = 0; off < bytes; off += (size_t)page)
			p[off] = 1;
		t1 = bench_now_ns();
		if (p[0] != 1 || p[(bytes - 1) / (size_t)page * (size_t)page] != 1) {
			mproc_shm_free(r);
			gbench_skip_with_error(st, "first touch did not stick");
			break;
		}
		mproc_shm_free(r);
		touched += (int64_t)bytes;
		secs += (double)(t1 - t0) / 1e9;
		gbench_set_iteration_time(st, (double)(t1 - t0) / 1e9);
	}
	if (secs > 0)
		gbench_counter(st, "bytes_per_second", (double)touched / secs, GBENCH_DEFAULT);
}

/* ---- registration --------------------------------------------------------------------- */

static void register_all(void)
{
	enum gbench_profile prof = gbench_current_profile();
	int budget = bench_budget();
	static const int64_t sizes[] = { 4096, 1 << 20, 64 << 20 };
	static const int64_t mibs[] = { 1, 64 };
	size_t nsizes = prof == GBENCH_SMOKE ? 1 : 3, nmibs = prof == GBENCH_SMOKE ? 1 : 2;
	char name[128];

	for (int m = 0; m < 3; m++) {
		snprintf(name, sizeof(name), "shm/value/%s", mode_names[m]);
		struct gbench *b = gbench_register(name, bm_value, (void *)(intptr_t)m);

		GBENCH_ARG_NAMES(b, "procs");
		gbench_use_manual_time(b);
		for (int n = 1; n <= budget; n++) {
			/* smoke: 1 process; quick: 1, 2 and the budget; full: every count. */
			if (prof == GBENCH_SMOKE && n > 1)
				break;
			if (prof == GBENCH_QUICK && n != 1 && n != 2 && n != budget)
				continue;
			GBENCH_ARGS(b, n);
		}
	}
	for (size_t k = 0; k < 3; k++) {
		struct gbench *b;

		snprintf(name, sizeof(name), "shm/create/%s", kind_names[k]);
		b = gbench_register(name, bm_create, (void *)(intptr_t)kinds[k]);
		GBENCH_ARG_NAMES(b, "bytes");
		gbench_use_manual_time(b);
		for (size_t i = 0; i < nsizes; i++)
			GBENCH_ARGS(b, sizes[i]);

		if (kinds[k] != MPROC_SHM_ANON) {       /* anonymous memory has no attach */
			snprintf(name, sizeof(name), "shm/attach/%s", kind_names[k]);
			b = gbench_register(name, bm_attach, (void *)(intptr_t)kinds[k]);
			GBENCH_ARG_NAMES(b, "bytes");
			gbench_use_manual_time(b);
			for (size_t i = 0; i < nsizes; i++)
				GBENCH_ARGS(b, sizes[i]);
		}

		snprintf(name, sizeof(name), "shm/first_touch/%s", kind_names[k]);
		b = gbench_register(name, bm_first_touch, (void *)(intptr_t)kinds[k]);
		GBENCH_ARG_NAMES(b, "mib");
		gbench_use_manual_time(b);
		for (size_t i = 0; i < nmibs; i++)
			GBENCH_ARGS(b, mibs[i]);
	}
}

int main(int argc, char **argv)
{
	return bench_main(argc, argv, register_all);
}
