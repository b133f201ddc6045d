/*
 * pool.c - worker pool and futures over a task table in shared memory (mproc/pool.h).
 *
 * The table: a header (ticket counters, futex words), then nslots slots of 64 bytes, then the
 * task area (nslots * tstride) and the result area (nslots * rstride). Ticket t lives in slot
 * t % nslots. The owner publishes tickets in order (payload, then the state word QUEUED|t with
 * release, then tail = t + 1); workers claim with one CAS on the slot's state word and move a
 * shared cursor forward (any worker helps move it, so a worker that dies between its claim and
 * the cursor move stalls nobody). The state word packs ticket (40 bits) | worker (16) | kind (8),
 * so a stale reader can never claim a reused slot.
 *
 * Owner side: one mutex protects the private bookkeeping (which job each ticket feeds); the
 * handler thread harvests DONE slots into jobs, reaps dead workers and fails their slots, and
 * starts replacements. Only the owner writes kinds other than TAKEN/DONE, and it writes DIED
 * only after the worker is reaped (a dead process writes nothing), CANCELED only by CAS from
 * QUEUED, so the owner and a worker never both finish one slot.
 *
 * Workers of the exec-based start methods run a fresh image: the table is then a memfd, and
 * each new worker (pool_exec_worker, entry "mproc-pool-worker") connects to the pool's abstract
 * Unix socket, where the owner, right after starting it, hands the memfd and the doorbell to
 * the peer whose SO_PEERCRED pid is that worker (exec_handshake); fn and the initializer are
 * found by registered name. From then on the worker runs the same worker_main as a fork child.
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

void (*mproc__pool_test_hook)(int point, const void *task, size_t len);

enum { K_FREE = 0, K_QUEUED, K_TAKEN, K_DONE, K_CANCELED, K_DIED };

#define ST(t, w, k) (((uint64_t)(t) << 24) | ((uint64_t)(w) << 8) | (uint64_t)(k))
#define ST_KIND(s) ((int)((s) & 0xff))
#define ST_WORKER(s) ((int)(((s) >> 8) & 0xffff))
#define ST_TICKET(s) ((s) >> 24)
#define TICKET_MASK ((UINT64_C(1) << 40) - 1)

#define WORKER_SPIN 2000        /* idle polls before a worker sleeps (~tens of us) */
#define HANDLER_SPIN 200
#define CHUNK_MAX 1024
#define EARLY_DEATHS_MAX 3      /* replacements dying before ready: the pool breaks */

struct hdr {
	_Alignas(64) uint64_t tail;     /* next ticket to publish (owner writes) */
	_Alignas(64) uint64_t cursor;   /* next ticket to claim (workers) */
	_Alignas(64) uint32_t seq;      /* futex: bumped by the owner on publish/stop */
	uint32_t sleepers;              /* workers inside futex_wait */
	uint32_t wake_pending;          /* a wake-up was sent and no woken worker has looked yet */
	uint32_t stop;
	_Alignas(64) uint32_t owner_sleeping;
	_Alignas(64) uint32_t ready[MPROC_POOL_WORKERS_MAX];
	struct {
		_Alignas(64) uint64_t n;        /* tasks worker w published DONE (after the store) */
	} done[MPROC_POOL_WORKERS_MAX];
};

struct slot {
	_Alignas(64) uint64_t state;
	uint32_t task_len;
	uint32_t chunk;
	int64_t status;
};

enum { J_SINGLE, J_MAP, J_IMAP, J_IMAPU };

struct mproc_result {
	struct mproc_pool *pool;        /* NULL once the pool is freed */
	struct mproc_result *prev, *next;       /* the pool's list of live jobs */
	int refs;                       /* the caller's + one while tickets are unharvested */
	bool linked;
	int kind;
	size_t n, ndone, pending;       /* pending: tickets published, not harvested */
	uint8_t *done;                  /* per item (n > 1) */
	ssize_t *st;                    /* per item status */
	ssize_t st1;
	char *res;                      /* results: res + i * rstride */
	size_t rstride;
	bool res_owned;
	size_t *order, norder, next_pos;        /* imap: completion order / next index */
	uint64_t ticket;                /* J_SINGLE */
	mproc_result_cb *cb, *ecb;
	void *cb_arg;
	/* A lazy imap (batch.buffersize > 0): items are published as the caller consumes, at
	 * most window submitted and not yet yielded; each published item borrows one of window
	 * result slots (slotof[idx]; NO_SLOT for none) and gives it back when yielded. */
	ssize_t *user_st;               /* map_async: the caller's status array (not ours) */
	bool lazy;
	size_t window, next_sub, nfree;
	uint32_t *slotof, *freeslots;
	const char *ltasks;
	size_t ltask_len, lstride;
	uint32_t lchunk;
};

#define NO_SLOT UINT32_MAX

struct mproc_imap {
	struct mproc_result *job;
};

struct tref {
	struct mproc_result *job;
	size_t idx;
};

struct worker {
	struct mproc_process *proc;
	pid_t pid;
	int pidfd;              /* its sentinel (owned by proc) */
};

struct worker_arg;

struct mproc_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;              /* a job made progress / space freed / state changed */
	struct hdr *hdr;
	size_t map_len;
	struct slot *slots;
	char *tasks, *results;
	size_t nslots, tstride, rstride;
	uint64_t head;                  /* oldest unharvested ticket (owner) */
	uint64_t tail;                  /* owner's copy of hdr->tail */
	struct tref *tref;
	uint8_t *used;                  /* per slot: published and not harvested */
	int nworkers;
	struct worker *w;
	struct worker_arg *wargs;       /* per worker, read by the forked child */
	int efd;
	/* Exec-based methods: the table as a memfd, the socket new workers fetch it from (and
	 * the doorbell), and what each worker's argument carries (wire, with w set per worker). */
	int memfd, lfd;
	struct exec_arg *xarg;
	size_t xarg_len;
	pthread_t thr;
	bool thr_started, handler_stop;
	bool closed, stopping, terminated, broken;
	int early_deaths;
	struct mproc_pool_opts o;
	pid_t owner;
	uint64_t last_done_seq;
	uint64_t *harvested;            /* per worker: its DONE slots harvested */
	int64_t *want;                  /* scratch of harvest_pass */
	bool wake;                      /* a waiter has something to see */
	int space_waiters;
	struct mproc_result *jobs;      /* live jobs */
	struct mproc_result **cbq;      /* jobs whose callback is due (each holds a ref) */
	size_t ncbq, capcbq;
};

/* ---------------------------------------------------------------- shared words */

