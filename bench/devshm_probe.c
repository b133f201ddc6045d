/*
 * devshm_probe.c - mproc-devshm-probe: does each libmproc primitive work on this machine as it
 * is now (no /dev/shm, a read-only or a tiny one)? The suite driver runs it once per run and
 * keeps its answer in context.json (key devshm.probe.mproc); the report's "Without /dev/shm"
 * table (plots/mproc_results/report.py) reads it beside CPython's (bench/python/mp_bench.py
 * --probe).
 *
 *     mproc-devshm-probe [--oversize BYTES]
 *     mproc-devshm-probe --version
 *
 * Each primitive is made, used once across a fork (or a fresh image for the exec start
 * methods) and freed, in a forked child of its own with a 30 s alarm, so a hang or a crash
 * costs that one probe only. The child's exit status carries the -errno. Output, on stdout:
 *
 *     {"primitives": {"queue/ring": {"ok": true, "error": null, "on": "memfd"}, ...}}
 *
 * "on" names what the primitive rests on (design, not measured). --oversize BYTES also tries a
 * named segment of BYTES (bigger than /dev/shm's free space): libmproc reserves the pages at
 * creation (posix_fallocate), so it must fail there with -ENOSPC, never SIGBUS later.
 *
 * Exit: 0 the probes ran (whatever they found); 2 bad usage (one line on stderr).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mproc.h>

static int child_ok(void *arg)
{
	(void)arg;
	return 0;
}
MPROC_ENTRY("probe_child_ok", child_ok)

static ssize_t task_echo(const void *task, size_t len, void *result, size_t max, void *arg)
{
	(void)arg;
	if (len > max)
		return -EMSGSIZE;
	memcpy(result, task, len);
	return (ssize_t)len;
}
MPROC_POOL_TASK("probe_echo", task_echo)

/* Run fn(arg) in a child started by opts (NULL: fork) and reap it: 0, the child's failure as
 * -errno (its exit status, child_status), -ECHILD when it died of a signal, or the error of a
 * step. */
static int run_child(mproc_process_fn *fn, void *arg, const struct mproc_process_opts *o)
{
	struct mproc_process *p = NULL;
	int r, code = -1;

	r = mproc_process_new(&p, fn, arg, o);
	if (r < 0)
		return r;
	r = mproc_process_start(p);
	if (r == 0)
		r = mproc_process_join(p, 20.0);
	if (r == 0)
		r = mproc_process_exitcode(p, &code);
	if (r == 0 && code != 0)
		r = code > 0 ? -code : -ECHILD;
	mproc_process_free(p);
	return r;
}

static int in_child(mproc_process_fn *fn, void *arg)
{
	return run_child(fn, arg, NULL);
}

static int probe_process(enum mproc_start_method m)
{
	struct mproc_process_opts o = { .method = m, .entry = "probe_child_ok" };

	return run_child(child_ok, NULL, &o);
}

/* A child's exit status: the errno of what failed (in_child gives it back negated), 0 if none. */
static int child_status(long r)
{
	return r >= 0 ? 0 : (-r > 255 ? 255 : (int)-r);
}

static int send_one(void *arg)
{
	return child_status(mproc_conn_send(arg, "x", 1));
}

static int probe_pipe(void)
{
	struct mproc_conn *a = NULL, *b = NULL;
	char buf[8];
	ssize_t n;
	int r;

	r = mproc_conn_pair(&a, &b, NULL);
	if (r < 0)
		return r;
	r = in_child(send_one, b);
	if (r == 0) {
		n = mproc_conn_recv(a, buf, sizeof(buf), 10.0);
		r = n == 1 ? 0 : (n < 0 ? (int)n : -EBADMSG);
	}
	mproc_conn_free(a);
	mproc_conn_free(b);
	return r;
}

static int put_one(void *arg)
{
	return child_status(mproc_queue_put(arg, "x", 1, 10.0));
}

