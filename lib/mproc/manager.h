/*
 * mproc/manager.h - a server process that owns shared objects and serves proxies (Python's
 * multiprocessing.Manager / BaseManager).
 *
 * A manager is a separate process that holds dicts (string keys, byte values), lists (of byte
 * strings), values (an int64 or a byte string), queues (of byte strings) and locks, each known
 * by a name. Clients connect to it by address with the shared key and call proxies; every call
 * is one request and one reply, on the client's socket or, for a client on the same machine,
 * through memory it shares with the server (below). Objects live until the server exits.
 *
 * Lifecycle. mproc_manager_start() forks the server (call it before starting threads) and
 * returns once it serves; mproc_manager_address() and mproc_manager_key() give what a client
 * needs. mproc_manager_stop() ends the server, reaps it and removes its socket. The server also
 * exits on its own when its owner process exits (a parent-death pipe reaching EOF, backed by
 * PR_SET_PDEATHSIG); it ignores SIGINT so that Ctrl-C in a terminal reaches the clients first.
 * The `mproc-manager` command runs a server standalone.
 *
 * Transport and security. Local servers listen on a Unix socket inside a private mkdtemp
 * directory (mode 0700, never the abstract namespace) and accept only peers of the same uid;
 * "tcp:HOST:PORT" listens on TCP (default host 127.0.0.1), only with a key. Both sides prove
 * knowledge of the key with a mutual HMAC-SHA256 challenge within 5 s; frames before
 * authentication are at most 256 bytes, after it at most max_frame bytes (checked before any
 * allocation). The wire format is versioned, binary and carries data only, never code. HMAC
 * authenticates the peer, it does not encrypt: use a tunnel or TLS between hosts. Processes of
 * the same user are trusted (they can read the key from memory anyway).
 *
 * Shared memory (Unix sockets only). In the handshake a local client asks whether the server
 * offers a channel; before its 17th call it asks for one (16 calls on the socket first: setting
 * a channel up costs about as much as a connect, which a client that makes a few calls would
 * not get back), the server passes it a sealed memfd (two 64 KiB mailboxes) and an eventfd over
 * the socket, and calls then go through the memfd, the same frames with the same limits; while
 * both sides poll (see MPROC_MANAGER_NOSPIN) a call costs no syscall at all, and a side that sleeps is woken by
 * a futex (the client) or the eventfd (the server). A request or reply larger than a mailbox
 * goes on the socket. The socket stays open: EOF on it is how each side learns the other died
 * (a client asleep in a call looks at it after 20 ms, then at least every 250 ms). The server
 * copies every request out of the shared memory and bounds it before parsing, as it does what
 * comes off the socket. Each
 * channel costs the server two fds (its socket and the eventfd) and 132 KiB of address space,
 * of which a call touches three pages. MPROC_MANAGER_NOSHM keeps a client on the socket, and a
 * server started with it refuses channels (mproc-manager --no-shm). TCP clients never use one.
 *
 * Memory and fairness. A connection's unsent replies are bounded: once MPROC_MANAGER_PENDING_MAX
 * bytes of them wait for its client to read, the server stops reading that client's requests
 * until the client has read them. So a client that sends requests and never reads costs the
 * server at most that bound plus one reply (at most max_frame), one 64 KiB read of requests and
 * one request being received (at most max_frame), however many it sends; what clients store in
 * the objects is not bounded. A client that pipelines is served at most 64 requests, or until
 * the bound, per turn of the server's loop, then the others are: it delays them by that much
 * work at most (one request, for replies as large as the bound). Unauthenticated connections
 * are at most 64 (the oldest is dropped for a new one) and are dropped after 5 s. At its fd
 * limit (RLIMIT_NOFILE) the server accepts a new connection and closes it at once, before the
 * challenge (the client gets -EPIPE), and serves the connections it has.
 *
 * Errors. A server-side error reaches the caller as its own -errno (-ENOENT for a missing key,
 * -EINVAL for a wrong object kind, ...). A server that dies makes every call fail with -EPIPE
 * (EOF or reset) or -ETIMEDOUT (a silent peer, after call_timeout_s). After a transport error or
 * a timeout a client is broken: every later call returns -EPIPE; connect again.
 *
 * Threads and fork. A client serves one call at a time: use one client per thread, or lock
 * around it. After fork() a child must not use its parent's client (the two would interleave
 * frames on one socket, or overwrite each other's request in the shared mailbox): connect
 * again in the child. A child that inherits a client's socket
 * also keeps that connection open after the parent disconnects, so locks the parent holds are
 * released only when both have closed it: fork before connecting where that matters. Proxies
 * belong to their client. The server's death signal follows the thread that called
 * mproc_manager_start() (PR_SET_PDEATHSIG semantics): start it from a thread that outlives
 * its use, normally the main thread.
 *
 * Example: examples/manager.c (a dict shared by processes on one machine);
 * examples/manager_tcp.c with examples/manager_client.c (TCP with a key, a client started
 * separately).
 */
