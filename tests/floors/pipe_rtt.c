/* An independent minimal pipe round trip (tests/test_floors.py): parent and child on one PU,
 * 4 bytes there and back over two pipes; prints the median ns of N round trips.
 * Usage: pipe_rtt N PU */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
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

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[1]) : 0, a[2], b[2], x = 0;
	long long *v = calloc(n > 0 ? n : 1, sizeof(*v));
	cpu_set_t s;

	if (n <= 0 || !v || pipe(a) || pipe(b))
		return 2;
	CPU_ZERO(&s);
	CPU_SET(atoi(argv[2]), &s);
	if (sched_setaffinity(0, sizeof(s), &s))
		return 3;
	if (fork() == 0) {
		close(a[1]);    /* so that the parent's close is our EOF */
		while (read(a[0], &x, 4) == 4 && write(b[1], &x, 4) == 4)
			;
		_exit(0);
	}
	for (int i = -100; i < n; i++) {
		long long t0 = now();

		if (write(a[1], &i, 4) != 4 || read(b[0], &x, 4) != 4 || x != i)
			return 1;
		if (i >= 0)
			v[i] = now() - t0;
	}
	close(a[1]);
	wait(NULL);
	qsort(v, n, sizeof(*v), cmp);
	printf("%lld\n", v[n / 2]);
	return 0;
}
