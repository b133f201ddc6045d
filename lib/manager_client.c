/*
 * manager_client.c - the client side of the manager: connect + mutual handshake, one
 * request/reply per call, and the proxies.
 *
 * Every wait has a deadline: the handshake 5 s (or connect_timeout_s), a call call_timeout_s
 * (plus the call's own timeout for queue and lock waits). EOF or a reset reads as -EPIPE, so
 * a dead server reaches the caller at once on a local socket. After any transport error, a
 * malformed reply or a timeout the reply stream can no longer be trusted, so the client is
 * marked broken and every later call returns -EPIPE.
 *
 * A call costs one send and one recv: the socket is blocking, and the deadline is enforced by
 * SO_RCVTIMEO/SO_SNDTIMEO (set once to call_timeout_s) instead of a poll before every recv.
 * A kernel timeout or EINTR wakes the loop, which checks the deadline and waits again for what
 * is left of it, shortening the socket timeout only when less than a whole one remains (so a
 * call with the default timeouts never pays for a setsockopt). Before that blocking recv, a
 * call busy-polls for its reply (adaptive, bounded: MPROC__MGR_SPIN_NS) unless
 * MPROC_MANAGER_NOSPIN.
 *
 * On a Unix socket the client asks whether the server offers a shared-memory channel (unless
 * MPROC_MANAGER_NOSHM): the question rides in the same write as the handshake's RESPONSE and its
 * answer comes with WELCOME, so it costs connect one recv. The channel itself (a memfd and an
 * eventfd made, passed, mapped, and unmapped and closed at the end: ~70 us on a 2-core VM where
 * a connect is ~75 us) is set up only before the call that follows MPROC__MGR_CHAN_AFTER calls
 * on the socket, so a client that connects for a few calls never pays for it, and one that
 * makes many pays once. A client whose fds or memory run short then stays on the socket. A call
 * whose request fits the mailbox then costs no syscall while both sides are awake: the request
 * goes into the request mailbox, the client spins on rep_seq for the same bounded budget, then
 * sleeps on it as a futex in slices (20 ms, growing to 250 ms), peeking at the socket between them, so
 * that a server that dies (SIGKILL leaves the shared memory as it was) still reaches the caller
 * as -EPIPE. A larger request goes on the socket, and so does its reply; a reply larger than
 * the mailbox comes on the socket too (rep_len 0 says so). See struct mproc__mgr_chan_hdr.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "manager_internal.h"

struct mproc_mclient {
	int fd;
	bool broken;
	int64_t call_timeout_ns;
	int64_t timeo_ns;               /* SO_RCVTIMEO/SO_SNDTIMEO now on fd; 0: none set */
	struct mproc__mgr_spin spin;    /* busy-poll for a reply first (MPROC__MGR_SPIN_NS) */
	uint64_t max_frame;             /* the server's, announced in WELCOME */
	struct mproc__mw_buf req;
	uint8_t *rbuf;                  /* the last reply: header + body */
	size_t rcap;
	const uint8_t *payload;         /* into rbuf */
	size_t plen;
	struct mproc__mgr_chan_hdr *chan;       /* the shared-memory channel; NULL: socket only */
	int efd;                                /* the server's eventfd (wakes it); -1: none */
	uint32_t seq;                           /* req_seq of the last request in the mailbox */
	bool chan_offered;                      /* the server offers one; not asked for yet */
	unsigned sock_calls;                    /* calls on the socket while one is offered */
};

#define PROXY_STRUCT(name)                                                                 \
	struct name {                                                                      \
		struct mproc_mclient *c;                                                   \
		uint32_t id;                                                               \
	}
PROXY_STRUCT(mproc_dict);
PROXY_STRUCT(mproc_list);
PROXY_STRUCT(mproc_mvalue);
PROXY_STRUCT(mproc_mqueue);
PROXY_STRUCT(mproc_mlock);

static int map_err(int r)
{
	return r == -ECONNRESET || r == -ENOTCONN || r == -ESHUTDOWN ? -EPIPE : r;
}

/* Set the socket's receive and send timeouts (the kernel rounds them up to a jiffy). */
static int set_timeo(struct mproc_mclient *c, int64_t ns)
{
	struct timeval tv;

	if (ns < 1000)
		ns = 1000;      /* 0 would mean "no timeout" */
	tv.tv_sec = (time_t)(ns / MPROC__NSEC_PER_SEC);
	tv.tv_usec = (suseconds_t)(ns % MPROC__NSEC_PER_SEC / 1000);
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	c->timeo_ns = ns;
	return 0;
}

/*
 * After a socket timeout or EINTR: -ETIMEDOUT once the deadline has passed, else 0 with the
 * socket timeout cut to what is left when that is less than the current one.
 */
static int rewait(struct mproc_mclient *c, int64_t deadline)
{
	int64_t left;

	if (deadline == MPROC__NO_DEADLINE)
		return 0;
	left = deadline - mproc__now_ns();
	if (left <= 0)
		return -ETIMEDOUT;
	return left < c->timeo_ns ? set_timeo(c, left) : 0;
}

