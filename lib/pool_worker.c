/*
 * pool_worker.c - the worker side of the pool (lib/pool.c): a worker's loop over the shared task
 * table (claim, run, publish DONE, ring the owner), and how workers start: forked, or, for the
 * exec-based start methods, a fresh image that fetches the table's memfd and the doorbell over
 * the pool's abstract Unix socket and finds its task function by registered name. The table's
 * layout is in pool_internal.h.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/error.h"
#include "mproc/pool.h"
#include "mproc/process.h"
#include "pool_internal.h"


/* ---------------------------------------------------------------- worker side */

static void worker_ring_owner(struct mproc_pool *p, int w, bool done)
{
	struct hdr *h = p->hdr;

	if (done)
		__atomic_fetch_add(&h->done[w].n, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&h->owner_sleeping, __ATOMIC_SEQ_CST) &&
	    __atomic_exchange_n(&h->owner_sleeping, 0, __ATOMIC_SEQ_CST)) {
		uint64_t one = 1;
		ssize_t n;

		do
			n = write(p->efd, &one, sizeof(one));
		while (n < 0 && errno == EINTR);
	}
}

static void worker_run(struct mproc_pool *p, int w, uint64_t t)
{
	size_t i = t % p->nslots;
	struct slot *s = &p->slots[i];
	const char *task = task_at(p, i);
	ssize_t r;

	if (mproc__pool_test_hook)
		mproc__pool_test_hook(MPROC__POOL_HOOK_CLAIMED, task, s->task_len);
	r = p->o.fn(task, s->task_len, result_at(p, i), p->o.result_max, p->o.arg);
	if (r > (ssize_t)p->o.result_max)
		r = -EMSGSIZE;
	s->status = r;
	if (mproc__pool_test_hook)
		mproc__pool_test_hook(MPROC__POOL_HOOK_WRITTEN, task, s->task_len);
	__atomic_store_n(&s->state, ST(t, w, K_DONE), __ATOMIC_RELEASE);
	worker_ring_owner(p, w, true);
}

/* Claim up to max tickets starting at the cursor; returns how many (in out). */
static size_t worker_claim(struct mproc_pool *p, int w, uint64_t *out, size_t max)
{
	struct hdr *h = p->hdr;
	size_t got = 0;
	uint32_t chunk = 1;

	while (got < max && got < chunk) {
		uint64_t c = ld64(&h->cursor), t = ld64(&h->tail);
		struct slot *s;
		uint64_t st;

		if (c >= t)
			break;
		s = &p->slots[c % p->nslots];
		st = ld64(&s->state);
		if (ST_TICKET(st) == (c & TICKET_MASK) && ST_KIND(st) == K_QUEUED) {
			uint32_t ch = s->chunk;

			if (cas64(&s->state, st, ST(c, w, K_TAKEN))) {
				/* The claim is made: from here the owner knows we hold c. */
				if (got == 0)
					chunk = ch ? ch : 1;
				out[got++] = c;
			}
		}
		cas64(&h->cursor, c, c + 1);    /* help: the claimer may have died here */
	}
	return got;
}

