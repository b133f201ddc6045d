/*
 * test_manager.c - the manager server and its proxies: semantics (dict, list, value, queue,
 * lock from several processes, Unix and TCP), authentication both ways, bounded frames before
 * and after authentication, malformed frames, idle connections, a killed server, restart,
 * owner death, the mproc-manager command, and the SHA-256 / HMAC test vectors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "manager_internal.h"
#include "mproc/manager.h"
#include "tap.h"

/* ---- helpers ---- */

static void hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static struct mproc_manager *start(const char *address)
{
	struct mproc_manager *m = NULL;
	struct mproc_manager_opts o = { .address = address };

	ASSERT_OK(mproc_manager_start(&m, &o));
	return m;
}

static struct mproc_mclient *connect_to(struct mproc_manager *m)
{
	struct mproc_mclient *c = NULL;
	size_t kl;
	const void *k = mproc_manager_key(m, &kl);

	ASSERT_OK(mproc_manager_connect(&c, mproc_manager_address(m), k, kl));
	return c;
}

/* A "Vm...:" line of /proc/PID/status in KiB, or -1. */
static long status_kib(pid_t pid, const char *field)
{
	size_t fl = strlen(field);
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':' &&
		    sscanf(line + fl + 1, "%ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static long rss_kib(pid_t pid)
{
	return status_kib(pid, "VmRSS");
}

/* A blocking raw socket to the server. */
static int raw_connect(const char *address)
{
	struct mproc__mgr_addr a;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	ASSERT_OK(mproc__mgr_addr_parse(address, &a));
	fd = mproc__mgr_socket(&a, &ss, &sl);
	ASSERT_OK(fd);
	ASSERT_OK(connect(fd, (struct sockaddr *)&ss, sl) == 0 ? 0 : -errno);
	return fd;
}

/* Read one frame (header + up to cap bytes of body); the op or -errno. */
static int raw_read(int fd, uint8_t *body, size_t cap, size_t *len)
{
	int64_t deadline = mproc__now_ns() + 5 * MPROC__NSEC_PER_SEC;
	uint8_t h[MPROC__MW_HDR];
	struct mproc__mw_hdr hd;
	ssize_t n;
	int r;

	n = mproc__read_all(fd, h, sizeof(h), deadline);
	if (n < 0)
		return (int)n;
	if (n < (ssize_t)sizeof(h))
		return -EPIPE;
	r = mproc__mw_hdr_parse(h, cap + MPROC__MW_HDR, &hd);
	if (r < 0)
		return r;
	n = mproc__read_all(fd, body, (size_t)hd.len, deadline);
	if (n < (ssize_t)hd.len)
		return -EPIPE;
	*len = (size_t)hd.len;
	return hd.op;
}

static void raw_send(int fd, uint8_t op, const void *body, size_t n)
{
	uint8_t h[MPROC__MW_HDR];

	mproc__mw_hdr_put(h, n, op);
	ASSERT_EQ(mproc__write_all(fd, h, sizeof(h), MPROC__NO_DEADLINE), sizeof(h));
	if (n)
		ASSERT_EQ(mproc__write_all(fd, body, n, MPROC__NO_DEADLINE), n);
}

/* Authenticate a raw connection. */
static void raw_auth_key(int fd, const void *k, size_t kl)
{
	uint8_t body[256], resp[64];
	size_t len;

	ASSERT_EQ(raw_read(fd, body, sizeof(body), &len), MPROC__MW_CHALLENGE);
	ASSERT_EQ(len, 32);
	mproc__mw_mac_client(k, kl, body, resp);
	memset(resp + 32, 7, 32);
	raw_send(fd, MPROC__MW_RESPONSE, resp, sizeof(resp));
	ASSERT_EQ(raw_read(fd, body, sizeof(body), &len), MPROC__MW_WELCOME);
}

static void raw_auth(int fd, struct mproc_manager *m)
{
	size_t kl;
	const void *k = mproc_manager_key(m, &kl);

	raw_auth_key(fd, k, kl);
}

/* Does the server close fd within s seconds (EOF or reset, after draining replies)? */
static bool raw_closed_within(int fd, double s)
{
	int64_t deadline = mproc__now_ns() + (int64_t)(s * 1e9);
	char buf[4096];
	ssize_t n;

	for (;;) {
		if (mproc__poll1(fd, POLLIN, deadline) < 0)
			return false;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return true;
	}
}

/* Channels mapped in this process (the memfd's name in /proc/self/maps). */
static int chan_maps(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memfd:mproc-manager-chan") != NULL;
	fclose(f);
	return n;
}

/* The calls after which a client sets its channel up (MPROC__MGR_CHAN_AFTER), and the one that
 * does: 0 or the first call's error. */
static int chan_warm(struct mproc_mclient *c)
{
	int r = 0;

	for (int i = 0; i <= MPROC__MGR_CHAN_AFTER && r == 0; i++)
		r = mproc_manager_ping(c);
	return r;
}

static void check_serving(struct mproc_manager *m)
{
	struct mproc_mclient *c = connect_to(m);

	CHECK_OK(mproc_manager_ping(c));
	mproc_manager_disconnect(c);
}

/* ---- SHA-256 / HMAC vectors (FIPS 180-2, RFC 4231) ---- */

static void t_sha256(void *arg)
{
	static const struct {
		const char *msg, *want;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	struct mproc__sha256 s;
	uint8_t d[32], a[1001];
	char h[65];
	size_t i;

	for (i = 0; i < MPROC__ARRAY_SIZE(v); i++) {
		mproc__sha256(v[i].msg, strlen(v[i].msg), d);
		hex(d, 32, h);
		CHECK_STR_EQ(h, v[i].want);
	}
	/* One million 'a', fed in uneven pieces. */
	memset(a, 'a', sizeof(a));
	mproc__sha256_init(&s);
	for (i = 0; i < 1000; i++)
		mproc__sha256_update(&s, a, i % 2 ? 999 : 1001);
	mproc__sha256_final(&s, d);
	hex(d, 32, h);
	CHECK_STR_EQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void t_hmac(void *arg)
{
	uint8_t k1[20], k6[131], d[32];
	char h[65];
	struct mproc__iov m1[] = { { "Hi ", 3 }, { "There", 5 } };
	struct mproc__iov m2[] = { { "what do ya want for nothing?", 28 } };
	static const char m6s[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	struct mproc__iov m6[] = { { m6s, sizeof(m6s) - 1 } };

	memset(k1, 0x0b, sizeof(k1));
	mproc__hmac_sha256(k1, sizeof(k1), m1, 2, d);
	hex(d, 32, h);
	CHECK_STR_EQ(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	mproc__hmac_sha256("Jefe", 4, m2, 1, d);
	hex(d, 32, h);
	CHECK_STR_EQ(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(k6, 0xaa, sizeof(k6));
	mproc__hmac_sha256(k6, sizeof(k6), m6, 1, d);
	hex(d, 32, h);
	CHECK_STR_EQ(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	CHECK(mproc__ct_equal("abc", "abc", 3));
	CHECK(!mproc__ct_equal("abc", "abd", 3));
}

/* ---- semantics ---- */

static void semantics(struct mproc_manager *m)
{
	struct mproc_mclient *c = connect_to(m);
	struct mproc_dict *d = NULL, *d2 = NULL;
	struct mproc_list *l = NULL;
	struct mproc_mvalue *v = NULL;
	struct mproc_mqueue *q = NULL;
	struct mproc_mlock *lk = NULL;
	struct mproc_list *wrong = NULL;
	char buf[64];
	int64_t x;
	double t0;

	CHECK_OK(mproc_manager_ping(c));
	/* dict */
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	CHECK_EQ(mproc_dict_len(d), 0);
	CHECK_OK(mproc_dict_set(d, "k", "hello", 5));
	CHECK_OK(mproc_dict_set(d, "empty", "", 0));
	CHECK_EQ(mproc_dict_get(d, "k", buf, sizeof(buf)), 5);
	CHECK_MEM_EQ(buf, "hello", 5);
	CHECK_EQ(mproc_dict_get(d, "k", buf, 2), 5);   /* prefix + full length */
	CHECK_EQ(mproc_dict_get(d, "empty", NULL, 0), 0);
	CHECK_OK(mproc_dict_set(d, "k", "bye", 3));
	CHECK_EQ(mproc_dict_get(d, "k", buf, sizeof(buf)), 3);
	CHECK_EQ(mproc_dict_len(d), 2);
	CHECK_ERR(mproc_dict_get(d, "nope", buf, sizeof(buf)), -ENOENT);
	CHECK_OK(mproc_dict_del(d, "k"));
	CHECK_ERR(mproc_dict_del(d, "k"), -ENOENT);
	CHECK_EQ(mproc_dict_len(d), 1);
	CHECK_ERR(mproc_dict_set(d, "", "x", 1), -EINVAL);
	CHECK_ERR(mproc_dict_set(d, NULL, "x", 1), -EINVAL);
	/* Same name, same object. */
	ASSERT_OK(mproc_dict_open(&d2, c, "d"));
	CHECK_EQ(mproc_dict_len(d2), 1);
	/* Same name, other kind. */
	CHECK_ERR(mproc_list_open(&wrong, c, "d"), -EINVAL);
	CHECK_ERR(mproc_dict_open(&d2, c, ""), -EINVAL);
	/* list */
	ASSERT_OK(mproc_list_open(&l, c, "l"));
	CHECK_OK(mproc_list_append(l, "a", 1));
	CHECK_OK(mproc_list_append(l, "bb", 2));
	CHECK_EQ(mproc_list_len(l), 2);
	CHECK_EQ(mproc_list_get(l, 1, buf, sizeof(buf)), 2);
	CHECK_EQ(mproc_list_get(l, -2, buf, sizeof(buf)), 1);
	CHECK_EQ(buf[0], 'a');
	CHECK_ERR(mproc_list_get(l, 2, buf, sizeof(buf)), -ERANGE);
	CHECK_ERR(mproc_list_get(l, -3, buf, sizeof(buf)), -ERANGE);
	/* value */
	ASSERT_OK(mproc_mvalue_open(&v, c, "v"));
	CHECK_OK(mproc_mvalue_get(v, &x));
	CHECK_EQ(x, 0);
	CHECK_OK(mproc_mvalue_set(v, INT64_MAX - 1));
	CHECK_OK(mproc_mvalue_add(v, 1, &x));
	CHECK_EQ(x, INT64_MAX);
	CHECK_ERR(mproc_mvalue_add(v, 1, &x), -ERANGE);
	CHECK_OK(mproc_mvalue_set_bytes(v, "xyz", 3));
	CHECK_ERR(mproc_mvalue_get(v, &x), -EINVAL);
	CHECK_EQ(mproc_mvalue_get_bytes(v, buf, sizeof(buf)), 3);
	CHECK_OK(mproc_mvalue_set(v, -5));
	CHECK_ERR(mproc_mvalue_get_bytes(v, buf, sizeof(buf)), -EINVAL);
	CHECK_OK(mproc_mvalue_get(v, &x));
	CHECK_EQ(x, -5);
	/* queue */
	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 2));
	CHECK_ERR(mproc_mqueue_get(q, buf, sizeof(buf), 0), -EAGAIN);
	t0 = tap_now();
	CHECK_ERR(mproc_mqueue_get(q, buf, sizeof(buf), 0.2), -ETIMEDOUT);
	CHECK_CMP(tap_now() - t0, >=, 0.2);
	CHECK_CMP(tap_now() - t0, <, 0.2 + 1.0 * tap_timeout_mult());
	CHECK_OK(mproc_mqueue_put(q, "1", 1, 0));
	CHECK_OK(mproc_mqueue_put(q, "2", 1, MPROC_FOREVER));
	CHECK_ERR(mproc_mqueue_put(q, "3", 1, 0), -EAGAIN);
	CHECK_ERR(mproc_mqueue_put(q, "3", 1, 0.05), -ETIMEDOUT);
	CHECK_ERR(mproc_mqueue_put(q, "3", 1, -2.0), -EINVAL);
	CHECK_EQ(mproc_mqueue_len(q), 2);
	CHECK_EQ(mproc_mqueue_get(q, buf, sizeof(buf), 0), 1);
	CHECK_EQ(buf[0], '1');
	CHECK_EQ(mproc_mqueue_get(q, buf, sizeof(buf), 1.0), 1);
	CHECK_EQ(buf[0], '2');
	/* lock */
	ASSERT_OK(mproc_mlock_open(&lk, c, "lk"));
	CHECK_ERR(mproc_mlock_release(lk), -EPERM);
	CHECK_OK(mproc_mlock_acquire(lk, 0));
	CHECK_ERR(mproc_mlock_acquire(lk, 0), -EDEADLK);
	CHECK_OK(mproc_mlock_release(lk));
	/* The client is still healthy after all those server-side errors. */
	CHECK_OK(mproc_manager_ping(c));

	mproc_dict_free(d);
	mproc_dict_free(d2);
	mproc_list_free(l);
	mproc_mvalue_free(v);
	mproc_mqueue_free(q);
	mproc_mlock_free(lk);
	mproc_manager_disconnect(c);
}

static void t_semantics(void *arg)
{
	struct mproc_manager *m = start(arg);
	char path[128];
	struct stat st;

	semantics(m);
	snprintf(path, sizeof(path), "%s", mproc_manager_address(m));
	CHECK_EQ(mproc_manager_stop(m), 0);
	if (strncmp(path, "unix:", 5) == 0)
		CHECK_ERR(stat(path + 5, &st) == 0 ? 0 : -errno, -ENOENT);
}

/*
 * A proxy's _free releases the proxy only: the object, with what it holds, stays on the server
 * and a later open finds it. NULL is a no-op. _close, the old name, is the same call.
 */
static void t_proxy_free(void *arg)
{
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *c = connect_to(m);
	struct mproc_dict *d = NULL;
	struct mproc_list *l = NULL;
	struct mproc_mvalue *v = NULL;
	struct mproc_mqueue *q = NULL;
	struct mproc_mlock *lk = NULL;
	char buf[8];
	int64_t x = 0;

	mproc_dict_free(NULL);
	mproc_list_free(NULL);
	mproc_mvalue_free(NULL);
	mproc_mqueue_free(NULL);
	mproc_mlock_free(NULL);
	mproc_dict_close(NULL);
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	ASSERT_OK(mproc_list_open(&l, c, "l"));
	ASSERT_OK(mproc_mvalue_open(&v, c, "v"));
	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 0));
	ASSERT_OK(mproc_mlock_open(&lk, c, "lk"));
	CHECK_OK(mproc_dict_set(d, "k", "v", 1));
	CHECK_OK(mproc_list_append(l, "a", 1));
	CHECK_OK(mproc_mvalue_set(v, 7));
	CHECK_OK(mproc_mqueue_put(q, "i", 1, 0));
	CHECK_OK(mproc_mlock_acquire(lk, 0));
	mproc_dict_free(d);
	mproc_list_free(l);
	mproc_mvalue_free(v);
	mproc_mqueue_free(q);
	mproc_mlock_close(lk);          /* the old name */

	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	ASSERT_OK(mproc_list_open(&l, c, "l"));
	ASSERT_OK(mproc_mvalue_open(&v, c, "v"));
	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 0));
	ASSERT_OK(mproc_mlock_open(&lk, c, "lk"));
	CHECK_EQ(mproc_dict_get(d, "k", buf, sizeof(buf)), 1);
	CHECK_EQ(mproc_list_len(l), 1);
	CHECK_OK(mproc_mvalue_get(v, &x));
	CHECK_EQ(x, 7);
	CHECK_EQ(mproc_mqueue_get(q, buf, sizeof(buf), 0), 1);
	CHECK_ERR(mproc_mlock_acquire(lk, 0), -EDEADLK);        /* still held by this client */
	CHECK_OK(mproc_mlock_release(lk));
	mproc_dict_free(d);
	mproc_list_free(l);
	mproc_mvalue_free(v);
	mproc_mqueue_free(q);
	mproc_mlock_free(lk);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* 4 processes hammer the same objects. */
#define NPROC 4
#define NITER 200

static void t_four_procs(void *arg)
{
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *c;
	struct mproc_mvalue *v = NULL, *v2 = NULL;
	struct mproc_list *l = NULL;
	struct mproc_dict *d = NULL;
	struct mproc_mqueue *q = NULL;
	pid_t pids[NPROC];
	int i, status, got = 0;
	int64_t x;
	char buf[16];

	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		ASSERT(pids[i] >= 0);
		if (pids[i] == 0) {
			struct mproc_mclient *cc;
			struct mproc_mvalue *cv, *cv2;
			struct mproc_list *cl;
			struct mproc_dict *cd;
			struct mproc_mqueue *cq;
			struct mproc_mlock *ck;
			size_t kl;
			const void *k = mproc_manager_key(m, &kl);
			char key[16];
			int j, bad = 0;

			if (mproc_manager_connect(&cc, mproc_manager_address(m), k, kl) < 0)
				_exit(10);
			if (mproc_mvalue_open(&cv, cc, "counter") < 0 ||
			    mproc_mvalue_open(&cv2, cc, "locked") < 0 ||
			    mproc_list_open(&cl, cc, "list") < 0 || mproc_dict_open(&cd, cc, "dict") < 0 ||
			    mproc_mqueue_open(&cq, cc, "q", 0) < 0 || mproc_mlock_open(&ck, cc, "lock") < 0)
				_exit(11);
			for (j = 0; j < NITER; j++) {
				int64_t y;

				bad |= mproc_mvalue_add(cv, 1, NULL) < 0;
				bad |= mproc_list_append(cl, &i, sizeof(i)) < 0;
				snprintf(key, sizeof(key), "%d-%d", i, j);
				bad |= mproc_dict_set(cd, key, &j, sizeof(j)) < 0;
				bad |= mproc_mqueue_put(cq, &i, sizeof(i), MPROC_FOREVER) < 0;
				/* read-modify-write under the manager's lock */
				bad |= mproc_mlock_acquire(ck, MPROC_FOREVER) < 0;
				bad |= mproc_mvalue_get(cv2, &y) < 0;
				bad |= mproc_mvalue_set(cv2, y + 1) < 0;
				bad |= mproc_mlock_release(ck) < 0;
			}
			_exit(bad ? 12 : 0);
		}
	}
	c = connect_to(m);
	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 0));
	/* Drain the queue while the children fill it (blocking gets, parked on the server). */
	for (got = 0; got < NPROC * NITER; got++)
		if (mproc_mqueue_get(q, buf, sizeof(buf), 10.0) != sizeof(int))
			break;
	CHECK_EQ(got, NPROC * NITER);
	for (i = 0; i < NPROC; i++) {
		CHECK_EQ(waitpid(pids[i], &status, 0), pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ASSERT_OK(mproc_mvalue_open(&v, c, "counter"));
	ASSERT_OK(mproc_mvalue_open(&v2, c, "locked"));
	ASSERT_OK(mproc_list_open(&l, c, "list"));
	ASSERT_OK(mproc_dict_open(&d, c, "dict"));
	CHECK_OK(mproc_mvalue_get(v, &x));
	CHECK_EQ(x, NPROC * NITER);
	CHECK_OK(mproc_mvalue_get(v2, &x));
	CHECK_EQ(x, NPROC * NITER);
	CHECK_EQ(mproc_list_len(l), NPROC * NITER);
	CHECK_EQ(mproc_dict_len(d), NPROC * NITER);
	CHECK_EQ(mproc_mqueue_len(q), 0);
	mproc_mvalue_free(v);
	mproc_mvalue_free(v2);
	mproc_list_free(l);
	mproc_dict_free(d);
	mproc_mqueue_free(q);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* A parked get does not block other clients; a put from another process wakes it. */
static void t_parked(void *arg)
{
	struct mproc_manager *m = start(NULL);
	struct mproc_mclient *c, *c2;
	struct mproc_mqueue *q = NULL, *q2 = NULL;
	struct mproc_mlock *l1 = NULL, *l2 = NULL;
	char buf[8];
	pid_t pid;
	int status;

	/* Fork before connecting: a child that inherits a client's socket keeps that
	 * connection open after the parent closes it. */
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		struct mproc_mclient *cc;
		struct mproc_mqueue *cq;
		struct mproc_mlock *cl;
		size_t kl;
		const void *k = mproc_manager_key(m, &kl);
		int r;

		if (mproc_manager_connect(&cc, mproc_manager_address(m), k, kl) < 0 ||
		    mproc_mqueue_open(&cq, cc, "q", 0) < 0 || mproc_mlock_open(&cl, cc, "lock") < 0)
			_exit(10);
		if (mproc_mqueue_get(cq, buf, sizeof(buf), MPROC_FOREVER) != 2 || memcmp(buf, "hi", 2))
			_exit(11);
		/* The parent holds the lock and dies (disconnects) while holding it. */
		r = mproc_mlock_acquire(cl, 10.0);
		_exit(r == -EOWNERDEAD ? 0 : 12);
	}
	c = connect_to(m);
	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 0));
	ASSERT_OK(mproc_mlock_open(&l1, c, "lock"));
	CHECK_OK(mproc_mlock_acquire(l1, MPROC_FOREVER));
	c2 = connect_to(m);
	usleep(100 * 1000);
	CHECK_OK(mproc_manager_ping(c2));       /* served while the child's get is parked */
	ASSERT_OK(mproc_mqueue_open(&q2, c2, "q", 0));
	CHECK_OK(mproc_mqueue_put(q2, "hi", 2, 0));
	ASSERT_OK(mproc_mlock_open(&l2, c2, "lock"));
	CHECK_ERR(mproc_mlock_acquire(l2, 0.05), -ETIMEDOUT);
	usleep(100 * 1000);
	/* Closing c (the holder) hands the lock to the child as "owner died". */
	mproc_mqueue_free(q);
	mproc_mlock_free(l1);
	mproc_manager_disconnect(c);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The child died holding it: the next acquirer learns that too. */
	CHECK_ERR(mproc_mlock_acquire(l2, 5.0), -EOWNERDEAD);
	CHECK_OK(mproc_mlock_release(l2));
	CHECK_OK(mproc_mlock_acquire(l2, 0));
	mproc_mqueue_free(q2);
	mproc_mlock_free(l2);
	mproc_manager_disconnect(c2);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* ---- authentication ---- */

static void t_wrong_key(void *arg)
{
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *c = NULL;
	uint8_t key[32];
	size_t kl;
	const uint8_t *k = mproc_manager_key(m, &kl);

	memcpy(key, k, 32);
	key[31] ^= 1;
	CHECK_ERR(mproc_manager_connect(&c, mproc_manager_address(m), key, sizeof(key)), -EACCES);
	CHECK_ERR(mproc_manager_connect(&c, mproc_manager_address(m), key, 31), -EINVAL);
	check_serving(m);       /* the server keeps serving others */
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* A server that does not know the key cannot pass itself off as the manager. */
static void t_fake_server(void *arg)
{
	char dir[] = "/tmp/mproc-test-XXXXXX", addr[128];
	struct mproc__mgr_addr a;
	struct mproc_mclient *c = NULL;
	uint8_t key[32] = { 1 }, body[256], ns[32] = { 2 }, welcome[40] = { 3 };
	size_t len;
	pid_t pid;
	int lfd, status;

	ASSERT(mkdtemp(dir));
	snprintf(addr, sizeof(addr), "unix:%s/s", dir);
	ASSERT_OK(mproc__mgr_addr_parse(addr, &a));
	lfd = mproc__mgr_listen(&a);
	ASSERT_OK(lfd);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			_exit(1);
		raw_send(fd, MPROC__MW_CHALLENGE, ns, sizeof(ns));
		if (raw_read(fd, body, sizeof(body), &len) != MPROC__MW_RESPONSE)
			_exit(2);
		raw_send(fd, MPROC__MW_WELCOME, welcome, sizeof(welcome));
		raw_closed_within(fd, 5);
		_exit(0);
	}
	CHECK_ERR(mproc_manager_connect(&c, addr, key, sizeof(key)), -EACCES);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	mproc__close(lfd);
	unlink(a.path);
	rmdir(dir);
}

/*
 * A server of a build before the channel (the same wire version, no CHANNEL op: it hangs up on
 * it): the client connects once more and stays on the socket, and its calls work.
 */
static void old_server_conn(int fd, const uint8_t *key, size_t kl, bool serve)
{
	uint8_t body[256], ns[32] = { 2 }, welcome[40];
	size_t len;
	int op;

	raw_send(fd, MPROC__MW_CHALLENGE, ns, sizeof(ns));
	if (raw_read(fd, body, sizeof(body), &len) != MPROC__MW_RESPONSE || len != 64)
		_exit(2);
	mproc__mw_mac_server(key, kl, body + 32, ns, welcome);
	mproc__mw_put_u64(welcome + 32, 65536);
	raw_send(fd, MPROC__MW_WELCOME, welcome, sizeof(welcome));
	while ((op = raw_read(fd, body, sizeof(body), &len)) > 0) {
		if (op != MPROC__MW_PING || !serve)
			return;         /* what an old server does with an op it does not know */
		mproc__mw_put_u32(body, 0);
		raw_send(fd, MPROC__MW_REPLY, body, 4);
	}
}

static void t_old_server(void *arg)
{
	char dir[] = "/tmp/mproc-test-XXXXXX", addr[128];
	static const uint8_t key[32] = "an old server's key, 32 bytes..";
	struct mproc__mgr_addr a;
	struct mproc_mclient *c = NULL;
	int lfd, status, maps0 = chan_maps();
	pid_t pid;

	ASSERT(mkdtemp(dir));
	snprintf(addr, sizeof(addr), "unix:%s/s", dir);
	ASSERT_OK(mproc__mgr_addr_parse(addr, &a));
	lfd = mproc__mgr_listen(&a);
	ASSERT_OK(lfd);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 2; i++) {
			int64_t until = mproc__now_ns() + 5 * MPROC__NSEC_PER_SEC;
			int fd;

			if (mproc__poll1(lfd, POLLIN, until) < 0)
				_exit(3);       /* no second connection */
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				_exit(1);
			old_server_conn(fd, key, sizeof(key), i == 1);
			close(fd);
		}
		_exit(0);
	}
	CHECK_OK(mproc_manager_connect(&c, addr, key, sizeof(key)));
	CHECK_EQ(chan_maps(), maps0);
	/* Past the calls after which a channel would be asked for: never asked (it hangs up). */
	CHECK_OK(chan_warm(c));
	CHECK_OK(mproc_manager_ping(c));
	CHECK_EQ(chan_maps(), maps0);
	mproc_manager_disconnect(c);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	mproc__close(lfd);
	unlink(a.path);
	rmdir(dir);
}

