/*
 * test_fault.c - fault injection across modules (issue 9, part 3): make system calls fail and
 * check that every error path returns the documented -errno, leaves nothing behind (the tap
 * leak check around each case, plus explicit snapshots around each failed step) and never
 * hangs.
 *
 *  - fork/clone -> EAGAIN: RLIMIT_NPROC in a forked sub-process that switched to an uid of its
 *    own (root ignores RLIMIT_NPROC): every start method, the pool (a worker that fails to
 *    start, at every position), the manager, the forkserver; queues and conns are unaffected.
 *  - pipe2/socket/memfd/shm_open/eventfd/pidfd -> EMFILE: RLIMIT_NOFILE swept from "no fd
 *    free" upward until the call succeeds, so every fd a constructor takes fails once.
 *  - mmap -> ENOMEM (RLIMIT_AS) for anonymous regions; a 64 KiB tmpfs on /dev/shm in a private
 *    mount namespace -> ENOSPC at creation for named regions, never SIGBUS later.
 *  - write -> EPIPE on every channel with SIGPIPE at its default action.
 *  - signal storms: a timer every 1 ms aimed at the calling thread, handler without
 *    SA_RESTART, while the library blocks in every kind of wait; results stay right and
 *    timeouts are still honoured.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "tap.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---------------------------------------------------------------------------- */

/* Sleep that a signal storm cannot shorten. */
static void nap(double s)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)s;
	ts.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Run fn(arg) in a forked sub-process (limits and namespaces set there stay there). Its CHECK
 * failures are printed as usual; the case fails if any happened; a skip there skips the case. */
struct sub {
	void (*fn)(void *arg);
	void *arg;
};

static int sub_main(void *a)
{
	struct sub *s = a;

	s->fn(s->arg);
	fflush(stdout);
	return tap_failed() ? 1 : 0;
}

static void run_sub(void (*fn)(void *arg), void *arg)
{
	struct sub s = { fn, arg };
	int st = tap_reap(tap_fork(sub_main, &s));

	if (st == 77)
		tap_skip("%s", "");     /* the sub-process already wrote the reason */
	CHECK_EQ(st, 0);
}

/* Leak snapshot of this process around a failed step: fds, threads, shm/mqueue and /tmp names
 * (tap.h), and children. */
struct guard {
	struct tap_snapshot *snap;
	int children;
};

static void guard_begin(struct guard *g)
{
	g->snap = tap_snapshot_take();
	g->children = tap_count_children();
}

static void guard_end(struct guard *g, const char *what)
{
	int leaks = tap_snapshot_compare(g->snap, tap_snapshot_take());
	int kids = tap_count_children() - g->children;

	if (leaks)
		tap_fail_at(__FILE__, __LINE__, "%s: %d leak(s) after the failure", what, leaks);
	if (kids)
		tap_fail_at(__FILE__, __LINE__, "%s: %d child process(es) left", what, kids);
}

static const char *const method_names[] = {
	"fork", "vfork", "posix_spawn", "spawn", "forkserver", "thread",
};

static int e_exit7(void *arg)
{
	(void)arg;
	return 7;
}
MPROC_ENTRY("fault-exit7", e_exit7)

static int e_sleep_exit3(void *arg)
{
	(void)arg;
	nap(0.3);
	return 3;
}
MPROC_ENTRY("fault-sleep-exit3", e_sleep_exit3)

static ssize_t t_square(const void *task, size_t len, void *result, size_t result_max, void *arg)
{
	int64_t x;

	(void)arg;
	if (len != sizeof(x) || result_max < sizeof(x))
		return -EINVAL;
	memcpy(&x, task, sizeof(x));
	if (x < 0)
		nap((double)-x / 1000.0);       /* negative: sleep -x ms, then square */
	x *= x;
	memcpy(result, &x, sizeof(x));
	return sizeof(x);
}

/* ---- RLIMIT_NPROC: fork/clone -> EAGAIN ------------------------------------------------- */

/* An uid of this case's own, so that only our own processes count against the limit. */
static uid_t fault_uid(void)
{
	return (uid_t)(61000 + getpid() % 4000);
}

static void set_nproc(rlim_t n)
{
	struct rlimit rl;

	ASSERT(getrlimit(RLIMIT_NPROC, &rl) == 0);
	rl.rlim_cur = n;
	ASSERT(setrlimit(RLIMIT_NPROC, &rl) == 0);
}

/* In a sub-process: become an unprivileged uid (root is exempt from RLIMIT_NPROC) allowed n
 * tasks in all, itself and its threads included. */
static void become_limited(rlim_t n)
{
	struct rlimit rl = { n, 4096 };
	uid_t u = fault_uid();

	if (geteuid() != 0)
		tap_skip("needs root to switch to an uid of its own (RLIMIT_NPROC counts every "
			 "process of the user, and root ignores it)");
	ASSERT(setrlimit(RLIMIT_NPROC, &rl) == 0);
	ASSERT(setgroups(0, NULL) == 0);
	ASSERT(setresgid(u, u, u) == 0);
	ASSERT(setresuid(u, u, u) == 0);
}

static void nproc_start(void *arg)
{
	enum mproc_start_method m = (enum mproc_start_method)(intptr_t)arg;
	struct mproc_process_opts o = { .method = m };
	struct mproc_process *p = NULL;
	struct guard g;
	int code = -1;

	/* The forkserver (a process of ours too) needs one task; its child is what fails. */
	become_limited(m == MPROC_START_FORKSERVER ? 2 : 1);
	if (m == MPROC_START_FORKSERVER)
		ASSERT_OK(mproc_forkserver_start());
	ASSERT_OK(mproc_process_new(&p, e_exit7, NULL, &o));
	guard_begin(&g);
	CHECK_ERR(mproc_process_start(p), -EAGAIN);
	guard_end(&g, method_names[m]);
	CHECK_EQ(mproc_process_pid(p), 0);
	/* Nothing lasting: with room again, the same object starts and runs (a new forkserver:
	 * the limit is per process and the old one keeps its own). */
	if (m == MPROC_START_FORKSERVER)
		mproc_forkserver_stop();
	set_nproc(8);
	ASSERT_OK(mproc_process_start(p));
	CHECK_OK(mproc_process_join(p, 30));
	CHECK_OK(mproc_process_exitcode(p, &code));
	CHECK_EQ(code, 7);
	mproc_process_free(p);
	if (m == MPROC_START_FORKSERVER) {
		/* And the server itself cannot start without room. */
		mproc_forkserver_stop();
		set_nproc(1);
		guard_begin(&g);
		CHECK_ERR(mproc_forkserver_start(), -EAGAIN);
		ASSERT_OK(mproc_process_new(&p, e_exit7, NULL, &o));
		CHECK_ERR(mproc_process_start(p), -EAGAIN);
		mproc_process_free(p);
		guard_end(&g, "forkserver start");
	}
	mproc_forkserver_stop();
}

static void t_nproc_start(void *arg)
{
	run_sub(nproc_start, arg);
}

static int pool_new3(struct mproc_pool **p)
{
	struct mproc_pool_opts o = { .workers = 3, .fn = t_square };

	return mproc_pool_new(p, &o);
}

