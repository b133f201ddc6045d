/* shm.c - shared memory regions (anonymous, memfd, named) and typed Value/Array. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/error.h"
#include "mproc/shm.h"
#include "mproc/sync.h"

#ifndef F_SEAL_SHRINK
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

struct mproc_shm {
	enum mproc_shm_kind kind;
	void *addr;
	size_t size;
	int fd;
	pid_t creator;          /* the pid that created the name (0: attached) */
	bool unlinked;
	char name[MPROC_SHM_NAME_MAX + 1];
};

/* Checks a name: "/x..." with no other '/', no NUL within name_len, at most NAME_MAX, and not
 * "/." or "/.." (they name /dev/shm itself and its parent: -EEXIST or -EISDIR later, issue
 * 16). */
static int name_copy(char *dst, const char *name, size_t name_len)
{
	size_t len;

	if (!name)
		return -EINVAL;
	if (name_len == 0) {
		len = strnlen(name, MPROC_SHM_NAME_MAX + 1);
	} else {
		len = name_len;
		if (memchr(name, '\0', len))
			return -EINVAL;
	}
	if (len < 2 || len > MPROC_SHM_NAME_MAX || name[0] != '/' || memchr(name + 1, '/', len - 1))
		return -EINVAL;
	if ((len == 2 && name[1] == '.') || (len == 3 && name[1] == '.' && name[2] == '.'))
		return -EINVAL;
	memcpy(dst, name, len);
	dst[len] = '\0';
	return 0;
}

/* posix_fallocate returns a positive errno; convert once here. */
static int reserve(int fd, size_t size)
{
	int r;

	do {
		r = posix_fallocate(fd, 0, (off_t)size);
	} while (r == EINTR);
	return -r;
}

static int map_fd(struct mproc_shm *s, int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	s->addr = p;
	s->size = size;
	return 0;
}

static int create_memfd(struct mproc_shm *s, size_t size)
{
	int fd, r;

	fd = memfd_create("mproc-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		goto out_close;
	}
	r = reserve(fd, size);
	if (r < 0)
		goto out_close;
	/* A peer that shrinks the file would SIGBUS every reader; seal the size for good. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto out_close;
	}
	r = map_fd(s, fd, size);
	if (r < 0)
		goto out_close;
	s->fd = fd;
	return 0;
out_close:
	mproc__close(fd);
	return r;
}

static int create_named(struct mproc_shm *s, size_t size, const struct mproc_shm_opts *o)
{
	int fd = -1, r;

	for (int tries = 0;; tries++) {
		if (o->name) {
			r = name_copy(s->name, o->name, o->name_len);
		} else {
			r = mproc__unique_name(s->name, sizeof(s->name));
		}
		if (r < 0)
			return r;
		fd = shm_open(s->name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		/* With O_CREAT, ENOENT can only mean that /dev/shm itself is missing (AWS Lambda):
		 * say "not supported here" rather than "no such name". */
		r = errno == ENOENT ? -ENOSYS : -errno;
		/* A generated name met a leftover of a dead run with a recycled pid: pick again. */
		if (r != -EEXIST || o->name || tries >= 8)
			return r;
	}
	/* umask may have cleared bits of 0600; we need exactly owner read-write. */
	if (fchmod(fd, 0600) < 0) {
		r = -errno;
		goto out_unlink;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		goto out_unlink;
	}
	r = reserve(fd, size);
	if (r < 0)
		goto out_unlink;
	r = map_fd(s, fd, size);
	if (r < 0)
		goto out_unlink;
	s->fd = fd;
	s->creator = getpid();
	return 0;
out_unlink:
	shm_unlink(s->name);
	mproc__close(fd);
	return r;
}

int mproc_shm_new(struct mproc_shm **out, size_t size, const struct mproc_shm_opts *o)
{
	static const struct mproc_shm_opts anon = { .kind = MPROC_SHM_ANON };
	struct mproc_shm *s;
	void *p;
	int r;

	if (!o)
		o = &anon;
	if (!out || size == 0 || (unsigned)o->kind > MPROC_SHM_NAMED)
		return -EINVAL;
	if (o->kind != MPROC_SHM_NAMED && o->name)
		return -EINVAL;
	if (size > MPROC_SHM_SIZE_MAX)
		return -EMSGSIZE;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = o->kind;
	s->fd = -1;
	switch (o->kind) {
	case MPROC_SHM_ANON:
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			r = -errno;
			goto out_free;
		}
		s->addr = p;
		s->size = size;
		r = 0;
		break;
	case MPROC_SHM_MEMFD:
		r = create_memfd(s, size);
		break;
	case MPROC_SHM_NAMED:
		r = create_named(s, size, o);
		break;
	default:
		r = -EINVAL;
		break;
	}
	if (r < 0)
		goto out_free;
	*out = s;
	return 0;
