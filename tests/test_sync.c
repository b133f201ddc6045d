/* test_sync.c - semantics and faults of the process-shared Lock, RLock, Semaphore,
 * BoundedSemaphore, Condition, Event and Barrier (reliability.md T21-T23). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "tap.h"

/* ---- helpers -------------------------------------------------------------------------- */

static void *shared(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ASSERT(p != MAP_FAILED);
	return p;
}

/* A code as a child's exit status: 0 for 0, else the errno (positive). */
static int code(int r)
{
	return r < 0 ? -r : (r > 255 ? 255 : r);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A timed call must return within [t, t + 100 ms] (scaled for sanitizers/valgrind). */
#define CHECK_ELAPSED(t0, t)                                                    \
	do {                                                                    \
		double el_ = tap_now() - (t0);                                  \
		CHECK_CMP(el_, >=, (t) - 0.001);                                \
		CHECK_CMP(el_, <=, (t) + 0.1 * tap_timeout_mult());             \
	} while (0)

/* The EINTR storm: SIGUSR1 every 10 ms, handler installed without SA_RESTART. */
static volatile sig_atomic_t storm_hits;

static void on_usr1(int sig)
{
	(void)sig;
	storm_hits++;
}

static timer_t storm_start(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };   /* no SA_RESTART */
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { { 0, 10000000 }, { 0, 10000000 } };
	timer_t t;

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	ASSERT_EQ(timer_create(CLOCK_MONOTONIC, &sev, &t), 0);
	ASSERT_EQ(timer_settime(t, 0, &its, NULL), 0);
	storm_hits = 0;
	return t;
}

static void storm_stop(timer_t t)
{
	timer_delete(t);
	signal(SIGUSR1, SIG_IGN);
}

/* ---- Lock ----------------------------------------------------------------------------- */

static void t_lock_basic(void *arg)
{
	struct mproc_lock *l;

	ASSERT_OK(mproc_lock_new(&l));
	CHECK_EQ(mproc_lock_locked(l), 0);
	CHECK_OK(mproc_lock_acquire(l, MPROC_FOREVER));
	CHECK_EQ(mproc_lock_locked(l), 1);
	CHECK_ERR(mproc_lock_acquire(l, 0), -EAGAIN);
	CHECK_OK(mproc_lock_release(l));
	CHECK_ERR(mproc_lock_release(l), -EPERM);
	CHECK_EQ(mproc_lock_locked(l), 0);
	CHECK_OK(mproc_lock_acquire(l, 0));
	CHECK_OK(mproc_lock_release(l));
	mproc_lock_free(l);
	mproc_lock_free(NULL);
}

static void t_lock_bad_input(void *arg)
{
	struct mproc_lock *l, *l2;
	struct mproc_event *e;
	_Alignas(64) unsigned char mem[128] = { 0 };

	CHECK_ERR(mproc_lock_new(NULL), -EINVAL);
	CHECK_ERR(mproc_lock_acquire(NULL, 0), -EINVAL);
	CHECK_ERR(mproc_lock_release(NULL), -EINVAL);
	CHECK_ERR(mproc_lock_locked(NULL), -EINVAL);
	CHECK_ERR(mproc_lock_init_at(mem, MPROC_SYNC_SIZE - 1, &l), -EINVAL);
	CHECK_ERR(mproc_lock_init_at(mem + 1, MPROC_SYNC_SIZE, &l), -EINVAL);
	CHECK_ERR(mproc_lock_init_at(NULL, MPROC_SYNC_SIZE, &l), -EINVAL);
	CHECK_ERR(mproc_lock_at(mem, &l), -EINVAL);         /* nothing initialized there */
	ASSERT_OK(mproc_event_init_at(mem, sizeof(mem), &e));
	CHECK_ERR(mproc_lock_at(mem, &l), -EINVAL);         /* an Event, not a Lock */
	ASSERT_OK(mproc_lock_init_at(mem, sizeof(mem), &l));
	CHECK_OK(mproc_lock_at(mem, &l2));
	CHECK(l == l2);
	CHECK_ERR(mproc_lock_acquire(l, -2.0), -EINVAL);
	CHECK_ERR(mproc_lock_acquire(l, NAN), -EINVAL);
	CHECK_ERR(mproc_lock_acquire(l, INFINITY), -EINVAL);
	CHECK_EQ(mproc_lock_locked(l), 0);                  /* refused before any effect */
	mproc_lock_free(l);                                 /* caller's memory: no-op */
}

static void t_lock_timeout(void *arg)
{
	struct mproc_lock *l;
	double t0;

	ASSERT_OK(mproc_lock_new(&l));
	ASSERT_OK(mproc_lock_acquire(l, MPROC_FOREVER));
	t0 = tap_now();
	CHECK_ERR(mproc_lock_acquire(l, 0.2), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.2);
	t0 = tap_now();
	CHECK_ERR(mproc_lock_acquire(l, 0), -EAGAIN);
	CHECK_CMP(tap_now() - t0, <, 0.05 * tap_timeout_mult());
	CHECK_OK(mproc_lock_release(l));
	mproc_lock_free(l);
}

struct lock_arg {
	struct mproc_lock *l;
	struct mproc_rlock *rl;
	struct mproc_event *ev;
	int64_t *counter;
	int n;
};

static int child_wait_lock(void *p)
{
	struct lock_arg *a = p;
	int r = mproc_lock_acquire(a->l, 5.0);

	if (r < 0)
		return code(r);
	(*a->counter)++;
	return code(mproc_lock_release(a->l));
}

static void t_lock_cross_process(void *arg)
{
	struct lock_arg a = { 0 };
	pid_t p;

	ASSERT_OK(mproc_lock_new(&a.l));
	a.counter = shared(64);
	ASSERT_OK(mproc_lock_acquire(a.l, MPROC_FOREVER));
	p = tap_fork(child_wait_lock, &a);
	sleep_ms(50);
	CHECK_EQ(*a.counter, 0);            /* the child waits */
	CHECK_OK(mproc_lock_release(a.l));
	CHECK_EQ(tap_reap(p), 0);
	CHECK_EQ(*a.counter, 1);
	CHECK_EQ(mproc_lock_locked(a.l), 0);
	munmap(a.counter, 64);
	mproc_lock_free(a.l);
}

