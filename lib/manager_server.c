/*
 * manager_server.c - the manager server: the per-connection request state machine (socket-free,
 * so tests/fuzz/fuzz_manager.c drives it directly), replies and parking, and a single-threaded
 * epoll loop around it. The objects and their request handlers, one per kind, are in
 * manager_objects.c.
 *
 * Blocking requests (queue get/put, lock acquire) never block the loop: the request is parked on
 * its object's wait list with its deadline, the connection stops being read (replies stay in
 * order), and whoever changes the object (a put, a get, a release, a closed connection) serves
 * the first parked request. Pre-authentication connections are capped (the oldest is dropped to
 * admit a new one) and each has 5 s to authenticate, so idle or hostile connections cost a
 * bounded amount of memory and never delay authenticated clients.
 *
 * Authenticated connections are bounded too (a client that pipelines gets of large values and
 * never reads would otherwise grow the server without limit and starve the others). A
 * connection's requests are served only while fewer than MPROC_MANAGER_PENDING_MAX bytes of its
 * replies are unsent, and at most MGR_TURN_REQS of them per loop turn; input read but not yet
 * served waits in c->in (at most one read, MGR_READ_BUF), and no more is read until it is
 * served. A connection then costs at most: the bound plus one reply (at most max_frame) of
 * output, one read of input, and one request body in assembly (at most max_frame); and it
 * delays the others by at most one turn's share: MGR_TURN_REQS requests or the replies that
 * reach the bound, whichever comes first (with replies of the bound's size or more: one
 * request).
 *
 * Local clients may have a shared-memory channel (CHANNEL; the protocol is described with
 * struct mproc__mgr_chan_hdr in manager_internal.h). Its requests are taken one at a time, only
 * while the connection has nothing else under way, copied out and fed to the same state
 * machine (mproc__mgr_conn_feed_box); the reply is moved from the connection's output into the
 * reply mailbox (chan_deliver), or left there for the socket when larger than the mailbox. The
 * loop looks at every mailbox on each turn and in each spin poll, and before it sleeps it
 * raises each channel's srv_sleeping flag and looks once more, so that a client writes the
 * channel's eventfd (registered in the epoll set) only to wake a sleeping server. A channel
 * holds no socket state: the connection's socket still says when its client is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "manager_server_internal.h"

#define MGR_PREAUTH_MAX 64
#define MGR_READ_BUF 65536
#define MGR_BODY_MIN 65536       /* first buffer of a body that came in pieces */
#define MGR_TURN_REQS 64         /* requests served per connection per loop turn, at most */

/* struct obj, struct mproc__mgr_conn and struct mproc__mgr: manager_server_internal.h. */

/* ---- connections: output ---- */

static int reply_begin(struct mproc__mgr_conn *c, size_t *start)
{
	int r = mproc__mw_reserve(&c->out, MPROC__MW_HDR + 4);

	if (r < 0)
		return r;
	*start = c->out.len;
	c->out.len += MPROC__MW_HDR + 4;
	return 0;
}

static void reply_end(struct mproc__mgr_conn *c, size_t start, int status)
{
	if (status < 0)
		c->out.len = start + MPROC__MW_HDR + 4;
	mproc__mw_hdr_put(c->out.p + start, c->out.len - start - MPROC__MW_HDR, MPROC__MW_REPLY);
	mproc__mw_put_u32(c->out.p + start + MPROC__MW_HDR, (uint32_t)status);
}

int mproc__mgr_reply(struct mproc__mgr_conn *c, int status, const void *p, size_t n)
{
	size_t start;
	int r = reply_begin(c, &start);

	if (r < 0)
		return r;
	if (status >= 0 && n) {
		r = mproc__mw_put(&c->out, p, n);
		if (r < 0) {
			c->out.len = start;
			return r;
		}
	}
	reply_end(c, start, status);
	return 0;
}

int mproc__mgr_reply_u64(struct mproc__mgr_conn *c, uint64_t v)
{
	uint8_t b[8];

	mproc__mw_put_u64(b, v);
	return mproc__mgr_reply(c, 0, b, sizeof(b));
}

static int send_frame(struct mproc__mgr_conn *c, uint8_t op, const void *p, size_t n)
{
	uint8_t h[MPROC__MW_HDR];
	int r;

	mproc__mw_hdr_put(h, n, op);
	r = mproc__mw_put(&c->out, h, sizeof(h));
	if (r < 0)
		return r;
	return mproc__mw_put(&c->out, p, n);
}

/* ---- parking ---- */

static void wake(struct mproc__mgr *s, struct mproc__mgr_conn *c)
{
	if (c->woken)
		return;
	c->woken = true;
	c->woken_next = s->woken;
	s->woken = c;
}

void mproc__mgr_park(struct mproc__mgr_conn *c, struct obj *o, uint8_t op, int64_t deadline)
{
	c->parked = true;
	c->wobj = o;
	c->wop = op;
	c->wdeadline = deadline;
	c->wnext = NULL;
	c->wprev = o->waiters.tail;
	if (o->waiters.tail)
		o->waiters.tail->wnext = c;
	else
		o->waiters.head = c;
	o->waiters.tail = c;
}

