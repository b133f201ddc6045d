/*
 * pool.c - worker pool over a task table in shared memory (mproc/pool.h): the owner side's
 * public API (lifecycle, submission, results). pool_handler.c holds the owner's bookkeeping
 * (jobs, harvest, the handler thread), pool_worker.c the workers, pool_batch.c map, imap and the
 * futures, pool_internal.h the layout below.
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

/* ---------------------------------------------------------------- owner: lifecycle */

int mproc__pool_cond_wait_until(struct mproc_pool *p, int64_t deadline)
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

/* Long (about 105 lines) on purpose: options refused before any side effect, then one goto
 * ladder over the table, the doorbell, the workers and the handler thread (STYLE.md). */
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
		r = mproc__pool_exec_setup(p, hdr_len);
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
		r = mproc__pool_worker_start(p, w);
		if (r < 0)
			goto fail;
	}
	r = wait_ready(p);
	if (r < 0)
		goto fail;
	r = -pthread_create(&p->thr, NULL, mproc__pool_handler_main, p);
	if (r < 0)
		goto fail;
	p->thr_started = true;
	*out = p;
	return 0;
fail:
	if (p->w)
		mproc__pool_kill_all_workers(p);
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
		mproc__pool_worker_reap(p, w);
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
		r = mproc__pool_cond_wait_until(p, deadline);
		if (r == -ETIMEDOUT && p->head < p->tail) {
			pthread_mutex_unlock(&p->mu);
			return -ETIMEDOUT;
		}
	}
	p->stopping = true;
	pthread_mutex_unlock(&p->mu);
	mproc__pool_handler_stop(p);
	pthread_mutex_lock(&p->mu);
	stop_workers(p);
	pthread_mutex_unlock(&p->mu);
	mproc__pool_run_callbacks(p);
	return 0;
}


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
	mproc__pool_handler_stop(p);
	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->hdr->stop, 1, __ATOMIC_SEQ_CST);
	mproc__pool_kill_all_workers(p);
	mproc__pool_fail_all(p, K_CANCELED);
	for (j = p->jobs; j; j = next) {
		next = j->next;
		mproc__pool_lazy_fail_rest(p, j, -ECANCELED);
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	mproc__pool_run_callbacks(p);
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
		mproc__pool_harvest(p);
	}
	pthread_mutex_unlock(&p->mu);
	mproc__pool_run_callbacks(p);
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
void mproc__pool_wake_workers(struct mproc_pool *p, int n)
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
void mproc__pool_publish(struct mproc_pool *p, struct mproc_result *j, size_t idx,
			 const void *task, size_t len, uint32_t chunk)
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
int mproc__pool_wait_space(struct mproc_pool *p, bool batch)
{
	while (p->tail - p->head >= p->nslots) {
		if (p->broken || p->terminated)
			return -EPIPE;
		if (batch)
			mproc__pool_wake_workers(p, INT_MAX);
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
	j = mproc__pool_job_new(p, J_SINGLE, 1, p->o.result_max, NULL, NULL, true);
	if (!j)
		return -ENOMEM;
	if (opts) {
		j->cb = opts->callback;
		j->ecb = opts->error_callback;
		j->cb_arg = opts->cb_arg;
	}
	pthread_mutex_lock(&p->mu);
	r = p->closed ? -EPIPE : mproc__pool_wait_space(p, false);
	if (r < 0 || p->closed) {
		pthread_mutex_unlock(&p->mu);
		mproc__pool_job_unref(j);
		return r < 0 ? r : -EPIPE;
	}
	mproc__pool_job_link(p, j);
	j->refs++;              /* the pool's, until harvested */
	mproc__pool_publish(p, j, 0, task, len, 1);
	pthread_mutex_unlock(&p->mu);
	mproc__pool_wake_workers(p, 1);
	*out = j;
	return 0;
}

int mproc_pool_submit(struct mproc_pool *p, const void *task, size_t len,
		      struct mproc_result **out)
{
	return mproc_pool_apply_async(p, task, len, NULL, out);
}

/* Wait until job j is done. Locked (if j->pool). */
int mproc__pool_job_wait_locked(struct mproc_result *j, int64_t deadline)
{
	while (j->ndone < j->n) {
		if (!j->pool)
			return -ECANCELED;
		if (mproc__pool_cond_wait_until(j->pool, deadline) == -ETIMEDOUT && j->ndone < j->n)
			return -ETIMEDOUT;
	}
	return 0;
}

void mproc__pool_job_lock(struct mproc_result *j)
{
	if (j->pool)
		pthread_mutex_lock(&j->pool->mu);
}

void mproc__pool_job_unlock(struct mproc_result *j, struct mproc_pool *p)
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
	mproc__pool_job_lock(r);
	e = mproc__pool_job_wait_locked(r, deadline);
	if (e < 0) {
		mproc__pool_job_unlock(r, p);
		return e;
	}
	st = r->st1;
	if (st > 0) {
		if ((size_t)st > size)
			st = -EMSGSIZE;
		else
			memcpy(result, r->res, (size_t)st);
	}
	mproc__pool_job_unlock(r, p);
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
	mproc__pool_job_lock(r);
	e = mproc__pool_job_wait_locked(r, deadline);
	mproc__pool_job_unlock(r, p);
	return e == -ECANCELED ? 0 : e;
}

bool mproc_result_ready(struct mproc_result *r)
{
	struct mproc_pool *p;
	bool ready;

	if (!r)
		return false;
	p = r->pool;
	mproc__pool_job_lock(r);
	ready = r->ndone == r->n;
	mproc__pool_job_unlock(r, p);
	return ready;
}

bool mproc_result_successful(struct mproc_result *r)
{
	struct mproc_pool *p;
	bool ok;

	if (!r)
		return false;
	p = r->pool;
	mproc__pool_job_lock(r);
	ok = r->ndone == r->n && r->st1 >= 0;
	mproc__pool_job_unlock(r, p);
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
			mproc__pool_harvest(p);
			e = 0;
		}
	} else if (r->st1 == -ECANCELED) {
		e = 0;
	}
	pthread_mutex_unlock(&p->mu);
	if (e == 0)
		mproc__pool_run_callbacks(p);
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
			mproc__pool_job_wait_locked(r, MPROC__NO_DEADLINE);
		}
	}
	if (r->user_st)
		mproc__pool_job_forget_st(r, r->user_st);
	mproc__pool_job_unref(r);
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
