/* tap.c - the test harness (tap.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

struct tap_case {
	char *name;
	tap_fn *fn;
	void *arg;
	struct tap_opts opts;
};

static struct tap_case *cases;
static size_t ncases, capcases;
static const char *current_name = "";
static int fail_count;
static int result_fd = -1;      /* case child -> runner: skip reason */
static bool sysv_check;         /* this case runs in its own IPC namespace */

void tap_add_opts(const char *name, tap_fn *fn, void *arg, const struct tap_opts *o)
{
	if (ncases == capcases) {
		capcases = capcases ? 2 * capcases : 64;
		cases = realloc(cases, capcases * sizeof(*cases));
		if (!cases)
			abort();
	}
	cases[ncases].name = strdup(name);
	cases[ncases].fn = fn;
	cases[ncases].arg = arg;
	cases[ncases].opts = o ? *o : (struct tap_opts){ 0 };
	if (!cases[ncases].name)
		abort();
	ncases++;
}

void tap_add(const char *name, tap_fn *fn, void *arg)
{
	tap_add_opts(name, fn, arg, NULL);
}

double tap_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double tap_env_timeout_mult(void)
{
	const char *m = getenv("TAP_TIMEOUT_MULT");
	double v = m ? strtod(m, NULL) : 1.0;

	return v >= 1.0 ? v : 1.0;
}

/* The CPUs this process may run on: its affinity mask, lowered by a cgroup v2 cpu.max quota
 * on its cgroup or any ancestor (a container's share of a larger host). */
int tap_usable_cpus(void)
{
	char line[512], path[700], *rel, *slash;
	cpu_set_t set;
	int n = 1;
	FILE *f;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		n = CPU_COUNT(&set);
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return n;
	rel = NULL;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			rel = line + 3;
			rel[strcspn(rel, "\n")] = '\0';
			break;
		}
	}
	fclose(f);
	while (rel) {
		long long quota, period;
		FILE *q;

		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", rel);
		q = fopen(path, "re");
		if (q) {
			if (fscanf(q, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0 &&
			    (quota + period - 1) / period < n)
				n = (int)((quota + period - 1) / period);
			fclose(q);
		}
		slash = strrchr(rel, '/');
		if (!slash || slash == rel)
			break;
		*slash = '\0';
	}
	return n;
}

/*
 * How many times slower than alone a case runs now: runnable tasks per usable CPU, the larger
 * of the 1-minute load average and the tasks runnable at this instant (less this reader), both
 * from /proc/loadavg (TAP_LOADAVG_FILE replaces it, for the harness's own test); clamped to
 * [1, TAP_LOAD_MAX]. TAP_LOAD_SCALE=0 turns it off (always 1).
 */
double tap_load_factor(void)
{
	const char *file = getenv("TAP_LOADAVG_FILE"), *off = getenv("TAP_LOAD_SCALE");
	double load1 = 0, busy, factor;
	int running = 0, total = 0;
	FILE *f;

	if (off && !strcmp(off, "0"))
		return 1.0;
	f = fopen(file && *file ? file : "/proc/loadavg", "re");
	if (!f)
		return 1.0;
	if (fscanf(f, "%lf %*f %*f %d/%d", &load1, &running, &total) < 1)
		load1 = 0;
	fclose(f);
	busy = load1 > running - 1 ? load1 : running - 1;
	factor = busy / tap_usable_cpus();
	return factor < 1.0 ? 1.0 : factor > TAP_LOAD_MAX ? TAP_LOAD_MAX : factor;
}

double tap_timeout_mult(void)
{
	return tap_env_timeout_mult() * tap_load_factor();
}

bool tap_dev_shm_usable(void)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "/mproc-%d-tapprobe", (int)getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	close(fd);
	shm_unlink(name);
	return true;
}

void tap_require_dev_shm(void)
{
	if (!tap_dev_shm_usable())
		tap_skip("no writable /dev/shm here (%s): named shared memory is unavailable",
			 getenv("MPROC_TEST_NO_DEVSHM") ? "tests/no_devshm.sh" : "this machine");
}

const char *tap_case_name(void)
{
	return current_name;
}

bool tap_failed(void)
{
	return fail_count > 0;
}

int tap_fail_count(void)
{
	return fail_count;
}

