/*
 * manager.c - a dict held by a Manager (a server process) and shared by several processes on
 * one machine. The C twin of
 *
 *	def f(d, i):
 *	    d[str(i)] = i * i
 *
 *	with Manager() as manager:
 *	    d = manager.dict()
 *	    ps = [Process(target=f, args=(d, i)) for i in range(4)]
 *	    for p in ps: p.start()
 *	    for p in ps: p.join()
 *	    print(d)                    # {'0': 0, '1': 1, '2': 4, '3': 9}
 *
 * The server listens on a Unix socket in a private directory; every process connects with the
 * address and the key (here inherited through fork; never pass a key on a command line) and
 * calls proxies by name. Values are bytes. Over TCP, between machines: manager_tcp.c.
 * Exit 0 when the dict holds what the children wrote, 1 otherwise.
 */
#include <stdint.h>
#include <stdio.h>

#include <mproc.h>

#define NPROCS 4

struct job {
	struct mproc_manager *m;        /* where the server is, and its key */
	int i;
};

/* In a child: connect (a client is never shared across fork), then d[str(i)] = i * i. */
static int f(void *arg)
{
	const struct job *job = arg;
	struct mproc_mclient *c = NULL;
	struct mproc_dict *d = NULL;
	int64_t sq = (int64_t)job->i * job->i;
	char k[16];
	size_t keylen;
	const void *key = mproc_manager_key(job->m, &keylen);
	int r;

	snprintf(k, sizeof(k), "%d", job->i);
	r = mproc_manager_connect(&c, mproc_manager_address(job->m), key, keylen);
	if (r == 0)
		r = mproc_dict_open(&d, c, "d");
	if (r == 0)
		r = mproc_dict_set(d, k, &sq, sizeof(sq));
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	return r < 0;
}

int main(void)
{
	struct mproc_process *ps[NPROCS] = { NULL };
	struct job jobs[NPROCS];
	struct mproc_manager *m = NULL;
	struct mproc_mclient *c = NULL;
	struct mproc_dict *d = NULL;
	int r, started = 0, wrong = 0;

	r = mproc_manager_start(&m, NULL);      /* NULL: Unix socket, random key */
	for (int i = 0; r == 0 && i < NPROCS; i++) {
		jobs[i] = (struct job){ m, i };
		r = mproc_process_new(&ps[i], f, &jobs[i], NULL);
		if (r == 0)
			r = mproc_process_start(ps[i]);
		started += r == 0;
	}
	for (int i = 0; i < started; i++) {
		int code = -1;

		mproc_process_join(ps[i], MPROC_FOREVER);
		mproc_process_exitcode(ps[i], &code);
		wrong |= code != 0;
	}
	if (r == 0) {
		size_t keylen;
		const void *key = mproc_manager_key(m, &keylen);

		r = mproc_manager_connect(&c, mproc_manager_address(m), key, keylen);
	}
	if (r == 0)
		r = mproc_dict_open(&d, c, "d");
	if (r == 0) {
		printf("{");
		for (int i = 0; i < NPROCS; i++) {
			int64_t v = -1;
			char k[16];

			snprintf(k, sizeof(k), "%d", i);
			if (mproc_dict_get(d, k, &v, sizeof(v)) != sizeof(v))
				wrong = 1;
			printf("%s'%s': %lld", i ? ", " : "", k, (long long)v);
			wrong |= v != (int64_t)i * i;
		}
		printf("}   (dict length %zd)\n", mproc_dict_len(d));
		wrong |= mproc_dict_len(d) != NPROCS;
	}
	if (r < 0)
		fprintf(stderr, "manager: %s\n", mproc_strerror(r));
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	for (int i = 0; i < NPROCS; i++)
		mproc_process_free(ps[i]);
	mproc_manager_stop(m);                  /* leaving the with-block */
	return r < 0 || wrong;
}
