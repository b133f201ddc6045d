/*
 * manager_internal.h - the manager's internals: SHA-256/HMAC, the wire format, and the
 * server's state machine (kept apart from sockets so the fuzz target can drive it).
 *
 * Wire format, version 1. Every frame is a 12-byte header and a body:
 *	u64 body length (little-endian) | u8 version (1) | u8 op | u16 flags (0)
 * The length is checked against the limit (256 bytes for the whole frame before
 * authentication, max_frame after) before anything is allocated, and a body that comes in
 * pieces gets memory as its bytes arrive, never from the claimed length; any violation closes the
 * connection (no resynchronisation). Integers are little-endian; a string is u32 length + bytes
 * (no NUL, 1..MPROC_MANAGER_NAME_MAX); a trailing payload is "the rest of the body".
 *
 * Handshake (mutual, both directions prove the key; domain-separated so a reply cannot be
 * reflected):
 *	S->C CHALLENGE  ns[32]
 *	C->S RESPONSE   HMAC(key, "mproc-manager-1 client" | ns)[32] | nc[32]
 *	S->C WELCOME    HMAC(key, "mproc-manager-1 server" | nc | ns)[32] | u64 max_frame
 *	     or FAILURE (empty), then the server closes.
 * Requests (C->S) then get exactly one REPLY (S->C): i32 status (0 or -errno) | payload.
 *
 * The shared-memory channel (manager_chan.c). A client on a Unix socket may then send CHANNEL;
 * the server answers with the mailbox size and passes a memfd and an eventfd (SCM_RIGHTS, on
 * the reply's bytes), or refuses (-EOPNOTSUPP: TCP, the fuzz target, a server started with
 * MPROC_MANAGER_NOSHM, or output already pending). CHANNEL with the one-byte body
 * MPROC__MGR_CHAN_ASK only asks: the same answer (u32 mailbox bytes, or -EOPNOTSUPP), nothing
 * made or passed. The client asks right behind RESPONSE (the same write), and sends the empty
 * CHANNEL only after MPROC__MGR_CHAN_AFTER calls: making, passing, mapping and tearing down a
 * channel costs about as much as a whole connect, which a client that makes a few calls never
 * gets back. A server of a build before the channel hangs up on CHANNEL (an op it does not
 * know) after sending WELCOME; the client then connects once more without asking. Requests may
 * then go through the memfd's request mailbox and their replies come back in its reply mailbox:
 * the very same frames, limits and parser as on the socket. The socket stays: it authenticated the client, it
 * carries frames larger than a mailbox, and its EOF is how each side learns that the other
 * died. See struct mproc__mgr_chan_hdr for the protocol.
 */
#ifndef MPROC_MANAGER_INTERNAL_H
#define MPROC_MANAGER_INTERNAL_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "internal.h"
#include "mproc/error.h"
#include "mproc/manager.h"

/* --- sha256.c --- */
#define MPROC__SHA256_LEN 32
struct mproc__sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t used;
};
struct mproc__iov {
	const void *base;
	size_t len;
};
void mproc__sha256_init(struct mproc__sha256 *s);
void mproc__sha256_update(struct mproc__sha256 *s, const void *data, size_t n);
void mproc__sha256_final(struct mproc__sha256 *s, uint8_t out[MPROC__SHA256_LEN]);
void mproc__sha256(const void *data, size_t n, uint8_t out[MPROC__SHA256_LEN]);
void mproc__hmac_sha256(const void *key, size_t keylen, const struct mproc__iov *parts,
			size_t nparts, uint8_t out[MPROC__SHA256_LEN]);
bool mproc__ct_equal(const void *a, const void *b, size_t n);

/* --- manager_wire.c --- */
#define MPROC__MW_VERSION 1
#define MPROC__MW_HDR 12
#define MPROC__MW_PREAUTH_MAX 256       /* whole frame, header included */
#define MPROC__MW_NONCE 32
#define MPROC__MW_HANDSHAKE_S 5