static _Noreturn void worker_main(struct mproc_pool *p, int w)
{
	struct hdr *h = p->hdr;
	uint64_t claimed[CHUNK_MAX];
	unsigned long done = 0;
	unsigned spins = 0;
	pid_t owner = p->owner;

	if (p->o.initializer && p->o.initializer(p->o.initargs) != 0)
		_exit(3);
	__atomic_store_n(&h->ready[w], 1, __ATOMIC_SEQ_CST);
	worker_ring_owner(p, w, false);
	for (;;) {
		size_t max = CHUNK_MAX, n, k;

		if (ld32(&h->stop))
			_exit(0);
		if (p->o.maxtasksperchild && p->o.maxtasksperchild - done < max)
			max = p->o.maxtasksperchild - done;
		n = worker_claim(p, w, claimed, max);
		if (n) {
			/* More is waiting and others sleep: pass the wake-up on. The owner wakes one
			 * worker per burst (wake_pending), and that one takes only a chunk. */
			if (__atomic_load_n(&h->cursor, __ATOMIC_SEQ_CST) <
				    __atomic_load_n(&h->tail, __ATOMIC_SEQ_CST) &&
			    __atomic_load_n(&h->sleepers, __ATOMIC_SEQ_CST)) {
				__atomic_fetch_add(&h->seq, 1, __ATOMIC_SEQ_CST);
				mproc__futex_wake(&h->seq, 1);
			}
			for (k = 0; k < n; k++)
				worker_run(p, w, claimed[k]);
			done += n;
			spins = 0;
			if (p->o.maxtasksperchild && done >= p->o.maxtasksperchild)
				_exit(0);
			continue;
		}
		if (++spins < WORKER_SPIN) {
			mproc__cpu_relax();
			continue;
		}
		/* Sleep. Dekker with the owner: we count ourselves a sleeper, then re-check; it
		 * publishes, then reads the sleeper count (both seq_cst). */
		uint32_t seq = __atomic_load_n(&h->seq, __ATOMIC_SEQ_CST);

		__atomic_fetch_add(&h->sleepers, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&h->cursor, __ATOMIC_SEQ_CST) >=
			    __atomic_load_n(&h->tail, __ATOMIC_SEQ_CST) &&
		    !__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST))
			mproc__futex_wait(&h->seq, seq, mproc__now_ns() + MPROC__NSEC_PER_SEC);
		__atomic_fetch_sub(&h->sleepers, 1, __ATOMIC_SEQ_CST);
		/* We look at the table next: later publishers need not wake anyone until then
		 * (cleared before the look, seq_cst, against the owner's publish-then-check). */
		__atomic_store_n(&h->wake_pending, 0, __ATOMIC_SEQ_CST);
		spins = 0;
		if (getppid() != owner)
			_exit(0);
	}
}

static int worker_entry(void *arg)
{
	struct worker_arg *a = arg;

	signal(SIGINT, SIG_IGN);        /* the terminal's Ctrl-C is for the owner */
	worker_main(a->p, a->w);
}

/* ---------------------------------------------------------------- exec-based workers */

/* Names of task functions and initializers (exec-based methods). Guarded by reg_lock; a fork
 * child of a multi-threaded owner does not need it (it inherits fn itself). */
#define POOL_REG_MAX 256
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[MPROC_ENTRY_NAME_MAX + 1];
	mproc_task_fn *task;
	mproc_pool_init_fn *init;
} reg[POOL_REG_MAX];
static int reg_n;

static int reg_add(const char *name, mproc_task_fn *task, mproc_pool_init_fn *init)
{
	int r = 0, i;

	if (!name || !name[0] || (!task && !init))
		return -EINVAL;
	if (strlen(name) > MPROC_ENTRY_NAME_MAX)
		return -EMSGSIZE;
	pthread_mutex_lock(&reg_lock);
	for (i = 0; i < reg_n; i++) {
		if (strcmp(reg[i].name, name) == 0) {
			r = reg[i].task == task && reg[i].init == init ? 0 : -EEXIST;
			goto out;
		}
	}
	if (reg_n == POOL_REG_MAX) {
		r = -ENOSPC;
		goto out;
	}
	strcpy(reg[reg_n].name, name);
	reg[reg_n].task = task;
	reg[reg_n].init = init;
	reg_n++;
out:
	pthread_mutex_unlock(&reg_lock);
	return r;
}

int mproc_pool_register_task(const char *name, mproc_task_fn *fn)
{
	return fn ? reg_add(name, fn, NULL) : -EINVAL;
}

int mproc_pool_register_init(const char *name, mproc_pool_init_fn *fn)
{
	return fn ? reg_add(name, NULL, fn) : -EINVAL;
}

