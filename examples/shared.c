/*
 * shared.c - Value and Array in shared memory, updated by several processes under a Lock.
 * The C twin of
 *
 *	def f(n, a):
 *	    for _ in range(1000):
 *	        with n.get_lock():          # += is read, add, write: not atomic without it
 *	            n.value += 1
 *	    for i in range(len(a)):
 *	        with a.get_lock():
 *	            a[i] += i
 *
 *	n = Value('q', 0)                   # a shared int64 with its own Lock
 *	a = Array('d', 10)                  # ten shared doubles with their own Lock
 *	ps = [Process(target=f, args=(n, a)) for _ in range(4)]
 *	for p in ps: p.start()
 *	for p in ps: p.join()
 *	print(n.value, a[:])                # 4000 [0.0, 4.0, 8.0, ...]
 *
 * The memory is anonymous MAP_SHARED, inherited by fork (spawned processes attach by name or
 * fd instead: mproc_value_new_in / mproc_value_attach, mproc/shm.h). Exit 0 when no update
 * was lost, 1 otherwise.
 */
#include <stdint.h>
#include <stdio.h>

#include <mproc.h>

#define NPROCS 4
#define ROUNDS 1000

struct shared {
	struct mproc_value *n;
	struct mproc_array *a;
};

static int f(void *arg)
{
	struct shared *s = arg;
	int64_t *n = mproc_value_ptr(s->n);
	double *a = mproc_array_data(s->a);

	for (int i = 0; i < ROUNDS; i++) {
		if (mproc_lock_acquire(mproc_value_lock(s->n), MPROC_FOREVER) < 0)
			return 1;
		*n += 1;
		mproc_lock_release(mproc_value_lock(s->n));
	}
	for (size_t i = 0; i < mproc_array_len(s->a); i++) {
		if (mproc_lock_acquire(mproc_array_lock(s->a), MPROC_FOREVER) < 0)
			return 1;
		a[i] += (double)i;
		mproc_lock_release(mproc_array_lock(s->a));
	}
	return 0;
}

int main(void)
{
	struct shared s = { NULL, NULL };
	struct mproc_process *ps[NPROCS] = { NULL };
	int r, started = 0, failed = 0, wrong = 0;
	int64_t n = 0;

	r = mproc_value_new(&s.n, MPROC_INT64, MPROC_SHM_LOCK);
	if (r == 0)
		r = mproc_array_new(&s.a, MPROC_DOUBLE, 10, MPROC_SHM_LOCK);
	for (int i = 0; r == 0 && i < NPROCS; i++) {
		r = mproc_process_new(&ps[i], f, &s, NULL);     /* fork: s is inherited as is */
		if (r == 0)
			r = mproc_process_start(ps[i]);
		started += r == 0;
	}
	for (int i = 0; i < started; i++) {
		int code = -1;

		mproc_process_join(ps[i], MPROC_FOREVER);
		mproc_process_exitcode(ps[i], &code);
		failed |= code != 0;
	}
	if (r < 0) {
		fprintf(stderr, "shared: %s\n", mproc_strerror(r));
	} else {
		const double *a = mproc_array_data(s.a);

		mproc_value_load(s.n, &n);
		printf("%lld [", (long long)n);
		for (size_t i = 0; i < 10; i++) {
			printf("%s%.1f", i ? ", " : "", a[i]);
			wrong |= a[i] != (double)(NPROCS * i);
		}
		printf("]\n");
	}
	for (int i = 0; i < NPROCS; i++)
		mproc_process_free(ps[i]);
	mproc_array_free(s.a);
	mproc_value_free(s.n);
	return r < 0 || failed || wrong || n != NPROCS * ROUNDS;
}