/*
 * Busy-polling before sleeping, on both sides: the server after each round that served
 * something, the client after sending a request (not for calls that wait on others: queue and
 * lock waits). A peer that answers within the budget then finds the other side awake, which
 * saves the wakeup of a sleeping CPU on every call (most of a cross-core round trip, and more
 * under a hypervisor). Bounded: an idle server or client sleeps after at most
 * MPROC__MGR_SPIN_NS.
 *
 * Yielding (mproc__mgr_spin_yield): a peer on the same CPU needs the CPU to answer (a spinner
 * that kept it would delay the very reply it waits for), so the first poll of every spin
 * yields; when that sched_yield() took long (another task ran: the peer, or anything else that
 * wants this CPU) every poll yields, else only every MPROC__MGR_YIELD_EVERY-th one. A yield with
 * nobody else runnable is a bare syscall (a switch to another task and back costs several
 * times more, hence MPROC__MGR_YIELD_BUSY_NS between the two), which a yield on every poll would
 * add to every poll period, and so to the time a spinner takes to see a message from a peer on
 * another core. The threshold errs low: a bare yield taken for a busy one only costs a yield on
 * that poll, and since every spin starts with a yield, a same-CPU peer gets the CPU at once
 * whichever way the first one is classed. What is left of a round trip is then mostly its four
 * syscalls (bench_manager sets manager/raw_rtt, a bare socket round trip, beside it), which a
 * local client's shared-memory channel does without (struct mproc__mgr_chan_hdr below): there
 * a poll is MPROC__MGR_CHAN_POLL_LOADS loads of the mailbox, under the same rules.
 *
 * Adaptive: after MPROC__MGR_SPIN_FAILS spins in a row that ran out (a peer that thinks between
 * calls, a remote server, more spinners than CPUs), each side spins only on every
 * MPROC__MGR_SPIN_PROBE-th wait until a spin pays off again. The probe escapes the state where
 * both sides sleep (each spin fails because the other side sleeps) whenever a wakeup costs less
 * than the budget, which is the case on an unloaded machine.
 */
#define MPROC__MGR_SPIN_NS 50000
#define MPROC__MGR_SPIN_FAILS 4
#define MPROC__MGR_SPIN_PROBE 16
#define MPROC__MGR_YIELD_EVERY 16
#define MPROC__MGR_YIELD_BUSY_NS 2000   /* a sched_yield() this long let another task run */

struct mproc__mgr_spin {
	int64_t budget_ns;      /* 0: never spin */
	unsigned fails;         /* spins in a row that ran out */
	unsigned waits;         /* waits since spinning was suspended */
};

/* How long to poll before this wait sleeps (0: sleep at once). */
static inline int64_t mproc__mgr_spin_budget(struct mproc__mgr_spin *s)
{
	if (s->fails < MPROC__MGR_SPIN_FAILS)
		return s->budget_ns;
	return ++s->waits % MPROC__MGR_SPIN_PROBE == 0 ? s->budget_ns : 0;
}

/* After a wait that spun: did the spin see the event? */
static inline void mproc__mgr_spin_result(struct mproc__mgr_spin *s, bool got)
{
	if (got) {
		s->fails = 0;
		s->waits = 0;
	} else if (s->fails < MPROC__MGR_SPIN_FAILS) {
		s->fails++;
	}
}

/*
 * Before poll number `poll` (0, 1, ...) of a spin: yield the CPU when someone else may want it
 * (see above). *busy starts false and carries whether the last yield let another task run.
 */
static inline void mproc__mgr_spin_yield(unsigned poll, bool *busy)
{
	int64_t t;

	if (!*busy && poll % MPROC__MGR_YIELD_EVERY != 0)
		return;
	t = mproc__now_ns();
	sched_yield();
	*busy = mproc__now_ns() - t > MPROC__MGR_YIELD_BUSY_NS;
}