static inline uint64_t ld64(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint32_t ld32(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline bool cas64(uint64_t *p, uint64_t old, uint64_t nw)
{
	return __atomic_compare_exchange_n(p, &old, nw, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static char *task_at(struct mproc_pool *p, size_t i) { return p->tasks + i * p->tstride; }
static char *result_at(struct mproc_pool *p, size_t i) { return p->results + i * p->rstride; }

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
			cpu_relax();
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

struct worker_arg {
	struct mproc_pool *p;
	int w;
};

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

static int exec_setup(struct mproc_pool *p, size_t hdr_len)
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
static int worker_spawn(struct mproc_pool *p, int w, struct worker *out)
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
static int worker_start(struct mproc_pool *p, int w)
{
	return worker_spawn(p, w, &p->w[w]);
}

static void worker_reap(struct mproc_pool *p, int w)
{
	if (!p->w[w].proc)
		return;
	mproc_process_join(p->w[w].proc, MPROC_FOREVER);
	mproc_process_free(p->w[w].proc);       /* closes the sentinel */
	p->w[w].proc = NULL;
	p->w[w].pidfd = -1;
	p->w[w].pid = 0;
}

/* ---------------------------------------------------------------- owner: jobs */

static void job_unref(struct mproc_result *j)
{
	if (--j->refs > 0)
		return;
	if (j->pool && j->linked) {
		if (j->prev)
			j->prev->next = j->next;
		else
			j->pool->jobs = j->next;
		if (j->next)
			j->next->prev = j->prev;
	}
	if (j->res_owned)
		free(j->res);
	if (j->st != &j->st1)
		free(j->st);
	free(j->done);
	free(j->order);
	free(j->slotof);
	free(j->freeslots);
	free(j);
}

/* A job of n items. res: where results go (NULL: a private buffer if alloc_res, else none);
 * st: the caller's status array (NULL: private). */
static struct mproc_result *job_new(struct mproc_pool *p, int kind, size_t n, size_t rstride,
				    void *res, ssize_t *st, bool alloc_res)
{
	struct mproc_result *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->pool = p;
	j->refs = 1;
	j->kind = kind;
	j->n = n;
	j->rstride = rstride;
	j->st = &j->st1;
	if (kind != J_SINGLE) {
		j->done = calloc(n ? n : 1, 1);
		if (!j->done)
			goto fail;
		j->st = st ? st : calloc(n ? n : 1, sizeof(*j->st));
		if (!j->st)
			goto fail;
	}
	if (kind == J_IMAPU) {
		j->order = calloc(n ? n : 1, sizeof(*j->order));
		if (!j->order)
			goto fail;
	}
	if (res) {
		j->res = res;
	} else if (alloc_res && n && rstride) {
		j->res = malloc(n * rstride);
		j->res_owned = true;
		if (!j->res)
			goto fail;
	} else {
		j->rstride = SIZE_MAX;  /* results not kept: no copy, no size check */
	}
	return j;
fail:
	if (j->st && j->st != &j->st1 && j->st != st)
		free(j->st);
	free(j->done);
	free(j->order);
	free(j);
	return NULL;
}

/* The caller's st array is not ours to free. */
static void job_forget_st(struct mproc_result *j, ssize_t *st)
{
	if (j->st == st)
		j->st = &j->st1;
}

static void job_link(struct mproc_pool *p, struct mproc_result *j)
{
	j->linked = true;
	j->prev = NULL;
	j->next = p->jobs;
	if (p->jobs)
		p->jobs->prev = j;
	p->jobs = j;
}

static void cbq_push(struct mproc_pool *p, struct mproc_result *j)
{
	if (p->ncbq == p->capcbq) {
		size_t cap = p->capcbq ? 2 * p->capcbq : 64;
		struct mproc_result **q = realloc(p->cbq, cap * sizeof(*q));

		if (!q)
			return;         /* out of memory: the callback is dropped, the result is not */
		p->cbq = q;
		p->capcbq = cap;
	}
	j->refs++;
	p->cbq[p->ncbq++] = j;
}

/* Deliver item idx of j with status (and the result bytes at src). Locked. */
static void job_deliver(struct mproc_pool *p, struct mproc_result *j, size_t idx, ssize_t status,
			const char *src)
{
	if (status >= 0 && (size_t)status > j->rstride)
		status = -EMSGSIZE;
	if (status > 0 && j->res)
		memcpy(j->res + (j->slotof ? j->slotof[idx] : idx) * j->rstride, src,
		       (size_t)status);
	j->st[idx] = status;
	if (j->done)
		j->done[idx] = 1;
	if (j->order)
		j->order[j->norder++] = idx;
	j->ndone++;
	if (j->ndone == j->n || j->kind == J_IMAP || j->kind == J_IMAPU)
		p->wake = true;
	if (j->kind == J_MAP && j->ndone == j->n) {
		/* A map's own status: 0, or the first failed task's error by index. */
		size_t i;

		j->st1 = 0;
		for (i = 0; i < j->n && j->st1 == 0; i++)
			if (j->st[i] < 0)
				j->st1 = j->st[i];
	}
	if ((j->kind == J_SINGLE || (j->kind == J_MAP && j->ndone == j->n)) && (j->cb || j->ecb))
		cbq_push(p, j);
}

static void ticket_finish(struct mproc_pool *p, uint64_t t, ssize_t status, const char *src)
{
	size_t i = t % p->nslots;
	struct tref *tr = &p->tref[i];
	struct mproc_result *j = tr->job;

	p->used[i] = 0;
	__atomic_store_n(&p->slots[i].state, ST(t, 0, K_FREE), __ATOMIC_RELAXED);
	tr->job = NULL;
	job_deliver(p, j, tr->idx, status, src);
	if (--j->pending == 0 && j->ndone == j->n)
		job_unref(j);   /* the pool's reference */
}

/* Harvest finished slots. Locked. A partial pass stops once it has found as many DONE slots
 * as workers announced (done_seq), so a pass costs what finished, not what is pending; a full
 * pass (after deaths, cancels) looks at every pending slot. Returns how many. */
static size_t harvest_pass(struct mproc_pool *p, bool full)
{
	int64_t remaining = 0;
	size_t got = 0;
	uint64_t t;
	int w;

	/* Worker w published done[w] tasks and we harvested harvested[w] of its DONE slots; it
	 * bumps done[w] after its store, so each unharvested counted slot is visible. */
	for (w = 0; w < p->nworkers; w++) {
		int64_t d = (int64_t)(__atomic_load_n(&p->hdr->done[w].n, __ATOMIC_ACQUIRE) -
				      p->harvested[w]);

		p->want[w] = d > 0 ? d : 0;
		remaining += p->want[w];
	}
	if (!full && remaining == 0)
		return 0;
	for (t = p->head; t < p->tail; t++) {
		size_t i = t % p->nslots;
		uint64_t st;

		if (!full && remaining == 0)
			break;
		if (!p->used[i])
			continue;
		st = ld64(&p->slots[i].state);
		switch (ST_KIND(st)) {
		case K_DONE:
			w = ST_WORKER(st);
			p->harvested[w]++;
			if (p->want[w] > 0) {
				p->want[w]--;
				remaining--;
			}
			ticket_finish(p, t, (ssize_t)p->slots[i].status, result_at(p, i));
			got++;
			break;
		case K_CANCELED:
			ticket_finish(p, t, -ECANCELED, NULL);
			got++;
			break;
		case K_DIED:
			ticket_finish(p, t, -ECHILD, NULL);
			got++;
			break;
		default:
			break;
		}
	}
	while (p->head < p->tail && !p->used[p->head % p->nslots])
		p->head++;
	if (p->wake || (got && p->space_waiters)) {
		p->wake = false;
		pthread_cond_broadcast(&p->cv);
	}
	return got;
}

static size_t harvest(struct mproc_pool *p)
{
	return harvest_pass(p, true);
}

static size_t harvest_some(struct mproc_pool *p)
{
	return harvest_pass(p, false);
}

/* Run the due callbacks, unlocked (they may use their result). */
static void run_callbacks(struct mproc_pool *p)
{
	struct mproc_result **q;
	size_t n, k;

	pthread_mutex_lock(&p->mu);
	q = p->cbq;
	n = p->ncbq;
	p->cbq = NULL;
	p->ncbq = p->capcbq = 0;
	pthread_mutex_unlock(&p->mu);
	for (k = 0; k < n; k++) {
		struct mproc_result *j = q[k];

		if (j->st1 >= 0 && j->cb)
			j->cb(j, j->st1, j->cb_arg);
		else if (j->st1 < 0 && j->ecb)
			j->ecb(j, j->st1, j->cb_arg);
	}
	pthread_mutex_lock(&p->mu);
	for (k = 0; k < n; k++)
		job_unref(q[k]);
	pthread_mutex_unlock(&p->mu);
	free(q);
}

/* Mark every unfinished published slot with kind (DIED or CANCELED). Only when no worker
 * lives (all reaped). Locked. */
static void fail_all(struct mproc_pool *p, int kind)
{
	uint64_t t;

	for (t = p->head; t < p->tail; t++) {
		size_t i = t % p->nslots;
		uint64_t st;

		if (!p->used[i])
			continue;
		st = ld64(&p->slots[i].state);
		if (ST_KIND(st) == K_QUEUED || ST_KIND(st) == K_TAKEN)
			__atomic_store_n(&p->slots[i].state, ST(t, 0, kind), __ATOMIC_RELEASE);
	}
	/* Nothing is left for the workers to take. */
	__atomic_store_n(&p->hdr->cursor, p->tail, __ATOMIC_RELEASE);
	harvest(p);
}

static void kill_all_workers(struct mproc_pool *p)
{
	int w;

	for (w = 0; w < p->nworkers; w++)
		if (p->w[w].proc)
			mproc_process_kill(p->w[w].proc);
	for (w = 0; w < p->nworkers; w++)
		worker_reap(p, w);
}

static void break_pool(struct mproc_pool *p)
{
	p->broken = true;
	p->closed = true;
	kill_all_workers(p);
	fail_all(p, K_DIED);
	pthread_cond_broadcast(&p->cv);
}

/* Worker w ended (its pidfd is readable). Locked; handler thread. Returns whether to start a
 * replacement (the caller does it unlocked, so that waiters see the failure at once). */
static bool handle_death(struct mproc_pool *p, int w)
{
	bool was_ready = __atomic_load_n(&p->hdr->ready[w], __ATOMIC_ACQUIRE);
	uint64_t t;

	worker_reap(p, w);
	/* It can write nothing more: fail exactly the slots it held. */
	for (t = p->head; t < p->tail; t++) {
		size_t i = t % p->nslots;
		uint64_t st;

		if (!p->used[i])
			continue;
		st = ld64(&p->slots[i].state);
		if (ST_KIND(st) == K_TAKEN && ST_WORKER(st) == w)
			__atomic_store_n(&p->slots[i].state, ST(t, 0, K_DIED), __ATOMIC_RELEASE);
	}
	harvest(p);
	/* Its DONE slots are all harvested now, and it can count no more: resync (it may have
	 * died between its store and its count). */
	p->harvested[w] = __atomic_load_n(&p->hdr->done[w].n, __ATOMIC_ACQUIRE);
	if (p->stopping || p->broken)
		return false;
	p->early_deaths = was_ready ? 0 : p->early_deaths + 1;
	if ((p->o.flags & MPROC_POOL_BREAK_ON_DEATH) || p->early_deaths >= EARLY_DEATHS_MAX) {
		break_pool(p);
		return false;
	}
	return true;
}

/* Start replacements for the workers in ws[0..n). Locked on entry and exit; forks unlocked. */
static void respawn(struct mproc_pool *p, const int *ws, int n)
{
	struct worker nw[16];
	int r[16], k, base;

	for (base = 0; base < n; base += 16) {
		int m = n - base < 16 ? n - base : 16;

		pthread_mutex_unlock(&p->mu);
		for (k = 0; k < m; k++)
			r[k] = worker_spawn(p, ws[base + k], &nw[k]);
		pthread_mutex_lock(&p->mu);
		for (k = 0; k < m; k++) {
			if (r[k] < 0)
				continue;
			if (p->stopping || p->broken) {
				mproc_process_kill(nw[k].proc);
				mproc_process_join(nw[k].proc, MPROC_FOREVER);
				mproc_process_free(nw[k].proc);
				continue;
			}
			p->w[ws[base + k]] = nw[k];
		}
		for (k = 0; k < m; k++)
			if (r[k] < 0 && !p->stopping && !p->broken)
				break_pool(p);
	}
}

static uint64_t done_sum(struct mproc_pool *p)
{
	uint64_t s = 0;
	int w;

	for (w = 0; w < p->nworkers; w++)
		s += __atomic_load_n(&p->hdr->done[w].n, __ATOMIC_SEQ_CST);
	return s;
}

static void *handler_main(void *arg)
{
	struct mproc_pool *p = arg;
	struct hdr *h = p->hdr;
	struct pollfd *pfd;
	int *who;

	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);        /* signals go to the caller's threads */
	pfd = calloc((size_t)p->nworkers + 1, sizeof(*pfd));
	who = calloc((size_t)p->nworkers + 1, sizeof(*who));
	pthread_mutex_lock(&p->mu);
	while (!p->handler_stop) {
		int n = 0, w, k, r;
		uint64_t ds;

		harvest_some(p);
		if (p->ncbq) {
			pthread_mutex_unlock(&p->mu);
			run_callbacks(p);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		pfd[n].fd = p->efd;
		pfd[n].events = POLLIN;
		n++;
		for (w = 0; w < p->nworkers && pfd; w++) {
			if (p->w[w].pid <= 0)
				continue;
			pfd[n].fd = p->w[w].pidfd;
			pfd[n].events = POLLIN;
			who[n] = w;
			n++;
		}
		pthread_mutex_unlock(&p->mu);

		/* Spin a little while work is in flight, then sleep on the doorbell. */
		for (k = 0; k < HANDLER_SPIN; k++) {
			if (done_sum(p) != p->last_done_seq)
				break;
			cpu_relax();
		}
		__atomic_store_n(&h->owner_sleeping, 1, __ATOMIC_SEQ_CST);
		ds = done_sum(p);
		r = 0;
		if (ds == p->last_done_seq && pfd && who) {
			r = poll(pfd, (nfds_t)n, 1000);
		} else if (!pfd || !who) {
			r = poll(NULL, 0, 10);  /* out of memory: poll the table instead */
			r = 0;
		}
		__atomic_store_n(&h->owner_sleeping, 0, __ATOMIC_SEQ_CST);
		p->last_done_seq = done_sum(p);
		if (r > 0 && (pfd[0].revents & POLLIN)) {
			uint64_t v;

			while (read(p->efd, &v, sizeof(v)) < 0 && errno == EINTR)
				;
		}
		pthread_mutex_lock(&p->mu);
		if (r == 0)
			harvest(p);     /* a quiet second: a full pass, whatever the counts say */
		if (r > 0) {
			harvest_some(p);        /* results written before a death count */
			int nresp = 0;

			for (k = 1; k < n; k++)
				if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
				    p->w[who[k]].pid > 0 && !p->stopping &&
				    handle_death(p, who[k]))
					who[nresp++] = who[k];  /* nresp < k: reuse the array */
			if (nresp)
				respawn(p, who, nresp);
		}
	}
	pthread_mutex_unlock(&p->mu);
	free(pfd);
	free(who);
	return NULL;
}

static void handler_stop(struct mproc_pool *p)
{
	uint64_t one = 1;

	if (!p->thr_started)
		return;
	pthread_mutex_lock(&p->mu);
	p->handler_stop = true;
	pthread_mutex_unlock(&p->mu);
	while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(p->thr, NULL);
	p->thr_started = false;
}

/* ---------------------------------------------------------------- owner: lifecycle */

static int cond_wait_until(struct mproc_pool *p, int64_t deadline)
{
	struct timespec ts;

	if (deadline == MPROC__NO_DEADLINE)
		return -pthread_cond_wait(&p->cv, &p->mu);
	ts.tv_sec = deadline / MPROC__NSEC_PER_SEC;
	ts.tv_nsec = deadline % MPROC__NSEC_PER_SEC;
	return -pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

static int wait_ready(struct mproc_pool *p)
{
	int64_t deadline = mproc__now_ns() + 30 * MPROC__NSEC_PER_SEC;
	int w;

	for (w = 0; w < p->nworkers; w++) {
		for (;;) {
			struct pollfd pf[2] = { { .fd = p->w[w].pidfd, .events = POLLIN },
						{ .fd = p->efd, .events = POLLIN } };
			int r;

			/* Dekker with worker_ring_owner: ask for the doorbell, then re-check. */
			__atomic_store_n(&p->hdr->owner_sleeping, 1, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&p->hdr->ready[w], __ATOMIC_SEQ_CST))
				break;
			r = poll(pf, 2, mproc__poll_ms(deadline));

			if (r < 0 && errno != EINTR)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
			if (r > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    !__atomic_load_n(&p->hdr->ready[w], __ATOMIC_ACQUIRE))
				return -ECHILD;
			if (r > 0 && (pf[1].revents & POLLIN)) {
				uint64_t v;

				while (read(p->efd, &v, sizeof(v)) < 0 && errno == EINTR)
					;
			}
		}
	}
	__atomic_store_n(&p->hdr->owner_sleeping, 0, __ATOMIC_SEQ_CST);
	return 0;
}

/* Release what the pool object owns (the workers are gone by now). Safe on a half-built pool:
 * mproc_pool_new's failure path and mproc_pool_free share it. */
static void pool_release(struct mproc_pool *p)
{
	mproc__close(p->efd);
	mproc__close(p->memfd);
	mproc__close(p->lfd);
	free(p->xarg);
	if (p->hdr)
		munmap(p->hdr, p->map_len);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->cbq);
	free(p->tref);
	free(p->used);
	free(p->w);
	free(p->wargs);
	free(p->harvested);
	free(p->want);
	free(p);
}

int mproc_pool_new(struct mproc_pool **out, const struct mproc_pool_opts *opts)
{
	struct mproc_pool *p = NULL;
	pthread_condattr_t ca;
	cpu_set_t set;
	size_t hdr_len, per;
	int nw, w, r;

	if (!out || !opts || !opts->fn || (opts->flags & ~(unsigned)MPROC_POOL_FLAGS_ALL))
		return -EINVAL;
	nw = opts->workers;
	if (nw == 0 && (opts->flags & MPROC_POOL_AUTO_SIZE)) {
		nw = 1;
		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			nw = CPU_COUNT(&set);
		if (nw > MPROC_POOL_WORKERS_MAX)
			nw = MPROC_POOL_WORKERS_MAX;
	}
	if (nw <= 0 || nw > MPROC_POOL_WORKERS_MAX)
		return -EINVAL;
	if (opts->method < 0 || opts->method >= MPROC_START__COUNT)
		return -EINVAL;
	if (opts->method == MPROC_START_THREAD)
		return -ENOTSUP;        /* a worker must be a process: killable, with its own pid */
	if (opts->task_max > MPROC_POOL_ITEM_MAX || opts->result_max > MPROC_POOL_ITEM_MAX ||
	    opts->queue_max > MPROC_POOL_QUEUE_MAX)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->o = *opts;
	p->efd = p->memfd = p->lfd = -1;
	p->nworkers = nw;
	p->owner = getpid();
	if (!p->o.task_max)
		p->o.task_max = 64;
	if (!p->o.result_max)
		p->o.result_max = 64;
	p->tstride = (p->o.task_max + 63) & ~(size_t)63;
	p->rstride = (p->o.result_max + 63) & ~(size_t)63;
	per = p->tstride + p->rstride + sizeof(struct slot);
	p->nslots = p->o.queue_max;
	if (!p->nslots) {
		p->nslots = ((size_t)256 << 20) / per;  /* default: 16384, at most ~256 MiB */
		if (p->nslots > 16384)
			p->nslots = 16384;
		if (p->nslots < 64)
			p->nslots = 64;
	}
	hdr_len = (sizeof(struct hdr) + 4095) & ~(size_t)4095;
	p->map_len = hdr_len + p->nslots * per;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (p->o.method != MPROC_START_FORK) {
		r = exec_setup(p, hdr_len);
		if (r < 0)
			goto fail;
	}
	p->hdr = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | (p->memfd < 0 ? MAP_ANONYMOUS : 0) | MAP_NORESERVE, p->memfd, 0);
	if (p->hdr == MAP_FAILED) {
		p->hdr = NULL;
		r = -errno;
		goto fail;
	}
	p->slots = (struct slot *)((char *)p->hdr + hdr_len);
	p->tasks = (char *)(p->slots + p->nslots);
	p->results = p->tasks + p->nslots * p->tstride;
	p->tref = calloc(p->nslots, sizeof(*p->tref));
	p->used = calloc(p->nslots, 1);
	p->w = calloc((size_t)nw, sizeof(*p->w));
	p->wargs = calloc((size_t)nw, sizeof(*p->wargs));
	p->harvested = calloc((size_t)nw, sizeof(*p->harvested));
	p->want = calloc((size_t)nw, sizeof(*p->want));
	if (!p->tref || !p->used || !p->w || !p->wargs || !p->harvested || !p->want) {
		r = -ENOMEM;
		goto fail;
	}
	for (w = 0; w < nw; w++)
		p->w[w].pidfd = -1;
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0) {
		r = -errno;
		goto fail;
	}
	for (w = 0; w < nw; w++) {
		r = worker_start(p, w);
		if (r < 0)
			goto fail;
	}
	r = wait_ready(p);
	if (r < 0)
		goto fail;
	r = -pthread_create(&p->thr, NULL, handler_main, p);
	if (r < 0)
		goto fail;
	p->thr_started = true;
	*out = p;
	return 0;
fail:
	if (p->w)
		kill_all_workers(p);
	pool_release(p);
	return r;
}

