/*
 * mproc/conn.h - a connected pair of endpoints (Python's Pipe() and Connection).
 *
 * mproc_conn_pair() makes two endpoints over one of three transports: pipe2() (two pipes when
 * duplex), socketpair(SOCK_STREAM) or socketpair(SOCK_SEQPACKET). Simplex pairs carry data one
 * way only: *a is the read end, *b the write end (Python's `r, w = Pipe(duplex=False)`).
 *
 * Messages are framed: an 8-byte header (magic, flags, fd count, 32-bit length) then the body.
 * Empty messages are kept; messages are never merged or split; a receive buffer that is too
 * small gives -EMSGSIZE and the message stays queued for the next call. A frame longer than
 * the pair's maximum (opts.max_msg, default 64 MiB) is refused before anything is allocated
 * (-EMSGSIZE) and a malformed header gives -EBADMSG; after -EBADMSG the endpoint is broken
 * (every later receive returns -EBADMSG: a byte stream cannot be resynchronised).
 *
 * Lifecycle: mproc_conn_pair() makes both ends; each end is destroyed with mproc_conn_close()
 * (NULL-safe). Closing an end in every process that holds it makes the peer see MPROC_EOF on
 * receive and -EPIPE on send; SIGPIPE is never raised (MSG_NOSIGNAL on sockets, SIGPIPE blocked
 * in the calling thread around pipe writes unless opts.sigpipe_ignored says it cannot fire).
 *
 * Locking and fork: an endpoint survives fork(); after it, several processes may send on the
 * same endpoint at once: each endpoint owns a small MAP_SHARED page with a robust,
 * process-shared mutex that serialises whole frames (pipe writes above PIPE_BUF may interleave
 * by POSIX). A sender killed while holding it does not wedge the others (the next one takes the
 * lock over), but the frame it was writing is torn and the reader gets -EBADMSG or MPROC_EOF.
 * Only one process or thread may receive on an endpoint at a time: received bytes that belong
 * to the next frame are buffered in the endpoint's private memory. Threads of one process must
 * not use one endpoint concurrently. All fds are close-on-exec.
 *
 * Timeouts are seconds (double): MPROC_FOREVER waits without limit, 0 polls. EINTR is retried
 * against a CLOCK_MONOTONIC deadline. mproc_conn_send has no timeout (like Python's
 * Connection.send): it blocks until the frame is written or the peer is gone.
 * mproc_conn_send_timeout bounds the wait; a frame that could not be written whole before
 * the deadline cannot be taken back from a byte stream, so a timeout after part of it went
 * breaks the endpoint's sending side (see there).
 *
 * Same-user processes are trusted (as in CPython): the frame header is checked, the body is
 * opaque bytes.
 *
 * Example: examples/pipe.c (Python's Pipe() example).
 */
#ifndef MPROC_CONN_H
#define MPROC_CONN_H

#include <mproc/export.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <mproc/error.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mproc_conn;

enum mproc_conn_transport {
	MPROC_CONN_PIPE = 0,            /* pipe2(); duplex uses two pipes; no fd passing */
	MPROC_CONN_STREAM = 1,          /* socketpair(AF_UNIX, SOCK_STREAM) */
	MPROC_CONN_SEQPACKET = 2,       /* socketpair(AF_UNIX, SOCK_SEQPACKET) */
};

/* Default and largest frame maximum. */
#define MPROC_CONN_MAX_DEFAULT ((size_t)64 << 20)
#define MPROC_CONN_MAX_LIMIT ((size_t)0xffffffffu)
/* Pipe transport: the capacity asked for each pipe when opts.pipe_bytes is 0. */
#define MPROC_CONN_PIPE_BYTES_DEFAULT ((size_t)256 << 10)
/* Most fds one message can carry (the kernel's SCM_MAX_FD). */
#define MPROC_CONN_MAX_FDS 253

