/*
 * test_conn.c - semantics and fault tests of mproc_conn (conn.h). Every body runs once per
 * transport: conn/<pipe|stream|seqpacket>/<case>.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn_frame.h"
#include "internal.h"
#include "mproc.h"
#include "tap.h"

#define N_ELEM(x) (sizeof(x) / sizeof((x)[0]))

static const enum mproc_conn_transport transports[] = {
	MPROC_CONN_PIPE, MPROC_CONN_STREAM, MPROC_CONN_SEQPACKET,
};

static enum mproc_conn_transport tr_of(void *arg)
{
	return *(const enum mproc_conn_transport *)arg;
}

static void pair_or_abort(void *arg, struct mproc_conn **a, struct mproc_conn **b, bool simplex)
{
	struct mproc_conn_opts o = { .transport = tr_of(arg), .simplex = simplex };

	ASSERT_OK(mproc_conn_pair(a, b, &o));
}

static void fill(void *p, size_t n, uint32_t seed)
{
	unsigned char *b = p;
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (unsigned char)(x >> 16);
	}
}

static pid_t fork_or_abort(void)
{
	pid_t pid = fork();

	ASSERT(pid >= 0);
	return pid;
}

static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Child: echo every message back until EOF. Exit 0 on a clean EOF. */
static _Noreturn void echo_child(struct mproc_conn *c)
{
	for (;;) {
		void *m = NULL;
		ssize_t n = mproc_conn_recv_alloc(c, &m, MPROC_FOREVER);

		if (n == MPROC_EOF)
			_exit(0);
		if (n < 0)
			_exit(10);
		if (mproc_conn_send(c, m, (size_t)n) != n)
			_exit(11);
		free(m);
	}
}

static void t_echo(void *arg)
{
	static const size_t sizes[] = {
		0, 1, 4095, 4096, 4097, 65535, 65536, 65537, 16u << 20,
	};
	struct mproc_conn *a, *b;
	pid_t pid;

	pair_or_abort(arg, &a, &b, false);
	pid = fork_or_abort();
	if (pid == 0) {
		mproc_conn_free(a);
		echo_child(b);
	}
	mproc_conn_free(b);
	for (size_t i = 0; i < N_ELEM(sizes); i++) {
		size_t n = sizes[i];
		char *out = malloc(n + 1), *in = NULL;

		ASSERT(out);
		fill(out, n, (uint32_t)i);
		CHECK_EQ(mproc_conn_send(a, out, n), n);
		ssize_t got = mproc_conn_recv_alloc(a, (void **)&in, 30);
		CHECK_EQ(got, n);
		if (got == (ssize_t)n)
			CHECK_MEM_EQ(in, out, n);
		/* Also into a caller buffer of exactly the right size. */
		CHECK_EQ(mproc_conn_send(a, out, n), n);
		char *in2 = malloc(n + 1);
		CHECK_EQ(mproc_conn_recv(a, in2, n, MPROC_FOREVER), n);
		CHECK_MEM_EQ(in2, out, n);
		free(in2);
		/* And into a larger one, twice in a row (the pipe's one-readv path; two echoes
		 * in flight only where any pipe holds one: a user over pipe-user-pages-soft gets
		 * 8 KiB pipes). */
		in2 = malloc(n + 70000);
		int twice = n <= 4097 ? 2 : 1;
		for (int k = 0; k < twice; k++)
			CHECK_EQ(mproc_conn_send(a, out, n), n);
		for (int k = 0; k < twice; k++) {
			memset(in2, 0, n);
			CHECK_EQ(mproc_conn_recv(a, in2, n + 70000, MPROC_FOREVER), n);
			CHECK_MEM_EQ(in2, out, n);
		}
		free(in2);
		free(in);
		free(out);
	}
	mproc_conn_free(a);
	CHECK_EQ(reap(pid), 0);
}

