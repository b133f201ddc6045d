/* test_error.c - mproc_strerror()/mproc_errname() name every code; the harness itself works. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mproc.h"
#include "tap.h"

static const int fixed_codes[] = {
	-ETIMEDOUT, -EAGAIN, -EPIPE, -EOWNERDEAD, -ECHILD, -ECANCELED, -EBADMSG, -EMSGSIZE,
	-EACCES, -EINVAL, -ENOENT, -EEXIST, -ENOSPC, -ENOMEM, -EMFILE, -ENOSYS,
};

static void t_names(void *arg)
{
	for (size_t i = 0; i < sizeof(fixed_codes) / sizeof(fixed_codes[0]); i++) {
		const char *name = mproc_errname(fixed_codes[i]);
		const char *text = mproc_strerror(fixed_codes[i]);

		CHECK(name[0] == 'E');
		CHECK(strcmp(name, "E?") != 0);
		/* The description starts with the name, so a log line is greppable. */
		CHECK(strncmp(text, name, strlen(name)) == 0);
	}
	CHECK_STR_EQ(mproc_errname(-ETIMEDOUT), "ETIMEDOUT");
	CHECK_STR_EQ(mproc_errname(MPROC_EOF), "MPROC_EOF");
	CHECK_STR_EQ(mproc_errname(0), "OK");
	CHECK(strstr(mproc_strerror(MPROC_EOF), "end of stream") != NULL);
}

static void t_eof_below_errno_range(void *arg)
{
	CHECK_CMP(MPROC_EOF, <, -4095);
}

static void t_positive_is_negated(void *arg)
{
	/* pthread-style positive codes name the same error. */
	CHECK_STR_EQ(mproc_errname(ETIMEDOUT), "ETIMEDOUT");
	CHECK_STR_EQ(mproc_strerror(EPIPE), mproc_strerror(-EPIPE));
}

static void t_unknown_code(void *arg)
{
	const char *s = mproc_strerror(-4000);

	CHECK(s != NULL);
	CHECK(strlen(s) > 0);
	CHECK(mproc_errname(-4000) != NULL);
	CHECK_STR_EQ(mproc_version(), MPROC_TEST_PROJECT_VERSION);   /* meson.build's, passed by -D */
}

/* The harness must catch leaks, or every "no leak" result in the suite is hollow: run a case
 * body that leaks an fd inside a snapshot pair and check that the comparison sees it. */
static void t_harness_sees_fd_leak(void *arg)
{
	struct tap_snapshot *b = tap_snapshot_take();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct tap_snapshot *a = tap_snapshot_take();

	tap_diag("(the leak reported next is expected)");
	CHECK_EQ(tap_snapshot_compare(b, a), 1);
	close(fd);
}

static void t_harness_sees_sysv_leak(void *arg)
{
	struct tap_snapshot *b, *a;
	int id;

	if (geteuid() != 0)
		tap_skip("not root: the SysV leak check needs a private IPC namespace");
	b = tap_snapshot_take();
	id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	ASSERT(id >= 0);
	a = tap_snapshot_take();
	tap_diag("(the leak reported next is expected)");
	CHECK_EQ(tap_snapshot_compare(b, a), 1);
	msgctl(id, IPC_RMID, NULL);
}

static void t_harness_sees_child_leak(void *arg)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	/* The child is a zombie until reaped: it counts. */
	usleep(20000);
	CHECK_EQ(tap_count_children(), 1);
	waitpid(pid, NULL, 0);
	CHECK_EQ(tap_count_children(), 0);
}

/*
 * The watchdog counts machine time, not wall time (tap.h): the harness runs itself
 * (/proc/self/exe with TAP_HARNESS_INNER=1, so only the inner cases below exist) on a load
 * average read from a file, and reads the inner case's TAP line and how long it took.
 */
static void t_inner_sleep(void *arg)
{
	double until = tap_now() + *(const double *)arg;

	while (tap_now() < until)
		usleep(10000);
}

static const double inner_short = 1.5, inner_hang = 60;

/* A case starts with the default action for the signals cases send, even when the runner was
 * started with them ignored (a background job of a shell). */
static void t_inner_default_signals(void *arg)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM };
	struct sigaction sa;

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		CHECK_EQ(sigaction(sigs[i], NULL, &sa), 0);
		CHECK(sa.sa_handler == SIG_DFL);
	}
}

/* A case that hangs after forking a process that keeps the harness's result pipe open. */
static void t_inner_orphan_holds_pipe(void *arg)
{
	if (fork() == 0)
		for (;;)
			pause();
	for (;;)
		pause();
}

/* Runs inner case `name` with TAP_LOADAVG_FILE holding `loadavg` ("" = an empty file: no
 * load); returns its exit status, its stdout in out, the wall time in *dt. */