/* recv that first polls for a while (MPROC__MGR_SPIN_NS; mproc__mgr_spin_yield decides which
 * polls yield the CPU first). */
static ssize_t recv_spin(int fd, void *buf, size_t len, struct mproc__mgr_spin *spin)
{
	int64_t budget = spin ? mproc__mgr_spin_budget(spin) : 0, end;
	bool busy = false;
	ssize_t n;

	if (budget > 0) {
		end = mproc__now_ns() + budget;
		for (unsigned i = 0;; i++) {
			mproc__mgr_spin_yield(i, &busy);
			n = recv(fd, buf, len, MSG_DONTWAIT);
			if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
				mproc__mgr_spin_result(spin, true);
				return n;
			}
			if (mproc__now_ns() >= end)
				break;
		}
		mproc__mgr_spin_result(spin, false);
	}
	return recv(fd, buf, len, 0);
}

/* Room for a frame of n bytes in c->rbuf (a socket's or a mailbox's reply): 0 or -ENOMEM. */
static int rbuf_reserve(struct mproc_mclient *c, size_t n)
{
	uint8_t *p;

	if (n <= c->rcap)
		return 0;
	p = realloc(c->rbuf, n);
	if (!p)
		return -ENOMEM;
	c->rbuf = p;
	c->rcap = n;
	return 0;
}

/*
 * Read one frame into c->rbuf with the whole-frame limit, the first `have` bytes of which are
 * there already, reading at most `room` bytes until its header is known (c->rcap: the body
 * usually comes in the same recv). With over, bytes read past the frame are allowed (a frame
 * that follows: the caller bounds them with room) and *over says how many; without, they are
 * a protocol error. Returns the op (> 0) with c->payload/plen set, or -EPIPE (EOF/reset),
 * -ETIMEDOUT, -EBADMSG, -EMSGSIZE, -ENOMEM.
 */
static int read_frame_from(struct mproc_mclient *c, uint64_t limit, int64_t deadline, bool spin,
			   size_t have, size_t room, size_t *over)
{
	struct mproc__mw_hdr h = { 0 };
	size_t want = MPROC__MW_HDR;
	bool hdr = false;
	ssize_t n;
	int r;

	for (;;) {
		while (have < want) {
			/* A blocking recv: the reply (header and body, usually) in one call. */
			n = recv_spin(c->fd, c->rbuf + have, (hdr ? want : room) - have,
				      spin && have == 0 ? &c->spin : NULL);
			if (n == 0)
				return -EPIPE;
			if (n < 0) {
				if (errno != EINTR && errno != EAGAIN)
					return map_err(-errno);
				r = rewait(c, deadline);
				if (r < 0)
					return r;
				continue;
			}
			have += (size_t)n;
		}
		if (hdr)
			break;
		r = mproc__mw_hdr_parse(c->rbuf, limit, &h);
		if (r < 0)
			return r;
		hdr = true;
		want = MPROC__MW_HDR + (size_t)h.len;
		r = rbuf_reserve(c, want);
		if (r < 0)
			return r;
	}
	/* One request, one reply: anything past the frame is a protocol error. */
	if (over)
		*over = have - want;
	else if (have != want)
		return -EBADMSG;
	c->payload = c->rbuf + MPROC__MW_HDR;
	c->plen = (size_t)h.len;
	return h.op;
}

static int read_frame(struct mproc_mclient *c, uint64_t limit, int64_t deadline, bool spin)
{
	return read_frame_from(c, limit, deadline, spin, 0, c->rcap, NULL);
}

/* Write a whole frame; a send timeout or EINTR waits again until the deadline. */
static int write_frame(struct mproc_mclient *c, const uint8_t *p, size_t len, int64_t deadline)
{
	ssize_t n;
	int r;

	while (len) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EINTR && errno != EAGAIN)
				return map_err(-errno);
			r = rewait(c, deadline);
			if (r < 0)
				return r;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(struct mproc_mclient *c, uint8_t op, const void *p, size_t n,
		      int64_t deadline)
{
	uint8_t buf[MPROC__MW_HDR + 64];

	mproc__mw_hdr_put(buf, n, op);
	if (n)
		memcpy(buf + MPROC__MW_HDR, p, n);      /* p may be NULL for an empty body */
	return write_frame(c, buf, MPROC__MW_HDR + n, deadline);
}

/* ---- the shared-memory channel ---- */

static void chan_close(struct mproc_mclient *c)
{
	mproc__mgr_chan_unmap(c->chan);
	c->chan = NULL;
	mproc__closep(&c->efd);
}

/*
 * Why the fds did not all arrive (MSG_CTRUNC): the kernel drops those it cannot install at the
 * fd limit (-EMFILE, as any constructor short of fds says), else more came than the two a
 * channel has (-EBADMSG). A dup shows which.
 */
static int ctrunc_errno(int fd)
{
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (d < 0)
		return errno == EMFILE || errno == ENFILE ? -errno : -EBADMSG;
	mproc__close(d);
	return -EBADMSG;
}

