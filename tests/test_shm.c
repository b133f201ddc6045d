/* test_shm.c - shared memory regions and Value/Array (reliability.md T24, T25). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mproc.h"
#include "tap.h"

static int code(int r)
{
	return r < 0 ? -r : 0;
}

static bool shm_name_exists(const char *name)
{
	char path[320];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	return stat(path, &st) == 0;
}

/* ---- regions -------------------------------------------------------------------------- */

static int child_write_region(void *p)
{
	memset(p, 0xab, 4096);
	return 0;
}

static void t_kinds_fork(void *arg)
{
	static const enum mproc_shm_kind kinds[] = { MPROC_SHM_ANON, MPROC_SHM_MEMFD,
						     MPROC_SHM_NAMED };

	for (size_t k = 0; k < 3; k++) {
		struct mproc_shm_opts o = { .kind = kinds[k] };
		struct mproc_shm *s;
		unsigned char *p;
		size_t zero = 0;

		if (kinds[k] == MPROC_SHM_NAMED && !tap_dev_shm_usable()) {
			/* Without /dev/shm a named region fails at creation, clearly. */
			int r = mproc_shm_new(&s, 8192, &o);

			CHECK(r < 0);
			tap_diag("named region without /dev/shm: %s", mproc_strerror(r));
			continue;
		}

		ASSERT_OK(mproc_shm_new(&s, 8192, &o));
		CHECK_EQ(mproc_shm_kind(s), kinds[k]);
		CHECK_EQ(mproc_shm_size(s), 8192);
		CHECK_EQ(mproc_shm_fd(s) >= 0, kinds[k] != MPROC_SHM_ANON);
		CHECK_EQ(mproc_shm_name(s) != NULL, kinds[k] == MPROC_SHM_NAMED);
		p = mproc_shm_addr(s);
		for (size_t i = 0; i < 8192; i++)
			zero += p[i] == 0;
		CHECK_EQ(zero, 8192);
		CHECK_EQ(tap_reap(tap_fork(child_write_region, p)), 0);
		CHECK_EQ(p[0], 0xab);
		CHECK_EQ(p[4095], 0xab);
		CHECK_EQ(p[4096], 0);
		if (mproc_shm_fd(s) >= 0)
			CHECK_EQ(fcntl(mproc_shm_fd(s), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		mproc_shm_free(s);
	}
	mproc_shm_free(NULL);
}

static void t_bad_input(void *arg)
{
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *s;
	char longname[300];

	CHECK_ERR(mproc_shm_new(NULL, 4096, NULL), -EINVAL);
	CHECK_ERR(mproc_shm_new(&s, 0, NULL), -EINVAL);
	CHECK_ERR(mproc_shm_new(&s, 0, &o), -EINVAL);
	CHECK_ERR(mproc_shm_new(&s, MPROC_SHM_SIZE_MAX + 1, &o), -EMSGSIZE);
	CHECK_ERR(mproc_shm_new(&s, SIZE_MAX, NULL), -EMSGSIZE);
	CHECK_ERR(mproc_shm_new(&s, 4096, &(struct mproc_shm_opts){ .kind = 7 }), -EINVAL);
	o.name = "/mproc-x";
	o.kind = MPROC_SHM_ANON;
	CHECK_ERR(mproc_shm_new(&s, 4096, &o), -EINVAL);        /* a name for an anonymous one */
	o.kind = MPROC_SHM_NAMED;
	/* A NUL inside the name, a name without '/', with another '/', empty, too long. */
	o.name = "/mproc-a\0b";
	o.name_len = 10;
	CHECK_ERR(mproc_shm_new(&s, 4096, &o), -EINVAL);
	CHECK_ERR(mproc_shm_attach(&s, 0, &o), -EINVAL);
	o.name_len = 0;
	o.name = "mproc-noslash";
	CHECK_ERR(mproc_shm_new(&s, 4096, &o), -EINVAL);
	o.name = "/mproc/inner";
	CHECK_ERR(mproc_shm_new(&s, 4096, &o), -EINVAL);
	o.name = "/";
	CHECK_ERR(mproc_shm_new(&s, 4096, &o), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	o.name = longname;
	CHECK_ERR(mproc_shm_new(&s, 4096, &o), -EINVAL);
	CHECK_ERR(mproc_shm_attach(&s, 0, NULL), -EINVAL);
	CHECK_ERR(mproc_shm_attach(&s, 0, &(struct mproc_shm_opts){ .kind = MPROC_SHM_NAMED }),
		  -EINVAL);
	CHECK_ERR(mproc_shm_attach_fd(&s, -1, 0), -EINVAL);
	CHECK_ERR(mproc_shm_unlink(NULL), -EINVAL);
	CHECK_ERR(mproc_shm_unlink_name("noslash"), -EINVAL);
	ASSERT_OK(mproc_shm_new(&s, 4096, NULL));
	CHECK_ERR(mproc_shm_unlink(s), -EINVAL);        /* anonymous: no name */
	mproc_shm_free(s);
}

static int child_attach_write(void *p)
{
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED, .name = p };
	struct mproc_shm *s;
	int r = mproc_shm_attach(&s, 0, &o);

	if (r < 0)
		return code(r);
	strcpy(mproc_shm_addr(s), "from the child");
	if (mproc_shm_unlink(s) != -EPERM)      /* attachers never unlink */
		return 99;
	mproc_shm_free(s);
	return 0;
}

static int child_free_inherited(void *p)
{
	mproc_shm_free(p);      /* a child's free unmaps only: the name stays */
	return 0;
}

static void t_named(void *arg)
{
	tap_require_dev_shm();
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *s, *s2;
	char prefix[64], name[300];
	struct stat st;

	ASSERT_OK(mproc_shm_new(&s, 4096, &o));
	snprintf(prefix, sizeof(prefix), "/mproc-%d-", (int)getpid());
	CHECK(strncmp(mproc_shm_name(s), prefix, strlen(prefix)) == 0);
	snprintf(name, sizeof(name), "%s", mproc_shm_name(s));
	ASSERT_EQ(fstat(mproc_shm_fd(s), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(st.st_size, 4096);
	CHECK_EQ(st.st_uid, geteuid());
	CHECK_EQ(st.st_blocks * 512 >= 4096, 1);        /* reserved, not sparse */

	CHECK_EQ(tap_reap(tap_fork(child_attach_write, name)), 0);
	CHECK_STR_EQ(mproc_shm_addr(s), "from the child");
	CHECK(shm_name_exists(name));
	CHECK_EQ(tap_reap(tap_fork(child_free_inherited, s)), 0);
	CHECK(shm_name_exists(name));

	/* Attach with an expected size: larger than the object is refused. */
	o.name = name;
	CHECK_ERR(mproc_shm_attach(&s2, 8192, &o), -EMSGSIZE);
	ASSERT_OK(mproc_shm_attach(&s2, 1024, &o));
	CHECK_EQ(mproc_shm_size(s2), 1024);
	mproc_shm_free(s2);

	/* The same name again: EEXIST; the existing object is untouched. */
	CHECK_ERR(mproc_shm_new(&s2, 4096, &o), -EEXIST);
	CHECK_STR_EQ(mproc_shm_addr(s), "from the child");

	CHECK_OK(mproc_shm_unlink(s));
	CHECK_ERR(mproc_shm_unlink(s), -ENOENT);
	CHECK(!shm_name_exists(name));
	CHECK_ERR(mproc_shm_attach(&s2, 0, &o), -ENOENT);
	CHECK_ERR(mproc_shm_unlink_name(name), -ENOENT);
	CHECK_STR_EQ(mproc_shm_addr(s), "from the child");      /* mapping still valid */
	mproc_shm_free(s);
}

static void t_named_given_name_free_unlinks(void *arg)
{
	tap_require_dev_shm();
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *s;
	char name[64];

	snprintf(name, sizeof(name), "/mproc-%d-given", (int)getpid());
	o.name = name;
	CHECK_ERR(mproc_shm_attach(&s, 0, &o), -ENOENT);        /* missing */
	ASSERT_OK(mproc_shm_new(&s, 100, &o));
	CHECK_STR_EQ(mproc_shm_name(s), name);
	CHECK(shm_name_exists(name));
	mproc_shm_free(s);                                      /* the creator unlinks */
	CHECK(!shm_name_exists(name));
}

/* An object with group/other bits, or of size 0, is refused at attach. */
static void t_named_attach_checks(void *arg)
{
	tap_require_dev_shm();
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *s;
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "/mproc-%d-loose", (int)getpid());
	fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	ASSERT(fd >= 0);
	o.name = name;
	CHECK_ERR(mproc_shm_attach(&s, 0, &o), -EINVAL);        /* size 0 */
	CHECK_EQ(ftruncate(fd, 4096), 0);
	CHECK_EQ(fchmod(fd, 0644), 0);
	CHECK_ERR(mproc_shm_attach(&s, 0, &o), -EACCES);
	CHECK_EQ(fchmod(fd, 0600), 0);
	CHECK_OK(mproc_shm_attach(&s, 0, &o));
	mproc_shm_free(s);
	CHECK(shm_name_exists(name));                           /* attacher did not unlink */
	CHECK_OK(mproc_shm_unlink_name(name));
	close(fd);
}

static void t_memfd(void *arg)
{
	struct mproc_shm_opts o = { .kind = MPROC_SHM_MEMFD };
	struct mproc_shm *s, *s2;
	int fd, seals, pfd[2];

	ASSERT_OK(mproc_shm_new(&s, 4096, &o));
	fd = mproc_shm_fd(s);
	seals = fcntl(fd, F_GET_SEALS);
	CHECK(seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW));
	CHECK_EQ(ftruncate(fd, 100), -1);                       /* sealed: no SIGBUS trap */
	/* What a receiver does with the fd that came over a connection. */
	ASSERT_OK(mproc_shm_attach_fd(&s2, fd, 0));
	CHECK_EQ(mproc_shm_size(s2), 4096);
	CHECK(mproc_shm_fd(s2) != fd);
	strcpy(mproc_shm_addr(s), "memfd");
	CHECK_STR_EQ(mproc_shm_addr(s2), "memfd");
	CHECK_ERR(mproc_shm_attach_fd(&s2, fd, 8192), -EMSGSIZE);
	mproc_shm_free(s2);
	mproc_shm_free(s);

	/* Unsealed memfds and non-files are refused. */
	fd = memfd_create("unsealed", MFD_CLOEXEC);
	ASSERT(fd >= 0);
	CHECK_EQ(ftruncate(fd, 4096), 0);
	CHECK_ERR(mproc_shm_attach_fd(&s2, fd, 0), -EACCES);
	close(fd);
	ASSERT_EQ(pipe2(pfd, O_CLOEXEC), 0);
	CHECK_ERR(mproc_shm_attach_fd(&s2, pfd[0], 0), -EINVAL);
	close(pfd[0]);
	close(pfd[1]);
}

/* Full /dev/shm: a tiny tmpfs in a private mount namespace. */
static int child_full_devshm(void *arg)
{
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *s;
	int r;

	if (unshare(CLONE_NEWNS) < 0)
		return 77;
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		return 78;
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777") < 0)
		return 79;
	r = mproc_shm_new(&s, 4 << 20, &o);
	if (r != -ENOSPC)
		return r < 0 ? 10 : 11;
	/* Nothing was left behind, and a region that fits works and is fully usable. */
	r = mproc_shm_new(&s, 512 << 10, &o);
	if (r < 0)
		return 12;
	memset(mproc_shm_addr(s), 1, 512 << 10);
	mproc_shm_free(s);
	/* memfd does not depend on /dev/shm at all. */
	o.kind = MPROC_SHM_MEMFD;
	r = mproc_shm_new(&s, 4 << 20, &o);
	if (r < 0)
		return 13;
	mproc_shm_free(s);
	return 0;
}

static void t_full_devshm(void *arg)
{
	int st;

	if (geteuid() != 0)
		tap_skip("needs root to mount a small tmpfs on /dev/shm in a private namespace");
	st = tap_reap(tap_fork(child_full_devshm, NULL));
	if (st == 77 || st == 78 || st == 79)
		tap_skip("cannot unshare/mount here (step %d): no private /dev/shm", st - 77);
	CHECK_EQ(st, 0);        /* 128 + SIGBUS would mean the reservation failed */
}

/* No /dev/shm (AWS Lambda) or a read-only one: named regions fail with a clear code, memfd
 * and anonymous regions still work. */
static int child_no_devshm(void *arg)
{
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *s;
	int r;

	if (unshare(CLONE_NEWNS) < 0)
		return 77;
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		return 78;
	/* Read-only /dev/shm. */
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_RDONLY, "size=1m") < 0)
		return 79;
	r = mproc_shm_new(&s, 4096, &o);
	if (r != -EROFS && r != -EACCES)
		return 10;
	/* No /dev/shm at all: an empty /dev. */
	if (mount("tmpfs", "/dev", "tmpfs", 0, "size=1m") < 0)
		return 79;
	r = mproc_shm_new(&s, 4096, &o);
	if (r != -ENOSYS)
		return 11;
	o.kind = MPROC_SHM_MEMFD;
	if (mproc_shm_new(&s, 1 << 20, &o) < 0)
		return 12;
	memset(mproc_shm_addr(s), 7, 1 << 20);
	mproc_shm_free(s);
	if (mproc_shm_new(&s, 1 << 20, NULL) < 0)
		return 13;
	mproc_shm_free(s);
	return 0;
}