static int child_increment(void *p)
{
	struct lock_arg *a = p;

	for (int i = 0; i < a->n; i++) {
		int r = mproc_lock_acquire(a->l, MPROC_FOREVER);

		if (r < 0)
			return code(r);
		/* A plain read-modify-write: only the lock makes it exact. */
		int64_t v = *(volatile int64_t *)a->counter;
		*(volatile int64_t *)a->counter = v + 1;
		r = mproc_lock_release(a->l);
		if (r < 0)
			return code(r);
	}
	return 0;
}

static void t_lock_counter(void *arg)
{
	struct lock_arg a = { .n = 10000 };
	pid_t p[8];

	ASSERT_OK(mproc_lock_new(&a.l));
	a.counter = shared(64);
	for (int i = 0; i < 8; i++)
		p[i] = tap_fork(child_increment, &a);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_EQ(*a.counter, 80000);
	munmap(a.counter, 64);
	mproc_lock_free(a.l);
}

static int child_hold_lock(void *p)
{
	struct lock_arg *a = p;
	int r = a->l ? mproc_lock_acquire(a->l, MPROC_FOREVER) :
		       mproc_rlock_acquire(a->rl, MPROC_FOREVER);

	if (r < 0)
		return code(r);
	if (a->rl)
		mproc_rlock_acquire(a->rl, MPROC_FOREVER);  /* nested: count 2 when it dies */
	mproc_event_set(a->ev);
	for (;;)
		pause();
}

/* The holder is SIGKILLed: the next acquire returns -EOWNERDEAD and holds the lock, whether
 * the holder is still a zombie (reap_first false) or gone. */
static void owner_dead(bool reap_first, bool rlock)
{
	struct lock_arg a = { 0 };
	double t0;
	pid_t p;

	if (rlock)
		ASSERT_OK(mproc_rlock_new(&a.rl));
	else
		ASSERT_OK(mproc_lock_new(&a.l));
	ASSERT_OK(mproc_event_new(&a.ev));
	p = tap_fork(child_hold_lock, &a);
	ASSERT_OK(mproc_event_wait(a.ev, 5.0));
	CHECK_ERR(rlock ? mproc_rlock_acquire(a.rl, 0) : mproc_lock_acquire(a.l, 0), -EAGAIN);
	kill(p, SIGKILL);
	if (reap_first)
		CHECK_EQ(tap_reap(p), 128 + SIGKILL);
	t0 = tap_now();
	if (rlock) {
		CHECK_ERR(mproc_rlock_acquire(a.rl, 1.0), -EOWNERDEAD);
		CHECK_EQ(mproc_rlock_is_owned(a.rl), 1);
		CHECK_OK(mproc_rlock_release(a.rl));    /* the dead one's nesting is forgotten */
		CHECK_EQ(mproc_rlock_is_owned(a.rl), 0);
		CHECK_OK(mproc_rlock_acquire(a.rl, 0));
		CHECK_OK(mproc_rlock_release(a.rl));
	} else {
		CHECK_ERR(mproc_lock_acquire(a.l, 1.0), -EOWNERDEAD);
		CHECK_EQ(mproc_lock_locked(a.l), 1);
		CHECK_ERR(mproc_lock_acquire(a.l, 0), -EAGAIN);
		CHECK_OK(mproc_lock_release(a.l));
		CHECK_OK(mproc_lock_acquire(a.l, 0));
		CHECK_OK(mproc_lock_release(a.l));
	}
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	if (!reap_first)
		CHECK_EQ(tap_reap(p), 128 + SIGKILL);
	mproc_event_free(a.ev);
	mproc_lock_free(a.l);
	mproc_rlock_free(a.rl);
}

static void t_lock_owner_dead_zombie(void *arg)
{
	owner_dead(false, false);
}

static void t_lock_owner_dead_reaped(void *arg)
{
	owner_dead(true, false);
}

static void t_rlock_owner_dead(void *arg)
{
	owner_dead(false, true);
}

struct killer_arg {
	pid_t victim;
	int delay_ms;
};

static int child_killer(void *p)
{
	struct killer_arg *k = p;

	sleep_ms(k->delay_ms);
	return kill(k->victim, SIGKILL) < 0 ? 1 : 0;
}

/* A waiter already blocked without a timeout also gets -EOWNERDEAD (not a hang). */
static void t_lock_owner_dead_blocked(void *arg)
{
	struct lock_arg a = { 0 };
	struct killer_arg k = { .delay_ms = 100 };
	pid_t holder, killer;
	double t0;

	ASSERT_OK(mproc_lock_new(&a.l));
	ASSERT_OK(mproc_event_new(&a.ev));
	holder = tap_fork(child_hold_lock, &a);
	ASSERT_OK(mproc_event_wait(a.ev, 5.0));
	k.victim = holder;
	killer = tap_fork(child_killer, &k);
	t0 = tap_now();
	CHECK_ERR(mproc_lock_acquire(a.l, MPROC_FOREVER), -EOWNERDEAD);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	CHECK_OK(mproc_lock_release(a.l));
	CHECK_EQ(tap_reap(killer), 0);
	CHECK_EQ(tap_reap(holder), 128 + SIGKILL);
	mproc_event_free(a.ev);
	mproc_lock_free(a.l);
}

/* A Lock placed in a named region, reached through a second mapping at another address. */
static void t_lock_in_named_region(void *arg)
{
	tap_require_dev_shm();
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *s1, *s2;
	struct mproc_lock *l1, *l2;

	ASSERT_OK(mproc_shm_new(&s1, 4096, &o));
	o.name = mproc_shm_name(s1);
	ASSERT_OK(mproc_shm_attach(&s2, 0, &o));
	CHECK(mproc_shm_addr(s1) != mproc_shm_addr(s2));
	ASSERT_OK(mproc_lock_init_at(mproc_shm_addr(s1), mproc_shm_size(s1), &l1));
	ASSERT_OK(mproc_lock_at(mproc_shm_addr(s2), &l2));
	CHECK_OK(mproc_lock_acquire(l1, 0));
	CHECK_ERR(mproc_lock_acquire(l2, 0), -EAGAIN);
	CHECK_OK(mproc_lock_release(l2));
	CHECK_OK(mproc_lock_acquire(l1, 0));
	CHECK_OK(mproc_lock_release(l1));
	mproc_shm_free(s2);
	mproc_shm_free(s1);
}

