/*
 * mproc-manager - run a manager server standalone.
 *
 *	mproc-manager --listen tcp:127.0.0.1:4242 --key-file ~/.mproc-key
 *	MPROC_KEY_FILE=~/.mproc-key mproc-manager --listen unix:/run/user/1000/mgr.sock
 *
 * The key comes from a file that only its owner can read (never the command line, which every
 * user can read in /proc/PID/cmdline, nor the environment). SIGTERM stops the server and
 * removes its Unix socket. `mproc-manager --version` prints the version of mproc it belongs to.
 * Exit status: 0 on success, 1 on failure, 2 on bad usage (one line on stderr: the problem, and
 * the way out).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "manager_internal.h"
#include "mproc/error.h"
#include "mproc/version.h"

static const char usage[] =
	"usage: mproc-manager --listen unix:PATH|tcp:HOST:PORT [--key-file FILE] [--no-spin] "
	"[--no-shm] [--max-frame BYTES]\n"
	"  --listen ADDR      where to listen (TCP: use 127.0.0.1 unless clients are remote)\n"
	"  --key-file FILE    the shared key (32..1024 bytes), a file mode 0600 or stricter;\n"
	"                     default: $MPROC_KEY_FILE. Keys are never taken on the command line.\n"
	"  --max-frame BYTES  largest request after authentication (default 67108864)\n"
	"  --no-spin          sleep at once after serving (default: poll up to 50 us first,\n"
	"                     which saves clients in a loop of calls a wakeup each)\n"
	"  --no-shm           refuse shared-memory channels: local clients stay on the socket\n"
	"                     (default: they call through shared memory, no syscall per call)\n"
	"  --help             this text\n"
	"  --version          print \"mproc-manager X.Y.Z\" and exit\n";

static int bad(const char *msg, const char *arg)
{
	fprintf(stderr, "mproc-manager: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	return 2;
}

/* Read the key file; 0, or 2 after printing why. */
static int read_key(const char *path, uint8_t *key, size_t *keylen)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return bad(errno == ENOENT ? "no such key file (give --key-file FILE)" :
			   strerror(errno), path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return bad("key file is not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return bad("key file is accessible by group or others (chmod 600)", path);
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return bad("key file belongs to another user", path);
	}
	while (got <= MPROC_MANAGER_KEY_MAX) {
		n = read(fd, key + got, MPROC_MANAGER_KEY_MAX + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	while (got && (key[got - 1] == '\n' || key[got - 1] == '\r'))
		got--;
	if (got < MPROC_MANAGER_KEY_MIN || got > MPROC_MANAGER_KEY_MAX)
		return bad("key must be 32..1024 bytes", path);
	*keylen = got;
	return 0;
}

/* Long (about 80 lines): the options, one case each in the order of the usage text, then the
 * serve call; nothing in it is worth a name of its own. */
int main(int argc, char **argv)
{
	static uint8_t key[MPROC_MANAGER_KEY_MAX + 1];
	struct mproc__mgr_config cfg = { 0 };
	struct mproc__mgr_addr a;
	const char *listen_s = NULL, *key_file = NULL;
	char addr[MPROC_MANAGER_ADDRESS_MAX];
	uint64_t max_frame = MPROC_MANAGER_MAX_FRAME_DEFAULT;
	size_t keylen = 0;
	bool spin = true, shm = true;
	sigset_t set;
	int i, r, fd;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("mproc-manager %d.%d.%d\n", MPROC_VERSION_MAJOR, MPROC_VERSION_MINOR,
			       MPROC_VERSION_PATCH);
			return 0;
		}
		if (strncmp(arg, "--key=", 6) == 0 || strcmp(arg, "--key") == 0 ||
		    strncmp(arg, "--authkey", 9) == 0)
			return bad("keys on the command line are readable by every user; "
				   "use --key-file", NULL);
		if (strcmp(arg, "--no-spin") == 0) {
			spin = false;
			continue;
		}
		if (strcmp(arg, "--no-shm") == 0) {
			shm = false;
			continue;
		}
		if (strcmp(arg, "--listen") != 0 && strcmp(arg, "--key-file") != 0 &&
		    strcmp(arg, "--max-frame") != 0)
			return bad("unknown option (see --help)", arg);
		if (!val)
			return bad("option needs a value (see --help)", arg);
		i++;
		if (strcmp(arg, "--listen") == 0)
			listen_s = val;
		else if (strcmp(arg, "--key-file") == 0)
			key_file = val;
		else if (mproc__parse_u64(val, SIZE_MAX, &max_frame) < 0 || max_frame < 4096)
			return bad("--max-frame must be an integer >= 4096 (see --help)", val);
	}
	if (!listen_s)
		return bad("--listen is required (see --help)", NULL);
	r = mproc__mgr_addr_parse(listen_s, &a);
	if (r < 0)
		return bad("bad address (give unix:PATH or tcp:HOST:PORT)", listen_s);
	if (!key_file)
		key_file = getenv("MPROC_KEY_FILE");
	if (!key_file || !*key_file)
		return bad("no key: give --key-file FILE or set MPROC_KEY_FILE", NULL);
	r = read_key(key_file, key, &keylen);
	if (r)
		return r;

	fd = mproc__mgr_listen(&a);
	if (fd < 0) {
		fprintf(stderr, "mproc-manager: %s: %s\n", listen_s, mproc_strerror(fd));
		return 1;
	}
	if (mproc__mgr_addr_format(&a, addr, sizeof(addr)) == 0) {
		printf("mproc-manager: listening on %s\n", addr);
		fflush(stdout);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	cfg.key = key;
	cfg.keylen = keylen;
	cfg.max_frame = (size_t)max_frame;
	cfg.log_errors = true;
	cfg.spin_ns = spin ? MPROC__MGR_SPIN_NS : 0;
	cfg.no_chan = !shm;
	r = mproc__mgr_serve(fd, -1, NULL, &cfg);
	memset(key, 0, sizeof(key));
	close(fd);
	if (!a.tcp)
		unlink(a.path);
	if (r < 0) {
		fprintf(stderr, "mproc-manager: %s\n", mproc_strerror(r));
		return 1;
	}
	return 0;
}
