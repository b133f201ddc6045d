/*
 * bench_queue.c - queue throughput and latency (issue 5).
 *
 *   queue/<backend>/bytes:<N>/producers:<P>/consumers:<C>
 *	P producer processes put N-byte items into one queue, C consumer processes get them.
 *	The harness runs rounds of M items (M*N about 32 MiB, 256 <= M <= 32768, fewer in smoke
 *	and on a slow channel): the parent opens the round (futex), producers put M/P items
 *	each, then the parent puts C empty items that end the round for the consumers (the
 *	queue is FIFO, so they come after every real item). A round counts as M Google
 *	Benchmark iterations (gbench_keep_running_batch) whose manual time is the round's wall
 *	time, so real_time is the time of ONE item, whatever M the profile or the machine gave.
 *	Counters bytes_per_second and msgs_per_second. Every item carries (producer, sequence)
 *	in its first and last 8 bytes; consumers add up every 64-bit word of every item and
 *	count them, producers add up what they sent; a round whose sums or counts differ ends
 *	the benchmark with SkipWithError (a fast queue that corrupts data is not fast).
 *	backend is pipe, ring, mq, sysv, or raw_pipe: a bare pipe (1 producer, 1 consumer,
 *	fixed-size writes and reads), the yardstick for "ring >= 2x raw_pipe at 64 KiB".
 *	raw_pipe's producer makes one write(2) per item and its consumer one read(2) per item
 *	(more only for a short transfer), nothing else per item, so it measures the channel and
 *	agrees with pipe/raw_pipe in bench_pipe.c and with hackbench (crosscheck.py sets them
 *	side by side); a helper such as mproc__write_all (a send(2) probe and a SIGPIPE guard,
 *	six syscalls per item) would measure itself instead.
 *	Method, the same for every back end: workers are forked once per benchmark and are not
 *	pinned (the scheduler places them, as it places hackbench's, which crosscheck.py sets
 *	beside these figures); the round's clock runs from its futex wake to the last worker's
 *	report, so a round's fixed cost (a futex wake-up and wait at each end) is spread over
 *	256 or more, usually thousands of, items, all of which move inside the timed region.
 *	P, C in {1, 2, 4}: smoke 1x1; quick P + C <= max(2, usable budget); full P, C <= usable.
 *	The ring gets max(4 MiB, 16 items) of storage (the library default is max(1 MiB, 4
 *	items)): on a time-shared machine a deeper buffer lets each side run longer per time
 *	slice. raw_pipe and pipe use a 1 MiB pipe (fs.pipe-max-size here).
 *
 *   latency/<pipe_queue|ring_spin|ring_futex|mq|sysv>/placement:<same_core|cross_core>
 *	8-byte round trip over two queues (parent -> child -> parent), parent and child pinned by
 *	bench_pair(); one sample per round trip, counters p50_ns, p99_ns, p999_ns. ring_spin
 *	never sleeps (MPROC_QUEUE_SPIN; it yields while the other side shares its CPU, so that
 *	same_core works) and is timed like its floor, baseline/cacheline_rtt: in batches of
 *	FLOOR_BATCH_CACHELINE round trips, each sample one batch's mean (a clock read costs a
 *	fifth to a third of a cross-core round trip). ring_futex sleeps at once
 *	(MPROC_QUEUE_NOSPIN).
 *
 * A back end the machine lacks (or a size over its kernel limit) skips with the reason.
 * `bench_queue --clean-stale` removes SysV queues left by dead mproc processes and exits.
 * Children die with the harness (bench_fork); a child that dies ends the benchmark with an
 * error after at most WAIT_LIMIT_S, never a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "floor.h"
#include "internal.h"
#include "mproc/queue.h"

#define MAX_SIDE 4
#define WAIT_LIMIT_S 30.0
#define BODY_MUL UINT64_C(0x9e3779b97f4a7c15)

enum { RAW_PIPE = MPROC_QUEUE_BACKEND_COUNT };

struct side_stat {
	_Alignas(64) uint64_t cnt;
	uint64_t sum;
	uint32_t err;
};

/* Shared by the parent and the workers of one throughput benchmark. */
struct tp_ctl {
	_Alignas(64) _Atomic uint32_t round;    /* bumped by the parent: a new round */
	_Atomic uint32_t stop;
	uint32_t per_prod;
	size_t bytes;
	_Alignas(64) _Atomic uint32_t done;     /* workers finished this round */
	struct side_stat prod[MAX_SIDE];
	struct side_stat cons[MAX_SIDE];
	struct bench_gate gate;
};

