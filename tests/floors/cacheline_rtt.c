/* An independent minimal cache-line ping-pong (tests/test_floors.py): parent on PU A, child
 * on PU B, one shared word; prints the median ns per round trip over batches of 32.
 * Usage: cacheline_rtt BATCHES A B */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s))
		_exit(3);
}

int main(int argc, char **argv)
{
	int n = argc > 3 ? atoi(argv[1]) : 0;
	volatile long *w = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long long *v = calloc(n > 0 ? n : 1, sizeof(*v));
	long k = 0;
	pid_t p;

	if (n <= 0 || !v || w == MAP_FAILED)
		return 2;
	p = fork();
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);       /* never spin on after the parent */
		pin(atoi(argv[3]));
		for (long last = 0;; last += 2) {
			while (*w == last)
				;
			if (*w < 0)
				_exit(0);
			*w = last + 2;
		}
	}
	pin(atoi(argv[2]));
	for (int i = -10; i < n; i++) {
		long long t0 = now();

		for (int j = 0; j < 32; j++) {
			*w = ++k * 2 - 1;
			while (*w != k * 2)
				;
		}
		if (i >= 0)
			v[i] = (now() - t0) / 32;
	}
	*w = -1;
	waitpid(p, NULL, 0);
	qsort(v, n, sizeof(*v), cmp);
	printf("%lld\n", v[n / 2]);
	return 0;
}