static void t_no_devshm(void *arg)
{
	int st;

	if (geteuid() != 0)
		tap_skip("needs root to hide /dev/shm in a private mount namespace");
	st = tap_reap(tap_fork(child_no_devshm, NULL));
	if (st == 77 || st == 78 || st == 79)
		tap_skip("cannot unshare/mount here (step %d)", st - 77);
	CHECK_EQ(st, 0);
}

/* ---- Value and Array ------------------------------------------------------------------ */

static const enum mproc_type all_types[] = {
	MPROC_INT8, MPROC_INT16, MPROC_INT32, MPROC_INT64, MPROC_UINT8, MPROC_UINT16,
	MPROC_UINT32, MPROC_UINT64, MPROC_FLOAT, MPROC_DOUBLE, MPROC_CHAR,
};

/* A value of each type that uses its range: negative for signed, the top bit for unsigned. */
static void store_typed(void *p, enum mproc_type t)
{
	switch (t) {
	case MPROC_INT8: *(int8_t *)p = -100; break;
	case MPROC_INT16: *(int16_t *)p = -30000; break;
	case MPROC_INT32: *(int32_t *)p = -2000000000; break;
	case MPROC_INT64: *(int64_t *)p = INT64_MIN + 7; break;
	case MPROC_UINT8: *(uint8_t *)p = 250; break;
	case MPROC_UINT16: *(uint16_t *)p = 65000; break;
	case MPROC_UINT32: *(uint32_t *)p = 4000000000u; break;
	case MPROC_UINT64: *(uint64_t *)p = UINT64_MAX - 3; break;
	case MPROC_FLOAT: *(float *)p = 1.5f; break;
	case MPROC_DOUBLE: *(double *)p = -2.25e300; break;
	case MPROC_CHAR: *(char *)p = 'x'; break;
	}
}

