/* conn.c - connected pairs over pipes and Unix socket pairs, with framed messages (conn.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "conn_frame.h"
#include "internal.h"
#include "mproc/conn.h"

/*
 * Read-ahead for the pipe transport: one read(2) fetches a small frame's header and
 * body together (one syscall per message instead of two). Bodies longer than what the
 * read-ahead holds are read straight into the caller's buffer, so large messages are not
 * copied twice. Reads never go past the end of the current frame except into this buffer.
 */
#define CONN_RA_SIZE 4096
/* The blocking pipe receive reads header, body and read-ahead in one readv(2) (conn_recv_pipe):
 * up to this much lands in the caller's buffer, and whatever of it belongs to later frames
 * is moved into the read-ahead, which is sized for that. */
#define CONN_FAST_BODY (64 * 1024)
#define CONN_RA_CAP (MPROC__CONN_HDR_SIZE + CONN_FAST_BODY + CONN_RA_SIZE)
/* fds received with the current frame's header and not yet handed out (stream sockets). */
#define CONN_PEND_FDS MPROC_CONN_MAX_FDS
/* SOCK_SEQPACKET: a frame is sent as packets of at most this many bytes (header included),
 * since one packet must fit the socket's send buffer (about 208 KiB by default). */
#define CONN_SEQ_CHUNK (64 * 1024)

/* The page shared by every process that holds the endpoint: its send lock. */
struct conn_shared {
	pthread_mutex_t send_lock;      /* robust, process-shared: whole frames, never interleaved */
	/* A timed send ran out of time after part of its frame was written: the stream cannot be
	 * resynchronised, so every later send, in every process, returns -EPIPE. */
	_Atomic int send_broken;
	/* Pipes: the CPU a reader of this endpoint's frames last received on, -1 unknown. The
	 * reader's end maps this page too (mproc_conn.peer) and stores only when it changed, so
	 * the line stays shared and the sender's load is a cache hit (conn_reader_elsewhere). */
	_Alignas(64) _Atomic int reader_cpu;
};

struct mproc_conn {
	int rfd, wfd;                   /* -1 where the end cannot read / write; equal for sockets */
	enum mproc_conn_transport transport;
	size_t max;                     /* frame maximum */
	size_t seq_chunk;               /* seqpacket packet size */
	bool sigpipe_ignored;           /* opts.sigpipe_ignored: no SIGPIPE guard on pipe writes */
	bool no_rwf_nowait;             /* pwritev2(RWF_NOWAIT) unsupported on this pipe */
	struct conn_shared *sh;         /* NULL for a read-only end */
	struct conn_shared *peer;       /* pipes: a view of the sending end's page, or NULL */
	int broken;                     /* 0, or -EBADMSG once the byte stream lost sync */
	size_t ra_off, ra_len;          /* read-ahead window [ra_off, ra_len) */
	size_t npend;                   /* fds in pend[] */
	int pend[CONN_PEND_FDS];
	unsigned char ra[CONN_RA_CAP];
};

/* ---- frame header ------------------------------------------------------------------------ */

int mproc__conn_parse_header(const void *p, size_t n, size_t max, struct mproc__conn_hdr *h)
{
	const unsigned char *b = p;
	uint32_t len;

	if (n < MPROC__CONN_HDR_SIZE)
		return -EAGAIN;
	if (b[0] != MPROC__CONN_MAGIC0 || b[1] != MPROC__CONN_MAGIC1 || b[2] != 0 ||
	    b[3] > MPROC_CONN_MAX_FDS)
		return -EBADMSG;
	len = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
	if (len > max)
		return -EMSGSIZE;
	h->len = len;
	h->nfds = b[3];
	return 0;
}

void mproc__conn_make_header(void *out, uint32_t len, unsigned nfds)
{
	unsigned char *b = out;

	b[0] = MPROC__CONN_MAGIC0;
	b[1] = MPROC__CONN_MAGIC1;
	b[2] = 0;
	b[3] = (unsigned char)nfds;
	b[4] = (unsigned char)len;
	b[5] = (unsigned char)(len >> 8);
	b[6] = (unsigned char)(len >> 16);
	b[7] = (unsigned char)(len >> 24);
}

/* ---- helpers ----------------------------------------------------------------------------- */

const char *mproc_conn_transport_name(enum mproc_conn_transport t)
{
	switch (t) {
	case MPROC_CONN_PIPE:
		return "pipe";
	case MPROC_CONN_STREAM:
		return "stream";
	case MPROC_CONN_SEQPACKET:
		return "seqpacket";
	}
	return "?";
}

static bool conn_is_sock(const struct mproc_conn *c)
{
	return c->transport != MPROC_CONN_PIPE;
}

static void conn_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mproc__close(fds[i]);
}

static int conn_break(struct mproc_conn *c)
{
	conn_close_fds(c->pend, c->npend);
	c->npend = 0;
	c->broken = -EBADMSG;
	return -EBADMSG;
}

