/* An independent minimal fork + _exit + waitpid loop (tests/test_floors.py): prints the
 * median ns of N calls. Usage: fork_exit N */
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
	int n = argc > 1 ? atoi(argv[1]) : 0, status;
	long long *v = calloc(n > 0 ? n : 1, sizeof(*v));

	if (n <= 0 || !v)
		return 2;
	for (int i = 0; i < n; i++) {
		long long t0 = now();
		pid_t p = fork();

		if (p == 0)
			_exit(0);
		if (p < 0 || waitpid(p, &status, 0) != p || status != 0)
			return 1;
		v[i] = now() - t0;
	}
	qsort(v, n, sizeof(*v), cmp);
	printf("%lld\n", v[n / 2]);
	return 0;
}