static bool check_typed(const void *p, enum mproc_type t)
{
	switch (t) {
	case MPROC_INT8: return *(const int8_t *)p == -100;
	case MPROC_INT16: return *(const int16_t *)p == -30000;
	case MPROC_INT32: return *(const int32_t *)p == -2000000000;
	case MPROC_INT64: return *(const int64_t *)p == INT64_MIN + 7;
	case MPROC_UINT8: return *(const uint8_t *)p == 250;
	case MPROC_UINT16: return *(const uint16_t *)p == 65000;
	case MPROC_UINT32: return *(const uint32_t *)p == 4000000000u;
	case MPROC_UINT64: return *(const uint64_t *)p == UINT64_MAX - 3;
	case MPROC_FLOAT: return *(const float *)p == 1.5f;
	case MPROC_DOUBLE: return *(const double *)p == -2.25e300;
	case MPROC_CHAR: return *(const char *)p == 'x';
	}
	return false;
}

struct typed_arg {
	struct mproc_value *v;
	struct mproc_array *a;
	enum mproc_type t;
};

static int child_store_typed(void *p)
{
	struct typed_arg *ta = p;
	size_t es = mproc_type_size(ta->t);

	store_typed(mproc_value_ptr(ta->v), ta->t);
	for (size_t i = 0; i < mproc_array_len(ta->a); i++)
		store_typed((char *)mproc_array_data(ta->a) + i * es, ta->t);
	return 0;
}

