/*
 * fork_steps.c - what each step of mproc's fork start costs, beside a bare fork (issue 4).
 *
 * spawn/fork (start -> reap through the library) is measured against a bare fork + _exit +
 * waitpid. The library does more, on purpose: a parent-death pipe, a blocked signal mask across
 * fork, PR_SET_PDEATHSIG and the process name, a pidfd for the sentinel. This tool times a bare
 * fork with each of those steps added alone (the same system calls, made the way process.c
 * makes them: inline in the child), all of them together, and the library itself, so the gap
 * can be told apart into its causes. Variants run interleaved, one iteration each in turn, so a
 * machine whose speed drifts (a VM, other load) slows them alike; the figure is the median of
 * all iterations of a variant, and its ratio to the bare fork's.
 *
 *   build/tools/fork_steps [-n iterations] [-r rounds] [-s] [-H] [-f] [variant...]
 *   build/tools/fork_steps --version
 *
 * -s starts a forkserver first, as bench_spawn does (each fork child then closes its socket).
 * -H installs handlers for SIGTERM and SIGINT first, as the harnesses do (the library's fork
 * child then resets them, and keeps signals blocked until it has).
 * -f adds the mean minor page faults per iteration of the parent (the whole cycle: a page it
 * writes each cycle faults once, since every fork write-protects it again) and of the child
 * (RUSAGE_CHILDREN), from getrusage around each iteration, outside the timed part. To see
 * which code touched which page: `perf record -e page-faults:u -c 1 -d` over a run.
 *
 * Variants: raw, death_pipe, sigmask, pdeath (PR_SET_PDEATHSIG + the getppid re-check), name
 * (PR_SET_NAME), pidfd, sig_reset, sig_query, heap_write, steps (death_pipe + sigmask + pdeath +
 * name + pidfd + sig_query: what the library does), mproc
 * (mproc_process_start + _join; _new and _free untimed). Default: all of them.
 * sig_reset is the child resetting the 5 stop signals itself (the library did until issue 4's
 * last round; now the parent asks which need it: sig_query); heap_write is the parent writing
 * an object on the heap right after fork (the process object did, before it moved to a
 * wipe-on-fork arena): a copy-on-write fault while the child lives.
 * Exit status: 0, 1 (a child failed), 2 (bad usage: one line on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "process_internal.h"

#define CODE 42

enum {
	S_DEATH_PIPE = 1 << 0,
	S_SIGMASK = 1 << 1,
	S_PDEATH = 1 << 2,
	S_PIDFD = 1 << 3,
	S_SIG_RESET = 1 << 4,
	S_SIG_QUERY = 1 << 5,
	S_HEAP_WRITE = 1 << 6,
	S_MPROC = 1 << 7,
	S_NAME = 1 << 8,
};

static const struct {
	const char *name;
	unsigned steps;
} variants[] = {
	{ "raw", 0 },
	{ "death_pipe", S_DEATH_PIPE },
	{ "sigmask", S_SIGMASK },
	{ "pdeath", S_PDEATH },
	{ "name", S_NAME },
	{ "pidfd", S_PIDFD },
	{ "sig_reset", S_SIG_RESET },
	{ "sig_query", S_SIG_QUERY },
	{ "heap_write", S_HEAP_WRITE },
	{ "steps", S_DEATH_PIPE | S_SIGMASK | S_PDEATH | S_NAME | S_PIDFD | S_SIG_QUERY },
	{ "mproc", S_MPROC },
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

struct obj {
	pid_t pid;
	int pidfd, death_wr;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int child_noop(void *arg)
{
	return CODE;
}

static int64_t one_mproc(void)
{
	struct mproc_process_opts o = { .method = MPROC_START_FORK };
	struct mproc_process *p;
	int64_t t0, t1;
	int r, code = -1;

	r = mproc_process_new(&p, child_noop, NULL, &o);
	if (r < 0)
		return r;
	t0 = now_ns();
	r = mproc_process_start(p);
	if (r == 0)
		r = mproc_process_join(p, MPROC_FOREVER);
	t1 = now_ns();
	if (r == 0)
		r = mproc_process_exitcode(p, &code);
	mproc_process_free(p);
	if (r == 0 && code != CODE)
		r = -EBADMSG;
	return r < 0 ? r : t1 - t0;
}

/* One fork start -> reap with the given steps; the ns it took, or -errno. */
static int64_t one(unsigned s, struct obj *heap, const char *name)
{
	int dp[2] = { -1, -1 }, status, pidfd = -1;
	unsigned long ksa_default[8] = { 0 };
	uint64_t reset = 0;
	sigset_t all, old;
	pid_t pid, me = getpid(), w;
	int64_t t0, dt;

	if (s & S_MPROC)
		return one_mproc();
	t0 = now_ns();
	if ((s & S_DEATH_PIPE) && pipe2(dp, O_CLOEXEC) < 0)
		return -errno;
	if (s & S_SIGMASK) {
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
	}
	if (s & S_SIG_QUERY)
		reset = mproc__stop_signals_changed();
	if (s & S_SIG_RESET)
		reset = MPROC__STOP_SIGNALS;
	pid = fork();
	if (pid == 0) {
		const uint64_t none = 0;

		if (s & S_DEATH_PIPE)
			mproc__sys5(SYS_close, dp[1], 0, 0, 0, 0);
		for (int sig = 1; reset && sig < 64; sig++) {
			if (reset & 1ULL << sig)
				mproc__sys5(SYS_rt_sigaction, sig, (long)ksa_default, 0, 8, 0);
		}
		if (s & S_PDEATH) {
			mproc__sys5(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			if (mproc__sys5(SYS_getppid, 0, 0, 0, 0, 0) != me)
				_exit(128 + SIGKILL);
		}
		if (s & S_NAME) {
			char comm[16];
			size_t n;

			for (n = 0; name[n] && n < sizeof(comm) - 1; n++)
				comm[n] = name[n];
			comm[n] = '\0';
			mproc__sys5(SYS_prctl, PR_SET_NAME, (long)comm, 0, 0, 0);
		}
		if (s & S_DEATH_PIPE) {
			struct pollfd pfd = { .fd = dp[0], .events = POLLIN };
			struct timespec zero = { 0, 0 };

			mproc__sys5(SYS_fcntl, dp[0], F_SETSIG, SIGKILL, 0, 0);
			mproc__sys5(SYS_fcntl, dp[0], F_SETOWN, mproc__sys5(SYS_getpid, 0, 0, 0, 0, 0),
				    0, 0);
			mproc__sys5(SYS_fcntl, dp[0], F_SETFL, O_ASYNC, 0, 0);
			if (mproc__sys5(SYS_ppoll, (long)&pfd, 1, (long)&zero, 0, 0) > 0 &&
			    (pfd.revents & POLLHUP))
				_exit(128 + SIGKILL);
		}
		if (s & S_SIGMASK)
			mproc__sys5(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, sizeof(none), 0);
		for (;;)
			mproc__sys5(SYS_exit_group, CODE, 0, 0, 0, 0);
	}
	if (s & S_SIGMASK)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -errno;
	if (s & S_DEATH_PIPE)
		close(dp[0]);
	if (s & S_PIDFD)
		pidfd = mproc__pidfd_open(pid);
	if (s & S_HEAP_WRITE) {
		heap->pid = pid;
		heap->death_wr = dp[1];
		heap->pidfd = pidfd;
	}
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	dt = now_ns() - t0;
	if (pidfd >= 0)
		close(pidfd);
	if (dp[1] >= 0)
		close(dp[1]);
	if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != CODE)
		return -EBADMSG;
	return dt;
}

