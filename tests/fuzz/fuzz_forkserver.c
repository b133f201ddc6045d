/*
 * fuzz_forkserver.c - libFuzzer target for the request a client sends the forkserver (and a
 * parent hands an exec'd child image in a memfd): mproc__req_parse, and the server's read of it
 * from a connection, mproc__fs_read_request.
 *
 * Each input is parsed as a whole request: the parser returns 0, -EBADMSG or -EMSGSIZE and
 * nothing else; what it accepts is within the limits (entry, name, argument), has a non-empty
 * entry unless it asks for a forkserver, has no NUL inside a string, and is exactly what
 * mproc__req_build makes from the decoded fields (so the parser accepts nothing the writer never
 * makes). Then the same bytes are written to a stream socket pair whose writer is closed and
 * read back by the server's reader: it never blocks (EOF ends short inputs), never returns
 * anything but 0/-EBADMSG/-EMSGSIZE, and agrees with the parser when the input is one request.
 *
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
 *		tests/fuzz/fuzz_forkserver.c lib/process.c lib/forkserver.c lib/log.c \
 *		lib/util.c lib/error.c -lpthread -o fuzz_forkserver
 *	./fuzz_forkserver -malloc_limit_mb=256 -max_len=4096 tests/fuzz/corpus/forkserver
 *
 * Without -fsanitize=fuzzer it links with tests/fuzz/replay_main.c, which feeds every file of
 * the corpus once (the meson test in suite `fault`).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "process_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(const uint8_t *data, size_t size, int *parsed)
{
	struct mproc__req req;
	void *again = NULL;
	size_t len = 0;
	int r = mproc__req_parse(data, size, &req);

	*parsed = r;
	if (r != 0) {
		if (r != -EBADMSG && r != -EMSGSIZE)
			abort();
		return;
	}
	if (strlen(req.entry) > MPROC_ENTRY_NAME_MAX || strlen(req.name) > MPROC_PROCESS_NAME_MAX ||
	    req.arg_len > MPROC_PROCESS_ARG_MAX || (req.arg_len && !req.arg) ||
	    (req.flags & ~(unsigned)MPROC__REQ_FLAGS_ALL) || req.ppid < 0)
		abort();
	if (!req.entry[0] && !(req.flags & MPROC__REQ_FORKSERVER))
		abort();
	if (req.arg && ((const uint8_t *)req.arg < data ||
			(const uint8_t *)req.arg + req.arg_len > data + size))
		abort();        /* the argument must point into the input */
	if (mproc__req_build(&again, &len, req.flags, req.ppid, req.entry[0] ? req.entry : NULL,
			     req.name[0] ? req.name : NULL, req.arg, req.arg_len) != 0)
		abort();
	if (len != size || memcmp(again, data, size) != 0)
		abort();        /* accepted bytes the writer never makes */
	free(again);
}

static void check_read(const uint8_t *data, size_t size, int parsed)
{
	static char *buf;
	struct mproc__req req;
	size_t whole = size;
	int sv[2], r;

	if (!buf && !(buf = malloc(MPROC__REQ_MAX)))
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	/* A stream socket holds about 200 KiB: keep the write from blocking. */
	if (size > 60000)
		size = 60000;
	if (size && write(sv[1], data, size) != (ssize_t)size)
		abort();
	close(sv[1]);
	r = mproc__fs_read_request(sv[0], buf, &req);
	close(sv[0]);
	if (r != 0 && r != -EBADMSG && r != -EMSGSIZE)
		abort();
	/* One whole request, nothing after it: the reader sees what the parser sees. Trailing
	 * bytes are left unread by the reader (one request per connection), so only a parser
	 * success must be a reader success. */
	if (parsed == 0 && size == whole && r != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int parsed;

	check_parse(data, size, &parsed);
	check_read(data, size, parsed);
	return 0;
}