static void t_value_every_type(void *arg)
{
	for (size_t k = 0; k < sizeof(all_types) / sizeof(all_types[0]); k++) {
		struct typed_arg ta = { .t = all_types[k] };
		size_t es = mproc_type_size(ta.t), ok = 0;

		ASSERT_OK(mproc_value_new(&ta.v, ta.t, k % 2 ? MPROC_SHM_LOCK : 0));
		ASSERT_OK(mproc_array_new(&ta.a, ta.t, 37, 0));
		CHECK_EQ(mproc_value_type(ta.v), ta.t);
		CHECK_EQ(mproc_value_lock(ta.v) != NULL, k % 2);
		CHECK_EQ(tap_reap(tap_fork(child_store_typed, &ta)), 0);
		CHECK(check_typed(mproc_value_ptr(ta.v), ta.t));
		for (size_t i = 0; i < 37; i++)
			ok += check_typed((char *)mproc_array_data(ta.a) + i * es, ta.t);
		CHECK_EQ(ok, 37);
		if (tap_failed())
			tap_diag("type %d", (int)ta.t);
		mproc_array_free(ta.a);
		mproc_value_free(ta.v);
	}
}

static void t_array_zeroed(void *arg)
{
	for (int tries = 0; tries < 3; tries++) {
		for (size_t k = 0; k < sizeof(all_types) / sizeof(all_types[0]); k++) {
			struct mproc_array *a;
			const unsigned char *p;
			size_t n = 100000 + (size_t)tries * 4099, bytes, nz = 0;

			ASSERT_OK(mproc_array_new(&a, all_types[k], n, MPROC_SHM_LOCK));
			CHECK_EQ(mproc_array_len(a), n);
			CHECK_EQ((uintptr_t)mproc_array_data(a) % 64, 0);
			bytes = n * mproc_type_size(all_types[k]);
			p = mproc_array_data(a);
			for (size_t i = 0; i < bytes; i++)
				nz += p[i] != 0;
			CHECK_EQ(nz, 0);
			CHECK_EQ(mproc_lock_locked(mproc_array_lock(a)), 0);
			mproc_array_free(a);
		}
	}
}