/*
 * Ask for a channel (CHANNEL, empty) and map it, between two calls. Returns 0 with the channel
 * set up, or 0 without one where the server refuses or this process cannot take it (no fd free
 * for the two the server passes, mmap failing): the reply is read whole either way, so the
 * client stays on the socket, in step. Else a transport error, or -EBADMSG (a malformed answer,
 * missing or extra fds, a memfd of the wrong size): the client is broken.
 */
static int chan_open(struct mproc_mclient *c, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *cm;
	int fds[2] = { -1, -1 }, nfds = 0, short_fds, op, r;
	void *map = NULL;
	uint32_t u;
	ssize_t n;

	r = send_frame(c, MPROC__MW_CHANNEL, NULL, 0, deadline);
	if (r < 0)
		return r;
	for (;;) {
		/* The fds come with the reply's first byte: read up to its header here. */
		iov = (struct iovec){ c->rbuf, MPROC__MW_HDR };
		mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
				      .msg_controllen = sizeof(cb.buf) };
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n > 0)
			break;
		if (n == 0)
			return -EPIPE;
		if (errno != EINTR && errno != EAGAIN)
			return map_err(-errno);
		r = rewait(c, deadline);
		if (r < 0)
			return r;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k, cnt;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(fd));
			if (nfds < 2)
				fds[nfds] = fd;
			else
				mproc__close(fd);       /* never keep an fd we did not expect */
			nfds++;
		}
	}
	/* -EMFILE: dropped at the fd limit, -EBADMSG: more than two came. */
	short_fds = mh.msg_flags & MSG_CTRUNC ? ctrunc_errno(c->fd) : 0;
	if (short_fds == -EBADMSG) {
		r = short_fds;
		goto out;
	}
	op = read_frame_from(c, c->max_frame, deadline, false, (size_t)n, c->rcap, NULL);
	r = op < 0 ? op : op != MPROC__MW_REPLY || c->plen < 4 ? -EBADMSG : 0;
	if (r < 0)
		goto out;
	u = mproc__mw_u32(c->payload);
	if (u != 0) {
		/* Refused (or could not be made): stay on the socket. */
		r = (int32_t)u < 0 && c->plen == 4 && nfds == 0 ? 0 : -EBADMSG;
		goto out;
	}
	if (c->plen != 8 || mproc__mw_u32(c->payload + 4) != MPROC__MGR_CHAN_BOX ||
	    (short_fds == 0 && nfds != 2)) {
		r = -EBADMSG;
		goto out;
	}
	if (short_fds < 0)
		goto out;       /* r == 0: on the socket, the server's side unused */
	r = mproc__mgr_chan_attach(fds[0], &map);
	if (r < 0) {
		r = r == -EBADMSG ? r : 0;      /* mmap failed: on the socket */
		goto out;
	}
	c->chan = map;
	c->efd = fds[1];
	fds[1] = -1;
out:
	mproc__close(fds[0]);   /* mapped: the mapping keeps the memory */
	mproc__close(fds[1]);
	return r;
}

/*
 * Wait until rep_seq says request seq is answered: poll first (the budget and yields of
 * recv_spin, MPROC__MGR_CHAN_POLL_LOADS loads making one poll), then sleep on rep_seq as a
 * futex, raising cli_waiting first (fenced: see struct mproc__mgr_chan_hdr), in slices of
 * MPROC__MGR_CHAN_SLICE_NS doubling to MPROC__MGR_CHAN_SLICE_MAX_NS. After each slice a peek
 * at the socket: EOF or a reset means the
 * server died (-EPIPE); nothing else arrives there while a reply is due in the mailbox.
 * Returns 0, -ETIMEDOUT at the deadline, or -EPIPE.
 */
