/*
 * manager_tcp.c - a Manager served over TCP with a key, reached by a client program started
 * separately (examples/manager_client.c). The C twin of
 *
 *	# server                                    # client, another program (or machine)
 *	shared = {'greeting': 'hello'}              m = BaseManager(address=('127.0.0.1', PORT),
 *	BaseManager.register('get_dict',                            authkey=KEY)
 *	                     callable=lambda: shared)   m.connect()
 *	m = BaseManager(address=('127.0.0.1', 0),   d = m.get_dict()
 *	                authkey=KEY)                print(d.get('greeting'))
 *	m.start()                                   d.update(reply='hello from the client')
 *
 *	build/examples/manager_tcp                  prints the client's command, then waits
 *	build/examples/manager_tcp CLIENT           runs CLIENT ADDRESS KEYFILE itself (the test)
 *
 * Both sides prove they know the key (a mutual HMAC-SHA256 challenge); the key travels in a
 * file only its owner can read, never on a command line (every user can read those). HMAC
 * authenticates, it does not encrypt: across a network, use a tunnel. This one listens on
 * 127.0.0.1; give "tcp:0.0.0.0:PORT" to serve other machines.
 * Exit 0 when the client read the greeting and wrote its reply, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mproc.h>

extern char **environ;

/* A fresh 64-character key in dir/key, mode 0600. */
static int write_key(const char *path, char *key, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[32];
	int fd;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) || len < 2 * sizeof(raw))
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		key[2 * i] = hex[raw[i] >> 4];
		key[2 * i + 1] = hex[raw[i] & 15];
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, key, 2 * sizeof(raw)) != (ssize_t)(2 * sizeof(raw))) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/mproc-example-XXXXXX", keyfile[64], key[64], reply[64] = "";
	struct mproc_manager_opts o = { .address = "tcp:127.0.0.1:0", .key = key,
					.keylen = sizeof(key) };
	struct mproc_manager *m = NULL;
	struct mproc_mclient *c = NULL;
	struct mproc_dict *d = NULL;
	ssize_t n = -1;
	int r = -1, status = -1;

	if (!mkdtemp(dir))
		return 1;
	snprintf(keyfile, sizeof(keyfile), "%s/key", dir);
	if (write_key(keyfile, key, sizeof(key)) < 0)
		goto out;
	r = mproc_manager_start(&m, &o);        /* address "tcp:127.0.0.1:<the port it got>" */
	if (r == 0)
		r = mproc_manager_connect(&c, mproc_manager_address(m), key, sizeof(key));
	if (r == 0)
		r = mproc_dict_open(&d, c, "shared");
	if (r == 0)
		r = mproc_dict_set(d, "greeting", "hello", 5);
	if (r < 0)
		goto out;
	if (argc > 1) {                         /* the test: start the client ourselves */
		char *cargv[] = { argv[1], (char *)mproc_manager_address(m), keyfile, NULL };
		pid_t pid;

		if (posix_spawn(&pid, argv[1], NULL, NULL, cargv, environ) != 0 ||
		    waitpid(pid, &status, 0) != pid)
			goto out;
	} else {                                /* by hand: wait up to 5 minutes for a reply */
		printf("serving on %s; in another terminal run:\n  manager_client %s %s\n",
		       mproc_manager_address(m), mproc_manager_address(m), keyfile);
		fflush(stdout);
		for (int i = 0; i < 3000 && mproc_dict_get(d, "reply", reply, 1) == -ENOENT; i++)
			nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	}
	n = mproc_dict_get(d, "reply", reply, sizeof(reply) - 1);
	if (n >= 0 && n < (ssize_t)sizeof(reply))
		reply[n] = '\0';
	printf("the client replied: '%s'\n", reply);
out:
	if (r < 0)
		fprintf(stderr, "manager_tcp: %s\n", mproc_strerror(r));
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	mproc_manager_stop(m);
	unlink(keyfile);
	rmdir(dir);
	return !(r == 0 && (argc < 2 || status == 0) && strcmp(reply, "hello from the client") == 0);
}
