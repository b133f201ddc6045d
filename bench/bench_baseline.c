/*
 * bench_baseline.c - the machine's own limits, measured in the same run as everything else so
 * that every other figure can be read as a ratio to the machine (DESIGN.md, issue 3 part 5),
 * from a minimal process (issue 17): the round trips, fork_exit and syscall run in
 * mproc-floor (floor.c), a C program linked with nothing but libc that this harness execs and
 * drives over two pipes; "x baseline" then means "x what this machine can do", not "x what a
 * C++ process with Google Benchmark and hwloc mapped can do".
 *
 * Round trips between two processes, mproc-floor pinned to PU a and its forked child to PU b
 * (bench_pair(): same_core = one PU time-shared by both, cross_core = two physical cores):
 *
 *   baseline/cacheline_rtt/placement:P  one 64-bit word in shared memory: the parent stores an
 *	odd value, the child answers with value + 1. Cross-core this is the cache-coherence
 *	round trip (the line moves to the child's core and back). Same-core both ends share
 *	one PU, so a waiter that spun would burn its whole time slice: both ends sched_yield()
 *	while they wait, and the figure is two yield-driven context switches, not a cache
 *	effect. Timed in batches of FLOOR_BATCH_CACHELINE round trips (a clock read costs about
 *	as much as one round trip); each sample is one batch's mean.
 *   baseline/futex_rtt/placement:P      two 32-bit futex words, FUTEX_WAKE and FUTEX_WAIT.
 *   baseline/pipe_rtt/placement:P       a 4-byte sequence number over two pipes.
 *   baseline/eventfd_rtt/placement:P    two eventfds, write 1 / read 1.
 *
 * Every round trip is verified (the child echoes the sequence number). Each sample is one round
 * trip (or one batch's mean), manual time is the sum of the timed regions, one Google
 * Benchmark iteration is one round trip (requests of FLOOR_REQUEST_* operations run under
 * gbench_keep_running_batch), and the counters p50_ns, p99_ns, p999_ns are percentiles of the
 * per-round-trip times; pu_a and pu_b name the PUs of the two ends. cross_core on a machine
 * with one usable core is registered but skips with an error that says so.
 *
 * Single process: baseline/fork_exit (fork + _exit(0) + waitpid in mproc-floor, per-call
 * samples), baseline/syscall (the raw getppid syscall in mproc-floor, batches of
 * FLOOR_BATCH_SYSCALL), baseline/fork_exit_harness (the same fork loop in this harness
 * process: what a fork costs a process of the harness's size; baseline/fork_exit measured this
 * until issue 17), baseline/memcpy/bytes:N (this process's copy loop, counter
 * bytes_per_second over CPU time, buffers touched and warmed up before the loop, copy verified
 * after it: a copy costs the same in any process).
 *
 * Reading the figures on a VM: a syscall, a context switch and a fork cost what the hypervisor
 * makes them cost (on the 2-core Firecracker dev VM, with PTI on, a bare getppid() takes about
 * 1 us and fork + exit + wait 0.4-0.7 ms even in a minimal static program), and the cross-core
 * cache-line figure depends on which host cores the two vCPUs sit on at the moment (100 ns or
 * 400 ns there, run to run). That is why they are measured in every run.
 *
 * A dead helper or peer makes the benchmark skip with an error, never hang: mproc-floor
 * answers a request with -ECHILD when its child died (its waits are interrupted by SIGCHLD)
 * or -ETIMEDOUT after 10 s, and this harness reads EOF when mproc-floor itself died. The helper
 * dies with the harness (bench_fork: PR_SET_PDEATHSIG, SIGTERM handler), its child with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "floor.h"
#include "internal.h"

/* Operations per request to mproc-floor: a multiple of the probe's batch, a few ms of work. */
#define FLOOR_REQUEST_RTT 64
#define FLOOR_REQUEST_CACHELINE (8 * FLOOR_BATCH_CACHELINE)
#define FLOOR_REQUEST_SYSCALL (16 * FLOOR_BATCH_SYSCALL)
#define FLOOR_REQUEST_FORK 16

static const struct probe {
	const char *name;
	int request;                    /* operations per request */
	bool pair;                      /* a round trip between two processes */
} k_probes[] = {
	{ "cacheline_rtt", FLOOR_REQUEST_CACHELINE, true },
	{ "futex_rtt", FLOOR_REQUEST_RTT, true },
	{ "pipe_rtt", FLOOR_REQUEST_RTT, true },
	{ "eventfd_rtt", FLOOR_REQUEST_RTT, true },
	{ "fork_exit", FLOOR_REQUEST_FORK, false },
	{ "syscall", FLOOR_REQUEST_SYSCALL, false },
};

