/*
 * fuzz_manager.c - libFuzzer target for the manager's frame parser and request handler
 * (lib/manager_server.c, lib/manager_objects.c), without sockets.
 *
 * Input: byte 0 selects the state (bit 0: start authenticated, else in the handshake); byte 1
 * the chunk size the rest is fed in (1..256, so frames split at every boundary); the rest are
 * bytes from a client. Two connections share the server's objects and take turns per chunk
 * (bit 1 of byte 0, and always when one is parked), so one serves the other's parked queue
 * get or lock wait, or releases it by closing. The frame limit is 64 KiB here so that no input can make the target
 * allocate much: an allocation driven by a claimed length would show up as an OOM.
 *
 * Bit 2 of byte 0: the shared-memory channel's path instead (mproc__mgr_conn_feed_box, what the
 * server does with a local client's mailbox): each step takes a u16 claimed length, then up
 * to that many bytes as the mailbox's contents (the rest of the mailbox zero), so claimed and
 * real lengths disagree in every way a client could make them. CHANNEL itself is refused here
 * (-EOPNOTSUPP: no loop to make one).
 *
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -Ilib tests/fuzz/fuzz_manager.c \
 *	    lib/manager_server.c lib/manager_objects.c lib/manager_wire.c lib/manager_chan.c \
 *	    lib/sha256.c lib/util.c lib/error.c -o fz
 *	./fz -malloc_limit_mb=64 -max_len=65536 tests/fuzz/corpus/manager/
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "manager_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The claimed length of a mailbox step (bit 2 of byte 0) at p, n >= 2 bytes left. */
static uint32_t box_claim(const uint8_t *p)
{
	uint32_t claim = (uint32_t)p[0] | (uint32_t)p[1] << 8;

	return claim == 0xffff ? MPROC__MGR_CHAN_BOX + 1 : claim;       /* 0xffff: over it */
}

/* The input one mailbox step uses: the claim, then up to that many bytes. */
static size_t box_step(const uint8_t *p, size_t n)
{
	uint32_t claim;

	if (n < 2)
		return n;
	claim = box_claim(p);
	return 2 + (n - 2 < claim ? n - 2 : claim);
}

/* One mailbox step of n = box_step() bytes. Returns n, or 0 (not ready: parked), or -1 when
 * the connection must be closed. */
static ssize_t feed_box(struct mproc__mgr *s, struct mproc__mgr_conn *c, const uint8_t *p,
			size_t n, int64_t now)
{
	static uint8_t box[MPROC__MGR_CHAN_BOX], buf[MPROC__MGR_CHAN_BOX];
	int r;

	if (n < 2)
		return (ssize_t)n;
	memset(box, 0, sizeof(box));
	memcpy(box, p + 2, n - 2);
	r = mproc__mgr_conn_feed_box(s, c, box, box_claim(p), buf, now);
	if (r == -EAGAIN)
		return 0;
	return r < 0 ? -1 : (ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = "mproc-fuzz-key-0123456789abcdef";
	struct mproc__mgr_config cfg = { key, sizeof(key), 65536 };
	struct mproc__mgr *s = NULL;
	struct mproc__mgr_conn *c[2] = { NULL, NULL };
	bool alive[2] = { true, true };
	size_t chunk, off = 2, n;
	ssize_t r;
	int turn = 0, i, stalls = 0;

	if (size < 2)
		return 0;
	chunk = (size_t)data[1] + 1;
	if (mproc__mgr_new(&s, &cfg) < 0)
		return 0;
	for (i = 0; i < 2; i++) {
		if (mproc__mgr_conn_new(s, -1, 0, &c[i]) < 0)
			goto out;
		if (data[0] & 1)
			mproc__mgr_conn_set_authed(c[i]);
		mproc__mgr_conn_out(c[i])->len = 0;
	}
	while (off < size && (alive[0] || alive[1]) && stalls < 3) {
		if ((data[0] & 2) && alive[turn ^ 1])
			turn ^= 1;
		if (!alive[turn])
			turn ^= 1;
		n = size - off < chunk ? size - off : chunk;
		if (data[0] & 4) {
			n = box_step(data + off, size - off);
			r = feed_box(s, c[turn], data + off, n, (int64_t)off);
		} else {
			r = mproc__mgr_conn_feed(s, c[turn], data + off, n, (int64_t)off);
		}
		/* Replies are discarded. */
		mproc__mgr_conn_out(c[turn])->len = 0;
		mproc__mgr_conn_out(c[turn])->off = 0;
		if (r < 0) {
			/* Closed: dropping it releases its locks and its parked request. */
			mproc__mgr_conn_free(s, c[turn]);
			c[turn] = NULL;
			alive[turn] = false;
			off += n;
			continue;
		}
		off += (size_t)r;
		/* Parked (consumed less): the other connection may serve it (a put, a
		 * release); give up once neither makes progress. */
		if ((size_t)r < n) {
			stalls = r == 0 ? stalls + 1 : 0;
			turn ^= 1;
		} else {
			stalls = 0;
		}
	}
out:
	for (i = 0; i < 2; i++)
		mproc__mgr_conn_free(s, c[i]);
	mproc__mgr_free(s);
	return 0;
}
