/*
 * manager_objects.c - the manager server's objects (dict, list, value, queue, lock) and one
 * request handler per kind, found through a table by kind; manager_server.c owns the
 * connections, the replies, parking and the loop, and hands every object op here.
 *
 * A handler parses its op's body completely before it looks the object up, so a malformed
 * request closes the connection (-EBADMSG) whatever its id names, and a well-formed one on an
 * unknown id or an object of another kind gets -EINVAL. Queue gets and puts and lock acquires
 * that cannot complete are parked (mproc__mgr_park) with their deadline; whoever changes the
 * object serves the first parked request (queue_serve, lock_serve).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manager_server_internal.h"

#define MGR_MAX_OBJS 65536

/* ---- objects ---- */

static void obj_free(struct obj *o)
{
	size_t i;

	if (!o)
		return;
	switch (o->kind) {
	case MPROC__MW_KIND_DICT:
		for (i = 0; i < o->u.dict.nb; i++) {
			struct dict_ent *e = o->u.dict.b[i], *next;

			for (; e; e = next) {
				next = e->next;
				free(e->val.p);
				free(e);
			}
		}
		free(o->u.dict.b);
		break;
	case MPROC__MW_KIND_LIST:
		for (i = 0; i < o->u.list.n; i++)
			free(o->u.list.items[i].p);
		free(o->u.list.items);
		break;
	case MPROC__MW_KIND_VALUE:
		free(o->u.value.b.p);
		break;
	case MPROC__MW_KIND_QUEUE: {
		struct qitem *q = o->u.queue.head, *next;

		for (; q; q = next) {
			next = q->next;
			free(q);
		}
		break;
	}
	default:
		break;
	}
	free(o->name);
	free(o);
}

static int blob_set(struct blob *b, const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (!c)
		return -ENOMEM;
	if (n)
		memcpy(c, p, n);
	free(b->p);
	b->p = c;
	b->len = n;
	return 0;
}

static struct dict_ent **dict_find(struct obj *o, const uint8_t *k, uint32_t kn, uint64_t h)
{
	struct dict_ent **pe;

	if (!o->u.dict.nb)
		return NULL;
	for (pe = &o->u.dict.b[h & (o->u.dict.nb - 1)]; *pe; pe = &(*pe)->next)
		if ((*pe)->hash == h && (*pe)->klen == kn && memcmp((*pe)->key, k, kn) == 0)
			return pe;
	return NULL;
}

