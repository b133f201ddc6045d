/*
 * pool_handler.c - the pool owner's bookkeeping (pool.c's design comment describes the table):
 * the jobs that tickets feed and their delivery, the harvest of DONE slots into jobs, and the
 * handler thread that harvests, reaps dead workers, fails their slots and starts replacements.
 * pool.c holds the public API (lifecycle, submission, results); it starts and stops the handler
 * thread (mproc__pool_handler_main, mproc__pool_handler_stop).
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

/* ---------------------------------------------------------------- owner: jobs */

void mproc__pool_job_unref(struct mproc_result *j)
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
struct mproc_result *mproc__pool_job_new(struct mproc_pool *p, int kind, size_t n, size_t rstride,
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
void mproc__pool_job_forget_st(struct mproc_result *j, ssize_t *st)
{
	if (j->st == st)
		j->st = &j->st1;
}

void mproc__pool_job_link(struct mproc_pool *p, struct mproc_result *j)
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
void mproc__pool_job_deliver(struct mproc_pool *p, struct mproc_result *j, size_t idx,
			     ssize_t status, const char *src)
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
	mproc__pool_job_deliver(p, j, tr->idx, status, src);
	if (--j->pending == 0 && j->ndone == j->n)
		mproc__pool_job_unref(j);   /* the pool's reference */
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

size_t mproc__pool_harvest(struct mproc_pool *p)
{
	return harvest_pass(p, true);
}

static size_t harvest_some(struct mproc_pool *p)
{
	return harvest_pass(p, false);
}

/* Run the due callbacks, unlocked (they may use their result). */
void mproc__pool_run_callbacks(struct mproc_pool *p)
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
		mproc__pool_job_unref(q[k]);
	pthread_mutex_unlock(&p->mu);
	free(q);
}

/* Mark every unfinished published slot with kind (DIED or CANCELED). Only when no worker
 * lives (all reaped). Locked. */
void mproc__pool_fail_all(struct mproc_pool *p, int kind)
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
	mproc__pool_harvest(p);
}

void mproc__pool_kill_all_workers(struct mproc_pool *p)
{
	int w;

	for (w = 0; w < p->nworkers; w++)
		if (p->w[w].proc)
			mproc_process_kill(p->w[w].proc);
	for (w = 0; w < p->nworkers; w++)
		mproc__pool_worker_reap(p, w);
}

static void break_pool(struct mproc_pool *p)
{
	p->broken = true;
	p->closed = true;
	mproc__pool_kill_all_workers(p);
	mproc__pool_fail_all(p, K_DIED);
	pthread_cond_broadcast(&p->cv);
}

/* Worker w ended (its pidfd is readable). Locked; handler thread. Returns whether to start a
 * replacement (the caller does it unlocked, so that waiters see the failure at once). */
static bool handle_death(struct mproc_pool *p, int w)
{
	bool was_ready = __atomic_load_n(&p->hdr->ready[w], __ATOMIC_ACQUIRE);
	uint64_t t;

	mproc__pool_worker_reap(p, w);
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
	mproc__pool_harvest(p);
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
			r[k] = mproc__pool_worker_spawn(p, ws[base + k], &nw[k]);
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

/* Long (about 80 lines): one poll loop whose turns (harvest, deaths, respawns, a quiet second)
 * share the pollfd array and the mutex; each step is a function above. */
void *mproc__pool_handler_main(void *arg)
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
			mproc__pool_run_callbacks(p);
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
			mproc__cpu_relax();
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
		if (r == 0)     /* a quiet second: a full pass, whatever the counts say */
			mproc__pool_harvest(p);
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

void mproc__pool_handler_stop(struct mproc_pool *p)
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
