/*
 * bench_manager.c - what a call through a manager proxy costs, next to the raw socket round
 * trip it is built on.
 *
 * Names:
 *   manager/<op>/transport:<unix|tcp>    op: connect, dict_set, dict_get, list_append,
 *        value_get, queue_put_get (two calls), lock_acquire_release (two calls)
 *   manager/raw_rtt/transport:<unix|tcp> the yardstick: a request of dict_get's size (33 B)
 *        and a reply of its size (80 B) over one connected socket, plain blocking write/read,
 *        echoed by a forked process
 *   manager/dict_get/transport:unix[/placement:cross_core][/spin:off],
 *   manager/raw_rtt/transport:unix/placement:cross_core   the placement and spin variants
 *   manager/dict_get/transport:unix/placement:unpinned   neither process pinned, as a user
 *        runs it (and as bench/python/mp_bench.py runs CPython's Manager: the pair the report
 *        and the decider compare)
 *   manager/dict_get/transport:unix[/placement:<cross_core|unpinned>]/shm:off   the same
 *        without the shared-memory channel (MPROC_MANAGER_NOSHM: every call on the socket)
 *   manager/throughput/clients:<N>       N client processes doing dict_get over Unix sockets
 *        for a fixed count each; counter ops_per_second (real_time = its inverse: one call of
 *        the N * count per round); manager/throughput/spin:off/clients:<N>
 *        the same for the largest N without the spin
 * Counters: p50_ns, p99_ns, p999_ns over individual calls (one CLOCK_MONOTONIC sample per
 * iteration), plus samples; the benchmark time is the manual time of each call.
 *
 * Placement: the server (or the raw echo process) and the client are pinned to one PU
 * (same_core, which every machine has; the label names it), and raw_rtt uses the same
 * placement, so "dict_get / raw_rtt" is the manager's own overhead; compare it with
 * baseline/pipe_rtt/placement:same_core. dict_get and raw_rtt over Unix sockets also run at
 * placement:cross_core (named so). There a blocking round trip pays two wakeups of a sleeping
 * CPU (5-10x the same_core figure on the shared 2-core development box, where the other core
 * is busy), which the bounded spin of server and client (MPROC__MGR_SPIN_NS) saves; dict_get
 * also runs at both placements with spin:off (MPROC_MANAGER_NOSPIN), the plain blocking call.
 * A Unix client uses the shared-memory channel unless named shm:off; MPROC_BENCH_MANAGER_NOSHM=1
 * in the environment turns it off in every case (an A/B of the whole harness, names unchanged).
 * Every reply is checked (length and contents) in every profile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "bench_util.h"
#include "internal.h"
#include "mproc/error.h"
#include "mproc/manager.h"

#define VAL_BYTES 64
#define RAW_REQ 33      /* 12-byte header + u32 id + u32 len + "k" ... dict_get's request */
#define RAW_REP 80      /* 12-byte header + i32 status + 64-byte value: dict_get's reply */

enum op {
	OP_CONNECT,
	OP_DICT_SET,
	OP_DICT_GET,
	OP_LIST_APPEND,
	OP_VALUE_GET,
	OP_QUEUE_PUT_GET,
	OP_LOCK_ACQUIRE_RELEASE,
	OP_RAW_RTT,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"connect", "dict_set", "dict_get", "list_append", "value_get", "queue_put_get",
	"lock_acquire_release", "raw_rtt",
};

struct mcase {
	enum op op;
	bool tcp;
	int clients;
	bool cross_core;        /* the .../placement:cross_core variants */
	bool nospin;            /* the .../spin:off variants (MPROC_MANAGER_NOSPIN both sides) */
	bool unpinned;          /* the .../placement:unpinned variants (nothing pinned) */
	bool noshm;             /* the .../shm:off variants (MPROC_MANAGER_NOSHM, client side) */
};

/* The client's flags for case c. */
static unsigned client_flags(const struct mcase *c)
{
	const char *e = getenv("MPROC_BENCH_MANAGER_NOSHM");
	unsigned f = c->nospin ? MPROC_MANAGER_NOSPIN : 0;

	if (c->noshm || (e && strcmp(e, "1") == 0))
		f |= MPROC_MANAGER_NOSHM;
	return f;
}