void mproc__mgr_unpark(struct mproc__mgr *s, struct mproc__mgr_conn *c)
{
	struct obj *o = c->wobj;

	if (!c->parked)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		o->waiters.head = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		o->waiters.tail = c->wprev;
	c->wnext = c->wprev = NULL;
	c->parked = false;
	c->wobj = NULL;
	free(c->witem);
	c->witem = NULL;
	wake(s, c);
}

/* ---- the shared-memory channel ---- */

static void chan_free(struct mproc__mgr *s, struct mproc__mgr_conn *c)
{
	if (!c->chan)
		return;
	mproc__mgr_chan_unmap(c->chan->h);
	/* The client holds the same eventfd (SCM_RIGHTS shares the open file), so closing ours
	 * would leave it in the epoll set, its events naming a freed connection: remove it. */
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->chan->efd, NULL);
	mproc__close(c->chan->efd);
	free(c->chan);
	c->chan = NULL;
	s->nchan--;
}

/*
 * CHANNEL: make the connection's channel and reply with the mailbox size, the memfd going with
 * the reply's bytes (conn_flush). Refused with -EOPNOTSUPP where there is no loop (the fuzz
 * target), on TCP, when the server was started with MPROC_MANAGER_NOSHM, for a second channel,
 * or with output pending (the memfd must ride on this reply, the first bytes in c->out).
 * Failures to make one are the client's status (it keeps the socket); only -ENOMEM of the reply
 * itself closes the connection. With the body MPROC__MGR_CHAN_ASK the same answer but for the
 * output pending (the question comes right behind RESPONSE, its answer behind WELCOME), and
 * nothing is made.
 */
static int chan_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, struct mproc__mw_rd *rd)
{
	struct epoll_event e;
	struct mgr_chan *ch;
	void *map = NULL;
	int memfd = -1, r;
	uint8_t b[4], ask = 0;

	if (!mproc__mw_done(rd) && (!mproc__mw_get_u8(rd, &ask) || ask != MPROC__MGR_CHAN_ASK ||
				    !mproc__mw_done(rd)))
		return -EBADMSG;
	if (s->ep < 0 || !s->chan_ok || c->fd < 0 || c->chan ||
	    (!ask && c->out.len != c->out.off))
		return mproc__mgr_reply(c, -EOPNOTSUPP, NULL, 0);
	if (ask) {
		mproc__mw_put_u32(b, MPROC__MGR_CHAN_BOX);
		return mproc__mgr_reply(c, 0, b, sizeof(b));
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return mproc__mgr_reply(c, -ENOMEM, NULL, 0);
	r = mproc__mgr_chan_create(&map, &memfd, &ch->efd);
	if (r < 0) {
		free(ch);
		return mproc__mgr_reply(c, r, NULL, 0);
	}
	ch->h = map;
	e.events = EPOLLIN;
	e.data.u64 = (uint64_t)(uintptr_t)c | 1;       /* tagged: a channel, not a socket */
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, ch->efd, &e) < 0) {
		r = -errno;
		mproc__mgr_chan_unmap(map);
		mproc__close(ch->efd);
		mproc__close(memfd);
		free(ch);
		return mproc__mgr_reply(c, r, NULL, 0);
	}
	c->chan = ch;
	s->nchan++;
	mproc__mw_put_u32(b, MPROC__MGR_CHAN_BOX);
	r = mproc__mgr_reply(c, 0, b, sizeof(b));
	if (r < 0) {
		mproc__close(memfd);
		return r;
	}
	c->pass_fd = memfd;
	return 0;
}

/* ---- requests ---- */

static int op_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op,
		      const uint8_t *body, size_t len, int64_t now_ns)
{
	struct mproc__mw_rd rd = { body, len, 0 };

	if (op == MPROC__MW_PING)
		return mproc__mw_done(&rd) ? mproc__mgr_reply(c, 0, NULL, 0) : -EBADMSG;
	if (op == MPROC__MW_CHANNEL)
		return chan_request(s, c, &rd);
	return mproc__mgr_obj_request(s, c, op, &rd, now_ns);      /* manager_objects.c */
}

static void pre_unlink(struct mproc__mgr *s, struct mproc__mgr_conn *c)
{
	if (c->state != CONN_PREAUTH)
		return;
	if (c->pprev)
		c->pprev->pnext = c->pnext;
	else
		s->pre_head = c->pnext;
	if (c->pnext)
		c->pnext->pprev = c->pprev;
	else
		s->pre_tail = c->pprev;
	c->pnext = c->pprev = NULL;
	s->npre--;
}