static void t_empty(void *arg)
{
	struct mproc_conn *a, *b;
	char buf[8] = "xxxxxxx";

	pair_or_abort(arg, &a, &b, false);
	CHECK_EQ(mproc_conn_send(a, NULL, 0), 0);
	CHECK_EQ(mproc_conn_send(a, "", 0), 0);
	CHECK_EQ(mproc_conn_send(a, "z", 1), 1);
	CHECK_EQ(mproc_conn_send(a, NULL, 0), 0);
	CHECK_EQ(mproc_conn_recv(b, NULL, 0, 1), 0);            /* never merged */
	CHECK_EQ(mproc_conn_recv(b, buf, sizeof(buf), MPROC_FOREVER), 0);
	CHECK_EQ(mproc_conn_recv(b, buf, sizeof(buf), 1), 1);
	CHECK_EQ(buf[0], 'z');
	void *p = NULL;
	CHECK_EQ(mproc_conn_recv_alloc(b, &p, 1), 0);
	CHECK(p != NULL);
	free(p);
	CHECK_EQ(mproc_conn_poll(b, 0), 0);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

static void t_small_buffer(void *arg)
{
	struct mproc_conn *a, *b;
	char out[1000], in[1000];

	pair_or_abort(arg, &a, &b, false);
	fill(out, sizeof(out), 7);
	CHECK_EQ(mproc_conn_send(a, out, sizeof(out)), sizeof(out));
	CHECK_EQ(mproc_conn_send(a, "next", 4), 4);
	CHECK_ERR(mproc_conn_recv(b, in, 10, MPROC_FOREVER), -EMSGSIZE);
	CHECK_ERR(mproc_conn_recv(b, in, 999, 1), -EMSGSIZE);
	CHECK_ERR(mproc_conn_recv(b, NULL, 0, MPROC_FOREVER), -EMSGSIZE);
	CHECK_EQ(mproc_conn_poll(b, 0), 1);
	CHECK_EQ(mproc_conn_recv(b, in, sizeof(in), 1), sizeof(out));   /* kept, whole */
	CHECK_MEM_EQ(in, out, sizeof(out));
	CHECK_EQ(mproc_conn_recv(b, in, sizeof(in), 1), 4);
	CHECK_MEM_EQ(in, "next", 4);
	/* Again with the blocking receive, whose first read takes bytes of later frames. */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(mproc_conn_send(a, out, sizeof(out) - (size_t)i * 300), sizeof(out) - i * 300);
	CHECK_ERR(mproc_conn_recv(b, in, 500, MPROC_FOREVER), -EMSGSIZE);
	for (int i = 0; i < 3; i++) {
		memset(in, 0, sizeof(in));
		CHECK_EQ(mproc_conn_recv(b, in, sizeof(in), MPROC_FOREVER), sizeof(out) - i * 300);
		CHECK_MEM_EQ(in, out, sizeof(out) - (size_t)i * 300);
	}
	CHECK_EQ(mproc_conn_poll(b, 0), 0);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

static void t_poll(void *arg)
{
	struct mproc_conn *a, *b;
	char buf[16];
	double t0;

	pair_or_abort(arg, &a, &b, false);
	CHECK_EQ(mproc_conn_poll(b, 0), 0);
	t0 = tap_now();
	CHECK_EQ(mproc_conn_poll(b, 0.05), 0);
	CHECK_CMP(tap_now() - t0, >=, 0.05);
	CHECK_CMP(tap_now() - t0, <, 0.05 + 0.1 * tap_timeout_mult());
	t0 = tap_now();
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 0.05), -ETIMEDOUT);
	CHECK_CMP(tap_now() - t0, >=, 0.05);
	CHECK_CMP(tap_now() - t0, <, 0.05 + 0.1 * tap_timeout_mult());
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 0), -ETIMEDOUT);
	CHECK_EQ(mproc_conn_send(a, "hello", 5), 5);
	CHECK_EQ(mproc_conn_poll(b, 0), 1);
	CHECK_EQ(mproc_conn_poll(b, MPROC_FOREVER), 1);                 /* consumes nothing */
	CHECK_EQ(mproc_conn_recv(b, buf, sizeof(buf), 0), 5);
	CHECK_MEM_EQ(buf, "hello", 5);
	CHECK_EQ(mproc_conn_poll(b, 0), 0);
	CHECK_ERR(mproc_conn_poll(b, -2), -EINVAL);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 0.0 / 0.0), -EINVAL);
	mproc_conn_free(a);
	CHECK_EQ(mproc_conn_poll(b, 1), 1);                             /* EOF is readable */
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 1), MPROC_EOF);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 1), MPROC_EOF);
	mproc_conn_free(b);
}

/* A partial header for a pipe/stream stays buffered across a timeout. */
static void t_partial_header(void *arg)
{
	struct mproc_conn *a, *b;
	unsigned char hdr[MPROC__CONN_HDR_SIZE];
	char buf[8];

	if (tr_of(arg) == MPROC_CONN_SEQPACKET)
		tap_skip("packets arrive whole");
	pair_or_abort(arg, &a, &b, false);
	mproc__conn_make_header(hdr, 3, 0);
	CHECK_EQ(mproc_conn_write(a, hdr, 5), 5);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 0.02), -ETIMEDOUT);
	CHECK_EQ(mproc_conn_write(a, hdr + 5, 3), 3);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 0.02), -ETIMEDOUT);
	CHECK_EQ(mproc_conn_write(a, "abc", 3), 3);
	CHECK_EQ(mproc_conn_recv(b, buf, sizeof(buf), 1), 3);
	CHECK_MEM_EQ(buf, "abc", 3);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

static void t_simplex(void *arg)
{
	struct mproc_conn *r, *w;
	char buf[8];

	pair_or_abort(arg, &r, &w, true);
	CHECK_ERR(mproc_conn_send(r, "x", 1), -EBADF);
	CHECK_ERR(mproc_conn_write(r, "x", 1), -EBADF);
	CHECK_ERR(mproc_conn_recv(w, buf, sizeof(buf), 0), -EBADF);
	CHECK_ERR(mproc_conn_poll(w, 0), -EBADF);
	CHECK_EQ(mproc_conn_fileno(w), -1);
	CHECK_EQ(mproc_conn_send(w, "ok", 2), 2);
	CHECK_EQ(mproc_conn_recv(r, buf, sizeof(buf), 1), 2);
	mproc_conn_free(w);
	CHECK_ERR(mproc_conn_recv(r, buf, sizeof(buf), 1), MPROC_EOF);
	mproc_conn_free(r);
}