static void fill(uint8_t *v, uint64_t seed)
{
	for (int i = 0; i < VAL_BYTES; i++)
		v[i] = (uint8_t)(seed * 131 + (uint64_t)i * 7);
}

/* ---- raw round trip ---- */

static int raw_echo(void *arg)
{
	int *fds = arg, fd = fds[1];
	uint8_t req[RAW_REQ], rep[RAW_REP];

	mproc__close(fds[0]);   /* else our copy keeps the client's end open: no EOF, no exit */

	for (;;) {
		ssize_t n = mproc__read_all(fd, req, sizeof(req), MPROC__NO_DEADLINE);

		if (n == 0)
			return 0;
		if (n != (ssize_t)sizeof(req))
			return 1;
		memset(rep, 0, sizeof(rep));
		memcpy(rep, req, 8);    /* the sequence number comes back */
		if (mproc__write_all(fd, rep, sizeof(rep), MPROC__NO_DEADLINE) != sizeof(rep))
			return 1;
	}
}

/* A connected pair: socketpair for Unix, a loopback TCP connection for TCP. */
static int raw_pair(bool tcp, int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int lfd, one = 1;

	if (!tcp)
		return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
		goto fail;
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fds[1] < 0)
		goto fail;
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	mproc__close(lfd);
	return 0;
fail:
	mproc__close(lfd);
	return -errno;
}

static void bm_raw(struct gbench_state *st, const struct mcase *c, int pa, int pb)
{
	struct bench_samples s = { 0 };
	uint8_t req[RAW_REQ] = { 0 }, rep[RAW_REP];
	const char *err = NULL;
	int fds[2] = { -1, -1 };
	uint64_t seq = 0;
	pid_t pid;

	if (raw_pair(c->tcp, fds) < 0 || bench_samples_init(&s, (size_t)1 << 20) < 0) {
		gbench_skip_with_error(st, "socket setup failed");
		goto out;
	}
	pid = bench_fork(pb, raw_echo, fds);
	mproc__closep(&fds[1]);
	if (pid < 0) {
		gbench_skip_with_error(st, "fork failed");
		goto out;
	}
	mproc_topo_pin(0, pa);
	for (int i = -100; !err; i++) {
		int64_t t0;

		if (i >= 0 && !gbench_keep_running(st))
			break;
		seq++;
		memcpy(req, &seq, 8);
		t0 = bench_now_ns();
		if (mproc__write_all(fds[0], req, sizeof(req), MPROC__NO_DEADLINE) != sizeof(req) ||
		    mproc__read_all(fds[0], rep, sizeof(rep), MPROC__NO_DEADLINE) != sizeof(rep) ||
		    memcmp(rep, &seq, 8) != 0) {
			err = "raw echo lost or corrupt";
			break;
		}
		if (i >= 0) {
			int64_t dt = bench_now_ns() - t0;

			bench_samples_add(&s, dt);
			gbench_set_iteration_time(st, (double)dt / 1e9);
		}
	}
	mproc__closep(&fds[0]);
	if (bench_reap(pid, err != NULL) != 0 && !err)
		err = "echo process failed";
	if (err)
		gbench_skip_with_error(st, err);
	else
		bench_samples_report(st, &s);
out:
	mproc__close(fds[0]);
	mproc__close(fds[1]);
	bench_samples_free(&s);
	mproc_topo_unpin(bench_topo(), 0);
}

/* ---- proxy calls ---- */

struct objs {
	struct mproc_dict *d;
	struct mproc_list *l;
	struct mproc_mvalue *v;
	struct mproc_mqueue *q;
	struct mproc_mlock *lk;
};

static int objs_open(struct mproc_mclient *cl, struct objs *o)
{
	uint8_t val[VAL_BYTES];
	int r;

	fill(val, 1);
	if ((r = mproc_dict_open(&o->d, cl, "d")) < 0 || (r = mproc_list_open(&o->l, cl, "l")) < 0 ||
	    (r = mproc_mvalue_open(&o->v, cl, "v")) < 0 ||
	    (r = mproc_mqueue_open(&o->q, cl, "q", 0)) < 0 ||
	    (r = mproc_mlock_open(&o->lk, cl, "lk")) < 0)
		return r;
	if ((r = mproc_dict_set(o->d, "k", val, sizeof(val))) < 0)
		return r;
	return mproc_mvalue_set(o->v, 42);
}

