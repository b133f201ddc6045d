/*
 * queue_pipe.c - the pipe back end, Python's design: one pipe, a process-shared lock that
 * writers hold for a whole record and one that readers hold for a whole record.
 *
 * A record is [u32 magic][u32 len][u64 seq] payload [u64 seq ^ TRAILER]. Both ends of the
 * pipe are non-blocking; waits go through poll with CLOCK_MONOTONIC deadlines.
 *
 * A writer killed mid-record. The writer sets wr_inrec before its first byte and clears it
 * after its last, both under the writer lock (robust). A torn record is recognised when
 * wr_inrec is set while nobody holds the writer lock (or its holder died: EOWNERDEAD): a
 * live writer never unlocks with wr_inrec set. Whoever then holds the writer lock knows that
 * no more bytes of the torn record will come; if the pipe is empty at that moment, every byte
 * of the torn record is already in the hands of the reader that holds the reader lock (or
 * there were none), so that reader drops its partial record and the stream is in step again.
 * Writers that find wr_inrec set wait until a reader has done so (or repair it themselves
 * when they can take the reader lock and the pipe is empty). The trailer's sequence number
 * is a second guard: a record whose trailer does not match is never returned.
 *
 * A reader killed mid-record leaves the rest of a record in the pipe with no way to find the
 * next boundary: the queue is then marked broken and every later put/get returns -EBADMSG.
 * A header read for a get whose buffer is too small is kept in shared memory (-EMSGSIZE) and
 * the next get continues with it.
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

struct pipe_shared {
	pthread_mutex_t wlock;
	pthread_mutex_t rlock;
	uint64_t wseq;                  /* under wlock */
	_Atomic uint32_t wr_inrec;      /* a writer is, or died, mid-record */
	_Atomic uint32_t broken;
	uint32_t rd_inrec;              /* under rlock */
	uint32_t pend_valid;            /* under rlock: pend holds a header already read */
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

static int pipe_avail(struct pipeb *p)
{
	int n = 0;

	if (ioctl(p->rfd, FIONREAD, &n) < 0)
		return 0;
	return n;
}

/* Holding the writer lock, with wr_inrec set by a dead writer: if no reader is mid-record and
 * the pipe is empty, the torn record left nothing behind; clear it. Returns true if cleared. */
static bool writer_try_repair(struct mproc_queue *q, struct pipeb *p)
{
	struct pipe_shared *s = p->sh;
	bool done = false;
	int r = pthread_mutex_trylock(&s->rlock);

	if (r != 0 && r != EOWNERDEAD)
		return false;
	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(&s->rlock);
		if (s->rd_inrec)
			atomic_store(&s->broken, 1);
	}
	if (!atomic_load(&s->broken) && !s->rd_inrec && !s->pend_valid && pipe_avail(p) == 0) {
		atomic_store(&s->wr_inrec, 0);
		mproc__qslot_release(q);    /* the dead writer's item will never arrive */
		done = true;
	}
	pthread_mutex_unlock(&s->rlock);
	return done;
}

static int pipe_put(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline)
{
	struct pipeb *p = q->be;
	struct pipe_shared *s = p->sh;
	struct rec_hdr h = { .magic = PIPE_MAGIC, .len = (uint32_t)len };
	uint64_t trailer;
	struct iovec iov[3];
	size_t total = sizeof(h) + len + sizeof(trailer), done = 0;
	int64_t dl = deadline;
	ssize_t n;
	int r;

	r = mproc__qslot_take(q, deadline);
	if (r < 0)
		return r;
	for (;;) {
		r = mproc__robust_lock(&s->wlock, deadline);
		if (r < 0 && r != -EOWNERDEAD)
			goto out_slot;
		if (atomic_load(&s->broken)) {
			r = -EBADMSG;
			goto out_unlock;
		}
		if (!atomic_load(&s->wr_inrec) || writer_try_repair(q, p))
			break;
		pthread_mutex_unlock(&s->wlock);
		if (mproc__now_ns() >= deadline) {
			r = -ETIMEDOUT;
			goto out_slot;
		}
		/* Wait for a reader to drop the torn record. */
		r = mproc__qwait_get(q, atomic_load(&q->sh->get_seq), deadline, PIPE_SLICE_NS);
		if (r < 0)
			goto out_slot;
	}
	h.seq = s->wseq;
	trailer = h.seq ^ PIPE_TRAILER;
	atomic_store(&s->wr_inrec, 1);
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
		bool pend = mproc__sigpipe_block();
		n = writev(p->wfd, iov, cnt);
		int e = errno;
		mproc__sigpipe_unblock(pend);
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
		s->wseq++;
		atomic_store(&s->wr_inrec, 0);
		r = 0;
	} else if (done == 0) {
		atomic_store(&s->wr_inrec, 0);
	} else {
		/* A write error mid-record (cannot happen while we hold the read end): leave
		 * wr_inrec set so readers treat the record as torn. */
		(void)0;
	}