static int dict_grow(struct obj *o)
{
	size_t nb = o->u.dict.nb ? o->u.dict.nb * 2 : 16, i;
	struct dict_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (i = 0; i < o->u.dict.nb; i++) {
		struct dict_ent *e = o->u.dict.b[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(o->u.dict.b);
	o->u.dict.b = b;
	o->u.dict.nb = nb;
	return 0;
}

static int dict_set(struct obj *o, const uint8_t *k, uint32_t kn, const uint8_t *v, size_t vn)
{
	uint64_t h = mproc__fnv1a64(k, kn);
	struct dict_ent **pe = dict_find(o, k, kn, h), *e;
	int r;

	if (pe)
		return blob_set(&(*pe)->val, v, vn);
	if (o->u.dict.n >= o->u.dict.nb) {
		r = dict_grow(o);
		if (r < 0)
			return r;
	}
	e = calloc(1, sizeof(*e) + kn);
	if (!e)
		return -ENOMEM;
	r = blob_set(&e->val, v, vn);
	if (r < 0) {
		free(e);
		return r;
	}
	e->hash = h;
	e->klen = kn;
	memcpy(e->key, k, kn);
	e->next = o->u.dict.b[h & (o->u.dict.nb - 1)];
	o->u.dict.b[h & (o->u.dict.nb - 1)] = e;
	o->u.dict.n++;
	return 0;
}

static void queue_push(struct obj *o, struct qitem *q)
{
	q->next = NULL;
	if (o->u.queue.tail)
		o->u.queue.tail->next = q;
	else
		o->u.queue.head = q;
	o->u.queue.tail = q;
	o->u.queue.n++;
}

/* After a change to a queue: serve parked getters while items exist, parked putters while
 * there is room. A reply that fails for lack of memory kills only that connection. */
static void queue_serve(struct mproc__mgr *s, struct obj *o)
{
	struct mproc__mgr_conn *w;

	while ((w = o->waiters.head)) {
		if (w->wop == MPROC__MW_QUEUE_GET && o->u.queue.n) {
			struct qitem *q = o->u.queue.head;

			o->u.queue.head = q->next;
			if (!q->next)
				o->u.queue.tail = NULL;
			o->u.queue.n--;
			if (mproc__mgr_reply(w, 0, q->data, q->len) < 0)
				w->dead = true;
			free(q);
		} else if (w->wop == MPROC__MW_QUEUE_PUT &&
			   (!o->u.queue.max || o->u.queue.n < o->u.queue.max)) {
			queue_push(o, w->witem);
			w->witem = NULL;
			if (mproc__mgr_reply(w, 0, NULL, 0) < 0)
				w->dead = true;
		} else {
			break;
		}
		mproc__mgr_unpark(s, w);
	}
}

/* Hand a free lock to the first parked acquirer. */
static void lock_serve(struct mproc__mgr *s, struct obj *o)
{
	struct mproc__mgr_conn *w = o->waiters.head;
	int status;

	if (o->u.lock.owner || !w)
		return;
	status = o->u.lock.owner_died ? -EOWNERDEAD : 0;
	o->u.lock.owner_died = false;
	o->u.lock.owner = w;
	if (mproc__mgr_reply(w, status, NULL, 0) < 0)
		w->dead = true;
	mproc__mgr_unpark(s, w);
}

/* ---- requests ---- */

static struct obj *obj_get(struct mproc__mgr *s, uint32_t id, uint8_t kind)
{
	if (id == 0 || id > s->nobjs || s->objs[id - 1]->kind != kind)
		return NULL;
	return s->objs[id - 1];
}

static int op_open(struct mproc__mgr *s, struct mproc__mgr_conn *c, struct mproc__mw_rd *rd)
{
	uint8_t kind;
	uint64_t param;
	const uint8_t *name;
	uint32_t nlen;
	struct obj *o, **objs;
	size_t i;
	uint8_t idb[4];

	if (!mproc__mw_get_u8(rd, &kind) || !mproc__mw_get_u64(rd, &param) ||
	    !mproc__mw_get_str(rd, &name, &nlen) || !mproc__mw_done(rd))
		return -EBADMSG;
	if (kind < MPROC__MW_KIND_DICT || kind > MPROC__MW_KIND_LOCK)
		return mproc__mgr_reply(c, -EINVAL, NULL, 0);
	for (i = 0; i < s->nobjs; i++) {
		o = s->objs[i];
		if (o->namelen == nlen && memcmp(o->name, name, nlen) == 0) {
			if (o->kind != kind)
				return mproc__mgr_reply(c, -EINVAL, NULL, 0);
			mproc__mw_put_u32(idb, (uint32_t)(i + 1));
			return mproc__mgr_reply(c, 0, idb, sizeof(idb));
		}
	}
	if (s->nobjs >= MGR_MAX_OBJS)
		return mproc__mgr_reply(c, -ENOSPC, NULL, 0);
	if (s->nobjs == s->capobjs) {
		size_t cap = s->capobjs ? s->capobjs * 2 : 16;

		objs = realloc(s->objs, cap * sizeof(*objs));
		if (!objs)
			return mproc__mgr_reply(c, -ENOMEM, NULL, 0);
		s->objs = objs;
		s->capobjs = cap;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return mproc__mgr_reply(c, -ENOMEM, NULL, 0);
	o->name = malloc(nlen);
	if (!o->name) {
		free(o);
		return mproc__mgr_reply(c, -ENOMEM, NULL, 0);
	}
	memcpy(o->name, name, nlen);
	o->namelen = nlen;
	o->kind = kind;
	if (kind == MPROC__MW_KIND_QUEUE)
		o->u.queue.max = param > SIZE_MAX ? SIZE_MAX : (size_t)param;
	s->objs[s->nobjs++] = o;
	mproc__mw_put_u32(idb, (uint32_t)s->nobjs);
	return mproc__mgr_reply(c, 0, idb, sizeof(idb));
}

/* ---- one handler per kind: parse the op's body, find the object, act, reply ---- */

/* DICT_LEN, LIST_LEN, QUEUE_LEN: an empty body, the count as a u64. */
static int len_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint32_t id, uint8_t kind,
		       struct mproc__mw_rd *rd)
{
	struct obj *o;

	if (!mproc__mw_done(rd))
		return -EBADMSG;
	o = obj_get(s, id, kind);
	if (!o)
		return mproc__mgr_reply(c, -EINVAL, NULL, 0);
	return mproc__mgr_reply_u64(c, kind == MPROC__MW_KIND_DICT ? o->u.dict.n :
				    kind == MPROC__MW_KIND_LIST ? o->u.list.n : o->u.queue.n);
}

static int dict_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op, uint32_t id,
			struct mproc__mw_rd *rd, int64_t now_ns)
{
	uint32_t kn;
	const uint8_t *k, *v;
	size_t vn;
	struct obj *o;
	struct dict_ent **pe, *e;

	(void)now_ns;
	if (op == MPROC__MW_DICT_LEN)
		return len_request(s, c, id, MPROC__MW_KIND_DICT, rd);
	if (!mproc__mw_get_str(rd, &k, &kn))
		return -EBADMSG;
	if (op == MPROC__MW_DICT_SET)
		mproc__mw_get_rest(rd, &v, &vn);
	if (!mproc__mw_done(rd))
		return -EBADMSG;
	o = obj_get(s, id, MPROC__MW_KIND_DICT);
	if (!o)
		return mproc__mgr_reply(c, -EINVAL, NULL, 0);
	if (op == MPROC__MW_DICT_SET)
		return mproc__mgr_reply(c, dict_set(o, k, kn, v, vn), NULL, 0);
	pe = dict_find(o, k, kn, mproc__fnv1a64(k, kn));
	if (!pe)
		return mproc__mgr_reply(c, -ENOENT, NULL, 0);
	if (op == MPROC__MW_DICT_GET)
		return mproc__mgr_reply(c, 0, (*pe)->val.p, (*pe)->val.len);
	e = *pe;
	*pe = e->next;
	free(e->val.p);
	free(e);
	o->u.dict.n--;
	return mproc__mgr_reply(c, 0, NULL, 0);
}

static int list_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op, uint32_t id,
			struct mproc__mw_rd *rd, int64_t now_ns)
{
	const uint8_t *v;
	size_t vn;
	int64_t x;
	struct obj *o;
	int r;