#ifndef MPROC_MANAGER_H
#define MPROC_MANAGER_H

#include <mproc/export.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPROC_MANAGER_KEY_MIN 32                /* bytes; shorter keys are refused */
#define MPROC_MANAGER_KEY_MAX 1024
#define MPROC_MANAGER_NAME_MAX 1024              /* object names and dict keys, in bytes */
#define MPROC_MANAGER_ADDRESS_MAX 256
#define MPROC_MANAGER_MAX_FRAME_DEFAULT (64u << 20)
/* Bytes of unsent replies at which the server stops reading a connection's requests (see
 * "Memory and fairness" above). */
#define MPROC_MANAGER_PENDING_MAX (256u << 10)

/* Flags of mproc_manager_opts and mproc_mclient_opts. By default the server busy-polls for up
 * to 50 us after serving and a client for up to 50 us after sending a request (yielding the
 * CPU between polls while another task wants it), before sleeping: a loop of calls then never waits for a
 * sleeping CPU to wake, which is most of a cross-core round trip. NOSPIN sleeps at once (for a
 * remote server, or where a few idle microseconds of CPU after each call matter more). The
 * same holds over a shared-memory channel (the polls are loads then, not syscalls). */
#define MPROC_MANAGER_NOSPIN 0x1u
/* A client on a Unix socket sends its calls through shared memory with the server (a memfd the
 * server passes after the handshake; the socket stays for authentication, frames larger than
 * the 64 KiB mailbox, and to learn that the peer died), which saves the four syscalls of a
 * socket round trip while both sides are awake. NOSHM keeps a client on the socket; a server
 * started with it refuses channels. TCP clients never use one. */
#define MPROC_MANAGER_NOSHM 0x2u
#define MPROC_MANAGER_FLAGS_ALL (MPROC_MANAGER_NOSPIN | MPROC_MANAGER_NOSHM)

struct mproc_manager;           /* the owner's handle on a server process */
struct mproc_mclient;           /* a connection to a server */
struct mproc_dict;              /* proxies: a name on the server and the client that reaches it */
struct mproc_list;
struct mproc_mvalue;
struct mproc_mqueue;
struct mproc_mlock;

struct mproc_manager_opts {
	/* "unix:PATH" or "tcp:HOST:PORT" (HOST: an IPv4 or [IPv6] literal or localhost;
	 * "tcp:PORT" means 127.0.0.1; PORT 0: an ephemeral port, read it back with
	 * mproc_manager_address()). NULL: a socket in a new private directory. */
	const char *address;
	/* The shared key (MPROC_MANAGER_KEY_MIN..MAX bytes), copied. NULL: 32 random bytes
	 * from getrandom(2). */
	const void *key;
	size_t keylen;
	size_t max_frame;       /* largest request or reply after authentication; 0: 64 MiB */
	unsigned flags;         /* MPROC_MANAGER_NOSPIN, MPROC_MANAGER_NOSHM */
};

/*
 * mproc_manager_start - fork a server process listening on o->address (see opts).
 * Returns 0 once the server serves, -EINVAL (NULL out, bad address, key length, max_frame < 4096,
 * unknown flags), -EADDRINUSE (a live server already there), -ENAMETOOLONG (Unix path too long), or
 * -errno of socket/bind/fork or of the server's own setup (-EMFILE for its epoll, its signalfd or
 * the fd it keeps in reserve for its fd limit: it has then exited, been reaped and removed its
 * socket).
 * A stale Unix socket file (no one listening) is replaced. Not in a forked child of a
 * multi-threaded process.
 */
MPROC_EXPORT int mproc_manager_start(struct mproc_manager **out,
		const struct mproc_manager_opts *o);