/* Length prefixes of 0x7fffffff and 2^63 before authentication: disconnected, no allocation. */
static void t_huge_prefix(void *arg)
{
	struct mproc_manager *m = start(arg);
	static const uint64_t lens[] = { 0x7fffffffu, UINT64_C(1) << 63, UINT64_MAX, 245 };
	long before, after;
	uint8_t body[64], h[MPROC__MW_HDR];
	size_t i, len;
	int fd;

	check_serving(m);
	before = rss_kib(mproc_manager_pid(m));
	ASSERT(before > 0);
	for (i = 0; i < MPROC__ARRAY_SIZE(lens); i++) {
		fd = raw_connect(mproc_manager_address(m));
		CHECK_EQ(raw_read(fd, body, sizeof(body), &len), MPROC__MW_CHALLENGE);
		mproc__mw_hdr_put(h, lens[i], MPROC__MW_RESPONSE);
		CHECK_EQ(mproc__write_all(fd, h, sizeof(h), MPROC__NO_DEADLINE), sizeof(h));
		CHECK(raw_closed_within(fd, 2.0 * tap_timeout_mult()));
		mproc__close(fd);
	}
	after = rss_kib(mproc_manager_pid(m));
	tap_diag("server VmRSS %ld -> %ld KiB", before, after);
	CHECK_CMP(after - before, <, 1024);
	check_serving(m);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* After authentication, frames that claim up to max_frame but send a few bytes: the server
 * reserves memory for the bytes that came, not for the claim (its address space stays put). */
static void t_claimed_length(void *arg)
{
	enum { NCONN = 4 };
	struct mproc_manager *m = start(arg);
	uint8_t f[32] = { 0 };
	long before, after;
	int fds[NCONN], i;

	check_serving(m);
	before = status_kib(mproc_manager_pid(m), "VmSize");
	ASSERT(before > 0);
	for (i = 0; i < NCONN; i++) {
		fds[i] = raw_connect(mproc_manager_address(m));
		raw_auth(fds[i], m);
		mproc__mw_hdr_put(f, MPROC_MANAGER_MAX_FRAME_DEFAULT - 64, MPROC__MW_DICT_SET);
		CHECK_EQ(mproc__write_all(fds[i], f, sizeof(f), MPROC__NO_DEADLINE), sizeof(f));
	}
	check_serving(m);       /* the server has read those bytes by now */
	after = status_kib(mproc_manager_pid(m), "VmSize");
	tap_diag("server VmSize %ld -> %ld KiB with %d frames claiming %u bytes each", before,
		 after, NCONN, MPROC_MANAGER_MAX_FRAME_DEFAULT - 64);
	CHECK_CMP(after - before, <, 4096);
	for (i = 0; i < NCONN; i++)
		mproc__close(fds[i]);
	check_serving(m);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* 200 idle unauthenticated connections do not delay an authenticated client. */
static void t_idle_preauth(void *arg)
{
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *c;
	struct mproc_dict *d = NULL;
	int fds[200], i;
	double t0, dt;
	char buf[8];

	for (i = 0; i < 200; i++)
		fds[i] = raw_connect(mproc_manager_address(m));
	t0 = tap_now();
	c = connect_to(m);
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	for (i = 0; i < 100; i++) {
		CHECK_OK(mproc_dict_set(d, "k", "v", 1));
		CHECK_EQ(mproc_dict_get(d, "k", buf, sizeof(buf)), 1);
	}
	dt = tap_now() - t0;
	tap_diag("connect + 200 calls beside 200 idle connections: %.3f s", dt);
	/* Behaviour, not speed: "not delayed" means far from the 5 s handshake deadline. */
	CHECK_CMP(dt, <, 2.0 * tap_timeout_mult());
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	for (i = 0; i < 200; i++)
		mproc__close(fds[i]);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* A client that pipelines requests and reads late: partial writes, output buffered in order. */
static void t_slow_reader(void *arg)
{
	enum { N = 300, BIG = 60000 };
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *c = connect_to(m);
	struct mproc_dict *d = NULL;
	uint8_t *val = malloc(BIG), *body = malloc(BIG + 64), req[32];
	size_t len, rl;
	pid_t pid;
	int fd, i, status, good = 0;

	ASSERT(val && body);
	for (i = 0; i < BIG; i++)
		val[i] = (uint8_t)(i * 7);
	ASSERT_OK(mproc_dict_open(&d, c, "d"));         /* the first object: id 1 */
	ASSERT_OK(mproc_dict_set(d, "big", val, BIG));
	fd = raw_connect(mproc_manager_address(m));
	raw_auth(fd, m);
	rl = MPROC__MW_HDR + 4 + 4 + 3;
	mproc__mw_hdr_put(req, rl - MPROC__MW_HDR, MPROC__MW_DICT_GET);
	mproc__mw_put_u32(req + 12, 1);
	mproc__mw_put_u32(req + 16, 3);
	memcpy(req + 20, "big", 3);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		for (i = 0; i < N; i++)
			if (mproc__write_all(fd, req, rl, MPROC__NO_DEADLINE) != (ssize_t)rl)
				_exit(1);
		_exit(0);
	}
	usleep(200 * 1000);     /* let the server's output back up */
	for (i = 0; i < N; i++) {
		if (raw_read(fd, body, BIG + 64, &len) != MPROC__MW_REPLY || len != BIG + 4 ||
		    mproc__mw_u32(body) != 0 || memcmp(body + 4, val, BIG) != 0)
			break;
		good++;
	}
	CHECK_EQ(good, N);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	mproc__close(fd);
	CHECK_OK(mproc_manager_ping(c));
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	free(val);
	free(body);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/*
 * A client that pipelines dict_get requests for a 1 MiB value and never reads the replies
 * (issue 16: the server's RSS grew to 1.4 GiB and other clients timed out). The server stops
 * reading a connection once MPROC_MANAGER_PENDING_MAX bytes of its replies are unsent, so its
 * RSS stays under what that bound allows: the unsent replies (the bound plus the one reply
 * that crossed it, in a buffer that grows by doubling), one 64 KiB read of requests, and
 * slack for the allocator. A second client is served throughout, and the first one gets every
 * reply, in order, once it reads.
 */
static void t_pipeline_no_read(void *arg)
{
	enum { N = 1500, BIG = 1 << 20, REQ = MPROC__MW_HDR + 4 + 4 + 3 };
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *c = connect_to(m), *c2 = connect_to(m);
	struct mproc_dict *d = NULL, *d2 = NULL;
	pid_t spid = mproc_manager_pid(m);
	uint8_t *val = malloc(BIG), *body = malloc(BIG + 64), *reqs = malloc((size_t)N * REQ);
	long rss0, rss, peak, limit;
	size_t len;
	int fd, i, calls = 0, good = 0, replies = 0;
	double t0;
	char buf[8];

	ASSERT(val && body && reqs);
	for (i = 0; i < BIG; i++)
		val[i] = (uint8_t)(i * 13);
	ASSERT_OK(mproc_dict_open(&d, c, "d"));         /* the first object: id 1 */
	ASSERT_OK(mproc_dict_set(d, "big", val, BIG));
	ASSERT_OK(mproc_dict_set(d, "k", "v", 1));
	ASSERT_OK(mproc_dict_open(&d2, c2, "d"));
	CHECK_EQ(mproc_dict_get(d2, "k", buf, sizeof(buf)), 1);
	for (i = 0; i < N; i++) {
		uint8_t *q = reqs + (size_t)i * REQ;

		mproc__mw_hdr_put(q, REQ - MPROC__MW_HDR, MPROC__MW_DICT_GET);
		mproc__mw_put_u32(q + 12, 1);
		mproc__mw_put_u32(q + 16, 3);
		memcpy(q + 20, "big", 3);
	}
	fd = raw_connect(mproc_manager_address(m));
	raw_auth(fd, m);
	rss0 = rss_kib(spid);
	limit = rss0 + (long)((2 * ((size_t)MPROC_MANAGER_PENDING_MAX + BIG + 64) + 65536) / 1024) +
		8192;
	ASSERT_EQ(mproc__write_all(fd, reqs, (size_t)N * REQ, MPROC__NO_DEADLINE),
		  (ssize_t)N * REQ);
	/* At least a second and 200 calls of the other client, sampling the server's RSS. */
	peak = rss0;
	t0 = tap_now();
	while (calls < 200 || tap_now() - t0 < 1.0) {
		good += mproc_dict_get(d2, "k", buf, sizeof(buf)) == 1;
		calls++;
		rss = rss_kib(spid);
		if (rss > peak)
			peak = rss;
		if (rss > limit)
			break;
	}
	tap_diag("server VmRSS %ld KiB before, peak %ld KiB (limit %ld) over %d calls of another "
		 "client in %.2f s", rss0, peak, limit, calls, tap_now() - t0);
	CHECK_CMP(peak, <=, limit);
	CHECK_EQ(good, calls);
	/* Now read: every reply arrives, whole and in order. */
	for (i = 0; i < N; i++) {
		if (raw_read(fd, body, BIG + 64, &len) != MPROC__MW_REPLY || len != BIG + 4 ||
		    mproc__mw_u32(body) != 0 ||
		    ((i == 0 || i == N - 1) && memcmp(body + 4, val, BIG) != 0))
			break;
		replies++;
	}
	CHECK_EQ(replies, N);
	mproc__close(fd);
	CHECK_EQ(mproc_dict_get(d2, "k", buf, sizeof(buf)), 1);
	mproc_dict_free(d2);
	mproc_dict_free(d);
	mproc_manager_disconnect(c2);
	mproc_manager_disconnect(c);
	free(reqs);
	free(body);
	free(val);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/*
 * The server at its fd limit (issue 16: accept4's EMFILE evicted the connection accepted just
 * before, which got a challenge and then a reset). With nine authenticated clients, its
 * RLIMIT_NOFILE is lowered so that one more connection fits; two connect at once: the first is
 * accepted and authenticates, the second is refused cleanly (closed before any challenge); a
 * client connecting then gets -EPIPE at once, not a timeout. Every authenticated client is
 * served throughout, and once one leaves a new client gets in.
 */
static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

static void t_fd_limit(void *arg)
{
	enum { NCLI = 9 };
	struct mproc_mclient_opts co = { .connect_timeout_s = 10.0 * tap_timeout_mult() };
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *cli[NCLI] = { NULL }, *x = NULL;
	struct mproc_dict *d[NCLI] = { NULL };
	pid_t spid = mproc_manager_pid(m);
	const void *k;
	size_t kl, len;
	struct rlimit rl;
	uint8_t body[256], resp[64];
	char key[16], buf[16];
	int i, nfd, a, b, r, good = 0;
	double t0;

	k = mproc_manager_key(m, &kl);
	for (i = 0; i < NCLI; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_OK(mproc_manager_connect_opts(&cli[i], mproc_manager_address(m), k, kl,
						     &co));
		ASSERT_OK(mproc_dict_open(&d[i], cli[i], "d"));
		CHECK_OK(mproc_dict_set(d[i], key, key, strlen(key)));
	}
	/* Counted now that the server has served a call: its start-up fds are closed. */
	nfd = count_fds(spid);
	ASSERT(nfd > 0);
	ASSERT_OK(prlimit(spid, RLIMIT_NOFILE, NULL, &rl) == 0 ? 0 : -errno);
	rl.rlim_cur = (rlim_t)nfd + 1;
	ASSERT_OK(prlimit(spid, RLIMIT_NOFILE, &rl, NULL) == 0 ? 0 : -errno);
	/* Two at once: the first takes the last fd, the second finds none. */
	a = raw_connect(mproc_manager_address(m));
	b = raw_connect(mproc_manager_address(m));
	r = raw_read(b, body, sizeof(body), &len);
	tap_diag("second connection beyond the limit: %s", r < 0 ? mproc_strerror(r) : "a frame");
	CHECK(r == -EPIPE || r == -ECONNRESET);
	CHECK_EQ(raw_read(a, body, sizeof(body), &len), MPROC__MW_CHALLENGE);
	mproc__mw_mac_client(k, kl, body, resp);
	memset(resp + 32, 7, 32);
	raw_send(a, MPROC__MW_RESPONSE, resp, sizeof(resp));
	CHECK_EQ(raw_read(a, body, sizeof(body), &len), MPROC__MW_WELCOME);
	raw_send(a, MPROC__MW_PING, NULL, 0);
	CHECK_EQ(raw_read(a, body, sizeof(body), &len), MPROC__MW_REPLY);
	/* A client now: refused at once, not left to time out. */
	t0 = tap_now();
	r = mproc_manager_connect_opts(&x, mproc_manager_address(m), k, kl, &co);
	tap_diag("connect at the limit: %s after %.3f s", mproc_strerror(r), tap_now() - t0);
	CHECK_ERR(r, -EPIPE);
	mproc_manager_disconnect(x);
	x = NULL;
	for (i = 0; i < NCLI; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		good += mproc_dict_get(d[i], key, buf, sizeof(buf)) == (ssize_t)strlen(key);
	}
	CHECK_EQ(good, NCLI);
	/* One leaves: a new client gets in (once the server has closed its end). */
	mproc_dict_free(d[0]);
	d[0] = NULL;
	mproc_manager_disconnect(cli[0]);
	cli[0] = NULL;
	t0 = tap_now();
	do {
		r = mproc_manager_connect_opts(&x, mproc_manager_address(m), k, kl, &co);
		if (r == -EPIPE)
			usleep(10 * 1000);
	} while (r == -EPIPE && tap_now() - t0 < 5.0 * tap_timeout_mult());
	CHECK_OK(r);
	if (r == 0)
		CHECK_OK(mproc_manager_ping(x));
	mproc_manager_disconnect(x);
	for (i = 0; i < NCLI; i++) {
		mproc_dict_free(d[i]);
		mproc_manager_disconnect(cli[i]);
	}
	mproc__close(a);
	mproc__close(b);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* A client that never authenticates is dropped after the 5 s handshake deadline. */
static void t_handshake_deadline(void *arg)
{
	struct mproc_manager *m = start(arg);
	uint8_t body[64];
	size_t len;
	double t0 = tap_now(), dt;
	int fd = raw_connect(mproc_manager_address(m));

	CHECK_EQ(raw_read(fd, body, sizeof(body), &len), MPROC__MW_CHALLENGE);
	CHECK(raw_closed_within(fd, 5.0 + 2.0 * tap_timeout_mult()));
	dt = tap_now() - t0;
	tap_diag("unauthenticated connection closed after %.2f s", dt);
	CHECK_CMP(dt, >=, 4.9);
	mproc__close(fd);
	check_serving(m);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* ---- malformed frames after authentication ---- */

static void t_malformed(void *arg)
{
	struct mproc_manager *m = start(arg);
	uint8_t f[64], body[64];
	size_t len;
	int fd, i;

	for (i = 0; i < 9; i++) {
		size_t n = 0;

		fd = raw_connect(mproc_manager_address(m));
		raw_auth(fd, m);
		switch (i) {
		case 0: /* wrong version */
			mproc__mw_hdr_put(f, 0, MPROC__MW_PING);
			f[8] = 2;
			n = MPROC__MW_HDR;
			break;
		case 1: /* unknown op */
			mproc__mw_hdr_put(f, 0, 99);
			n = MPROC__MW_HDR;
			break;
		case 2: /* a pre-auth op after auth */
			mproc__mw_hdr_put(f, 0, MPROC__MW_RESPONSE);
			n = MPROC__MW_HDR;
			break;
		case 3: /* oversized: over the 64 MiB default */
			mproc__mw_hdr_put(f, UINT64_C(1) << 40, MPROC__MW_DICT_SET);
			n = MPROC__MW_HDR;
			break;
		case 4: /* string length past the body */
			mproc__mw_hdr_put(f, 12, MPROC__MW_DICT_GET);
			mproc__mw_put_u32(f + 12, 1);
			mproc__mw_put_u32(f + 16, 1000);
			memcpy(f + 20, "abcd", 4);
			n = 24;
			break;
		case 5: /* trailing bytes */
			mproc__mw_hdr_put(f, 5, MPROC__MW_DICT_LEN);
			memset(f + 12, 0, 5);
			n = 17;
			break;
		case 6: /* body too short for its fields */
			mproc__mw_hdr_put(f, 2, MPROC__MW_VALUE_SET);
			n = 14;
			break;
		case 7: /* nonzero flags */
			mproc__mw_hdr_put(f, 0, MPROC__MW_PING);
			f[10] = 1;
			n = MPROC__MW_HDR;
			break;
		case 8: /* truncated: the peer stops mid-frame */
			mproc__mw_hdr_put(f, 100, MPROC__MW_LIST_APPEND);
			n = 20;
			break;
		}
		CHECK_EQ(mproc__write_all(fd, f, n, MPROC__NO_DEADLINE), n);
		if (i == 8)
			shutdown(fd, SHUT_WR);
		if (!raw_closed_within(fd, 2.0 * tap_timeout_mult()))
			tap_fail_at(__FILE__, __LINE__, "malformed frame %d: not closed", i);
		mproc__close(fd);
	}
	/* A well-formed request on a raw connection works (the test's framing is right). */
	fd = raw_connect(mproc_manager_address(m));
	raw_auth(fd, m);
	raw_send(fd, MPROC__MW_PING, NULL, 0);
	CHECK_EQ(raw_read(fd, body, sizeof(body), &len), MPROC__MW_REPLY);
	CHECK_EQ(len, 4);
	CHECK_EQ(mproc__mw_u32(body), 0);
	mproc__close(fd);
	check_serving(m);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* ---- death and restart ---- */

static void t_server_killed(void *arg)
{
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *c = connect_to(m);
	struct mproc_dict *d = NULL;
	char buf[8];
	double t0;

	pid_t waiter;
	int status;

	/* A child parked in a blocking get must learn of the death too. */
	waiter = fork();
	ASSERT(waiter >= 0);
	if (waiter == 0) {
		struct mproc_mclient *cc;
		struct mproc_mqueue *cq;
		size_t kl;
		const void *k = mproc_manager_key(m, &kl);

		if (mproc_manager_connect(&cc, mproc_manager_address(m), k, kl) < 0 ||
		    mproc_mqueue_open(&cq, cc, "q", 0) < 0)
			_exit(10);
		_exit(mproc_mqueue_get(cq, buf, sizeof(buf), MPROC_FOREVER) == -EPIPE ? 0 : 11);
	}
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	CHECK_OK(mproc_dict_set(d, "k", "v", 1));
	usleep(100 * 1000);
	kill(mproc_manager_pid(m), SIGINT);     /* ignored */
	usleep(50 * 1000);
	CHECK_EQ(mproc_dict_get(d, "k", buf, sizeof(buf)), 1);
	kill(mproc_manager_pid(m), SIGKILL);
	t0 = tap_now();
	CHECK_ERR(mproc_dict_get(d, "k", buf, sizeof(buf)), -EPIPE);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	CHECK_ERR(mproc_dict_set(d, "k", "v", 1), -EPIPE);
	CHECK_ERR(mproc_manager_ping(c), -EPIPE);
	CHECK_EQ(waitpid(waiter, &status, 0), waiter);
	CHECK_CMP(tap_now() - t0, <, 1.0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), -SIGKILL);
}

/* Every kind of proxy call learns of a SIGKILLed server within 1 s, each on its own healthy
 * client (a broken client would answer -EPIPE without asking the server). */
struct all_proxies {
	struct mproc_mclient *c;
	struct mproc_dict *d;
	struct mproc_list *l;
	struct mproc_mvalue *v;
	struct mproc_mqueue *q;
	struct mproc_mlock *lk;
};

static const char *const every_call[] = {
	"ping", "dict_open", "dict_set", "dict_get", "dict_del", "dict_len", "list_append",
	"list_get", "list_len", "mvalue_set", "mvalue_get", "mvalue_add", "mvalue_set_bytes",
	"mvalue_get_bytes", "mqueue_put", "mqueue_get", "mqueue_len", "mlock_acquire",
	"mlock_release",
};

static long long one_call(struct all_proxies *p, size_t i)
{
	struct mproc_dict *d2 = NULL;
	char buf[8];
	int64_t x;

	switch (i) {
	case 0: return mproc_manager_ping(p->c);
	case 1: return mproc_dict_open(&d2, p->c, "d2");
	case 2: return mproc_dict_set(p->d, "k", "v", 1);
	case 3: return mproc_dict_get(p->d, "k", buf, sizeof(buf));
	case 4: return mproc_dict_del(p->d, "k");
	case 5: return mproc_dict_len(p->d);
	case 6: return mproc_list_append(p->l, "x", 1);
	case 7: return mproc_list_get(p->l, 0, buf, sizeof(buf));
	case 8: return mproc_list_len(p->l);
	case 9: return mproc_mvalue_set(p->v, 1);
	case 10: return mproc_mvalue_get(p->v, &x);
	case 11: return mproc_mvalue_add(p->v, 1, &x);
	case 12: return mproc_mvalue_set_bytes(p->v, "b", 1);
	case 13: return mproc_mvalue_get_bytes(p->v, buf, sizeof(buf));
	case 14: return mproc_mqueue_put(p->q, "x", 1, MPROC_FOREVER);
	case 15: return mproc_mqueue_get(p->q, buf, sizeof(buf), MPROC_FOREVER);
	case 16: return mproc_mqueue_len(p->q);
	case 17: return mproc_mlock_acquire(p->lk, MPROC_FOREVER);
	default: return mproc_mlock_release(p->lk);
	}
}

static void t_every_call_dead(void *arg)
{
	enum { N = MPROC__ARRAY_SIZE(every_call) };
	struct mproc_manager *m = start(arg);
	struct all_proxies p[N];
	size_t i;
	double t0, dt;

	memset(p, 0, sizeof(p));
	for (i = 0; i < N; i++) {
		p[i].c = connect_to(m);
		ASSERT_OK(mproc_dict_open(&p[i].d, p[i].c, "d"));
		ASSERT_OK(mproc_list_open(&p[i].l, p[i].c, "l"));
		ASSERT_OK(mproc_mvalue_open(&p[i].v, p[i].c, "v"));
		ASSERT_OK(mproc_mqueue_open(&p[i].q, p[i].c, "q", 0));
		ASSERT_OK(mproc_mlock_open(&p[i].lk, p[i].c, "lk"));
	}
	ASSERT_OK(kill(mproc_manager_pid(m), SIGKILL) == 0 ? 0 : -errno);
	for (i = 0; i < N; i++) {
		long long r;

		t0 = tap_now();
		r = one_call(&p[i], i);
		dt = tap_now() - t0;
		if (r != -EPIPE || dt >= 1.0 * tap_timeout_mult())
			tap_diag("%s: %lld after %.3f s", every_call[i], r, dt);
		CHECK_EQ(r, -EPIPE);
		CHECK_CMP(dt, <, 1.0 * tap_timeout_mult());
	}
	for (i = 0; i < N; i++) {
		mproc_dict_free(p[i].d);
		mproc_list_free(p[i].l);
		mproc_mvalue_free(p[i].v);
		mproc_mqueue_free(p[i].q);
		mproc_mlock_free(p[i].lk);
		mproc_manager_disconnect(p[i].c);
	}
	CHECK_EQ(mproc_manager_stop(m), -SIGKILL);
}

/* SIGUSR1 every 5 ms (no SA_RESTART), so blocking socket calls keep returning EINTR. */
static void on_usr1(int sig)
{
	(void)sig;
}

static timer_t storm_start(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { .it_interval = { 0, 5000000 }, .it_value = { 0, 5000000 } };
	timer_t t;

	sigemptyset(&sa.sa_mask);
	ASSERT_OK(sigaction(SIGUSR1, &sa, NULL) == 0 ? 0 : -errno);
	ASSERT_OK(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0 ? 0 : -errno);
	ASSERT_OK(timer_settime(t, 0, &its, NULL) == 0 ? 0 : -errno);
	return t;
}

static void storm_stop(timer_t t)
{
	struct sigaction sa = { .sa_handler = SIG_IGN };

	timer_delete(t);
	sigaction(SIGUSR1, &sa, NULL);
}

/* Is pid stopped (state T in /proc/PID/stat)? */
static bool is_stopped(pid_t pid)
{
	char path[64], buf[256], *rp;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] == 'T';
}

/* A call that waits longer than call_timeout_s; each within [t, t + 100 ms]. */
static void check_timeout(const char *what, double t0, double t)
{
	double dt = tap_now() - t0;

	tap_diag("%s: -ETIMEDOUT after %.3f s (timeout %.1f s)", what, dt, t);
	CHECK_CMP(dt, >=, t);
	CHECK_CMP(dt, <, t + 0.1 * tap_timeout_mult());
}

/*
 * A server that is alive but silent (SIGSTOPped): calls and handshakes end with -ETIMEDOUT
 * after call_timeout_s / connect_timeout_s, also under an EINTR storm, and a client that timed
 * out is broken (-EPIPE). Once it runs again, calls under the storm succeed and the server's
 * own timeouts (a parked get) hold too.
 */
static void t_silent_server(void *arg)
{
	const double t = 0.3;
	struct mproc_mclient_opts co = { .connect_timeout_s = t, .call_timeout_s = t };
	struct mproc_manager *m = start(arg);
	const char *addr = mproc_manager_address(m);
	struct mproc_mclient *c = NULL, *c2 = NULL, *c3 = NULL;
	struct mproc_dict *d = NULL, *d2 = NULL, *d3 = NULL;
	struct mproc_mqueue *q = NULL;
	pid_t srv = mproc_manager_pid(m);
	const void *k;
	char buf[8];
	size_t kl;
	timer_t storm;
	double t0;
	int i, good = 0;

	k = mproc_manager_key(m, &kl);
	ASSERT_OK(mproc_manager_connect_opts(&c, addr, k, kl, &co));
	ASSERT_OK(mproc_manager_connect_opts(&c2, addr, k, kl, &co));
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	ASSERT_OK(mproc_dict_open(&d2, c2, "d"));
	CHECK_OK(mproc_dict_set(d, "k", "v", 1));
	ASSERT_OK(kill(srv, SIGSTOP) == 0 ? 0 : -errno);
	for (t0 = tap_now(); !is_stopped(srv) && tap_now() - t0 < 0.5 * tap_timeout_mult();)
		usleep(1000);
	ASSERT(is_stopped(srv));

	t0 = tap_now();
	CHECK_ERR(mproc_dict_get(d, "k", buf, sizeof(buf)), -ETIMEDOUT);
	check_timeout("call to a stopped server", t0, t);
	t0 = tap_now();
	CHECK_ERR(mproc_manager_ping(c), -EPIPE);       /* broken, and says so at once */
	CHECK_CMP(tap_now() - t0, <, 0.1 * tap_timeout_mult());    /* well under t */
	t0 = tap_now();
	CHECK_ERR(mproc_manager_connect_opts(&c3, addr, k, kl, &co), -ETIMEDOUT);
	check_timeout("handshake with a stopped server", t0, t);

	storm = storm_start();
	t0 = tap_now();
	CHECK_ERR(mproc_dict_get(d2, "k", buf, sizeof(buf)), -ETIMEDOUT);
	check_timeout("call to a stopped server under an EINTR storm", t0, t);
	ASSERT_OK(kill(srv, SIGCONT) == 0 ? 0 : -errno);

	ASSERT_OK(mproc_manager_connect_opts(&c3, addr, k, kl, &co));
	ASSERT_OK(mproc_dict_open(&d3, c3, "d"));
	ASSERT_OK(mproc_mqueue_open(&q, c3, "q", 0));
	t0 = tap_now();
	for (i = 0; i < 2000 || tap_now() - t0 < 0.1; i++) {
		memset(buf, 0, sizeof(buf));
		good += mproc_dict_get(d3, "k", buf, sizeof(buf)) == 1 && buf[0] == 'v';
	}
	CHECK_EQ(good, i);
	t0 = tap_now();
	CHECK_ERR(mproc_mqueue_get(q, buf, sizeof(buf), t), -ETIMEDOUT);
	check_timeout("parked get under an EINTR storm", t0, t);
	CHECK_OK(mproc_manager_ping(c3));
	storm_stop(storm);
	mproc_dict_free(d);
	mproc_dict_free(d2);
	mproc_dict_free(d3);
	mproc_mqueue_free(q);
	mproc_manager_disconnect(c);
	mproc_manager_disconnect(c2);
	mproc_manager_disconnect(c3);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

static void t_restart(void *arg)
{
	char dir[] = "/tmp/mproc-test-XXXXXX", addr[128];
	struct mproc_manager *m1, *m2;
	struct mproc_mclient *c;
	struct mproc_manager_opts o = { 0 };

	if (strcmp(arg, "unix") == 0) {
		ASSERT(mkdtemp(dir));
		snprintf(addr, sizeof(addr), "unix:%s/mgr.sock", dir);
		m1 = start(addr);
	} else {
		m1 = start("tcp:127.0.0.1:0");
		snprintf(addr, sizeof(addr), "%s", mproc_manager_address(m1));
	}
	check_serving(m1);
	c = connect_to(m1);
	kill(mproc_manager_pid(m1), SIGKILL);
	CHECK_ERR(mproc_manager_ping(c), -EPIPE);
	mproc_manager_disconnect(c);
	/* The dead server's socket file is still there (unix): it is stale and replaced. */
	usleep(20 * 1000);
	o.address = addr;
	ASSERT_OK(mproc_manager_start(&m2, &o));
	check_serving(m2);
	/* A live server is never replaced. */
	{
		struct mproc_manager *m3 = NULL;

		CHECK_ERR(mproc_manager_start(&m3, &o), -EADDRINUSE);
	}
	CHECK_EQ(mproc_manager_stop(m2), 0);
	CHECK_EQ(mproc_manager_stop(m1), -SIGKILL);
	if (strcmp(arg, "unix") == 0)
		CHECK_OK(rmdir(dir) == 0 ? 0 : -errno);
}

/* The server exits when its owner exits. */
static void t_owner_death(void *arg)
{
	struct {
		pid_t server;
		char address[256];
	} msg = { 0 };
	int p[2], status;
	pid_t owner;
	double t0;

	ASSERT_OK(pipe2(p, O_CLOEXEC) == 0 ? 0 : -errno);
	owner = fork();
	ASSERT(owner >= 0);
	if (owner == 0) {
		struct mproc_manager *m;

		if (mproc_manager_start(&m, NULL) < 0)
			_exit(1);
		msg.server = mproc_manager_pid(m);
		snprintf(msg.address, sizeof(msg.address), "%s", mproc_manager_address(m));
		if (write(p[1], &msg, sizeof(msg)) != sizeof(msg))
			_exit(2);
		_exit(0);       /* no stop: the server must notice on its own */
	}
	mproc__close(p[1]);
	CHECK_EQ(read(p[0], &msg, sizeof(msg)), sizeof(msg));
	mproc__close(p[0]);
	CHECK_EQ(waitpid(owner, &status, 0), owner);
	/* We are a subreaper: the orphaned server is our child now. */
	t0 = tap_now();
	while (waitpid(msg.server, &status, WNOHANG) == 0 &&
	       tap_now() - t0 < 5 * tap_timeout_mult())
		usleep(10 * 1000);
	CHECK_CMP(tap_now() - t0, <, 2.0 * tap_timeout_mult());
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Nothing left behind: the socket and its private directory are gone, whichever way the
	 * server learnt of its owner's death (even before it began to serve). */
	if (strncmp(msg.address, "unix:", 5) == 0) {
		char *slash = strrchr(msg.address, '/');

		CHECK(access(msg.address + 5, F_OK) < 0 && errno == ENOENT);
		if (slash) {
			*slash = '\0';
			CHECK(access(msg.address + 5, F_OK) < 0 && errno == ENOENT);
		}
	}
}

/* ---- bad input ---- */

static void t_bad_input(void *arg)
{
	struct mproc_manager *m = NULL;
	struct mproc_mclient *c = NULL;
	struct mproc_manager_opts o = { 0 };
	uint8_t key[32] = { 0 };
	char longname[MPROC_MANAGER_NAME_MAX + 2];
	struct mproc_dict *d = NULL;

	struct mproc__mgr_addr a;

	CHECK_OK(mproc__mgr_addr_parse("tcp:4242", &a));
	CHECK_STR_EQ(a.host, "127.0.0.1");
	CHECK_EQ(a.port, 4242);
	CHECK_OK(mproc__mgr_addr_parse("tcp::0", &a));
	CHECK_STR_EQ(a.host, "127.0.0.1");
	CHECK_OK(mproc__mgr_addr_parse("tcp:[::1]:5", &a));
	CHECK_STR_EQ(a.host, "::1");
	CHECK_OK(mproc__mgr_addr_parse("tcp:localhost:7", &a));
	CHECK_STR_EQ(a.host, "127.0.0.1");
	CHECK_ERR(mproc__mgr_addr_parse("tcp:1.2.3.4:", &a), -EINVAL);
	CHECK_ERR(mproc__mgr_addr_parse("tcp:1.2.3.4:-1", &a), -EINVAL);
	CHECK_ERR(mproc_manager_start(NULL, NULL), -EINVAL);
	o.address = "udp:1.2.3.4:5";
	CHECK_ERR(mproc_manager_start(&m, &o), -EINVAL);
	o.address = "tcp:127.0.0.1:99999";
	CHECK_ERR(mproc_manager_start(&m, &o), -EINVAL);
	o.address = "tcp:not-an-ip:80";
	CHECK_ERR(mproc_manager_start(&m, &o), -EINVAL);
	o.address = "unix:";
	CHECK_ERR(mproc_manager_start(&m, &o), -EINVAL);
	o.address = NULL;
	o.key = key;
	o.keylen = 16;
	CHECK_ERR(mproc_manager_start(&m, &o), -EINVAL);
	o.keylen = 32;
	o.max_frame = 100;
	CHECK_ERR(mproc_manager_start(&m, &o), -EINVAL);
	CHECK_ERR(mproc_manager_connect(&c, "unix:/nonexistent/x", key, 32), -ENOENT);
	CHECK_ERR(mproc_manager_connect(&c, "bogus", key, 32), -EINVAL);
	CHECK_ERR(mproc_manager_connect(&c, "unix:/x", NULL, 32), -EINVAL);
	CHECK_EQ(mproc_manager_stop(NULL), 0);
	mproc_manager_disconnect(NULL);

	m = start(NULL);
	c = connect_to(m);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_ERR(mproc_dict_open(&d, c, longname), -EINVAL);
	CHECK_ERR(mproc_dict_open(NULL, c, "d"), -EINVAL);
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	CHECK_ERR(mproc_dict_set(d, longname, "x", 1), -EINVAL);
	CHECK_ERR(mproc_dict_set(d, "k", NULL, 1), -EINVAL);
	CHECK_OK(mproc_manager_ping(c));
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/*
 * The client-side argument errors manager.h lists: -EINVAL before anything is sent (the client
 * stays usable), -ENAMETOOLONG for a Unix path that does not fit.
 */
static void t_header_errors(void *arg)
{
	struct mproc_mclient_opts co = { .connect_timeout_s = NAN };
	struct mproc_manager *m = start(arg);
	struct mproc_mclient *c = connect_to(m), *x = NULL;
	struct mproc_dict *d = NULL;
	struct mproc_mqueue *q = NULL;
	struct mproc_mvalue *v = NULL;
	char path[300], buf[8];
	const void *k;
	size_t kl;

	k = mproc_manager_key(m, &kl);
	CHECK_ERR(mproc_manager_start(NULL, NULL), -EINVAL);
	CHECK_ERR(mproc_manager_connect_opts(&x, mproc_manager_address(m), k, kl, &co), -EINVAL);
	co.connect_timeout_s = 0;
	co.call_timeout_s = -1;
	CHECK_ERR(mproc_manager_connect_opts(&x, mproc_manager_address(m), k, kl, &co), -EINVAL);
	CHECK_ERR(mproc_manager_connect(&x, mproc_manager_address(m), NULL, kl), -EINVAL);
	memset(path, 'x', sizeof(path) - 1);
	memcpy(path, "unix:/", 6);
	path[sizeof(path) - 1] = '\0';
	CHECK_ERR(mproc_manager_connect(&x, path, k, kl), -ENAMETOOLONG);
	CHECK(x == NULL);
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 0));
	ASSERT_OK(mproc_mvalue_open(&v, c, "v"));
	CHECK_ERR(mproc_dict_set(d, "", "x", 1), -EINVAL);
	CHECK_ERR(mproc_dict_get(d, "k", NULL, 5), -EINVAL);
	CHECK_ERR(mproc_dict_get(NULL, "k", buf, sizeof(buf)), -EINVAL);
	CHECK_ERR(mproc_mqueue_put(q, "x", 1, -2.0), -EINVAL);
	CHECK_ERR(mproc_mqueue_get(q, buf, sizeof(buf), NAN), -EINVAL);
	CHECK_ERR(mproc_mvalue_get(v, NULL), -EINVAL);
	CHECK_ERR(mproc_mvalue_set_bytes(v, NULL, 3), -EINVAL);
	CHECK_OK(mproc_manager_ping(c));
	mproc_mvalue_free(v);
	mproc_mqueue_free(q);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* A frame over the limit the server announced is refused locally, the client stays usable. */
static void t_max_frame(void *arg)
{
	struct mproc_manager *m = NULL;
	struct mproc_manager_opts o = { .max_frame = 8192 };
	struct mproc_mclient *c;
	struct mproc_dict *d = NULL;
	char *big = calloc(1, 10000), buf[8];

	ASSERT(big);
	ASSERT_OK(mproc_manager_start(&m, &o));
	c = connect_to(m);
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	CHECK_ERR(mproc_dict_set(d, "k", big, 10000), -EMSGSIZE);
	CHECK_OK(mproc_dict_set(d, "k", big, 8000));
	CHECK_EQ(mproc_dict_get(d, "k", buf, sizeof(buf)), 8000);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	free(big);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/* CPU time (user + system) a process has used, in seconds, from /proc/PID/stat. */
static double cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* After "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime. */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			 &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * The bounded spin: a burst of calls (server and client both spinning), then an idle pause in
 * which the server sleeps (its CPU time does not grow by more than a few ticks); the same with
 * MPROC_MANAGER_NOSPIN on both sides, which gives the same results. Unknown flags: -EINVAL.
 */
static void t_spin(void *arg)
{
	static const unsigned flags[] = { 0, MPROC_MANAGER_NOSPIN };
	struct mproc_manager_opts mo = { .address = arg };
	struct mproc_mclient_opts co = { 0 };
	struct mproc_manager *m = NULL;
	struct mproc_mclient *c = NULL;
	struct mproc_dict *d = NULL;
	const void *k;
	size_t kl, f;
	char buf[8];
	double c0, c1;
	int i, good;

	mo.flags = 0x80;
	CHECK_ERR(mproc_manager_start(&m, &mo), -EINVAL);
	for (f = 0; f < MPROC__ARRAY_SIZE(flags); f++) {
		mo.flags = co.flags = flags[f];
		ASSERT_OK(mproc_manager_start(&m, &mo));
		k = mproc_manager_key(m, &kl);
		co.flags = 0x80;
		CHECK_ERR(mproc_manager_connect_opts(&c, mproc_manager_address(m), k, kl, &co),
			  -EINVAL);
		co.flags = flags[f];
		ASSERT_OK(mproc_manager_connect_opts(&c, mproc_manager_address(m), k, kl, &co));
		ASSERT_OK(mproc_dict_open(&d, c, "d"));
		CHECK_OK(mproc_dict_set(d, "k", "v", 1));
		for (i = good = 0; i < 3000; i++)
			good += mproc_dict_get(d, "k", buf, sizeof(buf)) == 1 && buf[0] == 'v';
		CHECK_EQ(good, 3000);
		usleep(20 * 1000);      /* past any spin */
		c0 = cpu_s(mproc_manager_pid(m));
		usleep(500 * 1000);
		c1 = cpu_s(mproc_manager_pid(m));
		tap_diag("flags %#x: idle server used %.2f s of CPU in 0.5 s", flags[f], c1 - c0);
		CHECK(c0 >= 0 && c1 >= 0);
		CHECK_CMP(c1 - c0, <, 0.05);
		mproc_dict_free(d);
		mproc_manager_disconnect(c);
		CHECK_EQ(mproc_manager_stop(m), 0);
	}
}

/*
 * A client that always has its next request ready (a tight dict_get loop, pinned to the
 * server's CPU so the server's spin finds each request on its first poll) must not starve the
 * rest: while it runs, a new connection is accepted, another client's calls are served (each
 * within its 2 s call timeout), and stop (the death fd) ends the server without SIGKILL. The
 * hammer is forked before the server starts, so it holds no copy of the death fd.
 */
struct hammer {
	char addr[MPROC_MANAGER_ADDRESS_MAX];
	uint8_t key[MPROC_MANAGER_KEY_MAX];
	size_t kl;
	_Atomic int go;         /* 1: addr and key are set; -1: give up */
	_Atomic int stop;
	_Atomic unsigned long calls;
};

static int hammer_child(void *arg)
{
	struct hammer *h = arg;
	struct mproc_mclient *c = NULL;
	struct mproc_dict *d = NULL;
	int64_t end = mproc__now_ns() + 20 * MPROC__NSEC_PER_SEC;
	pid_t parent = getppid();
	char buf[8];

	/* Until the case says go (or died before it could). */
	while (atomic_load(&h->go) == 0 && getppid() == parent && mproc__now_ns() < end)
		usleep(1000);
	if (atomic_load(&h->go) != 1)
		return 0;
	if (mproc_manager_connect(&c, h->addr, h->key, h->kl) < 0 ||
	    mproc_dict_open(&d, c, "d") < 0)
		return 10;
	while (!atomic_load(&h->stop) && mproc__now_ns() < end) {
		ssize_t r = mproc_dict_get(d, "k", buf, sizeof(buf));

		if (r == -EPIPE)
			break;          /* the server stopped under us: expected at the end */
		if (r != 1)
			return 11;
		atomic_fetch_add(&h->calls, 1);
	}
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	return 0;
}

static void t_hammer_fair(void *arg)
{
	struct mproc_mclient_opts co = { .call_timeout_s = 2.0, .connect_timeout_s = 2.0 };
	struct hammer *h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct mproc_manager *m;
	struct mproc_mclient *c = NULL, *c0;
	struct mproc_dict *d = NULL;
	cpu_set_t one;
	const void *k;
	int64_t t0;
	char buf[8];
	pid_t pid;
	int i, good, cpu;

	ASSERT(h != MAP_FAILED);
	pid = tap_fork(hammer_child, h);
	ASSERT(pid > 0);
	m = start(arg);
	k = mproc_manager_key(m, &h->kl);
	memcpy(h->key, k, h->kl);
	snprintf(h->addr, sizeof(h->addr), "%s", mproc_manager_address(m));
	c0 = connect_to(m);
	ASSERT_OK(mproc_dict_open(&d, c0, "d"));
	CHECK_OK(mproc_dict_set(d, "k", "v", 1));
	mproc_dict_free(d);
	d = NULL;
	/* Server and hammer on one CPU; this process anywhere. */
	cpu = sched_getcpu();
	CPU_ZERO(&one);
	CPU_SET(cpu < 0 ? 0 : cpu, &one);
	if (sched_setaffinity(mproc_manager_pid(m), sizeof(one), &one) < 0 ||
	    sched_setaffinity(pid, sizeof(one), &one) < 0)
		tap_diag("cannot pin: %s", strerror(errno));
	atomic_store(&h->go, 1);
	t0 = mproc__now_ns();
	while (atomic_load(&h->calls) < 1000 && mproc__now_ns() - t0 <
	       (int64_t)(5 * tap_timeout_mult() * MPROC__NSEC_PER_SEC))
		usleep(1000);
	CHECK_CMP(atomic_load(&h->calls), >=, 1000UL);

	t0 = mproc__now_ns();
	CHECK_OK(mproc_manager_connect_opts(&c, mproc_manager_address(m), k, h->kl, &co));
	if (c && mproc_dict_open(&d, c, "d") == 0) {
		for (i = good = 0; i < 200; i++)
			good += mproc_dict_get(d, "k", buf, sizeof(buf)) == 1;
		CHECK_EQ(good, 200);
	}
	tap_diag("connect + 200 calls beside a hammering client: %.3f s, hammer at %lu calls",
		 (double)(mproc__now_ns() - t0) / 1e9, atomic_load(&h->calls));
	CHECK(d != NULL);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	mproc_manager_disconnect(c0);
	/* Stop while it still hammers: the death fd must be seen (else: SIGKILL, -9). */
	CHECK_EQ(mproc_manager_stop(m), 0);
	atomic_store(&h->stop, 1);
	CHECK_EQ(tap_reap(pid), 0);
	munmap(h, sizeof(*h));
}

/* ---- the mproc-manager command ---- */

static char cmd_path[PATH_MAX];

/* Run the command; its exit status (128 + signal if killed). A failure (exit 2) must say why
 * in exactly one line on stderr: checked here. */
static int run_cmd(const char *const argv[], const char *key_env)
{
	char err[4096];
	size_t got = 0, lines = 0, i;
	int status, p[2];
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);

		dup2(p[1], 2);
		dup2(nul, 1);
		if (key_env)
			setenv("MPROC_KEY_FILE", key_env, 1);
		else
			unsetenv("MPROC_KEY_FILE");
		execv(cmd_path, (char *const *)argv);
		_exit(127);
	}
	mproc__close(p[1]);
	while (got < sizeof(err) && ((n = read(p[0], err + got, sizeof(err) - got)) > 0 ||
				     (n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	mproc__close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (i = 0; i < got; i++)
		lines += err[i] == '\n';
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2 &&
	    (lines != 1 || got == 0 || err[got - 1] != '\n'))
		tap_fail_at(__FILE__, __LINE__, "%s: exit 2 with %zu lines on stderr: %.*s",
			    argv[1] ? argv[1] : "(no args)", lines, (int)got, err);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void t_command(void *arg)
{
	char dir[] = "/tmp/mproc-test-XXXXXX", kf[128], kf_open[128], sock[128], addr[160];
	char log[160], logbuf[1024];
	uint8_t frame[MPROC__MW_HDR];
	ssize_t n;
	uint8_t key[40];
	struct mproc_mclient *c = NULL;
	struct stat st;
	int fd, status, i, maps0;
	pid_t pid;

	if (access(cmd_path, X_OK) != 0)
		tap_skip("mproc-manager not built at %s", cmd_path);
	ASSERT(mkdtemp(dir));
	snprintf(kf, sizeof(kf), "%s/key", dir);
	snprintf(kf_open, sizeof(kf_open), "%s/key-open", dir);
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	ASSERT_OK(mproc__random(key, sizeof(key)));
	for (i = 0; i < 40; i++)
		key[i] = (uint8_t)('a' + key[i] % 26);  /* printable, no newline */
	fd = open(kf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_OK(fd);
	CHECK_EQ(write(fd, key, sizeof(key)), sizeof(key));
	close(fd);
	fd = open(kf_open, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	CHECK_EQ(write(fd, key, sizeof(key)), sizeof(key));
	fchmod(fd, 0644);
	close(fd);

	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--help", NULL }, NULL), 0);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", NULL }, NULL), 2);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--bogus", NULL }, NULL), 2);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--listen", NULL }, NULL), 2);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--listen", addr, "--key=abc",
						NULL }, NULL), 2);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--listen", "tcp:nowhere", "--key-file",
						kf, NULL }, NULL), 2);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--listen", addr, NULL }, NULL), 2);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--listen", addr, "--key-file",
						kf_open, NULL }, NULL), 2);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--listen", addr, NULL },
			 kf_open), 2);
	CHECK_EQ(run_cmd((const char *const[]){ "mproc-manager", "--listen", addr, "--key-file",
						kf, "--max-frame", "12", NULL }, NULL), 2);

	/* A real run: MPROC_KEY_FILE, connect (--no-shm: on the socket, no channel), a malformed
	 * frame (logged with -EBADMSG, the server keeps serving), SIGTERM, clean exit, socket
	 * removed. */
	snprintf(log, sizeof(log), "%s/log", dir);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		const char *const argv[] = { "mproc-manager", "--listen", addr, "--no-spin",
					     "--no-shm", NULL };
		int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
		int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		dup2(nul, 1);
		dup2(lfd, 2);
		setenv("MPROC_KEY_FILE", kf, 1);
		execv(cmd_path, (char *const *)argv);
		_exit(127);
	}
	maps0 = chan_maps();
	for (i = 0; i < 500 && mproc_manager_connect(&c, addr, key, sizeof(key)) < 0; i++)
		usleep(10 * 1000);
	ASSERT(c);
	CHECK_EQ(chan_maps(), maps0);
	CHECK_OK(mproc_manager_ping(c));
	fd = raw_connect(addr);
	raw_auth_key(fd, key, sizeof(key));
	mproc__mw_hdr_put(frame, 0, MPROC__MW_PING);
	frame[8] = 9;   /* version 9 */
	CHECK_EQ(mproc__write_all(fd, frame, sizeof(frame), MPROC__NO_DEADLINE), sizeof(frame));
	CHECK(raw_closed_within(fd, 2.0 * tap_timeout_mult()));
	mproc__close(fd);
	CHECK_OK(mproc_manager_ping(c));
	mproc_manager_disconnect(c);
	kill(pid, SIGTERM);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_ERR(stat(sock, &st) == 0 ? 0 : -errno, -ENOENT);
	fd = open(log, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	n = read(fd, logbuf, sizeof(logbuf) - 1);
	mproc__close(fd);
	logbuf[n > 0 ? n : 0] = '\0';
	tap_diag("mproc-manager said: %s", logbuf);
	CHECK(strstr(logbuf, "EBADMSG") != NULL);
	unlink(log);
	unlink(kf);
	unlink(kf_open);
	rmdir(dir);
}

