/*
 * test_soak.c - the load soak of issue 9 part 7 (suite `slow`; `make test-all` runs it).
 *
 * One case runs mixed workloads side by side for MPROC_SOAK_SECONDS (default 180 s):
 *
 *   pool     the case process keeps a window of apply_async tasks in flight on a 3-worker pool
 *            (task i computes (7i + 3)^2 + i and returns it with i). Every task must end
 *            exactly once: completed with the right result, or failed with -ECHILD because its
 *            worker was killed. Workers count their executions in shared memory, callbacks are
 *            counted per task: a completed task ran once and called back once, a failed one
 *            ran at most once and called back once; failures <= worker kills.
 *   queues   per back end (pipe, ring, mq, sysv, where available) one producer process and two
 *            consumer processes; every message carries its sequence number and a payload that
 *            the consumer checks. Consumers count each sequence number in shared memory:
 *            nothing may arrive twice, and the only messages allowed missing are those taken by
 *            a consumer that was SIGKILLed (at most one per kill: the one in its hands).
 *   manager  three client processes each set, read back and delete keys of one shared dict and
 *            add to one shared counter; at the end the dict's length and the counter must equal
 *            what the clients report.
 *
 * Every 50-400 ms the case SIGKILLs a random pool worker (the pool replaces it) or a random
 * consumer of the ring/mq/sysv queues (the case reaps it and starts another). Pipe consumers
 * are not killed: a reader killed mid-record breaks a pipe queue by design (queue.h,
 * -EBADMSG, as Python's Queue), so the pipe queue runs the same load without kills and must
 * lose nothing. The case's leak check (tap.h) then finds no fd, child, thread, shm name, mqueue
 * or SysV queue left. The counts are printed as TAP comments.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mproc/manager.h"
#include "mproc/pool.h"
#include "mproc/queue.h"
#include "tap.h"

#define SOAK_DEFAULT_S 180.0
#define POOL_WORKERS 3
#define POOL_WINDOW 32
#define TASK_CAP ((size_t)1 << 22)       /* most pool tasks tracked (stop submitting there) */
#define MSG_CAP ((size_t)1 << 22)        /* most messages per queue */
#define NQ MPROC_QUEUE_BACKEND_COUNT
#define NCONS 2
#define NCLIENTS 3
#define CLIENT_KEYS 64
#define MSG_MAX 256

struct msg {
	uint64_t seq;
	uint64_t check;
	uint32_t pad_len;
	uint8_t pad[MSG_MAX - 20];
} __attribute__((packed));

/* Shared by the case and every process it forks (anonymous MAP_SHARED). */
struct soak_shared {
	_Atomic int prod_stop[NQ];
	_Atomic int cons_stop[NQ];
	_Atomic int mgr_stop;
	_Atomic uint64_t sent[NQ];               /* written by each producer at its end */
	_Atomic uint64_t bad_msgs[NQ];           /* wrong length/payload/check */
	_Atomic uint64_t mgr_ops[NCLIENTS];      /* dict calls done */
	_Atomic int64_t mgr_added[NCLIENTS];     /* sum added to the counter */
	_Atomic int64_t mgr_live[NCLIENTS];      /* keys each client left in the dict */
	_Atomic uint64_t mgr_bad[NCLIENTS];      /* a value read back did not match */
};

static struct soak_shared *sh;
static _Atomic uint8_t *task_exec;               /* shared: executions per task id */
static _Atomic uint8_t *task_cb;                 /* case process only: callbacks per task id */
static _Atomic uint8_t *msg_seen[NQ];            /* shared: receptions per sequence number */
static struct mproc_queue *queues[NQ];
static const char *mgr_address;
static const void *mgr_key;
static size_t mgr_keylen;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return x;
}

static void *map_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	if (p == MAP_FAILED) {
		tap_fail_at(__FILE__, __LINE__, "mmap %zu: %s", len, strerror(errno));
		tap_abort_case();
	}
	return p;
}

/* ---- pool ---- */

static ssize_t soak_task(const void *task, size_t len, void *result, size_t result_max,
			 void *arg)
{
	uint64_t id, x, out[2];
	double until;

	if (len != 8 || result_max < 16)
		return -EBADMSG;
	memcpy(&id, task, 8);
	if (id >= TASK_CAP)
		return -ERANGE;
	atomic_fetch_add(&task_exec[id], 1);
	/* 0..300 us of work, a 2 ms sleep now and then: kills land before, in and after tasks. */
	until = tap_now() + (double)(mix(id) % 300) * 1e-6;
	while (tap_now() < until)
		;
	if (id % 97 == 0) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	x = 7 * id + 3;
	out[0] = id;
	out[1] = x * x + id;
	memcpy(result, out, 16);
	return 16;
}