static void objs_close(struct objs *o)
{
	mproc_dict_free(o->d);
	mproc_list_free(o->l);
	mproc_mvalue_free(o->v);
	mproc_mqueue_free(o->q);
	mproc_mlock_free(o->lk);
}

/* One call (or pair of calls) of op; 0 or a message. */
static const char *one_op(enum op op, struct objs *o, const char *addr, const void *key,
			  size_t kl, const struct mproc_mclient_opts *co, uint64_t seq)
{
	uint8_t val[VAL_BYTES], got[VAL_BYTES];
	struct mproc_mclient *c;
	int64_t x;

	switch (op) {
	case OP_CONNECT:
		/* The case's client flags, so that MPROC_BENCH_MANAGER_NOSHM reaches the timed
		 * connect too (without a channel connect costs what it did before the channel). */
		if (mproc_manager_connect_opts(&c, addr, key, kl, co) < 0)
			return "connect failed";
		mproc_manager_disconnect(c);
		return NULL;
	case OP_DICT_SET:
		fill(val, 1);
		return mproc_dict_set(o->d, "k", val, sizeof(val)) < 0 ? "dict_set failed" : NULL;
	case OP_DICT_GET:
		fill(val, 1);
		if (mproc_dict_get(o->d, "k", got, sizeof(got)) != sizeof(got) ||
		    memcmp(got, val, sizeof(val)) != 0)
			return "dict_get lost or corrupt";
		return NULL;
	case OP_LIST_APPEND:
		fill(val, seq);
		return mproc_list_append(o->l, val, sizeof(val)) < 0 ? "list_append failed" : NULL;
	case OP_VALUE_GET:
		if (mproc_mvalue_get(o->v, &x) < 0 || x != 42)
			return "value_get lost or corrupt";
		return NULL;
	case OP_QUEUE_PUT_GET:
		fill(val, seq);
		if (mproc_mqueue_put(o->q, val, sizeof(val), 0) < 0 ||
		    mproc_mqueue_get(o->q, got, sizeof(got), 0) != sizeof(got) ||
		    memcmp(got, val, sizeof(val)) != 0)
			return "queue put/get lost or corrupt";
		return NULL;
	case OP_LOCK_ACQUIRE_RELEASE:
		if (mproc_mlock_acquire(o->lk, MPROC_FOREVER) < 0 || mproc_mlock_release(o->lk) < 0)
			return "lock acquire/release failed";
		return NULL;
	default:
		return "unknown op";
	}
}

static void bm_op(struct gbench_state *st, const struct mcase *c, int pa, int pb)
{
	struct mproc_manager_opts mo = {
		.address = c->tcp ? "tcp:127.0.0.1:0" : NULL,
		.flags = c->nospin ? MPROC_MANAGER_NOSPIN : 0,
	};
	struct mproc_mclient_opts co = { .flags = client_flags(c) };
	struct mproc_manager *m = NULL;
	struct mproc_mclient *cl = NULL;
	struct bench_samples s = { 0 };
	struct objs o = { 0 };
	const char *err = NULL;
	const void *key;
	size_t kl;
	uint64_t seq = 0;
	int r;

	r = mproc_manager_start(&m, &mo);
	if (r < 0 || bench_samples_init(&s, (size_t)1 << 20) < 0) {
		gbench_skip_with_error(st, r < 0 ? mproc_strerror(r) : "out of memory");
		goto out;
	}
	mproc_topo_pin(mproc_manager_pid(m), pb);
	mproc_topo_pin(0, pa);
	key = mproc_manager_key(m, &kl);
	r = mproc_manager_connect_opts(&cl, mproc_manager_address(m), key, kl, &co);
	if (r == 0)
		r = objs_open(cl, &o);
	if (r < 0) {
		gbench_skip_with_error(st, mproc_strerror(r));
		goto out;
	}
	for (int i = -100; !err; i++) {
		int64_t t0;

		if (i >= 0 && !gbench_keep_running(st))
			break;
		t0 = bench_now_ns();
		err = one_op(c->op, &o, mproc_manager_address(m), key, kl, &co, ++seq);
		if (i >= 0 && !err) {
			int64_t dt = bench_now_ns() - t0;

			bench_samples_add(&s, dt);
			gbench_set_iteration_time(st, (double)dt / 1e9);
		}
	}
	if (err)
		gbench_skip_with_error(st, err);
	else
		bench_samples_report(st, &s);
out:
	objs_close(&o);
	mproc_manager_disconnect(cl);
	mproc_manager_stop(m);
	bench_samples_free(&s);
	mproc_topo_unpin(bench_topo(), 0);
}