struct tp_worker {
	struct tp_ctl *ctl;
	struct mproc_queue *q;
	int rfd, wfd;                           /* raw_pipe */
	int id;
	bool producer, raw;
};

struct tp_case {
	int backend;                            /* enum mproc_queue_backend or RAW_PIPE */
};

static const char *backend_label(int b)
{
	return b == RAW_PIPE ? "raw_pipe" : mproc_queue_backend_name((enum mproc_queue_backend)b);
}

static void errmsg(struct gbench_state *st, const char *what, int err)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s: %s", what, mproc_strerror(err));
	gbench_skip_with_error(st, msg);
}

static inline uint64_t body_word(size_t i)
{
	return BODY_MUL * (uint64_t)(i + 1);
}

static uint64_t sum_words(const void *p, size_t n)
{
	const uint64_t *w = p;
	uint64_t s = 0;

	for (size_t i = 0; i < n / 8; i++)
		s += w[i];
	return s;
}

static void wake_done(struct tp_ctl *c)
{
	atomic_fetch_add(&c->done, 1);
	mproc__futex_wake((uint32_t *)&c->done, INT_MAX);
}

/* Wait for the next round; false when told to stop. */
static bool next_round(struct tp_ctl *c, uint32_t *seen)
{
	uint32_t r;

	while ((r = atomic_load(&c->round)) == *seen && !atomic_load(&c->stop))
		mproc__futex_wait((uint32_t *)&c->round, *seen, MPROC__NO_DEADLINE);
	*seen = r;
	return !atomic_load(&c->stop);
}

/*
 * raw_pipe's put: write(2) until the item is out, nothing else. Not mproc__write_all: that
 * helper serves any fd and pays for it on every call (a send(2) that fails ENOTSOCK, then a
 * SIGPIPE guard of four syscalls around the write), six syscalls per item where a bare pipe
 * makes one, which at 64 B was most of what raw_pipe measured. SIGPIPE is ignored in the
 * producer (tp_child), so a dead consumer is an -EPIPE here, as in bench_pipe.c.
 */
static int raw_write(int fd, const void *buf, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t k = write(fd, (const char *)buf + done, n - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		done += (size_t)k;
	}
	return 0;
}

static int tp_producer(struct tp_worker *w)
{
	struct tp_ctl *c = w->ctl;
	struct side_stat *me = &c->prod[w->id];
	size_t n = c->bytes, nw = n / 8;
	uint64_t *buf = aligned_alloc(64, (n + 63) & ~(size_t)63);
	uint64_t body = 0, seq = 0;
	uint32_t seen = 0;

	if (!buf)
		return 3;
	for (size_t i = 0; i < nw; i++)
		buf[i] = body_word(i);
	for (size_t i = 1; i + 1 < nw; i++)
		body += buf[i];
	while (next_round(c, &seen)) {
		for (uint32_t k = 0; k < c->per_prod; k++, seq++) {
			uint64_t hdr = ((uint64_t)w->id << 48) | seq;
			int r;

			buf[0] = hdr;
			buf[nw - 1] = hdr;
			if (w->raw)
				r = raw_write(w->wfd, buf, n);
			else
				r = mproc_queue_put(w->q, buf, n, WAIT_LIMIT_S);
			if (r < 0) {
				me->err = (uint32_t)-r;
				break;
			}
			me->cnt++;
			me->sum += body + (nw >= 2 ? 2 * hdr : hdr);
		}
		wake_done(c);
	}
	free(buf);
	return 0;
}

