/*
 * mproc/log.h - level-filtered logging to stderr (or any fd), tagged with level, pid and process
 * name: Python's multiprocessing.log_to_stderr.
 *
 * A line reads "[WARNING/worker-3 1234] message\n". Each line goes out in one write(2) of at
 * most MPROC_LOG_LINE_MAX bytes (longer messages are cut and end in "..."), so lines from many
 * processes sharing the fd never interleave mid-line. Logging is off until mproc_log_to_stderr
 * or mproc_log_to_fd is called. The settings are process-wide (atomics, no lock) and survive
 * fork; the process name is set by the library in each child it starts. mproc_log may be called
 * from any thread and in a forked child (it uses vsnprintf, so not from a signal handler).
 *
 * Example: examples/log.c (log_to_stderr from a parent and its child).
 */
#ifndef MPROC_LOG_H
#define MPROC_LOG_H

#include <mproc/export.h>

#include <stdarg.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mproc_log_level {
	MPROC_LOG_DEBUG = 10,
	MPROC_LOG_INFO = 20,
	MPROC_LOG_WARNING = 30,
	MPROC_LOG_ERROR = 40,
	MPROC_LOG_OFF = 100,
};

#define MPROC_LOG_LINE_MAX 1024

/* Log lines at level or above to fd 2. Returns 0, or -EINVAL for a level outside
 * [MPROC_LOG_DEBUG, MPROC_LOG_OFF]. */
MPROC_EXPORT int mproc_log_to_stderr(int level);
/* The same to any fd (the caller keeps it open). Returns 0 or -EINVAL (bad level, fd < 0). */
MPROC_EXPORT int mproc_log_to_fd(int fd, int level);
/* Whether a line at level would be written. */
MPROC_EXPORT bool mproc_log_enabled(int level);
/* Write one line (a trailing newline is added). */
MPROC_EXPORT void mproc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
MPROC_EXPORT void mproc_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf,
		2, 0)));
/* The name this process logs under: "MainProcess", or the name the library gave it. */
MPROC_EXPORT const char *mproc_log_process_name(void);
/* "DEBUG", "INFO", "WARNING", "ERROR", or "LEVEL<n>". */
MPROC_EXPORT const char *mproc_log_level_name(int level);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_LOG_H */
