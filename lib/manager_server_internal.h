/*
 * manager_server_internal.h - what the manager server's two halves share: the objects and the
 * connection state (struct obj, struct mproc__mgr_conn, struct mproc__mgr), the replies and the
 * parking of blocking requests (manager_server.c), and the per-kind request handlers
 * (manager_objects.c). Only those two files include it.
 */
#ifndef MPROC_MANAGER_SERVER_INTERNAL_H
#define MPROC_MANAGER_SERVER_INTERNAL_H

#include "manager_internal.h"

struct blob {
	uint8_t *p;
	size_t len;
};

struct qitem {
	struct qitem *next;
	size_t len;
	uint8_t data[];
};

struct dict_ent {
	struct dict_ent *next;
	uint64_t hash;
	struct blob val;
	uint32_t klen;
	uint8_t key[];
};

struct waitq {
	struct mproc__mgr_conn *head, *tail;
};

struct obj {
	uint8_t kind;
	uint32_t namelen;
	uint8_t *name;
	union {
		struct {
			struct dict_ent **b;
			size_t nb, n;
		} dict;
		struct {
			struct blob *items;
			size_t n, cap;
		} list;
		struct {
			bool is_bytes;
			int64_t i;
			struct blob b;
		} value;
		struct {
			struct qitem *head, *tail;
			size_t n, max;
		} queue;
		struct {
			struct mproc__mgr_conn *owner;
			bool owner_died;
		} lock;
	} u;
	struct waitq waiters;   /* parked connections (queue, lock) */
};

enum conn_state { CONN_PREAUTH, CONN_AUTH };

/* A connection's shared-memory channel (manager_server.c; the protocol: struct
 * mproc__mgr_chan_hdr in manager_internal.h). Nothing here is read back from the mapping. */
struct mgr_chan {
	struct mproc__mgr_chan_hdr *h;          /* the mapping */
	int efd;                                /* the client writes it to wake the server */
	uint32_t seen;                          /* req_seq of the last request taken */
	bool busy;                              /* that request's reply is not yet given */
};

struct mproc__mgr_conn {
	int fd;
	enum conn_state state;
	int64_t deadline;                       /* handshake */
	uint8_t nonce[MPROC__MW_NONCE];

	uint8_t hdr[MPROC__MW_HDR];
	size_t hdr_got;
	bool have_hdr;
	struct mproc__mw_hdr h;
	uint8_t *body;                          /* a body that came in pieces */
	size_t body_got, body_cap;

	struct mproc__mw_buf out;
	struct mproc__mw_buf in;                /* input received while parked */

	/* A parked request. */
	bool parked;
	struct obj *wobj;
	uint8_t wop;
	int64_t wdeadline;
	struct qitem *witem;                    /* a queue put's item */
	struct mproc__mgr_conn *wnext, *wprev;

	struct mproc__mgr_conn *next, *prev;    /* all connections */
	struct mproc__mgr_conn *pnext, *pprev;  /* pre-auth connections, oldest first */
	struct mproc__mgr_conn *woken_next;
	bool woken, dead;
	uint32_t ev_mask;

	struct mgr_chan *chan;                  /* NULL: socket only */
	int pass_fd;                            /* the memfd to pass with the next output, or -1 */
};

struct mproc__mgr {
	uint8_t key[MPROC_MANAGER_KEY_MAX];
	size_t keylen;
	size_t max_frame;
	bool log_errors;
	struct obj **objs;
	size_t nobjs, capobjs;
	struct mproc__mgr_conn *conns;
	struct mproc__mgr_conn *pre_head, *pre_tail;
	size_t npre;
	struct mproc__mgr_conn *woken;
	int ep;                                 /* the loop's epoll; -1: no channels (fuzz) */
	bool chan_ok;                           /* channels allowed (a Unix socket server) */
	size_t nchan;                           /* connections with a channel */
};

/* --- manager_server.c: replies and parking --- */

/* A reply with an optional payload. -ENOMEM closes the connection. */
int mproc__mgr_reply(struct mproc__mgr_conn *c, int status, const void *p, size_t n);
int mproc__mgr_reply_u64(struct mproc__mgr_conn *c, uint64_t v);
/* Park c's request on o's wait list until deadline (its reply is sent by whoever serves it). */
void mproc__mgr_park(struct mproc__mgr_conn *c, struct obj *o, uint8_t op, int64_t deadline);
/* Take c off its wait list (its reply sent) and queue it to be read again. */
void mproc__mgr_unpark(struct mproc__mgr *s, struct mproc__mgr_conn *c);

/* --- manager_objects.c: the objects, one request handler per kind --- */

/* OPEN and every object op (PING is the caller's): 0 with the reply queued or the request
 * parked, or -EBADMSG / -ENOMEM when the connection must be closed. */
int mproc__mgr_obj_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op,
			   struct mproc__mw_rd *rd, int64_t now_ns);
/* c is going away: the locks it holds pass to the next waiter, marked "owner died". */
void mproc__mgr_objs_conn_gone(struct mproc__mgr *s, struct mproc__mgr_conn *c);
/* Free every object and the table. */
void mproc__mgr_objs_free(struct mproc__mgr *s);

#endif /* MPROC_MANAGER_SERVER_INTERNAL_H */
