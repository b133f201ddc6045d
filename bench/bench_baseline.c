/*
 * bench_baseline.c - the machine's own limits, measured in the same run as everything else so
 * that every other figure can be read as a ratio to the machine (DESIGN.md, issue 3 part 5).
 *
 * Round trips between two processes, the parent pinned to PU a and a forked child to PU b
 * (bench_pair(): same_core = one PU time-shared by both, cross_core = two physical cores):
 *
 *   baseline/cacheline_rtt/placement:P  one 64-bit word in shared memory: the parent stores an
 *	odd value, the child answers with value + 1. Cross-core this is the cache-coherence
 *	round trip (the line moves to the child's core and back). Same-core both ends share
 *	one PU, so a waiter that spun would burn its whole time slice: both ends sched_yield()
 *	while they wait, and the figure is two yield-driven context switches, not a cache
 *	effect. Timed in batches of CACHELINE_BATCH round trips (a clock read costs about
 *	as much as one round trip); each sample is one batch's mean.
 *   baseline/futex_rtt/placement:P      two 32-bit futex words, FUTEX_WAKE and FUTEX_WAIT.
 *   baseline/pipe_rtt/placement:P       a 4-byte sequence number over two pipes.
 *   baseline/eventfd_rtt/placement:P    two eventfds, write 1 / read 1.
 *
 * Every round trip is verified (the child echoes the sequence number). Each sample is one round
 * trip (or one batch), manual time is the sum of the samples, and the counters p50_ns, p99_ns,
 * p999_ns are percentiles of the per-round-trip times. cross_core on a machine with one usable
 * core is registered but skips with an error that says so.
 *
 * Single process: baseline/memcpy/bytes:N (counter bytes_per_second over CPU time, buffers
 * touched and warmed up before the loop, copy verified after it), baseline/fork_exit (fork +
 * _exit(0) + waitpid, per-call samples), baseline/syscall (the raw getppid syscall, batches of
 * SYSCALL_BATCH).
 *
 * Reading the figures on a VM: a syscall, a context switch and a fork cost what the hypervisor
 * makes them cost (on the 2-core Firecracker dev VM, with PTI on, a bare getppid() takes about
 * 1 us and fork + exit + wait 0.4-0.7 ms even in a minimal static program), and the cross-core
 * cache-line figure depends on which host cores the two vCPUs sit on at the moment (100 ns or
 * 400 ns there, run to run). That is why they are measured in every run.
 *
 * A child that dies makes the benchmark skip with an error, never hang: a SIGCHLD handler
 * (installed for the duration of a round-trip benchmark, without SA_RESTART) sets a flag,
 * interrupts the parent's blocking wait and, for eventfd, also writes to the eventfd the
 * parent is blocked on (no window between checking the flag and blocking).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "internal.h"

#define CACHELINE_BATCH 32
#define SYSCALL_BATCH 64
#define WARMUP_ROUNDS 200
#define STOP UINT32_MAX
#define CL_STOP UINT64_MAX              /* never 2 * seq + 1 */
#define RTT_TIMEOUT_NS (10 * MPROC__NSEC_PER_SEC)
#define EFD_CHILD_DIED (UINT64_C(1) << 40)

/* Everything both ends share: one page of MAP_SHARED memory. Each word that one side writes
 * and the other reads sits on its own cache line (no false sharing between probes' words). */
struct rtt {
	_Alignas(64) uint64_t line;     /* cacheline: odd = ping, even = pong */
	_Alignas(64) uint32_t ping;     /* futex: parent -> child */
	_Alignas(64) uint32_t pong;     /* futex: child -> parent */
	_Alignas(64) struct bench_gate gate;
	_Alignas(64) int yield;         /* same_core: waiters sched_yield() */
	int to_child[2];                /* pipe, or to_child[0] = eventfd */
	int to_parent[2];
};

struct probe {
	const char *name;
	int batch;                      /* round trips per sample */
	int (*setup)(struct rtt *r);
	int (*child)(void *arg);
	/* One round trip with sequence number seq (1 .. STOP-1). 0, or -errno. */
	int (*ping)(struct rtt *r, uint32_t seq);
	void (*stop)(struct rtt *r);
	void (*close_child_ends)(struct rtt *r);
	void (*teardown)(struct rtt *r);
};

static volatile sig_atomic_t g_child_died;
static volatile sig_atomic_t g_wake_fd = -1;