out_free:
	free(s);
	return r;
}

/* fstat checks shared by attach and attach_fd; *size becomes the length to map. */
static int check_object(int fd, size_t *size, bool named)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (named && (st.st_uid != geteuid() || (st.st_mode & 077) != 0))
		return -EACCES;
	if (st.st_size <= 0)
		return -EINVAL;
	if ((uint64_t)st.st_size > MPROC_SHM_SIZE_MAX)
		return -EMSGSIZE;
	if (*size == 0)
		*size = (size_t)st.st_size;
	else if (*size > (size_t)st.st_size)
		return -EMSGSIZE;
	return 0;
}

int mproc_shm_attach(struct mproc_shm **out, size_t size, const struct mproc_shm_opts *o)
{
	struct mproc_shm *s;
	int fd = -1, r;

	if (!out || !o || o->kind != MPROC_SHM_NAMED || !o->name)
		return -EINVAL;
	if (size > MPROC_SHM_SIZE_MAX)
		return -EMSGSIZE;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = MPROC_SHM_NAMED;
	s->fd = -1;
	r = name_copy(s->name, o->name, o->name_len);
	if (r < 0)
		goto out_free;
	fd = shm_open(s->name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out_free;
	}
	r = check_object(fd, &size, true);
	if (r < 0)
		goto out_close;
	r = map_fd(s, fd, size);
	if (r < 0)
		goto out_close;
	s->fd = fd;
	*out = s;
	return 0;
out_close:
	mproc__close(fd);
out_free:
	free(s);
	return r;
}

int mproc_shm_attach_fd(struct mproc_shm **out, int fd, size_t size)
{
	struct mproc_shm *s;
	int dup_fd, seals, r;

	if (!out || fd < 0)
		return -EINVAL;
	if (size > MPROC_SHM_SIZE_MAX)
		return -EMSGSIZE;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return errno == EBADF ? -EBADF : -EINVAL;
	if (!(seals & F_SEAL_SHRINK))
		return -EACCES;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = MPROC_SHM_MEMFD;
	s->fd = -1;
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0) {
		r = -errno;
		goto out_free;
	}
	r = check_object(dup_fd, &size, false);
	if (r < 0)
		goto out_close;
	r = map_fd(s, dup_fd, size);
	if (r < 0)
		goto out_close;
	s->fd = dup_fd;
	*out = s;
	return 0;
out_close:
	mproc__close(dup_fd);
out_free:
	free(s);
	return r;
}

void mproc_shm_free(struct mproc_shm *s)
{
	int saved = errno;

	if (!s)
		return;
	if (s->addr)
		munmap(s->addr, s->size);
	if (s->kind == MPROC_SHM_NAMED && s->creator == getpid() && !s->unlinked)
		shm_unlink(s->name);
	mproc__close(s->fd);
	free(s);
	errno = saved;
}

int mproc_shm_unlink(struct mproc_shm *s)
{
	if (!s || s->kind != MPROC_SHM_NAMED)
		return -EINVAL;
	if (s->creator == 0)
		return -EPERM;
	/* Ask the kernel each time: a second unlink reports the name's real state. */
	s->unlinked = true;
	if (shm_unlink(s->name) < 0)
		return -errno;
	return 0;
}

int mproc_shm_unlink_name(const char *name)
{
	char buf[MPROC_SHM_NAME_MAX + 1];
	int r = name_copy(buf, name, 0);

	if (r < 0)
		return r;
	return shm_unlink(buf) < 0 ? -errno : 0;
}

void *mproc_shm_addr(const struct mproc_shm *s)
{
	return s ? s->addr : NULL;
}

size_t mproc_shm_size(const struct mproc_shm *s)
{
	return s ? s->size : 0;
}

enum mproc_shm_kind mproc_shm_kind(const struct mproc_shm *s)
{
	return s ? s->kind : MPROC_SHM_ANON;
}

const char *mproc_shm_name(const struct mproc_shm *s)
{
	return (s && s->kind == MPROC_SHM_NAMED) ? s->name : NULL;
}

int mproc_shm_fd(const struct mproc_shm *s)
{
	return s ? s->fd : -1;
}

