/*
 * futures.c - concurrent.futures' ProcessPoolExecutor: submit, then take the results as they
 * complete. The C twin of
 *
 *	with ProcessPoolExecutor(max_workers=4) as ex:
 *	    futures = [ex.submit(slow_square, n) for n in range(8)]
 *	    for fut in as_completed(futures):
 *	        print(fut.result())         # in completion order, not submission order
 *
 * MPROC_POOL_BREAK_ON_DEATH makes a worker's death break the pool as ProcessPoolExecutor does
 * (without it, mproc fails only the dead worker's task and replaces the worker).
 * Exit 0 when every future completed once with the right result, 1 otherwise.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mproc.h>

#define N 8

/* A task of n takes (N - n) ms, so the later ones tend to finish first. */
static ssize_t slow_square(const void *task, size_t len, void *result, size_t max, void *arg)
{
	int64_t n;

	if (len != sizeof(n) || max < sizeof(n))
		return -EINVAL;
	memcpy(&n, task, sizeof(n));
	nanosleep(&(struct timespec){ .tv_nsec = (N - n) * 1000000L }, NULL);
	n *= n;
	memcpy(result, &n, sizeof(n));
	return sizeof(n);
}
MPROC_POOL_TASK("slow_square", slow_square)

int main(int argc, char **argv)
{
	struct mproc_pool_opts o = { .workers = 4, .fn = slow_square, .task_max = sizeof(int64_t),
				     .result_max = sizeof(int64_t),
				     .flags = MPROC_POOL_BREAK_ON_DEATH };
	struct mproc_result *futures[N] = { NULL };
	struct mproc_as_completed *it = NULL;
	struct mproc_pool *ex = NULL;
	int seen[N] = { 0 }, wrong = 0;
	ssize_t i;
	int r;

	mproc_main_hook(argc, argv);
	r = mproc_pool_new(&ex, &o);
	for (int64_t n = 0; r == 0 && n < N; n++)
		r = mproc_pool_submit(ex, &n, sizeof(n), &futures[n]);   /* copied at once */
	if (r == 0)
		r = mproc_as_completed_new(&it, futures, N);
	while (r == 0 && (i = mproc_as_completed_next(it, 30.0)) != MPROC_EOF) {
		int64_t sq = -1;

		if (i < 0 || mproc_result_get(futures[i], &sq, sizeof(sq), 0) < 0) {
			r = i < 0 ? (int)i : -EIO;
			break;
		}
		printf("future %zd: %lld\n", i, (long long)sq);
		wrong |= sq != i * i || seen[i]++;
	}
	if (r == 0)
		r = mproc_pool_shutdown(ex, true, false);       /* leaving the with-block */
	if (r < 0)
		fprintf(stderr, "futures: %s\n", mproc_strerror(r));
	for (int k = 0; k < N; k++)
		wrong |= !seen[k];
	mproc_as_completed_free(it);
	for (int k = 0; k < N; k++)
		mproc_result_free(futures[k]);
	mproc_pool_free(ex);
	return r < 0 || wrong;
}
