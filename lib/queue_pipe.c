/*
 * queue_pipe.c - the pipe back end, Python's design: one pipe, a process-shared lock that
 * writers hold for a whole record and one that readers hold for a whole record.
 *
 * A record is [u32 magic][u32 len][u64 seq] payload [u64 seq ^ TRAILER]. Both ends of the
 * pipe are non-blocking; waits go through poll with CLOCK_MONOTONIC deadlines.
 *
 * The count (qsize, maxsize) is not a counter beside the pipe that a killed process could
 * leave wrong: it is derived from two sequence words, each stored with its "mid-record" flag
 * in one atomic store. wstate = records written << 1 | a writer is (or died) mid-record;
 * rstate = (seq of the last record read + 1) << 1 | a reader is (or died) mid-record. A
 * record carries its seq; the writer commits seq + 1 with the flag cleared after its last
 * byte, the reader commits seq + 1 with its flag cleared after the trailer. Items queued =
 * written - read; a writer checks maxsize holding the writer lock, so no slot is taken
 * before the write that a writer killed in between could leak.
 *
 * A writer killed mid-record. A live writer never unlocks with its flag set, so a flag seen
 * while nobody holds the writer lock (or its holder died: EOWNERDEAD) was left by a dead
 * writer, and no more bytes of its record will come. Its record may be torn, or written whole
 * but not committed (killed after the last byte), and then perhaps already read (the reader
 * committed its seq + 1). Whoever holds both locks and finds the pipe empty knows that every
 * byte written has been read, so the queue is empty: it sets both sequence words to the
 * larger of the two, flags cleared (resync_if_empty). A reader that holds part of a torn
 * record (the pipe empty, the writer dead) drops it first. Writers that find the flag set
 * wait until a reader has done so (or do it themselves when they can take the reader lock).
 * The trailer's sequence number is a second guard: a record whose trailer does not match is
 * never returned. The same resync also repairs a reader killed after its last read but
 * before its commit (seen as a count above zero with the pipe empty).
 *
 * A reader killed mid-record leaves the rest of a record in the pipe with no way to find the
 * next boundary: unless the pipe is empty (the dead reader had read it all), the queue is
 * then marked broken and every later put/get returns -EBADMSG. A header read for a get whose
 * buffer is too small is kept in shared memory (-EMSGSIZE) and the next get continues with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "queue_internal.h"

#define PIPE_MAGIC 0x6d707121u            /* "mpq!" */
#define PIPE_TRAILER UINT64_C(0x5eed5eedfeedf00d)
#define PIPE_SIZE (1 << 20)
#define PIPE_SLICE_NS (20 * INT64_C(1000000))

struct rec_hdr {
	uint32_t magic;
	uint32_t len;
	uint64_t seq;
};

/* A sequence word: seq << 1 | mid-record flag (see the top of the file). */
#define ST(seq, busy) (((uint64_t)(seq) << 1) | (uint64_t)(busy))
#define ST_SEQ(st) ((st) >> 1)
#define ST_BUSY(st) ((st) & 1u)

struct pipe_shared {
	pthread_mutex_t wlock;
	pthread_mutex_t rlock;
	_Atomic uint64_t wstate;        /* stored under wlock (and by resync_if_empty) */
	_Atomic uint64_t rstate;        /* stored under rlock */
	_Atomic uint32_t broken;
	_Atomic uint32_t pend_valid;    /* under rlock: pend holds a header already read */
	struct rec_hdr pend;
};

struct pipeb {
	struct pipe_shared *sh;
	int shfd;                       /* memfd of sh */
	int rfd, wfd;
};