static void t_atomics(void *arg)
{
	struct mproc_value *v;
	struct mproc_array *a;
	int64_t x, old;
	double d;

	ASSERT_OK(mproc_value_new(&v, MPROC_UINT8, 0));
	CHECK_OK(mproc_value_store(v, 255));
	CHECK_OK(mproc_value_add(v, 1, &old));
	CHECK_EQ(old, 255);
	CHECK_OK(mproc_value_load(v, &x));
	CHECK_EQ(x, 0);                                 /* unsigned wraps as in C */
	x = 5;
	CHECK_ERR(mproc_value_cas(v, &x, 9), -EAGAIN);
	CHECK_EQ(x, 0);
	CHECK_OK(mproc_value_cas(v, &x, 9));
	CHECK_OK(mproc_value_load(v, &x));
	CHECK_EQ(x, 9);
	CHECK_ERR(mproc_value_load_f64(v, &d), -EINVAL);
	CHECK_ERR(mproc_value_store_f64(v, 1.0), -EINVAL);
	mproc_value_free(v);

	ASSERT_OK(mproc_value_new(&v, MPROC_INT64, MPROC_SHM_LOCK));
	CHECK_OK(mproc_value_add(v, -5, NULL));
	CHECK_OK(mproc_value_load(v, &x));
	CHECK_EQ(x, -5);
	mproc_value_free(v);

	ASSERT_OK(mproc_value_new(&v, MPROC_DOUBLE, 0));
	CHECK_OK(mproc_value_store_f64(v, 3.25));
	CHECK_OK(mproc_value_load_f64(v, &d));
	CHECK_CMP(d, ==, 3.25);
	CHECK_ERR(mproc_value_add(v, 1, NULL), -EINVAL);
	CHECK_ERR(mproc_value_load(v, &x), -EINVAL);
	mproc_value_free(v);

	ASSERT_OK(mproc_array_new(&a, MPROC_FLOAT, 4, 0));
	CHECK_OK(mproc_array_store_f64(a, 3, -0.5));
	CHECK_OK(mproc_array_load_f64(a, 3, &d));
	CHECK_CMP(d, ==, -0.5);
	CHECK_ERR(mproc_array_load_f64(a, 4, &d), -EINVAL);     /* out of range */
	mproc_array_free(a);
	ASSERT_OK(mproc_array_new(&a, MPROC_INT16, 4, 0));
	CHECK_ERR(mproc_array_store(a, 4, 1), -EINVAL);
	CHECK_OK(mproc_array_store(a, 3, -2));
	CHECK_OK(mproc_array_load(a, 3, &x));
	CHECK_EQ(x, -2);
	mproc_array_free(a);
}

