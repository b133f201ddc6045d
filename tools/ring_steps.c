/*
 * ring_steps.c - what each step of a ring queue put and get costs, beside a bare cache-line
 * ping-pong (issue 18).
 *
 * latency/ring_spin is a round trip over two ring queues: two puts and two gets. Before issue
 * 18 each of them took and released its side's lock (two atomic read-modify-writes), stored its
 * side's progress word and checked the other side's "sleeping" flag, around the record itself.
 * This tool builds that protocol up one step at a time, inline (as fork_steps does for fork),
 * and times each variant, so a gap to the floor can be told apart into its causes:
 *
 *   line      the floor: one 8-byte word per direction, written by one side, spun on by the
 *             other (baseline/cacheline_rtt measures the same)
 *   record    + 16-byte records [len | seq][payload] walking a ring; the reader waits on the
 *             header it expects (the ring's per-record sequence numbers)
 *   progress  + each side stores its progress word ({count, position}) per operation
 *   waiters   + each side loads the other side's "sleeping" flag after its stores
 *   fence     + a full fence before that load (what a lock's release exchange gives)
 *   lock      + a lock taken (CAS) and released (exchange) around each operation: the ring
 *             before issue 18, step for step
 *   mproc     the library: mproc_queue_put/get on two MPROC_QUEUE_SPIN rings (since issue
 *             18 a side's only user keeps its lock: no atomic read-modify-write per item)
 *   mproc_nokeep  the library on MPROC_QUEUE_NOSPIN rings, which never keep a lock (and
 *             would sleep if they waited: in this ping-pong they rarely do)
 *
 *   build/tools/ring_steps [-n round trips per sample] [-r samples] [-c cpuA,cpuB] [-b bytes] [-u]
 *                          [variant...]
 *
 * Two processes (fork), pinned to two CPUs (default: the first two this process may use); a
 * sample is the mean round trip over n round trips (default 2000), taken from CLOCK_MONOTONIC;
 * variants run interleaved, one sample each in turn, r samples (default 31) each, and the
 * figure is the median sample with its 95 % order-statistic interval, and its ratio to "line"
 * as the median of the per-round ratios (paired: the samples of one round run back to back)
 * with its interval.
 * -b: bytes of ring per direction, for the inline variants and the library's (ring_bytes; a
 * power of two from 4 KiB to 16 MiB; default 1 MiB, the library's default for small items):
 * a record line that was last touched a lap ago costs the producer more to claim than one
 * still in the other core's cache.
 * -u: uncontended instead: one process does put then get on the same ring, so no cache line
 * moves and what is left is the instructions and atomics of each step (ns per put+get).
 * -t bytes: throughput instead: one process puts n items of that size (8 to 4096) into one
 * ring, the other (on the other CPU) gets them; ns per item from the first put to the last get.
 * "record" is then the floor: the library's record format in a byte ring of the same size,
 * inline, with nothing but the records and the consumer's position (sample_tp's comment);
 * "mproc" the library's default mode (what queue/ring measures, which does not pin),
 * "mproc_nokeep" NOSPIN; the ratio column is to "record". -b 4194304 is queue/ring's ring.
 * Exit status: 0, 1 (a child or a check failed), 2 (bad usage).
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

enum { V_LINE, V_RECORD, V_PROGRESS, V_WAITERS, V_FENCE, V_LOCK, V_MPROC, V_MPROC_NOKEEP, NV };
static const char *const names[NV] = { "line", "record", "progress", "waiters", "fence", "lock",
				       "mproc", "mproc_nokeep" };

#define RING_RECS_MAX (1u << 20) /* 16 MiB of 16-byte records per direction */
#define TP_MAX 4096u             /* -t: largest item */
static uint32_t ring_recs = 1u << 16;   /* -b: 1 MiB, the library's default ring */

struct dir {                     /* one direction of the ping-pong */
	_Alignas(64) _Atomic uint64_t word;     /* line */
	_Alignas(64) _Atomic uint32_t lock;     /* the writer's side lock */
	_Alignas(64) _Atomic uint64_t prod;     /* writer's progress */
	_Alignas(64) _Atomic uint32_t rlock;    /* the reader's side lock */
	_Alignas(64) _Atomic uint64_t cons;     /* reader's progress */
	_Alignas(64) _Atomic uint32_t waiters;  /* never set here: the load is what costs */
	_Alignas(64) _Atomic uint64_t rec[RING_RECS_MAX][2];
};

