/*
 * bench_spawn.c - harness "spawn": what starting a process costs, per start method.
 *
 *   spawn/<method>/rss_mib:<N>            start -> reaped, exit status known (N MiB of touched
 *                                         parent memory: 0 and 64 in quick, + 512 in full)
 *   spawn/fork_raw/rss_mib:<N>           the floor under "fork": a bare fork + _exit + waitpid
 *                                         in this same process (same RSS, same mappings, the
 *                                         library's atfork handlers registered), which is the
 *                                         apples-to-apples reference for spawn/fork (the
 *                                         process of baseline/fork_exit is smaller)
 *   spawn/<method>_self/rss_mib:<N>       vfork, posix_spawn, spawn, forkserver exec'ing this
 *                                         harness's own image (/proc/self/exe, a C++ program
 *                                         with Google Benchmark, hwloc, libstdc++); without the
 *                                         suffix they exec mproc-spawn-child, a small C image
 *                                         (mproc_set_executable, as Python's spawn execs the
 *                                         interpreter, not the application)
 *   spawn/fork/rss_mib:0/parent_threads:<T>  fork with T threads in the parent (1, 8); not
 *                                         "/threads:<T>", which readers strip as Google
 *                                         Benchmark's own suffix (check_bench_json.py)
 *   spawn/fork_cow/mib:<N>                the child's first write to N MiB of inherited memory
 *                                         (one byte per page: the copy-on-write faults alone)
 *   spawn_start/<method>/rss_mib:<N>      start -> the child runs its first instruction of user
 *                                         code: fork/thread report a CLOCK_MONOTONIC stamp
 *                                         through shared memory; the exec-based methods are
 *                                         timed until start returns, which is when the new image
 *                                         has answered that it is entering the entry function.
 *
 * Counters: p50_ns, p99_ns (and p999_ns) from one sample per iteration; manual time.
 * Each child returns a known code that the parent checks: a method that loses statuses fails.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "mproc.h"

#define CHILD_CODE 42

static int child_noop(void *arg)
{
	return CHILD_CODE;
}

/* fork/thread: stamp the moment user code runs into the slot the parent gave. */
static int child_stamp(void *arg)
{
	atomic_store((_Atomic int64_t *)arg, bench_now_ns());
	return CHILD_CODE;
}

struct cow_arg {
	char *mem;
	size_t bytes;
	_Atomic int64_t *out_ns;
};

static int child_cow(void *arg)
{
	struct cow_arg *c = arg;
	long page = sysconf(_SC_PAGESIZE);
	int64_t t0 = bench_now_ns();

	for (size_t i = 0; i < c->bytes; i += (size_t)page)
		c->mem[i] = (char)(i + 1);
	atomic_store(c->out_ns, bench_now_ns() - t0);
	return CHILD_CODE;
}

MPROC_ENTRY("bench-spawn-noop", child_noop)

/* Parent RSS ballast: N MiB, every page touched, kept across instances of the same size. */
static struct {
	char *p;
	size_t bytes;
} ballast;

static int ballast_set(size_t mib)
{
	size_t bytes = mib << 20;

	if (ballast.bytes == bytes)
		return 0;
	if (ballast.p)
		munmap(ballast.p, ballast.bytes);
	ballast.p = NULL;
	ballast.bytes = 0;
	if (!bytes)
		return 0;
	ballast.p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ballast.p == MAP_FAILED) {
		ballast.p = NULL;
		return -errno;
	}
	memset(ballast.p, 0x5a, bytes);
	ballast.bytes = bytes;
	return 0;
}

/* Helper threads for the threads:<T> sweep: they sleep on a condition variable. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static bool idle_stop;

static void *idle_thread(void *a)
{
	pthread_mutex_lock(&idle_lock);
	while (!idle_stop)
		pthread_cond_wait(&idle_cond, &idle_lock);
	pthread_mutex_unlock(&idle_lock);
	return NULL;
}

static const enum mproc_start_method all_methods[] = {
	MPROC_START_FORK, MPROC_START_VFORK, MPROC_START_POSIX_SPAWN, MPROC_START_SPAWN,
	MPROC_START_FORKSERVER, MPROC_START_THREAD,
};

static bool is_exec(enum mproc_start_method m)
{
	return m != MPROC_START_FORK && m != MPROC_START_THREAD;
}

/* The lean child image (spawn_child.c), beside this program; NULL if it is not there. */
static char lean_image[4096];

static int lean_image_set(void)
{
	ssize_t n = readlink("/proc/self/exe", lean_image, sizeof(lean_image) - 1);
	char *slash;
	int r;

	if (n <= 0)
		return -errno;
	lean_image[n] = '\0';
	slash = strrchr(lean_image, '/');
	if (!slash || (size_t)(slash - lean_image) + sizeof("/mproc-spawn-child") > sizeof(lean_image))
		return -ENAMETOOLONG;
	strcpy(slash + 1, "mproc-spawn-child");
	r = mproc_set_executable(lean_image);
	if (r < 0)
		lean_image[0] = '\0';
	return r;
}