/* ---- Value and Array ------------------------------------------------------------------ */

struct mproc_array {
	enum mproc_type type;
	size_t len, esize;
	struct mproc_shm *shm;  /* the region holding header, Lock and data */
	struct mproc_lock *lock;
	void *data;
};

/*
 * The region: [header, 64 bytes][the Lock, or unused, 64 bytes][data, 64-byte aligned]. The
 * header lets a process that attaches by name or fd learn the type and length, and refuses
 * regions that hold no Array.
 */
struct array_hdr {
	uint32_t magic;
	uint32_t type;
	uint32_t flags;
	uint32_t pad;
	uint64_t len;
};
#define ARRAY_MAGIC 0x6d706172u         /* "mpar" */
#define LOCK_OFFSET 64
#define DATA_OFFSET 128

size_t mproc_type_size(enum mproc_type t)
{
	switch (t) {
	case MPROC_INT8:
	case MPROC_UINT8:
	case MPROC_CHAR:
		return 1;
	case MPROC_INT16:
	case MPROC_UINT16:
		return 2;
	case MPROC_INT32:
	case MPROC_UINT32:
	case MPROC_FLOAT:
		return 4;
	case MPROC_INT64:
	case MPROC_UINT64:
	case MPROC_DOUBLE:
		return 8;
	}
	return 0;
}

int mproc_array_new_in(struct mproc_array **out, enum mproc_type t, size_t len, unsigned flags,
		       const struct mproc_shm_opts *o)
{
	struct mproc_array *a;
	struct array_hdr *h;
	size_t esize = mproc_type_size(t);
	char *base;
	int r;

	if (!out || esize == 0 || len == 0 || (flags & ~MPROC_SHM_LOCK))
		return -EINVAL;
	if (len > (MPROC_SHM_SIZE_MAX - DATA_OFFSET) / esize)
		return -EMSGSIZE;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->type = t;
	a->len = len;
	a->esize = esize;
	r = mproc_shm_new(&a->shm, DATA_OFFSET + len * esize, o);
	if (r < 0)
		goto out_free;
	base = mproc_shm_addr(a->shm);
	a->data = base + DATA_OFFSET;
	if (flags & MPROC_SHM_LOCK) {
		r = mproc_lock_init_at(base + LOCK_OFFSET, DATA_OFFSET - LOCK_OFFSET, &a->lock);
		if (r < 0)
			goto out_shm;
	}
	h = (struct array_hdr *)(void *)base;
	h->type = (uint32_t)t;
	h->flags = flags;
	h->len = len;
	/* Last: an attacher that sees the magic sees the rest. */
	__atomic_store_n(&h->magic, ARRAY_MAGIC, __ATOMIC_RELEASE);
	*out = a;
	return 0;
out_shm:
	mproc_shm_free(a->shm);
out_free:
	free(a);
	return r;
}

int mproc_array_new(struct mproc_array **out, enum mproc_type t, size_t len, unsigned flags)
{
	return mproc_array_new_in(out, t, len, flags, NULL);
}

/* Wrap an attached region after checking its header; takes shm (freed on failure). */
static int array_from_shm(struct mproc_array **out, struct mproc_shm *shm)
{
	const struct array_hdr *h = mproc_shm_addr(shm);
	size_t size = mproc_shm_size(shm), esize;
	struct mproc_array *a;
	int r = -EINVAL;

	if (size < DATA_OFFSET || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != ARRAY_MAGIC)
		goto out_shm;
	esize = mproc_type_size((enum mproc_type)h->type);
	if (esize == 0 || h->len == 0 || h->len > (size - DATA_OFFSET) / esize ||
	    (h->flags & ~MPROC_SHM_LOCK))
		goto out_shm;
	a = calloc(1, sizeof(*a));
	if (!a) {
		r = -ENOMEM;
		goto out_shm;
	}
	a->type = (enum mproc_type)h->type;
	a->len = (size_t)h->len;
	a->esize = esize;
	a->shm = shm;
	a->data = (char *)mproc_shm_addr(shm) + DATA_OFFSET;
	if (h->flags & MPROC_SHM_LOCK) {
		r = mproc_lock_at((char *)mproc_shm_addr(shm) + LOCK_OFFSET, &a->lock);
		if (r < 0) {
			free(a);
			goto out_shm;
		}
	}
	*out = a;
	return 0;
out_shm:
	mproc_shm_free(shm);
	return r;
}

