/*
 * manager_client.c - the client of manager_tcp.c: a separate program that connects to a
 * Manager over TCP with the shared key, reads the server's greeting and writes a reply.
 *
 *	build/examples/manager_client tcp:HOST:PORT KEYFILE
 *
 * KEYFILE holds the key (32..1024 bytes; a trailing newline is ignored) and must be readable
 * by its owner only: a key is never given on the command line. Exit 0 when the greeting was
 * "hello" and the reply was stored, 1 otherwise, 2 on bad usage.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mproc.h>

int main(int argc, char **argv)
{
	char key[MPROC_MANAGER_KEY_MAX + 1], greeting[64] = "";
	struct mproc_mclient *c = NULL;
	struct mproc_dict *d = NULL;
	struct stat st;
	ssize_t keylen = -1, n = -1;
	int fd, r;

	if (argc != 3) {
		fprintf(stderr, "manager_client: need ADDRESS KEYFILE (usage: manager_client "
			"tcp:HOST:PORT KEYFILE)\n");
		return 2;
	}
	fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && !(st.st_mode & 077))
		keylen = read(fd, key, sizeof(key));
	if (fd >= 0)
		close(fd);
	while (keylen > 0 && key[keylen - 1] == '\n')
		keylen--;
	if (keylen < MPROC_MANAGER_KEY_MIN || keylen > MPROC_MANAGER_KEY_MAX) {
		fprintf(stderr, "manager_client: %s: not a key file (32..1024 bytes, mode 0600)\n",
			argv[2]);
		return 2;
	}
	r = mproc_manager_connect(&c, argv[1], key, (size_t)keylen);
	if (r == 0)
		r = mproc_dict_open(&d, c, "shared");
	if (r == 0)
		n = mproc_dict_get(d, "greeting", greeting, sizeof(greeting) - 1);
	if (n >= 0 && n < (ssize_t)sizeof(greeting))
		greeting[n] = '\0';
	if (r == 0)
		r = mproc_dict_set(d, "reply", "hello from the client", 21);
	if (r < 0)
		fprintf(stderr, "manager_client: %s: %s\n", argv[1], mproc_strerror(r));
	else
		printf("the server says: '%s'\n", greeting);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	return !(r == 0 && strcmp(greeting, "hello") == 0);
}