static void t_value_bad_input(void *arg)
{
	struct mproc_value *v;
	struct mproc_array *a;

	CHECK_ERR(mproc_value_new(NULL, MPROC_INT32, 0), -EINVAL);
	CHECK_ERR(mproc_value_new(&v, 0, 0), -EINVAL);
	CHECK_ERR(mproc_value_new(&v, 99, 0), -EINVAL);
	CHECK_ERR(mproc_value_new(&v, MPROC_INT32, 2), -EINVAL);
	CHECK_ERR(mproc_array_new(&a, MPROC_INT32, 0, 0), -EINVAL);
	CHECK_ERR(mproc_array_new(&a, MPROC_INT64, SIZE_MAX / 4, 0), -EMSGSIZE);
	CHECK_ERR(mproc_array_load(NULL, 0, &(int64_t){ 0 }), -EINVAL);
	CHECK_EQ(mproc_type_size(42), 0);
	mproc_value_free(NULL);
	mproc_array_free(NULL);
}

struct counter_arg {
	struct mproc_value *v;
	bool atomic;
};

static int child_count(void *p)
{
	struct counter_arg *c = p;
	struct mproc_lock *l = mproc_value_lock(c->v);
	volatile int64_t *x = mproc_value_ptr(c->v);
	int r;

	for (int i = 0; i < 10000; i++) {
		if (c->atomic) {
			r = mproc_value_add(c->v, 1, NULL);
			if (r < 0)
				return code(r);
			continue;
		}
		r = mproc_lock_acquire(l, MPROC_FOREVER);
		if (r < 0)
			return code(r);
		*x = *x + 1;
		mproc_lock_release(l);
	}
	return 0;
}

static void counter(bool atomic)
{
	struct counter_arg c = { .atomic = atomic };
	int64_t x;
	pid_t p[8];

	ASSERT_OK(mproc_value_new(&c.v, MPROC_INT64, MPROC_SHM_LOCK));
	for (int i = 0; i < 8; i++)
		p[i] = tap_fork(child_count, &c);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_OK(mproc_value_load(c.v, &x));
	CHECK_EQ(x, 80000);
	mproc_value_free(c.v);
}

