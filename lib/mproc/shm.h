/*
 * mproc/shm.h - shared memory regions and typed shared Value/Array (Python's
 * multiprocessing.shared_memory, Value and Array).
 *
 * A region (struct mproc_shm) is one of three kinds:
 *  - MPROC_SHM_ANON: anonymous MAP_SHARED memory. Children forked after it was made inherit it
 *    at the same address; nothing else can reach it. Needs no filesystem.
 *  - MPROC_SHM_MEMFD: a memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING) sealed against shrinking and
 *    growing, so a peer can never truncate it under a reader (SIGBUS). Pass mproc_shm_fd()
 *    over a connection (SCM_RIGHTS); the receiver calls mproc_shm_attach_fd(). Works where
 *    /dev/shm is missing (AWS Lambda) or full.
 *  - MPROC_SHM_NAMED: shm_open(O_CREAT | O_EXCL | O_RDWR, 0600) under a name of the form
 *    "/mproc-<pid>-<n>-<rand>" (or one the caller gives); unrelated processes of the same user
 *    attach by name. mproc_shm_attach() checks, before mapping, that the object belongs to the
 *    effective uid, grants nothing to group or others, and is as large as asked.
 * Space is reserved with posix_fallocate at creation (memfd and named), so a full /dev/shm
 * (Docker's 64 MiB) gives -ENOSPC from mproc_shm_new() instead of SIGBUS on first touch.
 *
 * Names and cleanup: only the creator unlinks a name (mproc_shm_unlink, or mproc_shm_free of
 * the creating handle); attachers never do, so a reader cannot pull a segment from under its
 * owner (CPython gh-82300). A creator that dies without freeing leaves its name behind; since
 * generated names carry the creator's pid, the next run's driver (mproc-bench --clean-stale)
 * and `make clean` remove /dev/shm/mproc-<pid>-* names whose pid is dead. The mapping itself
 * disappears with the last process that maps it.
 *
 * Handles are per process (malloc'd), and a forked child inherits a copy that stays valid: it
 * may use it and must mproc_shm_free() it (unmap) like the parent. A child's free never
 * unlinks (only the creating process, by pid, does). Not thread-safe per handle for _free;
 * the memory itself is for the caller to synchronize (see <mproc/sync.h>).
 *
 * Value and Array: typed, zero-initialized shared memory with an optional process-shared Lock
 * placed before the data. By default the memory is anonymous MAP_SHARED, inherited by fork;
 * mproc_array_new_in()/mproc_value_new_in() put it in a memfd or named region instead, which
 * processes started without fork (spawn, forkserver) reach with mproc_array_attach() (by name)
 * or mproc_array_attach_fd() (an fd passed over a connection); the region records the type,
 * length and lock, so the attacher needs only the name or fd. The atomic accessors
 * work on integer types (int8..uint64, char) for load, store, add and cas (as int64_t; the
 * value is converted to the element type, wrapping as C does for unsigned types), and on
 * float/double for load/store through the _f64 calls. They are lock-free and never take the
 * Lock.
 *
 * Example: examples/shared.c (Value and Array updated by four processes under their Lock).
 */
#ifndef MPROC_SHM_H
#define MPROC_SHM_H

#include <mproc/export.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mproc_lock;

enum mproc_shm_kind {
	MPROC_SHM_ANON,
	MPROC_SHM_MEMFD,
	MPROC_SHM_NAMED,
};

/* Largest region: bigger sizes give -EMSGSIZE. */
#define MPROC_SHM_SIZE_MAX ((size_t)1 << 46)
/* Longest name, with the leading '/' (NAME_MAX). */
#define MPROC_SHM_NAME_MAX 255

struct mproc_shm_opts {
	enum mproc_shm_kind kind;       /* zero: MPROC_SHM_ANON */
	/* MPROC_SHM_NAMED: the name ("/x", no other '/', not "/." or "/.."); NULL = a
	 * generated /mproc-... name.
	 * name_len: 0 = strlen(name); else exactly these bytes, and a NUL among them is
	 * refused (-EINVAL), for names that come from a byte buffer. */
	const char *name;
	size_t name_len;
};

struct mproc_shm;