static int chan_wait(struct mproc_mclient *c, uint32_t seq, int64_t deadline, bool spin)
{
	struct mproc__mgr_chan_hdr *h = c->chan;
	int64_t budget = spin ? mproc__mgr_spin_budget(&c->spin) : 0, end, now, until;
	int64_t slice = MPROC__MGR_CHAN_SLICE_NS;
	bool busy = false, got = false;
	uint32_t v;
	ssize_t n;
	char b;
	int r;

	if (budget > 0) {
		end = mproc__now_ns() + budget;
		for (unsigned i = 0; !got; i++) {
			mproc__mgr_spin_yield(i, &busy);
			for (unsigned k = 0; k < MPROC__MGR_CHAN_POLL_LOADS && !got; k++) {
				got = atomic_load_explicit(&h->rep_seq,
							   memory_order_acquire) == seq;
				mproc__cpu_relax();
			}
			if (mproc__now_ns() >= end)
				break;
		}
		mproc__mgr_spin_result(&c->spin, got);
		if (got)
			return 0;
	}
	for (;;) {
		atomic_store_explicit(&h->cli_waiting, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		v = atomic_load_explicit(&h->rep_seq, memory_order_acquire);
		if (v == seq) {
			r = 0;
			break;
		}
		now = mproc__now_ns();
		if (deadline != MPROC__NO_DEADLINE && now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		until = now + slice;
		if (deadline != MPROC__NO_DEADLINE && deadline < until)
			until = deadline;
		if (slice < MPROC__MGR_CHAN_SLICE_MAX_NS)
			slice *= 2;
		r = mproc__futex_wait((uint32_t *)&h->rep_seq, v, until);
		if (r < 0 && r != -ETIMEDOUT && r != -EINTR)
			break;
		n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0) {
			r = -EPIPE;
			break;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			r = map_err(-errno);
			break;
		}
	}
	atomic_store_explicit(&h->cli_waiting, 0, memory_order_relaxed);
	return r;
}

/*
 * A call through the channel (c->req fits the mailbox): publish the request, wake the server
 * if it sleeps (the eventfd, only when its flag is up), wait for the reply and copy it into
 * c->rbuf (bounded, before parsing: the mapping is shared), or read it from the socket where
 * the server put it there (rep_len 0). Returns the reply's op or an error as read_frame.
 */
static int chan_call(struct mproc_mclient *c, int64_t deadline, bool spin)
{
	struct mproc__mgr_chan_hdr *h = c->chan;
	struct mproc__mw_hdr hd;
	uint64_t one = 1;
	uint32_t seq = c->seq + 1, len;
	int r;

	memcpy(mproc__mgr_chan_req(h), c->req.p, c->req.len);
	atomic_store_explicit(&h->req_len, (uint32_t)c->req.len, memory_order_relaxed);
	atomic_store_explicit(&h->req_seq, seq, memory_order_release);
	c->seq = seq;
	atomic_thread_fence(memory_order_seq_cst);
	/* EAGAIN: the counter is full, so the server has a wakeup pending anyway. */
	if (atomic_load_explicit(&h->srv_sleeping, memory_order_relaxed) &&
	    write(c->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	r = chan_wait(c, seq, deadline, spin);
	if (r < 0)
		return r;
	len = atomic_load_explicit(&h->rep_len, memory_order_relaxed);
	if (len == 0)
		return read_frame(c, c->max_frame, deadline, false);
	if (len < MPROC__MW_HDR || len > MPROC__MGR_CHAN_BOX)
		return -EBADMSG;
	r = rbuf_reserve(c, len);
	if (r < 0)
		return r;
	memcpy(c->rbuf, mproc__mgr_chan_rep(h), len);
	r = mproc__mw_hdr_parse(c->rbuf, c->max_frame, &hd);
	if (r < 0)
		return r;
	if (hd.len != len - MPROC__MW_HDR)
		return -EBADMSG;
	c->payload = c->rbuf + MPROC__MW_HDR;
	c->plen = (size_t)hd.len;
	return hd.op;
}

/*
 * The handshake; with ask, the CHANNEL question (a body of MPROC__MGR_CHAN_ASK) goes in the
 * same write as RESPONSE, and its answer, which the server sends with WELCOME, sets
 * c->chan_offered. The server sends both in one write, so one recv takes WELCOME and the
 * answer (at most their sizes: nothing else is due). Returns 0, -EACCES, -EBADMSG, a
 * transport error, or -EPIPE where the server hung up after WELCOME instead of answering (a
 * server of a build before the channel does that with an op it does not know).
 */
static int handshake(struct mproc_mclient *c, const void *key, size_t keylen, int64_t deadline,
		     bool ask)
{
	uint8_t resp[MPROC__SHA256_LEN + MPROC__MW_NONCE], mac[MPROC__SHA256_LEN];
	uint8_t out[2 * MPROC__MW_HDR + sizeof(resp) + 1];
	uint8_t ns[MPROC__MW_NONCE];
	size_t len, over = 0;
	uint32_t u;
	int op, r;

	op = read_frame(c, MPROC__MW_PREAUTH_MAX, deadline, false);
	if (op < 0)
		return op;
	if (op != MPROC__MW_CHALLENGE || c->plen != MPROC__MW_NONCE)
		return -EBADMSG;
	memcpy(ns, c->payload, sizeof(ns));
	mproc__mw_mac_client(key, keylen, ns, resp);
	r = mproc__random(resp + MPROC__SHA256_LEN, MPROC__MW_NONCE);
	if (r < 0)
		return r;
	mproc__mw_hdr_put(out, sizeof(resp), MPROC__MW_RESPONSE);
	memcpy(out + MPROC__MW_HDR, resp, sizeof(resp));
	len = MPROC__MW_HDR + sizeof(resp);
	if (ask) {
		mproc__mw_hdr_put(out + len, 1, MPROC__MW_CHANNEL);
		out[len + MPROC__MW_HDR] = MPROC__MGR_CHAN_ASK;
		len += MPROC__MW_HDR + 1;
	}
	r = write_frame(c, out, len, deadline);
	if (r < 0)
		return r;
	/* With ask, at most WELCOME (MAC, u64 max_frame) and the answer (i32 status, u32 box). */
	op = read_frame_from(c, MPROC__MW_PREAUTH_MAX, deadline, false, 0,
			     ask ? 2 * MPROC__MW_HDR + MPROC__SHA256_LEN + 8 + 8 : c->rcap,
			     ask ? &over : NULL);
	if (op == -EPIPE)
		return -EACCES;         /* a server that hangs up on our proof refused it */
	if (op < 0)
		return op;
	if (op == MPROC__MW_FAILURE)
		return -EACCES;
	if (op != MPROC__MW_WELCOME || c->plen != MPROC__SHA256_LEN + 8)
		return -EBADMSG;
	/* The server proves the key too: a server without it cannot fake WELCOME. */
	mproc__mw_mac_server(key, keylen, resp + MPROC__SHA256_LEN, ns, mac);
	if (!mproc__ct_equal(mac, c->payload, sizeof(mac)))
		return -EACCES;
	c->max_frame = mproc__mw_u64(c->payload + MPROC__SHA256_LEN);
	if (c->max_frame < 4096)
		return -EBADMSG;
	if (!ask)
		return 0;
	/* The answer, or what came of it with WELCOME. */
	memmove(c->rbuf, c->rbuf + MPROC__MW_HDR + c->plen, over);
	op = read_frame_from(c, c->max_frame, deadline, false, over, c->rcap, NULL);
	if (op < 0)
		return op;
	if (op != MPROC__MW_REPLY || c->plen < 4)
		return -EBADMSG;
	u = mproc__mw_u32(c->payload);
	if (u == 0 && c->plen == 8 && mproc__mw_u32(c->payload + 4) == MPROC__MGR_CHAN_BOX)
		c->chan_offered = true;
	else if (u == 0 || (int32_t)u > 0 || c->plen != 4)
		return -EBADMSG;
	return 0;
}

static int dial(const struct mproc__mgr_addr *a, int64_t deadline)
{
	struct sockaddr_storage ss;
	struct timespec ts = { 0, 1000000 };
	socklen_t sl, el = sizeof(int);
	int fd, r, err = 0, one = 1;

	fd = mproc__mgr_socket(a, &ss, &sl);
	if (fd < 0)
		return fd;
	r = mproc__set_nonblock(fd, true);
	if (r < 0)
		goto out;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && !a->tcp) {
			/* A full Unix backlog: try again until the deadline. */
			if (mproc__now_ns() >= deadline) {
				r = -ETIMEDOUT;
				goto out;
			}
			nanosleep(&ts, NULL);
			continue;
		}
		if (errno != EINPROGRESS) {
			r = -errno;
			goto out;
		}
		r = mproc__poll1(fd, POLLOUT, deadline);
		if (r < 0)
			goto out;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) {
			r = -errno;
			goto out;
		}
		if (err) {
			r = -err;
			goto out;
		}
		break;
	}
	/* Blocking from now on: every wait is a socket timeout (set_timeo), not a poll. */
	r = mproc__set_nonblock(fd, false);
	if (r < 0)
		goto out;
	if (a->tcp)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
out:
	mproc__close(fd);
	return r;
}