static int pipe_init(struct mproc_queue *q, const struct mproc_queue_opts *o)
{
	struct pipeb *p;
	int fds[2];
	int r;

	if (!q->max_msg)
		q->max_msg = MPROC__QUEUE_DEFAULT_MSG;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->rfd = p->wfd = p->shfd = -1;
	q->be = p;
	p->sh = mproc__shared_alloc(sizeof(*p->sh), &p->shfd, false);
	if (!p->sh)
		return -errno;
	r = mproc__robust_mutex_init(&p->sh->wlock);
	if (r < 0)
		return r;
	r = mproc__robust_mutex_init(&p->sh->rlock);
	if (r < 0)
		return r;
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	p->rfd = fds[0];
	p->wfd = fds[1];
	/* A bigger pipe holds more records; failure (over fs.pipe-max-size) is harmless. */
	(void)fcntl(p->wfd, F_SETPIPE_SZ, PIPE_SIZE);
	return 0;
}

static void pipe_fini(struct mproc_queue *q, bool creator)
{
	struct pipeb *p = q->be;

	if (!p)
		return;
	mproc__closep(&p->rfd);
	mproc__closep(&p->wfd);
	mproc__shared_free(p->sh, sizeof(*p->sh), &p->shfd);
	free(p);
	q->be = NULL;
}

static int pipe_export(struct mproc_queue *q, struct mproc__queue_wire *w)
{
	struct pipeb *p = q->be;
	int r;

	r = mproc__queue_wire_fd(w, 1, p->shfd);
	if (!r)
		r = mproc__queue_wire_fd(w, 2, p->rfd);
	if (!r)
		r = mproc__queue_wire_fd(w, 3, p->wfd);
	return r;
}

static int pipe_attach(struct mproc_queue *q, const struct mproc__queue_wire *w)
{
	struct pipeb *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->rfd = p->wfd = p->shfd = -1;
	q->be = p;
	r = mproc__queue_wire_open(w, 1, O_RDWR);
	if (r < 0)
		return r;
	p->shfd = r;
	p->sh = mproc__shared_map(p->shfd, sizeof(*p->sh));
	if (!p->sh)
		return -errno;
	/* Both ends non-blocking, as pipe_init made them (a reopened end has its own flags). */
	r = mproc__queue_wire_open(w, 2, O_RDONLY | O_NONBLOCK);
	if (r < 0)
		return r;
	p->rfd = r;
	r = mproc__queue_wire_open(w, 3, O_WRONLY | O_NONBLOCK);
	if (r < 0)
		return r;
	p->wfd = r;
	return 0;
}

/* Nothing in the pipe (false if that cannot be told). */
static bool pipe_empty(struct pipeb *p)
{
	int n = -1;

	return ioctl(p->rfd, FIONREAD, &n) == 0 && n == 0;
}

/*
 * Holding both locks (each taken normally or over from a dead holder, so nobody alive is
 * mid-record but perhaps the caller, about to drop a torn record): if the pipe is empty and no
 * header waits in pend, every record written has been read, by a live reader or a dead one;
 * the queue is empty, and the sequence words are made to say so. Returns true if done.
 */
static bool resync_if_empty(struct mproc_queue *q, struct pipeb *p)
{
	struct pipe_shared *s = p->sh;
	uint64_t w, r;

	if (s->pend_valid || !pipe_empty(p))
		return false;
	w = ST_SEQ(atomic_load(&s->wstate));
	r = ST_SEQ(atomic_load(&s->rstate));
	if (r > w)
		w = r;          /* a dead writer's record, read whole: seqs keep increasing */
	atomic_store(&s->wstate, ST(w, 0));
	atomic_store(&s->rstate, ST(w, 0));
	mproc__qnotify_get(q);  /* writers may wait for room or for this repair */
	return true;
}

/* Holding the reader lock taken over from a dead holder: if it died mid-record, with the rest
 * of the record perhaps still in the pipe, the stream may be out of step (broken). */