static void t_bad_input(void *arg)
{
	struct mproc_conn *a, *b;
	struct mproc_conn_opts o = { .transport = tr_of(arg), .max_msg = 1000 };
	char buf[16];
	void *p = NULL;
	size_t nf = 1;
	int fds[1];

	CHECK_ERR(mproc_conn_pair(NULL, &b, &o), -EINVAL);
	CHECK_ERR(mproc_conn_pair(&a, &b, &(struct mproc_conn_opts){ .transport = 9 }), -EINVAL);
	CHECK_ERR(mproc_conn_pair(&a, &b,
				  &(struct mproc_conn_opts){ .max_msg = (size_t)1 << 33 }),
		  -EINVAL);
	ASSERT_OK(mproc_conn_pair(&a, &b, &o));
	CHECK_ERR(mproc_conn_send(NULL, "x", 1), -EINVAL);
	CHECK_ERR(mproc_conn_send(a, NULL, 1), -EINVAL);
	CHECK_ERR(mproc_conn_send(a, buf, (size_t)-1), -EMSGSIZE);
	CHECK_ERR(mproc_conn_send(a, buf, 1001), -EMSGSIZE);
	CHECK_ERR(mproc_conn_recv(NULL, buf, 1, 0), -EINVAL);
	CHECK_ERR(mproc_conn_recv(b, NULL, 1, 0), -EINVAL);
	CHECK_ERR(mproc_conn_recv(b, buf, (size_t)-1, 0), -EINVAL);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), -0.5), -EINVAL);
	CHECK_ERR(mproc_conn_recv_alloc(b, NULL, 0), -EINVAL);
	CHECK_ERR(mproc_conn_recv_fds(b, buf, sizeof(buf), NULL, &nf, 0), -EINVAL);
	CHECK_ERR(mproc_conn_recv_fds(b, buf, sizeof(buf), fds, NULL, 0), -EINVAL);
	CHECK_ERR(mproc_conn_send_fds(a, "x", 1, NULL, 1), -EINVAL);
	CHECK_ERR(mproc_conn_send_fds(a, "x", 1, (int[]){ -1 }, 1), -EINVAL);
	CHECK_ERR(mproc_conn_send_fds(a, "x", 1, (int[]){ 0 }, 0), -EINVAL);
	CHECK_ERR(mproc_conn_send_fds(a, "x", 1, (int[]){ 0 }, MPROC_CONN_MAX_FDS + 1), -EINVAL);
	CHECK_ERR(mproc_conn_read(b, NULL, 1, 0), -EINVAL);
	CHECK_ERR(mproc_conn_read(b, buf, 0, 0), -EINVAL);
	CHECK_EQ(mproc_conn_poll(b, 0), 0);                     /* nothing was sent */
	/* A frame over the receiver's maximum (a peer with a larger one) is refused before any
	 * allocation, and stays refused. */
	unsigned char hdr[MPROC__CONN_HDR_SIZE];
	mproc__conn_make_header(hdr, 0x7fffffff, 0);
	CHECK_EQ(mproc_conn_write(a, hdr, sizeof(hdr)), sizeof(hdr));
	CHECK_ERR(mproc_conn_recv_alloc(b, &p, 1), -EMSGSIZE);
	CHECK(p == NULL);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 1), -EMSGSIZE);
	mproc_conn_free(a);
	mproc_conn_free(b);
	mproc_conn_free(NULL);
}

static void t_malformed(void *arg)
{
	struct mproc_conn *a, *b;
	char buf[16];

	pair_or_abort(arg, &a, &b, false);
	CHECK_EQ(mproc_conn_write(a, "GET / HTTP/1.0\r\n", 16), 16);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 1), -EBADMSG);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 1), -EBADMSG);  /* stays broken */
	mproc_conn_free(a);
	mproc_conn_free(b);
}

static void t_closed_peer(void *arg)
{
	struct mproc_conn *a, *b;
	char buf[16];

	pair_or_abort(arg, &a, &b, false);
	CHECK_EQ(mproc_conn_send(b, "last", 4), 4);
	mproc_conn_free(b);
	CHECK_EQ(mproc_conn_recv(a, buf, sizeof(buf), 1), 4);          /* queued data first */
	CHECK_ERR(mproc_conn_recv(a, buf, sizeof(buf), 1), MPROC_EOF);
	CHECK_ERR(mproc_conn_send(a, "x", 1), -EPIPE);                  /* and no SIGPIPE */
	memset(buf, 'y', sizeof(buf));
	CHECK_ERR(mproc_conn_send(a, buf, sizeof(buf)), -EPIPE);
	mproc_conn_free(a);

	/* A child holding the peer exits: EOF once every copy is closed. */
	pair_or_abort(arg, &a, &b, false);
	pid_t pid = fork_or_abort();
	if (pid == 0) {
		mproc_conn_free(a);
		mproc_conn_send(b, "bye", 3);
		_exit(0);
	}
	mproc_conn_free(b);
	CHECK_EQ(mproc_conn_recv(a, buf, sizeof(buf), 10), 3);
	CHECK_ERR(mproc_conn_recv(a, buf, sizeof(buf), 10), MPROC_EOF);
	CHECK_EQ(reap(pid), 0);
	mproc_conn_free(a);
}

/* With opts.sigpipe_ignored and SIGPIPE ignored (as CPython runs), a closed peer still gives
 * -EPIPE; without the promise, SIGPIPE stays unblocked-and-default and is never raised. */