struct shared {
	struct dir d[2];
	_Atomic uint32_t go, stop;
	_Atomic int64_t rounds;
	_Atomic int64_t t_end;          /* -t: when the consumer got its last item */
};

struct side {                    /* one process's position in both directions */
	uint64_t wn, rn;         /* next item number to write / read */
};

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static inline void step_lock(_Atomic uint32_t *l)
{
	uint32_t v = 0;

	while (!atomic_compare_exchange_weak(l, &v, 1u)) {
		v = 0;
		relax();
	}
}

static inline void put(struct dir *d, struct side *s, int v, uint64_t x)
{
	if (v == V_LINE) {
		atomic_store_explicit(&d->word, x, memory_order_release);
		return;
	}
	if (v >= V_LOCK)
		step_lock(&d->lock);
	uint32_t i = (uint32_t)(s->wn % ring_recs);

	atomic_store_explicit(&d->rec[i][1], x, memory_order_relaxed);
	atomic_store_explicit(&d->rec[i][0], (s->wn + 1) << 32 | 8, memory_order_release);
	s->wn++;
	if (v >= V_PROGRESS)
		atomic_store_explicit(&d->prod, s->wn, memory_order_release);
	if (v >= V_LOCK)
		(void)atomic_exchange(&d->lock, 0);
	else if (v >= V_FENCE)
		atomic_thread_fence(memory_order_seq_cst);
	if (v >= V_WAITERS)
		(void)atomic_load(&d->waiters);
}

static inline uint64_t get(struct dir *d, struct side *s, int v)
{
	uint64_t x;

	if (v == V_LINE) {
		while ((x = atomic_load_explicit(&d->word, memory_order_acquire)) != s->rn + 1)
			relax();
		s->rn++;
		return x;
	}
	uint32_t i = (uint32_t)(s->rn % ring_recs);

	for (;;) {
		if (v >= V_LOCK)
			step_lock(&d->rlock);
		if ((atomic_load_explicit(&d->rec[i][0], memory_order_acquire) >> 32) == s->rn + 1)
			break;
		if (v >= V_LOCK)
			(void)atomic_exchange(&d->rlock, 0);
		relax();
	}
	x = atomic_load_explicit(&d->rec[i][1], memory_order_relaxed);
	s->rn++;
	if (v >= V_PROGRESS)
		atomic_store_explicit(&d->cons, s->rn, memory_order_release);
	if (v >= V_LOCK)
		(void)atomic_exchange(&d->rlock, 0);
	else if (v >= V_FENCE)
		atomic_thread_fence(memory_order_seq_cst);
	if (v >= V_WAITERS)
		(void)atomic_load(&d->waiters);
	return x;
}

static int64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* The echo side of a variant: n round trips. 0 or 1 (a wrong value). */
static int echo(struct shared *sh, int v, struct mproc_queue **q, long n)
{
	struct side s = { 0 };

	for (long k = 0; k < n; k++) {
		if (v >= V_MPROC) {
			uint64_t x;

			if (mproc_queue_get(q[0], &x, sizeof(x), 10.0) != 8 ||
			    mproc_queue_put(q[1], &x, sizeof(x), 10.0) < 0)
				return 1;
			continue;
		}
		uint64_t x = get(&sh->d[0], &s, v);

		if (v == V_LINE && x != s.rn)
			return 1;
		put(&sh->d[1], &s, v, x);
	}
	return 0;
}

/*
 * -t: one sample of throughput: this process puts n items of tp_bytes into q[0], a child pinned
 * to the other CPU gets them (checking each item's number); ns per item, from the first put to
 * the consumer's last get. -1 on a failed check.
 */
static size_t tp_bytes;

/*
 * -t's "record": the floor for the library's throughput, the same records ([u32 len | u32 seq]
 * [payload, padded to 8], the consumer waiting on the header it expects) in a byte ring of the
 * same size, inline: no lock, no keeper, no waiters, the producer reloading the consumer's
 * position only when its cached one says full, PREFETCHW a KiB ahead as the library does.
 */
