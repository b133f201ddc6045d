/*
 * test_pool.c - semantics, fault and leak tests of the worker pool (issue 7, reliability T28-T30).
 *
 * The task: an int64 x -> x * x (8 bytes); two int64 (starmap) -> a * b. Special values make a
 * task fail (-1: -EDOM), run long (-2: 10 s), die while running (-3: SIGKILL itself), die
 * after its claim and before it reads the task (-5, test hook), or die after writing a large
 * result and before publishing it (-6, test hook). Every case runs in its own forked process
 * with a leak check (fds, children incl. zombies, /dev/shm) around it (tap.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc/pool.h"
#include "internal.h"
#include "pool_internal.h"
#include "tap.h"

#define BIG_RESULT ((size_t)1 << 20)

static ssize_t square(const void *task, size_t len, void *result, size_t result_max, void *arg)
{
	int64_t x, y;

	if (len == 16) {
		memcpy(&x, task, 8);
		memcpy(&y, (const char *)task + 8, 8);
		x *= y;
		memcpy(result, &x, 8);
		return 8;
	}
	if (len != 8)
		return -EBADMSG;
	memcpy(&x, task, 8);
	switch (x) {
	case -1:
		return -EDOM;
	case -2: {
		struct timespec ts = { 10, 0 };

		nanosleep(&ts, NULL);
		return 0;
	}
	case -3:
		raise(SIGKILL);
		return 0;
	case -7: {
		struct timespec ts = { 0, 300 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		x = 7;
		break;
	}
	case -6:
		memset(result, 0xab, result_max);
		return (ssize_t)result_max;
	default:
		break;
	}
	x *= x;
	memcpy(result, &x, 8);
	return 8;
}

/* Exec-based start methods find functions by name; arg and initargs travel as bytes. */
MPROC_POOL_TASK("test-square", square)

static ssize_t add_arg(const void *task, size_t len, void *result, size_t result_max, void *arg)
{
	int64_t x, k;

	if (len != 8 || !arg)
		return -EBADMSG;
	memcpy(&x, task, 8);
	memcpy(&k, arg, 8);
	x += k;
	memcpy(result, &x, 8);
	return 8;
}
MPROC_POOL_TASK("test-add-arg", add_arg)

static int check_initargs(void *initargs)
{
	return initargs && memcmp(initargs, "hello", 6) == 0 ? 0 : 1;
}
MPROC_POOL_INIT("test-check-initargs", check_initargs)

static ssize_t unregistered(const void *task, size_t len, void *result, size_t result_max,
			    void *arg)
{
	return 0;
}

static void kill_hook(int point, const void *task, size_t len)
{
	int64_t x = 0;

	if (len == 8)
		memcpy(&x, task, 8);
	if ((point == MPROC__POOL_HOOK_CLAIMED && x == -5) ||
	    (point == MPROC__POOL_HOOK_WRITTEN && x == -6))
		raise(SIGKILL);
}

static struct mproc_pool *mkpool(int workers, unsigned flags)
{
	struct mproc_pool_opts o = { .workers = workers, .fn = square, .task_max = 16,
				     .result_max = 8, .flags = flags };
	struct mproc_pool *p = NULL;

	ASSERT_OK(mproc_pool_new(&p, &o));
	return p;
}

static int64_t apply1(struct mproc_pool *p, int64_t x, ssize_t *st)
{
	int64_t y = 0;

	*st = mproc_pool_apply(p, &x, 8, &y, 8, 10.0);
	return y;
}

/* ------------------------------------------------------------------ unit */

static void t_bad_args(void *arg)
{
	struct mproc_pool_opts o = { .workers = 2, .fn = square };
	struct mproc_pool *p = NULL;

	CHECK_ERR(mproc_pool_new(NULL, &o), -EINVAL);
	CHECK_ERR(mproc_pool_new(&p, NULL), -EINVAL);
	o.workers = 0;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	o.workers = -1;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	o.workers = MPROC_POOL_WORKERS_MAX + 1;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	o.workers = 2;
	o.fn = NULL;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	o.fn = square;
	o.task_max = MPROC_POOL_ITEM_MAX + 1;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	o.task_max = 0;
	o.result_max = MPROC_POOL_ITEM_MAX + 1;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	o.result_max = 0;
	o.queue_max = MPROC_POOL_QUEUE_MAX + 1;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	o.queue_max = 0;
	o.flags = 1u << 30;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	o.flags = 0;
	o.method = MPROC_START_THREAD;
	CHECK_ERR(mproc_pool_new(&p, &o), -ENOTSUP);
	o.method = (enum mproc_start_method)99;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	CHECK(p == NULL);

	/* Size 0 means "the usable budget" only when asked for explicitly. */
	o.method = MPROC_START_FORK;
	o.workers = 0;
	o.flags = MPROC_POOL_AUTO_SIZE;
	ASSERT_OK(mproc_pool_new(&p, &o));
	CHECK_CMP(mproc_pool_workers(p), >=, 1);
	{
		int64_t x = 1, y;
		struct mproc_result *r;

		CHECK_ERR(mproc_pool_apply(p, &x, 65, &y, 8, 1.0), -EMSGSIZE); /* over task_max */
		CHECK_ERR(mproc_pool_apply_async(p, &x, 8, NULL, NULL), -EINVAL);
		CHECK_ERR(mproc_pool_join(p, 1.0), -EINVAL);                     /* not closed */
		CHECK_OK(mproc_pool_close(p));
		CHECK_ERR(mproc_pool_apply_async(p, &x, 8, NULL, &r), -EPIPE);
		CHECK_OK(mproc_pool_join(p, 10.0));
	}
	mproc_pool_free(p);
}

static void t_apply(void *arg)
{
	struct mproc_pool *p = mkpool(2, 0);
	ssize_t st;
	int64_t x, y;

	for (x = 0; x < 50; x++) {
		y = apply1(p, x, &st);
		CHECK_EQ(st, 8);
		CHECK_EQ(y, x * x);
	}
	/* A task's error comes back with its code. */
	apply1(p, -1, &st);
	CHECK_ERR(st, -EDOM);
	/* A buffer too small: -EMSGSIZE, nothing copied. */
	x = 3;
	CHECK_ERR(mproc_pool_apply(p, &x, 8, &y, 4, 5.0), -EMSGSIZE);
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, 10.0));
	mproc_pool_free(p);
}

static void t_apply_async(void *arg)
{
	enum { N = 2000 };
	struct mproc_pool *p = mkpool(3, 0);
	struct mproc_result **rs = calloc(N, sizeof(*rs));
	int64_t x, y;

	ASSERT(rs != NULL);
	for (x = 0; x < N; x++)
		ASSERT_OK(mproc_pool_apply_async(p, &x, 8, NULL, &rs[x]));
	for (x = 0; x < N; x++) {
		y = -7;
		CHECK_EQ(mproc_result_get(rs[x], &y, 8, 10.0), 8);
		CHECK_EQ(y, x * x);
		CHECK(mproc_result_ready(rs[x]));
		CHECK(mproc_result_successful(rs[x]));
		mproc_result_free(rs[x]);
	}
	free(rs);
	mproc_pool_free(p);     /* terminate + free with nothing pending */
}

