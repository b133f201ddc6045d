/*
 * test_queue.c - Queue / SimpleQueue / JoinableQueue semantics and faults, every case on every
 * back end (TAP names queue/<backend>/<case>). A back end the machine lacks is skipped with
 * the reason from mproc_queue_backend_available().
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "queue_internal.h"
#include "tap.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BK(arg) ((enum mproc_queue_backend)(intptr_t)(arg))

static struct mproc_queue *mkq(void *arg, size_t maxsize, size_t max_msg, unsigned flags)
{
	struct mproc_queue_opts o = { .backend = BK(arg), .maxsize = maxsize, .max_msg = max_msg,
				      .flags = flags };
	struct mproc_queue *q = NULL;
	const char *why;
	int r;

	if (mproc_queue_backend_available(BK(arg), &why) < 0)
		tap_skip("%s back end unavailable: %s", mproc_queue_backend_name(BK(arg)), why);
	r = mproc_queue_new(&q, &o);
	if (r < 0) {
		tap_fail_at(__FILE__, __LINE__, "mproc_queue_new: %s", mproc_strerror(r));
		tap_abort_case();
	}
	return q;
}

static void *shared(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ASSERT(p != MAP_FAILED);
	return p;
}

/* An item: [u32 producer][u32 seq][u64 checksum of the rest][fill bytes]. */
struct item_hdr {
	uint32_t prod, seq;
	uint64_t sum;
};

static size_t make_item(unsigned char *buf, size_t len, uint32_t prod, uint32_t seq)
{
	struct item_hdr h = { prod, seq, 0 };

	if (len < sizeof(h))
		len = sizeof(h);
	for (size_t i = sizeof(h); i < len; i++)
		buf[i] = (unsigned char)(prod * 31 + seq + i);
	h.sum = mproc__fnv1a64(buf + sizeof(h), len - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	return len;
}

static bool check_item(const unsigned char *buf, size_t len, struct item_hdr *out)
{
	if (len < sizeof(*out))
		return false;
	memcpy(out, buf, sizeof(*out));
	return out->sum == mproc__fnv1a64(buf + sizeof(*out), len - sizeof(*out));
}

static void t_put_get(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 0, 0);
	size_t max = mproc_queue_max_msg(q);
	unsigned char *in = malloc(max), *out = malloc(max);
	/* Around the ring's inline copies too (up to 3 bytes, 4..7, 8..16, 17..32, 33..64). */
	size_t sizes[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 4095,
			   max < 4097 ? max : 4097, max };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (size_t k = 0; k < sizes[i]; k++)
			in[k] = (unsigned char)(k * 7 + i);
		CHECK_OK(mproc_queue_put(q, in, sizes[i], MPROC_FOREVER));
		CHECK_EQ(mproc_queue_get(q, out, max, 1.0), sizes[i]);
		CHECK_MEM_EQ(in, out, sizes[i]);
	}
	/* FIFO over several items. */
	for (uint32_t i = 0; i < 8; i++)
		CHECK_OK(mproc_queue_put(q, &i, sizeof(i), 1.0));
	for (uint32_t i = 0; i < 8; i++) {
		uint32_t v = 0;
		unsigned char *b = out;
		CHECK_EQ(mproc_queue_get(q, b, max, 1.0), sizeof(v));
		memcpy(&v, b, sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_ERR(mproc_queue_get(q, out, max, 0), -EAGAIN);
	free(in);
	free(out);
	mproc_queue_free(q);
}

static void t_qsize(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 0, 0);
	size_t max = mproc_queue_max_msg(q);
	char *b = malloc(max);

	CHECK(mproc_queue_empty(q));
	CHECK_EQ(mproc_queue_qsize(q), 0);
	for (int i = 0; i < 5; i++)
		CHECK_OK(mproc_queue_put(q, "abc", 3, 0));
	CHECK_EQ(mproc_queue_qsize(q), 5);
	CHECK(!mproc_queue_empty(q));
	CHECK(!mproc_queue_full(q));
	CHECK_EQ(mproc_queue_get(q, b, max, 0), 3);
	CHECK_EQ(mproc_queue_get(q, b, max, 0), 3);
	CHECK_EQ(mproc_queue_qsize(q), 3);
	while (mproc_queue_get(q, b, max, 0) >= 0)
		;
	CHECK_EQ(mproc_queue_qsize(q), 0);
	free(b);
	mproc_queue_free(q);
}

