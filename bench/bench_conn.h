/*
 * bench_conn.h - the transports that bench_pipe, bench_latency and bench_placement drive, behind
 * one small interface (header-only, static inline, so each harness stays one .c file).
 *
 * Transports (the second element of every benchmark name):
 *   raw_pipe        pipe2() with plain write(2)/read(2) of fixed-size messages: the floor
 *                   (same pipe capacity as conn_pipe: MPROC_CONN_PIPE_BYTES_DEFAULT)
 *   framed_pipe     the same pipe, each message one writev(2) of an 8-byte length + the
 *                   payload, read with one readv(2) of header + payload as conn_pipe reads
 *                   it: the naive length-prefixed framing on a pipe (bench_pipe only)
 *   conn_pipe       mproc_conn over pipes (framed)
 *   conn_stream     mproc_conn over socketpair(SOCK_STREAM)
 *   conn_seqpacket  mproc_conn over socketpair(SOCK_SEQPACKET)
 *
 * A link is one direction of traffic (sender -> receiver); a duplex link also carries replies.
 * Create before fork(); each process then closes the side it does not use.
 */
#ifndef MPROC_BENCH_CONN_H
#define MPROC_BENCH_CONN_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench_util.h"
#include "internal.h"
#include "mproc/conn.h"

enum bench_transport {
	BENCH_RAW_PIPE,
	BENCH_FRAMED_PIPE,
	BENCH_CONN_PIPE,
	BENCH_CONN_STREAM,
	BENCH_CONN_SEQPACKET,
	BENCH_NTRANSPORTS,
};

static inline const char *bench_transport_name(enum bench_transport t)
{
	static const char *const names[] = {
		"raw_pipe", "framed_pipe", "conn_pipe", "conn_stream", "conn_seqpacket",
	};

	return (unsigned)t < BENCH_NTRANSPORTS ? names[t] : "?";
}

/* Call once in main(): SIGPIPE ignored process-wide, as in CPython, so a dead peer is an
 * -EPIPE the harness reports rather than a killed harness. Inherited by forked children. */
static inline void bench_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

/* Transports that are bare pipes driven by the harness itself, not an mproc_conn. */
static inline bool bench_transport_is_raw(enum bench_transport t)
{
	return t == BENCH_RAW_PIPE || t == BENCH_FRAMED_PIPE;
}

/* Two ends. For raw and framed pipes: ab a->b, ba b->a (duplex only). */
struct bench_link {
	enum bench_transport t;
	struct mproc_conn *ca, *cb;     /* conn transports */
	int ab[2], ba[2];               /* raw/framed pipes: [0] read end, [1] write end */
};

static inline void bench_link_close_a(struct bench_link *l)
{
	mproc_conn_free(l->ca);
	l->ca = NULL;
	mproc__closep(&l->ab[1]);
	mproc__closep(&l->ba[0]);
}

static inline void bench_link_close_b(struct bench_link *l)
{
	mproc_conn_free(l->cb);
	l->cb = NULL;
	mproc__closep(&l->ab[0]);
	mproc__closep(&l->ba[1]);
}

static inline int bench_link_open(struct bench_link *l, enum bench_transport t, bool duplex)
{
	static const enum mproc_conn_transport ct[] = {
		MPROC_CONN_PIPE, MPROC_CONN_PIPE, MPROC_CONN_PIPE, MPROC_CONN_STREAM,
		MPROC_CONN_SEQPACKET,
	};
	/* The harnesses ignore SIGPIPE as CPython does (bench_ignore_sigpipe), so the pipe
	 * transport skips its per-message SIGPIPE guard; raw_pipe has none either. */
	struct mproc_conn_opts o = { .transport = ct[t], .simplex = !duplex,
				     .sigpipe_ignored = true };
	int r;

	memset(l, 0, sizeof(*l));
	l->t = t;
	l->ab[0] = l->ab[1] = l->ba[0] = l->ba[1] = -1;
	if (!bench_transport_is_raw(t)) {
		/* mproc_conn_pair gives (reader, writer) for simplex: a is our sender. */
		return duplex ? mproc_conn_pair(&l->ca, &l->cb, &o) : mproc_conn_pair(&l->cb, &l->ca, &o);
	}
	if (pipe2(l->ab, O_CLOEXEC) < 0)
		return -errno;
	if (duplex && pipe2(l->ba, O_CLOEXEC) < 0) {
		r = -errno;
		bench_link_close_a(l);
		bench_link_close_b(l);
		return r;
	}
	/* The same pipe capacity as conn_pipe (best effort there too), so that raw_pipe,
	 * framed_pipe and conn_pipe differ only by the framing and by conn's own code: the
	 * capacity alone moves 64 KiB throughput. */
	fcntl(l->ab[1], F_SETPIPE_SZ, (int)MPROC_CONN_PIPE_BYTES_DEFAULT);
	if (duplex)
		fcntl(l->ba[1], F_SETPIPE_SZ, (int)MPROC_CONN_PIPE_BYTES_DEFAULT);
	return 0;
}

static inline void bench_link_close(struct bench_link *l)
{
	bench_link_close_a(l);
	bench_link_close_b(l);
}

