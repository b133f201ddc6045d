/*
 * tap.h - the test harness of mproc: TAP output for meson, one forked process per case, a
 * watchdog, and a leak check around every case.
 *
 *	static void t_echo(void *arg) { CHECK_EQ(f(1), 2); }
 *	int main(int argc, char **argv)
 *	{
 *		tap_add("conn/pipe/echo", t_echo, NULL);
 *		return tap_run(argc, argv);
 *	}
 *
 * Each case runs in its own forked child (a crash fails one case, not the suite) under
 * PR_SET_CHILD_SUBREAPER, so grandchildren that a case orphans come back to it. It starts with
 * SIGPIPE, SIGHUP, SIGINT, SIGQUIT and SIGTERM at their default action, even when the runner
 * inherited them ignored (a shell's background job, nohup). Before and
 * after the case body the child records its open fds, threads, children (zombies included),
 * /dev/shm/mproc-... and /dev/mqueue/mproc-... names, /tmp/mproc-<pid>-... entries (manager and
 * forkserver directories) it or its dead descendants created, and new SysV message queues; any
 * difference fails the case and names what leaked (then the
 * leftovers are killed/reaped). The runner (also a subreaper) kills a case that overruns
 * its timeout (default 60 s, x TAP_TIMEOUT_MULT) and reaps anything the case orphaned.
 *
 * Time and load: a test must never fail only because the machine is slow. The watchdog counts
 * a case's time as machine time, wall time / tap_load_factor() (runnable tasks per usable CPU,
 * 1..TAP_LOAD_MAX), so a saturated machine extends the deadline, and a real hang still fails
 * within TAP_LOAD_MAX x the timeout of wall time. A case's own bounds on how long something
 * may take are written as X * tap_timeout_mult(), which carries both factors.
 *
 * Run alone: ./test_x 'queue/ring/...' (an fnmatch pattern) runs the matching cases (fnmatch); --list lists them.
 * Cases matching a pattern of the environment variable TAP_SKIP (space-separated) are skipped
 * with TAP_SKIP_REASON: a test setup's exclusions (meson.build, valgrind).
 * A case that lacks a resource calls tap_skip("reason"). If every case skipped, the
 * executable exits 77 (meson: SKIP).
 *
 * CHECK_* record a failure and go on; ASSERT_* end the case at once.
 */
#ifndef MPROC_TAP_H
#define MPROC_TAP_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "mproc/error.h"

typedef void tap_fn(void *arg);

enum {
	TAP_NO_LEAK_CHECK = 1 << 0,     /* the case checks leaks itself, or cannot */
	TAP_NO_FORK = 1 << 1,           /* run in the runner process (rarely needed) */
};

struct tap_opts {
	double timeout_s;       /* 0 = default 60 s */
	unsigned flags;
};

void tap_add(const char *name, tap_fn *fn, void *arg);
void tap_add_opts(const char *name, tap_fn *fn, void *arg, const struct tap_opts *o);
int tap_run(int argc, char **argv);

/* Entries of a directory, dot files left out; -1 if it cannot be opened. */
int tap_count_entries(const char *path);

/* In a case. */
void tap_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void tap_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void tap_abort_case(void);
bool tap_failed(void);                  /* any CHECK failed so far in this case */
int tap_fail_count(void);
const char *tap_case_name(void);
double tap_now(void);                   /* CLOCK_MONOTONIC seconds */
/* TAP_TIMEOUT_MULT (valgrind, sanitizers: a slower program), at least 1. */
double tap_env_timeout_mult(void);
/* How loaded the machine is now, as a slowdown: max(1-minute load average, tasks runnable now)
 * / tap_usable_cpus(), clamped to [1, TAP_LOAD_MAX]; 1 with TAP_LOAD_SCALE=0. Host-wide load
 * seen from a container with a CPU quota overstates it: the cap bounds that. */
#define TAP_LOAD_MAX 4.0
double tap_load_factor(void);
/* tap_env_timeout_mult() x tap_load_factor(): the factor for a case's own time bounds. */
double tap_timeout_mult(void);
/* CPUs this process may use: affinity mask, lowered by a cgroup v2 cpu.max quota. */
int tap_usable_cpus(void);
/* Whether named POSIX shared memory works here (a writable /dev/shm); tests of named objects
 * skip with the reason when it does not (tests/no_devshm.sh runs suites that way). */
bool tap_dev_shm_usable(void);
void tap_require_dev_shm(void);         /* tap_skip() unless tap_dev_shm_usable() */