/* ---- RLock ---------------------------------------------------------------------------- */

static int child_rlock_foreign(void *p)
{
	struct lock_arg *a = p;

	if (mproc_rlock_is_owned(a->rl) != 0)
		return 10;
	if (mproc_rlock_release(a->rl) != -EPERM)
		return 11;
	return code(mproc_rlock_acquire(a->rl, 0));     /* held by the parent: EAGAIN */
}

static void t_rlock_semantics(void *arg)
{
	struct lock_arg a = { 0 };

	ASSERT_OK(mproc_rlock_new(&a.rl));
	CHECK_ERR(mproc_rlock_release(a.rl), -EPERM);
	for (int i = 0; i < 3; i++)
		CHECK_OK(mproc_rlock_acquire(a.rl, 0));
	CHECK_EQ(mproc_rlock_is_owned(a.rl), 1);
	CHECK_EQ(tap_reap(tap_fork(child_rlock_foreign, &a)), EAGAIN);
	CHECK_OK(mproc_rlock_release(a.rl));
	CHECK_OK(mproc_rlock_release(a.rl));
	CHECK_EQ(mproc_rlock_is_owned(a.rl), 1);
	CHECK_OK(mproc_rlock_release(a.rl));
	CHECK_EQ(mproc_rlock_is_owned(a.rl), 0);
	CHECK_ERR(mproc_rlock_release(a.rl), -EPERM);
	CHECK_EQ(tap_reap(tap_fork(child_rlock_foreign, &a)), 0);   /* free: the child takes it */
	CHECK_ERR(mproc_rlock_acquire(NULL, 0), -EINVAL);
	CHECK_ERR(mproc_rlock_acquire(a.rl, -0.5), -EINVAL);
	mproc_rlock_free(a.rl);
}

/* ---- Semaphore ------------------------------------------------------------------------ */

static void t_sem_value(void *arg)
{
	struct mproc_sem *s;

	ASSERT_OK(mproc_sem_new(&s, 2, 0));
	CHECK_EQ(mproc_sem_value(s), 2);
	CHECK_OK(mproc_sem_acquire(s, 0));
	CHECK_EQ(mproc_sem_value(s), 1);
	CHECK_OK(mproc_sem_acquire(s, MPROC_FOREVER));
	CHECK_EQ(mproc_sem_value(s), 0);
	CHECK_ERR(mproc_sem_acquire(s, 0), -EAGAIN);
	CHECK_OK(mproc_sem_release(s));
	CHECK_EQ(mproc_sem_value(s), 1);
	CHECK_OK(mproc_sem_release(s));
	CHECK_OK(mproc_sem_release(s));         /* unbounded: past the initial value */
	CHECK_EQ(mproc_sem_value(s), 3);
	mproc_sem_free(s);

	ASSERT_OK(mproc_sem_new(&s, MPROC_SEM_VALUE_MAX, 0));
	CHECK_ERR(mproc_sem_release(s), -EOVERFLOW);
	mproc_sem_free(s);
	CHECK_ERR(mproc_sem_new(&s, MPROC_SEM_VALUE_MAX + 1u, 0), -EINVAL);
	CHECK_ERR(mproc_sem_new(NULL, 1, 0), -EINVAL);
	CHECK_ERR(mproc_sem_acquire(NULL, 0), -EINVAL);
	CHECK_ERR(mproc_sem_release(NULL), -EINVAL);
}

static void t_sem_bounded(void *arg)
{
	struct mproc_sem *s;

	CHECK_ERR(mproc_sem_new(&s, 3, 2), -EINVAL);
	ASSERT_OK(mproc_sem_new(&s, 2, 2));
	CHECK_ERR(mproc_sem_release(s), -EOVERFLOW);
	CHECK_EQ(mproc_sem_value(s), 2);
	CHECK_OK(mproc_sem_acquire(s, 0));
	CHECK_OK(mproc_sem_release(s));
	CHECK_ERR(mproc_sem_release(s), -EOVERFLOW);
	CHECK_EQ(mproc_sem_value(s), 2);
	mproc_sem_free(s);
}

static int child_sem_release_later(void *p)
{
	sleep_ms(50);
	return code(mproc_sem_release(p));
}

static void t_sem_timeout_and_wake(void *arg)
{
	struct mproc_sem *s;
	double t0;
	pid_t p;

	ASSERT_OK(mproc_sem_new(&s, 0, 0));
	t0 = tap_now();
	CHECK_ERR(mproc_sem_acquire(s, 0.2), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.2);
	p = tap_fork(child_sem_release_later, s);
	CHECK_OK(mproc_sem_acquire(s, 5.0));
	CHECK_EQ(tap_reap(p), 0);
	CHECK_EQ(mproc_sem_value(s), 0);
	mproc_sem_free(s);
}

/* ---- Condition ------------------------------------------------------------------------ */

struct cond_arg {
	struct mproc_lock *l;
	struct mproc_cond *c;
	int *ready, *woken, *flag;
};

static int child_cond_wait(void *p)
{
	struct cond_arg *a = p;
	int r;

	mproc_lock_acquire(a->l, MPROC_FOREVER);
	(*a->ready)++;
	r = mproc_cond_wait(a->c, a->l, 10.0);
	if (r == 0)
		(*a->woken)++;
	mproc_lock_release(a->l);
	return code(r);
}

static int woken_now(struct cond_arg *a)
{
	int w;

	mproc_lock_acquire(a->l, MPROC_FOREVER);
	w = *a->woken;
	mproc_lock_release(a->l);
	return w;
}