static void t_maxsize_timeouts(void *arg)
{
	struct mproc_queue *q = mkq(arg, 6, 0, 0);
	size_t max = mproc_queue_max_msg(q);
	char *b = malloc(max);
	double t0, dt;

	for (int i = 0; i < 6; i++)
		CHECK_OK(mproc_queue_put(q, &i, sizeof(i), 0));
	CHECK(mproc_queue_full(q));
	CHECK_EQ(mproc_queue_qsize(q), 6);
	t0 = tap_now();
	CHECK_ERR(mproc_queue_put(q, "x", 1, 0), -EAGAIN);
	CHECK_CMP(tap_now() - t0, <, 0.05 * tap_timeout_mult());
	t0 = tap_now();
	CHECK_ERR(mproc_queue_put(q, "x", 1, 0.2), -ETIMEDOUT);
	dt = tap_now() - t0;
	CHECK_CMP(dt, >=, 0.2);
	CHECK_CMP(dt, <=, 0.2 + 0.1 * tap_timeout_mult());
	CHECK_EQ(mproc_queue_qsize(q), 6);
	for (int i = 0; i < 6; i++) {
		int v = -1;
		CHECK_EQ(mproc_queue_get(q, b, max, 0), sizeof(int));
		memcpy(&v, b, sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK(mproc_queue_empty(q));
	t0 = tap_now();
	CHECK_ERR(mproc_queue_get(q, b, max, 0), -EAGAIN);
	CHECK_CMP(tap_now() - t0, <, 0.05 * tap_timeout_mult());
	t0 = tap_now();
	CHECK_ERR(mproc_queue_get(q, b, max, 0.2), -ETIMEDOUT);
	dt = tap_now() - t0;
	CHECK_CMP(dt, >=, 0.2);
	CHECK_CMP(dt, <=, 0.2 + 0.1 * tap_timeout_mult());
	free(b);
	mproc_queue_free(q);
}

static void t_closed(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 0, 0);
	size_t max = mproc_queue_max_msg(q);
	char *b = malloc(max);

	CHECK_OK(mproc_queue_put(q, "a", 1, 0));
	CHECK_OK(mproc_queue_close(q));
	CHECK_OK(mproc_queue_close(q));
	CHECK_ERR(mproc_queue_put(q, "a", 1, 0), -EPIPE);
	CHECK_ERR(mproc_queue_get(q, b, max, 0), -EPIPE);
	CHECK_ERR(mproc_queue_get(q, b, max, MPROC_FOREVER), -EPIPE);
	free(b);
	mproc_queue_free(q);
}

static void t_bad_input(void *arg)
{
	enum mproc_queue_backend bk = BK(arg);
	struct mproc_queue_opts o = { .backend = bk };
	struct mproc_queue *q = (struct mproc_queue *)&o;   /* must be reset to NULL */
	size_t max;
	char *b;

	CHECK_ERR(mproc_queue_new(NULL, &o), -EINVAL);
	o.backend = (enum mproc_queue_backend)99;
	CHECK_ERR(mproc_queue_new(&q, &o), -EINVAL);
	CHECK(q == NULL);
	o.backend = bk;
	o.flags = 1u << 20;
	CHECK_ERR(mproc_queue_new(&q, &o), -EINVAL);
	o.flags = MPROC_QUEUE_SPIN | MPROC_QUEUE_NOSPIN;
	CHECK_ERR(mproc_queue_new(&q, &o), -EINVAL);
	o.flags = 0;
	o.max_msg = ((size_t)64 << 20) + 1;
	CHECK_ERR(mproc_queue_new(&q, &o), -EINVAL);
	o.max_msg = 0;
	o.maxsize = (size_t)UINT32_MAX + 1;
	CHECK_ERR(mproc_queue_new(&q, &o), -EINVAL);
	o.maxsize = 0;
	if (bk == MPROC_QUEUE_MQ || bk == MPROC_QUEUE_SYSV) {
		/* Over the kernel's message size limit: refused, never clamped. */
		o.max_msg = (size_t)32 << 20;
		CHECK_ERR(mproc_queue_new(&q, &o), -EMSGSIZE);
		o.max_msg = 0;
	}
	if (bk == MPROC_QUEUE_RING) {
		o.max_msg = 1 << 20;
		o.ring_bytes = 4096;    /* smaller than one record */
		CHECK_ERR(mproc_queue_new(&q, &o), -EINVAL);
		o.max_msg = 0;
		o.ring_bytes = 0;
	}
	CHECK(q == NULL);
	CHECK_ERR(mproc_queue_backend_name((enum mproc_queue_backend)99) == NULL ? -EINVAL : 0,
		  -EINVAL);
	{
		enum mproc_queue_backend x;
		const char *why = NULL;
		CHECK_ERR(mproc_queue_backend_from_name("nope", &x), -EINVAL);
		CHECK_OK(mproc_queue_backend_from_name(mproc_queue_backend_name(bk), &x));
		CHECK_EQ(x, bk);
		CHECK_ERR(mproc_queue_backend_available((enum mproc_queue_backend)99, &why),
			  -EINVAL);
		CHECK(why != NULL);
	}

	q = mkq(arg, 0, 0, 0);
	max = mproc_queue_max_msg(q);
	b = calloc(1, max + 1);
	CHECK_ERR(mproc_queue_put(NULL, "a", 1, 0), -EINVAL);
	CHECK_ERR(mproc_queue_put(q, NULL, 1, 0), -EINVAL);
	CHECK_ERR(mproc_queue_get(q, NULL, 10, 0), -EINVAL);
	CHECK_ERR(mproc_queue_get(NULL, b, 10, 0), -EINVAL);
	CHECK_ERR(mproc_queue_put(q, "a", 1, -2.0), -EINVAL);
	CHECK_ERR(mproc_queue_put(q, "a", 1, NAN), -EINVAL);
	CHECK_ERR(mproc_queue_get(q, b, max, -0.5), -EINVAL);
	CHECK_ERR(mproc_queue_put(q, b, max + 1, 0), -EMSGSIZE);
	CHECK_EQ(mproc_queue_qsize(q), 0);
	CHECK_ERR(mproc_queue_task_done(q), -EINVAL);      /* not joinable */
	CHECK_ERR(mproc_queue_join(q, 0), -EINVAL);
	CHECK_ERR(mproc_queue_close(NULL), -EINVAL);
	CHECK_ERR(mproc_queue_qsize(NULL), -EINVAL);
	mproc_queue_free(NULL);

	/* A buffer too small: -EMSGSIZE and the item stays. */
	memset(b, 'z', 100);
	CHECK_OK(mproc_queue_put(q, b, 100, 0));
	CHECK_ERR(mproc_queue_get(q, b, 10, 0), -EMSGSIZE);
	CHECK_EQ(mproc_queue_qsize(q), 1);
	memset(b, 0, 100);
	CHECK_EQ(mproc_queue_get(q, b, max, 0), 100);
	CHECK_EQ(b[99], 'z');
	CHECK_EQ(mproc_queue_qsize(q), 0);
	free(b);
	mproc_queue_free(q);
}

/* MPMC 4x4: multiset equal and FIFO per producer as each consumer sees it. */
#define MP_PROD 4
#define MP_CONS 4
#define MP_ITEMS 2000

struct mpmc_rec {
	uint32_t n;                             /* items this consumer got */
	uint32_t bad;                           /* checksum failures */
	uint32_t order;                         /* per-producer order violations */
	uint32_t got[MP_PROD][MP_ITEMS / 8 + 1];/* bitmap of (prod, seq) */
	uint32_t dup;
};

static void t_mpmc(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 512, 0);
	struct mpmc_rec *rec = shared(sizeof(*rec) * MP_CONS);
	pid_t pids[MP_PROD + MP_CONS];
	int st;

	for (int c = 0; c < MP_CONS; c++) {
		pids[c] = fork();
		ASSERT(pids[c] >= 0);
		if (pids[c] == 0) {
			unsigned char buf[512];
			int64_t last[MP_PROD] = { -1, -1, -1, -1 };
			struct mpmc_rec *me = &rec[c];
			for (;;) {
				struct item_hdr h;
				ssize_t n = mproc_queue_get(q, buf, sizeof(buf), 20.0);
				if (n < 0)
					_exit(3);
				if (n == 0)
					break;          /* sentinel */
				if (!check_item(buf, (size_t)n, &h) || h.prod >= MP_PROD ||
				    h.seq >= MP_ITEMS) {
					me->bad++;
					continue;
				}
				if ((int64_t)h.seq <= last[h.prod])
					me->order++;
				last[h.prod] = h.seq;
				if (me->got[h.prod][h.seq / 32] & (1u << (h.seq % 32)))
					me->dup++;
				me->got[h.prod][h.seq / 32] |= 1u << (h.seq % 32);
				me->n++;
			}
			mproc_queue_free(q);
			_exit(0);
		}
	}
	for (int p = 0; p < MP_PROD; p++) {
		pid_t pid = fork();
		ASSERT(pid >= 0);
		pids[MP_CONS + p] = pid;
		if (pid == 0) {
			unsigned char buf[512];
			unsigned seed = (unsigned)p * 7919u + 1;
			for (uint32_t s = 0; s < MP_ITEMS; s++) {
				size_t len = 16 + (size_t)(rand_r(&seed) % 400);
				len = make_item(buf, len, (uint32_t)p, s);
				if (mproc_queue_put(q, buf, len, 20.0) < 0)
					_exit(3);
			}
			mproc_queue_free(q);
			_exit(0);
		}
	}
	for (int p = 0; p < MP_PROD; p++) {
		CHECK_EQ(waitpid(pids[MP_CONS + p], &st, 0), pids[MP_CONS + p]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (int c = 0; c < MP_CONS; c++)
		CHECK_OK(mproc_queue_put(q, "", 0, 20.0));
	for (int c = 0; c < MP_CONS; c++) {
		CHECK_EQ(waitpid(pids[c], &st, 0), pids[c]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	uint32_t total = 0;
	for (int c = 0; c < MP_CONS; c++) {
		total += rec[c].n;
		CHECK_EQ(rec[c].bad, 0);
		CHECK_EQ(rec[c].order, 0);
		CHECK_EQ(rec[c].dup, 0);
	}
	CHECK_EQ(total, MP_PROD * MP_ITEMS);
	for (int p = 0; p < MP_PROD; p++) {
		for (uint32_t s = 0; s < MP_ITEMS; s++) {
			int seen = 0;
			for (int c = 0; c < MP_CONS; c++)
				seen += !!(rec[c].got[p][s / 32] & (1u << (s % 32)));
			if (seen != 1) {
				CHECK_EQ(seen, 1);
				break;
			}
		}
	}
	CHECK_EQ(mproc_queue_qsize(q), 0);
	munmap(rec, sizeof(*rec) * MP_CONS);
	mproc_queue_free(q);
}

/* A child puts 10 000 x 1 KiB and exits while the parent has not drained: the child waits
 * (documented: put blocks while the channel is full), nothing hangs for good, all arrive. */
static void t_child_exit_undrained(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 1024, 0);
	unsigned char buf[1024];
	pid_t pid;
	int st = 0;
	double t0;

	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		for (uint32_t s = 0; s < 10000; s++) {
			make_item(buf, sizeof(buf), 0, s);
			if (mproc_queue_put(q, buf, sizeof(buf), 30.0) < 0)
				_exit(3);
		}
		mproc_queue_free(q);
		_exit(0);
	}
	/* "join(0.3)" before draining: returns (child still blocked, or already done). */
	t0 = tap_now();
	while (tap_now() - t0 < 0.3 && waitpid(pid, &st, WNOHANG) == 0)
		usleep(10000);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	for (uint32_t s = 0; s < 10000; s++) {
		struct item_hdr h = { 0 };
		ssize_t n = mproc_queue_get(q, buf, sizeof(buf), 10.0);
		if (n != (ssize_t)sizeof(buf) || !check_item(buf, (size_t)n, &h) || h.seq != s) {
			CHECK_EQ(n, sizeof(buf));
			CHECK_EQ(h.seq, s);
			break;
		}
	}
	if (waitpid(pid, &st, WNOHANG) == 0)
		CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_ERR(mproc_queue_get(q, buf, sizeof(buf), 0), -EAGAIN);
	mproc_queue_free(q);
}

static pid_t wait_child(pid_t pid, int *st)
{
	pid_t r;

	while ((r = waitpid(pid, st, 0)) < 0 && errno == EINTR)
		;
	return r;
}

static void on_usr1(int sig)
{
	(void)sig;
}

static timer_t storm_start(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };    /* no SA_RESTART */
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { .it_interval = { 0, 10000000 }, .it_value = { 0, 10000000 } };
	timer_t t;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	if (timer_create(CLOCK_MONOTONIC, &ev, &t) < 0)
		tap_abort_case();
	timer_settime(t, 0, &its, NULL);
	return t;
}

static void t_eintr_storm(void *arg)
{
	struct mproc_queue *q = mkq(arg, 4, 0, 0);
	size_t max = mproc_queue_max_msg(q);
	unsigned char *buf = malloc(max);
	timer_t t;
	pid_t pid;
	int st;
	double t0, dt;

	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		timer_t ct = storm_start();
		unsigned char b[256];
		for (uint32_t s = 0; s < 3000; s++) {
			size_t len = make_item(b, 16 + s % 200, 1, s);
			if (mproc_queue_put(q, b, len, 20.0) < 0)
				_exit(3);
			if (s % 500 == 0)
				usleep(30000);  /* let the getter sleep through signals */
		}
		timer_delete(ct);
		mproc_queue_free(q);
		_exit(0);
	}
	t = storm_start();
	for (uint32_t s = 0; s < 3000; s++) {
		struct item_hdr h = { 0 };
		ssize_t n = mproc_queue_get(q, buf, max, 20.0);
		if (n < 0 || !check_item(buf, (size_t)n, &h) || h.seq != s) {
			CHECK_OK(n);
			CHECK_EQ(h.seq, s);
			break;
		}
	}
	CHECK_EQ(wait_child(pid, &st), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Timeouts are honoured under the storm. */
	t0 = tap_now();
	CHECK_ERR(mproc_queue_get(q, buf, max, 0.3), -ETIMEDOUT);
	dt = tap_now() - t0;
	CHECK_CMP(dt, >=, 0.3);
	CHECK_CMP(dt, <=, 0.3 + 0.1 * tap_timeout_mult());
	for (int i = 0; i < 4; i++)
		CHECK_OK(mproc_queue_put(q, "x", 1, 0));
	t0 = tap_now();
	CHECK_ERR(mproc_queue_put(q, "x", 1, 0.3), -ETIMEDOUT);
	dt = tap_now() - t0;
	CHECK_CMP(dt, >=, 0.3);
	CHECK_CMP(dt, <=, 0.3 + 0.1 * tap_timeout_mult());
	timer_delete(t);
	signal(SIGUSR1, SIG_DFL);
	free(buf);
	mproc_queue_free(q);
}

/* A producer SIGKILLed mid-put: consumers get whole items or an error, never a torn record,
 * never a hang; the queue stays usable. */
static void t_producer_killed(void *arg)
{
	enum mproc_queue_backend bk = BK(arg);
	size_t big = (bk == MPROC_QUEUE_MQ || bk == MPROC_QUEUE_SYSV) ? 0 : 600 * 1024;
	struct mproc_queue *q = mkq(arg, 0, big, 0);
	size_t max = mproc_queue_max_msg(q);
	unsigned char *buf = malloc(max);
	int round;

	for (round = 0; round < 3; round++) {
		pid_t pid = fork();
		int st;
		uint32_t got = 0;

		ASSERT(pid >= 0);
		if (pid == 0) {
			for (uint32_t s = 0;; s++) {
				size_t len = make_item(buf, max - (s % 3) * 17, 9, s);
				if (mproc_queue_put(q, buf, len, MPROC_FOREVER) < 0)
					_exit(3);
			}
		}
		usleep(20000 + round * 15000);
		/* Take a few while it runs, then kill it wherever it is. */
		for (int i = 0; i < 2; i++) {
			struct item_hdr h;
			ssize_t n = mproc_queue_get(q, buf, max, 5.0);
			CHECK(n > 0 && check_item(buf, (size_t)n, &h));
		}
		kill(pid, SIGKILL);
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFSIGNALED(st));
		for (;;) {
			struct item_hdr h;
			double t0 = tap_now();
			ssize_t n = mproc_queue_get(q, buf, max, 0.3);
			CHECK_CMP(tap_now() - t0, <, 2.0 * tap_timeout_mult());
			if (n == -ETIMEDOUT || n == -EBADMSG)
				break;
			if (n < 0) {
				CHECK_OK(n);
				break;
			}
			CHECK(check_item(buf, (size_t)n, &h));
			got++;
		}
		tap_diag("round %d: %u whole items after the kill", round, got);
		/* Still usable: a new item goes through whole. */
		size_t len = make_item(buf, 100, 1, 42);
		int r = mproc_queue_put(q, buf, len, 2.0);
		if (r == -EBADMSG)
			break;          /* documented: pipe broken by a dead reader only */
		CHECK_OK(r);
		struct item_hdr h = { 0 };
		ssize_t n = mproc_queue_get(q, buf, max, 2.0);
		CHECK_EQ(n, 100);
		CHECK(n > 0 && check_item(buf, (size_t)n, &h) && h.seq == 42);
	}
	free(buf);
	mproc_queue_free(q);
}