static void pool_check_square(struct mproc_pool *p)
{
	int64_t x = 12, y = 0;

	CHECK_EQ(mproc_pool_apply(p, &x, sizeof(x), &y, sizeof(y), 30), sizeof(y));
	CHECK_EQ(y, 144);
}

/* Room for the caller and two workers: the third worker's fork fails; the first two must be
 * killed and reaped before mproc_pool_new returns. */
static void nproc_pool_third(void *arg)
{
	struct mproc_pool *p = NULL;
	struct guard g;

	(void)arg;
	become_limited(3);
	guard_begin(&g);
	CHECK_ERR(pool_new3(&p), -EAGAIN);
	CHECK(p == NULL);
	guard_end(&g, "pool with a third worker that cannot start");
}

static void t_nproc_pool_third(void *arg)
{
	run_sub(nproc_pool_third, arg);
}

/* Every position at which the pool's start can run out of tasks (each worker, then the handler
 * thread) fails cleanly; with room for all it works. */
static void nproc_pool_sweep(void *arg)
{
	struct mproc_pool *p = NULL;
	rlim_t n;
	int r = -1;

	(void)arg;
	become_limited(1);
	for (n = 1; n <= 8; n++) {
		struct guard g;

		set_nproc(n);
		guard_begin(&g);
		r = pool_new3(&p);
		if (r == 0)
			break;
		CHECK_ERR(r, -EAGAIN);
		guard_end(&g, "pool start");
	}
	ASSERT_OK(r);
	CHECK_EQ(n, 5);         /* us, three workers, the handler thread */
	pool_check_square(p);
	mproc_pool_free(p);
}

static void t_nproc_pool_sweep(void *arg)
{
	run_sub(nproc_pool_sweep, arg);
}

/* A pool that loses its workers while no replacement can start: the lost task fails with
 * -ECHILD, the pool breaks (new work: -EPIPE) instead of waiting for workers that never come,
 * and frees cleanly. */
static void nproc_pool_replace(void *arg)
{
	struct mproc_pool *p = NULL;
	pid_t pids[3];
	int64_t x = -3000, y;
	struct mproc_result *res = NULL;
	ssize_t r;

	(void)arg;
	become_limited(5);
	ASSERT_OK(pool_new3(&p));
	ASSERT_EQ(mproc_pool_worker_pids(p, pids, 3), 3);
	ASSERT_OK(mproc_pool_submit(p, &x, sizeof(x), &res));
	nap(0.2);       /* let a worker take it */
	set_nproc(2);   /* us and the handler thread: no room for a replacement */
	for (int i = 0; i < 3; i++)
		kill(pids[i], SIGKILL);
	CHECK_ERR(mproc_result_get(res, &y, sizeof(y), 30), -ECHILD);
	mproc_result_free(res);
	/* Without workers the pool is broken (pool.h): new work is refused, never left waiting. */
	x = 2;
	r = mproc_pool_apply(p, &x, sizeof(x), &y, sizeof(y), 30);
	if (r != -EPIPE)        /* submitted before the failed respawn broke it: pending */
		CHECK_ERR(r, -ECHILD);
	CHECK_ERR(mproc_pool_apply(p, &x, sizeof(x), &y, sizeof(y), 30), -EPIPE);
	mproc_pool_free(p);
	CHECK_EQ(tap_count_children(), 0);
}

static void t_nproc_pool_replace(void *arg)
{
	run_sub(nproc_pool_replace, arg);
}