static void t_map(void *arg)
{
	static const size_t chunks[] = { 1, 20, 1000 };
	enum { N = 300 };
	struct mproc_pool *p = mkpool(3, 0);
	int64_t in[N], out[N];
	ssize_t st[N];
	size_t c, i;

	for (i = 0; i < N; i++)
		in[i] = (int64_t)i + 1;
	for (c = 0; c < MPROC__ARRAY_SIZE(chunks); c++) {
		struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .results = out,
					      .result_stride = 8, .status = st, .n = N,
					      .chunksize = chunks[c] };

		memset(out, 0, sizeof(out));
		in[7] = 5;
		CHECK_OK(mproc_pool_map(p, &b, 30.0));
		for (i = 0; i < N; i++) {
			CHECK_EQ(st[i], 8);
			CHECK_EQ(out[i], in[i] * in[i]);
		}
		/* One failing task: map waits for all, returns its error, the rest are there. */
		in[7] = -1;
		CHECK_ERR(mproc_pool_map(p, &b, 30.0), -EDOM);
		CHECK_ERR(st[7], -EDOM);
		CHECK_EQ(out[8], in[8] * in[8]);
		CHECK_EQ(out[N - 1], in[N - 1] * in[N - 1]);
	}
	/* Empty input: empty result. */
	{
		struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .n = 0 };

		CHECK_OK(mproc_pool_map(p, &b, 1.0));
	}
	/* Bad batch. */
	{
		struct mproc_pool_batch b = { .tasks = NULL, .task_len = 8, .n = 3 };

		CHECK_ERR(mproc_pool_map(p, &b, 1.0), -EINVAL);
		b.tasks = in;
		b.task_len = 17;        /* over task_max */
		CHECK_ERR(mproc_pool_map(p, &b, 1.0), -EMSGSIZE);
	}
	mproc_pool_free(p);
}

static void t_starmap(void *arg)
{
	static const size_t chunks[] = { 1, 20, 1000 };
	enum { N = 200 };
	struct mproc_pool *p = mkpool(2, 0);
	struct { int64_t a, pad; } A[N];
	int64_t B[N], out[N];
	size_t c, i;

	for (i = 0; i < N; i++) {
		A[i].a = (int64_t)i;
		B[i] = 3 - (int64_t)i;
	}
	for (c = 0; c < MPROC__ARRAY_SIZE(chunks); c++) {
		const void *args[2] = { &A[0].a, B };
		size_t size[2] = { 8, 8 }, stride[2] = { sizeof(A[0]), 0 };
		struct mproc_pool_batch b = { .results = out, .result_stride = 8, .n = N,
					      .chunksize = chunks[c] };

		memset(out, 0, sizeof(out));
		CHECK_OK(mproc_pool_starmap(p, args, size, stride, 2, &b, 30.0));
		for (i = 0; i < N; i++)
			CHECK_EQ(out[i], A[i].a * B[i]);
		size[1] = 9;    /* 17 bytes > task_max */
		CHECK_ERR(mproc_pool_starmap(p, args, size, stride, 2, &b, 30.0), -EMSGSIZE);
	}
	mproc_pool_free(p);
}

static void t_imap(void *arg)
{
	static const size_t chunks[] = { 1, 20, 1000 };
	static const size_t bufs[] = { 0, 1, 7, 1000 };        /* eager, then lazy */
	enum { N = 250 };
	struct mproc_pool *p = mkpool(3, 0);
	int64_t in[N];
	size_t c, i, bi;
	int unord;

	for (i = 0; i < N; i++)
		in[i] = (int64_t)i * 3 + 1;
	in[11] = -1;
	for (unord = 0; unord < 2; unord++) {
		for (c = 0; c < MPROC__ARRAY_SIZE(chunks) * MPROC__ARRAY_SIZE(bufs); c++) {
			struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .n = N,
						      .chunksize = chunks[c % 3],
						      .buffersize = bufs[c / 3] };
			struct mproc_imap *it = NULL;
			uint8_t seen[N] = { 0 };
			size_t idx, count = 0;
			int64_t y;
			ssize_t st;

			ASSERT_OK(unord ? mproc_pool_imap_unordered(p, &b, &it)
					: mproc_pool_imap(p, &b, &it));
			while ((st = mproc_imap_next(it, &y, 8, &idx, 10.0)) != MPROC_EOF) {
				ASSERT(idx < N);
				if (!unord)
					CHECK_EQ(idx, count);
				CHECK(!seen[idx]);
				seen[idx] = 1;
				if (idx == 11) {
					CHECK_ERR(st, -EDOM);
				} else {
					CHECK_EQ(st, 8);
					CHECK_EQ(y, in[idx] * in[idx]);
				}
				if (++count > N)
					break;
			}
			CHECK_EQ(count, N);
			CHECK_ERR(mproc_imap_next(it, &y, 8, &idx, 1.0), MPROC_EOF);
			mproc_imap_free(it);
		}
	}
	/* Empty input: the iterator ends at once. */
	for (bi = 0; bi < 2; bi++) {
		struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .n = 0, .buffersize = bi };
		struct mproc_imap *it = NULL;
		int64_t y;

		ASSERT_OK(mproc_pool_imap(p, &b, &it));
		CHECK_ERR(mproc_imap_next(it, &y, 8, NULL, 1.0), MPROC_EOF);
		mproc_imap_free(it);
	}
	{
		struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .n = N,
					      .buffersize = MPROC_POOL_QUEUE_MAX + 1 };
		struct mproc_imap *it = NULL;

		CHECK_ERR(mproc_pool_imap(p, &b, &it), -EINVAL);
	}
	mproc_pool_free(p);
}

/* Lazy imap: a task counter in shared memory shows what was submitted. */
static ssize_t count_task(const void *task, size_t len, void *result, size_t result_max,
			  void *arg)
{
	int64_t x;

	__atomic_fetch_add((uint64_t *)arg, 1, __ATOMIC_SEQ_CST);
	memcpy(&x, task, 8);
	if (x == -2) {
		struct timespec ts = { 10, 0 };

		nanosleep(&ts, NULL);
	}
	x += 1;
	memcpy(result, &x, 8);
	return 8;
}

static uint64_t count_settle(uint64_t *ctr, uint64_t want)
{
	double t0 = tap_now();

	while (__atomic_load_n(ctr, __ATOMIC_SEQ_CST) < want &&
	       tap_now() - t0 < 5.0 * tap_timeout_mult())
		usleep(1000);
	usleep(100000);         /* and nothing more comes */
	return __atomic_load_n(ctr, __ATOMIC_SEQ_CST);
}

