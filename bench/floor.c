/*
 * floor.c - mproc-floor, the minimal process that measures the machine's floors for
 * bench_baseline (issue 17: "x baseline" must mean "x what this machine can do").
 *
 * A fork, a context switch or a cache-line transfer costs what the process that makes it
 * costs to copy and to schedule: measured inside the harness (a C++ program with Google
 * Benchmark, hwloc and libstdc++ mapped, and its sample buffers), a fork + _exit + waitpid
 * came out 1.1-1.75x slower than the same loop in a minimal C program on a second machine
 * type. So bench_baseline execs this program, linked with nothing but libc (statically
 * where the toolchain can), and only drives it: the probe runs here, between this process
 * and a child it forks itself, and the timings travel back over a pipe.
 *
 *	mproc-floor PROBE PU_A PU_B
 *
 * PROBE: cacheline_rtt, futex_rtt, pipe_rtt, eventfd_rtt (round trips between this process,
 * pinned to PU_A, and a forked child pinned to PU_B; -1 = not pinned; PU_A == PU_B is the
 * same-core case, where both ends sched_yield() while they wait), fork_exit (fork + _exit(0)
 * + waitpid), syscall (the raw getppid syscall). The probes are those bench_baseline.c
 * describes; every round trip is verified (the child echoes the sequence number).
 *
 * Protocol, after a warm-up: requests on stdin, one int64 n > 0 (run n operations; n a
 * multiple of the probe's batch, FLOOR_BATCH_CACHELINE / FLOOR_BATCH_SYSCALL, 1 for the
 * others) or 0 (stop). Reply on stdout: int64 status (0, or -errno: -ECHILD the peer died,
 * -ETIMEDOUT no answer in 10 s, -EBADMSG a wrong echo), then when 0: int64 total_ns (the sum
 * of the timed regions), int64 k, and k int64 samples (ns per operation, one per operation or
 * per batch). Exit 0 after a stop, 1 after a failed request, 2 on bad usage (one line).
 * `mproc-floor --version` prints the version of mproc it belongs to.
 *
 * It dies with its parent (PR_SET_PDEATHSIG, set by bench_fork and kept across exec), and
 * its child dies with it. Not named bench_*: the suite driver runs those as harnesses.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc/version.h"   /* macros only: nothing of libmproc is linked */

#include "floor.h"

#define WARMUP_ROUNDS 200
#define STOP UINT32_MAX
#define CL_STOP UINT64_MAX              /* never 2 * seq + 1 */
#define TIMEOUT_NS (INT64_C(10) * 1000000000)
#define EFD_CHILD_DIED (UINT64_C(1) << 40)
#define MAX_REQUEST (1 << 20)

struct shared {
	_Alignas(64) uint64_t line;     /* cacheline: odd = ping, even = pong */
	_Alignas(64) uint32_t ping;     /* futex: parent -> child */
	_Alignas(64) uint32_t pong;     /* futex: child -> parent */
	_Alignas(64) uint32_t ready;    /* the child is pinned and waiting */
	int yield;                      /* same core: waiters sched_yield() */
};

static struct shared *g_sh;
static int g_to_child[2] = { -1, -1 }, g_to_parent[2] = { -1, -1 };
static volatile sig_atomic_t g_child_died;
static volatile sig_atomic_t g_wake_fd = -1;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_sigchld(int sig)
{
	int saved = errno;
	uint64_t v = EFD_CHILD_DIED;

	(void)sig;
	g_child_died = 1;
	if (g_wake_fd >= 0 && write(g_wake_fd, &v, sizeof(v)) < 0) {
		/* the flag is set: nothing more to do */
	}
	errno = saved;
}

