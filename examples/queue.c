/*
 * queue.c - a list through a Queue to a child process. The C twin of
 *
 *	def f(q):
 *	    q.put([42, None, 'hello'])
 *
 *	if __name__ == '__main__':
 *	    mp.set_start_method('spawn')          # or 'fork', 'forkserver'
 *	    q = Queue()
 *	    p = Process(target=f, args=(q,))
 *	    p.start()
 *	    print(q.get())    # prints "[42, None, 'hello']"
 *	    p.join()
 *
 *	build/examples/queue [fork|spawn|forkserver|vfork|posix_spawn]     (default: spawn)
 *
 * What C makes explicit:
 *  - A queue carries bytes. Python pickles the list; here it is a struct without pointers (a
 *    pointer means nothing in another process).
 *  - spawn, forkserver, vfork and posix_spawn start a fresh image of this program: it cannot
 *    take a function pointer, so the child's function is registered by name (MPROC_ENTRY),
 *    main() calls mproc_main_hook() first, and the queue travels as a descriptor that the
 *    child attaches (Python pickles the Queue the same way). Under fork it works the same.
 * Exit 0 when the child's list arrived intact, 1 otherwise.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mproc.h>

/* [42, None, 'hello'] as plain bytes. */
struct item {
	int32_t number;         /* 42 */
	bool has_second;        /* None: false */
	char text[16];          /* 'hello' */
};

/* The child: attach the queue it was given and put the list. Its return is the exit code. */
static int f(void *arg)
{
	const struct mproc_queue_desc *d = arg;
	struct item it = { .number = 42, .has_second = false, .text = "hello" };
	struct mproc_queue *q;
	int r;

	r = mproc_queue_attach(&q, d);
	if (r < 0)
		return 1;
	r = mproc_queue_put(q, &it, sizeof(it), MPROC_FOREVER);
	mproc_queue_free(q);
	return r < 0;
}
MPROC_ENTRY("queue_example_f", f)

int main(int argc, char **argv)
{
	struct mproc_process_opts po = { .method = MPROC_START_SPAWN };
	struct mproc_queue *q = NULL;
	struct mproc_queue_desc d;
	struct mproc_process *p = NULL;
	struct item it = { 0 };
	ssize_t n = -1;
	int r, code = -1;

	mproc_main_hook(argc, argv);    /* in a spawned child: runs f and exits */
	if (argc > 1 && mproc_start_method_from_name(argv[1], &po.method) < 0) {
		fprintf(stderr, "queue: unknown start method '%s'\n", argv[1]);
		return 2;
	}
	r = mproc_queue_new(&q, NULL);
	if (r < 0)
		goto out;
	r = mproc_queue_export(q, &d);
	if (r < 0)
		goto out;
	po.arg_len = sizeof(d);         /* exec methods copy the argument's bytes */
	r = mproc_process_new(&p, f, &d, &po);
	if (r < 0)
		goto out;
	r = mproc_process_start(p);
	if (r < 0)
		goto out;
	n = mproc_queue_get(q, &it, sizeof(it), 10.0);
	r = n < 0 ? (int)n : mproc_process_join(p, MPROC_FOREVER);
	if (r < 0)
		goto out;
	mproc_process_exitcode(p, &code);
	printf("[%d, %s, '%s']   (from a %s child, exit code %d)\n", it.number,
	       it.has_second ? "?" : "None", it.text, mproc_start_method_name(po.method), code);
out:
	if (r < 0)
		fprintf(stderr, "queue: %s\n", mproc_strerror(r));
	if (mproc_process_is_alive(p)) {        /* only after an error: never leave a child */
		mproc_process_kill(p);
		mproc_process_join(p, MPROC_FOREVER);
	}
	mproc_process_free(p);
	mproc_queue_free(q);
	if (r < 0 || code != 0 || n != (ssize_t)sizeof(it) || it.number != 42 || it.has_second ||
	    strcmp(it.text, "hello") != 0)
		return 1;
	return 0;
}