static int64_t seconds_ns(double s, double dflt)
{
	if (!(s > 0) || isinf(s))
		s = dflt;
	if (s > 9.0e9)
		s = 9.0e9;      /* ~285 years; more would overflow int64 ns */
	return (int64_t)(s * 1e9);
}

int mproc_manager_connect_opts(struct mproc_mclient **out, const char *address, const void *key,
			       size_t keylen, const struct mproc_mclient_opts *o)
{
	static const struct mproc_mclient_opts defaults;
	struct mproc__mgr_addr a;
	struct mproc_mclient *c;
	int64_t deadline;
	bool ask;
	int r;

	if (!out || !key || keylen < MPROC_MANAGER_KEY_MIN || keylen > MPROC_MANAGER_KEY_MAX)
		return -EINVAL;
	if (!o)
		o = &defaults;
	if (o->connect_timeout_s < 0 || o->call_timeout_s < 0 || isnan(o->connect_timeout_s) ||
	    isnan(o->call_timeout_s) || (o->flags & ~MPROC_MANAGER_FLAGS_ALL))
		return -EINVAL;
	r = mproc__mgr_addr_parse(address, &a);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->call_timeout_ns = seconds_ns(o->call_timeout_s, 10.0);
	c->spin.budget_ns = o->flags & MPROC_MANAGER_NOSPIN ? 0 : MPROC__MGR_SPIN_NS;
	c->efd = -1;
	c->rcap = 4096;
	c->rbuf = malloc(c->rcap);
	if (!c->rbuf) {
		r = -ENOMEM;
		goto out_free;
	}
	deadline = mproc__now_ns() + seconds_ns(o->connect_timeout_s, MPROC__MW_HANDSHAKE_S);
	for (int tries = 0;; tries++) {
		c->fd = dial(&a, deadline);
		if (c->fd < 0) {
			r = c->fd;
			goto out_free;
		}
		r = set_timeo(c, deadline - mproc__now_ns());
		if (r < 0)
			goto out_close;
		ask = !a.tcp && !(o->flags & MPROC_MANAGER_NOSHM) && tries == 0;
		r = handshake(c, key, keylen, deadline, ask);
		/* A server of a build before the channel hangs up on an op it does not know
		 * (the wire version did not change): once more, socket only. */
		if (r == -EPIPE && ask) {
			mproc__closep(&c->fd);
			continue;
		}
		break;
	}
	if (r == 0)
		r = set_timeo(c, c->call_timeout_ns);
	if (r < 0)
		goto out_close;
	*out = c;
	return 0;
out_close:
	chan_close(c);
	mproc__close(c->fd);
out_free:
	free(c->rbuf);
	free(c);
	return r;
}