static int handshake(struct mproc__mgr *s, struct mproc__mgr_conn *c, const uint8_t *body,
		     size_t len)
{
	uint8_t mac[MPROC__SHA256_LEN], welcome[MPROC__SHA256_LEN + 8];
	int r;

	if (len != MPROC__SHA256_LEN + MPROC__MW_NONCE)
		return -EBADMSG;
	mproc__mw_mac_client(s->key, s->keylen, c->nonce, mac);
	if (!mproc__ct_equal(mac, body, sizeof(mac))) {
		r = send_frame(c, MPROC__MW_FAILURE, NULL, 0);
		return r < 0 ? r : -EACCES;
	}
	mproc__mw_mac_server(s->key, s->keylen, body + MPROC__SHA256_LEN, c->nonce, welcome);
	mproc__mw_put_u64(welcome + MPROC__SHA256_LEN, s->max_frame);
	r = send_frame(c, MPROC__MW_WELCOME, welcome, sizeof(welcome));
	if (r < 0)
		return r;
	pre_unlink(s, c);
	c->state = CONN_AUTH;
	return 0;
}

static int dispatch(struct mproc__mgr *s, struct mproc__mgr_conn *c, const uint8_t *body,
		    size_t len, int64_t now_ns)
{
	if (c->state == CONN_PREAUTH)
		return handshake(s, c, body, len);
	return op_request(s, c, c->h.op, body, len, now_ns);
}

ssize_t mproc__mgr_conn_feed(struct mproc__mgr *s, struct mproc__mgr_conn *c, const uint8_t *p,
			     size_t n, int64_t now_ns)
{
	size_t used = 0, take;
	unsigned served = 0;
	int r;

	/* Stop at the connection's share of this turn (see the top of this file); the caller keeps
	 * the rest of the input for a later turn. */
	while (used < n && !c->parked && served < MGR_TURN_REQS &&
	       c->out.len - c->out.off < MPROC_MANAGER_PENDING_MAX) {
		if (!c->have_hdr) {
			take = MPROC__MW_HDR - c->hdr_got;
			if (take > n - used)
				take = n - used;
			memcpy(c->hdr + c->hdr_got, p + used, take);
			c->hdr_got += take;
			used += take;
			if (c->hdr_got < MPROC__MW_HDR)
				break;
			c->hdr_got = 0;
			r = mproc__mw_hdr_parse(c->hdr, c->state == CONN_PREAUTH ?
						MPROC__MW_PREAUTH_MAX : s->max_frame, &c->h);
			if (r < 0)
				return r;
			if (c->state == CONN_PREAUTH ? c->h.op != MPROC__MW_RESPONSE :
			    c->h.op < MPROC__MW_OPEN || c->h.op > MPROC__MW_OP_LAST)
				return -EBADMSG;
			if (c->h.len == 0 || n - used >= c->h.len) {
				/* The whole body is here: no copy. */
				r = dispatch(s, c, p + used, (size_t)c->h.len, now_ns);
				used += (size_t)c->h.len;
				served++;
				if (r < 0)
					return r;
				continue;
			}
			/* Memory follows the bytes that arrive, never the length claimed: a peer
			 * that announces max_frame and sends little costs little. */
			c->body = NULL;
			c->body_got = c->body_cap = 0;
			c->have_hdr = true;
			continue;
		}
		take = (size_t)c->h.len - c->body_got;
		if (take > n - used)
			take = n - used;
		if (take > c->body_cap - c->body_got) {
			size_t cap = c->body_cap ? c->body_cap * 2 : MGR_BODY_MIN;
			uint8_t *nb;

			if (cap < c->body_got + take)
				cap = c->body_got + take;
			if (cap > c->h.len)
				cap = (size_t)c->h.len;
			nb = realloc(c->body, cap);
			if (!nb)
				return -ENOMEM;
			c->body = nb;
			c->body_cap = cap;
		}
		memcpy(c->body + c->body_got, p + used, take);
		c->body_got += take;
		used += take;
		if (c->body_got < c->h.len)
			break;
		r = dispatch(s, c, c->body, (size_t)c->h.len, now_ns);
		served++;
		free(c->body);
		c->body = NULL;
		c->body_got = c->body_cap = 0;
		c->have_hdr = false;
		if (r < 0)
			return r;
	}
	return (ssize_t)used;
}

bool mproc__mgr_conn_box_ready(const struct mproc__mgr_conn *c)
{
	return !c->dead && !c->parked && c->state == CONN_AUTH && c->out.len == c->out.off &&
	       c->pass_fd < 0 && !c->have_hdr && c->hdr_got == 0 && c->in.len == c->in.off;
}

int mproc__mgr_conn_feed_box(struct mproc__mgr *s, struct mproc__mgr_conn *c, const uint8_t *box,
			     uint32_t len, uint8_t *buf, int64_t now_ns)
{
	struct mproc__mw_hdr h;
	ssize_t used;
	int r;

	if (!mproc__mgr_conn_box_ready(c))
		return -EAGAIN;
	/* len was read once from shared memory: bound it before it sizes anything. */
	if (len < MPROC__MW_HDR || len > MPROC__MGR_CHAN_BOX)
		return -EBADMSG;
	/* Copy, then parse the copy: the client may rewrite the mailbox meanwhile. */
	memcpy(buf, box, len);
	r = mproc__mw_hdr_parse(buf, s->max_frame, &h);
	if (r < 0)
		return r;
	if (h.len != len - MPROC__MW_HDR)
		return -EBADMSG;        /* exactly one frame: one reply is waited for */
	used = mproc__mgr_conn_feed(s, c, buf, len, now_ns);
	if (used < 0)
		return (int)used;
	/* One whole frame on a ready connection is always consumed. */
	return (size_t)used == len ? 0 : -EBADMSG;
}

