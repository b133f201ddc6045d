/*
 * test_util.c - the library's small shared helpers (lib/util.c, internal.h): the one timeout
 * check and its deadlines, the one FNV-1a.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "internal.h"
#include "mproc.h"
#include "tap.h"

/* Every API timeout goes through mproc__timeout_ns: forever, zero, rounded-up nanoseconds,
 * "forever" past ~285 years, -EINVAL for what is not a timeout. */
static void t_timeout_ns(void *arg)
{
	int64_t ns = 42;

	(void)arg;
	CHECK_OK(mproc__timeout_ns(MPROC_FOREVER, &ns));
	CHECK_EQ(ns, -1);
	CHECK_OK(mproc__timeout_ns(0, &ns));
	CHECK_EQ(ns, 0);
	CHECK_OK(mproc__timeout_ns(1.5, &ns));
	CHECK_EQ(ns, 1500000000);
	CHECK_OK(mproc__timeout_ns(1e-10, &ns));        /* never shorter than asked */
	CHECK_EQ(ns, 1);
	CHECK_OK(mproc__timeout_ns(1e10, &ns));
	CHECK_EQ(ns, -1);
	ns = 42;
	CHECK_ERR(mproc__timeout_ns(-0.5, &ns), -EINVAL);
	CHECK_ERR(mproc__timeout_ns(-2.0, &ns), -EINVAL);
	CHECK_ERR(mproc__timeout_ns(NAN, &ns), -EINVAL);
	CHECK_ERR(mproc__timeout_ns(INFINITY, &ns), -EINVAL);
	CHECK_ERR(mproc__timeout_ns(-INFINITY, &ns), -EINVAL);
	CHECK_EQ(ns, 42);                               /* untouched on error */
	/* -0.0 is >= 0: zero; the largest finite double and the smallest denormal are timeouts. */
	CHECK_OK(mproc__timeout_ns(-0.0, &ns));
	CHECK_EQ(ns, 0);
	CHECK_OK(mproc__timeout_ns(DBL_MAX, &ns));
	CHECK_EQ(ns, -1);
	CHECK_OK(mproc__timeout_ns(DBL_TRUE_MIN, &ns));
	CHECK_EQ(ns, 1);
}

/* The queue's inline check (on the bits) says what the floating-point rule says. */
static void t_timeout_valid(void *arg)
{
	static const double v[] = {
		0.0, -0.0, 1e-300, DBL_TRUE_MIN, 0.5, 1.0, 30.0, 9e9, 1e300, DBL_MAX,
		MPROC_FOREVER, -1.0000000000000002, -0.9999999999999999, -DBL_TRUE_MIN, -1e-300,
		-0.5, -2.0, -DBL_MAX, INFINITY, -INFINITY, NAN, -NAN,
	};

	(void)arg;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		bool want = v[i] == MPROC_FOREVER || (v[i] >= 0 && v[i] <= DBL_MAX);

		if (mproc__timeout_valid(v[i]) != want)
			CHECK(!"mproc__timeout_valid disagrees with the rule");
	}
}

static void t_deadline(void *arg)
{
	int64_t d = 0, before, after;

	(void)arg;
	CHECK_OK(mproc__deadline_at(-1, 100, &d));
	CHECK_EQ(d, MPROC__NO_DEADLINE);
	CHECK_OK(mproc__deadline_at(5, 100, &d));
	CHECK_EQ(d, 105);
	CHECK_OK(mproc__deadline_at(INT64_MAX - 50, 100, &d));    /* saturates */
	CHECK_EQ(d, MPROC__NO_DEADLINE);
	CHECK_ERR(mproc__deadline_at(-2, 100, &d), -EINVAL);
	CHECK_OK(mproc__deadline(MPROC_FOREVER, &d));
	CHECK_EQ(d, MPROC__NO_DEADLINE);
	before = mproc__now_ns();
	CHECK_OK(mproc__deadline(2.0, &d));
	after = mproc__now_ns();
	CHECK_CMP(d, >=, before + 2000000000);
	CHECK_CMP(d, <=, after + 2000000000);
	CHECK_ERR(mproc__deadline(NAN, &d), -EINVAL);
}

/* FNV-1a 64 reference values (Fowler/Noll/Vo test vectors). */
static void t_fnv1a64(void *arg)
{
	(void)arg;
	CHECK_EQ(mproc__fnv1a64("", 0), UINT64_C(0xcbf29ce484222325));
	CHECK_EQ(mproc__fnv1a64("a", 1), UINT64_C(0xaf63dc4c8601ec8c));
	CHECK_EQ(mproc__fnv1a64("foobar", 6), UINT64_C(0x85944171f73967e8));
}

/* It compiles and returns on every architecture (what it does is a hint to the CPU). */
static void t_cpu_relax(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		mproc__cpu_relax();
	CHECK(1);
}

int main(int argc, char **argv)
{
	tap_add("util/timeout_ns", t_timeout_ns, NULL);
	tap_add("util/timeout_valid", t_timeout_valid, NULL);
	tap_add("util/deadline", t_deadline, NULL);
	tap_add("util/fnv1a64", t_fnv1a64, NULL);
	tap_add("util/cpu_relax", t_cpu_relax, NULL);
	return tap_run(argc, argv);
}
