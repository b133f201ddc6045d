/*
 * bench_pool.c - how many workers, and what a task costs (issue 7). Names are read by
 * plots/mproc_results/recommend.py and must not change.
 *
 *   pool/cpu/workers:<N>/task_ms:<M>, pool/cpu_pinned/workers:<N>/task_ms:<M>
 *	A map of N * k CPU-bound tasks (chunksize 1; k = 20 for 1 ms tasks, 16 for 20 ms, twice that
 *	in full, 2 in smoke); each task runs a fixed xorshift loop
 *	calibrated once per process to ~M ms on this machine (M in {1, 20}). N from 1 to 2x the
 *	usable budget (bench_budget()). cpu_pinned pins worker i to the i-th PU of topology's
 *	physical-cores-first order. Counters: tasks_per_second; speedup (vs 1 worker of the same
 *	variant and M, measured first; the calibrated serial rate 1000/M if that was filtered
 *	out); efficiency = speedup / min(N, usable).
 *   pool/io/workers:<N>/task_ms:<M>      tasks sleep M ms (nanosleep): M = 10 (3 tasks per
 *	worker; 6 in full), and M = 20 with CPython's workload (7 tasks per worker in quick, 25 in
 *	full; N in 1, 8, 32 in quick) so that python/pool/io/workers:<N>/task_ms:20 compares.
 *	Besides efficiency: sleep_baseline_efficiency = what N plain processes (no pool, forked
 *	and gated beforehand) reach sleeping the same tasks' worth of M ms in a row, in the same
 *	repetition; efficiency_vs_sleep_baseline = the pool's rate / theirs; single_sleep_ms =
 *	the median single nanosleep(M ms) of this process. The ideal N * 1000 / M assumes sleeps
 *	of exactly M ms; these say what the kernel (timer slack, wake-up latency) delivers here.
 *   pool/io_pipe/workers:<N>/task_ms:<M> tasks block in read(2) on one pipe that a feeder
 *	process fills with N bytes every M ms (one byte per task).
 *	N in 1, 2, 4 ... 64; counters tasks_per_second, efficiency (vs the ideal N * 1000 / M).
 *   pool_overhead/<map|imap|apply_async|submit>/chunksize:<C>
 *	K no-op tasks (x -> x + 1, every result verified), min(2, usable) workers; map and imap
 *	with C in 1 ... 1000, apply_async (K apply_async, then K get) and submit (K submit,
 *	futures wait ALL, K get) with chunksize 1. Counter ns_per_task (wall time / K).
 *   pool/failure/<running|reading|writing>
 *	A worker holds a task (running it; claimed it and not yet read it; wrote a 1 MiB result
 *	and not yet published it); the harness SIGKILLs it and times until mproc_result_get
 *	returns -ECHILD. Counters p50_ns, p99_ns (p999_ns) over the trials.
 *
 * Every scaling case first runs one untimed map of as many no-op tasks through the same pool
 * (as CPython's harness does): the workers' first wake-up and first touches of the table are
 * start-up cost, not the curve's. Manual time is wall time (the work is done by child
 * processes), and one Google Benchmark iteration is ONE task (or, for pool/failure, one
 * trial): a map of n tasks is a batch of n iterations (gbench_keep_running_batch), so
 * real_time is the time per task whatever n the profile gives (compare.py and compare.md
 * then agree in direction).
 * Profiles: smoke = the smallest of each family; quick <= ~60 s on 2 cores; full = all.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "internal.h"
#include "mproc/error.h"
#include "mproc/pool.h"
#include "pool_internal.h"

enum { T_CPU, T_SLEEP, T_PIPE, T_NOOP, T_FAIL_RUN, T_FAIL_READ, T_FAIL_WRITE };

struct task {
	uint32_t kind;
	uint32_t ms;
	uint64_t arg;
};

#define FAIL_RESULT ((size_t)1 << 20)
#define IO_MAX_WORKERS 64
#define IO_PY_MS 20             /* CPython's I/O task (python/pool/io/workers:N/task_ms:20) */

struct shared {
	_Alignas(64) int pid;           /* the worker that holds the failure task */
	_Alignas(64) uint32_t next_pin;
	struct bench_gate gate;         /* the feeder starts its clock with the harness */
	_Alignas(64) int64_t bare_end;  /* sleep baseline: when the last bare sleeper ended */
};