int mproc_pool_workers(const struct mproc_pool *p)
{
	return p ? p->nworkers : -EINVAL;
}

int mproc_pool_worker_pids(struct mproc_pool *p, pid_t *pids, int n)
{
	int w, k = 0;

	if (!p || (!pids && n > 0) || n < 0)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	for (w = 0; w < p->nworkers && k < n; w++)
		if (p->w[w].pid > 0)
			pids[k++] = p->w[w].pid;
	pthread_mutex_unlock(&p->mu);
	return k;
}

int mproc_pool_close(struct mproc_pool *p)
{
	if (!p)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	p->closed = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

/* Stop the workers after the work is done: stop flag, wake, reap (SIGKILL after a grace). */
static void stop_workers(struct mproc_pool *p)
{
	int64_t deadline = mproc__now_ns() + 2 * MPROC__NSEC_PER_SEC;
	int w;

	__atomic_store_n(&p->hdr->stop, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&p->hdr->seq, 1, __ATOMIC_SEQ_CST);
	mproc__futex_wake(&p->hdr->seq, INT_MAX);
	for (w = 0; w < p->nworkers; w++) {
		if (p->w[w].pid <= 0)
			continue;
		if (mproc__poll1(p->w[w].pidfd, POLLIN, deadline) < 0)
			mproc_process_kill(p->w[w].proc);
		worker_reap(p, w);
	}
}

int mproc_pool_join(struct mproc_pool *p, double timeout_s)
{
	int64_t deadline;
	int r;

	if (!p)
		return -EINVAL;
	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	pthread_mutex_lock(&p->mu);
	if (!p->closed && !p->terminated) {
		pthread_mutex_unlock(&p->mu);
		return -EINVAL;
	}
	while (p->head < p->tail) {
		r = cond_wait_until(p, deadline);
		if (r == -ETIMEDOUT && p->head < p->tail) {
			pthread_mutex_unlock(&p->mu);
			return -ETIMEDOUT;
		}
	}
	p->stopping = true;
	pthread_mutex_unlock(&p->mu);
	handler_stop(p);
	pthread_mutex_lock(&p->mu);
	stop_workers(p);
	pthread_mutex_unlock(&p->mu);
	run_callbacks(p);
	return 0;
}

static void lazy_fail_rest(struct mproc_pool *p, struct mproc_result *j, int err);

int mproc_pool_terminate(struct mproc_pool *p)
{
	struct mproc_result *j, *next;

	if (!p)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	p->closed = true;
	p->stopping = true;
	p->terminated = true;
	pthread_mutex_unlock(&p->mu);
	handler_stop(p);
	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->hdr->stop, 1, __ATOMIC_SEQ_CST);
	kill_all_workers(p);
	fail_all(p, K_CANCELED);
	for (j = p->jobs; j; j = next) {
		next = j->next;
		lazy_fail_rest(p, j, -ECANCELED);
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	run_callbacks(p);
	return 0;
}

int mproc_pool_shutdown(struct mproc_pool *p, bool wait, bool cancel_futures)
{
	uint64_t t;

	if (!p)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	p->closed = true;
	if (cancel_futures) {
		for (t = p->head; t < p->tail; t++) {
			size_t i = t % p->nslots;
			uint64_t st = ld64(&p->slots[i].state);

			if (p->used[i] && ST_KIND(st) == K_QUEUED)
				cas64(&p->slots[i].state, st, ST(t, 0, K_CANCELED));
		}
		harvest(p);
	}
	pthread_mutex_unlock(&p->mu);
	run_callbacks(p);
	return wait ? mproc_pool_join(p, MPROC_FOREVER) : 0;
}

void mproc_pool_free(struct mproc_pool *p)
{
	struct mproc_result *j, *next;

	if (!p)
		return;
	if (getpid() != p->owner) {     /* a forked child: only unmap */
		munmap(p->hdr, p->map_len);
		return;
	}
	if (!p->terminated && (p->thr_started || p->nworkers))
		mproc_pool_terminate(p);
	for (j = p->jobs; j; j = next) {
		next = j->next;
		j->pool = NULL;
		j->prev = j->next = NULL;
	}
	pool_release(p);
}

/* ---------------------------------------------------------------- owner: submission */

/* After a publish: wake sleeping workers. One at a time is enough while a woken worker has not
 * yet looked at the table (it takes what was published meanwhile), so a burst of submissions
 * costs one futex_wake, not one per task. Batches wake everyone (n = INT_MAX). */
static void wake_workers(struct mproc_pool *p, int n)
{
	struct hdr *h = p->hdr;

	__atomic_fetch_add(&h->seq, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&h->sleepers, __ATOMIC_SEQ_CST))
		return;
	if (n == 1 && __atomic_load_n(&h->wake_pending, __ATOMIC_SEQ_CST))
		return;
	__atomic_store_n(&h->wake_pending, 1, __ATOMIC_SEQ_CST);
	/* Nobody was inside the wait (a sleeper was on its way out, or on its way in: then the
	 * seq bump above sends it back to look): nobody will clear the flag, so we do. */
	if (mproc__futex_wake(&h->seq, n) <= 0)
		__atomic_store_n(&h->wake_pending, 0, __ATOMIC_SEQ_CST);
}