static void on_sigchld(int sig)
{
	int saved = errno;
	uint64_t v = EFD_CHILD_DIED;

	g_child_died = 1;
	if (g_wake_fd >= 0 && write(g_wake_fd, &v, sizeof(v)) < 0) {
		/* nothing more to do: the flag is set */
	}
	errno = saved;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* ---- cache line ---- */

static int cl_setup(struct rtt *r)
{
	r->line = 0;
	return 0;
}

static int cl_child(void *arg)
{
	struct rtt *r = arg;
	uint64_t last = 0, v;

	bench_gate_wait(&r->gate, 2);
	for (;;) {
		while ((v = __atomic_load_n(&r->line, __ATOMIC_ACQUIRE)) == last) {
			if (r->yield)
				sched_yield();
		}
		if (v == CL_STOP)
			return 0;
		if (!(v & 1))
			return 3;       /* protocol error: the parent never writes even values */
		last = v + 1;
		__atomic_store_n(&r->line, last, __ATOMIC_RELEASE);
	}
}

static int cl_ping(struct rtt *r, uint32_t seq)
{
	uint64_t want = 2 * (uint64_t)seq + 2;
	unsigned spins = 0;
	int64_t deadline = 0;

	__atomic_store_n(&r->line, 2 * (uint64_t)seq + 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&r->line, __ATOMIC_ACQUIRE) != want) {
		if (r->yield)
			sched_yield();
		if (++spins % 4096 == 0) {
			if (g_child_died)
				return -ECHILD;
			if (!deadline)
				deadline = bench_now_ns() + RTT_TIMEOUT_NS;
			else if (bench_now_ns() > deadline)
				return -ETIMEDOUT;
		}
	}
	return 0;
}

static void cl_stop(struct rtt *r)
{
	__atomic_store_n(&r->line, CL_STOP, __ATOMIC_RELEASE);
}

/* ---- futex ---- */

static int fx_setup(struct rtt *r)
{
	r->ping = r->pong = 0;
	return 0;
}

static int fx_child(void *arg)
{
	struct rtt *r = arg;
	uint32_t last = 0, v;

	bench_gate_wait(&r->gate, 2);
	for (;;) {
		while ((v = __atomic_load_n(&r->ping, __ATOMIC_ACQUIRE)) == last)
			mproc__futex_wait(&r->ping, last, MPROC__NO_DEADLINE);
		if (v == STOP)
			return 0;
		last = v;
		__atomic_store_n(&r->pong, v, __ATOMIC_RELEASE);
		mproc__futex_wake(&r->pong, 1);
	}
}

static int fx_ping(struct rtt *r, uint32_t seq)
{
	int64_t deadline = bench_now_ns() + RTT_TIMEOUT_NS;
	uint32_t v;
	int e;

	__atomic_store_n(&r->ping, seq, __ATOMIC_RELEASE);
	mproc__futex_wake(&r->ping, 1);
	while ((v = __atomic_load_n(&r->pong, __ATOMIC_ACQUIRE)) != seq) {
		if (g_child_died)
			return -ECHILD;
		e = mproc__futex_wait(&r->pong, v, deadline);
		if (e == -ETIMEDOUT)
			return e;
	}
	return 0;
}

static void fx_stop(struct rtt *r)
{
	__atomic_store_n(&r->ping, STOP, __ATOMIC_RELEASE);
	mproc__futex_wake(&r->ping, 1);
}

/* ---- pipe ---- */