static int probe_queue(enum mproc_queue_backend be, unsigned flags)
{
	struct mproc_queue_opts o = { .backend = be, .flags = flags };
	struct mproc_queue *q = NULL;
	char buf[64];
	ssize_t n;
	int r;

	if (be == MPROC_QUEUE_MQ || be == MPROC_QUEUE_SYSV)
		o.max_msg = 64;
	r = mproc_queue_new(&q, &o);
	if (r < 0)
		return r;
	r = in_child(put_one, q);
	if (r == 0) {
		n = mproc_queue_get(q, buf, sizeof(buf), 10.0);
		r = n == 1 ? 0 : (n < 0 ? (int)n : -EBADMSG);
	}
	if (r == 0 && (flags & MPROC_QUEUE_JOINABLE)) {
		r = mproc_queue_task_done(q);
		if (r == 0)
			r = mproc_queue_join(q, 10.0);
	}
	mproc_queue_free(q);
	return r;
}

static int lock_once(void *arg)
{
	int r = mproc_lock_acquire(arg, 10.0);

	return child_status(r < 0 ? r : mproc_lock_release(arg));
}

static int sem_release(void *arg)
{
	return child_status(mproc_sem_release(arg));
}

static int event_set(void *arg)
{
	return child_status(mproc_event_set(arg));
}

static int barrier_wait(void *arg)
{
	return child_status(mproc_barrier_wait(arg, 10.0));
}

static int probe_sync(const char *what)
{
	int r;

	if (!strcmp(what, "lock")) {
		struct mproc_lock *l = NULL;
		r = mproc_lock_new(&l);
		if (r == 0)
			r = in_child(lock_once, l);
		mproc_lock_free(l);
	} else if (!strcmp(what, "semaphore")) {
		struct mproc_sem *s = NULL;
		r = mproc_sem_new(&s, 0, 0);
		if (r == 0)
			r = in_child(sem_release, s);
		if (r == 0)
			r = mproc_sem_acquire(s, 10.0);
		mproc_sem_free(s);
	} else if (!strcmp(what, "event")) {
		struct mproc_event *e = NULL;
		r = mproc_event_new(&e);
		if (r == 0)
			r = in_child(event_set, e);
		if (r == 0)
			r = mproc_event_wait(e, 10.0);
		mproc_event_free(e);
	} else if (!strcmp(what, "condition")) {
		struct mproc_cond *c = NULL;
		struct mproc_lock *l = NULL;
		r = mproc_cond_new(&c);
		if (r == 0)
			r = mproc_lock_new(&l);
		if (r == 0)
			r = mproc_lock_acquire(l, 10.0);
		if (r == 0) {
			r = mproc_cond_notify_all(c, l);
			mproc_lock_release(l);
		}
		if (r == 0)
			r = in_child(lock_once, l);
		mproc_lock_free(l);
		mproc_cond_free(c);
	} else {
		struct mproc_barrier *b = NULL;
		r = mproc_barrier_new(&b, 2);
		if (r == 0) {
			struct mproc_process *p = NULL;
			int code = -1;
			r = mproc_process_new(&p, barrier_wait, b, NULL);
			if (r == 0)
				r = mproc_process_start(p);
			if (r == 0) {
				int w = mproc_barrier_wait(b, 10.0);
				r = mproc_process_join(p, 20.0);
				if (r == 0)
					r = mproc_process_exitcode(p, &code);
				if (r == 0)
					r = w < 0 ? w : (code ? -ECHILD : 0);
			}
			mproc_process_free(p);
		}
		mproc_barrier_free(b);
	}
	return r;
}

static int value_inc(void *arg)
{
	struct mproc_lock *l = mproc_value_lock(arg);
	int r = mproc_lock_acquire(l, 10.0);

	if (r < 0)
		return child_status(r);
	mproc_value_add(arg, 1, NULL);
	return child_status(mproc_lock_release(l));
}

static int array_store(void *arg)
{
	return child_status(mproc_array_store(arg, 0, 7));
}

static int probe_value(bool array)
{
	int64_t x = 0;
	int r;

	if (array) {
		struct mproc_array *a = NULL;
		r = mproc_array_new(&a, MPROC_INT64, 4, MPROC_SHM_LOCK);
		if (r == 0)
			r = in_child(array_store, a);
		if (r == 0)
			r = mproc_array_load(a, 0, &x);
		if (r == 0 && x != 7)
			r = -EBADMSG;
		mproc_array_free(a);
	} else {
		struct mproc_value *v = NULL;
		r = mproc_value_new(&v, MPROC_INT64, MPROC_SHM_LOCK);
		if (r == 0)
			r = in_child(value_inc, v);
		if (r == 0)
			r = mproc_value_load(v, &x);
		if (r == 0 && x != 1)
			r = -EBADMSG;
		mproc_value_free(v);
	}
	return r;
}

