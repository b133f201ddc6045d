/*
 * fork_faults.c - page faults, context switches and time of one fork start->reap, per side
 * (issue 4): a bare fork + _exit + waitpid beside mproc's fork method, as bench_spawn times them
 * (spawn/fork_raw and spawn/fork: new, then start + join timed, then exitcode and free).
 * A diagnostic (built by meson, tools/meson.build), run by hand beside
 * `perf record -e page-faults:u -c 1 -d` (which code touched which page: user-mode faults only)
 * and `strace -f -c` (system calls).
 *
 *   build/tools/fork_faults raw|mproc [iterations] [rounds]
 *
 * As in bench_spawn, a forkserver runs (every fork child resets the forkserver state it
 * inherits); MPROC_FORK_FAULTS_NO_FORKSERVER=1 leaves it out.
 * Rounds alternate raw and mproc when the mode is "both". Prints, per round and mode, the
 * median ns of the timed part and the mean minor faults per iteration of the parent (the whole
 * cycle: each page it writes per cycle faults once, since every fork write-protects it again)
 * and of the child (RUSAGE_CHILDREN), and the parent's voluntary/involuntary switches.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

#define CODE 42

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

static int64_t one_raw(void)
{
	int64_t t0 = now_ns();
	int status;
	pid_t pid, w;

	pid = fork();
	if (pid == 0)
		_exit(CODE);
	if (pid < 0)
		return -errno;
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != CODE)
		return -EBADMSG;
	return now_ns() - t0;
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
	if (r == 0 && code != CODE)
		r = -EBADMSG;
	mproc_process_free(p);
	return r < 0 ? r : t1 - t0;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int round_of(bool raw, int n, int64_t *ns)
{
	struct rusage s0, s1, c0, c1;
	int64_t t;

	getrusage(RUSAGE_SELF, &s0);
	getrusage(RUSAGE_CHILDREN, &c0);
	for (int i = 0; i < n; i++) {
		t = raw ? one_raw() : one_mproc();
		if (t < 0) {
			fprintf(stderr, "fork_faults: %s\n", mproc_strerror((int)t));
			return 1;
		}
		ns[i] = t;
	}
	getrusage(RUSAGE_SELF, &s1);
	getrusage(RUSAGE_CHILDREN, &c1);
	qsort(ns, (size_t)n, sizeof(*ns), cmp64);
	printf("%-5s median %7.1f us  parent minflt %5.2f  child minflt %5.2f  parent nvcsw %4.2f "
	       "nivcsw %4.2f\n", raw ? "raw" : "mproc", (double)ns[n / 2] / 1e3,
	       (double)(s1.ru_minflt - s0.ru_minflt) / n, (double)(c1.ru_minflt - c0.ru_minflt) / n,
	       (double)(s1.ru_nvcsw - s0.ru_nvcsw) / n, (double)(s1.ru_nivcsw - s0.ru_nivcsw) / n);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "both";
	int n = argc > 2 ? atoi(argv[2]) : 200, rounds = argc > 3 ? atoi(argv[3]) : 5;
	int64_t *ns;

	mproc_main_hook(argc, argv);    /* the forkserver runs this image */
	if (n <= 0 || rounds <= 0 || (strcmp(mode, "raw") && strcmp(mode, "mproc") &&
				      strcmp(mode, "both"))) {
		fprintf(stderr, "usage: fork_faults raw|mproc|both [iterations] [rounds]\n");
		return 2;
	}
	ns = calloc((size_t)n, sizeof(*ns));
	if (!ns)
		return 1;
	if (!getenv("MPROC_FORK_FAULTS_NO_FORKSERVER") && mproc_forkserver_start() < 0)
		fprintf(stderr, "fork_faults: no forkserver\n");
	/* Warm up both paths (the pidfd probe, lazily touched pages). */
	if (one_raw() < 0 || one_mproc() < 0)
		return 1;
	for (int r = 0; r < rounds; r++) {
		if (strcmp(mode, "mproc") && round_of(true, n, ns))
			return 1;
		if (strcmp(mode, "raw") && round_of(false, n, ns))
			return 1;
	}
	free(ns);
	mproc_forkserver_stop();
	return 0;
}