/* A consumer SIGKILLed while blocked or mid-get never wedges the queue. */
static void t_consumer_killed(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 0, 0);
	size_t max = mproc_queue_max_msg(q);
	unsigned char *buf = malloc(max);
	pid_t pid;
	int st;

	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		mproc_queue_get(q, buf, max, MPROC_FOREVER);
		_exit(0);
	}
	usleep(50000);
	kill(pid, SIGKILL);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_OK(mproc_queue_put(q, "hello", 5, 1.0));
	CHECK_EQ(mproc_queue_get(q, buf, max, 1.0), 5);
	CHECK_MEM_EQ(buf, "hello", 5);
	free(buf);
	mproc_queue_free(q);
}

/*
 * maxsize survives processes SIGKILLed anywhere inside put and get: after many rounds of a
 * putter and a getter killed at random moments, qsize matches what a drain finds, and exactly
 * maxsize non-blocking puts fit again. A count kept beside the queue and not restored by a
 * dead process (the SysV back end once had one) makes the queue "full" one item early, for
 * good. The pipe back end may be broken by a reader killed mid-record (-EBADMSG, documented).
 */
static void t_kill_keeps_maxsize(void *arg)
{
	enum { MAXSIZE = 4, ROUNDS = 25, KILLS = 10 };
	struct mproc_queue *q;
	char b[64];
	uint64_t v = 0;
	unsigned seed = (unsigned)getpid();
	int broken = 0;

	q = mkq(arg, MAXSIZE, 64, 0);
	for (int round = 0; round < ROUNDS && !tap_failed(); round++) {
		ssize_t n, qs;
		int st, r, d = 0;

		for (int kill_no = 0; kill_no < KILLS; kill_no++) {
			pid_t pid[2];

			for (int k = 0; k < 2; k++) {
				pid[k] = fork();
				ASSERT(pid[k] >= 0);
				if (pid[k] != 0)
					continue;
				for (uint64_t s = 0;; s++) {
					if (k == 0 && mproc_queue_put(q, &s, sizeof(s),
								      MPROC_FOREVER) < 0)
						_exit(3);
					if (k == 1 && mproc_queue_get(q, b, sizeof(b),
								      MPROC_FOREVER) < 0)
						_exit(3);
				}
			}
			usleep(200 + (unsigned)(rand_r(&seed) % 1500));
			kill(pid[0], SIGKILL);
			kill(pid[1], SIGKILL);
			CHECK_EQ(waitpid(pid[0], &st, 0), pid[0]);
			CHECK_EQ(waitpid(pid[1], &st, 0), pid[1]);
		}
		/* Timed calls: a lock left by a dead holder is taken over after one slice
		 * (MPROC__QLOCK_SLICE_NS), which a non-blocking call does not wait for. */
		qs = mproc_queue_qsize(q);
		while ((n = mproc_queue_get(q, b, sizeof(b), 0.15)) >= 0)
			d++;
		if (n == -EBADMSG && BK(arg) == MPROC_QUEUE_PIPE) {
			/* Documented; go on with a new queue so that every round checks. */
			broken++;
			mproc_queue_free(q);
			q = mkq(arg, MAXSIZE, 64, 0);
			continue;
		}
		CHECK_ERR(n, -ETIMEDOUT);
		/* pipe: a record torn by a dead writer or read by a dead reader may count until
		 * the drain's resync */
		if (BK(arg) != MPROC_QUEUE_PIPE)
			CHECK_EQ(qs, d);
		else
			CHECK(qs >= d && qs <= d + 2);
		CHECK_CMP(d, <=, MAXSIZE);
		for (int i = 0; i < MAXSIZE; i++) {
			r = mproc_queue_put(q, &v, sizeof(v), 0.2);
			if (r < 0) {
				tap_diag("round %d: put %d of %d: %s", round, i + 1, MAXSIZE,
					 mproc_strerror(r));
				CHECK_OK(r);
				break;
			}
		}
		CHECK_ERR(mproc_queue_put(q, &v, sizeof(v), 0), -EAGAIN);
		CHECK_EQ(mproc_queue_qsize(q), MAXSIZE);
		for (int i = 0; i < MAXSIZE; i++)
			CHECK_EQ(mproc_queue_get(q, b, sizeof(b), 1.0), (ssize_t)sizeof(v));
	}
	if (broken)
		tap_diag("pipe: %d of %d rounds broken by a reader killed mid-record", broken,
			 ROUNDS);
	mproc_queue_free(q);
}

