/* util.c - time, fd and futex helpers shared by the modules (internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mproc/error.h"

int64_t mproc__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MPROC__NSEC_PER_SEC + ts.tv_nsec;
}

int mproc__timeout_ns(double timeout_s, int64_t *ns)
{
	double d;
	int64_t w;

	if (timeout_s == MPROC_FOREVER) {
		*ns = -1;
		return 0;
	}
	if (!mproc__timeout_valid(timeout_s))
		return -EINVAL;
	/* More than ~285 years is forever for our purposes (and would overflow int64 ns). */
	if (timeout_s > 9.0e9) {
		*ns = -1;
		return 0;
	}
	d = timeout_s * 1e9;
	w = (int64_t)d;
	*ns = (double)w < d ? w + 1 : w;
	return 0;
}

int mproc__deadline_at(int64_t timeout_ns, int64_t now_ns, int64_t *out)
{
	if (timeout_ns < -1)
		return -EINVAL;
	if (timeout_ns == -1 || timeout_ns > MPROC__NO_DEADLINE - now_ns)
		*out = MPROC__NO_DEADLINE;
	else
		*out = now_ns + timeout_ns;
	return 0;
}

int mproc__deadline(double timeout_s, int64_t *out)
{
	int64_t ns;
	int r = mproc__timeout_ns(timeout_s, &ns);

	if (r < 0)
		return r;
	if (ns == -1) {         /* no clock read for forever */
		*out = MPROC__NO_DEADLINE;
		return 0;
	}
	return mproc__deadline_at(ns, mproc__now_ns(), out);
}

uint64_t mproc__fnv1a64(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--)
		h = (h ^ *c++) * 0x100000001b3ull;
	return h;
}

int mproc__poll_ms(int64_t deadline_ns)
{
	int64_t left;

	if (deadline_ns == MPROC__NO_DEADLINE)
		return -1;
	left = deadline_ns - mproc__now_ns();
	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;   /* round up: never wake a hair early and spin */
	return left > INT_MAX ? INT_MAX : (int)left;
}

const struct timespec *mproc__timeout_ts(int64_t deadline_ns, struct timespec *ts)
{
	int64_t left;

	if (deadline_ns == MPROC__NO_DEADLINE)
		return NULL;
	left = deadline_ns - mproc__now_ns();
	if (left < 0)
		left = 0;
	ts->tv_sec = left / MPROC__NSEC_PER_SEC;
	ts->tv_nsec = left % MPROC__NSEC_PER_SEC;
	return ts;
}

int mproc__close(int fd)
{
	int saved, r = 0;

	if (fd < 0)
		return 0;
	saved = errno;
	if (close(fd) < 0) {
		if (errno != EINTR)
			r = -errno;
		errno = saved;  /* only on failure: a write to errno can cost a page fault */
	}
	return r;
}

void mproc__closep(int *fd)
{
	mproc__close(*fd);
	*fd = -1;
}

int mproc__poll1(int fd, short events, int64_t deadline_ns)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	for (;;) {
		n = poll(&p, 1, mproc__poll_ms(deadline_ns));
		if (n > 0)
			return p.revents;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

void mproc__iov_advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

ssize_t mproc__iov_xfer(int fd, bool out, struct iovec *iov, int cnt)
{
	size_t done = 0;

	while (cnt > 0) {
		ssize_t n = out ? writev(fd, iov, cnt) : readv(fd, iov, cnt);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 && !out)
			break;
		done += (size_t)n;
		mproc__iov_advance(&iov, &cnt, (size_t)n);
	}
	return (ssize_t)done;
}

ssize_t mproc__write_all(int fd, const void *buf, size_t len, int64_t deadline_ns)
{
	const char *p = buf;
	size_t done = 0;
	bool sock = true;
	ssize_t n;
	int r;

	while (done < len) {
		if (sock) {
			n = send(fd, p + done, len - done, MSG_NOSIGNAL);
			if (n < 0 && errno == ENOTSOCK) {
				sock = false;
				continue;
			}
		} else {
			bool pend = mproc__sigpipe_block();
			n = write(fd, p + done, len - done);
			r = errno;
			mproc__sigpipe_unblock(pend);
			errno = r;
		}
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			r = mproc__poll1(fd, POLLOUT, deadline_ns);
			if (r < 0)
				return r;
			if (r & POLLERR)
				return -EPIPE;
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
	return (ssize_t)done;
}

ssize_t mproc__read_all(int fd, void *buf, size_t len, int64_t deadline_ns)
{
	char *p = buf;
	size_t done = 0;
	ssize_t n;
	int r;

	while (done < len) {
		n = read(fd, p + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			r = mproc__poll1(fd, POLLIN, deadline_ns);
			if (r < 0)
				return r;
			continue;
		}
		return -errno;
	}
	return (ssize_t)done;
}

int mproc__futex_wait(uint32_t *addr, uint32_t val, int64_t deadline_ns)
{
	struct timespec ts, *tp = NULL;
	long r;

	if (deadline_ns != MPROC__NO_DEADLINE) {
		ts.tv_sec = deadline_ns / MPROC__NSEC_PER_SEC;
		ts.tv_nsec = deadline_ns % MPROC__NSEC_PER_SEC;
		tp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a loop after EINTR
	 * needs no recomputation and clock jumps cannot stretch it. */
	r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, val, tp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r == 0)
		return 0;
	switch (errno) {
	case EAGAIN:
		return 0;               /* value already changed */
	case ETIMEDOUT:
		return -ETIMEDOUT;
	case EINTR:
		return -EINTR;
	default:
		return -errno;
	}
}

int mproc__futex_wake(uint32_t *addr, int n)
{
	long r = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);

	return r < 0 ? -errno : (int)r;
}

bool mproc__sigpipe_block(void)
{
	sigset_t set, pend;
	bool was_pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	was_pending = sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return was_pending;
}

void mproc__sigpipe_unblock(bool was_pending)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (!was_pending) {
		/* Eat the SIGPIPE our own write raised, so it is not delivered on unblock. */
		const struct timespec zero = { 0, 0 };
		int saved = errno;

		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
		errno = saved;
	}
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int mproc__set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int mproc__set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

/* Whether thread `tid` still runs: kill(tid, 0) finds any task by id; a zombie (killed but
 * not yet reaped) still answers it, so look at its state in /proc too. */
bool mproc__tid_alive(pid_t tid)
{
	char path[48], buf[256];
	const char *p;
	ssize_t n;
	int fd, saved = errno;
	bool alive = true;

	if (kill(tid, 0) < 0 && errno == ESRCH) {
		errno = saved;
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		alive = errno != ENOENT && errno != ESRCH;
		errno = saved;
		return alive;
	}
	do {
		n = read(fd, buf, sizeof(buf) - 1);
	} while (n < 0 && errno == EINTR);
	mproc__close(fd);
	if (n > 0) {
		buf[n] = '\0';
		p = strrchr(buf, ')');          /* the command name may hold spaces and parens */
		if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
			alive = false;
	}
	errno = saved;
	return alive;
}

long mproc__read_proc_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "re");
	long v;

	if (!f)
		return dflt;
	if (fscanf(f, "%ld", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

int mproc__parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int mproc__unique_name(char *buf, size_t size)
{
	static atomic_uint counter;
	unsigned n = atomic_fetch_add(&counter, 1);
	uint32_t rnd = 0;
	int len;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)mproc__now_ns();
	len = snprintf(buf, size, "/mproc-%d-%u-%08x", (int)getpid(), n, rnd);
	return (len < 0 || (size_t)len >= size) ? -ENAMETOOLONG : 0;
}