static int pp_setup(struct rtt *r)
{
	r->to_child[0] = r->to_child[1] = r->to_parent[0] = r->to_parent[1] = -1;
	if (pipe2(r->to_child, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(r->to_parent, O_CLOEXEC) < 0) {
		int e = -errno;

		mproc__closep(&r->to_child[0]);
		mproc__closep(&r->to_child[1]);
		return e;
	}
	return 0;
}

/* read/write exactly 4 bytes, retrying EINTR; 0 at EOF, 4, or -errno. */
static ssize_t xfer4(int fd, uint32_t *v, bool wr)
{
	ssize_t n;

	do
		n = wr ? write(fd, v, sizeof(*v)) : read(fd, v, sizeof(*v));
	while (n < 0 && errno == EINTR && !g_child_died);
	if (n < 0)
		return -errno;
	return n;       /* pipes move 4 bytes atomically (< PIPE_BUF) */
}

static int pp_child(void *arg)
{
	struct rtt *r = arg;
	/* Copy our ends before the gate: after it the parent closes them in its own fd table
	 * (the struct is shared, so nobody may write -1 into it while the other side reads). */
	int in = r->to_child[0], out = r->to_parent[1];
	uint32_t v;
	ssize_t n;

	close(r->to_child[1]);
	close(r->to_parent[0]);
	bench_gate_wait(&r->gate, 2);
	for (;;) {
		n = xfer4(in, &v, false);
		if (n == 0 || (n == 4 && v == STOP))
			return 0;
		if (n != 4)
			return 3;
		if (xfer4(out, &v, true) != 4)
			return 4;
	}
}

static int pp_ping(struct rtt *r, uint32_t seq)
{
	uint32_t v = seq;
	ssize_t n;

	n = xfer4(r->to_child[1], &v, true);
	if (n != 4)
		return n < 0 ? (int)n : -EIO;
	n = xfer4(r->to_parent[0], &v, false);
	if (n == 0)
		return -EPIPE;
	if (n < 0)
		return g_child_died ? -ECHILD : (int)n;
	return v == seq ? 0 : -EBADMSG;
}

static void pp_stop(struct rtt *r)
{
	uint32_t v = STOP;

	xfer4(r->to_child[1], &v, true);
}

static void pp_close_child_ends(struct rtt *r)
{
	mproc__closep(&r->to_child[0]);
	mproc__closep(&r->to_parent[1]);
}

static void pp_teardown(struct rtt *r)
{
	mproc__closep(&r->to_child[0]);
	mproc__closep(&r->to_child[1]);
	mproc__closep(&r->to_parent[0]);
	mproc__closep(&r->to_parent[1]);
}

/* ---- eventfd ---- */

static int ef_setup(struct rtt *r)
{
	r->to_child[0] = r->to_child[1] = r->to_parent[0] = r->to_parent[1] = -1;
	r->to_child[0] = eventfd(0, EFD_CLOEXEC);
	if (r->to_child[0] < 0)
		return -errno;
	r->to_parent[0] = eventfd(0, EFD_CLOEXEC);
	if (r->to_parent[0] < 0) {
		int e = -errno;

		mproc__closep(&r->to_child[0]);
		return e;
	}
	g_wake_fd = r->to_parent[0];
	return 0;
}

static ssize_t xfer8(int fd, uint64_t *v, bool wr)
{
	ssize_t n;

	do
		n = wr ? write(fd, v, sizeof(*v)) : read(fd, v, sizeof(*v));
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Values: 1 = ping, 2 = stop (the parent writes one at a time and waits for the answer, so
 * the counter never sums two messages). */
static int ef_child(void *arg)
{
	struct rtt *r = arg;
	uint64_t v;

	bench_gate_wait(&r->gate, 2);
	for (;;) {
		if (xfer8(r->to_child[0], &v, false) != 8)
			return 3;
		if (v == 2)
			return 0;
		if (v != 1)
			return 4;
		if (xfer8(r->to_parent[0], &v, true) != 8)
			return 5;
	}
}

static int ef_ping(struct rtt *r, uint32_t seq)
{
	uint64_t v = 1;

	if (xfer8(r->to_child[0], &v, true) != 8)
		return -EIO;
	if (xfer8(r->to_parent[0], &v, false) != 8)
		return -EIO;
	if (v >= EFD_CHILD_DIED)
		return -ECHILD;
	return v == 1 ? 0 : -EBADMSG;
}

static void ef_stop(struct rtt *r)
{
	uint64_t v = 2;

	xfer8(r->to_child[0], &v, true);
}

static void ef_teardown(struct rtt *r)
{
	g_wake_fd = -1;
	mproc__closep(&r->to_child[0]);
	mproc__closep(&r->to_parent[0]);
}

static const struct probe k_probes[] = {
	{ "cacheline_rtt", CACHELINE_BATCH, cl_setup, cl_child, cl_ping, cl_stop, NULL, NULL },
	{ "futex_rtt", 1, fx_setup, fx_child, fx_ping, fx_stop, NULL, NULL },
	{ "pipe_rtt", 1, pp_setup, pp_child, pp_ping, pp_stop, pp_close_child_ends, pp_teardown },
	{ "eventfd_rtt", 1, ef_setup, ef_child, ef_ping, ef_stop, NULL, ef_teardown },
};

struct rtt_case {
	const struct probe *probe;
	enum mproc_topo_placement placement;
};

static struct rtt_case g_cases[MPROC__ARRAY_SIZE(k_probes) * 2];

static size_t samples_cap(void)
{
	switch (gbench_current_profile()) {
	case GBENCH_SMOKE:
		return 1 << 12;
	case GBENCH_QUICK:
		return 1 << 17;
	default:
		return 1 << 20;
	}
}

static void fail(struct gbench_state *st, const char *what, int err)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-err));
	gbench_skip_with_error(st, msg);
}

