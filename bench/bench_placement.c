/*
 * bench_placement.c - the core-to-core round-trip map, for processes.
 *
 * Names: placement/pipe/from:<a>/to:<b> - one benchmark per ordered pair (a, b) of usable
 * cores, a == b included (the diagonal: two processes time-sharing one PU). a and b are OS PU
 * indexes, one PU per physical core (the first of each core in hwloc's PHYSICAL_FIRST order);
 * the list is capped at 2 cores in smoke, 8 in quick, all usable cores in full.
 * Counters: p50_ns, p99_ns, p999_ns of individual 8-byte round trips over two raw pipes
 * (as baseline/pipe_rtt), plus from_pu and to_pu (the same numbers as the name, so a plotter
 * can build the matrix from counters alone). The process pinned to `from` sends and times;
 * the one pinned to `to` echoes. Every reply is checked.
 * (placement/ring_spin joins when the ring queue lands.)
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_conn.h"
#include "bench_util.h"

#define MAX_PUS 512

struct place_case {
	int from, to;
};

static void bm_place(struct gbench_state *st, void *arg)
{
	const struct place_case *c = arg;
	struct bench_samples s = { 0 };
	struct bench_link link;
	const char *err = NULL;
	pid_t pid;
	int r;

	if (bench_samples_init(&s, (size_t)1 << 21) < 0) {
		gbench_skip_with_error(st, "out of memory");
		return;
	}
	r = bench_link_open(&link, BENCH_RAW_PIPE, true);
	if (r < 0) {
		bench_samples_free(&s);
		gbench_skip_with_error(st, mproc_strerror(r));
		return;
	}
	pid = bench_fork(c->to, bench_link_echo, &link);
	bench_link_close_b(&link);
	if (pid < 0) {
		err = "fork failed";
		goto out;
	}
	if (mproc_topo_pin(0, c->from) < 0) {
		err = "cannot pin";
		goto out;
	}
	err = bench_link_pingpong(st, &link, &s);
out:
	bench_link_close(&link);
	if (pid > 0 && bench_reap(pid, err != NULL) != 0 && !err)
		err = "echo process failed";
	mproc_topo_unpin(bench_topo(), 0);
	if (err) {
		gbench_skip_with_error(st, err);
	} else {
		bench_samples_report(st, &s);
		gbench_counter(st, "from_pu", c->from, GBENCH_DEFAULT);
		gbench_counter(st, "to_pu", c->to, GBENCH_DEFAULT);
	}
	bench_samples_free(&s);
}

static struct place_case *cases;

static void register_all(void)
{
	const struct mproc_topo *t = bench_topo();
	struct mproc_topo_budget budget;
	int pus[MAX_PUS], n, cap;

	if (!t || mproc_topo_budget(t, &budget) < 0)
		return;
	n = mproc_topo_pu_order(t, MPROC_TOPO_PHYSICAL_FIRST, pus, MAX_PUS);
	if (n <= 0)
		return;
	/* PHYSICAL_FIRST lists one PU of each core first. */
	if (budget.usable_cores > 0 && n > budget.usable_cores)
		n = budget.usable_cores;
	switch (gbench_current_profile()) {
	case GBENCH_SMOKE:
		cap = 2;
		break;
	case GBENCH_QUICK:
		cap = 8;
		break;
	default:
		cap = MAX_PUS;
		break;
	}
	if (n > cap)
		n = cap;
	cases = calloc((size_t)n * (size_t)n, sizeof(*cases));
	if (!cases)
		return;
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++) {
			struct place_case *c = &cases[i * n + j];
			char name[96];
			struct gbench *g;

			*c = (struct place_case){ pus[i], pus[j] };
			snprintf(name, sizeof(name), "placement/pipe/from:%d/to:%d", c->from, c->to);
			g = gbench_register(name, bm_place, c);
			gbench_use_manual_time(g);
			gbench_time_unit(g, GBENCH_NS);
		}
	}
}

int main(int argc, char **argv)
{
	bench_ignore_sigpipe();
	return bench_main(argc, argv, register_all);
}
