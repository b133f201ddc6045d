/* test_bench_util.c - the harness helpers (bench/bench_util.h): nearest-rank percentiles,
 * shared memory, pairs of PUs, children that are pinned, reaped and die with the harness
 * (PR_SET_PDEATHSIG, the SIGTERM handler of bench_main), the start gate, FNV-1a. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "tap.h"

/* ---- samples ---- */

static void t_percentiles(void *arg)
{
	struct bench_samples s;

	ASSERT_OK(bench_samples_init(&s, 100));
	CHECK_EQ(bench_samples_pct(&s, 0.5), 0);        /* empty */
	for (int64_t v = 100; v >= 1; v--)              /* unsorted on purpose */
		bench_samples_add(&s, v);
	bench_samples_add(&s, 1000);                    /* over cap: dropped */
	CHECK_EQ(s.n, 100);
	CHECK_EQ(s.dropped, 1);
	/* Nearest rank: the ceil(p * n)-th smallest. */
	CHECK_EQ(bench_samples_pct(&s, 0.50), 50);
	CHECK_EQ(bench_samples_pct(&s, 0.99), 99);
	CHECK_EQ(bench_samples_pct(&s, 0.999), 100);
	CHECK_EQ(bench_samples_pct(&s, 0.0), 1);
	CHECK_EQ(bench_samples_pct(&s, 1.0), 100);
	CHECK_EQ(bench_samples_pct(&s, 0.011), 2);
	bench_samples_free(&s);
	CHECK(s.ns == NULL);
	bench_samples_free(&s);                         /* twice is fine */
	bench_samples_free(NULL);

	ASSERT_OK(bench_samples_init(&s, 1));
	bench_samples_add(&s, 42);
	CHECK_EQ(bench_samples_pct(&s, 0.5), 42);
	CHECK_EQ(bench_samples_pct(&s, 0.999), 42);
	bench_samples_free(&s);
}

static void t_samples_bad_input(void *arg)
{
	struct bench_samples s;

	CHECK_ERR(bench_samples_init(&s, 0), -EINVAL);
	CHECK(s.ns == NULL);
	bench_samples_free(&s);
	CHECK_ERR(bench_samples_init(&s, SIZE_MAX / 4), -ENOMEM);
}

/* ---- shared memory, checksum ---- */

static void t_shared(void *arg)
{
	uint64_t *p = bench_shared_alloc(4096);
	pid_t pid;
	int status;

	ASSERT(p != NULL);
	CHECK_EQ(p[0], 0);
	CHECK_EQ(p[511], 0);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		p[1] = 0xfeed;
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(p[1], 0xfeed);
	bench_shared_free(p, 4096);
	CHECK(bench_shared_alloc(0) == NULL);
	bench_shared_free(NULL, 0);
}

