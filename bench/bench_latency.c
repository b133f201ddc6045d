/*
 * bench_latency.c - round trip of an 8-byte message between two processes.
 *
 * Names: latency/<transport>/placement:<same_core|cross_core>
 *   transport  raw_pipe (two pipes, plain write/read: the floor, as baseline/pipe_rtt),
 *              conn_pipe, conn_stream, conn_seqpacket (a duplex mproc_conn pair); not
 *              framed_pipe, a throughput floor of bench_pipe
 *   placement  both processes on one PU, or on two physical cores (registered only where the
 *              machine has two)
 * Counters: p50_ns, p99_ns, p999_ns over individual round trips (one CLOCK_MONOTONIC sample per
 * iteration), plus samples. The benchmark time is the manual time of each round trip.
 *
 * The benchmark process sends its iteration number; a forked echo process (pinned) sends it
 * back; every reply is checked (length and value). As in CPython, SIGPIPE is ignored and the
 * pairs are opened with sigpipe_ignored: without that promise each pipe send also blocks and
 * unblocks SIGPIPE (two more syscalls per message). Queue back ends report their latency in
 * bench_queue under the same name scheme.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_conn.h"
#include "bench_util.h"

struct lat_case {
	enum bench_transport t;
	enum mproc_topo_placement place;
};

static void bm_latency(struct gbench_state *st, void *arg)
{
	const struct lat_case *c = arg;
	struct bench_samples s = { 0 };
	struct bench_link link;
	const char *err = NULL;
	pid_t pid = -1;
	int pa, pb, r;

	if (bench_pair(c->place, &pa, &pb) < 0) {
		gbench_skip_with_error(st, "placement not available");
		return;
	}
	if (bench_samples_init(&s, (size_t)1 << 21) < 0) {
		gbench_skip_with_error(st, "out of memory");
		return;
	}
	r = bench_link_open(&link, c->t, true);
	if (r < 0) {
		bench_samples_free(&s);
		gbench_skip_with_error(st, mproc_strerror(r));
		return;
	}
	pid = bench_fork(pb, bench_link_echo, &link);
	bench_link_close_b(&link);
	if (pid < 0) {
		err = "fork failed";
		goto out;
	}
	mproc_topo_pin(0, pa);
	err = bench_link_pingpong(st, &link, &s);
out:
	bench_link_close(&link);
	if (pid > 0 && bench_reap(pid, err != NULL) != 0 && !err)
		err = "echo process failed";
	mproc_topo_unpin(bench_topo(), 0);
	if (err)
		gbench_skip_with_error(st, err);
	else
		bench_samples_report(st, &s);
	bench_samples_free(&s);
}

static struct lat_case cases[BENCH_NTRANSPORTS * 2];

static void register_all(void)
{
	int a, b;
	bool cross = bench_pair(MPROC_TOPO_CROSS_CORE, &a, &b) == 0;
	size_t n = 0;

	for (int p = 0; p < 2; p++) {
		if (p == MPROC_TOPO_CROSS_CORE && !cross)
			continue;
		for (int t = 0; t < BENCH_NTRANSPORTS; t++) {
			char name[96];
			struct gbench *g;

			if (t == BENCH_FRAMED_PIPE)
				continue;

			cases[n] = (struct lat_case){ t, p };
			snprintf(name, sizeof(name), "latency/%s/placement:%s",
				 bench_transport_name(t), mproc_topo_placement_name(p));
			g = gbench_register(name, bm_latency, &cases[n++]);
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