int mproc_manager_connect(struct mproc_mclient **out, const char *address, const void *key,
			  size_t keylen)
{
	return mproc_manager_connect_opts(out, address, key, keylen, NULL);
}

void mproc_manager_disconnect(struct mproc_mclient *c)
{
	if (!c)
		return;
	chan_close(c);
	mproc__close(c->fd);
	mproc__mw_buf_free(&c->req);
	free(c->rbuf);
	free(c);
}

/* ---- calls ---- */

/* Start a request: header space, then the object id (if any). */
static int req_begin(struct mproc_mclient *c, bool with_id, uint32_t id)
{
	int r;

	if (c->broken)
		return -EPIPE;
	c->req.len = c->req.off = 0;
	r = mproc__mw_reserve(&c->req, MPROC__MW_HDR + 64);
	if (r < 0)
		return r;
	c->req.len = MPROC__MW_HDR;
	if (with_id) {
		mproc__mw_put_u32(c->req.p + c->req.len, id);
		c->req.len += 4;
	}
	return 0;
}

static int req_u64(struct mproc_mclient *c, uint64_t v)
{
	uint8_t b[8];

	mproc__mw_put_u64(b, v);
	return mproc__mw_put(&c->req, b, sizeof(b));
}

static int req_str(struct mproc_mclient *c, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	uint8_t b[4];
	int r;

	if (n == 0 || n > MPROC_MANAGER_NAME_MAX)
		return -EINVAL;
	mproc__mw_put_u32(b, (uint32_t)n);
	r = mproc__mw_put(&c->req, b, sizeof(b));
	return r < 0 ? r : mproc__mw_put(&c->req, s, n);
}

static int req_bytes(struct mproc_mclient *c, const void *p, size_t n)
{
	if (n && !p)
		return -EINVAL;
	if (n > c->max_frame)
		return -EMSGSIZE;
	return mproc__mw_put(&c->req, p, n);
}

/*
 * Send the request and wait for its reply. wait_ns is the call's own timeout (-1: forever).
 * Returns the server's status (0 or -errno, payload in c->payload) or a transport error.
 */
static int call(struct mproc_mclient *c, uint8_t op, int64_t wait_ns)
{
	int64_t now = mproc__now_ns(), deadline;
	int32_t status;
	uint32_t u;
	int r;

	if (c->req.len > c->max_frame)
		return -EMSGSIZE;       /* refused before sending: the client stays usable */
	mproc__mw_hdr_put(c->req.p, c->req.len - MPROC__MW_HDR, op);
	if (wait_ns < 0)
		deadline = MPROC__NO_DEADLINE;
	else
		deadline = now + c->call_timeout_ns + wait_ns;
	if (c->timeo_ns != c->call_timeout_ns) {
		/* A previous call cut it short near its deadline. */
		r = set_timeo(c, c->call_timeout_ns);
		if (r < 0)
			goto broken;
	}
	/* The channel once the client has shown it makes calls (MPROC__MGR_CHAN_AFTER); one try. */
	if (c->chan_offered && c->req.len <= MPROC__MGR_CHAN_BOX &&
	    ++c->sock_calls > MPROC__MGR_CHAN_AFTER) {
		c->chan_offered = false;
		r = chan_open(c, deadline);
		if (r < 0)
			goto broken;
	}
	/* A call that waits on others (queue, lock) sleeps at once. */
	if (c->chan && c->req.len <= MPROC__MGR_CHAN_BOX) {
		r = chan_call(c, deadline, wait_ns == 0);
	} else {
		r = write_frame(c, c->req.p, c->req.len, deadline);
		if (r == 0)
			r = read_frame(c, c->max_frame, deadline, wait_ns == 0);
	}
	if (r < 0)
		goto broken;
	if (r != MPROC__MW_REPLY || c->plen < 4) {
		r = -EBADMSG;
		goto broken;
	}
	u = mproc__mw_u32(c->payload);
	memcpy(&status, &u, sizeof(status));
	if (status > 0 || (status < -4095 && status != MPROC_EOF) ||
	    (status < 0 && c->plen != 4)) {
		r = -EBADMSG;
		goto broken;
	}
	c->payload += 4;
	c->plen -= 4;
	return status;
broken:
	c->broken = true;
	return map_err(r);
}

static ssize_t copy_out(struct mproc_mclient *c, void *buf, size_t cap)
{
	if (cap && !buf)
		return -EINVAL;
	if (cap)
		memcpy(buf, c->payload, c->plen < cap ? c->plen : cap);
	return (ssize_t)c->plen;
}