/* One start -> reap (or start only). exe: NULL for the default image (the lean one), or the
 * image to run. Returns the ns to report, or -errno. */
static int64_t one_run(enum mproc_start_method m, bool start_only, const char *exe,
		       _Atomic int64_t *slot)
{
	struct mproc_process_opts o = { .method = m, .exe = exe };
	struct mproc_process *p;
	mproc_process_fn *fn = start_only && !is_exec(m) ? child_stamp : child_noop;
	int64_t t0, t1;
	int r, code = -1;

	r = mproc_process_new(&p, fn, (void *)slot, &o);
	if (r < 0)
		return r;
	atomic_store(slot, 0);
	t0 = bench_now_ns();
	r = mproc_process_start(p);
	t1 = bench_now_ns();
	if (r == 0)
		r = mproc_process_join(p, MPROC_FOREVER);
	if (!start_only)
		t1 = bench_now_ns();
	else if (!is_exec(m))
		t1 = atomic_load(slot);
	if (r == 0)
		r = mproc_process_exitcode(p, &code);
	if (r == 0 && code != CHILD_CODE)
		r = -EBADMSG;
	mproc_process_free(p);
	return r < 0 ? r : t1 - t0;
}

/* fork + _exit + waitpid, nothing else: the floor under spawn/fork. */
static int64_t one_raw_fork(void)
{
	int64_t t0 = bench_now_ns();
	int status;
	pid_t pid, w;

	pid = fork();
	if (pid == 0)
		_exit(CHILD_CODE);
	if (pid < 0)
		return -errno;
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != CHILD_CODE)
		return -EBADMSG;
	return bench_now_ns() - t0;
}

struct family {
	enum mproc_start_method method;
	bool raw_fork;          /* one_raw_fork, not the library */
	bool self_image;        /* exec methods: this harness's image, not the lean one */
	bool start_only;
	bool threads_arg;       /* second argument: threads in the parent */
};

static void report_error(struct gbench_state *st, const char *what, int64_t r)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s: %s", what, mproc_strerror((int)r));
	gbench_skip_with_error(st, msg);
}

static void bm_spawn(struct gbench_state *st, void *arg)
{
	const struct family *f = arg;
	size_t mib = (size_t)gbench_arg(st, 0);
	int threads = f->threads_arg ? (int)gbench_arg(st, 1) : 1;
	/* The forkserver's image is the server's: set process-wide above, not per process. */
	const char *exe = f->self_image && f->method != MPROC_START_FORKSERVER ? "/proc/self/exe" :
			  NULL;
	_Atomic int64_t *slot = bench_shared_alloc(64);
	pthread_t tids[64];
	struct bench_samples s;
	int nthr = 0;
	int64_t ns;
	int r;

	if (!slot || bench_samples_init(&s, 1 << 16) < 0) {
		gbench_skip_with_error(st, "out of memory");
		goto out;
	}
	r = ballast_set(mib);
	if (r < 0) {
		report_error(st, "ballast", r);
		goto out_samples;
	}
	idle_stop = false;
	for (; nthr < threads - 1 && nthr < 64; nthr++)
		pthread_create(&tids[nthr], NULL, idle_thread, NULL);
	if (is_exec(f->method) && !f->self_image && !lean_image[0]) {
		gbench_skip_with_error(st, "mproc-spawn-child not found beside the harness");
		goto out_threads;
	}
	if (f->self_image && f->method == MPROC_START_FORKSERVER) {
		/* A server of the harness's own image for this benchmark only. */
		mproc_forkserver_stop();
		mproc_set_executable(NULL);
	}
	/* Warm up: page in the code paths (and a lazily started forkserver). */
	ns = f->raw_fork ? one_raw_fork() : one_run(f->method, f->start_only, exe, slot);
	if (ns < 0) {
		report_error(st, mproc_start_method_name(f->method), ns);
		goto out_threads;
	}
	while (gbench_keep_running(st)) {
		ns = f->raw_fork ? one_raw_fork() : one_run(f->method, f->start_only, exe, slot);
		if (ns < 0) {
			report_error(st, mproc_start_method_name(f->method), ns);
			break;
		}
		gbench_set_iteration_time(st, (double)ns * 1e-9);
		bench_samples_add(&s, ns);
	}
	bench_samples_report(st, &s);
out_threads:
	if (f->self_image && f->method == MPROC_START_FORKSERVER) {
		mproc_forkserver_stop();
		if (lean_image[0])
			mproc_set_executable(lean_image);
		mproc_forkserver_start();
	}
	pthread_mutex_lock(&idle_lock);
	idle_stop = true;
	pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&idle_lock);
	for (int i = 0; i < nthr; i++)
		pthread_join(tids[i], NULL);
out_samples:
	bench_samples_free(&s);
out:
	if (slot)
		bench_shared_free(slot, 64);
}

