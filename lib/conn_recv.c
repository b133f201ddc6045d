/*
 * conn_recv.c - the receive side of mproc_conn (conn.h): whole frames from pipes (through the
 * read-ahead), stream sockets and seqpacket sockets, with their SCM_RIGHTS fds; the raw read,
 * poll and fileno. The send side and the endpoints' lifecycle are in conn.c.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "conn_internal.h"

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