	(void)now_ns;
	switch (op) {
	case MPROC__MW_LIST_LEN:
		return len_request(s, c, id, MPROC__MW_KIND_LIST, rd);

	case MPROC__MW_LIST_APPEND:
		mproc__mw_get_rest(rd, &v, &vn);
		o = obj_get(s, id, MPROC__MW_KIND_LIST);
		if (!o)
			return mproc__mgr_reply(c, -EINVAL, NULL, 0);
		if (o->u.list.n == o->u.list.cap) {
			size_t cap = o->u.list.cap ? o->u.list.cap * 2 : 16;
			struct blob *items = realloc(o->u.list.items, cap * sizeof(*items));

			if (!items)
				return mproc__mgr_reply(c, -ENOMEM, NULL, 0);
			o->u.list.items = items;
			o->u.list.cap = cap;
		}
		o->u.list.items[o->u.list.n] = (struct blob){ NULL, 0 };
		r = blob_set(&o->u.list.items[o->u.list.n], v, vn);
		if (r == 0)
			o->u.list.n++;
		return mproc__mgr_reply(c, r, NULL, 0);

	default:        /* MPROC__MW_LIST_GET */
		if (!mproc__mw_get_i64(rd, &x) || !mproc__mw_done(rd))
			return -EBADMSG;
		o = obj_get(s, id, MPROC__MW_KIND_LIST);
		if (!o)
			return mproc__mgr_reply(c, -EINVAL, NULL, 0);
		if (x < 0)
			x += (int64_t)o->u.list.n;
		if (x < 0 || (uint64_t)x >= o->u.list.n)
			return mproc__mgr_reply(c, -ERANGE, NULL, 0);
		return mproc__mgr_reply(c, 0, o->u.list.items[x].p, o->u.list.items[x].len);
	}
}

