/*
 * conn_internal.h - what conn.c (send, lifecycle) and conn_recv.c (receive) share: the
 * endpoint's layout, the page shared by every process that holds it, and three small helpers.
 * Not installed. The wire header is conn_frame.h.
 */
#ifndef MPROC_CONN_INTERNAL_H
#define MPROC_CONN_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "conn_frame.h"
#include "internal.h"
#include "mproc/conn.h"

/*
 * Read-ahead for the pipe transport: one read(2) fetches a small frame's header and
 * body together (one syscall per message instead of two). Bodies longer than what the
 * read-ahead holds are read straight into the caller's buffer, so large messages are not
 * copied twice. Reads never go past the end of the current frame except into this buffer.
 */
#define CONN_RA_SIZE 4096
/* The blocking pipe receive reads header, body and read-ahead in one readv(2) (conn_recv_pipe):
 * up to this much lands in the caller's buffer, and whatever of it belongs to later frames
 * is moved into the read-ahead, which is sized for that. */
#define CONN_FAST_BODY (64 * 1024)
#define CONN_RA_CAP (MPROC__CONN_HDR_SIZE + CONN_FAST_BODY + CONN_RA_SIZE)
/* fds received with the current frame's header and not yet handed out (stream sockets). */
#define CONN_PEND_FDS MPROC_CONN_MAX_FDS
/* SOCK_SEQPACKET: a frame is sent as packets of at most this many bytes (header included),
 * since one packet must fit the socket's send buffer (about 208 KiB by default). */
#define CONN_SEQ_CHUNK (64 * 1024)

/* The page shared by every process that holds the endpoint: its send lock. */
struct conn_shared {
	pthread_mutex_t send_lock;      /* robust, process-shared: whole frames, never interleaved */
	/* A timed send ran out of time after part of its frame was written: the stream cannot be
	 * resynchronised, so every later send, in every process, returns -EPIPE. */
	_Atomic int send_broken;
	/* Pipes: the CPU a reader of this endpoint's frames last received on, -1 unknown. The
	 * reader's end maps this page too (mproc_conn.peer) and stores only when it changed, so
	 * the line stays shared and the sender's load is a cache hit (conn_reader_elsewhere). */
	_Alignas(64) _Atomic int reader_cpu;
};

struct mproc_conn {
	int rfd, wfd;                   /* -1 where the end cannot read / write; equal for sockets */
	enum mproc_conn_transport transport;
	size_t max;                     /* frame maximum */
	size_t seq_chunk;               /* seqpacket packet size */
	bool sigpipe_ignored;           /* opts.sigpipe_ignored: no SIGPIPE guard on pipe writes */
	bool no_rwf_nowait;             /* pwritev2(RWF_NOWAIT) unsupported on this pipe */
	struct conn_shared *sh;         /* NULL for a read-only end */
	struct conn_shared *peer;       /* pipes: a view of the sending end's page, or NULL */
	int broken;                     /* 0, or -EBADMSG once the byte stream lost sync */
	size_t ra_off, ra_len;          /* read-ahead window [ra_off, ra_len) */
	size_t npend;                   /* fds in pend[] */
	int pend[CONN_PEND_FDS];
	unsigned char ra[CONN_RA_CAP];
};

static inline bool conn_is_sock(const struct mproc_conn *c)
{
	return c->transport != MPROC_CONN_PIPE;
}

static inline void conn_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mproc__close(fds[i]);
}

/* The byte stream lost sync: drop the pending fds and fail every later receive. */
static inline int conn_break(struct mproc_conn *c)
{
	conn_close_fds(c->pend, c->npend);
	c->npend = 0;
	c->broken = -EBADMSG;
	return -EBADMSG;
}

#endif /* MPROC_CONN_INTERNAL_H */