/*
 * A child started by an exec-based method (a fresh image: no memory of ours, no fds but
 * stdio for spawn and forkserver) attaches with the descriptor it got as its argument and
 * puts; the parent gets every item whole and in order. Also a non-exec check: a descriptor
 * attached in the exporting process itself works on the same queue.
 */
enum { EXEC_ITEMS = 200 };

static int e_queue_put(void *arg)
{
	struct mproc_queue *q;
	unsigned char buf[300];
	int r = mproc_queue_attach(&q, arg);

	if (r < 0)
		return 10 + (-r & 0x7f) % 100;
	for (uint32_t s = 0; s < EXEC_ITEMS; s++) {
		size_t len = make_item(buf, 16 + s % 250, 3, s);

		if (mproc_queue_put(q, buf, len, 10.0) < 0) {
			mproc_queue_free(q);
			return 3;
		}
	}
	mproc_queue_free(q);
	return 0;
}
MPROC_ENTRY("t-queue-put", e_queue_put)

static void t_exec_child(void *arg)
{
	static const enum mproc_start_method ms[] = {
		MPROC_START_VFORK, MPROC_START_POSIX_SPAWN, MPROC_START_SPAWN, MPROC_START_FORKSERVER,
	};
	struct mproc_queue *q = mkq(arg, 8, 512, 0), *q2;
	struct mproc_queue_desc d, bad;
	size_t max = mproc_queue_max_msg(q);
	unsigned char *buf = malloc(max);

	ASSERT(buf);
	CHECK_OK(mproc_queue_export(q, &d));
	/* Attached in this very process: the same queue. */
	CHECK_OK(mproc_queue_attach(&q2, &d));
	CHECK_OK(mproc_queue_put(q2, "x", 1, 1.0));
	CHECK_EQ(mproc_queue_get(q, buf, max, 1.0), 1);
	mproc_queue_free(q2);
	memset(&bad, 0, sizeof(bad));
	q2 = q;
	CHECK_ERR(mproc_queue_attach(&q2, &bad), -EINVAL);
	CHECK(q2 == NULL);
	for (size_t m = 0; m < ARRAY_SIZE(ms); m++) {
		struct mproc_process_opts po = { .method = ms[m], .entry = "t-queue-put",
						 .arg_len = sizeof(d) };
		struct mproc_process *p;
		uint32_t got = 0;

		CHECK_OK(mproc_process_new(&p, e_queue_put, &d, &po));
		if (tap_failed())
			break;
		CHECK_OK(mproc_process_start(p));
		for (; got < EXEC_ITEMS && !tap_failed(); got++) {
			struct item_hdr h = { 0 };
			ssize_t n = mproc_queue_get(q, buf, max, 10.0);

			if (n < 0) {
				tap_diag("%s: item %u: %s", mproc_start_method_name(ms[m]), got,
					 mproc_strerror((int)n));
				CHECK_OK(n);
				break;
			}
			CHECK(check_item(buf, (size_t)n, &h));
			CHECK_EQ(h.seq, got);
		}
		int code = -1;

		CHECK_OK(mproc_process_join(p, 10.0));
		CHECK_OK(mproc_process_exitcode(p, &code));
		CHECK_EQ(code, 0);
		mproc_process_free(p);
	}
	mproc_forkserver_stop();
	CHECK_ERR(mproc_queue_get(q, buf, max, 0), -EAGAIN);
	free(buf);
	mproc_queue_free(q);
}