/* A region of size bytes of the given kind, every page written. */
static int probe_shm(enum mproc_shm_kind kind, size_t size)
{
	struct mproc_shm_opts o = { .kind = kind };
	struct mproc_shm *s = NULL;
	int r;

	r = mproc_shm_new(&s, size, kind == MPROC_SHM_ANON ? NULL : &o);
	if (r < 0)
		return r;
	memset(mproc_shm_addr(s), 1, size);
	mproc_shm_free(s);
	return 0;
}

static int probe_manager(void)
{
	struct mproc_manager *m = NULL;
	struct mproc_mclient *c = NULL;
	struct mproc_dict *d = NULL;
	const void *key;
	size_t keylen;
	char buf[8];
	ssize_t n;
	int r;

	r = mproc_manager_start(&m, NULL);
	if (r < 0)
		return r;
	key = mproc_manager_key(m, &keylen);
	r = mproc_manager_connect(&c, mproc_manager_address(m), key, keylen);
	if (r == 0)
		r = mproc_dict_open(&d, c, "probe");
	if (r == 0)
		r = mproc_dict_set(d, "k", "v", 1);
	if (r == 0) {
		n = mproc_dict_get(d, "k", buf, sizeof(buf));
		r = n == 1 ? 0 : (n < 0 ? (int)n : -EBADMSG);
	}
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	mproc_manager_stop(m);
	return r;
}

static int probe_pool(bool futures)
{
	struct mproc_pool_opts o = { .workers = 1, .fn = task_echo,
				     .flags = futures ? MPROC_POOL_BREAK_ON_DEATH : 0 };
	struct mproc_pool *p = NULL;
	char out[8];
	ssize_t n = -EINVAL;
	int r;

	r = mproc_pool_new(&p, &o);
	if (r < 0)
		return r;
	if (futures) {
		struct mproc_result *res = NULL;
		r = mproc_pool_submit(p, "x", 1, &res);
		if (r == 0)
			n = mproc_result_get(res, out, sizeof(out), 20.0);
		mproc_result_free(res);
	} else {
		n = mproc_pool_apply(p, "x", 1, out, sizeof(out), 20.0);
	}
	if (r == 0)
		r = n == 1 ? 0 : (n < 0 ? (int)n : -EBADMSG);
	mproc_pool_free(p);
	return r;
}

static size_t oversize;

struct probe {
	const char *key;
	const char *on;         /* what it rests on (design) */
	int (*fn)(const struct probe *);
	int arg;
};

static int p_process(const struct probe *p) { return probe_process(p->arg); }
static int p_pipe(const struct probe *p) { (void)p; return probe_pipe(); }
static int p_queue(const struct probe *p) { return probe_queue(p->arg & 0xff, p->arg >> 8); }
static int p_sync(const struct probe *p) { return probe_sync(p->key); }
static int p_value(const struct probe *p) { return probe_value(p->arg); }
static int p_shm(const struct probe *p) { return probe_shm(p->arg, 1u << 20); }
static int p_oversize(const struct probe *p) { return probe_shm(p->arg, oversize); }
static int p_manager(const struct probe *p) { (void)p; return probe_manager(); }
static int p_pool(const struct probe *p) { return probe_pool(p->arg); }

