/*
 * mproc/error.h - error codes of libmproc.
 *
 * Every libmproc function that can fail returns 0 (or a count, for data calls) on
 * success and a negative errno on failure: -ETIMEDOUT, -EPIPE, -EINVAL... as libuv
 * does. One code of our own, MPROC_EOF, lies below -4095 so it can never collide with
 * an errno. mproc_strerror() names every code. Nothing here keeps state, so all of it
 * may be called from any thread and in a forked child.
 *
 * Fixed meanings across the library:
 *   -ETIMEDOUT   a timed call ran out of time (the object is unchanged)
 *   -EAGAIN      a non-blocking call would block (queue full or empty)
 *   -EPIPE       the peer is gone, or the object was closed
 *   -EOWNERDEAD  the holder of a lock died while holding it (now held by the caller)
 *   -ECHILD      a worker died while it held the task
 *   -ECANCELED   the operation was cancelled
 *   -EBADMSG     a malformed frame arrived
 *   -EMSGSIZE    a size over a limit (never silently clamped)
 *   -EACCES      authentication failed
 *   -EINVAL      bad arguments (refused before any side effect)
 *
 * Example: every program in examples/ checks its calls this way and prints mproc_strerror().
 */
#ifndef MPROC_ERROR_H
#define MPROC_ERROR_H

#include <mproc/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* End of stream: the peer closed its end cleanly and nothing more will arrive. */
#define MPROC_EOF (-4096)

/* Timeouts are in seconds (double). MPROC_FOREVER waits without a limit; 0 polls. Any other
 * negative value, NaN or infinity is refused with -EINVAL. */
#define MPROC_FOREVER (-1.0)

/*
 * mproc_strerror - a static, human-readable description of a libmproc return code.
 * @code: a value returned by a libmproc function (0, a negative errno, or MPROC_EOF).
 *
 * Returns a string such as "ETIMEDOUT: timed out" that stays valid for the life of the
 * program. Positive values are treated as their negation (pthread style). Never NULL.
 * Async-signal-safe.
 */
MPROC_EXPORT const char *mproc_strerror(int code);

/*
 * mproc_errname - the symbolic name alone ("ETIMEDOUT", "MPROC_EOF", "OK").
 * Returns "E?" for an unknown code. Never NULL. Async-signal-safe.
 */
MPROC_EXPORT const char *mproc_errname(int code);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_ERROR_H */