static inline void tp_copy(unsigned char *ring, uint32_t cap, uint64_t pos, void *buf, size_t len,
			   bool in)
{
	uint32_t off = (uint32_t)(pos & (cap - 1)), first = cap - off < len ? cap - off : len;

	unsigned char *r = ring + off, *b = buf;

	memcpy(in ? r : b, in ? b : r, first);
	if (first < len)
		memcpy(in ? ring : b + first, in ? b + first : ring, len - first);
}

static int tp_record_get(struct dir *d, uint64_t *rpos, uint64_t seq, uint64_t *buf)
{
	unsigned char *ring = (unsigned char *)d->rec;
	uint32_t cap = ring_recs * 16;
	_Atomic uint64_t *h = (_Atomic uint64_t *)(void *)(ring + (*rpos & (cap - 1)));
	uint64_t want = seq << 32 | tp_bytes;

	while (atomic_load_explicit(h, memory_order_acquire) != want)
		relax();
	tp_copy(ring, cap, *rpos + 8, buf, tp_bytes, false);
	*rpos += 8 + ((tp_bytes + 7) & ~(size_t)7);
	atomic_store_explicit(&d->cons, *rpos, memory_order_release);
	return 0;
}

static void tp_record_put(struct dir *d, uint64_t *wpos, uint64_t *cons, uint64_t seq,
			  const uint64_t *buf)
{
	unsigned char *ring = (unsigned char *)d->rec;
	uint32_t cap = ring_recs * 16, need = 8 + (uint32_t)((tp_bytes + 7) & ~(size_t)7);

	while (*wpos + need - *cons > cap)
		*cons = atomic_load_explicit(&d->cons, memory_order_acquire);
	if (*wpos + need + 1024 - *cons <= cap) {
		for (uint32_t o = 1024; o < 1024 + need; o += 64)
			__builtin_prefetch(ring + ((*wpos + o) & (cap - 1)), 1, 3);
	}
	tp_copy(ring, cap, *wpos + 8, (void *)buf, tp_bytes, true);
	atomic_store_explicit((_Atomic uint64_t *)(void *)(ring + (*wpos & (cap - 1))),
			      seq << 32 | tp_bytes, memory_order_release);
	*wpos += need;
}