struct floor_case {
	const struct probe *probe;
	enum mproc_topo_placement placement;
};

static struct floor_case g_cases[MPROC__ARRAY_SIZE(k_probes) * 2];
static char g_floor_exe[PATH_MAX];

static void fail(struct gbench_state *st, const char *what, int err)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-err));
	gbench_skip_with_error(st, msg);
}

/* mproc-floor beside this harness (both in <build>/bench); 0 or -errno. */
static int floor_exe_find(void)
{
	ssize_t n = readlink("/proc/self/exe", g_floor_exe, sizeof(g_floor_exe) - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	g_floor_exe[n] = '\0';
	slash = strrchr(g_floor_exe, '/');
	if (!slash || (size_t)(slash - g_floor_exe) + sizeof("/mproc-floor") > sizeof(g_floor_exe))
		return -ENAMETOOLONG;
	strcpy(slash + 1, "mproc-floor");
	return access(g_floor_exe, X_OK) == 0 ? 0 : -errno;
}

/* The running helper: its pid and our ends of its stdin and stdout. */
struct floor {
	pid_t pid;
	int req, rep;
	int fds[4];                     /* the child's ends until it has them */
	char argv_buf[3][24];
	const char *probe;
};

static int floor_child(void *arg)
{
	struct floor *f = arg;
	char *const argv[] = { "mproc-floor", (char *)f->probe, f->argv_buf[0], f->argv_buf[1],
			       NULL };

	/* bench_fork's child: async-signal-safe calls only (dup2, close, execv). */
	if (dup2(f->fds[0], 0) < 0 || dup2(f->fds[3], 1) < 0)
		return 125;
	execv(g_floor_exe, argv);
	return 127;
}

static int floor_open(struct floor *f, const char *probe, int a, int b)
{
	int to[2] = { -1, -1 }, from[2] = { -1, -1 };

	f->pid = -1;
	f->req = f->rep = -1;
	f->probe = probe;
	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
		int e = -errno;

		mproc__closep(&to[0]);
		mproc__closep(&to[1]);
		return e;
	}
	f->fds[0] = to[0];
	f->fds[3] = from[1];
	snprintf(f->argv_buf[0], sizeof(f->argv_buf[0]), "%d", a);
	snprintf(f->argv_buf[1], sizeof(f->argv_buf[1]), "%d", b);
	/* Not pinned by bench_fork: mproc-floor pins itself to a (and its child to b). */
	f->pid = bench_fork(-1, floor_child, f);
	mproc__closep(&to[0]);
	mproc__closep(&from[1]);
	f->req = to[1];
	f->rep = from[0];
	if (f->pid < 0) {
		int e = f->pid;

		mproc__closep(&f->req);
		mproc__closep(&f->rep);
		return e;
	}
	return 0;
}

/* Run n operations; on success *total_ns and samples[0 .. *k). 0 or -errno (-EPIPE: the
 * helper is gone). */
static int floor_run(struct floor *f, int64_t n, int64_t *total_ns, int64_t *samples,
		     int64_t cap, int64_t *k)
{
	int64_t hdr[3];

	if (mproc__write_all(f->req, &n, sizeof(n), MPROC__NO_DEADLINE) != sizeof(n))
		return -EPIPE;
	if (mproc__read_all(f->rep, &hdr[0], sizeof(hdr[0]), MPROC__NO_DEADLINE) !=
	    sizeof(hdr[0]))
		return -EPIPE;
	if (hdr[0] != 0)
		return hdr[0] < 0 && hdr[0] > -4096 ? (int)hdr[0] : -EPROTO;
	if (mproc__read_all(f->rep, &hdr[1], 2 * sizeof(hdr[0]), MPROC__NO_DEADLINE) !=
	    2 * sizeof(hdr[0]) || hdr[2] < 0 || hdr[2] > cap)
		return -EPROTO;
	if (mproc__read_all(f->rep, samples, (size_t)hdr[2] * sizeof(*samples),
			    MPROC__NO_DEADLINE) != (ssize_t)((size_t)hdr[2] * sizeof(*samples)))
		return -EPROTO;
	*total_ns = hdr[1];
	*k = hdr[2];
	return 0;
}

/* Stop the helper and reap it: its exit status (0 ok), or -signal. */
static int floor_close(struct floor *f, bool kill_first)
{
	int64_t stop = 0;
	int r;

	if (f->pid <= 0)
		return 0;
	if (!kill_first)
		(void)mproc__write_all(f->req, &stop, sizeof(stop), MPROC__NO_DEADLINE);
	mproc__closep(&f->req);
	mproc__closep(&f->rep);
	r = bench_reap(f->pid, kill_first);
	f->pid = -1;
	return r;
}