static int reply_u64(struct mproc_mclient *c, uint64_t *v)
{
	if (c->plen != 8) {
		c->broken = true;
		return -EBADMSG;
	}
	*v = mproc__mw_u64(c->payload);
	return 0;
}

int mproc_manager_ping(struct mproc_mclient *c)
{
	int r;

	if (!c)
		return -EINVAL;
	r = req_begin(c, false, 0);
	return r < 0 ? r : call(c, MPROC__MW_PING, 0);
}

static int open_obj(struct mproc_mclient *c, uint8_t kind, uint64_t param, const char *name,
		    uint32_t *id)
{
	uint8_t k = kind;
	int r;

	if (!c || !name)
		return -EINVAL;
	r = req_begin(c, false, 0);
	if (r == 0)
		r = mproc__mw_put(&c->req, &k, 1);
	if (r == 0)
		r = req_u64(c, param);
	if (r == 0)
		r = req_str(c, name);
	if (r < 0)
		return r;
	r = call(c, MPROC__MW_OPEN, 0);
	if (r < 0)
		return r;
	if (c->plen != 4) {
		c->broken = true;
		return -EBADMSG;
	}
	*id = mproc__mw_u32(c->payload);
	return 0;
}

#define PROXY_OPEN_FREE(type, kind)                                                       \
	int type##_open(struct type **out, struct mproc_mclient *c, const char *name)      \
	{                                                                                  \
		struct type *p;                                                            \
		uint32_t id;                                                               \
		int r;                                                                     \
                                                                                           \
		if (!out)                                                                  \
			return -EINVAL;                                                    \
		r = open_obj(c, kind, 0, name, &id);                                       \
		if (r < 0)                                                                 \
			return r;                                                          \
		p = malloc(sizeof(*p));                                                    \
		if (!p)                                                                    \
			return -ENOMEM;                                                    \
		p->c = c;                                                                  \
		p->id = id;                                                                \
		*out = p;                                                                  \
		return 0;                                                                  \
	}                                                                                  \
	void type##_free(struct type *p)                                                   \
	{                                                                                  \
		free(p);                                                                   \
	}                                                                                  \
	void type##_close(struct type *p)                                                  \
	{                                                                                  \
		type##_free(p);                                                            \
	}

PROXY_OPEN_FREE(mproc_dict, MPROC__MW_KIND_DICT)
PROXY_OPEN_FREE(mproc_list, MPROC__MW_KIND_LIST)
PROXY_OPEN_FREE(mproc_mvalue, MPROC__MW_KIND_VALUE)
PROXY_OPEN_FREE(mproc_mlock, MPROC__MW_KIND_LOCK)

int mproc_mqueue_open(struct mproc_mqueue **out, struct mproc_mclient *c, const char *name,
		      size_t maxsize)
{
	struct mproc_mqueue *q;
	uint32_t id;
	int r;

	if (!out)
		return -EINVAL;
	r = open_obj(c, MPROC__MW_KIND_QUEUE, maxsize, name, &id);
	if (r < 0)
		return r;
	q = malloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->c = c;
	q->id = id;
	*out = q;
	return 0;
}

void mproc_mqueue_free(struct mproc_mqueue *q)
{
	free(q);
}

void mproc_mqueue_close(struct mproc_mqueue *q)
{
	mproc_mqueue_free(q);
}

/* Simple calls: id [+ key] [+ payload] -> status, payload copied out or a u64. */
static ssize_t simple(struct mproc_mclient *c, uint32_t id, uint8_t op, const char *key,
		      const void *val, size_t len, bool with_val)
{
	int r = req_begin(c, true, id);

	if (r == 0 && key)
		r = req_str(c, key);
	if (r == 0 && with_val)
		r = req_bytes(c, val, len);
	if (r < 0)
		return r;
	return call(c, op, 0);
}

int mproc_dict_set(struct mproc_dict *d, const char *key, const void *val, size_t len)
{
	if (!d || !key)
		return -EINVAL;
	return (int)simple(d->c, d->id, MPROC__MW_DICT_SET, key, val, len, true);
}

ssize_t mproc_dict_get(struct mproc_dict *d, const char *key, void *buf, size_t cap)
{
	ssize_t r;

	if (!d || !key || (cap && !buf))
		return -EINVAL;
	r = simple(d->c, d->id, MPROC__MW_DICT_GET, key, NULL, 0, false);
	return r < 0 ? r : copy_out(d->c, buf, cap);
}

int mproc_dict_del(struct mproc_dict *d, const char *key)
{
	if (!d || !key)
		return -EINVAL;
	return (int)simple(d->c, d->id, MPROC__MW_DICT_DEL, key, NULL, 0, false);
}

static ssize_t len_call(struct mproc_mclient *c, uint32_t id, uint8_t op)
{
	uint64_t v;
	ssize_t r = simple(c, id, op, NULL, NULL, 0, false);

	if (r < 0)
		return r;
	r = reply_u64(c, &v);
	return r < 0 ? r : (ssize_t)v;
}

