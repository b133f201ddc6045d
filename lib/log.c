/* log.c - one write(2) per line, tagged with level, process name and pid (mproc/log.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/log.h"
#include "process_internal.h"

static atomic_int log_level = MPROC_LOG_OFF;
static atomic_int log_fd = 2;
/* Written by the library only in a child it just started (single-threaded there). It lives on
 * the fork state page (process_internal.h), which that child writes anyway. */
#define log_name (mproc__fork_state.log_name)

const char *mproc_log_process_name(void)
{
	return log_name;
}

const char *mproc_log_level_name(int level)
{
	switch (level) {
	case MPROC_LOG_DEBUG: return "DEBUG";
	case MPROC_LOG_INFO: return "INFO";
	case MPROC_LOG_WARNING: return "WARNING";
	case MPROC_LOG_ERROR: return "ERROR";
	default: return "LEVEL";
	}
}

int mproc_log_to_fd(int fd, int level)
{
	if (fd < 0 || level < MPROC_LOG_DEBUG || level > MPROC_LOG_OFF)
		return -EINVAL;
	atomic_store(&log_fd, fd);
	atomic_store(&log_level, level);
	return 0;
}

int mproc_log_to_stderr(int level)
{
	return mproc_log_to_fd(2, level);
}

bool mproc_log_enabled(int level)
{
	return level >= atomic_load_explicit(&log_level, memory_order_relaxed) &&
	       level < MPROC_LOG_OFF;
}

void mproc_vlog(int level, const char *fmt, va_list ap)
{
	char line[MPROC_LOG_LINE_MAX];
	int saved = errno, n, m;
	size_t len;

	if (!mproc_log_enabled(level))
		return;
	n = snprintf(line, sizeof(line), "[%s/%s %d] ", mproc_log_level_name(level), log_name,
		     (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		n = 0;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2) {
		/* Cut: say so, never split the line over two writes. */
		len = sizeof(line) - 2;
		memcpy(line + len - 3, "...", 3);
	}
	line[len++] = '\n';
	/* One write: O_APPEND or not, a single write(2) of <= PIPE_BUF bytes to a pipe is atomic,
	 * and to a file or tty it is one unit that other writers cannot split. */
	mproc__write_all(atomic_load(&log_fd), line, len, MPROC__NO_DEADLINE);
	errno = saved;
}

void mproc_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mproc_vlog(level, fmt, ap);
	va_end(ap);
}