/* Send len bytes from side a (from_a) or side b. Returns 0 or -errno. */
static inline int bench_link_send(struct bench_link *l, bool from_a, const void *buf, size_t len)
{
	int fd = from_a ? l->ab[1] : l->ba[1];

	if (!bench_transport_is_raw(l->t)) {
		ssize_t n = mproc_conn_send(from_a ? l->ca : l->cb, buf, len);

		return n < 0 ? (int)n : 0;
	}
	if (l->t == BENCH_FRAMED_PIPE) {
		uint64_t hdr = len;
		struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)buf, len } };
		ssize_t n = mproc__iov_xfer(fd, true, iov, len ? 2 : 1);

		return n < 0 ? (int)n : 0;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/*
 * framed_pipe: one message of exactly size bytes, header and payload in one readv(2) (more
 * only when the pipe held less than the whole frame), as conn_pipe's receive does. A header
 * that does not say size is -EBADMSG. Returns size, MPROC_EOF or -errno.
 */
static inline ssize_t bench_framed_read(int fd, void *buf, size_t size)
{
	uint64_t hdr = 0;
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { buf, size } };
	ssize_t n = mproc__iov_xfer(fd, false, iov, size ? 2 : 1);

	if (n < 0)
		return n;
	if (n == 0)
		return MPROC_EOF;
	/* Short: EOF inside the frame. */
	return (size_t)n == sizeof(hdr) + size && hdr == size ? (ssize_t)size : -EBADMSG;
}

/* Receive one message of at most size bytes on side b (at_b) or a. Raw pipes read exactly
 * size bytes (fixed-size messages), framed pipes exactly one frame of size bytes. Returns the
 * length, MPROC_EOF or -errno. */
static inline ssize_t bench_link_recv(struct bench_link *l, bool at_b, void *buf, size_t size)
{
	int fd = at_b ? l->ab[0] : l->ba[0];
	size_t done = 0;

	if (!bench_transport_is_raw(l->t))
		return mproc_conn_recv(at_b ? l->cb : l->ca, buf, size, MPROC_FOREVER);
	if (l->t == BENCH_FRAMED_PIPE)
		return bench_framed_read(fd, buf, size);
	while (done < size) {
		ssize_t n = read(fd, (char *)buf + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return done ? -EBADMSG : MPROC_EOF;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * A payload checksum that runs near memory speed (8 bytes per step), so verifying every
 * message on arrival does not hide the channel's own cost the way a byte-wise FNV would at
 * 1 MiB. Not cryptographic: it catches lost, duplicated, reordered or torn data.
 */
static inline uint64_t bench_fast_sum(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t s0 = 0x9e3779b97f4a7c15ull, s1 = n, w;
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		memcpy(&w, b + i, 8);
		s0 = (s0 ^ w) * 0xff51afd7ed558ccdull;
		memcpy(&w, b + i + 8, 8);
		s1 = (s1 + w) * 0xc4ceb9fe1a85ec53ull + (s1 >> 29);
	}
	for (; i < n; i++)
		s1 = (s1 ^ b[i]) * 0x100000001b3ull;
	return s0 ^ (s1 + (s0 >> 31));
}

/* The far end of bench_link_pingpong (a bench_fork child, arg = the link): echo 8-byte
 * messages from b back to a until EOF. Exits 0 at EOF, 1 on a short or failed transfer. */
static inline int bench_link_echo(void *p)
{
	struct bench_link *l = p;
	uint64_t v;

	bench_link_close_a(l);
	for (;;) {
		ssize_t n = bench_link_recv(l, true, &v, sizeof(v));

		if (n == MPROC_EOF)
			return 0;
		if (n != (ssize_t)sizeof(v) || bench_link_send(l, false, &v, sizeof(v)) < 0)
			return 1;
	}
}

/*
 * bench_link_pingpong - the timed 8-byte round trip over a link whose far end echoes: 100
 * warm-up round trips (page faults, first wake-ups), then one sample and one manual-time
 * iteration per round trip, each reply checked against its sequence number. Returns NULL, or
 * what went wrong (for gbench_skip_with_error). Shared by bench_latency and bench_placement.
 */
static inline const char *bench_link_pingpong(struct gbench_state *st, struct bench_link *link,
					      struct bench_samples *s)
{
	uint64_t seq = 0, v;

	for (int i = 0; i < 100; i++, seq++) {
		v = 0;
		if (bench_link_send(link, true, &seq, sizeof(seq)) < 0 ||
		    bench_link_recv(link, false, &v, sizeof(v)) != sizeof(v) || v != seq)
			return "echo failed during warm-up";
	}
	while (gbench_keep_running(st)) {
		int64_t t0 = bench_now_ns(), dt;

		v = 0;
		if (bench_link_send(link, true, &seq, sizeof(seq)) < 0 ||
		    bench_link_recv(link, false, &v, sizeof(v)) != sizeof(v) || v != seq)
			return "reply lost or corrupt";
		dt = bench_now_ns() - t0;
		seq++;
		bench_samples_add(s, dt);
		gbench_set_iteration_time(st, (double)dt / 1e9);
	}
	return NULL;
}

#endif /* MPROC_BENCH_CONN_H */