static void bm_cow(struct gbench_state *st, void *arg)
{
	size_t mib = (size_t)gbench_arg(st, 0);
	struct mproc_process_opts o = { .method = MPROC_START_FORK };
	_Atomic int64_t *slot = bench_shared_alloc(64);
	struct bench_samples s;
	struct cow_arg c;
	int r;

	if (!slot || bench_samples_init(&s, 1 << 14) < 0) {
		gbench_skip_with_error(st, "out of memory");
		goto out;
	}
	r = ballast_set(mib);
	if (r < 0) {
		report_error(st, "ballast", r);
		goto out_samples;
	}
	c = (struct cow_arg){ .mem = ballast.p, .bytes = ballast.bytes, .out_ns = slot };
	while (gbench_keep_running(st)) {
		struct mproc_process *p;
		int code = -1;

		atomic_store(slot, -1);
		r = mproc_process_new(&p, child_cow, &c, &o);
		if (r == 0) {
			r = mproc_process_start(p);
			if (r == 0)
				r = mproc_process_join(p, MPROC_FOREVER);
			if (r == 0)
				r = mproc_process_exitcode(p, &code);
			mproc_process_free(p);
		}
		if (r == 0 && (code != CHILD_CODE || atomic_load(slot) < 0))
			r = -EBADMSG;
		if (r < 0) {
			report_error(st, "fork_cow", r);
			break;
		}
		gbench_set_iteration_time(st, (double)atomic_load(slot) * 1e-9);
		bench_samples_add(&s, atomic_load(slot));
	}
	bench_samples_report(st, &s);
out_samples:
	bench_samples_free(&s);
out:
	if (slot)
		bench_shared_free(slot, 64);
}

static struct family fam_reap[MPROC_START__COUNT], fam_start[MPROC_START__COUNT];
static struct family fam_raw = { .method = MPROC_START_FORK, .raw_fork = true };
static struct family fam_self[MPROC_START__COUNT];

static void register_all(void)
{
	enum gbench_profile prof = gbench_current_profile();
	int64_t rss[3] = { 0, 64, 512 };
	int64_t cow[3] = { 1, 64, 512 };
	size_t nrss = prof == GBENCH_FULL ? 3 : prof == GBENCH_QUICK ? 2 : 1;
	char name[64];

	/* Ordered by RSS so the ballast is built once per size. */
	for (size_t i = 0; i < nrss; i++) {
		struct gbench *raw = gbench_register("spawn/fork_raw", bm_spawn, &fam_raw);

		GBENCH_ARGS(raw, rss[i]);
		GBENCH_ARG_NAMES(raw, "rss_mib");
		gbench_use_manual_time(raw);
		for (size_t k = 0; k < sizeof(all_methods) / sizeof(all_methods[0]); k++) {
			enum mproc_start_method m = all_methods[k];
			struct gbench *b;

			fam_reap[m] = (struct family){ .method = m };
			snprintf(name, sizeof(name), "spawn/%s", mproc_start_method_name(m));
			b = gbench_register(name, bm_spawn, &fam_reap[m]);
			GBENCH_ARGS(b, rss[i]);
			GBENCH_ARG_NAMES(b, "rss_mib");
			gbench_use_manual_time(b);

			if (is_exec(m)) {
				fam_self[m] = (struct family){ .method = m, .self_image = true };
				snprintf(name, sizeof(name), "spawn/%s_self",
					 mproc_start_method_name(m));
				b = gbench_register(name, bm_spawn, &fam_self[m]);
				GBENCH_ARGS(b, rss[i]);
				GBENCH_ARG_NAMES(b, "rss_mib");
				gbench_use_manual_time(b);
			}

			fam_start[m] = (struct family){ .method = m, .start_only = true };
			snprintf(name, sizeof(name), "spawn_start/%s", mproc_start_method_name(m));
			b = gbench_register(name, bm_spawn, &fam_start[m]);
			GBENCH_ARGS(b, rss[i]);
			GBENCH_ARG_NAMES(b, "rss_mib");
			gbench_use_manual_time(b);
		}
		if (i == 0) {
			static struct family thr = { .method = MPROC_START_FORK, .threads_arg = true };
			static const int64_t tcount[2] = { 1, 8 };

			for (int t = 0; t < 2; t++) {
				struct gbench *b = gbench_register("spawn/fork", bm_spawn, &thr);

				GBENCH_ARGS(b, 0, tcount[t]);
				GBENCH_ARG_NAMES(b, "rss_mib", "parent_threads");
				gbench_use_manual_time(b);
			}
		}
	}
	for (size_t i = 0; i < nrss; i++) {
		struct gbench *b = gbench_register("spawn/fork_cow", bm_cow, NULL);

		GBENCH_ARGS(b, cow[i]);
		GBENCH_ARG_NAMES(b, "mib");
		gbench_use_manual_time(b);
	}
}

int main(int argc, char **argv)
{
	/* First: in a child image this runs the entry and exits (the _self benchmarks exec this
	 * image). Then the lean child image, and the forkserver, which runs it. */
	mproc_main_hook(argc, argv);
	if (lean_image_set() < 0)
		fprintf(stderr, "bench_spawn: no mproc-spawn-child beside the harness: the exec "
			"methods report errors, only their _self variants run\n");
	mproc_forkserver_start();
	return bench_main(argc, argv, register_all);
}
