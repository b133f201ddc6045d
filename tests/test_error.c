/* test_error.c - mproc_strerror()/mproc_errname() name every code; the harness itself works. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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
	CHECK_STR_EQ(mproc_version(), "0.1.0");
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

int main(int argc, char **argv)
{
	tap_add("error/names", t_names, NULL);
	tap_add("error/eof_below_errno_range", t_eof_below_errno_range, NULL);
	tap_add("error/positive_is_negated", t_positive_is_negated, NULL);
	tap_add("error/unknown_code", t_unknown_code, NULL);
	tap_add("harness/sees_fd_leak", t_harness_sees_fd_leak, NULL);
	tap_add("harness/sees_child_leak", t_harness_sees_child_leak, NULL);
	tap_add("harness/sees_sysv_leak", t_harness_sees_sysv_leak, NULL);
	return tap_run(argc, argv);
}