/*
 * mproc_shm_new - create a region of size bytes, zero-filled, mapped read-write.
 * @o: NULL for MPROC_SHM_ANON.
 * Returns 0, or -EINVAL (out NULL, size 0, unknown kind, bad name, name given for a kind
 * other than NAMED), -EMSGSIZE (size > MPROC_SHM_SIZE_MAX), -EEXIST (the name exists),
 * -ENOSPC (the filesystem cannot hold size bytes; nothing is left behind), -ENOMEM, -EMFILE,
 * -ENOSYS (no memfd support, or no /dev/shm for a named region), -EROFS or -EACCES (/dev/shm
 * read-only or not ours). Anonymous and memfd regions never touch /dev/shm: use them where it
 * is missing or small. May be called in a forked child.
 */
MPROC_EXPORT int mproc_shm_new(struct mproc_shm **out, size_t size, const struct mproc_shm_opts *o);

/*
 * mproc_shm_attach - map the named region another process created.
 * @o: kind must be MPROC_SHM_NAMED, name required. @size: bytes expected (0: the whole object).
 * Returns 0, -EINVAL (bad name or kind, no name; an object of size 0 or not a regular file),
 * -ENOENT (no such name), -EACCES (another owner, or group/other permission bits set),
 * -EMSGSIZE (size over MPROC_SHM_SIZE_MAX, or the object is smaller than size), -ENOMEM,
 * -EMFILE.
 */
MPROC_EXPORT int mproc_shm_attach(struct mproc_shm **out, size_t size,
		const struct mproc_shm_opts *o);

/*
 * mproc_shm_attach_fd - map a memfd received from another process (the fd is duplicated with
 * O_CLOEXEC; the caller keeps and closes its own). @size: bytes expected, 0 for the whole.
 * Returns 0, -EINVAL (fd < 0, not a memfd or regular file), -EACCES (not sealed against
 * shrinking: a peer could truncate it under us), -EMSGSIZE (smaller than size), -EBADF,
 * -ENOMEM.
 */
MPROC_EXPORT int mproc_shm_attach_fd(struct mproc_shm **out, int fd, size_t size);

/* Unmap and close; the creating process also unlinks a named region it has not unlinked.
 * NULL is a no-op. May be called in a forked child (it never unlinks there). */
MPROC_EXPORT void mproc_shm_free(struct mproc_shm *s);

/*
 * mproc_shm_unlink - remove the name of a named region now (mappings stay valid).
 * Returns 0, -EPERM (this handle attached, it did not create), -EINVAL (not named, NULL),
 * -ENOENT (already unlinked).
 */
MPROC_EXPORT int mproc_shm_unlink(struct mproc_shm *s);

/* Remove a name directly (cleanup tools). Returns 0, -EINVAL (bad name), -ENOENT, -EACCES. */
MPROC_EXPORT int mproc_shm_unlink_name(const char *name);

MPROC_EXPORT void *mproc_shm_addr(const struct mproc_shm *s);
MPROC_EXPORT size_t mproc_shm_size(const struct mproc_shm *s);
MPROC_EXPORT enum mproc_shm_kind mproc_shm_kind(const struct mproc_shm *s);
/* The name ("/mproc-..."), or NULL for anon and memfd regions. */
MPROC_EXPORT const char *mproc_shm_name(const struct mproc_shm *s);
/* The fd for memfd and named regions (owned by the handle; do not close), -1 for anon. */
MPROC_EXPORT int mproc_shm_fd(const struct mproc_shm *s);

/* ---- Value and Array ------------------------------------------------------------------ */

enum mproc_type {
	MPROC_INT8 = 1,
	MPROC_INT16,
	MPROC_INT32,
	MPROC_INT64,
	MPROC_UINT8,
	MPROC_UINT16,
	MPROC_UINT32,
	MPROC_UINT64,
	MPROC_FLOAT,
	MPROC_DOUBLE,
	MPROC_CHAR,
};

/* Flags for mproc_value_new / mproc_array_new. */
#define MPROC_SHM_LOCK 1u       /* give it a process-shared Lock */

/* Size of one element in bytes, or 0 for an unknown type. */
MPROC_EXPORT size_t mproc_type_size(enum mproc_type t);

struct mproc_array;
struct mproc_value;

/*
 * mproc_array_new - len zeroed elements of type t in anonymous shared memory.
 * Returns 0, -EINVAL (out NULL, unknown type, len 0, unknown flag bits), -EMSGSIZE (len *
 * size over MPROC_SHM_SIZE_MAX), -ENOMEM.
 */