/* ---- the shared-memory channel (Unix clients) ---- */

/* The server's fd count once it has served a connection and seen it close (the fds of its
 * start-up are gone then): the same count twice, 20 ms apart. */
static int server_fds_idle(struct mproc_manager *m)
{
	pid_t pid = mproc_manager_pid(m);
	double t0 = tap_now();
	int a, b = count_fds(pid);

	check_serving(m);
	do {
		a = b;
		usleep(20 * 1000);
		b = count_fds(pid);
	} while (a != b && tap_now() - t0 < 2.0 * tap_timeout_mult());
	return b;
}

/* The server's fd count, waiting up to 2 s for it to come back to want (closes take a turn). */
static int server_fds_settle(pid_t pid, int want)
{
	double t0 = tap_now();
	int n;

	while ((n = count_fds(pid)) != want && tap_now() - t0 < 2.0 * tap_timeout_mult())
		usleep(2000);
	return n;
}

/*
 * A client on a Unix socket gets a channel (one memfd mapping, released by disconnect), not at
 * connect but with the call after MPROC__MGR_CHAN_AFTER calls; one with MPROC_MANAGER_NOSHM,
 * one over TCP and one to a server started with NOSHM never do, and all of them work the same.
 * The server's fds (a socket and an eventfd per channel) are all released when the clients go.
 */