static int pin(int pu)
{
	cpu_set_t set;

	if (pu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(pu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

static int futex_wait(uint32_t *w, uint32_t v, int64_t deadline)
{
	int64_t left = deadline - now_ns();
	struct timespec ts;

	if (left <= 0)
		return -ETIMEDOUT;
	ts.tv_sec = left / 1000000000;
	ts.tv_nsec = left % 1000000000;
	if (syscall(SYS_futex, w, FUTEX_WAIT, v, &ts, NULL, 0) < 0 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

static void futex_wake(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* read/write exactly n bytes of a pipe or eventfd, retrying EINTR unless the child died. */
static ssize_t xfer(int fd, void *p, size_t n, bool wr)
{
	ssize_t r;

	do
		r = wr ? write(fd, p, n) : read(fd, p, n);
	while (r < 0 && errno == EINTR && !g_child_died);
	return r < 0 ? -errno : r;
}

/* ---- the child's side of each round trip ---- */

static int child_cacheline(void)
{
	uint64_t last = 0, v;

	for (;;) {
		while ((v = __atomic_load_n(&g_sh->line, __ATOMIC_ACQUIRE)) == last) {
			if (g_sh->yield)
				sched_yield();
		}
		if (v == CL_STOP)
			return 0;
		if (!(v & 1))
			return 3;
		last = v + 1;
		__atomic_store_n(&g_sh->line, last, __ATOMIC_RELEASE);
	}
}

static int child_futex(void)
{
	uint32_t last = 0, v;

	for (;;) {
		while ((v = __atomic_load_n(&g_sh->ping, __ATOMIC_ACQUIRE)) == last)
			syscall(SYS_futex, &g_sh->ping, FUTEX_WAIT, last, NULL, NULL, 0);
		if (v == STOP)
			return 0;
		last = v;
		__atomic_store_n(&g_sh->pong, v, __ATOMIC_RELEASE);
		futex_wake(&g_sh->pong);
	}
}

static int child_pipe(void)
{
	uint32_t v;
	ssize_t n;

	for (;;) {
		n = xfer(g_to_child[0], &v, sizeof(v), false);
		if (n == 0 || (n == 4 && v == STOP))
			return 0;
		if (n != 4)
			return 3;
		if (xfer(g_to_parent[1], &v, sizeof(v), true) != 4)
			return 4;
	}
}

/* Values: 1 = ping, 2 = stop (one message in flight at a time, so the counter never sums). */
static int child_eventfd(void)
{
	uint64_t v;

	for (;;) {
		if (xfer(g_to_child[0], &v, sizeof(v), false) != 8)
			return 3;
		if (v == 2)
			return 0;
		if (v != 1)
			return 4;
		if (xfer(g_to_parent[0], &v, sizeof(v), true) != 8)
			return 5;
	}
}

/* ---- the parent's side: one round trip with sequence number seq (1 .. STOP-1) ---- */

static int ping_cacheline(uint32_t seq)
{
	uint64_t want = 2 * (uint64_t)seq + 2;
	unsigned spins = 0;
	int64_t deadline = 0;

	__atomic_store_n(&g_sh->line, 2 * (uint64_t)seq + 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&g_sh->line, __ATOMIC_ACQUIRE) != want) {
		if (g_sh->yield)
			sched_yield();
		if (++spins % 4096 == 0) {
			if (g_child_died)
				return -ECHILD;
			if (!deadline)
				deadline = now_ns() + TIMEOUT_NS;
			else if (now_ns() > deadline)
				return -ETIMEDOUT;
		}
	}
	return 0;
}

static int ping_futex(uint32_t seq)
{
	int64_t deadline = now_ns() + TIMEOUT_NS;
	uint32_t v;

	__atomic_store_n(&g_sh->ping, seq, __ATOMIC_RELEASE);
	futex_wake(&g_sh->ping);
	while ((v = __atomic_load_n(&g_sh->pong, __ATOMIC_ACQUIRE)) != seq) {
		if (g_child_died)
			return -ECHILD;
		if (futex_wait(&g_sh->pong, v, deadline) == -ETIMEDOUT)
			return -ETIMEDOUT;
	}
	return 0;
}

static int ping_pipe(uint32_t seq)
{
	uint32_t v = seq;
	ssize_t n;

	n = xfer(g_to_child[1], &v, sizeof(v), true);
	if (n != 4)
		return n < 0 ? (int)n : -EIO;
	n = xfer(g_to_parent[0], &v, sizeof(v), false);
	if (n == 0)
		return -EPIPE;
	if (n < 0)
		return g_child_died ? -ECHILD : (int)n;
	return v == seq ? 0 : -EBADMSG;
}

static int ping_eventfd(uint32_t seq)
{
	uint64_t v = 1;

	(void)seq;
	if (xfer(g_to_child[0], &v, sizeof(v), true) != 8)
		return -EIO;
	if (xfer(g_to_parent[0], &v, sizeof(v), false) != 8)
		return g_child_died ? -ECHILD : -EIO;
	if (v >= EFD_CHILD_DIED)
		return -ECHILD;
	return v == 1 ? 0 : -EBADMSG;
}

static void stop_child(const char *probe)
{
	uint32_t s32 = STOP;
	uint64_t s64 = 2;

	if (!strcmp(probe, "cacheline_rtt")) {
		__atomic_store_n(&g_sh->line, CL_STOP, __ATOMIC_RELEASE);
	} else if (!strcmp(probe, "futex_rtt")) {
		__atomic_store_n(&g_sh->ping, STOP, __ATOMIC_RELEASE);
		futex_wake(&g_sh->ping);
	} else if (!strcmp(probe, "pipe_rtt")) {
		xfer(g_to_child[1], &s32, sizeof(s32), true);
	} else {
		xfer(g_to_child[0], &s64, sizeof(s64), true);
	}
}

/* ---- single-process probes ---- */

static int one_fork(void)
{
	int status;
	pid_t pid, w;

	pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return -errno;
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -ECHILD;
	return 0;
}

static int syscall_batch(pid_t want)
{
	long bad = 0;

	for (int i = 0; i < FLOOR_BATCH_SYSCALL; i++)
		bad |= syscall(SYS_getppid) ^ want;
	return bad ? -EBADMSG : 0;
}

/* ---- main ---- */

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_req(int64_t *n)
{
	size_t got = 0;

	while (got < sizeof(*n)) {
		ssize_t r = read(0, (char *)n + got, sizeof(*n) - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int usage(const char *msg)
{
	fprintf(stderr, "mproc-floor: %s (usage: mproc-floor cacheline_rtt|futex_rtt|pipe_rtt|"
		"eventfd_rtt|fork_exit|syscall PU_A PU_B; bench_baseline runs it)\n", msg);
	return 2;
}

int main(int argc, char **argv)
{
	int (*child)(void) = NULL, (*ping)(uint32_t) = NULL;
	const char *probe;
	int64_t *samples = NULL, n, cap = 0;
	pid_t peer = -1, parent = getpid(), ppid = getppid();
	struct sigaction sa;
	uint32_t seq = 0;
	char *end;
	long a, b;
	int batch = 1, rc = 0, e = 0;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("mproc-floor %d.%d.%d\n", MPROC_VERSION_MAJOR, MPROC_VERSION_MINOR,
		       MPROC_VERSION_PATCH);
		return 0;
	}
	if (argc != 4)
		return usage("wrong number of arguments");
	probe = argv[1];
	a = strtol(argv[2], &end, 10);
	if (*end || a < -1 || a >= CPU_SETSIZE)
		return usage("PU_A is not a CPU number or -1");
	b = strtol(argv[3], &end, 10);
	if (*end || b < -1 || b >= CPU_SETSIZE)
		return usage("PU_B is not a CPU number or -1");
	if (!strcmp(probe, "cacheline_rtt")) {
		child = child_cacheline, ping = ping_cacheline, batch = FLOOR_BATCH_CACHELINE;
	} else if (!strcmp(probe, "futex_rtt")) {
		child = child_futex, ping = ping_futex;
	} else if (!strcmp(probe, "pipe_rtt")) {
		child = child_pipe, ping = ping_pipe;
	} else if (!strcmp(probe, "eventfd_rtt")) {
		child = child_eventfd, ping = ping_eventfd;
	} else if (!strcmp(probe, "syscall")) {
		batch = FLOOR_BATCH_SYSCALL;
	} else if (strcmp(probe, "fork_exit") != 0) {
		return usage("unknown probe");
	}
	/* Die with the harness: bench_fork set PDEATHSIG before exec; set it again in case we
	 * were started otherwise, and give up if the parent is already gone. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != ppid || ppid == 1)
		return 1;
	if (pin((int)a) < 0) {
		perror("mproc-floor: sched_setaffinity");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	if (child) {
		/* Round trips only: a dead peer interrupts our waits (no SA_RESTART). fork_exit
		 * keeps SIGCHLD's default, as a plain fork loop does: a handler would run once
		 * per fork, a cost the floor does not have. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigchld;
		sa.sa_flags = SA_NOCLDSTOP;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGCHLD, &sa, NULL);
		g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    -1, 0);
		if (g_sh == MAP_FAILED) {
			perror("mproc-floor: mmap");
			return 1;
		}
		memset(g_sh, 0, sizeof(*g_sh));
		g_sh->yield = a == b;
		if (!strcmp(probe, "pipe_rtt")) {
			if (pipe2(g_to_child, O_CLOEXEC) < 0 || pipe2(g_to_parent, O_CLOEXEC) < 0) {
				perror("mproc-floor: pipe2");
				return 1;
			}
		} else if (!strcmp(probe, "eventfd_rtt")) {
			g_to_child[0] = eventfd(0, EFD_CLOEXEC);
			g_to_parent[0] = eventfd(0, EFD_CLOEXEC);
			if (g_to_child[0] < 0 || g_to_parent[0] < 0) {
				perror("mproc-floor: eventfd");
				return 1;
			}
			g_wake_fd = g_to_parent[0];
		}
		peer = fork();
		if (peer < 0) {
			perror("mproc-floor: fork");
			return 1;
		}
		if (peer == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
				_exit(127);
			if (pin((int)b) < 0)
				_exit(126);
			if (g_to_child[1] >= 0)
				close(g_to_child[1]);
			if (g_to_parent[1] >= 0)
				close(g_to_parent[0]);
			close(0);
			close(1);
			__atomic_store_n(&g_sh->ready, 1, __ATOMIC_RELEASE);
			_exit(child());
		}
		if (g_to_parent[1] >= 0) {      /* pipes: so that a dead child reads as EOF */
			close(g_to_child[0]);
			close(g_to_parent[1]);
		}
		while (!__atomic_load_n(&g_sh->ready, __ATOMIC_ACQUIRE) && !g_child_died)
			sched_yield();
		for (int i = 0; i < WARMUP_ROUNDS && e == 0; i++)
			e = ping(++seq);
	} else if (!strcmp(probe, "fork_exit")) {
		for (int i = 0; i < 10 && e == 0; i++)
			e = one_fork();
	}

	while (read_req(&n) == 0 && n > 0) {
		int64_t total = 0, k = 0, hdr[3];

		if (e == 0 && (n > MAX_REQUEST || n % batch))
			e = -EINVAL;
		/* Exactly the samples this request needs (requests repeat one size): a process
		 * with less mapped forks faster, and the floor is the least a fork costs. */
		if (e == 0 && n / batch != cap) {
			free(samples);
			cap = n / batch;
			samples = malloc(sizeof(*samples) * (size_t)cap);
			if (!samples) {
				cap = 0;
				e = -ENOMEM;
			}
		}
		for (int64_t i = 0; e == 0 && i < n; i += batch) {
			int64_t t0 = now_ns(), dt;

			if (ping) {
				for (int j = 0; j < batch && e == 0; j++) {
					e = ping(++seq);
					if (seq > STOP - 4096)
						seq = 0;
				}
			} else if (batch > 1) {
				e = syscall_batch(ppid);
			} else {
				e = one_fork();
			}
			dt = now_ns() - t0;
			total += dt;
			samples[k++] = dt / batch;
		}
		hdr[0] = e;
		hdr[1] = total;
		hdr[2] = k;
		if (write_all(1, hdr, e ? sizeof(hdr[0]) : sizeof(hdr)) < 0 ||
		    (e == 0 && write_all(1, samples, (size_t)k * sizeof(*samples)) < 0) || e) {
			rc = 1;
			break;
		}
	}
	if (e) {
		fprintf(stderr, "mproc-floor: %s: %s\n", probe, e == -ECHILD ? "the peer died" :
			strerror(-e));
		rc = 1;
	}
	if (peer > 0) {
		int status;

		if (!g_child_died && !e)
			stop_child(probe);
		else
			kill(peer, SIGKILL);
		while (waitpid(peer, &status, 0) < 0 && errno == EINTR)
			;
		if (!rc && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
			rc = 1;
	}
	free(samples);
	return rc;
}
