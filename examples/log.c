/*
 * log.c - log_to_stderr: the library's log lines, from the parent and from its children.
 * The C twin of
 *
 *	logger = multiprocessing.log_to_stderr(logging.INFO)
 *	logger.info('parent here')
 *	p = Process(target=f)               # f logs 'child here'
 *	p.start(); p.join()
 *
 * Each line reads "[LEVEL/process-name pid] message" and goes out in one write, so lines of
 * many processes never mix. Exit 0 when the levels filter as asked and the child ran, 1
 * otherwise (examples/meson.build also checks the lines themselves).
 */
#include <stdio.h>

#include <mproc.h>

static int f(void *arg)
{
	mproc_log(MPROC_LOG_INFO, "child here");
	mproc_log(MPROC_LOG_DEBUG, "below INFO: not written");
	return 0;
}

int main(void)
{
	struct mproc_process_opts o = { .name = "worker-1" };
	struct mproc_process *p = NULL;
	int r, code = -1;

	r = mproc_log_to_stderr(MPROC_LOG_INFO);
	if (r < 0)
		return 1;
	mproc_log(MPROC_LOG_INFO, "parent here");
	r = mproc_process_new(&p, f, NULL, &o);
	if (r == 0)
		r = mproc_process_start(p);
	if (r == 0)
		r = mproc_process_join(p, MPROC_FOREVER);
	if (r == 0)
		r = mproc_process_exitcode(p, &code);
	if (r < 0)
		mproc_log(MPROC_LOG_ERROR, "cannot run the child: %s", mproc_strerror(r));
	mproc_process_free(p);
	return !(r == 0 && code == 0 && mproc_log_enabled(MPROC_LOG_INFO) &&
		 !mproc_log_enabled(MPROC_LOG_DEBUG));
}