static int run_inner(const char *name, const char *loadavg, char *out, size_t size, double *dt)
{
	char file[] = "/tmp/tap-loadavg-XXXXXX";
	int fd = mkstemp(file), pfd[2], st = -1;
	size_t len = 0;
	double t0;
	ssize_t n;
	pid_t pid;

	ASSERT(fd >= 0);
	ASSERT(write(fd, loadavg, strlen(loadavg)) == (ssize_t)strlen(loadavg));
	close(fd);
	ASSERT(pipe2(pfd, O_CLOEXEC) == 0);
	t0 = tap_now();
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		/* As a shell's background job (`make test &`, nohup) would start it. */
		signal(SIGHUP, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		dup2(pfd[1], 1);
		setenv("TAP_HARNESS_INNER", "1", 1);
		setenv("TAP_LOADAVG_FILE", file, 1);
		setenv("TAP_TIMEOUT_MULT", "1", 1);     /* also under CI's sanitizer pass */
		unsetenv("TAP_LOAD_SCALE");
		execl("/proc/self/exe", "test_error", name, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (len + 1 < size && (n = read(pfd[0], out + len, size - 1 - len)) != 0) {
		if (n > 0)
			len += (size_t)n;
		else if (errno != EINTR)
			break;
	}
	out[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*dt = tap_now() - t0;
	unlink(file);
	tap_diag("inner %s, loadavg \"%.*s\": %.2f s, exit %d", name,
		 (int)strcspn(loadavg, "\n"), loadavg, *dt, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A case that takes 1.5 s of its 1 s budget passes on a saturated machine (load 1000: the
 * factor is TAP_LOAD_MAX): the time it lost was the machine's. */
static void t_harness_watchdog_extends_under_load(void *arg)
{
	char out[4096];
	double dt;

	CHECK_EQ(run_inner("inner/sleep_1.5s", "1000.00 1000.00 1000.00 2/300 1\n", out,
			   sizeof(out), &dt), 0);
	CHECK(strstr(out, "\nok 1 inner/sleep_1.5s") != NULL);
	CHECK(strstr(out, "timed out") == NULL);
}

/* The same case on an idle machine is killed at its budget. */
static void t_harness_watchdog_idle(void *arg)
{
	char out[4096];
	double dt;

	CHECK_EQ(run_inner("inner/sleep_1.5s", "0.00 0.00 0.00 1/300 1\n", out, sizeof(out), &dt),
		 1);
	CHECK(strstr(out, "\nnot ok 1 inner/sleep_1.5s") != NULL);
	CHECK(strstr(out, "timed out") != NULL);
}

/* A hang on a saturated machine still fails, after at most TAP_LOAD_MAX x its budget. */
static void t_harness_watchdog_bounds_a_hang(void *arg)
{
	char out[4096];
	double dt;

	CHECK_EQ(run_inner("inner/hang", "1000.00 1000.00 1000.00 2/300 1\n", out, sizeof(out),
			   &dt), 1);
	CHECK(strstr(out, "\nnot ok 1 inner/hang") != NULL);
	CHECK(strstr(out, "timed out") != NULL);
	CHECK_CMP(dt, >=, TAP_LOAD_MAX * 1.0);
	CHECK_CMP(dt, <, inner_hang / 2);
}

/* Started with SIGINT & co. ignored, a case still sees their default action. */
static void t_harness_default_signals(void *arg)
{
	char out[4096];
	double dt;

	CHECK_EQ(run_inner("inner/default_signals", "", out, sizeof(out), &dt), 0);
	CHECK(strstr(out, "\nok 1 inner/default_signals") != NULL);
}

/* A case that hangs and leaves a process holding the result pipe is killed at its budget, and
 * the runner goes on (it used to wait on the pipe for ever). */
static void t_harness_watchdog_orphan(void *arg)
{
	char out[4096];
	double dt;

	CHECK_EQ(run_inner("inner/orphan_holds_pipe", "", out, sizeof(out), &dt), 1);
	CHECK(strstr(out, "\nnot ok 1 inner/orphan_holds_pipe") != NULL);
	CHECK(strstr(out, "timed out") != NULL);
	CHECK_CMP(dt, <, 30);
}

int main(int argc, char **argv)
{
	static const struct tap_opts one_s = { .timeout_s = 1 };

	if (getenv("TAP_HARNESS_INNER")) {
		tap_add_opts("inner/sleep_1.5s", t_inner_sleep, (void *)&inner_short, &one_s);
		tap_add_opts("inner/hang", t_inner_sleep, (void *)&inner_hang, &one_s);
		tap_add("inner/default_signals", t_inner_default_signals, NULL);
		tap_add_opts("inner/orphan_holds_pipe", t_inner_orphan_holds_pipe, NULL, &one_s);
		return tap_run(argc, argv);
	}
	tap_add("error/names", t_names, NULL);
	tap_add("error/eof_below_errno_range", t_eof_below_errno_range, NULL);
	tap_add("error/positive_is_negated", t_positive_is_negated, NULL);
	tap_add("error/unknown_code", t_unknown_code, NULL);
	tap_add("harness/sees_fd_leak", t_harness_sees_fd_leak, NULL);
	tap_add("harness/sees_child_leak", t_harness_sees_child_leak, NULL);
	tap_add("harness/sees_sysv_leak", t_harness_sees_sysv_leak, NULL);
	tap_add("harness/watchdog_extends_under_load", t_harness_watchdog_extends_under_load, NULL);
	tap_add("harness/watchdog_idle", t_harness_watchdog_idle, NULL);
	tap_add("harness/watchdog_bounds_a_hang", t_harness_watchdog_bounds_a_hang, NULL);
	tap_add("harness/watchdog_orphan", t_harness_watchdog_orphan, NULL);
	tap_add("harness/default_signals", t_harness_default_signals, NULL);
	return tap_run(argc, argv);
}