static int tp_consumer(struct tp_worker *w)
{
	struct tp_ctl *c = w->ctl;
	struct side_stat *me = &c->cons[w->id];
	size_t n = c->bytes;
	size_t cap = n;
	uint64_t *buf;
	uint32_t seen = 0;

	if (!w->raw && mproc_queue_max_msg(w->q) > cap)
		cap = mproc_queue_max_msg(w->q);    /* mq wants a max_msg-sized buffer */
	buf = aligned_alloc(64, (cap + 63) & ~(size_t)63);
	if (!buf)
		return 3;
	while (next_round(c, &seen)) {
		if (w->raw) {
			for (uint32_t k = 0; k < c->per_prod; k++) {
				ssize_t r = mproc__read_all(w->rfd, buf, n, MPROC__NO_DEADLINE);
				if (r != (ssize_t)n) {
					me->err = r < 0 ? (uint32_t)-r : EPIPE;
					break;
				}
				me->cnt++;
				me->sum += sum_words(buf, n);
			}
		} else {
			for (;;) {
				ssize_t r = mproc_queue_get(w->q, buf, cap, WAIT_LIMIT_S);
				if (r == 0)
					break;          /* end of round */
				if (r < 0) {
					me->err = (uint32_t)-r;
					break;
				}
				if ((size_t)r != n) {
					me->err = EBADMSG;
					break;
				}
				me->cnt++;
				me->sum += sum_words(buf, n);
			}
		}
		wake_done(c);
	}
	free(buf);
	return 0;
}

static int tp_child(void *arg)
{
	struct tp_worker *w = arg;

	if (w->raw) {
		/* Keep only our end of the raw pipe. */
		if (w->producer) {
			mproc__closep(&w->rfd);
			signal(SIGPIPE, SIG_IGN);
		} else {
			mproc__closep(&w->wfd);
		}
	}
	bench_gate_wait(&w->ctl->gate, 2);
	return w->producer ? tp_producer(w) : tp_consumer(w);
}

/* Wait until done reaches want, at most WAIT_LIMIT_S. */
static int wait_done(struct tp_ctl *c, uint32_t want)
{
	int64_t deadline = mproc__now_ns() + (int64_t)(WAIT_LIMIT_S * 1e9);
	uint32_t d;

	while ((d = atomic_load(&c->done)) < want) {
		if (mproc__futex_wait((uint32_t *)&c->done, d, deadline) == -ETIMEDOUT)
			return -ETIMEDOUT;
	}
	return 0;
}

/* One round: open it, wait for the producers, end it for the consumers, wait for them. */
static int run_round(struct tp_ctl *c, struct mproc_queue *q, int np, int nc, bool raw)
{
	int r;

	atomic_store(&c->done, 0);
	atomic_fetch_add(&c->round, 1);
	mproc__futex_wake((uint32_t *)&c->round, INT_MAX);
	r = wait_done(c, (uint32_t)np);
	for (int k = 0; r == 0 && !raw && k < nc; k++)
		r = mproc_queue_put(q, "", 0, WAIT_LIMIT_S);
	if (r == 0)
		r = wait_done(c, (uint32_t)(np + nc));
	return r;
}

static int make_queue(int backend, size_t bytes, unsigned flags, struct mproc_queue **q)
{
	struct mproc_queue_opts o = { .backend = (enum mproc_queue_backend)backend,
				      .max_msg = bytes, .flags = flags };
	int r;

	if (backend == MPROC_QUEUE_MQ)
		o.maxsize = 64;     /* above fs.mqueue.msg_max needs CAP_SYS_RESOURCE */
	if (backend == MPROC_QUEUE_RING && bytes > 64)
		o.ring_bytes = bytes * 16 > ((size_t)4 << 20) ? bytes * 16 : (size_t)4 << 20;
	if (backend == MPROC_QUEUE_SYSV && bytes < 8)
		o.max_msg = 8;
	r = mproc_queue_new(q, &o);
	if (r == -EINVAL && backend == MPROC_QUEUE_MQ) {
		o.maxsize = 0;
		r = mproc_queue_new(q, &o);
	}
	return r;
}

/*
 * A benchmark's round (per_prod * np items, one KeepRunningBatch batch) is sized once, on its
 * first call, and kept for its later repetitions: Google Benchmark checks that every
 * repetition of a benchmark ran as many iterations, and a batch rounds the count up to a
 * multiple of its own size (a quick run aborted in ComputeStats when one repetition's warm-up
 * halved the round and another's did not). Keyed by what the benchmark's name says.
 */
struct round_size {
	int backend, np, nc;
	size_t bytes;
	uint32_t per_prod;
};

static struct round_size *round_size_of(int backend, size_t bytes, int np, int nc)
{
	static struct round_size sizes[256];
	static size_t n;