static struct shared *g_sh;
static int g_pipe_rd = -1;
static double g_iters_per_ms;
static int g_pus[1024];
static int g_npus;

static uint64_t spin_work(uint64_t seed, uint64_t iters)
{
	uint64_t x = seed | 1;

	for (uint64_t i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static void calibrate(void)
{
	const uint64_t n = 1 << 20;
	int64_t best = INT64_MAX;
	volatile uint64_t sink;

	if (g_iters_per_ms > 0)
		return;
	for (int k = 0; k < 7; k++) {
		int64_t t0 = bench_now_ns();

		sink = spin_work((uint64_t)k + 1, n);
		t0 = bench_now_ns() - t0;
		if (t0 < best)
			best = t0;
	}
	(void)sink;
	g_iters_per_ms = (double)n / ((double)best / 1e6);
}

static void hold_and_wait(void)
{
	struct timespec ts = { 30, 0 };

	__atomic_store_n(&g_sh->pid, (int)getpid(), __ATOMIC_SEQ_CST);
	nanosleep(&ts, NULL);
}

static ssize_t task_fn(const void *t, size_t len, void *result, size_t result_max, void *arg)
{
	struct task tk;
	uint64_t v;

	if (len != sizeof(tk))
		return -EBADMSG;
	memcpy(&tk, t, sizeof(tk));
	switch (tk.kind) {
	case T_CPU:
		v = spin_work(tk.arg + 1, (uint64_t)tk.ms * (uint64_t)g_iters_per_ms);
		break;
	case T_SLEEP: {
		struct timespec ts = { tk.ms / 1000, (long)(tk.ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		v = tk.arg + 1;
		break;
	}
	case T_PIPE: {
		char c;

		if (mproc__read_all(g_pipe_rd, &c, 1, MPROC__NO_DEADLINE) != 1)
			return -EIO;
		v = tk.arg + 1;
		break;
	}
	case T_NOOP:
		v = tk.arg + 1;
		break;
	case T_FAIL_RUN:
		hold_and_wait();
		return -EIO;
	case T_FAIL_WRITE:
		memset(result, 0x5a, result_max);
		return (ssize_t)result_max;
	default:
		return 0;
	}
	memcpy(result, &v, sizeof(v));
	return sizeof(v);
}

static void fail_hook(int point, const void *t, size_t len)
{
	struct task tk;

	if (len != sizeof(tk))
		return;
	memcpy(&tk, t, sizeof(tk));
	if ((point == MPROC__POOL_HOOK_CLAIMED && tk.kind == T_FAIL_READ) ||
	    (point == MPROC__POOL_HOOK_WRITTEN && tk.kind == T_FAIL_WRITE))
		hold_and_wait();
}

static int pin_init(void *arg)
{
	uint32_t i = __atomic_fetch_add(&g_sh->next_pin, 1, __ATOMIC_SEQ_CST);

	if (g_npus > 0)
		mproc_topo_pin(0, g_pus[i % (uint32_t)g_npus]);
	return 0;
}

static int make_pool(struct mproc_pool **p, int workers, bool pinned, size_t result_max)
{
	struct mproc_pool_opts o = { .workers = workers, .fn = task_fn,
				     .task_max = sizeof(struct task), .result_max = result_max,
				     .queue_max = 16384 };

	if (pinned) {
		g_sh->next_pin = 0;
		o.initializer = pin_init;
	}
	return mproc_pool_new(p, &o);
}

static int budget(void)
{
	return bench_budget();
}

/* ------------------------------------------------------------------ scaling */

enum { V_CPU, V_CPU_PINNED, V_IO, V_IO_PIPE };

static const char *variant_name[] = { "cpu", "cpu_pinned", "io", "io_pipe" };

struct scale_case {
	int variant, workers, task_ms;
};

static double base_tps[2][2];   /* [cpu|cpu_pinned][task_ms == 20] */

struct feeder_arg {
	int wfd, burst, ms;
	long total;
};

static int feeder_main(void *arg)
{
	struct feeder_arg *f = arg;
	char buf[IO_MAX_WORKERS];
	long sent = 0;

	memset(buf, 'x', sizeof(buf));
	bench_gate_wait(&g_sh->gate, 2);
	while (sent < f->total) {
		struct timespec ts = { f->ms / 1000, (long)(f->ms % 1000) * 1000000L };
		long n = f->total - sent < f->burst ? f->total - sent : f->burst;

		/* Wait first: every byte (task) then waits M ms, as the ideal N * 1000 / M assumes. */
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		if (mproc__write_all(f->wfd, buf, (size_t)n, MPROC__NO_DEADLINE) != n)
			return 1;
		sent += n;
	}
	return 0;
}

/* ------------------------------------------------------------------ sleep baseline */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct sleeper_arg {
	int per, ms;
	uint32_t parties;
};

static int sleeper_main(void *arg)
{
	const struct sleeper_arg *a = arg;
	int64_t end, seen;

	/* Round 1 absorbs the fork stagger; a short untimed sleep warms what the pool's
	 * warm-up map warms (first timer, first faults); round 2 is the start. */
	bench_gate_wait(&g_sh->gate, a->parties);
	sleep_ms(1);
	bench_gate_wait(&g_sh->gate, a->parties);
	for (int k = 0; k < a->per; k++)
		sleep_ms(a->ms);
	end = bench_now_ns();
	seen = __atomic_load_n(&g_sh->bare_end, __ATOMIC_RELAXED);
	while (seen < end && !__atomic_compare_exchange_n(&g_sh->bare_end, &seen, end, false,
							  __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		;
	return 0;
}

/*
 * What the kernel delivers here without any pool: N plain processes (forked beforehand, held
 * at a gate) each sleep per x M ms in a row; the wall time from the gate to the last one's end.
 * Its efficiency against the same ideal (N * 1000 / M tasks per second) is the ceiling that
 * sleep overshoot (timer slack, wake-up latency on busy CPUs) leaves to any pool on this
 * machine. Returns the wall time in ns, or -1.
 */
static int64_t bare_sleepers(int n, int per, int ms)
{
	struct sleeper_arg a = { per, ms, (uint32_t)n + 1 };
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	int64_t t0, wall = -1;
	int k, started = 0, bad = 0;

	if (!pids)
		return -1;
	bench_gate_init(&g_sh->gate);
	__atomic_store_n(&g_sh->bare_end, 0, __ATOMIC_SEQ_CST);
	for (k = 0; k < n; k++) {
		pids[k] = bench_fork(-1, sleeper_main, &a);
		if (pids[k] < 0)
			break;
		started++;
	}
	if (started < n) {
		for (k = 0; k < started; k++)
			bench_reap(pids[k], true);
		free(pids);
		return -1;
	}
	bench_gate_wait(&g_sh->gate, (uint32_t)n + 1);
	bench_gate_wait(&g_sh->gate, (uint32_t)n + 1);
	t0 = bench_now_ns();
	for (k = 0; k < n; k++)
		bad |= bench_reap(pids[k], false) != 0;
	if (!bad)
		wall = __atomic_load_n(&g_sh->bare_end, __ATOMIC_SEQ_CST) - t0;
	free(pids);
	return wall > 0 ? wall : -1;
}

/* The median of a few single nanosleep(M ms) in this process, in ms (once per M). */
static double single_sleep_ms(int ms)
{
	static double cache[64];
	int64_t v[9];

	if (ms <= 0 || ms >= 64)
		return -1;
	if (cache[ms] > 0)
		return cache[ms];
	for (size_t i = 0; i < MPROC__ARRAY_SIZE(v); i++) {
		int64_t t0 = bench_now_ns();

		sleep_ms(ms);
		v[i] = bench_now_ns() - t0;
		for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			int64_t x = v[j];

			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	}
	cache[ms] = (double)v[MPROC__ARRAY_SIZE(v) / 2] / 1e6;
	return cache[ms];
}

static void bm_scale(struct gbench_state *st, void *arg)
{
	const struct scale_case *c = arg;
	enum gbench_profile prof = gbench_current_profile();
	bool cpu = c->variant <= V_CPU_PINNED;
	/* Tasks per worker per iteration: enough to even out the tail, few enough that the quick
	 * profile stays near a minute on 2 loaded cores. A map's tail is what a short map
	 * measures: when something else runs (the owner collecting results, the kernel), one of
	 * N = usable workers falls behind and the other idles at the end, where N + 1 workers
	 * share the loss. With 2 tasks per worker at 20 ms, 2 workers spread 77-98 tasks/s and
	 * reached 93 % of 4 workers; with 8, 96.5-98.5 %. 16 per worker measures close to the
	 * steady state a long map sees. */
	int per = cpu ? (c->task_ms == 1 ? 20 : 16) : 3;
	/* The 20 ms sleep curve is CPython's workload (bench/python/mp_bench.py): as many tasks
	 * per worker as its profile's target time holds (0.15 s quick, 0.5 s full), so that the
	 * two efficiencies compare. */
	bool py = c->variant == V_IO && c->task_ms == IO_PY_MS;
	int n = c->workers * (py ? (prof == GBENCH_FULL ? 500 : 150) / IO_PY_MS
			      : prof == GBENCH_SMOKE ? 2 : prof == GBENCH_FULL ? 2 * per : per);
	struct mproc_pool *p = NULL;
	struct task *tasks = calloc((size_t)n, sizeof(*tasks));
	uint64_t *out = calloc((size_t)n, sizeof(*out));
	ssize_t *sts = calloc((size_t)n, sizeof(*sts));
	int pfd[2] = { -1, -1 };
	double secs = 0, done = 0;
	int64_t bare = -1;
	const char *err = NULL;
	int r;

	if (!tasks || !out || !sts) {
		err = "out of memory";
		goto out;
	}
	if (cpu)
		calibrate();
	if (c->variant == V_IO_PIPE) {
		if (pipe2(pfd, O_CLOEXEC) < 0) {
			err = "pipe2 failed";
			goto out;
		}
		g_pipe_rd = pfd[0];
	}
	r = make_pool(&p, c->workers, c->variant == V_CPU_PINNED, 8);
	if (r < 0) {
		err = "mproc_pool_new failed";
		goto out;
	}
	/* Warm-up, untimed: the same number of no-op tasks through the same pool, so that the
	 * workers' first touches of the table (and their first wake-up after start) are not
	 * counted as the scaling curve's cost. CPython's harness does the same (a no-op map). */
	for (int i = 0; i < n; i++)
		tasks[i] = (struct task){ .kind = T_NOOP, .arg = (uint64_t)i };
	{
		struct mproc_pool_batch b = { .tasks = tasks, .task_len = sizeof(*tasks),
					      .results = out, .result_stride = 8, .status = sts,
					      .n = (size_t)n, .chunksize = 1 };

		if (mproc_pool_map(p, &b, 60.0) < 0) {
			err = "warm-up map failed";
			goto out;
		}
	}
	/* The sleep variant's baseline, measured in this repetition, just before the timed
	 * maps (the machine's load then is the pool's too). Outside the timed region. */
	if (c->variant == V_IO)
		bare = bare_sleepers(c->workers, n / c->workers, c->task_ms);
	for (int i = 0; i < n; i++) {
		tasks[i].kind = cpu ? T_CPU : c->variant == V_IO ? T_SLEEP : T_PIPE;
		tasks[i].ms = (uint32_t)c->task_ms;
		tasks[i].arg = (uint64_t)i;
	}
	while (gbench_keep_running_batch(st, n)) {
		struct mproc_pool_batch b = { .tasks = tasks, .task_len = sizeof(*tasks),
					      .results = out, .result_stride = 8, .status = sts,
					      .n = (size_t)n, .chunksize = 1 };
		struct feeder_arg fa = { pfd[1], c->workers, c->task_ms, n };
		pid_t feeder = -1;
		int64_t t0;

		if (c->variant == V_IO_PIPE) {
			bench_gate_init(&g_sh->gate);
			feeder = bench_fork(-1, feeder_main, &fa);
			if (feeder < 0) {
				err = "fork of the feeder failed";
				break;
			}
			bench_gate_wait(&g_sh->gate, 2);
		}
		t0 = bench_now_ns();
		r = mproc_pool_map(p, &b, 60.0);
		t0 = bench_now_ns() - t0;
		if (feeder > 0 && bench_reap(feeder, r < 0) != 0 && r == 0)
			err = "feeder failed";
		if (r < 0) {
			err = r == -ETIMEDOUT ? "map timed out" : "a task failed";
			break;
		}
		for (int i = 0; i < n && !cpu; i++)
			if (sts[i] != 8 || out[i] != (uint64_t)i + 1)
				err = "wrong result";
		for (int i = 0; i < n && cpu; i++)
			if (sts[i] != 8)
				err = "wrong result length";
		if (err)
			break;
		gbench_set_iteration_time(st, (double)t0 / 1e9);
		secs += (double)t0 / 1e9;
		done += n;
	}
out:
	mproc_pool_free(p);
	mproc__close(pfd[0]);
	mproc__close(pfd[1]);
	g_pipe_rd = -1;
	free(tasks);
	free(out);
	free(sts);
	if (err) {
		gbench_skip_with_error(st, err);
		return;
	}
	if (secs > 0) {
		double tps = done / secs;

		gbench_counter(st, "tasks_per_second", tps, GBENCH_DEFAULT);
		if (cpu) {
			int ms20 = c->task_ms >= 20;
			double base, speedup;
			int usable = budget();

			if (c->workers == 1)
				base_tps[c->variant][ms20] = tps;
			base = base_tps[c->variant][ms20] > 0 ? base_tps[c->variant][ms20]
								: 1000.0 / c->task_ms;
			speedup = tps / base;
			gbench_counter(st, "speedup", speedup, GBENCH_DEFAULT);
			gbench_counter(st, "efficiency",
				       speedup / (c->workers < usable ? c->workers : usable),
				       GBENCH_DEFAULT);
		} else {
			double ideal = c->workers * 1000.0 / c->task_ms;

			gbench_counter(st, "efficiency", tps / ideal, GBENCH_DEFAULT);
		}
		if (c->variant == V_IO && bare > 0) {
			/* The ideal above assumes sleeps that last exactly M ms; these say what the
			 * kernel delivered here, and how the pool compares with that. */
			double bare_tps = n / ((double)bare / 1e9);

			gbench_counter(st, "sleep_baseline_efficiency",
				       bare_tps / (c->workers * 1000.0 / c->task_ms), GBENCH_DEFAULT);
			gbench_counter(st, "efficiency_vs_sleep_baseline", tps / bare_tps,
				       GBENCH_DEFAULT);
			gbench_counter(st, "single_sleep_ms", single_sleep_ms(c->task_ms),
				       GBENCH_DEFAULT);
		}
	}
}

/* ------------------------------------------------------------------ overhead */

enum { A_MAP, A_IMAP, A_APPLY_ASYNC, A_SUBMIT };
static const char *api_name[] = { "map", "imap", "apply_async", "submit" };

struct over_case {
	int api, chunksize;
};

/* One pass of K no-op tasks through the API; returns an error text or NULL. */
static const char *overhead_pass(const struct over_case *c, struct mproc_pool *p,
				 const struct task *tasks, uint64_t *out, struct mproc_result **rs,
				 size_t k)
{
	struct mproc_pool_batch b = { .tasks = tasks, .task_len = sizeof(*tasks), .results = out,
				      .result_stride = 8, .n = k, .chunksize = (size_t)c->chunksize };
	const char *err = NULL;
	size_t i;

	switch (c->api) {
	case A_MAP:
		if (mproc_pool_map(p, &b, 60.0) < 0)
			err = "map failed";
		break;
	case A_IMAP: {
		struct mproc_imap *it = NULL;
		size_t idx;
		uint64_t v;
		ssize_t r;

		if (mproc_pool_imap(p, &b, &it) < 0)
			return "imap failed";
		while ((r = mproc_imap_next(it, &v, 8, &idx, 60.0)) == 8)
			out[idx] = v;
		if (r != MPROC_EOF)
			err = "imap_next failed";
		mproc_imap_free(it);
		break;
	}
	case A_APPLY_ASYNC:
	case A_SUBMIT:
		for (i = 0; i < k && !err; i++) {
			int r = c->api == A_SUBMIT
				? mproc_pool_submit(p, &tasks[i], sizeof(*tasks), &rs[i])
				: mproc_pool_apply_async(p, &tasks[i], sizeof(*tasks), NULL, &rs[i]);

			if (r < 0) {
				err = "submit failed";
				rs[i] = NULL;
			}
		}
		if (!err && c->api == A_SUBMIT &&
		    mproc_futures_wait(rs, k, MPROC_ALL_COMPLETED, 60.0, NULL) < 0)
			err = "futures wait failed";
		for (i = 0; i < k; i++) {
			if (rs[i] && !err && mproc_result_get(rs[i], &out[i], 8, 60.0) != 8)
				err = "get failed";
			mproc_result_free(rs[i]);
			rs[i] = NULL;
		}
		break;
	}
	return err;
}

static void bm_overhead(struct gbench_state *st, void *arg)
{
	const struct over_case *c = arg;
	size_t k = gbench_current_profile() == GBENCH_SMOKE ? 1000 : 10000;
	int workers = budget() < 2 ? 1 : 2;
	struct mproc_pool *p = NULL;
	struct task *tasks = calloc(k, sizeof(*tasks));
	uint64_t *out = calloc(k, sizeof(*out));
	struct mproc_result **rs = calloc(k, sizeof(*rs));
	double secs = 0, done = 0;
	const char *err = NULL;

	if (!tasks || !out || !rs) {
		err = "out of memory";
		goto out;
	}
	if (make_pool(&p, workers, false, 8) < 0) {
		err = "mproc_pool_new failed";
		goto out;
	}
	for (size_t i = 0; i < k; i++)
		tasks[i] = (struct task){ .kind = T_NOOP, .arg = i };
	/* Warm-up, untimed: first touches of the table and of the heap (copy-on-write since the
	 * workers were forked) would otherwise be counted as per-task cost. */
	err = overhead_pass(c, p, tasks, out, rs, k);
	while (!err && gbench_keep_running_batch(st, (int64_t)k)) {
		int64_t t0;
		size_t i;

		memset(out, 0, k * sizeof(*out));
		t0 = bench_now_ns();
		err = overhead_pass(c, p, tasks, out, rs, k);
		t0 = bench_now_ns() - t0;
		for (i = 0; i < k && !err; i++)
			if (out[i] != i + 1)
				err = "wrong result";
		if (err)
			break;
		gbench_set_iteration_time(st, (double)t0 / 1e9);
		secs += (double)t0 / 1e9;
		done += (double)k;
	}
out:
	mproc_pool_free(p);
	free(tasks);
	free(out);
	free(rs);
	if (err)
		gbench_skip_with_error(st, err);
	else if (done > 0)
		gbench_counter(st, "ns_per_task", secs * 1e9 / done, GBENCH_DEFAULT);
}

/* ------------------------------------------------------------------ failure */

static const char *fail_name[] = { "running", "reading", "writing" };

static void bm_failure(struct gbench_state *st, void *arg)
{
	int kind = (int)(intptr_t)arg;
	enum gbench_profile prof = gbench_current_profile();
	int trials = prof == GBENCH_SMOKE ? 2 : prof == GBENCH_QUICK ? 5 : 20;
	struct mproc_pool *p = NULL;
	struct bench_samples s = { 0 };
	char *buf = malloc(FAIL_RESULT);
	const char *err = NULL;

	if (!buf || bench_samples_init(&s, (size_t)trials) < 0) {
		err = "out of memory";
		goto out;
	}
	mproc__pool_test_hook = fail_hook;
	if (make_pool(&p, 2, false, FAIL_RESULT) < 0) {
		err = "mproc_pool_new failed";
		goto out;
	}
	while (gbench_keep_running_batch(st, trials)) {
		int64_t wall = bench_now_ns();

		for (int t = 0; t < trials && !err; t++) {
			struct task tk = { .kind = (uint32_t)(T_FAIL_RUN + kind) };
			struct mproc_result *r = NULL;
			int64_t deadline = bench_now_ns() + 10 * MPROC__NSEC_PER_SEC, t0;
			int pid = 0;
			ssize_t got;

			__atomic_store_n(&g_sh->pid, 0, __ATOMIC_SEQ_CST);
			if (mproc_pool_submit(p, &tk, sizeof(tk), &r) < 0) {
				err = "submit failed";
				break;
			}
			while (!(pid = __atomic_load_n(&g_sh->pid, __ATOMIC_SEQ_CST)) &&
			       bench_now_ns() < deadline)
				usleep(200);
			if (!pid) {
				err = "the task never started";
				mproc_result_free(r);
				break;
			}
			t0 = bench_now_ns();
			kill(pid, SIGKILL);
			got = mproc_result_get(r, buf, FAIL_RESULT, 10.0);
			bench_samples_add(&s, bench_now_ns() - t0);
			mproc_result_free(r);
			if (got != -ECHILD)
				err = "the lost task did not fail with ECHILD";
		}
		if (err)
			break;
		gbench_set_iteration_time(st, (double)(bench_now_ns() - wall) / 1e9);
	}
out:
	mproc_pool_free(p);
	mproc__pool_test_hook = NULL;
	free(buf);
	if (err)
		gbench_skip_with_error(st, err);
	else
		bench_samples_report(st, &s);
	bench_samples_free(&s);
}

/* ------------------------------------------------------------------ registration */

static struct scale_case scases[512];
static struct over_case ocases[16];

static void reg_scale(size_t *n, int variant, int workers, int task_ms)
{
	char name[128];
	struct gbench *g;

	if (*n >= MPROC__ARRAY_SIZE(scases))
		return;
	scases[*n] = (struct scale_case){ variant, workers, task_ms };
	snprintf(name, sizeof(name), "pool/%s/workers:%d/task_ms:%d", variant_name[variant],
		 workers, task_ms);
	g = gbench_register(name, bm_scale, &scases[(*n)++]);
	gbench_use_manual_time(g);
	gbench_time_unit(g, GBENCH_MS);
}

static void register_all(void)
{
	enum gbench_profile prof = gbench_current_profile();
	int usable = budget();
	size_t n = 0, no = 0;
	char name[128];
	struct gbench *g;
	const struct mproc_topo *t = bench_topo();

	g_sh = bench_shared_alloc(sizeof(*g_sh));
	if (t) {
		int k = mproc_topo_pu_order(t, MPROC_TOPO_PHYSICAL_FIRST, g_pus,
					    (int)MPROC__ARRAY_SIZE(g_pus));

		g_npus = k > 0 ? k : 0;
	}

	/* CPU-bound: N = 1 first (the speedup base), up to 2x the budget. */
	for (int v = V_CPU; v <= V_CPU_PINNED; v++) {
		static const int ms_all[] = { 1, 20 };

		for (size_t m = 0; m < 2; m++) {
			int ms = ms_all[m], nmax = prof == GBENCH_SMOKE ? 2 : 2 * usable;

			if (prof == GBENCH_SMOKE && ms != 1)
				continue;
			if (v == V_CPU_PINNED && g_npus == 0)
				continue;
			for (int w = 1; w <= nmax; w++) {
				/* Past 16 workers, every other count is enough for the curve. */
				if (w > 16 && w % 2 && w != nmax)
					continue;
				reg_scale(&n, v, w, ms);
			}
		}
	}
	/* I/O-bound: N = 1, 2, 4 ... 64. */
	for (int v = V_IO; v <= V_IO_PIPE; v++) {
		int ms = prof == GBENCH_SMOKE ? 2 : 10;

		for (int w = 1; w <= (prof == GBENCH_SMOKE ? 2 : IO_MAX_WORKERS); w *= 2)
			reg_scale(&n, v, w, ms);
	}
	/* CPython's I/O points, same workload and N (quick: 1, 8, 32; full: 1 ... 64). */
	for (int w = 1; prof != GBENCH_SMOKE && w <= IO_MAX_WORKERS; w *= 2)
		if (prof == GBENCH_FULL || w == 1 || w == 8 || w == 32)
			reg_scale(&n, V_IO, w, IO_PY_MS);
	/* Per-task overhead. */
	for (int a = A_MAP; a <= A_SUBMIT; a++) {
		static const int chunks[] = { 1, 10, 100, 1000 };

		for (size_t c = 0; c < MPROC__ARRAY_SIZE(chunks); c++) {
			if (a >= A_APPLY_ASYNC && chunks[c] != 1)
				continue;
			if (prof == GBENCH_SMOKE && chunks[c] != 1 && chunks[c] != 100)
				continue;
			ocases[no] = (struct over_case){ a, chunks[c] };
			snprintf(name, sizeof(name), "pool_overhead/%s/chunksize:%d", api_name[a],
				 chunks[c]);
			g = gbench_register(name, bm_overhead, &ocases[no++]);
			gbench_use_manual_time(g);
			gbench_time_unit(g, GBENCH_US);  /* real_time: one task, microseconds */
		}
	}
	/* Failure detection. */
	for (int k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "pool/failure/%s", fail_name[k]);
		g = gbench_register(name, bm_failure, (void *)(intptr_t)k);
		gbench_use_manual_time(g);
		gbench_time_unit(g, GBENCH_MS);
	}
}

int main(int argc, char **argv)
{
	return bench_main(argc, argv, register_all);
}