static void reader_dead(struct mproc_queue *q, struct pipeb *p, bool have_wlock)
{
	struct pipe_shared *s = p->sh;
	uint64_t rs = atomic_load(&s->rstate);
	bool done = false;
	int r;

	if (!ST_BUSY(rs))
		return;
	if (s->pend_valid) {
		/* Killed between keeping a header in pend and clearing its flag, or between
		 * setting it and starting on the body: nothing of the body was read. */
		atomic_store(&s->rstate, ST(ST_SEQ(rs), 0));
		return;
	}
	if (have_wlock) {
		done = resync_if_empty(q, p);
	} else {
		r = pthread_mutex_trylock(&s->wlock);
		if (r == 0 || r == EOWNERDEAD) {
			if (r == EOWNERDEAD)
				pthread_mutex_consistent(&s->wlock);
			done = resync_if_empty(q, p);
			pthread_mutex_unlock(&s->wlock);
		}
	}
	if (!done)
		atomic_store(&s->broken, 1);
}

/* Holding the writer lock, with the writer flag set by a dead writer or the queue full by the
 * count: if the pipe is empty, take the reader lock if nobody alive holds it and resync. A
 * reader that died mid-record with the pipe not empty is then not seen here but by the next
 * get, which marks the queue broken. */
static void writer_try_resync(struct mproc_queue *q, struct pipeb *p)
{
	struct pipe_shared *s = p->sh;
	int r;

	if (!pipe_empty(p))
		return;         /* the common "full": leave the readers' lock alone */
	r = pthread_mutex_trylock(&s->rlock);
	if (r != 0 && r != EOWNERDEAD)
		return;         /* a live reader: it resyncs when it finds the pipe empty */
	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(&s->rlock);
		reader_dead(q, p, true);
	}
	if (!atomic_load(&s->broken))
		(void)resync_if_empty(q, p);
	pthread_mutex_unlock(&s->rlock);
}

/* Items written and not yet read, with the writer lock held (so the writer flag is ours). */
static uint64_t pipe_count_locked(struct pipe_shared *s)
{
	uint64_t r = ST_SEQ(atomic_load(&s->rstate));
	uint64_t w = ST_SEQ(atomic_load(&s->wstate));

	return w > r ? w - r : 0;
}

/* Long (about 100 lines) on purpose: one record under the writer lock: wait for room, write
 * header, body and trailer (resuming after partial writes), then commit; the lock and the
 * "a byte is out, finish the record" rule span all of it. */
