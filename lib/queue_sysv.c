/*
 * queue_sysv.c - the SysV message queue back end.
 *
 * The creator makes the queue with msgget(key, IPC_CREAT|IPC_EXCL|0600) and removes it with
 * IPC_RMID in mproc_queue_free() and on every failure path of mproc_queue_new(). A creator
 * that is SIGKILLed leaves its queue behind (SysV objects have no name to unlink early and no
 * owner-death cleanup). So that such leftovers can be found and removed, keys carry the
 * prefix 0x6d70 ("mp") in their high 16 bits (random low bits), and each queue holds one
 * marker message of type SYSV_MARK_TYPE with the creator's pid, which gets never receives
 * (they ask for type SYSV_DATA_TYPE only). mproc_queue_clean_stale() walks
 * /proc/sysvipc/msg, takes the marker of each "mp" queue of our uid, and removes the queue if
 * its creator is gone (else puts the marker back). `ipcs -q` shows them as 0x6d70xxxx.
 *
 * SysV has no timed msgsnd/msgrcv and no fd to poll, so calls use IPC_NOWAIT and wait on the
 * shared futex sequence words of the front end (put_seq / get_seq) in slices of 20 ms, which
 * also bounds any wait on a wake-up a killed process never sent. Messages are atomic.
 *
 * maxsize is enforced from the kernel's own count (msg_qnum, less the marker), never from a
 * counter of ours: a counter kept beside the queue is off by one for good whenever a process
 * is SIGKILLed between its msgrcv and its decrement (or its increment and its msgsnd), and
 * SEM_UNDO cannot help because a slot changes hands between processes. Putters serialise
 * "read msg_qnum, then msgsnd" under a robust lock word in the shared block (mproc__qlock:
 * a holder killed in between is taken over, and there is nothing to repair since the count
 * is the kernel's). Getters need no lock: a get only makes room. The byte capacity is the
 * queue's msg_qbytes. While mproc_queue_clean_stale() holds a live queue's marker (a few
 * microseconds), qsize reads one low and one put beyond maxsize may pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/random.h>
#include <signal.h>
#include <unistd.h>

#include "internal.h"
#include "queue_internal.h"

#define MPROC_SYSV_KEY_PREFIX 0x6d700000u   /* "mp" */
#define SYSV_SLICE_NS (20 * INT64_C(1000000))
#define SYSV_STACK_BUF 8192
#define SYSV_DATA_TYPE 1
#define SYSV_MARK_TYPE 2

struct sysv_mark {
	long mtype;
	int32_t pid;
};

struct sysvb {
	int id;
};

struct sysv_msg {
	long mtype;
	char mtext[];
};

static int sysv_init(struct mproc_queue *q, const struct mproc_queue_opts *o)
{
	long sys_msgmax = mproc__read_proc_long("/proc/sys/kernel/msgmax", 8192);
	struct sysvb *b;
	struct msqid_ds ds;
	uint32_t rnd;
	int tries;

	if (!q->max_msg)
		q->max_msg = (size_t)sys_msgmax;
	if ((long)q->max_msg > sys_msgmax)
		return -EMSGSIZE;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->id = -1;
	q->be = b;
	for (tries = 0; tries < 64; tries++) {
		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
			rnd = (uint32_t)mproc__now_ns() + (uint32_t)tries;
		rnd = (rnd & 0xffffu) | 1u;   /* never IPC_PRIVATE */
		b->id = msgget((key_t)(MPROC_SYSV_KEY_PREFIX | rnd), IPC_CREAT | IPC_EXCL | 0600);
		if (b->id >= 0 || errno != EEXIST)
			break;
	}
	if (b->id < 0)
		return -errno;
	/* Room for the marker and at least one largest message (msg_qbytes defaults to msgmnb,
	 * 16 KiB; raising it above that needs CAP_SYS_RESOURCE). */
	if (msgctl(b->id, IPC_STAT, &ds) == 0 &&
	    ds.msg_qbytes < q->max_msg + sizeof(int32_t)) {
		ds.msg_qbytes = q->max_msg + sizeof(int32_t);
		if (msgctl(b->id, IPC_SET, &ds) < 0)
			return -EMSGSIZE;
	}
	struct sysv_mark mark = { .mtype = SYSV_MARK_TYPE, .pid = (int32_t)getpid() };
	if (msgsnd(b->id, &mark, sizeof(mark.pid), IPC_NOWAIT) < 0)
		return -errno;
	return 0;
}

static int sysv_export(struct mproc_queue *q, struct mproc__queue_wire *w)
{
	struct sysvb *b = q->be;

	w->sysv_id = b->id;
	return 0;
}

static int sysv_attach(struct mproc_queue *q, const struct mproc__queue_wire *w)
{
	struct sysvb *b;
	struct msqid_ds ds;

	if (w->sysv_id < 0)
		return -EINVAL;
	/* The id must still name a queue (IPC_STAT also checks that we may read it). */
	if (msgctl(w->sysv_id, IPC_STAT, &ds) < 0)
		return errno == EINVAL || errno == EIDRM ? -ESRCH : -errno;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->id = w->sysv_id;
	q->be = b;
	return 0;
}

static void sysv_fini(struct mproc_queue *q, bool creator)
{
	struct sysvb *b = q->be;

	if (!b)
		return;
	if (creator && b->id >= 0)
		msgctl(b->id, IPC_RMID, NULL);
	free(b);
	q->be = NULL;
}