static void t_sigpipe_ignored(void *arg)
{
	struct mproc_conn_opts o = { .transport = tr_of(arg), .sigpipe_ignored = true };
	struct mproc_conn *a, *b;
	sigset_t pend;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_OK(mproc_conn_pair(&a, &b, &o));
	mproc_conn_free(b);
	CHECK_ERR(mproc_conn_send(a, "x", 1), -EPIPE);
	CHECK_ERR(mproc_conn_write(a, "x", 1), -EPIPE);
	mproc_conn_free(a);
	signal(SIGPIPE, SIG_DFL);
	/* The default guard leaves no SIGPIPE pending behind it. */
	ASSERT_OK(mproc_conn_pair(&a, &b, &(struct mproc_conn_opts){ .transport = tr_of(arg) }));
	mproc_conn_free(b);
	CHECK_ERR(mproc_conn_send(a, "x", 1), -EPIPE);
	sigpending(&pend);
	CHECK(!sigismember(&pend, SIGPIPE));
	mproc_conn_free(a);
}

/* 8 processes x 1000 random-size messages on one shared endpoint; every message arrives whole,
 * its checksum holds and each producer's sequence is in order. */
#define NPROC 8
#define NMSG 1000
struct msg_head {
	uint32_t proc, seq, len;
	uint64_t sum;
};

static void t_shared_senders(void *arg)
{
	struct mproc_conn *a, *b;
	pid_t pids[NPROC];
	uint32_t next[NPROC] = { 0 };
	size_t cap = 20000;
	char *buf = malloc(cap);

	ASSERT(buf);
	pair_or_abort(arg, &a, &b, false);
	for (int p = 0; p < NPROC; p++) {
		pids[p] = fork_or_abort();
		if (pids[p] == 0) {
			uint32_t x = (uint32_t)p * 7919u + 1;

			mproc_conn_free(b);
			for (uint32_t s = 0; s < NMSG; s++) {
				struct msg_head h;
				size_t len;

				x = x * 1103515245u + 12345u;
				len = sizeof(h) + (x >> 8) % (s % 10 == 0 ? cap - sizeof(h) : 300);
				memset(&h, 0, sizeof(h));     /* padding too: it is sent */
				h.proc = (uint32_t)p;
				h.seq = s;
				h.len = (uint32_t)len;
				fill(buf + sizeof(h), len - sizeof(h), x);
				h.sum = mproc__fnv1a64(buf + sizeof(h), len - sizeof(h));
				memcpy(buf, &h, sizeof(h));
				if (mproc_conn_send(a, buf, len) != (ssize_t)len)
					_exit(1);
			}
			_exit(0);
		}
	}
	mproc_conn_free(a);
	int bad = 0;
	for (int i = 0; i < NPROC * NMSG; i++) {
		struct msg_head h;
		ssize_t n = mproc_conn_recv(b, buf, cap, i % 2 ? 30 : MPROC_FOREVER);

		if (n < (ssize_t)sizeof(h)) {
			CHECK_OK(n);
			tap_diag("message %d: %zd", i, n);
			bad++;
			break;
		}
		memcpy(&h, buf, sizeof(h));
		if (h.proc >= NPROC || h.len != (size_t)n || h.seq != next[h.proc] ||
		    h.sum != mproc__fnv1a64(buf + sizeof(h), (size_t)n - sizeof(h))) {
			bad++;
			break;
		}
		next[h.proc]++;
	}
	CHECK_EQ(bad, 0);
	for (int p = 0; p < NPROC; p++) {
		CHECK_EQ(next[p], NMSG);
		CHECK_EQ(reap(pids[p]), 0);
	}
	if (!bad)
		CHECK_ERR(mproc_conn_recv(b, buf, cap, 10), MPROC_EOF);
	mproc_conn_free(b);
	free(buf);
}

/* EINTR storm: SIGUSR1 every 10 ms, handler without SA_RESTART, during send and recv. */
static volatile sig_atomic_t storm_hits;

static void storm_handler(int sig)
{
	storm_hits++;
}

static void t_eintr_storm(void *arg)
{
	struct mproc_conn *a, *b;
	struct sigaction sa = { .sa_handler = storm_handler };  /* no SA_RESTART */
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { { 0, 10000000 }, { 0, 10000000 } };
	timer_t timer;
	const size_t big = 4u << 20;
	char *out = malloc(big), *in = malloc(big);
	pid_t pid;

	ASSERT(out && in);
	pair_or_abort(arg, &a, &b, false);
	pid = fork_or_abort();
	if (pid == 0) {
		/* Echo slowly, so the parent blocks in send and recv while signals land. */
		mproc_conn_free(a);
		for (;;) {
			void *m = NULL;
			ssize_t n = mproc_conn_recv_alloc(b, &m, MPROC_FOREVER);

			if (n == MPROC_EOF)
				_exit(0);
			if (n < 0)
				_exit(10);
			usleep(3000);
			if (mproc_conn_send(b, m, (size_t)n) != n)
				_exit(11);
			free(m);
		}
	}
	mproc_conn_free(b);
	sigemptyset(&sa.sa_mask);
	ASSERT(sigaction(SIGUSR1, &sa, NULL) == 0);
	ASSERT(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0);
	ASSERT(timer_settime(timer, 0, &its, NULL) == 0);
	for (uint32_t i = 0; i < 40; i++) {
		size_t n = i % 8 == 0 ? big : (i * 7919u) % 70000;

		fill(out, n, i);
		CHECK_EQ(mproc_conn_send(a, out, n), n);
		CHECK_EQ(mproc_conn_recv(a, in, big, 30), n);
		CHECK(memcmp(in, out, n) == 0);
	}
	for (int i = 0; i < 3; i++) {
		double t0 = tap_now();

		CHECK_ERR(mproc_conn_recv(a, in, big, 0.1), -ETIMEDOUT);
		CHECK_CMP(tap_now() - t0, >=, 0.1);
		CHECK_CMP(tap_now() - t0, <, 0.1 + 0.1 * tap_timeout_mult());
		t0 = tap_now();
		CHECK_EQ(mproc_conn_poll(a, 0.1), 0);
		CHECK_CMP(tap_now() - t0, >=, 0.1);
	}
	timer_delete(timer);
	signal(SIGUSR1, SIG_IGN);
	CHECK_CMP(storm_hits, >, 10);
	mproc_conn_free(a);
	CHECK_EQ(reap(pid), 0);
	free(out);
	free(in);
}