int mproc__mgr_new(struct mproc__mgr **out, const struct mproc__mgr_config *cfg)
{
	struct mproc__mgr *s;

	if (cfg->keylen > MPROC_MANAGER_KEY_MAX)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s->key, cfg->key, cfg->keylen);
	s->keylen = cfg->keylen;
	s->max_frame = cfg->max_frame ? cfg->max_frame : MPROC_MANAGER_MAX_FRAME_DEFAULT;
	s->log_errors = cfg->log_errors;
	s->ep = -1;             /* mproc__mgr_serve sets it: channels need its loop */
	s->chan_ok = !cfg->no_chan;
	*out = s;
	return 0;
}

int mproc__mgr_conn_new(struct mproc__mgr *s, int fd, int64_t now_ns,
			struct mproc__mgr_conn **out)
{
	struct mproc__mgr_conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->pass_fd = -1;
	r = mproc__random(c->nonce, sizeof(c->nonce));
	if (r == 0)
		r = send_frame(c, MPROC__MW_CHALLENGE, c->nonce, sizeof(c->nonce));
	if (r < 0) {
		mproc__mw_buf_free(&c->out);
		free(c);
		return r;
	}
	c->state = CONN_PREAUTH;
	c->deadline = now_ns + MPROC__MW_HANDSHAKE_S * MPROC__NSEC_PER_SEC;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	c->pprev = s->pre_tail;
	if (s->pre_tail)
		s->pre_tail->pnext = c;
	else
		s->pre_head = c;
	s->pre_tail = c;
	s->npre++;
	*out = c;
	return 0;
}

void mproc__mgr_conn_set_authed(struct mproc__mgr_conn *c)
{
	/* Only for the fuzz target, on a connection that is not in a server loop. */
	c->state = CONN_AUTH;
}

struct mproc__mw_buf *mproc__mgr_conn_out(struct mproc__mgr_conn *c)
{
	return &c->out;
}

void mproc__mgr_conn_free(struct mproc__mgr *s, struct mproc__mgr_conn *c)
{
	struct mproc__mgr_conn **pw;

	if (!c)
		return;
	pre_unlink(s, c);
	if (c->parked) {
		mproc__mgr_unpark(s, c);
	}
	/* Locks it holds pass to the next waiter, marked "owner died". */
	mproc__mgr_objs_conn_gone(s, c);
	for (pw = &s->woken; *pw; pw = &(*pw)->woken_next) {
		if (*pw == c) {
			*pw = c->woken_next;
			break;
		}
	}
	if (c->prev)
		c->prev->next = c->next;
	else if (s->conns == c)
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	chan_free(s, c);
	mproc__close(c->pass_fd);
	mproc__close(c->fd);
	free(c->body);
	mproc__mw_buf_free(&c->out);
	mproc__mw_buf_free(&c->in);
	free(c);
}

void mproc__mgr_free(struct mproc__mgr *s)
{
	if (!s)
		return;
	while (s->conns)
		mproc__mgr_conn_free(s, s->conns);
	mproc__mgr_objs_free(s);
	memset(s->key, 0, sizeof(s->key));
	free(s);
}

/* Time out parked requests. */
static void expire_parked(struct mproc__mgr *s, int64_t now_ns)
{
	struct mproc__mgr_conn *c;

	for (c = s->conns; c; c = c->next) {
		if (c->parked && c->wdeadline <= now_ns) {
			if (mproc__mgr_reply(c, -ETIMEDOUT, NULL, 0) < 0)
				c->dead = true;
			mproc__mgr_unpark(s, c);
		}
	}
}

/* ---- the loop ---- */

static char listen_tag, death_tag, signal_tag;

struct loop {
	struct mproc__mgr *s;
	int ep;
	int lfd;
	int reserve;                    /* an fd given up at the fd limit (refuse_one) */
	bool accept_paused;             /* at the fd limit without a reserve: listen_fd left out */
	bool unix_peer;
	uint8_t *buf;
	struct mproc__mgr_conn *last;   /* the only connection read in the last round: the spin
					 * reads it directly (NULL: none, or several) */
	unsigned polls;                 /* spin polls, over all spins (MPROC__MGR_EPOLL_EVERY) */
};

static void conn_close(struct loop *l, struct mproc__mgr_conn *c)
{
	/* The fd leaves the epoll set when closed (no dup exists). */
	if (l->last == c)
		l->last = NULL;
	mproc__mgr_conn_free(l->s, c);
}