ssize_t mproc_dict_len(struct mproc_dict *d)
{
	return d ? len_call(d->c, d->id, MPROC__MW_DICT_LEN) : -EINVAL;
}

int mproc_list_append(struct mproc_list *l, const void *val, size_t len)
{
	if (!l)
		return -EINVAL;
	return (int)simple(l->c, l->id, MPROC__MW_LIST_APPEND, NULL, val, len, true);
}

ssize_t mproc_list_get(struct mproc_list *l, int64_t index, void *buf, size_t cap)
{
	int r;

	if (!l || (cap && !buf))
		return -EINVAL;
	r = req_begin(l->c, true, l->id);
	if (r == 0)
		r = req_u64(l->c, (uint64_t)index);
	if (r == 0)
		r = call(l->c, MPROC__MW_LIST_GET, 0);
	return r < 0 ? r : copy_out(l->c, buf, cap);
}

ssize_t mproc_list_len(struct mproc_list *l)
{
	return l ? len_call(l->c, l->id, MPROC__MW_LIST_LEN) : -EINVAL;
}

static int value_int_call(struct mproc_mvalue *v, uint8_t op, int64_t x, int64_t *out)
{
	uint64_t u;
	int r;

	if (!v)
		return -EINVAL;
	r = req_begin(v->c, true, v->id);
	if (r == 0 && op != MPROC__MW_VALUE_GET)
		r = req_u64(v->c, (uint64_t)x);
	if (r == 0)
		r = call(v->c, op, 0);
	if (r < 0 || op == MPROC__MW_VALUE_SET)
		return r;
	r = reply_u64(v->c, &u);
	if (r == 0 && out)
		*out = (int64_t)u;
	return r;
}

int mproc_mvalue_set(struct mproc_mvalue *v, int64_t x)
{
	return value_int_call(v, MPROC__MW_VALUE_SET, x, NULL);
}

int mproc_mvalue_get(struct mproc_mvalue *v, int64_t *x)
{
	if (!x)
		return -EINVAL;
	return value_int_call(v, MPROC__MW_VALUE_GET, 0, x);
}

int mproc_mvalue_add(struct mproc_mvalue *v, int64_t delta, int64_t *result)
{
	return value_int_call(v, MPROC__MW_VALUE_ADD, delta, result);
}

int mproc_mvalue_set_bytes(struct mproc_mvalue *v, const void *val, size_t len)
{
	if (!v)
		return -EINVAL;
	return (int)simple(v->c, v->id, MPROC__MW_VALUE_SET_BYTES, NULL, val, len, true);
}

ssize_t mproc_mvalue_get_bytes(struct mproc_mvalue *v, void *buf, size_t cap)
{
	ssize_t r;

	if (!v || (cap && !buf))
		return -EINVAL;
	r = simple(v->c, v->id, MPROC__MW_VALUE_GET_BYTES, NULL, NULL, 0, false);
	return r < 0 ? r : copy_out(v->c, buf, cap);
}

int mproc_mqueue_put(struct mproc_mqueue *q, const void *val, size_t len, double timeout_s)
{
	int64_t w;
	int r;

	if (!q)
		return -EINVAL;
	r = mproc__timeout_ns(timeout_s, &w);
	if (r < 0)
		return r;
	r = req_begin(q->c, true, q->id);
	if (r == 0)
		r = req_u64(q->c, (uint64_t)w);
	if (r == 0)
		r = req_bytes(q->c, val, len);
	return r < 0 ? r : call(q->c, MPROC__MW_QUEUE_PUT, w);
}

ssize_t mproc_mqueue_get(struct mproc_mqueue *q, void *buf, size_t cap, double timeout_s)
{
	int64_t w;
	int r;

	if (!q || (cap && !buf))
		return -EINVAL;
	r = mproc__timeout_ns(timeout_s, &w);
	if (r < 0)
		return r;
	r = req_begin(q->c, true, q->id);
	if (r == 0)
		r = req_u64(q->c, (uint64_t)w);
	if (r == 0)
		r = call(q->c, MPROC__MW_QUEUE_GET, w);
	return r < 0 ? r : copy_out(q->c, buf, cap);
}

ssize_t mproc_mqueue_len(struct mproc_mqueue *q)
{
	return q ? len_call(q->c, q->id, MPROC__MW_QUEUE_LEN) : -EINVAL;
}

int mproc_mlock_acquire(struct mproc_mlock *l, double timeout_s)
{
	int64_t w;
	int r;

	if (!l)
		return -EINVAL;
	r = mproc__timeout_ns(timeout_s, &w);
	if (r < 0)
		return r;
	r = req_begin(l->c, true, l->id);
	if (r == 0)
		r = req_u64(l->c, (uint64_t)w);
	return r < 0 ? r : call(l->c, MPROC__MW_LOCK_ACQUIRE, w);
}

int mproc_mlock_release(struct mproc_mlock *l)
{
	if (!l)
		return -EINVAL;
	return (int)simple(l->c, l->id, MPROC__MW_LOCK_RELEASE, NULL, NULL, 0, false);
}