	for (size_t i = 0; i < n; i++)
		if (sizes[i].backend == backend && sizes[i].bytes == bytes && sizes[i].np == np &&
		    sizes[i].nc == nc)
			return &sizes[i];
	if (n == sizeof(sizes) / sizeof(sizes[0]))
		return NULL;        /* more benchmarks than the harness registers */
	sizes[n] = (struct round_size){ .backend = backend, .np = np, .nc = nc, .bytes = bytes };
	return &sizes[n++];
}

static void bm_throughput(struct gbench_state *st, void *arg)
{
	const struct tp_case *tc = arg;
	size_t bytes = (size_t)gbench_arg(st, 0);
	int np = (int)gbench_arg(st, 1), nc = (int)gbench_arg(st, 2);
	bool raw = tc->backend == RAW_PIPE;
	struct tp_worker w[2 * MAX_SIDE];
	pid_t pids[2 * MAX_SIDE];
	struct mproc_queue *q = NULL;
	struct tp_ctl *c;
	struct round_size *rs;
	int fds[2] = { -1, -1 };
	int nw = 0, r;
	uint64_t total_msgs = 0, timed_msgs = 0, sent_cnt, sent_sum, got_cnt, got_sum;
	uint32_t msgs;

	c = bench_shared_alloc(sizeof(*c));
	if (!c) {
		errmsg(st, "shared memory", -ENOMEM);
		return;
	}
	if (raw) {
		if (pipe2(fds, O_CLOEXEC) < 0) {
			errmsg(st, "pipe2", -errno);
			goto out_ctl;
		}
		(void)fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	} else {
		const char *why;

		r = mproc_queue_backend_available((enum mproc_queue_backend)tc->backend, &why);
		if (r < 0) {
			char msg[200];

			snprintf(msg, sizeof(msg), "%s back end unavailable: %s",
				 backend_label(tc->backend), why);
			gbench_skip_with_error(st, msg);
			goto out_ctl;
		}
		r = make_queue(tc->backend, bytes, 0, &q);
		if (r < 0) {
			char msg[200];

			snprintf(msg, sizeof(msg), "%s cannot carry %zu-byte items here: %s%s",
				 backend_label(tc->backend), bytes, mproc_strerror(r),
				 r == -EMSGSIZE ? (tc->backend == MPROC_QUEUE_MQ
				   ? " (over fs.mqueue.msgsize_max, raising it needs CAP_SYS_RESOURCE)"
				   : " (over kernel.msgmax)") : "");
			gbench_skip_with_error(st, msg);
			goto out_ctl;
		}
	}
	msgs = (uint32_t)(((size_t)32 << 20) / bytes);
	if (gbench_current_profile() == GBENCH_SMOKE)
		msgs /= 16;
	if (msgs < 256)
		msgs = 256;
	if (msgs > 32768)
		msgs = 32768;
	c->per_prod = (msgs + (uint32_t)np - 1) / (uint32_t)np;
	c->bytes = bytes;
	bench_gate_init(&c->gate);

	for (int i = 0; i < np + nc; i++) {
		w[i] = (struct tp_worker){ .ctl = c, .q = q, .rfd = fds[0], .wfd = fds[1],
					   .id = i < np ? i : i - np, .producer = i < np,
					   .raw = raw };
		pids[i] = bench_fork(-1, tp_child, &w[i]);
		if (pids[i] < 0) {
			errmsg(st, "fork", pids[i]);
			goto out_kill;
		}
		nw++;
		bench_gate_wait(&c->gate, 2);   /* one at a time: it holds what it needs */
	}
	if (raw) {
		mproc__closep(&fds[0]);
		mproc__closep(&fds[1]);
	}

	/* One untimed round first: the children fault in the queue's shared pages (fork does
	 * not copy the page tables of shared mappings) and the ring's spin adapts. Without it
	 * a short first round measures page faults. */
	int64_t t_warm = bench_now_ns();

	r = run_round(c, q, np, nc, raw);
	if (r < 0) {
		errmsg(st, "warm-up round did not finish (a worker died or the queue stalled)", r);
		goto out_kill;
	}
	total_msgs += (uint64_t)c->per_prod * (uint64_t)np;
	/* A slow channel (a pipe under load) gets shorter rounds, so the quick profile stays
	 * short: halve until a round takes about 100 ms (never below 256 items); once per
	 * benchmark (round_size_of). */
	rs = round_size_of(tc->backend, bytes, np, nc);
	if (rs && rs->per_prod) {
		c->per_prod = rs->per_prod;
	} else {
		for (int64_t dt = bench_now_ns() - t_warm; dt > 100 * INT64_C(1000000) &&
		     c->per_prod * (uint32_t)np >= 512; dt /= 2)
			c->per_prod /= 2;
		if (rs)
			rs->per_prod = c->per_prod;
	}
	/* One item is one iteration: real_time is per item, whatever the round's size. */
	while (gbench_keep_running_batch(st, (int64_t)c->per_prod * np)) {
		int64_t t0 = bench_now_ns();

		r = run_round(c, q, np, nc, raw);
		if (r < 0) {
			errmsg(st, "round did not finish (a worker died or the queue stalled)", r);
			goto out_kill;
		}
		gbench_set_iteration_time(st, (double)(bench_now_ns() - t0) * 1e-9);
		total_msgs += (uint64_t)c->per_prod * (uint64_t)np;
		timed_msgs += (uint64_t)c->per_prod * (uint64_t)np;
	}

	/* Verify: what the consumers got is what the producers sent (count + sum of words). */
	sent_cnt = sent_sum = got_cnt = got_sum = 0;
	for (int i = 0; i < np; i++) {
		sent_cnt += c->prod[i].cnt;
		sent_sum += c->prod[i].sum;
		if (c->prod[i].err) {
			errmsg(st, "producer put failed", -(int)c->prod[i].err);
			goto out_kill;
		}
	}
	for (int i = 0; i < nc; i++) {
		got_cnt += c->cons[i].cnt;
		got_sum += c->cons[i].sum;
		if (c->cons[i].err) {
			errmsg(st, "consumer get failed", -(int)c->cons[i].err);
			goto out_kill;
		}
	}
	if (sent_cnt != total_msgs || got_cnt != sent_cnt || got_sum != sent_sum) {
		char msg[200];

		snprintf(msg, sizeof(msg), "received multiset differs: sent %llu items (sum %llx), "
			 "received %llu (sum %llx)", (unsigned long long)sent_cnt,
			 (unsigned long long)sent_sum, (unsigned long long)got_cnt,
			 (unsigned long long)got_sum);
		gbench_skip_with_error(st, msg);
		goto out_kill;
	}
	gbench_counter(st, "bytes_per_second", (double)timed_msgs * (double)bytes, GBENCH_RATE);
	gbench_counter(st, "msgs_per_second", (double)timed_msgs, GBENCH_RATE);

	atomic_store(&c->stop, 1);
	mproc__futex_wake((uint32_t *)&c->round, INT_MAX);
	for (int i = 0; i < nw; i++)
		bench_reap(pids[i], false);
	nw = 0;
out_kill:
	for (int i = 0; i < nw; i++)
		bench_reap(pids[i], true);
	mproc__closep(&fds[0]);
	mproc__closep(&fds[1]);
	mproc_queue_free(q);
out_ctl:
	bench_shared_free(c, sizeof(*c));
}