/*
 * mproc_manager_stop - end the server (EOF on its death pipe, then SIGKILL after 1 s), reap it,
 * remove its socket file and private directory, and free m. NULL is a no-op. Returns 0, or the
 * negative signal number / positive exit status if the server had died abnormally.
 */
MPROC_EXPORT int mproc_manager_stop(struct mproc_manager *m);

/* The address clients connect to ("unix:/tmp/mproc-<pid>-xxxxxx/manager.sock", "tcp:127.0.0.1:4242"). */
MPROC_EXPORT const char *mproc_manager_address(const struct mproc_manager *m);
/* The key (pass it to other processes over a pipe or inheritance, never argv or env). */
MPROC_EXPORT const void *mproc_manager_key(const struct mproc_manager *m, size_t *keylen);
MPROC_EXPORT pid_t mproc_manager_pid(const struct mproc_manager *m);

struct mproc_mclient_opts {
	double connect_timeout_s;       /* connect + handshake; 0: 5 s */
	double call_timeout_s;          /* a reply later than this breaks the client; 0: 10 s */
	unsigned flags;                 /* MPROC_MANAGER_NOSPIN, MPROC_MANAGER_NOSHM */
};

/*
 * mproc_manager_connect - connect to a server and run the mutual handshake; on a Unix socket,
 * also ask whether the server offers a shared-memory channel (unless MPROC_MANAGER_NOSHM). The
 * client sets the channel up before its 17th call (a client that makes a few calls never pays
 * for it: about as much as a connect); short of fds or memory then, or with a server that
 * refuses, it stays on the socket, no error.
 * Returns 0, -EACCES (wrong key, on either side), -EINVAL (NULL out or key, bad address or key
 * length, a negative or NaN timeout, unknown flags), -ENAMETOOLONG (Unix path too long),
 * -ECONNREFUSED / -ENOENT (no server there), -ETIMEDOUT, -EPIPE (closed during the
 * handshake: also a server at its fd limit), -EBADMSG (not an mproc manager, or another
 * version; or a malformed channel answer), -EMFILE (no fd free for the socket), -ENOMEM.
 * A server of a build before the channel closes the connection on the question: the client
 * then connects once more, on the socket only.
 */
MPROC_EXPORT int mproc_manager_connect(struct mproc_mclient **out, const char *address,
		const void *key, size_t keylen);
MPROC_EXPORT int mproc_manager_connect_opts(struct mproc_mclient **out, const char *address,
		const void *key, size_t keylen, const struct mproc_mclient_opts *o);
/* Close the connection and free c; proxies made from c must be closed first. NULL is a no-op. */
MPROC_EXPORT void mproc_manager_disconnect(struct mproc_mclient *c);
/* A round trip that does nothing (health check). 0 or -errno. */
MPROC_EXPORT int mproc_manager_ping(struct mproc_mclient *c);

/*
 * Proxies. mproc_<kind>_open finds the object of that name on the server, or creates it; the
 * name is 1..MPROC_MANAGER_NAME_MAX bytes without NUL. -EINVAL if the name exists with another
 * kind, -ENOSPC when the server holds too many objects. _free frees the proxy only (the object
 * stays on the server); NULL is a no-op. _close is the old name of _free, kept for callers
 * written before it (it releases the proxy too; elsewhere in mproc _close refuses new work).
 *
 * Every call below returns 0 (or a size/count >= 0), or: -EPIPE (server gone or client broken),
 * -ETIMEDOUT (no reply in time; the client is then broken), -EMSGSIZE (request or reply over
 * the frame limit), -ENOMEM, -EINVAL before anything is sent (a NULL proxy, key or out
 * pointer; a NULL buffer with a nonzero length or cap; a key of 0 or over NAME_MAX bytes; a
 * negative or NaN timeout), or the server's own error as documented per call.
 */
MPROC_EXPORT int mproc_dict_open(struct mproc_dict **out, struct mproc_mclient *c,
		const char *name);
MPROC_EXPORT void mproc_dict_free(struct mproc_dict *d);
MPROC_EXPORT void mproc_dict_close(struct mproc_dict *d);
/* Insert or replace key (a NUL-terminated string of 1..NAME_MAX bytes). */
MPROC_EXPORT int mproc_dict_set(struct mproc_dict *d, const char *key, const void *val, size_t len);
/* Copy the value into buf (up to cap bytes) and return its full length; a length > cap means
 * buf holds a prefix. -ENOENT if the key is missing. */