static void wait_ready(struct cond_arg *a, int n)
{
	for (int i = 0; i < 500; i++) {
		int ready;

		mproc_lock_acquire(a->l, MPROC_FOREVER);
		ready = *a->ready;
		mproc_lock_release(a->l);
		if (ready >= n)
			return;
		sleep_ms(10);
	}
	tap_fail_at(__FILE__, __LINE__, "waiters never got ready");
	tap_abort_case();
}

static void t_cond_notify(void *arg)
{
	struct cond_arg a = { 0 };
	int *mem = shared(4096);
	pid_t p[4];

	a.ready = mem;
	a.woken = mem + 1;
	ASSERT_OK(mproc_lock_new(&a.l));
	ASSERT_OK(mproc_cond_new(&a.c));
	for (int i = 0; i < 4; i++)
		p[i] = tap_fork(child_cond_wait, &a);
	wait_ready(&a, 4);

	mproc_lock_acquire(a.l, MPROC_FOREVER);
	CHECK_EQ(mproc_cond_notify(a.c, a.l, 1), 1);
	mproc_lock_release(a.l);
	sleep_ms(100);
	CHECK_EQ(woken_now(&a), 1);

	mproc_lock_acquire(a.l, MPROC_FOREVER);
	CHECK_EQ(mproc_cond_notify(a.c, a.l, 2), 2);    /* notify(n) */
	mproc_lock_release(a.l);
	sleep_ms(100);
	CHECK_EQ(woken_now(&a), 3);

	mproc_lock_acquire(a.l, MPROC_FOREVER);
	CHECK_EQ(mproc_cond_notify_all(a.c, a.l), 1);
	CHECK_EQ(mproc_cond_notify_all(a.c, a.l), 0);   /* nobody left */
	mproc_lock_release(a.l);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_EQ(*a.woken, 4);

	/* notify_all wakes every waiter of a new round. */
	*a.ready = 0;
	*a.woken = 0;
	for (int i = 0; i < 4; i++)
		p[i] = tap_fork(child_cond_wait, &a);
	wait_ready(&a, 4);
	mproc_lock_acquire(a.l, MPROC_FOREVER);
	CHECK_EQ(mproc_cond_notify_all(a.c, a.l), 4);
	mproc_lock_release(a.l);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_EQ(*a.woken, 4);

	CHECK_ERR(mproc_cond_notify(a.c, a.l, 1), -EPERM);      /* lock not held */
	CHECK_ERR(mproc_cond_wait(a.c, a.l, 0.1), -EPERM);
	CHECK_ERR(mproc_cond_notify(a.c, a.l, -1), -EINVAL);
	CHECK_ERR(mproc_cond_notify(NULL, a.l, 1), -EINVAL);
	munmap(mem, 4096);
	mproc_cond_free(a.c);
	mproc_lock_free(a.l);
}

static int pred_flag(void *p)
{
	return *(volatile int *)p != 0;
}

static int child_set_flag(void *p)
{
	struct cond_arg *a = p;
	int r;

	sleep_ms(50);
	mproc_lock_acquire(a->l, MPROC_FOREVER);
	*a->flag = 1;
	r = mproc_cond_notify_all(a->c, a->l);
	mproc_lock_release(a->l);
	return r < 0 ? code(r) : 0;
}

static void t_cond_wait_for(void *arg)
{
	struct cond_arg a = { 0 };
	int *mem = shared(4096);
	double t0;
	pid_t p;

	a.flag = mem;
	ASSERT_OK(mproc_lock_new(&a.l));
	ASSERT_OK(mproc_cond_new(&a.c));
	mproc_lock_acquire(a.l, MPROC_FOREVER);
	t0 = tap_now();
	CHECK_ERR(mproc_cond_wait(a.c, a.l, 0.2), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.2);
	CHECK_EQ(mproc_lock_locked(a.l), 1);            /* retaken after the timeout */
	t0 = tap_now();
	CHECK_ERR(mproc_cond_wait_for(a.c, a.l, pred_flag, a.flag, 0.2), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.2);
	mproc_lock_release(a.l);

	p = tap_fork(child_set_flag, &a);
	mproc_lock_acquire(a.l, MPROC_FOREVER);
	CHECK_OK(mproc_cond_wait_for(a.c, a.l, pred_flag, a.flag, 5.0));
	CHECK_EQ(*a.flag, 1);
	mproc_lock_release(a.l);
	CHECK_EQ(tap_reap(p), 0);
	munmap(mem, 4096);
	mproc_cond_free(a.c);
	mproc_lock_free(a.l);
}

/* ---- Event ---------------------------------------------------------------------------- */

static int child_event_wait(void *p)
{
	return code(mproc_event_wait(p, 10.0));
}

static void t_event(void *arg)
{
	struct mproc_event *e;
	double t0;
	pid_t p[3];

	ASSERT_OK(mproc_event_new(&e));
	CHECK_EQ(mproc_event_is_set(e), 0);
	CHECK_ERR(mproc_event_wait(e, 0), -ETIMEDOUT);
	t0 = tap_now();
	CHECK_ERR(mproc_event_wait(e, 0.2), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.2);
	for (int i = 0; i < 3; i++)
		p[i] = tap_fork(child_event_wait, e);
	sleep_ms(50);
	CHECK_OK(mproc_event_set(e));
	CHECK_EQ(mproc_event_is_set(e), 1);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_OK(mproc_event_wait(e, 0));
	CHECK_OK(mproc_event_wait(e, MPROC_FOREVER));
	CHECK_OK(mproc_event_clear(e));
	CHECK_EQ(mproc_event_is_set(e), 0);
	CHECK_ERR(mproc_event_wait(e, 0.01), -ETIMEDOUT);
	CHECK_ERR(mproc_event_wait(e, -3), -EINVAL);
	CHECK_ERR(mproc_event_wait(NULL, 0), -EINVAL);
	CHECK_ERR(mproc_event_set(NULL), -EINVAL);
	mproc_event_free(e);
}

/* ---- Barrier -------------------------------------------------------------------------- */

#define PASSES 1000

struct barrier_arg {
	struct mproc_barrier *b;
	int (*seen)[5];         /* [pass][index]: how many got that index */
};