enum mproc__mw_op {
	MPROC__MW_CHALLENGE = 1,
	MPROC__MW_RESPONSE = 2,
	MPROC__MW_WELCOME = 3,
	MPROC__MW_FAILURE = 4,

	MPROC__MW_OPEN = 16,            /* u8 kind, u64 param, str name -> u32 id */
	MPROC__MW_DICT_SET,             /* u32 id, str key, rest */
	MPROC__MW_DICT_GET,             /* u32 id, str key -> rest */
	MPROC__MW_DICT_DEL,             /* u32 id, str key */
	MPROC__MW_DICT_LEN,             /* u32 id -> u64 */
	MPROC__MW_LIST_APPEND,          /* u32 id, rest */
	MPROC__MW_LIST_GET,             /* u32 id, i64 index -> rest */
	MPROC__MW_LIST_LEN,             /* u32 id -> u64 */
	MPROC__MW_VALUE_GET,            /* u32 id -> i64 (status 0) */
	MPROC__MW_VALUE_SET,            /* u32 id, i64 */
	MPROC__MW_VALUE_ADD,            /* u32 id, i64 delta -> i64 */
	MPROC__MW_VALUE_SET_BYTES,      /* u32 id, rest */
	MPROC__MW_VALUE_GET_BYTES,      /* u32 id -> rest */
	MPROC__MW_QUEUE_PUT,            /* u32 id, i64 timeout_ns (-1 forever), rest */
	MPROC__MW_QUEUE_GET,            /* u32 id, i64 timeout_ns -> rest */
	MPROC__MW_QUEUE_LEN,            /* u32 id -> u64 */
	MPROC__MW_LOCK_ACQUIRE,         /* u32 id, i64 timeout_ns */
	MPROC__MW_LOCK_RELEASE,         /* u32 id */
	MPROC__MW_PING,                 /* - */
	MPROC__MW_CHANNEL,              /* - -> u32 mailbox bytes, with SCM_RIGHTS memfd, eventfd;
					 * u8 MPROC__MGR_CHAN_ASK -> u32 mailbox bytes, no fds */
	MPROC__MW_OP_LAST = MPROC__MW_CHANNEL,

	MPROC__MW_REPLY = 64,           /* i32 status, payload */
};

enum mproc__mw_kind {
	MPROC__MW_KIND_DICT = 1,
	MPROC__MW_KIND_LIST,
	MPROC__MW_KIND_VALUE,
	MPROC__MW_KIND_QUEUE,
	MPROC__MW_KIND_LOCK,
};

struct mproc__mw_hdr {
	uint64_t len;
	uint8_t op;
};

/* Parse a header; 0, -EBADMSG (version, flags, unknown op) or -EMSGSIZE (len > limit). */
int mproc__mw_hdr_parse(const uint8_t *p, uint64_t limit, struct mproc__mw_hdr *h);
void mproc__mw_hdr_put(uint8_t *p, uint64_t len, uint8_t op);

/* A bounds-checked reader over a body: every get fails (returns false) once past the end. */
struct mproc__mw_rd {
	const uint8_t *p;
	size_t len, off;
};
bool mproc__mw_get_u8(struct mproc__mw_rd *r, uint8_t *v);
bool mproc__mw_get_u32(struct mproc__mw_rd *r, uint32_t *v);
bool mproc__mw_get_u64(struct mproc__mw_rd *r, uint64_t *v);
bool mproc__mw_get_i64(struct mproc__mw_rd *r, int64_t *v);
bool mproc__mw_get_bytes(struct mproc__mw_rd *r, size_t n, const uint8_t **v);
/* A string: 1..MPROC_MANAGER_NAME_MAX bytes, no NUL. */
bool mproc__mw_get_str(struct mproc__mw_rd *r, const uint8_t **v, uint32_t *n);
void mproc__mw_get_rest(struct mproc__mw_rd *r, const uint8_t **v, size_t *n);
bool mproc__mw_done(const struct mproc__mw_rd *r);

