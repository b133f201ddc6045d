/*
 * pool_batch.c - what the pool offers over many tasks (lib/pool.c): map, map_async, starmap,
 * imap and imap_unordered (eager, or lazy within a window of buffersize), and the futures
 * interface over result handles (wait, as_completed).
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
	mproc__pool_job_link(p, j);
	j->refs++;
	for (i = 0; i < b->n; i++) {
		size_t len;
		const void *task;

		r = mproc__pool_wait_space(p, true);
		if (r < 0)
			break;
		task = make(ctx, i, &len, buf);
		mproc__pool_publish(p, j, i, task, len, chunk);
		if ((i & 255) == 255)
			mproc__pool_wake_workers(p, INT_MAX);
	}
	if (r < 0) {
		/* Items never published fail as the pool does. */
		for (; i < b->n; i++)
			mproc__pool_job_deliver(p, j, i, r, NULL);
		if (j->pending == 0)
			mproc__pool_job_unref(j);
	}
	pthread_mutex_unlock(&p->mu);
	mproc__pool_wake_workers(p, INT_MAX);
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
	j = mproc__pool_job_new(p, J_MAP, b->n, rstride, b->results, st, false);
	if (!j)
		return -ENOMEM;
	r = batch_submit(p, j, b, make, ctx, NULL);
	if (r < 0) {
		mproc__pool_job_forget_st(j, st);
		mproc__pool_job_unref(j);
		return r;
	}
	pthread_mutex_lock(&p->mu);
	r = mproc__pool_job_wait_locked(j, deadline);
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
				mproc__pool_job_wait_locked(j, MPROC__NO_DEADLINE);
			}
		}
	}
	mproc__pool_job_forget_st(j, st);
	mproc__pool_job_unref(j);
	pthread_mutex_unlock(&p->mu);
	mproc__pool_run_callbacks(p);
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
	j = mproc__pool_job_new(p, J_MAP, b->n, rstride, b->results, b->status, false);
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
		mproc__pool_job_forget_st(j, b->status);
		mproc__pool_job_unref(j);
		return r;
	}
	mproc__pool_run_callbacks(p);       /* a submission that failed midway completed the job here */
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
void mproc__pool_lazy_fail_rest(struct mproc_pool *p, struct mproc_result *j, int err)
{
	if (!j->lazy || j->next_sub >= j->n)
		return;
	for (; j->next_sub < j->n; j->next_sub++)
		mproc__pool_job_deliver(p, j, j->next_sub, err, NULL);
	if (j->pending == 0)
		mproc__pool_job_unref(j);   /* the pool's reference */
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
				mproc__pool_wake_workers(p, INT_MAX);
			any = false;
			err = mproc__pool_wait_space(p, true);
			if (!err && (p->stopping || p->terminated))
				err = p->terminated ? -ECANCELED : -EPIPE;
			if (!err)
				continue;       /* state may have changed while we waited */
		}
		if (err) {
			mproc__pool_lazy_fail_rest(p, j, err);
			break;
		}
		j->slotof[i] = j->freeslots[--j->nfree];
		j->next_sub++;
		mproc__pool_publish(p, j, i, j->ltasks + i * j->lstride, j->ltask_len, j->lchunk);
		any = true;
	}
	if (any)
		mproc__pool_wake_workers(p, INT_MAX);
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
	mproc__pool_job_link(p, j);
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
	j = mproc__pool_job_new(p, kind, b->n, p->o.result_max, NULL, NULL, !b->buffersize);
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
		mproc__pool_job_unref(j);
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
	mproc__pool_job_lock(j);
	if (j->next_pos >= j->n) {
		mproc__pool_job_unlock(j, p);
		return MPROC_EOF;
	}
	if (j->pool)
		lazy_feed(p, j);
	for (;;) {
		if (j->kind == J_IMAPU ? j->norder > j->next_pos : j->done[j->next_pos])
			break;
		if (!j->pool) {
			mproc__pool_job_unlock(j, p);
			return -ECANCELED;
		}
		if (mproc__pool_cond_wait_until(p, deadline) == -ETIMEDOUT &&
		    !(j->kind == J_IMAPU ? j->norder > j->next_pos : j->done[j->next_pos])) {
			mproc__pool_job_unlock(j, p);
			return -ETIMEDOUT;
		}
	}
	idx = j->kind == J_IMAPU ? j->order[j->next_pos] : j->next_pos;
	st = j->st[idx];
	if (st > 0) {
		if ((size_t)st > size) {
			mproc__pool_job_unlock(j, p);
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
	mproc__pool_job_unlock(j, p);
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
		mproc__pool_lazy_fail_rest(p, it->job, -ECANCELED);
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
		if (mproc__pool_cond_wait_until(p, deadline) == -ETIMEDOUT) {
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
		if (mproc__pool_cond_wait_until(p, deadline) == -ETIMEDOUT) {
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