static void bm_rtt(struct gbench_state *st, void *arg)
{
	const struct rtt_case *c = arg;
	const struct probe *pr = c->probe;
	struct sigaction sa, old_chld, old_pipe;
	struct bench_samples s = { 0 };
	struct rtt *r = NULL;
	cpu_set_t saved_cpus;
	bool pinned = false;
	uint32_t seq = 0;
	pid_t pid = -1;
	int a, b, e, st_child;

	e = bench_pair(c->placement, &a, &b);
	if (e == -ENODEV) {
		char msg[160];

		snprintf(msg, sizeof(msg), "%s needs two usable physical cores; this machine "
			 "has %d usable CPU(s)", mproc_topo_placement_name(c->placement),
			 bench_budget());
		gbench_skip_with_error(st, msg);
		return;
	}
	if (e < 0) {
		fail(st, "bench_pair", e);
		return;
	}
	e = bench_samples_init(&s, samples_cap());
	if (e < 0) {
		fail(st, "samples", e);
		return;
	}
	r = bench_shared_alloc(sizeof(*r));
	if (!r) {
		fail(st, "shared memory", -ENOMEM);
		goto out_samples;
	}
	bench_gate_init(&r->gate);
	r->yield = c->placement == MPROC_TOPO_SAME_CORE;
	e = pr->setup(r);
	if (e < 0) {
		fail(st, "setup", e);
		goto out_shared;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_NOCLDSTOP;     /* no SA_RESTART: a dead child interrupts our wait */
	sigemptyset(&sa.sa_mask);
	g_child_died = 0;
	sigaction(SIGCHLD, &sa, &old_chld);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, &old_pipe);

	if (sched_getaffinity(0, sizeof(saved_cpus), &saved_cpus) == 0 &&
	    mproc_topo_pin(0, a) == 0)
		pinned = true;
	pid = bench_fork(b, pr->child, r);
	if (pid < 0) {
		fail(st, "fork", pid);
		goto out_signals;
	}
	bench_gate_wait(&r->gate, 2);
	if (pr->close_child_ends)
		pr->close_child_ends(r);        /* after the gate: the child has copied its fds */

	for (int i = 0; i < WARMUP_ROUNDS; i++) {
		e = pr->ping(r, ++seq);
		if (e < 0)
			goto out_err;
	}
	if (pr->batch > 1) {
		while (gbench_keep_running_batch(st, pr->batch)) {
			int64_t t0 = bench_now_ns(), dt;

			for (int i = 0; i < pr->batch; i++) {
				e = pr->ping(r, ++seq);
				if (e < 0)
					goto out_err;
			}
			dt = bench_now_ns() - t0;
			bench_samples_add(&s, dt / pr->batch);
			gbench_set_iteration_time(st, (double)dt * 1e-9);
			if (seq > STOP - 4096)
				seq = 0;
		}
	} else {
		while (gbench_keep_running(st)) {
			int64_t t0 = bench_now_ns(), dt;

			e = pr->ping(r, ++seq);
			dt = bench_now_ns() - t0;
			if (e < 0)
				goto out_err;
			bench_samples_add(&s, dt);
			gbench_set_iteration_time(st, (double)dt * 1e-9);
			if (seq > STOP - 4096)
				seq = 0;
		}
	}
	pr->stop(r);
	st_child = bench_reap(pid, false);
	pid = -1;
	if (st_child != 0) {
		char msg[160];

		snprintf(msg, sizeof(msg), "child ended with status %d (negative: signal)",
			 st_child);
		gbench_skip_with_error(st, msg);
	} else {
		bench_samples_report(st, &s);
	}
	goto out_signals;

out_err:
	fail(st, g_child_died ? "child died" : "round trip", e);
out_signals:
	if (pid > 0)
		bench_reap(pid, true);
	if (pinned)
		sched_setaffinity(0, sizeof(saved_cpus), &saved_cpus);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigaction(SIGCHLD, &old_chld, NULL);
	if (pr->teardown)
		pr->teardown(r);
out_shared:
	bench_shared_free(r, sizeof(*r));
out_samples:
	bench_samples_free(&s);
}

/* ---- memcpy ---- */