static void vdiag(const char *fmt, va_list ap)
{
	char buf[4096];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	char *line, *save = NULL;

	if (n < 0)
		return;
	fflush(stdout);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("# %s\n", line);
	fflush(stdout);
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(fmt, ap);
	va_end(ap);
}

void tap_fail_at(const char *file, int line, const char *fmt, ...)
{
	char buf[3000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fail_count++;
	tap_diag("%s: %s:%d: %s", current_name, file, line, buf);
}

_Noreturn void tap_skip(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	ssize_t w;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (result_fd >= 0)
		w = write(result_fd, buf, strlen(buf));
	(void)w;
	fflush(stdout);
	_exit(77);
}

_Noreturn void tap_abort_case(void)
{
	fflush(stdout);
	_exit(1);
}

pid_t tap_fork(int (*fn)(void *arg), void *arg)
{
	pid_t p;

	fflush(stdout);
	p = fork();
	if (p < 0) {
		tap_fail_at(__FILE__, __LINE__, "fork: %s", strerror(errno));
		tap_abort_case();
	}
	if (p == 0)
		_exit(fn(arg) & 0xff);
	return p;
}

int tap_reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- leak snapshots ---- */

#define SNAP_MAX 1024

struct tap_snapshot {
	int nfds;
	int fds[SNAP_MAX];
	char fd_target[SNAP_MAX][96];
	int threads;
	int nshm;
	char shm[SNAP_MAX][320];
	int nmsq;
	int msq[SNAP_MAX];
};

static int list_dir(const char *path, bool (*keep)(const char *), char (*out)[320], int max)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] == '.' || !keep(e->d_name))
			continue;
		snprintf(out[n++], 320, "%s/%s", path, e->d_name);
	}
	closedir(d);
	return n;
}

static bool is_mproc_name(const char *n)
{
	return strncmp(n, "mproc-", 6) == 0;
}

static bool keep_all(const char *n)
{
	return true;
}

int tap_count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int tap_count_fds(void)
{
	int n = tap_count_entries("/proc/self/fd");

	return n < 0 ? n : n - 1;   /* minus the directory's own fd */
}

static int read_fds(int *fds, char (*targets)[96], int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0, self;

	if (!d)
		return 0;
	self = dirfd(d);
	while ((e = readdir(d)) && n < max) {
		char path[300];
		ssize_t len;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (fd == self)
			continue;
		fds[n] = fd;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, targets[n], 95);
		targets[n][len > 0 ? len : 0] = '\0';
		n++;
	}
	closedir(d);
	return n;
}

