/*
 * gbench.h - a small C interface to Google Benchmark (1.7.1 and 1.8.x), so the harnesses
 * stay in C. The implementation, gbench.cc, is the only C++ in the project.
 *
 * A harness registers C functions, each with one or more argument tuples and argument
 * names, then hands control to gbench_main(). Inside a benchmark function the usual Google
 * Benchmark loop applies:
 *
 *	static void bm_pipe(struct gbench_state *st, void *arg)
 *	{
 *		size_t n = (size_t)gbench_arg(st, 0);
 *		... untimed setup ...
 *		while (gbench_keep_running(st)) {
 *			... one iteration ...
 *			gbench_set_iteration_time(st, seconds);   (manual time)
 *		}
 *		gbench_counter(st, "bytes_per_second", bytes, GBENCH_RATE);
 *		... untimed teardown ...
 *	}
 *
 * One time per operation: real_time (with manual time: the sum of gbench_set_iteration_time
 * over the iterations, divided by the iterations) must be the time of ONE operation - one
 * message, one round trip, one task, one start - in every profile, so that Google Benchmark's
 * compare.py and the project's compare.md read the same unit in two runs. A loop that times
 * n operations at once (a batch, a round, a map) runs under gbench_keep_running_batch(st, n)
 * and sets the batch's time once: Google Benchmark then counts n iterations (its iteration
 * count and prediction use the operations actually run). n may differ by profile or machine;
 * what one iteration means may not. The JSON context says "mproc_real_time": "per_operation".
 *
 * Names: "<name>/<argname>:<value>..." exactly as Google Benchmark builds them from ArgNames.
 * Google Benchmark appends "/manual_time" or "/real_time" to the name of benchmarks that use
 * them; readers strip those suffixes (results/README.md).
 *
 * Profiles: gbench_main() accepts --profile=smoke|quick|full (or MPROC_PROFILE) and derives
 * default --benchmark_min_time and --benchmark_repetitions from it unless those flags are
 * given. Harnesses read gbench_current_profile() to choose their sweeps; it is valid from the moment
 * the registration callback runs.
 *
 * Not thread-safe: register from the main thread before gbench_main() runs them.
 */
#ifndef MPROC_GBENCH_H
#define MPROC_GBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gbench;          /* a registered benchmark family (benchmark::internal::Benchmark) */
struct gbench_state;    /* benchmark::State */

typedef void gbench_fn(struct gbench_state *st, void *arg);

enum gbench_profile {
	GBENCH_SMOKE,   /* one tiny pass: does it run, are the names and counters there */
	GBENCH_QUICK,   /* 6 repetitions (enough for a 95 % interval), short minimum time */
	GBENCH_FULL,    /* 9+ repetitions (compare.py's U test needs 9) */
};

/* Counter flags (benchmark::Counter::Flags). */
enum {
	GBENCH_DEFAULT = 0,
	GBENCH_RATE = 1 << 0,           /* value / elapsed seconds */
	GBENCH_AVG_ITERATIONS = 1 << 1, /* value / iterations */
	GBENCH_INVERT = 1 << 2,         /* 1 / value (with RATE: seconds per item) */
	GBENCH_ITERATION_INVARIANT = 1 << 3, /* value * iterations */
};

enum gbench_unit { GBENCH_NS, GBENCH_US, GBENCH_MS, GBENCH_S };

/* Registration. Every call returns b, so calls chain; name is copied. */
struct gbench *gbench_register(const char *name, gbench_fn *fn, void *arg);
struct gbench *gbench_args(struct gbench *b, const int64_t *args, size_t n);  /* one instance */
struct gbench *gbench_arg_names(struct gbench *b, const char *const *names, size_t n);
struct gbench *gbench_use_manual_time(struct gbench *b);
struct gbench *gbench_use_real_time(struct gbench *b);
struct gbench *gbench_time_unit(struct gbench *b, enum gbench_unit unit);
struct gbench *gbench_iterations(struct gbench *b, int64_t n);   /* fixed count; appends /iterations:n */
struct gbench *gbench_min_time(struct gbench *b, double seconds);/* appends /min_time:x */

/* Convenience: one instance with up to 4 args: GBENCH_ARGS(b, 64, 1, 1). */
#define GBENCH_ARGS(b, ...) \
	gbench_args((b), (const int64_t[]){ __VA_ARGS__ }, \
		    sizeof((const int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t))
#define GBENCH_ARG_NAMES(b, ...) \
	gbench_arg_names((b), (const char *const[]){ __VA_ARGS__ }, \
			 sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

/* Inside a benchmark. */
bool gbench_keep_running(struct gbench_state *st);
bool gbench_keep_running_batch(struct gbench_state *st, int64_t n);  /* may overshoot by n */
int64_t gbench_arg(const struct gbench_state *st, size_t i);
int64_t gbench_iterations_done(const struct gbench_state *st);
void gbench_set_iteration_time(struct gbench_state *st, double seconds);
void gbench_pause_timing(struct gbench_state *st);
void gbench_resume_timing(struct gbench_state *st);
void gbench_counter(struct gbench_state *st, const char *name, double value, unsigned flags);
void gbench_skip_with_error(struct gbench_state *st, const char *msg);
bool gbench_error_occurred(const struct gbench_state *st);
void gbench_set_label(struct gbench_state *st, const char *label);

/* Process-wide. */
enum gbench_profile gbench_current_profile(void);
const char *gbench_profile_name(enum gbench_profile p);
void gbench_add_context(const char *key, const char *value);  /* a key given twice is ignored */
/*
 * Call before gbench_main(): the harness runs with --benchmark_enable_random_interleaving=true
 * by default (an explicit flag wins), so the repetitions of all its benchmarks run shuffled in
 * time rather than back to back, and figures compared by ratio see the same machine load.
 * Google Benchmark still writes each benchmark's repetitions together, with their aggregates,
 * once its last repetition has run; a file's benchmark order is then shuffled. The context key
 * mproc_random_interleaving says "true" or "false".
 */
void gbench_interleave_repetitions(void);

/*
 * gbench_main - parse --profile and pass every --benchmark_* flag through to Google Benchmark,
 * call register_all() (which registers the harness's benchmarks for gbench_current_profile()), run
 * them, and return the exit status: 0 ok, 2 for an unknown flag or profile (one line on
 * stderr naming the valid choices).
 */
int gbench_main(int argc, char **argv, void (*register_all)(void));

#ifdef __cplusplus
}
#endif

#endif /* MPROC_GBENCH_H */