static void t_chan_used(void *arg)
{
	static const struct {
		const char *addr;
		unsigned sflags, cflags;
		int maps;
	} cases[] = {
		{ NULL, 0, 0, 1 },
		{ NULL, 0, MPROC_MANAGER_NOSHM, 0 },
		{ NULL, MPROC_MANAGER_NOSHM, 0, 0 },
		{ NULL, 0, MPROC_MANAGER_NOSPIN, 1 },
		{ "tcp:127.0.0.1:0", 0, 0, 0 },
	};

	for (size_t i = 0; i < MPROC__ARRAY_SIZE(cases); i++) {
		struct mproc_manager_opts mo = { .address = cases[i].addr,
						 .flags = cases[i].sflags };
		struct mproc_mclient_opts co = { .flags = cases[i].cflags };
		struct mproc_manager *m = NULL;
		struct mproc_mclient *c = NULL;
		struct mproc_dict *d = NULL;
		int maps0 = chan_maps(), fds0;
		char buf[8];
		const void *k;
		size_t kl;

		ASSERT_OK(mproc_manager_start(&m, &mo));
		fds0 = server_fds_idle(m);
		k = mproc_manager_key(m, &kl);
		ASSERT_OK(mproc_manager_connect_opts(&c, mproc_manager_address(m), k, kl, &co));
		CHECK_EQ(chan_maps(), maps0);           /* none at connect */
		for (int j = 0; j < MPROC__MGR_CHAN_AFTER; j++)
			CHECK_OK(mproc_manager_ping(c));
		CHECK_EQ(chan_maps(), maps0);
		CHECK_OK(mproc_manager_ping(c));
		CHECK_EQ(chan_maps() - maps0, cases[i].maps);
		ASSERT_OK(mproc_dict_open(&d, c, "d"));
		CHECK_OK(mproc_dict_set(d, "k", "vv", 2));
		CHECK_EQ(mproc_dict_get(d, "k", buf, sizeof(buf)), 2);
		CHECK(memcmp(buf, "vv", 2) == 0);
		CHECK_ERR(mproc_dict_get(d, "nokey", buf, sizeof(buf)), -ENOENT);
		/* A server that sleeps (past both spins) is woken through the eventfd. */
		usleep(20 * 1000);
		CHECK_EQ(mproc_dict_len(d), 1);
		mproc_dict_free(d);
		mproc_manager_disconnect(c);
		CHECK_EQ(chan_maps(), maps0);
		CHECK_EQ(server_fds_settle(mproc_manager_pid(m), fds0), fds0);
		CHECK_EQ(mproc_manager_stop(m), 0);
	}
}