/* ---- throughput ---- */

#define TP_OPS 2000     /* dict_get calls per client per iteration */

struct tp_shared {
	struct bench_gate gate;
	uint32_t failures;
};

struct tp_arg {
	struct tp_shared *sh;
	const char *addr;
	const void *key;
	size_t kl;
	int parties;
	unsigned flags;
};

static int tp_client(void *p)
{
	struct tp_arg *a = p;
	struct mproc_mclient_opts co = { .flags = a->flags };
	struct mproc_mclient *c = NULL;
	struct objs o = { 0 };
	int bad = 0;

	if (mproc_manager_connect_opts(&c, a->addr, a->key, a->kl, &co) < 0 ||
	    objs_open(c, &o) < 0)
		bad = 1;
	bench_gate_wait(&a->sh->gate, (uint32_t)a->parties);
	for (int i = 0; i < TP_OPS && !bad; i++)
		bad = one_op(OP_DICT_GET, &o, NULL, NULL, 0, NULL, 0) != NULL;
	objs_close(&o);
	mproc_manager_disconnect(c);
	if (bad)
		__atomic_fetch_add(&a->sh->failures, 1, __ATOMIC_RELAXED);
	return bad;
}

static void bm_throughput(struct gbench_state *st, const struct mcase *c)
{
	struct mproc_manager_opts mo = { .flags = c->nospin ? MPROC_MANAGER_NOSPIN : 0 };
	struct mproc_manager *m = NULL;
	struct tp_shared *sh = bench_shared_alloc(sizeof(*sh));
	struct tp_arg a;
	const char *err = NULL;
	pid_t pids[64];
	double ops = 0;
	int r, n = c->clients;

	r = mproc_manager_start(&m, &mo);
	if (r < 0 || !sh) {
		gbench_skip_with_error(st, r < 0 ? mproc_strerror(r) : "out of memory");
		goto out;
	}
	a = (struct tp_arg){ sh, mproc_manager_address(m), NULL, 0, n + 1, client_flags(c) };
	a.key = mproc_manager_key(m, &a.kl);
	/* One dict_get is one iteration: real_time is per call, summed over the clients. */
	while (!err && gbench_keep_running_batch(st, (int64_t)n * TP_OPS)) {
		int64_t t0;
		int started = 0;

		bench_gate_init(&sh->gate);
		for (int i = 0; i < n; i++) {
			pids[i] = bench_fork(-1, tp_client, &a);
			if (pids[i] < 0)
				break;
			started++;
		}
		if (started < n) {
			err = "fork failed";
			/* Let the started ones through the gate, then reap them. */
			a.parties = started + 1;
		}
		bench_gate_wait(&sh->gate, (uint32_t)(started + 1));
		t0 = bench_now_ns();
		for (int i = 0; i < started; i++)
			if (bench_reap(pids[i], false) != 0 && !err)
				err = "client failed";
		gbench_set_iteration_time(st, (double)(bench_now_ns() - t0) / 1e9);
		ops += (double)n * TP_OPS;
	}
	if (err)
		gbench_skip_with_error(st, err);
	else
		gbench_counter(st, "ops_per_second", ops, GBENCH_RATE);
out:
	mproc_manager_stop(m);
	if (sh)
		bench_shared_free(sh, sizeof(*sh));
}

