/* test_process.c - every start method: lifecycle semantics, faults, bad input, leaks; logging. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mproc.h"
#include "process_internal.h"
#include "tap.h"

/* ---- entries (registered by constructor, so every child image knows them) ----------------- */

static int e_exit(void *a)
{
	return a ? *(int *)a : 0;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int e_sleep(void *a)
{
	sleep_s(a ? *(double *)a : 0.2);
	return 0;
}

static int e_raise(void *a)
{
	/* A fork child keeps the parent's handlers (a sanitizer's SIGSEGV one, say): die of the
	 * signal itself, which is what the exit-code test is about. */
	signal(*(int *)a, SIG_DFL);
	raise(*(int *)a);
	return 100;
}

static int e_pause(void *a)
{
	for (;;)
		pause();
	return 0;
}

/* 1 if fd (the argument) is open in the child, else 0. */
static int e_fd_open(void *a)
{
	return fcntl(*(int *)a, F_GETFD) >= 0 ? 1 : 0;
}

/* Tries to start a process: returns -errno (as a positive code). */
static int e_start_child(void *a)
{
	struct mproc_process *p;
	int r = mproc_process_new(&p, e_exit, NULL, NULL);

	if (r == 0) {
		r = mproc_process_start(p);
		if (r == 0)
			mproc_process_join(p, MPROC_FOREVER);
		mproc_process_free(p);
	}
	return -r;
}

/* Uses the library lock a helper thread in the parent was hammering. */
static int e_use_lib(void *a)
{
	return mproc_entry_register("t-atfork", e_use_lib) == 0 ? 0 : 1;
}

static int e_log(void *a)
{
	for (int i = 0; i < 200; i++)
		mproc_log(MPROC_LOG_INFO, "line %d from child %s", i,
			  "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
	return 0;
}

MPROC_ENTRY("t-exit", e_exit)
MPROC_ENTRY("t-sleep", e_sleep)
MPROC_ENTRY("t-raise", e_raise)
MPROC_ENTRY("t-pause", e_pause)
MPROC_ENTRY("t-fd-open", e_fd_open)
MPROC_ENTRY("t-start-child", e_start_child)
MPROC_ENTRY("t-log", e_log)

static int e_late(void *a)
{
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

#define M(arg) ((enum mproc_start_method)(intptr_t)(arg))

static int mk(struct mproc_process **p, enum mproc_start_method m, mproc_process_fn *fn,
	      const void *arg, size_t len)
{
	struct mproc_process_opts o = { .method = m, .arg_len = len };

	return mproc_process_new(p, fn, (void *)arg, &o);
}

static int run_code(enum mproc_start_method m, mproc_process_fn *fn, int arg)
{
	struct mproc_process *p;
	int code = -1000;

	if (mk(&p, m, fn, &arg, sizeof(arg)) < 0)
		return -2000;
	if (mproc_process_start(p) == 0 && mproc_process_join(p, 30) == 0)
		mproc_process_exitcode(p, &code);
	mproc_process_free(p);
	return code;
}

/* Run fn(arg) in a fork child; its exit code, or -1000 if it could not run. */
static int run_ptr(mproc_process_fn *fn, void *arg)
{
	struct mproc_process *p;
	int code = -1000;

	if (mk(&p, MPROC_START_FORK, fn, arg, 0) < 0)
		return -2000;
	if (mproc_process_start(p) == 0 && mproc_process_join(p, 30) == 0)
		mproc_process_exitcode(p, &code);
	mproc_process_free(p);
	return code;
}

static bool is_thread(enum mproc_start_method m)
{
	return m == MPROC_START_THREAD;
}

/* ---- semantics ---------------------------------------------------------------------------- */

static void t_states(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process *p;
	double s = 0.3;
	int code;

	ASSERT_OK(mk(&p, m, e_sleep, &s, sizeof(s)));
	CHECK(!mproc_process_is_alive(p));
	CHECK_ERR(mproc_process_exitcode(p, &code), -EINVAL);
	CHECK_ERR(mproc_process_join(p, 0), -EINVAL);
	CHECK_ERR(mproc_process_sentinel(p), -EINVAL);
	CHECK_ERR(mproc_process_terminate(p), -EINVAL);
	CHECK_EQ(mproc_process_pid(p), 0);
	CHECK_EQ(mproc_process_method(p), m);
	ASSERT_OK(mproc_process_start(p));
	CHECK_ERR(mproc_process_start(p), -EINVAL);
	CHECK(mproc_process_is_alive(p));
	CHECK_ERR(mproc_process_exitcode(p, &code), -EAGAIN);
	CHECK_OK(mproc_process_sentinel(p));
	if (!is_thread(m)) {
		CHECK_CMP(mproc_process_pid(p), >, 0);
		if (m == MPROC_START_FORKSERVER)
			CHECK_EQ(mproc_process_ppid(p), mproc_forkserver_pid());
		else
			CHECK_EQ(mproc_process_ppid(p), getpid());
	}
	CHECK_OK(mproc_process_join(p, MPROC_FOREVER));
	CHECK(!mproc_process_is_alive(p));
	CHECK_OK(mproc_process_exitcode(p, &code));
	CHECK_EQ(code, 0);
	CHECK_OK(mproc_process_join(p, MPROC_FOREVER));        /* second join: no-op */
	CHECK_OK(mproc_process_join(p, 0));
	mproc_process_free(p);
	mproc_forkserver_stop();
}

static void t_exitcodes(void *arg)
{
	enum mproc_start_method m = M(arg);

	CHECK_EQ(run_code(m, e_exit, 0), 0);
	CHECK_EQ(run_code(m, e_exit, 1), 1);
	CHECK_EQ(run_code(m, e_exit, 8), 8);
	if (!is_thread(m)) {
		CHECK_EQ(run_code(m, e_raise, SIGSEGV), -SIGSEGV);
		CHECK_EQ(run_code(m, e_raise, SIGTERM), -SIGTERM);
	}
	mproc_forkserver_stop();
}

static void t_terminate_kill(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process *p;
	int code;

	if (is_thread(m)) {
		double s = 0.05;

		ASSERT_OK(mk(&p, m, e_sleep, &s, sizeof(s)));
		ASSERT_OK(mproc_process_start(p));
		CHECK_ERR(mproc_process_terminate(p), -ENOTSUP);
		CHECK_ERR(mproc_process_kill(p), -ENOTSUP);
		CHECK_OK(mproc_process_join(p, MPROC_FOREVER));
		mproc_process_free(p);
		return;
	}
	for (int i = 0; i < 2; i++) {
		ASSERT_OK(mk(&p, m, e_pause, NULL, 0));
		ASSERT_OK(mproc_process_start(p));
		CHECK_OK(i ? mproc_process_kill(p) : mproc_process_terminate(p));
		CHECK_OK(mproc_process_join(p, 10));
		CHECK_OK(mproc_process_exitcode(p, &code));
		CHECK_EQ(code, i ? -SIGKILL : -SIGTERM);
		CHECK_OK(mproc_process_terminate(p));   /* ended: a no-op */
		mproc_process_free(p);
	}
	mproc_forkserver_stop();
}

static void t_join_timeout(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process *p;
	double s = 2.0, t0, dt;

	ASSERT_OK(mk(&p, m, e_sleep, &s, sizeof(s)));
	ASSERT_OK(mproc_process_start(p));
	t0 = tap_now();
	CHECK_ERR(mproc_process_join(p, 0), -ETIMEDOUT);
	CHECK_CMP(tap_now() - t0, <, 0.05 * tap_timeout_mult());
	t0 = tap_now();
	CHECK_ERR(mproc_process_join(p, 0.5), -ETIMEDOUT);
	dt = tap_now() - t0;
	CHECK_CMP(dt, >=, 0.5);
	CHECK_CMP(dt, <=, 0.6 + 0.2 * tap_timeout_mult());     /* shared 2-core machine */
	CHECK(mproc_process_is_alive(p));       /* left alive */
	CHECK_ERR(mproc_process_join(p, -2.0), -EINVAL);
	CHECK_OK(mproc_process_join(p, MPROC_FOREVER));
	mproc_process_free(p);
	mproc_forkserver_stop();
}

/* 100 children terminated at once; variant bits: 1 = parent ignores SIGTERM, 2 = blocks it,
 * 4 = SIGCHLD set to SIG_IGN. */
static void terminate_many(enum mproc_start_method m, int variant)
{
	struct mproc_process *ps[100];
	sigset_t set;
	int code, n = 100;

	if (variant & 1)
		signal(SIGTERM, SIG_IGN);
	if (variant & 2) {
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
	}
	if (variant & 4)
		signal(SIGCHLD, SIG_IGN);
	for (int i = 0; i < n; i++) {
		ASSERT_OK(mk(&ps[i], m, e_pause, NULL, 0));
		ASSERT_OK(mproc_process_start(ps[i]));
		CHECK_OK(mproc_process_terminate(ps[i]));
	}
	for (int i = 0; i < n; i++) {
		CHECK_OK(mproc_process_join(ps[i], 30));
		code = 0;
		CHECK_OK(mproc_process_exitcode(ps[i], &code));
		CHECK_EQ(code, -SIGTERM);
		mproc_process_free(ps[i]);
	}
	mproc_forkserver_stop();
}

static void t_terminate_many(void *arg)
{
	terminate_many(M(arg), 0);
}

static void t_terminate_many_ignored(void *arg)
{
	terminate_many(M(arg), 1 | 4);
}

static void t_terminate_many_blocked(void *arg)
{
	terminate_many(M(arg), 2 | 4);
}

static void t_daemon_no_children(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process_opts o = { .method = m, .daemon = true };
	struct mproc_process *p;
	int code;

	ASSERT_OK(mproc_process_new(&p, e_start_child, NULL, &o));
	ASSERT_OK(mproc_process_start(p));
	CHECK_OK(mproc_process_join(p, 30));
	CHECK_OK(mproc_process_exitcode(p, &code));
	CHECK_EQ(code, EPERM);
	mproc_process_free(p);
	mproc_forkserver_stop();
}

/* A parent that exits normally takes its daemons with it (and reaps them). */
static void t_daemon_killed_at_exit(void *arg)
{
	enum mproc_start_method m = M(arg);
	int fds[2];
	pid_t mid, dpid = 0;

	ASSERT(pipe(fds) == 0);
	mid = fork();
	if (mid == 0) {
		struct mproc_process_opts o = { .method = m, .daemon = true };
		struct mproc_process *p;

		close(fds[0]);
		if (mproc_process_new(&p, e_pause, NULL, &o) || mproc_process_start(p))
			_exit(3);
		dpid = mproc_process_pid(p);
		write(fds[1], &dpid, sizeof(dpid));
		exit(0);        /* normal exit: atexit kills the daemon */
	}
	close(fds[1]);
	CHECK_EQ(read(fds[0], &dpid, sizeof(dpid)), sizeof(dpid));
	close(fds[0]);
	int st = 0;
	CHECK_EQ(waitpid(mid, &st, 0), mid);
	CHECK_EQ(st, 0);
	/* Gone by the time the parent is: kill(pid, 0) fails, or it is a zombie of ours (we are
	 * the subreaper when the forkserver ran it). */
	for (int i = 0; i < 200 && dpid > 0 && kill(dpid, 0) == 0; i++) {
		if (waitpid(dpid, NULL, WNOHANG) == dpid)
			break;
		usleep(10000);
	}
	CHECK(dpid > 0 && kill(dpid, 0) < 0);
}

static void t_closed(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process *p;
	int code;

	ASSERT_OK(mk(&p, m, e_exit, NULL, 0));
	CHECK_ERR(mproc_process_close(p), -EINVAL);
	ASSERT_OK(mproc_process_start(p));
	CHECK_OK(mproc_process_join(p, 30));
	CHECK_OK(mproc_process_close(p));
	CHECK_OK(mproc_process_close(p));
	CHECK_ERR(mproc_process_join(p, 0), -EINVAL);
	CHECK_ERR(mproc_process_exitcode(p, &code), -EINVAL);
	CHECK_ERR(mproc_process_sentinel(p), -EINVAL);
	CHECK_ERR(mproc_process_terminate(p), -EINVAL);
	CHECK_ERR(mproc_process_kill(p), -EINVAL);
	CHECK_ERR(mproc_process_start(p), -EINVAL);
	CHECK(!mproc_process_is_alive(p));
	mproc_process_free(p);
	mproc_forkserver_stop();
}

static void t_close_running(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process *p;
	double s = 0.2;

	ASSERT_OK(mk(&p, m, e_sleep, &s, sizeof(s)));
	ASSERT_OK(mproc_process_start(p));
	CHECK_ERR(mproc_process_close(p), -EBUSY);
	CHECK_OK(mproc_process_join(p, 30));
	CHECK_OK(mproc_process_close(p));
	mproc_process_free(p);
	mproc_forkserver_stop();
}

static void t_sentinel_poll(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process *ps[4];
	struct pollfd pf[4];
	double s = 1.0;

	/* One ends at once, three wait (threads: sleep 1 s; processes: pause until killed). */
	for (int i = 0; i < 4; i++) {
		if (i == 1)
			ASSERT_OK(mk(&ps[i], m, e_exit, NULL, 0));
		else if (is_thread(m))
			ASSERT_OK(mk(&ps[i], m, e_sleep, &s, sizeof(s)));
		else
			ASSERT_OK(mk(&ps[i], m, e_pause, NULL, 0));
		ASSERT_OK(mproc_process_start(ps[i]));
		pf[i] = (struct pollfd){ .fd = mproc_process_sentinel(ps[i]), .events = POLLIN };
	}
	CHECK_EQ(poll(pf, 4, 10000), 1);
	CHECK(pf[1].revents & (POLLIN | POLLHUP));
	for (int i = 0; i < 4; i++) {
		if (!is_thread(m))
			CHECK_OK(mproc_process_kill(ps[i]));
		CHECK_OK(mproc_process_join(ps[i], 30));
		mproc_process_free(ps[i]);
	}
	mproc_forkserver_stop();
}

static void t_name(void *arg)
{
	enum mproc_start_method m = M(arg);
	const char *longname = "worker-with-a-rather-long-name";
	struct mproc_process_opts o = { .method = m, .name = longname, .arg_len = sizeof(double) };
	struct mproc_process *p;
	double s = 0.5;
	char path[64], comm[64] = "";
	int fd;

	ASSERT_OK(mproc_process_new(&p, e_sleep, &s, &o));
	CHECK_STR_EQ(mproc_process_name(p), longname);          /* kept whole in the API */
	ASSERT_OK(mproc_process_start(p));
	if (!is_thread(m)) {
		/* Give the child a moment to set its name. */
		for (int i = 0; i < 100; i++) {
			snprintf(path, sizeof(path), "/proc/%d/comm", (int)mproc_process_pid(p));
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				ssize_t n = read(fd, comm, sizeof(comm) - 1);

				close(fd);
				comm[n > 0 ? n : 0] = '\0';
			}
			if (strncmp(comm, longname, 15) == 0)
				break;
			usleep(2000);
		}
		CHECK_STR_EQ(comm, "worker-with-a-r\n");        /* 15 bytes for PR_SET_NAME */
	}
	CHECK_OK(mproc_process_join(p, 30));
	mproc_process_free(p);
	mproc_forkserver_stop();
}

/* ---- faults ------------------------------------------------------------------------------- */

static void t_exec_missing(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process_opts o = { .method = m, .exe = "/nonexistent/mproc-nothing" };
	struct mproc_process *p;
	double t0 = tap_now();

	ASSERT_OK(mproc_process_new(&p, e_exit, NULL, &o));
	CHECK_ERR(mproc_process_start(p), -ENOENT);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	CHECK_EQ(tap_count_children(), 0);      /* no zombie */
	CHECK(!mproc_process_is_alive(p));
	mproc_process_free(p);
}

static void t_no_fd_inherit(void *arg)
{
	enum mproc_start_method m = M(arg);
	int fd = dup(1);        /* not close-on-exec */

	ASSERT(fd > 2);
	CHECK_EQ(run_code(m, e_fd_open, fd), 0);
	/* Sanity: fork does inherit it. */
	CHECK_EQ(run_code(MPROC_START_FORK, e_fd_open, fd), 1);
	close(fd);
	mproc_forkserver_stop();
}

static void t_cycles_fds(void *arg)
{
	enum mproc_start_method m = M(arg);
	/* The 10 000 cycles with MPROC_TEST_SLOW=1; fewer by default, so the suite stays
	 * fast on a loaded 2-core machine and under sanitizers. */
	bool slow = getenv("MPROC_TEST_SLOW") != NULL;
	bool cheap = m == MPROC_START_FORK || m == MPROC_START_THREAD;
	int n = slow ? 10000 : cheap ? 2000 : 200;
	int before, code = 0;

	/* Warm up: a lazily started forkserver holds one fd. */
	CHECK_EQ(run_code(m, e_exit, 3), 3);
	before = tap_count_fds();
	for (int i = 0; i < n && !tap_failed(); i++) {
		code = run_code(m, e_exit, i & 0x7f);
		CHECK_EQ(code, i & 0x7f);
	}
	CHECK_EQ(tap_count_fds(), before);
	mproc_forkserver_stop();
}

static void t_forkserver_killed(void *arg)
{
	struct mproc_process_opts o = { .method = MPROC_START_FORKSERVER, .arg_len = sizeof(double) };
	struct mproc_process *p, *q;
	double s = 0.5;
	pid_t srv;
	int code = -1;

	ASSERT_OK(mproc_forkserver_start());
	srv = mproc_forkserver_pid();
	ASSERT(srv > 0);
	ASSERT_OK(mproc_process_new(&p, e_sleep, &s, &o));
	ASSERT_OK(mproc_process_start(p));
	CHECK_EQ(kill(srv, SIGKILL), 0);
	/* The child finishes its work; we (a subreaper) inherit it and learn its status. */
	CHECK_OK(mproc_process_join(p, 10));
	if (mproc_process_exitcode(p, &code) == 0)
		CHECK_EQ(code, 0);
	mproc_process_free(p);
	/* The next start brings up a new server. */
	CHECK_EQ(run_code(MPROC_START_FORKSERVER, e_exit, 5), 5);
	CHECK(mproc_forkserver_pid() != srv && mproc_forkserver_pid() > 0);
	ASSERT_OK(mproc_process_new(&q, e_exit, NULL, &(struct mproc_process_opts){
		.method = MPROC_START_FORKSERVER }));
	CHECK_OK(mproc_process_start(q));
	CHECK_OK(mproc_process_join(q, 10));
	mproc_process_free(q);
	mproc_forkserver_stop();
	CHECK_EQ(mproc_forkserver_pid(), 0);
}

/* A parent SIGKILLed (we are the subreaper above it): all its children are gone within 2 s. */
struct starter {
	enum mproc_start_method m;
	int wfd;
};

/* Starts three pausing children and writes their pids (and the forkserver's) to wfd. */
static void *start_three(void *a)
{
	struct starter *s = a;
	struct mproc_process *p;
	pid_t pid;

	for (int i = 0; i < 3; i++) {
		if (mk(&p, s->m, e_pause, NULL, 0) || mproc_process_start(p))
			_exit(3);
		pid = mproc_process_pid(p);
		write(s->wfd, &pid, sizeof(pid));
	}
	pid = mproc_forkserver_pid();
	if (pid > 0)
		write(s->wfd, &pid, sizeof(pid));
	close(s->wfd);
	return NULL;
}

/* Children of a SIGKILLed parent exit. from_thread: started by a thread of the parent that
 * stays alive, so PR_SET_PDEATHSIG is not armed and the parent-death pipe alone must do it. */
static void parent_killed(enum mproc_start_method m, bool from_thread)
{
	pid_t kids[4] = { 0 }, mid, w;
	int fds[2], n = 0, want = m == MPROC_START_FORKSERVER ? 4 : 3;
	double t0;

	ASSERT(pipe(fds) == 0);
	mid = fork();
	if (mid == 0) {
		struct starter s = { m, fds[1] };
		pthread_t t;

		close(fds[0]);
		if (!from_thread)
			start_three(&s);
		else if (pthread_create(&t, NULL, start_three, &s) != 0)
			_exit(4);
		for (;;)
			pause();
	}
	close(fds[1]);
	/* Read exactly what it sends: its fork children hold the write end too. */
	while (n < want && read(fds[0], &kids[n], sizeof(pid_t)) == sizeof(pid_t))
		n++;
	close(fds[0]);
	ASSERT(n == want);
	kill(mid, SIGKILL);
	waitpid(mid, NULL, 0);
	t0 = tap_now();
	for (int i = 0; i < n; i++) {
		/* Orphans come to us; reap them as they die. */
		while (kill(kids[i], 0) == 0 && tap_now() - t0 < 2.0 * tap_timeout_mult()) {
			w = waitpid(kids[i], NULL, WNOHANG);
			if (w == kids[i])
				break;
			usleep(5000);
		}
		waitpid(kids[i], NULL, WNOHANG);
		CHECK(kill(kids[i], 0) < 0);
	}
	CHECK_CMP(tap_now() - t0, <, 2.0 * tap_timeout_mult());
}

static void t_parent_killed(void *arg)
{
	parent_killed(M(arg), false);
}

static void t_parent_killed_thread(void *arg)
{
	parent_killed(M(arg), true);
}

static void *start_and_exit(void *a)
{
	struct mproc_process *p = NULL;
	double s = 0.3;

	if (mk(&p, *(enum mproc_start_method *)a, e_sleep, &s, sizeof(s)) == 0 &&
	    mproc_process_start(p) < 0) {
		mproc_process_free(p);
		p = NULL;
	}
	return p;
}

/* A child started by a thread that then exits lives on (PR_SET_PDEATHSIG would kill it: it
 * fires when the starting *thread* exits) and is joined by another thread with its own code. */
static void t_starter_thread_exits(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process *p;
	pthread_t t;
	int code = -1000;

	ASSERT(pthread_create(&t, NULL, start_and_exit, &m) == 0);
	ASSERT(pthread_join(t, (void **)&p) == 0);
	ASSERT(p != NULL);
	CHECK_OK(mproc_process_join(p, 10 * tap_timeout_mult()));
	CHECK_OK(mproc_process_exitcode(p, &code));
	CHECK_EQ(code, 0);
	mproc_process_free(p);
	mproc_forkserver_stop();
}

/*
 * A directory passes access(X_OK) but can never be run (issue 16: set_executable("/tmp")
 * returned 0 and the error came at the next start): it, and any other file that is not a
 * regular one, is refused at the call with -EACCES, as the header says, and the image set before
 * stays: a spawn start still works.
 */
static void t_set_executable_not_regular(void *arg)
{
	static const char *const paths[] = { "/tmp", "/", "/proc/self", "/dev/null" };
	struct mproc_process *p;
	int code = -1, seven = 7;

	(void)arg;
	for (size_t i = 0; i < MPROC__ARRAY_SIZE(paths); i++) {
		int r = mproc_set_executable(paths[i]);

		if (r != -EACCES)
			tap_diag("%s: %s", paths[i], mproc_strerror(r));
		CHECK_ERR(r, -EACCES);
	}
	ASSERT(mk(&p, MPROC_START_SPAWN, e_exit, &seven, sizeof(seven)) == 0);
	CHECK_EQ(mproc_process_start(p), 0);
	CHECK_EQ(mproc_process_join(p, MPROC_FOREVER), 0);
	CHECK_EQ(mproc_process_exitcode(p, &code), 0);
	CHECK_EQ(code, 7);
	mproc_process_free(p);
	CHECK_OK(mproc_set_executable(NULL));
}

/* mproc_set_executable: bad paths refused; the image set is the one exec methods and the next
 * forkserver run (an image that does not answer fails the start); NULL restores our own. */
static void t_set_executable(void *arg)
{
	enum mproc_start_method ms[] = { MPROC_START_VFORK, MPROC_START_POSIX_SPAWN,
					 MPROC_START_SPAWN, MPROC_START_FORKSERVER };
	struct mproc_process *p;
	char self[4096];
	ssize_t n;
	int code = -1;

	CHECK_ERR(mproc_set_executable(""), -EINVAL);
	CHECK_ERR(mproc_set_executable("/nonexistent/mproc-image"), -ENOENT);
	CHECK_ERR(mproc_set_executable("/etc/passwd"), -EACCES);       /* not executable */
	mproc_forkserver_stop();
	/* /bin/true never answers the handshake: every exec method fails to start. */
	ASSERT(mproc_set_executable("/bin/true") == 0);
	for (size_t i = 0; i < MPROC__ARRAY_SIZE(ms); i++) {
		ASSERT(mk(&p, ms[i], e_exit, NULL, 0) == 0);
		CHECK(mproc_process_start(p) < 0);
		mproc_process_free(p);
	}
	CHECK_ERR(mproc_forkserver_start(), -ECONNREFUSED);
	/* An explicit opts.exe still wins. */
	{
		struct mproc_process_opts o = { .method = MPROC_START_SPAWN, .exe = "/proc/self/exe" };

		ASSERT(mproc_process_new(&p, e_exit, NULL, &o) == 0);
		CHECK_EQ(mproc_process_start(p), 0);
		CHECK_EQ(mproc_process_join(p, MPROC_FOREVER), 0);
		mproc_process_free(p);
	}
	/* Our own image by its path, then the default again (NULL). */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ASSERT(n > 0);
	self[n] = '\0';
	for (int round = 0; round < 2; round++) {
		ASSERT(mproc_set_executable(round ? NULL : self) == 0);
		for (size_t i = 0; i < MPROC__ARRAY_SIZE(ms); i++) {
			int seven = 7;

			ASSERT(mk(&p, ms[i], e_exit, &seven, sizeof(seven)) == 0);
			CHECK_EQ(mproc_process_start(p), 0);
			CHECK_EQ(mproc_process_join(p, MPROC_FOREVER), 0);
			CHECK_EQ(mproc_process_exitcode(p, &code), 0);
			CHECK_EQ(code, 7);
			mproc_process_free(p);
		}
		mproc_forkserver_stop();
	}
}

static atomic_int stop_helper;

static void *lock_hammer(void *a)
{
	while (!atomic_load(&stop_helper))
		mproc_entry_register("t-exit", e_exit);        /* takes the registry lock */
	return NULL;
}

/* fork while a helper thread keeps taking a library lock: the child can still use the library
 * (pthread_atfork makes fork wait for the lock). */
static void t_fork_lock_held(void *arg)
{
	pthread_t th;

	atomic_store(&stop_helper, 0);
	ASSERT(pthread_create(&th, NULL, lock_hammer, NULL) == 0);
	for (int i = 0; i < 200 && !tap_failed(); i++)
		CHECK_EQ(run_code(MPROC_START_FORK, e_use_lib, 0), 0);
	atomic_store(&stop_helper, 1);
	pthread_join(th, NULL);
}

static void t_fork_warns_threads(void *arg)
{
	int fds[2];
	pthread_t th;
	char buf[4096];
	ssize_t n;

	ASSERT(pipe2(fds, O_CLOEXEC) == 0);
	mproc_log_to_fd(fds[1], MPROC_LOG_WARNING);
	atomic_store(&stop_helper, 0);
	ASSERT(pthread_create(&th, NULL, lock_hammer, NULL) == 0);
	CHECK_EQ(run_code(MPROC_START_FORK, e_exit, 0), 0);
	atomic_store(&stop_helper, 1);
	pthread_join(th, NULL);
	mproc_log_to_fd(2, MPROC_LOG_OFF);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	CHECK(strstr(buf, "[WARNING/MainProcess ") == buf);
	CHECK(strstr(buf, "fork with 2 threads") != NULL);
}

/* ---- objects inherited by a fork child ------------------------------------------------------ */

struct inherited {
	struct mproc_process *running, *fresh, *ended;
};

/* In a fork child, the parent's objects are not the child's: every call says -ECHILD (or the
 * "no process" value), free leaves them alone, and the child's own objects work. Returns a bit
 * per failed check, 0 if all hold. */
static int e_inherited(void *a)
{
	struct inherited *in = a;
	struct mproc_process *obj[3] = { in->running, in->fresh, in->ended }, *mine[3];
	int bad = 0, code;

	for (int i = 0; i < 3; i++) {
		struct mproc_process *p = obj[i];

		if (mproc_process_start(p) != -ECHILD)
			bad |= 1 << 0;
		if (mproc_process_join(p, 0) != -ECHILD || mproc_process_is_alive(p))
			bad |= 1 << 1;
		if (mproc_process_terminate(p) != -ECHILD || mproc_process_kill(p) != -ECHILD)
			bad |= 1 << 2;
		if (mproc_process_exitcode(p, &code) != -ECHILD ||
		    mproc_process_sentinel(p) != -ECHILD || mproc_process_close(p) != -ECHILD)
			bad |= 1 << 3;
		if (mproc_process_pid(p) != 0 || mproc_process_name(p) != NULL ||
		    mproc_process_method(p) != MPROC_START__COUNT)
			bad |= 1 << 4;
	}
	/* The child's own objects: never the inherited memory, and they work. */
	for (int i = 0; i < 3; i++) {
		if (mproc_process_new(&mine[i], e_exit, NULL, NULL) < 0) {
			bad |= 1 << 5;
			mine[i] = NULL;
			continue;
		}
		for (int j = 0; j < 3; j++) {
			if (mine[i] == obj[j])
				bad |= 1 << 6;
		}
	}
	for (int i = 0; i < 3; i++) {
		if (mine[i] && (mproc_process_start(mine[i]) < 0 ||
				mproc_process_join(mine[i], 30) < 0 ||
				mproc_process_exitcode(mine[i], &code) < 0 || code != 0))
			bad |= 1 << 7;
		mproc_process_free(mine[i]);
	}
	for (int i = 0; i < 3; i++)
		mproc_process_free(obj[i]);     /* the parent's: nothing happens */
	return bad;
}

/* Objects of every method, inherited by a fork child: foreign there (Python: "can only join a
 * child process"), untouched in the parent. */
static void t_inherited_foreign(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct inherited in;
	int zero = 0, code = -1;
	double two = 2;

	if (is_thread(m))
		ASSERT(mk(&in.running, m, e_sleep, &two, 0) == 0);
	else
		ASSERT(mk(&in.running, m, e_pause, NULL, 0) == 0);
	ASSERT(mk(&in.fresh, m, e_exit, &zero, sizeof(zero)) == 0);
	ASSERT(mk(&in.ended, m, e_exit, &zero, sizeof(zero)) == 0);
	ASSERT(mproc_process_start(in.running) == 0);
	ASSERT(mproc_process_start(in.ended) == 0);
	ASSERT(mproc_process_join(in.ended, 30) == 0);
	CHECK_EQ(run_ptr(e_inherited, &in), 0);
	/* The parent's objects are as they were. */
	CHECK(mproc_process_is_alive(in.running));
	CHECK_EQ(mproc_process_exitcode(in.ended, &code), 0);
	CHECK_EQ(code, 0);
	CHECK_EQ(mproc_process_start(in.fresh), 0);
	CHECK_EQ(mproc_process_join(in.fresh, 30), 0);
	if (!is_thread(m))
		CHECK_EQ(mproc_process_kill(in.running), 0);
	CHECK_EQ(mproc_process_join(in.running, 30), 0);
	mproc_process_free(in.running);
	mproc_process_free(in.fresh);
	mproc_process_free(in.ended);
	mproc_forkserver_stop();
}

/* More objects than one arena chunk holds, alive at once, then freed and made again: all
 * distinct, all usable. */
static void t_many_objects(void *arg)
{
	enum { N = 3000 };
	struct mproc_process **p = calloc(N, sizeof(*p));
	int code = -1;

	ASSERT(p != NULL);
	for (int round = 0; round < 2 && !tap_failed(); round++) {
		for (int i = 0; i < N; i++)
			ASSERT(mproc_process_new(&p[i], e_exit, NULL, NULL) == 0);
		for (int i = 1; i < N; i++)
			CHECK(p[i] != p[i - 1]);
		for (int i = 0; i < N; i += N / 3) {
			CHECK_EQ(mproc_process_start(p[i]), 0);
			CHECK_EQ(mproc_process_join(p[i], 30), 0);
			CHECK_EQ(mproc_process_exitcode(p[i], &code), 0);
			CHECK_EQ(code, 0);
		}
		for (int i = 0; i < N; i++)
			mproc_process_free(p[i]);
	}
	free(p);
}

/* ---- bad input ---------------------------------------------------------------------------- */

static void t_bad_input(void *arg)
{
	struct mproc_process *p = NULL;
	struct mproc_process_opts o = { 0 };
	enum mproc_start_method m;
	char big[MPROC_PROCESS_NAME_MAX + 2];

	CHECK_ERR(mproc_process_new(&p, NULL, NULL, NULL), -EINVAL);
	CHECK_ERR(mproc_process_new(NULL, e_exit, NULL, NULL), -EINVAL);
	o.method = (enum mproc_start_method)42;
	CHECK_ERR(mproc_process_new(&p, e_exit, NULL, &o), -EINVAL);
	o.method = MPROC_START_FORK;
	o.name = "";
	CHECK_ERR(mproc_process_new(&p, e_exit, NULL, &o), -EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	o.name = big;
	CHECK_ERR(mproc_process_new(&p, e_exit, NULL, &o), -EMSGSIZE);
	o.name = NULL;
	o.method = MPROC_START_SPAWN;
	o.entry = "no-such-entry";
	CHECK_ERR(mproc_process_new(&p, e_exit, NULL, &o), -ESRCH);
	o.entry = NULL;
	CHECK_ERR(mproc_process_new(&p, e_late, NULL, &o), -ESRCH);     /* not registered */
	o.arg_len = MPROC_PROCESS_ARG_MAX + 1;
	CHECK_ERR(mproc_process_new(&p, e_exit, big, &o), -EMSGSIZE);
	o.arg_len = 4;
	CHECK_ERR(mproc_process_new(&p, e_exit, NULL, &o), -EINVAL);
	CHECK(p == NULL);
	CHECK_ERR(mproc_start_method_from_name("vforkk", &m), -EINVAL);
	CHECK_ERR(mproc_start_method_from_name(NULL, &m), -EINVAL);
	for (int i = 0; i < MPROC_START__COUNT; i++) {
		CHECK_OK(mproc_start_method_from_name(mproc_start_method_name(i), &m));
		CHECK_EQ(m, i);
	}
	CHECK_STR_EQ(mproc_start_method_name((enum mproc_start_method)99), "?");
	CHECK_ERR(mproc_entry_register("t-exit", e_sleep), -EEXIST);
	CHECK_ERR(mproc_entry_register("", e_sleep), -EINVAL);
	CHECK_ERR(mproc_entry_register(big, e_sleep), -EMSGSIZE);
	CHECK_EQ(tap_count_children(), 0);
	/* NULL-safe accessors. */
	mproc_process_free(NULL);
	CHECK(!mproc_process_is_alive(NULL));
	CHECK_ERR(mproc_process_join(NULL, 0), -EINVAL);
}

/* An entry the parent knows but the child image does not (registered after the hook ran):
 * start fails with -ESRCH from the child's answer, and nothing is left running. */
static void t_unknown_in_child(void *arg)
{
	enum mproc_start_method m = M(arg);
	struct mproc_process_opts o = { .method = m };
	struct mproc_process *p;

	ASSERT(mproc_entry_register("t-late", e_late) == 0);
	ASSERT_OK(mproc_process_new(&p, e_late, NULL, &o));
	CHECK_ERR(mproc_process_start(p), -ESRCH);
	CHECK_EQ(tap_count_children(), m == MPROC_START_FORKSERVER ? 1 : 0);
	mproc_process_free(p);
	mproc_forkserver_stop();
	CHECK_EQ(tap_count_children(), 0);
}

static void t_request_parser(void *arg)
{
	struct mproc__req req;
	void *buf;
	size_t len;
	char bad[64];

	ASSERT_OK(mproc__req_build(&buf, &len, MPROC__REQ_DAEMON, 7, "e", "n", "abc", 3));
	CHECK_OK(mproc__req_parse(buf, len, &req));
	CHECK_STR_EQ(req.entry, "e");
	CHECK_STR_EQ(req.name, "n");
	CHECK_EQ(req.arg_len, 3);
	CHECK_MEM_EQ(req.arg, "abc", 3);
	CHECK_EQ(req.ppid, 7);
	for (size_t i = 0; i < len; i++)
		CHECK_ERR(mproc__req_parse(buf, i, &req), -EBADMSG);     /* every truncation */
	((struct mproc__req_hdr *)buf)->magic ^= 1;
	CHECK_ERR(mproc__req_parse(buf, len, &req), -EBADMSG);
	((struct mproc__req_hdr *)buf)->magic ^= 1;
	((struct mproc__req_hdr *)buf)->flags = 0x80;
	CHECK_ERR(mproc__req_parse(buf, len, &req), -EBADMSG);
	((struct mproc__req_hdr *)buf)->flags = 0;
	((struct mproc__req_hdr *)buf)->arg_len = 0xffffffffu;
	CHECK_ERR(mproc__req_parse(buf, len, &req), -EMSGSIZE);
	((struct mproc__req_hdr *)buf)->arg_len = 3;
	((char *)buf)[sizeof(struct mproc__req_hdr)] = '\0';             /* NUL inside entry */
	CHECK_ERR(mproc__req_parse(buf, len, &req), -EBADMSG);
	free(buf);
	memset(bad, 0xff, sizeof(bad));
	CHECK_ERR(mproc__req_parse(bad, sizeof(bad), &req), -EBADMSG);
	CHECK_ERR(mproc__req_parse(NULL, 0, &req), -EBADMSG);
}

/* Random and mutated requests: the parser answers 0, -EBADMSG or -EMSGSIZE, never crashes, and
 * what it accepts is consistent (the fuzz target in tests/fuzz/ can call the same function). */
static void t_request_parser_random(void *arg)
{
	struct mproc__req req;
	unsigned seed = 12345;
	unsigned char buf[512];
	void *good;
	size_t len;

	ASSERT_OK(mproc__req_build(&good, &len, 0, 1, "entry", "name", "0123456789", 10));
	for (int i = 0; i < 200000; i++) {
		size_t n;
		int r;

		if (i & 1) {
			n = len;
			memcpy(buf, good, len);
			buf[rand_r(&seed) % len] ^= (unsigned char)(1u << (rand_r(&seed) % 8));
		} else {
			n = (size_t)rand_r(&seed) % sizeof(buf);
			for (size_t k = 0; k < n; k++)
				buf[k] = (unsigned char)rand_r(&seed);
		}
		r = mproc__req_parse(buf, n, &req);
		if (r != 0 && r != -EBADMSG && r != -EMSGSIZE) {
			CHECK_OK(r);
			break;
		}
		if (r == 0) {
			CHECK(strlen(req.entry) <= MPROC_ENTRY_NAME_MAX);
			CHECK(req.arg_len <= n);
		}
	}
	free(good);
}

/* ---- log ---------------------------------------------------------------------------------- */

static void t_log_lines(void *arg)
{
	struct mproc_process *ps[4];
	struct mproc_process_opts o = { .method = MPROC_START_FORK, .name = "logger" };
	int fds[2], lines = 0;
	char *all = malloc(1 << 20), *line, *save;
	size_t got = 0;
	ssize_t n;

	ASSERT(all && pipe2(fds, O_CLOEXEC) == 0);
	CHECK_ERR(mproc_log_to_fd(-1, MPROC_LOG_INFO), -EINVAL);
	CHECK_ERR(mproc_log_to_stderr(5), -EINVAL);
	CHECK_OK(mproc_log_to_fd(fds[1], MPROC_LOG_INFO));
	CHECK(!mproc_log_enabled(MPROC_LOG_DEBUG));
	mproc_log(MPROC_LOG_DEBUG, "filtered");
	for (int i = 0; i < 4; i++) {
		ASSERT_OK(mproc_process_new(&ps[i], e_log, NULL, &o));
		ASSERT_OK(mproc_process_start(ps[i]));
	}
	/* Drain while they write so the pipe never fills. */
	for (;;) {
		bool alive = false;

		for (int i = 0; i < 4; i++)
			alive |= mproc_process_is_alive(ps[i]);
		struct pollfd pf = { .fd = fds[0], .events = POLLIN };
		if (poll(&pf, 1, alive ? 100 : 0) <= 0 && !alive)
			break;
		if (pf.revents & POLLIN) {
			n = read(fds[0], all + got, (1 << 20) - 1 - got);
			if (n > 0)
				got += (size_t)n;
		}
	}
	mproc_log_to_fd(2, MPROC_LOG_OFF);
	close(fds[1]);
	close(fds[0]);
	all[got] = '\0';
	for (line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lines++;
		if (strncmp(line, "[INFO/logger ", 13) != 0 || !strstr(line, "from child abc") ||
		    !strstr(line, "xyz")) {
			CHECK(!"interleaved or malformed line");
			tap_diag("line: %s", line);
			break;
		}
	}
	CHECK_EQ(lines, 800);
	for (int i = 0; i < 4; i++) {
		CHECK_OK(mproc_process_join(ps[i], 10));
		mproc_process_free(ps[i]);
	}
	free(all);
}

static void t_log_long_line(void *arg)
{
	int fds[2];
	char big[3000], buf[4096];
	ssize_t n;

	ASSERT(pipe2(fds, O_CLOEXEC) == 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mproc_log_to_fd(fds[1], MPROC_LOG_DEBUG);
	mproc_log(MPROC_LOG_ERROR, "%s", big);
	mproc_log_to_fd(2, MPROC_LOG_OFF);
	n = read(fds[0], buf, sizeof(buf));
	CHECK_EQ(n, MPROC_LOG_LINE_MAX - 1);
	CHECK(n > 4 && memcmp(buf + n - 4, "...\n", 4) == 0);
	CHECK(strncmp(buf, "[ERROR/MainProcess ", 19) == 0);
	close(fds[0]);
	close(fds[1]);
}

/* ---- registration ------------------------------------------------------------------------- */

/* Case names live for the run, in static storage (reachable: leak checkers stay quiet when a
 * case's helper process calls exit()). */
static char name_store[256][80];
static int name_n;

static const char *case_name(enum mproc_start_method m, const char *what)
{
	if (name_n == (int)MPROC__ARRAY_SIZE(name_store))
		abort();
	snprintf(name_store[name_n], sizeof(name_store[0]), "process/%s/%s",
		 mproc_start_method_name(m), what);
	return name_store[name_n++];
}

static void add_each(const char *what, tap_fn *fn, bool thread_too, const struct tap_opts *o)
{
	for (int m = 0; m < MPROC_START__COUNT; m++) {
		if (m == MPROC_START_THREAD && !thread_too)
			continue;
		tap_add_opts(case_name(m, what), fn, (void *)(intptr_t)m, o);
	}
}

static void add_exec(const char *what, tap_fn *fn, bool with_fork, bool with_fs)
{
	static const enum mproc_start_method ms[] = {
		MPROC_START_FORK, MPROC_START_VFORK, MPROC_START_POSIX_SPAWN, MPROC_START_SPAWN,
		MPROC_START_FORKSERVER,
	};

	for (size_t i = 0; i < MPROC__ARRAY_SIZE(ms); i++) {
		if ((ms[i] == MPROC_START_FORK && !with_fork) ||
		    (ms[i] == MPROC_START_FORKSERVER && !with_fs))
			continue;
		tap_add(case_name(ms[i], what), fn, (void *)(intptr_t)ms[i]);
	}
}

int main(int argc, char **argv)
{
	mproc_main_hook(argc, argv);
	add_each("states", t_states, true, NULL);
	add_each("exitcodes", t_exitcodes, true, NULL);
	add_each("terminate_kill", t_terminate_kill, true, NULL);
	add_each("join_timeout", t_join_timeout, true, NULL);
	add_each("closed", t_closed, true, NULL);
	add_each("close_running", t_close_running, true, NULL);
	add_each("sentinel_poll", t_sentinel_poll, true, NULL);
	add_each("name", t_name, true, NULL);
	add_each("terminate_many", t_terminate_many, false, NULL);
	add_each("terminate_many_sigterm_ignored", t_terminate_many_ignored, false, NULL);
	add_each("terminate_many_sigterm_blocked", t_terminate_many_blocked, false, NULL);
	add_each("daemon_no_children", t_daemon_no_children, false, NULL);
	add_each("daemon_killed_at_exit", t_daemon_killed_at_exit, false, NULL);
	add_each("parent_killed", t_parent_killed, false, NULL);
	add_each("parent_killed_started_by_thread", t_parent_killed_thread, false, NULL);
	add_each("starter_thread_exits", t_starter_thread_exits, false, NULL);
	add_each("cycles_fds", t_cycles_fds, true, &(struct tap_opts){ .timeout_s = 280 });
	add_exec("exec_missing", t_exec_missing, false, false);
	add_exec("unknown_entry_in_child", t_unknown_in_child, false, true);
	/* spawn and forkserver promise a clean fd table; vfork/posix_spawn inherit like fork. */
	tap_add("process/spawn/no_fd_inherit", t_no_fd_inherit, (void *)(intptr_t)MPROC_START_SPAWN);
	tap_add("process/forkserver/no_fd_inherit", t_no_fd_inherit,
		(void *)(intptr_t)MPROC_START_FORKSERVER);
	tap_add("process/forkserver/server_killed", t_forkserver_killed, NULL);
	tap_add("process/fork/lock_held_by_thread", t_fork_lock_held, NULL);
	tap_add("process/fork/warns_threads", t_fork_warns_threads, NULL);
	add_each("inherited_foreign_in_fork_child", t_inherited_foreign, true, NULL);
	tap_add("process/any/many_objects", t_many_objects, NULL);
	tap_add("process/any/bad_input", t_bad_input, NULL);
	tap_add("process/any/set_executable", t_set_executable, NULL);
	tap_add("process/any/set_executable_not_regular", t_set_executable_not_regular, NULL);
	tap_add("process/any/request_parser", t_request_parser, NULL);
	tap_add("process/any/request_parser_random", t_request_parser_random, NULL);
	tap_add("log/fd/lines_whole", t_log_lines, NULL);
	tap_add("log/fd/long_line", t_log_long_line, NULL);
	return tap_run(argc, argv);
}