/*
 * Frames around the mailbox's size: a request or a reply larger than MPROC__MGR_CHAN_BOX goes on
 * the socket, the others through the mailbox, and every reply reaches its call (in order, with
 * its contents) whichever way each went.
 */
static void t_chan_big_frames(void *arg)
{
	struct mproc_manager *m = start(NULL);
	struct mproc_mclient *c = connect_to(m);
	struct mproc_dict *d = NULL;
	size_t n = MPROC__MGR_CHAN_BOX + 64, len;
	uint8_t *val = malloc(n), *got = malloc(n);
	char small[8];
	int bad = 0, maps0;

	ASSERT(val && got);
	maps0 = chan_maps();
	ASSERT_OK(chan_warm(c));
	CHECK_EQ(chan_maps() - maps0, 1);
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	CHECK_OK(mproc_dict_set(d, "s", "x", 1));
	/* dict_set's request is header + id + key (4 + 1) + value; dict_get's reply header +
	 * status + value: both cross the mailbox's size within this range. */
	for (len = MPROC__MGR_CHAN_BOX - 40; len <= n; len++) {
		for (size_t i = 0; i < len; i++)
			val[i] = (uint8_t)(i * 7 + len);
		bad += mproc_dict_set(d, "k", val, len) != 0;
		memset(got, 0, n);
		bad += mproc_dict_get(d, "k", got, n) != (ssize_t)len || memcmp(got, val, len);
		bad += mproc_dict_get(d, "s", small, sizeof(small)) != 1 || small[0] != 'x';
	}
	CHECK_EQ(bad, 0);
	/* Much larger, both ways. */
	free(val);
	free(got);
	n = 1 << 20;
	val = malloc(n);
	got = malloc(n);
	ASSERT(val && got);
	for (size_t i = 0; i < n; i++)
		val[i] = (uint8_t)(i * 13);
	CHECK_OK(mproc_dict_set(d, "big", val, n));
	CHECK_EQ(mproc_dict_get(d, "big", got, n), (ssize_t)n);
	CHECK(memcmp(got, val, n) == 0);
	CHECK_EQ(mproc_dict_get(d, "s", small, sizeof(small)), 1);
	free(val);
	free(got);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/*
 * Send CHANNEL with body (n bytes) on an authenticated fd and check the answer that offers a
 * channel (status 0, the mailbox size). Returns how many fds came with it (0, or 2 into fds).
 */
static int raw_chan_offer(int fd, const void *body, size_t n, int fds[2])
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	uint8_t rep[MPROC__MW_HDR + 8];
	struct iovec iov = { rep, sizeof(rep) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			     .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *cm;

	raw_send(fd, MPROC__MW_CHANNEL, body, n);
	ASSERT_EQ(recvmsg(fd, &mh, MSG_CMSG_CLOEXEC), (ssize_t)sizeof(rep));
	ASSERT_EQ(rep[9], MPROC__MW_REPLY);
	ASSERT_EQ(mproc__mw_u32(rep + MPROC__MW_HDR), 0);
	ASSERT_EQ(mproc__mw_u32(rep + MPROC__MW_HDR + 4), MPROC__MGR_CHAN_BOX);
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm)
		return 0;
	ASSERT(cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(2 * sizeof(int)));
	memcpy(fds, CMSG_DATA(cm), 2 * sizeof(int));
	return 2;
}