static struct mproc_pool *mkcount(uint64_t **ctr)
{
	struct mproc_pool_opts o = { .workers = 2, .fn = count_task, .task_max = 8,
				     .result_max = 8 };
	struct mproc_pool *p = NULL;

	*ctr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT(*ctr != MAP_FAILED);
	o.arg = *ctr;
	ASSERT_OK(mproc_pool_new(&p, &o));
	return p;
}

/* At most buffersize tasks are submitted ahead of the consumer: the pool runs 5, waits for the
 * caller, runs one more per item read, and the whole batch by the end. */
static void t_imap_lazy_bound(void *arg)
{
	enum { N = 100, B = 5 };
	int unord = (int)(intptr_t)arg;
	uint64_t *ctr;
	struct mproc_pool *p = mkcount(&ctr);
	int64_t in[N], y;
	struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .n = N, .buffersize = B };
	struct mproc_imap *it = NULL;
	size_t i, idx, count = 0;
	uint8_t seen[N] = { 0 };
	ssize_t st;

	for (i = 0; i < N; i++)
		in[i] = (int64_t)i * 10;
	ASSERT_OK(unord ? mproc_pool_imap_unordered(p, &b, &it) : mproc_pool_imap(p, &b, &it));
	CHECK_EQ(count_settle(ctr, B), (uint64_t)B);
	CHECK_EQ(mproc_imap_next(it, &y, 8, &idx, 10.0), 8);
	CHECK_EQ(y, in[idx] + 1);
	seen[idx] = 1;
	count++;
	CHECK_EQ(count_settle(ctr, B + 1), (uint64_t)B + 1);
	while ((st = mproc_imap_next(it, &y, 8, &idx, 10.0)) != MPROC_EOF) {
		ASSERT(idx < N && count < N);
		CHECK_EQ(st, 8);
		CHECK_EQ(y, in[idx] + 1);
		if (!unord)
			CHECK_EQ(idx, count);
		CHECK(!seen[idx]);
		seen[idx] = 1;
		count++;
	}
	CHECK_EQ(count, N);
	CHECK_EQ(__atomic_load_n(ctr, __ATOMIC_SEQ_CST), (uint64_t)N);
	mproc_imap_free(it);
	mproc_pool_free(p);
	munmap(ctr, 4096);
}

/* Freeing a lazy iterator early: its unsubmitted tasks never run, nothing leaks, the pool
 * goes on. Terminate fails the rest with -ECANCELED; join after close with -EPIPE. */
static void t_imap_lazy_end(void *arg)
{
	enum { N = 50, B = 3 };
	uint64_t *ctr;
	struct mproc_pool *p = mkcount(&ctr);
	int64_t in[N], y;
	struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .n = N, .buffersize = B };
	struct mproc_imap *it = NULL;
	size_t i, idx;
	ssize_t st;
	int k;

	for (i = 0; i < N; i++)
		in[i] = (int64_t)i;
	ASSERT_OK(mproc_pool_imap(p, &b, &it));
	CHECK_EQ(mproc_imap_next(it, &y, 8, &idx, 10.0), 8);
	mproc_imap_free(it);
	CHECK_CMP(count_settle(ctr, B + 1), <=, (uint64_t)B + 1);
	CHECK_EQ(mproc_pool_apply(p, &in[7], 8, &y, 8, 10.0), 8);
	CHECK_EQ(y, 8);

	/* close: the iterator keeps feeding; join: the rest fails with -EPIPE. */
	ASSERT_OK(mproc_pool_imap_unordered(p, &b, &it));
	CHECK_EQ(mproc_imap_next(it, &y, 8, &idx, 10.0), 8);
	CHECK_OK(mproc_pool_close(p));
	for (k = 0; k < 5; k++)
		CHECK_EQ(mproc_imap_next(it, &y, 8, &idx, 10.0), 8);
	CHECK_OK(mproc_pool_join(p, 10.0));
	for (k = 0; k < B && (st = mproc_imap_next(it, &y, 8, &idx, 10.0)) == 8; k++)
		;                       /* what was submitted before join completed */
	for (k = 0; (st = mproc_imap_next(it, &y, 8, &idx, 10.0)) != MPROC_EOF && k < N; k++)
		CHECK_ERR(st, -EPIPE);
	CHECK(k > 0);
	mproc_imap_free(it);
	mproc_pool_free(p);

	/* terminate with a lazy iterator in flight (a task that sleeps 10 s holds it). */
	p = mkcount(&ctr);
	in[0] = -2;
	ASSERT_OK(mproc_pool_imap(p, &b, &it));
	usleep(50000);
	CHECK_OK(mproc_pool_terminate(p));
	{
		int ok = 0;

		/* Item 0 was running, 1 and 2 may have completed, the rest was never submitted. */
		for (k = 0; (st = mproc_imap_next(it, &y, 8, &idx, 1.0)) != MPROC_EOF && k <= N;
		     k++) {
			if (st == 8 && idx > 0 && idx < B)
				ok++;
			else
				CHECK_ERR(st, -ECANCELED);
		}
		CHECK_EQ(k, N);
		CHECK_CMP(ok, <, B);
	}
	mproc_imap_free(it);
	mproc_pool_free(p);
	munmap(ctr, 4096);
}

static void t_get_timeout(void *arg)
{
	struct mproc_pool *p = mkpool(1, 0);
	struct mproc_result *r;
	int64_t x = -2, y;
	double t0, dt;

	ASSERT_OK(mproc_pool_apply_async(p, &x, 8, NULL, &r));
	t0 = tap_now();
	CHECK_ERR(mproc_result_get(r, &y, 8, 0.3), -ETIMEDOUT);
	dt = tap_now() - t0;
	CHECK_CMP(dt, >=, 0.29);
	CHECK_CMP(dt, <, 0.3 + 0.5 * tap_timeout_mult());
	CHECK_ERR(mproc_result_get(r, &y, 8, 0), -ETIMEDOUT);
	CHECK_ERR(mproc_result_wait(r, 0.05), -ETIMEDOUT);
	CHECK(!mproc_result_ready(r));
	CHECK_ERR(mproc_result_get(r, &y, 8, -2.0), -EINVAL);
	CHECK_OK(mproc_pool_terminate(p));
	CHECK_ERR(mproc_result_get(r, &y, 8, 1.0), -ECANCELED);
	mproc_pool_free(p);
	CHECK_ERR(mproc_result_get(r, &y, 8, 1.0), -ECANCELED);     /* outlives the pool */
	mproc_result_free(r);
}

static atomic_int cb_ok, cb_err, cb_err_code;

static void on_ok(struct mproc_result *r, ssize_t st, void *arg)
{
	int64_t y = 0;

	/* A callback may read its own result. */
	if (mproc_result_get(r, &y, 8, 0) == 8 && y == *(int64_t *)arg)
		atomic_fetch_add(&cb_ok, 1);
}

static void on_err(struct mproc_result *r, ssize_t st, void *arg)
{
	atomic_fetch_add(&cb_err, 1);
	atomic_store(&cb_err_code, (int)st);
}

