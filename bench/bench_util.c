/*
 * bench_util.c - shared harness helpers (bench_util.h): samples and percentiles, shared
 * memory, the topology loaded once, pinned children that die with the harness, a futex start
 * gate, FNV-1a, and the harness main().
 *
 * Process-wide state, all of it in this file: the topology (loaded on first use, never freed
 * before exit) and the table of children that bench_fork() started, which the SIGTERM/SIGINT
 * handler kills. A child forked by bench_fork() resets those handlers, so its copy of the
 * table (which names its siblings) is never used.
 */
#include "bench_util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/version.h"

int64_t bench_now_ns(void)
{
	return mproc__now_ns();
}

/* ---- samples ---- */

size_t bench_samples_cap(void)
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

int bench_samples_init(struct bench_samples *s, size_t cap)
{
	memset(s, 0, sizeof(*s));
	if (cap == 0)
		return -EINVAL;
	if (cap > SIZE_MAX / sizeof(*s->ns) / 2)
		return -ENOMEM;
	s->ns = malloc(cap * sizeof(*s->ns));
	if (!s->ns)
		return -ENOMEM;
	/* Touch every page now so that page faults do not land in the timed loop. */
	memset(s->ns, 0, cap * sizeof(*s->ns));
	s->cap = cap;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank on sorted data: the smallest sample with at least p*n samples <= it. */
static double pct_sorted(const struct bench_samples *s, double p)
{
	size_t rank;

	if (s->n == 0)
		return 0.0;
	if (!(p > 0.0))
		return (double)s->ns[0];
	if (p >= 1.0)
		return (double)s->ns[s->n - 1];
	rank = (size_t)ceil(p * (double)s->n);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return (double)s->ns[rank - 1];
}

double bench_samples_pct(struct bench_samples *s, double p)
{
	if (s->n == 0)
		return 0.0;
	qsort(s->ns, s->n, sizeof(*s->ns), cmp_i64);
	return pct_sorted(s, p);
}

void bench_samples_report(struct gbench_state *st, struct bench_samples *s)
{
	if (s->n == 0)
		return;
	qsort(s->ns, s->n, sizeof(*s->ns), cmp_i64);
	gbench_counter(st, "p50_ns", pct_sorted(s, 0.50), GBENCH_DEFAULT);
	gbench_counter(st, "p99_ns", pct_sorted(s, 0.99), GBENCH_DEFAULT);
	gbench_counter(st, "p999_ns", pct_sorted(s, 0.999), GBENCH_DEFAULT);
	gbench_counter(st, "samples", (double)s->n, GBENCH_DEFAULT);
}

void bench_samples_free(struct bench_samples *s)
{
	if (!s)
		return;
	free(s->ns);
	s->ns = NULL;
	s->n = s->cap = s->dropped = 0;
}

/* ---- shared memory ---- */

void *bench_shared_alloc(size_t bytes)
{
	void *p;

	if (bytes == 0)
		return NULL;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void bench_shared_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

/* ---- topology ---- */

static struct mproc_topo *g_topo;
static bool g_topo_tried;

const struct mproc_topo *bench_topo(void)
{
	if (!g_topo_tried) {
		g_topo_tried = true;
		if (mproc_topo_new(&g_topo, NULL) < 0)
			g_topo = NULL;
	}
	return g_topo;
}

/* Without hwloc: the first (and second) PU of our affinity mask. */
static int pair_from_affinity(enum mproc_topo_placement p, int *a, int *b)
{
	cpu_set_t set;
	int found[2] = { -1, -1 }, n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			found[n++] = i;
	if (n == 0)
		return -ENODEV;
	if (p == MPROC_TOPO_SAME_CORE) {
		*a = *b = found[0];
		return 0;
	}
	if (n < 2)
		return -ENODEV;
	*a = found[0];
	*b = found[1];
	return 0;
}

int bench_pair(enum mproc_topo_placement p, int *a, int *b)
{
	const struct mproc_topo *t = bench_topo();

	if (p != MPROC_TOPO_SAME_CORE && p != MPROC_TOPO_CROSS_CORE)
		return -EINVAL;
	if (!t)
		return pair_from_affinity(p, a, b);
	return mproc_topo_pair(t, p, a, b);
}

static int affinity_count(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	return CPU_COUNT(&set);
}

int bench_budget(void)
{
	const struct mproc_topo *t = bench_topo();
	struct mproc_topo_budget b;
	int n;

	if (t && mproc_topo_budget(t, &b) == 0 && b.usable >= 1)
		return b.usable;
	n = affinity_count();
	return n >= 1 ? n : 1;
}

/* ---- children ---- */

/* Children started by bench_fork() and not yet reaped; 0 = free slot. Written by the main
 * thread with SIGTERM/SIGINT blocked, read by the handler. */
#define BENCH_MAX_CHILDREN 256
static volatile sig_atomic_t g_children[BENCH_MAX_CHILDREN];

static void children_add(pid_t pid)
{
	for (size_t i = 0; i < BENCH_MAX_CHILDREN; i++) {
		if (g_children[i] == 0) {
			g_children[i] = pid;
			return;
		}
	}
	/* Table full: the child still dies with us through PR_SET_PDEATHSIG. */
}

static void children_del(pid_t pid)
{
	for (size_t i = 0; i < BENCH_MAX_CHILDREN; i++)
		if (g_children[i] == pid)
			g_children[i] = 0;
}

static void block_term(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, old);
}

pid_t bench_fork(int pu, int (*fn)(void *arg), void *arg)
{
	pid_t parent = getpid();
	sigset_t old;
	pid_t pid;
	int r;

	if (!fn)
		return -EINVAL;
	/* Block the handler's signals across fork + table insert: a SIGTERM in between would
	 * otherwise kill the harness without killing this child (PDEATHSIG would, later). */
	block_term(&old);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		return r;
	}
	if (pid == 0) {
		/* The child behaves like a signal handler: async-signal-safe calls only. */
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(127);
		/* The parent may have died before prctl: then nobody would ever kill us. */
		if (getppid() != parent)
			_exit(127);
		if (pu >= 0 && mproc_topo_pin(0, pu) < 0)
			_exit(126);
		_exit(fn(arg) & 0xff);
	}
	children_add(pid);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

int bench_reap(pid_t pid, bool kill_first)
{
	sigset_t old;
	int status, r;

	if (pid <= 0)
		return -EINVAL;
	if (kill_first)
		kill(pid, SIGKILL);
	while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (r < 0 && errno != ECHILD)
		return -errno;
	/* Reaped now, or (ECHILD) by someone else before: either way no longer ours to kill. */
	block_term(&old);
	children_del(pid);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return -ECHILD;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -WTERMSIG(status);
}

/* SIGTERM/SIGINT: kill and reap the children, then die of the same signal (so the caller
 * sees "killed by SIGTERM", and the exit status is honest). */
static void on_term(int sig)
{
	int saved = errno;

	for (size_t i = 0; i < BENCH_MAX_CHILDREN; i++) {
		pid_t pid = (pid_t)g_children[i];
		siginfo_t si;

		if (pid <= 0)
			continue;
		/* Only a pid that is still our child (running or a zombie) cannot have been
		 * recycled for another process: one that a harness reaped with plain waitpid()
		 * is skipped, never killed. */
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			g_children[i] = 0;
			continue;
		}
		kill(pid, SIGKILL);
	}
	for (size_t i = 0; i < BENCH_MAX_CHILDREN; i++) {
		pid_t pid = (pid_t)g_children[i];

		if (pid > 0) {
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			g_children[i] = 0;
		}
	}
	signal(sig, SIG_DFL);
	errno = saved;
	raise(sig);     /* pending until this handler returns (sig is blocked in it) */
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* ---- start gate ---- */

void bench_gate_init(struct bench_gate *g)
{
	__atomic_store_n(&g->arrived, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&g->open, 0, __ATOMIC_RELEASE);
}

/* A reusable barrier: `open` is a generation number. The last party to arrive resets the
 * count before it bumps the generation, so a fast party that re-enters for the next round
 * counts towards that round, never this one. */
void bench_gate_wait(struct bench_gate *g, uint32_t parties)
{
	uint32_t gen = __atomic_load_n(&g->open, __ATOMIC_ACQUIRE);

	if (parties <= 1)
		return;
	if (__atomic_add_fetch(&g->arrived, 1, __ATOMIC_ACQ_REL) == parties) {
		__atomic_store_n(&g->arrived, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&g->open, gen + 1, __ATOMIC_RELEASE);
		mproc__futex_wake(&g->open, INT_MAX);
		return;
	}
	while (__atomic_load_n(&g->open, __ATOMIC_ACQUIRE) == gen)
		mproc__futex_wait(&g->open, gen, MPROC__NO_DEADLINE);
}

/* ---- checksum ---- */

uint64_t bench_checksum(const void *p, size_t n)
{
	return mproc__fnv1a64(p, n);
}

/* ---- main ---- */

static void context_int(const char *key, long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", v);
	gbench_add_context(key, buf);
}

static void add_machine_context(void)
{
	const struct mproc_topo *t = bench_topo();
	struct mproc_topo_counts c;
	struct mproc_topo_budget b;

	gbench_add_context("mproc_version", mproc_version());
	gbench_add_context("hwloc_version", mproc_topo_hwloc_version());
	context_int("affinity_cpus", affinity_count());
	if (t && mproc_topo_counts(t, &c) == 0) {
		context_int("hwloc_cores", c.cores);
		context_int("hwloc_pus", c.pus);
		context_int("hwloc_numa_nodes", c.numa_nodes);
	}
	if (t && mproc_topo_budget(t, &b) == 0) {
		context_int("usable_cpus", b.usable);
		context_int("usable_cores", b.usable_cores);
		gbench_add_context("bound_by", b.bound_by ? b.bound_by : "unknown");
	} else {
		context_int("usable_cpus", bench_budget());
		gbench_add_context("bound_by", t ? "unknown" : "affinity (hwloc failed)");
	}
}

int bench_main(int argc, char **argv, void (*register_all)(void))
{
	/* Every harness compares its figures with each other (methods, back ends, placements,
	 * worker counts): their repetitions run randomly interleaved so a burst of load falls on
	 * all of them (an explicit --benchmark_enable_random_interleaving=false still wins). */
	gbench_interleave_repetitions();
	install_handlers();
	add_machine_context();
	return gbench_main(argc, argv, register_all);
}