static void bm_manager(struct gbench_state *st, void *arg)
{
	const struct mcase *c = arg;
	enum mproc_topo_placement place = c->cross_core ? MPROC_TOPO_CROSS_CORE :
							 MPROC_TOPO_SAME_CORE;
	int pa = -1, pb = -1;

	if (c->clients) {
		bm_throughput(st, c);
		return;
	}
	if (c->unpinned) {
		gbench_set_label(st, "unpinned");
		bm_op(st, c, -1, -1);
		return;
	}
	if (bench_pair(place, &pa, &pb) < 0) {
		if (c->cross_core) {
			gbench_skip_with_error(st, "no two cores to place the processes on");
			return;
		}
		pa = pb = -1;
	}
	gbench_set_label(st, mproc_topo_placement_name(place));
	if (c->op == OP_RAW_RTT)
		bm_raw(st, c, pa, pb);
	else
		bm_op(st, c, pa, pb);
}

static struct mcase cases[OP_COUNT * 2 + 8 + 8 + 1];

static void register_all(void)
{
	static const int clients_quick[] = { 1, 2, 4, 8 };
	enum gbench_profile prof = gbench_current_profile();
	size_t n = 0, nclients = prof == GBENCH_SMOKE ? 2 : MPROC__ARRAY_SIZE(clients_quick);

	for (int t = 0; t < 2; t++) {
		for (int op = 0; op < OP_COUNT; op++) {
			char name[96];
			struct gbench *g;

			cases[n] = (struct mcase){ .op = op, .tcp = t == 1 };
			snprintf(name, sizeof(name), "manager/%s/transport:%s", op_names[op],
				 t ? "tcp" : "unix");
			g = gbench_register(name, bm_manager, &cases[n++]);
			gbench_use_manual_time(g);
			gbench_time_unit(g, GBENCH_NS);
		}
	}
	/* The target's pair at the other placement (a wakeup on another core costs more than a
	 * switch on the same one, and the bounded spin saves it), and dict_get without the spin
	 * at both placements, so the spin's gain and cost read off one run.
	 * Then the target itself, unpinned as a user runs it, and dict_get without the channel
	 * (shm:off) at every placement, so the channel's gain reads off one run too. */
	static const struct mcase extra[] = {
		{ .op = OP_DICT_GET, .cross_core = true },
		{ .op = OP_RAW_RTT, .cross_core = true },
		{ .op = OP_DICT_GET, .nospin = true },
		{ .op = OP_DICT_GET, .cross_core = true, .nospin = true },
		{ .op = OP_DICT_GET, .unpinned = true },
		{ .op = OP_DICT_GET, .noshm = true },
		{ .op = OP_DICT_GET, .cross_core = true, .noshm = true },
		{ .op = OP_DICT_GET, .unpinned = true, .noshm = true },
	};

	for (size_t i = 0; i < MPROC__ARRAY_SIZE(extra); i++) {
		char name[128];
		struct gbench *g;

		cases[n] = extra[i];
		snprintf(name, sizeof(name), "manager/%s/transport:unix%s%s%s",
			 op_names[extra[i].op],
			 extra[i].cross_core ? "/placement:cross_core" :
			 extra[i].unpinned ? "/placement:unpinned" : "",
			 extra[i].nospin ? "/spin:off" : "", extra[i].noshm ? "/shm:off" : "");
		g = gbench_register(name, bm_manager, &cases[n++]);
		gbench_use_manual_time(g);
		gbench_time_unit(g, GBENCH_NS);
	}
	/* Every client count, and the largest without the spin (spinning clients must not starve
	 * the server of CPU when there are more of them than cores). */
	for (size_t i = 0; i < nclients + 1; i++) {
		bool off = i == nclients;
		int nc = clients_quick[off ? nclients - 1 : i];
		struct gbench *g;

		cases[n] = (struct mcase){ .op = OP_DICT_GET, .clients = nc, .nospin = off };
		g = gbench_register(off ? "manager/throughput/spin:off" : "manager/throughput",
				    bm_manager, &cases[n++]);
		GBENCH_ARGS(g, nc);
		GBENCH_ARG_NAMES(g, "clients");
		gbench_use_manual_time(g);
		gbench_time_unit(g, GBENCH_US);
	}
}

int main(int argc, char **argv)
{
	return bench_main(argc, argv, register_all);
}