static void t_callbacks(void *arg)
{
	struct mproc_pool *p = mkpool(2, 0);
	struct mproc_result *rs[21];
	static int64_t want[20];
	int64_t x;
	int k;

	for (k = 0; k < 20; k++) {
		struct mproc_apply_opts ao = { on_ok, on_err, &want[k] };

		x = k;
		want[k] = x * x;
		ASSERT_OK(mproc_pool_apply_async(p, &x, 8, &ao, &rs[k]));
	}
	{
		struct mproc_apply_opts ao = { on_ok, on_err, NULL };

		x = -1;
		ASSERT_OK(mproc_pool_apply_async(p, &x, 8, &ao, &rs[20]));
	}
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, 10.0));
	CHECK_EQ(atomic_load(&cb_ok), 20);
	CHECK_EQ(atomic_load(&cb_err), 1);
	CHECK_ERR(atomic_load(&cb_err_code), -EDOM);
	CHECK(!mproc_result_successful(rs[20]));
	for (k = 0; k < 21; k++)
		mproc_result_free(rs[k]);
	mproc_pool_free(p);
}

/* Several owner threads use one pool at once ("used from several threads", pool.h): each
 * submits, applies and maps its own tasks, with callbacks counted, while the handler thread
 * harvests. Every result is right and every callback runs once (the TSan build runs this). */
#define PT_THREADS 4
#define PT_TASKS 200
static _Atomic int pt_cb;

static void pt_on_done(struct mproc_result *r, ssize_t status, void *arg)
{
	atomic_fetch_add(&pt_cb, 1);
}

struct pt_arg {
	struct mproc_pool *p;
	int id;
	_Atomic int bad;
};

static void *pt_thread(void *arg)
{
	struct pt_arg *a = arg;
	struct mproc_result *rs[PT_TASKS];
	int64_t x, y, in[16], out[16];
	ssize_t st[16];
	int k;

	for (k = 0; k < PT_TASKS; k++) {
		struct mproc_apply_opts ao = { pt_on_done, pt_on_done, NULL };

		x = a->id * 1000 + k;
		if (mproc_pool_apply_async(a->p, &x, 8, &ao, &rs[k]) < 0) {
			atomic_fetch_add(&a->bad, 1);
			rs[k] = NULL;
		}
	}
	for (k = 0; k < PT_TASKS; k++) {
		x = a->id * 1000 + k;
		if (!rs[k])
			continue;
		if (mproc_result_get(rs[k], &y, 8, 10.0 * tap_timeout_mult()) != 8 || y != x * x)
			atomic_fetch_add(&a->bad, 1);
		mproc_result_free(rs[k]);
	}
	x = a->id + 2;
	if (mproc_pool_apply(a->p, &x, 8, &y, 8, 10.0 * tap_timeout_mult()) != 8 || y != x * x)
		atomic_fetch_add(&a->bad, 1);
	for (k = 0; k < 16; k++)
		in[k] = a->id * 100 + k;
	{
		struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .results = out,
					      .result_stride = 8, .status = st, .n = 16 };

		if (mproc_pool_map(a->p, &b, 10.0 * tap_timeout_mult()) != 0)
			atomic_fetch_add(&a->bad, 1);
		for (k = 0; k < 16; k++) {
			if (st[k] != 8 || out[k] != in[k] * in[k])
				atomic_fetch_add(&a->bad, 1);
		}
	}
	return NULL;
}

static void t_threads(void *arg)
{
	struct mproc_pool *p = mkpool(2, 0);
	struct pt_arg a[PT_THREADS];
	pthread_t th[PT_THREADS];
	int k, started = 0;

	atomic_store(&pt_cb, 0);
	for (k = 0; k < PT_THREADS; k++) {
		a[k].p = p;
		a[k].id = k;
		atomic_store(&a[k].bad, 0);
		if (pthread_create(&th[k], NULL, pt_thread, &a[k]) != 0)
			break;
		started++;
	}
	CHECK_EQ(started, PT_THREADS);
	for (k = 0; k < started; k++) {
		pthread_join(th[k], NULL);
		CHECK_EQ(atomic_load(&a[k].bad), 0);
	}
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, 10.0 * tap_timeout_mult()));
	CHECK_EQ(atomic_load(&pt_cb), started * PT_TASKS);
	mproc_pool_free(p);
}

static atomic_int map_cb_calls;
static atomic_long map_cb_status;

static void on_map_done(struct mproc_result *r, ssize_t status, void *arg)
{
	atomic_fetch_add(&map_cb_calls, 1);
	atomic_store(&map_cb_status, (long)status);
}

/* map_async: results equal to serial, the handle's status is map's, the callback runs once
 * when all are done; an early free leaves the caller's arrays alone. */
static void t_map_async(void *arg)
{
	static const size_t chunks[] = { 1, 20, 1000 };
	enum { N = 300 };
	struct mproc_pool *p = mkpool(3, 0);
	static int64_t in[N], out[N];
	static ssize_t st[N];
	struct mproc_apply_opts ao = { on_map_done, on_map_done, NULL };
	struct mproc_result *r;
	size_t c, i;

	for (i = 0; i < N; i++)
		in[i] = (int64_t)i + 1;
	in[6] = -1;
	for (c = 0; c < MPROC__ARRAY_SIZE(chunks); c++) {
		struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .results = out,
					      .result_stride = 8, .status = st, .n = N,
					      .chunksize = chunks[c] };

		memset(out, 0, sizeof(out));
		atomic_store(&map_cb_calls, 0);
		ASSERT_OK(mproc_pool_map_async(p, &b, &ao, &r));
		CHECK_OK(mproc_result_wait(r, 10.0));
		CHECK(mproc_result_ready(r));
		/* in[6] == -1 fails with -EDOM: the map's status is that error. */
		CHECK_ERR(mproc_result_get(r, NULL, 0, 0), -EDOM);
		CHECK(!mproc_result_successful(r));
		for (i = 0; i < N; i++) {
			if (i == 6) {
				CHECK_ERR(st[i], -EDOM);
				continue;
			}
			CHECK_EQ(st[i], 8);
			CHECK_EQ(out[i], in[i] * in[i]);
		}
		mproc_result_free(r);
		for (i = 0; i < 100 * tap_timeout_mult() && atomic_load(&map_cb_calls) == 0; i++)
			usleep(10000);
		CHECK_EQ(atomic_load(&map_cb_calls), 1);
		CHECK_EQ(atomic_load(&map_cb_status), -EDOM);
	}
	/* All good: status 0, successful. Empty: ready at once. */
	{
		struct mproc_pool_batch b = { .tasks = &in[7], .task_len = 8, .results = out,
					      .result_stride = 8, .n = 100 };

		ASSERT_OK(mproc_pool_map_async(p, &b, NULL, &r));
		CHECK_EQ(mproc_result_get(r, NULL, 0, 10.0), 0);
		CHECK(mproc_result_successful(r));
		CHECK_EQ(out[99], in[106] * in[106]);
		mproc_result_free(r);
		b.n = 0;
		ASSERT_OK(mproc_pool_map_async(p, &b, NULL, &r));
		CHECK(mproc_result_ready(r));
		CHECK_EQ(mproc_result_get(r, NULL, 0, 0), 0);
		mproc_result_free(r);
		CHECK_ERR(mproc_pool_map_async(p, &b, NULL, NULL), -EINVAL);
	}
	/* Freed while a task still runs (-2: 10 s): nothing writes to our arrays after. */
	{
		int64_t lin[2] = { -2, 4 };
		int64_t lout[2] = { 0, 0 };
		ssize_t lst[2] = { 0, 0 };
		struct mproc_pool_batch b = { .tasks = lin, .task_len = 8, .results = lout,
					      .result_stride = 8, .status = lst, .n = 2 };

		ASSERT_OK(mproc_pool_map_async(p, &b, NULL, &r));
		CHECK_ERR(mproc_result_get(r, NULL, 0, 0.2), -ETIMEDOUT);
		mproc_result_free(r);
	}
	CHECK_OK(mproc_pool_terminate(p));
	CHECK_OK(mproc_pool_close(p));
	{
		struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .n = 1 };

		CHECK_ERR(mproc_pool_map_async(p, &b, NULL, &r), -EPIPE);
	}
	mproc_pool_free(p);
}