static void bm_memcpy(struct gbench_state *st, void *arg)
{
	size_t n = (size_t)gbench_arg(st, 0);
	unsigned char *src, *dst;
	int64_t iters = 0;

	src = malloc(n);
	dst = malloc(n);
	if (!src || !dst) {
		gbench_skip_with_error(st, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 131 + 7);
	memset(dst, 0, n);      /* fault every page in before timing */
	/* Warm up: on this VM the first copies into fresh pages run an order of magnitude slower
	 * (16 MiB: ~50 ms instead of ~2 ms), which dominated the short runs of the quick
	 * profile. */
	for (int i = 0; i < 3; i++) {
		memcpy(dst, src, n);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	while (gbench_keep_running(st)) {
		memcpy(dst, src, n);
		/* The copy must happen: dst escapes to an opaque asm. */
		__asm__ volatile("" : : "r"(dst) : "memory");
		iters++;
	}
	if (bench_checksum(dst, n) != bench_checksum(src, n)) {
		gbench_skip_with_error(st, "memcpy: destination does not match the source");
		goto out;
	}
	gbench_counter(st, "bytes_per_second", (double)n * (double)iters, GBENCH_RATE);
out:
	free(src);
	free(dst);
}

/* ---- fork + _exit + waitpid ---- */

static void bm_fork_exit(struct gbench_state *st, void *arg)
{
	struct bench_samples s;
	int e;

	/* Few samples (a fork takes 0.1-1 ms): a small buffer keeps the page tables that every
	 * fork copies small. */
	e = bench_samples_init(&s, 1 << 14);
	if (e < 0) {
		fail(st, "samples", e);
		return;
	}
	while (gbench_keep_running(st)) {
		int64_t t0 = bench_now_ns(), dt;
		int status;
		pid_t pid, w;

		pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid < 0) {
			fail(st, "fork", -errno);
			break;
		}
		while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
			;
		dt = bench_now_ns() - t0;
		if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			gbench_skip_with_error(st, "fork_exit: child did not exit with 0");
			break;
		}
		bench_samples_add(&s, dt);
		gbench_set_iteration_time(st, (double)dt * 1e-9);
	}
	if (!gbench_error_occurred(st))
		bench_samples_report(st, &s);
	bench_samples_free(&s);
}

/* ---- syscall ---- */

static void bm_syscall(struct gbench_state *st, void *arg)
{
	struct bench_samples s;
	pid_t want = getppid();
	int e;

	e = bench_samples_init(&s, samples_cap());
	if (e < 0) {
		fail(st, "samples", e);
		return;
	}
	while (gbench_keep_running_batch(st, SYSCALL_BATCH)) {
		int64_t t0 = bench_now_ns(), dt;
		long bad = 0;

		for (int i = 0; i < SYSCALL_BATCH; i++)
			bad |= syscall(SYS_getppid) ^ want;
		dt = bench_now_ns() - t0;
		if (bad) {
			gbench_skip_with_error(st, "syscall: getppid returned another value");
			break;
		}
		bench_samples_add(&s, dt / SYSCALL_BATCH);
		gbench_set_iteration_time(st, (double)dt * 1e-9);
	}
	if (!gbench_error_occurred(st))
		bench_samples_report(st, &s);
	bench_samples_free(&s);
}

/* ---- registration ---- */

static void register_all(void)
{
	static const int64_t sizes_smoke[] = { 4096, 1 << 20 };
	static const int64_t sizes[] = { 64, 4096, 64 << 10, 1 << 20, 16 << 20 };
	bool smoke = gbench_current_profile() == GBENCH_SMOKE;
	const int64_t *sz = smoke ? sizes_smoke : sizes;
	size_t nsz = smoke ? MPROC__ARRAY_SIZE(sizes_smoke) : MPROC__ARRAY_SIZE(sizes);
	size_t k = 0;
	struct gbench *b;
	char name[128];

	for (size_t i = 0; i < MPROC__ARRAY_SIZE(k_probes); i++) {
		for (int p = MPROC_TOPO_SAME_CORE; p <= MPROC_TOPO_CROSS_CORE; p++) {
			g_cases[k] = (struct rtt_case){ &k_probes[i],
							(enum mproc_topo_placement)p };
			snprintf(name, sizeof(name), "baseline/%s/placement:%s", k_probes[i].name,
				 mproc_topo_placement_name((enum mproc_topo_placement)p));
			b = gbench_register(name, bm_rtt, &g_cases[k++]);
			gbench_use_manual_time(b);
			gbench_time_unit(b, GBENCH_NS);
		}
	}
	b = gbench_register("baseline/memcpy", bm_memcpy, NULL);
	for (size_t i = 0; i < nsz; i++)
		gbench_args(b, &sz[i], 1);
	GBENCH_ARG_NAMES(b, "bytes");
	/* CPU time (Google Benchmark's default): one thread that never blocks, so time it was
	 * preempted by other work on a shared machine is not memory bandwidth. */
	b = gbench_register("baseline/fork_exit", bm_fork_exit, NULL);
	gbench_use_manual_time(b);
	gbench_time_unit(b, GBENCH_US);
	b = gbench_register("baseline/syscall", bm_syscall, NULL);
	gbench_use_manual_time(b);
}

int main(int argc, char **argv)
{
	return bench_main(argc, argv, register_all);
}