static void bm_floor(struct gbench_state *st, void *arg)
{
	const struct floor_case *c = arg;
	const struct probe *pr = c->probe;
	struct bench_samples s = { 0 };
	struct sigaction sa, old_pipe;
	struct floor f = { .pid = -1, .req = -1, .rep = -1 };
	int64_t *buf = NULL;
	int a = -1, b = -1, e, st_child;

	if (!g_floor_exe[0]) {
		gbench_skip_with_error(st, "mproc-floor not found beside the harness (build it: "
				       "it is built with bench_baseline)");
		return;
	}
	if (pr->pair) {
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
	}
	e = bench_samples_init(&s, bench_samples_cap());
	if (e < 0) {
		fail(st, "samples", e);
		return;
	}
	buf = malloc(sizeof(*buf) * (size_t)pr->request);
	if (!buf) {
		fail(st, "samples", -ENOMEM);
		goto out_samples;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, &old_pipe);     /* a dead helper is -EPIPE, not a signal */
	e = floor_open(&f, pr->name, a, b);
	if (e < 0) {
		fail(st, "start mproc-floor", e);
		goto out_signals;
	}
	/* One operation is one iteration: a request of pr->request operations is a batch. */
	while (gbench_keep_running_batch(st, pr->request)) {
		int64_t total = 0, k = 0;

		e = floor_run(&f, pr->request, &total, buf, pr->request, &k);
		if (e < 0) {
			fail(st, e == -EPIPE ? "mproc-floor died" : e == -ECHILD ?
			     "mproc-floor's peer died" : "mproc-floor", e);
			break;
		}
		for (int64_t i = 0; i < k; i++)
			bench_samples_add(&s, buf[i]);
		gbench_set_iteration_time(st, (double)total * 1e-9);
	}
	st_child = floor_close(&f, gbench_error_occurred(st));
	if (!gbench_error_occurred(st)) {
		if (st_child != 0) {
			char msg[160];

			snprintf(msg, sizeof(msg), "mproc-floor ended with status %d (negative: "
				 "signal)", st_child);
			gbench_skip_with_error(st, msg);
		} else {
			bench_samples_report(st, &s);
			if (pr->pair) {     /* where it ran, for tests/test_floors.py */
				gbench_counter(st, "pu_a", a, GBENCH_DEFAULT);
				gbench_counter(st, "pu_b", b, GBENCH_DEFAULT);
			}
		}
	}
out_signals:
	floor_close(&f, true);
	sigaction(SIGPIPE, &old_pipe, NULL);
out_samples:
	free(buf);
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

/* ---- fork + _exit + waitpid in the harness process (baseline/fork_exit_harness) ---- */

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

	if (floor_exe_find() < 0)
		g_floor_exe[0] = '\0';  /* every floor benchmark skips with the reason */
	for (size_t i = 0; i < MPROC__ARRAY_SIZE(k_probes); i++) {
		for (int p = MPROC_TOPO_SAME_CORE; p <= MPROC_TOPO_CROSS_CORE; p++) {
			if (!k_probes[i].pair && p != MPROC_TOPO_SAME_CORE)
				continue;
			g_cases[k] = (struct floor_case){ &k_probes[i],
							  (enum mproc_topo_placement)p };
			if (k_probes[i].pair)
				snprintf(name, sizeof(name), "baseline/%s/placement:%s",
					 k_probes[i].name,
					 mproc_topo_placement_name((enum mproc_topo_placement)p));
			else
				snprintf(name, sizeof(name), "baseline/%s", k_probes[i].name);
			b = gbench_register(name, bm_floor, &g_cases[k++]);
			gbench_use_manual_time(b);
			gbench_time_unit(b, strcmp(k_probes[i].name, "fork_exit") ? GBENCH_NS
										   : GBENCH_US);
		}
	}
	/* CPU time (Google Benchmark's default): one thread that never blocks, so time it was
	 * preempted by other work on a shared machine is not memory bandwidth. */
	b = gbench_register("baseline/memcpy", bm_memcpy, NULL);
	for (size_t i = 0; i < nsz; i++)
		gbench_args(b, &sz[i], 1);
	GBENCH_ARG_NAMES(b, "bytes");
	/* The harness process's own fork, beside the floor (baseline/fork_exit). */
	b = gbench_register("baseline/fork_exit_harness", bm_fork_exit, NULL);
	gbench_use_manual_time(b);
	gbench_time_unit(b, GBENCH_US);
}

int main(int argc, char **argv)
{
	return bench_main(argc, argv, register_all);
}