/* Fork a child that runs fn(arg) and _exits with its result (0..255); ends the case if fork
 * fails. tap_reap() waits for it (EINTR retried): its exit status, 128 + signal, or -1. */
pid_t tap_fork(int (*fn)(void *arg), void *arg);
int tap_reap(pid_t pid);

/* Leak snapshot, also usable inside a case around a sub-step. */
struct tap_snapshot;
struct tap_snapshot *tap_snapshot_take(void);
/* Returns the number of leaks found and describes them with tap_diag; frees both. */
int tap_snapshot_compare(struct tap_snapshot *before, struct tap_snapshot *after);
int tap_count_fds(void);
int tap_count_children(void);   /* live or zombie processes whose parent is us */

#define TAP__I(x) ((intmax_t)(x))

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond))                                                          \
			tap_fail_at(__FILE__, __LINE__, "CHECK(%s) failed", #cond);   \
	} while (0)
#define CHECK_EQ(got, want)                                                           \
	do {                                                                          \
		intmax_t g_ = TAP__I(got), w_ = TAP__I(want);                         \
		if (g_ != w_)                                                         \
			tap_fail_at(__FILE__, __LINE__, "CHECK_EQ(%s, %s): got %jd, want %jd", \
				    #got, #want, g_, w_);                             \
	} while (0)
#define CHECK_NE(got, notwant)                                                        \
	do {                                                                          \
		intmax_t g_ = TAP__I(got), w_ = TAP__I(notwant);                      \
		if (g_ == w_)                                                         \
			tap_fail_at(__FILE__, __LINE__, "CHECK_NE(%s, %s): both %jd",  \
				    #got, #notwant, g_);                              \
	} while (0)
#define CHECK_CMP(a, op, b)                                                           \
	do {                                                                          \
		double a_ = (double)(a), b_ = (double)(b);                            \
		if (!(a_ op b_))                                                      \
			tap_fail_at(__FILE__, __LINE__, "CHECK_CMP(%s %s %s): %g vs %g", \
				    #a, #op, #b, a_, b_);                             \
	} while (0)
/* r >= 0, else print the error's name. */
#define CHECK_OK(expr)                                                                \
	do {                                                                          \
		intmax_t r_ = TAP__I(expr);                                           \
		if (r_ < 0)                                                           \
			tap_fail_at(__FILE__, __LINE__, "CHECK_OK(%s): %s", #expr,     \
				    mproc_strerror((int)r_));                         \
	} while (0)
/* expr returns exactly the code want (e.g. -EINVAL, MPROC_EOF). */
#define CHECK_ERR(expr, want)                                                         \
	do {                                                                          \
		intmax_t r_ = TAP__I(expr), w_ = TAP__I(want);                        \
		if (r_ != w_)                                                         \
			tap_fail_at(__FILE__, __LINE__, "CHECK_ERR(%s): got %jd (%s), want %s", \
				    #expr, r_, r_ < 0 ? mproc_strerror((int)r_) : "success", \
				    mproc_errname((int)w_));                          \
	} while (0)
#define CHECK_STR_EQ(got, want)                                                       \
	do {                                                                          \
		const char *g_ = (got), *w_ = (want);                                 \
		if (!g_ || !w_ || strcmp(g_, w_) != 0)                                \
			tap_fail_at(__FILE__, __LINE__, "CHECK_STR_EQ(%s, %s): \"%s\" vs \"%s\"", \
				    #got, #want, g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
	} while (0)
#define CHECK_MEM_EQ(a, b, n)                                                         \
	do {                                                                          \
		if (memcmp((a), (b), (n)) != 0)                                       \
			tap_fail_at(__FILE__, __LINE__, "CHECK_MEM_EQ(%s, %s, %s) differ", \
				    #a, #b, #n);                                      \
	} while (0)

/* ASSERT_*: as CHECK_*, then end the case. */
#define TAP__ASSERT(check) \
	do {                                            \
		int n_ = tap_fail_count();              \
		check;                                  \
		if (tap_fail_count() > n_)              \
			tap_abort_case();               \
	} while (0)
#define ASSERT(c) TAP__ASSERT(CHECK(c))
#define ASSERT_EQ(a, b) TAP__ASSERT(CHECK_EQ(a, b))
#define ASSERT_OK(e) TAP__ASSERT(CHECK_OK(e))
#define ASSERT_ERR(e, w) TAP__ASSERT(CHECK_ERR(e, w))

#endif /* MPROC_TAP_H */