static int conn_lock(struct mproc_conn *c, int64_t deadline)
{
	struct timespec ts;
	int r;

	if (deadline == MPROC__NO_DEADLINE) {
		r = pthread_mutex_lock(&c->sh->send_lock);
	} else {
		ts.tv_sec = deadline / MPROC__NSEC_PER_SEC;
		ts.tv_nsec = deadline % MPROC__NSEC_PER_SEC;
		r = pthread_mutex_clocklock(&c->sh->send_lock, CLOCK_MONOTONIC, &ts);
	}

	if (r == EOWNERDEAD) {
		/* A sender died holding the lock, perhaps mid-frame: the reader will see the
		 * torn frame as -EBADMSG. Other senders must not wedge, so take it over. */
		pthread_mutex_consistent(&c->sh->send_lock);
		return 0;
	}
	return -r;
}

static void conn_unlock(struct mproc_conn *c)
{
	pthread_mutex_unlock(&c->sh->send_lock);
}

/* Put SCM_RIGHTS for fds into m (cbuf must hold CMSG_SPACE(nfds * sizeof(int))). */
static void conn_set_rights(struct msghdr *m, void *cbuf, const int *fds, size_t nfds)
{
	struct cmsghdr *cm;

	/* Zeroed: the kernel reads the whole CMSG_SPACE, alignment padding included (memcheck:
	 * "sendmsg(msg.msg_control) points to uninitialised byte(s)"). */
	memset(cbuf, 0, CMSG_SPACE(nfds * sizeof(int)));
	m->msg_control = cbuf;
	m->msg_controllen = CMSG_SPACE(nfds * sizeof(int));
	cm = CMSG_FIRSTHDR(m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
}

/* Collect SCM_RIGHTS fds from a received message into out (room for cap); fds beyond cap are
 * closed. Returns how many were found in the message (may exceed cap). */
static size_t conn_take_rights(struct msghdr *m, int *out, size_t cap, size_t *stored)
{
	size_t found = 0;

	*stored = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*stored < cap)
				out[(*stored)++] = fd;
			else
				mproc__close(fd);
			found++;
		}
	}
	return found;
}

/* A socket whose peer closed with bytes unread reports ECONNRESET once, then EOF: the peer is
 * gone either way, so receives treat it as EOF (MPROC_EOF at a frame boundary, -EBADMSG inside
 * one) and sends as -EPIPE (conn.h). */
static ssize_t reset_is_eof(ssize_t n)
{
	return n < 0 && errno == ECONNRESET ? 0 : n;
}

static ssize_t recvmsg_reset_is_eof(int fd, struct msghdr *m)
{
	ssize_t n = recvmsg(fd, m, MSG_CMSG_CLOEXEC);

	if (n < 0 && errno == ECONNRESET) {
		m->msg_controllen = 0;  /* nothing arrived: no rights to collect */
		m->msg_flags = 0;
		n = 0;
	}
	return n;
}

/* pwritev2(RWF_NOWAIT) on the pipe; a kernel without it for pipes marks the endpoint
 * (no_rwf_nowait). Returns bytes written or -1 with errno (EAGAIN: full). */
static ssize_t conn_pwritev_nowait(struct mproc_conn *c, const struct iovec *iov, int cnt)
{
	ssize_t n = pwritev2(c->wfd, iov, cnt, -1, RWF_NOWAIT);

	if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL))
		c->no_rwf_nowait = true;
	return n;
}

/*
 * One write that must not block past a deadline: sockets send with MSG_DONTWAIT, pipes use
 * pwritev2(RWF_NOWAIT) (no shared O_NONBLOCK flag to flip on a description other processes
 * use). Where the kernel lacks RWF_NOWAIT on pipes, wait for POLLOUT and write at most
 * PIPE_BUF bytes: a pipe with room for one byte has room for PIPE_BUF (a free page), and we
 * hold the send lock, so that write does not block. Returns bytes written or -1 with errno.
 */