/* ---- latency ---- */

struct lat_case {
	const char *name;
	int backend;
	unsigned flags;
	enum mproc_topo_placement placement;
};

struct lat_shared {
	struct bench_gate gate;
};

struct lat_child_arg {
	struct mproc_queue *ping, *pong;
	struct lat_shared *sh;
};

static int lat_child(void *arg)
{
	struct lat_child_arg *a = arg;
	uint64_t buf[1024];     /* mq wants max_msg bytes of room */
	ssize_t n;

	bench_gate_wait(&a->sh->gate, 2);
	for (;;) {
		n = mproc_queue_get(a->ping, buf, sizeof(buf), WAIT_LIMIT_S);
		if (n != 8)
			return 3;
		if (buf[0] == UINT64_MAX)
			return 0;
		if (mproc_queue_put(a->pong, buf, 8, WAIT_LIMIT_S) < 0)
			return 4;
	}
}

static void bm_latency(struct gbench_state *st, void *arg)
{
	const struct lat_case *lc = arg;
	struct mproc_queue *ping = NULL, *pong = NULL;
	struct bench_samples s = { 0 };
	struct lat_child_arg ca;
	struct lat_shared *sh;
	cpu_set_t saved;
	bool pinned = false;
	uint64_t seq = 0, buf[1024];
	/* ring_spin is timed in batches, as its floor baseline/cacheline_rtt is (floor.h): a clock
	 * read costs a fifth to a third of its round trip here, and a figure that carried one
	 * would not be comparable with a floor that does not. */
	const int batch = lc->flags & MPROC_QUEUE_SPIN ? FLOOR_BATCH_CACHELINE : 1;
	pid_t pid = -1;
	int a, b, r;
	const char *why;

	r = bench_pair(lc->placement, &a, &b);
	if (r == -ENODEV) {
		char msg[160];

		snprintf(msg, sizeof(msg), "%s needs two usable physical cores; this machine has %d "
			 "usable CPU(s)", mproc_topo_placement_name(lc->placement), bench_budget());
		gbench_skip_with_error(st, msg);
		return;
	}
	if (r < 0) {
		errmsg(st, "bench_pair", r);
		return;
	}
	r = mproc_queue_backend_available((enum mproc_queue_backend)lc->backend, &why);
	if (r < 0) {
		char msg[200];

		snprintf(msg, sizeof(msg), "%s back end unavailable: %s",
			 backend_label(lc->backend), why);
		gbench_skip_with_error(st, msg);
		return;
	}
	sh = bench_shared_alloc(sizeof(*sh));
	if (!sh) {
		errmsg(st, "shared memory", -ENOMEM);
		return;
	}
	bench_gate_init(&sh->gate);
	r = make_queue(lc->backend, 8, lc->flags, &ping);
	if (r == 0)
		r = make_queue(lc->backend, 8, lc->flags, &pong);
	if (r < 0) {
		errmsg(st, "mproc_queue_new", r);
		goto out;
	}
	r = bench_samples_init(&s, bench_samples_cap());
	if (r < 0) {
		errmsg(st, "samples", r);
		goto out;
	}
	if (sched_getaffinity(0, sizeof(saved), &saved) == 0 && mproc_topo_pin(0, a) == 0)
		pinned = true;
	ca = (struct lat_child_arg){ .ping = ping, .pong = pong, .sh = sh };
	pid = bench_fork(b, lat_child, &ca);
	if (pid < 0) {
		errmsg(st, "fork", pid);
		goto out;
	}
	bench_gate_wait(&sh->gate, 2);

	for (int i = 0; i < 200; i++) {         /* warm up */
		buf[0] = ++seq;
		if (mproc_queue_put(ping, buf, 8, WAIT_LIMIT_S) < 0 ||
		    mproc_queue_get(pong, buf, sizeof(buf), WAIT_LIMIT_S) != 8 || buf[0] != seq) {
			errmsg(st, "warm-up round trip failed", -EPIPE);
			goto out;
		}
	}
	while (gbench_keep_running_batch(st, batch)) {
		int64_t t0 = bench_now_ns(), dt;
		ssize_t n = 8;

		for (int k = 0; k < batch && n == 8; k++) {
			buf[0] = ++seq;
			r = mproc_queue_put(ping, buf, 8, WAIT_LIMIT_S);
			n = r < 0 ? r : mproc_queue_get(pong, buf, sizeof(buf), WAIT_LIMIT_S);
			if (n == 8 && buf[0] != seq)
				n = -EBADMSG;
		}
		dt = bench_now_ns() - t0;
		if (n != 8) {
			errmsg(st, "round trip failed or echoed the wrong value", (int)n);
			goto out;
		}
		bench_samples_add(&s, dt / batch);
		gbench_set_iteration_time(st, (double)dt * 1e-9);
	}
	buf[0] = UINT64_MAX;
	if (mproc_queue_put(ping, buf, 8, WAIT_LIMIT_S) == 0 && bench_reap(pid, false) == 0)
		bench_samples_report(st, &s);
	else
		gbench_skip_with_error(st, "latency child did not stop cleanly");
	pid = -1;
out:
	if (pid > 0)
		bench_reap(pid, true);
	if (pinned)
		sched_setaffinity(0, sizeof(saved), &saved);
	bench_samples_free(&s);
	mproc_queue_free(ping);
	mproc_queue_free(pong);
	bench_shared_free(sh, sizeof(*sh));
}

