/*
 * pool_internal.h - what the pool's files share (pool.c: the owner side; pool_worker.c: the
 * workers and how they start; pool_batch.c: map, imap, futures): the layout of the task table
 * in shared memory, the owner's bookkeeping, and the test hooks. Not installed.
 *
 * mproc__pool_test_hook, when set before mproc_pool_new (workers inherit it through fork), is
 * called in a worker at fixed points of a task's life so that fault tests can kill the worker
 * at exactly that moment: after the claim and before the task is read (CLAIMED), and after
 * the result bytes are written and before the slot is published as done (WRITTEN).
 */
#ifndef MPROC_POOL_INTERNAL_H
#define MPROC_POOL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mproc/pool.h"
#include "mproc/process.h"

enum mproc__pool_hook_point {
	MPROC__POOL_HOOK_CLAIMED = 1,
	MPROC__POOL_HOOK_WRITTEN = 2,
};

extern void (*mproc__pool_test_hook)(int point, const void *task, size_t len);

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

static inline char *task_at(struct mproc_pool *p, size_t i) { return p->tasks + i * p->tstride; }
static inline char *result_at(struct mproc_pool *p, size_t i)
{
	return p->results + i * p->rstride;
}

/* pool_handler.c and pool.c: the owner's bookkeeping, for pool.c and pool_batch.c (mu held
 * unless said otherwise; each is described where it is defined). */
int mproc__pool_cond_wait_until(struct mproc_pool *p, int64_t deadline);
void mproc__pool_fail_all(struct mproc_pool *p, int kind);
size_t mproc__pool_harvest(struct mproc_pool *p);
void *mproc__pool_handler_main(void *arg);
void mproc__pool_handler_stop(struct mproc_pool *p);
void mproc__pool_kill_all_workers(struct mproc_pool *p);
void mproc__pool_job_deliver(struct mproc_pool *p, struct mproc_result *j, size_t idx,
			     ssize_t status, const char *src);
void mproc__pool_job_forget_st(struct mproc_result *j, ssize_t *st);
void mproc__pool_job_link(struct mproc_pool *p, struct mproc_result *j);
void mproc__pool_job_lock(struct mproc_result *j);
struct mproc_result *mproc__pool_job_new(struct mproc_pool *p, int kind, size_t n, size_t rstride,
				    void *res, ssize_t *st, bool alloc_res);
void mproc__pool_job_unlock(struct mproc_result *j, struct mproc_pool *p);
void mproc__pool_job_unref(struct mproc_result *j);
int mproc__pool_job_wait_locked(struct mproc_result *j, int64_t deadline);
void mproc__pool_publish(struct mproc_pool *p, struct mproc_result *j, size_t idx,
			 const void *task, size_t len, uint32_t chunk);
void mproc__pool_run_callbacks(struct mproc_pool *p);
int mproc__pool_wait_space(struct mproc_pool *p, bool batch);
void mproc__pool_wake_workers(struct mproc_pool *p, int n);

/* pool_worker.c: starting and reaping workers, for the owner (pool.c). */
struct worker_arg {
	struct mproc_pool *p;
	int w;
};
void mproc__pool_worker_reap(struct mproc_pool *p, int w);
int mproc__pool_worker_spawn(struct mproc_pool *p, int w, struct worker *out);
int mproc__pool_exec_setup(struct mproc_pool *p, size_t hdr_len);
int mproc__pool_worker_start(struct mproc_pool *p, int w);

/* pool_batch.c: a lazy imap's items not yet published fail with err (pool_terminate). */
void mproc__pool_lazy_fail_rest(struct mproc_pool *p, struct mproc_result *j, int err);

#endif /* MPROC_POOL_INTERNAL_H */