static void t_maxtasks(void *arg)
{
	struct mproc_pool_opts o = { .workers = 2, .fn = square, .task_max = 16, .result_max = 8,
				     .maxtasksperchild = 10 };
	struct mproc_pool *p = NULL;
	pid_t before[2], after[2];
	int n, k, i, tries;
	ssize_t st;

	ASSERT_OK(mproc_pool_new(&p, &o));
	CHECK_EQ(mproc_pool_worker_pids(p, before, 2), 2);
	for (k = 0; k < 100; k++) {
		CHECK_EQ(apply1(p, k, &st), (int64_t)k * k);
		CHECK_EQ(st, 8);
	}
	/* Replacements start asynchronously; every pid must have changed and none be unset. */
	for (tries = 0; tries < 200; tries++) {
		n = mproc_pool_worker_pids(p, after, 2);
		if (n == 2)
			break;
		usleep(10000);
	}
	CHECK_EQ(n, 2);
	for (k = 0; k < n; k++)
		for (i = 0; i < 2; i++)
			CHECK_NE(after[k], before[i]);
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, 10.0));
	mproc_pool_free(p);

	/* maxtasksperchild = 1 with close + join finishes. */
	o.maxtasksperchild = 1;
	ASSERT_OK(mproc_pool_new(&p, &o));
	{
		int64_t in[30], out[30];
		struct mproc_pool_batch b = { .tasks = in, .task_len = 8, .results = out,
					      .result_stride = 8, .n = 30 };

		for (k = 0; k < 30; k++)
			in[k] = k;
		CHECK_OK(mproc_pool_map(p, &b, 30.0));
		CHECK_EQ(out[29], 29 * 29);
	}
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, 10.0));
	mproc_pool_free(p);
}

static void t_futures(void *arg)
{
	struct mproc_pool *p = mkpool(2, 0);
	struct mproc_result *rs[6], *q = NULL;
	struct mproc_as_completed *it;
	uint8_t seen[6] = { 0 };
	int64_t x, y;
	size_t nd = 0;
	ssize_t k;
	int i;

	x = -2;                                  /* long: occupies worker 1 */
	ASSERT_OK(mproc_pool_submit(p, &x, 8, &rs[0]));
	for (i = 1; i < 6; i++) {
		x = i;
		ASSERT_OK(mproc_pool_submit(p, &x, 8, &rs[i]));
	}
	CHECK_OK(mproc_futures_wait(rs, 6, MPROC_FIRST_COMPLETED, 10.0, &nd));
	CHECK_CMP(nd, >=, 1);
	CHECK_ERR(mproc_futures_wait(rs, 6, MPROC_ALL_COMPLETED, 0.2, &nd), -ETIMEDOUT);
	CHECK_CMP(nd, <, 6);
	CHECK_OK(mproc_futures_wait(rs + 1, 5, MPROC_ALL_COMPLETED, 10.0, &nd));
	CHECK_EQ(nd, 5);
	CHECK_ERR(mproc_futures_wait(rs, 6, 0, 1.0, NULL), -EINVAL);

	ASSERT_OK(mproc_as_completed_new(&it, rs, 6));
	for (i = 0; i < 5; i++) {
		k = mproc_as_completed_next(it, 5.0);
		ASSERT(k >= 1 && k < 6);
		CHECK(!seen[k]);
		seen[k] = 1;
		CHECK_EQ(mproc_result_get(rs[k], &y, 8, 0), 8);
		CHECK_EQ(y, (int64_t)k * k);
	}
	CHECK_ERR(mproc_as_completed_next(it, 0.1), -ETIMEDOUT);       /* rs[0] still runs */

	/* Cancel: running -> -EBUSY. With both workers busy a new one stays queued: cancel it. */
	CHECK_ERR(mproc_result_cancel(rs[0]), -EBUSY);
	x = -2;
	ASSERT_OK(mproc_pool_submit(p, &x, 8, &q));             /* occupies worker 2 */
	{
		struct mproc_result *c = NULL;
		double t0 = tap_now();

		/* wait until both long tasks are taken, so the next one stays queued */
		usleep(200000);
		x = 9;
		ASSERT_OK(mproc_pool_submit(p, &x, 8, &c));
		CHECK_OK(mproc_result_cancel(c));
		CHECK_ERR(mproc_result_get(c, &y, 8, 1.0), -ECANCELED);
		CHECK(tap_now() - t0 < 5.0);
		mproc_result_free(c);
	}
	CHECK_OK(mproc_pool_terminate(p));
	k = mproc_as_completed_next(it, 5.0);
	CHECK_EQ(k, 0);
	CHECK_ERR(mproc_result_get(rs[0], &y, 8, 0), -ECANCELED);
	CHECK_ERR(mproc_as_completed_next(it, 1.0), MPROC_EOF);
	mproc_as_completed_free(it);
	for (i = 0; i < 6; i++)
		mproc_result_free(rs[i]);
	mproc_result_free(q);
	mproc_pool_free(p);
}

/* Idle workers sleep; a burst of submissions wakes one, which passes the wake-up on: four
 * 0.3 s tasks on four idle workers run side by side (not one after another, nor after the
 * sleepers' 1 s timeout). */