/* Publish one ticket for item idx of j. Locked; a slot must be free. */
static void publish(struct mproc_pool *p, struct mproc_result *j, size_t idx, const void *task,
		    size_t len, uint32_t chunk)
{
	uint64_t t = p->tail;
	size_t i = t % p->nslots;
	struct slot *s = &p->slots[i];

	if (len)
		memcpy(task_at(p, i), task, len);
	s->task_len = (uint32_t)len;
	s->chunk = chunk;
	p->tref[i].job = j;
	p->tref[i].idx = idx;
	p->used[i] = 1;
	j->pending++;
	if (j->kind == J_SINGLE)
		j->ticket = t;
	__atomic_store_n(&s->state, ST(t, 0, K_QUEUED), __ATOMIC_RELEASE);
	p->tail = t + 1;
	__atomic_store_n(&p->hdr->tail, t + 1, __ATOMIC_SEQ_CST);
}

/* Wait for a free slot. Locked. Returns 0 or -EPIPE (closed/broken). */
static int wait_space(struct mproc_pool *p, bool batch)
{
	while (p->tail - p->head >= p->nslots) {
		if (p->broken || p->terminated)
			return -EPIPE;
		if (batch)
			wake_workers(p, INT_MAX);
		p->space_waiters++;
		pthread_cond_wait(&p->cv, &p->mu);
		p->space_waiters--;
	}
	return (p->broken || p->terminated) ? -EPIPE : 0;
}