/* A growable output buffer (the connection's pending output, the client's request). */
struct mproc__mw_buf {
	uint8_t *p;
	size_t len, cap, off;   /* off: bytes already written to the socket */
};
int mproc__mw_reserve(struct mproc__mw_buf *b, size_t more);
int mproc__mw_put(struct mproc__mw_buf *b, const void *v, size_t n);
void mproc__mw_put_u32(uint8_t *p, uint32_t v);
void mproc__mw_put_u64(uint8_t *p, uint64_t v);
uint32_t mproc__mw_u32(const uint8_t *p);
uint64_t mproc__mw_u64(const uint8_t *p);
/* Drop the written bytes [0, off) (only between frames: offsets into the buffer move). */
void mproc__mw_compact(struct mproc__mw_buf *b);
void mproc__mw_buf_free(struct mproc__mw_buf *b);

/* The two MACs of the handshake. */
void mproc__mw_mac_client(const void *key, size_t keylen, const uint8_t ns[MPROC__MW_NONCE],
			  uint8_t out[MPROC__SHA256_LEN]);
void mproc__mw_mac_server(const void *key, size_t keylen, const uint8_t nc[MPROC__MW_NONCE],
			  const uint8_t ns[MPROC__MW_NONCE], uint8_t out[MPROC__SHA256_LEN]);
/* getrandom(2) that fills all of buf; 0 or -errno. */
int mproc__random(void *buf, size_t n);

/* --- manager_chan.c: the shared-memory channel of a local client --- */

/*
 * The memfd: this header page, then the request mailbox, then the reply mailbox, each
 * MPROC__MGR_CHAN_BOX bytes. One request is in flight per connection (a client makes one call
 * at a time), so each mailbox holds one frame; the sequence numbers say whose turn it is.
 *
 * A request: the client writes the frame into req[] and its length into req_len, then stores
 * req_seq + 1 (release); the server loads req_seq (acquire), and a value other than the last
 * it took (its own copy, never read back from here) means a request. The server copies the
 * length once, bounds it (MPROC__MW_HDR..MPROC__MGR_CHAN_BOX, and the frame's own header must
 * say the same), then copies the frame out of the mailbox before parsing it: the client can
 * write the memory at any time, so nothing is parsed in place (no TOCTOU) and no value read
 * from here is used as an index or a length without that check.
 *
 * A reply: the server copies it into rep[], stores rep_len, then stores the request's sequence
 * number in rep_seq (release). rep_len 0 means the reply was larger than the mailbox and comes
 * on the socket instead: the client, which waits for exactly one reply, reads it there. A
 * request larger than the mailbox is sent on the socket by the client, and the server answers
 * a request on the socket it came from, so the one reply a client waits for is always where
 * it looks. The server takes a request from the mailbox only when the connection has nothing
 * else under way (no reply unsent, not parked, no socket frame half read), so the replies stay
 * in request order even for a client that mixes both.
 *
 * Sleeping. The server sleeps in epoll_wait, which also watches the channel's eventfd: it
 * stores srv_sleeping = 1, fences (seq_cst), then looks at every req_seq once more before it
 * sleeps; a client stores req_seq, fences (seq_cst), then loads srv_sleeping, and writes the
 * eventfd only when it is set. Of the two fenced store-then-load pairs at least one load sees
 * the other side's store (store buffering is what the fences rule out), so either the server
 * sees the request before sleeping or the client sees the flag and wakes it: no lost wakeup,
 * and no syscall while the server is awake. The reply side is the same with cli_waiting and a
 * futex on rep_seq (FUTEX_WAIT rechecks rep_seq in the kernel, so a wake that comes between
 * the client's last check and its sleep is not lost). A sleeping client wakes after
 * MPROC__MGR_CHAN_SLICE_NS, then after slices twice as long up to MPROC__MGR_CHAN_SLICE_MAX_NS,
 * to look at its socket: EOF there means the server died, which nothing in the shared memory
 * would say (so a caller learns of it within a quarter of a second).
 */