int mproc_array_attach(struct mproc_array **out, const struct mproc_shm_opts *o)
{
	struct mproc_shm *shm;
	int r;

	if (!out)
		return -EINVAL;
	r = mproc_shm_attach(&shm, 0, o);
	if (r < 0)
		return r;
	return array_from_shm(out, shm);
}

int mproc_array_attach_fd(struct mproc_array **out, int fd)
{
	struct mproc_shm *shm;
	int r;

	if (!out)
		return -EINVAL;
	r = mproc_shm_attach_fd(&shm, fd, 0);
	if (r < 0)
		return r;
	return array_from_shm(out, shm);
}

const struct mproc_shm *mproc_array_shm(const struct mproc_array *a)
{
	return a ? a->shm : NULL;
}

void mproc_array_free(struct mproc_array *a)
{
	if (!a)
		return;
	mproc_shm_free(a->shm);
	free(a);
}

void *mproc_array_data(const struct mproc_array *a)
{
	return a ? a->data : NULL;
}

size_t mproc_array_len(const struct mproc_array *a)
{
	return a ? a->len : 0;
}

enum mproc_type mproc_array_type(const struct mproc_array *a)
{
	return a ? a->type : 0;
}

struct mproc_lock *mproc_array_lock(const struct mproc_array *a)
{
	return a ? a->lock : NULL;
}

static bool is_float(enum mproc_type t)
{
	return t == MPROC_FLOAT || t == MPROC_DOUBLE;
}

/* The element i, or NULL for a NULL array, an index out of range, or the wrong class. */
static void *elem(const struct mproc_array *a, size_t i, bool want_float)
{
	if (!a || i >= a->len || is_float(a->type) != want_float)
		return NULL;
	return (char *)a->data + i * a->esize;
}

#define SEQ __ATOMIC_SEQ_CST
#define INT_CASES(X)                      \
	X(MPROC_INT8, int8_t)             \
	X(MPROC_INT16, int16_t)           \
	X(MPROC_INT32, int32_t)           \
	X(MPROC_INT64, int64_t)           \
	X(MPROC_UINT8, uint8_t)           \
	X(MPROC_UINT16, uint16_t)         \
	X(MPROC_UINT32, uint32_t)         \
	X(MPROC_UINT64, uint64_t)         \
	X(MPROC_CHAR, char)

int mproc_array_load(const struct mproc_array *a, size_t i, int64_t *out)
{
	void *p = elem(a, i, false);

	if (!p || !out)
		return -EINVAL;
	switch (a->type) {
#define X(T, C)                                                  \
	case T:                                                  \
		*out = (int64_t)__atomic_load_n((C *)p, SEQ);    \
		return 0;
	INT_CASES(X)
#undef X
	default:
		return -EINVAL;
	}
}

int mproc_array_store(struct mproc_array *a, size_t i, int64_t v)
{
	void *p = elem(a, i, false);

	if (!p)
		return -EINVAL;
	switch (a->type) {
#define X(T, C)                                          \
	case T:                                          \
		__atomic_store_n((C *)p, (C)v, SEQ);     \
		return 0;
	INT_CASES(X)
#undef X
	default:
		return -EINVAL;
	}
}

int mproc_array_add(struct mproc_array *a, size_t i, int64_t delta, int64_t *old)
{
	void *p = elem(a, i, false);
	int64_t o;

	if (!p)
		return -EINVAL;
	switch (a->type) {
#define X(T, C)                                                         \
	case T:                                                         \
		o = (int64_t)__atomic_fetch_add((C *)p, (C)delta, SEQ); \
		break;
	INT_CASES(X)
#undef X
	default:
		return -EINVAL;
	}
	if (old)
		*old = o;
	return 0;
}

int mproc_array_cas(struct mproc_array *a, size_t i, int64_t *expected, int64_t desired)
{
	void *p = elem(a, i, false);

	if (!p || !expected)
		return -EINVAL;
	switch (a->type) {
#define X(T, C)                                                                         \
	case T: {                                                                       \
		C e = (C)*expected;                                                     \
		if (__atomic_compare_exchange_n((C *)p, &e, (C)desired, false, SEQ, SEQ)) \
			return 0;                                                       \
		*expected = (int64_t)e;                                                 \
		return -EAGAIN;                                                         \
	}
	INT_CASES(X)
#undef X
	default:
		return -EINVAL;
	}
}