int mproc_pool_apply_async(struct mproc_pool *p, const void *task, size_t len,
			   const struct mproc_apply_opts *opts, struct mproc_result **out)
{
	struct mproc_result *j;
	int r;

	if (!p || !out || (!task && len))
		return -EINVAL;
	if (len > p->o.task_max)
		return -EMSGSIZE;
	j = job_new(p, J_SINGLE, 1, p->o.result_max, NULL, NULL, true);
	if (!j)
		return -ENOMEM;
	if (opts) {
		j->cb = opts->callback;
		j->ecb = opts->error_callback;
		j->cb_arg = opts->cb_arg;
	}
	pthread_mutex_lock(&p->mu);
	r = p->closed ? -EPIPE : wait_space(p, false);
	if (r < 0 || p->closed) {
		pthread_mutex_unlock(&p->mu);
		job_unref(j);
		return r < 0 ? r : -EPIPE;
	}
	job_link(p, j);
	j->refs++;              /* the pool's, until harvested */
	publish(p, j, 0, task, len, 1);
	pthread_mutex_unlock(&p->mu);
	wake_workers(p, 1);
	*out = j;
	return 0;
}

int mproc_pool_submit(struct mproc_pool *p, const void *task, size_t len,
		      struct mproc_result **out)
{
	return mproc_pool_apply_async(p, task, len, NULL, out);
}