#define MPROC__MGR_CHAN_BOX (64u << 10)
#define MPROC__MGR_CHAN_HDR 4096u
#define MPROC__MGR_CHAN_SIZE (MPROC__MGR_CHAN_HDR + 2 * MPROC__MGR_CHAN_BOX)
#define MPROC__MGR_CHAN_SLICE_NS (20 * 1000000)         /* the first; doubling up to: */
#define MPROC__MGR_CHAN_SLICE_MAX_NS (250 * 1000000)    /* a call parked for long wakes 4/s */
/* Loads of the mailbox per spin poll: a poll of shared memory costs a few ns, a socket poll (a
 * recv, an epoll_wait) a microsecond or so; batching keeps the yield and epoll cadence of
 * mproc__mgr_spin_yield and MPROC__MGR_EPOLL_EVERY in the same units of time. */
#define MPROC__MGR_CHAN_POLL_LOADS 64
/*
 * CHANNEL's body when the client only asks whether the server offers a channel. A client sets
 * its channel up before the call that follows MPROC__MGR_CHAN_AFTER calls on the socket: the
 * break-even of the rent-or-buy kind (ski rental), as the channel costs about 70 us once (the
 * memfd and eventfd made, passed and mapped, then unmapped and closed by both sides) and saves
 * about 6 us per call (a socket round trip of ~8 us against ~1.7 us, same CPU, on a 2-core VM),
 * so ~12 calls pay for it; a client that stops sooner has paid at most twice what it would have
 * with hindsight.
 */
#define MPROC__MGR_CHAN_ASK 1
#define MPROC__MGR_CHAN_AFTER 16

struct mproc__mgr_chan_hdr {
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t req_seq;    /* client -> server */
	_Atomic uint32_t req_len;
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t rep_seq;    /* server -> client; futex */
	_Atomic uint32_t rep_len;                               /* 0: on the socket */
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t srv_sleeping;
	_Alignas(MPROC__CACHELINE) _Atomic uint32_t cli_waiting;
};

/* The mailboxes of a mapping. */
static inline uint8_t *mproc__mgr_chan_req(void *map)
{
	return (uint8_t *)map + MPROC__MGR_CHAN_HDR;
}

static inline uint8_t *mproc__mgr_chan_rep(void *map)
{
	return (uint8_t *)map + MPROC__MGR_CHAN_HDR + MPROC__MGR_CHAN_BOX;
}

/*
 * mproc__mgr_chan_create - the server's half: a sealed memfd of MPROC__MGR_CHAN_SIZE bytes (its
 * size sealed, so a client cannot shrink it and make the server's accesses fault), mapped at
 * *map, and a nonblocking eventfd. Returns 0 with *memfd (to pass, then close) and *efd, or
 * -errno (-ENOSPC rather than a SIGBUS later where memory is short).
 */
int mproc__mgr_chan_create(void **map, int *memfd, int *efd);
/*
 * mproc__mgr_chan_attach - the client's half: map a memfd received from the server after
 * checking it is a regular file of exactly MPROC__MGR_CHAN_SIZE bytes. Closes nothing.
 * Returns 0 or -EBADMSG (wrong size or type), -errno of fstat/mmap.
 */
int mproc__mgr_chan_attach(int memfd, void **map);
void mproc__mgr_chan_unmap(void *map);

/* --- manager_server.c --- */
struct mproc__mgr;              /* objects + connections, no sockets */
struct mproc__mgr_conn;

struct mproc__mgr_config {
	const void *key;
	size_t keylen;
	size_t max_frame;
	bool log_errors;        /* one stderr line per refused connection (the command only:
				 * the library never prints) */
	int64_t spin_ns;        /* poll this long after serving before sleeping; 0: never */
	bool no_chan;           /* refuse shared-memory channels (MPROC_MANAGER_NOSHM) */
};

