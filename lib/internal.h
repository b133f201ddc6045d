/*
 * internal.h - helpers shared by libmproc's modules. Not installed; names are mproc__.
 *
 * Everything here is safe to call in a forked child, and, unless marked otherwise,
 * async-signal-safe (no malloc, no locks, no stdio).
 */
#ifndef MPROC_INTERNAL_H
#define MPROC_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "mproc/error.h"    /* MPROC_FOREVER */

#define MPROC__NSEC_PER_SEC INT64_C(1000000000)
#define MPROC__CACHELINE 64
#define MPROC__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Deadline in CLOCK_MONOTONIC nanoseconds; INT64_MAX means "forever". */
#define MPROC__NO_DEADLINE INT64_MAX

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t mproc__now_ns(void);

/*
 * mproc__timeout_ns - the one check of an API timeout (seconds: MPROC_FOREVER, 0 = do not
 * wait, or more), converted without reading the clock: *ns is -1 for forever (and for more than
 * ~285 years, which would overflow int64 ns), else the nanoseconds rounded up (a wait is never
 * shorter than asked). Returns 0, or -EINVAL for NaN, infinity or a negative value other than
 * MPROC_FOREVER.
 */
int mproc__timeout_ns(double timeout_s, int64_t *ns);

/*
 * mproc__timeout_ns's check alone, inline and without its conversion, for the hot paths that
 * compute a deadline only when they must wait (a queue's first try): on the bits, three integer
 * compares where the floating-point ones took eleven instructions. Valid: 0 to the largest
 * finite double (sign clear, exponent not all ones), -0.0 (which is >= 0), MPROC_FOREVER (-1.0).
 * NaN, the infinities and other negative values are not.
 */
static inline bool mproc__timeout_valid(double timeout_s)
{
	uint64_t b;

	/* 0xbff0... is -1.0, MPROC_FOREVER (util/timeout_valid checks it against the rule). */
	memcpy(&b, &timeout_s, sizeof(b));
	return b < UINT64_C(0x7ff0000000000000) || b == UINT64_C(0x8000000000000000) ||
	       b == UINT64_C(0xbff0000000000000);
}

/*
 * mproc__deadline_at - the absolute deadline timeout_ns after now_ns (-1: none), saturating at
 * MPROC__NO_DEADLINE. Returns 0, or -EINVAL for timeout_ns < -1 (the manager's wire carries
 * timeouts this way).
 */
int mproc__deadline_at(int64_t timeout_ns, int64_t now_ns, int64_t *out);

/*
 * mproc__deadline - turn an API timeout (seconds, MPROC_FOREVER, 0 = poll) into an absolute
 * CLOCK_MONOTONIC deadline in *out: mproc__timeout_ns, then mproc__deadline_at from now.
 * Returns 0, or -EINVAL for a negative timeout other than MPROC_FOREVER, NaN or infinity.
 */
int mproc__deadline(double timeout_s, int64_t *out);

/* FNV-1a, 64 bits, of n bytes: the manager's dict hash and the payload checks of the tests and
 * the benchmarks. Not cryptographic. */
uint64_t mproc__fnv1a64(const void *p, size_t n);

/* The pause of a spin-wait loop: lets the sibling hyperthread run and saves power (x86 pause,
 * arm64 yield); elsewhere a compiler barrier only. */
static inline void mproc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

/* Milliseconds left until deadline for poll(2): -1 for none, 0 if passed, rounded up. */
int mproc__poll_ms(int64_t deadline_ns);

/* Fill a timespec with the time left until deadline (NULL-able result for "forever"). */
struct timespec;
const struct timespec *mproc__timeout_ts(int64_t deadline_ns, struct timespec *ts);

/* close(2) that never retries (Linux frees the fd even on EINTR) and keeps errno. fd < 0 is a
 * no-op. Returns 0 or -errno of close. */
int mproc__close(int fd);

/* Close *fd and set it to -1. */
void mproc__closep(int *fd);