static void soak_cb(struct mproc_result *r, ssize_t status, void *arg)
{
	atomic_fetch_add(&task_cb[(uintptr_t)arg], 1);
}

struct pool_counts {
	uint64_t submitted, completed, failed, wrong, kills;
};

/* Harvest one ready result: completed with the right value, or -ECHILD. */
static void harvest(struct mproc_result *r, uint64_t id, struct pool_counts *c)
{
	uint64_t out[2] = { 0, 0 }, x = 7 * id + 3;
	ssize_t n = mproc_result_get(r, out, sizeof(out), 0);

	if (n == 16 && out[0] == id && out[1] == x * x + id) {
		c->completed++;
		if (atomic_load(&task_exec[id]) != 1)
			tap_fail_at(__FILE__, __LINE__, "task %ju completed after %u runs",
				    (uintmax_t)id, (unsigned)atomic_load(&task_exec[id]));
	} else if (n == -ECHILD) {
		c->failed++;
		if (atomic_load(&task_exec[id]) > 1)
			tap_fail_at(__FILE__, __LINE__, "task %ju failed after %u runs",
				    (uintmax_t)id, (unsigned)atomic_load(&task_exec[id]));
	} else {
		c->wrong++;
		tap_fail_at(__FILE__, __LINE__, "task %ju: get returned %zd (%s), id %ju value %ju",
			    (uintmax_t)id, n, n < 0 ? mproc_strerror((int)n) : "a length",
			    (uintmax_t)out[0], (uintmax_t)out[1]);
	}
	mproc_result_free(r);
}

/* ---- queues ---- */

static void msg_fill(struct msg *m, uint64_t seq)
{
	m->seq = seq;
	m->check = mix(seq ^ UINT64_C(0x5eed));
	m->pad_len = (uint32_t)(seq % sizeof(m->pad));
	memset(m->pad, (int)(seq & 0xff), m->pad_len);
}

static int producer_main(void *arg)
{
	int q = (int)(intptr_t)arg;
	struct msg m;
	uint64_t seq = 0;
	int r;

	while (!atomic_load(&sh->prod_stop[q]) && seq < MSG_CAP) {
		msg_fill(&m, seq);
		r = mproc_queue_put(queues[q], &m, 20 + m.pad_len, 0.1);
		if (r == -ETIMEDOUT)
			continue;               /* full: consumers are being killed/restarted */
		if (r < 0) {
			tap_diag("soak: producer %s: put: %s", mproc_queue_backend_name(q),
				 mproc_strerror(r));
			atomic_store(&sh->sent[q], seq);
			return 1;
		}
		seq++;
		if (seq % 16 == 0)
			usleep(500);            /* a steady stream, not a CPU hog on 2 cores */
	}
	atomic_store(&sh->sent[q], seq);
	mproc_queue_free(queues[q]);
	return 0;
}

static int consumer_main(void *arg)
{
	int q = (int)(intptr_t)arg;
	struct msg m;
	ssize_t n;
	uint32_t k;

	for (;;) {
		n = mproc_queue_get(queues[q], &m, sizeof(m), 0.05);
		if (n == -ETIMEDOUT || n == -EAGAIN) {
			if (atomic_load(&sh->cons_stop[q]))
				break;
			continue;
		}
		if (n < 0) {
			tap_diag("soak: consumer %s: get: %s", mproc_queue_backend_name(q),
				 mproc_strerror((int)n));
			return 1;
		}
		if (n < 20 || m.seq >= MSG_CAP || (size_t)n != 20 + m.pad_len ||
		    m.check != mix(m.seq ^ UINT64_C(0x5eed))) {
			atomic_fetch_add(&sh->bad_msgs[q], 1);
			continue;
		}
		for (k = 0; k < m.pad_len; k++) {
			if (m.pad[k] != (uint8_t)(m.seq & 0xff))
				break;
		}
		if (k != m.pad_len) {
			atomic_fetch_add(&sh->bad_msgs[q], 1);
			continue;
		}
		atomic_fetch_add(&msg_seen[q][m.seq], 1);
	}
	mproc_queue_free(queues[q]);
	return 0;
}