static void t_burst_wakes_all(void *arg)
{
	struct mproc_pool *p = mkpool(4, 0);
	struct mproc_result *rs[4];
	int64_t x = -7, y;
	double t0;
	int k;

	usleep(300000);         /* let every worker go to sleep */
	t0 = tap_now();
	for (k = 0; k < 4; k++)
		ASSERT_OK(mproc_pool_apply_async(p, &x, 8, NULL, &rs[k]));
	for (k = 0; k < 4; k++) {
		CHECK_EQ(mproc_result_get(rs[k], &y, 8, 10.0), 8);
		CHECK_EQ(y, 49);
		mproc_result_free(rs[k]);
	}
	CHECK_CMP(tap_now() - t0, <, 0.3 + 0.5 * tap_timeout_mult());
	mproc_pool_free(p);
}

/* ------------------------------------------------------------------ fault */

/* A worker dies at one of the three moments: only its task fails with -ECHILD, within 1 s;
 * the others complete; it is replaced and the pool keeps serving. */
static void kill_case(int64_t killer, size_t result_max)
{
	struct mproc_pool_opts o = { .workers = 2, .fn = square, .task_max = 16,
				     .result_max = result_max, .queue_max = 128 };
	struct mproc_pool *p = NULL;
	struct mproc_result *rs[40];
	char *buf = malloc(result_max);
	double t0;
	int k;

	ASSERT(buf != NULL);
	mproc__pool_test_hook = kill_hook;
	ASSERT_OK(mproc_pool_new(&p, &o));
	for (k = 0; k < 40; k++) {
		int64_t x = k == 17 ? killer : k;

		ASSERT_OK(mproc_pool_submit(p, &x, 8, &rs[k]));
	}
	t0 = tap_now();
	CHECK_ERR(mproc_result_get(rs[17], buf, result_max, 5.0), -ECHILD);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	for (k = 0; k < 40; k++) {
		int64_t y;

		if (k == 17)
			continue;
		CHECK_EQ(mproc_result_get(rs[k], buf, result_max, 5.0), 8);
		memcpy(&y, buf, 8);
		CHECK_EQ(y, (int64_t)k * k);
	}
	/* It keeps serving, with a replacement worker. */
	{
		int64_t x = 12, y = 0;
		int tries;
		pid_t pids[2];

		CHECK_EQ(mproc_pool_apply(p, &x, 8, buf, result_max, 5.0), 8);
		memcpy(&y, buf, 8);
		CHECK_EQ(y, 144);
		for (tries = 0; tries < 100 * tap_timeout_mult() &&
		     mproc_pool_worker_pids(p, pids, 2) < 2; tries++)
			usleep(10000);
		CHECK_EQ(mproc_pool_worker_pids(p, pids, 2), 2);
	}
	for (k = 0; k < 40; k++)
		mproc_result_free(rs[k]);
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, 10.0));
	mproc_pool_free(p);
	free(buf);
}

static void t_kill_running(void *arg) { kill_case(-3, 8); }
static void t_kill_reading(void *arg) { kill_case(-5, 8); }
static void t_kill_writing(void *arg) { kill_case(-6, BIG_RESULT); }

static void t_kill_external(void *arg)
{
	struct mproc_pool *p = mkpool(2, 0);
	struct mproc_result *r;
	pid_t pids[2];
	int64_t x = -2, y;
	double t0;
	int k;

	ASSERT_OK(mproc_pool_submit(p, &x, 8, &r));
	x = -2;
	{
		struct mproc_result *r2;

		ASSERT_OK(mproc_pool_submit(p, &x, 8, &r2));
		usleep(100000);
		/* Both workers run a long task: SIGKILL both from outside. */
		ASSERT_EQ(mproc_pool_worker_pids(p, pids, 2), 2);
		t0 = tap_now();
		for (k = 0; k < 2; k++)
			kill(pids[k], SIGKILL);
		CHECK_ERR(mproc_result_get(r, &y, 8, 5.0), -ECHILD);
		CHECK_ERR(mproc_result_get(r2, &y, 8, 5.0), -ECHILD);
		CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
		mproc_result_free(r2);
	}
	mproc_result_free(r);
	x = 4;
	CHECK_EQ(mproc_pool_apply(p, &x, 8, &y, 8, 5.0), 8);
	CHECK_EQ(y, 16);
	mproc_pool_free(p);
}

static void t_break_on_death(void *arg)
{
	struct mproc_pool *p = mkpool(2, MPROC_POOL_BREAK_ON_DEATH);
	struct mproc_result *rs[10], *r;
	int64_t x, y;
	int k;

	pid_t pids[2];

	for (k = 0; k < 10; k++) {
		x = -2;
		ASSERT_OK(mproc_pool_submit(p, &x, 8, &rs[k]));
	}
	usleep(100000);
	ASSERT_EQ(mproc_pool_worker_pids(p, pids, 2), 2);
	kill(pids[0], SIGKILL);         /* one death: every pending task fails, the pool breaks */
	for (k = 0; k < 10; k++)
		CHECK_ERR(mproc_result_get(rs[k], &y, 8, 5.0), -ECHILD);
	x = 1;
	CHECK_ERR(mproc_pool_submit(p, &x, 8, &r), -EPIPE);
	CHECK_OK(mproc_pool_shutdown(p, true, false));
	for (k = 0; k < 10; k++)
		mproc_result_free(rs[k]);
	mproc_pool_free(p);
}

static void t_terminate_bound(void *arg)
{
	enum { N = 10000 };
	struct mproc_pool_opts o = { .workers = 2, .fn = square, .task_max = 8, .result_max = 8,
				     .queue_max = 16384 };
	struct mproc_pool *p = NULL;
	struct mproc_result **rs = calloc(N, sizeof(*rs));
	int64_t x = -2, y;
	double t0;
	int k;

	ASSERT(rs != NULL);
	ASSERT_OK(mproc_pool_new(&p, &o));
	for (k = 0; k < N; k++)
		ASSERT_OK(mproc_pool_apply_async(p, &x, 8, NULL, &rs[k]));
	usleep(50000);
	t0 = tap_now();
	CHECK_OK(mproc_pool_terminate(p));
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	for (k = 0; k < N; k++) {
		CHECK_ERR(mproc_result_get(rs[k], &y, 8, 0), -ECANCELED);
		mproc_result_free(rs[k]);
		if (tap_failed())
			break;
	}
	for (k++; k < N; k++)
		mproc_result_free(rs[k]);
	mproc_pool_free(p);
	free(rs);
}

