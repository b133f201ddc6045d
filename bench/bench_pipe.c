/*
 * bench_pipe.c - one-way throughput of a connection between two processes.
 *
 * Names: pipe/<transport>/bytes:<N>/placement:<same_core|cross_core>
 *   transport  raw_pipe, framed_pipe, conn_pipe, conn_stream, conn_seqpacket (bench_conn.h)
 *   N          message size, 64 B ... 1 MiB in powers of 4, and 65528 (64 KiB - 8, the largest
 *              frame of 16 whole pages) for the three pipe transports outside smoke
 *   placement  sender and receiver pinned to one PU (same_core) or to two physical cores
 *              (cross_core); a placement the machine cannot give is not registered.
 * Counters: bytes_per_second, msgs_per_second (payload only, over the manual time).
 *
 * The benchmark process sends; a forked receiver (pinned) receives every message and verifies
 * its length, its sequence number and a checksum of the whole payload, and answers each batch
 * of messages with one status byte over a separate pipe. A batch (about 4 MiB, 8..4096
 * messages) counts as that many Google Benchmark iterations (gbench_keep_running_batch), its
 * manual time from the first send to the receiver's answer, so real_time is the time of one
 * message and covers delivery, not only the writes. A corrupt, lost or reordered message
 * ends the benchmark with an error.
 *
 * raw_pipe, framed_pipe and conn_pipe use pipes of the same capacity
 * (MPROC_CONN_PIPE_BYTES_DEFAULT, asked with F_SETPIPE_SZ on each), so that the capacity is
 * not what differs between them. framed_pipe is raw_pipe with a length prefix:
 * each message one blocking writev(2) of an 8-byte length + the payload, read with one
 * readv(2) of header + payload as conn_pipe reads it, under the same receiver checks: the
 * naive framing (at 64 KiB a frame is 65 544 bytes: 16 full pipe pages and a spill page
 * every other message, the payload 8 bytes off page alignment). framed_pipe / raw_pipe is
 * what that framing costs, conn_pipe / framed_pipe what mproc_conn costs or wins against it:
 * across CPUs conn_pipe first writes with RWF_NOWAIT and then blocks, which waits out a full
 * pipe on the pipe's mutex instead of sleeping (lib/conn.c, conn_reader_elsewhere). The
 * issue's target stays conn_pipe / raw_pipe.
 *
 * Repetitions run randomly interleaved in every profile (gbench_interleave_repetitions:
 * --benchmark_enable_random_interleaving=true unless the flag is given): raw_pipe, framed_pipe
 * and conn_pipe repetitions alternate in time, so the load of a noisy machine falls on all of
 * them alike instead of on whichever ran during a burst (run back to back, raw_pipe's 64 KiB
 * repetitions swung 1.7-4.2 GB/s in one full run). Each benchmark's repetitions and aggregates
 * are still written together; only the order of benchmarks in the file is shuffled.
 *
 * Profiles: smoke runs 64 B and 64 KiB at one placement; quick every size cross_core (or
 * same_core on one core) plus 64 B, 64 KiB and 1 MiB same_core; full every size at both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_conn.h"
#include "bench_util.h"

struct pipe_case {
	enum bench_transport t;
	size_t bytes;
	enum mproc_topo_placement place;
};

struct receiver_arg {
	struct bench_link *link;
	int ack_fd;                     /* write end of the answer pipe */
	size_t bytes, batch;
	uint64_t sum[2];                /* checksums of the two payloads (after the seq word) */
};

static size_t batch_for(size_t bytes)
{
	size_t k = ((size_t)4 << 20) / bytes;

	return k < 8 ? 8 : k > 4096 ? 4096 : k;
}

/* Payload i: buffer i & 1 with the sequence number in its first 8 bytes. */
static int receiver(void *p)
{
	struct receiver_arg *a = p;
	char *buf = malloc(a->bytes);
	uint64_t seq = 0;
	char status = 0;

	bench_link_close_a(a->link);
	if (!buf)
		return 3;
	for (;;) {
		ssize_t n = bench_link_recv(a->link, true, buf, a->bytes);
		uint64_t got;

		if (n == MPROC_EOF)
			break;
		memcpy(&got, buf, sizeof(got));
		if (n != (ssize_t)a->bytes || got != seq ||
		    bench_fast_sum(buf + 8, a->bytes - 8) != a->sum[seq & 1])
			status = 1;
		seq++;
		if (seq % a->batch == 0 || status) {
			if (mproc__write_all(a->ack_fd, &status, 1, MPROC__NO_DEADLINE) != 1 || status)
				break;
		}
	}
	free(buf);
	return status;
}