int mproc__mgr_new(struct mproc__mgr **out, const struct mproc__mgr_config *cfg);
void mproc__mgr_free(struct mproc__mgr *s);
/* A connection on fd (-1 for the fuzz target); queues the CHALLENGE in its output. */
int mproc__mgr_conn_new(struct mproc__mgr *s, int fd, int64_t now_ns,
			struct mproc__mgr_conn **out);
void mproc__mgr_conn_free(struct mproc__mgr *s, struct mproc__mgr_conn *c);
/* Feed received bytes; returns how many were consumed: fewer when a request is parked, when
 * the connection's unsent output has reached MPROC_MANAGER_PENDING_MAX, or after 64 requests
 * (one turn's share); the caller keeps the rest and feeds it again later. Or -EBADMSG /
 * -EMSGSIZE / -EACCES when the connection must be closed (after its output is flushed). */
ssize_t mproc__mgr_conn_feed(struct mproc__mgr *s, struct mproc__mgr_conn *c, const uint8_t *p,
			     size_t n, int64_t now_ns);
/* Whether c may take a request from its mailbox now: authenticated, not parked, no reply
 * unsent, no socket frame half read (so that its replies stay in request order). */
bool mproc__mgr_conn_box_ready(const struct mproc__mgr_conn *c);
/*
 * Serve one request from a mailbox: box is shared memory that the client may write at any
 * time and len the length read once from it. Bounds len (MPROC__MW_HDR..MPROC__MGR_CHAN_BOX),
 * copies the frame into buf (MPROC__MGR_CHAN_BOX bytes) and checks that its header claims
 * exactly len before the copy is fed. Returns 0 (the reply queued, or the request parked),
 * -EAGAIN (not ready: see mproc__mgr_conn_box_ready), or as mproc__mgr_conn_feed's errors
 * (-EBADMSG, -EMSGSIZE, -EACCES, -ENOMEM) when the connection must be closed.
 */
int mproc__mgr_conn_feed_box(struct mproc__mgr *s, struct mproc__mgr_conn *c, const uint8_t *box,
			     uint32_t len, uint8_t *buf, int64_t now_ns);
/* For the fuzz target: skip the handshake. */
void mproc__mgr_conn_set_authed(struct mproc__mgr_conn *c);
/* Pending output of a connection (the fuzz target discards it). */
struct mproc__mw_buf *mproc__mgr_conn_out(struct mproc__mgr_conn *c);

/*
 * mproc__mgr_serve - the server loop on a listening socket until death_fd reaches EOF/HUP (-1:
 * none) or SIGTERM arrives (the caller blocks it; the loop reads it with a signalfd). Once set
 * up it writes an int32 0 to *ready_fd (NULL or -1: none), closes it and sets it to -1; a
 * setup failure leaves it open for the caller to report. Returns 0 or -errno of setup.
 */
int mproc__mgr_serve(int listen_fd, int death_fd, int *ready_fd,
		     const struct mproc__mgr_config *cfg);

/* --- manager.c --- */
struct mproc__mgr_addr {
	bool tcp;
	char path[108];         /* unix */
	char host[64];          /* tcp */
	uint16_t port;
};
/* Parse "unix:PATH" / "tcp:HOST:PORT" (HOST: IPv4 or IPv6 literal, or "localhost"). */
int mproc__mgr_addr_parse(const char *s, struct mproc__mgr_addr *a);
/* Create, bind and listen; fills a->port for port 0. Replaces a stale Unix socket file. */
int mproc__mgr_listen(struct mproc__mgr_addr *a);
/* An unconnected stream socket for a's family and its sockaddr; fd or -errno. */
struct sockaddr_storage;
int mproc__mgr_socket(const struct mproc__mgr_addr *a, struct sockaddr_storage *ss,
		      socklen_t *sl);
int mproc__mgr_addr_format(const struct mproc__mgr_addr *a, char *buf, size_t size);

#endif /* MPROC_MANAGER_INTERNAL_H */