static int value_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op,
			 uint32_t id, struct mproc__mw_rd *rd, int64_t now_ns)
{
	const uint8_t *v;
	size_t vn;
	int64_t x, t;
	struct obj *o;
	int r;

	(void)now_ns;
	switch (op) {
	case MPROC__MW_VALUE_GET:
	case MPROC__MW_VALUE_GET_BYTES:
		if (!mproc__mw_done(rd))
			return -EBADMSG;
		o = obj_get(s, id, MPROC__MW_KIND_VALUE);
		if (!o || o->u.value.is_bytes != (op == MPROC__MW_VALUE_GET_BYTES))
			return mproc__mgr_reply(c, -EINVAL, NULL, 0);
		if (op == MPROC__MW_VALUE_GET_BYTES)
			return mproc__mgr_reply(c, 0, o->u.value.b.p, o->u.value.b.len);
		return mproc__mgr_reply_u64(c, (uint64_t)o->u.value.i);

	case MPROC__MW_VALUE_SET:
	case MPROC__MW_VALUE_ADD:
		if (!mproc__mw_get_i64(rd, &x) || !mproc__mw_done(rd))
			return -EBADMSG;
		o = obj_get(s, id, MPROC__MW_KIND_VALUE);
		if (!o || (op == MPROC__MW_VALUE_ADD && o->u.value.is_bytes))
			return mproc__mgr_reply(c, -EINVAL, NULL, 0);
		if (op == MPROC__MW_VALUE_SET) {
			free(o->u.value.b.p);
			o->u.value.b = (struct blob){ NULL, 0 };
			o->u.value.is_bytes = false;
			o->u.value.i = x;
			return mproc__mgr_reply(c, 0, NULL, 0);
		}
		if (__builtin_add_overflow(o->u.value.i, x, &t))
			return mproc__mgr_reply(c, -ERANGE, NULL, 0);
		o->u.value.i = t;
		return mproc__mgr_reply_u64(c, (uint64_t)t);

	default:        /* MPROC__MW_VALUE_SET_BYTES */
		mproc__mw_get_rest(rd, &v, &vn);
		o = obj_get(s, id, MPROC__MW_KIND_VALUE);
		if (!o)
			return mproc__mgr_reply(c, -EINVAL, NULL, 0);
		r = blob_set(&o->u.value.b, v, vn);
		if (r == 0)
			o->u.value.is_bytes = true;
		return mproc__mgr_reply(c, r, NULL, 0);
	}
}

static int queue_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op,
			 uint32_t id, struct mproc__mw_rd *rd, int64_t now_ns)
{
	const uint8_t *v;
	size_t vn;
	int64_t t, deadline;
	struct obj *o;
	struct qitem *q;
	int r;

	if (op == MPROC__MW_QUEUE_LEN)
		return len_request(s, c, id, MPROC__MW_KIND_QUEUE, rd);
	if (!mproc__mw_get_i64(rd, &t))
		return -EBADMSG;
	if (op == MPROC__MW_QUEUE_PUT)
		mproc__mw_get_rest(rd, &v, &vn);
	if (!mproc__mw_done(rd))
		return -EBADMSG;
	o = obj_get(s, id, MPROC__MW_KIND_QUEUE);
	if (!o || mproc__deadline_at(t, now_ns, &deadline) < 0)
		return mproc__mgr_reply(c, -EINVAL, NULL, 0);
	if (op == MPROC__MW_QUEUE_GET) {
		if (o->u.queue.n) {
			q = o->u.queue.head;
			o->u.queue.head = q->next;
			if (!q->next)
				o->u.queue.tail = NULL;
			o->u.queue.n--;
			r = mproc__mgr_reply(c, 0, q->data, q->len);
			free(q);
			queue_serve(s, o);      /* room for a parked putter */
			return r;
		}
		if (t == 0)
			return mproc__mgr_reply(c, -EAGAIN, NULL, 0);
		mproc__mgr_park(c, o, op, deadline);
		return 0;
	}
	if (o->u.queue.max && o->u.queue.n >= o->u.queue.max && t == 0)
		return mproc__mgr_reply(c, -EAGAIN, NULL, 0);
	q = malloc(sizeof(*q) + vn);
	if (!q)
		return mproc__mgr_reply(c, -ENOMEM, NULL, 0);
	q->len = vn;
	if (vn)
		memcpy(q->data, v, vn);
	if (o->u.queue.max && o->u.queue.n >= o->u.queue.max) {
		mproc__mgr_park(c, o, op, deadline);
		c->witem = q;
		return 0;
	}
	queue_push(o, q);
	r = mproc__mgr_reply(c, 0, NULL, 0);
	queue_serve(s, o);              /* an item for a parked getter */
	return r;
}

