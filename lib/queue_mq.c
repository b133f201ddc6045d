/*
 * queue_mq.c - the POSIX message queue back end.
 *
 * The queue is opened O_CREAT|O_EXCL, mode 0600, under a "/mproc-<pid>-<n>-<rand>" name and
 * unlinked at once, so no name is left behind even if the creator is SIGKILLed; the
 * descriptor (an fd on Linux, close-on-exec) is inherited across fork. The descriptor is
 * non-blocking and waits go through poll(2), which gives CLOCK_MONOTONIC timeouts and EINTR
 * retries without mq_timedsend's CLOCK_REALTIME deadline. maxsize is mq_maxmsg; max_msg is
 * mq_msgsize. Over fs.mqueue.msg_max / msgsize_max without CAP_SYS_RESOURCE the kernel
 * refuses: -EINVAL / -EMSGSIZE, never clamped. Messages are atomic in the kernel, so a killed
 * producer or consumer cannot tear one.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "queue_internal.h"

struct mqb {
	mqd_t mq;
};

static int mq_init(struct mproc_queue *q, const struct mproc_queue_opts *o)
{
	char name[MPROC__NAME_MAX];
	struct mq_attr attr = { 0 };
	long sys_msgsize = mproc__read_proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
	long sys_maxmsg = mproc__read_proc_long("/proc/sys/fs/mqueue/msg_max", 10);
	struct mqb *m;
	int r, tries;

	if (!q->max_msg)
		q->max_msg = (size_t)sys_msgsize;
	if (!q->maxsize)
		q->maxsize = (size_t)sys_maxmsg;
	/* The kernel wants msgsize >= 1. */
	attr.mq_msgsize = q->max_msg ? (long)q->max_msg : 1;
	attr.mq_maxmsg = (long)q->maxsize;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->mq = (mqd_t)-1;
	q->be = m;
	for (tries = 0; tries < 16; tries++) {
		r = mproc__unique_name(name, sizeof(name));
		if (r < 0)
			return r;
		m->mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0600, &attr);
		if (m->mq != (mqd_t)-1)
			break;
		if (errno != EEXIST)
			break;
	}
	if (m->mq == (mqd_t)-1) {
		r = -errno;
		/* EINVAL with a size over the system's limit: say which limit. */
		if (r == -EINVAL && (long)q->max_msg > sys_msgsize)
			return -EMSGSIZE;
		return r;
	}
	/* Unlink at once: nothing can leak by name, even on a crash. */
	mq_unlink(name);
	return 0;
}

static void mq_fini(struct mproc_queue *q, bool creator)
{
	struct mqb *m = q->be;

	if (!m)
		return;
	if (m->mq != (mqd_t)-1)
		mq_close(m->mq);
	free(m);
	q->be = NULL;
}

static int mq_export(struct mproc_queue *q, struct mproc__queue_wire *w)
{
	struct mqb *m = q->be;

	return mproc__queue_wire_fd(w, 1, (int)m->mq);
}

static int mq_attach(struct mproc_queue *q, const struct mproc__queue_wire *w)
{
	struct mqb *m = calloc(1, sizeof(*m));
	int fd;

	if (!m)
		return -ENOMEM;
	m->mq = (mqd_t)-1;
	q->be = m;
	/* On Linux a message queue descriptor is an fd of the mqueue filesystem. */
	fd = mproc__queue_wire_open(w, 1, O_RDWR | O_NONBLOCK);
	if (fd < 0)
		return fd;
	m->mq = (mqd_t)fd;
	return 0;
}

static int mq_put(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline)
{
	struct mqb *m = q->be;
	int r;

	for (;;) {
		if (mq_send(m->mq, buf, len, 0) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = mproc__poll1((int)m->mq, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
}

static ssize_t mq_get(struct mproc_queue *q, void *buf, size_t cap, int64_t deadline)
{
	struct mqb *m = q->be;
	ssize_t n;
	int r;

	/* mq_receive refuses a buffer below mq_msgsize without taking anything. */
	if (cap < q->max_msg)
		return -EMSGSIZE;
	for (;;) {
		n = mq_receive(m->mq, buf, cap, NULL);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = mproc__poll1((int)m->mq, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

static ssize_t mq_qsize(struct mproc_queue *q)
{
	struct mqb *m = q->be;
	struct mq_attr a;

	if (mq_getattr(m->mq, &a) < 0)
		return -errno;
	return a.mq_curmsgs;
}

const struct mproc__queue_ops mproc__queue_mq_ops = {
	.name = "mq",
	.init = mq_init,
	.fini = mq_fini,
	.export_ = mq_export,
	.attach = mq_attach,
	.put = mq_put,
	.get = mq_get,
	.qsize = mq_qsize,
};
