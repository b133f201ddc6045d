/*
 * bench_shimtest.c - a harness that exercises the Google Benchmark C shim (gbench.h) and the
 * samples helpers, built only for the tests: the `unit` test bench/shim runs it with
 * --profile=smoke and checks its JSON (tests/check_bench_json.py) for
 *  - names built from args + ArgNames, with /manual_time stripped: shim/args/size:64/workers:2;
 *  - a rate counter (bytes_per_second) and an average counter (avg_value == 7 exactly);
 *  - percentiles from known samples 1..1000 ns: p50_ns 500, p99_ns 990, p999_ns 999;
 *  - an entry that called gbench_skip_with_error, with its message;
 *  - the machine context keys that bench_main() adds.
 */
#include <stdint.h>
#include <time.h>

#include "bench_util.h"

static void bm_args(struct gbench_state *st, void *arg)
{
	int64_t size = gbench_arg(st, 0), workers = gbench_arg(st, 1);
	int64_t iters = 0;

	while (gbench_keep_running(st)) {
		/* A fixed manual time: the rate counter is then size / 1 us per iteration. */
		gbench_set_iteration_time(st, 1e-6);
		iters++;
	}
	gbench_counter(st, "bytes_per_second", (double)(size * iters), GBENCH_RATE);
	gbench_counter(st, "avg_value", (double)(7 * iters), GBENCH_AVG_ITERATIONS);
	gbench_counter(st, "workers", (double)workers, GBENCH_DEFAULT);
}

static void bm_samples(struct gbench_state *st, void *arg)
{
	struct bench_samples s;

	if (bench_samples_init(&s, 1000) < 0) {
		gbench_skip_with_error(st, "out of memory");
		return;
	}
	while (gbench_keep_running(st))
		;
	/* Known samples, added in reverse so that the report must sort them. */
	for (int64_t v = 1000; v >= 1; v--)
		bench_samples_add(&s, v);
	bench_samples_add(&s, 5000);    /* beyond cap: dropped, not counted */
	bench_samples_report(st, &s);
	gbench_counter(st, "dropped", (double)s.dropped, GBENCH_DEFAULT);
	bench_samples_free(&s);
}

static void bm_error(struct gbench_state *st, void *arg)
{
	gbench_skip_with_error(st, "shimtest: deliberate error");
	while (gbench_keep_running(st))
		;
}

static void register_all(void)
{
	struct gbench *b = gbench_register("shim/args", bm_args, NULL);

	gbench_use_manual_time(b);
	GBENCH_ARGS(b, 64, 2);
	GBENCH_ARGS(b, 4096, 1);
	GBENCH_ARG_NAMES(b, "size", "workers");
	gbench_register("shim/samples", bm_samples, NULL);
	gbench_register("shim/error", bm_error, NULL);
}

int main(int argc, char **argv)
{
	return bench_main(argc, argv, register_all);
}