static int read_msqids(int *ids, int max)
{
	FILE *f = fopen("/proc/sysvipc/msg", "re");
	char line[512];
	int n = 0;

	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) {    /* header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f) && n < max) {
		long key;
		int id;

		if (sscanf(line, "%ld %d", &key, &id) == 2)
			ids[n++] = id;
	}
	fclose(f);
	return n;
}

/* A TMPDIR other than /tmp that the manager would use (manager.c: at most 40 bytes). */
static bool tmpdir_other(void)
{
	const char *t = getenv("TMPDIR");

	return t && t[0] && strlen(t) <= 40 && strcmp(t, "/tmp") != 0 && strcmp(t, "/tmp/") != 0;
}

struct tap_snapshot *tap_snapshot_take(void)
{
	struct tap_snapshot *s = calloc(1, sizeof(*s));
	char (*names)[320];
	int n;

	if (!s)
		abort();
	s->nfds = read_fds(s->fds, s->fd_target, SNAP_MAX);
	s->threads = tap_count_entries("/proc/self/task");
	names = s->shm;
	n = list_dir("/dev/shm", is_mproc_name, names, SNAP_MAX);
	n += list_dir("/dev/mqueue", is_mproc_name, names + n, SNAP_MAX - n);
	/* Manager socket dirs (/tmp/mproc-<pid>-XXXXXX) and forkserver dirs
	 * (/tmp/mproc-<pid>-fs-XXXXXX); the lib ignores TMPDIR longer than 40 bytes, so /tmp and
	 * a short TMPDIR cover them. */
	n += list_dir("/tmp", is_mproc_name, names + n, SNAP_MAX - n);
	if (tmpdir_other())
		n += list_dir(getenv("TMPDIR"), is_mproc_name, names + n, SNAP_MAX - n);
	s->nshm = n;
	s->nmsq = sysv_check ? read_msqids(s->msq, SNAP_MAX) : 0;
	(void)keep_all;
	return s;
}

/* The pid inside "/dev/shm/mproc-<pid>-..." (digits, then '-'), or 0 for a name of another
 * form (a mkdtemp suffix that starts with a digit is no pid). */
static pid_t name_pid(const char *path)
{
	const char *p = strrchr(path, '/');
	char *end;
	long v;

	p = p ? strstr(p, "mproc-") : NULL;
	if (!p || p[6] < '1' || p[6] > '9')
		return 0;
	v = strtol(p + 6, &end, 10);
	return *end == '-' && v > 0 && v <= INT_MAX ? (pid_t)v : 0;
}

static bool in_dev(const char *path)
{
	return strncmp(path, "/dev/", 5) == 0;
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

struct child_info {
	pid_t pid;
	char state;
	char comm[32];
};

static int list_children(struct child_info *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		char path[300], buf[512], *rp;
		int fd, ppid;
		ssize_t len;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		rp = strrchr(buf, ')');     /* comm may hold spaces and parens */
		if (!rp || sscanf(rp + 2, "%c %d", &out[n].state, &ppid) != 2 || ppid != self)
			continue;
		out[n].pid = atoi(e->d_name);
		{
			char *lp = strchr(buf, '(');
			size_t cl = lp ? (size_t)(rp - lp - 1) : 0;
			if (cl >= sizeof(out[n].comm))
				cl = sizeof(out[n].comm) - 1;
			memcpy(out[n].comm, lp ? lp + 1 : "", cl);
			out[n].comm[cl] = '\0';
		}
		n++;
	}
	closedir(d);
	return n;
}

int tap_count_children(void)
{
	struct child_info c[256];

	return list_children(c, 256);
}

/* Kill and reap every child (live or zombie) of this process; returns how many. */
static int kill_children(bool report)
{
	struct child_info c[256];
	int n = list_children(c, 256), i;

	for (i = 0; i < n; i++) {
		if (report)
			tap_diag("leak: child process %d (%s, state %c) still %s", (int)c[i].pid,
				 c[i].comm, c[i].state, c[i].state == 'Z' ? "unreaped" : "running");
		kill(c[i].pid, SIGKILL);
	}
	for (i = 0; i < n; i++)
		while (waitpid(c[i].pid, NULL, __WALL) < 0 && errno == EINTR)
			;
	return n;
}

int tap_snapshot_compare(struct tap_snapshot *b, struct tap_snapshot *a)
{
	int leaks = 0, i, j;

	for (i = 0; i < a->nfds; i++) {
		bool found = false;

		for (j = 0; j < b->nfds && !found; j++)
			found = b->fds[j] == a->fds[i] && !strcmp(b->fd_target[j], a->fd_target[i]);
		if (!found) {
			tap_diag("leak: fd %d -> %s", a->fds[i], a->fd_target[i]);
			leaks++;
		}
	}
	if (a->threads > b->threads) {
		tap_diag("leak: %d thread(s) more than before", a->threads - b->threads);
		leaks++;
	}
	for (i = 0; i < a->nshm; i++) {
		bool found = false;
		pid_t owner;

		for (j = 0; j < b->nshm && !found; j++)
			found = !strcmp(b->shm[j], a->shm[i]);
		if (found)
			continue;
		/* Parallel-safe: another test's live process may own it. Ours, or dead: leak. */
		owner = name_pid(a->shm[i]);
		/* A temporary name without a pid (a test's own mkdtemp, another tool's file) may
		 * be anybody's: only /dev names are all ours. */
		if (owner == 0 && !in_dev(a->shm[i]))
			continue;
		if (owner == getpid() || !pid_alive(owner)) {
			tap_diag("leak: %s (creator pid %d %s)", a->shm[i], (int)owner,
				 owner == getpid() ? "is this case" : "is gone");
			leaks++;
		}
	}
	for (i = 0; i < a->nmsq; i++) {
		bool found = false;

		for (j = 0; j < b->nmsq && !found; j++)
			found = b->msq[j] == a->msq[i];
		if (!found) {
			tap_diag("leak: SysV message queue id %d", a->msq[i]);
			leaks++;
		}
	}
	free(b);
	free(a);
	return leaks;
}

/* ---- runner ---- */

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Runs in the case child. */
#if defined(__SANITIZE_THREAD__)
static void *noop_thread(void *arg)
{
	return arg;
}
#endif

static _Noreturn void run_case_child(struct tap_case *c)
{
	struct tap_snapshot *before = NULL, *after;
	int leaks;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_DFL);
	/* The signals a case sends (Ctrl-C to an owner, SIGTERM to a server) have their default
	 * action, whatever the runner inherited: a shell runs a background job (`cmd &`, nohup)
	 * with SIGINT and SIGQUIT (and SIGHUP) ignored, and an ignored signal stays ignored
	 * across fork and exec. */
	signal(SIGHUP, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* A private IPC namespace per case (root only): SysV queues and POSIX mqueues made by
	 * tests running in parallel are then invisible here, so the leak check names only this
	 * case's own. Without it (not root) the SysV part of the check is off. */
	sysv_check = unshare(CLONE_NEWIPC) == 0;
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer starts a background thread of its own at a process's first
	 * pthread_create and keeps it: start it here, before the snapshot, so that the leak check
	 * counts only the case's threads. */
	{
		pthread_t th;

		if (pthread_create(&th, NULL, noop_thread, NULL) == 0)
			pthread_join(th, NULL);
	}
#endif
	if (!(c->opts.flags & TAP_NO_LEAK_CHECK))
		before = tap_snapshot_take();
	c->fn(c->arg);
	fflush(stdout);
	if (before) {
		/* Give children that were signalled an instant to be reaped by their owner. */
		after = tap_snapshot_take();
		/* Exclude our own result pipe from the comparison by taking it in both. */
		leaks = tap_snapshot_compare(before, after);
		leaks += kill_children(true);
		if (leaks) {
			tap_diag("%s: %d leak(s)", current_name, leaks);
			fail_count++;
		}
	} else {
		kill_children(false);
	}
	fflush(stdout);
	_exit(fail_count ? 1 : 0);
}

/*
 * The watchdog. A case's budget is its timeout (x TAP_TIMEOUT_MULT) of machine time, not of
 * wall time: each slice of at most WATCH_SLICE_S counts as wall time / tap_load_factor(), so a
 * machine that is saturated (other tests, other users, a CPU hog) extends the deadline instead
 * of failing a case only for being slow. A real hang still fails in bounded wall time: at most
 * TAP_LOAD_MAX x the budget, however loaded the machine.
 */
#define WATCH_SLICE_S 0.5

static int run_one(struct tap_case *c, int num, char *skip_reason, size_t skip_len)
{
	double timeout = (c->opts.timeout_s > 0 ? c->opts.timeout_s : 60.0) *
			 tap_env_timeout_mult();
	int pfd[2], status = 0, pidfd, res;
	double start = tap_now(), last, used = 0;
	pid_t pid;
	ssize_t n;

	current_name = c->name;
	fail_count = 0;
	skip_reason[0] = '\0';
	if (c->opts.flags & TAP_NO_FORK) {
		c->fn(c->arg);
		return fail_count ? 1 : 0;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		perror("pipe2");
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		close(pfd[0]);
		close(pfd[1]);
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		/* Keep the result fd out of the leak snapshots' way: high and fixed. */
		result_fd = fcntl(pfd[1], F_DUPFD_CLOEXEC, 900);
		close(pfd[1]);
		run_case_child(c);
	}
	close(pfd[1]);
	/* Read without blocking once the case is reaped: a process the case forked and left
	 * behind holds the pipe's write end until kill_children() below. */
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	pidfd = pidfd_open_(pid);
	last = start;
	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		double left = timeout - used, slice, now;
		int r;

		slice = left < WATCH_SLICE_S ? left : WATCH_SLICE_S;
		if (slice < 0)
			slice = 0;
		if (pidfd < 0) {        /* old kernel: poll waitpid */
			r = waitpid(pid, &status, WNOHANG);
			if (r == pid)
				break;
			if (slice > 0)
				usleep(10000);
		} else {
			r = poll(&p, 1, (int)(slice * 1000) + 1);
			if (r > 0) {
				while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
					;
				break;
			}
			if (r < 0 && errno != EINTR) {
				perror("poll");
				usleep(10000);
			}
		}
		now = tap_now();
		used += (now - last) / tap_load_factor();
		last = now;
		if (used >= timeout || now - start >= timeout * TAP_LOAD_MAX) {
			printf("# %s: timed out after %.1f s of wall time (%.1f s of machine time "
			       "at the load seen; budget %.1f s, at most %.0f s of wall time); "
			       "killing it\n", c->name, now - start, used, timeout,
			       timeout * TAP_LOAD_MAX);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			status = -1;
			break;
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	n = read(pfd[0], skip_reason, skip_len - 1);
	skip_reason[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	/* Anything the case orphaned came to us (we are a subreaper): reap, and fail. */
	if (kill_children(true) > 0 && status == 0)
		status = 1 << 8;
	if (status == -1)
		return 1;
	if (WIFSIGNALED(status)) {
		printf("# %s: killed by signal %d (%s)\n", c->name, WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
		return 1;
	}
	res = WEXITSTATUS(status);
	return res == 77 ? 77 : res ? 1 : 0;
}

/*
 * TAP_SKIP: space-separated fnmatch patterns of cases that cannot work in this environment
 * (a test setup sets it, e.g. valgrind's in meson.build), skipped with TAP_SKIP_REASON.
 */
static bool env_skipped(const char *name, char *reason, size_t size)
{
	const char *list = getenv("TAP_SKIP"), *why = getenv("TAP_SKIP_REASON");
	char pat[256];
	size_t n;

	while (list && *list) {
		while (*list == ' ')
			list++;
		n = strcspn(list, " ");
		if (n > 0 && n < sizeof(pat)) {
			memcpy(pat, list, n);
			pat[n] = '\0';
			if (fnmatch(pat, name, 0) == 0) {
				snprintf(reason, size, "%s", why && *why ? why : "excluded by TAP_SKIP");
				return true;
			}
		}
		list += n;
	}
	return false;
}

int tap_run(int argc, char **argv)
{
	const char **pats = NULL;
	int npats = 0, i, num = 0, failed = 0, skipped = 0, selected = 0;
	char reason[512];
	bool list = false;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--list")) {
			list = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: %s [--list] [PATTERN...]\nRuns the cases whose names match a "
			       "PATTERN (fnmatch), all by default; TAP on stdout.\n", argv[0]);
			return 0;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "%s: unknown option '%s' (valid: --list, --help)\n",
				argv[0], argv[i]);
			return 2;
		} else {
			pats = realloc(pats, (size_t)(npats + 1) * sizeof(*pats));
			pats[npats++] = argv[i];
		}
	}
	for (size_t k = 0; k < ncases; k++) {
		bool match = npats == 0;

		for (i = 0; i < npats && !match; i++)
			match = fnmatch(pats[i], cases[k].name, 0) == 0;
		if (!match) {
			cases[k].fn = NULL;
			continue;
		}
		selected++;
		if (list)
			printf("%s\n", cases[k].name);
	}
	if (list)
		return 0;
	if (npats && !selected) {
		fprintf(stderr, "%s: no case matches the given pattern(s); see --list\n", argv[0]);
		return 2;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* A test must never die of SIGPIPE: the library returns EPIPE. Tests that want to check
	 * that the library itself avoids SIGPIPE restore SIG_DFL in the case child (we do). */
	/* Every selected case excluded by TAP_SKIP: a skipped plan, which meson's TAP reader
	 * counts as SKIP (it reads exit status 77 as an error under the TAP protocol). */
	{
		int env_skips = 0;

		for (size_t k = 0; k < ncases; k++) {
			if (cases[k].fn && env_skipped(cases[k].name, reason, sizeof(reason)))
				env_skips++;
		}
		if (selected > 0 && env_skips == selected) {
			printf("TAP version 13\n1..0 # SKIP %s\n", reason);
			free(pats);
			return 0;
		}
	}
	printf("TAP version 13\n1..%d\n", selected);
	for (size_t k = 0; k < ncases; k++) {
		int r;

		if (!cases[k].fn)
			continue;
		num++;
		if (env_skipped(cases[k].name, reason, sizeof(reason)))
			r = 77;
		else
			r = run_one(&cases[k], num, reason, sizeof(reason));
		if (r == 77) {
			printf("ok %d %s # SKIP %s\n", num, cases[k].name, reason[0] ? reason : "skipped");
			skipped++;
		} else if (r) {
			printf("not ok %d %s\n", num, cases[k].name);
			failed++;
		} else {
			printf("ok %d %s\n", num, cases[k].name);
		}
		fflush(stdout);
	}
	free(pats);
	if (failed)
		return 1;
	return (selected > 0 && skipped == selected) ? 77 : 0;
}