static void t_checksum(void *arg)
{
	/* FNV-1a 64 reference values (Fowler/Noll/Vo test vectors). */
	CHECK(bench_checksum("", 0) == UINT64_C(0xcbf29ce484222325));
	CHECK(bench_checksum("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
	CHECK(bench_checksum("foobar", 6) == UINT64_C(0x85944171f73967e8));
}

/* ---- topology and children ---- */

static void t_pair(void *arg)
{
	int a = -1, b = -1, r;

	CHECK(bench_budget() >= 1);
	ASSERT_OK(bench_pair(MPROC_TOPO_SAME_CORE, &a, &b));
	CHECK(a >= 0);
	CHECK_EQ(a, b);
	r = bench_pair(MPROC_TOPO_CROSS_CORE, &a, &b);
	if (r == -ENODEV) {
		CHECK_EQ(bench_budget(), 1);
	} else {
		CHECK_OK(r);
		CHECK_NE(a, b);
	}
	CHECK_ERR(bench_pair((enum mproc_topo_placement)42, &a, &b), -EINVAL);
}

static int child_ret(void *arg)
{
	return (int)(intptr_t)arg;
}

static int child_crash(void *arg)
{
	raise(SIGUSR2);     /* not SIGSEGV (ASan catches it), not SIGUSR1 (== ECHILD) */
	return 0;
}

static _Noreturn int child_sleep(void *arg)
{
	for (;;)
		pause();
}

/* Says it is running (after bench_fork set PR_SET_PDEATHSIG), then sleeps. */
static _Noreturn int child_ready_sleep(void *arg)
{
	int fd = (int)(intptr_t)arg;

	if (write(fd, "x", 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

static int child_check_pin(void *arg)
{
	cpu_set_t set;
	int pu = (int)(intptr_t)arg;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 2;
	return CPU_COUNT(&set) == 1 && CPU_ISSET(pu, &set) ? 0 : 1;
}

static void t_fork_reap(void *arg)
{
	int a, b;
	pid_t pid;

	pid = bench_fork(-1, child_ret, (void *)(intptr_t)7);
	ASSERT(pid > 0);
	CHECK_EQ(bench_reap(pid, false), 7);

	pid = bench_fork(-1, child_crash, NULL);
	ASSERT(pid > 0);
	CHECK_EQ(bench_reap(pid, false), -SIGUSR2);

	pid = bench_fork(-1, child_sleep, NULL);
	ASSERT(pid > 0);
	CHECK_EQ(bench_reap(pid, true), -SIGKILL);

	ASSERT_OK(bench_pair(MPROC_TOPO_SAME_CORE, &a, &b));
	pid = bench_fork(a, child_check_pin, (void *)(intptr_t)a);
	ASSERT(pid > 0);
	CHECK_EQ(bench_reap(pid, false), 0);
}

static void t_fork_bad_input(void *arg)
{
	CHECK_ERR(bench_fork(-1, NULL, NULL), -EINVAL);
	CHECK_ERR(bench_reap(0, false), -EINVAL);
	CHECK_ERR(bench_reap(-5, true), -EINVAL);
	CHECK_ERR(bench_reap(getpid(), false), -ECHILD);       /* not our child */
	/* A PU that does not exist: the child cannot pin and exits 126, never runs fn. */
	pid_t pid = bench_fork(CPU_SETSIZE - 1, child_ret, (void *)0);

	ASSERT(pid > 0);
	CHECK_EQ(bench_reap(pid, false), 126);
}

/* The harness dies without reaping: its bench_fork() child must die too (PDEATHSIG). The
 * case runs as a subreaper, so the orphan comes back to us and we can see how it ended. */
static void t_child_dies_with_harness(void *arg)
{
	int fds[2], ready[2], status;
	pid_t harness, child = 0;

	ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
	harness = fork();
	ASSERT(harness >= 0);
	if (harness == 0) {
		pid_t c = bench_fork(-1, child_ready_sleep, (void *)(intptr_t)ready[1]);
		char x;

		/* Kill the harness only once the child runs: before its prctl, the child would
		 * see the new parent and _exit(127) instead (also correct, but not this case). */
		if (c < 0 || read(ready[0], &x, 1) != 1)
			_exit(1);
		if (write(fds[1], &c, sizeof(c)) != sizeof(c))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	close(ready[0]);
	close(ready[1]);
	ASSERT_EQ(read(fds[0], &child, sizeof(child)), sizeof(child));
	close(fds[0]);
	ASSERT(child > 0);
	kill(harness, SIGKILL);
	ASSERT_EQ(waitpid(harness, &status, 0), harness);
	ASSERT_EQ(waitpid(child, &status, 0), child);
	CHECK(WIFSIGNALED(status));
	CHECK_EQ(WTERMSIG(status), SIGKILL);
}

/* bench_main's SIGTERM handler kills and reaps the children, then the harness dies of
 * SIGTERM itself. */
static int g_pid_fd = -1;

static void bm_hang(struct gbench_state *st, void *arg)
{
	pid_t c = bench_fork(-1, child_sleep, NULL);

	if (write(g_pid_fd, &c, sizeof(c)) != sizeof(c))
		_exit(1);
	for (;;)
		pause();
}

static void register_hang(void)
{
	gbench_register("test/hang", bm_hang, NULL);
}

static void t_sigterm_kills_children(void *arg)
{
	int fds[2], status;
	pid_t harness, child = 0;

	ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
	harness = fork();
	ASSERT(harness >= 0);
	if (harness == 0) {
		char *argv[] = { (char *)"test_bench_util", (char *)"--profile=smoke", NULL };
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* Google Benchmark's console output would corrupt our TAP stream. */
		dup2(devnull, 1);
		dup2(devnull, 2);
		g_pid_fd = fds[1];
		_exit(bench_main(2, argv, register_hang));
	}
	close(fds[1]);
	ASSERT_EQ(read(fds[0], &child, sizeof(child)), sizeof(child));
	close(fds[0]);
	ASSERT(child > 0);
	kill(harness, SIGTERM);
	ASSERT_EQ(waitpid(harness, &status, 0), harness);
	CHECK(WIFSIGNALED(status));
	CHECK_EQ(WTERMSIG(status), SIGTERM);
	/* Reaped by the handler: neither running nor a zombie waiting for us. */
	CHECK_ERR(waitpid(child, &status, WNOHANG) < 0 ? -errno : 0, -ECHILD);
	CHECK_EQ(kill(child, 0) < 0 ? errno : 0, ESRCH);
}

/* ---- gate ---- */

struct gate_test {
	struct bench_gate gate;
	uint32_t count;
	uint32_t bad;
};

#define GATE_PARTIES 4
#define GATE_ROUNDS 200

static int gate_party(void *arg)
{
	struct gate_test *g = arg;

	for (uint32_t r = 1; r <= GATE_ROUNDS; r++) {
		__atomic_add_fetch(&g->count, 1, __ATOMIC_ACQ_REL);
		bench_gate_wait(&g->gate, GATE_PARTIES);
		/* Everyone arrived for round r before anyone left it. */
		if (__atomic_load_n(&g->count, __ATOMIC_ACQUIRE) < r * GATE_PARTIES)
			__atomic_add_fetch(&g->bad, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

static void t_gate(void *arg)
{
	struct gate_test *g = bench_shared_alloc(sizeof(*g));
	pid_t pids[GATE_PARTIES - 1];

	ASSERT(g != NULL);
	bench_gate_init(&g->gate);
	for (int i = 0; i < GATE_PARTIES - 1; i++) {
		pids[i] = bench_fork(-1, gate_party, g);
		ASSERT(pids[i] > 0);
	}
	gate_party(g);
	for (int i = 0; i < GATE_PARTIES - 1; i++)
		CHECK_EQ(bench_reap(pids[i], false), 0);
	CHECK_EQ(g->count, GATE_PARTIES * GATE_ROUNDS);
	CHECK_EQ(g->bad, 0);
	bench_gate_wait(&g->gate, 1);   /* one party never waits */
	bench_shared_free(g, sizeof(*g));
}

int main(int argc, char **argv)
{
	tap_add("bench_util/samples/percentiles", t_percentiles, NULL);
	tap_add("bench_util/samples/bad_input", t_samples_bad_input, NULL);
	tap_add("bench_util/shared/fork_visible", t_shared, NULL);
	tap_add("bench_util/checksum/fnv1a", t_checksum, NULL);
	tap_add("bench_util/pair/placements", t_pair, NULL);
	tap_add("bench_util/fork/reap_status", t_fork_reap, NULL);
	tap_add("bench_util/fork/bad_input", t_fork_bad_input, NULL);
	tap_add("bench_util/fork/dies_with_harness", t_child_dies_with_harness, NULL);
	tap_add("bench_util/main/sigterm_kills_children", t_sigterm_kills_children, NULL);
	tap_add("bench_util/gate/rounds", t_gate, NULL);
	return tap_run(argc, argv);
}