static void t_value_counter_lock(void *arg)
{
	counter(false);
}

static void t_value_counter_atomic(void *arg)
{
	counter(true);
}

static int child_hold_value_lock(void *p)
{
	struct mproc_value *v = p;

	if (mproc_lock_acquire(mproc_value_lock(v), 0) < 0)
		return 1;
	mproc_value_store(v, 1);
	for (;;)
		pause();
}

static void t_value_lock_owner_dead(void *arg)
{
	struct mproc_value *v;
	int64_t x = 0;
	pid_t p;

	ASSERT_OK(mproc_value_new(&v, MPROC_INT32, MPROC_SHM_LOCK));
	p = tap_fork(child_hold_value_lock, v);
	for (int i = 0; i < 500 * tap_timeout_mult() && x == 0; i++) {
		usleep(10000);
		mproc_value_load(v, &x);
	}
	ASSERT_EQ(x, 1);
	kill(p, SIGKILL);
	CHECK_ERR(mproc_lock_acquire(mproc_value_lock(v), 1.0), -EOWNERDEAD);
	CHECK_OK(mproc_lock_release(mproc_value_lock(v)));
	CHECK_EQ(tap_reap(p), 128 + SIGKILL);
	mproc_value_free(v);
}

/* A Value in a named region, reached by a process that inherited nothing but the name (as a
 * spawned child would), and an Array in a memfd reached through the fd. */
struct attach_arg {
	char name[300];
	int fd;
};

static int child_value_by_name(void *p)
{
	struct attach_arg *a = p;
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED, .name = a->name };
	struct mproc_value *v;
	int r = mproc_value_attach(&v, &o);

	if (r < 0)
		return code(r);
	if (mproc_value_type(v) != MPROC_INT64 || !mproc_value_lock(v))
		return 90;
	for (int i = 0; i < 1000; i++) {
		r = mproc_lock_acquire(mproc_value_lock(v), MPROC_FOREVER);
		if (r < 0)
			return code(r);
		*(volatile int64_t *)mproc_value_ptr(v) += 1;
		mproc_lock_release(mproc_value_lock(v));
	}
	mproc_value_free(v);            /* an attacher: never unlinks */
	return 0;
}

static int child_array_by_fd(void *p)
{
	struct attach_arg *a = p;
	struct mproc_array *arr;
	int r = mproc_array_attach_fd(&arr, a->fd);

	if (r < 0)
		return code(r);
	if (mproc_array_len(arr) != 10 || mproc_array_type(arr) != MPROC_UINT16 ||
	    mproc_array_lock(arr))
		return 91;
	for (size_t i = 0; i < 10; i++)
		mproc_array_store(arr, i, (int64_t)(i * 1000));
	mproc_array_free(arr);
	return 0;
}

static void t_value_in_regions(void *arg)
{
	tap_require_dev_shm();
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct attach_arg a = { .fd = -1 };
	struct mproc_value *v, *v2;
	struct mproc_array *arr;
	struct mproc_shm *plain;
	pid_t p[4];
	int64_t x;

	ASSERT_OK(mproc_value_new_in(&v, MPROC_INT64, MPROC_SHM_LOCK, &o));
	snprintf(a.name, sizeof(a.name), "%s", mproc_shm_name(mproc_value_shm(v)));
	for (int i = 0; i < 4; i++)
		p[i] = tap_fork(child_value_by_name, &a);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(tap_reap(p[i]), 0);
	CHECK_OK(mproc_value_load(v, &x));
	CHECK_EQ(x, 4000);
	CHECK(shm_name_exists(a.name));

	/* A region that holds no Array, and an Array that is not a Value. */
	o.name = a.name;
	ASSERT_OK(mproc_shm_new(&plain, 4096, &(struct mproc_shm_opts){ .kind = MPROC_SHM_MEMFD }));
	CHECK_ERR(mproc_array_attach_fd(&arr, mproc_shm_fd(plain)), -EINVAL);
	mproc_shm_free(plain);
	mproc_value_free(v);
	CHECK(!shm_name_exists(a.name));                /* the creator's free unlinked it */
	CHECK_ERR(mproc_value_attach(&v2, &o), -ENOENT);

	o.kind = MPROC_SHM_MEMFD;
	o.name = NULL;
	ASSERT_OK(mproc_array_new_in(&arr, MPROC_UINT16, 10, 0, &o));
	a.fd = mproc_shm_fd(mproc_array_shm(arr));
	CHECK_ERR(mproc_value_attach_fd(&v2, a.fd), -EINVAL);   /* length 10: not a Value */
	CHECK_EQ(tap_reap(tap_fork(child_array_by_fd, &a)), 0);
	for (size_t i = 0; i < 10; i++) {
		CHECK_OK(mproc_array_load(arr, i, &x));
		CHECK_EQ(x, (int64_t)(i * 1000));
	}
	mproc_array_free(arr);
}