static void t_shutdown_after_crash(void *arg)
{
	struct mproc_pool *p = mkpool(2, 0);
	struct mproc_result *rs[8];
	int64_t x, y;
	int k;

	for (k = 0; k < 8; k++) {
		x = k == 3 ? -3 : k;
		ASSERT_OK(mproc_pool_submit(p, &x, 8, &rs[k]));
	}
	CHECK_OK(mproc_pool_shutdown(p, true, false));
	for (k = 0; k < 8; k++) {
		CHECK_EQ(mproc_result_get(rs[k], &y, 8, 0), k == 3 ? -ECHILD : 8);
		mproc_result_free(rs[k]);
	}
	mproc_pool_free(p);

	/* shutdown(cancel_futures): queued tasks are cancelled, the running one finishes. */
	p = mkpool(1, 0);
	x = -2;
	ASSERT_OK(mproc_pool_submit(p, &x, 8, &rs[0]));
	usleep(100000);
	for (k = 1; k < 8; k++) {
		x = k;
		ASSERT_OK(mproc_pool_submit(p, &x, 8, &rs[k]));
	}
	CHECK_OK(mproc_pool_shutdown(p, false, true));
	for (k = 1; k < 8; k++)
		CHECK_ERR(mproc_result_get(rs[k], &y, 8, 1.0), -ECANCELED);
	CHECK_OK(mproc_pool_terminate(p));
	for (k = 0; k < 8; k++)
		mproc_result_free(rs[k]);
	mproc_pool_free(p);
}

static int *init_count;

static int init_third_fails(void *arg)
{
	return __atomic_add_fetch(init_count, 1, __ATOMIC_SEQ_CST) == 3 ? 1 : 0;
}

static void t_init_failure(void *arg)
{
	struct mproc_pool_opts o = { .workers = 4, .fn = square, .initializer = init_third_fails };
	struct mproc_pool *p = NULL;

	init_count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT(init_count != MAP_FAILED);
	CHECK_ERR(mproc_pool_new(&p, &o), -ECHILD);
	CHECK(p == NULL);
	CHECK_EQ(tap_count_children(), 0);
	munmap(init_count, 4096);
}

static void t_sigint_ignored(void *arg)
{
	struct mproc_pool *p = mkpool(2, 0);
	pid_t before[2], after[2];
	ssize_t st;
	int k;

	ASSERT_EQ(mproc_pool_worker_pids(p, before, 2), 2);
	for (k = 0; k < 2; k++)
		kill(before[k], SIGINT);
	usleep(100000);
	CHECK_EQ(apply1(p, 6, &st), 36);
	CHECK_EQ(mproc_pool_worker_pids(p, after, 2), 2);
	for (k = 0; k < 2; k++)
		CHECK_EQ(after[k], before[k]);
	mproc_pool_free(p);
}

/* The owner gets Ctrl-C (SIGINT, default action): its workers die with it (PR_SET_PDEATHSIG)
 * within 1 s, none is left behind (they come back to this case, a subreaper, and are reaped). */
static void t_owner_sigint(void *arg)
{
	int fds[2];
	pid_t owner, pids[2];
	int status = 0, k;

	ASSERT(pipe2(fds, O_CLOEXEC) == 0);
	owner = fork();
	ASSERT(owner >= 0);
	if (owner == 0) {
		struct mproc_pool_opts o = { .workers = 2, .fn = square };
		struct mproc_pool *p = NULL;
		pid_t w[2] = { 0, 0 };

		close(fds[0]);
		if (mproc_pool_new(&p, &o) == 0)
			mproc_pool_worker_pids(p, w, 2);
		if (write(fds[1], w, sizeof(w)) != (ssize_t)sizeof(w))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	ASSERT_EQ(read(fds[0], pids, sizeof(pids)), (ssize_t)sizeof(pids));
	close(fds[0]);
	ASSERT(pids[0] > 0 && pids[1] > 0);
	kill(owner, SIGINT);
	ASSERT_EQ(waitpid(owner, &status, 0), owner);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
	for (k = 0; k < 2; k++) {
		double t0 = tap_now();
		pid_t r;

		while ((r = waitpid(pids[k], &status, WNOHANG)) == 0 &&
		       tap_now() - t0 < 1.0 * tap_timeout_mult())
			usleep(1000);
		CHECK_EQ(r, pids[k]);
		if (r == 0) {
			kill(pids[k], SIGKILL);
			waitpid(pids[k], NULL, 0);
		}
	}
}

/* ------------------------------------------------------------------ exec-based start methods */

static const enum mproc_start_method exec_methods[] = {
	MPROC_START_VFORK, MPROC_START_POSIX_SPAWN, MPROC_START_SPAWN, MPROC_START_FORKSERVER,
};

static struct mproc_pool *mkpool_method(intptr_t m, int workers)
{
	struct mproc_pool_opts o = { .workers = workers, .method = (enum mproc_start_method)m,
				     .fn = square, .task_max = 16, .result_max = 8 };
	struct mproc_pool *p = NULL;

	ASSERT_OK(mproc_pool_new(&p, &o));
	return p;
}

static void exec_done(intptr_t m)
{
	if (m == MPROC_START_FORKSERVER)
		mproc_forkserver_stop();
}

/* map through workers of a fresh image: fn, arg and initargs found by name / as bytes. */
static void t_exec_map(void *arg)
{
	intptr_t m = (intptr_t)arg;
	enum { N = 200 };
	int64_t k = 1000, x[N], y[N];
	ssize_t st[N];
	struct mproc_pool_opts o = { .workers = 2, .method = (enum mproc_start_method)m,
				     .fn = add_arg, .arg = &k, .arg_len = sizeof(k),
				     .initializer = check_initargs, .initargs = "hello",
				     .initargs_len = 6, .task_max = 8, .result_max = 8 };
	struct mproc_pool_batch b = { .tasks = x, .task_len = 8, .results = y, .result_stride = 8,
				      .status = st, .n = N, .chunksize = 7 };
	struct mproc_pool *p = NULL;
	pid_t pids[2];
	int i;

	for (i = 0; i < N; i++)
		x[i] = i;
	ASSERT_OK(mproc_pool_new(&p, &o));
	ASSERT_EQ(mproc_pool_worker_pids(p, pids, 2), 2);
	CHECK_OK(mproc_pool_map(p, &b, 20.0));
	for (i = 0; i < N; i++) {
		CHECK_EQ(st[i], 8);
		CHECK_EQ(y[i], (int64_t)i + 1000);
		if (tap_failed())
			break;
	}
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, 10.0));
	mproc_pool_free(p);

	/* The initializer sees the bytes it was given: different bytes fail the start. */
	o.initargs = "hellO";
	p = NULL;
	CHECK_ERR(mproc_pool_new(&p, &o), -ECHILD);
	CHECK(p == NULL);
	exec_done(m);
}

/* A worker killed while it runs a task: that task fails with -ECHILD within 1 s, the others
 * complete, a replacement (a new pid, started the same way) takes over. */