/*
 * mproc__poll1 - wait until fd has one of events, the deadline passes, or an error.
 * Returns the revents (> 0), -ETIMEDOUT, or -errno. EINTR is retried with the time left.
 */
int mproc__poll1(int fd, short events, int64_t deadline_ns);

/*
 * mproc__write_all / mproc__read_all - loop over short transfers and EINTR. The fd may be
 * non-blocking: EAGAIN then waits with poll until the deadline (MPROC__NO_DEADLINE = forever).
 * write_all uses send(MSG_NOSIGNAL) on sockets so SIGPIPE never fires, and returns -EPIPE.
 * read_all returns the count read (< len only at EOF), or -errno / -ETIMEDOUT.
 */
ssize_t mproc__write_all(int fd, const void *buf, size_t len, int64_t deadline_ns);
ssize_t mproc__read_all(int fd, void *buf, size_t len, int64_t deadline_ns);

/* Drop n bytes from the front of an iovec array (and the empty iovecs there): *iov and *cnt
 * then describe what a short readv/writev left to transfer. */
struct iovec;
void mproc__iov_advance(struct iovec **iov, int *cnt, size_t n);
/* All of the iovecs through writev (out) or readv, over short transfers and EINTR, on a
 * blocking fd; the iovecs are consumed. Returns the bytes moved (less than asked only when a
 * read met EOF) or -errno. For harnesses and tools: the library's own paths need deadlines. */
ssize_t mproc__iov_xfer(int fd, bool out, struct iovec *iov, int cnt);

/*
 * Futexes on shared memory (no FUTEX_PRIVATE_FLAG: they work across processes).
 * mproc__futex_wait blocks while *addr == val, until woken or the deadline passes. Returns 0
 * (woken, or value changed: re-check), -ETIMEDOUT, or -EINTR if a signal arrived (callers
 * loop). The deadline is CLOCK_MONOTONIC absolute (FUTEX_WAIT_BITSET).
 * mproc__futex_wake wakes up to n waiters and returns how many it woke.
 */
int mproc__futex_wait(uint32_t *addr, uint32_t val, int64_t deadline_ns);
int mproc__futex_wake(uint32_t *addr, int n);

/* SIGPIPE: block it in the calling thread around a write to a pipe so EPIPE comes back
 * instead of a signal. Returns whether a SIGPIPE was already pending (so it is not eaten).
 * Pair with mproc__sigpipe_unblock(). */
bool mproc__sigpipe_block(void);
void mproc__sigpipe_unblock(bool was_pending);

/* Set or clear O_NONBLOCK / FD_CLOEXEC; return 0 or -errno. */
int mproc__set_nonblock(int fd, bool on);
int mproc__set_cloexec(int fd, bool on);

/* The first integer in a /proc (or /sys) file, or dflt if it cannot be read. Not
 * async-signal-safe (stdio). */
long mproc__read_proc_long(const char *path, long dflt);

/* Whether the thread (or process) tid still runs: false once it is gone or a zombie (killed,
 * not yet reaped), so that a waiter need not wait for the reaper. Used to find dead lock
 * holders (sync.c, queue.c). Not async-signal-safe (snprintf). */
bool mproc__tid_alive(pid_t tid);

/* Parse a non-negative decimal integer at most max; returns 0 or -EINVAL. */
int mproc__parse_u64(const char *s, uint64_t max, uint64_t *out);

/* A name for shared objects of this process: "/mproc-<pid>-<n>" with n from a process-wide
 * atomic counter (plus 32 random bits so a recycled pid never meets an old name). buf must
 * hold MPROC__NAME_MAX bytes. Returns 0 or -ENAMETOOLONG. */
#define MPROC__NAME_MAX 64
/* Not async-signal-safe (snprintf). */
int mproc__unique_name(char *buf, size_t size);

/* log.c: the name this process logs under (set by process.c in each child it starts). */
#define MPROC__LOG_NAME_MAX 64

#endif /* MPROC_INTERNAL_H */
