/*
 * fuzz_conn_frame.c - libFuzzer target for the mproc_conn frame header and receive path.
 *
 * Each input is parsed as a header against several maxima (the parser must never accept a
 * length over the maximum, and must agree with the byte layout in conn_frame.h), then fed as
 * raw bytes through a pipe pair (polling and blocking receives: two code paths) and a stream
 * socket pair and received with mproc_conn_recv and
 * mproc_conn_recv_alloc until EOF or an error: no crash, no allocation over the 1 MiB maximum
 * (run libFuzzer with -malloc_limit_mb=64), no hang (the writer is closed first).
 *
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
 *		tests/fuzz/fuzz_conn_frame.c lib/conn.c lib/util.c lib/error.c -o fuzz_conn_frame
 *	./fuzz_conn_frame -malloc_limit_mb=64 -max_len=65536 tests/fuzz/corpus/conn_frame
 *
 * Without -fsanitize=fuzzer it links with tests/fuzz/replay_main.c, which feeds every file of
 * the corpus once (the meson test in suite `fault`).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_frame.h"
#include "mproc/conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const uint8_t *data, size_t size)
{
	static const size_t maxima[] = { 0, 1, 4096, (size_t)1 << 20, MPROC_CONN_MAX_LIMIT };
	struct mproc__conn_hdr h;

	for (size_t i = 0; i < sizeof(maxima) / sizeof(maxima[0]); i++) {
		int r = mproc__conn_parse_header(data, size, maxima[i], &h);

		if (size < MPROC__CONN_HDR_SIZE && r != -EAGAIN)
			abort();
		if (r == 0) {
			uint8_t again[MPROC__CONN_HDR_SIZE];

			if (h.len > maxima[i] || h.nfds > MPROC_CONN_MAX_FDS)
				abort();
			mproc__conn_make_header(again, h.len, h.nfds);
			if (memcmp(again, data, sizeof(again)) != 0)
				abort();        /* the parser accepted bytes the writer never makes */
		} else if (r != -EAGAIN && r != -EBADMSG && r != -EMSGSIZE) {
			abort();
		}
	}
}

static void drive(enum mproc_conn_transport t, double timeout, const uint8_t *data, size_t size)
{
	struct mproc_conn_opts o = { .transport = t, .simplex = true, .max_msg = (size_t)1 << 20 };
	struct mproc_conn *r, *w;
	char buf[4096];
	ssize_t n = 0;

	if (mproc_conn_pair(&r, &w, &o) < 0)
		abort();
	/* A pipe holds 64 KiB and a stream socket about 200 KiB: keep the write non-blocking. */
	if (size > 60000)
		size = 60000;
	if (size && mproc_conn_write(w, data, size) != (ssize_t)size)
		abort();
	mproc_conn_free(w);
	for (int i = 0; n >= 0; i++) {
		if (i % 2) {
			void *p = NULL;

			n = mproc_conn_recv_alloc(r, &p, timeout);
			if (n >= 0 && !p)
				abort();
			free(p);
		} else {
			n = mproc_conn_recv(r, buf, sizeof(buf), timeout);
			if (n == -EMSGSIZE) {
				void *p = NULL;

				n = mproc_conn_recv_alloc(r, &p, 0);
				free(p);
			}
		}
		if (n > (ssize_t)o.max_msg)
			abort();
	}
	if (n != MPROC_EOF && n != -EBADMSG && n != -EMSGSIZE)
		abort();        /* everything was written before close: never a timeout */
	mproc_conn_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_header(data, size);
	/* The writer is closed before reading, so blocking receives never wait. */
	drive(MPROC_CONN_PIPE, 0, data, size);
	drive(MPROC_CONN_PIPE, MPROC_FOREVER, data, size);
	drive(MPROC_CONN_STREAM, 0, data, size);
	return 0;
}