static int child_barrier_passes(void *p)
{
	struct barrier_arg *a = p;

	for (int pass = 0; pass < PASSES; pass++) {
		int idx = mproc_barrier_wait(a->b, 10.0);

		if (idx < 0)
			return code(idx);
		if (idx >= 5)
			return 200;
		__atomic_fetch_add(&a->seen[pass][idx], 1, __ATOMIC_SEQ_CST);
	}
	return 0;
}

static void t_barrier_passes(void *arg)
{
	struct barrier_arg a;
	size_t bytes = sizeof(int[PASSES][5]);
	pid_t p[5];

	a.seen = shared(bytes);
	ASSERT_OK(mproc_barrier_new(&a.b, 5));
	CHECK_EQ(mproc_barrier_parties(a.b), 5);
	for (int i = 0; i < 5; i++)
		p[i] = tap_fork(child_barrier_passes, &a);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	for (int pass = 0; pass < PASSES && !tap_failed(); pass++) {
		for (int i = 0; i < 5; i++)
			CHECK_EQ(a.seen[pass][i], 1);
	}
	CHECK_EQ(mproc_barrier_broken(a.b), 0);
	CHECK_EQ(mproc_barrier_n_waiting(a.b), 0);
	munmap(a.seen, bytes);
	mproc_barrier_free(a.b);
}

static int child_barrier_once(void *p)
{
	int r = mproc_barrier_wait(p, 10.0);

	return r >= 0 ? 100 + r : code(r);
}

static void wait_n_waiting(struct mproc_barrier *b, int n)
{
	for (int i = 0; i < 500 && mproc_barrier_n_waiting(b) < n; i++)
		sleep_ms(10);
	ASSERT_EQ(mproc_barrier_n_waiting(b), n);
}

static void t_barrier_abort_reset(void *arg)
{
	struct mproc_barrier *b;
	int seen[3] = { 0 };
	pid_t p[3];

	ASSERT_OK(mproc_barrier_new(&b, 3));
	for (int i = 0; i < 2; i++)
		p[i] = tap_fork(child_barrier_once, b);
	wait_n_waiting(b, 2);
	CHECK_OK(mproc_barrier_abort(b));
	for (int i = 0; i < 2; i++)
		CHECK_EQ(tap_reap(p[i]), EPIPE);
	CHECK_EQ(mproc_barrier_broken(b), 1);
	CHECK_ERR(mproc_barrier_wait(b, 1.0), -EPIPE);  /* broken until reset */
	CHECK_OK(mproc_barrier_reset(b));
	CHECK_EQ(mproc_barrier_broken(b), 0);

	/* Usable again: three parties pass with indexes 0, 1, 2. */
	for (int i = 0; i < 3; i++)
		p[i] = tap_fork(child_barrier_once, b);
	for (int i = 0; i < 3; i++) {
		int st = tap_reap(p[i]);

		CHECK(st >= 100 && st < 103);
		if (st >= 100 && st < 103)
			seen[st - 100]++;
	}
	for (int i = 0; i < 3; i++)
		CHECK_EQ(seen[i], 1);

	/* reset while a process waits breaks that pass for it, and leaves the barrier usable. */
	p[0] = tap_fork(child_barrier_once, b);
	wait_n_waiting(b, 1);
	CHECK_OK(mproc_barrier_reset(b));
	CHECK_EQ(tap_reap(p[0]), EPIPE);
	CHECK_EQ(mproc_barrier_broken(b), 0);
	CHECK_EQ(mproc_barrier_n_waiting(b), 0);
	mproc_barrier_free(b);
}

static void t_barrier_timeout(void *arg)
{
	struct mproc_barrier *b;
	double t0;
	pid_t p;

	ASSERT_OK(mproc_barrier_new(&b, 3));
	p = tap_fork(child_barrier_once, b);
	wait_n_waiting(b, 1);
	t0 = tap_now();
	CHECK_ERR(mproc_barrier_wait(b, 0.2), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.2);
	CHECK_EQ(tap_reap(p), EPIPE);               /* the other waiter sees it broken */
	CHECK_EQ(mproc_barrier_broken(b), 1);
	CHECK_ERR(mproc_barrier_wait(b, 0), -EPIPE);
	CHECK_OK(mproc_barrier_reset(b));
	CHECK_ERR(mproc_barrier_wait(b, 0), -ETIMEDOUT);        /* timeout 0 breaks it */
	CHECK_EQ(mproc_barrier_broken(b), 1);
	mproc_barrier_free(b);

	CHECK_ERR(mproc_barrier_new(&b, 0), -EINVAL);
	CHECK_ERR(mproc_barrier_wait(NULL, 0), -EINVAL);
	ASSERT_OK(mproc_barrier_new(&b, 1));
	CHECK_EQ(mproc_barrier_wait(b, 0), 0);          /* one party passes alone */
	CHECK_ERR(mproc_barrier_wait(b, NAN), -EINVAL);
	mproc_barrier_free(b);
}

/* ---- EINTR storm ---------------------------------------------------------------------- */

static void t_eintr_storm(void *arg)
{
	struct mproc_lock *l;
	struct mproc_sem *s;
	struct mproc_cond *c;
	struct mproc_event *e;
	struct mproc_barrier *b;
	timer_t t;
	double t0;

	ASSERT_OK(mproc_lock_new(&l));
	ASSERT_OK(mproc_sem_new(&s, 0, 0));
	ASSERT_OK(mproc_cond_new(&c));
	ASSERT_OK(mproc_event_new(&e));
	ASSERT_OK(mproc_barrier_new(&b, 2));
	ASSERT_OK(mproc_lock_acquire(l, 0));
	t = storm_start();

	t0 = tap_now();
	CHECK_ERR(mproc_lock_acquire(l, 0.3), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.3);
	t0 = tap_now();
	CHECK_ERR(mproc_sem_acquire(s, 0.3), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.3);
	t0 = tap_now();
	CHECK_ERR(mproc_event_wait(e, 0.3), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.3);
	t0 = tap_now();
	CHECK_ERR(mproc_cond_wait(c, l, 0.3), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.3);
	t0 = tap_now();
	CHECK_ERR(mproc_barrier_wait(b, 0.3), -ETIMEDOUT);
	CHECK_ELAPSED(t0, 0.3);
	storm_stop(t);
	CHECK_CMP(storm_hits, >=, 50);          /* 1.5 s at 100 Hz: the storm did happen */

	CHECK_OK(mproc_lock_release(l));
	mproc_barrier_free(b);
	mproc_event_free(e);
	mproc_cond_free(c);
	mproc_sem_free(s);
	mproc_lock_free(l);
}