MPROC_EXPORT ssize_t mproc_dict_get(struct mproc_dict *d, const char *key, void *buf, size_t cap);
/* -ENOENT if missing. */
MPROC_EXPORT int mproc_dict_del(struct mproc_dict *d, const char *key);
MPROC_EXPORT ssize_t mproc_dict_len(struct mproc_dict *d);

MPROC_EXPORT int mproc_list_open(struct mproc_list **out, struct mproc_mclient *c,
		const char *name);
MPROC_EXPORT void mproc_list_free(struct mproc_list *l);
MPROC_EXPORT void mproc_list_close(struct mproc_list *l);
MPROC_EXPORT int mproc_list_append(struct mproc_list *l, const void *val, size_t len);
/* Item index (negative counts from the end, as in Python); -ERANGE out of range. Returns the
 * item's length as dict_get. */
MPROC_EXPORT ssize_t mproc_list_get(struct mproc_list *l, int64_t index, void *buf, size_t cap);
MPROC_EXPORT ssize_t mproc_list_len(struct mproc_list *l);

/* A value holds an int64 (initially 0) or a byte string. */
MPROC_EXPORT int mproc_mvalue_open(struct mproc_mvalue **out, struct mproc_mclient *c,
		const char *name);
MPROC_EXPORT void mproc_mvalue_free(struct mproc_mvalue *v);
MPROC_EXPORT void mproc_mvalue_close(struct mproc_mvalue *v);
MPROC_EXPORT int mproc_mvalue_set(struct mproc_mvalue *v, int64_t x);
/* -EINVAL if the value holds bytes. */
MPROC_EXPORT int mproc_mvalue_get(struct mproc_mvalue *v, int64_t *x);
/* Atomically add delta and store the result in *result (NULL-able); -EINVAL if it holds bytes,
 * -ERANGE on overflow (the value is unchanged). */
MPROC_EXPORT int mproc_mvalue_add(struct mproc_mvalue *v, int64_t delta, int64_t *result);
MPROC_EXPORT int mproc_mvalue_set_bytes(struct mproc_mvalue *v, const void *val, size_t len);
/* As dict_get; -EINVAL if the value holds an int. */
MPROC_EXPORT ssize_t mproc_mvalue_get_bytes(struct mproc_mvalue *v, void *buf, size_t cap);

/* A FIFO of byte strings; maxsize 0 means unbounded (maxsize is fixed by the first open). */
MPROC_EXPORT int mproc_mqueue_open(struct mproc_mqueue **out, struct mproc_mclient *c,
		const char *name, size_t maxsize);
MPROC_EXPORT void mproc_mqueue_free(struct mproc_mqueue *q);
MPROC_EXPORT void mproc_mqueue_close(struct mproc_mqueue *q);
/* timeout_s: 0 = do not wait (-EAGAIN when full), MPROC_FOREVER, or seconds (-ETIMEDOUT). The
 * server parks the request; it keeps serving others meanwhile. */
MPROC_EXPORT int mproc_mqueue_put(struct mproc_mqueue *q, const void *val, size_t len,
		double timeout_s);
/* As dict_get; -EAGAIN when empty with timeout 0, -ETIMEDOUT after the timeout. */
MPROC_EXPORT ssize_t mproc_mqueue_get(struct mproc_mqueue *q, void *buf, size_t cap,
		double timeout_s);
MPROC_EXPORT ssize_t mproc_mqueue_len(struct mproc_mqueue *q);

/* A lock owned by a client connection. A connection that closes while holding it releases it
 * and the next acquire returns -EOWNERDEAD (the lock is then held: the state it guards is
 * suspect). */
MPROC_EXPORT int mproc_mlock_open(struct mproc_mlock **out, struct mproc_mclient *c,
		const char *name);
MPROC_EXPORT void mproc_mlock_free(struct mproc_mlock *l);
MPROC_EXPORT void mproc_mlock_close(struct mproc_mlock *l);
/* 0, -EAGAIN (timeout 0, held), -ETIMEDOUT, -EOWNERDEAD, -EDEADLK (this client holds it). */
MPROC_EXPORT int mproc_mlock_acquire(struct mproc_mlock *l, double timeout_s);
/* 0, or -EPERM if this client does not hold it. */
MPROC_EXPORT int mproc_mlock_release(struct mproc_mlock *l);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_MANAGER_H */
