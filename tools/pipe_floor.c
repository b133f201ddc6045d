/*
 * pipe_floor.c - what a length prefix costs on a pipe when the reader does no work (issue 5).
 *
 * bench_pipe's framed_pipe / raw_pipe includes its receiver's per-message checks (a checksum of
 * every byte), so the pipe is mostly full and the writer sleeps in every message. This tool
 * moves 64 KiB messages with a reader that only reads: a bare write (raw), one writev of an
 * 8-byte length + payload read with one readv (framed, as mproc_conn does), and the length as a
 * write of its own before the payload (split), and framed with pwritev2(RWF_NOWAIT) first and
 * the rest blocking (nowait, mproc_conn's send when the reader is on another CPU), for pipes
 * of 64 KiB, 256 KiB (the capacity mproc_conn asks for) and 1 MiB. The writer runs on CPU 0,
 * the reader on the CPU given.
 * Rounds cycle through every size and mode in turn; the figure is the median of the rounds.
 *
 *   build/tools/pipe_floor [reader_cpu [messages [rounds]]]     (default 1 4000 7)
 *   build/tools/pipe_floor --version
 *
 * Exit status: 0, 1 (a pipe or child failed), 2 (bad usage: one line on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/version.h"

#define MSG (64 * 1024)
#define MAX_ROUNDS 64

enum mode { RAW, FRAMED, SPLIT, NOWAIT, NMODES };
static const char *const mode_names[NMODES] = { "raw", "framed", "split", "nowait" };
static const int pipe_sizes[] = { 64 << 10, 256 << 10, 1 << 20 };
#define NSIZES (int)(sizeof(pipe_sizes) / sizeof(pipe_sizes[0]))

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/* All of the iovecs (mproc__iov_xfer); 0 or -errno, -EPIPE for EOF before the end. */
static int xfer(bool out, int fd, struct iovec *iov, int cnt)
{
	size_t want = 0;
	ssize_t n;

	for (int i = 0; i < cnt; i++)
		want += iov[i].iov_len;
	n = mproc__iov_xfer(fd, out, iov, cnt);
	return n < 0 ? (int)n : (size_t)n < want ? -EPIPE : 0;
}

/* mproc_conn's send across CPUs: pwritev2(RWF_NOWAIT), then the rest blocking. 0 or -errno. */
static int nowait_first(int fd, struct iovec *v)
{
	struct iovec *iov = v;
	int cnt = 2;
	ssize_t n = pwritev2(fd, iov, cnt, -1, RWF_NOWAIT);

	if (n < 0 && errno != EAGAIN)
		return -errno;
	if (n > 0)
		mproc__iov_advance(&iov, &cnt, (size_t)n);
	return cnt > 0 ? xfer(true, fd, iov, cnt) : 0;
}

/* One run: n messages; bytes per second, or a negative errno. */
static double run(enum mode m, int pipe_bytes, int n, int reader_cpu)
{
	char *buf = malloc(MSG);
	uint64_t len = MSG;
	int p[2], status, r = 0;
	int64_t t0, dt;
	pid_t pid;

	if (!buf || pipe2(p, O_CLOEXEC) < 0) {
		free(buf);
		return -ENOMEM;
	}
	memset(buf, 1, MSG);
	fcntl(p[1], F_SETPIPE_SZ, pipe_bytes);
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		if (pin(reader_cpu) < 0)
			_exit(3);
		for (int i = 0; i < n; i++) {
			struct iovec v[2] = { { &len, sizeof(len) }, { buf, MSG } };

			if (xfer(false, p[0], m == RAW ? v + 1 : v, m == RAW ? 1 : 2) < 0)
				_exit(4);
		}
		_exit(0);
	}
	close(p[0]);
	if (pid < 0 || pin(0) < 0) {
		close(p[1]);
		free(buf);
		return pid < 0 ? -EAGAIN : -EINVAL;
	}
	t0 = now_ns();
	for (int i = 0; i < n && r == 0; i++) {
		struct iovec v[2] = { { &len, sizeof(len) }, { buf, MSG } };

		if (m == RAW)
			r = xfer(true, p[1], v + 1, 1);
		else if (m == FRAMED)
			r = xfer(true, p[1], v, 2);
		else if (m == SPLIT && (r = xfer(true, p[1], v, 1)) == 0)
			r = xfer(true, p[1], v + 1, 1);
		else if (m == NOWAIT)
			r = nowait_first(p[1], v);
	}
	close(p[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	dt = now_ns() - t0;
	free(buf);
	if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return r < 0 ? r : -ECHILD;
	return (double)n * MSG / ((double)dt * 1e-9);
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static bool arg_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

int main(int argc, char **argv)
{
	static double bps[NSIZES][NMODES][MAX_ROUNDS];
	int cpu = 1, n = 4000, rounds = 7;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("pipe_floor (mproc) %d.%d.%d\n", MPROC_VERSION_MAJOR, MPROC_VERSION_MINOR,
		       MPROC_VERSION_PATCH);
		return 0;
	}
	if (argc > 4 || (argc > 1 && !arg_int(argv[1], 0, CPU_SETSIZE - 1, &cpu)) ||
	    (argc > 2 && !arg_int(argv[2], 1, 1000000, &n)) ||
	    (argc > 3 && !arg_int(argv[3], 1, MAX_ROUNDS, &rounds))) {
		fprintf(stderr, "pipe_floor: bad arguments (usage: pipe_floor [reader_cpu 0..%d "
			"[messages 1..1000000 [rounds 1..%d]]])\n", CPU_SETSIZE - 1, MAX_ROUNDS);
		return 2;
	}
	for (int k = 0; k < rounds; k++) {
		for (int s = 0; s < NSIZES; s++) {
			for (int m = 0; m < NMODES; m++) {
				bps[s][m][k] = run((enum mode)m, pipe_sizes[s], n, cpu);
				if (bps[s][m][k] < 0) {
					fprintf(stderr, "pipe_floor: %s: %s\n", mode_names[m],
						strerror((int)-bps[s][m][k]));
					return 1;
				}
			}
		}
	}
	printf("reader on CPU %d (writer on CPU 0), %d x 64 KiB, median of %d rounds\n", cpu, n,
	       rounds);
	for (int s = 0; s < NSIZES; s++) {
		double med[NMODES];

		for (int m = 0; m < NMODES; m++) {
			qsort(bps[s][m], (size_t)rounds, sizeof(double), cmpd);
			med[m] = bps[s][m][rounds / 2];
		}
		printf("pipe %4d KiB: raw %5.2f GB/s  framed %5.2f (x%.3f)  split %5.2f (x%.3f)  "
		       "nowait %5.2f (x%.3f)\n", pipe_sizes[s] >> 10, med[RAW] / 1e9,
		       med[FRAMED] / 1e9, med[FRAMED] / med[RAW], med[SPLIT] / 1e9,
		       med[SPLIT] / med[RAW], med[NOWAIT] / 1e9, med[NOWAIT] / med[RAW]);
	}
	return 0;
}