/* ---- stress: no lost wake-ups --------------------------------------------------------- */

struct sem_mutex_arg {
	struct mproc_sem *s;
	int64_t *counter;
};

static int child_sem_mutex(void *p)
{
	struct sem_mutex_arg *a = p;

	for (int i = 0; i < 5000; i++) {
		int r = mproc_sem_acquire(a->s, 10.0);

		if (r < 0)
			return code(r);
		*(volatile int64_t *)a->counter = *(volatile int64_t *)a->counter + 1;
		r = mproc_sem_release(a->s);
		if (r < 0)
			return code(r);
	}
	return 0;
}

/* A BoundedSemaphore(1) used as a mutex by 4 processes: exact count, value back to 1. */
static void t_sem_contended(void *arg)
{
	struct sem_mutex_arg a;
	pid_t p[4];

	ASSERT_OK(mproc_sem_new(&a.s, 1, 1));
	a.counter = shared(64);
	for (int i = 0; i < 4; i++)
		p[i] = tap_fork(child_sem_mutex, &a);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_EQ(*a.counter, 20000);
	CHECK_EQ(mproc_sem_value(a.s), 1);
	munmap(a.counter, 64);
	mproc_sem_free(a.s);
}

struct pc_arg {
	struct mproc_lock *l;
	struct mproc_cond *c;
	int *items, *consumed, *done;
};

static int pred_items_or_done(void *p)
{
	struct pc_arg *a = p;

	return *a->items > 0 || *a->done;
}

/* Consumers wait with short timeouts, so timed-out and notified waits interleave. */
static int child_consumer(void *p)
{
	struct pc_arg *a = p;

	mproc_lock_acquire(a->l, MPROC_FOREVER);
	for (;;) {
		int r = mproc_cond_wait_for(a->c, a->l, pred_items_or_done, a, 0.02);

		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			break;
		if (*a->items > 0) {
			(*a->items)--;
			(*a->consumed)++;
			continue;
		}
		if (*a->done)
			break;
	}
	mproc_lock_release(a->l);
	return 0;
}

static void t_cond_producer_consumer(void *arg)
{
	struct pc_arg a;
	int *mem = shared(4096);
	pid_t p[4];

	a.items = mem;
	a.consumed = mem + 16;
	a.done = mem + 32;
	ASSERT_OK(mproc_lock_new(&a.l));
	ASSERT_OK(mproc_cond_new(&a.c));
	for (int i = 0; i < 4; i++)
		p[i] = tap_fork(child_consumer, &a);
	for (int i = 0; i < 3000; i++) {
		mproc_lock_acquire(a.l, MPROC_FOREVER);
		(*a.items)++;
		CHECK_OK(mproc_cond_notify(a.c, a.l, 1));
		mproc_lock_release(a.l);
	}
	/* Every item is taken without any further notify. */
	for (int i = 0; i < 500; i++) {
		int left;

		mproc_lock_acquire(a.l, MPROC_FOREVER);
		left = *a.items;
		mproc_lock_release(a.l);
		if (left == 0)
			break;
		sleep_ms(10);
	}
	mproc_lock_acquire(a.l, MPROC_FOREVER);
	*a.done = 1;
	mproc_cond_notify_all(a.c, a.l);
	mproc_lock_release(a.l);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_EQ(*a.items, 0);
	CHECK_EQ(*a.consumed, 3000);
	munmap(mem, 4096);
	mproc_cond_free(a.c);
	mproc_lock_free(a.l);
}

struct overfull_arg {
	struct mproc_barrier *b;
	int *idx_count;         /* [2], then the stop flag at [16] */
};

static int child_barrier_overfull(void *p)
{
	struct overfull_arg *a = p;

	while (!__atomic_load_n(&a->idx_count[16], __ATOMIC_SEQ_CST)) {
		int idx = mproc_barrier_wait(a->b, 10.0);

		if (idx == -EPIPE)
			return 0;       /* aborted at the end: the last odd waiter */
		if (idx < 0 || idx > 1)
			return idx < 0 ? code(idx) : 200;
		__atomic_fetch_add(&a->idx_count[idx], 1, __ATOMIC_SEQ_CST);
	}
	return 0;
}

/* More processes than parties: passes overtake slow waiters; each pass still hands out 0
 * and 1 exactly once. */