/* Items in the queue by the kernel's count, less the marker. */
static ssize_t sysv_count(struct sysvb *b)
{
	struct msqid_ds ds;

	if (msgctl(b->id, IPC_STAT, &ds) < 0)
		return errno == EIDRM || errno == EINVAL ? -EPIPE : -errno;
	return ds.msg_qnum > 0 ? (ssize_t)ds.msg_qnum - 1 : 0;
}

/* One attempt: 0 (sent), -EAGAIN (full by maxsize or by bytes), -errno. */
static int sysv_try_send(struct mproc_queue *q, struct sysvb *b, struct sysv_msg *m, size_t len,
			 int64_t deadline)
{
	ssize_t n;
	int r;

	if (q->maxsize) {
		r = mproc__qlock(&q->sh->put_lock, deadline);
		if (r == -EOWNERDEAD)
			r = 0;  /* a putter died holding it: the kernel's count is still right */
		if (r < 0)
			return r;
		n = sysv_count(b);
		if (n < 0 || (size_t)n >= q->maxsize) {
			mproc__qunlock(&q->sh->put_lock);
			return n < 0 ? (int)n : -EAGAIN;
		}
	}
	do
		r = msgsnd(b->id, m, len, IPC_NOWAIT);
	while (r < 0 && errno == EINTR);
	r = r == 0 ? 0 : errno == EIDRM ? -EPIPE : -errno;
	if (q->maxsize)
		mproc__qunlock(&q->sh->put_lock);
	return r;
}

static int sysv_put(struct mproc_queue *q, const void *buf, size_t len, int64_t deadline)
{
	struct sysvb *b = q->be;
	_Alignas(long) char stack[sizeof(long) + SYSV_STACK_BUF];
	struct sysv_msg *m = (struct sysv_msg *)stack;
	uint32_t seen;
	int r;

	if (len > SYSV_STACK_BUF) {
		m = malloc(sizeof(long) + len);
		if (!m)
			return -ENOMEM;
	}
	m->mtype = SYSV_DATA_TYPE;
	memcpy(m->mtext, buf, len);
	for (;;) {
		seen = atomic_load(&q->sh->get_seq);
		r = sysv_try_send(q, b, m, len, deadline);
		if (r != -EAGAIN)
			break;
		r = mproc__qwait_get(q, seen, deadline, SYSV_SLICE_NS);
		if (r < 0)
			break;
	}
	if ((char *)m != stack)
		free(m);
	if (r < 0)
		return r;
	mproc__qnotify_put(q);
	return 0;
}

static ssize_t sysv_get(struct mproc_queue *q, void *buf, size_t cap, int64_t deadline)
{
	struct sysvb *b = q->be;
	_Alignas(long) char stack[sizeof(long) + SYSV_STACK_BUF];
	struct sysv_msg *m = (struct sysv_msg *)stack;
	size_t room = cap < q->max_msg ? cap : q->max_msg;
	uint32_t seen;
	ssize_t n;
	int r;

	if (room > SYSV_STACK_BUF) {
		m = malloc(sizeof(long) + room);
		if (!m)
			return -ENOMEM;
	}
	for (;;) {
		seen = atomic_load(&q->sh->put_seq);
		/* Without MSG_NOERROR a message over room fails with E2BIG and stays queued. */
		n = msgrcv(b->id, m, room, SYSV_DATA_TYPE, IPC_NOWAIT);
		if (n >= 0) {
			memcpy(buf, m->mtext, (size_t)n);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == E2BIG) {
			n = -EMSGSIZE;
			break;
		}
		if (errno != ENOMSG) {
			n = errno == EIDRM ? -EPIPE : -errno;
			break;
		}
		r = mproc__qwait_put(q, seen, deadline, SYSV_SLICE_NS);
		if (r < 0) {
			n = r;
			break;
		}
	}
	if ((char *)m != stack)
		free(m);
	if (n >= 0)
		mproc__qnotify_get(q);
	return n;
}

static ssize_t sysv_qsize(struct mproc_queue *q)
{
	return sysv_count(q->be);
}

int mproc_queue_clean_stale(void)
{
	FILE *f = fopen("/proc/sysvipc/msg", "re");
	char line[512];
	int removed = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	if (!fgets(line, sizeof(line), f)) {     /* header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		long long key;
		int id, perms, lspid, lrpid;
		unsigned long cbytes, qnum;
		unsigned uid, gid, cuid;
		struct sysv_mark mark;
		ssize_t n;

		if (sscanf(line, "%lld %d %o %lu %lu %d %d %u %u %u", &key, &id, &perms, &cbytes,
			   &qnum, &lspid, &lrpid, &uid, &gid, &cuid) != 10)
			continue;
		if (((uint32_t)key & 0xffff0000u) != MPROC_SYSV_KEY_PREFIX || cuid != geteuid())
			continue;
		n = msgrcv(id, &mark, sizeof(mark.pid), SYSV_MARK_TYPE, IPC_NOWAIT);
		if (n != (ssize_t)sizeof(mark.pid))
			continue;       /* no marker: not ours, or another cleaner holds it */
		if (mark.pid > 0 && (kill((pid_t)mark.pid, 0) == 0 || errno == EPERM)) {
			msgsnd(id, &mark, sizeof(mark.pid), IPC_NOWAIT);       /* alive: put back */
			continue;
		}
		if (msgctl(id, IPC_RMID, NULL) == 0)
			removed++;
	}
	fclose(f);
	return removed;
}

const struct mproc__queue_ops mproc__queue_sysv_ops = {
	.name = "sysv",
	.init = sysv_init,
	.fini = sysv_fini,
	.export_ = sysv_export,
	.attach = sysv_attach,
	.put = sysv_put,
	.get = sysv_get,
	.qsize = sysv_qsize,
};