static double sample_tp(struct shared *sh, int v, struct mproc_queue **q, long n, int cpus[2])
{
	uint64_t buf[TP_MAX / 8] = { 0 }, pos = 0, cons = 0;
	int64_t t0;
	pid_t pid;
	int st;

	atomic_store(&sh->t_end, 0);
	if (v == V_RECORD) {
		memset(&sh->d[0], 0, offsetof(struct dir, rec));
		memset(sh->d[0].rec, 0, (size_t)ring_recs * 16);
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		pin(cpus[1]);
		for (long k = 0; k < n; k++) {
			if (v == V_RECORD)
				tp_record_get(&sh->d[0], &pos, (uint64_t)k + 1, buf);
			else if (mproc_queue_get(q[0], buf, sizeof(buf), 10.0) !=
				 (ssize_t)tp_bytes)
				_exit(1);
			if (buf[0] != (uint64_t)k)
				_exit(1);
		}
		atomic_store(&sh->t_end, now_ns());
		_exit(0);
	}
	t0 = now_ns();
	for (long k = 0; k < n; k++) {
		buf[0] = (uint64_t)k;
		if (v == V_RECORD)
			tp_record_put(&sh->d[0], &pos, &cons, (uint64_t)k + 1, buf);
		else if (mproc_queue_put(q[0], buf, tp_bytes, 10.0) < 0)
			break;
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return (double)(atomic_load(&sh->t_end) - t0) / (double)n;
}

/* One sample: n round trips, mean ns each; -1 on a failed check. */
static double sample(struct shared *sh, int v, struct mproc_queue **q, long n, int cpus[2],
		     bool uncontended)
{
	struct side s = { 0 };
	pid_t pid = -1;
	int64_t t0 = 0, t1;
	int st;

	for (int i = 0; i < 2; i++) {
		memset(&sh->d[i], 0, offsetof(struct dir, rec));
		memset(sh->d[i].rec, 0, (size_t)ring_recs * 16);
	}
	if (!uncontended) {
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			pin(cpus[1]);
			_exit(echo(sh, v, q, n + 100));
		}
	}
	for (long k = 0; k < n + 100; k++) {
		if (k == 100)
			t0 = now_ns();
		if (v >= V_MPROC) {
			uint64_t x = (uint64_t)k + 1, y = 0;

			if (mproc_queue_put(q[0], &x, 8, 10.0) < 0)
				return -1;
			if (uncontended && (mproc_queue_get(q[0], &y, 8, 10.0) != 8 ||
					    mproc_queue_put(q[1], &y, 8, 10.0) < 0))
				return -1;
			if (mproc_queue_get(q[1], &y, 8, 10.0) != 8 || y != x)
				return -1;
			continue;
		}
		put(&sh->d[0], &s, v, (uint64_t)k + 1);
		if (uncontended) {
			struct side e = { .wn = s.rn, .rn = s.rn };
			uint64_t x = get(&sh->d[0], &e, v);

			put(&sh->d[1], &e, v, x);
		}
		if (get(&sh->d[1], &s, v) != (uint64_t)k + 1 && v == V_LINE)
			return -1;
	}
	t1 = now_ns();
	if (pid > 0 && (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)))
		return -1;
	return (double)(t1 - t0) / (double)n;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long n = 2000;
	int r = 31, cpus[2] = { -1, -1 }, opt, nsel = 0, sel[NV];
	bool unc = false;
	struct mproc_queue *q[NV][2] = { { NULL } };
	struct shared *sh;
	double *res[NV];
	cpu_set_t set;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("ring_steps (mproc) %d.%d.%d\n", MPROC_VERSION_MAJOR, MPROC_VERSION_MINOR,
		       MPROC_VERSION_PATCH);
		return 0;
	}
	opterr = 0;     /* bad usage is the one line below, not getopt's and then ours */
	while ((opt = getopt(argc, argv, "n:r:c:b:ut:")) != -1) {
		switch (opt) {
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 'r':
			r = (int)strtol(optarg, NULL, 10);
			break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &cpus[0], &cpus[1]) != 2)
				n = 0;
			break;
		case 'u':
			unc = true;
			break;
		case 't': {
			long t = strtol(optarg, NULL, 10);

			if (t < 8 || t > (long)TP_MAX)
				n = 0;
			else
				tp_bytes = (size_t)t;
			break;
		}
		case 'b': {
			long b = strtol(optarg, NULL, 10);

			if (b < 4096 || b > 16L << 20 || (b & (b - 1)))
				n = 0;
			else
				ring_recs = (uint32_t)(b / 16);
			break;
		}
		default:
			n = 0;
		}
	}
	if (n <= 0 || r < 1 || r > 10000) {
		fprintf(stderr, "ring_steps: bad arguments (usage: ring_steps [-n round trips per "
			"sample] [-r samples] [-c cpuA,cpuB] [-b bytes] [-u | -t item-bytes] "
			"[variant...])\n");
		return 2;
	}
	for (; optind < argc; optind++) {
		int v;

		for (v = 0; v < NV && strcmp(argv[optind], names[v]); v++)
			;
		if (v == NV) {
			fprintf(stderr, "%s: unknown variant '%s'\n", argv[0], argv[optind]);
			return 2;
		}
		if (tp_bytes && v < V_MPROC && v != V_RECORD) {
			fprintf(stderr, "%s: -t measures record (the floor), mproc and mproc_nokeep\n",
				argv[0]);
			return 2;
		}
		sel[nsel++] = v;
	}
	if (tp_bytes && unc) {
		fprintf(stderr, "%s: -t and -u exclude each other\n", argv[0]);
		return 2;
	}
	if (!nsel) {            /* all of them: -t's are record and the library's */
		if (tp_bytes)
			sel[nsel++] = V_RECORD;
		for (int v = tp_bytes ? V_MPROC : 0; v < NV; v++)
			sel[nsel++] = v;
	}
	if (cpus[0] < 0 && sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0, k = 0; c < CPU_SETSIZE && k < 2; c++)
			if (CPU_ISSET(c, &set))
				cpus[k++] = c;
	if (!unc && (cpus[1] < 0 || pin(cpus[0]) < 0)) {
		fprintf(stderr, "%s: need two usable CPUs (or -u)\n", argv[0]);
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	for (int i = 0; i < nsel; i++) {
		int v = sel[i];
		struct mproc_queue_opts o = {
			.backend = MPROC_QUEUE_RING, .max_msg = tp_bytes ? TP_MAX : 8,
			.ring_bytes = (size_t)ring_recs * 16,
			/* -t: the default mode (what queue/ring measures), else spin-only */
			.flags = v == V_MPROC ? (tp_bytes ? 0 : MPROC_QUEUE_SPIN) :
				 MPROC_QUEUE_NOSPIN,
		};

		res[v] = calloc((size_t)r, sizeof(double));
		if (!res[v])
			return 1;
		if (v >= V_MPROC && (mproc_queue_new(&q[v][0], &o) < 0 ||
				     mproc_queue_new(&q[v][1], &o) < 0)) {
			fprintf(stderr, "%s: mproc_queue_new failed\n", argv[0]);
			return 1;
		}
	}
	for (int k = 0; k < r; k++) {
		for (int i = 0; i < nsel; i++) {
			int v = sel[i];

			res[v][k] = tp_bytes ? sample_tp(sh, v, q[v], n, cpus) :
				    sample(sh, v, q[v], n, cpus, unc);
			if (res[v][k] < 0) {
				fprintf(stderr, "%s: variant %s failed\n", argv[0], names[v]);
				return 1;
			}
		}
	}
	/* 95 % distribution-free interval of the median: x(lo) .. x(r+1-lo) (1-based), the
	 * largest lo with 2 P(Binomial(r, 1/2) < lo) <= 5 % (1 when r is too small for 95 %). */
	int lo = 1;
	double cdf = 0, pk = 1;

	for (int k = 0; k < r; k++)
		pk /= 2;
	for (int k = 0; k < r; k++) {
		cdf += pk;                      /* P(X <= k) */
		if (2 * cdf > 0.05)
			break;
		lo = k + 2;
		pk = pk * (r - k) / (k + 1);
	}
	/*
	 * "x line" is paired: the median of the per-round ratios (a variant's sample over line's
	 * sample of the same round, taken milliseconds apart), with its interval. A VM whose
	 * speed changes for seconds at a time moves both samples of a round together, so the
	 * ratio holds where the two medians, taken over the whole run, would not.
	 */
	double *ratio = calloc((size_t)r, sizeof(double));
	bool have_line = false;
	const int base = tp_bytes ? V_RECORD : V_LINE;  /* the floor the ratios are to */

	if (!ratio)
		return 1;
	for (int i = 0; i < nsel; i++)
		have_line |= sel[i] == base;
	if (tp_bytes)
		printf("throughput, %zu-byte items, %ld items per sample, %d samples, CPUs %d,%d, "
		       "%u-byte rings; ns per item (1000 / ns = M items/s)\n", tp_bytes, n, r,
		       cpus[0], cpus[1], ring_recs * 16);
	else
		printf("%s, %ld round trips per sample, %d samples, CPUs %d,%d, %u-byte rings; "
		       "ns per %s\n", unc ? "uncontended (one process)" : "cross-process ping-pong",
		       n, r, cpus[0], cpus[1], ring_recs * 16,
		       unc ? "put+get pair x2" : "round trip");
	printf("%-14s %9s %21s %8s %17s\n", "variant", "median", "95% interval",
	       tp_bytes ? "x record" : "x line", "95% interval");
	for (int i = 0; i < nsel; i++) {
		int v = sel[i];
		double m, rm;

		for (int k = 0; k < r && have_line; k++)
			ratio[k] = res[v][k] / res[base][k];
		qsort(ratio, (size_t)r, sizeof(double), cmp_d);
		rm = r % 2 ? ratio[r / 2] : (ratio[r / 2 - 1] + ratio[r / 2]) / 2;
		qsort(res[v], (size_t)r, sizeof(double), cmp_d);
		m = r % 2 ? res[v][r / 2] : (res[v][r / 2 - 1] + res[v][r / 2]) / 2;
		printf("%-14s %9.1f   [%8.1f, %8.1f] ", names[v], m, res[v][lo - 1], res[v][r - lo]);
		if (have_line && v != base)
			printf("%8.2f   [%5.2f, %5.2f]\n", rm, ratio[lo - 1], ratio[r - lo]);
		else
			printf("%8s\n", have_line ? "1.00" : "-");
	}
	free(ratio);
	for (int v = 0; v < NV; v++) {
		mproc_queue_free(q[v][0]);
		mproc_queue_free(q[v][1]);
	}
	return 0;
}