static ssize_t conn_write_nowait(struct mproc_conn *c, struct msghdr *m, int64_t deadline)
{
	struct iovec one;
	ssize_t n;
	int r;

	if (conn_is_sock(c))
		return sendmsg(c->wfd, m, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (!c->no_rwf_nowait) {
		n = conn_pwritev_nowait(c, m->msg_iov, (int)m->msg_iovlen);
		if (n >= 0 || !c->no_rwf_nowait)
			return n;
	}
	r = mproc__poll1(c->wfd, POLLOUT, deadline);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	one = m->msg_iov[0];
	if (one.iov_len > PIPE_BUF)
		one.iov_len = PIPE_BUF;
	return writev(c->wfd, &one, 1);
}

/*
 * Pipes: is the reader of our frames running on another CPU than ours? Then a frame goes out
 * with pwritev2(RWF_NOWAIT) first, and what did not fit with a blocking writev(2). A writer
 * that finds the pipe full inside one writev sleeps on the pipe's wait queue until the reader
 * wakes it at the end of a read; a wake-up across CPUs is an inter-processor interrupt, dear
 * (on this project's 2-vCPU VM the 64 KiB writer then slept once per message, against once
 * per two for a bare pipe: framing on a pipe lost 15-18% cross-core). The second syscall
 * instead finds the reader inside its read, holding the pipe's mutex, and the kernel's
 * optimistic mutex spinning waits for that read to end without sleeping. On one CPU the
 * reader cannot run meanwhile, so there the extra syscall is pure cost (5-7% at 64 KiB) and
 * the frame goes out in one blocking writev, as before. See tools/pipe_floor.
 */
static bool conn_reader_elsewhere(const struct mproc_conn *c)
{
	int cpu;

	if (conn_is_sock(c) || c->no_rwf_nowait)
		return false;
	cpu = atomic_load_explicit(&c->sh->reader_cpu, memory_order_relaxed);
	return cpu >= 0 && cpu != sched_getcpu();
}

int mproc__conn_reader_cpu(const struct mproc_conn *c)
{
	if (!c || !c->sh || conn_is_sock(c))
		return -1;
	return atomic_load_explicit(&c->sh->reader_cpu, memory_order_relaxed);
}

/* Before a pipe receive: tell the sending end where we read (only when it changed). */
static void conn_note_reader_cpu(const struct mproc_conn *c)
{
	int cpu;

	if (!c->peer)
		return;
	cpu = sched_getcpu();
	if (atomic_load_explicit(&c->peer->reader_cpu, memory_order_relaxed) != cpu)
		atomic_store_explicit(&c->peer->reader_cpu, cpu, memory_order_relaxed);
}

/*
 * Write the iovecs completely (the caller holds the send lock); fds ride on the first byte.
 * Pipes: SIGPIPE is blocked in this thread for the frame, and a SIGPIPE our write raised is
 * consumed before unblocking (two syscalls per frame; mproc__sigpipe_block costs four, which
 * shows at small messages). Sockets: MSG_NOSIGNAL.
 * With a deadline, writes never block past it: -ETIMEDOUT, and if part of the iovecs was
 * already written the endpoint's sends are broken for good (conn_shared.send_broken).
 */
static ssize_t conn_write_iov(struct mproc_conn *c, struct iovec *iov, int cnt, const int *fds,
			      size_t nfds, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(MPROC_CONN_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	sigset_t pipe_set, old;
	bool masked = false, nowait_first;
	size_t total = 0, done = 0;
	ssize_t n;
	int r = 0;

	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (!conn_is_sock(c) && !c->sigpipe_ignored) {
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
		masked = !sigismember(&old, SIGPIPE);
	}
	nowait_first = deadline == MPROC__NO_DEADLINE && conn_reader_elsewhere(c);
	while (cnt > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };

		if (conn_is_sock(c) && nfds)
			conn_set_rights(&m, cbuf.buf, fds, nfds);
		if (nowait_first) {
			nowait_first = false;
			n = conn_pwritev_nowait(c, iov, cnt);
			if (n < 0 && errno != EINTR && errno != EPIPE)
				continue;       /* full: the blocking write below */
		} else if (deadline != MPROC__NO_DEADLINE)
			n = conn_write_nowait(c, &m, deadline);
		else if (conn_is_sock(c))
			n = sendmsg(c->wfd, &m, MSG_NOSIGNAL);
		else
			n = writev(c->wfd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {  /* full (timed), or someone set O_NONBLOCK */
				r = mproc__poll1(c->wfd, POLLOUT, deadline);
				if (r < 0)
					break;
				r = 0;
				continue;
			}
			/* A socket peer that closed with bytes unread resets: it is gone all the
			 * same (conn.h: -EPIPE). */
			r = errno == ECONNRESET ? -EPIPE : -errno;
			break;
		}
		nfds = 0;
		done += (size_t)n;
		mproc__iov_advance(&iov, &cnt, (size_t)n);
	}
	if (r == -ETIMEDOUT && done > 0)
		atomic_store(&c->sh->send_broken, 1);
	if (masked) {
		if (r == -EPIPE) {
			/* No SIGPIPE was pending before (it was unblocked, so it would have been
			 * delivered): the one pending now is ours. */
			const struct timespec zero = { 0, 0 };

			while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
				;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return r < 0 ? r : (ssize_t)total;
}

/* Send one frame as SOCK_SEQPACKET packets (the caller holds the send lock). */
static ssize_t conn_write_seq(struct mproc_conn *c, const unsigned char *hdr, const char *body,
			      size_t len, const int *fds, size_t nfds, int64_t deadline)
{
	int flags = MSG_NOSIGNAL | (deadline != MPROC__NO_DEADLINE ? MSG_DONTWAIT : 0);
	union {
		char buf[CMSG_SPACE(MPROC_CONN_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	size_t off = 0;
	bool first = true;

	while (first || off < len) {
		struct iovec iov[2];
		struct msghdr m = { .msg_iov = iov };
		size_t room = first ? c->seq_chunk - MPROC__CONN_HDR_SIZE : c->seq_chunk;
		size_t part = len - off < room ? len - off : room;
		ssize_t n;

		if (first) {
			iov[0] = (struct iovec){ (void *)hdr, MPROC__CONN_HDR_SIZE };
			iov[1] = (struct iovec){ (void *)(body + off), part };
			m.msg_iovlen = part ? 2 : 1;
			if (nfds)
				conn_set_rights(&m, cbuf.buf, fds, nfds);
		} else {
			iov[0] = (struct iovec){ (void *)(body + off), part };
			m.msg_iovlen = 1;
		}
		do
			n = sendmsg(c->wfd, &m, flags);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EAGAIN) {
			int r = mproc__poll1(c->wfd, POLLOUT, deadline);

			if (r < 0) {
				if (r == -ETIMEDOUT && !first)     /* packets of this frame went */
					atomic_store(&c->sh->send_broken, 1);
				return r;
			}
			continue;
		}
		if (n < 0)
			return errno == ECONNRESET ? -EPIPE : -errno;  /* peer gone, bytes unread */
		off += part;
		first = false;
	}
	return (ssize_t)len;
}

static ssize_t conn_send_frame(struct mproc_conn *c, const void *buf, size_t len, const int *fds,
			       size_t nfds, int64_t deadline)
{
	unsigned char hdr[MPROC__CONN_HDR_SIZE];
	ssize_t n;
	int r;

	/* A length over the pair's maximum is -EMSGSIZE however large (c->max fits a u32). */
	if (!c || (!buf && len > 0))
		return -EINVAL;
	if (c->wfd < 0)
		return -EBADF;
	if (len > c->max)
		return -EMSGSIZE;
	mproc__conn_make_header(hdr, (uint32_t)len, (unsigned)nfds);
	r = conn_lock(c, deadline);
	if (r < 0)
		return r;
	if (atomic_load(&c->sh->send_broken)) {
		n = -EPIPE;
	} else if (c->transport == MPROC_CONN_SEQPACKET) {
		n = conn_write_seq(c, hdr, buf, len, fds, nfds, deadline);
	} else {
		struct iovec iov[2] = {
			{ hdr, sizeof(hdr) },
			{ (void *)buf, len },
		};
		n = conn_write_iov(c, iov, len ? 2 : 1, fds, nfds, deadline);
		if (n > 0)
			n -= MPROC__CONN_HDR_SIZE;
	}
	conn_unlock(c);
	return n;
}

ssize_t mproc_conn_send(struct mproc_conn *c, const void *buf, size_t len)
{
	return conn_send_frame(c, buf, len, NULL, 0, MPROC__NO_DEADLINE);
}

ssize_t mproc_conn_send_timeout(struct mproc_conn *c, const void *buf, size_t len,
				double timeout_s)
{
	int64_t deadline;
	int r;

	if (!c)
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	return conn_send_frame(c, buf, len, NULL, 0, deadline);
}

ssize_t mproc_conn_send_fds(struct mproc_conn *c, const void *buf, size_t len, const int *fds,
			    size_t nfds)
{
	if (!c || !fds || nfds == 0 || nfds > MPROC_CONN_MAX_FDS)
		return -EINVAL;
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] < 0)
			return -EINVAL;
	if (!conn_is_sock(c))
		return -EOPNOTSUPP;
	return conn_send_frame(c, buf, len, fds, nfds, MPROC__NO_DEADLINE);
}

ssize_t mproc_conn_write(struct mproc_conn *c, const void *buf, size_t len)
{
	struct iovec iov;
	ssize_t n;
	int r;

	if (!c || (!buf && len > 0) || len > SSIZE_MAX)
		return -EINVAL;
	if (c->wfd < 0)
		return -EBADF;
	if (len == 0)
		return 0;
	iov = (struct iovec){ (void *)buf, len };
	r = conn_lock(c, MPROC__NO_DEADLINE);
	if (r < 0)
		return r;
	n = atomic_load(&c->sh->send_broken) ? -EPIPE
					      : conn_write_iov(c, &iov, 1, NULL, 0, MPROC__NO_DEADLINE);
	conn_unlock(c);
	return n;
}

/* ---- receive ----------------------------------------------------------------------------- */

/* Wait for readability before a blocking read when there is a deadline. 0 or -errno. */
static int conn_wait_readable(struct mproc_conn *c, int64_t deadline)
{
	int r;

	if (deadline == MPROC__NO_DEADLINE)
		return 0;
	r = mproc__poll1(c->rfd, POLLIN, deadline);
	return r < 0 ? r : 0;
}

/*
 * Pipe/stream: read more bytes into the read-ahead, which must end up holding `want` bytes
 * from ra_off (want <= CONN_RA_SIZE). Pipes read as much as fits; stream sockets read no
 * further than `want`, i.e. never past the current frame: fds ride on a frame's first byte,
 * so the fds of the reads of one frame belong to that frame alone. Returns bytes read,
 * MPROC_EOF or -errno.
 */
static ssize_t conn_ra_fill(struct mproc_conn *c, size_t want, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(MPROC_CONN_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	ssize_t n;
	int r;

	if (c->ra_off > 0) {
		memmove(c->ra, c->ra + c->ra_off, c->ra_len - c->ra_off);
		c->ra_len -= c->ra_off;
		c->ra_off = 0;
	}
	for (;;) {
		r = conn_wait_readable(c, deadline);
		if (r < 0)
			return r;
		if (conn_is_sock(c)) {
			struct iovec iov = { c->ra + c->ra_len, want - c->ra_len };
			struct msghdr m = {
				.msg_iov = &iov, .msg_iovlen = 1,
				.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
			};

			n = recvmsg_reset_is_eof(c->rfd, &m);
			if (n >= 0 && m.msg_controllen > 0) {
				size_t stored;
				size_t found = conn_take_rights(&m, c->pend + c->npend,
								CONN_PEND_FDS - c->npend, &stored);

				c->npend += stored;
				if (found != stored || (m.msg_flags & MSG_CTRUNC))
					return conn_break(c);
			} else if (n >= 0 && (m.msg_flags & MSG_CTRUNC)) {
				return conn_break(c);
			}
		} else {
			n = reset_is_eof(read(c->rfd, c->ra + c->ra_len, CONN_RA_CAP - c->ra_len));
		}
		if (n > 0) {
			c->ra_len += (size_t)n;
			return n;
		}
		if (n == 0)
			return MPROC_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			r = mproc__poll1(c->rfd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		return -errno;
	}
}

/*
 * The next frame's header, without consuming anything. Pipe/stream: fill the read-ahead until
 * it holds a header (a partial header survives a timeout). Seqpacket: peek at the packet.
 */
static int conn_next_header(struct mproc_conn *c, int64_t deadline, struct mproc__conn_hdr *h)
{
	ssize_t n;
	int r;

	if (c->broken)
		return c->broken;
	if (c->transport != MPROC_CONN_SEQPACKET) {
		while (c->ra_len - c->ra_off < MPROC__CONN_HDR_SIZE) {
			n = conn_ra_fill(c, MPROC__CONN_HDR_SIZE, deadline);
			if (n == MPROC_EOF)
				return c->ra_len > c->ra_off ? conn_break(c) : MPROC_EOF;
			if (n < 0)
				return (int)n;
		}
		r = mproc__conn_parse_header(c->ra + c->ra_off, c->ra_len - c->ra_off, c->max, h);
		return r == -EBADMSG ? conn_break(c) : r;
	}
	for (;;) {
		unsigned char hdr[MPROC__CONN_HDR_SIZE];

		r = conn_wait_readable(c, deadline);
		if (r < 0)
			return r;
		/* No control buffer: peeked fds are not installed (the kernel drops the copies). */
		n = reset_is_eof(recv(c->rfd, hdr, sizeof(hdr), MSG_PEEK));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			r = mproc__poll1(c->rfd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return MPROC_EOF;
		r = mproc__conn_parse_header(hdr, (size_t)n, c->max, h);
		if (r == -EAGAIN || r == -EBADMSG)
			return conn_break(c);
		return r;
	}
}

/* Pipe/stream: read exactly len bytes of the current body straight into buf. */
static int conn_read_exact(struct mproc_conn *c, char *buf, size_t len, int64_t deadline)
{
	size_t done = 0;
	ssize_t n;
	int r;

	while (done < len) {
		r = conn_wait_readable(c, deadline);
		if (r < 0)
			goto torn;
		n = reset_is_eof(read(c->rfd, buf + done, len - done));
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0) {
			r = -EBADMSG;   /* EOF inside a frame: the writer died mid-frame */
			goto torn;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			r = mproc__poll1(c->rfd, POLLIN, deadline);
			if (r < 0)
				goto torn;
			continue;
		}
		r = -errno;
		goto torn;
	}
	return 0;
torn:
	conn_break(c);
	return r;
}

/* Consume the frame whose header conn_next_header returned (sizes already checked). */
static ssize_t conn_take_stream(struct mproc_conn *c, const struct mproc__conn_hdr *h, char *buf,
				int *fds, int64_t deadline)
{
	size_t have, part;
	int r;

	if (h->nfds != c->npend)
		return conn_break(c);   /* fds missing, or more than the header says */
	c->ra_off += MPROC__CONN_HDR_SIZE;
	have = c->ra_len - c->ra_off;
	part = have < h->len ? have : h->len;
	if (part)
		memcpy(buf, c->ra + c->ra_off, part);
	c->ra_off += part;
	if (c->ra_off == c->ra_len)
		c->ra_off = c->ra_len = 0;
	if (part < h->len) {
		r = conn_read_exact(c, buf + part, h->len - part, deadline);
		if (r < 0)
			return r;
	}
	if (h->nfds) {
		memcpy(fds, c->pend, h->nfds * sizeof(int));
		c->npend -= h->nfds;
		memmove(c->pend, c->pend + h->nfds, c->npend * sizeof(int));
	}
	return (ssize_t)h->len;
}

static ssize_t conn_take_seq(struct mproc_conn *c, const struct mproc__conn_hdr *h, char *buf,
			     int *fds, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(MPROC_CONN_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	unsigned char hdr[MPROC__CONN_HDR_SIZE];
	size_t off = 0, stored = 0, found;
	bool first = true;
	ssize_t n;
	int r;

	while (first || off < h->len) {
		struct iovec iov[2];
		struct msghdr m = { .msg_iov = iov };

		if (first) {
			iov[0] = (struct iovec){ hdr, sizeof(hdr) };
			iov[1] = (struct iovec){ buf, h->len };
			m.msg_iovlen = h->len ? 2 : 1;
			m.msg_control = cbuf.buf;
			m.msg_controllen = sizeof(cbuf.buf);
		} else {
			r = conn_wait_readable(c, deadline);
			if (r < 0) {
				conn_break(c);
				return r;
			}
			iov[0] = (struct iovec){ buf + off, h->len - off };
			m.msg_iovlen = 1;
		}
		n = recvmsg_reset_is_eof(c->rfd, &m);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			r = mproc__poll1(c->rfd, POLLIN, deadline);
			if (r < 0) {
				conn_break(c);
				return r;
			}
			continue;
		}
		if (n < 0) {
			r = -errno;
			if (!first)
				conn_break(c);
			return r;
		}
		if (first) {
			found = conn_take_rights(&m, fds, fds ? h->nfds : 0, &stored);
		} else {
			size_t none;

			found = conn_take_rights(&m, NULL, 0, &none);
		}
		if (n == 0 || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || found != stored ||
		    (!first && found)) {
			if (fds)
				conn_close_fds(fds, stored);
			return conn_break(c);
		}
		if (first) {
			if ((size_t)n < sizeof(hdr) || stored != h->nfds) {
				if (fds)
					conn_close_fds(fds, stored);
				return conn_break(c);
			}
			off = (size_t)n - sizeof(hdr);
			first = false;
		} else {
			off += (size_t)n;
		}
	}
	return (ssize_t)h->len;
}

/*
 * The blocking receive on a pipe with an empty read-ahead, in one readv(2): the header into the
 * read-ahead, the body straight into the caller's buffer, and, for a buffer smaller than the
 * read-ahead, what follows into the read-ahead after it. This saves the second read that a
 * header-first receive needs for a large message (a raw pipe reader makes one). Bytes that
 * turn out to belong to later frames, or a frame that does not fit (-EMSGSIZE), are put back
 * into the read-ahead in stream order.
 * A buffer of CONN_RA_SIZE or more reads no tail: its own room already gathers the small frames
 * that follow a small one, and for a frame that fills it the tail would only take the start of
 * the next frame, which then costs two copies (into the read-ahead, then out of it) and sends
 * the next receive down the general path: 64 KiB messages took 1.00 read per message plus
 * those copies on a third of them, and now take exactly one readv (strace -c, 6000 messages).
 * Returns the length, MPROC_EOF, -errno, or CONN_SLOW: go on with the general path.
 */
#define CONN_SLOW (-EINPROGRESS)
static ssize_t conn_recv_pipe(struct mproc_conn *c, char *buf, size_t size)
{
	size_t first = size < CONN_FAST_BODY ? size : CONN_FAST_BODY;
	struct iovec iov[3] = {
		{ c->ra, MPROC__CONN_HDR_SIZE },
		{ buf, first },
		{ c->ra + MPROC__CONN_HDR_SIZE + first, CONN_RA_SIZE },
	};
	struct mproc__conn_hdr h;
	size_t got, tail, extra;
	ssize_t n;
	int r;

	c->ra_off = c->ra_len = 0;
	do
		n = readv(c->rfd, iov, !first ? 2 : first < CONN_RA_SIZE ? 3 : 2);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? CONN_SLOW : -errno;
	if (n == 0)
		return MPROC_EOF;
	if ((size_t)n < MPROC__CONN_HDR_SIZE) {
		c->ra_len = (size_t)n;          /* a partial header: the slow path goes on */
		return CONN_SLOW;
	}
	got = (size_t)n - MPROC__CONN_HDR_SIZE;
	tail = got > first ? got - first : 0;   /* bytes in the read-ahead after buf's part */
	got -= tail;                            /* bytes in buf */
	r = mproc__conn_parse_header(c->ra, MPROC__CONN_HDR_SIZE, c->max, &h);
	if (r == 0 && (h.len > size || h.nfds))
		r = -EMSGSIZE;
	if (r == -EBADMSG)
		return conn_break(c);
	if (r < 0) {
		/* Keep everything: header, buf's part, tail, in that order. */
		memmove(c->ra + MPROC__CONN_HDR_SIZE + got, c->ra + MPROC__CONN_HDR_SIZE + first, tail);
		memcpy(c->ra + MPROC__CONN_HDR_SIZE, buf, got);
		c->ra_len = MPROC__CONN_HDR_SIZE + got + tail;
		return r;
	}
	if (got >= h.len) {
		/* The frame is whole; buf[h.len, got) and the tail are the next frames. */
		extra = got - h.len;
		memmove(c->ra + extra, c->ra + MPROC__CONN_HDR_SIZE + first, tail);
		memcpy(c->ra, buf + h.len, extra);
		c->ra_len = extra + tail;
		return (ssize_t)h.len;
	}
	/* got < h.len <= size. When buf's part was capped (first < size), the tail starts with
	 * more of this body, then maybe later frames. */
	extra = h.len - got < tail ? h.len - got : tail;
	memcpy(buf + got, c->ra + MPROC__CONN_HDR_SIZE + first, extra);
	got += extra;
	memmove(c->ra, c->ra + MPROC__CONN_HDR_SIZE + first + extra, tail - extra);
	c->ra_len = tail - extra;
	if (got == h.len)
		return (ssize_t)h.len;
	r = conn_read_exact(c, buf + got, h.len - got, MPROC__NO_DEADLINE);
	return r < 0 ? r : (ssize_t)h.len;
}

static ssize_t conn_recv_common(struct mproc_conn *c, void *buf, size_t size, void **out,
				int *fds, size_t *nfds, double timeout_s)
{
	struct mproc__conn_hdr h;
	size_t room = nfds ? *nfds : 0;
	int64_t deadline;
	ssize_t n;
	int r;

	if (!c || (!out && !buf && size > 0) || size > SSIZE_MAX || (nfds && *nfds && !fds))
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	if (c->rfd < 0)
		return -EBADF;
	if (nfds)
		*nfds = 0;
	conn_note_reader_cpu(c);
	if (c->transport == MPROC_CONN_PIPE && !out && deadline == MPROC__NO_DEADLINE &&
	    c->ra_len == c->ra_off && !c->broken) {
		n = conn_recv_pipe(c, buf, size);
		if (n != CONN_SLOW)
			return n;
	}
	r = conn_next_header(c, deadline, &h);
	if (r < 0)
		return r;
	if (h.nfds > room)
		return -EMSGSIZE;
	if (out) {
		buf = malloc(h.len ? h.len : 1);
		if (!buf)
			return -ENOMEM;
	} else if (h.len > size) {
		return -EMSGSIZE;
	}
	if (c->transport != MPROC_CONN_SEQPACKET &&
	    MPROC__CONN_HDR_SIZE + (size_t)h.len <= CONN_RA_SIZE) {
		/* A small frame is gathered whole before anything is consumed, so a timeout
		 * in the middle of it leaves it queued (a larger one breaks the endpoint). */
		while (c->ra_len - c->ra_off < MPROC__CONN_HDR_SIZE + (size_t)h.len) {
			n = conn_ra_fill(c, MPROC__CONN_HDR_SIZE + h.len, deadline);
			if (n == MPROC_EOF)
				n = conn_break(c);
			if (n < 0) {
				if (out)
					free(buf);
				return n;
			}
		}
	}
	if (c->transport == MPROC_CONN_SEQPACKET)
		n = conn_take_seq(c, &h, buf, fds, deadline);
	else
		n = conn_take_stream(c, &h, buf, fds, deadline);
	if (n < 0) {
		if (out)
			free(buf);
		return n;
	}
	if (out)
		*out = buf;
	if (nfds)
		*nfds = h.nfds;
	return n;
}

ssize_t mproc_conn_recv(struct mproc_conn *c, void *buf, size_t size, double timeout_s)
{
	return conn_recv_common(c, buf, size, NULL, NULL, NULL, timeout_s);
}

ssize_t mproc_conn_recv_alloc(struct mproc_conn *c, void **out, double timeout_s)
{
	if (!out)
		return -EINVAL;
	return conn_recv_common(c, NULL, 0, out, NULL, NULL, timeout_s);
}

ssize_t mproc_conn_recv_fds(struct mproc_conn *c, void *buf, size_t size, int *fds,
			    size_t *nfds, double timeout_s)
{
	if (!nfds)
		return -EINVAL;
	return conn_recv_common(c, buf, size, NULL, fds, nfds, timeout_s);
}

ssize_t mproc_conn_read(struct mproc_conn *c, void *buf, size_t size, double timeout_s)
{
	int64_t deadline;
	ssize_t n;
	int r;

	if (!c || !buf || size == 0 || size > SSIZE_MAX)
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	if (c->rfd < 0)
		return -EBADF;
	conn_note_reader_cpu(c);
	if (c->ra_len > c->ra_off) {
		size_t part = c->ra_len - c->ra_off;

		part = part < size ? part : size;
		memcpy(buf, c->ra + c->ra_off, part);
		c->ra_off += part;
		return (ssize_t)part;
	}
	for (;;) {
		r = conn_wait_readable(c, deadline);
		if (r < 0)
			return r;
		n = reset_is_eof(read(c->rfd, buf, size));
		if (n > 0)
			return n;
		if (n == 0)
			return MPROC_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			r = mproc__poll1(c->rfd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		return -errno;
	}
}

int mproc_conn_poll(struct mproc_conn *c, double timeout_s)
{
	int64_t deadline;
	int r;

	if (!c)
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	if (c->rfd < 0)
		return -EBADF;
	if (c->ra_len > c->ra_off || c->broken)
		return 1;
	r = mproc__poll1(c->rfd, POLLIN, deadline);
	if (r == -ETIMEDOUT)
		return 0;
	return r < 0 ? r : 1;
}

int mproc_conn_fileno(const struct mproc_conn *c)
{
	return c ? c->rfd : -1;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

void mproc_conn_close(struct mproc_conn *c)
{
	if (!c)
		return;
	conn_close_fds(c->pend, c->npend);
	if (c->wfd != c->rfd)
		mproc__close(c->wfd);
	mproc__close(c->rfd);
	if (c->sh)
		munmap(c->sh, sizeof(*c->sh));
	if (c->peer)
		munmap(c->peer, sizeof(*c->peer));
	free(c);
}

static int conn_new(struct mproc_conn **out, const struct mproc_conn_opts *o, int rfd, int wfd,
		    size_t seq_chunk)
{
	pthread_mutexattr_t attr;
	struct mproc_conn *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->rfd = -1;
	c->wfd = -1;
	c->transport = o->transport;
	c->max = o->max_msg ? o->max_msg : MPROC_CONN_MAX_DEFAULT;
	c->seq_chunk = seq_chunk;
	c->sigpipe_ignored = o->sigpipe_ignored;
	if (wfd >= 0) {
		/* Forked children inherit the mapping, so the lock is shared by every process
		 * holding the endpoint (and by nothing else). */
		c->sh = mmap(NULL, sizeof(*c->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			     -1, 0);
		if (c->sh == MAP_FAILED) {
			r = -errno;
			c->sh = NULL;
			goto out_free;
		}
		r = -pthread_mutexattr_init(&attr);
		if (r < 0)
			goto out_free;
		pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
		r = -pthread_mutex_init(&c->sh->send_lock, &attr);
		pthread_mutexattr_destroy(&attr);
		if (r < 0)
			goto out_free;
		atomic_init(&c->sh->reader_cpu, -1);
	}
	c->rfd = rfd;
	c->wfd = wfd;
	*out = c;
	return 0;
out_free:
	mproc_conn_close(c);
	return r;
}

/*
 * Give the reading end r a view of the sending end w's page, so that r can say where it reads
 * (conn_note_reader_cpu). A second mapping of the same shared pages (mremap with old size 0),
 * not a pointer into w's: each end unmaps only its own, whichever a process closes first.
 * Without it (out of mappings) the sender just never learns the reader's CPU.
 */
static void conn_link_peer(struct mproc_conn *r, const struct mproc_conn *w)
{
	void *v;

	if (r->rfd < 0 || !w->sh)
		return;
	v = mremap(w->sh, 0, sizeof(*w->sh), MREMAP_MAYMOVE);
	r->peer = v == MAP_FAILED ? NULL : v;
}

int mproc_conn_pair(struct mproc_conn **a, struct mproc_conn **b,
		    const struct mproc_conn_opts *opts)
{
	static const struct mproc_conn_opts defaults;
	const struct mproc_conn_opts *o = opts ? opts : &defaults;
	struct mproc_conn *ca = NULL, *cb = NULL;
	int p1[2] = { -1, -1 }, p2[2] = { -1, -1 };
	size_t chunk = CONN_SEQ_CHUNK;
	int r, type;

	if (!a || !b || o->max_msg > MPROC_CONN_MAX_LIMIT)
		return -EINVAL;
	switch (o->transport) {
	case MPROC_CONN_PIPE:
		type = 0;
		break;
	case MPROC_CONN_STREAM:
		type = SOCK_STREAM;
		break;
	case MPROC_CONN_SEQPACKET:
		type = SOCK_SEQPACKET;
		break;
	default:
		return -EINVAL;
	}
	if (type == 0) {
		if (pipe2(p1, O_CLOEXEC) < 0)
			return -errno;
		if (!o->simplex && pipe2(p2, O_CLOEXEC) < 0) {
			r = -errno;
			goto out_close;
		}
		/* Best effort: F_SETPIPE_SZ fails past the user's pipe page budget. */
		size_t want = o->pipe_bytes ? o->pipe_bytes : MPROC_CONN_PIPE_BYTES_DEFAULT;

		if (want <= INT_MAX) {
			fcntl(p1[1], F_SETPIPE_SZ, (int)want);
			if (p2[1] >= 0)
				fcntl(p2[1], F_SETPIPE_SZ, (int)want);
		}
		/* p1 carries b -> a (a reads first, as Python's Pipe(False) returns r, w);
		 * p2 carries a -> b. */
		r = conn_new(&ca, o, p1[0], o->simplex ? -1 : p2[1], chunk);
		if (r < 0)
			goto out_close;
		p1[0] = p2[1] = -1;
		r = conn_new(&cb, o, o->simplex ? -1 : p2[0], p1[1], chunk);
		if (r < 0)
			goto out_close;
		conn_link_peer(ca, cb);
		conn_link_peer(cb, ca);
		*a = ca;
		*b = cb;
		return 0;
	}
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, p1) < 0)
		return -errno;
	if (type == SOCK_SEQPACKET) {
		int sndbuf = 0;
		socklen_t sl = sizeof(sndbuf);

		/* One packet must fit the send buffer, whatever the sysctls say. */
		if (getsockopt(p1[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) == 0 && sndbuf > 0 &&
		    (size_t)sndbuf / 4 < chunk)
			chunk = (size_t)sndbuf / 4 > 1024 ? (size_t)sndbuf / 4 : 1024;
	}
	if (o->simplex) {
		shutdown(p1[0], SHUT_WR);
		shutdown(p1[1], SHUT_RD);
	}
	r = conn_new(&ca, o, p1[0], o->simplex ? -1 : p1[0], chunk);
	if (r < 0)
		goto out_close;
	p1[0] = -1;
	r = conn_new(&cb, o, o->simplex ? -1 : p1[1], p1[1], chunk);
	if (r < 0)
		goto out_close;
	*a = ca;
	*b = cb;
	return 0;
out_close:
	mproc_conn_close(ca);
	mproc__close(p1[0]);
	mproc__close(p1[1]);
	mproc__close(p2[0]);
	mproc__close(p2[1]);
	return r;
}