static void on_signal(int sig)
{
	signal(sig, SIG_DFL);
	raise(sig);
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Bad usage: one line, the problem and the way out. */
static int usage(const char *problem)
{
	fprintf(stderr, "fork_steps: %s (usage: fork_steps [-n iterations] [-r rounds] [-s] [-H] "
		"[-f] [variant...]; variants:", problem);
	for (size_t i = 0; i < NVARIANTS; i++)
		fprintf(stderr, " %s", variants[i].name);
	fprintf(stderr, ")\n");
	return 2;
}

int main(int argc, char **argv)
{
	long n = 200, rounds = 5;
	size_t pick[NVARIANTS], npick = 0;
	int64_t *ns[NVARIANTS], raw_med = 0;
	long flt_parent[NVARIANTS] = { 0 }, flt_child[NVARIANTS] = { 0 };
	bool faults = false;
	struct obj *heap;
	char *name;
	int opt;

	mproc_main_hook(argc, argv);
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("fork_steps (mproc) %d.%d.%d\n", MPROC_VERSION_MAJOR, MPROC_VERSION_MINOR,
		       MPROC_VERSION_PATCH);
		return 0;
	}
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char bad[128];

		if (strncmp(argv[i], "--", 2) != 0)
			continue;
		/* getopt would read a long option as a cluster of short ones */
		snprintf(bad, sizeof(bad), "unknown option '%.80s'", argv[i]);
		return usage(bad);
	}
	opterr = 0;     /* getopt's own message would be a second line */
	while ((opt = getopt(argc, argv, "n:r:sHfh")) != -1) {
		char *end;

		if (opt == 'f') {
			faults = true;
		} else if (opt == 'H') {
			/* As the harnesses do: handlers for SIGTERM and SIGINT (cleanup on ^C). */
			struct sigaction sa;

			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_signal;
			sigaction(SIGTERM, &sa, NULL);
			sigaction(SIGINT, &sa, NULL);
		} else if (opt == 's') {
			/* As in bench_spawn: every fork child then closes the server's socket. */
			if (mproc_forkserver_start() < 0)
				fprintf(stderr, "fork_steps: no forkserver\n");
		} else if (opt == 'n' || opt == 'r') {
			long v = strtol(optarg, &end, 10);

			if (*end || v <= 0 || v > 100000) {
				fprintf(stderr, "fork_steps: -%c wants 1..100000, not '%s'\n", opt,
					optarg);
				return 2;
			}
			*(opt == 'n' ? &n : &rounds) = v;
		} else if (opt == 'h') {
			printf("usage: fork_steps [-n iterations] [-r rounds] [-s] [-H] [-f] "
			       "[variant...] (see the header of tools/fork_steps.c)\n");
			return 0;
		} else {
			char bad[64];

			if (optopt == 'n' || optopt == 'r')
				snprintf(bad, sizeof(bad), "-%c needs a value", optopt);
			else
				snprintf(bad, sizeof(bad), "unknown option -%c", optopt);
			return usage(bad);
		}
	}
	for (int i = optind; i < argc; i++) {
		size_t k = 0;

		while (k < NVARIANTS && strcmp(argv[i], variants[k].name))
			k++;
		if (k == NVARIANTS || npick == NVARIANTS) {
			char bad[128];

			snprintf(bad, sizeof(bad), "unknown variant '%.80s'", argv[i]);
			return usage(bad);
		}
		pick[npick++] = k;
	}
	if (!npick) {
		for (size_t k = 0; k < NVARIANTS; k++)
			pick[npick++] = k;
	}
	heap = malloc(sizeof(*heap));
	name = strdup("mproc-fork");
	if (!heap || !name)
		return 1;
	memset(heap, 0, sizeof(*heap));
	/* One start through the library first, whatever the variants: its atfork handlers and
	 * arena are then in place for every variant, as in any process that uses it (and in
	 * bench_spawn's fork_raw). */
	if (one_mproc() < 0)
		return 1;
	for (size_t v = 0; v < npick; v++) {
		ns[v] = calloc((size_t)(n * rounds), sizeof(int64_t));
		if (!ns[v] || one(variants[pick[v]].steps, heap, name) < 0)    /* warm up */
			return 1;
	}
	for (long i = 0; i < n * rounds; i++) {
		for (size_t v = 0; v < npick; v++) {
			struct rusage s0, s1, c0, c1;
			int64_t t;

			if (faults) {
				getrusage(RUSAGE_SELF, &s0);
				getrusage(RUSAGE_CHILDREN, &c0);
			}
			t = one(variants[pick[v]].steps, heap, name);
			if (faults) {
				getrusage(RUSAGE_SELF, &s1);
				getrusage(RUSAGE_CHILDREN, &c1);
				flt_parent[v] += s1.ru_minflt - s0.ru_minflt;
				flt_child[v] += c1.ru_minflt - c0.ru_minflt;
			}

			if (t < 0) {
				fprintf(stderr, "fork_steps: %s: %s\n", variants[pick[v]].name,
					mproc_strerror((int)t));
				return 1;
			}
			ns[v][i] = t;
		}
		if (isatty(2) && (i + 1) % n == 0)
			fprintf(stderr, "\rround %ld/%ld", (i + 1) / n, rounds);
	}
	if (isatty(2))
		fprintf(stderr, "\n");
	printf("%-12s %10s %10s %10s %7s", "variant", "p50_us", "p25_us", "p75_us", "x_raw");
	if (faults)
		printf(" %11s %10s", "parent_flt", "child_flt");
	printf("\n");
	for (size_t v = 0; v < npick; v++) {
		size_t m = (size_t)(n * rounds);
		int64_t med;

		qsort(ns[v], m, sizeof(int64_t), cmp64);
		med = ns[v][m / 2];
		if (variants[pick[v]].steps == 0)
			raw_med = med;
		printf("%-12s %10.1f %10.1f %10.1f", variants[pick[v]].name, (double)med / 1e3,
		       (double)ns[v][m / 4] / 1e3, (double)ns[v][3 * m / 4] / 1e3);
		printf(" %7.3f", raw_med ? (double)med / (double)raw_med : 0.0);
		if (faults)
			printf(" %11.2f %10.2f", (double)flt_parent[v] / (double)m,
			       (double)flt_child[v] / (double)m);
		printf("\n");
		free(ns[v]);
	}
	free(heap);
	free(name);
	mproc_forkserver_stop();
	return 0;
}