static void conn_update(struct loop *l, struct mproc__mgr_conn *c)
{
	uint32_t ev = 0;
	struct epoll_event e;

	/* Input kept from an earlier turn is served before anything more is read, on a turn when
	 * the socket can take output: EPOLLOUT, so a peer that does not read is not served. */
	if (c->out.len > c->out.off || (!c->parked && c->in.len > c->in.off))
		ev |= EPOLLOUT;
	else if (!c->parked)
		ev |= EPOLLIN;
	if (ev == c->ev_mask)
		return;
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->ev_mask = ev;
	else
		c->dead = true;
}

/* send, with the channel's memfd and eventfd (SCM_RIGHTS) on the first byte while one is to
 * be passed (chan_request made sure the CHANNEL reply is the first byte of the output). */
static ssize_t conn_send(struct mproc__mgr_conn *c)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { c->out.p + c->out.off, c->out.len - c->out.off };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	int fds[2];
	ssize_t n;

	if (c->pass_fd < 0)
		return send(c->fd, iov.iov_base, iov.iov_len, MSG_NOSIGNAL);
	fds[0] = c->pass_fd;
	fds[1] = c->chan->efd;
	memset(&cb, 0, sizeof(cb));
	mh.msg_control = cb.buf;
	mh.msg_controllen = sizeof(cb.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	if (n > 0)
		mproc__closep(&c->pass_fd);     /* the client has its own now; the mapping stays */
	return n;
}

/* Write what is pending; returns false if the connection failed. */
static bool conn_flush(struct mproc__mgr_conn *c)
{
	ssize_t n;

	/* The reply to a request taken from the mailbox goes back there (chan_deliver), or
	 * comes here once chan_deliver has moved it to the socket. */
	if (c->chan && c->chan->busy)
		return true;
	while (c->out.len > c->out.off) {
		n = conn_send(c);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return false;
			/* A slow reader: reclaim the written part (no reply is being built now). */
			mproc__mw_compact(&c->out);
			return true;
		}
		c->out.off += (size_t)n;
	}
	c->out.len = c->out.off = 0;
	return true;
}

static void conn_fail(struct loop *l, struct mproc__mgr_conn *c, int err)
{
	/* Best effort: a FAILURE frame or the last replies, then close. */
	conn_flush(c);
	if (l->s->log_errors)
		fprintf(stderr, "mproc-manager: closed connection %d: %s\n", c->fd,
			mproc_strerror(err));
	c->dead = true;
}

/* Feed input just read; the rest (the connection parked, or its share of this turn used) is
 * kept in c->in, which is empty here: nothing is read while it holds input (conn_update). */
static void conn_input(struct loop *l, struct mproc__mgr_conn *c, const uint8_t *p, size_t n)
{
	ssize_t used = mproc__mgr_conn_feed(l->s, c, p, n, mproc__now_ns());

	if (used < 0) {
		conn_fail(l, c, (int)used);
		return;
	}
	if ((size_t)used < n && mproc__mw_put(&c->in, p + used, n - (size_t)used) < 0)
		c->dead = true;
}

/* One recv on a nonblocking connection: false when nothing was there (EAGAIN, EINTR), true
 * when its bytes were fed or it failed (EOF or an error: marked dead). */
static bool conn_recv(struct loop *l, struct mproc__mgr_conn *c)
{
	ssize_t n = recv(c->fd, l->buf, MGR_READ_BUF, 0);

	if (n > 0) {
		conn_input(l, c, l->buf, (size_t)n);
		return true;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return false;
	c->dead = true;                 /* EOF or error */
	return true;
}

static void conn_readable(struct loop *l, struct mproc__mgr_conn *c)
{
	while (!conn_recv(l, c)) {
		if (errno == EAGAIN)
			return;
	}
}

/* Serve input kept from an earlier turn (sent while the connection was parked, or beyond its
 * share of a turn), in place, where the connection can be served now. */
static void conn_resume(struct loop *l, struct mproc__mgr_conn *c)
{
	ssize_t used;

	if (c->dead || c->parked || c->in.len == c->in.off ||
	    c->out.len - c->out.off >= MPROC_MANAGER_PENDING_MAX)
		return;
	used = mproc__mgr_conn_feed(l->s, c, c->in.p + c->in.off, c->in.len - c->in.off,
				    mproc__now_ns());
	if (used < 0) {
		conn_fail(l, c, (int)used);
		return;
	}
	c->in.off += (size_t)used;
	if (c->in.off == c->in.len)
		mproc__mw_buf_free(&c->in);
}

/* ---- the loop's side of the shared-memory channels ---- */

_Static_assert(MPROC__MGR_CHAN_BOX <= MGR_READ_BUF, "a mailbox's frame fits the read buffer");

/* May a request be taken from c's mailbox now? Only with nothing else under way on c, so
 * that its replies stay in request order (see struct mproc__mgr_chan_hdr). */
static bool chan_idle(const struct mproc__mgr_conn *c)
{
	return c->chan && !c->chan->busy && !c->dead;
}

/*
 * Give the reply to c's mailbox request, once it is made (not while parked): into the reply
 * mailbox, or, larger than that, on the socket (rep_len 0: conn_flush sends it, and the client
 * reads it there); then publish rep_seq and wake the client if it sleeps. The store of rep_seq
 * and the load of cli_waiting are fenced (seq_cst) against the client's store of cli_waiting
 * and load of rep_seq: one of the two loads sees the other side's store (no lost wakeup).
 */
static void chan_deliver(struct mproc__mgr_conn *c)
{
	struct mgr_chan *ch = c->chan;
	size_t n;

	if (!ch || !ch->busy || c->parked || c->dead)
		return;
	n = c->out.len - c->out.off;
	if (n <= MPROC__MGR_CHAN_BOX) {
		memcpy(mproc__mgr_chan_rep(ch->h), c->out.p + c->out.off, n);
		atomic_store_explicit(&ch->h->rep_len, (uint32_t)n, memory_order_relaxed);
		c->out.len = c->out.off = 0;
	} else {
		atomic_store_explicit(&ch->h->rep_len, 0, memory_order_relaxed);
	}
	ch->busy = false;
	atomic_store_explicit(&ch->h->rep_seq, ch->seen, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&ch->h->cli_waiting, memory_order_relaxed))
		mproc__futex_wake((uint32_t *)&ch->h->rep_seq, 1);
}

