/* conn.c - connected pairs over pipes and Unix socket pairs, with framed messages (conn.h): the
 * frame header, the send side, and the endpoints' lifecycle. Receiving is in conn_recv.c. */
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

#include "conn_internal.h"

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
 * (a 64 KiB framed writer can sleep once per message where a bare pipe's sleeps once per
 * two; tools/pipe_floor shows it on the machine at hand). The second syscall
 * instead finds the reader inside its read, holding the pipe's mutex, and the kernel's
 * optimistic mutex spinning waits for that read to end without sleeping. On one CPU the
 * reader cannot run meanwhile, so there the extra syscall is pure cost and the frame goes out
 * in one blocking writev. See tools/pipe_floor.
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

/* ---- lifecycle --------------------------------------------------------------------------- */

void mproc_conn_free(struct mproc_conn *c)
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

void mproc_conn_close(struct mproc_conn *c)
{
	mproc_conn_free(c);
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
	mproc_conn_free(c);
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

/* Long (about 85 lines) on purpose: one goto ladder over the fds of the transport, the two
 * endpoints and their shared pages, acquired in order and undone in reverse (STYLE.md). */
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
	mproc_conn_free(ca);
	mproc__close(p1[0]);
	mproc__close(p1[1]);
	mproc__close(p2[0]);
	mproc__close(p2[1]);
	return r;
}