int mproc_array_load_f64(const struct mproc_array *a, size_t i, double *out)
{
	void *p = elem(a, i, true);

	if (!p || !out)
		return -EINVAL;
	if (a->type == MPROC_FLOAT) {
		uint32_t bits = __atomic_load_n((uint32_t *)p, SEQ);
		float f;

		memcpy(&f, &bits, sizeof(f));
		*out = f;
	} else {
		uint64_t bits = __atomic_load_n((uint64_t *)p, SEQ);

		memcpy(out, &bits, sizeof(*out));
	}
	return 0;
}

int mproc_array_store_f64(struct mproc_array *a, size_t i, double v)
{
	void *p = elem(a, i, true);

	if (!p)
		return -EINVAL;
	if (a->type == MPROC_FLOAT) {
		float f = (float)v;
		uint32_t bits;

		memcpy(&bits, &f, sizeof(bits));
		__atomic_store_n((uint32_t *)p, bits, SEQ);
	} else {
		uint64_t bits;

		memcpy(&bits, &v, sizeof(bits));
		__atomic_store_n((uint64_t *)p, bits, SEQ);
	}
	return 0;
}

/* A Value is an Array of one: the handle types differ only so the API reads well. */
#define AS_ARRAY(v) ((struct mproc_array *)(void *)(v))
#define AS_CARRAY(v) ((const struct mproc_array *)(const void *)(v))

int mproc_value_new(struct mproc_value **out, enum mproc_type t, unsigned flags)
{
	struct mproc_array *a;
	int r;

	if (!out)
		return -EINVAL;
	r = mproc_array_new(&a, t, 1, flags);
	if (r < 0)
		return r;
	*out = (struct mproc_value *)(void *)a;
	return 0;
}

int mproc_value_new_in(struct mproc_value **out, enum mproc_type t, unsigned flags,
		       const struct mproc_shm_opts *o)
{
	struct mproc_array *a;
	int r;

	if (!out)
		return -EINVAL;
	r = mproc_array_new_in(&a, t, 1, flags, o);
	if (r < 0)
		return r;
	*out = (struct mproc_value *)(void *)a;
	return 0;
}

/* An attached Array of length other than 1 is not a Value. */
static int value_from_array(struct mproc_value **out, struct mproc_array *a)
{
	if (a->len != 1) {
		mproc_array_free(a);
		return -EINVAL;
	}
	*out = (struct mproc_value *)(void *)a;
	return 0;
}

int mproc_value_attach(struct mproc_value **out, const struct mproc_shm_opts *o)
{
	struct mproc_array *a;
	int r;

	if (!out)
		return -EINVAL;
	r = mproc_array_attach(&a, o);
	return r < 0 ? r : value_from_array(out, a);
}

int mproc_value_attach_fd(struct mproc_value **out, int fd)
{
	struct mproc_array *a;
	int r;

	if (!out)
		return -EINVAL;
	r = mproc_array_attach_fd(&a, fd);
	return r < 0 ? r : value_from_array(out, a);
}

const struct mproc_shm *mproc_value_shm(const struct mproc_value *v)
{
	return mproc_array_shm(AS_CARRAY(v));
}

void mproc_value_free(struct mproc_value *v)
{
	mproc_array_free(AS_ARRAY(v));
}

void *mproc_value_ptr(const struct mproc_value *v)
{
	return mproc_array_data(AS_CARRAY(v));
}

enum mproc_type mproc_value_type(const struct mproc_value *v)
{
	return mproc_array_type(AS_CARRAY(v));
}

struct mproc_lock *mproc_value_lock(const struct mproc_value *v)
{
	return mproc_array_lock(AS_CARRAY(v));
}

int mproc_value_load(const struct mproc_value *v, int64_t *out)
{
	return mproc_array_load(AS_CARRAY(v), 0, out);
}

int mproc_value_store(struct mproc_value *v, int64_t x)
{
	return mproc_array_store(AS_ARRAY(v), 0, x);
}

int mproc_value_add(struct mproc_value *v, int64_t delta, int64_t *old)
{
	return mproc_array_add(AS_ARRAY(v), 0, delta, old);
}

int mproc_value_cas(struct mproc_value *v, int64_t *expected, int64_t desired)
{
	return mproc_array_cas(AS_ARRAY(v), 0, expected, desired);
}

int mproc_value_load_f64(const struct mproc_value *v, double *out)
{
	return mproc_array_load_f64(AS_CARRAY(v), 0, out);
}

int mproc_value_store_f64(struct mproc_value *v, double x)
{
	return mproc_array_store_f64(AS_ARRAY(v), 0, x);
}