static void nproc_manager(void *arg)
{
	struct mproc_manager *m = NULL;
	struct mproc_mclient *c = NULL;
	struct guard g;
	size_t kl;
	const void *k;

	(void)arg;
	become_limited(1);
	guard_begin(&g);
	CHECK_ERR(mproc_manager_start(&m, NULL), -EAGAIN);
	CHECK(m == NULL);
	guard_end(&g, "manager start");
	set_nproc(2);
	ASSERT_OK(mproc_manager_start(&m, NULL));
	k = mproc_manager_key(m, &kl);
	CHECK_OK(mproc_manager_connect(&c, mproc_manager_address(m), k, kl));
	CHECK_OK(mproc_manager_ping(c));
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

static void t_nproc_manager(void *arg)
{
	run_sub(nproc_manager, arg);
}

/* One item through q (the mq back end wants a buffer of max_msg bytes). */
static void queue_check(struct mproc_queue *q)
{
	char *buf = malloc(mproc_queue_max_msg(q));

	ASSERT(buf);
	CHECK_OK(mproc_queue_put(q, "ok", 2, 5));
	CHECK_EQ(mproc_queue_get(q, buf, mproc_queue_max_msg(q), 5), 2);
	free(buf);
}

/* Queues and conns need no process: they work with no task to spare. */
static void nproc_unaffected(void *arg)
{
	char buf[16];

	(void)arg;
	become_limited(1);
	for (int t = MPROC_CONN_PIPE; t <= MPROC_CONN_SEQPACKET; t++) {
		struct mproc_conn_opts o = { .transport = (enum mproc_conn_transport)t };
		struct mproc_conn *a, *b;

		ASSERT_OK(mproc_conn_pair(&a, &b, &o));
		CHECK_EQ(mproc_conn_send(a, "hi", 2), 2);
		CHECK_EQ(mproc_conn_recv(b, buf, sizeof(buf), 5), 2);
		mproc_conn_free(a);
		mproc_conn_free(b);
	}
	for (int bk = 0; bk < MPROC_QUEUE_BACKEND_COUNT; bk++) {
		struct mproc_queue_opts o = { .backend = (enum mproc_queue_backend)bk };
		struct mproc_queue *q;

		if (mproc_queue_backend_available(o.backend, NULL) < 0)
			continue;
		ASSERT_OK(mproc_queue_new(&q, &o));
		queue_check(q);
		mproc_queue_free(q);
	}
}

static void t_nproc_unaffected(void *arg)
{
	run_sub(nproc_unaffected, arg);
}

/* ---- RLIMIT_NOFILE: every fd a constructor takes -> EMFILE ------------------------------ */

static int lowest_free_fd(void)
{
	int fd = 0;

	while (fcntl(fd, F_GETFD) >= 0)
		fd++;
	return fd;
}

struct fd_op {
	const char *name;
	int (*make)(struct fd_op *op);  /* 0 or -errno */
	void (*undo)(struct fd_op *op);
	int kind;                       /* transport, back end, shm kind... */
	bool simplex;
	void *obj[2];
	const char *address;            /* manager connect */
	const void *key;
	size_t keylen;
};

/* Allow k = 0, 1, 2... new fds until op succeeds; each failure must be -EMFILE and leave
 * nothing. Returns the number of fds the op needed, or -1. */
static int emfile_sweep(struct fd_op *op)
{
	struct rlimit old, rl;
	int k, r = -1;

	ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
	for (k = 0; k <= 16; k++) {
		struct guard g;

		guard_begin(&g);
		rl.rlim_cur = (rlim_t)(lowest_free_fd() + k);
		rl.rlim_max = old.rlim_max;
		ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
		r = op->make(op);
		ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
		if (r == 0) {
			op->undo(op);
			guard_end(&g, op->name);
			return k;
		}
		if (r != -EMFILE)
			tap_fail_at(__FILE__, __LINE__, "%s with %d fd(s) free: %s, want EMFILE",
				    op->name, k, mproc_strerror(r));
		guard_end(&g, op->name);
	}
	tap_fail_at(__FILE__, __LINE__, "%s: still failing with 16 fds free: %s", op->name,
		    mproc_strerror(r));
	return -1;
}

static int mk_conn(struct fd_op *op)
{
	struct mproc_conn_opts o = { .transport = (enum mproc_conn_transport)op->kind,
				     .simplex = op->simplex };

	return mproc_conn_pair((struct mproc_conn **)&op->obj[0], (struct mproc_conn **)&op->obj[1],
			       &o);
}

static void un_conn(struct fd_op *op)
{
	char buf[4];

	/* It works, too. */
	CHECK_EQ(mproc_conn_send(op->obj[1], "ok", 2), 2);
	CHECK_EQ(mproc_conn_recv(op->obj[0], buf, sizeof(buf), 5), 2);
	mproc_conn_free(op->obj[0]);
	mproc_conn_free(op->obj[1]);
}

static int mk_queue(struct fd_op *op)
{
	struct mproc_queue_opts o = { .backend = (enum mproc_queue_backend)op->kind };

	return mproc_queue_new((struct mproc_queue **)&op->obj[0], &o);
}

static void un_queue(struct fd_op *op)
{
	queue_check(op->obj[0]);
	mproc_queue_free(op->obj[0]);
}

static int mk_shm(struct fd_op *op)
{
	struct mproc_shm_opts o = { .kind = (enum mproc_shm_kind)op->kind };

	return mproc_shm_new((struct mproc_shm **)&op->obj[0], 8192, &o);
}

static void un_shm(struct fd_op *op)
{
	memset(mproc_shm_addr(op->obj[0]), 1, 8192);
	mproc_shm_free(op->obj[0]);
}

static int mk_array(struct fd_op *op)
{
	struct mproc_shm_opts o = { .kind = (enum mproc_shm_kind)op->kind };

	return mproc_array_new_in((struct mproc_array **)&op->obj[0], MPROC_INT64, 100,
				  MPROC_SHM_LOCK, &o);
}

static void un_array(struct fd_op *op)
{
	CHECK_OK(mproc_array_store(op->obj[0], 99, 5));
	mproc_array_free(op->obj[0]);
}

static int mk_connect(struct fd_op *op)
{
	return mproc_manager_connect((struct mproc_mclient **)&op->obj[0], op->address, op->key,
				     op->keylen);
}

static void un_connect(struct fd_op *op)
{
	CHECK_OK(mproc_manager_ping(op->obj[0]));
	mproc_manager_disconnect(op->obj[0]);
}

static int mk_manager(struct fd_op *op)
{
	return mproc_manager_start((struct mproc_manager **)&op->obj[0], NULL);
}

static void un_manager(struct fd_op *op)
{
	CHECK_EQ(mproc_manager_stop(op->obj[0]), 0);
}

static int mk_pool(struct fd_op *op)
{
	return pool_new3((struct mproc_pool **)&op->obj[0]);
}

static void un_pool(struct fd_op *op)
{
	pool_check_square(op->obj[0]);
	mproc_pool_free(op->obj[0]);
}

static int mk_process(struct fd_op *op)
{
	struct mproc_process_opts o = { .method = (enum mproc_start_method)op->kind };
	int r;

	r = mproc_process_new((struct mproc_process **)&op->obj[0], e_exit7, NULL, &o);
	if (r < 0)
		return r;
	r = mproc_process_start(op->obj[0]);
	if (r < 0)
		mproc_process_free(op->obj[0]);
	return r;
}

static void un_process(struct fd_op *op)
{
	int code = -1;

	CHECK_OK(mproc_process_join(op->obj[0], 30));
	CHECK_OK(mproc_process_exitcode(op->obj[0], &code));
	CHECK_EQ(code, 7);
	mproc_process_free(op->obj[0]);
}

static void t_emfile_conn(void *arg)
{
	static const char *const names[] = { "pipe", "stream", "seqpacket" };
	char name[64];

	(void)arg;
	for (int t = 0; t < 3; t++) {
		for (int s = 0; s < 2; s++) {
			struct fd_op op = { .name = name, .make = mk_conn, .undo = un_conn,
					    .kind = t, .simplex = s };

			snprintf(name, sizeof(name), "conn %s %s", names[t], s ? "simplex" : "duplex");
			/* At least the two ends, or it tested nothing. */
			CHECK_CMP(emfile_sweep(&op), >=, 2);
		}
	}
}

static void t_emfile_queue(void *arg)
{
	enum mproc_queue_backend b = (enum mproc_queue_backend)(intptr_t)arg;
	struct fd_op op = { .name = mproc_queue_backend_name(b), .make = mk_queue,
			    .undo = un_queue, .kind = (int)b };
	const char *why = NULL;
	int need;

	if (mproc_queue_backend_available(b, &why) < 0)
		tap_skip("%s queues are unavailable here: %s", op.name, why ? why : "?");
	need = emfile_sweep(&op);
	/* Every queue keeps its control block in a memfd (so exec'd children can attach it):
	 * pipe adds its pipe and the lock page's memfd, ring its ring's memfd, mq a descriptor. */
	CHECK_EQ(need, b == MPROC_QUEUE_PIPE ? 4 : b == MPROC_QUEUE_SYSV ? 1 : 2);
}

static void t_emfile_shm(void *arg)
{
	static const char *const names[] = { "shm anon", "shm memfd", "shm named" };
	static const char *const anames[] = { "array anon", "array memfd", "array named" };

	(void)arg;
	for (int k = MPROC_SHM_ANON; k <= MPROC_SHM_NAMED; k++) {
		struct fd_op op = { .name = names[k], .make = mk_shm, .undo = un_shm, .kind = k };
		struct fd_op aop = { .name = anames[k], .make = mk_array, .undo = un_array,
				     .kind = k };

		if (k == MPROC_SHM_NAMED && !tap_dev_shm_usable()) {
			tap_diag("named regions skipped: no writable /dev/shm");
			continue;
		}
		CHECK_EQ(emfile_sweep(&op), k == MPROC_SHM_ANON ? 0 : 1);
		CHECK_EQ(emfile_sweep(&aop), k == MPROC_SHM_ANON ? 0 : 1);
	}
}

static void t_emfile_manager(void *arg)
{
	struct mproc_manager *m = NULL;
	struct fd_op start = { .name = "manager start", .make = mk_manager, .undo = un_manager };
	struct fd_op conn = { .name = "manager connect", .make = mk_connect, .undo = un_connect };

	(void)arg;
	CHECK_CMP(emfile_sweep(&start), >=, 2);
	ASSERT_OK(mproc_manager_start(&m, NULL));
	conn.address = mproc_manager_address(m);
	conn.key = mproc_manager_key(m, &conn.keylen);
	CHECK_CMP(emfile_sweep(&conn), >=, 1);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

static void t_emfile_pool(void *arg)
{
	struct fd_op op = { .name = "pool", .make = mk_pool, .undo = un_pool };

	(void)arg;
	CHECK_CMP(emfile_sweep(&op), >=, 4);    /* doorbell, three worker sentinels */
}

static void t_emfile_process(void *arg)
{
	enum mproc_start_method m = (enum mproc_start_method)(intptr_t)arg;
	struct fd_op op = { .name = method_names[m], .make = mk_process, .undo = un_process,
			    .kind = (int)m };

	/* The forkserver runs already (its own start execs an image, which needs fds of its
	 * own to load): what the caller needs per start is a connection. */
	if (m == MPROC_START_FORKSERVER)
		ASSERT_OK(mproc_forkserver_start());
	CHECK_CMP(emfile_sweep(&op), >=, 1);
	mproc_forkserver_stop();
}

/* ---- RLIMIT_AS: anonymous mappings -> ENOMEM -------------------------------------------- */

static long vm_size_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

#define AS_HEADROOM ((size_t)256 << 20)
#define AS_ASK ((size_t)1 << 30)        /* more than the headroom: fails, small things work */

static void as_enomem(void *arg)
{
	struct rlimit rl;
	long kib = vm_size_kib();
	struct guard g;
	struct mproc_shm *s = NULL;
	struct mproc_array *a = NULL;
	struct mproc_queue *q = NULL;
	struct mproc_pool *p = NULL;
	struct mproc_queue_opts qo = { .backend = MPROC_QUEUE_RING, .ring_bytes = AS_ASK,
				       .max_msg = 1024 };
	struct mproc_pool_opts po = { .workers = 2, .fn = t_square, .task_max = 1 << 20,
				      .result_max = 1 << 20, .queue_max = 1024 };

	(void)arg;
	if (tap_env_timeout_mult() > 1.0)
		tap_skip("RLIMIT_AS and sanitizer/valgrind shadow memory do not mix");
	ASSERT(kib > 0);
	ASSERT(getrlimit(RLIMIT_AS, &rl) == 0);
	rl.rlim_cur = (rlim_t)kib * 1024 + AS_HEADROOM;
	ASSERT(setrlimit(RLIMIT_AS, &rl) == 0);

	guard_begin(&g);
	CHECK_ERR(mproc_shm_new(&s, AS_ASK, NULL), -ENOMEM);
	CHECK_ERR(mproc_array_new(&a, MPROC_INT64, AS_ASK / 8, MPROC_SHM_LOCK), -ENOMEM);
	CHECK_ERR(mproc_queue_new(&q, &qo), -ENOMEM);
	CHECK_ERR(mproc_pool_new(&p, &po), -ENOMEM);     /* 2 GiB of task table */
	CHECK(!s && !a && !q && !p);
	guard_end(&g, "anonymous mappings over RLIMIT_AS");
	/* What fits still works. */
	ASSERT_OK(mproc_shm_new(&s, 1 << 20, NULL));
	memset(mproc_shm_addr(s), 7, 1 << 20);
	mproc_shm_free(s);
	po.task_max = po.result_max = 64;
	ASSERT_OK(mproc_pool_new(&p, &po));
	pool_check_square(p);
	mproc_pool_free(p);
}

static void t_as_enomem(void *arg)
{
	run_sub(as_enomem, arg);
}

/* ---- a 64 KiB /dev/shm: named regions -> ENOSPC at creation, never SIGBUS --------------- */

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

static void tiny_devshm(void *arg)
{
	struct mproc_shm_opts named = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm_opts memfd = { .kind = MPROC_SHM_MEMFD };
	struct mproc_queue_opts ro = { .backend = MPROC_QUEUE_RING, .ring_bytes = 1 << 20 };
	struct mproc_shm *s1 = NULL, *s2 = NULL;
	struct mproc_array *a = NULL;
	struct mproc_value *v = NULL;
	struct mproc_queue *q = NULL;
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct guard g;

	(void)arg;
	if (geteuid() != 0)
		tap_skip("needs root for a private mount namespace with a tiny /dev/shm");
	if (unshare(CLONE_NEWNS) < 0)
		tap_skip("unshare(CLONE_NEWNS): %s", strerror(errno));
	ASSERT(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=1777") < 0)
		tap_skip("mount tmpfs on /dev/shm: %s", strerror(errno));
	ASSERT(sigaction(SIGBUS, &sa, NULL) == 0);

	guard_begin(&g);
	CHECK_ERR(mproc_shm_new(&s1, 1 << 20, &named), -ENOSPC);
	CHECK_ERR(mproc_array_new_in(&a, MPROC_INT32, 1 << 16, MPROC_SHM_LOCK, &named), -ENOSPC);
	CHECK_EQ(tap_count_entries("/dev/shm"), 0);     /* no name left behind */
	guard_end(&g, "named region over a full /dev/shm");

	/* Fill it: the second region does not fit beside the first. */
	ASSERT_OK(mproc_shm_new(&s1, 40 << 10, &named));
	guard_begin(&g);
	CHECK_ERR(mproc_shm_new(&s2, 40 << 10, &named), -ENOSPC);
	guard_end(&g, "second named region");
	/* What still fits is created. */
	ASSERT_OK(mproc_value_new_in(&v, MPROC_INT64, MPROC_SHM_LOCK, &named));
	CHECK_OK(mproc_value_store(v, 5));
	mproc_value_free(v);
	/* The first one was reserved at creation: every page can be touched, no SIGBUS. */
	if (sigsetjmp(bus_jmp, 1) == 0)
		memset(mproc_shm_addr(s1), 0xa5, 40 << 10);
	else
		tap_fail_at(__FILE__, __LINE__, "SIGBUS touching a region that was created");
	mproc_shm_free(s1);
	CHECK_EQ(tap_count_entries("/dev/shm"), 0);

	/* Memfd regions and ring queues never use /dev/shm: larger than it, they work. */
	ASSERT_OK(mproc_shm_new(&s2, 1 << 20, &memfd));
	memset(mproc_shm_addr(s2), 1, 1 << 20);
	mproc_shm_free(s2);
	ASSERT_OK(mproc_queue_new(&q, &ro));
	queue_check(q);
	mproc_queue_free(q);
}

static void t_tiny_devshm(void *arg)
{
	run_sub(tiny_devshm, arg);
}

/* ---- EPIPE on every channel, SIGPIPE at its default action ------------------------------ */

static void t_epipe_conn(void *arg)
{
	static const char *const names[] = { "pipe", "stream", "seqpacket" };
	char *big = calloc(1, 1 << 20);

	(void)arg;
	ASSERT(big);
	signal(SIGPIPE, SIG_DFL);
	for (int t = 0; t < 3; t++) {
		for (int s = 0; s < 2; s++) {
			struct mproc_conn_opts o = { .transport = (enum mproc_conn_transport)t,
						     .simplex = s };
			struct mproc_conn *a, *b;
			int fd = 0;

			ASSERT_OK(mproc_conn_pair(&a, &b, &o));
			/* b writes (simplex: b is the write end); close the reader a. */
			mproc_conn_free(a);
			if (tap_failed())
				break;
			CHECK_ERR(mproc_conn_send(b, "x", 1), -EPIPE);
			CHECK_ERR(mproc_conn_send(b, big, 1 << 20), -EPIPE);
			CHECK_ERR(mproc_conn_write(b, "x", 1), -EPIPE);
			if (t != MPROC_CONN_PIPE)
				CHECK_ERR(mproc_conn_send_fds(b, "x", 1, &fd, 1), -EPIPE);
			mproc_conn_free(b);
			if (tap_failed())
				tap_diag("in %s %s", names[t], s ? "simplex" : "duplex");
		}
	}
	/* A duplex peer that closes with our bytes unread (sockets report a reset): still EOF on
	 * receive and -EPIPE on send. */
	for (int t = 0; t < 3; t++) {
		struct mproc_conn_opts o = { .transport = (enum mproc_conn_transport)t };
		struct mproc_conn *a, *b;
		char buf[8];

		ASSERT_OK(mproc_conn_pair(&a, &b, &o));
		CHECK_EQ(mproc_conn_send(a, "unread", 6), 6);
		mproc_conn_free(b);
		CHECK_ERR(mproc_conn_recv(a, buf, sizeof(buf), 5), MPROC_EOF);
		CHECK_ERR(mproc_conn_send(a, "x", 1), -EPIPE);
		CHECK_ERR(mproc_conn_poll(a, 0), 1);
		mproc_conn_free(a);
		if (tap_failed())
			tap_diag("in %s, peer closed with bytes unread", names[t]);
	}
	free(big);
}

/* The reader goes away while a large send is blocked half-way. */
static int slow_reader(void *arg)
{
	struct mproc_conn *a = arg;
	char buf[4096];

	(void)mproc_conn_read(a, buf, sizeof(buf), 5);  /* take a little, then die */
	nap(0.1);
	return 0;
}

static void t_epipe_conn_midway(void *arg)
{
	const size_t n = 8 << 20;
	char *big = calloc(1, n);

	(void)arg;
	ASSERT(big);
	signal(SIGPIPE, SIG_DFL);
	for (int t = 0; t < 3; t++) {
		struct mproc_conn_opts o = { .transport = (enum mproc_conn_transport)t,
					     .simplex = true };
		struct mproc_conn *a, *b;
		pid_t pid;

		ASSERT_OK(mproc_conn_pair(&a, &b, &o));
		pid = tap_fork(slow_reader, a);
		mproc_conn_free(a);
		CHECK_ERR(mproc_conn_send(b, big, n), -EPIPE);
		CHECK_EQ(tap_reap(pid), 0);
		mproc_conn_free(b);
	}
	free(big);
}

static void t_epipe_queue(void *arg)
{
	char buf[64];

	(void)arg;
	signal(SIGPIPE, SIG_DFL);
	for (int bk = 0; bk < MPROC_QUEUE_BACKEND_COUNT; bk++) {
		struct mproc_queue_opts o = { .backend = (enum mproc_queue_backend)bk,
					      .max_msg = 64 };
		struct mproc_queue *q;

		if (mproc_queue_backend_available(o.backend, NULL) < 0)
			continue;
		ASSERT_OK(mproc_queue_new(&q, &o));
		CHECK_OK(mproc_queue_close(q));
		CHECK_ERR(mproc_queue_put(q, "x", 1, 1), -EPIPE);
		CHECK_ERR(mproc_queue_get(q, buf, sizeof(buf), 1), -EPIPE);
		mproc_queue_free(q);
	}
}

/* The manager dies: every call fails with -EPIPE (a call waiting at the time too), no
 * SIGPIPE. */
static void t_epipe_manager(void *arg)
{
	struct mproc_manager *m = NULL;
	struct mproc_mclient *c = NULL, *c2 = NULL;
	struct mproc_dict *d = NULL;
	struct mproc_mqueue *mq = NULL;
	const void *k;
	size_t kl;
	char buf[64];
	double t0;

	(void)arg;
	signal(SIGPIPE, SIG_DFL);
	ASSERT_OK(mproc_manager_start(&m, NULL));
	k = mproc_manager_key(m, &kl);
	ASSERT_OK(mproc_manager_connect(&c, mproc_manager_address(m), k, kl));
	ASSERT_OK(mproc_manager_connect(&c2, mproc_manager_address(m), k, kl));
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	ASSERT_OK(mproc_mqueue_open(&mq, c2, "q", 0));
	CHECK_OK(mproc_dict_set(d, "k", "v", 1));
	ASSERT(kill(mproc_manager_pid(m), SIGKILL) == 0);
	t0 = tap_now();
	CHECK_ERR(mproc_mqueue_get(mq, buf, sizeof(buf), MPROC_FOREVER), -EPIPE);
	CHECK_CMP(tap_now() - t0, <, 5.0 * tap_timeout_mult());
	CHECK_ERR(mproc_dict_set(d, "k", buf, sizeof(buf)), -EPIPE);
	CHECK_ERR(mproc_dict_get(d, "k", buf, sizeof(buf)), -EPIPE);
	CHECK_ERR(mproc_manager_ping(c), -EPIPE);
	mproc_mqueue_free(mq);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	mproc_manager_disconnect(c2);
	CHECK_EQ(mproc_manager_stop(m), -SIGKILL);
}

/* ---- signal storms: EINTR every millisecond ------------------------------------------- */

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static volatile sig_atomic_t storm_hits;
static timer_t storm_timer;

static void on_storm(int sig)
{
	(void)sig;
	storm_hits++;
}

/* SIGUSR2 every millisecond to the calling thread, whose handler has no SA_RESTART: every
 * blocking system call the library makes in this thread fails with EINTR again and again. */
static void storm_start(void)
{
	struct sigaction sa = { .sa_handler = on_storm };      /* no SA_RESTART */
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2 };
	struct itimerspec its = { { 0, 1000000 }, { 0, 1000000 } };

	sev.sigev_notify_thread_id = gettid();
	sigemptyset(&sa.sa_mask);
	ASSERT(sigaction(SIGUSR2, &sa, NULL) == 0);
	ASSERT(timer_create(CLOCK_MONOTONIC, &sev, &storm_timer) == 0);
	storm_hits = 0;
	ASSERT(timer_settime(storm_timer, 0, &its, NULL) == 0);
}

static void storm_stop(void)
{
	timer_delete(storm_timer);
	/* It did storm (else the case tested nothing). */
	CHECK_CMP(storm_hits, >=, 20);
}

/* A timed wait that ran out: not early, and not much late. */
#define CHECK_WAITED(t0, want)                                                         \
	do {                                                                           \
		double el_ = tap_now() - (t0);                                         \
		CHECK_CMP(el_, >=, (want) - 0.002);                                    \
		CHECK_CMP(el_, <, (want) + 2.0 * tap_timeout_mult());                  \
	} while (0)

#define STORM_ITEMS 300

struct qctx {
	struct mproc_queue *q;
};

static int storm_producer(void *arg)
{
	struct qctx *c = arg;

	nap(0.05);
	for (uint32_t i = 0; i < STORM_ITEMS; i++) {
		uint32_t item[8] = { i, ~i };

		if (mproc_queue_put(c->q, item, (i % 8 + 1) * 4, MPROC_FOREVER) < 0)
			return 1;
		if (i % 16 == 0)
			nap(0.0005);
	}
	return 0;
}

static int storm_consumer(void *arg)
{
	struct qctx *c = arg;
	size_t cap = mproc_queue_max_msg(c->q);
	uint32_t *item = malloc(cap);

	if (!item)
		return 3;
	nap(0.05);
	for (uint32_t i = 0; i < STORM_ITEMS; i++) {
		ssize_t n = mproc_queue_get(c->q, item, cap, MPROC_FOREVER);

		if (n != (ssize_t)((i % 8 + 1) * 4) || item[0] != i)
			return 1;
		if (i % 16 == 0)
			nap(0.0005);
	}
	free(item);
	return 0;
}

static void t_storm_queue(void *arg)
{
	enum mproc_queue_backend b = (enum mproc_queue_backend)(intptr_t)arg;
	struct mproc_queue_opts o = { .backend = b, .maxsize = 4, .max_msg = 64 };
	struct qctx c;
	uint32_t item[16];
	const char *why = NULL;
	double t0;
	pid_t pid;

	if (mproc_queue_backend_available(b, &why) < 0)
		tap_skip("%s queues are unavailable here: %s", mproc_queue_backend_name(b),
			 why ? why : "?");
	ASSERT_OK(mproc_queue_new(&c.q, &o));
	storm_start();
	/* get blocks (empty) while a producer trickles items in. */
	pid = tap_fork(storm_producer, &c);
	for (uint32_t i = 0; i < STORM_ITEMS; i++) {
		ssize_t n = mproc_queue_get(c.q, item, sizeof(item), MPROC_FOREVER);

		CHECK_EQ(n, (i % 8 + 1) * 4);
		CHECK_EQ(item[0], i);
		if (tap_failed()) {
			kill(pid, SIGKILL);     /* it would wait for room forever */
			break;
		}
	}
	CHECK_EQ(tap_reap(pid), tap_failed() ? 128 + SIGKILL : 0);
	t0 = tap_now();
	CHECK_ERR(mproc_queue_get(c.q, item, sizeof(item), 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	/* put blocks (full at 4 items) while a consumer drains slowly. */
	pid = tap_fork(storm_consumer, &c);
	for (uint32_t i = 0; i < STORM_ITEMS && !tap_failed(); i++) {
		uint32_t it[8] = { i, ~i };

		CHECK_OK(mproc_queue_put(c.q, it, (i % 8 + 1) * 4, MPROC_FOREVER));
	}
	if (tap_failed())
		kill(pid, SIGKILL);
	CHECK_EQ(tap_reap(pid), tap_failed() ? 128 + SIGKILL : 0);
	for (int i = 0; i < 4; i++)
		CHECK_OK(mproc_queue_put(c.q, item, 4, 0));
	t0 = tap_now();
	CHECK_ERR(mproc_queue_put(c.q, item, 4, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	storm_stop();
	mproc_queue_free(c.q);
}

struct cctx {
	struct mproc_conn *a, *b;
	size_t big;
};

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 131u + i * 7u);
}

static size_t storm_len(uint32_t i)
{
	return i % 10 == 0 ? (size_t)256 << 10 : (i * 7919u) % 5000;
}

/* Child: send messages with pauses, then read one big message slowly. */
static int storm_conn_child(void *arg)
{
	struct cctx *c = arg;
	unsigned char *buf = malloc(c->big), *want = malloc(c->big);
	ssize_t n;

	if (!buf || !want)
		return 3;
	mproc_conn_free(c->a);
	nap(0.05);
	for (uint32_t i = 0; i < 100; i++) {
		fill(buf, storm_len(i), i);
		if (mproc_conn_send(c->b, buf, storm_len(i)) != (ssize_t)storm_len(i))
			return 1;
		if (i % 8 == 0)
			nap(0.001);
	}
	nap(0.05);      /* the parent blocks in its big send meanwhile */
	n = mproc_conn_recv(c->b, buf, c->big, 30);
	fill(want, c->big, 99);
	if (n != (ssize_t)c->big || memcmp(buf, want, c->big) != 0)
		return 2;
	return 0;
}

static void t_storm_conn(void *arg)
{
	struct mproc_conn_opts o = { .transport = (enum mproc_conn_transport)(intptr_t)arg };
	struct cctx c = { .big = 8 << 20 };
	unsigned char *buf = malloc(c.big), *want = malloc(c.big);
	double t0;
	pid_t pid;

	ASSERT(buf && want);
	ASSERT_OK(mproc_conn_pair(&c.a, &c.b, &o));
	storm_start();
	pid = tap_fork(storm_conn_child, &c);
	mproc_conn_free(c.b);
	for (uint32_t i = 0; i < 100 && !tap_failed(); i++) {
		fill(want, storm_len(i), i);
		CHECK_EQ(mproc_conn_recv(c.a, buf, c.big, MPROC_FOREVER), storm_len(i));
		CHECK_MEM_EQ(buf, want, storm_len(i));
	}
	fill(buf, c.big, 99);
	CHECK_EQ(mproc_conn_send(c.a, buf, c.big), c.big);
	CHECK_EQ(tap_reap(pid), 0);
	t0 = tap_now();
	CHECK_ERR(mproc_conn_recv(c.a, buf, c.big, 0.2), MPROC_EOF);    /* child gone */
	CHECK_CMP(tap_now() - t0, <, 2.0 * tap_timeout_mult());
	mproc_conn_free(c.a);
	/* A timed receive with nothing coming. */
	ASSERT_OK(mproc_conn_pair(&c.a, &c.b, &o));
	t0 = tap_now();
	CHECK_ERR(mproc_conn_recv(c.a, buf, c.big, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	t0 = tap_now();
	CHECK_EQ(mproc_conn_poll(c.a, 0.2), 0);
	CHECK_WAITED(t0, 0.2);
	storm_stop();
	mproc_conn_free(c.a);
	mproc_conn_free(c.b);
	free(buf);
	free(want);
}

/* Sync objects: another process releases/sets/notifies/arrives after 100 ms. */
struct sctx {
	struct mproc_lock *l;
	struct mproc_rlock *rl;
	struct mproc_sem *s;
	struct mproc_event *e;
	struct mproc_cond *c;
	struct mproc_barrier *b;
	struct mproc_event *go;
	double hold;
};

static int hold_lock(void *arg)
{
	struct sctx *x = arg;

	if (mproc_lock_acquire(x->l, 5) < 0 || mproc_event_set(x->go) < 0)
		return 1;
	nap(x->hold);
	return mproc_lock_release(x->l) < 0;
}

static int hold_rlock(void *arg)
{
	struct sctx *x = arg;

	if (mproc_rlock_acquire(x->rl, 5) < 0 || mproc_event_set(x->go) < 0)
		return 1;
	nap(x->hold);
	return mproc_rlock_release(x->rl) < 0;
}

static int later_sem(void *arg)
{
	struct sctx *x = arg;

	nap(0.1);
	return mproc_sem_release(x->s) < 0;
}

static int later_event(void *arg)
{
	struct sctx *x = arg;

	nap(0.1);
	return mproc_event_set(x->e) < 0;
}

static int later_notify(void *arg)
{
	struct sctx *x = arg;

	nap(0.1);
	if (mproc_lock_acquire(x->l, 5) < 0)
		return 1;
	if (mproc_cond_notify(x->c, x->l, 1) != 1)
		return 2;
	return mproc_lock_release(x->l) < 0;
}

static int later_barrier(void *arg)
{
	struct sctx *x = arg;

	nap(0.1);
	return mproc_barrier_wait(x->b, 5) < 0;
}

static void t_storm_sync(void *arg)
{
	struct sctx x = { .hold = 0.1 };
	struct mproc_barrier *alone = NULL;
	double t0;
	pid_t pid;

	(void)arg;
	ASSERT_OK(mproc_lock_new(&x.l));
	ASSERT_OK(mproc_rlock_new(&x.rl));
	ASSERT_OK(mproc_sem_new(&x.s, 0, 0));
	ASSERT_OK(mproc_event_new(&x.e));
	ASSERT_OK(mproc_event_new(&x.go));
	ASSERT_OK(mproc_cond_new(&x.c));
	ASSERT_OK(mproc_barrier_new(&x.b, 2));
	ASSERT_OK(mproc_barrier_new(&alone, 2));
	storm_start();

	/* Lock: held elsewhere 100 ms, then 1 s. */
	pid = tap_fork(hold_lock, &x);
	CHECK_OK(mproc_event_wait(x.go, MPROC_FOREVER));
	CHECK_OK(mproc_lock_acquire(x.l, MPROC_FOREVER));
	CHECK_OK(mproc_lock_release(x.l));
	CHECK_EQ(tap_reap(pid), 0);
	CHECK_OK(mproc_event_clear(x.go));
	x.hold = 1.0;
	pid = tap_fork(hold_lock, &x);
	CHECK_OK(mproc_event_wait(x.go, MPROC_FOREVER));
	t0 = tap_now();
	CHECK_ERR(mproc_lock_acquire(x.l, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	CHECK_OK(mproc_lock_acquire(x.l, 10));  /* once released */
	CHECK_OK(mproc_lock_release(x.l));
	CHECK_EQ(tap_reap(pid), 0);

	/* RLock, the same. */
	CHECK_OK(mproc_event_clear(x.go));
	x.hold = 1.0;
	pid = tap_fork(hold_rlock, &x);
	CHECK_OK(mproc_event_wait(x.go, MPROC_FOREVER));
	t0 = tap_now();
	CHECK_ERR(mproc_rlock_acquire(x.rl, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	CHECK_OK(mproc_rlock_acquire(x.rl, MPROC_FOREVER));
	CHECK_OK(mproc_rlock_release(x.rl));
	CHECK_EQ(tap_reap(pid), 0);

	/* Semaphore. */
	t0 = tap_now();
	CHECK_ERR(mproc_sem_acquire(x.s, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	pid = tap_fork(later_sem, &x);
	CHECK_OK(mproc_sem_acquire(x.s, MPROC_FOREVER));
	CHECK_EQ(tap_reap(pid), 0);
	CHECK_EQ(mproc_sem_value(x.s), 0);

	/* Event. */
	t0 = tap_now();
	CHECK_ERR(mproc_event_wait(x.e, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	pid = tap_fork(later_event, &x);
	CHECK_OK(mproc_event_wait(x.e, MPROC_FOREVER));
	CHECK_EQ(tap_reap(pid), 0);

	/* Condition: the notifier needs the lock, which our wait releases. */
	CHECK_OK(mproc_lock_acquire(x.l, 5));
	t0 = tap_now();
	CHECK_ERR(mproc_cond_wait(x.c, x.l, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	CHECK_EQ(mproc_lock_locked(x.l), 1);
	pid = tap_fork(later_notify, &x);
	CHECK_OK(mproc_cond_wait(x.c, x.l, MPROC_FOREVER));
	CHECK_OK(mproc_lock_release(x.l));
	CHECK_EQ(tap_reap(pid), 0);

	/* Barrier. */
	pid = tap_fork(later_barrier, &x);
	CHECK_CMP(mproc_barrier_wait(x.b, MPROC_FOREVER), >=, 0);
	CHECK_EQ(tap_reap(pid), 0);
	t0 = tap_now();
	CHECK_ERR(mproc_barrier_wait(alone, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);

	storm_stop();
	mproc_lock_free(x.l);
	mproc_rlock_free(x.rl);
	mproc_sem_free(x.s);
	mproc_event_free(x.e);
	mproc_event_free(x.go);
	mproc_cond_free(x.c);
	mproc_barrier_free(x.b);
	mproc_barrier_free(alone);
}

static void t_storm_process(void *arg)
{
	enum mproc_start_method m = (enum mproc_start_method)(intptr_t)arg;
	struct mproc_process_opts o = { .method = m };
	struct mproc_process *p = NULL;
	int code = -1;
	double t0;

	storm_start();
	ASSERT_OK(mproc_process_new(&p, e_sleep_exit3, NULL, &o));
	ASSERT_OK(mproc_process_start(p));
	t0 = tap_now();
	CHECK_ERR(mproc_process_join(p, 0.05), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.05);
	CHECK_OK(mproc_process_join(p, MPROC_FOREVER));
	CHECK_OK(mproc_process_exitcode(p, &code));
	CHECK_EQ(code, 3);
	storm_stop();
	mproc_process_free(p);
	mproc_forkserver_stop();
}

static void t_storm_pool(void *arg)
{
	struct mproc_pool_opts o = { .workers = 2, .fn = t_square };
	struct mproc_pool *p = NULL;
	struct mproc_result *r = NULL;
	struct mproc_imap *it = NULL;
	int64_t in[64], out[64], y = 0;
	ssize_t st[64];
	struct mproc_pool_batch b = { .tasks = in, .task_len = sizeof(int64_t), .results = out,
				      .result_stride = sizeof(int64_t), .status = st, .n = 64 };
	double t0;

	(void)arg;
	storm_start();
	ASSERT_OK(mproc_pool_new(&p, &o));
	in[0] = -300;   /* 300 ms */
	ASSERT_OK(mproc_pool_submit(p, &in[0], sizeof(in[0]), &r));
	t0 = tap_now();
	CHECK_ERR(mproc_result_get(r, &y, sizeof(y), 0.05), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.05);
	CHECK_EQ(mproc_result_get(r, &y, sizeof(y), MPROC_FOREVER), sizeof(y));
	CHECK_EQ(y, 90000);
	mproc_result_free(r);
	for (int i = 0; i < 64; i++)
		in[i] = i % 8 == 0 ? -5 : i;
	CHECK_OK(mproc_pool_map(p, &b, MPROC_FOREVER));
	for (int i = 0; i < 64; i++)
		CHECK_EQ(out[i], in[i] * in[i]);
	ASSERT_OK(mproc_pool_imap(p, &b, &it));
	for (int i = 0; i < 64; i++) {
		size_t idx = 99;

		CHECK_EQ(mproc_imap_next(it, &y, sizeof(y), &idx, MPROC_FOREVER), sizeof(y));
		CHECK_EQ(idx, i);
		CHECK_EQ(y, in[i] * in[i]);
	}
	CHECK_ERR(mproc_imap_next(it, &y, sizeof(y), NULL, MPROC_FOREVER), MPROC_EOF);
	mproc_imap_free(it);
	CHECK_OK(mproc_pool_close(p));
	CHECK_OK(mproc_pool_join(p, MPROC_FOREVER));
	storm_stop();
	mproc_pool_free(p);
}

struct mctx {
	const char *address;
	const void *key;
	size_t keylen;
};

static int later_mqueue_put(void *arg)
{
	struct mctx *x = arg;
	struct mproc_mclient *c = NULL;
	struct mproc_mqueue *q = NULL;
	int r = 1;

	if (mproc_manager_connect(&c, x->address, x->key, x->keylen) < 0)
		return 1;
	if (mproc_mqueue_open(&q, c, "q", 0) == 0) {
		nap(0.1);
		r = mproc_mqueue_put(q, "late", 4, 5) < 0 ? 2 : 0;
		mproc_mqueue_free(q);
	}
	mproc_manager_disconnect(c);
	return r;
}

static void t_storm_manager(void *arg)
{
	struct mproc_manager *m = NULL;
	struct mproc_mclient *c = NULL, *c2 = NULL;
	struct mproc_dict *d = NULL;
	struct mproc_mqueue *q = NULL;
	struct mproc_mlock *l = NULL, *l2 = NULL;
	struct mctx x;
	char buf[64], key[16];
	double t0;
	pid_t pid;

	(void)arg;
	storm_start();
	ASSERT_OK(mproc_manager_start(&m, NULL));
	x.address = mproc_manager_address(m);
	x.key = mproc_manager_key(m, &x.keylen);
	ASSERT_OK(mproc_manager_connect(&c, x.address, x.key, x.keylen));
	ASSERT_OK(mproc_manager_connect(&c2, x.address, x.key, x.keylen));
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	for (int i = 0; i < 200 && !tap_failed(); i++) {
		snprintf(key, sizeof(key), "k%d", i % 17);
		CHECK_OK(mproc_dict_set(d, key, &i, sizeof(i)));
		CHECK_EQ(mproc_dict_get(d, key, buf, sizeof(buf)), sizeof(i));
		CHECK_MEM_EQ(buf, &i, sizeof(i));
	}
	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 0));
	t0 = tap_now();
	CHECK_ERR(mproc_mqueue_get(q, buf, sizeof(buf), 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	pid = tap_fork(later_mqueue_put, &x);
	CHECK_EQ(mproc_mqueue_get(q, buf, sizeof(buf), MPROC_FOREVER), 4);
	CHECK_MEM_EQ(buf, "late", 4);
	CHECK_EQ(tap_reap(pid), 0);
	ASSERT_OK(mproc_mlock_open(&l, c, "l"));
	ASSERT_OK(mproc_mlock_open(&l2, c2, "l"));
	CHECK_OK(mproc_mlock_acquire(l2, 5));
	t0 = tap_now();
	CHECK_ERR(mproc_mlock_acquire(l, 0.2), -ETIMEDOUT);
	CHECK_WAITED(t0, 0.2);
	CHECK_OK(mproc_mlock_release(l2));
	CHECK_OK(mproc_mlock_acquire(l, 5));
	CHECK_OK(mproc_mlock_release(l));
	CHECK_OK(mproc_manager_ping(c));
	storm_stop();
	mproc_mlock_free(l);
	mproc_mlock_free(l2);
	mproc_mqueue_free(q);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	mproc_manager_disconnect(c2);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	char name[96];

	mproc_main_hook(argc, argv);
	for (int m = 0; m < MPROC_START__COUNT; m++) {
		snprintf(name, sizeof(name), "fault/nproc/process/%s/eagain", method_names[m]);
		tap_add(name, t_nproc_start, (void *)(intptr_t)m);
	}
	tap_add("fault/nproc/pool/third_worker", t_nproc_pool_third, NULL);
	tap_add("fault/nproc/pool/every_position", t_nproc_pool_sweep, NULL);
	tap_add("fault/nproc/pool/no_replacement", t_nproc_pool_replace, NULL);
	tap_add("fault/nproc/manager/start", t_nproc_manager, NULL);
	tap_add("fault/nproc/queue_conn_unaffected", t_nproc_unaffected, NULL);

	tap_add("fault/emfile/conn/all", t_emfile_conn, NULL);
	for (int b = 0; b < MPROC_QUEUE_BACKEND_COUNT; b++) {
		snprintf(name, sizeof(name), "fault/emfile/queue/%s",
			 mproc_queue_backend_name((enum mproc_queue_backend)b));
		tap_add(name, t_emfile_queue, (void *)(intptr_t)b);
	}
	tap_add("fault/emfile/shm/all", t_emfile_shm, NULL);
	tap_add("fault/emfile/manager/start_connect", t_emfile_manager, NULL);
	tap_add("fault/emfile/pool/new", t_emfile_pool, NULL);
	tap_add("fault/emfile/process/fork", t_emfile_process, (void *)(intptr_t)MPROC_START_FORK);
	tap_add("fault/emfile/process/thread", t_emfile_process,
		(void *)(intptr_t)MPROC_START_THREAD);
	tap_add("fault/emfile/process/forkserver", t_emfile_process,
		(void *)(intptr_t)MPROC_START_FORKSERVER);
	tap_add("fault/enomem/rlimit_as/anon", t_as_enomem, NULL);
	tap_add("fault/enospc/tiny_devshm", t_tiny_devshm, NULL);
	tap_add("fault/epipe/conn/closed_peer", t_epipe_conn, NULL);
	tap_add("fault/epipe/conn/peer_gone_midway", t_epipe_conn_midway, NULL);
	tap_add("fault/epipe/queue/closed", t_epipe_queue, NULL);
	tap_add("fault/epipe/manager/server_killed", t_epipe_manager, NULL);
	for (int b = 0; b < MPROC_QUEUE_BACKEND_COUNT; b++) {
		snprintf(name, sizeof(name), "fault/storm/queue/%s",
			 mproc_queue_backend_name((enum mproc_queue_backend)b));
		tap_add(name, t_storm_queue, (void *)(intptr_t)b);
	}
	tap_add("fault/storm/conn/pipe", t_storm_conn, (void *)(intptr_t)MPROC_CONN_PIPE);
	tap_add("fault/storm/conn/stream", t_storm_conn, (void *)(intptr_t)MPROC_CONN_STREAM);
	tap_add("fault/storm/conn/seqpacket", t_storm_conn,
		(void *)(intptr_t)MPROC_CONN_SEQPACKET);
	tap_add("fault/storm/sync/all", t_storm_sync, NULL);
	for (int m = 0; m < MPROC_START__COUNT; m++) {
		snprintf(name, sizeof(name), "fault/storm/process/%s/join", method_names[m]);
		tap_add(name, t_storm_process, (void *)(intptr_t)m);
	}
	tap_add("fault/storm/pool/get_map_imap", t_storm_pool, NULL);
	tap_add("fault/storm/manager/calls", t_storm_manager, NULL);
	return tap_run(argc, argv);
}