MPROC_EXPORT int mproc_array_new(struct mproc_array **out, enum mproc_type t, size_t len,
		unsigned flags);
/*
 * mproc_array_new_in - the same in a region of kind o->kind (NULL: anonymous); errors of
 * mproc_array_new and of mproc_shm_new. mproc_array_shm() gives the region (its name or fd).
 * mproc_array_attach / _attach_fd - an Array another process made in a named / memfd region.
 *	Returns 0, the errors of mproc_shm_attach / _attach_fd, or -EINVAL when the region holds
 *	no Array (or a damaged header).
 * mproc_array_free - unmap; the creating process also unlinks a named region. NULL: no-op.
 */
MPROC_EXPORT int mproc_array_new_in(struct mproc_array **out, enum mproc_type t, size_t len,
		unsigned flags, const struct mproc_shm_opts *o);
MPROC_EXPORT int mproc_array_attach(struct mproc_array **out, const struct mproc_shm_opts *o);
MPROC_EXPORT int mproc_array_attach_fd(struct mproc_array **out, int fd);
MPROC_EXPORT const struct mproc_shm *mproc_array_shm(const struct mproc_array *a);
MPROC_EXPORT void mproc_array_free(struct mproc_array *a);
/* The elements (aligned to 64 bytes), their count, type; the Lock or NULL without one. */
MPROC_EXPORT void *mproc_array_data(const struct mproc_array *a);
MPROC_EXPORT size_t mproc_array_len(const struct mproc_array *a);
MPROC_EXPORT enum mproc_type mproc_array_type(const struct mproc_array *a);
MPROC_EXPORT struct mproc_lock *mproc_array_lock(const struct mproc_array *a);
/*
 * Atomic element access. Returns 0, -EINVAL (NULL, i >= len, a float type for the integer
 * calls or an integer type for the _f64 calls). add stores the old value in *old (NULL-able);
 * cas compares with *expected and on mismatch stores the current value there and returns
 * -EAGAIN.
 */
MPROC_EXPORT int mproc_array_load(const struct mproc_array *a, size_t i, int64_t *out);
MPROC_EXPORT int mproc_array_store(struct mproc_array *a, size_t i, int64_t v);
MPROC_EXPORT int mproc_array_add(struct mproc_array *a, size_t i, int64_t delta, int64_t *old);
MPROC_EXPORT int mproc_array_cas(struct mproc_array *a, size_t i, int64_t *expected,
		int64_t desired);
MPROC_EXPORT int mproc_array_load_f64(const struct mproc_array *a, size_t i, double *out);
MPROC_EXPORT int mproc_array_store_f64(struct mproc_array *a, size_t i, double v);

/* A Value is an Array of one element; the same rules and errors. */
MPROC_EXPORT int mproc_value_new(struct mproc_value **out, enum mproc_type t, unsigned flags);
MPROC_EXPORT int mproc_value_new_in(struct mproc_value **out, enum mproc_type t, unsigned flags,
		       const struct mproc_shm_opts *o);
/* As the Array calls; -EINVAL also when the Array found there has a length other than 1. */
MPROC_EXPORT int mproc_value_attach(struct mproc_value **out, const struct mproc_shm_opts *o);
MPROC_EXPORT int mproc_value_attach_fd(struct mproc_value **out, int fd);
MPROC_EXPORT const struct mproc_shm *mproc_value_shm(const struct mproc_value *v);
MPROC_EXPORT void mproc_value_free(struct mproc_value *v);
MPROC_EXPORT void *mproc_value_ptr(const struct mproc_value *v);
MPROC_EXPORT enum mproc_type mproc_value_type(const struct mproc_value *v);
MPROC_EXPORT struct mproc_lock *mproc_value_lock(const struct mproc_value *v);
MPROC_EXPORT int mproc_value_load(const struct mproc_value *v, int64_t *out);
MPROC_EXPORT int mproc_value_store(struct mproc_value *v, int64_t x);
MPROC_EXPORT int mproc_value_add(struct mproc_value *v, int64_t delta, int64_t *old);
MPROC_EXPORT int mproc_value_cas(struct mproc_value *v, int64_t *expected, int64_t desired);
MPROC_EXPORT int mproc_value_load_f64(const struct mproc_value *v, double *out);
MPROC_EXPORT int mproc_value_store_f64(struct mproc_value *v, double x);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_SHM_H */