/* ---- fd passing --------------------------------------------------------------------------- */

static void t_fds(void *arg)
{
	struct mproc_conn *a, *b;
	int p[2], hi, got[4];
	size_t nf;
	char buf[16];

	pair_or_abort(arg, &a, &b, false);
	if (tr_of(arg) == MPROC_CONN_PIPE) {
		CHECK_ERR(mproc_conn_send_fds(a, "x", 1, (int[]){ 0 }, 1), -EOPNOTSUPP);
		mproc_conn_free(a);
		mproc_conn_free(b);
		return;
	}
	ASSERT(pipe2(p, O_CLOEXEC) == 0);
	hi = fcntl(p[1], F_DUPFD_CLOEXEC, 300);                 /* an fd above 256 */
	ASSERT(hi >= 300);
	CHECK_EQ(mproc_conn_send_fds(a, "fd", 2, (int[]){ hi, p[0] }, 2), 2);
	CHECK_EQ(mproc_conn_send(a, "plain", 5), 5);
	/* A plain receive, or too little room for the fds: the message stays queued. */
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 1), -EMSGSIZE);
	nf = 1;
	CHECK_ERR(mproc_conn_recv_fds(b, buf, sizeof(buf), got, &nf, 1), -EMSGSIZE);
	nf = 4;
	CHECK_EQ(mproc_conn_recv_fds(b, buf, sizeof(buf), got, &nf, 1), 2);
	CHECK_EQ(nf, 2);
	CHECK_MEM_EQ(buf, "fd", 2);
	CHECK(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	CHECK_EQ(write(got[0], "!", 1), 1);                     /* the received write end */
	CHECK_EQ(read(got[1], buf, 1), 1);                      /* the received read end */
	CHECK_EQ(buf[0], '!');
	nf = 4;
	CHECK_EQ(mproc_conn_recv_fds(b, buf, sizeof(buf), got + 2, &nf, 1), 5);
	CHECK_EQ(nf, 0);
	close(got[0]);
	close(got[1]);
	/* Received fds may themselves be numbered above 256. */
	int dummy[260];
	int nd = 0;
	while (nd < 260 && (dummy[nd] = dup(0)) >= 0 && dummy[nd] < 300)
		nd++;
	if (nd < 260 && dummy[nd] >= 0)
		nd++;
	CHECK_EQ(mproc_conn_send_fds(a, NULL, 0, (int[]){ p[1] }, 1), 0);
	nf = 1;
	CHECK_EQ(mproc_conn_recv_fds(b, NULL, 0, got, &nf, 1), 0);
	CHECK_EQ(nf, 1);
	CHECK_CMP(got[0], >, 256);
	close(got[0]);
	for (int i = 0; i < nd; i++)
		close(dummy[i]);
	/* Closing an endpoint closes fds that were received but not handed out. */
	CHECK_EQ(mproc_conn_send_fds(a, "x", 1, (int[]){ hi }, 1), 1);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 1), -EMSGSIZE);
	close(p[0]);
	close(p[1]);
	close(hi);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* Raw sendmsg with a header whose fd count does not match the ancillary data. */
static void send_raw_fds(int sock, unsigned hdr_nfds, const int *fds, size_t nfds)
{
	unsigned char hdr[MPROC__CONN_HDR_SIZE];
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { hdr, sizeof(hdr) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	mproc__conn_make_header(hdr, 0, hdr_nfds);
	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf.buf, 0, sizeof(cbuf.buf));  /* the kernel reads the padding too */
		m.msg_control = cbuf.buf;
		m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	CHECK_EQ(sendmsg(sock, &m, MSG_NOSIGNAL), sizeof(hdr));
}

static void t_fds_mismatch(void *arg)
{
	static const struct {
		unsigned hdr_nfds;
		size_t sent;
	} cases[] = { { 2, 0 }, { 3, 1 }, { 1, 3 }, { 0, 2 } };

	if (tr_of(arg) == MPROC_CONN_PIPE)
		tap_skip("pipes carry no fds");
	for (size_t i = 0; i < N_ELEM(cases); i++) {
		struct mproc_conn *a, *b;
		int got[8], nfd_before = tap_count_fds();
		size_t nf = 8;
		char buf[4];

		pair_or_abort(arg, &a, &b, false);
		nfd_before = tap_count_fds();
		send_raw_fds(mproc_conn_fileno(a), cases[i].hdr_nfds, (int[]){ 0, 1, 2 },
			     cases[i].sent);
		CHECK_ERR(mproc_conn_recv_fds(b, buf, sizeof(buf), got, &nf, 1), -EBADMSG);
		CHECK_EQ(nf, 0);
		CHECK_EQ(tap_count_fds(), nfd_before);          /* whatever arrived was closed */
		mproc_conn_free(a);
		mproc_conn_free(b);
	}
}