/* ---- manager ---- */

static int client_main(void *arg)
{
	int c = (int)(intptr_t)arg;
	struct mproc_mclient *cl = NULL;
	struct mproc_dict *d = NULL;
	struct mproc_mvalue *v = NULL;
	uint64_t live = 0, n = 0, val, got;
	char key[32];
	int r, ret = 1;
	ssize_t len;
	unsigned k;

	r = mproc_manager_connect(&cl, mgr_address, mgr_key, mgr_keylen);
	if (r < 0) {
		tap_diag("soak: client %d: connect: %s", c, mproc_strerror(r));
		return 1;
	}
	if ((r = mproc_dict_open(&d, cl, "soak")) < 0 ||
	    (r = mproc_mvalue_open(&v, cl, "ops")) < 0)
		goto out;
	while (!atomic_load(&sh->mgr_stop)) {
		k = (unsigned)(mix(n * NCLIENTS + (unsigned)c) % CLIENT_KEYS);
		snprintf(key, sizeof(key), "c%d-%u", c, k);
		if (live & (UINT64_C(1) << k)) {
			r = mproc_dict_del(d, key);
			if (r < 0)
				goto out;
			live &= ~(UINT64_C(1) << k);
		} else {
			val = mix(n) ^ (uint64_t)c;
			r = mproc_dict_set(d, key, &val, sizeof(val));
			if (r < 0)
				goto out;
			len = mproc_dict_get(d, key, &got, sizeof(got));
			if (len < 0) {
				r = (int)len;
				goto out;
			}
			if (len != sizeof(got) || got != val)
				atomic_fetch_add(&sh->mgr_bad[c], 1);
			live |= UINT64_C(1) << k;
		}
		r = mproc_mvalue_add(v, 1 + (int64_t)(n % 3), NULL);
		if (r < 0)
			goto out;
		atomic_fetch_add(&sh->mgr_added[c], 1 + (int64_t)(n % 3));
		atomic_store(&sh->mgr_ops[c], ++n);
		atomic_store(&sh->mgr_live[c], __builtin_popcountll(live));
		if (n % 8 == 0)
			usleep(1000);
	}
	ret = 0;
out:
	if (ret)
		tap_diag("soak: client %d: %s", c, mproc_strerror(r));
	mproc_mvalue_free(v);
	mproc_dict_free(d);
	mproc_manager_disconnect(cl);
	return ret;
}

/* ---- the case ---- */

static double soak_seconds(void)
{
	const char *s = getenv("MPROC_SOAK_SECONDS");
	double v = s ? strtod(s, NULL) : SOAK_DEFAULT_S;

	return v > 0 ? v : SOAK_DEFAULT_S;
}