/* A raw authenticated connection with a channel: the socket, with *h mapped and *efd set. */
static int raw_chan(struct mproc_manager *m, struct mproc__mgr_chan_hdr **h, int *efd)
{
	int fd = raw_connect(mproc_manager_address(m)), fds[2];
	void *map = NULL;

	raw_auth(fd, m);
	ASSERT_EQ(raw_chan_offer(fd, NULL, 0, fds), 2);
	/* Sealed: a client cannot shrink the memory the server reads. */
	CHECK_ERR(ftruncate(fds[0], 4096) == 0 ? 0 : -errno, -EPERM);
	ASSERT_OK(mproc__mgr_chan_attach(fds[0], &map));
	mproc__close(fds[0]);
	*h = map;
	*efd = fds[1];
	return fd;
}

/* Put a frame (any bytes, any claimed length) in the request mailbox and wake the server. */
static void raw_chan_put(struct mproc__mgr_chan_hdr *h, int efd, const void *p, size_t n,
			 uint32_t len)
{
	uint64_t one = 1;

	memcpy(mproc__mgr_chan_req(h), p, n);
	atomic_store(&h->req_len, len);
	atomic_fetch_add(&h->req_seq, 1);
	ASSERT_EQ(write(efd, &one, sizeof(one)), 8);
}