static void t_joinable(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 0, MPROC_QUEUE_JOINABLE);
	size_t max = mproc_queue_max_msg(q);
	pid_t pids[4];
	int st;
	double t0;

	CHECK_OK(mproc_queue_join(q, 0));               /* nothing put: returns at once */
	CHECK_ERR(mproc_queue_task_done(q), -EINVAL);
	for (int w = 0; w < 4; w++) {
		pids[w] = fork();
		ASSERT(pids[w] >= 0);
		if (pids[w] == 0) {
			char *b = malloc(max);
			for (;;) {
				ssize_t n = mproc_queue_get(q, b, max, 5.0);
				if (n < 0)
					_exit(3);
				if (n == 0) {
					mproc_queue_task_done(q);
					break;
				}
				usleep(20000);  /* work */
				if (mproc_queue_task_done(q) < 0)
					_exit(4);
			}
			free(b);
			mproc_queue_free(q);
			_exit(0);
		}
	}
	for (int i = 1; i <= 10; i++)
		CHECK_OK(mproc_queue_put(q, &i, sizeof(i), 5.0));
	CHECK_ERR(mproc_queue_join(q, 0), -EAGAIN);
	t0 = tap_now();
	CHECK_OK(mproc_queue_join(q, 10.0 * tap_timeout_mult()));
	CHECK_CMP(tap_now() - t0, <, 5.0 * tap_timeout_mult());
	CHECK_EQ(mproc_queue_qsize(q), 0);
	for (int w = 0; w < 4; w++)
		CHECK_OK(mproc_queue_put(q, "", 0, 5.0));
	for (int w = 0; w < 4; w++) {
		CHECK_EQ(waitpid(pids[w], &st, 0), pids[w]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	CHECK_OK(mproc_queue_join(q, 1.0));
	CHECK_ERR(mproc_queue_task_done(q), -EINVAL);    /* one too many */
	/* join with a timeout while an item is unfinished. */
	CHECK_OK(mproc_queue_put(q, "a", 1, 0));
	t0 = tap_now();
	CHECK_ERR(mproc_queue_join(q, 0.2), -ETIMEDOUT);
	CHECK_CMP(tap_now() - t0, >=, 0.2);
	mproc_queue_free(q);
}

static void t_available(void *arg)
{
	const char *why = "unset";
	int r = mproc_queue_backend_available(BK(arg), &why);

	if (r < 0) {
		CHECK(why != NULL);
		tap_skip("unavailable: %s (%s)", why, mproc_strerror(r));
	}
	CHECK(why == NULL);
	static const char *const names[] = { "pipe", "ring", "mq", "sysv" };

	CHECK_STR_EQ(mproc_queue_backend_name(BK(arg)), names[BK(arg)]);
}

static void t_ring_modes(void *arg)
{
	unsigned flags[] = { MPROC_QUEUE_SPIN, MPROC_QUEUE_NOSPIN };

	for (size_t f = 0; f < 2; f++) {
		struct mproc_queue *q = mkq(arg, 0, 64, flags[f]);
		char b[64];
		pid_t pid = fork();
		int st;

		ASSERT(pid >= 0);
		if (pid == 0) {
			for (uint32_t i = 0; i < 20000; i++)
				if (mproc_queue_put(q, &i, sizeof(i), 10.0) < 0)
					_exit(3);
			_exit(0);
		}
		for (uint32_t i = 0; i < 20000; i++) {
			uint32_t v;
			if (mproc_queue_get(q, b, sizeof(b), 10.0) != 4) {
				CHECK(0);
				break;
			}
			memcpy(&v, b, 4);
			if (v != i) {
				CHECK_EQ(v, i);
				break;
			}
		}
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		mproc_queue_free(q);
	}
}

/* The ring's own robust lock: a holder SIGKILLed while holding it is detected, and the next
 * locker gets -EOWNERDEAD (and holds the lock) within about one slice, never a hang. */
/* A child takes the lock and pauses; returns its pid once it holds it. */
static pid_t qlock_holder(_Atomic uint32_t *lock)
{
	pid_t pid = fork();

	ASSERT(pid >= 0);
	if (pid == 0) {
		mproc__qlock(lock, MPROC__NO_DEADLINE);
		pause();
		_exit(0);
	}
	while (atomic_load(lock) == 0)
		usleep(1000);
	return pid;
}

static void t_qlock_owner_dies(void *arg)
{
	_Atomic uint32_t *lock = shared(4096);
	pid_t pid;
	int st;
	double t0;

	CHECK_OK(mproc__qlock(lock, MPROC__NO_DEADLINE));
	mproc__qunlock(lock);
	pid = qlock_holder(lock);
	/* A live holder: a timed lock times out. */
	t0 = tap_now();
	CHECK_ERR(mproc__qlock(lock, mproc__now_ns() + 100 * 1000000), -ETIMEDOUT);
	CHECK_CMP(tap_now() - t0, >=, 0.1);
	kill(pid, SIGKILL);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	t0 = tap_now();
	CHECK_ERR(mproc__qlock(lock, mproc__now_ns() + 5 * MPROC__NSEC_PER_SEC), -EOWNERDEAD);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	mproc__qunlock(lock);
	CHECK_OK(mproc__qlock(lock, 0));
	mproc__qunlock(lock);
	/* Callers that only poll learn of a dead owner too: timeout 0, and a deadline within one
	 * wait slice. (The soak found a ring wedged for good: its holder had been killed and
	 * every consumer called get with a timeout of one slice, which never checked.) */
	pid = qlock_holder(lock);
	kill(pid, SIGKILL);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_ERR(mproc__qlock(lock, 0), -EOWNERDEAD);
	mproc__qunlock(lock);
	/* A holder killed and not yet reaped (a zombie) is dead too: the process that would
	 * reap it may be the one waiting for the lock. */
	pid = qlock_holder(lock);
	kill(pid, SIGKILL);
	{
		siginfo_t si;

		CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	}
	t0 = tap_now();
	CHECK_ERR(mproc__qlock(lock, mproc__now_ns() + 5 * MPROC__NSEC_PER_SEC), -EOWNERDEAD);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	mproc__qunlock(lock);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	pid = qlock_holder(lock);
	kill(pid, SIGKILL);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK_ERR(mproc__qlock(lock, mproc__now_ns() + MPROC__QLOCK_SLICE_NS / 5), -EOWNERDEAD);
	mproc__qunlock(lock);
	munmap((void *)lock, 4096);
}

/* A SysV queue whose creator died without freeing it is found and removed; a live one is
 * left alone. */
static void t_sysv_clean_stale(void *arg)
{
	struct mproc_queue *live = mkq(arg, 0, 0, 0);
	char b[64];
	pid_t pid;
	int st;

	CHECK_OK(mproc_queue_put(live, "keep", 4, 0));
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		struct mproc_queue *q;
		struct mproc_queue_opts o = { .backend = MPROC_QUEUE_SYSV };
		_exit(mproc_queue_new(&q, &o) == 0 ? 0 : 3);   /* "crash": never freed */
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(mproc_queue_clean_stale(), 1);
	CHECK_EQ(mproc_queue_clean_stale(), 0);
	/* The live queue still works, its marker back in place. */
	CHECK_EQ(mproc_queue_qsize(live), 1);
	CHECK_EQ(mproc_queue_get(live, b, sizeof(b), 0), 4);
	CHECK_EQ(mproc_queue_qsize(live), 0);
	mproc_queue_free(live);
}

/* Threads of one process share a handle ("safe between threads", queue.h): 2 producer and
 * 2 consumer threads, every item arrives once and intact (the TSan build runs this too). */
#define TQ_PER_PROD 2000
struct tq {
	struct mproc_queue *q;
	uint32_t prod;
	_Atomic uint8_t *seen;          /* [prod * TQ_PER_PROD + seq] */
	_Atomic int bad;
};

static void *tq_producer(void *arg)
{
	struct tq *t = arg;
	unsigned char buf[256];
	uint32_t prod = t->prod;

	for (uint32_t i = 0; i < TQ_PER_PROD; i++) {
		size_t len = make_item(buf, 16 + i % 200, prod, i);

		if (mproc_queue_put(t->q, buf, len, 10.0 * tap_timeout_mult()) < 0) {
			atomic_fetch_add(&t->bad, 1);
			break;
		}
	}
	return NULL;
}

static void *tq_consumer(void *arg)
{
	struct tq *t = arg;
	unsigned char buf[256];
	struct item_hdr h;
	ssize_t n;

	for (;;) {
		n = mproc_queue_get(t->q, buf, sizeof(buf), 10.0 * tap_timeout_mult());
		if (n < 0) {
			atomic_fetch_add(&t->bad, 1);
			break;
		}
		if (!check_item(buf, (size_t)n, &h) || h.prod > 2 || h.seq >= TQ_PER_PROD) {
			atomic_fetch_add(&t->bad, 1);
			continue;
		}
		if (h.prod == 2)
			break;          /* the end marker: one per consumer */
		atomic_fetch_add(&t->seen[h.prod * TQ_PER_PROD + h.seq], 1);
	}
	return NULL;
}

static void t_threads(void *arg)
{
	struct mproc_queue *q = mkq(arg, 8, 256, 0);
	static _Atomic uint8_t seen[2 * TQ_PER_PROD];
	struct tq t[2] = { { .q = q, .prod = 0, .seen = seen }, { .q = q, .prod = 1, .seen = seen } };
	pthread_t prod[2], cons[2];
	unsigned char buf[64];
	int k;

	for (k = 0; k < 2 * TQ_PER_PROD; k++)
		atomic_store(&seen[k], 0);
	for (k = 0; k < 2; k++) {
		ASSERT_EQ(pthread_create(&cons[k], NULL, tq_consumer, &t[0]), 0);
		ASSERT_EQ(pthread_create(&prod[k], NULL, tq_producer, &t[k]), 0);
	}
	for (k = 0; k < 2; k++)
		pthread_join(prod[k], NULL);
	for (k = 0; k < 2; k++)
		CHECK_OK(mproc_queue_put(q, buf, make_item(buf, 16, 2, 0), 10.0));
	for (k = 0; k < 2; k++)
		pthread_join(cons[k], NULL);
	CHECK_EQ(atomic_load(&t[0].bad) + atomic_load(&t[1].bad), 0);
	for (k = 0; k < 2 * TQ_PER_PROD; k++) {
		if (atomic_load(&seen[k]) != 1) {
			tap_fail_at(__FILE__, __LINE__, "item %d seen %d times", k,
				    (int)atomic_load(&seen[k]));
			break;
		}
	}
	CHECK_EQ(mproc_queue_qsize(q), 0);
	mproc_queue_free(q);
}

/*
 * The ring's single-owner fast path (a thread that ran a side's last puts or gets alone keeps
 * that side's lock between calls): producers go 1 -> 2 -> 1 and consumers 1 -> 2 -> 1 while
 * items flow. Every item arrives once and whole, each consumer sees each producer's items in
 * order, and the side is kept again by its only user once the second one has gone.
 */
enum { KH_PROD = 3, KH_MAX = 1 << 17, KH_P2_ITEMS = 5000, KH_C2_ITEMS = 1000 };

struct kh_shared {
	_Atomic uint32_t phase;         /* 1: second producer and consumer run; 2: stop */
	_Atomic uint32_t puts[KH_PROD]; /* items put by producer 1, 2 */
	_Atomic uint32_t c2_got, c2_bad;
	_Atomic uint8_t seen[KH_PROD][KH_MAX];
};

/* Get one item and account for it; false on a torn, unknown, repeated or out-of-order item. */
static bool kh_take(struct mproc_queue *q, struct kh_shared *sh, uint32_t *next, double t)
{
	unsigned char buf[256];
	struct item_hdr h;
	ssize_t n = mproc_queue_get(q, buf, sizeof(buf), t);

	if (n < 0 || !check_item(buf, (size_t)n, &h) || h.prod < 1 || h.prod >= KH_PROD ||
	    h.seq >= KH_MAX || h.seq < next[h.prod])
		return false;
	next[h.prod] = h.seq + 1;
	return atomic_fetch_add(&sh->seen[h.prod][h.seq], 1) == 0;
}

static void kh_producer(struct mproc_queue *q, struct kh_shared *sh, uint32_t id, uint32_t items)
{
	unsigned char buf[256];

	for (uint32_t s = 0; s < items && s < KH_MAX; s++) {
		if (id == 1 && atomic_load(&sh->phase) == 2)
			break;
		int r = mproc_queue_put(q, buf, make_item(buf, 24 + s % 100, id, s), 10.0);

		if (r < 0)
			_exit(10 + -r % 100);
		atomic_store(&sh->puts[id], s + 1);
	}
	_exit(0);
}

static void t_ring_keeper_handover(void *arg)
{
	struct kh_shared *sh = shared(sizeof(*sh));
	struct mproc_queue *q = mkq(arg, 0, 256, 0);
	uint32_t next[KH_PROD] = { 0 }, got = 0, me = mproc__qlock_self();
	pid_t p1, p2, c2;
	int st;

	p1 = fork();
	ASSERT(p1 >= 0);
	if (p1 == 0)
		kh_producer(q, sh, 1, KH_MAX);
	/* 1 producer, 1 consumer: both sides kept once each has run 128 items in a row. */
	while (got < 1000 && kh_take(q, sh, next, 10.0))
		got++;
	CHECK_EQ(got, 1000);
	CHECK_EQ(mproc__ring_keeper(q, false), (uint32_t)p1);
	CHECK_EQ(mproc__ring_keeper(q, true), me);
	/* 2 and 2, while producer 1 goes on. */
	p2 = fork();
	ASSERT(p2 >= 0);
	if (p2 == 0)
		kh_producer(q, sh, 2, KH_P2_ITEMS);
	c2 = fork();
	ASSERT(c2 >= 0);
	if (c2 == 0) {
		uint32_t cnext[KH_PROD] = { 0 };

		for (uint32_t i = 0; i < KH_C2_ITEMS; i++) {
			if (!kh_take(q, sh, cnext, 10.0))
				atomic_fetch_add(&sh->c2_bad, 1);
			atomic_fetch_add(&sh->c2_got, 1);
		}
		_exit(0);
	}
	for (;;) {
		pid_t w = waitpid(c2, &st, WNOHANG);

		if (w == c2)
			c2 = -1;
		if (c2 < 0 && atomic_load(&sh->puts[2]) == KH_P2_ITEMS)
			break;
		if (!kh_take(q, sh, next, 10.0)) {
			CHECK(!"an item was lost, torn, repeated or out of order");
			break;
		}
		got++;
		if (c2 < 0 && atomic_load(&sh->puts[2]) == KH_P2_ITEMS)
			break;
	}
	if (c2 > 0)
		CHECK_EQ(waitpid(c2, &st, 0), c2);
	CHECK_EQ(waitpid(p2, &st, 0), p2);
	CHECK_EQ(st, 0);
	CHECK_EQ(atomic_load(&sh->c2_bad), 0);
	CHECK_EQ(atomic_load(&sh->c2_got), KH_C2_ITEMS);
	/* Back to 1 and 1: kept again once each has run 128 items in a row alone (producer 1
	 * may be asleep on a full ring until we have freed a quarter of it). */
	uint32_t p1_at = atomic_load(&sh->puts[1]);

	for (int i = 0; (i < 300 || atomic_load(&sh->puts[1]) < p1_at + 300) &&
	     atomic_load(&sh->puts[1]) < KH_MAX; i++) {
		if (!kh_take(q, sh, next, 10.0)) {
			CHECK(!"an item was lost, torn, repeated or out of order");
			break;
		}
		got++;
	}
	CHECK_EQ(mproc__ring_keeper(q, false), (uint32_t)p1);
	CHECK_EQ(mproc__ring_keeper(q, true), me);
	/* Stop producer 1 (it may be asleep on a full ring: drain meanwhile), then drain. */
	atomic_store(&sh->phase, 2);
	while (waitpid(p1, &st, WNOHANG) == 0)
		if (kh_take(q, sh, next, 0.05))
			got++;
	CHECK_EQ(st, 0);
	while (kh_take(q, sh, next, 0.2))
		got++;
	CHECK_EQ(got + KH_C2_ITEMS, atomic_load(&sh->puts[1]) + atomic_load(&sh->puts[2]));
	for (uint32_t p = 1; p < KH_PROD; p++)
		for (uint32_t s = 0; s < atomic_load(&sh->puts[p]); s++)
			if (atomic_load(&sh->seen[p][s]) != 1) {
				tap_fail_at(__FILE__, __LINE__, "item %u/%u seen %d times", p, s,
					    (int)atomic_load(&sh->seen[p][s]));
				p = KH_PROD;
				break;
			}
	CHECK_EQ(mproc_queue_qsize(q), 0);
	mproc_queue_free(q);
	munmap(sh, sizeof(*sh));
}

/*
 * A single producer that keeps the producers' lock, SIGKILLed at random moments (inside its
 * fast path or between puts), and likewise a single consumer: the parent then takes the side
 * over (a dead keeper is a dead lock holder) and finds every item whole, once, in order, no
 * gap; a record the killed consumer was copying is taken again, never lost.
 */
static void t_ring_keeper_killed(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 256, 0);
	_Atomic uint32_t *last = shared(4096);  /* the killed consumer's last item + 1 */
	unsigned seed = (unsigned)getpid();
	unsigned char buf[256];

	for (uint32_t round = 0; round < 20 && !tap_failed(); round++) {
		bool kill_consumer = round & 1;
		uint32_t next = 0, id = round + 1;
		struct item_hdr h;
		pid_t pid;
		ssize_t n;
		int st;

		atomic_store(last, 0);
		pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0) {
			for (uint32_t s = 0;; s++) {
				if (!kill_consumer &&
				    mproc_queue_put(q, buf, make_item(buf, 24 + s % 200, id, s),
						    MPROC_FOREVER) < 0)
					_exit(3);
				if (kill_consumer) {
					n = mproc_queue_get(q, buf, sizeof(buf), MPROC_FOREVER);
					if (n < 0 || !check_item(buf, (size_t)n, &h) ||
					    h.seq != atomic_load(last))
						_exit(4);
					atomic_store(last, h.seq + 1);
				}
			}
		}
		if (kill_consumer) {
			/* We produce; the child consumes until it keeps its side. */
			uint32_t s = 0, kill_at;

			while (s < 2000 && mproc_queue_put(q, buf, make_item(buf, 24 + s % 200, id, s),
							   10.0) == 0)
				s++;
			for (int i = 0; i < 5000 && mproc__ring_keeper(q, true) != (uint32_t)pid; i++)
				usleep(1000);
			CHECK_EQ(mproc__ring_keeper(q, true), (uint32_t)pid);
			/* Put on (the ring holds about 8000 of these), kill it somewhere. */
			kill_at = s + (uint32_t)rand_r(&seed) % 4000;
			while (s < kill_at && mproc_queue_put(q, buf, make_item(buf, 24 + s % 200, id,
									       s), 10.0) == 0)
				s++;
			CHECK_EQ(s, kill_at);
			kill(pid, SIGKILL);
			CHECK_EQ(waitpid(pid, &st, 0), pid);
			CHECK(WIFSIGNALED(st));
			next = atomic_load(last);
			/* The first item left is its last + 1: the record it was copying comes
			 * again (never one it had counted); one further on only if it died
			 * between its get's return and counting it. */
			n = mproc_queue_get(q, buf, sizeof(buf), 0.5);
			if (n != -ETIMEDOUT) {
				CHECK(n > 0 && check_item(buf, (size_t)n, &h) && h.prod == id);
				CHECK(h.seq == next || h.seq == next + 1);
				next = h.seq + 1;
			} else if (next + 1 == s) {
				/* Nothing left: it had taken every item, the last one uncounted
				 * (killed between its get's return and its count; seen once
				 * beside a CPU hog). */
				next = s;
			}
			while ((n = mproc_queue_get(q, buf, sizeof(buf), 0)) > 0) {
				if (!check_item(buf, (size_t)n, &h) || h.seq != next) {
					CHECK_EQ(h.seq, next);
					break;
				}
				next++;
			}
			CHECK_EQ(next, s);
		} else {
			int got = 0;

			while (got < 1000 &&
			       (n = mproc_queue_get(q, buf, sizeof(buf), 10.0)) > 0 &&
			       check_item(buf, (size_t)n, &h) && h.seq == next) {
				next++;
				got++;
			}
			CHECK_EQ(got, 1000);
			CHECK_EQ(mproc__ring_keeper(q, false), (uint32_t)pid);
			usleep(rand_r(&seed) % 3000);
			kill(pid, SIGKILL);
			CHECK_EQ(waitpid(pid, &st, 0), pid);
			CHECK(WIFSIGNALED(st));
			while ((n = mproc_queue_get(q, buf, sizeof(buf), 0.3)) > 0) {
				if (!check_item(buf, (size_t)n, &h) || h.prod != id || h.seq != next) {
					CHECK_EQ(h.seq, next);
					break;
				}
				next++;
			}
			CHECK_ERR(n, -ETIMEDOUT);
			/* The side is usable: our put takes it over from the dead keeper. */
			CHECK_OK(mproc_queue_put(q, buf, make_item(buf, 40, 99, 7), 2.0));
			n = mproc_queue_get(q, buf, sizeof(buf), 2.0);
			CHECK(n == 40 && check_item(buf, (size_t)n, &h) && h.prod == 99 && h.seq == 7);
		}
		CHECK_EQ(mproc_queue_qsize(q), 0);
	}
	munmap((void *)last, 4096);
	mproc_queue_free(q);
}