#define Q(be, fl) ((be) | ((fl) << 8))
static const struct probe PROBES[] = {
	{ "process/fork", "fork", p_process, MPROC_START_FORK },
	{ "process/vfork", "clone(CLONE_VM|CLONE_VFORK) + exec", p_process, MPROC_START_VFORK },
	{ "process/posix_spawn", "posix_spawn", p_process, MPROC_START_POSIX_SPAWN },
	{ "process/spawn", "exec; arguments in a memfd", p_process, MPROC_START_SPAWN },
	{ "process/forkserver", "a server on a Unix socket in a private /tmp directory; memfd",
	  p_process, MPROC_START_FORKSERVER },
	{ "pipe", "pipe2 (mproc_conn, duplex: two pipes)", p_pipe, 0 },
	{ "queue/pipe", "pipe + robust futex locks in a memfd", p_queue, Q(MPROC_QUEUE_PIPE, 0) },
	{ "queue/ring", "memfd (MAP_SHARED) + futex", p_queue, Q(MPROC_QUEUE_RING, 0) },
	{ "queue/mq", "POSIX mqueue (/dev/mqueue, not /dev/shm)", p_queue, Q(MPROC_QUEUE_MQ, 0) },
	{ "queue/sysv", "SysV message queue", p_queue, Q(MPROC_QUEUE_SYSV, 0) },
	{ "simple_queue", "the pipe queue (pipe + memfd locks)", p_queue,
	  Q(MPROC_QUEUE_PIPE, 0) },
	{ "joinable_queue", "the pipe queue + a counter in a memfd", p_queue,
	  Q(MPROC_QUEUE_PIPE, MPROC_QUEUE_JOINABLE) },
	{ "lock", "futex in anonymous MAP_SHARED memory", p_sync, 0 },
	{ "semaphore", "futex in anonymous MAP_SHARED memory", p_sync, 0 },
	{ "event", "futex in anonymous MAP_SHARED memory", p_sync, 0 },
	{ "condition", "futex in anonymous MAP_SHARED memory", p_sync, 0 },
	{ "barrier", "futex in anonymous MAP_SHARED memory", p_sync, 0 },
	{ "value", "anonymous MAP_SHARED memory + futex lock", p_value, 0 },
	{ "array", "anonymous MAP_SHARED memory + futex lock", p_value, 1 },
	{ "shared_memory", "shm_open in /dev/shm (named)", p_shm, MPROC_SHM_NAMED },
	{ "shared_memory/memfd", "memfd (passed as an fd)", p_shm, MPROC_SHM_MEMFD },
	{ "shared_memory/anon", "anonymous MAP_SHARED (inherited by fork)", p_shm, MPROC_SHM_ANON },
	{ "manager", "a server process on a Unix socket in a private /tmp directory", p_manager,
	  0 },
	{ "pool", "fork + a task table in a memfd", p_pool, 0 },
	{ "futures", "the pool (break on worker death)", p_pool, 1 },
};

/* Run one probe in a forked child: 0, -errno, or the signal that killed it (> 0). */
static int run_probe(const struct probe *p, int *sig)
{
	int st, r;
	pid_t pid;

	*sig = 0;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		alarm(30);
		r = p->fn(p);
		_exit(r < 0 ? (-r > 255 ? 255 : -r) : 0);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFSIGNALED(st)) {
		*sig = WTERMSIG(st);
		return 0;
	}
	return -WEXITSTATUS(st);
}

static void emit(const struct probe *p, int first)
{
	int sig, r = run_probe(p, &sig);

	printf("%s\n  \"%s\": {\"ok\": %s, \"error\": ", first ? "" : ",", p->key,
	       r == 0 && !sig ? "true" : "false");
	if (sig == SIGALRM)
		printf("\"no answer within 30 s (hang)\"");
	else if (sig)
		printf("\"killed by %s\"", sigabbrev_np(sig) ? sigabbrev_np(sig) : "a signal");
	else if (r < 0)
		printf("\"-%s (%s)\"", mproc_errname(r), strerror(-r));
	else
		printf("null");
	printf(", \"on\": \"%s\"}", p->on);
}

int main(int argc, char **argv)
{
	static const struct probe over = { "shared_memory/oversize", "shm_open in /dev/shm "
					   "(named), space reserved at creation", p_oversize,
					   MPROC_SHM_NAMED };
	size_t i;

	mproc_main_hook(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "--oversize")) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(argv[2], &end, 10);
		if (errno || *end || !v || v > MPROC_SHM_SIZE_MAX) {
			fprintf(stderr, "mproc-devshm-probe: --oversize: bad size '%s' (give a "
				"positive number of bytes)\n", argv[2]);
			return 2;
		}
		oversize = (size_t)v;
	} else if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("mproc-devshm-probe %d.%d.%d\n", MPROC_VERSION_MAJOR, MPROC_VERSION_MINOR,
		       MPROC_VERSION_PATCH);
		return 0;
	} else if (argc != 1) {
		fprintf(stderr, "mproc-devshm-probe: unexpected argument '%s' (usage: "
			"mproc-devshm-probe [--oversize BYTES | --version])\n", argv[1]);
		return 2;
	}
	printf("{\"primitives\": {");
	for (i = 0; i < sizeof(PROBES) / sizeof(PROBES[0]); i++)
		emit(&PROBES[i], i == 0);
	if (oversize)
		emit(&over, 0);
	printf("\n}}\n");
	return 0;
}