static void bm_pipe(struct gbench_state *st, void *arg)
{
	const struct pipe_case *c = arg;
	struct bench_link link;
	struct receiver_arg ra = { .link = &link, .bytes = c->bytes, .batch = batch_for(c->bytes) };
	char *payload[2] = { malloc(c->bytes), malloc(c->bytes) };
	int ack[2] = { -1, -1 }, pa, pb, r;
	uint64_t seq = 0, msgs = 0;
	int64_t total_ns = 0;
	pid_t pid = -1;
	const char *err = NULL;

	if (!payload[0] || !payload[1] || pipe2(ack, O_CLOEXEC) < 0) {
		err = "out of memory or fds";
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		for (size_t j = 0; j < c->bytes; j++)
			payload[i][j] = (char)(j * 131 + (size_t)i * 7 + (j >> 8));
		ra.sum[i] = bench_fast_sum(payload[i] + 8, c->bytes - 8);
	}
	if (bench_pair(c->place, &pa, &pb) < 0) {
		err = "placement not available";
		goto out;
	}
	r = bench_link_open(&link, c->t, false);
	if (r < 0) {
		err = mproc_strerror(r);
		goto out;
	}
	ra.ack_fd = ack[1];
	pid = bench_fork(pb, receiver, &ra);
	bench_link_close_b(&link);
	mproc__closep(&ack[1]);
	if (pid < 0) {
		err = "fork failed";
		goto out_link;
	}
	mproc_topo_pin(0, pa);
	while (gbench_keep_running_batch(st, (int64_t)ra.batch)) {
		int64_t t0 = bench_now_ns();
		char status = 1;

		for (size_t i = 0; i < ra.batch; i++, seq++) {
			memcpy(payload[seq & 1], &seq, sizeof(seq));
			if (bench_link_send(&link, true, payload[seq & 1], c->bytes) < 0)
				break;
		}
		if (mproc__read_all(ack[0], &status, 1, MPROC__NO_DEADLINE) != 1 || status) {
			err = "payload verification failed (length, order or checksum)";
			break;
		}
		int64_t dt = bench_now_ns() - t0;

		total_ns += dt;
		msgs += ra.batch;
		gbench_set_iteration_time(st, (double)dt / 1e9);
	}
out_link:
	bench_link_close(&link);
	if (pid > 0 && bench_reap(pid, err != NULL) != 0 && !err)
		err = "receiver failed";
	mproc_topo_unpin(bench_topo(), 0);
out:
	mproc__closep(&ack[0]);
	mproc__closep(&ack[1]);
	free(payload[0]);
	free(payload[1]);
	if (err) {
		gbench_skip_with_error(st, err);
		return;
	}
	if (total_ns > 0) {
		gbench_counter(st, "bytes_per_second", (double)msgs * (double)c->bytes * 1e9 /
				   (double)total_ns, GBENCH_DEFAULT);
		gbench_counter(st, "msgs_per_second", (double)msgs * 1e9 / (double)total_ns,
			       GBENCH_DEFAULT);
	}
}

static struct pipe_case cases[BENCH_NTRANSPORTS * 8 * 2];
static size_t ncases;

static void add_case(enum bench_transport t, size_t bytes, enum mproc_topo_placement p)
{
	char name[128];
	struct pipe_case *c = &cases[ncases++];
	struct gbench *b;

	*c = (struct pipe_case){ t, bytes, p };
	snprintf(name, sizeof(name), "pipe/%s/bytes:%zu/placement:%s", bench_transport_name(t),
		 bytes, mproc_topo_placement_name(p));
	b = gbench_register(name, bm_pipe, c);
	gbench_use_manual_time(b);
	gbench_time_unit(b, GBENCH_US);
}

static void register_all(void)
{
	enum gbench_profile prof = gbench_current_profile();
	int a, b;
	bool cross = bench_pair(MPROC_TOPO_CROSS_CORE, &a, &b) == 0;
	enum mproc_topo_placement main_place = cross ? MPROC_TOPO_CROSS_CORE : MPROC_TOPO_SAME_CORE;

	for (int t = 0; t < BENCH_NTRANSPORTS; t++) {
		for (size_t bytes = 64; bytes <= ((size_t)1 << 20); bytes *= 4) {
			bool edge = bytes == 64 || bytes == 65536 || bytes == ((size_t)1 << 20);

			if (prof == GBENCH_SMOKE) {
				if (bytes == 64 || bytes == 65536)
					add_case(t, bytes, main_place);
				continue;
			}
			add_case(t, bytes, main_place);
			if (cross && (prof == GBENCH_FULL || edge))
				add_case(t, bytes, MPROC_TOPO_SAME_CORE);
		}
		/* 64 KiB - 8: the largest payload whose frame (8-byte length + payload) fits the
		 * 16 pages of a 64 KiB message exactly, so a framed message never spills into a
		 * 17th pipe page. Beside bytes:65536 it shows what the framing's spill page costs
		 * and what a user gains by sending 8 bytes less. Pipes only: a socket has no pages. */
		if (prof != GBENCH_SMOKE && (t == BENCH_RAW_PIPE || t == BENCH_FRAMED_PIPE ||
					     t == BENCH_CONN_PIPE))
			add_case(t, 65536 - 8, main_place);
	}
}

int main(int argc, char **argv)
{
	bench_ignore_sigpipe();
	gbench_interleave_repetitions();
	return bench_main(argc, argv, register_all);
}