/* The receiver cannot install the fds (RLIMIT_NOFILE): MSG_CTRUNC -> -EBADMSG, no leak. */
static void t_fds_ctrunc(void *arg)
{
	struct mproc_conn *a, *b;
	struct rlimit old, lim;
	int got[4];
	size_t nf = 4;
	char buf[4];

	if (tr_of(arg) == MPROC_CONN_PIPE)
		tap_skip("pipes carry no fds");
	pair_or_abort(arg, &a, &b, false);
	CHECK_EQ(mproc_conn_send_fds(a, "x", 1, (int[]){ 0, 1, 2 }, 3), 1);
	ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
	lim = old;
	pid_t pid = fork_or_abort();
	if (pid == 0) {
		/* In a child, so the tight limit does not disturb the harness. */
		int before;
		ssize_t r;

		mproc_conn_free(a);
		int lowest = dup(0);                    /* the lowest free fd number */
		if (lowest < 0)
			_exit(19);
		close(lowest);
		lim.rlim_cur = (rlim_t)lowest + 2;      /* room for fewer than 3 more */
		if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
			_exit(20);
		before = tap_count_fds();
		r = mproc_conn_recv_fds(b, buf, sizeof(buf), got, &nf, 1);
		if (r != -EBADMSG) {
			tap_diag("child: got %zd (%s), nf %zu", r, mproc_strerror((int)r), nf);
			_exit(21);
		}
		if (tap_count_fds() != before)
			_exit(22);
		_exit(0);
	}
	int st = reap(pid);
	if (st == 21)
		tap_diag("kernel installed the fds despite the limit (or delivered them)");
	CHECK_EQ(st, 0);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* A writer SIGKILLed mid-frame: the reader gets -EBADMSG or MPROC_EOF, never a hang. */
static void t_writer_killed(void *arg)
{
	struct mproc_conn *a, *b;
	const size_t big = 8u << 20;
	char *in = malloc(big);
	pid_t pid;

	ASSERT(in);
	pair_or_abort(arg, &a, &b, false);
	pid = fork_or_abort();
	if (pid == 0) {
		char *out = calloc(1, big);

		mproc_conn_free(b);
		if (out)
			mproc_conn_send(a, out, big);   /* blocks: nobody reads it all */
		_exit(0);
	}
	mproc_conn_free(a);
	/* Let the frame start, then kill the writer while it holds the send lock. */
	CHECK_EQ(mproc_conn_poll(b, 10), 1);
	usleep(20000);
	kill(pid, SIGKILL);
	CHECK_EQ(reap(pid), 128 + SIGKILL);
	ssize_t r = mproc_conn_recv(b, in, big, 10);
	CHECK(r == -EBADMSG || r == MPROC_EOF);
	if (r != -EBADMSG && r != MPROC_EOF)
		tap_diag("got %zd", r);
	mproc_conn_free(b);
	free(in);
}

/* A sender killed while holding the send lock does not wedge the others. */
static void t_lock_owner_dead(void *arg)
{
	struct mproc_conn *a, *b;
	const size_t big = 4u << 20;
	char buf[64];
	pid_t pid;

	pair_or_abort(arg, &a, &b, false);
	pid = fork_or_abort();
	if (pid == 0) {
		char *out = calloc(1, big);

		if (out)
			mproc_conn_send(a, out, big);   /* holds the lock, blocked: b not read */
		_exit(0);
	}
	usleep(50000);
	kill(pid, SIGKILL);
	CHECK_EQ(reap(pid), 128 + SIGKILL);
	/* The lock is taken over; the reader sees the torn frame, not a hang. The send itself
	 * may block on a full pipe, so drain first in a child. */
	pid_t drain = fork_or_abort();
	if (drain == 0) {
		mproc_conn_free(a);
		for (;;) {
			ssize_t r = mproc_conn_read(b, buf, sizeof(buf), 5);

			if (r < 0)
				_exit(r == MPROC_EOF ? 0 : 1);
		}
	}
	mproc_conn_free(b);
	CHECK_EQ(mproc_conn_send(a, "after", 5), 5);
	mproc_conn_free(a);
	CHECK_EQ(reap(drain), 0);
}

/* A timed send to a peer that does not read: frames that cannot go whole do not go at all
 * (-ETIMEDOUT within its time, nothing partial in the stream), and the endpoint stays usable. */
static void t_send_timeout(void *arg)
{
	struct mproc_conn *a, *b;
	char msg[1000], got[1000];
	size_t sent = 0;
	ssize_t n;
	double t0, dt;

	pair_or_abort(arg, &a, &b, false);
	for (;;) {
		fill(msg, sizeof(msg), (uint32_t)sent);
		t0 = tap_now();
		n = mproc_conn_send_timeout(a, msg, sizeof(msg), 0.1);
		dt = tap_now() - t0;
		if (n != (ssize_t)sizeof(msg) || sent > 100000)
			break;
		sent++;
	}
	CHECK_ERR(n, -ETIMEDOUT);
	CHECK_CMP(dt, >=, 0.1);
	CHECK_CMP(dt, <=, 0.1 + 1.0 * tap_timeout_mult());	/* returns, not a hang */
	t0 = tap_now();
	CHECK_ERR(mproc_conn_send_timeout(a, msg, sizeof(msg), 0), -ETIMEDOUT);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	CHECK_ERR(mproc_conn_send_timeout(a, msg, sizeof(msg), -2.0), -EINVAL);
	tap_diag("%zu frames of %zu B fit before the timeout", sent, sizeof(msg));
	/* Every frame that was sent arrives whole, and nothing of the ones that timed out. */
	for (size_t i = 0; i < sent; i++) {
		fill(msg, sizeof(msg), (uint32_t)i);
		CHECK_EQ(mproc_conn_recv(b, got, sizeof(got), 1.0), (ssize_t)sizeof(got));
		CHECK_MEM_EQ(got, msg, sizeof(msg));
	}
	CHECK_ERR(mproc_conn_recv(b, got, sizeof(got), 0), -ETIMEDOUT);
	CHECK_EQ(mproc_conn_send_timeout(a, "again", 5, 1.0), 5);
	CHECK_EQ(mproc_conn_recv(b, got, sizeof(got), 1.0), 5);
	CHECK_MEM_EQ(got, "again", 5);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* A timed send that runs out of time mid-frame tears it: -ETIMEDOUT, then -EPIPE for every
 * later send in every process holding the endpoint; the reader gets the frames before it,
 * then an error for the torn one, never a hang. */
static void t_send_timeout_torn(void *arg)
{
	struct mproc_conn *a, *b;
	const size_t big = 4u << 20;
	char *buf = malloc(big);
	int sync[2];
	char x = 0;
	pid_t pid;
	double t0, dt;
	ssize_t n;

	ASSERT(buf);
	pair_or_abort(arg, &a, &b, false);
	ASSERT(pipe2(sync, O_CLOEXEC) == 0);
	pid = fork_or_abort();
	if (pid == 0) {
		mproc_conn_free(b);
		close(sync[1]);
		if (read(sync[0], &x, 1) != 1)
			_exit(3);
		_exit(mproc_conn_send(a, "x", 1) == -EPIPE ? 0 : 1);
	}
	close(sync[0]);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(mproc_conn_send(a, "before", 6), 6);
	fill(buf, big, 7);
	t0 = tap_now();
	n = mproc_conn_send_timeout(a, buf, big, 0.1);
	dt = tap_now() - t0;
	CHECK_ERR(n, -ETIMEDOUT);
	CHECK_CMP(dt, >=, 0.1);
	CHECK_CMP(dt, <=, 0.1 + 1.0 * tap_timeout_mult());	/* returns, not a hang */
	CHECK_ERR(mproc_conn_send(a, "y", 1), -EPIPE);
	CHECK_ERR(mproc_conn_send_timeout(a, "y", 1, 0), -EPIPE);
	CHECK_ERR(mproc_conn_write(a, "y", 1), -EPIPE);
	CHECK_EQ(write(sync[1], &x, 1), 1);
	CHECK_EQ(reap(pid), 0);
	close(sync[1]);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(mproc_conn_recv(b, buf, big, 1.0), 6);
		CHECK_MEM_EQ(buf, "before", 6);
	}
	n = mproc_conn_recv(b, buf, big, 0.2);
	CHECK(n == -ETIMEDOUT || n == -EBADMSG);
	mproc_conn_free(a);
	CHECK_ERR(mproc_conn_recv(b, buf, big, 1.0), -EBADMSG);
	mproc_conn_free(b);
	free(buf);
}

/*
 * Reader and sender pinned to two CPUs, frames larger than the pipe and of odd sizes: on a
 * pipe the sender learns the reader's CPU from its first receive (through its own mapping of
 * the sender's page, after each side closed the end it does not use) and then writes every
 * frame with pwritev2(RWF_NOWAIT) first and the rest blocking; every frame must arrive whole.
 * Sockets never take that path (-1).
 */
static void pin_or_abort(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ASSERT(sched_setaffinity(0, sizeof(set), &set) == 0);
}

static size_t cross_size(int i)
{
	static const size_t sizes[] = { 65536, 65537, (1u << 20) + 3, 4097, 300000, 8, 0 };

	return sizes[i % (int)N_ELEM(sizes)];
}

static void t_cross_cpu_frames(void *arg)
{
	enum { FRAMES = 40 };
	struct mproc_conn *a, *b;
	cpu_set_t set;
	int cpus[2], ncpu = 0;
	char *out, status = 1;
	pid_t pid;

	ASSERT(sched_getaffinity(0, sizeof(set), &set) == 0);
	for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++)
		if (CPU_ISSET(c, &set))
			cpus[ncpu++] = c;
	if (ncpu < 2)
		tap_skip("needs two CPUs");
	pair_or_abort(arg, &a, &b, false);
	/*
	 * No reader CPU is known before the reader's first recv. Checked before the fork: once the
	 * child runs, its first recv may publish at any time (it did before the parent's check on a
	 * loaded machine).
	 */
	CHECK_EQ(mproc__conn_reader_cpu(a), -1);
	pid = fork_or_abort();
	if (pid == 0) {
		char *in = malloc((1u << 20) + 3), *want = malloc((1u << 20) + 3), bad = 0, one;

		mproc_conn_free(a);
		pin_or_abort(cpus[0]);
		if (!in || !want || mproc_conn_recv(b, &one, 1, 30) != 1 ||
		    mproc_conn_send(b, "k", 1) != 1)
			_exit(10);
		for (int i = 0; i < FRAMES; i++) {
			size_t n = cross_size(i);

			fill(want, n, (uint32_t)i);
			if (mproc_conn_recv(b, in, (1u << 20) + 3, 30) != (ssize_t)n ||
			    memcmp(in, want, n) != 0)
				bad = 1;
		}
		if (mproc_conn_send(b, &bad, 1) != 1)
			_exit(11);
		mproc_conn_free(b);
		_exit(0);
	}
	mproc_conn_free(b);
	pin_or_abort(cpus[1]);
	CHECK_EQ(mproc_conn_send(a, "x", 1), 1);
	CHECK_EQ(mproc_conn_recv(a, &status, 1, 30), 1);
	CHECK_EQ(mproc__conn_reader_cpu(a), tr_of(arg) == MPROC_CONN_PIPE ? cpus[0] : -1);
	out = malloc((1u << 20) + 3);
	ASSERT(out);
	for (int i = 0; i < FRAMES; i++) {
		size_t n = cross_size(i);

		fill(out, n, (uint32_t)i);
		CHECK_EQ(mproc_conn_send(a, out, n), n);
	}
	status = 1;
	CHECK_EQ(mproc_conn_recv(a, &status, 1, 30), 1);
	CHECK_EQ(status, 0);
	free(out);
	mproc_conn_free(a);
	CHECK_EQ(reap(pid), 0);
}