/* ---- registration ---- */

static struct tp_case g_tp[MPROC_QUEUE_BACKEND_COUNT + 1];
static struct lat_case g_lat[5 * 2];

static void register_all(void)
{
	static const int64_t sizes_smoke[] = { 64, 4096 };
	static const int64_t sizes_quick[] = { 64, 4096, 64 << 10 };
	static const int64_t sizes_full[] = { 64, 256, 1024, 4096, 16 << 10, 64 << 10,
					      256 << 10, 1 << 20 };
	static const int order[] = { MPROC_QUEUE_RING, MPROC_QUEUE_PIPE, MPROC_QUEUE_MQ,
				     MPROC_QUEUE_SYSV, RAW_PIPE };
	static const struct { const char *name; int backend; unsigned flags; } lat[] = {
		{ "pipe_queue", MPROC_QUEUE_PIPE, 0 },
		{ "ring_spin", MPROC_QUEUE_RING, MPROC_QUEUE_SPIN },
		{ "ring_futex", MPROC_QUEUE_RING, MPROC_QUEUE_NOSPIN },
		{ "mq", MPROC_QUEUE_MQ, 0 },
		{ "sysv", MPROC_QUEUE_SYSV, 0 },
	};
	static const int64_t sides[] = { 1, 2, 4 };
	enum gbench_profile prof = gbench_current_profile();
	const int64_t *sz = prof == GBENCH_SMOKE ? sizes_smoke
			    : prof == GBENCH_QUICK ? sizes_quick : sizes_full;
	size_t nsz = prof == GBENCH_SMOKE ? MPROC__ARRAY_SIZE(sizes_smoke)
		     : prof == GBENCH_QUICK ? MPROC__ARRAY_SIZE(sizes_quick)
		     : MPROC__ARRAY_SIZE(sizes_full);
	int budget = bench_budget();
	char name[128];
	struct gbench *b;
	size_t k = 0;

	for (size_t i = 0; i < MPROC__ARRAY_SIZE(order); i++) {
		g_tp[i].backend = order[i];
		snprintf(name, sizeof(name), "queue/%s", backend_label(order[i]));
		b = gbench_register(name, bm_throughput, &g_tp[i]);
		for (size_t s = 0; s < nsz; s++) {
			for (size_t p = 0; p < MPROC__ARRAY_SIZE(sides); p++) {
				for (size_t c = 0; c < MPROC__ARRAY_SIZE(sides); c++) {
					int64_t np = sides[p], nc = sides[c];
					bool ok;

					if (order[i] == RAW_PIPE || prof == GBENCH_SMOKE)
						ok = np == 1 && nc == 1;
					else if (prof == GBENCH_QUICK)
						ok = np + nc <= (budget > 2 ? budget : 2);
					else
						ok = np <= budget && nc <= budget;
					if (ok)
						GBENCH_ARGS(b, sz[s], np, nc);
				}
			}
		}
		GBENCH_ARG_NAMES(b, "bytes", "producers", "consumers");
		gbench_use_manual_time(b);
		gbench_time_unit(b, GBENCH_US);
	}
	for (size_t i = 0; i < MPROC__ARRAY_SIZE(lat); i++) {
		for (int p = MPROC_TOPO_SAME_CORE; p <= MPROC_TOPO_CROSS_CORE; p++) {
			g_lat[k] = (struct lat_case){ lat[i].name, lat[i].backend, lat[i].flags,
						      (enum mproc_topo_placement)p };
			snprintf(name, sizeof(name), "latency/%s/placement:%s", lat[i].name,
				 mproc_topo_placement_name((enum mproc_topo_placement)p));
			b = gbench_register(name, bm_latency, &g_lat[k++]);
			gbench_use_manual_time(b);
			gbench_time_unit(b, GBENCH_NS);
		}
	}
}

int main(int argc, char **argv)
{
	/* bench_queue --clean-stale: remove SysV queues of dead mproc processes (the one kind of
	 * queue object a crash can leave behind); for mproc-bench --clean-stale. */
	if (argc == 2 && strcmp(argv[1], "--clean-stale") == 0) {
		int n = mproc_queue_clean_stale();

		if (n < 0) {
			fprintf(stderr, "bench_queue: --clean-stale: %s\n", mproc_strerror(n));
			return 1;
		}
		printf("removed %d stale SysV message queue(s)\n", n);
		return 0;
	}
	return bench_main(argc, argv, register_all);
}
