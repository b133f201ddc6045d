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
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -Ilib tests/fuzz/fuzz_manager.c \
 *	    lib/manager_server.c lib/manager_objects.c lib/manager_wire.c lib/sha256.c lib/util.c \
 *	    lib/error.c -o fz
 *	./fz -malloc_limit_mb=64 -max_len=65536 tests/fuzz/corpus/manager/
 */
#include <stdint.h>
#include <string.h>

#include "manager_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		r = mproc__mgr_conn_feed(s, c[turn], data + off, n, (int64_t)off);
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
