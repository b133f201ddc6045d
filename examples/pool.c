/*
 * pool.c - a Pool of 4 workers: map, and apply_async with a result handle to wait on.
 * The C twin of
 *
 *	def square(x):
 *	    return x * x
 *
 *	with Pool(processes=4) as pool:
 *	    print(pool.map(square, range(10)))       # [0, 1, 4, ..., 81]
 *	    res = pool.apply_async(square, (20,))    # runs in a worker; we go on meanwhile
 *	    print(res.get(timeout=10))               # 400
 *
 *	build/examples/pool [fork|spawn|forkserver|vfork|posix_spawn]      (default: fork)
 *
 * What C makes explicit:
 *  - Tasks and results are bytes: here one int64_t each (opts.task_max / result_max).
 *  - Workers started by spawn, forkserver, vfork or posix_spawn are a fresh image of this
 *    program: the task function is found by name (MPROC_POOL_TASK) and main() calls
 *    mproc_main_hook() first. Under fork both are harmless.
 *  - `with Pool(...)` is mproc_pool_close + mproc_pool_join (or _terminate) + mproc_pool_free.
 * Exit 0 when every result is right, 1 otherwise.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mproc.h>

/* Runs in a worker: one int64_t in, its square out. Returns the result's length. */
static ssize_t square(const void *task, size_t len, void *result, size_t max, void *arg)
{
	int64_t x;

	if (len != sizeof(x) || max < sizeof(x))
		return -EINVAL;
	memcpy(&x, task, sizeof(x));
	x *= x;
	memcpy(result, &x, sizeof(x));
	return sizeof(x);
}
MPROC_POOL_TASK("square", square)

int main(int argc, char **argv)
{
	struct mproc_pool_opts o = {
		.workers = 4, .fn = square, .task_max = sizeof(int64_t),
		.result_max = sizeof(int64_t),
	};
	int64_t xs[10], squares[10], x = 20, y = 0;
	struct mproc_pool_batch b = {
		.tasks = xs, .task_len = sizeof(int64_t), .results = squares,
		.result_stride = sizeof(int64_t), .n = 10,
	};
	struct mproc_pool *pool = NULL;
	struct mproc_result *res = NULL;
	int r, wrong = 0;

	mproc_main_hook(argc, argv);    /* in a worker image: serves the pool and exits */
	if (argc > 1 && mproc_start_method_from_name(argv[1], &o.method) < 0) {
		fprintf(stderr, "pool: unknown start method '%s'\n", argv[1]);
		return 2;
	}
	for (int i = 0; i < 10; i++)
		xs[i] = i;
	r = mproc_pool_new(&pool, &o);
	if (r < 0)
		goto out;

	r = mproc_pool_map(pool, &b, 30.0);             /* pool.map(square, range(10)) */
	if (r < 0)
		goto out;
	printf("map:");
	for (int i = 0; i < 10; i++) {
		printf(" %lld", (long long)squares[i]);
		wrong |= squares[i] != (int64_t)i * i;
	}
	printf("\n");

	r = mproc_pool_apply_async(pool, &x, sizeof(x), NULL, &res);   /* a handle, at once */
	if (r < 0)
		goto out;
	r = (int)mproc_result_get(res, &y, sizeof(y), 10.0);   /* res.get(timeout=10) */
	if (r < 0)
		goto out;
	printf("apply_async(20): %lld (ready: %d, successful: %d)\n", (long long)y,
	       mproc_result_ready(res), mproc_result_successful(res));
	wrong |= y != 400;

	mproc_pool_close(pool);                         /* leaving the with-block */
	r = mproc_pool_join(pool, 30.0);
out:
	if (r < 0)
		fprintf(stderr, "pool: %s\n", mproc_strerror(r));
	mproc_result_free(res);
	mproc_pool_free(pool);                          /* terminates it if still running */
	return r < 0 || wrong;
}