static int pipe_put(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline)
{
	struct pipeb *p = q->be;
	struct pipe_shared *s = p->sh;
	struct rec_hdr h = { .magic = PIPE_MAGIC, .len = (uint32_t)len };
	uint64_t trailer, ws;
	uint32_t seen;
	struct iovec iov[3];
	size_t total = sizeof(h) + len + sizeof(trailer), done = 0;
	int64_t dl = deadline;
	ssize_t n;
	int r;

	for (;;) {
		seen = atomic_load(&q->sh->get_seq);
		r = mproc__robust_lock(&s->wlock, deadline);
		if (r < 0 && r != -EOWNERDEAD)
			return r;
		if (atomic_load(&s->broken)) {
			r = -EBADMSG;
			goto out_unlock;
		}
		ws = atomic_load(&s->wstate);
		if (ST_BUSY(ws) || (q->maxsize && pipe_count_locked(s) >= q->maxsize)) {
			writer_try_resync(q, p);
			if (atomic_load(&s->broken)) {
				r = -EBADMSG;
				goto out_unlock;
			}
			ws = atomic_load(&s->wstate);
		}
		if (!ST_BUSY(ws) && (!q->maxsize || pipe_count_locked(s) < q->maxsize))
			break;
		pthread_mutex_unlock(&s->wlock);
		if (mproc__now_ns() >= deadline)
			return -ETIMEDOUT;
		/* Wait for a get (room), or for a reader to drop a torn record. */
		r = mproc__qwait_get(q, seen, deadline, PIPE_SLICE_NS);
		if (r < 0)
			return r;
	}
	h.seq = ST_SEQ(ws);
	trailer = h.seq ^ PIPE_TRAILER;
	atomic_store(&s->wstate, ST(h.seq, 1));
	while (done < total) {
		size_t skip = done;
		int cnt = 0;

		/* Build the iovec for what is left. */
		const struct { const void *b; size_t l; } part[3] = {
			{ &h, sizeof(h) }, { buf, len }, { &trailer, sizeof(trailer) } };
		for (int i = 0; i < 3; i++) {
			if (skip >= part[i].l) {
				skip -= part[i].l;
				continue;
			}
			iov[cnt].iov_base = (char *)part[i].b + skip;
			iov[cnt].iov_len = part[i].l - skip;
			skip = 0;
			cnt++;
		}
		/* No SIGPIPE guard: this process holds the read end (p->rfd) for as long as it
		 * holds the queue, so the pipe always has a reader and the write can neither
		 * raise SIGPIPE nor fail EPIPE. A guard would cost four syscalls per put, more
		 * than the write itself at 64 B. */
		n = writev(p->wfd, iov, cnt);
		int e = errno;
		if (n > 0) {
			done += (size_t)n;
			/* Once a byte is out the record must be finished (see queue.h). */
			dl = MPROC__NO_DEADLINE;
			continue;
		}
		if (n < 0 && e == EINTR)
			continue;
		if (n < 0 && e == EAGAIN) {
			r = mproc__poll1(p->wfd, POLLOUT, dl);
			if (r < 0)
				break;  /* timeout only before the first byte (dl) */
			continue;
		}
		r = n < 0 ? -e : -EIO;
		break;
	}
	if (done == total) {
		atomic_store(&s->wstate, ST(h.seq + 1, 0));     /* the commit */
		r = 0;
	} else if (done == 0) {
		atomic_store(&s->wstate, ST(h.seq, 0));
	} else {
		/* A write error mid-record (cannot happen while we hold the read end): leave
		 * the flag set so readers treat the record as torn. */
		(void)0;
	}
out_unlock:
	pthread_mutex_unlock(&s->wlock);
	if (r == 0)
		mproc__qnotify_put(q);
	return r;
}

enum { RD_TORN = 1 };

/*
 * Holding the reader lock, after a slice with nothing to read: mid-record (started), is the
 * record torn (its writer dead, the pipe empty)? Idle, did a dead writer or reader leave the
 * sequence words unequal with the pipe empty? Either way resync (the caller drops its part of
 * a torn record). Returns true if it did.
 */
static bool reader_check_dead(struct mproc_queue *q, struct pipeb *p, bool started)
{
	struct pipe_shared *s = p->sh;
	uint64_t ws = atomic_load(&s->wstate);
	bool done = false;
	int r;

	if (!ST_BUSY(ws) && (started || ST_SEQ(ws) == ST_SEQ(atomic_load(&s->rstate))))
		return false;
	r = pthread_mutex_trylock(&s->wlock);
	if (r != 0 && r != EOWNERDEAD)
		return false;           /* a live writer: it will go on */
	if (r == EOWNERDEAD)
		pthread_mutex_consistent(&s->wlock);
	/* We hold the writer lock: nobody can add bytes. A live writer never leaves its flag
	 * set when it unlocks, so the one that set it is dead. A record we are in the middle
	 * of with the pipe empty is torn only if that writer was writing it. */
	if (!started || ST_BUSY(atomic_load(&s->wstate)))
		done = resync_if_empty(q, p);
	pthread_mutex_unlock(&s->wlock);
	return done;
}

/*
 * Fill the iovecs (exact lengths: never past the current record) from the pipe, in one
 * readv(2) when the bytes are there. deadline bounds the wait for the first byte when nothing
 * of the record has been read (else the record is finished regardless).
 * Returns 0, RD_TORN, -ETIMEDOUT (nothing read), -errno.
 */