struct mproc_conn_opts {
	enum mproc_conn_transport transport;    /* default MPROC_CONN_PIPE */
	bool simplex;           /* one-way pair: *a reads, *b writes (default duplex) */
	size_t max_msg;         /* frame maximum in bytes, 0 = MPROC_CONN_MAX_DEFAULT */
	/* The caller guarantees that SIGPIPE is ignored or blocked in every thread that sends on
	 * this pair (CPython ignores it at startup). Pipe writes then skip blocking SIGPIPE
	 * around each frame, which costs two syscalls per message (about +40% on a small round
	 * trip where syscalls are dear). Sockets never need it (MSG_NOSIGNAL). If the promise is
	 * broken, a send to a closed pipe raises SIGPIPE. -EPIPE is returned either way. */
	bool sigpipe_ignored;
	/* Pipe transport: capacity asked of the kernel for each pipe (F_SETPIPE_SZ), 0 =
	 * MPROC_CONN_PIPE_BYTES_DEFAULT (256 KiB).
	 * Best effort: the kernel's limits (fs.pipe-max-size, pipe-user-pages-soft) may keep the
	 * default 64 KiB, and that is not an error. A larger pipe lets a 64 KiB message and its
	 * 8-byte header go in one write instead of two rounds of wake-ups. */
	size_t pipe_bytes;
};

/*
 * mproc_conn_pair - make a connected pair of endpoints.
 * @a, @b: receive the endpoints (for a simplex pair *a reads and *b writes).
 * @opts: NULL for the defaults (duplex, pipe, 64 MiB).
 *
 * Returns 0, or -EINVAL (NULL out pointer, unknown transport, max_msg over
 * MPROC_CONN_MAX_LIMIT), -EMFILE/-ENFILE, -ENOMEM. On failure nothing is left open.
 * Not for a forked child (allocates).
 */
MPROC_EXPORT int mproc_conn_pair(struct mproc_conn **a, struct mproc_conn **b,
		    const struct mproc_conn_opts *opts);

/*
 * mproc_conn_free - close the endpoint's fds (and any fds received but not yet delivered),
 * unmap its lock page and free it. NULL is a no-op. Returns nothing: close is never retried.
 * Uses free(): in a forked child of a multi-threaded parent, _exit() without freeing instead.
 *
 * mproc_conn_close - the old name of mproc_conn_free, kept for callers written before it: it
 * releases the endpoint too. (Elsewhere in mproc, _close refuses new work and _free releases;
 * a conn has no state between the two, so it has only _free.)
 */
MPROC_EXPORT void mproc_conn_free(struct mproc_conn *c);
MPROC_EXPORT void mproc_conn_close(struct mproc_conn *c);

/*
 * mproc_conn_send - send one framed message of len bytes (0 allowed: an empty message).
 * Returns len, or -EINVAL (NULL c, NULL buf with len > 0), -EMSGSIZE (len over the pair's
 * maximum; nothing sent), -EBADF (the read end of a simplex pair), -EPIPE (peer closed, or a
 * timed send tore a frame on this endpoint: mproc_conn_send_timeout),
 * another -errno of write/sendmsg. Blocks until the whole frame is written. Safe in a forked
 * child (no allocation).
 * Pipes: when the peer last received on another CPU than the caller runs on, the frame goes
 * out with pwritev2(RWF_NOWAIT) first and the rest with a blocking writev, which waits out a
 * full pipe without sleeping (README, "Pipes"); each receive notes its CPU for the sender.
 */
MPROC_EXPORT ssize_t mproc_conn_send(struct mproc_conn *c, const void *buf, size_t len);

/*
 * mproc_conn_send_timeout - mproc_conn_send that waits at most timeout_s seconds (0: only if
 * it can go at once; MPROC_FOREVER: as mproc_conn_send) for the send lock and for room in the
 * channel. Writes never block past the deadline (MSG_DONTWAIT, pwritev2 RWF_NOWAIT).
 * Returns len, or -ETIMEDOUT; the other errors as mproc_conn_send, plus -EINVAL for a bad
 * timeout. On -ETIMEDOUT:
 *  - if nothing of the frame was written (the usual case when the peer does not read: a frame
 *    of up to PIPE_BUF bytes, or one seqpacket packet, is written whole or not at all, and a
 *    larger one whenever the channel has room for all of it) the endpoint is unchanged;
 *  - if part of it was written, the frame is torn and the endpoint cannot send again: every
 *    later send and write on it, in every process that holds it, returns -EPIPE. The peer gets
 *    the frames before it, then -ETIMEDOUT or -EBADMSG for the torn one (MPROC_EOF never).
 * Safe in a forked child (no allocation).
 */
MPROC_EXPORT ssize_t mproc_conn_send_timeout(struct mproc_conn *c, const void *buf, size_t len,
				double timeout_s);