/* The same hand-over between threads of one process (each thread is its own keeper), for
 * ThreadSanitizer: two producers, the second joining after 1000 items, one consumer. */
struct kt_arg {
	struct mproc_queue *q;
	uint32_t id, items;
	_Atomic uint32_t *started;
};

static void *kt_producer(void *p)
{
	struct kt_arg *a = p;
	unsigned char buf[128];

	for (uint32_t s = 0; s < a->items; s++) {
		if (mproc_queue_put(a->q, buf, make_item(buf, 24 + s % 90, a->id, s), 10.0) < 0)
			return (void *)1;
		atomic_store(a->started, s + 1);
	}
	return NULL;
}

static void t_ring_keeper_threads(void *arg)
{
	struct mproc_queue *q = mkq(arg, 0, 128, 0);
	_Atomic uint32_t started[3] = { 0 };
	struct kt_arg a[3] = { { q, 1, 6000, &started[1] }, { q, 2, 2000, &started[2] } };
	uint32_t next[3] = { 0 };
	unsigned char buf[128];
	pthread_t t[2];
	void *ret;
	int k;

	ASSERT(pthread_create(&t[0], NULL, kt_producer, &a[0]) == 0);
	for (k = 0; k < 8000; k++) {
		struct item_hdr h;
		ssize_t n;

		if (k == 1000)
			ASSERT(pthread_create(&t[1], NULL, kt_producer, &a[1]) == 0);
		n = mproc_queue_get(q, buf, sizeof(buf), 10.0);
		if (n < 0 || !check_item(buf, (size_t)n, &h) || h.prod < 1 || h.prod > 2 ||
		    h.seq != next[h.prod]) {
			CHECK(!"an item was lost, torn, repeated or out of order");
			break;
		}
		next[h.prod]++;
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], &ret);
		CHECK(ret == NULL);
	}
	CHECK_EQ(next[1], 6000);
	CHECK_EQ(next[2], 2000);
	CHECK_EQ(mproc_queue_qsize(q), 0);
	mproc_queue_free(q);
}