/* Wait until job j is done. Locked (if j->pool). */
static int job_wait_locked(struct mproc_result *j, int64_t deadline)
{
	while (j->ndone < j->n) {
		if (!j->pool)
			return -ECANCELED;
		if (cond_wait_until(j->pool, deadline) == -ETIMEDOUT && j->ndone < j->n)
			return -ETIMEDOUT;
	}
	return 0;
}

static void job_lock(struct mproc_result *j)
{
	if (j->pool)
		pthread_mutex_lock(&j->pool->mu);
}

static void job_unlock(struct mproc_result *j, struct mproc_pool *p)
{
	if (p)
		pthread_mutex_unlock(&p->mu);
}

ssize_t mproc_result_get(struct mproc_result *r, void *result, size_t size, double timeout_s)
{
	struct mproc_pool *p;
	int64_t deadline;
	ssize_t st;
	int e;

	if (!r || (!result && size))
		return -EINVAL;
	e = mproc__deadline(timeout_s, &deadline);
	if (e < 0)
		return e;
	p = r->pool;
	job_lock(r);
	e = job_wait_locked(r, deadline);
	if (e < 0) {
		job_unlock(r, p);
		return e;
	}
	st = r->st1;
	if (st > 0) {
		if ((size_t)st > size)
			st = -EMSGSIZE;
		else
			memcpy(result, r->res, (size_t)st);
	}
	job_unlock(r, p);
	return st;
}

int mproc_result_wait(struct mproc_result *r, double timeout_s)
{
	struct mproc_pool *p;
	int64_t deadline;
	int e;

	if (!r)
		return -EINVAL;
	e = mproc__deadline(timeout_s, &deadline);
	if (e < 0)
		return e;
	p = r->pool;
	job_lock(r);
	e = job_wait_locked(r, deadline);
	job_unlock(r, p);
	return e == -ECANCELED ? 0 : e;
}

bool mproc_result_ready(struct mproc_result *r)
{
	struct mproc_pool *p;
	bool ready;

	if (!r)
		return false;
	p = r->pool;
	job_lock(r);
	ready = r->ndone == r->n;
	job_unlock(r, p);
	return ready;
}

bool mproc_result_successful(struct mproc_result *r)
{
	struct mproc_pool *p;
	bool ok;

	if (!r)
		return false;
	p = r->pool;
	job_lock(r);
	ok = r->ndone == r->n && r->st1 >= 0;
	job_unlock(r, p);
	return ok;
}

int mproc_result_cancel(struct mproc_result *r)
{
	struct mproc_pool *p;
	int e = -EBUSY;

	if (!r || r->kind != J_SINGLE)
		return -EINVAL;
	p = r->pool;
	if (!p)
		return r->st1 == -ECANCELED ? 0 : -EBUSY;
	pthread_mutex_lock(&p->mu);
	if (r->ndone == 0) {
		size_t i = r->ticket % p->nslots;
		uint64_t st = ld64(&p->slots[i].state);

		if (ST_KIND(st) == K_QUEUED && ST_TICKET(st) == (r->ticket & TICKET_MASK) &&
		    cas64(&p->slots[i].state, st, ST(r->ticket, 0, K_CANCELED))) {
			harvest(p);
			e = 0;
		}
	} else if (r->st1 == -ECANCELED) {
		e = 0;
	}
	pthread_mutex_unlock(&p->mu);
	if (e == 0)
		run_callbacks(p);
	return e;
}

void mproc_result_free(struct mproc_result *r)
{
	struct mproc_pool *p;

	if (!r)
		return;
	p = r->pool;
	if (p)
		pthread_mutex_lock(&p->mu);
	if (r->user_st && r->ndone < r->n) {
		/* map_async freed early: tasks still running write into private buffers now. */
		ssize_t *own = calloc(r->n, sizeof(*own));

		r->res = NULL;
		r->rstride = SIZE_MAX;
		if (own) {
			memcpy(own, r->st, r->n * sizeof(*own));
			r->st = own;
		} else {                /* cannot detach: wait for the tasks instead */
			job_wait_locked(r, MPROC__NO_DEADLINE);
		}
	}
	if (r->user_st)
		job_forget_st(r, r->user_st);
	job_unref(r);
	if (p)
		pthread_mutex_unlock(&p->mu);
}

ssize_t mproc_pool_apply(struct mproc_pool *p, const void *task, size_t len, void *result,
			 size_t size, double timeout_s)
{
	struct mproc_result *r;
	int64_t deadline;
	ssize_t st;
	int e;

	e = mproc__deadline(timeout_s, &deadline);
	if (e < 0)
		return e;
	e = mproc_pool_apply_async(p, task, len, NULL, &r);
	if (e < 0)
		return e;
	st = mproc_result_get(r, result, size, timeout_s);
	mproc_result_free(r);
	return st;
}

/* ---------------------------------------------------------------- batches */

static int batch_check(struct mproc_pool *p, const struct mproc_pool_batch *b, bool need_tasks)
{
	if (!p || !b)
		return -EINVAL;
	if (b->n == 0)
		return 0;
	if (need_tasks && (!b->tasks || (b->task_stride && b->task_stride < b->task_len)))
		return -EINVAL;
	if (need_tasks && b->task_len > p->o.task_max)
		return -EMSGSIZE;
	if (b->chunksize > UINT32_MAX)
		return -EINVAL;
	return 0;
}

/* Submit every item of b for job j, building task i with make(i). Unlocked on entry. */
typedef const void *make_fn(const void *ctx, size_t i, size_t *len, char *buf);

static int batch_submit(struct mproc_pool *p, struct mproc_result *j, const struct
			mproc_pool_batch *b, make_fn *make, const void *ctx, char *buf)
{
	uint32_t chunk = b->chunksize ? (uint32_t)b->chunksize : 1;
	size_t i;
	int r = 0;

	pthread_mutex_lock(&p->mu);
	if (p->closed) {
		pthread_mutex_unlock(&p->mu);
		return -EPIPE;
	}
	job_link(p, j);
	j->refs++;
	for (i = 0; i < b->n; i++) {
		size_t len;
		const void *task;

		r = wait_space(p, true);
		if (r < 0)
			break;
		task = make(ctx, i, &len, buf);
		publish(p, j, i, task, len, chunk);
		if ((i & 255) == 255)
			wake_workers(p, INT_MAX);
	}
	if (r < 0) {
		/* Items never published fail as the pool does. */
		for (; i < b->n; i++)
			job_deliver(p, j, i, r, NULL);
		if (j->pending == 0)
			job_unref(j);
	}
	pthread_mutex_unlock(&p->mu);
	wake_workers(p, INT_MAX);
	return 0;
}

static const void *make_plain(const void *ctx, size_t i, size_t *len, char *buf)
{
	const struct mproc_pool_batch *b = ctx;
	size_t stride = b->task_stride ? b->task_stride : b->task_len;

	*len = b->task_len;
	return (const char *)b->tasks + i * stride;
}