/*
 * Take c's next mailbox request if there is one, and serve it: true if one was taken (served,
 * parked, or refused, c then failed). The client may write the mailbox at any time: the length
 * is read once and bounded, the frame copied out before it is parsed, and the frame's header
 * must claim exactly that length (one frame per request, as one reply is waited for).
 */
static bool chan_take(struct loop *l, struct mproc__mgr_conn *c)
{
	struct mgr_chan *ch = c->chan;
	uint32_t seq, len;
	int r;

	if (!chan_idle(c) || !mproc__mgr_conn_box_ready(c))
		return false;
	seq = atomic_load_explicit(&ch->h->req_seq, memory_order_acquire);
	if (seq == ch->seen)
		return false;
	ch->seen = seq;
	ch->busy = true;
	len = atomic_load_explicit(&ch->h->req_len, memory_order_relaxed);
	r = mproc__mgr_conn_feed_box(l->s, c, mproc__mgr_chan_req(ch->h), len, l->buf,
				     mproc__now_ns());
	if (r < 0) {
		conn_fail(l, c, r);
		return true;
	}
	chan_deliver(c);
	return true;
}

/* One look at every channel's mailbox; true if a request was taken. */
static bool chan_poll(struct loop *l)
{
	struct mproc__mgr_conn *c;
	bool any = false;

	if (!l->s->nchan)
		return false;
	for (c = l->s->conns; c; c = c->next)
		if (c->chan)
			any |= chan_take(l, c);
	return any;
}

/* Before sleeping in epoll_wait (on = true; fenced: see struct mproc__mgr_chan_hdr) and after. */
static void chan_sleeping(struct loop *l, bool on)
{
	struct mproc__mgr_conn *c;

	for (c = l->s->conns; c; c = c->next)
		if (c->chan)
			atomic_store_explicit(&c->chan->h->srv_sleeping, on, memory_order_relaxed);
	if (on)
		atomic_thread_fence(memory_order_seq_cst);
}

static void listen_pause(struct loop *l, bool pause)
{
	struct epoll_event e = { .events = pause ? 0 : EPOLLIN, .data.ptr = &listen_tag };

	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, l->lfd, &e) == 0)
		l->accept_paused = pause;
}

/*
 * At the fd limit (EMFILE, or ENFILE for the whole system) a pending connection would wait in
 * the listen queue, its client waiting for a challenge until it times out, and the listening
 * socket (level-triggered) would wake the loop again at once. So give up the reserve fd, accept
 * the connection into it and close it at once: the client reads EOF before any challenge
 * (mproc_manager_connect: -EPIPE), and no connection already accepted is touched (dropping the
 * oldest unauthenticated connection to make room could drop the one just accepted, a client in
 * the middle of its handshake). Returns whether one was refused; false when no
 * reserve is held (the listening socket is then left out of the loop until an fd is free).
 */
static bool refuse_one(struct loop *l)
{
	int fd;

	if (l->reserve >= 0) {
		mproc__closep(&l->reserve);
		fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
		mproc__close(fd);
		l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return true;
	}
	if (l->reserve < 0)
		listen_pause(l, true);
	return false;
}

/* Accepting was paused: take the reserve back, and accept again once it is held. */
static void accept_resume(struct loop *l)
{
	l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (l->reserve >= 0)
		listen_pause(l, false);
}

