/*
 * terminate.c - is_alive() and terminate(): stop a process whose work is no longer needed.
 * The C twin of
 *
 *	p = Process(target=forever)
 *	p.start()
 *	print(p.is_alive())     # True
 *	p.terminate()           # SIGTERM
 *	p.join()                # join after terminate, so the status is known
 *	print(p.is_alive(), p.exitcode)   # False -15
 *
 * Exit 0 when the process was alive, then ended by SIGTERM; 1 otherwise.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <mproc.h>

static int forever(void *arg)
{
	for (;;)
		pause();
	return 0;
}

int main(void)
{
	struct mproc_process_opts o = { .name = "forever" };
	struct mproc_process *p;
	bool alive_before, alive_after;
	int r, code = 0;

	r = mproc_process_new(&p, forever, NULL, &o);
	if (r < 0 || (r = mproc_process_start(p)) < 0) {
		fprintf(stderr, "terminate: %s\n", mproc_strerror(r));
		mproc_process_free(p);
		return 1;
	}
	alive_before = mproc_process_is_alive(p);
	mproc_process_terminate(p);
	mproc_process_join(p, MPROC_FOREVER);
	alive_after = mproc_process_is_alive(p);
	mproc_process_exitcode(p, &code);
	printf("%s (pid %d): alive %s, after terminate() alive %s, exit code %d\n",
	       mproc_process_name(p), (int)mproc_process_pid(p), alive_before ? "True" : "False",
	       alive_after ? "True" : "False", code);
	mproc_process_free(p);
	return !(alive_before && !alive_after && code == -SIGTERM);
}
