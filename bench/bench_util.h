/*
 * bench_util.h - what every harness needs besides the Google Benchmark shim: latency samples
 * and their percentiles, shared memory between the two ends of a measurement, the machine's
 * topology and pinning, children that never outlive the harness, and a main() that records
 * the machine in the JSON context.
 *
 * Timing rules (STYLE.md "Benchmarks"): CLOCK_MONOTONIC int64 ns; setup outside the timed
 * region; cross-process timings go through manual time; every payload is verified.
 */
#ifndef MPROC_BENCH_UTIL_H
#define MPROC_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gbench.h"
#include "topology.h"

/* CLOCK_MONOTONIC in ns. */
int64_t bench_now_ns(void);

/* Latency samples: one int64 ns per round trip (or per batch), preallocated outside the
 * timed loop. Adding beyond cap keeps the first cap samples (counted in `dropped`). */
struct bench_samples {
	int64_t *ns;
	size_t n, cap, dropped;
};
int bench_samples_init(struct bench_samples *s, size_t cap);
/* How many samples a latency figure keeps in the current profile (4 Ki smoke, 128 Ki quick,
 * 1 Mi full): enough for a p999 in every profile, bounded in memory. */
size_t bench_samples_cap(void);
static inline void bench_samples_add(struct bench_samples *s, int64_t ns)
{
	if (s->n < s->cap)
		s->ns[s->n++] = ns;
	else
		s->dropped++;
}
/* Nearest-rank percentile (p in [0,1]) of the samples (sorts them). 0 if empty. */
double bench_samples_pct(struct bench_samples *s, double p);
/* Set counters p50_ns, p99_ns, p999_ns (and samples) on st. */
void bench_samples_report(struct gbench_state *st, struct bench_samples *s);
void bench_samples_free(struct bench_samples *s);

/* Anonymous MAP_SHARED memory, zeroed, inherited by forked children; NULL on failure. */
void *bench_shared_alloc(size_t bytes);
void bench_shared_free(void *p, size_t bytes);

/* The machine, loaded once per harness process (NULL if hwloc failed). */
const struct mproc_topo *bench_topo(void);
/* PUs for a two-process measurement at a placement; -ENODEV where impossible (1 core). */
int bench_pair(enum mproc_topo_placement p, int *a, int *b);
/* The usable CPU budget (>= 1). */
int bench_budget(void);

/*
 * bench_fork - fork a child that pins itself to `pu` (-1: no pinning), dies with the harness
 * (PR_SET_PDEATHSIG SIGKILL + getppid re-check), runs fn(arg) and _exits with its return value.
 * Returns the pid or -errno (-EINVAL without fn). The child _exits 127 if the harness died
 * before PR_SET_PDEATHSIG took hold, 126 if it could not pin itself. bench_reap() waits for it
 * (SIGKILL first if kill is true) and returns its exit status (>= 0), -signal if a signal
 * ended it, or -EINVAL (pid <= 0) / -ECHILD (not our child); -signal and -errno share one
 * range, so test for 0. Children not yet reaped are SIGKILLed and reaped by bench_main's
 * SIGTERM/SIGINT handler.
 */
pid_t bench_fork(int pu, int (*fn)(void *arg), void *arg);
int bench_reap(pid_t pid, bool kill_first);

/* A start gate in shared memory (futex): N parties arrive, all leave together. Reusable
 * round after round by the same N parties (the last to arrive opens the next generation);
 * bench_gate_init() once, before the children are forked. */
struct bench_gate {
	uint32_t arrived;
	uint32_t open;
};
void bench_gate_init(struct bench_gate *g);
void bench_gate_wait(struct bench_gate *g, uint32_t parties);

/* Checksum for payload verification (FNV-1a 64). */
uint64_t bench_checksum(const void *p, size_t n);

/*
 * bench_main - the harness main: records the machine (hwloc cores/PUs, usable budget and what
 * bound it, affinity) in the JSON context, then gbench_main(). Children forked with
 * bench_fork() are killed if the harness receives SIGTERM/SIGINT.
 */
int bench_main(int argc, char **argv, void (*register_all)(void));

#endif /* MPROC_BENCH_UTIL_H */