/*
 * A consumer keeper that waits inside its get (mproc__ring_keeper_spin, its busy word set, then
 * ring_wait) is revoked by a second consumer thread that wants the side, while both wait on an
 * empty ring: neither may hang, and the two items put afterwards go one to each or both to one,
 * never lost or twice. Rounds with the spin-only flag (the keeper spins long when the producer
 * runs on another CPU) and without (a short spin, then the adaptive wait); the second consumer
 * starts at a different moment of the keeper's wait each round.
 */
struct kw_arg {
	struct mproc_queue *q;
	_Atomic uint32_t phase;         /* 1: keeper waiting; 2: revoker waiting; 3: done */
	unsigned delay_us;
	ssize_t n;
	uint64_t item;
};

static void *kw_revoker(void *p)
{
	struct kw_arg *a = p;

	while (atomic_load(&a->phase) < 1)
		sched_yield();
	usleep(a->delay_us);
	atomic_store(&a->phase, 2);
	a->n = mproc_queue_get(a->q, &a->item, sizeof(a->item), 10.0);
	return NULL;
}

static void *kw_producer(void *p)
{
	struct kw_arg *a = p;
	uint64_t v;

	while (atomic_load(&a->phase) < 2)
		sched_yield();
	usleep(2000);   /* both consumers waiting (usually) */
	for (v = 1; v <= 2; v++)
		if (mproc_queue_put(a->q, &v, sizeof(v), 10.0) < 0)
			return (void *)1;
	return NULL;
}