static int read_part(struct mproc_queue *q, struct pipeb *p, struct iovec *iov, int cnt,
		     bool started, int64_t deadline)
{
	ssize_t k;
	int r;

	mproc__iov_advance(&iov, &cnt, 0);
	while (cnt > 0) {
		k = readv(p->rfd, iov, cnt);
		if (k > 0) {
			mproc__iov_advance(&iov, &cnt, (size_t)k);
			started = true;
			continue;
		}
		if (k == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int64_t now = mproc__now_ns(), until = now + PIPE_SLICE_NS;
		if (!started) {
			if (now >= deadline)
				return -ETIMEDOUT;
			if (deadline < until)
				until = deadline;
		}
		r = mproc__poll1(p->rfd, POLLIN, until);
		if (r == -ETIMEDOUT) {
			if (reader_check_dead(q, p, started) && started)
				return RD_TORN;
			continue;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static ssize_t pipe_get(struct mproc_queue *q, void *buf, size_t cap, int64_t deadline)
{
	struct pipeb *p = q->be;
	struct pipe_shared *s = p->sh;
	struct rec_hdr h;
	uint64_t trailer, rseq;
	ssize_t ret;
	int r;

	r = mproc__robust_lock(&s->rlock, deadline);
	if (r == -EOWNERDEAD)
		reader_dead(q, p, false);
	else if (r < 0)
		return r;
	for (;;) {
		if (atomic_load(&s->broken)) {
			ret = -EBADMSG;
			goto out_unlock;
		}
		rseq = ST_SEQ(atomic_load(&s->rstate));
		if (s->pend_valid) {
			h = s->pend;
			atomic_store(&s->rstate, ST(rseq, 1));  /* before pend is given up */
		} else {
			struct iovec hv = { &h, sizeof(h) };

			r = read_part(q, p, &hv, 1, false, deadline);
			if (r == RD_TORN)
				continue;       /* a dead writer's partial header, dropped */
			if (r < 0) {
				ret = r;
				goto out_unlock;
			}
			atomic_store(&s->rstate, ST(rseq, 1));
			if (h.magic != PIPE_MAGIC) {
				atomic_store(&s->broken, 1);
				continue;
			}
		}
		if (h.len > cap) {
			s->pend = h;
			s->pend_valid = 1;
			atomic_store(&s->rstate, ST(rseq, 0));
			ret = -EMSGSIZE;
			goto out_unlock;
		}
		s->pend_valid = 0;
		/* Body and trailer in one readv: two reads per record, not three. */
		struct iovec bt[2] = { { buf, h.len }, { &trailer, sizeof(trailer) } };

		r = read_part(q, p, bt, 2, true, deadline);
		if (r == RD_TORN)
			continue;       /* its writer died mid-record: the part we read is dropped */
		if (r < 0) {
			atomic_store(&s->broken, 1);
			ret = r;
			goto out_unlock;
		}
		if (trailer != (h.seq ^ PIPE_TRAILER)) {
			/* Bytes of two records mixed: never hand that out. */
			atomic_store(&s->broken, 1);
			continue;
		}
		atomic_store(&s->rstate, ST(h.seq + 1, 0));     /* the commit */
		ret = h.len;
		break;
	}
out_unlock:
	pthread_mutex_unlock(&s->rlock);
	if (ret >= 0)
		mproc__qnotify_get(q);
	return ret;
}

/* Written - read, counting a record being written (or left by a dead writer until resync).
 * rstate first: it never passes wstate's seq + flag, and both only grow but in a resync. */
static ssize_t pipe_qsize(struct mproc_queue *q)
{
	struct pipeb *p = q->be;
	uint64_t r = ST_SEQ(atomic_load(&p->sh->rstate));
	uint64_t ws = atomic_load(&p->sh->wstate);
	uint64_t w = ST_SEQ(ws) + ST_BUSY(ws);

	return w > r ? (ssize_t)(w - r) : 0;
}

const struct mproc__queue_ops mproc__queue_pipe_ops = {
	.name = "pipe",
	.init = pipe_init,
	.fini = pipe_fini,
	.export_ = pipe_export,
	.attach = pipe_attach,
	.put = pipe_put,
	.get = pipe_get,
	.qsize = pipe_qsize,
};
