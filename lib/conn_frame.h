/*
 * conn_frame.h - the wire header of mproc_conn frames (internal, not installed), split out so
 * the fuzz target tests/fuzz/fuzz_conn_frame.c drives the same parser the library uses.
 *
 * A frame is an 8-byte header then `len` body bytes:
 *	byte 0..1  magic 'm' 'C'
 *	byte 2     flags, must be 0 (reserved: a non-zero value is a malformed frame)
 *	byte 3     number of fds carried by SCM_RIGHTS with the header, 0..MPROC_CONN_MAX_FDS
 *	byte 4..7  body length, unsigned 32-bit little-endian
 * Pure functions: async-signal-safe, no allocation.
 */
#ifndef MPROC_CONN_FRAME_H
#define MPROC_CONN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define MPROC__CONN_HDR_SIZE 8
#define MPROC__CONN_MAGIC0 'm'
#define MPROC__CONN_MAGIC1 'C'

struct mproc__conn_hdr {
	uint32_t len;           /* body bytes */
	unsigned nfds;          /* fds that came with the header */
};

/*
 * mproc__conn_parse_header - parse the n bytes at p (n may be short) against the frame maximum.
 * Returns 0 (*h filled), -EAGAIN (fewer than MPROC__CONN_HDR_SIZE bytes: need more), -EBADMSG
 * (bad magic, reserved flags set, fd count over the kernel's limit) or -EMSGSIZE (len > max).
 */
int mproc__conn_parse_header(const void *p, size_t n, size_t max, struct mproc__conn_hdr *h);

/* Write a header for len bytes and nfds fds into out (MPROC__CONN_HDR_SIZE bytes). */
void mproc__conn_make_header(void *out, uint32_t len, unsigned nfds);

/* For tests: the CPU on which a reader of c's frames last received, -1 where unknown or where
 * c does not send on a pipe. A pipe send tries pwritev2(RWF_NOWAIT) first when it is another
 * CPU than the sender's (conn.c, conn_reader_elsewhere). */
struct mproc_conn;
int mproc__conn_reader_cpu(const struct mproc_conn *c);

#endif /* MPROC_CONN_FRAME_H */