static void t_barrier_overfull(void *arg)
{
	struct overfull_arg a;
	pid_t p[4];

	a.idx_count = shared(4096);
	ASSERT_OK(mproc_barrier_new(&a.b, 2));
	for (int i = 0; i < 4; i++)
		p[i] = tap_fork(child_barrier_overfull, &a);
	for (int i = 0; i < 1000 && __atomic_load_n(&a.idx_count[1], __ATOMIC_SEQ_CST) < 1000; i++)
		sleep_ms(10);
	__atomic_store_n(&a.idx_count[16], 1, __ATOMIC_SEQ_CST);
	sleep_ms(50);
	CHECK_OK(mproc_barrier_abort(a.b));     /* frees a process left without a partner */
	for (int i = 0; i < 4; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_CMP(a.idx_count[0], >=, 1000);
	CHECK_EQ(a.idx_count[0], a.idx_count[1]);
	munmap(a.idx_count, 4096);
	mproc_barrier_free(a.b);
}

static void *thread_release_rlock(void *p)
{
	return (void *)(intptr_t)mproc_rlock_release(p);
}

/* Ownership is per thread: another thread of the owner's process may not release. */
static void t_rlock_other_thread(void *arg)
{
	struct mproc_rlock *rl;
	pthread_t th;
	void *ret;

	ASSERT_OK(mproc_rlock_new(&rl));
	ASSERT_OK(mproc_rlock_acquire(rl, 0));
	ASSERT_EQ(pthread_create(&th, NULL, thread_release_rlock, rl), 0);
	pthread_join(th, &ret);
	CHECK_EQ((intptr_t)ret, -EPERM);
	CHECK_OK(mproc_rlock_release(rl));
	mproc_rlock_free(rl);
}

/* Every type places itself in caller memory, and _at refuses the wrong type. */
static void t_init_at_all(void *arg)
{
	_Alignas(64) unsigned char mem[6][MPROC_SYNC_SIZE];
	struct mproc_lock *l;
	struct mproc_rlock *rl;
	struct mproc_sem *s;
	struct mproc_cond *c;
	struct mproc_event *e;
	struct mproc_barrier *b;

	CHECK_OK(mproc_lock_init_at(mem[0], MPROC_SYNC_SIZE, &l));
	CHECK_OK(mproc_rlock_init_at(mem[1], MPROC_SYNC_SIZE, &rl));
	CHECK_OK(mproc_sem_init_at(mem[2], MPROC_SYNC_SIZE, 3, 5, &s));
	CHECK_OK(mproc_cond_init_at(mem[3], MPROC_SYNC_SIZE, &c));
	CHECK_OK(mproc_event_init_at(mem[4], MPROC_SYNC_SIZE, &e));
	CHECK_OK(mproc_barrier_init_at(mem[5], MPROC_SYNC_SIZE, 4, &b));
	CHECK_OK(mproc_rlock_at(mem[1], &rl));
	CHECK_OK(mproc_sem_at(mem[2], &s));
	CHECK_EQ(mproc_sem_value(s), 3);
	CHECK_OK(mproc_cond_at(mem[3], &c));
	CHECK_OK(mproc_event_at(mem[4], &e));
	CHECK_OK(mproc_barrier_at(mem[5], &b));
	CHECK_EQ(mproc_barrier_parties(b), 4);
	CHECK_ERR(mproc_rlock_at(mem[0], &rl), -EINVAL);
	CHECK_ERR(mproc_sem_at(mem[3], &s), -EINVAL);
	CHECK_ERR(mproc_cond_at(mem[4], &c), -EINVAL);
	CHECK_ERR(mproc_event_at(mem[5], &e), -EINVAL);
	CHECK_ERR(mproc_barrier_at(mem[0], &b), -EINVAL);
	CHECK_ERR(mproc_sem_init_at(mem[2], MPROC_SYNC_SIZE, 6, 5, &s), -EINVAL);
	CHECK_ERR(mproc_barrier_init_at(mem[5], MPROC_SYNC_SIZE, 0, &b), -EINVAL);
	CHECK_ERR(mproc_cond_new(NULL), -EINVAL);
	CHECK_ERR(mproc_event_new(NULL), -EINVAL);
	CHECK_ERR(mproc_barrier_new(NULL, 2), -EINVAL);
}

static int child_hold_then_release(void *p)
{
	struct lock_arg *a = p;
	int r = mproc_lock_acquire(a->l, MPROC_FOREVER);

	if (r < 0)
		return code(r);
	mproc_event_set(a->ev);
	sleep_ms(400);          /* several liveness checks of the waiter pass meanwhile */
	return code(mproc_lock_release(a->l));
}

/* A live holder that is merely slow is never mistaken for a dead one. */
static void t_lock_slow_holder_not_dead(void *arg)
{
	struct lock_arg a = { 0 };
	pid_t p;

	ASSERT_OK(mproc_lock_new(&a.l));
	ASSERT_OK(mproc_event_new(&a.ev));
	p = tap_fork(child_hold_then_release, &a);
	ASSERT_OK(mproc_event_wait(a.ev, 5.0));
	CHECK_ERR(mproc_lock_acquire(a.l, 0.1), -ETIMEDOUT);
	CHECK_OK(mproc_lock_acquire(a.l, 5.0));
	CHECK_OK(mproc_lock_release(a.l));
	CHECK_EQ(tap_reap(p), 0);
	mproc_event_free(a.ev);
	mproc_lock_free(a.l);
}

static void *thread_take_and_exit(void *p)
{
	return (void *)(intptr_t)mproc_lock_acquire(p, 0);
}

/* A thread that exits holding a Lock is a dead holder too (its tid is gone). */
static void t_lock_thread_exit_holding(void *arg)
{
	struct mproc_lock *l;
	pthread_t th;
	void *ret;

	ASSERT_OK(mproc_lock_new(&l));
	ASSERT_EQ(pthread_create(&th, NULL, thread_take_and_exit, l), 0);
	pthread_join(th, &ret);
	ASSERT_EQ((intptr_t)ret, 0);
	CHECK_ERR(mproc_lock_acquire(l, 1.0), -EOWNERDEAD);
	CHECK_OK(mproc_lock_release(l));
	mproc_lock_free(l);
}

/* Threads of one process (sync.h: "between threads" too): 4 threads wait for an event, bump
 * plain counters under a lock, a nested rlock and a semaphore of value 1, and meet at a barrier
 * each round; under
 * TSan this checks that each primitive's atomics order the data it guards. */
#define ST_THREADS 4
#define ST_ROUNDS 50
#define ST_PER_ROUND 40
struct st_arg {
	struct mproc_lock *l;
	struct mproc_rlock *rl;
	struct mproc_sem *sem;
	struct mproc_barrier *b;
	struct mproc_event *ev;
	long go;                        /* plain: written before ev is set */
	long c_lock, c_rlock, c_sem;    /* plain: guarded by l, rl, sem */
	long after_barrier[ST_ROUNDS];  /* written by the barrier's index 0 each round */
	_Atomic int bad;
};

static void *st_thread(void *p)
{
	struct st_arg *a = p;
	int round, k, idx;

	if (mproc_event_wait(a->ev, 10.0 * tap_timeout_mult()) < 0 || a->go != 42) {
		atomic_fetch_add(&a->bad, 1);
		mproc_barrier_abort(a->b);
		return NULL;
	}
	for (round = 0; round < ST_ROUNDS; round++) {
		for (k = 0; k < ST_PER_ROUND; k++) {
			if (mproc_lock_acquire(a->l, 10.0) < 0) {
				atomic_fetch_add(&a->bad, 1);
				return NULL;
			}
			a->c_lock++;
			mproc_lock_release(a->l);
			if (mproc_rlock_acquire(a->rl, 10.0) < 0 ||
			    mproc_rlock_acquire(a->rl, 10.0) < 0) {
				atomic_fetch_add(&a->bad, 1);
				return NULL;
			}
			a->c_rlock++;
			mproc_rlock_release(a->rl);
			mproc_rlock_release(a->rl);
			if (mproc_sem_acquire(a->sem, 10.0) < 0) {
				atomic_fetch_add(&a->bad, 1);
				return NULL;
			}
			a->c_sem++;
			mproc_sem_release(a->sem);
		}
		idx = mproc_barrier_wait(a->b, 10.0 * tap_timeout_mult());
		if (idx < 0) {
			atomic_fetch_add(&a->bad, 1);
			return NULL;
		}
		if (idx == 0) {
			/* Every thread's increments of this round happened before the barrier. */
			if (mproc_lock_acquire(a->l, 10.0) == 0) {
				a->after_barrier[round] = a->c_lock;
				mproc_lock_release(a->l);
			}
		}
		if (mproc_barrier_wait(a->b, 10.0 * tap_timeout_mult()) < 0) {
			atomic_fetch_add(&a->bad, 1);
			return NULL;
		}
	}
	return NULL;
}

static void t_threads_mixed(void *arg)
{
	static struct st_arg a;
	pthread_t th[ST_THREADS];
	int k, started = 0;

	memset(&a, 0, sizeof(a));
	ASSERT_OK(mproc_lock_new(&a.l));
	ASSERT_OK(mproc_rlock_new(&a.rl));
	ASSERT_OK(mproc_sem_new(&a.sem, 1, 1));
	ASSERT_OK(mproc_barrier_new(&a.b, ST_THREADS));
	ASSERT_OK(mproc_event_new(&a.ev));
	for (k = 0; k < ST_THREADS; k++) {
		if (pthread_create(&th[k], NULL, st_thread, &a) != 0)
			break;
		started++;
	}
	usleep(1000);
	a.go = 42;
	CHECK_OK(mproc_event_set(a.ev));
	CHECK_EQ(started, ST_THREADS);
	if (started < ST_THREADS)
		mproc_barrier_abort(a.b);
	for (k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	CHECK_EQ(atomic_load(&a.bad), 0);
	CHECK_EQ(a.c_lock, (long)started * ST_ROUNDS * ST_PER_ROUND);
	CHECK_EQ(a.c_rlock, (long)started * ST_ROUNDS * ST_PER_ROUND);
	CHECK_EQ(a.c_sem, (long)started * ST_ROUNDS * ST_PER_ROUND);
	for (k = 0; k < ST_ROUNDS && started == ST_THREADS; k++)
		CHECK_EQ(a.after_barrier[k], (long)(k + 1) * ST_THREADS * ST_PER_ROUND);
	mproc_event_free(a.ev);
	mproc_barrier_free(a.b);
	mproc_sem_free(a.sem);
	mproc_rlock_free(a.rl);
	mproc_lock_free(a.l);
}

int main(int argc, char **argv)
{
	static const struct tap_opts slow = { .timeout_s = 120 };

	tap_add("sync/lock/basic", t_lock_basic, NULL);
	tap_add("sync/lock/bad_input", t_lock_bad_input, NULL);
	tap_add("sync/lock/timeout", t_lock_timeout, NULL);
	tap_add("sync/lock/cross_process", t_lock_cross_process, NULL);
	tap_add_opts("sync/lock/counter_8x10000", t_lock_counter, NULL, &slow);
	tap_add("sync/threads/mixed", t_threads_mixed, NULL);
	tap_add("sync/lock/owner_dead_zombie", t_lock_owner_dead_zombie, NULL);
	tap_add("sync/lock/owner_dead_reaped", t_lock_owner_dead_reaped, NULL);
	tap_add("sync/lock/owner_dead_blocked_waiter", t_lock_owner_dead_blocked, NULL);
	tap_add("sync/lock/in_named_region", t_lock_in_named_region, NULL);
	tap_add("sync/rlock/semantics", t_rlock_semantics, NULL);
	tap_add("sync/rlock/owner_dead", t_rlock_owner_dead, NULL);
	tap_add("sync/sem/value", t_sem_value, NULL);
	tap_add("sync/sem/bounded", t_sem_bounded, NULL);
	tap_add("sync/sem/timeout_and_wake", t_sem_timeout_and_wake, NULL);
	tap_add("sync/cond/notify", t_cond_notify, NULL);
	tap_add("sync/cond/wait_for", t_cond_wait_for, NULL);
	tap_add("sync/event/semantics", t_event, NULL);
	tap_add_opts("sync/barrier/5x1000", t_barrier_passes, NULL, &slow);
	tap_add("sync/barrier/abort_reset", t_barrier_abort_reset, NULL);
	tap_add("sync/barrier/timeout", t_barrier_timeout, NULL);
	tap_add("sync/eintr_storm/timeouts", t_eintr_storm, NULL);
	tap_add_opts("sync/sem/contended_4x5000", t_sem_contended, NULL, &slow);
	tap_add_opts("sync/cond/producer_consumer", t_cond_producer_consumer, NULL, &slow);
	tap_add_opts("sync/barrier/more_procs_than_parties", t_barrier_overfull, NULL, &slow);
	tap_add("sync/rlock/other_thread", t_rlock_other_thread, NULL);
	tap_add("sync/init_at/every_type", t_init_at_all, NULL);
	tap_add("sync/lock/slow_holder_not_dead", t_lock_slow_holder_not_dead, NULL);
	tap_add("sync/lock/thread_exit_holding", t_lock_thread_exit_holding, NULL);
	return tap_run(argc, argv);
}