static int map_common(struct mproc_pool *p, const struct mproc_pool_batch *b, double timeout_s,
		      make_fn *make, const void *ctx)
{
	struct mproc_result *j;
	size_t rstride, i;
	int64_t deadline;
	ssize_t *st = b->status;
	int r;

	r = mproc__deadline(timeout_s, &deadline);
	if (r < 0)
		return r;
	if (b->n == 0)
		return 0;
	rstride = b->result_stride ? b->result_stride : p->o.result_max;
	j = job_new(p, J_MAP, b->n, rstride, b->results, st, false);
	if (!j)
		return -ENOMEM;
	r = batch_submit(p, j, b, make, ctx, NULL);
	if (r < 0) {
		job_forget_st(j, st);
		job_unref(j);
		return r;
	}
	pthread_mutex_lock(&p->mu);
	r = job_wait_locked(j, deadline);
	if (r == 0) {
		for (i = 0; i < j->n; i++)
			if (j->st[i] < 0) {
				r = (int)j->st[i];
				break;
			}
	}
	if (r == -ETIMEDOUT) {
		/* Tasks still running write into a private buffer from now on. */
		j->res = NULL;
		j->rstride = SIZE_MAX;
		if (j->st == st) {
			ssize_t *own = calloc(j->n, sizeof(*own));

			if (own)
				memcpy(own, st, j->n * sizeof(*own));
			j->st = own ? own : &j->st1;
			if (!own) {     /* cannot detach: wait for the tasks instead */
				j->st = st;
				job_wait_locked(j, MPROC__NO_DEADLINE);
			}
		}
	}
	job_forget_st(j, st);
	job_unref(j);
	pthread_mutex_unlock(&p->mu);
	run_callbacks(p);
	return r;
}

int mproc_pool_map(struct mproc_pool *p, const struct mproc_pool_batch *b, double timeout_s)
{
	int r = batch_check(p, b, true);

	if (r < 0)
		return r;
	return map_common(p, b, timeout_s, make_plain, b);
}

int mproc_pool_map_async(struct mproc_pool *p, const struct mproc_pool_batch *b,
			 const struct mproc_apply_opts *opts, struct mproc_result **out)
{
	struct mproc_result *j;
	size_t rstride;
	int r = batch_check(p, b, true);

	if (r < 0)
		return r;
	if (!out)
		return -EINVAL;
	rstride = b->result_stride ? b->result_stride : p->o.result_max;
	j = job_new(p, J_MAP, b->n, rstride, b->results, b->status, false);
	if (!j)
		return -ENOMEM;
	j->user_st = b->status;
	if (opts) {
		j->cb = opts->callback;
		j->ecb = opts->error_callback;
		j->cb_arg = opts->cb_arg;
	}
	if (b->n == 0) {
		j->st1 = 0;             /* done at once; the callback runs here */
		if (j->cb)
			j->cb(j, 0, j->cb_arg);
		*out = j;
		return 0;
	}
	r = batch_submit(p, j, b, make_plain, b, NULL);
	if (r < 0) {
		job_forget_st(j, b->status);
		job_unref(j);
		return r;
	}
	run_callbacks(p);       /* a submission that failed midway completed the job here */
	*out = j;
	return 0;
}

struct star_ctx {
	const void *const *args;
	const size_t *size, *stride;
	size_t nargs;
	char *buf;
};

static const void *make_star(const void *ctx, size_t i, size_t *len, char *unused)
{
	const struct star_ctx *c = ctx;
	size_t k, off = 0;

	for (k = 0; k < c->nargs; k++) {
		size_t stride = c->stride && c->stride[k] ? c->stride[k] : c->size[k];

		memcpy(c->buf + off, (const char *)c->args[k] + i * stride, c->size[k]);
		off += c->size[k];
	}
	*len = off;
	return c->buf;
}

int mproc_pool_starmap(struct mproc_pool *p, const void *const *args, const size_t *arg_size,
		       const size_t *arg_stride, size_t nargs, const struct mproc_pool_batch *b,
		       double timeout_s)
{
	struct star_ctx c = { args, arg_size, arg_stride, nargs, NULL };
	size_t k, total = 0;
	int r = batch_check(p, b, false);

	if (r < 0)
		return r;
	if ((nargs && (!args || !arg_size)) || nargs > 64)
		return -EINVAL;
	for (k = 0; k < nargs; k++) {
		if (!args[k] && arg_size[k])
			return -EINVAL;
		if (arg_stride && arg_stride[k] && arg_stride[k] < arg_size[k])
			return -EINVAL;
		total += arg_size[k];
		if (total > p->o.task_max)
			return -EMSGSIZE;
	}
	c.buf = malloc(total ? total : 1);
	if (!c.buf)
		return -ENOMEM;
	r = map_common(p, b, timeout_s, make_star, &c);
	free(c.buf);
	return r;
}

/* A lazy imap's items not yet published fail with err (the pool stopped, or the iterator is
 * freed); drops the pool's reference if that completes the job. Locked. */
static void lazy_fail_rest(struct mproc_pool *p, struct mproc_result *j, int err)
{
	if (!j->lazy || j->next_sub >= j->n)
		return;
	for (; j->next_sub < j->n; j->next_sub++)
		job_deliver(p, j, j->next_sub, err, NULL);
	if (j->pending == 0)
		job_unref(j);   /* the pool's reference */
}

/* Publish a lazy imap's items until window of them are submitted and not yet yielded. Waits
 * while the table is full. Locked. */
static void lazy_feed(struct mproc_pool *p, struct mproc_result *j)
{
	bool any = false;

	while (j->lazy && j->next_sub < j->n && j->next_sub - j->next_pos < j->window) {
		size_t i = j->next_sub;
		int err = p->terminated ? -ECANCELED : (p->stopping || p->broken) ? -EPIPE : 0;

		if (!err && p->tail - p->head >= p->nslots) {
			if (any)
				wake_workers(p, INT_MAX);
			any = false;
			err = wait_space(p, true);
			if (!err && (p->stopping || p->terminated))
				err = p->terminated ? -ECANCELED : -EPIPE;
			if (!err)
				continue;       /* state may have changed while we waited */
		}
		if (err) {
			lazy_fail_rest(p, j, err);
			break;
		}
		j->slotof[i] = j->freeslots[--j->nfree];
		j->next_sub++;
		publish(p, j, i, j->ltasks + i * j->lstride, j->ltask_len, j->lchunk);
		any = true;
	}
	if (any)
		wake_workers(p, INT_MAX);
}

static int imap_lazy(struct mproc_pool *p, const struct mproc_pool_batch *b,
		     struct mproc_result *j)
{
	size_t w = b->buffersize < b->n ? b->buffersize : b->n, k;

	j->lazy = true;
	j->window = w;
	j->ltasks = b->tasks;
	j->ltask_len = b->task_len;
	j->lstride = b->task_stride ? b->task_stride : b->task_len;
	j->lchunk = b->chunksize ? (uint32_t)b->chunksize : 1;
	j->res = malloc(w * j->rstride);
	j->res_owned = true;
	j->slotof = malloc(b->n * sizeof(*j->slotof));
	j->freeslots = malloc(w * sizeof(*j->freeslots));
	if (!j->res || !j->slotof || !j->freeslots)
		return -ENOMEM;
	for (k = 0; k < b->n; k++)
		j->slotof[k] = NO_SLOT;
	for (k = 0; k < w; k++)
		j->freeslots[k] = (uint32_t)(w - 1 - k);
	j->nfree = w;
	pthread_mutex_lock(&p->mu);
	if (p->closed) {
		pthread_mutex_unlock(&p->mu);
		return -EPIPE;
	}
	job_link(p, j);
	j->refs++;              /* the pool's, until every item is delivered */
	lazy_feed(p, j);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static int imap_common(struct mproc_pool *p, const struct mproc_pool_batch *b,
		       struct mproc_imap **out, int kind)
{
	struct mproc_imap *it;
	struct mproc_result *j;
	int r = batch_check(p, b, true);