static void do_accept(struct loop *l)
{
	struct mproc__mgr_conn *c;
	struct epoll_event e;
	struct ucred cred;
	socklen_t cl;
	int fd, i, one = 1;

	for (i = 0; i < 64; i++) {
		fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE) && refuse_one(l))
				continue;
			return;
		}
		if (l->unix_peer) {
			/* Same-user peers only (the directory is 0700 too). */
			cl = sizeof(cred);
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
			    cred.uid != geteuid()) {
				mproc__close(fd);
				continue;
			}
		} else {
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		/* The oldest unauthenticated connection makes room for the new one. */
		while (l->s->npre >= MGR_PREAUTH_MAX) {
			struct mproc__mgr_conn *old = l->s->pre_head;

			pre_unlink(l->s, old);
			old->state = CONN_AUTH;         /* off the pre-auth list */
			old->dead = true;
		}
		if (mproc__mgr_conn_new(l->s, fd, mproc__now_ns(), &c) < 0) {
			mproc__close(fd);
			return;
		}
		e.events = EPOLLOUT;
		e.data.ptr = c;
		c->ev_mask = EPOLLOUT;
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
			conn_close(l, c);
			continue;
		}
		if (!conn_flush(c))
			c->dead = true;
	}
}

static int next_timeout_ms(struct mproc__mgr *s)
{
	int64_t d = MPROC__NO_DEADLINE;
	struct mproc__mgr_conn *c;

	if (s->pre_head)
		d = s->pre_head->deadline;
	for (c = s->conns; c; c = c->next)
		if (c->parked && c->wdeadline < d)
			d = c->wdeadline;
	return mproc__poll_ms(d);
}

/* Close dead connections, flush and resume woken ones, fix epoll interest. */
static void sweep(struct loop *l, int64_t now_ns)
{
	struct mproc__mgr_conn *c, *next;
	bool again;

	expire_parked(l->s, now_ns);
	while (l->s->pre_head && l->s->pre_head->deadline <= now_ns) {
		c = l->s->pre_head;
		pre_unlink(l->s, c);
		c->state = CONN_AUTH;
		c->dead = true;
	}
	/* Closing a connection can hand a lock to another one (waking it), wherever it sits
	 * in the list: repeat until nothing more was woken by a close. */
	do {
		again = false;
		while ((c = l->s->woken)) {
			l->s->woken = c->woken_next;
			c->woken = false;
			conn_resume(l, c);
		}
		for (c = l->s->conns; c; c = next) {
			next = c->next;
			chan_deliver(c);        /* woken from parked, or timed out */
			if (!c->dead && !conn_flush(c))
				c->dead = true;
			if (c->dead) {
				conn_close(l, c);
				again = true;
			}
		}
	} while (again && l->s->woken);
	for (c = l->s->conns; c; c = c->next)
		conn_update(l, c);
	if (l->accept_paused)
		accept_resume(l);
}

/*
 * After a round that served something, poll for a while before sleeping (MPROC__MGR_SPIN_NS
 * explains why; mproc__mgr_spin_yield which polls yield the CPU first). When the last round
 * read a single connection (one client calling in a loop), most polls are a recv on it, which
 * brings the next request in the same syscall that sees it; every MPROC__MGR_EPOLL_EVERY-th
 * poll (counted over all spins: a client that always has its next request ready must not
 * starve the rest) is an epoll_wait(0), so other connections, new ones and the signal and
 * death fds wait at most that many polls. Every poll also looks at the channels' mailboxes (a
 * batch of loads, about as long as one recv), taking one request per channel. Returns
 * epoll_wait's result, or 0 with *direct set when the recv or a mailbox served a connection
 * (fed its bytes, or found it closed); 0 without: nothing came (the caller sleeps).
 */
#define MPROC__MGR_EPOLL_EVERY 8

static int spin_wait(struct loop *l, struct epoll_event *evs, int max,
		     struct mproc__mgr_spin *spin, bool *direct)
{
	int64_t budget = mproc__mgr_spin_budget(spin), end;
	struct mproc__mgr_conn *c = l->last;
	unsigned loads = 0;
	bool busy = false;
	int n = 0;

	*direct = false;
	if (budget <= 0)
		return 0;
	if (l->s->nchan)
		loads = l->s->nchan >= MPROC__MGR_CHAN_POLL_LOADS ? 1 :
			MPROC__MGR_CHAN_POLL_LOADS / (unsigned)l->s->nchan;
	if (c && (c->dead || c->parked || c->out.len > c->out.off || c->in.len > c->in.off))
		c = NULL;
	end = mproc__now_ns() + budget;
	for (unsigned i = 0;; i++) {
		/* With no connection to recv on, every poll looks at the epoll set: mailbox
		 * loads alone (64 PAUSEs, ~2 us here) would leave a new connection or another
		 * client's socket frame waiting up to MPROC__MGR_EPOLL_EVERY polls. */
		bool ep_now = ++l->polls % MPROC__MGR_EPOLL_EVERY == 0 || !c;

		mproc__mgr_spin_yield(i, &busy);
		if (ep_now) {
			n = epoll_wait(l->ep, evs, max, 0);
			if (n != 0)
				break;
		}
		/* The mailboxes: a batch of about MPROC__MGR_CHAN_POLL_LOADS loads makes one
		 * poll, over all the channels (so a poll costs about the same with many). */
		for (unsigned k = 0; k < loads; k++) {
			if (chan_poll(l)) {
				*direct = true;
				break;
			}
			mproc__cpu_relax();
		}
		if (*direct)
			break;
		if (!ep_now && c && conn_recv(l, c)) {
			*direct = true;
			break;
		}
		if (mproc__now_ns() >= end)
			break;
	}
	mproc__mgr_spin_result(spin, n > 0 || *direct);
	return n;
}