/* The name of task (or init); copies it to out (MPROC_ENTRY_NAME_MAX + 1). -ESRCH if none. */
static int reg_name_of(mproc_task_fn *task, mproc_pool_init_fn *init, char *out)
{
	int r = -ESRCH, i;

	pthread_mutex_lock(&reg_lock);
	for (i = 0; i < reg_n; i++) {
		if ((task && reg[i].task == task) || (init && reg[i].init == init)) {
			strcpy(out, reg[i].name);
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return r;
}

static void reg_find(const char *name, mproc_task_fn **task, mproc_pool_init_fn **init)
{
	int i;

	pthread_mutex_lock(&reg_lock);
	for (i = 0; i < reg_n; i++) {
		if (strcmp(reg[i].name, name) == 0) {
			if (task && reg[i].task)
				*task = reg[i].task;
			if (init && reg[i].init)
				*init = reg[i].init;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

/* What a worker started by an exec-based method is told (its process argument), then arg_len
 * bytes of arg and, XARG_ALIGN-aligned after them, initargs_len bytes of initargs (the argument
 * is a malloc'd copy in the worker, so both are max-aligned). The same image reads it. */
#define XARG_ALIGN(n) (((n) + 15) & ~(size_t)15)
#define XARG_MAGIC 0x6c6f6f70u  /* "pool" */
#define SOCK_NAME_MAX 96
struct exec_arg {
	uint32_t magic;
	int32_t w;
	uint64_t map_len, hdr_len, nslots, tstride, rstride, task_max, result_max;
	uint64_t arg_len, initargs_len;
	uint32_t maxtasksperchild;
	uint32_t has_init;
	char sock[SOCK_NAME_MAX];               /* abstract name, without the leading NUL */
	char fn[MPROC_ENTRY_NAME_MAX + 1];
	char init[MPROC_ENTRY_NAME_MAX + 1];
};

static socklen_t sock_addr(const char *name, struct sockaddr_un *sa)
{
	size_t n = strlen(name);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, name, n);      /* abstract: sun_path[0] == '\0' */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* Worker side: connect to the pool's socket and receive the table memfd and the doorbell. */
static int exec_fetch_fds(const char *name, int fds[2])
{
	struct sockaddr_un sa;
	socklen_t salen = sock_addr(name, &sa);
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	uint32_t hello = 0;
	struct iovec iov = { &hello, sizeof(hello) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			    .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *cm;
	ssize_t n;
	int fd, r;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while ((r = connect(fd, (struct sockaddr *)&sa, salen)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		r = -errno;
		goto out;
	}
	r = mproc__poll1(fd, POLLIN, mproc__now_ns() + 30 * MPROC__NSEC_PER_SEC);
	if (r < 0)
		goto out;
	do
		n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	r = -EBADMSG;
	cm = n == (ssize_t)sizeof(hello) ? CMSG_FIRSTHDR(&m) : NULL;
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(2 * sizeof(int))) {
		memcpy(fds, CMSG_DATA(cm), 2 * sizeof(int));
		r = 0;
	}
out:
	mproc__close(fd);
	return r;
}

/* The process entry of a worker started by an exec-based method, in a fresh image: rebuild
 * the worker's view of the pool from its argument and the fds fetched over the socket. Exit
 * codes before ready: 4 bad argument, 5 unknown names, 6 no table. */
static int pool_exec_worker(void *arg)
{
	const struct exec_arg *x = arg;
	struct mproc_pool *p;
	mproc_task_fn *fn = NULL;
	mproc_pool_init_fn *init = NULL;
	const char *extra;
	int fds[2] = { -1, -1 };
	void *map;

	if (!x || x->magic != XARG_MAGIC || x->w < 0 || x->w >= MPROC_POOL_WORKERS_MAX ||
	    !memchr(x->sock, 0, sizeof(x->sock)) || !memchr(x->fn, 0, sizeof(x->fn)) ||
	    !memchr(x->init, 0, sizeof(x->init)) || x->nslots == 0 ||
	    x->hdr_len < sizeof(struct hdr) ||
	    x->map_len != x->hdr_len + x->nslots * (x->tstride + x->rstride + sizeof(struct slot)))
		return 4;
	extra = (const char *)x + XARG_ALIGN(sizeof(*x));
	reg_find(x->fn, &fn, NULL);
	if (x->has_init)
		reg_find(x->init, NULL, &init);
	if (!fn || (x->has_init && !init))
		return 5;
	if (exec_fetch_fds(x->sock, fds) < 0)
		return 6;
	map = mmap(NULL, x->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[0],
		   0);
	mproc__close(fds[0]);
	if (map == MAP_FAILED)
		return 6;
	p = calloc(1, sizeof(*p));
	if (!p)
		return 6;
	p->hdr = map;
	p->map_len = x->map_len;
	p->nslots = x->nslots;
	p->tstride = x->tstride;
	p->rstride = x->rstride;
	p->slots = (struct slot *)((char *)map + x->hdr_len);
	p->tasks = (char *)(p->slots + p->nslots);
	p->results = p->tasks + p->nslots * p->tstride;
	p->efd = fds[1];
	p->memfd = p->lfd = -1;
	p->owner = getppid();   /* the owner, or the forkserver (which goes when the owner does) */
	p->nworkers = x->w + 1;
	p->o.fn = fn;
	p->o.arg = x->arg_len ? (void *)extra : NULL;
	p->o.task_max = x->task_max;
	p->o.result_max = x->result_max;
	p->o.maxtasksperchild = x->maxtasksperchild;
	p->o.initializer = init;
	p->o.initargs = x->initargs_len ? (void *)(extra + XARG_ALIGN(x->arg_len)) : NULL;
	signal(SIGINT, SIG_IGN);
	worker_main(p, x->w);
}
MPROC_ENTRY("mproc-pool-worker", pool_exec_worker)

/* Owner side: accept the connection of the worker just started (pid), check who it is, hand
 * it the table and the doorbell. Gives up when the worker ends first (-ECHILD) or after 30 s. */
static int exec_handshake(struct mproc_pool *p, struct mproc_process *proc)
{
	int64_t deadline = mproc__now_ns() + 30 * MPROC__NSEC_PER_SEC;
	pid_t pid = mproc_process_pid(proc);
	int sentinel = mproc_process_sentinel(proc);

	for (;;) {
		struct pollfd pf[2] = { { .fd = p->lfd, .events = POLLIN },
					{ .fd = sentinel, .events = POLLIN } };
		union {
			char buf[CMSG_SPACE(2 * sizeof(int))];
			struct cmsghdr align;
		} cb;
		uint32_t hello = 1;
		struct iovec iov = { &hello, sizeof(hello) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
				    .msg_controllen = sizeof(cb.buf) };
		struct cmsghdr *cm;
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		int c, r;
		ssize_t n;

		r = poll(pf, sentinel >= 0 ? 2 : 1, mproc__poll_ms(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		if (!(pf[0].revents & POLLIN))
			return -ECHILD;         /* it ended before it asked */
		c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;               /* EAGAIN (a peer gave up), EINTR... */
		/* Only the worker we started gets the table: anyone may connect to an abstract
		 * name, nobody can fake its peer credentials. */
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.pid != pid ||
		    cred.uid != getuid()) {
			mproc__close(c);
			continue;
		}
		memset(cb.buf, 0, sizeof(cb.buf));
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
		memcpy(CMSG_DATA(cm), (int[2]){ p->memfd, p->efd }, 2 * sizeof(int));
		do
			n = sendmsg(c, &m, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		r = n < 0 ? -errno : 0;
		mproc__close(c);
		return r;
	}
}

int mproc__pool_exec_setup(struct mproc_pool *p, size_t hdr_len)
{
	char name[MPROC__NAME_MAX];
	struct exec_arg *x;
	struct sockaddr_un sa;
	socklen_t salen;
	int r;

	if (p->o.arg_len > MPROC_POOL_ARG_MAX ||
	    p->o.initargs_len > MPROC_POOL_ARG_MAX - p->o.arg_len)
		return -EMSGSIZE;
	if ((p->o.arg_len && !p->o.arg) || (p->o.initargs_len && !p->o.initargs))
		return -EINVAL;
	p->xarg_len = XARG_ALIGN(sizeof(*x)) + XARG_ALIGN(p->o.arg_len) + p->o.initargs_len;
	x = p->xarg = calloc(1, p->xarg_len);
	if (!x)
		return -ENOMEM;
	r = reg_name_of(p->o.fn, NULL, x->fn);
	if (r == 0 && p->o.initializer)
		r = reg_name_of(NULL, p->o.initializer, x->init);
	if (r < 0)
		return r;
	x->magic = XARG_MAGIC;
	x->has_init = p->o.initializer != NULL;
	x->map_len = p->map_len;
	x->hdr_len = hdr_len;
	x->nslots = p->nslots;
	x->tstride = p->tstride;
	x->rstride = p->rstride;
	x->task_max = p->o.task_max;
	x->result_max = p->o.result_max;
	x->maxtasksperchild = p->o.maxtasksperchild;
	x->arg_len = p->o.arg_len;
	x->initargs_len = p->o.initargs_len;
	if (p->o.arg_len)
		memcpy((char *)x + XARG_ALIGN(sizeof(*x)), p->o.arg, p->o.arg_len);
	if (p->o.initargs_len)
		memcpy((char *)x + XARG_ALIGN(sizeof(*x)) + XARG_ALIGN(p->o.arg_len),
		       p->o.initargs, p->o.initargs_len);
	r = mproc__unique_name(name, sizeof(name));
	if (r < 0)
		return r;
	snprintf(x->sock, sizeof(x->sock), "mproc-pool%s", name);
	p->memfd = memfd_create("mproc-pool", MFD_CLOEXEC);
	if (p->memfd < 0)
		return -errno;
	if (ftruncate(p->memfd, (off_t)p->map_len) < 0)
		return -errno;
	p->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->lfd < 0)
		return -errno;
	salen = sock_addr(x->sock, &sa);
	if (bind(p->lfd, (struct sockaddr *)&sa, salen) < 0 || listen(p->lfd, 64) < 0)
		return -errno;
	return 0;
}

/* Start worker w: the one place that starts processes, through the process module. Method
 * fork: the child inherits the table mapping and the doorbell. Exec methods: the child image
 * runs pool_exec_worker, which fetches them over the socket (exec_handshake). Called unlocked
 * by the handler thread (replacements) or by mproc_pool_new. */
int mproc__pool_worker_spawn(struct mproc_pool *p, int w, struct worker *out)
{
	struct mproc_process_opts po = { .method = p->o.method, .name = "mproc-worker" };
	struct mproc_process *proc = NULL;
	int r;

	__atomic_store_n(&p->hdr->ready[w], 0, __ATOMIC_RELEASE);
	if (p->o.method == MPROC_START_FORK) {
		p->wargs[w].p = p;
		p->wargs[w].w = w;
		r = mproc_process_new(&proc, worker_entry, &p->wargs[w], &po);
	} else {
		/* Only the handler thread or mproc_pool_new get here, one at a time: the shared
		 * template is theirs. process_new copies it. */
		p->xarg->w = w;
		po.entry = "mproc-pool-worker";
		po.arg_len = p->xarg_len;
		r = mproc_process_new(&proc, pool_exec_worker, p->xarg, &po);
	}
	if (r < 0)
		return r;
	r = mproc_process_start(proc);
	if (r < 0) {
		mproc_process_free(proc);
		return r;
	}
	out->pidfd = mproc_process_sentinel(proc);
	r = out->pidfd < 0 ? -ENOSYS : 0;       /* no way to see it die: refuse it */
	if (r == 0 && p->o.method != MPROC_START_FORK)
		r = exec_handshake(p, proc);
	if (r < 0) {
		mproc_process_kill(proc);
		mproc_process_join(proc, MPROC_FOREVER);
		mproc_process_free(proc);
		return r;
	}
	out->proc = proc;
	out->pid = mproc_process_pid(proc);
	return 0;
}

/* Locked or single-threaded. */
int mproc__pool_worker_start(struct mproc_pool *p, int w)
{
	return mproc__pool_worker_spawn(p, w, &p->w[w]);
}

void mproc__pool_worker_reap(struct mproc_pool *p, int w)
{
	if (!p->w[w].proc)
		return;
	mproc_process_join(p->w[w].proc, MPROC_FOREVER);
	mproc_process_free(p->w[w].proc);       /* closes the sentinel */
	p->w[w].proc = NULL;
	p->w[w].pidfd = -1;
	p->w[w].pid = 0;
}