	if (r < 0)
		return r;
	if (!out)
		return -EINVAL;
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	if (b->buffersize > MPROC_POOL_QUEUE_MAX) {
		free(it);
		return -EINVAL;
	}
	j = job_new(p, kind, b->n, p->o.result_max, NULL, NULL, !b->buffersize);
	if (!j) {
		free(it);
		return -ENOMEM;
	}
	it->job = j;
	if (b->n == 0) {
		*out = it;
		return 0;
	}
	if (b->buffersize) {
		j->rstride = p->o.result_max;
		r = imap_lazy(p, b, j);
	} else {
		r = batch_submit(p, j, b, make_plain, b, NULL);
	}
	if (r < 0) {
		job_unref(j);
		free(it);
		return r;
	}
	*out = it;
	return 0;
}

int mproc_pool_imap(struct mproc_pool *p, const struct mproc_pool_batch *b,
		    struct mproc_imap **out)
{
	return imap_common(p, b, out, J_IMAP);
}

int mproc_pool_imap_unordered(struct mproc_pool *p, const struct mproc_pool_batch *b,
			      struct mproc_imap **out)
{
	return imap_common(p, b, out, J_IMAPU);
}

ssize_t mproc_imap_next(struct mproc_imap *it, void *result, size_t size, size_t *index,
			double timeout_s)
{
	struct mproc_result *j;
	struct mproc_pool *p;
	int64_t deadline;
	size_t idx;
	ssize_t st;
	int e;

	if (!it || (!result && size))
		return -EINVAL;
	e = mproc__deadline(timeout_s, &deadline);
	if (e < 0)
		return e;
	j = it->job;
	p = j->pool;
	job_lock(j);
	if (j->next_pos >= j->n) {
		job_unlock(j, p);
		return MPROC_EOF;
	}
	if (j->pool)
		lazy_feed(p, j);
	for (;;) {
		if (j->kind == J_IMAPU ? j->norder > j->next_pos : j->done[j->next_pos])
			break;
		if (!j->pool) {
			job_unlock(j, p);
			return -ECANCELED;
		}
		if (cond_wait_until(p, deadline) == -ETIMEDOUT &&
		    !(j->kind == J_IMAPU ? j->norder > j->next_pos : j->done[j->next_pos])) {
			job_unlock(j, p);
			return -ETIMEDOUT;
		}
	}
	idx = j->kind == J_IMAPU ? j->order[j->next_pos] : j->next_pos;
	st = j->st[idx];
	if (st > 0) {
		if ((size_t)st > size) {
			job_unlock(j, p);
			return -EMSGSIZE;
		}
		memcpy(result, j->res + (j->slotof ? j->slotof[idx] : idx) * j->rstride,
		       (size_t)st);
	}
	if (j->slotof && j->slotof[idx] != NO_SLOT) {
		j->freeslots[j->nfree++] = j->slotof[idx];
		j->slotof[idx] = NO_SLOT;
	}
	j->next_pos++;
	if (index)
		*index = idx;
	if (j->pool)
		lazy_feed(p, j);        /* keep the window full while the caller works */
	job_unlock(j, p);
	return st;
}

void mproc_imap_free(struct mproc_imap *it)
{
	struct mproc_pool *p;

	if (!it)
		return;
	p = it->job->pool;
	if (p) {
		/* Nobody will consume the rest: it is never submitted. */
		pthread_mutex_lock(&p->mu);
		lazy_fail_rest(p, it->job, -ECANCELED);
		pthread_mutex_unlock(&p->mu);
	}
	mproc_result_free(it->job);
	free(it);
}

/* ---------------------------------------------------------------- futures */

int mproc_futures_wait(struct mproc_result *const *rs, size_t n, enum mproc_wait_mode mode,
		       double timeout_s, size_t *ndone)
{
	struct mproc_pool *p = NULL;
	int64_t deadline;
	size_t k, d;
	int e;

	if ((!rs && n) || (mode != MPROC_FIRST_COMPLETED && mode != MPROC_ALL_COMPLETED))
		return -EINVAL;
	e = mproc__deadline(timeout_s, &deadline);
	if (e < 0)
		return e;
	for (k = 0; k < n; k++) {
		if (!rs[k])
			return -EINVAL;
		if (rs[k]->pool && p && rs[k]->pool != p)
			return -EINVAL;         /* one pool at a time */
		if (rs[k]->pool)
			p = rs[k]->pool;
	}
	if (p)
		pthread_mutex_lock(&p->mu);
	for (;;) {
		for (d = 0, k = 0; k < n; k++)
			d += rs[k]->ndone == rs[k]->n;
		if (n == 0 || (mode == MPROC_FIRST_COMPLETED ? d > 0 : d == n)) {
			e = 0;
			break;
		}
		if (!p) {
			e = -ECANCELED;
			break;
		}
		if (cond_wait_until(p, deadline) == -ETIMEDOUT) {
			for (d = 0, k = 0; k < n; k++)
				d += rs[k]->ndone == rs[k]->n;
			e = (mode == MPROC_FIRST_COMPLETED ? d > 0 : d == n) ? 0 : -ETIMEDOUT;
			break;
		}
	}
	if (p)
		pthread_mutex_unlock(&p->mu);
	if (ndone)
		*ndone = d;
	return e;
}

struct mproc_as_completed {
	struct mproc_result *const *rs;
	size_t n, left;
	uint8_t *given;
};

int mproc_as_completed_new(struct mproc_as_completed **out, struct mproc_result *const *rs,
			   size_t n)
{
	struct mproc_as_completed *it;
	size_t k;

	if (!out || (!rs && n))
		return -EINVAL;
	for (k = 0; k < n; k++)
		if (!rs[k])
			return -EINVAL;
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->given = calloc(n ? n : 1, 1);
	if (!it->given) {
		free(it);
		return -ENOMEM;
	}
	it->rs = rs;
	it->n = it->left = n;
	*out = it;
	return 0;
}

ssize_t mproc_as_completed_next(struct mproc_as_completed *it, double timeout_s)
{
	struct mproc_pool *p = NULL;
	int64_t deadline;
	size_t k;
	int e;

	if (!it)
		return -EINVAL;
	if (!it->left)
		return MPROC_EOF;
	e = mproc__deadline(timeout_s, &deadline);
	if (e < 0)
		return e;
	for (k = 0; k < it->n && !p; k++)
		if (!it->given[k])
			p = it->rs[k]->pool;
	if (p)
		pthread_mutex_lock(&p->mu);
	for (;;) {
		for (k = 0; k < it->n; k++) {
			if (!it->given[k] && it->rs[k]->ndone == it->rs[k]->n) {
				it->given[k] = 1;
				it->left--;
				if (p)
					pthread_mutex_unlock(&p->mu);
				return (ssize_t)k;
			}
		}
		if (!p)
			return -ECANCELED;
		if (cond_wait_until(p, deadline) == -ETIMEDOUT) {
			bool any = false;

			for (k = 0; k < it->n; k++)
				any |= !it->given[k] && it->rs[k]->ndone == it->rs[k]->n;
			if (!any) {
				pthread_mutex_unlock(&p->mu);
				return -ETIMEDOUT;
			}
		}
	}
}

void mproc_as_completed_free(struct mproc_as_completed *it)
{
	if (!it)
		return;
	free(it->given);
	free(it);
}