static int lock_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op, uint32_t id,
			struct mproc__mw_rd *rd, int64_t now_ns)
{
	int64_t t, deadline;
	struct obj *o;
	int r;

	if (op == MPROC__MW_LOCK_RELEASE) {
		if (!mproc__mw_done(rd))
			return -EBADMSG;
		o = obj_get(s, id, MPROC__MW_KIND_LOCK);
		if (!o)
			return mproc__mgr_reply(c, -EINVAL, NULL, 0);
		if (o->u.lock.owner != c)
			return mproc__mgr_reply(c, -EPERM, NULL, 0);
		o->u.lock.owner = NULL;
		r = mproc__mgr_reply(c, 0, NULL, 0);
		lock_serve(s, o);
		return r;
	}
	if (!mproc__mw_get_i64(rd, &t) || !mproc__mw_done(rd))
		return -EBADMSG;
	o = obj_get(s, id, MPROC__MW_KIND_LOCK);
	if (!o || mproc__deadline_at(t, now_ns, &deadline) < 0)
		return mproc__mgr_reply(c, -EINVAL, NULL, 0);
	if (o->u.lock.owner == c)
		return mproc__mgr_reply(c, -EDEADLK, NULL, 0);
	if (!o->u.lock.owner && !o->waiters.head) {
		r = o->u.lock.owner_died ? -EOWNERDEAD : 0;
		o->u.lock.owner_died = false;
		o->u.lock.owner = c;
		return mproc__mgr_reply(c, r, NULL, 0);
	}
	if (t == 0)
		return mproc__mgr_reply(c, -EAGAIN, NULL, 0);
	mproc__mgr_park(c, o, op, deadline);
	return 0;
}

/* The handlers by kind. Each kind's ops are contiguous in enum mproc__mw_op (first..last), so
 * an op finds its kind by range. */
static const struct kind_ops {
	uint8_t first, last;
	int (*request)(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op, uint32_t id,
		       struct mproc__mw_rd *rd, int64_t now_ns);
} kinds[] = {
	[MPROC__MW_KIND_DICT] = { MPROC__MW_DICT_SET, MPROC__MW_DICT_LEN, dict_request },
	[MPROC__MW_KIND_LIST] = { MPROC__MW_LIST_APPEND, MPROC__MW_LIST_LEN, list_request },
	[MPROC__MW_KIND_VALUE] = { MPROC__MW_VALUE_GET, MPROC__MW_VALUE_GET_BYTES, value_request },
	[MPROC__MW_KIND_QUEUE] = { MPROC__MW_QUEUE_PUT, MPROC__MW_QUEUE_LEN, queue_request },
	[MPROC__MW_KIND_LOCK] = { MPROC__MW_LOCK_ACQUIRE, MPROC__MW_LOCK_RELEASE, lock_request },
};

int mproc__mgr_obj_request(struct mproc__mgr *s, struct mproc__mgr_conn *c, uint8_t op,
			   struct mproc__mw_rd *rd, int64_t now_ns)
{
	uint32_t id;
	size_t k;

	if (op == MPROC__MW_OPEN)
		return op_open(s, c, rd);
	if (!mproc__mw_get_u32(rd, &id))
		return -EBADMSG;
	for (k = MPROC__MW_KIND_DICT; k <= MPROC__MW_KIND_LOCK; k++)
		if (op >= kinds[k].first && op <= kinds[k].last)
			return kinds[k].request(s, c, op, id, rd, now_ns);
	return -EBADMSG;
}

void mproc__mgr_objs_conn_gone(struct mproc__mgr *s, struct mproc__mgr_conn *c)
{
	size_t i;

	for (i = 0; i < s->nobjs; i++) {
		struct obj *o = s->objs[i];

		if (o->kind == MPROC__MW_KIND_LOCK && o->u.lock.owner == c) {
			o->u.lock.owner = NULL;
			o->u.lock.owner_died = true;
			lock_serve(s, o);
		}
	}
}

void mproc__mgr_objs_free(struct mproc__mgr *s)
{
	size_t i;

	for (i = 0; i < s->nobjs; i++)
		obj_free(s->objs[i]);
	free(s->objs);
	s->objs = NULL;
	s->nobjs = s->capobjs = 0;
}