/* Long (about 120 lines) on purpose: the loop's setup is one goto ladder (epoll, signalfd,
 * buffers) and the loop exits only through it, so the set-up and the teardown stay side by side;
 * each event's work is a function of its own above. */
int mproc__mgr_serve(int listen_fd, int death_fd, int *ready_fd,
		     const struct mproc__mgr_config *cfg)
{
	struct loop l = { .ep = -1, .lfd = listen_fd, .reserve = -1 };
	struct epoll_event e, evs[64];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	sigset_t set;
	int sfd = -1, n, i, r;
	struct mproc__mgr_spin spin = { .budget_ns = cfg->spin_ns };
	bool served = false, direct;
	int nread;

	r = mproc__mgr_new(&l.s, cfg);
	if (r < 0)
		return r;
	l.buf = malloc(MGR_READ_BUF);
	if (!l.buf) {
		r = -ENOMEM;
		goto out;
	}
	if (getsockname(listen_fd, (struct sockaddr *)&ss, &sl) < 0) {
		r = -errno;
		goto out;
	}
	l.unix_peer = ss.ss_family == AF_UNIX;
	r = mproc__set_nonblock(listen_fd, true);
	if (r < 0)
		goto out;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	l.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (sfd < 0 || l.ep < 0 || l.reserve < 0) {
		r = -errno;
		goto out;
	}
	l.s->ep = l.ep;
	l.s->chan_ok = l.s->chan_ok && l.unix_peer;     /* local clients only */
	e.events = EPOLLIN;
	e.data.ptr = &listen_tag;
	if (epoll_ctl(l.ep, EPOLL_CTL_ADD, listen_fd, &e) < 0)
		goto out_errno;
	e.data.ptr = &signal_tag;
	if (epoll_ctl(l.ep, EPOLL_CTL_ADD, sfd, &e) < 0)
		goto out_errno;
	if (death_fd >= 0) {
		e.data.ptr = &death_tag;
		if (epoll_ctl(l.ep, EPOLL_CTL_ADD, death_fd, &e) < 0)
			goto out_errno;
	}
	if (ready_fd && *ready_fd >= 0) {
		int32_t ok = 0;

		mproc__write_all(*ready_fd, &ok, sizeof(ok), MPROC__NO_DEADLINE);
		mproc__closep(ready_fd);
	}

	for (;;) {
		n = 0;
		direct = false;
		if (served)
			n = spin_wait(&l, evs, MPROC__ARRAY_SIZE(evs), &spin, &direct);
		if (direct) {
			sweep(&l, mproc__now_ns());
			continue;
		}
		if (n == 0) {
			int ms = next_timeout_ms(l.s);

			/* Paused at the fd limit: retry now and then (sweep) even if no
			 * connection closes. */
			if (l.accept_paused && (ms < 0 || ms > 100))
				ms = 100;
			/* Clients write a channel's eventfd only while its flag is up: raise the
			 * flags, then look at the mailboxes once more (chan_sleeping fences). */
			if (l.s->nchan) {
				chan_sleeping(&l, true);
				if (chan_poll(&l)) {
					chan_sleeping(&l, false);
					served = true;
					sweep(&l, mproc__now_ns());
					continue;
				}
			}
			n = epoll_wait(l.ep, evs, MPROC__ARRAY_SIZE(evs), ms);
			if (l.s->nchan)
				chan_sleeping(&l, false);
		}
		served = n > 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out_errno;
		}
		nread = 0;
		for (i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			struct mproc__mgr_conn *c = tag;

			if (tag == &death_tag || tag == &signal_tag) {
				r = 0;
				goto out;
			}
			if (tag == &listen_tag) {
				do_accept(&l);
				continue;
			}
			if (evs[i].data.u64 & 1) {
				/* A channel's eventfd: drain it; chan_poll below takes it. */
				uint64_t v, p = evs[i].data.u64 & ~(uint64_t)1;

				c = (struct mproc__mgr_conn *)(uintptr_t)p;
				if (read(c->chan->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					c->dead = true;
				continue;
			}
			if (c->dead)
				continue;
			if (evs[i].events & EPOLLOUT) {
				if (!conn_flush(c))
					c->dead = true;
				else
					conn_resume(&l, c);     /* input kept from a turn before */
			}
			if (evs[i].events & EPOLLIN) {
				conn_readable(&l, c);
				l.last = nread++ ? NULL : c;
			} else if (evs[i].events & (EPOLLHUP | EPOLLERR))
				c->dead = true;
		}
		if (chan_poll(&l))
			served = true;
		sweep(&l, mproc__now_ns());
	}
out_errno:
	r = -errno;
out:
	mproc__close(sfd);
	mproc__close(l.ep);
	mproc__close(l.reserve);
	free(l.buf);
	mproc__mgr_free(l.s);
	return r;
}