/*
 * mproc_conn_recv - receive one framed message into buf (size bytes).
 * @timeout_s: how long to wait for a message (MPROC_FOREVER, 0 = poll).
 *
 * Returns the message length (0 for an empty message), MPROC_EOF (peer closed at a frame
 * boundary), -EMSGSIZE (the message is longer than size, or carries fds: it stays queued),
 * -ETIMEDOUT (nothing arrived in time; a partial header, or a partial frame of up to 4 KiB on
 * a pipe or stream transport, stays queued; if the time ran out in the middle of a larger frame
 * the endpoint is broken), -EBADMSG (malformed or torn frame, EOF inside a frame), -EINVAL (NULL
 * c, NULL buf with size > 0, size > SSIZE_MAX, bad timeout), -EBADF (write end of a simplex
 * pair). Safe in a forked child.
 */
MPROC_EXPORT ssize_t mproc_conn_recv(struct mproc_conn *c, void *buf, size_t size,
		double timeout_s);

/*
 * mproc_conn_recv_alloc - receive one message into a new malloc()ed buffer (*out, which the
 * caller frees; never NULL on success, even for an empty message). The length comes from the
 * header and is checked against the pair's maximum before the allocation. Returns as
 * mproc_conn_recv, plus -ENOMEM (the message stays queued) and -EINVAL for a NULL out.
 * Allocates: not in a forked child of a multi-threaded parent.
 */
MPROC_EXPORT ssize_t mproc_conn_recv_alloc(struct mproc_conn *c, void **out, double timeout_s);

/*
 * mproc_conn_poll - whether a receive would not block: 1 (data, or EOF, is waiting), 0 (the
 * time ran out). Never consumes anything. Returns -EINVAL (bad timeout, NULL c), -EBADF
 * (write end of a simplex pair). After a partial frame arrived poll may return 1 while
 * recv still waits for the rest (as Python's Connection.poll).
 */
MPROC_EXPORT int mproc_conn_poll(struct mproc_conn *c, double timeout_s);

/*
 * mproc_conn_send_fds - send a message with nfds file descriptors (SCM_RIGHTS). Socket
 * transports only. The fds are duplicated into the receiver; the caller keeps its own.
 * Returns len, or -EINVAL (nfds 0 or over MPROC_CONN_MAX_FDS, NULL fds, a negative fd),
 * -EOPNOTSUPP (pipe transport), and the errors of mproc_conn_send; -EBADF for an fd that is
 * not open.
 */
MPROC_EXPORT ssize_t mproc_conn_send_fds(struct mproc_conn *c, const void *buf, size_t len,
			    const int *fds, size_t nfds);

/*
 * mproc_conn_recv_fds - receive a message and the fds it carries.
 * @fds, @nfds: in: room for *nfds fds; out: the number received (0 for a plain message).
 * The fds are new, close-on-exec, and the caller's to close. Returns as mproc_conn_recv;
 * -EINVAL also for a NULL nfds, or a NULL fds with *nfds > 0;
 * -EMSGSIZE also when the message carries more fds than *nfds (it stays queued, fds too);
 * -EBADMSG when the ancillary data is missing, truncated or does not match the header (every
 * fd that did arrive is closed, nothing leaks).
 */
MPROC_EXPORT ssize_t mproc_conn_recv_fds(struct mproc_conn *c, void *buf, size_t size, int *fds,
			    size_t *nfds, double timeout_s);

/*
 * mproc_conn_write / mproc_conn_read - raw bytes, no framing (os.write/os.read on the fd).
 * Do not mix with framed calls on one endpoint unless the peer reads them the same way.
 * write returns len or -errno (-EPIPE, -EBADF, -EINVAL: NULL c, NULL buf with len > 0, len
 * over SSIZE_MAX); it takes the send lock, so raw writes never interleave with frames. read
 * returns 1..size bytes, MPROC_EOF, -ETIMEDOUT or -errno (-EINVAL: NULL c or buf, size 0 or
 * over SSIZE_MAX, bad timeout; -EBADF: the write end of a simplex pair); it first hands out
 * bytes already buffered by framed receives.
 */
MPROC_EXPORT ssize_t mproc_conn_write(struct mproc_conn *c, const void *buf, size_t len);
MPROC_EXPORT ssize_t mproc_conn_read(struct mproc_conn *c, void *buf, size_t size,
		double timeout_s);

/* The fd to poll for readability (-1 for a write-only end), for event loops. */
MPROC_EXPORT int mproc_conn_fileno(const struct mproc_conn *c);

/* The pair's transport name: "pipe", "stream", "seqpacket". */
MPROC_EXPORT const char *mproc_conn_transport_name(enum mproc_conn_transport t);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_CONN_H */