/*
 * "/." and "/.." are refused by the name check with -EINVAL (issue 16: they passed it and then
 * gave -EEXIST or -EISDIR, /dev/shm itself and its parent), however the name is given; names
 * that only begin with dots are names like any other.
 */
static void t_dot_names(void *arg)
{
	static const char *const dots[] = { "/.", "/.." };
	struct mproc_shm_opts o = { .kind = MPROC_SHM_NAMED };
	struct mproc_shm *s = NULL;
	char name[64];

	(void)arg;
	for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
		o.name = dots[i];
		o.name_len = 0;
		CHECK_ERR(mproc_shm_new(&s, 4096, &o), -EINVAL);
		CHECK_ERR(mproc_shm_attach(&s, 0, &o), -EINVAL);
		CHECK_ERR(mproc_shm_unlink_name(dots[i]), -EINVAL);
		o.name_len = strlen(dots[i]);
		CHECK_ERR(mproc_shm_new(&s, 4096, &o), -EINVAL);
		CHECK_ERR(mproc_value_new_in(&(struct mproc_value *){ NULL }, MPROC_INT64, 0, &o),
			  -EINVAL);
	}
	CHECK(s == NULL);
	/* Not a bad name, only a missing one. */
	snprintf(name, sizeof(name), "/..mproc-none-%d", (int)getpid());
	o.name = name;
	o.name_len = 0;
	CHECK_ERR(mproc_shm_attach(&s, 0, &o), -ENOENT);
}

int main(int argc, char **argv)
{
	tap_add("shm/region/kinds_fork", t_kinds_fork, NULL);
	tap_add("shm/region/bad_input", t_bad_input, NULL);
	tap_add("shm/named/dot_names_refused", t_dot_names, NULL);
	tap_add("shm/named/semantics", t_named, NULL);
	tap_add("shm/named/given_name_free_unlinks", t_named_given_name_free_unlinks, NULL);
	tap_add("shm/named/attach_checks", t_named_attach_checks, NULL);
	tap_add("shm/memfd/sealed_attach_fd", t_memfd, NULL);
	tap_add("shm/named/full_devshm_enospc", t_full_devshm, NULL);
	tap_add("shm/named/no_devshm", t_no_devshm, NULL);
	tap_add("shm/value/every_type_cross_process", t_value_every_type, NULL);
	tap_add("shm/array/zeroed", t_array_zeroed, NULL);
	tap_add("shm/value/atomics", t_atomics, NULL);
	tap_add("shm/value/bad_input", t_value_bad_input, NULL);
	tap_add("shm/value/counter_lock_8x10000", t_value_counter_lock, NULL);
	tap_add("shm/value/counter_atomic_8x10000", t_value_counter_atomic, NULL);
	tap_add("shm/value/lock_owner_dead", t_value_lock_owner_dead, NULL);
	tap_add("shm/value/in_named_and_memfd_regions", t_value_in_regions, NULL);
	return tap_run(argc, argv);
}