/* Wait up to 2 s for the reply to request seq; its length or -1. */
static long raw_chan_reply(struct mproc__mgr_chan_hdr *h, uint32_t seq)
{
	double t0 = tap_now();

	while (atomic_load(&h->rep_seq) != seq) {
		if (tap_now() - t0 > 2.0 * tap_timeout_mult())
			return -1;
		usleep(500);
	}
	return (long)atomic_load(&h->rep_len);
}

static void raw_chan_close(int fd, struct mproc__mgr_chan_hdr *h, int efd)
{
	mproc__mgr_chan_unmap(h);
	mproc__close(efd);
	mproc__close(fd);
}

/*
 * A client that writes nonsense into its mailbox: a length of 0, under a header, over the
 * mailbox, ~0, a header that claims more or less than the length, a bad version, an unknown op,
 * a second CHANNEL. Each connection is closed (and its channel freed: the server's fd count
 * comes back), the others are served, and a good request through a raw channel is answered in
 * the reply mailbox with the socket's frame format.
 */
static void t_chan_bad_lengths(void *arg)
{
	struct mproc_manager *m = start(NULL);
	pid_t srv = mproc_manager_pid(m);
	struct mproc__mgr_chan_hdr *h;
	uint8_t f[64], *rep;
	int fd, efd, fds0 = server_fds_idle(m), i;
	long n;

	/* A good one first: PING through the mailbox, its reply in the reply mailbox. */
	fd = raw_chan(m, &h, &efd);
	mproc__mw_hdr_put(f, 0, MPROC__MW_PING);
	raw_chan_put(h, efd, f, MPROC__MW_HDR, MPROC__MW_HDR);
	n = raw_chan_reply(h, atomic_load(&h->req_seq));
	CHECK_EQ(n, MPROC__MW_HDR + 4);
	rep = mproc__mgr_chan_rep(h);
	CHECK_EQ(rep[9], MPROC__MW_REPLY);
	CHECK_EQ(mproc__mw_u64(rep), 4);
	CHECK_EQ(mproc__mw_u32(rep + MPROC__MW_HDR), 0);
	/* A second channel on one connection: refused, the connection kept. */
	mproc__mw_hdr_put(f, 0, MPROC__MW_CHANNEL);
	raw_chan_put(h, efd, f, MPROC__MW_HDR, MPROC__MW_HDR);
	CHECK_EQ(raw_chan_reply(h, atomic_load(&h->req_seq)), MPROC__MW_HDR + 4);
	CHECK_EQ(mproc__mw_u32(rep + MPROC__MW_HDR), (uint32_t)-EOPNOTSUPP);
	raw_chan_close(fd, h, efd);

	for (i = 0; i < 9; i++) {
		uint32_t len = MPROC__MW_HDR;

		mproc__mw_hdr_put(f, 0, MPROC__MW_PING);
		switch (i) {
		case 0: len = 0; break;
		case 1: len = MPROC__MW_HDR - 1; break;
		case 2: len = MPROC__MGR_CHAN_BOX + 1; break;
		case 3: len = UINT32_MAX; break;
		case 4: mproc__mw_hdr_put(f, 8, MPROC__MW_PING); break;         /* claims more */
		case 5: len = MPROC__MW_HDR + 8; break;                         /* claims less */
		case 6: f[8] = MPROC__MW_VERSION + 1; break;
		case 7: f[9] = MPROC__MW_OP_LAST + 1; break;
		default: mproc__mw_hdr_put(f, UINT64_MAX, MPROC__MW_PING); break;
		}
		fd = raw_chan(m, &h, &efd);
		raw_chan_put(h, efd, f, sizeof(f), len);
		if (!raw_closed_within(fd, 2.0 * tap_timeout_mult()))
			tap_fail_at(__FILE__, __LINE__, "bad mailbox frame %d: not closed", i);
		raw_chan_close(fd, h, efd);
		check_serving(m);
	}
	CHECK_EQ(server_fds_settle(srv, fds0), fds0);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/*
 * Order with a client that does not wait: a queue get parked from the mailbox, then a PING
 * written over it before the get's reply came. The server took the get (a copy) and takes the
 * PING only once the get is answered, and each reply carries its own sequence number. A client
 * that rewrites the mailbox while its request is served changes nothing the server parses.
 */
static void t_chan_order(void *arg)
{
	struct mproc_manager *m = start(NULL);
	struct mproc_mclient *c = connect_to(m);
	struct mproc_mqueue *q = NULL, *q2 = NULL;
	struct mproc__mgr_chan_hdr *h;
	uint8_t f[64], *rep;
	uint32_t s1, s2, qid;
	int fd, efd;

	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 0));
	fd = raw_chan(m, &h, &efd);
	rep = mproc__mgr_chan_rep(h);
	/* OPEN queue "q" to learn its id. */
	mproc__mw_hdr_put(f, 1 + 8 + 4 + 1, MPROC__MW_OPEN);
	f[12] = MPROC__MW_KIND_QUEUE;
	mproc__mw_put_u64(f + 13, 0);
	mproc__mw_put_u32(f + 21, 1);
	f[25] = 'q';
	raw_chan_put(h, efd, f, 26, 26);
	ASSERT_EQ(raw_chan_reply(h, atomic_load(&h->req_seq)), MPROC__MW_HDR + 8);
	qid = mproc__mw_u32(rep + MPROC__MW_HDR + 4);
	/* QUEUE_GET, forever: parked. */
	mproc__mw_hdr_put(f, 12, MPROC__MW_QUEUE_GET);
	mproc__mw_put_u32(f + 12, qid);
	mproc__mw_put_u64(f + 16, UINT64_MAX);
	raw_chan_put(h, efd, f, 24, 24);
	s1 = atomic_load(&h->req_seq);
	usleep(50 * 1000);
	CHECK(atomic_load(&h->rep_seq) != s1);
	/* Scribble over the parked request, then publish a PING. */
	memset(mproc__mgr_chan_req(h), 0xff, 64);
	mproc__mw_hdr_put(f, 0, MPROC__MW_PING);
	raw_chan_put(h, efd, f, MPROC__MW_HDR, MPROC__MW_HDR);
	s2 = atomic_load(&h->req_seq);
	usleep(50 * 1000);
	CHECK(atomic_load(&h->rep_seq) != s2);          /* not taken while the get waits */
	CHECK_OK(mproc_mqueue_put(q, "item", 4, 0));
	/* The get is answered (and then the PING, its seq replacing the get's). */
	CHECK_EQ(raw_chan_reply(h, s2), MPROC__MW_HDR + 4);
	CHECK_EQ(mproc__mw_u32(rep + MPROC__MW_HDR), 0);
	/* The item went to the parked get, not to a later one. */
	CHECK_EQ(mproc_mqueue_len(q), 0);
	raw_chan_close(fd, h, efd);
	ASSERT_OK(mproc_mqueue_open(&q2, c, "q", 0));
	CHECK_ERR(mproc_mqueue_get(q2, f, sizeof(f), 0), -EAGAIN);
	mproc_mqueue_free(q);
	mproc_mqueue_free(q2);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/*
 * Clients SIGKILLed with a channel: one parked in a queue get, others in a tight loop of calls
 * (killed at whatever point they reached: mid-request, mid-reply). The server frees each one's
 * channel (its fd count comes back), serves the others, and gives an item put later to a live
 * getter, not the dead one.
 */
static int chan_getter(void *arg)
{
	struct mproc_manager *m = arg;
	struct mproc_mclient *c = NULL;
	struct mproc_mqueue *q = NULL;
	size_t kl;
	const void *k = mproc_manager_key(m, &kl);
	char buf[8];

	if (mproc_manager_connect(&c, mproc_manager_address(m), k, kl) < 0 || chan_warm(c) < 0 ||
	    mproc_mqueue_open(&q, c, "q", 0) < 0)
		return 10;
	mproc_mqueue_get(q, buf, sizeof(buf), MPROC_FOREVER);
	return 11;
}