static void t_exec_kill(void *arg)
{
	intptr_t m = (intptr_t)arg;
	struct mproc_pool *p = mkpool_method(m, 2);
	struct mproc_result *r, *rs[20];
	pid_t before[2], after[2];
	int64_t x = -2, y;
	double t0;
	int k, tries;

	ASSERT_EQ(mproc_pool_worker_pids(p, before, 2), 2);
	ASSERT_OK(mproc_pool_submit(p, &x, 8, &r));
	usleep(100000);
	for (k = 0; k < 20; k++) {
		x = k;
		ASSERT_OK(mproc_pool_submit(p, &x, 8, &rs[k]));
	}
	for (k = 0; k < 20; k++) {
		CHECK_EQ(mproc_result_get(rs[k], &y, 8, 10.0), 8);
		CHECK_EQ(y, (int64_t)k * k);
		mproc_result_free(rs[k]);
	}
	/* One worker holds the 10 s task, the other did the rest: kill both. */
	t0 = tap_now();
	kill(before[0], SIGKILL);
	kill(before[1], SIGKILL);
	CHECK_ERR(mproc_result_get(r, &y, 8, 5.0), -ECHILD);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	mproc_result_free(r);
	x = 9;
	CHECK_EQ(mproc_pool_apply(p, &x, 8, &y, 8, 10.0), 8);
	CHECK_EQ(y, 81);
	for (tries = 0; tries < 500; tries++) {
		if (mproc_pool_worker_pids(p, after, 2) == 2 && after[0] != before[0] &&
		    after[0] != before[1] && after[1] != before[0] && after[1] != before[1])
			break;
		usleep(10000);
	}
	CHECK_EQ(mproc_pool_worker_pids(p, after, 2), 2);
	for (k = 0; k < 2; k++)
		CHECK(after[k] != before[0] && after[k] != before[1]);
	/* A task that kills its own worker, after the replacement: the same again. */
	x = -3;
	CHECK_ERR(mproc_pool_apply(p, &x, 8, &y, 8, 5.0), -ECHILD);
	x = 5;
	CHECK_EQ(mproc_pool_apply(p, &x, 8, &y, 8, 10.0), 8);
	CHECK_EQ(y, 25);
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, 10.0));
	mproc_pool_free(p);
	exec_done(m);
}

/* terminate with many long tasks pending returns within 1 s; nothing is left behind. */
static void t_exec_terminate(void *arg)
{
	intptr_t m = (intptr_t)arg;
	enum { N = 1000 };
	struct mproc_pool *p = mkpool_method(m, 2);
	struct mproc_result **rs = calloc(N, sizeof(*rs));
	int64_t x = -2, y;
	double t0;
	int k;

	ASSERT(rs != NULL);
	for (k = 0; k < N; k++)
		ASSERT_OK(mproc_pool_apply_async(p, &x, 8, NULL, &rs[k]));
	usleep(100000);
	t0 = tap_now();
	CHECK_OK(mproc_pool_terminate(p));
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	for (k = 0; k < N; k++) {
		CHECK_ERR(mproc_result_get(rs[k], &y, 8, 0), -ECANCELED);
		mproc_result_free(rs[k]);
	}
	mproc_pool_free(p);
	free(rs);
	exec_done(m);
}

/* What an exec-based pool refuses: unnamed functions, too many argument bytes. */
static void t_exec_bad_args(void *arg)
{
	struct mproc_pool_opts o = { .workers = 1, .method = MPROC_START_SPAWN, .fn = unregistered };
	struct mproc_pool *p = NULL;
	static char big[MPROC_POOL_ARG_MAX + 1];

	CHECK_ERR(mproc_pool_new(&p, &o), -ESRCH);
	o.fn = square;
	o.initializer = (mproc_pool_init_fn *)(void (*)(void))unregistered;
	CHECK_ERR(mproc_pool_new(&p, &o), -ESRCH);
	o.initializer = NULL;
	o.arg = big;
	o.arg_len = sizeof(big);
	CHECK_ERR(mproc_pool_new(&p, &o), -EMSGSIZE);
	o.arg = NULL;
	o.arg_len = 8;
	CHECK_ERR(mproc_pool_new(&p, &o), -EINVAL);
	CHECK(p == NULL);
	CHECK_ERR(mproc_pool_register_task("test-square", add_arg), -EEXIST);
	CHECK_OK(mproc_pool_register_task("test-square", square));
	CHECK_ERR(mproc_pool_register_task("", square), -EINVAL);
	CHECK_ERR(mproc_pool_register_task("x", NULL), -EINVAL);
}

int main(int argc, char **argv)
{
	static char names[4][3][64];
	size_t i;

	mproc_main_hook(argc, argv);    /* worker images of the exec-based methods */
	tap_add("pool/unit/bad_args", t_bad_args, NULL);
	tap_add("pool/unit/apply", t_apply, NULL);
	tap_add("pool/unit/apply_async", t_apply_async, NULL);
	tap_add("pool/unit/map", t_map, NULL);
	tap_add("pool/unit/starmap", t_starmap, NULL);
	tap_add("pool/unit/imap", t_imap, NULL);
	tap_add("pool/unit/map_async", t_map_async, NULL);
	tap_add("pool/unit/imap_lazy_bound", t_imap_lazy_bound, (void *)0);
	tap_add("pool/unit/imap_unordered_lazy_bound", t_imap_lazy_bound, (void *)1);
	tap_add("pool/unit/imap_lazy_end", t_imap_lazy_end, NULL);
	tap_add("pool/unit/get_timeout", t_get_timeout, NULL);
	tap_add("pool/unit/callbacks", t_callbacks, NULL);
	tap_add("pool/unit/maxtasksperchild", t_maxtasks, NULL);
	tap_add("pool/unit/futures", t_futures, NULL);
	tap_add("pool/unit/burst_wakes_all", t_burst_wakes_all, NULL);
	tap_add("pool/unit/threads", t_threads, NULL);
	tap_add("pool/fault/kill_running", t_kill_running, NULL);
	tap_add("pool/fault/kill_reading", t_kill_reading, NULL);
	tap_add("pool/fault/kill_writing", t_kill_writing, NULL);
	tap_add("pool/fault/kill_external", t_kill_external, NULL);
	tap_add("pool/fault/break_on_death", t_break_on_death, NULL);
	tap_add("pool/fault/terminate_bound", t_terminate_bound, NULL);
	tap_add("pool/fault/shutdown_after_crash", t_shutdown_after_crash, NULL);
	tap_add("pool/fault/init_failure", t_init_failure, NULL);
	tap_add("pool/fault/sigint_ignored", t_sigint_ignored, NULL);
	tap_add("pool/fault/owner_sigint", t_owner_sigint, NULL);
	tap_add("pool/unit/exec_bad_args", t_exec_bad_args, NULL);
	for (i = 0; i < MPROC__ARRAY_SIZE(exec_methods); i++) {
		const char *mn = mproc_start_method_name(exec_methods[i]);
		void *a = (void *)(intptr_t)exec_methods[i];

		snprintf(names[i][0], sizeof(names[i][0]), "pool/unit/%s/map", mn);
		snprintf(names[i][1], sizeof(names[i][1]), "pool/fault/%s/kill", mn);
		snprintf(names[i][2], sizeof(names[i][2]), "pool/fault/%s/terminate", mn);
		tap_add(names[i][0], t_exec_map, a);
		tap_add(names[i][1], t_exec_kill, a);
		tap_add(names[i][2], t_exec_terminate, a);
	}
	return tap_run(argc, argv);
}