static void t_ring_keeper_wait_revoked(void *arg)
{
	for (int round = 0; round < 40; round++) {
		unsigned flags = round % 2 ? MPROC_QUEUE_SPIN : 0;
		struct mproc_queue *q = mkq(arg, 0, 8, flags);
		struct kw_arg a = { .q = q, .delay_us = (unsigned)(round / 2) * 50 };
		uint64_t v = 0, got[2] = { 0 };
		pthread_t rt, pt;
		void *ret;
		ssize_t n;

		/* This thread becomes the consumers' keeper (and the producers'). */
		for (int k = 0; k < 200; k++) {
			v = (uint64_t)k;
			ASSERT_OK(mproc_queue_put(q, &v, sizeof(v), 1.0));
			ASSERT(mproc_queue_get(q, &v, sizeof(v), 1.0) == 8);
		}
		CHECK_EQ(mproc__ring_keeper(q, true), (uint32_t)mproc__qlock_self());
		ASSERT(pthread_create(&rt, NULL, kw_revoker, &a) == 0);
		ASSERT(pthread_create(&pt, NULL, kw_producer, &a) == 0);
		atomic_store(&a.phase, 1);
		n = mproc_queue_get(q, &v, sizeof(v), 10.0);
		CHECK_EQ(n, 8);
		if (n == 8)
			got[0] = v;
		pthread_join(pt, &ret);
		CHECK(ret == NULL);
		/* The revoker gets the other item (its get waits up to 10 s). */
		pthread_join(rt, &ret);
		CHECK_EQ(a.n, 8);
		if (a.n == 8)
			got[1] = a.item;
		CHECK((got[0] == 1 && got[1] == 2) || (got[0] == 2 && got[1] == 1));
		CHECK_EQ(mproc_queue_qsize(q), 0);
		mproc_queue_free(q);
		if (tap_failed())
			break;
	}
}

struct tcase {
	const char *name;
	tap_fn *fn;
	double timeout;
};

int main(int argc, char **argv)
{
	static const struct tcase cases[] = {
		{ "available", t_available, 0 },
		{ "put_get", t_put_get, 0 },
		{ "qsize", t_qsize, 0 },
		{ "maxsize_timeouts", t_maxsize_timeouts, 0 },
		{ "closed", t_closed, 0 },
		{ "bad_input", t_bad_input, 0 },
		{ "mpmc_4x4", t_mpmc, 120 },
		{ "child_exit_undrained", t_child_exit_undrained, 120 },
		{ "eintr_storm", t_eintr_storm, 120 },
		{ "producer_killed", t_producer_killed, 120 },
		{ "consumer_killed", t_consumer_killed, 0 },
		{ "kill_keeps_maxsize", t_kill_keeps_maxsize, 120 },
		{ "exec_child", t_exec_child, 120 },
		{ "joinable", t_joinable, 0 },
		{ "threads", t_threads, 120 },
	};
	char name[128];

	mproc_main_hook(argc, argv);
	for (int b = 0; b < MPROC_QUEUE_BACKEND_COUNT; b++) {
		for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
			snprintf(name, sizeof(name), "queue/%s/%s",
				 mproc_queue_backend_name((enum mproc_queue_backend)b), cases[i].name);
			tap_add_opts(name, cases[i].fn, (void *)(intptr_t)b,
				     &(struct tap_opts){ .timeout_s = cases[i].timeout });
		}
	}
	tap_add("queue/ring/spin_nospin_modes", t_ring_modes, (void *)(intptr_t)MPROC_QUEUE_RING);
	tap_add("queue/ring/lock_owner_dies", t_qlock_owner_dies, NULL);
	tap_add_opts("queue/ring/keeper_handover", t_ring_keeper_handover,
		     (void *)(intptr_t)MPROC_QUEUE_RING, &(struct tap_opts){ .timeout_s = 120 });
	tap_add_opts("queue/ring/keeper_killed", t_ring_keeper_killed,
		     (void *)(intptr_t)MPROC_QUEUE_RING, &(struct tap_opts){ .timeout_s = 120 });
	tap_add_opts("queue/ring/keeper_threads", t_ring_keeper_threads,
		     (void *)(intptr_t)MPROC_QUEUE_RING, &(struct tap_opts){ .timeout_s = 120 });
	tap_add_opts("queue/ring/keeper_wait_revoked", t_ring_keeper_wait_revoked,
		     (void *)(intptr_t)MPROC_QUEUE_RING, &(struct tap_opts){ .timeout_s = 120 });
	tap_add("queue/sysv/clean_stale", t_sysv_clean_stale, (void *)(intptr_t)MPROC_QUEUE_SYSV);
	return tap_run(argc, argv);
}