static int chan_looper(void *arg)
{
	struct mproc_manager *m = arg;
	struct mproc_mclient *c = NULL;
	struct mproc_dict *d = NULL;
	size_t kl;
	const void *k = mproc_manager_key(m, &kl);
	char buf[64];

	if (mproc_manager_connect(&c, mproc_manager_address(m), k, kl) < 0 ||
	    mproc_dict_open(&d, c, "d") < 0)
		return 10;
	for (;;)
		if (mproc_dict_get(d, "k", buf, sizeof(buf)) != 32)
			return 12;
}

static void t_chan_client_killed(void *arg)
{
	struct mproc_manager *m = start(NULL);
	pid_t srv = mproc_manager_pid(m), pid;
	struct mproc_mclient *c = connect_to(m);
	struct mproc_mqueue *q = NULL;
	struct mproc_dict *d = NULL;
	char buf[8];
	int fds0, i, status;

	ASSERT_OK(chan_warm(c));
	ASSERT_OK(mproc_mqueue_open(&q, c, "q", 0));
	ASSERT_OK(mproc_dict_open(&d, c, "d"));
	CHECK_OK(mproc_dict_set(d, "k", "0123456789abcdef0123456789abcdef", 32));
	fds0 = count_fds(srv);
	pid = tap_fork(chan_getter, m);
	usleep(100 * 1000);
	ASSERT_OK(kill(pid, SIGKILL) == 0 ? 0 : -errno);
	CHECK_EQ(tap_reap(pid), 128 + SIGKILL);
	CHECK_EQ(server_fds_settle(srv, fds0), fds0);
	CHECK_OK(mproc_mqueue_put(q, "x", 1, 0));
	CHECK_EQ(mproc_mqueue_get(q, buf, sizeof(buf), 1.0), 1);       /* not the dead one's */
	for (i = 0; i < 10; i++) {
		pid = tap_fork(chan_looper, m);
		usleep((useconds_t)(20000 + i * 3700));
		ASSERT_OK(kill(pid, SIGKILL) == 0 ? 0 : -errno);
		status = tap_reap(pid);
		if (status != 128 + SIGKILL)
			tap_fail_at(__FILE__, __LINE__, "looper %d: status %d", i, status);
		CHECK_OK(mproc_manager_ping(c));
	}
	CHECK_EQ(server_fds_settle(srv, fds0), fds0);
	CHECK_EQ(mproc_dict_get(d, "k", buf, sizeof(buf)), 32);
	mproc_mqueue_free(q);
	mproc_dict_free(d);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

/*
 * A server SIGKILLed while clients sleep on their channel's futex (a NOSPIN dict_get racing
 * the kill, a parked get): each call returns -EPIPE within 1 s (the socket's EOF, seen between
 * sleep slices), not a hang.
 */
static int chan_sleeper(void *arg)
{
	struct mproc_manager *m = arg;
	struct mproc_mclient_opts co = { .flags = MPROC_MANAGER_NOSPIN };
	struct mproc_mclient *c = NULL;
	struct mproc_mlock *l = NULL;
	size_t kl;
	const void *k = mproc_manager_key(m, &kl);

	if (mproc_manager_connect_opts(&c, mproc_manager_address(m), k, kl, &co) < 0 ||
	    chan_warm(c) < 0 || mproc_mlock_open(&l, c, "lk") < 0)
		return 10;
	/* The parent holds it. */
	return mproc_mlock_acquire(l, MPROC_FOREVER) == -EPIPE ? 0 : 11;
}

static void t_chan_server_killed(void *arg)
{
	struct mproc_manager *m = start(NULL);
	struct mproc_mclient *c = connect_to(m);
	struct mproc_mlock *l = NULL;
	pid_t pid;
	double t0;

	ASSERT_OK(chan_warm(c));
	ASSERT_OK(mproc_mlock_open(&l, c, "lk"));
	CHECK_OK(mproc_mlock_acquire(l, 0));
	pid = tap_fork(chan_sleeper, m);
	usleep(150 * 1000);                     /* parked, asleep on its futex */
	ASSERT_OK(kill(mproc_manager_pid(m), SIGKILL) == 0 ? 0 : -errno);
	t0 = tap_now();
	CHECK_EQ(tap_reap(pid), 0);
	CHECK_CMP(tap_now() - t0, <, 1.0 * tap_timeout_mult());
	CHECK_ERR(mproc_mlock_release(l), -EPIPE);
	mproc_mlock_free(l);
	mproc_manager_disconnect(c);
	CHECK_EQ(mproc_manager_stop(m), -SIGKILL);
}

/*
 * CHANNEL with the body MPROC__MGR_CHAN_ASK only asks: the mailbox size, no fds, nothing made
 * (the server's fd count stays); -EOPNOTSUPP from a server started with NOSHM; any other body
 * closes the connection.
 */
static void t_chan_ask(void *arg)
{
	static const uint8_t bad[][2] = { { MPROC__MGR_CHAN_ASK + 1, 0 }, { 0, 0 },
					  { MPROC__MGR_CHAN_ASK, 0 } };
	struct mproc_manager_opts noshm = { .flags = MPROC_MANAGER_NOSHM };
	struct mproc_manager *m = start(NULL), *m2 = NULL;
	pid_t srv = mproc_manager_pid(m);
	uint8_t ask = MPROC__MGR_CHAN_ASK, body[64];
	int fd, fds0 = server_fds_idle(m);
	size_t len;

	for (int i = 0; i < 2; i++) {
		int fds[2];

		fd = raw_connect(mproc_manager_address(m));
		raw_auth(fd, m);
		CHECK_EQ(raw_chan_offer(fd, &ask, 1, fds), 0);  /* no fds */
		CHECK_EQ(server_fds_settle(srv, fds0 + 1), fds0 + 1);  /* the socket only */
		mproc__close(fd);
	}
	for (size_t i = 0; i < MPROC__ARRAY_SIZE(bad); i++) {
		fd = raw_connect(mproc_manager_address(m));
		raw_auth(fd, m);
		raw_send(fd, MPROC__MW_CHANNEL, bad[i], i == 2 ? 2 : 1);
		if (!raw_closed_within(fd, 2.0 * tap_timeout_mult()))
			tap_fail_at(__FILE__, __LINE__, "CHANNEL body %zu: not closed", i);
		mproc__close(fd);
	}
	CHECK_EQ(server_fds_settle(srv, fds0), fds0);
	CHECK_EQ(mproc_manager_stop(m), 0);

	ASSERT_OK(mproc_manager_start(&m2, &noshm));
	fd = raw_connect(mproc_manager_address(m2));
	raw_auth(fd, m2);
	raw_send(fd, MPROC__MW_CHANNEL, &ask, 1);
	CHECK_EQ(raw_read(fd, body, sizeof(body), &len), MPROC__MW_REPLY);
	CHECK_EQ(len, 4);
	CHECK_EQ(mproc__mw_u32(body), (uint32_t)-EOPNOTSUPP);
	mproc__close(fd);
	CHECK_EQ(mproc_manager_stop(m2), 0);
}

/*
 * A client at its fd limit when the channel's two fds arrive (0 or 1 of them free) stays on
 * the socket: the call that asked succeeds, so do the later ones, no fd is left behind on
 * either side and nothing is mapped.
 */
static void t_chan_fd_limit(void *arg)
{
	struct mproc_manager *m = start(NULL);
	pid_t srv = mproc_manager_pid(m);
	int fds0 = server_fds_idle(m);

	for (int k = 0; k < 2; k++) {
		struct mproc_mclient *c = connect_to(m);
		int maps0 = chan_maps(), mine = count_fds(getpid()), low = 0, r;
		struct rlimit old, rl;

		while (fcntl(low, F_GETFD) >= 0)
			low++;
		ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
		rl.rlim_cur = (rlim_t)(low + k);
		rl.rlim_max = old.rlim_max;
		ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
		r = chan_warm(c);
		ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
		CHECK_OK(r);
		CHECK_EQ(chan_maps(), maps0);
		CHECK_EQ(count_fds(getpid()), mine);
		CHECK_OK(mproc_manager_ping(c));
		mproc_manager_disconnect(c);
	}
	CHECK_EQ(server_fds_settle(srv, fds0), fds0);
	CHECK_EQ(mproc_manager_stop(m), 0);
}

int main(int argc, char **argv)
{
	static const struct tap_opts slow = { .timeout_s = 120 };
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		snprintf(cmd_path, sizeof(cmd_path), "%.*s/../lib/mproc-manager",
			 (int)(sizeof(cmd_path) - 32), exe);
	}
	tap_add("manager/sha256/fips180_vectors", t_sha256, NULL);
	tap_add("manager/hmac/rfc4231_vectors", t_hmac, NULL);
	tap_add("manager/unix/semantics", t_semantics, NULL);
	tap_add("manager/tcp/semantics", t_semantics, "tcp:127.0.0.1:0");
	tap_add("manager/unix/proxy_free", t_proxy_free, NULL);
	tap_add_opts("manager/unix/four_procs", t_four_procs, NULL, &slow);
	tap_add_opts("manager/tcp/four_procs", t_four_procs, "tcp:127.0.0.1:0", &slow);
	tap_add("manager/unix/parked_queue_and_owner_died_lock", t_parked, NULL);
	tap_add("manager/unix/wrong_key", t_wrong_key, NULL);
	tap_add("manager/tcp/wrong_key", t_wrong_key, "tcp:127.0.0.1:0");
	tap_add("manager/unix/fake_server_refused", t_fake_server, NULL);
	tap_add("manager/unix/old_server_without_channel", t_old_server, NULL);
	tap_add("manager/unix/huge_prefix_preauth", t_huge_prefix, NULL);
	tap_add("manager/tcp/huge_prefix_preauth", t_huge_prefix, "tcp:127.0.0.1:0");
	tap_add("manager/unix/claimed_length_not_allocated", t_claimed_length, NULL);
	tap_add("manager/tcp/claimed_length_not_allocated", t_claimed_length, "tcp:127.0.0.1:0");
	tap_add_opts("manager/unix/idle_preauth_200", t_idle_preauth, NULL, &slow);
	tap_add_opts("manager/tcp/idle_preauth_200", t_idle_preauth, "tcp:127.0.0.1:0", &slow);
	tap_add("manager/unix/handshake_deadline", t_handshake_deadline, NULL);
	tap_add("manager/unix/slow_reader_pipelined", t_slow_reader, NULL);
	tap_add("manager/tcp/slow_reader_pipelined", t_slow_reader, "tcp:127.0.0.1:0");
	tap_add("manager/unix/pipelined_never_reads_bounded", t_pipeline_no_read, NULL);
	tap_add("manager/tcp/pipelined_never_reads_bounded", t_pipeline_no_read, "tcp:127.0.0.1:0");
	tap_add("manager/unix/fd_limit_refuses_cleanly", t_fd_limit, NULL);
	tap_add("manager/tcp/fd_limit_refuses_cleanly", t_fd_limit, "tcp:127.0.0.1:0");
	tap_add("manager/unix/malformed_frames", t_malformed, NULL);
	tap_add("manager/tcp/malformed_frames", t_malformed, "tcp:127.0.0.1:0");
	tap_add("manager/unix/server_killed", t_server_killed, NULL);
	tap_add("manager/tcp/server_killed", t_server_killed, "tcp:127.0.0.1:0");
	tap_add("manager/unix/every_call_after_server_killed", t_every_call_dead, NULL);
	tap_add("manager/tcp/every_call_after_server_killed", t_every_call_dead,
		"tcp:127.0.0.1:0");
	tap_add("manager/unix/silent_server_times_out", t_silent_server, NULL);
	tap_add("manager/tcp/silent_server_times_out", t_silent_server, "tcp:127.0.0.1:0");
	tap_add("manager/unix/restart_same_address", t_restart, "unix");
	tap_add("manager/tcp/restart_same_address", t_restart, "tcp");
	tap_add("manager/unix/owner_death", t_owner_death, NULL);
	tap_add("manager/api/bad_input", t_bad_input, NULL);
	tap_add("manager/api/header_errors", t_header_errors, NULL);
	tap_add("manager/unix/max_frame", t_max_frame, NULL);
	tap_add("manager/unix/spin_bounded_and_nospin", t_spin, NULL);
	tap_add("manager/tcp/spin_bounded_and_nospin", t_spin, "tcp:127.0.0.1:0");
	tap_add("manager/unix/hammering_client_does_not_starve_others", t_hammer_fair, NULL);
	tap_add("manager/command/flags_and_run", t_command, NULL);
	tap_add("manager/chan/used_where_local", t_chan_used, NULL);
	tap_add("manager/chan/ask_only", t_chan_ask, NULL);
	tap_add("manager/chan/fd_limit_stays_on_socket", t_chan_fd_limit, NULL);
	tap_add("manager/chan/frames_around_the_mailbox", t_chan_big_frames, NULL);
	tap_add("manager/chan/bad_lengths_close", t_chan_bad_lengths, NULL);
	tap_add("manager/chan/order_with_a_parked_request", t_chan_order, NULL);
	tap_add("manager/chan/client_killed", t_chan_client_killed, NULL);
	tap_add("manager/chan/server_killed_while_asleep", t_chan_server_killed, NULL);
	return tap_run(argc, argv);
}