out_unlock:
	pthread_mutex_unlock(&s->wlock);
	if (r == 0) {
		mproc__qnotify_put(q);
		return 0;
	}
out_slot:
	if (done == 0)
		mproc__qslot_release(q);
	return r;
}

enum { RD_TORN = 1 };

/* Holding the reader lock and mid-record (or idle with nothing in the pipe): is the record
 * being waited for torn? Returns true if a dead writer left it (wr_inrec cleared then). */
static bool reader_sees_torn(struct mproc_queue *q, struct pipeb *p)
{
	struct pipe_shared *s = p->sh;
	bool torn = false;
	int r;

	if (!atomic_load(&s->wr_inrec))
		return false;
	r = pthread_mutex_trylock(&s->wlock);
	if (r != 0 && r != EOWNERDEAD)
		return false;           /* a live writer: it will go on */
	if (r == EOWNERDEAD)
		pthread_mutex_consistent(&s->wlock);
	/* We hold the writer lock: nobody can add bytes. A live writer never leaves wr_inrec
	 * set when it unlocks, so the one that set it is dead. */
	if (atomic_load(&s->wr_inrec) && pipe_avail(p) == 0) {
		atomic_store(&s->wr_inrec, 0);
		torn = true;
	}
	pthread_mutex_unlock(&s->wlock);
	return torn;
}

/*
 * Read exactly n bytes of the current record. first_deadline bounds the wait for the first
 * byte when nothing of the record has been read (else the record is finished regardless).
 * Returns 0, RD_TORN, -ETIMEDOUT (nothing read), -errno.
 */
static int read_part(struct mproc_queue *q, struct pipeb *p, void *dst, size_t n,
		     bool started, int64_t deadline)
{
	char *d = dst;
	size_t done = 0;
	ssize_t k;
	int r;

	while (done < n) {
		k = read(p->rfd, d + done, n - done);
		if (k > 0) {
			done += (size_t)k;
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
			if (reader_sees_torn(q, p))
				return started ? RD_TORN : (mproc__qslot_release(q), -EAGAIN);
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
	uint64_t trailer;
	ssize_t ret;
	int r;

	r = mproc__robust_lock(&s->rlock, deadline);
	if (r == -EOWNERDEAD) {
		if (s->rd_inrec)
			atomic_store(&s->broken, 1);
	} else if (r < 0) {
		return r;
	}
	for (;;) {
		if (atomic_load(&s->broken)) {
			ret = -EBADMSG;
			goto out_unlock;
		}
		if (s->pend_valid) {
			h = s->pend;
		} else {
			r = read_part(q, p, &h, sizeof(h), false, deadline);
			if (r == -EAGAIN)
				continue;       /* a dead writer's empty record dropped */
			if (r == RD_TORN)
				goto torn;
			if (r < 0) {
				ret = r;
				goto out_unlock;
			}
			s->rd_inrec = 1;
			if (h.magic != PIPE_MAGIC) {
				atomic_store(&s->broken, 1);
				continue;
			}
		}
		if (h.len > cap) {
			s->pend = h;
			s->pend_valid = 1;
			s->rd_inrec = 0;
			ret = -EMSGSIZE;
			goto out_unlock;
		}
		s->pend_valid = 0;
		s->rd_inrec = 1;
		r = read_part(q, p, buf, h.len, true, deadline);
		if (r == 0)
			r = read_part(q, p, &trailer, sizeof(trailer), true, deadline);
		if (r == RD_TORN)
			goto torn;
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
		s->rd_inrec = 0;
		ret = h.len;
		break;
torn:
		/* The writer died mid-record; its partial bytes are all consumed. */
		s->rd_inrec = 0;
		mproc__qslot_release(q);
	}
out_unlock:
	pthread_mutex_unlock(&s->rlock);
	if (ret >= 0) {
		mproc__qslot_consumed(q);
		mproc__qnotify_get(q);
	}
	return ret;
}

static ssize_t pipe_qsize(struct mproc_queue *q)
{
	return (ssize_t)atomic_load(&q->sh->count);
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