/*
 * A length over the pair's maximum is -EMSGSIZE however large (issue 16: SIZE_MAX gave -EINVAL
 * where conn.h says -EMSGSIZE), from every send call; nothing is sent and the pair stays usable.
 * A NULL buffer with a length is still -EINVAL.
 */
static void t_send_size_max(void *arg)
{
	static const size_t lens[] = { SIZE_MAX, (size_t)SSIZE_MAX + 1,
				       (size_t)MPROC_CONN_MAX_LIMIT + 1, MPROC_CONN_MAX_DEFAULT + 1 };
	struct mproc_conn *a, *b;
	char buf[8] = "x";

	pair_or_abort(arg, &a, &b, false);
	for (size_t i = 0; i < N_ELEM(lens); i++) {
		CHECK_ERR(mproc_conn_send(a, buf, lens[i]), -EMSGSIZE);
		CHECK_ERR(mproc_conn_send_timeout(a, buf, lens[i], 0), -EMSGSIZE);
		if (tr_of(arg) != MPROC_CONN_PIPE)
			CHECK_ERR(mproc_conn_send_fds(a, buf, lens[i], (int[]){ 0 }, 1), -EMSGSIZE);
	}
	CHECK_ERR(mproc_conn_send(a, NULL, SIZE_MAX), -EINVAL);
	CHECK_EQ(mproc_conn_send(a, "y", 1), 1);
	CHECK_EQ(mproc_conn_recv(b, buf, sizeof(buf), 5), 1);
	CHECK_EQ(buf[0], 'y');
	CHECK_EQ(mproc_conn_poll(b, 0), 0);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/*
 * mproc_conn_free releases an endpoint: its fds are closed, so the peer reads MPROC_EOF, and
 * NULL is a no-op. mproc_conn_close, the old name, still releases (an alias, not "refuse new
 * work": a caller that used it to free must not leak).
 */
static void t_free(void *arg)
{
	struct mproc_conn *a, *b;
	char buf[8];
	int fa, fb;

	mproc_conn_free(NULL);
	mproc_conn_close(NULL);
	pair_or_abort(arg, &a, &b, false);
	fa = mproc_conn_fileno(a);
	fb = mproc_conn_fileno(b);
	ASSERT(fa >= 0 && fb >= 0);
	mproc_conn_free(a);
	CHECK_EQ(fcntl(fa, F_GETFD), -1);
	CHECK_EQ(errno, EBADF);
	CHECK_ERR(mproc_conn_recv(b, buf, sizeof(buf), 5), MPROC_EOF);
	mproc_conn_close(b);
	CHECK_EQ(fcntl(fb, F_GETFD), -1);
	CHECK_EQ(errno, EBADF);
}

static const char *const case_names[] = {
	"echo", "empty", "small_buffer", "poll", "partial_header", "simplex", "bad_input",
	"malformed", "closed_peer", "shared_senders", "eintr_storm", "fds", "fds_mismatch",
	"fds_ctrunc", "writer_killed", "lock_owner_dead", "sigpipe_ignored", "send_timeout",
	"send_timeout_torn", "cross_cpu_frames", "send_size_max", "free",
};
static tap_fn *const case_fns[] = {
	t_echo, t_empty, t_small_buffer, t_poll, t_partial_header, t_simplex, t_bad_input,
	t_malformed, t_closed_peer, t_shared_senders, t_eintr_storm, t_fds, t_fds_mismatch,
	t_fds_ctrunc, t_writer_killed, t_lock_owner_dead, t_sigpipe_ignored, t_send_timeout,
	t_send_timeout_torn, t_cross_cpu_frames, t_send_size_max, t_free,
};

int main(int argc, char **argv)
{
	static char names[N_ELEM(transports)][N_ELEM(case_fns)][64];

	for (size_t t = 0; t < N_ELEM(transports); t++) {
		for (size_t i = 0; i < N_ELEM(case_fns); i++) {
			snprintf(names[t][i], sizeof(names[t][i]), "conn/%s/%s",
				 mproc_conn_transport_name(transports[t]), case_names[i]);
			tap_add_opts(names[t][i], case_fns[i], (void *)&transports[t],
				     &(struct tap_opts){ .timeout_s = 120 });
		}
	}
	return tap_run(argc, argv);
}