static void t_mixed(void *arg)
{
	double secs = soak_seconds(), end, next_kill, t0 = tap_now();
	struct mproc_manager *mgr = NULL;
	struct mproc_pool *pool = NULL;
	struct mproc_pool_opts po = { .workers = POOL_WORKERS, .fn = soak_task, .task_max = 8,
				      .result_max = 16 };
	struct mproc_result *win[POOL_WINDOW] = { 0 };
	uint64_t win_id[POOL_WINDOW] = { 0 };
	struct pool_counts pc = { 0 };
	pid_t clients[NCLIENTS], producers[NQ] = { 0 }, cons[NQ][NCONS] = { { 0 } };
	uint64_t cons_kills[NQ] = { 0 }, lost[NQ] = { 0 }, dup[NQ] = { 0 }, got_q[NQ] = { 0 };
	bool have_q[NQ] = { false };
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	int q, k, r;
	uint64_t i;

	tap_diag("soak: %.0f s (MPROC_SOAK_SECONDS), seed %u", secs, seed);
	srand(seed);
	sh = map_shared(sizeof(*sh));
	task_exec = map_shared(TASK_CAP);
	task_cb = map_shared(TASK_CAP);
	for (q = 0; q < NQ; q++)
		msg_seen[q] = map_shared(MSG_CAP);

	/* The manager and its clients first: the manager forks before any thread exists. */
	ASSERT_OK(mproc_manager_start(&mgr, NULL));
	mgr_address = mproc_manager_address(mgr);
	mgr_key = mproc_manager_key(mgr, &mgr_keylen);
	for (k = 0; k < NCLIENTS; k++)
		clients[k] = tap_fork(client_main, (void *)(intptr_t)k);

	for (q = 0; q < NQ; q++) {
		struct mproc_queue_opts qo = { .backend = (enum mproc_queue_backend)q,
					       .max_msg = MSG_MAX };
		const char *why = NULL;

		if (mproc_queue_backend_available(qo.backend, &why) < 0 ||
		    mproc_queue_new(&queues[q], &qo) < 0) {
			tap_diag("soak: queue %s skipped: %s", mproc_queue_backend_name(qo.backend),
				 why ? why : "creation failed");
			continue;
		}
		have_q[q] = true;
		producers[q] = tap_fork(producer_main, (void *)(intptr_t)q);
		for (k = 0; k < NCONS; k++)
			cons[q][k] = tap_fork(consumer_main, (void *)(intptr_t)q);
	}

	ASSERT_OK(mproc_pool_new(&pool, &po));

	end = t0 + secs;
	next_kill = tap_now() + 0.05 + (rand() % 350) * 1e-3;
	while (tap_now() < end) {
		bool busy = true;

		for (k = 0; k < POOL_WINDOW; k++) {
			struct mproc_apply_opts ao = { .callback = soak_cb, .error_callback = soak_cb };

			if (win[k] && mproc_result_ready(win[k])) {
				harvest(win[k], win_id[k], &pc);
				win[k] = NULL;
			}
			if (!win[k] && pc.submitted < TASK_CAP) {
				i = pc.submitted;
				ao.cb_arg = (void *)(uintptr_t)i;
				r = mproc_pool_apply_async(pool, &i, 8, &ao, &win[k]);
				if (r < 0) {
					tap_fail_at(__FILE__, __LINE__, "apply_async: %s",
						    mproc_strerror(r));
					win[k] = NULL;
					goto stop;
				}
				win_id[k] = i;
				pc.submitted++;
			}
			if (!win[k])
				busy = false;
		}
		if (busy)
			mproc_futures_wait(win, POOL_WINDOW, MPROC_FIRST_COMPLETED, 0.01, NULL);
		else
			usleep(1000);

		if (tap_now() < next_kill)
			continue;
		next_kill = tap_now() + 0.05 + (rand() % 350) * 1e-3;
		if (rand() % 2 == 0) {
			pid_t pids[POOL_WORKERS];
			int n = mproc_pool_worker_pids(pool, pids, POOL_WORKERS);

			if (n > 0 && kill(pids[rand() % n], SIGKILL) == 0)
				pc.kills++;
		} else {
			/* A consumer of a random queue other than pipe. */
			q = 1 + rand() % (NQ - 1);
			k = rand() % NCONS;
			if (!have_q[q])
				continue;
			kill(cons[q][k], SIGKILL);
			r = tap_reap(cons[q][k]);
			if (r != 128 + SIGKILL)
				tap_fail_at(__FILE__, __LINE__, "consumer %s ended with %d before kill",
					    mproc_queue_backend_name(q), r);
			cons_kills[q]++;
			cons[q][k] = tap_fork(consumer_main, (void *)(intptr_t)q);
		}
	}
stop:
	/* Pool: the tasks in flight finish (or fail), then close and join. */
	for (k = 0; k < POOL_WINDOW; k++) {
		if (!win[k])
			continue;
		r = mproc_result_wait(win[k], 30.0 * tap_timeout_mult());
		if (r < 0)
			tap_fail_at(__FILE__, __LINE__, "task %ju never finished: %s",
				    (uintmax_t)win_id[k], mproc_strerror(r));
		harvest(win[k], win_id[k], &pc);
	}
	CHECK_OK(mproc_pool_close(pool));
	CHECK_OK(mproc_pool_join(pool, 30.0 * tap_timeout_mult()));
	mproc_pool_free(pool);
	for (i = 0; i < pc.submitted; i++) {
		if (atomic_load(&task_cb[i]) != 1) {
			tap_fail_at(__FILE__, __LINE__, "task %ju: %u callbacks", (uintmax_t)i,
				    (unsigned)atomic_load(&task_cb[i]));
			break;
		}
	}
	CHECK_EQ(pc.completed + pc.failed, pc.submitted);
	CHECK_EQ(pc.wrong, 0);
	CHECK_CMP(pc.failed, <=, pc.kills);
	tap_diag("soak: pool: %ju tasks submitted, %ju completed, %ju failed with -ECHILD, "
		 "%ju worker kills", (uintmax_t)pc.submitted, (uintmax_t)pc.completed,
		 (uintmax_t)pc.failed, (uintmax_t)pc.kills);

	/* Queues: producers stop, consumers drain, then stop. */
	for (q = 0; q < NQ; q++) {
		if (have_q[q])
			atomic_store(&sh->prod_stop[q], 1);
	}
	for (q = 0; q < NQ; q++) {
		double until = tap_now() + 30.0 * tap_timeout_mult();

		if (!have_q[q])
			continue;
		CHECK_EQ(tap_reap(producers[q]), 0);
		while (mproc_queue_qsize(queues[q]) > 0 && tap_now() < until)
			usleep(10000);
		CHECK_EQ(mproc_queue_qsize(queues[q]), 0);
		atomic_store(&sh->cons_stop[q], 1);
		for (k = 0; k < NCONS; k++)
			CHECK_EQ(tap_reap(cons[q][k]), 0);
		for (i = 0; i < atomic_load(&sh->sent[q]); i++) {
			uint8_t seen = atomic_load(&msg_seen[q][i]);

			if (seen == 0)
				lost[q]++;
			else
				got_q[q]++;
			if (seen > 1)
				dup[q]++;
		}
		CHECK_EQ(dup[q], 0);
		CHECK_EQ(atomic_load(&sh->bad_msgs[q]), 0);
		/* Only a killed consumer's message in hand may be missing. */
		CHECK_CMP(lost[q], <=, cons_kills[q]);
		tap_diag("soak: queue %s: %ju messages sent, %ju received, %ju lost with %ju "
			 "consumer kills, %ju duplicated", mproc_queue_backend_name(q),
			 (uintmax_t)atomic_load(&sh->sent[q]),
			 (uintmax_t)got_q[q], (uintmax_t)lost[q],
			 (uintmax_t)cons_kills[q], (uintmax_t)dup[q]);
		mproc_queue_free(queues[q]);
		queues[q] = NULL;
	}

	/* Manager: clients stop; the dict and the counter must match their reports. */
	atomic_store(&sh->mgr_stop, 1);
	{
		struct mproc_mclient *cl = NULL;
		struct mproc_dict *d = NULL;
		struct mproc_mvalue *v = NULL;
		int64_t added = 0, live = 0, ops = 0, got = -1;

		for (k = 0; k < NCLIENTS; k++) {
			CHECK_EQ(tap_reap(clients[k]), 0);
			CHECK_EQ(atomic_load(&sh->mgr_bad[k]), 0);
			added += atomic_load(&sh->mgr_added[k]);
			live += atomic_load(&sh->mgr_live[k]);
			ops += (int64_t)atomic_load(&sh->mgr_ops[k]);
		}
		CHECK_OK(mproc_manager_connect(&cl, mgr_address, mgr_key, mgr_keylen));
		if (cl) {
			CHECK_OK(mproc_dict_open(&d, cl, "soak"));
			CHECK_OK(mproc_mvalue_open(&v, cl, "ops"));
			if (d)
				CHECK_EQ(mproc_dict_len(d), live);
			if (v) {
				CHECK_OK(mproc_mvalue_get(v, &got));
				CHECK_EQ(got, added);
			}
			mproc_mvalue_free(v);
			mproc_dict_free(d);
			mproc_manager_disconnect(cl);
		}
		tap_diag("soak: manager: %jd client rounds (set+get or del, and add), counter %jd, "
			 "%jd keys left", (intmax_t)ops, (intmax_t)got, (intmax_t)live);
	}
	CHECK_EQ(mproc_manager_stop(mgr), 0);
	tap_diag("soak: ran %.1f s", tap_now() - t0);
	munmap(sh, sizeof(*sh));
	munmap(task_exec, TASK_CAP);
	munmap(task_cb, TASK_CAP);
	for (q = 0; q < NQ; q++)
		munmap(msg_seen[q], MSG_CAP);
}

int main(int argc, char **argv)
{
	/* The watchdog allows the soak plus two minutes for the drain and the checks. */
	struct tap_opts o = { .timeout_s = soak_seconds() + 120.0 };

	tap_add_opts("soak/mixed", t_mixed, NULL, &o);
	return tap_run(argc, argv);
}
